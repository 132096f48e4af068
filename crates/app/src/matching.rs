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

use std::collections::BTreeMap;
use std::time::Duration;

use domain::{CaseEvent, ClientId, EventId, NhsNumber, ReferralId};
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

/// The lookup tags a client's stream of `organisation_id` carries after `events`, decided
/// against `loaded` (the stream `stream_id` as the command loaded it), for the append that
/// records them: `None` when they leave every tag as it was.
///
/// The append replaces the stream's tags with those given, so they are all given: the tags the
/// stream carries now (read here, after the load: a writer that changed them since also moved
/// the version, and the append is then a conflict), the NHS number's replaced when `events`
/// register the person or correct their registration, and `referred_as` added (a referral of
/// someone new that went to this record, [`referred_as_tag`]).
///
/// # Errors
/// The lookup key or the stream's tags cannot be read.
pub(crate) async fn lookups_after(
    store: &EventStore,
    organisation_id: Uuid,
    (stream_id, loaded): (Uuid, &LoadedCase),
    events: &[CaseEvent],
    referred_as: Option<[u8; 32]>,
) -> Result<Option<Vec<[u8; 32]>>, StoreError> {
    let number = nhs_number_after(events, &loaded.entries);
    if number.is_none() && referred_as.is_none() {
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
    if let Some(tag) = referred_as
        && !tags.contains(&tag)
    {
        tags.push(tag);
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
    for stream_id in cases.store().streams_tagged(&tag).await? {
        let loaded = match cases.load(ClientId(stream_id)).await {
            Ok(loaded) => loaded,
            Err(CommandError::Denied(_)) => continue,
            Err(e) => return Err(e),
        };
        if loaded.organisation_id == Some(organisation_id)
            && loaded.state.referrals.contains_key(&referral_id)
        {
            return Ok(Some((ClientId(stream_id), loaded)));
        }
    }
    Ok(None)
}

/// Runs `work` while holding the lock of one NHS number's tag (a transaction-scoped advisory
/// lock, on a connection of its own): two referrals of one person new to the service, racing,
/// are taken one after the other, so that the second finds the record the first made
/// (`known_client`) and at most one record is made. The transaction writes nothing (it has no
/// transaction id, so it holds no reader back); it ends when `work` does (the callers run this
/// on a task of their own, so that a caller who stops waiting does not end it early).
///
/// A referral finding the lock held does not wait on a connection (many referrals of one
/// number would hold the pool while the one holding the lock needs a connection for its
/// work): it gives the connection back, and its permit, and tries again a moment later, for
/// `LOCK_PATIENCE`. No more than `holders` permits' worth of referrals (half the pool's
/// connections, see `CaseService`) hold a connection for a lock at once: many referrals of
/// different numbers could otherwise take every connection with their locks, and then wait
/// on the one more their work needs.
///
/// # Errors
/// A store failure taking the lock, or the lock (or a permit to hold one) not had within
/// `LOCK_PATIENCE` ([`StoreError::Unavailable`]: answered 503, to be retried); `work` is not
/// run then.
pub(crate) async fn with_number_locked<T>(
    store: &EventStore,
    holders: &tokio::sync::Semaphore,
    tag: &[u8; 32],
    work: impl std::future::Future<Output = T>,
) -> Result<T, StoreError> {
    let key = i32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]]);
    let too_long = || {
        tracing::warn!("an NHS number's lock was held too long: the referral is not taken");
        StoreError::Unavailable(db::deadpool_postgres::PoolError::Timeout(
            db::deadpool_postgres::TimeoutType::Wait,
        ))
    };
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let patience = LOCK_PATIENCE.saturating_sub(started.elapsed());
        let permit = match tokio::time::timeout(patience, holders.acquire()).await {
            Ok(Ok(permit)) => permit,
            // Never closed; timed out.
            Ok(Err(_)) | Err(_) => return Err(too_long()),
        };
        let mut client = store.pool().get().await?;
        let transaction = client.transaction().await?;
        let statement = transaction
            .prepare_cached("SELECT pg_try_advisory_xact_lock($1, $2)")
            .await?;
        let locked: bool = transaction
            .query_one(&statement, &[&NUMBER_LOCK_CLASS, &key])
            .await?
            .get(0);
        if locked {
            let done = work.await;
            // What `work` did is committed (or not) on its own connections: a failure to end
            // this transaction changes nothing of it, and ends the session (and the lock).
            if let Err(e) = transaction.commit().await {
                tracing::warn!(error = %e, "an NHS number's lock was not released cleanly");
            }
            return Ok(done);
        }
        transaction.rollback().await?;
        drop(client);
        drop(permit);
        if started.elapsed() >= LOCK_PATIENCE {
            return Err(too_long());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// What a task that ran a referral under its number's lock, and ended without an answer
/// (the runtime shutting down), is answered as: unavailable, to be retried.
pub(crate) fn cancelled() -> StoreError {
    StoreError::Unavailable(db::deadpool_postgres::PoolError::Closed)
}

/// How long a referral waits for another of the same NHS number to be taken.
const LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// The first key of the advisory locks taken on NHS numbers' tags (two-key locks: none is the
/// migrations' one-key lock).
const NUMBER_LOCK_CLASS: i32 = 0x4e48_5331;

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
