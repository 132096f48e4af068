//! A client's journey for auditors, served from the log for exactness: every event in order with
//! who did it and when, corrections beside what they correct, and the record as it was at a
//! moment (by when things happened) or as it was known at a moment (by when they were recorded).

use chrono::{DateTime, Utc};
use domain::{CaseEvent, CaseState, CaseStatus, ClientId, DomainEvent, EventId, evolve};
use eventstore::{EventStore, RecordedEvent};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{CommandError, LoadedCase};

/// Which moment to see the record at.
#[derive(Clone, Copy, Debug, Default)]
pub struct JourneyView {
    /// Only what had happened by then (`occurred_at <= as_of`), as far as it is known now
    /// (or at `known_at`).
    pub as_of: Option<DateTime<Utc>>,
    /// Only what had been recorded by then (`recorded_at <= known_at`).
    pub known_at: Option<DateTime<Utc>>,
}

/// One event of the journey.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JourneyEntry {
    pub event_id: Uuid,
    pub stream_version: i64,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub actor_id: Uuid,
    pub actor_role: String,
    pub organisation_id: Uuid,
    /// The payload as recorded.
    pub payload: Value,
    /// Corrections of this entry, in order (their event ids).
    pub corrected_by: Vec<Uuid>,
    /// The payload with every correction applied, when there is one.
    pub corrected_payload: Option<Value>,
}

/// A client's journey as selected by a [`JourneyView`].
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Journey {
    pub client_id: Uuid,
    pub entries: Vec<JourneyEntry>,
    /// The case status the selected events add up to.
    pub status: CaseStatus,
    /// The link worker they add up to.
    pub link_worker_id: Option<Uuid>,
}

/// A client's stream as read once: every event decoded, for the policy (the record now) and
/// for any view of its journey.
#[derive(Clone, Debug, Default)]
pub(crate) struct History {
    pub(crate) events: Vec<(RecordedEvent, CaseEvent)>,
}

impl History {
    /// Reads and decodes a client's whole stream (another kind of stream reads as no record).
    /// Each event keeps its payload as stored (upcast and opened), beside the decoded event.
    pub(crate) async fn read(
        store: &EventStore,
        client_id: ClientId,
    ) -> Result<History, CommandError> {
        let events = crate::stream::load_keeping_payloads(
            store,
            client_id.0,
            Vec::new(),
            |events, event, decoded: CaseEvent| events.push((event, decoded)),
        )
        .await?;
        Ok(History { events })
    }

    /// The record now, as commands and the access policy see it.
    pub(crate) fn loaded(&self) -> LoadedCase {
        let mut loaded = LoadedCase::default();
        for (event, case_event) in &self.events {
            loaded.fold(event, case_event);
        }
        loaded
    }

    /// The journey as `view` selects it.
    pub(crate) fn journey(&self, client_id: ClientId, view: JourneyView) -> Journey {
        let mut entries: Vec<JourneyEntry> = Vec::new();
        let mut state = CaseState::default();
        for (event, case_event) in &self.events {
            if view
                .known_at
                .is_some_and(|known_at| event.recorded_at > known_at)
                || view
                    .as_of
                    .is_some_and(|as_of| event.metadata.occurred_at > as_of)
            {
                continue;
            }
            state = evolve(
                state,
                EventId(event.event_id),
                case_event,
                event.metadata.occurred_at,
            );
            if let CaseEvent::EntryCorrected(correction) = case_event
                && let Some(target) = entries
                    .iter_mut()
                    .find(|e| e.event_id == correction.corrects.0)
            {
                target.corrected_by.push(event.event_id);
                let mut corrected = target
                    .corrected_payload
                    .take()
                    .unwrap_or_else(|| target.payload.clone());
                domain::apply_corrected_fields(
                    &target.event_type,
                    &mut corrected,
                    &correction.corrected_fields,
                );
                target.corrected_payload = Some(corrected);
            }
            entries.push(JourneyEntry {
                event_id: event.event_id,
                stream_version: event.stream_version,
                event_type: event.event_type.clone(),
                occurred_at: event.metadata.occurred_at,
                recorded_at: event.recorded_at,
                actor_id: event.metadata.actor_id,
                actor_role: event.metadata.actor_role.clone(),
                organisation_id: event.metadata.organisation_id,
                payload: event.payload.clone(),
                corrected_by: Vec::new(),
                corrected_payload: None,
            });
        }
        Journey {
            client_id: client_id.0,
            entries,
            status: state.status,
            link_worker_id: state.link_worker.map(|(worker, _)| worker.0),
        }
    }

    /// Each event with every correction of it applied, decoded again (a correction goes
    /// through the event's own shape).
    pub(crate) fn corrected(&self) -> Vec<CaseEvent> {
        let journey = self.journey(ClientId(uuid::Uuid::nil()), JourneyView::default());
        let mut out = Vec::with_capacity(self.events.len());
        for ((event, case_event), entry) in self.events.iter().zip(&journey.entries) {
            out.push(match &entry.corrected_payload {
                None => case_event.clone(),
                // A correction whose fields do not fit the event it corrects (accepted before
                // corrections were checked) leaves the event as recorded: the journey still
                // shows it beside the original.
                Some(payload) => {
                    CaseEvent::decode(&event.event_type, event.schema_version, payload.clone())
                        .unwrap_or_else(|_| {
                            // The decoding error may quote a corrected value: not logged.
                            tracing::warn!(event_id = %event.event_id, event_type = %event.event_type, "a correction does not fit its event; the record shows the event as recorded");
                            case_event.clone()
                        })
                }
            });
        }
        out
    }
}
