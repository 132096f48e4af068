//! The web console's onward connections: a link worker searches the directory, connects the
//! person, records what came of it, records a service gap and closes the case, in a browser with
//! every page checked by axe-core; a team lead redirects a referral; and over plain HTTP, the
//! forms refused (bad input shown again as typed, another organisation, no CSRF token).

use serde_json::Value;
use uuid::Uuid;

use super::console::{banner, get, hidden, post_page, sign_in, signed_in_browser};
use super::journey::{open_case, refer_new};
use super::{Person, TestServer};

/// Every entry of `client`'s journey of `event_type`, its payload, as the auditor reads it.
async fn payloads(server: &TestServer, client: Uuid, event_type: &str) -> Vec<Value> {
    let path = format!("/api/v1/clients/{client}/journey?limit=500");
    let reply = server.read(&server.people.auditor, &path).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let entries = reply.body["entries"].as_array().expect("entries").clone();
    entries
        .into_iter()
        .filter(|e| e["event_type"] == event_type)
        .map(|e| e["payload"].clone())
        .collect()
}

#[tokio::test]
async fn a_link_worker_connects_the_person_records_the_outcome_and_a_gap_and_closes_the_case() {
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    let client = open_case(&server).await;
    server.catch_up().await;
    let clinic = server.services[0];
    let browser = signed_in_browser(&server, &worker).await;
    let person = format!("{}/console/people/{client}", server.base);
    browser.goto(&person).await;
    assert_eq!(
        browser.text("#connections + p").await,
        "No onward connection yet."
    );

    // The search, on the connect page: words and a need, the person's area cleared.
    browser.click_and_wait("#connect").await;
    assert_eq!(browser.text("h1").await, "Connect to a service");
    assert_eq!(
        browser.path().await,
        format!("/console/people/{client}/connect")
    );
    browser.assert_accessible("the directory search").await;
    browser.fill("q", "benefits").await;
    browser.fill("area", "").await;
    browser.select("#need", "money_benefits_debt").await;
    browser.click_and_wait("#search").await;
    let found = browser.texts(".nhsuk-card h3").await;
    assert!(
        found.iter().any(|n| n == "Coleford Benefits Check Clinic"),
        "{found:?}"
    );
    browser.assert_accessible("the services found").await;

    // Connecting without saying how is refused, the need chosen kept.
    browser.click_and_wait(&format!("#connect-{clinic}")).await;
    assert_eq!(
        browser.error_summary().await,
        ["Select how the person is connected"]
    );
    let kept = browser
        .client
        .execute(
            "return document.getElementById(arguments[0]).value;",
            vec![format!("need-{clinic}").into()],
        )
        .await
        .expect("reading the need");
    assert_eq!(kept, "money_benefits_debt");
    browser.assert_accessible("a connection refused").await;
    assert!(
        payloads(&server, client, "OnwardConnectionMade")
            .await
            .is_empty()
    );

    // Signposted: the person's page lists the connection by the service's name.
    browser.click(&format!("label[for='kind-{clinic}']")).await;
    browser.click_and_wait(&format!("#connect-{clinic}")).await;
    assert_eq!(banner(&browser).await, "Onward connection recorded");
    assert_eq!(
        browser.text("#connections ~ .nhsuk-card h3").await,
        "Coleford Benefits Check Clinic"
    );
    browser
        .assert_accessible("a person with a connection")
        .await;
    let made = payloads(&server, client, "OnwardConnectionMade").await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0]["service_id"], clinic.to_string());
    assert_eq!(made[0]["need"], "money_benefits_debt");
    assert_eq!(made[0]["kind"], "signposted");
    let connection = made[0]["connection_id"].as_str().expect("an id").to_owned();

    // On a waiting list of six weeks: recorded, and the connection is still open.
    browser
        .click(&format!("label[for='outcome-{connection}-waiting_list']"))
        .await;
    browser
        .fill(&format!("waiting_weeks-{connection}"), "6")
        .await;
    browser
        .click_and_wait(&format!("#record-outcome-{connection}"))
        .await;
    assert_eq!(banner(&browser).await, "Connection outcome recorded");
    let facts = browser.text("#connections ~ .nhsuk-card p").await;
    assert!(facts.ends_with("On a waiting list of 6 weeks."), "{facts}");
    let outcomes = payloads(&server, client, "ConnectionOutcomeRecorded").await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0]["connection_id"], connection);
    assert_eq!(outcomes[0]["outcome"], "waiting_list");
    assert_eq!(outcomes[0]["waiting_weeks"], 6);

    // Nothing for hoarding support in the directory: a gap for that need, from the search.
    browser.click_and_wait("#connect").await;
    browser.fill("q", "hoarding").await;
    browser.select("#need", "housing").await;
    browser.click_and_wait("#search").await;
    assert_eq!(browser.text("#results").await, "No service found");
    browser.click_and_wait("#gap-for-need").await;
    assert_eq!(browser.text("h1").await, "Record a service gap");
    browser.assert_accessible("the service gap form").await;
    browser.click("label[for='reason-cost']").await;
    browser.fill("note", "A hoarding support group").await;
    browser.click_and_wait("#record-gap").await;
    assert_eq!(banner(&browser).await, "Service gap recorded");
    let gaps = payloads(&server, client, "ServiceGapRecorded").await;
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["need"], "housing");
    assert_eq!(
        gaps[0]["area"], "Frome",
        "the person's area, as the search had it"
    );
    assert_eq!(gaps[0]["reason"], "cost");
    assert_eq!(gaps[0]["note"], "A hoarding support group");

    // Closed, connected onward: the page says so and offers no more forms.
    browser.click_and_wait("#close").await;
    assert_eq!(browser.text("h1").await, "Close the case");
    browser.assert_accessible("the closure form").await;
    browser.click_and_wait("#close-case").await;
    assert_eq!(
        browser.error_summary().await,
        ["Select why the case is closed"]
    );
    browser.assert_accessible("a closure refused").await;
    browser.click("label[for='reason-connected_onward']").await;
    browser.click_and_wait("#close-case").await;
    assert_eq!(banner(&browser).await, "Case closed");
    let status = browser.text(".nhsuk-summary-list__row").await;
    assert!(status.contains("Closed"), "{status}");
    assert!(browser.texts("#close").await.is_empty());
    assert!(browser.texts("#connect").await.is_empty());
    browser.assert_accessible("a closed case").await;
    let closed = payloads(&server, client, "CaseClosed").await;
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0]["reason"], "connected_onward");
    assert_eq!(closed[0]["note"], Value::Null);
    server.stop().await;
}

#[tokio::test]
async fn a_team_lead_redirects_a_referral_to_a_service_in_the_directory() {
    let server = TestServer::start().await;
    let lead = server.people.lead.clone();
    let (client, _) = refer_new(&server, &server.people.referrer).await;
    server.catch_up().await;

    // Over HTTP: no destination chosen is refused (422) at the field, the note as typed.
    let http = Session::of(&server, &lead).await;
    let redirect = format!("/console/people/{client}/redirect");
    let (status, page) = http.get(&redirect).await;
    assert_eq!(status, 200);
    let (csrf, referral) = (hidden(&page, "csrf"), hidden(&page, "referral_id"));
    let form = [
        ("csrf", csrf.as_str()),
        ("redirect_id", &Uuid::new_v4().to_string()),
        ("referral_id", referral.as_str()),
        ("note", "Wants a group nearby"),
    ];
    let page = http.refused(&redirect, &form, "destination").await;
    assert!(page.contains("Select where the referral goes"));
    assert!(page.contains(">Wants a group nearby</textarea>"));
    assert!(
        payloads(&server, client, "ReferralRedirected")
            .await
            .is_empty()
    );

    let browser = signed_in_browser(&server, &lead).await;
    browser
        .goto(&format!("{}/console/people/{client}", server.base))
        .await;
    browser.click_and_wait("#redirect").await;
    assert_eq!(browser.text("h1").await, "Redirect the referral");
    browser.assert_accessible("the redirect form").await;

    // A service chosen as the destination but none named: refused, the note kept.
    browser.click("label[for='destination-service']").await;
    browser
        .fill("note", "Asked for something nearer home")
        .await;
    browser.click_and_wait("#redirect-referral").await;
    assert_eq!(
        browser.error_summary().await,
        ["Choose the service in the directory"]
    );
    assert_eq!(
        browser.text("#note").await,
        "Asked for something nearer home"
    );
    browser.assert_accessible("a redirection refused").await;

    let options = browser
        .client
        .execute(
            "return Array.from(document.querySelectorAll('#service_id option')).map(o => o.value).filter(v => v);",
            vec![],
        )
        .await
        .expect("the services");
    let service = options[0]
        .as_str()
        .expect("a service taking referrals")
        .to_owned();
    browser.select("#service_id", &service).await;
    browser.click_and_wait("#redirect-referral").await;
    assert_eq!(banner(&browser).await, "Referral redirected");
    assert!(
        browser.texts("#redirect").await.is_empty(),
        "nothing waits now"
    );
    browser.assert_accessible("a redirected referral").await;
    // The person's page says where it went, by the service's name.
    let name: String = server
        .db
        .admin_client()
        .await
        .query_one(
            "SELECT name FROM directory_services WHERE service_id = $1",
            &[&Uuid::parse_str(&service).expect("an id")],
        )
        .await
        .expect("the service")
        .get(0);
    let summary = browser.text(".nhsuk-summary-list").await;
    assert!(
        summary.contains(&format!("Redirected to {name}")),
        "{summary}"
    );
    let redirected = payloads(&server, client, "ReferralRedirected").await;
    assert_eq!(redirected.len(), 1, "{redirected:?}");
    assert_eq!(redirected[0]["destination"]["kind"], "service");
    assert_eq!(redirected[0]["destination"]["service_id"], service);
    assert_eq!(redirected[0]["note"], "Asked for something nearer home");
    server.stop().await;
}

/// A console session over plain HTTP (no redirects followed).
struct Session<'a> {
    server: &'a TestServer,
    session: String,
}

impl<'a> Session<'a> {
    async fn of(server: &'a TestServer, who: &Person) -> Session<'a> {
        Session {
            server,
            session: sign_in(server, who).await,
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        get(self.server, &self.session, path).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        post_page(self.server, &self.session, path, None, form).await
    }

    /// Sends a form that is refused: 422, with an error linked to `field`; the page.
    async fn refused(&self, path: &str, form: &[(&str, &str)], field: &str) -> String {
        let (status, page) = self.post(path, form).await;
        assert_eq!(status, 422, "{page}");
        assert!(
            page.contains(&format!("href=\"#{field}\"")),
            "{field}: {page}"
        );
        page
    }
}

#[tokio::test]
async fn console_connection_forms_refuse_bad_input_other_organisations_and_forms_without_a_token() {
    let server = TestServer::start().await;
    let client = open_case(&server).await;
    server.catch_up().await;
    let clinic = server.services[0].to_string();
    let worker = Session::of(&server, &server.people.worker).await;
    let person = format!("/console/people/{client}");
    let (status, page) = worker
        .get(&format!("{person}/connect?q=benefits&area="))
        .await;
    assert_eq!(status, 200);
    let csrf = hidden(&page, "csrf");
    let connection_id = hidden(&page, "connection_id");
    let connect = |csrf: &str, kind: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("connection_id".to_owned(), connection_id.clone()),
            ("service_id".to_owned(), clinic.clone()),
            ("search_q".to_owned(), "benefits".to_owned()),
            ("search_need".to_owned(), String::new()),
            ("search_area".to_owned(), String::new()),
            ("need".to_owned(), "money_benefits_debt".to_owned()),
            ("kind".to_owned(), kind.to_owned()),
        ]
    };
    let send = |form: Vec<(String, String)>| {
        let worker = &worker;
        let action = format!("{person}/connections");
        async move {
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            worker.post(&action, &form).await
        }
    };

    // No way of connecting chosen: 422, the field named and linked, the need kept.
    let (status, page) = send(connect(&csrf, "")).await;
    assert_eq!(status, 422);
    assert!(page.contains(&format!("href=\"#kind-{clinic}\"")), "{page}");
    assert!(page.contains("Select how the person is connected"));
    assert!(
        page.contains("<option value=\"money_benefits_debt\" selected>"),
        "the need as chosen"
    );
    // A referral needs the person's consent to share: the application's refusal, at the field.
    let (status, page) = send(connect(&csrf, "referred")).await;
    assert_eq!(status, 422);
    assert!(page.contains(&format!("href=\"#kind-{clinic}\"")));
    assert!(
        page.contains("consent to share with onward services"),
        "{page}"
    );

    // Without the session's token, nothing is done.
    let (status, _) = send(connect("", "signposted")).await;
    assert_eq!(status, 403);
    assert!(
        payloads(&server, client, "OnwardConnectionMade")
            .await
            .is_empty()
    );

    // Sent twice, the same form connects once.
    assert_eq!(send(connect(&csrf, "signposted")).await.0, 303);
    assert_eq!(send(connect(&csrf, "signposted")).await.0, 303);
    assert_eq!(
        payloads(&server, client, "OnwardConnectionMade")
            .await
            .len(),
        1
    );

    // Another organisation's link worker: no such person, to read or to connect.
    let foreign = Session::of(&server, &server.people.foreign_worker).await;
    let (status, _) = foreign.get(&format!("{person}/connect?q=benefits")).await;
    assert_eq!(status, 404);
    let (_, own) = foreign.get("/console/caseload").await;
    let foreign_csrf = hidden(&own, "csrf");
    let mut theirs = connect(&foreign_csrf, "signposted");
    theirs[1].1 = Uuid::new_v4().to_string();
    let form: Vec<(&str, &str)> = theirs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, _) = foreign.post(&format!("{person}/connections"), &form).await;
    assert_eq!(status, 404);
    for path in ["gap", "close", "redirect"] {
        let (status, _) = foreign.get(&format!("{person}/{path}")).await;
        assert_eq!(status, 404, "{path}");
    }
    assert_eq!(
        payloads(&server, client, "OnwardConnectionMade")
            .await
            .len(),
        1
    );

    // A gap without its reason: 422 at the reason, the note as typed.
    let (_, page) = worker.get(&format!("{person}/gap?need=housing")).await;
    let gap_id = hidden(&page, "gap_id");
    let gap = [
        ("csrf", csrf.as_str()),
        ("gap_id", gap_id.as_str()),
        ("need", "housing"),
        ("area", "Frome"),
        ("note", "Somewhere to store things"),
    ];
    let page = worker
        .refused(&format!("{person}/gaps"), &gap, "reason")
        .await;
    assert!(page.contains(">Somewhere to store things</textarea>"));
    assert!(
        payloads(&server, client, "ServiceGapRecorded")
            .await
            .is_empty()
    );

    // An outcome of a waiting list without its weeks: the application's refusal, the choice
    // kept.
    let connection = payloads(&server, client, "OnwardConnectionMade").await[0]["connection_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let outcome = [
        ("csrf", csrf.as_str()),
        ("connection_id", connection.as_str()),
        ("outcome_key", &Uuid::new_v4().to_string()),
        ("outcome", "waiting_list"),
        ("waiting_weeks", ""),
    ];
    let weeks = format!("waiting_weeks-{connection}");
    let page = worker
        .refused(&format!("{person}/connections/outcome"), &outcome, &weeks)
        .await;
    assert!(page.contains("Say how many weeks the waiting list is"));
    assert!(page.contains("value=\"waiting_list\" checked"));

    // Closed for another reason, unsaid: the application asks for the note.
    let (_, page) = worker.get(&format!("{person}/close")).await;
    let closure_id = hidden(&page, "closure_id");
    let close = [
        ("csrf", csrf.as_str()),
        ("closure_id", closure_id.as_str()),
        ("reason", "other"),
        ("note", " "),
    ];
    let page = worker
        .refused(&format!("{person}/close"), &close, "note")
        .await;
    assert!(page.contains("Say why the case is closed"));
    assert!(page.contains("value=\"other\" checked"));
    assert!(payloads(&server, client, "CaseClosed").await.is_empty());

    // A link worker may not redirect a referral: only a team lead triages.
    let (waiting, _) = refer_new(&server, &server.people.referrer).await;
    let redirect = [
        ("csrf", csrf.as_str()),
        ("redirect_id", &Uuid::new_v4().to_string()),
        ("referral_id", &Uuid::new_v4().to_string()),
        ("destination", "gp_practice"),
    ];
    let (status, _) = worker
        .post(&format!("/console/people/{waiting}/redirect"), &redirect)
        .await;
    assert!([403, 404].contains(&status), "{status}");
    assert!(
        payloads(&server, waiting, "ReferralRedirected")
            .await
            .is_empty()
    );
    server.stop().await;
}

/// A link cannot choose the gap form's id (and with it the form's idempotency key): a form
/// whose sending would silently replay someone else's is never drawn.
#[tokio::test]
async fn a_link_to_the_gap_form_cannot_fix_its_id() {
    let server = TestServer::start().await;
    let client = open_case(&server).await;
    server.catch_up().await;
    let worker = Session::of(&server, &server.people.worker).await;
    let fixed = Uuid::from_u128(7);
    let (status, page) = worker
        .get(&format!(
            "/console/people/{client}/gap?gap_id={fixed}&need=housing"
        ))
        .await;
    assert_eq!(status, 200);
    let drawn = hidden(&page, "gap_id");
    assert_ne!(drawn, fixed.to_string());
    assert!(Uuid::try_parse(&drawn).is_ok(), "{drawn}");
    assert!(
        page.contains("<option value=\"housing\" selected>")
            || page.contains("value=\"housing\" checked"),
        "the need the link names is kept"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_directory_search_of_many_services_comes_a_page_at_a_time() {
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    let client = open_case(&server).await;
    // Twenty-five more walking groups, from a sample service under new ids and names.
    let template = crate::support::sample_records(0, 1).remove(0);
    let records = (1..=25)
        .map(|n| {
            let mut record = template.clone();
            record["id"] = Value::from(Uuid::new_v4().to_string());
            record["name"] = Value::from(format!("Quillfeather walking group {n:02}"));
            record
        })
        .collect();
    crate::support::list_services_for(&server.store, records, worker.organisation_id).await;
    server.catch_up().await;

    let browser = signed_in_browser(&server, &worker).await;
    browser
        .goto(&format!(
            "{}/console/people/{client}/connect?q=Quillfeather&area=",
            server.base
        ))
        .await;
    assert_eq!(browser.text("#results").await, "Services 1 to 20");
    let first = browser.texts(".nhsuk-card h3").await;
    assert_eq!(first.len(), 20, "{first:?}");
    browser.assert_accessible("a first page of services").await;
    browser.click_and_wait("#more-results").await;
    assert_eq!(browser.text("#results").await, "Services 21 to 25");
    let second = browser.texts(".nhsuk-card h3").await;
    assert_eq!(second.len(), 5, "{second:?}");
    assert!(
        second.iter().all(|name| !first.contains(name)),
        "no service twice: {first:?} {second:?}"
    );
    assert!(
        browser.texts("#more-results").await.is_empty(),
        "the last page"
    );
    browser.assert_accessible("a last page of services").await;
    browser.click_and_wait("#first-results").await;
    assert_eq!(browser.texts(".nhsuk-card h3").await, first);
    server.stop().await;
}
