//! An administrator's dead letters of the appointment reminders: each reminder the dispatcher
//! gave up on (its appointment's time, attempts and last error; no personal data, the person by
//! client id), with a button to send it again. Who may, and what a replay does, is the
//! application's ([`app::reminders::ReminderAdmin`]); the page has the GP dead letters' shape.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use app::AppError;
use app::reminders::{ReminderAdmin, ReminderEntry};
use app::sessions::ConsoleSession;
use maud::{Markup, html};
use uuid::Uuid;

use crate::pages::{csrf_field, head, layout, moment, success};
use crate::{Console, failure, form_session, forms, page, see_other, session};

/// The routes: the dead letters and the replay form.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/console/admin/reminders", web::get().to(dead_letters))
        .route("/console/admin/reminders/replay", web::post().to(replay));
}

fn outbox(console: &Console) -> ReminderAdmin {
    ReminderAdmin::new(console.cases.store().clone(), console.cases.clock().clone())
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
        .reminders(
            &session.principal,
            "dead",
            app::MAX_LIMIT,
            &app::records::ReadContext::new(None, crate::request_id(&req)),
        )
        .await
    {
        Ok(reminders) => {
            let banner = (done.done.as_deref() == Some("replayed"))
                .then_some("The reminder will be sent again");
            page(StatusCode::OK, render(&session, &reminders, banner))
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
            &AppError::NotFound("no such reminder".into()),
        );
    };
    match outbox(&console)
        .replay(&session.principal, message_id)
        .await
    {
        Ok(()) => see_other("/console/admin/reminders?done=replayed"),
        Err(e) => failure(Some(&session), &e),
    }
}

fn render(who: &ConsoleSession, reminders: &[ReminderEntry], banner: Option<&str>) -> Markup {
    layout(
        "Appointment reminders not delivered",
        Some(who),
        html! {
            @if let Some(banner) = banner { (success(banner)) }
            a class="nhsuk-back-link" href="/console/admin" { "Administration" }
            h1 class="nhsuk-heading-l" { "Appointment reminders not delivered" }
            p class="nhsuk-body" {
                "Each reminder here was tried until its last attempt, or refused by the "
                "notification service, and not delivered. Put right what stopped it, then send it "
                "again: it still goes only with the person's consent, before the appointment."
            }
            @if reminders.is_empty() {
                p class="nhsuk-body" id="no-dead-letters" { "Every reminder has been delivered, withheld or is still being tried." }
            } @else {
                table class="nhsuk-table" id="dead-letters" {
                    caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Reminders not delivered, by appointment time" }
                    (head(&["Appointment", "Client", "#Attempts", "Last error", "Action"]))
                    tbody class="nhsuk-table__body" {
                        @for r in reminders {
                            tr class="nhsuk-table__row" {
                                td class="nhsuk-table__cell" { (moment(r.scheduled_for)) }
                                td class="nhsuk-table__cell" { (r.client_id) }
                                td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (r.attempts) }
                                td class="nhsuk-table__cell" { (r.last_error.as_deref().unwrap_or("–")) }
                                td class="nhsuk-table__cell" {
                                    form method="post" action="/console/admin/reminders/replay" {
                                        (csrf_field(who))
                                        input type="hidden" name="message_id" value=(r.message_id);
                                        button class="nhsuk-button nhsuk-button--secondary nhsuk-u-margin-bottom-0" type="submit" {
                                            "Send again" span class="nhsuk-u-visually-hidden" { " the reminder " (r.message_id) }
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
