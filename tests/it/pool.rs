//! Pooled connections live on the runtime the pool was built on, whichever runtime first asked
//! for them: `serve`'s HTTP workers each run a runtime of their own, stopped before the
//! projectors give their leases up, and a connection an HTTP handler opened must outlive it.

use testkit::TestDb;

async fn backend(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("a query")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_opened_from_another_runtime_outlives_it() {
    testkit::init_tracing();
    let db = TestDb::new().await;
    let pool = db.app_pool(1);

    // A worker's runtime (as actix-web's are) opens the pool's one connection, then stops.
    let worker_pool = pool.clone();
    let opened_on_worker = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a worker runtime");
        let pid = runtime.block_on(async {
            let client = worker_pool.get().await.expect("a connection");
            backend(&client).await
        });
        drop(runtime);
        pid
    })
    .await
    .expect("the worker");
    assert_eq!(pool.status().size, 1, "the worker opened the connection");

    // The same connection, still alive: not closed with the worker's runtime and opened again.
    let client = pool.get().await.expect("the connection");
    assert!(!client.is_closed(), "the connection died with the worker");
    assert_eq!(backend(&client).await, opened_on_worker);
}

#[tokio::test]
async fn the_service_role_runs_without_the_jit_compiler() {
    testkit::init_tracing();
    let db = TestDb::new().await;
    let pool = db.app_pool(1);
    let client = pool.get().await.expect("a connection");
    let jit: String = client
        .query_one("SELECT current_setting('jit')", &[])
        .await
        .expect("the setting")
        .get(0);
    assert_eq!(jit, "off");
    // The owner's sessions (migrations, the operator's tools) keep the server's default.
    let admin = db.admin_client().await;
    let admin_jit: String = admin
        .query_one("SELECT current_setting('jit')", &[])
        .await
        .expect("the setting")
        .get(0);
    assert_eq!(admin_jit, "on");
}
