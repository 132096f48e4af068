-- The web console's OpenID Connect sign-in: which verified identity (issuer, subject) is which
-- staff member, written by the operator (`casebook staff link-identity`); the sign-in attempts
-- in flight (single use, ten minutes); and what the session audit says about them.

CREATE TABLE staff_identities (
    -- The issuer exactly as its ID tokens name it (`iss`), and the subject (`sub`) it gives
    -- this person: together they are one person for ever, whatever else changes.
    issuer    text NOT NULL CHECK (issuer <> ''),
    subject   text NOT NULL CHECK (subject <> ''),
    staff_id  uuid NOT NULL REFERENCES staff,
    linked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX staff_identities_staff ON staff_identities (staff_id);

-- A sign-in started at the issuer and not yet come back. The browser holds
-- `cbo_<attempt id>_<secret>` in a cookie; the state, nonce and PKCE verifier are derived from
-- the secret, so only its SHA-256 is kept. Used once, within ten minutes.
CREATE TABLE oidc_sign_ins (
    attempt_id  uuid PRIMARY KEY,
    secret_hash bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    issuer      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

-- The session audit says how a sign-in was made and, for a refused OpenID Connect sign-in,
-- why and (when it got that far) which identity was refused, so the operator can link it.
ALTER TABLE session_events
    ADD COLUMN via text CHECK (via IN ('link', 'oidc')),
    ADD COLUMN reason text,
    ADD COLUMN issuer text,
    ADD COLUMN subject text;

GRANT SELECT ON staff_identities TO casebook_app;
GRANT SELECT, INSERT, UPDATE ON oidc_sign_ins TO casebook_app;
