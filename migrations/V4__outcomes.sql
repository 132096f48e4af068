-- The outcomes read model: figures per rule version, side by side. Every row carries the
-- `rules_version` (projections/outcomes/v{n}.toml) that made it; a rebuild under new rules
-- writes new rows beside the old, and reports read the live version unless asked for another.

-- Which rule versions of a versioned projection exist, and which one reports use.
CREATE TABLE projection_versions (
    projection    text NOT NULL,
    rules_version integer NOT NULL,
    -- 'building' (being rebuilt), 'live' (what reports use), 'retired' (kept for comparison).
    state         text NOT NULL CHECK (state IN ('building', 'live', 'retired')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    switched_at   timestamptz,
    PRIMARY KEY (projection, rules_version)
);
CREATE UNIQUE INDEX projection_versions_one_live ON projection_versions (projection) WHERE state = 'live';
INSERT INTO projection_versions (projection, rules_version, state, switched_at)
VALUES ('outcomes', 1, 'live', now());

-- Each client's folded facts (the projection's own state).
CREATE TABLE outcome_state (
    rules_version integer NOT NULL,
    client_id     uuid NOT NULL,
    state         jsonb NOT NULL,
    PRIMARY KEY (rules_version, client_id)
);

CREATE TABLE report_referrals (
    rules_version         integer NOT NULL,
    referral_id           uuid NOT NULL,
    client_id             uuid NOT NULL,
    organisation_id       uuid NOT NULL,
    team_id               uuid,
    source                text NOT NULL,
    reasons               jsonb NOT NULL,
    received_on           date NOT NULL,
    outcome               text,
    decline_reason        text,
    days_to_first_contact integer,
    PRIMARY KEY (rules_version, referral_id)
);
CREATE INDEX report_referrals_client ON report_referrals (rules_version, client_id);
CREATE INDEX report_referrals_org ON report_referrals (rules_version, organisation_id, received_on);

CREATE TABLE report_episodes (
    rules_version   integer NOT NULL,
    client_id       uuid NOT NULL,
    episode         integer NOT NULL,
    organisation_id uuid NOT NULL,
    team_id         uuid,
    source          text NOT NULL,
    reasons         jsonb NOT NULL,
    accepted_on     date,
    closed_on       date,
    closure_reason  text,
    contacts        integer NOT NULL,
    attended        integer NOT NULL,
    did_not_attend  integer NOT NULL,
    PRIMARY KEY (rules_version, client_id, episode)
);
CREATE INDEX report_episodes_org ON report_episodes (rules_version, organisation_id, accepted_on);

CREATE TABLE report_scores (
    rules_version   integer NOT NULL,
    client_id       uuid NOT NULL,
    episode         integer NOT NULL,
    measure         text NOT NULL,
    organisation_id uuid NOT NULL,
    team_id         uuid,
    source          text NOT NULL,
    reasons         jsonb NOT NULL,
    baseline        double precision NOT NULL,
    follow_up       double precision NOT NULL,
    category        text NOT NULL CHECK (category IN ('improved', 'no_change', 'worse')),
    baseline_on     date NOT NULL,
    follow_up_on    date NOT NULL,
    PRIMARY KEY (rules_version, client_id, episode, measure)
);
CREATE INDEX report_scores_org ON report_scores (rules_version, organisation_id, follow_up_on);

CREATE TABLE report_connections (
    rules_version   integer NOT NULL,
    connection_id   uuid NOT NULL,
    client_id       uuid NOT NULL,
    organisation_id uuid NOT NULL,
    team_id         uuid,
    service_id      uuid NOT NULL,
    need            text NOT NULL,
    kind            text NOT NULL,
    made_on         date NOT NULL,
    outcome         text,
    waiting_weeks   integer,
    PRIMARY KEY (rules_version, connection_id)
);
CREATE INDEX report_connections_client ON report_connections (rules_version, client_id);
CREATE INDEX report_connections_org ON report_connections (rules_version, organisation_id, made_on);

CREATE TABLE report_gaps (
    rules_version   integer NOT NULL,
    gap_id          uuid NOT NULL,
    client_id       uuid NOT NULL,
    organisation_id uuid NOT NULL,
    team_id         uuid,
    need            text NOT NULL,
    area            text NOT NULL,
    reason          text NOT NULL,
    recorded_on     date NOT NULL,
    PRIMARY KEY (rules_version, gap_id)
);
CREATE INDEX report_gaps_client ON report_gaps (rules_version, client_id);
CREATE INDEX report_gaps_org ON report_gaps (rules_version, organisation_id, recorded_on);

GRANT SELECT, INSERT, UPDATE, DELETE ON projection_versions, outcome_state, report_referrals,
    report_episodes, report_scores, report_connections, report_gaps TO casebook_app;
