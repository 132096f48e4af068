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
use super::negotiate::{CsvParams, answer, negotiated_get};
use super::problem::{ApiError, NegotiatedReadErrors, ReadErrors};
use app::access::{Principal, StaffMember};
use app::caseload::{CaseloadPage, CaseloadQuery, TeamWorkload};
use app::records::{
    ClientRecord, JourneyPage, ReadContext, ReadPurpose, RecordReadPage, ReferralStatusView,
};
use app::{JourneyView, Page};

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(me)
        .service(my_caseload)
        .service(my_caseload_csv)
        .service(team_caseload)
        .service(team_caseload_csv)
        .service(team_workload)
        .service(team_workload_csv)
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

/// Whose caseload, for a team lead (beside the page, `PageParams`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct WorkerParams {
    /// A team lead: only this link worker's cases (of their team).
    link_worker_id: Option<Uuid>,
}

/// Paging through a caseload.
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
    /// Only cases carrying this tag (a code of the service's tag list, `projections/tags/`).
    #[param(min_length = 1, max_length = 40, pattern = r"^[a-z0-9-]+$")]
    tag: Option<String>,
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

negotiated_get!(
    tag = "queries",
    /// The caller's caseload: a link worker's own cases, or a team lead's team (optionally one
    /// link worker of it). Served from the caseload read model, which follows the log closely but
    /// not instantly: `as_of` says how far it had got, and `after` waits for a write of one's own.
    /// With `Accept: text/csv` (preferred to JSON), the CSV file of `GET /caseload.csv`.
    my_caseload, "/caseload", CaseloadPage,
    /// The caller's caseload as a CSV file, one row per case, with the columns of the JSON items
    /// (`client_id,status,link_worker_id,team_id,area,referred_on,referral_source,
    /// days_since_referral,last_contact_at,days_since_contact,next_appointment_at,contacts,
    /// did_not_attend,baselines,follow_ups,flags,stream_version,tags`): times RFC 3339 in UTC,
    /// lists (`baselines`, `follow_ups`, `flags`, `tags`) as codes with `;` between them. The file holds every
    /// case after `cursor`, or a page of `limit` when one is asked for (then `next_cursor` says
    /// where the next starts). Unless `comments=false` it starts with `# name: value` lines (the
    /// caseload rules version, when the flags were computed, the team or worker, `as_of`) and an
    /// empty line, also given as `Casebook-*` headers; UTF-8 with a byte order mark, CRLF line
    /// ends, RFC 4180 quoting; text a spreadsheet would take for a formula starts with `'`.
    my_caseload_csv, "/caseload.csv",
    params(WorkerParams, PageParams, CsvParams),
    errors = NegotiatedReadErrors,
    {
        serve(state, caller, worker: Params<WorkerParams>, params: Params<PageParams>, csv: Params<CsvParams>);
        let (worker, PageParams { cursor, limit, after, tag }) = (worker.0.link_worker_id, params.0);
        let query = CaseloadQuery { cursor, limit, after, tag };
        json: state.cases.caseload(caller, worker, &query),
        csv: state.cases.caseload_csv(caller, worker, &query, csv.0.options()),
    }
);

negotiated_get!(
    tag = "queries",
    /// A team's caseload, for its team lead (`as_of` and `after` as for the caller's caseload).
    /// With `Accept: text/csv` (preferred to JSON), the CSV file of
    /// `GET /teams/{team_id}/caseload.csv`.
    team_caseload, "/teams/{team_id}/caseload", CaseloadPage,
    /// A team's caseload as a CSV file, for its team lead: as `GET /caseload.csv`.
    team_caseload_csv, "/teams/{team_id}/caseload.csv",
    params(("team_id" = Uuid, Path, description = "The team"), PageParams, CsvParams),
    errors = NegotiatedReadErrors,
    {
        serve(state, caller, path: web::Path<Uuid>, params: Params<PageParams>, csv: Params<CsvParams>);
        let (team_id, PageParams { cursor, limit, after, tag }) = (path.into_inner(), params.0);
        let query = CaseloadQuery { cursor, limit, after, tag };
        json: state.cases.team_caseload(caller, team_id, &query),
        csv: state.cases.team_caseload_csv(caller, team_id, &query, csv.0.options()),
    }
);

negotiated_get!(
    tag = "queries",
    /// A team's link workers: their open cases and the people they supported this year, against
    /// capacity, with what the figures are as of. For the team's lead. From the caseload read
    /// model (`after` as for a caseload).
    /// With `Accept: text/csv` (preferred to JSON), the CSV file of
    /// `GET /teams/{team_id}/workload.csv`.
    team_workload, "/teams/{team_id}/workload", TeamWorkload,
    /// A team's workload as a CSV file, one row per link worker, with the columns of the JSON
    /// items (`link_worker_id,name,open,referred,people_this_year,capacity,percent_of_capacity`).
    /// Notes (the caseload rules version, when the year was counted back from, `as_of`) and
    /// encoding as for `GET /caseload.csv`.
    team_workload_csv, "/teams/{team_id}/workload.csv",
    params(("team_id" = Uuid, Path, description = "The team"), AfterParams, CsvParams),
    errors = NegotiatedReadErrors,
    {
        serve(state, caller, path: web::Path<Uuid>, params: Params<AfterParams>, csv: Params<CsvParams>);
        let (team_id, after) = (path.into_inner(), params.0.after);
        json: state.cases.team_workload(caller, team_id, after),
        csv: state.cases.team_workload_csv(caller, team_id, after, csv.0.options()),
    }
);

/// Checks `after` (when given) names an event in the log, for a read straight from the log.
async fn fresh(state: &AppState, after: Option<i64>) -> Result<(), ApiError> {
    state.freshness.check(after).await.map_err(ApiError::query)
}

/// Why the record is read (kept with the read).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReadParams {
    /// Why it is read, a code kept in the read audit (never free text: the audit is kept for
    /// ever, and words could name the person).
    purpose: Option<ReadPurpose>,
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
    fresh(&state, params.0.after).await?;
    let read = ReadContext::new(params.0.purpose, request_id(&req));
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
    /// Why it is read, a code kept in the read audit (never free text: the audit is kept for
    /// ever, and words could name the person).
    purpose: Option<ReadPurpose>,
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
    let read = ReadContext::new(params.purpose, request_id(&req));
    let page = Page::numbered(params.cursor, params.limit).map_err(ApiError::query)?;
    fresh(&state, params.after).await?;
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
    fresh(&state, params.0.after).await?;
    let read = ReadContext::new(None, request_id(&req));
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
    /// Why the read audit is read (a code); the read is itself audited.
    purpose: Option<ReadPurpose>,
}

/// Who read a client's record and when, for auditors. Reading it is audited too (view
/// `reads`), before the page is answered, so the page shows this read.
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
    req: HttpRequest,
) -> Result<web::Json<RecordReadPage>, ApiError> {
    let page = Page::numbered(params.0.cursor, params.0.limit).map_err(ApiError::query)?;
    let read = ReadContext::new(params.0.purpose, request_id(&req));
    Ok(web::Json(
        state
            .cases
            .reads(&caller.0, ClientId(path.into_inner()), page, &read)
            .await?,
    ))
}
