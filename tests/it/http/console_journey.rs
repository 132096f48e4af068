//! One person's whole journey through the console's screens, each role in its own browser: a
//! GP's referral triaged and assigned by the team lead; contacted, assessed, connected onward
//! and closed by the link worker; replayed by the auditor with who did each thing; and counted
//! by the analyst, whose CSV holds the figures the page shows.

use serde_json::Value;
use uuid::Uuid;

use super::TestServer;
use super::console::{banner, get, sign_in, signed_in_browser};
use super::journey::{accepted_case, client_path, intake};
use crate::browser::Browser;

/// The event types of `client`'s journey, oldest first, with who recorded each (role).
async fn recorded(server: &TestServer, client: Uuid) -> Vec<(String, String)> {
    let reply = server
        .read(
            &server.people.auditor,
            &format!("{}?limit=500", client_path(client, "journey")),
        )
        .await;
    reply.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (text(&e["event_type"]), text(&e["actor_role"]))
        })
        .collect()
}

/// Types `text` into the field of id `id`.
async fn type_into(browser: &Browser, id: &str, text: &str) {
    browser.click(&format!("#{id}")).await;
    browser.press(text).await;
}

#[tokio::test]
async fn a_gp_referral_goes_through_every_roles_screens() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    // Four earlier GP referrals, so that the analyst's counts are large enough to show.
    for _ in 0..4 {
        accepted_case(&server).await;
    }
    // The GP's referral, sent by the referrer through the API (referrers have no console).
    let client = Uuid::new_v4();
    server
        .ok(
            &people.referrer,
            &client_path(client, "referrals"),
            intake(Uuid::new_v4(), "gp"),
        )
        .await;
    server.catch_up().await;

    // The team lead triages it and assigns it to a link worker.
    let lead = signed_in_browser(&server, &people.lead).await;
    // (The four earlier cases were accepted and never assigned: they wait there too.)
    lead.click_and_wait("a[href='/console/triage']").await;
    assert_eq!(lead.texts("tbody tr").await.len(), 5);
    lead.click_and_wait(&format!("tbody a[href='/console/people/{client}']"))
        .await;
    assert_eq!(lead.path().await, format!("/console/people/{client}"));
    lead.click("label[for='decision']").await;
    lead.click_and_wait("#decide").await;
    assert_eq!(banner(&lead).await, "Referral accepted");
    lead.select("#link_worker_id", &people.worker.staff_id.to_string())
        .await;
    lead.click_and_wait("#assign").await;
    assert_eq!(banner(&lead).await, "Link worker assigned");
    lead.assert_accessible("the lead's assigned case").await;
    drop(lead);
    server.catch_up().await;

    // The link worker finds them on their caseload, records a call, a baseline, a connection
    // and its outcome, and closes the case.
    let worker = signed_in_browser(&server, &people.worker).await;
    assert_eq!(worker.path().await, "/console/caseload");
    worker
        .click_and_wait(&format!("a[href='/console/people/{client}']"))
        .await;
    worker.click("label[for='mode']").await;
    type_into(&worker, "minutes", "30").await;
    worker.click_and_wait("#record-contact").await;
    assert_eq!(banner(&worker).await, "Contact recorded");

    worker.click_and_wait("#record-assessment").await;
    worker.click("label[for='instrument-swemwbs']").await;
    worker.click_and_wait("#choose-instrument").await;
    worker.click("label[for='timepoint']").await;
    worker.click("label[for='mode']").await;
    for item in 1..=7 {
        worker.click(&format!("label[for='item-{item}-3']")).await;
    }
    worker.click_and_wait("#record-assessment").await;
    assert_eq!(banner(&worker).await, "Assessment recorded");

    let clinic = server.services[0];
    worker.click_and_wait("#connect").await;
    worker
        .client
        .execute(
            "document.getElementById('q').value = 'benefits'; \
             document.getElementById('area').value = '';",
            vec![],
        )
        .await
        .expect("filling the search");
    worker.select("#need", "money_benefits_debt").await;
    worker.click_and_wait("#search").await;
    worker.click(&format!("label[for='kind-{clinic}']")).await;
    worker.click_and_wait(&format!("#connect-{clinic}")).await;
    assert_eq!(banner(&worker).await, "Onward connection recorded");
    let connection = server
        .read(
            &people.auditor,
            &format!("{}?limit=500", client_path(client, "journey")),
        )
        .await
        .body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["event_type"] == "OnwardConnectionMade")
        .map(|e| {
            e["payload"]["connection_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .expect("the connection");
    worker
        .click(&format!("label[for='outcome-{connection}']"))
        .await;
    worker
        .click_and_wait(&format!("#record-outcome-{connection}"))
        .await;
    assert_eq!(banner(&worker).await, "Connection outcome recorded");

    worker.click_and_wait("#close").await;
    worker.click("label[for='reason-connected_onward']").await;
    worker.click_and_wait("#close-case").await;
    assert_eq!(banner(&worker).await, "Case closed");
    worker.assert_accessible("the worker's closed case").await;
    drop(worker);

    // The log holds each step, by the role that took it.
    let steps = recorded(&server, client).await;
    for (event, role) in [
        ("ReferralReceived", "referrer"),
        ("ReferralAccepted", "team_lead"),
        ("LinkWorkerAssigned", "team_lead"),
        ("ContactRecorded", "link_worker"),
        ("AssessmentRecorded", "link_worker"),
        ("OnwardConnectionMade", "link_worker"),
        ("ConnectionOutcomeRecorded", "link_worker"),
        ("CaseClosed", "link_worker"),
    ] {
        assert!(
            steps.iter().any(|(e, r)| e == event && r == role),
            "{event} by {role} not in {steps:?}"
        );
    }

    // The auditor replays it: every step, who took it, and who read the record.
    let auditor = signed_in_browser(&server, &people.auditor).await;
    auditor
        .goto(&format!("{}/console/audit?client_id={client}", server.base))
        .await;
    let rows = auditor
        .texts("#journey + p + .nhsuk-table-container tbody tr")
        .await;
    assert_eq!(rows.len(), steps.len(), "{rows:?}");
    for (what, who) in [
        ("Referral accepted", "Lena Lead (team lead)"),
        ("Contact recorded", "Wyn Worker (link worker)"),
        ("Assessment recorded", "Wyn Worker (link worker)"),
        ("Case closed", "Wyn Worker (link worker)"),
    ] {
        assert!(
            rows.iter().any(|r| r.contains(what) && r.contains(who)),
            "{what} by {who} not in {rows:?}"
        );
    }
    let reads = auditor
        .texts("#reads + .nhsuk-table-container tbody tr")
        .await;
    assert!(
        reads.iter().any(|r| r.contains("Wyn Worker"))
            && reads.iter().any(|r| r.contains("Lena Lead")),
        "{reads:?}"
    );
    auditor.assert_accessible("the auditor's replay").await;
    drop(auditor);

    // The analyst reads five GP referrals, and the CSV holds the same.
    server.catch_up().await;
    let analyst = signed_in_browser(&server, &people.analyst).await;
    assert_eq!(analyst.path().await, "/console/reports");
    let referrals = analyst.text("#referrals + dl").await;
    assert!(referrals.starts_with("Referrals 5\n"), "{referrals}");
    assert_eq!(
        analyst.texts("#by-source-table tbody tr").await,
        ["GP 5 100.0"]
    );
    analyst.assert_accessible("the analyst's report").await;
    let link = analyst.attr("a[download]", "href").await.expect("an href");
    let session = sign_in(&server, &people.analyst).await;
    let (status, csv) = get(&server, &session, &link).await;
    assert_eq!(status, 200);
    let value = |section: &str, figure: &str, code: &str| {
        csv.lines()
            .map(|l| {
                l.trim_start_matches('\u{feff}')
                    .split(',')
                    .collect::<Vec<_>>()
            })
            .find(|cells| cells.len() > 4 && cells[..3] == [section, figure, code])
            .map(|cells| cells[4].to_owned())
            .unwrap_or_else(|| panic!("no {section},{figure},{code} in {csv}"))
    };
    assert_eq!(value("referrals", "total", ""), "5");
    assert_eq!(value("referrals", "by_source", "gp"), "5");
    server.stop().await;
}
