//! `casebook directory import | export`: the directory in Open Referral UK JSON, in and out.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use app::directory::{DirectoryService, ImportReport, OrukPage};
use eventstore::EventStore;
use projector::{DirectoryProjection, ProjectionError, Runner, RunnerSettings};
use uuid::Uuid;

/// Imports an ORUK document (text) as the operator at `at`, for itself or for the
/// organisation in `options`, with a progress bar when `progress`. The importer owns what it
/// lists and touches nothing another owner listed (those records are reported as skipped;
/// `withdraw_missing` withdraws only the importer's).
///
/// # Errors
/// A document that is not an ORUK page or list, or a store failure.
pub async fn import_text(
    store: &EventStore,
    text: &str,
    options: ImportOptions,
    progress: bool,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<ImportReport> {
    let directory = DirectoryService::new(store.clone());
    let metadata = directory.operator_for(options.organisation, at).await?;
    let document: serde_json::Value = serde_json::from_str(text).context("the file is not JSON")?;
    let records = app::directory::records_of(document).map_err(anyhow::Error::msg)?;
    let bar = crate::rebuild::progress_bar(
        progress,
        records.len() as u64,
        "importing [{bar:40}] {human_pos}/{human_len} services, {eta} left",
    );
    let report = directory
        .import(records, options.withdraw_missing, &metadata, |n| {
            bar.inc(n as u64)
        })
        .await;
    bar.finish_and_clear();
    Ok(report?)
}

/// How an import is done.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportOptions {
    /// Withdraw the importer's listed services the file does not name.
    pub withdraw_missing: bool,
    /// Import as this organisation's (its services, which its administrators and team leads
    /// change); `None`: the operator's own.
    pub organisation: Option<Uuid>,
}

/// Imports an ORUK file.
///
/// # Errors
/// As [`import_text`], and an unreadable file.
pub async fn import_file(
    store: &EventStore,
    path: &Path,
    options: ImportOptions,
    progress: bool,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<ImportReport> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    import_text(store, &text, options, progress, at).await
}

/// A report in lines for people.
pub fn describe(report: &ImportReport) -> String {
    let mut text = format!(
        "{} records: {} added, {} changed, {} withdrawn, {} unchanged, {} skipped, {} rejected\n",
        report.records,
        report.added.len(),
        report.changed.len(),
        report.withdrawn.len(),
        report.unchanged,
        report.skipped.len(),
        report.rejected.len()
    );
    for skipped in &report.skipped {
        text.push_str(&format!(
            "  skipped record {} ({}): {}\n",
            skipped.index, skipped.id, skipped.reason
        ));
    }
    for rejection in &report.rejected {
        text.push_str(&format!(
            "  rejected record {} ({}): {}\n",
            rejection.index,
            rejection.id.as_deref().unwrap_or("no id"),
            rejection.reasons.join("; ")
        ));
    }
    text
}

/// Brings the directory read model up to the log: runs it here when no other process does,
/// else waits (up to a minute) for the one that does.
///
/// # Errors
/// A database failure, or the other process not catching up in time.
pub async fn catch_up(store: &EventStore) -> anyhow::Result<()> {
    let runner = Runner::new(
        store.clone(),
        std::sync::Arc::new(DirectoryProjection),
        Uuid::new_v4(),
        RunnerSettings::default(),
    );
    match runner.catch_up().await {
        Ok(_) => {
            runner.release().await?;
            Ok(())
        }
        Err(ProjectionError::LeaseLost(_)) => {
            for _ in 0..600 {
                let lags = projector::lag(store).await?;
                if lags
                    .iter()
                    .any(|l| l.projection == projector::DIRECTORY && l.events_behind == 0)
                {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::bail!("the directory read model did not catch up within a minute")
        }
        Err(e) => Err(e.into()),
    }
}

/// Every listed service as one ORUK page.
///
/// # Errors
/// A database failure.
pub async fn export(store: &EventStore) -> anyhow::Result<OrukPage> {
    catch_up(store).await?;
    let client = store.pool().get().await?;
    let contents = app::directory::export(&**client).await?;
    let n = contents.len() as i64;
    Ok(OrukPage {
        total_items: n,
        total_pages: i64::from(n > 0),
        page_number: 1,
        size: n,
        first_page: true,
        last_page: true,
        empty: n == 0,
        contents,
    })
}
