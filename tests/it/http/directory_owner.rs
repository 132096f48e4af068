//! Directory ownership from a second organisation (issue #19): a directory service belongs to
//! the organisation that listed it. Only its administrators import over it or withdraw it, only
//! its team leads and administrators change its capacity; `withdraw_missing` withdraws only the
//! importer's own services; anyone connects people to any listed service.

use serde_json::{Value, json};
use uuid::Uuid;

use super::journey::{accepted_case_by, assign_by, client_path};
use super::{Reply, TestServer};
use crate::support::oruk_service;

fn ids(reply: &Reply, list: &str) -> Vec<Uuid> {
    serde_json::from_value(reply.body[list].clone()).expect("a list of ids")
}

/// `who` imports `document` as a full dump (`withdraw_missing`), which must be taken.
async fn full_dump(server: &TestServer, who: &super::Person, document: Value) -> Reply {
    let import = server
        .post(
            who,
            "/api/v1/directory/import?withdraw_missing=true",
            document,
        )
        .await;
    assert_eq!(import.status, 200, "{:#}", import.body);
    import
}

/// Whether the service is listed now, and its name, from the log.
async fn listed(server: &TestServer, id: Uuid) -> (bool, String) {
    let loaded = app::directory::load_service(&server.store, domain::ServiceId(id))
        .await
        .expect("the service");
    let name = loaded
        .state
        .service
        .as_ref()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    (loaded.state.listed(), name)
}

#[track_caller]
fn refused_as_not_theirs(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 403, "{what}: {:#}", reply.body);
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("another organisation's"),
        "{what}: the reason is named: {:#}",
        reply.body
    );
}

#[tokio::test]
async fn another_organisation_cannot_change_or_wipe_a_service_it_did_not_list() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let ours = server.services.clone();
    let mut names = Vec::new();
    for id in &ours {
        let (is_listed, name) = listed(&server, *id).await;
        assert!(is_listed);
        names.push(name);
    }

    // The foreign administrator imports one new service of their own and a record naming one
    // of ours, with `withdraw_missing`: theirs is added, ours skipped and named in the report,
    // and nothing of ours is withdrawn.
    let theirs = Uuid::from_u128(0xf0_01);
    let dump = json!({ "contents": [
        oruk_service(theirs, "Leeds Walking Group", &["physical_activity"], "Leeds"),
        oruk_service(ours[0], "Taken over", &["housing"], "Leeds"),
    ]});
    let import = full_dump(&server, &people.foreign_admin, dump).await;
    assert_eq!(ids(&import, "added"), [theirs]);
    assert_eq!(ids(&import, "withdrawn"), Vec::<Uuid>::new());
    assert_eq!(ids(&import, "changed"), Vec::<Uuid>::new());
    let skipped = import.body["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1, "{:#}", import.body);
    assert_eq!(skipped[0]["index"], 1);
    assert_eq!(skipped[0]["id"], json!(ours[0]));
    assert!(
        skipped[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("another organisation's")),
        "{:#}",
        skipped[0]
    );
    assert_eq!(import.body["rejected"], json!([]));
    for (id, name) in ours.iter().zip(&names) {
        assert_eq!(listed(&server, *id).await, (true, name.clone()));
    }

    // A second full dump of theirs without it: `withdraw_missing` withdraws their own service,
    // still none of ours.
    let second = Uuid::from_u128(0xf0_02);
    let dump = json!({ "contents": [
        oruk_service(second, "Leeds Debt Advice", &["money_benefits_debt"], "Leeds"),
    ]});
    let import = full_dump(&server, &people.foreign_admin, dump).await;
    assert_eq!(ids(&import, "added"), [second]);
    assert_eq!(ids(&import, "withdrawn"), [theirs]);
    for id in &ours {
        assert!(listed(&server, *id).await.0);
    }

    // Their administrator cannot withdraw ours, nor change its capacity; their team lead
    // cannot change its capacity: 403 naming why (the service is public, so not 404).
    let capacity = |id: Uuid| format!("/api/v1/directory/services/{id}/capacity");
    let withdraw = |id: Uuid| format!("/api/v1/directory/services/{id}/withdraw");
    let closed = json!({ "availability": "closed", "waiting_weeks": null, "note": null });
    let reply = server
        .post(
            &people.foreign_admin,
            &withdraw(ours[1]),
            json!({ "reason": "not ours to keep" }),
        )
        .await;
    refused_as_not_theirs(&reply, "a foreign withdrawal");
    let reply = server
        .post(&people.foreign_lead, &capacity(ours[1]), closed.clone())
        .await;
    refused_as_not_theirs(&reply, "a foreign lead's capacity change");
    let reply = server
        .post(&people.foreign_admin, &capacity(ours[1]), closed.clone())
        .await;
    refused_as_not_theirs(&reply, "a foreign administrator's capacity change");
    // Ours is as it was.
    assert!(listed(&server, ours[1]).await.0);
    let state = app::directory::load_service(&server.store, domain::ServiceId(ours[1]))
        .await
        .expect("the service")
        .state;
    assert_eq!(
        state.availability,
        Some(domain::directory::Availability::Open)
    );

    // And we cannot touch theirs either.
    let reply = server
        .post(&people.lead, &capacity(second), closed.clone())
        .await;
    refused_as_not_theirs(&reply, "our lead on their service");
    let reply = server
        .post(&people.admin, &withdraw(second), json!({ "reason": "x" }))
        .await;
    refused_as_not_theirs(&reply, "our administrator on their service");

    // Our own team lead and administrator can.
    server
        .ok(
            &people.lead,
            &capacity(ours[1]),
            json!({ "availability": "waiting_list", "waiting_weeks": 4, "note": null }),
        )
        .await;
    server
        .ok(
            &people.admin,
            &withdraw(ours[2]),
            json!({ "reason": "The group has closed." }),
        )
        .await;
    // The foreign team lead still cannot, on a withdrawn one of ours either.
    let reply = server
        .post(&people.foreign_lead, &capacity(ours[2]), closed.clone())
        .await;
    refused_as_not_theirs(&reply, "a foreign lead on a withdrawn service");

    // A foreign link worker connects their own client to our service, whoever owns it.
    let foreign = (&people.foreign_worker, &people.foreign_lead);
    let client = accepted_case_by(&server, foreign, "self_referral").await;
    assign_by(
        &server,
        &people.foreign_lead,
        client,
        &people.foreign_worker,
    )
    .await;
    super::journey::consent(
        &server,
        &people.foreign_worker,
        client,
        "share_with_onward_services",
    )
    .await;
    for (service, kind) in [(ours[0], "signposted"), (ours[1], "referred")] {
        server
            .ok(
                &people.foreign_worker,
                &client_path(client, "connections"),
                json!({ "connection_id": Uuid::new_v4(), "service_id": service, "need": "housing", "kind": kind }),
            )
            .await;
    }

    // Our own full dump with `withdraw_missing`: ours it does not name are withdrawn, theirs
    // (named or not) are left alone, the one it names is skipped.
    let dump = json!({ "contents": [
        oruk_service(second, "Ours now", &["housing"], "Frome"),
    ]});
    let import = full_dump(&server, &people.admin, dump).await;
    assert_eq!(ids(&import, "added"), Vec::<Uuid>::new());
    let mut withdrawn = ids(&import, "withdrawn");
    withdrawn.sort();
    let mut expected = vec![ours[0], ours[1]];
    expected.sort();
    assert_eq!(withdrawn, expected, "ours, not theirs");
    assert_eq!(import.body["skipped"][0]["id"], json!(second));
    assert_eq!(
        listed(&server, second).await,
        (true, "Leeds Debt Advice".to_owned())
    );
    let search = {
        server.catch_up().await;
        server
            .get(
                &people.foreign_worker,
                "/api/v1/directory/services?limit=100",
            )
            .await
    };
    assert_eq!(search.status, 200, "{:#}", search.body);
    let found: Vec<&Value> = search.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["service_id"] == json!(second))
        .collect();
    assert_eq!(found.len(), 1, "their service is still in the directory");
    server.stop().await;
}

/// The operator imports for an organisation (its services, changed by its leads) or for
/// itself (changed by no organisation), and passes a service from one owner to another by
/// agreement: the new owner's lead changes it from then on, the old one's no longer.
#[tokio::test]
async fn the_operator_imports_for_an_organisation_and_passes_a_service_to_another() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let directory = app::directory::DirectoryService::new(server.store.clone());
    let at = chrono::Utc::now();
    let for_them = Uuid::from_u128(0xf0_10);
    let operators = Uuid::from_u128(0xf0_11);
    let as_foreign = directory
        .operator_for(Some(people.foreign_lead.organisation_id), at)
        .await
        .expect("the foreign organisation exists");
    let report = directory
        .import(
            vec![oruk_service(
                for_them,
                "Their allotments",
                &["physical_activity"],
                "Frome",
            )],
            false,
            &as_foreign,
            |_| {},
        )
        .await
        .expect("imported");
    assert_eq!(report.added, [for_them]);
    let as_operator = directory
        .operator_for(None, at)
        .await
        .expect("the operator");
    let report = directory
        .import(
            vec![oruk_service(
                operators,
                "County advice line",
                &["housing"],
                "Frome",
            )],
            false,
            &as_operator,
            |_| {},
        )
        .await
        .expect("imported");
    assert_eq!(report.added, [operators], "{report:?}");
    let unknown = directory.operator_for(Some(Uuid::new_v4()), at).await;
    assert!(unknown.is_err(), "no such organisation");

    let capacity = |id: Uuid| format!("/api/v1/directory/services/{id}/capacity");
    let waiting = |weeks: u32| json!({ "availability": "waiting_list", "waiting_weeks": weeks, "note": null });
    assert_eq!(
        server
            .post(&people.foreign_lead, &capacity(for_them), waiting(2))
            .await
            .status,
        201
    );
    refused_as_not_theirs(
        &server
            .post(&people.lead, &capacity(for_them), waiting(3))
            .await,
        "our lead on their import",
    );
    // The operator's own: nobody's lead changes it.
    for lead in [&people.lead, &people.foreign_lead] {
        assert_eq!(
            server
                .post(lead, &capacity(operators), waiting(4))
                .await
                .status,
            403
        );
    }

    // Passed on, with a reason kept in the service's history.
    let pass = |id: Uuid, to: Uuid| {
        directory.change_owner_as_operator(
            domain::ServiceId(id),
            domain::directory::ServiceOwnerChanged {
                organisation_id: to,
                reason: "agreed at the partnership board".to_owned(),
            },
            at,
        )
    };
    pass(for_them, people.lead.organisation_id)
        .await
        .expect("passed to us");
    pass(operators, people.lead.organisation_id)
        .await
        .expect("the operator's, passed to us");
    for id in [for_them, operators] {
        assert_eq!(
            server
                .post(&people.lead, &capacity(id), waiting(5))
                .await
                .status,
            201,
            "our lead changes {id} now"
        );
        refused_as_not_theirs(
            &server
                .post(&people.foreign_lead, &capacity(id), waiting(6))
                .await,
            "their lead, no longer the owner",
        );
    }
    assert!(
        pass(for_them, people.lead.organisation_id).await.is_err(),
        "already ours"
    );
    assert!(
        pass(for_them, Uuid::new_v4()).await.is_err(),
        "no such organisation"
    );
    let loaded = app::directory::load_service(&server.store, domain::ServiceId(for_them))
        .await
        .expect("the service");
    assert_eq!(loaded.state.owner, Some(people.lead.organisation_id));
    server.stop().await;
}
