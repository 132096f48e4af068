//! Reads that see your own writes: `?after=<log position>` on every read of a read model waits
//! until the read model has applied that event (then 503 with `Retry-After`), and every report
//! and caseload says what it is `as_of`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::journey::{accepted_case, assign, client_path, refer_new};
use super::{Reply, TestServer};

/// What `who` reads at `path` with `?after=` position `after`, checked to be as of that
/// position or later.
async fn read_after(server: &TestServer, who: &super::Person, path: &str, after: i64) -> Value {
    let body = server
        .read(who, &format!("{path}?after={after}"))
        .await
        .body;
    let as_of = &body["as_of"];
    assert!(
        as_of["position"].as_i64() >= Some(after),
        "{path}: {as_of:#}"
    );
    body
}

/// The log position of the last event a command wrote.
fn last_position(reply: &Reply) -> i64 {
    reply.body["events"]
        .as_array()
        .and_then(|events| events.last())
        .and_then(|event| event["position"].as_i64())
        .unwrap_or_else(|| panic!("a command's events with positions: {:#}", reply.body))
}

/// The rule version reports use.
async fn live_rules(server: &TestServer) -> i64 {
    let report = server
        .get(&server.people.analyst, "/api/v1/reports/outcomes")
        .await;
    report.body["rules_version"]
        .as_i64()
        .unwrap_or_else(|| panic!("a report's rules version: {:#}", report.body))
}

/// The problem names `query.after`.
fn names_after(reply: &Reply) -> bool {
    reply.body["errors"][0]["field"] == "query.after"
}

async fn recorded_at(server: &TestServer, position: i64) -> chrono::DateTime<chrono::Utc> {
    testkit::query_value(
        &server.db.app_client().await,
        "SELECT recorded_at FROM events WHERE position = $1",
        &[&position],
    )
    .await
}

/// The `as_of.recorded_at` of a reply, parsed.
fn as_of_recorded_at(as_of: &Value) -> chrono::DateTime<chrono::Utc> {
    as_of["recorded_at"]
        .as_str()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| panic!("as_of.recorded_at is a time: {as_of:#}"))
}

#[tokio::test]
async fn a_report_after_a_burst_of_writes_counts_every_one_of_them() {
    // Projectors run in the background, as in `casebook serve`; the wait is long so that a
    // slow machine cannot make the test fail, only a read that answers too soon.
    let server = TestServer::start_waiting(Duration::from_secs(60)).await;
    let _projectors = server.run_projectors().await;
    let people = server.people.clone();
    let burst = 12;
    let mut last = 0;
    for _ in 0..burst {
        let client = accepted_case(&server).await;
        let assigned = assign(&server, client, &people.worker).await;
        last = last_position(&assigned);
    }
    let closed = server
        .ok(
            &people.lead,
            &format!("/api/v1/directory/services/{}/capacity", server.services[0]),
            json!({ "availability": "closed" }),
        )
        .await;
    let directory_last = last_position(&closed);
    assert!(directory_last > last);

    // At once, no sleep: every write is counted.
    let report = read_after(&server, &people.analyst, "/api/v1/reports/outcomes", last).await;
    assert_eq!(report["referrals"]["total"], burst, "{report:#}");
    assert_eq!(report["referrals"]["accepted"], burst);

    let caseload = read_after(&server, &people.worker, "/api/v1/caseload", last).await;
    assert_eq!(
        caseload["items"].as_array().map(Vec::len),
        Some(burst),
        "{caseload:#}"
    );
    let team = people.lead.team_id.expect("a team");
    let workload = read_after(
        &server,
        &people.lead,
        &format!("/api/v1/teams/{team}/workload"),
        last,
    )
    .await;
    let worker = workload["workers"].as_array().and_then(|loads| {
        loads
            .iter()
            .find(|load| load["link_worker_id"] == json!(people.worker.staff_id))
    });
    assert_eq!(worker.map(|w| w["open"].clone()), Some(json!(burst)));

    // The directory's own write, seen by a search and the entry right after it.
    let entry = server
        .read(
            &people.worker,
            &format!(
                "/api/v1/directory/services/{}?after={directory_last}",
                server.services[0]
            ),
        )
        .await;
    assert_eq!(entry.body["availability"], "closed", "{:#}", entry.body);
    let gaps = read_after(
        &server,
        &people.lead,
        "/api/v1/reports/service-gaps",
        directory_last,
    )
    .await;
    let not_taking: i64 = gaps["capacity"]
        .as_array()
        .expect("capacity")
        .iter()
        .filter_map(|c| c["not_taking_referrals"].as_i64())
        .sum();
    assert!(not_taking >= 1, "{:#}", gaps["capacity"]);
    server.stop().await;
}

#[tokio::test]
async fn after_that_names_no_event_is_a_problem_naming_query_after() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let (client, written) = refer_new(&server, &people.worker).await;
    let beyond = last_position(&written) + 1000;
    let live = live_rules(&server).await;
    let journey = format!("{}/journey", client_path(client, ""));
    let record = client_path(client, "");
    let team = people.lead.team_id.expect("a team");
    let reads = [
        (&people.analyst, "/api/v1/reports/outcomes".to_owned()),
        (&people.analyst, "/api/v1/reports/service-gaps".to_owned()),
        (
            &people.analyst,
            format!("/api/v1/reports/outcomes/comparison?a={live}&b={live}"),
        ),
        (&people.worker, "/api/v1/caseload".to_owned()),
        (&people.lead, format!("/api/v1/teams/{team}/caseload")),
        (&people.lead, format!("/api/v1/teams/{team}/workload")),
        (&people.worker, "/api/v1/directory/services".to_owned()),
        (
            &people.worker,
            format!("/api/v1/directory/services/{}", server.services[0]),
        ),
        (&people.auditor, record.clone()),
        (&people.auditor, journey.clone()),
    ];
    for (who, path) in &reads {
        let join = if path.contains('?') { '&' } else { '?' };
        for after in [
            beyond.to_string(),
            "0".to_owned(),
            "-3".to_owned(),
            "soon".to_owned(),
        ] {
            let reply = server.get(who, &format!("{path}{join}after={after}")).await;
            assert_eq!(reply.status, 400, "{path} after={after}: {:#}", reply.body);
            assert!(
                names_after(&reply),
                "{path} after={after}: {:#}",
                reply.body
            );
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json")
            );
        }
    }
    // Reads straight from the log are current: a real position is answered at once, with no
    // projector running.
    let at = last_position(&written);
    server
        .read(&people.auditor, &format!("{record}?after={at}"))
        .await;
    server
        .read(&people.auditor, &format!("{journey}?after={at}"))
        .await;
    server.stop().await;
}

#[tokio::test]
async fn a_read_model_that_is_not_running_answers_503_with_retry_after_within_the_bound() {
    let bound = Duration::from_millis(300);
    let server = TestServer::start_waiting(bound).await;
    let people = server.people.clone();
    let live = live_rules(&server).await;
    // Level with the log before the write: as_of says so.
    let before = server
        .read(&people.analyst, "/api/v1/reports/outcomes")
        .await;
    assert_eq!(before.body["as_of"]["behind"], 0, "{:#}", before.body);
    let level = before.body["as_of"]["position"]
        .as_i64()
        .expect("a position");
    assert!(level > 0, "the sample directory was listed");
    assert_eq!(
        as_of_recorded_at(&before.body["as_of"]),
        recorded_at(&server, level).await
    );

    let (_, written) = refer_new(&server, &people.worker).await;
    let at = last_position(&written);
    // The test server runs no projector in the background: nothing applies the write.
    for (who, path) in [
        (
            &people.analyst,
            format!("/api/v1/reports/outcomes?after={at}"),
        ),
        (
            &people.analyst,
            format!("/api/v1/reports/service-gaps?after={at}"),
        ),
        (
            &people.analyst,
            format!("/api/v1/reports/outcomes/comparison?a={live}&b={live}&after={at}"),
        ),
        (&people.worker, format!("/api/v1/caseload?after={at}")),
        (
            &people.worker,
            format!("/api/v1/directory/services?after={at}"),
        ),
    ] {
        let started = Instant::now();
        let reply = server.get(who, &path).await;
        let waited = started.elapsed();
        assert_eq!(reply.status, 503, "{path}: {:#}", reply.body);
        assert_eq!(reply.header("retry-after"), Some("1"), "{path}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.body["type"], "urn:casebook:problem:not-caught-up");
        assert!(waited >= bound, "{path} gave up after {waited:?}");
        assert!(
            waited < bound + Duration::from_secs(20),
            "{path} waited {waited:?}"
        );
    }
    // Without `after`, the answer comes at once and says how far behind it is.
    let stale = server
        .read(&people.analyst, "/api/v1/reports/outcomes")
        .await;
    assert_eq!(stale.body["as_of"]["position"], level);
    assert_eq!(
        stale.body["as_of"]["behind"], 2,
        "a new client's referral is two events"
    );
    let caseload = server.get(&people.worker, "/api/v1/caseload").await;
    assert_eq!(caseload.body["as_of"]["behind"], 2, "{:#}", caseload.body);

    // Once the projectors have run, the same read is answered, as of the write.
    server.catch_up().await;
    let report = server
        .read(
            &people.analyst,
            &format!("/api/v1/reports/outcomes?after={at}"),
        )
        .await;
    let as_of = &report.body["as_of"];
    assert_eq!(as_of["position"], at, "{as_of:#}");
    assert_eq!(as_of["behind"], 0);
    assert_eq!(as_of_recorded_at(as_of), recorded_at(&server, at).await);
    let comparison = server
        .read(
            &people.analyst,
            &format!("/api/v1/reports/outcomes/comparison?a={live}&b={live}&after={at}"),
        )
        .await;
    assert_eq!(comparison.body["as_of"], *as_of);
    assert_eq!(comparison.body["a"]["as_of"], *as_of);
    assert_eq!(comparison.body["differences"], json!([]));
    let gaps = server
        .get(
            &people.analyst,
            &format!("/api/v1/reports/service-gaps?after={at}"),
        )
        .await;
    assert_eq!(gaps.body["as_of"], *as_of, "{:#}", gaps.body);
    let caseload = server
        .read(&people.worker, &format!("/api/v1/caseload?after={at}"))
        .await;
    assert_eq!(caseload.body["as_of"], *as_of);
    server.stop().await;
}
