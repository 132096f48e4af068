-- Who may use Casebook, and the record of who read what.
--
-- Organisations, teams and staff are administration, not case history, so they are plain
-- tables. Every case event still records its actor, role and organisation in its own row.

CREATE TABLE organisations (
    organisation_id uuid PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name <> ''),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE teams (
    team_id         uuid PRIMARY KEY,
    organisation_id uuid NOT NULL REFERENCES organisations,
    name            text NOT NULL CHECK (name <> ''),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organisation_id, name)
);

-- One role per staff account. A team lead who also carries cases acts on them as team lead.
CREATE TABLE staff (
    staff_id        uuid PRIMARY KEY,
    organisation_id uuid NOT NULL REFERENCES organisations,
    team_id         uuid REFERENCES teams,
    name            text NOT NULL CHECK (name <> ''),
    role            text NOT NULL CHECK (role IN ('referrer', 'link_worker', 'team_lead', 'auditor',
                                                  'reporting_analyst', 'administrator')),
    -- People a full-time link worker supports in a year (NHS guidance: 200 to 250).
    capacity        integer CHECK (capacity > 0),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (role NOT IN ('link_worker', 'team_lead') OR team_id IS NOT NULL)
);
CREATE INDEX staff_team ON staff (team_id);

-- Bearer tokens: `cbk_<token_id>_<secret>`. Only SHA-256 of the 256-bit random secret is kept
-- (a slow password hash adds nothing for a random secret of that length).
CREATE TABLE api_tokens (
    token_id    uuid PRIMARY KEY,
    staff_id    uuid NOT NULL REFERENCES staff,
    secret_hash bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    label       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX api_tokens_staff ON api_tokens (staff_id);

-- Every read of a client's record or journey. Append-only, like the log.
CREATE TABLE record_reads (
    read_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id uuid NOT NULL,
    client_id       uuid NOT NULL,
    staff_id        uuid NOT NULL,
    role            text NOT NULL,
    -- What was read: 'record', 'journey' or 'referral_status'.
    view            text NOT NULL,
    purpose         text,
    request_id      uuid NOT NULL,
    read_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX record_reads_client ON record_reads (organisation_id, client_id, read_id);

CREATE TRIGGER record_reads_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON record_reads
    FOR EACH STATEMENT EXECUTE FUNCTION casebook_reject_change();

GRANT SELECT ON organisations TO casebook_app;
GRANT SELECT, INSERT ON teams TO casebook_app;
GRANT SELECT, INSERT, UPDATE ON staff, api_tokens TO casebook_app;
GRANT SELECT, INSERT ON record_reads TO casebook_app;
