//! Upgrades of a database written under an older schema: what was stored before a migration
//! still reads after it, as the migration says.

use app::access::Role;
use app::caseload::CaseloadFlag;
use casebook::rebuild::{RebuildOptions, RebuildTarget, rebuild};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use domain::*;
use eventstore::{EventStore, Upcasters};
use testkit::TestDb;
use uuid::Uuid;

use crate::support::{
    ORG, at, auditor, metadata, new_client_intake, opened_case, principal, protected, wemwbs,
};

fn noon(year: i32, month: u32, day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, 12, 0, 0)
        .single()
        .expect("a valid time")
}

/// An intake with no NHS number: a registration's NHS number writes its lookup tag, whose
/// tables (V35) an older schema lacks.
fn without_nhs_number(mut command: CaseCommand) -> CaseCommand {
    if let CaseCommand::Intake {
        client: Some(registered),
        ..
    } = &mut command
    {
        registered.personal.nhs_number = None;
    }
    command
}

/// V9 added `baseline_dates` to the caseload additively: a row written before it holds none,
/// and its follow-up falls due counted from acceptance, until `casebook rebuild caseload`
/// replays the log and the follow-up counts from the baseline (the caseload rules: 84 days).
#[tokio::test]
async fn a_caseload_row_written_before_v9_reads_after_it_and_counts_follow_up_from_the_baseline_once_rebuilt()
 {
    testkit::init_tracing();
    let db = TestDb::empty().await;
    let mut owner = db.admin_client().await;
    let report = db::migrate_to(&mut owner, 8).await.expect("migrate to V8");
    assert_eq!(report.version, 8);
    assert_eq!(report.applied.len(), 8, "{:?}", report.applied);

    // Under V8, the service records a case: referred on 1 March, accepted on 2 March, assigned,
    // and a WEMWBS baseline taken on 1 May.
    let store = protected(EventStore::new(db.app_pool(2), Upcasters::new()));
    let worker = StaffId(Uuid::from_u128(0x5001));
    let team = TeamId(Uuid::from_u128(0x7ea));
    let client = ClientId(Uuid::new_v4());
    let referral_id = ReferralId(Uuid::new_v4());
    let baseline_on = NaiveDate::from_ymd_opt(2026, 5, 1).expect("a date");
    let clock = app::Clock::fixed(noon(2026, 6, 1));
    let cases = app::CaseService::with_clock(store.clone(), clock.clone());
    let mut commands = opened_case(
        client,
        referral_id,
        ReferralSource::Gp,
        vec![NeedDomain::LonelinessIsolation],
        (worker, team),
    );
    commands.push(wemwbs(Timepoint::Baseline, vec![3; 14], baseline_on));
    // No NHS number: its lookup tag (V35) has no table under V8.
    commands[0] = without_nhs_number(commands[0].clone());
    crate::support::register_organisation(&owner, crate::support::ORG).await;
    crate::support::hire_named(&store, crate::support::ORG, &commands).await;
    let mut version = 0;
    for command in &commands {
        version = cases
            .execute(client, command, metadata(), Default::default())
            .await
            .expect("a command under V8")
            .stream_version;
    }
    // ... and the caseload projection of then writes its row, with no baseline dates.
    owner
        .execute(
            "INSERT INTO caseload (client_id, organisation_id, status, link_worker_id, team_id, area, \
             referred_on, referral_source, accepted_at, baselines, stream_version) \
             VALUES ($1, $2, 'open', $3, $4, 'Frome', $5, 'gp', $6, ARRAY['wemwbs'], $7)",
            &[
                &client.0,
                &ORG,
                &worker.0,
                &team.0,
                &NaiveDate::from_ymd_opt(2026, 3, 1).expect("a date"),
                &at(2),
                &version,
            ],
        )
        .await
        .expect("the row as V8 wrote it");

    let report = db::migrate(&mut owner)
        .await
        .expect("migrate to the latest");
    assert_eq!(
        report.applied.first().map(String::as_str),
        Some("V9__caseload_baseline_dates")
    );

    let principal = principal(worker, Role::LinkWorker, Some(team));
    let flags = || async {
        let page = cases
            .caseload(&principal, None, &app::caseload::CaseloadQuery::default())
            .await
            .expect("the caseload reads");
        assert_eq!(page.items.len(), 1);
        let item = &page.items[0];
        assert_eq!(
            (item.client_id, item.status, item.baselines.clone()),
            (client.0, CaseStatus::Open, vec!["wemwbs".to_owned()])
        );
        item.flags.clone()
    };

    // The old row reads; 91 days after acceptance (and 31 after the baseline) its follow-up is
    // due, counted from acceptance as before.
    assert!(flags().await.contains(&CaseloadFlag::FollowUpDue));

    // Rebuilt from the log, the row keeps the baseline's date: 31 days on, nothing is due...
    rebuild(&store, RebuildTarget::Caseload, &RebuildOptions::default())
        .await
        .expect("rebuild the caseload");
    let dates: serde_json::Value = testkit::query_value(
        &owner,
        "SELECT baseline_dates FROM caseload WHERE client_id = $1",
        &[&client.0],
    )
    .await;
    assert_eq!(dates, serde_json::json!({ "wemwbs": "2026-05-01" }));
    assert!(!flags().await.contains(&CaseloadFlag::FollowUpDue));
    // ... until 84 days after the baseline.
    clock.set(noon(2026, 7, 23));
    assert!(!flags().await.contains(&CaseloadFlag::FollowUpDue));
    clock.set(noon(2026, 7, 24));
    assert!(flags().await.contains(&CaseloadFlag::FollowUpDue));
}

/// V15 made the purpose of a read a code: a read recorded before it keeps the words it was
/// recorded with (the read audit is never rewritten) and shows them as `purpose_text`; every
/// read from then on has a code, and the database refuses words in a new row.
#[tokio::test]
async fn a_read_recorded_before_v15_keeps_its_words_and_no_read_after_it_may_write_any() {
    testkit::init_tracing();
    let db = TestDb::empty().await;
    let mut owner = db.admin_client().await;
    db::migrate_to(&mut owner, 14)
        .await
        .expect("migrate to V14");
    let store = protected(EventStore::new(db.app_pool(2), Upcasters::new()));
    let cases = app::CaseService::new(store.clone());
    let client = ClientId(Uuid::new_v4());
    cases
        .execute(
            client,
            &without_nhs_number(new_client_intake(
                client,
                ReferralId(Uuid::new_v4()),
                "Frome",
                ReferralSource::Gp,
                vec![NeedDomain::LonelinessIsolation],
            )),
            metadata(),
            Default::default(),
        )
        .await
        .expect("an intake under V14");
    let auditor = auditor();
    // Under V14, a read with its purpose in words.
    owner
        .execute(
            "INSERT INTO record_reads (organisation_id, client_id, staff_id, role, view, purpose, request_id) \
             VALUES ($1, $2, $3, 'auditor', 'journey', 'home visit', $4)",
            &[&ORG, &client.0, &auditor.staff_id.0, &Uuid::new_v4()],
        )
        .await
        .expect("a read under V14");

    db::migrate(&mut owner)
        .await
        .expect("migrate to the latest");
    let read = app::records::ReadContext::new(
        Some(app::records::ReadPurpose::Supervision),
        Uuid::new_v4(),
    );
    cases
        .record(&auditor, client, &read)
        .await
        .expect("a read now");
    let page = app::Page::numbered(None, None).expect("a page");
    let reads = cases
        .reads(&auditor, client, page, &read)
        .await
        .expect("the reads");
    let seen: Vec<_> = reads
        .items
        .iter()
        .map(|r| (r.purpose, r.purpose_text.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (None, Some("home visit")),
            (Some(app::records::ReadPurpose::Supervision), None),
            // This listing, audited as a read too.
            (Some(app::records::ReadPurpose::Supervision), None)
        ]
    );
    let app_client = db.app_client().await;
    // "home visit" in words, and as a code that is not in the list: both refused.
    for (column, refusal) in [
        ("purpose", "words as a purpose are refused"),
        ("purpose_code", "a purpose code not in the list is refused"),
    ] {
        let written = app_client
            .execute(
                &format!(
                    "INSERT INTO record_reads (organisation_id, client_id, staff_id, role, view, {column}, request_id) \
                     VALUES ($1, $2, $3, 'auditor', 'journey', 'home visit', $4)"
                ),
                &[&ORG, &client.0, &auditor.staff_id.0, &Uuid::new_v4()],
            )
            .await;
        assert!(written.is_err(), "{refusal}");
    }
}

/// V40 made a client's outcome state `json` (it was `jsonb`): a state the outcomes projection
/// wrote before it (as `jsonb` prints it back: keys reordered, its own spacing) reads after it
/// as the same state, and the projection goes on from it to the figures a clean rebuild makes.
#[tokio::test]
async fn an_outcome_state_written_as_jsonb_before_v40_reads_after_it_and_the_figures_go_on_from_it()
{
    testkit::init_tracing();
    let db = TestDb::empty().await;
    let mut owner = db.admin_client().await;
    db::migrate_to(&mut owner, 39)
        .await
        .expect("migrate to V39");
    crate::support::register_organisation(&owner, ORG).await;
    let store = protected(EventStore::new(db.app_pool(4), Upcasters::new()));
    let clock = app::Clock::fixed(noon(2026, 6, 1));
    let cases = app::CaseService::with_clock(store.clone(), clock);
    let (worker, team) = (
        StaffId(Uuid::from_u128(0x5001)),
        TeamId(Uuid::from_u128(0x7ea)),
    );
    let client = ClientId(Uuid::new_v4());
    let mut commands = opened_case(
        client,
        ReferralId(Uuid::new_v4()),
        ReferralSource::Gp,
        vec![NeedDomain::LonelinessIsolation],
        (worker, team),
    );
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 5, d).expect("a date");
    commands.push(wemwbs(
        Timepoint::Baseline,
        crate::support::wemwbs_answers(35),
        day(1),
    ));
    crate::support::execute_all(&cases, client, commands).await;

    // Under V39 the outcomes projection had folded the record and written the state as jsonb,
    // its checkpoint at the head of the log.
    let events = store
        .read_stream(client.0, 0, None)
        .await
        .expect("the record");
    let mut state = projector::ClientOutcomes {
        client_id: client.0,
        organisation_id: ORG,
        ..projector::ClientOutcomes::default()
    };
    for fact in projector::corrected::with_corrections(&events).expect("facts") {
        projector::apply_outcome_event(&mut state, &fact.event, fact.event_id, fact.occurred_at);
    }
    let written = serde_json::to_value(&state).expect("a state");
    owner
        .execute(
            "INSERT INTO outcome_state (rules_version, client_id, state) VALUES (3, $1, $2)",
            &[&client.0, &written],
        )
        .await
        .expect("the state as V39 stored it");
    let column: String = testkit::query_value(
        &owner,
        "SELECT pg_typeof(state)::text FROM outcome_state",
        &[],
    )
    .await;
    assert_eq!(column, "jsonb");
    let (head, applied) = store
        .lag(eventstore::GlobalPosition::START)
        .await
        .expect("the head");
    let outcomes = crate::support::outcomes_under(3);
    let name = projector::Projection::name(&outcomes).to_owned();
    projector::bookkeeping::set_checkpoint(&owner, &name, head, applied)
        .await
        .expect("the checkpoint");

    let report = db::migrate(&mut owner)
        .await
        .expect("migrate to the latest");
    assert_eq!(
        report.applied.first().map(String::as_str),
        Some("V40__outcome_state_json")
    );
    // The state reads back as the state written.
    let (column, stored): (String, serde_json::Value) = {
        let row = owner
            .query_one(
                "SELECT pg_typeof(state)::text, state FROM outcome_state WHERE client_id = $1",
                &[&client.0],
            )
            .await
            .expect("the state");
        (row.get(0), row.get(1))
    };
    assert_eq!(column, "json");
    let read: projector::ClientOutcomes = serde_json::from_value(stored).expect("it parses");
    assert_eq!(read, state);
    let runner = projector::Runner::new(
        store.clone(),
        std::sync::Arc::new(outcomes),
        Uuid::new_v4(),
        projector::RunnerSettings::default(),
    );
    // Beside the state, V39's projection had written the figure rows it makes (a fold writes a
    // client's rows only where they changed): made here by a fold from the first event, and
    // the state put back as the migration left it.
    let migrated: String = testkit::query_value(
        &owner,
        "SELECT state::text FROM outcome_state WHERE client_id = $1",
        &[&client.0],
    )
    .await;
    runner.reset().await.expect("reset");
    runner.catch_up().await.expect("the figure rows");
    owner
        .execute(
            "UPDATE outcome_state SET state = $2::text::json WHERE client_id = $1",
            &[&client.0, &migrated],
        )
        .await
        .expect("the migrated state");

    // A follow-up recorded now: the projection folds it into the stored state, to the figures
    // a clean rebuild from the first event makes.
    cases
        .execute(
            client,
            &wemwbs(
                Timepoint::FollowUp,
                crate::support::wemwbs_answers(48),
                day(29),
            ),
            metadata(),
            Default::default(),
        )
        .await
        .expect("a follow-up after V40");
    assert_eq!(runner.catch_up().await.expect("the projection goes on"), 1);
    let tables = crate::support::OUTCOME_TABLES;
    let went_on = crate::support::table_rows(&owner, tables).await;
    let scores: i64 = testkit::query_value(
        &owner,
        "SELECT count(*) FROM report_scores WHERE client_id = $1",
        &[&client.0],
    )
    .await;
    assert!(
        scores > 0,
        "the baseline from the stored state pairs with the follow-up"
    );
    runner.reset().await.expect("reset");
    runner.catch_up().await.expect("a clean rebuild");
    assert_eq!(crate::support::table_rows(&owner, tables).await, went_on);
}
