-- Where a redirected referral went (ReferralRedirected v2): a destination code from the
-- recording rules, `service:<id>` for a directory service, or `uncoded:<words>` for a
-- redirection recorded before destinations were coded. Rows written before this migration
-- have none until `casebook rebuild outcomes`; the reports count those as `unrecorded`.
ALTER TABLE report_referrals ADD COLUMN destination text;
