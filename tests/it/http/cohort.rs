//! A year's cohort pushed through the API as a service records it (late, and in an order unlike
//! the order things happened), and the reports for the year, each quarter and all time checked
//! against counts made from the cohort's own dates.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::journey::client_path;
use super::{Person, TestServer};
use app::reports::{OutcomeReport, ReportFilter, outcome_report};

/// A small, seeded generator (xorshift): the cohort is the same on every run.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// 0 to n - 1.
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a date")
}

fn noon(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(12, 0, 0).expect("noon"))
}

/// What a journey's facts were, by their own dates.
#[derive(Default)]
struct Truth {
    received: Vec<NaiveDate>,
    accepted: Vec<NaiveDate>,
    declined: Vec<NaiveDate>,
    /// (accepted, closed)
    episodes: Vec<(NaiveDate, Option<NaiveDate>)>,
    attended: Vec<NaiveDate>,
    not_attended: Vec<NaiveDate>,
    contacts: Vec<NaiveDate>,
    closed: Vec<NaiveDate>,
    follow_ups: Vec<NaiveDate>,
    gaps: Vec<NaiveDate>,
    connections: Vec<NaiveDate>,
}

/// One command of the cohort: who, where, what, when it happened, and when it is entered.
struct Step {
    client: Uuid,
    path: &'static str,
    body: Value,
    by_lead: bool,
    happened: DateTime<Utc>,
    entered: DateTime<Utc>,
}

/// The last day anything in the cohort happens; the clock ends a little after.
fn last_day() -> NaiveDate {
    day(2026, 2, 20)
}

/// One person's journey: referred between November 2024 and December 2025; most accepted,
/// some declined; appointments kept or missed, contacts, WEMWBS at baseline and follow-up, a
/// gap or a connection now and then; most closed, some still open.
fn journey(dice: &mut Dice, truth: &mut Truth, service: Uuid) -> Vec<Step> {
    let client = Uuid::new_v4();
    let referral = Uuid::new_v4();
    let received = day(2024, 11, 1) + Duration::days(dice.below(415));
    truth.received.push(received);
    let source = if dice.below(3) == 0 {
        "self_referral"
    } else {
        "gp"
    };
    let name = ("Cohort", "Member");
    let referred = super::journey::named_referral(name, "Frome", referral, source, json!(received));
    let mut facts: Vec<(&'static str, Value, bool, DateTime<Utc>)> = vec![(
        "referrals",
        referred,
        true,
        noon(received) - Duration::hours(12),
    )];
    let decided = received + Duration::days(dice.below(10));
    if dice.below(6) == 0 {
        truth.declined.push(decided);
        facts.push((
            "referral-declines",
            json!({ "referral_id": referral, "reason": "not_eligible", "note": null,
                    "occurred_at": noon(decided) }),
            true,
            noon(decided),
        ));
        return entered(dice, client, facts);
    }
    truth.accepted.push(decided);
    let accepted = noon(decided);
    facts.push((
        "referral-acceptances",
        json!({ "referral_id": referral, "occurred_at": accepted }),
        true,
        accepted,
    ));
    facts.push(("assignment", json!(null), true, accepted));
    let baseline = decided + Duration::days(dice.below(7));
    facts.push((
        "assessments",
        wemwbs("baseline", baseline),
        false,
        noon(baseline),
    ));
    // Appointments, contacts, a follow-up, a gap or a connection, in the order they happened.
    let mut middle: Vec<(&'static str, Value, bool, DateTime<Utc>)> = Vec::new();
    let mut latest = baseline;
    for j in 1..=dice.below(5) {
        let on = decided + Duration::days(j * 14);
        if on > last_day() {
            break;
        }
        let appointment = Uuid::new_v4();
        let booked = noon(on) - Duration::days(3);
        middle.push((
            "appointments",
            json!({ "appointment_id": appointment, "scheduled_for": noon(on), "mode": "face_to_face",
                    "occurred_at": booked }),
            false,
            booked,
        ));
        let (what, dates) = if dice.below(4) == 0 {
            ("non-attendances", &mut truth.not_attended)
        } else {
            ("attendances", &mut truth.attended)
        };
        dates.push(on);
        let marked = noon(on) + Duration::hours(dice.below(48));
        middle.push((
            what,
            json!({ "appointment_id": appointment, "occurred_at": marked }),
            false,
            marked,
        ));
        latest = latest.max(marked.date_naive());
    }
    for _ in 0..dice.below(4) {
        let on = decided + Duration::days(1 + dice.below(80));
        if on > last_day() {
            continue;
        }
        truth.contacts.push(on);
        let at = noon(on) - Duration::hours(2);
        middle.push((
            "contacts",
            json!({ "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 20, "contacted_at": at, "note": null }),
            false,
            at,
        ));
        latest = latest.max(on);
    }
    let follow_up = baseline + Duration::days(60 + dice.below(60));
    if follow_up <= last_day() {
        truth.follow_ups.push(follow_up);
        middle.push((
            "assessments",
            wemwbs("follow_up", follow_up),
            false,
            noon(follow_up),
        ));
        latest = latest.max(follow_up);
    }
    // One in four has a gap recorded, one in three a connection, in the month after.
    for (one_in, path, dates, mut body) in [
        (
            4,
            "service-gaps",
            &mut truth.gaps,
            json!({ "gap_id": Uuid::new_v4(), "need": "physical_activity", "area": "Frome",
                    "reason": "no_service_exists", "note": null }),
        ),
        (
            3,
            "connections",
            &mut truth.connections,
            json!({ "connection_id": Uuid::new_v4(), "service_id": service,
                    "need": "loneliness_isolation", "kind": "signposted" }),
        ),
    ] {
        if dice.below(one_in) == 0 {
            let on = decided + Duration::days(dice.below(30));
            dates.push(on);
            body["occurred_at"] = json!(noon(on));
            middle.push((path, body, false, noon(on)));
            latest = latest.max(on);
        }
    }
    middle.sort_by_key(|(_, _, _, at)| *at);
    facts.extend(middle);
    let closed = latest + Duration::days(1 + dice.below(20));
    if dice.below(5) != 0 && closed <= last_day() {
        truth.closed.push(closed);
        truth.episodes.push((decided, Some(closed)));
        facts.push((
            "closure",
            json!({ "reason": "goals_met", "note": null, "occurred_at": noon(closed) + Duration::hours(4) }),
            false,
            noon(closed) + Duration::hours(4),
        ));
    } else {
        truth.episodes.push((decided, None));
    }
    entered(dice, client, facts)
}

fn wemwbs(timepoint: &str, on: NaiveDate) -> Value {
    json!({
        "assessment_id": Uuid::new_v4(), "instrument": "wemwbs", "instrument_version": 1,
        "timepoint": timepoint, "mode": "self_completed",
        "answers": vec![if timepoint == "baseline" { 2 } else { 4 }; 14],
        "licensor_score": null, "administered_on": on
    })
}

/// When each fact is typed in: up to six weeks after it happened (inside the back-entry window),
/// never before the client's previous entry.
fn entered(
    dice: &mut Dice,
    client: Uuid,
    facts: Vec<(&'static str, Value, bool, DateTime<Utc>)>,
) -> Vec<Step> {
    let mut last = DateTime::<Utc>::MIN_UTC;
    facts
        .into_iter()
        .map(|(path, body, by_lead, happened)| {
            let entered = (happened + Duration::hours(1 + dice.below(42 * 24))).max(last);
            last = entered;
            Step {
                client,
                path,
                body,
                by_lead,
                happened,
                entered,
            }
        })
        .collect()
}

fn within(date: NaiveDate, (from, to): (NaiveDate, NaiveDate)) -> bool {
    from <= date && date <= to
}

fn count(dates: &[NaiveDate], period: (NaiveDate, NaiveDate)) -> i64 {
    dates.iter().filter(|d| within(**d, period)).count() as i64
}

/// The figures a report for `period` must give, from the cohort's own dates.
fn expected(truth: &Truth, period: (NaiveDate, NaiveDate)) -> Value {
    let (from, to) = period;
    json!({
        "referrals": count(&truth.received, period),
        "started": count(&truth.accepted, period),
        "active": truth.episodes.iter()
            .filter(|(a, c)| *a <= to && c.is_none_or(|c| c >= from))
            .count(),
        "attended": count(&truth.attended, period),
        "not_attended": count(&truth.not_attended, period),
        "contacts": count(&truth.contacts, period),
        "closed": count(&truth.closed, period),
        "wemwbs_paired": count(&truth.follow_ups, period),
        "gaps": count(&truth.gaps, period),
        "connections": count(&truth.connections, period),
    })
}

/// The same figures as a report gives them.
fn reported(outcomes: &OutcomeReport, gaps: &app::reports::GapReport) -> Value {
    let wemwbs = outcomes
        .measures
        .iter()
        .find(|m| m.measure == "wemwbs")
        .and_then(|m| m.paired)
        .unwrap_or(0);
    json!({
        "referrals": outcomes.referrals.total,
        "started": outcomes.episodes.started,
        "active": outcomes.episodes.active,
        "attended": outcomes.episodes.appointments_attended,
        "not_attended": outcomes.episodes.appointments_not_attended,
        "contacts": outcomes.episodes.contacts,
        "closed": outcomes.episodes.closed,
        "wemwbs_paired": wemwbs,
        "gaps": gaps.gaps.iter().filter_map(|g| g.count).sum::<i64>(),
        "connections": gaps.connections.iter().filter_map(|c| c.made).sum::<i64>(),
    })
}

/// Unsuppressed figures for one organisation under a rule version.
async fn figures(
    server: &TestServer,
    rules_version: i32,
    period: Option<(NaiveDate, NaiveDate)>,
) -> Value {
    let filter = ReportFilter {
        organisation_id: Some(server.people.lead.organisation_id),
        rules_version,
        from: period.map(|p| p.0),
        to: period.map(|p| p.1),
        ..ReportFilter::default()
    };
    let client = server.db.app_client().await;
    let outcomes = outcome_report(&client, &filter)
        .await
        .expect("the outcome figures");
    let gaps = app::reports::gap_report(&client, &filter)
        .await
        .expect("the gap figures");
    reported(&outcomes, &gaps)
}

fn quarters(year: i32) -> Vec<(NaiveDate, NaiveDate)> {
    [(1, 3, 31), (4, 6, 30), (7, 9, 30), (10, 12, 31)]
        .into_iter()
        .map(|(m, end_m, end_d)| (day(year, m, 1), day(year, end_m, end_d)))
        .collect()
}

async fn record(server: &TestServer, steps: Vec<Step>, clock: &app::Clock) {
    let people = &server.people;
    for step in steps {
        clock.set(step.entered);
        let who: &Person = if step.by_lead {
            &people.lead
        } else {
            &people.worker
        };
        let body = if step.path == "assignment" {
            json!({ "link_worker_id": people.worker.staff_id, "team_id": people.worker.team_id,
                    "occurred_at": step.happened })
        } else {
            step.body
        };
        server
            .ok(who, &client_path(step.client, step.path), body)
            .await;
    }
}

#[tokio::test]
async fn every_figure_for_a_year_its_quarters_and_all_time_counts_each_fact_on_its_own_date() {
    let clock = app::Clock::fixed(noon(day(2024, 11, 1)));
    let server = TestServer::start_with_clock(clock.clone()).await;
    let service = server.services[0];
    let mut dice = Dice(0x5eed_2025_c0de);
    let mut truth = Truth::default();
    let mut steps: Vec<Step> = (0..70)
        .flat_map(|_| journey(&mut dice, &mut truth, service))
        .collect();
    // Entered as the service types them up: by when each is entered, across everyone.
    steps.sort_by_key(|s| s.entered);
    assert!(
        steps
            .windows(2)
            .any(|w| w[0].happened > w[1].happened + Duration::days(7)),
        "the facts are recorded in an order unlike the order they happened"
    );
    record(&server, steps, &clock).await;
    server.catch_up().await;

    let year = (day(2025, 1, 1), day(2025, 12, 31));
    let mut periods = vec![year];
    periods.extend(quarters(2025));
    periods.push((day(2024, 11, 1), day(2026, 2, 28)));
    for period in &periods {
        let got = figures(&server, 3, Some(*period)).await;
        assert_eq!(got, expected(&truth, *period), "{period:?}");
    }
    // All time, with no period given, is everything.
    let all = figures(&server, 3, None).await;
    assert_eq!(all, expected(&truth, (NaiveDate::MIN, NaiveDate::MAX)));
    let year_figures = expected(&truth, year);
    assert!(
        year_figures["attended"].as_i64() > Some(50) && year_figures["active"].as_i64() > Some(40),
        "a cohort big enough to mean something: {year_figures:#}"
    );

    // Through the API, as the analyst reads it (every figure here is above the small-number
    // threshold, so none is suppressed).
    let reply = server
        .read(
            &server.people.analyst,
            "/api/v1/reports/outcomes?from=2025-01-01&to=2025-12-31",
        )
        .await;
    let episodes = &reply.body["episodes"];
    assert_eq!(reply.body["rules_version"], 3);
    assert_eq!(
        json!([
            reply.body["referrals"]["total"],
            episodes["started"],
            episodes["active"],
            episodes["appointments_attended"],
            episodes["appointments_not_attended"],
            episodes["contacts"],
            episodes["closed"]
        ]),
        json!([
            year_figures["referrals"],
            year_figures["started"],
            year_figures["active"],
            year_figures["attended"],
            year_figures["not_attended"],
            year_figures["contacts"],
            year_figures["closed"]
        ])
    );

    // The same log under rules v1 counts a year's appointments by when their episodes were
    // accepted: wrong for 2025 (which this test would catch), and kept reproducible.
    crate::support::catch_up(&server.store, crate::support::outcomes_under(1)).await;
    let old = figures(&server, 1, Some(year)).await;
    assert_ne!(old["attended"], year_figures["attended"], "{old:#}");
    assert_eq!(old["referrals"], year_figures["referrals"]);

    // Additive figures: any split of the year into two adjacent periods adds back up.
    let mut dice = Dice(0x0add_17e5);
    for _ in 0..12 {
        let split = year.0 + Duration::days(dice.below(364));
        let first = figures(&server, 3, Some((year.0, split))).await;
        let second = figures(&server, 3, Some((split + Duration::days(1), year.1))).await;
        let whole = figures(&server, 3, Some(year)).await;
        for (figure, total) in whole.as_object().expect("figures") {
            if figure == "active" {
                continue; // an episode open across the split is active in both halves
            }
            assert_eq!(
                first[figure].as_i64().unwrap_or(0) + second[figure].as_i64().unwrap_or(0),
                total.as_i64().unwrap_or(0),
                "{figure} split at {split}"
            );
        }
    }
}
