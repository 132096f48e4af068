-- Sign-in attempts (V20) are made by anyone who opens /console/oidc/start: each new one deletes
-- those that expired more than an hour ago, so the table holds about an hour's attempts.
GRANT DELETE ON oidc_sign_ins TO casebook_app;
