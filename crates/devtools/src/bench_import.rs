//! `casebook bench import`: the history import's rate into the log beside `COPY` of the same
//! rows, in the same run on the same cluster.
//!
//! The file is the sample generator's (`history_sample`) for the number of people asked. The
//! import reads it, decides every row through the domain's rules (planning, timed apart), and
//! appends in bulk: sealed, hash-chained, `recorded_at` the database's. The baseline is the
//! same rows, as the import stored them, copied with `COPY ... FROM STDIN` into a copy of the
//! events table without its triggers (same columns, indexes and defaults).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use app::access::Role;
use app::history::{Format, HistoryImport, ImportOptions};
use db::Cluster;
use futures_util::{SinkExt, StreamExt};

use crate::bench::sealed_store;

/// Options for the import benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportBench {
    /// People in the generated export (about 13 events each).
    #[arg(long, default_value_t = 20_000)]
    pub people: usize,
    /// People per bulk append.
    #[arg(long, default_value_t = 250)]
    pub batch_people: usize,
    /// Where to put the benchmark's own cluster (removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

const COLUMNS: &str = "event_id, stream_id, stream_type, stream_version, event_type, \
schema_version, payload, actor_id, actor_role, organisation_id, correlation_id, causation_id, \
idempotency_key, occurred_at, recorded_at, hash";

/// Runs the benchmark in `cluster`; the lines of its table.
///
/// # Errors
/// When a step fails.
pub(crate) async fn measure(
    cluster: &Cluster,
    options: &ImportBench,
) -> anyhow::Result<Vec<String>> {
    let (admin, store) = sealed_store(cluster, "bench_import").await?;
    let access = crate::demo::ensure_demo_access(&admin).await?;
    let clock = app::Clock::system();
    crate::demo::import_sample_directory(&store, access.organisation_id, clock.now()).await?;
    let lead = access
        .staff
        .iter()
        .find(|(role, ..)| *role == Role::TeamLead)
        .map(|(_, id, _)| *id)
        .context("the demo team lead")?;
    let file = crate::history_sample::sample(crate::history_sample::SAMPLE_SEED, options.people);
    let import = HistoryImport::new(
        store.clone(),
        clock,
        ImportOptions {
            system: "Fictional Previous System".to_owned(),
            organisation_id: access.organisation_id,
            assign_to: (domain::StaffId(lead), domain::TeamId(access.team_id)),
            batch_people: options.batch_people,
        },
    )
    .await?;

    let started = Instant::now();
    let (rows, unreadable) = app::history::read_rows(file.as_bytes(), Format::Csv);
    let plan = import.plan(rows).await?;
    let plan_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let report = import.append(&plan, |_| {}).await?;
    let append_seconds = started.elapsed().as_secs_f64();
    let written = report.events_written;

    let started = Instant::now();
    let again = import.append(&plan, |_| {}).await?;
    let again_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(again.events_written == 0, "the second import wrote events");

    // The baseline: the same rows, as stored, through COPY into a copy of the table.
    admin
        .batch_execute("CREATE TABLE bench_rows (LIKE events INCLUDING ALL)")
        .await
        .context("creating the baseline table")?;
    let out = admin
        .copy_out(&format!(
            "COPY (SELECT {COLUMNS} FROM events WHERE actor_role = '{}' ORDER BY position) TO STDOUT",
            app::history::IMPORT_ROLE
        ))
        .await?;
    let mut out = std::pin::pin!(out);
    let mut chunks = Vec::new();
    let mut bytes = 0;
    while let Some(chunk) = out.next().await {
        let chunk = chunk?;
        bytes += chunk.len();
        chunks.push(chunk);
    }
    let started = Instant::now();
    let sink = admin
        .copy_in(&format!("COPY bench_rows ({COLUMNS}) FROM STDIN"))
        .await?;
    let mut sink = std::pin::pin!(sink);
    for chunk in chunks {
        sink.feed(chunk).await?;
    }
    let copied = sink.as_mut().finish().await?;
    let copy_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        copied as usize == written,
        "COPY took {copied} rows of {written}"
    );

    let rate = |events: usize, seconds: f64| events as f64 / seconds.max(1e-9);
    let copy_rate = rate(written, copy_seconds);
    let whole = plan_seconds + append_seconds;
    Ok(vec![
        format!(
            "history import of {} people: {} rows ({} refused), {written} events ({:.0} MB through COPY), fsync on",
            report.people,
            report.rows + unreadable.len(),
            report.refused.len() + unreadable.len(),
            bytes as f64 / 1e6
        ),
        "| what | seconds | events/s | ratio to COPY |".to_owned(),
        "|---|---|---|---|".to_owned(),
        format!(
            "| COPY ... FROM STDIN (the same rows, no rules, no sealing) | {copy_seconds:.2} | {copy_rate:.0} | 1.00 |"
        ),
        format!(
            "| bulk append (sealed, hash-chained) | {append_seconds:.2} | {:.0} | {:.2} |",
            rate(written, append_seconds),
            rate(written, append_seconds) / copy_rate
        ),
        format!(
            "| whole import (reading and deciding every row, then the bulk append) | {whole:.2} | {:.0} | {:.2} |",
            rate(written, whole),
            rate(written, whole) / copy_rate
        ),
        format!(
            "| the same file again (decided, nothing appended) | {:.2} | - | - |",
            plan_seconds + again_seconds
        ),
    ])
}
