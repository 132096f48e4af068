//! The directory of services over HTTP.
//!
//! - `/oruk/services` and `/oruk/services/{id}` answer in the Open Referral UK shape, without a
//!   token: the directory is public information (every seed service publishes its own), and
//!   existing directory tools read it as they read any ORUK feed.
//! - `/api/v1/directory/...` is for staff: search by text, need, area and availability; import
//!   an ORUK dump and withdraw services (administrators); change a service's capacity
//!   (administrators and team leads, who hear first when a group closes or starts a list).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use domain::directory::{
    DirectoryCommand, DirectoryError, ServiceCapacityChanged, ServiceWithdrawn,
};
use domain::{NeedDomain, ServiceId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use super::commands::AcceptedEvent;
use super::extract::{Body, Caller, Params, request_id};
use super::problem::{AdminErrors, ApiError, CommandErrors, PublicErrors, WaitingReadErrors};
use app::directory::{
    DirectoryCommandError, DirectoryEntry, ImportReport, OrukPage, OrukRequest, SearchPage,
    SearchRequest,
};

/// The largest directory import accepted over HTTP (larger files: `casebook directory import`).
pub const IMPORT_LIMIT: usize = 16 * 1024 * 1024;

pub(super) fn configure_public(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config.service(
        utoipa_actix_web::scope("/oruk")
            .service(oruk_root)
            .service(oruk_services)
            .service(oruk_service),
    );
}

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(search)
        .service(entry)
        .service(import)
        .service(change_capacity)
        .service(withdraw);
}

/// What this ORUK feed is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrukInfo {
    pub version: String,
    pub profile: String,
    pub openapi_url: String,
    pub description: String,
}

/// The ORUK API's root: version and profile.
#[utoipa::path(tag = "oruk", responses((status = 200, body = OrukInfo)))]
#[get("/")]
async fn oruk_root() -> web::Json<OrukInfo> {
    web::Json(OrukInfo {
        version: "3.0".to_owned(),
        profile: "https://openreferraluk.org/".to_owned(),
        openapi_url: "/openapi.json".to_owned(),
        description: "The directory of services Casebook's link workers connect people to, \
                      in the Open Referral UK shape."
            .to_owned(),
    })
}

/// ORUK `/services` parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct OrukParams {
    /// Words to search for.
    #[param(max_length = 200)]
    search: Option<String>,
    /// From 1 (default 1).
    #[param(minimum = 1)]
    page: Option<i64>,
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    per_page: Option<i64>,
    /// Only services with this taxonomy term.
    #[param(max_length = 200)]
    taxonomy_term_id: Option<String>,
    /// Only services of this organisation.
    organization_id: Option<Uuid>,
    /// Only services changed after this time (withdrawn ones included, as `defunct`).
    modified_after: Option<DateTime<Utc>>,
    /// Top-level fields only.
    minimal: Option<bool>,
}

/// Services, a page at a time, in the Open Referral UK shape.
#[utoipa::path(tag = "oruk", params(OrukParams), responses((status = 200, body = OrukPage), PublicErrors))]
#[get("/services")]
async fn oruk_services(
    state: web::Data<AppState>,
    params: Params<OrukParams>,
) -> Result<web::Json<OrukPage>, ApiError> {
    let params = params.0;
    let request = OrukRequest {
        search: params.search,
        page: params.page,
        per_page: params.per_page,
        taxonomy_term_id: params.taxonomy_term_id,
        organization_id: params.organization_id,
        modified_after: params.modified_after,
        minimal: params.minimal,
    };
    Ok(web::Json(
        state
            .directory
            .oruk_services(request)
            .await
            .map_err(ApiError::query)?,
    ))
}

/// One service, fully nested, in the Open Referral UK shape (a withdrawn one as `defunct`).
#[utoipa::path(
    tag = "oruk",
    params(("id" = Uuid, Path, description = "The service")),
    responses((status = 200, body = domain::directory::OrukService), PublicErrors)
)]
#[get("/services/{id}")]
async fn oruk_service(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> Result<web::Json<domain::directory::OrukService>, ApiError> {
    Ok(web::Json(
        state.directory.oruk_record(path.into_inner()).await?,
    ))
}

/// Search parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    /// Words, as typed in a search box ("quoted phrases", `or`, `-word`).
    #[param(max_length = 200)]
    q: Option<String>,
    /// A need domain.
    need: Option<NeedDomain>,
    /// A service area, town or postcode district.
    #[param(max_length = 100)]
    area: Option<String>,
    /// Only services taking referrals now (not on a waiting list, not closed).
    available: Option<bool>,
    /// `next_cursor` of the previous page.
    #[param(minimum = 0)]
    cursor: Option<i64>,
    /// Rows per page (1 to 100, default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// Answer only once the directory read model has applied the event at this log position
    /// (the `position` of an event a directory command wrote). Waits a few seconds at
    /// most, then 503 with `Retry-After`.
    #[param(minimum = 1)]
    after: Option<i64>,
}

/// A read of the directory after a write.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EntryParams {
    /// Answer only once the directory read model has applied the event at this log position
    /// (the `position` of an event a directory command wrote). Waits a few seconds at
    /// most, then 503 with `Retry-After`.
    #[param(minimum = 1)]
    after: Option<i64>,
}

/// Search the directory: by words, need, area and availability. Withdrawn services never
/// appear; the best match comes first, then services open to referrals before waiting lists.
#[utoipa::path(
    tag = "directory",
    security(("bearer" = [])),
    params(SearchParams),
    responses((status = 200, body = SearchPage), WaitingReadErrors)
)]
#[get("/directory/services")]
async fn search(
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<SearchParams>,
) -> Result<web::Json<SearchPage>, ApiError> {
    let params = params.0;
    let request = SearchRequest {
        q: params.q,
        need: params.need,
        area: params.area,
        available: params.available,
        cursor: params.cursor,
        limit: params.limit,
        after: params.after,
    };
    Ok(web::Json(
        state
            .directory
            .search_page(&caller.0, request)
            .await
            .map_err(ApiError::query)?,
    ))
}

/// One directory service as link workers see it (withdrawn ones too, marked).
#[utoipa::path(
    tag = "directory",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "The service"), EntryParams),
    responses((status = 200, body = DirectoryEntry), WaitingReadErrors)
)]
#[get("/directory/services/{service_id}")]
async fn entry(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    params: Params<EntryParams>,
) -> Result<web::Json<DirectoryEntry>, ApiError> {
    Ok(web::Json(
        state
            .directory
            .entry(&caller.0, path.into_inner(), params.0.after)
            .await
            .map_err(ApiError::query)?,
    ))
}

/// Import parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ImportParams {
    /// Withdraw the importer's own listed services the file does not name (the file is the
    /// whole of their source); other organisations' services are never touched.
    withdraw_missing: Option<bool>,
}

/// Import an Open Referral UK `/services` page (its `contents`) as the caller's organisation:
/// each service is added (and becomes the organisation's), changed, withdrawn (defunct at
/// source) or left as it is; a record naming another organisation's service is skipped and
/// listed under `skipped` (only its owner imports over it); a malformed record is rejected with
/// its reasons while the rest import. Importing the same file again changes nothing.
#[utoipa::path(
    tag = "directory",
    security(("bearer" = [])),
    params(ImportParams),
    request_body(content = Object, content_type = "application/json",
        description = "An ORUK page: `{\"contents\": [service, ...]}`"),
    responses((status = 200, body = ImportReport), AdminErrors)
)]
#[post("/directory/import")]
async fn import(
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<ImportParams>,
    body: Body<Value, IMPORT_LIMIT>,
    req: HttpRequest,
) -> Result<web::Json<ImportReport>, ApiError> {
    let report = state
        .directory
        .import_as(
            &caller.0,
            body.value,
            params.0.withdraw_missing.unwrap_or(false),
            request_id(&req),
        )
        .await
        .map_err(directory_error)?;
    let written = report.added.len() + report.changed.len() + report.withdrawn.len();
    super::metrics::record_appended(written);
    Ok(web::Json(report))
}

fn directory_error(error: DirectoryCommandError) -> ApiError {
    match error {
        // Capacity and withdrawal name a service that must be listed: none there is a 404.
        DirectoryCommandError::NotAService(_)
        | DirectoryCommandError::Refused(DirectoryError::NotListed) => {
            ApiError::NotFound("no such service in the directory".to_owned())
        }
        DirectoryCommandError::Refused(refusal) => {
            ApiError::refused(refusal.to_string(), refusal.rule(), refusal.field())
        }
        DirectoryCommandError::Denied(denied) => denied.into(),
        DirectoryCommandError::NotAnImport(message) => {
            let field = if message.starts_with("contents") {
                "contents"
            } else {
                "body"
            };
            ApiError::field(field, message)
        }
        DirectoryCommandError::Conflict => ApiError::Conflict {
            detail: error.to_string(),
            current_version: 0,
        },
        other => ApiError::Internal(other.to_string()),
    }
}

/// What a directory command wrote.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceCommandAccepted {
    pub service_id: Uuid,
    /// The service stream's version after the command.
    pub stream_version: i64,
    pub events: Vec<AcceptedEvent>,
}

async fn run(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    id: Uuid,
    command: DirectoryCommand,
) -> Result<HttpResponse, ApiError> {
    let (result, _) = state
        .directory
        .execute_as(&caller.0, ServiceId(id), &command, request_id(req))
        .await
        .map_err(directory_error)?
        .ok_or_else(|| ApiError::Internal("a directory command wrote nothing".to_owned()))?;
    super::metrics::record_appended(result.events.len());
    Ok(HttpResponse::Created()
        .insert_header((header::ETAG, format!("\"{}\"", result.stream_version)))
        .insert_header((header::LOCATION, format!("/api/v1/directory/services/{id}")))
        .json(ServiceCommandAccepted {
            service_id: result.stream_id,
            stream_version: result.stream_version,
            events: AcceptedEvent::all(&result),
        }))
}

/// Declares a directory command route about one service (`service_id` in the path): the
/// handler's documentation, name and path, the body type, and the command it becomes.
macro_rules! service_command_route {
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $body:ty => $command:path) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            tag = "directory",
            security(("bearer" = [])),
            params(("service_id" = Uuid, Path, description = "The service")),
            request_body(content = $body, content_type = "application/json"),
            responses((status = 201, body = ServiceCommandAccepted), CommandErrors)
        )]
        #[post($path)]
        async fn $name(
            state: web::Data<AppState>,
            caller: Caller,
            path: web::Path<Uuid>,
            body: Body<$body>,
            req: HttpRequest,
        ) -> Result<HttpResponse, ApiError> {
            let command = $command(body.value);
            run(&state, &caller, &req, path.into_inner(), command).await
        }
    };
}

service_command_route!(
    /// Record that a service opened, started a waiting list (with about how many weeks), or
    /// closed to referrals. A closed service takes no referrals (signposting still works), and
    /// the service-gap report counts services by availability. Only the team leads and
    /// administrators of the organisation that listed the service may (403 for another's).
    change_capacity, "/directory/services/{service_id}/capacity",
    ServiceCapacityChanged => DirectoryCommand::ChangeCapacity
);

service_command_route!(
    /// Withdraw a service from the directory: connections to it are refused from then on, and
    /// it leaves search and the ORUK listing (a sync by `modified_after` sees it as `defunct`).
    /// Only the administrators of the organisation that listed the service may (403 for another's).
    withdraw, "/directory/services/{service_id}/withdraw",
    ServiceWithdrawn => DirectoryCommand::Withdraw
);
