//! Reports: aggregates over the outcomes read model under one rule version, for one
//! organisation, filterable by period, team, referral source and reason. No personal data.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use projector::rules::{DisclosureRules, FactDate, PrivacyRules, Rules};

pub use breakdown::{Breakdown, BreakdownReport, ClientGroup, GroupReport};

use crate::export::{CsvFile, CsvOptions};
use crate::freshness::{AsOf, Freshness, ReadWait, as_of, snapshot};

mod breakdown;

/// What to count.
#[derive(Clone, Debug, Default)]
pub struct ReportFilter {
    /// One organisation (always, over the API); all of them on the command line.
    pub organisation_id: Option<Uuid>,
    pub rules_version: i32,
    /// From this day (inclusive).
    pub from: Option<NaiveDate>,
    /// To this day (inclusive).
    pub to: Option<NaiveDate>,
    pub team_id: Option<Uuid>,
    /// A referral source code.
    pub source: Option<String>,
    /// A referral reason (need domain) code.
    pub reason: Option<String>,
    /// A report snapshot's tag: its rows stand where `rules_version`'s would (the rules are
    /// still `rules_version`'s).
    pub snapshot_tag: Option<i32>,
    /// Only the people of one demographic group (equity reporting, `breakdown`).
    pub group: Option<ClientGroup>,
}

impl ReportFilter {
    /// The WHERE clause over a table with the usual columns, dates on `date_column`, and its
    /// parameters ($1..).
    fn clause(&self, date_column: &str) -> Where {
        self.clause_over(date_column, date_column)
    }

    /// The WHERE clause for rows that span days from `start` to `end` (null: still going),
    /// keeping those that overlap the period.
    fn clause_over(&self, start: &str, end: &str) -> Where {
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![
            Box::new(self.snapshot_tag.unwrap_or(self.rules_version)),
            Box::new(self.organisation_id),
        ];
        let mut sql =
            "rules_version = $1 AND ($2::uuid IS NULL OR organisation_id = $2)".to_owned();
        if start != end {
            sql.push_str(&format!(" AND {start} IS NOT NULL"));
        }
        // `{p}` in a condition is its parameter's placeholder.
        let mut add = |condition: &str, value: Box<dyn ToSql + Sync + Send>| {
            params.push(value);
            sql.push_str(&condition.replace("{p}", &format!("${}", params.len())));
        };
        if start == end {
            if let Some(from) = self.from {
                add(&format!(" AND {start} >= {{p}}"), Box::new(from));
            }
        } else {
            if let Some(from) = self.from {
                add(
                    &format!(" AND ({end} IS NULL OR {end} >= {{p}})"),
                    Box::new(from),
                );
            }
        }
        if let Some(to) = self.to {
            add(&format!(" AND {start} <= {{p}}"), Box::new(to));
        }
        if let Some(team) = self.team_id {
            add(" AND team_id = {p}", Box::new(team));
        }
        if let Some(source) = &self.source {
            add(" AND source = {p}", Box::new(source.clone()));
        }
        if let Some(reason) = &self.reason {
            add(" AND reasons ? {p}", Box::new(reason.clone()));
        }
        if let Some(group) = &self.group {
            let (condition, value) = group.condition();
            add(&condition, value);
        }
        Where {
            clause: sql,
            params,
        }
    }
}

/// A filter's WHERE clause over one figures table, with its parameters: the queries of a
/// report's figures, `{clause}` in their SQL standing for it.
struct Where {
    clause: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Where {
    /// The rows `sql` answers.
    async fn query(
        &self,
        client: &impl GenericClient,
        sql: &str,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let params: Vec<&(dyn ToSql + Sync)> =
            self.params.iter().map(|p| p.as_ref() as _).collect();
        client
            .query(&sql.replace("{clause}", &self.clause), &params)
            .await
    }

    /// The one row `sql` answers.
    async fn query_one(
        &self,
        client: &impl GenericClient,
        sql: &str,
    ) -> Result<Row, tokio_postgres::Error> {
        let params: Vec<&(dyn ToSql + Sync)> =
            self.params.iter().map(|p| p.as_ref() as _).collect();
        client
            .query_one(&sql.replace("{clause}", &self.clause), &params)
            .await
    }

    /// Each code `sql` answers with its count, and its share of `total`.
    async fn shares(
        &self,
        client: &impl GenericClient,
        sql: &str,
        total: i64,
    ) -> Result<Vec<Share>, tokio_postgres::Error> {
        Ok(self
            .query(client, sql)
            .await?
            .iter()
            .map(|row| {
                let count: i64 = row.get(1);
                Share {
                    code: row.get(0),
                    count: Some(count),
                    percent: Some(percent(count, total)),
                    suppressed: false,
                }
            })
            .collect())
    }
}

/// A count with its share of the total. A count from 1 to below the disclosure rule's threshold
/// is suppressed: `count` and `percent` are null and `suppressed` is true.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Share {
    /// The code counted (a source, a reason, a closure reason).
    pub code: String,
    pub count: Option<i64>,
    /// Of the total, 0 to 100, one decimal.
    pub percent: Option<f64>,
    pub suppressed: bool,
}

/// Referral volumes (a suppressed count is null).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReferralFigures {
    pub total: Option<i64>,
    /// Distinct people referred (someone referred twice counts once).
    pub people: Option<i64>,
    pub accepted: Option<i64>,
    pub declined: Option<i64>,
    pub redirected: Option<i64>,
    /// Redirected referrals by where they went: a destination code (the recording rules'),
    /// `service:<id>` for a directory service, `uncoded` for one recorded in words before
    /// destinations were coded, `unrecorded` for one counted before the figures kept it (until
    /// `casebook rebuild outcomes`); percentages are of redirected referrals. Null under
    /// rules that do not count them (v1, v2).
    pub by_destination: Option<Vec<Share>>,
    /// The name of each destination in `by_destination`: the recording rules' name for a
    /// code, the directory's for a service.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub destination_names: BTreeMap<String, String>,
    pub by_source: Vec<Share>,
    /// A referral with several reasons counts once for each; percentages are of referrals.
    pub by_reason: Vec<Share>,
    /// Referrals with a first contact after acceptance.
    pub contacted: Option<i64>,
    pub mean_days_to_first_contact: Option<f64>,
    pub median_days_to_first_contact: Option<f64>,
}

/// Episodes of support (a suppressed count is null).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EpisodeFigures {
    /// Episodes started (accepted) in the period; the same as `started`.
    pub episodes: Option<i64>,
    /// Episodes started (accepted) in the period.
    pub started: Option<i64>,
    /// Episodes open on any day of the period (accepted by its end, not closed before its start).
    pub active: Option<i64>,
    /// Distinct people with an episode open on any day of the period.
    pub people: Option<i64>,
    /// Contacts: under rules that date facts, those on a day of the period; otherwise those of
    /// the episodes started in it.
    pub contacts: Option<i64>,
    /// Contacts per episode: under rules that date facts, the period's contacts over its active
    /// episodes; otherwise the mean over the episodes started in it.
    pub mean_contacts: Option<f64>,
    pub appointments_attended: Option<i64>,
    pub appointments_not_attended: Option<i64>,
    /// Not attended, of appointments attended or not, 0 to 100.
    pub did_not_attend_percent: Option<f64>,
    pub closed: Option<i64>,
    pub closed_by_reason: Vec<Share>,
}

/// Baseline to follow-up change for one measure. When `paired` is suppressed every figure is
/// null; a suppressed category count nulls its percentage too.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MeasureFigures {
    pub measure: String,
    /// Which way is better: `higher_is_better` or `lower_is_better`.
    pub direction: String,
    /// People with a baseline and a follow-up (by the follow-up's day).
    pub paired: Option<i64>,
    pub mean_baseline: Option<f64>,
    pub mean_follow_up: Option<f64>,
    /// Follow-up minus baseline, as scored.
    pub mean_change: Option<f64>,
    /// The mean change signed so that positive is better, whichever way the measure runs.
    pub mean_improvement: Option<f64>,
    pub improved: Option<i64>,
    pub no_change: Option<i64>,
    pub worse: Option<i64>,
    pub improved_percent: Option<f64>,
    pub no_change_percent: Option<f64>,
    pub worse_percent: Option<f64>,
    /// Baselines taken in the period (by their day), paired or not; null under rules that do
    /// not keep unpaired baselines (v1, v2).
    pub baselines: Option<i64>,
    /// Of those, in episodes that closed with no follow-up: drop-out.
    pub no_follow_up: Option<i64>,
    /// Of those, in episodes still open with no follow-up yet.
    pub awaiting_follow_up: Option<i64>,
    /// Paired people by the measure's bands (the ONS thresholds, the UCLA groups, each answer
    /// of the ONS loneliness question), at baseline and at follow-up; empty for a measure with
    /// no bands.
    pub bands: Vec<BandFigures>,
}

/// Paired people in one band of a measure.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BandFigures {
    pub code: String,
    pub baseline: Option<i64>,
    pub follow_up: Option<i64>,
    /// Of the paired, at follow-up, 0 to 100.
    pub follow_up_percent: Option<f64>,
}

/// People across the measures.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PeopleFigures {
    /// Distinct people with at least one paired measure (by the follow-up's day).
    pub paired: Option<i64>,
    /// Of those, people improved on at least one measure.
    pub improved_on_any: Option<i64>,
    pub improved_on_any_percent: Option<f64>,
    /// Whose scores count, under the rule version: `ignore` (everyone) or `exclude_withdrawn`
    /// (not those whose consent to evaluation was withdrawn).
    pub evaluation_consent: String,
    /// People with an episode in the period whose scores were left out under that rule.
    pub excluded_without_evaluation_consent: Option<i64>,
}

/// Which small-number rule a report was published under.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Suppression {
    /// The personal data rules version (`projections/privacy/v{n}.toml`); absent when the report
    /// was not suppressed (library use only: the API always suppresses).
    pub rules_version: Option<i32>,
    /// Counts from 1 to below this are suppressed.
    pub below: i64,
    /// How many cells were suppressed.
    pub cells: usize,
}

/// The outcome report.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutcomeReport {
    /// The rule version the figures were made under.
    pub rules_version: i32,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub team_id: Option<Uuid>,
    pub source: Option<String>,
    pub reason: Option<String>,
    pub referrals: ReferralFigures,
    pub episodes: EpisodeFigures,
    pub measures: Vec<MeasureFigures>,
    pub people: PeopleFigures,
    /// The small-number suppression applied.
    pub suppression: Suppression,
    /// What the figures are as of: the last event of the log the rule version's figures have
    /// applied, when it was recorded, and how many events they have still to apply.
    pub as_of: AsOf,
}

fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The names of the destinations counted: a code's from the latest recording rules, a
/// service's from the directory.
async fn destination_names(
    client: &impl GenericClient,
    counted: &[Share],
) -> Result<BTreeMap<String, String>, tokio_postgres::Error> {
    let recording = projector::rules::RecordingRules::current();
    let mut names = BTreeMap::new();
    let mut services = Vec::new();
    for share in counted {
        if let Some(id) = share.code.strip_prefix("service:") {
            if let Ok(id) = id.parse::<Uuid>() {
                services.push(id);
            }
        } else if let Some(name) = recording.destination_name(&share.code) {
            names.insert(share.code.clone(), name.to_owned());
        }
    }
    if !services.is_empty() {
        let rows = client
            .query(
                "SELECT service_id, name FROM directory_services WHERE service_id = ANY($1)",
                &[&services],
            )
            .await?;
        for row in rows {
            let id: Uuid = row.get(0);
            names.insert(format!("service:{id}"), row.get(1));
        }
    }
    Ok(names)
}

/// The outcome report under a filter.
///
/// # Errors
/// A database failure.
pub async fn outcome_report(
    client: &impl GenericClient,
    filter: &ReportFilter,
) -> Result<OutcomeReport, tokio_postgres::Error> {
    // Which date each figure counts by, and which figures there are, under the figures' rule
    // version.
    let rules = Rules::load(filter.rules_version).ok();
    // Referrals, by the day they were received.
    let on = filter.clause("received_on");
    let row = on.query_one(client, "SELECT count(*), count(*) FILTER (WHERE outcome = 'accepted'), \
                 count(*) FILTER (WHERE outcome = 'declined'), count(*) FILTER (WHERE outcome = 'redirected'), \
                 count(days_to_first_contact), avg(days_to_first_contact)::float8, \
                 percentile_cont(0.5) WITHIN GROUP (ORDER BY days_to_first_contact)::float8, \
                 count(DISTINCT client_id) \
                 FROM report_referrals WHERE {clause}")
        .await?;
    let total: i64 = row.get(0);
    let by_source = on.shares(client, "SELECT source, count(*) FROM report_referrals WHERE {clause} GROUP BY source ORDER BY count(*) DESC, source", total)
    .await?;
    let by_reason = on
        .shares(
            client,
            "SELECT r, count(*) FROM report_referrals, jsonb_array_elements_text(reasons) AS r \
             WHERE {clause} GROUP BY r ORDER BY count(*) DESC, r",
            total,
        )
        .await?;
    let redirected: i64 = row.get(3);
    let (by_destination, destination_names) = if rules
        .as_ref()
        .is_some_and(|r| r.figures.redirections)
    {
        let by_destination = on.shares(client, "SELECT coalesce(destination, 'unrecorded'), count(*) FROM report_referrals                  WHERE {clause} AND outcome = 'redirected' GROUP BY 1 ORDER BY count(*) DESC, 1", redirected)
        .await?;
        let names = destination_names(client, &by_destination).await?;
        (Some(by_destination), names)
    } else {
        (None, BTreeMap::new())
    };
    let referrals = ReferralFigures {
        total: Some(total),
        people: Some(row.get(7)),
        accepted: row.get(1),
        declined: row.get(2),
        redirected: Some(redirected),
        by_destination,
        destination_names,
        by_source,
        by_reason,
        contacted: row.get(4),
        mean_days_to_first_contact: row.get::<_, Option<f64>>(5).map(round2),
        median_days_to_first_contact: row.get(6),
    };

    // Episodes started, by the day they were accepted; active, by overlapping the period;
    // closures by the day they closed.
    let on = filter.clause("accepted_on");
    let row = on
        .query_one(
            client,
            "SELECT count(*), avg(contacts)::float8, coalesce(sum(attended), 0)::int8, \
                 coalesce(sum(did_not_attend), 0)::int8, coalesce(sum(contacts), 0)::int8 \
                 FROM report_episodes WHERE {clause}",
        )
        .await?;
    let started: i64 = row.get(0);
    let (mut attended, mut not_attended): (i64, i64) = (row.get(2), row.get(3));
    let mut contacts: i64 = row.get(4);
    let mut mean_contacts = row.get::<_, Option<f64>>(1).map(round2);
    let on = filter.clause_over("accepted_on", "closed_on");
    let row = on
        .query_one(
            client,
            "SELECT count(*), count(DISTINCT client_id), \
                 count(DISTINCT client_id) FILTER (WHERE evaluation_excluded) \
                 FROM report_episodes WHERE {clause}",
        )
        .await?;
    let (active, people_active, excluded): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let dating = rules.as_ref().map(|r| r.dating).unwrap_or_default();
    if dating.dates_facts() {
        // Appointments and contacts by their own day.
        let on = filter.clause("on_day");
        let row = on
            .query_one(
                client,
                "SELECT count(*) FILTER (WHERE kind = 'attended'), \
                     count(*) FILTER (WHERE kind = 'not_attended'), \
                     count(*) FILTER (WHERE kind = 'contact') FROM report_activity WHERE {clause}",
            )
            .await?;
        if dating.appointments == FactDate::Own {
            (attended, not_attended) = (row.get(0), row.get(1));
        }
        if dating.contacts == FactDate::Own {
            contacts = row.get(2);
            mean_contacts = (active > 0).then(|| round2(contacts as f64 / active as f64));
        }
    }
    let on = filter.clause("closed_on");
    let closed: i64 = on
        .query_one(
            client,
            "SELECT count(*) FROM report_episodes WHERE {clause} AND closed_on IS NOT NULL",
        )
        .await?
        .get(0);
    let closed_by_reason = on.shares(client, "SELECT closure_reason, count(*) FROM report_episodes WHERE {clause} AND closed_on IS NOT NULL \
             GROUP BY closure_reason ORDER BY count(*) DESC, closure_reason", closed)
    .await?;
    let episodes = EpisodeFigures {
        episodes: Some(started),
        started: Some(started),
        active: Some(active),
        people: Some(people_active),
        contacts: Some(contacts),
        mean_contacts,
        appointments_attended: Some(attended),
        appointments_not_attended: Some(not_attended),
        did_not_attend_percent: (attended + not_attended > 0)
            .then(|| percent(not_attended, attended + not_attended)),
        closed: Some(closed),
        closed_by_reason,
    };

    // Paired scores, by the day of the follow-up.
    let on = filter.clause("follow_up_on");
    let measure_rules = |name: &str| {
        rules
            .as_ref()
            .and_then(|r| r.measures.iter().find(|m| m.name == name))
    };
    let mut measures: BTreeMap<String, MeasureFigures> = BTreeMap::new();
    let blank = |name: &str| MeasureFigures {
        measure: name.to_owned(),
        direction: match measure_rules(name).map(|m| m.direction) {
            Some(projector::rules::Direction::LowerIsBetter) => "lower_is_better",
            _ => "higher_is_better",
        }
        .to_owned(),
        paired: Some(0),
        mean_baseline: None,
        mean_follow_up: None,
        mean_change: None,
        mean_improvement: None,
        improved: Some(0),
        no_change: Some(0),
        worse: Some(0),
        improved_percent: None,
        no_change_percent: None,
        worse_percent: None,
        baselines: None,
        no_follow_up: None,
        awaiting_follow_up: None,
        bands: Vec::new(),
    };
    for row in on.query(client, "SELECT measure, count(*), avg(baseline)::float8, avg(follow_up)::float8, \
                 avg(follow_up - baseline)::float8, count(*) FILTER (WHERE category = 'improved'), \
                 count(*) FILTER (WHERE category = 'no_change'), count(*) FILTER (WHERE category = 'worse') \
                 FROM report_scores WHERE {clause} GROUP BY measure ORDER BY measure")
        .await?
    {
        let name: String = row.get(0);
        let paired: i64 = row.get(1);
        let (improved, no_change, worse): (i64, i64, i64) = (row.get(5), row.get(6), row.get(7));
        let change: f64 = row.get(4);
        let m = measures.entry(name.clone()).or_insert_with(|| blank(&name));
        m.paired = Some(paired);
        m.mean_baseline = Some(round2(row.get(2)));
        m.mean_follow_up = Some(round2(row.get(3)));
        m.mean_change = Some(round2(change));
        m.mean_improvement = Some(round2(match measure_rules(&name).map(|r| r.direction) {
            Some(projector::rules::Direction::LowerIsBetter) => -change,
            _ => change,
        }));
        m.improved = Some(improved);
        m.no_change = Some(no_change);
        m.worse = Some(worse);
        m.improved_percent = Some(percent(improved, paired));
        m.no_change_percent = Some(percent(no_change, paired));
        m.worse_percent = Some(percent(worse, paired));
    }
    // Paired people by band, at baseline and at follow-up.
    for row in on
        .query(
            client,
            "SELECT measure, baseline_band, count(*), 0::int8 FROM report_scores \
                 WHERE {clause} AND baseline_band IS NOT NULL GROUP BY measure, baseline_band \
                 UNION ALL SELECT measure, follow_up_band, 0::int8, count(*) FROM report_scores \
                 WHERE {clause} AND follow_up_band IS NOT NULL GROUP BY measure, follow_up_band",
        )
        .await?
    {
        let name: String = row.get(0);
        let code: String = row.get(1);
        let m = measures.entry(name.clone()).or_insert_with(|| blank(&name));
        let band = match m.bands.iter_mut().find(|b| b.code == code) {
            Some(band) => band,
            None => {
                m.bands.push(BandFigures {
                    code,
                    baseline: Some(0),
                    follow_up: Some(0),
                    follow_up_percent: None,
                });
                m.bands.last_mut().expect("just pushed")
            }
        };
        band.baseline = Some(band.baseline.unwrap_or(0) + row.get::<_, i64>(2));
        band.follow_up = Some(band.follow_up.unwrap_or(0) + row.get::<_, i64>(3));
    }
    for m in measures.values_mut() {
        // In the rule file's order of bands.
        let order: Vec<String> = measure_rules(&m.measure)
            .map(|r| r.bands.iter().map(|b| b.code.clone()).collect())
            .unwrap_or_default();
        for code in &order {
            if !m.bands.iter().any(|b| &b.code == code) {
                m.bands.push(BandFigures {
                    code: code.clone(),
                    baseline: Some(0),
                    follow_up: Some(0),
                    follow_up_percent: None,
                });
            }
        }
        m.bands.sort_by_key(|b| {
            order
                .iter()
                .position(|c| *c == b.code)
                .unwrap_or(usize::MAX)
        });
        let paired = m.paired.unwrap_or(0);
        for band in &mut m.bands {
            band.follow_up_percent =
                (paired > 0).then(|| percent(band.follow_up.unwrap_or(0), paired));
        }
    }
    // Baselines, paired or not, by their day (rules that keep them).
    if rules.as_ref().is_some_and(|r| r.figures.baselines) {
        let on = filter.clause("baseline_on");
        for m in measures.values_mut() {
            m.baselines = Some(0);
            m.no_follow_up = Some(0);
            m.awaiting_follow_up = Some(0);
        }
        for row in on
            .query(
                client,
                "SELECT measure, count(*), count(*) FILTER (WHERE NOT paired AND episode_closed), \
                     count(*) FILTER (WHERE NOT paired AND NOT episode_closed) \
                     FROM report_baselines WHERE {clause} GROUP BY measure",
            )
            .await?
        {
            let name: String = row.get(0);
            let m = measures.entry(name.clone()).or_insert_with(|| blank(&name));
            m.baselines = Some(row.get(1));
            m.no_follow_up = Some(row.get(2));
            m.awaiting_follow_up = Some(row.get(3));
        }
    }
    let measures: Vec<MeasureFigures> = measures.into_values().collect();
    // People across the measures.
    let row = on
        .query_one(
            client,
            "SELECT count(DISTINCT client_id), \
                 count(DISTINCT client_id) FILTER (WHERE category = 'improved') \
                 FROM report_scores WHERE {clause}",
        )
        .await?;
    let (paired_people, improved_on_any): (i64, i64) = (row.get(0), row.get(1));
    let consent = rules
        .as_ref()
        .map(|r| r.figures.evaluation_consent)
        .unwrap_or_default();
    let people = PeopleFigures {
        paired: Some(paired_people),
        improved_on_any: Some(improved_on_any),
        improved_on_any_percent: (paired_people > 0)
            .then(|| percent(improved_on_any, paired_people)),
        evaluation_consent: consent.code().to_owned(),
        excluded_without_evaluation_consent: Some(excluded),
    };
    // A snapshot's figures are as of its own moment (see the snapshot), not a read model's.
    let as_of = match filter.snapshot_tag {
        Some(_) => AsOf::default(),
        None => as_of(client, &[&projector::outcomes_name(filter.rules_version)]).await?,
    };
    Ok(OutcomeReport {
        rules_version: filter.rules_version,
        from: filter.from,
        to: filter.to,
        team_id: filter.team_id,
        source: filter.source.clone(),
        reason: filter.reason.clone(),
        referrals,
        episodes,
        measures,
        people,
        suppression: Suppression::default(),
        as_of,
    })
}

/// Gaps by need, area, month and reason.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GapCount {
    pub need: String,
    /// The area: its code under rules that code areas (`projections/areas/`), as typed
    /// otherwise.
    pub area: String,
    /// The area's name, under rules that code areas.
    pub area_name: Option<String>,
    /// The first day of the month.
    pub month: NaiveDate,
    pub reason: String,
    /// Null when suppressed (1 to below the disclosure threshold).
    pub count: Option<i64>,
}

/// What came of onward connections, per service and need.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConnectionCount {
    pub service_id: Uuid,
    /// Its name in the directory.
    pub service_name: Option<String>,
    pub need: String,
    /// Counts are null when suppressed (1 to below the disclosure threshold); the mean wait is
    /// null when the waiting list count is.
    pub made: Option<i64>,
    pub not_taken_up: Option<i64>,
    pub waiting_list: Option<i64>,
    pub declined: Option<i64>,
    pub mean_waiting_weeks: Option<f64>,
    /// What the service itself answered (its staff, on Casebook): accepted, declined, and of
    /// those accepted, the people who started with it.
    pub accepted_by_service: Option<i64>,
    pub declined_by_service: Option<i64>,
    pub started_with_service: Option<i64>,
}

/// The directory's capacity now for one need in one area: how many listed services meet it,
/// and how many of those take referrals, have a waiting list, or do not (closed to referrals,
/// inactive or temporarily closed at source).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CapacityCount {
    pub need: String,
    /// The area the service covers, coded as the gaps are.
    pub area: String,
    pub area_name: Option<String>,
    pub services: i64,
    pub open: i64,
    pub waiting_list: i64,
    pub not_taking_referrals: i64,
    pub mean_waiting_weeks: Option<f64>,
}

/// Where services are missing.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GapReport {
    pub rules_version: i32,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub gaps: Vec<GapCount>,
    pub connections: Vec<ConnectionCount>,
    /// The shared directory as it is now (not filtered by period or team). Counts of services,
    /// not people: never suppressed.
    pub capacity: Vec<CapacityCount>,
    /// The small-number suppression applied to gaps and connections.
    pub suppression: Suppression,
    /// What the report is as of (of the figures and the directory, the one further behind).
    pub as_of: AsOf,
}

/// The service-gap report (source and reason filters do not apply to gaps).
///
/// # Errors
/// A database failure.
pub async fn gap_report(
    client: &impl GenericClient,
    filter: &ReportFilter,
) -> Result<GapReport, tokio_postgres::Error> {
    let base = ReportFilter {
        source: None,
        reason: None,
        ..filter.clone()
    };
    let area_rules = Rules::load(filter.rules_version)
        .ok()
        .and_then(|rules| rules.area_rules);
    let area_name = |area: String| -> Option<String> {
        let areas = area_rules.as_ref()?;
        Some(match area.strip_prefix("uncoded:") {
            Some(typed) => typed.to_owned(),
            None => areas
                .areas
                .iter()
                .find(|a| a.code == area)
                .map_or(area.clone(), |a| a.name.clone()),
        })
    };
    let on = base.clause("recorded_on");
    let gaps = on
        .query(
            client,
            "SELECT need, area, date_trunc('month', recorded_on)::date AS month, reason, count(*) \
                 FROM report_gaps WHERE {clause} GROUP BY need, area, month, reason \
                 ORDER BY month, need, area, reason",
        )
        .await?
        .iter()
        .map(|row| GapCount {
            need: row.get(0),
            area_name: area_name(row.get(1)),
            area: row.get(1),
            month: row.get(2),
            reason: row.get(3),
            count: Some(row.get(4)),
        })
        .collect();
    let on = base.clause("made_on");
    let connections = on
        .query(
            client,
            "SELECT c.service_id, c.need, count(*), \
                 count(*) FILTER (WHERE outcome = 'not_taken_up'), \
                 count(*) FILTER (WHERE outcome = 'waiting_list'), \
                 count(*) FILTER (WHERE outcome IN ('declined', 'not_eligible', 'service_full')), \
                 avg(c.waiting_weeks)::float8, min(d.name), \
                 count(*) FILTER (WHERE c.service_answer = 'accepted'), \
                 count(*) FILTER (WHERE c.service_answer = 'declined'), \
                 count(*) FILTER (WHERE c.started) \
                 FROM (SELECT * FROM report_connections WHERE {clause}) c \
                 LEFT JOIN directory_services d ON d.service_id = c.service_id \
                 GROUP BY c.service_id, c.need ORDER BY c.service_id, c.need",
        )
        .await?
        .iter()
        .map(|row| ConnectionCount {
            service_id: row.get(0),
            service_name: row.get(7),
            need: row.get(1),
            made: Some(row.get(2)),
            not_taken_up: Some(row.get(3)),
            waiting_list: Some(row.get(4)),
            declined: Some(row.get(5)),
            mean_waiting_weeks: row.get::<_, Option<f64>>(6).map(round2),
            accepted_by_service: Some(row.get(8)),
            declined_by_service: Some(row.get(9)),
            started_with_service: Some(row.get(10)),
        })
        .collect();
    // The directory's capacity; under rules that code areas, coded as the gaps are, so that
    // capacity and gaps meet on one key.
    let capacity = match &area_rules {
        Some(areas) => coded_capacity(client, areas).await?,
        None => typed_capacity(client).await?,
    };
    let figures = projector::outcomes_name(filter.rules_version);
    let as_of = as_of(client, &[&figures, projector::DIRECTORY]).await?;
    Ok(GapReport {
        rules_version: filter.rules_version,
        from: filter.from,
        to: filter.to,
        gaps,
        connections,
        capacity,
        suppression: Suppression::default(),
        as_of,
    })
}

/// The directory's capacity by need and area as the directory lists them.
async fn typed_capacity(
    client: &impl GenericClient,
) -> Result<Vec<CapacityCount>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT need, area, count(*), \
         count(*) FILTER (WHERE availability = 'open' AND status = 'active'), \
         count(*) FILTER (WHERE availability = 'waiting_list' AND status = 'active'), \
         count(*) FILTER (WHERE availability = 'closed' OR status <> 'active'), \
         avg(waiting_weeks) FILTER (WHERE availability = 'waiting_list')::float8 \
         FROM directory_services, unnest(needs) AS need, unnest(areas) AS area \
         WHERE NOT withdrawn GROUP BY need, area ORDER BY need, area",
            &[],
        )
        .await?
        .iter()
        .map(|row| CapacityCount {
            need: row.get(0),
            area_name: None,
            area: row.get(1),
            services: row.get(2),
            open: row.get(3),
            waiting_list: row.get(4),
            not_taking_referrals: row.get(5),
            mean_waiting_weeks: row.get::<_, Option<f64>>(6).map(round2),
        })
        .collect())
}

/// The directory's capacity by need and area code: a service counts once in an area however
/// many of its listed areas mean that place ("Coleford" and "BA3").
async fn coded_capacity(
    client: &impl GenericClient,
    areas: &projector::rules::AreaRules,
) -> Result<Vec<CapacityCount>, tokio_postgres::Error> {
    struct Cell {
        row: CapacityCount,
        services: std::collections::BTreeSet<Uuid>,
        waited: f64,
    }
    let mut cells: BTreeMap<(String, String), Cell> = BTreeMap::new();
    for row in client
        .query(
            "SELECT DISTINCT service_id, need, area, availability, status, waiting_weeks \
             FROM directory_services, unnest(needs) AS need, unnest(areas) AS area \
             WHERE NOT withdrawn",
            &[],
        )
        .await?
    {
        let service: Uuid = row.get(0);
        let need: String = row.get(1);
        let (code, name) = areas.code(row.get::<_, &str>(2));
        let availability: String = row.get(3);
        let status: String = row.get(4);
        let weeks: Option<i32> = row.get(5);
        let cell = cells
            .entry((need.clone(), code.clone()))
            .or_insert_with(|| Cell {
                row: CapacityCount {
                    need,
                    area: code,
                    area_name: Some(name),
                    services: 0,
                    open: 0,
                    waiting_list: 0,
                    not_taking_referrals: 0,
                    mean_waiting_weeks: None,
                },
                services: std::collections::BTreeSet::new(),
                waited: 0.0,
            });
        if !cell.services.insert(service) {
            continue;
        }
        cell.row.services += 1;
        let active = status == "active";
        match availability.as_str() {
            "open" if active => cell.row.open += 1,
            "waiting_list" if active => {
                cell.row.waiting_list += 1;
                cell.waited += f64::from(weeks.unwrap_or(0));
            }
            _ => {}
        }
        if availability == "closed" || !active {
            cell.row.not_taking_referrals += 1;
        }
    }
    Ok(cells
        .into_values()
        .map(|mut cell| {
            cell.row.mean_waiting_weeks = (cell.row.waiting_list > 0)
                .then(|| round2(cell.waited / cell.row.waiting_list as f64));
            cell.row
        })
        .collect())
}

/// One figure that differs between two rule versions.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Difference {
    /// Where in the report, e.g. `measures.wemwbs.improved`.
    pub figure: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
}

/// Two versions' reports side by side, with what differs.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    pub a: OutcomeReport,
    pub b: OutcomeReport,
    pub differences: Vec<Difference>,
    /// Of `a` and `b`, the one further behind the log.
    pub as_of: AsOf,
}

/// Every number of a report by a readable path (lists of named things keyed by their name).
fn figures(value: &Value, path: &str, out: &mut BTreeMap<String, f64>) {
    match value {
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.insert(path.to_owned(), x);
            }
        }
        Value::Object(fields) => {
            for (key, v) in fields {
                if key == "rules_version" || key == "as_of" {
                    continue;
                }
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                figures(v, &child, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let name = item
                    .get("measure")
                    .or_else(|| item.get("code"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| i.to_string());
                figures(item, &format!("{path}.{name}"), out);
            }
        }
        _ => {}
    }
}

/// A report that could not be read as figures: its serialisation failed, a fault of this
/// build (never of the caller), which must not pass for a report with no figures.
#[derive(Debug, thiserror::Error)]
#[error("a report could not be read as figures: {0}")]
pub struct FiguresError(#[from] serde_json::Error);

/// Every number of `report` (anything serialisable as a report is) by a readable path.
fn numbers_of(report: &impl Serialize) -> Result<BTreeMap<String, f64>, FiguresError> {
    let mut out = BTreeMap::new();
    figures(&serde_json::to_value(report)?, "", &mut out);
    Ok(out)
}

/// Every number of a report by a readable path (`episodes.closed`, `measures.wemwbs.paired`,
/// `referrals.by_source.gp.count`), leaving out what it is as of.
///
/// # Errors
/// [`FiguresError`] when the report does not serialise.
pub fn numbers(report: &OutcomeReport) -> Result<BTreeMap<String, f64>, FiguresError> {
    numbers_of(report)
}

/// Compares two reports figure by figure.
///
/// # Errors
/// [`FiguresError`] when either report does not serialise.
pub fn compare(a: OutcomeReport, b: OutcomeReport) -> Result<Comparison, FiguresError> {
    let left = numbers_of(&a)?;
    let right = numbers_of(&b)?;
    let mut names: Vec<&String> = left.keys().chain(right.keys()).collect();
    names.sort();
    names.dedup();
    let differences = names
        .into_iter()
        .filter_map(|name| {
            let (x, y) = (left.get(name).copied(), right.get(name).copied());
            (x != y).then(|| Difference {
                figure: name.clone(),
                a: x,
                b: y,
            })
        })
        .collect();
    let as_of = a.as_of.older(b.as_of);
    Ok(Comparison {
        a,
        b,
        differences,
        as_of,
    })
}

/// Applies small-number suppression to counts of people.
struct Suppressor<'a> {
    rules: &'a DisclosureRules,
    cells: usize,
}

impl Suppressor<'_> {
    /// Nulls a count the rule suppresses; says whether it did.
    fn count(&mut self, count: &mut Option<i64>) -> bool {
        if count.is_some_and(|n| self.rules.suppresses(n)) {
            *count = None;
            self.cells += 1;
            true
        } else {
            false
        }
    }

    /// Counts that add up to a shown total (a measure's categories, its bands), each with its
    /// percentage: all withheld with their total, else each suppressed on its own, and with
    /// the complementary rule a lone suppressed cell takes the smallest other shown one.
    fn cells_of(
        &mut self,
        cells: &mut [(&mut Option<i64>, &mut Option<f64>)],
        withheld: bool,
        complementary: bool,
    ) {
        for (count, percent) in cells.iter_mut() {
            if withheld {
                **count = None;
                **percent = None;
            } else if self.count(count) {
                **percent = None;
            }
        }
        if withheld || !complementary {
            return;
        }
        // Suppressed here: counted as null while the others are shown.
        let suppressed = cells.iter().filter(|(count, _)| count.is_none()).count();
        if suppressed != 1 {
            return;
        }
        if let Some((count, percent)) = cells
            .iter_mut()
            .filter(|(count, _)| count.is_some_and(|n| n > 0))
            .min_by_key(|(count, _)| **count)
        {
            **count = None;
            **percent = None;
            self.cells += 1;
        }
    }

    fn shares(&mut self, shares: &mut [Share]) {
        for share in shares {
            if self.count(&mut share.count) {
                share.percent = None;
                share.suppressed = true;
            }
        }
    }

    /// The cells of a breakdown of a total that is shown: with the complementary rule, a lone
    /// suppressed cell takes the smallest other shown cell with it, so neither can be worked
    /// out by subtraction.
    fn partition(&mut self, shares: &mut [Share], total: Option<i64>) {
        self.shares(shares);
        let lone = shares.iter().filter(|s| s.suppressed).count() == 1;
        if !(self.rules.complementary && lone && total.is_some()) {
            return;
        }
        if let Some(smallest) = shares
            .iter_mut()
            .filter(|s| !s.suppressed && s.count.is_some_and(|n| n > 0))
            .min_by_key(|s| s.count)
        {
            smallest.count = None;
            smallest.percent = None;
            smallest.suppressed = true;
            self.cells += 1;
        }
    }
}

/// Suppresses every count of people from 1 to below the rule's threshold (see
/// `projections/privacy/`): counts, their percentages, and the means of a suppressed group.
pub fn suppress_outcomes(report: &mut OutcomeReport, rules: &PrivacyRules) {
    let mut s = Suppressor {
        rules: &rules.disclosure,
        cells: 0,
    };
    let r = &mut report.referrals;
    if s.count(&mut r.total) {
        r.mean_days_to_first_contact = None;
        r.median_days_to_first_contact = None;
    }
    s.count(&mut r.accepted);
    s.count(&mut r.declined);
    s.count(&mut r.redirected);
    if let Some(by_destination) = &mut r.by_destination {
        s.partition(by_destination, r.redirected);
    }
    if s.count(&mut r.contacted) {
        r.mean_days_to_first_contact = None;
        r.median_days_to_first_contact = None;
    }
    s.partition(&mut r.by_source, r.total);
    // A referral counts once for each of its reasons: those cells do not add up to the total.
    s.shares(&mut r.by_reason);
    let e = &mut report.episodes;
    let started = s.count(&mut e.started);
    s.count(&mut e.episodes);
    let active = s.count(&mut e.active);
    let contacts = s.count(&mut e.contacts);
    // The mean is over the episodes it divides by.
    if contacts || started || active {
        e.mean_contacts = None;
    }
    let attended = s.count(&mut e.appointments_attended);
    let not_attended = s.count(&mut e.appointments_not_attended);
    if attended || not_attended {
        e.did_not_attend_percent = None;
    }
    s.count(&mut e.closed);
    s.partition(&mut e.closed_by_reason, e.closed);
    s.count(&mut r.people);
    s.count(&mut e.people);
    let complementary = rules.disclosure.complementary && rules.disclosure.complementary_measures;
    for m in &mut report.measures {
        // A suppressed pair count withholds every figure of the measure.
        let withheld = s.count(&mut m.paired);
        if withheld {
            m.mean_baseline = None;
            m.mean_follow_up = None;
            m.mean_change = None;
            m.mean_improvement = None;
        }
        let mut categories = [
            (&mut m.improved, &mut m.improved_percent),
            (&mut m.no_change, &mut m.no_change_percent),
            (&mut m.worse, &mut m.worse_percent),
        ];
        s.cells_of(&mut categories, withheld, complementary);
        // Bands partition the paired people twice: at baseline, and at follow-up.
        let mut at_baseline: Vec<(&mut Option<i64>, &mut Option<f64>)> = Vec::new();
        let mut unused: Vec<Option<f64>> = vec![None; m.bands.len()];
        let mut at_follow_up: Vec<(&mut Option<i64>, &mut Option<f64>)> = Vec::new();
        for (band, spare) in m.bands.iter_mut().zip(unused.iter_mut()) {
            at_baseline.push((&mut band.baseline, spare));
            at_follow_up.push((&mut band.follow_up, &mut band.follow_up_percent));
        }
        s.cells_of(&mut at_baseline, withheld, complementary);
        s.cells_of(&mut at_follow_up, withheld, complementary);
        // Baselines and what became of them: a suppressed total withholds its parts.
        if s.count(&mut m.baselines) {
            m.no_follow_up = None;
            m.awaiting_follow_up = None;
        } else {
            s.count(&mut m.no_follow_up);
            s.count(&mut m.awaiting_follow_up);
        }
    }
    let p = &mut report.people;
    if s.count(&mut p.paired) {
        p.improved_on_any = None;
        p.improved_on_any_percent = None;
    } else if s.count(&mut p.improved_on_any) {
        p.improved_on_any_percent = None;
    }
    s.count(&mut p.excluded_without_evaluation_consent);
    report.suppression = Suppression {
        rules_version: Some(rules.version),
        below: rules.disclosure.suppress_below,
        cells: s.cells,
    };
}

/// Suppresses small counts of people in the gap report (gaps and connections; the directory's
/// capacity counts services, not people).
pub fn suppress_gaps(report: &mut GapReport, rules: &PrivacyRules) {
    let mut s = Suppressor {
        rules: &rules.disclosure,
        cells: 0,
    };
    for gap in &mut report.gaps {
        s.count(&mut gap.count);
    }
    for c in &mut report.connections {
        s.count(&mut c.made);
        s.count(&mut c.not_taken_up);
        if s.count(&mut c.waiting_list) {
            c.mean_waiting_weeks = None;
        }
        s.count(&mut c.declined);
        s.count(&mut c.accepted_by_service);
        s.count(&mut c.declined_by_service);
        s.count(&mut c.started_with_service);
    }
    report.suppression = Suppression {
        rules_version: Some(rules.version),
        below: rules.disclosure.suppress_below,
        cells: s.cells,
    };
}

/// What a reader asks a report for: a period, and optionally a team, source and reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportQuery {
    /// From this day (inclusive).
    pub from: Option<NaiveDate>,
    /// To this day (inclusive).
    pub to: Option<NaiveDate>,
    pub team_id: Option<Uuid>,
    pub source: Option<domain::ReferralSource>,
    pub reason: Option<domain::NeedDomain>,
    /// Answer only once the figures have applied the event at this log position.
    pub after: Option<i64>,
}

impl ReportQuery {
    /// Refuses a period that ends before it starts.
    ///
    /// # Errors
    /// [`crate::AppError::BadInput`] naming `to`.
    pub(crate) fn check_period(&self) -> Result<(), crate::AppError> {
        match (self.from, self.to) {
            (Some(from), Some(to)) if from > to => Err(crate::AppError::bad_input(
                "to",
                "the period ends before it starts",
            )),
            _ => Ok(()),
        }
    }

    /// What to count for this query: the figures of `organisation_id` (all organisations' when
    /// `None`) under `rules_version`, or a report snapshot's rows (`snapshot_tag`); everyone's,
    /// not one group's.
    pub(crate) fn filter(
        &self,
        organisation_id: Option<Uuid>,
        rules_version: i32,
        snapshot_tag: Option<i32>,
    ) -> ReportFilter {
        ReportFilter {
            organisation_id,
            rules_version,
            from: self.from,
            to: self.to,
            team_id: self.team_id,
            source: self.source.as_ref().map(domain::code),
            reason: self.reason.as_ref().map(domain::code),
            snapshot_tag,
            group: None,
        }
    }
}

/// Who a published report is for.
#[derive(Clone, Copy, Debug)]
pub enum Reader<'a> {
    /// A member of staff: their organisation's figures, if [`crate::policy::may_read_reports`].
    Staff(&'a crate::access::Principal),
    /// The operator at the console (`casebook compare`): one organisation's figures, or every
    /// organisation's together.
    Operator { organisation_id: Option<Uuid> },
}

/// Published reports: the caller's organisation only, suppressed under the personal data rules.
#[derive(Clone)]
pub struct Reporting {
    pool: db::Pool,
    privacy: std::sync::Arc<PrivacyRules>,
    freshness: Freshness,
}

impl Reporting {
    /// Reports over `store`'s read models, suppressed under the latest personal data rules.
    pub fn new(store: eventstore::EventStore) -> Reporting {
        Reporting {
            pool: store.pool().clone(),
            privacy: std::sync::Arc::new(PrivacyRules::current()),
            freshness: Freshness::new(store, ReadWait::default()),
        }
    }

    /// The same reports, waiting for `after` as `wait` says.
    pub fn with_read_wait(mut self, wait: ReadWait) -> Reporting {
        self.freshness = self.freshness.with_wait(wait);
        self
    }

    /// The same reports, read from `replica` (a streaming replica of `primary`'s database, as
    /// the service's role), waiting on the replica's own checkpoints for `after`.
    pub fn with_replica(
        mut self,
        replica: eventstore::EventStore,
        primary: eventstore::EventStore,
    ) -> Reporting {
        self.pool = replica.pool().clone();
        self.freshness = Freshness::on_replica(replica, primary, self.freshness.settings());
        self
    }

    /// The filter for `query` under rule version `rules` (the live one when `None`), asked
    /// for as parameter `field`, over the figures `reader` may read.
    async fn filter(
        &self,
        reader: Reader<'_>,
        query: &ReportQuery,
        rules: Option<i32>,
        field: &'static str,
    ) -> Result<ReportFilter, crate::AppError> {
        let organisation_id = match reader {
            Reader::Staff(principal) => {
                crate::policy::may_read_reports(principal)?;
                Some(principal.organisation_id)
            }
            Reader::Operator { organisation_id } => organisation_id,
        };
        query.check_period()?;
        let client = self.pool.get().await?;
        let versions = projector::versions(&client, projector::OUTCOMES).await?;
        let rules_version = match rules {
            None => projector::live_version(&client, projector::OUTCOMES).await?,
            Some(v) if versions.iter().any(|x| x.rules_version == v) => v,
            Some(v) => {
                let known: Vec<String> = versions
                    .iter()
                    .map(|x| format!("{} ({})", x.rules_version, x.state))
                    .collect();
                return Err(crate::AppError::bad_input(
                    field,
                    format!(
                        "there are no figures under rules version {v}; there are: {}",
                        known.join(", ")
                    ),
                ));
            }
        };
        Ok(query.filter(organisation_id, rules_version, None))
    }

    /// Waits until `read_models` have applied the event at `after`, then reads in one
    /// snapshot, so every figure of an answer is as of the same moment.
    async fn read<R>(
        &self,
        read_models: &[&str],
        after: Option<i64>,
        read: impl AsyncFnOnce(&tokio_postgres::Transaction<'_>) -> Result<R, tokio_postgres::Error>,
    ) -> Result<R, crate::AppError> {
        self.freshness.wait(read_models, after).await?;
        let mut client = self.pool.get().await?;
        let snapshot = snapshot(&mut client).await?;
        let answer = read(&snapshot).await?;
        snapshot.commit().await?;
        Ok(answer)
    }

    /// Outcome figures for the caller's organisation, suppressed.
    ///
    /// # Errors
    /// [`crate::AppError::Denied`] by [`crate::policy::may_read_reports`]; a period that ends
    /// before it starts (`to`), a rule version with no figures (`rules`) or an `after` that
    /// names no event; [`crate::AppError::NotCaughtUp`]; store failures.
    pub async fn outcomes(
        &self,
        principal: &crate::access::Principal,
        query: &ReportQuery,
        rules: Option<i32>,
    ) -> Result<OutcomeReport, crate::AppError> {
        let filter = self
            .filter(Reader::Staff(principal), query, rules, "rules")
            .await?;
        let figures = projector::outcomes_name(filter.rules_version);
        let mut report = self
            .read(&[&figures], query.after, async |tx| {
                outcome_report(tx, &filter).await
            })
            .await?;
        suppress_outcomes(&mut report, &self.privacy);
        report.as_of = self.freshness.recount(report.as_of).await?;
        Ok(report)
    }

    /// The outcome rule versions with figures, oldest first, and each one's state (which one
    /// reports use, which are being built or were used before).
    ///
    /// # Errors
    /// [`crate::AppError::Denied`] by [`crate::policy::may_read_reports`]; store failures.
    pub async fn rule_versions(
        &self,
        principal: &crate::access::Principal,
    ) -> Result<Vec<projector::ProjectionVersion>, crate::AppError> {
        crate::policy::may_read_reports(principal)?;
        let client = self.pool.get().await?;
        Ok(projector::versions(&client, projector::OUTCOMES).await?)
    }

    /// Service gaps and onward connections for the caller's organisation, suppressed.
    ///
    /// # Errors
    /// As [`Reporting::outcomes`].
    pub async fn service_gaps(
        &self,
        principal: &crate::access::Principal,
        query: &ReportQuery,
        rules: Option<i32>,
    ) -> Result<GapReport, crate::AppError> {
        let filter = self
            .filter(Reader::Staff(principal), query, rules, "rules")
            .await?;
        let figures = projector::outcomes_name(filter.rules_version);
        let read_models = [figures.as_str(), projector::DIRECTORY];
        let mut report = self
            .read(&read_models, query.after, async |tx| {
                gap_report(tx, &filter).await
            })
            .await?;
        suppress_gaps(&mut report, &self.privacy);
        report.as_of = self.freshness.recount(report.as_of).await?;
        Ok(report)
    }

    /// The outcome figures under rule versions `a` and `b` side by side, both suppressed
    /// before comparing, so a difference cannot give a small count away.
    ///
    /// # Errors
    /// As [`Reporting::outcomes`], naming `a` or `b` for a version with no figures.
    pub async fn compare(
        &self,
        principal: &crate::access::Principal,
        query: &ReportQuery,
        a: i32,
        b: i32,
    ) -> Result<Comparison, crate::AppError> {
        self.compare_for(Reader::Staff(principal), query, a, b)
            .await
    }

    /// [`Reporting::compare`] for any reader: the operator's comparison is suppressed the
    /// same way.
    ///
    /// # Errors
    /// As [`Reporting::compare`] (only a staff reader can be denied).
    pub async fn compare_for(
        &self,
        reader: Reader<'_>,
        query: &ReportQuery,
        a: i32,
        b: i32,
    ) -> Result<Comparison, crate::AppError> {
        let a = self.filter(reader, query, Some(a), "a").await?;
        let b = self.filter(reader, query, Some(b), "b").await?;
        let figures = [a.rules_version, b.rules_version].map(projector::outcomes_name);
        let read_models = [figures[0].as_str(), figures[1].as_str()];
        let (mut a, mut b) = self
            .read(&read_models, query.after, async |tx| {
                Ok((outcome_report(tx, &a).await?, outcome_report(tx, &b).await?))
            })
            .await?;
        suppress_outcomes(&mut a, &self.privacy);
        suppress_outcomes(&mut b, &self.privacy);
        let mut comparison = compare(a, b)?;
        comparison.as_of = self.freshness.recount(comparison.as_of).await?;
        Ok(comparison)
    }

    /// The outcome figures as a CSV file ([`crate::export::outcome_report`]).
    ///
    /// # Errors
    /// As [`Reporting::outcomes`].
    pub async fn outcomes_csv(
        &self,
        principal: &crate::access::Principal,
        query: &ReportQuery,
        rules: Option<i32>,
        options: CsvOptions,
    ) -> Result<CsvFile, crate::AppError> {
        let report = self.outcomes(principal, query, rules).await?;
        crate::export::outcome_report(&report, options)
    }

    /// The service-gap report as a CSV file ([`crate::export::gap_report`]).
    ///
    /// # Errors
    /// As [`Reporting::outcomes`].
    pub async fn service_gaps_csv(
        &self,
        principal: &crate::access::Principal,
        query: &ReportQuery,
        rules: Option<i32>,
        options: CsvOptions,
    ) -> Result<CsvFile, crate::AppError> {
        let report = self.service_gaps(principal, query, rules).await?;
        crate::export::gap_report(&report, query.team_id, options)
    }

    /// The comparison of rule versions `a` and `b` as a CSV file
    /// ([`crate::export::comparison`]).
    ///
    /// # Errors
    /// As [`Reporting::compare`].
    pub async fn compare_csv(
        &self,
        principal: &crate::access::Principal,
        query: &ReportQuery,
        a: i32,
        b: i32,
        options: CsvOptions,
    ) -> Result<CsvFile, crate::AppError> {
        let comparison = self.compare(principal, query, a, b).await?;
        crate::export::comparison(&comparison, options)
    }
}

#[cfg(test)]
mod tests;
