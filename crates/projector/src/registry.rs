//! The projections this build runs, started inside `serve` or on their own by `project`.

use std::sync::Arc;

use eventstore::{EventStore, GlobalPosition};

use crate::rules::Rules;
use crate::{
    CaseloadProjection, DirectoryProjection, OutcomesProjection, Projection, ProjectionError,
    Runner, RunnerSettings,
};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The versioned projection of outcome figures.
pub const OUTCOMES: &str = "outcomes";

/// Every projection to run, each under its versioned name: the caseload, and the outcomes under
/// every rule version that exists (live, retired, or being rebuilt).
///
/// # Errors
/// A database failure.
pub async fn all(store: &EventStore) -> Result<Vec<Arc<dyn Projection>>, ProjectionError> {
    let mut projections: Vec<Arc<dyn Projection>> =
        vec![Arc::new(CaseloadProjection), Arc::new(DirectoryProjection)];
    let client = store.pool().get().await?;
    for version in versions(&client, OUTCOMES).await? {
        match Rules::load(version.rules_version) {
            Ok(rules) => projections.push(Arc::new(OutcomesProjection::new(rules))),
            Err(e) => tracing::warn!(error = %e, "not running outcomes under unknown rules"),
        }
    }
    Ok(projections)
}

/// One rule version of a versioned projection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProjectionVersion {
    pub rules_version: i32,
    /// `building`, `live` or `retired`.
    pub state: String,
}

/// The rule versions of `projection`, oldest first.
///
/// # Errors
/// A database failure.
pub async fn versions(
    client: &tokio_postgres::Client,
    projection: &str,
) -> Result<Vec<ProjectionVersion>, ProjectionError> {
    let rows = client
        .query(
            "SELECT rules_version, state FROM projection_versions WHERE projection = $1 ORDER BY rules_version",
            &[&projection],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| ProjectionVersion {
            rules_version: row.get(0),
            state: row.get(1),
        })
        .collect())
}

/// The rule version reports use.
///
/// # Errors
/// A database failure.
pub async fn live_version(
    client: &tokio_postgres::Client,
    projection: &str,
) -> Result<i32, ProjectionError> {
    let row = client
        .query_opt(
            "SELECT rules_version FROM projection_versions WHERE projection = $1 AND state = 'live'",
            &[&projection],
        )
        .await?;
    Ok(row.map(|r| r.get(0)).unwrap_or(1))
}

/// Registers a version being rebuilt (no change if it exists).
///
/// # Errors
/// A database failure.
pub async fn start_version(
    client: &tokio_postgres::Client,
    projection: &str,
    rules_version: i32,
) -> Result<(), ProjectionError> {
    client
        .execute(
            "INSERT INTO projection_versions (projection, rules_version, state) VALUES ($1, $2, 'building')              ON CONFLICT (projection, rules_version) DO NOTHING",
            &[&projection, &rules_version],
        )
        .await?;
    Ok(())
}

/// Makes `rules_version` the one reports use, in one transaction: the previous live version is
/// retired (kept, still queryable and still followed, until dropped).
///
/// # Errors
/// A database failure.
pub async fn switch_live(
    client: &mut tokio_postgres::Client,
    projection: &str,
    rules_version: i32,
) -> Result<(), ProjectionError> {
    let tx = client.transaction().await?;
    tx.execute(
        "UPDATE projection_versions SET state = 'retired' WHERE projection = $1 AND state = 'live'          AND rules_version <> $2",
        &[&projection, &rules_version],
    )
    .await?;
    tx.execute(
        "UPDATE projection_versions SET state = 'live', switched_at = now()          WHERE projection = $1 AND rules_version = $2",
        &[&projection, &rules_version],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Starts a runner per projection; each waits as a standby while another process holds it.
///
/// # Errors
/// A database failure listing the projections.
pub async fn spawn_all(
    store: &EventStore,
    shutdown: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, ProjectionError> {
    let holder = Uuid::new_v4();
    Ok(all(store)
        .await?
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
        .collect())
}

/// How far one projection is behind the log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Lag {
    pub projection: String,
    pub events_behind: i64,
    /// How long ago the oldest event it has not applied was recorded (0 when it is level).
    pub seconds_behind: f64,
    pub events_applied: i64,
}

/// The lag of every projection (a projection that never ran is behind by the whole log).
///
/// # Errors
/// A database failure.
pub async fn lag(store: &EventStore) -> Result<Vec<Lag>, ProjectionError> {
    let projections = all(store).await?;
    let client = store.pool().get().await?;
    let mut lags = Vec::new();
    for projection in projections {
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
        let seconds_behind: f64 = client
            .query_one(
                "SELECT coalesce(extract(epoch FROM now() - min(recorded_at)), 0)::float8 FROM ( \
                 SELECT recorded_at FROM events \
                 WHERE (log_generation, transaction_id, position) > ($1, $2::text::xid8, $3) \
                 ORDER BY events.log_generation, events.transaction_id, events.position LIMIT 1) first",
                &[
                    &checkpoint.generation,
                    &checkpoint.transaction_id.to_string(),
                    &checkpoint.position,
                ],
            )
            .await?
            .get(0);
        lags.push(Lag {
            projection: projection.name().to_owned(),
            events_behind: behind,
            seconds_behind: seconds_behind.max(0.0),
            events_applied: applied,
        });
    }
    Ok(lags)
}
