//! A runner whose checkpoint was moved under it (a rebuilt caseload switched in while it held
//! an older one in memory) stops at its next batch with `CheckpointMoved`, before writing any
//! row: it must not fail on the rows the switch already holds (a unique violation from its
//! `COPY`), and once it reads its checkpoint again the read model is what a clean rebuild makes.

use std::sync::Arc;
use std::time::Duration;

use app::{CaseService, CommandOptions};
use domain::*;
use eventstore::EventStore;
use projector::{
    CaseloadProjection, LIVE_CASELOAD, ProjectionError, Runner, RunnerSettings, Together,
};
use testkit::TestDb;
use uuid::Uuid;

use crate::support::{metadata, new_client_intake, store_with_db};

const CLIENTS: u128 = 8;

fn settings() -> RunnerSettings {
    RunnerSettings {
        // Every client's intake and acceptance is at least two events: the second batch of
        // four begins a client whose row is copied in.
        batch_size: 4,
        lease_ttl: Duration::from_secs(30),
        poll_interval: Duration::from_millis(50),
    }
}

fn ids() -> Vec<Uuid> {
    (1..=CLIENTS)
        .map(|n| Uuid::from_u128(0xc0_0000 + n))
        .collect()
}

/// Referrals received and accepted for every client of [`ids`].
async fn referrals(store: &EventStore) {
    let cases = CaseService::new(store.clone());
    for id in ids() {
        let client = ClientId(id);
        let referral_id = ReferralId(Uuid::from_u128(id.as_u128() + 0x100));
        for command in [
            new_client_intake(
                client,
                referral_id,
                "Frome",
                ReferralSource::Gp,
                vec![NeedDomain::MentalWellbeing],
            ),
            CaseCommand::AcceptReferral(ReferralAccepted { referral_id }),
        ] {
            cases
                .execute(client, &command, metadata(), CommandOptions::default())
                .await
                .expect("a command");
        }
    }
}

/// Switches the shadow in, then takes the live lease back for `holder` (as a running runner's
/// renewal does between batches), blocking the runner that calls it meanwhile.
fn switch_under(db: &TestDb, holder: Uuid) {
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async {
            let mut client = db.app_client().await;
            let moved = projector::switch_rebuilt_caseload(&mut client, Uuid::new_v4())
                .await
                .expect("the switch");
            assert_eq!(moved, CLIENTS as u64);
            assert!(
                projector::bookkeeping::take_lease(&client, LIVE_CASELOAD, holder, 30.0)
                    .await
                    .expect("the lease"),
                "the switch gave the lease back"
            );
        });
    });
}

/// The live caseload's rows for [`ids`], and its checkpoint's count of events applied.
async fn live_caseload(db: &TestDb) -> (Vec<projector::CaseloadRow>, i64) {
    let reader = db.app_client().await;
    let rows = CaseloadProjection::rows(&reader, &ids())
        .await
        .expect("rows");
    let applied: i64 = testkit::query_value(
        &reader,
        "SELECT events_applied FROM projection_checkpoints WHERE projection = $1",
        &[&LIVE_CASELOAD],
    )
    .await;
    (rows, applied)
}

/// After the refused batch: reads its checkpoint again (nothing is left to apply), then
/// compares the live rows with a clean rebuild's.
async fn equals_a_clean_rebuild(db: &TestDb, runner: &Runner) {
    assert_eq!(
        runner.catch_up().await.expect("the runner reads again"),
        0,
        "the switch had applied everything"
    );
    let total: i64 =
        testkit::query_value(&db.app_client().await, "SELECT count(*) FROM events", &[]).await;
    let (after_switch, applied) = live_caseload(db).await;
    assert_eq!(after_switch.len(), CLIENTS as usize);
    assert_eq!(applied, total, "every event counted once");
    runner.reset().await.expect("reset");
    runner.catch_up().await.expect("a clean rebuild");
    assert_eq!(live_caseload(db).await, (after_switch, total));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_behind_a_switched_caseload_finds_its_checkpoint_moved_before_writing() {
    let (db, store) = store_with_db(6).await;
    referrals(&store).await;
    crate::support::caseload_shadow_built(&store).await;
    let holder = Uuid::new_v4();
    let runner = Runner::new(
        store.clone(),
        Arc::new(CaseloadProjection),
        holder,
        settings(),
    );
    let mut batches = 0;
    let refused = runner
        .catch_up_to(None, |_| {
            batches += 1;
            if batches == 1 {
                switch_under(&db, holder);
            }
        })
        .await
        .expect_err("the batch after the switch is refused");
    assert_eq!(batches, 1);
    assert!(
        matches!(refused, ProjectionError::CheckpointMoved(_)),
        "{refused:?}"
    );
    equals_a_clean_rebuild(&db, &runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_run_together_behind_a_switched_caseload_find_their_checkpoint_moved() {
    together_behind_a_switch(None, 1).await;
}

/// As above, what is held handed after every batch to a write on another connection: the
/// switch lands before, while (waiting for it) or after a write, and that write or the next
/// finds the checkpoint moved before it writes a row (or its lease gone, if it renews it
/// between the switch giving it up and the runner's taking it back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_of_what_was_held_behind_a_switched_caseload_finds_its_checkpoint_moved() {
    together_behind_a_switch(Some((1, usize::MAX)), 2).await;
}

/// Runs the live caseload in a [`Together`] (written as `flush` says, or at the end), switches
/// the shadow in under it after its first batch, and expects it refused within `within` batches
/// (with a lease lost only where a write renews it), the read model then what a clean rebuild
/// makes.
async fn together_behind_a_switch(flush: Option<(i64, usize)>, within: u32) {
    let (db, store) = store_with_db(6).await;
    referrals(&store).await;
    crate::support::caseload_shadow_built(&store).await;
    let holder = Uuid::new_v4();
    let mut together = Together::new(
        store.clone(),
        vec![Arc::new(CaseloadProjection)],
        holder,
        settings(),
    );
    if let Some((events, clients)) = flush {
        together = together.flushing_every(events, clients);
    }
    assert!(together.plan().1, "written on a connection of its own");
    let mut batches = 0;
    let refused = together
        .catch_up_to(None, |_| {
            batches += 1;
            if batches == 1 {
                switch_under(&db, holder);
            }
        })
        .await
        .expect_err("a batch after the switch is refused");
    assert!((1..=within).contains(&batches), "{batches} batches");
    assert!(
        matches!(refused, ProjectionError::CheckpointMoved(_))
            || (flush.is_some() && matches!(refused, ProjectionError::LeaseLost(_))),
        "{refused:?}"
    );
    together.release().await.expect("release");
    let runner = Runner::new(store, Arc::new(CaseloadProjection), holder, settings());
    equals_a_clean_rebuild(&db, &runner).await;
}
