//! The HTTP server: the API of the `api` crate and the web console of the `console` crate.

use std::net::{SocketAddr, TcpListener};

use actix_web::HttpServer;
use actix_web::dev::{Server, ServerHandle};
use anyhow::Context;

/// A bound, not yet running, HTTP server.
pub struct Application {
    server: Server,
    address: SocketAddr,
}

impl Application {
    /// Binds `listen` (port 0 picks a free port) and builds the server over `state` (the
    /// store, the clock its rules read, how long reads wait for `?after=`).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub fn build(listen: &str, state: api::http::AppState) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
        let address = listener.local_addr()?;
        api::http::install_metrics();
        let console = console::Console::new(state.cases().clone(), state.reports().clone());
        let server = HttpServer::new(move || {
            api::http::app(state.clone()).configure(console::configure(console.clone()))
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
