//! `casebook bench http`: referrals through the HTTP API (authentication, validation, decide,
//! append: the whole path) at several client counts, beside `pgbench` writing the same two
//! rows per transaction on the same cluster.
//!
//! Each request is a referral of someone new (`POST /api/v1/clients/{id}/referrals`), which
//! appends two events (`ClientRegistered`, `ReferralReceived`) in one transaction; so the
//! pgbench baseline inserts two rows per transaction into a copy of the events table.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use app::access::{self, NewStaff, Role};
use db::{Cluster, PoolSettings};
use eventstore::EventStore;
use serde_json::json;
use uuid::Uuid;

use crate::bench::Figure;

/// Options for the HTTP benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpBench {
    /// Concurrent clients to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
    pub clients: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Connections in the server's pool (the service's default is 16).
    #[arg(long, default_value_t = 16)]
    pub pool_size: usize,
    /// Where to put the benchmark's own cluster (removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Store personal fields in plaintext, to measure what sealing them costs (the service
    /// always seals them).
    #[arg(long)]
    pub unsealed: bool,
}

const PGBENCH_TWO_ROWS: &str = "\
BEGIN;
INSERT INTO bench_rows (event_id, stream_id, stream_type, stream_version, event_type, schema_version, payload, \
actor_id, actor_role, organisation_id, correlation_id, occurred_at, recorded_at, hash) \
VALUES (gen_random_uuid(), gen_random_uuid(), 'client', 1, 'ClientRegistered', 1, \
'{\"area\": \"Frome\", \"personal\": {\"given_name\": \"Maggie\", \"family_name\": \"Thornbury\"}}', gen_random_uuid(), 'referrer', gen_random_uuid(), \
gen_random_uuid(), now(), now(), sha256('x'::bytea));
INSERT INTO bench_rows (event_id, stream_id, stream_type, stream_version, event_type, schema_version, payload, \
actor_id, actor_role, organisation_id, correlation_id, occurred_at, recorded_at, hash) \
VALUES (gen_random_uuid(), gen_random_uuid(), 'client', 2, 'ReferralReceived', 1, \
'{\"source\": \"gp\", \"reasons\": [\"loneliness_isolation\"], \"urgency\": \"routine\"}', gen_random_uuid(), 'referrer', gen_random_uuid(), \
gen_random_uuid(), now(), now(), sha256('x'::bytea));
COMMIT;
";

/// Runs the benchmark in `cluster`; the lines of its table.
///
/// # Errors
/// When a tool or a step fails.
pub(crate) async fn measure(cluster: &Cluster, options: &HttpBench) -> anyhow::Result<Vec<String>> {
    let (admin, admin_config, script) =
        crate::bench::baseline_database(cluster, "bench_http", "referral.sql", PGBENCH_TWO_ROWS)
            .await?;

    let organisation = access::ensure_organisation(&admin, "Bench Service").await?;
    let referrer = access::add_staff(
        &admin,
        &NewStaff {
            organisation_id: organisation,
            team_id: None,
            name: "Bench GP".to_owned(),
            role: Role::Referrer,
            capacity: None,
        },
    )
    .await?;
    let token = access::issue_token(
        &admin,
        referrer.staff_id,
        chrono::Duration::days(1),
        "bench",
        access::TokenIssuer::System,
    )
    .await?
    .token;

    let max_clients = options.clients.iter().copied().max().unwrap_or(1);
    let pool = db::pool(
        db::app_config(&admin_config),
        PoolSettings {
            max_size: options.pool_size,
        },
    )?;
    let mut store = EventStore::new(pool, app::upcasters());
    if !options.unsealed {
        let key = eventstore::MasterKey::generate().map_err(anyhow::Error::msg)?;
        store = store.with_protection(app::privacy::protection(key));
    }
    // The service's HTTP application, served as `casebook serve` serves it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a port")?;
    let base = format!("http://{}", listener.local_addr()?);
    api::http::install_metrics();
    let state = api::http::AppState::with_clock(store, app::Clock::system());
    let app = actix_web::HttpServer::new(move || api::http::app(state.clone()))
        .disable_signals()
        .listen(listener)?
        .run();
    let handle = app.handle();
    let server = tokio::spawn(app);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(max_clients)
        .build()?;

    let mut figures = Vec::new();
    for &clients in &options.clients {
        let pgbench_tps =
            crate::bench::pgbench(cluster, "bench_http", &script, clients, options.seconds)?;
        let (http_rps, p50, p99, errors) = http_rate(
            &http,
            &base,
            &token,
            clients,
            Duration::from_secs(options.seconds),
        )
        .await?;
        eprintln!("{clients} clients: pgbench {pgbench_tps:.0} tx/s, HTTP {http_rps:.0}/s");
        figures.push(Figure {
            clients,
            pgbench_tps,
            rate: http_rps,
            p50,
            p99,
            errors: Some(errors),
        });
    }
    handle.stop(true).await;
    let _ = server.await;
    let mut lines = crate::bench::rate_table(
        format!(
            "referrals through the HTTP API (2 events each, one transaction), fsync on, {}s per figure",
            options.seconds
        ),
        ["pgbench 2-row tx/s", "HTTP referrals/s", "HTTP"],
        &figures,
    );
    lines.push(format!(
        "peak RSS of this process (server and load together): {} MB",
        crate::bench_rebuild::peak_rss_mb()
    ));
    Ok(lines)
}

async fn http_rate(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<(f64, Duration, Duration, usize)> {
    let start = Instant::now();
    let today = chrono::Utc::now().date_naive().to_string();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let http = http.clone();
        let url = format!("{base}/api/v1/clients");
        let token = token.to_owned();
        let today = today.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while start.elapsed() < duration {
                let client = Uuid::new_v4();
                let body = json!({
                    "client": {
                        "personal": {
                            "given_name": "Maggie", "family_name": "Thornbury",
                            "date_of_birth": "1948-05-02", "nhs_number": null, "phone": null,
                            "email": null, "address": null, "postcode": "BA11 1PX"
                        },
                        "area": "Frome"
                    },
                    "referral": {
                        "referral_id": Uuid::new_v4(), "source": "gp",
                        "referrer": { "staff_id": null, "name": null, "organisation": "Frome Medical Practice" },
                        "reasons": ["loneliness_isolation"], "urgency": "routine",
                        "received_on": today, "note": null
                    }
                });
                let began = Instant::now();
                let reply = http
                    .post(format!("{url}/{client}/referrals"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                match reply {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let _ = r.bytes().await;
                        latencies.push(began.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await?;
        latencies.extend(l);
        errors += e;
    }
    let (rate, p50, p99) = crate::bench::rate(latencies, start);
    Ok((rate, p50, p99, errors))
}
