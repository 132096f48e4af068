//! Report snapshots as jobs that survive a stop: one left `running` by a service that stopped
//! (or was killed) is built again from the start when the service starts, unless another
//! instance is building it; and an organisation cannot queue replays without end.

use serde_json::{Value, json};
use uuid::Uuid;

use super::TestServer;
use super::journey::referred;
use super::published::{log_now, snapshot_report, when_built};

/// Registers a snapshot as a build that was interrupted: `running`, with a stray figures row
/// under its tag (as a half-done build leaves). Returns its id and tag.
async fn interrupted(server: &TestServer, organisation: Uuid, stray: bool) -> (Uuid, i32) {
    let admin = server.db.admin_client().await;
    let id = Uuid::new_v4();
    let tag: i32 = testkit::query_value(
        &admin,
        "INSERT INTO report_snapshots (id, tag, organisation_id, rules_version, known_at, \
             corrections_known_at, state, events_total, events_done) \
             SELECT $1, nextval('report_snapshot_tags'), $2, 3, now(), now(), 'running', 100, 40 \
             RETURNING tag",
        &[&id, &organisation],
    )
    .await;
    if stray {
        admin
            .execute(
                "INSERT INTO report_referrals (rules_version, referral_id, client_id, organisation_id, \
                 source, reasons, received_on, outcome) \
                 VALUES ($1, $2, $3, $4, 'gp', '[]', '2026-01-01', 'accepted')",
                &[&tag, &Uuid::new_v4(), &Uuid::new_v4(), &organisation],
            )
            .await
            .expect("a stray row");
    }
    (id, tag)
}

fn without_snapshot_ids(mut report: Value) -> Value {
    if let Some(object) = report["report"].as_object_mut() {
        object.remove("as_of");
    }
    report["report"].take()
}

#[tokio::test]
async fn an_interrupted_snapshot_is_built_again_at_start_unless_another_instance_builds_it() {
    let server = TestServer::start().await;
    let people = &server.people;
    let organisation = people.lead.organisation_id;
    for _ in 0..6 {
        referred(&server).await;
    }
    server.catch_up().await;
    let (left, _) = interrupted(&server, organisation, true).await;
    let (held, held_tag) = interrupted(&server, organisation, false).await;
    // Another instance is building `held`: it holds the snapshot's lock.
    let other_instance = server.db.admin_client().await;
    other_instance
        .execute("SELECT pg_advisory_lock(x'5ea7'::int, $1)", &[&held_tag])
        .await
        .expect("the other instance's lock");

    // The service starts again.
    let snapshots = app::snapshots::Snapshots::new(server.store.clone());
    assert_eq!(snapshots.resume().await.expect("resumed"), 2);
    let rebuilt = snapshot_report(&server, left, "").await;
    assert_eq!(rebuilt.body["snapshot"]["state"], "done");
    // Built from the start: the stray row is gone, and the figures are those of a snapshot
    // started now for the same moment.
    assert_eq!(
        rebuilt.body["report"]["referrals"]["total"], 6,
        "{:#}",
        rebuilt.body
    );
    let known_at = rebuilt.body["snapshot"]["known_at"].clone();
    let fresh = server.start_snapshot(&people.analyst, known_at).await;
    let fresh_id = fresh["id"].as_str().expect("an id").to_owned();
    let fresh = snapshot_report(&server, &fresh_id, "").await;
    assert_eq!(
        without_snapshot_ids(rebuilt.body.clone()),
        without_snapshot_ids(fresh.body.clone())
    );
    let done = rebuilt.body["snapshot"]["events_done"].as_i64();
    assert_eq!(done, rebuilt.body["snapshot"]["events_total"].as_i64());

    // The one another instance builds is left to it.
    let state = |id: Uuid| {
        let server = &server;
        async move {
            let reply = server
                .get(
                    &server.people.analyst,
                    &format!("/api/v1/reports/outcomes/snapshots/{id}"),
                )
                .await;
            reply.body["state"].as_str().unwrap_or_default().to_owned()
        }
    };
    assert_eq!(state(held).await, "running");
    // That instance dies (its connection and lock with it): the next start builds it.
    drop(other_instance);
    // The server lets the lock go once it notices the connection is gone.
    let watcher = server.db.admin_client().await;
    for _ in 0..300 {
        let held: i64 = testkit::query_value(&watcher, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = x'5ea7'::int::oid \
                 AND objid = $1::int::oid",
                &[&held_tag]).await;
        if held == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(snapshots.resume().await.expect("resumed"), 1);
    snapshot_report(&server, held, "").await;
    assert_eq!(state(held).await, "done");
    assert_eq!(snapshots.resume().await.expect("resumed"), 0);
    server.stop().await;
}

#[tokio::test]
async fn an_organisation_may_have_at_most_eight_snapshots_building() {
    let server = TestServer::start().await;
    let people = &server.people;
    let organisation = people.lead.organisation_id;
    let now = log_now(&server).await;
    // Seven building, as far as the table says (their builders elsewhere hold their locks).
    let admin = server.db.admin_client().await;
    let mut building = Vec::new();
    for _ in 0..7 {
        let (id, tag) = interrupted(&server, organisation, false).await;
        admin
            .execute("SELECT pg_advisory_lock(x'5ea7'::int, $1)", &[&tag])
            .await
            .expect("a builder's lock");
        building.push(id);
    }
    let snapshot = |who| {
        server.post(
            who,
            "/api/v1/reports/outcomes/snapshots",
            json!({ "known_at": now }),
        )
    };
    let explain = || {
        server.post(
            &people.analyst,
            "/api/v1/reports/outcomes/explanations",
            json!({ "published_at": now }),
        )
    };
    let registered = || async {
        let count: i64 = testkit::query_value(
            &admin,
            "SELECT count(*) FROM report_snapshots WHERE organisation_id = $1",
            &[&organisation],
        )
        .await;
        count
    };
    // An explanation takes four: refused, saying why, and nothing registered.
    let refused = explain().await;
    assert_eq!(refused.status, 409, "{:#}", refused.body);
    assert!(
        refused.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("at most 8")),
        "{:#}",
        refused.body
    );
    assert_eq!(registered().await, 7);
    // One more building: the eighth snapshot is refused... as the ninth would be.
    let (_, tag) = interrupted(&server, organisation, false).await;
    admin
        .execute("SELECT pg_advisory_lock(x'5ea7'::int, $1)", &[&tag])
        .await
        .expect("a builder's lock");
    let ninth = snapshot(&people.analyst).await;
    assert_eq!(ninth.status, 409, "{:#}", ninth.body);
    assert_eq!(registered().await, 8);
    // Another organisation is not held back by this one's queue.
    let foreign = snapshot(&people.foreign_lead).await;
    assert_eq!(foreign.status, 202, "{:#}", foreign.body);
    // Five finish: an explanation fits again, and is built.
    admin
        .execute(
            "UPDATE report_snapshots SET state = 'failed' WHERE id = ANY($1)",
            &[&building[..5].to_vec()],
        )
        .await
        .expect("five finished");
    let explanation = explain().await;
    assert_eq!(explanation.status, 202, "{:#}", explanation.body);
    let id = explanation.body["id"].as_str().expect("an id").to_owned();
    when_built(
        &server,
        &format!("/api/v1/reports/outcomes/explanations/{id}"),
    )
    .await;
    server.stop().await;
}
