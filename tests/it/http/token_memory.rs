//! Verified bearer tokens are remembered in memory for a moment (a round trip saved on every
//! request), and forgotten everywhere the moment anything about access changes: a token
//! revoked or an account deactivated through one instance of the service is refused by another
//! instance sharing the database at once.

use std::time::Duration;

use actix_web::dev::ServerHandle;
use app::access;
use eventstore::{EventStore, Listener};
use serde_json::json;

use super::TestServer;

/// Another instance of the service on the test's database, as `casebook serve` runs it: its
/// own pool and its own listener, so that it remembers verified tokens.
struct Instance {
    base: String,
    handle: ServerHandle,
    _listener: Listener,
}

impl Instance {
    async fn start(server: &TestServer) -> Instance {
        let listener = Listener::start(server.db.app_config());
        let store =
            crate::support::protected(EventStore::new(server.db.app_pool(4), app::upcasters()))
                .with_listener(&listener);
        listening(&store).await;
        let state = api::http::AppState::with_clock(store, app::Clock::system())
            .with_auth_failure_limit(100_000);
        let app = casebook::Application::build("127.0.0.1:0", state).expect("binding");
        let base = format!("http://{}", app.address());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        Instance {
            base,
            handle,
            _listener: listener,
        }
    }

    async fn status(&self, method: &str, token: &str, path: &str) -> u16 {
        let http = reqwest::Client::new();
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => http.post(url).json(&json!(null)),
            _ => http.get(url),
        };
        request
            .bearer_auth(token)
            .send()
            .await
            .expect("the instance answers")
            .status()
            .as_u16()
    }
}

/// Waits (a bounded while) until the store's listener listens: before that nothing is
/// remembered, and the test would prove nothing.
async fn listening(store: &EventStore) {
    let changes = store.access_changes().expect("a store with a listener");
    for _ in 0..500 {
        if changes.current().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the listener did not start listening");
}

/// The answer `instance` gives `token` once the change has reached it: another process hears
/// of a change when PostgreSQL delivers the notification, a moment after the commit (normally
/// well under a second), so it is asked again, a bounded number of times, while it still says
/// 200. A process that never heard would answer 200 for the whole 10 s a token is remembered,
/// and fail this.
async fn once_heard(instance: &Instance, token: &str, path: &str) -> u16 {
    for _ in 0..40 {
        let status = instance.status("GET", token, path).await;
        if status != 200 {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    instance.status("GET", token, path).await
}

#[tokio::test]
async fn a_token_revoked_through_one_instance_is_refused_by_another_once_it_hears() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let (one, two) = (
        Instance::start(&server).await,
        Instance::start(&server).await,
    );
    let me = "/api/v1/me";

    // Both instances have verified (and so remembered) the worker's and the lead's tokens.
    for instance in [&one, &two] {
        for _ in 0..3 {
            assert_eq!(instance.status("GET", &people.worker.token, me).await, 200);
            assert_eq!(instance.status("GET", &people.lead.token, me).await, 200);
        }
    }

    // The administrator revokes everything the worker holds through the first instance: the
    // first refuses the token at once, the second as soon as it hears (within a second).
    let revoke = format!("/api/v1/staff/{}/tokens/revocation", people.worker.staff_id);
    assert_eq!(one.status("POST", &people.admin.token, &revoke).await, 200);
    assert_eq!(one.status("GET", &people.worker.token, me).await, 401);
    assert_eq!(once_heard(&two, &people.worker.token, me).await, 401);
    // Other tokens go on working (verified again).
    assert_eq!(two.status("GET", &people.lead.token, me).await, 200);

    // Deactivating the lead through the second instance: refused by it at once, and by the
    // first once it hears.
    let deactivate = format!("/api/v1/staff/{}/deactivation", people.lead.staff_id);
    assert_eq!(
        two.status("POST", &people.admin.token, &deactivate).await,
        200
    );
    assert_eq!(two.status("GET", &people.lead.token, me).await, 401);
    assert_eq!(once_heard(&one, &people.lead.token, me).await, 401);

    // A token revoked at the console (another process altogether, no HTTP): refused by both.
    for instance in [&one, &two] {
        assert_eq!(instance.status("GET", &people.auditor.token, me).await, 200);
    }
    let admin = server.db.admin_client().await;
    let token_id: uuid::Uuid = admin
        .query_one(
            "SELECT token_id FROM api_tokens WHERE staff_id = $1",
            &[&people.auditor.staff_id],
        )
        .await
        .expect("the auditor's token")
        .get(0);
    assert!(
        access::revoke_token(&admin, people.auditor.organisation_id, token_id)
            .await
            .expect("revoking")
    );
    for instance in [&two, &one] {
        assert_eq!(once_heard(instance, &people.auditor.token, me).await, 401);
    }

    one.handle.stop(true).await;
    two.handle.stop(true).await;
    server.stop().await;
}
