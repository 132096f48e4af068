//! The HTTP server: the API of the `api` crate and the web console of the `console` crate.

use std::net::{SocketAddr, TcpListener};

use actix_web::HttpServer;
use actix_web::dev::{Server, ServerHandle};
use anyhow::Context;

/// How many worker threads `serve`'s tokio runtime gets on a machine of `cores` cores: half
/// of them, at least one. The HTTP requests are answered on actix's workers, one a core; the
/// runtime drives every pooled database connection (`db::pool`, whoever asked for it) and
/// carries the batch writers, the projectors and the other background tasks, so nothing
/// blocking may run on it (the sealer's file work goes to `spawn_blocking`). On the 2-core
/// machine, one runtime thread rather than two took about 8% less of the service's CPU and 5%
/// less of the cluster's per referral at 32 clients, with the same or better throughput and
/// p99: with fewer threads than runnable work, the batch writers and the projectors each found
/// more waiting when they ran (BENCHMARKS.md, "Fewer threads than cores, two batch writers").
/// Measured at 2 cores only.
pub fn serve_runtime_threads(cores: usize) -> usize {
    (cores / 2).max(1)
}

/// A bound, not yet running, HTTP server.
pub struct Application {
    server: Server,
    address: SocketAddr,
    oidc: Option<app::oidc::Oidc>,
}

/// The web console's sign-in with an OpenID provider.
#[derive(Clone, Debug)]
pub struct ConsoleOidc {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// The issuer's name on the sign-in button.
    pub display_name: String,
    /// The console's address as browsers reach it (the redirect URI is
    /// `<public url>/console/oidc/callback`); `http://<bound address>` when none.
    pub public_url: Option<String>,
    /// The assurance levels (`acr`) accepted; empty: any.
    pub acr_values: Vec<String>,
}

impl Application {
    /// Binds `listen` (port 0 picks a free port) and builds the server over `state` (the
    /// store, the clock its rules read, how long reads wait for `?after=`).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub fn build(listen: &str, state: api::http::AppState) -> anyhow::Result<Application> {
        Application::build_with_oidc(listen, state, None)
    }

    /// The same, with the console's sign-in by OpenID Connect when `oidc` is given (nothing is
    /// fetched from the issuer yet: see [`Application::oidc`]).
    ///
    /// # Errors
    /// When the address cannot be bound, or the HTTP client for the issuer cannot be made.
    pub fn build_with_oidc(
        listen: &str,
        state: api::http::AppState,
        oidc: Option<ConsoleOidc>,
    ) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
        let address = listener.local_addr()?;
        api::http::install_metrics();
        let (addresses, proxies) = (state.clone(), state.clone());
        let mut console = console::Console::new(state.cases().clone(), state.reports().clone())
            .with_client_address(std::sync::Arc::new(move |req| {
                addresses.client_address(req)
            }))
            .with_trusted_proxy(std::sync::Arc::new(move |req| {
                proxies.through_trusted_proxy(req)
            }))
            .with_throttle(std::sync::Arc::new(SharedThrottle(state.clone())));
        if let Some(oidc) = oidc {
            let public = oidc
                .public_url
                .unwrap_or_else(|| format!("http://{address}"));
            let settings = app::oidc::OidcSettings {
                issuer: oidc.issuer,
                client_id: oidc.client_id,
                client_secret: oidc.client_secret,
                redirect_url: format!("{}/console/oidc/callback", public.trim_end_matches('/')),
                display_name: oidc.display_name,
                acr_values: oidc.acr_values,
            };
            let transport = console::oidc::transport()
                .map_err(|e| anyhow::anyhow!("the OpenID provider's HTTP client: {e}"))?;
            console = console.with_oidc(settings, transport);
        }
        let oidc = console.oidc().cloned();
        let server = HttpServer::new(move || {
            api::http::app(state.clone()).configure(console::configure(console.clone()))
        })
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Application {
            server,
            address,
            oidc,
        })
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The console's OpenID relying party, when one is configured (`serve` fetches the
    /// issuer's metadata with it at start).
    pub fn oidc(&self) -> Option<&app::oidc::Oidc> {
        self.oidc.as_ref()
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

/// The console's sign-in links counted by the API's throttle, in a count of their own.
struct SharedThrottle(api::http::AppState);

impl console::Throttle for SharedThrottle {
    fn wait(&self, req: &actix_web::HttpRequest) -> Option<std::time::Duration> {
        self.0.sign_in_wait(req)
    }

    fn failed(&self, req: &actix_web::HttpRequest) {
        self.0.sign_in_failed(req);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn serve_runtime_threads_are_half_the_cores_and_at_least_one() {
        let threads: Vec<usize> = [1, 2, 3, 4, 8, 64]
            .into_iter()
            .map(super::serve_runtime_threads)
            .collect();
        assert_eq!(threads, [1, 1, 1, 2, 4, 32]);
    }
}
