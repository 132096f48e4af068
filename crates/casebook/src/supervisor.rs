//! Keeps the private cluster up while the service runs: when the server is found dead (killed,
//! crashed, stopped behind the service's back) it is started again, a bounded number of times
//! with a growing pause, and every attempt is logged and counted.
//!
//! Only a private cluster is ever restarted: a server given by URL is someone else's to run,
//! and the service only answers 503 until it is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use db::Cluster;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the supervisor watches and restarts the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupervisorSettings {
    /// Attempts to start the server after it was found dead, before giving up (0: never).
    pub attempts: u32,
    /// How often the server is checked.
    pub check_every: Duration,
    /// The pause after the first failed attempt; it doubles after each failure.
    pub first_pause: Duration,
    /// The longest pause between attempts.
    pub longest_pause: Duration,
}

impl SupervisorSettings {
    /// `attempts` restarts per outage, checked every second, pauses from half a second doubling
    /// to 30 s (ten attempts span about two minutes).
    pub fn with_attempts(attempts: u32) -> SupervisorSettings {
        SupervisorSettings {
            attempts,
            check_every: Duration::from_secs(1),
            first_pause: Duration::from_millis(500),
            longest_pause: Duration::from_secs(30),
        }
    }
}

/// The running supervisor of a private cluster.
pub struct ClusterSupervisor {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ClusterSupervisor {
    /// Starts watching `cluster`. `restarted` is set once the supervisor has started the server
    /// (the service then owns it, and stops it when it shuts down).
    pub(crate) fn spawn(
        cluster: Cluster,
        settings: SupervisorSettings,
        restarted: Arc<AtomicBool>,
    ) -> ClusterSupervisor {
        let (stop, stopped) = watch::channel(false);
        api::http::install_metrics();
        let task = tokio::spawn(supervise(cluster, settings, restarted, stopped));
        ClusterSupervisor { stop, task }
    }

    /// Stops watching (before the service stops the cluster itself), waiting for an attempt
    /// under way to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Whether the server is alive, asked off the runtime's threads.
async fn alive(cluster: &Cluster) -> bool {
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || cluster.is_alive())
        .await
        .unwrap_or(true)
}

/// Sleeps for `pause`; false when the supervisor was told to stop meanwhile.
async fn pause(pause: Duration, stopped: &mut watch::Receiver<bool>) -> bool {
    if *stopped.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(pause) => !*stopped.borrow(),
        _ = stopped.changed() => false,
    }
}

/// A file in the cluster's directory that tells the supervisor the cluster was stopped on
/// purpose (maintenance, a cold copy): it is not restarted while the file is there.
pub const MAINTENANCE_FILE: &str = "casebook.maintenance";

async fn supervise(
    cluster: Cluster,
    settings: SupervisorSettings,
    restarted: Arc<AtomicBool>,
    mut stopped: watch::Receiver<bool>,
) {
    let dir = cluster.dir().display().to_string();
    let maintenance = cluster.dir().join(MAINTENANCE_FILE);
    let mut held = false;
    ::metrics::gauge!("casebook_cluster_up").set(1.0);
    loop {
        if !pause(settings.check_every, &mut stopped).await {
            return;
        }
        if alive(&cluster).await {
            held = false;
            continue;
        }
        ::metrics::gauge!("casebook_cluster_up").set(0.0);
        // An operator who stops the cluster on purpose says so with the marker file: it is
        // left stopped (requests answer 503) until the file goes.
        if maintenance.exists() {
            if !held {
                tracing::warn!(
                    dir = %dir,
                    marker = %maintenance.display(),
                    "the private PostgreSQL cluster is stopped for maintenance; not restarting it while the marker file is there"
                );
                held = true;
            }
            continue;
        }
        tracing::warn!(
            dir = %dir,
            attempts = settings.attempts,
            "the private PostgreSQL cluster stopped unexpectedly; requests answer 503 until it is back"
        );
        let mut wait = settings.first_pause;
        let mut back = false;
        for attempt in 1..=settings.attempts {
            let handle = cluster.clone();
            let outcome = tokio::task::spawn_blocking(move || handle.restart_if_stopped()).await;
            match outcome {
                Ok(Ok(started)) => {
                    back = true;
                    if started {
                        restarted.store(true, Ordering::SeqCst);
                        ::metrics::counter!("casebook_cluster_restarts_total", "outcome" => "restarted")
                            .increment(1);
                        tracing::warn!(dir = %dir, attempt, "restarted the private PostgreSQL cluster");
                    } else {
                        tracing::warn!(dir = %dir, attempt, "the private PostgreSQL cluster is running again");
                    }
                    break;
                }
                Ok(Err(e)) => {
                    ::metrics::counter!("casebook_cluster_restarts_total", "outcome" => "failed")
                        .increment(1);
                    tracing::warn!(
                        dir = %dir,
                        attempt,
                        attempts = settings.attempts,
                        retry_in_ms = wait.as_millis() as u64,
                        error = %e,
                        "restarting the private PostgreSQL cluster failed"
                    );
                }
                Err(e) => {
                    tracing::error!(dir = %dir, error = %e, "the cluster restart task failed");
                }
            }
            if attempt < settings.attempts {
                if !pause(wait, &mut stopped).await {
                    return;
                }
                wait = (wait * 2).min(settings.longest_pause);
            }
        }
        if !back {
            tracing::error!(
                dir = %dir,
                attempts = settings.attempts,
                "gave up restarting the private PostgreSQL cluster: start it by hand (`pg_ctl start`) or restart casebook"
            );
            // Someone may still start it by hand; the next outage is handled again.
            while !alive(&cluster).await {
                if !pause(settings.check_every, &mut stopped).await {
                    return;
                }
            }
            tracing::warn!(dir = %dir, "the private PostgreSQL cluster is running again");
        }
        ::metrics::gauge!("casebook_cluster_up").set(1.0);
    }
}
