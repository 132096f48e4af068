//! The outcome report broken down by a demographic (equity reporting, issue #21 part 5): the
//! whole report once per group of people (an age band, a sex, an ethnic group, a deprivation
//! decile...), each group's figures suppressed under the small-number rule like any report, and
//! the groups' headline counts held to the complementary rule across groups, since they add up
//! to the organisation's report.
//!
//! A person's group is their row of `equity_demographics` (their latest recording; see
//! `app::equity`); people with none, or none for this question, or erased, are `not_recorded`,
//! so the groups always add up to the whole.

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

/// A headline count of a report: each adds up across groups to the whole report's.
type Figure = fn(&mut OutcomeReport) -> &mut Option<i64>;

const HEADLINE: &[Figure] = &[
    |r| &mut r.referrals.total,
    |r| &mut r.referrals.people,
    |r| &mut r.referrals.accepted,
    |r| &mut r.referrals.declined,
    |r| &mut r.referrals.redirected,
    |r| &mut r.referrals.contacted,
    |r| &mut r.episodes.started,
    |r| &mut r.episodes.episodes,
    |r| &mut r.episodes.active,
    |r| &mut r.episodes.people,
    |r| &mut r.episodes.contacts,
    |r| &mut r.episodes.closed,
    |r| &mut r.episodes.appointments_attended,
    |r| &mut r.episodes.appointments_not_attended,
    |r| &mut r.people.paired,
    |r| &mut r.people.improved_on_any,
    |r| &mut r.people.excluded_without_evaluation_consent,
];

/// The complementary rule across groups, on raw figures: where exactly one group's headline
/// count is suppressed, the smallest other group's non-zero count of it is suppressed too (it
/// is set to 1, below any threshold, so that the suppression that follows withholds it with
/// every figure that hangs on it, as it would a small count), so no group's count can be worked
/// out from the whole report's by subtraction.
pub fn complementary_across(groups: &mut [GroupReport], rules: &DisclosureRules) {
    if !rules.complementary {
        return;
    }
    for figure in HEADLINE {
        let values: Vec<Option<i64>> = groups.iter_mut().map(|g| *figure(&mut g.report)).collect();
        let suppressed = values
            .iter()
            .filter(|v| v.is_some_and(|n| rules.suppresses(n)))
            .count();
        if suppressed != 1 {
            continue;
        }
        let smallest_other = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_some_and(|n| n > 0 && !rules.suppresses(n)))
            .min_by_key(|(_, v)| **v)
            .map(|(index, _)| index);
        if let Some(index) = smallest_other {
            *figure(&mut groups[index].report) = Some(1);
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

    async fn publish(
        &self,
        groups: &mut [GroupReport],
        rules_version: i32,
        by: Breakdown,
    ) -> Result<BreakdownReport, crate::AppError> {
        let privacy: &PrivacyRules = &self.privacy;
        complementary_across(groups, &privacy.disclosure);
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
