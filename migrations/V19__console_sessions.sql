-- The web console's sign-in: one-time sign-in links, server-side sessions, and an append-only
-- audit of every session event. Only SHA-256 of each secret is kept, as for tokens.

CREATE TABLE sign_in_links (
    link_id     uuid PRIMARY KEY,
    staff_id    uuid NOT NULL REFERENCES staff,
    secret_hash bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    -- The administrator who made it; NULL for the operator or the demo.
    issued_by   uuid REFERENCES staff,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX sign_in_links_staff ON sign_in_links (staff_id);

CREATE TABLE console_sessions (
    session_id    uuid PRIMARY KEY,
    staff_id      uuid NOT NULL REFERENCES staff,
    secret_hash   bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    -- How the holder proved who they are: a one-time link, or an OpenID Connect issuer.
    signed_in_via text NOT NULL CHECK (signed_in_via IN ('link', 'oidc')),
    link_id       uuid REFERENCES sign_in_links,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    -- Ends when unused this long, and at expires_at whatever happens (the absolute lifetime).
    idle_timeout  interval NOT NULL CHECK (idle_timeout > interval '0'),
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    ended_why     text CHECK (ended_why IN ('signed_out', 'revoked', 'idle', 'expired')),
    CHECK ((ended_at IS NULL) = (ended_why IS NULL)),
    CHECK ((signed_in_via = 'link') = (link_id IS NOT NULL))
);
CREATE INDEX console_sessions_staff ON console_sessions (staff_id) WHERE ended_at IS NULL;

CREATE TABLE session_events (
    event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL for a refused sign-in (no session was made).
    session_id      uuid,
    staff_id        uuid,
    organisation_id uuid,
    kind            text NOT NULL CHECK (kind IN ('signed_in', 'signed_out', 'revoked', 'idle',
                                                  'expired', 'sign_in_refused')),
    -- Who asked, as the service saw them (NULL when it ended by itself, found at a later request).
    source          text,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_events_staff ON session_events (staff_id, event_id);

CREATE TRIGGER session_events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON session_events
    FOR EACH STATEMENT EXECUTE FUNCTION casebook_reject_change();

GRANT SELECT, INSERT, UPDATE ON sign_in_links, console_sessions TO casebook_app;
GRANT SELECT, INSERT ON session_events TO casebook_app;
