-- A follow-up score is due a number of days after the baseline (the caseload rules say so), so
-- the caseload keeps each instrument's earliest baseline date of the episode beside its name.
-- Additive: a running older version keeps working, and rows written before this hold no dates
-- (their follow-up falls due from acceptance, as before) until `casebook rebuild caseload`
-- replays the log into the shadow table and switches to it, the caseload serving throughout.
ALTER TABLE caseload ADD COLUMN baseline_dates jsonb NOT NULL DEFAULT '{}';
ALTER TABLE caseload_rebuild ADD COLUMN baseline_dates jsonb NOT NULL DEFAULT '{}';
