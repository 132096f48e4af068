//! How a process follows the log with its projections (inside `serve`, or `casebook project`).
//!
//! Those whose lease it takes and that stand at the same checkpoint follow the log together: one
//! read of each batch, decoded once, applied to all of them in one transaction that renews
//! their leases and moves their checkpoints (as [`crate::Together`] does for a rebuild). Each
//! append then costs the cluster one projector read and one projector transaction, however many
//! read models there are, where a runner each made it one of each per read model (issue #18).
//!
//! Any other projection follows alone with its own [`Runner`]: one held by another process (a
//! standby waits for it), one behind the others (a new rule version catching up must not hold
//! the others' batches back), and one the group could not apply a batch to. A projection is
//! blamed for a batch when its own lease or checkpoint was lost, or when its fold failed for
//! its own reasons (unreadable data, a statement the database refused); it then leaves the
//! group and retries (or stops, on unreadable data) alone, as it would have as a runner of its
//! own, while the others go on. A failure that is nobody's (the database away, the connection
//! lost, a serialisation failure) is retried by the whole group.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

use eventstore::{EventStore, GlobalPosition};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::Batch;
use crate::bookkeeping;
use crate::corrected::Decoded;
use crate::runner::following;
use crate::{Projection, ProjectionError, Runner, RunnerSettings};

/// The projections a process follows the log with, as they started.
pub struct Following {
    /// The names of those following together (none, or at least two).
    pub together: Vec<String>,
    /// The names of those following alone, at the start.
    pub alone: Vec<String>,
    /// The tasks, which end once `shutdown` turns true and their leases are given up.
    pub tasks: Vec<JoinHandle<()>>,
}

/// Starts following the log with `projections` as `holder`: together where they can, alone
/// where they must.
///
/// # Errors
/// A database failure while taking the leases.
pub async fn follow(
    store: &EventStore,
    projections: Vec<Arc<dyn Projection>>,
    holder: Uuid,
    settings: RunnerSettings,
    shutdown: &watch::Receiver<bool>,
) -> Result<Following, ProjectionError> {
    let (mut together, mut alone) = partition(store, projections, holder, settings).await?;
    if together.len() == 1 {
        alone.append(&mut together);
    }
    let names = |list: &[Arc<dyn Projection>]| -> Vec<String> {
        list.iter().map(|p| p.name().to_owned()).collect()
    };
    let (together_names, alone_names) = (names(&together), names(&alone));
    let mut tasks: Vec<JoinHandle<()>> = alone
        .into_iter()
        .map(|projection| alone_task(store, projection, holder, settings, shutdown))
        .collect();
    if !together.is_empty() {
        let group = Group {
            store: store.clone(),
            members: together,
            holder,
            settings,
        };
        tasks.push(tokio::spawn(group.run(shutdown.clone())));
    }
    Ok(Following {
        together: together_names,
        alone: alone_names,
        tasks,
    })
}

/// A projection following the log on its own.
fn alone_task(
    store: &EventStore,
    projection: Arc<dyn Projection>,
    holder: Uuid,
    settings: RunnerSettings,
    shutdown: &watch::Receiver<bool>,
) -> JoinHandle<()> {
    let runner = Runner::new(store.clone(), projection, holder, settings);
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        match AssertUnwindSafe(runner.run(shutdown)).catch_unwind().await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(projection = runner.name(), error = %e, "projection stopped");
            }
            // A bug in its fold: it stops, as on unreadable data, and gives its lease up.
            Err(_) => {
                tracing::error!(
                    projection = runner.name(),
                    "projection panicked and stopped"
                );
                let _ = tokio::time::timeout(Duration::from_secs(2), runner.release()).await;
            }
        }
    })
}

/// Takes each projection's lease where it can: those taken and standing at the furthest
/// checkpoint among them go together, the others alone.
async fn partition(
    store: &EventStore,
    projections: Vec<Arc<dyn Projection>>,
    holder: Uuid,
    settings: RunnerSettings,
) -> Result<(Vec<Arc<dyn Projection>>, Vec<Arc<dyn Projection>>), ProjectionError> {
    let client = store.pool().get().await?;
    let ttl = settings.lease_ttl.as_secs_f64();
    let mut held = Vec::new();
    let mut alone = Vec::new();
    for projection in projections {
        if bookkeeping::take_lease(&**client, projection.name(), holder, ttl).await? {
            let (at, _) = bookkeeping::checkpoint(&**client, projection.name()).await?;
            held.push((at, projection));
        } else {
            alone.push(projection);
        }
    }
    let furthest = held.iter().map(|(at, _)| *at).max();
    let mut together = Vec::new();
    for (at, projection) in held {
        if Some(at) == furthest {
            together.push(projection);
        } else {
            alone.push(projection);
        }
    }
    Ok((together, alone))
}

/// Projections following the log together, at one checkpoint.
struct Group {
    store: EventStore,
    members: Vec<Arc<dyn Projection>>,
    holder: Uuid,
    settings: RunnerSettings,
}

/// Why the group stopped following.
enum Stop {
    Shutdown,
    /// The member at this index must go on alone.
    Eject(usize, ProjectionError),
    /// Nobody's fault: wait and follow again.
    Retry(ProjectionError),
}

/// Whether a failure while a member folded a batch is that member's own rather than the
/// database's or the connection's. Only a failure that is plainly nobody's is retried by the
/// whole group: the connection closed or broken, a connection exception (SQLSTATE class 08),
/// a serialisation failure or deadlock (class 40), the server shutting down or not yet
/// accepting (57P01 to 57P03), too many connections (53300), or no connection from the pool.
/// Anything else (unreadable data, the log's events for its fold not upcast or opened, a
/// statement refused, a statement cancelled or timed out, a driver error with no SQLSTATE) is
/// the member's: it leaves the group
/// and retries alone, which costs it only its batching; a wrong retry would hold every read
/// model back.
fn blames_member(error: &ProjectionError) -> bool {
    match error {
        ProjectionError::Unavailable(_)
        | ProjectionError::Store(eventstore::StoreError::Unavailable(_)) => false,
        ProjectionError::Database(e)
        | ProjectionError::Store(eventstore::StoreError::Unexpected(e)) => !nobodys(e),
        // The log read for the member's fold could not be upcast, opened or decoded.
        ProjectionError::Store(_) => true,
        ProjectionError::Corrupt(_)
        | ProjectionError::LeaseLost(_)
        | ProjectionError::CheckpointMoved(_) => true,
    }
}

/// A database failure that is no statement's fault (see [`blames_member`]).
fn nobodys(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) {
        return true;
    }
    e.code().is_some_and(|code| {
        let code = code.code();
        code.starts_with("08")
            || code.starts_with("40")
            || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
    })
}

impl Group {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut alone = Vec::new();
        while !*shutdown.borrow() && !self.members.is_empty() {
            match self.follow(&mut shutdown).await {
                Stop::Shutdown => break,
                Stop::Eject(index, error) => {
                    let projection = self.members.remove(index);
                    tracing::warn!(
                        projection = projection.name(),
                        error = %error,
                        "the projection leaves the group and follows the log alone"
                    );
                    alone.push(alone_task(
                        &self.store,
                        projection,
                        self.holder,
                        self.settings,
                        &shutdown,
                    ));
                }
                Stop::Retry(error) => {
                    tracing::debug!(error = %error, "projection group waits and retries");
                    let pause = self.settings.renew_every();
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        self.release().await;
        for task in alone {
            let _ = task.await;
        }
    }

    /// Gives every member's lease up at shutdown, bounded as [`Runner::run`] is: a database
    /// that is away must not hold the shutdown up (the leases then expire on their own).
    async fn release(&self) {
        // A pooled connection may be closed although the database is up (the server restarted
        // under it): the pool drops it when it comes back, so a second or third try gets a
        // live one, as for a runner.
        let once = || async {
            let client = self.store.pool().get().await?;
            for projection in &self.members {
                bookkeeping::release_lease(&**client, projection.name(), self.holder).await?;
            }
            Ok::<(), ProjectionError>(())
        };
        let give_up = async {
            let mut outcome = once().await;
            for _ in 0..3 {
                if outcome.is_ok() {
                    break;
                }
                outcome = once().await;
            }
            outcome
        };
        match tokio::time::timeout(Duration::from_secs(2), give_up).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the group's leases could not be given up; they expire on their own");
            }
            Err(_) => {
                tracing::warn!(
                    "giving the group's leases up took too long; they expire on their own"
                );
            }
        }
    }

    async fn follow(&self, shutdown: &mut watch::Receiver<bool>) -> Stop {
        let mut checkpoint = match self.start().await {
            Ok(checkpoint) => checkpoint,
            Err(stop) => return stop,
        };
        let refolds = self.members.iter().any(|p| p.refolds());
        let (mut subscription, mut renew) = following(&self.store, checkpoint, &self.settings);
        loop {
            tokio::select! {
                batch = subscription.next_raw_batch(domain::CLIENT_STREAM) => {
                    let events = match batch {
                        Ok(events) => events,
                        Err(e) => return Stop::Retry(e.into()),
                    };
                    let next = subscription.checkpoint();
                    if let Err(stop) = self.apply(checkpoint, events, refolds).await {
                        return stop;
                    }
                    checkpoint = next;
                }
                _ = renew.tick() => {
                    if let Err(stop) = self.renew().await {
                        return stop;
                    }
                }
                _ = shutdown.changed() => return Stop::Shutdown,
            }
        }
    }

    /// Takes every member's lease and finds their common checkpoint; a member that is not
    /// there (its checkpoint moved by another writer since) goes on alone.
    async fn start(&self) -> Result<GlobalPosition, Stop> {
        let client = self.take_leases().await?;
        let mut positions = Vec::with_capacity(self.members.len());
        for projection in &self.members {
            let (at, _) = bookkeeping::checkpoint(&**client, projection.name())
                .await
                .map_err(Stop::Retry)?;
            positions.push(at);
        }
        let furthest = positions.iter().copied().max().unwrap_or_default();
        match positions.iter().position(|at| *at != furthest) {
            Some(index) => Err(Stop::Eject(
                index,
                ProjectionError::CheckpointMoved(self.members[index].name().to_owned()),
            )),
            None => Ok(furthest),
        }
    }

    /// Renews every member's lease (between batches, when the log is quiet).
    async fn renew(&self) -> Result<(), Stop> {
        self.take_leases().await.map(drop)
    }

    /// Takes (or renews) every member's lease, one by one; the first one held by another goes
    /// on alone. The connection, for what follows.
    async fn take_leases(&self) -> Result<db::deadpool_postgres::Object, Stop> {
        let client = self
            .store
            .pool()
            .get()
            .await
            .map_err(|e| Stop::Retry(e.into()))?;
        let ttl = self.settings.lease_ttl.as_secs_f64();
        for (index, projection) in self.members.iter().enumerate() {
            match bookkeeping::take_lease(&**client, projection.name(), self.holder, ttl).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Stop::Eject(
                        index,
                        ProjectionError::LeaseLost(projection.name().to_owned()),
                    ));
                }
                Err(e) => return Err(Stop::Retry(e)),
            }
        }
        Ok(client)
    }

    /// The index of the first member named in `names`.
    fn index_of(&self, names: &[String]) -> Option<usize> {
        self.members
            .iter()
            .position(|p| names.iter().any(|n| n == p.name()))
    }

    /// One transaction: renew every member's lease (fencing), move each one's checkpoint from
    /// exactly `from` to the batch's last event, fold the batch into each.
    async fn apply(
        &self,
        from: GlobalPosition,
        read: Vec<eventstore::RawEvent>,
        refolds: bool,
    ) -> Result<(), Stop> {
        let Some(last) = read.last().map(|e| e.event.global) else {
            return Ok(());
        };
        // Decoded (and any corrected record read again) once, before the transaction opens:
        // each client event from its stored text where it can be (the members fold client
        // events from the decoded batch only; their payloads are left null in `events`). An
        // event nobody can decode stops every member, each on its own, as it would a runner
        // each.
        let (events, decoded) = match Decoded::decode_read(read, &self.store, refolds).await {
            Ok(decoded) => decoded,
            Err(e @ ProjectionError::Corrupt(_)) => return Err(Stop::Eject(0, e)),
            Err(e) => return Err(Stop::Retry(e)),
        };
        let retry = |e: ProjectionError| Stop::Retry(e);
        let mut client = self.store.pool().get().await.map_err(|e| retry(e.into()))?;
        let statements = client.statement_cache.clone();
        let tx = client.transaction().await.map_err(|e| retry(e.into()))?;
        let ttl = self.settings.lease_ttl.as_secs_f64();
        // Sent together (one round trip): the rows and checkpoints are made again from the log
        // if a crash loses them, so the commit does not wait for the WAL flush.
        let names: Vec<&str> = self.members.iter().map(|p| p.name()).collect();
        let ((), lost) = futures_util::future::try_join(
            bookkeeping::commit_without_flush(&tx),
            bookkeeping::renew_leases(&*tx, &names, self.holder, ttl),
        )
        .await
        .map_err(retry)?;
        if let Some(index) = self.index_of(&lost) {
            return Err(Stop::Eject(
                index,
                ProjectionError::LeaseLost(self.members[index].name().to_owned()),
            ));
        }
        // Every checkpoint is moved before any row is written: a member whose checkpoint was
        // moved under it (a rebuilt read model switched in) leaves the group here, rather than
        // failing on rows the switch already holds, and reads its checkpoint again alone.
        let count = events.len() as i64;
        let stuck = bookkeeping::move_checkpoints(&*tx, &names, from, last, count)
            .await
            .map_err(retry)?;
        if let Some(index) = self.index_of(&stuck) {
            return Err(Stop::Eject(
                index,
                ProjectionError::CheckpointMoved(self.members[index].name().to_owned()),
            ));
        }
        let batch = Batch {
            events: &events,
            decoded: &decoded,
            log: &self.store,
            statements: Some(&statements),
        };
        for (index, projection) in self.members.iter().enumerate() {
            // A panic in one member's fold stops that member, not the group's task: it leaves
            // the group (the transaction is dropped, so rolled back) and panics again alone.
            let applied = AssertUnwindSafe(projection.apply_decoded(&tx, &batch))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Err(ProjectionError::Corrupt(format!(
                        "{} panicked while folding a batch",
                        projection.name()
                    )))
                });
            if let Err(e) = applied {
                return Err(if blames_member(&e) {
                    Stop::Eject(index, e)
                } else {
                    Stop::Retry(e)
                });
            }
        }
        tx.commit().await.map_err(|e| retry(e.into()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_members_own_failures_blame_it() {
        assert!(blames_member(&ProjectionError::Corrupt("x".into())));
        assert!(blames_member(&ProjectionError::LeaseLost("x".into())));
        assert!(blames_member(&ProjectionError::CheckpointMoved("x".into())));
        assert!(blames_member(&ProjectionError::Store(
            eventstore::StoreError::Protection("x".into())
        )));
    }
}
