-- A data key may also be rewrapped under a new master key (`casebook key rotate`): the same
-- data key, a new wrapping and the new master key's id. The service's role cannot change
-- `master_key_id` (it has UPDATE on `wrapped_key` and `destroyed_at` only), so only the owner
-- rotates. A destroyed key stays destroyed.
CREATE OR REPLACE FUNCTION casebook_key_only_destroyed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.subject_id <> OLD.subject_id THEN
        RAISE EXCEPTION 'a data key can only be destroyed, never replaced'
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.wrapped_key IS NULL THEN
        RETURN NEW;
    END IF;
    IF OLD.wrapped_key IS NOT NULL AND NEW.master_key_id <> OLD.master_key_id THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a data key can only be destroyed, never replaced'
        USING ERRCODE = 'restrict_violation';
END
$$;
