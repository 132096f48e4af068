//! A client's journey through the API, and the command guarantees (idempotency, If-Match, dates).

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Person, Reply, TestServer};

pub fn client_path(client: Uuid, what: &str) -> String {
    if what.is_empty() {
        format!("/api/v1/clients/{client}")
    } else {
        format!("/api/v1/clients/{client}/{what}")
    }
}

pub fn days_ago(days: i64) -> String {
    (Utc::now() - Duration::days(days)).date_naive().to_string()
}

/// A referral (from `source`) of someone new, Maggie Thornbury, with an NHS number of her own
/// made from `referral_id` (a number the organisation holds already is that record's).
pub fn intake(referral_id: Uuid, source: &str) -> Value {
    json!({
        "client": {
            "personal": {
                "given_name": "Maggie", "family_name": "Thornbury",
                "date_of_birth": "1948-05-02", "nhs_number": crate::support::nhs_number_for(referral_id),
                "phone": "01373 000000", "email": null, "address": "3 Vicarage St", "postcode": "BA11 1PX"
            },
            "area": "Frome"
        },
        "referral": {
            "referral_id": referral_id, "source": source,
            "referrer": { "staff_id": null, "name": null, "organisation": null },
            "reasons": ["loneliness_isolation", "mental_wellbeing"], "urgency": "routine",
            "received_on": days_ago(30), "note": "Lives alone since her husband died."
        }
    })
}

/// A referral for loneliness of someone new known only by `name` (given, family), living in
/// `area`, from `source`, received on `received_on`, with no note.
pub fn named_referral(
    name: (&str, &str),
    area: &str,
    referral_id: Uuid,
    source: &str,
    received_on: Value,
) -> Value {
    json!({
        "client": {
            "personal": {
                "given_name": name.0, "family_name": name.1, "date_of_birth": null,
                "nhs_number": null, "phone": null, "email": null, "address": null, "postcode": null
            },
            "area": area
        },
        "referral": {
            "referral_id": referral_id, "source": source,
            "referrer": { "staff_id": null, "name": null, "organisation": null },
            "reasons": ["loneliness_isolation"], "urgency": "routine",
            "received_on": received_on, "note": null
        }
    })
}

pub fn wemwbs(timepoint: &str, answer: i32, days: i64) -> Value {
    json!({
        "assessment_id": Uuid::new_v4(), "instrument": "wemwbs", "instrument_version": 1,
        "timepoint": timepoint, "mode": "self_completed", "answers": vec![answer; 14],
        "licensor_score": null, "administered_on": days_ago(days)
    })
}

/// Refers a new client, accepts and assigns them to the lead's first worker; returns the id.
pub async fn open_case(server: &TestServer) -> Uuid {
    let client = accepted_case(server).await;
    assign(server, client, &server.people.worker).await;
    client
}

/// A GP referral, accepted by the team lead, not yet assigned.
pub async fn accepted_case(server: &TestServer) -> Uuid {
    let people = &server.people;
    accepted_case_by(server, (&people.referrer, &people.lead), "gp").await
}

/// A new client referred from `source` by the first of `by` and accepted by the second (a
/// lead), not yet assigned.
pub async fn accepted_case_by(server: &TestServer, by: (&Person, &Person), source: &str) -> Uuid {
    let client = Uuid::new_v4();
    let referral = Uuid::new_v4();
    refer_and_accept(server, by, client, referral, intake(referral, source)).await;
    client
}

/// `who` refers a new client (a self-referral); the client's id and the reply.
pub async fn refer_new(server: &TestServer, who: &Person) -> (Uuid, Reply) {
    let client = Uuid::new_v4();
    let reply = server
        .ok(
            who,
            &client_path(client, "referrals"),
            intake(Uuid::new_v4(), "self_referral"),
        )
        .await;
    (client, reply)
}

/// The auditor's read of `client`'s whole journey (500 entries at most), with `query` (`&`
/// and more parameters) added; insists on 200.
pub async fn whole_journey(server: &TestServer, client: Uuid, query: &str) -> Reply {
    let path = format!("{}?limit=500{query}", client_path(client, "journey"));
    server.read(&server.people.auditor, &path).await
}

/// The referrer refers a new person from a GP; the client and referral ids.
pub async fn referred(server: &TestServer) -> (Uuid, Uuid) {
    let (client, referral) = (Uuid::new_v4(), Uuid::new_v4());
    server
        .ok(
            &server.people.referrer,
            &client_path(client, "referrals"),
            intake(referral, "gp"),
        )
        .await;
    (client, referral)
}

/// `who` refers a new client with `body`; the reply, whatever its status.
pub async fn refer(server: &TestServer, who: &Person, body: Value) -> Reply {
    server
        .post(who, &client_path(Uuid::new_v4(), "referrals"), body)
        .await
}

/// Refers `client` with `body` as the first of `by` and has the second (a lead) accept
/// `referral`; returns the referral's reply.
pub async fn refer_and_accept(
    server: &TestServer,
    by: (&Person, &Person),
    client: Uuid,
    referral: Uuid,
    body: Value,
) -> Reply {
    let (referrer, lead) = by;
    let referred = server
        .ok(referrer, &client_path(client, "referrals"), body)
        .await;
    accept(server, lead, client, referral).await;
    referred
}

/// `who` records the client's consent to `scope` (naming no services).
pub async fn consent(server: &TestServer, who: &Person, client: Uuid, scope: &str) {
    server
        .ok(
            who,
            &client_path(client, "consents"),
            json!({ "scope": scope, "services": [] }),
        )
        .await;
}

/// `lead` accepts `referral` for `client`.
pub async fn accept(server: &TestServer, lead: &Person, client: Uuid, referral: Uuid) {
    server
        .ok(
            lead,
            &client_path(client, "referral-acceptances"),
            json!({ "referral_id": referral }),
        )
        .await;
}

/// The team lead assigns `client` to `worker`.
pub async fn assign(server: &TestServer, client: Uuid, worker: &Person) -> Reply {
    assign_by(server, &server.people.lead, client, worker).await
}

/// `lead` assigns `client` to `worker`.
pub async fn assign_by(server: &TestServer, lead: &Person, client: Uuid, worker: &Person) -> Reply {
    server
        .ok(
            lead,
            &client_path(client, "assignment"),
            json!({ "link_worker_id": worker.staff_id, "team_id": worker.team_id }),
        )
        .await
}

#[tokio::test]
async fn a_whole_journey_through_the_api() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let (worker, lead, auditor) = (&people.worker, &people.lead, &people.auditor);
    let client = Uuid::new_v4();
    let path = |what: &str| client_path(client, what);

    // Self-referral, taken by a link worker at the single point of access.
    let referral = Uuid::new_v4();
    let first = server
        .ok(
            worker,
            &path("referrals"),
            intake(referral, "self_referral"),
        )
        .await;
    assert_eq!(first.body["stream_version"], 2, "registered and referred");
    assert_eq!(first.header("etag"), Some("\"2\""));
    accept(&server, lead, client, referral).await;
    assign(&server, client, worker).await;
    consent(&server, worker, client, "share_with_onward_services").await;
    for days in [25, 10] {
        server
            .ok(
                worker,
                &path("contacts"),
                json!({ "contact_id": Uuid::new_v4(), "mode": "face_to_face", "minutes": 45,
                        "contacted_at": (Utc::now() - Duration::days(days)).to_rfc3339(), "note": null }),
            )
            .await;
    }
    server
        .ok(
            worker,
            &path("what-matters"),
            json!({ "text": "Getting out of the house again." }),
        )
        .await;
    server
        .ok(worker, &path("assessments"), wemwbs("baseline", 2, 30))
        .await;
    let mut connections = Vec::new();
    for (need, outcome) in [
        ("loneliness_isolation", "engaged"),
        ("mental_wellbeing", "waiting_list"),
    ] {
        let connection = Uuid::new_v4();
        server
            .ok(
                worker,
                &path("connections"),
                json!({ "connection_id": connection, "service_id": server.services[0], "need": need, "kind": "referred" }),
            )
            .await;
        let waiting = (outcome == "waiting_list").then_some(12);
        server
            .ok(
                worker,
                &path("connection-outcomes"),
                json!({ "connection_id": connection, "outcome": outcome, "waiting_weeks": waiting }),
            )
            .await;
        connections.push(connection);
    }
    server
        .ok(
            worker,
            &path("service-gaps"),
            json!({ "gap_id": Uuid::new_v4(), "need": "physical_activity", "area": "Frome",
                    "reason": "no_service_exists", "note": "No chair-based exercise nearby." }),
        )
        .await;
    let follow_up = server
        .ok(worker, &path("assessments"), wemwbs("follow_up", 4, 1))
        .await;
    let wrong = follow_up.body["events"][0]["event_id"].clone();
    server
        .ok(
            worker,
            &path("corrections"),
            json!({ "corrects": wrong, "corrected_fields": { "mode": "assisted" }, "reason": "read the items aloud" }),
        )
        .await;
    let closed = server
        .ok(
            worker,
            &path("closure"),
            json!({ "reason": "goals_met", "note": null }),
        )
        .await;
    assert_eq!(closed.body["stream_version"], 17);

    // The auditor replays it.
    let journey = server
        .read(
            auditor,
            &format!("{}?limit=500&purpose=audit", path("journey")),
        )
        .await;
    assert_eq!(journey.body["status"], "closed");
    let entries = journey.body["entries"].as_array().expect("entries");
    let corrected = entries
        .iter()
        .find(|e| e["event_id"] == wrong)
        .expect("the corrected entry");
    assert_eq!(
        corrected["payload"]["mode"], "self_completed",
        "the original stays"
    );
    assert_eq!(corrected["corrected_payload"]["mode"], "assisted");
    let summary: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{} by {}",
                e["event_type"].as_str().unwrap_or("?"),
                e["actor_role"].as_str().unwrap_or("?")
            )
        })
        .collect();
    insta::assert_yaml_snapshot!("journey_over_http", summary);

    // Pages of the journey join up to the whole.
    let mut paged = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let url = match cursor {
            Some(c) => format!("{}?limit=5&cursor={c}", path("journey")),
            None => format!("{}?limit=5", path("journey")),
        };
        let page = server.get(auditor, &url).await;
        paged.extend(
            page.body["entries"]
                .as_array()
                .expect("entries")
                .iter()
                .map(|e| e["event_id"].clone()),
        );
        match page.body["next_cursor"].as_i64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let whole: Vec<Value> = entries.iter().map(|e| e["event_id"].clone()).collect();
    assert_eq!(paged, whole);

    // The record, with what the case adds up to.
    let record = server.read(worker, &path("")).await;
    assert_eq!(record.body["status"], "closed");
    assert_eq!(record.body["personal"]["family_name"], "Thornbury");
    assert_eq!(record.body["connections"], 2);
    assert_eq!(record.body["contacts"], 2);
    assert_eq!(record.body["referrals"][0]["status"], "accepted");
    assert_eq!(record.header("etag"), Some("\"17\""));

    // The reporting analyst sees the figures, and nothing personal.
    let report = server.caught_up_outcomes().await;
    assert_eq!(report["rules_version"], 3, "a new installation's rules");
    // One person is too few to publish: every count of them is suppressed, the codes stay.
    assert_eq!(report["referrals"]["total"], Value::Null);
    assert_eq!(
        report["referrals"]["by_source"][0],
        json!({ "code": "self_referral", "count": null, "percent": null, "suppressed": true })
    );
    assert_eq!(
        report["episodes"]["closed_by_reason"][0]["code"],
        "goals_met"
    );
    let wemwbs = &report["measures"][0];
    assert_eq!(wemwbs["measure"], "wemwbs");
    assert_eq!(wemwbs["paired"], Value::Null);
    assert_eq!(wemwbs["mean_change"], Value::Null, "{wemwbs:#}");
    assert_eq!(report["suppression"]["below"], 5);
    // Unpublished, the figures are there: 28 to 56 is an improvement.
    let of_the_organisation = crate::support::under_v3(Some(people.analyst.organisation_id));
    let figures = app::reports::outcome_report(&server.db.app_client().await, &of_the_organisation)
        .await
        .expect("the figures");
    assert_eq!(figures.referrals.total, Some(1));
    let wemwbs = &figures.measures[0];
    assert_eq!(
        (wemwbs.measure.as_str(), wemwbs.paired, wemwbs.improved),
        ("wemwbs", Some(1), Some(1)),
        "28 to 56 is an improvement"
    );
    assert!(!report.to_string().contains("Thornbury"));
    let gaps = server
        .get(&people.analyst, "/api/v1/reports/service-gaps")
        .await;
    assert_eq!(gaps.body["gaps"][0]["need"], "physical_activity");
    assert_eq!(gaps.body["connections"].as_array().map(Vec::len), Some(2));
    let outcomes = "/api/v1/reports/outcomes?rules=7";
    server.get_refused(&people.analyst, outcomes, "rules").await;
    let same = server
        .get(
            &people.analyst,
            "/api/v1/reports/outcomes/comparison?a=3&b=3",
        )
        .await;
    assert_eq!(same.body["differences"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn a_retried_command_returns_the_first_response_and_writes_nothing() {
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    let client = open_case(&server).await;
    let path = client_path(client, "contacts");
    let body = json!({ "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 20,
                       "contacted_at": Utc::now().to_rfc3339(), "note": null });
    let key = [("Idempotency-Key", "contact-1")];
    let first = server
        .call(Some(&worker), "POST", &path, Some(&body), &key)
        .await;
    assert_eq!(first.status, 201);
    let again = server
        .call(Some(&worker), "POST", &path, Some(&body), &key)
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body, "the first response, again");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.header("idempotent-replayed"), None);
    let version = server.store.stream_version(client).await.expect("version");
    assert_eq!(
        version,
        first.body["stream_version"].as_i64().expect("a version")
    );

    // The same key for another request is refused, naming the header.
    let other = json!({ "contact_id": Uuid::new_v4(), "mode": "video", "minutes": 5,
                        "contacted_at": Utc::now().to_rfc3339(), "note": null });
    let reused = server
        .call(Some(&worker), "POST", &path, Some(&other), &key)
        .await;
    assert_eq!(reused.status, 422);
    assert_eq!(reused.body["rule"], "idempotency_key_reused");
    assert_eq!(reused.body["errors"][0]["field"], "header.Idempotency-Key");
    // From another organisation, the used key tells nothing: the record is not there.
    let foreign = server.people.foreign_worker.clone();
    for body in [&body, &other] {
        let probe = server
            .call(Some(&foreign), "POST", &path, Some(body), &key)
            .await;
        assert_eq!(probe.status, 404, "{:#}", probe.body);
    }
    assert_eq!(
        server.store.stream_version(client).await.expect("version"),
        version
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stale_if_match_is_a_conflict_with_the_current_version() {
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    let client = open_case(&server).await;
    let record = server.get(&worker, &client_path(client, "")).await;
    let etag = record.header("etag").expect("an etag").to_owned();
    let contact = || {
        json!({ "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 20,
                "contacted_at": Utc::now().to_rfc3339(), "note": null })
    };
    let path = client_path(client, "contacts");
    let post_if_match = async |if_match: &str| {
        server
            .call(
                Some(&worker),
                "POST",
                &path,
                Some(&contact()),
                &[("If-Match", if_match)],
            )
            .await
    };
    let fresh = post_if_match(&etag).await;
    assert_eq!(fresh.status, 201, "{:#}", fresh.body);
    let stale = post_if_match(&etag).await;
    assert_eq!(stale.status, 409, "{:#}", stale.body);
    assert_eq!(stale.body["current_version"], fresh.body["stream_version"]);
    assert_eq!(
        server.store.stream_version(client).await.expect("version"),
        fresh.body["stream_version"].as_i64().expect("a version"),
        "nothing written"
    );
    let garbage = post_if_match("yesterday").await;
    garbage.refused_at(400, "header.If-Match");
    server.stop().await;
}

#[tokio::test]
async fn dates_that_cannot_be_in_the_future_are_refused() {
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    let client = open_case(&server).await;
    let tomorrow = (Utc::now() + Duration::days(1)).to_rfc3339();
    let contact = server
        .post(
            &worker,
            &client_path(client, "contacts"),
            json!({ "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 20, "contacted_at": tomorrow, "note": null }),
        )
        .await;
    contact.refused_at(422, "contacted_at");
    let mut referral = intake(Uuid::new_v4(), "gp");
    referral["referral"]["received_on"] = json!(days_ago(-3));
    let refused = refer(&server, &server.people.referrer, referral).await;
    refused.refused_at(422, "referral.received_on");
    // An appointment may be booked ahead.
    let booked = server
        .post(
            &worker,
            &client_path(client, "appointments"),
            json!({ "appointment_id": Uuid::new_v4(), "scheduled_for": tomorrow, "mode": "phone" }),
        )
        .await;
    assert_eq!(booked.status, 201);
    server.stop().await;
}

#[tokio::test]
async fn every_read_of_a_record_is_audited_and_auditors_see_who_read() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let client = open_case(&server).await;
    let record = server
        .read(
            &people.worker,
            &format!("{}?purpose=direct_care", client_path(client, "")),
        )
        .await;
    let journey = server
        .read(&people.auditor, &client_path(client, "journey"))
        .await;
    // A refused read is not a read.
    let refused = server
        .get(&people.other_worker, &client_path(client, ""))
        .await;
    assert_eq!(refused.status, 403);

    let reads = server
        .read(
            &people.auditor,
            &format!("{}?purpose=audit", client_path(client, "reads")),
        )
        .await;
    let items = reads.body["items"].as_array().expect("items");
    let seen: Vec<(Value, Value, Value, Value)> = items
        .iter()
        .map(|r| {
            (
                r["staff_id"].clone(),
                r["view"].clone(),
                r["purpose"].clone(),
                r["request_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                json!(people.worker.staff_id),
                json!("record"),
                json!("direct_care"),
                json!(record.header("x-request-id"))
            ),
            (
                json!(people.auditor.staff_id),
                json!("journey"),
                Value::Null,
                json!(journey.header("x-request-id"))
            ),
            // Reading who read the record is a read too, audited before it is answered.
            (
                json!(people.auditor.staff_id),
                json!("reads"),
                json!("audit"),
                json!(reads.header("x-request-id"))
            ),
        ]
    );
    // Only auditors list reads, and a refused listing is not a read.
    let refused = server
        .get(&people.lead, &client_path(client, "reads"))
        .await;
    assert_eq!(refused.status, 403);
    let again = server
        .get(&people.auditor, &client_path(client, "reads"))
        .await;
    assert_eq!(
        again.body["items"].as_array().expect("items").len(),
        4,
        "the first listing and this one are both in the audit; the refused one is not: {:#}",
        again.body
    );
    server.stop().await;
}

#[tokio::test]
async fn a_referrer_follows_their_own_referral_and_no_one_elses() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let (client, referral) = referred(&server).await;
    let status_path = format!("{}/{referral}", client_path(client, "referrals"));
    let pending = server.read(&people.referrer, &status_path).await;
    assert_eq!(pending.body["status"], "pending");
    server
        .ok(
            &people.lead,
            &client_path(client, "referral-declines"),
            json!({ "referral_id": referral, "reason": "needs_clinical_service", "note": null }),
        )
        .await;
    let declined = server.get(&people.referrer, &status_path).await;
    assert_eq!(declined.body["status"], "declined");
    assert!(declined.body.get("personal").is_none());
    // A referral made by someone else: as if absent.
    let other_client = Uuid::new_v4();
    let other_referral = Uuid::new_v4();
    server
        .ok(
            &people.worker,
            &client_path(other_client, "referrals"),
            intake(other_referral, "self_referral"),
        )
        .await;
    let hidden = server
        .get(
            &people.referrer,
            &format!(
                "{}/{other_referral}",
                client_path(other_client, "referrals")
            ),
        )
        .await;
    assert_eq!(hidden.status, 404);
    // The referrer cannot read the record itself.
    let record = server.get(&people.referrer, &client_path(client, "")).await;
    assert_eq!(record.status, 403);
    server.stop().await;
}

#[tokio::test]
async fn the_caseload_shows_a_newly_assigned_case_once_the_projector_catches_up() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let client = open_case(&server).await;
    server.catch_up().await;
    let mine = server.read(&people.worker, "/api/v1/caseload").await;
    let ids: Vec<&Value> = mine.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| &i["client_id"])
        .collect();
    assert_eq!(ids, vec![&json!(client)]);
    assert_eq!(mine.body["items"][0]["flags"], json!(["baseline_missing"]));
    let team = server
        .get(
            &people.lead,
            &format!(
                "/api/v1/teams/{}/caseload",
                people.lead.team_id.expect("a team")
            ),
        )
        .await;
    assert_eq!(team.body["items"].as_array().map(Vec::len), Some(1));
    let workload = server
        .read(
            &people.lead,
            &format!(
                "/api/v1/teams/{}/workload",
                people.lead.team_id.expect("a team")
            ),
        )
        .await;
    assert_eq!(workload.body["rules_version"], 2, "{:#}", workload.body);
    let loads: Vec<(Value, Value, Value)> = workload.body["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| {
            (
                w["link_worker_id"].clone(),
                w["open"].clone(),
                w["capacity"].clone(),
            )
        })
        .collect();
    assert!(
        loads.contains(&(json!(people.worker.staff_id), json!(1), json!(220))),
        "{loads:?}"
    );
    assert!(
        loads.contains(&(json!(people.worker2.staff_id), json!(0), json!(220))),
        "{loads:?}"
    );
    // Another worker and another team see none of it.
    let theirs = server.get(&people.worker2, "/api/v1/caseload").await;
    assert_eq!(theirs.body["items"], json!([]));
    let other_team = server
        .get(
            &people.other_lead,
            &format!(
                "/api/v1/teams/{}/caseload",
                people.lead.team_id.expect("a team")
            ),
        )
        .await;
    assert_eq!(other_team.status, 403);
    // Moving the case moves it between caseloads.
    server
        .ok(
            &people.lead,
            &client_path(client, "transfers"),
            json!({ "to_link_worker_id": people.worker2.staff_id, "team_id": people.worker2.team_id, "reason": "capacity" }),
        )
        .await;
    server.catch_up().await;
    let theirs = server.get(&people.worker2, "/api/v1/caseload").await;
    assert_eq!(theirs.body["items"][0]["client_id"], json!(client));
    let mine = server.get(&people.worker, "/api/v1/caseload").await;
    assert_eq!(mine.body["items"], json!([]));
    server.stop().await;
}

/// A directory service's id given as a client's is no client record: 404 for a command and a
/// read, never a 500, and nothing written.
#[tokio::test]
async fn a_service_id_used_as_a_client_id_is_no_record() {
    let server = TestServer::start().await;
    let service = server.services[0];
    let referral = server
        .post(
            &server.people.referrer,
            &client_path(service, "referrals"),
            intake(Uuid::new_v4(), "gp"),
        )
        .await;
    assert_eq!(referral.status, 404, "{:#}", referral.body);
    let contact = server
        .post(
            &server.people.lead,
            &client_path(service, "contacts"),
            json!({ "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 20,
                    "contacted_at": Utc::now().to_rfc3339(), "note": null }),
        )
        .await;
    assert_eq!(contact.status, 404, "{:#}", contact.body);
    let read = server
        .get(&server.people.auditor, &client_path(service, ""))
        .await;
    assert_eq!(read.status, 404, "{:#}", read.body);
    let written: i64 = testkit::query_value(
        &server.db.admin_client().await,
        "SELECT count(*) FROM events WHERE stream_id = $1 AND stream_type <> 'service'",
        &[&service],
    )
    .await;
    assert_eq!(written, 0);
    server.stop().await;
}

/// A correction whose fields do not fit the event it corrects (nothing checks them yet) leaves
/// the record readable: the record shows the event as recorded, the journey shows the
/// correction beside it.
#[tokio::test]
async fn a_correction_that_does_not_fit_its_event_leaves_the_record_readable() {
    let server = TestServer::start().await;
    let client = open_case(&server).await;
    let registered = server.event_id(&client, "ClientRegistered").await;
    // Refused now: a correction is held to the entry it corrects.
    let refused = server
        .post(
            &server.people.worker,
            &client_path(client, "corrections"),
            json!({ "corrects": registered, "corrected_fields": { "no_such_field": 1 },
                    "reason": "a slip" }),
        )
        .await;
    refused.refused_at(422, "corrected_fields");
    // One accepted before corrections were checked (written here straight to the log).
    let mut legacy = crate::support::request(
        client,
        eventstore::ExpectedVersion::Any,
        vec![crate::support::event(
            "EntryCorrected",
            json!({ "corrects": registered, "corrected_fields": { "no_such_field": 1 },
                    "reason": "a slip" }),
        )],
    );
    legacy.metadata.organisation_id = server.people.worker.organisation_id;
    server
        .store
        .append(legacy)
        .await
        .expect("the legacy correction");
    let record = server
        .read(&server.people.auditor, &client_path(client, ""))
        .await;
    assert_eq!(record.body["personal"]["given_name"], "Maggie");
    assert_eq!(record.body["area"], "Frome");
    let journey = server
        .read(&server.people.auditor, &client_path(client, "journey"))
        .await;
    assert_eq!(
        journey.body["entries"][0]["corrected_payload"]["no_such_field"],
        1
    );
    server.stop().await;
}

/// Who may not ask is refused before what they asked is checked: a bad page from a caller
/// without the right is 403, not 400, and an import from a non-administrator is 403 whatever
/// the document.
#[tokio::test]
async fn a_caller_without_the_right_is_refused_before_their_input_is_checked() {
    let server = TestServer::start().await;
    let people = &server.people;
    for (who, path) in [
        (&people.analyst, "/api/v1/caseload?limit=0"),
        (&people.worker, "/api/v1/staff?limit=0"),
    ] {
        let reply = server.get(who, path).await;
        assert_eq!(reply.status, 403, "{path}: {:#}", reply.body);
    }
    let import = server
        .post(
            &people.lead,
            "/api/v1/directory/import",
            json!({ "not": "oruk" }),
        )
        .await;
    assert_eq!(import.status, 403, "{:#}", import.body);
    // The same input from a caller with the right names the field.
    let reply = server.get(&people.worker, "/api/v1/caseload?limit=0").await;
    reply.refused_at(400, "query.limit");
    server.stop().await;
}

/// Whom a command may name: staff of the caller's organisation and, for a team lead, their
/// own team; a referrer in their own name. Each refusal names the field.
#[tokio::test]
async fn a_command_names_only_staff_the_caller_may_name() {
    let server = TestServer::start().await;
    let people = &server.people;
    let client = accepted_case(&server).await;
    let foreign = &people.foreign_worker;
    let refused = server
        .post(
            &people.lead,
            &client_path(client, "assignment"),
            json!({ "link_worker_id": foreign.staff_id, "team_id": people.worker.team_id }),
        )
        .await;
    assert_eq!(refused.status, 422, "{:#}", refused.body);
    assert_eq!(refused.body["rule"], "invalid_field");
    assert_eq!(refused.body["errors"][0]["field"], "link_worker_id");
    assert_eq!(
        refused.body["errors"][0]["message"],
        "no such link worker in this organisation"
    );
    let mut someone_else = intake(Uuid::new_v4(), "gp");
    someone_else["referral"]["referrer"]["staff_id"] = json!(people.lead.staff_id);
    let refused = refer(&server, &people.referrer, someone_else).await;
    refused.refused_at(422, "referral.referrer.staff_id");
    server.stop().await;
}

/// A client that times out and retries before the first answer comes can send the same keyed
/// request many times at once: every copy gets the one stored answer, none a 409, and the
/// fact is recorded once.
#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_all_get_the_first_answer() {
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    for round in 0..3 {
        let client = open_case(&server).await;
        let before = server.store.stream_version(client).await.expect("version");
        let path = client_path(client, "contacts");
        let body = json!({ "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 20,
                           "contacted_at": Utc::now().to_rfc3339(), "note": null });
        let key = format!("retry-storm-{round}");
        let headers = [("Idempotency-Key", key.as_str())];
        let replies = futures_util::future::join_all(
            (0..20).map(|_| server.call(Some(&worker), "POST", &path, Some(&body), &headers)),
        )
        .await;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
        assert!(
            replies.iter().all(|r| r.body == replies[0].body),
            "one answer for all"
        );
        assert_eq!(
            server.store.stream_version(client).await.expect("version"),
            before + 1,
            "recorded once"
        );
    }
    server.stop().await;
}

/// Two organisations referring to one new id at the same moment: one gets the record, the
/// other hears what it would hear of any id it may not use (404), never a 409 naming the
/// other's version.
#[tokio::test]
async fn a_referral_racing_another_organisations_to_a_new_id_learns_nothing_of_it() {
    let server = TestServer::start().await;
    let people = &server.people;
    for _ in 0..30 {
        let client = Uuid::new_v4();
        let path = client_path(client, "referrals");
        let ours = intake(Uuid::new_v4(), "gp");
        let theirs = intake(Uuid::new_v4(), "self_referral");
        let (a, b) = tokio::join!(
            server.post(&people.lead, &path, ours),
            server.post(&people.foreign_lead, &path, theirs)
        );
        let mut statuses = [a.status, b.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 404], "{:#} {:#}", a.body, b.body);
        for reply in [&a, &b] {
            assert!(
                reply.body.get("current_version").is_none(),
                "{:#}",
                reply.body
            );
        }
    }
    server.stop().await;
}
