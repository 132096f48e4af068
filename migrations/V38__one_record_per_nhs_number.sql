-- One record per NHS number in an organisation (issue #21): two referrals of one new person
-- racing each other (each looked the number up, found no record, and registered the person)
-- made two records. A lookup tag (V35: the number, keyed with the organisation and purpose)
-- is now held by one stream only: the append that would give a second stream the tag fails as
-- a whole, and the loser of the race is told (a FHIR referral looks again and goes to the
-- record that won).
--
-- Tags already held by more than one stream before this migration (records made by that race,
-- or imported twice) are kept, marked `shared`: the index does not cover them, and matching
-- still finds no single record for them, as before. Every other tag is one stream's.
ALTER TABLE stream_lookups ADD COLUMN shared boolean NOT NULL DEFAULT false;

UPDATE stream_lookups SET shared = true
WHERE tag IN (SELECT tag FROM stream_lookups GROUP BY tag HAVING count(*) > 1);

CREATE UNIQUE INDEX stream_lookups_one_stream_per_tag ON stream_lookups (tag) WHERE NOT shared;
