//! Every fact on its own date: `occurred_at` on commands, the checks it is held to (not later
//! than now, not before what it follows, not older than the back-entry window without a team
//! lead's reason), and both times in the journey.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::journey::{assign, client_path, whole_journey};
use super::{Person, Reply, TestServer};

fn at(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, hour, 0, 0)
        .single()
        .expect("a valid time")
}

/// Now, for these tests: 15 June 2026, noon.
fn now() -> DateTime<Utc> {
    at(6, 15, 12)
}

fn referral_body(referral_id: Uuid, received_on: &str) -> Value {
    let name = ("Iris", "Pennock");
    super::journey::named_referral(name, "Wells", referral_id, "gp", json!(received_on))
}

#[track_caller]
fn refused(reply: &Reply, status: u16, field: &str) {
    assert_eq!(reply.status, status, "{:#}", reply.body);
    assert_eq!(reply.body["errors"][0]["field"], field, "{:#}", reply.body);
}

async fn journey(server: &TestServer, client: Uuid, query: &str) -> Value {
    whole_journey(server, client, &format!("&purpose=data_quality{query}"))
        .await
        .body
}

fn entry<'a>(journey: &'a Value, event_type: &str) -> &'a Value {
    journey["entries"]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["event_type"] == event_type))
        .unwrap_or_else(|| panic!("no {event_type} in {journey:#}"))
}

/// Refers someone received on `received_on` and returns (client, referral).
async fn referred(server: &TestServer, who: &Person, received_on: &str) -> (Uuid, Uuid) {
    let (client, referral) = (Uuid::new_v4(), Uuid::new_v4());
    server
        .ok(
            who,
            &client_path(client, "referrals"),
            referral_body(referral, received_on),
        )
        .await;
    (client, referral)
}

#[tokio::test]
async fn a_fact_is_recorded_when_it_happened_and_the_journey_shows_both_times() {
    let server = TestServer::start_with_clock(app::Clock::fixed(now())).await;
    let people = server.people.clone();
    let (client, referral) = referred(&server, &people.referrer, "2026-05-01").await;
    let accept =
        |occurred_at: Value| json!({ "referral_id": referral, "occurred_at": occurred_at });
    let path = client_path(client, "referral-acceptances");

    // Not later than now (beyond a few minutes' skew), not before the referral was received,
    // and a date and time it can read.
    for (body, status, field) in [
        (accept(json!("2026-06-15T12:30:00Z")), 422, "occurred_at"),
        (accept(json!("2026-04-30T16:00:00Z")), 422, "occurred_at"),
        (accept(json!("last Tuesday")), 400, "occurred_at"),
        (
            json!({ "referral_id": referral, "late_entry_reason": 7 }),
            400,
            "late_entry_reason",
        ),
    ] {
        let reply = server.post(&people.lead, &path, body).await;
        refused(&reply, status, field);
    }

    // Accepted on 4 May, entered on 15 June.
    let accepted = server
        .ok(
            &people.lead,
            &path,
            accept(json!("2026-05-04T09:30:00+01:00")),
        )
        .await;
    let positions: Vec<i64> = accepted.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["position"].as_i64().expect("a position"))
        .collect();
    assert_eq!(
        accepted.body["position"].as_i64(),
        positions.iter().max().copied()
    );
    assign(&server, client, &people.worker).await;

    let known = journey(&server, client, "").await;
    let acceptance = entry(&known, "ReferralAccepted");
    let occurred: DateTime<Utc> =
        serde_json::from_value(acceptance["occurred_at"].clone()).expect("occurred_at");
    let recorded: DateTime<Utc> =
        serde_json::from_value(acceptance["recorded_at"].clone()).expect("recorded_at");
    assert_eq!(occurred, at(5, 4, 8) + chrono::Duration::minutes(30));
    assert!(recorded > occurred, "recorded on the database's clock");
    // As it was on 3 May: referred, not yet accepted; on 5 May: open.
    let before = journey(&server, client, "&as_of=2026-05-03T00:00:00Z").await;
    assert_eq!(before["status"], "referred");
    let after = journey(&server, client, "&as_of=2026-05-05T00:00:00Z").await;
    assert_eq!(after["status"], "open");

    // A command dated by its own field takes no second date.
    let contact = server
        .post(
            &people.worker,
            &client_path(client, "contacts"),
            json!({ "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 15,
                    "contacted_at": "2026-05-06T10:00:00Z", "note": null,
                    "occurred_at": "2026-05-06T10:00:00Z" }),
        )
        .await;
    refused(&contact, 422, "occurred_at");

    // An attendance before the day the appointment was booked for.
    let appointment = Uuid::new_v4();
    server
        .ok(
            &people.worker,
            &client_path(client, "appointments"),
            json!({ "appointment_id": appointment, "scheduled_for": "2026-06-20T10:00:00Z",
                    "mode": "face_to_face", "occurred_at": "2026-06-01T10:00:00Z" }),
        )
        .await;
    let attended = server
        .post(
            &people.worker,
            &client_path(client, "attendances"),
            json!({ "appointment_id": appointment }),
        )
        .await;
    refused(&attended, 422, "occurred_at");

    // A closure before the acceptance; then on the day after.
    let close = |occurred_at: &str| json!({ "reason": "goals_met", "note": null, "occurred_at": occurred_at });
    let early_close = server
        .post(
            &people.worker,
            &client_path(client, "closure"),
            close("2026-05-03T10:00:00Z"),
        )
        .await;
    refused(&early_close, 422, "occurred_at");
    server
        .ok(
            &people.worker,
            &client_path(client, "closure"),
            close("2026-06-12T10:00:00Z"),
        )
        .await;
    let closed = journey(&server, client, "").await;
    assert_eq!(
        entry(&closed, "CaseClosed")["occurred_at"],
        "2026-06-12T10:00:00Z"
    );
}

#[tokio::test]
async fn facts_older_than_the_back_entry_window_take_a_team_lead_and_a_reason() {
    let server = TestServer::start_with_clock(app::Clock::fixed(now())).await;
    let people = server.people.clone();
    // 10 January is 156 days before 15 June; the window (projections/recording/v1.toml) is 93.
    let old = |referral: Uuid| referral_body(referral, "2026-01-10");
    let client = Uuid::new_v4();
    let path = client_path(client, "referrals");
    let by_referrer = server
        .post(&people.referrer, &path, old(Uuid::new_v4()))
        .await;
    refused(&by_referrer, 422, "referral.received_on");
    let mut with_reason = old(Uuid::new_v4());
    with_reason["late_entry_reason"] = json!("typed up from the January paper register");
    let by_worker = server
        .post(&people.worker, &path, with_reason.clone())
        .await;
    refused(&by_worker, 422, "late_entry_reason");
    let without_reason = server.post(&people.lead, &path, old(Uuid::new_v4())).await;
    refused(&without_reason, 422, "referral.received_on");

    let entered = server.ok(&people.lead, &path, with_reason).await;
    assert_eq!(entered.body["events"].as_array().map(Vec::len), Some(3));
    let known = journey(&server, client, "").await;
    let types = crate::support::texts(&known, "entries", "event_type");
    assert_eq!(
        types,
        ["LateEntryExplained", "ClientRegistered", "ReferralReceived"]
    );
    let explained = entry(&known, "LateEntryExplained");
    assert_eq!(
        explained["payload"]["reason"],
        "typed up from the January paper register"
    );
    assert_eq!(explained["occurred_at"], "2026-01-10T00:00:00Z");
    assert_eq!(explained["actor_role"], "team_lead");

    // Inside the window, anyone who may record it may back-date it.
    let (recent, referral) = referred(&server, &people.referrer, "2026-04-01").await;
    server
        .ok(
            &people.lead,
            &client_path(recent, "referral-acceptances"),
            json!({ "referral_id": referral, "occurred_at": "2026-04-02T09:00:00Z" }),
        )
        .await;
}

#[tokio::test]
async fn a_corrected_referral_reason_moves_the_referral_mix_by_one() {
    let server = TestServer::start_with_clock(app::Clock::fixed(now())).await;
    let people = server.people.clone();
    let mut first = None;
    for (k, reason) in ["loneliness_isolation"; 6]
        .into_iter()
        .chain(["housing"; 5])
        .enumerate()
    {
        let (client, referral) = (Uuid::new_v4(), Uuid::new_v4());
        let mut body = referral_body(referral, "2026-06-01");
        body["referral"]["reasons"] = json!([reason]);
        server
            .ok(&people.referrer, &client_path(client, "referrals"), body)
            .await;
        if k == 0 {
            first = Some(client);
        }
    }
    let client = first.expect("a referral");
    let mix = |report: &Value| -> Vec<(String, Value)> {
        report["referrals"]["by_reason"]
            .as_array()
            .expect("by reason")
            .iter()
            .map(|s| {
                (
                    s["code"].as_str().unwrap_or("").to_owned(),
                    s["count"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        mix(&server.caught_up_outcomes().await),
        [
            ("loneliness_isolation".to_owned(), json!(6)),
            ("housing".to_owned(), json!(5))
        ]
    );
    let received = server.event_id(&client, "ReferralReceived").await;
    // Refused as the referral could not have been recorded: no reason at all.
    let empty = server
        .post(
            &people.lead,
            &client_path(client, "corrections"),
            json!({ "corrects": received, "corrected_fields": { "reasons": [] },
                    "reason": "wrong reason" }),
        )
        .await;
    refused(&empty, 422, "corrected_fields.reasons");
    let corrected = server
        .ok(
            &people.lead,
            &client_path(client, "corrections"),
            json!({ "corrects": received, "corrected_fields": { "reasons": ["housing"] },
                    "reason": "the GP's letter was about her housing" }),
        )
        .await;
    assert!(corrected.body["position"].as_i64() > Some(0));
    let after = server.caught_up_outcomes().await;
    assert_eq!(
        mix(&after),
        [
            ("housing".to_owned(), json!(6)),
            ("loneliness_isolation".to_owned(), json!(5))
        ]
    );
    assert_eq!(after["referrals"]["total"], 11);
}
