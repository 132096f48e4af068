-- Finding a record by a sealed value (issue #20: a FHIR referral matched to a known client by
-- NHS number) without storing the value in clear.
--
-- A lookup tag is a keyed hash (HMAC-SHA-256) of what the caller looks up by (the NHS number,
-- with the organisation and the purpose), under the lookup key: a random key wrapped by the
-- master key like a data key, so it never reaches the database in clear and a rotation of the
-- master key rewraps it (`casebook key rotate`). Without the master key a tag says nothing;
-- with it, a value can be checked, as the sealed field itself could be read.
CREATE TABLE lookup_keys (
    name          text PRIMARY KEY,
    -- XChaCha20-Poly1305: 24-byte nonce, 32-byte key, 16-byte tag.
    wrapped_key   bytea NOT NULL CHECK (octet_length(wrapped_key) = 72),
    master_key_id text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER lookup_keys_no_delete
    BEFORE DELETE OR TRUNCATE ON lookup_keys
    FOR EACH STATEMENT EXECUTE FUNCTION casebook_reject_change();

REVOKE ALL ON lookup_keys FROM PUBLIC;
GRANT SELECT, INSERT ON lookup_keys TO casebook_app;

-- The tags each stream carries now, written by the append that records the value (in the same
-- statement), replaced by one that changes it (a correction), and deleted by the erasure's
-- statement with the stream's data key: an erased person is found by nothing. The event store
-- stores them without knowing what they are of.
CREATE TABLE stream_lookups (
    tag       bytea NOT NULL CHECK (octet_length(tag) = 32),
    stream_id uuid NOT NULL,
    PRIMARY KEY (tag, stream_id)
);

CREATE INDEX stream_lookups_by_stream ON stream_lookups (stream_id);

REVOKE ALL ON stream_lookups FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON stream_lookups TO casebook_app;

-- A FHIR referral of a person the organisation already holds (matched by NHS number) is added
-- to their record: the ServiceRequest's id stays the referral's, and the record it went to is
-- kept here (NULL: the ServiceRequest's own id, a person new to the service).
ALTER TABLE fhir_service_requests ADD COLUMN client_id uuid;
