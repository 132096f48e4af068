//! Lone-working plans for home visits as the record shows them: where, the check-in time, the
//! buddy, the known risks, and whether the check-in came (and, by the clock, whether it is
//! missed). Part of the record read (`CaseService::record`), so every read is audited. The
//! rules are the domain's (`domain::decide`); the buddy is checked by `CaseService` (an
//! active colleague of the organisation, not the lone worker); the caseload's
//! `missed_check_in` flag is `caseload::flags`.

use chrono::{DateTime, Utc};
use domain::CaseEvent;
use serde::Serialize;
use uuid::Uuid;

use crate::journey::History;

/// A home visit's lone-working plan (`[erased]` texts once the person's personal data is
/// erased).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LoneWorkingPlan {
    /// The home visit.
    pub appointment_id: Uuid,
    /// Where the visit is, and how to get in.
    pub address_note: String,
    /// By when the link worker said they would check in.
    pub check_in_by: DateTime<Utc>,
    /// The colleague who expects the check-in.
    pub buddy_staff_id: Uuid,
    /// Any risk known at the address.
    pub known_risks: Option<String>,
    /// Who recorded the plan (the lone worker), and when.
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
    /// When the check-in was recorded, once it was.
    pub checked_in_at: Option<DateTime<Utc>>,
    /// The check-in time has passed (by the service's clock) with no check-in.
    pub check_in_missed: bool,
    /// The visit was cancelled: no check-in is awaited.
    pub visit_cancelled: bool,
    /// When the visit starts, corrections applied: its check-in is taken from then on, not
    /// before (the domain's rule, `domain::check_timing`).
    pub check_in_from: Option<DateTime<Utc>>,
}

/// Every plan of the record, newest first, as of `now`.
pub(crate) fn plans(history: &History, now: DateTime<Utc>) -> Vec<LoneWorkingPlan> {
    let mut plans: Vec<LoneWorkingPlan> = Vec::new();
    let mut visits = std::collections::HashMap::new();
    for ((recorded, _), event) in history.events.iter().zip(history.corrected()) {
        let at = recorded.metadata.occurred_at;
        match event {
            CaseEvent::AppointmentBooked(e) => {
                visits.insert(e.appointment_id.0, e.scheduled_for);
            }
            CaseEvent::LoneWorkingPlanRecorded(e) => plans.push(LoneWorkingPlan {
                appointment_id: e.appointment_id.0,
                address_note: e.address_note,
                check_in_by: e.check_in_by,
                buddy_staff_id: e.buddy_staff_id.0,
                known_risks: e.known_risks,
                recorded_by: recorded.metadata.actor_id,
                recorded_at: at,
                checked_in_at: None,
                check_in_missed: false,
                visit_cancelled: false,
                check_in_from: None,
            }),
            // As the caseload: a cancelled visit awaits no check-in.
            CaseEvent::AppointmentCancelled(e) => {
                for plan in plans
                    .iter_mut()
                    .filter(|p| p.appointment_id == e.appointment_id.0)
                {
                    plan.visit_cancelled = true;
                }
            }
            CaseEvent::LoneWorkingCheckedIn(e) => {
                if let Some(plan) = plans
                    .iter_mut()
                    .find(|p| p.appointment_id == e.appointment_id.0)
                {
                    plan.checked_in_at = Some(at);
                }
            }
            _ => {}
        }
    }
    for plan in &mut plans {
        plan.check_in_from = visits.get(&plan.appointment_id).copied();
        plan.check_in_missed =
            plan.checked_in_at.is_none() && !plan.visit_cancelled && plan.check_in_by < now;
    }
    plans.reverse();
    plans
}
