//! Equity reporting (issue #21 part 5): the outcome report broken down by a demographic.
//! (Recording demographics is a command route, `POST /clients/{client_id}/demographics`.)

use actix_web::{HttpRequest, HttpResponse, get, web};

use super::AppState;
use super::extract::{Caller, Params};
use super::negotiate::{CsvParams, answer, negotiated_get};
use super::problem::{ApiError, NegotiatedReadErrors};
use super::reports::filter_params;
use app::access::Principal;
use app::reports::{Breakdown, BreakdownReport};

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(outcome_breakdown)
        .service(outcome_breakdown_csv);
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

filter_params! {
    /// Which figures, by what.
    struct BreakdownParams {
        /// What to break the report down by.
        by: Breakdown,
        ..ReportFilter + rules,
        /// Answer only once the figures have applied the event at this log position.
        #[param(minimum = 1)]
        after: Option<i64>,
    }
    after = after
}
