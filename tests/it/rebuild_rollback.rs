//! A rebuild's batch is one transaction: one whose copies fail halfway (a figures table refuses
//! a row after the states were copied) leaves nothing of itself, no row in any table and its
//! checkpoint where it was, and the rebuild run again from there writes everything.

use app::CaseService;
use casebook::rebuild::{RebuildOptions, RebuildTarget, rebuild};
use domain::*;
use eventstore::GlobalPosition;
use projector::Projection;
use uuid::Uuid;

use crate::support::{
    ORG, OUTCOME_TABLES, execute_all, opened_case, outcomes_under, store_with_db, table_rows,
    wemwbs, wemwbs_answers,
};

const RULES: i32 = 3;

#[tokio::test]
async fn a_rebuild_batch_whose_copy_fails_halfway_leaves_no_rows_and_no_checkpoint_move() {
    let (db, store) = store_with_db(4).await;
    let cases = CaseService::new(store.clone());
    let worker = (
        StaffId(Uuid::from_u128(0x5001)),
        TeamId(Uuid::from_u128(0x7ea)),
    );
    let mut referrals = Vec::new();
    for n in 1..=3u128 {
        let client = ClientId(Uuid::from_u128(0xd0_0000 + n));
        let referral = ReferralId(Uuid::from_u128(0xd1_0000 + n));
        let mut commands = opened_case(
            client,
            referral,
            ReferralSource::Gp,
            vec![NeedDomain::LonelinessIsolation],
            worker,
        );
        let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).expect("a day");
        commands.push(wemwbs(Timepoint::Baseline, wemwbs_answers(40), day));
        execute_all(&cases, client, commands).await;
        referrals.push((client, referral));
    }
    // The second person's referral already has a row in `report_referrals`: the batch's copy of
    // that table, which comes after the copy of every state into `outcome_state`, fails on it.
    let owner = db.admin_client().await;
    let (client, referral) = referrals[1];
    owner
        .execute(
            "INSERT INTO report_referrals (rules_version, referral_id, client_id, organisation_id, \
             source, reasons, received_on) VALUES ($1, $2, $3, $4, 'planted', '[]', '2026-03-01')",
            &[&RULES, &referral.0, &client.0, &ORG],
        )
        .await
        .expect("a planted row");
    let before = table_rows(&owner, OUTCOME_TABLES).await;
    let name = outcomes_under(RULES).name().to_owned();
    let options = RebuildOptions {
        switch: false,
        ..RebuildOptions::default()
    };

    let failed = rebuild(&store, RebuildTarget::Outcomes { rules: RULES }, &options)
        .await
        .expect_err("the batch's copy fails");
    assert!(
        format!("{failed:#}").contains("duplicate key"),
        "{failed:#}"
    );
    // Nothing of the batch is left: not the states copied before the failure, nor any figure.
    assert_eq!(table_rows(&owner, OUTCOME_TABLES).await, before);
    let states: i64 = testkit::query_value(&owner, "SELECT count(*) FROM outcome_state", &[]).await;
    assert_eq!(states, 0);
    let (at, applied) = projector::bookkeeping::checkpoint(&owner, &name)
        .await
        .expect("the checkpoint");
    assert_eq!((at, applied), (GlobalPosition::START, 0));

    // Without the planted row, the rebuild resumes from that checkpoint and writes every table.
    owner
        .execute("DELETE FROM report_referrals WHERE source = 'planted'", &[])
        .await
        .expect("the planted row removed");
    let done = rebuild(&store, RebuildTarget::Outcomes { rules: RULES }, &options)
        .await
        .expect("the rebuild");
    let events: i64 = testkit::query_value(&owner, "SELECT count(*) FROM events", &[]).await;
    assert_eq!(done.events, events as u64);
    let states: i64 = testkit::query_value(&owner, "SELECT count(*) FROM outcome_state", &[]).await;
    assert_eq!(states, 3);
    let rows: i64 = testkit::query_value(
        &owner,
        "SELECT count(*) FROM report_referrals WHERE rules_version = $1",
        &[&RULES],
    )
    .await;
    assert_eq!(rows, 3);
}
