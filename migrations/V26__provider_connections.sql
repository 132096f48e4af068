-- Closed-loop connections (issue #21, part 4).
--
-- A directory service's own staff (the role 'service_provider', no team) answer the onward
-- connections made to the services they are tied to. A provider is usually a voluntary
-- organisation outside the NHS service that made the connection: its staff belong to their own
-- organisation, and are tied by that organisation's administrator to services the
-- organisation owns in the directory (the owner of a service's stream: see ARCHITECTURE,
-- "Streams"). A provider sees only connections made to its services, from any organisation.
ALTER TABLE staff DROP CONSTRAINT staff_role_check;
ALTER TABLE staff ADD CONSTRAINT staff_role_check CHECK (role IN (
    'referrer', 'link_worker', 'team_lead', 'auditor', 'reporting_analyst', 'administrator',
    'practice_system', 'service_provider'));

-- Which directory services each provider staff account answers for. Administration, like
-- teams and roles: a plain table, managed by the organisation's administrator (a tie removed
-- is deleted: the answers given stay in the log with their actor).
CREATE TABLE provider_services (
    staff_id        uuid NOT NULL REFERENCES staff,
    service_id      uuid NOT NULL,
    organisation_id uuid NOT NULL REFERENCES organisations,
    tied_by         uuid REFERENCES staff,
    tied_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (staff_id, service_id)
);
CREATE INDEX provider_services_service ON provider_services (service_id);

GRANT SELECT, INSERT, DELETE ON provider_services TO casebook_app;

-- "Connections to my services", newest first, found without reading any other event: the
-- connections of a few services are an index range each. Built in the migration's
-- transaction, as V22's index is (appends wait while it is built).
CREATE INDEX events_connections_by_service ON events ((payload->>'service_id'), position)
    WHERE event_type = 'OnwardConnectionMade';
