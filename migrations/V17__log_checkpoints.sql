-- Tamper evidence that holds against the database superuser (issue #19, part 4).
--
-- The sealer (`casebook serve`, `casebook anchor`) follows the log in its global order and the
-- read audit in the same kind of order, folds every row into one log-wide chain head each, and
-- writes a checkpoint: how many rows, where the last one sits, both heads, the previous
-- checkpoint's MAC, and an HMAC over all of it under the anchor key, which never reaches the
-- database. The same checkpoint goes to the anchor file the organisation keeps. A superuser can
-- rewrite these rows, but cannot make a MAC that verifies, nor reach the anchor file.

-- The read audit gets the events' global order, so a sealer can read it without skipping a
-- read that commits late (read ids are drawn at insert, not at commit). Reads recorded before
-- this migration all carry this migration's transaction id and keep their read_id order.
ALTER TABLE record_reads
    ADD COLUMN log_generation integer NOT NULL DEFAULT casebook_log_generation(),
    ADD COLUMN transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX record_reads_global_order ON record_reads (log_generation, transaction_id, read_id);

CREATE TABLE log_checkpoints (
    seq                 bigint PRIMARY KEY CHECK (seq > 0),
    -- Events sealed so far (the first `events` of the global order) and the last one's place.
    events              bigint NOT NULL CHECK (events >= 0),
    last_generation     integer NOT NULL,
    last_transaction_id xid8 NOT NULL,
    last_position       bigint NOT NULL,
    event_head          bytea NOT NULL CHECK (octet_length(event_head) = 32),
    -- Reads of the read audit sealed so far, and the last one's place.
    reads               bigint NOT NULL CHECK (reads >= 0),
    last_read_generation     integer NOT NULL,
    last_read_transaction_id xid8 NOT NULL,
    last_read_id        bigint NOT NULL,
    read_head           bytea NOT NULL CHECK (octet_length(read_head) = 32),
    prev_mac            bytea NOT NULL CHECK (octet_length(prev_mac) = 32),
    sealed_at           timestamptz NOT NULL,
    key_id              text NOT NULL,
    mac                 bytea NOT NULL CHECK (octet_length(mac) = 32)
);

CREATE TRIGGER log_checkpoints_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON log_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION casebook_reject_change();

REVOKE ALL ON log_checkpoints FROM PUBLIC;
GRANT SELECT, INSERT ON log_checkpoints TO casebook_app;

-- A restore into another cluster bumps the generation when restored reads, too, carry ids above
-- this cluster's counter.
CREATE OR REPLACE FUNCTION casebook_rebase_after_restore() RETURNS boolean
    LANGUAGE plpgsql
    AS $$
DECLARE
    current_generation integer;
BEGIN
    SELECT generation INTO current_generation FROM log_generation FOR UPDATE;
    IF EXISTS (
        SELECT 1 FROM events
        WHERE log_generation = current_generation
          AND transaction_id >= pg_current_xact_id()
    ) OR EXISTS (
        SELECT 1 FROM record_reads
        WHERE log_generation = current_generation
          AND transaction_id >= pg_current_xact_id()
    ) THEN
        UPDATE log_generation SET generation = generation + 1;
        RETURN true;
    END IF;
    RETURN false;
END
$$;
