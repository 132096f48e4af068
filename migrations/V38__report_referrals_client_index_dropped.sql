-- report_referrals' primary key (rules_version, client_id, referral_id) already serves every
-- lookup by (rules_version, client_id): the second index on those two columns only cost one
-- more B-tree insert for every referral projected (issue #18, the projectors' writes).
DROP INDEX report_referrals_client;
