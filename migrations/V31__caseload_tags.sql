-- Tags usable as caseload filters: each caseload row keeps the tags its case carries (codes of
-- `projections/tags/`; `CaseTagged` adds one, `CaseUntagged` takes it away), and a GIN index
-- answers "cases carrying this tag" (`tags @> ARRAY[$tag]`). Additive: a running older version
-- keeps working, and no row needs a rebuild, since no case was tagged before these events
-- existed (a rebuild fills the column like the others).
ALTER TABLE caseload ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
ALTER TABLE caseload_rebuild ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX caseload_tags ON caseload USING gin (tags);
