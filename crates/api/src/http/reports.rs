//! Aggregate reports for reporting analysts and team leads: never personal data, always one
//! organisation, under the live rule version unless another is asked for.

use actix_web::{get, web};
use chrono::NaiveDate;
use domain::{NeedDomain, ReferralSource};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::extract::{Caller, Params};
use super::problem::{ApiError, WaitingReadErrors};
use app::reports::{Comparison, GapReport, OutcomeReport, ReportQuery};

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(outcome_report)
        .service(gap_report)
        .service(compare_outcomes);
}

/// Which figures.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReportParams {
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
    /// Answer only once the figures (and, for service gaps, the directory) have applied the
    /// event at this log position (the `position` a command answered with), so they
    /// count that write and every write committed before it. Waits a few seconds at most, then
    /// 503 with `Retry-After`. Every report says in `as_of` how far its figures had got.
    #[param(minimum = 1)]
    after: Option<i64>,
}

impl ReportParams {
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

/// Outcome figures: referrals by source and reason, time to first contact, did-not-attend
/// rate, contacts per episode, closures by reason, and per measure the change from baseline to
/// follow-up with the share improved, unchanged and worse.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(ReportParams),
    responses((status = 200, body = OutcomeReport), WaitingReadErrors)
)]
#[get("/reports/outcomes")]
async fn outcome_report(
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<ReportParams>,
) -> Result<web::Json<OutcomeReport>, ApiError> {
    let report = state
        .reports
        .outcomes(&caller.0, &params.0.report_query(), params.0.rules)
        .await
        .map_err(ApiError::query)?;
    Ok(web::Json(report))
}

/// Where services are missing: recorded gaps by need, area, month and reason, and per service
/// and need the onward connections made, not taken up, on a waiting list or declined.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(ReportParams),
    responses((status = 200, body = GapReport), WaitingReadErrors)
)]
#[get("/reports/service-gaps")]
async fn gap_report(
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<ReportParams>,
) -> Result<web::Json<GapReport>, ApiError> {
    let report = state
        .reports
        .service_gaps(&caller.0, &params.0.report_query(), params.0.rules)
        .await
        .map_err(ApiError::query)?;
    Ok(web::Json(report))
}

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

/// The outcome figures under two rule versions side by side, with every figure that differs.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(CompareParams, ReportParams),
    responses((status = 200, body = Comparison), WaitingReadErrors)
)]
#[get("/reports/outcomes/comparison")]
async fn compare_outcomes(
    state: web::Data<AppState>,
    caller: Caller,
    versions: Params<CompareParams>,
    params: Params<ReportParams>,
) -> Result<web::Json<Comparison>, ApiError> {
    let comparison = state
        .reports
        .compare(
            &caller.0,
            &params.0.report_query(),
            versions.0.a,
            versions.0.b,
        )
        .await
        .map_err(ApiError::query)?;
    Ok(web::Json(comparison))
}
