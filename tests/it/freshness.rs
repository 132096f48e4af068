//! Waiting for read models to pass a log position compares places in the global read order,
//! not positions: an event with a higher position can come first in that order.

use std::sync::Arc;
use std::time::Duration;

use app::{AppError, Freshness, ReadWait};
use eventstore::{AppendRequest, ExpectedVersion};
use projector::{CaseloadProjection, LIVE_CASELOAD, Runner, RunnerSettings};
use uuid::Uuid;

use crate::support::{ACTOR, ORG, contact, metadata, store_with_db};

/// A stream type no read model folds (the projectors still read past its events).
const NOTES: &str = "note";

#[tokio::test]
async fn a_read_model_past_a_higher_position_has_not_passed_a_lower_one_that_sorts_later() {
    let (db, store) = store_with_db(4).await;
    // Transaction A takes its id first and writes last; B writes and commits in between. So A's
    // event has the higher position but the lower transaction id: it comes first in the order.
    let mut slow_client = db.app_client().await;
    let slow = slow_client.transaction().await.expect("begin");
    slow.query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .expect("take a transaction id");
    let written = store
        .append(AppendRequest {
            stream_id: Uuid::new_v4(),
            stream_type: NOTES.to_owned(),
            expected: ExpectedVersion::NoStream,
            events: vec![contact(1)],
            metadata: metadata(),
            idempotency_key: None,
            fingerprint: None,
            lookups: None,
            claims: Vec::new(),
        })
        .await
        .expect("append");
    let lower = written.events[0].position;
    let higher: i64 = slow
        .query_one(
            "INSERT INTO events (event_id, stream_id, stream_type, stream_version, event_type, schema_version, \
             payload, actor_id, actor_role, organisation_id, correlation_id, occurred_at, recorded_at, hash) \
             VALUES ($1, $2, $3, 1, 'Noted', 1, '{}', $4, 'link_worker', $5, $6, now(), now(), $7) RETURNING position",
            &[&Uuid::new_v4(), &Uuid::new_v4(), &NOTES, &ACTOR, &ORG, &Uuid::new_v4(), &vec![0u8; 32]],
        )
        .await
        .expect("insert")
        .get(0);
    slow.commit().await.expect("commit");
    assert!(higher > lower);
    let first = store
        .global_position(higher)
        .await
        .expect("look up")
        .expect("the slow event");
    let second = store
        .global_position(lower)
        .await
        .expect("look up")
        .expect("the quick event");
    assert!(first < second, "{first:?} comes before {second:?}");

    // The caseload applies one event at a time and stops after the first in the order.
    let runner = Runner::new(
        store.clone(),
        Arc::new(CaseloadProjection),
        Uuid::new_v4(),
        RunnerSettings {
            batch_size: 1,
            ..RunnerSettings::default()
        },
    );
    runner
        .catch_up_to(Some(first), |_| {})
        .await
        .expect("catch up to the first");
    assert_eq!(runner.position().await.expect("checkpoint").0, first);

    let freshness = Freshness::new(store.clone(), ReadWait::at_most(Duration::from_millis(200)));
    // Its checkpoint's position is past `lower`, yet the event at `lower` is not applied.
    let waited = freshness.wait(&[LIVE_CASELOAD], Some(lower)).await;
    assert!(
        matches!(&waited, Err(AppError::NotCaughtUp { after, projections, .. })
            if *after == lower && projections == &[LIVE_CASELOAD.to_owned()]),
        "{waited:?}"
    );
    let as_of = freshness
        .read_after(&[LIVE_CASELOAD], Some(higher))
        .await
        .expect("the first is applied");
    assert_eq!((as_of.position, as_of.behind), (higher, 1));

    runner.catch_up().await.expect("catch up");
    let as_of = freshness
        .read_after(&[LIVE_CASELOAD], Some(lower))
        .await
        .expect("both are applied");
    assert_eq!((as_of.position, as_of.behind), (lower, 0));
    let recorded_at: chrono::DateTime<chrono::Utc> = db
        .app_client()
        .await
        .query_one(
            "SELECT recorded_at FROM events WHERE position = $1",
            &[&lower],
        )
        .await
        .expect("the event")
        .get(0);
    assert_eq!(as_of.recorded_at, Some(recorded_at));
}
