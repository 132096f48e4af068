//! `/metrics` tells how the service is used: it answers the loopback address, and any other
//! address only with the metrics token the service was given.

use super::TestServer;

/// An address of this machine that is not the loopback one (the one its default route leaves
/// by; no packet is sent).
fn outward_address() -> std::net::IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
    socket
        .connect("10.254.254.254:9")
        .expect("a route off this machine (the test needs a non-loopback interface)");
    let ip = socket.local_addr().expect("its address").ip();
    assert!(!ip.is_loopback(), "{ip}");
    ip
}

#[tokio::test]
async fn metrics_answer_the_loopback_address_and_elsewhere_only_with_the_token() {
    let server = TestServer::start().await;
    let state = api::http::AppState::with_clock(server.store.clone(), app::Clock::system())
        .with_metrics_token(Some("s3cret-scraper-token".to_owned()));
    let app = casebook::Application::build("0.0.0.0:0", state).expect("binding");
    let port = app.address().port();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let get = |host: String, token: Option<&'static str>| {
        let mut request = http.get(format!("http://{host}:{port}/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let outward = outward_address().to_string();

    // With a token configured, even this machine sends it (a reverse proxy here would make
    // every caller local).
    let local = get("127.0.0.1".to_owned(), None).await.expect("an answer");
    assert_eq!(local.status().as_u16(), 403);
    let local = get("127.0.0.1".to_owned(), Some("s3cret-scraper-token"))
        .await
        .expect("an answer");
    assert_eq!(local.status().as_u16(), 200);
    assert!(local.text().await.expect("text").contains("# TYPE"));

    let bare = get(outward.clone(), None).await.expect("an answer");
    assert_eq!(bare.status().as_u16(), 403);
    assert_eq!(
        bare.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let wrong = get(outward.clone(), Some("s3cret-scraper-tokeN"))
        .await
        .expect("an answer");
    assert_eq!(wrong.status().as_u16(), 403);
    let scraper = get(outward.clone(), Some("s3cret-scraper-token"))
        .await
        .expect("an answer");
    assert_eq!(scraper.status().as_u16(), 200);
    handle.stop(true).await;

    // Without a token: this machine only.
    let state = api::http::AppState::with_clock(server.store.clone(), app::Clock::system());
    let app = casebook::Application::build("0.0.0.0:0", state).expect("binding");
    let port = app.address().port();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let at = |host: &str| format!("http://{host}:{port}/metrics");
    let local = http.get(at("127.0.0.1")).send().await.expect("an answer");
    assert_eq!(local.status().as_u16(), 200);
    let away = http.get(at(&outward)).send().await.expect("an answer");
    assert_eq!(away.status().as_u16(), 403);
    handle.stop(true).await;
    server.stop().await;
}

/// A source presenting bad bearer tokens is turned away after 30 in a minute (429 with
/// `Retry-After`, for any token, without looking it up), and the refusals are counted.
#[tokio::test]
async fn a_source_guessing_tokens_is_turned_away_and_counted() {
    let server = TestServer::start().await;
    // The service as `serve` makes it: the default limit. Reached from another address of this
    // machine: failures from the loopback address are not counted (a reverse proxy in front
    // would make every caller one source).
    let state = api::http::AppState::with_clock(server.store.clone(), app::Clock::system());
    let app = casebook::Application::build("0.0.0.0:0", state).expect("binding");
    let base = format!("http://{}:{}", outward_address(), app.address().port());
    let local_base = format!("http://127.0.0.1:{}", app.address().port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let caseload = |token: String| {
        let request = http.get(format!("{base}/api/v1/caseload"));
        async move {
            let reply = request.bearer_auth(token).send().await.expect("an answer");
            let status = reply.status().as_u16();
            let retry = reply
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            (status, retry)
        }
    };
    for n in 0..30 {
        let guess = format!("cbk_{}_{n:064}", uuid::Uuid::new_v4().simple());
        assert_eq!(caseload(guess).await.0, 401, "attempt {n}");
    }
    let (status, wait) =
        caseload(format!("cbk_{}_{:064}", uuid::Uuid::new_v4().simple(), 31)).await;
    assert_eq!(status, 429);
    let wait = wait.expect("a Retry-After");
    assert!((1..=60).contains(&wait), "{wait}");
    // From the same address, even a good token waits (it is not looked up).
    assert_eq!(caseload(server.people.worker.token.clone()).await.0, 429);
    // A request without a token is no guess: still 401.
    let bare = http
        .get(format!("{base}/api/v1/caseload"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(bare.status().as_u16(), 401);
    // The loopback address is not turned away, nor counted.
    let local = http
        .get(format!("{local_base}/api/v1/caseload"))
        .bearer_auth(server.people.worker.token.clone())
        .send()
        .await
        .expect("an answer");
    assert_eq!(local.status().as_u16(), 200);
    let text = reqwest::get(format!("{local_base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let failures = text
        .lines()
        .find(|l| l.starts_with("casebook_auth_failures_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("the counter in {text}"));
    assert!(failures >= 30.0, "{failures}");
    handle.stop(true).await;
    server.stop().await;
}

/// Behind a reverse proxy named with `--trusted-proxy`, the caller is the address the proxy
/// forwards: guessers are turned away one by one, not the proxy, and `/metrics` is not opened
/// to the world by the proxy being local. A caller's own `X-Forwarded-For` changes nothing.
#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_caller_is_counted_and_kept_from_metrics() {
    let server = TestServer::start().await;
    let proxy: std::net::IpAddr = "127.0.0.1".parse().expect("an address");
    let state = api::http::AppState::with_clock(server.store.clone(), app::Clock::system())
        .with_trusted_proxies(vec![proxy]);
    let app = casebook::Application::build("127.0.0.1:0", state).expect("binding");
    let base = format!("http://127.0.0.1:{}", app.address().port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let caseload = |token: String, forwarded: Option<&'static str>| {
        let mut request = http
            .get(format!("{base}/api/v1/caseload"))
            .bearer_auth(token);
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        async move { request.send().await.expect("an answer").status().as_u16() }
    };
    let guess = |n: usize| format!("cbk_{}_{n:064}", uuid::Uuid::new_v4().simple());
    // A forged entry on the left is not who the proxy saw.
    let guesser = Some("198.51.100.50, 203.0.113.7");
    for n in 0..30 {
        assert_eq!(caseload(guess(n), guesser).await, 401, "attempt {n}");
    }
    assert_eq!(caseload(guess(31), guesser).await, 429);
    let worker = server.people.worker.token.clone();
    assert_eq!(caseload(worker.clone(), Some("203.0.113.7")).await, 429);
    // Another caller through the same proxy, and the proxy's own requests, are not.
    assert_eq!(caseload(worker.clone(), Some("203.0.113.8")).await, 200);
    assert_eq!(caseload(worker.clone(), None).await, 200);
    assert_eq!(caseload(worker, Some("198.51.100.50")).await, 200);

    // /metrics: a remote caller through the local proxy is remote.
    let metrics = |forwarded: Option<&'static str>| {
        let mut request = http.get(format!("{base}/metrics"));
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        async move { request.send().await.expect("an answer").status().as_u16() }
    };
    assert_eq!(metrics(Some("203.0.113.9")).await, 403);
    assert_eq!(metrics(None).await, 200, "the machine itself");
    handle.stop(true).await;

    // Without a trusted proxy, a caller's X-Forwarded-For is ignored: it cannot make itself
    // local, nor push the throttle onto someone else's address.
    let state = api::http::AppState::with_clock(server.store.clone(), app::Clock::system());
    let app = casebook::Application::build("0.0.0.0:0", state).expect("binding");
    let outward = format!("http://{}:{}", outward_address(), app.address().port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let spoofed = http
        .get(format!("{outward}/metrics"))
        .header("x-forwarded-for", "127.0.0.1")
        .send()
        .await
        .expect("an answer");
    assert_eq!(spoofed.status().as_u16(), 403);
    handle.stop(true).await;
    server.stop().await;
}

/// A caller whose console sign-in links keep opening nothing is turned away as a token guesser
/// is (429 with `Retry-After`), even with a good link, which it does not spend; links are
/// counted apart from bearer tokens, so the same address's integrations are not shut out by
/// it; the loopback address is not counted.
#[tokio::test]
async fn a_source_guessing_sign_in_links_is_turned_away_in_a_count_of_its_own() {
    let server = TestServer::start().await;
    let state = api::http::AppState::with_clock(server.store.clone(), app::Clock::system());
    let app = casebook::Application::build("0.0.0.0:0", state).expect("binding");
    let port = app.address().port();
    let (base, local_base) = (
        format!("http://{}:{port}", outward_address()),
        format!("http://127.0.0.1:{port}"),
    );
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let sign_in = |base: &str, code: String| {
        let request = http
            .post(format!("{base}/console/sign-in"))
            .form(&[("code", code)]);
        async move {
            let reply = request.send().await.expect("an answer");
            let retry = reply
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            (reply.status().as_u16(), retry)
        }
    };
    let guess = |n: usize| format!("cbl_{}_{n:064}", uuid::Uuid::new_v4().simple());
    for n in 0..30 {
        assert_eq!(sign_in(&base, guess(n)).await.0, 401, "attempt {n}");
    }
    let (status, wait) = sign_in(&base, guess(31)).await;
    assert_eq!(status, 429);
    assert!(wait.is_some_and(|w| (1..=60).contains(&w)), "{wait:?}");
    // A good link from there waits too, unspent; a good bearer token does not.
    let admin = server.db.admin_client().await;
    let worker = server.people.worker.clone();
    let good = app::sessions::create_sign_in_link(
        &admin,
        worker.staff_id,
        chrono::Duration::hours(1),
        None,
    )
    .await
    .expect("a link")
    .code;
    assert_eq!(sign_in(&base, good.clone()).await.0, 429);
    let api = http
        .get(format!("{base}/api/v1/caseload"))
        .bearer_auth(&worker.token)
        .send()
        .await
        .expect("an answer");
    assert_eq!(api.status().as_u16(), 200, "tokens are counted apart");
    // From this machine the link still works: it was not spent by the refusal.
    assert_eq!(sign_in(&local_base, good).await.0, 303);
    handle.stop(true).await;
    server.stop().await;
}

/// A console form's origin is checked against the host the request itself names: a caller's
/// own `X-Forwarded-Host` naming another site does not make that site's form pass; the same
/// header from a proxy named with `--trusted-proxy` is the host the browser asked for (and its
/// `X-Forwarded-Proto` the scheme), so the form passes behind it.
#[tokio::test]
async fn a_form_passes_as_sent_to_another_host_only_through_a_trusted_proxy() {
    let server = TestServer::start().await;
    for trusted in [false, true] {
        let proxies: Vec<std::net::IpAddr> = if trusted {
            vec!["127.0.0.1".parse().expect("an address")]
        } else {
            Vec::new()
        };
        let state = api::http::AppState::with_clock(server.store.clone(), app::Clock::system())
            .with_trusted_proxies(proxies);
        let app = casebook::Application::build("127.0.0.1:0", state).expect("binding");
        let base = format!("http://127.0.0.1:{}", app.address().port());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let code = super::console::sign_in_code(&server, &server.people.worker).await;
        let sent = super::console::plain_http()
            .post(format!("{base}/console/sign-in"))
            .header("origin", "https://casebook.example")
            .header("x-forwarded-host", "casebook.example")
            .header("x-forwarded-proto", "https")
            .form(&[("code", code.as_str())])
            .send()
            .await
            .expect("an answer");
        let expected = if trusted { 303 } else { 403 };
        assert_eq!(sent.status().as_u16(), expected, "trusted: {trusted}");
        handle.stop(true).await;
    }
    server.stop().await;
}
