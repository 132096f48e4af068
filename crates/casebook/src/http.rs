//! The HTTP application: routes and the server around them.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use serde_json::json;

/// Shared state for handlers.
#[derive(Clone)]
pub struct AppState {
    store: eventstore::EventStore,
}

/// A bound, not yet running, HTTP server.
pub struct Application {
    server: Server,
    address: SocketAddr,
}

impl Application {
    /// Binds `listen` (port 0 picks a free port) and builds the server over `pool`.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub fn build(listen: &str, store: eventstore::EventStore) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
        let address = listener.local_addr()?;
        let state = AppState { store };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .route("/health", web::get().to(health))
                .route("/ready", web::get().to(ready))
                .default_service(web::to(not_found))
        })
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Application { server, address })
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped through the handle.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready when the database answers as the service's role and every migration is applied; also
/// says how far each projection is behind the log (informational: lag does not make it unready).
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let check = async {
        let client = state.store.pool().get().await.map_err(|e| e.to_string())?;
        db::schema_is_current(&client)
            .await
            .map_err(|e| e.to_string())
    };
    match check.await {
        Ok(true) => {
            let projections = match crate::projections::lag(&state.store).await {
                Ok(lags) => json!(lags),
                Err(e) => {
                    tracing::warn!(error = %e, "could not read projection lag");
                    json!([])
                }
            };
            HttpResponse::Ok().json(json!({
                "status": "ready", "database": "ok", "migrations": "current", "projections": projections
            }))
        }
        Ok(false) => unavailable("migrations are not all applied"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            unavailable("the database is unreachable")
        }
    }
}

fn unavailable(detail: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .content_type("application/problem+json")
        .json(json!({ "type": "about:blank", "title": "Service Unavailable", "status": 503, "detail": detail }))
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("application/problem+json")
        .json(json!({ "type": "about:blank", "title": "Not Found", "status": 404, "detail": "no such resource" }))
}
