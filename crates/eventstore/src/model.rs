use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// What the caller expects of the stream's current version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version (its last event's version).
    Exact(i64),
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => write!(f, "any version"),
            ExpectedVersion::NoStream => write!(f, "no stream yet"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// Who did it, for whom, why, and when it happened. Shared by every event of one append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The staff member (or system actor) who issued the command.
    pub actor_id: Uuid,
    /// The role they acted in.
    pub actor_role: String,
    /// The organisation (tenant) the record belongs to.
    pub organisation_id: Uuid,
    /// Groups everything caused by one request.
    pub correlation_id: Uuid,
    /// The event or command that caused this one, when known.
    pub causation_id: Option<Uuid>,
    /// When it happened, as the user says.
    pub occurred_at: DateTime<Utc>,
}

/// An event to append.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// A fresh id, unique across the log.
    pub event_id: Uuid,
    /// The stable type name.
    pub event_type: String,
    /// The version of the payload's shape.
    pub schema_version: i32,
    /// The event's data.
    pub payload: Value,
    /// Paths of this payload that hold personal data beyond those its type always has (see
    /// [`crate::Protection`]): a correction's corrected personal fields, personal because the
    /// entry it corrects has them there. Each must lie inside a part of the payload the
    /// protection opens wherever a field is sealed ([`crate::Protection::sealed_within`]).
    pub personal_paths: Vec<String>,
}

/// One atomic append to one stream.
#[derive(Clone, Debug)]
pub struct AppendRequest {
    /// The stream to append to.
    pub stream_id: Uuid,
    /// The stream's type (client, service, staff); fixed by the first append.
    pub stream_type: String,
    /// The version the caller expects the stream to be at.
    pub expected: ExpectedVersion,
    /// The events, in order; at least one.
    pub events: Vec<NewEvent>,
    /// Who, for whom, when.
    pub metadata: Metadata,
    /// A repeat of a key already used on this stream returns the first result.
    pub idempotency_key: Option<String>,
    /// What identifies "the same request" for the key; by default the events' types and payloads.
    pub fingerprint: Option<[u8; 32]>,
    /// The stream's lookup tags from this append on ([`crate::EventStore::lookup_tag`]),
    /// written in the append's statement: `Some` replaces the tags the stream carries, `None`
    /// leaves them. An erasure ([`crate::EventStore::append_and_shred`]) deletes them all.
    pub lookups: Option<Vec<[u8; 32]>>,
    /// The claims the append makes in its statement ([`Claim`]), all or none: if another
    /// append made one of them first, nothing is written and the append fails with
    /// [`crate::StoreError::ClaimTaken`] naming it.
    pub claims: Vec<Claim>,
}

/// A claim on a looked-up value's next generation, made by an append that acts on what it
/// found (or did not find) by the value: two appends that read the same generation cannot both
/// make the next one. The store knows nothing of what the claim is of (its id is the caller's,
/// made from a lookup tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The generation after the one a look-up read
    /// ([`crate::EventStore::tagged_and_claimed`]).
    At {
        /// What is claimed.
        id: Uuid,
        /// The generation claimed: one more than the generation read.
        generation: i64,
    },
    /// The generation after the claim's latest, read when the append is written (by the batch
    /// writer with its clock, in the statement it reads the clock with): for a caller that
    /// would act on finding nothing, and so looks nothing up first. Made only if no stream
    /// carries any of `unless_tagged` then; otherwise nothing is written and the append fails
    /// with [`crate::StoreError::ClaimTaken`], as one that raced for the claim does, and its
    /// caller looks the value up and decides on what it finds.
    Next {
        /// What is claimed.
        id: Uuid,
        /// Tags whose presence on any stream refuses the claim.
        unless_tagged: Vec<[u8; 32]>,
    },
    /// No claim at all, only its guard: the append is written only if no stream carries any
    /// of `unless_tagged` when it is (read as for [`Claim::Next`]); otherwise nothing is
    /// written and it fails with [`crate::StoreError::ClaimTaken`] naming `id`.
    Unless {
        /// What the refusal names.
        id: Uuid,
        /// Tags whose presence on any stream refuses the append.
        unless_tagged: Vec<[u8; 32]>,
    },
}

impl Claim {
    /// What is claimed (for a guard, what its refusal names).
    pub fn id(&self) -> Uuid {
        match self {
            Claim::At { id, .. } | Claim::Next { id, .. } | Claim::Unless { id, .. } => *id,
        }
    }
}

/// What [`crate::EventStore::tagged_and_claimed`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tagged {
    /// The streams carrying the tag asked about, in id order.
    pub streams: Vec<Uuid>,
    /// The streams carrying the second tag asked about (none if none was), in id order.
    pub also: Vec<Uuid>,
    /// The claim's latest generation (0: never claimed).
    pub generation: i64,
}

/// Where one appended event landed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendedEvent {
    /// The event's id.
    pub event_id: Uuid,
    /// Its version within the stream.
    pub stream_version: i64,
    /// Its global position (unique, increasing in insert order; not dense).
    pub position: i64,
}

/// What an append wrote (or, for a repeated idempotency key, what the first append wrote).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResult {
    /// The stream appended to.
    pub stream_id: Uuid,
    /// The stream's version after the append.
    pub stream_version: i64,
    /// The appended events, in order.
    pub events: Vec<AppendedEvent>,
    /// True when this result was replayed for a repeated idempotency key and nothing was written.
    #[serde(skip)]
    pub replayed: bool,
}

/// A place in the global read order: events are read in (generation, transaction, position)
/// order, and a checkpoint is the last such triple read.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct GlobalPosition {
    /// Bumped when the log is restored into another cluster.
    pub generation: i32,
    /// The appending transaction's id (xid8) in that generation.
    pub transaction_id: i64,
    /// The event's position.
    pub position: i64,
}

impl GlobalPosition {
    /// Before the first event.
    pub const START: GlobalPosition = GlobalPosition {
        generation: 0,
        transaction_id: 0,
        position: 0,
    };
}

/// An event as stored, brought to its current shape.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    /// Where it sits in the global read order.
    pub global: GlobalPosition,
    /// The event's id.
    pub event_id: Uuid,
    /// Its stream.
    pub stream_id: Uuid,
    /// Its stream's type.
    pub stream_type: String,
    /// Its version within the stream.
    pub stream_version: i64,
    /// The stable type name.
    pub event_type: String,
    /// The payload's shape version after upcasting.
    pub schema_version: i32,
    /// The payload, upcast to the current shape.
    pub payload: Value,
    /// Who, for whom, when it happened.
    pub metadata: Metadata,
    /// The idempotency key of the append that wrote it.
    pub idempotency_key: Option<String>,
    /// The database clock when it was written.
    pub recorded_at: DateTime<Utc>,
}
