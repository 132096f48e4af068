//! Casebook's developer tools: the benchmarks (`casebook bench …`) and the demo population
//! (`casebook demo`, and `serve --demo` in the background), with the demo organisation and the
//! sample directory they use. The `casebook` binary runs them; the product library `casebook`
//! does not contain them.
//!
//! This crate sits below the `casebook` library (whose binary depends on it) and above the
//! layers it exercises: it works through `app`, `api`, `eventstore` and `projector` as the
//! service does. What it needs from the `casebook` library itself, the rebuild of a read
//! model, the binary hands in. It reads no environment: options arrive as arguments.

use std::path::PathBuf;

use eventstore::EventStore;

pub mod bench;
pub mod bench_http;
pub mod bench_import;
pub mod bench_rebuild;
pub mod bench_scale;
pub mod bench_search;
pub mod bench_tasks;
pub mod demo;
pub mod history_sample;
pub mod population;

pub use bench_rebuild::{ReadModel, Rebuilt};

/// The benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Appends per second at several client counts, beside pgbench inserting the same rows.
    Append(bench::AppendBench),
    /// Rebuilding every read model from a large log, beside reading it with COPY ... TO.
    Rebuild(bench_rebuild::RebuildBench),
    /// Referrals through the HTTP API at several client counts, beside pgbench.
    Http(bench_http::HttpBench),
    /// Caseload and journey latency at 10M events, beside the raw reads they are built on.
    Scale(bench_scale::ScaleBench),
    /// Directory search latency at 10,000 services, beside a primary-key lookup.
    Search(bench_search::SearchBench),
    /// The history import into the log, beside COPY of the same rows.
    Import(bench_import::ImportBench),
}

impl Bench {
    /// Where the benchmark's own cluster goes (a new temporary directory when `None`).
    fn dir(&self) -> Option<PathBuf> {
        match self {
            Bench::Append(options) => options.dir.clone(),
            Bench::Rebuild(options) => options.dir.clone(),
            Bench::Http(options) => options.dir.clone(),
            Bench::Scale(options) => options.dir.clone(),
            Bench::Search(options) => options.dir.clone(),
            Bench::Import(options) => options.dir.clone(),
        }
    }
}

/// Runs one benchmark in its own cluster (the PostgreSQL binaries in `pg_bin`, or found) and
/// prints its figures. `rebuild` rebuilds a read model from the first event as
/// `casebook rebuild --restart` does.
///
/// # Errors
/// When the cluster cannot be started or a step fails.
pub async fn bench(
    which: Bench,
    pg_bin: Option<PathBuf>,
    rebuild: impl AsyncFn(&EventStore, ReadModel) -> anyhow::Result<Rebuilt>,
) -> anyhow::Result<()> {
    let dir = which.dir();
    bench::print_lines(dir, pg_bin, async |cluster| match &which {
        Bench::Append(options) => bench::measure(cluster, options).await,
        Bench::Rebuild(options) => bench_rebuild::measure(cluster, options, &rebuild).await,
        Bench::Http(options) => bench_http::measure(cluster, options).await,
        Bench::Scale(options) => bench_scale::measure(cluster, options, &rebuild).await,
        Bench::Search(options) => bench_search::measure(cluster, options).await,
        Bench::Import(options) => bench_import::measure(cluster, options).await,
    })
    .await
}
