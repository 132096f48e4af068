-- The caseload shows a risk flag while a safeguarding concern is open on the case: each row keeps
-- the ids of its open concerns (`SafeguardingConcernRaised` adds one, `SafeguardingConcernClosed`
-- takes it away). Additive: a running older version keeps working, and no row needs a rebuild,
-- since no concern was recorded before these events existed (`casebook rebuild caseload` replays
-- the log into the shadow table and switches to it, the caseload serving throughout, as ever).
ALTER TABLE caseload ADD COLUMN open_concerns uuid[] NOT NULL DEFAULT '{}';
ALTER TABLE caseload_rebuild ADD COLUMN open_concerns uuid[] NOT NULL DEFAULT '{}';
