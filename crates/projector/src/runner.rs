//! Runs one projection: lease, checkpoint, batches, each batch one transaction.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eventstore::{EventStore, GlobalPosition, RecordedEvent, StoreError, SubscriptionSettings};
use tokio::sync::watch;
use uuid::Uuid;

use crate::bookkeeping;
use crate::corrected::{Decoded, RecordSource};
use crate::held::{Deferred, HeldWrite};
use bytes::{BufMut, Bytes, BytesMut};
use db::deadpool_postgres::StatementCache;
use futures_util::SinkExt;
use tokio_postgres::Statement;
use tokio_postgres::types::{IsNull, ToSql, Type};

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
    /// (a correction changes what was recorded before). By default, [`apply_decoding`]: the
    /// batch's client events decoded (refolded as [`Projection::refolds`] says) and handed to
    /// [`Projection::apply_decoded`].
    async fn apply(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        events: &[RecordedEvent],
        log: &dyn crate::corrected::RecordSource,
    ) -> Result<(), ProjectionError> {
        apply_decoding(self, tx, events, log).await
    }
    /// Empties the read model, inside `tx`, before a rebuild from the start of the log.
    async fn reset(&self, tx: &tokio_postgres::Transaction<'_>) -> Result<(), ProjectionError>;
    /// Whether its fold needs the records of clients with a correction in a batch read again,
    /// corrections applied (see [`Decoded`]).
    fn refolds(&self) -> bool {
        false
    }
    /// Folds a batch whose client events are already decoded (once, for every projection fed
    /// from it), inside `tx`, with the statements prepared on `tx`'s connection when the caller
    /// keeps them. The runners fold through this.
    async fn apply_decoded(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
    ) -> Result<(), ProjectionError>;
    /// For a rebuild of it with others ([`Together`]): its fold held across batches and
    /// written at a flush ([`crate::held`]), when it keeps one value per client; `None` (the
    /// default) to fold and write each batch.
    fn deferred(self: Arc<Self>) -> Option<Box<dyn Deferred>> {
        None
    }
}

/// Decodes the client events of `events` as `projection` needs them (refolded when it
/// [`Projection::refolds`]) and folds them through [`Projection::apply_decoded`], without a
/// statement cache: [`Projection::apply`]'s default, for an override to end with.
///
/// # Errors
/// The log cannot be read or decoded; the projection's own failures.
pub async fn apply_decoding<P: Projection + ?Sized>(
    projection: &P,
    tx: &tokio_postgres::Transaction<'_>,
    events: &[RecordedEvent],
    log: &dyn RecordSource,
) -> Result<(), ProjectionError> {
    let decoded = Decoded::decode(events, log, projection.refolds()).await?;
    let batch = Batch {
        events,
        decoded: &decoded,
        log,
        statements: None,
    };
    projection.apply_decoded(tx, &batch).await
}

/// A batch as runners hand it to projections: its events, their client events decoded once,
/// where to read a record again, and the statements prepared on the transaction's connection.
pub struct Batch<'a> {
    /// In the log's order. A runner hands a client event's payload over decoded only
    /// ([`Batch::decoded`]), its raw payload left null.
    pub events: &'a [RecordedEvent],
    pub decoded: &'a Decoded,
    pub log: &'a dyn RecordSource,
    /// The connection's statement cache; without it a statement is prepared for each use.
    pub statements: Option<&'a StatementCache>,
}

impl Batch<'_> {
    /// `sql` prepared on `tx`'s connection: once per connection when the batch carries the
    /// connection's statement cache.
    ///
    /// # Errors
    /// A database failure.
    pub async fn prepare(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        sql: &str,
    ) -> Result<Statement, tokio_postgres::Error> {
        match self.statements {
            Some(cache) => cache.prepare(tx.client(), sql).await,
            None => tx.prepare(sql).await,
        }
    }

    /// Copies `rows` rows into a table with `copy` (a `COPY ... FROM STDIN (FORMAT binary)`
    /// whose columns have `types`), row `i` being `row(i)`; nothing is sent when there are none.
    /// Rows go to PostgreSQL as they are stored, without arrays to build and unnest, and are
    /// inserted a page at a time.
    ///
    /// # Errors
    /// A database failure, or a value that does not fit its column's type.
    pub async fn copy_rows<'r>(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        copy: &str,
        types: &[Type],
        rows: usize,
        row: impl Fn(usize) -> Vec<&'r (dyn ToSql + Sync)>,
    ) -> Result<(), ProjectionError> {
        if rows == 0 {
            return Ok(());
        }
        let statement = self.prepare(tx, copy).await?;
        let sink = tx.copy_in::<_, Bytes>(&statement).await?;
        let mut sink = std::pin::pin!(sink);
        // The binary format (as `tokio_postgres::binary_copy` writes it), sent a megabyte at a
        // time: that writer sends every 4 kB, and each message sent wakes the connection's task.
        let mut buf = BytesMut::with_capacity(COPY_CHUNK + COPY_CHUNK / 4);
        buf.put_slice(b"PGCOPY\n\xff\r\n\0");
        buf.put_i32(0);
        buf.put_i32(0);
        for i in 0..rows {
            let values = row(i);
            debug_assert_eq!(values.len(), types.len());
            buf.put_i16(types.len() as i16);
            for (value, ty) in values.iter().zip(types) {
                let at = buf.len();
                buf.put_i32(0);
                let len = match value.to_sql_checked(ty, &mut buf) {
                    Ok(IsNull::Yes) => -1,
                    Ok(IsNull::No) => i32::try_from(buf.len() - at - 4)
                        .map_err(|_| ProjectionError::Corrupt(format!("a {ty} value over 2 GB")))?,
                    Err(e) => {
                        return Err(ProjectionError::Corrupt(format!(
                            "a {ty} value for {copy:?}: {e}"
                        )));
                    }
                };
                buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
            if buf.len() >= COPY_CHUNK {
                sink.send(buf.split().freeze()).await?;
            }
        }
        buf.put_i16(-1);
        sink.send(buf.freeze()).await?;
        sink.as_mut().finish().await?;
        Ok(())
    }
}

/// How much of a `COPY` [`Batch::copy_rows`] sends at once.
const COPY_CHUNK: usize = 1 << 20;

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

impl RunnerSettings {
    /// How often a lease is renewed while no batch renews it (a third of its time, at least
    /// 100 ms), and how long a runner that failed waits before it tries again.
    pub fn renew_every(&self) -> Duration {
        (self.lease_ttl / 3).max(Duration::from_millis(100))
    }
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
        // A pooled connection may be closed although the database is up (the server restarted
        // under it; pooled connections no longer die with an HTTP worker's runtime, see
        // `db::pool`): the pool drops it when it comes back, so a second or third try gets a
        // live one. Bounded: a database that is away must not hold the shutdown up.
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
                    let pause = self.settings.renew_every();
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
        let mut renewed = tokio::time::Instant::now();
        loop {
            if stop_at.is_some_and(|stop| checkpoint >= stop) {
                return Ok(applied);
            }
            let read = self
                .store
                .read_all_raw(checkpoint, self.settings.batch_size, domain::CLIENT_STREAM)
                .await?;
            let Some(next) = read.last().map(|e| e.event.global) else {
                if !self.store.has_committed_after(checkpoint).await? {
                    return Ok(applied);
                }
                // Waiting for a transaction still open, however long: the lease is kept, as a
                // batch would renew it, so that no standby takes the projection meanwhile and
                // this run does not fail at its next batch for the lease it let expire.
                if renewed.elapsed() >= self.settings.renew_every() {
                    self.renew_lease().await?;
                    renewed = tokio::time::Instant::now();
                }
                tokio::time::sleep(self.settings.poll_interval).await;
                continue;
            };
            let count = read.len() as u64;
            self.apply_batch(checkpoint, read).await?;
            renewed = tokio::time::Instant::now();
            applied += count;
            on_batch(count);
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
        // Lost in a crash, the old rows stay with the old checkpoint.
        bookkeeping::commit_without_flush(&tx).await?;
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
        let (mut subscription, mut renew) = following(&self.store, checkpoint, &self.settings);
        loop {
            tokio::select! {
                batch = subscription.next_raw_batch(domain::CLIENT_STREAM) => {
                    let read = batch?;
                    let next = subscription.checkpoint();
                    self.apply_batch(checkpoint, read).await?;
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

    /// One transaction: renew the lease (fencing), move the checkpoint from exactly `from` to
    /// the batch's last event, fold the batch (as read by [`EventStore::read_all_raw`] for
    /// client streams: each client event decoded once from its stored text, as the runners of
    /// a group decode it, its raw payload left null).
    async fn apply_batch(
        &self,
        from: GlobalPosition,
        read: Vec<eventstore::RawEvent>,
    ) -> Result<(), ProjectionError> {
        if read.is_empty() {
            return Ok(());
        }
        // Decoded (and any corrected record read again) before the transaction opens.
        let (events, decoded) =
            Decoded::decode_read(read, &self.store, self.projection.refolds()).await?;
        let Some(last) = events.last() else {
            return Ok(());
        };
        let mut client = self.store.pool().get().await?;
        let statements = client.statement_cache.clone();
        let tx = client.transaction().await?;
        let ttl = self.settings.lease_ttl.as_secs_f64();
        // Sent together (one round trip): the batch's rows and checkpoint are made again from
        // the log if a crash loses them, so the commit does not wait for the WAL flush.
        let ((), renewed) = futures_util::future::try_join(
            bookkeeping::commit_without_flush(&tx),
            bookkeeping::renew_lease(&*tx, self.name(), self.holder, ttl),
        )
        .await?;
        if !renewed {
            return Err(ProjectionError::LeaseLost(self.name().to_owned()));
        }
        // The checkpoint is moved before any row is written: a runner whose checkpoint was
        // moved under it (a rebuilt read model switched in) stops here, rather than failing
        // on rows the switch already holds, and reads its checkpoint again.
        let applied = events.len() as i64;
        if !bookkeeping::move_checkpoint(&*tx, self.name(), from, last.global, applied).await? {
            return Err(ProjectionError::CheckpointMoved(self.name().to_owned()));
        }
        let batch = Batch {
            events: &events,
            decoded: &decoded,
            log: &self.store,
            statements: Some(&statements),
        };
        self.projection.apply_decoded(&tx, &batch).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the lease if it is free, expired or already ours; renews it if ours.
    async fn acquire_lease(&self) -> Result<bool, ProjectionError> {
        let client = self.store.pool().get().await?;
        let ttl = self.settings.lease_ttl.as_secs_f64();
        bookkeeping::take_lease(&**client, self.name(), self.holder, ttl).await
    }

    /// Renews the lease (only if it is still this runner's, expired or not).
    ///
    /// # Errors
    /// [`ProjectionError::LeaseLost`] when another runner has taken it.
    async fn renew_lease(&self) -> Result<(), ProjectionError> {
        let client = self.store.pool().get().await?;
        let ttl = self.settings.lease_ttl.as_secs_f64();
        if !bookkeeping::renew_lease(&**client, self.name(), self.holder, ttl).await? {
            return Err(ProjectionError::LeaseLost(self.name().to_owned()));
        }
        Ok(())
    }

    async fn checkpoint(&self) -> Result<GlobalPosition, ProjectionError> {
        let client = self.store.pool().get().await?;
        Ok(bookkeeping::checkpoint(&**client, self.name()).await?.0)
    }
}

/// Several projections fed from one read of the log (a rebuild of every read model): each batch
/// is read and decoded once, [`READ_AHEAD`] batches queued ahead of the one being written, and
/// applied to every projection, side by side on a connection each (or fewer, sharing, in a
/// small pool), each connection's projections in one transaction that renews their leases and
/// moves their checkpoints, so each read model sees each event exactly once, as with a
/// [`Runner`] each. Those that keep one value per client are folded in memory across batches
/// and written at a flush ([`Together::flushing_every`]), on a second connection while the next
/// batches fold when the pool has room for it ([`Together::plan`]). A failure can leave them
/// at different checkpoints; the next run reads from the earliest and each applies only what
/// lies past its own ([`Together::resumable`] says whether a rebuild should). Client events
/// reach the projections decoded ([`Batch::decoded`]); their raw payloads in
/// [`Batch::events`] are left null.
pub struct Together {
    store: EventStore,
    projections: Vec<Arc<dyn Projection>>,
    holder: Uuid,
    settings: RunnerSettings,
    flush: Flush,
}

/// Aborts a spawned task when dropped (the batch reader of a [`Together`] that stopped early,
/// a write of what it held under way).
struct AbortOnDrop<T = ()>(Option<tokio::task::JoinHandle<T>>);

impl<T: Send + 'static> AbortOnDrop<T> {
    fn spawn(task: impl Future<Output = T> + Send + 'static) -> Self {
        AbortOnDrop(Some(tokio::spawn(task)))
    }

    fn is_finished(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished)
    }

    /// Waits for the task to end: an error if it panicked (or was cancelled) or was waited for
    /// already, so that a reader that died is never taken for the end of the log, nor a write
    /// that died for one that committed. `what` names the task.
    async fn ended(&mut self, what: &str) -> Result<T, ProjectionError> {
        let Some(task) = self.0.as_mut() else {
            return Err(ProjectionError::Corrupt(format!(
                "{what} was waited for twice"
            )));
        };
        // Taken out only once it ended: a wait cancelled part-way (the run dropped) leaves the
        // task to be aborted with this.
        let ended = task.await;
        self.0 = None;
        ended.map_err(|e| ProjectionError::Corrupt(format!("{what} failed: {e}")))
    }
}

impl<T: Send + 'static, E: Send + 'static> AbortOnDrop<Result<T, E>> {
    /// Spawns `task` with a flag set as soon as it fails: when it returns an error, or panics
    /// (or is aborted) before it returns, so that whoever folds on beside it can stop at once
    /// rather than learn of it only when it waits for the task.
    fn spawn_flagged(
        task: impl Future<Output = Result<T, E>> + Send + 'static,
    ) -> (Self, Arc<std::sync::atomic::AtomicBool>) {
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut unless_done = FlagOnDrop(Some(Arc::clone(&failed)));
        let spawned = AbortOnDrop::spawn(async move {
            let result = task.await;
            if result.is_ok() {
                unless_done.0 = None;
            }
            drop(unless_done);
            result
        });
        (spawned, failed)
    }
}

/// Sets its flag when dropped, unless taken out first: dropped by an unwinding panic too.
struct FlagOnDrop(Option<Arc<std::sync::atomic::AtomicBool>>);

impl Drop for FlagOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = &self.0 {
            flag.store(true, std::sync::atomic::Ordering::Release);
        }
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// How many batches a [`Together`] queues, read and decoded, ahead of the one being written
/// (up to three more are in the reader's hands: being read, decoded or sent): the reader goes
/// on while a write takes as long as reading several.
const READ_AHEAD: usize = 8;

/// A read batch, decoded, on its way from the reader to the writer.
type ReadBatch = Result<(Vec<RecordedEvent>, Decoded), ProjectionError>;

impl Together {
    /// Projections to run together, identified by `holder` (one per process).
    pub fn new(
        store: EventStore,
        projections: Vec<Arc<dyn Projection>>,
        holder: Uuid,
        settings: RunnerSettings,
    ) -> Self {
        Together {
            store,
            projections,
            holder,
            settings,
            flush: Flush::default(),
        }
    }

    /// Their names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.projections.iter().map(|p| p.name()).collect()
    }

    async fn acquire_leases(&self) -> Result<(), ProjectionError> {
        let client = self.store.pool().get().await?;
        let ttl = self.settings.lease_ttl.as_secs_f64();
        for projection in &self.projections {
            if !bookkeeping::take_lease(&**client, projection.name(), self.holder, ttl).await? {
                // Give back the ones already taken, so a rebuild tried next is not kept waiting
                // for them to expire.
                for taken in &self.projections {
                    bookkeeping::release_lease(&**client, taken.name(), self.holder).await?;
                }
                return Err(ProjectionError::LeaseLost(projection.name().to_owned()));
            }
        }
        Ok(())
    }

    /// Empties every read model and moves every checkpoint back to the start of the log, in one
    /// transaction.
    ///
    /// # Errors
    /// [`ProjectionError::LeaseLost`] when another runner holds one of them.
    pub async fn reset(&self) -> Result<(), ProjectionError> {
        self.acquire_leases().await?;
        let mut client = self.store.pool().get().await?;
        let tx = client.transaction().await?;
        // Lost in a crash, the old rows stay with their old checkpoints.
        bookkeeping::commit_without_flush(&tx).await?;
        for projection in &self.projections {
            projection.reset(&tx).await?;
            bookkeeping::set_checkpoint(&*tx, projection.name(), GlobalPosition::START, 0).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Where the one furthest behind has read to and how many events it has applied: where a
    /// run of them together starts (each one applying only what lies past its own checkpoint).
    /// `None` when there are none.
    ///
    /// # Errors
    /// A database failure.
    pub async fn position(&self) -> Result<Option<(GlobalPosition, i64)>, ProjectionError> {
        Ok(self.checkpoints().await?.into_iter().min())
    }

    /// Whether a rebuild of them should resume where they stand: every one folded in memory
    /// across batches ([`Projection::deferred`]) has been written past the start, as a run of
    /// them together leaves them once it has written (part-way, at checkpoints that may differ
    /// by a write, or finished). After a reset, or a run that failed before its first write,
    /// they stand at the start; `casebook rebuild all` resets the caseload's shadow once it has
    /// switched it in.
    ///
    /// # Errors
    /// A database failure.
    pub async fn resumable(&self) -> Result<bool, ProjectionError> {
        let checkpoints = self.checkpoints().await?;
        let held: Vec<GlobalPosition> = self
            .projections
            .iter()
            .zip(checkpoints)
            .filter(|(p, _)| Arc::clone(p).deferred().is_some())
            .map(|(_, (at, _))| at)
            .collect();
        Ok(!held.is_empty() && held.iter().all(|at| *at > GlobalPosition::START))
    }

    /// Each one's checkpoint and events applied, in order.
    async fn checkpoints(&self) -> Result<Vec<(GlobalPosition, i64)>, ProjectionError> {
        let client = self.store.pool().get().await?;
        let mut checkpoints = Vec::with_capacity(self.projections.len());
        for projection in &self.projections {
            checkpoints.push(bookkeeping::checkpoint(&**client, projection.name()).await?);
        }
        Ok(checkpoints)
    }

    /// Gives up every lease.
    ///
    /// # Errors
    /// A database failure.
    pub async fn release(&self) -> Result<(), ProjectionError> {
        let client = self.store.pool().get().await?;
        for projection in &self.projections {
            bookkeeping::release_lease(&**client, projection.name(), self.holder).await?;
        }
        Ok(())
    }

    /// How a run of them is laid out on the pool's connections: in how many groups, each
    /// written on a connection of its own, and whether a group holding folds
    /// ([`Projection::deferred`]) gets a second, to write what they held while the next batches
    /// fold (without it, they are written in the batch's own transaction). Two of the pool's
    /// connections are left for the reader and the records read again for a refold; the groups
    /// are fewer if that makes room for the second connections.
    pub fn plan(&self) -> (usize, bool) {
        let room = self.store.pool().status().max_size.saturating_sub(2).max(1);
        let lanes = self.projections.len().min(room).max(1);
        let holds = |p: &Arc<dyn Projection>| Arc::clone(p).deferred().is_some();
        for n in (1..=lanes).rev() {
            // The projections are dealt round the groups in turn.
            let holding = (0..n)
                .filter(|g| self.projections.iter().skip(*g).step_by(n).any(holds))
                .count();
            if holding > 0 && n + holding <= room {
                return (n, true);
            }
        }
        (lanes, false)
    }

    /// Holds the folds that keep one value per client ([`Projection::deferred`]) across
    /// batches, writing them once `events` events have been read since the last write or one
    /// of them held `clients` clients' values after the batch before, and at the end (by
    /// default 200,000 events and 20,000 clients): each holds at most `clients` clients' values
    /// and two batches' more (the decision is made on what they held after the batch before,
    /// and the batch that writes folds first), and, while they are written on a second
    /// connection, as many lent to the folds that go on.
    #[must_use]
    pub fn flushing_every(mut self, events: i64, clients: usize) -> Self {
        self.flush = Flush { events, clients };
        self
    }

    /// As [`Runner::catch_up_to`], for all of them: applies every committed event past each
    /// one's checkpoint (read once, from the earliest), stopping once past `stop_at`, and
    /// reports each batch's size. A projection that keeps one value per client is folded in
    /// memory and written at a flush ([`Together::flushing_every`]), its checkpoint moved then;
    /// the others are written, and their checkpoints moved, batch by batch.
    ///
    /// # Errors
    /// [`ProjectionError::LeaseLost`] when another runner holds one of them,
    /// [`ProjectionError::CheckpointMoved`] when one's checkpoint moved under it.
    pub async fn catch_up_to(
        &self,
        stop_at: Option<GlobalPosition>,
        mut on_batch: impl FnMut(u64),
    ) -> Result<u64, ProjectionError> {
        self.acquire_leases().await?;
        let checkpoints = self.checkpoints().await?;
        let Some(&(start, _)) = checkpoints.iter().min() else {
            return Ok(0);
        };
        // A batch never reaches past one's checkpoint, so each applies whole batches from there.
        let mut cuts: Vec<GlobalPosition> = checkpoints
            .iter()
            .map(|c| c.0)
            .filter(|c| *c > start)
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<ReadBatch>(READ_AHEAD);
        let mut reader = AbortOnDrop::spawn(read_ahead(
            self.store.clone(),
            start,
            stop_at,
            cuts,
            self.settings,
            self.projections.iter().any(|p| p.refolds()),
            sender,
        ));
        let (lanes, writers) = self.plan();
        let pool = self.store.pool();
        let mut groups: Vec<Lane> = Vec::with_capacity(lanes);
        for _ in 0..lanes {
            groups.push(Lane {
                client: pool.get().await?,
                members: Vec::new(),
                writer: None,
                writing: None,
            });
        }
        for (n, (projection, (checkpoint, _))) in
            self.projections.iter().zip(checkpoints).enumerate()
        {
            groups[n % lanes].members.push(Member {
                projection: projection.clone(),
                deferred: projection.clone().deferred(),
                checkpoint,
                folded_to: checkpoint,
                pending: 0,
                writing_to: None,
            });
        }
        if writers {
            for lane in groups
                .iter_mut()
                .filter(|l| l.members.iter().any(|m| m.deferred.is_some()))
            {
                lane.writer = Some(pool.get().await?);
            }
        }
        let mut applied = 0;
        let (mut since_flush, mut held) = (0i64, 0usize);
        // Where the run's time goes (reported at debug level): waiting for the reader, batches
        // folded only, and batches that also wrote what is held (or handed it to be written).
        let (mut waiting, mut folding, mut writing, mut writes_held) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0u32);
        // While the reader keeps the batches waiting (a transaction still open ahead of them,
        // or a slow read), the leases are renewed as a batch would renew them.
        let every = self.settings.renew_every();
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let asked = std::time::Instant::now();
            let read = tokio::select! {
                read = receiver.recv() => read,
                _ = renew.tick() => {
                    self.keep_leases(&mut groups).await?;
                    waiting += asked.elapsed();
                    continue;
                }
            };
            let Some(read) = read else {
                break;
            };
            waiting += asked.elapsed();
            let (events, decoded) = read?;
            let Some(last) = events.last().map(|e| e.global) else {
                continue;
            };
            let count = events.len() as i64;
            since_flush += count;
            let flush = since_flush >= self.flush.events || held >= self.flush.clients;
            let writes = groups.iter_mut().map(|lane| {
                let (events, decoded) = (&events, &decoded);
                async move { self.write_batch(lane, events, decoded, last, flush).await }
            });
            if flush {
                tracing::debug!(events = since_flush, held, "writing what is held");
            }
            let started = std::time::Instant::now();
            held = 0;
            for written in futures_util::future::join_all(writes).await {
                held = held.max(written?);
            }
            if flush {
                since_flush = 0;
                writing += started.elapsed();
                writes_held += 1;
            } else {
                folding += started.elapsed();
            }
            applied += count as u64;
            on_batch(count as u64);
            renew.reset();
        }
        // The batches stopped: the log's end, or a reader that died (then nothing is written).
        reader.ended("the log's reader").await?;
        // What is still held is written, each checkpoint moved to the last batch it folded, and
        // every write handed over waited for.
        let started = std::time::Instant::now();
        let no_events = Decoded::default();
        let ends = groups.iter_mut().map(|lane| {
            let decoded = &no_events;
            async move {
                if since_flush > 0 {
                    self.write_batch(lane, &[], decoded, GlobalPosition::START, true)
                        .await?;
                }
                lane.written().await
            }
        });
        for ended in futures_util::future::join_all(ends).await {
            ended?;
        }
        writing += started.elapsed();
        tracing::debug!(
            applied,
            waiting_s = waiting.as_secs_f64(),
            folding_s = folding.as_secs_f64(),
            writing_s = writing.as_secs_f64(),
            writes_held,
            "ran together"
        );
        Ok(applied)
    }

    /// Renews, on each lane's connection (idle between batches), the leases of its members
    /// that no write under way holds, as [`Together::write_batch`] would; and, as it would,
    /// fails at once with the error of a write handed over that failed.
    ///
    /// # Errors
    /// [`ProjectionError::LeaseLost`] when another runner has taken one; a failed write's error.
    async fn keep_leases(&self, lanes: &mut [Lane]) -> Result<(), ProjectionError> {
        for lane in lanes.iter_mut() {
            if lane
                .writing
                .as_ref()
                .is_some_and(|w| w.failed.load(std::sync::atomic::Ordering::Acquire))
            {
                lane.written().await?;
            }
        }
        let lanes = &*lanes;
        let ttl = self.settings.lease_ttl.as_secs_f64();
        let renewals = lanes.iter().map(|lane| async move {
            let ended = lane.writing.as_ref().is_none_or(|w| w.task.is_finished());
            let names = renewable(&lane.members, ended);
            if names.is_empty() {
                return Ok(Vec::new());
            }
            bookkeeping::renew_leases(&**lane.client, &names, self.holder, ttl).await
        });
        for lost in futures_util::future::try_join_all(renewals).await? {
            if let Some(lost) = lost.into_iter().next() {
                return Err(ProjectionError::LeaseLost(lost));
            }
        }
        Ok(())
    }

    /// One transaction on `lane`'s connection: renew the leases of its members (fencing; a
    /// held one's only once no write of it is under way, that write renewing it); for each
    /// whose checkpoint `events` (ending at `last`) lie past, fold them in: written with its
    /// checkpoint moved, or held (its checkpoint only checked, unless a write of what it held
    /// was handed over and not yet taken in: that write moves it) and, with `flush`, written
    /// with its checkpoint moved over every batch held: in this transaction, or, when the lane
    /// has a writer, handed to it after this one commits. A write handed over that failed
    /// fails this. Empty `events` only flushes. Returns the most clients' values a member
    /// holds unwritten.
    async fn write_batch(
        &self,
        lane: &mut Lane,
        events: &[RecordedEvent],
        decoded: &Decoded,
        last: GlobalPosition,
        flush: bool,
    ) -> Result<usize, ProjectionError> {
        let handing = flush && (lane.writer.is_some() || lane.writing.is_some());
        // The write under way holds the leases of what it writes until it commits (so that a
        // switch of the read model waits for it, as for a batch): renewed here only once it ended.
        let write_ended = lane.writing.as_ref().is_none_or(|w| w.task.is_finished());
        if lane
            .writing
            .as_ref()
            .is_some_and(|w| w.failed.load(std::sync::atomic::Ordering::Acquire))
        {
            // Its error, at once.
            lane.written().await?;
        }
        let Lane {
            client, members, ..
        } = lane;
        let statements = client.statement_cache.clone();
        let tx = client.transaction().await?;
        // As in [`Runner`], sent together: rows and checkpoints are made again from the log if a
        // crash loses them, so the commit does not wait for the WAL flush.
        let ttl = self.settings.lease_ttl.as_secs_f64();
        let renewing = renewable(members, write_ended);
        let ((), lost) = futures_util::future::try_join(
            bookkeeping::commit_without_flush(&tx),
            bookkeeping::renew_leases(&*tx, &renewing, self.holder, ttl),
        )
        .await?;
        if let Some(lost) = lost.into_iter().next() {
            return Err(ProjectionError::LeaseLost(lost));
        }
        let count = events.len() as i64;
        let batch = Batch {
            events,
            decoded,
            log: &self.store,
            statements: Some(&statements),
        };
        // Every checkpoint is moved (or, for a fold held, checked) before any row is written
        // (as in [`Runner`]).
        let folds = |member: &Member| !events.is_empty() && last > member.checkpoint;
        for member in members.iter_mut() {
            let (to, applied) = match member.deferred {
                None if folds(member) => (last, count),
                None => continue,
                Some(_) => {
                    if folds(member) {
                        member.folded_to = last;
                        member.pending += count;
                    }
                    if member.writing_to.is_some() || handing {
                        // Moved by the write of what it held, elsewhere.
                        continue;
                    }
                    if flush {
                        (member.folded_to, member.pending)
                    } else {
                        (member.checkpoint, 0)
                    }
                }
            };
            let name = member.projection.name();
            if !bookkeeping::move_checkpoint(&*tx, name, member.checkpoint, to, applied).await? {
                return Err(ProjectionError::CheckpointMoved(name.to_owned()));
            }
        }
        let mut held = 0;
        for member in members.iter_mut() {
            let folds = folds(member);
            match &mut member.deferred {
                None if folds => {
                    member.projection.apply_decoded(&tx, &batch).await?;
                    member.checkpoint = last;
                }
                None => {}
                Some(deferred) => {
                    if folds {
                        deferred.fold(&tx, &batch).await?;
                    }
                    if flush && !handing {
                        let started = std::time::Instant::now();
                        let clients = deferred.held();
                        deferred.flush(&tx, &batch).await?;
                        tracing::debug!(
                            projection = member.projection.name(),
                            clients,
                            seconds = started.elapsed().as_secs_f64(),
                            "wrote what it held"
                        );
                        member.checkpoint = member.folded_to;
                        member.pending = 0;
                    }
                    held = held.max(deferred.held());
                }
            }
        }
        tx.commit().await?;
        if handing {
            lane.hand_over(&self.store, self.holder, ttl).await?;
            // Handed over, they hold nothing now.
            held = lane
                .members
                .iter()
                .filter_map(|m| m.deferred.as_ref().map(|d| d.held()))
                .max()
                .unwrap_or(0);
        }
        Ok(held)
    }
}

/// The names of `members` whose leases their lane renews: all when no write handed over is
/// under way (`write_ended`), otherwise those that write does not hold (it renewed theirs in
/// its own transaction, and holds them until it commits).
fn renewable(members: &[Member], write_ended: bool) -> Vec<&str> {
    members
        .iter()
        .filter(|m| m.writing_to.is_none() || write_ended)
        .map(|m| m.projection.name())
        .collect()
}

/// A group of a [`Together`]'s projections, written on one connection.
struct Lane {
    client: db::deadpool_postgres::Object,
    members: Vec<Member>,
    /// A connection of its own on which what its members held is written while the next
    /// batches fold (none when the pool had no room, or while a write is under way on it).
    writer: Option<db::deadpool_postgres::Object>,
    /// The write under way, handing its connection back.
    writing: Option<Writing>,
}

/// A write of what a [`Lane`]'s members held, on the lane's writer connection.
struct Writing {
    task: AbortOnDrop<Result<db::deadpool_postgres::Object, ProjectionError>>,
    /// Set when the write failed (an error or a panic), so the lane stops at its next batch
    /// rather than fold on until the next hand-over.
    failed: Arc<std::sync::atomic::AtomicBool>,
}

impl Lane {
    /// Hands what its members hold to a write on its writer connection (once the write before
    /// has ended): in one transaction, each one's lease renewed for `ttl` seconds by `holder`
    /// and its checkpoint moved over every batch it held, then its rows written.
    async fn hand_over(
        &mut self,
        store: &EventStore,
        holder: Uuid,
        ttl: f64,
    ) -> Result<(), ProjectionError> {
        self.written().await?;
        let Some(mut writer) = self.writer.take() else {
            return Err(ProjectionError::Corrupt(
                "a write handed over with no connection to write on".to_owned(),
            ));
        };
        let mut writes = Vec::new();
        for member in self.members.iter_mut() {
            if let Some(deferred) = &mut member.deferred {
                writes.push(Handed {
                    name: member.projection.name().to_owned(),
                    from: member.checkpoint,
                    to: member.folded_to,
                    applied: member.pending,
                    values: deferred.take(),
                });
                member.writing_to = Some(member.folded_to);
                member.pending = 0;
            }
        }
        let store = store.clone();
        let (task, failed) = AbortOnDrop::spawn_flagged(async move {
            write_held(&mut writer, &store, (holder, ttl), writes)
                .await
                .map(|()| writer)
        });
        self.writing = Some(Writing { task, failed });
        Ok(())
    }

    /// Waits for the write handed over to end and takes it in: its connection back, each
    /// member's checkpoint moved, its values no longer lent. (Taken in only here, at the next
    /// hand-over or the run's end, so that between two hand-overs every client of the last is
    /// always lent from it, never read back.)
    async fn written(&mut self) -> Result<(), ProjectionError> {
        let Some(writing) = &mut self.writing else {
            return Ok(());
        };
        let ended = writing.task.ended("a write of what was held").await;
        self.writing = None;
        self.writer = Some(ended??);
        for member in self.members.iter_mut() {
            if let Some(to) = member.writing_to.take() {
                member.checkpoint = to;
                if let Some(deferred) = &mut member.deferred {
                    deferred.written();
                }
            }
        }
        Ok(())
    }
}

/// What a member of a [`Lane`] held, handed to a write: its name, its checkpoint moved from and
/// to, the events folded in, and the values.
struct Handed {
    name: String,
    from: GlobalPosition,
    to: GlobalPosition,
    applied: i64,
    values: Box<dyn HeldWrite>,
}

/// One transaction on `writer`: each lease of `writes` renewed (for `ttl` seconds by `holder`)
/// and its checkpoint moved (fencing: a lease lost or a checkpoint moved under it fails the
/// write), then the values each held written.
async fn write_held(
    writer: &mut db::deadpool_postgres::Object,
    store: &EventStore,
    (holder, ttl): (Uuid, f64),
    writes: Vec<Handed>,
) -> Result<(), ProjectionError> {
    let statements = writer.statement_cache.clone();
    let tx = writer.transaction().await?;
    bookkeeping::commit_without_flush(&tx).await?;
    let names: Vec<&str> = writes.iter().map(|w| w.name.as_str()).collect();
    if let Some(lost) = bookkeeping::renew_leases(&*tx, &names, holder, ttl)
        .await?
        .into_iter()
        .next()
    {
        return Err(ProjectionError::LeaseLost(lost));
    }
    for w in &writes {
        if !bookkeeping::move_checkpoint(&*tx, &w.name, w.from, w.to, w.applied).await? {
            return Err(ProjectionError::CheckpointMoved(w.name.clone()));
        }
    }
    let decoded = Decoded::default();
    let batch = Batch {
        events: &[],
        decoded: &decoded,
        log: store,
        statements: Some(&statements),
    };
    for w in &writes {
        let started = std::time::Instant::now();
        w.values.write(&tx, &batch).await?;
        tracing::debug!(
            projection = w.name.as_str(),
            seconds = started.elapsed().as_secs_f64(),
            "wrote what it held"
        );
    }
    tx.commit().await?;
    Ok(())
}

/// When a [`Together`] writes the folds it holds.
#[derive(Clone, Copy, Debug)]
struct Flush {
    /// After this many events folded since the last write.
    events: i64,
    /// Once one of them holds this many clients' values.
    clients: usize,
}

impl Default for Flush {
    fn default() -> Self {
        Flush {
            events: 200_000,
            clients: 20_000,
        }
    }
}

/// One projection of a [`Together`] as it runs.
struct Member {
    projection: Arc<dyn Projection>,
    /// Its fold held across batches, when it keeps one value per client.
    deferred: Option<Box<dyn Deferred>>,
    /// Where its checkpoint stands (as this run moved it).
    checkpoint: GlobalPosition,
    /// The last event folded into what it holds.
    folded_to: GlobalPosition,
    /// Events folded into what it holds since its checkpoint (and since the last it handed
    /// over to be written).
    pending: i64,
    /// Where a write of what it held, under way elsewhere, moves its checkpoint to.
    writing_to: Option<GlobalPosition>,
}

/// Reads the log from `from` batch after batch, decodes each once, and sends it on, until past
/// `stop_at` or (without it) no committed event is left; waits, as [`Runner::catch_up_to`]
/// does, for events committed behind a transaction still open. Reading and decoding run apart
/// (a task each), so the next batch is read from the database while this one is decoded.
async fn read_ahead(
    store: EventStore,
    from: GlobalPosition,
    stop_at: Option<GlobalPosition>,
    cuts: Vec<GlobalPosition>,
    settings: RunnerSettings,
    refolds: bool,
    sender: tokio::sync::mpsc::Sender<ReadBatch>,
) {
    let (raw_sender, mut raw) = tokio::sync::mpsc::channel(1);
    let mut fetching = AbortOnDrop::spawn(read_batches(
        store.clone(),
        from,
        stop_at,
        cuts,
        settings,
        raw_sender,
    ));
    while let Some(read) = raw.recv().await {
        let events = match read {
            Ok(events) => events,
            Err(e) => {
                let _ = sender.send(Err(e)).await;
                return;
            }
        };
        // Each client event is decoded from its stored text, or its payload moved into it (no
        // copy): the projections fed from here fold client events from the decoded batch only.
        let decoded = Decoded::decode_read(events, &store, refolds).await;
        let failed = decoded.is_err();
        if sender.send(decoded).await.is_err() || failed {
            return;
        }
    }
    // The reads stopped: the log's end, or a reading task that died (never taken for the end).
    if let Err(e) = fetching.ended("the log's reading").await {
        let _ = sender.send(Err(e)).await;
    }
}

/// The reading half of [`read_ahead`]: each batch as read, ended at the next of `cuts` it would
/// reach past (what lies after is read next).
async fn read_batches(
    store: EventStore,
    from: GlobalPosition,
    stop_at: Option<GlobalPosition>,
    cuts: Vec<GlobalPosition>,
    settings: RunnerSettings,
    sender: tokio::sync::mpsc::Sender<Result<Vec<eventstore::RawEvent>, ProjectionError>>,
) {
    let mut at = from;
    let mut cuts = cuts.into_iter().peekable();
    loop {
        if stop_at.is_some_and(|stop| at >= stop) {
            return;
        }
        let read: Result<Option<Vec<eventstore::RawEvent>>, ProjectionError> = match store
            .read_all_raw(at, settings.batch_size, domain::CLIENT_STREAM)
            .await
        {
            Ok(events) if events.is_empty() => match store.has_committed_after(at).await {
                Ok(false) => return,
                Ok(true) => Ok(None),
                Err(e) => Err(e.into()),
            },
            Ok(events) => Ok(Some(events)),
            Err(e) => Err(e.into()),
        };
        let mut events = match read {
            Ok(Some(events)) => events,
            Ok(None) => {
                tokio::time::sleep(settings.poll_interval).await;
                continue;
            }
            Err(e) => {
                let _ = sender.send(Err(e)).await;
                return;
            }
        };
        while cuts.next_if(|cut| *cut <= at).is_some() {}
        if let Some(&cut) = cuts.peek() {
            let within = events.partition_point(|e| e.event.global <= cut);
            if within > 0 && within < events.len() {
                events.truncate(within);
            }
        }
        if let Some(last) = events.last() {
            at = last.event.global;
        }
        if sender.send(Ok(events)).await.is_err() {
            return;
        }
    }
}

/// A subscription to the log from `checkpoint` as `settings` say, and the interval at which
/// its follower renews its lease (a third of the lease's time).
pub(crate) fn following(
    store: &EventStore,
    checkpoint: GlobalPosition,
    settings: &RunnerSettings,
) -> (eventstore::Subscription, tokio::time::Interval) {
    let subscription = store.subscribe(
        checkpoint,
        SubscriptionSettings {
            batch_size: settings.batch_size,
            poll_interval: settings.poll_interval,
        },
    );
    let renew = tokio::time::interval(settings.renew_every());
    (subscription, renew)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::AbortOnDrop;

    /// A write handed over sets its flag whether it returns an error or panics, and only then:
    /// the lane beside it stops at its next batch either way.
    #[tokio::test]
    async fn a_flagged_task_is_flagged_when_it_fails_or_panics_and_not_when_it_succeeds() {
        let (mut done, flag) = AbortOnDrop::spawn_flagged(async { Ok::<u8, String>(7) });
        assert_eq!(done.ended("the task").await.ok(), Some(Ok(7)));
        assert!(
            !flag.load(Ordering::Acquire),
            "a task that succeeded is not flagged"
        );

        let (mut failing, flag) =
            AbortOnDrop::spawn_flagged(async { Err::<u8, String>("refused".to_owned()) });
        assert_eq!(
            failing.ended("the task").await.ok(),
            Some(Err("refused".to_owned()))
        );
        assert!(
            flag.load(Ordering::Acquire),
            "a task that failed is flagged"
        );

        let (mut panicking, flag) = AbortOnDrop::spawn_flagged(async {
            if flag_panics() {
                panic!("a write that panics");
            }
            Ok::<u8, String>(0)
        });
        let ended = panicking.ended("the task").await;
        assert!(
            ended.is_err_and(|e| e.to_string().contains("the task failed")),
            "a panic is an error to whoever waits for the task"
        );
        assert!(
            flag.load(Ordering::Acquire),
            "a task that panicked is flagged"
        );
    }

    /// Seen as possibly false by the compiler, so the test's `Ok` after the panic is reachable.
    fn flag_panics() -> bool {
        std::hint::black_box(true)
    }
}
