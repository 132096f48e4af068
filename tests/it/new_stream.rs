//! A new record's first append, read from nothing (`EventStore::head_of_new_stream`): one
//! statement, recorded by the database's clock as last read, sealed and chained like any other;
//! and, on a stream that exists after all, nothing written and nothing replayed.

use eventstore::{ExpectedVersion, StoreError};
use serde_json::json;
use uuid::Uuid;

use crate::support::{append, assert_chains_hold, contact, event, request, store_with_db};

fn registration() -> eventstore::NewEvent {
    event(
        "ClientRegistered",
        json!({
            "client_id": Uuid::new_v4(),
            "area": "Frome",
            "personal": { "given_name": "Maggie", "family_name": "Thornbury" }
        }),
    )
}

#[tokio::test]
async fn a_new_streams_first_append_reads_nothing_and_is_sealed_chained_and_kept_for_retries() {
    let (db, store) = store_with_db(4).await;
    let stream = Uuid::new_v4();
    // No reading of the database's clock yet: the caller must load as usual.
    assert!(store.head_of_new_stream(stream, None).is_none());
    let admin = db.admin_client().await;
    let before: chrono::DateTime<chrono::Utc> =
        testkit::query_value(&admin, "SELECT now()", &[]).await;
    // Any load reads the clock.
    store
        .read_stream_for_append(Uuid::new_v4(), None)
        .await
        .expect("a load");
    let head = store
        .head_of_new_stream(stream, Some("intake-1"))
        .expect("the clock was read a moment ago");
    assert_eq!(head.version(), 0);

    let mut first = request(stream, ExpectedVersion::NoStream, vec![registration()]);
    first.idempotency_key = Some("intake-1".to_owned());
    let appended = store
        .append_after(first.clone(), head)
        .await
        .expect("a new stream's first append");
    assert!(!appended.replayed);
    assert_eq!(appended.stream_version, 1);
    let after: chrono::DateTime<chrono::Utc> =
        testkit::query_value(&admin, "SELECT now()", &[]).await;

    // Recorded by the database's clock: never before the reading, never after the database's
    // clock when the append had returned.
    let recorded: chrono::DateTime<chrono::Utc> = testkit::query_value(
        &admin,
        "SELECT recorded_at FROM events WHERE stream_id = $1",
        &[&stream],
    )
    .await;
    assert!(
        before <= recorded && recorded <= after,
        "{before} <= {recorded} <= {after}"
    );
    // Sealed at rest under the stream's new data key, open to the stream's reader.
    let stored: serde_json::Value = testkit::query_value(
        &admin,
        "SELECT payload FROM events WHERE stream_id = $1",
        &[&stream],
    )
    .await;
    assert!(
        stored["personal"][eventstore::SEALED].is_string(),
        "{stored:#}"
    );
    let read = store.read_stream(stream, 1, None).await.expect("read");
    assert_eq!(read[0].payload["personal"]["family_name"], "Thornbury");
    assert_chains_hold(&db, 1, 1).await;

    // The key was stored with it: the same request again is answered with the first result.
    let again = store.append(first).await.expect("a retry");
    assert!(again.replayed);
    assert_eq!(again.events, appended.events);
}

#[tokio::test]
async fn an_assumed_new_head_on_a_stream_that_exists_writes_nothing_and_replays_nothing() {
    let (db, store) = store_with_db(4).await;
    let stream = Uuid::new_v4();
    let mut keyed = request(stream, ExpectedVersion::NoStream, vec![contact(1)]);
    keyed.idempotency_key = Some("k".to_owned());
    let first = store.append(keyed.clone()).await.expect("the first append");
    // Reads the clock.
    let (_, _) = store
        .read_stream_for_append(Uuid::new_v4(), None)
        .await
        .expect("a load");

    // The same keyed request, from a head assumed new: a conflict, not the stored result (the
    // caller has authorised nothing against the record as it is).
    let head = store
        .head_of_new_stream(stream, Some("k"))
        .expect("a fresh reading");
    // (Decided again, so with new event ids, as a command's retry is.)
    let mut retry = keyed.clone();
    retry.events = vec![contact(1)];
    let err = store
        .append_after(retry, head)
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
    // Another request at the same id: a conflict too, and nothing written by either.
    let head = store
        .head_of_new_stream(stream, None)
        .expect("a fresh reading");
    let err = store
        .append_after(
            request(stream, ExpectedVersion::NoStream, vec![registration()]),
            head,
        )
        .await
        .expect_err("the stream exists");
    assert!(
        matches!(err, StoreError::Conflict { actual: 1, .. }),
        "{err:?}"
    );
    let events = store.read_stream(stream, 1, None).await.expect("read");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, first.events[0].event_id);
    assert_chains_hold(&db, 1, 1).await;
    // Appending after it as usual still works.
    append(&store, stream, ExpectedVersion::Exact(1), vec![contact(2)]).await;
}

/// Whether `cases`' store would take a new record's first append without loading: its
/// reading of the database's clock is fresh.
fn reads_nothing_first(store: &eventstore::EventStore) -> bool {
    store.head_of_new_stream(Uuid::new_v4(), None).is_some()
}

#[tokio::test]
async fn a_new_persons_referral_at_an_id_in_use_is_answered_as_the_loaded_record_decides() {
    use app::{CaseService, CommandError, CommandOptions};
    use domain::{CaseError, ClientId, NeedDomain, ReferralId, ReferralSource};

    let (db, store) = store_with_db(4).await;
    let cases = CaseService::new(store.clone());
    let client = ClientId(Uuid::new_v4());
    let intake = |referral: ReferralId| {
        crate::support::new_client_intake(
            client,
            referral,
            "Frome",
            ReferralSource::Gp,
            vec![NeedDomain::LonelinessIsolation],
        )
    };
    let keyed = CommandOptions {
        idempotency_key: Some("referral-1".to_owned()),
        ..CommandOptions::default()
    };
    store
        .read_stream_for_append(Uuid::new_v4(), None)
        .await
        .expect("a load reads the clock");

    // A new person: written without a load.
    assert!(reads_nothing_first(&store));
    let first_referral = ReferralId(Uuid::new_v4());
    let first = cases
        .execute(
            client,
            &intake(first_referral),
            crate::support::metadata(),
            keyed.clone(),
        )
        .await
        .expect("a new person's referral");
    assert!(!first.replayed);
    assert_eq!(first.stream_version, 2);

    // The same request again: its first result (the record is loaded and the key found).
    assert!(reads_nothing_first(&store));
    let again = cases
        .execute(
            client,
            &intake(first_referral),
            crate::support::metadata(),
            keyed,
        )
        .await
        .expect("a retry");
    assert!(again.replayed);
    assert_eq!(again.events, first.events);

    // Another new-person referral at the same id: refused as the loaded record decides.
    assert!(reads_nothing_first(&store));
    let refused = cases
        .execute(
            client,
            &intake(ReferralId(Uuid::new_v4())),
            crate::support::metadata(),
            CommandOptions::default(),
        )
        .await
        .expect_err("the id is in use");
    assert!(
        matches!(refused, CommandError::Refused(CaseError::AlreadyRegistered)),
        "{refused:?}"
    );
    assert_eq!(crate::support::stream_len(&store, client.0).await, 2);
    assert_chains_hold(&db, 2, 1).await;
}

/// Appends a registration to each of `streams`, all at once, each after a head assumed new
/// (keyed by its index when `keyed`).
async fn register_all_at_once(
    store: &eventstore::EventStore,
    streams: &[Uuid],
    keyed: bool,
) -> Vec<(
    eventstore::AppendRequest,
    Result<eventstore::AppendResult, StoreError>,
)> {
    let appends = streams.iter().enumerate().map(|(i, stream)| {
        let mut append = request(*stream, ExpectedVersion::NoStream, vec![registration()]);
        append.idempotency_key = keyed.then(|| format!("intake-{i}"));
        let head = store
            .head_of_new_stream(*stream, append.idempotency_key.as_deref())
            .expect("a fresh reading");
        async move { (append.clone(), store.append_after(append, head).await) }
    });
    futures_util::future::join_all(appends).await
}

#[tokio::test]
async fn new_streams_appended_at_once_share_a_statement_and_each_gets_its_own_answer() {
    let (db, store) = store_with_db(8).await;
    let admin = db.admin_client().await;
    let existing = Uuid::new_v4();
    append(
        &store,
        existing,
        ExpectedVersion::NoStream,
        vec![contact(1)],
    )
    .await;
    store
        .read_stream_for_append(Uuid::new_v4(), None)
        .await
        .expect("a load reads the clock");

    // Twenty-four new people at once: written together, fewer transactions than appends.
    let streams: Vec<Uuid> = (0..24).map(|_| Uuid::new_v4()).collect();
    let answers = register_all_at_once(&store, &streams, true).await;
    for (append, answer) in &answers {
        let appended = answer.as_ref().expect("a new stream");
        assert_eq!(appended.stream_id, append.stream_id);
        assert_eq!(appended.stream_version, 1);
        assert_eq!(appended.events[0].event_id, append.events[0].event_id);
    }
    let transactions: i64 = testkit::query_value(
        &admin,
        "SELECT count(DISTINCT transaction_id) FROM events WHERE stream_id = ANY($1)",
        &[&streams],
    )
    .await;
    assert!(
        transactions < 24,
        "{transactions} transactions for 24 appends"
    );
    // Each keyed append's result was stored with it, as the one-append statement stores it.
    for (append, answer) in answers {
        let again = store.append(append).await.expect("a retry");
        assert!(again.replayed);
        assert_eq!(again.events, answer.expect("appended").events);
    }

    // A batch in which one stream exists after all: that one is a conflict and writes
    // nothing; every other is written, each alone.
    let mut streams: Vec<Uuid> = (0..12).map(|_| Uuid::new_v4()).collect();
    streams.insert(5, existing);
    let answers = register_all_at_once(&store, &streams, false).await;
    for (append, answer) in &answers {
        if append.stream_id == existing {
            assert!(
                matches!(answer, Err(StoreError::Conflict { actual: 1, .. })),
                "{answer:?}"
            );
        } else {
            assert_eq!(answer.as_ref().expect("a new stream").stream_version, 1);
        }
    }
    assert_eq!(
        store
            .read_stream(existing, 1, None)
            .await
            .expect("read")
            .len(),
        1
    );
    // Every chain holds, every personal field is sealed and opens.
    assert_chains_hold(&db, 1 + 24 + 12, 1 + 24 + 12).await;
    for stream in streams.iter().filter(|s| **s != existing) {
        let read = store.read_stream(*stream, 1, None).await.expect("read");
        assert_eq!(read[0].payload["personal"]["given_name"], "Maggie");
    }
}
