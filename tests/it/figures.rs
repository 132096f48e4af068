//! The figures outcome rules v3 adds: distinct people beside episodes, drop-out beside each
//! paired measure, people improved on any measure, change signed so that positive is better,
//! the ONS and UCLA bands, MYCaW, the evaluation consent rule, baselines that do not carry over
//! to a second episode, and the complementary rule over a measure's categories.

use app::reports::{OutcomeReport, outcome_report, suppress_outcomes};
use app::{CaseService, CommandOptions};
use chrono::{NaiveDate, TimeZone, Utc};
use domain::*;
use eventstore::Metadata;
use projector::rules::PrivacyRules;
use uuid::Uuid;

use crate::support::{
    assessment, catch_up, execute_all, metadata, new_client_intake, opened_case, outcomes_under,
    store_with_db, under_v3, wemwbs_answers,
};

fn on(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, day).expect("a date")
}

/// What one person's journey holds.
struct Person {
    /// (instrument, baseline answers, follow-up answers if any)
    scores: Vec<(Instrument, Vec<i32>, Option<Vec<i32>>)>,
    closed: bool,
    withdraws_evaluation_consent: bool,
    /// A second episode after the first closes, with only a follow-up-style review: it has no
    /// baseline of its own, so it pairs with nothing.
    second_episode: bool,
}

async fn journey(cases: &CaseService, n: u128, person: &Person) {
    let client = ClientId(Uuid::from_u128(n));
    let id = |k: u128| Uuid::from_u128(n * 1000 + k);
    let mut commands = gp_case(client, ReferralId(id(1)));
    if person.withdraws_evaluation_consent {
        commands.push(CaseCommand::RecordConsent(ConsentRecorded {
            scope: ConsentScope::Evaluation,
            services: vec![],
            channel: None,
        }));
        commands.push(CaseCommand::WithdrawConsent(ConsentWithdrawn {
            scope: ConsentScope::Evaluation,
        }));
    }
    for (k, (instrument, baseline, follow_up)) in person.scores.iter().enumerate() {
        let k = k as u128 * 10;
        commands.push(assessment(
            id(100 + k),
            *instrument,
            Timepoint::Baseline,
            baseline.clone(),
            on(3, 5),
        ));
        if let Some(later) = follow_up {
            commands.push(assessment(
                id(101 + k),
                *instrument,
                Timepoint::FollowUp,
                later.clone(),
                on(5, 20),
            ));
        }
    }
    if person.closed || person.second_episode {
        commands.push(CaseCommand::CloseCase(domain::testing::goals_met()));
    }
    if person.second_episode {
        let mut again = new_client_intake(
            client,
            ReferralId(id(2)),
            "Frome",
            ReferralSource::Gp,
            vec![NeedDomain::LonelinessIsolation],
        );
        if let CaseCommand::Intake { client, referral } = &mut again {
            *client = None;
            referral.received_on = on(6, 1);
        }
        commands.push(again);
        commands.push(CaseCommand::AcceptReferral(ReferralAccepted {
            referral_id: ReferralId(id(2)),
        }));
        // The record still holds the first episode's baseline, so a follow-up may be recorded;
        // v3 does not carry that baseline over, so it pairs with nothing.
        commands.push(assessment(
            id(900),
            Instrument::Wemwbs,
            Timepoint::FollowUp,
            vec![5; 14],
            on(8, 1),
        ));
    }
    crate::support::hire_named(cases.store(), crate::support::ORG, &commands).await;
    for command in commands {
        let when = Metadata {
            occurred_at: Utc
                .with_ymd_and_hms(2026, 6, 2, 9, 0, 0)
                .single()
                .expect("a time"),
            ..metadata()
        };
        let when = match &command {
            // The first episode's facts happened in March.
            CaseCommand::AcceptReferral(r) if r.referral_id == ReferralId(id(1)) => Metadata {
                occurred_at: Utc
                    .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
                    .single()
                    .expect("a time"),
                ..metadata()
            },
            _ => when,
        };
        cases
            .execute(client, &command, when, CommandOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{n}: {command:?}: {e}"));
    }
}

/// The service-gap figures under rules v3, as they stand.
async fn gap_figures(db: &testkit::TestDb) -> app::reports::GapReport {
    app::reports::gap_report(&db.app_client().await, &under_v3(None))
        .await
        .expect("the gaps")
}

/// A GP's referral for loneliness of `client`, accepted and assigned to the same link worker.
fn gp_case(client: ClientId, referral: ReferralId) -> Vec<CaseCommand> {
    opened_case(
        client,
        referral,
        ReferralSource::Gp,
        vec![NeedDomain::LonelinessIsolation],
        (
            StaffId(Uuid::from_u128(0x5001)),
            TeamId(Uuid::from_u128(0x7ea)),
        ),
    )
}

async fn report(store: &eventstore::EventStore, db: &testkit::TestDb) -> OutcomeReport {
    catch_up(store, outcomes_under(3)).await;
    outcome_report(&db.app_client().await, &under_v3(None))
        .await
        .expect("the report")
}

fn measure<'a>(report: &'a OutcomeReport, name: &str) -> &'a app::reports::MeasureFigures {
    report
        .measures
        .iter()
        .find(|m| m.measure == name)
        .unwrap_or_else(|| panic!("no {name} in {:#?}", report.measures))
}

#[tokio::test]
async fn the_figures_people_ask_for() {
    let (db, store) = store_with_db(4).await;
    let cases = CaseService::new(store.clone());
    let wemwbs = wemwbs_answers;
    let people = [
        // 1: better on WEMWBS (40 to 52), ONS4 (life satisfaction 3 to 8; anxiety 7 to 2), UCLA
        // (8 to 4), lonely often (1) to hardly ever (4), MYCaW concern 5 to 2 and wellbeing 4 to 3.
        Person {
            scores: vec![
                (Instrument::Wemwbs, wemwbs(40), Some(wemwbs(52))),
                (Instrument::Ons4, vec![3, 5, 4, 7], Some(vec![8, 7, 7, 2])),
                (Instrument::Ucla3, vec![3, 3, 2], Some(vec![1, 2, 1])),
                (Instrument::OnsLoneliness, vec![1], Some(vec![4])),
                (Instrument::Mycaw, vec![5, 3, 4], Some(vec![2, 3, 3])),
            ],
            closed: true,
            withdraws_evaluation_consent: false,
            second_episode: false,
        },
        // 2: worse on WEMWBS (50 to 38), the same on UCLA (6 to 6); then a second episode.
        Person {
            scores: vec![
                (Instrument::Wemwbs, wemwbs(50), Some(wemwbs(38))),
                (Instrument::Ucla3, vec![2, 2, 2], Some(vec![2, 2, 2])),
            ],
            closed: true,
            withdraws_evaluation_consent: false,
            second_episode: true,
        },
        // 3: a WEMWBS baseline, then the case closed with no follow-up: drop-out.
        Person {
            scores: vec![(Instrument::Wemwbs, wemwbs(35), None)],
            closed: true,
            withdraws_evaluation_consent: false,
            second_episode: false,
        },
        // 4: a WEMWBS baseline, the case still open: a follow-up still to come.
        Person {
            scores: vec![(Instrument::Wemwbs, wemwbs(45), None)],
            closed: false,
            withdraws_evaluation_consent: false,
            second_episode: false,
        },
        // 5: better on WEMWBS, but their consent to evaluation was withdrawn: left out.
        Person {
            scores: vec![(Instrument::Wemwbs, wemwbs(30), Some(wemwbs(60)))],
            closed: true,
            withdraws_evaluation_consent: true,
            second_episode: false,
        },
    ];
    for (n, person) in people.iter().enumerate() {
        journey(&cases, n as u128 + 1, person).await;
    }
    let report = report(&store, &db).await;

    // Six referrals from five people; six episodes; the active ones (all time) are all of them.
    assert_eq!(
        (report.referrals.total, report.referrals.people),
        (Some(6), Some(5))
    );
    assert_eq!(
        (report.episodes.started, report.episodes.people),
        (Some(6), Some(5))
    );
    // People: two with a pair (person 5 left out), one of them better on something.
    assert_eq!(report.people.paired, Some(2));
    assert_eq!(report.people.improved_on_any, Some(1));
    assert_eq!(report.people.evaluation_consent, "exclude_withdrawn");
    assert_eq!(report.people.excluded_without_evaluation_consent, Some(1));

    let w = measure(&report, "wemwbs");
    assert_eq!((w.paired, w.improved, w.worse), (Some(2), Some(1), Some(1)));
    // Four WEMWBS baselines count (person 5's are left out): two paired, one drop-out, one to
    // come. Person 2's second episode has no baseline of its own: its follow-up pairs with none.
    assert_eq!(
        (w.baselines, w.no_follow_up, w.awaiting_follow_up),
        (Some(4), Some(1), Some(1))
    );
    // Mean change (12 - 12) / 2 = 0 either way for WEMWBS; anxiety falls 5, which is better.
    let anxiety = measure(&report, "ons4_anxiety");
    assert_eq!(anxiety.direction, "lower_is_better");
    assert_eq!(
        (anxiety.mean_change, anxiety.mean_improvement),
        (Some(-5.0), Some(5.0))
    );
    // Each band of a measure as `code baseline/follow-up` (`-` for no count).
    let bands = |name: &str| {
        let count = |n: Option<i64>| n.map_or("-".to_owned(), |n| n.to_string());
        measure(&report, name)
            .bands
            .iter()
            .map(|b| format!("{} {}/{}", b.code, count(b.baseline), count(b.follow_up)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    assert_eq!(
        bands("ons4_life_satisfaction"),
        "low 1/0, medium 0/0, high 0/1, very_high 0/0"
    );
    assert_eq!(
        bands("ons4_anxiety"),
        "very_low 0/0, low 0/1, medium 0/0, high 1/0"
    );
    assert_eq!(bands("ucla3"), "not_lonely 0/1, lonely 2/1");
    let lonely = measure(&report, "ons_loneliness");
    assert_eq!(lonely.bands[0].code, "often_always");
    assert_eq!(
        (
            lonely.bands[0].baseline,
            lonely.bands[0].follow_up,
            lonely.bands[0].follow_up_percent
        ),
        (Some(1), Some(0), Some(0.0))
    );
    let concern = measure(&report, "mycaw_concern_1");
    let wellbeing = measure(&report, "mycaw_wellbeing");
    assert_eq!(
        (concern.mean_improvement, concern.improved),
        (Some(3.0), Some(1))
    );
    assert_eq!(
        (wellbeing.mean_improvement, wellbeing.improved),
        (Some(1.0), Some(1))
    );
}

#[tokio::test]
async fn the_complementary_rule_covers_a_measures_categories() {
    let (db, store) = store_with_db(4).await;
    let cases = CaseService::new(store.clone());
    // Ten paired WEMWBS: eight better by 12, two the same.
    for n in 1..=10u128 {
        let later = if n <= 8 { vec![4; 14] } else { vec![3; 14] };
        let person = Person {
            scores: vec![(Instrument::Wemwbs, vec![3; 14], Some(later))],
            closed: true,
            withdraws_evaluation_consent: false,
            second_episode: false,
        };
        journey(&cases, 100 + n, &person).await;
    }
    let report = report(&store, &db).await;
    let cells = |privacy: i32| {
        let mut published = report.clone();
        suppress_outcomes(&mut published, &PrivacyRules::load(privacy).expect("rules"));
        let w = measure(&published, "wemwbs").clone();
        (w.paired, w.improved, w.no_change, w.worse)
    };
    // Under v3 the two unchanged are suppressed, and so is the eight they could be worked out
    // from (10 - 0 - 8); under v2, which does not cover categories, the eight show.
    assert_eq!(cells(3), (Some(10), None, None, Some(0)));
    assert_eq!(cells(2), (Some(10), Some(8), None, Some(0)));
}

#[tokio::test]
async fn areas_typed_differently_are_one_cell_where_gaps_and_capacity_meet() {
    let (db, store) = store_with_db(4).await;
    // Two services: one listing Frome as "FROME", one listing it twice ("Frome" and its
    // postcode district): each counts once.
    let mut twice = crate::support::oruk_service(
        Uuid::from_u128(0x5e2),
        "Frome swimming club",
        &["physical_activity"],
        "Frome",
    );
    twice["service_areas"]
        .as_array_mut()
        .expect("areas")
        .push(serde_json::json!({ "id": Uuid::new_v4(), "name": "BA11" }));
    crate::support::list_services(
        &store,
        vec![
            crate::support::oruk_service(
                Uuid::from_u128(0x5e1),
                "Frome walking group",
                &["physical_activity"],
                "FROME",
            ),
            twice,
        ],
    )
    .await;
    let cases = CaseService::new(store.clone());
    let person = Person {
        scores: vec![],
        closed: false,
        withdraws_evaluation_consent: false,
        second_episode: false,
    };
    for (n, typed) in ["Frome", "frome ", "FROME", "BA11 2AB", "Nunney", "nunney"]
        .into_iter()
        .enumerate()
    {
        let n = 200 + n as u128;
        journey(&cases, n, &person).await;
        cases
            .execute(
                ClientId(Uuid::from_u128(n)),
                &CaseCommand::RecordServiceGap(ServiceGapRecorded {
                    gap_id: GapId(Uuid::from_u128(n * 1000 + 7)),
                    need: NeedDomain::PhysicalActivity,
                    area: typed.to_owned(),
                    reason: GapReason::WaitingListTooLong,
                    note: None,
                }),
                Metadata {
                    occurred_at: Utc
                        .with_ymd_and_hms(2026, 6, 3, 9, 0, 0)
                        .single()
                        .expect("a time"),
                    ..metadata()
                },
                CommandOptions::default(),
            )
            .await
            .expect("the gap");
    }
    report(&store, &db).await;
    catch_up(&store, projector::DirectoryProjection).await;
    let gaps = gap_figures(&db).await;
    let cells: Vec<(String, Option<String>, Option<i64>)> = gaps
        .gaps
        .iter()
        .map(|g| (g.area.clone(), g.area_name.clone(), g.count))
        .collect();
    assert_eq!(
        cells,
        [
            ("frome".to_owned(), Some("Frome".to_owned()), Some(4)),
            (
                "uncoded:nunney".to_owned(),
                Some("nunney".to_owned()),
                Some(2)
            ),
        ]
    );
    // The directory's "FROME" is the same cell.
    let capacity: Vec<(String, String, i64)> = gaps
        .capacity
        .iter()
        .map(|c| (c.need.clone(), c.area.clone(), c.services))
        .collect();
    assert_eq!(
        capacity,
        [("physical_activity".to_owned(), "frome".to_owned(), 2)]
    );
}

/// Ids are unique within a record, not across the log: two people whose referral, connection
/// and gap share ids (chosen by callers, perhaps in two organisations) are both counted, and the
/// figures keep following the log.
#[tokio::test]
async fn two_records_may_use_the_same_ids_and_both_count() {
    let (db, store) = store_with_db(4).await;
    let service = crate::support::list_sample_services(&store, 1).await[0];
    let cases = CaseService::new(store.clone());
    let shared = |k: u128| Uuid::from_u128(0xdead_0000 + k);
    for n in [301u128, 302] {
        let client = ClientId(Uuid::from_u128(n));
        let mut commands = gp_case(client, ReferralId(shared(1)));
        commands.extend([
            CaseCommand::MakeConnection(OnwardConnectionMade {
                connection_id: ConnectionId(shared(2)),
                service_id: ServiceId(service),
                need: NeedDomain::LonelinessIsolation,
                kind: ConnectionKind::Signposted,
            }),
            CaseCommand::RecordServiceGap(domain::testing::gap(
                GapId(shared(3)),
                NeedDomain::Housing,
            )),
        ]);
        execute_all(&cases, client, commands).await;
    }
    let report = report(&store, &db).await;
    assert_eq!(report.referrals.total, Some(2));
    let gaps = gap_figures(&db).await;
    assert_eq!(gaps.gaps.iter().filter_map(|g| g.count).sum::<i64>(), 2);
    assert_eq!(
        gaps.connections.iter().filter_map(|c| c.made).sum::<i64>(),
        2
    );
}
