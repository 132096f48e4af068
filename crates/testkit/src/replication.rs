//! A primary and its streaming replica, each a private cluster of its own (never the shared
//! test cluster: a failover test stops its primary), replicating synchronously.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use db::{Cluster, ClusterKind};
use tokio_postgres::Config;

/// The database the pair holds, migrated.
pub const DATABASE: &str = "casebook";

/// A primary and a hot standby streaming from it with `synchronous_commit = on` and the
/// standby named in `synchronous_standby_names`: a commit is acknowledged only once the
/// standby has flushed it. Both are stopped (and their directory removed, unless the test
/// failed) when dropped.
pub struct ReplicatedCluster {
    dir: PathBuf,
    primary: Arc<Cluster>,
    standby: Arc<Cluster>,
    running: StopOnDrop,
}

/// Servers stopped when this is dropped: a test that fails half-way through setting the pair
/// up leaves no server running.
struct StopOnDrop(Vec<Arc<Cluster>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // Immediate: a stopped or promoted server only needs to be gone.
        for cluster in self.0.drain(..).rev() {
            let _ = cluster.stop_immediately();
        }
    }
}

impl ReplicatedCluster {
    /// Initialises a primary (its server on the machine's real clock, as every cluster of
    /// ours), creates and migrates [`DATABASE`], makes a replica of it with `pg_basebackup -R`
    /// as the `postgres` user, starts the replica on its own socket directory, waits until it
    /// streams, then makes it the synchronous standby.
    pub async fn start() -> ReplicatedCluster {
        crate::init_tracing();
        let bin_dir = db::find_bin_dir(
            std::env::var_os("CASEBOOK_PG_BIN").map(PathBuf::from),
            std::env::var_os("PATH"),
        )
        .expect("PostgreSQL server binaries are needed for the tests");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = PathBuf::from(format!(
            "{}-r{}",
            crate::test_cluster_dir().display(),
            &id[..8]
        ));
        let primary = {
            let dir = dir.join("primary");
            tokio::task::spawn_blocking(move || {
                Cluster::ensure_running(&dir, &bin_dir, ClusterKind::Throwaway)
            })
            .await
            .expect("starting the primary")
            .expect("the primary starts")
        };
        let primary = Arc::new(primary);
        let mut running = StopOnDrop(vec![Arc::clone(&primary)]);
        let postgres = db::connect(&primary.admin_config("postgres"))
            .await
            .expect("connect to the primary");
        postgres
            .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
            .await
            .expect("create the database");
        {
            let mut client = db::connect(&primary.admin_config(DATABASE))
                .await
                .expect("connect to the database");
            db::migrate(&mut client).await.expect("migrate");
        }
        let standby = {
            let primary = Arc::clone(&primary);
            let dir = dir.join("standby");
            tokio::task::spawn_blocking(move || primary.start_standby(&dir))
                .await
                .expect("making the standby")
                .expect("the standby starts")
        };
        let standby = Arc::new(standby);
        running.0.push(Arc::clone(&standby));
        wait_for(
            &postgres,
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
        )
        .await;
        // One statement at a time: ALTER SYSTEM refuses a transaction block.
        for statement in [
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
            "ALTER SYSTEM SET synchronous_commit = 'on'",
            "SELECT pg_reload_conf()",
        ] {
            postgres
                .batch_execute(statement)
                .await
                .expect("make the standby synchronous");
        }
        wait_for(
            &postgres,
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
        )
        .await;
        ReplicatedCluster {
            dir,
            primary,
            standby,
            running,
        }
    }

    /// The primary (to reach its socket directory, say).
    pub fn primary(&self) -> &Cluster {
        &self.primary
    }

    /// The standby.
    pub fn standby(&self) -> &Cluster {
        &self.standby
    }

    /// The primary, as superuser, on [`DATABASE`].
    pub fn primary_admin(&self) -> Config {
        self.primary.admin_config(DATABASE)
    }

    /// The standby, as superuser, on [`DATABASE`].
    pub fn standby_admin(&self) -> Config {
        self.standby.admin_config(DATABASE)
    }

    /// The primary, as the service's role.
    pub fn primary_app(&self) -> Config {
        db::app_config(&self.primary_admin())
    }

    /// The standby, as the service's role.
    pub fn standby_app(&self) -> Config {
        db::app_config(&self.standby_admin())
    }

    /// A connection to the standby, as its superuser.
    async fn standby_client(&self) -> tokio_postgres::Client {
        db::connect(&self.standby_admin())
            .await
            .expect("connect to the standby")
    }

    /// Runs `sql` on the standby, as its superuser; the connection it ran on.
    async fn on_standby(&self, sql: &str) -> tokio_postgres::Client {
        let standby = self.standby_client().await;
        standby
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        standby
    }

    /// Waits until the standby has replayed everything the primary has written so far.
    pub async fn wait_replayed(&self) {
        let primary = db::connect(&self.primary_admin())
            .await
            .expect("connect to the primary");
        let standby = self.standby_client().await;
        let target: String =
            crate::query_value(&primary, "SELECT pg_current_wal_lsn()::text", &[]).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let replayed: bool = crate::query_value(
                &standby,
                "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                &[&target],
            )
            .await;
            if replayed {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the standby replays within a minute"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Pauses the standby's replay of the WAL it receives (it still receives and flushes it,
    /// so synchronous commits on the primary go on), and waits until it has paused.
    pub async fn pause_replay(&self) {
        let standby = self.on_standby("SELECT pg_wal_replay_pause()").await;
        wait_for(
            &standby,
            "SELECT count(*) FROM (SELECT pg_get_wal_replay_pause_state() AS s) p WHERE s = 'paused'",
        )
        .await;
    }

    /// Resumes the standby's replay and waits until it has replayed everything the primary has
    /// written so far.
    pub async fn resume_replay(&self) {
        self.on_standby("SELECT pg_wal_replay_resume()").await;
        self.wait_replayed().await;
    }

    /// Stops the primary as a crash would (`pg_ctl stop -m immediate`).
    pub async fn crash_primary(&self) {
        off_the_runtime(
            &self.primary,
            Cluster::stop_immediately,
            "the primary stops",
        )
        .await;
    }

    /// Promotes the standby (`pg_ctl promote`) and waits until it takes writes.
    pub async fn promote_standby(&self) {
        off_the_runtime(&self.standby, Cluster::promote, "the standby is promoted").await;
    }
}

/// Runs `act` on `cluster` on a blocking thread; it must succeed (`what` says what it does).
async fn off_the_runtime(
    cluster: &Arc<Cluster>,
    act: fn(&Cluster) -> Result<(), db::DbError>,
    what: &str,
) {
    let cluster = Arc::clone(cluster);
    tokio::task::spawn_blocking(move || act(&cluster))
        .await
        .expect("the blocking task")
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

/// Polls `count_sql` on `client` until it counts at least one row, for at most a minute.
async fn wait_for(client: &tokio_postgres::Client, count_sql: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = crate::query_value(client, count_sql, &[]).await;
        if n > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not there within a minute: {count_sql}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for ReplicatedCluster {
    fn drop(&mut self) {
        drop(StopOnDrop(std::mem::take(&mut self.running.0)));
        if std::thread::panicking() {
            eprintln!(
                "replicated clusters kept for debugging: {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
