//! Lone working on home visits: before a link worker goes alone to a person's home, a plan is
//! recorded against the booked home visit (where exactly, by when they will check in, which
//! colleague is their buddy, any risk known), and the check-in is recorded when they are safely
//! out. A plan whose check-in time has passed with no check-in is a missed check-in, flagged to
//! the team lead (computed when a caseload is read, by the clock).
//!
//! The address note and the known risks are personal data: sealed under the person's key like
//! a case note, and erased with them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::CaseError;
use crate::codes::ContactMode;
use crate::event::CaseEvent;
use crate::ids::{AppointmentId, StaffId};
use crate::state::{AppointmentStatus, CaseState};

/// Longest address note or note of known risks, in characters.
pub const LONE_WORKING_TEXT_LIMIT: usize = 2_000;

/// A lone-working plan for a booked home visit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoneWorkingPlanRecorded {
    /// The home visit (an appointment booked with mode `home_visit`, not yet settled).
    pub appointment_id: AppointmentId,
    /// Where the visit is, and how to get in (personal data).
    pub address_note: String,
    /// By when the link worker will check in: no earlier than the visit.
    pub check_in_by: DateTime<Utc>,
    /// The colleague who expects the check-in and acts when it does not come.
    pub buddy_staff_id: StaffId,
    /// Any risk known at the address: a dog, another person, access (personal data).
    pub known_risks: Option<String>,
}

/// The link worker checked in after a home visit: safely out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoneWorkingCheckedIn {
    /// The home visit whose plan this checks in.
    pub appointment_id: AppointmentId,
}

/// A plan is recorded once for a booked home visit, with a check-in no earlier than the visit.
pub(crate) fn record_plan(
    state: &CaseState,
    c: &LoneWorkingPlanRecorded,
) -> Result<Vec<CaseEvent>, CaseError> {
    crate::decide::registered(state)?;
    match state.appointments.get(&c.appointment_id) {
        None => return Err(CaseError::UnknownAppointment),
        Some(AppointmentStatus::Booked) => {}
        Some(_) => {
            return Err(CaseError::invalid(
                "appointment_id",
                "this appointment is already settled: a plan is for a visit still to come",
            ));
        }
    }
    if state.appointment_modes.get(&c.appointment_id) != Some(&ContactMode::HomeVisit) {
        return Err(CaseError::invalid(
            "appointment_id",
            "a lone-working plan is for an appointment booked as a home visit",
        ));
    }
    if state.lone_working.contains_key(&c.appointment_id) {
        return Err(CaseError::invalid(
            "appointment_id",
            "this home visit already has a lone-working plan",
        ));
    }
    if let Some(visit) = state.appointment_dates.get(&c.appointment_id)
        && c.check_in_by < *visit
    {
        return Err(CaseError::invalid(
            "check_in_by",
            "the check-in is due after the visit starts",
        ));
    }
    Ok(vec![CaseEvent::LoneWorkingPlanRecorded(c.clone())])
}

/// A check-in is recorded once, for a visit with a plan.
pub(crate) fn check_in(
    state: &CaseState,
    c: &LoneWorkingCheckedIn,
) -> Result<Vec<CaseEvent>, CaseError> {
    crate::decide::registered(state)?;
    match state.lone_working.get(&c.appointment_id) {
        None => Err(CaseError::invalid(
            "appointment_id",
            "this visit has no lone-working plan to check in",
        )),
        Some(true) => Err(CaseError::invalid(
            "appointment_id",
            "this visit's check-in is already recorded",
        )),
        Some(false) => Ok(vec![CaseEvent::LoneWorkingCheckedIn(c.clone())]),
    }
}

/// The texts of a plan: the address note said, within bounds.
pub(crate) fn check_fact(event: &CaseEvent) -> Result<(), CaseError> {
    let CaseEvent::LoneWorkingPlanRecorded(c) = event else {
        return Ok(());
    };
    let text = |value: &str, field: &'static str, message: &str| {
        if value.trim().is_empty() {
            return Err(CaseError::invalid(field, message));
        }
        if value.chars().count() > LONE_WORKING_TEXT_LIMIT {
            return Err(CaseError::invalid(
                field,
                format!("at most {LONE_WORKING_TEXT_LIMIT} characters"),
            ));
        }
        Ok(())
    };
    text(&c.address_note, "address_note", "say where the visit is")?;
    match &c.known_risks {
        Some(risks) => text(risks, "known_risks", "leave it out, or say what is known"),
        None => Ok(()),
    }
}

/// Refuses a correction of a plan or a check-in: a lone worker's safety is not rewritten
/// after the fact.
pub(crate) fn check_correctable(
    state: &CaseState,
    corrects: crate::EventId,
) -> Result<(), CaseError> {
    match state.events.get(&corrects) {
        Some(&"LoneWorkingPlanRecorded") | Some(&"LoneWorkingCheckedIn") => {
            Err(CaseError::invalid(
                "corrects",
                "a lone-working plan or check-in is not corrected",
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
