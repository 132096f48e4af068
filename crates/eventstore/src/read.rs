use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::protect::{DataKey, KeyState};
use crate::{EventStore, GlobalPosition, Metadata, RecordedEvent, StoreError};

pub(crate) const COLUMNS: &str = "log_generation, transaction_id::text::bigint, position, event_id, \
    stream_id, stream_type, stream_version, event_type, schema_version, payload, actor_id, \
    actor_role, organisation_id, correlation_id, causation_id, idempotency_key, occurred_at, recorded_at";

/// A stream's data key row.
pub(crate) const KEY_SQL: &str =
    "SELECT wrapped_key, master_key_id FROM subject_keys WHERE subject_id = $1";

/// Rows visible to a global reader: older generations entirely, and in the current generation
/// only transactions below the oldest one still running, so nothing can commit behind us.
const VISIBLE: &str = "(log_generation < casebook_log_generation() \
    OR transaction_id < pg_snapshot_xmin(pg_current_snapshot()))";

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
            return events
                .await?
                .iter()
                .map(|row| self.decode(row, None))
                .collect();
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
        rows.iter().map(|row| self.decode(row, key)).collect()
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
        rows.iter().map(|row| self.decode(row, None)).collect()
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
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM events \
             WHERE (log_generation, transaction_id, position) > ($1, $2::text::xid8, $3) AND {VISIBLE} \
             ORDER BY events.log_generation, events.transaction_id, events.position LIMIT $4"
        );
        let statement = client.prepare_cached(&sql).await?;
        let rows = client
            .query(
                &statement,
                &[
                    &after.generation,
                    &after.transaction_id.to_string(),
                    &after.position,
                    &limit,
                ],
            )
            .await?;
        // Projectors read here: personal fields always show in their erased form.
        rows.iter().map(|row| self.decode(row, None)).collect()
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
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM events \
                 WHERE (log_generation, transaction_id, position) > ($1, $2::text::xid8, $3))",
                &[
                    &after.generation,
                    &after.transaction_id.to_string(),
                    &after.position,
                ],
            )
            .await?;
        Ok(row.get(0))
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
        Ok(RecordedEvent {
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
        })
    }
}
