//! The `casebook` binary run as a user runs it, with only a data dir configured: `serve` in the
//! background, one-shot commands, and the private cluster they keep in the data dir.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A `casebook serve` running in the background.
pub struct Running {
    pub child: Child,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

/// `casebook serve` on a free port with `args` and only a data dir set (the caller may set
/// more), its log piped to stderr.
pub fn serve_command(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_casebook"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("CASEBOOK_DATABASE_URL")
        .env_remove("CASEBOOK_APP_DATABASE_URL")
        .env("CASEBOOK_DATA_DIR", data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Starts `casebook serve` on a free port with only a data dir set, and waits for its address.
pub fn start(data_dir: &Path) -> Running {
    start_with(data_dir, &[])
}

/// As [`start`], with more arguments for `serve`.
pub fn start_with(data_dir: &Path, args: &[&str]) -> Running {
    let mut child = serve_command(data_dir, args)
        .spawn()
        .expect("start casebook serve");
    let stderr = child.stderr.take().expect("stderr is piped");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn({
        let log = log.clone();
        move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("address=").nth(1) {
                    let address = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = sender.send(address);
                }
                log.lock().expect("the log").push(line);
            }
        }
    });
    let address = match receiver.recv_timeout(Duration::from_secs(120)) {
        Ok(address) => address,
        Err(_) => panic!(
            "casebook serve reports its address; its log:\n{}",
            log.lock().expect("the log").join("\n")
        ),
    };
    Running {
        child,
        base: format!("http://{address}"),
        log,
    }
}

impl Running {
    /// A server started by the caller, who reads its log itself.
    pub fn adopt(child: Child, base: String) -> Running {
        Running {
            child,
            base,
            log: Arc::default(),
        }
    }

    /// What the server has logged so far, one line each.
    pub fn log(&self) -> String {
        self.log.lock().expect("the log").join("\n")
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the server with SIGKILL: no shutdown of any kind, its cluster keeps running.
    pub fn kill(mut self) {
        signal(&self.child, "-KILL");
        self.child.wait().expect("wait for casebook");
    }
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("send a signal");
    assert!(status.success(), "kill {signal}");
}

pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    signal(child, "-TERM");
    child.wait().expect("wait for casebook")
}

/// Stops the server with SIGTERM, as an operator does, and checks it exits cleanly.
pub fn stop(running: Running) {
    stop_and_log(running);
}

/// As [`stop`], returning everything the server logged, to its last line.
pub fn stop_and_log(mut running: Running) -> String {
    let exit = terminate(&mut running.child);
    // The reader thread has the rest of the output once the pipe closes.
    let mut log = running.log();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(10));
        let now = running.log();
        if now == log && now.contains("shutting down") {
            break;
        }
        log = now;
    }
    assert!(
        exit.success(),
        "casebook exits cleanly on SIGTERM: {exit}\n{log}"
    );
    log
}

impl Drop for Running {
    /// A failing test still stops the server, which stops its cluster.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            terminate(&mut self.child);
        }
    }
}

/// Runs a one-shot `casebook` command with only a data dir (and `env`) configured.
pub fn casebook(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_casebook"));
    command
        .args(args)
        .env_remove("CASEBOOK_DATABASE_URL")
        .env("CASEBOOK_DATA_DIR", data_dir);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run casebook")
}

/// As [`casebook`]: its exit code, standard output and standard error.
pub fn casebook_out(
    data_dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let out = casebook(data_dir, args, env);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// As [`casebook`] with no more environment, checking it succeeds; its standard output.
pub fn casebook_ok(data_dir: &Path, args: &[&str]) -> String {
    casebook_env_ok(data_dir, args, &[])
}

/// As [`casebook`], checking it succeeds; its standard output, trimmed.
pub fn casebook_env_ok(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = casebook(data_dir, args, env);
    assert!(
        out.status.success(),
        "casebook {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Checks that a one-shot command succeeded (showing its standard error if not); its standard
/// output.
pub fn succeeded(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh directory name under the target's scratch space, short enough that the private
/// cluster's unix socket path fits however deep the checkout is (the id is 12 hex digits, not
/// a whole UUID: CI checks out under a longer path than a developer does).
pub fn scratch(what: &str) -> PathBuf {
    let id = uuid::Uuid::new_v4().simple().to_string();
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{what}-{}", &id[..12]))
}

/// A fresh data dir under the target's temporary directory. When dropped (the test passed or
/// failed) the private cluster in it is stopped if it still runs; the files are removed only by
/// [`DataDir::remove`], so a failed test leaves them to look at.
pub struct DataDir {
    pub path: PathBuf,
}

impl DataDir {
    pub fn new(what: &str) -> DataDir {
        DataDir {
            path: scratch(what),
        }
    }

    fn cluster_dir(&self) -> PathBuf {
        self.path.join("postgres")
    }

    /// The pid of the cluster's postmaster, when its pid file names one.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.cluster_dir().join("data/postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// The private cluster, started if it is not running.
    pub fn cluster(&self) -> db::Cluster {
        let bin_dir =
            db::find_bin_dir(None, std::env::var_os("PATH")).expect("PostgreSQL binaries");
        db::Cluster::ensure_running(&self.cluster_dir(), &bin_dir, db::ClusterKind::Durable)
            .expect("the private cluster")
    }

    /// Holds the lock that serialises starting the cluster, so that nothing starts it until the
    /// returned file is dropped.
    pub fn hold_start_lock(&self) -> std::fs::File {
        let lock = std::fs::File::options()
            .write(true)
            .open(self.cluster_dir().join("casebook.lock"))
            .expect("the cluster's lock file");
        lock.lock().expect("lock it");
        lock
    }

    /// Stops the cluster at once, as a crash would (`pg_ctl stop -m immediate`: no checkpoint,
    /// WAL replayed at the next start), and waits until that postmaster is gone. Not with
    /// `pg_ctl -w`: it waits for the pid file to go, and a `serve` that restarts its cluster
    /// at once writes a new one, so `pg_ctl` would wait for a server that is already another.
    pub fn stop_cluster_immediately(&self, cluster: &db::Cluster) {
        let data = self.cluster_dir().join("data");
        let pid = std::fs::read_to_string(data.join("postmaster.pid"))
            .ok()
            .and_then(|text| {
                text.lines()
                    .next()
                    .and_then(|l| l.trim().parse::<u32>().ok())
            })
            .expect("a running cluster's pid");
        let out = cluster
            .tool("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-W", "stop"])
            .output()
            .expect("run pg_ctl stop");
        assert!(
            out.status.success(),
            "pg_ctl stop -m immediate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !gone() {
            assert!(
                std::time::Instant::now() < deadline,
                "postmaster {pid} still running a minute after an immediate stop"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// A connection to the service's database as the superuser (the cluster must run).
    pub async fn connect(&self) -> tokio_postgres::Client {
        db::connect(&self.cluster().admin_config("casebook"))
            .await
            .expect("connect to the private cluster")
    }

    /// Removes the files (the cluster is stopped first).
    pub fn remove(self) {
        self.stop_cluster();
        std::fs::remove_dir_all(&self.path).expect("clean up");
    }

    fn stop_cluster(&self) {
        let alive = self
            .postmaster_pid()
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if alive {
            let _ = self.cluster().stop();
        }
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if self.path.exists() {
            self.stop_cluster();
        }
    }
}
