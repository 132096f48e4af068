//! Tamper evidence against the database superuser (issue #19, part 4): the log-wide chains, the
//! keyed checkpoints and the anchor file. Every tampering is done as a superuser would, with the
//! append-only triggers switched off, after a checkpoint was anchored; each test first shows that
//! the per-stream hash chains alone (`eventstore::verify`) do not notice it.

use std::path::PathBuf;

use eventstore::anchor::{AnchorKey, Sealed};
use eventstore::{EventStore, ExpectedVersion, VerifyReport};
use testkit::TestDb;
use uuid::Uuid;

use crate::support::{ORG, append, contact, store_with_db, stream_len};

/// The organisation's anchor key in these tests.
fn key() -> AnchorKey {
    AnchorKey::from_bytes([0xa7; 32])
}

/// Waits until no transaction that may still be running (in any database of the test cluster)
/// lies behind a row of the log or the read audit, so a seal takes every row there is.
async fn wait_settled(client: &tokio_postgres::Client) {
    let settled = async {
        loop {
            let row = client
                .query_one(
                    "SELECT NOT EXISTS (SELECT 1 FROM events \
                       WHERE transaction_id >= pg_snapshot_xmin(pg_current_snapshot())) \
                     AND NOT EXISTS (SELECT 1 FROM record_reads \
                       WHERE transaction_id >= pg_snapshot_xmin(pg_current_snapshot()))",
                    &[],
                )
                .await
                .expect("settled?");
            if row.get::<_, bool>(0) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), settled)
        .await
        .expect("the log settles");
}

/// A file name for an anchor file of a test's own.
fn new_anchor_file() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("anchors-{}.jsonl", Uuid::new_v4().simple()))
}

/// Seals what there is and anchors it in `anchor_file`.
async fn seal(app: &tokio_postgres::Client, anchor_file: &std::path::Path) -> Sealed {
    casebook::sealer::seal_and_anchor(app, &key(), Some(anchor_file))
        .await
        .expect("seal")
}

/// `casebook verify --anchor FILE` as the superuser.
async fn verify_against(
    admin: &tokio_postgres::Client,
    anchor_file: &std::path::Path,
) -> casebook::sealer::Verification {
    casebook::sealer::verify(admin, Some(&key()), &[anchor_file.to_path_buf()])
        .await
        .expect("verify")
}

/// A log with three streams (12, 3 and 2 events, interleaved) and three audited reads, sealed
/// once and anchored in a file of its own.
struct Sealed3 {
    db: TestDb,
    store: EventStore,
    long: Uuid,
    short: Uuid,
    anchor_file: PathBuf,
}

async fn sealed_log() -> Sealed3 {
    let (db, store) = store_with_db(4).await;
    let long = Uuid::new_v4();
    let short = Uuid::new_v4();
    let other = Uuid::new_v4();
    for (stream, n) in [(long, 6), (short, 3), (other, 2), (long, 6)] {
        let expected = match stream_len(&store, stream).await {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v as i64),
        };
        append(&store, stream, expected, (1..=n).map(contact).collect()).await;
    }
    let app = db.app_client().await;
    for view in ["record", "journey", "record"] {
        app.execute(
            "INSERT INTO record_reads (organisation_id, client_id, staff_id, role, view, \
             purpose_code, request_id) VALUES ($1, $2, $3, 'auditor', $4, 'audit', $5)",
            &[&ORG, &long, &Uuid::new_v4(), &view, &Uuid::new_v4()],
        )
        .await
        .expect("a read");
    }
    let anchor_file = new_anchor_file();
    wait_settled(&app).await;
    match seal(&app, &anchor_file).await {
        Sealed::New(checkpoint) => {
            assert_eq!(
                (checkpoint.seq, checkpoint.events, checkpoint.reads),
                (1, 17, 3)
            );
        }
        unchanged => panic!("nothing sealed: {unchanged:?}"),
    }
    Sealed3 {
        db,
        store,
        long,
        short,
        anchor_file,
    }
}

impl Sealed3 {
    /// Runs SQL as the superuser with the append-only triggers off.
    async fn tamper(&self, sql: &str) -> tokio_postgres::Client {
        let admin = self.db.admin_client().await;
        admin
            .batch_execute(&format!("SET session_replication_role = replica; {sql}"))
            .await
            .expect("tamper as the superuser");
        admin
    }

    /// What the per-stream hash chains alone say.
    async fn old_verify(&self) -> VerifyReport {
        let admin = self.db.admin_client().await;
        eventstore::verify(&admin).await.expect("verify")
    }

    /// `casebook verify --anchor FILE`, as a list of lines; with its verdict.
    async fn verify(&self) -> casebook::sealer::Verification {
        verify_against(&self.db.admin_client().await, &self.anchor_file).await
    }

    /// Asserts that verify fails and one of its lines contains `needle`.
    async fn assert_caught(&self, needle: &str) {
        let verification = self.verify().await;
        let text = verification.lines.join("\n");
        assert!(!verification.ok, "tampering went unnoticed:\n{text}");
        assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
    }

    /// Tampers with `sql`, then asserts that the per-stream chains alone do not notice it and
    /// that verify against the anchors catches it with a line containing `needle`.
    async fn assert_only_the_anchors_catch(&self, sql: &str, needle: &str) {
        self.tamper(sql).await;
        self.assert_old_verify_passes().await;
        self.assert_caught(needle).await;
    }

    /// Appends `contact(n)` to the short stream as its `n`th event.
    async fn append_to_short(&self, n: i64) {
        append(
            &self.store,
            self.short,
            ExpectedVersion::Exact(n - 1),
            vec![contact(n)],
        )
        .await;
    }

    async fn assert_old_verify_passes(&self) {
        assert!(
            matches!(self.old_verify().await, VerifyReport::Ok { .. }),
            "the per-stream chains alone notice this one"
        );
    }
}

impl Drop for Sealed3 {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.anchor_file);
    }
}

#[tokio::test]
async fn an_untampered_log_and_read_audit_verify_clean_against_their_anchors() {
    let log = sealed_log().await;
    // More events and reads, and a second checkpoint: both anchors hold at their own counts.
    log.append_to_short(4).await;
    let app = log.db.app_client().await;
    wait_settled(&app).await;
    let sealed = seal(&app, &log.anchor_file).await;
    assert!(matches!(sealed, Sealed::New(ref c) if c.seq == 2 && c.events == 18));
    // Nothing new: no checkpoint, and the file is not written twice.
    let again = seal(&app, &log.anchor_file).await;
    assert!(matches!(again, Sealed::Unchanged(Some(ref c)) if c.seq == 2));
    let anchors = casebook::sealer::read_anchors(&log.anchor_file).expect("anchors");
    assert_eq!(anchors.len(), 2);
    // One more event after the last checkpoint rests on the per-stream chain alone.
    log.append_to_short(5).await;

    let verification = log.verify().await;
    assert!(verification.ok, "{:?}", verification.lines);
    assert_eq!(
        verification.lines[1],
        format!(
            "ok: 19 events and 3 reads, 2 checkpoints and 2 anchors under anchor key {} agree; \
             18 events sealed (1 after the last checkpoint rest on the hash chains alone)",
            key().id()
        )
    );
}

#[tokio::test]
async fn deleting_a_streams_last_event_is_caught() {
    let log = sealed_log().await;
    log.assert_only_the_anchors_catch(
        &format!(
            "DELETE FROM events WHERE stream_id = '{}' AND stream_version = 12",
            log.long
        ),
        "sealed 17 events, but the log holds only 16: events were deleted",
    )
    .await;
}

#[tokio::test]
async fn deleting_a_streams_last_ten_events_is_caught() {
    let log = sealed_log().await;
    log.assert_only_the_anchors_catch(
        &format!(
            "DELETE FROM events WHERE stream_id = '{}' AND stream_version > 2",
            log.long
        ),
        "sealed 17 events, but the log holds only 7: events were deleted",
    )
    .await;
}

#[tokio::test]
async fn deleting_a_whole_stream_is_caught() {
    let log = sealed_log().await;
    log.assert_only_the_anchors_catch(
        &format!("DELETE FROM events WHERE stream_id = '{}'", log.short),
        "sealed 17 events, but the log holds only 14: events were deleted",
    )
    .await;
}

#[tokio::test]
async fn editing_an_event_and_rehashing_the_rest_of_its_stream_is_caught() {
    let log = sealed_log().await;
    let admin = log
        .tamper(&format!(
            "UPDATE events SET payload = jsonb_set(payload, '{{minutes}}', '90') \
             WHERE stream_id = '{}' AND stream_version = 5",
            log.long
        ))
        .await;
    // The edit alone breaks the stream's chain ...
    assert!(matches!(
        log.old_verify().await,
        VerifyReport::Broken {
            stream_version: 5,
            ..
        }
    ));
    // ... but a plain hash can be recomputed by whoever can write the table.
    eventstore::testing::forge_stream_hashes(&admin, log.long)
        .await
        .expect("re-hash the stream");
    log.assert_old_verify_passes().await;
    log.assert_caught("the event log differs from the database's checkpoint 1")
        .await;
}

#[tokio::test]
async fn renumbering_positions_after_a_deletion_is_caught() {
    let log = sealed_log().await;
    // The short stream's last event, then every later position moved down by one, so that the
    // positions run without the gap a deletion leaves.
    log.tamper(&format!(
        "ALTER TABLE events ALTER COLUMN position SET GENERATED BY DEFAULT; \
         CREATE TEMP TABLE gone AS SELECT position FROM events \
           WHERE stream_id = '{short}' AND stream_version = 3; \
         DELETE FROM events WHERE position = (SELECT position FROM gone); \
         UPDATE events SET position = -position WHERE position > (SELECT position FROM gone); \
         UPDATE events SET position = -position - 1 WHERE position < 0; \
         ALTER TABLE events ALTER COLUMN position SET GENERATED ALWAYS;",
        short = log.short
    ))
    .await;
    let admin = log.db.admin_client().await;
    let positions: Vec<i64> =
        testkit::query_column(&admin, "SELECT position FROM events ORDER BY position", &[]).await;
    assert_eq!(
        positions,
        (positions[0]..positions[0] + 16).collect::<Vec<_>>(),
        "no gap left"
    );
    log.assert_old_verify_passes().await;
    log.assert_caught("sealed 17 events, but the log holds only 16: events were deleted")
        .await;
}

#[tokio::test]
async fn changing_an_events_transaction_id_is_caught() {
    let log = sealed_log().await;
    log.assert_only_the_anchors_catch(
        &format!(
            "UPDATE events SET transaction_id = (transaction_id::text::bigint - 1)::text::xid8 \
             WHERE stream_id = '{}' AND stream_version = 1",
            log.short
        ),
        "the event log differs from the database's checkpoint 1",
    )
    .await;
}

#[tokio::test]
async fn changing_an_events_log_generation_is_caught() {
    let log = sealed_log().await;
    log.assert_only_the_anchors_catch(
        &format!(
            "UPDATE events SET log_generation = 0 WHERE stream_id = '{}' AND stream_version = 12",
            log.long
        ),
        "the event log differs from the database's checkpoint 1",
    )
    .await;
}

#[tokio::test]
async fn deleting_or_editing_read_audit_rows_is_caught() {
    let log = sealed_log().await;
    log.assert_only_the_anchors_catch(
        "DELETE FROM record_reads WHERE read_id = (SELECT max(read_id) FROM record_reads)",
        "sealed 3 reads, but the read audit holds only 2: reads were deleted",
    )
    .await;

    let log = sealed_log().await;
    log.assert_only_the_anchors_catch(
        "UPDATE record_reads SET role = 'link_worker' WHERE view = 'journey'",
        "the read audit differs from the database's checkpoint 1",
    )
    .await;
}

#[tokio::test]
async fn rewriting_the_databases_checkpoints_too_is_caught_by_their_mac_and_the_anchor_file() {
    // The superuser deletes an event and re-seals the log with a key of their own.
    let log = sealed_log().await;
    let admin = log
        .tamper(&format!(
            "DELETE FROM events WHERE stream_id = '{}' AND stream_version = 12; \
             DELETE FROM log_checkpoints;",
            log.long
        ))
        .await;
    let forged = AnchorKey::from_bytes([0x66; 32]);
    assert!(matches!(
        eventstore::anchor::seal(&admin, &forged)
            .await
            .expect("seal"),
        Sealed::New(_)
    ));
    log.assert_old_verify_passes().await;
    log.assert_caught(&format!(
        "the database's checkpoint 1 was signed by anchor key {}, not the configured key",
        forged.id()
    ))
    .await;
    log.assert_caught("the database's checkpoint 1 differs from anchor 1")
        .await;
    // Even the database's own checkpoints, without the anchor file, give it away.
    let verification = casebook::sealer::verify(&admin, Some(&key()), &[])
        .await
        .expect("verify");
    assert!(!verification.ok, "{:?}", verification.lines);
    // And the service's sealer refuses to build on a checkpoint it did not sign.
    let app = log.db.app_client().await;
    let refused = eventstore::anchor::seal(&app, &key()).await;
    assert!(
        matches!(refused, Err(eventstore::StoreError::Checkpoint(_))),
        "{refused:?}"
    );

    // A checkpoint row rewritten in place (a new head, the old MAC) does not verify.
    let log = sealed_log().await;
    log.tamper(&format!(
        "DELETE FROM events WHERE stream_id = '{}' AND stream_version = 12; \
         UPDATE log_checkpoints SET events = events - 1;",
        log.long
    ))
    .await;
    log.assert_caught("the database's checkpoint 1 does not verify under the anchor key")
        .await;

    // Deleting the checkpoints with the events leaves the database nothing to check against;
    // the anchor file still has them.
    let log = sealed_log().await;
    let admin = log
        .tamper(&format!(
            "DELETE FROM events WHERE stream_id = '{}'; DELETE FROM log_checkpoints;",
            log.short
        ))
        .await;
    let without_file = casebook::sealer::verify(&admin, Some(&key()), &[])
        .await
        .expect("verify");
    assert!(
        without_file.ok,
        "the database alone has nothing left: {:?}",
        without_file.lines
    );
    log.assert_caught("the database holds no checkpoint 1 (anchor 1)")
        .await;
    log.assert_caught("anchor 1 (checkpoint 1) sealed 17 events, but the log holds only 14")
        .await;

    // An edited anchor file does not verify either.
    let text = std::fs::read_to_string(&log.anchor_file).expect("anchor file");
    std::fs::write(
        &log.anchor_file,
        text.replace("\"events\":17", "\"events\":16"),
    )
    .expect("edit the anchor file");
    log.assert_caught("anchor 1 (checkpoint 1) does not verify under the anchor key")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sealing_while_appends_continue_covers_every_event_exactly_once() {
    const WRITERS: usize = 6;
    const APPENDS: i64 = 25;
    let (db, store) = store_with_db(WRITERS + 2).await;
    let anchor_file = new_anchor_file();
    // Each writer appends half its events, then waits until a seal has made a new checkpoint,
    // so at least one seal always runs while appends are still to come (on a fast machine the
    // writers could otherwise finish before the first seal).
    let (sealed_once, sealed) = tokio::sync::watch::channel(false);
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let store = store.clone();
        let mut sealed = sealed.clone();
        writers.push(tokio::spawn(async move {
            let stream = Uuid::new_v4();
            for n in 0..APPENDS {
                if n == APPENDS / 2 {
                    sealed.wait_for(|sealed| *sealed).await.expect("sealer");
                }
                let expected = if n == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(n)
                };
                append(&store, stream, expected, vec![contact(n)]).await;
            }
        }));
    }
    let app = db.app_client().await;
    let mut new_checkpoints = 0;
    let mut first_sealed = None;
    while writers.iter().any(|writer| !writer.is_finished()) {
        if let Sealed::New(checkpoint) = seal(&app, &anchor_file).await {
            new_checkpoints += 1;
            first_sealed.get_or_insert(checkpoint.events);
            sealed_once.send_replace(true);
        }
        tokio::task::yield_now().await;
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    wait_settled(&app).await;
    let last = match seal(&app, &anchor_file).await {
        Sealed::New(checkpoint) | Sealed::Unchanged(Some(checkpoint)) => checkpoint,
        Sealed::Unchanged(None) => panic!("nothing sealed"),
    };
    let total = WRITERS as i64 * APPENDS;
    assert_eq!(last.events, total, "the last checkpoint seals every event");
    assert!(new_checkpoints >= 1);
    let first_sealed = first_sealed.expect("a seal during the appends");
    assert!(
        first_sealed < total,
        "the first checkpoint ({first_sealed} events) was sealed while appends continued"
    );
    // Its head is the chain over every event of the log once, in the log's order.
    let admin = db.admin_client().await;
    let mut head = eventstore::anchor::GENESIS_HEAD;
    for row in admin
        .query(
            "SELECT log_generation, transaction_id::text::bigint, position, stream_id, \
             stream_version, hash FROM events ORDER BY log_generation, transaction_id, position",
            &[],
        )
        .await
        .expect("the log")
    {
        let place = eventstore::GlobalPosition {
            generation: row.get(0),
            transaction_id: row.get(1),
            position: row.get(2),
        };
        let hash: Vec<u8> = row.get(5);
        head = eventstore::anchor::event_link(&head, place, row.get(3), row.get(4), &hash);
    }
    assert_eq!(last.event_head, head);
    // Every checkpoint's head is the recomputed head at its count: each sealed every event
    // before it once, in the log's order, and none twice.
    let verification = verify_against(&admin, &anchor_file).await;
    assert!(verification.ok, "{:?}", verification.lines);
    let anchors = casebook::sealer::read_anchors(&anchor_file).expect("anchors");
    assert!(
        anchors
            .windows(2)
            .all(|pair| pair[0].events <= pair[1].events
                && pair[1].seq == pair[0].seq + 1
                && pair[1].prev_mac == pair[0].mac),
        "{anchors:?}"
    );
    let _ = std::fs::remove_file(&anchor_file);
}

/// The service's background sealer seals what is appended and writes it to the anchor file,
/// and seals once more on the way out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_sealer_anchors_new_events_and_seals_on_the_way_out() {
    let (db, store) = store_with_db(2).await;
    let anchor_file = new_anchor_file();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sealer = casebook::sealer::spawn_sealer(
        db.app_config(),
        key(),
        Some(anchor_file.clone()),
        None,
        casebook::settings::SealSettings {
            seal_every_seconds: 3600,
            seal_every_events: 3,
        },
        stopped,
    );
    let stream = Uuid::new_v4();
    append(
        &store,
        stream,
        ExpectedVersion::NoStream,
        (1..=3).map(contact).collect(),
    )
    .await;
    // Three events waiting make it seal (it looks every few seconds).
    let sealed_three = async {
        loop {
            if let Ok(anchors) = casebook::sealer::read_anchors(&anchor_file)
                && anchors.last().is_some_and(|last| last.events == 3)
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), sealed_three)
        .await
        .expect("the sealer anchors three events");
    // One more is not enough to seal before the hour is up; stopping seals it.
    append(&store, stream, ExpectedVersion::Exact(3), vec![contact(4)]).await;
    let app = db.app_client().await;
    wait_settled(&app).await;
    let _ = stop.send(true);
    sealer.await.expect("the sealer stops");
    let anchors = casebook::sealer::read_anchors(&anchor_file).expect("anchors");
    assert_eq!(anchors.last().map(|last| last.events), Some(4));
    let admin = db.admin_client().await;
    let verification = verify_against(&admin, &anchor_file).await;
    assert!(verification.ok, "{:?}", verification.lines);
    let _ = std::fs::remove_file(&anchor_file);
}

/// A write to the anchor file cut short (a full disk, a crash) leaves an unfinished line: it is
/// left out when the file is read, cut off before the next checkpoint is appended, and the
/// file verifies as before.
#[tokio::test]
async fn an_unfinished_last_line_of_the_anchor_file_does_not_break_sealing_or_verifying() {
    let log = sealed_log().await;
    let whole = std::fs::read_to_string(&log.anchor_file).expect("the anchor file");
    let torn = &whole[..whole.len() / 2];
    std::fs::write(&log.anchor_file, format!("{whole}{torn}")).expect("a torn write");
    assert_eq!(
        casebook::sealer::read_anchors(&log.anchor_file)
            .expect("the finished lines read")
            .len(),
        1
    );
    let verification = log.verify().await;
    assert!(verification.ok, "{:?}", verification.lines);

    log.append_to_short(4).await;
    let app = log.db.app_client().await;
    wait_settled(&app).await;
    let sealed = seal(&app, &log.anchor_file).await;
    assert!(matches!(sealed, Sealed::New(ref c) if c.seq == 2));
    let text = std::fs::read_to_string(&log.anchor_file).expect("the anchor file");
    assert_eq!(text.lines().count(), 2, "the fragment was cut off: {text}");
    assert_eq!(
        casebook::sealer::read_anchors(&log.anchor_file)
            .expect("anchors")
            .len(),
        2
    );
    let verification = log.verify().await;
    assert!(verification.ok, "{:?}", verification.lines);
}
