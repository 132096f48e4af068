-- Personal data protection: one data key per data subject (a client's stream), wrapped by the
-- master key, which never reaches the database. Personal fields of events are sealed with it.
--
-- Destroying a key (crypto-shredding) sets wrapped_key to NULL and keeps the row as a
-- tombstone: nothing can make a new key for an erased person, so nothing personal can be
-- written for them again. A key is never replaced and a row never deleted.
-- The old row version holding the key lives on until VACUUM; `casebook erase` and
-- `casebook retention --apply` vacuum this table afterwards, and backups must not be kept
-- longer than the erasure promise (see ARCHITECTURE.md, "Personal data").
CREATE TABLE subject_keys (
    subject_id    uuid PRIMARY KEY,
    -- XChaCha20-Poly1305: 24-byte nonce, 32-byte key, 16-byte tag.
    wrapped_key   bytea CHECK (wrapped_key IS NULL OR octet_length(wrapped_key) = 72),
    -- Which master key wrapped it (a digest, not the key).
    master_key_id text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    destroyed_at  timestamptz,
    CHECK ((wrapped_key IS NULL) = (destroyed_at IS NOT NULL))
);

CREATE FUNCTION casebook_key_only_destroyed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.wrapped_key IS NOT NULL OR NEW.subject_id <> OLD.subject_id THEN
        RAISE EXCEPTION 'a data key can only be destroyed, never replaced'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER subject_keys_only_destroyed
    BEFORE UPDATE ON subject_keys
    FOR EACH ROW EXECUTE FUNCTION casebook_key_only_destroyed();

CREATE TRIGGER subject_keys_no_delete
    BEFORE DELETE OR TRUNCATE ON subject_keys
    FOR EACH STATEMENT EXECUTE FUNCTION casebook_reject_change();

REVOKE ALL ON subject_keys FROM PUBLIC;
GRANT SELECT, INSERT ON subject_keys TO casebook_app;
GRANT UPDATE (wrapped_key, destroyed_at) ON subject_keys TO casebook_app;
