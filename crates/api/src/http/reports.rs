//! Aggregate reports for reporting analysts and team leads: never personal data, always one
//! organisation, under the live rule version unless another is asked for.

use actix_web::{get, web};
use chrono::NaiveDate;
use domain::{NeedDomain, ReferralSource, code};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::extract::{Caller, Params};
use super::problem::{ApiError, ReadErrors};
use app::access::Role;
use app::policy;
use app::reports::{self, Comparison, GapReport, OutcomeReport, ReportFilter};

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(outcome_report)
        .service(gap_report)
        .service(compare_outcomes);
}

const REPORTERS: &[Role] = &[Role::ReportingAnalyst, Role::TeamLead];

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
}

/// Checks the filter and fills in the rule version.
async fn filter(
    state: &AppState,
    caller: &Caller,
    params: &ReportParams,
    rules: Option<i32>,
    field: &str,
) -> Result<ReportFilter, ApiError> {
    if let (Some(from), Some(to)) = (params.from, params.to)
        && from > to
    {
        return Err(ApiError::field(
            "query.to",
            "the period ends before it starts",
        ));
    }
    let client = state.pool().get().await?;
    let versions = projector::versions(&client, projector::OUTCOMES).await?;
    let rules_version = match rules {
        None => projector::live_version(&client, projector::OUTCOMES).await?,
        Some(v) if versions.iter().any(|x| x.rules_version == v) => v,
        Some(v) => {
            let known: Vec<String> = versions
                .iter()
                .map(|x| format!("{} ({})", x.rules_version, x.state))
                .collect();
            return Err(ApiError::field(
                format!("query.{field}"),
                format!(
                    "there are no figures under rules version {v}; there are: {}",
                    known.join(", ")
                ),
            ));
        }
    };
    Ok(ReportFilter {
        organisation_id: Some(caller.0.organisation_id),
        rules_version,
        from: params.from,
        to: params.to,
        team_id: params.team_id,
        source: params.source.as_ref().map(code),
        reason: params.reason.as_ref().map(code),
    })
}

/// Outcome figures: referrals by source and reason, time to first contact, did-not-attend
/// rate, contacts per episode, closures by reason, and per measure the change from baseline to
/// follow-up with the share improved, unchanged and worse.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(ReportParams),
    responses((status = 200, body = OutcomeReport), ReadErrors)
)]
#[get("/reports/outcomes")]
async fn outcome_report(
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<ReportParams>,
) -> Result<web::Json<OutcomeReport>, ApiError> {
    policy::require(&caller.0, REPORTERS, "a report")?;
    let filter = filter(&state, &caller, &params.0, params.0.rules, "rules").await?;
    let client = state.pool().get().await?;
    let mut report = reports::outcome_report(&**client, &filter).await?;
    reports::suppress_outcomes(&mut report, &state.privacy);
    Ok(web::Json(report))
}

/// Where services are missing: recorded gaps by need, area, month and reason, and per service
/// and need the onward connections made, not taken up, on a waiting list or declined.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(ReportParams),
    responses((status = 200, body = GapReport), ReadErrors)
)]
#[get("/reports/service-gaps")]
async fn gap_report(
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<ReportParams>,
) -> Result<web::Json<GapReport>, ApiError> {
    policy::require(&caller.0, REPORTERS, "a report")?;
    let filter = filter(&state, &caller, &params.0, params.0.rules, "rules").await?;
    let client = state.pool().get().await?;
    let mut report = reports::gap_report(&**client, &filter).await?;
    reports::suppress_gaps(&mut report, &state.privacy);
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
    responses((status = 200, body = Comparison), ReadErrors)
)]
#[get("/reports/outcomes/comparison")]
async fn compare_outcomes(
    state: web::Data<AppState>,
    caller: Caller,
    versions: Params<CompareParams>,
    params: Params<ReportParams>,
) -> Result<web::Json<Comparison>, ApiError> {
    policy::require(&caller.0, REPORTERS, "a report")?;
    let a = filter(&state, &caller, &params.0, Some(versions.0.a), "a").await?;
    let b = filter(&state, &caller, &params.0, Some(versions.0.b), "b").await?;
    let client = state.pool().get().await?;
    let mut a = reports::outcome_report(&**client, &a).await?;
    let mut b = reports::outcome_report(&**client, &b).await?;
    // Both suppressed before comparing, so a difference cannot give a small count away.
    reports::suppress_outcomes(&mut a, &state.privacy);
    reports::suppress_outcomes(&mut b, &state.privacy);
    Ok(web::Json(reports::compare(a, b)))
}
