//! Wakes subscribers after appends commit, one `NOTIFY` for however many appends happened
//! since the last: appends signal a task in-process instead of each spending a round trip (and
//! holding its pooled connection for it).

use std::sync::{Arc, OnceLock, Weak};

use tokio::sync::Notify;

use crate::NOTIFY_CHANNEL;

/// Shared by the clones of one store; when the last goes, its task ends.
pub(crate) struct Notifier {
    signal: Arc<Notify>,
    pool: db::Pool,
    alive: Arc<()>,
    started: OnceLock<()>,
    /// The runtime the store was made on (`serve`'s main one), where the task runs: not an
    /// HTTP worker's, which stops before the process does.
    runtime: Option<tokio::runtime::Handle>,
}

impl Notifier {
    pub(crate) fn new(pool: db::Pool) -> Notifier {
        Notifier {
            signal: Arc::new(Notify::new()),
            pool,
            alive: Arc::new(()),
            started: OnceLock::new(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Says that events were committed. Called after the commit; a notification sent later
    /// than that only wakes readers a little later, and a lost one waits for their poll.
    pub(crate) fn committed(&self) {
        self.started.get_or_init(|| {
            let signal = self.signal.clone();
            let pool = self.pool.clone();
            let alive: Weak<()> = Arc::downgrade(&self.alive);
            // Outside a runtime (never in the service) appends still work; readers poll.
            if let Some(runtime) = self
                .runtime
                .clone()
                .or_else(|| tokio::runtime::Handle::try_current().ok())
            {
                runtime.spawn(send_notifications(signal, pool, alive));
            }
        });
        self.signal.notify_one();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        // Wake the task so that it sees the store gone and ends.
        self.signal.notify_one();
    }
}

async fn send_notifications(signal: Arc<Notify>, pool: db::Pool, alive: Weak<()>) {
    loop {
        signal.notified().await;
        if alive.upgrade().is_none() {
            return;
        }
        let sent = match pool.get().await {
            Ok(client) => client
                .batch_execute(&format!("NOTIFY {NOTIFY_CHANNEL}"))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = sent {
            tracing::warn!(%error, "could not notify subscribers of an append");
        }
    }
}
