//! `casebook bench scale`: what link workers and auditors feel at a national platform's size:
//! a link worker's caseload and a client's journey replay, at (by default) 100,000 clients of
//! about 100 events each (10M events) held by 2,000 link workers. Each latency is set beside
//! the raw read it is built on, on the same cluster in the same run: a primary-key fetch of one
//! caseload row, and the stream's rows read in version order.

use std::path::PathBuf;
use std::time::Instant;

use db::Cluster;
use domain::ClientId;
use eventstore::EventStore;
use projector::{CaseloadFilter, CaseloadProjection};
use uuid::Uuid;

use crate::bench::{percentile, timed};
use crate::bench_rebuild::{
    ReadModel, Rebuilt, append_journeys, journey_events_sized, peak_rss_mb,
};

/// Options for the scale benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleBench {
    /// Clients in the log.
    #[arg(long, default_value_t = 100_000)]
    pub clients: u64,
    /// Link workers holding them.
    #[arg(long, default_value_t = 2_000)]
    pub link_workers: u64,
    /// Appointments per client (with 30 and `--contacts 30`, about 100 events a client).
    #[arg(long, default_value_t = 30)]
    pub appointments: u64,
    /// Contacts per client.
    #[arg(long, default_value_t = 30)]
    pub contacts: u64,
    /// Timed runs of each read.
    #[arg(long, default_value_t = 1000)]
    pub runs: usize,
    /// Timed runs of each outcome report (each aggregates the whole organisation's figures).
    #[arg(long, default_value_t = 100)]
    pub report_runs: usize,
    /// Where to put the benchmark's own cluster (removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

const ORGANISATION: Uuid = crate::bench_rebuild::BENCH_ORGANISATION;

/// The journeys' appointments, contacts and link workers, for the plain function that makes
/// them.
static SHAPE: std::sync::OnceLock<(u128, u128, u128)> = std::sync::OnceLock::new();

/// Times `runs` reads of `sql` for one client's id each (`id` of the run): the floor under an
/// answer from the read model or the log.
async fn read_floor(
    client: &tokio_postgres::Client,
    runs: usize,
    sql: &str,
    id: impl Fn(usize) -> Uuid,
) -> anyhow::Result<Vec<f64>> {
    timed(runs, |i| {
        let id = id(i);
        async move {
            client.query(sql, &[&id]).await?;
            Ok(())
        }
    })
    .await
}

/// Runs the benchmark in `cluster`; the lines of its table. `rebuild` is the product's
/// rebuild from the first event (`casebook rebuild --restart`), which the binary hands in.
///
/// # Errors
/// When a step fails.
pub(crate) async fn measure(
    cluster: &Cluster,
    options: &ScaleBench,
    rebuild: &impl AsyncFn(&EventStore, ReadModel) -> anyhow::Result<Rebuilt>,
) -> anyhow::Result<Vec<String>> {
    // Sealed personal fields, as the service writes them.
    let (admin, store) = crate::bench::sealed_store(cluster, "bench_scale").await?;

    // The journey's shape comes from the options; `append_journeys` takes a plain function.
    SHAPE.get_or_init(|| {
        (
            u128::from(options.appointments),
            u128::from(options.contacts),
            u128::from(options.link_workers),
        )
    });
    let started = Instant::now();
    let written = append_journeys(&store, options.clients, |id| {
        let (appointments, contacts, link_workers) = SHAPE.get().copied().unwrap_or((30, 30, 2000));
        // Two clients in three stay open.
        journey_events_sized(id, appointments, contacts, link_workers, (id - 1) % 3 == 0)
    })
    .await?;
    let fill_seconds = started.elapsed().as_secs_f64();
    eprintln!("filled the log with {written} events in {fill_seconds:.0} s");
    // The people's tasks, open and closed, rule-made and by hand, dated from today.
    let today = app::Clock::system().today();
    let started = Instant::now();
    let tasks_written =
        crate::bench_tasks::append_tasks(&store, options.clients, options.link_workers, today)
            .await?;
    eprintln!(
        "appended {} tasks ({} open) in {} events in {:.0} s",
        tasks_written.tasks,
        tasks_written.open,
        tasks_written.events,
        started.elapsed().as_secs_f64()
    );
    let written = written + tasks_written.events;
    admin.batch_execute("VACUUM ANALYZE events").await?;
    let report = rebuild(&store, ReadModel::Caseload).await?;
    eprintln!(
        "caseload rebuilt: {} events in {:.0} s",
        report.events, report.seconds
    );
    admin.batch_execute("VACUUM ANALYZE caseload").await?;
    let tasks_rebuild = rebuild(&store, ReadModel::Tasks).await?;
    eprintln!(
        "tasks rebuilt: {} events in {:.0} s",
        tasks_rebuild.events, tasks_rebuild.seconds
    );
    admin.batch_execute("VACUUM ANALYZE tasks").await?;

    let client = store.pool().get().await?;
    let clients = options.clients;
    let worker =
        |i: usize| Uuid::from_u128(0x5000 + (i as u128 * 7919) % u128::from(options.link_workers));
    let client_id = |i: usize| Uuid::from_u128(1 + (i as u128 * 104_729) % u128::from(clients));

    let floor = async |sql| read_floor(&client, options.runs, sql, client_id).await;
    let row_floor = floor("SELECT * FROM caseload WHERE client_id = $1").await?;
    let caseload_sizes = std::cell::Cell::new(0usize);
    let caseload = timed(options.runs, |i| {
        let client = &client;
        let sizes = &caseload_sizes;
        async move {
            let rows = CaseloadProjection::page(
                &***client,
                &CaseloadFilter {
                    organisation_id: ORGANISATION,
                    link_worker_id: Some(worker(i)),
                    team_id: None,
                    after: None,
                    limit: 51,
                    triage: false,
                    tag: None,
                },
            )
            .await?;
            sizes.set(sizes.get() + rows.len());
            Ok(())
        }
    })
    .await?;
    let task_times = task_lists(&store, options, today, &worker).await?;
    let page = console_caseload(&admin, &store, options.runs, &worker).await?;
    eprintln!(
        "console caseload page: p50 {:.2} ms, p99 {:.2} ms, largest {:.1} KB",
        percentile(&page.times, 50.0),
        percentile(&page.times, 99.0),
        page.largest_bytes as f64 / 1024.0
    );
    let stream_floor =
        floor("SELECT * FROM events WHERE stream_id = $1 ORDER BY stream_version").await?;
    // The journey as an auditor reads it: policy, read audit, one read of the stream.
    let entries = std::cell::Cell::new(0usize);
    let cases = app::CaseService::new(store.clone());
    let auditor = app::access::Principal {
        staff_id: domain::StaffId(uuid::Uuid::from_u128(0xA0D1)),
        organisation_id: ORGANISATION,
        team_id: None,
        role: app::access::Role::Auditor,
        token_id: uuid::Uuid::nil(),
    };
    let journey = timed(options.runs, |i| {
        let cases = &cases;
        let auditor = &auditor;
        let entries = &entries;
        async move {
            let read = app::records::ReadContext::new(None, uuid::Uuid::new_v4());
            let page = app::Page::numbered(None, Some(app::MAX_LIMIT))?;
            let replay = cases
                .journey_page(
                    auditor,
                    ClientId(client_id(i)),
                    app::JourneyView::default(),
                    page,
                    &read,
                )
                .await?;
            entries.set(entries.get() + replay.entries.len());
            Ok(())
        }
    })
    .await?;

    // The outcome figures under the rules a new installation reports by (v3: every fact on its
    // own day), rebuilt from the whole log, and the report an analyst reads for all time, for
    // the journeys' year and for one quarter, beside the largest single aggregate it runs (the
    // period's dated appointments and contacts, counted from their index).
    drop(client);
    let outcomes_rebuild = rebuild(&store, ReadModel::Outcomes { rules: 3 }).await?;
    eprintln!(
        "outcomes v3 rebuilt: {} events in {:.0} s",
        outcomes_rebuild.events, outcomes_rebuild.seconds
    );
    admin
        .batch_execute(
            "VACUUM ANALYZE report_referrals, report_episodes, report_activity, report_scores, \
             report_baselines, report_connections, report_gaps",
        )
        .await?;
    let client = store.pool().get().await?;
    let reporting = app::reports::Reporting::new(store.clone());
    let analyst = app::access::Principal {
        role: app::access::Role::ReportingAnalyst,
        ..auditor.clone()
    };
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d);
    let periods = [
        ("all time", None, None),
        ("2026", day(2026, 1, 1), day(2026, 12, 31)),
        ("2026 Q2", day(2026, 4, 1), day(2026, 6, 30)),
    ];
    let mut report_rows = Vec::new();
    for (name, from, to) in periods {
        let floor = timed(options.report_runs, |_| {
            let client = &client;
            async move {
                client
                    .query_one(
                        "SELECT count(*) FROM report_activity WHERE rules_version = 3 \
                         AND organisation_id = $1 AND on_day >= coalesce($2, '-infinity'::date) \
                         AND on_day <= coalesce($3, 'infinity'::date)",
                        &[&ORGANISATION, &from, &to],
                    )
                    .await?;
                Ok(())
            }
        })
        .await?;
        let query = app::reports::ReportQuery {
            from,
            to,
            team_id: None,
            source: None,
            reason: None,
            after: None,
        };
        let reports = timed(options.report_runs, |_| {
            let (reporting, analyst, query) = (&reporting, &analyst, &query);
            async move {
                let report = reporting.outcomes(analyst, query, None).await?;
                anyhow::ensure!(report.rules_version == 3, "reported under v3");
                Ok(())
            }
        })
        .await?;
        report_rows.push((name, floor, reports));
    }

    let row = |name: &str, times: &[f64], floor: &[f64]| {
        format!(
            "| {name} | {:.2} | {:.2} | {:.1} |",
            percentile(times, 50.0),
            percentile(times, 99.0),
            percentile(times, 50.0) / percentile(floor, 50.0).max(1e-9)
        )
    };
    let mut lines = vec![
        format!(
            "{written} events for {clients} clients held by {} link workers (filled at {:.0} events/s; caseload rebuilt at {:.0} events/s), {} runs each",
            options.link_workers,
            written as f64 / fill_seconds,
            report.events as f64 / report.seconds,
            options.runs
        ),
        format!(
            "{} tasks ({} open) in {} events; tasks rebuilt at {:.0} events/s",
            tasks_written.tasks,
            tasks_written.open,
            tasks_written.events,
            tasks_rebuild.events as f64 / tasks_rebuild.seconds
        ),
        "| what | p50 ms | p99 ms | p50 ratio to its raw read |".to_owned(),
        "|---|---|---|---|".to_owned(),
        row(
            "raw: one caseload row by primary key",
            &row_floor,
            &row_floor,
        ),
        row(
            &format!(
                "a link worker's caseload, first page (mean {:.0} people)",
                caseload_sizes.get() as f64 / options.runs as f64
            ),
            &caseload,
            &row_floor,
        ),
        row(
            &format!(
                "the console's caseload page over HTTP (session, read model, HTML; largest {:.1} KB)",
                page.largest_bytes as f64 / 1024.0
            ),
            &page.times,
            &row_floor,
        ),
        row(
            &format!(
                "a link worker's open tasks, first page (`TaskService::mine`; mean {:.0} tasks)",
                task_times.mine_items
            ),
            &task_times.mine,
            &row_floor,
        ),
        row(
            &format!(
                "a team's overdue tasks, first page (`TaskService::team_overdue`; mean {:.0} tasks)",
                task_times.overdue_items
            ),
            &task_times.overdue,
            &row_floor,
        ),
        row(
            "raw: one client's events in version order",
            &stream_floor,
            &stream_floor,
        ),
        row(
            &format!(
                "a client's journey replayed (mean {:.0} entries)",
                entries.get() as f64 / options.runs as f64
            ),
            &journey,
            &stream_floor,
        ),
    ];
    lines.push(format!(
        "outcome figures (rules v3) rebuilt at {:.0} events/s; {} runs of each report",
        outcomes_rebuild.events as f64 / outcomes_rebuild.seconds,
        options.report_runs
    ));
    lines.push("| report | p50 ms | p99 ms | p50 ratio to its raw read |".to_owned());
    lines.push("|---|---|---|---|".to_owned());
    for (name, floor, reports) in &report_rows {
        lines.push(row(
            &format!("raw: the period's dated activity counted ({name})"),
            floor,
            floor,
        ));
        lines.push(row(
            &format!("the outcome report, {name} (`Reporting::outcomes`)"),
            reports,
            floor,
        ));
    }
    lines.push(format!(
        "peak RSS of this process (fill, rebuilds, reads): {} MB",
        peak_rss_mb()
    ));
    Ok(lines)
}

/// "My tasks" and "my team's overdue tasks" timed: milliseconds per call (sorted) and the mean
/// number of tasks on the page.
struct TaskTimes {
    mine: Vec<f64>,
    mine_items: f64,
    overdue: Vec<f64>,
    overdue_items: f64,
}

/// Times `runs` calls of each task list as the service answers it (`app::tasks`: the policy,
/// the wait for the read model, one snapshot with the page and its `as_of`): the first page of
/// a link worker's open tasks (the next worker each run), and of a team's overdue tasks for
/// its lead (the next of the four teams each run). Prints each query's plan at this size.
async fn task_lists(
    store: &EventStore,
    options: &ScaleBench,
    today: chrono::NaiveDate,
    worker: &impl Fn(usize) -> Uuid,
) -> anyhow::Result<TaskTimes> {
    use app::access::{Principal, Role};
    let tasks = app::tasks::TaskService::beside(&app::CaseService::new(store.clone()));
    let team = |i: usize| crate::bench_tasks::team_of(i as u128);
    let link_worker = |i: usize| Principal {
        staff_id: domain::StaffId(worker(i)),
        organisation_id: ORGANISATION,
        team_id: None,
        role: Role::LinkWorker,
        token_id: Uuid::nil(),
    };
    let lead = |i: usize| Principal {
        staff_id: domain::StaffId(Uuid::from_u128(0x1EAD_0000 + i as u128 % 4)),
        organisation_id: ORGANISATION,
        team_id: Some(domain::TeamId(team(i))),
        role: Role::TeamLead,
        token_id: Uuid::nil(),
    };
    let items = std::cell::Cell::new(0usize);
    let mine = timed(options.runs, |i| {
        let (tasks, items, principal) = (&tasks, &items, link_worker(i));
        async move {
            let page = tasks.mine(&principal, None, None, None).await?;
            items.set(items.get() + page.items.len());
            Ok(())
        }
    })
    .await?;
    let mine_items = items.replace(0) as f64 / options.runs as f64;
    let overdue = timed(options.runs, |i| {
        let (tasks, items, principal) = (&tasks, &items, lead(i));
        async move {
            let team_id = principal.team_id.map(|t| t.0).unwrap_or_default();
            let page = tasks
                .team_overdue(&principal, team_id, None, None, None)
                .await?;
            anyhow::ensure!(page.items.iter().all(|t| t.overdue), "only overdue tasks");
            items.set(items.get() + page.items.len());
            Ok(())
        }
    })
    .await?;
    let overdue_items = items.get() as f64 / options.runs as f64;
    eprintln!(
        "my tasks: p50 {:.2} ms, p99 {:.2} ms (mean {mine_items:.0} tasks); team's overdue tasks: p50 {:.2} ms, p99 {:.2} ms (mean {overdue_items:.0} tasks)",
        percentile(&mine, 50.0),
        percentile(&mine, 99.0),
        percentile(&overdue, 50.0),
        percentile(&overdue, 99.0),
    );
    // The plans behind both lists, as the service's role runs them.
    let client = store.pool().get().await?;
    let limit = app::DEFAULT_LIMIT + 1;
    let (one_worker, one_team) = (worker(0), team(0));
    let plans: [(
        &str,
        String,
        Vec<&(dyn tokio_postgres::types::ToSql + Sync)>,
    ); 2] = [
        (
            "my tasks",
            app::tasks::list_sql(app::tasks::TaskList::Mine, false, false),
            vec![&ORGANISATION, &one_worker, &limit],
        ),
        (
            "team's overdue tasks",
            app::tasks::list_sql(app::tasks::TaskList::TeamOverdue, true, false),
            vec![&ORGANISATION, &one_team, &today, &limit],
        ),
    ];
    for (name, sql, params) in plans {
        match client
            .query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"), &params)
            .await
        {
            Ok(rows) => {
                eprintln!("plan of {name}:");
                for row in rows {
                    eprintln!("  {}", row.get::<_, String>(0));
                }
            }
            Err(e) => eprintln!("plan of {name}: not explained ({e})"),
        }
    }
    Ok(TaskTimes {
        mine,
        mine_items,
        overdue,
        overdue_items,
    })
}

/// The console's caseload page as link workers' browsers ask for it: milliseconds per request
/// (sorted) and the largest page.
struct PageTimes {
    times: Vec<f64>,
    largest_bytes: usize,
}

/// Link workers signed in to the console for the page timings (each run asks as the next).
const SIGNED_IN: usize = 20;

/// Serves the API and the console as `casebook serve` does (on this runtime, over loopback),
/// signs `SIGNED_IN` of the journeys' link workers in with one-time links, and times `runs`
/// requests for `/console/caseload`, each as one of them: the session lookup and its
/// last-seen write, the caseload read, and the page's HTML.
async fn console_caseload(
    admin: &tokio_postgres::Client,
    store: &EventStore,
    runs: usize,
    worker: &impl Fn(usize) -> Uuid,
) -> anyhow::Result<PageTimes> {
    let team = Uuid::from_u128(0x7EA3);
    admin
        .execute(
            "INSERT INTO organisations (organisation_id, name) VALUES ($1, 'Bench organisation') \
             ON CONFLICT DO NOTHING",
            &[&ORGANISATION],
        )
        .await?;
    admin
        .execute(
            "INSERT INTO teams (team_id, organisation_id, name) VALUES ($1, $2, 'Bench team') \
             ON CONFLICT DO NOTHING",
            &[&team, &ORGANISATION],
        )
        .await?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = api::http::AppState::with_clock(store.clone(), app::Clock::system());
    let pages = console::Console::new(state.cases().clone(), state.reports().clone());
    let server = actix_web::HttpServer::new(move || {
        api::http::app(state.clone()).configure(console::configure(pages.clone()))
    })
    .disable_signals()
    .workers(2)
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut cookies = Vec::new();
    for k in 0..SIGNED_IN {
        let staff = worker(k);
        admin
            .execute(
                "INSERT INTO staff (staff_id, organisation_id, team_id, name, role) \
                 VALUES ($1, $2, $3, $4, 'link_worker') ON CONFLICT DO NOTHING",
                &[&staff, &ORGANISATION, &team, &format!("Bench worker {k}")],
            )
            .await?;
        let link =
            app::sessions::create_sign_in_link(admin, staff, chrono::Duration::hours(1), None)
                .await?;
        let signed_in = http
            .post(format!("{base}/console/sign-in"))
            .form(&[("code", link.code.as_str())])
            .send()
            .await?;
        let cookie = signed_in
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .ok_or_else(|| anyhow::anyhow!("no session cookie ({})", signed_in.status()))?
            .to_owned();
        cookies.push(cookie);
    }
    let largest = std::cell::Cell::new(0usize);
    let times = timed(runs, |i| {
        let request = http
            .get(format!("{base}/console/caseload"))
            .header("cookie", &cookies[i % SIGNED_IN]);
        let largest = &largest;
        async move {
            let response = request.send().await?;
            anyhow::ensure!(response.status().is_success(), "{}", response.status());
            let body = response.bytes().await?;
            largest.set(largest.get().max(body.len()));
            Ok(())
        }
    })
    .await?;
    handle.stop(true).await;
    Ok(PageTimes {
        times,
        largest_bytes: largest.get(),
    })
}
