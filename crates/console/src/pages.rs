//! The console's pages, in the NHS.UK frontend's markup: every page one layout (skip link,
//! header with who is signed in, main, footer), forms that work without JavaScript, errors as
//! an error summary linked to each field.

use app::caseload::{CaseloadFlag, CaseloadItem, CaseloadPage, CaseloadScope};
use app::records::{ClientRecord, JourneyPage};
use app::sessions::ConsoleSession;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{CaseStatus, ContactMode};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;
use uuid::Uuid;

use crate::assets::STYLESHEET;
use crate::forms::{ContactForm, FieldError};

/// A whole page: `title` names it (and the browser tab), `who` is the signed-in session.
pub fn layout(title: &str, who: Option<&ConsoleSession>, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – Casebook" }
                link rel="stylesheet" href=(STYLESHEET);
                link rel="icon" href="/assets/images/favicon.svg" type="image/svg+xml";
            }
            body {
                a class="nhsuk-skip-link" href="#maincontent" { "Skip to main content" }
                header class="nhsuk-header" role="banner" {
                    div class="nhsuk-header__container nhsuk-width-container" {
                        div class="nhsuk-header__service" {
                            a class="nhsuk-header__service-name" href="/console" { "Casebook" }
                        }
                        @if let Some(session) = who {
                            nav class="nhsuk-header__account" aria-label="Account" {
                                ul class="nhsuk-header__account-list" {
                                    li class="nhsuk-header__account-item" {
                                        (session.name) " (" (session.role_name()) ")"
                                    }
                                    li class="nhsuk-header__account-item" {
                                        form method="post" action="/console/sign-out" {
                                            (csrf_field(session))
                                            button class="nhsuk-header__account-button" id="sign-out" type="submit" { "Sign out" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(session) = who {
                        nav class="nhsuk-header__navigation" aria-label="Menu" {
                            div class="nhsuk-header__navigation-container nhsuk-width-container" {
                                ul class="nhsuk-header__navigation-list" {
                                    @if let Some(scope) = session.caseload() {
                                        li class="nhsuk-header__navigation-item" {
                                            a class="nhsuk-header__navigation-link" href="/console/caseload" { (caseload_title(&scope)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                div class="nhsuk-width-container" {
                    main class="nhsuk-main-wrapper" id="maincontent" {
                        (main)
                    }
                }
                footer role="contentinfo" {
                    div class="nhsuk-footer" {
                        div class="nhsuk-width-container" {
                            p class="nhsuk-body-s" {
                                "Casebook keeps special category health data. Every record you open is recorded with your name."
                            }
                        }
                    }
                }
            }
        }
    }
}

fn csrf_field(session: &ConsoleSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf_token()); }
}

fn caseload_title(scope: &CaseloadScope) -> &'static str {
    match scope {
        CaseloadScope::Own(_) => "My caseload",
        CaseloadScope::Team { .. } => "Team caseload",
    }
}

/// 29 November 2026.
pub fn day(date: NaiveDate) -> String {
    date.format("%-d %B %Y").to_string()
}

/// 29 November 2026 at 14:05 (UTC).
pub fn moment(at: DateTime<Utc>) -> String {
    at.format("%-d %B %Y at %H:%M").to_string()
}

fn short(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

/// A message page: `heading`, then a paragraph.
pub fn message(title: &str, who: Option<&ConsoleSession>, text: &str) -> Markup {
    layout(
        title,
        who,
        html! {
            h1 class="nhsuk-heading-l" { (title) }
            p class="nhsuk-body" { (text) }
        },
    )
}

/// Where someone lands without a session.
pub fn signed_out(note: Option<&str>) -> Markup {
    signed_out_with(note, None)
}

/// The sign-in page, with a button to sign in with the OpenID provider named `oidc` when one is
/// configured (a link, not a form: the provider is another site, which the page's
/// `form-action` does not allow).
pub fn signed_out_with(note: Option<&str>, oidc: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            h1 class="nhsuk-heading-l" { "Sign in to Casebook" }
            @if let Some(note) = note {
                div class="nhsuk-inset-text" { p { (note) } }
            }
            @if let Some(name) = oidc {
                p class="nhsuk-body" {
                    a class="nhsuk-button" id="oidc-sign-in" href="/console/oidc/start" role="button" draggable="false" {
                        "Sign in with " (name)
                    }
                }
                p class="nhsuk-body" {
                    "Or open the one-time sign-in link you were given."
                }
            } @else {
                p class="nhsuk-body" {
                    "Open the one-time sign-in link you were given. Ask your administrator for a new one if it has been used or has expired."
                }
            }
        },
    )
}

/// The page the OpenID provider's callback answers with once a session is made: it moves on
/// to the console at once. The browser arrived here from another site, and a `SameSite=Strict`
/// cookie is not sent on a redirect that site started; this page's own move is same-site, so
/// the session cookie goes with it.
pub fn signed_in_moving_on() -> Markup {
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="0; url=/console";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Signed in – Casebook" }
                link rel="stylesheet" href=(STYLESHEET);
            }
            body {
                div class="nhsuk-width-container" {
                    main class="nhsuk-main-wrapper" id="maincontent" {
                        h1 class="nhsuk-heading-l" { "Signed in" }
                        p class="nhsuk-body" { a href="/console" { "Continue to Casebook" } }
                    }
                }
            }
        }
    }
}

/// The sign-in link's page: a button that uses it (a link alone signs no one in, so a mail
/// scanner that follows it uses nothing up).
pub fn confirm_sign_in(code: &str) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            h1 class="nhsuk-heading-l" { "Sign in to Casebook" }
            p class="nhsuk-body" { "This link signs you in once. It cannot be used again." }
            form method="post" action="/console/sign-in" novalidate {
                input type="hidden" name="code" value=(code);
                button class="nhsuk-button" id="sign-in" type="submit" { "Sign in" }
            }
        },
    )
}

fn flag_tag(flag: CaseloadFlag) -> Markup {
    let (text, colour) = match flag {
        CaseloadFlag::NoContact => ("No recent contact", "nhsuk-tag--red"),
        CaseloadFlag::DidNotAttend => ("Missed appointments", "nhsuk-tag--orange"),
        CaseloadFlag::BaselineMissing => ("No baseline score", "nhsuk-tag--yellow"),
        CaseloadFlag::FollowUpDue => ("Follow-up score due", "nhsuk-tag--blue"),
    };
    html! { strong class={"nhsuk-tag " (colour)} { (text) } }
}

fn status_name(status: CaseStatus) -> &'static str {
    match status {
        CaseStatus::Unregistered => "Not registered",
        CaseStatus::Idle => "No open case",
        CaseStatus::Referred => "Referred",
        CaseStatus::Open => "Open",
        CaseStatus::Closed => "Closed",
    }
}

fn caseload_row(item: &CaseloadItem) -> Markup {
    html! {
        tr class="nhsuk-table__row" {
            td class="nhsuk-table__cell" {
                a href={"/console/people/" (item.client_id)} {
                    "Person " (short(item.client_id))
                    span class="nhsuk-u-visually-hidden" { ", " (item.area) }
                }
            }
            td class="nhsuk-table__cell" { (item.area) }
            td class="nhsuk-table__cell" { (status_name(item.status)) }
            td class="nhsuk-table__cell" {
                @match item.last_contact_at {
                    Some(at) => (day(at.date_naive())),
                    None => "None yet",
                }
            }
            td class="nhsuk-table__cell" {
                @match item.next_appointment_at {
                    Some(at) => (moment(at)),
                    None => "None booked",
                }
            }
            td class="nhsuk-table__cell" {
                @for flag in &item.flags { (flag_tag(*flag)) " " }
            }
        }
    }
}

/// A caseload, one row a person.
pub fn caseload(who: &ConsoleSession, page: &CaseloadPage) -> Markup {
    let title = who.caseload().as_ref().map_or("Caseload", caseload_title);
    layout(
        title,
        Some(who),
        html! {
            h1 class="nhsuk-heading-l" { (title) }
            @if page.items.is_empty() {
                p class="nhsuk-body" { "No one is on this caseload." }
            } @else {
                table class="nhsuk-table" {
                    caption class="nhsuk-table__caption" {
                        (page.items.len()) " people, as of log position " (page.as_of.position)
                    }
                    thead class="nhsuk-table__head" {
                        tr class="nhsuk-table__row" {
                            th class="nhsuk-table__header" scope="col" { "Person" }
                            th class="nhsuk-table__header" scope="col" { "Area" }
                            th class="nhsuk-table__header" scope="col" { "Status" }
                            th class="nhsuk-table__header" scope="col" { "Last contact" }
                            th class="nhsuk-table__header" scope="col" { "Next appointment" }
                            th class="nhsuk-table__header" scope="col" { "Needs attention" }
                        }
                    }
                    tbody class="nhsuk-table__body" {
                        @for item in &page.items { (caseload_row(item)) }
                    }
                }
                @if let Some(next) = page.next_cursor {
                    p class="nhsuk-body" { a href={"/console/caseload?cursor=" (next)} { "Next page" } }
                }
            }
        },
    )
}

/// `ContactRecorded` → `Contact recorded`.
fn event_name(event_type: &str) -> String {
    let mut out = String::new();
    for (i, c) in event_type.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The facts of a payload worth a line: its plain fields, ids left out.
fn facts(payload: &Value) -> Vec<(String, String)> {
    let Value::Object(fields) = payload else {
        return Vec::new();
    };
    fields
        .iter()
        .filter(|(k, _)| !k.ends_with("_id") && !k.ends_with("_ids"))
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.replace('_', " "),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
                _ => return None,
            };
            Some((k.replace('_', " "), text))
        })
        .take(6)
        .collect()
}

/// A person's page: their record, a form to record a contact, and their journey.
pub fn person(
    who: &ConsoleSession,
    record: &ClientRecord,
    journey: &JourneyPage,
    form: &ContactForm,
    errors: &[FieldError],
    recorded: bool,
) -> Markup {
    let name = match &record.personal {
        Some(p) => format!("{} {}", p.given_name, p.family_name),
        None if record.erased => "Personal details erased".to_owned(),
        None => format!("Person {}", short(record.client_id)),
    };
    layout(
        &name,
        Some(who),
        html! {
            @if !errors.is_empty() { (error_summary(errors)) }
            @if recorded {
                div class="nhsuk-notification-banner nhsuk-notification-banner--success" role="alert" aria-labelledby="recorded-title" {
                    div class="nhsuk-notification-banner__header" {
                        h2 class="nhsuk-notification-banner__title" id="recorded-title" { "Success" }
                    }
                    div class="nhsuk-notification-banner__content" {
                        p class="nhsuk-notification-banner__heading" { "Contact recorded" }
                    }
                }
            }
            h1 class="nhsuk-heading-l" { (name) }
            dl class="nhsuk-summary-list" {
                (summary_row("Status", status_name(record.status)))
                (summary_row("Area", record.area.as_deref().unwrap_or("Not recorded")))
                @if let Some(p) = &record.personal {
                    @if let Some(dob) = p.date_of_birth { (summary_row("Date of birth", &day(dob))) }
                    @if let Some(nhs) = &p.nhs_number { (summary_row("NHS number", &domain::code(nhs))) }
                    @if let Some(phone) = &p.phone { (summary_row("Telephone", phone)) }
                }
                (summary_row("Contacts", &record.contacts.to_string()))
                (summary_row("Assessments", &record.assessments.to_string()))
                (summary_row("Onward connections", &record.connections.to_string()))
            }
            @if record.status == CaseStatus::Open {
                (contact_form(who, record, form, errors))
            }
            h2 class="nhsuk-heading-m" id="journey" { "Journey" }
            ol class="nhsuk-list" {
                @for entry in journey.entries.iter().rev() {
                    li class="nhsuk-card" {
                        div class="nhsuk-card__content" {
                            h3 class="nhsuk-card__heading nhsuk-heading-s" { (event_name(&entry.event_type)) }
                            p class="nhsuk-body-s" {
                                "Happened " (moment(entry.occurred_at)) ". Recorded " (moment(entry.recorded_at))
                                " by a " (entry.actor_role.replace('_', " ")) "."
                            }
                            @let shown = entry.corrected_payload.as_ref().unwrap_or(&entry.payload);
                            @let facts = facts(shown);
                            @if !facts.is_empty() {
                                ul class="nhsuk-list nhsuk-body-s" {
                                    @for (k, v) in &facts { li { (k) ": " (v) } }
                                }
                            }
                            @if !entry.corrected_by.is_empty() {
                                p class="nhsuk-body-s" { strong class="nhsuk-tag nhsuk-tag--grey" { "Corrected" } }
                            }
                        }
                    }
                }
            }
            @if journey.next_cursor.is_some() {
                p class="nhsuk-body-s" { "Older entries are not shown." }
            }
        },
    )
}

fn summary_row(key: &str, value: &str) -> Markup {
    html! {
        div class="nhsuk-summary-list__row" {
            dt class="nhsuk-summary-list__key" { (key) }
            dd class="nhsuk-summary-list__value" { (value) }
        }
    }
}

fn error_summary(errors: &[FieldError]) -> Markup {
    html! {
        div class="nhsuk-error-summary" aria-labelledby="error-summary-title" role="alert" tabindex="-1" {
            h2 class="nhsuk-error-summary__title" id="error-summary-title" { "There is a problem" }
            div class="nhsuk-error-summary__body" {
                ul class="nhsuk-list nhsuk-error-summary__list" {
                    @for e in errors {
                        li { a href={"#" (e.field)} { (e.message) } }
                    }
                }
            }
        }
    }
}

fn error_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a FieldError> {
    errors.iter().find(|e| e.field == field)
}

fn error_message(error: Option<&FieldError>) -> Markup {
    html! {
        @if let Some(e) = error {
            span class="nhsuk-error-message" id={(e.field) "-error"} {
                span class="nhsuk-u-visually-hidden" { "Error: " } (e.message)
            }
        }
    }
}

fn group_class(error: Option<&FieldError>) -> &'static str {
    if error.is_some() {
        "nhsuk-form-group nhsuk-form-group--error"
    } else {
        "nhsuk-form-group"
    }
}

fn contact_form(
    who: &ConsoleSession,
    record: &ClientRecord,
    form: &ContactForm,
    errors: &[FieldError],
) -> Markup {
    let mode_error = error_for(errors, "mode");
    let minutes_error = error_for(errors, "minutes");
    let date_error = error_for(errors, "contacted_on");
    let time_error = error_for(errors, "contacted_time");
    let note_error = error_for(errors, "note");
    html! {
        h2 class="nhsuk-heading-m" { "Record a contact" }
        form method="post" action={"/console/people/" (record.client_id) "/contacts"} novalidate {
            (csrf_field(who))
            input type="hidden" name="contact_id" value=(form.contact_id);
            div class=(group_class(mode_error)) {
                fieldset class="nhsuk-fieldset" aria-describedby=[mode_error.map(|_| "mode-error")] {
                    legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "How did the contact take place?" }
                    (error_message(mode_error))
                    div class="nhsuk-radios" {
                        @for (i, mode) in ContactMode::ALL.iter().enumerate() {
                            @let code = domain::code(mode);
                            @let id = if i == 0 { "mode".to_owned() } else { format!("mode-{code}") };
                            div class="nhsuk-radios__item" {
                                input class="nhsuk-radios__input" id=(id) name="mode" type="radio" value=(code)
                                    checked[form.mode.as_deref() == Some(code.as_str())];
                                label class="nhsuk-label nhsuk-radios__label" for=(id) { (capitalise(mode.label())) }
                            }
                        }
                    }
                }
            }
            div class=(group_class(minutes_error)) {
                label class="nhsuk-label" for="minutes" { "How many minutes did it take?" }
                (error_message(minutes_error))
                input class={"nhsuk-input nhsuk-input--width-4" @if minutes_error.is_some() { " nhsuk-input--error" }}
                    id="minutes" name="minutes" type="text" inputmode="numeric" spellcheck="false"
                    value=(form.minutes) aria-describedby=[minutes_error.map(|_| "minutes-error")];
            }
            div class=(group_class(date_error)) {
                label class="nhsuk-label" for="contacted_on" { "Date of the contact" }
                div class="nhsuk-hint" id="contacted_on-hint" { "For example, 27 November 2026" }
                (error_message(date_error))
                input class={"nhsuk-input nhsuk-input--width-10" @if date_error.is_some() { " nhsuk-input--error" }}
                    id="contacted_on" name="contacted_on" type="date" value=(form.contacted_on)
                    aria-describedby={"contacted_on-hint" @if date_error.is_some() { " contacted_on-error" }};
            }
            div class=(group_class(time_error)) {
                label class="nhsuk-label" for="contacted_time" { "Time of the contact (UK time is not applied: UTC)" }
                (error_message(time_error))
                input class={"nhsuk-input nhsuk-input--width-5" @if time_error.is_some() { " nhsuk-input--error" }}
                    id="contacted_time" name="contacted_time" type="time" value=(form.contacted_time)
                    aria-describedby=[time_error.map(|_| "contacted_time-error")];
            }
            div class=(group_class(note_error)) {
                label class="nhsuk-label" for="note" { "Note (optional)" }
                (error_message(note_error))
                textarea class="nhsuk-textarea" id="note" name="note" rows="3"
                    aria-describedby=[note_error.map(|_| "note-error")] { (form.note) }
            }
            button class="nhsuk-button" id="record-contact" type="submit" { "Record contact" }
        }
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
