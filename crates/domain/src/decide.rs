//! Every rule of the client record: `decide` turns a command into events or a refusal.

use crate::codes::*;
use crate::command::{CaseCommand, TransferCase};
use crate::correct::{check_correction, corrected_entry};
use crate::directory::{ServiceState, check_connection};
use crate::event::*;
use crate::ids::ServiceId;
use crate::state::{AppointmentStatus, CaseState, CaseStatus, ReferralStatus};
use crate::timing::{Timing, check_timing};
use crate::{CaseError, Instrument};

/// Longest contact a link worker can record in one go, in minutes.
pub const MAX_CONTACT_MINUTES: u32 = 600;

/// What `decide` needs to know from outside the record, looked up by the caller before it
/// decides (so every rule is here, and `decide` stays free of IO).
#[derive(Clone, Copy, Debug, Default)]
pub struct Lookups<'a> {
    /// The directory service an onward connection names, folded from its stream; `None` when
    /// there is no such service.
    pub service: Option<&'a ServiceState>,
    /// When the fact happened and the time now, checked by [`check_timing`]. `None` decides
    /// without looking at time (tests of the other rules; the service always gives one).
    pub timing: Option<&'a Timing>,
    /// For a correction: the entry it names, as it reads now (earlier corrections applied).
    /// `None` when the caller did not look it up: the correction is then not checked against it.
    pub corrected: Option<&'a CaseEvent>,
    /// The destination codes a redirection may name (the recording rules' list). `None` does
    /// not check codes (tests of the other rules; the service always gives the list).
    pub destinations: Option<&'a [String]>,
    /// The safeguarding concern categories a concern may name (the safeguarding rules' list).
    /// `None` does not check categories.
    pub concern_categories: Option<&'a [String]>,
    /// The tag codes a case may be tagged with (the tag rules' list). `None` does not check
    /// codes.
    pub tags: Option<&'a [String]>,
    /// The destination codes that say too little alone ("somewhere else"): a redirection to
    /// one needs a note saying where (the recording rules' `needs_note`). `None` does not ask.
    pub destinations_needing_note: Option<&'a [String]>,
}

/// Decides what a command means for this record, given what the caller looked up.
///
/// With a timing, the command's time is checked too, and a late entry's reason is written as a
/// `LateEntryExplained` event just before the fact.
///
/// # Errors
/// A [`CaseError`] naming the rule refused and, where there is one, the field.
pub fn decide(
    state: &CaseState,
    command: &CaseCommand,
    lookups: &Lookups<'_>,
) -> Result<Vec<CaseEvent>, CaseError> {
    let events = decide_fact(state, command, lookups)?;
    for event in &events {
        check_fact(event)?;
    }
    let Some(timing) = lookups.timing else {
        return Ok(events);
    };
    check_timing(state, command, timing)?;
    Ok(match &timing.late_entry_reason {
        Some(reason) => std::iter::once(CaseEvent::LateEntryExplained(LateEntryExplained {
            reason: reason.trim().to_owned(),
        }))
        .chain(events)
        .collect(),
        None => events,
    })
}

fn decide_fact(
    state: &CaseState,
    command: &CaseCommand,
    lookups: &Lookups<'_>,
) -> Result<Vec<CaseEvent>, CaseError> {
    use CaseCommand as C;
    if state.erased {
        return Err(CaseError::Erased);
    }
    match command {
        C::Intake { client, referral } => intake(state, client.as_deref(), referral),
        C::RecordConsent(c) => {
            registered(state)?;
            if c.scope != ConsentScope::ShareWithOnwardServices && !c.services.is_empty() {
                return Err(CaseError::invalid(
                    "services",
                    "only consent to share with onward services names services",
                ));
            }
            match (c.scope, c.channel) {
                (ConsentScope::ContactForReminders, None) => {
                    return Err(CaseError::invalid(
                        "channel",
                        "consent to be contacted for reminders names the channel: sms or email",
                    ));
                }
                (ConsentScope::ContactForReminders, Some(_)) | (_, None) => {}
                (_, Some(_)) => {
                    return Err(CaseError::invalid(
                        "channel",
                        "only consent to be contacted for reminders names a channel",
                    ));
                }
            }
            Ok(vec![CaseEvent::ConsentRecorded(c.clone())])
        }
        C::WithdrawConsent(c) => {
            registered(state)?;
            if !state.consents.contains_key(&c.scope) {
                return Err(CaseError::ConsentNotGiven { scope: c.scope });
            }
            Ok(vec![CaseEvent::ConsentWithdrawn(c.clone())])
        }
        C::AcceptReferral(c) => {
            pending_referral(state, c.referral_id)?;
            Ok(vec![CaseEvent::ReferralAccepted(c.clone())])
        }
        C::DeclineReferral(c) => {
            pending_referral(state, c.referral_id)?;
            Ok(vec![CaseEvent::ReferralDeclined(c.clone())])
        }
        C::RedirectReferral(c) => {
            pending_referral(state, c.referral_id)?;
            check_destination(&c.destination, lookups)?;
            if let Destination::Coded { code } = &c.destination
                && lookups
                    .destinations_needing_note
                    .is_some_and(|codes| codes.contains(code))
                && c.note.as_deref().is_none_or(|n| n.trim().is_empty())
            {
                return Err(CaseError::invalid(
                    "note",
                    "say in the note where the person went: this destination does not",
                ));
            }
            Ok(vec![CaseEvent::ReferralRedirected(c.clone())])
        }
        C::AssignLinkWorker(c) => {
            active(state)?;
            Ok(vec![CaseEvent::LinkWorkerAssigned(c.clone())])
        }
        C::TransferCase(TransferCase {
            to_link_worker_id,
            team_id,
            reason,
        }) => {
            active(state)?;
            let Some((from, _)) = state.link_worker else {
                return Err(CaseError::NoLinkWorker { what: "a transfer" });
            };
            if from == *to_link_worker_id {
                return Err(CaseError::SameLinkWorker);
            }
            Ok(vec![CaseEvent::CaseTransferred(CaseTransferred {
                from_link_worker_id: from,
                to_link_worker_id: *to_link_worker_id,
                team_id: *team_id,
                reason: *reason,
            })])
        }
        C::BookAppointment(c) => {
            open(state)?;
            if state.appointments.contains_key(&c.appointment_id) {
                return Err(CaseError::DuplicateId {
                    what: "the appointment",
                });
            }
            // The same time and way twice is one appointment booked again (a form sent twice).
            let taken = state.appointment_dates.iter().any(|(id, at)| {
                *at == c.scheduled_for
                    && state.appointment_modes.get(id) == Some(&c.mode)
                    && state.appointments.get(id) == Some(&AppointmentStatus::Booked)
            });
            if taken {
                return Err(CaseError::invalid(
                    "scheduled_for",
                    "an appointment is already booked for that time, the same way: cancel it, \
                     or choose another time",
                ));
            }
            Ok(vec![CaseEvent::AppointmentBooked(c.clone())])
        }
        C::RecordAttendance(c) => {
            booked(state, c.appointment_id)?;
            Ok(vec![CaseEvent::AppointmentAttended(c.clone())])
        }
        C::RecordDidNotAttend(c) => {
            booked(state, c.appointment_id)?;
            Ok(vec![CaseEvent::AppointmentNotAttended(c.clone())])
        }
        C::CancelAppointment(c) => {
            booked(state, c.appointment_id)?;
            Ok(vec![CaseEvent::AppointmentCancelled(c.clone())])
        }
        C::RecordContact(c) => {
            open(state)?;
            assigned(state, "a contact")?;
            if state.contacts.contains(&c.contact_id) {
                return Err(CaseError::DuplicateId {
                    what: "the contact",
                });
            }
            Ok(vec![CaseEvent::ContactRecorded(c.clone())])
        }
        C::RecordWhatMatters(c) => {
            open(state)?;
            Ok(vec![CaseEvent::WhatMattersRecorded(c.clone())])
        }
        C::IdentifyNeed(c) => {
            open(state)?;
            Ok(vec![CaseEvent::NeedIdentified(c.clone())])
        }
        C::SetGoal(c) => {
            open(state)?;
            if state.goals.contains(&c.goal_id) {
                return Err(CaseError::DuplicateId { what: "the goal" });
            }
            Ok(vec![CaseEvent::GoalSet(c.clone())])
        }
        C::ReviewGoal(c) => {
            open(state)?;
            if !state.goals.contains(&c.goal_id) {
                return Err(CaseError::UnknownGoal);
            }
            Ok(vec![CaseEvent::GoalReviewed(c.clone())])
        }
        C::RecordAssessment(c) => record_assessment(state, c),
        C::MakeConnection(c) => {
            open(state)?;
            assigned(state, "an onward connection")?;
            if state.connections.contains(&c.connection_id) {
                return Err(CaseError::DuplicateId {
                    what: "the connection",
                });
            }
            consent_to_share(state, c)?;
            // Every onward connection points at the directory: the service it names, listed,
            // and for a referral one that takes referrals now.
            check_connection(named_service(lookups, c.service_id), c.kind)?;
            Ok(vec![CaseEvent::OnwardConnectionMade(c.clone())])
        }
        C::RecordConnectionOutcome(c) => {
            open(state)?;
            if !state.connections.contains(&c.connection_id) {
                return Err(CaseError::UnknownConnection);
            }
            Ok(vec![CaseEvent::ConnectionOutcomeRecorded(c.clone())])
        }
        C::RecordServiceGap(c) => {
            open(state)?;
            if state.gaps.contains(&c.gap_id) {
                return Err(CaseError::DuplicateId {
                    what: "the service gap",
                });
            }
            Ok(vec![CaseEvent::ServiceGapRecorded(c.clone())])
        }
        C::CloseCase(c) => {
            open(state)?;
            Ok(vec![CaseEvent::CaseClosed(c.clone())])
        }
        C::ReopenCase(c) => {
            registered(state)?;
            if state.status != CaseStatus::Closed {
                return Err(CaseError::NotClosed);
            }
            Ok(vec![CaseEvent::CaseReopened(c.clone())])
        }
        C::SendGpMessage(c) => {
            registered(state)?;
            if !state.consents.contains_key(&ConsentScope::ShareWithGp) {
                return Err(CaseError::NoConsentToShareWithGp);
            }
            if state.gp_messages.contains(&c.message_id) {
                return Err(CaseError::DuplicateId {
                    what: "the message",
                });
            }
            Ok(vec![CaseEvent::GpMessageSent(c.clone())])
        }
        C::EraseClient(c) => {
            registered(state)?;
            Ok(vec![CaseEvent::ClientErased(c.clone())])
        }
        C::AddNote(c) => crate::safeguarding::add_note(state, c),
        C::PinNote(c) => crate::safeguarding::pin_note(state, c),
        C::UnpinNote(c) => crate::safeguarding::unpin_note(state, c),
        C::RaiseConcern(c) => {
            crate::safeguarding::raise_concern(state, c, lookups.concern_categories)
        }
        C::UpdateConcern(c) => crate::safeguarding::update_concern(state, c),
        C::CloseConcern(c) => crate::safeguarding::close_concern(state, c),
        C::AnswerConnection(c) => {
            registered(state)?;
            crate::provider::answer(state, c)
        }
        C::RecordDemographics(c) => crate::demographics::record(state, c),
        C::TagCase(c) => crate::tags::tag(state, c, lookups.tags),
        C::UntagCase(c) => crate::tags::untag(state, c),
        C::RecordLoneWorkingPlan(c) => crate::lone_working::record_plan(state, c),
        C::CheckInLoneWorking(c) => crate::lone_working::check_in(state, c),
        C::CorrectEntry(c) => {
            registered(state)?;
            if !state.events.contains_key(&c.corrects) {
                return Err(CaseError::UnknownEvent);
            }
            crate::safeguarding::check_correctable(state, c.corrects)?;
            crate::demographics::check_correctable(state, c.corrects)?;
            crate::provider::check_correctable(state, c.corrects)?;
            crate::tags::check_correctable(state, c.corrects)?;
            crate::lone_working::check_correctable(state, c.corrects)?;
            if c.corrected_fields.is_empty() {
                return Err(CaseError::invalid(
                    "corrected_fields",
                    "name at least one corrected field",
                ));
            }
            required_text(&c.reason, "reason", "say why the entry is corrected")?;
            if let Some(original) = lookups.corrected {
                let corrected = corrected_entry(original, c)?;
                check_correction(
                    state,
                    c,
                    original,
                    &corrected,
                    lookups.timing.map(|t| t.now),
                )?;
                if let (
                    CaseEvent::OnwardConnectionMade(before),
                    CaseEvent::OnwardConnectionMade(after),
                ) = (original, &corrected)
                    && before.kind != after.kind
                {
                    check_kind_corrected(state, after, lookups)?;
                }
                if let (CaseEvent::ReferralRedirected(before), CaseEvent::ReferralRedirected(after)) =
                    (original, &corrected)
                    && before.destination != after.destination
                {
                    check_destination(&after.destination, lookups).map_err(|e| {
                        let message = match e {
                            CaseError::Invalid { message, .. } => message,
                            other => other.to_string(),
                        };
                        CaseError::invalid("corrected_fields.destination", message)
                    })?;
                }
            }
            Ok(vec![CaseEvent::EntryCorrected(c.clone())])
        }
    }
}

/// Whoever goes with the person, or hears of them, learns who they are: a referral, a warm
/// handover or an accompanied visit needs the person's consent to share with that service.
fn consent_to_share(state: &CaseState, c: &OnwardConnectionMade) -> Result<(), CaseError> {
    if c.kind == ConnectionKind::Signposted {
        return Ok(());
    }
    let covered = state
        .consents
        .get(&ConsentScope::ShareWithOnwardServices)
        .is_some_and(|services| services.is_empty() || services.contains(&c.service_id));
    if covered {
        Ok(())
    } else {
        Err(CaseError::NoConsentToShare {
            kind: c.kind.label(),
        })
    }
}

/// The directory's service `service_id`, when the caller looked it up.
fn named_service<'a>(lookups: &Lookups<'a>, service_id: ServiceId) -> Option<&'a ServiceState> {
    lookups
        .service
        .filter(|s| s.service.as_ref().is_some_and(|r| r.id == service_id.0))
}

/// A connection whose kind is corrected is held to the rules of a connection of that kind
/// made now: one its service hears of (corrected from signposting, or between those kinds)
/// needs the person's consent to share with the service and a service that takes referrals;
/// and one the service has answered was heard of, so it is not corrected to signposting.
fn check_kind_corrected(
    state: &CaseState,
    corrected: &OnwardConnectionMade,
    lookups: &Lookups<'_>,
) -> Result<(), CaseError> {
    if corrected.kind == ConnectionKind::Signposted {
        return match state.provider_answers.get(&corrected.connection_id) {
            Some(answer) => Err(CaseError::invalid(
                "corrected_fields.kind",
                format!(
                    "the service has answered this connection ({}): it was told of the person",
                    answer.label()
                ),
            )),
            None => Ok(()),
        };
    }
    consent_to_share(state, corrected)
        .and_then(|()| {
            check_connection(named_service(lookups, corrected.service_id), corrected.kind)
        })
        .map_err(|e| CaseError::invalid("corrected_fields.kind", e.to_string()))
}

/// A redirection names a directory service that takes referrals, or a destination code the
/// recording rules list; words alone are only how redirections recorded before codes read.
fn check_destination(destination: &Destination, lookups: &Lookups<'_>) -> Result<(), CaseError> {
    match destination {
        Destination::Service { service_id } => {
            // The directory's refusal, named at the field the command gives the service in.
            check_connection(
                named_service(lookups, *service_id),
                ConnectionKind::Referred,
            )
            .map_err(|e| CaseError::invalid("destination.service_id", e.to_string()))
        }
        Destination::Coded { code } => match lookups.destinations {
            Some(codes) if !codes.iter().any(|known| known == code) => Err(CaseError::invalid(
                "destination.code",
                format!("not a destination code: use one of {}", codes.join(", ")),
            )),
            _ => Ok(()),
        },
        Destination::Described { .. } => Err(CaseError::invalid(
            "destination.kind",
            "name a directory service (service) or a destination code (coded)",
        )),
    }
}

fn intake(
    state: &CaseState,
    client: Option<&ClientRegistered>,
    referral: &ReferralReceived,
) -> Result<Vec<CaseEvent>, CaseError> {
    let mut events = Vec::new();
    match client {
        Some(client) => {
            if state.status != CaseStatus::Unregistered {
                return Err(CaseError::AlreadyRegistered);
            }
            events.push(CaseEvent::ClientRegistered(client.clone()));
        }
        None => match state.status {
            CaseStatus::Unregistered => return Err(CaseError::NotRegistered),
            CaseStatus::Referred | CaseStatus::Open => return Err(CaseError::CaseAlreadyActive),
            CaseStatus::Idle | CaseStatus::Closed => {}
        },
    }
    if state.referrals.contains_key(&referral.referral_id) {
        return Err(CaseError::DuplicateId {
            what: "the referral",
        });
    }
    events.push(CaseEvent::ReferralReceived(referral.clone()));
    Ok(events)
}

fn record_assessment(
    state: &CaseState,
    c: &AssessmentRecorded,
) -> Result<Vec<CaseEvent>, CaseError> {
    open(state)?;
    assigned(state, "an assessment")?;
    if state.assessments.contains(&c.assessment_id) {
        return Err(CaseError::DuplicateId {
            what: "the assessment",
        });
    }
    if c.timepoint != Timepoint::Baseline && !state.baselines.contains(&c.instrument) {
        return Err(CaseError::NoBaseline {
            instrument: c.instrument,
        });
    }
    Ok(vec![CaseEvent::AssessmentRecorded(c.clone())])
}

/// The rules a fact is held to whatever else the record holds: the same for an entry as it is
/// recorded and for a correction of it.
///
/// # Errors
/// [`CaseError::Invalid`] naming the field, or the instrument's refusal of its answers.
pub(crate) fn check_fact(event: &CaseEvent) -> Result<(), CaseError> {
    crate::safeguarding::check_fact(event)?;
    crate::lone_working::check_fact(event)?;
    match event {
        CaseEvent::ClientRegistered(c) => {
            c.personal.validate()?;
            required_text(&c.area, "area", "say which area the person lives in")
        }
        CaseEvent::ReferralReceived(r) => {
            if r.reasons.is_empty() {
                return Err(CaseError::invalid(
                    "reasons",
                    "give at least one reason for the referral",
                ));
            }
            let mut reasons = r.reasons.clone();
            reasons.sort();
            reasons.dedup();
            if reasons.len() != r.reasons.len() {
                return Err(CaseError::invalid("reasons", "each reason once"));
            }
            Ok(())
        }
        CaseEvent::ReferralDeclined(c) if c.reason == DeclineReason::Other => {
            required_note(&c.note, "note", "say why the referral is declined")
        }
        CaseEvent::ReferralRedirected(c) => match &c.destination {
            Destination::Coded { code } => {
                required_text(code, "destination.code", "give the destination's code")
            }
            Destination::Described { text } => {
                required_text(text, "destination.text", "say where the referral went")
            }
            Destination::Service { .. } => Ok(()),
        },
        CaseEvent::ContactRecorded(c) if c.minutes == 0 || c.minutes > MAX_CONTACT_MINUTES => {
            Err(CaseError::invalid(
                "minutes",
                format!("a contact lasts 1 to {MAX_CONTACT_MINUTES} minutes"),
            ))
        }
        CaseEvent::WhatMattersRecorded(c) => {
            required_text(&c.text, "text", "write what matters to the person")
        }
        CaseEvent::GoalSet(c) => required_text(&c.description, "description", "describe the goal"),
        CaseEvent::AssessmentRecorded(c) => Instrument::validate(
            c.instrument,
            c.instrument_version,
            &c.answers,
            c.licensor_score,
        ),
        CaseEvent::ConnectionOutcomeRecorded(c) => match (c.outcome, c.waiting_weeks) {
            (ConnectionOutcome::WaitingList, None) => Err(CaseError::invalid(
                "waiting_weeks",
                "say how many weeks the waiting list is",
            )),
            (outcome, Some(_)) if outcome != ConnectionOutcome::WaitingList => Err(
                CaseError::invalid("waiting_weeks", "only a waiting list has weeks"),
            ),
            // As a directory service's own waiting list is held to.
            (_, Some(weeks)) if weeks == 0 || weeks > crate::directory::MAX_WAITING_WEEKS => {
                Err(CaseError::invalid(
                    "waiting_weeks",
                    format!(
                        "between 1 and {} weeks",
                        crate::directory::MAX_WAITING_WEEKS
                    ),
                ))
            }
            _ => Ok(()),
        },
        CaseEvent::ServiceGapRecorded(c) => {
            required_text(&c.area, "area", "say which area the gap is in")
        }
        CaseEvent::CaseClosed(c) if c.reason == ClosureReason::Other => {
            required_note(&c.note, "note", "say why the case is closed")
        }
        CaseEvent::GpMessageSent(c) => {
            required_text(&c.practice, "practice", "say which practice it goes to")?;
            required_text(&c.text, "text", "say what the message says")
        }
        CaseEvent::ClientErased(c) => {
            required_text(&c.reason, "reason", "say why the personal data is erased")
        }
        _ => Ok(()),
    }
}

pub(crate) fn registered(state: &CaseState) -> Result<(), CaseError> {
    if state.status == CaseStatus::Unregistered {
        Err(CaseError::NotRegistered)
    } else {
        Ok(())
    }
}

fn open(state: &CaseState) -> Result<(), CaseError> {
    registered(state)?;
    if state.status == CaseStatus::Open {
        Ok(())
    } else {
        Err(CaseError::CaseNotOpen {
            status: state.status.label(),
        })
    }
}

/// A referral waiting for a decision, or an open case.
fn active(state: &CaseState) -> Result<(), CaseError> {
    registered(state)?;
    match state.status {
        CaseStatus::Referred | CaseStatus::Open => Ok(()),
        status => Err(CaseError::CaseNotOpen {
            status: status.label(),
        }),
    }
}

fn assigned(state: &CaseState, what: &'static str) -> Result<(), CaseError> {
    if state.link_worker.is_some() {
        Ok(())
    } else {
        Err(CaseError::NoLinkWorker { what })
    }
}

fn pending_referral(state: &CaseState, referral_id: crate::ReferralId) -> Result<(), CaseError> {
    registered(state)?;
    match state.referrals.get(&referral_id) {
        None => Err(CaseError::UnknownReferral),
        Some(ReferralStatus::Pending) => Ok(()),
        Some(ReferralStatus::Accepted) => Err(CaseError::ReferralAlreadyDecided {
            outcome: "accepted",
        }),
        Some(ReferralStatus::Declined) => Err(CaseError::ReferralAlreadyDecided {
            outcome: "declined",
        }),
        Some(ReferralStatus::Redirected) => Err(CaseError::ReferralAlreadyDecided {
            outcome: "redirected",
        }),
    }
}

fn booked(state: &CaseState, appointment_id: crate::AppointmentId) -> Result<(), CaseError> {
    open(state)?;
    match state.appointments.get(&appointment_id) {
        None => Err(CaseError::UnknownAppointment),
        Some(AppointmentStatus::Booked) => Ok(()),
        Some(AppointmentStatus::Attended) => Err(CaseError::AppointmentAlreadySettled {
            outcome: "attended",
        }),
        Some(AppointmentStatus::NotAttended) => Err(CaseError::AppointmentAlreadySettled {
            outcome: "marked not attended",
        }),
        Some(AppointmentStatus::Cancelled) => Err(CaseError::AppointmentAlreadySettled {
            outcome: "cancelled",
        }),
    }
}

fn required_text(text: &str, field: &'static str, message: &str) -> Result<(), CaseError> {
    if text.trim().is_empty() {
        Err(CaseError::invalid(field, message))
    } else {
        Ok(())
    }
}

fn required_note(
    note: &Option<String>,
    field: &'static str,
    message: &str,
) -> Result<(), CaseError> {
    required_text(note.as_deref().unwrap_or(""), field, message)
}
