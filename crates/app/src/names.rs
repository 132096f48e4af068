//! The names on a list of people: a caseload, a team's caseload, the triage queue, tasks.
//!
//! A caseload's rows come from a read model, which holds no personal data (a projection could
//! not forget a name when the person is erased). The names come from the log: the person's
//! registration, any correction of it and any erasure, read for the page's people at once
//! (`EventStore::read_streams_of_types`, over a partial index of those three event types), and
//! opened with each person's data key. Showing a name is a read of the person's record: each
//! is written to the read audit (as `caseload`) before the page is answered.

use std::collections::{HashMap, HashSet};

use domain::{CaseEvent, DomainEvent, EventId, StaffId, TeamId};
use eventstore::{RecordedEvent, StoreError};
use uuid::Uuid;

use crate::access::Principal;
use crate::caseload::CaseloadPage;
use crate::records::{ReadContext, ReadPurpose, RecordView, write_reads};
use crate::{AppError, CaseService, LoadedCase, policy};

/// What a list shows for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersonName {
    /// Their name as registered, corrections applied.
    Known(String),
    /// Their personal data was erased.
    Erased,
}

/// The events a person's name, and who works their case, are folded from.
const NAME_EVENTS: &[&str] = &[
    "ClientRegistered",
    "EntryCorrected",
    "ClientErased",
    "LinkWorkerAssigned",
    "CaseTransferred",
];

/// A person as a list may name them: their record's organisation and who holds the case, as
/// the log has them (not as a read model that may lag a transfer), and their name.
struct Named {
    organisation: Uuid,
    holder: Option<(StaffId, TeamId)>,
    name: PersonName,
    /// Their NHS number as registered, corrections applied.
    number: Option<domain::NhsNumber>,
}

/// What one person's events give.
fn fold_name(events: &[&RecordedEvent]) -> Option<Named> {
    let mut registered: Option<(EventId, CaseEvent)> = None;
    let mut organisation = None;
    let mut holder = None;
    for event in events {
        let Ok(decoded) = CaseEvent::decode(
            &event.event_type,
            event.schema_version,
            event.payload.clone(),
        ) else {
            continue;
        };
        match &decoded {
            CaseEvent::ClientErased(_) => {
                return organisation.map(|organisation| Named {
                    organisation,
                    holder: None,
                    name: PersonName::Erased,
                    number: None,
                });
            }
            CaseEvent::LinkWorkerAssigned(assigned) => {
                holder = Some((assigned.link_worker_id, assigned.team_id));
            }
            CaseEvent::CaseTransferred(transferred) => {
                holder = Some((transferred.to_link_worker_id, transferred.team_id));
            }
            CaseEvent::ClientRegistered(_) => {
                organisation = Some(event.metadata.organisation_id);
                registered = Some((EventId(event.event_id), decoded));
            }
            CaseEvent::EntryCorrected(correction) => {
                if let Some((id, entry)) = &mut registered
                    && correction.corrects == *id
                    && let Ok(corrected) = domain::corrected_entry(entry, correction)
                {
                    *entry = corrected;
                }
            }
            _ => {}
        }
    }
    match (organisation, registered) {
        (Some(organisation), Some((_, CaseEvent::ClientRegistered(registered)))) => {
            let personal = &registered.personal;
            Some(Named {
                organisation,
                holder,
                name: PersonName::Known(format!(
                    "{} {}",
                    personal.given_name, personal.family_name
                )),
                number: personal.nhs_number.clone(),
            })
        }
        _ => None,
    }
}

/// The people of a list's page, in its order.
fn ids(page: &CaseloadPage) -> Vec<Uuid> {
    page.items.iter().map(|item| item.client_id).collect()
}

impl CaseService {
    /// The names of the people on `page`, a caseload or triage queue the caller was shown,
    /// for each person the caller works as the log has it ([`policy::may_name_on_list`]; a page
    /// the read model drew before a transfer names no one the caller no longer works); each name shown is
    /// written to the read audit first (view `caseload`, for direct care).
    ///
    /// # Errors
    /// Store failures.
    pub async fn names(
        &self,
        principal: &Principal,
        page: &CaseloadPage,
        read: &ReadContext,
    ) -> Result<HashMap<Uuid, PersonName>, AppError> {
        Ok(self.names_and_numbers(principal, &ids(page), read).await?.0)
    }

    /// The names of the people `client_ids` (the cases of a list of tasks), under the rules
    /// of [`CaseService::names`]: only those the caller works, each written to the read audit
    /// before it is answered.
    ///
    /// # Errors
    /// Store failures.
    pub async fn names_of(
        &self,
        principal: &Principal,
        client_ids: &[Uuid],
        read: &ReadContext,
    ) -> Result<HashMap<Uuid, PersonName>, AppError> {
        let mut ids = client_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Ok(self.names_and_numbers(principal, &ids, read).await?.0)
    }

    /// As [`CaseService::names`], with the people named whose NHS number is on another record
    /// of the organisation too (perhaps the same person, referred again where the referrer was
    /// not told the service knew them: `crate::intake`), for a team lead triaging referrals to
    /// see before deciding. One look-up for the page: each number's tag, counted in
    /// `stream_lookups`. A failure of that look-up is logged and flags no one.
    ///
    /// # Errors
    /// As [`CaseService::names`].
    pub async fn names_and_shared_numbers(
        &self,
        principal: &Principal,
        page: &CaseloadPage,
        read: &ReadContext,
    ) -> Result<(HashMap<Uuid, PersonName>, HashSet<Uuid>), AppError> {
        let (names, numbers) = self.names_and_numbers(principal, &ids(page), read).await?;
        if !policy::may_learn_known_person(principal) || numbers.is_empty() {
            return Ok((names, HashSet::new()));
        }
        let shared = async {
            let mut tagged = Vec::with_capacity(numbers.len());
            for (client_id, number) in &numbers {
                if let Some(tag) =
                    crate::matching::nhs_number_tag(self.store(), principal.organisation_id, number)
                        .await?
                {
                    tagged.push((*client_id, tag));
                }
            }
            let tags: Vec<[u8; 32]> = tagged.iter().map(|(_, tag)| *tag).collect();
            let shared = self.store().tags_on_more_than_one(&tags).await?;
            Ok::<_, StoreError>(
                tagged
                    .into_iter()
                    .filter(|(_, tag)| shared.contains(tag))
                    .map(|(client_id, _)| client_id)
                    .collect(),
            )
        };
        match shared.await {
            Ok(shared) => Ok((names, shared)),
            Err(error) => {
                tracing::warn!(%error, "the numbers shared with other records could not be read");
                Ok((names, HashSet::new()))
            }
        }
    }

    /// The names (see [`CaseService::names`]) and the NHS numbers of the people `ids` named.
    async fn names_and_numbers(
        &self,
        principal: &Principal,
        ids: &[Uuid],
        read: &ReadContext,
    ) -> Result<(HashMap<Uuid, PersonName>, Vec<(Uuid, domain::NhsNumber)>), AppError> {
        let events = match self.store().read_streams_of_types(ids, NAME_EVENTS).await {
            Ok(events) => events,
            // A person whose events cannot be opened or brought to their current shape leaves
            // the page without names (each "Person" and an id), not without the page.
            Err(e @ (StoreError::Protection(_) | StoreError::Upcast { .. })) => {
                tracing::warn!(error = %e, "names for a list could not be read; shown without them");
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        let mut by_person: HashMap<Uuid, Vec<&RecordedEvent>> = HashMap::new();
        for event in &events {
            by_person.entry(event.stream_id).or_default().push(event);
        }
        let mut names = HashMap::with_capacity(ids.len());
        let mut numbers = Vec::new();
        for client_id in ids {
            let Some(named) = by_person
                .get(client_id)
                .and_then(|events| fold_name(events))
            else {
                continue;
            };
            let mut case = LoadedCase {
                version: 1,
                organisation_id: Some(named.organisation),
                ..LoadedCase::default()
            };
            case.state.link_worker = named.holder;
            if policy::may_name_on_list(principal, &case).is_ok() {
                if let (PersonName::Known(_), Some(number)) = (&named.name, named.number) {
                    numbers.push((*client_id, number));
                }
                names.insert(*client_id, named.name);
            }
        }
        let shown: Vec<(Uuid, Uuid)> = ids
            .iter()
            .filter(|id| matches!(names.get(*id), Some(PersonName::Known(_))))
            .map(|id| (principal.organisation_id, *id))
            .collect();
        if !shown.is_empty() {
            let client = self.store().pool().get().await?;
            // A name on a list is read for direct care unless the reader said otherwise.
            let read = ReadContext::new(
                read.purpose.or(Some(ReadPurpose::DirectCare)),
                read.request_id,
            );
            write_reads(&**client, principal, &shown, RecordView::Caseload, &read).await?;
        }
        Ok((names, numbers))
    }
}
