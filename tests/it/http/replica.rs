//! Casebook on more than one server: a streaming replica made by `pg_basebackup` (synchronous,
//! `testkit::ReplicatedCluster`), reads of read models from it, and a failover under load.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use app::access::{self, Role};
use eventstore::EventStore;
use projector::{Runner, RunnerSettings};
use serde_json::{Value, json};
use testkit::ReplicatedCluster;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::Person;
use super::journey::{client_path, intake};
use crate::support::{OUTCOME_TABLES, table_rows};

/// The staff the tests act as, in one organisation and team.
/// (Referrals are sent by the lead: staff are answered with the log position of what they
/// wrote, which these tests follow; a referrer gets a receipt without it.)
struct Staff {
    lead: Person,
    worker: Person,
    analyst: Person,
}

async fn staff(admin: &tokio_postgres::Client) -> Staff {
    let org = access::ensure_organisation(admin, "Mendip Link")
        .await
        .expect("organisation");
    let team = access::ensure_team(admin, org, "Frome")
        .await
        .expect("team")
        .0;
    Staff {
        lead: super::person(admin, org, Some(team), Role::TeamLead, "Lena Lead").await,
        worker: super::person(admin, org, Some(team), Role::LinkWorker, "Wyn Worker").await,
        analyst: super::person(admin, org, None, Role::ReportingAnalyst, "Ana Analyst").await,
    }
}

/// The service's store on one server, as the service's role, sealing personal fields.
fn store_on(config: &tokio_postgres::Config) -> EventStore {
    let pool = db::pool(config.clone(), db::PoolSettings { max_size: 8 }).expect("a pool");
    crate::support::protected(EventStore::new(pool, app::upcasters()))
}

/// Every projection's runner in the background, as `casebook serve` runs them, under one
/// holder, with a short lease so that another instance takes over soon after this one dies.
struct Projectors {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    _listener: eventstore::Listener,
}

fn runner_settings() -> RunnerSettings {
    RunnerSettings {
        lease_ttl: Duration::from_secs(2),
        ..RunnerSettings::default()
    }
}

async fn run_projectors(config: &tokio_postgres::Config, holder: Uuid) -> Projectors {
    let listener = eventstore::Listener::start(config.clone());
    let store = store_on(config).with_listener(&listener);
    let (stop, stopped) = watch::channel(false);
    let tasks = projector::all(&store)
        .await
        .expect("the projections")
        .into_iter()
        .map(|projection| {
            let runner = Runner::new(store.clone(), projection, holder, runner_settings());
            let stopped = stopped.clone();
            tokio::spawn(async move {
                runner.run(stopped).await.expect("the runner stops cleanly");
            })
        })
        .collect();
    Projectors {
        stop,
        tasks,
        _listener: listener,
    }
}

impl Projectors {
    /// Stops them and waits until they have.
    async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await.expect("a runner task");
        }
    }

    /// Stops them where they are, as a process that dies would.
    fn kill(self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The HTTP service on a loopback port over `primary`, reading caseloads, reports and
/// directory searches from `replica` when given.
struct Service {
    base: String,
    handle: ServerHandle,
}

fn serve(
    primary: &tokio_postgres::Config,
    replica: Option<&tokio_postgres::Config>,
    max_wait: Duration,
) -> Service {
    let mut state = api::http::AppState::with_clock(store_on(primary), app::Clock::system())
        .with_read_wait(app::ReadWait::at_most(max_wait));
    if let Some(replica) = replica {
        state = state.with_replica(store_on(replica));
    }
    let app = casebook::Application::build("127.0.0.1:0", state).expect("binding");
    let base = format!("http://{}", app.address());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    Service { base, handle }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(3))
        .build()
        .expect("an HTTP client")
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    who: &Person,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let request = match body {
        Some(body) => http.post(format!("{base}{path}")).json(body),
        None => http.get(format!("{base}{path}")),
    };
    let response = request
        .bearer_auth(&who.token)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Posts a command and insists on 201; returns the log position of its last event.
async fn command(http: &reqwest::Client, base: &str, who: &Person, path: &str, body: Value) -> i64 {
    let (status, reply) = call(http, base, who, path, Some(&body)).await;
    assert_eq!(status, 201, "POST {path}: {reply:#}");
    reply["position"]
        .as_i64()
        .unwrap_or_else(|| panic!("a command's position: {reply:#}"))
}

/// A referral accepted and assigned to `staff.worker`: the position of the assignment.
async fn open_case(http: &reqwest::Client, base: &str, staff: &Staff, client: Uuid) -> i64 {
    let referral = Uuid::new_v4();
    command(
        http,
        base,
        &staff.lead,
        &client_path(client, "referrals"),
        intake(referral, "gp"),
    )
    .await;
    command(
        http,
        base,
        &staff.lead,
        &client_path(client, "referral-acceptances"),
        json!({ "referral_id": referral }),
    )
    .await;
    command(
        http,
        base,
        &staff.lead,
        &client_path(client, "assignment"),
        json!({ "link_worker_id": staff.worker.staff_id, "team_id": staff.worker.team_id }),
    )
    .await
}

fn caseload_has(body: &Value, client: Uuid) -> bool {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a caseload page: {body:#}"))
        .iter()
        .any(|item| item["client_id"] == client.to_string())
}

/// Waits until the primary's own read models have passed `after` (the replica's cannot pass
/// it before they do).
async fn primary_passed(primary: &tokio_postgres::Config, after: i64) {
    let store = store_on(primary);
    let names: Vec<String> = projector::all(&store)
        .await
        .expect("the projections")
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    app::Freshness::new(store, app::ReadWait::at_most(Duration::from_secs(60)))
        .wait(&names, Some(after))
        .await
        .expect("the primary's read models pass the write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_from_the_replica_wait_for_the_replica_to_have_the_write() {
    let pair = ReplicatedCluster::start().await;
    let admin = db::connect(&pair.primary_admin()).await.expect("connect");
    let staff = staff(&admin).await;
    let projectors = run_projectors(&pair.primary_app(), Uuid::new_v4()).await;
    // The wait is short: while the replica's replay is paused no wait could succeed, and each
    // read that should answer comes after the replica has replayed the primary's read models
    // past the write, so its first look succeeds.
    let service = serve(
        &pair.primary_app(),
        Some(&pair.standby_app()),
        Duration::from_secs(1),
    );
    let http = http();
    let base = service.base.as_str();
    // A read by whoever may make it: the analyst for reports, else the worker.
    let read_as_allowed = async |path: &str| {
        let who = if path.contains("reports") {
            &staff.analyst
        } else {
            &staff.worker
        };
        call(&http, base, who, path, None).await
    };
    // The worker's caseload once the read models have passed `at`, which must answer.
    let caseload_after = async |at: i64| {
        let path = format!("/api/v1/caseload?after={at}");
        let (status, page) = call(&http, base, &staff.worker, &path, None).await;
        assert_eq!(status, 200, "{page:#}");
        page
    };

    // The replica serves the caseload once it has the write.
    let first = Uuid::new_v4();
    let at = open_case(&http, base, &staff, first).await;
    primary_passed(&pair.primary_app(), at).await;
    pair.wait_replayed().await;
    let page = caseload_after(at).await;
    assert!(caseload_has(&page, first), "{page:#}");

    // Replay paused: the replica receives (and, synchronously, flushes) the WAL but shows
    // nothing new, so its read models cannot pass the next write, though the primary's do.
    pair.pause_replay().await;
    let second = Uuid::new_v4();
    let at = open_case(&http, base, &staff, second).await;
    primary_passed(&pair.primary_app(), at).await;
    for path in [
        format!("/api/v1/caseload?after={at}"),
        format!("/api/v1/reports/outcomes?after={at}"),
        format!("/api/v1/reports/service-gaps?after={at}"),
        format!("/api/v1/directory/services?after={at}"),
    ] {
        let (status, body) = read_as_allowed(&path).await;
        assert_eq!(
            status, 503,
            "{path}: the replica's read models have not passed the write: {body:#}"
        );
    }
    // Without `after` the answer is the replica's, as of before the write.
    let (status, page) = call(&http, base, &staff.worker, "/api/v1/caseload", None).await;
    assert_eq!(status, 200, "{page:#}");
    assert!(
        caseload_has(&page, first) && !caseload_has(&page, second),
        "{page:#}"
    );
    // And it says it is behind: counted on the primary, not on the replica, which has not
    // replayed the new events and would count none.
    assert!(
        page["as_of"]["behind"].as_i64() >= Some(1),
        "a replica behind the primary says so: {page:#}"
    );
    let (status, report) = call(
        &http,
        base,
        &staff.analyst,
        "/api/v1/reports/outcomes",
        None,
    )
    .await;
    assert_eq!(status, 200, "{report:#}");
    assert!(report["as_of"]["behind"].as_i64() >= Some(1), "{report:#}");
    // A position no event has is still refused, after asking the primary.
    let (status, body) = call(
        &http,
        base,
        &staff.worker,
        &format!("/api/v1/caseload?after={}", at + 1_000_000),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(body["errors"][0]["field"], "query.after", "{body:#}");

    // Replay resumed: once the replica has the projectors' commit, the same reads answer.
    pair.resume_replay().await;
    let page = caseload_after(at).await;
    assert!(caseload_has(&page, second), "{page:#}");
    assert!(
        page["as_of"]["position"].as_i64() >= Some(at),
        "as of the write or later: {page:#}"
    );
    for path in [
        format!("/api/v1/reports/outcomes?after={at}"),
        format!("/api/v1/reports/service-gaps?after={at}"),
        format!("/api/v1/directory/services?after={at}"),
    ] {
        let (status, body) = read_as_allowed(&path).await;
        assert_eq!(status, 200, "{path}: {body:#}");
    }

    service.handle.stop(true).await;
    projectors.stop().await;
}

/// One client's acknowledged referral: the record, the referral and where the log put it.
#[derive(Clone, Copy, Debug)]
struct Acknowledged {
    client: Uuid,
    referral: Uuid,
    position: i64,
}

/// Refers `n` new clients one after another, each under its own `Idempotency-Key`, through
/// whichever service `base` names now; a request that is not acknowledged (no answer, or a
/// 5xx) is sent again with the same key and body until it is.
async fn refer(
    base: watch::Receiver<String>,
    who: Person,
    n: usize,
    acknowledged: Arc<AtomicUsize>,
) -> (Vec<Acknowledged>, usize) {
    let http = http();
    let mut done = Vec::new();
    let mut retries = 0;
    for _ in 0..n {
        let client = Uuid::new_v4();
        let referral = Uuid::new_v4();
        let body = intake(referral, "gp");
        let key = format!("referral-{referral}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let position = loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a referral was not acknowledged within two minutes"
            );
            let url = format!("{}{}", *base.borrow(), client_path(client, "referrals"));
            let sent = http
                .post(url)
                .bearer_auth(&who.token)
                .header("Idempotency-Key", &key)
                .json(&body)
                .send()
                .await;
            match sent {
                Ok(response) if response.status().as_u16() == 201 => {
                    let reply: Value = response.json().await.expect("a command's reply");
                    break reply["position"].as_i64().expect("a position");
                }
                Ok(response) if response.status().is_server_error() => {}
                Ok(response) => {
                    let status = response.status();
                    let reply: Value = response.json().await.unwrap_or(Value::Null);
                    panic!("a referral refused with {status}: {reply:#}");
                }
                Err(_) => {}
            }
            retries += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        acknowledged.fetch_add(1, Ordering::SeqCst);
        done.push(Acknowledged {
            client,
            referral,
            position,
        });
    }
    (done, retries)
}

/// Every row of the caseload and of every outcome table, in a fixed order.
async fn read_models(client: &tokio_postgres::Client) -> Vec<Value> {
    let tables: Vec<&str> = std::iter::once("caseload")
        .chain(OUTCOME_TABLES.iter().copied())
        .collect();
    table_rows(client, &tables).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_under_load_loses_no_acknowledged_referral_and_no_projector_skips_or_repeats() {
    let pair = ReplicatedCluster::start().await;
    let admin = db::connect(&pair.primary_admin()).await.expect("connect");
    let staff = staff(&admin).await;
    drop(admin);
    let projectors = run_projectors(&pair.primary_app(), Uuid::new_v4()).await;
    let service = serve(&pair.primary_app(), None, Duration::from_secs(5));
    let (base, bases) = watch::channel(service.base.clone());

    // Load: a few clients refer people, each retrying what was not acknowledged.
    let clients = 4;
    let per_client = 12;
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn(refer(
                bases.clone(),
                staff.lead.clone(),
                per_client,
                Arc::clone(&acknowledged),
            ))
        })
        .collect();

    // A third of the way in, the primary dies; the standby is promoted and the service (with
    // its projectors) starts again on it, as an operator pointing the URL at the new primary.
    while acknowledged.load(Ordering::SeqCst) < clients * per_client / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pair.crash_primary().await;
    let before_failover = acknowledged.load(Ordering::SeqCst);
    projectors.kill();
    service.handle.stop(false).await;
    pair.promote_standby().await;
    let projectors = run_projectors(&pair.standby_app(), Uuid::new_v4()).await;
    let service = serve(&pair.standby_app(), None, Duration::from_secs(5));
    base.send(service.base.clone()).expect("the clients listen");

    let mut done = Vec::new();
    let mut retries = 0;
    for task in load {
        let (acked, retried) = task.await.expect("a client");
        done.extend(acked);
        retries += retried;
    }
    assert_eq!(done.len(), clients * per_client);
    assert!(
        before_failover < done.len(),
        "the failover came during the load ({before_failover} of {} acknowledged before it)",
        done.len()
    );
    tracing::info!(before_failover, retries, "failover load finished");

    // Every acknowledged referral is on the new primary exactly once, where it was acknowledged.
    let new_primary = db::connect(&pair.standby_admin())
        .await
        .expect("connect to the new primary");
    let referrals: HashMap<Uuid, i64> = new_primary
        .query(
            "SELECT (payload->>'referral_id')::uuid, count(*) FROM events \
             WHERE event_type = 'ReferralReceived' GROUP BY 1",
            &[],
        )
        .await
        .expect("the referrals")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        referrals.len(),
        done.len(),
        "no referral but the acknowledged ones"
    );
    for ack in &done {
        assert_eq!(
            referrals.get(&ack.referral),
            Some(&1),
            "referral {} is in the log once",
            ack.referral
        );
        let row = new_primary
            .query_one(
                "SELECT stream_id, (SELECT count(*) FROM events WHERE stream_id = $2) \
                 FROM events WHERE position = $1",
                &[&ack.position, &ack.client],
            )
            .await
            .expect("the acknowledged position is in the log");
        let stream: Uuid = row.get(0);
        let events: i64 = row.get(1);
        assert_eq!(
            stream, ack.client,
            "the acknowledged position is the client's"
        );
        assert_eq!(events, 2, "registered and referred, once each");
    }
    match eventstore::verify(&new_primary).await.expect("verify") {
        eventstore::VerifyReport::Ok { .. } => {}
        broken => panic!("the log verifies after the failover: {broken:?}"),
    }

    // The projectors that took over from the replicated checkpoints, then finished, applied
    // every event exactly once: their counts are the log's, and the read models are what a
    // clean rebuild makes.
    service.handle.stop(true).await;
    projectors.stop().await;
    let store = store_on(&pair.standby_app());
    let holder = Uuid::new_v4();
    let runners: Vec<Runner> = projector::all(&store)
        .await
        .expect("the projections")
        .into_iter()
        .map(|projection| Runner::new(store.clone(), projection, holder, runner_settings()))
        .collect();
    for runner in &runners {
        // The stopped runners gave nothing back: this waits for their leases to expire.
        loop {
            match runner.catch_up().await {
                Ok(_) => break,
                Err(projector::ProjectionError::LeaseLost(_)) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("catching up {}: {e}", runner.name()),
            }
        }
    }
    let total: i64 = testkit::query_value(&new_primary, "SELECT count(*) FROM events", &[]).await;
    for runner in &runners {
        let (_, applied) = runner.position().await.expect("a checkpoint");
        assert_eq!(applied, total, "{} applied every event once", runner.name());
    }
    let after_failover = read_models(&new_primary).await;
    assert!(
        after_failover[0]
            .as_array()
            .is_some_and(|rows| rows.len() == done.len()),
        "a caseload row per referred client"
    );
    for runner in &runners {
        runner.reset().await.expect("reset");
        assert_eq!(
            runner.catch_up().await.expect("rebuild"),
            total as u64,
            "{} rebuilt",
            runner.name()
        );
    }
    assert_eq!(read_models(&new_primary).await, after_failover);
}
