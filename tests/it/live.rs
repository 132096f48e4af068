//! Projections following the log together (`projector::live`): one read and one transaction
//! per batch for all of them, each event applied once to each; one that fails or loses its
//! lease leaves the group and goes on alone while the others keep up.

use std::sync::Arc;
use std::time::Duration;

use app::{CaseService, CommandOptions};
use async_trait::async_trait;
use domain::*;
use eventstore::EventStore;
use projector::{CaseloadProjection, Projection, ProjectionError};
use uuid::Uuid;

use crate::support::{metadata, new_client_intake, quick_runner, store_with_db};

/// A read model that notes each event it is given, one row per application, so that an event
/// applied twice shows as a repeated id; it fails, as a projection's own bug would, every batch
/// holding an event of `refuse`'s stream.
struct Ledger {
    name: String,
    refuse: Option<(Uuid, Fail)>,
}

/// How a ledger fails.
#[derive(Clone, Copy)]
enum Fail {
    /// A statement the database refuses (42P01).
    Refused,
    /// A statement cancelled by its timeout (57014, a class the group must not retry for all).
    TimedOut,
    /// A panic in the fold.
    Panics,
}

#[async_trait]
impl Projection for Ledger {
    fn name(&self) -> &str {
        &self.name
    }

    async fn apply_decoded(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &projector::Batch<'_>,
    ) -> Result<(), ProjectionError> {
        for event in batch.events {
            match self.refuse {
                Some((stream, Fail::Refused)) if stream == event.stream_id => {
                    tx.execute("INSERT INTO no_such_table VALUES (1)", &[])
                        .await?;
                }
                Some((stream, Fail::TimedOut)) if stream == event.stream_id => {
                    tx.batch_execute("SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)")
                        .await?;
                }
                Some((stream, Fail::Panics)) if stream == event.stream_id => {
                    panic!("{} cannot fold this person", self.name);
                }
                _ => {}
            }
            tx.execute(
                "INSERT INTO test_ledger (projection, event_id) VALUES ($1, $2)",
                &[&self.name, &event.event_id],
            )
            .await?;
        }
        Ok(())
    }

    async fn reset(&self, tx: &tokio_postgres::Transaction<'_>) -> Result<(), ProjectionError> {
        tx.execute(
            "DELETE FROM test_ledger WHERE projection = $1",
            &[&self.name],
        )
        .await?;
        Ok(())
    }
}

fn ledger(name: &str, refuse: Option<(Uuid, Fail)>) -> Arc<dyn Projection> {
    Arc::new(Ledger {
        name: name.to_owned(),
        refuse,
    })
}

async fn with_ledger_table(db: &testkit::TestDb) {
    let role = db.app_config().get_user().expect("the role").to_owned();
    db.admin_client()
        .await
        .batch_execute(&format!(
            "CREATE TABLE test_ledger (projection text NOT NULL, event_id uuid NOT NULL); \
             GRANT SELECT, INSERT, DELETE ON test_ledger TO \"{role}\""
        ))
        .await
        .expect("the ledger table");
}

/// Registers a person: two events on their stream.
async fn refer(cases: &CaseService, n: u128) -> ClientId {
    let client = ClientId(Uuid::from_u128(0x11_0000 + n));
    cases
        .execute(
            client,
            &new_client_intake(
                client,
                ReferralId(Uuid::from_u128(0x12_0000 + n)),
                "Frome",
                ReferralSource::Gp,
                vec![NeedDomain::LonelinessIsolation],
            ),
            metadata(),
            CommandOptions::default(),
        )
        .await
        .expect("referral");
    client
}

/// Per projection: events applied and distinct events applied.
async fn applied(client: &tokio_postgres::Client, name: &str) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT event_id) FROM test_ledger WHERE projection = $1",
            &[&name],
        )
        .await
        .expect("the ledger");
    (row.get(0), row.get(1))
}

async fn events_in_log(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .expect("the log")
        .get(0)
}

/// Waits until `done` holds, or fails naming `what`.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn listening_store(db: &testkit::TestDb, store: EventStore) -> EventStore {
    let listener = eventstore::Listener::start(db.app_config());
    let store = store.with_listener(&listener);
    // The listener lives as long as the test's runtime.
    std::mem::forget(listener);
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_follow_together_each_event_once_and_those_that_fail_go_on_alone() {
    let (db, store) = store_with_db(8).await;
    with_ledger_table(&db).await;
    let store = listening_store(&db, store).await;
    let cases = CaseService::new(store.clone());
    let reader = db.app_client().await;
    let poisoned = Uuid::from_u128(0x11_0000 + 3);
    let projections = vec![
        Arc::new(CaseloadProjection) as Arc<dyn Projection>,
        ledger("ledger_a", None),
        ledger("ledger_b", None),
        ledger("ledger_poisoned", Some((poisoned, Fail::Refused))),
        ledger("ledger_timed_out", Some((poisoned, Fail::TimedOut))),
        ledger("ledger_panics", Some((poisoned, Fail::Panics))),
    ];
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let holder = Uuid::new_v4();
    let following = projector::live::follow(&store, projections, holder, quick_runner(3), &stopped)
        .await
        .expect("following");
    // All four stand at the start of the log: they follow it together.
    assert_eq!(
        following.together,
        [
            "caseload_v1",
            "ledger_a",
            "ledger_b",
            "ledger_poisoned",
            "ledger_timed_out",
            "ledger_panics"
        ]
    );
    assert!(following.alone.is_empty());

    for n in 1..=6 {
        refer(&cases, n).await;
    }
    let total = events_in_log(&reader).await;
    assert_eq!(total, 12);
    // The others keep up although one of them refuses a batch...
    for name in ["ledger_a", "ledger_b"] {
        eventually(&format!("{name} applied every event"), || async {
            applied(&reader, name).await == (total, total)
        })
        .await;
    }
    eventually("the caseload shows every person", || async {
        reader
            .query_one("SELECT count(*) FROM caseload", &[])
            .await
            .expect("caseload")
            .get::<_, i64>(0)
            == 6
    })
    .await;
    // ... which went on alone and stay before the person they fail on, having applied what
    // came before them once.
    let before_poison: i64 = reader
        .query_one(
            "SELECT count(*) FROM events WHERE (log_generation, transaction_id, position) < \
             (SELECT log_generation, transaction_id, position FROM events WHERE stream_id = $1 \
              ORDER BY log_generation, transaction_id, position LIMIT 1)",
            &[&poisoned],
        )
        .await
        .expect("the events before")
        .get(0);
    for name in ["ledger_poisoned", "ledger_timed_out", "ledger_panics"] {
        let (count, distinct) = applied(&reader, name).await;
        assert_eq!(count, distinct, "{name}");
        assert!(count <= before_poison, "{name}: {count} > {before_poison}");
    }

    // Later events still reach the group.
    refer(&cases, 7).await;
    eventually("ledger_a applied the later referral", || async {
        applied(&reader, "ledger_a").await == (total + 2, total + 2)
    })
    .await;

    stop.send(true).expect("stop");
    for task in following.tasks {
        task.await.expect("a projection task");
    }
    let leases: i64 = reader
        .query_one(
            "SELECT count(*) FROM projection_leases WHERE holder = $1",
            &[&holder],
        )
        .await
        .expect("leases")
        .get(0);
    assert_eq!(leases, 0, "every lease is given up at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_lease_is_taken_waits_alone_and_a_projection_behind_follows_alone() {
    let (db, store) = store_with_db(8).await;
    with_ledger_table(&db).await;
    let store = listening_store(&db, store).await;
    let cases = CaseService::new(store.clone());
    let reader = db.app_client().await;
    refer(&cases, 1).await;
    // ledger_a and ledger_b have applied the log so far; ledger_late has not.
    for name in ["ledger_a", "ledger_b"] {
        crate::support::catch_up(
            &store,
            Ledger {
                name: name.to_owned(),
                refuse: None,
            },
        )
        .await;
    }
    // Caught up by a runner that has stopped, whose leases are given back.
    reader
        .execute("DELETE FROM projection_leases", &[])
        .await
        .expect("the leases given back");
    let projections = vec![
        ledger("ledger_a", None),
        ledger("ledger_b", None),
        ledger("ledger_late", None),
    ];
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let holder = Uuid::new_v4();
    let following = projector::live::follow(&store, projections, holder, quick_runner(3), &stopped)
        .await
        .expect("following");
    assert_eq!(following.together, ["ledger_a", "ledger_b"]);
    assert_eq!(following.alone, ["ledger_late"]);

    // Another process (a rebuild, say) takes ledger_b's lease.
    let other = Uuid::new_v4();
    reader
        .execute(
            "UPDATE projection_leases SET holder = $2, expires_at = now() + interval '1 hour' \
             WHERE projection = $1",
            &[&"ledger_b", &other],
        )
        .await
        .expect("the lease taken");
    refer(&cases, 2).await;
    let total = events_in_log(&reader).await;
    for name in ["ledger_a", "ledger_late"] {
        eventually(&format!("{name} applied every event once"), || async {
            applied(&reader, name).await == (total, total)
        })
        .await;
    }
    // ledger_b waits as a standby while the other holds it, then catches up alone.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(applied(&reader, "ledger_b").await, (2, 2));
    reader
        .execute(
            "DELETE FROM projection_leases WHERE projection = 'ledger_b'",
            &[],
        )
        .await
        .expect("the lease given back");
    eventually("ledger_b caught up once its lease was free", || async {
        applied(&reader, "ledger_b").await == (total, total)
    })
    .await;

    stop.send(true).expect("stop");
    for task in following.tasks {
        task.await.expect("a projection task");
    }
}
