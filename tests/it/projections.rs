//! Projections against the real log: the caseload fold, the runner's exactly-once batches, and
//! a read model that survives its runner being killed at any point.

use std::sync::Arc;
use std::time::Duration;

use app::{CaseService, CommandOptions};
use casebook::rebuild::{RebuildOptions, RebuildTarget, rebuild};
use chrono::{NaiveDate, TimeZone, Utc};
use domain::*;
use projector::rules::Rules;
use projector::{CaseloadProjection, OutcomesProjection, Runner, RunnerSettings};
use uuid::Uuid;

use crate::support::{
    OUTCOME_TABLES, assessment, metadata, new_client_intake, record_contact, store_with_db,
    table_rows,
};

const TEAM: TeamId = TeamId(Uuid::from_u128(0x7ea));

fn worker(n: u128) -> StaffId {
    StaffId(Uuid::from_u128(0x5000 + n))
}

/// A moment of March 2026 (UTC).
fn march(day: u32, hour: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0)
        .single()
        .expect("time")
}

/// The commands of one client's journey so far; `steps` says how far it goes.
fn journey(client: ClientId, steps: usize) -> Vec<CaseCommand> {
    let n = client.0.as_u128();
    let sub = |k: u128| Uuid::from_u128(n * 1000 + k);
    let referral_id = ReferralId(sub(1));
    let appointment_id = AppointmentId(sub(2));
    let commands = vec![
        new_client_intake(
            client,
            referral_id,
            if n.is_multiple_of(2) {
                "Frome"
            } else {
                "Shepton Mallet"
            },
            if n.is_multiple_of(3) {
                ReferralSource::SelfReferral
            } else {
                ReferralSource::Gp
            },
            vec![NeedDomain::MentalWellbeing],
        ),
        CaseCommand::AcceptReferral(ReferralAccepted { referral_id }),
        CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
            link_worker_id: worker(n % 2),
            team_id: TEAM,
        }),
        record_contact(sub(3), ContactMode::Phone, 20, march(3, 9)),
        CaseCommand::BookAppointment(AppointmentBooked {
            appointment_id,
            scheduled_for: march(10, 14),
            mode: ContactMode::FaceToFace,
        }),
        CaseCommand::RecordDidNotAttend(AppointmentNotAttended { appointment_id }),
        assessment(
            sub(4),
            Instrument::Swemwbs,
            Timepoint::Baseline,
            vec![3; 7],
            NaiveDate::from_ymd_opt(2026, 3, 3).expect("date"),
        ),
        record_contact(sub(5), ContactMode::HomeVisit, 60, march(12, 11)),
        CaseCommand::CloseCase(domain::testing::goals_met()),
    ];
    commands.into_iter().take(steps).collect()
}

async fn run_journey(cases: &CaseService, client: ClientId, steps: usize) {
    run_steps(cases, client, 0, steps).await;
}

/// Runs the journey's commands from step `from` (counted from 0) up to `to`.
async fn run_steps(cases: &CaseService, client: ClientId, from: usize, to: usize) {
    let commands: Vec<CaseCommand> = journey(client, to).into_iter().skip(from).collect();
    crate::support::hire_named(cases.store(), crate::support::ORG, &commands).await;
    for command in commands {
        // The missed appointment is marked on its day; everything else on 2 March.
        let mut metadata = metadata();
        if matches!(command, CaseCommand::RecordDidNotAttend(_)) {
            metadata.occurred_at = Utc
                .with_ymd_and_hms(2026, 3, 10, 15, 0, 0)
                .single()
                .expect("time");
        }
        cases
            .execute(client, &command, metadata, CommandOptions::default())
            .await
            .unwrap_or_else(|e| panic!("client {client}: {e}"));
    }
}

/// A runner of the live caseload, with a holder of its own.
fn caseload_runner(store: &eventstore::EventStore) -> Runner {
    Runner::new(
        store.clone(),
        Arc::new(CaseloadProjection),
        Uuid::new_v4(),
        settings(),
    )
}

fn settings() -> RunnerSettings {
    RunnerSettings {
        batch_size: 7,
        lease_ttl: Duration::from_secs(5),
        poll_interval: Duration::from_millis(100),
    }
}

#[tokio::test]
async fn the_caseload_shows_each_client_as_their_journey_left_them() {
    let (db, store) = store_with_db(4).await;
    let cases = CaseService::new(store.clone());
    let clients: Vec<ClientId> = (1..=4).map(|n| ClientId(Uuid::from_u128(n))).collect();
    for (client, steps) in clients.iter().zip([1, 3, 7, 9]) {
        run_journey(&cases, *client, steps).await;
    }
    let runner = caseload_runner(&store);
    assert_eq!(runner.catch_up().await.expect("catch up"), 2 + 4 + 8 + 10);
    let client = db.app_client().await;
    let ids: Vec<Uuid> = clients.iter().map(|c| c.0).collect();
    let rows = CaseloadProjection::rows(&client, &ids).await.expect("rows");
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_yaml_snapshot!("caseload_after_journeys", rows);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newly_assigned_case_shows_once_the_running_projector_catches_up() {
    let (db, store) = store_with_db(6).await;
    let listener = eventstore::Listener::start(db.app_config());
    let store = store.with_listener(&listener);
    let cases = CaseService::new(store.clone());
    let client = ClientId(Uuid::from_u128(42));
    run_journey(&cases, client, 2).await;

    let runner = caseload_runner(&store);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn({
        let runner = runner.clone();
        async move { runner.run(stopped).await }
    });
    let reader = db.app_client().await;
    let assign = CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
        link_worker_id: worker(7),
        team_id: TEAM,
    });
    crate::support::hire_named(
        cases.store(),
        crate::support::ORG,
        std::slice::from_ref(&assign),
    )
    .await;
    cases
        .execute(client, &assign, metadata(), CommandOptions::default())
        .await
        .expect("assign");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = CaseloadProjection::rows(&reader, &[client.0])
            .await
            .expect("rows");
        if rows.first().and_then(|r| r.link_worker_id) == Some(worker(7).0) {
            assert_eq!(rows[0].status, domain::CaseStatus::Open);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the caseload never showed the assignment: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).expect("stop");
    running.await.expect("runner task").expect("runner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_at_random_points_leaves_what_a_clean_rebuild_makes() {
    let (db, store) = store_with_db(8).await;
    let cases = CaseService::new(store.clone());
    let holder = Uuid::new_v4();
    let runner = Runner::new(
        store.clone(),
        Arc::new(CaseloadProjection),
        holder,
        settings(),
    );
    let outcomes = Runner::new(
        store.clone(),
        Arc::new(OutcomesProjection::new(Rules::load(1).expect("rules"))),
        holder,
        settings(),
    );
    // A fixed pseudo-random sequence (no RNG dependency): where each trial is cut short.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for trial in 0..25u128 {
        run_journey(
            &cases,
            ClientId(Uuid::from_u128(100 + trial)),
            1 + (trial as usize % 9),
        )
        .await;
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn({
            let runner = runner.clone();
            let stopped = stopped.clone();
            async move { runner.run(stopped).await }
        });
        let outcome_task = tokio::spawn({
            let outcomes = outcomes.clone();
            async move { outcomes.run(stopped).await }
        });
        tokio::time::sleep(Duration::from_micros(next() % 40_000)).await;
        task.abort();
        let _ = task.await;
        tokio::time::sleep(Duration::from_micros(next() % 10_000)).await;
        outcome_task.abort();
        let _ = outcome_task.await;
    }
    let applied_before = runner.catch_up().await.expect("finish after the kills");
    outcomes
        .catch_up()
        .await
        .expect("outcomes finish after the kills");
    let total: i64 =
        testkit::query_value(&db.app_client().await, "SELECT count(*) FROM events", &[]).await;
    let reader = db.app_client().await;
    let counted: i64 = testkit::query_value(
        &reader,
        "SELECT events_applied FROM projection_checkpoints WHERE projection = 'caseload_v1'",
        &[],
    )
    .await;
    assert_eq!(
        counted, total,
        "every event applied exactly once ({applied_before} in the final catch-up)"
    );
    let ids: Vec<Uuid> = (100..125u128).map(Uuid::from_u128).collect();
    let after_kills = CaseloadProjection::rows(&reader, &ids).await.expect("rows");
    assert_eq!(after_kills.len(), 25);

    runner.reset().await.expect("reset");
    assert!(
        CaseloadProjection::rows(&reader, &ids)
            .await
            .expect("rows")
            .is_empty()
    );
    assert_eq!(runner.catch_up().await.expect("rebuild"), total as u64);
    let rebuilt = CaseloadProjection::rows(&reader, &ids).await.expect("rows");
    assert_eq!(after_kills, rebuilt);

    // The outcome figures too: killed at random, then finished, they equal a clean rebuild.
    let figures_after_kills = outcome_tables(&reader).await;
    assert!(
        figures_after_kills[0]
            .as_array()
            .is_some_and(|rows| rows.len() == 25)
    );
    outcomes.reset().await.expect("reset");
    assert_eq!(outcomes.catch_up().await.expect("rebuild"), total as u64);
    assert_eq!(outcome_tables(&reader).await, figures_after_kills);
}

/// Every outcome table's rows, in a fixed order.
async fn outcome_tables(client: &tokio_postgres::Client) -> Vec<serde_json::Value> {
    table_rows(client, OUTCOME_TABLES).await
}

#[tokio::test]
async fn a_second_runner_waits_while_the_first_holds_the_lease() {
    let (_db, store) = store_with_db(4).await;
    let cases = CaseService::new(store.clone());
    run_journey(&cases, ClientId(Uuid::from_u128(9)), 3).await;
    let first = caseload_runner(&store);
    let second = caseload_runner(&store);
    assert_eq!(first.catch_up().await.expect("first"), 4);
    let refused = second.catch_up().await.expect_err("the lease is taken");
    assert!(
        matches!(refused, projector::ProjectionError::LeaseLost(_)),
        "{refused:?}"
    );
}

/// Events committed behind an open transaction are committed but not yet readable: catch-up
/// must wait for them, not report itself done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_waits_for_events_committed_behind_an_open_transaction() {
    let (db, store) = store_with_db(4).await;
    let cases = CaseService::new(store.clone());
    let mut slow_client = db.app_client().await;
    let slow = appending_without_committing(&mut slow_client).await;
    run_journey(&cases, ClientId(Uuid::from_u128(31)), 3).await;

    let runner = caseload_runner(&store);
    let catching_up = tokio::spawn(async move { runner.catch_up().await });
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !catching_up.is_finished(),
        "catch-up returned while committed events were still unreadable"
    );
    slow.commit().await.expect("commit the slow transaction");
    let applied = tokio::time::timeout(Duration::from_secs(30), catching_up)
        .await
        .expect("catch-up finishes after the commit")
        .expect("task")
        .expect("catch up");
    assert_eq!(applied, 5, "the slow event and the journey's four");
    let rows = CaseloadProjection::rows(&db.app_client().await, &[Uuid::from_u128(31)])
        .await
        .expect("rows");
    assert_eq!(rows[0].status, domain::CaseStatus::Open);
}

/// A transaction on `client` that has appended an event and stays open: the events committed
/// after it are not readable until it ends.
async fn appending_without_committing(
    client: &mut tokio_postgres::Client,
) -> tokio_postgres::Transaction<'_> {
    let slow = client.transaction().await.expect("begin");
    slow.execute(
        "INSERT INTO events (event_id, stream_id, stream_type, stream_version, event_type, schema_version, \
         payload, actor_id, actor_role, organisation_id, correlation_id, occurred_at, recorded_at, hash) \
         VALUES ($1, $2, 'staff', 1, 'StaffNoted', 1, '{}', $2, 'administrator', $2, $2, now(), now(), $3)",
        &[&Uuid::new_v4(), &Uuid::new_v4(), &vec![0u8; 32]],
    )
    .await
    .expect("insert without committing");
    slow
}

/// A lease that expires in 600 ms unless renewed.
fn short_lease() -> RunnerSettings {
    RunnerSettings {
        lease_ttl: Duration::from_millis(600),
        poll_interval: Duration::from_millis(20),
        ..settings()
    }
}

/// Two journeys, the second committed behind a transaction still open, caught up by what
/// `start` spawns over the store (with [`short_lease`]): while it waits, for more than three
/// times the lease's time, no other holder can take the caseload's lease (it is kept renewed)
/// and it is still waiting; once the transaction commits it applies everything, and both
/// people are on the caseload. Or, `seized`, the lease is taken from it by force while it
/// waits, and it stops with the lease lost.
async fn keeps_the_lease_while_waiting(
    pool_size: usize,
    seized: bool,
    start: impl FnOnce(
        eventstore::EventStore,
    ) -> tokio::task::JoinHandle<Result<u64, projector::ProjectionError>>,
) {
    let (db, store) = store_with_db(pool_size).await;
    let cases = CaseService::new(store.clone());
    let people = [Uuid::from_u128(32), Uuid::from_u128(33)];
    run_journey(&cases, ClientId(people[0]), 2).await;
    let mut slow_client = db.app_client().await;
    let slow = appending_without_committing(&mut slow_client).await;
    run_journey(&cases, ClientId(people[1]), 3).await;

    let catching_up = start(store);
    let client = db.app_client().await;
    let name = projector::Projection::name(&CaseloadProjection).to_owned();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !projector::bookkeeping::take_lease(&client, &name, Uuid::new_v4(), 5.0)
                .await
                .expect("take the lease"),
            "another holder took the lease of a catch-up that waits"
        );
    }
    assert!(!catching_up.is_finished(), "the catch-up stopped waiting");
    if seized {
        // Taken by force (as a switch does), the lease is found lost at the next renewal, while
        // the transaction is still open: the catch-up stops, nothing more applied.
        projector::bookkeeping::seize_lease(&client, &name, Uuid::new_v4())
            .await
            .expect("seize the lease");
        let stopped = tokio::time::timeout(Duration::from_secs(30), catching_up)
            .await
            .expect("the catch-up stops")
            .expect("task");
        assert!(
            matches!(stopped, Err(projector::ProjectionError::LeaseLost(_))),
            "{stopped:?}"
        );
        slow.commit().await.expect("commit the slow transaction");
        return;
    }
    slow.commit().await.expect("commit the slow transaction");
    let applied = tokio::time::timeout(Duration::from_secs(30), catching_up)
        .await
        .expect("catch-up finishes after the commit")
        .expect("task")
        .expect("the lease was kept");
    assert_eq!(applied, 3 + 1 + 4, "both journeys and the slow event");
    let rows = CaseloadProjection::rows(&client, &people)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2, "both people on the caseload");
}

/// A catch-up that waits for a transaction still open keeps its lease however long it waits,
/// as its batches would renew it, and stops once the lease is taken from it by force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_waiting_for_an_open_transaction_keeps_its_lease() {
    for seized in [false, true] {
        keeps_the_lease_while_waiting(4, seized, |store| {
            let runner = Runner::new(
                store,
                Arc::new(CaseloadProjection),
                Uuid::new_v4(),
                short_lease(),
            );
            tokio::spawn(async move { runner.catch_up().await })
        })
        .await;
    }
}

/// As above, for projections run together (a rebuild of every read model), what they hold
/// handed after every batch to a write on a connection of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_together_waiting_for_an_open_transaction_keep_their_leases() {
    for seized in [false, true] {
        keeps_the_lease_while_waiting(6, seized, |store| {
            let together = projector::Together::new(
                store,
                vec![Arc::new(CaseloadProjection)],
                Uuid::new_v4(),
                short_lease(),
            )
            .flushing_every(1, 1);
            assert!(together.plan().1, "written on a connection of its own");
            tokio::spawn(async move { together.catch_up_to(None, |_| {}).await })
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_the_caseload_keeps_the_live_one_serving_until_an_atomic_switch() {
    let (db, store) = store_with_db(8).await;
    let cases = CaseService::new(store.clone());
    for n in 0..6u128 {
        run_journey(&cases, ClientId(Uuid::from_u128(300 + n)), 3 + n as usize).await;
    }
    let live = caseload_runner(&store);
    live.catch_up().await.expect("live catches up");
    live.release().await.expect("release");
    let reader = db.app_client().await;
    let ids: Vec<Uuid> = (300..310u128).map(Uuid::from_u128).collect();
    let before = CaseloadProjection::rows(&reader, &ids).await.expect("rows");
    assert_eq!(before.len(), 6);

    // Built beside, not switched: the live rows are untouched, the shadow holds the same.
    crate::support::caseload_shadow_built(&store).await;
    assert_eq!(
        CaseloadProjection::rows(&reader, &ids).await.expect("rows"),
        before
    );
    let shadow: i64 =
        testkit::query_value(&reader, "SELECT count(*) FROM caseload_rebuild", &[]).await;
    assert_eq!(shadow, 6);

    // More happens while the live runner follows the log, then while it is stopped; the
    // rebuild resumes and switches.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let following = tokio::spawn({
        let live = live.clone();
        async move { live.run(stopped).await }
    });
    for n in 6..10u128 {
        run_journey(&cases, ClientId(Uuid::from_u128(300 + n)), 3).await;
    }
    let _ = stop.send(true);
    following.await.expect("join").expect("the live runner");
    live.catch_up().await.expect("live follows");
    // The live runner falls behind mid-journey (contacts after it stopped); the shadow,
    // resumed, does not.
    for n in 6..10u128 {
        run_steps(&cases, ClientId(Uuid::from_u128(300 + n)), 3, 6).await;
    }
    let switched = rebuild(&store, RebuildTarget::Caseload, &RebuildOptions::default())
        .await
        .expect("resume and switch");
    assert!(switched.switched);
    run_journey(&cases, ClientId(Uuid::from_u128(310)), 2).await;
    live.catch_up()
        .await
        .expect("live catches up after the switch");
    let all_ids: Vec<Uuid> = (300..311u128).map(Uuid::from_u128).collect();
    let after_switch = CaseloadProjection::rows(&reader, &all_ids)
        .await
        .expect("rows");
    assert_eq!(after_switch.len(), 11);
    // Every event counted once across the switch: what the shadow applied, then the live runner
    // from where the shadow stopped.
    let total: i64 = testkit::query_value(&reader, "SELECT count(*) FROM events", &[]).await;
    let applied: i64 = testkit::query_value(
        &reader,
        "SELECT events_applied FROM projection_checkpoints WHERE projection = 'caseload_v1'",
        &[],
    )
    .await;
    assert_eq!(applied, total);

    // The same as a clean rebuild from the first event.
    live.reset().await.expect("reset");
    live.catch_up().await.expect("clean rebuild");
    assert_eq!(
        CaseloadProjection::rows(&reader, &all_ids)
            .await
            .expect("rows"),
        after_switch
    );
}

#[tokio::test]
async fn lag_says_how_many_events_and_how_long_a_projection_is_behind() {
    let (db, store) = store_with_db(4).await;
    let cases = CaseService::new(store.clone());
    // An older transaction still open holds the journey back from readers: it is still lag.
    let mut older = db.app_client().await;
    let holding = older.transaction().await.expect("begin");
    holding
        .execute("SELECT pg_current_xact_id()", &[])
        .await
        .expect("take an id");
    run_journey(&cases, ClientId(Uuid::from_u128(400)), 4).await;
    let caseload = |lags: &[projector::Lag]| {
        lags.iter()
            .find(|l| l.projection == "caseload_v1")
            .cloned()
            .expect("the caseload's lag")
    };
    let behind = caseload(&projector::lag(&store).await.expect("lag"));
    assert_eq!(
        behind.events_behind, 5,
        "registered, referred, accepted, assigned, contact"
    );
    assert!(behind.seconds_behind > 0.0, "{behind:?}");
    holding.rollback().await.expect("end the older transaction");
    let runner = caseload_runner(&store);
    runner.catch_up().await.expect("catch up");
    let level = caseload(&projector::lag(&store).await.expect("lag"));
    assert_eq!(
        (
            level.events_behind,
            level.seconds_behind,
            level.events_applied
        ),
        (0, 0.0, 5)
    );
}

/// Every row of the caseload, in a fixed order.
async fn caseload_table(client: &tokio_postgres::Client) -> serde_json::Value {
    testkit::query_value(
        client,
        "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY client_id), '[]') FROM caseload t",
        &[],
    )
    .await
}

/// A read model is the same however the log is cut into batches: every batch size from one
/// event to the whole log, and cuts at pseudo-random places, give the caseload and the outcome
/// figures of the log in one batch.
#[tokio::test]
async fn splitting_the_log_into_batches_anywhere_gives_the_same_read_models() {
    let (db, store) = store_with_db(4).await;
    let cases = CaseService::new(store.clone());
    for (n, steps) in [(1, 9), (2, 3), (3, 7), (4, 9), (5, 1), (6, 8)] {
        run_journey(&cases, ClientId(Uuid::from_u128(600 + n)), steps).await;
    }
    // A correction of the first contact's day, which v3 and the caseload refold from the start
    // of the record, in whichever batch it falls.
    let corrected = ClientId(Uuid::from_u128(603));
    let contact = store
        .read_stream(corrected.0, 1, None)
        .await
        .expect("the record")
        .into_iter()
        .find(|e| e.event_type == "ContactRecorded")
        .expect("a contact");
    let mut fields = serde_json::Map::new();
    fields.insert(
        "contacted_at".to_owned(),
        serde_json::json!("2026-03-04T08:00:00Z"),
    );
    cases
        .execute(
            corrected,
            &CaseCommand::CorrectEntry(EntryCorrected {
                corrects: EventId(contact.event_id),
                corrected_fields: fields,
                reason: "the call was the day after".to_owned(),
            }),
            metadata(),
            CommandOptions::default(),
        )
        .await
        .expect("the correction");
    // The whole log, once it is all readable: a transaction still open anywhere on the
    // (shared) test cluster holds global readers back for a moment.
    let written: i64 =
        testkit::query_value(&db.admin_client().await, "SELECT count(*) FROM events", &[]).await;
    let mut events = Vec::new();
    for _ in 0..600 {
        events = store
            .read_all(eventstore::GlobalPosition::START, 10_000)
            .await
            .expect("the log");
        if events.len() as i64 == written {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(events.len() as i64, written, "the whole log is readable");
    assert!(events.len() > 30, "{} events", events.len());
    let projections: Vec<Arc<dyn projector::Projection>> = vec![
        Arc::new(CaseloadProjection),
        Arc::new(OutcomesProjection::new(Rules::load(2).expect("rules v2"))),
        Arc::new(OutcomesProjection::new(Rules::load(3).expect("rules v3"))),
    ];
    let mut client = db.admin_client().await;
    // Cuts: the whole log in one batch first (what the others must equal), every other size,
    // then a seeded scatter of uneven ones.
    let mut cuttings: Vec<Vec<usize>> = vec![vec![events.len()]];
    cuttings.extend((1..events.len()).map(|size| vec![size]));
    let mut seed = 0x5eed_u64;
    for _ in 0..8 {
        let mut sizes = Vec::new();
        let mut left = events.len();
        while left > 0 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let size = ((seed >> 33) as usize % 9 + 1).min(left);
            sizes.push(size);
            left -= size;
        }
        cuttings.push(sizes);
    }
    let mut whole = None;
    for sizes in &cuttings {
        for projection in &projections {
            let tx = client.transaction().await.expect("tx");
            projection.reset(&tx).await.expect("reset");
            tx.commit().await.expect("commit");
        }
        let mut at = 0;
        let mut k = 0;
        while at < events.len() {
            let size = sizes[k % sizes.len()].min(events.len() - at);
            let batch = &events[at..at + size];
            for projection in &projections {
                let tx = client.transaction().await.expect("tx");
                projection.apply(&tx, batch, &store).await.expect("a batch");
                tx.commit().await.expect("commit");
            }
            at += size;
            k += 1;
        }
        let models = (caseload_table(&client).await, outcome_tables(&client).await);
        match &whole {
            None => whole = Some(models),
            Some(whole) => assert_eq!(&models, whole, "batches of {sizes:?}"),
        }
    }
}
