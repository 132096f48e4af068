//! The event store against real PostgreSQL: appends, conflicts, idempotency, the global read
//! order under concurrency, subscriptions, append-only enforcement, tamper evidence, upcasting.

use eventstore::{ExpectedVersion, StoreError, VerifyReport};
use serde_json::json;
use uuid::Uuid;

use crate::support::{contact, event, request, store_with_db};

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
    store
        .append(request(stream, ExpectedVersion::NoStream, vec![contact(1)]))
        .await
        .expect("append");

    let err = store
        .append(request(stream, ExpectedVersion::NoStream, vec![contact(2)]))
        .await
        .expect_err("the stream exists");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: ExpectedVersion::NoStream,
                actual: 1,
                ..
            }
        ),
        "{err:?}"
    );

    let err = store
        .append(request(
            stream,
            ExpectedVersion::Exact(3),
            vec![contact(2), contact(3)],
        ))
        .await
        .expect_err("stale version");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: ExpectedVersion::Exact(3),
                actual: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        store
            .read_stream(stream, 1, None)
            .await
            .expect("read")
            .len(),
        1
    );

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
    assert_eq!(
        store
            .read_stream(stream, 1, None)
            .await
            .expect("read")
            .len(),
        1
    );

    let mut other = request(stream, ExpectedVersion::Any, vec![contact(99)]);
    other.idempotency_key = Some("intake-42".to_owned());
    let err = store.append(other).await.expect_err("reused key");
    assert!(
        matches!(err, StoreError::IdempotencyMismatch { ref key, .. } if key == "intake-42"),
        "{err:?}"
    );
    assert_eq!(
        store
            .read_stream(stream, 1, None)
            .await
            .expect("read")
            .len(),
        1
    );
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
    store
        .append(request(stream, ExpectedVersion::Any, vec![first]))
        .await
        .expect("append");
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
        store
            .append(request(
                stream,
                ExpectedVersion::NoStream,
                vec![contact(1), contact(2)],
            ))
            .await
            .expect("append");
        store
            .append(request(stream, ExpectedVersion::Exact(2), vec![contact(3)]))
            .await
            .expect("append");
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
