-- Which of some lookup tags a stream carries, by the index, always (issue #18). The batch
-- writer asks this once per batch, in the statement that reads its clock, as a prepared
-- statement: a connection that prepared it while `stream_lookups` was nearly empty (a new
-- database, its first seconds) kept a generic plan that scanned the whole table, and went on
-- scanning it as it grew, until an analyze replanned it: a referral's cost then doubled with
-- the table's size. Planned here with sequential scans off, the look-up is an index probe per
-- tag whatever the table's size when the plan was made. (PL/pgSQL keeps its plan per session;
-- the setting applies while the function runs.)
CREATE FUNCTION casebook_carried_tags(tags bytea[]) RETURNS bytea[]
    LANGUAGE plpgsql STABLE
    SET enable_seqscan = off
AS $$
BEGIN
    RETURN ARRAY(SELECT tag FROM stream_lookups WHERE tag = ANY(tags));
END
$$;

REVOKE ALL ON FUNCTION casebook_carried_tags(bytea[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION casebook_carried_tags(bytea[]) TO casebook_app;
