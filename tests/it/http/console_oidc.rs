//! The web console's sign-in with OpenID Connect, against a real OpenID provider started by the
//! test (`oidc-provider-mock` from PyPI, which `scripts/test` installs): in a real browser from
//! the sign-in page through the provider's form to the caseload, and over plain HTTP, redirects
//! followed by hand, what must be refused: a callback without this browser's attempt or with
//! another state, a replayed callback, an identity linked to no one, a deactivated account, an
//! ID token whose nonce is another sign-in's.
//!
//! The provider runs at `http://localhost:<port>` and the service at `http://127.0.0.1:<port>`:
//! two sites, as an issuer and the console are in production, so the browser's `SameSite` rules
//! apply as they would there.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use fantoccini::key::Key;
use uuid::Uuid;

use super::{Person, TestServer};
use crate::browser::Browser;

/// An OpenID provider of its own, killed when dropped.
struct Provider {
    issuer: String,
    child: Child,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    /// Starts `oidc-provider-mock` on a free port and waits until it publishes its metadata.
    /// It takes any client id and secret and shows a form where the test types the subject.
    async fn start() -> Provider {
        Provider::start_as(&["-m", "oidc_provider_mock"]).await
    }

    /// [`Provider::start`], the mock made to check PKCE as NHS CIS2 and Entra ID do
    /// (`tests/oidc/pkce_provider.py`): a code is exchanged only with the verifier of the
    /// challenge it was issued for.
    async fn start_checking_pkce() -> Provider {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/oidc/pkce_provider.py");
        Provider::start_as(&[script]).await
    }

    async fn start_as(program: &[&str]) -> Provider {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("python3")
            .args(program)
            .args(["--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "starting python3 -m oidc_provider_mock (`pip install oidc-provider-mock==0.3.4`; \
                 scripts/test does it)",
            );
        let mut provider = Provider {
            issuer: format!("http://localhost:{port}"),
            child,
        };
        let started = Instant::now();
        let http = plain_http();
        loop {
            let answer = http
                .get(format!(
                    "{}/.well-known/openid-configuration",
                    provider.issuer
                ))
                .send()
                .await;
            if answer.is_ok_and(|a| a.status() == 200) {
                return provider;
            }
            if let Ok(Some(status)) = provider.child.try_wait() {
                panic!(
                    "oidc-provider-mock exited ({status}): is it installed? \
                     `pip install oidc-provider-mock==0.3.4` (scripts/test does it)"
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "oidc-provider-mock did not answer within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn console(&self) -> casebook::http::ConsoleOidc {
        casebook::http::ConsoleOidc {
            issuer: self.issuer.clone(),
            client_id: "casebook-console".into(),
            client_secret: Some("a client secret".into()),
            display_name: "Test CIS2".into(),
            public_url: None,
            acr_values: Vec::new(),
        }
    }
}

fn plain_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// Links `subject` at the provider to `who`, as the operator does.
async fn link(server: &TestServer, provider: &Provider, who: &Person, subject: &str) {
    let admin = server.db.admin_client().await;
    app::oidc::link_identity(&admin, who.staff_id, &provider.issuer, subject)
        .await
        .expect("linking an identity");
}

/// One row of the session audit.
#[derive(Debug, PartialEq, Eq)]
struct Audited {
    kind: String,
    staff_id: Option<Uuid>,
    via: Option<String>,
    reason: Option<String>,
    subject: Option<String>,
}

/// The OpenID sign-ins' audit, oldest first.
async fn oidc_events(server: &TestServer) -> Vec<Audited> {
    let admin = server.db.admin_client().await;
    admin
        .query(
            "SELECT kind, staff_id, via, reason, subject FROM session_events \
             WHERE via = 'oidc' ORDER BY event_id",
            &[],
        )
        .await
        .expect("session events")
        .iter()
        .map(|r| Audited {
            kind: r.get(0),
            staff_id: r.get(1),
            via: r.get(2),
            reason: r.get(3),
            subject: r.get(4),
        })
        .collect()
}

fn refused(reason: &str, staff_id: Option<Uuid>, subject: Option<&str>) -> Audited {
    Audited {
        kind: "sign_in_refused".into(),
        staff_id,
        via: Some("oidc".into()),
        reason: Some(reason.into()),
        subject: subject.map(str::to_owned),
    }
}

fn signed_in(staff_id: Uuid) -> Audited {
    Audited {
        kind: "signed_in".into(),
        staff_id: Some(staff_id),
        via: Some("oidc".into()),
        reason: None,
        subject: None,
    }
}

/// A cookie's value in a response's `Set-Cookie` headers (the first of that name).
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("a cookie value")
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location")
        .to_owned()
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded_pairs(query)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .expect("a query")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `GET /console/oidc/start` with no cookie: the attempt's cookie and the issuer's URL.
async fn start(server: &TestServer) -> (String, String) {
    let response = plain_http()
        .get(format!("{}/console/oidc/start", server.base))
        .send()
        .await
        .expect("starting");
    assert_eq!(response.status(), 303);
    let cookie = set_cookie(&response, console::oidc::ATTEMPT_COOKIE).expect("an attempt cookie");
    for flag in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/console/oidc",
        "Max-Age=600",
    ] {
        assert!(cookie.contains(flag), "{flag} missing from {cookie}");
    }
    (cookie_value(&cookie), location(&response))
}

/// The provider's form sent with `subject`: the callback URL it sends the browser to.
async fn authorize(authorization_url: &str, subject: &str) -> String {
    let response = plain_http()
        .post(authorization_url)
        .form(&[("sub", subject)])
        .send()
        .await
        .expect("authorizing");
    assert_eq!(
        response.status(),
        302,
        "the provider sends the browser back"
    );
    location(&response)
}

/// Sends the browser's callback (`url` as the provider gave it, rebased on the service), with
/// the attempt's cookie when given: the status, the session cookie set, the page.
async fn callback(
    server: &TestServer,
    url: &str,
    attempt: Option<&str>,
) -> (u16, Option<String>, String) {
    let path = &url[url.find("/console/").expect("the callback path")..];
    let mut request = plain_http().get(format!("{}{path}", server.base));
    if let Some(attempt) = attempt {
        request = request.header(
            "cookie",
            format!("{}={attempt}", console::oidc::ATTEMPT_COOKIE),
        );
    }
    let response = request.send().await.expect("the callback");
    let status = response.status().as_u16();
    let session = set_cookie(&response, console::SESSION_COOKIE)
        .filter(|c| !c.starts_with(&format!("{}=;", console::SESSION_COOKIE)));
    (status, session, response.text().await.expect("a page"))
}

/// Waits (at most 20 s) until the browser is at `path`.
async fn wait_for_path(browser: &Browser, path: &str) {
    let started = Instant::now();
    loop {
        if browser.path().await == path {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the browser never reached {path}; it is at {}",
            browser.path().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_link_worker_signs_in_with_the_openid_provider_in_a_real_browser() {
    let provider = Provider::start().await;
    let server = TestServer::start_with_oidc(provider.console()).await;
    let worker = server.people.worker.clone();
    let client = super::journey::open_case(&server).await;
    server.catch_up().await;
    link(&server, &provider, &worker, "wyn.worker@nhs.example").await;
    let browser = Browser::start().await;
    let enter = Key::Enter.to_string();

    // The sign-in page offers the provider.
    browser.goto(&format!("{}/console", server.base)).await;
    assert_eq!(browser.text("h1").await, "Sign in to Casebook");
    assert_eq!(
        browser.text("#oidc-sign-in").await,
        "Sign in with Test CIS2"
    );
    browser
        .assert_accessible("the sign-in page with an OpenID provider")
        .await;

    // Off to the provider, by keyboard: its form asks who is signing in.
    browser.tab_to("oidc-sign-in").await;
    browser.press_and_wait(&enter).await;
    let at = browser.client.current_url().await.expect("a url");
    assert_eq!(
        format!("{}://{}", at.scheme(), at.authority()),
        provider.issuer,
        "at the provider"
    );
    assert_eq!(at.path(), "/oauth2/authorize");
    let query: Vec<(String, String)> = at
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(param("response_type").as_deref(), Some("code"));
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert!(param("code_challenge").is_some_and(|c| c.len() == 43));
    assert!(param("state").is_some() && param("nonce").is_some());
    assert_eq!(
        param("redirect_uri"),
        Some(format!("{}/console/oidc/callback", server.base))
    );
    assert!(param("scope").is_some_and(|s| s.split(' ').any(|s| s == "openid")));
    browser
        .client
        .find(Locator::Css("input[name=sub]"))
        .await
        .expect("the provider's form")
        .send_keys("wyn.worker@nhs.example")
        .await
        .expect("typing the subject");
    browser.press_and_wait(&enter).await;

    // Back at the console, signed in: their caseload.
    wait_for_path(&browser, "/console/caseload").await;
    assert_eq!(browser.text("h1").await, "My caseload");
    let rows = browser.texts("tbody tr").await;
    assert_eq!(rows.len(), 1, "the case the lead assigned them: {rows:?}");
    assert!(browser.cookie(console::SESSION_COOKIE).await.is_some());
    browser
        .assert_accessible("the caseload after OpenID sign-in")
        .await;
    browser
        .goto(&format!("{}/console/people/{client}", server.base))
        .await;
    assert_eq!(browser.text("h1").await, "Maggie Thornbury");

    // The same session as a link's, and the same audit.
    let admin = server.db.admin_client().await;
    let sessions: Vec<(String, Option<Uuid>)> = admin
        .query(
            "SELECT signed_in_via, link_id FROM console_sessions WHERE staff_id = $1",
            &[&worker.staff_id],
        )
        .await
        .expect("sessions")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(sessions, [("oidc".to_owned(), None)]);
    assert_eq!(oidc_events(&server).await, [signed_in(worker.staff_id)]);

    // Signing out works as for any session.
    browser.tab_to("sign-out").await;
    browser.press_and_wait(&enter).await;
    assert_eq!(browser.text("h1").await, "Sign in to Casebook");
    assert_eq!(browser.cookie(console::SESSION_COOKIE).await, None);
    drop(browser);
    server.stop().await;
}

#[tokio::test]
async fn openid_callbacks_are_refused_without_the_attempt_its_state_or_once_spent() {
    let provider = Provider::start().await;
    let server = TestServer::start_with_oidc(provider.console()).await;
    let worker = server.people.worker.clone();
    link(&server, &provider, &worker, "wyn.worker@nhs.example").await;

    let (attempt, authorization_url) = start(&server).await;
    assert!(authorization_url.starts_with(&format!("{}/oauth2/authorize?", provider.issuer)));
    let back = authorize(&authorization_url, "wyn.worker@nhs.example").await;
    assert!(
        back.starts_with(&format!("{}/console/oidc/callback?", server.base)),
        "{back}"
    );
    let state = query_value(&back, "state").expect("a state");
    let code = query_value(&back, "code").expect("a code");

    // Without the browser's attempt: nothing (another browser cannot finish this sign-in).
    let (status, session, page) = callback(&server, &back, None).await;
    assert_eq!((status, session), (401, None));
    assert!(page.contains("not started in this browser"), "{page}");
    // Without a state, or with another: nothing.
    let no_state = format!("/console/oidc/callback?code={code}");
    assert_eq!(callback(&server, &no_state, Some(&attempt)).await.0, 401);
    let flipped = if state.starts_with('0') { '1' } else { '0' };
    let other_state = format!(
        "/console/oidc/callback?code={code}&state={flipped}{}",
        &state[1..]
    );
    assert_eq!(callback(&server, &other_state, Some(&attempt)).await.0, 401);
    // A forged attempt cookie (the right id, another secret): the state is not its own.
    let forged = format!("{}{}", &attempt[..attempt.len() - 4], "abcd");
    assert_eq!(callback(&server, &back, Some(&forged)).await.0, 401);

    // The real one, once: a session that opens the caseload.
    let (status, session, page) = callback(&server, &back, Some(&attempt)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("url=/console"), "the page moves on: {page}");
    let session = session.expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(session.contains(flag), "{flag} missing from {session}");
    }
    let caseload = plain_http()
        .get(format!("{}/console/caseload", server.base))
        .header(
            "cookie",
            format!("{}={}", console::SESSION_COOKIE, cookie_value(&session)),
        )
        .send()
        .await
        .expect("the caseload");
    assert_eq!(caseload.status(), 200);

    // Replayed, with the same cookie: refused, the attempt is spent.
    let (status, session, _) = callback(&server, &back, Some(&attempt)).await;
    assert_eq!((status, session), (401, None));

    assert_eq!(
        oidc_events(&server).await,
        [
            // Not the first callback, without the browser's attempt: refused unwritten.
            refused("state", None, None),
            refused("state", None, None),
            refused("state", None, None),
            signed_in(worker.staff_id),
            refused("spent", None, None),
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn openid_sign_in_refuses_unlinked_identities_deactivated_staff_and_another_sign_ins_nonce() {
    let provider = Provider::start().await;
    let server = TestServer::start_with_oidc(provider.console()).await;
    let worker2 = server.people.worker2.clone();
    let admin = server.db.admin_client().await;

    // An identity linked to no one: refused, and the refusal names it, for the operator.
    let (attempt, url) = start(&server).await;
    let back = authorize(&url, "stranger@nhs.example").await;
    let (status, session, page) = callback(&server, &back, Some(&attempt)).await;
    assert_eq!((status, session), (401, None));
    assert!(page.contains("not linked to a Casebook account"), "{page}");

    // A deactivated account's identity: refused.
    link(&server, &provider, &worker2, "wren.worker@nhs.example").await;
    app::admin::Operator::new(&admin)
        .set_active(worker2.staff_id, false)
        .await
        .expect("deactivating");
    let (attempt, url) = start(&server).await;
    let back = authorize(&url, "wren.worker@nhs.example").await;
    let (status, session, page) = callback(&server, &back, Some(&attempt)).await;
    assert_eq!((status, session), (401, None));
    assert!(page.contains("not active"), "{page}");
    // Reactivated, the same identity signs in.
    app::admin::Operator::new(&admin)
        .set_active(worker2.staff_id, true)
        .await
        .expect("reactivating");
    let (attempt, url) = start(&server).await;
    let back = authorize(&url, "wren.worker@nhs.example").await;
    let (status, session, _) = callback(&server, &back, Some(&attempt)).await;
    assert_eq!((status, session.is_some()), (200, true));

    // A code issued to another sign-in (its nonce in the ID token), brought back with this
    // browser's attempt and state. (This provider does not check PKCE, so it is the nonce that
    // catches it here; a provider that checks PKCE refuses the exchange first.)
    let (_, theirs) = start(&server).await;
    let their_back = authorize(&theirs, "wren.worker@nhs.example").await;
    let their_code = query_value(&their_back, "code").expect("a code");
    let (attempt, ours) = start(&server).await;
    let our_state = query_value(&ours, "state").expect("a state");
    let crossed = format!("/console/oidc/callback?code={their_code}&state={our_state}");
    let (status, session, page) = callback(&server, &crossed, Some(&attempt)).await;
    assert_eq!((status, session), (401, None));
    assert!(page.contains("could not confirm who you are"), "{page}");

    // A code the provider never issued: the exchange is refused.
    let (attempt, ours) = start(&server).await;
    let our_state = query_value(&ours, "state").expect("a state");
    let made_up = format!("/console/oidc/callback?code=made-up&state={our_state}");
    assert_eq!(callback(&server, &made_up, Some(&attempt)).await.0, 401);

    // The provider says no (the person pressed "Deny").
    let (attempt, ours) = start(&server).await;
    let our_state = query_value(&ours, "state").expect("a state");
    let denied = format!("/console/oidc/callback?error=access_denied&state={our_state}");
    let (status, _, page) = callback(&server, &denied, Some(&attempt)).await;
    assert_eq!(status, 401);
    assert!(page.contains("was cancelled"), "{page}");

    assert_eq!(
        oidc_events(&server).await,
        [
            refused("unknown_identity", None, Some("stranger@nhs.example")),
            refused(
                "inactive",
                Some(worker2.staff_id),
                Some("wren.worker@nhs.example")
            ),
            signed_in(worker2.staff_id),
            refused("nonce", None, None),
            refused("exchange", None, None),
            refused("denied", None, None),
        ]
    );
    let issuers: Vec<Option<String>> = admin
        .query(
            "SELECT issuer FROM session_events WHERE reason = 'unknown_identity'",
            &[],
        )
        .await
        .expect("the audit")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(issuers, [Some(provider.issuer.clone())]);
    server.stop().await;
}

#[tokio::test]
async fn an_identity_links_to_one_active_staff_member() {
    let server = TestServer::start().await;
    let (worker, worker2) = (server.people.worker.clone(), server.people.worker2.clone());
    let admin = server.db.admin_client().await;
    let issuer =
        "https://am.nhsidentity.spineservices.nhs.uk/openam/oauth2/realms/root/realms/oidc";
    app::oidc::link_identity(&admin, worker.staff_id, issuer, "555042709107")
        .await
        .expect("linking");
    // Again for the same person: nothing changes.
    app::oidc::link_identity(&admin, worker.staff_id, issuer, "555042709107")
        .await
        .expect("linking again");
    // The same identity for someone else: refused.
    let taken = app::oidc::link_identity(&admin, worker2.staff_id, issuer, "555042709107").await;
    assert!(
        matches!(
            taken,
            Err(app::access::AccessError::Invalid {
                field: "subject",
                ..
            })
        ),
        "{taken:?}"
    );
    // An empty subject, or a deactivated account: refused.
    assert!(
        app::oidc::link_identity(&admin, worker2.staff_id, issuer, " ")
            .await
            .is_err()
    );
    app::admin::Operator::new(&admin)
        .set_active(worker2.staff_id, false)
        .await
        .expect("deactivating");
    assert!(
        app::oidc::link_identity(&admin, worker2.staff_id, issuer, "555042709108")
            .await
            .is_err()
    );
    let listed = app::oidc::identities(&admin, None).await.expect("listing");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].staff_id, listed[0].subject.as_str()),
        (worker.staff_id, "555042709107")
    );
    assert!(
        app::oidc::unlink_identity(&admin, issuer, "555042709107")
            .await
            .expect("unlinking")
    );
    assert!(
        app::oidc::identities(&admin, Some(worker.staff_id))
            .await
            .expect("listing")
            .is_empty()
    );
    // Without an OpenID provider the console has no such routes to speak of.
    let response = plain_http()
        .get(format!("{}/console/oidc/start", server.base))
        .send()
        .await
        .expect("a request");
    assert_eq!(response.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn a_sign_in_below_the_assurance_level_asked_for_is_refused() {
    let provider = Provider::start().await;
    let mut settings = provider.console();
    settings.acr_values = vec!["AAL3_ANY".into()];
    let server = TestServer::start_with_oidc(settings).await;
    let worker = server.people.worker.clone();
    let subject = "wyn.worker@nhs.example";
    link(&server, &provider, &worker, subject).await;
    // The provider's answer for this person: their `acr`, or none.
    let assured = |acr: Option<&str>| {
        let mut claims = serde_json::json!({ "email": subject });
        if let Some(acr) = acr {
            claims["acr"] = acr.into();
        }
        plain_http()
            .put(format!("{}/users/{subject}", provider.issuer))
            .json(&claims)
            .send()
    };

    let (attempt, url) = start(&server).await;
    assert_eq!(
        query_value(&url, "acr_values").as_deref(),
        Some("AAL3_ANY"),
        "asked for: {url}"
    );
    for acr in [Some("AAL1_USERPASS"), None] {
        assert!(
            assured(acr)
                .await
                .expect("the provider")
                .status()
                .is_success()
        );
        let (attempt, url) = start(&server).await;
        let back = authorize(&url, subject).await;
        let (status, session, page) = callback(&server, &back, Some(&attempt)).await;
        assert_eq!((status, session), (401, None), "{acr:?}");
        assert!(page.contains("not secure enough"), "{page}");
    }
    assert!(
        assured(Some("AAL3_ANY"))
            .await
            .expect("the provider")
            .status()
            .is_success()
    );
    let back = authorize(&url, subject).await;
    let (status, session, _) = callback(&server, &back, Some(&attempt)).await;
    assert_eq!((status, session.is_some()), (200, true));
    assert_eq!(
        oidc_events(&server).await,
        [
            refused("assurance", None, None),
            refused("assurance", None, None),
            signed_in(worker.staff_id),
        ]
    );
    server.stop().await;
}

/// Against a provider that checks PKCE, the console's verifier is the one its challenge was
/// made from: the sign-in goes through. A code issued to another sign-in, brought back with
/// this browser's attempt, is refused by the provider at the exchange (the other sign-in's
/// challenge), before the nonce is looked at, and the refusal is in the session audit.
#[tokio::test]
async fn a_provider_that_checks_pkce_exchanges_only_the_code_of_this_sign_ins_challenge() {
    let provider = Provider::start_checking_pkce().await;
    let server = TestServer::start_with_oidc(provider.console()).await;
    let worker = server.people.worker.clone();
    link(&server, &provider, &worker, "wyn.worker@nhs.example").await;

    let (attempt, url) = start(&server).await;
    assert_eq!(
        query_value(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let back = authorize(&url, "wyn.worker@nhs.example").await;
    let (status, session, page) = callback(&server, &back, Some(&attempt)).await;
    assert_eq!((status, session.is_some()), (200, true), "{page}");

    let (_, theirs) = start(&server).await;
    let their_back = authorize(&theirs, "wyn.worker@nhs.example").await;
    let their_code = query_value(&their_back, "code").expect("a code");
    let (attempt, ours) = start(&server).await;
    let our_state = query_value(&ours, "state").expect("a state");
    let crossed = format!("/console/oidc/callback?code={their_code}&state={our_state}");
    let (status, session, _) = callback(&server, &crossed, Some(&attempt)).await;
    assert_eq!((status, session), (401, None));

    assert_eq!(
        oidc_events(&server).await,
        [signed_in(worker.staff_id), refused("exchange", None, None)]
    );
    server.stop().await;
}
