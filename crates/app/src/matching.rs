//! Finding a known person by NHS number (issue #20): a FHIR referral whose Patient carries an
//! NHS number the organisation already holds for a client is that client's.
//!
//! The NHS number is personal data, sealed in the log, so it is looked up by its lookup tag
//! (`EventStore::lookup_tag`: a keyed hash of the organisation and the number, under a key the
//! master key wraps), which every append that records or corrects a registration writes in its
//! own statement (`lookups_after`) and the erasure's statement deletes. The tag of one
//! organisation's client is another organisation's nothing: the organisation is in the hash,
//! and every record found is checked again (its organisation, not erased, the number itself).

use std::collections::BTreeMap;

use domain::{CaseEvent, ClientId, EventId, NhsNumber};
use eventstore::{EventStore, StoreError};
use uuid::Uuid;

use crate::cases::{CaseService, CommandError, LoadedCase};

/// What an NHS number's tag is of: the number in this organisation.
fn purpose(organisation_id: Uuid) -> String {
    format!("nhs-number:{organisation_id}")
}

/// The record's NHS number after `events` (decided against a record whose entries, corrections
/// applied, are `entries`): `Some` when they register the person with a number or correct
/// their registration, `None` when they leave it as it was.
pub(crate) fn nhs_number_after(
    events: &[CaseEvent],
    entries: &BTreeMap<EventId, CaseEvent>,
) -> Option<Option<NhsNumber>> {
    let mut after = None;
    for event in events {
        match event {
            // A registration opens a stream: with no number it has no tag to replace.
            CaseEvent::ClientRegistered(registered) => {
                if let Some(number) = &registered.personal.nhs_number {
                    after = Some(Some(number.clone()));
                }
            }
            CaseEvent::EntryCorrected(correction) => {
                if let Some(original @ CaseEvent::ClientRegistered(_)) =
                    entries.get(&correction.corrects)
                    && let Ok(CaseEvent::ClientRegistered(corrected)) =
                        domain::corrected_entry(original, correction)
                {
                    after = Some(corrected.personal.nhs_number);
                }
            }
            _ => {}
        }
    }
    after
}

/// The lookup tags a client's stream of `organisation_id` carries after `events`, for the
/// append that records them: `None` when they leave the NHS number as it was.
///
/// # Errors
/// The lookup key cannot be read.
pub(crate) async fn lookups_after(
    store: &EventStore,
    organisation_id: Uuid,
    events: &[CaseEvent],
    entries: &BTreeMap<EventId, CaseEvent>,
) -> Result<Option<Vec<[u8; 32]>>, StoreError> {
    let Some(number) = nhs_number_after(events, entries) else {
        return Ok(None);
    };
    let mut tags = Vec::new();
    if let Some(number) = number
        && let Some(tag) = nhs_number_tag(store, organisation_id, &number).await?
    {
        tags.push(tag);
    }
    Ok(Some(tags))
}

/// The lookup tag of `number` in `organisation_id` (`None` when the store seals nothing).
///
/// # Errors
/// The lookup key cannot be read.
pub async fn nhs_number_tag(
    store: &EventStore,
    organisation_id: Uuid,
    number: &NhsNumber,
) -> Result<Option<[u8; 32]>, StoreError> {
    store
        .lookup_tag(&purpose(organisation_id), number.as_str())
        .await
}

/// The NHS number a loaded record holds now (corrections applied; none once erased).
pub fn nhs_number_of(loaded: &LoadedCase) -> Option<&NhsNumber> {
    loaded.entries.values().find_map(|entry| match entry {
        CaseEvent::ClientRegistered(registered) => registered.personal.nhs_number.as_ref(),
        _ => None,
    })
}

/// The one client of `organisation_id` whose record holds `number` now, not erased, loaded;
/// `None` when there is none, or more than one (a match is not guessed).
///
/// # Errors
/// A store failure.
pub(crate) async fn known_client(
    cases: &CaseService,
    organisation_id: Uuid,
    number: &NhsNumber,
) -> Result<Option<(ClientId, LoadedCase)>, CommandError> {
    let Some(tag) = nhs_number_tag(cases.store(), organisation_id, number).await? else {
        return Ok(None);
    };
    let mut found = Vec::new();
    for stream_id in cases.store().streams_tagged(&tag).await? {
        let loaded = match cases.load(ClientId(stream_id)).await {
            Ok(loaded) => loaded,
            // Not a client's record: nothing of ours.
            Err(CommandError::Denied(_)) => continue,
            Err(e) => return Err(e),
        };
        if loaded.exists()
            && loaded.organisation_id == Some(organisation_id)
            && !loaded.state.erased
            && nhs_number_of(&loaded) == Some(number)
        {
            found.push((ClientId(stream_id), loaded));
        }
    }
    if found.len() == 1 {
        Ok(found.pop())
    } else {
        if found.len() > 1 {
            tracing::warn!(
                records = found.len(),
                "an NHS number is held by more than one record of the organisation: not matched"
            );
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use domain::{ClientRegistered, EntryCorrected, PersonalDetails};
    use serde_json::json;

    use super::*;

    fn registered(number: Option<&str>) -> CaseEvent {
        let mut personal = PersonalDetails::named("Ada", "Lark");
        personal.nhs_number = number.map(|n| NhsNumber::parse(n).expect("valid"));
        CaseEvent::ClientRegistered(ClientRegistered {
            client_id: ClientId(Uuid::from_u128(1)),
            personal,
            area: "Frome".into(),
        })
    }

    #[test]
    fn a_registration_or_its_correction_gives_the_number_anything_else_leaves_it() {
        let none = BTreeMap::new();
        let number = |n: &str| NhsNumber::parse(n).expect("valid");
        assert_eq!(
            nhs_number_after(&[registered(Some("9434765919"))], &none),
            Some(Some(number("9434765919")))
        );
        assert_eq!(nhs_number_after(&[registered(None)], &none), None);
        let mut entries = BTreeMap::new();
        let registration = EventId(Uuid::from_u128(2));
        entries.insert(registration, registered(Some("9434765919")));
        let correct = |personal: serde_json::Value| {
            CaseEvent::EntryCorrected(EntryCorrected {
                corrects: registration,
                corrected_fields: json!({ "personal": personal })
                    .as_object()
                    .cloned()
                    .expect("an object"),
                reason: "typed wrongly".into(),
            })
        };
        let mut corrected = PersonalDetails::named("Ada", "Lark");
        corrected.nhs_number = Some(number("9990000018"));
        assert_eq!(
            nhs_number_after(
                &[correct(serde_json::to_value(&corrected).expect("json"))],
                &entries
            ),
            Some(Some(number("9990000018")))
        );
        corrected.nhs_number = None;
        assert_eq!(
            nhs_number_after(
                &[correct(serde_json::to_value(&corrected).expect("json"))],
                &entries
            ),
            Some(None),
            "a number corrected away is no longer found"
        );
        let erased = CaseEvent::ClientErased(domain::ClientErased {
            reason: "request 1".into(),
        });
        assert_eq!(nhs_number_after(&[erased], &entries), None);
    }
}
