//! The projections this build runs, started inside `serve` or on their own by `project`.

use std::sync::Arc;

use eventstore::{EventStore, GlobalPosition};

use crate::rules::Rules;
use crate::{
    CaseloadProjection, DirectoryProjection, OutcomesProjection, Projection, ProjectionError,
    RunnerSettings,
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
    let mut projections: Vec<Arc<dyn Projection>> = vec![
        Arc::new(CaseloadProjection),
        Arc::new(DirectoryProjection),
        Arc::new(crate::TasksProjection),
    ];
    match crate::GpOutboxProjection::new() {
        Ok(outbox) => projections.push(Arc::new(outbox)),
        Err(e) => tracing::warn!(error = %e, "not writing GP messages under unknown rules"),
    }
    match crate::ReminderOutboxProjection::new() {
        Ok(reminders) => projections.push(Arc::new(reminders)),
        Err(e) => tracing::warn!(error = %e, "not writing reminders under unknown rules"),
    }
    let client = store.pool().get().await?;
    for version in crate::bookkeeping::versions(&client, OUTCOMES).await? {
        match Rules::load(version.rules_version) {
            Ok(rules) => projections.push(Arc::new(OutcomesProjection::new(rules))),
            Err(e) => tracing::warn!(error = %e, "not running outcomes under unknown rules"),
        }
    }
    Ok(projections)
}

/// Where a rule version of a versioned projection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    /// Being rebuilt; reports do not use it unless asked.
    Building,
    /// The version reports use.
    Live,
    /// Used before; still followed, and readable when asked for.
    Retired,
}

impl VersionState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Building => "building",
            VersionState::Live => "live",
            VersionState::Retired => "retired",
        }
    }
}

impl std::fmt::Display for VersionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for VersionState {
    type Err = ProjectionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "building" => Ok(VersionState::Building),
            "live" => Ok(VersionState::Live),
            "retired" => Ok(VersionState::Retired),
            other => Err(ProjectionError::Corrupt(format!(
                "projection_versions.state: {other:?} is not a version state"
            ))),
        }
    }
}

/// One rule version of a versioned projection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProjectionVersion {
    pub rules_version: i32,
    pub state: VersionState,
}

/// Starts following the log with every projection ([`crate::live::follow`]): those this process
/// can take and that stand at one checkpoint together, from one read of the log; the others
/// each alone, a standby waiting while another process holds it.
///
/// # Errors
/// A database failure listing the projections or taking their leases.
pub async fn spawn_all(
    store: &EventStore,
    shutdown: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, ProjectionError> {
    let holder = Uuid::new_v4();
    let following = crate::live::follow(
        store,
        all(store).await?,
        holder,
        RunnerSettings::default(),
        shutdown,
    )
    .await?;
    tracing::info!(
        together = ?following.together,
        alone = ?following.alone,
        "projections following the log"
    );
    Ok(following.tasks)
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
        let (checkpoint, applied) =
            crate::bookkeeping::read_checkpoint(&**client, projection.name())
                .await?
                .unwrap_or((GlobalPosition::START, 0));
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
