use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::hash::{self, GENESIS, HashInput};
use crate::protect::KeyState;
use crate::{
    AppendRequest, AppendResult, AppendedEvent, Claim, EventStore, ExpectedVersion, Protection,
    StoreError, StreamHead,
};

/// Appends racing on the same stream under `ExpectedVersion::Any` retry this many times.
const ANY_VERSION_ATTEMPTS: usize = 8;

const HEAD_SQL: &str = "\
SELECT now(), last.stream_version, last.hash, last.stream_type, ik.fingerprint, ik.result
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT stream_version, hash, stream_type FROM events
    WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1
) AS last ON true
LEFT JOIN idempotency_keys AS ik ON ik.stream_id = $1 AND ik.idempotency_key = $2";

/// The batch and (with `$17` set) its idempotency key row, in one autocommit statement; with
/// `$lookups`, more of it. The log's generation is read once for the statement (see
/// `batch::insert_many_sql`).
macro_rules! insert_sql {
    ($lookups:expr) => {
        concat!(
            "\
WITH inserted AS (
    INSERT INTO events (
        event_id, stream_id, stream_type, stream_version, event_type, schema_version, payload,
        actor_id, actor_role, organisation_id, correlation_id, causation_id, idempotency_key,
        occurred_at, recorded_at, hash, log_generation)
    SELECT e.event_id, $1, $2, e.stream_version, e.event_type, e.schema_version, e.payload,
        $3, $4, $5, $6, $7, $8, $9, $10, e.hash, (SELECT casebook_log_generation())
    FROM unnest($11::uuid[], $12::bigint[], $13::text[], $14::int[], $15::jsonb[], $16::bytea[])
        AS e(event_id, stream_version, event_type, schema_version, payload, hash)
    RETURNING event_id, stream_version, position
), key AS (
    INSERT INTO idempotency_keys (stream_id, idempotency_key, fingerprint, result)
    SELECT $1, $8, $17, jsonb_build_object(
        'stream_id', $1::uuid,
        'stream_version', $18::bigint,
        'events', (SELECT jsonb_agg(jsonb_build_object(
            'event_id', event_id, 'stream_version', stream_version, 'position', position)
            ORDER BY stream_version) FROM inserted))
    WHERE $8::text IS NOT NULL
)
, shred AS (
    -- An erasure destroys the stream's data key in the statement that records it.
    INSERT INTO subject_keys (subject_id, wrapped_key, master_key_id, destroyed_at)
    SELECT $1, NULL, '', now() WHERE $19::boolean
    ON CONFLICT (subject_id) DO UPDATE SET wrapped_key = NULL,
        destroyed_at = coalesce(subject_keys.destroyed_at, EXCLUDED.destroyed_at)
), new_key AS (
    -- A stream's first data key, stored with its first sealed fields (a racing first append
    -- violates the key and retries with the key that won).
    INSERT INTO subject_keys (subject_id, wrapped_key, master_key_id)
    SELECT $1, $20, $21 WHERE $20::bytea IS NOT NULL
)",
            $lookups,
            "
SELECT event_id, stream_version, position FROM inserted"
        )
    };
}

/// An append that leaves the stream's lookup tags as they are.
const INSERT_SQL: &str = insert_sql!("");

/// The CTEs that replace the stream's lookup tags ($22, $23), or (an erasure) delete them.
macro_rules! lookups_sql {
    () => {
        ", drop_lookups AS (
    DELETE FROM stream_lookups
    WHERE stream_id = $1 AND ($19::boolean OR ($22::boolean AND NOT (tag = ANY($23::bytea[]))))
), add_lookups AS (
    INSERT INTO stream_lookups (tag, stream_id)
    SELECT tag, $1 FROM unnest($23::bytea[]) AS tag WHERE $22::boolean AND NOT $19::boolean
    ON CONFLICT DO NOTHING
)"
    };
}

/// An append that replaces the stream's lookup tags ($22, $23). A tag kept is not deleted and
/// inserted again (one row, one change a statement).
const INSERT_WITH_LOOKUPS_SQL: &str = insert_sql!(lookups_sql!());

/// An append that also makes claims ($24, $25: ids and generations, made in the claims' order),
/// or an erasure, which deletes the stream's tags and claims. (Only these statements, and the
/// clock's that resolves a `Claim::Next` or a `Claim::Unless`, name `lookup_claims` (V42) or
/// `casebook_carried_tags` (V43): an append with neither runs on a schema from before them; a
/// referral of someone new, which carries one, needs V43.)
const INSERT_WITH_CLAIM_SQL: &str = insert_sql!(concat!(
    lookups_sql!(),
    ", claim AS (
    -- A claim made by another append first violates the key: nothing here is written.
    INSERT INTO lookup_claims (claim_id, generation, stream_id)
    SELECT c.claim_id, c.generation, $1
    FROM unnest($24::uuid[], $25::bigint[]) AS c(claim_id, generation)
    WHERE NOT $19::boolean
    ORDER BY c.claim_id, c.generation
), drop_claims AS (
    DELETE FROM lookup_claims WHERE stream_id = $1 AND $19::boolean
)"
));

enum Attempt {
    Done(AppendResult),
    /// Another writer took the version we meant to write; `actual` is the stream's version now.
    Raced,
    /// Another writer stored the same idempotency key, or the stream's first data key, first;
    /// look it up again.
    KeyRaced,
}

impl EventStore {
    /// Appends `request.events` to one stream, all or nothing.
    ///
    /// With an idempotency key already used on the stream, returns the first append's result
    /// (`replayed` set) and writes nothing.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the stream is not at the expected version (nothing is
    /// written); [`StoreError::IdempotencyMismatch`] when the key was used for another request;
    /// [`StoreError::DuplicateEventId`], [`StoreError::StreamTypeMismatch`],
    /// [`StoreError::EmptyAppend`], [`StoreError::InvalidPayload`] for malformed requests;
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`] for database failures.
    #[tracing::instrument(skip_all, fields(stream_id = %request.stream_id, n_events = request.events.len()))]
    pub async fn append(&self, request: AppendRequest) -> Result<AppendResult, StoreError> {
        self.append_inner(request, false, None).await
    }

    /// Appends like [`EventStore::append`] after `head`, the stream's head as the command's
    /// load read it ([`EventStore::read_stream_for_append`]): the first attempt reads nothing
    /// and makes one round trip, the insert. The expected version must be the head's (a
    /// request that does not match it, or names another stream or key, is appended as by
    /// [`EventStore::append`]). A writer that appended since the load makes the insert violate
    /// `(stream_id, stream_version)`, and the append then goes on as [`EventStore::append`]
    /// does after a race (a conflict for an exact expectation).
    ///
    /// # Errors
    /// As [`EventStore::append`].
    #[tracing::instrument(skip_all, fields(stream_id = %request.stream_id, n_events = request.events.len()))]
    pub async fn append_after(
        &self,
        request: AppendRequest,
        head: StreamHead,
    ) -> Result<AppendResult, StoreError> {
        let matches = head.stream_id == request.stream_id
            && head.idempotency_key == request.idempotency_key
            && match request.expected {
                ExpectedVersion::NoStream => head.version == 0,
                ExpectedVersion::Exact(v) => head.version == v,
                ExpectedVersion::Any => false,
            };
        self.append_inner(request, false, matches.then_some(head))
            .await
    }

    /// Appends like [`EventStore::append`] and, in the same statement, destroys the stream's
    /// data key: every personal field ever sealed on it becomes unreadable for good, while the
    /// log and its hash chain stay whole (crypto-shredding). Later appends that carry personal
    /// fields are refused with [`StoreError::SubjectErased`].
    ///
    /// # Errors
    /// As [`EventStore::append`].
    #[tracing::instrument(skip_all, fields(stream_id = %request.stream_id))]
    pub async fn append_and_shred(
        &self,
        request: AppendRequest,
    ) -> Result<AppendResult, StoreError> {
        self.append_inner(request, true, None).await
    }

    async fn append_inner(
        &self,
        request: AppendRequest,
        shred: bool,
        mut head: Option<StreamHead>,
    ) -> Result<AppendResult, StoreError> {
        if request.events.is_empty() {
            return Err(StoreError::EmptyAppend);
        }
        let mut seen = HashSet::new();
        for event in &request.events {
            if !seen.insert(event.event_id) {
                return Err(StoreError::DuplicateEventId(event.event_id));
            }
        }
        // Only a keyed append is ever compared with another, so only it needs a fingerprint.
        let fingerprint: Vec<u8> = match &request.idempotency_key {
            Some(_) => request
                .fingerprint
                .unwrap_or_else(|| hash::fingerprint(&request.stream_type, &request.events))
                .to_vec(),
            None => Vec::new(),
        };
        let mut metadata = request.metadata.clone();
        metadata.occurred_at = hash::to_micros(metadata.occurred_at);

        let attempts = match request.expected {
            ExpectedVersion::Any => ANY_VERSION_ATTEMPTS,
            _ => 2,
        };
        // A head assumed rather than read: any sign that the stream exists ends the append
        // here, with nothing written and no stored result answered (its caller loads and
        // decides again).
        let assumed_new = head.as_ref().is_some_and(|head| head.assumed_new);
        for attempt in 0..attempts {
            match self
                .try_append(&request, &metadata, &fingerprint, shred, head.take())
                .await?
            {
                Attempt::Done(result) => return Ok(result),
                Attempt::Raced | Attempt::KeyRaced if assumed_new => break,
                Attempt::KeyRaced => continue,
                Attempt::Raced => {
                    // A keyed request that lost to a writer which has now committed: if that
                    // was its own twin (a retry sent before the first answer came), the next
                    // attempt finds the key and answers with the first result.
                    if request.idempotency_key.is_some() && attempt == 0 {
                        continue;
                    }
                    if request.expected != ExpectedVersion::Any {
                        let actual = self.stream_version(request.stream_id).await?;
                        return Err(StoreError::Conflict {
                            stream_id: request.stream_id,
                            expected: request.expected,
                            actual,
                        });
                    }
                }
            }
        }
        let actual = self.stream_version(request.stream_id).await?;
        Err(StoreError::Conflict {
            stream_id: request.stream_id,
            expected: request.expected,
            actual,
        })
    }

    /// The stream's current version (0 when it has no events).
    ///
    /// # Errors
    /// A database failure.
    pub async fn stream_version(&self, stream_id: Uuid) -> Result<i64, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = $1",
                &[&stream_id],
            )
            .await?;
        Ok(row.get(0))
    }

    async fn try_append(
        &self,
        request: &AppendRequest,
        metadata: &crate::Metadata,
        fingerprint: &[u8],
        shred: bool,
        given: Option<StreamHead>,
    ) -> Result<Attempt, StoreError> {
        // Taken only when something is read or written here: a new stream's first append goes
        // to the batch writer, which has connections of its own.
        let mut client: Option<deadpool_postgres::Client> = None;
        let assumed_new = given.as_ref().is_some_and(|head| head.assumed_new);
        let key = request.idempotency_key.as_deref();
        // Only a stream with personal fields to seal needs its data key.
        let protection = self.protection.as_deref().filter(|p| {
            p.needs_key(
                &request.stream_type,
                request.events.iter().map(|e| {
                    (
                        e.event_type.as_str(),
                        &e.payload,
                        e.personal_paths.as_slice(),
                    )
                }),
            )
        });
        let head = match given {
            Some(given) => Head {
                now: given.read_at,
                last_version: (given.version > 0).then_some(given.version),
                last_hash: given.hash,
                existing_type: given.stream_type,
                stored: given.stored,
                key: given.key,
            },
            None => {
                let connection = client.insert(self.pool.get().await?);
                read_head(connection, request, protection).await?
            }
        };
        // A stream without a data key gets a fresh one, stored by the insert statement itself:
        // one commit.
        let mut new_key: Option<Vec<u8>> = None;
        let data_key = match (protection, head.key) {
            (None, _) => None,
            (Some(protection), state) => {
                let state = match state {
                    Some(state) => state,
                    // A head read by a store that seals nothing: read the key now.
                    None => {
                        let connection = match client {
                            Some(ref connection) => connection,
                            None => client.insert(self.pool.get().await?),
                        };
                        let key_statement = connection.prepare_cached(crate::read::KEY_SQL).await?;
                        let row = connection
                            .query_opt(&key_statement, &[&request.stream_id])
                            .await?;
                        protection
                            .key_state(request.stream_id, row.map(|row| (row.get(0), row.get(1))))?
                    }
                };
                match state {
                    KeyState::Live(data_key) => Some(data_key),
                    KeyState::Destroyed => {
                        return Err(StoreError::SubjectErased(request.stream_id));
                    }
                    KeyState::Absent => {
                        let (data_key, wrapped) = protection.new_key(request.stream_id)?;
                        new_key = Some(wrapped);
                        Some(data_key)
                    }
                }
            }
        };
        let now = head.now;
        let last_version = head.last_version;
        let last_hash = head.last_hash;
        let existing_type = head.existing_type;
        let (stored_fingerprint, stored_result) = match head.stored {
            Some((fingerprint, result)) => (Some(fingerprint), Some(result)),
            None => (None, None),
        };

        if let (Some(stored), Some(result), Some(key)) = (stored_fingerprint, stored_result, key) {
            if stored.as_slice() != fingerprint {
                return Err(StoreError::IdempotencyMismatch {
                    stream_id: request.stream_id,
                    key: key.to_owned(),
                });
            }
            let mut result: AppendResult = serde_json::from_value(result).map_err(|e| {
                StoreError::InvalidPayload(format!("stored idempotent result is unreadable: {e}"))
            })?;
            result.replayed = true;
            return Ok(Attempt::Done(result));
        }
        if let Some(existing) = existing_type
            && existing != request.stream_type
        {
            return Err(StoreError::StreamTypeMismatch {
                stream_id: request.stream_id,
                existing,
                requested: request.stream_type.clone(),
            });
        }
        let actual = last_version.unwrap_or(0);
        let matches = match request.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => actual == v,
        };
        if !matches {
            return Err(StoreError::Conflict {
                stream_id: request.stream_id,
                expected: request.expected,
                actual,
            });
        }

        let n = request.events.len();
        let mut insert = Insert {
            stream_id: request.stream_id,
            stream_type: request.stream_type.clone(),
            metadata: metadata.clone(),
            key: key.map(str::to_owned),
            recorded_at: now,
            ids: Vec::with_capacity(n),
            versions: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            schema_versions: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            hashes: Vec::with_capacity(n),
            fingerprint: fingerprint.to_vec(),
            stream_version: actual + n as i64,
            shred,
            new_key,
            master_key_id: protection.map(|p| p.master_key_id().to_owned()),
            lookups: request
                .lookups
                .as_ref()
                .map(|tags| tags.iter().map(|tag| tag.to_vec()).collect()),
            claims: request.claims.clone(),
        };
        for (i, event) in request.events.iter().enumerate() {
            let mut payload = event.payload.clone();
            if let (Some(protection), Some(data_key)) = (protection, &data_key) {
                protection.seal(
                    data_key,
                    request.stream_id,
                    &request.stream_type,
                    event,
                    &mut payload,
                )?;
            }
            insert.ids.push(event.event_id);
            insert.versions.push(actual + 1 + i as i64);
            insert.types.push(event.event_type.clone());
            insert.schema_versions.push(event.schema_version);
            insert.payloads.push(payload);
        }
        let prev = last_hash.unwrap_or_else(|| GENESIS.to_vec());

        // A new stream's first append (not an erasure) is written with whatever other new
        // streams' are waiting, in one statement (`batch`); any other, here, alone.
        // Its `recorded_at` and hashes are the batch writer's to set, from the database's
        // clock read after the append joined the queue.
        let inserted = if assumed_new && !shred {
            drop(client);
            self.insert_new_stream(insert).await?
        } else {
            insert.chain(prev, now);
            let connection = match client {
                Some(connection) => connection,
                None => self.pool.get().await?,
            };
            insert_one(&connection, &insert).await?
        };
        let mut events = match inserted {
            Inserted::Rows(events) => events,
            Inserted::Raced => return Ok(Attempt::Raced),
            Inserted::KeyRaced => return Ok(Attempt::KeyRaced),
        };
        events.sort_by_key(|e| e.stream_version);
        // Wake subscribers only now that the events are committed (see the migration's note),
        // through the store's notifier: one NOTIFY for every append since its last (a batch
        // writer has woken them already).
        if !assumed_new {
            self.notifier.committed();
        }
        Ok(Attempt::Done(AppendResult {
            stream_id: request.stream_id,
            stream_version: actual + n as i64,
            events,
            replayed: false,
        }))
    }
}

/// One append's statement parameters, owned (a batch writer's job outlives its caller's
/// borrows).
pub(crate) struct Insert {
    pub(crate) stream_id: Uuid,
    pub(crate) stream_type: String,
    pub(crate) metadata: crate::Metadata,
    pub(crate) key: Option<String>,
    pub(crate) recorded_at: DateTime<Utc>,
    pub(crate) ids: Vec<Uuid>,
    pub(crate) versions: Vec<i64>,
    pub(crate) types: Vec<String>,
    pub(crate) schema_versions: Vec<i32>,
    pub(crate) payloads: Vec<Value>,
    pub(crate) hashes: Vec<Vec<u8>>,
    pub(crate) fingerprint: Vec<u8>,
    pub(crate) stream_version: i64,
    pub(crate) shred: bool,
    pub(crate) new_key: Option<Vec<u8>>,
    pub(crate) master_key_id: Option<String>,
    /// The stream's lookup tags, replacing its others; `None` leaves them as they are.
    pub(crate) lookups: Option<Vec<Vec<u8>>>,
    /// The claims the append makes (each a [`Claim::At`] once resolved:
    /// [`read_clock_and_claims`]).
    pub(crate) claims: Vec<Claim>,
}

impl Insert {
    /// Stamps every event `recorded_at` and chains its hash after `prev` (the stream's last
    /// hash, or the genesis hash for a new stream).
    pub(crate) fn chain(&mut self, mut prev: Vec<u8>, recorded_at: DateTime<Utc>) {
        self.recorded_at = recorded_at;
        self.hashes.clear();
        for i in 0..self.ids.len() {
            let digest = hash::event_hash(
                &prev,
                &HashInput {
                    event_id: self.ids[i],
                    stream_id: self.stream_id,
                    stream_type: &self.stream_type,
                    stream_version: self.versions[i],
                    event_type: &self.types[i],
                    schema_version: self.schema_versions[i],
                    payload: &self.payloads[i],
                    metadata: &self.metadata,
                    idempotency_key: self.key.as_deref(),
                    recorded_at,
                },
            );
            prev = digest.to_vec();
            self.hashes.push(digest.to_vec());
        }
    }
}

/// What an insert came to.
pub(crate) enum Inserted {
    Rows(Vec<AppendedEvent>),
    /// Another writer took the stream's version first (or the stream exists, for a head
    /// assumed new).
    Raced,
    /// Another writer stored the idempotency key or the stream's first data key first.
    KeyRaced,
}

/// Inserts one append in one statement (autocommit).
pub(crate) async fn insert_one(
    client: &deadpool_postgres::Client,
    insert: &Insert,
) -> Result<Inserted, StoreError> {
    // A claim on a next generation, or a guard, is resolved first (the batch writer resolves
    // its own with its clock; an append written alone, here).
    let resolved;
    let claims = if insert
        .claims
        .iter()
        .all(|claim| matches!(claim, Claim::At { .. }))
    {
        insert.claims.as_slice()
    } else {
        let (_, mut answers) = read_clock_and_claims(client, &[&insert.claims]).await?;
        resolved = answers
            .pop()
            .unwrap_or(Ok(Vec::new()))
            .map_err(StoreError::ClaimTaken)?;
        resolved.as_slice()
    };
    let (claim_ids, generations): (Vec<Uuid>, Vec<i64>) = claims
        .iter()
        .filter_map(|claim| match claim {
            Claim::At { id, generation } => Some((*id, *generation)),
            Claim::Next { .. } | Claim::Unless { .. } => None,
        })
        .unzip();
    // Only an append that carries tags or claims, or an erasure, touches them (a guard,
    // `Claim::Unless`, claims nothing: resolved above, and the append written as any other).
    let (sql, parameters) = if !claim_ids.is_empty() || insert.shred {
        (INSERT_WITH_CLAIM_SQL, 25)
    } else if insert.lookups.is_some() {
        (INSERT_WITH_LOOKUPS_SQL, 23)
    } else {
        (INSERT_SQL, 21)
    };
    let statement = client.prepare_cached(sql).await?;
    let replace_lookups = insert.lookups.is_some();
    let lookups: Vec<&[u8]> = insert.lookups.iter().flatten().map(Vec::as_slice).collect();
    let metadata = &insert.metadata;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 25] = [
        &insert.stream_id,
        &insert.stream_type,
        &metadata.actor_id,
        &metadata.actor_role,
        &metadata.organisation_id,
        &metadata.correlation_id,
        &metadata.causation_id,
        &insert.key,
        &metadata.occurred_at,
        &insert.recorded_at,
        &insert.ids,
        &insert.versions,
        &insert.types,
        &insert.schema_versions,
        &insert.payloads,
        &insert.hashes,
        &insert.fingerprint,
        &insert.stream_version,
        &insert.shred,
        &insert.new_key,
        &insert.master_key_id,
        &replace_lookups,
        &lookups,
        &claim_ids,
        &generations,
    ];
    let inserted = client.query(&statement, &params[..parameters]).await;
    match inserted {
        Ok(rows) => Ok(Inserted::Rows(
            rows.iter()
                .map(|row| AppendedEvent {
                    event_id: row.get(0),
                    stream_version: row.get(1),
                    position: row.get(2),
                })
                .collect(),
        )),
        Err(e) => {
            if let (Some("lookup_claims_pkey"), Some(first)) = (
                e.as_db_error().and_then(|db| db.constraint()),
                claim_ids.first(),
            ) {
                // The claim the violation names (its detail starts with the claim's id).
                let named = violating_id(&e).filter(|id| claim_ids.contains(id));
                return Err(StoreError::ClaimTaken(named.unwrap_or(*first)));
            }
            if matches!(
                e.as_db_error().and_then(|db| db.constraint()),
                Some("idempotency_keys_pkey" | "subject_keys_pkey")
            ) {
                return Ok(Inserted::KeyRaced);
            }
            classify_insert_error(e).map(|()| Inserted::Raced)
        }
    }
}

/// The database's clock and what the claims of each append of `appends` come to, read in one
/// statement (one snapshot): each append's claims resolved to [`Claim::At`]s (a
/// [`Claim::At`] as it is; a [`Claim::Next`], its next generation; a [`Claim::Unless`],
/// nothing), or the id of the first of them refused because a stream carries one of its tags.
/// Only a statement asked about a next generation or a guard names `lookup_claims` (V42) and
/// `casebook_carried_tags` (V43, which reads `stream_lookups`).
///
/// # Errors
/// A database failure.
pub(crate) async fn read_clock_and_claims(
    client: &deadpool_postgres::Client,
    appends: &[&[Claim]],
) -> Result<(DateTime<Utc>, Vec<Result<Vec<Claim>, Uuid>>), StoreError> {
    let mut tags: Vec<&[u8]> = Vec::new();
    let mut next: Vec<Uuid> = Vec::new();
    for claim in appends.iter().copied().flatten() {
        match claim {
            Claim::Next { id, unless_tagged } => {
                next.push(*id);
                tags.extend(unless_tagged.iter().map(<[u8; 32]>::as_slice));
            }
            Claim::Unless { unless_tagged, .. } => {
                tags.extend(unless_tagged.iter().map(<[u8; 32]>::as_slice));
            }
            Claim::At { .. } => {}
        }
    }
    let (now, tagged, latest): (DateTime<Utc>, Vec<Vec<u8>>, Vec<i64>) =
        if next.is_empty() && tags.is_empty() {
            let statement = client.prepare_cached("SELECT now()").await?;
            let now = client.query_one(&statement, &[]).await?.get(0);
            (now, Vec::new(), Vec::new())
        } else {
            // Each tag and each claim its own index look-up (see
            // `EventStore::tagged_and_claimed`).
            let statement = client.prepare_cached(CLOCK_AND_CLAIMS_SQL).await?;
            let row = client.query_one(&statement, &[&tags, &next]).await?;
            (row.get(0), row.get(1), row.get(2))
        };
    let mut latest = latest.into_iter();
    let carried = |unless_tagged: &[[u8; 32]]| {
        unless_tagged
            .iter()
            .any(|tag| tagged.iter().any(|t| t.as_slice() == tag.as_slice()))
    };
    let answers = appends
        .iter()
        .map(|claims| {
            let mut resolved = Vec::with_capacity(claims.len());
            let mut refused = None;
            for claim in *claims {
                match claim {
                    Claim::At { .. } => resolved.push(claim.clone()),
                    Claim::Next { id, unless_tagged } => {
                        // Read in order whatever is refused, so that the next append's
                        // generations are its own.
                        let generation = latest.next().unwrap_or_default() + 1;
                        if carried(unless_tagged) {
                            refused = refused.or(Some(*id));
                        }
                        resolved.push(Claim::At {
                            id: *id,
                            generation,
                        });
                    }
                    Claim::Unless { id, unless_tagged } => {
                        if carried(unless_tagged) {
                            refused = refused.or(Some(*id));
                        }
                    }
                }
            }
            refused.map_or(Ok(resolved), Err)
        })
        .collect();
    Ok((now, answers))
}

/// The clock with the tags of those carried by a stream (of each [`Claim::Next`]'s and
/// [`Claim::Unless`]'s asked about; by the index whatever the plan cached, V43's
/// `casebook_carried_tags`), and each [`Claim::Next`]'s latest generation (0: never claimed),
/// in the order asked.
const CLOCK_AND_CLAIMS_SQL: &str = "\
SELECT now(),
    casebook_carried_tags($1::bytea[]),
    ARRAY(SELECT (SELECT coalesce(max(generation), 0) FROM lookup_claims AS l
                  WHERE l.claim_id = c.id)
          FROM unnest($2::uuid[]) WITH ORDINALITY AS c(id, n) ORDER BY c.n)";

/// The stream's head before an append.
struct Head {
    now: DateTime<Utc>,
    last_version: Option<i64>,
    last_hash: Option<Vec<u8>>,
    existing_type: Option<String>,
    /// The fingerprint and result stored under the request's idempotency key.
    stored: Option<(Vec<u8>, Value)>,
    /// The stream's data key, when it was read with the head.
    key: Option<KeyState>,
}

/// Reads the head (and, with a protection, the data key, pipelined in the same round trip).
async fn read_head(
    client: &deadpool_postgres::Client,
    request: &AppendRequest,
    protection: Option<&Protection>,
) -> Result<Head, StoreError> {
    let key = request.idempotency_key.as_deref();
    let head_statement = client.prepare_cached(HEAD_SQL).await?;
    let head_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&request.stream_id, &key];
    let head_query = client.query_one(&head_statement, &head_params);
    let (row, key) = match protection {
        Some(protection) => {
            let key_statement = client.prepare_cached(crate::read::KEY_SQL).await?;
            let key_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&request.stream_id];
            let (row, key_row) =
                tokio::try_join!(head_query, client.query_opt(&key_statement, &key_params))?;
            let state = protection.key_state(
                request.stream_id,
                key_row.map(|row| (row.get(0), row.get(1))),
            )?;
            (row, Some(state))
        }
        None => (head_query.await?, None),
    };
    let stored_fingerprint: Option<Vec<u8>> = row.get(4);
    Ok(Head {
        now: row.get(0),
        last_version: row.get(1),
        last_hash: row.get(2),
        existing_type: row.get(3),
        stored: stored_fingerprint.map(|fingerprint| (fingerprint, row.get(5))),
        key,
    })
}

/// A unique violation on (stream, version) means another writer won the race: `Ok(())`.
/// Everything else is an error for the caller.
fn classify_insert_error(e: tokio_postgres::Error) -> Result<(), StoreError> {
    let Some(db) = e.as_db_error() else {
        return Err(e.into());
    };
    if *db.code() == SqlState::UNIQUE_VIOLATION {
        return match db.constraint() {
            Some("events_stream_version_key") => Ok(()),
            Some("events_event_id_key") => Err(StoreError::DuplicateEventId(
                extract_uuid(db.detail().unwrap_or_default()).unwrap_or_default(),
            )),
            _ => Err(e.into()),
        };
    }
    if *db.code() == SqlState::UNTRANSLATABLE_CHARACTER
        || *db.code() == SqlState::INVALID_TEXT_REPRESENTATION
        || *db.code() == SqlState::CHARACTER_NOT_IN_REPERTOIRE
    {
        return Err(StoreError::InvalidPayload(db.message().to_owned()));
    }
    Err(e.into())
}

/// The id a unique violation's detail names first ("Key (a, ...)=(id, ...) already exists.").
pub(crate) fn extract_uuid(detail: &str) -> Option<Uuid> {
    let start = detail.find("=(")? + 2;
    Uuid::parse_str(detail.get(start..start + 36)?).ok()
}

/// The id a unique violation names first, if `e` is one.
fn violating_id(e: &tokio_postgres::Error) -> Option<Uuid> {
    extract_uuid(e.as_db_error()?.detail()?)
}

impl EventStore {
    /// The stored result of an earlier append with this idempotency key on this stream, if any.
    /// With a `fingerprint`, a stored result for a different request is an error.
    ///
    /// # Errors
    /// [`StoreError::IdempotencyMismatch`] when the fingerprints differ; a database failure.
    pub async fn idempotent_result(
        &self,
        stream_id: Uuid,
        key: &str,
        fingerprint: Option<[u8; 32]>,
    ) -> Result<Option<AppendResult>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT fingerprint, result FROM idempotency_keys WHERE stream_id = $1 AND idempotency_key = $2",
                &[&stream_id, &key],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: Vec<u8> = row.get(0);
        if let Some(fingerprint) = fingerprint
            && stored.as_slice() != fingerprint.as_slice()
        {
            return Err(StoreError::IdempotencyMismatch {
                stream_id,
                key: key.to_owned(),
            });
        }
        let mut result: AppendResult = serde_json::from_value(row.get(1)).map_err(|e| {
            StoreError::InvalidPayload(format!("stored idempotent result is unreadable: {e}"))
        })?;
        result.replayed = true;
        Ok(Some(result))
    }
}
