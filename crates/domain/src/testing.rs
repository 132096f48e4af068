//! Fixtures for tests of the domain and of what is built on it (read models, properties over
//! command sequences): fixed ids, a registered client, a referral, and a pool of commands over
//! a few ids so that random sequences meet the same entities often. Compiled for tests and with
//! the `testing` feature only.

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{Map, json};
use uuid::Uuid;

use crate::*;

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).expect("a valid date")
}

/// When the fixtures' facts are folded as having happened (after [`day`] 1, the referral's).
pub fn moment() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0)
        .single()
        .expect("a valid time")
}

pub const CLIENT: ClientId = ClientId(Uuid::from_u128(1));
pub const REFERRAL: ReferralId = ReferralId(Uuid::from_u128(2));
pub const WORKER: StaffId = StaffId(Uuid::from_u128(3));
pub const TEAM: TeamId = TeamId(Uuid::from_u128(4));
pub const SERVICE: ServiceId = ServiceId(Uuid::from_u128(5));
pub const CONNECTION: ConnectionId = ConnectionId(Uuid::from_u128(6));
pub const APPOINTMENT: AppointmentId = AppointmentId(Uuid::from_u128(7));
pub const GOAL: GoalId = GoalId(Uuid::from_u128(8));

pub fn personal() -> PersonalDetails {
    PersonalDetails {
        given_name: "Ada".to_owned(),
        family_name: "Example".to_owned(),
        date_of_birth: NaiveDate::from_ymd_opt(1950, 5, 17),
        nhs_number: Some(NhsNumber::parse("943 476 5919").expect("valid")),
        phone: Some("01632 960001".to_owned()),
        email: None,
        address: Some("1 Example Street, Frome".to_owned()),
        postcode: Some("BA11 1AA".to_owned()),
    }
}

pub fn registered() -> ClientRegistered {
    ClientRegistered {
        client_id: CLIENT,
        personal: personal(),
        area: "Frome".to_owned(),
    }
}

pub fn referral(referral_id: ReferralId) -> ReferralReceived {
    ReferralReceived {
        referral_id,
        source: ReferralSource::Gp,
        referrer: Referrer {
            staff_id: None,
            name: Some("Dr Example".to_owned()),
            organisation: Some("Frome Medical Practice".to_owned()),
        },
        reasons: vec![NeedDomain::LonelinessIsolation, NeedDomain::MentalWellbeing],
        urgency: Urgency::Routine,
        received_on: day(1),
        note: None,
    }
}

/// A routine referral from `source` that names no referrer, with no note.
pub fn unnamed_referral(
    referral_id: ReferralId,
    source: ReferralSource,
    reasons: Vec<NeedDomain>,
    received_on: NaiveDate,
) -> ReferralReceived {
    ReferralReceived {
        referral_id,
        source,
        referrer: Referrer {
            staff_id: None,
            name: None,
            organisation: None,
        },
        reasons,
        urgency: Urgency::Routine,
        received_on,
        note: None,
    }
}

pub fn contact(n: u128) -> ContactRecorded {
    ContactRecorded {
        contact_id: ContactId(id(100 + n)),
        mode: ContactMode::Phone,
        minutes: 30,
        contacted_at: Utc
            .with_ymd_and_hms(2026, 3, 3, 10, 0, 0)
            .single()
            .expect("time"),
        note: None,
    }
}

pub fn assessment(
    n: u128,
    instrument: Instrument,
    timepoint: Timepoint,
    answers: Vec<i32>,
) -> AssessmentRecorded {
    self_completed(
        AssessmentId(id(200 + n)),
        instrument,
        timepoint,
        answers,
        day(4),
    )
}

/// A self-completed assessment (version 1 of `instrument`) with `answers`, taken on
/// `administered_on`, with no licensor's score.
pub fn self_completed(
    assessment_id: AssessmentId,
    instrument: Instrument,
    timepoint: Timepoint,
    answers: Vec<i32>,
    administered_on: NaiveDate,
) -> AssessmentRecorded {
    AssessmentRecorded {
        assessment_id,
        instrument,
        instrument_version: 1,
        timepoint,
        mode: AdministrationMode::SelfCompleted,
        answers,
        licensor_score: None,
        administered_on,
    }
}

/// [`APPOINTMENT`], booked by `mode` for 9 March 2026 at 14:00 UTC.
pub fn booked(mode: ContactMode) -> AppointmentBooked {
    AppointmentBooked {
        appointment_id: APPOINTMENT,
        scheduled_for: Utc
            .with_ymd_and_hms(2026, 3, 9, 14, 0, 0)
            .single()
            .expect("time"),
        mode,
    }
}

/// A gap in Frome where no service for `need` exists, with no note.
pub fn gap(gap_id: GapId, need: NeedDomain) -> ServiceGapRecorded {
    ServiceGapRecorded {
        gap_id,
        need,
        area: "Frome".to_owned(),
        reason: GapReason::NoServiceExists,
        note: None,
    }
}

/// A case closed because its goals were met, with no note.
pub fn goals_met() -> CaseClosed {
    CaseClosed {
        reason: ClosureReason::GoalsMet,
        note: None,
    }
}

pub fn connection(kind: ConnectionKind) -> OnwardConnectionMade {
    OnwardConnectionMade {
        connection_id: CONNECTION,
        service_id: SERVICE,
        need: NeedDomain::LonelinessIsolation,
        kind,
    }
}

/// The event ids `fold` gives: the n-th event of `given` has id 1000 + n.
pub fn event_id(n: u128) -> EventId {
    EventId(id(1000 + n))
}

/// The state `events` fold to, the n-th (from 1) with the id `event_id(n)`, each at [`moment`].
pub fn fold(events: &[CaseEvent]) -> CaseState {
    events
        .iter()
        .enumerate()
        .fold(CaseState::default(), |state, (n, event)| {
            evolve(state, event_id(n as u128 + 1), event, moment())
        })
}

/// Registered, referred, accepted, and assigned to [`WORKER`] in [`TEAM`]: an open case.
pub fn assigned_case() -> Vec<CaseEvent> {
    vec![
        CaseEvent::ClientRegistered(registered()),
        CaseEvent::ReferralReceived(referral(REFERRAL)),
        CaseEvent::ReferralAccepted(ReferralAccepted {
            referral_id: REFERRAL,
        }),
        CaseEvent::LinkWorkerAssigned(LinkWorkerAssigned {
            link_worker_id: WORKER,
            team_id: TEAM,
        }),
    ]
}

/// `events` is one event, which decodes back to itself from its own encoding.
#[track_caller]
pub fn assert_one_that_round_trips(events: &[CaseEvent]) {
    assert_eq!(events.len(), 1, "{events:?}");
    let back = CaseEvent::decode(
        events[0].event_type(),
        events[0].schema_version(),
        events[0].to_payload(),
    )
    .expect("decodes");
    assert_eq!(back, events[0]);
}

/// `events`, then `more`.
pub fn with(
    mut events: Vec<CaseEvent>,
    more: impl IntoIterator<Item = CaseEvent>,
) -> Vec<CaseEvent> {
    events.extend(more);
    events
}

/// The organisation that listed [`listed_service`].
pub const SERVICE_OWNER: Uuid = Uuid::from_u128(0x0516_0001);

/// The directory service [`SERVICE`], listed and taking referrals (by [`SERVICE_OWNER`]).
pub fn listed_service() -> directory::ServiceState {
    let record = directory::OrukService::from_value(json!({
        "id": SERVICE.0,
        "name": "Frome Talking Café",
        "status": "active",
        "organization": { "id": Uuid::from_u128(0x0516), "name": "Frome Community" },
        "attributes": [{ "taxonomy_term": {
            "code": "loneliness_isolation", "taxonomy": directory::NEED_TAXONOMY
        } }]
    }))
    .expect("a valid record");
    directory::evolve_service(
        directory::ServiceState::default(),
        &directory::DirectoryEvent::ServiceListed(directory::ServiceListed { service: record }),
        SERVICE_OWNER,
    )
}

/// Commands over small pools of ids, so random sequences hit the same entities often.
pub fn command_pool() -> Vec<CaseCommand> {
    let mut pool = vec![
        CaseCommand::Intake {
            client: Some(Box::new(registered())),
            referral: referral(REFERRAL),
        },
        CaseCommand::Intake {
            client: None,
            referral: referral(ReferralId(id(21))),
        },
        CaseCommand::Intake {
            client: None,
            referral: referral(ReferralId(id(22))),
        },
        CaseCommand::RecordConsent(ConsentRecorded {
            scope: ConsentScope::ShareWithOnwardServices,
            services: vec![],
            channel: None,
        }),
        CaseCommand::WithdrawConsent(ConsentWithdrawn {
            scope: ConsentScope::ShareWithOnwardServices,
        }),
        CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
            link_worker_id: WORKER,
            team_id: TEAM,
        }),
        CaseCommand::TransferCase(TransferCase {
            to_link_worker_id: StaffId(id(33)),
            team_id: TEAM,
            reason: TransferReason::Capacity,
        }),
        CaseCommand::RecordContact(contact(1)),
        CaseCommand::RecordContact(contact(2)),
        CaseCommand::RecordAssessment(assessment(
            1,
            Instrument::Wemwbs,
            Timepoint::Baseline,
            vec![2; 14],
        )),
        CaseCommand::RecordAssessment(assessment(
            2,
            Instrument::Wemwbs,
            Timepoint::FollowUp,
            vec![4; 14],
        )),
        CaseCommand::MakeConnection(connection(ConnectionKind::Referred)),
        CaseCommand::MakeConnection(connection(ConnectionKind::Signposted)),
        CaseCommand::RecordConnectionOutcome(ConnectionOutcomeRecorded {
            connection_id: CONNECTION,
            outcome: ConnectionOutcome::Attended,
            waiting_weeks: None,
        }),
        CaseCommand::BookAppointment(booked(ContactMode::Phone)),
        CaseCommand::RecordAttendance(AppointmentAttended {
            appointment_id: APPOINTMENT,
        }),
        CaseCommand::RecordDidNotAttend(AppointmentNotAttended {
            appointment_id: APPOINTMENT,
        }),
        CaseCommand::SetGoal(GoalSet {
            goal_id: GOAL,
            description: "walk".to_owned(),
            need: None,
        }),
        CaseCommand::ReviewGoal(GoalReviewed {
            goal_id: GOAL,
            progress: GoalProgress::Achieved,
            note: None,
        }),
        CaseCommand::CloseCase(goals_met()),
        CaseCommand::ReopenCase(CaseReopened { note: None }),
        CaseCommand::CorrectEntry(EntryCorrected {
            corrects: event_id(1),
            corrected_fields: Map::from_iter([("urgency".to_owned(), json!("soon"))]),
            reason: "misread".to_owned(),
        }),
    ];
    // Safeguarding and notes: a concern raised and closed, a note (none of them counted).
    pool.push(CaseCommand::RaiseConcern(SafeguardingConcernRaised {
        concern_id: ConcernId(id(61)),
        category: "self_neglect".to_owned(),
        details: "no heating".to_owned(),
        told: "safeguarding lead".to_owned(),
        told_at: moment(),
        outcome: None,
    }));
    pool.push(CaseCommand::CloseConcern(SafeguardingConcernClosed {
        concern_id: ConcernId(id(61)),
        reason: "heating mended".to_owned(),
    }));
    // Tags: on and off again (not counted; the caseload keeps them).
    pool.push(CaseCommand::TagCase(CaseTagged {
        tag: "carer".to_owned(),
    }));
    pool.push(CaseCommand::UntagCase(CaseUntagged {
        tag: "carer".to_owned(),
    }));
    pool.push(CaseCommand::AddNote(NoteAdded {
        note_id: NoteId(id(60)),
        text: "prefers calls after 2pm".to_owned(),
        important: true,
    }));
    for referral_id in [REFERRAL, ReferralId(id(21)), ReferralId(id(22))] {
        pool.push(CaseCommand::AcceptReferral(ReferralAccepted {
            referral_id,
        }));
        pool.push(CaseCommand::DeclineReferral(ReferralDeclined {
            referral_id,
            reason: DeclineReason::ClientDeclined,
            note: None,
        }));
    }
    pool
}
