//! The rules of lone-working plans and check-ins, as tables through one `check`.

use chrono::Duration;
use serde_json::{Map, json};

use crate::testing::*;
use crate::*;

const BUDDY: StaffId = StaffId(uuid::Uuid::from_u128(90));

/// An open case, assigned, with [`APPOINTMENT`] booked by `mode`.
fn visit_booked(mode: ContactMode) -> Vec<CaseEvent> {
    with(
        assigned_case(),
        [CaseEvent::AppointmentBooked(booked(mode))],
    )
}

fn plan() -> LoneWorkingPlanRecorded {
    LoneWorkingPlanRecorded {
        appointment_id: APPOINTMENT,
        address_note: "Flat 2, side door; buzzer broken".to_owned(),
        check_in_by: booked(ContactMode::HomeVisit).scheduled_for + Duration::hours(2),
        buddy_staff_id: BUDDY,
        known_risks: Some("Large dog".to_owned()),
    }
}

fn checked_in() -> LoneWorkingCheckedIn {
    LoneWorkingCheckedIn {
        appointment_id: APPOINTMENT,
    }
}

/// Decides `command` on `given`; `Ok(())` is one event written, `Err((rule, field))` a
/// refusal. The only place this module calls `decide`.
#[track_caller]
fn check(given: &[CaseEvent], command: CaseCommand, expect: Result<(), (&str, Option<&str>)>) {
    let outcome = decide(&fold(given), &command, &Lookups::default());
    match (expect, outcome) {
        (Ok(()), Ok(events)) => {
            assert_one_that_round_trips(&events);
        }
        (Err((rule, field)), Err(error)) => {
            assert_eq!((error.rule(), error.field()), (rule, field), "{error}")
        }
        (Ok(()), Err(error)) => panic!("refused: {error} ({})", error.rule()),
        (Err((rule, _)), Ok(events)) => panic!("expected {rule}, got {events:?}"),
    }
}

#[test]
fn a_plan_is_for_a_booked_home_visit_once() {
    let home = visit_booked(ContactMode::HomeVisit);
    let record = || CaseCommand::RecordLoneWorkingPlan(plan());
    check(&home, record(), Ok(()));
    check(
        &visit_booked(ContactMode::Phone),
        record(),
        Err(("invalid_field", Some("appointment_id"))),
    );
    let mut other = plan();
    other.appointment_id = AppointmentId(uuid::Uuid::from_u128(99));
    check(
        &home,
        CaseCommand::RecordLoneWorkingPlan(other),
        Err(("unknown_appointment", Some("appointment_id"))),
    );
    check(
        &with(home.clone(), [CaseEvent::LoneWorkingPlanRecorded(plan())]),
        record(),
        Err(("invalid_field", Some("appointment_id"))),
    );
    check(
        &with(
            home.clone(),
            [CaseEvent::AppointmentCancelled(AppointmentCancelled {
                appointment_id: APPOINTMENT,
                cancelled_by: CancelledBy::Client,
                note: None,
            })],
        ),
        record(),
        Err(("invalid_field", Some("appointment_id"))),
    );
    let mut early = plan();
    early.check_in_by = booked(ContactMode::HomeVisit).scheduled_for - Duration::minutes(1);
    check(
        &home,
        CaseCommand::RecordLoneWorkingPlan(early),
        Err(("invalid_field", Some("check_in_by"))),
    );
    let mut blank = plan();
    blank.address_note = "  ".to_owned();
    check(
        &home,
        CaseCommand::RecordLoneWorkingPlan(blank),
        Err(("invalid_field", Some("address_note"))),
    );
    let mut no_risks = plan();
    no_risks.known_risks = Some(String::new());
    check(
        &home,
        CaseCommand::RecordLoneWorkingPlan(no_risks),
        Err(("invalid_field", Some("known_risks"))),
    );
}

#[test]
fn a_check_in_is_for_a_planned_visit_once_and_neither_is_corrected() {
    let home = visit_booked(ContactMode::HomeVisit);
    let check_in = || CaseCommand::CheckInLoneWorking(checked_in());
    check(
        &home,
        check_in(),
        Err(("invalid_field", Some("appointment_id"))),
    );
    let planned = with(home, [CaseEvent::LoneWorkingPlanRecorded(plan())]);
    check(&planned, check_in(), Ok(()));
    let done = with(
        planned.clone(),
        [CaseEvent::LoneWorkingCheckedIn(checked_in())],
    );
    check(
        &done,
        check_in(),
        Err(("invalid_field", Some("appointment_id"))),
    );
    // The plan is the sixth event.
    let mut fields = Map::new();
    fields.insert("address_note".to_owned(), json!("elsewhere"));
    check(
        &planned,
        CaseCommand::CorrectEntry(EntryCorrected {
            corrects: event_id(6),
            corrected_fields: fields,
            reason: "wrong flat".to_owned(),
        }),
        Err(("invalid_field", Some("corrects"))),
    );
}

/// A check-in says the link worker is safely out of the visit: one recorded before the visit
/// starts (by the clock, or dated so) is refused naming its time, which would otherwise switch
/// off the missed check-in for the real visit.
#[test]
fn a_check_in_is_not_before_the_visit_starts() {
    let planned = with(
        visit_booked(ContactMode::HomeVisit),
        [CaseEvent::LoneWorkingPlanRecorded(plan())],
    );
    let state = fold(&planned);
    let command = CaseCommand::CheckInLoneWorking(checked_in());
    let visit = booked(ContactMode::HomeVisit).scheduled_for;
    let at = |given: Option<chrono::DateTime<chrono::Utc>>, now| {
        let timing = Timing::of(&command, given, now).expect("a timing");
        check_timing(&state, &command, &timing).map_err(|e| (e.field(), e.to_string()))
    };
    // Two days before the visit, by the clock.
    let early = at(None, visit - Duration::days(2)).expect_err("refused");
    assert_eq!(early.0, Some("occurred_at"));
    assert!(early.1.contains("before the visit starts"), "{}", early.1);
    assert!(early.1.contains("UK time"), "{}", early.1);
    // Dated a minute before it, entered later: refused; at its start or after: taken.
    let later = visit + Duration::hours(3);
    assert!(at(Some(visit - Duration::minutes(1)), later).is_err());
    assert_eq!(at(Some(visit), later), Ok(()));
    assert_eq!(at(None, visit + Duration::minutes(50)), Ok(()));
}

/// The visit's time as corrected is the one a check-in waits for: a visit moved a day later
/// cannot be checked in on the day it was first booked for.
#[test]
fn a_check_in_waits_for_the_visit_as_corrected() {
    let visit = booked(ContactMode::HomeVisit).scheduled_for;
    let moved = visit + Duration::days(1);
    let mut fields = Map::new();
    fields.insert("scheduled_for".to_owned(), json!(moved));
    // The booking is the fifth event; the plan, recorded after the correction, the seventh.
    let mut plan = plan();
    plan.check_in_by = moved + Duration::hours(2);
    let corrected = with(
        visit_booked(ContactMode::HomeVisit),
        [
            CaseEvent::EntryCorrected(EntryCorrected {
                corrects: event_id(5),
                corrected_fields: fields,
                reason: "booked for the wrong day".to_owned(),
            }),
            CaseEvent::LoneWorkingPlanRecorded(plan),
        ],
    );
    let state = fold(&corrected);
    assert_eq!(state.appointment_dates.get(&APPOINTMENT), Some(&moved));
    let command = CaseCommand::CheckInLoneWorking(checked_in());
    let at = |now| {
        let timing = Timing::of(&command, None, now).expect("a timing");
        check_timing(&state, &command, &timing).map_err(|e| e.field())
    };
    assert_eq!(at(visit + Duration::hours(1)), Err(Some("occurred_at")));
    assert_eq!(at(moved + Duration::hours(1)), Ok(()));
}
