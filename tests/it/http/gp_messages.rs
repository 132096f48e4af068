//! Messages back to GP practices over HTTP and in the console, for administrators: a practice's
//! endpoint set (refused field by field first), the dead letters listed for their organisation
//! only, one replayed once; anyone else refused.

use serde_json::json;
use uuid::Uuid;

use super::TestServer;
use super::console::{get, hidden, post, sign_in};

/// A dead letter of `organisation`'s, as the dispatcher leaves one.
pub(super) async fn dead_letter(server: &TestServer, organisation: Uuid) -> Uuid {
    let id = Uuid::new_v4();
    server
        .db
        .admin_client()
        .await
        .execute(
            "INSERT INTO gp_outbox (message_id, organisation_id, client_id, seq, kind, code, \
             display, content, practice_ods, rules_version, occurred_at, status, attempts, \
             next_attempt_at, last_error) VALUES ($1, $2, $3, 1, 'referral_accepted', \
             '871731000000106', 'Referral to social prescribing service (procedure)', 'coded', \
             'A81001', 1, now(), 'dead', 12, now(), 'the endpoint answered 503')",
            &[&id, &organisation, &Uuid::new_v4()],
        )
        .await
        .expect("a dead letter");
    id
}

async fn status_of(server: &TestServer, id: Uuid) -> String {
    testkit::query_value(
        &server.db.admin_client().await,
        "SELECT status FROM gp_outbox WHERE message_id = $1",
        &[&id],
    )
    .await
}

#[tokio::test]
async fn an_administrator_sets_endpoints_sees_dead_letters_and_replays_one() {
    let server = TestServer::start().await;
    let people = server.people.clone();

    // Endpoints: only http(s), no credentials; a real ODS code; administrators only.
    for (body, field) in [
        (
            json!({ "ods_code": "A81001", "url": "file:///etc/passwd" }),
            "url",
        ),
        (
            json!({ "ods_code": "A81001", "url": "https://me:secret@gp.example/in" }),
            "url",
        ),
        (
            json!({ "ods_code": "a81001", "url": "https://gp.example/in" }),
            "ods_code",
        ),
    ] {
        let reply = server
            .post(&people.admin, "/api/v1/gp-endpoints", body)
            .await;
        reply.refused_at(400, field);
    }
    let good = json!({ "ods_code": "A81001", "url": "https://gp.example/fhir/Communication" });
    let reply = server
        .post(&people.worker, "/api/v1/gp-endpoints", good.clone())
        .await;
    assert_eq!(reply.status, 403);
    let reply = server
        .post(&people.admin, "/api/v1/gp-endpoints", good)
        .await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    assert_eq!(reply.body["ods_code"], "A81001");

    // Dead letters: each organisation sees its own.
    let ours = dead_letter(&server, people.admin.organisation_id).await;
    let theirs = dead_letter(&server, people.foreign_admin.organisation_id).await;
    let listed = server.get(&people.admin, "/api/v1/gp-messages").await;
    assert_eq!(listed.status, 200, "{:#}", listed.body);
    let ids: Vec<&str> = listed
        .body
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|m| m["message_id"].as_str())
        .collect();
    assert_eq!(ids, [ours.to_string()]);
    assert_eq!(listed.body[0]["code"], "871731000000106");
    server
        .get_refused(&people.admin, "/api/v1/gp-messages?status=lost", "status")
        .await;
    let reply = server.get(&people.lead, "/api/v1/gp-messages").await;
    assert_eq!(reply.status, 403);

    // A replay: not of another organisation's, once.
    let replay = |id: Uuid| format!("/api/v1/gp-messages/{id}/replay");
    let reply = server
        .call(Some(&people.admin), "POST", &replay(theirs), None, &[])
        .await;
    assert_eq!(reply.status, 404);
    let reply = server
        .call(Some(&people.admin), "POST", &replay(ours), None, &[])
        .await;
    assert_eq!(reply.status, 204, "{:#}", reply.body);
    assert_eq!(status_of(&server, ours).await, "pending");
    assert_eq!(status_of(&server, theirs).await, "dead");
    let reply = server
        .call(Some(&people.admin), "POST", &replay(ours), None, &[])
        .await;
    assert_eq!(reply.status, 404, "only a dead letter is replayed");

    // The console: the administrator's page lists it with a button that replays it; nobody
    // else's page opens.
    let again = dead_letter(&server, people.admin.organisation_id).await;
    let session = sign_in(&server, &people.admin).await;
    let (status, page) = get(&server, &session, "/console/admin").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("/console/admin/gp-messages"),
        "linked from administration"
    );
    let (status, page) = get(&server, &session, "/console/admin/gp-messages").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&again.to_string()) && page.contains("the endpoint answered 503"),
        "{page}"
    );
    assert!(!page.contains(&theirs.to_string()));
    let csrf = hidden(&page, "csrf");
    let id = again.to_string();
    let status = post(
        &server,
        &session,
        "/console/admin/gp-messages/replay",
        Some(&server.base),
        &[("csrf", "forged"), ("message_id", &id)],
    )
    .await;
    assert_ne!(status, 303, "a forged token replays nothing");
    assert_eq!(status_of(&server, again).await, "dead");
    let status = post(
        &server,
        &session,
        "/console/admin/gp-messages/replay",
        Some(&server.base),
        &[("csrf", &csrf), ("message_id", &id)],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(status_of(&server, again).await, "pending");
    let (_, page) = get(
        &server,
        &session,
        "/console/admin/gp-messages?done=replayed",
    )
    .await;
    assert!(page.contains("The message will be sent again"), "{page}");
    let worker = sign_in(&server, &people.worker).await;
    let (status, _) = get(&server, &worker, "/console/admin/gp-messages").await;
    assert_eq!(status, 403);
    server.stop().await;
}
