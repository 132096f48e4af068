//! The database the service runs on: a configured server, or a private cluster that this
//! process starts (and stops again on shutdown if it started it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use db::{Cluster, ClusterKind, PoolSettings};

use crate::settings::DatabaseSettings;
use crate::supervisor::{ClusterSupervisor, SupervisorSettings};

/// The database Casebook runs on: where it is and how to connect, migrated and ready.
pub struct Database {
    cluster: Option<Cluster>,
    admin: tokio_postgres::Config,
    app: tokio_postgres::Config,
    /// A streaming read replica, as the service's role.
    replica: Option<tokio_postgres::Config>,
    pool_size: usize,
    master_key: eventstore::MasterKey,
    anchor_key: Option<eventstore::anchor::AnchorKey>,
    anchor_file: Option<std::path::PathBuf>,
    anchor_command: Option<String>,
    /// Set once the supervisor has restarted the private cluster: the service then owns it.
    restarted: Arc<AtomicBool>,
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
        let replica = match &settings.replica_url {
            Some(url) => {
                let mut config: tokio_postgres::Config =
                    url.parse().context("parsing CASEBOOK_REPLICA_URL")?;
                if config.get_user().is_none() {
                    config.user(db::APP_ROLE);
                }
                Some(config)
            }
            None => None,
        };
        let master_key = master_key(settings)?;
        let anchor_key = anchor_key(settings)?;
        let anchor_file = settings.anchor_file.clone().or_else(|| {
            settings
                .database_url
                .is_none()
                .then(|| settings.resolved_data_dir().join("anchors.jsonl"))
        });
        let database = Database {
            cluster,
            admin,
            app,
            replica,
            pool_size: settings.pool_size,
            master_key,
            anchor_key,
            anchor_file,
            anchor_command: settings.anchor_command.clone(),
            restarted: Arc::new(AtomicBool::new(false)),
        };
        database.migrate().await?;
        database.check_master_key().await?;
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

    /// The event log over a pool as the service's own role, sealing personal fields under the
    /// master key.
    ///
    /// # Errors
    /// When the pool cannot be built.
    pub fn event_store(&self) -> anyhow::Result<eventstore::EventStore> {
        Ok(
            eventstore::EventStore::new(self.app_pool()?, app::upcasters())
                .with_protection(app::privacy::protection(self.master_key.clone())),
        )
    }

    /// The read side of a streaming replica (`--replica-url`), when one is configured: a pool
    /// of its own, as the service's role.
    ///
    /// # Errors
    /// When the pool cannot be built.
    pub fn replica_store(&self) -> anyhow::Result<Option<eventstore::EventStore>> {
        let Some(config) = &self.replica else {
            return Ok(None);
        };
        let pool = db::pool(
            config.clone(),
            PoolSettings {
                max_size: self.pool_size,
            },
        )?;
        Ok(Some(
            eventstore::EventStore::new(pool, app::upcasters())
                .with_protection(app::privacy::protection(self.master_key.clone())),
        ))
    }

    /// Refuses to start when the database's data keys were wrapped by another master key: every
    /// person's details would be unreadable, and new ones written under a second key.
    async fn check_master_key(&self) -> anyhow::Result<()> {
        let client = db::connect(&self.admin).await?;
        let others: Vec<String> = client
            .query(
                "SELECT DISTINCT master_key_id FROM ( \
                     SELECT master_key_id FROM subject_keys \
                     WHERE wrapped_key IS NOT NULL AND master_key_id <> $1 \
                     UNION ALL \
                     SELECT master_key_id FROM lookup_keys WHERE master_key_id <> $1) AS k \
                 LIMIT 3",
                &[&self.master_key.id()],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if !others.is_empty() {
            anyhow::bail!(
                "the personal data in this database was encrypted under master key {}, but the \
                 configured master key is {}: configure the key it was written with",
                others.join(", "),
                self.master_key.id()
            );
        }
        Ok(())
    }

    /// The master key personal data is protected under.
    pub fn master_key(&self) -> &eventstore::MasterKey {
        &self.master_key
    }

    /// The key that signs the log's checkpoints, when one is configured (always, for a private
    /// cluster).
    pub fn anchor_key(&self) -> Option<&eventstore::anchor::AnchorKey> {
        self.anchor_key.as_ref()
    }

    /// The anchor file checkpoints are appended to, when there is one.
    pub fn anchor_file(&self) -> Option<&std::path::Path> {
        self.anchor_file.as_deref()
    }

    /// The command that sends each new checkpoint elsewhere, when one is configured.
    pub fn anchor_command(&self) -> Option<&str> {
        self.anchor_command.as_deref()
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

    /// Starts restarting the private cluster when it dies, as `settings` say; `None` for a
    /// server given by URL (never ours to start) or when `settings` allow no attempt. Stop the
    /// supervisor before [`Database::shutdown`].
    pub fn supervise(&self, settings: SupervisorSettings) -> Option<ClusterSupervisor> {
        let cluster = self.cluster.as_ref()?;
        if settings.attempts == 0 {
            return None;
        }
        Some(ClusterSupervisor::spawn(
            cluster.clone(),
            settings,
            self.restarted.clone(),
        ))
    }

    /// Stops the private cluster if this process started it (at start, or by restarting it).
    ///
    /// # Errors
    /// When `pg_ctl stop` fails.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        if let Some(cluster) = self.cluster
            && (cluster.started_here() || self.restarted.load(Ordering::SeqCst))
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

/// The configured master key: given, in its file, or (for a private cluster only) the one in
/// `<data dir>/master.key`, made on first start.
fn master_key(settings: &DatabaseSettings) -> anyhow::Result<eventstore::MasterKey> {
    let parse = |text: &str, from: &str| {
        eventstore::MasterKey::parse(text)
            .map_err(|e| anyhow::anyhow!("{e} (the master key from {from})"))
    };
    if let Some(key) = &settings.master_key {
        return parse(key, "CASEBOOK_MASTER_KEY");
    }
    if let Some(path) = &settings.master_key_file {
        let text = read_key(path, "master key")?;
        return parse(&text, &path.display().to_string());
    }
    if settings.database_url.is_some() {
        anyhow::bail!(
            "personal data is encrypted under a master key: set CASEBOOK_MASTER_KEY or \
             CASEBOOK_MASTER_KEY_FILE (make one with `casebook key generate`, and keep it apart \
             from the database's backups)"
        );
    }
    let path = settings.resolved_data_dir().join("master.key");
    if path.exists() {
        let text = read_key(&path, "master key")?;
        return parse(&text, &path.display().to_string());
    }
    let key = eventstore::MasterKey::generate().map_err(anyhow::Error::msg)?;
    save_made_key(
        &path,
        "master key",
        &key.to_base64(),
        key.id(),
        "without it the personal data is unreadable",
    )?;
    Ok(key)
}

/// The configured anchor key: given, in its file, or (for a private cluster only) the one in
/// `<data dir>/anchor.key`, made on first start. A separate key from the master key, so that
/// rotating the master key leaves every checkpoint verifiable. With a database URL and none,
/// nothing is sealed.
fn anchor_key(
    settings: &DatabaseSettings,
) -> anyhow::Result<Option<eventstore::anchor::AnchorKey>> {
    use eventstore::anchor::AnchorKey;
    let parse = |text: &str, from: &str| {
        AnchorKey::parse(text).map_err(|e| anyhow::anyhow!("{e} (the anchor key from {from})"))
    };
    if let Some(key) = &settings.anchor_key {
        return parse(key, "CASEBOOK_ANCHOR_KEY").map(Some);
    }
    if let Some(path) = &settings.anchor_key_file {
        let text = read_key(path, "anchor key")?;
        return parse(&text, &path.display().to_string()).map(Some);
    }
    if settings.database_url.is_some() {
        return Ok(None);
    }
    let path = settings.resolved_data_dir().join("anchor.key");
    if path.exists() {
        let text = read_key(&path, "anchor key")?;
        return parse(&text, &path.display().to_string()).map(Some);
    }
    let key = AnchorKey::generate().map_err(anyhow::Error::msg)?;
    save_made_key(
        &path,
        "anchor key",
        &key.to_base64(),
        key.id(),
        "copy it away from the database's superuser",
    )?;
    Ok(Some(key))
}

/// The text of the file of a key (`what`, named in an error).
fn read_key(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} file {}", path.display()))
}

/// Keeps a key made for the private cluster at `path` (`what` names it), readable by its owner
/// only, and warns that it was made, with `advice` on keeping it.
fn save_made_key(
    path: &std::path::Path,
    what: &str,
    text: &str,
    key_id: &str,
    advice: &str,
) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    write_private(path, text)
        .with_context(|| format!("writing the {what} to {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        key_id,
        "made a local {what} for the private cluster; {advice}"
    );
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
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
