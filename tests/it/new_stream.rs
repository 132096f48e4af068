//! A new record's first append, read from nothing (`EventStore::head_of_new_stream`): written
//! with others waiting in one statement, recorded by the database's clock read after it was
//! asked for, sealed and chained like any other; and, on a stream that exists after all,
//! nothing written and nothing replayed.

use eventstore::{ExpectedVersion, StoreError};
use serde_json::json;
use uuid::Uuid;

use crate::support::{
    append, assert_chains_hold, assert_conflict, contact, event, request, store_with_db,
};

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
    let admin = db.admin_client().await;
    let before: chrono::DateTime<chrono::Utc> =
        testkit::query_value(&admin, "SELECT now()", &[]).await;
    let head = store.head_of_new_stream(stream, Some("intake-1"));
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

    // Recorded by the database's clock: after the moment before it was asked for, and not
    // after the moment it had returned.
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

    // The same keyed request, from a head assumed new: a conflict, not the stored result (the
    // caller has authorised nothing against the record as it is).
    let head = store.head_of_new_stream(stream, Some("k"));
    // (Decided again, so with new event ids, as a command's retry is.)
    let mut retry = keyed.clone();
    retry.events = vec![contact(1)];
    let err = store
        .append_after(retry, head)
        .await
        .expect_err("the stream exists");
    assert_conflict(&err, ExpectedVersion::NoStream, 1);
    // Another request at the same id: a conflict too, and nothing written by either.
    let head = store.head_of_new_stream(stream, None);
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
    // A new person: written without a load, by the batch writer.
    let written = store.new_streams_written();
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
    assert_eq!(store.new_streams_written(), written + 1);

    // The same request again: its first result (the record is loaded and the key found).
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
    assert_eq!(store.new_streams_written(), written + 1);

    // Another new-person referral at the same id: refused as the loaded record decides.
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
    assert_eq!(store.new_streams_written(), written + 1);
    assert_chains_hold(&db, 2, 1).await;
}

/// A lookup tag standing for `stream`'s NHS number.
fn tag_of(stream: Uuid) -> [u8; 32] {
    let mut tag = [7; 32];
    tag[..16].copy_from_slice(stream.as_bytes());
    tag
}

/// Asserts that the appends to `streams` (one each) were written in fewer transactions than
/// there are appends: some shared a statement.
async fn assert_written_together(admin: &tokio_postgres::Client, streams: &[Uuid]) {
    let transactions: i64 = testkit::query_value(
        admin,
        "SELECT count(DISTINCT transaction_id) FROM events WHERE stream_id = ANY($1)",
        &[&streams],
    )
    .await;
    assert!(
        transactions < streams.len() as i64,
        "{transactions} transactions for {} appends",
        streams.len()
    );
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
        // Each found later by a tag of its own.
        append.lookups = Some(vec![tag_of(*stream)]);
        let head = store.head_of_new_stream(*stream, append.idempotency_key.as_deref());
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

    // Twenty-four new people at once: written together, fewer transactions than appends.
    let streams: Vec<Uuid> = (0..24).map(|_| Uuid::new_v4()).collect();
    let answers = register_all_at_once(&store, &streams, true).await;
    for (append, answer) in &answers {
        let appended = answer.as_ref().expect("a new stream");
        assert_eq!(appended.stream_id, append.stream_id);
        assert_eq!(appended.stream_version, 1);
        assert_eq!(appended.events[0].event_id, append.events[0].event_id);
    }
    assert_written_together(&admin, &streams).await;
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
    // Every chain holds, every personal field is sealed and opens, every tag finds its
    // stream, and the existing stream took no tag.
    assert_chains_hold(&db, 1 + 24 + 12, 1 + 24 + 12).await;
    for stream in streams.iter().filter(|s| **s != existing) {
        let read = store.read_stream(*stream, 1, None).await.expect("read");
        assert_eq!(read[0].payload["personal"]["given_name"], "Maggie");
        assert_eq!(
            store
                .streams_tagged(&tag_of(*stream))
                .await
                .expect("tagged"),
            [*stream]
        );
    }
    assert!(
        store
            .streams_tagged(&tag_of(existing))
            .await
            .expect("tagged")
            .is_empty()
    );

    // A store that seals nothing writes no data keys, and the same way.
    let unsealed = eventstore::EventStore::new(db.app_pool(4), app::upcasters());
    let streams: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    for (_, answer) in register_all_at_once(&unsealed, &streams, false).await {
        assert_eq!(answer.expect("a new stream").stream_version, 1);
    }
    assert_eq!(unsealed.new_streams_written(), 8);
    let keys: i64 = testkit::query_value(
        &admin,
        "SELECT count(*) FROM subject_keys WHERE subject_id = ANY($1)",
        &[&streams],
    )
    .await;
    assert_eq!(keys, 0);
    assert_chains_hold(&db, 1 + 24 + 12 + 8, 1 + 24 + 12 + 8).await;
}

#[tokio::test]
async fn a_new_stream_asked_for_after_a_moment_is_recorded_after_it() {
    // What "as known at" views rest on: a reader that took the database's clock before an
    // append was asked for never sees that append as known by then.
    let (db, store) = store_with_db(4).await;
    let admin = db.admin_client().await;
    for _ in 0..20 {
        let moment: chrono::DateTime<chrono::Utc> =
            testkit::query_value(&admin, "SELECT now()", &[]).await;
        let stream = Uuid::new_v4();
        store
            .append_after(
                request(stream, ExpectedVersion::NoStream, vec![registration()]),
                store.head_of_new_stream(stream, None),
            )
            .await
            .expect("a new stream");
        let recorded: chrono::DateTime<chrono::Utc> = testkit::query_value(
            &admin,
            "SELECT recorded_at FROM events WHERE stream_id = $1",
            &[&stream],
        )
        .await;
        assert!(moment < recorded, "{moment} < {recorded}");
    }
}

/// How many events `streams` hold.
async fn events_of(admin: &tokio_postgres::Client, streams: &[Uuid]) -> i64 {
    testkit::query_value(
        admin,
        "SELECT count(*) FROM events WHERE stream_id = ANY($1)",
        &[&streams],
    )
    .await
}

/// A new stream's `append`, refused with `ClaimTaken` naming `claim` both in a batch (after
/// `head_of_new_stream`) and written alone; the stream's id.
async fn refused_in_a_batch_and_alone(
    store: &eventstore::EventStore,
    append: impl Fn(Uuid) -> eventstore::AppendRequest,
    claim: Uuid,
) -> Uuid {
    let late = Uuid::new_v4();
    let head = store.head_of_new_stream(late, None);
    let in_a_batch = store.append_after(append(late), head).await;
    let alone = store.append(append(late)).await;
    for (how, answer) in [("in a batch", in_a_batch), ("alone", alone)] {
        match answer {
            Err(StoreError::ClaimTaken(id)) => assert_eq!(id, claim, "{how}"),
            other => panic!("written {how} beside a stream carrying its tag: {other:?}"),
        }
    }
    late
}

/// Twelve new streams appended at once with `claiming`'s appends (each making a claim),
/// beside twelve that claim nothing, each of which must be written (a batch that fails for a
/// claim is written again without it): the claimants' streams and answers.
async fn race_beside_others(
    store: &eventstore::EventStore,
    claiming: impl Fn(Uuid) -> eventstore::AppendRequest,
) -> (Vec<Uuid>, Vec<Result<eventstore::AppendResult, StoreError>>) {
    let streams: Vec<Uuid> = (0..12).map(|_| Uuid::new_v4()).collect();
    let bystanders: Vec<Uuid> = (0..12).map(|_| Uuid::new_v4()).collect();
    let claimants = streams.iter().map(|stream| {
        let head = store.head_of_new_stream(*stream, None);
        store.append_after(claiming(*stream), head)
    });
    let others = bystanders.iter().map(|stream| {
        let head = store.head_of_new_stream(*stream, None);
        store.append_after(
            request(*stream, ExpectedVersion::NoStream, vec![registration()]),
            head,
        )
    });
    let (answers, others) = tokio::join!(
        futures_util::future::join_all(claimants),
        futures_util::future::join_all(others)
    );
    for other in others {
        other.expect("an append claiming nothing is written");
    }
    (streams, answers)
}

/// Claims (`eventstore::Claim`): of new streams appended at once, each claiming a value's first
/// generation (in one batch's statement, or written alone), exactly one is written; every
/// other is refused with `ClaimTaken`, nothing of it written (no event, no tag). The next
/// generation is made by one append after a read of the last, and an erasure deletes the
/// stream's claims with its tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_appends_racing_for_one_claim_one_is_written_and_the_others_leave_nothing() {
    let (db, store) = store_with_db(8).await;
    let admin = db.admin_client().await;
    let shared = [0x5a; 32];
    let claim = Uuid::new_v4();
    let claimed = |stream: Uuid, generation: i64| {
        let mut append = request(stream, ExpectedVersion::NoStream, vec![registration()]);
        append.lookups = Some(vec![shared]);
        append.claims = vec![eventstore::Claim::At {
            id: claim,
            generation,
        }];
        append
    };
    let found = store
        .tagged_and_claimed(&shared, None, claim)
        .await
        .expect("read");
    assert_eq!(found.streams, Vec::<Uuid>::new());
    assert_eq!(found.generation, 0);

    // Beside twelve new streams that claim nothing, so that a batch holding one claimant and
    // others fails for the claim, and the others are written without it.
    let (streams, answers) = race_beside_others(&store, |stream| claimed(stream, 1)).await;
    let written: Vec<Uuid> = answers
        .iter()
        .filter_map(|answer| answer.as_ref().ok().map(|appended| appended.stream_id))
        .collect();
    assert_eq!(written.len(), 1, "{answers:?}");
    for answer in &answers {
        match answer {
            Ok(_) => {}
            Err(StoreError::ClaimTaken(id)) => assert_eq!(*id, claim),
            Err(other) => panic!("refused for another reason: {other}"),
        }
    }
    assert_eq!(
        events_of(&admin, &streams).await,
        1,
        "the refused appends wrote nothing"
    );
    let found = store
        .tagged_and_claimed(&[0x00; 32], Some(&shared), claim)
        .await
        .expect("read");
    assert_eq!((found.streams, found.also), (Vec::new(), written.clone()));
    assert_eq!(found.generation, 1);

    // Written alone (not a new stream's first append): the same.
    let other = Uuid::new_v4();
    append(&store, other, ExpectedVersion::NoStream, vec![contact(1)]).await;
    let mut again = claimed(other, 1);
    again.expected = ExpectedVersion::Exact(1);
    match store.append(again.clone()).await {
        Err(StoreError::ClaimTaken(id)) => assert_eq!(id, claim),
        other => panic!("a taken claim written: {other:?}"),
    }
    assert_eq!(store.stream_version(other).await.expect("version"), 1);
    again.claims = vec![eventstore::Claim::At {
        id: claim,
        generation: 2,
    }];
    store.append(again).await.expect("the next generation");
    let found = store
        .tagged_and_claimed(&shared, None, claim)
        .await
        .expect("read");
    assert_eq!(found.generation, 2);
    let mut holders = vec![written[0], other];
    holders.sort();
    assert_eq!(found.streams, holders);

    // Erased: the stream's claims go with its tags (so that an erased person is not found even
    // as "was once referred"), and the claim's generation goes back with them: a referral that
    // read it before the erasure and one after it could then both make a record, a race
    // docs/personal-data.md names.
    for (stream, version, left) in [(other, 2, 1), (written[0], 1, 0)] {
        let mut erase = request(stream, ExpectedVersion::Exact(version), vec![contact(9)]);
        erase.lookups = None;
        store.append_and_shred(erase).await.expect("erased");
        let claims: i64 = testkit::query_value(
            &admin,
            "SELECT count(*) FROM lookup_claims WHERE stream_id = $1",
            &[&stream],
        )
        .await;
        assert_eq!(claims, 0);
        let found = store
            .tagged_and_claimed(&shared, None, claim)
            .await
            .expect("read");
        assert_eq!(found.generation, left);
    }
}

/// A claim on the next generation (`eventstore::Claim::Next`), made by an append that looked
/// nothing up: of twelve racing for one value (beside twelve that claim nothing), one is
/// written, claiming generation 1; once a stream carries one of its tags, a claimant is
/// refused with `ClaimTaken` and writes nothing, in a batch or written alone; with the tag
/// gone but the claim left, the next claimant takes the generation after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_on_the_next_generation_is_refused_by_its_tags_and_taken_once() {
    let (db, store) = store_with_db(8).await;
    let admin = db.admin_client().await;
    let (number, other_tag) = ([0x6b; 32], [0x6c; 32]);
    let claim = Uuid::new_v4();
    let claimant = |stream: Uuid| {
        let mut append = request(stream, ExpectedVersion::NoStream, vec![registration()]);
        append.lookups = Some(vec![number]);
        append.claims = vec![eventstore::Claim::Next {
            id: claim,
            unless_tagged: vec![number, other_tag],
        }];
        append
    };
    let (streams, answers) = race_beside_others(&store, claimant).await;
    let mut written = Vec::new();
    for answer in &answers {
        match answer {
            Ok(appended) => written.push(appended.stream_id),
            Err(StoreError::ClaimTaken(id)) => assert_eq!(*id, claim),
            Err(other) => panic!("refused for another reason: {other}"),
        }
    }
    assert_eq!(written.len(), 1, "{answers:?}");
    assert_eq!(
        events_of(&admin, &streams).await,
        1,
        "the refused wrote nothing"
    );
    let found = store
        .tagged_and_claimed(&number, None, claim)
        .await
        .expect("read");
    assert_eq!((found.streams, found.generation), (written.clone(), 1));

    // The tag carried: refused before anything is written, in a batch and written alone.
    let late = refused_in_a_batch_and_alone(&store, claimant, claim).await;
    assert_eq!(events_of(&admin, &[late]).await, 0);

    // Refused by its other tag alike, though the number's is not carried.
    let elsewhere = Uuid::new_v4();
    let mut tagged = request(elsewhere, ExpectedVersion::NoStream, vec![registration()]);
    tagged.lookups = Some(vec![other_tag]);
    store.append(tagged).await.expect("written");
    let mut lone = claimant(Uuid::new_v4());
    lone.claims = vec![eventstore::Claim::Next {
        id: Uuid::new_v4(),
        unless_tagged: vec![[0x6d; 32], other_tag],
    }];
    assert!(matches!(
        store.append(lone).await,
        Err(StoreError::ClaimTaken(_))
    ));

    // The number's tag gone from its stream (its registration corrected, say), its claim left:
    // the next claimant takes generation 2.
    let mut untag = request(written[0], ExpectedVersion::Exact(1), vec![contact(1)]);
    untag.lookups = Some(Vec::new());
    store.append(untag).await.expect("untagged");
    let head = store.head_of_new_stream(late, None);
    let mut again = claimant(late);
    again.claims = vec![eventstore::Claim::Next {
        id: claim,
        unless_tagged: vec![number],
    }];
    store
        .append_after(again, head)
        .await
        .expect("claimed again once no stream carries the tag");
    let generations: Vec<i64> = admin
        .query(
            "SELECT generation FROM lookup_claims WHERE claim_id = $1 ORDER BY generation",
            &[&claim],
        )
        .await
        .expect("claims")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(generations, vec![1, 2]);
}

/// Claims on the next generations of many values, and claims at generations read, appended at
/// once with others (so written in shared statements): each value's claimant takes the
/// generation after that value's latest, whatever the others'.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_on_many_values_written_together_each_take_their_own_next_generation() {
    let (db, store) = store_with_db(8).await;
    let admin = db.admin_client().await;
    let values: Vec<(Uuid, i64)> = (0..8).map(|i| (Uuid::new_v4(), (i * 3) % 7)).collect();
    for (id, latest) in &values {
        for generation in 1..=*latest {
            admin
                .execute(
                    "INSERT INTO lookup_claims (claim_id, generation, stream_id) \
                     VALUES ($1, $2, $3)",
                    &[id, &generation, &Uuid::new_v4()],
                )
                .await
                .expect("an earlier claim");
        }
    }
    let read: Vec<(Uuid, i64)> = (0..8).map(|i| (Uuid::new_v4(), 1 + i % 2)).collect();
    let claims = values.iter().enumerate().map(|(i, (id, _))| {
        Some(eventstore::Claim::Next {
            id: *id,
            unless_tagged: vec![[0x70 + i as u8; 32]],
        })
    });
    let claims = claims.chain(read.iter().map(|(id, generation)| {
        Some(eventstore::Claim::At {
            id: *id,
            generation: *generation,
        })
    }));
    let appends: Vec<eventstore::AppendRequest> = claims
        .chain(std::iter::repeat_n(None, 16))
        .map(|claim| {
            let mut append = request(
                Uuid::new_v4(),
                ExpectedVersion::NoStream,
                vec![registration()],
            );
            append.claims = claim.into_iter().collect();
            append
        })
        .collect();
    let streams: Vec<Uuid> = appends.iter().map(|append| append.stream_id).collect();
    let answers = futures_util::future::join_all(appends.into_iter().map(|append| {
        let head = store.head_of_new_stream(append.stream_id, None);
        store.append_after(append, head)
    }))
    .await;
    for answer in answers {
        answer.expect("written");
    }
    assert_written_together(&admin, &streams).await;
    let claimed = |id: Uuid| {
        let admin = &admin;
        async move {
            let rows = admin
                .query(
                    "SELECT generation, stream_id FROM lookup_claims WHERE claim_id = $1 \
                     ORDER BY generation DESC LIMIT 1",
                    &[&id],
                )
                .await
                .expect("claims");
            rows.first()
                .map(|row| (row.get::<_, i64>(0), row.get::<_, Uuid>(1)))
        }
    };
    for (i, (id, latest)) in values.iter().enumerate() {
        assert_eq!(
            claimed(*id).await,
            Some((latest + 1, streams[i])),
            "value {i}, claimed before up to {latest}"
        );
    }
    for (i, (id, generation)) in read.iter().enumerate() {
        assert_eq!(claimed(*id).await, Some((*generation, streams[8 + i])));
    }
}

/// A guard (`Claim::Unless`) claims nothing: an append carrying one is written, in a batch or
/// alone, while no stream carries its tags, writing no claim; once one does, it is refused
/// before anything is written, naming the guard's id.
#[tokio::test]
async fn a_guard_refuses_an_append_while_its_tag_is_carried_and_claims_nothing() {
    let (db, store) = store_with_db(8).await;
    let admin = db.admin_client().await;
    let (tag, guard) = ([0x7a; 32], Uuid::new_v4());
    let guarded = |stream: Uuid| {
        let mut append = request(stream, ExpectedVersion::NoStream, vec![registration()]);
        append.claims = vec![eventstore::Claim::Unless {
            id: guard,
            unless_tagged: vec![tag],
        }];
        append
    };
    // Free: written beside others in a batch, and alone; no claim row.
    let (streams, answers) = race_beside_others(&store, guarded).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    store
        .append(guarded(Uuid::new_v4()))
        .await
        .expect("written alone");
    let claims: i64 = testkit::query_value(&admin, "SELECT count(*) FROM lookup_claims", &[]).await;
    assert_eq!(claims, 0);

    // The tag carried (by one of those streams): refused, in a batch and alone.
    let mut tagging = request(streams[0], ExpectedVersion::Exact(1), vec![contact(1)]);
    tagging.lookups = Some(vec![tag]);
    store.append(tagging).await.expect("tagged");
    let late = refused_in_a_batch_and_alone(&store, guarded, guard).await;
    assert_eq!(events_of(&admin, &[late]).await, 0);
}

/// An append making several claims makes all or none: with one of them taken, it is refused
/// naming that one, in a batch and alone, and writes nothing (not even its other claims); with
/// none taken, it makes them all, in a batch beside others and alone.
#[tokio::test]
async fn an_append_makes_all_its_claims_or_none() {
    let (db, store) = store_with_db(8).await;
    let admin = db.admin_client().await;
    let (free, taken) = (Uuid::new_v4(), Uuid::new_v4());
    let claiming = |ids: [Uuid; 2]| {
        move |stream: Uuid| {
            let mut append = request(stream, ExpectedVersion::NoStream, vec![registration()]);
            append.claims = ids
                .iter()
                .map(|id| eventstore::Claim::At {
                    id: *id,
                    generation: 1,
                })
                .collect();
            append
        }
    };
    store
        .append(claiming([taken, Uuid::new_v4()])(Uuid::new_v4()))
        .await
        .expect("the first claimant");
    let late = refused_in_a_batch_and_alone(&store, claiming([free, taken]), taken).await;
    assert_eq!(events_of(&admin, &[late]).await, 0);
    let made: i64 = testkit::query_value(
        &admin,
        "SELECT count(*) FROM lookup_claims WHERE claim_id = $1",
        &[&free],
    )
    .await;
    assert_eq!(made, 0, "the free claim of a refused append is not made");

    // None taken: all made, in a batch (beside others) and alone.
    let pairs: Vec<[Uuid; 2]> = (0..12).map(|_| [Uuid::new_v4(), Uuid::new_v4()]).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (streams, answers) = race_beside_others(&store, |stream| {
        claiming(pairs[next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)])(stream)
    })
    .await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let alone = Uuid::new_v4();
    store
        .append(claiming([free, Uuid::new_v4()])(alone))
        .await
        .expect("written alone");
    let held: i64 = testkit::query_value(
        &admin,
        "SELECT count(*) FROM lookup_claims WHERE stream_id = ANY($1)",
        &[&streams.iter().copied().chain([alone]).collect::<Vec<_>>()],
    )
    .await;
    assert_eq!(held, 26, "two claims each");
}
