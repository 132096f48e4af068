-- Reports as they were known: a snapshot replays the log under a rule version, keeping only the
-- events recorded by a moment (and, to explain a difference, the corrections recorded by
-- another), into figures rows tagged with the snapshot's own negative `tag` in place of a rule
-- version; reports read them as they read a version's. Kept until dropped, so a figure sent to
-- commissioners can be asked for again.
CREATE SEQUENCE report_snapshot_tags AS integer INCREMENT BY -1 START WITH -1 MAXVALUE -1;

CREATE TABLE report_snapshots (
    id                   uuid PRIMARY KEY,
    tag                  integer NOT NULL UNIQUE CHECK (tag < 0),
    -- The organisation that asked: only it reads the snapshot.
    organisation_id      uuid NOT NULL,
    rules_version        integer NOT NULL,
    known_at             timestamptz NOT NULL,
    corrections_known_at timestamptz NOT NULL,
    state                text NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    events_total         bigint NOT NULL DEFAULT 0,
    events_done          bigint NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz,
    error                text
);

-- An explanation of the difference between a published report and today's: four snapshots.
CREATE TABLE report_explanations (
    id              uuid PRIMARY KEY,
    organisation_id uuid NOT NULL,
    published       uuid NOT NULL REFERENCES report_snapshots (id),
    late_entries    uuid NOT NULL REFERENCES report_snapshots (id),
    corrections     uuid NOT NULL REFERENCES report_snapshots (id),
    current         uuid NOT NULL REFERENCES report_snapshots (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Which rule version reports used from when: "the rules live then" for a snapshot.
CREATE TABLE projection_version_history (
    projection    text NOT NULL,
    rules_version integer NOT NULL,
    live_from     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO projection_version_history (projection, rules_version, live_from)
SELECT projection, rules_version, coalesce(switched_at, created_at)
FROM projection_versions WHERE state = 'live';

GRANT SELECT, INSERT, UPDATE ON report_snapshots, report_explanations TO casebook_app;
GRANT SELECT, INSERT ON projection_version_history TO casebook_app;
GRANT USAGE ON SEQUENCE report_snapshot_tags TO casebook_app;
