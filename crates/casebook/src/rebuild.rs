//! `casebook rebuild` and `casebook compare`: replay the log into a projection under a rule
//! version beside the figures in use, with a progress bar and resume, then switch reports to
//! it; and show two versions' figures side by side. The log itself is only read.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use eventstore::EventStore;
use indicatif::{ProgressBar, ProgressStyle};
use projector::rules::Rules;
use projector::{
    DirectoryProjection, OutcomesProjection, Projection, Runner, RunnerSettings, ShadowCaseload,
    Together,
};
use uuid::Uuid;

/// The read model a rebuild replays the log into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebuildTarget {
    /// The caseload, into its shadow table beside the live one.
    Caseload,
    /// The outcome figures under a rule version (`projections/outcomes/v{rules}.toml`), into
    /// their own rows beside the figures in use.
    Outcomes {
        /// The rule version.
        rules: i32,
    },
    /// The directory, in place and from the first event: it is small, and needs no other
    /// process running it.
    Directory,
    /// The tasks, in place and from the first event, as the directory (a task is its own small
    /// stream; nothing else runs it meanwhile).
    Tasks,
    /// Every read model from one read of the log: the caseload into its shadow, the directory
    /// in place, and the outcome figures under every rule version kept and under `rules`. Each
    /// batch is read and decoded once and written to all of them (one transaction per
    /// connection, a few side by side, each moving its projections' checkpoints; the caseload's
    /// and the outcome figures' held across batches and written every 200,000 events); after a run
    /// left part-way once it had written (or finished without its switch) each resumes from its
    /// own checkpoint, the log read once from the earliest; otherwise they start again from the
    /// first event.
    All {
        /// The rule version to build (if it is not kept yet) and, with `switch`, make live.
        rules: i32,
    },
}

/// How a rebuild runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildOptions {
    /// Start again from the first event instead of resuming from the last committed batch.
    pub restart: bool,
    /// Switch reads to the rebuilt model when done (the outcomes version becomes live; the
    /// shadow caseload's rows replace the live ones). The directory is rebuilt in place, so it
    /// is always in use.
    pub switch: bool,
    /// Show a progress bar on standard error.
    pub progress: bool,
}

impl Default for RebuildOptions {
    /// Resume, switch when done, no progress bar: `casebook rebuild` without flags, quietly.
    fn default() -> RebuildOptions {
        RebuildOptions {
            restart: false,
            switch: true,
            progress: false,
        }
    }
}

/// What a rebuild did.
#[derive(Debug)]
pub struct RebuildReport {
    pub projection: String,
    pub events: u64,
    pub seconds: f64,
    /// Whether reports now use it.
    pub switched: bool,
}

/// Rebuilds `target` beside the one in use (the directory in place, from the first event).
/// Resumes from the last batch it committed unless `options.restart`; stops at the log's head
/// as it was at the start; then switches to it when `options.switch`.
///
/// # Errors
/// A rule version this build does not know, a database failure, or another process holding
/// the projection.
pub async fn rebuild(
    store: &EventStore,
    target: RebuildTarget,
    options: &RebuildOptions,
) -> anyhow::Result<RebuildReport> {
    let projection: Arc<dyn Projection> = match target {
        RebuildTarget::Outcomes { rules } => Arc::new(OutcomesProjection::new(Rules::load(rules)?)),
        RebuildTarget::Caseload => Arc::new(ShadowCaseload),
        RebuildTarget::Directory => Arc::new(DirectoryProjection),
        RebuildTarget::Tasks => Arc::new(projector::TasksProjection),
        RebuildTarget::All { rules } => return rebuild_all(store, rules, options).await,
    };
    // The directory and the tasks are small: rebuilt in place, from the first event, while
    // nothing else runs them.
    let in_place = matches!(target, RebuildTarget::Directory | RebuildTarget::Tasks);
    let restart = options.restart || in_place;
    if let RebuildTarget::Outcomes { rules } = target {
        let client = store.pool().get().await?;
        projector::start_version(&client, projector::OUTCOMES, rules).await?;
    }
    let runner = Runner::new(
        store.clone(),
        projection.clone(),
        Uuid::new_v4(),
        RunnerSettings {
            batch_size: 2000,
            ..RunnerSettings::default()
        },
    );
    if restart {
        runner
            .reset()
            .await
            .with_context(|| format!("{} is being run by another process", projection.name()))?;
    }
    let (checkpoint, applied_before) = runner.position().await?;
    let (head, remaining) = store.lag(checkpoint).await?;
    let bar = progress_bar(options.progress, remaining.max(0) as u64, EVENTS_BAR);
    bar.set_message(format!(
        "{} (from {} already applied)",
        projection.name(),
        applied_before
    ));
    let started = Instant::now();
    let events = runner.catch_up_to(Some(head), |n| bar.inc(n)).await;
    bar.finish_and_clear();
    runner.release().await?;
    let events = events.with_context(|| format!("rebuilding {}", projection.name()))?;
    let seconds = started.elapsed().as_secs_f64();
    let switched = match target {
        RebuildTarget::Directory | RebuildTarget::Tasks => true,
        RebuildTarget::All { .. } => unreachable!("rebuilt by rebuild_all"),
        _ if !options.switch => false,
        RebuildTarget::Outcomes { rules } => {
            let mut client = store.pool().get().await?;
            projector::switch_live(&mut client, projector::OUTCOMES, rules).await?;
            true
        }
        RebuildTarget::Caseload => {
            let mut client = store.pool().get().await?;
            projector::switch_rebuilt_caseload(&mut client, Uuid::new_v4()).await?;
            // The next rebuild starts from the first event again (the reset takes the lease
            // again: give it back).
            runner.reset().await?;
            runner.release().await?;
            true
        }
    };
    Ok(RebuildReport {
        projection: projection.name().to_owned(),
        events,
        seconds,
        switched,
    })
}

/// Rebuilds every read model from one read of the log (see [`RebuildTarget::All`]).
async fn rebuild_all(
    store: &EventStore,
    rules: i32,
    options: &RebuildOptions,
) -> anyhow::Result<RebuildReport> {
    let latest = Rules::load(rules)?;
    let mut projections: Vec<Arc<dyn Projection>> =
        vec![Arc::new(ShadowCaseload), Arc::new(DirectoryProjection)];
    {
        let client = store.pool().get().await?;
        projector::start_version(&client, projector::OUTCOMES, rules).await?;
        for version in projector::versions(&client, projector::OUTCOMES).await? {
            if version.rules_version == rules {
                continue;
            }
            projections.push(Arc::new(OutcomesProjection::new(Rules::load(
                version.rules_version,
            )?)));
        }
    }
    projections.push(Arc::new(OutcomesProjection::new(latest)));
    let together = Together::new(
        store.clone(),
        projections,
        Uuid::new_v4(),
        RunnerSettings {
            batch_size: 10_000,
            ..RunnerSettings::default()
        },
    );
    let names = together.names().join(", ");
    // A run left part-way (or finished without its switch) resumes, each read model from its own
    // checkpoint; any other starts from the first event.
    if options.restart || !together.resumable().await? {
        together
            .reset()
            .await
            .with_context(|| format!("one of {names} is being run by another process"))?;
    }
    let (checkpoint, applied_before) = together
        .position()
        .await?
        .context("no read model to rebuild")?;
    let (head, remaining) = store.lag(checkpoint).await?;
    let bar = progress_bar(options.progress, remaining.max(0) as u64, EVENTS_BAR);
    bar.set_message(format!("{names} (from {applied_before} already applied)"));
    let started = Instant::now();
    let events = together.catch_up_to(Some(head), |n| bar.inc(n)).await;
    bar.finish_and_clear();
    if let Err(e) = together.release().await {
        // The rebuild's own outcome matters more; the leases expire by themselves.
        tracing::warn!(error = %e, "giving the rebuild's leases up failed; they expire on their own");
    }
    let events = events.with_context(|| format!("rebuilding {names}"))?;
    let seconds = started.elapsed().as_secs_f64();
    if options.switch {
        let mut client = store.pool().get().await?;
        projector::switch_live(&mut client, projector::OUTCOMES, rules).await?;
        projector::switch_rebuilt_caseload(&mut client, Uuid::new_v4()).await?;
        // The next rebuild of the caseload starts from the first event again.
        let shadow = Runner::new(
            store.clone(),
            Arc::new(ShadowCaseload),
            Uuid::new_v4(),
            RunnerSettings::default(),
        );
        shadow.reset().await?;
        shadow.release().await?;
    }
    Ok(RebuildReport {
        projection: names,
        events,
        seconds,
        switched: options.switch,
    })
}

/// How a rebuild shows its progress.
const EVENTS_BAR: &str = "{msg} [{bar:40}] {human_pos}/{human_len} events, {per_sec}, {eta} left";

/// A progress bar for `len` steps on standard error, drawn with `template`, or a hidden one.
pub(crate) fn progress_bar(shown: bool, len: u64, template: &str) -> ProgressBar {
    let bar = if shown {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// The outcome figures of two rule versions side by side, as text.
///
/// # Errors
/// A database failure, or a version with no figures.
pub async fn compare(
    store: &EventStore,
    a: i32,
    b: i32,
    organisation_id: Option<Uuid>,
) -> anyhow::Result<String> {
    // Published figures: small counts suppressed, as in the API's reports.
    let reader = app::reports::Reader::Operator { organisation_id };
    let comparison = app::reports::Reporting::new(store.clone())
        .compare_for(reader, &app::reports::ReportQuery::default(), a, b)
        .await
        .map_err(|e| match e {
            app::AppError::BadInput { field, message } => {
                let v = if field == "b" { b } else { a };
                anyhow::anyhow!("{message}; run `casebook rebuild outcomes --rules {v}` first")
            }
            other => other.into(),
        })?;
    let (left, right) = (&comparison.a, &comparison.b);
    // A suppressed figure shows as `*`.
    fn cell<T: std::fmt::Display>(x: Option<T>) -> String {
        x.map_or_else(|| "*".to_owned(), |x| x.to_string())
    }
    let mut out = String::new();
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "{:<28} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "measure", "paired", "improved", "no change", "worse", "mean chg"
    );
    for (version, report) in [(a, left), (b, right)] {
        for m in &report.measures {
            let _ = writeln!(
                out,
                "{:<28} {:>9} {:>8}% {:>8}% {:>8}% {:>9}",
                format!("{} (rules v{version})", m.measure),
                cell(m.paired),
                cell(m.improved_percent),
                cell(m.no_change_percent),
                cell(m.worse_percent),
                cell(m.mean_change)
            );
        }
    }
    let _ = writeln!(out);
    if comparison.differences.is_empty() {
        let _ = writeln!(out, "no figure differs between rules v{a} and v{b}");
    } else {
        let _ = writeln!(
            out,
            "{:<48} {:>12} {:>12}",
            "figure",
            format!("v{a}"),
            format!("v{b}")
        );
        for d in &comparison.differences {
            let _ = writeln!(out, "{:<48} {:>12} {:>12}", d.figure, cell(d.a), cell(d.b));
        }
    }
    Ok(out)
}

/// Drops the figures of an outcomes rule version that reports no longer use: its rows, its
/// checkpoint and its entry. The log is untouched; `casebook rebuild` can make it again.
///
/// # Errors
/// The live version, an unknown version, or a database failure.
pub async fn drop_version(store: &EventStore, version: i32) -> anyhow::Result<()> {
    let mut client = store.pool().get().await?;
    let versions = projector::versions(&client, projector::OUTCOMES).await?;
    match versions.iter().find(|v| v.rules_version == version) {
        None => anyhow::bail!("there are no figures under rules version {version}"),
        Some(v) if v.state == projector::VersionState::Live => anyhow::bail!(
            "rules version {version} is the one reports use; rebuild and switch to another first"
        ),
        Some(_) => {}
    }
    let rules = Rules::load(version)?;
    let projection = OutcomesProjection::new(rules);
    let tx = client.transaction().await?;
    projection.reset(&tx).await?;
    let name = projector::outcomes_name(version);
    projector::bookkeeping::forget(&*tx, &name, Some((projector::OUTCOMES, version))).await?;
    tx.commit().await?;
    Ok(())
}
