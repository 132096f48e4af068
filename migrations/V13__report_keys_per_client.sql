-- A referral's, a connection's and a gap's id is unique within one client's record, not across
-- the log (callers choose them, and two organisations may choose alike). Keyed by id alone, two
-- records with the same connection id stopped the outcomes projection for good (every batch
-- failed on the duplicate key and was retried). They are keyed within the client now.
ALTER TABLE report_referrals DROP CONSTRAINT report_referrals_pkey,
    ADD PRIMARY KEY (rules_version, client_id, referral_id);
ALTER TABLE report_connections DROP CONSTRAINT report_connections_pkey,
    ADD PRIMARY KEY (rules_version, client_id, connection_id);
ALTER TABLE report_gaps DROP CONSTRAINT report_gaps_pkey,
    ADD PRIMARY KEY (rules_version, client_id, gap_id);
