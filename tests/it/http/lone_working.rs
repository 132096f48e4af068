//! Lone working on home visits over HTTP, against the real database and the service's clock: a
//! plan for a booked home visit (sealed at rest), its check-in, the team lead's `missed_check_in`
//! flag once the check-in time has passed by the clock with no check-in (and gone with the
//! check-in), the plan's refusals by field, another organisation kept out, and the address note
//! unreadable after the person's erasure.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::console::{get, sign_in};
use super::journey::{client_path, open_case};
use super::{Person, TestServer};

const ADDRESS: &str = "Flat 2, side door; buzzer broken zq5lw";
const RISKS: &str = "Large dog, usually shut in the kitchen zq6lw";

/// The flags of `client` on a caseload page.
fn flags(page: &Value, client: Uuid) -> Vec<Value> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["client_id"] == json!(client))
        .and_then(|i| i["flags"].as_array().cloned())
        .expect("the case is on the caseload")
}

/// Whether `client` carries the `missed_check_in` flag on the caseload at `path`, as `who`
/// reads it.
async fn missed_on(server: &TestServer, who: &Person, path: &str, client: Uuid) -> bool {
    let page = server.read(who, path).await.body;
    flags(&page, client).contains(&json!("missed_check_in"))
}

/// A server on a clock fixed at the start of a minute, with an open case.
async fn fixture() -> (app::Clock, TestServer, Uuid) {
    let start = Utc::now()
        .duration_trunc(Duration::minutes(1))
        .expect("a minute");
    let clock = app::Clock::fixed(start);
    let server = TestServer::start_with_clock(clock.clone()).await;
    let client = open_case(&server).await;
    (clock, server, client)
}

/// Books an appointment on `client`'s case at `at` in each of `modes`; their ids, in order.
async fn book<const N: usize>(
    server: &TestServer,
    client: Uuid,
    at: DateTime<Utc>,
    modes: [&str; N],
) -> [Uuid; N] {
    let ids = modes.map(|_| Uuid::new_v4());
    for (id, mode) in ids.iter().zip(modes) {
        server
            .ok(
                &server.people.worker,
                &client_path(client, "appointments"),
                json!({ "appointment_id": id, "scheduled_for": at.to_rfc3339(), "mode": mode }),
            )
            .await;
    }
    ids
}

#[tokio::test]
async fn a_missed_check_in_is_flagged_until_it_comes_and_the_plan_goes_with_erasure() {
    let (clock, server, client) = fixture().await;
    let people = &server.people;
    let at = clock.now() + Duration::hours(3);
    let [visit, call] = book(&server, client, at, ["home_visit", "phone"]).await;
    let check_in_by = at + Duration::hours(1);
    let plan = |appointment: Uuid, buddy: Uuid| {
        json!({
            "appointment_id": appointment, "address_note": ADDRESS,
            "check_in_by": check_in_by.to_rfc3339(), "buddy_staff_id": buddy,
            "known_risks": RISKS
        })
    };
    let lead = people.lead.staff_id;
    let path = client_path(client, "lone-working-plans");

    // Refused by field: not a home visit, oneself as buddy, a buddy of another organisation
    // or not a person of the service, a check-in before the visit.
    let refused = |reply: &super::Reply, field: &str| {
        reply.refused_at(422, field);
    };
    refused(
        &server.post(&people.worker, &path, plan(call, lead)).await,
        "appointment_id",
    );
    refused(
        &server
            .post(&people.worker, &path, plan(visit, people.worker.staff_id))
            .await,
        "buddy_staff_id",
    );
    refused(
        &server
            .post(
                &people.worker,
                &path,
                plan(visit, people.foreign_worker.staff_id),
            )
            .await,
        "buddy_staff_id",
    );
    // Nor a practice's system (a credential: nobody to act if the check-in does not come).
    refused(
        &server
            .post(&people.worker, &path, plan(visit, people.practice.staff_id))
            .await,
        "buddy_staff_id",
    );
    let mut early = plan(visit, lead);
    early["check_in_by"] = json!((at - Duration::minutes(5)).to_rfc3339());
    refused(
        &server.post(&people.worker, &path, early).await,
        "check_in_by",
    );
    // Another organisation hears of no such record.
    let foreign = server
        .post(
            &people.foreign_worker,
            &path,
            plan(visit, people.foreign_lead.staff_id),
        )
        .await;
    assert_eq!(foreign.status, 404, "{:#}", foreign.body);

    server.ok(&people.worker, &path, plan(visit, lead)).await;
    let again = server.post(&people.worker, &path, plan(visit, lead)).await;
    refused(&again, "appointment_id");

    // Sealed at rest.
    let stored: Value = testkit::query_value(
        &server.db.admin_client().await,
        "SELECT payload FROM events WHERE stream_id = $1 AND event_type = 'LoneWorkingPlanRecorded'",
        &[&client],
    )
    .await;
    assert!(
        stored["address_note"][eventstore::SEALED].is_string(),
        "{stored:#}"
    );
    assert!(
        stored["known_risks"][eventstore::SEALED].is_string(),
        "{stored:#}"
    );
    for (table, text) in crate::privacy::every_table(&server).await {
        assert!(
            !text.contains("zq5lw") && !text.contains("zq6lw"),
            "readable in {table}"
        );
    }

    // Before the check-in time: no flag. The record shows the plan.
    server.catch_up().await;
    let team = format!(
        "/api/v1/teams/{}/caseload",
        people.lead.team_id.expect("a team")
    );
    assert!(!missed_on(&server, &people.lead, &team, client).await);
    let record = server
        .read(&people.worker, &client_path(client, ""))
        .await
        .body;
    let plans = record["lone_working"].as_array().expect("plans");
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0]["address_note"], ADDRESS);
    assert_eq!(plans[0]["known_risks"], RISKS);
    assert_eq!(plans[0]["buddy_staff_id"], json!(lead));
    assert_eq!(plans[0]["check_in_missed"], false);

    // At the check-in time exactly it is not yet missed; a minute after, it is, on the team
    // lead's caseload and the worker's.
    clock.set(check_in_by);
    assert!(!missed_on(&server, &people.lead, &team, client).await);
    clock.set(check_in_by + Duration::minutes(1));
    assert!(missed_on(&server, &people.lead, &team, client).await);
    assert!(missed_on(&server, &people.worker, "/api/v1/caseload", client).await);
    let record = server
        .read(&people.lead, &client_path(client, ""))
        .await
        .body;
    assert_eq!(record["lone_working"][0]["check_in_missed"], true);
    // The person's page in the console says so.
    let session = sign_in(&server, &people.lead).await;
    let (status, page) = get(&server, &session, &format!("/console/people/{client}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Check-in missed"), "{page}");
    assert!(page.contains("zq5lw"), "the address note on the page");

    // The check-in, once: the flag goes.
    let check_ins = client_path(client, "lone-working-check-ins");
    let check_in = |appointment: Uuid| {
        let body = json!({ "appointment_id": appointment });
        server.post(&people.worker, &check_ins, body)
    };
    refused(&check_in(call).await, "appointment_id");
    let first = check_in(visit).await;
    assert_eq!(first.status, 201, "{:#}", first.body);
    refused(&check_in(visit).await, "appointment_id");
    server.catch_up().await;
    assert!(!missed_on(&server, &people.lead, &team, client).await);
    let record = server
        .read(&people.worker, &client_path(client, ""))
        .await
        .body;
    assert_eq!(record["lone_working"][0]["check_in_missed"], false);
    assert!(record["lone_working"][0]["checked_in_at"].is_string());

    // Erased with the person: the plan stays, unreadable.
    server
        .ok(
            &people.admin,
            &client_path(client, "erasure"),
            json!({ "reason": "erasure request ref 31" }),
        )
        .await;
    let erased = server
        .read(&people.auditor, &client_path(client, ""))
        .await
        .body;
    assert_eq!(erased["lone_working"][0]["address_note"], domain::ERASED);
    assert_eq!(erased["lone_working"][0]["known_risks"], domain::ERASED);
    let journey = server
        .read(
            &people.auditor,
            &format!("{}?limit=500", client_path(client, "journey")),
        )
        .await;
    let text = journey.body.to_string();
    assert!(
        !text.contains("zq5lw") && !text.contains("zq6lw"),
        "in the journey"
    );
}

#[tokio::test]
async fn a_cancelled_visit_leaves_no_check_in_to_miss() {
    let (clock, server, client) = fixture().await;
    let people = &server.people;
    let at = clock.now() + Duration::hours(1);
    let [visit] = book(&server, client, at, ["home_visit"]).await;
    server
        .ok(
            &people.worker,
            &client_path(client, "lone-working-plans"),
            json!({
                "appointment_id": visit, "address_note": ADDRESS,
                "check_in_by": (at + Duration::hours(1)).to_rfc3339(),
                "buddy_staff_id": people.lead.staff_id, "known_risks": null
            }),
        )
        .await;
    server
        .ok(
            &people.worker,
            &client_path(client, "appointment-cancellations"),
            json!({ "appointment_id": visit, "cancelled_by": "client", "note": null }),
        )
        .await;
    server.catch_up().await;
    clock.set(at + Duration::days(1));
    let team = format!(
        "/api/v1/teams/{}/caseload",
        people.lead.team_id.expect("a team")
    );
    assert!(!missed_on(&server, &people.lead, &team, client).await);
    // Nor on the person's record: the plan says its visit was cancelled.
    let record = server
        .read(&people.worker, &format!("/api/v1/clients/{client}"))
        .await
        .body;
    let plan = &record["lone_working"][0];
    assert_eq!(plan["visit_cancelled"], true, "{record:#}");
    assert_eq!(plan["check_in_missed"], false, "{record:#}");
}

/// The person's page records a home visit's lone-working plan and its check-in through the
/// same commands as the API: a link to a plan for each home visit without one, the form's
/// refusal at its field with what was typed kept, then the check-in button; axe clean.
#[tokio::test]
async fn a_link_worker_records_a_lone_working_plan_and_the_check_in_in_the_console() {
    let (clock, server, client) = fixture().await;
    let people = &server.people;
    let at = clock.now() + Duration::hours(3);
    let [visit, _] = book(&server, client, at, ["home_visit", "phone"]).await;
    let browser = super::console::signed_in_browser(&server, &people.worker).await;
    let person = format!("/console/people/{client}");
    browser.goto(&format!("{}{person}", server.base)).await;
    // A plan for the home visit only: the phone call has no link.
    let links = browser.texts("#lone-working ~ p a").await;
    assert_eq!(
        links
            .iter()
            .filter(|t| t.starts_with("Record a lone-working plan"))
            .count(),
        1,
        "{links:?}"
    );
    browser.click_and_wait(&format!("#plan-{visit}")).await;
    assert_eq!(
        browser.path().await,
        format!("{person}/lone-working?appointment_id={visit}")
    );
    browser
        .assert_accessible("the lone-working plan form")
        .await;

    // No buddy chosen, and the address left blank: each at its field, the risks kept.
    browser.click("#known_risks").await;
    browser.press(RISKS).await;
    browser.click_and_wait("#record-plan").await;
    assert!(
        browser
            .text("#buddy_staff_id-error")
            .await
            .contains("Select the colleague"),
    );
    browser
        .assert_accessible("a lone-working plan refused")
        .await;
    browser
        .select("#buddy_staff_id", &people.lead.staff_id.to_string())
        .await;
    browser.click_and_wait("#record-plan").await;
    assert!(
        browser
            .text("#address_note-error")
            .await
            .contains("Say where the visit is"),
        "{}",
        browser.text("#address_note-error").await
    );
    assert!(browser.text("#known_risks").await.contains("Large dog"));

    browser.click("#address_note").await;
    browser.press(ADDRESS).await;
    browser.click_and_wait("#record-plan").await;
    assert_eq!(
        browser.path().await,
        format!("{person}?done=lone_working_plan")
    );
    assert_eq!(
        super::console::banner(&browser).await,
        "Lone-working plan recorded"
    );
    let section = browser.text("#lone-working ~ .nhsuk-card").await;
    assert!(section.contains(ADDRESS), "{section}");
    assert!(section.contains("Known risks: Large dog"), "{section}");
    assert_eq!(browser.text(".buddy").await, "Buddy: Lena Lead");
    browser
        .assert_accessible("the person's page with a plan")
        .await;

    // Before the visit starts there is no check-in to record: the page says when it can be,
    // and the service refuses one sent anyway (which would switch off the missed check-in
    // for the real visit), naming its time.
    assert!(
        browser
            .text(".check-in-later")
            .await
            .contains("once you are safely out of it")
    );
    assert!(
        browser
            .texts(&format!("#check-in-{visit}"))
            .await
            .is_empty()
    );
    server
        .post(
            &people.worker,
            &client_path(client, "lone-working-check-ins"),
            json!({ "appointment_id": visit }),
        )
        .await
        .refused_at(422, "occurred_at");

    // The check-in, once the visit has started.
    clock.set(at + Duration::minutes(40));
    browser.goto(&format!("{}{person}", server.base)).await;
    browser.click_and_wait(&format!("#check-in-{visit}")).await;
    assert_eq!(browser.path().await, format!("{person}?done=checked_in"));
    assert_eq!(super::console::banner(&browser).await, "Check-in recorded");
    assert!(
        browser
            .text("#lone-working ~ .nhsuk-card")
            .await
            .contains("Checked in")
    );
    browser
        .assert_accessible("the person's page after the check-in")
        .await;

    // The record says what the forms did: the plan (check-in 90 minutes after the visit, the
    // lead as buddy) and its check-in.
    let record = server
        .read(&people.worker, &format!("/api/v1/clients/{client}"))
        .await;
    let plan = &record.body["lone_working"][0];
    assert_eq!(plan["address_note"], ADDRESS, "{plan:#}");
    assert_eq!(plan["buddy_staff_id"], json!(people.lead.staff_id));
    let check_in_by: chrono::DateTime<Utc> =
        serde_json::from_value(plan["check_in_by"].clone()).expect("a time");
    assert_eq!(check_in_by, at + Duration::minutes(90));
    assert!(plan["checked_in_at"].is_string(), "{plan:#}");
    server.stop().await;
}
