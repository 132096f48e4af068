//! Bulk append of whole new streams: a history import's path. Each stream is written whole or
//! not at all, every event with its own metadata (its own `occurred_at`), hash-chained and
//! sealed exactly as [`EventStore::append`] would have written it, many streams in one
//! statement. A stream that already has events is left as it is and reported, so running the
//! same batch again writes nothing.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::hash::{self, GENESIS, HashInput};
use crate::{EventStore, Metadata, NewEvent, StoreError};

/// A new stream for [`EventStore::append_new_streams`]: its events in order, each with who
/// recorded it and when it happened.
#[derive(Clone, Debug)]
pub struct NewStream {
    /// The stream's id.
    pub stream_id: Uuid,
    /// The stream's type (client, service, ...).
    pub stream_type: String,
    /// The events, in order, each with its own metadata; at least one.
    pub events: Vec<(NewEvent, Metadata)>,
    /// The stream's lookup tags ([`EventStore::lookup_tag`]), written with it.
    pub lookups: Vec<[u8; 32]>,
}

/// What a bulk append wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BulkAppended {
    /// Streams written, whole.
    pub streams: usize,
    /// Events written.
    pub events: usize,
    /// Streams left out because they already had events (written by an earlier run).
    pub existing: Vec<Uuid>,
}

const EXISTING_SQL: &str = "\
SELECT now(), ARRAY(SELECT DISTINCT stream_id FROM events WHERE stream_id = ANY($1))";

/// Every event of the batch and the new streams' data keys, in one autocommit statement.
const INSERT_SQL: &str = "\
WITH new_keys AS (
    INSERT INTO subject_keys (subject_id, wrapped_key, master_key_id)
    SELECT k.subject_id, k.wrapped_key, $3 FROM unnest($1::uuid[], $2::bytea[])
        AS k(subject_id, wrapped_key)
), lookups AS (
    INSERT INTO stream_lookups (tag, stream_id)
    SELECT l.tag, l.stream_id FROM unnest($19::bytea[], $20::uuid[]) AS l(tag, stream_id)
    ON CONFLICT DO NOTHING
)
INSERT INTO events (
    event_id, stream_id, stream_type, stream_version, event_type, schema_version, payload,
    actor_id, actor_role, organisation_id, correlation_id, causation_id, idempotency_key,
    occurred_at, recorded_at, hash)
SELECT e.event_id, e.stream_id, e.stream_type, e.stream_version, e.event_type,
    e.schema_version, e.payload, e.actor_id, e.actor_role, e.organisation_id, e.correlation_id,
    e.causation_id, NULL, e.occurred_at, $4, e.hash
FROM unnest($5::uuid[], $6::uuid[], $7::text[], $8::bigint[], $9::text[], $10::int[],
    $11::jsonb[], $12::uuid[], $13::text[], $14::uuid[], $15::uuid[], $16::uuid[],
    $17::timestamptz[], $18::bytea[])
    AS e(event_id, stream_id, stream_type, stream_version, event_type, schema_version, payload,
        actor_id, actor_role, organisation_id, correlation_id, causation_id, occurred_at, hash)";

/// The columns of one insert, event by event.
#[derive(Default)]
struct Columns {
    key_subjects: Vec<Uuid>,
    wrapped_keys: Vec<Vec<u8>>,
    event_ids: Vec<Uuid>,
    stream_ids: Vec<Uuid>,
    stream_types: Vec<String>,
    versions: Vec<i64>,
    event_types: Vec<String>,
    schema_versions: Vec<i32>,
    payloads: Vec<Value>,
    actor_ids: Vec<Uuid>,
    actor_roles: Vec<String>,
    organisation_ids: Vec<Uuid>,
    correlation_ids: Vec<Uuid>,
    causation_ids: Vec<Option<Uuid>>,
    occurred: Vec<DateTime<Utc>>,
    hashes: Vec<Vec<u8>>,
    lookup_tags: Vec<Vec<u8>>,
    lookup_streams: Vec<Uuid>,
}

impl EventStore {
    /// Appends whole new streams in one statement: each stream's events from version 1, each
    /// event with its own metadata, sealed under a fresh data key per stream and hash-chained
    /// as [`EventStore::append`] does, `recorded_at` the database's clock at the start.
    /// Streams that already have events are left out (and listed in
    /// [`BulkAppended::existing`]): running the same batch twice writes it once. A writer that
    /// creates one of the streams meanwhile makes the statement fail on the stream's version,
    /// and the batch is tried once more without it.
    ///
    /// # Errors
    /// [`StoreError::EmptyAppend`] for a stream without events, [`StoreError::Conflict`] when the
    /// batch still races after its second attempt, and database failures.
    #[tracing::instrument(skip_all, fields(n_streams = streams.len()))]
    pub async fn append_new_streams(
        &self,
        streams: &[NewStream],
    ) -> Result<BulkAppended, StoreError> {
        if streams.iter().any(|s| s.events.is_empty()) {
            return Err(StoreError::EmptyAppend);
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.try_append_new_streams(streams).await {
                Ok(done) => {
                    if done.events > 0 {
                        self.notifier.committed();
                    }
                    return Ok(done);
                }
                Err(e) if attempts < 2 && is_stream_race(&e) => {}
                Err(e) if is_stream_race(&e) => {
                    return Err(StoreError::Conflict {
                        stream_id: Uuid::nil(),
                        expected: crate::ExpectedVersion::NoStream,
                        actual: 1,
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_append_new_streams(
        &self,
        streams: &[NewStream],
    ) -> Result<BulkAppended, StoreError> {
        let client = self.pool.get().await?;
        let ids: Vec<Uuid> = streams.iter().map(|s| s.stream_id).collect();
        let statement = client.prepare_cached(EXISTING_SQL).await?;
        let row = client.query_one(&statement, &[&ids]).await?;
        let now: DateTime<Utc> = row.get(0);
        let existing: Vec<Uuid> = row.get(1);
        let mut columns = Columns::default();
        let mut written = BulkAppended {
            existing: existing.clone(),
            ..BulkAppended::default()
        };
        for stream in streams {
            if existing.contains(&stream.stream_id) {
                continue;
            }
            self.columns_of(stream, now, &mut columns)?;
            written.streams += 1;
            written.events += stream.events.len();
        }
        if written.events == 0 {
            return Ok(written);
        }
        let master_key_id = self.protection.as_deref().map(|p| p.master_key_id());
        let insert = client.prepare_cached(INSERT_SQL).await?;
        let c = &columns;
        client
            .execute(
                &insert,
                &[
                    &c.key_subjects,
                    &c.wrapped_keys,
                    &master_key_id,
                    &now,
                    &c.event_ids,
                    &c.stream_ids,
                    &c.stream_types,
                    &c.versions,
                    &c.event_types,
                    &c.schema_versions,
                    &c.payloads,
                    &c.actor_ids,
                    &c.actor_roles,
                    &c.organisation_ids,
                    &c.correlation_ids,
                    &c.causation_ids,
                    &c.occurred,
                    &c.hashes,
                    &c.lookup_tags,
                    &c.lookup_streams,
                ],
            )
            .await?;
        Ok(written)
    }

    /// Seals and chains one new stream's events into `columns`.
    fn columns_of(
        &self,
        stream: &NewStream,
        now: DateTime<Utc>,
        columns: &mut Columns,
    ) -> Result<(), StoreError> {
        let protection = self.protection.as_deref().filter(|p| {
            p.needs_key(
                &stream.stream_type,
                stream.events.iter().map(|(e, _)| {
                    (
                        e.event_type.as_str(),
                        &e.payload,
                        e.personal_paths.as_slice(),
                    )
                }),
            )
        });
        let data_key = match protection {
            Some(protection) => {
                let (data_key, wrapped) = protection.new_key(stream.stream_id)?;
                columns.key_subjects.push(stream.stream_id);
                columns.wrapped_keys.push(wrapped);
                Some((protection, data_key))
            }
            None => None,
        };
        for tag in &stream.lookups {
            columns.lookup_tags.push(tag.to_vec());
            columns.lookup_streams.push(stream.stream_id);
        }
        let mut prev = GENESIS.to_vec();
        for (i, (event, metadata)) in stream.events.iter().enumerate() {
            let mut payload = event.payload.clone();
            if let Some((protection, data_key)) = &data_key {
                protection.seal(
                    data_key,
                    stream.stream_id,
                    &stream.stream_type,
                    event,
                    &mut payload,
                )?;
            }
            let mut metadata = metadata.clone();
            metadata.occurred_at = hash::to_micros(metadata.occurred_at);
            let version = i as i64 + 1;
            let digest = hash::event_hash(
                &prev,
                &HashInput {
                    event_id: event.event_id,
                    stream_id: stream.stream_id,
                    stream_type: &stream.stream_type,
                    stream_version: version,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    payload: &payload,
                    metadata: &metadata,
                    idempotency_key: None,
                    recorded_at: now,
                },
            );
            prev = digest.to_vec();
            columns.event_ids.push(event.event_id);
            columns.stream_ids.push(stream.stream_id);
            columns.stream_types.push(stream.stream_type.clone());
            columns.versions.push(version);
            columns.event_types.push(event.event_type.clone());
            columns.schema_versions.push(event.schema_version);
            columns.payloads.push(payload);
            columns.actor_ids.push(metadata.actor_id);
            columns.actor_roles.push(metadata.actor_role);
            columns.organisation_ids.push(metadata.organisation_id);
            columns.correlation_ids.push(metadata.correlation_id);
            columns.causation_ids.push(metadata.causation_id);
            columns.occurred.push(metadata.occurred_at);
            columns.hashes.push(digest.to_vec());
        }
        Ok(())
    }
}

/// A stream of the batch was created by another writer since the batch looked (its version,
/// an event id, derived from the same source, or its first data key taken).
fn is_stream_race(e: &StoreError) -> bool {
    let StoreError::Unexpected(e) = e else {
        return false;
    };
    e.as_db_error().is_some_and(|db| {
        matches!(
            db.constraint(),
            Some("events_stream_version_key" | "events_event_id_key" | "subject_keys_pkey")
        )
    })
}
