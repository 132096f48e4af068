use uuid::Uuid;

use crate::ExpectedVersion;

/// Why an append or a read did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the version the caller expected; nothing was written.
    #[error("stream {stream_id} is at version {actual}, but the append expected {expected}")]
    Conflict {
        stream_id: Uuid,
        expected: ExpectedVersion,
        actual: i64,
    },
    /// The idempotency key was already used on this stream for a different request.
    #[error(
        "idempotency key {key:?} was already used on stream {stream_id} for a different request"
    )]
    IdempotencyMismatch { stream_id: Uuid, key: String },
    /// An event with this id is already in the log.
    #[error("an event with id {0} is already in the log")]
    DuplicateEventId(Uuid),
    /// The stream exists with another type.
    #[error("stream {stream_id} is a {existing} stream, not a {requested} stream")]
    StreamTypeMismatch {
        stream_id: Uuid,
        existing: String,
        requested: String,
    },
    /// An append must carry at least one event.
    #[error("an append needs at least one event")]
    EmptyAppend,
    /// The database refused the payload (for example a NUL character in a string).
    #[error("the event payload cannot be stored: {0}")]
    InvalidPayload(String),
    /// A stored event could not be brought to its current shape.
    #[error("cannot upcast {event_type} v{schema_version}: {reason}")]
    Upcast {
        event_type: String,
        schema_version: i32,
        reason: String,
    },
    /// The stream's data key was destroyed (the person's data was erased): nothing personal can
    /// be written to it again.
    #[error("the personal data of {0} was erased: nothing personal can be recorded for them")]
    SubjectErased(Uuid),
    /// Personal data could not be sealed or its key unwrapped (a wrong master key, say).
    #[error("personal data protection failed: {0}")]
    Protection(String),
    /// A checkpoint of the log does not verify under the anchor key (see `anchor`).
    #[error("{0}")]
    Checkpoint(String),
    /// Another append made the claim this one made ([`crate::Claim`]) first: nothing was
    /// written; what was decided on what the claim stands for is to be decided again.
    #[error("claim {0} was made by another append first")]
    ClaimTaken(Uuid),
    /// The database could not be reached.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[from] deadpool_postgres::PoolError),
    /// Any other database failure.
    #[error("database error: {}", describe(.0))]
    Unexpected(#[source] tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Unexpected(e)
    }
}

/// A database error with the server's message, when there is one ("db error" says nothing).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}
