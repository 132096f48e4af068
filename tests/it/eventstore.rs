//! The event store against real PostgreSQL: appends, conflicts, idempotency, the global read
//! order under concurrency, subscriptions, append-only enforcement, tamper evidence, upcasting.

use eventstore::{ExpectedVersion, StoreError, VerifyReport};
use serde_json::json;
use uuid::Uuid;

use crate::support::{
    append, append_new, assert_conflict, collect, contact, event, request, run_ok, store_with_db,
    stream_len,
};

#[tokio::test]
async fn a_batch_appends_atomically_and_reads_back_in_order() {
    let (_db, store) = store_with_db(4).await;
    let stream = Uuid::new_v4();
    let first = store
        .append(request(
            stream,
            ExpectedVersion::NoStream,
            vec![contact(1), contact(2), contact(3)],
        ))
        .await
        .expect("first append");
    assert_eq!(first.stream_version, 3);
    assert_eq!(
        first
            .events
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(
        first
            .events
            .windows(2)
            .all(|w| w[0].position < w[1].position)
    );

    let read = store.read_stream(stream, 1, None).await.expect("read");
    assert_eq!(read.len(), 3);
    assert_eq!(read[2].payload["n"], 3);
    assert_eq!(read[0].metadata.actor_role, "link_worker");
    assert_eq!(
        read.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        first.events.iter().map(|e| e.event_id).collect::<Vec<_>>()
    );

    let from_two = store
        .read_stream(stream, 2, None)
        .await
        .expect("read from 2");
    assert_eq!(
        from_two
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
}

#[tokio::test]
async fn a_stale_expectation_is_a_conflict_and_writes_nothing() {
    let (_db, store) = store_with_db(4).await;
    let stream = Uuid::new_v4();
    append(&store, stream, ExpectedVersion::NoStream, vec![contact(1)]).await;

    let err = store
        .append(request(stream, ExpectedVersion::NoStream, vec![contact(2)]))
        .await
        .expect_err("the stream exists");
    assert_conflict(&err, ExpectedVersion::NoStream, 1);

    let err = store
        .append(request(
            stream,
            ExpectedVersion::Exact(3),
            vec![contact(2), contact(3)],
        ))
        .await
        .expect_err("stale version");
    assert_conflict(&err, ExpectedVersion::Exact(3), 1);
    assert_eq!(stream_len(&store, stream).await, 1);

    store
        .append(request(stream, ExpectedVersion::Exact(1), vec![contact(2)]))
        .await
        .expect("right version");
    store
        .append(request(stream, ExpectedVersion::Any, vec![contact(3)]))
        .await
        .expect("any version");
    assert_eq!(store.stream_version(stream).await.expect("version"), 3);
}

#[tokio::test]
async fn an_idempotent_retry_returns_the_first_result_and_a_reused_key_is_refused() {
    let (_db, store) = store_with_db(4).await;
    let stream = Uuid::new_v4();
    let mut first = request(stream, ExpectedVersion::NoStream, vec![contact(1)]);
    first.idempotency_key = Some("intake-42".to_owned());
    let original = store.append(first.clone()).await.expect("first");
    assert!(!original.replayed);

    // A retry makes fresh event ids and metadata, and would now conflict on the version.
    let mut retry = request(stream, ExpectedVersion::NoStream, vec![contact(1)]);
    retry.idempotency_key = Some("intake-42".to_owned());
    let replayed = store.append(retry).await.expect("retry");
    assert!(replayed.replayed);
    assert_eq!(replayed.events, original.events);
    assert_eq!(replayed.stream_version, 1);
    assert_eq!(stream_len(&store, stream).await, 1);

    let mut other = request(stream, ExpectedVersion::Any, vec![contact(99)]);
    other.idempotency_key = Some("intake-42".to_owned());
    let err = store.append(other).await.expect_err("reused key");
    assert!(
        matches!(err, StoreError::IdempotencyMismatch { ref key, .. } if key == "intake-42"),
        "{err:?}"
    );
    assert_eq!(stream_len(&store, stream).await, 1);
}

#[tokio::test]
async fn malformed_appends_are_refused_without_writing() {
    let (_db, store) = store_with_db(4).await;
    let stream = Uuid::new_v4();
    assert!(matches!(
        store
            .append(request(stream, ExpectedVersion::Any, vec![]))
            .await,
        Err(StoreError::EmptyAppend)
    ));
    let nul = event("NoteRecorded", json!({ "text": "a\u{0}b" }));
    let err = store
        .append(request(stream, ExpectedVersion::Any, vec![nul]))
        .await
        .expect_err("NUL");
    assert!(matches!(err, StoreError::InvalidPayload(_)), "{err:?}");

    let first = contact(1);
    let again = first.clone();
    append(&store, stream, ExpectedVersion::Any, vec![first]).await;
    let err = store
        .append(request(Uuid::new_v4(), ExpectedVersion::Any, vec![again]))
        .await
        .expect_err("dup id");
    assert!(matches!(err, StoreError::DuplicateEventId(_)), "{err:?}");

    let mut service = request(stream, ExpectedVersion::Any, vec![contact(2)]);
    service.stream_type = "service".to_owned();
    let err = store.append(service).await.expect_err("wrong stream type");
    assert!(
        matches!(err, StoreError::StreamTypeMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(store.stream_version(stream).await.expect("version"), 1);
}

#[tokio::test]
async fn verify_passes_on_an_untouched_log() {
    let (db, store) = store_with_db(4).await;
    for _ in 0..3 {
        let stream = Uuid::new_v4();
        append(
            &store,
            stream,
            ExpectedVersion::NoStream,
            vec![contact(1), contact(2)],
        )
        .await;
        append(&store, stream, ExpectedVersion::Exact(2), vec![contact(3)]).await;
    }
    let client = db.admin_client().await;
    let report = eventstore::verify(&client).await.expect("verify");
    assert_eq!(
        report,
        VerifyReport::Ok {
            events: 9,
            streams: 3
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_racing_writers_get_exactly_one_winner_per_version() {
    const WRITERS: usize = 32;
    const ROUNDS: i64 = 12;
    let (_db, store) = store_with_db(WRITERS).await;
    let stream = Uuid::new_v4();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            let mut conflicts = 0;
            for round in 0..ROUNDS {
                barrier.wait().await;
                let expected = if round == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(round)
                };
                let new_event = event(
                    "ContactRecorded",
                    json!({ "writer": writer, "round": round }),
                );
                let event_id = new_event.event_id;
                match store
                    .append(request(stream, expected, vec![new_event]))
                    .await
                {
                    Ok(result) => {
                        assert_eq!(result.stream_version, round + 1);
                        won.push((round + 1, event_id));
                    }
                    Err(StoreError::Conflict { actual, .. }) => {
                        assert_eq!(actual, round + 1, "a loser sees the winner's version");
                        conflicts += 1;
                    }
                    Err(other) => panic!("unexpected error: {other:?}"),
                }
            }
            (won, conflicts)
        }));
    }
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let (won, lost) = task.await.expect("writer task");
        winners.extend(won);
        conflicts += lost;
    }
    winners.sort();
    assert_eq!(
        winners.len() as i64,
        ROUNDS,
        "exactly one winner per version"
    );
    assert_eq!(conflicts, (WRITERS as i64 - 1) * ROUNDS);
    let stored = store.read_stream(stream, 1, None).await.expect("read");
    assert_eq!(
        stored.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        (1..=ROUNDS).collect::<Vec<_>>()
    );
    for ((version, event_id), recorded) in winners.iter().zip(&stored) {
        assert_eq!(
            (*version, *event_id),
            (recorded.stream_version, recorded.event_id),
            "no winner's event is lost"
        );
    }
}

/// Inserts one event row inside `tx` without committing (as a writer that is slow to commit).
async fn insert_uncommitted(tx: &tokio_postgres::Transaction<'_>, stream: Uuid) -> Uuid {
    let event_id = Uuid::new_v4();
    tx.execute(
        "INSERT INTO events (event_id, stream_id, stream_type, stream_version, event_type, schema_version, \
         payload, actor_id, actor_role, organisation_id, correlation_id, occurred_at, recorded_at, hash) \
         VALUES ($1, $2, 'client', 1, 'ContactRecorded', 1, '{}', $3, 'link_worker', $4, $5, now(), now(), $6)",
        &[&event_id, &stream, &crate::support::ACTOR, &crate::support::ORG, &Uuid::new_v4(), &vec![0u8; 32]],
    )
    .await
    .expect("insert without committing");
    event_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_with_rollbacks_are_delivered_exactly_once_in_one_order() {
    const WRITERS: usize = 16;
    const APPENDS: usize = 15;
    let (db, store) = store_with_db(WRITERS + 4).await;
    let listener = eventstore::Listener::start(db.app_config());
    let store = store.with_listener(&listener);
    let settings = eventstore::SubscriptionSettings {
        batch_size: 7,
        poll_interval: std::time::Duration::from_millis(200),
    };
    // Two readers: one as the runners read, one as the live projectors read (client payloads
    // handed as their stored text).
    let mut readers = Vec::new();
    for raw in [false, true] {
        let mut subscription = store.subscribe(eventstore::GlobalPosition::START, settings);
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.len() < WRITERS * APPENDS {
                let batch: Vec<Uuid> = if raw {
                    let batch = subscription.next_raw_batch("client").await;
                    let batch = batch.expect("next raw batch");
                    batch.into_iter().map(|e| e.event.event_id).collect()
                } else {
                    let batch = subscription.next_batch().await.expect("next batch");
                    batch.into_iter().map(|e| e.event_id).collect()
                };
                seen.extend(batch);
            }
            seen
        }));
    }
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        let config = db.app_config();
        writers.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            let mut rollback_client = db::connect(&config).await.expect("connect");
            for n in 0..APPENDS {
                if n % 4 == 1 {
                    // A transaction that writes and then rolls back must never be delivered.
                    let tx = rollback_client.transaction().await.expect("begin");
                    insert_uncommitted(&tx, Uuid::new_v4()).await;
                    tx.rollback().await.expect("rollback");
                }
                let stream = Uuid::new_v4();
                let result = store
                    .append(request(
                        stream,
                        ExpectedVersion::NoStream,
                        vec![contact(n as i64)],
                    ))
                    .await
                    .unwrap_or_else(|e| panic!("writer {writer}: {e}"));
                committed.push(result.events[0].event_id);
            }
            committed
        }));
    }
    let mut committed = std::collections::HashSet::new();
    for writer in writers {
        committed.extend(writer.await.expect("writer"));
    }
    let mut orders = Vec::new();
    for reader in readers {
        let seen = tokio::time::timeout(std::time::Duration::from_secs(60), reader)
            .await
            .expect("the readers catch up")
            .expect("reader task");
        let unique: std::collections::HashSet<_> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "no event is delivered twice");
        assert_eq!(
            unique, committed,
            "every committed event, and nothing else, is delivered"
        );
        orders.push(seen);
    }
    assert_eq!(
        orders[0], orders[1],
        "two readers, one reading payloads as text, see the same order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_waits_for_a_slow_transaction_and_then_receives_it_in_order() {
    let (db, store) = store_with_db(4).await;
    let listener = eventstore::Listener::start(db.app_config());
    let store = store.with_listener(&listener);
    let before = append(
        &store,
        Uuid::new_v4(),
        ExpectedVersion::NoStream,
        vec![contact(0)],
    )
    .await;

    let mut slow_client = db.app_client().await;
    let slow_tx = slow_client.transaction().await.expect("begin");
    let slow_event = insert_uncommitted(&slow_tx, Uuid::new_v4()).await;

    let mut later = Vec::new();
    for n in 1..=5 {
        let result = append(
            &store,
            Uuid::new_v4(),
            ExpectedVersion::NoStream,
            vec![contact(n)],
        )
        .await;
        later.push(result.events[0].event_id);
    }
    // The later events have higher positions than the slow one but committed first. A reader
    // must not step past the open transaction. (Other tests' transactions on the same cluster
    // may hide even `before` for a moment, hence "at most".)
    let visible: Vec<Uuid> = store
        .read_all(eventstore::GlobalPosition::START, 100)
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert!(
        visible.is_empty() || visible == vec![before.events[0].event_id],
        "nothing past the open transaction is readable: {visible:?}"
    );

    let mut subscription = store.subscribe(
        eventstore::GlobalPosition::START,
        eventstore::SubscriptionSettings::default(),
    );
    let first = subscription.next_batch().await.expect("batch");
    assert_eq!(
        first.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        vec![before.events[0].event_id]
    );
    let waiting = tokio::time::timeout(
        std::time::Duration::from_millis(800),
        subscription.next_batch(),
    )
    .await;
    assert!(
        waiting.is_err(),
        "the subscription waits while the slow transaction is open"
    );

    slow_tx.commit().await.expect("commit the slow transaction");
    let rest = collect(&mut subscription, 6).await;
    let mut expected = vec![slow_event];
    expected.extend(later);
    assert_eq!(
        rest, expected,
        "the slow event comes first, then the rest, each once"
    );
}

#[tokio::test]
async fn has_committed_after_says_whether_anything_lies_past_a_place() {
    let (_db, store) = store_with_db(4).await;
    assert!(
        !store
            .has_committed_after(eventstore::GlobalPosition::START)
            .await
            .expect("empty log"),
        "nothing lies past the start of an empty log"
    );
    for n in 1..=5 {
        append(
            &store,
            Uuid::new_v4(),
            ExpectedVersion::NoStream,
            vec![contact(n)],
        )
        .await;
    }
    // Another test's transaction open on the same cluster can hide the newest events from a
    // global reader for a moment (the visibility limit is the cluster's oldest transaction):
    // read until all five show.
    let started = std::time::Instant::now();
    let read = loop {
        let read = store
            .read_all(eventstore::GlobalPosition::START, 100)
            .await
            .expect("read");
        if read.len() == 5 || started.elapsed() > std::time::Duration::from_secs(30) {
            break read;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(read.len(), 5);
    for (i, event) in read.iter().enumerate() {
        let past = store
            .has_committed_after(event.global)
            .await
            .expect("has committed after");
        assert_eq!(past, i + 1 < read.len(), "after event {}", i + 1);
    }
    assert!(
        store
            .has_committed_after(eventstore::GlobalPosition::START)
            .await
            .expect("from the start")
    );
}

#[tokio::test]
async fn the_log_rejects_update_delete_and_truncate_for_every_role() {
    let (db, store) = store_with_db(2).await;
    let stream = Uuid::new_v4();
    append(&store, stream, ExpectedVersion::NoStream, vec![contact(1)]).await;
    let app = db.app_client().await;
    let admin = db.admin_client().await;
    for client in [&app, &admin] {
        for sql in [
            "UPDATE events SET payload = '{}'",
            "DELETE FROM events",
            "TRUNCATE events",
            "UPDATE idempotency_keys SET result = '{}'",
        ] {
            let message = testkit::refusal(client, sql).await;
            assert!(
                message.contains("append-only") || message.contains("permission denied"),
                "{sql}: {message}"
            );
        }
    }
    let app_err = app
        .batch_execute("UPDATE events SET payload = '{}'")
        .await
        .expect_err("app update");
    assert!(
        app_err
            .as_db_error()
            .expect("db error")
            .message()
            .contains("permission denied")
    );
    assert_eq!(
        store.read_stream(stream, 1, None).await.expect("read")[0].payload["n"],
        1
    );
}

#[tokio::test]
async fn verify_reports_the_first_tampered_event_and_a_deleted_one() {
    let (db, store) = store_with_db(2).await;
    let stream = Uuid::new_v4();
    append(
        &store,
        stream,
        ExpectedVersion::NoStream,
        vec![contact(1), contact(2), contact(3)],
    )
    .await;
    let admin = db.admin_client().await;
    // A superuser can switch the triggers off; the hash chain still gives the change away.
    admin
        .batch_execute(&format!(
            "SET session_replication_role = replica; \
             UPDATE events SET payload = jsonb_set(payload, '{{minutes}}', '90') WHERE stream_id = '{stream}' AND stream_version = 2;"
        ))
        .await
        .expect("tamper");
    match eventstore::verify(&admin).await.expect("verify") {
        VerifyReport::Broken {
            stream_id,
            stream_version,
            ..
        } => assert_eq!((stream_id, stream_version), (stream, 2)),
        ok => panic!("tampering went unnoticed: {ok:?}"),
    }

    let other = Uuid::from_u128(u128::MAX); // sorts after `stream` in the walk
    append(
        &store,
        other,
        ExpectedVersion::NoStream,
        vec![contact(1), contact(2)],
    )
    .await;
    admin
        .batch_execute(&format!(
            "SET session_replication_role = replica; \
             UPDATE events SET payload = jsonb_set(payload, '{{minutes}}', '20') WHERE stream_id = '{stream}' AND stream_version = 2; \
             DELETE FROM events WHERE stream_id = '{other}' AND stream_version = 1;"
        ))
        .await
        .expect("restore one, delete another");
    match eventstore::verify(&admin).await.expect("verify") {
        VerifyReport::Broken {
            stream_id,
            stream_version,
            reason,
        } => {
            assert_eq!((stream_id, stream_version), (other, 2), "{reason}");
            assert!(reason.contains("gap"), "{reason}");
        }
        ok => panic!("deletion went unnoticed: {ok:?}"),
    }
}

#[tokio::test]
async fn an_event_stored_under_an_old_schema_version_is_read_in_the_new_shape() {
    let (db, old_store) = store_with_db(2).await;
    let stream = Uuid::new_v4();
    old_store
        .append(request(
            stream,
            ExpectedVersion::NoStream,
            vec![event("GoalSet", json!({ "text": "walk twice a week" }))],
        ))
        .await
        .expect("append v1");

    fn goal_v1_to_v2(mut payload: serde_json::Value) -> Result<serde_json::Value, String> {
        let object = payload.as_object_mut().ok_or("not an object")?;
        let text = object.remove("text").ok_or("no text")?;
        object.insert("description".to_owned(), text);
        object.insert("target_date".to_owned(), serde_json::Value::Null);
        Ok(payload)
    }
    let upcasters = eventstore::Upcasters::new().register("GoalSet", 1, goal_v1_to_v2);
    let store = eventstore::EventStore::new(db.app_pool(2), upcasters);
    let read = store.read_stream(stream, 1, None).await.expect("read");
    assert_eq!(read[0].schema_version, 2);
    assert_eq!(
        read[0].payload,
        json!({ "description": "walk twice a week", "target_date": null })
    );
    let mut subscription = store.subscribe(
        eventstore::GlobalPosition::START,
        eventstore::SubscriptionSettings::default(),
    );
    let global = subscription.next_batch().await.expect("read all");
    assert_eq!(
        global[0].payload, read[0].payload,
        "global reads upcast too"
    );
    // The rebuild's reader is handed a payload as its stored text only when no step applies:
    // here it is read upcast, as every other read is; with no step, it comes as stored.
    let start = eventstore::GlobalPosition::START;
    let raw = store
        .read_all_raw(start, 10, "client")
        .await
        .expect("read raw");
    assert_eq!(raw[0].json, None);
    assert_eq!(raw[0].event, global[0]);
    let unchanged = eventstore::EventStore::new(db.app_pool(2), eventstore::Upcasters::new());
    let raw = unchanged
        .read_all_raw(start, 10, "client")
        .await
        .expect("read raw");
    let text: serde_json::Value =
        serde_json::from_str(raw[0].json.as_deref().expect("as text")).expect("JSON");
    assert_eq!(
        (raw[0].event.schema_version, text),
        (1, json!({ "text": "walk twice a week" }))
    );

    let admin = db.admin_client().await;
    let stored: serde_json::Value = testkit::query_value(
        &admin,
        "SELECT payload FROM events WHERE stream_id = $1",
        &[&stream],
    )
    .await;
    assert_eq!(
        stored,
        json!({ "text": "walk twice a week" }),
        "the stored row is never rewritten"
    );
    assert!(matches!(
        eventstore::verify(&admin).await.expect("verify"),
        VerifyReport::Ok { .. }
    ));
}

#[tokio::test]
async fn reading_a_stream_as_recorded_up_to_a_moment_leaves_out_later_entries() {
    let (db, store) = store_with_db(2).await;
    let stream = Uuid::new_v4();
    append(&store, stream, ExpectedVersion::NoStream, vec![contact(1)]).await;
    let admin = db.admin_client().await;
    let between: chrono::DateTime<chrono::Utc> =
        testkit::query_value(&admin, "SELECT clock_timestamp()", &[]).await;
    append(&store, stream, ExpectedVersion::Exact(1), vec![contact(2)]).await;
    let known_then = store
        .read_stream(stream, 1, Some(between))
        .await
        .expect("read");
    assert_eq!(
        known_then
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(stream_len(&store, stream).await, 2);
}

/// Appends one contact to a new stream for each of `ns`; returns the events' ids in order.
async fn append_each_new(store: &eventstore::EventStore, ns: std::ops::Range<i64>) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for n in ns {
        ids.push(append_new(store, n).await);
    }
    ids
}

/// A dump of the log restored into a new cluster keeps working: the new cluster's transaction
/// ids start lower than the restored ones, so without the generation bump new appends would
/// sort before restored events and a reader's checkpoint would skip them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_restored_into_a_new_cluster_keeps_the_global_order() {
    let (db, store) = store_with_db(4).await;
    let cluster = testkit::cluster().expect("this test needs the private test cluster");
    // Run the source cluster's transaction counter well ahead of a fresh cluster's.
    let burner = db.admin_client().await;
    let burns: Vec<_> = (0..3000)
        .map(|_| burner.query_one("SELECT pg_current_xact_id()::text", &[]))
        .collect();
    futures_util::future::try_join_all(burns)
        .await
        .expect("burn transaction ids");

    let first = append_each_new(&store, 0..3).await;
    let mut subscription = store.subscribe(
        eventstore::GlobalPosition::START,
        eventstore::SubscriptionSettings::default(),
    );
    assert_eq!(collect(&mut subscription, 3).await, first);
    let checkpoint = subscription.checkpoint();
    let second = append_each_new(&store, 3..6).await;

    // Dump, then restore into a brand-new cluster.
    let restore_dir = cluster.dir().with_file_name(format!(
        "casebook-restore-{}",
        &Uuid::new_v4().simple().to_string()[..8]
    ));
    let restored =
        db::Cluster::ensure_running(&restore_dir, cluster.bin_dir(), db::ClusterKind::Throwaway)
            .expect("second cluster");
    let dump_file = restored.dir().join("dump.sql");
    run_ok(
        cluster
            .tool("pg_dump")
            .args(["--no-owner", "-f"])
            .arg(&dump_file)
            .arg(db.name()),
        "pg_dump",
    );
    run_ok(
        restored.tool("psql").args([
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "postgres",
            "-c",
            "CREATE ROLE casebook_app LOGIN",
            "-c",
            "CREATE DATABASE casebook",
        ]),
        "psql",
    );
    run_ok(
        restored
            .tool("psql")
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", "casebook", "-f"])
            .arg(&dump_file),
        "restore",
    );

    let mut admin = db::connect(&restored.admin_config("casebook"))
        .await
        .expect("connect to the restored log");
    db::migrate(&mut admin)
        .await
        .expect("migrate after restore");
    assert!(
        eventstore::rebase_after_restore(&admin)
            .await
            .expect("rebase"),
        "the restored xids run ahead, so the generation moves"
    );
    assert!(
        !eventstore::rebase_after_restore(&admin)
            .await
            .expect("rebase again"),
        "once is enough"
    );

    let new_store = eventstore::EventStore::new(
        db::pool(
            db::app_config(&restored.admin_config("casebook")),
            db::PoolSettings::default(),
        )
        .expect("pool"),
        eventstore::Upcasters::new(),
    );
    let third = append_each_new(&new_store, 6..8).await;

    // The old checkpoint carries on: the rest of the restored events, then the new ones, once.
    let mut resumed = new_store.subscribe(checkpoint, eventstore::SubscriptionSettings::default());
    let rest = collect(&mut resumed, 5).await;
    let expected: Vec<Uuid> = second.iter().chain(&third).copied().collect();
    assert_eq!(rest, expected);
    let everything = new_store
        .read_all(eventstore::GlobalPosition::START, 100)
        .await
        .expect("read all");
    let all_ids: Vec<Uuid> = first.iter().chain(&expected).copied().collect();
    assert_eq!(
        everything
            .into_iter()
            .map(|e| e.event_id)
            .collect::<Vec<_>>(),
        all_ids
    );
    assert!(matches!(
        eventstore::verify(&admin).await.expect("verify"),
        VerifyReport::Ok { events: 8, .. }
    ));

    drop(admin);
    restored.stop().expect("stop the second cluster");
    std::fs::remove_dir_all(restored.dir()).expect("remove the second cluster");
}

/// The hash covers the payload as stored; jsonb keeps numbers as numeric and reorders keys, so
/// awkward numbers and key orders must hash the same after the round trip.
#[tokio::test]
async fn awkward_numbers_and_key_orders_survive_the_round_trip_through_jsonb() {
    let (db, store) = store_with_db(2).await;
    let payload = json!({
        "zeta": 1, "alpha": { "licensor_score": 58.1, "tiny": 1e-7, "huge": 1e300, "negative": -0.5 },
        "whole_float": 2.0, "big_int": 9_007_199_254_740_993_i64, "text": "é \" \\ \u{1F600}"
    });
    append(
        &store,
        Uuid::new_v4(),
        ExpectedVersion::NoStream,
        vec![event("AssessmentRecorded", payload.clone())],
    )
    .await;
    crate::support::assert_chains_hold(&db, 1, 1).await;
}

/// With the poll a minute away, an append can only reach the subscriber in time through
/// LISTEN/NOTIFY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_wakes_a_listening_subscriber_without_waiting_for_the_poll() {
    let (db, store) = store_with_db(4).await;
    let listener = eventstore::Listener::start(db.app_config());
    let store = store.with_listener(&listener);
    let first = append_new(&store, 1).await;
    let settings = eventstore::SubscriptionSettings {
        batch_size: 10,
        poll_interval: std::time::Duration::from_secs(60),
    };
    let mut subscription = store.subscribe(eventstore::GlobalPosition::START, settings);
    assert_eq!(collect(&mut subscription, 1).await, vec![first]);
    let waiting = tokio::spawn(async move { collect(&mut subscription, 1).await });
    // Let the subscriber find nothing and start waiting. If the listener were still connecting,
    // its connect wake-up would do instead: either way the wake comes from the listener.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let second = append_new(&store, 2).await;
    let woken = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("woken by the notification, long before the poll")
        .expect("subscriber task");
    assert_eq!(woken, vec![second]);
}

/// Lookup tags: keyed by the master key's lookup key (the same value and purpose give the same
/// tag, another purpose another), written by the append that carries them and replaced by the
/// next that does, left by one that does not, deleted with the stream's key at erasure, and still
/// the same tags after the master key is rotated.
#[tokio::test]
async fn lookup_tags_follow_their_appends_and_survive_a_master_key_rotation() {
    let (db, store) = crate::support::store_with_db(2).await;
    let tag = |purpose: &'static str, value: &'static str| {
        let store = store.clone();
        async move {
            store
                .lookup_tag(purpose, value)
                .await
                .expect("a tag")
                .expect("a sealing store")
        }
    };
    let first = tag("nhs-number:a", "9434765919").await;
    assert_eq!(tag("nhs-number:a", "9434765919").await, first);
    assert_ne!(tag("nhs-number:b", "9434765919").await, first);
    let second = tag("nhs-number:a", "9990000018").await;
    let unsealed = eventstore::EventStore::new(db.app_pool(1), app::upcasters());
    assert_eq!(
        unsealed
            .lookup_tag("nhs-number:a", "1")
            .await
            .expect("none"),
        None
    );

    let stream = Uuid::new_v4();
    let tagged = |tags: Option<Vec<[u8; 32]>>, expected| eventstore::AppendRequest {
        lookups: tags,
        ..request(stream, expected, vec![contact(1)])
    };
    // Each append, then the streams tagged `first` and `second` after it: an append without
    // tags keeps the stream's, one with tags replaces them.
    for (tags, expected, with_first, with_second) in [
        (
            Some(vec![first]),
            ExpectedVersion::NoStream,
            vec![stream],
            vec![],
        ),
        (None, ExpectedVersion::Exact(1), vec![stream], vec![]),
        (
            Some(vec![second]),
            ExpectedVersion::Exact(2),
            vec![],
            vec![stream],
        ),
    ] {
        store.append(tagged(tags, expected)).await.expect("append");
        let tagged_first = store.streams_tagged(&first).await.expect("tagged");
        let tagged_second = store.streams_tagged(&second).await.expect("tagged");
        assert_eq!((tagged_first, tagged_second), (with_first, with_second));
    }
    // A failed append (a stale version) changes no tag.
    assert!(
        store
            .append(tagged(Some(vec![first]), ExpectedVersion::Exact(1)))
            .await
            .is_err()
    );
    assert!(
        store
            .streams_tagged(&first)
            .await
            .expect("tagged")
            .is_empty()
    );

    // The key rotated: the same tags (a fresh store under the new key reads the rewrapped key).
    let new_key = eventstore::MasterKey::from_bytes([0x7a; 32]);
    let mut owner = db.admin_client().await;
    eventstore::rotate_master_key(&mut owner, &crate::support::test_master_key(), &new_key)
        .await
        .expect("rotated");
    let rotated = eventstore::EventStore::new(db.app_pool(1), app::upcasters())
        .with_protection(app::privacy::protection(new_key));
    assert_eq!(
        rotated
            .lookup_tag("nhs-number:a", "9990000018")
            .await
            .expect("a tag"),
        Some(second)
    );

    // Erased: the stream carries no tag.
    rotated
        .append_and_shred(tagged(None, ExpectedVersion::Exact(3)))
        .await
        .expect("erased");
    assert!(
        rotated
            .streams_tagged(&second)
            .await
            .expect("tagged")
            .is_empty()
    );
}
