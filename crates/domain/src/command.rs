//! What users ask for on a client's record. Most commands carry exactly the data of the event
//! they would produce; `decide` checks them against the record's state.

use crate::codes::TransferReason;
use crate::event::*;
use crate::ids::{StaffId, TeamId};

/// Moving a case to another link worker (the current one is known from the record).
#[derive(Clone, Debug, PartialEq)]
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
}
