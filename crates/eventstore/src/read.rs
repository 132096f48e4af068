use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::protect::{DataKey, KeyState};
use crate::{AppendResult, EventStore, GlobalPosition, Metadata, RecordedEvent, StoreError};

pub(crate) const COLUMNS: &str = "log_generation, transaction_id::text::bigint, position, event_id, \
    stream_id, stream_type, stream_version, event_type, schema_version, payload, actor_id, \
    actor_role, organisation_id, correlation_id, causation_id, idempotency_key, occurred_at, recorded_at";

/// A stream's data key row.
pub(crate) const KEY_SQL: &str =
    "SELECT wrapped_key, master_key_id FROM subject_keys WHERE subject_id = $1";

/// What a command's load reads beside the stream: the database's clock (the append's
/// `recorded_at`), the stream's data key row, and any result stored under the idempotency key.
const HEAD_OF_LOAD_SQL: &str = "\
SELECT now(), k.subject_id IS NOT NULL, k.wrapped_key, k.master_key_id, ik.fingerprint, ik.result
FROM (SELECT 1) AS one
LEFT JOIN subject_keys AS k ON k.subject_id = $1
LEFT JOIN idempotency_keys AS ik ON ik.stream_id = $1 AND ik.idempotency_key = $2";

/// A stream's head as a command's load read it ([`EventStore::read_stream_for_append`]):
/// handed to [`EventStore::append_after`], which then appends in one round trip (the insert)
/// under the version the command was decided on. Holds the stream's data key, unwrapped: keep
/// it no longer than the command.
pub struct StreamHead {
    pub(crate) stream_id: Uuid,
    pub(crate) version: i64,
    pub(crate) hash: Option<Vec<u8>>,
    pub(crate) stream_type: Option<String>,
    pub(crate) read_at: DateTime<Utc>,
    /// `None` when the store seals nothing.
    pub(crate) key: Option<KeyState>,
    pub(crate) idempotency_key: Option<String>,
    /// The fingerprint and result stored under `idempotency_key`.
    pub(crate) stored: Option<(Vec<u8>, Value)>,
    /// Not read but assumed: the stream has no events yet ([`EventStore::head_of_new_stream`]).
    pub(crate) assumed_new: bool,
}

impl std::fmt::Debug for StreamHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHead")
            .field("stream_id", &self.stream_id)
            .field("version", &self.version)
            .field("read_at", &self.read_at)
            .field("assumed_new", &self.assumed_new)
            .finish_non_exhaustive()
    }
}

impl StreamHead {
    /// The stream's version as read (0: no events).
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The result stored under the idempotency key the head was read with, if any (`replayed`
    /// set), as [`EventStore::idempotent_result`] answers it, without another round trip.
    ///
    /// # Errors
    /// [`StoreError::IdempotencyMismatch`] when the key was used for a request with another
    /// fingerprint; [`StoreError::InvalidPayload`] for an unreadable stored result.
    pub fn stored_result(
        &self,
        fingerprint: Option<[u8; 32]>,
    ) -> Result<Option<AppendResult>, StoreError> {
        let (Some((stored, result)), Some(key)) = (&self.stored, &self.idempotency_key) else {
            return Ok(None);
        };
        if let Some(fingerprint) = fingerprint
            && stored.as_slice() != fingerprint.as_slice()
        {
            return Err(StoreError::IdempotencyMismatch {
                stream_id: self.stream_id,
                key: key.clone(),
            });
        }
        let mut result: AppendResult = serde_json::from_value(result.clone()).map_err(|e| {
            StoreError::InvalidPayload(format!("stored idempotent result is unreadable: {e}"))
        })?;
        result.replayed = true;
        Ok(Some(result))
    }
}

/// Rows visible to a global reader: older generations entirely, and in the current generation
/// only transactions below the oldest one still running, so nothing can commit behind us.
/// Both limits are scalar subqueries, worked out once a statement (an init plan): written as
/// plain calls they were called for every row, and the generation's lookup then cost more than
/// the rest of a projector's batch read.
const VISIBLE: &str = "(log_generation < (SELECT casebook_log_generation()) \
    OR transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot())))";

impl EventStore {
    /// Reads one stream in version order, from `from_version` (inclusive), optionally only the
    /// events recorded up to `recorded_up_to` ("as it was known then").
    ///
    /// # Errors
    /// A database failure or an event that cannot be upcast.
    #[tracing::instrument(skip_all, fields(stream_id = %stream_id))]
    pub async fn read_stream(
        &self,
        stream_id: Uuid,
        from_version: i64,
        recorded_up_to: Option<DateTime<Utc>>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE stream_id = $1 AND stream_version >= $2 \
             AND ($3::timestamptz IS NULL OR recorded_at <= $3) ORDER BY stream_version"
        );
        // Prepared once per connection: every command and record read comes through here.
        let statement = client.prepare_cached(&sql).await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&stream_id, &from_version, &recorded_up_to];
        let events = client.query(&statement, &params);
        let Some(protection) = &self.protection else {
            return self.decode_all(&events.await?, None);
        };
        // The stream's data key, in the same round trip (the two queries are pipelined).
        let key_statement = client.prepare_cached(KEY_SQL).await?;
        let key_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&stream_id];
        let (rows, key_row) =
            tokio::try_join!(events, client.query_opt(&key_statement, &key_params))?;
        let key = protection.key_state(stream_id, key_row.map(|row| (row.get(0), row.get(1))))?;
        let key = match &key {
            KeyState::Live(key) => Some(key),
            KeyState::Absent | KeyState::Destroyed => None,
        };
        self.decode_all(&rows, key)
    }

    /// Reads the events of `event_types` in each of `stream_ids` (personal fields opened, as
    /// [`EventStore::read_stream`] opens them), each stream's in version order: a few facts of
    /// many streams (a page of people's names), without reading the rest of their histories.
    /// The events and the streams' data keys are read in one round trip.
    ///
    /// # Errors
    /// A database failure or an event that cannot be upcast.
    #[tracing::instrument(skip_all, fields(streams = stream_ids.len()))]
    pub async fn read_streams_of_types(
        &self,
        stream_ids: &[Uuid],
        event_types: &[&str],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if stream_ids.is_empty() || event_types.is_empty() {
            return Ok(Vec::new());
        }
        // The types are written into the statement, not bound, so that the planner can use a
        // partial index over them (`V22__facts_of_a_person.sql`); a type is a plain name.
        if let Some(odd) = event_types
            .iter()
            .find(|t| t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(StoreError::InvalidPayload(format!(
                "{odd:?} is not an event type"
            )));
        }
        let types = event_types
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE stream_id = ANY($1) AND event_type IN ({types}) \
             ORDER BY stream_id, stream_version"
        );
        let statement = client.prepare_cached(&sql).await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&stream_ids];
        let events = client.query(&statement, &params);
        let Some(protection) = &self.protection else {
            return self.decode_all(&events.await?, None);
        };
        let key_statement = client
            .prepare_cached(
                "SELECT subject_id, wrapped_key, master_key_id FROM subject_keys \
                 WHERE subject_id = ANY($1)",
            )
            .await?;
        let key_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&stream_ids];
        let (rows, key_rows) = tokio::try_join!(events, client.query(&key_statement, &key_params))?;
        let mut keys = std::collections::HashMap::with_capacity(key_rows.len());
        for row in key_rows {
            let subject: Uuid = row.get(0);
            let state = protection.key_state(subject, Some((row.get(1), row.get(2))))?;
            keys.insert(subject, state);
        }
        rows.iter()
            .map(|row| {
                let stream: Uuid = row.get("stream_id");
                let key = match keys.get(&stream) {
                    Some(KeyState::Live(key)) => Some(key),
                    _ => None,
                };
                self.decode(row, key)
            })
            .collect()
    }

    /// Reads one stream whole, as [`EventStore::read_stream`] does, for a command about to
    /// append to it: with the stream's head as read ([`StreamHead`]: its version, last hash and
    /// type, the database's clock, the stream's data key, and any result stored under
    /// `idempotency_key`), fetched in the same round trip (the statements are pipelined), so
    /// that [`EventStore::append_after`] reads nothing again.
    ///
    /// # Errors
    /// A database failure or an event that cannot be upcast.
    #[tracing::instrument(skip_all, fields(stream_id = %stream_id))]
    pub async fn read_stream_for_append(
        &self,
        stream_id: Uuid,
        idempotency_key: Option<&str>,
    ) -> Result<(Vec<RecordedEvent>, StreamHead), StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {COLUMNS}, hash FROM events WHERE stream_id = $1 ORDER BY stream_version"
        );
        let statement = client.prepare_cached(&sql).await?;
        let head_statement = client.prepare_cached(HEAD_OF_LOAD_SQL).await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&stream_id];
        let head_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&stream_id, &idempotency_key];
        let (rows, head_row) = tokio::try_join!(
            client.query(&statement, &params),
            client.query_one(&head_statement, &head_params)
        )?;
        let key = match &self.protection {
            None => None,
            Some(protection) => {
                let present: bool = head_row.get(1);
                let row = present.then(|| (head_row.get(2), head_row.get(3)));
                Some(protection.key_state(stream_id, row)?)
            }
        };
        let opened = match &key {
            Some(KeyState::Live(key)) => Some(key),
            _ => None,
        };
        let events = rows
            .iter()
            .map(|row| self.decode(row, opened))
            .collect::<Result<Vec<_>, _>>()?;
        let last = rows.last();
        let stored: Option<Vec<u8>> = head_row.get(4);
        let head = StreamHead {
            stream_id,
            version: last.map_or(0, |row| row.get(6)),
            hash: last.map(|row| row.get(18)),
            stream_type: last.map(|row| row.get(5)),
            read_at: head_row.get(0),
            key,
            idempotency_key: idempotency_key.map(str::to_owned),
            stored: stored.map(|fingerprint| (fingerprint, head_row.get(5))),
            assumed_new: false,
        };
        Ok((events, head))
    }

    /// The head of a stream its caller believes has no events yet, for a new record's first
    /// append, read from nothing: version 0, no data key, no stored result. Handed to
    /// [`EventStore::append_after`] with [`crate::ExpectedVersion::NoStream`], the append reads
    /// nothing first and joins whatever other new streams' first appends are waiting, written
    /// together in one statement (see `batch`: `recorded_at` is the database's clock, read by
    /// the writer after the append joined the queue). If the stream (or its data key, or its
    /// idempotency key) exists after all, the append writes nothing and answers
    /// [`StoreError::Conflict`] at once, with no retry and no stored result: the caller then
    /// loads the stream and decides again as usual.
    pub fn head_of_new_stream(&self, stream_id: Uuid, idempotency_key: Option<&str>) -> StreamHead {
        StreamHead {
            stream_id,
            version: 0,
            hash: None,
            stream_type: None,
            // Not read, and not used: the batch writer stamps `recorded_at`.
            read_at: DateTime::<Utc>::UNIX_EPOCH,
            key: self.protection.as_ref().map(|_| KeyState::Absent),
            idempotency_key: idempotency_key.map(str::to_owned),
            stored: None,
            assumed_new: true,
        }
    }

    /// Reads one stream up to and including `through_version`, as projectors see events (personal
    /// fields in their erased form): for a read model that refolds a record from its start.
    ///
    /// # Errors
    /// A database failure or an event that cannot be upcast.
    pub async fn read_stream_erased(
        &self,
        stream_id: Uuid,
        through_version: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE stream_id = $1 AND stream_version <= $2 \
             ORDER BY stream_version"
        );
        let statement = client.prepare_cached(&sql).await?;
        let rows = client
            .query(&statement, &[&stream_id, &through_version])
            .await?;
        self.decode_all(&rows, None)
    }

    /// Reads up to `limit` events after `after` in global order, never past a transaction that
    /// is still running.
    ///
    /// # Errors
    /// A database failure or an event that cannot be upcast.
    pub async fn read_all(
        &self,
        after: GlobalPosition,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = self.read_all_rows(after, limit).await?;
        // Projectors read here: personal fields always show in their erased form.
        self.decode_all(&rows, None)
    }

    /// The rows of [`EventStore::read_all`]: events after `after`, never past a transaction
    /// still running.
    async fn read_all_rows(
        &self,
        after: GlobalPosition,
        limit: i64,
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM events \
             WHERE (log_generation, transaction_id, position) > ($1, $2::text::xid8, $3) AND {VISIBLE} \
             ORDER BY events.log_generation, events.transaction_id, events.position LIMIT $4"
        );
        let statement = client.prepare_cached(&sql).await?;
        Ok(client
            .query(
                &statement,
                &[
                    &after.generation,
                    &after.transaction_id.to_string(),
                    &after.position,
                    &limit,
                ],
            )
            .await?)
    }

    /// As [`EventStore::read_all`], for a reader that decodes the payloads of `stream_type`'s
    /// events itself: each of those that needs neither opening nor upcasting is left as the
    /// JSON text stored ([`RawEvent::json`], its event's payload `null`), never parsed into a
    /// [`Value`] only to be taken apart again. Every other payload is read as `read_all` reads it.
    ///
    /// # Errors
    /// As [`EventStore::read_all`].
    pub async fn read_all_raw(
        &self,
        after: GlobalPosition,
        limit: i64,
        stream_type: &str,
    ) -> Result<Vec<RawEvent>, StoreError> {
        let rows = self.read_all_rows(after, limit).await?;
        // Sized up front (a collect into a `Result` knows no size and grows by doubling).
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            events.push({
                let event_type: &str = row.get(7);
                let stored_version: i32 = row.get(8);
                let JsonText(json) = row.try_get(9)?;
                // Opening changes only a sealed value (`{"$sealed": …}`), whose key `jsonb`
                // prints as is (`JsonText`): text without it opens to itself. (Text that has it
                // only inside a string is read as a value: the same, the longer way.)
                let as_stored = row.get::<_, &str>(5) == stream_type
                    && !self.upcasters.has_step(event_type, stored_version)
                    && !self.protection.as_ref().is_some_and(|p| {
                        p.may_seal(stream_type, event_type) && json.contains(SEALED_KEY)
                    });
                if as_stored {
                    let event_type = event_type.to_owned();
                    RawEvent {
                        event: self.recorded(row, event_type, stored_version, Value::Null),
                        json: Some(json.to_owned()),
                    }
                } else {
                    RawEvent {
                        event: self.decode(row, None)?,
                        json: None,
                    }
                }
            });
        }
        Ok(events)
    }

    /// Where the event at log `position` sits in the global read order, or `None` when no
    /// committed event has that position (beyond the head, or a position a rolled-back append
    /// burned).
    ///
    /// # Errors
    /// A database failure.
    pub async fn global_position(
        &self,
        position: i64,
    ) -> Result<Option<GlobalPosition>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT log_generation, transaction_id::text::bigint FROM events WHERE position = $1",
                &[&position],
            )
            .await?;
        Ok(row.map(|row| GlobalPosition {
            generation: row.get(0),
            transaction_id: row.get(1),
            position,
        }))
    }

    /// Whether any committed event lies after `after`, readable yet or not (an event whose
    /// transaction committed while an older one is still open is committed but not yet readable).
    ///
    /// # Errors
    /// A database failure.
    pub async fn has_committed_after(&self, after: GlobalPosition) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                // The first such event in the index's order, not `EXISTS`: inside `EXISTS` the
                // planner drops the order and scanned the whole log for a row past the end.
                "SELECT position FROM events \
                 WHERE (log_generation, transaction_id, position) > ($1, $2::text::xid8, $3) \
                 ORDER BY log_generation, transaction_id, position LIMIT 1",
                &[
                    &after.generation,
                    &after.transaction_id.to_string(),
                    &after.position,
                ],
            )
            .await?;
        Ok(row.is_some())
    }

    /// The last committed place in the global order, and how many events lie beyond `after`
    /// up to it: the lag of a reader at `after`. It counts events a reader cannot take yet
    /// because an older transaction is still open: they are still to be applied, and a rebuild
    /// that stops at this head waits for them.
    ///
    /// # Errors
    /// A database failure.
    pub async fn lag(&self, after: GlobalPosition) -> Result<(GlobalPosition, i64), StoreError> {
        let client = self.pool.get().await?;
        let head_sql = "SELECT log_generation, transaction_id::text::bigint, position FROM events \
             ORDER BY events.log_generation DESC, events.transaction_id DESC, events.position DESC LIMIT 1";
        let head = match client.query_opt(head_sql, &[]).await? {
            Some(row) => GlobalPosition {
                generation: row.get(0),
                transaction_id: row.get(1),
                position: row.get(2),
            },
            None => return Ok((after, 0)),
        };
        if head <= after {
            return Ok((head, 0));
        }
        let count_sql = "SELECT count(*) FROM events \
             WHERE (log_generation, transaction_id, position) > ($1, $2::text::xid8, $3) \
             AND (log_generation, transaction_id, position) <= ($4, $5::text::xid8, $6)";
        let behind: i64 = client
            .query_one(
                count_sql,
                &[
                    &after.generation,
                    &after.transaction_id.to_string(),
                    &after.position,
                    &head.generation,
                    &head.transaction_id.to_string(),
                    &head.position,
                ],
            )
            .await?
            .get(0);
        Ok((head, behind))
    }

    /// An event as stored, its personal fields opened with `key` (or shown erased), upcast.
    /// Every row decoded as [`EventStore::decode`] decodes one.
    fn decode_all(
        &self,
        rows: &[Row],
        key: Option<&DataKey>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            events.push(self.decode(row, key)?);
        }
        Ok(events)
    }

    pub(crate) fn decode(
        &self,
        row: &Row,
        key: Option<&DataKey>,
    ) -> Result<RecordedEvent, StoreError> {
        let event_type: String = row.get(7);
        let stored_version: i32 = row.get(8);
        let mut payload: Value = row.get(9);
        if let Some(protection) = &self.protection {
            protection.open(
                key,
                row.get(4),
                row.get::<_, &str>(5),
                &event_type,
                row.get(3),
                &mut payload,
            );
        }
        let (schema_version, payload) =
            self.upcasters
                .upcast(&event_type, stored_version, payload)?;
        Ok(self.recorded(row, event_type, schema_version, payload))
    }

    /// The event of `row`, of `event_type` (the row's own), with `payload`.
    fn recorded(
        &self,
        row: &Row,
        event_type: String,
        schema_version: i32,
        payload: Value,
    ) -> RecordedEvent {
        RecordedEvent {
            global: GlobalPosition {
                generation: row.get(0),
                transaction_id: row.get(1),
                position: row.get(2),
            },
            event_id: row.get(3),
            stream_id: row.get(4),
            stream_type: row.get(5),
            stream_version: row.get(6),
            event_type,
            schema_version,
            payload,
            metadata: Metadata {
                actor_id: row.get(10),
                actor_role: row.get(11),
                organisation_id: row.get(12),
                correlation_id: row.get(13),
                causation_id: row.get(14),
                occurred_at: row.get(16),
            },
            idempotency_key: row.get(15),
            recorded_at: row.get(17),
        }
    }
}

/// A sealed value's key as JSON text shows it.
const SEALED_KEY: &str = concat!('"', "$sealed", '"');

/// An event of [`EventStore::read_all_raw`]: with `json`, its payload is that text as stored
/// (the event's own payload `null`); without, the event is as [`EventStore::read_all`] reads it.
#[derive(Debug)]
pub struct RawEvent {
    pub event: RecordedEvent,
    pub json: Option<String>,
}

/// A `jsonb` value's text, borrowed from the row (no [`Value`] built). Only `jsonb`: its text
/// is printed from the parsed value, every key unescaped (a `json` column keeps `\u0024` as
/// written, and the look for a sealed key would miss it).
struct JsonText<'a>(&'a str);

impl<'a> tokio_postgres::types::FromSql<'a> for JsonText<'a> {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        // jsonb's binary form is a version byte (1) before the text.
        match raw.split_first() {
            Some((1, text)) => Ok(JsonText(std::str::from_utf8(text)?)),
            _ => Err("unsupported jsonb version".into()),
        }
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::JSONB
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sealed_key_looked_for_is_the_key_sealing_writes() {
        assert_eq!(super::SEALED_KEY, format!("\"{}\"", crate::SEALED));
        let sealed = serde_json::json!({ "note": { (crate::SEALED): "AAAA" } }).to_string();
        assert!(sealed.contains(super::SEALED_KEY));
    }
}
