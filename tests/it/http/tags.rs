//! Tags as caseload filters over HTTP, against the real database: a tag of the service's list
//! goes on a case once and comes off once, the record and the caseload rows carry it, the
//! worker's and the team lead's caseloads filter by it (and refuse a tag not on the list by
//! name), another organisation cannot tag or see, and a correction cannot change a tag. In a
//! real browser, the console's caseload is filtered by a tag put on from the person's page.

use serde_json::{Value, json};
use uuid::Uuid;

use super::TestServer;
use super::console::{banner, signed_in_browser};
use super::journey::{client_path, open_case};

/// The client ids on a caseload page.
fn clients(page: &Value) -> Vec<Value> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["client_id"].clone())
        .collect()
}

#[tokio::test]
async fn a_tag_filters_the_caseload_and_comes_off_again() {
    let server = TestServer::start().await;
    let people = &server.people;
    let (tagged, plain) = (open_case(&server).await, open_case(&server).await);
    let (on_tagged, on_plain) = (server.on(tagged), server.on(plain));
    on_tagged
        .ok(&people.worker, "tags", json!({ "tag": "housing-priority" }))
        .await;
    // The team lead tags too: they answer for their team's cases.
    on_tagged
        .ok(&people.lead, "tags", json!({ "tag": "carer" }))
        .await;

    // Twice is refused by name, as is a tag not on the list, or one the case does not carry.
    let again = on_tagged
        .post(&people.worker, "tags", json!({ "tag": "housing-priority" }))
        .await;
    assert_eq!(again.status, 422, "{:#}", again.body);
    assert_eq!(again.body["rule"], "tag_already_on");
    assert_eq!(again.body["errors"][0]["field"], "tag");
    let unknown = on_tagged
        .post(&people.worker, "tags", json!({ "tag": "vip" }))
        .await;
    unknown.refused_at(422, "tag");
    let not_on = on_plain
        .post(&people.worker, "tag-removals", json!({ "tag": "carer" }))
        .await;
    assert_eq!(not_on.status, 422, "{:#}", not_on.body);
    assert_eq!(not_on.body["rule"], "tag_not_on");
    let missing = on_tagged.post(&people.worker, "tags", json!({})).await;
    missing.refused_at(400, "tag");

    // The record shows the tags, labelled.
    let record = server
        .read(&people.worker, &client_path(tagged, ""))
        .await
        .body;
    assert_eq!(
        record["tags"],
        json!([
            { "code": "carer", "label": "Carer" },
            { "code": "housing-priority", "label": "Housing priority" }
        ])
    );

    // Both caseloads filter by it; the rows carry their tags.
    server.catch_up().await;
    let mine = server
        .read(&people.worker, "/api/v1/caseload?tag=housing-priority")
        .await
        .body;
    assert_eq!(clients(&mine), vec![json!(tagged)]);
    assert_eq!(
        mine["items"][0]["tags"],
        json!(["carer", "housing-priority"])
    );
    let everyone = server.read(&people.worker, "/api/v1/caseload").await.body;
    assert!(clients(&everyone).contains(&json!(plain)));
    assert!(clients(&everyone).contains(&json!(tagged)));
    let team = format!(
        "/api/v1/teams/{}/caseload",
        people.lead.team_id.expect("a team")
    );
    let theirs = server
        .read(&people.lead, &format!("{team}?tag=carer"))
        .await
        .body;
    assert_eq!(clients(&theirs), vec![json!(tagged)]);
    let none = server
        .read(&people.lead, &format!("{team}?tag=digital-exclusion"))
        .await
        .body;
    assert_eq!(clients(&none), Vec::<Value>::new());
    let csv = server
        .get(
            &people.worker,
            "/api/v1/caseload.csv?tag=carer&comments=false",
        )
        .await;
    assert_eq!(csv.status, 200);

    // A tag not on the list is refused by name, never an empty page.
    for path in ["/api/v1/caseload?tag=vip", &format!("{team}?tag=vip")] {
        let who = if path.starts_with("/api/v1/teams") {
            &people.lead
        } else {
            &people.worker
        };
        let refused = server.get(who, path).await;
        assert_eq!(refused.status, 400, "{path}: {:#}", refused.body);
        assert_eq!(refused.body["errors"][0]["field"], "query.tag", "{path}");
    }

    // Off again: the filter no longer finds it.
    on_tagged
        .ok(
            &people.worker,
            "tag-removals",
            json!({ "tag": "housing-priority" }),
        )
        .await;
    server.catch_up().await;
    let mine = server
        .read(&people.worker, "/api/v1/caseload?tag=housing-priority")
        .await
        .body;
    assert_eq!(clients(&mine), Vec::<Value>::new());
    let carers = server
        .read(&people.worker, "/api/v1/caseload?tag=carer")
        .await
        .body;
    assert_eq!(carers["items"][0]["tags"], json!(["carer"]));

    // A correction cannot change a tag.
    let event = testkit::query_value::<Uuid>(
        &server.db.admin_client().await,
        "SELECT event_id FROM events WHERE stream_id = $1 AND event_type = 'CaseTagged' \
         ORDER BY stream_version LIMIT 1",
        &[&tagged],
    )
    .await;
    let corrected = json!({
        "corrects": event, "corrected_fields": { "tag": "carer" }, "reason": "wrong tag"
    });
    let correction = on_tagged.post(&people.lead, "corrections", corrected).await;
    correction.refused_at(422, "corrects");
}

#[tokio::test]
async fn only_whoever_works_the_case_tags_it() {
    let server = TestServer::start().await;
    let people = &server.people;
    let client = open_case(&server).await;
    let tag = json!({ "tag": "carer" });
    // Another organisation's staff hear of no such record.
    for who in [&people.foreign_worker, &people.foreign_lead] {
        let reply = server
            .post(who, &client_path(client, "tags"), tag.clone())
            .await;
        assert_eq!(reply.status, 404, "{:#}", reply.body);
    }
    // Another worker of the organisation, and roles that never change records, are refused.
    for who in [
        &people.other_worker,
        &people.analyst,
        &people.auditor,
        &people.provider,
    ] {
        let reply = server
            .post(who, &client_path(client, "tags"), tag.clone())
            .await;
        assert_eq!(reply.status, 403, "{:#}", reply.body);
    }
    let record = server
        .read(&people.worker, &client_path(client, ""))
        .await
        .body;
    assert_eq!(record["tags"], json!([]));
    // Another organisation's lead cannot read this team's caseload by tag either.
    let team = format!(
        "/api/v1/teams/{}/caseload?tag=carer",
        people.lead.team_id.expect("a team")
    );
    let foreign = server.get(&people.foreign_lead, &team).await;
    assert_eq!(foreign.status, 404, "{:#}", foreign.body);
}

#[tokio::test]
async fn console_caseload_filters_by_a_tag_put_on_from_the_persons_page() {
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    let (tagged, plain) = (open_case(&server).await, open_case(&server).await);
    server.catch_up().await;
    let browser = signed_in_browser(&server, &worker).await;

    // Tag one person from their page.
    let person = format!("/console/people/{tagged}");
    browser.goto(&format!("{}{person}", server.base)).await;
    browser.select("#add-tag-code", "interpreter-needed").await;
    browser.click_and_wait("#add-tag button[type=submit]").await;
    assert_eq!(browser.path().await, format!("{person}?done=tag"));
    assert_eq!(banner(&browser).await, "Tags changed");
    assert!(
        browser
            .text("#case-tags")
            .await
            .contains("Interpreter needed")
    );
    browser
        .assert_accessible("a person's page with a tag")
        .await;

    // The caseload shows both people, then only the tagged one once filtered.
    server.catch_up().await;
    browser
        .goto(&format!("{}/console/caseload", server.base))
        .await;
    let all = browser.texts("tbody tr").await;
    assert_eq!(all.len(), 2, "{all:?}");
    browser.select("#tag", "interpreter-needed").await;
    browser.click_and_wait("#filter").await;
    assert_eq!(
        browser.path().await,
        "/console/caseload?tag=interpreter-needed"
    );
    let rows = browser.texts("tbody tr").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("Interpreter needed"), "{rows:?}");
    let links = browser
        .client
        .find_all(fantoccini::Locator::Css("tbody tr a"))
        .await
        .expect("links");
    let href = links[0].attr("href").await.expect("an href");
    assert_eq!(
        href.as_deref(),
        Some(format!("/console/people/{tagged}").as_str())
    );
    assert_ne!(
        href.as_deref(),
        Some(format!("/console/people/{plain}").as_str())
    );
    browser
        .assert_accessible("a caseload filtered by a tag")
        .await;

    // Taken off from the person's page, the filter finds no one.
    browser.goto(&format!("{}{person}", server.base)).await;
    browser
        .click_and_wait("#case-tags button[type=submit]")
        .await;
    assert_eq!(banner(&browser).await, "Tags changed");
    server.catch_up().await;
    browser
        .goto(&format!(
            "{}/console/caseload?tag=interpreter-needed",
            server.base
        ))
        .await;
    assert!(
        browser
            .text("main")
            .await
            .contains("No one on this caseload carries this tag")
    );
}
