//! An administrator's dead letters of the messages back to GP practices: each message the
//! dispatcher gave up on (its code, practice, attempts and last error; no personal data, the
//! person by client id), with a button to send it again. Who may, and what a replay does, is
//! the application's ([`app::gp_outbox::GpOutboxAdmin`]).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use app::AppError;
use app::gp_outbox::{GpOutboxAdmin, OutboxEntry};
use app::sessions::ConsoleSession;
use maud::{Markup, html};
use uuid::Uuid;

use crate::pages::{csrf_field, head, layout, moment, success};
use crate::{Console, failure, form_session, forms, page, see_other, session};

/// The routes: the dead letters and the replay form.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/console/admin/gp-messages", web::get().to(dead_letters))
        .route("/console/admin/gp-messages/replay", web::post().to(replay));
}

fn outbox(console: &Console) -> GpOutboxAdmin {
    GpOutboxAdmin::new(console.cases.store().clone(), console.cases.clock().clone())
}

#[derive(serde::Deserialize)]
struct Done {
    done: Option<String>,
}

async fn dead_letters(
    req: HttpRequest,
    done: web::Query<Done>,
    console: web::Data<Console>,
) -> HttpResponse {
    let session = signed_in!(req, console);
    match outbox(&console)
        .messages(
            &session.principal,
            "dead",
            app::MAX_LIMIT,
            &app::records::ReadContext::new(None, crate::request_id(&req)),
        )
        .await
    {
        Ok(messages) => {
            let banner = (done.done.as_deref() == Some("replayed"))
                .then_some("The message will be sent again");
            page(StatusCode::OK, render(&session, &messages, banner))
        }
        Err(e) => failure(Some(&session), &e),
    }
}

async fn replay(req: HttpRequest, body: web::Bytes, console: web::Data<Console>) -> HttpResponse {
    let fields = forms::fields(&body);
    let session = match form_session(&req, &console, &fields).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Some(message_id) = fields
        .get("message_id")
        .and_then(|v| Uuid::try_parse(v).ok())
    else {
        return failure(
            Some(&session),
            &AppError::NotFound("no such message".into()),
        );
    };
    match outbox(&console)
        .replay(&session.principal, message_id)
        .await
    {
        Ok(()) => see_other("/console/admin/gp-messages?done=replayed"),
        Err(e) => failure(Some(&session), &e),
    }
}

fn render(who: &ConsoleSession, messages: &[OutboxEntry], banner: Option<&str>) -> Markup {
    layout(
        "Messages to GP practices not delivered",
        Some(who),
        html! {
            @if let Some(banner) = banner { (success(banner)) }
            a class="nhsuk-back-link" href="/console/admin" { "Administration" }
            h1 class="nhsuk-heading-l" { "Messages to GP practices not delivered" }
            p class="nhsuk-body" {
                "Each message here was tried until its last attempt and not delivered. "
                "Later messages about the same person wait until it is. Put right what stopped it "
                "(the practice's endpoint), then send it again."
            }
            @if messages.is_empty() {
                p class="nhsuk-body" id="no-dead-letters" { "Every message has been delivered or is still being tried." }
            } @else {
                table class="nhsuk-table" id="dead-letters" {
                    caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Messages not delivered, oldest first" }
                    (head(&["Decided", "Message", "Practice", "#Attempts", "Last error", "Action"]))
                    tbody class="nhsuk-table__body" {
                        @for m in messages {
                            tr class="nhsuk-table__row" {
                                td class="nhsuk-table__cell" { (moment(m.occurred_at)) }
                                td class="nhsuk-table__cell" { (m.kind.replace('_', " ")) " (SNOMED CT " (m.code) ")" }
                                td class="nhsuk-table__cell" { (m.practice_ods.as_deref().unwrap_or("–")) }
                                td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (m.attempts) }
                                td class="nhsuk-table__cell" { (m.last_error.as_deref().unwrap_or("–")) }
                                td class="nhsuk-table__cell" {
                                    form method="post" action="/console/admin/gp-messages/replay" {
                                        (csrf_field(who))
                                        input type="hidden" name="message_id" value=(m.message_id);
                                        button class="nhsuk-button nhsuk-button--secondary nhsuk-u-margin-bottom-0" type="submit" {
                                            "Send again" span class="nhsuk-u-visually-hidden" { " the message " (m.message_id) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
