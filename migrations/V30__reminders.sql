-- Appointment reminders to the person through a notification outbox (issue #21, part 1).
--
-- The reminder projection (`reminder_outbox_v1`) folds the log and writes one row of
-- `reminder_outbox` per appointment booked, in the same transaction as its checkpoint; the
-- row is withheld there when the appointment is cancelled, attended or missed, or the person
-- erased. Its id is derived from the client and the appointment (the same however often the
-- log is replayed), and it is the `reference` the notification service dedupes on.
-- Nothing personal is kept here: no phone number, no email address, no name. The dispatcher
-- reads the person's consent, preferred channel and contact details from the log (sealed) when
-- the reminder is due, so an erased person, or one who withdrew consent, is sent nothing.

CREATE TABLE reminder_outbox (
    message_id      uuid PRIMARY KEY,
    organisation_id uuid NOT NULL,
    client_id       uuid NOT NULL,
    appointment_id  uuid NOT NULL,
    -- The booking's event, which a correction of the appointment's time names.
    booked_event_id uuid NOT NULL,
    scheduled_for   timestamptz NOT NULL,
    rules_version   integer NOT NULL,
    -- The channel it went by, once sent (read from the person's consent at send time).
    channel         text CHECK (channel IN ('sms', 'email')),
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'dead', 'withheld')),
    withheld_reason text,
    attempts        integer NOT NULL DEFAULT 0,
    -- When it is due: hours before the appointment, as the rules say; then after each failure.
    next_attempt_at timestamptz NOT NULL,
    leased_until    timestamptz,
    lease_holder    uuid,
    last_error      text,
    delivered_at    timestamptz,
    UNIQUE (client_id, appointment_id)
);
CREATE INDEX reminder_outbox_due ON reminder_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX reminder_outbox_dead ON reminder_outbox (organisation_id, scheduled_for) WHERE status = 'dead';
GRANT SELECT, INSERT, UPDATE ON reminder_outbox TO casebook_app;

-- Every attempt to send a reminder, and every replay: who, when, what came of it. Append-only.
CREATE TABLE reminder_outbox_attempts (
    attempt_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   uuid NOT NULL REFERENCES reminder_outbox,
    attempt      integer NOT NULL,
    at           timestamptz NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'dead', 'withheld', 'replayed')),
    http_status  integer,
    detail       text,
    dispatcher   uuid,
    staff_id     uuid REFERENCES staff
);
CREATE INDEX reminder_outbox_attempts_message ON reminder_outbox_attempts (message_id, attempt_id);
CREATE TRIGGER reminder_outbox_attempts_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON reminder_outbox_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION casebook_reject_change();
GRANT SELECT, INSERT ON reminder_outbox_attempts TO casebook_app;
