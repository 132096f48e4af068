//! Rebuilding every read model together, from one read of the log, makes the rows that live
//! projection makes and that rebuilding each read model alone makes.

use std::sync::Arc;

use casebook::rebuild::{RebuildOptions, RebuildTarget, rebuild};
use chrono::{NaiveDate, TimeZone, Utc};
use devtools::population::{PopulationOptions, populate};
use domain::*;
use projector::rules::Rules;
use projector::{
    CaseloadProjection, DirectoryProjection, OutcomesProjection, Projection, Runner, Together,
};
use uuid::Uuid;

use crate::support::{demo_store, quick_runner};

/// Every read model's rows, each table in a fixed order.
async fn read_models(client: &tokio_postgres::Client, caseload: &str) -> Vec<serde_json::Value> {
    let tables: Vec<&str> = [caseload, "directory_services", "directory_search_terms"]
        .into_iter()
        .chain(projector::FIGURE_TABLES.iter().copied())
        .collect();
    crate::support::table_rows(client, &tables).await
}

/// Catches each of `projections` up with a runner of its own (released afterwards); how many
/// events each applied.
async fn catch_up_each(
    store: &eventstore::EventStore,
    projections: &[Arc<dyn Projection>],
) -> Vec<u64> {
    let mut applied = Vec::new();
    for projection in projections {
        let runner = Runner::new(
            store.clone(),
            projection.clone(),
            Uuid::new_v4(),
            quick_runner(7),
        );
        applied.push(runner.catch_up().await.expect("catching up"));
        runner.release().await.expect("release");
    }
    applied
}

/// Rebuilds `projections` together from the first event in batches of `batch_size`, the folds
/// held across batches written every `flush_events` events or `flush_clients` clients held:
/// the first run dropped once `crash_after` batches are committed (what it held unwritten lost,
/// and a write of it under way aborted, as a killed process loses them: `crash_after` past the
/// second write, which waits for the first, so that one at least has committed), then another
/// run resumes from each one's checkpoint. How
/// many events each one's checkpoint counts as applied.
async fn rebuild_interrupted(
    store: &eventstore::EventStore,
    projections: &[Arc<dyn Projection>],
    batch_size: i64,
    (flush_events, flush_clients): (i64, usize),
    crash_after: u64,
) -> Vec<i64> {
    let together = || {
        Together::new(
            store.clone(),
            projections.to_vec(),
            Uuid::new_v4(),
            quick_runner(batch_size),
        )
        .flushing_every(flush_events, flush_clients)
    };
    let first = together();
    first.reset().await.expect("reset");
    assert!(
        !first.resumable().await.expect("checkpoints"),
        "after a reset"
    );
    let crashed = tokio::sync::Notify::new();
    let mut batches = 0;
    tokio::select! {
        done = first.catch_up_to(None, |_| {
            batches += 1;
            if batches == crash_after {
                crashed.notify_one();
            }
        }) => panic!("the first run ended before its crash: {done:?}"),
        () = crashed.notified() => {}
    }
    first.release().await.expect("release");
    assert!(
        first.resumable().await.expect("checkpoints"),
        "left part-way"
    );
    let client = store.pool().get().await.expect("a connection");
    let flushed_before = events_applied(&client, projections).await;
    assert!(
        flushed_before.iter().any(|&a| a > 0)
            && flushed_before.iter().min() < flushed_before.iter().max(),
        "the crash left the folds held behind the others: {flushed_before:?}"
    );
    // As the service's own runner would once the crashed run's leases expire: a projection
    // written batch by batch carried on alone, in batches of 5, ten events further, so
    // its checkpoint falls inside a batch of the resumed run's.
    let alone = projections
        .iter()
        .find(|p| Arc::clone(p).deferred().is_none())
        .expect("a projection written batch by batch");
    let (at, _) = projector::bookkeeping::checkpoint(&**client, alone.name())
        .await
        .expect("a checkpoint");
    let stop = store
        .read_all(at, 7)
        .await
        .expect("the log")
        .last()
        .expect("events")
        .global;
    let runner = Runner::new(
        store.clone(),
        alone.clone(),
        Uuid::new_v4(),
        quick_runner(5),
    );
    runner
        .catch_up_to(Some(stop), |_| {})
        .await
        .expect("carried on alone");
    runner.release().await.expect("release");
    let second = together();
    second.catch_up_to(None, |_| {}).await.expect("resumed");
    second.release().await.expect("release");
    events_applied(&client, projections).await
}

/// How many events each one's checkpoint counts as applied.
async fn events_applied(
    client: &tokio_postgres::Client,
    projections: &[Arc<dyn Projection>],
) -> Vec<i64> {
    let mut applied = Vec::new();
    for projection in projections {
        let (_, events) = projector::bookkeeping::checkpoint(client, projection.name())
            .await
            .expect("a checkpoint");
        applied.push(events);
    }
    applied
}

/// A population made through the command path (journeys interleaved in the log, corrections
/// among them, the sample directory), two people erased and one correction more: live
/// projection, each read model rebuilt alone, and all of them rebuilt together (the command,
/// and the library in batches of 7) make the same rows.
#[tokio::test]
async fn rebuilding_every_read_model_together_makes_the_rows_live_projection_makes() {
    let (db, store, admin, access) = demo_store().await;
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("a date");
    let options = PopulationOptions {
        clients: 40,
        seed: 11,
        today,
        concurrency: 4,
    };
    populate(&store, &admin, &access, &options, |_| {})
        .await
        .expect("the population");
    let clock = app::Clock::fixed(Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap());
    let cases = app::CaseService::with_clock(store.clone(), clock.clone());
    let clients: Vec<Uuid> = testkit::query_column(
        &admin,
        "SELECT DISTINCT stream_id FROM events WHERE stream_type = 'client' ORDER BY 1",
        &[],
    )
    .await;
    assert!(clients.len() >= 30, "{} clients", clients.len());
    // One correction more, of a contact's time (the caseload and v3 refold it).
    let contact: (Uuid, Uuid) = admin
        .query_one(
            "SELECT stream_id, event_id FROM events WHERE event_type = 'ContactRecorded' \
             ORDER BY stream_id, stream_version LIMIT 1",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .expect("a contact");
    let recorded = store
        .read_stream(contact.0, 1, None)
        .await
        .expect("the record")
        .into_iter()
        .find(|e| e.event_id == contact.1)
        .expect("the contact");
    let contacted_at: chrono::DateTime<Utc> =
        serde_json::from_value(recorded.payload["contacted_at"].clone()).expect("a time");
    let contacted_at = contacted_at + chrono::Duration::minutes(1);
    let mut fields = serde_json::Map::new();
    fields.insert(
        "contacted_at".to_owned(),
        serde_json::json!(contacted_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    );
    let holder = |client: Uuid| {
        let cases = cases.clone();
        async move {
            cases
                .load(ClientId(client))
                .await
                .expect("a record")
                .organisation_id
                .expect("held")
        }
    };
    let organisation = holder(contact.0).await;
    let staff = access
        .staff
        .iter()
        .find(|(role, _, _)| *role == app::access::Role::Administrator)
        .map(|(_, id, _)| *id)
        .expect("an administrator");
    cases
        .execute_authorised(
            ClientId(contact.0),
            &CaseCommand::CorrectEntry(EntryCorrected {
                corrects: EventId(contact.1),
                corrected_fields: fields,
                reason: "the call was a minute later".to_owned(),
            }),
            eventstore::Metadata {
                actor_id: staff,
                actor_role: app::access::Role::Administrator.as_str().to_owned(),
                organisation_id: organisation,
                correlation_id: Uuid::new_v4(),
                causation_id: None,
                occurred_at: clock.now(),
            },
            app::CommandOptions::default(),
            |_| Ok(()),
        )
        .await
        .expect("the correction");
    for &erased in &clients[3..5] {
        let organisation = holder(erased).await;
        app::privacy::erase_as_system(&cases, erased, organisation, "retention", clock.now())
            .await
            .expect("erased");
    }
    let corrections: i64 = admin
        .query_one(
            "SELECT count(*) FROM events WHERE event_type = 'EntryCorrected'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert!(corrections >= 1);
    let total: i64 = admin
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .expect("count")
        .get(0);

    // Live: a runner per read model, in small batches, as `serve` runs them.
    let client = db.admin_client().await;
    for version in [1, 2, 3] {
        projector::start_version(&client, projector::OUTCOMES, version)
            .await
            .expect("a version");
    }
    let live: Vec<Arc<dyn Projection>> = vec![
        Arc::new(CaseloadProjection),
        Arc::new(DirectoryProjection),
        Arc::new(OutcomesProjection::new(Rules::load(1).expect("v1"))),
        Arc::new(OutcomesProjection::new(Rules::load(2).expect("v2"))),
        Arc::new(OutcomesProjection::new(Rules::load(3).expect("v3"))),
    ];
    assert_eq!(
        catch_up_each(&store, &live).await,
        vec![total as u64; live.len()]
    );
    let expected = read_models(&client, "caseload").await;
    assert!(expected[0].as_array().is_some_and(|rows| rows.len() >= 20));
    assert!(
        expected[1].as_array().is_some_and(|rows| rows.len() > 100),
        "the directory"
    );

    // Each alone, as `casebook rebuild <model> --restart` does.
    let restart = RebuildOptions {
        restart: true,
        ..RebuildOptions::default()
    };
    for target in [
        RebuildTarget::Caseload,
        RebuildTarget::Directory,
        RebuildTarget::Outcomes { rules: 1 },
        RebuildTarget::Outcomes { rules: 2 },
        RebuildTarget::Outcomes { rules: 3 },
    ] {
        let report = rebuild(&store, target, &restart).await.expect("alone");
        assert_eq!(report.events, total as u64, "{}", report.projection);
    }
    assert_eq!(read_models(&client, "caseload").await, expected, "alone");

    // All together, as `casebook rebuild all --restart` does.
    let report = rebuild(&store, RebuildTarget::All { rules: 3 }, &restart)
        .await
        .expect("together");
    assert_eq!(report.events, total as u64);
    assert!(report.switched);
    for name in [
        "caseload_v1_rebuild",
        "directory_v1",
        "outcomes_v1",
        "outcomes_v2",
        "outcomes_v3",
    ] {
        assert!(report.projection.contains(name), "{}", report.projection);
    }
    assert_eq!(read_models(&client, "caseload").await, expected, "together");
    let live_version = projector::live_version(&client, projector::OUTCOMES)
        .await
        .expect("the live version");
    assert_eq!(live_version, 3);
    // Run again after one that finished and switched: from the first event, not resumed.
    let again = RebuildOptions {
        restart: false,
        ..RebuildOptions::default()
    };
    let report = rebuild(&store, RebuildTarget::All { rules: 3 }, &again)
        .await
        .expect("again");
    assert_eq!(report.events, total as u64, "after a finished run");
    // Without its switch, the next run resumes where it finished: nothing left to apply.
    let unswitched = RebuildOptions {
        switch: false,
        ..again
    };
    let report = rebuild(&store, RebuildTarget::All { rules: 3 }, &unswitched)
        .await
        .expect("unswitched");
    assert_eq!(
        report.events, total as u64,
        "after a switched run, unswitched"
    );
    let report = rebuild(&store, RebuildTarget::All { rules: 3 }, &unswitched)
        .await
        .expect("resumed");
    assert_eq!(report.events, 0, "after an unswitched run");
    let report = rebuild(&store, RebuildTarget::All { rules: 3 }, &again)
        .await
        .expect("switched");
    assert_eq!(report.events, 0, "resumed, then switched");
    assert_eq!(read_models(&client, "caseload").await, expected, "resumed");

    // Together in batches of 7 (a client's events, and a correction's record, cut anywhere),
    // into the live caseload, then resumed after a stop part-way: the same rows.
    let together = Together::new(store.clone(), live.clone(), Uuid::new_v4(), quick_runner(7));
    together.reset().await.expect("reset");
    let head = store
        .lag(eventstore::GlobalPosition::START)
        .await
        .expect("the head")
        .0;
    let first = store
        .read_all(eventstore::GlobalPosition::START, total / 2)
        .await
        .expect("half the log")
        .last()
        .expect("events")
        .global;
    let half = together
        .catch_up_to(Some(first), |_| {})
        .await
        .expect("half");
    assert!(half > 0 && half < total as u64, "{half} of {total}");
    // The stop writes what is held: every one stands where the last batch ended.
    let db_client = store.pool().get().await.expect("a connection");
    for projection in &live {
        let (at, applied) = projector::bookkeeping::checkpoint(&**db_client, projection.name())
            .await
            .expect("a checkpoint");
        assert!(
            at >= first && applied == half as i64,
            "{}: {applied} of {half}",
            projection.name()
        );
    }
    drop(db_client);
    let rest = together
        .catch_up_to(Some(head), |_| {})
        .await
        .expect("the rest");
    assert_eq!(half + rest, total as u64);
    together.release().await.expect("release");
    assert_eq!(
        read_models(&client, "caseload").await,
        expected,
        "batches of 7"
    );

    // Again in batches of 7, what is held written every five batches, killed after eleven and
    // resumed by another run: the same rows, each event applied once.
    let applied = rebuild_interrupted(&store, &live, 7, (35, usize::MAX), 11).await;
    assert_eq!(applied, vec![total as i64; live.len()]);
    assert_eq!(
        read_models(&client, "caseload").await,
        expected,
        "held across batches, killed and resumed"
    );

    // Live catch-up goes on from where they stand: nothing applied twice.
    assert_eq!(catch_up_each(&store, &live).await, vec![0; live.len()]);
}

/// Records whose events straddle many batches, beside records that begin and end in one batch
/// and records that begin in a batch others continue in: every read model rebuilt together in
/// batches of 3 holds what one batch holding the whole log makes, whether what is folded is
/// held to the end, written every three batches (each client's state lent from the write under
/// way, or read back after it) and killed part-way, or written whenever two clients are held;
/// and written in the batch's own transaction when the pool has no room for a second
/// connection.
#[tokio::test]
async fn records_straddling_many_batches_rebuild_as_one_batch_of_the_whole_log_does() {
    let (db, store) = crate::support::store_with_db(6).await;
    let mut journeys: Vec<(Uuid, std::collections::VecDeque<eventstore::NewEvent>)> = (1..=5)
        .map(|n| {
            let n = 0xc0 + n;
            let events = app::new_events(&devtools::bench_rebuild::journey_events(n));
            (Uuid::from_u128(n), events.into_iter().collect())
        })
        .collect();
    let per_client = journeys[0].1.len();
    let append = async |journey: &mut (Uuid, std::collections::VecDeque<_>), all: bool| {
        let at = per_client - journey.1.len();
        let expected = match at {
            0 => eventstore::ExpectedVersion::NoStream,
            v => eventstore::ExpectedVersion::Exact(v as i64),
        };
        let events: Vec<_> = if all {
            journey.1.drain(..).collect()
        } else {
            journey.1.pop_front().into_iter().collect()
        };
        crate::support::append(&store, journey.0, expected, events).await;
    };
    // The first record whole, in one append; the next three an event at a time, in turn; the
    // last whole again.
    append(&mut journeys[0], true).await;
    while journeys[1..4].iter().any(|j| !j.1.is_empty()) {
        for journey in &mut journeys[1..4] {
            if !journey.1.is_empty() {
                append(journey, false).await;
            }
        }
    }
    append(&mut journeys[4], true).await;
    let total = (per_client * journeys.len()) as u64;

    let projections: Vec<Arc<dyn Projection>> = vec![
        Arc::new(CaseloadProjection),
        Arc::new(DirectoryProjection),
        Arc::new(OutcomesProjection::new(Rules::load(1).expect("v1"))),
        Arc::new(OutcomesProjection::new(Rules::load(3).expect("v3"))),
    ];
    let client = db.admin_client().await;
    let mut rebuilt = Vec::new();
    for batch_size in [10_000, 3] {
        let together = Together::new(
            store.clone(),
            projections.clone(),
            Uuid::new_v4(),
            quick_runner(batch_size),
        );
        together.reset().await.expect("reset");
        let mut batches = 0;
        let applied = together
            .catch_up_to(None, |_| batches += 1)
            .await
            .expect("rebuilt");
        together.release().await.expect("release");
        assert_eq!(applied, total, "in batches of {batch_size}");
        rebuilt.push((batches, read_models(&client, "caseload").await));
    }
    assert_eq!(rebuilt[0].0, 1, "the whole log in one batch");
    assert!(rebuilt[1].0 >= total / 3, "{} batches", rebuilt[1].0);
    assert_eq!(rebuilt[1].1, rebuilt[0].1, "batches of 3 against one batch");
    // Batches of 3, what is held written every three batches (each client lent from the write
    // under way, or read back after it), killed after seven and resumed.
    let applied = rebuild_interrupted(&store, &projections, 3, (9, usize::MAX), 7).await;
    assert_eq!(applied, vec![total as i64; projections.len()]);
    assert_eq!(
        read_models(&client, "caseload").await,
        rebuilt[0].1,
        "held across batches, killed and resumed"
    );
    // Rebuilt by `together` from the first event: each event applied once, the same rows.
    let same_rows = async |together: Together, what: &str| {
        together.reset().await.expect("reset");
        let applied = together.catch_up_to(None, |_| {}).await.expect("rebuilt");
        assert_eq!(applied, total, "{what}");
        together.release().await.expect("release");
        assert_eq!(
            read_models(&client, "caseload").await,
            rebuilt[0].1,
            "{what}"
        );
    };
    // Written whenever two clients are held, on connections of their own while the next
    // batches fold (as in the runs above).
    let together = Together::new(
        store.clone(),
        projections.clone(),
        Uuid::new_v4(),
        quick_runner(3),
    )
    .flushing_every(i64::MAX, 2);
    assert_eq!(together.plan(), (2, true), "two groups, each with a writer");
    same_rows(together, "written whenever two clients are held").await;
    // With no room in the pool for such a connection (a pool of three: the reader's two and
    // one group's), what is held is written in the batch's own transaction.
    let small = crate::support::protected(eventstore::EventStore::new(
        db.app_pool(3),
        app::upcasters(),
    ));
    let together = Together::new(small, projections.clone(), Uuid::new_v4(), quick_runner(3))
        .flushing_every(9, usize::MAX);
    assert_eq!(together.plan(), (1, false), "one group, no writer");
    same_rows(together, "written in the batch's transaction").await;
    // What they hold: a row and a state per record and rule version, and under v3 a row per
    // appointment kept or missed and per contact (six and three in each journey).
    let count = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(sql, &[])
                .await
                .expect("a count")
                .get::<_, i64>(0)
        }
    };
    assert_eq!(count("SELECT count(*) FROM caseload").await, 5);
    assert_eq!(count("SELECT count(*) FROM outcome_state").await, 10);
    assert_eq!(
        count("SELECT count(*) FROM report_activity WHERE rules_version = 3").await,
        45
    );
    assert_eq!(
        count("SELECT count(*) FROM report_episodes WHERE attended + did_not_attend = 6 AND contacts = 3")
            .await,
        10
    );
}

/// The rebuild's reader takes each client payload that needs no opening or upcasting as the
/// text PostgreSQL stores, and decodes it with no `Value` in between: every event it reads is
/// the event the ordinary read gives, and every client event decodes to the same event. A
/// payload that may hold a sealed value (the people's details, notes) or is on another kind of
/// stream (the directory's) comes as the ordinary read gives it.
#[tokio::test]
async fn the_reader_decodes_stored_text_as_the_ordinary_read_decodes_its_value() {
    let (_db, store, admin, access) = demo_store().await;
    let options = PopulationOptions {
        clients: 12,
        seed: 5,
        today: NaiveDate::from_ymd_opt(2026, 11, 23).expect("a date"),
        concurrency: 2,
    };
    populate(&store, &admin, &access, &options, |_| {})
        .await
        .expect("the population");
    let start = eventstore::GlobalPosition::START;
    let read = store.read_all(start, 100_000).await.expect("the log");
    // As many as the first read saw: what the population's background work appends after it
    // lies beyond (the global order's readable prefix never changes).
    let raw = store
        .read_all_raw(start, read.len() as i64, CLIENT_STREAM)
        .await
        .expect("the log, raw");
    assert_eq!(raw.len(), read.len());
    let (mut as_text, mut as_value) = (0, 0);
    let mut types_as_value = std::collections::BTreeSet::new();
    let mut types_as_text = std::collections::BTreeSet::new();
    for (raw, read) in raw.iter().zip(&read) {
        match &raw.json {
            Some(json) => {
                as_text += 1;
                types_as_text.insert(read.event_type.clone());
                assert!(!json.contains("\"$sealed\""), "{json}");
                assert_eq!(raw.event.stream_type, CLIENT_STREAM);
                assert_eq!(raw.event.payload, serde_json::Value::Null);
                let value: serde_json::Value = serde_json::from_str(json).expect("JSON");
                assert_eq!(value, read.payload, "{}", read.event_type);
                assert_eq!(
                    eventstore::RecordedEvent {
                        payload: value,
                        ..raw.event.clone()
                    },
                    *read
                );
                let by_text = CaseEvent::decode_json(&read.event_type, read.schema_version, json)
                    .expect("decodes from its text");
                let by_value =
                    CaseEvent::decode(&read.event_type, read.schema_version, read.payload.clone())
                        .expect("decodes from its value");
                assert_eq!(by_text, by_value);
            }
            None => {
                as_value += 1;
                assert_eq!(raw.event, *read);
                if read.stream_type == CLIENT_STREAM {
                    types_as_value.insert(read.event_type.clone());
                }
            }
        }
    }
    assert!(as_text > 100 && as_value > 10, "{as_text} {as_value}");
    // The people's details, what matters to them, their goals are sealed: read as values (and
    // a payload read as text matched its value above, which an erased form would not).
    for sealed in ["ClientRegistered", "WhatMattersRecorded", "GoalSet"] {
        assert!(
            types_as_value.contains(sealed),
            "{sealed} among {types_as_value:?}"
        );
    }
    // A type with a personal field that an event left empty: nothing sealed in it, read as text.
    assert!(
        PERSONAL_FIELDS
            .iter()
            .any(|(event_type, _)| types_as_text.contains(*event_type)),
        "{types_as_text:?}"
    );
    assert!(
        read.iter().any(|e| e.stream_type != CLIENT_STREAM),
        "the directory's events are in the log"
    );
}
