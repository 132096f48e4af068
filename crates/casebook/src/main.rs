//! `casebook`: the command line. Everything it runs lives in the library.

use std::process::ExitCode;

use anyhow::Context;
use casebook::{Application, Cli, Command, Database};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    casebook::telemetry::init(cli.log_format);
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { listen } => serve(&cli.database, &listen).await,
        Command::Bench(casebook::settings::Bench::Append(options)) => {
            casebook::bench::run(options, cli.database.pg_bin).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Project => project(&cli.database).await,
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
        Command::Verify => {
            let database = Database::open(&cli.database).await?;
            let client = db::connect(database.admin_config()).await?;
            let report = eventstore::verify(&client).await?;
            drop(client);
            database.shutdown().await?;
            match report {
                eventstore::VerifyReport::Ok { events, streams } => {
                    println!("ok: {events} events in {streams} streams, every hash chain intact");
                    Ok(ExitCode::SUCCESS)
                }
                eventstore::VerifyReport::Broken {
                    stream_id,
                    stream_version,
                    reason,
                } => {
                    println!("broken: stream {stream_id} at version {stream_version}: {reason}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

async fn serve(settings: &casebook::DatabaseSettings, listen: &str) -> anyhow::Result<ExitCode> {
    let database = Database::open(settings).await?;
    let listener = eventstore::Listener::start(database.app_config().clone());
    let store = database.event_store()?.with_listener(&listener);
    let (stop_projections, projections_stopped) = tokio::sync::watch::channel(false);
    let runners = casebook::projections::spawn_all(&store, &projections_stopped);
    let app = Application::build(listen, store)?;
    let handle = app.handle();
    tracing::info!(address = %app.address(), "casebook is listening");
    let server = tokio::spawn(app.run_until_stopped());
    shutdown_signal().await?;
    tracing::info!("shutting down");
    handle.stop(true).await;
    server.await.context("joining the server")??;
    let _ = stop_projections.send(true);
    for runner in runners {
        let _ = runner.await;
    }
    drop(listener);
    database.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the projections alone (no HTTP) until Ctrl-C or SIGTERM; a second instance waits as a
/// standby and takes over when the first stops renewing its leases.
async fn project(settings: &casebook::DatabaseSettings) -> anyhow::Result<ExitCode> {
    let database = Database::open(settings).await?;
    let listener = eventstore::Listener::start(database.app_config().clone());
    let store = database.event_store()?.with_listener(&listener);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runners = casebook::projections::spawn_all(&store, &stopped);
    tracing::info!(projections = runners.len(), "projecting");
    shutdown_signal().await?;
    let _ = stop.send(true);
    for runner in runners {
        let _ = runner.await;
    }
    drop(listener);
    database.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
