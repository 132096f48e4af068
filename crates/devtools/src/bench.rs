//! `casebook bench append`: the event store's append rate beside PostgreSQL's own, measured in
//! the same run on the same cluster.
//!
//! The baseline is `pgbench` inserting the same rows (same columns, indexes and defaults, one
//! event per transaction) into a copy of the events table without triggers; the store appends
//! one event per call to fresh streams through the pool. Both run for the same time at each
//! client count, and the result is a ratio, not a timed assertion.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use db::{Cluster, ClusterKind, PoolSettings};
use eventstore::{AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent};
use serde_json::json;
use uuid::Uuid;

/// Options for the append benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct AppendBench {
    /// Concurrent clients to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub clients: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Where to put the benchmark's own cluster (removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

const PGBENCH_SCRIPT: &str = "\
INSERT INTO bench_rows (event_id, stream_id, stream_type, stream_version, event_type, schema_version, payload, \
actor_id, actor_role, organisation_id, correlation_id, occurred_at, recorded_at, hash) \
VALUES (gen_random_uuid(), gen_random_uuid(), 'client', 1, 'ContactRecorded', 1, \
'{\"mode\": \"phone\", \"minutes\": 20, \"n\": 1}', gen_random_uuid(), 'link_worker', gen_random_uuid(), \
gen_random_uuid(), now(), now(), sha256('x'::bytea));
";

/// One measurement at a client count: pgbench's rate beside ours, our latencies, and how many
/// of our requests failed (`None` where a failure stops the run instead).
pub(crate) struct Figure {
    pub(crate) clients: usize,
    pub(crate) pgbench_tps: f64,
    pub(crate) rate: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) errors: Option<usize>,
}

/// Runs `measure` on a benchmark's own durable cluster in `dir` (default: a new temporary
/// directory), then stops the cluster and removes its directory, whether `measure` succeeded
/// or not.
///
/// # Errors
/// No server binaries, the cluster does not start or stop, or `measure` fails.
pub(crate) async fn in_cluster<T>(
    dir: Option<PathBuf>,
    pg_bin: Option<PathBuf>,
    measure: impl AsyncFnOnce(&Cluster) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let cluster = start_cluster(dir, pg_bin).await?;
    let outcome = measure(&cluster).await;
    stop_cluster(cluster).await?;
    outcome
}

/// Runs `measure` as [`in_cluster`] does and prints the lines of its table.
///
/// # Errors
/// As [`in_cluster`].
pub(crate) async fn print_lines(
    dir: Option<PathBuf>,
    pg_bin: Option<PathBuf>,
    measure: impl AsyncFnOnce(&Cluster) -> anyhow::Result<Vec<String>>,
) -> anyhow::Result<()> {
    for line in in_cluster(dir, pg_bin, measure).await? {
        println!("{line}");
    }
    Ok(())
}

async fn start_cluster(dir: Option<PathBuf>, pg_bin: Option<PathBuf>) -> anyhow::Result<Cluster> {
    let bin_dir = db::find_bin_dir(pg_bin, std::env::var_os("PATH"))?;
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("casebook-bench-{}", std::process::id()))
    });
    Ok(tokio::task::spawn_blocking(move || {
        Cluster::ensure_running(&dir, &bin_dir, ClusterKind::Durable)
    })
    .await??)
}

/// A new database `name` as [`fresh_database`] makes it, with `bench_rows`, a copy of the
/// events table without its triggers for pgbench to insert into, and pgbench's `script`
/// written to the cluster's directory as `file`; the owner's connection and configuration, and
/// the script.
///
/// # Errors
/// A database or file failure.
pub(crate) async fn baseline_database(
    cluster: &Cluster,
    name: &str,
    file: &str,
    script: &str,
) -> anyhow::Result<(tokio_postgres::Client, tokio_postgres::Config, PathBuf)> {
    let (admin, admin_config) = fresh_database(cluster, name).await?;
    admin
        .batch_execute("CREATE TABLE bench_rows (LIKE events INCLUDING ALL)")
        .await
        .context("creating the baseline table")?;
    let path = cluster.dir().join(file);
    std::fs::write(&path, script)?;
    Ok((admin, admin_config, path))
}

/// A new database `name` as [`fresh_database`] makes it, and an event store over it as the
/// service's role (a pool of 8) that seals personal fields as the service does; with the
/// owner's connection.
///
/// # Errors
/// A database failure, or no randomness for the key.
pub(crate) async fn sealed_store(
    cluster: &Cluster,
    name: &str,
) -> anyhow::Result<(tokio_postgres::Client, EventStore)> {
    let (admin, admin_config) = fresh_database(cluster, name).await?;
    let pool = db::pool(db::app_config(&admin_config), PoolSettings { max_size: 8 })?;
    let store = EventStore::new(pool, app::upcasters()).with_protection(app::privacy::protection(
        eventstore::MasterKey::generate().map_err(anyhow::Error::msg)?,
    ));
    Ok((admin, store))
}

/// A new database `name` on the benchmark's cluster (dropped first if a run left one),
/// migrated; its owner's connection and configuration.
///
/// # Errors
/// A database failure.
pub(crate) async fn fresh_database(
    cluster: &Cluster,
    name: &str,
) -> anyhow::Result<(tokio_postgres::Client, tokio_postgres::Config)> {
    let postgres = db::connect(&cluster.admin_config("postgres")).await?;
    postgres
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    postgres
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let admin_config = cluster.admin_config(name);
    let mut admin = db::connect(&admin_config).await?;
    db::migrate(&mut admin).await?;
    Ok((admin, admin_config))
}

/// Stops a benchmark's cluster and removes its directory.
async fn stop_cluster(cluster: Cluster) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let result = cluster.stop();
        let _ = std::fs::remove_dir_all(cluster.dir());
        result
    })
    .await??;
    Ok(())
}

/// Runs the benchmark in `cluster`; the lines of its table.
///
/// # Errors
/// When a tool or a step fails.
pub(crate) async fn measure(
    cluster: &Cluster,
    options: &AppendBench,
) -> anyhow::Result<Vec<String>> {
    let (_admin, admin_config, script) =
        baseline_database(cluster, "bench", "append.sql", PGBENCH_SCRIPT).await?;
    let max_clients = options.clients.iter().copied().max().unwrap_or(1);
    let pool = db::pool(
        db::app_config(&admin_config),
        PoolSettings {
            max_size: max_clients,
        },
    )?;
    let store = EventStore::new(pool, app::upcasters());

    let mut figures = Vec::new();
    for &clients in &options.clients {
        let pgbench_tps = pgbench(cluster, "bench", &script, clients, options.seconds)?;
        let (store_eps, p50, p99) =
            store_rate(&store, clients, Duration::from_secs(options.seconds)).await?;
        eprintln!("{clients} clients: pgbench {pgbench_tps:.0}/s, store {store_eps:.0}/s");
        figures.push(Figure {
            clients,
            pgbench_tps,
            rate: store_eps,
            p50,
            p99,
            errors: None,
        });
    }
    Ok(rate_table(
        format!(
            "append rate, one event per transaction, fsync on, {}s per figure",
            options.seconds
        ),
        ["pgbench inserts/s", "store appends/s", "store"],
        &figures,
    ))
}

/// The lines of a table of `figures` under `heading`; `columns` names pgbench's rate, ours,
/// and whose latencies they are. An errors column follows where the figures count errors.
pub(crate) fn rate_table(heading: String, columns: [&str; 3], figures: &[Figure]) -> Vec<String> {
    let [baseline, ours, latency] = columns;
    let counts_errors = figures.iter().any(|f| f.errors.is_some());
    let mut header =
        format!("| clients | {baseline} | {ours} | ratio | {latency} p50 ms | {latency} p99 ms |");
    let mut rule = "|---".repeat(6) + "|";
    if counts_errors {
        header += " errors |";
        rule += "---|";
    }
    let mut lines = vec![heading, header, rule];
    for f in figures {
        let mut row = format!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |",
            f.clients,
            f.pgbench_tps,
            f.rate,
            f.rate / f.pgbench_tps,
            f.p50.as_secs_f64() * 1000.0,
            f.p99.as_secs_f64() * 1000.0
        );
        if let Some(errors) = f.errors {
            row += &format!(" {errors} |");
        }
        lines.push(row);
    }
    lines
}

/// Runs `pgbench` with `script` on `database` for `seconds` at `clients`; its transactions
/// per second.
///
/// # Errors
/// When pgbench fails or prints no rate.
pub(crate) fn pgbench(
    cluster: &Cluster,
    database: &str,
    script: &std::path::Path,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let out = cluster
        .tool("pgbench")
        .args(["-n", "-M", "prepared", "-f"])
        .arg(script)
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
            "-T",
            &seconds.to_string(),
            database,
        ])
        .output()
        .context("running pgbench")?;
    if !out.status.success() {
        bail!("pgbench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no tps in pgbench output: {text}"))
}

/// The `p`th percentile (0 to 100) of sorted figures.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(((sorted.len() - 1) as f64) * p / 100.0).round() as usize]
}

/// Runs `f` `runs` times, one after the other; each run's milliseconds, sorted.
///
/// # Errors
/// The first run that fails.
pub(crate) async fn timed<F, Fut>(runs: usize, mut f: F) -> anyhow::Result<Vec<f64>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let started = Instant::now();
        f(i).await?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

async fn store_rate(
    store: &EventStore,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<(f64, Duration, Duration)> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while start.elapsed() < duration {
                let began = Instant::now();
                store.append(one_event()).await?;
                latencies.push(began.elapsed());
            }
            Ok::<_, eventstore::StoreError>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(rate(latencies, start))
}

/// The rate of the requests that took `latencies` since `start`, per second, and their median
/// and 99th percentile latency.
pub(crate) fn rate(mut latencies: Vec<Duration>, start: Instant) -> (f64, Duration, Duration) {
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    (latencies.len() as f64 / elapsed, pick(0.5), pick(0.99))
}

fn one_event() -> AppendRequest {
    AppendRequest {
        stream_id: Uuid::new_v4(),
        stream_type: "client".to_owned(),
        expected: ExpectedVersion::NoStream,
        events: vec![NewEvent {
            event_id: Uuid::new_v4(),
            event_type: "ContactRecorded".to_owned(),
            schema_version: 1,
            payload: json!({ "mode": "phone", "minutes": 20, "n": 1 }),
            personal_paths: Vec::new(),
        }],
        metadata: worker_metadata(Uuid::new_v4(), Uuid::new_v4()),
        idempotency_key: None,
        fingerprint: None,
        lookups: None,
        claims: Vec::new(),
    }
}

/// What a bench's events record as done: by the link worker `actor` of `organisation`, now.
pub(crate) fn worker_metadata(actor: Uuid, organisation: Uuid) -> Metadata {
    Metadata {
        actor_id: actor,
        actor_role: "link_worker".to_owned(),
        organisation_id: organisation,
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
    }
}
