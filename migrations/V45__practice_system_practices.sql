-- A GP practice's system (a staff account of role practice_system) bound to the practice it
-- speaks for, by ODS code (`casebook staff bind-practice`): its referrals may name that
-- practice only, since GP message rules v3 write to the practice a practice system's referral
-- names. An account with no row is not bound and may name any practice, as before.
CREATE TABLE practice_system_practices (
    staff_id uuid PRIMARY KEY REFERENCES staff,
    ods_code text NOT NULL CHECK (ods_code ~ '^[A-Z][0-9]{5}$'),
    bound_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON practice_system_practices TO casebook_app;
