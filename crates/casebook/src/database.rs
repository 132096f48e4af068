//! The database the service runs on: a configured server, or a private cluster that this
//! process starts (and stops again on shutdown if it started it).

use anyhow::Context;
use db::{Cluster, ClusterKind, PoolSettings};

use crate::settings::DatabaseSettings;

/// The database Casebook runs on: where it is and how to connect, migrated and ready.
pub struct Database {
    cluster: Option<Cluster>,
    admin: tokio_postgres::Config,
    app: tokio_postgres::Config,
    pool_size: usize,
}

/// Name of the database inside a private cluster.
const DATABASE_NAME: &str = "casebook";

impl Database {
    /// Finds or starts the server, creates the database if needed, applies migrations and
    /// rebases the log after a restore.
    ///
    /// # Errors
    /// When no server can be reached or started, or a migration fails.
    pub async fn open(settings: &DatabaseSettings) -> anyhow::Result<Database> {
        let (cluster, admin) = match &settings.database_url {
            Some(url) => {
                let admin: tokio_postgres::Config =
                    url.parse().context("parsing CASEBOOK_DATABASE_URL")?;
                (None, admin)
            }
            None => {
                let settings = settings.clone();
                let cluster = tokio::task::spawn_blocking(move || start_private_cluster(&settings))
                    .await
                    .context("starting the private cluster")??;
                let postgres = db::connect(&cluster.admin_config("postgres")).await?;
                let exists = postgres
                    .query_opt(
                        "SELECT 1 FROM pg_database WHERE datname = $1",
                        &[&DATABASE_NAME],
                    )
                    .await?
                    .is_some();
                if !exists {
                    postgres
                        .batch_execute(&format!("CREATE DATABASE {DATABASE_NAME}"))
                        .await?;
                }
                let admin = cluster.admin_config(DATABASE_NAME);
                (Some(cluster), admin)
            }
        };
        let app = match &settings.app_database_url {
            Some(url) => url.parse().context("parsing CASEBOOK_APP_DATABASE_URL")?,
            None => db::app_config(&admin),
        };
        let database = Database {
            cluster,
            admin,
            app,
            pool_size: settings.pool_size,
        };
        database.migrate().await?;
        Ok(database)
    }

    /// Applies pending migrations and moves the log generation on after a restore.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn migrate(&self) -> anyhow::Result<db::MigrationReport> {
        let mut client = db::connect(&self.admin)
            .await
            .context("connecting as the owner")?;
        let report = db::migrate(&mut client).await?;
        for name in &report.applied {
            tracing::info!(migration = %name, "applied migration");
        }
        if eventstore::rebase_after_restore(&client).await? {
            tracing::warn!(
                "the log was restored from another cluster: new events start a new generation"
            );
        }
        Ok(report)
    }

    /// A pool as the service's own role.
    ///
    /// # Errors
    /// When the pool cannot be built.
    pub fn app_pool(&self) -> anyhow::Result<db::Pool> {
        Ok(db::pool(
            self.app.clone(),
            PoolSettings {
                max_size: self.pool_size,
            },
        )?)
    }

    /// The event log over a pool as the service's own role.
    ///
    /// # Errors
    /// When the pool cannot be built.
    pub fn event_store(&self) -> anyhow::Result<eventstore::EventStore> {
        Ok(eventstore::EventStore::new(
            self.app_pool()?,
            eventstore::Upcasters::new(),
        ))
    }

    /// Connection settings as the service's own role.
    pub fn app_config(&self) -> &tokio_postgres::Config {
        &self.app
    }

    /// Connection settings as the owner (migrations, verify).
    pub fn admin_config(&self) -> &tokio_postgres::Config {
        &self.admin
    }

    /// The private cluster, when Casebook runs its own.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// Stops the private cluster if this process started it.
    ///
    /// # Errors
    /// When `pg_ctl stop` fails.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        if let Some(cluster) = self.cluster
            && cluster.started_here()
        {
            tracing::info!("stopping the private PostgreSQL cluster");
            tokio::task::spawn_blocking(move || cluster.stop()).await??;
        }
        Ok(())
    }
}

impl DatabaseSettings {
    /// Casebook's own directory: --data-dir, or the user's data dir (/var/lib/casebook as root).
    pub fn resolved_data_dir(&self) -> std::path::PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            db::default_data_dir(
                std::env::var_os("HOME").map(Into::into),
                std::env::var_os("XDG_DATA_HOME").map(Into::into),
            )
        })
    }
}

fn start_private_cluster(settings: &DatabaseSettings) -> anyhow::Result<Cluster> {
    let bin_dir = db::find_bin_dir(settings.pg_bin.clone(), std::env::var_os("PATH"))?;
    let dir = settings.resolved_data_dir();
    let cluster = Cluster::ensure_running(&dir.join("postgres"), &bin_dir, ClusterKind::Durable)
        .with_context(|| {
            format!(
                "starting the private PostgreSQL cluster in {}",
                dir.display()
            )
        })?;
    Ok(cluster)
}
