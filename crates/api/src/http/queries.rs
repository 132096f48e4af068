//! Reads: caseloads from the caseload read model; a client's record, journey and referral status
//! from the log (exact, and audited: every read of a record is itself recorded, by the
//! application layer); who read a record, for auditors. Each handler parses, calls `app`, and
//! renders.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use domain::{ClientId, ReferralId};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::extract::{Caller, Params, request_id};
use super::problem::{ApiError, ReadErrors, WaitingReadErrors};
use app::access::StaffMember;
use app::caseload::{CaseloadPage, WorkerLoad};
use app::records::{ClientRecord, JourneyPage, ReadContext, RecordReadPage, ReferralStatusView};
use app::{JourneyView, Page};

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(me)
        .service(my_caseload)
        .service(team_caseload)
        .service(team_workload)
        .service(client_record)
        .service(client_journey)
        .service(referral_status)
        .service(record_reads);
}

/// The caller's own account.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    responses((status = 200, body = StaffMember), ReadErrors)
)]
#[get("/me")]
async fn me(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<StaffMember>, ApiError> {
    Ok(web::Json(state.admin.me(&caller.0).await?))
}

/// Paging through a caseload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CaseloadParams {
    /// A team lead: only this link worker's cases (of their team).
    link_worker_id: Option<Uuid>,
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    /// Rows per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Answer only once the caseload has applied the event at this log position (the
    /// `position` a command answered with), so the answer includes that write and every
    /// write committed before it. Waits a few seconds at most, then 503 with `Retry-After`.
    #[param(minimum = 1)]
    after: Option<i64>,
}

/// Paging through a team's caseload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageParams {
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    /// Rows per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Answer only once the caseload has applied the event at this log position (the
    /// `position` a command answered with), so the answer includes that write and every
    /// write committed before it. Waits a few seconds at most, then 503 with `Retry-After`.
    #[param(minimum = 1)]
    after: Option<i64>,
}

/// A read of the caseload read model after a write.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AfterParams {
    /// Answer only once the caseload has applied the event at this log position (the
    /// `position` a command answered with), so the answer includes that write and every
    /// write committed before it. Waits a few seconds at most, then 503 with `Retry-After`.
    #[param(minimum = 1)]
    after: Option<i64>,
}

/// A read from the log after a write.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LogAfterParams {
    /// A log position (the `position` a command answered with): checked, never waited
    /// for, since this read comes from the log itself and is always current.
    #[param(minimum = 1)]
    after: Option<i64>,
}

/// The caller's caseload: a link worker's own cases, or a team lead's team (optionally one
/// link worker of it). Served from the caseload read model, which follows the log closely but
/// not instantly: `as_of` says how far it had got, and `after` waits for a write of one's own.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(CaseloadParams),
    responses((status = 200, body = CaseloadPage), WaitingReadErrors)
)]
#[get("/caseload")]
async fn my_caseload(
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<CaseloadParams>,
) -> Result<web::Json<CaseloadPage>, ApiError> {
    let params = params.0;
    Ok(web::Json(
        state
            .cases
            .caseload(
                &caller.0,
                params.link_worker_id,
                params.cursor,
                params.limit,
                params.after,
            )
            .await
            .map_err(ApiError::query)?,
    ))
}

/// A team's caseload, for its team lead (`as_of` and `after` as for the caller's caseload).
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(("team_id" = Uuid, Path, description = "The team"), PageParams),
    responses((status = 200, body = CaseloadPage), WaitingReadErrors)
)]
#[get("/teams/{team_id}/caseload")]
async fn team_caseload(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    params: Params<PageParams>,
) -> Result<web::Json<CaseloadPage>, ApiError> {
    Ok(web::Json(
        state
            .cases
            .team_caseload(
                &caller.0,
                path.into_inner(),
                params.0.cursor,
                params.0.limit,
                params.0.after,
            )
            .await
            .map_err(ApiError::query)?,
    ))
}

/// A team's link workers: their open cases and the people they supported this year, against
/// capacity. For the team's lead. From the caseload read model (`after` as for a caseload).
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(("team_id" = Uuid, Path, description = "The team"), AfterParams),
    responses((status = 200, body = Vec<WorkerLoad>), WaitingReadErrors)
)]
#[get("/teams/{team_id}/workload")]
async fn team_workload(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    params: Params<AfterParams>,
) -> Result<web::Json<Vec<WorkerLoad>>, ApiError> {
    Ok(web::Json(
        state
            .cases
            .team_workload(&caller.0, path.into_inner(), params.0.after)
            .await
            .map_err(ApiError::query)?,
    ))
}

/// Why the record is read (kept with the read).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReadParams {
    /// Why it is read (kept in the read audit; at most 500 characters).
    #[param(max_length = 500)]
    purpose: Option<String>,
    /// A log position (the `position` a command answered with): checked, never waited
    /// for, since this read comes from the log itself and is always current.
    #[param(minimum = 1)]
    after: Option<i64>,
}

/// A client's record: status, personal details, referrals, consents and counts. Every read is
/// recorded in the read audit.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(("client_id" = Uuid, Path, description = "The client"), ReadParams),
    responses(
        (status = 200, body = ClientRecord, headers(("ETag" = String, description = "The record's version"))),
        ReadErrors
    )
)]
#[get("/clients/{client_id}")]
async fn client_record(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    params: Params<ReadParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state
        .freshness
        .check(params.0.after)
        .await
        .map_err(ApiError::query)?;
    let read = ReadContext::new(params.0.purpose, request_id(&req)).map_err(ApiError::query)?;
    let record = state
        .cases
        .record(&caller.0, ClientId(path.into_inner()), &read)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", record.version)))
        .json(record))
}

/// Which moment of the journey, and which page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct JourneyParams {
    /// Only what had happened by then (RFC 3339).
    as_of: Option<DateTime<Utc>>,
    /// Only what had been recorded by then (RFC 3339): the record as it was known.
    known_at: Option<DateTime<Utc>>,
    /// Why it is read (kept in the read audit; at most 500 characters).
    #[param(max_length = 500)]
    purpose: Option<String>,
    /// `next_cursor` of the previous page (a record version).
    #[param(minimum = 0)]
    cursor: Option<i64>,
    /// Entries per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// A log position (the `position` a command answered with): checked, never waited
    /// for, since this read comes from the log itself and is always current.
    #[param(minimum = 1)]
    after: Option<i64>,
}

/// A client's whole journey for auditors: every event in order with who did it, in which role,
/// when it happened and when it was recorded, corrections beside what they correct; as it was
/// at a moment (`as_of`) or as it was known at a moment (`known_at`). Every read is recorded.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(("client_id" = Uuid, Path, description = "The client"), JourneyParams),
    responses((status = 200, body = JourneyPage), ReadErrors)
)]
#[get("/clients/{client_id}/journey")]
async fn client_journey(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    params: Params<JourneyParams>,
    req: HttpRequest,
) -> Result<web::Json<JourneyPage>, ApiError> {
    let params = params.0;
    let read = ReadContext::new(params.purpose, request_id(&req)).map_err(ApiError::query)?;
    let page = Page::numbered(params.cursor, params.limit).map_err(ApiError::query)?;
    state
        .freshness
        .check(params.after)
        .await
        .map_err(ApiError::query)?;
    let view = JourneyView {
        as_of: params.as_of,
        known_at: params.known_at,
    };
    Ok(web::Json(
        state
            .cases
            .journey_page(&caller.0, ClientId(path.into_inner()), view, page, &read)
            .await?,
    ))
}

/// Where a referral stands: for the referrer who made it (no personal data), and for whoever
/// may read the record.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(
        ("client_id" = Uuid, Path, description = "The client"),
        ("referral_id" = Uuid, Path, description = "The referral"),
        LogAfterParams
    ),
    responses((status = 200, body = ReferralStatusView), ReadErrors)
)]
#[get("/clients/{client_id}/referrals/{referral_id}")]
async fn referral_status(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    params: Params<LogAfterParams>,
    req: HttpRequest,
) -> Result<web::Json<ReferralStatusView>, ApiError> {
    let (client_id, referral_id) = path.into_inner();
    state
        .freshness
        .check(params.0.after)
        .await
        .map_err(ApiError::query)?;
    let read = ReadContext::new(None, request_id(&req)).map_err(ApiError::query)?;
    Ok(web::Json(
        state
            .cases
            .referral_status(
                &caller.0,
                ClientId(client_id),
                ReferralId(referral_id),
                &read,
            )
            .await?,
    ))
}

/// Paging through reads.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReadsParams {
    /// `next_cursor` of the previous page.
    #[param(minimum = 0)]
    cursor: Option<i64>,
    /// Rows per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// Who read a client's record and when, for auditors.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(("client_id" = Uuid, Path, description = "The client"), ReadsParams),
    responses((status = 200, body = RecordReadPage), ReadErrors)
)]
#[get("/clients/{client_id}/reads")]
async fn record_reads(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    params: Params<ReadsParams>,
) -> Result<web::Json<RecordReadPage>, ApiError> {
    let page = Page::numbered(params.0.cursor, params.0.limit).map_err(ApiError::query)?;
    Ok(web::Json(
        state
            .cases
            .reads(&caller.0, ClientId(path.into_inner()), page)
            .await?,
    ))
}
