//! Corrections, as if the facts had been recorded right the first time.
//!
//! A correction (`EntryCorrected`) names an earlier event of the same record and the fields of
//! its payload that were wrong. A read model that folds events one by one cannot undo what the
//! wrong value did (a referral counted under the wrong source, a contact on the wrong day), so a
//! client whose batch holds a correction is refolded from the start of their record, each event
//! with its corrections applied and the corrections left out: the same rows a clean build from
//! the corrected log would make. Corrections are rare; the refold reads one record.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{CaseEvent, DomainEvent as _};
use eventstore::{EventStore, RecordedEvent};
use serde_json::Value;
use uuid::Uuid;

use crate::ProjectionError;

/// One decoded event of a client's record, with what projections need of its envelope.
#[derive(Clone, Debug)]
pub struct Fact {
    pub event_id: Uuid,
    pub stream_version: i64,
    pub organisation_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub event: CaseEvent,
}

/// A client's events in a batch: either just the batch's, to fold onto the stored state, or
/// (`refold`) the whole record through the batch, corrections applied, to fold from nothing.
#[derive(Debug)]
pub struct ClientBatch {
    pub client_id: Uuid,
    pub refold: bool,
    pub facts: Vec<Fact>,
}

fn decode(event: &RecordedEvent) -> Result<CaseEvent, ProjectionError> {
    CaseEvent::decode(
        &event.event_type,
        event.schema_version,
        event.payload.clone(),
    )
    .map_err(|e| ProjectionError::Corrupt(e.to_string()))
}

fn fact(event: &RecordedEvent, decoded: CaseEvent) -> Fact {
    Fact {
        event_id: event.event_id,
        stream_version: event.stream_version,
        organisation_id: event.metadata.organisation_id,
        occurred_at: event.metadata.occurred_at,
        event: decoded,
    }
}

/// A record's events with every correction applied to the event it names (in the order the
/// corrections were made), and the corrections left out. A correction whose fields do not fit
/// its event leaves the event as recorded (the journey still shows both).
///
/// # Errors
/// An event that cannot be decoded.
pub fn with_corrections(events: &[RecordedEvent]) -> Result<Vec<Fact>, ProjectionError> {
    let mut payloads: HashMap<Uuid, Value> = HashMap::new();
    for event in events {
        if let CaseEvent::EntryCorrected(correction) = decode(event)? {
            let target = correction.corrects.0;
            let Some(original) = events.iter().find(|e| e.event_id == target) else {
                continue;
            };
            let payload = payloads
                .entry(target)
                .or_insert_with(|| original.payload.clone());
            domain::apply_corrected_fields(
                &original.event_type,
                payload,
                &correction.corrected_fields,
            );
        }
    }
    let mut facts = Vec::with_capacity(events.len());
    for event in events {
        let recorded = decode(event)?;
        if matches!(recorded, CaseEvent::EntryCorrected(_)) {
            continue;
        }
        let decoded = match payloads.remove(&event.event_id) {
            None => recorded,
            Some(payload) => CaseEvent::decode(&event.event_type, event.schema_version, payload)
                .unwrap_or_else(|_| {
                    // The decoding error may quote a corrected value: not logged.
                    tracing::warn!(event_id = %event.event_id, "a correction does not fit its event; counted as recorded");
                    recorded
                }),
        };
        facts.push(fact(event, decoded));
    }
    Ok(facts)
}

/// Where a refold reads a record from: the store, or a view of it (a report as it was known at
/// a moment sees only the events recorded by then).
#[async_trait::async_trait]
pub trait RecordSource: Send + Sync {
    /// A record's events up to and including `through_version`, personal fields erased.
    async fn record_through(
        &self,
        stream_id: Uuid,
        through_version: i64,
    ) -> Result<Vec<RecordedEvent>, ProjectionError>;
}

#[async_trait::async_trait]
impl RecordSource for EventStore {
    async fn record_through(
        &self,
        stream_id: Uuid,
        through_version: i64,
    ) -> Result<Vec<RecordedEvent>, ProjectionError> {
        Ok(self.read_stream_erased(stream_id, through_version).await?)
    }
}

/// The store as it was known: only the events `keep` keeps.
pub struct FilteredLog<'a> {
    pub store: &'a EventStore,
    pub keep: &'a (dyn Fn(&RecordedEvent) -> bool + Send + Sync),
}

#[async_trait::async_trait]
impl RecordSource for FilteredLog<'_> {
    async fn record_through(
        &self,
        stream_id: Uuid,
        through_version: i64,
    ) -> Result<Vec<RecordedEvent>, ProjectionError> {
        let mut events = self
            .store
            .read_stream_erased(stream_id, through_version)
            .await?;
        events.retain(|e| (self.keep)(e));
        Ok(events)
    }
}

/// A batch's client events by client (in the order each client first appears). With
/// `corrections`, a client with a correction in the batch is read again from the start of their
/// record through the batch, corrections applied, to be refolded.
///
/// # Errors
/// A store failure or an event that cannot be decoded.
pub async fn client_batches(
    events: &[RecordedEvent],
    log: &dyn RecordSource,
    corrections: bool,
) -> Result<Vec<ClientBatch>, ProjectionError> {
    let mut order: Vec<Uuid> = Vec::new();
    let mut by_client: HashMap<Uuid, Vec<&RecordedEvent>> = HashMap::new();
    for event in events
        .iter()
        .filter(|e| e.stream_type == domain::CLIENT_STREAM)
    {
        by_client
            .entry(event.stream_id)
            .or_insert_with(|| {
                order.push(event.stream_id);
                Vec::new()
            })
            .push(event);
    }
    let mut batches = Vec::with_capacity(order.len());
    for client_id in order {
        let mine = by_client.remove(&client_id).unwrap_or_default();
        let corrected = corrections && mine.iter().any(|e| e.event_type == "EntryCorrected");
        if corrected {
            let through = mine.iter().map(|e| e.stream_version).max().unwrap_or(0);
            let record = log.record_through(client_id, through).await?;
            batches.push(ClientBatch {
                client_id,
                refold: true,
                facts: with_corrections(&record)?,
            });
        } else {
            let facts = mine
                .into_iter()
                .map(|event| Ok(fact(event, decode(event)?)))
                .collect::<Result<Vec<_>, ProjectionError>>()?;
            batches.push(ClientBatch {
                client_id,
                refold: false,
                facts,
            });
        }
    }
    Ok(batches)
}
