//! Finding a known person by NHS number (issue #20): a FHIR referral whose Patient carries an
//! NHS number the organisation already holds for a client is that client's, and so is a
//! referral of someone new over the API (`crate::intake`).
//!
//! The NHS number is personal data, sealed in the log, so it is looked up by its lookup tag
//! (`EventStore::lookup_tag`: a keyed hash of the organisation and the number, under a key the
//! master key wraps), which every append that records or corrects a registration writes in its
//! own statement (`lookups_after`) and the erasure's statement deletes. The tag of one
//! organisation's client is another organisation's nothing: the organisation is in the hash,
//! and every record found is checked again (its organisation, not erased, the number itself).
//!
//! Two referrals of one new number racing make one record without a lock: a record made for a
//! number no record holds claims the number in its append ([`Found`], `lookup_claims`).
//!
//! What the claims do not cover (docs/personal-data.md): a correction that gives a record a
//! number (no claim is made) racing a referral of that number, and an erasure of the number's
//! last claimant (its claims are deleted with it, so the generation goes back) between another
//! referral's look-up and its append: either can leave two records holding the number, which
//! are then matched by neither until staff correct one.

use std::collections::BTreeMap;

use domain::{CaseEvent, ClientId, EventId, NhsNumber, ReferralId};
use eventstore::{Claim, EventStore, StoreError};
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

/// The lookup tags a client's stream of `organisation_id` carries after `events`, decided
/// against `loaded` (the stream `stream_id` as the command loaded it), for the append that
/// records them: `None` when they leave every tag as it was.
///
/// The append replaces the stream's tags with those given, so they are all given: the tags the
/// stream carries now (read here, after the load: a writer that changed them since also moved
/// the version, and the append is then a conflict), the NHS number's replaced when `events`
/// register the person or correct their registration, and `referred_as` added (a referral of
/// someone new that went to this record, [`referred_as_tag`] and [`chosen_id_tag`]).
///
/// # Errors
/// The lookup key or the stream's tags cannot be read.
pub(crate) async fn lookups_after(
    store: &EventStore,
    organisation_id: Uuid,
    (stream_id, loaded): (Uuid, &LoadedCase),
    events: &[CaseEvent],
    referred_as: &[[u8; 32]],
) -> Result<Option<Vec<[u8; 32]>>, StoreError> {
    let number = nhs_number_after(events, &loaded.entries);
    if number.is_none() && referred_as.is_empty() {
        return Ok(None);
    }
    let mut tags = if loaded.exists() {
        stream_tags(store, stream_id).await?
    } else {
        Vec::new()
    };
    if let Some(number) = number {
        if let Some(before) = nhs_number_of(loaded)
            && let Some(tag) = nhs_number_tag(store, organisation_id, before).await?
        {
            tags.retain(|t| *t != tag);
        }
        if let Some(number) = number
            && let Some(tag) = nhs_number_tag(store, organisation_id, &number).await?
            && !tags.contains(&tag)
        {
            tags.push(tag);
        }
    }
    for tag in referred_as {
        if !tags.contains(tag) {
            tags.push(*tag);
        }
    }
    Ok(Some(tags))
}

/// The lookup tags the stream carries now.
async fn stream_tags(store: &EventStore, stream_id: Uuid) -> Result<Vec<[u8; 32]>, StoreError> {
    let client = store.pool().get().await?;
    let statement = client
        .prepare_cached("SELECT tag FROM stream_lookups WHERE stream_id = $1")
        .await?;
    let rows = client.query(&statement, &[&stream_id]).await?;
    Ok(rows
        .iter()
        .filter_map(|row| <[u8; 32]>::try_from(row.get::<_, &[u8]>(0)).ok())
        .collect())
}

/// The tag a record carries for each referral of someone new that went to it because the
/// organisation already held the person (`cases::refer`): the client id the referrer chose
/// and the referral's id, in the organisation. It lets the referrer follow the referral by the
/// id they chose, and a retry of it find where it went. `None` when the store seals nothing.
///
/// # Errors
/// The lookup key cannot be read.
pub async fn referred_as_tag(
    store: &EventStore,
    organisation_id: Uuid,
    chosen: ClientId,
    referral_id: ReferralId,
) -> Result<Option<[u8; 32]>, StoreError> {
    store
        .lookup_tag(
            &format!("referred-as:{organisation_id}"),
            &format!("{}:{}", chosen.0, referral_id.0),
        )
        .await
}

/// The tag a record carries for each client id chosen for someone new whose referral went to
/// it because the organisation already held the person (`cases::refer`): the id chosen then
/// stands for that record, so that a later referral naming it is answered as one naming a
/// record that exists, as it would have been had the service not known the person (the id
/// would hold their new record), and never makes a record there. `None` when the store seals
/// nothing.
///
/// # Errors
/// The lookup key cannot be read.
pub async fn chosen_id_tag(
    store: &EventStore,
    organisation_id: Uuid,
    chosen: ClientId,
) -> Result<Option<[u8; 32]>, StoreError> {
    store
        .lookup_tag(
            &format!("chosen-id:{organisation_id}"),
            &chosen.0.to_string(),
        )
        .await
}

/// The claim on an id chosen for someone new (by its [`chosen_id_tag`]), made by the append
/// that makes a record at the id and by the append of a referral under the id that goes to a
/// known person's record instead (with the tag): its first generation only, so that of two
/// such appends at the same moment one only is written, the other refused with
/// `StoreError::ClaimTaken` and decided again. An erasure of the record holding it frees it,
/// with its tags.
pub(crate) fn chosen_id_claim(chosen_tag: &[u8; 32]) -> Claim {
    Claim::At {
        id: number_claim(chosen_tag),
        generation: 1,
    }
}

/// The guard of a referral of someone new under an id chosen: written only if no record
/// carries the id's [`chosen_id_tag`] when its append is (`eventstore::Claim::Unless`, read by
/// the batch writer with its clock); else nothing is written, and the id names that record.
pub(crate) fn unused_id_guard(chosen_tag: [u8; 32]) -> Claim {
    Claim::Unless {
        id: number_claim(&chosen_tag),
        unless_tagged: vec![chosen_tag],
    }
}

/// The record of `organisation_id` that an id chosen stands for (its [`chosen_id_tag`]), and
/// its id, loaded: `None` when there is none (not erased, of the organisation).
///
/// # Errors
/// A store failure.
pub(crate) async fn standing_for(
    cases: &CaseService,
    organisation_id: Uuid,
    chosen_tag: &[u8; 32],
) -> Result<Option<(ClientId, LoadedCase)>, CommandError> {
    for stream_id in cases.store().streams_tagged(chosen_tag).await? {
        let loaded = match cases.load(ClientId(stream_id)).await {
            Ok(loaded) => loaded,
            Err(CommandError::Denied(_)) => continue,
            Err(e) => return Err(e),
        };
        if loaded.organisation_id == Some(organisation_id) && !loaded.state.erased {
            return Ok(Some((ClientId(stream_id), loaded)));
        }
    }
    Ok(None)
}

/// The record of `organisation_id` a referral `referral_id` that its referrer sent for someone
/// new under `chosen` went to, loaded: `None` when there is none (the referral is on `chosen`
/// itself, or nowhere).
///
/// # Errors
/// A store failure.
pub(crate) async fn referred_as(
    cases: &CaseService,
    organisation_id: Uuid,
    chosen: ClientId,
    referral_id: ReferralId,
) -> Result<Option<(ClientId, LoadedCase)>, CommandError> {
    let Some(tag) = referred_as_tag(cases.store(), organisation_id, chosen, referral_id).await?
    else {
        return Ok(None);
    };
    let streams = cases.store().streams_tagged(&tag).await?;
    referred_as_among(cases, organisation_id, referral_id, &streams).await
}

/// [`referred_as`] among `streams`, those found carrying the tag.
///
/// # Errors
/// A store failure.
pub(crate) async fn referred_as_among(
    cases: &CaseService,
    organisation_id: Uuid,
    referral_id: ReferralId,
    streams: &[Uuid],
) -> Result<Option<(ClientId, LoadedCase)>, CommandError> {
    for stream_id in streams {
        let loaded = match cases.load(ClientId(*stream_id)).await {
            Ok(loaded) => loaded,
            Err(CommandError::Denied(_)) => continue,
            Err(e) => return Err(e),
        };
        if loaded.organisation_id == Some(organisation_id)
            && loaded.state.referrals.contains_key(&referral_id)
        {
            return Ok(Some((ClientId(*stream_id), loaded)));
        }
    }
    Ok(None)
}

/// What one statement found of an NHS number in an organisation: the records carrying its tag
/// (and, for a referral of someone new, the records tagged with the id its referrer chose), and
/// the number's claim ([`number_claim`]) as it stood then.
///
/// Nothing is locked: a referral that found no record holding the number (none carrying its
/// tag, or none that still holds it once loaded, [`holding`]) and makes one claims the number's
/// next generation in its append ([`Found::claim`]).
/// Two referrals of one number racing both read the same generation, and the second's append
/// fails with [`StoreError::ClaimTaken`], nothing of it written: its caller looks again
/// ([`CLAIM_ATTEMPTS`]) and finds the first's record. Staff's racing referrals so make at most
/// one record, as a lock taken for each number would, at the price of one more look-up for the
/// loser of a race.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    /// The records carrying the number's tag.
    pub(crate) holders: Vec<Uuid>,
    /// The records carrying the referred-as tag asked about (none if none was asked about).
    pub(crate) referred_as: Vec<Uuid>,
    claim: Claim,
}

impl Found {
    /// The claim a new record for the number makes: the generation found, plus one.
    pub(crate) fn claim(&self) -> Claim {
        self.claim.clone()
    }
}

/// Looks `number_tag` (and `referred_as`, a tag of the id a referrer chose) up, with the
/// number's claim, in one statement (see [`Found`]).
///
/// # Errors
/// A store failure.
pub(crate) async fn find(
    store: &EventStore,
    number_tag: &[u8; 32],
    referred_as: Option<[u8; 32]>,
) -> Result<Found, StoreError> {
    let id = number_claim(number_tag);
    let found = store
        .tagged_and_claimed(number_tag, referred_as.as_ref(), id)
        .await?;
    Ok(Found {
        holders: found.streams,
        referred_as: found.also,
        claim: Claim::At {
            id,
            generation: found.generation + 1,
        },
    })
}

/// The id of an NHS number's claim: made from its lookup tag (a keyed hash of the organisation
/// and the number), so that the claims table holds nothing the lookups do not.
pub(crate) fn number_claim(tag: &[u8; 32]) -> Uuid {
    let mut id = [0; 16];
    id.copy_from_slice(&tag[..16]);
    Uuid::from_bytes(id)
}

/// The claim of a referral of someone new that looked nothing up: the number's next
/// generation, unless a record carries the number's tag (`number_tag`), the referral's
/// referred-as tag or the id chosen's tag ([`chosen_id_tag`]) when the append is written
/// (`eventstore::Claim::Next`): made only when a look-up ([`find`]) at that moment would have
/// found no record carrying any, and would have claimed the same generation.
pub(crate) fn unseen_claim(
    number_tag: &[u8; 32],
    referred_as: Option<[u8; 32]>,
    chosen: Option<[u8; 32]>,
) -> Claim {
    Claim::Next {
        id: number_claim(number_tag),
        unless_tagged: std::iter::once(*number_tag)
            .chain(referred_as)
            .chain(chosen)
            .collect(),
    }
}

/// How many times a referral looks its NHS number up and decides again after another took
/// the number's claim first ([`StoreError::ClaimTaken`]); past it, the last refusal is the
/// answer (503: to be retried).
pub(crate) const CLAIM_ATTEMPTS: usize = 3;

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

/// The other records of `organisation_id` that carry `number`'s tag now, beside `client_id`
/// (in id order): the same person's, made where the service did not say it knew them (a
/// referrer's or a practice's referral the known record refused, `crate::intake`,
/// `crate::fhir`), or by a race this module describes. Never matched to a referral while there
/// are two; shown to staff on the record, for them to check and correct.
///
/// # Errors
/// The lookup key or the tags cannot be read.
pub async fn others_holding(
    store: &EventStore,
    organisation_id: Uuid,
    client_id: ClientId,
    number: &NhsNumber,
) -> Result<Vec<Uuid>, StoreError> {
    let Some(tag) = nhs_number_tag(store, organisation_id, number).await? else {
        return Ok(Vec::new());
    };
    let mut streams = store.streams_tagged(&tag).await?;
    streams.retain(|stream| *stream != client_id.0);
    Ok(streams)
}

/// The NHS number a loaded record holds now (corrections applied; none once erased).
pub fn nhs_number_of(loaded: &LoadedCase) -> Option<&NhsNumber> {
    loaded.entries.values().find_map(|entry| match entry {
        CaseEvent::ClientRegistered(registered) => registered.personal.nhs_number.as_ref(),
        _ => None,
    })
}

/// The clients of `organisation_id` among `streams` (those found carrying the number's tag,
/// [`Found::holders`]) whose records hold `number` now, not erased, loaded. A stream found may
/// have stopped holding the number since it was found (erased, or the number corrected away):
/// a referral that finds none here makes a record claiming the number, as one that found no
/// stream at all does.
///
/// # Errors
/// A store failure.
pub(crate) async fn holding(
    cases: &CaseService,
    organisation_id: Uuid,
    number: &NhsNumber,
    streams: &[Uuid],
) -> Result<Vec<(ClientId, LoadedCase)>, CommandError> {
    holding_up_to(cases, organisation_id, number, streams, usize::MAX).await
}

/// As [`holding`], stopping at the `most`th record found holding the number: a referral only
/// asks whether one record holds it, none, or more than one ([`MATCHED_AT_MOST`]), so a number
/// on many records (a referrer referring a known person again and again, each kept as someone
/// new's) costs it no more than two loads.
///
/// # Errors
/// A store failure.
pub(crate) async fn holding_up_to(
    cases: &CaseService,
    organisation_id: Uuid,
    number: &NhsNumber,
    streams: &[Uuid],
    most: usize,
) -> Result<Vec<(ClientId, LoadedCase)>, CommandError> {
    let mut found = Vec::new();
    for &stream_id in streams {
        if found.len() >= most {
            break;
        }
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
    Ok(found)
}

/// How many records holding a number a referral looks at: enough to tell one from more.
pub(crate) const MATCHED_AT_MOST: usize = 2;

/// The one client of those [`holding`] the number: `None` when there is none, or more than one
/// (a match is not guessed).
pub(crate) fn the_one(mut holding: Vec<(ClientId, LoadedCase)>) -> Option<(ClientId, LoadedCase)> {
    if holding.len() > 1 {
        // A referral looks at no more than `MATCHED_AT_MOST` of them: a lower bound.
        tracing::warn!(
            records_at_least = holding.len(),
            "an NHS number is held by more than one record of the organisation: not matched"
        );
        return None;
    }
    holding.pop()
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
