-- Figures of outcome rules v3 beyond v1's: each paired score's band (the ONS thresholds, the
-- UCLA groups) at baseline and follow-up; which episodes' scores were left out for want of
-- consent to evaluation; and every baseline, paired or not, so that drop-out (a baseline with
-- no follow-up) shows beside each measure. Additive: versions that do not keep them write
-- nulls, false and no rows.
ALTER TABLE report_scores ADD COLUMN baseline_band text, ADD COLUMN follow_up_band text;
ALTER TABLE report_episodes ADD COLUMN evaluation_excluded boolean NOT NULL DEFAULT false;

CREATE TABLE report_baselines (
    rules_version   integer NOT NULL,
    client_id       uuid NOT NULL,
    episode         integer NOT NULL,
    measure         text NOT NULL,
    organisation_id uuid NOT NULL,
    team_id         uuid,
    source          text NOT NULL,
    reasons         jsonb NOT NULL,
    baseline_on     date NOT NULL,
    -- A later score pairs with it.
    paired          boolean NOT NULL,
    -- Its episode has closed (unpaired and closed: a drop-out; unpaired and open: still to come).
    episode_closed  boolean NOT NULL,
    PRIMARY KEY (rules_version, client_id, episode, measure)
);
CREATE INDEX report_baselines_org ON report_baselines (rules_version, organisation_id, baseline_on);
GRANT SELECT, INSERT, UPDATE, DELETE ON report_baselines TO casebook_app;
