//! Case notes and safeguarding on the person's page: the risk flag while a concern is open, each
//! concern with who was told and what came of it, the notes (important ones first), and a page
//! of its own for each form (write a note, pin or unpin one, raise a concern, add to one, close
//! one). The application decides; these pages read the forms and show its answer.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use app::records::ClientRecord;
use app::safeguarding::{CaseNote, SafeguardingConcern};
use app::sessions::ConsoleSession;
use chrono::{NaiveDate, NaiveTime};
use domain::{
    CaseCommand, ConcernId, NOTE_TEXT_LIMIT, NoteAdded, NoteId, NotePinned, NoteUnpinned,
    SafeguardingConcernClosed, SafeguardingConcernRaised, SafeguardingConcernUpdated,
};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::Console;
use crate::connect::{PersonForm, Shown, form_page, refused_at, show, status};
use crate::forms::{FieldError, form_id, text};
use crate::page;
use crate::pages::{csrf_field, error_for, error_message, group_class, moment};

/// The routes of these forms, under `/console/people/{client_id}`.
pub(crate) fn routes(config: &mut web::ServiceConfig) {
    use crate::connect::post;
    config
        .route("/notes/new", web::get().to(note_page))
        .route("/notes", web::post().to(post::<NoteForm>))
        .route("/notes/pin", web::post().to(post::<PinForm>))
        .route("/safeguarding/new", web::get().to(concern_page))
        .route("/safeguarding", web::post().to(post::<ConcernForm>))
        .route("/safeguarding/update", web::get().to(update_page))
        .route("/safeguarding/update", web::post().to(post::<UpdateForm>))
        .route("/safeguarding/close", web::get().to(close_page))
        .route(
            "/safeguarding/close",
            web::post().to(post::<CloseConcernForm>),
        );
}

/// What the banner of the person's page says after one of these forms.
pub(crate) fn banner(done: &str) -> Option<&'static str> {
    Some(match done {
        "note" => "Note written",
        "note_pin" => "Note's importance changed",
        "concern" => "Safeguarding concern raised",
        "concern_updated" => "Safeguarding concern updated",
        "concern_closed" => "Safeguarding concern closed",
        _ => return None,
    })
}

/// The risk flag, at the top of the person's page while a concern is open.
pub(crate) fn risk_flag(record: &ClientRecord) -> Markup {
    html! {
        @if record.at_risk {
            div class="nhsuk-warning-callout" id="risk-flag" {
                h3 class="nhsuk-warning-callout__label" {
                    span role="text" { span class="nhsuk-u-visually-hidden" { "Important: " } "Safeguarding concern open" }
                }
                p { "A safeguarding concern is open on this case. Read it before any contact or visit." }
                p { a href="#safeguarding" { "Go to the concern" } }
            }
        }
    }
}

/// The concerns and the notes, for the person's page.
pub(crate) fn section(who: &ConsoleSession, record: &ClientRecord) -> Markup {
    let base = format!("/console/people/{}", record.client_id);
    let works = who.caseload().is_some() && !record.erased;
    html! {
        h2 class="nhsuk-heading-m" id="safeguarding" { "Safeguarding" }
        @if record.safeguarding_concerns.is_empty() {
            p class="nhsuk-body" { "No safeguarding concern has been raised." }
        }
        @for concern in &record.safeguarding_concerns {
            (concern_card(who, &base, concern, works))
        }
        @if works {
            p class="nhsuk-body" { a id="raise-concern" href={(base) "/safeguarding/new"} { "Raise a safeguarding concern" } }
        }
        h2 class="nhsuk-heading-m" id="notes" { "Case notes" }
        @if record.notes.is_empty() {
            p class="nhsuk-body" { "No notes yet." }
        }
        @for note in &record.notes {
            (note_card(who, &base, note, works))
        }
        @if works {
            p class="nhsuk-body" { a id="write-note" href={(base) "/notes/new"} { "Write a note" } }
        }
    }
}

fn concern_card(
    who: &ConsoleSession,
    base: &str,
    concern: &SafeguardingConcern,
    works: bool,
) -> Markup {
    html! {
        div class="nhsuk-card" id={"concern-" (concern.concern_id)} {
            div class="nhsuk-card__content" {
                h3 class="nhsuk-card__heading nhsuk-heading-s" {
                    (concern.category_name) " "
                    @if concern.open {
                        strong class="nhsuk-tag nhsuk-tag--red" { "Open" }
                    } @else {
                        strong class="nhsuk-tag nhsuk-tag--grey" { "Closed" }
                    }
                }
                p class="nhsuk-body" { (concern.details) }
                dl class="nhsuk-summary-list" {
                    (row("Raised", &moment(concern.raised_at)))
                    (row("Who was told", &concern.told))
                    (row("When they were told", &moment(concern.told_at)))
                    @for update in &concern.updates {
                        @if let (Some(told), Some(at)) = (&update.told, update.told_at) {
                            (row("Also told", &format!("{told}, {}", moment(at))))
                        }
                    }
                    (row("Outcome", concern.outcome.as_deref().unwrap_or("Not recorded yet")))
                    @if let Some(reason) = &concern.closure_reason {
                        (row("Closed because", reason))
                    }
                }
                @if concern.open && works {
                    p class="nhsuk-body" {
                        a href={(base) "/safeguarding/update?concern_id=" (concern.concern_id)} { "Add to this concern" }
                        @if who.closes_concerns() {
                            " · "
                            a href={(base) "/safeguarding/close?concern_id=" (concern.concern_id)} { "Close this concern" }
                        }
                    }
                }
            }
        }
    }
}

fn note_card(who: &ConsoleSession, base: &str, note: &CaseNote, works: bool) -> Markup {
    html! {
        div class="nhsuk-card" id={"note-" (note.note_id)} {
            div class="nhsuk-card__content" {
                @if note.important {
                    strong class="nhsuk-tag nhsuk-tag--orange" { "Important" }
                }
                p class="nhsuk-body" { (note.text) }
                p class="nhsuk-body-s" { "Written " (moment(note.written_at)) "." }
                @if works {
                    form method="post" action={(base) "/notes/pin"} novalidate {
                        (csrf_field(who))
                        input type="hidden" name="pin_id" value=(Uuid::new_v4());
                        input type="hidden" name="note_id" value=(note.note_id);
                        @if note.important {
                            input type="hidden" name="pin" value="off";
                            button class="nhsuk-button nhsuk-button--secondary" type="submit" { "Unpin" }
                        } @else {
                            input type="hidden" name="pin" value="on";
                            button class="nhsuk-button nhsuk-button--secondary" type="submit" { "Pin as important" }
                        }
                    }
                }
            }
        }
    }
}

fn row(key: &str, value: &str) -> Markup {
    html! {
        div class="nhsuk-summary-list__row" {
            dt class="nhsuk-summary-list__key" { (key) }
            dd class="nhsuk-summary-list__value" { (value) }
        }
    }
}

/// A text area kept as typed (`name` is also its id).
fn area(name: &str, label: &str, hint: Option<&str>, value: &str, errors: &[FieldError]) -> Markup {
    let error = error_for(errors, name);
    html! {
        div class=(group_class(error)) {
            label class="nhsuk-label" for=(name) { (label) }
            @if let Some(hint) = hint { div class="nhsuk-hint" { (hint) } }
            (error_message(error))
            textarea class={"nhsuk-textarea" @if error.is_some() { " nhsuk-textarea--error" }}
                id=(name) name=(name) rows="4" aria-describedby=[error.map(|_| format!("{name}-error"))] { (value) }
        }
    }
}

/// A date and a time, kept as typed (`name_date`, `name_time`).
fn when(name: &str, label: &str, (date, time): (&str, &str), errors: &[FieldError]) -> Markup {
    let error = error_for(errors, name);
    html! {
        div class=(group_class(error)) {
            fieldset class="nhsuk-fieldset" aria-describedby=[error.map(|_| format!("{name}-error"))] {
                legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { (label) }
                (error_message(error))
                label class="nhsuk-label" for=(name) { "Date (YYYY-MM-DD)" }
                input class="nhsuk-input nhsuk-input--width-10" id=(name) name={(name) "_date"} type="date" value=(date);
                label class="nhsuk-label" for={(name) "_time"} { "Time (HH:MM)" }
                input class="nhsuk-input nhsuk-input--width-5" id={(name) "_time"} name={(name) "_time"} type="time" value=(time);
            }
        }
    }
}

/// A date and time as typed, or the error at `field`. Blank both: none.
fn typed_moment(
    (date, time): (&str, &str),
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    if date.is_empty() && time.is_empty() {
        return None;
    }
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok();
    let time = NaiveTime::parse_from_str(time, "%H:%M").ok();
    match (date, time) {
        // Typed on a UK wall clock, as every console time is.
        (Some(d), Some(t)) => {
            let at = crate::local::instant(d, t);
            if at.is_none() {
                errors.push(FieldError::new(
                    field,
                    "That time did not happen: the clocks went forward an hour",
                ));
            }
            at
        }
        _ => {
            errors.push(FieldError::new(
                field,
                "Enter a real date and a time, like 2026-03-10 and 14:30",
            ));
            None
        }
    }
}

/// Text as typed: none when blank; an error at `field` when over `limit` characters.
fn typed(value: &str, field: &str, limit: usize, errors: &mut Vec<FieldError>) -> Option<String> {
    if value.chars().count() > limit {
        errors.push(FieldError::new(
            field,
            format!("This must be {limit} characters or fewer"),
        ));
    }
    Some(value.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Writing a note.
#[derive(Clone, Debug, Default)]
pub(crate) struct NoteForm {
    note_id: Uuid,
    text: String,
    important: bool,
}

impl PersonForm for NoteForm {
    const DONE: &'static str = "note";

    fn from_fields(fields: &HashMap<String, String>) -> NoteForm {
        NoteForm {
            note_id: form_id(fields, "note_id"),
            text: fields.get("text").cloned().unwrap_or_default(),
            important: fields.get("important").is_some_and(|v| v == "yes"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let text = typed(&self.text, "text", NOTE_TEXT_LIMIT, &mut errors);
        match text {
            Some(text) if errors.is_empty() => Ok(CaseCommand::AddNote(NoteAdded {
                note_id: NoteId(self.note_id),
                text,
                important: self.important,
            })),
            None if errors.is_empty() => Err(vec![FieldError::new("text", "Write the note")]),
            _ => Err(errors),
        }
    }

    fn key(&self) -> String {
        format!("console-note-{}", self.note_id)
    }

    fn refused_at(&self, field: Option<&str>) -> String {
        refused_at(field, &[], &["text"], "text")
    }

    async fn again(&self, on: &Shown<'_>, errors: &[FieldError]) -> HttpResponse {
        let Shown {
            session, record, ..
        } = *on;
        let body = html! {
            form method="post" action={"/console/people/" (record.client_id) "/notes"} novalidate {
                (csrf_field(session))
                input type="hidden" name="note_id" value=(self.note_id);
                (area("text", "Note", Some("Kept with the person's record, and erased with it"), &self.text, errors))
                div class="nhsuk-checkboxes" {
                    div class="nhsuk-checkboxes__item" {
                        input class="nhsuk-checkboxes__input" id="important" name="important" type="checkbox" value="yes" checked[self.important];
                        label class="nhsuk-label nhsuk-checkboxes__label" for="important" { "Important: pin it to the top" }
                    }
                }
                button class="nhsuk-button" id="save-note" type="submit" { "Save the note" }
            }
        };
        page(
            status(errors),
            form_page(session, record, "Write a note", errors, body),
        )
    }
}

async fn note_page(
    req: HttpRequest,
    path: web::Path<String>,
    console: web::Data<Console>,
) -> HttpResponse {
    let form = NoteForm {
        note_id: Uuid::new_v4(),
        ..NoteForm::default()
    };
    show(&req, &console, &path, &form).await
}

/// Pinning a note as important, or taking the pin off.
#[derive(Clone, Debug, Default)]
pub(crate) struct PinForm {
    pin_id: Uuid,
    note_id: String,
    pin: bool,
}

impl PersonForm for PinForm {
    const DONE: &'static str = "note_pin";

    fn from_fields(fields: &HashMap<String, String>) -> PinForm {
        PinForm {
            pin_id: form_id(fields, "pin_id"),
            note_id: text(fields, "note_id"),
            pin: fields.get("pin").is_some_and(|v| v == "on"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let Ok(note_id) = Uuid::try_parse(&self.note_id).map(NoteId) else {
            return Err(vec![FieldError::new(
                "note_id",
                "This note is not on the record: reload the page",
            )]);
        };
        Ok(if self.pin {
            CaseCommand::PinNote(NotePinned { note_id })
        } else {
            CaseCommand::UnpinNote(NoteUnpinned { note_id })
        })
    }

    fn key(&self) -> String {
        format!("console-note-pin-{}", self.pin_id)
    }

    fn refused_at(&self, _field: Option<&str>) -> String {
        "note_id".to_owned()
    }

    async fn again(&self, on: &Shown<'_>, errors: &[FieldError]) -> HttpResponse {
        let Shown {
            session, record, ..
        } = *on;
        let body = html! {
            p class="nhsuk-body" { a href={"/console/people/" (record.client_id) "#notes"} { "Back to the notes" } }
        };
        page(
            status(errors),
            form_page(session, record, "Pin a note", errors, body),
        )
    }
}

/// Raising a safeguarding concern.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConcernForm {
    concern_id: Uuid,
    category: String,
    details: String,
    told: String,
    told_date: String,
    told_time: String,
    outcome: String,
}

impl PersonForm for ConcernForm {
    const DONE: &'static str = "concern";

    fn from_fields(fields: &HashMap<String, String>) -> ConcernForm {
        let kept = |name: &str| fields.get(name).cloned().unwrap_or_default();
        ConcernForm {
            concern_id: form_id(fields, "concern_id"),
            category: text(fields, "category"),
            details: kept("details"),
            told: kept("told"),
            told_date: text(fields, "told_at_date"),
            told_time: text(fields, "told_at_time"),
            outcome: kept("outcome"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.category.is_empty() {
            errors.push(FieldError::new("category", "Select the category"));
        }
        let limit = domain::CONCERN_TEXT_LIMIT;
        let details = typed(&self.details, "details", limit, &mut errors);
        if details.is_none() {
            errors.push(FieldError::new("details", "Say what the concern is"));
        }
        let told = typed(&self.told, "told", limit, &mut errors);
        if told.is_none() {
            errors.push(FieldError::new("told", "Say who was told"));
        }
        let told_at = typed_moment((&self.told_date, &self.told_time), "told_at", &mut errors);
        if told_at.is_none() && !errors.iter().any(|e| e.field == "told_at") {
            errors.push(FieldError::new("told_at", "Enter when they were told"));
        }
        let outcome = typed(&self.outcome, "outcome", limit, &mut errors);
        match (details, told, told_at) {
            (Some(details), Some(told), Some(told_at)) if errors.is_empty() => {
                Ok(CaseCommand::RaiseConcern(SafeguardingConcernRaised {
                    concern_id: ConcernId(self.concern_id),
                    category: self.category.clone(),
                    details,
                    told,
                    told_at,
                    outcome,
                }))
            }
            _ => Err(errors),
        }
    }

    fn key(&self) -> String {
        format!("console-concern-{}", self.concern_id)
    }

    fn refused_at(&self, field: Option<&str>) -> String {
        refused_at(
            field,
            &[],
            &["category", "details", "told", "told_at", "outcome"],
            "details",
        )
    }

    async fn again(&self, on: &Shown<'_>, errors: &[FieldError]) -> HttpResponse {
        let Shown {
            console,
            session,
            record,
        } = *on;
        let categories = &app::safeguarding::rules().categories;
        let error = error_for(errors, "category");
        let (date, time) = if self.told_date.is_empty() && self.told_time.is_empty() {
            let now = console.cases.clock().now();
            (
                now.format("%Y-%m-%d").to_string(),
                now.format("%H:%M").to_string(),
            )
        } else {
            (self.told_date.clone(), self.told_time.clone())
        };
        let body = html! {
            form method="post" action={"/console/people/" (record.client_id) "/safeguarding"} novalidate {
                (csrf_field(session))
                input type="hidden" name="concern_id" value=(self.concern_id);
                div class=(group_class(error)) {
                    fieldset class="nhsuk-fieldset" aria-describedby=[error.map(|_| "category-error")] {
                        legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "What kind of concern is it?" }
                        (error_message(error))
                        div class="nhsuk-radios" {
                            @for (i, c) in categories.iter().enumerate() {
                                @let id = if i == 0 { "category".to_owned() } else { format!("category-{}", c.code) };
                                div class="nhsuk-radios__item" {
                                    input class="nhsuk-radios__input" id=(id) name="category" type="radio"
                                        value=(c.code) checked[self.category == c.code];
                                    label class="nhsuk-label nhsuk-radios__label" for=(id) { (c.name) }
                                }
                            }
                        }
                    }
                }
                (area("details", "What is the concern?", None, &self.details, errors))
                (area("told", "Who was told?", Some("The safeguarding lead, the local authority's duty team, the GP"), &self.told, errors))
                (when("told_at", "When were they told?", (&date, &time), errors))
                (area("outcome", "What came of it so far (optional)", None, &self.outcome, errors))
                button class="nhsuk-button" id="raise" type="submit" { "Raise the concern" }
            }
        };
        page(
            status(errors),
            form_page(
                session,
                record,
                "Raise a safeguarding concern",
                errors,
                body,
            ),
        )
    }
}

async fn concern_page(
    req: HttpRequest,
    path: web::Path<String>,
    console: web::Data<Console>,
) -> HttpResponse {
    let form = ConcernForm {
        concern_id: Uuid::new_v4(),
        ..ConcernForm::default()
    };
    show(&req, &console, &path, &form).await
}

/// Which concern a page is about.
#[derive(Deserialize)]
pub(crate) struct ConcernQuery {
    concern_id: Option<String>,
}

/// Adding to an open concern.
#[derive(Clone, Debug, Default)]
pub(crate) struct UpdateForm {
    update_id: Uuid,
    concern_id: String,
    told: String,
    told_date: String,
    told_time: String,
    outcome: String,
}

impl PersonForm for UpdateForm {
    const DONE: &'static str = "concern_updated";

    fn from_fields(fields: &HashMap<String, String>) -> UpdateForm {
        let kept = |name: &str| fields.get(name).cloned().unwrap_or_default();
        UpdateForm {
            update_id: form_id(fields, "update_id"),
            concern_id: text(fields, "concern_id"),
            told: kept("told"),
            told_date: text(fields, "told_at_date"),
            told_time: text(fields, "told_at_time"),
            outcome: kept("outcome"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Ok(concern_id) = Uuid::try_parse(&self.concern_id).map(ConcernId) else {
            return Err(vec![FieldError::new(
                "outcome",
                "This concern is not on the record: go back to the person's page",
            )]);
        };
        let limit = domain::CONCERN_TEXT_LIMIT;
        let told = typed(&self.told, "told", limit, &mut errors);
        let told_at = typed_moment((&self.told_date, &self.told_time), "told_at", &mut errors);
        let outcome = typed(&self.outcome, "outcome", limit, &mut errors);
        if told.is_none() && outcome.is_none() && errors.is_empty() {
            errors.push(FieldError::new(
                "outcome",
                "Say who else was told or what came of it",
            ));
        }
        if errors.is_empty() {
            Ok(CaseCommand::UpdateConcern(SafeguardingConcernUpdated {
                concern_id,
                told_at: told_at.filter(|_| told.is_some()),
                told,
                outcome,
            }))
        } else {
            Err(errors)
        }
    }

    fn key(&self) -> String {
        format!("console-concern-update-{}", self.update_id)
    }

    fn refused_at(&self, field: Option<&str>) -> String {
        refused_at(field, &[], &["told", "told_at", "outcome"], "outcome")
    }

    async fn again(&self, on: &Shown<'_>, errors: &[FieldError]) -> HttpResponse {
        let Shown {
            session, record, ..
        } = *on;
        let body = html! {
            form method="post" action={"/console/people/" (record.client_id) "/safeguarding/update"} novalidate {
                (csrf_field(session))
                input type="hidden" name="update_id" value=(self.update_id);
                input type="hidden" name="concern_id" value=(self.concern_id);
                (area("told", "Who else was told (optional)", None, &self.told, errors))
                (when("told_at", "When were they told?", (&self.told_date, &self.told_time), errors))
                (area("outcome", "What came of it (optional)", None, &self.outcome, errors))
                button class="nhsuk-button" id="update" type="submit" { "Add to the concern" }
            }
        };
        page(
            status(errors),
            form_page(
                session,
                record,
                "Add to a safeguarding concern",
                errors,
                body,
            ),
        )
    }
}

async fn update_page(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ConcernQuery>,
    console: web::Data<Console>,
) -> HttpResponse {
    let form = UpdateForm {
        update_id: Uuid::new_v4(),
        concern_id: query.into_inner().concern_id.unwrap_or_default(),
        ..UpdateForm::default()
    };
    show(&req, &console, &path, &form).await
}

/// Closing a concern with the reason.
#[derive(Clone, Debug, Default)]
pub(crate) struct CloseConcernForm {
    closure_id: Uuid,
    concern_id: String,
    reason: String,
}

impl PersonForm for CloseConcernForm {
    const DONE: &'static str = "concern_closed";

    fn from_fields(fields: &HashMap<String, String>) -> CloseConcernForm {
        CloseConcernForm {
            closure_id: form_id(fields, "closure_id"),
            concern_id: text(fields, "concern_id"),
            reason: fields.get("reason").cloned().unwrap_or_default(),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Ok(concern_id) = Uuid::try_parse(&self.concern_id).map(ConcernId) else {
            return Err(vec![FieldError::new(
                "reason",
                "This concern is not on the record: go back to the person's page",
            )]);
        };
        let reason = typed(
            &self.reason,
            "reason",
            domain::CONCERN_TEXT_LIMIT,
            &mut errors,
        );
        match reason {
            Some(reason) if errors.is_empty() => {
                Ok(CaseCommand::CloseConcern(SafeguardingConcernClosed {
                    concern_id,
                    reason,
                }))
            }
            None if errors.is_empty() => Err(vec![FieldError::new(
                "reason",
                "Say why the concern is closed",
            )]),
            _ => Err(errors),
        }
    }

    fn key(&self) -> String {
        format!("console-concern-closure-{}", self.closure_id)
    }

    fn refused_at(&self, _field: Option<&str>) -> String {
        "reason".to_owned()
    }

    async fn again(&self, on: &Shown<'_>, errors: &[FieldError]) -> HttpResponse {
        let Shown {
            session, record, ..
        } = *on;
        let body = html! {
            form method="post" action={"/console/people/" (record.client_id) "/safeguarding/close"} novalidate {
                (csrf_field(session))
                input type="hidden" name="closure_id" value=(self.closure_id);
                input type="hidden" name="concern_id" value=(self.concern_id);
                (area("reason", "Why is the concern closed?", Some("A concern is never deleted or corrected: it stays on the record, closed"), &self.reason, errors))
                button class="nhsuk-button" id="close-concern" type="submit" { "Close the concern" }
            }
        };
        page(
            status(errors),
            form_page(
                session,
                record,
                "Close a safeguarding concern",
                errors,
                body,
            ),
        )
    }
}

async fn close_page(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ConcernQuery>,
    console: web::Data<Console>,
) -> HttpResponse {
    let form = CloseConcernForm {
        closure_id: Uuid::new_v4(),
        concern_id: query.into_inner().concern_id.unwrap_or_default(),
        ..CloseConcernForm::default()
    };
    show(&req, &console, &path, &form).await
}
