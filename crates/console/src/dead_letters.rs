//! An administrator's dead letters of an outbox: each row the dispatcher gave up on (no
//! personal data, the person by client id), with a button to send it again. One page for both
//! outboxes ([`crate::gp_messages`], [`crate::reminders`]), each saying its path, its words and
//! its leading columns ([`DeadLetters`]). Who may, and what a replay does, is the
//! application's ([`app::outbox::OutboxAdmin`]).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use app::AppError;
use app::outbox::{Listed, OutboxAdmin, OutboxStatus};
use app::sessions::ConsoleSession;
use maud::{Markup, html};
use uuid::Uuid;

use crate::pages::{csrf_field, head, layout, success};
use crate::{Console, failure, form_session, forms, page, see_other, session};

/// What a page of one outbox's dead letters says and shows.
pub(crate) trait DeadLetters: Listed + 'static {
    /// The page's path; the replay form posts to it with `/replay`.
    const PATH: &'static str;
    /// The page's title and heading.
    const TITLE: &'static str;
    /// `reminder`, `message`.
    const NOUN: &'static str;
    /// What a dead letter is, and what to do about it.
    const INTRO: &'static str;
    /// Said when there is none.
    const NONE: &'static str;
    /// The table's caption (for screen readers).
    const CAPTION: &'static str;
    /// The headings of [`DeadLetters::cells`].
    const HEADINGS: &'static [&'static str];
    /// What every dead letter shows.
    fn letter(&self) -> Letter<'_>;
    /// The leading cells of its row.
    fn cells(&self) -> Markup;
    /// The title of a list of another status than dead (its status's words follow).
    const LISTED_TITLE: &'static str = Self::TITLE;
    /// The statuses a GET form on the page may list instead of the dead letters, with their
    /// words (`dead` first); none, no form. The application refuses any other.
    const STATUSES: &'static [(&'static str, &'static str)] = &[];
    /// The headings of [`DeadLetters::listed_cells`].
    const LISTED_HEADINGS: &'static [&'static str] = &[];
    /// Its row in a list of another status than dead.
    fn listed_cells(&self) -> Markup {
        self.cells()
    }
}

/// What every dead letter shows, whichever its outbox.
pub(crate) struct Letter<'a> {
    /// Its id, as its replay names it.
    pub message_id: Uuid,
    /// Attempts so far.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<&'a str>,
}

impl<'a> Letter<'a> {
    /// The letter of a row with these fields.
    pub(crate) fn of(message_id: Uuid, attempts: i32, last_error: Option<&'a str>) -> Letter<'a> {
        Letter {
            message_id,
            attempts,
            last_error,
        }
    }
}

/// The routes of `E`'s page: the dead letters and the replay form.
pub(crate) fn configure<E: DeadLetters>(config: &mut web::ServiceConfig) {
    config
        .route(E::PATH, web::get().to(dead_letters::<E>))
        .route(&format!("{}/replay", E::PATH), web::post().to(replay::<E>));
}

fn outbox<E: Listed>(console: &Console) -> OutboxAdmin<E> {
    OutboxAdmin::new(console.cases.store().clone(), console.cases.clock().clone())
}

#[derive(serde::Deserialize)]
struct Done {
    done: Option<String>,
    /// Which rows: `dead` (the default), or one of [`DeadLetters::STATUSES`].
    status: Option<String>,
}

async fn dead_letters<E: DeadLetters>(
    req: HttpRequest,
    done: web::Query<Done>,
    console: web::Data<Console>,
) -> HttpResponse {
    let session = signed_in!(req, console);
    let status = match done.status.as_deref().filter(|s| !s.is_empty()) {
        None => OutboxStatus::Dead,
        Some(status) => match status.parse::<OutboxStatus>() {
            Ok(status) => status,
            Err(e) => return failure(Some(&session), &e),
        },
    };
    match outbox::<E>(&console)
        .list(
            &session.principal,
            status,
            app::MAX_LIMIT,
            &app::records::ReadContext::new(None, crate::request_id(&req)),
        )
        .await
    {
        Ok(rows) if status == OutboxStatus::Dead => {
            let banner = (done.done.as_deref() == Some("replayed"))
                .then(|| format!("The {} will be sent again", E::NOUN));
            page(StatusCode::OK, render(&session, &rows, banner.as_deref()))
        }
        Ok(rows) => page(StatusCode::OK, listed(&session, status.as_str(), &rows)),
        Err(e) => failure(Some(&session), &e),
    }
}

/// The GET form choosing which rows to list (none when the outbox names no statuses).
fn chooser<E: DeadLetters>(current: &str) -> Markup {
    html! {
        @if !E::STATUSES.is_empty() {
            form method="get" action=(E::PATH) novalidate {
                div class="nhsuk-form-group" {
                    label class="nhsuk-label" for="status" { "Show " (E::NOUN) "s" }
                    select class="nhsuk-select" id="status" name="status" {
                        @for (code, words) in E::STATUSES {
                            option value=(code) selected[*code == current] { (words) }
                        }
                    }
                }
                button class="nhsuk-button nhsuk-button--secondary" id=(format!("show-{}s", E::NOUN)) type="submit" { "Show" }
            }
        }
    }
}

/// The rows of a status other than dead (no personal data: the person by client id).
fn listed<E: DeadLetters>(who: &ConsoleSession, status: &str, rows: &[E]) -> Markup {
    let words = E::STATUSES
        .iter()
        .find(|(code, _)| *code == status)
        .map_or(status, |(_, words)| words)
        .to_lowercase();
    let title = format!("{}: {words}", E::LISTED_TITLE);
    let id = format!("{}s", E::NOUN);
    layout(
        &title,
        Some(who),
        html! {
            a class="nhsuk-back-link" href="/console/admin" { "Administration" }
            h1 class="nhsuk-heading-l" { (title) }
            (chooser::<E>(status))
            @if rows.is_empty() {
                p class="nhsuk-body" id=(format!("no-{id}")) { "None." }
            } @else {
                div class="nhsuk-table-container" role="region" aria-label=(title) tabindex="0" {
                    table class="nhsuk-table" id=(id) {
                        caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { (title) }
                        (head(E::LISTED_HEADINGS))
                        tbody class="nhsuk-table__body" {
                            @for row in rows {
                                tr class="nhsuk-table__row" { (row.listed_cells()) }
                            }
                        }
                    }
                }
            }
        },
    )
}

async fn replay<E: DeadLetters>(
    req: HttpRequest,
    body: web::Bytes,
    console: web::Data<Console>,
) -> HttpResponse {
    let (fields, session) = posted_form!(req, console, body);
    let Some(message_id) = fields
        .get("message_id")
        .and_then(|v| Uuid::try_parse(v).ok())
    else {
        return failure(
            Some(&session),
            &AppError::NotFound(format!("no such {}", E::NOUN)),
        );
    };
    match outbox::<E>(&console)
        .replay(&session.principal, message_id)
        .await
    {
        Ok(()) => see_other(&format!("{}?done=replayed", E::PATH)),
        Err(e) => failure(Some(&session), &e),
    }
}

fn render<E: DeadLetters>(who: &ConsoleSession, rows: &[E], banner: Option<&str>) -> Markup {
    let headings: Vec<&str> = E::HEADINGS
        .iter()
        .copied()
        .chain(["#Attempts", "Last error", "Action"])
        .collect();
    layout(
        E::TITLE,
        Some(who),
        html! {
            @if let Some(banner) = banner { (success(banner)) }
            a class="nhsuk-back-link" href="/console/admin" { "Administration" }
            h1 class="nhsuk-heading-l" { (E::TITLE) }
            p class="nhsuk-body" { (E::INTRO) }
            (chooser::<E>("dead"))
            @if rows.is_empty() {
                p class="nhsuk-body" id="no-dead-letters" { (E::NONE) }
            } @else {
                div class="nhsuk-table-container" role="region" aria-label=(E::CAPTION) tabindex="0" {
                    table class="nhsuk-table" id="dead-letters" {
                        caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { (E::CAPTION) }
                        (head(&headings))
                        tbody class="nhsuk-table__body" {
                            @for row in rows {
                                @let letter = row.letter();
                                tr class="nhsuk-table__row" {
                                    (row.cells())
                                    td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (letter.attempts) }
                                    td class="nhsuk-table__cell" { (letter.last_error.unwrap_or("–")) }
                                    td class="nhsuk-table__cell" {
                                        form method="post" action=(format!("{}/replay", E::PATH)) {
                                            (csrf_field(who))
                                            input type="hidden" name="message_id" value=(letter.message_id);
                                            button class="nhsuk-button nhsuk-button--secondary nhsuk-u-margin-bottom-0" type="submit" {
                                                "Send again" span class="nhsuk-u-visually-hidden" { " the " (E::NOUN) " " (letter.message_id) }
                                            }
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
