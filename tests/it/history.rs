//! History import (issue #20 part 3): the fictional previous system's export in
//! `data/history/sample.csv` imported through the rules, its figures checked against what the
//! file's own rows say, a second import adding nothing, a killed import completed, and the bad
//! rows refused with their lines.

use std::collections::{BTreeMap, HashMap};

use app::access::Role;
use app::history::{Format, HistoryImport, ImportOptions, ImportReport, read_rows};
use app::reports::{ReportFilter, outcome_report};
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use devtools::demo::DemoAccess;
use devtools::history_sample::{SAMPLE_PEOPLE, SAMPLE_SEED, sample};
use eventstore::EventStore;

use crate::support::{catch_up, demo_store, outcomes_under};

fn sample_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/history/sample.csv")
}

fn the_sample() -> String {
    std::fs::read_to_string(sample_path()).expect("data/history/sample.csv")
}

/// The committed sample is what the generator makes from its seed (`UPDATE_SAMPLE=1` writes it).
#[test]
fn the_committed_sample_is_the_generators() {
    let made = sample(SAMPLE_SEED, SAMPLE_PEOPLE);
    if std::env::var_os("UPDATE_SAMPLE").is_some() {
        std::fs::create_dir_all(sample_path().parent().expect("a folder")).expect("the folder");
        std::fs::write(sample_path(), &made).expect("writing the sample");
    }
    assert!(made.len() < 2_000_000, "the sample is {} bytes", made.len());
    assert!(
        made == the_sample(),
        "data/history/sample.csv is not the generator's: run with UPDATE_SAMPLE=1"
    );
}

/// An import as of 15 January 2026 (after every date in the sample), assigning accepted cases
/// to the demo team lead.
async fn importer(
    store: &EventStore,
    organisation_id: uuid::Uuid,
    lead: uuid::Uuid,
    team: uuid::Uuid,
) -> HistoryImport {
    let clock = app::Clock::fixed(
        Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0)
            .single()
            .expect("a time"),
    );
    HistoryImport::new(
        store.clone(),
        clock,
        ImportOptions {
            system: "Fictional Previous System".to_owned(),
            organisation_id,
            assign_to: (domain::StaffId(lead), domain::TeamId(team)),
            batch_people: 200,
        },
    )
    .await
    .expect("the importer")
}

/// What an import test starts from: the demo organisation in a store of its own (with the sample
/// directory listed on 1 June 2023 when `directory`: the export's connections name its
/// services), and the demo's member of staff in the role accepted cases are assigned to.
struct ImportSetup {
    db: testkit::TestDb,
    store: EventStore,
    access: DemoAccess,
    assignee: uuid::Uuid,
}

async fn import_setup(assignee: Role, directory: bool) -> ImportSetup {
    let (db, store, _admin, access) = demo_store().await;
    if directory {
        devtools::demo::import_sample_directory(
            &store,
            access.organisation_id,
            Utc.with_ymd_and_hms(2023, 6, 1, 9, 0, 0)
                .single()
                .expect("a time"),
        )
        .await
        .expect("the sample directory");
    }
    let assignee = demo_member(&access, assignee);
    ImportSetup {
        db,
        store,
        access,
        assignee,
    }
}

/// The demo's member of staff in `role`.
fn demo_member(access: &DemoAccess, role: Role) -> uuid::Uuid {
    access
        .staff
        .iter()
        .find(|(r, ..)| *r == role)
        .map(|(_, id, _)| *id)
        .expect("a demo member")
}

impl ImportSetup {
    /// An import assigning accepted cases to the set-up's assignee ([`importer`]).
    async fn importer(&self) -> HistoryImport {
        importer(
            &self.store,
            self.access.organisation_id,
            self.assignee,
            self.access.team_id,
        )
        .await
    }
}

async fn count(db: &testkit::TestDb, sql: &str) -> i64 {
    db.admin_client()
        .await
        .query_one(sql, &[])
        .await
        .expect(sql)
        .get(0)
}

/// What the file's rows say, counted here without the importer: every row except the bad ones.
struct Expected {
    referrals_by_month: BTreeMap<(i32, u32), i64>,
    referrals_by_source: BTreeMap<String, i64>,
    wemwbs_changes: Vec<i64>,
}

fn expected(file: &str) -> Expected {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(file.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    let mut referrals_by_month = BTreeMap::new();
    let mut referrals_by_source = BTreeMap::new();
    let mut scores: HashMap<(String, String), i64> = HashMap::new();
    for record in reader.records() {
        let record = record.expect("a row");
        if record[0].starts_with("BAD-") {
            continue;
        }
        let cell = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| record.get(i))
                .unwrap_or("")
                .to_owned()
        };
        match cell("kind").as_str() {
            "referral" => {
                let day = NaiveDate::parse_from_str(&cell("date"), "%Y-%m-%d").expect("a day");
                *referrals_by_month
                    .entry((day.year(), day.month()))
                    .or_insert(0) += 1;
                *referrals_by_source.entry(cell("source")).or_insert(0) += 1;
            }
            "assessment" => {
                let sum: i64 = cell("answers")
                    .split(';')
                    .map(|a| a.parse::<i64>().expect("an answer"))
                    .sum();
                scores.insert((cell("person_id"), cell("timepoint")), sum);
            }
            _ => {}
        }
    }
    let mut wemwbs_changes = Vec::new();
    for ((person, timepoint), baseline) in &scores {
        if timepoint == "baseline"
            && let Some(follow_up) = scores.get(&(person.clone(), "follow_up".to_owned()))
        {
            wemwbs_changes.push(follow_up - baseline);
        }
    }
    Expected {
        referrals_by_month,
        referrals_by_source,
        wemwbs_changes,
    }
}

#[tokio::test]
async fn a_previous_systems_export_is_imported_once_through_the_rules_with_its_own_dates() {
    let setup = import_setup(Role::TeamLead, true).await;
    let directory_events = count(&setup.db, "SELECT count(*) FROM events").await;
    let import = setup.importer().await;
    let ImportSetup {
        db, store, access, ..
    } = setup;
    let file = the_sample();
    let (rows, unreadable) = read_rows(file.as_bytes(), Format::Csv);

    // A killed import: the first batches appended, then the process gone.
    let plan = import.plan(rows.clone()).await.expect("the plan");
    let partial = app::history::ImportPlan {
        streams: plan.streams[..500].to_vec(),
        ..plan.clone()
    };
    let first = import
        .append(&partial, |_| {})
        .await
        .expect("the first part");
    assert_eq!(first.people_written, 500);

    // Run again, whole: it completes what was missing, and nothing twice.
    let mut progress = Vec::new();
    let report: ImportReport = import
        .run(rows.clone(), |done| progress.push(done))
        .await
        .expect("the import");
    assert_eq!(report.already_imported, 500);
    assert_eq!(report.people_written + 500, plan.streams.len());
    assert_eq!(
        progress.last().copied(),
        Some(plan.events() - partial.events()),
        "progress reaches every event of this run"
    );
    assert!(
        progress.windows(2).all(|w| w[0] < w[1]),
        "progress only goes forward"
    );
    let imported = count(
        &db,
        "SELECT count(*) FROM events WHERE actor_role = 'history_import'",
    )
    .await;
    assert_eq!(imported as usize, plan.events());
    assert_eq!(
        imported as usize,
        first.events_written + report.events_written
    );

    // The bad rows, and only they, are refused, each with its line and a reason.
    let bad_lines: Vec<u64> = file
        .lines()
        .enumerate()
        .filter(|(_, line)| line.starts_with("BAD-"))
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert_eq!(bad_lines.len(), 7);
    let mut refused: Vec<_> = report.refused.iter().chain(&unreadable).cloned().collect();
    refused.sort_by_key(|r| r.line);
    assert_eq!(
        refused.iter().map(|r| r.line).collect::<Vec<_>>(),
        bad_lines,
        "{refused:#?}"
    );
    for refusal in &refused {
        assert!(
            !refusal.reason.is_empty() && !refusal.rule.is_empty(),
            "{refusal:?}"
        );
    }
    let by_record: HashMap<&str, &app::history::Refusal> =
        refused.iter().map(|r| (r.record_id.as_str(), r)).collect();
    assert_eq!(by_record["BAD-1"].field.as_deref(), Some("kind"));
    assert!(
        by_record["BAD-3"].reason.contains("in the future"),
        "{:?}",
        by_record["BAD-3"]
    );
    assert_eq!(by_record["BAD-2"].rule, "not_registered");
    assert_eq!(by_record["BAD-4"].field.as_deref(), Some("date"));
    assert_eq!(by_record["BAD-5"].field.as_deref(), Some("referral_id"));
    assert_eq!(refused.last().expect("the short row").rule, "unreadable");
    let csv = app::history::refusals_csv(&refused);
    assert!(
        csv.starts_with("line,record_id,field,rule,reason\n"),
        "{csv}"
    );

    // A second import of the same file adds nothing.
    let again = import.run(rows, |_| {}).await.expect("the second import");
    assert_eq!(again.events_written, 0);
    assert_eq!(again.people_written, 0);
    assert_eq!(again.already_imported, plan.streams.len());
    assert_eq!(
        count(&db, "SELECT count(*) FROM events").await,
        directory_events + imported
    );

    // Each fact is dated when it happened and recorded now; each stream says where it came from.
    let late = count(&db, "SELECT count(*) FROM events WHERE occurred_at < '2026-01-15' AND actor_role = 'history_import'").await;
    assert_eq!(
        late, imported,
        "every imported fact happened before the import"
    );
    let recorded_late = count(&db, "SELECT count(*) FROM events WHERE actor_role = 'history_import' AND recorded_at < now() - interval '1 hour'").await;
    assert_eq!(recorded_late, 0, "recorded when imported");
    let explained = count(&db, "SELECT count(*) FROM events WHERE stream_version = 1 AND event_type = 'LateEntryExplained' AND actor_role = 'history_import'").await;
    assert_eq!(explained as usize, plan.streams.len());
    let first_fact_dated = count(
        &db,
        "SELECT count(*) FROM events e JOIN events f ON f.stream_id = e.stream_id AND f.stream_version = 2 \
         WHERE e.stream_version = 1 AND e.actor_role = 'history_import' AND e.occurred_at = f.occurred_at",
    )
    .await;
    assert_eq!(first_fact_dated as usize, plan.streams.len());

    // A record reads as any other: the first person, registered, with their journey.
    let record = app::CaseService::new(store.clone())
        .load(import.client_id("P00001"))
        .await
        .expect("the first person");
    assert!(record.exists());
    assert_ne!(record.state.status, domain::CaseStatus::Unregistered);

    // Hash chains hold over every stream.
    let report = eventstore::verify(&db.admin_client().await)
        .await
        .expect("verify");
    assert!(
        matches!(report, eventstore::VerifyReport::Ok { .. }),
        "{report:?}"
    );

    // The figures are the ones the file's own dates give.
    let expected = expected(&file);
    catch_up(&store, outcomes_under(1)).await;
    let client = db.app_client().await;
    let all = outcome_report(
        &client,
        &ReportFilter {
            organisation_id: Some(access.organisation_id),
            rules_version: 1,
            ..Default::default()
        },
    )
    .await
    .expect("the report");
    let total: i64 = expected.referrals_by_month.values().sum();
    assert_eq!(all.referrals.total, Some(total));
    for share in &all.referrals.by_source {
        assert_eq!(
            share.count,
            Some(
                expected
                    .referrals_by_source
                    .get(&share.code)
                    .copied()
                    .unwrap_or(0)
            ),
            "{}",
            share.code
        );
    }
    assert_eq!(
        all.referrals
            .by_source
            .iter()
            .filter_map(|s| s.count)
            .sum::<i64>(),
        total
    );
    for ((year, month), n) in &expected.referrals_by_month {
        let from = NaiveDate::from_ymd_opt(*year, *month, 1).expect("a month");
        let to = from
            .checked_add_months(chrono::Months::new(1))
            .expect("the next month")
            .pred_opt()
            .expect("a day");
        let month = outcome_report(
            &client,
            &ReportFilter {
                organisation_id: Some(access.organisation_id),
                rules_version: 1,
                from: Some(from),
                to: Some(to),
                ..Default::default()
            },
        )
        .await
        .expect("a month's report");
        assert_eq!(month.referrals.total, Some(*n), "{year}-{month:?}");
    }
    let wemwbs = all
        .measures
        .iter()
        .find(|m| m.measure == "wemwbs")
        .expect("wemwbs");
    let pairs = expected.wemwbs_changes.len() as i64;
    assert!(pairs > 100, "{pairs} pairs");
    assert_eq!(wemwbs.paired, Some(pairs));
    let mean = expected.wemwbs_changes.iter().sum::<i64>() as f64 / pairs as f64;
    let got = wemwbs.mean_change.expect("a mean change");
    // The report gives means to two places.
    assert!(
        (got - (mean * 100.0).round() / 100.0).abs() < 1e-9,
        "mean change {got}, the file says {mean}"
    );
    let improved = expected.wemwbs_changes.iter().filter(|c| **c >= 9).count() as i64;
    let worse = expected.wemwbs_changes.iter().filter(|c| **c <= -9).count() as i64;
    assert_eq!(wemwbs.improved, Some(improved));
    assert_eq!(wemwbs.worse, Some(worse));
}

/// The same rows as JSON lines import as the CSV does; an option naming someone who is not a
/// link worker of the team is refused before anything is read.
#[tokio::test]
async fn json_lines_import_and_the_assignee_must_be_a_link_worker_of_the_team() {
    let setup = import_setup(Role::LinkWorker, false).await;
    let (store, access) = (&setup.store, &setup.access);
    let staff = |role: Role| demo_member(access, role);
    for (who, team) in [
        (staff(Role::Auditor), access.team_id),
        (staff(Role::LinkWorker), uuid::Uuid::from_u128(7)),
    ] {
        let refused = HistoryImport::new(
            store.clone(),
            app::Clock::system(),
            ImportOptions {
                system: "Elsewhere".to_owned(),
                organisation_id: access.organisation_id,
                assign_to: (domain::StaffId(who), domain::TeamId(team)),
                batch_people: 10,
            },
        )
        .await;
        assert!(matches!(
            refused,
            Err(app::history::ImportError::Invalid(_))
        ));
    }
    let import = setup.importer().await;
    let lines = [
        r#"{"record_id":"J1","person_id":"X1","kind":"person","date":"2025-03-01","given_name":"Ada","family_name":"Lark","area":"Frome"}"#,
        r#"{"record_id":"J2","person_id":"X1","kind":"referral","date":"2025-03-01","item_id":"1","source":"gp","reasons":"housing"}"#,
        r#"{"record_id":"J4","person_id":"X1","kind":"contact","date":"2025-03-02T10:00:00Z","mode":"phone","minutes":"20"}"#,
        r#"{"record_id":"J3","person_id":"X1","kind":"referral_accepted","date":"2025-03-04","item_id":"1"}"#,
        r#"{"record_id":"J5","person_id":"X1","kind":"contact","date":"2025-03-05T10:00:00Z","mode":"phone","minutes":"20"}"#,
        // The same record id again for this person: refused by its line, nothing else stopped.
        r#"{"record_id":"J5","person_id":"X1","kind":"contact","date":"2025-03-06T09:00:00Z","mode":"phone","minutes":"10"}"#,
        // Ids with stray spaces are the same person's.
        r#"{"record_id":" J9","person_id":" X1","kind":"contact","date":"2025-03-06T10:00:00Z","mode":"phone","minutes":"20"}"#,
        r#"{"record_id":"J6","person_id":"X1","kind":"closure","date":"2025-03-01","reason":"goals_met"}"#,
        r#"{"record_id":"J7","person_id":"X1","kind":"closure","date":"2025-04-01","reason":"goals_met","colour":"blue"}"#,
        r#"{"record_id":"J8","person_id":"X1","kind":"closure","date":"2025-04-01","reason":"goals_met"}"#,
    ]
    .join("\n");
    let (rows, unreadable) = read_rows(lines.as_bytes(), Format::JsonLines);
    assert_eq!(
        unreadable.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![9]
    );
    let report = import.run(rows, |_| {}).await.expect("the import");
    // Registration and referral, acceptance and assignment, two contacts, the closure.
    assert_eq!(report.events_written, 1 + 2 + 2 + 2 + 1);
    let refused: Vec<(u64, &str)> = report
        .refused
        .iter()
        .map(|r| (r.line, r.rule.as_str()))
        .collect();
    // A contact while the referral waited for its decision (the case not open); a closure dated
    // before the case was opened.
    assert_eq!(
        refused,
        vec![
            (3, "case_not_open"),
            (6, "duplicate_record_id"),
            (8, "invalid_field")
        ],
        "{:#?}",
        report.refused
    );
}

/// Two imports of the same file at once (two operators, or a retry while the first still runs)
/// write each person once: the loser of a race on a stream tries its batch again and finds it
/// written.
#[tokio::test]
async fn two_imports_of_the_same_file_at_once_write_each_person_once() {
    let setup = import_setup(Role::TeamLead, true).await;
    let file = sample(SAMPLE_SEED, 300);
    let (rows, _) = read_rows(file.as_bytes(), Format::Csv);
    let one = setup.importer().await;
    let other = setup.importer().await;
    let plan = one.plan(rows.clone()).await.expect("the plan");
    let (a, b) = tokio::join!(one.run(rows.clone(), |_| {}), other.run(rows, |_| {}));
    let (a, b) = (a.expect("one import"), b.expect("the other"));
    assert_eq!(a.people_written + b.people_written, plan.streams.len());
    assert_eq!(a.events_written + b.events_written, plan.events());
    let imported = count(
        &setup.db,
        "SELECT count(*) FROM events WHERE actor_role = 'history_import'",
    )
    .await;
    assert_eq!(imported as usize, plan.events());
}

/// A later export of the same system: the rows of a person imported before that the log holds
/// are left as they are, and only their new rows are added, decided by the domain against the
/// record as it stands (a contact after the case closed is refused); a third run adds nothing.
#[tokio::test]
async fn a_later_export_adds_only_a_known_persons_new_rows() {
    let setup = import_setup(Role::LinkWorker, false).await;
    let import = setup.importer().await;
    let ImportSetup {
        db, store, access, ..
    } = setup;
    let first = [
        r#"{"record_id":"K1","person_id":"Y1","kind":"person","date":"2025-03-01","given_name":"Ada","family_name":"Lark","nhs_number":"9434765919","area":"Frome"}"#,
        r#"{"record_id":"K2","person_id":"Y1","kind":"referral","date":"2025-03-01","item_id":"1","source":"gp","reasons":"housing"}"#,
        r#"{"record_id":"K3","person_id":"Y1","kind":"referral_accepted","date":"2025-03-04","item_id":"1"}"#,
        r#"{"record_id":"K4","person_id":"Y1","kind":"contact","date":"2025-03-05T10:00:00Z","mode":"phone","minutes":"20"}"#,
    ];
    let later = [
        r#"{"record_id":"K5","person_id":"Y1","kind":"contact","date":"2025-04-02T10:00:00Z","mode":"face_to_face","minutes":"45"}"#,
        r#"{"record_id":"K8","person_id":"Y1","kind":"what_matters","date":"2025-04-02T10:30:00Z","text":"Staying in her flat"}"#,
        r#"{"record_id":"K9","person_id":"Y1","kind":"goal","date":"2025-04-02T10:40:00Z","item_id":"g1","text":"Get the damp fixed","need":"housing"}"#,
        r#"{"record_id":"K10","person_id":"Y1","kind":"goal_review","date":"2025-04-20","item_id":"g1","progress":"achieved","text":"Fixed by the landlord"}"#,
        r#"{"record_id":"K11","person_id":"Y1","kind":"note","date":"2025-04-21T09:00:00Z","text":"Landlord visited"}"#,
        r#"{"record_id":"K6","person_id":"Y1","kind":"closure","date":"2025-05-01","reason":"goals_met"}"#,
    ];
    let rows = |lines: &[&str]| read_rows(lines.join("\n").as_bytes(), Format::JsonLines).0;
    let report = import
        .run(rows(&first), |_| {})
        .await
        .expect("the first import");
    assert_eq!(report.people_written, 1);
    // The account of the import, registration and referral, acceptance and assignment, contact.
    assert_eq!(report.events_written, 1 + 2 + 2 + 1);
    let client = import.client_id("Y1").0;
    let stream = |store: EventStore| async move {
        store
            .read_stream(client, 1, None)
            .await
            .expect("the stream")
    };
    let before = stream(store.clone()).await;
    // The NHS number's lookup tag is written with the stream (a FHIR referral finds them).
    let tag = app::matching::nhs_number_tag(
        &store,
        access.organisation_id,
        &domain::NhsNumber::parse("9434765919").expect("valid"),
    )
    .await
    .expect("the tag")
    .expect("a sealing store");
    assert_eq!(store.streams_tagged(&tag).await.expect("tagged"), [client]);

    // The later export holds the same rows and two new ones: only the new are added, after
    // an account of where they came from.
    let all: Vec<&str> = first.iter().chain(&later).copied().collect();
    let mut progress = Vec::new();
    let report = import
        .run(rows(&all), |done| progress.push(done))
        .await
        .expect("the later import");
    assert_eq!(report.people_written, 0);
    assert_eq!(report.already_imported, 1);
    assert_eq!(report.people_added_to, 1);
    assert_eq!(report.rows_already_imported, first.len());
    assert_eq!(report.events_written, 1 + later.len(), "{report:#?}");
    assert!(report.refused.is_empty(), "{:#?}", report.refused);
    assert_eq!(progress.last().copied(), Some(1 + later.len()));
    let after = stream(store.clone()).await;
    assert_eq!(
        after[..before.len()],
        before[..],
        "the record before is untouched"
    );
    let added: Vec<&str> = after[before.len()..]
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        added,
        [
            "LateEntryExplained",
            "ContactRecorded",
            "WhatMattersRecorded",
            "GoalSet",
            "GoalReviewed",
            "NoteAdded",
            "CaseClosed"
        ]
    );
    // The words are sealed at rest, and read back with the record's key.
    let clear = count(
        &db,
        "SELECT count(*) FROM events WHERE payload::text LIKE '%Landlord visited%' \
         OR payload::text LIKE '%damp fixed%' OR payload::text LIKE '%her flat%'",
    )
    .await;
    assert_eq!(clear, 0);
    assert_eq!(after[after.len() - 2].payload["text"], "Landlord visited");
    assert!(
        after[before.len()..]
            .iter()
            .all(|e| e.metadata.actor_role == "history_import"),
        "recorded as imported"
    );
    assert_eq!(
        after[before.len() + 1].metadata.occurred_at,
        Utc.with_ymd_and_hms(2025, 4, 2, 10, 0, 0)
            .single()
            .expect("a time"),
        "dated when it happened"
    );
    assert!(
        after[before.len()].payload["reason"]
            .as_str()
            .is_some_and(|r| r.contains("later rows")),
        "{}",
        after[before.len()].payload
    );

    // Again: nothing. A row the record refuses as it stands (a contact after the closure) is
    // refused by its line, the rest left as they are.
    let mut third = all.clone();
    third.push(r#"{"record_id":"K7","person_id":"Y1","kind":"contact","date":"2025-05-03T10:00:00Z","mode":"phone","minutes":"10"}"#);
    let report = import
        .run(rows(&third), |_| {})
        .await
        .expect("the third import");
    assert_eq!(report.events_written, 0, "{report:#?}");
    assert_eq!(report.rows_already_imported, all.len());
    assert_eq!(
        report
            .refused
            .iter()
            .map(|r| (r.line, r.rule.as_str()))
            .collect::<Vec<_>>(),
        [(all.len() as u64 + 1, "case_not_open")]
    );
    assert_eq!(stream(store.clone()).await.len(), after.len());

    // The chains hold.
    let verified = eventstore::verify(&db.admin_client().await)
        .await
        .expect("verify");
    assert!(
        matches!(verified, eventstore::VerifyReport::Ok { .. }),
        "{verified:?}"
    );
}
