//! No impersonation: a token is issued only to its holder (their own token, or a one-time
//! enrolment an administrator makes and the holder redeems), every token says who issued it,
//! a deactivated account stops at once, and an administrator lists and revokes a person's
//! tokens.

use serde_json::{Value, json};
use uuid::Uuid;

use super::{Person, TestServer};

fn as_person(template: &Person, token: &Value) -> Person {
    Person {
        token: token["token"].as_str().expect("a token").to_owned(),
        ..template.clone()
    }
}

async fn redeem(server: &TestServer, code: &str) -> super::Reply {
    server
        .call(
            None,
            "POST",
            "/api/v1/enrolments/redemption",
            Some(&json!({ "code": code, "valid_days": 30, "label": "my laptop" })),
            &[],
        )
        .await
}

async fn tokens_of(server: &TestServer, who: &Person, staff_id: Uuid) -> Value {
    let reply = server
        .read(who, &format!("/api/v1/staff/{staff_id}/tokens"))
        .await;
    reply.body
}

/// The probe: an administrator, who may not read records, minted a token for an
/// auditor that read a journey recorded as the auditor. There is no way to do that now.
#[tokio::test]
async fn an_administrator_cannot_mint_a_token_that_acts_as_someone_else() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let admin_client = server.db.admin_client().await;
    let count = || async {
        admin_client
            .query_one(
                "SELECT count(*) FROM api_tokens WHERE staff_id = $1",
                &[&people.auditor.staff_id],
            )
            .await
            .expect("count")
            .get::<_, i64>(0)
    };
    let before = count().await;
    let minted = server
        .post(
            &people.admin,
            &format!("/api/v1/staff/{}/tokens", people.auditor.staff_id),
            json!({ "valid_days": 1, "label": "as the auditor" }),
        )
        .await;
    assert_eq!(minted.status, 405, "{:#}", minted.body);
    assert_eq!(count().await, before, "no token was made for the auditor");

    // An administrator's own token, self-issued, is still an administrator's.
    let own = server
        .ok(
            &people.admin,
            "/api/v1/me/tokens",
            json!({ "valid_days": 2, "label": "second device" }),
        )
        .await;
    let me = server
        .read(&as_person(&people.admin, &own.body), "/api/v1/me")
        .await;
    assert_eq!(me.body["staff_id"], json!(people.admin.staff_id));
    assert_eq!(me.body["role"], "administrator");
    let listed = tokens_of(&server, &people.admin, people.admin.staff_id).await;
    let token = listed["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["token_id"] == own.body["token_id"])
        .expect("the new token is listed");
    assert_eq!(token["issued_via"], "self");
    assert_eq!(token["issued_by"], json!(people.admin.staff_id));
    assert_eq!(token["live"], true);
    // The API's lifetime cap holds for one's own tokens too.
    let long = server
        .post(
            &people.worker,
            "/api/v1/me/tokens",
            json!({ "valid_days": 401 }),
        )
        .await;
    assert_eq!(long.status, 422, "{:#}", long.body);
    assert!(long.body.to_string().contains("valid_days"));
    server.stop().await;
}

#[tokio::test]
async fn an_enrolment_is_redeemed_once_by_its_holder_and_records_who_made_it() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let holder = people.worker2.staff_id;
    let enrolment = server
        .ok(
            &people.admin,
            &format!("/api/v1/staff/{holder}/enrolments"),
            json!({ "valid_hours": 24 }),
        )
        .await;
    let code = enrolment.body["code"].as_str().expect("a code").to_owned();
    assert!(code.starts_with("cbe_"));
    // An enrolment code is not a bearer token.
    let as_bearer = server
        .get(
            &Person {
                token: code.clone(),
                ..people.worker2.clone()
            },
            "/api/v1/me",
        )
        .await;
    assert_eq!(as_bearer.status, 401);

    // Ten redeem it at once: one gets a token.
    let attempts = futures_util::future::join_all((0..10).map(|_| redeem(&server, &code))).await;
    let issued: Vec<&super::Reply> = attempts.iter().filter(|r| r.status == 201).collect();
    assert_eq!(issued.len(), 1, "one redemption of one code");
    assert!(attempts.iter().all(|r| matches!(r.status, 201 | 401)));
    let token = issued[0].body.clone();
    assert_eq!(token["staff_id"], json!(holder));
    let me = server
        .get(&as_person(&people.worker2, &token), "/api/v1/me")
        .await;
    assert_eq!(me.body["staff_id"], json!(holder));
    assert_eq!(redeem(&server, &code).await.status, 401, "used once");

    let listed = tokens_of(&server, &people.admin, holder).await;
    let summary = listed["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["token_id"] == token["token_id"])
        .expect("listed");
    assert_eq!(summary["issued_via"], "enrolment");
    assert_eq!(summary["issued_by"], json!(people.admin.staff_id));
    assert_eq!(summary["enrolment_id"], enrolment.body["enrolment_id"]);
    assert_eq!(summary["label"], "my laptop");
    let made = &listed["enrolments"][0];
    assert_eq!(made["enrolment_id"], enrolment.body["enrolment_id"]);
    assert_eq!(made["token_id"], token["token_id"]);
    assert!(made["redeemed_at"].is_string());
    // No secret of either in the listing.
    let text = listed.to_string();
    let secret = token["token"].as_str().expect("a token");
    assert!(!text.contains(secret.rsplit('_').next().expect("a secret")));
    assert!(!text.contains(code.rsplit('_').next().expect("a secret")));

    // An expired code (the database's clock decides) and a made-up one are refused alike.
    let stale = server
        .ok(
            &people.admin,
            &format!("/api/v1/staff/{holder}/enrolments"),
            json!({}),
        )
        .await;
    server
        .db
        .admin_client()
        .await
        .execute(
            "UPDATE enrolments SET expires_at = now() - interval '1 second' WHERE enrolment_id = $1",
            &[&Uuid::parse_str(stale.body["enrolment_id"].as_str().expect("an id")).expect("a uuid")],
        )
        .await
        .expect("expire it");
    let expired = redeem(&server, stale.body["code"].as_str().expect("a code")).await;
    assert_eq!(expired.status, 401);
    let forged = format!(
        "cbe_{}_{}",
        enrolment.body["enrolment_id"]
            .as_str()
            .expect("an id")
            .replace('-', ""),
        "0".repeat(64)
    );
    assert_eq!(redeem(&server, &forged).await.status, 401);

    // Only administrators enrol, and only their own organisation's staff.
    let by_lead = server
        .post(
            &people.lead,
            &format!("/api/v1/staff/{holder}/enrolments"),
            json!({}),
        )
        .await;
    assert_eq!(by_lead.status, 403);
    let by_foreign = server
        .post(
            &people.foreign_admin,
            &format!("/api/v1/staff/{holder}/enrolments"),
            json!({}),
        )
        .await;
    assert_eq!(by_foreign.status, 404);
    assert_eq!(by_foreign.body["detail"], "no such staff member");
    let too_long = server
        .post(
            &people.admin,
            &format!("/api/v1/staff/{holder}/enrolments"),
            json!({ "valid_hours": 169 }),
        )
        .await;
    assert_eq!(too_long.status, 422);
    assert!(too_long.body.to_string().contains("valid_hours"));
    server.stop().await;
}

#[tokio::test]
async fn a_deactivated_account_stops_at_once_and_comes_back_only_through_a_new_enrolment() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let leaver = people.worker2.clone();
    let second = server
        .ok(&leaver, "/api/v1/me/tokens", json!({ "valid_days": 5 }))
        .await;
    let second = as_person(&leaver, &second.body);
    let pending = server
        .ok(
            &people.admin,
            &format!("/api/v1/staff/{}/enrolments", leaver.staff_id),
            json!({}),
        )
        .await;
    assert_eq!(server.get(&second, "/api/v1/me").await.status, 200);

    // Nobody deactivates their own account; other organisations cannot see this one.
    let own = server
        .post(
            &people.admin,
            &format!("/api/v1/staff/{}/deactivation", people.admin.staff_id),
            json!(null),
        )
        .await;
    assert_eq!(own.status, 403);
    let foreign = server
        .post(
            &people.foreign_admin,
            &format!("/api/v1/staff/{}/deactivation", leaver.staff_id),
            json!(null),
        )
        .await;
    assert_eq!(foreign.status, 404);
    assert_eq!(foreign.body["detail"], "no such staff member");

    let deactivated = server
        .post(
            &people.admin,
            &format!("/api/v1/staff/{}/deactivation", leaver.staff_id),
            json!(null),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{:#}", deactivated.body);
    assert_eq!(deactivated.body["active"], false);
    for token in [&leaver, &second] {
        assert_eq!(server.get(token, "/api/v1/me").await.status, 401);
    }
    assert_eq!(
        redeem(&server, pending.body["code"].as_str().expect("a code"))
            .await
            .status,
        401,
        "a pending enrolment is revoked with the account"
    );
    let listed = tokens_of(&server, &people.admin, leaver.staff_id).await;
    assert_eq!(listed["active"], false);
    assert!(
        listed["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .all(|t| t["live"] == false && t["revoked_at"].is_string())
    );
    assert!(listed["enrolments"][0]["revoked_at"].is_string());
    let refused = server
        .post(
            &people.admin,
            &format!("/api/v1/staff/{}/enrolments", leaver.staff_id),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, 422, "no enrolment for an inactive account");
    let admin_client = server.db.admin_client().await;
    let by: Option<Uuid> = testkit::query_value(
        &admin_client,
        "SELECT deactivated_by FROM staff WHERE staff_id = $1",
        &[&leaver.staff_id],
    )
    .await;
    assert_eq!(by, Some(people.admin.staff_id));

    // Back again: the old tokens stay dead; a new enrolment gives a new one.
    let activated = server
        .post(
            &people.admin,
            &format!("/api/v1/staff/{}/activation", leaver.staff_id),
            json!(null),
        )
        .await;
    assert_eq!(activated.status, 200);
    assert_eq!(activated.body["active"], true);
    for token in [&leaver, &second] {
        assert_eq!(server.get(token, "/api/v1/me").await.status, 401);
    }
    let fresh = server
        .ok(
            &people.admin,
            &format!("/api/v1/staff/{}/enrolments", leaver.staff_id),
            json!({}),
        )
        .await;
    let token = redeem(&server, fresh.body["code"].as_str().expect("a code")).await;
    assert_eq!(token.status, 201);
    assert_eq!(
        server
            .get(&as_person(&leaver, &token.body), "/api/v1/me")
            .await
            .status,
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn tokens_are_listed_and_revoked_by_their_holder_or_an_administrator() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let worker = people.worker.clone();
    let phone = server
        .ok(
            &worker,
            "/api/v1/me/tokens",
            json!({ "valid_days": 5, "label": "phone" }),
        )
        .await;
    let phone_token = as_person(&worker, &phone.body);
    let tablet = server
        .ok(
            &worker,
            "/api/v1/me/tokens",
            json!({ "valid_days": 5, "label": "tablet" }),
        )
        .await;
    let tablet_token = as_person(&worker, &tablet.body);

    // The holder sees their own; a colleague does not; the administrator does.
    let own = tokens_of(&server, &worker, worker.staff_id).await;
    assert_eq!(own["tokens"].as_array().expect("tokens").len(), 3);
    let colleague = server
        .get(
            &people.worker2,
            &format!("/api/v1/staff/{}/tokens", worker.staff_id),
        )
        .await;
    assert_eq!(colleague.status, 403);
    let foreign = server
        .get(
            &people.foreign_admin,
            &format!("/api/v1/staff/{}/tokens", worker.staff_id),
        )
        .await;
    assert_eq!(foreign.status, 404);

    // The holder revokes a lost phone's token; a colleague cannot revoke theirs.
    let phone_id = phone.body["token_id"].as_str().expect("an id");
    let tablet_id = tablet.body["token_id"].as_str().expect("an id");
    let by_colleague = server
        .post(
            &people.worker2,
            &format!("/api/v1/tokens/{tablet_id}/revocation"),
            json!(null),
        )
        .await;
    assert_eq!(by_colleague.status, 403);
    // Another organisation's administrator: no such token, as for one never issued.
    for token in [tablet_id.to_owned(), Uuid::new_v4().to_string()] {
        let by_foreign = server
            .post(
                &people.foreign_admin,
                &format!("/api/v1/tokens/{token}/revocation"),
                json!(null),
            )
            .await;
        assert_eq!(by_foreign.status, 404, "{:#}", by_foreign.body);
        assert_eq!(by_foreign.body["detail"], "no such live token");
    }
    let by_holder = server
        .post(
            &tablet_token,
            &format!("/api/v1/tokens/{phone_id}/revocation"),
            json!(null),
        )
        .await;
    assert_eq!(by_holder.status, 204);
    assert_eq!(server.get(&phone_token, "/api/v1/me").await.status, 401);
    assert_eq!(server.get(&tablet_token, "/api/v1/me").await.status, 200);

    // The administrator revokes everything the worker holds, at once.
    let all = server
        .post(
            &people.admin,
            &format!("/api/v1/staff/{}/tokens/revocation", worker.staff_id),
            json!(null),
        )
        .await;
    assert_eq!(all.status, 200, "{:#}", all.body);
    assert_eq!(
        all.body["tokens"], 2,
        "the fixture's token and the tablet's"
    );
    for token in [&worker, &tablet_token, &phone_token] {
        assert_eq!(server.get(token, "/api/v1/me").await.status, 401);
    }
    let listed = tokens_of(&server, &people.admin, worker.staff_id).await;
    assert!(
        listed["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .all(|t| t["live"] == false)
    );
    // The account stays active: a new enrolment brings the worker back.
    assert_eq!(listed["active"], true);
    server.stop().await;
}

/// A token its holder issues names the token it was issued with, never outlives it, and goes
/// with it; issuing while every token is being revoked leaves none alive.
#[tokio::test]
async fn a_self_issued_token_goes_with_the_token_it_was_issued_with() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let worker = people.worker.clone();
    let child = server
        .ok(&worker, "/api/v1/me/tokens", json!({ "valid_days": 400 }))
        .await;
    let child_person = as_person(&worker, &child.body);
    let grandchild = server
        .ok(
            &child_person,
            "/api/v1/me/tokens",
            json!({ "valid_days": 400 }),
        )
        .await;
    let grandchild_person = as_person(&worker, &grandchild.body);
    let listed = tokens_of(&server, &worker, worker.staff_id).await;
    let find = |id: &Value| {
        listed["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .find(|t| t["token_id"] == *id)
            .cloned()
            .expect("listed")
    };
    server.read(&worker, "/api/v1/me").await;
    let fixture = listed["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["issued_via"] == "operator")
        .cloned()
        .expect("the fixture's token");
    let child_summary = find(&child.body["token_id"]);
    assert_eq!(child_summary["parent_token_id"], fixture["token_id"]);
    assert_eq!(
        find(&grandchild.body["token_id"])["parent_token_id"],
        child.body["token_id"]
    );
    // The fixture's token lives a day: so do the ones issued with it, whatever was asked.
    assert_eq!(child.body["expires_at"], fixture["expires_at"]);
    assert_eq!(grandchild.body["expires_at"], fixture["expires_at"]);

    // Revoking the child revokes the grandchild; the fixture's token lives on.
    let revoked = server
        .post(
            &worker,
            &format!(
                "/api/v1/tokens/{}/revocation",
                child.body["token_id"].as_str().expect("an id")
            ),
            json!(null),
        )
        .await;
    assert_eq!(revoked.status, 204);
    assert_eq!(server.get(&child_person, "/api/v1/me").await.status, 401);
    assert_eq!(
        server.get(&grandchild_person, "/api/v1/me").await.status,
        401
    );
    assert_eq!(server.get(&worker, "/api/v1/me").await.status, 200);

    // Twenty issued at once while the administrator revokes everything: none is left alive,
    // whichever way each one fell.
    let body = json!({ "valid_days": 5 });
    let issuing = futures_util::future::join_all(
        (0..20).map(|_| server.call(Some(&worker), "POST", "/api/v1/me/tokens", Some(&body), &[])),
    );
    let revoke_path = format!("/api/v1/staff/{}/tokens/revocation", worker.staff_id);
    let revoking = server.post(&people.admin, &revoke_path, json!(null));
    let (issued, revoke_all) = tokio::join!(issuing, revoking);
    assert_eq!(revoke_all.status, 200);
    assert!(issued.iter().all(|r| matches!(r.status, 201 | 401)));
    let listed = tokens_of(&server, &people.admin, worker.staff_id).await;
    let alive: Vec<&Value> = listed["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .filter(|t| t["live"] == true)
        .collect();
    assert!(alive.is_empty(), "alive after revoking all: {alive:#?}");
    server.stop().await;
}

/// Adding a staff account is safe to retry: the same request naming its `staff_id` again adds
/// nothing and answers with the account; the id with other details, or another account's id, is
/// a 409 naming `staff_id`, and adds nothing either.
#[tokio::test]
async fn adding_staff_again_with_its_id_adds_nothing_and_other_details_conflict() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let staff_id = Uuid::new_v4();
    let request = json!({
        "staff_id": staff_id,
        "name": "Bea Okonjo",
        "role": "link_worker",
        "team_id": people.lead.team_id,
        "capacity": 220,
    });
    let first = server
        .post(&people.admin, "/api/v1/staff", request.clone())
        .await;
    assert_eq!(first.status, 201, "{:#}", first.body);
    assert_eq!(first.body["staff_id"], json!(staff_id));
    let again = server
        .post(&people.admin, "/api/v1/staff", request.clone())
        .await;
    assert_eq!(again.status, 201, "{:#}", again.body);
    assert_eq!(again.body, first.body);

    let mut other_details = request.clone();
    other_details["capacity"] = json!(100);
    let mut taken = request.clone();
    taken["staff_id"] = json!(people.worker.staff_id);
    for conflicting in [other_details, taken] {
        let reply = server
            .post(&people.admin, "/api/v1/staff", conflicting.clone())
            .await;
        assert_eq!(reply.status, 409, "{conflicting}: {:#}", reply.body);
        assert_eq!(reply.body["type"], "urn:casebook:problem:conflict");
        assert_eq!(
            reply.body["errors"][0]["field"], "staff_id",
            "{:#}",
            reply.body
        );
    }
    // The nil id is the log's own actor, and the all-ones id is alike: neither names an account.
    for reserved in [Uuid::nil(), Uuid::max()] {
        let mut request = request.clone();
        request["staff_id"] = json!(reserved);
        let reply = server.post(&people.admin, "/api/v1/staff", request).await;
        assert_eq!(reply.status, 422, "{reserved}: {:#}", reply.body);
        assert_eq!(
            reply.body["errors"][0]["field"], "staff_id",
            "{:#}",
            reply.body
        );
    }
    // One account of that name, as first asked; the other account untouched.
    let owner = server.db.admin_client().await;
    let accounts: Vec<(Uuid, Option<i32>)> = owner
        .query(
            "SELECT staff_id, capacity FROM staff WHERE name = 'Bea Okonjo'",
            &[],
        )
        .await
        .expect("staff")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(accounts, [(staff_id, Some(220))]);
    let worker: String = testkit::query_value(
        &owner,
        "SELECT name FROM staff WHERE staff_id = $1",
        &[&people.worker.staff_id],
    )
    .await;
    assert_ne!(worker, "Bea Okonjo");
    server.stop().await;
}
