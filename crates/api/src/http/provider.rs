//! Closed-loop connections over HTTP: a directory service's provider staff list the
//! connections made to their services and answer them (accept, decline with a reason, say
//! whether the person started); an administrator ties provider staff to the services their
//! organisation owns. Each handler parses, calls `app::provider`, and renders.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use domain::{
    ClientId, ConnectionAcceptedByProvider, ConnectionDeclinedByProvider, ConnectionStartRecorded,
    ProviderCommand, ServiceId,
};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::commands::CommandAccepted;
use super::extract::{Body, Caller, CommandHeaders, KeyHeader, Params, request_id};
use super::problem::{AdminErrors, ApiError, CommandErrors, ReadErrors};
use app::provider::{ProviderConnectionPage, ProviderConnections, ProviderTie};
use app::records::{ReadContext, ReadPurpose};

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(provider_connections)
        .service(accept_connection)
        .service(decline_connection)
        .service(record_connection_start)
        .service(tie_provider_service)
        .service(untie_provider_service);
}

/// Paging through the connections made to the caller's services.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ConnectionParams {
    /// `next_cursor` of the previous page.
    #[param(minimum = 0)]
    cursor: Option<i64>,
    /// Rows per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Why it is read, a code kept in the read audit.
    purpose: Option<ReadPurpose>,
}

/// The connections made to the caller's services (provider staff), newest first: the need, the
/// kind, when, the service's answer so far, and the person's given name and family initial
/// while their consent to share with onward services covers the service. Signposting is not
/// listed. Each person listed is written to the read audit.
#[utoipa::path(
    tag = "provider",
    security(("bearer" = [])),
    params(ConnectionParams),
    responses((status = 200, body = ProviderConnectionPage), ReadErrors)
)]
#[get("/provider/connections")]
async fn provider_connections(
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<ConnectionParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let read = ReadContext::new(params.0.purpose, request_id(&req));
    let page = ProviderConnections::beside(&state.cases)
        .connections(&caller.0, params.0.cursor, params.0.limit, &read)
        .await
        .map_err(ApiError::query)?;
    Ok(HttpResponse::Ok().json(page))
}

async fn answer(
    state: &AppState,
    caller: &Caller,
    client_id: Uuid,
    command: ProviderCommand,
    (headers, digest): (CommandHeaders, [u8; 32]),
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // A provider never sees the record's version: an `If-Match` could only watch it.
    if headers.if_match.is_some() {
        return Err(ApiError::field(
            "header.If-Match",
            "a provider's answer takes no If-Match: the service refuses a second answer to a \
             connection itself",
        ));
    }
    let request = headers.staff_command(req, digest);
    let result = ProviderConnections::beside(&state.cases)
        .answer_as(&caller.0, ClientId(client_id), &command, request)
        .await?;
    Ok(super::commands::created(&result, None))
}

/// Declares a provider's answer route: handler name, path, body type, and how the body becomes
/// the answer.
macro_rules! answer_route {
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $body:ty, $variant:path) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            tag = "provider",
            security(("bearer" = [])),
            params(
                ("client_id" = Uuid, Path, description = "The person the connection is on"),
                KeyHeader
            ),
            request_body(content = $body, content_type = "application/json"),
            responses((status = 201, description = "Done: the events written", body = CommandAccepted), CommandErrors)
        )]
        #[post($path)]
        async fn $name(
            state: web::Data<AppState>,
            caller: Caller,
            path: web::Path<Uuid>,
            headers: CommandHeaders,
            body: Body<$body>,
            req: HttpRequest,
        ) -> Result<HttpResponse, ApiError> {
            let Body { value, digest } = body;
            answer(&state, &caller, path.into_inner(), $variant(value), (headers, digest), &req).await
        }
    };
}

answer_route!(
    /// Accept a connection made to one of your services (provider staff).
    accept_connection, "/provider/clients/{client_id}/connection-acceptances",
    ConnectionAcceptedByProvider, ProviderCommand::Accept
);
answer_route!(
    /// Decline a connection made to one of your services, with a coded reason (provider staff).
    decline_connection, "/provider/clients/{client_id}/connection-declines",
    ConnectionDeclinedByProvider, ProviderCommand::Decline
);
answer_route!(
    /// Say whether the person started with your service, after accepting the connection
    /// (provider staff).
    record_connection_start, "/provider/clients/{client_id}/connection-starts",
    ConnectionStartRecorded, ProviderCommand::RecordStart
);

/// A directory service to tie provider staff to, or untie them from.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderServiceRequest {
    pub service_id: Uuid,
}

/// Tie a provider staff member (role service_provider) of your organisation to a directory
/// service your organisation owns: they see and answer the connections made to it
/// (administrators).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("staff_id" = Uuid, Path, description = "The provider staff member")),
    request_body(content = ProviderServiceRequest, content_type = "application/json"),
    responses((status = 201, body = ProviderTie), AdminErrors)
)]
#[post("/staff/{staff_id}/provider-services")]
async fn tie_provider_service(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Body<ProviderServiceRequest>,
) -> Result<HttpResponse, ApiError> {
    let tie = ProviderConnections::beside(&state.cases)
        .tie(
            &caller.0,
            path.into_inner(),
            ServiceId(body.value.service_id),
        )
        .await?;
    Ok(HttpResponse::Created().json(tie))
}

/// Untie a provider staff member from a service: they no longer see or answer its
/// connections (administrators). `created` is false in the answer; `removed` says whether
/// there was a tie.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("staff_id" = Uuid, Path, description = "The provider staff member")),
    request_body(content = ProviderServiceRequest, content_type = "application/json"),
    responses((status = 200, body = ProviderUntie), AdminErrors)
)]
#[post("/staff/{staff_id}/provider-service-removals")]
async fn untie_provider_service(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Body<ProviderServiceRequest>,
) -> Result<HttpResponse, ApiError> {
    let staff_id = path.into_inner();
    let removed = ProviderConnections::beside(&state.cases)
        .untie(&caller.0, staff_id, ServiceId(body.value.service_id))
        .await?;
    Ok(HttpResponse::Ok().json(ProviderUntie {
        staff_id,
        service_id: body.value.service_id,
        removed,
    }))
}

/// What an untie did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ProviderUntie {
    pub staff_id: Uuid,
    pub service_id: Uuid,
    /// Whether there was a tie to remove.
    pub removed: bool,
}
