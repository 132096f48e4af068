//! Reading one person's record: the record now, their journey as it was at a moment or as it
//! was known at a moment, a referral's status for its referrer, and who has read the record.
//!
//! Every read of a record is written to the read audit (`record_reads`) before it is answered,
//! whoever the caller is: the audit is part of the read, not of the HTTP handler.

use chrono::{DateTime, NaiveDate, Utc};
use domain::{
    AppointmentStatus, CaseEvent, CaseStatus, ClientId, ConnectionKind, ConnectionOutcome,
    ConsentScope, GoalId, GoalProgress, Instrument, NeedDomain, PersonalDetails, ReferralId,
    ReferralSource, ReferralStatus, ServiceId, Timepoint,
};
use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::access::{Principal, Role};
use crate::error::{AppError, Page};
use crate::journey::History;
use crate::{CaseService, JourneyEntry, JourneyView, policy};

/// Why a record is read: a code from a fixed list, never free text. The read audit is
/// append-only and unencrypted, so words typed there (a name, a diagnosis) would be kept in
/// every copy of the database for ever; a code cannot carry them. The list is also the
/// database's (`V15__read_purpose_codes.sql`): a code added here needs a migration there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadPurpose {
    /// Caring for the person: the link worker's own work with them.
    DirectCare,
    /// A team lead's or supervisor's review of the case.
    Supervision,
    /// An audit of records or of who read them.
    Audit,
    /// A safeguarding concern.
    Safeguarding,
    /// The person asked for their own record.
    SubjectAccessRequest,
    /// A complaint about the service.
    Complaint,
    /// Checking or putting right what was recorded.
    DataQuality,
    /// None of the above.
    Other,
}

impl ReadPurpose {
    /// Every purpose, in the order above.
    pub const ALL: [ReadPurpose; 8] = [
        ReadPurpose::DirectCare,
        ReadPurpose::Supervision,
        ReadPurpose::Audit,
        ReadPurpose::Safeguarding,
        ReadPurpose::SubjectAccessRequest,
        ReadPurpose::Complaint,
        ReadPurpose::DataQuality,
        ReadPurpose::Other,
    ];

    /// The code, as the API and the read audit write it.
    pub fn code(self) -> &'static str {
        match self {
            ReadPurpose::DirectCare => "direct_care",
            ReadPurpose::Supervision => "supervision",
            ReadPurpose::Audit => "audit",
            ReadPurpose::Safeguarding => "safeguarding",
            ReadPurpose::SubjectAccessRequest => "subject_access_request",
            ReadPurpose::Complaint => "complaint",
            ReadPurpose::DataQuality => "data_quality",
            ReadPurpose::Other => "other",
        }
    }
}

impl std::str::FromStr for ReadPurpose {
    type Err = String;

    fn from_str(code: &str) -> Result<ReadPurpose, String> {
        crate::by_code(&ReadPurpose::ALL, code, ReadPurpose::code)
            .ok_or_else(|| format!("not a purpose of a read: {code}"))
    }
}

/// The id of the request being served (the HTTP layer sets it on every request, from
/// `X-Request-Id` or fresh), kept with what the request writes and reads.
#[derive(Clone, Copy, Debug)]
pub struct RequestId(pub Uuid);

/// Why and in which request a record is read: kept with the read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadContext {
    /// What the reader says the read is for (none: not said).
    pub purpose: Option<ReadPurpose>,
    /// The request the read answers.
    pub request_id: Uuid,
}

impl ReadContext {
    /// A read for `purpose` in request `request_id`.
    pub fn new(purpose: Option<ReadPurpose>, request_id: Uuid) -> ReadContext {
        ReadContext {
            purpose,
            request_id,
        }
    }
}

/// Which view of a record was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordView {
    Record,
    Journey,
    ReferralStatus,
    /// The read audit itself: who read the record (reading it is audited too).
    Reads,
    /// The person's name on a caseload or triage queue ([`crate::names`]).
    Caseload,
    /// A referral received over FHIR, read back by the practice system that sent it.
    FhirServiceRequest,
    /// The Task of a referral received over FHIR: where it stands.
    FhirTask,
    /// The person's messages to their GP practice, listed for an administrator
    /// ([`crate::gp_outbox::GpOutboxAdmin`]).
    GpMessages,
    /// The person's appointment reminders, listed for an administrator
    /// ([`crate::reminders::ReminderAdmin`]).
    Reminders,
    /// A connection to a directory service, listed for the service's own staff
    /// ([`crate::provider`]).
    ProviderConnections,
}

impl RecordView {
    /// Every view, in the order declared.
    pub const ALL: [RecordView; 10] = [
        RecordView::Record,
        RecordView::Journey,
        RecordView::ReferralStatus,
        RecordView::Reads,
        RecordView::Caseload,
        RecordView::FhirServiceRequest,
        RecordView::FhirTask,
        RecordView::GpMessages,
        RecordView::Reminders,
        RecordView::ProviderConnections,
    ];

    /// The code, as the API and the read audit write it.
    pub fn code(self) -> &'static str {
        match self {
            RecordView::Record => "record",
            RecordView::Journey => "journey",
            RecordView::ReferralStatus => "referral_status",
            RecordView::Reads => "reads",
            RecordView::Caseload => "caseload",
            RecordView::FhirServiceRequest => "fhir_service_request",
            RecordView::FhirTask => "fhir_task",
            RecordView::GpMessages => "gp_messages",
            RecordView::Reminders => "reminders",
            RecordView::ProviderConnections => "provider_connections",
        }
    }
}

impl std::str::FromStr for RecordView {
    type Err = String;

    fn from_str(code: &str) -> Result<RecordView, String> {
        crate::by_code(&RecordView::ALL, code, RecordView::code)
            .ok_or_else(|| format!("not a view of a record: {code}"))
    }
}

/// A referral as the record shows it (corrections applied).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReferralSummary {
    pub referral_id: Uuid,
    pub status: ReferralStatus,
    pub source: ReferralSource,
    pub reasons: Vec<NeedDomain>,
    pub received_on: NaiveDate,
    /// How soon the referrer asked for contact.
    pub urgency: domain::Urgency,
    /// Who referred, by name as they gave it (personal data: erased with the person).
    pub referrer_name: Option<String>,
    /// The referrer's practice or organisation.
    pub referrer_organisation: Option<String>,
    /// The referrer's note (personal data: erased with the person).
    pub note: Option<String>,
    /// Where it was redirected, in words: the directory service's name, the recording rules'
    /// name for a destination code, or the words of a redirection recorded before codes.
    pub redirected_to: Option<String>,
}

/// A client's record now, folded from the log with corrections applied.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientRecord {
    pub client_id: Uuid,
    /// The version to send as `If-Match`.
    pub version: i64,
    pub status: CaseStatus,
    /// Personal details as registered, with corrections applied; null once erased.
    pub personal: Option<PersonalDetails>,
    /// The person's personal data was erased: every personal field of the record reads as erased.
    pub erased: bool,
    /// Other records of the organisation holding this person's NHS number (not erased) that
    /// the caller may open, in id order: the same person referred again where the referrer was
    /// not told the service knew them (their referral kept as someone new's), for staff to
    /// check and correct. Such records are not matched to a referral by the number while there
    /// are two.
    pub shares_nhs_number_with: Vec<Uuid>,
    /// How many more records hold the number that the caller may not open (another team's
    /// case, or one not yet assigned, for a link worker): a team lead of theirs sees them.
    pub shares_nhs_number_elsewhere: usize,
    pub area: Option<String>,
    pub link_worker_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub referrals: Vec<ReferralSummary>,
    /// Consent scopes in force.
    pub consents: Vec<String>,
    /// Appointments booked and not yet settled.
    pub open_appointments: Vec<Uuid>,
    pub contacts: usize,
    pub goals: usize,
    pub assessments: usize,
    pub connections: usize,
    /// Case notes, the important (pinned) ones first, then the newest first; `[erased]` once
    /// the person's personal data is erased.
    pub notes: Vec<crate::safeguarding::CaseNote>,
    /// Safeguarding concerns, the open ones first, then the newest first.
    pub safeguarding_concerns: Vec<crate::safeguarding::SafeguardingConcern>,
    /// The risk flag: a safeguarding concern is open on the case.
    pub at_risk: bool,
    /// The tags the case carries (`projections/tags/`), in code order.
    pub tags: Vec<crate::tags::CaseTag>,
    /// Lone-working plans for home visits, newest first, with their check-ins.
    pub lone_working: Vec<crate::lone_working::LoneWorkingPlan>,
    /// What matters to the person, their needs, goals, consents in force and assessments, for
    /// the console's pages. Not in the API's record, whose shape is the published contract: an
    /// API client reads them from the journey.
    #[serde(skip)]
    pub plan: Plan,
    /// Each onward connection, oldest first, with what came of it (for the web console; not
    /// part of the API's answer).
    #[serde(skip)]
    pub onward: Vec<OnwardConnection>,
}

/// A person's plan as the record holds it now (corrections applied), oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// What matters to the person, as last recorded.
    pub what_matters: Option<String>,
    pub needs: Vec<PlannedNeed>,
    pub goals: Vec<PlannedGoal>,
    /// Each consent in force, with the onward services it names (none: any service).
    pub consents: Vec<(ConsentScope, Vec<ServiceId>)>,
    pub assessments: Vec<TakenAssessment>,
    /// The appointments still booked (not attended, missed or cancelled), oldest booking
    /// first, as corrected.
    pub booked: Vec<BookedAppointment>,
    /// The demographics as last recorded (what the person told us, and what reports count
    /// them by, derived when it was recorded); none before the first recording or once erased.
    pub demographics: Option<domain::DemographicsRecorded>,
}

/// An appointment still booked.
#[derive(Clone, Debug, PartialEq)]
pub struct BookedAppointment {
    pub appointment_id: Uuid,
    pub scheduled_for: chrono::DateTime<chrono::Utc>,
    pub mode: domain::ContactMode,
    /// The UK day from which whether the person came may be recorded: the appointment's own
    /// (the domain's rule, `domain::check_timing`).
    pub outcome_from: NaiveDate,
}

/// A need identified.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedNeed {
    pub need: NeedDomain,
    pub note: Option<String>,
}

/// A goal agreed, with its latest review.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedGoal {
    pub goal_id: GoalId,
    pub description: String,
    pub need: Option<NeedDomain>,
    /// The latest review's progress; none before the first review.
    pub progress: Option<GoalProgress>,
    pub review_note: Option<String>,
}

/// An assessment taken, with its scores.
#[derive(Clone, Debug, PartialEq)]
pub struct TakenAssessment {
    pub instrument: Instrument,
    pub timepoint: Timepoint,
    pub administered_on: NaiveDate,
    /// Its score by each measure of the latest outcome rules that scores its instrument (one
    /// for most; four for ONS4), as the reports score it; none for an instrument no measure
    /// scores.
    pub scores: Vec<AssessmentScore>,
}

/// An assessment's score by one measure of the outcome rules.
#[derive(Clone, Debug, PartialEq)]
pub struct AssessmentScore {
    /// The measure's name in the rules (`swemwbs`, `ons4_anxiety`).
    pub measure: String,
    pub value: f64,
    /// The band the score falls in, when the measure has bands (`high`, `lonely`).
    pub band: Option<String>,
}

/// The latest outcome rules this build knows, read once (none when they do not load: then no
/// score is shown, rather than a record refused).
fn outcome_rules() -> Option<&'static projector::rules::Rules> {
    use projector::rules::Rules;
    static RULES: std::sync::OnceLock<Option<Rules>> = std::sync::OnceLock::new();
    RULES
        .get_or_init(|| Rules::load(Rules::latest_version()).ok())
        .as_ref()
}

/// The scores of an assessment by the latest outcome rules.
fn scores(assessment: &domain::AssessmentRecorded) -> Vec<AssessmentScore> {
    let Some(rules) = outcome_rules() else {
        return Vec::new();
    };
    rules
        .measures
        .iter()
        .filter_map(|measure| {
            let value = rules.score(
                measure,
                assessment.instrument,
                &assessment.answers,
                assessment.licensor_score,
            )?;
            Some(AssessmentScore {
                measure: measure.name.clone(),
                value,
                band: measure.band(value).map(str::to_owned),
            })
        })
        .collect()
}

/// An onward connection as the record shows it (corrections applied).
#[derive(Clone, Debug, PartialEq)]
pub struct OnwardConnection {
    pub connection_id: Uuid,
    pub service_id: Uuid,
    /// The service's name in the directory, when it is listed there.
    pub service_name: Option<String>,
    pub need: NeedDomain,
    pub kind: ConnectionKind,
    /// What came of it, as last recorded.
    pub outcome: Option<ConnectionOutcome>,
    /// For a waiting list: how many weeks.
    pub waiting_weeks: Option<u32>,
    /// The service's own answer (accepted, declined, started or not), when it has given one.
    pub provider_answer: Option<domain::ProviderAnswer>,
}

impl OnwardConnection {
    /// Whether its outcome is still to come: none recorded yet, or a waiting list.
    pub fn open(&self) -> bool {
        matches!(self.outcome, None | Some(ConnectionOutcome::WaitingList))
    }
}

/// A page of a client's journey.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JourneyPage {
    pub client_id: Uuid,
    /// What the selected events add up to.
    pub status: CaseStatus,
    pub link_worker_id: Option<Uuid>,
    pub entries: Vec<JourneyEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// A referral's status, for its referrer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReferralStatusView {
    pub client_id: Uuid,
    pub referral_id: Uuid,
    pub status: ReferralStatus,
}

/// One read of a client's record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordRead {
    pub read_id: i64,
    pub staff_id: Uuid,
    pub role: Role,
    /// What was read: `reads` is this list, `caseload` the name on a caseload or triage queue.
    pub view: RecordView,
    /// Why it was read, as the reader said.
    pub purpose: Option<ReadPurpose>,
    /// Why it was read in the reader's own words: only reads recorded before purposes were
    /// coded have it.
    pub purpose_text: Option<String>,
    pub request_id: Uuid,
    pub read_at: DateTime<Utc>,
}

/// A page of reads.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordReadPage {
    pub items: Vec<RecordRead>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// Writes reads to the read audit in one statement, one row a person read: `(organisation,
/// client)` (the organisation is the record's), by `principal`, as `view`, for `read`. The one
/// writer of the read audit: a single record, a list, a caseload's names, a provider's people.
///
/// # Errors
/// A database failure.
pub(crate) async fn write_reads(
    client: &impl GenericClient,
    principal: &Principal,
    reads: &[(Uuid, Uuid)],
    view: RecordView,
    read: &ReadContext,
) -> Result<(), AppError> {
    if reads.is_empty() {
        return Ok(());
    }
    let (organisations, clients): (Vec<Uuid>, Vec<Uuid>) = reads.iter().copied().unzip();
    client
        .execute(
            "INSERT INTO record_reads (organisation_id, client_id, staff_id, role, view, purpose_code, request_id) \
             SELECT o, c, $3, $4, $5, $6, $7 FROM unnest($1::uuid[], $2::uuid[]) AS u(o, c)",
            &[
                &organisations,
                &clients,
                &principal.staff_id.0,
                &principal.role.as_str(),
                &view.code(),
                &read.purpose.map(ReadPurpose::code),
                &read.request_id,
            ],
        )
        .await?;
    Ok(())
}

impl CaseService {
    /// Writes a read of `client_id` (of the caller's organisation) to the read audit, before it
    /// is answered.
    pub(crate) async fn audit_read(
        &self,
        principal: &Principal,
        client_id: Uuid,
        view: RecordView,
        read: &ReadContext,
    ) -> Result<(), AppError> {
        let client = self.store().pool().get().await?;
        let reads = [(principal.organisation_id, client_id)];
        write_reads(&**client, principal, &reads, view, read).await
    }

    /// A client's record (status, personal details, referrals, consents and counts) for whoever
    /// may read it, from one read of the stream; the read is audited.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_read_record`]; store failures.
    pub async fn record(
        &self,
        principal: &Principal,
        client_id: ClientId,
        read: &ReadContext,
    ) -> Result<ClientRecord, AppError> {
        let history = History::read(self.store(), client_id).await?;
        let loaded = history.loaded();
        policy::may_read_record(principal, &loaded)?;
        self.audit_read(principal, client_id.0, RecordView::Record, read)
            .await?;
        let mut personal = None;
        let mut redirected_services = Vec::new();
        let mut described = Vec::new();
        let mut area = None;
        let mut referrals = Vec::new();
        let mut plan = Plan::default();
        let mut onward: Vec<OnwardConnection> = Vec::new();
        for event in history.corrected() {
            match event {
                CaseEvent::ClientRegistered(registered) => {
                    personal = Some(registered.personal);
                    area = Some(registered.area);
                }
                CaseEvent::ReferralReceived(referral) => referrals.push(ReferralSummary {
                    referral_id: referral.referral_id.0,
                    status: loaded
                        .state
                        .referrals
                        .get(&referral.referral_id)
                        .copied()
                        .unwrap_or(ReferralStatus::Pending),
                    source: referral.source,
                    reasons: referral.reasons,
                    received_on: referral.received_on,
                    urgency: referral.urgency,
                    referrer_name: referral.referrer.name,
                    referrer_organisation: referral.referrer.organisation,
                    note: referral.note,
                    redirected_to: None,
                }),
                CaseEvent::ReferralRedirected(redirected) => {
                    if let Some(referral) = referrals
                        .iter_mut()
                        .find(|r| r.referral_id == redirected.referral_id.0)
                    {
                        referral.redirected_to = Some(match redirected.destination {
                            domain::Destination::Service { service_id } => {
                                redirected_services.push(service_id.0);
                                service_id.0.to_string()
                            }
                            domain::Destination::Coded { code } => self
                                .redirect_destinations()
                                .iter()
                                .find(|d| d.code == code)
                                .map_or(code, |d| d.name.clone()),
                            // Words of a redirection from before codes: they may name
                            // someone, so they go with the person's erasure.
                            domain::Destination::Described { text } => {
                                described.push(redirected.referral_id.0);
                                text
                            }
                        });
                    }
                }
                CaseEvent::WhatMattersRecorded(c) => plan.what_matters = Some(c.text),
                CaseEvent::DemographicsRecorded(c) => plan.demographics = Some(c),
                CaseEvent::AppointmentBooked(c) => plan.booked.push(BookedAppointment {
                    appointment_id: c.appointment_id.0,
                    scheduled_for: c.scheduled_for,
                    mode: c.mode,
                    outcome_from: domain::calendar::today(c.scheduled_for),
                }),
                CaseEvent::NeedIdentified(c) => plan.needs.push(PlannedNeed {
                    need: c.need,
                    note: c.note,
                }),
                CaseEvent::GoalSet(c) => plan.goals.push(PlannedGoal {
                    goal_id: c.goal_id,
                    description: c.description,
                    need: c.need,
                    progress: None,
                    review_note: None,
                }),
                CaseEvent::GoalReviewed(c) => {
                    if let Some(goal) = plan.goals.iter_mut().find(|g| g.goal_id == c.goal_id) {
                        goal.progress = Some(c.progress);
                        goal.review_note = c.note;
                    }
                }
                CaseEvent::AssessmentRecorded(c) => plan.assessments.push(TakenAssessment {
                    instrument: c.instrument,
                    timepoint: c.timepoint,
                    administered_on: c.administered_on,
                    scores: scores(&c),
                }),
                CaseEvent::OnwardConnectionMade(made) => onward.push(OnwardConnection {
                    connection_id: made.connection_id.0,
                    service_id: made.service_id.0,
                    service_name: None,
                    need: made.need,
                    kind: made.kind,
                    outcome: None,
                    waiting_weeks: None,
                    provider_answer: None,
                }),
                CaseEvent::ConnectionAcceptedByProvider(answer) => set_answer(
                    &mut onward,
                    answer.connection_id,
                    domain::ProviderAnswer::Accepted,
                ),
                CaseEvent::ConnectionDeclinedByProvider(answer) => set_answer(
                    &mut onward,
                    answer.connection_id,
                    domain::ProviderAnswer::Declined,
                ),
                CaseEvent::ConnectionStartRecorded(answer) => set_answer(
                    &mut onward,
                    answer.connection_id,
                    if answer.started {
                        domain::ProviderAnswer::Started
                    } else {
                        domain::ProviderAnswer::NotStarted
                    },
                ),
                CaseEvent::ConnectionOutcomeRecorded(outcome) => {
                    if let Some(c) = onward
                        .iter_mut()
                        .find(|c| c.connection_id == outcome.connection_id.0)
                    {
                        c.outcome = Some(outcome.outcome);
                        c.waiting_weeks = outcome.waiting_weeks;
                    }
                }
                _ => {}
            }
        }
        self.name_services(&mut onward).await?;
        // A redirection to a directory service reads as the service's name.
        for (service_id, name) in self.service_names(&redirected_services).await? {
            let id = service_id.to_string();
            for referral in referrals
                .iter_mut()
                .filter(|r| r.redirected_to.as_deref() == Some(id.as_str()))
            {
                referral.redirected_to = Some(name.clone());
            }
        }
        let safeguarding = crate::safeguarding::notes_and_concerns(&history);
        let state = &loaded.state;
        if state.erased {
            plan.demographics = None;
        }
        plan.booked.retain(|a| {
            state
                .appointments
                .get(&domain::AppointmentId(a.appointment_id))
                == Some(&AppointmentStatus::Booked)
        });
        plan.consents = state
            .consents
            .iter()
            .map(|(scope, services)| (*scope, services.clone()))
            .collect();
        let personal = if state.erased { None } else { personal };
        if state.erased {
            for referral in referrals
                .iter_mut()
                .filter(|r| described.contains(&r.referral_id))
            {
                referral.redirected_to = Some(domain::ERASED.to_owned());
            }
        }
        let (shares_nhs_number_with, shares_nhs_number_elsewhere) =
            match personal.as_ref().and_then(|p| p.nhs_number.as_ref()) {
                Some(number) => self.sharing(principal, client_id, number).await,
                None => (Vec::new(), 0),
            };
        Ok(ClientRecord {
            client_id: client_id.0,
            version: loaded.version,
            status: state.status,
            personal,
            erased: state.erased,
            shares_nhs_number_with,
            shares_nhs_number_elsewhere,
            area,
            link_worker_id: state.link_worker.map(|(w, _)| w.0),
            team_id: state.link_worker.map(|(_, t)| t.0),
            referrals,
            consents: state.consents.keys().map(domain::code).collect(),
            open_appointments: state
                .appointments
                .iter()
                .filter(|(_, s)| **s == AppointmentStatus::Booked)
                .map(|(id, _)| id.0)
                .collect(),
            contacts: state.contacts.len(),
            goals: state.goals.len(),
            assessments: state.assessments.len(),
            connections: state.connections.len(),
            at_risk: safeguarding.concerns.iter().any(|c| c.open),
            tags: crate::tags::labelled(&state.tags),
            lone_working: crate::lone_working::plans(&history, self.clock().now()),
            notes: safeguarding.notes,
            safeguarding_concerns: safeguarding.concerns,
            plan,
            onward,
        })
    }

    /// The other records of the caller's organisation holding `number` (each loaded and checked:
    /// the organisation's, not erased, holding it now) that the caller may open, and how many
    /// more there are. Only staff who are told who is known are told (all who read records
    /// are). A failure to read them is logged and shows none: the record is still answered.
    async fn sharing(
        &self,
        principal: &Principal,
        client_id: ClientId,
        number: &domain::NhsNumber,
    ) -> (Vec<Uuid>, usize) {
        if !policy::may_learn_known_person(principal) {
            return (Vec::new(), 0);
        }
        let organisation_id = principal.organisation_id;
        let holding = async {
            let others =
                crate::matching::others_holding(self.store(), organisation_id, client_id, number)
                    .await
                    .map_err(|e| e.to_string())?;
            if others.is_empty() {
                return Ok(Vec::new());
            }
            crate::matching::holding(self, organisation_id, number, &others)
                .await
                .map_err(|e| e.to_string())
        };
        match holding.await {
            Ok(holding) => {
                let (open, closed): (Vec<_>, Vec<_>) = holding
                    .iter()
                    .partition(|(_, loaded)| policy::may_read_record(principal, loaded).is_ok());
                (open.iter().map(|(id, _)| id.0).collect(), closed.len())
            }
            Err(error) => {
                tracing::warn!(%error, "the records sharing an NHS number could not be read");
                (Vec::new(), 0)
            }
        }
    }

    /// Names each connection's service as the directory lists it now.
    async fn name_services(&self, onward: &mut [OnwardConnection]) -> Result<(), AppError> {
        let ids: Vec<Uuid> = onward.iter().map(|c| c.service_id).collect();
        for (id, name) in self.service_names(&ids).await? {
            for c in onward.iter_mut().filter(|c| c.service_id == id) {
                c.service_name = Some(name.clone());
            }
        }
        Ok(())
    }

    /// The directory's names of the services `ids`, those it lists.
    async fn service_names(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>, AppError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.store().pool().get().await?;
        let rows = client
            .query(
                "SELECT service_id, name FROM directory_services WHERE service_id = ANY($1)",
                &[&ids],
            )
            .await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// A page of a client's journey as `view` selects it (the policy is asked about the record
    /// now), from one read of the stream; the read is audited.
    ///
    /// # Errors
    /// As [`CaseService::record`].
    pub async fn journey_page(
        &self,
        principal: &Principal,
        client_id: ClientId,
        view: JourneyView,
        page: Page<i64>,
        read: &ReadContext,
    ) -> Result<JourneyPage, AppError> {
        let history = History::read(self.store(), client_id).await?;
        policy::may_read_record(principal, &history.loaded())?;
        self.audit_read(principal, client_id.0, RecordView::Journey, read)
            .await?;
        let journey = history.journey(client_id, view);
        let after = page.cursor.unwrap_or(0);
        let mut entries: Vec<JourneyEntry> = journey
            .entries
            .into_iter()
            .filter(|e| e.stream_version > after)
            .take(page.limit as usize + 1)
            .collect();
        let more = entries.len() as i64 > page.limit;
        entries.truncate(page.limit as usize);
        Ok(JourneyPage {
            client_id: client_id.0,
            status: journey.status,
            link_worker_id: journey.link_worker_id,
            next_cursor: if more {
                entries.last().map(|e| e.stream_version)
            } else {
                None
            },
            entries,
        })
    }

    /// Where a referral stands: for the referrer who made it (no personal data), and for whoever
    /// may read the record; the read is audited.
    ///
    /// A referral of someone new that went to the record the organisation already held for the
    /// person (`crate::intake`) is followed by the client id its referrer chose, as any other:
    /// the view names that id, except to those told which record it went to
    /// ([`policy::may_learn_known_person`]).
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_read_referral`], [`AppError::NotFound`] for a
    /// referral the record does not have; store failures.
    pub async fn referral_status(
        &self,
        principal: &Principal,
        client_id: ClientId,
        referral_id: ReferralId,
        read: &ReadContext,
    ) -> Result<ReferralStatusView, AppError> {
        let mut loaded = self.load(client_id).await?;
        let mut record = client_id;
        if !loaded.state.referrals.contains_key(&referral_id)
            && let Some((found, on_record)) = crate::matching::referred_as(
                self,
                principal.organisation_id,
                client_id,
                referral_id,
            )
            .await?
        {
            (record, loaded) = (found, on_record);
        }
        policy::may_read_referral(principal, &loaded, referral_id)?;
        let client_id = if policy::may_learn_known_person(principal) {
            record
        } else {
            client_id
        };
        let status = loaded
            .state
            .referrals
            .get(&referral_id)
            .copied()
            .ok_or_else(|| AppError::NotFound("no such referral for this client".into()))?;
        self.audit_read(principal, record.0, RecordView::ReferralStatus, read)
            .await?;
        Ok(ReferralStatusView {
            client_id: client_id.0,
            referral_id: referral_id.0,
            status,
        })
    }

    /// The names of the staff of the caller's organisation (at most 10,000), for pages that
    /// show who did or read what.
    ///
    /// # Errors
    /// Store failures.
    pub async fn colleague_names(
        &self,
        principal: &Principal,
    ) -> Result<std::collections::HashMap<Uuid, String>, AppError> {
        let client = self.store().pool().get().await?;
        let staff =
            crate::access::list_staff(&**client, principal.organisation_id, None, 10_000).await?;
        Ok(staff.into_iter().map(|s| (s.staff_id, s.name)).collect())
    }

    /// The colleagues a lone worker may name as their buddy ([`policy::may_be_buddy`], active),
    /// by id, with their names: what the console offers to choose from.
    ///
    /// # Errors
    /// A store failure.
    pub async fn possible_buddies(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(Uuid, String)>, AppError> {
        let client = self.store().pool().get().await?;
        let staff =
            crate::access::list_staff(&**client, principal.organisation_id, None, 10_000).await?;
        Ok(staff
            .into_iter()
            .filter(|s| s.active && policy::may_be_buddy(s.role))
            .map(|s| (s.staff_id, s.name))
            .collect())
    }

    /// Who read a client's record and when, for auditors. Reading the read audit is itself a
    /// read of the record, audited (as `reads`) before it is answered, so the page shows it.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_read_audit`]; store failures.
    pub async fn reads(
        &self,
        principal: &Principal,
        client_id: ClientId,
        page: Page<i64>,
        read: &ReadContext,
    ) -> Result<RecordReadPage, AppError> {
        // The role before the log is touched.
        policy::require(principal, &[Role::Auditor], "the read audit")?;
        let loaded = self.load(client_id).await?;
        policy::may_read_audit(principal, &loaded)?;
        self.audit_read(principal, client_id.0, RecordView::Reads, read)
            .await?;
        let client = self.store().pool().get().await?;
        let rows = client
            .query(
                "SELECT read_id, staff_id, role, view, purpose_code, purpose, request_id, read_at \
                 FROM record_reads \
                 WHERE organisation_id = $1 AND client_id = $2 AND read_id > $3 ORDER BY read_id LIMIT $4",
                &[
                    &principal.organisation_id,
                    &client_id.0,
                    &page.cursor.unwrap_or(0),
                    &(page.limit + 1),
                ],
            )
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        let unreadable = |e: String| AppError::Store(eventstore::StoreError::InvalidPayload(e));
        for row in &rows {
            let role: String = row.get(2);
            let purpose: Option<String> = row.get(4);
            let view: String = row.get(3);
            items.push(RecordRead {
                read_id: row.get(0),
                staff_id: row.get(1),
                role: role.parse().map_err(unreadable)?,
                view: view.parse().map_err(unreadable)?,
                purpose: purpose.map(|p| p.parse()).transpose().map_err(unreadable)?,
                purpose_text: row.get(5),
                request_id: row.get(6),
                read_at: row.get(7),
            });
        }
        let more = items.len() as i64 > page.limit;
        items.truncate(page.limit as usize);
        Ok(RecordReadPage {
            next_cursor: if more {
                items.last().map(|r| r.read_id)
            } else {
                None
            },
            items,
        })
    }
}

/// Puts a service's answer on the connection it answers.
fn set_answer(
    onward: &mut [OnwardConnection],
    connection_id: domain::ConnectionId,
    answer: domain::ProviderAnswer,
) {
    if let Some(c) = onward
        .iter_mut()
        .find(|c| c.connection_id == connection_id.0)
    {
        c.provider_answer = Some(answer);
    }
}
