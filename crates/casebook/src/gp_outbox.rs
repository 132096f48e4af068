//! The GP message dispatcher inside `casebook serve` (every few seconds) and as `casebook
//! outbox dispatch` (once): the rules are `app::gp_outbox`'s; this gives it an HTTP client.

use std::sync::Arc;
use std::time::Duration;

use app::gp_outbox::{DispatchSettings, Dispatcher, PostFuture, Transport};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a practice's endpoint has to answer; the dispatcher's lease is longer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Posts over reqwest: no redirects followed (an endpoint is exactly what an administrator
/// configured), a timeout on the whole exchange.
#[derive(Clone, Debug)]
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    /// A transport giving up after `timeout`.
    ///
    /// # Errors
    /// The HTTP client could not be built.
    pub fn new(timeout: Duration) -> anyhow::Result<HttpTransport> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(HttpTransport { client })
    }
}

impl Transport for HttpTransport {
    fn post<'a>(
        &'a self,
        url: &'a str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> PostFuture<'a> {
        Box::pin(async move {
            let mut request = self.client.post(url).body(body);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            match request.send().await {
                Ok(response) => Ok(response.status().as_u16()),
                Err(e) if e.is_timeout() => {
                    Err("the practice's endpoint did not answer in time".to_owned())
                }
                Err(e) if e.is_connect() => {
                    Err("the practice's endpoint could not be reached".to_owned())
                }
                Err(e) => Err(format!("sending failed: {e}")),
            }
        })
    }
}

/// A dispatcher over the store of `cases`, sending over HTTP.
///
/// # Errors
/// The HTTP client could not be built.
pub fn dispatcher(cases: &app::CaseService) -> anyhow::Result<Dispatcher> {
    Ok(Dispatcher::new(
        cases.store().clone(),
        cases.clock().clone(),
        Arc::new(HttpTransport::new(TIMEOUT)?),
        DispatchSettings::default(),
    ))
}

/// Runs the dispatcher every `every` until `stopped` says so.
///
/// # Errors
/// The HTTP client could not be built.
pub fn spawn(
    cases: &app::CaseService,
    every: Duration,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let dispatcher = dispatcher(cases)?;
    Ok(tokio::spawn(
        async move { dispatcher.run(every, stopped).await },
    ))
}
