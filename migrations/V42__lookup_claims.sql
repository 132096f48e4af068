-- Claims on a looked-up value (issue #18: a referral of someone new that carries an NHS number
-- is taken without a lock). A referral that found no record holding the person's number makes
-- one, and its append claims the number's next generation in the same statement: the number's
-- claim (a uuid made from its lookup tag, so the value is no more here than in
-- `stream_lookups`) with the generation the referral read plus one. Two referrals of one number
-- racing read the same generation; the second's claim violates the key, nothing of it is
-- written, and it looks again (finding the first's record). Every path that makes a record for
-- a number it found nobody holding claims it this way, so none of them needs a lock.
--
-- The claim names the stream it was made for, so that the erasure's statement deletes it with
-- the stream's tags: an erased person is found by nothing, not even by "was ever referred".
CREATE TABLE lookup_claims (
    claim_id   uuid NOT NULL,
    generation bigint NOT NULL CHECK (generation > 0),
    stream_id  uuid NOT NULL,
    PRIMARY KEY (claim_id, generation)
);

CREATE INDEX lookup_claims_by_stream ON lookup_claims (stream_id);

REVOKE ALL ON lookup_claims FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON lookup_claims TO casebook_app;
