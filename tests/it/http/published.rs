//! Reproduce what was published, and explain the difference: a quarter's report taken at the
//! quarter's end; then late entries, corrections and a rule change; `known_at` gives the first
//! report back exactly, and the explained comparison puts each difference down to its cause.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::journey::client_path;
use super::{Reply, TestServer};

fn noon(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0)
        .single()
        .expect("a time")
}

/// Refers, accepts, assigns and books and keeps one appointment, each step entered the day after
/// it happened (the clock moved to match). Returns the client and the referral's event id.
async fn journey(
    server: &TestServer,
    clock: &app::Clock,
    received: NaiveDate,
    appointment_on: NaiveDate,
) -> Uuid {
    let people = &server.people;
    let (client, referral, appointment) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let at = |date: NaiveDate| {
        noon(2000, 1, 1) + (date - NaiveDate::from_ymd_opt(2000, 1, 1).expect("date"))
    };
    clock.set(at(received) + Duration::days(1));
    server
        .ok(
            &people.referrer,
            &client_path(client, "referrals"),
            json!({
                "client": { "personal": { "given_name": "Pat", "family_name": "Quarter", "date_of_birth": null,
                    "nhs_number": null, "phone": null, "email": null, "address": null, "postcode": null },
                    "area": "Wells" },
                "referral": { "referral_id": referral, "source": "gp",
                    "referrer": { "staff_id": null, "name": null, "organisation": null },
                    "reasons": ["loneliness_isolation"], "urgency": "routine", "received_on": received, "note": null }
            }),
        )
        .await;
    let accepted = at(received) + Duration::days(2);
    clock.set(accepted + Duration::days(1));
    server
        .ok(
            &people.lead,
            &client_path(client, "referral-acceptances"),
            json!({ "referral_id": referral, "occurred_at": accepted }),
        )
        .await;
    server
        .ok(
            &people.lead,
            &client_path(client, "assignment"),
            json!({ "link_worker_id": people.worker.staff_id, "team_id": people.worker.team_id,
                    "occurred_at": accepted }),
        )
        .await;
    server
        .ok(
            &people.worker,
            &client_path(client, "appointments"),
            json!({ "appointment_id": appointment, "scheduled_for": at(appointment_on), "mode": "phone",
                    "occurred_at": accepted }),
        )
        .await;
    clock.set(at(appointment_on) + Duration::days(1));
    server
        .ok(
            &people.worker,
            &client_path(client, "attendances"),
            json!({ "appointment_id": appointment, "occurred_at": at(appointment_on) }),
        )
        .await;
    client
}

pub(super) async fn log_now(server: &TestServer) -> DateTime<Utc> {
    testkit::query_value(&server.db.app_client().await, "SELECT now()", &[]).await
}

/// Asks until the answer is not "still being built", which must then be 200.
pub(super) async fn when_built(server: &TestServer, path: &str) -> Reply {
    for _ in 0..600 {
        let reply = server.get(&server.people.analyst, path).await;
        if reply.status != 409 {
            assert_eq!(reply.status, 200, "{path}: {:#}", reply.body);
            return reply;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} was never built");
}

/// Snapshot `id`'s report once built, with `query` (`?...`, or empty).
pub(super) async fn snapshot_report(
    server: &TestServer,
    id: impl std::fmt::Display,
    query: &str,
) -> Reply {
    when_built(
        server,
        &format!("/api/v1/reports/outcomes/snapshots/{id}/report{query}"),
    )
    .await
}

/// A report's figures, without what it is as of.
fn figures(mut report: Value) -> Value {
    if let Some(object) = report.as_object_mut() {
        object.remove("as_of");
    }
    report
}

fn day(m: u32, d: u32, y: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a date")
}

#[tokio::test]
async fn a_published_quarter_is_reproduced_and_its_difference_from_today_explained() {
    let clock = app::Clock::fixed(noon(2025, 12, 1));
    let server = TestServer::start_with_clock(clock.clone()).await;
    let analyst = server.people.analyst.clone();
    // Five people referred in December, seen in January; five referred in January, seen in
    // February.
    for k in 0..5 {
        journey(&server, &clock, day(12, 10 + k, 2025), day(1, 15 + k, 2026)).await;
    }
    let mut january = Vec::new();
    for k in 0..5 {
        january.push(journey(&server, &clock, day(1, 10 + k, 2026), day(2, 15 + k, 2026)).await);
    }
    server.catch_up().await;
    let quarter = "from=2026-01-01&to=2026-03-31";
    let published = server
        .read(&analyst, &format!("/api/v1/reports/outcomes?{quarter}"))
        .await;
    assert_eq!(published.body["rules_version"], 3);
    assert_eq!(published.body["referrals"]["total"], 5);
    assert_eq!(published.body["episodes"]["appointments_attended"], 10);
    let sent = log_now(&server).await;

    // After it was sent: six more people referred in February, entered in April; five of
    // January's referrals were self-referrals, not GP ones.
    for k in 0..6 {
        journey(&server, &clock, day(2, 1 + k, 2026), day(3, 20, 2026)).await;
    }
    clock.set(noon(2026, 4, 20));
    for client in &january {
        let referral = server.event_id(client, "ReferralReceived").await;
        server
            .ok(
                &server.people.lead,
                &client_path(*client, "corrections"),
                json!({ "corrects": referral, "corrected_fields": { "source": "self_referral" },
                        "reason": "the letter was the person's own" }),
            )
            .await;
    }
    server.catch_up().await;
    let today = server
        .get(&analyst, &format!("/api/v1/reports/outcomes?{quarter}"))
        .await;
    assert_eq!(today.body["referrals"]["total"], 11);
    assert_ne!(figures(today.body.clone()), figures(published.body.clone()));

    // Known at the moment it was sent, under the rules live then: the same report.
    let started = server.start_snapshot(&analyst, json!(sent)).await;
    assert_eq!(started["rules_version"], 3);
    let id = started["id"].as_str().expect("an id").to_owned();
    let again = snapshot_report(&server, &id, &format!("?{quarter}")).await;
    assert_eq!(again.body["snapshot"]["state"], "done");
    assert_eq!(
        figures(again.body["report"].clone()),
        figures(published.body.clone())
    );
    // Another organisation cannot read it; a moment to come cannot be asked for.
    let foreign = server
        .get(
            &server.people.foreign_lead,
            &format!("/api/v1/reports/outcomes/snapshots/{id}"),
        )
        .await;
    assert_eq!(foreign.status, 404);
    let future = server
        .post(
            &analyst,
            "/api/v1/reports/outcomes/snapshots",
            json!({ "known_at": log_now(&server).await + Duration::days(3) }),
        )
        .await;
    future.refused_at(400, "known_at");

    // As published (v3, known when sent) against now under rules v1, which count a quarter's
    // appointments through the episodes accepted in it: each difference by its cause.
    let started = server
        .post(
            &analyst,
            "/api/v1/reports/outcomes/explanations",
            json!({ "published_at": sent, "current_rules": 1 }),
        )
        .await;
    assert_eq!(started.status, 202, "{:#}", started.body);
    let id = started.body["id"].as_str().expect("an id").to_owned();
    let explained = when_built(
        &server,
        &format!("/api/v1/reports/outcomes/explanations/{id}?{quarter}"),
    )
    .await;
    assert_eq!(
        figures(explained.body["published"].clone()),
        figures(published.body.clone())
    );
    let differences = explained.body["differences"]
        .as_array()
        .expect("differences");
    let cause = |figure: &str| -> Value {
        let d = differences
            .iter()
            .find(|d| d["figure"] == figure)
            .unwrap_or_else(|| panic!("no {figure} among {differences:#?}"));
        json!([
            d["published"],
            d["now"],
            d["late_entries"],
            d["corrections"],
            d["rule_change"]
        ])
    };
    assert_eq!(cause("referrals.total"), json!([5.0, 11.0, 6.0, 0.0, 0.0]));
    // The five corrected sources move GP referrals back down; rules v1 count only assessment
    // corrections, so the move to v1 puts them back: a rule change, not a correction.
    assert_eq!(
        cause("referrals.by_source.gp.count"),
        json!([5.0, 11.0, 6.0, -5.0, 5.0])
    );
    // Under v1 the quarter's appointments are those of the eleven episodes accepted in it:
    // five in February and six in March; the December episodes' January ones drop out.
    assert_eq!(
        cause("episodes.appointments_attended"),
        json!([10.0, 11.0, 6.0, 0.0, -5.0])
    );
    // Every cause adds up to the difference it explains.
    for d in differences {
        if let (Some(a), Some(b), Some(late), Some(corrected), Some(rule)) = (
            d["published"].as_f64(),
            d["now"].as_f64(),
            d["late_entries"].as_f64(),
            d["corrections"].as_f64(),
            d["rule_change"].as_f64(),
        ) {
            assert!((a + late + corrected + rule - b).abs() < 1e-6, "{d:#}");
        }
    }
}
