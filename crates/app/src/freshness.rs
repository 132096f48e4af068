//! Reads that see your own writes: a caller that has just written (and was told the log
//! position of what it wrote) asks a read model for an answer `after` that position, and gets
//! one only once every read model the answer comes from has applied that event.
//!
//! Projectors read the log in the global order `(log_generation, transaction_id, position)`,
//! not by position alone: an event with a lower position can commit, and be applied, after one
//! with a higher position. So "has passed position P" means that the read model's checkpoint is
//! at or after the event at P in that order. The wait is bounded ([`ReadWait`]); past the bound
//! the answer is [`AppError::NotCaughtUp`] (HTTP 503 with `Retry-After`), never a silently
//! stale answer.
//!
//! Every answer from a read model also says what it is [`AsOf`]: the last event applied, when
//! it was recorded, and how many events of the log are still to be applied.

use std::time::Duration;

use chrono::{DateTime, Utc};
use eventstore::{EventStore, GlobalPosition, StoreError};
use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::AppError;

/// How long a read waits for its read models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadWait {
    /// The longest a read waits for its read models to pass `after` before it gives up.
    pub max_wait: Duration,
    /// The longest pause between two looks at the read models' checkpoints (the first looks
    /// come sooner).
    pub poll_interval: Duration,
}

impl Default for ReadWait {
    fn default() -> Self {
        ReadWait {
            max_wait: Duration::from_secs(5),
            poll_interval: Duration::from_millis(50),
        }
    }
}

impl ReadWait {
    /// Waits of at most `max_wait`, looking as often as the default.
    pub fn at_most(max_wait: Duration) -> ReadWait {
        ReadWait {
            max_wait,
            ..ReadWait::default()
        }
    }
}

/// What an answer from read models is as of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AsOf {
    /// The log position of the last event the read model applied (of the read models this
    /// answer comes from, the one furthest behind); 0 when it has applied none.
    pub position: i64,
    /// When that event was recorded; null when it has applied none.
    pub recorded_at: Option<DateTime<Utc>>,
    /// How many events of the log it has not yet applied.
    pub behind: i64,
}

impl AsOf {
    /// Of two answers read in one snapshot, the one further behind.
    pub fn older(self, other: AsOf) -> AsOf {
        if other.behind > self.behind {
            other
        } else {
            self
        }
    }
}

/// What a read of `projections` (their versioned names, at least one) in `client`'s snapshot
/// is as of. Inside the repeatable-read transaction that reads the rows, it is exact.
///
/// # Errors
/// A database failure.
pub async fn as_of(
    client: &impl GenericClient,
    projections: &[&str],
) -> Result<AsOf, tokio_postgres::Error> {
    let at = projector::bookkeeping::as_of(client, projections).await?;
    Ok(AsOf {
        position: at.checkpoint.position,
        recorded_at: at.recorded_at,
        behind: at.behind,
    })
}

/// A read-only, repeatable-read transaction on `client`: every statement in it sees one
/// snapshot, so read-model rows and their checkpoints (written together) agree.
///
/// # Errors
/// A database failure.
pub async fn snapshot(
    client: &mut db::deadpool_postgres::Client,
) -> Result<db::deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}

/// Waits for read models to pass a log position.
#[derive(Clone)]
pub struct Freshness {
    store: EventStore,
    /// When `store` is a read replica: the primary, where a position the replica has not yet
    /// replayed is looked up (only the primary can tell a position that is coming from one
    /// that no event took).
    primary: Option<EventStore>,
    wait: ReadWait,
}

impl Freshness {
    /// Waits over `store`'s log and read models, as `wait` says.
    pub fn new(store: EventStore, wait: ReadWait) -> Freshness {
        Freshness {
            store,
            primary: None,
            wait,
        }
    }

    /// Waits over the read models of a streaming replica (`replica`: their rows and their
    /// checkpoints as the replica has replayed them), as `wait` says. A position the replica
    /// does not have yet is looked up on `primary`; the wait then lasts until the replica's
    /// own checkpoints pass it, so an answer never misses the write even though the replica
    /// lags the primary.
    pub fn on_replica(replica: EventStore, primary: EventStore, wait: ReadWait) -> Freshness {
        Freshness {
            store: replica,
            primary: Some(primary),
            wait,
        }
    }

    /// `as_of` as the primary sees it. On a replica, `behind` counts only what the replica
    /// has replayed, and a replica minutes behind would say 0; the primary counts every event
    /// committed after the same checkpoint. Off a replica, `as_of` as it is.
    ///
    /// # Errors
    /// No connection to the primary; a database failure.
    pub async fn recount(&self, as_of: AsOf) -> Result<AsOf, AppError> {
        let Some(primary) = &self.primary else {
            return Ok(as_of);
        };
        let client = primary.pool().get().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM events WHERE $1::bigint = 0 OR (log_generation, transaction_id, position) > \
                 (SELECT log_generation, transaction_id, position FROM events WHERE position = $1)",
                &[&as_of.position],
            )
            .await
            .map_err(StoreError::from)?;
        let behind: i64 = row.get(0);
        Ok(AsOf {
            behind: behind.max(as_of.behind),
            ..as_of
        })
    }

    /// The same log and read models, waiting as `wait` says.
    pub fn with_wait(mut self, wait: ReadWait) -> Freshness {
        self.wait = wait;
        self
    }

    /// The same waits, watching `replica` of `primary` instead.
    pub fn moved_to(&self, replica: EventStore, primary: EventStore) -> Freshness {
        Freshness::on_replica(replica, primary, self.wait)
    }

    /// How long reads wait.
    pub fn settings(&self) -> ReadWait {
        self.wait
    }

    /// The store whose log and read models it watches.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Where the event at log position `after` sits in the global order: on the watched
    /// store, or (a replica that has not replayed it yet) on the primary. A physical replica's
    /// rows are the primary's, byte for byte, so both give the same place.
    ///
    /// # Errors
    /// [`AppError::BadInput`] naming `after` when it is not a position of an event in the log
    /// (0 or less, beyond the head, or a position no event took); store failures.
    pub async fn locate(&self, after: i64) -> Result<GlobalPosition, AppError> {
        if after < 1 {
            return Err(AppError::bad_input(
                "after",
                "a log position is a whole number from 1: the `position` of an event a command wrote",
            ));
        }
        let mut found = self.store.global_position(after).await?;
        if found.is_none()
            && let Some(primary) = &self.primary
        {
            found = primary.global_position(after).await?;
        }
        found.ok_or_else(|| {
            AppError::bad_input(
                "after",
                format!(
                    "no event in the log has position {after}: give the `position` of an event a command wrote"
                ),
            )
        })
    }

    /// Checks `after` (when given) names an event in the log, for reads that come straight
    /// from the log and so are always current: they need not wait.
    ///
    /// # Errors
    /// As [`Freshness::locate`].
    pub async fn check(&self, after: Option<i64>) -> Result<(), AppError> {
        if let Some(after) = after {
            self.locate(after).await?;
        }
        Ok(())
    }

    /// Returns once every one of `projections` (their versioned names, such as `caseload_v1`
    /// or `outcomes_v2`) has applied the event at log position `after`; at once without
    /// `after`. Holds no connection while it waits (the projectors may need it).
    ///
    /// # Errors
    /// As [`Freshness::locate`]; [`AppError::NotCaughtUp`] when they have not passed it within
    /// [`ReadWait::max_wait`]; store failures.
    pub async fn wait(&self, projections: &[&str], after: Option<i64>) -> Result<(), AppError> {
        let Some(after) = after else {
            return Ok(());
        };
        let target = self.locate(after).await?;
        let started = tokio::time::Instant::now();
        let deadline = started + self.wait.max_wait;
        let mut pause = Duration::from_millis(2);
        loop {
            let checkpoints = {
                let client = self.store.pool().get().await?;
                projector::bookkeeping::read_checkpoints(&**client, projections).await?
            };
            let behind: Vec<String> = projections
                .iter()
                .zip(&checkpoints)
                .filter(|(_, checkpoint)| **checkpoint < target)
                .map(|(name, _)| (*name).to_owned())
                .collect();
            if behind.is_empty() {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                tracing::info!(
                    after,
                    projections = ?behind,
                    waited_ms = (now - started).as_millis() as u64,
                    "read models did not pass the position asked for in time"
                );
                return Err(AppError::NotCaughtUp {
                    after,
                    projections: behind,
                    waited: self.wait.max_wait,
                });
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(self.wait.poll_interval.max(Duration::from_millis(1)));
        }
    }

    /// Waits as [`Freshness::wait`], then says what `projections` are as of. Read apart from
    /// their rows, it is a lower bound for a read made after it (checkpoints only move on); a
    /// read that wants it exact reads [`as_of`] in its own [`snapshot`].
    ///
    /// # Errors
    /// As [`Freshness::wait`].
    pub async fn read_after(
        &self,
        projections: &[&str],
        after: Option<i64>,
    ) -> Result<AsOf, AppError> {
        self.wait(projections, after).await?;
        let client = self.store.pool().get().await?;
        Ok(as_of(&**client, projections).await?)
    }
}
