-- No one mints a token that acts as someone else. A token is issued to its own holder:
--   'self'       by the holder, with a token of their own (issued_by is the holder);
--   'enrolment'  when the holder redeems a one-time enrolment code an administrator made for
--                them (issued_by is that administrator; the code is shown once, kept hashed);
--   'operator'   by the operator at the console (`casebook token issue`), who holds the
--                database itself: the way the first administrator of an organisation starts;
--   'system'     by Casebook itself (the demo's tokens).
-- Tokens issued before this migration say 'unrecorded': who issued them was not kept.
-- A token issued by its holder names the token it was issued with (parent_token_id): it never
-- outlives it, and revoking a token revokes every token issued with it, so provenance leads back
-- to the enrolment or the operator's token the chain started from.
ALTER TABLE api_tokens
    ADD COLUMN issued_via text,
    ADD COLUMN issued_by uuid REFERENCES staff,
    ADD COLUMN enrolment_id uuid,
    ADD COLUMN parent_token_id uuid REFERENCES api_tokens;
UPDATE api_tokens SET issued_via = 'unrecorded';
ALTER TABLE api_tokens
    ALTER COLUMN issued_via SET NOT NULL,
    ADD CONSTRAINT api_tokens_issued_via CHECK (
        issued_via IN ('unrecorded', 'operator', 'system', 'self', 'enrolment')),
    ADD CONSTRAINT api_tokens_self_issued CHECK (
        (issued_via = 'self') = (parent_token_id IS NOT NULL)
        AND (issued_via <> 'self' OR issued_by = staff_id)),
    ADD CONSTRAINT api_tokens_enrolled CHECK ((issued_via = 'enrolment') = (enrolment_id IS NOT NULL));

-- One-time enrolment codes: `cbe_<enrolment id>_<secret>`, only SHA-256 of the secret kept.
-- Redeemed once (redeemed_at and token_id set together), within hours, by the holder.
CREATE TABLE enrolments (
    enrolment_id uuid PRIMARY KEY,
    staff_id     uuid NOT NULL REFERENCES staff,
    secret_hash  bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    -- The administrator who made it; NULL for the operator at the console.
    issued_by    uuid REFERENCES staff,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    redeemed_at  timestamptz,
    token_id     uuid REFERENCES api_tokens,
    revoked_at   timestamptz,
    CHECK ((redeemed_at IS NULL) = (token_id IS NULL))
);
CREATE INDEX enrolments_staff ON enrolments (staff_id);
CREATE INDEX api_tokens_parent ON api_tokens (parent_token_id);
ALTER TABLE api_tokens
    ADD CONSTRAINT api_tokens_enrolment FOREIGN KEY (enrolment_id) REFERENCES enrolments;

-- Who deactivated an account and when (every token and enrolment of it is revoked with it).
ALTER TABLE staff
    ADD COLUMN deactivated_at timestamptz,
    ADD COLUMN deactivated_by uuid REFERENCES staff;

GRANT SELECT, INSERT, UPDATE ON enrolments TO casebook_app;
