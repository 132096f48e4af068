//! New streams' first appends, written together.
//!
//! A statement costs PostgreSQL far more than the rows it inserts: on this project's 2-core
//! machine, one statement inserting sixteen event rows took about a quarter of the time of
//! eight statements inserting two each (BENCHMARKS.md). So the first append of a new stream
//! (a new person's referral, `EventStore::head_of_new_stream`), which reads nothing before it
//! writes, does not take a connection and send its own statement: it joins a queue, and two
//! writer tasks ([`WRITERS`]) each take everything waiting (up to [`MOST`] appends), read the
//! database's clock once for all of them (`recorded_at`: a moment after each was asked for and
//! before it commits, as a command's load would have read it), chain their hashes from it, and
//! insert them in one statement, one transaction. While one statement runs the next batch
//! gathers, so a single caller waits for nothing and many share a clock reading, a statement
//! and a commit.
//!
//! All or nothing: if the statement fails for any reason (a stream that exists after all,
//! a racing data key or idempotency key, a payload the database refuses, a lost connection),
//! nothing of it was written, and each append of the batch is then written alone, as any
//! other append is, so that each gets its own answer. A writer task runs to the end whatever
//! happens to the callers waiting on it (a caller that goes away cannot cancel a statement
//! others are waiting on), and one that fails hands its queue to the next.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::append::{Insert, Inserted, extract_uuid, insert_one, read_clock_and_claims};
use crate::hash::GENESIS;
use crate::{AppendedEvent, Claim, EventStore, StoreError};

/// The most appends one statement takes.
pub(crate) const MOST: usize = 64;

/// The most statements in flight at once (each on a pooled connection): two, so that one
/// batch gathers while the other is written. More writers take smaller batches, and a
/// statement costs far more than its rows: at 32 clients on the 2-core machine, two writers
/// rather than four took about 15% less of the cluster's CPU per referral, with the same or
/// lower latency (BENCHMARKS.md, "Fewer threads than cores, two batch writers").
pub(crate) const WRITERS: usize = 2;

/// Every event of the batch, then each keyed stream's idempotency row, each new data key and
/// each lookup tag (and, with `$claims`, each claim): one statement (autocommit, so one
/// transaction). The stored idempotency result is the same JSON the one-append statement stores.
/// The log's generation is read once for the statement, not once a row as the column's default
/// would read it (two lookups a referral, a few per cent of its append's time).
macro_rules! insert_many_sql {
    ($claims:literal) => {
        concat!(
            "\
WITH inserted AS (
    INSERT INTO events (
        event_id, stream_id, stream_type, stream_version, event_type, schema_version, payload,
        actor_id, actor_role, organisation_id, correlation_id, causation_id, idempotency_key,
        occurred_at, recorded_at, hash, log_generation)
    SELECT *, (SELECT casebook_log_generation()) FROM unnest($1::uuid[], $2::uuid[], $3::text[],
        $4::bigint[], $5::text[], $6::int[], $7::jsonb[], $8::uuid[], $9::text[], $10::uuid[],
        $11::uuid[], $12::uuid[], $13::text[], $14::timestamptz[], $15::timestamptz[],
        $16::bytea[])
    RETURNING event_id, stream_id, stream_version, position
), key AS (
    INSERT INTO idempotency_keys (stream_id, idempotency_key, fingerprint, result)
    SELECT k.stream_id, k.idempotency_key, k.fingerprint, jsonb_build_object(
        'stream_id', k.stream_id,
        'stream_version', k.stream_version,
        'events', (SELECT jsonb_agg(jsonb_build_object(
            'event_id', i.event_id, 'stream_version', i.stream_version, 'position', i.position)
            ORDER BY i.stream_version) FROM inserted AS i WHERE i.stream_id = k.stream_id))
    FROM unnest($17::uuid[], $18::text[], $19::bytea[], $20::bigint[])
        AS k(stream_id, idempotency_key, fingerprint, stream_version)
), new_key AS (
    INSERT INTO subject_keys (subject_id, wrapped_key, master_key_id)
    SELECT * FROM unnest($21::uuid[], $22::bytea[], $23::text[])
), add_lookups AS (
    INSERT INTO stream_lookups (tag, stream_id)
    SELECT * FROM unnest($24::bytea[], $25::uuid[])
    ON CONFLICT DO NOTHING
)",
            $claims,
            "
SELECT event_id, stream_id, stream_version, position FROM inserted"
        )
    };
}

const INSERT_MANY_SQL: &str = insert_many_sql!("");

/// [`INSERT_MANY_SQL`] with claims, in the claims' order (two batches making two same claims
/// wait on each other in one order, never in opposite orders). Only this statement and the
/// clock's with a [`Claim::Next`] or [`Claim::Unless`] to resolve name `lookup_claims` (V42) or
/// `casebook_carried_tags` (V43).
const INSERT_MANY_WITH_CLAIMS_SQL: &str = insert_many_sql!(
    ", claims AS (
    INSERT INTO lookup_claims (claim_id, generation, stream_id)
    SELECT * FROM unnest($26::uuid[], $27::bigint[], $28::uuid[]) AS c(claim_id, generation, stream_id)
    ORDER BY claim_id, generation
)"
);

/// The most appends waiting at once; past it, an append goes the usual way (its caller loads
/// the stream), so that a stalled database cannot pile up memory here.
pub(crate) const QUEUE_LIMIT: usize = 4096;

/// The queue, how many writer tasks are working it, and what they wrote.
#[derive(Default)]
pub(crate) struct NewStreams {
    state: Mutex<Queue>,
    written: AtomicU64,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Job>,
    writers: usize,
}

struct Job {
    insert: Insert,
    reply: oneshot::Sender<Result<Inserted, StoreError>>,
}

impl NewStreams {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Queue {
    /// The next batch: appends whose callers still wait, at most one per stream and one per
    /// claim (a second append to a stream, or making a claim another of the batch makes, waits
    /// for the next batch: it would fail this one's statement) and at most [`MOST`], in stream
    /// order (two batches never take the same rows' locks in opposite orders; the claims are
    /// inserted in their own order).
    fn next_batch(&mut self) -> Vec<Job> {
        let mut batch: Vec<Job> = Vec::new();
        let mut streams = HashSet::new();
        let mut claims = HashSet::new();
        let mut left = Vec::new();
        for job in self.waiting.drain(..) {
            if job.reply.is_closed() {
                continue;
            }
            let claim_free = job
                .insert
                .claims
                .iter()
                .all(|claim| !claims.contains(&claim.id()));
            if batch.len() < MOST && claim_free && streams.insert(job.insert.stream_id) {
                claims.extend(job.insert.claims.iter().map(Claim::id));
                batch.push(job);
            } else {
                left.push(job);
            }
        }
        self.waiting = left;
        batch.sort_by_key(|job| job.insert.stream_id);
        batch
    }
}

impl EventStore {
    /// Inserts a new stream's first append with whatever others are waiting (see the module).
    /// A writer that went away before answering, or a full queue, is answered as a race: the
    /// caller then reads the stream, which tells whether the append was written.
    pub(crate) async fn insert_new_stream(&self, insert: Insert) -> Result<Inserted, StoreError> {
        let (reply, answer) = oneshot::channel();
        let start_writer = {
            let mut queue = self.new_streams.lock();
            if queue.waiting.len() >= QUEUE_LIMIT {
                return Ok(Inserted::Raced);
            }
            queue.waiting.push(Job { insert, reply });
            let start = queue.writers < WRITERS;
            if start {
                queue.writers += 1;
            }
            start
        };
        if start_writer {
            WriterGuard::new(self.clone()).spawn();
        }
        answer.await.unwrap_or(Ok(Inserted::Raced))
    }

    /// How many new streams' first appends this store's batch writers have written: for
    /// tests and metrics.
    pub fn new_streams_written(&self) -> u64 {
        self.new_streams.written.load(Ordering::Relaxed)
    }

    async fn write_batch(&self, jobs: Vec<Job>) {
        // The database's clock, read now that every append of the batch has joined the queue:
        // each is recorded at a moment after it was asked for and before it commits, as a
        // command's load would have read it.
        // In the same statement, what each claim on a next generation comes to (see
        // `Claim::Next`): one the tags refuse is answered now, and written by no one.
        let claims: Vec<&[Claim]> = jobs
            .iter()
            .map(|job| job.insert.claims.as_slice())
            .collect();
        let stamped = match self.pool.get().await {
            Ok(client) => match read_clock_and_claims(&client, &claims).await {
                Ok((now, resolved)) => Some((client, now, resolved)),
                Err(_) => None,
            },
            Err(_) => None,
        };
        let Some((client, now, resolved)) = stamped else {
            // Each on its own, to be answered with its own failure (or to succeed).
            for job in jobs {
                let answer = self.write_alone(job.insert).await;
                self.answer(job.reply, answer);
            }
            return;
        };
        let mut ready = Vec::with_capacity(jobs.len());
        for (mut job, resolved) in jobs.into_iter().zip(resolved) {
            match resolved {
                // A stream carries a tag that refuses a claim or a guard: written by no one.
                Err(id) => {
                    self.answer(job.reply, Err(StoreError::ClaimTaken(id)));
                    continue;
                }
                // Each claim at the generation it comes to (a guard passed claims nothing).
                Ok(claims) => job.insert.claims = claims,
            }
            job.insert.chain(GENESIS.to_vec(), now);
            ready.push(job);
        }
        let mut jobs = ready;
        // A statement refused for one append's sake (its stream, data key or idempotency key
        // exists after all; an event id in use) is tried again without that one, which is
        // written alone for its own answer; refused for any other reason, each is written alone.
        while jobs.len() > 1 {
            match insert_many(&client, &jobs).await {
                Ok(mut written) => {
                    for job in jobs {
                        // Every stream of the batch has its rows (else the statement failed).
                        let answer = match written.remove(&job.insert.stream_id) {
                            Some(rows) => Inserted::Rows(rows),
                            None => Inserted::Raced,
                        };
                        self.answer(job.reply, Ok(answer));
                    }
                    return;
                }
                Err(e) => match culprit(&e, &jobs) {
                    Some(i) => {
                        let job = jobs.remove(i);
                        let answer = insert_one(&client, &job.insert).await;
                        self.answer(job.reply, answer);
                    }
                    None => {
                        tracing::debug!(error = %e, appends = jobs.len(),
                            "a batch of new streams was refused whole; writing each alone");
                        break;
                    }
                },
            }
        }
        for job in jobs {
            let answer = insert_one(&client, &job.insert).await;
            self.answer(job.reply, answer);
        }
    }

    /// Answers one append's caller; after a write, wakes subscribers (the caller may be gone).
    fn answer(
        &self,
        reply: oneshot::Sender<Result<Inserted, StoreError>>,
        answer: Result<Inserted, StoreError>,
    ) {
        if let Ok(Inserted::Rows(_)) = &answer {
            self.new_streams.written.fetch_add(1, Ordering::Relaxed);
            self.notifier.committed();
        }
        let _ = reply.send(answer);
    }

    /// One new stream's first append on a connection of its own, stamped by its own reading of
    /// the clock.
    async fn write_alone(&self, mut insert: Insert) -> Result<Inserted, StoreError> {
        let client = self.pool.get().await?;
        let now = read_clock(&client).await?;
        insert.chain(GENESIS.to_vec(), now);
        insert_one(&client, &insert).await
    }
}

/// The append of `jobs` a unique violation names (by its stream's id, an event's id or its
/// claim's id, made by another statement since: written alone, it is refused with
/// `ClaimTaken`).
fn culprit(e: &StoreError, jobs: &[Job]) -> Option<usize> {
    let StoreError::Unexpected(e) = e else {
        return None;
    };
    let db = e.as_db_error()?;
    if *db.code() != tokio_postgres::error::SqlState::UNIQUE_VIOLATION {
        return None;
    }
    let id = extract_uuid(db.detail()?)?;
    jobs.iter().position(|job| {
        job.insert.stream_id == id
            || job.insert.ids.contains(&id)
            || job.insert.claims.iter().any(|claim| claim.id() == id)
    })
}

async fn read_clock(
    client: &deadpool_postgres::Client,
) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    let statement = client.prepare_cached("SELECT now()").await?;
    Ok(client.query_one(&statement, &[]).await?.get(0))
}

async fn insert_many(
    client: &deadpool_postgres::Client,
    jobs: &[Job],
) -> Result<HashMap<Uuid, Vec<AppendedEvent>>, StoreError> {
    let events: usize = jobs.iter().map(|job| job.insert.ids.len()).sum();
    let mut e = Columns::with_capacity(events);
    let mut keys = KeyColumns::default();
    let mut data_keys = DataKeyColumns::default();
    let (mut tags, mut tagged): (Vec<&[u8]>, Vec<Uuid>) = (Vec::new(), Vec::new());
    let mut claims: (Vec<Uuid>, Vec<i64>, Vec<Uuid>) = (Vec::new(), Vec::new(), Vec::new());
    for job in jobs {
        let insert = &job.insert;
        // Only a new stream's first append comes here: no erasure, no tags to drop.
        debug_assert!(!insert.shred);
        let metadata = &insert.metadata;
        for i in 0..insert.ids.len() {
            e.event_id.push(insert.ids[i]);
            e.stream_id.push(insert.stream_id);
            e.stream_type.push(insert.stream_type.as_str());
            e.stream_version.push(insert.versions[i]);
            e.event_type.push(insert.types[i].as_str());
            e.schema_version.push(insert.schema_versions[i]);
            e.payload.push(&insert.payloads[i]);
            e.actor_id.push(metadata.actor_id);
            e.actor_role.push(metadata.actor_role.as_str());
            e.organisation_id.push(metadata.organisation_id);
            e.correlation_id.push(metadata.correlation_id);
            e.causation_id.push(metadata.causation_id);
            e.idempotency_key.push(insert.key.as_deref());
            e.occurred_at.push(metadata.occurred_at);
            e.recorded_at.push(insert.recorded_at);
            e.hash.push(insert.hashes[i].as_slice());
        }
        if let Some(key) = &insert.key {
            keys.stream_id.push(insert.stream_id);
            keys.key.push(key.as_str());
            keys.fingerprint.push(insert.fingerprint.as_slice());
            keys.stream_version.push(insert.stream_version);
        }
        if let (Some(wrapped), Some(master)) = (&insert.new_key, &insert.master_key_id) {
            data_keys.subject_id.push(insert.stream_id);
            data_keys.wrapped.push(wrapped.as_slice());
            data_keys.master_key_id.push(master.as_str());
        }
        for tag in insert.lookups.iter().flatten() {
            tags.push(tag.as_slice());
            tagged.push(insert.stream_id);
        }
        for claim in &insert.claims {
            match claim {
                Claim::At { id, generation } => {
                    claims.0.push(*id);
                    claims.1.push(*generation);
                    claims.2.push(insert.stream_id);
                }
                // Resolved by `write_batch` before it comes here; if not, the batch is refused
                // and each append written alone (`insert_one` resolves its own).
                Claim::Next { .. } | Claim::Unless { .. } => {
                    return Err(StoreError::InvalidPayload(
                        "a claim on a next generation left unresolved".to_owned(),
                    ));
                }
            }
        }
    }
    let (sql, parameters) = if claims.0.is_empty() {
        (INSERT_MANY_SQL, 25)
    } else {
        (INSERT_MANY_WITH_CLAIMS_SQL, 28)
    };
    let statement = client.prepare_cached(sql).await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 28] = [
        &e.event_id,
        &e.stream_id,
        &e.stream_type,
        &e.stream_version,
        &e.event_type,
        &e.schema_version,
        &e.payload,
        &e.actor_id,
        &e.actor_role,
        &e.organisation_id,
        &e.correlation_id,
        &e.causation_id,
        &e.idempotency_key,
        &e.occurred_at,
        &e.recorded_at,
        &e.hash,
        &keys.stream_id,
        &keys.key,
        &keys.fingerprint,
        &keys.stream_version,
        &data_keys.subject_id,
        &data_keys.wrapped,
        &data_keys.master_key_id,
        &tags,
        &tagged,
        &claims.0,
        &claims.1,
        &claims.2,
    ];
    let rows = client.query(&statement, &params[..parameters]).await?;
    let mut written: HashMap<Uuid, Vec<AppendedEvent>> = HashMap::with_capacity(jobs.len());
    for row in rows {
        written.entry(row.get(1)).or_default().push(AppendedEvent {
            event_id: row.get(0),
            stream_version: row.get(2),
            position: row.get(3),
        });
    }
    Ok(written)
}

/// A writer task, counted in `writers` from before it is spawned until it stops.
///
/// One that stops with appends waiting (it panicked, or was dropped mid-batch) hands them to a
/// new writer; one that never ran (spawned on a runtime that has gone) and was the last leaves
/// none waiting for ever: their callers are answered as a race and go the usual way.
struct WriterGuard {
    store: Option<EventStore>,
    started: bool,
}

impl WriterGuard {
    fn new(store: EventStore) -> WriterGuard {
        WriterGuard {
            store: Some(store),
            started: false,
        }
    }

    /// Runs on the store's runtime, or, for a store made outside one, on the caller's.
    fn spawn(self) {
        let runtime = self
            .store
            .as_ref()
            .and_then(|store| store.runtime.clone())
            .or_else(|| tokio::runtime::Handle::try_current().ok());
        if let Some(runtime) = runtime {
            drop(runtime.spawn(async move {
                let mut guard = self;
                guard.started = true;
                guard.run().await;
            }));
        }
    }

    /// Takes everything waiting and writes it, until nothing waits.
    async fn run(&mut self) {
        let Some(store) = self.store.clone() else {
            return;
        };
        loop {
            let jobs = {
                let mut queue = store.new_streams.lock();
                let jobs = queue.next_batch();
                if jobs.is_empty() {
                    // Under the lock that a caller pushes under: a job pushed after this sees
                    // one writer fewer and starts its own.
                    queue.writers -= 1;
                    self.store = None;
                    return;
                }
                jobs
            };
            store.write_batch(jobs).await;
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let mut queue = store.new_streams.lock();
        queue.writers -= 1;
        if queue.waiting.is_empty() {
            return;
        }
        if self.started {
            queue.writers += 1;
            drop(queue);
            WriterGuard::new(store).spawn();
        } else if queue.writers == 0 {
            let abandoned: Vec<Job> = queue.waiting.drain(..).collect();
            drop(queue);
            drop(abandoned);
        }
    }
}

#[derive(Default)]
struct Columns<'a> {
    event_id: Vec<Uuid>,
    stream_id: Vec<Uuid>,
    stream_type: Vec<&'a str>,
    stream_version: Vec<i64>,
    event_type: Vec<&'a str>,
    schema_version: Vec<i32>,
    payload: Vec<&'a serde_json::Value>,
    actor_id: Vec<Uuid>,
    actor_role: Vec<&'a str>,
    organisation_id: Vec<Uuid>,
    correlation_id: Vec<Uuid>,
    causation_id: Vec<Option<Uuid>>,
    idempotency_key: Vec<Option<&'a str>>,
    occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    recorded_at: Vec<chrono::DateTime<chrono::Utc>>,
    hash: Vec<&'a [u8]>,
}

impl Columns<'_> {
    fn with_capacity(n: usize) -> Self {
        Columns {
            event_id: Vec::with_capacity(n),
            stream_id: Vec::with_capacity(n),
            stream_type: Vec::with_capacity(n),
            stream_version: Vec::with_capacity(n),
            event_type: Vec::with_capacity(n),
            schema_version: Vec::with_capacity(n),
            payload: Vec::with_capacity(n),
            actor_id: Vec::with_capacity(n),
            actor_role: Vec::with_capacity(n),
            organisation_id: Vec::with_capacity(n),
            correlation_id: Vec::with_capacity(n),
            causation_id: Vec::with_capacity(n),
            idempotency_key: Vec::with_capacity(n),
            occurred_at: Vec::with_capacity(n),
            recorded_at: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
        }
    }
}

#[derive(Default)]
struct KeyColumns<'a> {
    stream_id: Vec<Uuid>,
    key: Vec<&'a str>,
    fingerprint: Vec<&'a [u8]>,
    stream_version: Vec<i64>,
}

#[derive(Default)]
struct DataKeyColumns<'a> {
    subject_id: Vec<Uuid>,
    wrapped: Vec<&'a [u8]>,
    master_key_id: Vec<&'a str>,
}
