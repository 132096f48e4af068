-- Lone working on home visits: each caseload row keeps the check-ins it is waiting for, the
-- home visit's appointment id to the time its lone-working plan said the link worker would
-- check in by (`LoneWorkingPlanRecorded` adds one; `LoneWorkingCheckedIn` or the visit's
-- cancellation takes it away). A check-in time past by the clock with no check-in is the
-- `missed_check_in` flag, computed when a caseload is read. Additive, like V23 and V31.
ALTER TABLE caseload ADD COLUMN check_ins_due jsonb NOT NULL DEFAULT '{}';
ALTER TABLE caseload_rebuild ADD COLUMN check_ins_due jsonb NOT NULL DEFAULT '{}';
-- Closed-loop connections awaiting the service's answer: connection id to the service and when
-- the connection was made (`OnwardConnectionMade`, not signposting, adds one; the service's
-- acceptance or decline takes it away). One not answered within the caseload rules'
-- `provider_no_answer_days`, by a service with provider staff tied to it, is the
-- `no_answer_from_service` flag, computed when a caseload is read.
ALTER TABLE caseload ADD COLUMN awaited_answers jsonb NOT NULL DEFAULT '{}';
ALTER TABLE caseload_rebuild ADD COLUMN awaited_answers jsonb NOT NULL DEFAULT '{}';
