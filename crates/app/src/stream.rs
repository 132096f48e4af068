//! The one way a stream is loaded for deciding or reading: read it, check every event is of the
//! expected stream type, decode each once, and fold. Client records and directory services
//! both come through here.

use domain::{DecodeError, DomainEvent};
use eventstore::{EventStore, NewEvent, RecordedEvent, StoreError, StreamHead};
use uuid::Uuid;

/// Why a stream could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Corrupt(#[from] DecodeError),
    /// The id names a stream of another type (a service's id given as a client's).
    #[error("the id {0} belongs to another kind of record")]
    OtherKind(Uuid),
}

/// Reads stream `id` of `E`'s stream type and folds each event, decoded once, into `state`.
/// A stream with no events leaves `state` as it was. The folded events give their payload up
/// to the decoding (commands need only the decoded events).
///
/// # Errors
/// [`LoadError::OtherKind`] when the stream is of another type; a store failure or an event
/// that cannot be decoded.
pub(crate) async fn load<E: DomainEvent, S>(
    store: &EventStore,
    id: Uuid,
    state: S,
    fold: impl FnMut(&mut S, RecordedEvent, E),
) -> Result<S, LoadError> {
    read(store, id, false, state, fold).await
}

/// As [`load`], for a command: also the stream's head as read ([`StreamHead`]), for the
/// append to go after it without reading it again, and any result stored under
/// `idempotency_key`.
///
/// # Errors
/// As [`load`].
pub(crate) async fn load_for_command<E: DomainEvent, S>(
    store: &EventStore,
    id: Uuid,
    idempotency_key: Option<&str>,
    state: S,
    fold: impl FnMut(&mut S, RecordedEvent, E),
) -> Result<(S, StreamHead), LoadError> {
    let (events, head) = store.read_stream_for_append(id, idempotency_key).await?;
    Ok((fold_all(id, events, false, state, fold)?, head))
}

/// As [`load`], each event keeping its payload as stored (upcast and opened), for readers that
/// show it.
///
/// # Errors
/// As [`load`].
pub(crate) async fn load_keeping_payloads<E: DomainEvent, S>(
    store: &EventStore,
    id: Uuid,
    state: S,
    fold: impl FnMut(&mut S, RecordedEvent, E),
) -> Result<S, LoadError> {
    read(store, id, true, state, fold).await
}

async fn read<E: DomainEvent, S>(
    store: &EventStore,
    id: Uuid,
    keep_payloads: bool,
    state: S,
    fold: impl FnMut(&mut S, RecordedEvent, E),
) -> Result<S, LoadError> {
    let events = store.read_stream(id, 1, None).await?;
    fold_all(id, events, keep_payloads, state, fold)
}

/// Folds `events`, read from stream `id`, into `state`, each checked to be of `E`'s stream
/// type and decoded once (from a copy of its payload when `keep_payloads`).
fn fold_all<E: DomainEvent, S>(
    id: Uuid,
    events: Vec<RecordedEvent>,
    keep_payloads: bool,
    mut state: S,
    mut fold: impl FnMut(&mut S, RecordedEvent, E),
) -> Result<S, LoadError> {
    for mut event in events {
        if event.stream_type != E::STREAM {
            return Err(LoadError::OtherKind(id));
        }
        let payload = if keep_payloads {
            event.payload.clone()
        } else {
            std::mem::take(&mut event.payload)
        };
        let decoded = E::decode(&event.event_type, event.schema_version, payload)?;
        fold(&mut state, event, decoded);
    }
    Ok(state)
}

/// Decided events as the store takes them, each with a fresh id.
pub fn new_events<E: DomainEvent>(events: &[E]) -> Vec<NewEvent> {
    events
        .iter()
        .map(|event| NewEvent {
            event_id: Uuid::new_v4(),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload: event.to_payload(),
            personal_paths: Vec::new(),
        })
        .collect()
}
