use std::pin::pin;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde_json::Value;
use uuid::Uuid;

use crate::hash::{self, GENESIS, HashInput};
use crate::{Metadata, StoreError};

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyReport {
    /// Every stream's versions run 1..n and every hash links to the one before.
    Ok {
        /// Events checked.
        events: u64,
        /// Streams checked.
        streams: u64,
    },
    /// The first broken link, in stream order.
    Broken {
        /// The stream holding it.
        stream_id: Uuid,
        /// The version at which the chain breaks.
        stream_version: i64,
        /// What is wrong there.
        reason: String,
    },
}

/// Walks every stream in version order, recomputing each event's hash from the stored content
/// and the previous hash, and reports the first event whose stored hash does not match or whose
/// version leaves a gap. Reads raw rows (no upcasting): the hash covers what was stored.
///
/// # Errors
/// A database failure.
pub async fn verify(client: &tokio_postgres::Client) -> Result<VerifyReport, StoreError> {
    let sql = "SELECT stream_id, stream_type, stream_version, event_id, event_type, schema_version, \
        payload, actor_id, actor_role, organisation_id, correlation_id, causation_id, idempotency_key, \
        occurred_at, recorded_at, hash FROM events ORDER BY stream_id, stream_version";
    let rows = client.query_raw(sql, std::iter::empty::<&str>()).await?;
    let mut rows = pin!(rows);
    let mut events = 0u64;
    let mut streams = 0u64;
    let mut current: Option<Uuid> = None;
    let mut prev = GENESIS.to_vec();
    let mut expected_version = 1i64;
    while let Some(row) = rows.try_next().await? {
        let stream_id: Uuid = row.get(0);
        if current != Some(stream_id) {
            current = Some(stream_id);
            streams += 1;
            prev = GENESIS.to_vec();
            expected_version = 1;
        }
        let stream_version: i64 = row.get(2);
        let broken = |reason: String| VerifyReport::Broken {
            stream_id,
            stream_version,
            reason,
        };
        if stream_version != expected_version {
            return Ok(broken(format!(
                "expected version {expected_version} here: the stream has a gap"
            )));
        }
        let payload: Value = row.get(6);
        let metadata = Metadata {
            actor_id: row.get(7),
            actor_role: row.get(8),
            organisation_id: row.get(9),
            correlation_id: row.get(10),
            causation_id: row.get(11),
            occurred_at: row.get(13),
        };
        let idempotency_key: Option<String> = row.get(12);
        let recorded_at: DateTime<Utc> = row.get(14);
        let stored: Vec<u8> = row.get(15);
        let event_type: String = row.get(4);
        let stream_type: String = row.get(1);
        let computed = hash::event_hash(
            &prev,
            &HashInput {
                event_id: row.get(3),
                stream_id,
                stream_type: &stream_type,
                stream_version,
                event_type: &event_type,
                schema_version: row.get(5),
                payload: &payload,
                metadata: &metadata,
                idempotency_key: idempotency_key.as_deref(),
                recorded_at,
            },
        );
        if computed.as_slice() != stored.as_slice() {
            return Ok(broken(
                "the stored hash does not match the event's content and the previous hash"
                    .to_owned(),
            ));
        }
        prev = stored;
        expected_version += 1;
        events += 1;
    }
    Ok(VerifyReport::Ok { events, streams })
}

/// What an attacker with the database superuser can do to the per-stream chains, for the tests
/// of the log-wide chain: the per-stream hash is plain SHA-256, so anyone who can write the
/// table can make it agree again.
#[cfg(feature = "testing")]
pub mod testing {
    use crate::StoreError;

    /// Recomputes and rewrites every hash of one stream from its stored rows, after switching
    /// this session's triggers off (as a superuser can): [`super::verify`] then passes again.
    ///
    /// # Errors
    /// A database failure (for a role that may not switch triggers off, say).
    pub async fn forge_stream_hashes(
        client: &tokio_postgres::Client,
        stream_id: uuid::Uuid,
    ) -> Result<(), StoreError> {
        client
            .batch_execute("SET session_replication_role = replica")
            .await?;
        let rows = client
            .query(
                "SELECT stream_type, stream_version, event_id, event_type, schema_version, payload, \
                 actor_id, actor_role, organisation_id, correlation_id, causation_id, \
                 idempotency_key, occurred_at, recorded_at FROM events WHERE stream_id = $1 \
                 ORDER BY stream_version",
                &[&stream_id],
            )
            .await?;
        let mut prev = super::GENESIS.to_vec();
        for row in rows {
            let metadata = crate::Metadata {
                actor_id: row.get(6),
                actor_role: row.get(7),
                organisation_id: row.get(8),
                correlation_id: row.get(9),
                causation_id: row.get(10),
                occurred_at: row.get(12),
            };
            let stream_type: String = row.get(0);
            let event_type: String = row.get(3);
            let payload: serde_json::Value = row.get(5);
            let idempotency_key: Option<String> = row.get(11);
            let event_id: uuid::Uuid = row.get(2);
            let hash = super::hash::event_hash(
                &prev,
                &super::HashInput {
                    event_id,
                    stream_id,
                    stream_type: &stream_type,
                    stream_version: row.get(1),
                    event_type: &event_type,
                    schema_version: row.get(4),
                    payload: &payload,
                    metadata: &metadata,
                    idempotency_key: idempotency_key.as_deref(),
                    recorded_at: row.get(13),
                },
            );
            client
                .execute(
                    "UPDATE events SET hash = $1 WHERE event_id = $2",
                    &[&hash.as_slice(), &event_id],
                )
                .await?;
            prev = hash.to_vec();
        }
        Ok(())
    }
}
