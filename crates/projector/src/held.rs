//! Read models kept as one value per client (a caseload row, an outcome state): a batch reads
//! back the values of the clients it continues, folds its events into them, and writes them
//! whole. [`apply_batch`] does that within one batch, as a live runner does; a rebuild run
//! [`Together`](crate::Together) instead holds the values across batches ([`Deferred`]) and writes
//! them at a flush, so a client whose events are spread over many batches (a journey kept over
//! months) is read back and written once per flush, not once per batch.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::corrected::Fact;
use crate::runner::{Batch, ProjectionError};

/// A read model kept as one value per client.
#[async_trait]
pub trait PerClient: Send + Sync + 'static {
    /// What it keeps of a client.
    type Value: Clone + Send + Sync + 'static;
    /// Whether a client with a correction is folded again from the start of their record.
    fn refolds_clients(&self) -> bool;
    /// The stored values of `clients` (those it has), inside `tx`.
    async fn load(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
        clients: &[Uuid],
    ) -> Result<Vec<(Uuid, Self::Value)>, ProjectionError>;
    /// A client's value before their first fact is folded in.
    fn start(&self, client_id: Uuid, first: &Fact) -> Self::Value;
    /// Folds one fact into a client's value.
    fn apply(&self, value: &mut Self::Value, fact: &Fact);
    /// Writes `values` inside `tx`; `stored` are the clients among them (and clients refolded
    /// since) whose rows are in its tables now, to replace, each with the value those rows were
    /// written from (sorted by client): what did not change need not be written again.
    async fn write(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
        values: &[&Self::Value],
        stored: &[(Uuid, &Self::Value)],
    ) -> Result<(), ProjectionError>;
}

/// Values folded and not yet written, with which of them have rows to replace (and the value
/// those rows were written from), and those handed to a write still under way
/// ([`Deferred::take`]).
struct Held<V> {
    values: HashMap<Uuid, V>,
    stored: HashMap<Uuid, V>,
    writing: Option<Arc<HashMap<Uuid, V>>>,
}

impl<V> Default for Held<V> {
    fn default() -> Self {
        Held {
            values: HashMap::new(),
            stored: HashMap::new(),
            writing: None,
        }
    }
}

/// `stored`'s clients sorted, each with the value their rows were written from.
fn sorted<V>(stored: &HashMap<Uuid, V>) -> Vec<(Uuid, &V)> {
    let mut sorted: Vec<(Uuid, &V)> = stored.iter().map(|(id, value)| (*id, value)).collect();
    sorted.sort_unstable_by_key(|(id, _)| *id);
    sorted
}

impl<V: Clone + Send + Sync + 'static> Held<V> {
    /// Folds `batch` in, first reading back the stored values of the clients it continues that
    /// are not held already.
    async fn fold<P: PerClient<Value = V>>(
        &mut self,
        projection: &P,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
    ) -> Result<(), ProjectionError> {
        if batch.decoded.is_empty() {
            return Ok(());
        }
        // Only a client whose record began before the batch can have a stored value.
        let missing: Vec<Uuid> = batch
            .decoded
            .continuing_client_ids()
            .into_iter()
            .filter(|id| !self.values.contains_key(id))
            .collect();
        // A client whose value is being written elsewhere is taken from that write (not yet
        // committed, its rows are not to be read); its rows stand by the next write, which
        // waits for this one, and are replaced then where they changed (the value lent is the
        // one those rows are written from).
        let missing: Vec<Uuid> = match &self.writing {
            Some(writing) => missing
                .into_iter()
                .filter(|id| match writing.get(id) {
                    Some(value) => {
                        self.stored.insert(*id, value.clone());
                        self.values.insert(*id, value.clone());
                        false
                    }
                    None => true,
                })
                .collect(),
            None => missing,
        };
        if !missing.is_empty() {
            for (client_id, value) in projection.load(tx, batch, &missing).await? {
                self.stored.insert(client_id, value.clone());
                self.values.insert(client_id, value);
            }
        }
        for client in batch.decoded.clients(projection.refolds_clients())? {
            if client.refold {
                // Folded again from the start of the record, corrections applied (its stored
                // rows, if any, are still replaced).
                self.values.remove(&client.client_id);
            }
            for fact in client.facts {
                let value = self
                    .values
                    .entry(client.client_id)
                    .or_insert_with(|| projection.start(client.client_id, fact));
                projection.apply(value, fact);
            }
        }
        Ok(())
    }

    /// Every value held, and the clients among them with rows to replace (with the values
    /// those rows were written from), handed over to be written elsewhere: lent to the next
    /// folds until [`Deferred::written`].
    fn take(&mut self) -> (Arc<HashMap<Uuid, V>>, HashMap<Uuid, V>) {
        let values = Arc::new(std::mem::take(&mut self.values));
        let stored = std::mem::take(&mut self.stored);
        self.writing = Some(Arc::clone(&values));
        (values, stored)
    }

    /// Writes every value held and forgets them.
    async fn flush<P: PerClient<Value = V>>(
        &mut self,
        projection: &P,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
    ) -> Result<(), ProjectionError> {
        let values: Vec<&V> = self.values.values().collect();
        projection
            .write(tx, batch, &values, &sorted(&self.stored))
            .await?;
        self.values.clear();
        self.stored.clear();
        Ok(())
    }
}

/// Folds one batch into `projection`'s rows inside `tx`: the values of the clients it
/// continues read back, its events folded in, the values written.
///
/// # Errors
/// A database failure, a stored value that cannot be read.
pub async fn apply_batch<P: PerClient>(
    projection: &P,
    tx: &tokio_postgres::Transaction<'_>,
    batch: &Batch<'_>,
) -> Result<(), ProjectionError> {
    if batch.decoded.is_empty() {
        return Ok(());
    }
    let mut held = Held::default();
    held.fold(projection, tx, batch).await?;
    held.flush(projection, tx, batch).await
}

/// A projection's fold held across batches by a rebuild ([`crate::Together`]): batches are
/// folded into values in memory and written at a flush, in the transaction that moves the
/// projection's checkpoint over every batch folded since the last.
#[async_trait]
pub trait Deferred: Send + Sync {
    /// Folds a batch into what it holds, inside `tx` (reading back stored values it does not
    /// hold), writing nothing.
    async fn fold(
        &mut self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
    ) -> Result<(), ProjectionError>;
    /// How many clients' values it holds unwritten.
    fn held(&self) -> usize;
    /// Writes what it holds inside `tx` and forgets it.
    async fn flush(
        &mut self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
    ) -> Result<(), ProjectionError>;
    /// Hands what it holds over to a write run elsewhere (on another connection, while the
    /// next batches fold), holding nothing after; until [`Deferred::written`], a client of that
    /// write whom a fold continues is taken from it rather than read back.
    fn take(&mut self) -> Box<dyn HeldWrite>;
    /// The write of what [`Deferred::take`] handed over has committed.
    fn written(&mut self);
}

/// Values handed over by [`Deferred::take`], to write in a transaction of their own.
#[async_trait]
pub trait HeldWrite: Send + Sync {
    /// Writes them inside `tx`.
    async fn write(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
    ) -> Result<(), ProjectionError>;
}

/// [`HeldWrite`] for a [`PerClient`] read model.
struct Handed<P: PerClient> {
    projection: Arc<P>,
    values: Arc<HashMap<Uuid, P::Value>>,
    stored: HashMap<Uuid, P::Value>,
}

#[async_trait]
impl<P: PerClient> HeldWrite for Handed<P> {
    async fn write(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
    ) -> Result<(), ProjectionError> {
        let values: Vec<&P::Value> = self.values.values().collect();
        self.projection
            .write(tx, batch, &values, &sorted(&self.stored))
            .await
    }
}

/// [`Deferred`] for a [`PerClient`] read model.
pub struct HeldFold<P: PerClient> {
    projection: Arc<P>,
    held: Held<P::Value>,
}

impl<P: PerClient> HeldFold<P> {
    /// Holds `projection`'s values across batches.
    pub fn new(projection: Arc<P>) -> Self {
        HeldFold {
            projection,
            held: Held::default(),
        }
    }
}

#[async_trait]
impl<P: PerClient> Deferred for HeldFold<P> {
    async fn fold(
        &mut self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
    ) -> Result<(), ProjectionError> {
        self.held.fold(&*self.projection, tx, batch).await
    }

    fn held(&self) -> usize {
        self.held.values.len()
    }

    async fn flush(
        &mut self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
    ) -> Result<(), ProjectionError> {
        self.held.flush(&*self.projection, tx, batch).await
    }

    fn take(&mut self) -> Box<dyn HeldWrite> {
        let (values, stored) = self.held.take();
        Box::new(Handed {
            projection: Arc::clone(&self.projection),
            values,
            stored,
        })
    }

    fn written(&mut self) {
        self.held.writing = None;
    }
}
