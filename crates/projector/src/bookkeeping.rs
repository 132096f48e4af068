//! Every statement about projections themselves, in one place: leases (who runs a
//! projection), checkpoints (how far it has read, and how many events it applied), and rule
//! versions (which version reports use). Read models' own rows are the projections' business.
//!
//! A batch renews the lease, writes its rows and moves the checkpoint in one transaction, so
//! these take any client: a connection or an open transaction.

use eventstore::GlobalPosition;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::registry::{ProjectionVersion, VersionState};
use crate::runner::ProjectionError;

/// What makes a projector's transaction commit without waiting for its WAL to be flushed (nor
/// for a synchronous standby). Only for transactions that write read-model rows together with
/// the checkpoint (and lease) that covers them: a crash, or a failover, can then lose the last
/// batches committed, rows and checkpoint alike, and the runner projects them again from the
/// checkpoint that survived. Never for the log, the read audit, tokens or any command.
pub const COMMIT_WITHOUT_FLUSH: &str = "SET LOCAL synchronous_commit = off";

/// Marks `tx` (a projector's transaction) to commit without waiting for the WAL flush: see
/// [`COMMIT_WITHOUT_FLUSH`].
///
/// # Errors
/// A database failure.
pub async fn commit_without_flush(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<(), ProjectionError> {
    tx.batch_execute(COMMIT_WITHOUT_FLUSH).await?;
    Ok(())
}

/// Takes a lease for `holder` ($2) for $3 seconds, when $4 says so whoever holds it, otherwise
/// only when it is free, expired or already `holder`'s (renewing it then); a row when taken.
const TAKE_LEASE: &str = "INSERT INTO projection_leases (projection, holder, expires_at) \
     VALUES ($1, $2, now() + make_interval(secs => $3)) \
     ON CONFLICT (projection) DO UPDATE SET holder = $2, expires_at = now() + make_interval(secs => $3) \
     WHERE $4 OR projection_leases.holder = $2 OR projection_leases.expires_at < now() \
     RETURNING holder";

/// Takes `projection`'s lease for `seconds` if it is free, expired or already `holder`'s
/// (renewing it then). False when another holder has it.
///
/// # Errors
/// A database failure.
pub async fn take_lease(
    client: &impl GenericClient,
    projection: &str,
    holder: Uuid,
    seconds: f64,
) -> Result<bool, ProjectionError> {
    let row = client
        .query_opt(TAKE_LEASE, &[&projection, &holder, &seconds, &false])
        .await?;
    Ok(row.is_some())
}

/// Renews `holder`'s lease for `seconds` (the fence of a batch's transaction). False when the
/// lease is no longer theirs.
///
/// # Errors
/// A database failure.
pub async fn renew_lease(
    client: &impl GenericClient,
    projection: &str,
    holder: Uuid,
    seconds: f64,
) -> Result<bool, ProjectionError> {
    Ok(renew_leases(client, &[projection], holder, seconds)
        .await?
        .is_empty())
}

/// Renews `holder`'s leases of `projections` in one statement (a group following the log
/// together, in its batch's transaction); the names whose lease is no longer theirs.
///
/// # Errors
/// A database failure.
pub async fn renew_leases(
    client: &impl GenericClient,
    projections: &[&str],
    holder: Uuid,
    seconds: f64,
) -> Result<Vec<String>, ProjectionError> {
    let renewed = client
        .query(
            "UPDATE projection_leases SET expires_at = now() + make_interval(secs => $3) \
             WHERE projection = ANY($1) AND holder = $2 RETURNING projection",
            &[&projections, &holder, &seconds],
        )
        .await?;
    Ok(left_out(projections, &renewed))
}

/// The names of `projections` no row of `returned` (a statement's `RETURNING projection`)
/// names.
fn left_out(projections: &[&str], returned: &[tokio_postgres::Row]) -> Vec<String> {
    let named: std::collections::HashSet<&str> = returned.iter().map(|row| row.get(0)).collect();
    projections
        .iter()
        .filter(|p| !named.contains(**p))
        .map(|p| (*p).to_owned())
        .collect()
}

/// Takes `projection`'s lease for `holder` whoever has it (a switch that must stop the live
/// runner: a batch in flight holds the row, so this waits for it).
///
/// # Errors
/// A database failure.
pub async fn seize_lease(
    client: &impl GenericClient,
    projection: &str,
    holder: Uuid,
) -> Result<(), ProjectionError> {
    client
        .query_opt(TAKE_LEASE, &[&projection, &holder, &60.0_f64, &true])
        .await?;
    Ok(())
}

/// Gives `holder`'s lease up, so another runner can take over at once.
///
/// # Errors
/// A database failure.
pub async fn release_lease(
    client: &impl GenericClient,
    projection: &str,
    holder: Uuid,
) -> Result<(), ProjectionError> {
    client
        .execute(
            "DELETE FROM projection_leases WHERE projection = $1 AND holder = $2",
            &[&projection, &holder],
        )
        .await?;
    Ok(())
}

/// Where `projection` has read to and how many events it applied; the start of the log (and
/// a checkpoint row made there) for one that never ran.
///
/// # Errors
/// A database failure.
pub async fn checkpoint(
    client: &impl GenericClient,
    projection: &str,
) -> Result<(GlobalPosition, i64), ProjectionError> {
    client
        .execute(
            "INSERT INTO projection_checkpoints (projection, log_generation, transaction_id, position) \
             VALUES ($1, 0, 0, 0) ON CONFLICT (projection) DO NOTHING",
            &[&projection],
        )
        .await?;
    Ok(read_checkpoint(client, projection)
        .await?
        .unwrap_or((GlobalPosition::START, 0)))
}

/// Where `projection` has read to and how many events it applied, if it ever ran.
///
/// # Errors
/// A database failure.
pub async fn read_checkpoint(
    client: &impl GenericClient,
    projection: &str,
) -> Result<Option<(GlobalPosition, i64)>, ProjectionError> {
    let row = client
        .query_opt(
            "SELECT log_generation, transaction_id, position, events_applied FROM projection_checkpoints \
             WHERE projection = $1",
            &[&projection],
        )
        .await?;
    Ok(row.map(|row| {
        (
            GlobalPosition {
                generation: row.get(0),
                transaction_id: row.get(1),
                position: row.get(2),
            },
            row.get(3),
        )
    }))
}

/// Where each of `projections` has read to, in the order given (the start of the log for one
/// that never ran).
///
/// # Errors
/// A database failure.
pub async fn read_checkpoints(
    client: &impl GenericClient,
    projections: &[&str],
) -> Result<Vec<GlobalPosition>, ProjectionError> {
    let rows = client
        .query(
            "SELECT coalesce(c.log_generation, 0), coalesce(c.transaction_id, 0), coalesce(c.position, 0) \
             FROM unnest($1::text[]) WITH ORDINALITY AS n (projection, i) \
             LEFT JOIN projection_checkpoints c USING (projection) ORDER BY n.i",
            &[&projections],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| GlobalPosition {
            generation: row.get(0),
            transaction_id: row.get(1),
            position: row.get(2),
        })
        .collect())
}

/// What a read over some read models is as of: the least advanced one's checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadModelsAsOf {
    /// The checkpoint of the read model furthest behind (the start of the log if one never ran).
    pub checkpoint: GlobalPosition,
    /// When its last applied event was recorded (none at the start of the log).
    pub recorded_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Committed events in the log after that checkpoint (including any not yet readable).
    pub behind: i64,
}

/// What a read of `projections` (at least one) in `client`'s snapshot is as of. Read it in the
/// same transaction as the read models' rows (repeatable read) and it is exact: a batch's rows
/// and its checkpoint commit together. The count walks the global order index from the
/// checkpoint only, so it costs what the read models are behind, not the log's length.
///
/// # Errors
/// A database failure (only: it is called from report queries that fail with nothing else).
pub async fn as_of(
    client: &impl GenericClient,
    projections: &[&str],
) -> Result<ReadModelsAsOf, tokio_postgres::Error> {
    let row = client
        .query_one(
            "WITH least AS ( \
                SELECT coalesce(c.log_generation, 0) AS g, coalesce(c.transaction_id, 0) AS t, \
                coalesce(c.position, 0) AS p \
                FROM unnest($1::text[]) AS n (projection) \
                LEFT JOIN projection_checkpoints c USING (projection) \
                ORDER BY 1, 2, 3 LIMIT 1) \
             SELECT least.g, least.t, least.p, \
                (SELECT recorded_at FROM events WHERE position = least.p), \
                (SELECT count(*) FROM events \
                 WHERE (log_generation, transaction_id, position) > (least.g, least.t::text::xid8, least.p)) \
             FROM least",
            &[&projections],
        )
        .await?;
    Ok(ReadModelsAsOf {
        checkpoint: GlobalPosition {
            generation: row.get(0),
            transaction_id: row.get(1),
            position: row.get(2),
        },
        recorded_at: row.get(3),
        behind: row.get(4),
    })
}

/// Moves the checkpoint from exactly `from` to `to`, counting `applied` more events. False
/// when it was not at `from` (another writer moved it: the batch must not commit).
///
/// # Errors
/// A database failure.
pub async fn move_checkpoint(
    client: &impl GenericClient,
    projection: &str,
    from: GlobalPosition,
    to: GlobalPosition,
    applied: i64,
) -> Result<bool, ProjectionError> {
    Ok(move_checkpoints(client, &[projection], from, to, applied)
        .await?
        .is_empty())
}

/// As [`move_checkpoint`], for every one of `projections` in one statement; the names whose
/// checkpoint was not at `from`.
///
/// # Errors
/// A database failure.
pub async fn move_checkpoints(
    client: &impl GenericClient,
    projections: &[&str],
    from: GlobalPosition,
    to: GlobalPosition,
    applied: i64,
) -> Result<Vec<String>, ProjectionError> {
    let moved = client
        .query(
            "UPDATE projection_checkpoints SET log_generation = $2, transaction_id = $3, position = $4, \
             events_applied = events_applied + $8, updated_at = now() \
             WHERE projection = ANY($1) AND log_generation = $5 AND transaction_id = $6 AND position = $7 \
             RETURNING projection",
            &[
                &projections,
                &to.generation,
                &to.transaction_id,
                &to.position,
                &from.generation,
                &from.transaction_id,
                &from.position,
                &applied,
            ],
        )
        .await?;
    Ok(left_out(projections, &moved))
}

/// Sets `projection`'s checkpoint to `at` with `applied` events (made if missing): the start
/// of the log for a reset, or where a rebuilt shadow stopped for a switch.
///
/// # Errors
/// A database failure.
pub async fn set_checkpoint(
    client: &impl GenericClient,
    projection: &str,
    at: GlobalPosition,
    applied: i64,
) -> Result<(), ProjectionError> {
    client
        .execute(
            "INSERT INTO projection_checkpoints (projection, log_generation, transaction_id, position, events_applied) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (projection) DO UPDATE SET log_generation = $2, \
             transaction_id = $3, position = $4, events_applied = $5, updated_at = now()",
            &[
                &projection,
                &at.generation,
                &at.transaction_id,
                &at.position,
                &applied,
            ],
        )
        .await?;
    Ok(())
}

/// The rule versions of `projection`, oldest first.
///
/// # Errors
/// A database failure, or a state this build does not know.
pub async fn versions(
    client: &tokio_postgres::Client,
    projection: &str,
) -> Result<Vec<ProjectionVersion>, ProjectionError> {
    let rows = client
        .query(
            "SELECT rules_version, state FROM projection_versions WHERE projection = $1 ORDER BY rules_version",
            &[&projection],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ProjectionVersion {
                rules_version: row.get(0),
                state: row.get::<_, String>(1).parse()?,
            })
        })
        .collect()
}

/// The rule version reports use (1 before any switch).
///
/// # Errors
/// A database failure.
pub async fn live_version(
    client: &tokio_postgres::Client,
    projection: &str,
) -> Result<i32, ProjectionError> {
    let row = client
        .query_opt(
            "SELECT rules_version FROM projection_versions WHERE projection = $1 AND state = $2",
            &[&projection, &VersionState::Live.as_str()],
        )
        .await?;
    Ok(row.map(|r| r.get(0)).unwrap_or(1))
}

/// The rule version reports used at `at`: the last to become live by then (the earliest known
/// when `at` is before any switch was recorded).
///
/// # Errors
/// A database failure.
pub async fn version_live_at(
    client: &impl GenericClient,
    projection: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<i32>, ProjectionError> {
    let row = client
        .query_opt(
            "SELECT rules_version FROM projection_version_history WHERE projection = $1 \
             ORDER BY (live_from <= $2) DESC, \
             CASE WHEN live_from <= $2 THEN live_from END DESC, live_from ASC LIMIT 1",
            &[&projection, &at],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Registers a version being rebuilt (no change if it exists).
///
/// # Errors
/// A database failure.
pub async fn start_version(
    client: &tokio_postgres::Client,
    projection: &str,
    rules_version: i32,
) -> Result<(), ProjectionError> {
    client
        .execute(
            "INSERT INTO projection_versions (projection, rules_version, state) VALUES ($1, $2, $3) \
             ON CONFLICT (projection, rules_version) DO NOTHING",
            &[&projection, &rules_version, &VersionState::Building.as_str()],
        )
        .await?;
    Ok(())
}

/// Makes `rules_version` the one reports use, in one transaction: the previous live version is
/// retired (kept, still queryable and still followed, until dropped).
///
/// # Errors
/// A database failure.
pub async fn switch_live(
    client: &mut tokio_postgres::Client,
    projection: &str,
    rules_version: i32,
) -> Result<(), ProjectionError> {
    let tx = client.transaction().await?;
    tx.execute(
        "UPDATE projection_versions SET state = $3 WHERE projection = $1 AND state = $4 \
         AND rules_version <> $2",
        &[
            &projection,
            &rules_version,
            &VersionState::Retired.as_str(),
            &VersionState::Live.as_str(),
        ],
    )
    .await?;
    tx.execute(
        "UPDATE projection_versions SET state = $3, switched_at = now() \
         WHERE projection = $1 AND rules_version = $2",
        &[&projection, &rules_version, &VersionState::Live.as_str()],
    )
    .await?;
    tx.execute(
        "INSERT INTO projection_version_history (projection, rules_version) VALUES ($1, $2)",
        &[&projection, &rules_version],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Forgets a projection run: its checkpoint and lease, and, for a versioned projection, the
/// registration of `version` (a retired version's figures being dropped).
///
/// # Errors
/// A database failure.
pub async fn forget(
    client: &impl GenericClient,
    projection_run: &str,
    version: Option<(&str, i32)>,
) -> Result<(), ProjectionError> {
    client
        .execute(
            "DELETE FROM projection_checkpoints WHERE projection = $1",
            &[&projection_run],
        )
        .await?;
    client
        .execute(
            "DELETE FROM projection_leases WHERE projection = $1",
            &[&projection_run],
        )
        .await?;
    if let Some((projection, rules_version)) = version {
        client
            .execute(
                "DELETE FROM projection_versions WHERE projection = $1 AND rules_version = $2",
                &[&projection, &rules_version],
            )
            .await?;
    }
    Ok(())
}
