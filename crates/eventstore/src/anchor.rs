//! Tamper evidence that holds against the database superuser: one log-wide chain over the
//! events in their global order, one over the read audit, and keyed checkpoints of both.
//!
//! The per-stream hash chain (`hash`) is plain SHA-256: anyone who can write the table can
//! recompute it after an edit, and it says nothing about a stream's last events or a whole
//! stream going. Here a sealer ([`seal`]) follows the log in its gapless global order
//! `(log_generation, transaction_id, position)` as a projector does and folds every event's
//! place, stream, version and stored hash into a running head ([`event_link`]); the read audit
//! (`record_reads`, in the same kind of order) gets its own head ([`read_link`]). Each
//! [`Checkpoint`] records both counts, where the last row of each sits, both heads and the
//! previous checkpoint's MAC, under an HMAC-SHA-256 with an [`AnchorKey`] that never reaches the
//! database. Checkpoints are rows of `log_checkpoints` and, written by the caller, lines of an
//! anchor file kept outside the database. [`verify_anchors`] recomputes both chains in one
//! ordered read each and holds them against every checkpoint row and every anchor given.
//!
//! Appends are not serialised: the sealer only reads, a moment behind, what every transaction
//! before it has finished writing. The encodings below are permanent.

use std::collections::BTreeMap;
use std::pin::pin;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::secret::{KeyKind, SecretKey};
use crate::{GlobalPosition, StoreError};

type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;

/// The head of a chain before its first row.
pub const GENESIS_HEAD: [u8; 32] = [0; 32];

/// The key checkpoints are signed with. It comes from configuration and is never stored in the
/// database; its [`SecretKey::id`] is, in each checkpoint it signed.
pub type AnchorKey = SecretKey<Anchor>;

/// The anchor key's kind.
pub enum Anchor {}

impl KeyKind for Anchor {
    const NAME: &'static str = "anchor key";
    const ID_LABEL: &'static [u8] = b"casebook-anchor-key-id";
}

impl AnchorKey {
    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(self.bytes())
            .expect("HMAC takes a key of any length")
    }
}

/// A keyed summary of the log and the read audit up to a point: one row of `log_checkpoints`,
/// and one line (JSON) of an anchor file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// 1, 2, 3, ... without gaps.
    pub seq: i64,
    /// How many events it seals: the first `events` of the global order.
    pub events: i64,
    /// The place of the last of them ([`GlobalPosition::START`] for none).
    pub last_event: GlobalPosition,
    /// The log-wide chain head after them.
    #[serde(with = "hex32")]
    pub event_head: [u8; 32],
    /// How many reads of the read audit it seals, in their global order.
    pub reads: i64,
    /// The place of the last of them (its `position` is the `read_id`).
    pub last_read: GlobalPosition,
    /// The read audit's chain head after them.
    #[serde(with = "hex32")]
    pub read_head: [u8; 32],
    /// The previous checkpoint's MAC (zeros for the first), so none can be left out unseen.
    #[serde(with = "hex32")]
    pub prev_mac: [u8; 32],
    /// When it was made (the database's clock).
    pub sealed_at: DateTime<Utc>,
    /// Which anchor key signed it.
    pub key_id: String,
    /// HMAC-SHA-256 under the anchor key over every field above.
    #[serde(with = "hex32")]
    pub mac: [u8; 32],
}

impl Checkpoint {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"casebook-checkpoint-v1");
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.events.to_be_bytes());
        put_place(&mut out, self.last_event);
        out.extend_from_slice(&self.event_head);
        out.extend_from_slice(&self.reads.to_be_bytes());
        put_place(&mut out, self.last_read);
        out.extend_from_slice(&self.read_head);
        out.extend_from_slice(&self.prev_mac);
        out.extend_from_slice(&self.sealed_at.timestamp_micros().to_be_bytes());
        out.extend_from_slice(&(self.key_id.len() as u64).to_be_bytes());
        out.extend_from_slice(self.key_id.as_bytes());
        out
    }

    /// The MAC this checkpoint's fields have under `key`.
    fn compute_mac(&self, key: &AnchorKey) -> [u8; 32] {
        let mut mac = key.mac();
        mac.update(&self.signed_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether its MAC is the one `key` makes over its fields (compared in constant time).
    pub fn verifies_under(&self, key: &AnchorKey) -> bool {
        let mut mac = key.mac();
        mac.update(&self.signed_bytes());
        self.key_id == key.id() && mac.verify_slice(&self.mac).is_ok()
    }

    /// One line of an anchor file (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a checkpoint serialises")
    }

    /// Parses one line of an anchor file.
    ///
    /// # Errors
    /// A sentence saying what is wrong with it.
    pub fn from_line(line: &str) -> Result<Checkpoint, String> {
        serde_json::from_str(line).map_err(|e| e.to_string())
    }

    fn genesis() -> Checkpoint {
        Checkpoint {
            seq: 0,
            events: 0,
            last_event: GlobalPosition::START,
            event_head: GENESIS_HEAD,
            reads: 0,
            last_read: GlobalPosition::START,
            read_head: GENESIS_HEAD,
            prev_mac: [0; 32],
            sealed_at: DateTime::UNIX_EPOCH,
            key_id: String::new(),
            mac: [0; 32],
        }
    }
}

fn put_place(out: &mut Vec<u8>, place: GlobalPosition) {
    out.extend_from_slice(&place.generation.to_be_bytes());
    out.extend_from_slice(&place.transaction_id.to_be_bytes());
    out.extend_from_slice(&place.position.to_be_bytes());
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("expected 32 bytes"))
    }
}

/// One event's link in the log-wide chain: its place in the global order, its stream and
/// version, and its stored per-stream hash (which covers its content).
pub fn event_link(
    prev: &[u8; 32],
    place: GlobalPosition,
    stream_id: Uuid,
    stream_version: i64,
    hash: &[u8],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"casebook-log-v1");
    h.update(prev);
    h.update(place.generation.to_be_bytes());
    h.update(place.transaction_id.to_be_bytes());
    h.update(place.position.to_be_bytes());
    h.update(stream_id.as_bytes());
    h.update(stream_version.to_be_bytes());
    h.update((hash.len() as u64).to_be_bytes());
    h.update(hash);
    h.finalize().into()
}

/// A row of the read audit, as its chain covers it.
struct ReadRow {
    place: GlobalPosition,
    organisation_id: Uuid,
    client_id: Uuid,
    staff_id: Uuid,
    role: String,
    view: String,
    purpose: Option<String>,
    purpose_code: Option<String>,
    request_id: Uuid,
    read_at: DateTime<Utc>,
}

/// One read's link in the read audit's chain: every column of the row.
fn read_link(prev: &[u8; 32], row: &ReadRow) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"casebook-read-v1");
    h.update(prev);
    h.update(row.place.generation.to_be_bytes());
    h.update(row.place.transaction_id.to_be_bytes());
    h.update(row.place.position.to_be_bytes());
    h.update(row.organisation_id.as_bytes());
    h.update(row.client_id.as_bytes());
    h.update(row.staff_id.as_bytes());
    for text in [Some(&row.role), Some(&row.view)]
        .into_iter()
        .chain([row.purpose.as_ref(), row.purpose_code.as_ref()])
    {
        match text {
            Some(text) => {
                h.update([1]);
                h.update((text.len() as u64).to_be_bytes());
                h.update(text.as_bytes());
            }
            None => h.update([0]),
        }
    }
    h.update(row.request_id.as_bytes());
    h.update(row.read_at.timestamp_micros().to_be_bytes());
    h.finalize().into()
}

const EVENT_SQL: &str = "SELECT log_generation, transaction_id::text::bigint, position, \
    stream_id, stream_version, hash FROM events";
const EVENT_ORDER: &str = "ORDER BY log_generation, transaction_id, position";
const READ_SQL: &str = "SELECT log_generation, transaction_id::text::bigint, read_id, \
    organisation_id, client_id, staff_id, role, view, purpose, purpose_code, request_id, read_at \
    FROM record_reads";
const READ_ORDER: &str = "ORDER BY log_generation, transaction_id, read_id";
/// Rows no transaction still running can land behind (as `read::VISIBLE`, for either table).
const SETTLED: &str = "(log_generation < (SELECT casebook_log_generation()) \
    OR transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot())))";
const AFTER: &str = "(log_generation, transaction_id, {id}) > ($1, $2::text::xid8, $3)";
const CHECKPOINT_COLUMNS: &str = "seq, events, last_generation, \
    last_transaction_id::text::bigint, last_position, event_head, reads, last_read_generation, \
    last_read_transaction_id::text::bigint, last_read_id, read_head, prev_mac, sealed_at, key_id, mac";

/// The place in the first three columns of a row.
fn place_of(row: &tokio_postgres::Row) -> GlobalPosition {
    GlobalPosition {
        generation: row.get(0),
        transaction_id: row.get(1),
        position: row.get(2),
    }
}

/// One of the two chains a checkpoint seals: the event log's, or the read audit's.
struct Chain {
    /// Its rows' columns, the column that places a row within its transaction, and the
    /// chain's order.
    sql: [&'static str; 3],
    /// What it is called in a problem found (`the event log differs ...`), what holds its rows
    /// and what they are (`the log holds only 9 events`).
    names: [&'static str; 3],
    /// The chain's head after one more row, and that row's place.
    link: fn(&[u8; 32], &tokio_postgres::Row) -> ([u8; 32], GlobalPosition),
}

const EVENT_CHAIN: Chain = Chain {
    sql: [EVENT_SQL, "position", EVENT_ORDER],
    names: ["event log", "the log", "events"],
    link: |head, row| {
        let place = place_of(row);
        let hash: Vec<u8> = row.get(5);
        (
            event_link(head, place, row.get(3), row.get(4), &hash),
            place,
        )
    },
};

const READ_CHAIN: Chain = Chain {
    sql: [READ_SQL, "read_id", READ_ORDER],
    names: ["read audit", "the read audit", "reads"],
    link: |head, row| {
        let read = read_row(row);
        (read_link(head, &read), read.place)
    },
};

impl Chain {
    /// Follows the chain from `head` in one ordered read: over the settled rows after `after`,
    /// or every row from the start when `None`. `each` sees the head after each row, and the
    /// row's place; the last head is returned.
    async fn fold(
        &self,
        client: &tokio_postgres::Client,
        after: Option<GlobalPosition>,
        mut head: [u8; 32],
        mut each: impl FnMut(&[u8; 32], GlobalPosition),
    ) -> Result<[u8; 32], StoreError> {
        let [select, id, order] = self.sql;
        let after = after.as_ref().map(place_params);
        let (sql, params): (String, Vec<&(dyn tokio_postgres::types::ToSql + Sync)>) = match &after
        {
            Some((generation, transaction, position)) => (
                format!(
                    "{select} WHERE {} AND {SETTLED} {order}",
                    AFTER.replace("{id}", id)
                ),
                vec![generation, transaction, position],
            ),
            None => (format!("{select} {order}"), Vec::new()),
        };
        let rows = client.query_raw(&sql, params).await?;
        let mut rows = pin!(rows);
        while let Some(row) = rows.try_next().await? {
            let (next, place) = (self.link)(&head, &row);
            head = next;
            each(&head, place);
        }
        Ok(head)
    }

    /// Recomputes the chain from its start and holds it against `targets`, adding to
    /// `problems`; how many rows it holds.
    async fn verify(
        &self,
        client: &tokio_postgres::Client,
        targets: &BTreeMap<i64, Vec<Expectation>>,
        problems: &mut Vec<String>,
    ) -> Result<u64, StoreError> {
        let [what, holder, rows] = self.names;
        let mut count = 0i64;
        let mut broken = false;
        self.fold(client, None, GENESIS_HEAD, |head, last| {
            count += 1;
            let fold = Fold {
                count,
                head,
                last,
                what,
            };
            check(fold, targets, &mut broken, problems);
        })
        .await?;
        if !broken
            && let Some((&sealed, expectations)) = targets.last_key_value()
            && sealed > count
        {
            problems.push(format!(
                "{} sealed {sealed} {rows}, but {holder} holds only {count}: {rows} were deleted",
                expectations[0].source
            ));
        }
        Ok(count as u64)
    }
}

fn place_params(place: &GlobalPosition) -> (i32, String, i64) {
    (
        place.generation,
        place.transaction_id.to_string(),
        place.position,
    )
}

fn bytes32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Checkpoint(format!("{what} is not 32 bytes")))
}

fn checkpoint_from_row(row: &tokio_postgres::Row) -> Result<Checkpoint, StoreError> {
    Ok(Checkpoint {
        seq: row.get(0),
        events: row.get(1),
        last_event: GlobalPosition {
            generation: row.get(2),
            transaction_id: row.get(3),
            position: row.get(4),
        },
        event_head: bytes32(row.get(5), "an event head")?,
        reads: row.get(6),
        last_read: GlobalPosition {
            generation: row.get(7),
            transaction_id: row.get(8),
            position: row.get(9),
        },
        read_head: bytes32(row.get(10), "a read head")?,
        prev_mac: bytes32(row.get(11), "a previous MAC")?,
        sealed_at: row.get(12),
        key_id: row.get(13),
        mac: bytes32(row.get(14), "a MAC")?,
    })
}

/// The checkpoints the database holds, in `seq` order.
///
/// # Errors
/// A database failure or a malformed row.
pub async fn checkpoints(client: &tokio_postgres::Client) -> Result<Vec<Checkpoint>, StoreError> {
    let rows = client
        .query(
            &format!("SELECT {CHECKPOINT_COLUMNS} FROM log_checkpoints ORDER BY seq"),
            &[],
        )
        .await?;
    rows.iter().map(checkpoint_from_row).collect()
}

/// What [`seal`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sealed {
    /// A new checkpoint, written to `log_checkpoints`.
    New(Checkpoint),
    /// Nothing settled was new since the last checkpoint, which is returned (`None`: none yet).
    Unchanged(Option<Checkpoint>),
}

/// Extends both chains from the last checkpoint over every settled event and read since, and
/// writes the next checkpoint when there was anything new. The last checkpoint's MAC is checked
/// first: a sealer never builds on a checkpoint it did not sign.
///
/// Two sealers may race; the loser's insert meets the winner's `seq` and it returns the
/// winner's checkpoint as [`Sealed::Unchanged`].
///
/// # Errors
/// [`StoreError::Checkpoint`] when the last checkpoint does not verify under `key`; a database
/// failure.
#[tracing::instrument(skip_all)]
pub async fn seal(client: &tokio_postgres::Client, key: &AnchorKey) -> Result<Sealed, StoreError> {
    let last = client
        .query_opt(
            &format!("SELECT {CHECKPOINT_COLUMNS} FROM log_checkpoints ORDER BY seq DESC LIMIT 1"),
            &[],
        )
        .await?
        .map(|row| checkpoint_from_row(&row))
        .transpose()?;
    if let Some(last) = &last
        && !last.verifies_under(key)
    {
        return Err(StoreError::Checkpoint(format!(
            "the last checkpoint ({}, signed by key {}) does not verify under anchor key {}: \
             it was rewritten, or another key is configured",
            last.seq,
            last.key_id,
            key.id()
        )));
    }
    let base = last.clone().unwrap_or_else(Checkpoint::genesis);
    let mut next = base.clone();

    next.event_head = EVENT_CHAIN
        .fold(
            client,
            Some(base.last_event),
            base.event_head,
            |_, place| {
                next.last_event = place;
                next.events += 1;
            },
        )
        .await?;
    next.read_head = READ_CHAIN
        .fold(client, Some(base.last_read), base.read_head, |_, place| {
            next.last_read = place;
            next.reads += 1;
        })
        .await?;

    if next.events == base.events && next.reads == base.reads {
        return Ok(Sealed::Unchanged(last));
    }
    let sealed_at: DateTime<Utc> = client
        .query_one("SELECT date_trunc('microseconds', now())", &[])
        .await?
        .get(0);
    next.seq = base.seq + 1;
    next.prev_mac = base.mac;
    next.sealed_at = sealed_at;
    next.key_id = key.id().to_owned();
    next.mac = next.compute_mac(key);
    let inserted = client
        .execute(
            "INSERT INTO log_checkpoints (seq, events, last_generation, last_transaction_id, \
             last_position, event_head, reads, last_read_generation, last_read_transaction_id, \
             last_read_id, read_head, prev_mac, sealed_at, key_id, mac) \
             VALUES ($1, $2, $3, $4::text::xid8, $5, $6, $7, $8, $9::text::xid8, $10, $11, $12, \
             $13, $14, $15) ON CONFLICT (seq) DO NOTHING",
            &[
                &next.seq,
                &next.events,
                &next.last_event.generation,
                &next.last_event.transaction_id.to_string(),
                &next.last_event.position,
                &next.event_head.as_slice(),
                &next.reads,
                &next.last_read.generation,
                &next.last_read.transaction_id.to_string(),
                &next.last_read.position,
                &next.read_head.as_slice(),
                &next.prev_mac.as_slice(),
                &next.sealed_at,
                &next.key_id,
                &next.mac.as_slice(),
            ],
        )
        .await?;
    if inserted == 0 {
        let winner = client
            .query_opt(
                &format!("SELECT {CHECKPOINT_COLUMNS} FROM log_checkpoints WHERE seq = $1"),
                &[&next.seq],
            )
            .await?
            .map(|row| checkpoint_from_row(&row))
            .transpose()?;
        return Ok(Sealed::Unchanged(winner));
    }
    tracing::info!(
        seq = next.seq,
        events = next.events,
        reads = next.reads,
        "sealed a checkpoint"
    );
    Ok(Sealed::New(next))
}

/// Settled events not yet sealed by the last checkpoint (what the sealer is behind), counted up
/// to `at_most`: the sealer asks only whether enough wait, and the count stops there.
///
/// # Errors
/// A database failure.
pub async fn unsealed_events(
    client: &tokio_postgres::Client,
    at_most: i64,
) -> Result<i64, StoreError> {
    let last = client
        .query_opt(
            "SELECT last_generation, last_transaction_id::text::bigint, last_position \
             FROM log_checkpoints ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?
        .map(|row| place_of(&row))
        .unwrap_or(GlobalPosition::START);
    let (generation, transaction, position) = place_params(&last);
    let row = client
        .query_one(
            &format!(
                "SELECT count(*) FROM (SELECT 1 FROM events WHERE {} AND {SETTLED} LIMIT $4) AS waiting",
                AFTER.replace("{id}", "position")
            ),
            &[&generation, &transaction, &position, &at_most],
        )
        .await?;
    Ok(row.get(0))
}

fn read_row(row: &tokio_postgres::Row) -> ReadRow {
    ReadRow {
        place: place_of(row),
        organisation_id: row.get(3),
        client_id: row.get(4),
        staff_id: row.get(5),
        role: row.get(6),
        view: row.get(7),
        purpose: row.get(8),
        purpose_code: row.get(9),
        request_id: row.get(10),
        read_at: row.get(11),
    }
}

/// What [`verify_anchors`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnchorReport {
    /// Events in the log.
    pub events: u64,
    /// Reads in the read audit.
    pub reads: u64,
    /// Checkpoint rows in the database.
    pub checkpoints: u64,
    /// Anchors given (lines of anchor files).
    pub anchors: u64,
    /// Events the latest checkpoint or anchor that verified seals (what is protected by more
    /// than the per-stream chain).
    pub sealed_events: u64,
    /// Everything that does not hold, one sentence each; empty when all is well.
    pub problems: Vec<String>,
}

impl AnchorReport {
    /// Whether nothing was found wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Where a recomputation of a chain has got to.
struct Fold<'a> {
    count: i64,
    head: &'a [u8; 32],
    last: GlobalPosition,
    what: &'a str,
}

/// Holds the recomputed chain against every expectation at its count; reports the first that
/// does not hold (every later one would not either).
fn check(
    fold: Fold<'_>,
    targets: &BTreeMap<i64, Vec<Expectation>>,
    broken: &mut bool,
    problems: &mut Vec<String>,
) {
    if *broken {
        return;
    }
    for expectation in targets.get(&fold.count).into_iter().flatten() {
        if expectation.head != *fold.head || expectation.last != fold.last {
            *broken = true;
            problems.push(format!(
                "the {} differs from {} at its {} sealed rows: rows before it were changed, \
                 deleted, inserted, renumbered or reordered",
                fold.what, expectation.source, fold.count
            ));
            return;
        }
    }
}

/// What a checkpoint says the chain is at one count.
struct Expectation {
    source: String,
    head: [u8; 32],
    last: GlobalPosition,
}

/// Checks every checkpoint row of the database (MAC under `key`, `seq` without gaps, each
/// naming its predecessor's MAC) and every anchor given (MAC, and that the database still holds
/// the same checkpoint), then recomputes the log-wide chain in one ordered read of the log and
/// the read audit's chain in one of the audit, and holds the heads against every checkpoint and
/// anchor at its count. Reads as the owner; sees every committed row.
///
/// # Errors
/// A database failure.
#[tracing::instrument(skip_all)]
pub async fn verify_anchors(
    client: &tokio_postgres::Client,
    key: &AnchorKey,
    anchors: &[Checkpoint],
) -> Result<AnchorReport, StoreError> {
    let mut report = AnchorReport {
        anchors: anchors.len() as u64,
        ..AnchorReport::default()
    };
    let stored = checkpoints(client).await?;
    report.checkpoints = stored.len() as u64;
    let mut event_targets: BTreeMap<i64, Vec<Expectation>> = BTreeMap::new();
    let mut read_targets: BTreeMap<i64, Vec<Expectation>> = BTreeMap::new();
    let mut add = |checkpoint: &Checkpoint, source: String| {
        event_targets
            .entry(checkpoint.events)
            .or_default()
            .push(Expectation {
                source: source.clone(),
                head: checkpoint.event_head,
                last: checkpoint.last_event,
            });
        read_targets
            .entry(checkpoint.reads)
            .or_default()
            .push(Expectation {
                source,
                head: checkpoint.read_head,
                last: checkpoint.last_read,
            });
    };

    let mut prev_mac = [0u8; 32];
    for (i, checkpoint) in stored.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        if checkpoint.seq != expected_seq {
            report.problems.push(format!(
                "the database's checkpoints skip from {} to {}: checkpoint rows were deleted",
                expected_seq - 1,
                checkpoint.seq
            ));
        } else if checkpoint.prev_mac != prev_mac {
            report.problems.push(format!(
                "the database's checkpoint {} does not follow checkpoint {}: checkpoint rows were \
                 replaced",
                checkpoint.seq,
                checkpoint.seq - 1
            ));
        }
        prev_mac = checkpoint.mac;
        if checkpoint.key_id != key.id() {
            report.problems.push(format!(
                "the database's checkpoint {} was signed by anchor key {}, not the configured key \
                 {}: it cannot be checked",
                checkpoint.seq,
                checkpoint.key_id,
                key.id()
            ));
        } else if !checkpoint.verifies_under(key) {
            report.problems.push(format!(
                "the database's checkpoint {} does not verify under the anchor key: it was \
                 rewritten",
                checkpoint.seq
            ));
        } else {
            report.sealed_events = report.sealed_events.max(checkpoint.events as u64);
            add(
                checkpoint,
                format!("the database's checkpoint {}", checkpoint.seq),
            );
        }
    }
    for (i, anchor) in anchors.iter().enumerate() {
        let line = i + 1;
        if !anchor.verifies_under(key) {
            report.problems.push(format!(
                "anchor {line} (checkpoint {}) does not verify under the anchor key {}: the \
                 anchor file was edited, or it was signed by another key ({})",
                anchor.seq,
                key.id(),
                anchor.key_id
            ));
            continue;
        }
        match stored.iter().find(|c| c.seq == anchor.seq) {
            Some(row) if row == anchor => {}
            Some(_) => report.problems.push(format!(
                "the database's checkpoint {} differs from anchor {line}: checkpoint rows were \
                 rewritten",
                anchor.seq
            )),
            None => report.problems.push(format!(
                "the database holds no checkpoint {} (anchor {line}): checkpoint rows were deleted",
                anchor.seq
            )),
        }
        report.sealed_events = report.sealed_events.max(anchor.events as u64);
        add(anchor, format!("anchor {line} (checkpoint {})", anchor.seq));
    }

    report.events = EVENT_CHAIN
        .verify(client, &event_targets, &mut report.problems)
        .await?;
    report.reads = READ_CHAIN
        .verify(client, &read_targets, &mut report.problems)
        .await?;
    Ok(report)
}
