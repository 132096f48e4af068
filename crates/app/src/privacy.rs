//! Personal data: which fields are sealed, erasure, and retention.
//!
//! The fields are the domain's [`domain::PERSONAL_FIELDS`]; the store seals them per client
//! (see `eventstore::Protection`). Erasure is a command ([`domain::CaseCommand::EraseClient`])
//! whose event is appended in the same statement that destroys the client's data key.
//! Retention finds the records that concluded longer ago than the personal data rules keep
//! them, from the log itself (not a read model that may lag).

use std::collections::BTreeMap;

use chrono::{DateTime, Months, Utc};
use domain::DomainEvent as _;
use domain::{CLIENT_STREAM, CaseCommand, CaseEvent, CaseStatus, ClientErased, ClientId, EventId};
use eventstore::{EventStore, MasterKey, Metadata, Protection};
use serde::Serialize;
use uuid::Uuid;

use crate::{CaseService, CommandError, CommandOptions};

/// The protection of every personal field of client events under `master`: the fields of
/// [`domain::PERSONAL_FIELDS`], and inside a correction's corrected fields those each
/// correction names ([`personal_paths`]).
pub fn protection(master: MasterKey) -> Protection {
    let (correction, corrected_fields) = domain::CORRECTED_FIELDS;
    Protection::new(
        master,
        domain::PERSONAL_FIELDS.iter().map(|(event_type, path)| {
            (CLIENT_STREAM, *event_type, *path, domain::erased_form(path))
        }),
    )
    .sealed_within(
        CLIENT_STREAM,
        correction,
        corrected_fields,
        domain::erased_form,
    )
}

/// The paths of `event` that are personal because of another entry of the record (in
/// `entries`, by id), beyond those its type always has: for a correction, its corrected fields
/// that are personal in the entry it corrects (every corrected field when that entry is not
/// known).
pub(crate) fn personal_paths(
    event: &CaseEvent,
    entries: &BTreeMap<EventId, CaseEvent>,
) -> Vec<String> {
    match event {
        CaseEvent::EntryCorrected(correction) => domain::corrected_personal_paths(
            entries
                .get(&correction.corrects)
                .map(|entry| entry.event_type()),
            &correction.corrected_fields,
        ),
        _ => Vec::new(),
    }
}

/// A record whose personal data is past its retention period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Expired {
    pub client_id: Uuid,
    pub organisation_id: Uuid,
    /// Closed, or idle for a referral declined or redirected with no case opened.
    pub status: CaseStatus,
    /// When it concluded: the closure, decline or redirection (when it happened).
    pub concluded_at: DateTime<Utc>,
}

/// The moment before which a record must have concluded to be past retention on `today`.
pub fn retention_cutoff(now: DateTime<Utc>, years: u32) -> DateTime<Utc> {
    now.checked_sub_months(Months::new(years.saturating_mul(12)))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Every client record, not yet erased, that concluded before `cutoff` and has stayed
/// concluded since: closed, or its last referral declined or redirected. In client id order.
///
/// # Errors
/// A store failure or an event that cannot be decoded.
pub async fn past_retention(
    store: &EventStore,
    cutoff: DateTime<Utc>,
) -> Result<Vec<Expired>, CommandError> {
    let client = store
        .pool()
        .get()
        .await
        .map_err(eventstore::StoreError::from)?;
    let candidates: Vec<Uuid> = client
        .query(
            "SELECT stream_id FROM events WHERE stream_type = $1 \
               AND event_type IN ('CaseClosed', 'ReferralDeclined', 'ReferralRedirected') \
               AND occurred_at < $2 \
             EXCEPT SELECT stream_id FROM events WHERE event_type = 'ClientErased' \
             ORDER BY 1",
            &[&CLIENT_STREAM, &cutoff],
        )
        .await
        .map_err(eventstore::StoreError::from)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    drop(client);
    let mut expired = Vec::new();
    for client_id in candidates {
        let recorded = store.read_stream(client_id, 1, None).await?;
        let mut state = domain::CaseState::default();
        let mut concluded_at = None;
        let mut organisation_id = None;
        for event in recorded {
            organisation_id.get_or_insert(event.metadata.organisation_id);
            let case_event =
                CaseEvent::decode(&event.event_type, event.schema_version, event.payload)?;
            let before = state.status;
            state = domain::evolve(
                state,
                EventId(event.event_id),
                &case_event,
                event.metadata.occurred_at,
            );
            if state.status != before {
                concluded_at = matches!(state.status, CaseStatus::Closed | CaseStatus::Idle)
                    .then_some(event.metadata.occurred_at);
            }
        }
        if let (Some(concluded_at), Some(organisation_id)) = (concluded_at, organisation_id)
            && concluded_at < cutoff
            && !state.erased
        {
            expired.push(Expired {
                client_id,
                organisation_id,
                status: state.status,
                concluded_at,
            });
        }
    }
    Ok(expired)
}

/// Who erases on the command line: the system, acting for the record's organisation.
pub const SYSTEM_ACTOR: Uuid = Uuid::nil();

/// Erases one client's personal data as the system (the `casebook erase` and `retention`
/// commands), for the organisation that holds the record.
///
/// # Errors
/// [`CommandError::Denied`] when the record is not that organisation's, or there is no such
/// client; a refusal when it is already erased.
pub async fn erase_as_system(
    cases: &CaseService,
    client_id: Uuid,
    organisation_id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let metadata = Metadata {
        actor_id: SYSTEM_ACTOR,
        actor_role: "system".to_owned(),
        organisation_id,
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: now,
    };
    cases
        .execute_authorised(
            ClientId(client_id),
            &CaseCommand::EraseClient(ClientErased {
                reason: reason.to_owned(),
            }),
            metadata,
            CommandOptions::default(),
            |a| match a.case.organisation_id {
                Some(holder) if holder == organisation_id => Ok(()),
                _ => Err(crate::Denied::NotFound),
            },
        )
        .await?;
    Ok(())
}
