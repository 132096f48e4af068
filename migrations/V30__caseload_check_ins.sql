-- Lone working on home visits: each caseload row keeps the check-ins it is waiting for, the
-- home visit's appointment id to the time its lone-working plan said the link worker would
-- check in by (`LoneWorkingPlanRecorded` adds one; `LoneWorkingCheckedIn` or the visit's
-- cancellation takes it away). A check-in time past by the clock with no check-in is the
-- `missed_check_in` flag, computed when a caseload is read. Additive, like V23 and V29.
ALTER TABLE caseload ADD COLUMN check_ins_due jsonb NOT NULL DEFAULT '{}';
ALTER TABLE caseload_rebuild ADD COLUMN check_ins_due jsonb NOT NULL DEFAULT '{}';
