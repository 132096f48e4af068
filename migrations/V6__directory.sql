-- The directory read model: one row per service stream, built by the `directory_v1` projector
-- from ServiceListed / ServiceUpdated / ServiceCapacityChanged / ServiceWithdrawn events.
-- `record` is the Open Referral UK service as last listed or updated; the other columns are
-- what search and reports filter and rank by.
CREATE TABLE directory_services (
    service_id      uuid PRIMARY KEY,
    name            text NOT NULL,
    organisation    text NOT NULL,
    status          text NOT NULL,
    availability    text NOT NULL,
    waiting_weeks   integer,
    withdrawn       boolean NOT NULL,
    needs           text[] NOT NULL,
    areas           text[] NOT NULL,
    categories      text[] NOT NULL,
    record          jsonb NOT NULL,
    search          tsvector NOT NULL,
    listed_at       timestamptz NOT NULL,
    modified_at     timestamptz NOT NULL,
    version         bigint NOT NULL
);
CREATE INDEX directory_services_search ON directory_services USING gin (search);
CREATE INDEX directory_services_needs ON directory_services USING gin (needs);
CREATE INDEX directory_services_areas ON directory_services USING gin (areas);
CREATE INDEX directory_services_modified ON directory_services (modified_at, service_id);
CREATE INDEX directory_services_name ON directory_services (lower(name), service_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON directory_services TO casebook_app;
