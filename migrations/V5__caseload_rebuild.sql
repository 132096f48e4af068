-- A shadow of the caseload, beside the live table: `casebook rebuild caseload` replays the log
-- into it while the live caseload keeps serving, then moves its rows across in one transaction.
CREATE TABLE caseload_rebuild (LIKE caseload INCLUDING ALL);
GRANT SELECT, INSERT, UPDATE, DELETE ON caseload_rebuild TO casebook_app;
