//! The command path against the real store: load, decide, append, for a whole journey.

use app::{CaseService, CommandError, CommandOptions};
use chrono::NaiveDate;
use domain::*;
use uuid::Uuid;

use crate::support::{
    list_sample_services, metadata, new_client_intake, opened_case, store_with_db, stream_len,
    wemwbs,
};

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).expect("a valid date")
}

fn keyed(key: &str) -> CommandOptions {
    CommandOptions {
        idempotency_key: Some(key.to_owned()),
        ..CommandOptions::default()
    }
}

/// Someone new referred by their GP, and the referral accepted.
fn accepted_referral(client: ClientId, referral_id: ReferralId) -> Vec<CaseCommand> {
    let reasons = vec![NeedDomain::LonelinessIsolation];
    vec![
        new_client_intake(client, referral_id, "Frome", ReferralSource::Gp, reasons),
        CaseCommand::AcceptReferral(ReferralAccepted { referral_id }),
    ]
}

/// Carries out each of `commands` on `client`'s record as the system; each is accepted.
async fn carried_out(cases: &CaseService, client: ClientId, commands: Vec<CaseCommand>) {
    for command in commands {
        cases
            .execute(client, &command, metadata(), CommandOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    }
}

/// Deactivates `staff` of the test organisation.
async fn deactivate(db: &testkit::TestDb, staff: StaffId) {
    let owner = db.admin_client().await;
    app::access::set_active(&owner, Some(crate::support::ORG), staff.0, false, None)
        .await
        .expect("deactivated")
        .expect("a member of staff");
}

#[tokio::test]
async fn a_whole_journey_is_decided_appended_and_replayed() {
    let (db, store) = store_with_db(4).await;
    let cases = CaseService::new(store.clone());
    let client = ClientId(Uuid::new_v4());
    let referral_id = ReferralId(Uuid::new_v4());
    let worker = StaffId(Uuid::new_v4());
    let service = ServiceId(list_sample_services(&store, 1).await[0]);
    let connection_id = ConnectionId(Uuid::new_v4());
    let assessment = |timepoint, answers: Vec<i32>| wemwbs(timepoint, answers, day(5));
    let mut journey = opened_case(
        client,
        referral_id,
        ReferralSource::SelfReferral,
        vec![NeedDomain::LonelinessIsolation],
        (worker, TeamId(Uuid::new_v4())),
    );
    journey.extend([
        CaseCommand::RecordConsent(ConsentRecorded {
            scope: ConsentScope::ShareWithOnwardServices,
            services: vec![],
            channel: None,
        }),
        assessment(Timepoint::Baseline, vec![2; 14]),
        CaseCommand::MakeConnection(OnwardConnectionMade {
            connection_id,
            service_id: service,
            need: NeedDomain::LonelinessIsolation,
            kind: ConnectionKind::WarmHandover,
        }),
        CaseCommand::RecordConnectionOutcome(ConnectionOutcomeRecorded {
            connection_id,
            outcome: ConnectionOutcome::WaitingList,
            waiting_weeks: Some(4),
        }),
        assessment(Timepoint::FollowUp, vec![4; 14]),
        CaseCommand::CloseCase(CaseClosed {
            reason: ClosureReason::ConnectedOnward,
            note: None,
        }),
    ]);
    crate::support::hire_named(&store, crate::support::ORG, &journey).await;
    let mut version = 0;
    for (n, command) in journey.iter().enumerate() {
        let result = cases
            .execute(client, command, metadata(), keyed(&format!("step-{n}")))
            .await
            .unwrap_or_else(|e| panic!("step {n}: {e}"));
        assert!(result.stream_version > version);
        version = result.stream_version;
    }
    assert_eq!(
        version, 10,
        "intake writes two events, every other step one"
    );

    // A retried step returns its first result, even though the record has moved on.
    let retry = cases
        .execute(client, &journey[1], metadata(), keyed("step-1"))
        .await
        .expect("retry");
    assert!(retry.replayed);
    assert_eq!(retry.stream_version, 3);
    // Without the key the same command is refused by the rules.
    let refused = cases
        .execute(client, &journey[1], metadata(), CommandOptions::default())
        .await
        .expect_err("refused");
    assert!(
        matches!(
            refused,
            CommandError::Refused(CaseError::ReferralAlreadyDecided { .. })
        ),
        "{refused:?}"
    );
    // A stale If-Match is a conflict, and nothing is written.
    let stale = CommandOptions {
        expected_version: Some(4),
        ..CommandOptions::default()
    };
    let reopen = CaseCommand::ReopenCase(CaseReopened { note: None });
    let conflict = cases
        .execute(client, &reopen, metadata(), stale)
        .await
        .expect_err("stale");
    assert!(
        matches!(conflict, CommandError::Conflict { actual: 10, .. }),
        "{conflict:?}"
    );

    let loaded = cases.load(client).await.expect("load");
    assert_eq!(loaded.version, 10);
    assert_eq!(loaded.state.status, CaseStatus::Closed);
    assert!(loaded.state.baselines.contains(&Instrument::Wemwbs));
    // The client's ten and the directory service's listing.
    crate::support::assert_chains_hold(&db, 11, 2).await;
}

/// Dates in the future are refused for every caller of the command path (the demo, the CLI, the
/// web console), not only over HTTP, against the service's clock: a day later, the same date is
/// accepted.
#[tokio::test]
async fn the_command_path_refuses_dates_after_its_clock() {
    let (_db, store) = store_with_db(4).await;
    let clock = app::Clock::fixed(day(10).and_hms_opt(12, 0, 0).expect("noon").and_utc());
    let cases = CaseService::with_clock(store.clone(), clock.clone());
    let client = ClientId(Uuid::new_v4());
    let referral_id = ReferralId(Uuid::new_v4());
    let mut intake = new_client_intake(
        client,
        referral_id,
        "Frome",
        ReferralSource::Gp,
        vec![NeedDomain::LonelinessIsolation],
    );
    if let CaseCommand::Intake { referral, .. } = &mut intake {
        referral.received_on = day(11);
    }
    let refused = cases
        .execute(client, &intake, metadata(), CommandOptions::default())
        .await;
    match refused {
        Err(CommandError::Refused(e)) => {
            assert_eq!(e.field(), Some("referral.received_on"), "{e}");
        }
        other => panic!("a referral received tomorrow is refused, not {other:?}"),
    }
    assert_eq!(stream_len(&store, client.0).await, 0);
    clock.set(day(11).and_hms_opt(9, 0, 0).expect("9am").and_utc());
    cases
        .execute(client, &intake, metadata(), CommandOptions::default())
        .await
        .expect("received today is accepted");
}

/// Whom a command names is checked for every caller, the service's own path (the demo, an
/// import, the CLI) as much as a member of staff's: an assignment naming nobody of the
/// organisation, someone deactivated, or a link worker of another team is refused, naming the
/// field, and nothing is written; the link worker of the team named is assigned.
#[tokio::test]
async fn a_referrer_named_by_staff_id_is_one_of_the_organisations_staff() {
    let (_db, store) = store_with_db(4).await;
    let cases = CaseService::new(store.clone());
    let colleague = StaffId(Uuid::new_v4());
    crate::support::hire_named(
        &store,
        crate::support::ORG,
        &[CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
            link_worker_id: colleague,
            team_id: TeamId(Uuid::new_v4()),
        })],
    )
    .await;
    let naming = |referrer: StaffId| {
        let mut intake = new_client_intake(
            ClientId(Uuid::new_v4()),
            ReferralId(Uuid::new_v4()),
            "Frome",
            ReferralSource::Gp,
            vec![NeedDomain::LonelinessIsolation],
        );
        if let CaseCommand::Intake { referral, .. } = &mut intake {
            referral.referrer.staff_id = Some(referrer);
        }
        intake
    };
    let stranger = naming(StaffId(Uuid::new_v4()));
    let CaseCommand::Intake {
        client: Some(registered),
        ..
    } = &stranger
    else {
        unreachable!("an intake of a new client")
    };
    let stranger_id = registered.client_id;
    let refused = cases
        .execute(
            stranger_id,
            &stranger,
            metadata(),
            CommandOptions::default(),
        )
        .await
        .expect_err("a referrer who is nobody's staff");
    assert!(
        matches!(&refused, CommandError::Invalid { field, .. } if *field == "referral.referrer.staff_id"),
        "{refused:?}"
    );
    assert_eq!(
        cases.load(stranger_id).await.expect("load").version,
        0,
        "nothing written"
    );
    let known = naming(colleague);
    let CaseCommand::Intake {
        client: Some(registered),
        ..
    } = &known
    else {
        unreachable!("an intake of a new client")
    };
    cases
        .execute(
            registered.client_id,
            &known,
            metadata(),
            CommandOptions::default(),
        )
        .await
        .expect("a referral naming a colleague is recorded");
}

#[tokio::test]
async fn execute_refuses_unknown_inactive_and_other_team_staff() {
    let (db, store) = store_with_db(4).await;
    let cases = CaseService::new(store.clone());
    let client = ClientId(Uuid::new_v4());
    let referral_id = ReferralId(Uuid::new_v4());
    let (team, other_team) = (TeamId(Uuid::new_v4()), TeamId(Uuid::new_v4()));
    let assign = |worker: StaffId, team: TeamId| {
        CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
            link_worker_id: worker,
            team_id: team,
        })
    };
    let (worker, gone, elsewhere) = (
        StaffId(Uuid::new_v4()),
        StaffId(Uuid::new_v4()),
        StaffId(Uuid::new_v4()),
    );
    let hired = [
        assign(worker, team),
        assign(gone, team),
        assign(elsewhere, other_team),
    ];
    crate::support::hire_named(&store, crate::support::ORG, &hired).await;
    deactivate(&db, gone).await;
    carried_out(&cases, client, accepted_referral(client, referral_id)).await;
    let version = cases.load(client).await.expect("load").version;
    let refusals = [
        (assign(StaffId(Uuid::new_v4()), team), "link_worker_id"),
        (assign(gone, team), "link_worker_id"),
        (assign(elsewhere, team), "team_id"),
    ];
    for (command, named) in refusals {
        let refused = cases
            .execute(client, &command, metadata(), CommandOptions::default())
            .await
            .expect_err("refused");
        assert!(
            matches!(&refused, CommandError::Invalid { field, .. } if *field == named),
            "{command:?}: {refused:?}"
        );
    }
    // The same for a transfer: its link worker is checked as an assignment's.
    let transfer = CaseCommand::TransferCase(TransferCase {
        to_link_worker_id: gone,
        team_id: team,
        reason: TransferReason::Capacity,
    });
    let refused = cases
        .execute(client, &transfer, metadata(), CommandOptions::default())
        .await
        .expect_err("refused");
    assert!(
        matches!(&refused, CommandError::Invalid { field, .. } if *field == "to_link_worker_id"),
        "{refused:?}"
    );
    assert_eq!(cases.load(client).await.expect("load").version, version);
    cases
        .execute(
            client,
            &assign(worker, team),
            metadata(),
            CommandOptions::default(),
        )
        .await
        .expect("the team's link worker is assigned");
    assert_eq!(
        cases.load(client).await.expect("load").state.link_worker,
        Some((worker, team))
    );
}

/// A lone worker's buddy is checked for every caller of the command path too (the demo, an
/// import, the CLI), not only over HTTP: someone the organisation does not have, someone
/// deactivated, or someone of another organisation is refused at `buddy_staff_id` and nothing
/// is written; an active colleague is a buddy whatever their team.
#[tokio::test]
async fn execute_refuses_an_unknown_inactive_or_other_organisations_buddy() {
    let (db, store) = store_with_db(4).await;
    // The service's clock an hour after the commands' own time (`metadata`: 2 March, 10:00).
    let now = crate::support::at(2) + chrono::Duration::hours(1);
    let cases = CaseService::with_clock(store.clone(), app::Clock::fixed(now));
    let client = ClientId(Uuid::new_v4());
    let referral_id = ReferralId(Uuid::new_v4());
    let visit = AppointmentId(Uuid::new_v4());
    let visit_at = now + chrono::Duration::hours(2);
    let plan = |buddy: StaffId| {
        CaseCommand::RecordLoneWorkingPlan(LoneWorkingPlanRecorded {
            appointment_id: visit,
            address_note: "Flat 2, side door".to_owned(),
            check_in_by: visit_at + chrono::Duration::hours(1),
            buddy_staff_id: buddy,
            known_risks: None,
        })
    };
    let (colleague, gone, unknown, foreign) = (
        StaffId(Uuid::new_v4()),
        StaffId(Uuid::new_v4()),
        StaffId(Uuid::new_v4()),
        StaffId(Uuid::new_v4()),
    );
    // The colleague is a link worker of a team the case is not in; `gone` is deactivated.
    let of_another_team = CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
        link_worker_id: colleague,
        team_id: TeamId(Uuid::new_v4()),
    });
    crate::support::hire_named(&store, crate::support::ORG, &[of_another_team, plan(gone)]).await;
    deactivate(&db, gone).await;
    let owner = db.admin_client().await;
    let other_organisation = app::access::ensure_organisation(&owner, "Connect North")
        .await
        .expect("an organisation");
    crate::support::hire_named(&store, other_organisation, &[plan(foreign)]).await;
    let mut commands = accepted_referral(client, referral_id);
    commands.push(CaseCommand::BookAppointment(AppointmentBooked {
        appointment_id: visit,
        scheduled_for: visit_at,
        mode: ContactMode::HomeVisit,
    }));
    carried_out(&cases, client, commands).await;
    let version = cases.load(client).await.expect("load").version;
    for buddy in [unknown, gone, foreign] {
        let refused = cases
            .execute(client, &plan(buddy), metadata(), CommandOptions::default())
            .await
            .expect_err("refused");
        assert!(
            matches!(&refused, CommandError::Invalid { field, .. } if *field == "buddy_staff_id"),
            "{buddy:?}: {refused:?}"
        );
    }
    assert_eq!(cases.load(client).await.expect("load").version, version);
    cases
        .execute(
            client,
            &plan(colleague),
            metadata(),
            CommandOptions::default(),
        )
        .await
        .expect("a colleague of another team is a buddy");
    let loaded = cases.load(client).await.expect("load");
    assert_eq!(loaded.version, version + 1);
    assert_eq!(loaded.state.lone_working.get(&visit), Some(&false));
}
