//! FHIR R4 referrals in: a GP practice's system sends a UK Core `ServiceRequest` (on its own,
//! the Patient contained, or in a transaction `Bundle` with the `Patient` and an optional
//! `QuestionnaireResponse`), which becomes a new client's registration and referral through
//! the same command path as every referral; it then follows the referral as the
//! ServiceRequest and a `Task` whose status is the referral's decision.
//!
//! The resource id is derived from the caller's organisation and the ServiceRequest's
//! identifier (system and value), and is the referral's id, and the new client's when the
//! person is new to the service. A Patient whose NHS number the organisation already holds for
//! one client, not erased, is that client (`crate::matching`, by a keyed hash of the number:
//! never another organisation's): the referral is added to their record, which keeps the
//! details it holds, unless that record refuses it (their referral waiting or their case open):
//! then it is kept as someone new's, under its own id, since the practice is answered alike
//! whether the service knew the person or not (`policy::may_learn_known_person`, as over the
//! API: `crate::intake`), and the ServiceRequest's `subject` is always its own id. The same
//! ServiceRequest sent again goes to the record it went to (`fhir_service_requests`) and
//! returns the first result (an idempotency key on that record), whatever the transport did in
//! between. The same identifier with other content is refused.

mod mapping;
mod resources;
#[cfg(test)]
mod tests;

use domain::{
    CaseCommand, CaseEvent, CaseStatus, ClientId, ClientRegistered, NeedDomain, ReferralId,
    ReferralReceived, ReferralStatus, Urgency,
};
use eventstore::{AppendResult, StoreError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::access::Principal;
use crate::cases::{CaseService, CommandError, Denied, LoadedCase, Matched, StaffCommand};
use crate::records::{ReadContext, RecordView};
use crate::{AppError, policy};

pub use mapping::{
    FhirRules, Issue, MappedReferral, NHS_NUMBER, SNOMED, map_service_request, map_transaction,
    postcode_district,
};

/// The code system of Casebook's referral statuses, as a `Task.businessStatus`.
pub const REFERRAL_STATUS_SYSTEM: &str = "https://casebook.invalid/fhir/CodeSystem/referral-status";
/// The code system of Casebook's need domains, as a ServiceRequest's reason.
pub const NEED_SYSTEM: &str = "https://casebook.invalid/fhir/CodeSystem/need-domain";
/// The SNOMED CT code of a referral to social prescribing.
pub const SOCIAL_PRESCRIBING_REFERRAL: &str = "871731000000106";

/// How a referral arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submission {
    /// `POST /fhir/ServiceRequest`: a ServiceRequest with its Patient contained.
    ServiceRequest,
    /// `POST /fhir`: a transaction Bundle.
    Transaction,
}

/// Why a FHIR request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    /// The resources do not make a referral: each issue names its element.
    #[error("the resource is not a referral Casebook can take")]
    Invalid(Vec<Issue>),
    /// The identifier was used before for a ServiceRequest with other content.
    #[error("this identifier was already used for a different ServiceRequest")]
    Duplicate { expression: String },
    /// The caller may not.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The referral's command was refused or failed.
    #[error(transparent)]
    Command(CommandError),
    /// Anything else.
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<CommandError> for FhirError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Denied(d) => FhirError::Denied(d),
            other => FhirError::Command(other),
        }
    }
}

impl From<tokio_postgres::Error> for FhirError {
    fn from(e: tokio_postgres::Error) -> Self {
        FhirError::App(AppError::Database(e))
    }
}

/// What a submission did.
#[derive(Clone, Debug)]
pub struct Submitted {
    /// The id of the ServiceRequest, its Task, the client and the referral.
    pub id: Uuid,
    /// False when the same ServiceRequest had been received before (nothing new was written).
    pub created: bool,
    /// The ServiceRequest as Casebook holds it.
    pub service_request: Value,
    /// Its Task: where the referral stands.
    pub task: Value,
}

/// Where [`FhirReferrals::take`] recorded a referral, and what came of it.
struct Taken {
    /// The record it went to (or would have).
    client_id: ClientId,
    /// The record is a known person's, not the one at the ServiceRequest's own id.
    known: bool,
    /// The record was found by the Patient's NHS number in this request (not a repeat's).
    found_now: bool,
    executed: Result<AppendResult, CommandError>,
}

/// FHIR referrals over the case service.
#[derive(Clone)]
pub struct FhirReferrals {
    cases: CaseService,
}

impl FhirReferrals {
    /// Referrals over `cases` (its store, clock and rules).
    pub fn new(cases: CaseService) -> FhirReferrals {
        FhirReferrals { cases }
    }

    /// Receives a referral: maps it, registers the person and records the referral as the
    /// caller (a practice's system), once per identifier.
    ///
    /// # Errors
    /// [`FhirError::Invalid`] naming each element; [`FhirError::Duplicate`] for an identifier
    /// reused with other content; [`FhirError::Denied`] for a caller that is not a practice
    /// system; refusals and store failures.
    pub async fn submit(
        &self,
        principal: &Principal,
        kind: Submission,
        resource: &Value,
        request_id: Uuid,
    ) -> Result<Submitted, FhirError> {
        policy::may_submit_fhir_referral(principal)?;
        let rules = FhirRules::latest();
        let mapped = match kind {
            Submission::ServiceRequest => map_service_request(resource, rules),
            Submission::Transaction => map_transaction(resource, rules),
        }
        .map_err(FhirError::Invalid)?;
        let (system, value) = mapped.identifier.clone();
        let id = resource_id(principal.organisation_id, &system, &value);
        let mut referrer = mapped.referrer.clone();
        referrer.staff_id = Some(principal.staff_id);
        // What makes two submissions the same: everything mapped, not the day it arrived.
        let fingerprint: [u8; 32] = Sha256::digest(
            serde_json::to_vec(&json!({
                "identifier": [system, value],
                "personal": mapped.personal,
                "area": mapped.area,
                "source": mapped.source,
                "referrer": referrer,
                "reasons": mapped.reasons,
                "urgency": mapped.urgency,
                "note": mapped.note,
            }))
            .unwrap_or_default(),
        )
        .into();
        // The person's NHS number's tag: a referral of a number one record holds goes to it,
        // and one of a number none holds makes a record claiming it (`matching::Found`).
        let number_tag = match &mapped.personal.nhs_number {
            Some(number) => crate::matching::nhs_number_tag(
                self.cases.store(),
                principal.organisation_id,
                number,
            )
            .await
            .map_err(CommandError::from)?,
            None => None,
        };
        let at = match kind {
            Submission::ServiceRequest => "ServiceRequest.identifier",
            Submission::Transaction => "Bundle.entry.resource.identifier",
        };
        // Looked up and decided again while another referral takes the number's claim first:
        // the second time, it finds the record the other made.
        let mut attempt = 1;
        let mut as_new = false;
        let Taken {
            client_id,
            known,
            executed,
            ..
        } = loop {
            let taken = self
                .take(
                    principal,
                    (&mapped, &referrer),
                    (id, fingerprint, request_id),
                    number_tag.filter(|_| !as_new).as_ref(),
                )
                .await?;
            match taken {
                Taken {
                    executed: Err(CommandError::Store(StoreError::ClaimTaken(_))),
                    ..
                } if attempt < crate::matching::CLAIM_ATTEMPTS => {
                    attempt += 1;
                }
                // The known person's record refuses the referral (their referral waiting or
                // their case open, or it moved under it): a practice's system is not told who
                // is known to the service (`policy::may_learn_known_person`), so the referral
                // is kept as someone new's, under its own id, as it would have been had the
                // service not known the person (as over the API: `crate::intake`). The number
                // is then held by two records, which are not matched again until the service
                // corrects one.
                Taken {
                    found_now: true,
                    executed:
                        Err(
                            CommandError::Refused(_)
                            | CommandError::Invalid { .. }
                            | CommandError::Conflict { .. }
                            | CommandError::Denied(_),
                        ),
                    ..
                } if !policy::may_learn_known_person(principal) => {
                    as_new = true;
                }
                taken => break taken,
            }
        };
        let result = match executed {
            Ok(result) => result,
            Err(CommandError::IdempotencyMismatch(_)) => {
                return Err(FhirError::Duplicate {
                    expression: at.to_owned(),
                });
            }
            Err(CommandError::Refused(domain::CaseError::AlreadyRegistered)) => {
                return Err(FhirError::Duplicate {
                    expression: at.to_owned(),
                });
            }
            // Someone else's record under this id (another system of the organisation sent
            // this identifier first): the identifier is taken. Any other refusal is itself.
            Err(CommandError::Denied(Denied::Forbidden(reason))) if !known => {
                let there = self.cases.load(ClientId(id)).await?.version > 0;
                return Err(if there {
                    FhirError::Duplicate {
                        expression: at.to_owned(),
                    }
                } else {
                    FhirError::Denied(Denied::Forbidden(reason))
                });
            }
            Err(e) => return Err(e.into()),
        };
        let client = self.cases.connection().await.map_err(AppError::from)?;
        client
            .execute(
                "INSERT INTO fhir_service_requests \
                 (resource_id, organisation_id, identifier_system, identifier_value, submitted_by, \
                  client_id) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &id,
                    &principal.organisation_id,
                    &system,
                    &value,
                    &principal.staff_id.0,
                    &known.then_some(client_id.0),
                ],
            )
            .await?;
        if result.replayed {
            // A repeated submission answers where the referral stands now: a read of the record.
            let read = ReadContext::new(None, request_id);
            self.cases
                .audit_read(
                    principal,
                    client_id.0,
                    RecordView::FhirServiceRequest,
                    &read,
                )
                .await?;
        }
        let loaded = self.cases.load(client_id).await?;
        let view = ReferralView::of(&loaded, id, (system, value))
            .ok_or_else(|| AppError::NotFound("no such referral".into()))?;
        Ok(Submitted {
            id,
            created: !result.replayed,
            service_request: view.service_request(),
            task: view.task(),
        })
    }

    /// Records the referral once: on the record it went to when it was received before (by the
    /// row of `fhir_service_requests`, or the referred-as tag its append wrote on a known
    /// person's record, which a retry finds before the row is written); else on the one client
    /// of the organisation holding the Patient's NHS number (`crate::matching`), once the
    /// referral is decided as someone new's would be; else on a new record under the
    /// ServiceRequest's own id, which claims the number when no record holds it.
    async fn take(
        &self,
        principal: &Principal,
        (mapped, referrer): (&MappedReferral, &domain::Referrer),
        (id, fingerprint, request_id): (Uuid, [u8; 32], Uuid),
        number_tag: Option<&[u8; 32]>,
    ) -> Result<Taken, FhirError> {
        let store = self.cases.store();
        let organisation_id = principal.organisation_id;
        let referred_tag =
            crate::matching::referred_as_tag(store, organisation_id, ClientId(id), ReferralId(id))
                .await
                .map_err(CommandError::from)?;
        let (client_id, claim, found_now) = match self.received(organisation_id, id).await? {
            Some((_, client)) => (client, None, false),
            None => match (&mapped.personal.nhs_number, number_tag) {
                (Some(number), Some(tag)) => {
                    let found = crate::matching::find(store, tag, referred_tag)
                        .await
                        .map_err(CommandError::from)?;
                    match found.referred_as.first() {
                        // Sent before and gone to a known person's record, whose row is not
                        // written yet (the first try failed after its append, or is under
                        // way): the retry goes there.
                        Some(record) => (ClientId(*record), None, false),
                        None => {
                            let holding = crate::matching::holding_up_to(
                                &self.cases,
                                organisation_id,
                                number,
                                &found.holders,
                                crate::matching::MATCHED_AT_MOST,
                            )
                            .await?;
                            // Claimed when no record holds the number (see `intake`).
                            let claim = holding.is_empty().then(|| found.claim());
                            match crate::matching::the_one(holding) {
                                Some((client, _)) => (client, None, true),
                                None => (ClientId(id), claim, false),
                            }
                        }
                    }
                }
                _ => (ClientId(id), None, false),
            },
        };
        let known = client_id != ClientId(id);
        let referral = ReferralReceived {
            referral_id: ReferralId(id),
            source: mapped.source,
            referrer: referrer.clone(),
            reasons: mapped.reasons.clone(),
            urgency: mapped.urgency,
            received_on: self.cases.clock().today(),
            note: mapped.note.clone(),
        };
        let as_new = CaseCommand::Intake {
            client: Some(Box::new(ClientRegistered {
                client_id: ClientId(id),
                personal: mapped.personal.clone(),
                area: mapped.area.clone(),
            })),
            referral: referral.clone(),
        };
        let request = StaffCommand {
            idempotency_key: Some(crate::cases::own_key(&[
                "fhir-service-request",
                &id.to_string(),
            ])),
            fingerprint: Some(fingerprint),
            expected_version: None,
            correlation_id: request_id,
            occurred_at: None,
            late_entry_reason: None,
        };
        // Found by its number now: refused first for what would refuse the referral of someone
        // unknown, as theirs would be, before anything of the known record is looked at.
        if found_now
            && let Err(refused) = self.cases.decide_as_new(principal, &as_new, &request).await
        {
            return Ok(Taken {
                client_id: ClientId(id),
                known: false,
                found_now: false,
                executed: Err(refused),
            });
        }
        // A known person's record takes the referral as it is: their details stay as recorded.
        let command = if known {
            CaseCommand::Intake {
                client: None,
                referral,
            }
        } else {
            as_new
        };
        // On a known person's record the append tags it with the referral (see above).
        let matched = Matched {
            referred_as: referred_tag.filter(|_| known).into_iter().collect(),
            claims: claim.into_iter().collect(),
            ..Matched::default()
        };
        let executed = self
            .cases
            .execute_as_under(
                principal,
                (client_id, matched),
                &command,
                request,
                |check| {
                    if known {
                        policy::may_refer_known_person(principal, check.case, check.replay)
                    } else {
                        policy::may_command(principal, check.case, &command, check.replay)
                    }
                },
            )
            .await;
        Ok(Taken {
            client_id,
            known,
            found_now,
            executed,
        })
    }

    /// Where the ServiceRequest `id` of `organisation_id` was received before, if it was: its
    /// identifier and the record it went to.
    async fn received(
        &self,
        organisation_id: Uuid,
        id: Uuid,
    ) -> Result<Option<((String, String), ClientId)>, FhirError> {
        let client = self.cases.connection().await.map_err(AppError::from)?;
        let row = client
            .query_opt(
                "SELECT identifier_system, identifier_value, client_id FROM fhir_service_requests \
                 WHERE resource_id = $1 AND organisation_id = $2",
                &[&id, &organisation_id],
            )
            .await?;
        Ok(row.map(|row| {
            let client: Option<Uuid> = row.get(2);
            ((row.get(0), row.get(1)), ClientId(client.unwrap_or(id)))
        }))
    }

    /// The ServiceRequest `id` for the practice system that sent it; the read is audited.
    ///
    /// # Errors
    /// [`FhirError::Denied`] by [`policy::may_follow_fhir_referral`]; store failures.
    pub async fn service_request(
        &self,
        principal: &Principal,
        id: Uuid,
        read: &ReadContext,
    ) -> Result<Value, FhirError> {
        let view = self
            .read(principal, id, RecordView::FhirServiceRequest, read)
            .await?;
        Ok(view.service_request())
    }

    /// The Task of referral `id` (where it stands) for the practice system that sent it; the
    /// read is audited.
    ///
    /// # Errors
    /// As [`FhirReferrals::service_request`].
    pub async fn task(
        &self,
        principal: &Principal,
        id: Uuid,
        read: &ReadContext,
    ) -> Result<Value, FhirError> {
        let view = self.read(principal, id, RecordView::FhirTask, read).await?;
        Ok(view.task())
    }

    async fn read(
        &self,
        principal: &Principal,
        id: Uuid,
        what: RecordView,
        read: &ReadContext,
    ) -> Result<ReferralView, FhirError> {
        policy::may_submit_fhir_referral(principal)?;
        let (identifier, client_id) = self
            .received(principal.organisation_id, id)
            .await?
            .ok_or(Denied::NotFound)?;
        let loaded = self.cases.load(client_id).await?;
        policy::may_follow_fhir_referral(principal, &loaded, ReferralId(id))?;
        self.cases
            .audit_read(principal, client_id.0, what, read)
            .await?;
        ReferralView::of(&loaded, id, identifier).ok_or(FhirError::Denied(Denied::NotFound))
    }
}

/// The id of the referral a ServiceRequest with this identifier makes in this organisation.
pub fn resource_id(organisation_id: Uuid, system: &str, value: &str) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(b"casebook-fhir-service-request\0");
    hash.update(organisation_id.as_bytes());
    hash.update(system.as_bytes());
    hash.update([0]);
    hash.update(value.as_bytes());
    domain::derived_id(&hash.finalize())
}

/// Where a referral stands, as a practice sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PracticeStatus {
    Received,
    Accepted,
    Declined,
    Redirected,
    /// Accepted, and the episode it opened has ended.
    Completed,
}

impl PracticeStatus {
    /// The referral's status on the record, and whether the episode it opened has closed.
    pub fn of(status: ReferralStatus, episode_ended: bool) -> PracticeStatus {
        match status {
            ReferralStatus::Pending => PracticeStatus::Received,
            ReferralStatus::Accepted if episode_ended => PracticeStatus::Completed,
            ReferralStatus::Accepted => PracticeStatus::Accepted,
            ReferralStatus::Declined => PracticeStatus::Declined,
            ReferralStatus::Redirected => PracticeStatus::Redirected,
        }
    }

    /// Its code (`Task.businessStatus`).
    pub fn code(self) -> &'static str {
        match self {
            PracticeStatus::Received => "received",
            PracticeStatus::Accepted => "accepted",
            PracticeStatus::Declined => "declined",
            PracticeStatus::Redirected => "redirected",
            PracticeStatus::Completed => "completed",
        }
    }

    /// The FHIR `Task.status` it is.
    pub fn task_status(self) -> &'static str {
        match self {
            PracticeStatus::Received => "received",
            PracticeStatus::Accepted => "accepted",
            PracticeStatus::Declined | PracticeStatus::Redirected => "rejected",
            PracticeStatus::Completed => "completed",
        }
    }

    /// The FHIR `ServiceRequest.status` it leaves the request in.
    pub fn request_status(self) -> &'static str {
        match self {
            PracticeStatus::Received | PracticeStatus::Accepted => "active",
            PracticeStatus::Declined | PracticeStatus::Redirected => "revoked",
            PracticeStatus::Completed => "completed",
        }
    }
}

/// What the record holds of one referral received over FHIR.
struct ReferralView {
    id: Uuid,
    identifier: (String, String),
    referral: ReferralReceived,
    status: PracticeStatus,
}

impl ReferralView {
    fn of(loaded: &LoadedCase, id: Uuid, identifier: (String, String)) -> Option<ReferralView> {
        let referral_id = ReferralId(id);
        let referral = loaded.entries.values().find_map(|e| match e {
            CaseEvent::ReferralReceived(r) if r.referral_id == referral_id => Some(r.clone()),
            _ => None,
        })?;
        let status = *loaded.state.referrals.get(&referral_id)?;
        // Accepted and no longer the open episode: closed, or a later referral since.
        let later = loaded.latest_referral != Some(referral_id);
        let ended = loaded.state.status != CaseStatus::Open || later;
        Some(ReferralView {
            id,
            identifier,
            referral,
            status: PracticeStatus::of(status, ended),
        })
    }

    fn service_request(&self) -> Value {
        let reasons: Vec<Value> = self
            .referral
            .reasons
            .iter()
            .map(|need| need_concept(*need))
            .collect();
        json!({
            "resourceType": "ServiceRequest",
            "id": self.id.to_string(),
            "identifier": [{ "system": self.identifier.0, "value": self.identifier.1 }],
            "status": self.status.request_status(),
            "intent": "order",
            "code": { "coding": [{
                "system": SNOMED,
                "code": SOCIAL_PRESCRIBING_REFERRAL,
                "display": "Referral to social prescribing service",
            }] },
            // The person is named by the referral's own id, which stands for the record it
            // went to, not by their details (what a practice reads back holds nothing
            // personal) nor by a known person's record (whether the service knew the person is
            // not the practice's to learn: `policy::may_learn_known_person`).
            "subject": { "identifier": {
                "system": "https://casebook.invalid/fhir/Id/client",
                "value": self.id.to_string(),
            } },
            "priority": priority(self.referral.urgency),
            "reasonCode": reasons,
            "authoredOn": self.referral.received_on.to_string(),
        })
    }

    fn task(&self) -> Value {
        json!({
            "resourceType": "Task",
            "id": self.id.to_string(),
            "identifier": [{ "system": self.identifier.0, "value": self.identifier.1 }],
            "basedOn": [{ "reference": format!("ServiceRequest/{}", self.id) }],
            "status": self.status.task_status(),
            "businessStatus": { "coding": [{
                "system": REFERRAL_STATUS_SYSTEM,
                "code": self.status.code(),
            }], "text": self.status.code() },
            "intent": "order",
            "focus": { "reference": format!("ServiceRequest/{}", self.id) },
            "authoredOn": self.referral.received_on.to_string(),
        })
    }
}

/// A need as a reason code of Casebook's own.
fn need_concept(need: NeedDomain) -> Value {
    json!({ "coding": [{
        "system": NEED_SYSTEM,
        "code": domain::code(&need),
        "display": need.label(),
    }], "text": need.label() })
}

/// An urgency as a FHIR request priority.
fn priority(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::Routine => "routine",
        Urgency::Soon => "urgent",
        Urgency::Urgent => "asap",
    }
}
