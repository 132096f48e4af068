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

/// The actor role of every event a history import appends (`app::history`).
pub const IMPORT_ROLE: &str = "history_import";

/// The actor role of a GP practice's own system (`app::access::Role::PracticeSystem`).
pub const PRACTICE_SYSTEM_ROLE: &str = "practice_system";

/// Who appended an event, as far as projections tell them apart (by its actor role).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordedBy {
    /// A history import: a previous system's record, not something done here.
    Import,
    /// A GP practice's own system (a referral sent over FHIR, or over the API with the
    /// practice's credential).
    PracticeSystem,
    /// Anyone else: staff, provider staff, a referrer, the service itself.
    Other,
}

impl RecordedBy {
    /// Who an event of `actor_role` was appended by.
    pub fn of_role(actor_role: &str) -> RecordedBy {
        match actor_role {
            IMPORT_ROLE => RecordedBy::Import,
            PRACTICE_SYSTEM_ROLE => RecordedBy::PracticeSystem,
            _ => RecordedBy::Other,
        }
    }
}

/// One decoded event of a client's record, with what projections need of its envelope.
#[derive(Clone, Debug)]
pub struct Fact {
    pub event_id: Uuid,
    pub stream_version: i64,
    pub organisation_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// When the log took it (an import's or a back-entry's is long after it happened).
    pub recorded_at: DateTime<Utc>,
    /// Who appended it (a history import, a practice's system, anyone else).
    pub recorded_by: RecordedBy,
    pub event: CaseEvent,
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
        recorded_at: event.recorded_at,
        recorded_by: RecordedBy::of_role(&event.metadata.actor_role),
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

/// A batch's client events decoded once, by client (in the order each client first appears),
/// for every projection fed from the batch: the runner decodes a batch once, and a rebuild of
/// several read models together decodes each payload once for all of them. With `refolds`, a
/// client with a correction in the batch is also read again from the start of their record
/// through the batch, corrections applied, for the projections that refold.
#[derive(Debug, Default)]
pub struct Decoded {
    clients: Vec<DecodedClient>,
    refolds: bool,
}

#[derive(Debug)]
struct DecodedClient {
    client_id: Uuid,
    facts: Vec<Fact>,
    corrected: bool,
    refolded: Option<Vec<Fact>>,
}

impl Decoded {
    /// Decodes the client events of `events`, and (with `refolds`) reads again the record of
    /// each client with a correction among them.
    ///
    /// # Errors
    /// A store failure or an event that cannot be decoded.
    pub async fn decode(
        events: &[RecordedEvent],
        log: &dyn RecordSource,
        refolds: bool,
    ) -> Result<Decoded, ProjectionError> {
        let mut clients = Clients::default();
        for event in events
            .iter()
            .filter(|e| e.stream_type == domain::CLIENT_STREAM)
        {
            clients.push(event, decode(event)?);
        }
        Decoded::refold(clients.clients, log, refolds).await
    }

    /// As [`Decoded::decode`], for events read by [`EventStore::read_all_raw`] for client
    /// streams: each client event is decoded from its JSON text as stored, or has its payload
    /// moved into its decoded event (no copy). The events come back with every client event's
    /// payload null (a reader that hands the decoded batch on, and no raw client payload, to
    /// its projections).
    ///
    /// # Errors
    /// A store failure or an event that cannot be decoded.
    pub async fn decode_read(
        read: Vec<eventstore::RawEvent>,
        log: &dyn RecordSource,
        refolds: bool,
    ) -> Result<(Vec<RecordedEvent>, Decoded), ProjectionError> {
        let mut clients = Clients::default();
        let mut events = Vec::with_capacity(read.len());
        for eventstore::RawEvent { mut event, json } in read {
            if event.stream_type == domain::CLIENT_STREAM {
                let decoded = match json {
                    Some(json) => {
                        CaseEvent::decode_json(&event.event_type, event.schema_version, &json)
                    }
                    None => {
                        let payload = std::mem::take(&mut event.payload);
                        CaseEvent::decode(&event.event_type, event.schema_version, payload)
                    }
                }
                .map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
                clients.push(&event, decoded);
            }
            events.push(event);
        }
        let decoded = Decoded::refold(clients.clients, log, refolds).await?;
        Ok((events, decoded))
    }

    /// With `refolds`, reads again the record of each client with a correction in the batch.
    async fn refold(
        mut clients: Vec<DecodedClient>,
        log: &dyn RecordSource,
        refolds: bool,
    ) -> Result<Decoded, ProjectionError> {
        if refolds {
            for client in clients.iter_mut().filter(|c| c.corrected) {
                let through = client
                    .facts
                    .iter()
                    .map(|f| f.stream_version)
                    .max()
                    .unwrap_or(0);
                let record = log.record_through(client.client_id, through).await?;
                client.refolded = Some(with_corrections(&record)?);
            }
        }
        Ok(Decoded { clients, refolds })
    }

    /// The clients the batch touches, sorted.
    pub fn client_ids(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self.clients.iter().map(|c| c.client_id).collect();
        ids.sort_unstable();
        ids
    }

    /// The clients the batch touches whose record began before it (its first event is not in
    /// the batch), sorted: only they can have rows a projection stored from earlier batches.
    /// A rebuild from a log where each record is mostly within one batch reads back almost none.
    pub fn continuing_client_ids(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .clients
            .iter()
            .filter(|c| c.facts.iter().map(|f| f.stream_version).min() > Some(1))
            .map(|c| c.client_id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Whether the batch holds no client event.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Each client's events: just the batch's, to fold onto the stored state, or (with
    /// `corrections`, for a client with a correction in the batch) the whole record through
    /// the batch, corrections applied, to fold from nothing (`refold`).
    ///
    /// # Errors
    /// `corrections` asked of a batch decoded without its refolds.
    pub fn clients(&self, corrections: bool) -> Result<Vec<ClientFacts<'_>>, ProjectionError> {
        if corrections && !self.refolds && self.clients.iter().any(|c| c.corrected) {
            return Err(ProjectionError::Corrupt(
                "a batch with corrections was decoded without its refolds".to_owned(),
            ));
        }
        Ok(self
            .clients
            .iter()
            .map(|c| match (&c.refolded, corrections) {
                (Some(record), true) => ClientFacts {
                    client_id: c.client_id,
                    refold: true,
                    facts: record,
                },
                _ => ClientFacts {
                    client_id: c.client_id,
                    refold: false,
                    facts: &c.facts,
                },
            })
            .collect())
    }
}

/// A batch's client events by client, in the order each client first appears.
#[derive(Default)]
struct Clients {
    index: HashMap<Uuid, usize>,
    clients: Vec<DecodedClient>,
}

impl Clients {
    fn push(&mut self, event: &RecordedEvent, decoded: CaseEvent) {
        let clients = &mut self.clients;
        let at = *self.index.entry(event.stream_id).or_insert_with(|| {
            clients.push(DecodedClient {
                client_id: event.stream_id,
                facts: Vec::new(),
                corrected: false,
                refolded: None,
            });
            clients.len() - 1
        });
        let client = &mut clients[at];
        client.corrected |= event.event_type == "EntryCorrected";
        client.facts.push(fact(event, decoded));
    }
}

/// One client's events of a decoded batch: either just the batch's, to fold onto the stored
/// state, or (`refold`) the whole record through the batch, corrections applied, to fold from
/// nothing.
#[derive(Debug)]
pub struct ClientFacts<'a> {
    pub client_id: Uuid,
    pub refold: bool,
    pub facts: &'a [Fact],
}
