//! The web console: a link worker's journey in a real browser, by keyboard alone, every page
//! checked with axe-core; and, over plain HTTP, what an attacker would try against its sign-in,
//! sessions and forms.

use std::time::Duration;

use fantoccini::key::Key;
use serde_json::Value;
use uuid::Uuid;

use super::journey::{open_case, refer_new};
use super::{Person, TestServer};
use crate::browser::Browser;

/// A one-time sign-in code for `who`, valid an hour.
pub(super) async fn sign_in_code(server: &TestServer, who: &Person) -> String {
    let admin = server.db.admin_client().await;
    app::sessions::create_sign_in_link(&admin, who.staff_id, chrono::Duration::hours(1), None)
        .await
        .expect("a sign-in link")
        .code
}

/// A browser signed in as `who` through a sign-in link.
pub(super) async fn signed_in_browser(server: &TestServer, who: &Person) -> Browser {
    let browser = Browser::start().await;
    let code = sign_in_code(server, who).await;
    browser
        .goto(&format!("{}/console/sign-in?code={code}", server.base))
        .await;
    browser.click_and_wait("#sign-in").await;
    browser
}

/// The kinds of `who`'s session events, oldest first.
async fn session_events(server: &TestServer, who: &Person) -> Vec<String> {
    let admin = server.db.admin_client().await;
    admin
        .query(
            "SELECT kind FROM session_events WHERE staff_id = $1 ORDER BY event_id",
            &[&who.staff_id],
        )
        .await
        .expect("session events")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Reads of `client`'s record by `who` for direct care, in the read audit.
async fn direct_care_reads(server: &TestServer, who: &Person, client: Uuid) -> i64 {
    let admin = server.db.admin_client().await;
    admin
        .query_one(
            "SELECT count(*) FROM record_reads WHERE staff_id = $1 AND client_id = $2 \
             AND purpose_code = 'direct_care'",
            &[&who.staff_id, &client],
        )
        .await
        .expect("reads")
        .get(0)
}

fn contacts(entries: &[Value]) -> Vec<&Value> {
    entries
        .iter()
        .filter(|e| e["event_type"] == "ContactRecorded")
        .collect()
}

#[tokio::test]
async fn a_link_worker_signs_in_reads_their_caseload_and_records_a_contact_by_keyboard() {
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    let client = open_case(&server).await;
    server.catch_up().await;
    let code = sign_in_code(&server, &worker).await;
    let browser = Browser::start().await;
    let enter = Key::Enter.to_string();

    // The link opens a page with one button; the link alone signs no one in.
    browser
        .goto(&format!("{}/console/sign-in?code={code}", server.base))
        .await;
    assert_eq!(browser.text("h1").await, "Sign in to Casebook");
    browser.assert_accessible("the sign-in page").await;
    assert_eq!(session_events(&server, &worker).await, Vec::<String>::new());
    browser.tab_to("sign-in").await;
    browser.press_and_wait(&enter).await;

    // Signed in: their caseload, with the case the lead assigned them.
    assert_eq!(browser.path().await, "/console/caseload");
    assert_eq!(browser.text("h1").await, "My caseload");
    let rows = browser.texts("tbody tr").await;
    assert_eq!(rows.len(), 1, "one case on the caseload: {rows:?}");
    assert!(
        rows[0].contains("Maggie Thornbury")
            && rows[0].contains("Frome")
            && rows[0].contains("Open"),
        "the person by name, their area and status: {rows:?}"
    );
    browser.assert_accessible("the caseload").await;

    // The person's page, reached by keyboard; reading it is audited as direct care.
    let reads_before = direct_care_reads(&server, &worker, client).await;
    browser.tab_to_link("Maggie Thornbury").await;
    browser.press_and_wait(&enter).await;
    assert_eq!(browser.path().await, format!("/console/people/{client}"));
    assert_eq!(
        browser.text("h1").await,
        "Maggie Thornbury",
        "the intake's name"
    );
    assert!(
        direct_care_reads(&server, &worker, client).await >= reads_before + 2,
        "the record and the journey were read, and each read is in the audit"
    );
    browser.assert_accessible("a person's page").await;

    // A form sent wrong is shown again with each problem named and linked to its field.
    browser.tab_to("minutes").await;
    browser.press("half an hour").await;
    browser.tab_to("record-contact").await;
    browser.press_and_wait(&enter).await;
    let problems = browser.error_summary().await;
    assert_eq!(
        problems,
        [
            "Select how the contact took place",
            "Enter the minutes as a whole number, like 30"
        ]
    );
    assert_eq!(contacts(&server.journey_entries(client).await).len(), 0);
    browser.assert_accessible("a form with errors").await;

    // Put right by keyboard: the radios with Space and the arrow keys.
    browser.tab_to("mode").await;
    browser.press(" ").await;
    browser.press(&Key::Down.to_string()).await;
    browser.tab_to("minutes").await;
    browser.press(&Key::Backspace.to_string().repeat(20)).await;
    browser.press("25").await;
    browser.tab_to("note").await;
    browser.press("Talked about the walking group").await;
    browser.tab_to("record-contact").await;
    browser.press_and_wait(&enter).await;

    assert_eq!(
        browser.path().await,
        format!("/console/people/{client}?done=contact")
    );
    assert_eq!(
        browser.text(".nhsuk-notification-banner__heading").await,
        "Contact recorded"
    );
    let newest = browser.text("#journey + ol li").await;
    assert!(
        newest.starts_with("Contact recorded")
            && newest.contains("mode: phone")
            && newest.contains("minutes: 25"),
        "the newest journey entry is the contact: {newest}"
    );
    browser.assert_accessible("the page after recording").await;

    // The log has the contact, by the worker, as the form said.
    let entries = server.journey_entries(client).await;
    let recorded = contacts(&entries);
    assert_eq!(recorded.len(), 1, "one contact recorded");
    assert_eq!(recorded[0]["actor_id"], worker.staff_id.to_string());
    assert_eq!(recorded[0]["payload"]["mode"], "phone");
    assert_eq!(recorded[0]["payload"]["minutes"], 25);
    assert_eq!(
        recorded[0]["payload"]["note"],
        "Talked about the walking group"
    );

    // Signing out ends the session; the browser's cookie goes with it.
    let cookie = browser
        .cookie(console::SESSION_COOKIE)
        .await
        .expect("a session cookie");
    browser.tab_to("sign-out").await;
    browser.press_and_wait(&enter).await;
    assert_eq!(browser.text("h1").await, "Sign in to Casebook");
    assert_eq!(browser.cookie(console::SESSION_COOKIE).await, None);
    browser.assert_accessible("the signed-out page").await;
    let replayed = plain_http()
        .get(format!("{}/console/caseload", server.base))
        .header("cookie", format!("{}={cookie}", console::SESSION_COOKIE))
        .send()
        .await
        .expect("a request");
    assert_eq!(
        replayed.status(),
        401,
        "a signed-out session's cookie opens nothing"
    );
    assert_eq!(
        session_events(&server, &worker).await,
        ["signed_in", "signed_out"]
    );
    server.stop().await;
}

pub(super) fn plain_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// Signs `who` in over HTTP; the session cookie's value.
pub(super) async fn sign_in(server: &TestServer, who: &Person) -> String {
    let code = sign_in_code(server, who).await;
    let response = plain_http()
        .post(format!("{}/console/sign-in", server.base))
        .form(&[("code", code.as_str())])
        .send()
        .await
        .expect("signing in");
    assert_eq!(response.status(), 303);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(flag), "{flag} missing from {cookie}");
    }
    cookie
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("a value")
}

/// GETs `path` with the session; status and body.
pub(super) async fn get(server: &TestServer, session: &str, path: &str) -> (u16, String) {
    let response = plain_http()
        .get(format!("{}{path}", server.base))
        .header("cookie", format!("{}={session}", console::SESSION_COOKIE))
        .send()
        .await
        .expect("a request");
    (
        response.status().as_u16(),
        response.text().await.expect("a body"),
    )
}

/// POSTs a form to `path` with the session, as from `origin` (none: no Origin header); the
/// status.
pub(super) async fn post(
    server: &TestServer,
    session: &str,
    path: &str,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> u16 {
    post_page(server, session, path, origin, form).await.0
}

/// [`post`], with the page answered.
pub(super) async fn post_page(
    server: &TestServer,
    session: &str,
    path: &str,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, String) {
    let mut request = plain_http()
        .post(format!("{}{path}", server.base))
        .header("cookie", format!("{}={session}", console::SESSION_COOKIE))
        .form(form);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.expect("a request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// The banner a form's success leads to.
pub(super) async fn banner(browser: &Browser) -> String {
    browser.text(".nhsuk-notification-banner__heading").await
}

/// The value of the input `name` in a page (its first `value` after the name).
pub(super) fn hidden(page: &str, name: &str) -> String {
    let at = page.find(&format!("name=\"{name}\"")).expect("the field");
    let marker = "value=\"";
    let start = at + page[at..].find(marker).expect("a value") + marker.len();
    page[start..].split('"').next().expect("a value").to_owned()
}

#[tokio::test]
async fn console_forms_refuse_spent_links_other_sites_stale_tokens_and_other_organisations() {
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    let client = open_case(&server).await;
    server.catch_up().await;

    // A link works once.
    let code = sign_in_code(&server, &worker).await;
    let first = plain_http()
        .post(format!("{}/console/sign-in", server.base))
        .form(&[("code", code.as_str())])
        .send()
        .await
        .expect("signing in");
    assert_eq!(first.status(), 303);
    let again = plain_http()
        .post(format!("{}/console/sign-in", server.base))
        .form(&[("code", code.as_str())])
        .send()
        .await
        .expect("signing in again");
    assert_eq!(again.status(), 401);
    assert!(again.headers().get("set-cookie").is_none());
    assert_eq!(
        session_events(&server, &worker).await,
        ["signed_in", "sign_in_refused"]
    );

    let session = sign_in(&server, &worker).await;
    let person = format!("/console/people/{client}");
    let (status, page) = get(&server, &session, &person).await;
    assert_eq!(status, 200);
    let csrf = hidden(&page, "csrf");
    let contact_id = hidden(&page, "contact_id");
    let (day, time) = (
        hidden(&page, "contacted_on"),
        hidden(&page, "contacted_time"),
    );
    let action = format!("{person}/contacts");
    // The contact form as the page drew it, `minutes` long.
    let send_lasting = |origin: Option<String>, token: String, minutes: &'static str| {
        let (server, session, action, contact_id) = (&server, &session, &action, &contact_id);
        let (day, time) = (&day, &time);
        async move {
            let fields = [
                ("csrf", token.as_str()),
                ("contact_id", contact_id.as_str()),
                ("mode", "video"),
                ("minutes", minutes),
                ("contacted_on", day.as_str()),
                ("contacted_time", time.as_str()),
            ];
            post(server, session, action, origin.as_deref(), &fields).await
        }
    };
    let send = |origin: Option<String>, token: String| send_lasting(origin, token, "15");

    // Another site's form, even with a good token, and a form without this session's token.
    assert_eq!(
        send(Some("http://evil.example".into()), csrf.clone()).await,
        403
    );
    assert_eq!(send(None, "0".repeat(64)).await, 403);
    assert_eq!(send(None, String::new()).await, 403);
    assert_eq!(contacts(&server.journey_entries(client).await).len(), 0);

    // The real form, sent twice (a double click, a resend): one contact.
    assert_eq!(send(Some(server.base.clone()), csrf.clone()).await, 303);
    assert_eq!(send(None, csrf.clone()).await, 303);
    let entries = server.journey_entries(client).await;
    assert_eq!(
        contacts(&entries).len(),
        1,
        "the same form records one contact"
    );
    // The page gone back to and the form changed (another length) under the same key: it comes
    // back saying so, and the first stays as it was, never taken for this one.
    assert_eq!(send_lasting(None, csrf.clone(), "25").await, 422);
    let entries = server.journey_entries(client).await;
    let recorded = contacts(&entries);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["payload"]["minutes"], 15, "{:#}", recorded[0]);

    // Another organisation's link worker is told there is no such person, and reads nothing.
    let foreign = server.people.foreign_worker.clone();
    let foreign_session = sign_in(&server, &foreign).await;
    let (status, _) = get(&server, &foreign_session, &person).await;
    assert_eq!(status, 404);
    assert_eq!(direct_care_reads(&server, &foreign, client).await, 0);
    let foreign_page = get(&server, &foreign_session, "/console/caseload").await.1;
    let foreign_csrf = hidden(&foreign_page, "csrf");
    let refused = post(
        &server,
        &foreign_session,
        &action,
        None,
        &[
            ("csrf", foreign_csrf.as_str()),
            ("contact_id", &Uuid::new_v4().to_string()),
            ("mode", "phone"),
            ("minutes", "5"),
            ("contacted_on", day.as_str()),
            ("contacted_time", time.as_str()),
        ],
    )
    .await;
    assert_eq!(refused, 404);
    assert_eq!(contacts(&server.journey_entries(client).await).len(), 1);

    // Pages carry their own policy; a caseload page and its stylesheet stay under 300 KB.
    let response = plain_http()
        .get(format!("{}/console/caseload", server.base))
        .header("cookie", format!("{}={session}", console::SESSION_COOKIE))
        .send()
        .await
        .expect("a request");
    let csp = response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.contains("form-action 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let html = response.bytes().await.expect("a body").len();
    let css = plain_http()
        .get(format!(
            "{}/console/assets/{}/nhsuk-frontend.min.css",
            server.base,
            console::FRONTEND_VERSION
        ))
        .send()
        .await
        .expect("the stylesheet")
        .bytes()
        .await
        .expect("its body")
        .len();
    assert!(
        css > 100_000,
        "the NHS.UK stylesheet is served ({css} bytes)"
    );
    assert!(
        html + css < 300 * 1024,
        "caseload page {html} + stylesheet {css} bytes"
    );
    server.stop().await;
}

#[tokio::test]
async fn sessions_end_when_idle_at_their_lifetime_and_when_access_is_revoked() {
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    let admin = server.db.admin_client().await;
    let caseload = |session: String| {
        let server = &server;
        async move { get(server, &session, "/console/caseload").await.0 }
    };

    let idle = sign_in(&server, &worker).await;
    assert_eq!(caseload(idle.clone()).await, 200);
    admin
        .execute(
            "UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes' \
             WHERE staff_id = $1 AND ended_at IS NULL",
            &[&worker.staff_id],
        )
        .await
        .expect("ageing the session");
    assert_eq!(caseload(idle.clone()).await, 401);
    assert_eq!(caseload(idle).await, 401, "and it stays ended");

    // A page's use of the session is written at most every half-minute: the row is not
    // written again (its version, `xmin`, stays) for pages read within it, and is once it is
    // older; the idle timeout then starts again from then.
    let used = sign_in(&server, &worker).await;
    let seen = || async {
        let row = admin
            .query_one(
                "SELECT xmin::text, now() - last_seen_at < interval '5 seconds' \
                 FROM console_sessions WHERE staff_id = $1 AND ended_at IS NULL",
                &[&worker.staff_id],
            )
            .await
            .expect("the session");
        (row.get::<_, String>(0), row.get::<_, bool>(1))
    };
    assert_eq!(caseload(used.clone()).await, 200);
    let (version, _) = seen().await;
    assert_eq!(caseload(used.clone()).await, 200);
    assert_eq!(caseload(used.clone()).await, 200);
    assert_eq!(
        seen().await.0,
        version,
        "pages within the half-minute write nothing"
    );
    admin
        .execute(
            "UPDATE console_sessions SET last_seen_at = now() - interval '29 minutes' \
             WHERE staff_id = $1 AND ended_at IS NULL",
            &[&worker.staff_id],
        )
        .await
        .expect("ageing the session");
    assert_eq!(caseload(used.clone()).await, 200);
    assert!(seen().await.1, "a use after the half-minute is written");
    admin
        .execute(
            "UPDATE console_sessions SET last_seen_at = last_seen_at - interval '10 minutes' \
             WHERE staff_id = $1 AND ended_at IS NULL",
            &[&worker.staff_id],
        )
        .await
        .expect("ageing the session");
    assert_eq!(
        caseload(used).await,
        200,
        "the idle timeout started again at the written use"
    );

    let old = sign_in(&server, &worker).await;
    admin
        .execute(
            "UPDATE console_sessions SET expires_at = now() - interval '1 second' \
             WHERE staff_id = $1 AND ended_at IS NULL",
            &[&worker.staff_id],
        )
        .await
        .expect("ageing the session");
    assert_eq!(caseload(old).await, 401);

    // An administrator revokes all the worker's access: their console session ends with it.
    let revoked = sign_in(&server, &worker).await;
    assert_eq!(caseload(revoked.clone()).await, 200);
    let reply = server
        .post(
            &server.people.admin,
            &format!("/api/v1/staff/{}/tokens/revocation", worker.staff_id),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(caseload(revoked).await, 401);
    // A made-up or malformed cookie is refused the same way, and no session is touched.
    assert_eq!(
        caseload(format!(
            "cbs_{}_{}",
            Uuid::new_v4().simple(),
            "0".repeat(64)
        ))
        .await,
        401
    );
    assert_eq!(caseload("nonsense".to_owned()).await, 401);

    assert_eq!(
        session_events(&server, &worker).await,
        [
            "signed_in",
            "idle",
            "signed_in", // the half-minute's session, revoked with the last
            "signed_in",
            "expired",
            "signed_in",
            "revoked",
            "revoked"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_team_lead_triages_a_referral_and_assigns_it_to_a_link_worker() {
    let server = TestServer::start().await;
    let (lead, worker) = (server.people.lead.clone(), server.people.worker.clone());
    let (client, _) = refer_new(&server, &server.people.referrer).await;
    server.catch_up().await;
    let browser = signed_in_browser(&server, &lead).await;

    // The queue: the referral waiting, reached from the menu.
    browser.click_and_wait("a[href='/console/triage']").await;
    assert_eq!(browser.text("h1").await, "Referrals to triage");
    let rows = browser.texts("tbody tr").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    browser.assert_accessible("the triage queue").await;
    browser.click_and_wait("tbody a").await;
    assert_eq!(browser.path().await, format!("/console/people/{client}"));
    browser.assert_accessible("a referral to decide").await;
    // The referral beside the decision, in words: whence, for what, and the referrer's note.
    let referral = browser.text("#referral-to-decide").await;
    assert!(
        referral.ends_with("from self-referral, for loneliness or isolation, mental wellbeing."),
        "{referral}"
    );
    assert!(
        browser
            .text(".nhsuk-inset-text")
            .await
            .contains("Lives alone since her husband died."),
    );

    // Declining needs a reason: the application's form says so, and nothing is written.
    browser.click("label[for='decision-decline']").await;
    browser.click_and_wait("#decide").await;
    assert_eq!(
        browser.error_summary().await,
        ["Select why the referral is declined"]
    );
    browser.assert_accessible("a decision with an error").await;
    assert!(
        server
            .journey_entries(client)
            .await
            .iter()
            .all(|e| e["event_type"] != "ReferralDeclined")
    );

    // Accepted, then assigned to a worker of the lead's team, chosen by their load.
    browser.click("label[for='decision']").await;
    browser.click_and_wait("#decide").await;
    assert_eq!(
        browser.text(".nhsuk-notification-banner__heading").await,
        "Referral accepted"
    );
    let options = browser.texts("#link_worker_id option").await;
    assert!(
        options.iter().any(|o| o.starts_with("Wyn Worker"))
            && options.iter().any(|o| o.starts_with("Wren Worker")),
        "the lead's team's link workers: {options:?}"
    );
    assert!(
        !options.iter().any(|o| o.starts_with("Ola Worker")),
        "not another team's: {options:?}"
    );
    browser
        .select("#link_worker_id", &worker.staff_id.to_string())
        .await;
    browser.click_and_wait("#assign").await;
    assert_eq!(
        browser.text(".nhsuk-notification-banner__heading").await,
        "Link worker assigned"
    );
    let summary = browser.text(".nhsuk-summary-list").await;
    assert!(
        summary.contains("Open") && summary.contains("Wyn Worker"),
        "{summary}"
    );
    browser.assert_accessible("an assigned case").await;

    // The log has it, by the lead; the queue is empty and the worker has the case.
    let types = server.journey_types(client).await;
    assert!(
        types.ends_with(&[
            "ReferralAccepted".to_owned(),
            "LinkWorkerAssigned".to_owned()
        ]),
        "{types:?}"
    );
    server.catch_up().await;
    browser
        .goto(&format!("{}/console/triage", server.base))
        .await;
    assert_eq!(browser.texts("tbody tr").await.len(), 0);
    let caseload = server.read(&worker, "/api/v1/caseload").await;
    assert_eq!(caseload.body["items"][0]["client_id"], client.to_string());

    // A link worker has no triage queue.
    let worker_session = sign_in(&server, &worker).await;
    assert_eq!(
        get(&server, &worker_session, "/console/triage").await.0,
        403
    );
    server.stop().await;
}

/// A lead interrupted between accepting a referral and assigning it loses nobody: the case
/// stays on the triage queue, waiting for a link worker, until it has one; the queue is the
/// oldest referral first, page after page.
#[tokio::test]
async fn the_triage_queue_is_oldest_first_and_keeps_a_case_accepted_with_no_link_worker() {
    use super::journey::{accept, assign, client_path, days_ago, named_referral};
    let server = TestServer::start().await;
    let (referrer, lead) = (&server.people.referrer, &server.people.lead);
    let mut referred = Vec::new();
    for (family, days) in [
        ("Three", 3),
        ("Ten", 10),
        ("Five", 5),
        ("Seven", 7),
        ("One", 1),
    ] {
        let (client, referral) = (Uuid::new_v4(), Uuid::new_v4());
        let mut body = named_referral(
            ("Kit", family),
            "Frome",
            referral,
            "self_referral",
            Value::String(days_ago(days)),
        );
        if family == "One" {
            body["referral"]["urgency"] = Value::String("urgent".to_owned());
        }
        server
            .ok(referrer, &client_path(client, "referrals"), body)
            .await;
        referred.push((client, referral));
    }
    let [three, ten, five, seven, one] = [0, 1, 2, 3, 4].map(|i| referred[i]);
    // Ten days' waiting: accepted, and the lead called away before assigning it. Five days':
    // accepted and assigned, so it leaves the queue.
    accept(&server, lead, ten.0, ten.1).await;
    accept(&server, lead, five.0, five.1).await;
    assert_eq!(
        assign(&server, five.0, &server.people.worker).await.status,
        201
    );
    server.catch_up().await;

    // Page by page, one a page: the urgent one first, then the oldest referral first, the
    // accepted one among them.
    let principal = app::access::Authenticator::new(&server.store)
        .authenticate(&lead.token)
        .await
        .expect("the lead");
    let cases = app::CaseService::new(server.store.clone());
    let (mut cursor, mut queue) = (None, Vec::new());
    loop {
        let page = cases
            .triage_queue(&principal, cursor, Some(1), None)
            .await
            .expect("a page");
        queue.extend(page.items.iter().map(|i| (i.client_id, i.status)));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(
        queue,
        [
            (one.0, domain::CaseStatus::Referred),
            (ten.0, domain::CaseStatus::Open),
            (seven.0, domain::CaseStatus::Referred),
            (three.0, domain::CaseStatus::Referred),
        ]
    );

    // The page says which waits for what.
    let browser = signed_in_browser(&server, lead).await;
    browser.click_and_wait("a[href='/console/triage']").await;
    let waiting = browser.texts("tbody td.waiting-for").await;
    assert_eq!(
        waiting,
        [
            "A decision",
            "A link worker (accepted)",
            "A decision",
            "A decision"
        ]
    );
    let first = browser.text("tbody tr").await;
    assert!(first.contains("Urgent referral"), "{first}");
    browser
        .assert_accessible("a triage queue with an accepted case")
        .await;

    // The person's journey says who did what, by name, and a referral's day as a day.
    browser
        .goto(&format!("{}/console/people/{}", server.base, ten.0))
        .await;
    let said = browser.texts("#journey + ol > li p.nhsuk-body-s").await;
    assert!(said[0].ends_with("by Lena Lead (team lead)."), "{said:?}");
    let entries = browser.texts("#journey + ol > li").await;
    let received = entries
        .iter()
        .find(|e| e.starts_with("Referral received"))
        .expect("the referral");
    let happened = received.split(". Recorded").next().unwrap_or_default();
    assert!(!happened.contains(" at "), "a day, not a time: {received}");
    assert!(received.contains("source: self-referral"), "{received}");

    // Assigned: it leaves the queue.
    assert_eq!(
        assign(&server, ten.0, &server.people.worker).await.status,
        201
    );
    server.catch_up().await;
    browser
        .goto(&format!("{}/console/triage", server.base))
        .await;
    assert_eq!(browser.texts("tbody td.waiting-for").await.len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn an_auditor_replays_a_journey_as_known_at_a_moment_and_sees_who_read_it() {
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    let client = open_case(&server).await;
    server
        .ok(
            &worker,
            &super::journey::client_path(client, "contacts"),
            serde_json::json!({
                "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 20,
                "contacted_at": chrono::Utc::now() - chrono::Duration::hours(1), "note": null
            }),
        )
        .await;
    let read = server
        .read(&worker, &format!("/api/v1/clients/{client}"))
        .await;
    assert_eq!(read.status, 200);
    let entries = server.journey_entries(client).await.len();

    let browser = signed_in_browser(&server, &server.people.auditor).await;
    assert_eq!(browser.path().await, "/console/audit");
    browser.assert_accessible("the audit form").await;

    // A record id that is not one is named as the problem.
    browser.tab_to("client_id").await;
    browser.press("not-an-id").await;
    browser.click_and_wait("#show").await;
    assert_eq!(
        browser.error_summary().await,
        ["Enter the record id, like 0192c4f0-3b1a-7cde-8f00-1234567890ab"]
    );
    browser
        .assert_accessible("the audit form with an error")
        .await;

    // The whole journey, with who did each thing, and who read the record (this read too).
    browser
        .goto(&format!("{}/console/audit?client_id={client}", server.base))
        .await;
    let rows = browser
        .texts("#journey + p + .nhsuk-table-container tbody tr")
        .await;
    assert_eq!(rows.len(), entries, "every entry of the journey: {rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.contains("Contact recorded") && r.contains("Wyn Worker (link worker)")),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.contains("Lena Lead (team lead)")),
        "{rows:?}"
    );
    let reads = browser
        .texts("#reads + .nhsuk-table-container tbody tr")
        .await;
    assert!(
        reads
            .iter()
            .any(|r| r.contains("Wyn Worker") && r.contains("record")),
        "{reads:?}"
    );
    assert!(
        reads
            .iter()
            .any(|r| r.contains("Audrey Auditor") && r.contains("reads") && r.contains("audit")),
        "{reads:?}"
    );
    browser.assert_accessible("a journey under audit").await;

    // As it was known long ago: nothing had been recorded.
    browser
        .goto(&format!(
            "{}/console/audit?client_id={client}&known_at=2000-01-01",
            server.base
        ))
        .await;
    assert_eq!(
        browser
            .texts("#journey + p + .nhsuk-table-container tbody tr")
            .await
            .len(),
        0
    );
    assert!(browser.text("#journey + p").await.starts_with("0 entries"));

    // Another organisation's auditor is told there is no such record.
    let foreign = sign_in(&server, &server.people.foreign_auditor).await;
    let (status, _) = get(
        &server,
        &foreign,
        &format!("/console/audit?client_id={client}"),
    )
    .await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_link_worker_books_an_appointment_and_records_that_the_person_did_not_come() {
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    let client = open_case(&server).await;
    server.catch_up().await;
    let browser = signed_in_browser(&server, &worker).await;
    browser
        .goto(&format!("{}/console/people/{client}", server.base))
        .await;
    assert_eq!(
        browser.text("#appointments + p").await,
        "No appointment is booked."
    );

    // A booking without its mode is refused by the form; then booked by phone.
    browser.click_and_wait("#book").await;
    assert_eq!(
        browser.error_summary().await,
        ["Select how the appointment will take place"]
    );
    browser.click("label[for='appointment_mode-phone']").await;
    browser.click_and_wait("#book").await;
    assert_eq!(
        browser.text(".nhsuk-notification-banner__heading").await,
        "Appointment booked"
    );
    let booked = browser.text("#appointments ~ .nhsuk-card h3").await;
    assert!(booked.ends_with("at 10:00, phone"), "{booked}");
    browser.assert_accessible("a booked appointment").await;

    // Whether they came cannot be said of an appointment still to come: the page offers only
    // its cancellation, and says when; sent anyway (an old page), it is refused beside the
    // appointments, not at the contact form's date.
    assert!(
        browser
            .texts("button[name='outcome'][value='did_not_attend']")
            .await
            .is_empty()
    );
    assert!(
        browser
            .text("#appointments ~ .nhsuk-card")
            .await
            .contains("Record whether they came on the day.")
    );
    let session = sign_in(&server, &worker).await;
    let person = format!("/console/people/{client}");
    let (_, shown) = get(&server, &session, &person).await;
    let form: Vec<(&str, String)> = vec![
        ("csrf", hidden(&shown, "csrf")),
        ("appointment_id", hidden(&shown, "appointment_id")),
        ("version", hidden(&shown, "version")),
        ("outcome", "did_not_attend".to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page) = post_page(
        &server,
        &session,
        &format!("{person}/appointments/outcome"),
        None,
        &pairs,
    )
    .await;
    assert_eq!(status, 422, "{page}");
    let today = chrono::Utc::now().date_naive();
    assert!(
        page.contains(&format!(
            "{today} is before the appointment was booked for ({})",
            today + chrono::Duration::days(7)
        )),
        "{page}"
    );
    assert!(page.contains("id=\"appointments-error\""), "{page}");
    assert!(!page.contains("id=\"contacted_on-error\""), "{page}");

    // One booked for yesterday (by the service's clock): they did not come, the appointment
    // is settled, and the caseload counts it.
    browser
        .goto(&format!("{}/console/people/{client}", server.base))
        .await;
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d");
    browser
        .client
        .execute(
            &format!("document.getElementById('appointment_on').value = '{yesterday}';"),
            vec![],
        )
        .await
        .expect("setting the date");
    browser.click("label[for='appointment_mode']").await;
    browser.click_and_wait("#book").await;
    let cards = browser.texts("#appointments ~ .nhsuk-card h3").await;
    assert_eq!(cards.len(), 2, "{cards:?}");
    browser
        .click_and_wait("button[name='outcome'][value='did_not_attend']")
        .await;
    assert_eq!(
        browser.text(".nhsuk-notification-banner__heading").await,
        "Missed appointment recorded"
    );
    assert_eq!(
        browser.texts("#appointments ~ .nhsuk-card h3").await.len(),
        1,
        "the one still to come is left"
    );
    browser
        .assert_accessible("an appointment still to come")
        .await;
    // The person rang to cancel it: a step away from "They came".
    browser.click("#appointments ~ .nhsuk-card summary").await;
    browser
        .click_and_wait("button[name='outcome'][value='cancelled_by_client']")
        .await;
    assert_eq!(
        browser.text(".nhsuk-notification-banner__heading").await,
        "Appointment cancelled"
    );
    assert_eq!(
        browser.text("#appointments + p").await,
        "No appointment is booked."
    );
    let types = server.journey_types(client).await;
    assert!(
        types.ends_with(&[
            "AppointmentBooked".to_owned(),
            "AppointmentNotAttended".to_owned(),
            "AppointmentCancelled".to_owned()
        ]),
        "{types:?}"
    );
    server.catch_up().await;
    let caseload = server.read(&worker, "/api/v1/caseload").await;
    assert_eq!(caseload.body["items"][0]["did_not_attend"], 1);
    server.stop().await;
}

#[tokio::test]
async fn an_analyst_reads_the_outcome_report_with_its_chart_and_downloads_the_figures() {
    let server = TestServer::start().await;
    for _ in 0..6 {
        refer_new(&server, &server.people.referrer).await;
    }
    server.catch_up().await;
    let analyst = server.people.analyst.clone();
    let browser = signed_in_browser(&server, &analyst).await;
    assert_eq!(browser.path().await, "/console/reports");
    assert_eq!(browser.text("h1").await, "Outcome report");
    let referrals = browser.text("#referrals + dl").await;
    assert!(referrals.starts_with("Referrals 6\n"), "{referrals}");
    assert_eq!(
        browser.texts("#by-source-table tbody tr").await,
        ["self-referral 6 100.0"]
    );
    assert_eq!(
        browser
            .client
            .find_all(fantoccini::Locator::Css("svg.casebook-chart rect"))
            .await
            .expect("bars")
            .len(),
        1,
        "one bar, for the one source"
    );
    browser.assert_accessible("the outcome report").await;

    // A period that does not read, and one that ends before it starts, are named.
    browser
        .goto(&format!("{}/console/reports?from=2026-02-30", server.base))
        .await;
    assert_eq!(browser.error_summary().await, ["Enter a real date"]);
    browser
        .goto(&format!(
            "{}/console/reports?from=2026-03-02&to=2026-03-01",
            server.base
        ))
        .await;
    assert_eq!(browser.error_summary().await.len(), 1);
    browser.assert_accessible("a report period refused").await;

    // The same figures as a file.
    let session = sign_in(&server, &analyst).await;
    let response = plain_http()
        .get(format!("{}/console/reports/outcomes.csv", server.base))
        .header("cookie", format!("{}={session}", console::SESSION_COOKIE))
        .send()
        .await
        .expect("the file");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("attachment; filename=")),
        "{:?}",
        response.headers()
    );
    let body = response.text().await.expect("a body");
    assert!(body.contains("self_referral"), "{body}");

    // A link worker has no report.
    let worker = sign_in(&server, &server.people.worker).await;
    assert_eq!(get(&server, &worker, "/console/reports").await.0, 403);
    server.stop().await;
}

#[tokio::test]
async fn an_administrator_sees_who_is_signed_in_and_ends_a_session() {
    let server = TestServer::start().await;
    let (admin, worker) = (server.people.admin.clone(), server.people.worker.clone());
    let worker_session = sign_in(&server, &worker).await;
    let foreign = sign_in(&server, &server.people.foreign_admin).await;
    let browser = signed_in_browser(&server, &admin).await;
    assert_eq!(browser.path().await, "/console/admin");
    let live = browser.texts("#sessions-table tbody tr").await;
    assert_eq!(
        live.len(),
        2,
        "the worker's and the administrator's own, not another organisation's: {live:?}"
    );
    assert!(
        live.iter()
            .any(|r| r.contains("Wyn Worker") && r.contains("End session")),
        "{live:?}"
    );
    assert!(
        live.iter()
            .any(|r| r.contains("Adam Admin") && r.contains("This session")),
        "{live:?}"
    );
    browser.assert_accessible("the administration page").await;

    // Another organisation's administrator cannot end it.
    let foreign_page = get(&server, &foreign, "/console/admin").await.1;
    let target = {
        let admin_client = server.db.admin_client().await;
        let row = admin_client
            .query_one(
                "SELECT session_id FROM console_sessions WHERE staff_id = $1",
                &[&worker.staff_id],
            )
            .await
            .expect("the worker's session");
        row.get::<_, Uuid>(0).to_string()
    };
    let refused = post(
        &server,
        &foreign,
        "/console/admin/sessions/end",
        None,
        &[
            ("csrf", hidden(&foreign_page, "csrf").as_str()),
            ("session_id", target.as_str()),
        ],
    )
    .await;
    assert_eq!(refused, 404);
    assert_eq!(
        get(&server, &worker_session, "/console/caseload").await.0,
        200
    );

    // Ours can: the worker is signed out at their next request, and the audit says who did it.
    browser.click_and_wait("#sessions-table button").await;
    assert_eq!(
        browser.text(".nhsuk-notification-banner__heading").await,
        "Session ended"
    );
    assert_eq!(browser.texts("#sessions-table tbody tr").await.len(), 1);
    assert_eq!(
        get(&server, &worker_session, "/console/caseload").await.0,
        401
    );
    let events = browser.texts("#events-table tbody tr").await;
    assert!(
        events[0].contains("Wyn Worker")
            && events[0].contains("revoked")
            && events[0].contains("127.0.0.1"),
        "{events:?}"
    );

    // No one else administers.
    let worker_again = sign_in(&server, &worker).await;
    assert_eq!(get(&server, &worker_again, "/console/admin").await.0, 403);
    server.stop().await;
}

/// The browser tests' own net: an error in the browser's console (a failed request, a script
/// error) fails the test that reaches it, a page's own 4xx does not, and every page checked is
/// photographed under `target/console-screenshots/`.
#[tokio::test]
async fn the_browser_tests_fail_on_console_errors_and_keep_a_screenshot_of_each_page() {
    use futures_util::FutureExt;
    let server = TestServer::start().await;
    let browser = signed_in_browser(&server, &server.people.worker).await;
    // A page that is not there answers 404: the page's own status, not an error in it.
    browser
        .goto(&format!("{}/console/people/not-a-person", server.base))
        .await;
    browser.assert_accessible("a page not found").await;
    let shot = std::env::current_exe()
        .expect("the test binary")
        .ancestors()
        .nth(3)
        .expect("the target directory")
        .join("console-screenshots")
        .join("the_browser_tests_fail_on_console_errors_and_keep_a_screenshot_of_each_page--a_page_not_found.png");
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG: {}", shot.display());

    for (what, script) in [
        ("a script error", "console.error('something broke');"),
        (
            "a failed request",
            "fetch('/console/assets/missing.css').catch(() => {});",
        ),
    ] {
        browser
            .client
            .execute(script, vec![])
            .await
            .expect("running the script");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let caught = std::panic::AssertUnwindSafe(browser.assert_no_console_errors())
            .catch_unwind()
            .await;
        assert!(caught.is_err(), "{what} in the console was not caught");
    }
    browser.assert_no_console_errors().await;

    // The stylesheet goes compressed: its 271 KB arrive as about 29 KB.
    browser
        .goto(&format!("{}/console/caseload", server.base))
        .await;
    let css: Vec<(u64, u64)> = serde_json::from_value(
        browser
            .client
            .execute(
                "return performance.getEntriesByType('resource')\
                   .filter(e => e.name.endsWith('.css'))\
                   .map(e => [e.encodedBodySize, e.decodedBodySize]);",
                vec![],
            )
            .await
            .expect("the stylesheet's sizes"),
    )
    .expect("sizes");
    assert_eq!(css.len(), 1, "{css:?}");
    let (sent, whole) = css[0];
    assert!(
        sent > 0 && sent * 5 < whole,
        "sent {sent} bytes of a {whole}-byte stylesheet"
    );
    browser.assert_page_weight("a caseload").await;
    // The check counts the stylesheet: under a 20 KB limit the same page fails it.
    let caught = std::panic::AssertUnwindSafe(
        browser.assert_page_weight_under("a caseload under 20 KB", 20 * 1024),
    )
    .catch_unwind()
    .await;
    assert!(caught.is_err(), "a page over the limit was not caught");
    server.stop().await;
}

/// A WEMWBS assessment of `client` answered `answers`, `days` ago.
async fn assess(server: &TestServer, client: Uuid, timepoint: &str, answers: &[i32], days: i64) {
    server
        .ok(
            &server.people.worker,
            &super::journey::client_path(client, "assessments"),
            serde_json::json!({
                "assessment_id": Uuid::new_v4(), "instrument": "wemwbs", "instrument_version": 1,
                "timepoint": timepoint, "mode": "self_completed", "answers": answers,
                "licensor_score": null, "administered_on": super::journey::days_ago(days)
            }),
        )
        .await;
}

/// A service gap for `client`'s `need` in Frome.
async fn gap(server: &TestServer, client: Uuid, need: &str) {
    server
        .ok(
            &server.people.worker,
            &super::journey::client_path(client, "service-gaps"),
            serde_json::json!({ "gap_id": Uuid::new_v4(), "need": need, "area": "Frome",
                                "reason": "no_service_exists", "note": null }),
        )
        .await;
}

#[tokio::test]
async fn an_analyst_reads_the_service_gaps_and_two_rule_versions_side_by_side() {
    let server = TestServer::start().await;
    // Five people whose WEMWBS rose 5 points (no change under version 1's threshold of 9, an
    // improvement under version 2's 3), each with a gap in physical activity; one gap in
    // housing, too few to show.
    let mut higher = vec![2; 14];
    higher[..5].fill(3);
    for _ in 0..5 {
        let client = open_case(&server).await;
        assess(&server, client, "baseline", &[2; 14], 29).await;
        assess(&server, client, "follow_up", &higher, 0).await;
        gap(&server, client, "physical_activity").await;
    }
    gap(&server, open_case(&server).await, "housing").await;
    server.catch_up().await;
    casebook::rebuild::rebuild(
        &server.store,
        casebook::rebuild::RebuildTarget::Outcomes { rules: 2 },
        &casebook::rebuild::RebuildOptions {
            switch: false,
            ..Default::default()
        },
    )
    .await
    .expect("version 2 built beside version 1");

    let analyst = server.people.analyst.clone();
    let browser = signed_in_browser(&server, &analyst).await;
    browser
        .click_and_wait("nav[aria-label='Reports'] a[href^='/console/reports/gaps']")
        .await;
    assert_eq!(browser.text("h1").await, "Service gaps");
    assert_eq!(
        browser.texts("#gaps-by-need-table tbody tr").await,
        ["physical activity 5", "housing Suppressed"]
    );
    let bars = browser
        .client
        .find_all(fantoccini::Locator::Css("svg.casebook-chart rect"))
        .await
        .expect("bars");
    assert_eq!(
        bars.len(),
        1,
        "a bar for physical activity, none for the suppressed"
    );
    let detail = browser.texts("#gaps-table tbody tr").await;
    assert_eq!(detail.len(), 2, "{detail:?}");
    assert!(
        detail
            .iter()
            .any(|row| row.starts_with("physical activity Frome ") && row.ends_with(" 5")),
        "{detail:?}"
    );
    browser.assert_accessible("the service-gap report").await;

    // The file holds the figures the page shows.
    let link = browser.attr("a[download]", "href").await.expect("an href");
    let session = sign_in(&server, &analyst).await;
    let (status, csv) = get(&server, &session, &link).await;
    assert_eq!(status, 200, "{link}");
    assert!(
        csv.lines()
            .any(|l| l.contains("physical_activity") && l.contains(",5,")),
        "{csv}"
    );

    // Both versions side by side: by default the newest two, 2 (just built) and 3 (in use,
    // with version 1's threshold of 9).
    browser
        .click_and_wait("nav[aria-label='Reports'] a[href^='/console/reports/compare']")
        .await;
    assert_eq!(browser.text("h1").await, "Rule versions side by side");
    assert_eq!(
        browser.texts("#differences-table th").await,
        ["Figure", "Version 2", "Version 3"]
    );
    let differences = browser.texts("#differences-table tbody tr").await;
    for expected in [
        "measures.wemwbs.improved 5 0",
        "measures.wemwbs.no_change 0 5",
        "people.improved_on_any 5 0",
    ] {
        assert!(
            differences.iter().any(|row| row == expected),
            "{expected:?} not in {differences:?}"
        );
    }
    assert!(
        !differences.iter().any(|row| row.starts_with("referrals.")),
        "the same referrals under both: {differences:?}"
    );
    browser
        .assert_accessible("two rule versions side by side")
        .await;

    // A version with no figures is named at its field; what was typed is kept.
    browser
        .goto(&format!("{}/console/reports/compare?a=99&b=2", server.base))
        .await;
    let errors = browser.error_summary().await;
    assert!(
        errors.len() == 1 && errors[0].starts_with("There are no figures under rules version 99"),
        "{errors:?}"
    );
    assert_eq!(
        browser
            .client
            .find(fantoccini::Locator::Css("#a"))
            .await
            .expect("field a")
            .prop("value")
            .await
            .expect("its value"),
        Some("99".to_owned())
    );
    browser.assert_accessible("a rule version refused").await;

    // A link worker reads neither.
    let worker = sign_in(&server, &server.people.worker).await;
    for page in ["/console/reports/gaps", "/console/reports/compare"] {
        assert_eq!(get(&server, &worker, page).await.0, 403, "{page}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_team_lead_reads_the_teams_workload_against_capacity() {
    let server = TestServer::start().await;
    for _ in 0..2 {
        open_case(&server).await;
    }
    server.catch_up().await;
    let browser = signed_in_browser(&server, &server.people.lead).await;
    browser
        .click_and_wait("a.nhsuk-header__navigation-link[href='/console/workload']")
        .await;
    assert_eq!(browser.text("h1").await, "Team workload");
    let rows = browser.texts("#workload-table tbody tr").await;
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {rows:?}"))
            .clone()
    };
    // Two open cases, two people this year, against the rules' default capacity.
    let wyn = row("Wyn Worker");
    assert!(wyn.starts_with("Wyn Worker 2 0 2 "), "{wyn}");
    assert!(row("Wren Worker").starts_with("Wren Worker 0 0 0 "));
    assert!(
        !rows.iter().any(|r| r.starts_with("Ola Worker")),
        "another team's worker: {rows:?}"
    );
    browser.assert_accessible("the team's workload").await;

    // No one else reads it.
    let worker = sign_in(&server, &server.people.worker).await;
    assert_eq!(get(&server, &worker, "/console/workload").await.0, 403);
    server.stop().await;
}

/// The status of `who`'s caseload read through the API with their token.
async fn api_caseload(server: &TestServer, who: &Person) -> u16 {
    server
        .call(Some(who), "GET", "/api/v1/caseload", None, &[])
        .await
        .status
}

#[tokio::test]
async fn an_administrator_revokes_a_token_and_deactivates_an_account() {
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    let worker_session = sign_in(&server, &worker).await;
    let browser = signed_in_browser(&server, &server.people.admin).await;
    browser
        .click_and_wait(&format!(
            "#staff-table a[href='/console/admin/staff/{}']",
            worker.staff_id
        ))
        .await;
    assert_eq!(browser.text("h1").await, "Wyn Worker");
    let tokens = browser.texts("#tokens-table tbody tr").await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(tokens[0].contains("Live"), "{tokens:?}");
    browser
        .assert_accessible("a staff member's credentials")
        .await;
    assert_eq!(api_caseload(&server, &worker).await, 200);

    // The token posted from another member's page is no token of theirs: nothing revoked.
    let admin = sign_in(&server, &server.people.admin).await;
    let worker_page = format!("/console/admin/staff/{}", worker.staff_id);
    let html = get(&server, &admin, &worker_page).await.1;
    let wrong_page = format!(
        "/console/admin/staff/{}/tokens/revoke",
        server.people.worker2.staff_id
    );
    let crossed = post(
        &server,
        &admin,
        &wrong_page,
        None,
        &[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("token_id", hidden(&html, "token_id").as_str()),
        ],
    )
    .await;
    assert_eq!(crossed, 404);
    assert_eq!(api_caseload(&server, &worker).await, 200);

    browser.click_and_wait("#tokens-table button").await;
    assert_eq!(
        browser.text(".nhsuk-notification-banner__heading").await,
        "Token revoked"
    );
    assert!(
        browser.texts("#tokens-table tbody tr").await[0].contains("Revoked"),
        "the token's row says so"
    );
    assert_eq!(api_caseload(&server, &worker).await, 401);

    // Deactivated, the worker's console session ends at their next request.
    assert_eq!(
        get(&server, &worker_session, "/console/caseload").await.0,
        200
    );
    browser.click_and_wait("#deactivate").await;
    assert_eq!(
        browser.text(".nhsuk-notification-banner__heading").await,
        "Account deactivated"
    );
    assert_eq!(
        get(&server, &worker_session, "/console/caseload").await.0,
        401
    );
    browser.assert_accessible("a deactivated account").await;

    // Another organisation's administrator cannot see them, nor can a link worker.
    let foreign = sign_in(&server, &server.people.foreign_admin).await;
    let page = format!("/console/admin/staff/{}", worker.staff_id);
    assert_eq!(get(&server, &foreign, &page).await.0, 404);
    let colleague = sign_in(&server, &server.people.worker2).await;
    assert_eq!(get(&server, &colleague, &page).await.0, 403);
    // Nor change them: a revoke-all from the other organisation is refused, with its token.
    let foreign_page = get(&server, &foreign, "/console/admin").await.1;
    let refused = post(
        &server,
        &foreign,
        &format!("{page}/revoke-all"),
        None,
        &[("csrf", hidden(&foreign_page, "csrf").as_str())],
    )
    .await;
    assert_eq!(refused, 404);
    server.stop().await;
}

/// A contact the application refuses (dated days ahead) comes back on the person's page with
/// the refusal at its field and what was typed kept, not a blank form.
#[tokio::test]
async fn a_refused_contact_comes_back_as_typed() {
    let clock = app::Clock::system();
    let server = TestServer::start_with_clock(clock.clone()).await;
    let client = open_case(&server).await;
    let session = sign_in(&server, &server.people.worker).await;
    let person = format!("/console/people/{client}");
    let (status, page) = get(&server, &session, &person).await;
    assert_eq!(status, 200);
    let csrf = hidden(&page, "csrf");
    let ahead = (clock.now() + chrono::Duration::days(3))
        .format("%Y-%m-%d")
        .to_string();
    let (status, page) = post_page(
        &server,
        &session,
        &format!("{person}/contacts"),
        None,
        &[
            ("csrf", csrf.as_str()),
            ("contact_id", &Uuid::new_v4().to_string()),
            ("mode", "phone"),
            ("minutes", "47"),
            ("contacted_on", ahead.as_str()),
            ("contacted_time", "10:15"),
            ("note", "Talked about the allotment zq7kept"),
        ],
    )
    .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("contacted_on-error"), "{page}");
    assert!(page.contains("value=\"47\""), "{page}");
    assert!(page.contains(&format!("value=\"{ahead}\"")), "{page}");
    assert!(
        page.contains("Talked about the allotment zq7kept"),
        "{page}"
    );
    server.stop().await;
}

/// The pages a link worker, a team lead and an administrator use most fit a phone's screen
/// (375 pixels wide): a wide table scrolls within its own box, named for its table, and no
/// page is wider than the screen.
#[tokio::test]
async fn the_busiest_pages_fit_a_phone_screen() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let client = open_case(&server).await;
    let soon = chrono::Utc::now() + chrono::Duration::days(2);
    server
        .ok(
            &people.worker,
            &format!("/api/v1/clients/{client}/appointments"),
            serde_json::json!({ "appointment_id": Uuid::new_v4(), "scheduled_for": soon,
                                "mode": "face_to_face" }),
        )
        .await;
    server
        .ok(
            &people.worker,
            "/api/v1/tasks",
            serde_json::json!({ "task_id": Uuid::new_v4(), "kind": "call_back",
                                "client_id": client, "due_on": soon.date_naive() }),
        )
        .await;
    refer_new(&server, &people.referrer).await;
    server.catch_up().await;
    for (who, paths) in [
        (
            &people.worker,
            vec![
                "/console/caseload".to_owned(),
                "/console/tasks".to_owned(),
                format!("/console/people/{client}"),
            ],
        ),
        (
            &people.lead,
            vec![
                "/console/triage".to_owned(),
                "/console/workload".to_owned(),
                "/console/caseload".to_owned(),
            ],
        ),
        (&people.admin, vec!["/console/admin".to_owned()]),
        (
            &people.analyst,
            vec![
                "/console/reports".to_owned(),
                "/console/reports/gaps".to_owned(),
            ],
        ),
    ] {
        let browser = signed_in_browser(&server, who).await;
        for path in paths {
            // Each time: the accessibility check's screenshot widens the window again.
            browser
                .client
                .set_window_size(375, 800)
                .await
                .expect("a phone's width");
            browser.goto(&format!("{}{path}", server.base)).await;
            let widths = browser
                .client
                .execute(
                    "return [document.documentElement.scrollWidth, window.innerWidth];",
                    vec![],
                )
                .await
                .expect("the widths");
            let page = widths[0].as_i64().expect("a width");
            let screen = widths[1].as_i64().expect("a width");
            assert!(
                page <= screen,
                "{path} is {page} pixels wide on a {screen}-pixel screen"
            );
            // Each scrolling box is a region named for its table, no two alike.
            let labels = browser
                .client
                .execute(
                    "return Array.from(document.querySelectorAll('.nhsuk-table-container'))\
                       .map(e => e.getAttribute('aria-label'));",
                    vec![],
                )
                .await
                .expect("the labels");
            let labels: Vec<&str> = labels
                .as_array()
                .expect("a list")
                .iter()
                .map(|l| l.as_str().unwrap_or_default())
                .collect();
            let mut unique = labels.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), labels.len(), "{path}: {labels:?}");
            assert!(labels.iter().all(|l| !l.is_empty()), "{path}: {labels:?}");
            browser
                .assert_accessible(&format!("{path} on a phone"))
                .await;
        }
    }
    server.stop().await;
}

/// Paper notes typed up long after: a team lead enters a contact from past the back-entry
/// window, saying why, and the log keeps the reason beside it; without one it is refused at
/// the date, saying what is needed; a link worker's form has no such field.
#[tokio::test]
async fn a_team_lead_types_up_an_old_contact_saying_why_it_is_late() {
    use super::journey::{accept, assign, client_path, days_ago, named_referral};
    let server = TestServer::start().await;
    let people = server.people.clone();
    let (client, referral) = (Uuid::new_v4(), Uuid::new_v4());
    // Referred 200 days ago, entered then late by the lead (as a team lead may).
    let mut body = named_referral(
        ("Ida", "Long"),
        "Frome",
        referral,
        "self_referral",
        Value::String(days_ago(200)),
    );
    body["late_entry_reason"] = Value::String("from the paper register".to_owned());
    server
        .ok(&people.lead, &client_path(client, "referrals"), body)
        .await;
    accept(&server, &people.lead, client, referral).await;
    assert_eq!(assign(&server, client, &people.worker).await.status, 201);
    server.catch_up().await;
    let person = format!("{}/console/people/{client}", server.base);

    let worker = signed_in_browser(&server, &people.worker).await;
    worker.goto(&person).await;
    assert!(worker.texts("#late_entry_reason").await.is_empty());
    drop(worker);

    let lead = signed_in_browser(&server, &people.lead).await;
    lead.goto(&person).await;
    let old = days_ago(120);
    let fill = async |reason: &str| {
        lead.client
            .execute(
                &format!("document.getElementById('contacted_on').value = '{old}';"),
                vec![],
            )
            .await
            .expect("the date");
        lead.click("label[for='mode']").await;
        lead.fill("minutes", "20").await;
        lead.fill("late_entry_reason", reason).await;
        lead.click_and_wait("#record-contact").await;
    };
    fill("").await;
    let problems = lead.error_summary().await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("only a team lead may enter it, saying why"),
        "{problems:?}"
    );
    lead.assert_accessible("a late contact without its reason")
        .await;
    fill("Typed up from the outreach clinic's paper register").await;
    assert_eq!(banner(&lead).await, "Contact recorded");
    let types = server.journey_types(client).await;
    assert!(
        types.ends_with(&[
            "LateEntryExplained".to_owned(),
            "ContactRecorded".to_owned()
        ]),
        "{types:?}"
    );
    let entries = server.journey_entries(client).await;
    let explained = entries
        .iter()
        .rev()
        .find(|e| e["event_type"] == "LateEntryExplained")
        .expect("the contact's reason");
    assert_eq!(
        explained["payload"]["reason"],
        "Typed up from the outreach clinic's paper register"
    );
    server.stop().await;
}
