//! Administration within an organisation: teams, staff accounts and their tokens. For
//! administrators only; none of it reads client records.

use actix_web::{HttpResponse, get, post, web};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AppState;
use super::extract::{Body, Caller, Params};
use super::problem::{AdminErrors, ApiError, ReadErrors};
use crate::access::{self, IssuedToken, NewStaff, Role, StaffMember};
use crate::policy;

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(add_team)
        .service(list_staff)
        .service(add_staff)
        .service(issue_token)
        .service(revoke_token);
}

fn administrator(caller: &Caller) -> Result<(), ApiError> {
    Ok(policy::require(
        &caller.0,
        &[Role::Administrator],
        "administration",
    )?)
}

/// A new team.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeamRequest {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
}

/// A team.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Team {
    pub team_id: Uuid,
    pub organisation_id: Uuid,
    pub name: String,
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
    administrator(&caller)?;
    let name = body.value.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid(
            "name",
            "give a name of 1 to 200 characters",
        ));
    }
    let client = state.pool().get().await?;
    let team_id = access::ensure_team(&**client, caller.0.organisation_id, &name).await?;
    Ok(HttpResponse::Created().json(Team {
        team_id: team_id.0,
        organisation_id: caller.0.organisation_id,
        name,
    }))
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

/// A page of staff.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaffPage {
    pub items: Vec<StaffMember>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
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
    administrator(&caller)?;
    let params = params.0;
    let limit = match params.limit {
        None => 50,
        Some(n) if (1..=500).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::field(
                "query.limit",
                "give a number from 1 to 500",
            ));
        }
    };
    let client = state.pool().get().await?;
    let mut items = access::list_staff(
        &**client,
        caller.0.organisation_id,
        params.cursor,
        limit + 1,
    )
    .await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    Ok(web::Json(StaffPage {
        next_cursor: if more {
            items.last().map(|s| s.staff_id)
        } else {
            None
        },
        items,
    }))
}

/// A new staff account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaffRequest {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    pub role: Role,
    /// Needed for link workers and team leads.
    pub team_id: Option<Uuid>,
    /// People a year this worker can support (link workers; NHS guidance 200 to 250).
    #[schema(minimum = 1, maximum = 100000)]
    pub capacity: Option<i32>,
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
    administrator(&caller)?;
    let request = body.value;
    if request.name.trim().is_empty() || request.name.chars().count() > 200 {
        return Err(ApiError::invalid(
            "name",
            "give a name of 1 to 200 characters",
        ));
    }
    let client = state.pool().get().await?;
    let member = access::add_staff(
        &**client,
        &NewStaff {
            organisation_id: caller.0.organisation_id,
            team_id: request.team_id,
            name: request.name.trim().to_owned(),
            role: request.role,
            capacity: request.capacity,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(member))
}

/// A token to issue.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Days until it expires (1 to 400).
    #[schema(minimum = 1, maximum = 400)]
    pub valid_days: i64,
    /// What it is for (a device, an integration).
    #[schema(max_length = 200)]
    pub label: Option<String>,
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
    administrator(&caller)?;
    let staff_id = path.into_inner();
    let request = body.value;
    if !(1..=400).contains(&request.valid_days) {
        return Err(ApiError::invalid("valid_days", "give 1 to 400 days"));
    }
    let label = request.label.unwrap_or_default();
    if label.chars().count() > 200 {
        return Err(ApiError::invalid("label", "at most 200 characters"));
    }
    let client = state.pool().get().await?;
    if access::staff_member(&**client, caller.0.organisation_id, staff_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("no such staff member".into()));
    }
    let token = access::issue_token(
        &**client,
        staff_id,
        Duration::days(request.valid_days),
        &label,
    )
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
    administrator(&caller)?;
    let client = state.pool().get().await?;
    if access::revoke_token(&**client, caller.0.organisation_id, path.into_inner()).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("no such live token".into()))
    }
}
