//! PostgreSQL access for Casebook: a private cluster that the project starts itself when no
//! database URL is given, connection pools, and the embedded SQL migrations.
//!
//! This crate knows nothing of events or read models; it only hands out connections to a
//! database whose schema is current.

mod cluster;
mod error;
mod migrate;
mod pool;

pub use cluster::{Cluster, ClusterKind, default_data_dir, find_bin_dir};
pub use error::DbError;
pub use migrate::{
    MigrationReport, migrate, migrate_to, migrations_fingerprint, schema_is_current,
};
pub use pool::{APP_ROLE, POOL_WAIT, Pool, PoolSettings, app_config, connect, pool};

/// Re-exported so callers name one set of connection types.
pub use deadpool_postgres;
pub use tokio_postgres;
