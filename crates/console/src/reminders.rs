//! An administrator's dead letters of the appointment reminders: each reminder the dispatcher
//! gave up on (its appointment's time, attempts and last error; no personal data, the person by
//! client id), with a button to send it again; and, chosen with a GET form, the reminders
//! waiting to be sent, delivered or withheld. Who may, and what a replay does, is the
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
    /// Which reminders: `dead` (the default), `pending`, `delivered` or `withheld`.
    status: Option<String>,
}

/// The statuses the page lists, with their words (the application refuses any other).
const STATUSES: [(&str, &str); 4] = [
    ("dead", "Not delivered"),
    ("pending", "Waiting to be sent"),
    ("delivered", "Delivered"),
    ("withheld", "Withheld"),
];

async fn dead_letters(
    req: HttpRequest,
    done: web::Query<Done>,
    console: web::Data<Console>,
) -> HttpResponse {
    let session = signed_in!(req, console);
    let status = done
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("dead");
    match outbox(&console)
        .reminders(
            &session.principal,
            status,
            app::MAX_LIMIT,
            &app::records::ReadContext::new(None, crate::request_id(&req)),
        )
        .await
    {
        Ok(reminders) if status == "dead" => {
            let banner = (done.done.as_deref() == Some("replayed"))
                .then_some("The reminder will be sent again");
            page(StatusCode::OK, render(&session, &reminders, banner))
        }
        Ok(reminders) => page(StatusCode::OK, listed(&session, status, &reminders)),
        Err(e) => failure(Some(&session), &e),
    }
}

/// The GET form choosing which reminders to list.
fn chooser(current: &str) -> Markup {
    html! {
        form method="get" action="/console/admin/reminders" novalidate {
            div class="nhsuk-form-group" {
                label class="nhsuk-label" for="status" { "Show reminders" }
                select class="nhsuk-select" id="status" name="status" {
                    @for (code, words) in STATUSES {
                        option value=(code) selected[code == current] { (words) }
                    }
                }
            }
            button class="nhsuk-button nhsuk-button--secondary" id="show-reminders" type="submit" { "Show" }
        }
    }
}

/// The reminders of a status other than dead: when each appointment is, whose, and what
/// became of its reminder (no personal data: the person by client id).
fn listed(who: &ConsoleSession, status: &str, reminders: &[ReminderEntry]) -> Markup {
    let words = STATUSES
        .iter()
        .find(|(code, _)| *code == status)
        .map_or(status, |(_, words)| words);
    layout(
        &format!("Appointment reminders: {}", words.to_lowercase()),
        Some(who),
        html! {
            a class="nhsuk-back-link" href="/console/admin" { "Administration" }
            h1 class="nhsuk-heading-l" { "Appointment reminders: " (words.to_lowercase()) }
            p class="nhsuk-body" {
                "A reminder goes to the person a day before each appointment booked, only with "
                "their consent to be reminded, by the channel they chose."
            }
            (chooser(status))
            @if reminders.is_empty() {
                p class="nhsuk-body" id="no-reminders" { "None." }
            } @else {
                table class="nhsuk-table" id="reminders" {
                    caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { (words) ", by appointment time" }
                    (head(&["Appointment", "Client", "Due", "Channel", "Why withheld"]))
                    tbody class="nhsuk-table__body" {
                        @for r in reminders {
                            tr class="nhsuk-table__row" {
                                td class="nhsuk-table__cell" { (moment(r.scheduled_for)) }
                                td class="nhsuk-table__cell" { (r.client_id) }
                                td class="nhsuk-table__cell" { (moment(r.next_attempt_at)) }
                                td class="nhsuk-table__cell" { (r.channel.as_deref().unwrap_or("–")) }
                                td class="nhsuk-table__cell" { (r.withheld_reason.as_deref().map_or("–".to_owned(), |w| w.replace('_', " "))) }
                            }
                        }
                    }
                }
            }
        },
    )
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
            (chooser("dead"))
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
