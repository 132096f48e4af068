//! Aggregate reports for reporting analysts and team leads: never personal data, always one
//! organisation, under the live rule version unless another is asked for.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::extract::{Body, Caller, Params};
use super::negotiate::{CsvParams, answer, negotiated_get};
use super::problem::{ApiError, NegotiatedReadErrors, NegotiatedSnapshotErrors, SnapshotErrors};
use app::access::Principal;
use app::reports::{Comparison, GapReport, OutcomeReport};
use app::snapshots::{ExplainedComparison, Explanation, Snapshot, SnapshotCsv, SnapshotReport};

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(outcome_report)
        .service(outcome_report_csv)
        .service(gap_report)
        .service(gap_report_csv)
        .service(compare_outcomes)
        .service(compare_outcomes_csv)
        .service(start_snapshot)
        .service(get_snapshot)
        .service(snapshot_report)
        .service(snapshot_report_csv)
        .service(start_explanation)
        .service(get_explanation_csv)
        .service(get_explanation);
}

/// A report as it was known at a moment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    /// Only facts recorded by then count (RFC 3339; not later than now).
    pub known_at: chrono::DateTime<chrono::Utc>,
    /// The rule version (default: the one reports used at `known_at`).
    #[schema(minimum = 1)]
    pub rules: Option<i32>,
}

/// How a published report differs from today's.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplanationRequest {
    /// When the report was published: it counted the facts recorded by then (RFC 3339).
    pub published_at: chrono::DateTime<chrono::Utc>,
    /// The rule version it was published under (default: the one live then).
    #[schema(minimum = 1)]
    pub published_rules: Option<i32>,
    /// The rule version to compare it with (default: the live one).
    #[schema(minimum = 1)]
    pub current_rules: Option<i32>,
}

/// A query's parameters with the report filter's among them (`..ReportFilter` stands for them:
/// from, to, team, source and reason; `..ReportFilter + rules` for them and the rule version),
/// and `report_query()`, the filter they give (with the `after` field, when named, as the
/// position to wait for).
macro_rules! filter_params {
    (
        $(#[$meta:meta])*
        struct $name:ident {
            $($(#[$first_meta:meta])* $first:ident: $first_type:ty,)*
            ..ReportFilter $(+ $rules:ident)?,
            $($(#[$rest_meta:meta])* $rest:ident: $rest_type:ty,)*
        }
        $(after = $after:ident)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
        #[into_params(parameter_in = Query)]
        struct $name {
            $($(#[$first_meta])* $first: $first_type,)*
            /// From this day (inclusive).
            from: Option<chrono::NaiveDate>,
            /// To this day (inclusive).
            to: Option<chrono::NaiveDate>,
            /// Only this team's cases.
            team_id: Option<uuid::Uuid>,
            /// Only referrals from this source.
            source: Option<domain::ReferralSource>,
            /// Only referrals for this reason.
            reason: Option<domain::NeedDomain>,
            $(
                /// The rule version (default: the live one).
                #[param(minimum = 1)]
                $rules: Option<i32>,
            )?
            $($(#[$rest_meta])* $rest: $rest_type,)*
        }

        impl $name {
            fn report_query(&self) -> app::reports::ReportQuery {
                app::reports::ReportQuery {
                    from: self.from,
                    to: self.to,
                    team_id: self.team_id,
                    source: self.source,
                    reason: self.reason,
                    after: None $(.or(self.$after))?,
                }
            }
        }
    };
}
pub(super) use filter_params;

filter_params! {
    /// Which figures of a snapshot or explanation.
    struct SnapshotParams {
        ..ReportFilter,
    }
}

/// Reproduce a report as it was known at a moment (a figure sent to commissioners last
/// quarter): the log is replayed under the rule version live then, keeping only the facts
/// recorded by then, in the background. Answers 202 with the snapshot; its figures are kept.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    request_body(content = SnapshotRequest, content_type = "application/json"),
    responses((status = 202, body = Snapshot,
               headers(("Location" = String, description = "The snapshot"))), SnapshotErrors)
)]
#[post("/reports/outcomes/snapshots")]
async fn start_snapshot(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<SnapshotRequest>,
) -> Result<HttpResponse, ApiError> {
    let snapshot = state
        .snapshots
        .start(&caller.0, body.value.rules, body.value.known_at)
        .await?;
    Ok(HttpResponse::Accepted()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/reports/outcomes/snapshots/{}", snapshot.id),
        ))
        .json(snapshot))
}

/// A report snapshot: how far it has been built.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(("snapshot_id" = Uuid, Path, description = "The snapshot")),
    responses((status = 200, body = Snapshot), SnapshotErrors)
)]
#[get("/reports/outcomes/snapshots/{snapshot_id}")]
async fn get_snapshot(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<web::Json<Snapshot>, ApiError> {
    Ok(web::Json(
        state.snapshots.get(&caller.0, path.into_inner()).await?,
    ))
}

negotiated_get!(
    tag = "reports",
    /// A built snapshot's outcome report, for any period, team, source or reason (409 while it is
    /// being built). With `Accept: text/csv` (preferred to JSON), the CSV file of
    /// `GET /reports/outcomes/snapshots/{snapshot_id}/report.csv`.
    snapshot_report, "/reports/outcomes/snapshots/{snapshot_id}/report", SnapshotReport,
    /// A built snapshot's outcome report as a CSV file: the columns of
    /// `GET /reports/outcomes.csv`, with the snapshot's rule version and the moments it is known at
    /// (`known_at`, `corrections_known_at`) among the notes instead of `as_of`.
    snapshot_report_csv, "/reports/outcomes/snapshots/{snapshot_id}/report.csv",
    params(("snapshot_id" = Uuid, Path, description = "The snapshot"), SnapshotParams, CsvParams),
    errors = NegotiatedSnapshotErrors,
    {
        serve(state, caller, path: web::Path<Uuid>, params: Params<SnapshotParams>, csv: Params<CsvParams>);
        let (id, query) = (path.into_inner(), params.0.report_query());
        json: state.snapshots.report(caller, id, &query),
        csv: state.snapshots.csv(caller, id, &query, SnapshotCsv::Report, csv.0.options()),
    }
);

/// Explain how a published report differs from today's: four snapshots (as published; with the
/// facts recorded late since; with the corrections since; under today's rules), built in the
/// background. Answers 202.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    request_body(content = ExplanationRequest, content_type = "application/json"),
    responses((status = 202, body = Explanation,
               headers(("Location" = String, description = "The explanation"))), SnapshotErrors)
)]
#[post("/reports/outcomes/explanations")]
async fn start_explanation(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<ExplanationRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = &body.value;
    let explanation = state
        .snapshots
        .explain(
            &caller.0,
            request.published_rules,
            request.published_at,
            request.current_rules,
        )
        .await?;
    Ok(HttpResponse::Accepted()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/reports/outcomes/explanations/{}", explanation.id),
        ))
        .json(explanation))
}

negotiated_get!(
    tag = "reports",
    /// An explained comparison once built: the report as published, the report now, and every
    /// figure that differs split into late entries, corrections and the rule change (409 while
    /// its snapshots are being built). With `Accept: text/csv` (preferred to JSON), the CSV file of
    /// `GET /reports/outcomes/explanations/{explanation_id}.csv`.
    get_explanation, "/reports/outcomes/explanations/{explanation_id}", ExplainedComparison,
    /// An explained comparison as a CSV file, one row per figure of either report: columns
    /// `section,figure,code,band,published_value,published_suppressed,now_value,now_suppressed,
    /// differs,late_entries,corrections,rule_change`. The first four are those of
    /// `GET /reports/outcomes.csv`; then the figure as published and now (empty where that report
    /// has no such figure), whether they differ, and for a figure that differs the part due to
    /// facts recorded late, to corrections and to the change of rule version (they add up to the
    /// difference; a part is empty when a figure it is worked out from is suppressed). Notes and
    /// encoding as for `GET /reports/outcomes.csv`.
    get_explanation_csv, "/reports/outcomes/explanations/{explanation_id}.csv",
    params(("explanation_id" = Uuid, Path, description = "The explanation"), SnapshotParams, CsvParams),
    errors = NegotiatedSnapshotErrors,
    {
        serve(state, caller, path: web::Path<Uuid>, params: Params<SnapshotParams>, csv: Params<CsvParams>);
        let (id, query) = (path.into_inner(), params.0.report_query());
        json: state.snapshots.explanation(caller, id, &query),
        csv: state.snapshots.csv(caller, id, &query, SnapshotCsv::Explanation, csv.0.options()),
    }
);

filter_params! {
    /// Which figures.
    struct ReportParams {
        ..ReportFilter + rules,
        /// Answer only once the figures (and, for service gaps, the directory) have applied the
        /// event at this log position (the `position` a command answered with), so they
        /// count that write and every write committed before it. Waits a few seconds at most, then
        /// 503 with `Retry-After`. Every report says in `as_of` how far its figures had got.
        #[param(minimum = 1)]
        after: Option<i64>,
    }
    after = after
}

negotiated_get!(
    tag = "reports",
    /// Outcome figures: referrals by source and reason, time to first contact, did-not-attend
    /// rate, contacts per episode, closures by reason, and per measure the change from baseline to
    /// follow-up with the share improved, unchanged and worse. With `Accept: text/csv` (preferred
    /// to JSON), the CSV file of `GET /reports/outcomes.csv`.
    outcome_report, "/reports/outcomes", OutcomeReport,
    /// The outcome report as a CSV file, one row per figure, for a spreadsheet: columns
    /// `section,figure,code,band,value,suppressed`. `section` is `referrals`, `episodes`,
    /// `measures` or `people`; `figure` is the JSON field's name (`total`, `mean_change`, ...), a
    /// breakdown's name for its counts (`by_source`, `by_reason`, `closed_by_reason`) and that
    /// name with `_percent` for its shares, `band_baseline`, `band_follow_up` and
    /// `band_follow_up_percent` for a measure's bands; `code` is what a breakdown is by (`gp`) or
    /// the measure (`wemwbs`), empty for a figure of the whole; `band` is the band's code for a
    /// band figure; `value` is a number (a word for `direction` and `evaluation_consent`), empty
    /// when suppressed, when there was nothing to take a mean or share over, or when the rule
    /// version does not keep the figure; `suppressed` is `true` for a figure withheld under the
    /// small-number rule. The file is UTF-8 with a byte order mark (for Excel), CRLF line ends,
    /// RFC 4180 quoting; unless `comments=false` it starts with `# name: value` lines (rule
    /// versions, suppression, period, filters, `as_of`) and an empty line, also given as
    /// `Casebook-*` headers. Text a spreadsheet would take for a formula starts with `'`.
    outcome_report_csv, "/reports/outcomes.csv",
    params(ReportParams, CsvParams),
    errors = NegotiatedReadErrors,
    {
        serve(state, caller, params: Params<ReportParams>, csv: Params<CsvParams>);
        let (query, rules) = (params.0.report_query(), params.0.rules);
        json: state.reports.outcomes(caller, &query, rules),
        csv: state.reports.outcomes_csv(caller, &query, rules, csv.0.options()),
    }
);

negotiated_get!(
    tag = "reports",
    /// Where services are missing: recorded gaps by need, area, month and reason, and per service
    /// and need the onward connections made, not taken up, on a waiting list or declined. With
    /// `Accept: text/csv` (preferred to JSON), the CSV file of `GET /reports/service-gaps.csv`.
    gap_report, "/reports/service-gaps", GapReport,
    /// The service-gap report as a CSV file, one row per figure: columns
    /// `section,figure,need,area,area_name,month,reason,service_id,service_name,value,suppressed`
    /// (`area` the area's code, `area_name` its name). `section` is `gaps` (figure `count`, by
    /// need, area, month and reason), `connections` (figures `made`, `not_taken_up`,
    /// `waiting_list`, `declined`, `mean_waiting_weeks`, by service and need) or `capacity`
    /// (figures `services`, `open`, `waiting_list`, `not_taking_referrals`, `mean_waiting_weeks`, by
    /// need and area; the directory now, never suppressed); the columns a section is not broken
    /// down by are empty. `value`, `suppressed`, the notes and the file's
    /// encoding are as for `GET /reports/outcomes.csv`.
    gap_report_csv, "/reports/service-gaps.csv",
    params(ReportParams, CsvParams),
    errors = NegotiatedReadErrors,
    {
        serve(state, caller, params: Params<ReportParams>, csv: Params<CsvParams>);
        let (query, rules) = (params.0.report_query(), params.0.rules);
        json: state.reports.service_gaps(caller, &query, rules),
        csv: state.reports.service_gaps_csv(caller, &query, rules, csv.0.options()),
    }
);

/// Two rule versions.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CompareParams {
    /// One rule version.
    #[param(minimum = 1)]
    a: i32,
    /// The other.
    #[param(minimum = 1)]
    b: i32,
}

negotiated_get!(
    tag = "reports",
    /// The outcome figures under two rule versions side by side, with every figure that differs.
    /// With `Accept: text/csv` (preferred to JSON), the CSV file of
    /// `GET /reports/outcomes/comparison.csv`.
    compare_outcomes, "/reports/outcomes/comparison", Comparison,
    /// The comparison as a CSV file, one row per figure of either version: columns
    /// `section,figure,code,band,a_value,a_suppressed,b_value,b_suppressed,differs`. The first
    /// four are those of `GET /reports/outcomes.csv`; `a_*` and `b_*` are the figure under rule versions
    /// `a` and `b` (both empty when that version's report has no such figure); `differs` is `true`
    /// when the values differ, as the JSON's `differences` lists them. Notes and encoding as for
    /// `GET /reports/outcomes.csv` (`a_rules_version`, `b_rules_version`, ...).
    compare_outcomes_csv, "/reports/outcomes/comparison.csv",
    params(CompareParams, ReportParams, CsvParams),
    errors = NegotiatedReadErrors,
    {
        serve(state, caller, versions: Params<CompareParams>, params: Params<ReportParams>, csv: Params<CsvParams>);
        let (query, a, b) = (params.0.report_query(), versions.0.a, versions.0.b);
        json: state.reports.compare(caller, &query, a, b),
        csv: state.reports.compare_csv(caller, &query, a, b, csv.0.options()),
    }
);
