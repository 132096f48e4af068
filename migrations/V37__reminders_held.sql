-- A reminder due while its channel has no template configured at the notification service
-- (`serve --notify-sms-template`, `--notify-email-template`), or with no notification service
-- at all, is held: it stays pending, no attempt is counted and nothing is dead-lettered, and
-- `held_reason` says why (`no_sms_template`, `no_email_template`, `no_notify_service`) on the
-- administrator's list. A dispatcher that cannot send it either passes it by; one that can
-- (the service started again with the template) sends it, and the reason goes.
ALTER TABLE reminder_outbox ADD COLUMN held_reason text
    CHECK (held_reason IN ('no_sms_template', 'no_email_template', 'no_notify_service'));
