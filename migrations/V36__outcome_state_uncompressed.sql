-- A client's outcome state (a few kilobytes of JSON) is rewritten whenever a batch touches the
-- client, live and in every rebuild. PostgreSQL compressed every state over about 2 kB with
-- pglz before storing it, which a rebuild's profile showed among the cluster's largest costs.
-- A row is now compressed (or moved out of line) only when it would not fit in a page: more
-- bytes stored and logged, less CPU for each state written. Rows already stored keep their form.
ALTER TABLE outcome_state SET (toast_tuple_target = 8160);
