//! "My tasks" in the console: a link worker adds a task and marks it done in a real browser;
//! a team lead sees the team's overdue tasks (by the service's clock) and cancels one, with
//! what to put right shown at the field; over plain HTTP, a form from another site, a stale
//! form and another organisation's task are refused.

use chrono::{Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::TestServer;
use super::console::{banner, get, hidden, post_page, sign_in, signed_in_browser};
use super::journey::open_case;

#[tokio::test]
async fn a_link_worker_adds_a_task_and_marks_it_done_and_a_lead_cancels_an_overdue_one() {
    let clock = app::Clock::fixed(Utc::now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    let people = server.people.clone();
    let client = open_case(&server).await;
    let _projectors = server.run_projectors().await;

    // From the caseload to "My tasks", where there is nothing yet.
    let browser = signed_in_browser(&server, &people.worker).await;
    browser
        .goto(&format!("{}/console/caseload", server.base))
        .await;
    browser.click_and_wait("#my-tasks").await;
    assert_eq!(browser.path().await, "/console/tasks");
    assert_eq!(browser.text("#no-tasks").await, "You have no open tasks.");
    browser.assert_accessible("no tasks").await;

    // Without what it is or when, the form says both; then a call-back due in two days.
    browser.click_and_wait("#raise-task").await;
    assert_eq!(
        browser.error_summary().await,
        [
            "Select what the task is",
            "Enter the day it is due, such as 2026-12-24"
        ]
    );
    browser.assert_accessible("a task form refused").await;
    let due = (clock.now() + Duration::days(2)).date_naive();
    browser.click("label[for='kind-call_back']").await;
    browser
        .client
        .execute(
            &format!("document.getElementById('due_on').value = '{due}';"),
            vec![],
        )
        .await
        .expect("setting the date");
    browser.click_and_wait("#raise-task").await;
    assert_eq!(banner(&browser).await, "Task added");
    let rows = browser.texts("#my-tasks tbody tr td:first-child").await;
    assert_eq!(rows, ["Call the person back"]);
    browser.assert_accessible("a task to do").await;
    let mine = server.read(&people.worker, "/api/v1/tasks").await;
    let task = mine.body["items"][0]["task_id"]
        .as_str()
        .expect("the task")
        .to_owned();
    assert_eq!(mine.body["items"][0]["due_on"], json!(due));

    // Done: it leaves the list, and the log says who did it.
    browser.click_and_wait(&format!("#done-{task}")).await;
    assert_eq!(banner(&browser).await, "Task marked done");
    assert_eq!(browser.text("#no-tasks").await, "You have no open tasks.");
    let admin = server.db.admin_client().await;
    let done_by: Uuid = admin
        .query_one(
            "SELECT actor_id FROM events WHERE stream_id = $1 AND event_type = 'TaskDone'",
            &[&Uuid::parse_str(&task).expect("an id")],
        )
        .await
        .expect("the task done")
        .get(0);
    assert_eq!(done_by, people.worker.staff_id);

    // A task of the worker's on their case, due today; three days on it is overdue, and the
    // team's lead sees it and cancels it (a reason first).
    let overdue = Uuid::new_v4();
    let raised = server
        .ok(
            &people.worker,
            "/api/v1/tasks",
            json!({ "task_id": overdue, "kind": "chase_missed_appointment", "client_id": client,
                    "due_on": clock.today() }),
        )
        .await;
    clock.set(clock.now() + Duration::days(3));
    let lead = signed_in_browser(&server, &people.lead).await;
    let shown_before = caseload_reads(&server, client, &people.lead).await;
    let after = raised.body["position"].as_i64().expect("a position");
    lead.goto(&format!("{}/console/tasks?after={after}", server.base))
        .await;
    let rows = lead
        .texts("#team-overdue-tasks tbody tr td:first-child")
        .await;
    assert_eq!(rows, ["Chase a missed appointment"]);
    assert_eq!(
        lead.text(&format!("#team-task-{overdue} strong")).await,
        "Overdue"
    );
    // The person by name (it was "Person" and an id), a read of their record, audited.
    assert_eq!(
        lead.text(&format!("#team-task-{overdue} td:nth-child(2)"))
            .await,
        "Maggie Thornbury"
    );
    assert_eq!(
        caseload_reads(&server, client, &people.lead).await,
        shown_before + 1,
        "the name shown is in the read audit"
    );
    lead.assert_accessible("a team's overdue tasks").await;
    lead.click_and_wait(&format!("#team-cancel-{overdue}"))
        .await;
    assert_eq!(
        lead.error_summary().await,
        ["Select why the task is cancelled"]
    );
    lead.select(&format!("#team-reason-{overdue}"), "no_longer_needed")
        .await;
    lead.click_and_wait(&format!("#team-cancel-{overdue}"))
        .await;
    assert_eq!(banner(&lead).await, "Task cancelled");
    assert_eq!(
        lead.text("#no-overdue").await,
        "Nothing in your team is overdue."
    );
    let cancelled: serde_json::Value = admin
        .query_one(
            "SELECT payload FROM events WHERE stream_id = $1 AND event_type = 'TaskCancelled'",
            &[&overdue],
        )
        .await
        .expect("the task cancelled")
        .get(0);
    assert_eq!(cancelled["reason"], "no_longer_needed");
    server.stop().await;
}

#[tokio::test]
async fn task_forms_refuse_other_sites_stale_versions_and_other_organisations() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let _projectors = server.run_projectors().await;
    let task = Uuid::new_v4();
    let raised = server
        .ok(
            &people.worker,
            "/api/v1/tasks",
            json!({ "task_id": task, "kind": "review_plan", "due_on": domain::calendar::today(Utc::now()) }),
        )
        .await;
    let session = sign_in(&server, &people.worker).await;
    let after = raised.body["position"].as_i64().expect("a position");
    let (status, page) = get(&server, &session, &format!("/console/tasks?after={after}")).await;
    assert_eq!(status, 200);
    let csrf = hidden(&page, "csrf");
    let done = format!("/console/tasks/{task}/done");

    // From another site: refused, nothing done.
    let (status, _) = post_page(
        &server,
        &session,
        &done,
        Some("https://elsewhere.example"),
        &[("csrf", &csrf), ("form_id", &Uuid::new_v4().to_string())],
    )
    .await;
    assert_eq!(status, 403);
    // Without the CSRF token: refused.
    let (status, _) = post_page(&server, &session, &done, None, &[("form_id", "x")]).await;
    assert_eq!(status, 403);
    // A stale version: the page again, saying so at the form.
    let (status, page) = post_page(
        &server,
        &session,
        &done,
        None,
        &[
            ("csrf", &csrf),
            ("form_id", &Uuid::new_v4().to_string()),
            ("version", "5"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        page.contains("This task changed while you were looking at it"),
        "{page}"
    );
    // Another organisation's staff: no such task.
    let foreign = sign_in(&server, &people.foreign_worker).await;
    let (_, their_page) = get(&server, &foreign, "/console/tasks").await;
    let their_csrf = hidden(&their_page, "csrf");
    let (status, _) = post_page(
        &server,
        &foreign,
        &done,
        None,
        &[
            ("csrf", &their_csrf),
            ("form_id", &Uuid::new_v4().to_string()),
        ],
    )
    .await;
    assert_eq!(status, 404);
    // The same form sent twice is done once.
    let form = Uuid::new_v4().to_string();
    for _ in 0..2 {
        let (status, _) = post_page(
            &server,
            &session,
            &done,
            None,
            &[("csrf", &csrf), ("form_id", &form)],
        )
        .await;
        assert_eq!(status, 303);
    }
    let admin = server.db.admin_client().await;
    let count: i64 = admin
        .query_one(
            "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'TaskDone'",
            &[&task],
        )
        .await
        .expect("a count")
        .get(0);
    assert_eq!(count, 1);
    // An auditor has no task page.
    let auditor = sign_in(&server, &people.auditor).await;
    let (status, _) = get(&server, &auditor, "/console/tasks").await;
    assert_eq!(status, 403);
    server.stop().await;
}

#[tokio::test]
async fn a_referral_no_team_holds_is_flagged_on_the_triage_queue_after_five_working_days() {
    let clock = app::Clock::fixed(Utc::now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    let people = server.people.clone();
    let client = Uuid::new_v4();
    let mut intake = super::journey::intake(Uuid::new_v4(), "gp");
    intake["referral"]["received_on"] = json!(clock.today());
    server
        .ok(
            &people.referrer,
            &super::journey::client_path(client, "referrals"),
            intake,
        )
        .await;
    let _projectors = server.run_projectors().await;
    let browser = signed_in_browser(&server, &people.lead).await;
    let triage = format!("{}/console/triage", server.base);
    let row = format!("tbody tr:has(a[href='/console/people/{client}'])");

    browser.goto(&triage).await;
    let fresh = browser.text(&row).await;
    assert!(!fresh.contains("Waiting too long"), "{fresh}");
    // Five working days are at most eleven days (a weekend and the holidays of Christmas).
    clock.set(clock.now() + Duration::days(12));
    browser.goto(&triage).await;
    assert!(
        browser.text(&row).await.contains("Waiting too long"),
        "{}",
        browser.text(&row).await
    );
    browser
        .assert_accessible("a referral waiting too long")
        .await;
    server.stop().await;
}

/// How many times `who` was shown `client`'s name on a list (the read audit's `caseload`).
async fn caseload_reads(server: &TestServer, client: Uuid, who: &super::Person) -> i64 {
    server
        .db
        .admin_client()
        .await
        .query_one(
            "SELECT count(*) FROM record_reads WHERE client_id = $1 AND staff_id = $2 \
             AND view = 'caseload'",
            &[&client, &who.staff_id],
        )
        .await
        .expect("the read audit")
        .get(0)
}
