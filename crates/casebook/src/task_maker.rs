//! The task maker inside `casebook serve` (on a schedule) and as `casebook tasks make` (once):
//! the rules are `app::task_maker`'s; this only runs them.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Runs the task maker every `every` until `stopped` says so (the first run after one
/// interval, once the projections have had time to catch up). A failed run is logged and the
/// next one tries again.
///
/// # Errors
/// A task rule file that does not load (at start, so a bad build shows at once).
pub fn spawn(
    cases: &app::CaseService,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let maker = app::task_maker::TaskMaker::beside(cases)?;
    Ok(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stopped.changed() => return,
            }
            if *stopped.borrow() {
                return;
            }
            if let Err(e) = maker.run_once().await {
                tracing::warn!(error = %e, "the task maker failed; it runs again at its next turn");
            }
        }
    }))
}
