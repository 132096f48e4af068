//! Administration within an organisation: teams, staff accounts and their tokens. For
//! administrators only (the application layer says so); none of it reads client records.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::extract::{Body, Caller, Params};
use super::problem::{AdminErrors, ApiError, ReadErrors};
use app::access::{IssuedToken, StaffMember};
use app::admin::{NewStaffRequest, NewTeamRequest, StaffPage, Team, TokenRequest};

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(add_team)
        .service(list_staff)
        .service(add_staff)
        .service(issue_token)
        .service(revoke_token);
}

/// Add a team to the administrator's organisation (or return the one of that name).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    request_body(content = NewTeamRequest, content_type = "application/json"),
    responses((status = 201, body = Team), AdminErrors)
)]
#[post("/teams")]
async fn add_team(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<NewTeamRequest>,
) -> Result<HttpResponse, ApiError> {
    let team = state.admin.add_team(&caller.0, &body.value).await?;
    Ok(HttpResponse::Created().json(team))
}

/// Paging through staff.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StaffParams {
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    /// Rows per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The organisation's staff.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(StaffParams),
    responses((status = 200, body = StaffPage), ReadErrors)
)]
#[get("/staff")]
async fn list_staff(
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<StaffParams>,
) -> Result<web::Json<StaffPage>, ApiError> {
    Ok(web::Json(
        state
            .admin
            .list_staff(&caller.0, params.0.cursor, params.0.limit)
            .await
            .map_err(ApiError::query)?,
    ))
}

/// Add a staff account to the administrator's organisation.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    request_body(content = NewStaffRequest, content_type = "application/json"),
    responses((status = 201, body = StaffMember), AdminErrors)
)]
#[post("/staff")]
async fn add_staff(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<NewStaffRequest>,
) -> Result<HttpResponse, ApiError> {
    let member = state.admin.add_staff(&caller.0, &body.value).await?;
    Ok(HttpResponse::Created().json(member))
}

/// Issue a bearer token for a staff member of the organisation. The token is shown once.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("staff_id" = Uuid, Path, description = "The staff member")),
    request_body(content = TokenRequest, content_type = "application/json"),
    responses((status = 201, body = IssuedToken), AdminErrors)
)]
#[post("/staff/{staff_id}/tokens")]
async fn issue_token(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Body<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let token = state
        .admin
        .issue_token(&caller.0, path.into_inner(), &body.value)
        .await?;
    Ok(HttpResponse::Created().json(token))
}

/// Revoke a token of the organisation's staff; it stops working at once.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("token_id" = Uuid, Path, description = "The token")),
    responses((status = 204, description = "Revoked"), ReadErrors)
)]
#[post("/tokens/{token_id}/revocation")]
async fn revoke_token(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state
        .admin
        .revoke_token(&caller.0, path.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
