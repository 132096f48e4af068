//! Tasks over HTTP on a fixed clock: raised by hand under the task policy, closed once by their
//! assignee or their team's lead, and read back as "my tasks" and "my team's overdue tasks"
//! in due order, "overdue" judged by the service's clock.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::journey::open_case;
use super::{Person, TestServer};

fn ids(page: &Value) -> Vec<Value> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["task_id"].clone())
        .collect()
}

/// [`raise`] under an idempotency key.
async fn raise_keyed(server: &TestServer, who: &Person, body: &Value, key: &str) -> super::Reply {
    server
        .call(
            Some(who),
            "POST",
            "/api/v1/tasks",
            Some(body),
            &[("Idempotency-Key", key)],
        )
        .await
}

async fn raise(server: &TestServer, who: &Person, body: Value) -> super::Reply {
    server.post(who, "/api/v1/tasks", body).await
}

#[tokio::test]
async fn tasks_are_raised_closed_once_and_listed_by_due_day_with_overdue_by_the_clock() {
    let clock = app::Clock::fixed(Utc::now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    let people = server.people.clone();
    let client = open_case(&server).await;
    // The read models follow the log as under `serve`; reads name the write they must show.
    let _projectors = server.run_projectors().await;
    let today = clock.today();
    let day = |n: i64| (today + Duration::days(n)).to_string();

    // The worker raises a call-back on their case and a team task; the lead one for worker2.
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let body_a =
        json!({ "task_id": a, "kind": "call_back", "client_id": client, "due_on": day(2) });
    let first = raise_keyed(&server, &people.worker, &body_a, "task-a").await;
    assert_eq!(first.status, 201, "{:#}", first.body);
    assert_eq!(first.body["events"].as_array().map(Vec::len), Some(1));
    // The same request again is the first answer, and writes nothing.
    let again = raise_keyed(&server, &people.worker, &body_a, "task-a").await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body["position"], first.body["position"]);
    // The key again from a colleague who may not close the task learns nothing of it.
    let colleague = raise_keyed(&server, &people.worker2, &body_a, "task-a").await;
    assert_eq!(colleague.status, 403, "{:#}", colleague.body);
    assert_eq!(colleague.header("idempotent-replayed"), None);
    // The same id without the key is a second raise: refused.
    let twice = raise(&server, &people.worker, body_a.clone()).await;
    assert_eq!(twice.status, 422, "{:#}", twice.body);
    assert_eq!(twice.body["rule"], "task_already_raised");

    let team_task = json!({ "task_id": b, "kind": "review_plan", "due_on": day(5) });
    server.ok(&people.worker, "/api/v1/tasks", team_task).await;
    let for_worker2 = json!({
        "task_id": c, "kind": "chase_connection_outcome", "client_id": client,
        "assignee_id": people.worker2.staff_id, "due_on": day(1)
    });
    let last = server.ok(&people.lead, "/api/v1/tasks", for_worker2).await;

    // Refusals, each naming why.
    let not_theirs = json!({
        "task_id": Uuid::new_v4(), "kind": "call_back", "assignee_id": people.worker2.staff_id, "due_on": day(1)
    });
    let reply = raise(&server, &people.worker, not_theirs).await;
    reply.refused_at(422, "assignee_id");
    let other_team = json!({
        "task_id": Uuid::new_v4(), "kind": "call_back", "assignee_id": people.other_worker.staff_id, "due_on": day(1)
    });
    let reply = raise(&server, &people.lead, other_team).await;
    assert_eq!(reply.status, 422, "{:#}", reply.body);
    let on_their_case = |due: String| json!({ "task_id": Uuid::new_v4(), "kind": "call_back", "client_id": client, "due_on": due });
    assert_eq!(
        raise(&server, &people.worker2, on_their_case(day(1)))
            .await
            .status,
        403,
        "not worker2's case"
    );
    let foreign = raise(&server, &people.foreign_worker, on_their_case(day(1))).await;
    assert_eq!(foreign.status, 404, "another organisation's person");
    assert_eq!(foreign.body["detail"], "no such client record");
    assert_eq!(
        raise(&server, &people.auditor, on_their_case(day(1)))
            .await
            .status,
        403
    );
    let early = raise(&server, &people.worker, on_their_case(day(-1))).await;
    assert_eq!(early.status, 422, "{:#}", early.body);
    assert_eq!(early.body["rule"], "task_due_before_raised");
    assert_eq!(early.body["errors"][0]["field"], "due_on");
    // Nor more than five years on (a year past 9999 cannot even be written as a date).
    for late in [day(5 * 366), "+10000-01-01".to_owned()] {
        let reply = raise(&server, &people.worker, on_their_case(late)).await;
        assert_eq!(reply.status, 422, "{:#}", reply.body);
        assert_eq!(reply.body["rule"], "task_due_too_late");
        assert_eq!(reply.body["errors"][0]["field"], "due_on");
    }
    let mut bad_kind = on_their_case(day(1));
    bad_kind["kind"] = json!("tidy_the_desk");
    let reply = raise(&server, &people.worker, bad_kind).await;
    assert_eq!(reply.status, 400, "{:#}", reply.body);
    assert!(
        reply.body["errors"][0]["field"]
            .as_str()
            .unwrap_or("")
            .contains("kind")
    );

    // My tasks, soonest due first, once the read model has the last write.
    let after = last.body["position"].as_i64().expect("a position");
    let mine = server
        .read(
            &people.worker,
            &format!("/api/v1/tasks?assignee=me&after={after}"),
        )
        .await;
    assert_eq!(ids(&mine.body), vec![json!(a), json!(b)]);
    assert_eq!(mine.body["items"][0]["overdue"], false);
    assert_eq!(mine.body["items"][0]["client_id"], json!(client));
    assert_eq!(mine.body["items"][0]["label"], "call the person back");
    let theirs = server.read(&people.worker2, "/api/v1/tasks").await;
    assert_eq!(ids(&theirs.body), vec![json!(c)]);
    // A page at a time.
    let one = server.read(&people.worker, "/api/v1/tasks?limit=1").await;
    assert_eq!(ids(&one.body), vec![json!(a)]);
    let cursor = one.body["next_cursor"].as_str().expect("a cursor");
    let two = server
        .read(
            &people.worker,
            &format!("/api/v1/tasks?limit=1&cursor={cursor}"),
        )
        .await;
    assert_eq!(ids(&two.body), vec![json!(b)]);
    assert!(two.body["next_cursor"].is_null());
    for bad in ["assignee=someone", "limit=0", "cursor=nonsense"] {
        let reply = server
            .get(&people.worker, &format!("/api/v1/tasks?{bad}"))
            .await;
        assert_eq!(reply.status, 400, "{bad}: {:#}", reply.body);
        let field = bad.split('=').next().unwrap_or_default();
        assert_eq!(reply.body["errors"][0]["field"], format!("query.{field}"));
    }
    assert_eq!(server.get(&people.admin, "/api/v1/tasks").await.status, 403);

    // Nothing is overdue today; three days on, two are.
    let team = people.lead.team_id.expect("a team");
    let overdue_path = format!("/api/v1/teams/{team}/tasks/overdue");
    let overdue = server.read(&people.lead, &overdue_path).await;
    assert_eq!(ids(&overdue.body), Vec::<Value>::new());
    clock.set(clock.now() + Duration::days(3));
    let overdue = server.read(&people.lead, &overdue_path).await;
    assert_eq!(ids(&overdue.body), vec![json!(c), json!(a)]);
    assert!(
        overdue.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|t| t["overdue"] == true)
    );
    assert_eq!(
        server.get(&people.other_lead, &overdue_path).await.status,
        403
    );
    let foreign = server.get(&people.foreign_lead, &overdue_path).await;
    assert_eq!(foreign.status, 404);
    assert_eq!(foreign.body["detail"], "no such team");
    assert_eq!(server.get(&people.worker, &overdue_path).await.status, 403);

    // Closing: the assignee marks theirs done, once; someone else's is not theirs to close;
    // the lead cancels a team task; another organisation's is absent; a stale If-Match is 409.
    let done = server
        .ok(
            &people.worker,
            &format!("/api/v1/tasks/{a}/done"),
            json!({}),
        )
        .await;
    assert_eq!(done.body["stream_version"], 2);
    let again = server
        .post(
            &people.worker,
            &format!("/api/v1/tasks/{a}/done"),
            json!({}),
        )
        .await;
    assert_eq!(again.status, 422, "{:#}", again.body);
    assert_eq!(again.body["rule"], "task_closed");
    let cancel = json!({ "reason": "no_longer_needed" });
    let reply = server
        .post(
            &people.worker2,
            &format!("/api/v1/tasks/{b}/cancel"),
            cancel.clone(),
        )
        .await;
    assert_eq!(reply.status, 403, "{:#}", reply.body);
    server
        .ok(
            &people.lead,
            &format!("/api/v1/tasks/{b}/cancel"),
            cancel.clone(),
        )
        .await;
    let reply = server
        .post(
            &people.foreign_lead,
            &format!("/api/v1/tasks/{c}/done"),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 404, "{:#}", reply.body);
    let stale = server
        .call(
            Some(&people.worker2),
            "POST",
            &format!("/api/v1/tasks/{c}/done"),
            Some(&json!({})),
            &[("If-Match", "\"7\"")],
        )
        .await;
    assert_eq!(stale.status, 409, "{:#}", stale.body);
    let unknown = server
        .post(
            &people.lead,
            &format!("/api/v1/tasks/{}/done", Uuid::new_v4()),
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    // A client's id is no task.
    let reply = server
        .post(
            &people.lead,
            &format!("/api/v1/tasks/{client}/done"),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 404, "{:#}", reply.body);
    let closed = server
        .ok(
            &people.worker2,
            &format!("/api/v1/tasks/{c}/done"),
            json!({}),
        )
        .await;

    let after = closed.body["position"].as_i64().expect("a position");
    let mine = server
        .read(&people.worker, &format!("/api/v1/tasks?after={after}"))
        .await;
    assert_eq!(ids(&mine.body), Vec::<Value>::new());
    let overdue = server.read(&people.lead, &overdue_path).await;
    assert_eq!(ids(&overdue.body), Vec::<Value>::new());

    // Who did what is in the log, as always.
    let admin = server.db.admin_client().await;
    let rows = admin
        .query(
            "SELECT event_type, actor_id FROM events WHERE stream_type = 'task' \
             AND stream_id = ANY($1) ORDER BY position",
            &[&vec![a, b, c]],
        )
        .await
        .expect("the task events");
    let log: Vec<(String, Uuid)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        log,
        vec![
            ("TaskRaised".to_owned(), people.worker.staff_id),
            ("TaskRaised".to_owned(), people.worker.staff_id),
            ("TaskRaised".to_owned(), people.lead.staff_id),
            ("TaskDone".to_owned(), people.worker.staff_id),
            ("TaskCancelled".to_owned(), people.lead.staff_id),
            ("TaskDone".to_owned(), people.worker2.staff_id),
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn the_task_maker_raises_what_the_rules_call_for_once_even_from_four_processes_at_once() {
    let clock = app::Clock::fixed(Utc::now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    let people = server.people.clone();
    let client = open_case(&server).await;
    server.catch_up().await;
    let makers: Vec<app::task_maker::TaskMaker> = (0..4)
        .map(|_| {
            // Each as a process of its own would have it: its own case service on the store.
            let cases = app::CaseService::with_clock(server.store.clone(), clock.clone());
            app::task_maker::TaskMaker::beside(&cases).expect("the task rules")
        })
        .collect();

    // Just accepted: nothing to do.
    let report = makers[0].run_once().await.expect("a run");
    assert_eq!((report.raised, report.already), (0, 0));
    assert!(report.cases >= 1);

    // The id the maker will give the task to make contact is derived from the case (and so
    // can be worked out by anyone who knows the client's id): nobody may raise a task under
    // it first, in another organisation or in this one, which would keep the maker from
    // raising its own (it would count it as raised already).
    let admin = server.db.admin_client().await;
    let accepted_at: chrono::DateTime<Utc> = admin
        .query_one(
            "SELECT accepted_at FROM caseload WHERE client_id = $1",
            &[&client],
        )
        .await
        .expect("the caseload row")
        .get(0);
    let makers_id = app::task_maker::task_id(1, "no_contact", client, &accepted_at.to_rfc3339()).0;
    for who in [&people.foreign_lead, &people.lead] {
        let squat = raise(
            &server,
            who,
            json!({ "task_id": makers_id, "kind": "other", "due_on": clock.today().to_string() }),
        )
        .await;
        assert_eq!(squat.status, 422, "{:#}", squat.body);
        assert_eq!(squat.body["errors"][0]["field"], "task_id");
    }

    // 28 days on with no contact (caseload rules v1): one task to make contact, raised once
    // by four makers running at the same moment.
    clock.set(clock.now() + Duration::days(28));
    let runs = futures_util::future::join_all(makers.iter().map(|m| m.run_once())).await;
    let reports: Vec<_> = runs.into_iter().map(|r| r.expect("a run")).collect();
    assert_eq!(
        reports.iter().map(|r| r.raised).sum::<u64>(),
        1,
        "{reports:?}"
    );
    assert_eq!(
        reports.iter().map(|r| r.already).sum::<u64>(),
        3,
        "{reports:?}"
    );
    let raised: Vec<tokio_postgres::Row> = admin
        .query(
            "SELECT stream_id, payload, actor_role FROM events WHERE event_type = 'TaskRaised'",
            &[],
        )
        .await
        .expect("the raised tasks");
    assert_eq!(raised.len(), 1);
    let payload: Value = raised[0].get(1);
    assert_eq!(raised[0].get::<_, String>(2), "task_maker");
    assert_eq!(payload["kind"], "make_contact");
    assert_eq!(payload["client_id"], json!(client));
    assert_eq!(payload["assignee_id"], json!(people.worker.staff_id));
    assert_eq!(
        payload["rule"],
        json!({ "rule": "no_contact", "version": 1 })
    );
    let task: Uuid = raised[0].get(0);
    assert_eq!(
        task, makers_id,
        "raised under the id refused to the callers above"
    );

    // Again, after the read model has it: known, not tried.
    server.catch_up().await;
    let report = makers[1].run_once().await.expect("a run");
    assert_eq!((report.raised, report.already), (0, 1));

    // It is the worker's to do, and done, it is not raised again for the same silence.
    let mine = server.read(&people.worker, "/api/v1/tasks").await;
    assert_eq!(ids(&mine.body), vec![json!(task)]);
    assert_eq!(mine.body["items"][0]["rule"], "no_contact");
    server
        .ok(
            &people.worker,
            &format!("/api/v1/tasks/{task}/done"),
            json!({}),
        )
        .await;
    server.catch_up().await;
    let report = makers[2].run_once().await.expect("a run");
    assert_eq!((report.raised, report.already), (0, 1));
    server.stop().await;
}

/// Measures the two task lists over a large tasks table: a million tasks (nine in ten closed)
/// across 20 organisations, 200 teams and 2,000 staff, as after years of use. Run by hand:
/// `cargo nextest run -E 'test(/task_lists_at_scale/)' --run-ignored only --no-capture`.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn task_lists_at_scale_are_index_scans() {
    let db = testkit::TestDb::new().await;
    let admin = db.admin_client().await;
    admin
        .batch_execute(
            "INSERT INTO tasks (task_id, organisation_id, team_id, assignee_id, client_id, kind, \
               status, raised_on, due_on, raised_by, stream_version) \
             SELECT gen_random_uuid(), \
               ('00000000-0000-0000-0000-0000000000' || lpad((i % 20)::text, 2, '0'))::uuid, \
               ('00000000-0000-0000-0001-000000000' || lpad((i % 200)::text, 3, '0'))::uuid, \
               ('00000000-0000-0000-0002-00000000' || lpad((i % 2000)::text, 4, '0'))::uuid, \
               gen_random_uuid(), 'call_back', \
               CASE WHEN (i / 2000) % 10 = 0 THEN 'open' ELSE 'done' END, \
               date '2024-01-01' + (i % 1000), date '2024-01-08' + (i % 1000), \
               gen_random_uuid(), 1 \
             FROM generate_series(1, 1000000) AS i; ANALYZE tasks;",
        )
        .await
        .expect("a million tasks");
    let staff = "00000000-0000-0000-0002-000000000007";
    let team = "00000000-0000-0000-0001-000000000007";
    let organisation = "00000000-0000-0000-0000-000000000007";
    // The service's own queries, prepared and planned generically (as a prepared statement is
    // after its fifth use): every plan must still be an index range scan.
    admin
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .expect("generic plans");
    use app::tasks::{TaskList, list_sql};
    for (n, (what, list, whose, due_before, after)) in [
        ("my open tasks", TaskList::Mine, staff, false, false),
        (
            "my open tasks, next page",
            TaskList::Mine,
            staff,
            false,
            true,
        ),
        (
            "a team's overdue tasks",
            TaskList::TeamOverdue,
            team,
            true,
            false,
        ),
        (
            "a team's overdue tasks, next page",
            TaskList::TeamOverdue,
            team,
            true,
            true,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut types = vec!["uuid", "uuid"];
        let mut args = vec![format!("'{organisation}'"), format!("'{whose}'")];
        if due_before {
            types.push("date");
            args.push("'2026-11-30'".into());
        }
        if after {
            types.extend(["date", "uuid"]);
            args.extend(["'2024-06-01'".into(), format!("'{}'", Uuid::nil())]);
        }
        types.push("bigint");
        args.push("51".into());
        admin
            .batch_execute(&format!(
                "PREPARE q{n} ({}) AS {}",
                types.join(", "),
                list_sql(list, due_before, after)
            ))
            .await
            .expect("the service's query prepares");
        let sql = format!("EXECUTE q{n} ({})", args.join(", "));
        let plan: Vec<String> = admin
            .query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"), &[])
            .await
            .expect("a plan")
            .iter()
            .map(|r| r.get(0))
            .collect();
        println!("{what}:\n{}", plan.join("\n"));
        assert!(
            plan.iter().any(|l| l.contains("Index Scan")),
            "{what}: {plan:#?}"
        );
        assert!(
            !plan.iter().any(|l| l.contains("Seq Scan")),
            "{what}: {plan:#?}"
        );
        // Read in due order from the index, not gathered and sorted.
        assert!(
            !plan.iter().any(|l| l
                .trim_start()
                .trim_start_matches("->")
                .trim_start()
                .starts_with("Sort")),
            "{what}: {plan:#?}"
        );
    }
}

/// The tasks read model rebuilt in place from the log is the one the projector kept, whatever
/// had happened to the table.
#[tokio::test]
async fn the_tasks_read_model_is_rebuilt_from_the_log() {
    let clock = app::Clock::fixed(Utc::now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    let people = server.people.clone();
    let client = open_case(&server).await;
    let today = clock.today();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let due = (today + Duration::days(2)).to_string();
    server
        .ok(
            &people.worker,
            "/api/v1/tasks",
            json!({ "task_id": a, "kind": "call_back", "client_id": client, "due_on": due }),
        )
        .await;
    server
        .ok(
            &people.worker,
            "/api/v1/tasks",
            json!({ "task_id": b, "kind": "review_plan", "due_on": due }),
        )
        .await;
    server
        .ok(
            &people.worker,
            &format!("/api/v1/tasks/{a}/done"),
            json!({}),
        )
        .await;
    server.catch_up().await;
    let admin = server.db.admin_client().await;
    let rows = async || -> Vec<Value> {
        admin
            .query("SELECT to_jsonb(t) FROM tasks t ORDER BY task_id", &[])
            .await
            .expect("tasks")
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let kept = rows().await;
    assert_eq!(kept.len(), 2, "{kept:#?}");
    admin
        .batch_execute("UPDATE tasks SET status = 'cancelled'; DELETE FROM tasks WHERE task_id IN (SELECT task_id FROM tasks LIMIT 1)")
        .await
        .expect("a damaged table");
    assert_ne!(rows().await, kept);
    // As `serve` stopped first: nothing else holds the projection.
    projector::bookkeeping::release_lease(
        &server.db.app_client().await,
        projector::TASKS,
        server.holder,
    )
    .await
    .expect("giving up the lease");
    let rebuilt = casebook::rebuild::rebuild(
        &server.store,
        casebook::rebuild::RebuildTarget::Tasks,
        &casebook::rebuild::RebuildOptions::default(),
    )
    .await
    .expect("rebuild");
    assert_eq!(rebuilt.projection, projector::TASKS);
    assert!(rebuilt.switched);
    assert_eq!(rows().await, kept);
}
