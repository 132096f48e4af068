-- FHIR R4 referrals in (issue #20, part 1).
--
-- A GP practice's system is a new kind of caller: a staff account with the role
-- 'practice_system' (no team), holding bearer tokens like any account, scoped by the policy to
-- submitting referrals over FHIR and following its own.
ALTER TABLE staff DROP CONSTRAINT staff_role_check;
ALTER TABLE staff ADD CONSTRAINT staff_role_check CHECK (role IN (
    'referrer', 'link_worker', 'team_lead', 'auditor', 'reporting_analyst', 'administrator',
    'practice_system'));

-- Each ServiceRequest received, by the identifier its sender gave it (system and value), so
-- that the same ServiceRequest sent again is the same referral, and so that it can be shown
-- back with its identifier. The resource id is the client's record and the referral id at once
-- (a referral over FHIR always refers someone new to the service). Nothing personal is kept
-- here: the person's details are in the log, sealed; the identifier is the sender's
-- reference for the request.
CREATE TABLE fhir_service_requests (
    resource_id       uuid PRIMARY KEY,
    organisation_id   uuid NOT NULL REFERENCES organisations,
    identifier_system text NOT NULL CHECK (identifier_system <> ''),
    identifier_value  text NOT NULL CHECK (identifier_value <> ''),
    submitted_by      uuid NOT NULL REFERENCES staff,
    received_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organisation_id, identifier_system, identifier_value)
);

CREATE TRIGGER fhir_service_requests_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON fhir_service_requests
    FOR EACH STATEMENT EXECUTE FUNCTION casebook_reject_change();

GRANT SELECT, INSERT ON fhir_service_requests TO casebook_app;
