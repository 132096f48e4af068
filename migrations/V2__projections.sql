-- Projection bookkeeping and the caseload read model. Read models are derived: they can be
-- truncated and rebuilt from the log at any time.

-- Where each projection has read to, in the log's global order.
CREATE TABLE projection_checkpoints (
    projection     text PRIMARY KEY,
    log_generation integer NOT NULL,
    transaction_id bigint NOT NULL,
    position       bigint NOT NULL,
    events_applied bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Who runs each projection. A lease, not a session lock, so that it holds behind a
-- transaction-pooling proxy; it is renewed in the same transaction as every batch it writes.
CREATE TABLE projection_leases (
    projection text PRIMARY KEY,
    holder     uuid NOT NULL,
    expires_at timestamptz NOT NULL
);

-- One row per client with an episode: what a link worker's and a team's caseload shows.
-- Durations (days since referral, days since contact) are computed at query time from these
-- dates, so the projection never reads a clock.
CREATE TABLE caseload (
    client_id            uuid PRIMARY KEY,
    organisation_id      uuid NOT NULL,
    status               text NOT NULL,
    link_worker_id       uuid,
    team_id              uuid,
    area                 text NOT NULL DEFAULT '',
    referred_on          date,
    referral_source      text,
    accepted_at          timestamptz,
    closed_at            timestamptz,
    last_contact_at      timestamptz,
    contacts             integer NOT NULL DEFAULT 0,
    did_not_attend       integer NOT NULL DEFAULT 0,
    booked_appointments  jsonb NOT NULL DEFAULT '{}',
    baselines            text[] NOT NULL DEFAULT '{}',
    follow_ups           text[] NOT NULL DEFAULT '{}',
    stream_version       bigint NOT NULL
);
CREATE INDEX caseload_worker ON caseload (organisation_id, link_worker_id) WHERE status IN ('referred', 'open');
CREATE INDEX caseload_team ON caseload (organisation_id, team_id) WHERE status IN ('referred', 'open');

GRANT SELECT, INSERT, UPDATE, DELETE ON projection_checkpoints, projection_leases, caseload TO casebook_app;
