//! Connection pools and dedicated connections.

use std::future::Future;
use std::pin::Pin;

use deadpool_postgres::{Connect, Manager, ManagerConfig, RecyclingMethod};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

use crate::DbError;

/// The login role the service uses: INSERT and SELECT on the event log, nothing more there.
pub const APP_ROLE: &str = "casebook_app";

/// A pool of connections (deadpool). Never LISTEN on a pooled connection: it drops notifications.
pub type Pool = deadpool_postgres::Pool;

/// How long a caller waits for one of the pool's connections before it is told the database
/// is unavailable.
pub const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How large a pool to build.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// The most connections the pool opens at once.
    pub max_size: usize,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings { max_size: 16 }
    }
}

/// Builds a pool; connections are opened lazily, on first use, each opened and driven on the
/// runtime the pool is built on (`serve` builds its pools on the main runtime), whichever
/// runtime asks for it: a connection first asked for by an HTTP handler runs on the main
/// runtime, not on that worker's, and outlives the workers when they stop. Built outside a
/// runtime, a pool opens each connection on the runtime that asks for it.
///
/// # Errors
/// [`DbError::Config`] when the pool cannot be built from these settings.
pub fn pool(config: tokio_postgres::Config, settings: PoolSettings) -> Result<Pool, DbError> {
    let connect = OnOneRuntime {
        runtime: Handle::try_current().ok(),
    };
    let manager = Manager::from_connect(
        config,
        connect,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(settings.max_size)
        // A request that finds every connection held for this long is answered 503 rather
        // than waiting for ever (holders waiting on each other would otherwise hang the
        // service: every request after them would queue behind them).
        .wait_timeout(Some(POOL_WAIT))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| DbError::Config(e.to_string()))
}

/// What deadpool's `Connect` hands back: the client and its connection's driver task.
type Connecting<'a> = Pin<
    Box<
        dyn Future<Output = Result<(tokio_postgres::Client, JoinHandle<()>), tokio_postgres::Error>>
            + Send
            + 'a,
    >,
>;

/// Opens pooled connections (no TLS: a unix socket or a private network) on one runtime: the
/// socket is registered with that runtime's reactor and the connection's driver is spawned
/// there, so the connection lives as long as that runtime, not the caller's.
struct OnOneRuntime {
    runtime: Option<Handle>,
}

impl Connect for OnOneRuntime {
    fn connect(&self, config: &tokio_postgres::Config) -> Connecting<'_> {
        let config = config.clone();
        let runtime = self.runtime.clone();
        Box::pin(async move {
            let Some(runtime) = runtime else {
                return open(config).await;
            };
            match runtime.spawn(open(config.clone())).await {
                Ok(opened) => opened,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // That runtime is shutting down: this caller's own runtime opens it.
                Err(_) => open(config).await,
            }
        })
    }
}

/// Connects and spawns the connection's driver on the current runtime.
async fn open(
    config: tokio_postgres::Config,
) -> Result<(tokio_postgres::Client, JoinHandle<()>), tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "a pooled connection failed");
        }
    });
    Ok((client, driver))
}

/// The same server and database as `admin`, as the service's own role.
pub fn app_config(admin: &tokio_postgres::Config) -> tokio_postgres::Config {
    let mut config = admin.clone();
    config.user(APP_ROLE);
    config
}

/// Opens one dedicated connection (its driver task runs on the current runtime).
///
/// # Errors
/// [`DbError::Postgres`] when the server cannot be reached.
pub async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, DbError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "dedicated connection closed");
        }
    });
    Ok(client)
}
