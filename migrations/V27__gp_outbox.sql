-- Coded messages back to the GP practice through a transactional outbox (issue #20, part 2).
--
-- The outbox projection (`gp_outbox_v1`) folds the log and writes one row of `gp_outbox` per
-- message an event calls for, in the same transaction as its checkpoint: the log is gapless and
-- read in its global order, so every event is looked at exactly once and each message is
-- written exactly once, whatever crashes. A message's id is the id of the event it comes from.
-- Nothing personal is kept here: the person is a client id, the practice an ODS code, the
-- content codes and words of a rule file; the NHS number is read from the log (sealed) when the
-- message is sent, so an erased person's messages cannot be addressed and are withheld.

-- Where each practice's messages go, per organisation: set by an administrator, http(s) only.
CREATE TABLE gp_practice_endpoints (
    organisation_id uuid NOT NULL REFERENCES organisations,
    ods_code        text NOT NULL CHECK (ods_code ~ '^[A-Z0-9]{3,10}$'),
    url             text NOT NULL CHECK (url ~ '^https?://'),
    updated_by      uuid NOT NULL REFERENCES staff,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (organisation_id, ods_code)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON gp_practice_endpoints TO casebook_app;

-- What the outbox projection knows of each person (its fold's state), rebuilt from the log.
CREATE TABLE gp_outbox_state (
    client_id uuid PRIMARY KEY,
    state     jsonb NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON gp_outbox_state TO casebook_app;

-- The messages. `seq` orders a person's messages: the dispatcher sends none before every
-- earlier one of the same person is delivered or withheld. `withheld` is a message decided
-- and not sent, with why (no practice on the referral, the person objected, erased).
CREATE TABLE gp_outbox (
    message_id      uuid PRIMARY KEY,
    organisation_id uuid NOT NULL,
    client_id       uuid NOT NULL,
    seq             integer NOT NULL CHECK (seq > 0),
    kind            text NOT NULL,
    code            text NOT NULL,
    display         text NOT NULL,
    content         text CHECK (content IN ('coded', 'full')),
    summary         text,
    practice_ods    text,
    rules_version   integer NOT NULL,
    occurred_at     timestamptz NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'dead', 'withheld')),
    withheld_reason text,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    leased_until    timestamptz,
    lease_holder    uuid,
    last_error      text,
    delivered_at    timestamptz,
    UNIQUE (client_id, seq)
);
CREATE INDEX gp_outbox_due ON gp_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX gp_outbox_dead ON gp_outbox (organisation_id, occurred_at) WHERE status = 'dead';
GRANT SELECT, INSERT, UPDATE ON gp_outbox TO casebook_app;

-- Every attempt to send a message, and every replay: who (the dispatcher or the administrator),
-- when, and what came of it. Append-only.
CREATE TABLE gp_outbox_attempts (
    attempt_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   uuid NOT NULL REFERENCES gp_outbox,
    attempt      integer NOT NULL,
    at           timestamptz NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'dead', 'withheld', 'replayed')),
    http_status  integer,
    detail       text,
    dispatcher   uuid,
    staff_id     uuid REFERENCES staff
);
CREATE INDEX gp_outbox_attempts_message ON gp_outbox_attempts (message_id, attempt_id);
CREATE TRIGGER gp_outbox_attempts_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON gp_outbox_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION casebook_reject_change();
GRANT SELECT, INSERT ON gp_outbox_attempts TO casebook_app;
