-- A client's outcome state is the outcomes projection's own: written whole (every batch that
-- touches the client, and once per client in a rebuild) and read back whole, never queried
-- inside. As `jsonb`, PostgreSQL parsed every state written into its binary tree (a rebuild's
-- profile ranked that among the cluster's largest costs) and printed it back to text for every
-- read; as `json` it keeps the text as sent, checked only to be JSON.
ALTER TABLE outcome_state ALTER COLUMN state TYPE json USING state::json;
