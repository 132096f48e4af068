-- The few facts of a person a list of people shows (their name as registered, any correction
-- of it, whether they were erased, and who holds their case), found without reading the rest
-- of their history: the console's caseload names each person from these events of a page of
-- streams at once. Built in the migration's transaction: appends wait while it is built (a few
-- seconds a million events).
CREATE INDEX events_facts_of_a_person ON events (stream_id, stream_version)
    WHERE event_type IN ('ClientRegistered', 'EntryCorrected', 'ClientErased',
                         'LinkWorkerAssigned', 'CaseTransferred');
