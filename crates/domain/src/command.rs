//! What users ask for on a client's record. Most commands carry exactly the data of the event
//! they would produce; `decide` checks them against the record's state.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::CaseError;
use crate::codes::TransferReason;
use crate::event::*;
use crate::ids::{StaffId, TeamId};
use crate::safeguarding::*;
use crate::timing::ALLOWED_SKEW_SECONDS;

/// Moving a case to another link worker (the current one is known from the record).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TransferCase {
    pub to_link_worker_id: StaffId,
    pub team_id: TeamId,
    pub reason: TransferReason,
}

/// A request to change a client's record.
#[derive(Clone, Debug, PartialEq)]
pub enum CaseCommand {
    /// A referral through the single point of access, for a new client (with their details) or
    /// a known one (`client: None`).
    Intake {
        client: Option<Box<ClientRegistered>>,
        referral: ReferralReceived,
    },
    RecordConsent(ConsentRecorded),
    WithdrawConsent(ConsentWithdrawn),
    AcceptReferral(ReferralAccepted),
    DeclineReferral(ReferralDeclined),
    RedirectReferral(ReferralRedirected),
    AssignLinkWorker(LinkWorkerAssigned),
    TransferCase(TransferCase),
    BookAppointment(AppointmentBooked),
    RecordAttendance(AppointmentAttended),
    RecordDidNotAttend(AppointmentNotAttended),
    CancelAppointment(AppointmentCancelled),
    RecordContact(ContactRecorded),
    RecordWhatMatters(WhatMattersRecorded),
    IdentifyNeed(NeedIdentified),
    SetGoal(GoalSet),
    ReviewGoal(GoalReviewed),
    RecordAssessment(AssessmentRecorded),
    MakeConnection(OnwardConnectionMade),
    RecordConnectionOutcome(ConnectionOutcomeRecorded),
    RecordServiceGap(ServiceGapRecorded),
    CloseCase(CaseClosed),
    ReopenCase(CaseReopened),
    CorrectEntry(EntryCorrected),
    SendGpMessage(GpMessageSent),
    /// Crypto-shredding: an administrator's, for the end of retention or a lawful erasure.
    EraseClient(ClientErased),
    AddNote(NoteAdded),
    PinNote(NotePinned),
    UnpinNote(NoteUnpinned),
    RaiseConcern(SafeguardingConcernRaised),
    UpdateConcern(SafeguardingConcernUpdated),
    CloseConcern(SafeguardingConcernClosed),
    /// A directory service's answer to a connection made to it (its provider staff's).
    AnswerConnection(crate::provider::ProviderCommand),
    /// Demographics for equity reporting, with what reports count by (derived by the caller).
    RecordDemographics(crate::demographics::DemographicsRecorded),
    /// Put a tag of the service's list on the case.
    TagCase(crate::tags::CaseTagged),
    /// Take a tag off the case.
    UntagCase(crate::tags::CaseUntagged),
    /// A lone-working plan for a booked home visit.
    RecordLoneWorkingPlan(crate::lone_working::LoneWorkingPlanRecorded),
    /// The link worker checked in after a home visit with a plan.
    CheckInLoneWorking(crate::lone_working::LoneWorkingCheckedIn),
}

impl CaseCommand {
    /// When the recorded thing happened, when the command says so (a contact's time, an
    /// assessment's or a referral's date): the event's `occurred_at`, which "as it was at" views
    /// go by. Otherwise it happened when the caller says, or when it was recorded.
    pub fn occurred_at(&self) -> Option<DateTime<Utc>> {
        self.own_date().map(|(at, _)| at)
    }

    /// The day of a command dated by a day alone (a referral's, an assessment's): its own date
    /// is that day's UTC midnight, and whether it is to come is judged by the UK calendar.
    pub fn own_day(&self) -> Option<NaiveDate> {
        match self {
            CaseCommand::Intake { referral, .. } => Some(referral.received_on),
            CaseCommand::RecordAssessment(assessment) => Some(assessment.administered_on),
            _ => None,
        }
    }

    /// The command's own date, with the field that carries it.
    pub fn own_date(&self) -> Option<(DateTime<Utc>, &'static str)> {
        let midnight = |date: NaiveDate| date.and_time(NaiveTime::MIN).and_utc();
        match self {
            CaseCommand::Intake { referral, .. } => {
                Some((midnight(referral.received_on), "referral.received_on"))
            }
            CaseCommand::RecordContact(contact) => Some((contact.contacted_at, "contacted_at")),
            CaseCommand::RecordAssessment(assessment) => {
                Some((midnight(assessment.administered_on), "administered_on"))
            }
            _ => None,
        }
    }

    /// Refuses dates that cannot be in the future (a referral received tomorrow, a contact next
    /// week, a date of birth to come), given the time now. Appointments may be booked ahead. A
    /// day is to come when it is after today on the UK calendar.
    ///
    /// # Errors
    /// [`CaseError::Invalid`] naming the field.
    pub fn check_dates(&self, now: DateTime<Utc>) -> Result<(), CaseError> {
        if let Some(told_at) = crate::safeguarding::told_at(self)
            && told_at > now + Duration::seconds(ALLOWED_SKEW_SECONDS)
        {
            return Err(CaseError::invalid(
                "told_at",
                format!("{} is in the future", crate::calendar::describe(told_at)),
            ));
        }
        let today = crate::calendar::today(now);
        let future_date = |field: &'static str, date: NaiveDate| {
            if date > today {
                Err(CaseError::invalid(
                    field,
                    format!("{date} is in the future"),
                ))
            } else {
                Ok(())
            }
        };
        match self {
            CaseCommand::Intake { client, referral } => {
                future_date("referral.received_on", referral.received_on)?;
                if let Some(born) = client.as_ref().and_then(|c| c.personal.date_of_birth) {
                    future_date("client.personal.date_of_birth", born)?;
                    if crate::timing::too_early(born) {
                        return Err(CaseError::invalid(
                            "client.personal.date_of_birth",
                            format!(
                                "{born} is before {}: give the real date",
                                crate::timing::EARLIEST_YEAR
                            ),
                        ));
                    }
                }
                Ok(())
            }
            CaseCommand::RecordContact(contact) => {
                if contact.contacted_at > now + Duration::seconds(ALLOWED_SKEW_SECONDS) {
                    Err(CaseError::invalid(
                        "contacted_at",
                        format!(
                            "{} is in the future",
                            crate::calendar::describe(contact.contacted_at)
                        ),
                    ))
                } else {
                    Ok(())
                }
            }
            CaseCommand::RecordAssessment(assessment) => {
                future_date("administered_on", assessment.administered_on)
            }
            _ => Ok(()),
        }
    }
}
