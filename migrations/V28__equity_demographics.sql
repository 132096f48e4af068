-- Demographics for equity reporting (issue #21 part 5).
--
-- What reports count each person by (age band, sex, gender identity, ethnic group, interpreter
-- need, GP practice, deprivation decile), one row per client: the latest `DemographicsRecorded`
-- of their record, whose `reportable` part the application writes here as it appends it. In the
-- log that part is sealed with the person's other personal data (it could single someone out
-- with the rest of the record), so projectors cannot read it; this table is the one place
-- reports read it from, and an erasure clears the row (`erased`, every figure null) in the same
-- command. It holds no names, dates of birth, postcodes or words.
CREATE TABLE equity_demographics (
    client_id          uuid PRIMARY KEY,
    organisation_id    uuid NOT NULL,
    -- projections/equity/v{n}.toml, the rules the row was derived under.
    rules_version      integer NOT NULL,
    age_band           text,
    sex                text,
    gender_identity    text,
    ethnic_group       text,
    interpreter_needed boolean,
    gp_practice        text,
    imd_decile         smallint CHECK (imd_decile BETWEEN 1 AND 10),
    -- The log position of the recording the row holds: a later one wins, an earlier one
    -- arriving late (a retry) changes nothing.
    recorded_position  bigint NOT NULL,
    erased             boolean NOT NULL DEFAULT false,
    CHECK (NOT erased OR (age_band IS NULL AND sex IS NULL AND gender_identity IS NULL
        AND ethnic_group IS NULL AND interpreter_needed IS NULL AND gp_practice IS NULL
        AND imd_decile IS NULL))
);
CREATE INDEX equity_demographics_org ON equity_demographics (organisation_id);

-- The English Indices of Deprivation 2019 (MHCLG, Open Government Licence v3.0): each LSOA
-- (2011) with its Index of Multiple Deprivation rank and decile (File 1), and a postcode to
-- LSOA lookup (ONS). Loaded by `casebook imd load`; reference data, nothing personal.
CREATE TABLE imd_lsoa_deciles (
    lsoa_code  text PRIMARY KEY,
    lsoa_name  text NOT NULL,
    imd_rank   integer NOT NULL,
    imd_decile smallint NOT NULL CHECK (imd_decile BETWEEN 1 AND 10)
);
CREATE TABLE imd_postcodes (
    -- Upper case, one space before the inward code.
    postcode  text PRIMARY KEY,
    lsoa_code text NOT NULL
);

GRANT SELECT, INSERT, UPDATE ON equity_demographics TO casebook_app;
GRANT SELECT ON imd_lsoa_deciles, imd_postcodes TO casebook_app;
