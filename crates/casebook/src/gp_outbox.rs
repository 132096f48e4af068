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
/// configured), a timeout on the whole exchange. Unless built [`Reach::Any`], it reaches only
/// public addresses: an organisation's administrator sets its practices' endpoints, and must not
/// be able to make the service call its own host, its network or a cloud metadata address (the
/// names are checked as they resolve, every time, so a name cannot be pointed inward later).
#[derive(Clone, Debug)]
pub struct HttpTransport {
    client: reqwest::Client,
    reach: Reach,
    /// What its errors call the far end ("the practice's endpoint").
    what: &'static str,
}

/// Which addresses a transport may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Public addresses only (the default for `serve`).
    Public,
    /// Any address, loopback and private networks included (tests, and a service whose practices'
    /// endpoints sit on a private network: `--gp-endpoints-private`).
    Any,
}

/// Whether `ip` is an address a practice's endpoint may have when only public ones are allowed.
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() || v6.is_unspecified() {
                return false;
            }
            let segments = v6.segments();
            let embedded = |high: u16, low: u16| {
                let [a, b] = high.to_be_bytes();
                let [c, d] = low.to_be_bytes();
                std::net::Ipv4Addr::new(a, b, c, d)
            };
            // An IPv4 address carried in an IPv6 one reaches that IPv4 address: IPv4-mapped and
            // IPv4-compatible (`::a.b.c.d`), the NAT64 well-known prefix (64:ff9b::/96) and
            // 6to4 (2002::/16) are as public as the address they carry.
            if let Some(v4) = v6.to_ipv4() {
                return is_public(IpAddr::V4(v4));
            }
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public(IpAddr::V4(embedded(segments[6], segments[7])));
            }
            if segments[0] == 0x2002 {
                return is_public(IpAddr::V4(embedded(segments[1], segments[2])));
            }
            // Only global unicast (2000::/3) is public, less documentation (2001:db8::/32,
            // 3fff::/20), Teredo (2001::/32: its IPv4 end is hidden) and what the checks above
            // left (local-use NAT64, site-local, unique local and link-local are outside it).
            let first = segments[0];
            let documentation_or_teredo = first == 0x2001 && matches!(segments[1], 0 | 0x0db8);
            let documentation_v2 = first == 0x3fff && segments[1] < 0x1000;
            (first & 0xe000) == 0x2000 && !documentation_or_teredo && !documentation_v2
        }
    }
}

/// Resolves names as the system does, keeping public addresses only.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl HttpTransport {
    /// A transport giving up after `timeout`, reaching what `reach` allows.
    ///
    /// # Errors
    /// The HTTP client could not be built.
    pub fn new(timeout: Duration, reach: Reach) -> anyhow::Result<HttpTransport> {
        HttpTransport::to("the practice's endpoint", timeout, reach)
    }

    /// A transport to `what` (its errors' words for the far end: "the notification
    /// service"), giving up after `timeout`, reaching what `reach` allows.
    ///
    /// # Errors
    /// The HTTP client could not be built.
    pub fn to(
        what: &'static str,
        timeout: Duration,
        reach: Reach,
    ) -> anyhow::Result<HttpTransport> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy();
        if reach == Reach::Public {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(HttpTransport {
            client: builder.build()?,
            reach,
            what,
        })
    }

    /// Why `url` may not be reached, when its host is an address outside the reach (a name is
    /// checked as it resolves).
    fn refused(&self, url: &str) -> Option<String> {
        if self.reach == Reach::Any {
            return None;
        }
        let url = reqwest::Url::parse(url).ok()?;
        if url.scheme() != "https" {
            // An NHS number (a phone number, an email address) does not cross a network
            // unencrypted.
            return Some(format!("{} must be https", self.what));
        }
        let host = url.host_str()?;
        let ip: std::net::IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        (!is_public(ip)).then(|| format!("{} is not a public address", self.what))
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
            if let Some(refusal) = self.refused(url) {
                return Err(refusal);
            }
            let mut request = self.client.post(url).body(body);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            match request.send().await {
                Ok(response) => Ok(response.status().as_u16()),
                Err(e) if e.is_timeout() => Err(format!("{} did not answer in time", self.what)),
                // Whatever the cause (refused, no route, no public address), the same words:
                // the dead-letter page must not tell an administrator what lies inside.
                Err(e) if e.is_connect() || e.is_request() => {
                    Err(format!("{} could not be reached", self.what))
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
pub fn dispatcher(cases: &app::CaseService, reach: Reach) -> anyhow::Result<Dispatcher> {
    Ok(Dispatcher::new(
        cases.store().clone(),
        cases.clock().clone(),
        Arc::new(HttpTransport::new(TIMEOUT, reach)?),
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
    reach: Reach,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let dispatcher = dispatcher(cases, reach)?;
    Ok(tokio::spawn(
        async move { dispatcher.run(every, stopped).await },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            // IPv4 inside IPv6: compatible, NAT64, 6to4; Teredo and local-use NAT64.
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:c0a8:101::",
            "2001:0:4136:e378::1",
            "64:ff9b:1::1",
            "100::1",
            "fec0::1",
            "::ffff:0:7f00:1",
            "3fff::1",
        ] {
            assert!(
                !is_public(private.parse().expect("an address")),
                "{private}"
            );
        }
        for public in [
            "51.140.1.1",
            "8.8.8.8",
            "2a00:1450::1",
            "::ffff:51.140.1.1",
            "64:ff9b::51.140.1.1",
            "2002:338c:101::1",
        ] {
            assert!(is_public(public.parse().expect("an address")), "{public}");
        }
    }

    #[tokio::test]
    async fn a_public_only_transport_reaches_nothing_inside_and_says_nothing_of_it() {
        // Something listening on loopback, that accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let port = listener.local_addr().expect("its address").port();
        let public = HttpTransport::new(Duration::from_secs(2), Reach::Public).expect("a client");
        for url in [
            format!("https://127.0.0.1:{port}/fhir"),
            format!("https://localhost:{port}/fhir"),
            format!("https://[::ffff:127.0.0.1]:{port}/fhir"),
        ] {
            let refused = public.post(&url, Vec::new(), Vec::new()).await;
            let message = refused.expect_err(&url);
            assert!(
                message == "the practice's endpoint is not a public address"
                    || message == "the practice's endpoint could not be reached",
                "{url}: {message}"
            );
        }
        assert_eq!(
            public
                .post("http://gp.example.nhs.uk/fhir", Vec::new(), Vec::new())
                .await,
            Err("the practice's endpoint must be https".to_owned())
        );
        // Let reach anything, the same endpoint is reached (and does not answer in time).
        let any = HttpTransport::new(Duration::from_secs(1), Reach::Any).expect("a client");
        let reached = any
            .post(
                &format!("http://127.0.0.1:{port}/fhir"),
                Vec::new(),
                Vec::new(),
            )
            .await;
        assert_eq!(
            reached,
            Err("the practice's endpoint did not answer in time".to_owned())
        );
        drop(listener);
    }
}
