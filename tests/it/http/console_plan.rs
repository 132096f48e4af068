//! The web console's plan, assessment and consent forms: a link worker records what matters,
//! a need, a goal and its review, an assessment item by item and consent in a real browser,
//! every page checked with axe-core, and the journey holds what the forms said; over plain
//! HTTP, an assessment with an item left out, forms from another organisation's worker and
//! forms without the session's token are refused.

use serde_json::Value;
use uuid::Uuid;

use super::TestServer;
use super::console::{banner, get, hidden, post_page, sign_in, signed_in_browser};
use super::journey::open_case;

/// The events of `client`'s journey of type `event_type`, as the auditor reads them.
pub(super) async fn events(server: &TestServer, client: Uuid, event_type: &str) -> Vec<Value> {
    let journey = server.journey_entries(client).await;
    journey
        .into_iter()
        .filter(|e| e["event_type"] == event_type)
        .collect()
}

/// Every plan, consent and assessment event of `client`'s journey.
async fn plan_events(server: &TestServer, client: Uuid) -> usize {
    let mut n = 0;
    for event_type in [
        "WhatMattersRecorded",
        "NeedIdentified",
        "GoalSet",
        "GoalReviewed",
        "AssessmentRecorded",
        "ConsentRecorded",
        "ConsentWithdrawn",
    ] {
        n += events(server, client, event_type).await.len();
    }
    n
}

#[tokio::test]
async fn a_link_worker_records_what_matters_a_need_a_goal_an_assessment_and_consent_in_the_console()
{
    let server = TestServer::start().await;
    let worker = server.people.worker.clone();
    let client = open_case(&server).await;
    server.catch_up().await;
    let browser = signed_in_browser(&server, &worker).await;
    let person = format!("/console/people/{client}");
    browser.goto(&format!("{}{person}", server.base)).await;
    assert!(
        browser
            .text("#plan-summary")
            .await
            .contains("Not recorded yet")
    );

    // What matters, in their words.
    browser.click_and_wait("#update-plan").await;
    assert_eq!(browser.path().await, format!("{person}/plan"));
    browser.assert_accessible("the plan page").await;
    browser.click("#what_matters").await;
    browser.press("Getting back to the allotment").await;
    browser.click_and_wait("#record-what-matters").await;
    assert_eq!(browser.path().await, format!("{person}?done=what_matters"));
    assert_eq!(banner(&browser).await, "What matters recorded");
    assert!(
        browser
            .text("#plan-summary")
            .await
            .contains("Getting back to the allotment")
    );
    browser
        .assert_accessible("a person's page with a plan")
        .await;

    // A need, from the domain's list.
    browser.click_and_wait("#update-plan").await;
    browser
        .click("label[for='need-loneliness_isolation']")
        .await;
    browser.click_and_wait("#identify-need").await;
    assert_eq!(banner(&browser).await, "Need identified");

    // A goal without a description is refused with the typed need kept; then set.
    browser.click_and_wait("#update-plan").await;
    browser.select("#goal_need", "loneliness_isolation").await;
    browser.click_and_wait("#set-goal").await;
    assert_eq!(browser.error_summary().await, ["Describe the goal"]);
    assert_eq!(
        browser.text("#goal_need option:checked").await,
        "Loneliness or isolation"
    );
    browser.assert_accessible("a plan form with an error").await;
    browser.click("#goal_description").await;
    browser.press("Join the Tuesday walking group").await;
    browser.click_and_wait("#set-goal").await;
    assert_eq!(banner(&browser).await, "Goal set");

    // Its review: the goal and its progress.
    browser.click_and_wait("#update-plan").await;
    browser.assert_accessible("the plan page with a goal").await;
    let goal = "#review_goal option:nth-child(2)";
    let goal_id = browser.attr(goal, "value").await.expect("a value");
    browser.select("#review_goal", &goal_id).await;
    browser.click("label[for='progress-some_progress']").await;
    browser.click("#review_note").await;
    browser.press("Went twice").await;
    browser.click_and_wait("#review-goal").await;
    assert_eq!(banner(&browser).await, "Goal reviewed");
    assert!(
        browser
            .text("#plan-summary")
            .await
            .contains("Join the Tuesday walking group (Some progress)")
    );

    // Consent to evaluation and to onward sharing; the first withdrawn.
    for scope in ["evaluation", "share_with_onward_services"] {
        browser.click_and_wait("#update-plan").await;
        browser
            .click(&format!("label[for='consent_scope-{scope}']"))
            .await;
        browser.click_and_wait("#record-consent").await;
        assert_eq!(banner(&browser).await, "Consent recorded");
    }
    browser.click_and_wait("#update-plan").await;
    browser
        .assert_accessible("the plan page with consents")
        .await;
    browser
        .click_and_wait("button[name='withdraw_scope'][value='evaluation']")
        .await;
    assert_eq!(banner(&browser).await, "Consent withdrawn");
    let summary = browser.text("#plan-summary").await;
    assert!(
        summary.contains("Share with onward services") && !summary.contains("Use for evaluation"),
        "{summary}"
    );

    // An assessment: the questionnaire chosen first, then every item answered by its radios.
    browser.click_and_wait("#record-assessment").await;
    browser
        .assert_accessible("the choice of questionnaire")
        .await;
    browser.click_and_wait("#choose-instrument").await;
    assert_eq!(browser.error_summary().await, ["Select the questionnaire"]);
    browser
        .assert_accessible("the choice of questionnaire with an error")
        .await;
    browser.click("label[for='instrument-swemwbs']").await;
    browser.click_and_wait("#choose-instrument").await;
    let legends = browser.texts("#answers ~ .nhsuk-form-group legend").await;
    assert_eq!(legends.len(), 7, "{legends:?}");
    assert_eq!(legends[0], "I've been feeling optimistic about the future");
    browser.assert_accessible("a questionnaire").await;
    browser.click("label[for='timepoint']").await;
    browser.click("label[for='mode-assisted']").await;
    let answers = [3, 4, 2, 5, 3, 4, 1];
    for (n, answer) in answers.iter().enumerate() {
        let id = match answer {
            1 => format!("item-{}", n + 1),
            v => format!("item-{}-{v}", n + 1),
        };
        browser.click(&format!("label[for='{id}']")).await;
    }
    browser.click_and_wait("#record-assessment").await;
    assert_eq!(banner(&browser).await, "Assessment recorded");
    // Shown with its score, as the reports score it: raw 22 is 19.98 on SWEMWBS's metric.
    let taken = browser.texts(".assessment-taken").await;
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert!(taken[0].starts_with("SWEMWBS, baseline"), "{taken:?}");
    assert!(taken[0].ends_with(": score 19.98"), "{taken:?}");
    browser
        .assert_accessible("a person's page after an assessment")
        .await;
    // ONS4, recorded over the API: one score a question, each in its ONS band.
    let ons4 = serde_json::json!({
        "assessment_id": Uuid::new_v4(), "instrument": "ons4", "instrument_version": 1,
        "timepoint": "baseline", "mode": "self_completed", "answers": [7, 5, 10, 2],
        "licensor_score": null,
        "administered_on": domain::calendar::today(chrono::Utc::now()).to_string()
    });
    server
        .ok(
            &worker,
            &format!("/api/v1/clients/{client}/assessments"),
            ons4,
        )
        .await;
    browser
        .goto(&format!("{}/console/people/{client}", server.base))
        .await;
    let taken = browser.texts(".assessment-taken").await;
    assert!(
        taken[1].ends_with(
            ": life satisfaction 7 (high), worthwhile 5 (medium), happiness 10 (very high), \
             anxiety 2 (low)"
        ),
        "{taken:?}"
    );

    // The log has each, by the worker, as the forms said.
    let said = events(&server, client, "WhatMattersRecorded").await;
    assert_eq!(said.len(), 1);
    assert_eq!(said[0]["actor_id"], worker.staff_id.to_string());
    assert_eq!(said[0]["payload"]["text"], "Getting back to the allotment");
    let needs = events(&server, client, "NeedIdentified").await;
    assert_eq!(needs.len(), 1);
    assert_eq!(needs[0]["payload"]["need"], "loneliness_isolation");
    let goals = events(&server, client, "GoalSet").await;
    assert_eq!(goals.len(), 1);
    assert_eq!(goals[0]["payload"]["goal_id"], goal_id);
    assert_eq!(
        goals[0]["payload"]["description"],
        "Join the Tuesday walking group"
    );
    assert_eq!(goals[0]["payload"]["need"], "loneliness_isolation");
    let reviews = events(&server, client, "GoalReviewed").await;
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0]["payload"]["goal_id"], goal_id);
    assert_eq!(reviews[0]["payload"]["progress"], "some_progress");
    assert_eq!(reviews[0]["payload"]["note"], "Went twice");
    let consents: Vec<Value> = events(&server, client, "ConsentRecorded")
        .await
        .iter()
        .map(|e| e["payload"].clone())
        .collect();
    assert_eq!(
        consents,
        [
            serde_json::json!({"scope": "evaluation", "services": []}),
            serde_json::json!({"scope": "share_with_onward_services", "services": []}),
        ]
    );
    let withdrawn = events(&server, client, "ConsentWithdrawn").await;
    assert_eq!(withdrawn.len(), 1);
    assert_eq!(withdrawn[0]["payload"]["scope"], "evaluation");
    let assessments = events(&server, client, "AssessmentRecorded").await;
    assert_eq!(assessments.len(), 2, "the form's, then the API's");
    let assessment = &assessments[0]["payload"];
    assert_eq!(assessment["instrument"], "swemwbs");
    assert_eq!(assessment["instrument_version"], 1);
    assert_eq!(assessment["timepoint"], "baseline");
    assert_eq!(assessment["mode"], "assisted");
    assert_eq!(assessment["answers"], serde_json::json!(answers));
    assert_eq!(
        assessment["administered_on"],
        domain::calendar::today(chrono::Utc::now()).to_string()
    );
    assert_eq!(assessments[0]["actor_id"], worker.staff_id.to_string());
    server.stop().await;
}

/// The fields of a UCLA-3 form drawn from `page`, answered as `answers` (none: left out).
fn ucla3(page: &str, timepoint: &str, answers: [Option<&str>; 3]) -> Vec<(String, String)> {
    let mut fields = vec![
        ("csrf".to_owned(), hidden(page, "csrf")),
        ("assessment_id".to_owned(), hidden(page, "assessment_id")),
        ("instrument".to_owned(), "ucla3".to_owned()),
        ("timepoint".to_owned(), timepoint.to_owned()),
        ("mode".to_owned(), "self_completed".to_owned()),
        (
            "administered_on".to_owned(),
            hidden(page, "administered_on"),
        ),
    ];
    for (n, answer) in answers.iter().enumerate() {
        if let Some(answer) = answer {
            fields.push((format!("item-{}", n + 1), (*answer).to_owned()));
        }
    }
    fields
}

fn pairs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test]
async fn console_assessment_with_an_item_left_out_is_refused_naming_it_with_the_rest_kept() {
    let server = TestServer::start().await;
    let client = open_case(&server).await;
    server.catch_up().await;
    let cookie = sign_in(&server, &server.people.worker).await;
    let path = format!("/console/people/{client}/assessment");
    let (status, form) = get(&server, &cookie, &format!("{path}?instrument=ucla3")).await;
    assert_eq!(status, 200);
    let legends = [
        "How often do you feel that you lack companionship?",
        "How often do you feel left out?",
        "How often do you feel isolated from others?",
    ];
    for legend in legends {
        assert!(form.contains(&format!("{legend}</legend>")), "{legend}");
    }

    // Item 2 left out: named in the summary, linked to its radios; the other answers kept.
    let fields = ucla3(&form, "baseline", [Some("2"), None, Some("3")]);
    let (status, body) = post_page(&server, &cookie, &path, None, &pairs(&fields)).await;
    assert_eq!(status, 422);
    assert!(
        body.contains(
            "<a href=\"#item-2\">Select an answer to “How often do you feel left out?”</a>"
        ),
        "{body}"
    );
    assert!(body.contains("id=\"item-1-2\" name=\"item-1\" type=\"radio\" value=\"2\" checked"));
    assert!(body.contains("id=\"item-3-3\" name=\"item-3\" type=\"radio\" value=\"3\" checked"));
    assert!(!body.contains("name=\"item-2\" type=\"radio\" value=\"1\" checked"));
    assert_eq!(
        hidden(&body, "assessment_id"),
        hidden(&form, "assessment_id")
    );
    assert_eq!(events(&server, client, "AssessmentRecorded").await.len(), 0);

    // A follow-up before any baseline: the domain's refusal, at the timepoint.
    let fields = ucla3(&form, "follow_up", [Some("2"), Some("1"), Some("3")]);
    let (status, body) = post_page(&server, &cookie, &path, None, &pairs(&fields)).await;
    assert_eq!(status, 422);
    assert!(
        body.contains("<a href=\"#timepoint\">Record a baseline UCLA 3-item loneliness scale"),
        "{body}"
    );
    assert!(body.contains(
        "id=\"timepoint-follow_up\" name=\"timepoint\" type=\"radio\" value=\"follow_up\" checked"
    ));

    // Whole, sent twice: one assessment.
    let fields = ucla3(&form, "baseline", [Some("2"), Some("1"), Some("3")]);
    for _ in 0..2 {
        let (status, _) = post_page(&server, &cookie, &path, None, &pairs(&fields)).await;
        assert_eq!(status, 303);
    }
    let recorded = events(&server, client, "AssessmentRecorded").await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0]["payload"]["answers"],
        serde_json::json!([2, 1, 3])
    );

    // Withdrawing a consent never given: the domain's refusal, beside the consents.
    let (_, plan) = get(&server, &cookie, &format!("/console/people/{client}/plan")).await;
    let csrf = hidden(&plan, "csrf");
    let (status, body) = post_page(
        &server,
        &cookie,
        &format!("/console/people/{client}/consent/withdrawal"),
        None,
        &[("csrf", csrf.as_str()), ("withdraw_scope", "evaluation")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body.contains(
            "<a href=\"#consents\">There is no consent to use for evaluation to withdraw</a>"
        ),
        "{body}"
    );
    server.stop().await;
}

/// Each plan form of `client`, filled in, as (path, fields) without its token.
fn plan_forms(client: Uuid) -> Vec<(String, Vec<(&'static str, String)>)> {
    let at = |path: &str| format!("/console/people/{client}/{path}");
    let id = || Uuid::new_v4().to_string();
    let today = domain::calendar::today(chrono::Utc::now()).to_string();
    vec![
        (
            at("what-matters"),
            vec![("form_id", id()), ("what_matters", "Gardening".into())],
        ),
        (
            at("needs"),
            vec![("form_id", id()), ("need", "housing".into())],
        ),
        (
            at("goals"),
            vec![("goal_id", id()), ("goal_description", "Move".into())],
        ),
        (
            at("consent"),
            vec![("form_id", id()), ("consent_scope", "evaluation".into())],
        ),
        (
            at("assessment"),
            vec![
                ("assessment_id", id()),
                ("instrument", "ons_loneliness".into()),
                ("timepoint", "baseline".into()),
                ("mode", "assisted".into()),
                ("administered_on", today.clone()),
                ("item-1", "4".into()),
            ],
        ),
    ]
}

#[tokio::test]
async fn console_plan_forms_refuse_another_organisations_worker_and_a_missing_token() {
    let server = TestServer::start().await;
    let client = open_case(&server).await;
    server.catch_up().await;

    // Another organisation's worker: no such person, on every page and form.
    let foreign = sign_in(&server, &server.people.foreign_worker).await;
    let person = format!("/console/people/{client}");
    for path in [
        format!("{person}/plan"),
        format!("{person}/assessment"),
        format!("{person}/assessment?instrument=wemwbs"),
    ] {
        assert_eq!(get(&server, &foreign, &path).await.0, 404, "{path}");
    }
    let (_, caseload) = get(&server, &foreign, "/console/caseload").await;
    let foreign_csrf = hidden(&caseload, "csrf");
    for (path, fields) in plan_forms(client) {
        let mut form: Vec<(&str, &str)> = vec![("csrf", foreign_csrf.as_str())];
        form.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
        assert_eq!(
            post_page(&server, &foreign, &path, None, &form).await.0,
            404,
            "{path}"
        );
    }

    // The case's own worker, without the session's token or from another site: refused.
    let cookie = sign_in(&server, &server.people.worker).await;
    let (_, plan) = get(&server, &cookie, &format!("{person}/plan")).await;
    let csrf = hidden(&plan, "csrf");
    for (path, fields) in plan_forms(client) {
        let without: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            post_page(&server, &cookie, &path, None, &without).await.0,
            403,
            "{path}"
        );
        let mut other_site = without.clone();
        other_site.push(("csrf", csrf.as_str()));
        let (status, _) = post_page(
            &server,
            &cookie,
            &path,
            Some("http://evil.example"),
            &other_site,
        )
        .await;
        assert_eq!(status, 403, "{path} from another site");
    }
    assert_eq!(
        plan_events(&server, client).await,
        0,
        "nothing was recorded"
    );

    // With it, each is recorded.
    for (path, fields) in plan_forms(client) {
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        form.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
        let (status, body) = post_page(&server, &cookie, &path, None, &form).await;
        assert_eq!(status, 303, "{path}: {body}");
    }
    assert_eq!(plan_events(&server, client).await, 5);
    server.stop().await;
}
