//! Lone working on the person's page: each home visit's plan (where, by when the check-in is
//! due, any known risk) and whether the check-in came, a missed one tagged red; for a home
//! visit still to come without a plan, a page of its own to record one (where, the check-in
//! time, the buddy who expects it, the known risks), and for a plan awaiting its check-in, a
//! button to record it. Whether a visit may have a plan, the check-in time and the buddy are
//! the application's to judge (`domain::lone_working`, `app::CaseService`).

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use app::records::ClientRecord;
use chrono::{DateTime, Duration, Utc};
use domain::{
    AppointmentId, CaseCommand, ContactMode, LoneWorkingCheckedIn, LoneWorkingPlanRecorded, StaffId,
};
use maud::{Markup, html};
use uuid::Uuid;

use crate::connect::{PersonForm, Shown, posted, refused_at};
use crate::fields::{input, select, text_area, typed_instant};
use crate::forms::{FieldError, text};
use crate::pages::{csrf_field, error_for, error_message, group_class, moment};

/// The routes of these forms, under `/console/people/{client_id}`.
pub(crate) fn routes(config: &mut web::ServiceConfig) {
    use crate::connect::{blank, post};
    config
        .route("/lone-working", web::get().to(blank::<PlanForm>))
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

/// The plans, newest first, each naming its buddy (by `colleagues`), with its check-in button
/// while one is awaited and the visit has started by `now` (before then, when it may be
/// recorded); and a link to record a plan for each home visit still to come without one.
pub(crate) fn section(
    who: &app::sessions::ConsoleSession,
    record: &ClientRecord,
    colleagues: &HashMap<Uuid, String>,
    now: DateTime<Utc>,
) -> Markup {
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
                        p class="nhsuk-body buddy" {
                            "Buddy: "
                            (colleagues.get(&plan.buddy_staff_id).map_or("a colleague no longer listed", String::as_str))
                        }
                        @let starts = plan.check_in_from.filter(|at| *at > now);
                        @if let Some(at) = plan.checked_in_at {
                            p class="nhsuk-body-s" { "Checked in " (moment(at)) "." }
                        } @else if let Some(starts) = starts.filter(|_| !plan.visit_cancelled) {
                            p class="nhsuk-body-s check-in-later" {
                                "The visit starts " (moment(starts)) ": record the check-in here once you are safely out of it."
                            }
                        } @else if !plan.visit_cancelled && !record.erased {
                            form method="post" action={"/console/people/" (record.client_id) "/lone-working/check-in"} {
                                (csrf_field(who))
                                input type="hidden" name="version" value=(record.version);
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
    const TITLE: &'static str = "Lone-working plan";
    const ACTION: &'static str = "/lone-working";

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

    /// For the home visit the link names, its check-in due 90 minutes after the visit starts
    /// unless changed.
    fn blank(query: &HashMap<String, String>, on: &Shown<'_>) -> PlanForm {
        let appointment_id = text(query, "appointment_id");
        let visit = on
            .record
            .plan
            .booked
            .iter()
            .find(|a| a.appointment_id.to_string() == appointment_id);
        let check_in = visit.map(|v| crate::local::local(v.scheduled_for + Duration::minutes(90)));
        let shown = |format: &str| {
            check_in
                .map(|c| c.format(format).to_string())
                .unwrap_or_default()
        };
        PlanForm {
            appointment_id,
            check_in_on: shown("%Y-%m-%d"),
            check_in_at: shown("%H:%M"),
            ..PlanForm::default()
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let Ok(appointment) = Uuid::try_parse(&self.appointment_id) else {
            return Err(vec![FieldError::new(
                "address_note",
                "This home visit is not on the record: go back to the person's page",
            )]);
        };
        let mut errors = Vec::new();
        let check_in_by = typed_instant(
            (&self.check_in_on, &self.check_in_at),
            ("check_in_on", "check_in_at"),
            "the check-in",
            &mut errors,
        );
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

    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        let me = on.session.principal.staff_id.0;
        // Colleagues to choose the buddy from (the application says who may be one).
        let mut colleagues: Vec<(String, String)> = match on
            .console
            .cases
            .possible_buddies(&on.session.principal)
            .await
        {
            Ok(names) => names
                .into_iter()
                .filter(|(id, _)| *id != me)
                .map(|(id, name)| (id.to_string(), name))
                .collect(),
            Err(e) => return Err(crate::failure(Some(on.session), &e)),
        };
        colleagues.sort_by(|a, b| a.1.cmp(&b.1));
        let visit = Uuid::try_parse(&self.appointment_id).ok().and_then(|id| {
            on.record
                .plan
                .booked
                .iter()
                .find(|a| a.appointment_id == id)
        });
        let fields = html! {
            input type="hidden" name="appointment_id" value=(self.appointment_id);
            (text_area(("address_note", "address_note"), ("Where the visit is, and how to get in", None),
                (&self.address_note, 3), errors))
            fieldset class="nhsuk-fieldset" {
                legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "Check in by" }
                (input(("check_in_on", "check_in_on"), ("Date", None),
                    (&self.check_in_on, "date", "nhsuk-input--width-10"), errors))
                (input(("check_in_at", "check_in_at"), ("Time (UK)", None),
                    (&self.check_in_at, "time", "nhsuk-input--width-5"), errors))
            }
            (select(("buddy_staff_id", "buddy_staff_id"), ("Buddy: the colleague who expects the check-in", None),
                (&colleagues, &self.buddy_staff_id, "Choose a colleague"), errors))
            (text_area(("known_risks", "known_risks"), ("Known risks at the address (a dog, another person, access)", None),
                (&self.known_risks, 2), errors))
            button class="nhsuk-button" id="record-plan" type="submit" { "Record the plan" }
        };
        Ok(html! {
            @if let Some(visit) = visit {
                p class="nhsuk-body" { "For the home visit on " (moment(visit.scheduled_for)) "." }
            }
            (posted::<PlanForm>(on, fields))
        })
    }
}

/// A check-in, as sent.
#[derive(Clone, Debug, Default)]
pub(crate) struct CheckInForm {
    appointment_id: String,
}

impl PersonForm for CheckInForm {
    const DONE: &'static str = "checked_in";
    const TITLE: &'static str = "Lone-working check-in";
    const ACTION: &'static str = "/lone-working/check-in";

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

    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        let error = error_for(errors, "check_in");
        Ok(posted::<CheckInForm>(
            on,
            html! {
                input type="hidden" name="appointment_id" value=(self.appointment_id);
                div class=(group_class(error)) id="check_in" {
                    (error_message(error))
                    button class="nhsuk-button" id="check-in" type="submit" { "Record the check-in" }
                }
            },
        ))
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
