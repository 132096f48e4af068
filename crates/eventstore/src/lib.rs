//! The append-only event log on PostgreSQL.
//!
//! [`EventStore::append`] writes a batch of events to one stream atomically under an expected
//! version and an optional idempotency key; [`EventStore::read_stream`] reads a stream (whole,
//! from a version, or as recorded up to a moment); [`EventStore::read_all`] and
//! [`Subscription`] follow the global log in an order that never skips a committed event;
//! [`verify`] walks the hash chains; [`anchor`] seals the whole log and the read audit under a
//! key kept outside the database. Stored events are read through [`Upcasters`], so old rows
//! are never rewritten.
//!
//! With a [`Protection`], personal fields are sealed per stream (see `protect`), and streams
//! can be found by a keyed hash of a sealed value (see `lookup`).
//!
//! This crate knows the envelope, not the events' meaning: it depends on no domain type.

pub mod anchor;
mod append;
mod batch;
mod bulk;
mod error;
mod hash;
mod lookup;
mod model;
mod notify;
mod protect;
mod read;
mod secret;
mod subscribe;
mod upcast;
mod verify;

use std::sync::Arc;

pub use bulk::{BulkAppended, NewStream};
pub use error::StoreError;
pub use model::{
    AppendRequest, AppendResult, AppendedEvent, Claim, ExpectedVersion, GlobalPosition, Metadata,
    NewEvent, RecordedEvent, Tagged,
};
pub use protect::{Master, MasterKey, Protection, SEALED, rotate_master_key};
pub use read::{RawEvent, StreamHead};
pub use secret::{KeyKind, SecretKey};
pub use subscribe::{ACCESS_CHANNEL, AccessChanges, Listener, Subscription, SubscriptionSettings};
pub use upcast::{UpcastFn, Upcasters};
#[cfg(feature = "testing")]
pub use verify::testing;
pub use verify::{VerifyReport, verify};

/// The channel that `NOTIFY` wakes subscribers on.
pub const NOTIFY_CHANNEL: &str = "casebook_events";

/// A handle on the log: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct EventStore {
    pool: db::Pool,
    upcasters: Arc<Upcasters>,
    wake: Option<tokio::sync::watch::Receiver<u64>>,
    access: Option<AccessChanges>,
    notifier: Arc<notify::Notifier>,
    protection: Option<Arc<Protection>>,
    /// The lookup key, unwrapped on first use (see `lookup`).
    lookup_key: Arc<tokio::sync::OnceCell<zeroize::Zeroizing<[u8; 32]>>>,
    /// New streams' first appends waiting to be written together (see `batch`).
    new_streams: Arc<batch::NewStreams>,
    /// The runtime the store was made on (`serve`'s main one), where the batch writers run:
    /// not an HTTP worker's, which stops before the process does.
    runtime: Option<tokio::runtime::Handle>,
}

impl EventStore {
    /// A store over `pool`, reading stored events through `upcasters`.
    pub fn new(pool: db::Pool, upcasters: Upcasters) -> Self {
        EventStore {
            notifier: Arc::new(notify::Notifier::new(pool.clone())),
            pool,
            upcasters: Arc::new(upcasters),
            wake: None,
            access: None,
            protection: None,
            lookup_key: Arc::new(tokio::sync::OnceCell::new()),
            new_streams: Arc::new(batch::NewStreams::default()),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Personal fields named by `protection` are sealed on append under each stream's own data
    /// key, opened by [`EventStore::read_stream`] and shown erased by [`EventStore::read_all`].
    pub fn with_protection(mut self, protection: Protection) -> Self {
        self.protection = Some(Arc::new(protection));
        self.lookup_key = Arc::new(tokio::sync::OnceCell::new());
        self
    }

    /// Subscriptions made from the returned store are woken by `listener` as soon as an append
    /// commits, instead of waiting for the next poll.
    pub fn with_listener(mut self, listener: &Listener) -> Self {
        self.wake = Some(listener.receiver());
        self.access = Some(listener.access_changes());
        self
    }

    /// Changes to the access tables as this store's listener hears them; `None` without a
    /// listener (then nothing about access may be kept in memory).
    pub fn access_changes(&self) -> Option<AccessChanges> {
        self.access.clone()
    }

    /// The pool this store reads and writes through.
    pub fn pool(&self) -> &db::Pool {
        &self.pool
    }

    /// Follows the global log from `from` (exclusive), in commit-safe order.
    pub fn subscribe(&self, from: GlobalPosition, settings: SubscriptionSettings) -> Subscription {
        Subscription::new(self.clone(), from, settings)
    }
}

/// Bumps the log generation when the log was restored from another cluster whose transaction
/// ids run ahead of this one, so that new appends sort after every restored event. Run with
/// the owner's connection at start-up and by `casebook migrate`; returns whether it bumped.
///
/// # Errors
/// [`StoreError::Unexpected`] when the database cannot be queried.
pub async fn rebase_after_restore(admin: &tokio_postgres::Client) -> Result<bool, StoreError> {
    let row = admin
        .query_one("SELECT casebook_rebase_after_restore()", &[])
        .await
        .map_err(StoreError::Unexpected)?;
    Ok(row.get(0))
}
