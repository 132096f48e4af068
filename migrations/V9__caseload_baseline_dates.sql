-- A follow-up score is due a number of days after the baseline (the caseload rules say so), so
-- the caseload keeps each instrument's first baseline date of the episode, not only its name.
ALTER TABLE caseload DROP COLUMN baselines;
ALTER TABLE caseload ADD COLUMN baseline_dates jsonb NOT NULL DEFAULT '{}';
ALTER TABLE caseload_rebuild DROP COLUMN baselines;
ALTER TABLE caseload_rebuild ADD COLUMN baseline_dates jsonb NOT NULL DEFAULT '{}';

-- Rows written before hold no dates: the caseload (a derived table; the log is untouched) is
-- replayed from the start of the log by the next projector to run.
DELETE FROM caseload;
DELETE FROM caseload_rebuild;
UPDATE projection_checkpoints
   SET log_generation = 0, transaction_id = 0, position = 0, events_applied = 0, updated_at = now()
 WHERE projection IN ('caseload_v1', 'caseload_v1_rebuild');
