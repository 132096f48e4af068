-- The few facts of a person a list of people shows (their name as registered, any correction
-- of it, and whether they were erased), found without reading the rest of their history: the
-- console's caseload names each person from these events of a page of streams at once.
CREATE INDEX events_facts_of_a_person ON events (stream_id, stream_version)
    WHERE event_type IN ('ClientRegistered', 'EntryCorrected', 'ClientErased');
