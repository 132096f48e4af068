//! The projections this build runs, started inside `serve` or on their own by `project`.

use std::sync::Arc;

use eventstore::{EventStore, GlobalPosition};

use crate::{CaseloadProjection, Projection, ProjectionError, Runner, RunnerSettings};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Every projection, each under its versioned name.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![Arc::new(CaseloadProjection)]
}

/// Starts a runner per projection; each waits as a standby while another process holds it.
pub fn spawn_all(store: &EventStore, shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let holder = Uuid::new_v4();
    all()
        .into_iter()
        .map(|projection| {
            let runner = Runner::new(store.clone(), projection, holder, RunnerSettings::default());
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                if let Err(e) = runner.run(shutdown).await {
                    tracing::error!(projection = runner.name(), error = %e, "projection stopped");
                }
            })
        })
        .collect()
}

/// How far one projection is behind the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lag {
    pub projection: String,
    pub events_behind: i64,
    pub events_applied: i64,
}

/// The lag of every projection (a projection that never ran is behind by the whole log).
///
/// # Errors
/// A database failure.
pub async fn lag(store: &EventStore) -> Result<Vec<Lag>, ProjectionError> {
    let client = store.pool().get().await?;
    let mut lags = Vec::new();
    for projection in all() {
        let row = client
            .query_opt(
                "SELECT log_generation, transaction_id, position, events_applied FROM projection_checkpoints \
                 WHERE projection = $1",
                &[&projection.name()],
            )
            .await?;
        let (checkpoint, applied) = match row {
            Some(row) => (
                GlobalPosition {
                    generation: row.get(0),
                    transaction_id: row.get(1),
                    position: row.get(2),
                },
                row.get(3),
            ),
            None => (GlobalPosition::START, 0),
        };
        let (_, behind) = store.lag(checkpoint).await?;
        lags.push(Lag {
            projection: projection.name().to_owned(),
            events_behind: behind,
            events_applied: applied,
        });
    }
    Ok(lags)
}
