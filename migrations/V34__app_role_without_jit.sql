-- PostgreSQL's JIT compiler is off for the service's role (issue #17, #18). The service runs
-- short statements; JIT compiles any whose estimated cost passes `jit_above_cost`, and an
-- estimate made before a parameter is known can pass it: the freshness count behind every
-- caseload read (`bookkeeping::as_of`, the events after the read model's checkpoint) is
-- estimated at millions of rows on a 10M-event log and then walks none, yet was compiled on
-- every read, 27 to 118 ms against 0.3 ms without (BENCHMARKS.md, the console's caseload page).
-- A role setting reaches every new session of the role, through a pooler too, and needs no
-- startup option; an operator who wants JIT back for the role can `ALTER ROLE ... RESET jit`.
ALTER ROLE casebook_app SET jit = off;
