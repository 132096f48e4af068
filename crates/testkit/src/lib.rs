//! Test support: one private, throwaway PostgreSQL cluster per target directory (shared by every
//! test process under a file lock, so it works with `cargo nextest`), a template database
//! migrated once per set of migrations, and a fresh database per test copied from it.
//!
//! With `CASEBOOK_TEST_DATABASE_URL` set, the same is done on that server instead.
//! A test's database is dropped when the test passes and kept when it fails, for debugging.

use std::fs::File;
use std::path::PathBuf;
use std::sync::OnceLock;

use db::{Cluster, ClusterKind, PoolSettings};
use tokio_postgres::Config;

mod replication;

pub use replication::{DATABASE as REPLICATED_DATABASE, ReplicatedCluster};

/// Where the shared test server lives and how to reach it as superuser.
struct Server {
    admin: Config,
    cluster: Option<Cluster>,
    lock_dir: PathBuf,
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("CASEBOOK_TEST_DATABASE_URL") {
            let admin: Config = url
                .parse()
                .expect("CASEBOOK_TEST_DATABASE_URL is a valid URL");
            return Server {
                admin,
                cluster: None,
                lock_dir: std::env::temp_dir(),
            };
        }
        let bin_dir = db::find_bin_dir(
            std::env::var_os("CASEBOOK_PG_BIN").map(PathBuf::from),
            std::env::var_os("PATH"),
        )
        .expect("PostgreSQL server binaries are needed for the tests");
        let dir = test_cluster_dir();
        let cluster = Cluster::ensure_running(&dir, &bin_dir, ClusterKind::Throwaway)
            .expect("the test cluster starts");
        Server {
            admin: cluster.admin_config("postgres"),
            lock_dir: cluster.dir().to_path_buf(),
            cluster: Some(cluster),
        }
    })
}

/// `<target dir>/casebook-test-pg`, or a directory under /tmp when the target dir is out of the
/// `postgres` user's reach (a checkout under /root, say).
fn test_cluster_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/<profile>/deps/<test binary>
    let target = exe
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let preferred = target.join("casebook-test-pg");
    let reachable = preferred.ancestors().skip(1).all(|dir| {
        std::fs::metadata(dir)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o001 != 0)
            .unwrap_or(true)
    });
    if reachable && preferred.as_os_str().len() < 80 {
        preferred
    } else {
        let digest = target
            .to_string_lossy()
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        std::env::temp_dir().join(format!("casebook-test-pg-{digest:x}"))
    }
}

/// The shared test cluster, when the tests run on a private one (not on an external URL).
pub fn cluster() -> Option<&'static Cluster> {
    server().cluster.as_ref()
}

/// A database of its own for one test, migrated, dropped when the test passes.
pub struct TestDb {
    name: String,
    admin: Config,
}

impl TestDb {
    /// Creates a fresh database from the migrated template.
    pub async fn new() -> TestDb {
        let template = ensure_template(server()).await;
        TestDb::create(&format!("TEMPLATE {template}")).await
    }

    /// Creates a fresh database with no migration applied (for a test of an upgrade: migrate it
    /// with `db::migrate_to`).
    pub async fn empty() -> TestDb {
        TestDb::create("").await
    }

    async fn create(options: &str) -> TestDb {
        let server = server();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let client = db::connect(&server.admin)
            .await
            .expect("connect to the test server");
        let admin = server.create_database(&client, &name, options).await;
        TestDb { name, admin }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Superuser connection settings for this database.
    pub fn admin_config(&self) -> Config {
        self.admin.clone()
    }

    /// Connection settings as the service's own role.
    pub fn app_config(&self) -> Config {
        db::app_config(&self.admin)
    }

    /// A pool as the service's own role.
    pub fn app_pool(&self, max_size: usize) -> db::Pool {
        db::pool(self.app_config(), PoolSettings { max_size }).expect("build a pool")
    }

    /// A dedicated superuser connection.
    pub async fn admin_client(&self) -> tokio_postgres::Client {
        db::connect(&self.admin)
            .await
            .expect("connect as superuser")
    }

    /// A dedicated connection as the service's own role.
    pub async fn app_client(&self) -> tokio_postgres::Client {
        db::connect(&self.app_config())
            .await
            .expect("connect as the service role")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test database kept for debugging: {}", self.name);
            return;
        }
        let admin = server().admin.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime we may use; a thread with its own runtime does the work.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let client = db::connect(&admin).await.ok()?;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

impl Server {
    /// Creates database `name` (`CREATE DATABASE name options`) as the admin `client`, and
    /// returns the admin's connection settings for it.
    async fn create_database(
        &self,
        client: &tokio_postgres::Client,
        name: &str,
        options: &str,
    ) -> Config {
        // A template another session is connected to for a moment (an autovacuum worker that
        // does not leave in time, say) refuses to be copied (55006): try again a few times.
        let mut attempt = 0;
        loop {
            let created = client
                .batch_execute(&format!("CREATE DATABASE {name} {options}"))
                .await;
            match created {
                Ok(()) => break,
                Err(e)
                    if attempt < 10
                        && e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => panic!(
                    "create the database {name}: {e} ({})",
                    e.as_db_error().map_or("", |db| db.message())
                ),
            }
        }
        let mut config = self.admin.clone();
        config.dbname(name);
        config
    }
}

/// Creates `casebook_tpl_<migrations fingerprint>` once (under a file lock across processes)
/// and returns its name.
async fn ensure_template(server: &Server) -> String {
    let template = format!("casebook_tpl_{}", db::migrations_fingerprint());
    let lock_path = server.lock_dir.join("template.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .expect("open the template lock");
    lock.lock().expect("lock the template");
    let client = db::connect(&server.admin)
        .await
        .expect("connect to the test server");
    let ready: Option<bool> = client
        .query_opt(
            "SELECT datistemplate FROM pg_database WHERE datname = $1",
            &[&template],
        )
        .await
        .expect("look up the template")
        .map(|row| row.get(0));
    if ready != Some(true) {
        if ready.is_some() {
            client
                .batch_execute(&format!("DROP DATABASE {template} WITH (FORCE)"))
                .await
                .expect("drop a half-made template");
        }
        let config = server.create_database(&client, &template, "").await;
        {
            let mut migrating = db::connect(&config).await.expect("connect to the template");
            db::migrate(&mut migrating)
                .await
                .expect("migrate the template");
        }
        // Wait until the migrating session has gone: a template must have no connections.
        client
            .batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{template}'; \
                 ALTER DATABASE {template} WITH IS_TEMPLATE true"
            ))
            .await
            .expect("mark the template");
    }
    drop(lock);
    template
}

/// The first column of the one row `sql` answers, which must be there.
pub async fn query_value<T: tokio_postgres::types::FromSqlOwned>(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> T {
    client
        .query_one(sql, params)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
        .get(0)
}

/// Runs `sql`, which must fail; the database's message (empty when the error is not the
/// database's).
pub async fn refusal(client: &tokio_postgres::Client, sql: &str) -> String {
    let error = client.batch_execute(sql).await.expect_err(sql);
    error
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_default()
}

/// The first column of every row `sql` returns (panics naming the SQL on an error).
pub async fn query_column<T: tokio_postgres::types::FromSqlOwned>(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<T> {
    client
        .query(sql, params)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Installs a tracing subscriber once; it prints only with `TEST_LOG=1`.
pub fn init_tracing() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}

/// Shared insta settings: snapshots next to the test, no expression noise, and the values the
/// server makes redacted after their shape is checked: what a report is `as_of` (a log position
/// and the time its event was recorded).
pub fn insta_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_omit_expression(true);
    settings.set_prepend_module_to_snapshot(false);
    settings.add_dynamic_redaction(".**.as_of.position", |value, path| {
        assert!(
            value.as_i64().is_some_and(|p| p >= 0),
            "{path} is a log position: {value:?}"
        );
        "[position]"
    });
    settings.add_dynamic_redaction(".**.as_of.recorded_at", |value, path| {
        assert!(
            value.is_nil()
                || value
                    .as_str()
                    .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
            "{path} is a time or null: {value:?}"
        );
        "[recorded_at]"
    });
    settings
}
