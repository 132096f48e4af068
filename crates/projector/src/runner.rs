//! Runs one projection: lease, checkpoint, batches, each batch one transaction.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eventstore::{EventStore, GlobalPosition, RecordedEvent, StoreError, SubscriptionSettings};
use tokio::sync::watch;
use uuid::Uuid;

use crate::bookkeeping;

/// Why a projection could not apply a batch.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// Another runner holds this projection's lease; this one must stop writing.
    #[error("the lease on {0} is held by another runner")]
    LeaseLost(String),
    /// The checkpoint moved under us (another writer): the batch was not applied.
    #[error("the checkpoint of {0} moved under this runner")]
    CheckpointMoved(String),
    /// A stored event or row could not be read.
    #[error("unreadable data: {0}")]
    Corrupt(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The pool failed.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[from] db::deadpool_postgres::PoolError),
    /// A statement failed.
    #[error("database error: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// A read model: its name (with its rule version) and how to fold a batch into its tables.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Unique and versioned, e.g. `caseload_v1`: a new version rebuilds beside the old one.
    fn name(&self) -> &str;
    /// Folds a batch of events (in global order) into the read model, inside `tx`. `log` is
    /// the store the batch came from, for a projection that must refold a record from its start
    /// (a correction changes what was recorded before).
    async fn apply(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        events: &[RecordedEvent],
        log: &dyn crate::corrected::RecordSource,
    ) -> Result<(), ProjectionError>;
    /// Empties the read model, inside `tx`, before a rebuild from the start of the log.
    async fn reset(&self, tx: &tokio_postgres::Transaction<'_>) -> Result<(), ProjectionError>;
}

/// How a runner behaves.
#[derive(Clone, Copy, Debug)]
pub struct RunnerSettings {
    /// Most events per transaction.
    pub batch_size: i64,
    /// How long a lease lasts without renewal; a standby takes over after it.
    pub lease_ttl: Duration,
    /// The subscription's fallback poll.
    pub poll_interval: Duration,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        RunnerSettings {
            batch_size: 500,
            lease_ttl: Duration::from_secs(15),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Runs one projection against the log.
#[derive(Clone)]
pub struct Runner {
    store: EventStore,
    projection: Arc<dyn Projection>,
    holder: Uuid,
    settings: RunnerSettings,
}

impl Runner {
    /// A runner identified by `holder` (one per process).
    pub fn new(
        store: EventStore,
        projection: Arc<dyn Projection>,
        holder: Uuid,
        settings: RunnerSettings,
    ) -> Self {
        Runner {
            store,
            projection,
            holder,
            settings,
        }
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        self.projection.name()
    }

    /// Follows the log until `shutdown` turns true: waits as a standby while another runner
    /// holds the lease, then applies batch after batch. At shutdown the lease is given up, so a
    /// standby (or `casebook rebuild`) can take the projection at once rather than after the
    /// lease expires.
    ///
    /// # Errors
    /// Only for data that cannot be projected; database failures are retried.
    pub async fn run(&self, shutdown: watch::Receiver<bool>) -> Result<(), ProjectionError> {
        let outcome = self.run_until(shutdown).await;
        // A pooled connection may be closed although the database is up (its driver task ran on
        // an HTTP worker's runtime, which `serve` has stopped by now): the pool drops it when it
        // comes back, so a second or third try gets a live one. Bounded: a database that is
        // away must not hold the shutdown up.
        let give_up = async {
            let mut outcome = self.release().await;
            for _ in 0..3 {
                if outcome.is_ok() {
                    break;
                }
                outcome = self.release().await;
            }
            outcome
        };
        match tokio::time::timeout(Duration::from_secs(2), give_up).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(projection = self.name(), error = %e, "the lease could not be given up; it expires on its own");
            }
            Err(_) => {
                tracing::warn!(
                    projection = self.name(),
                    "giving the lease up took too long; it expires on its own"
                );
            }
        }
        outcome
    }

    async fn run_until(&self, mut shutdown: watch::Receiver<bool>) -> Result<(), ProjectionError> {
        while !*shutdown.borrow() {
            match self.follow(&mut shutdown).await {
                Ok(()) => return Ok(()),
                Err(ProjectionError::Corrupt(reason)) => {
                    return Err(ProjectionError::Corrupt(reason));
                }
                Err(e) => {
                    tracing::debug!(projection = self.name(), error = %e, "projection runner waits and retries");
                    let pause = (self.settings.lease_ttl / 3).max(Duration::from_millis(100));
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies every event committed before the call (and perhaps some after), then returns how
    /// many it applied. Events committed behind a transaction that is still open are waited for,
    /// not skipped: the call returns only when no committed event lies past the checkpoint.
    ///
    /// # Errors
    /// [`ProjectionError::LeaseLost`] when another runner holds the projection.
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        self.catch_up_to(None, |_| {}).await
    }

    /// As [`Runner::catch_up`], but stops once past `stop_at` (a rebuild stops at the head it
    /// saw when it started, even while appends go on), and reports each batch's size.
    ///
    /// # Errors
    /// [`ProjectionError::LeaseLost`] when another runner holds the projection.
    pub async fn catch_up_to(
        &self,
        stop_at: Option<GlobalPosition>,
        mut on_batch: impl FnMut(u64),
    ) -> Result<u64, ProjectionError> {
        if !self.acquire_lease().await? {
            return Err(ProjectionError::LeaseLost(self.name().to_owned()));
        }
        let mut checkpoint = self.checkpoint().await?;
        let mut applied = 0;
        loop {
            if stop_at.is_some_and(|stop| checkpoint >= stop) {
                return Ok(applied);
            }
            let events = self
                .store
                .read_all(checkpoint, self.settings.batch_size)
                .await?;
            let Some(last) = events.last() else {
                if !self.store.has_committed_after(checkpoint).await? {
                    return Ok(applied);
                }
                tokio::time::sleep(self.settings.poll_interval).await;
                continue;
            };
            let next = last.global;
            self.apply_batch(checkpoint, &events).await?;
            applied += events.len() as u64;
            on_batch(events.len() as u64);
            checkpoint = next;
        }
    }

    /// Gives up the lease, so another runner can take over at once (after a rebuild, or at
    /// shutdown) instead of waiting for it to expire.
    ///
    /// # Errors
    /// A database failure.
    pub async fn release(&self) -> Result<(), ProjectionError> {
        let client = self.store.pool().get().await?;
        bookkeeping::release_lease(&**client, self.name(), self.holder).await
    }

    /// Where this projection has read to, and how many events it has applied.
    ///
    /// # Errors
    /// A database failure.
    pub async fn position(&self) -> Result<(GlobalPosition, i64), ProjectionError> {
        let client = self.store.pool().get().await?;
        bookkeeping::checkpoint(&**client, self.name()).await
    }

    /// Empties the read model and moves its checkpoint back to the start of the log.
    ///
    /// # Errors
    /// [`ProjectionError::LeaseLost`] when another runner holds the projection.
    pub async fn reset(&self) -> Result<(), ProjectionError> {
        if !self.acquire_lease().await? {
            return Err(ProjectionError::LeaseLost(self.name().to_owned()));
        }
        let mut client = self.store.pool().get().await?;
        let tx = client.transaction().await?;
        self.projection.reset(&tx).await?;
        bookkeeping::set_checkpoint(&*tx, self.name(), GlobalPosition::START, 0).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn follow(&self, shutdown: &mut watch::Receiver<bool>) -> Result<(), ProjectionError> {
        if !self.acquire_lease().await? {
            return Err(ProjectionError::LeaseLost(self.name().to_owned()));
        }
        let mut checkpoint = self.checkpoint().await?;
        let mut subscription = self.store.subscribe(
            checkpoint,
            SubscriptionSettings {
                batch_size: self.settings.batch_size,
                poll_interval: self.settings.poll_interval,
            },
        );
        let mut renew =
            tokio::time::interval((self.settings.lease_ttl / 3).max(Duration::from_millis(100)));
        loop {
            tokio::select! {
                batch = subscription.next_batch() => {
                    let events = batch?;
                    let next = subscription.checkpoint();
                    self.apply_batch(checkpoint, &events).await?;
                    checkpoint = next;
                }
                _ = renew.tick() => {
                    if !self.acquire_lease().await? {
                        return Err(ProjectionError::LeaseLost(self.name().to_owned()));
                    }
                }
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }

    /// One transaction: renew the lease (fencing), fold the batch, move the checkpoint from
    /// exactly `from` to the batch's last event.
    async fn apply_batch(
        &self,
        from: GlobalPosition,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let Some(last) = events.last() else {
            return Ok(());
        };
        let mut client = self.store.pool().get().await?;
        let tx = client.transaction().await?;
        let ttl = self.settings.lease_ttl.as_secs_f64();
        if !bookkeeping::renew_lease(&*tx, self.name(), self.holder, ttl).await? {
            return Err(ProjectionError::LeaseLost(self.name().to_owned()));
        }
        self.projection.apply(&tx, events, &self.store).await?;
        let applied = events.len() as i64;
        if !bookkeeping::move_checkpoint(&*tx, self.name(), from, last.global, applied).await? {
            return Err(ProjectionError::CheckpointMoved(self.name().to_owned()));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Takes the lease if it is free, expired or already ours; renews it if ours.
    async fn acquire_lease(&self) -> Result<bool, ProjectionError> {
        let client = self.store.pool().get().await?;
        let ttl = self.settings.lease_ttl.as_secs_f64();
        bookkeeping::take_lease(&**client, self.name(), self.holder, ttl).await
    }

    async fn checkpoint(&self) -> Result<GlobalPosition, ProjectionError> {
        let client = self.store.pool().get().await?;
        Ok(bookkeeping::checkpoint(&**client, self.name()).await?.0)
    }
}
