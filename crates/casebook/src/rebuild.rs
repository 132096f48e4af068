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
};
use uuid::Uuid;

/// What a rebuild did.
#[derive(Debug)]
pub struct RebuildReport {
    pub projection: String,
    pub events: u64,
    pub seconds: f64,
    /// Whether reports now use it.
    pub switched: bool,
}

/// Rebuilds `projection` beside the one in use: `outcomes` under `rules` (default the latest
/// this build knows) into its own rows, or `caseload` into its shadow table; or `directory`
/// in place, from the first event (it is small, and needs no other process running it). Resumes from the
/// last batch it committed unless `restart`; stops at the log's head as it was at the start;
/// then switches to it unless `keep_live` (the outcomes version becomes live; the shadow
/// caseload's rows replace the live ones in one transaction).
///
/// # Errors
/// An unknown projection or rule version, a database failure, or another process holding
/// the projection.
pub async fn rebuild(
    store: &EventStore,
    projection: &str,
    rules: Option<i32>,
    restart: bool,
    keep_live: bool,
    progress: bool,
) -> anyhow::Result<RebuildReport> {
    let (target, versioned): (Arc<dyn Projection>, Option<i32>) = match projection {
        projector::OUTCOMES => {
            let version = rules.unwrap_or_else(Rules::latest_version);
            let rules = Rules::load(version)?;
            (Arc::new(OutcomesProjection::new(rules)), Some(version))
        }
        "caseload" => {
            anyhow::ensure!(rules.is_none(), "the caseload has no rule versions");
            (Arc::new(ShadowCaseload), None)
        }
        "directory" => {
            anyhow::ensure!(rules.is_none(), "the directory has no rule versions");
            (Arc::new(DirectoryProjection), None)
        }
        other => anyhow::bail!(
            "no projection {other:?}; there are `outcomes`, `caseload` and `directory`"
        ),
    };
    // The directory is small: rebuilt in place, from the first event, while nothing else runs it.
    let in_place = projection == "directory";
    let restart = restart || in_place;
    if let Some(version) = versioned {
        let client = store.pool().get().await?;
        projector::start_version(&client, projector::OUTCOMES, version).await?;
    }
    let runner = Runner::new(
        store.clone(),
        target.clone(),
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
            .with_context(|| format!("{} is being run by another process", target.name()))?;
    }
    let (checkpoint, applied_before) = runner.position().await?;
    let (head, remaining) = store.lag(checkpoint).await?;
    let bar = if progress {
        ProgressBar::new(remaining.max(0) as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {human_pos}/{human_len} events, {per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(format!(
        "{} (from {} already applied)",
        target.name(),
        applied_before
    ));
    let started = Instant::now();
    let events = runner.catch_up_to(Some(head), |n| bar.inc(n)).await;
    bar.finish_and_clear();
    runner.release().await?;
    let events = events.with_context(|| format!("rebuilding {}", target.name()))?;
    let seconds = started.elapsed().as_secs_f64();
    let mut switched = false;
    if in_place {
        switched = true;
    } else if !keep_live {
        let mut client = store.pool().get().await?;
        match versioned {
            Some(version) => {
                projector::switch_live(&mut client, projector::OUTCOMES, version).await?;
            }
            None => {
                projector::switch_rebuilt_caseload(&mut client, Uuid::new_v4()).await?;
                // The next rebuild starts from the first event again.
                runner.reset().await?;
            }
        }
        switched = true;
    }
    Ok(RebuildReport {
        projection: target.name().to_owned(),
        events,
        seconds,
        switched,
    })
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
    let client = store.pool().get().await?;
    let versions = projector::versions(&client, projector::OUTCOMES).await?;
    for v in [a, b] {
        anyhow::ensure!(
            versions.iter().any(|x| x.rules_version == v),
            "no figures under rules version {v}; run `casebook rebuild outcomes --rules {v}` first"
        );
    }
    let filter = |rules_version| app::reports::ReportFilter {
        organisation_id,
        rules_version,
        ..Default::default()
    };
    let mut left = app::reports::outcome_report(&**client, &filter(a)).await?;
    let mut right = app::reports::outcome_report(&**client, &filter(b)).await?;
    // Published figures: small counts suppressed, as in the API's reports.
    let privacy = projector::rules::PrivacyRules::current();
    app::reports::suppress_outcomes(&mut left, &privacy);
    app::reports::suppress_outcomes(&mut right, &privacy);
    // A suppressed figure shows as `*`.
    fn cell<T: std::fmt::Display>(x: Option<T>) -> String {
        x.map_or_else(|| "*".to_owned(), |x| x.to_string())
    }
    let comparison = app::reports::compare(left.clone(), right.clone());
    let mut out = String::new();
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "{:<28} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "measure", "paired", "improved", "no change", "worse", "mean chg"
    );
    for (version, report) in [(a, &left), (b, &right)] {
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
