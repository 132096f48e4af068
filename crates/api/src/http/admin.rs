//! Administration within an organisation: teams, staff accounts, enrolments and tokens. For
//! administrators, and each member of staff for their own tokens (the application layer says
//! so); none of it reads client records.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::extract::{Body, Caller, Params};
use super::problem::{AdminErrors, ApiError, CommandErrors, ReadErrors, RedemptionErrors};
use app::access::{IssuedEnrolment, IssuedToken, Revoked, StaffMember};
use app::admin::{
    Credentials, EnrolmentRequest, NewStaffRequest, NewTeamRequest, RedemptionRequest, StaffPage,
    Team, TokenRequest,
};

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(add_team)
        .service(list_staff)
        .service(add_staff)
        .service(issue_own_token)
        .service(enrol)
        .service(redeem_enrolment)
        .service(list_credentials)
        .service(revoke_all)
        .service(deactivate)
        .service(activate)
        .service(revoke_token);
}

/// Declares a route that creates something for the caller from a JSON body: the handler's
/// documentation, name and path, the body and created types, and the call of the application
/// layer's admin service (given the service, the caller and the body) that answers 201 with it.
macro_rules! created_route {
    (
        $(#[doc = $doc:literal])*
        $name:ident, $path:literal, $request:ty => $created:ty, $errors:ident,
        |$admin:ident, $caller:ident, $value:ident| $call:expr
    ) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            tag = "admin",
            security(("bearer" = [])),
            request_body(content = $request, content_type = "application/json"),
            responses((status = 201, body = $created), $errors)
        )]
        #[post($path)]
        async fn $name(
            state: web::Data<AppState>,
            caller: Caller,
            body: Body<$request>,
        ) -> Result<HttpResponse, ApiError> {
            let ($admin, $caller, $value) = (&state.admin, &caller.0, &body.value);
            Ok(HttpResponse::Created().json($call.await?))
        }
    };
}

/// Declares a route about one staff member (`staff_id` in the path) that answers 200 with
/// JSON: the handler's documentation, name, method and path, the answer's type, the problem
/// responses, and the call of the application layer's admin service (given the service, the
/// caller and the staff id) that answers it.
macro_rules! staff_route {
    (
        $(#[doc = $doc:literal])*
        $name:ident, $method:ident $path:literal, $answer:ty, $errors:ident,
        |$admin:ident, $caller:ident, $staff_id:ident| $call:expr
    ) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            tag = "admin",
            security(("bearer" = [])),
            params(("staff_id" = Uuid, Path, description = "The staff member")),
            responses((status = 200, body = $answer), $errors)
        )]
        #[$method($path)]
        async fn $name(
            state: web::Data<AppState>,
            caller: Caller,
            path: web::Path<Uuid>,
        ) -> Result<web::Json<$answer>, ApiError> {
            let ($admin, $caller, $staff_id) = (&state.admin, &caller.0, path.into_inner());
            Ok(web::Json($call.await?))
        }
    };
}

created_route!(
    /// Add a team to the administrator's organisation (or return the one of that name).
    add_team, "/teams", NewTeamRequest => Team, AdminErrors,
    |admin, caller, body| admin.add_team(caller, body)
);

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

created_route!(
    /// Add a staff account to the administrator's organisation.
    ///
    /// Sent again with the same `staff_id`, the same request adds nothing and answers with the
    /// account.
    // A command's problems: an administrative write's, and 409 for a `staff_id` that is
    // another account's (or this one's with other details).
    add_staff, "/staff", NewStaffRequest => StaffMember, CommandErrors,
    |admin, caller, body| admin.add_staff(caller, body)
);

created_route!(
    /// Issue a bearer token to yourself (a second device, or to replace one about to expire). The
    /// token is shown once. Nobody issues a token for anyone else: an administrator makes an
    /// enrolment that its holder redeems.
    issue_own_token, "/me/tokens", TokenRequest => IssuedToken, AdminErrors,
    |admin, caller, body| admin.issue_own_token(caller, body)
);

/// Make a one-time enrolment code for a staff member of the organisation (administrators). The
/// code is shown once: give it to them only. They redeem it for a token only they see; the
/// token records that it came from this enrolment and who made it.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("staff_id" = Uuid, Path, description = "The staff member")),
    request_body(content = EnrolmentRequest, content_type = "application/json"),
    responses((status = 201, body = IssuedEnrolment), AdminErrors)
)]
#[post("/staff/{staff_id}/enrolments")]
async fn enrol(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Body<EnrolmentRequest>,
) -> Result<HttpResponse, ApiError> {
    let enrolment = state
        .admin
        .enrol(&caller.0, path.into_inner(), &body.value)
        .await?;
    Ok(HttpResponse::Created().json(enrolment))
}

/// Redeem a one-time enrolment code for your own bearer token (no bearer token needed: the
/// code is the credential, and works once). A code that is unknown, used, revoked or expired
/// is 401, counted against the caller's address as a bad token is.
#[utoipa::path(
    tag = "admin",
    security(()),
    request_body(content = RedemptionRequest, content_type = "application/json"),
    responses((status = 201, body = IssuedToken), RedemptionErrors)
)]
#[post("/enrolments/redemption")]
async fn redeem_enrolment(
    state: web::Data<AppState>,
    body: Body<RedemptionRequest>,
) -> Result<HttpResponse, ApiError> {
    let token = state.admin.redeem(&body.value).await?;
    Ok(HttpResponse::Created().json(token))
}

staff_route!(
    /// A staff member's tokens and enrolments, never their secrets: your own, or any of the
    /// organisation's for an administrator.
    list_credentials, get "/staff/{staff_id}/tokens", Credentials, ReadErrors,
    |admin, caller, staff_id| admin.credentials(caller, staff_id)
);

staff_route!(
    /// Revoke every live token and unredeemed enrolment of a staff member (yours, or any of the
    /// organisation's for an administrator): they stop at once.
    revoke_all, post "/staff/{staff_id}/tokens/revocation", Revoked, AdminErrors,
    |admin, caller, staff_id| admin.revoke_all(caller, staff_id)
);

staff_route!(
    /// Deactivate a staff account of the organisation (administrators; not your own): every token
    /// and enrolment of it is revoked at once, and it can hold no new one.
    deactivate, post "/staff/{staff_id}/deactivation", StaffMember, AdminErrors,
    |admin, caller, staff_id| admin.set_active(caller, staff_id, false)
);

staff_route!(
    /// Reactivate a staff account of the organisation (administrators). Its old tokens stay
    /// revoked: make an enrolment for a new one.
    activate, post "/staff/{staff_id}/activation", StaffMember, AdminErrors,
    |admin, caller, staff_id| admin.set_active(caller, staff_id, true)
);

/// Revoke a token (your own, or any of the organisation's staff's for an administrator); it
/// stops working at once.
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
