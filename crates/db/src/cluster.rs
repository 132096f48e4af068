//! A private PostgreSQL cluster in a directory of ours: initialised on first use, started when
//! it is not running, reached only through a unix socket inside that directory.
//!
//! PostgreSQL refuses to run as root; when we are root the server tools run as the `postgres`
//! system user (set on the child process, no sudo needed).

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::DbError;

mod standby;

/// The port number only names the socket file; the cluster listens on no TCP address.
const SOCKET_PORT: u16 = 5432;
/// The superuser that `initdb` creates in our clusters.
const SUPERUSER: &str = "postgres";

/// How the cluster treats durability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterKind {
    /// fsync on: the service's own data.
    Durable,
    /// fsync off: test clusters, rebuilt at will.
    Throwaway,
}

/// A private cluster that is running (started by us or found running).
#[derive(Clone, Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<(u32, u32)>,
    started_here: bool,
}

/// Where the service keeps its private cluster when no directory is configured.
///
/// As root the user's own data dir (under `/root`, mode 0700) is out of reach of the `postgres`
/// user, so root uses `/var/lib/casebook`.
pub fn default_data_dir(home: Option<PathBuf>, xdg_data_home: Option<PathBuf>) -> PathBuf {
    if effective_uid() == Some(0) {
        return PathBuf::from("/var/lib/casebook");
    }
    if let Some(xdg) = xdg_data_home.filter(|p| p.is_absolute()) {
        return xdg.join("casebook");
    }
    match home {
        Some(home) => home.join(".local/share/casebook"),
        None => PathBuf::from("casebook-data"),
    }
}

/// Finds the directory holding `initdb`, `pg_ctl` and `postgres`.
///
/// Looks at `hint` first, then `pg_config --bindir`, then `/usr/lib/postgresql/*/bin` (newest
/// version first), then each directory of `path`.
///
/// # Errors
/// [`DbError::NoBinaries`] when none of these holds the server tools.
pub fn find_bin_dir(
    hint: Option<PathBuf>,
    path: Option<std::ffi::OsString>,
) -> Result<PathBuf, DbError> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = hint {
        return if has_tools(&dir) {
            Ok(dir)
        } else {
            Err(DbError::NoBinaries)
        };
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_tools(&dir) {
            return Ok(dir);
        }
    }
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                Some((version, e.path().join("bin")))
            })
            .filter(|(_, dir)| has_tools(dir))
            .collect();
        versions.sort();
        if let Some((_, dir)) = versions.pop() {
            return Ok(dir);
        }
    }
    if let Some(path) = path {
        for dir in std::env::split_paths(&path) {
            if has_tools(&dir) {
                return Ok(dir);
            }
        }
    }
    Err(DbError::NoBinaries)
}

impl Cluster {
    /// Makes sure the cluster in `dir` exists and runs: `initdb` on first use, `pg_ctl start`
    /// when stopped. Safe to call from several processes at once (a file lock serialises them).
    ///
    /// # Errors
    /// A [`DbError`] naming the tool or file that failed.
    pub fn ensure_running(
        dir: &Path,
        bin_dir: &Path,
        kind: ClusterKind,
    ) -> Result<Cluster, DbError> {
        let run_as = if effective_uid() == Some(0) {
            Some(postgres_user()?)
        } else {
            None
        };
        fs::create_dir_all(dir)
            .map_err(|e| DbError::io(format!("creating {}", dir.display()), e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| DbError::io(format!("resolving {}", dir.display()), e))?;
        let socket = dir.join("run").join(format!(".s.PGSQL.{SOCKET_PORT}"));
        if socket.as_os_str().len() > 100 {
            return Err(DbError::Config(format!(
                "the data directory path {} is too long for a unix socket; choose a shorter one",
                dir.display()
            )));
        }
        let mut cluster = Cluster {
            dir,
            bin_dir: bin_dir.to_path_buf(),
            run_as,
            started_here: false,
        };
        let lock = cluster.lock()?;
        if let Some((uid, gid)) = run_as {
            check_reachable(&cluster.dir, uid)?;
            for sub in [cluster.dir.clone(), cluster.dir.join("run")] {
                fs::create_dir_all(&sub)
                    .map_err(|e| DbError::io(format!("creating {}", sub.display()), e))?;
                std::os::unix::fs::chown(&sub, Some(uid), Some(gid))
                    .map_err(|e| DbError::io(format!("giving {} to postgres", sub.display()), e))?;
            }
        } else {
            let run = cluster.dir.join("run");
            fs::create_dir_all(&run)
                .map_err(|e| DbError::io(format!("creating {}", run.display()), e))?;
        }
        fs::set_permissions(cluster.dir.join("run"), fs::Permissions::from_mode(0o700))
            .map_err(|e| DbError::io("restricting the socket directory", e))?;

        if !cluster.data_dir().join("PG_VERSION").is_file() {
            cluster.initdb(kind)?;
        }
        if !cluster.is_running()? {
            cluster.start()?;
            cluster.started_here = true;
        }
        drop(lock);
        Ok(cluster)
    }

    /// Whether the server is alive: its `postmaster.pid` names a live `postgres` process.
    ///
    /// A server that was killed leaves its pid file behind, and its process may linger
    /// unreaped for a moment as a zombie (`pg_ctl status` counts that as running): both are
    /// dead here. Reads two small files and starts no process, so it can be asked often.
    pub fn is_alive(&self) -> bool {
        let Ok(text) = fs::read_to_string(self.data_dir().join("postmaster.pid")) else {
            return false;
        };
        let Some(pid) = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
        else {
            return false;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // `pid (comm) state ...`: a pid reused by another program is not our server.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let postgres = head.ends_with("(postgres");
        let state = rest.trim_start().chars().next();
        postgres && !matches!(state, Some('Z' | 'X'))
    }

    /// Starts the server again when it is not alive (killed, crashed, or stopped behind our
    /// back), under the same lock as [`Cluster::ensure_running`]; returns whether it started it.
    /// A server found alive under the lock is left alone.
    ///
    /// After the server's main process was killed its old backends may hold the shared memory
    /// for a moment and PostgreSQL refuses to start ("pre-existing shared memory block is still
    /// in use"); the error says so and the caller tries again later. After an immediate stop or
    /// a crash the server replays its WAL before it accepts connections.
    ///
    /// # Errors
    /// [`DbError::Tool`] when `pg_ctl start` fails, with the last fatal line of the server's
    /// log; [`DbError::Io`] when the lock cannot be taken.
    pub fn restart_if_stopped(&self) -> Result<bool, DbError> {
        let lock = self.lock()?;
        if self.is_alive() {
            return Ok(false);
        }
        let started = self.start().map_err(|e| match e {
            DbError::Tool { tool, detail } => {
                // One line, for the log: pg_ctl's lines, then the server's reason.
                let mut lines: Vec<String> = detail
                    .lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .map(str::to_owned)
                    .collect();
                lines.extend(self.last_fatal_log_line());
                DbError::Tool {
                    detail: lines.join("; "),
                    tool,
                }
            }
            other => other,
        });
        drop(lock);
        started.map(|()| true)
    }

    /// Takes the file lock that serialises starting this cluster between processes.
    fn lock(&self) -> Result<File, DbError> {
        let lock_path = self.dir.join("casebook.lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| DbError::io(format!("opening {}", lock_path.display()), e))?;
        lock.lock()
            .map_err(|e| DbError::io(format!("locking {}", lock_path.display()), e))?;
        Ok(lock)
    }

    /// The server log's last FATAL line (in its last 64 KiB): why a start failed, in the
    /// server's words.
    fn last_fatal_log_line(&self) -> Option<String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = File::open(self.dir.join("postgres.log")).ok()?;
        let len = file.metadata().ok()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))
            .ok()?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).ok()?;
        String::from_utf8_lossy(&tail)
            .lines()
            .rev()
            .take(50)
            .find(|line| line.contains("FATAL"))
            .map(|line| line.trim().to_owned())
    }

    /// The cluster's home directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory holding the server binaries.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The directory holding the server's unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// Whether this process started the server (and so should stop it).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Whether the server runs as this process's own operating-system user (it does unless
    /// this process is root, when it runs as `postgres`). Then the database's superuser can
    /// read whatever this process can (`pg_read_file`, `COPY ... FROM PROGRAM`): the keys too.
    pub fn shares_our_user(&self) -> bool {
        self.run_as.is_none()
    }

    /// Connection settings for the superuser on database `dbname`.
    pub fn admin_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(self.socket_dir())
            .port(SOCKET_PORT)
            .user(SUPERUSER)
            .dbname(dbname)
            .application_name("casebook");
        config
    }

    /// A `psql`/`pg_dump`-style command for this cluster's tools (`pg_dump`, `psql`, `pgbench`),
    /// already running as the right user with the socket and superuser set.
    pub fn tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(name));
        keep_real_time(&mut cmd);
        cmd.env("PGHOST", self.socket_dir())
            .env("PGPORT", SOCKET_PORT.to_string())
            .env("PGUSER", SUPERUSER)
            .current_dir("/");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Stops the server (fast shutdown: open sessions are ended, committed data is kept).
    ///
    /// # Errors
    /// [`DbError::Tool`] when `pg_ctl stop` fails.
    pub fn stop(&self) -> Result<(), DbError> {
        let data = self.data_dir();
        run(
            self.server_tool("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "fast", "-w", "stop"]),
            "pg_ctl stop",
        )
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn server_tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(name));
        cmd.current_dir("/");
        keep_real_time(&mut cmd);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn initdb(&self, kind: ClusterKind) -> Result<(), DbError> {
        tracing::info!(dir = %self.dir.display(), "initialising a private PostgreSQL cluster");
        let data = self.data_dir();
        let mut cmd = self.server_tool("initdb");
        cmd.arg("-D").arg(&data).args([
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--locale=C",
            "--auth=trust",
        ]);
        if kind == ClusterKind::Throwaway {
            cmd.arg("--no-sync");
        }
        run(&mut cmd, "initdb")?;
        let socket_dir = self.socket_dir().to_string_lossy().replace('\'', "''");
        let mut conf = format!(
            "\n# Written by casebook: a private cluster reached only through its socket.\n\
             listen_addresses = ''\n\
             unix_socket_directories = '{socket_dir}'\n\
             port = {SOCKET_PORT}\n\
             max_connections = 200\n"
        );
        if kind == ClusterKind::Throwaway {
            conf.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let conf_path = data.join("postgresql.conf");
        let mut existing = fs::read_to_string(&conf_path)
            .map_err(|e| DbError::io("reading postgresql.conf", e))?;
        existing.push_str(&conf);
        fs::write(&conf_path, existing).map_err(|e| DbError::io("writing postgresql.conf", e))?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(&conf_path, Some(uid), Some(gid))
                .map_err(|e| DbError::io("giving postgresql.conf to postgres", e))?;
        }
        Ok(())
    }

    fn is_running(&self) -> Result<bool, DbError> {
        let out = self
            .server_tool("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("status")
            .output()
            .map_err(|e| DbError::io("running pg_ctl status", e))?;
        Ok(out.status.success())
    }

    fn start(&self) -> Result<(), DbError> {
        tracing::info!(dir = %self.dir.display(), "starting the private PostgreSQL cluster");
        let log = self.dir.join("postgres.log");
        run(
            self.server_tool("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "120", "start"]),
            "pg_ctl start",
        )
    }
}

fn run(cmd: &mut Command, tool: &str) -> Result<(), DbError> {
    let out = cmd.output().map_err(|e| DbError::Tool {
        tool: tool.to_string(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DbError::Tool {
            tool: tool.to_string(),
            detail: format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
        })
    }
}

/// The effective uid, read from the owner of `/proc/self` (no unsafe libc call needed).
fn effective_uid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

fn postgres_user() -> Result<(u32, u32), DbError> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(|_| DbError::NoPostgresUser)?;
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != "postgres" {
                return None;
            }
            let _password = fields.next()?;
            let uid = fields.next()?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some((uid, gid))
        })
        .ok_or(DbError::NoPostgresUser)
}

/// Every ancestor of `dir` must be searchable by `uid` for the server to reach its data.
fn check_reachable(dir: &Path, uid: u32) -> Result<(), DbError> {
    for ancestor in dir.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(ancestor) else {
            continue;
        };
        let mode = meta.mode();
        let searchable = mode & 0o001 != 0 || (meta.uid() == uid && mode & 0o100 != 0);
        if !searchable {
            return Err(DbError::Unreachable(dir.to_path_buf()));
        }
    }
    Ok(())
}

/// The server keeps the machine's real clock even when ours is moved by libfaketime (the test
/// suite's run a year ahead): the preload and its settings are not passed on.
fn keep_real_time(cmd: &mut Command) {
    for name in [
        "LD_PRELOAD",
        "FAKETIME",
        "FAKETIME_NO_CACHE",
        "DONT_FAKE_MONOTONIC",
    ] {
        cmd.env_remove(name);
    }
}
