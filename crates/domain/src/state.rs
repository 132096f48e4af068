//! The record's state as `decide` needs it, folded from events by `evolve`, which holds no
//! rules and never fails for an event already in the log.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};

use crate::Instrument;
use crate::codes::ConsentScope;
use crate::event::{CaseEvent, DomainEvent};
use crate::ids::*;

/// Where the case stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// No `ClientRegistered` yet.
    #[default]
    Unregistered,
    /// Registered, with no referral waiting and no open case (after a decline or redirect).
    Idle,
    /// A referral waits to be accepted, declined or redirected.
    Referred,
    /// Accepted and being worked.
    Open,
    /// Closed (a new referral or a reopen starts it again).
    Closed,
}

impl CaseStatus {
    /// A stable code for APIs and read models.
    pub fn code(self) -> &'static str {
        match self {
            CaseStatus::Unregistered => "unregistered",
            CaseStatus::Idle => "idle",
            CaseStatus::Referred => "referred",
            CaseStatus::Open => "open",
            CaseStatus::Closed => "closed",
        }
    }

    /// The status a stable code names.
    pub fn from_code(code: &str) -> Option<CaseStatus> {
        [
            CaseStatus::Unregistered,
            CaseStatus::Idle,
            CaseStatus::Referred,
            CaseStatus::Open,
            CaseStatus::Closed,
        ]
        .into_iter()
        .find(|status| status.code() == code)
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            CaseStatus::Unregistered => "not registered",
            CaseStatus::Idle => "no open referral",
            CaseStatus::Referred => "referral waiting for a decision",
            CaseStatus::Open => "open",
            CaseStatus::Closed => "closed",
        }
    }
}

/// What became of a referral.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    Pending,
    Accepted,
    Declined,
    Redirected,
}

/// What became of an appointment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppointmentStatus {
    Booked,
    Attended,
    NotAttended,
    Cancelled,
}

/// A client's record, folded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CaseState {
    pub client_id: Option<ClientId>,
    pub status: CaseStatus,
    pub referrals: BTreeMap<ReferralId, ReferralStatus>,
    /// The assigned link worker and their team.
    pub link_worker: Option<(StaffId, TeamId)>,
    /// Consents in force; for onward sharing, the services covered (empty: any).
    pub consents: BTreeMap<ConsentScope, Vec<ServiceId>>,
    pub appointments: BTreeMap<AppointmentId, AppointmentStatus>,
    pub contacts: BTreeSet<ContactId>,
    pub goals: BTreeSet<GoalId>,
    pub assessments: BTreeSet<AssessmentId>,
    /// Instruments with a baseline on record.
    pub baselines: BTreeSet<Instrument>,
    pub connections: BTreeSet<ConnectionId>,
    pub gaps: BTreeSet<GapId>,
    /// Every event of the record, with its type (corrections must name one).
    pub events: BTreeMap<EventId, &'static str>,
    /// The person's personal data was erased: nothing more is recorded.
    pub erased: bool,
    /// Messages sent back to the GP.
    pub gp_messages: BTreeSet<GpMessageId>,
    /// When each referral was received.
    pub received: BTreeMap<ReferralId, NaiveDate>,
    /// The earliest referral's date: nothing on the record happened before it.
    pub first_received: Option<NaiveDate>,
    /// When each appointment was booked for, corrections applied.
    pub appointment_dates: BTreeMap<AppointmentId, DateTime<Utc>>,
    /// When the case was last opened (accepted or reopened), as the user says.
    pub opened_at: Option<DateTime<Utc>>,
    /// When the case was last closed, as the user says.
    pub closed_at: Option<DateTime<Utc>>,
    /// Each assessment's instrument and timepoint, corrections applied.
    pub assessment_facts: BTreeMap<EventId, (Instrument, crate::codes::Timepoint)>,
    /// Each case note, and whether it is pinned as important.
    pub notes: BTreeMap<NoteId, bool>,
    /// Each safeguarding concern, and whether it is open.
    pub concerns: BTreeMap<ConcernId, bool>,
    /// Each onward connection's service and kind, corrections applied.
    pub connection_services: BTreeMap<ConnectionId, (ServiceId, crate::codes::ConnectionKind)>,
    /// The connection each onward connection's event made (so that a correction of its kind,
    /// which names the event, reaches the connection).
    pub connection_events: BTreeMap<EventId, ConnectionId>,
    /// Each connection's answer from the service it was made to, where it has answered.
    pub provider_answers: BTreeMap<ConnectionId, crate::provider::ProviderAnswer>,
    /// The tags the case carries (codes of the tag rules).
    pub tags: BTreeSet<String>,
    /// How each appointment was booked to happen (a home visit, a phone call...), corrections
    /// applied.
    pub appointment_modes: BTreeMap<AppointmentId, crate::codes::ContactMode>,
    /// The appointment each booking event booked (so that a correction of its time or way,
    /// which names the event, reaches the appointment).
    pub appointment_events: BTreeMap<EventId, AppointmentId>,
    /// Each home visit with a lone-working plan, and whether its check-in is recorded.
    pub lone_working: BTreeMap<AppointmentId, bool>,
}

impl CaseState {
    /// A referral's status after an event about it, and the case's.
    fn referral_now(&mut self, referral: ReferralId, status: ReferralStatus, case: CaseStatus) {
        self.referrals.insert(referral, status);
        self.status = case;
    }
}

/// Folds one stored event, which happened at `occurred_at`, into the state.
pub fn evolve(
    mut state: CaseState,
    event_id: EventId,
    event: &CaseEvent,
    occurred_at: DateTime<Utc>,
) -> CaseState {
    state.events.insert(event_id, event.event_type());
    match event {
        CaseEvent::ClientRegistered(e) => {
            state.client_id = Some(e.client_id);
            state.status = CaseStatus::Idle;
        }
        CaseEvent::ConsentRecorded(e) => {
            state.consents.insert(e.scope, e.services.clone());
        }
        CaseEvent::ConsentWithdrawn(e) => {
            state.consents.remove(&e.scope);
        }
        CaseEvent::ReferralReceived(e) => {
            state.referral_now(e.referral_id, ReferralStatus::Pending, CaseStatus::Referred);
            state.received.insert(e.referral_id, e.received_on);
            state.first_received = Some(
                state
                    .first_received
                    .map_or(e.received_on, |first| first.min(e.received_on)),
            );
        }
        CaseEvent::ReferralAccepted(e) => {
            state.referral_now(e.referral_id, ReferralStatus::Accepted, CaseStatus::Open);
            state.opened_at = Some(occurred_at);
        }
        CaseEvent::ReferralDeclined(e) => {
            state.referral_now(e.referral_id, ReferralStatus::Declined, CaseStatus::Idle);
        }
        CaseEvent::ReferralRedirected(e) => {
            state.referral_now(e.referral_id, ReferralStatus::Redirected, CaseStatus::Idle);
        }
        CaseEvent::LinkWorkerAssigned(e) => state.link_worker = Some((e.link_worker_id, e.team_id)),
        CaseEvent::CaseTransferred(e) => state.link_worker = Some((e.to_link_worker_id, e.team_id)),
        CaseEvent::AppointmentBooked(e) => {
            state
                .appointments
                .insert(e.appointment_id, AppointmentStatus::Booked);
            state
                .appointment_dates
                .insert(e.appointment_id, e.scheduled_for);
            state.appointment_modes.insert(e.appointment_id, e.mode);
            state.appointment_events.insert(event_id, e.appointment_id);
        }
        CaseEvent::AppointmentAttended(e) => {
            state
                .appointments
                .insert(e.appointment_id, AppointmentStatus::Attended);
        }
        CaseEvent::AppointmentNotAttended(e) => {
            state
                .appointments
                .insert(e.appointment_id, AppointmentStatus::NotAttended);
        }
        CaseEvent::AppointmentCancelled(e) => {
            state
                .appointments
                .insert(e.appointment_id, AppointmentStatus::Cancelled);
        }
        CaseEvent::ContactRecorded(e) => {
            state.contacts.insert(e.contact_id);
        }
        CaseEvent::GoalSet(e) => {
            state.goals.insert(e.goal_id);
        }
        CaseEvent::AssessmentRecorded(e) => {
            state.assessments.insert(e.assessment_id);
            state
                .assessment_facts
                .insert(event_id, (e.instrument, e.timepoint));
            if e.timepoint == crate::codes::Timepoint::Baseline {
                state.baselines.insert(e.instrument);
            }
        }
        CaseEvent::EntryCorrected(e) => {
            // A booking's time or way corrected: the appointment is then (a correction that
            // does not fit is left as recorded).
            if let Some(appointment) = state.appointment_events.get(&e.corrects).copied() {
                let fields = &e.corrected_fields;
                if let Some(at) = fields
                    .get("scheduled_for")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                {
                    state.appointment_dates.insert(appointment, at);
                }
                if let Some(mode) = fields
                    .get("mode")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                {
                    state.appointment_modes.insert(appointment, mode);
                }
            }
            // A connection's kind corrected: what its service was told of the person is the
            // corrected kind's (a correction that does not fit is left as recorded).
            if let Some(connection_id) = state.connection_events.get(&e.corrects)
                && let Some(kind) = e
                    .corrected_fields
                    .get("kind")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                && let Some((_, recorded)) = state.connection_services.get_mut(connection_id)
            {
                *recorded = kind;
            }
            // A relabelled assessment moves its baseline (a correction that does not fit is
            // left as recorded: evolve never fails).
            if let Some((instrument, timepoint)) = state.assessment_facts.get_mut(&e.corrects) {
                let fields = &e.corrected_fields;
                if let Some(new) = fields
                    .get("instrument")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                {
                    *instrument = new;
                }
                if let Some(new) = fields
                    .get("timepoint")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                {
                    *timepoint = new;
                }
                state.baselines = state
                    .assessment_facts
                    .values()
                    .filter(|(_, t)| *t == crate::codes::Timepoint::Baseline)
                    .map(|(i, _)| *i)
                    .collect();
            }
        }
        CaseEvent::OnwardConnectionMade(e) => {
            state.connections.insert(e.connection_id);
            state
                .connection_services
                .insert(e.connection_id, (e.service_id, e.kind));
            state.connection_events.insert(event_id, e.connection_id);
        }
        CaseEvent::ConnectionAcceptedByProvider(e) => {
            state
                .provider_answers
                .insert(e.connection_id, crate::provider::ProviderAnswer::Accepted);
        }
        CaseEvent::ConnectionDeclinedByProvider(e) => {
            state
                .provider_answers
                .insert(e.connection_id, crate::provider::ProviderAnswer::Declined);
        }
        CaseEvent::ConnectionStartRecorded(e) => {
            let answer = if e.started {
                crate::provider::ProviderAnswer::Started
            } else {
                crate::provider::ProviderAnswer::NotStarted
            };
            state.provider_answers.insert(e.connection_id, answer);
        }
        CaseEvent::ServiceGapRecorded(e) => {
            state.gaps.insert(e.gap_id);
        }
        CaseEvent::GpMessageSent(e) => {
            state.gp_messages.insert(e.message_id);
        }
        CaseEvent::ClientErased(_) => state.erased = true,
        CaseEvent::CaseClosed(_) => {
            state.status = CaseStatus::Closed;
            state.closed_at = Some(occurred_at);
        }
        CaseEvent::CaseReopened(_) => {
            state.status = CaseStatus::Open;
            state.opened_at = Some(occurred_at);
        }
        CaseEvent::NoteAdded(e) => {
            state.notes.insert(e.note_id, e.important);
        }
        CaseEvent::NotePinned(e) => {
            state.notes.insert(e.note_id, true);
        }
        CaseEvent::NoteUnpinned(e) => {
            state.notes.insert(e.note_id, false);
        }
        CaseEvent::SafeguardingConcernRaised(e) => {
            state.concerns.insert(e.concern_id, true);
        }
        CaseEvent::SafeguardingConcernClosed(e) => {
            state.concerns.insert(e.concern_id, false);
        }
        CaseEvent::SafeguardingConcernUpdated(_) => {}
        CaseEvent::DemographicsRecorded(_) => {}
        CaseEvent::CaseTagged(e) => {
            state.tags.insert(e.tag.clone());
        }
        CaseEvent::CaseUntagged(e) => {
            state.tags.remove(&e.tag);
        }
        CaseEvent::LoneWorkingPlanRecorded(e) => {
            state.lone_working.insert(e.appointment_id, false);
        }
        CaseEvent::LoneWorkingCheckedIn(e) => {
            state.lone_working.insert(e.appointment_id, true);
        }
        CaseEvent::WhatMattersRecorded(_)
        | CaseEvent::NeedIdentified(_)
        | CaseEvent::GoalReviewed(_)
        | CaseEvent::ConnectionOutcomeRecorded(_)
        | CaseEvent::LateEntryExplained(_) => {}
    }
    state
}
