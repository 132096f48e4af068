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

    let local = get("127.0.0.1".to_owned(), None).await.expect("an answer");
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
    let scraper = get(outward, Some("s3cret-scraper-token"))
        .await
        .expect("an answer");
    assert_eq!(scraper.status().as_u16(), 200);
    handle.stop(true).await;
    server.stop().await;
}
