//! The link worker's "no answer from service" flag over HTTP, against the real database and the
//! service's clock: a connection made to a service with provider staff, unanswered for the
//! caseload rules' `provider_no_answer_days` (v2: 10), flags the case on the caseload; the
//! service's answer takes the flag away; a connection to a service no provider staff answer
//! for, or a signposting, never raises it.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::TestServer;
use super::journey::{client_path, open_case};

fn flagged(page: &Value, client: Uuid) -> bool {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["client_id"] == json!(client))
        .and_then(|i| i["flags"].as_array())
        .expect("the case is on the caseload")
        .contains(&json!("no_answer_from_service"))
}

#[tokio::test]
async fn a_connection_unanswered_by_its_provider_is_flagged_until_it_answers() {
    let start = Utc::now();
    let clock = app::Clock::fixed(start);
    let server = TestServer::start_with_clock(clock.clone()).await;
    let people = &server.people;
    let (answered, unanswered) = (open_case(&server).await, open_case(&server).await);
    let provided = server.provider_services[0];
    let unprovided = server.services[0];
    let referred = Uuid::new_v4();
    for client in [answered, unanswered] {
        server
            .ok(
                &people.worker,
                &client_path(client, "consents"),
                json!({ "scope": "share_with_onward_services", "services": [] }),
            )
            .await;
    }
    // The first person: referred to the provider's service, signposted to it too.
    for body in [
        json!({ "connection_id": referred, "service_id": provided, "need": "loneliness_isolation", "kind": "referred" }),
        json!({ "connection_id": Uuid::new_v4(), "service_id": provided, "need": "housing", "kind": "signposted" }),
    ] {
        server
            .ok(&people.worker, &client_path(answered, "connections"), body)
            .await;
    }
    // The second: a warm handover to a service no provider staff answer for.
    server
        .ok(
            &people.worker,
            &client_path(unanswered, "connections"),
            json!({ "connection_id": Uuid::new_v4(), "service_id": unprovided, "need": "housing", "kind": "warm_handover" }),
        )
        .await;
    server.catch_up().await;

    let page = server.read(&people.worker, "/api/v1/caseload").await.body;
    assert!(!flagged(&page, answered) && !flagged(&page, unanswered));
    // Nine days on: not yet.
    clock.set(start + Duration::days(9));
    let page = server.read(&people.worker, "/api/v1/caseload").await.body;
    assert!(!flagged(&page, answered), "{page:#}");
    // Ten days on: the link worker's caseload and the team's flag it; the unprovided service
    // is never chased.
    clock.set(start + Duration::days(10));
    let page = server.read(&people.worker, "/api/v1/caseload").await.body;
    assert!(flagged(&page, answered), "{page:#}");
    assert!(!flagged(&page, unanswered), "{page:#}");
    let team = format!(
        "/api/v1/teams/{}/caseload",
        people.lead.team_id.expect("a team")
    );
    assert!(flagged(
        &server.read(&people.lead, &team).await.body,
        answered
    ));

    // The service answers: the flag goes.
    let accepted = server
        .post(
            &people.provider,
            &format!("/api/v1/provider/clients/{answered}/connection-acceptances"),
            json!({ "connection_id": referred }),
        )
        .await;
    assert_eq!(accepted.status, 201, "{:#}", accepted.body);
    server.catch_up().await;
    let page = server.read(&people.worker, "/api/v1/caseload").await.body;
    assert!(!flagged(&page, answered), "{page:#}");
}
