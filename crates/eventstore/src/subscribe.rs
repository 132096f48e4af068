use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::poll_fn;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::{EventStore, GlobalPosition, NOTIFY_CHANNEL, RawEvent, RecordedEvent, StoreError};

/// Holds one dedicated connection that LISTENs for appends (a pooled connection would drop
/// notifications) and wakes every subscription made through it. It reconnects by itself, and
/// wakes subscribers after each reconnect so they catch up on anything sent while it was away.
///
/// It also follows [`ACCESS_CHANNEL`], on which the database announces every change to the
/// access tables (tokens and staff, by a trigger: `V18__access_notify.sql`), so that a process
/// may keep verified tokens in memory and drop them the moment one is revoked anywhere
/// ([`AccessChanges`]).
pub struct Listener {
    receiver: watch::Receiver<u64>,
    access: watch::Receiver<AccessEpoch>,
    here: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: JoinHandle<()>,
}

/// The channel on which a change to the access tables (tokens, staff) is announced, by a
/// statement trigger, in the changing transaction: it reaches listeners when that commits.
pub const ACCESS_CHANNEL: &str = "casebook_access";

/// What the listener knows of changes to the access tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct AccessEpoch {
    /// Bumped on every change announced, every (re)connect, and every loss of the connection.
    changes: u64,
    /// Whether the listener is connected and listening now (so no change can go unheard).
    listening: bool,
}

/// Changes to the access tables as a process hears them: a counter that moves on every change
/// announced on [`ACCESS_CHANNEL`] and whenever the listener connects or loses its connection.
/// Something verified while the counter read `n` is still as verified while it reads `n`.
#[derive(Clone)]
pub struct AccessChanges {
    receiver: watch::Receiver<AccessEpoch>,
    /// Changes made through this process, counted as soon as they are made (the listener
    /// hears of them a moment later).
    here: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl AccessChanges {
    /// Counts a change to the access tables made through this process, once it is committed:
    /// the counter moves at once, without waiting for the database's announcement.
    pub fn changed_here(&self) {
        self.here.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The counter now, or `None` when the listener is not listening (not connected yet,
    /// reconnecting, or stopped): then a change could go unheard, and nothing may be trusted
    /// from memory.
    pub fn current(&self) -> Option<u64> {
        // A stopped listener's last value would say it is still listening.
        if self.receiver.has_changed().is_err() {
            return None;
        }
        let here = self.here.load(std::sync::atomic::Ordering::SeqCst);
        let epoch = *self.receiver.borrow();
        epoch.listening.then_some(epoch.changes.wrapping_add(here))
    }
}

impl Listener {
    /// Starts listening on the database `config` points at.
    pub fn start(mut config: tokio_postgres::Config) -> Listener {
        // The listener only listens, so a connection that died without a word (a half-open TCP
        // connection after a partition or a failover) would go unnoticed for hours by default:
        // TCP keepalives find it in about 11 s. Until then a remembered token is still bounded
        // by its 10 s (`app::access::TOKEN_CACHE_TTL`), and subscribers still poll.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3);
        let (sender, receiver) = watch::channel(0u64);
        let (access_sender, access) = watch::channel(AccessEpoch::default());
        let access_sender = std::sync::Arc::new(access_sender);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    outcome = listen_once(&config, &sender, &access_sender) => {
                        if let Err(e) = outcome {
                            tracing::warn!(error = %e, "event listener lost its connection; reconnecting");
                        }
                    }
                    () = sender.closed() => return,
                }
                // Changes made while we are away go unheard: nothing is trusted from memory
                // until we listen again.
                access_sender.send_modify(|epoch| {
                    epoch.changes = epoch.changes.wrapping_add(1);
                    epoch.listening = false;
                });
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Listener {
            receiver,
            access,
            here: std::sync::Arc::default(),
            task,
        }
    }

    pub(crate) fn receiver(&self) -> watch::Receiver<u64> {
        self.receiver.clone()
    }

    pub(crate) fn access_changes(&self) -> AccessChanges {
        AccessChanges {
            receiver: self.access.clone(),
            here: self.here.clone(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    sender: &watch::Sender<u64>,
    access: &std::sync::Arc<watch::Sender<AccessEpoch>>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (notified, mut notifications) = mpsc::unbounded_channel();
    let access_changed = access.clone();
    let driver = tokio::spawn(async move {
        let mut messages = poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                // Counted here, as soon as it arrives, not after a hop to another task.
                Ok(AsyncMessage::Notification(n)) if n.channel() == ACCESS_CHANNEL => {
                    access_changed.send_modify(|epoch| {
                        epoch.changes = epoch.changes.wrapping_add(1);
                    });
                }
                Ok(AsyncMessage::Notification(_)) => {
                    if notified.send(()).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}; LISTEN {ACCESS_CHANNEL}"))
        .await?;
    // Anything appended while we were not listening is found by the woken readers.
    sender.send_modify(|n| *n = n.wrapping_add(1));
    // Whatever was verified before is verified again.
    access.send_modify(|epoch| {
        epoch.changes = epoch.changes.wrapping_add(1);
        epoch.listening = true;
    });
    while notifications.recv().await.is_some() {
        sender.send_modify(|n| *n = n.wrapping_add(1));
    }
    drop(client);
    match driver.await {
        Ok(outcome) => outcome,
        Err(_) => Ok(()),
    }
}

/// How a subscription reads.
#[derive(Clone, Copy, Debug)]
pub struct SubscriptionSettings {
    /// Most events handed out per batch.
    pub batch_size: i64,
    /// How long to wait for a notification before reading anyway (the fallback for a missed
    /// notification, a rolled-back transaction that was holding readers back, or no listener).
    pub poll_interval: Duration,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        SubscriptionSettings {
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// A catch-up subscription: follows the global log from a checkpoint, batch by batch.
pub struct Subscription {
    store: EventStore,
    checkpoint: GlobalPosition,
    wake: Option<watch::Receiver<u64>>,
    settings: SubscriptionSettings,
}

impl Subscription {
    pub(crate) fn new(
        store: EventStore,
        from: GlobalPosition,
        settings: SubscriptionSettings,
    ) -> Self {
        let wake = store.wake.clone();
        Subscription {
            store,
            checkpoint: from,
            wake,
            settings,
        }
    }

    /// The position of the last event handed out.
    pub fn checkpoint(&self) -> GlobalPosition {
        self.checkpoint
    }

    /// Waits for and returns the next batch (never empty), advancing the checkpoint past it.
    ///
    /// # Errors
    /// A database failure; the checkpoint does not move, so calling again retries.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        self.next(
            |store, at, limit| Box::pin(store.read_all(at, limit)),
            |e| e.global,
        )
        .await
    }

    /// As [`Subscription::next_batch`], each event read as [`EventStore::read_all_raw`] reads
    /// it: the payload of an event of `stream_type` handed over as its stored text where it
    /// can be decoded from it (no `Value` built first).
    ///
    /// # Errors
    /// A database failure; the checkpoint does not move, so calling again retries.
    pub async fn next_raw_batch(
        &mut self,
        stream_type: &'static str,
    ) -> Result<Vec<RawEvent>, StoreError> {
        self.next(
            |store, at, limit| Box::pin(store.read_all_raw(at, limit, stream_type)),
            |e| e.event.global,
        )
        .await
    }

    /// The next batch `read` gives (never empty), the checkpoint moved to its last event's
    /// `global`.
    async fn next<T>(
        &mut self,
        read: impl for<'a> Fn(
            &'a EventStore,
            GlobalPosition,
            i64,
        )
            -> futures_util::future::BoxFuture<'a, Result<Vec<T>, StoreError>>,
        global: impl Fn(&T) -> GlobalPosition,
    ) -> Result<Vec<T>, StoreError> {
        let mut held_back = Duration::from_millis(5);
        loop {
            if let Some(wake) = &mut self.wake {
                // Mark what we have seen before reading, so a wake-up during the read is kept.
                wake.borrow_and_update();
            }
            let events = read(&self.store, self.checkpoint, self.settings.batch_size).await?;
            if let Some(last) = events.last() {
                self.checkpoint = global(last);
                return Ok(events);
            }
            // Committed but not yet readable: an older transaction anywhere on the cluster is
            // still open. Its end sends no notification, so look again soon instead of waiting.
            if self.store.has_committed_after(self.checkpoint).await? {
                tokio::time::sleep(held_back.min(self.settings.poll_interval)).await;
                held_back = (held_back * 2).min(Duration::from_millis(200));
                continue;
            }
            match &mut self.wake {
                Some(wake) => {
                    let _ = tokio::time::timeout(self.settings.poll_interval, wake.changed()).await;
                }
                None => tokio::time::sleep(self.settings.poll_interval).await,
            }
        }
    }
}
