-- The urgency of the current episode's referral (`routine`, `soon`, `urgent`: the referrer's ask,
-- corrections applied), so that the triage queue and caseloads flag an urgent referral. Rows
-- written before this migration hold NULL (not known) until `casebook rebuild caseload`.
-- Additive, like V32.
ALTER TABLE caseload ADD COLUMN urgency text;
ALTER TABLE caseload_rebuild ADD COLUMN urgency text;
