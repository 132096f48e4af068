-- The reminder outbox's projector finds a person's reminders by client on every closure,
-- reopening, erasure, consent change and appointment moved (`projector::reminders`): by an
-- index, not a scan of every reminder ever decided.
CREATE INDEX reminder_outbox_by_client ON reminder_outbox (client_id);
