//! Lone working on the person's page: each home visit's plan (where, by when the check-in is
//! due, any known risk) and whether the check-in came, a missed one tagged red; for a home
//! visit still to come without a plan, a page of its own to record one (where, the check-in
//! time, the buddy who expects it, the known risks), and for a plan awaiting its check-in, a
//! button to record it. Whether a visit may have a plan, the check-in time and the buddy are
//! the application's to judge (`domain::lone_working`, `app::CaseService`).

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use app::records::ClientRecord;
use chrono::{Duration, NaiveDate, NaiveTime};
use domain::{
    AppointmentId, CaseCommand, ContactMode, LoneWorkingCheckedIn, LoneWorkingPlanRecorded, StaffId,
};
use maud::{Markup, html};
use uuid::Uuid;

use crate::Console;
use crate::connect::{PersonForm, Shown, form_page, refused_at, status};
use crate::forms::{FieldError, text};
use crate::page;
use crate::pages::{csrf_field, error_for, error_message, group_class, moment};

/// The routes of these forms, under `/console/people/{client_id}`.
pub(crate) fn routes(config: &mut web::ServiceConfig) {
    use crate::connect::post;
    config
        .route("/lone-working", web::get().to(plan_page))
        .route("/lone-working", web::post().to(post::<PlanForm>))
        .route(
            "/lone-working/check-in",
            web::post().to(post::<CheckInForm>),
        );
}

/// What the banner of the person's page says after one of these forms.
pub(crate) fn banner(done: &str) -> Option<&'static str> {
    match done {
        "lone_working_plan" => Some("Lone-working plan recorded"),
        "checked_in" => Some("Check-in recorded"),
        _ => None,
    }
}

/// The plans, newest first, each with its check-in button while one is awaited; and a link to
/// record a plan for each home visit still to come without one.
pub(crate) fn section(who: &app::sessions::ConsoleSession, record: &ClientRecord) -> Markup {
    let unplanned: Vec<_> = record
        .plan
        .booked
        .iter()
        .filter(|a| a.mode == ContactMode::HomeVisit)
        .filter(|a| {
            !record
                .lone_working
                .iter()
                .any(|p| p.appointment_id == a.appointment_id)
        })
        .collect();
    html! {
        @if !record.lone_working.is_empty() || !unplanned.is_empty() {
            h2 class="nhsuk-heading-m" id="lone-working" { "Lone working" }
            @for visit in &unplanned {
                p class="nhsuk-body" {
                    a id={"plan-" (visit.appointment_id)}
                        href={"/console/people/" (record.client_id) "/lone-working?appointment_id=" (visit.appointment_id)} {
                        "Record a lone-working plan for the home visit on " (moment(visit.scheduled_for))
                    }
                }
            }
            @for plan in &record.lone_working {
                div class="nhsuk-card" {
                    div class="nhsuk-card__content" {
                        h3 class="nhsuk-card__heading nhsuk-heading-s" {
                            "Home visit, check in by " (moment(plan.check_in_by)) " "
                            @if plan.check_in_missed {
                                strong class="nhsuk-tag nhsuk-tag--red" { "Check-in missed" }
                            } @else if plan.checked_in_at.is_some() {
                                strong class="nhsuk-tag nhsuk-tag--green" { "Checked in" }
                            } @else if plan.visit_cancelled {
                                strong class="nhsuk-tag nhsuk-tag--grey" { "Visit cancelled" }
                            }
                        }
                        p class="nhsuk-body" { (plan.address_note) }
                        @if let Some(risks) = &plan.known_risks {
                            p class="nhsuk-body" { "Known risks: " (risks) }
                        }
                        @if let Some(at) = plan.checked_in_at {
                            p class="nhsuk-body-s" { "Checked in " (moment(at)) "." }
                        } @else if !plan.visit_cancelled && !record.erased {
                            form method="post" action={"/console/people/" (record.client_id) "/lone-working/check-in"} {
                                (csrf_field(who))
                                input type="hidden" name="appointment_id" value=(plan.appointment_id);
                                button class="nhsuk-button nhsuk-button--secondary nhsuk-u-margin-bottom-0"
                                    id={"check-in-" (plan.appointment_id)} type="submit" {
                                    "Record the check-in"
                                    span class="nhsuk-u-visually-hidden" { " for the visit checking in by " (moment(plan.check_in_by)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A lone-working plan, as typed.
#[derive(Clone, Debug, Default)]
pub(crate) struct PlanForm {
    appointment_id: String,
    address_note: String,
    check_in_on: String,
    check_in_at: String,
    buddy_staff_id: String,
    known_risks: String,
}

impl PersonForm for PlanForm {
    const DONE: &'static str = "lone_working_plan";

    fn from_fields(fields: &HashMap<String, String>) -> PlanForm {
        PlanForm {
            appointment_id: text(fields, "appointment_id"),
            address_note: fields.get("address_note").cloned().unwrap_or_default(),
            check_in_on: text(fields, "check_in_on"),
            check_in_at: text(fields, "check_in_at"),
            buddy_staff_id: text(fields, "buddy_staff_id"),
            known_risks: fields.get("known_risks").cloned().unwrap_or_default(),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Ok(appointment) = Uuid::try_parse(&self.appointment_id) else {
            return Err(vec![FieldError::new(
                "address_note",
                "This home visit is not on the record: go back to the person's page",
            )]);
        };
        let day = NaiveDate::parse_from_str(&self.check_in_on, "%Y-%m-%d").ok();
        if day.is_none() {
            errors.push(FieldError::new(
                "check_in_on",
                "Enter the day of the check-in as a real date",
            ));
        }
        let time = NaiveTime::parse_from_str(&self.check_in_at, "%H:%M").ok();
        if time.is_none() {
            errors.push(FieldError::new(
                "check_in_at",
                "Enter the time of the check-in, like 14:30",
            ));
        }
        let check_in_by = day.zip(time).and_then(|(day, time)| {
            let at = crate::local::instant(day, time);
            if at.is_none() {
                errors.push(FieldError::new(
                    "check_in_at",
                    "The clocks change at that time: enter another",
                ));
            }
            at
        });
        let buddy = Uuid::try_parse(&self.buddy_staff_id).ok();
        if buddy.is_none() {
            errors.push(FieldError::new(
                "buddy_staff_id",
                "Select the colleague who expects the check-in",
            ));
        }
        let risks = self.known_risks.trim();
        match (check_in_by, buddy) {
            (Some(check_in_by), Some(buddy)) if errors.is_empty() => Ok(
                CaseCommand::RecordLoneWorkingPlan(LoneWorkingPlanRecorded {
                    appointment_id: AppointmentId(appointment),
                    // Whether it says enough is the application's to judge.
                    address_note: self.address_note.trim().to_owned(),
                    check_in_by,
                    buddy_staff_id: StaffId(buddy),
                    known_risks: (!risks.is_empty()).then(|| risks.to_owned()),
                }),
            ),
            _ => Err(errors),
        }
    }

    fn key(&self) -> String {
        // One plan per visit: the visit's id is the form's.
        format!("console-lone-working-{}", self.appointment_id)
    }

    fn refused_at(&self, field: Option<&str>) -> String {
        refused_at(
            field,
            &[
                ("check_in_by", "check_in_on"),
                ("appointment_id", "address_note"),
            ],
            &["address_note", "buddy_staff_id", "known_risks"],
            "address_note",
        )
    }

    async fn again(&self, on: &Shown<'_>, errors: &[FieldError]) -> HttpResponse {
        let Shown {
            console,
            session,
            record,
        } = *on;
        // Colleagues to choose the buddy from (the application says whether one may be).
        let mut colleagues: Vec<(Uuid, String)> =
            match console.cases.colleague_names(&session.principal).await {
                Ok(names) => names
                    .into_iter()
                    .filter(|(id, _)| *id != session.principal.staff_id.0)
                    .collect(),
                Err(e) => return crate::failure(Some(session), &e),
            };
        colleagues.sort_by(|a, b| a.1.cmp(&b.1));
        let visit = Uuid::try_parse(&self.appointment_id)
            .ok()
            .and_then(|id| record.plan.booked.iter().find(|a| a.appointment_id == id));
        let day_error = error_for(errors, "check_in_on");
        let time_error = error_for(errors, "check_in_at");
        let buddy_error = error_for(errors, "buddy_staff_id");
        let body = html! {
            @if let Some(visit) = visit {
                p class="nhsuk-body" { "For the home visit on " (moment(visit.scheduled_for)) "." }
            }
            form method="post" action={"/console/people/" (record.client_id) "/lone-working"} novalidate {
                (csrf_field(session))
                input type="hidden" name="appointment_id" value=(self.appointment_id);
                div class=(group_class(error_for(errors, "address_note"))) {
                    label class="nhsuk-label" for="address_note" { "Where the visit is, and how to get in" }
                    (error_message(error_for(errors, "address_note")))
                    textarea class={"nhsuk-textarea" @if error_for(errors, "address_note").is_some() { " nhsuk-textarea--error" }}
                        id="address_note" name="address_note" rows="3"
                        aria-describedby=[error_for(errors, "address_note").map(|_| "address_note-error")] { (self.address_note) }
                }
                fieldset class="nhsuk-fieldset" {
                    legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "Check in by" }
                    div class=(group_class(day_error)) {
                        label class="nhsuk-label" for="check_in_on" { "Date" }
                        (error_message(day_error))
                        input class={"nhsuk-input nhsuk-input--width-10" @if day_error.is_some() { " nhsuk-input--error" }}
                            id="check_in_on" name="check_in_on" type="date" value=(self.check_in_on)
                            aria-describedby=[day_error.map(|_| "check_in_on-error")];
                    }
                    div class=(group_class(time_error)) {
                        label class="nhsuk-label" for="check_in_at" { "Time (UK)" }
                        (error_message(time_error))
                        input class={"nhsuk-input nhsuk-input--width-5" @if time_error.is_some() { " nhsuk-input--error" }}
                            id="check_in_at" name="check_in_at" type="time" value=(self.check_in_at)
                            aria-describedby=[time_error.map(|_| "check_in_at-error")];
                    }
                }
                div class=(group_class(buddy_error)) {
                    label class="nhsuk-label" for="buddy_staff_id" { "Buddy: the colleague who expects the check-in" }
                    (error_message(buddy_error))
                    select class={"nhsuk-select" @if buddy_error.is_some() { " nhsuk-select--error" }}
                        id="buddy_staff_id" name="buddy_staff_id"
                        aria-describedby=[buddy_error.map(|_| "buddy_staff_id-error")] {
                        option value="" selected[self.buddy_staff_id.is_empty()] { "Choose a colleague" }
                        @for (id, name) in &colleagues {
                            option value=(id) selected[id.to_string() == self.buddy_staff_id] { (name) }
                        }
                    }
                }
                (note_area_named("known_risks", "Known risks at the address (a dog, another person, access)", &self.known_risks, errors))
                button class="nhsuk-button" id="record-plan" type="submit" { "Record the plan" }
            }
        };
        page(
            status(errors),
            form_page(session, record, "Lone-working plan", errors, body),
        )
    }
}

/// A text area for optional words, kept as typed (its name is its id).
fn note_area_named(id: &str, label: &str, value: &str, errors: &[FieldError]) -> Markup {
    let error = error_for(errors, id);
    html! {
        div class=(group_class(error)) {
            label class="nhsuk-label" for=(id) { (label) }
            (error_message(error))
            textarea class={"nhsuk-textarea" @if error.is_some() { " nhsuk-textarea--error" }}
                id=(id) name=(id) rows="2" aria-describedby=[error.map(|_| format!("{id}-error"))] { (value) }
        }
    }
}

/// The page to record a home visit's plan, its check-in due 90 minutes after the visit starts
/// unless changed.
async fn plan_page(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<VisitQuery>,
    console: web::Data<Console>,
) -> HttpResponse {
    match crate::connect::viewer(&req, &console, &path).await {
        Ok((session, record)) => {
            let appointment_id = query.appointment_id.clone().unwrap_or_default();
            let visit = record
                .plan
                .booked
                .iter()
                .find(|a| a.appointment_id.to_string() == appointment_id);
            let check_in =
                visit.map(|v| crate::local::local(v.scheduled_for + Duration::minutes(90)));
            let form = PlanForm {
                appointment_id,
                check_in_on: check_in
                    .map(|c| c.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                check_in_at: check_in
                    .map(|c| c.format("%H:%M").to_string())
                    .unwrap_or_default(),
                ..PlanForm::default()
            };
            let on = Shown {
                console: &console,
                session: &session,
                record: &record,
            };
            form.again(&on, &[]).await
        }
        Err(response) => response,
    }
}

#[derive(serde::Deserialize)]
struct VisitQuery {
    appointment_id: Option<String>,
}

/// A check-in, as sent.
#[derive(Clone, Debug, Default)]
pub(crate) struct CheckInForm {
    appointment_id: String,
}

impl PersonForm for CheckInForm {
    const DONE: &'static str = "checked_in";

    fn from_fields(fields: &HashMap<String, String>) -> CheckInForm {
        CheckInForm {
            appointment_id: text(fields, "appointment_id"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        match Uuid::try_parse(&self.appointment_id) {
            Ok(id) => Ok(CaseCommand::CheckInLoneWorking(LoneWorkingCheckedIn {
                appointment_id: AppointmentId(id),
            })),
            Err(_) => Err(vec![FieldError::new(
                "check_in",
                "This home visit is not on the record: go back to the person's page",
            )]),
        }
    }

    fn key(&self) -> String {
        format!("console-check-in-{}", self.appointment_id)
    }

    fn refused_at(&self, _field: Option<&str>) -> String {
        "check_in".to_owned()
    }

    async fn again(&self, on: &Shown<'_>, errors: &[FieldError]) -> HttpResponse {
        let Shown {
            session, record, ..
        } = *on;
        let error = error_for(errors, "check_in");
        let body = html! {
            form method="post" action={"/console/people/" (record.client_id) "/lone-working/check-in"} novalidate {
                (csrf_field(session))
                input type="hidden" name="appointment_id" value=(self.appointment_id);
                div class=(group_class(error)) id="check_in" {
                    (error_message(error))
                    button class="nhsuk-button" id="check-in" type="submit" { "Record the check-in" }
                }
            }
        };
        page(
            status(errors),
            form_page(session, record, "Lone-working check-in", errors, body),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_form_names_each_field_it_cannot_read() {
        let form = PlanForm::from_fields(&crate::forms::filled(&[
            ("appointment_id", "0192c4f0-3b1a-7cde-8f00-1234567890ab"),
            ("address_note", "Flat 3, ring twice"),
            ("check_in_on", "31/02/2026"),
            ("check_in_at", "half past"),
            ("buddy_staff_id", ""),
        ]));
        let errors = form.command().expect_err("refused");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["check_in_on", "check_in_at", "buddy_staff_id"]);
    }
}
