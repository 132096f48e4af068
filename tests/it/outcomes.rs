//! Outcome figures under versioned rules: a rule change rebuilt beside the figures in use gives
//! the expected different figures, the old version stays queryable, and the log is unchanged.

use std::sync::Arc;

use app::CaseService;
use app::reports::{ReportFilter, gap_report, outcome_report};
use casebook::rebuild::{RebuildOptions, RebuildTarget, rebuild};
use chrono::{NaiveDate, TimeZone, Utc};
use domain::*;
use projector::rules::Rules;
use projector::{OutcomesProjection, Runner, RunnerSettings};
use uuid::Uuid;

use crate::support::{
    assessment, execute_all, list_services, new_client_intake, oruk_service, store_with_db,
    wemwbs_answers,
};

const TEAM: TeamId = TeamId(Uuid::from_u128(0x7ea));

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).expect("a date")
}

fn wemwbs(id: u128, timepoint: Timepoint, total: i32, on: NaiveDate) -> CaseCommand {
    assessment(
        Uuid::from_u128(id),
        Instrument::Wemwbs,
        timepoint,
        wemwbs_answers(total),
        on,
    )
}

/// A client whose WEMWBS goes from 40 to 40 + `change`, with contacts, a connection, a gap and a
/// closure; `source` is their referral source.
async fn client(service: &CaseService, n: u128, change: i32, source: ReferralSource) {
    let client = ClientId(Uuid::from_u128(n));
    let sub = |k: u128| Uuid::from_u128(n * 100 + k);
    let referral_id = ReferralId(sub(1));
    let connection_id = ConnectionId(sub(2));
    let at = |d: u32| {
        Utc.with_ymd_and_hms(2026, 3, d, 10, 0, 0)
            .single()
            .expect("a time")
    };
    let mut commands = vec![
        new_client_intake(
            client,
            referral_id,
            "Frome",
            source,
            vec![NeedDomain::LonelinessIsolation, NeedDomain::MentalWellbeing],
        ),
        CaseCommand::AcceptReferral(ReferralAccepted { referral_id }),
        CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
            link_worker_id: StaffId(Uuid::from_u128(0x5001)),
            team_id: TEAM,
        }),
        CaseCommand::RecordContact(ContactRecorded {
            contact_id: ContactId(sub(3)),
            mode: ContactMode::FaceToFace,
            minutes: 40,
            contacted_at: at(4),
            note: None,
        }),
        wemwbs(n * 100 + 4, Timepoint::Baseline, 40, day(4)),
        CaseCommand::RecordConsent(ConsentRecorded {
            scope: ConsentScope::ShareWithOnwardServices,
            services: vec![],
            channel: None,
        }),
        CaseCommand::MakeConnection(OnwardConnectionMade {
            connection_id,
            service_id: ServiceId(Uuid::from_u128(0x5e1)),
            need: NeedDomain::LonelinessIsolation,
            kind: ConnectionKind::Referred,
        }),
        CaseCommand::RecordConnectionOutcome(ConnectionOutcomeRecorded {
            connection_id,
            outcome: if n.is_multiple_of(2) {
                ConnectionOutcome::WaitingList
            } else {
                ConnectionOutcome::Engaged
            },
            waiting_weeks: n.is_multiple_of(2).then_some(6),
        }),
        CaseCommand::RecordServiceGap(domain::testing::gap(
            GapId(sub(5)),
            NeedDomain::PhysicalActivity,
        )),
    ];
    commands.push(wemwbs(
        n * 100 + 6,
        Timepoint::FollowUp,
        40 + change,
        NaiveDate::from_ymd_opt(2026, 4, 10).expect("a date"),
    ));
    commands.push(CaseCommand::CloseCase(domain::testing::goals_met()));
    execute_all(service, client, commands).await;
}

async fn log_digest(db: &testkit::TestDb) -> (i64, String) {
    let admin = db.admin_client().await;
    let row = admin
        .query_one(
            "SELECT count(*), md5(string_agg(encode(hash, 'hex'), ',' ORDER BY position)) FROM events",
            &[],
        )
        .await
        .expect("digest");
    (row.get(0), row.get(1))
}

fn all_organisations(rules_version: i32) -> ReportFilter {
    ReportFilter {
        organisation_id: None,
        rules_version,
        ..ReportFilter::default()
    }
}

/// Makes the database an installation from before rules v3, reporting under v1 (a new one
/// starts on v3).
async fn reporting_under_v1(db: &testkit::TestDb) {
    db.admin_client()
        .await
        .batch_execute(
            "DELETE FROM projection_versions WHERE projection = 'outcomes'; \
             INSERT INTO projection_versions (projection, rules_version, state, switched_at) \
             VALUES ('outcomes', 1, 'live', now())",
        )
        .await
        .expect("v1 live");
}

/// Rebuilds the outcome figures under rule version 2 with `options`, which must succeed (`what`
/// names it in the failure).
async fn rebuild_v2(
    store: &eventstore::EventStore,
    options: &RebuildOptions,
    what: &str,
) -> casebook::rebuild::RebuildReport {
    rebuild(store, RebuildTarget::Outcomes { rules: 2 }, options)
        .await
        .unwrap_or_else(|err| panic!("{what}: {err:#}"))
}

/// Lists the lunch club the clients are connected to.
async fn list_lunch_club(store: &eventstore::EventStore) {
    list_services(
        store,
        vec![oruk_service(
            Uuid::from_u128(0x5e1),
            "Lunch club",
            &["loneliness_isolation"],
            "Frome",
        )],
    )
    .await;
}

#[tokio::test]
async fn a_rule_change_rebuilt_beside_the_figures_in_use_changes_them_and_keeps_the_old() {
    let (db, store) = store_with_db(4).await;
    reporting_under_v1(&db).await;
    list_lunch_club(&store).await;
    let service = CaseService::new(store.clone());
    // WEMWBS changes: +10 improves under both rule versions; +5 only under v2 (threshold 3,
    // v1 needs 9); -4 is worse only under v2; +1 is no change under both.
    for (n, change, source) in [
        (1, 10, ReferralSource::Gp),
        (2, 5, ReferralSource::Gp),
        (3, -4, ReferralSource::SelfReferral),
        (4, 1, ReferralSource::Gp),
    ] {
        client(&service, n, change, source).await;
    }
    let v1 = Runner::new(
        store.clone(),
        Arc::new(OutcomesProjection::new(Rules::load(1).expect("rules"))),
        Uuid::new_v4(),
        RunnerSettings::default(),
    );
    v1.catch_up().await.expect("v1 catches up");
    let before = log_digest(&db).await;
    let client = db.app_client().await;
    let wemwbs = |report: &app::reports::OutcomeReport| {
        let m = report
            .measures
            .iter()
            .find(|m| m.measure == "wemwbs")
            .expect("wemwbs figures")
            .clone();
        (m.paired, m.improved, m.no_change, m.worse)
    };
    let first = outcome_report(&client, &all_organisations(1))
        .await
        .expect("report");
    assert_eq!(wemwbs(&first), (Some(4), Some(1), Some(3), Some(0)));

    let rebuilt = rebuild_v2(&store, &RebuildOptions::default(), "rebuild").await;
    assert!(rebuilt.switched);
    assert_eq!(rebuilt.events, before.0 as u64, "every event replayed once");
    assert_eq!(
        projector::live_version(&client, projector::OUTCOMES)
            .await
            .expect("live"),
        2
    );
    let second = outcome_report(&client, &all_organisations(2))
        .await
        .expect("report");
    assert_eq!(wemwbs(&second), (Some(4), Some(2), Some(1), Some(1)));
    // Both versions' figures have applied the whole log, and say so.
    let head: i64 = testkit::query_value(&client, "SELECT max(position) FROM events", &[]).await;
    for report in [&first, &second] {
        assert_eq!((report.as_of.position, report.as_of.behind), (head, 0));
        assert!(report.as_of.recorded_at.is_some());
    }
    // Version 1 is still there, unchanged.
    let again = outcome_report(&client, &all_organisations(1))
        .await
        .expect("report");
    assert_eq!(again, first);
    // Only the WEMWBS categories differ between the two.
    let comparison = app::reports::compare(first.clone(), second.clone()).expect("comparable");
    let figures: Vec<&str> = comparison
        .differences
        .iter()
        .map(|d| d.figure.as_str())
        .collect();
    assert_eq!(
        figures,
        vec![
            "measures.wemwbs.improved",
            "measures.wemwbs.improved_percent",
            "measures.wemwbs.no_change",
            "measures.wemwbs.no_change_percent",
            "measures.wemwbs.worse",
            "measures.wemwbs.worse_percent",
            "people.improved_on_any",
            "people.improved_on_any_percent",
        ]
    );
    // `casebook compare` shows the figures as published: four people are too few to show,
    // so every WEMWBS figure is suppressed under both versions and no shown figure differs.
    let text = casebook::rebuild::compare(&store, 1, 2, None)
        .await
        .expect("compare");
    let row = |version: i32| {
        text.lines()
            .find(|line| line.starts_with(&format!("wemwbs (rules v{version})")))
            .unwrap_or_else(|| panic!("a WEMWBS row for v{version}:\n{text}"))
            .split_whitespace()
            .skip(3)
            .collect::<Vec<_>>()
    };
    assert_eq!(row(1), ["*", "*%", "*%", "*%", "*"], "{text}");
    assert_eq!(row(2), row(1), "{text}");
    assert!(
        text.ends_with("no figure differs between rules v1 and v2\n"),
        "{text}"
    );
    let missing = casebook::rebuild::compare(&store, 1, 7, None)
        .await
        .expect_err("no figures under v7");
    assert!(
        missing
            .to_string()
            .ends_with("run `casebook rebuild outcomes --rules 7` first"),
        "{missing}"
    );
    // The live version cannot be dropped; the retired one can, and then it is gone.
    assert!(casebook::rebuild::drop_version(&store, 2).await.is_err());
    casebook::rebuild::drop_version(&store, 1)
        .await
        .expect("drop v1");
    let versions = projector::versions(&client, projector::OUTCOMES)
        .await
        .expect("versions");
    assert_eq!(versions.len(), 1);
    let gone: i64 = testkit::query_value(
        &client,
        "SELECT count(*) FROM report_scores WHERE rules_version = 1",
        &[],
    )
    .await;
    assert_eq!(gone, 0);
    // The log is byte for byte what it was, and its chains verify.
    assert_eq!(log_digest(&db).await, before);
    let admin = db.admin_client().await;
    assert!(matches!(
        eventstore::verify(&admin).await.expect("verify"),
        eventstore::VerifyReport::Ok { .. }
    ));
    testkit::insta_settings().bind(|| insta::assert_yaml_snapshot!("outcomes_v2_report", second));

    // Filters: self-referrals only, and the gap report.
    let self_referrals = outcome_report(
        &client,
        &ReportFilter {
            source: Some("self_referral".into()),
            ..all_organisations(2)
        },
    )
    .await
    .expect("report");
    assert_eq!(self_referrals.referrals.total, Some(1));
    assert_eq!(
        wemwbs(&self_referrals),
        (Some(1), Some(0), Some(0), Some(1))
    );
    let gaps = gap_report(&client, &all_organisations(2))
        .await
        .expect("gaps");
    assert_eq!(gaps.gaps.len(), 1);
    assert_eq!(gaps.gaps[0].count, Some(4));
    assert_eq!(gaps.gaps[0].need, "physical_activity");
    assert_eq!(gaps.connections[0].made, Some(4));
    assert_eq!(gaps.connections[0].waiting_list, Some(2));
    assert_eq!(gaps.connections[0].mean_waiting_weeks, Some(6.0));
}

#[tokio::test]
async fn an_interrupted_rebuild_resumes_where_it_stopped() {
    let (db, store) = store_with_db(4).await;
    list_lunch_club(&store).await;
    let service = CaseService::new(store.clone());
    for n in 1..=6 {
        client(&service, n, 5, ReferralSource::Gp).await;
    }
    let total = log_digest(&db).await.0 as u64;
    // A first run that stops after one small batch, as if interrupted.
    let partial = Runner::new(
        store.clone(),
        Arc::new(OutcomesProjection::new(Rules::load(2).expect("rules"))),
        Uuid::new_v4(),
        RunnerSettings {
            batch_size: 7,
            lease_ttl: std::time::Duration::from_millis(1),
            ..RunnerSettings::default()
        },
    );
    let client = db.app_client().await;
    projector::start_version(&client, projector::OUTCOMES, 2)
        .await
        .expect("start");
    // The seventh event, once it can be read: a transaction another test keeps open on the
    // shared cluster holds back every later one for a moment (the gapless horizon), and
    // `read_all` then answers with fewer events or none; bounded by a minute.
    let mut stop = None;
    for _ in 0..3000 {
        let events = store
            .read_all(eventstore::GlobalPosition::START, 7)
            .await
            .expect("read");
        if events.len() == 7 {
            stop = events.last().map(|e| e.global);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let stop = stop.expect("the first seven events settle");
    assert_eq!(
        partial
            .catch_up_to(Some(stop), |_| {})
            .await
            .expect("partial"),
        7
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let resumed = rebuild_v2(&store, &RebuildOptions::default(), "resume").await;
    assert_eq!(resumed.events, total - 7, "only what was left");
    let figures = outcome_report(&client, &all_organisations(2))
        .await
        .expect("report");
    let restarted = rebuild_v2(
        &store,
        &RebuildOptions {
            restart: true,
            ..RebuildOptions::default()
        },
        "restart",
    )
    .await;
    assert_eq!(restarted.events, total);
    assert_eq!(
        outcome_report(&client, &all_organisations(2))
            .await
            .expect("report"),
        figures,
        "resumed and restarted rebuilds agree"
    );
}

/// A client's outcome state is rewritten at every batch that touches them: it is stored as it
/// is, not compressed with pglz on the way in (V36), as long as the row fits in a page.
#[tokio::test]
async fn an_outcome_state_of_a_few_kilobytes_is_stored_uncompressed() {
    let (db, store) = store_with_db(4).await;
    list_lunch_club(&store).await;
    let service = CaseService::new(store.clone());
    for n in 1..=3 {
        client(&service, n, 5, ReferralSource::Gp).await;
    }
    // A fourth person with twelve gaps recorded: a state over 2 kB (as `json`, V40: compact
    // text, smaller than the same state was as `jsonb`).
    let fourth = ClientId(Uuid::from_u128(4));
    let referral_id = ReferralId(Uuid::from_u128(401));
    let mut commands = vec![
        new_client_intake(
            fourth,
            referral_id,
            "Frome",
            ReferralSource::Gp,
            vec![NeedDomain::LonelinessIsolation],
        ),
        CaseCommand::AcceptReferral(ReferralAccepted { referral_id }),
    ];
    for (k, need) in [
        NeedDomain::PhysicalActivity,
        NeedDomain::LonelinessIsolation,
        NeedDomain::MentalWellbeing,
    ]
    .into_iter()
    .cycle()
    .take(12)
    .enumerate()
    {
        commands.push(CaseCommand::RecordServiceGap(domain::testing::gap(
            GapId(Uuid::from_u128(410 + k as u128)),
            need,
        )));
    }
    execute_all(&service, fourth, commands).await;
    Runner::new(
        store.clone(),
        Arc::new(OutcomesProjection::new(Rules::load(3).expect("rules"))),
        Uuid::new_v4(),
        RunnerSettings::default(),
    )
    .catch_up()
    .await
    .expect("v3 catches up");
    let admin = db.admin_client().await;
    let rows = admin
        .query(
            "SELECT pg_column_size(state), pg_column_compression(state) \
             FROM outcome_state WHERE rules_version = 3",
            &[],
        )
        .await
        .expect("states");
    assert_eq!(rows.len(), 4, "a state for each client");
    let mut largest = 0;
    for row in rows {
        let (stored, compression): (i32, Option<String>) = (row.get(0), row.get(1));
        assert_eq!(compression, None, "stored as it is ({stored} bytes)");
        largest = largest.max(stored);
    }
    // Over the 2 kB at which PostgreSQL would otherwise have compressed the row.
    assert!(largest > 2_100, "the largest state takes {largest} bytes");
}

/// A batch that continues a client rewrites only the tables whose rows their state now makes
/// differently: a follow-up assessment changes the scores (a pair now) and the baselines (now
/// paired), not the referral's or the episode's rows, which keep their place on disk (their
/// `ctid` and `xmin`). Every table ends as a clean rebuild makes it.
#[tokio::test]
async fn a_continued_client_has_only_the_rows_that_changed_written_again() {
    let (db, store) = store_with_db(4).await;
    let service = CaseService::new(store.clone());
    let client = ClientId(Uuid::new_v4());
    let mut commands = crate::support::opened_case(
        client,
        ReferralId(Uuid::new_v4()),
        ReferralSource::Gp,
        vec![NeedDomain::LonelinessIsolation],
        (StaffId(Uuid::from_u128(0x5001)), TEAM),
    );
    commands.push(wemwbs(1, Timepoint::Baseline, 35, day(2)));
    execute_all(&service, client, commands).await;
    let runner = Runner::new(
        store.clone(),
        Arc::new(crate::support::outcomes_under(3)),
        Uuid::new_v4(),
        RunnerSettings::default(),
    );
    runner.catch_up().await.expect("v3 catches up");
    let admin = db.admin_client().await;
    // Where each of the client's rows is, table by table.
    let places = || async {
        let mut places = std::collections::BTreeMap::new();
        for table in crate::support::OUTCOME_TABLES {
            let rows = admin
                .query(
                    &format!(
                        "SELECT ctid::text || '@' || xmin::text FROM {table} \
                         WHERE rules_version = 3 AND client_id = $1 ORDER BY 1"
                    ),
                    &[&client.0],
                )
                .await
                .expect("the rows' places");
            let rows: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            places.insert(*table, rows);
        }
        places
    };
    let before = places().await;
    assert_eq!(before["report_scores"].len(), 0, "no pair yet");
    assert_eq!(before["report_baselines"].len(), 1, "an unpaired baseline");

    execute_all(
        &service,
        client,
        vec![wemwbs(2, Timepoint::FollowUp, 48, day(30))],
    )
    .await;
    assert_eq!(runner.catch_up().await.expect("the follow-up"), 1);
    let after = places().await;
    for table in ["report_referrals", "report_episodes"] {
        assert_eq!(after[table].len(), 1, "{table}");
        assert_eq!(after[table], before[table], "{table} is not written again");
    }
    for table in ["outcome_state", "report_baselines"] {
        assert_eq!(after[table].len(), 1, "{table}");
        assert_ne!(after[table], before[table], "{table} is written again");
    }
    assert_eq!(after["report_scores"].len(), 1, "the pair");
    let baseline_paired: bool = testkit::query_value(
        &admin,
        "SELECT paired FROM report_baselines WHERE rules_version = 3 AND client_id = $1",
        &[&client.0],
    )
    .await;
    assert!(baseline_paired, "the baseline is paired now");

    let went_on = crate::support::table_rows(&admin, crate::support::OUTCOME_TABLES).await;
    runner.reset().await.expect("reset");
    runner.catch_up().await.expect("a clean rebuild");
    assert_eq!(
        crate::support::table_rows(&admin, crate::support::OUTCOME_TABLES).await,
        went_on,
        "the rows a clean rebuild makes"
    );
}
