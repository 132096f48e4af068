//! Equity reporting (issue #21 part 5): the outcome report broken down by a demographic.
//! (Recording demographics is a command route, `POST /clients/{client_id}/demographics`.)

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::NaiveDate;
use domain::{NeedDomain, ReferralSource};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::extract::{Caller, Params};
use super::negotiate::{CsvParams, answer, negotiated_get};
use super::problem::{ApiError, NegotiatedReadErrors};
use app::access::Principal;
use app::reports::{Breakdown, BreakdownReport, ReportQuery};

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(outcome_breakdown)
        .service(outcome_breakdown_csv);
}

/// Which figures, by what.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct BreakdownParams {
    /// What to break the report down by.
    by: Breakdown,
    /// From this day (inclusive).
    from: Option<NaiveDate>,
    /// To this day (inclusive).
    to: Option<NaiveDate>,
    /// Only this team's cases.
    team_id: Option<Uuid>,
    /// Only referrals from this source.
    source: Option<ReferralSource>,
    /// Only referrals for this reason.
    reason: Option<NeedDomain>,
    /// The rule version (default: the live one).
    #[param(minimum = 1)]
    rules: Option<i32>,
    /// Answer only once the figures have applied the event at this log position.
    #[param(minimum = 1)]
    after: Option<i64>,
}

negotiated_get!(
    tag = "reports",
    /// The outcome report once per group of people (an age band at referral, a sex, a gender
    /// identity, an ethnic group, a deprivation decile, interpreter need, a GP practice), from the
    /// demographics recorded on each record (`not_recorded`: none recorded, or erased); every
    /// group's figures suppressed under the small-number rule, and its headline counts under the
    /// complementary rule across groups, since the groups add up to the whole report. With
    /// `Accept: text/csv` (preferred to JSON), the CSV file of
    /// `GET /reports/outcomes/breakdown.csv`.
    outcome_breakdown, "/reports/outcomes/breakdown", BreakdownReport,
    /// The outcome report by group as a CSV file, one row per figure of each group: columns
    /// `group,group_label,section,figure,code,band,value,suppressed`. `group` is the group's
    /// code (`not_recorded` last) and `group_label` its words; the other columns, the notes and
    /// the file's encoding are as for `GET /reports/outcomes.csv`, with the same figures and
    /// suppression as the JSON.
    outcome_breakdown_csv, "/reports/outcomes/breakdown.csv",
    params(BreakdownParams, CsvParams),
    errors = NegotiatedReadErrors,
    {
        serve(state, caller, params: Params<BreakdownParams>, csv: Params<CsvParams>);
        let (query, rules, by) = (params.0.report_query(), params.0.rules, params.0.by);
        json: state.reports.outcomes_by(caller, &query, rules, by),
        csv: state.reports.outcomes_by_csv(caller, &query, rules, by, csv.0.options()),
    }
);

impl BreakdownParams {
    fn report_query(&self) -> ReportQuery {
        ReportQuery {
            from: self.from,
            to: self.to,
            team_id: self.team_id,
            source: self.source,
            reason: self.reason,
            after: self.after,
        }
    }
}
