//! When the database cannot be reached, every request answers 503 with `Retry-After` and a
//! problem body, nothing is half written, and the service heals by itself when the database is
//! back. The database's connections go through a proxy on a Unix socket that the test cuts
//! (the shared test cluster itself keeps running for the other tests). And every response
//! carries the headers that keep health data out of caches and browsers' guesses.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::net::{UnixListener, UnixStream};
use uuid::Uuid;

use super::TestServer;
use super::journey::{client_path, intake};

/// Forwards connections from a socket of its own to the test cluster's, until cut.
struct SocketProxy {
    dir: PathBuf,
    cut: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl SocketProxy {
    /// A proxy to the server `config` names by its Unix socket directory and port.
    fn start(config: &tokio_postgres::Config) -> SocketProxy {
        let (target_dir, port) = match (config.get_hosts().first(), config.get_ports().first()) {
            (Some(tokio_postgres::config::Host::Unix(dir)), Some(port)) => (dir.clone(), *port),
            other => panic!("the test cluster listens on a Unix socket, not {other:?}"),
        };
        let target = target_dir.join(format!(".s.PGSQL.{port}"));
        let dir = std::env::temp_dir().join(format!("cbp-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("the proxy's directory");
        let listener =
            UnixListener::bind(dir.join(format!(".s.PGSQL.{port}"))).expect("the proxy's socket");
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let (cut, open) = (cut.clone(), open.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if cut.load(std::sync::atomic::Ordering::SeqCst) {
                        drop(inbound); // refused: the database is "down"
                        continue;
                    }
                    let target = target.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = UnixStream::connect(&target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    open.lock().expect("the list").push(task.abort_handle());
                }
            }
        });
        SocketProxy {
            dir,
            cut,
            open,
            accept,
        }
    }

    /// `config`, connecting through the proxy.
    fn config(&self, config: &tokio_postgres::Config) -> tokio_postgres::Config {
        let mut through = tokio_postgres::Config::new();
        through.host_path(&self.dir);
        through.port(*config.get_ports().first().expect("a port"));
        through.user(config.get_user().expect("a user"));
        through.dbname(config.get_dbname().expect("a database"));
        if let Some(password) = config.get_password() {
            through.password(password);
        }
        through
    }

    /// The database goes away: every open connection is dropped and new ones are refused.
    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for task in self.open.lock().expect("the list").drain(..) {
            task.abort();
        }
    }

    /// The database is back.
    fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SocketProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
        let _ = std::fs::remove_dir_all(self.dir());
    }
}

#[tokio::test]
async fn while_the_database_is_unreachable_every_request_is_503_and_nothing_is_half_written() {
    let proxy: Arc<Mutex<Option<SocketProxy>>> = Arc::new(Mutex::new(None));
    let server = TestServer::start_over(
        app::Clock::system(),
        app::ReadWait::default().max_wait,
        |db| {
            let through = SocketProxy::start(&db.app_config());
            let pool = db::pool(
                through.config(&db.app_config()),
                db::PoolSettings { max_size: 8 },
            )
            .expect("a pool through the proxy");
            *proxy.lock().expect("the proxy") = Some(through);
            pool
        },
    )
    .await;
    let proxy = proxy.lock().expect("the proxy").take().expect("a proxy");
    let people = &server.people;

    // Up: answers carry the protective headers.
    let caseload = server.read(&people.worker, "/api/v1/caseload").await;
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(caseload.header(name), Some(value), "{name}");
    }
    assert!(
        caseload
            .header("content-security-policy")
            .is_some_and(|csp| csp.contains("default-src 'none'")),
        "{:?}",
        caseload.headers
    );

    // Down.
    proxy.cut();
    let (client, referral) = (Uuid::new_v4(), Uuid::new_v4());
    let key = Uuid::new_v4().to_string();
    let (path, body) = (client_path(client, "referrals"), intake(referral, "gp"));
    let headers = [("idempotency-key", key.as_str())];
    let refer = || server.call(Some(&people.referrer), "POST", &path, Some(&body), &headers);
    let attempts = [
        refer().await,
        server.get(&people.worker, "/api/v1/caseload").await,
        server
            .get(&people.analyst, "/api/v1/reports/outcomes")
            .await,
        server
            .get(&people.auditor, &client_path(client, "journey"))
            .await,
    ];
    for reply in &attempts {
        assert_eq!(reply.status, 503, "{:#}", reply.body);
        assert_eq!(
            reply.header("retry-after"),
            Some("5"),
            "{:?}",
            reply.headers
        );
        assert_eq!(
            reply.body["type"], "urn:casebook:problem:unavailable",
            "{:#}",
            reply.body
        );
        // The cause is for the log, not the caller.
        let detail = reply.body["detail"].as_str().unwrap_or_default();
        assert!(!detail.contains("os error"), "{detail}");
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    let ready = server.get_public("/ready").await;
    assert_eq!(ready.status, 503, "{:#}", ready.body);

    // Back: the same request, retried with its key, is carried out once.
    proxy.restore();
    let mut reply = refer().await;
    for _ in 0..50 {
        if reply.status != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        reply = refer().await;
    }
    assert_eq!(reply.status, 201, "{:#}", reply.body);
    let again = refer().await;
    assert_eq!(again.status, 201, "{:#}", again.body);
    assert_eq!(again.body, reply.body, "the stored answer");
    let events: i64 = testkit::query_value(
        &server.db.admin_client().await,
        "SELECT count(*) FROM events WHERE stream_id = $1",
        &[&client],
    )
    .await;
    assert_eq!(events, 2, "one registration and one referral, once");
    server.read(&people.worker, "/api/v1/caseload").await;
    server.stop().await;
}
