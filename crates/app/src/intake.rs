//! A referral of someone new through the API (`POST /api/v1/clients/{client_id}/referrals` with
//! the person's details) whose NHS number a record of the organisation already holds: the
//! referral goes on that record, as a FHIR referral does (`crate::fhir`), so that one person
//! has one record, one journey and is counted once.
//!
//! The person's details stay as recorded (the details sent are not a correction), but they are
//! checked as a new person's would be (`CaseService::decide_as_new`): what would refuse the
//! referral of someone unknown refuses it alike. The record found takes the referral only when
//! it would take one (their referral waiting or their case open refuses it), and only from a
//! caller who may refer the person on it ([`policy::may_refer_matched_person`]). An erased
//! record, another organisation's and a number held by more than one record are never matched
//! (`crate::matching::known_client`).
//!
//! What the caller is told depends on who they are ([`policy::may_learn_known_person`]): staff
//! of the service hear which record it went to, and why it was refused (naming
//! `client.personal.nhs_number`). A referrer (or a practice's system) gets the same answer
//! whether the person was known or not, naming the id they chose, and follows the referral by
//! that id (`CaseService::referral_status`); when the record found refuses the referral (or
//! moved under it), the referral is taken as someone new's, under the id chosen, as it would
//! have been had the service not known the person: a refusal would tell them who is a client.
//! The number is then held by two records, which are not matched again until the service
//! corrects one: each names the other to staff (`ClientRecord::shares_nhs_number_with`), and a
//! referral of the number by staff is refused meanwhile (naming `client.personal.nhs_number`),
//! to be made on the right record rather than make a third. What is not hidden: the known path
//! takes a few more round trips (a timing difference of milliseconds, on a role whose every
//! request is audited).
//!
//! The record found carries a lookup tag of the id chosen and the referral's
//! ([`crate::matching::referred_as_tag`]), written in the append's own statement: a retry of
//! the request finds where it went, and so does the referrer's read, whatever happened to the
//! person's number since. It also carries a tag of the id chosen alone
//! ([`crate::matching::chosen_id_tag`]): the id then stands for that record, and any later
//! referral of someone new naming it (whatever number it carries, or none) is answered as one
//! naming the record would be, as it would have been had the service not known the person and
//! made their record at the id: a referrer referring twice under one id, one request after the
//! other, learns nothing. Two sent at the same moment do not either: the append that makes a
//! record at the id and the one that takes the referral to the known person's record both claim
//! the id ([`crate::matching::chosen_id_claim`], its first generation, in the append's own
//! statement), so one only is written, as of two referrals of someone new under one id; the
//! other is refused with `ClaimTaken`, nothing of it written, and decided again on what the
//! first left (the record at the id, or the id's tag).
//!
//! Nothing is locked, and the usual referral, of someone new, looks nothing up: its append
//! claims the number's next generation unless a record carries the number's tag (or the
//! referral's referred-as tag) when it is written (`eventstore::Claim::Next`, which the batch
//! writer resolves in the statement it reads its clock with, so that it costs no round trip
//! of its own; an append written alone reads it first). Refused that way (or for anything
//! else), nothing written, the referral looks the number up with its claim in one statement
//! (`crate::matching::find`) and decides on what it finds, as it would have had it looked
//! first, and that answer is the one given: a record
//! holding it takes the referral; none (the records found no longer hold it) and the new
//! record claims the generation after the one found (`crate::matching::Found`). Two referrals
//! of one new number racing both claim the same generation, and the second's append is
//! refused, nothing of it written: it looks again ([`crate::matching::CLAIM_ATTEMPTS`]) and
//! finds the first's record, so staff's make at most one record. A referral of someone new
//! with a number so costs what one without does, its append written with others' (the batch
//! writer); one of a known person (or one refused), one batch's wait and one try more. One with
//! no number carries a guard on the id chosen's tag instead, read in the same statement.

use std::sync::atomic::{AtomicBool, Ordering};

use domain::{CaseCommand, CaseError, ClientId, ReferralId};
use eventstore::{AppendResult, StoreError};

use crate::access::Principal;
use crate::cases::{CaseService, CommandError, Denied, Matched, StaffCommand};
use crate::{matching, policy};

/// What a referral through the API did.
#[derive(Clone, Debug)]
pub struct Referred {
    /// The append (or, for a retry, the first one).
    pub result: AppendResult,
    /// The client id the request named.
    pub referred_as: ClientId,
    /// The referral's id.
    pub referral_id: ReferralId,
    /// The record the referral is on: `referred_as`, or the record the organisation already
    /// held for the person.
    pub record: ClientId,
    /// Whether the caller is told which record it went to ([`policy::may_learn_known_person`]);
    /// if not, they are answered alike whether the person was known or not.
    pub told: bool,
}

impl Referred {
    /// Whether the referral went to a record the organisation already held.
    pub fn to_known_person(&self) -> bool {
        self.record != self.referred_as
    }
}

/// The field a refusal about the person found names.
const NHS_NUMBER_FIELD: &str = "client.personal.nhs_number";

impl CaseService {
    /// Carries out a referral (`CaseCommand::Intake`) for a member of staff or a referrer: as
    /// [`CaseService::execute_as`], except that a referral of someone new whose NHS number one
    /// record of the organisation already holds (not erased) goes on that record (see the
    /// module).
    ///
    /// # Errors
    /// As [`CaseService::execute_as`]; for staff, [`CommandError::Invalid`] naming
    /// `client.personal.nhs_number` when the person found has a referral waiting or a case open;
    /// [`CommandError::Invalid`] naming `client_id` (for someone new) or
    /// `referral.referral_id` when the id chosen has the shape of one Casebook derives
    /// ([`domain::is_derived`]).
    pub async fn refer(
        &self,
        principal: &Principal,
        client_id: ClientId,
        command: &CaseCommand,
        request: StaffCommand,
    ) -> Result<Referred, CommandError> {
        // Ids of the shape Casebook derives (a practice's FHIR referral, a history import) are
        // never the caller's to choose, for a new record or a new referral: nobody takes one
        // before it is derived.
        if let CaseCommand::Intake { client, referral } = command {
            let chosen = [
                (client.is_some().then_some(client_id.0), "client_id"),
                (Some(referral.referral_id.0), "referral.referral_id"),
            ];
            if let Some((_, field)) = chosen
                .into_iter()
                .find(|(id, _)| id.is_some_and(domain::is_derived))
            {
                return Err(CommandError::Invalid {
                    field,
                    message: domain::DERIVED_ID_REFUSED.to_owned(),
                });
            }
        }
        let CaseCommand::Intake {
            client: Some(new), ..
        } = command
        else {
            return self
                .refer_as_named(principal, client_id, command, request, Matched::default())
                .await;
        };
        let number_tag = match &new.personal.nhs_number {
            Some(number) => {
                matching::nhs_number_tag(self.store(), principal.organisation_id, number).await?
            }
            None => None,
        };
        // The id chosen stands for a record an earlier referral under it went to, if a record
        // carries this tag (`matching::chosen_id_tag`).
        let chosen_tag =
            matching::chosen_id_tag(self.store(), principal.organisation_id, client_id).await?;
        // A version expected of the id named that only a record there could have, where the id
        // stands for a record: answered as that record would answer (a version checked only
        // there would tell the caller no record is at the id).
        if request.expected_version.is_some_and(|version| version != 0)
            && let Some(tag) = chosen_tag
            && let Some(record) =
                matching::standing_for(self, principal.organisation_id, &tag).await?
        {
            return self
                .answer_named(principal, (client_id, record), command, request)
                .await;
        }
        // No number (or a store that seals nothing, where nothing is found by one): the command
        // is for the id named, unless that id stands for a record.
        let (Some(number), Some(number_tag)) = (new.personal.nhs_number.clone(), number_tag) else {
            return self
                .refer_unused(principal, (client_id, chosen_tag), command, request)
                .await;
        };
        // A version expected of the id named that only a record there could have: the command
        // is for it.
        if request.expected_version.is_some_and(|version| version != 0) {
            return self
                .refer_as_named(principal, client_id, command, request, Matched::default())
                .await;
        }
        // The usual case, someone new, first: nothing looked up, the append claiming the
        // number's next generation unless a record carries its tag or the referral went to a
        // known person's record before (`Claim::Next`, resolved by the writer in the statement
        // it reads the clock with). Refused that way, or refused for anything else, nothing
        // was written, and the referral is looked up below, whose answer is the one given: a
        // retry of a referral that went to a known person is answered with its first result
        // there, though the request itself would now be refused (its date out of the window
        // for late entries, say).
        if let Ok(referred) = self
            .refer_unseen(
                principal,
                (client_id, &number_tag, chosen_tag),
                command,
                request.clone(),
            )
            .await
        {
            return Ok(referred);
        }
        // Looked up and decided again while another referral takes the number's claim first
        // (see `matching::Found`): the second time, it finds the record the other made.
        let mut attempt = 1;
        loop {
            let referred = self
                .refer_matched(
                    principal,
                    (client_id, &number, &number_tag, chosen_tag),
                    command,
                    request.clone(),
                )
                .await;
            match referred {
                Err(CommandError::Store(StoreError::ClaimTaken(_)))
                    if attempt < matching::CLAIM_ATTEMPTS =>
                {
                    attempt += 1;
                }
                referred => return referred,
            }
        }
    }

    /// A referral of someone new with no NHS number to find them by, under the id chosen,
    /// unless a record carries the id's tag when its append is written
    /// ([`matching::unused_id_guard`]): then nothing is written, and it is answered as a
    /// referral naming that record is.
    async fn refer_unused(
        &self,
        principal: &Principal,
        (client_id, chosen_tag): (ClientId, Option<[u8; 32]>),
        command: &CaseCommand,
        request: StaffCommand,
    ) -> Result<Referred, CommandError> {
        let Some(tag) = chosen_tag else {
            return self
                .refer_as_named(principal, client_id, command, request, Matched::default())
                .await;
        };
        let guarded = Matched {
            claims: vec![matching::unused_id_guard(tag)],
            ..Matched::default()
        };
        match self
            .refer_as_named(principal, client_id, command, request.clone(), guarded)
            .await
        {
            Err(CommandError::Store(StoreError::ClaimTaken(_))) => {
                match matching::standing_for(self, principal.organisation_id, &tag).await? {
                    Some(record) => {
                        self.answer_named(principal, (client_id, record), command, request)
                            .await
                    }
                    // The record it stood for was erased since: the id is free again.
                    None => {
                        self.refer_as_named(
                            principal,
                            client_id,
                            command,
                            request,
                            Matched::default(),
                        )
                        .await
                    }
                }
            }
            referred => referred,
        }
    }

    /// A referral of someone new carrying an NHS number, made under the id chosen without a
    /// look-up, claiming the number unless a record carries its tag (or the referral's
    /// referred-as tag, or the id chosen's) when its append is written:
    /// [`StoreError::ClaimTaken`] then, nothing written, and the caller looks up
    /// ([`CaseService::refer_matched`]).
    async fn refer_unseen(
        &self,
        principal: &Principal,
        (client_id, number_tag, chosen_tag): (ClientId, &[u8; 32], Option<[u8; 32]>),
        command: &CaseCommand,
        request: StaffCommand,
    ) -> Result<Referred, CommandError> {
        let CaseCommand::Intake { referral, .. } = command else {
            return self
                .refer_as_named(principal, client_id, command, request, Matched::default())
                .await;
        };
        let referred_tag = matching::referred_as_tag(
            self.store(),
            principal.organisation_id,
            client_id,
            referral.referral_id,
        )
        .await?;
        let matched = Matched {
            claims: vec![matching::unseen_claim(number_tag, referred_tag, chosen_tag)],
            ..Matched::default()
        };
        self.refer_as_named(principal, client_id, command, request, matched)
            .await
    }

    /// The rest of [`CaseService::refer`] for a referral of someone new carrying an NHS number
    /// the organisation's records can be looked up by.
    async fn refer_matched(
        &self,
        principal: &Principal,
        (client_id, number, number_tag, chosen_tag): (
            ClientId,
            &domain::NhsNumber,
            &[u8; 32],
            Option<[u8; 32]>,
        ),
        command: &CaseCommand,
        request: StaffCommand,
    ) -> Result<Referred, CommandError> {
        let told = policy::may_learn_known_person(principal);
        let organisation_id = principal.organisation_id;
        let CaseCommand::Intake { referral, .. } = command else {
            return self
                .refer_as_named(principal, client_id, command, request, Matched::default())
                .await;
        };
        let referral_id = referral.referral_id;
        // Who holds the number, where this referral went if it was sent before, and the
        // number's claim: one statement.
        let referred_tag =
            matching::referred_as_tag(self.store(), organisation_id, client_id, referral_id)
                .await?;
        let found = matching::find(self.store(), number_tag, referred_tag).await?;
        // A record made for a number no record holds claims it: a racing referral of it that
        // found the same is refused its append, and looks again. (One made beside a record that
        // still holds it, below, claims nothing: a racing referral finds that record too.)
        let claiming = Matched {
            claims: vec![found.claim()],
            ..Matched::default()
        };
        // The id chosen stands for a record an earlier referral under it went to (not this
        // referral: a retry of it is answered below with its first result): answered as a
        // referral naming that record is, as it would be had the service not known the person
        // (their record would be at the id).
        if found.referred_as.is_empty()
            && let Some(tag) = chosen_tag
            && let Some(record) = matching::standing_for(self, organisation_id, &tag).await?
        {
            return self
                .answer_named(principal, (client_id, record), command, request)
                .await;
        }
        // No record holds the number and none took this referral: someone new (the records
        // that carried the tag when the unseen try was refused have stopped since, or it was
        // refused for something else).
        if found.holders.is_empty() && found.referred_as.is_empty() {
            return self
                .refer_as_named(principal, client_id, command, request, claiming)
                .await;
        }
        // The id chosen names a record (the referral's retry, or an id taken), or the caller
        // may not refer someone new at all: the command is for that id, as any command is.
        let chosen = self.load(client_id).await?;
        if chosen.exists() || policy::may_command(principal, &chosen, command, false).is_err() {
            return self
                .refer_as_named(principal, client_id, command, request, Matched::default())
                .await;
        }
        // Sent before, and gone to a known person's record: a retry goes there.
        if let Some((record, loaded)) =
            matching::referred_as_among(self, organisation_id, referral_id, &found.referred_as)
                .await?
        {
            let result = match self
                .refer_known(principal, (client_id, record), command, request, true)
                .await
            {
                Ok(result) => result,
                Err(Retry::Failed(e)) => return Err(e),
                // Not a retry of the first request: answered as a request naming a record
                // that exists is (the id chosen stands for the record it went to).
                Err(Retry::Again) => return Err(as_named_record(principal, &loaded, command)),
            };
            return Ok(Referred {
                result,
                referred_as: client_id,
                referral_id,
                record,
                told,
            });
        }
        let holding = matching::holding_up_to(
            self,
            organisation_id,
            number,
            &found.holders,
            matching::MATCHED_AT_MOST,
        )
        .await?;
        // The number is on more than one record (a referrer's or practice's referral kept as
        // someone new's, or a race): none is matched, and a referral of it would make one more.
        // Staff, who are told who is known, are refused, to refer the person on the right
        // record (each names the others) or correct the one that is wrong.
        if told && holding.len() > 1 {
            return Err(CommandError::Invalid {
                field: NHS_NUMBER_FIELD,
                message: "this NHS number is on more than one record of the service: refer the \
                          person on the right one (each record names the others), or correct \
                          the one that is wrong"
                    .to_owned(),
            });
        }
        // Those found no longer holding the number (erased, or corrected away since): none
        // holds it, and the record made claims it.
        let claiming = if holding.is_empty() {
            claiming
        } else {
            Matched::default()
        };
        let known = matching::the_one(holding)
            .map(|(record, _)| record)
            .filter(|record| *record != client_id);
        let Some(record) = known else {
            return self
                .refer_as_named(principal, client_id, command, request, claiming)
                .await;
        };
        // Refused for what would refuse it for someone unknown (whom it names, the details
        // sent, its dates) before anything of the known record is looked at.
        self.decide_as_new(principal, command, &request).await?;
        let to_known = || {
            self.refer_known(
                principal,
                (client_id, record),
                command,
                request.clone(),
                false,
            )
        };
        let mut known = to_known().await;
        // Another writer moved the record between its load and the append: once more.
        if let Err(Retry::Failed(CommandError::Conflict { .. })) = known {
            known = to_known().await;
        }
        match known {
            Ok(result) => Ok(Referred {
                result,
                referred_as: client_id,
                referral_id,
                record,
                told,
            }),
            Err(Retry::Again) => Err(CommandError::Refused(CaseError::AlreadyRegistered)),
            // A caller not told who is known learns nothing from the known record's refusal
            // (their referral waiting or case open, a referral of it received later, a race
            // with another writer): the referral is taken as someone new's, under the id they
            // chose, as it would have been had the service not known them.
            Err(Retry::Failed(
                CommandError::Refused(_)
                | CommandError::Invalid { .. }
                | CommandError::Conflict { .. }
                | CommandError::Denied(_),
            )) if !told => {
                self.refer_as_named(principal, client_id, command, request, claiming)
                    .await
            }
            Err(Retry::Failed(e)) => Err(e),
        }
    }

    /// The command on the record it names, as any command (its append writing what `matched`
    /// says; one that makes a record for someone new at the id also claims the id, as a
    /// referral under it that goes to a known person's record does: of two such at the same
    /// moment, one only is written, `matching::chosen_id_claim`).
    async fn refer_as_named(
        &self,
        principal: &Principal,
        client_id: ClientId,
        command: &CaseCommand,
        request: StaffCommand,
        mut matched: Matched,
    ) -> Result<Referred, CommandError> {
        if let CaseCommand::Intake {
            client: Some(_), ..
        } = command
            && let Some(tag) =
                matching::chosen_id_tag(self.store(), principal.organisation_id, client_id).await?
        {
            matched.claims_if_new.push(matching::chosen_id_claim(&tag));
        }
        let referral_id = match command {
            CaseCommand::Intake { referral, .. } => referral.referral_id,
            _ => ReferralId(uuid::Uuid::nil()),
        };
        let result = self
            .execute_as_under(principal, (client_id, matched), command, request, |check| {
                policy::may_command(principal, check.case, command, check.replay)
            })
            .await?;
        Ok(Referred {
            result,
            referred_as: client_id,
            referral_id,
            record: client_id,
            told: policy::may_learn_known_person(principal),
        })
    }

    /// The referral (sent for someone new under `chosen`) on `record`, the person's: without
    /// their details, under the caller's key made the chosen id's (a key of theirs cannot meet
    /// another on the record), tagging the record with the id chosen. With `retry_only`, only
    /// the first result of the same request is answered ([`Retry::Again`] otherwise).
    async fn refer_known(
        &self,
        principal: &Principal,
        (chosen, record): (ClientId, ClientId),
        command: &CaseCommand,
        request: StaffCommand,
        retry_only: bool,
    ) -> Result<AppendResult, Retry> {
        let CaseCommand::Intake { referral, .. } = command else {
            return Err(Retry::Failed(CommandError::Refused(
                CaseError::NotRegistered,
            )));
        };
        let tag = matching::referred_as_tag(
            self.store(),
            principal.organisation_id,
            chosen,
            referral.referral_id,
        )
        .await
        .map_err(|e| Retry::Failed(e.into()))?;
        // The id chosen then stands for the record (`matching::chosen_id_tag`).
        let chosen_tag = matching::chosen_id_tag(self.store(), principal.organisation_id, chosen)
            .await
            .map_err(|e| Retry::Failed(e.into()))?;

        let on_record = CaseCommand::Intake {
            client: None,
            referral: referral.clone(),
        };
        // The version expected was the id chosen's (none there): not the record's.
        let caller_key = request.idempotency_key.clone();
        let request = StaffCommand {
            idempotency_key: request
                .idempotency_key
                .map(|key| format!("referred-as:{}:{key}", chosen.0)),
            expected_version: None,
            ..request
        };
        let fresh = AtomicBool::new(false);
        let executed = self
            .execute_as_under(
                principal,
                (
                    record,
                    Matched {
                        referred_as: tag.into_iter().chain(chosen_tag).collect(),
                        // The id chosen's claim, as a record made at the id would make.
                        claims: chosen_tag
                            .as_ref()
                            .map(matching::chosen_id_claim)
                            .into_iter()
                            .collect(),
                        claims_if_new: Vec::new(),
                    },
                ),
                &on_record,
                request,
                |check| {
                    if retry_only && !check.replay {
                        fresh.store(true, Ordering::Relaxed);
                        return Err(Denied::NotFound);
                    }
                    policy::may_refer_matched_person(principal, check.case, check.replay)
                },
            )
            .await;
        match executed {
            Ok(result) => Ok(result),
            Err(_) if fresh.load(Ordering::Relaxed) => Err(Retry::Again),
            // The person's referral is waiting or their case open: the service adds to it.
            Err(CommandError::Refused(CaseError::CaseAlreadyActive)) => {
                Err(Retry::Failed(CommandError::Invalid {
                    field: NHS_NUMBER_FIELD,
                    message: "this person (by their NHS number) already has a referral waiting \
                              or a case open with the service: the service adds to it, a \
                              second referral is not taken"
                        .to_owned(),
                }))
            }
            // A key used for another request is named as the caller gave it, not as the
            // record stores it.
            Err(CommandError::IdempotencyMismatch(_)) => Err(Retry::Failed(
                CommandError::IdempotencyMismatch(caller_key.unwrap_or_default()),
            )),
            Err(e) => Err(Retry::Failed(e)),
        }
    }

    /// A referral naming `chosen`, which stands for `record` (an earlier referral under the id
    /// went there): a copy of that earlier request (its key, its body) is answered with its
    /// first result, a request reusing its key for another body is refused as the reuse, and
    /// any other as one naming the record would be ([`as_named_record`]); all as they would
    /// be had the record been made at the id.
    async fn answer_named(
        &self,
        principal: &Principal,
        (chosen, (record, loaded)): (ClientId, (ClientId, crate::cases::LoadedCase)),
        command: &CaseCommand,
        request: StaffCommand,
    ) -> Result<Referred, CommandError> {
        if request.idempotency_key.is_some() {
            let referral_id = match command {
                CaseCommand::Intake { referral, .. } => referral.referral_id,
                _ => ReferralId(uuid::Uuid::nil()),
            };
            match self
                .refer_known(principal, (chosen, record), command, request, true)
                .await
            {
                Ok(result) => {
                    return Ok(Referred {
                        result,
                        referred_as: chosen,
                        referral_id,
                        record,
                        told: policy::may_learn_known_person(principal),
                    });
                }
                Err(Retry::Failed(e)) => return Err(e),
                Err(Retry::Again) => {}
            }
        }
        Err(as_named_record(principal, &loaded, command))
    }
}

/// A referral naming an id that stands for a record (the referral's first try went there, or an
/// earlier referral under the id did: `matching::chosen_id_tag`) is answered as one naming that
/// record would be: refused for a caller who may not refer onto it (a referrer refers people
/// new to the service), else as the person's registration there already made.
fn as_named_record(
    principal: &Principal,
    record: &crate::cases::LoadedCase,
    command: &CaseCommand,
) -> CommandError {
    match policy::may_command(principal, record, command, false) {
        Err(denied) => denied.into(),
        Ok(()) => CommandError::Refused(CaseError::AlreadyRegistered),
    }
}

/// Why a referral to a known person's record was not carried out.
enum Retry {
    /// Only a retry was to be answered, and this is not one.
    Again,
    Failed(CommandError),
}
