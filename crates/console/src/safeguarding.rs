//! Case notes and safeguarding on the person's page: the risk flag while a concern is open, each
//! concern with who was told and what came of it, the notes (important ones first), and a page
//! of its own for each form (write a note, pin or unpin one, raise a concern, add to one, close
//! one). The application decides; these pages read the forms and show its answer.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use app::records::ClientRecord;
use app::safeguarding::{CaseNote, SafeguardingConcern};
use app::sessions::ConsoleSession;
use domain::{
    CaseCommand, ConcernId, NOTE_TEXT_LIMIT, NoteAdded, NoteId, NotePinned, NoteUnpinned,
    SafeguardingConcernClosed, SafeguardingConcernRaised, SafeguardingConcernUpdated,
};
use maud::{Markup, html};
use uuid::Uuid;

use crate::connect::{PersonForm, Shown, posted, refused_at};
use crate::fields::{date_time, fieldset, text_area, typed_moment, typed_text};
use crate::forms::{FieldError, form_id, text};
use crate::pages::{csrf_field, moment};

/// The routes of these forms, under `/console/people/{client_id}`.
pub(crate) fn routes(config: &mut web::ServiceConfig) {
    use crate::connect::{blank, post};
    config
        .route("/notes/new", web::get().to(blank::<NoteForm>))
        .route("/notes", web::post().to(post::<NoteForm>))
        .route("/notes/pin", web::post().to(post::<PinForm>))
        .route("/safeguarding/new", web::get().to(blank::<ConcernForm>))
        .route("/safeguarding", web::post().to(post::<ConcernForm>))
        .route("/safeguarding/update", web::get().to(blank::<UpdateForm>))
        .route("/safeguarding/update", web::post().to(post::<UpdateForm>))
        .route(
            "/safeguarding/close",
            web::get().to(blank::<CloseConcernForm>),
        )
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
            (note_card(who, (&base, record.version), note, works))
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

fn note_card(
    who: &ConsoleSession,
    (base, version): (&str, i64),
    note: &CaseNote,
    works: bool,
) -> Markup {
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
                        input type="hidden" name="version" value=(version);
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

/// A text area kept as typed (its name is its id).
fn area(name: &str, label: &str, hint: Option<&str>, value: &str, errors: &[FieldError]) -> Markup {
    text_area((name, name), (label, hint), (value, 4), errors)
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
    const TITLE: &'static str = "Write a note";
    const ACTION: &'static str = "/notes";

    fn from_fields(fields: &HashMap<String, String>) -> NoteForm {
        NoteForm {
            note_id: form_id(fields, "note_id"),
            text: fields.get("text").cloned().unwrap_or_default(),
            important: fields.get("important").is_some_and(|v| v == "yes"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let text = typed_text(&self.text, "text", NOTE_TEXT_LIMIT, &mut errors);
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

    fn refused_at(&self, _field: Option<&str>) -> String {
        "text".to_owned()
    }

    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        Ok(posted::<NoteForm>(
            on,
            html! {
                input type="hidden" name="note_id" value=(self.note_id);
                (area("text", "Note", Some("Kept with the person's record, and erased with it"), &self.text, errors))
                div class="nhsuk-checkboxes" {
                    div class="nhsuk-checkboxes__item" {
                        input class="nhsuk-checkboxes__input" id="important" name="important" type="checkbox" value="yes" checked[self.important];
                        label class="nhsuk-label nhsuk-checkboxes__label" for="important" { "Important: pin it to the top" }
                    }
                }
                button class="nhsuk-button" id="save-note" type="submit" { "Save the note" }
            },
        ))
    }
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
    const TITLE: &'static str = "Pin a note";
    const ACTION: &'static str = "/notes/pin";

    fn from_fields(fields: &HashMap<String, String>) -> PinForm {
        PinForm {
            pin_id: form_id(fields, "pin_id"),
            note_id: text(fields, "note_id"),
            pin: fields.get("pin").is_some_and(|v| v == "on"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let note_id = NoteId(known(&self.note_id, "note_id", "note")?);
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

    async fn draw(&self, on: &Shown<'_>, _errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        Ok(html! {
            p class="nhsuk-body" { a href={"/console/people/" (on.record.client_id) "#notes"} { "Back to the notes" } }
        })
    }
}

/// The id of an entry a form names (from the page it was drawn on), or the error at `field`
/// saying the `entry` is not on the record.
fn known(id: &str, field: &str, entry: &str) -> Result<Uuid, Vec<FieldError>> {
    Uuid::try_parse(id).map_err(|_| {
        vec![FieldError::new(
            field,
            format!("This {entry} is not on the record: go back to the person's page"),
        )]
    })
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
    const TITLE: &'static str = "Raise a safeguarding concern";
    const ACTION: &'static str = "/safeguarding";

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
        let details = typed_text(&self.details, "details", limit, &mut errors);
        if details.is_none() {
            errors.push(FieldError::new("details", "Say what the concern is"));
        }
        let told = typed_text(&self.told, "told", limit, &mut errors);
        if told.is_none() {
            errors.push(FieldError::new("told", "Say who was told"));
        }
        let told_at = typed_moment((&self.told_date, &self.told_time), "told_at", &mut errors);
        if told_at.is_none() && !errors.iter().any(|e| e.field == "told_at") {
            errors.push(FieldError::new("told_at", "Enter when they were told"));
        }
        let outcome = typed_text(&self.outcome, "outcome", limit, &mut errors);
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
        let known = ["category", "details", "told", "told_at", "outcome"];
        refused_at(field, &[], &known, "details")
    }

    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        let categories = &app::safeguarding::rules().categories;
        let (date, time) = if self.told_date.is_empty() && self.told_time.is_empty() {
            let now = on.console.cases.clock().now();
            (
                now.format("%Y-%m-%d").to_string(),
                now.format("%H:%M").to_string(),
            )
        } else {
            (self.told_date.clone(), self.told_time.clone())
        };
        let radios = html! {
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
        };
        Ok(posted::<ConcernForm>(
            on,
            html! {
                input type="hidden" name="concern_id" value=(self.concern_id);
                (fieldset("category", "What kind of concern is it?", errors, radios))
                (area("details", "What is the concern?", None, &self.details, errors))
                (area("told", "Who was told?", Some("The safeguarding lead, the local authority's duty team, the GP"), &self.told, errors))
                (date_time("told_at", "When were they told?", (&date, &time), errors))
                (area("outcome", "What came of it so far (optional)", None, &self.outcome, errors))
                button class="nhsuk-button" id="raise" type="submit" { "Raise the concern" }
            },
        ))
    }
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
    const TITLE: &'static str = "Add to a safeguarding concern";
    const ACTION: &'static str = "/safeguarding/update";

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

    /// For the concern the link names.
    fn blank(query: &HashMap<String, String>, _on: &Shown<'_>) -> UpdateForm {
        UpdateForm {
            update_id: Uuid::new_v4(),
            concern_id: text(query, "concern_id"),
            ..UpdateForm::default()
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let concern_id = ConcernId(known(&self.concern_id, "outcome", "concern")?);
        let mut errors = Vec::new();
        let limit = domain::CONCERN_TEXT_LIMIT;
        let told = typed_text(&self.told, "told", limit, &mut errors);
        let told_at = typed_moment((&self.told_date, &self.told_time), "told_at", &mut errors);
        let outcome = typed_text(&self.outcome, "outcome", limit, &mut errors);
        if told.is_none() && outcome.is_none() && errors.is_empty() {
            errors.push(FieldError::new(
                "outcome",
                "Say who else was told or what came of it",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CaseCommand::UpdateConcern(SafeguardingConcernUpdated {
            concern_id,
            told_at: told_at.filter(|_| told.is_some()),
            told,
            outcome,
        }))
    }

    fn key(&self) -> String {
        format!("console-concern-update-{}", self.update_id)
    }

    fn refused_at(&self, field: Option<&str>) -> String {
        refused_at(field, &[], &["told", "told_at", "outcome"], "outcome")
    }

    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        Ok(posted::<UpdateForm>(
            on,
            html! {
                input type="hidden" name="update_id" value=(self.update_id);
                input type="hidden" name="concern_id" value=(self.concern_id);
                (area("told", "Who else was told (optional)", None, &self.told, errors))
                (date_time("told_at", "When were they told?", (&self.told_date, &self.told_time), errors))
                (area("outcome", "What came of it (optional)", None, &self.outcome, errors))
                button class="nhsuk-button" id="update" type="submit" { "Add to the concern" }
            },
        ))
    }
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
    const TITLE: &'static str = "Close a safeguarding concern";
    const ACTION: &'static str = "/safeguarding/close";

    fn from_fields(fields: &HashMap<String, String>) -> CloseConcernForm {
        CloseConcernForm {
            closure_id: form_id(fields, "closure_id"),
            concern_id: text(fields, "concern_id"),
            reason: fields.get("reason").cloned().unwrap_or_default(),
        }
    }

    /// For the concern the link names.
    fn blank(query: &HashMap<String, String>, _on: &Shown<'_>) -> CloseConcernForm {
        CloseConcernForm {
            closure_id: Uuid::new_v4(),
            concern_id: text(query, "concern_id"),
            ..CloseConcernForm::default()
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let concern_id = ConcernId(known(&self.concern_id, "reason", "concern")?);
        let mut errors = Vec::new();
        let limit = domain::CONCERN_TEXT_LIMIT;
        match typed_text(&self.reason, "reason", limit, &mut errors) {
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

    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        Ok(posted::<CloseConcernForm>(
            on,
            html! {
                input type="hidden" name="closure_id" value=(self.closure_id);
                input type="hidden" name="concern_id" value=(self.concern_id);
                (area("reason", "Why is the concern closed?", Some("A concern is never deleted or corrected: it stays on the record, closed"), &self.reason, errors))
                button class="nhsuk-button" id="close-concern" type="submit" { "Close the concern" }
            },
        ))
    }
}
