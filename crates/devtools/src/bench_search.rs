//! `casebook bench search`: directory search latency at a national directory's size, beside a
//! primary-key lookup of one service on the same table and cluster (the floor a query cannot
//! beat).
//!
//! The directory is the sample's services many times over, each copy with its own id and
//! name and spread over many areas, imported through the same path as `directory import`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use app::directory::{DirectoryQuery, DirectoryService, OrukQuery, Ranked, SEARCH_CANDIDATES};
use db::{Cluster, PoolSettings};
use domain::NeedDomain;
use eventstore::EventStore;
use projector::{DirectoryProjection, Runner, RunnerSettings};
use serde_json::Value;
use uuid::Uuid;

use crate::bench::{percentile, timed};

/// Options for the search benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct SearchBench {
    /// Services in the directory.
    #[arg(long, default_value_t = 10_000)]
    pub services: usize,
    /// Timed runs of each query.
    #[arg(long, default_value_t = 500)]
    pub runs: usize,
    /// Where to put the benchmark's own cluster (removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// `n` services: the sample's, copied with new ids, numbered names and their own areas.
fn services(n: usize) -> anyhow::Result<Vec<Value>> {
    let page: Value = serde_json::from_str(crate::demo::SAMPLE_DIRECTORY)?;
    let sample = page["contents"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("the sample has no contents"))?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut record = sample[i % sample.len()].clone();
        let copy = i / sample.len();
        record["id"] = Value::String(Uuid::new_v4().to_string());
        if copy > 0 {
            let name = record["name"].as_str().unwrap_or("Service").to_owned();
            record["name"] = Value::String(format!("{name} {copy}"));
            record["service_areas"] =
                serde_json::json!([{ "id": Uuid::new_v4(), "name": format!("District {copy}") }]);
        }
        out.push(record);
    }
    Ok(out)
}

/// Runs the benchmark in `cluster`; the lines of its table.
///
/// # Errors
/// When a step fails.
pub(crate) async fn measure(
    cluster: &Cluster,
    options: &SearchBench,
) -> anyhow::Result<Vec<String>> {
    let (admin, admin_config) = crate::bench::fresh_database(cluster, "bench_search").await?;
    let pool = db::pool(db::app_config(&admin_config), PoolSettings { max_size: 8 })?;
    let store = EventStore::new(pool, app::upcasters());

    // Import in four parts at once (the ids differ, so they never meet).
    let records = services(options.services)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for part in records.chunks(options.services.div_ceil(4).max(1)) {
        let directory = DirectoryService::new(store.clone());
        let part = part.to_vec();
        tasks.push(tokio::spawn(async move {
            directory
                .import(
                    part,
                    false,
                    &app::operator_metadata(chrono::Utc::now()),
                    |_| {},
                )
                .await
        }));
    }
    let mut imported = 0;
    for task in tasks {
        imported += task.await??.added.len();
    }
    let import_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    // Nothing else runs the directory's projection in the benchmark's own cluster.
    let runner = Runner::new(
        store.clone(),
        Arc::new(DirectoryProjection),
        Uuid::new_v4(),
        RunnerSettings::default(),
    );
    runner.catch_up().await?;
    runner.release().await?;
    let project_seconds = started.elapsed().as_secs_f64();
    admin
        .batch_execute("VACUUM ANALYZE directory_services")
        .await?;

    let client = store.pool().get().await?;
    let ids: Vec<Uuid> = client
        .query("SELECT service_id FROM directory_services", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let baseline = timed(options.runs, |i| {
        let client = &client;
        let id = ids[i % ids.len()];
        async move {
            client
                .query_one(
                    "SELECT record FROM directory_services WHERE service_id = $1",
                    &[&id],
                )
                .await?;
            Ok(())
        }
    })
    .await?;
    let floor = percentile(&baseline, 50.0);
    let row = |name: &str, times: &[f64]| {
        format!(
            "| {name} | {:.2} | {:.2} | {:.1} |",
            percentile(times, 50.0),
            percentile(times, 99.0),
            percentile(times, 50.0) / floor
        )
    };
    let query = |text: Option<&str>, need: Option<NeedDomain>, area: Option<&str>, available| {
        DirectoryQuery {
            text: text.map(str::to_owned),
            need,
            area: area.map(str::to_owned),
            available_only: available,
            offset: 0,
            limit: 20,
        }
    };
    let searches = [
        (
            "words: \"lonely older people\"",
            query(Some("lonely older people"), None, None, false),
        ),
        (
            "words + area: \"debt advice\" in Frome",
            query(Some("debt advice"), None, Some("Frome"), false),
        ),
        (
            "need + area + available",
            query(None, Some(NeedDomain::MentalWellbeing), Some("BA5"), true),
        ),
        (
            "need only (many matches)",
            query(None, Some(NeedDomain::LonelinessIsolation), None, false),
        ),
        (
            "phrase and exclusion",
            query(Some("\"walking for health\" -frome"), None, None, false),
        ),
    ];
    let mut lines = vec![
        format!(
            "directory search over {} services ({imported} imported in {import_seconds:.1} s, {:.0} services/s; projected in {project_seconds:.1} s), {} runs each, 20 results a page",
            ids.len(),
            imported as f64 / import_seconds,
            options.runs
        ),
        "| what | p50 ms | p99 ms | p50 ratio to the primary-key lookup |".to_owned(),
        "|---|---|---|---|".to_owned(),
        format!(
            "| primary-key lookup of one service | {floor:.2} | {:.2} | 1.0 |",
            percentile(&baseline, 99.0)
        ),
    ];
    for (name, q) in &searches {
        let found = std::cell::Cell::new((0, Ranked::EveryMatch));
        let times = timed(options.runs, |_| {
            let client = &client;
            let found = &found;
            async move {
                let (page, ranked) =
                    app::directory::search_ranked(&***client, q, SEARCH_CANDIDATES).await?;
                found.set((page.len(), ranked));
                Ok(())
            }
        })
        .await?;
        let (on_page, ranked) = found.get();
        lines.push(row(
            &format!("{name} ({on_page} on the page; ranked: {ranked:?})"),
            &times,
        ));
    }
    let oruk = OrukQuery {
        search: Some("befriending".to_owned()),
        page: 2,
        per_page: 50,
        ..OrukQuery::default()
    };
    let times = timed(options.runs, |_| {
        let client = &client;
        let oruk = &oruk;
        async move {
            app::directory::oruk_page(&***client, oruk).await?;
            Ok(())
        }
    })
    .await?;
    lines.push(row(
        "ORUK /services?search=befriending&page=2&per_page=50",
        &times,
    ));
    Ok(lines)
}
