-- The event log: the only source of truth. Rows are never updated or deleted.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'casebook_app') THEN
        CREATE ROLE casebook_app LOGIN;
    END IF;
END
$$;

-- Global read order for projectors is (log_generation, transaction_id, position).
-- transaction_id is the appending transaction's xid8: a reader only reads rows whose
-- transaction_id is below the oldest transaction still running, so a commit that lands late
-- can never appear behind a reader's checkpoint (positions are drawn at insert, not commit).
-- xid8 values belong to one cluster. log_generation is bumped when the log is restored into
-- another cluster whose xids are lower (see casebook_rebase_after_restore below), so events
-- appended after a restore still sort after every restored event and no checkpoint moves.
CREATE TABLE log_generation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation integer NOT NULL
);
INSERT INTO log_generation (generation) VALUES (1);

CREATE FUNCTION casebook_log_generation() RETURNS integer
    LANGUAGE sql STABLE
    AS $$ SELECT generation FROM log_generation $$;

CREATE TABLE events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    log_generation  integer NOT NULL DEFAULT casebook_log_generation(),
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid NOT NULL UNIQUE,
    stream_id       uuid NOT NULL,
    stream_type     text NOT NULL,
    stream_version  bigint NOT NULL CHECK (stream_version > 0),
    event_type      text NOT NULL,
    schema_version  integer NOT NULL CHECK (schema_version > 0),
    payload         jsonb NOT NULL,
    actor_id        uuid NOT NULL,
    actor_role      text NOT NULL,
    organisation_id uuid NOT NULL,
    correlation_id  uuid NOT NULL,
    causation_id    uuid,
    idempotency_key text,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    -- SHA-256 over the previous event's hash in this stream and this event's canonical content.
    hash            bytea NOT NULL CHECK (octet_length(hash) = 32),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_global_order ON events (log_generation, transaction_id, position);
CREATE INDEX events_organisation ON events (organisation_id, stream_type);

-- Append-only, enforced by the database for every role.
CREATE FUNCTION casebook_reject_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;

-- Statement-level, so the refusal does not depend on any row matching.
CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION casebook_reject_change();

-- Subscribers are woken by NOTIFY casebook_events, sent by the appender after its commit and
-- not from a trigger: a NOTIFY inside the append transaction takes a database-wide lock held
-- through the commit's WAL flush, which serialises every committing appender.

-- One row per (stream, idempotency key): a repeated append returns the stored result.
CREATE TABLE idempotency_keys (
    stream_id       uuid NOT NULL,
    idempotency_key text NOT NULL,
    fingerprint     bytea NOT NULL,
    result          jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, idempotency_key)
);

CREATE TRIGGER idempotency_keys_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON idempotency_keys
    FOR EACH STATEMENT EXECUTE FUNCTION casebook_reject_change();

-- After restoring a dump into another cluster, the restored rows may carry xids above this
-- cluster's counter. Bumping the generation makes every later append sort after them.
CREATE FUNCTION casebook_rebase_after_restore() RETURNS boolean
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
    ) THEN
        UPDATE log_generation SET generation = generation + 1;
        RETURN true;
    END IF;
    RETURN false;
END
$$;

REVOKE ALL ON events, idempotency_keys, log_generation FROM PUBLIC;
GRANT SELECT, INSERT ON events, idempotency_keys TO casebook_app;
GRANT SELECT ON log_generation TO casebook_app;
GRANT SELECT ON refinery_schema_history TO casebook_app;
