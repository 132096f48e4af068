-- A client's outcome state is the outcomes projection's own: written whole (at every batch that
-- touches the client, and once per client in a rebuild) and read back whole, never queried
-- inside. As `jsonb`, PostgreSQL parsed every state written into its binary tree (a rebuild's
-- profile ranked that among the cluster's largest costs) and printed it back to text for every
-- read; as `json` it keeps the text as sent, checked only to be JSON.
ALTER TABLE outcome_state ALTER COLUMN state TYPE json USING state::json;

-- Since V13 the primary keys of these tables begin with (rules_version, client_id), which is all
-- these indexes held: every figure row written paid for a second B-tree entry that no query
-- needed (a client's rows are found, and deleted, through the primary key). V38 dropped
-- report_referrals' twin for the same reason.
DROP INDEX report_connections_client;
DROP INDEX report_gaps_client;
