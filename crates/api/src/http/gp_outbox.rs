//! Messages back to GP practices over HTTP, for administrators: where a practice's messages go,
//! the outbox's messages by status (the dead letters), and replaying a dead letter. Each
//! handler parses, calls `app::gp_outbox`, and renders.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::extract::{Body, Caller, Params};
use super::outbox::{self, OutboxParams};
use super::problem::{AdminErrors, ApiError, ReadErrors};
use app::gp_outbox::{OutboxEntry, PracticeEndpoint};

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(set_gp_endpoint)
        .service(list_gp_messages)
        .service(replay_gp_message);
}

/// Where a practice's messages go.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    /// The practice's ODS code (3 to 10 capital letters and digits).
    #[schema(min_length = 3, max_length = 10, pattern = "^[A-Z0-9]{3,10}$")]
    pub ods_code: String,
    /// The practice system's endpoint: `http` or `https`, no credentials in it.
    #[schema(max_length = 2048)]
    pub url: String,
}

/// Sets where the messages to a GP practice (by ODS code) are posted, for the administrator's
/// organisation (replacing what was set before).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    request_body(content = EndpointRequest, content_type = "application/json"),
    responses((status = 200, body = PracticeEndpoint), AdminErrors)
)]
#[post("/gp-endpoints")]
async fn set_gp_endpoint(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<EndpointRequest>,
) -> Result<web::Json<PracticeEndpoint>, ApiError> {
    let request = &body.value;
    Ok(web::Json(
        state
            .gp_outbox
            .set_endpoint(&caller.0, &request.ods_code, &request.url)
            .await?,
    ))
}

/// The organisation's messages back to GP practices of a status, oldest first: no personal
/// data, the person by client id.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(OutboxParams),
    responses((status = 200, body = Vec<OutboxEntry>), ReadErrors)
)]
#[get("/gp-messages")]
async fn list_gp_messages(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<OutboxParams>,
) -> Result<web::Json<Vec<OutboxEntry>>, ApiError> {
    outbox::list(&req, &state.gp_outbox, &caller, params.0).await
}

/// Sends a dead-lettered message again from its first attempt (the person's later messages
/// follow it); recorded with who asked.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("message_id" = Uuid, Path, description = "The message")),
    responses((status = 204, description = "Queued again"), ReadErrors)
)]
#[post("/gp-messages/{message_id}/replay")]
async fn replay_gp_message(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    outbox::replay(&state.gp_outbox, &caller, path.into_inner()).await
}
