//! Where a redirected referral went: a directory service or a coded destination, counted in
//! the outcome report; redirections stored before destinations were coded (schema v1, words)
//! still read, and count as `uncoded`, without their words.

use eventstore::{AppendRequest, ExpectedVersion, Metadata};
use serde_json::{Value, json};
use uuid::Uuid;

use super::journey::{client_path, referred};
use super::{Reply, TestServer};
use crate::support::{event, metadata, request};

#[track_caller]
fn refused(reply: &Reply, field: &str) {
    reply.refused_at(422, field);
}

async fn redirect(server: &TestServer, client: Uuid, referral: Uuid, destination: Value) -> Reply {
    server
        .post(
            &server.people.lead,
            &client_path(client, "referral-redirections"),
            json!({ "referral_id": referral, "destination": destination, "note": null }),
        )
        .await
}

/// Refers a new person and redirects them to `destination`, which must be taken; the client,
/// and the redirection's reply.
async fn redirected(server: &TestServer, destination: Value) -> (Uuid, Reply) {
    let (client, referral) = referred(server).await;
    let reply = redirect(server, client, referral, destination).await;
    assert_eq!(reply.status, 201, "{:#}", reply.body);
    (client, reply)
}

/// A redirection as a service recorded it before destinations were coded: schema v1, where it
/// went in words.
async fn stored_as_v1(server: &TestServer, client: Uuid, referral: Uuid, words: &str) {
    server
        .store
        .append(AppendRequest {
            metadata: Metadata {
                actor_id: server.people.lead.staff_id,
                actor_role: "team_lead".to_owned(),
                organisation_id: server.people.lead.organisation_id,
                occurred_at: chrono::Utc::now(),
                ..metadata()
            },
            ..request(
                client,
                ExpectedVersion::Any,
                vec![event(
                    "ReferralRedirected",
                    json!({ "referral_id": referral, "redirected_to": words, "note": null }),
                )],
            )
        })
        .await
        .expect("a v1 redirection appended");
}

#[tokio::test]
async fn redirections_name_a_service_or_a_code_and_reports_count_them_by_destination() {
    let server = TestServer::start().await;
    let people = &server.people;
    let service = server.services[0];

    // Refused, each naming the field: words alone, a code not in the list, a service that is
    // not in the directory, and the schema v1 field.
    let (client, referral) = referred(&server).await;
    for (destination, field) in [
        (
            json!({ "kind": "described", "text": "CMHT" }),
            "destination.kind",
        ),
        (
            json!({ "kind": "coded", "code": "cmht" }),
            "destination.code",
        ),
        (
            json!({ "kind": "service", "service_id": Uuid::new_v4() }),
            "destination.service_id",
        ),
    ] {
        refused(
            &redirect(&server, client, referral, destination).await,
            field,
        );
    }
    let old_shape = server
        .post(
            &people.lead,
            &client_path(client, "referral-redirections"),
            json!({ "referral_id": referral, "redirected_to": "CMHT", "note": null }),
        )
        .await;
    old_shape.refused_at(400, "redirected_to");
    // Nothing was written by the refusals: the referral is still waiting for a decision.
    let record = server.read(&people.lead, &client_path(client, "")).await;
    assert_eq!(
        record.body["referrals"][0]["status"], "pending",
        "{:#}",
        record.body
    );

    // Five people each: to NHS Talking Therapies by code, to a listed service, and (recorded
    // before codes, in words typed three ways) to "Mendip Talking Therapies"; ten more to the
    // GP by code, five of which are then corrected to NHS Talking Therapies.
    for n in 0..5 {
        redirected(
            &server,
            json!({ "kind": "coded", "code": "talking_therapies" }),
        )
        .await;
        redirected(&server, json!({ "kind": "service", "service_id": service })).await;
        let (client, referral) = referred(&server).await;
        let words = [
            "Mendip Talking Therapies",
            "mendip talking  therapies ",
            "MENDIP TALKING THERAPIES",
        ];
        stored_as_v1(&server, client, referral, words[n % 3]).await;
    }
    let mut to_correct = Vec::new();
    for n in 0..10 {
        let (client, reply) =
            redirected(&server, json!({ "kind": "coded", "code": "gp_practice" })).await;
        if n < 5 {
            let event = reply.body["events"][0]["event_id"].clone();
            to_correct.push((client, event));
        }
    }
    for (n, (client, event)) in to_correct.iter().enumerate() {
        let reply = server
            .post(
                &people.lead,
                &client_path(*client, "corrections"),
                json!({ "corrects": event,
                        "corrected_fields": { "destination": { "kind": "coded", "code": "nowhere" } },
                        "reason": "chose the wrong destination" }),
            )
            .await;
        refused(&reply, "corrected_fields.destination");
        let corrected = if n % 2 == 0 {
            json!({ "destination": { "kind": "coded", "code": "talking_therapies" } })
        } else {
            // A correction recorded under schema v1's field name reads as words: refused.
            let reply = server
                .post(
                    &people.lead,
                    &client_path(*client, "corrections"),
                    json!({ "corrects": event, "corrected_fields": { "redirected_to": "IAPT" },
                            "reason": "chose the wrong destination" }),
                )
                .await;
            refused(&reply, "corrected_fields.destination");
            json!({ "destination": { "kind": "coded", "code": "talking_therapies" } })
        };
        server
            .ok(
                &people.lead,
                &client_path(*client, "corrections"),
                json!({ "corrects": event, "corrected_fields": corrected,
                        "reason": "chose the wrong destination" }),
            )
            .await;
    }

    // The journey of a v1 redirection shows where it went, as words.
    let (client, referral) = referred(&server).await;
    stored_as_v1(&server, client, referral, "Frome Health Coaching").await;
    let journey = server
        .read(
            &people.auditor,
            &format!("{}?purpose=audit", client_path(client, "journey")),
        )
        .await;
    let entry = journey.body["entries"]
        .as_array()
        .and_then(|entries| {
            entries
                .iter()
                .find(|e| e["event_type"] == "ReferralRedirected")
        })
        .cloned()
        .unwrap_or_else(|| panic!("a redirection in {:#}", journey.body));
    assert_eq!(
        entry["payload"]["destination"],
        json!({ "kind": "described", "text": "Frome Health Coaching" }),
        "{entry:#}"
    );

    let report = server.caught_up_outcomes().await;
    let referrals = &report["referrals"];
    assert_eq!(referrals["redirected"], 26, "{referrals:#}");
    let counts: Vec<(String, Value)> = referrals["by_destination"]
        .as_array()
        .unwrap_or_else(|| panic!("by_destination in {referrals:#}"))
        .iter()
        .map(|share| {
            (
                share["code"].as_str().unwrap_or_default().to_owned(),
                share["count"].clone(),
            )
        })
        .collect();
    let service_code = format!("service:{service}");
    assert_eq!(
        counts,
        vec![
            ("talking_therapies".to_owned(), json!(10)),
            // Every redirection recorded in words, however typed, in one cell without them.
            ("uncoded".to_owned(), json!(6)),
            ("gp_practice".to_owned(), json!(5)),
            (service_code.clone(), json!(5)),
        ],
        "{referrals:#}"
    );
    // The words typed then are nowhere in the figures or the report.
    let admin = server.db.admin_client().await;
    for table in ["report_referrals", "outcome_state"] {
        let copied: i64 = testkit::query_value(&admin, &format!("SELECT count(*) FROM {table} t WHERE t::text ILIKE '%talking therap%' OR t::text ILIKE '%health coaching%'"),
                &[]).await;
        assert_eq!(copied, 0, "{table}");
    }
    let text = report.to_string().to_lowercase();
    assert!(
        !text.contains("mendip") && !text.contains("coaching"),
        "{text}"
    );
    let names = &referrals["destination_names"];
    assert_eq!(
        names["talking_therapies"], "NHS Talking Therapies",
        "{names:#}"
    );
    assert_eq!(names["gp_practice"], "Back to the GP or practice team");
    assert!(
        names[&service_code].as_str().is_some_and(|n| !n.is_empty()),
        "{names:#}"
    );

    // Under rules v1 the figure is not counted (null), and v1's figures stay as they were.
    crate::support::catch_up(&server.store, crate::support::outcomes_under(1)).await;
    let v1 = app::reports::outcome_report(
        &server.db.app_client().await,
        &app::reports::ReportFilter {
            organisation_id: Some(people.lead.organisation_id),
            rules_version: 1,
            ..app::reports::ReportFilter::default()
        },
    )
    .await
    .expect("the v1 figures");
    assert_eq!(v1.referrals.by_destination, None);
    assert_eq!(v1.referrals.redirected, Some(26));
    server.stop().await;
}
