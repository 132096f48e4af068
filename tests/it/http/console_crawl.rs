//! Every console page each role can reach, found by following the links and GET forms of the
//! pages themselves from where the role lands after signing in (issue #17): each page loads
//! without an error in the browser's console, is under 300 KB as sent, has no WCAG 2.2 A or AA
//! violation by axe-core and is photographed under `target/console-screenshots/`; each chart's
//! figures are in the table after it; a link never
//! leads to a page the role may not see, nor a GET form to a server error. Every form that
//! changes anything (POST) carries the session's CSRF token, and each is refused, with nothing
//! written, when sent without it, with another token, or from another site.

use std::collections::{BTreeSet, HashSet, VecDeque};

use serde_json::{Value, json};
use uuid::Uuid;

use super::console::{get, post_page, sign_in_code, signed_in_browser};
use super::journey::{client_path, open_case, referred};
use super::{Person, TestServer};
use crate::browser::Browser;

/// More pages than any role has: a crawl that reaches it has found a loop of new addresses.
const MOST_PAGES: usize = 80;

/// A POST form as the page shows it: where it goes and what it sends unless changed.
#[derive(Clone, Debug)]
struct PostForm {
    page: String,
    action: String,
    fields: Vec<(String, String)>,
}

/// What a crawl found.
struct Crawl {
    browser: Browser,
    /// Each page's kind (its path with ids as `{id}`, and its query's names), in visiting order.
    kinds: Vec<String>,
    /// One of each kind of POST form (by its action's kind).
    posts: Vec<PostForm>,
    /// How many charts the pages drew (each checked against the table after it).
    charts: u64,
}

/// The kind of page `path_and_query` is: ids as `{id}`, the query's names without values.
fn kind(path_and_query: &str) -> String {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let path: Vec<&str> = path
        .split('/')
        .map(|part| {
            if Uuid::try_parse(part).is_ok() {
                "{id}"
            } else {
                part
            }
        })
        .collect();
    let names: BTreeSet<&str> = query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .filter(|name| !name.is_empty())
        .collect();
    let mut kind = path.join("/");
    if !names.is_empty() {
        kind.push('?');
        kind.push_str(&names.into_iter().collect::<Vec<_>>().join("&"));
    }
    kind
}

/// The page's own HTTP status, as the browser received it.
async fn status(browser: &Browser) -> u64 {
    browser
        .client
        .execute(
            "return performance.getEntriesByType('navigation')[0].responseStatus;",
            vec![],
        )
        .await
        .expect("reading the page's status")
        .as_u64()
        .expect("the browser reports a page's status")
}

/// How many charts the page draws, and every figure of a chart that the table after it does
/// not hold (by its label in the first column: the same count, or the same percentage to one
/// place that the chart rounds to a whole one).
async fn charts_without_their_table(browser: &Browser) -> (u64, Vec<String>) {
    let found = browser
        .client
        .execute(
            "const problems = []; let charts = 0;\
             for (const svg of document.querySelectorAll('svg.casebook-chart')) {\
               charts++;\
               const title = (svg.querySelector('title') || {}).textContent;\
               const table = Array.from(document.querySelectorAll('table'))\
                 .find(t => svg.compareDocumentPosition(t) & Node.DOCUMENT_POSITION_FOLLOWING);\
               if (!table) { problems.push(`no table after the chart ${title}`); continue; }\
               const rows = Array.from(table.querySelectorAll('tbody tr'))\
                 .map(r => Array.from(r.cells).map(c => c.textContent.trim().toLowerCase()));\
               const byRow = new Map();\
               for (const t of svg.querySelectorAll('text')) {\
                 const y = t.getAttribute('y');\
                 byRow.set(y, (byRow.get(y) || []).concat([t]));\
               }\
               for (const texts of byRow.values()) {\
                 const label = texts.find(t => t.getAttribute('x') === '0');\
                 const value = texts.find(t => t.getAttribute('x') !== '0');\
                 if (!label || !value) { problems.push(`a bar of ${title} without its label or figure`); continue; }\
                 const l = label.textContent.trim().toLowerCase();\
                 const v = value.textContent.trim().toLowerCase();\
                 const same = c => c === v || (c !== '' && !isNaN(Number(c)) && String(Math.round(Number(c))) === v);\
                 if (!rows.some(cells => cells[0] === l && cells.slice(1).some(same))) {\
                   problems.push(`${title}: ${l} ${v} is not in the table ${table.id}`);\
                 }\
               }\
             }\
             return {charts: charts, problems: problems};",
            vec![],
        )
        .await
        .expect("reading the charts");
    let problems = found["problems"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    (found["charts"].as_u64().expect("a count"), problems)
}

/// The page's links to other console pages (not downloads), as paths with their queries.
async fn links(browser: &Browser, origin: &str) -> Vec<String> {
    let found = browser
        .client
        .execute(
            "return Array.from(document.querySelectorAll('a[href]'))\
               .filter(a => !a.hasAttribute('download'))\
               .map(a => a.href);",
            vec![],
        )
        .await
        .expect("reading the links");
    same_site_pages(&found, origin)
}

/// Where the page's GET forms lead when sent as shown (each field's value as the page has it).
async fn get_forms(browser: &Browser, origin: &str) -> Vec<String> {
    let found = browser
        .client
        .execute(
            "return Array.from(document.querySelectorAll('form'))\
               .filter(f => (f.getAttribute('method') || 'get').toLowerCase() === 'get')\
               .map(f => { const u = new URL(f.getAttribute('action') || '', location.href); \
                 u.search = new URLSearchParams(new FormData(f)).toString(); return u.href; });",
            vec![],
        )
        .await
        .expect("reading the GET forms");
    same_site_pages(&found, origin)
}

/// The page's POST forms.
async fn post_forms(browser: &Browser, page: &str) -> Vec<PostForm> {
    let found = browser
        .client
        .execute(
            "return Array.from(document.querySelectorAll('form'))\
               .filter(f => (f.getAttribute('method') || '').toLowerCase() === 'post')\
               .map(f => ({action: new URL(f.getAttribute('action') || '', location.href).pathname, \
                           fields: Array.from(new FormData(f).entries())}));",
            vec![],
        )
        .await
        .expect("reading the POST forms");
    found
        .as_array()
        .expect("a list of forms")
        .iter()
        .map(|form| PostForm {
            page: page.to_owned(),
            action: form["action"].as_str().expect("an action").to_owned(),
            fields: form["fields"]
                .as_array()
                .expect("fields")
                .iter()
                .map(|pair| {
                    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                    (text(&pair[0]), text(&pair[1]))
                })
                .collect(),
        })
        .collect()
}

/// The console's pages among `urls` (absolute), as paths with their queries; no fragments,
/// no CSV files.
fn same_site_pages(urls: &Value, origin: &str) -> Vec<String> {
    urls.as_array()
        .expect("a list of addresses")
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|url| url::Url::parse(url).ok())
        .filter(|url| url.origin().ascii_serialization() == origin)
        .filter(|url| url.path().starts_with("/console") && !url.path().ends_with(".csv"))
        .map(|url| match url.query() {
            Some(q) if !q.is_empty() => format!("{}?{q}", url.path()),
            _ => url.path().to_owned(),
        })
        .collect()
}

/// Signs `who` in and visits every console page reachable from where they land, and from
/// `seeds` (visited first, whatever their kind): each page of a kind not yet seen is checked
/// (its status, the browser's console, its weight, axe-core, a screenshot) and its links and
/// GET forms followed.
async fn crawl(server: &TestServer, who: &Person, role: &str, seeds: &[String]) -> Crawl {
    let browser = signed_in_browser(server, who).await;
    let origin = url::Url::parse(&server.base)
        .expect("the base")
        .origin()
        .ascii_serialization();
    let landing = browser.path().await;
    // (address, from a link: else from a GET form, whose defaults the server may refuse)
    let mut queue: VecDeque<(String, bool, bool)> = VecDeque::new();
    for seed in seeds {
        queue.push_back((seed.clone(), true, true));
    }
    queue.push_back((landing, true, false));
    let mut seen = HashSet::new();
    let mut kinds = Vec::new();
    let mut posts: Vec<PostForm> = Vec::new();
    let mut post_kinds = HashSet::new();
    let mut charts = 0;
    while let Some((path, linked, seeded)) = queue.pop_front() {
        let page_kind = kind(&path);
        // A seed is visited whatever its kind, and leaves its kind to be found by the crawl too.
        if !seeded && !seen.insert(page_kind.clone()) {
            continue;
        }
        assert!(
            kinds.len() < MOST_PAGES,
            "{role}: more than {MOST_PAGES} kinds of page: {kinds:#?}"
        );
        browser.goto(&format!("{}{path}", server.base)).await;
        let code = status(&browser).await;
        if linked {
            assert_eq!(code, 200, "{role}: a link leads to {path}, answered {code}");
        } else {
            assert!(
                code < 500,
                "{role}: a GET form as shown leads to {path}, answered {code}"
            );
        }
        browser
            .assert_accessible(&format!("{role} {:02} {page_kind}", kinds.len()))
            .await;
        let (drawn, problems) = charts_without_their_table(&browser).await;
        assert!(problems.is_empty(), "{role}: on {path}: {problems:#?}");
        charts += drawn;
        kinds.push(page_kind);
        for form in post_forms(&browser, &path).await {
            if form.action != "/console/sign-in" {
                let token = form.fields.iter().find(|(name, _)| name == "csrf");
                assert!(
                    token.is_some_and(|(_, value)| value.len() >= 32),
                    "{role}: a form on {path} to {} has no CSRF token: {:?}",
                    form.action,
                    form.fields
                );
            }
            if post_kinds.insert(kind(&form.action)) {
                posts.push(form);
            }
        }
        for link in links(&browser, &origin).await {
            queue.push_back((link, true, false));
        }
        for sent in get_forms(&browser, &origin).await {
            queue.push_back((sent, false, false));
        }
    }
    eprintln!("{role} visited {} kinds of page: {kinds:#?}", kinds.len());
    Crawl {
        browser,
        kinds,
        posts,
        charts,
    }
}

/// Fails unless the crawl reached each kind of page in `expected`.
fn assert_reached(role: &str, crawl: &Crawl, expected: &[&str]) {
    let missing: Vec<&&str> = expected
        .iter()
        .filter(|k| {
            !crawl
                .kinds
                .iter()
                .any(|seen| seen == *k || seen.starts_with(&format!("{k}?")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{role} never reached {missing:?}; reached {:#?}",
        crawl.kinds
    );
}

/// How many events, session events and tasks the database holds.
async fn written(server: &TestServer) -> (i64, i64, i64) {
    let admin = server.db.admin_client().await;
    let count = |table: &str| format!("SELECT count(*) FROM {table}");
    (
        testkit::query_value(&admin, &count("events"), &[]).await,
        testkit::query_value(&admin, &count("session_events"), &[]).await,
        testkit::query_value(&admin, &count("tasks"), &[]).await,
    )
}

/// Sends each POST form the crawl found, as the page has it but without its CSRF token, with
/// another token, and with its token from another site: each is refused (403, "Form refused")
/// and nothing is written; the session is still signed in after.
async fn assert_forms_refused_without_their_token(server: &TestServer, role: &str, crawl: &Crawl) {
    let session = crawl
        .browser
        .cookie(console::SESSION_COOKIE)
        .await
        .expect("the browser's session");
    let before = written(server).await;
    for form in &crawl.posts {
        let without: Vec<(&str, &str)> = form
            .fields
            .iter()
            .filter(|(name, _)| name != "csrf")
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let mut other = without.clone();
        other.push(("csrf", "0123456789abcdef0123456789abcdef0123456789abcdef"));
        let with: Vec<(&str, &str)> = form
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if form.action == "/console/sign-in" {
            continue;
        }
        for (how, fields, origin) in [
            ("without its token", &without, None),
            ("with another token", &other, None),
            (
                "from another site",
                &with,
                Some("https://elsewhere.example"),
            ),
        ] {
            let (status, page) = post_page(server, &session, &form.action, origin, fields).await;
            assert_eq!(
                status, 403,
                "{role}: the form on {} to {} was not refused {how}: {page}",
                form.page, form.action
            );
            assert!(page.contains("Form refused"), "{page}");
        }
    }
    assert_eq!(
        written(server).await,
        before,
        "{role}: a refused form wrote something"
    );
    let (status, _) = get(server, &session, "/console").await;
    assert!(
        status == 200 || status == 303,
        "{role}: still signed in after the refused forms ({status})"
    );
    eprintln!(
        "{role}: {} kinds of POST form refused without their token: {:#?}",
        crawl.posts.len(),
        crawl.posts.iter().map(|f| &f.action).collect::<Vec<_>>()
    );
}

/// A person on the worker's caseload with a contact, a home visit to come with its lone-working
/// plan and one without, a need and a goal, a note, an open safeguarding concern, a connection to the
/// provider's service and a task; and a referral waiting for the lead. The two people's ids.
async fn seeded(server: &TestServer, clock: &app::Clock) -> (Uuid, Uuid) {
    let people = &server.people;
    let client = open_case(server).await;
    let now = clock.now();
    let today = now.date_naive();
    let (visit, visit_at) = (Uuid::new_v4(), now + chrono::Duration::days(3));
    for (path, body) in [
        (
            "contacts",
            json!({ "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 20,
                    "contacted_at": now - chrono::Duration::hours(2), "note": null }),
        ),
        (
            "appointments",
            json!({ "appointment_id": visit, "mode": "home_visit", "scheduled_for": visit_at }),
        ),
        (
            "appointments",
            json!({ "appointment_id": Uuid::new_v4(), "mode": "home_visit",
                    "scheduled_for": visit_at + chrono::Duration::days(1) }),
        ),
        (
            "lone-working-plans",
            json!({ "appointment_id": visit, "address_note": "Flat 2, side door",
                    "check_in_by": visit_at + chrono::Duration::hours(1),
                    "buddy_staff_id": people.lead.staff_id, "known_risks": null }),
        ),
        (
            "needs",
            json!({ "need": "loneliness_isolation", "note": null }),
        ),
        (
            "goals",
            json!({ "goal_id": Uuid::new_v4(), "description": "Join the choir",
                    "need": "loneliness_isolation" }),
        ),
        (
            "notes",
            json!({ "note_id": Uuid::new_v4(), "text": "Knock twice", "important": true }),
        ),
        (
            "safeguarding-concerns",
            json!({ "concern_id": Uuid::new_v4(), "category": "self_neglect",
                    "details": "No heating", "told": "Safeguarding lead",
                    "told_at": now - chrono::Duration::hours(1), "outcome": null }),
        ),
        (
            "consents",
            json!({ "scope": "share_with_onward_services", "services": [] }),
        ),
        (
            "connections",
            json!({ "connection_id": Uuid::new_v4(), "service_id": server.provider_services[0],
                    "need": "loneliness_isolation", "kind": "referred" }),
        ),
    ] {
        server
            .ok(&people.worker, &client_path(client, path), body)
            .await;
    }
    // A second connection to the provider's service, which they have accepted (to say next
    // whether the person started).
    let accepted = Uuid::new_v4();
    server
        .ok(
            &people.worker,
            &client_path(client, "connections"),
            json!({ "connection_id": accepted, "service_id": server.provider_services[0],
                    "need": "money_benefits_debt", "kind": "referred" }),
        )
        .await;
    server
        .ok(
            &people.provider,
            &format!("/api/v1/provider/clients/{client}/connection-acceptances"),
            json!({ "connection_id": accepted }),
        )
        .await;
    server
        .ok(
            &people.worker,
            "/api/v1/tasks",
            json!({ "task_id": Uuid::new_v4(), "kind": "review_plan", "client_id": client,
                    "due_on": today + chrono::Duration::days(2) }),
        )
        .await;
    let (waiting, _) = referred(server).await;
    server.catch_up().await;
    (client, waiting)
}

#[tokio::test]
async fn every_page_a_link_worker_reaches_is_accessible_light_and_its_forms_need_the_token() {
    let clock = app::Clock::system();
    let server = TestServer::start_with_clock(clock.clone()).await;
    let (client, _) = seeded(&server, &clock).await;
    let person = format!("/console/people/{client}");
    let crawl = crawl(
        &server,
        &server.people.worker,
        "worker",
        &[
            format!("{person}/assessment?instrument=swemwbs"),
            format!("{person}/connect?q=&need=loneliness_isolation&area="),
        ],
    )
    .await;
    assert_reached(
        "worker",
        &crawl,
        &[
            "/console/caseload",
            "/console/people/{id}",
            "/console/people/{id}/plan",
            "/console/people/{id}/assessment",
            "/console/people/{id}/assessment?instrument",
            "/console/people/{id}/connect",
            "/console/people/{id}/close",
            "/console/people/{id}/demographics",
            "/console/people/{id}/gap",
            "/console/people/{id}/lone-working?appointment_id",
            "/console/people/{id}/notes/new",
            "/console/people/{id}/safeguarding/new",
            "/console/people/{id}/safeguarding/update?concern_id",
            "/console/caseload?tag",
            "/console/tasks",
        ],
    );
    assert_forms_refused_without_their_token(&server, "worker", &crawl).await;
    server.stop().await;
}

#[tokio::test]
async fn every_page_a_team_lead_reaches_is_accessible_light_and_its_forms_need_the_token() {
    let clock = app::Clock::system();
    let server = TestServer::start_with_clock(clock.clone()).await;
    let (client, waiting) = seeded(&server, &clock).await;
    // The person whose referral waits, as the triage queue leads to them, and the open case
    // with its concern, as the team's caseload does.
    let crawl = crawl(
        &server,
        &server.people.lead,
        "lead",
        &[
            format!("/console/people/{waiting}"),
            format!("/console/people/{client}"),
        ],
    )
    .await;
    assert!(
        crawl.charts >= 2,
        "the lead's workload and reports draw charts"
    );
    assert_reached(
        "lead",
        &crawl,
        &[
            "/console/caseload",
            "/console/triage",
            "/console/workload",
            "/console/people/{id}",
            "/console/people/{id}/redirect",
            "/console/people/{id}/safeguarding/close?concern_id",
            "/console/tasks",
        ],
    );
    assert_forms_refused_without_their_token(&server, "lead", &crawl).await;
    server.stop().await;
}

#[tokio::test]
async fn every_page_an_auditor_analyst_provider_or_referrer_reaches_is_accessible_and_light() {
    let clock = app::Clock::system();
    let server = TestServer::start_with_clock(clock.clone()).await;
    let (client, _) = seeded(&server, &clock).await;
    let _projectors = server.run_projectors().await;
    let people = server.people.clone();

    let auditor = crawl(
        &server,
        &people.auditor,
        "auditor",
        &[format!("/console/audit?client_id={client}")],
    )
    .await;
    assert_reached(
        "auditor",
        &auditor,
        &["/console/audit", "/console/audit?client_id"],
    );
    assert_forms_refused_without_their_token(&server, "auditor", &auditor).await;
    drop(auditor);

    let analyst = crawl(&server, &people.analyst, "analyst", &[]).await;
    assert!(analyst.charts > 0, "the analyst's reports draw charts");
    assert_reached(
        "analyst",
        &analyst,
        &[
            "/console/reports",
            "/console/reports/gaps",
            "/console/reports/compare",
            "/console/reports/breakdown",
        ],
    );
    // With one version of the counting rules, the comparison says there is nothing to compare
    // yet: a page, not a problem with the form.
    analyst
        .browser
        .goto(&format!("{}/console/reports/compare", server.base))
        .await;
    assert_eq!(status(&analyst.browser).await, 200);
    assert!(
        analyst
            .browser
            .text("#nothing-to-compare")
            .await
            .contains("nothing to compare yet")
    );
    assert_forms_refused_without_their_token(&server, "analyst", &analyst).await;
    drop(analyst);

    let provider = crawl(&server, &people.provider, "provider", &[]).await;
    assert_reached("provider", &provider, &["/console/provider"]);
    for answer in ["accept", "decline", "start"] {
        assert!(
            provider
                .posts
                .iter()
                .any(|f| f.action.ends_with(&format!("/{answer}"))),
            "the provider's {answer} form was found"
        );
    }
    assert_forms_refused_without_their_token(&server, "provider", &provider).await;
    drop(provider);

    let referrer = crawl(&server, &people.referrer, "referrer", &[]).await;
    assert_reached("referrer", &referrer, &["/console"]);
    assert_forms_refused_without_their_token(&server, "referrer", &referrer).await;
    drop(referrer);
    server.stop().await;
}

#[tokio::test]
async fn every_page_an_administrator_reaches_is_accessible_light_and_its_forms_need_the_token() {
    let clock = app::Clock::system();
    let server = TestServer::start_with_clock(clock.clone()).await;
    let (client, _) = seeded(&server, &clock).await;
    // A colleague signed in, so there is a session to end; a GP message and a reminder not
    // delivered, so there is one of each to replay.
    super::console::sign_in(&server, &server.people.worker).await;
    let dead = super::gp_messages::dead_letter(&server, server.people.admin.organisation_id).await;
    let dead_reminder = Uuid::new_v4();
    server
        .db
        .admin_client()
        .await
        .execute(
            "INSERT INTO reminder_outbox (message_id, organisation_id, client_id, appointment_id, \
             booked_event_id, scheduled_for, rules_version, status, attempts, next_attempt_at, \
             last_error) VALUES ($1, $2, $3, $4, $5, $6, 1, 'dead', 12, $6, \
             'the notification service answered 400')",
            &[
                &dead_reminder,
                &server.people.admin.organisation_id,
                &client,
                &Uuid::new_v4(),
                &Uuid::new_v4(),
                &(clock.now() + chrono::Duration::days(2)),
            ],
        )
        .await
        .expect("a dead reminder");
    let crawl = crawl(&server, &server.people.admin, "admin", &[]).await;
    assert_reached(
        "admin",
        &crawl,
        &[
            "/console/admin",
            "/console/admin/teams",
            "/console/admin/staff/{id}",
            "/console/admin/gp-messages",
            "/console/admin/reminders",
        ],
    );
    assert!(
        crawl
            .posts
            .iter()
            .any(|f| f.action == "/console/admin/sessions/end"),
        "the form ending a session was found"
    );
    assert!(
        crawl
            .posts
            .iter()
            .any(|f| f.action == "/console/admin/gp-messages/replay"),
        "the form replaying a dead letter was found"
    );
    assert!(
        crawl
            .posts
            .iter()
            .any(|f| f.action == "/console/admin/reminders/replay"),
        "the form replaying a reminder was found"
    );
    assert_forms_refused_without_their_token(&server, "admin", &crawl).await;
    let status: String = testkit::query_value(
        &server.db.admin_client().await,
        "SELECT status FROM gp_outbox WHERE message_id = $1",
        &[&dead],
    )
    .await;
    assert_eq!(status, "dead", "a refused replay replays nothing");
    let status: String = testkit::query_value(
        &server.db.admin_client().await,
        "SELECT status FROM reminder_outbox WHERE message_id = $1",
        &[&dead_reminder],
    )
    .await;
    assert_eq!(status, "dead", "a refused replay replays nothing");
    server.stop().await;
}

/// The pages seen before signing in: the sign-in page, a link's page with its one button, the
/// page saying a session has ended; each accessible and light. The session cookie's flags. The sign-in form carries no session token (there
/// is no session yet) but is refused from another site.
#[tokio::test]
async fn the_pages_before_signing_in_are_accessible_and_light() {
    let server = TestServer::start().await;
    let browser = Browser::start().await;
    let code = sign_in_code(&server, &server.people.worker).await;
    for (what, path) in [
        ("the sign-in page", "/console".to_owned()),
        (
            "a sign-in link's page",
            format!("/console/sign-in?code={code}"),
        ),
    ] {
        browser.goto(&format!("{}{path}", server.base)).await;
        assert_eq!(status(&browser).await, 200, "{what}");
        browser.assert_accessible(what).await;
    }
    // A session that has ended (here, one that never was): the page says so, to sign in again.
    browser
        .client
        .execute(
            "document.cookie = arguments[0] + '=cbs_ended; path=/console';",
            vec![console::SESSION_COOKIE.into()],
        )
        .await
        .expect("a cookie");
    browser
        .goto(&format!("{}/console/caseload", server.base))
        .await;
    assert_eq!(status(&browser).await, 401);
    assert!(
        browser
            .text(".nhsuk-main-wrapper, main")
            .await
            .contains("Your session has ended")
    );
    browser.assert_accessible("a session ended").await;
    let refused = super::console::plain_http()
        .post(format!("{}/console/sign-in", server.base))
        .header("origin", "https://elsewhere.example")
        .form(&[("code", code.as_str())])
        .send()
        .await
        .expect("a request");
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("set-cookie").is_none());

    // Served over TLS (behind a proxy that says so), the session cookie is also `Secure`; over
    // plain HTTP (this test's own address) it cannot be.
    for (tls, secure) in [(true, true), (false, false)] {
        let code = sign_in_code(&server, &server.people.worker).await;
        let mut request = super::console::plain_http()
            .post(format!("{}/console/sign-in", server.base))
            .form(&[("code", code.as_str())]);
        if tls {
            request = request.header("x-forwarded-proto", "https");
        }
        let signed_in = request.send().await.expect("a request");
        assert_eq!(signed_in.status(), 303);
        let cookie = signed_in.headers()["set-cookie"]
            .to_str()
            .expect("a cookie")
            .to_owned();
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
            assert!(cookie.contains(flag), "{flag} missing from {cookie}");
        }
        assert_eq!(cookie.contains("; Secure"), secure, "{cookie}");
    }
    server.stop().await;
}

/// The pages that refuse are pages too: a page of another role's (403), a person who is not
/// there (404), and a form sent from a page without its token (403, "Form refused": a form
/// of the page itself, sent by the browser), each accessible and light; the refused form
/// wrote nothing.
#[tokio::test]
async fn refusals_are_accessible_pages_and_a_form_without_its_token_writes_nothing() {
    let clock = app::Clock::system();
    let server = TestServer::start_with_clock(clock.clone()).await;
    let (client, _) = seeded(&server, &clock).await;
    let browser = signed_in_browser(&server, &server.people.worker).await;
    for (what, path, expected) in [
        ("another role's page", "/console/admin".to_owned(), 403),
        ("another role's report", "/console/reports".to_owned(), 403),
        (
            "nobody there",
            format!("/console/people/{}", Uuid::new_v4()),
            404,
        ),
    ] {
        browser.goto(&format!("{}{path}", server.base)).await;
        assert_eq!(status(&browser).await, expected, "{what}");
        browser.assert_accessible(what).await;
    }
    browser
        .goto(&format!("{}/console/people/{client}", server.base))
        .await;
    let before = written(&server).await;
    browser.click("label[for='mode']").await;
    browser
        .client
        .execute(
            "document.getElementById('minutes').value = '20'; \
             document.querySelector(\"form[action$='/contacts'] input[name='csrf']\").remove();",
            vec![],
        )
        .await
        .expect("taking the token out");
    browser.click_and_wait("#record-contact").await;
    assert_eq!(status(&browser).await, 403);
    assert_eq!(browser.text("h1").await, "Form refused");
    browser.assert_accessible("a form refused").await;
    assert_eq!(written(&server).await, before, "nothing was written");
    server.stop().await;
}
