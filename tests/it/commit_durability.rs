//! Projector transactions commit without waiting for the WAL flush (their rows and checkpoint
//! are made again from the log when a crash loses them); nothing else does: the setting is
//! local to the projector's transaction and never reaches the next user of the connection.

use std::sync::{Arc, Mutex};

use app::{CaseService, CommandOptions};
use async_trait::async_trait;
use domain::*;
use projector::rules::Rules;
use projector::{OutcomesProjection, Projection, ProjectionError, Runner, Together};
use uuid::Uuid;

use crate::support::{metadata, new_client_intake, quick_runner, store_with_db};

/// A read model that writes nothing and notes the transaction's `synchronous_commit`.
struct Probe {
    name: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Probe {
    fn new(name: &str) -> (Arc<Self>, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let probe = Probe {
            name: name.to_owned(),
            seen: seen.clone(),
        };
        (Arc::new(probe), seen)
    }
}

async fn synchronous_commit(client: &impl tokio_postgres::GenericClient) -> String {
    client
        .query_one("SELECT current_setting('synchronous_commit')", &[])
        .await
        .expect("the setting")
        .get(0)
}

#[async_trait]
impl Projection for Probe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn apply_decoded(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        _batch: &projector::Batch<'_>,
    ) -> Result<(), ProjectionError> {
        let setting = synchronous_commit(tx).await;
        self.seen.lock().expect("the probe").push(setting);
        Ok(())
    }

    async fn reset(&self, tx: &tokio_postgres::Transaction<'_>) -> Result<(), ProjectionError> {
        let setting = synchronous_commit(tx).await;
        self.seen.lock().expect("the probe").push(setting);
        Ok(())
    }
}

#[tokio::test]
async fn projector_transactions_commit_without_waiting_for_the_flush_and_nothing_else_does() {
    // Three connections (`Together` writes on one while it reads on another), each looked at
    // afterwards: whatever a projector's transaction set would be there for its next user.
    let (db, store) = store_with_db(3).await;
    // Test clusters run with `synchronous_commit = off`; this database waits for the flush, as
    // the service's does (set before the pool opens its first connection).
    db.admin_client()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE {} SET synchronous_commit = on",
            db.name()
        ))
        .await
        .expect("the database's setting");
    let cases = CaseService::new(store.clone());
    for n in 1..=4_u128 {
        let client = ClientId(Uuid::from_u128(0xd0_0000 + n));
        let referral = ReferralId(Uuid::from_u128(0xd1_0000 + n));
        let intake = new_client_intake(
            client,
            referral,
            "Frome",
            ReferralSource::Gp,
            vec![NeedDomain::MentalWellbeing],
        );
        cases
            .execute(client, &intake, metadata(), CommandOptions::default())
            .await
            .expect("a referral");
    }

    // A runner: its reset and every batch.
    let (probe, seen) = Probe::new("probe_runner");
    let runner = Runner::new(store.clone(), probe, Uuid::new_v4(), quick_runner(3));
    runner.reset().await.expect("reset");
    assert_eq!(runner.catch_up().await.expect("catch up"), 8);
    let seen_by_runner = seen.lock().expect("the probe").clone();
    assert_eq!(seen_by_runner, vec!["off"; 4], "reset and three batches");
    runner.release().await.expect("release");

    // Together (both on one connection, the pool being small): its reset and every batch.
    let (first, seen_first) = Probe::new("probe_first");
    let (second, seen_second) = Probe::new("probe_second");
    let together = Together::new(
        store.clone(),
        vec![first as Arc<dyn Projection>, second],
        Uuid::new_v4(),
        quick_runner(3),
    );
    together.reset().await.expect("reset");
    assert_eq!(
        together.catch_up_to(None, |_| {}).await.expect("together"),
        8
    );
    for seen in [seen_first, seen_second] {
        assert_eq!(*seen.lock().expect("the probe"), vec!["off"; 4]);
    }
    together.release().await.expect("release");

    // A report snapshot's build folds through `apply` in a transaction of its own.
    {
        let mut client = store.pool().get().await.expect("a connection");
        let tx = client.transaction().await.expect("a transaction");
        assert_eq!(synchronous_commit(&*tx).await, "on");
        let events = store
            .read_all(eventstore::GlobalPosition::START, 100)
            .await
            .expect("the log");
        let projection = OutcomesProjection::tagged(Rules::load(1).expect("rules v1"), -7);
        projection.apply(&tx, &events, &store).await.expect("apply");
        assert_eq!(synchronous_commit(&*tx).await, "off");
        tx.rollback().await.expect("rollback");
    }

    // Nothing of it stays on a connection: the next append there waits for the flush.
    let pool = store.pool();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(pool.get().await.expect("a connection"));
    }
    for client in &clients {
        assert_eq!(synchronous_commit(&***client).await, "on");
    }
}
