//! `casebook`: the command line. Everything it runs lives in the library.

use std::process::ExitCode;

use anyhow::Context;
use casebook::rebuild::{RebuildOptions, RebuildTarget};
use casebook::settings::{OrgCommand, StaffCommand, TeamCommand, TokenCommand};
use casebook::{Application, Cli, Command, Database};
use clap::{CommandFactory, Parser};

/// mimalloc rather than the system's malloc: under load, glibc's malloc, free and their
/// consolidation took about a sixth of the service's CPU (BENCHMARKS.md, "Where a referral's
/// CPU goes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    casebook::telemetry::init(cli.log_format);
    let runtime = match runtime(&cli.command) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match run(cli).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The runtime every command runs on. `serve` answers HTTP on actix's own worker threads (one
/// a core), so its runtime, which drives the pooled connections and runs the batch writers,
/// the projectors and the other background tasks, gets half the cores' threads rather than
/// one a core ([`casebook::http::serve_runtime_threads`]). Every other command's runtime has
/// one thread a core, as `#[tokio::main]` gives. `TOKIO_WORKER_THREADS`, when set, decides
/// for any command.
fn runtime(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if matches!(command, Command::Serve { .. })
        && std::env::var_os("TOKIO_WORKER_THREADS").is_none()
    {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        builder.worker_threads(casebook::http::serve_runtime_threads(cores));
    }
    builder.build()
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Every rule that needs the time reads it from this one clock.
    let clock = app::Clock::system();
    match cli.command {
        Command::Serve {
            listen,
            demo,
            demo_clients,
            read_wait_ms,
            metrics_token_file,
            auth_failures_per_minute,
            trusted_proxies,
            sealing,
            cluster_restart_attempts,
            oidc,
            task_maker_every_seconds,
            gp_outbox_every_seconds,
            gp_endpoints_private,
            notify,
        } => {
            let notify_endpoint = notify.endpoint()?;
            if let Some(endpoint) = &notify_endpoint {
                for (channel, configured) in [
                    ("sms", &endpoint.templates.sms),
                    ("email", &endpoint.templates.email),
                ] {
                    if configured.is_none() {
                        tracing::warn!(
                            channel,
                            "no reminder template id is configured for this channel: its \
                             reminders are held (pending, not sent) until the service is started \
                             with one (set --notify-sms-template and --notify-email-template)"
                        );
                    }
                }
            }
            let oidc = oidc.console()?;
            let read_wait = app::ReadWait::at_most(std::time::Duration::from_millis(read_wait_ms));
            let metrics_token = match metrics_token_file {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading the metrics token {}", path.display()))?
                        .trim()
                        .to_owned(),
                ),
                None => None,
            };
            serve(
                &cli.database,
                &listen,
                demo.then_some(demo_clients),
                &clock,
                Guards {
                    read_wait,
                    metrics_token,
                    auth_failures: auth_failures_per_minute,
                    trusted_proxies,
                    oidc,
                    task_maker_every: std::time::Duration::from_secs(task_maker_every_seconds),
                    gp_outbox_every: std::time::Duration::from_secs(gp_outbox_every_seconds),
                    gp_reach: reach(gp_endpoints_private),
                    reminders: notify_endpoint.map(|endpoint| {
                        (
                            endpoint,
                            std::time::Duration::from_secs(notify.reminders_every_seconds),
                            reach(notify.notify_private),
                        )
                    }),
                },
                sealing,
                casebook::supervisor::SupervisorSettings::with_attempts(cluster_restart_attempts),
            )
            .await
        }
        Command::Demo {
            clients,
            seed,
            concurrency,
        } => demo(&cli.database, clients, seed, concurrency, &clock).await,
        Command::Bench(which) => {
            devtools::bench(which, cli.database.pg_bin, rebuild_for_bench).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Project { sealing } => project(&cli.database, sealing).await,
        Command::Rebuild(args) => {
            let target = args
                .target()
                .unwrap_or_else(|e| e.format(&mut Cli::command()).exit());
            let options = args.options(std::io::IsTerminal::is_terminal(&std::io::stderr()));
            let database = Database::open(&cli.database).await?;
            let store = database.event_store()?;
            let report = casebook::rebuild::rebuild(&store, target, &options).await;
            drop(store);
            database.shutdown().await?;
            let report = report?;
            println!(
                "{}: {} events in {:.1} s ({:.0} events/s){}",
                report.projection,
                report.events,
                report.seconds,
                report.events as f64 / report.seconds.max(1e-9),
                if report.switched {
                    "; reports now use it"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Drop { projection, rules } => {
            anyhow::ensure!(
                projection == projector::OUTCOMES,
                "only `outcomes` keeps figures per rule version"
            );
            let database = Database::open(&cli.database).await?;
            let store = database.event_store()?;
            let dropped = casebook::rebuild::drop_version(&store, rules).await;
            drop(store);
            database.shutdown().await?;
            dropped?;
            println!("dropped the outcome figures of rules version {rules}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare {
            projection,
            a,
            b,
            organisation,
        } => {
            anyhow::ensure!(
                projection == projector::OUTCOMES,
                "only `outcomes` has rule versions to compare"
            );
            let database = Database::open(&cli.database).await?;
            let store = database.event_store()?;
            let text = casebook::rebuild::compare(&store, a, b, organisation).await;
            drop(store);
            database.shutdown().await?;
            print!("{}", text?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Erase { client, reason } => erase(&cli.database, client, &reason, &clock).await,
        Command::Retention {
            dry_run: _,
            apply,
            rules,
            years,
        } => retention(&cli.database, apply, rules, years, &clock).await,
        Command::Key(casebook::settings::KeyCommand::Generate) => {
            let key = eventstore::MasterKey::generate().map_err(anyhow::Error::msg)?;
            println!("{}", key.to_base64());
            let anchor_id = eventstore::anchor::AnchorKey::parse(&key.to_base64())
                .map_err(anyhow::Error::msg)?;
            eprintln!(
                "as a master key its id is {} (keep it apart from the database's backups); as an \
                 anchor key {} (keep it apart from the database and its superuser)",
                key.id(),
                anchor_id.id()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(casebook::settings::KeyCommand::Rotate { new_key_file }) => {
            let text = std::fs::read_to_string(&new_key_file)
                .with_context(|| format!("reading {}", new_key_file.display()))?;
            let new = eventstore::MasterKey::parse(&text).map_err(anyhow::Error::msg)?;
            let database = Database::open(&cli.database).await?;
            let mut owner = db::connect(database.admin_config()).await?;
            let rewrapped =
                eventstore::rotate_master_key(&mut owner, database.master_key(), &new).await?;
            vacuum_keys(&database).await?;
            println!(
                "rewrapped {rewrapped} data keys from master key {} to {}; start the service with the new key",
                database.master_key().id(),
                new.id()
            );
            drop(owner);
            database.shutdown().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Directory(command) => directory(&cli.database, command, &clock).await,
        Command::Org(command) => admin(&cli.database, AdminCommand::Org(command)).await,
        Command::Team(command) => admin(&cli.database, AdminCommand::Team(command)).await,
        Command::Staff(command) => admin(&cli.database, AdminCommand::Staff(command)).await,
        Command::Token(command) => admin(&cli.database, AdminCommand::Token(command)).await,
        Command::Tasks(casebook::settings::TasksCommand::Make) => {
            let database = Database::open(&cli.database).await?;
            let cases = app::CaseService::with_clock(database.event_store()?, clock.clone());
            let outcome = app::task_maker::TaskMaker::beside(&cases)?.run_once().await;
            database.shutdown().await?;
            let report = outcome?;
            println!(
                "{} cases looked at: {} tasks raised, {} raised before",
                report.cases, report.raised, report.already
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Imd(command) => imd(&cli.database, command).await,
        Command::History(command) => history(&cli.database, command, &clock).await,
        Command::Outbox(casebook::settings::OutboxCommand::Dispatch {
            gp_endpoints_private,
        }) => {
            let database = Database::open(&cli.database).await?;
            let cases = app::CaseService::with_clock(database.event_store()?, clock.clone());
            let outcome = casebook::gp_outbox::dispatcher(&cases, reach(gp_endpoints_private))?
                .run_once()
                .await;
            database.shutdown().await?;
            let report = outcome?;
            println!(
                "GP messages: {} delivered, {} to try again, {} dead-lettered, {} withheld",
                report.delivered, report.failed, report.dead_lettered, report.withheld
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Outbox(casebook::settings::OutboxCommand::Reminders { notify }) => {
            let endpoint = notify
                .endpoint()?
                .context("no notification service: set --notify-url and CASEBOOK_NOTIFY_API_KEY")?;
            let database = Database::open(&cli.database).await?;
            let cases = app::CaseService::with_clock(database.event_store()?, clock.clone());
            let outcome = casebook::reminders::dispatcher(
                &cases,
                Some(endpoint),
                reach(notify.notify_private),
            )?
            .run_once()
            .await;
            database.shutdown().await?;
            let report = outcome?;
            println!(
                "Reminders: {} delivered, {} to try again, {} dead-lettered, {} withheld, {} held \
                 (no template configured for their channel)",
                report.delivered, report.failed, report.dead_lettered, report.withheld, report.held
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let database = Database::open(&cli.database).await?;
            let report = database.migrate().await?;
            println!(
                "schema at version {} ({} applied by this start)",
                report.version,
                report.applied.len()
            );
            database.shutdown().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { anchor } => {
            let database = Database::open(&cli.database).await?;
            let client = db::connect(database.admin_config()).await?;
            // Without --anchor, the configured anchor file (the one `serve` writes) when there
            // is one: a plain `verify` then catches the newest events deleted with their
            // checkpoints.
            let anchor = match (anchor.is_empty(), database.anchor_file()) {
                (true, Some(configured)) if configured.exists() => vec![configured.to_owned()],
                _ => anchor,
            };
            let outcome = casebook::sealer::verify(&client, database.anchor_key(), &anchor).await;
            drop(client);
            database.shutdown().await?;
            let outcome = outcome?;
            for line in &outcome.lines {
                println!("{line}");
            }
            Ok(if outcome.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Anchor { out } => {
            let database = Database::open(&cli.database).await?;
            let outcome = async {
                let key = database.anchor_key().context(
                    "sealing needs the anchor key (CASEBOOK_ANCHOR_KEY or CASEBOOK_ANCHOR_KEY_FILE)",
                )?;
                let file = out.as_deref().or(database.anchor_file());
                let client = db::connect(database.app_config()).await?;
                let sealed = casebook::sealer::seal_and_anchor(&client, key, file).await?;
                if let (Some(command), eventstore::anchor::Sealed::New(checkpoint) | eventstore::anchor::Sealed::Unchanged(Some(checkpoint))) =
                    (database.anchor_command(), &sealed)
                {
                    casebook::sealer::send_outbound(command, checkpoint).await?;
                }
                anyhow::Ok(sealed)
            }
            .await;
            database.shutdown().await?;
            match outcome? {
                eventstore::anchor::Sealed::New(checkpoint)
                | eventstore::anchor::Sealed::Unchanged(Some(checkpoint)) => {
                    println!("{}", checkpoint.to_line());
                }
                eventstore::anchor::Sealed::Unchanged(None) => {
                    eprintln!("nothing to seal: the log and the read audit are empty");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// How `serve` answers callers: the read wait, `/metrics`' token, the bad-token limit and the
/// reverse proxies believed for who is calling.
struct Guards {
    read_wait: app::ReadWait,
    metrics_token: Option<String>,
    auth_failures: u32,
    trusted_proxies: Vec<std::net::IpAddr>,
    oidc: Option<casebook::http::ConsoleOidc>,
    /// How often the task maker runs (zero: never).
    task_maker_every: std::time::Duration,
    /// How often the GP message dispatcher runs (zero: never).
    gp_outbox_every: std::time::Duration,
    /// Which addresses the GP message dispatcher may reach.
    gp_reach: casebook::gp_outbox::Reach,
    /// Where appointment reminders go, how often the dispatcher looks, and what it may reach
    /// (none: no notification service is configured, and reminders wait in the outbox).
    reminders: Option<(
        app::reminders::NotifyEndpoint,
        std::time::Duration,
        casebook::gp_outbox::Reach,
    )>,
}

/// The reach of the GP message dispatcher: public addresses only, unless private ones are let.
fn reach(private: bool) -> casebook::gp_outbox::Reach {
    if private {
        casebook::gp_outbox::Reach::Any
    } else {
        casebook::gp_outbox::Reach::Public
    }
}

/// Starts the sealer when an anchor key is configured (and says so when not).
fn start_sealer(
    database: &Database,
    settings: casebook::settings::SealSettings,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let Some(key) = database.anchor_key() else {
        tracing::warn!(
            "no anchor key configured (CASEBOOK_ANCHOR_KEY): the log is not sealed, and only the \
             per-stream hash chains give tampering away"
        );
        return None;
    };
    if database.cluster().is_some_and(db::Cluster::shares_our_user) {
        tracing::warn!(
            "the private cluster runs as this same user, so its superuser can read the anchor key \
             and rewrite the anchor file (pg_read_file, COPY ... PROGRAM): checkpoints then show \
             tampering only by someone without database superuser access. Run casebook as root \
             (the cluster then runs as postgres), or keep the anchor key and file where the \
             cluster's user cannot reach"
        );
    }
    if database.anchor_file().is_none() {
        tracing::warn!(
            "no anchor file configured (CASEBOOK_ANCHOR_FILE): checkpoints are kept only in the \
             database, where its superuser can delete them"
        );
    }
    Some(casebook::sealer::spawn_sealer(
        database.app_config().clone(),
        key.clone(),
        database.anchor_file().map(Into::into),
        database.anchor_command().map(Into::into),
        settings,
        stop.clone(),
    ))
}

async fn serve(
    settings: &casebook::DatabaseSettings,
    listen: &str,
    demo_clients: Option<usize>,
    clock: &app::Clock,
    guards: Guards,
    sealing: casebook::settings::SealSettings,
    supervision: casebook::supervisor::SupervisorSettings,
) -> anyhow::Result<ExitCode> {
    let Guards {
        read_wait,
        metrics_token,
        auth_failures,
        trusted_proxies,
        oidc,
        task_maker_every,
        gp_outbox_every,
        gp_reach,
        reminders,
    } = guards;
    let database = Database::open(settings).await?;
    // A private cluster that dies while the service runs is started again.
    let supervisor = database.supervise(supervision);
    let mut demo_access = None;
    if demo_clients.is_some() {
        let client = db::connect(database.admin_config()).await?;
        let access = devtools::demo::ensure_demo_access(&client).await?;
        let path = devtools::demo::write_tokens(&settings.resolved_data_dir(), &access)?;
        tracing::info!(tokens = %path.display(), "demo organisation ready; `source` the tokens file to use them");
        demo_access = Some(access);
    }
    let listener = eventstore::Listener::start(database.app_config().clone());
    let store = database.event_store()?.with_listener(&listener);
    if let Some(access) = &demo_access {
        let report =
            devtools::demo::import_sample_directory(&store, access.organisation_id, clock.now())
                .await?;
        tracing::info!(
            added = report.added.len(),
            changed = report.changed.len(),
            unchanged = report.unchanged,
            "sample directory imported"
        );
    }
    // The demo population is made while the service already answers.
    let demo_links = demo_access.clone();
    let population = match (demo_clients, demo_access) {
        (Some(clients), Some(access)) => {
            let store = store.clone();
            let admin_config = database.admin_config().clone();
            let today = clock.today();
            Some(tokio::spawn(async move {
                let outcome = async {
                    let admin = db::connect(&admin_config).await?;
                    devtools::population::populate(
                        &store,
                        &admin,
                        &access,
                        &devtools::population::PopulationOptions {
                            clients,
                            seed: 2026,
                            today,
                            concurrency: 4,
                        },
                        |_| {},
                    )
                    .await
                }
                .await;
                match outcome {
                    Ok(report) => tracing::info!(
                        clients = report.clients,
                        already_there = report.skipped,
                        events = report.events,
                        seconds = report.seconds,
                        "demo population ready"
                    ),
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "demo population failed"),
                }
            }))
        }
        _ => None,
    };
    let (stop_projections, projections_stopped) = tokio::sync::watch::channel(false);
    let runners = projector::spawn_all(&store, &projections_stopped).await?;
    let sealer = start_sealer(&database, sealing, &projections_stopped);
    let mut state = api::http::AppState::with_clock(store, clock.clone())
        .with_read_wait(read_wait)
        .with_metrics_token(metrics_token)
        .with_auth_failure_limit(auth_failures)
        .with_trusted_proxies(trusted_proxies);
    if let Some(replica) = database.replica_store()? {
        tracing::info!("caseloads, reports and directory searches read from the replica");
        state = state.with_replica(replica);
    }
    let task_maker = if task_maker_every.is_zero() {
        None
    } else {
        Some(casebook::task_maker::spawn(
            state.cases(),
            task_maker_every,
            projections_stopped.clone(),
        )?)
    };
    let gp_outbox = if gp_outbox_every.is_zero() {
        None
    } else {
        Some(casebook::gp_outbox::spawn(
            state.cases(),
            gp_outbox_every,
            gp_reach,
            projections_stopped.clone(),
        )?)
    };
    let reminders = match reminders {
        Some((endpoint, every, reach)) if !every.is_zero() => Some(casebook::reminders::spawn(
            state.cases(),
            endpoint,
            every,
            reach,
            projections_stopped.clone(),
        )?),
        _ => None,
    };
    // Report snapshots left unfinished when the service last stopped are built again.
    let unfinished = state.snapshots().resume().await?;
    if unfinished > 0 {
        tracing::info!(unfinished, "resuming report snapshots");
    }
    let app = Application::build_with_oidc(listen, state, oidc)?;
    let handle = app.handle();
    let shutdown = shutdown_signal()?;
    tracing::info!(address = %app.address(), "casebook is listening");
    if let Some(oidc) = app.oidc() {
        // Discovery now, so a wrong issuer shows at start; when it fails the first sign-in
        // tries again.
        match oidc.discover().await {
            Ok(()) => tracing::info!(
                issuer = oidc.issuer(),
                "web console: sign-in with OpenID Connect"
            ),
            Err(e) => {
                tracing::warn!(issuer = oidc.issuer(), error = %e, "web console: the OpenID provider cannot be reached yet")
            }
        }
    }
    if let Some(access) = &demo_links {
        let client = db::connect(database.admin_config()).await?;
        for (role, staff_id, _) in &access.staff {
            let link = app::sessions::create_sign_in_link(
                &client,
                *staff_id,
                chrono::Duration::hours(24),
                None,
            )
            .await?;
            tracing::info!(
                role = role.as_str(),
                link = %format!("http://{}/console/sign-in?code={}", app.address(), link.code),
                "web console: one-time sign-in link (24 hours)"
            );
        }
    }
    let server = tokio::spawn(app.run_until_stopped());
    shutdown.await?;
    tracing::info!("shutting down");
    if let Some(supervisor) = supervisor {
        supervisor.stop().await;
    }
    if let Some(population) = population {
        population.abort();
    }
    if let Some(task_maker) = task_maker {
        task_maker.abort();
    }
    if let Some(gp_outbox) = gp_outbox {
        gp_outbox.abort();
    }
    if let Some(reminders) = reminders {
        reminders.abort();
    }
    handle.stop(true).await;
    server.await.context("joining the server")??;
    wind_down(&stop_projections, runners, sealer, listener, database).await
}

async fn demo(
    settings: &casebook::DatabaseSettings,
    clients: usize,
    seed: u64,
    concurrency: usize,
    clock: &app::Clock,
) -> anyhow::Result<ExitCode> {
    let database = Database::open(settings).await?;
    let admin = db::connect(database.admin_config()).await?;
    let store = database.event_store()?;
    let outcome = async {
        let access = devtools::demo::ensure_demo_access(&admin).await?;
        let path = devtools::demo::write_tokens(&settings.resolved_data_dir(), &access)?;
        let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            indicatif::ProgressBar::new(clients as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        let report = devtools::population::populate(
            &store,
            &admin,
            &access,
            &devtools::population::PopulationOptions {
                clients,
                seed,
                today: clock.today(),
                concurrency,
            },
            |n| bar.inc(n as u64),
        )
        .await;
        bar.finish_and_clear();
        let report = report?;
        println!(
            "{} people made ({} already there) with {} link workers: {} commands, {} events in {:.1} s; tokens in {}",
            report.clients,
            report.skipped,
            report.link_workers,
            report.commands,
            report.events,
            report.seconds,
            path.display()
        );
        anyhow::Ok(())
    }
    .await;
    drop(store);
    drop(admin);
    database.shutdown().await?;
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// The benchmarks rebuild read models from the first event as `casebook rebuild --restart`
/// does (they sit below this crate's library, so it is handed to them).
async fn rebuild_for_bench(
    store: &eventstore::EventStore,
    model: devtools::ReadModel,
) -> anyhow::Result<devtools::Rebuilt> {
    let target = match model {
        devtools::ReadModel::Caseload => RebuildTarget::Caseload,
        devtools::ReadModel::Outcomes { rules } => RebuildTarget::Outcomes { rules },
        devtools::ReadModel::Tasks => RebuildTarget::Tasks,
        devtools::ReadModel::All { rules } => RebuildTarget::All { rules },
    };
    let options = RebuildOptions {
        restart: true,
        ..RebuildOptions::default()
    };
    let report = casebook::rebuild::rebuild(store, target, &options).await?;
    Ok(devtools::Rebuilt {
        projection: report.projection,
        events: report.events,
        seconds: report.seconds,
    })
}

/// Runs the projections alone (no HTTP) until Ctrl-C or SIGTERM; a second instance waits as a
/// standby and takes over when the first stops renewing its leases.
async fn project(
    settings: &casebook::DatabaseSettings,
    sealing: casebook::settings::SealSettings,
) -> anyhow::Result<ExitCode> {
    let database = Database::open(settings).await?;
    let listener = eventstore::Listener::start(database.app_config().clone());
    let store = database.event_store()?.with_listener(&listener);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runners = projector::spawn_all(&store, &stopped).await?;
    let sealer = start_sealer(&database, sealing, &stopped);
    let shutdown = shutdown_signal()?;
    tracing::info!(projections = runners.len(), "projecting");
    shutdown.await?;
    wind_down(&stop, runners, sealer, listener, database).await
}

/// Tells the projectors and the sealer to stop and waits for them, then lets go of the
/// listener and shuts the database down: how `serve` and `project` end.
///
/// # Errors
/// When the database does not shut down.
async fn wind_down(
    stop: &tokio::sync::watch::Sender<bool>,
    runners: Vec<tokio::task::JoinHandle<()>>,
    sealer: Option<tokio::task::JoinHandle<()>>,
    listener: eventstore::Listener,
    database: Database,
) -> anyhow::Result<ExitCode> {
    let _ = stop.send(true);
    for runner in runners.into_iter().chain(sealer) {
        let _ = runner.await;
    }
    drop(listener);
    database.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

async fn directory(
    settings: &casebook::DatabaseSettings,
    command: casebook::settings::DirectoryCommand,
    clock: &app::Clock,
) -> anyhow::Result<ExitCode> {
    use casebook::settings::DirectoryCommand as D;
    let database = Database::open(settings).await?;
    let store = database.event_store()?;
    let outcome = match command {
        D::Import {
            file,
            withdraw_missing,
            organisation,
        } => casebook::directory::import_file(
            &store,
            &file,
            casebook::directory::ImportOptions {
                withdraw_missing,
                organisation,
            },
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            clock.now(),
        )
        .await
        .map(|report| {
            print!("{}", casebook::directory::describe(&report));
            if report.rejected.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }),
        D::Transfer {
            service,
            to,
            reason,
        } => app::directory::DirectoryService::new(store.clone())
            .change_owner_as_operator(
                domain::ServiceId(service),
                domain::directory::ServiceOwnerChanged {
                    organisation_id: to,
                    reason,
                },
                clock.now(),
            )
            .await
            .map(|_| {
                println!("service {service} now belongs to {to}");
                ExitCode::SUCCESS
            })
            .map_err(anyhow::Error::from),
        D::Export { out } => match casebook::directory::export(&store).await {
            Ok(page) => {
                let text = serde_json::to_string_pretty(&page)?;
                match out {
                    Some(path) => std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))
                        .map(|()| {
                            eprintln!("{} services written to {}", page.size, path.display());
                            ExitCode::SUCCESS
                        }),
                    None => {
                        println!("{text}");
                        Ok(ExitCode::SUCCESS)
                    }
                }
            }
            Err(e) => Err(e),
        },
    };
    drop(store);
    database.shutdown().await?;
    outcome
}

/// An administration command, run on the owner connection.
enum AdminCommand {
    Org(OrgCommand),
    Team(TeamCommand),
    Staff(StaffCommand),
    Token(TokenCommand),
}

async fn admin(
    settings: &casebook::DatabaseSettings,
    command: AdminCommand,
) -> anyhow::Result<ExitCode> {
    let database = Database::open(settings).await?;
    let client = db::connect(database.admin_config()).await?;
    let outcome = run_admin(&client, command).await;
    drop(client);
    database.shutdown().await?;
    let line = outcome?;
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

async fn run_admin(
    client: &db::tokio_postgres::Client,
    command: AdminCommand,
) -> anyhow::Result<String> {
    use app::admin::{NewStaffRequest, TokenRequest};
    let operator = app::admin::Operator::new(client);
    Ok(match command {
        AdminCommand::Org(OrgCommand::Add { name }) => {
            operator.add_organisation(&name).await?.to_string()
        }
        AdminCommand::Team(TeamCommand::Add { organisation, name }) => operator
            .add_team(organisation, &name)
            .await?
            .team_id
            .to_string(),
        AdminCommand::Staff(StaffCommand::Add {
            organisation,
            team,
            role,
            name,
            capacity,
        }) => operator
            .add_staff(
                organisation,
                &NewStaffRequest {
                    staff_id: None,
                    name,
                    role,
                    team_id: team,
                    capacity,
                },
            )
            .await?
            .staff_id
            .to_string(),
        AdminCommand::Token(TokenCommand::Issue { staff, days, label }) => {
            operator
                .issue_token(
                    staff,
                    &TokenRequest {
                        valid_days: days,
                        label: Some(label),
                    },
                )
                .await?
                .token
        }
        AdminCommand::Staff(StaffCommand::Enrol { staff, hours }) => {
            let enrolment = operator
                .enrol(
                    staff,
                    &app::admin::EnrolmentRequest {
                        valid_hours: Some(hours),
                    },
                )
                .await?;
            format!(
                "{}\n(one-time enrolment code for staff {staff}, until {}: give it to them only)",
                enrolment.code, enrolment.expires_at
            )
        }
        AdminCommand::Staff(StaffCommand::SignInLink { staff, hours }) => {
            let link = app::sessions::create_sign_in_link(
                client,
                staff,
                chrono::Duration::hours(hours),
                None,
            )
            .await?;
            format!(
                "{}\n(one-time sign-in code for staff {staff}, until {}: open \
                 <service address>/console/sign-in?code=<code>; give it to them only)",
                link.code, link.expires_at
            )
        }
        AdminCommand::Staff(StaffCommand::LinkIdentity {
            staff,
            issuer,
            subject,
        }) => {
            app::oidc::link_identity(client, staff, &issuer, &subject).await?;
            format!(
                "linked {issuer} {subject} to staff {staff}: it signs in to the web console as them"
            )
        }
        AdminCommand::Staff(StaffCommand::BindPractice { staff, ods }) => {
            app::access::bind_practice(client, staff, &ods).await?;
            format!(
                "bound practice system {staff} to ODS {ods}: its referrals name that practice only"
            )
        }
        AdminCommand::Staff(StaffCommand::UnlinkIdentity { issuer, subject }) => {
            if app::oidc::unlink_identity(client, &issuer, &subject).await? {
                format!("unlinked {issuer} {subject}")
            } else {
                anyhow::bail!("{issuer} {subject} was not linked to anyone")
            }
        }
        AdminCommand::Staff(StaffCommand::Identities { staff }) => {
            serde_json::to_string_pretty(&app::oidc::identities(client, staff).await?)?
        }
        AdminCommand::Staff(StaffCommand::Deactivate { staff }) => {
            let (_, revoked) = operator.set_active(staff, false).await?;
            format!(
                "deactivated {staff}: {} tokens and {} enrolments revoked",
                revoked.tokens, revoked.enrolments
            )
        }
        AdminCommand::Staff(StaffCommand::Activate { staff }) => {
            operator.set_active(staff, true).await?;
            format!("reactivated {staff}: enrol them for a new token")
        }
        AdminCommand::Token(TokenCommand::List { staff }) => {
            serde_json::to_string_pretty(&operator.credentials(staff).await?)?
        }
        AdminCommand::Token(TokenCommand::Revoke { token }) => {
            if operator.revoke_token(token).await? {
                format!("revoked {token}")
            } else {
                anyhow::bail!("token {token} was already revoked")
            }
        }
    })
}

async fn erase(
    settings: &casebook::DatabaseSettings,
    client_id: uuid::Uuid,
    reason: &str,
    clock: &app::Clock,
) -> anyhow::Result<ExitCode> {
    let database = Database::open(settings).await?;
    let cases = app::CaseService::with_clock(database.event_store()?, clock.clone());
    // The system acts for the organisation that holds the record.
    let holder = cases
        .load(domain::ClientId(client_id))
        .await?
        .organisation_id;
    let outcome = match holder {
        Some(organisation_id) => {
            let now = clock.now();
            app::privacy::erase_as_system(&cases, client_id, organisation_id, reason, now).await
        }
        None => Err(app::CommandError::Denied(app::Denied::NotFound)),
    };
    let code = match outcome {
        Ok(()) => {
            vacuum_keys(&database).await?;
            println!("erased the personal data of {client_id}");
            ExitCode::SUCCESS
        }
        Err(app::CommandError::Denied(_)) => {
            eprintln!("error: there is no client {client_id}");
            ExitCode::from(2)
        }
        Err(app::CommandError::Refused(refusal)) => {
            eprintln!("error: {refusal}");
            ExitCode::from(2)
        }
        Err(e) => return Err(e.into()),
    };
    database.shutdown().await?;
    Ok(code)
}

async fn retention(
    settings: &casebook::DatabaseSettings,
    apply: bool,
    rules: Option<i32>,
    years: Option<u32>,
    clock: &app::Clock,
) -> anyhow::Result<ExitCode> {
    let version = rules.unwrap_or_else(projector::rules::PrivacyRules::latest_version);
    let rules = projector::rules::PrivacyRules::load(version)?;
    let years = years.unwrap_or(rules.retention.years_after_conclusion);
    let database = Database::open(settings).await?;
    let store = database.event_store()?;
    let now = clock.now();
    let cutoff = app::privacy::retention_cutoff(now, years);
    let expired = app::privacy::past_retention(&store, cutoff).await?;
    println!(
        "{} record(s) concluded before {} (kept {years} years, personal data rules v{version}){}",
        expired.len(),
        cutoff.date_naive(),
        if apply {
            "; erasing"
        } else {
            "; dry run: nothing erased"
        }
    );
    let cases = app::CaseService::with_clock(store, clock.clone());
    for record in &expired {
        println!(
            "{}\t{}\t{}\tconcluded {}",
            record.client_id,
            record.organisation_id,
            record.status.code(),
            record.concluded_at.date_naive()
        );
        if apply {
            let reason = format!(
                "retention period ended: concluded {}, kept {years} years (personal data rules v{version})",
                record.concluded_at.date_naive()
            );
            app::privacy::erase_as_system(
                &cases,
                record.client_id,
                record.organisation_id,
                &reason,
                now,
            )
            .await?;
        }
    }
    if apply && !expired.is_empty() {
        vacuum_keys(&database).await?;
    }
    database.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

/// Removes destroyed data keys' old row versions from the table's pages at once, rather than
/// whenever autovacuum comes by.
async fn vacuum_keys(database: &Database) -> anyhow::Result<()> {
    let client = db::connect(database.admin_config()).await?;
    client
        .batch_execute("VACUUM subject_keys")
        .await
        .context("vacuuming subject_keys")?;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM. SIGTERM is listened for from the call, not from the first
/// poll: one that arrives while start-up finishes (after "casebook is listening") is kept,
/// instead of killing the process before it can stop cleanly.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {}
        }
        Ok(())
    })
}

/// `casebook history import`: plan every row, append in bulk with a progress bar, report the
/// refused rows, and seal the log when the anchor key is at hand.
async fn history(
    settings: &casebook::DatabaseSettings,
    command: casebook::settings::HistoryCommand,
    clock: &app::Clock,
) -> anyhow::Result<ExitCode> {
    use app::history::{Format, HistoryImport, ImportOptions};
    let casebook::settings::HistoryCommand::Import {
        file,
        system,
        organisation,
        assign_to,
        team,
        refused,
        batch_people,
    } = command;
    let reader =
        std::fs::File::open(&file).with_context(|| format!("reading {}", file.display()))?;
    let (rows, unreadable) =
        app::history::read_rows(std::io::BufReader::new(reader), Format::of_path(&file));
    let database = Database::open(settings).await?;
    let store = database.event_store()?;
    let outcome = async {
        let import = HistoryImport::new(
            store.clone(),
            clock.clone(),
            ImportOptions {
                system,
                organisation_id: organisation,
                assign_to: (domain::StaffId(assign_to), domain::TeamId(team)),
                batch_people,
            },
        )
        .await?;
        let started = std::time::Instant::now();
        let mut plan = import.plan(rows).await?;
        plan.refused.extend(unreadable);
        plan.refused.sort_by_key(|r| r.line);
        let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            indicatif::ProgressBar::new(plan.events() as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        let report = import.append(&plan, |done| bar.set_position(done as u64)).await;
        bar.finish_and_clear();
        let report = report?;
        let seconds = started.elapsed().as_secs_f64();
        let refusals = app::history::refusals_csv(&report.refused);
        match &refused {
            Some(path) => std::fs::write(path, &refusals)
                .with_context(|| format!("writing {}", path.display()))?,
            None if !report.refused.is_empty() => print!("{refusals}"),
            None => {}
        }
        if let Some(key) = database.anchor_key() {
            let client = db::connect(database.app_config()).await?;
            casebook::sealer::seal_and_anchor(&client, key, database.anchor_file()).await?;
        }
        eprintln!(
            "{} rows, {} people: {} people and {} events imported in {:.1} s ({:.0} events/s); {} people imported before ({} of them given later rows, {} rows imported before); {} rows refused",
            report.rows,
            report.people,
            report.people_written,
            report.events_written,
            seconds,
            report.events_written as f64 / seconds.max(1e-9),
            report.already_imported,
            report.people_added_to,
            report.rows_already_imported,
            report.refused.len()
        );
        anyhow::Ok(())
    }
    .await;
    drop(store);
    database.shutdown().await?;
    outcome?;
    Ok(ExitCode::SUCCESS)
}

async fn imd(
    settings: &casebook::DatabaseSettings,
    command: casebook::settings::ImdCommand,
) -> anyhow::Result<ExitCode> {
    use casebook::settings::ImdCommand as I;
    let read = |file: &std::path::Path| {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    };
    let (deciles, postcodes) = match &command {
        I::Load {
            file: Some(file), ..
        } => (
            app::equity::parse_imd_file(&read(file)?).map_err(anyhow::Error::msg)?,
            Vec::new(),
        ),
        I::Load { file: None, .. } => (
            app::equity::parse_imd_file(app::equity::MENDIP_EXTRACT).map_err(anyhow::Error::msg)?,
            app::equity::parse_postcode_file(app::equity::DEMO_POSTCODES)
                .map_err(anyhow::Error::msg)?,
        ),
        I::Postcodes { file } => (
            Vec::new(),
            app::equity::parse_postcode_file(&read(file)?).map_err(anyhow::Error::msg)?,
        ),
    };
    let database = Database::open(settings).await?;
    let mut owner = db::connect(database.admin_config()).await?;
    let tx = owner.transaction().await?;
    let lsoas = app::equity::load_lsoa_deciles(&tx, &deciles)
        .await
        .context("loading LSOA deciles")?;
    let codes = app::equity::load_postcodes(&tx, &postcodes)
        .await
        .context("loading postcodes")?;
    tx.commit().await?;
    println!("loaded {lsoas} LSOA deciles and {codes} postcodes");
    drop(owner);
    database.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}
