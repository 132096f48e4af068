//! Connection pools and dedicated connections.

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::DbError;

/// The login role the service uses: INSERT and SELECT on the event log, nothing more there.
pub const APP_ROLE: &str = "casebook_app";

/// A pool of connections (deadpool). Never LISTEN on a pooled connection: it drops notifications.
pub type Pool = deadpool_postgres::Pool;

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

/// Builds a pool; connections are opened lazily, on first use.
///
/// # Errors
/// [`DbError::Config`] when the pool cannot be built from these settings.
pub fn pool(config: tokio_postgres::Config, settings: PoolSettings) -> Result<Pool, DbError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(settings.max_size)
        .build()
        .map_err(|e| DbError::Config(e.to_string()))
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
