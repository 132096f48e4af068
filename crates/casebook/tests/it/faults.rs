//! Faults under load, against the real binary and its private cluster: the service killed, the
//! database's postmaster killed, the database stopped at once. Clients send keyed referrals and
//! send every one again, with the same key and body, until it is accepted; afterwards every
//! accepted write is in the log exactly once, every read model equals a clean rebuild and the
//! hash chains verify.
//!
//! What is asserted never depends on timing: waits are bounded only as a safety net.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::process::{DataDir, Running, casebook_ok, start, stop};

/// The longest anything here is waited for: a safety bound, not a measure.
const PATIENCE: Duration = Duration::from_secs(180);

/// Clients sending at once, and the referrals each sends one after another.
const CLIENTS: usize = 4;
const EACH: usize = 25;

/// One new client's keyed referral, sent again and again as it was the first time.
#[derive(Clone, Debug)]
struct Referral {
    client: Uuid,
    key: String,
    body: Value,
}

impl Referral {
    fn new() -> Referral {
        // The service's clock is the test's (both a year ahead under `.ci/a-year-ahead`).
        let received_on = (chrono::Utc::now() - chrono::Duration::days(3)).date_naive();
        Referral {
            client: Uuid::new_v4(),
            key: Uuid::new_v4().to_string(),
            body: json!({
                "client": {
                    "personal": {
                        "given_name": "Test", "family_name": "Person",
                        "date_of_birth": null, "nhs_number": null, "phone": null,
                        "email": null, "address": null, "postcode": null
                    },
                    "area": "Frome"
                },
                "referral": {
                    "referral_id": Uuid::new_v4(), "source": "gp",
                    "referrer": { "staff_id": null, "name": null, "organisation": null },
                    "reasons": ["loneliness_isolation"], "urgency": "routine",
                    "received_on": received_on, "note": null
                }
            }),
        }
    }
}

/// What one attempt came to.
#[derive(Debug)]
enum Sent {
    /// 2xx, with the body.
    Accepted(Value),
    /// 503, with its `Retry-After`.
    Unavailable(Option<String>),
    /// No answer (the service is down) or another server error.
    Failed(String),
}

/// The service as the clients see it: its address moves when it is started again.
struct Target {
    base: Mutex<String>,
    token: String,
    http: reqwest::Client,
    /// Attempts by outcome ("201", "201 replayed", "503", "no answer", ...), for the test's
    /// output.
    outcomes: Mutex<std::collections::BTreeMap<String, usize>>,
}

impl Target {
    fn new(base: &str, token: String) -> Arc<Target> {
        Arc::new(Target {
            base: Mutex::new(base.to_owned()),
            token,
            http: reqwest::Client::new(),
            outcomes: Mutex::new(Default::default()),
        })
    }

    fn base(&self) -> String {
        self.base.lock().expect("the address").clone()
    }

    fn move_to(&self, base: &str) {
        *self.base.lock().expect("the address") = base.to_owned();
    }

    fn count(&self, outcome: String) {
        *self
            .outcomes
            .lock()
            .expect("the counts")
            .entry(outcome)
            .or_default() += 1;
    }

    async fn send(&self, referral: &Referral) -> Sent {
        let url = format!(
            "{}/api/v1/clients/{}/referrals",
            self.base(),
            referral.client
        );
        let reply = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header("idempotency-key", &referral.key)
            .json(&referral.body)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                self.count("no answer".to_owned());
                return Sent::Failed(e.to_string());
            }
        };
        let status = reply.status();
        // A replayed answer: an earlier attempt was recorded but its answer was lost.
        let replayed = reply.headers().contains_key("idempotent-replayed");
        self.count(format!(
            "{}{}",
            status.as_u16(),
            if replayed { " replayed" } else { "" }
        ));
        let retry_after = reply
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = reply.text().await.unwrap_or_default();
        if status.is_success() {
            Sent::Accepted(serde_json::from_str(&body).expect("a JSON body"))
        } else if status == 503 {
            Sent::Unavailable(retry_after)
        } else if status.is_server_error() {
            Sent::Failed(format!("{status}: {body}"))
        } else {
            panic!("a keyed referral sent again is never refused: {status} {body}");
        }
    }

    /// Sends `referral` until it is accepted; the accepted body.
    async fn until_accepted(&self, referral: &Referral) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let last = match self.send(referral).await {
                Sent::Accepted(body) => return body,
                Sent::Unavailable(_) => "503".to_owned(),
                Sent::Failed(why) => why,
            };
            assert!(
                Instant::now() < deadline,
                "referral {} never accepted; last {last}",
                referral.client
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A client sending referrals: what it sent, each with what was accepted.
type Client = tokio::task::JoinHandle<Vec<(Referral, Value)>>;

/// `CLIENTS` clients, each sending `EACH` referrals one after another, every one until it is
/// accepted; each client's referrals with what was accepted, and a count of accepted ones.
fn load(target: &Arc<Target>) -> (Vec<Client>, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let clients = (0..CLIENTS)
        .map(|_| {
            let (target, accepted) = (target.clone(), accepted.clone());
            tokio::spawn(async move {
                let mut sent = Vec::new();
                for _ in 0..EACH {
                    let referral = Referral::new();
                    let body = target.until_accepted(&referral).await;
                    accepted.fetch_add(1, Ordering::SeqCst);
                    sent.push((referral, body));
                    // Spread the load, so that the fault lands in the middle of it.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                sent
            })
        })
        .collect();
    (clients, accepted)
}

/// Waits until `what` holds (a safety bound only).
async fn wait_until(what: &str, mut holds: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !holds() {
        assert!(Instant::now() < deadline, "waited too long for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn join(clients: Vec<Client>) -> Vec<(Referral, Value)> {
    let mut sent = Vec::new();
    for client in clients {
        sent.extend(client.await.expect("a client finished"));
    }
    sent
}

/// A referrer of a new organisation, made with the administration commands; their token.
fn referrer_token(data_dir: &DataDir) -> String {
    let path = &data_dir.path;
    let organisation = casebook_ok(path, &["org", "add", "Fault Line Link"]);
    let staff = casebook_ok(
        path,
        &[
            "staff",
            "add",
            "--organisation",
            &organisation,
            "--role",
            "referrer",
            "--name",
            "Dr Rees",
        ],
    );
    casebook_ok(path, &["token", "issue", &staff, "--days", "30"])
}

/// Kills a process with SIGKILL.
fn kill_9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -KILL {pid}");
}

/// What `/ready` answers now.
async fn ready(running: &Running) -> reqwest::StatusCode {
    reqwest::get(format!("{}/ready", running.base))
        .await
        .expect("GET /ready")
        .status()
}

/// The service's metrics, as Prometheus text.
async fn metrics(running: &Running) -> String {
    reqwest::get(format!("{}/metrics", running.base))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics")
}

/// Waits until every projection has applied the whole log, as `/ready` reports it.
async fn wait_until_projected(running: &Running) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let ready = http
            .get(format!("{}/ready", running.base))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let mut last = String::new();
        if let Ok(ready) = ready
            && ready.status() == 200
        {
            let body: Value = ready.json().await.expect("JSON");
            let level = body["projections"]
                .as_array()
                .is_some_and(|all| all.iter().all(|p| p["events_behind"] == 0));
            if level {
                return;
            }
            last = body.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the projections never caught up: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every accepted referral is in the log exactly once: its client's stream holds its registration
/// and its referral, the referral the acceptance (a referrer's receipt) named, and the log holds
/// no other referral.
async fn check_recorded_once(data_dir: &DataDir, sent: &[(Referral, Value)]) {
    let db = data_dir.connect().await;
    for (referral, accepted) in sent {
        let stored: Vec<(String, Option<String>)> = db
            .query(
                "SELECT event_type, payload->>'referral_id' FROM events WHERE stream_id = $1 \
                 ORDER BY stream_version",
                &[&referral.client],
            )
            .await
            .expect("the stream")
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        assert_eq!(accepted["client_id"], json!(referral.client), "{accepted}");
        let referral_id = referral.body["referral"]["referral_id"].clone();
        assert_eq!(accepted["referral_id"], referral_id, "{accepted}");
        assert_eq!(
            stored,
            [
                ("ClientRegistered".to_owned(), None),
                (
                    "ReferralReceived".to_owned(),
                    referral_id.as_str().map(str::to_owned)
                )
            ],
            "client {}",
            referral.client
        );
    }
    let referrals: i64 = db
        .query_one(
            "SELECT count(*) FROM events WHERE event_type = 'ReferralReceived'",
            &[],
        )
        .await
        .expect("a count")
        .get(0);
    assert_eq!(referrals, sent.len() as i64, "no referral twice, none lost");
}

/// Every read model `serve` keeps, table by table, as sorted rows of JSON: the caseload, the
/// directory and every outcome figure table (all rule versions).
fn read_model_tables() -> Vec<&'static str> {
    ["caseload", "directory_services"]
        .into_iter()
        .chain(projector::FIGURE_TABLES.iter().copied())
        .collect()
}

async fn read_models(data_dir: &DataDir) -> std::collections::BTreeMap<&'static str, Vec<String>> {
    let db = data_dir.connect().await;
    let mut models = std::collections::BTreeMap::new();
    for table in read_model_tables() {
        let rows = db
            .query(
                &format!("SELECT to_jsonb(t)::text FROM {table} t ORDER BY 1"),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("reading {table}: {e}"))
            .iter()
            .map(|row| row.get(0))
            .collect();
        models.insert(table, rows);
    }
    models
}

/// After a fault: the projections catch up, every accepted referral is recorded once, and, the
/// service stopped, every read model equals one rebuilt from the log and `verify` finds every
/// hash chain intact. The rebuilds run straight after `serve` stops: it gives its projection
/// leases up as it stops, so `rebuild --restart` need not wait for them to expire.
async fn check_after_the_fault(data_dir: DataDir, running: Running, sent: &[(Referral, Value)]) {
    wait_until_projected(&running).await;
    check_recorded_once(&data_dir, sent).await;
    let log = crate::process::stop_and_log(running);

    let live = read_models(&data_dir).await;
    assert_eq!(
        live["caseload"].len(),
        sent.len(),
        "one caseload row per referred client"
    );
    assert!(
        !live["report_referrals"].is_empty(),
        "the referrals are counted"
    );
    for args in [
        &["rebuild", "caseload"][..],
        &["rebuild", "outcomes", "--restart"],
        &["rebuild", "directory"],
    ] {
        let out = crate::process::casebook(&data_dir.path, args, &[]);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success() && stdout.contains("reports now use it"),
            "{args:?}: {stdout}{stderr}\nserve's log, to its end:\n{log}"
        );
    }
    let rebuilt = read_models(&data_dir).await;
    for table in read_model_tables() {
        assert_eq!(
            rebuilt[table], live[table],
            "{table} equals a clean rebuild"
        );
    }
    let out = casebook_ok(&data_dir.path, &["verify"]);
    assert!(out.starts_with("ok: "), "{out}");
    data_dir.remove();
}

/// `serve` started in a blocking section (it waits for the server's address).
fn start_serving(data_dir: &DataDir) -> Running {
    tokio::task::block_in_place(|| start(&data_dir.path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_killed_mid_load_and_started_again_loses_no_accepted_referral_and_doubles_none() {
    let data_dir = DataDir::new("kill-serve");
    let running = start_serving(&data_dir);
    let target = Target::new(&running.base, referrer_token(&data_dir));

    let (clients, accepted) = load(&target);
    wait_until("a third of the load", || {
        accepted.load(Ordering::SeqCst) >= CLIENTS * EACH / 3
    })
    .await;
    running.kill();
    assert!(
        data_dir.postmaster_pid().is_some(),
        "the cluster outlives the service"
    );
    let running = start_serving(&data_dir);
    target.move_to(&running.base);
    let sent = join(clients).await;

    eprintln!(
        "attempts: {:?}",
        target.outcomes.lock().expect("the counts")
    );
    check_after_the_fault(data_dir, running, &sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_immediately_mid_load_is_restarted_by_serve_and_nothing_is_lost_or_doubled()
 {
    let data_dir = DataDir::new("stop-pg");
    let mut running = start_serving(&data_dir);
    let target = Target::new(&running.base, referrer_token(&data_dir));
    let cluster = data_dir.cluster();

    let (clients, accepted) = load(&target);
    wait_until("a third of the load", || {
        accepted.load(Ordering::SeqCst) >= CLIENTS * EACH / 3
    })
    .await;
    tokio::task::block_in_place(|| data_dir.stop_cluster_immediately(&cluster));
    let sent = join(clients).await;

    eprintln!(
        "attempts: {:?}",
        target.outcomes.lock().expect("the counts")
    );
    assert!(running.is_running(), "the same service throughout");
    assert!(
        running
            .log()
            .contains("restarted the private PostgreSQL cluster"),
        "{}",
        running.log()
    );
    check_after_the_fault(data_dir, running, &sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_restarts_its_private_cluster_when_the_postmaster_is_killed() {
    let data_dir = DataDir::new("kill-postmaster");
    let mut running = start_serving(&data_dir);
    let target = Target::new(&running.base, referrer_token(&data_dir));
    let first = Referral::new();
    let mut sent = vec![(first.clone(), target.until_accepted(&first).await)];

    // Holding the cluster's start lock keeps it down until the outage has been seen.
    let lock = data_dir.hold_start_lock();
    kill_9(data_dir.postmaster_pid().expect("a running cluster"));
    // Referrals are sent until one is refused for the outage (a backend not yet gone may take
    // one first); every one is sent again below until accepted, as a client would.
    let mut pending = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let referral = Referral::new();
        let attempt = target.send(&referral).await;
        pending.push(referral);
        match attempt {
            Sent::Unavailable(retry_after) => {
                assert_eq!(retry_after.as_deref(), Some("5"));
                break;
            }
            other => assert!(Instant::now() < deadline, "no outage seen: {other:?}"),
        }
    }
    // Readiness says so too, once no connection of the pool reaches a live backend.
    while ready(&running).await != 503 {
        assert!(Instant::now() < deadline, "/ready never said 503");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(lock);

    for referral in pending {
        let accepted = target.until_accepted(&referral).await;
        // Again, once it is in: the stored answer, nothing new.
        assert_eq!(target.until_accepted(&referral).await, accepted);
        sent.push((referral, accepted));
    }
    assert!(running.is_running(), "the same service throughout");
    // The server answers as soon as PostgreSQL accepts connections, a moment before the
    // supervisor hears `pg_ctl start` return and says so: wait for its word (bounded).
    let said = |log: &str| {
        log.contains("the private PostgreSQL cluster stopped unexpectedly")
            && log.contains("restarted the private PostgreSQL cluster")
    };
    while !said(&running.log()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = running.log();
    assert!(said(&log), "{log}");
    let metrics = metrics(&running).await;
    assert!(
        metrics.contains("casebook_cluster_restarts_total{outcome=\"restarted\"} 1"),
        "{metrics}"
    );
    check_after_the_fault(data_dir, running, &sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_gives_up_after_its_restart_attempts_and_heals_when_the_cluster_is_started_by_hand() {
    let data_dir = DataDir::new("give-up");
    let running = tokio::task::block_in_place(|| {
        crate::process::start_with(&data_dir.path, &["--cluster-restart-attempts", "2"])
    });

    // The server killed, and its configuration broken before anything may start it again.
    let lock = data_dir.hold_start_lock();
    let postmaster = data_dir.postmaster_pid().expect("a running cluster");
    kill_9(postmaster);
    let conf = data_dir.path.join("postgres/data/postgresql.conf");
    let good = std::fs::read_to_string(&conf).expect("the configuration");
    std::fs::write(&conf, format!("{good}\nthis is not a setting\n")).expect("break it");
    drop(lock);

    wait_until("the supervisor to give up", || {
        running
            .log()
            .contains("gave up restarting the private PostgreSQL cluster")
    })
    .await;
    let log = running.log();
    assert_eq!(
        log.matches("restarting the private PostgreSQL cluster failed")
            .count(),
        2,
        "{log}"
    );
    let metrics = metrics(&running).await;
    assert!(
        metrics.contains("casebook_cluster_restarts_total{outcome=\"failed\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("casebook_cluster_up 0"), "{metrics}");
    assert_eq!(ready(&running).await, 503);

    // Mended and started by hand, the service answers again without being restarted.
    std::fs::write(&conf, good).expect("mend it");
    // (`pg_ctl` takes a dead server that is not yet reaped for a running one.)
    wait_until("the killed server to be reaped", || {
        !std::path::Path::new(&format!("/proc/{postmaster}")).exists()
    })
    .await;
    tokio::task::block_in_place(|| data_dir.cluster());
    let deadline = Instant::now() + PATIENCE;
    while ready(&running).await != 200 {
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_until("the supervisor to see it running", || {
        running
            .log()
            .contains("the private PostgreSQL cluster is running again")
    })
    .await;
    stop(running);
    data_dir.remove();
}

/// A cluster stopped on purpose, with the maintenance marker in its directory, is left
/// stopped; once the marker goes, the supervisor starts it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_stopped_for_maintenance_is_left_stopped_until_the_marker_goes() {
    let data_dir = DataDir::new("maintenance");
    let running = tokio::task::block_in_place(|| crate::process::start(&data_dir.path));
    let marker = data_dir
        .path
        .join("postgres")
        .join(::casebook::supervisor::MAINTENANCE_FILE);
    std::fs::write(&marker, "backing up\n").expect("the marker");
    let postmaster = data_dir.postmaster_pid().expect("a running cluster");
    kill_9(postmaster);
    wait_until("the supervisor to hold off", || {
        running
            .log()
            .contains("stopped for maintenance; not restarting it")
    })
    .await;
    assert_eq!(ready(&running).await, 503, "left stopped");
    assert!(
        !running
            .log()
            .contains("restarted the private PostgreSQL cluster"),
        "{}",
        running.log()
    );
    std::fs::remove_file(&marker).expect("the marker goes");
    wait_until("the supervisor to start it again", || {
        running
            .log()
            .contains("restarted the private PostgreSQL cluster")
    })
    .await;
    stop(running);
    data_dir.remove();
}
