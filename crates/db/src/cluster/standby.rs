//! A streaming replica of a private cluster (a hot standby), and what a failover does to it:
//! the tests' way of running Casebook on more than one server.

use std::fs;
use std::path::Path;

use crate::DbError;
use crate::cluster::{Cluster, ClusterKind, SOCKET_PORT, SUPERUSER, run};

impl Cluster {
    /// Makes a streaming replica of this cluster in `dir` (`pg_basebackup -R`, WAL streamed
    /// during the copy) and starts it as a hot standby on its own socket directory. The
    /// replica copies this cluster's settings except where it listens; it asks for no
    /// synchronous standby of its own, so that once promoted it commits alone.
    ///
    /// # Errors
    /// A [`DbError`] naming the tool or file that failed.
    pub fn start_standby(&self, dir: &Path) -> Result<Cluster, DbError> {
        fs::create_dir_all(dir)
            .map_err(|e| DbError::io(format!("creating {}", dir.display()), e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| DbError::io(format!("resolving {}", dir.display()), e))?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| DbError::io(format!("giving {} to postgres", dir.display()), e))?;
        }
        let data = dir.join("data");
        if !data.join("PG_VERSION").is_file() {
            run(
                self.server_tool("pg_basebackup")
                    .arg("-D")
                    .arg(&data)
                    .arg("-h")
                    .arg(self.socket_dir())
                    .arg("-p")
                    .arg(SOCKET_PORT.to_string())
                    .args([
                        "-U",
                        SUPERUSER,
                        "-R",
                        "-X",
                        "stream",
                        "-c",
                        "fast",
                        "--no-sync",
                    ]),
                "pg_basebackup",
            )?;
            let socket_dir = dir.join("run").to_string_lossy().replace('\'', "''");
            let conf_path = data.join("postgresql.conf");
            let mut conf = fs::read_to_string(&conf_path)
                .map_err(|e| DbError::io("reading the standby's postgresql.conf", e))?;
            conf.push_str(&format!(
                "\n# Written by casebook: a streaming replica, reached through its own socket.\n\
                 unix_socket_directories = '{socket_dir}'\n\
                 synchronous_standby_names = ''\n\
                 hot_standby = on\n\
                 hot_standby_feedback = on\n"
            ));
            fs::write(&conf_path, conf)
                .map_err(|e| DbError::io("writing the standby's postgresql.conf", e))?;
        }
        Cluster::ensure_running(&dir, &self.bin_dir, ClusterKind::Throwaway)
    }

    /// Promotes a standby to a primary that takes writes, waiting until it does
    /// (`pg_ctl promote -w`).
    ///
    /// # Errors
    /// [`DbError::Tool`] when `pg_ctl promote` fails.
    pub fn promote(&self) -> Result<(), DbError> {
        self.pg_ctl(&["-w", "-t", "120", "promote"], "pg_ctl promote")
    }

    /// Stops the server at once, as a crash would (immediate shutdown: no checkpoint, sessions
    /// cut off; on restart it recovers from its WAL).
    ///
    /// # Errors
    /// [`DbError::Tool`] when `pg_ctl stop` fails.
    pub fn stop_immediately(&self) -> Result<(), DbError> {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"], "pg_ctl stop")
    }

    /// Runs `pg_ctl` on the standby's data directory with `args` (`what` names it in an error).
    fn pg_ctl(&self, args: &[&str], what: &str) -> Result<(), DbError> {
        run(
            self.server_tool("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(args),
            what,
        )
    }
}
