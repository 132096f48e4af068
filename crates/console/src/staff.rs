//! An administrator's page for one staff member: their tokens and enrolments (never a secret),
//! each live token revocable, every credential revoked at once, the account deactivated or
//! reactivated. Who may do each is the application's ([`app::admin::Admin`]).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use app::AppError;
use app::access::StaffMember;
use app::admin::Credentials;
use app::sessions::ConsoleSession;
use maud::{Markup, html};
use uuid::Uuid;

use crate::pages::{csrf_field, head, layout, moment, success};
use crate::{Console, PostedAt, failure, form_session, forms, page, see_other, session};

/// The routes, under `/console/admin/staff/{id}`.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/console/admin/staff/{id}")
            .route("", web::get().to(staff_page))
            .route("/tokens/revoke", web::post().to(revoke_token))
            .route("/revoke-all", web::post().to(revoke_all))
            .route("/active", web::post().to(set_active)),
    );
}

#[derive(serde::Deserialize)]
struct Done {
    done: Option<String>,
}

fn staff_id(path: &str) -> Result<Uuid, AppError> {
    Uuid::try_parse(path).map_err(|_| AppError::NotFound("no such staff member".into()))
}

async fn staff_page(
    req: HttpRequest,
    path: web::Path<String>,
    done: web::Query<Done>,
    console: web::Data<Console>,
) -> HttpResponse {
    let session = signed_in!(req, console);
    let shown = async {
        let id = staff_id(&path)?;
        let credentials = console.admin.credentials(&session.principal, id).await?;
        let member = console.admin.staff_member(&session.principal, id).await?;
        Ok::<_, AppError>((member, credentials))
    };
    match shown.await {
        Ok((member, credentials)) => {
            let banner = match done.done.as_deref() {
                Some("added") => Some("Member of staff added"),
                Some("revoked") => Some("Token revoked"),
                Some("revoked_all") => Some("Every token and enrolment revoked"),
                Some("deactivated") => Some("Account deactivated"),
                Some("reactivated") => Some("Account reactivated"),
                _ => None,
            };
            page(
                StatusCode::OK,
                render(&session, &member, &credentials, banner),
            )
        }
        Err(e) => failure(Some(&session), &e),
    }
}

/// A form about one staff member: its fields, its checked session, the member's id and the
/// console; or the refusal.
async fn staff_form(
    (req, path, body, console): PostedAt,
) -> Result<
    (
        HashMap<String, String>,
        ConsoleSession,
        Uuid,
        web::Data<Console>,
    ),
    HttpResponse,
> {
    let fields = forms::fields(&body);
    let session = form_session(&req, &console, &fields).await?;
    let id = staff_id(&path).map_err(|e| failure(Some(&session), &e))?;
    Ok((fields, session, id, console))
}

/// Back to the member's page, saying what was done; or the application's refusal.
fn back(
    session: &ConsoleSession,
    id: Uuid,
    done: &str,
    result: Result<(), AppError>,
) -> HttpResponse {
    match result {
        Ok(()) => see_other(&format!("/console/admin/staff/{id}?done={done}")),
        Err(e) => failure(Some(session), &e),
    }
}

async fn revoke_token(posted: PostedAt) -> HttpResponse {
    let (fields, session, id, console) = match staff_form(posted).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let token = fields
        .get("token_id")
        .and_then(|v| Uuid::try_parse(v).ok())
        .unwrap_or_default();
    let result = console
        .admin
        .revoke_token_of(&session.principal, id, token)
        .await;
    back(&session, id, "revoked", result)
}

async fn revoke_all(posted: PostedAt) -> HttpResponse {
    let (_, session, id, console) = match staff_form(posted).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let result = console.admin.revoke_all(&session.principal, id).await;
    back(&session, id, "revoked_all", result.map(|_| ()))
}

async fn set_active(posted: PostedAt) -> HttpResponse {
    let (fields, session, id, console) = match staff_form(posted).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let active = fields.get("active").map(String::as_str) == Some("true");
    let result = console
        .admin
        .set_active(&session.principal, id, active)
        .await;
    let done = if active { "reactivated" } else { "deactivated" };
    back(&session, id, done, result.map(|_| ()))
}

fn status(live: bool, revoked: bool) -> &'static str {
    match (live, revoked) {
        (true, _) => "Live",
        (false, true) => "Revoked",
        (false, false) => "Expired or account inactive",
    }
}

fn render(
    who: &ConsoleSession,
    member: &StaffMember,
    credentials: &Credentials,
    banner: Option<&str>,
) -> Markup {
    let action = |what: &str| format!("/console/admin/staff/{}/{what}", member.staff_id);
    layout(
        &member.name,
        Some(who),
        html! {
            @if let Some(banner) = banner { (success(banner)) }
            a class="nhsuk-back-link" href="/console/admin" { "Administration" }
            h1 class="nhsuk-heading-l" { (member.name) }
            p class="nhsuk-body" id="account" {
                (member.role.as_str().replace('_', " ")) ". "
                @if member.active { "The account is active." } @else { "The account is deactivated: no token of theirs works." }
            }
            h2 class="nhsuk-heading-m" id="tokens" { "API tokens" }
            @if credentials.tokens.is_empty() {
                p class="nhsuk-body" { "No tokens have been issued." }
            } @else {
                div class="nhsuk-table-container" role="region" aria-label="Tokens, newest first" tabindex="0" {
                    table class="nhsuk-table" id="tokens-table" {
                        caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Tokens, newest first" }
                        (head(&["Label", "Issued", "Expires", "Status", "Action"]))
                        tbody class="nhsuk-table__body" {
                            @for t in &credentials.tokens {
                                tr class="nhsuk-table__row" {
                                    td class="nhsuk-table__cell" { (t.label) }
                                    td class="nhsuk-table__cell" { (moment(t.created_at)) " (" (t.issued_via.replace('_', " ")) ")" }
                                    td class="nhsuk-table__cell" { (moment(t.expires_at)) }
                                    td class="nhsuk-table__cell" { (status(t.live, t.revoked_at.is_some())) }
                                    td class="nhsuk-table__cell" {
                                        @if t.live {
                                            form method="post" action=(action("tokens/revoke")) {
                                                (csrf_field(who))
                                                input type="hidden" name="token_id" value=(t.token_id);
                                                button class="nhsuk-button nhsuk-button--warning nhsuk-u-margin-bottom-0" type="submit" {
                                                    "Revoke" span class="nhsuk-u-visually-hidden" { " the token " (t.label) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 class="nhsuk-heading-m" id="enrolments" { "Enrolment codes" }
            @if credentials.enrolments.is_empty() {
                p class="nhsuk-body" { "No enrolment codes have been made." }
            } @else {
                div class="nhsuk-table-container" role="region" aria-label="Enrolment codes, newest first" tabindex="0" {
                    table class="nhsuk-table" id="enrolments-table" {
                        caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Enrolment codes, newest first" }
                        (head(&["Made", "Expires", "Status"]))
                        tbody class="nhsuk-table__body" {
                            @for e in &credentials.enrolments {
                                tr class="nhsuk-table__row" {
                                    td class="nhsuk-table__cell" { (moment(e.created_at)) }
                                    td class="nhsuk-table__cell" { (moment(e.expires_at)) }
                                    td class="nhsuk-table__cell" {
                                        @if let Some(at) = e.redeemed_at { "Redeemed " (moment(at)) }
                                        @else if e.revoked_at.is_some() { "Revoked" }
                                        @else { "Waiting to be redeemed" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 class="nhsuk-heading-m" id="access" { "Access" }
            div class="nhsuk-button-group" {
                form method="post" action=(action("revoke-all")) {
                    (csrf_field(who))
                    button class="nhsuk-button nhsuk-button--warning" id="revoke-all" type="submit" { "Revoke every token and enrolment" }
                }
                form method="post" action=(action("active")) {
                    (csrf_field(who))
                    @if member.active {
                        input type="hidden" name="active" value="false";
                        button class="nhsuk-button nhsuk-button--warning" id="deactivate" type="submit" { "Deactivate the account" }
                    } @else {
                        input type="hidden" name="active" value="true";
                        button class="nhsuk-button nhsuk-button--secondary" id="reactivate" type="submit" { "Reactivate the account" }
                    }
                }
            }
        },
    )
}
