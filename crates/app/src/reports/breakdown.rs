//! The outcome report broken down by a demographic (equity reporting, issue #21 part 5): the
//! whole report once per group of people (an age band, a sex, an ethnic group, a deprivation
//! decile...), each group's figures suppressed under the small-number rule like any report, and
//! every count held to the complementary rule both across the groups (a count of every group
//! adds up to the organisation's report's) and within each (parts add up to their total).
//!
//! A person's group is their row of `equity_demographics` (their latest recording; see
//! `app::equity`); people with none, or none for this question, or erased, are `not_recorded`,
//! so the groups always add up to the whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use projector::rules::{DisclosureRules, PrivacyRules};

use super::{
    OutcomeReport, Reader, ReportFilter, ReportQuery, Reporting, Suppression, outcome_report,
    suppress_outcomes,
};
use crate::freshness::AsOf;

/// What the outcome report can be broken down by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Breakdown {
    /// Age at referral, in the equity rules' bands (`projections/equity/`).
    AgeBand,
    Sex,
    GenderIdentity,
    /// The top-level groups of the NHS ethnic categories.
    EthnicGroup,
    /// The IMD 2019 decile of the postcode's LSOA (1 most deprived).
    ImdDecile,
    InterpreterNeeded,
    /// The registered GP practice (ODS code).
    GpPractice,
}

/// The group of people with no answer to the question.
pub const NOT_RECORDED: &str = "not_recorded";

impl Breakdown {
    /// Every breakdown.
    pub const ALL: &'static [Breakdown] = &[
        Breakdown::AgeBand,
        Breakdown::Sex,
        Breakdown::GenderIdentity,
        Breakdown::EthnicGroup,
        Breakdown::ImdDecile,
        Breakdown::InterpreterNeeded,
        Breakdown::GpPractice,
    ];

    /// Its column of `equity_demographics`.
    fn column(self) -> &'static str {
        match self {
            Breakdown::AgeBand => "age_band",
            Breakdown::Sex => "sex",
            Breakdown::GenderIdentity => "gender_identity",
            Breakdown::EthnicGroup => "ethnic_group",
            Breakdown::ImdDecile => "imd_decile",
            Breakdown::InterpreterNeeded => "interpreter_needed",
            Breakdown::GpPractice => "gp_practice",
        }
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            Breakdown::AgeBand => "Age at referral",
            Breakdown::Sex => "Sex",
            Breakdown::GenderIdentity => "Gender identity",
            Breakdown::EthnicGroup => "Ethnic group",
            Breakdown::ImdDecile => "Deprivation decile (IMD 2019)",
            Breakdown::InterpreterNeeded => "Interpreter needed",
            Breakdown::GpPractice => "GP practice",
        }
    }

    /// Every group there always is, in order (counted even when empty: zero is shown).
    fn fixed_codes(self) -> Vec<String> {
        let codes = |all: &[String]| all.to_vec();
        match self {
            Breakdown::AgeBand => crate::equity::EquityRules::current()
                .age_bands
                .into_iter()
                .map(|b| b.code)
                .collect(),
            Breakdown::Sex => domain::Sex::ALL.iter().map(domain::code).collect(),
            Breakdown::GenderIdentity => domain::GenderIdentity::ALL
                .iter()
                .map(domain::code)
                .collect(),
            Breakdown::EthnicGroup => domain::EthnicGroup::ALL.iter().map(domain::code).collect(),
            Breakdown::ImdDecile => (1..=10).map(|d: i32| d.to_string()).collect(),
            Breakdown::InterpreterNeeded => codes(&["true".to_owned(), "false".to_owned()]),
            Breakdown::GpPractice => Vec::new(),
        }
    }

    /// The words for a group's code.
    pub fn group_label(self, code: &str) -> String {
        if code == NOT_RECORDED {
            return "Not recorded".to_owned();
        }
        let of = |all: &[(String, &str)]| {
            all.iter()
                .find(|(c, _)| c == code)
                .map(|(_, label)| (*label).to_owned())
        };
        let label = match self {
            Breakdown::Sex => of(&domain::Sex::ALL
                .iter()
                .map(|s| (domain::code(s), s.label()))
                .collect::<Vec<_>>()),
            Breakdown::GenderIdentity => of(&domain::GenderIdentity::ALL
                .iter()
                .map(|s| (domain::code(s), s.label()))
                .collect::<Vec<_>>()),
            Breakdown::EthnicGroup => of(&domain::EthnicGroup::ALL
                .iter()
                .map(|s| (domain::code(s), s.label()))
                .collect::<Vec<_>>()),
            Breakdown::AgeBand => Some(match code.split_once('_') {
                Some((from, "plus")) => format!("{from} and over"),
                Some((from, to)) => format!("{from} to {to}"),
                None => code.to_owned(),
            }),
            Breakdown::ImdDecile => Some(match code {
                "1" => "1 (most deprived)".to_owned(),
                "10" => "10 (least deprived)".to_owned(),
                other => other.to_owned(),
            }),
            Breakdown::InterpreterNeeded => Some(
                if code == "true" {
                    "Interpreter needed"
                } else {
                    "No interpreter needed"
                }
                .to_owned(),
            ),
            Breakdown::GpPractice => None,
        };
        label.unwrap_or_else(|| code.to_owned())
    }
}

/// The people of one group: those whose latest recording has `code` for the breakdown's
/// question, or (`None`) those with no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientGroup {
    pub by: Breakdown,
    pub code: Option<String>,
}

impl ClientGroup {
    /// The condition on a figures table's `client_id`, with its parameter (`{p}`).
    pub(super) fn condition(&self) -> (String, Box<dyn ToSql + Sync + Send>) {
        let column = self.by.column();
        match &self.code {
            Some(code) => (
                format!(
                    " AND client_id IN (SELECT client_id FROM equity_demographics \
                     WHERE NOT erased AND {column}::text = {{p}})"
                ),
                Box::new(code.clone()),
            ),
            // The parameter is unused: a null that keeps the clause's numbering uniform.
            None => (
                format!(
                    " AND client_id NOT IN (SELECT client_id FROM equity_demographics \
                     WHERE NOT erased AND {column} IS NOT NULL AND {{p}}::text IS NULL)"
                ),
                Box::new(None::<String>),
            ),
        }
    }
}

/// One group's outcome report.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GroupReport {
    /// The group's code (`not_recorded` for people with no answer).
    pub code: String,
    pub label: String,
    pub report: OutcomeReport,
}

/// The outcome report broken down by a demographic.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BreakdownReport {
    pub by: Breakdown,
    /// The outcome rule version the figures were made under.
    pub rules_version: i32,
    /// Every group, `not_recorded` last: together they are the whole report.
    pub groups: Vec<GroupReport>,
    /// The small-number suppression applied, over every group's cells.
    pub suppression: Suppression,
    pub as_of: AsOf,
}

/// The groups of a breakdown: the fixed ones, any other code recorded in the organisation
/// (a practice, a band of older rules), and `not_recorded`.
async fn group_codes(
    client: &impl GenericClient,
    by: Breakdown,
    organisation_id: Option<Uuid>,
) -> Result<Vec<Option<String>>, tokio_postgres::Error> {
    let mut codes = by.fixed_codes();
    let column = by.column();
    let rows = client
        .query(
            &format!(
                "SELECT DISTINCT {column}::text FROM equity_demographics \
                 WHERE NOT erased AND {column} IS NOT NULL \
                 AND ($1::uuid IS NULL OR organisation_id = $1) ORDER BY 1"
            ),
            &[&organisation_id],
        )
        .await?;
    for row in rows {
        let code: String = row.get(0);
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    let mut groups: Vec<Option<String>> = codes.into_iter().map(Some).collect();
    groups.push(None);
    Ok(groups)
}

/// The breakdown's raw figures (unsuppressed), one report per group, for library callers.
///
/// # Errors
/// A database failure.
pub async fn breakdown_report(
    client: &impl GenericClient,
    filter: &ReportFilter,
    by: Breakdown,
) -> Result<Vec<GroupReport>, tokio_postgres::Error> {
    let mut groups = Vec::new();
    for code in group_codes(client, by, filter.organisation_id).await? {
        let group_filter = ReportFilter {
            group: Some(ClientGroup {
                by,
                code: code.clone(),
            }),
            ..filter.clone()
        };
        let report = outcome_report(client, &group_filter).await?;
        let code = code.unwrap_or_else(|| NOT_RECORDED.to_owned());
        groups.push(GroupReport {
            label: by.group_label(&code),
            code,
            report,
        });
    }
    Ok(groups)
}

/// A count's cell: which group, and the count's key within its report.
type Cell = (usize, String);

/// Visits every count of people in a report, each by a key that names the same count in
/// every group's report (`referrals.by_source.gp`, `measures.swemwbs.bands.low.baseline`):
/// counts of the same key add up across groups to the whole report's.
fn visit_counts(report: &mut OutcomeReport, f: &mut impl FnMut(&str, &mut Option<i64>)) {
    let r = &mut report.referrals;
    f("referrals.total", &mut r.total);
    f("referrals.people", &mut r.people);
    f("referrals.accepted", &mut r.accepted);
    f("referrals.declined", &mut r.declined);
    f("referrals.redirected", &mut r.redirected);
    f("referrals.contacted", &mut r.contacted);
    for share in r.by_destination.iter_mut().flatten() {
        f(
            &format!("referrals.by_destination.{}", share.code),
            &mut share.count,
        );
    }
    for share in &mut r.by_source {
        f(
            &format!("referrals.by_source.{}", share.code),
            &mut share.count,
        );
    }
    for share in &mut r.by_reason {
        f(
            &format!("referrals.by_reason.{}", share.code),
            &mut share.count,
        );
    }
    let e = &mut report.episodes;
    f("episodes.episodes", &mut e.episodes);
    f("episodes.started", &mut e.started);
    f("episodes.active", &mut e.active);
    f("episodes.people", &mut e.people);
    f("episodes.contacts", &mut e.contacts);
    f(
        "episodes.appointments_attended",
        &mut e.appointments_attended,
    );
    f(
        "episodes.appointments_not_attended",
        &mut e.appointments_not_attended,
    );
    f("episodes.closed", &mut e.closed);
    for share in &mut e.closed_by_reason {
        f(
            &format!("episodes.closed_by_reason.{}", share.code),
            &mut share.count,
        );
    }
    for m in &mut report.measures {
        let key = |field: &str| format!("measures.{}.{field}", m.measure);
        f(&key("paired"), &mut m.paired);
        f(&key("improved"), &mut m.improved);
        f(&key("no_change"), &mut m.no_change);
        f(&key("worse"), &mut m.worse);
        f(&key("baselines"), &mut m.baselines);
        f(&key("no_follow_up"), &mut m.no_follow_up);
        f(&key("awaiting_follow_up"), &mut m.awaiting_follow_up);
        for band in &mut m.bands {
            f(
                &key(&format!("bands.{}.baseline", band.code)),
                &mut band.baseline,
            );
            f(
                &key(&format!("bands.{}.follow_up", band.code)),
                &mut band.follow_up,
            );
        }
    }
    let p = &mut report.people;
    f("people.paired", &mut p.paired);
    f("people.improved_on_any", &mut p.improved_on_any);
    f(
        "people.excluded_without_evaluation_consent",
        &mut p.excluded_without_evaluation_consent,
    );
}

/// Every count of a report by its key (a count under rules that do not keep it is absent).
fn counts(report: &OutcomeReport) -> BTreeMap<String, i64> {
    let mut report = report.clone();
    let mut counts = BTreeMap::new();
    visit_counts(&mut report, &mut |key, count| {
        if let Some(n) = *count {
            counts.insert(key.to_owned(), n);
        }
    });
    counts
}

/// The counts of a report that add up to another of its counts: a total first, then its parts.
fn partitions(report: &OutcomeReport, rules: &DisclosureRules) -> Vec<Vec<String>> {
    let parts = |total: &str, of: &str, shares: &[super::Share]| {
        std::iter::once(total.to_owned())
            .chain(shares.iter().map(|s| format!("{of}.{}", s.code)))
            .collect::<Vec<_>>()
    };
    let r = &report.referrals;
    let mut sums = vec![parts(
        "referrals.total",
        "referrals.by_source",
        &r.by_source,
    )];
    if let Some(by_destination) = &r.by_destination {
        sums.push(parts(
            "referrals.redirected",
            "referrals.by_destination",
            by_destination,
        ));
    }
    sums.push(parts(
        "episodes.closed",
        "episodes.closed_by_reason",
        &report.episodes.closed_by_reason,
    ));
    if rules.complementary_measures {
        for m in &report.measures {
            let key = |field: &str| format!("measures.{}.{field}", m.measure);
            sums.push(vec![
                key("paired"),
                key("improved"),
                key("no_change"),
                key("worse"),
            ]);
            if !m.bands.is_empty() {
                for at in ["baseline", "follow_up"] {
                    sums.push(
                        std::iter::once(key("paired"))
                            .chain(
                                m.bands
                                    .iter()
                                    .map(|b| key(&format!("bands.{}.{at}", b.code))),
                            )
                            .collect(),
                    );
                }
            }
        }
    }
    sums
}

/// The complementary rule over the groups' raw figures, to a fixed point. A sum whose total is
/// known (a count across the groups adds up to the whole report's, which is published; a
/// group's total is the sum of its parts, whether the total is shown or withheld) must never
/// have exactly one withheld cell, or that cell is its difference. Where one has, the smallest
/// other shown non-zero cell of the sum is withheld too (set to 1, below any threshold, so that
/// the suppression that follows withholds it with every figure that hangs on it, as it would a
/// small count); that may leave another sum with one withheld cell, so it runs again until no
/// sum has one.
///
/// This holds against the working out of a cell by one subtraction along any sum the
/// publication shows. It is not a full audit against every combination of equations (linear
/// programming), and it does not hold against differencing two reports of different filters
/// (periods, sources) taken one after the other: the small-number rule of every report has
/// that limit.
pub fn complementary_across(groups: &mut [GroupReport], privacy: &PrivacyRules) {
    if !privacy.disclosure.complementary {
        return;
    }
    loop {
        let raw: Vec<BTreeMap<String, i64>> = groups.iter().map(|g| counts(&g.report)).collect();
        let shown: Vec<BTreeMap<String, i64>> = groups
            .iter()
            .map(|g| {
                let mut published = g.report.clone();
                suppress_outcomes(&mut published, privacy);
                counts(&published)
            })
            .collect();
        let value = |(g, key): &Cell| raw[*g].get(key).copied();
        let withheld = |cell: &Cell| {
            value(cell).is_some_and(|n| n > 0) && !shown[cell.0].contains_key(&cell.1)
        };
        let mut sums: Vec<Vec<Cell>> = Vec::new();
        let keys: std::collections::BTreeSet<&String> = raw.iter().flat_map(|c| c.keys()).collect();
        for key in keys {
            sums.push(
                (0..groups.len())
                    .filter(|g| raw[*g].contains_key(key))
                    .map(|g| (g, key.clone()))
                    .collect(),
            );
        }
        for (g, group) in groups.iter().enumerate() {
            for sum in partitions(&group.report, &privacy.disclosure) {
                sums.push(
                    sum.into_iter()
                        .filter(|key| raw[g].contains_key(key))
                        .map(|key| (g, key))
                        .collect(),
                );
            }
        }
        let mut more: Vec<Cell> = Vec::new();
        for sum in &sums {
            let alone = sum
                .iter()
                .filter(|cell| withheld(cell) || more.contains(cell))
                .count()
                == 1;
            if !alone {
                continue;
            }
            if let Some(smallest) = sum
                .iter()
                .filter(|cell| !withheld(cell) && !more.contains(cell))
                .filter(|cell| value(cell).is_some_and(|n| n > 0))
                .min_by_key(|cell| value(cell))
            {
                more.push(smallest.clone());
            }
        }
        if more.is_empty() {
            return;
        }
        for (g, key) in more {
            visit_counts(&mut groups[g].report, &mut |k, count| {
                if k == key {
                    *count = Some(1);
                }
            });
        }
    }
}

impl Reporting {
    /// The outcome report for the caller's organisation broken down by `by`, every group
    /// suppressed.
    ///
    /// # Errors
    /// As [`Reporting::outcomes`].
    pub async fn outcomes_by(
        &self,
        principal: &crate::access::Principal,
        query: &ReportQuery,
        rules: Option<i32>,
        by: Breakdown,
    ) -> Result<BreakdownReport, crate::AppError> {
        let filter = self
            .filter(Reader::Staff(principal), query, rules, "rules")
            .await?;
        let figures = projector::outcomes_name(filter.rules_version);
        let mut groups = self
            .read(&[&figures], query.after, async |tx| {
                breakdown_report(tx, &filter, by).await
            })
            .await?;
        self.publish(groups.as_mut_slice(), filter.rules_version, by)
            .await
    }

    /// The breakdown as a CSV file ([`crate::export::breakdown`]): the same figures and
    /// suppression as [`Reporting::outcomes_by`].
    ///
    /// # Errors
    /// As [`Reporting::outcomes_by`].
    pub async fn outcomes_by_csv(
        &self,
        principal: &crate::access::Principal,
        query: &ReportQuery,
        rules: Option<i32>,
        by: Breakdown,
        options: crate::export::CsvOptions,
    ) -> Result<crate::export::CsvFile, crate::AppError> {
        let report = self.outcomes_by(principal, query, rules, by).await?;
        crate::export::breakdown(&report, options)
    }

    async fn publish(
        &self,
        groups: &mut [GroupReport],
        rules_version: i32,
        by: Breakdown,
    ) -> Result<BreakdownReport, crate::AppError> {
        let privacy: &PrivacyRules = &self.privacy;
        complementary_across(groups, privacy);
        let mut cells = 0;
        for group in groups.iter_mut() {
            suppress_outcomes(&mut group.report, privacy);
            cells += group.report.suppression.cells;
        }
        let as_of = match groups.first() {
            Some(group) => self.freshness.recount(group.report.as_of).await?,
            None => AsOf::default(),
        };
        Ok(BreakdownReport {
            by,
            rules_version,
            groups: groups.to_vec(),
            suppression: Suppression {
                rules_version: Some(privacy.version),
                below: privacy.disclosure.suppress_below,
                cells,
            },
            as_of,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::{EpisodeFigures, PeopleFigures, ReferralFigures, Share};

    fn share(code: &str, count: i64) -> Share {
        Share {
            code: code.to_owned(),
            count: Some(count),
            percent: Some(0.0),
            suppressed: false,
        }
    }

    /// A group's report with its referrals by source; everything else zero.
    fn group(code: &str, by_source: &[(&str, i64)], closed: &[(&str, i64)]) -> GroupReport {
        let total = by_source.iter().map(|(_, n)| n).sum();
        let closed_total = closed.iter().map(|(_, n)| n).sum();
        GroupReport {
            code: code.to_owned(),
            label: code.to_owned(),
            report: OutcomeReport {
                rules_version: 3,
                from: None,
                to: None,
                team_id: None,
                source: None,
                reason: None,
                referrals: ReferralFigures {
                    total: Some(total),
                    people: Some(total),
                    accepted: Some(total),
                    declined: Some(0),
                    redirected: Some(0),
                    by_destination: Some(vec![]),
                    destination_names: BTreeMap::new(),
                    by_source: by_source.iter().map(|(c, n)| share(c, *n)).collect(),
                    by_reason: vec![share("loneliness_isolation", total)],
                    contacted: Some(0),
                    mean_days_to_first_contact: None,
                    median_days_to_first_contact: None,
                },
                episodes: EpisodeFigures {
                    episodes: Some(total),
                    started: Some(total),
                    active: Some(total),
                    people: Some(total),
                    contacts: Some(0),
                    mean_contacts: None,
                    appointments_attended: Some(0),
                    appointments_not_attended: Some(0),
                    did_not_attend_percent: None,
                    closed: Some(closed_total),
                    closed_by_reason: closed.iter().map(|(c, n)| share(c, *n)).collect(),
                },
                measures: vec![],
                people: PeopleFigures {
                    paired: Some(0),
                    improved_on_any: Some(0),
                    improved_on_any_percent: None,
                    evaluation_consent: "ignore".to_owned(),
                    excluded_without_evaluation_consent: Some(0),
                },
                suppression: Suppression::default(),
                as_of: AsOf::default(),
            },
        }
    }

    /// Publishes the groups as the API does.
    fn publish(mut groups: Vec<GroupReport>, privacy: &PrivacyRules) -> Vec<GroupReport> {
        complementary_across(&mut groups, privacy);
        for g in &mut groups {
            suppress_outcomes(&mut g.report, privacy);
        }
        groups
    }

    /// An attacker's one subtraction: any sum the publication shows (a key across the groups,
    /// whose whole is the organisation's report; a group's total and its parts) with exactly one
    /// cell withheld gives that cell away. The raw figures say which withheld cells are non-zero.
    fn lone_withheld(raw: &[GroupReport], published: &[GroupReport]) -> Vec<String> {
        let raw: Vec<_> = raw.iter().map(|g| counts(&g.report)).collect();
        let shown: Vec<_> = published.iter().map(|g| counts(&g.report)).collect();
        let hidden = |g: usize, key: &str| {
            raw[g].get(key).is_some_and(|n| *n > 0) && !shown[g].contains_key(key)
        };
        let mut found = Vec::new();
        let keys: std::collections::BTreeSet<&String> = raw.iter().flat_map(|c| c.keys()).collect();
        for key in keys {
            if (0..raw.len()).filter(|g| hidden(*g, key)).count() == 1 {
                found.push(format!("across groups: {key}"));
            }
        }
        for (g, group) in published.iter().enumerate() {
            let sums = [
                std::iter::once("referrals.total".to_owned())
                    .chain(
                        group
                            .report
                            .referrals
                            .by_source
                            .iter()
                            .map(|s| format!("referrals.by_source.{}", s.code)),
                    )
                    .collect::<Vec<_>>(),
                std::iter::once("episodes.closed".to_owned())
                    .chain(
                        group
                            .report
                            .episodes
                            .closed_by_reason
                            .iter()
                            .map(|s| format!("episodes.closed_by_reason.{}", s.code)),
                    )
                    .collect(),
            ];
            for sum in sums {
                if sum.iter().filter(|key| hidden(g, key)).count() == 1 {
                    found.push(format!("group {}: {}", group.code, sum.join(" = ")));
                }
            }
        }
        found
    }

    #[test]
    fn a_complementary_group_keeps_no_part_that_gives_its_total_away() {
        let privacy = PrivacyRules::load(3).expect("v3");
        // Three referred from one small group; its complement (twenty) would be given away by
        // its sources (twelve and eight) if only its total were withheld.
        let raw = vec![
            group("small", &[("gp", 3), ("self_referral", 0)], &[]),
            group("middle", &[("gp", 12), ("self_referral", 8)], &[]),
            group("large", &[("gp", 20), ("self_referral", 10)], &[]),
        ];
        let published = publish(raw.clone(), &privacy);
        assert_eq!(lone_withheld(&raw, &published), Vec::<String>::new());
        let middle = &published[1].report.referrals;
        assert_eq!(middle.total, None, "the complement of the small group");
        let shown_parts: Vec<Option<i64>> = middle.by_source.iter().map(|s| s.count).collect();
        assert!(
            shown_parts.iter().any(Option::is_none),
            "the middle group's sources would add up to its total: {shown_parts:?}"
        );
        // The large group is untouched: nothing there needed withholding.
        assert_eq!(published[2].report.referrals.total, Some(30));
        assert_eq!(published[2].report.referrals.by_source[1].count, Some(10));
    }

    #[test]
    fn a_part_suppressed_inside_one_group_is_held_across_the_groups_too() {
        let privacy = PrivacyRules::load(3).expect("v3");
        // Closures: the first group's two "moved away" are small; within the group its
        // complement is the twelve "goals met"; across groups, each of those two cells is the
        // only one withheld of its reason unless another group's goes with it.
        let raw = vec![
            group("a", &[("gp", 30)], &[("goals_met", 12), ("moved_away", 2)]),
            group("b", &[("gp", 30)], &[("goals_met", 9), ("moved_away", 6)]),
            group("c", &[("gp", 30)], &[("goals_met", 20), ("moved_away", 7)]),
        ];
        let published = publish(raw.clone(), &privacy);
        assert_eq!(lone_withheld(&raw, &published), Vec::<String>::new());
        let withheld = |g: usize, i: usize| published[g].report.episodes.closed_by_reason[i].count;
        assert_eq!(withheld(0, 1), None);
        assert_eq!(withheld(0, 0), None);
        // The smallest other of each reason goes with it: b's nine and b's six.
        assert_eq!(withheld(1, 0), None);
        assert_eq!(withheld(1, 1), None);
        assert_eq!(
            published[2].report.episodes.closed_by_reason[0].count,
            Some(20)
        );
    }

    #[test]
    fn without_the_complementary_rule_only_small_counts_are_withheld() {
        let privacy = PrivacyRules::load(1).expect("v1");
        let raw = vec![
            group("small", &[("gp", 3)], &[]),
            group("middle", &[("gp", 20)], &[]),
        ];
        let published = publish(raw, &privacy);
        assert_eq!(published[0].report.referrals.total, None);
        assert_eq!(published[1].report.referrals.total, Some(20));
    }
}
