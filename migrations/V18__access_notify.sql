-- Every change to the access tables is announced on the channel `casebook_access`, in the
-- changing transaction, so it reaches every listening process when (and only if) that commits.
-- A process that keeps verified bearer tokens in memory drops them all when it hears one, so a
-- token revoked, or an account deactivated or changed, through any process or at the console
-- stops working everywhere at once. New tokens and enrolments need no announcement (nothing
-- holds them yet), so only updates and deletions are announced. These tables change rarely:
-- the NOTIFY's lock at commit costs appends nothing.
CREATE FUNCTION casebook_announce_access_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('casebook_access', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_tokens_announce_change
    AFTER UPDATE OR DELETE OR TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION casebook_announce_access_change();

CREATE TRIGGER staff_announce_change
    AFTER UPDATE OR DELETE OR TRUNCATE ON staff
    FOR EACH STATEMENT EXECUTE FUNCTION casebook_announce_access_change();
