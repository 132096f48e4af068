-- Outcome rules v3 count each appointment and contact by its own date (projections/outcomes/
-- v3.toml, [dating]): one row per dated fact, beside the episode totals that v1 and v2 count by
-- the day the episode was accepted. Additive: versions that do not date facts write no rows.
CREATE TABLE report_activity (
    rules_version   integer NOT NULL,
    client_id       uuid NOT NULL,
    episode         integer NOT NULL,
    organisation_id uuid NOT NULL,
    team_id         uuid,
    source          text NOT NULL,
    reasons         jsonb NOT NULL,
    -- 'attended', 'not_attended' (by the appointment's day) or 'contact' (by its time's day).
    kind            text NOT NULL CHECK (kind IN ('attended', 'not_attended', 'contact')),
    on_day          date NOT NULL
);
CREATE INDEX report_activity_client ON report_activity (rules_version, client_id);
CREATE INDEX report_activity_org ON report_activity (rules_version, organisation_id, on_day);
GRANT SELECT, INSERT, UPDATE, DELETE ON report_activity TO casebook_app;

-- A new installation (nothing in the log yet) reports under v3 from the start. One with history
-- keeps its live version until `casebook rebuild outcomes --rules 3` has replayed the log into
-- v3 and switched to it (the old version stays readable for comparison).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM events) THEN
        DELETE FROM projection_versions WHERE projection = 'outcomes';
        INSERT INTO projection_versions (projection, rules_version, state, switched_at)
        VALUES ('outcomes', 3, 'live', now());
    END IF;
END $$;
