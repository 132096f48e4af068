//! Equity reporting (issue #21 part 5): the outcome report broken down by a demographic.
//! (Recording demographics is a command route, `POST /clients/{client_id}/demographics`.)

use actix_web::{get, web};
use chrono::NaiveDate;
use domain::{NeedDomain, ReferralSource};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::extract::{Caller, Params};
use super::problem::{ApiError, WaitingReadErrors};
use app::reports::{Breakdown, BreakdownReport, ReportQuery};

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config.service(outcome_breakdown);
}

/// Which figures, by what.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
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

/// The outcome report once per group of people (an age band at referral, a sex, a gender
/// identity, an ethnic group, a deprivation decile, interpreter need, a GP practice), from the
/// demographics recorded on each record (`not_recorded`: none recorded, or erased); every
/// group's figures suppressed under the small-number rule, and its headline counts under the
/// complementary rule across groups, since the groups add up to the whole report.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(BreakdownParams),
    responses((status = 200, body = BreakdownReport), WaitingReadErrors)
)]
#[get("/reports/outcomes/breakdown")]
async fn outcome_breakdown(
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<BreakdownParams>,
) -> Result<web::Json<BreakdownReport>, ApiError> {
    let params = params.0;
    let query = ReportQuery {
        from: params.from,
        to: params.to,
        team_id: params.team_id,
        source: params.source,
        reason: params.reason,
        after: params.after,
    };
    Ok(web::Json(
        state
            .reports
            .outcomes_by(&caller.0, &query, params.rules, params.by)
            .await?,
    ))
}
