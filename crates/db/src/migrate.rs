//! The SQL files in `migrations/`, embedded in the binary and applied under an advisory lock
//! (refinery takes none, so two processes starting together would race).

use std::hash::{DefaultHasher, Hash, Hasher};

use tokio_postgres::Client;

use crate::DbError;

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Advisory lock key held while migrating ("casebook" in ASCII, as a number).
const MIGRATION_LOCK: i64 = 0x6361_7365_626f_6f6b;

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Names of the migrations applied by this run, in order.
    pub applied: Vec<String>,
    /// The schema version now in force.
    pub version: i32,
}

/// Applies every pending migration, holding a session advisory lock so that concurrent
/// starters apply each migration once.
///
/// # Errors
/// [`DbError::Migration`] when a migration fails (it is rolled back) or an applied one was edited.
pub async fn migrate(client: &mut Client) -> Result<MigrationReport, DbError> {
    run(client, refinery::Target::Latest).await
}

/// Applies the pending migrations up to and including `version` only, as [`migrate`] does:
/// for a test of an upgrade from an older schema.
///
/// # Errors
/// As [`migrate`].
pub async fn migrate_to(client: &mut Client, version: i32) -> Result<MigrationReport, DbError> {
    run(client, refinery::Target::Version(version)).await
}

async fn run(client: &mut Client, target: refinery::Target) -> Result<MigrationReport, DbError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let outcome = embedded::migrations::runner()
        .set_target(target)
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run_async(client)
        .await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = outcome?;
    let applied = report
        .applied_migrations()
        .iter()
        .map(|m| format!("V{}__{}", m.version(), m.name()))
        .collect();
    let version = match target {
        refinery::Target::Version(version) => version,
        _ => latest_version(),
    };
    Ok(MigrationReport { applied, version })
}

/// Whether the database holds every embedded migration.
///
/// # Errors
/// [`DbError::Postgres`] when the database cannot be queried.
pub async fn schema_is_current(client: &Client) -> Result<bool, DbError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(false);
    }
    let version: Option<i32> = client
        .query_one("SELECT max(version) FROM refinery_schema_history", &[])
        .await?
        .get(0);
    Ok(version == Some(latest_version()))
}

/// A short hex digest of the embedded migrations: names a template database built from them.
pub fn migrations_fingerprint() -> String {
    let mut hasher = DefaultHasher::new();
    for migration in embedded::migrations::runner().get_migrations() {
        migration.version().hash(&mut hasher);
        migration.checksum().hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

fn latest_version() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}
