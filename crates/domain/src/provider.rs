//! Closed-loop connections: a directory service's own staff answer an onward connection made
//! to their service (accept it, or decline it with a coded reason), and then say whether the
//! person started. The answers are events on the person's own stream, beside the connection
//! they answer, so the link worker's record and the figures read them in the record's order.
//!
//! Who may answer (the service's provider staff, for their own services only) is the
//! application's policy; what an answer means for the record is decided here.

use serde::{Deserialize, Serialize};

use crate::CaseError;
use crate::codes::{ConnectionKind, coded};
use crate::event::CaseEvent;
use crate::ids::ConnectionId;
use crate::state::CaseState;

coded!(
    /// Why a service declined a connection made to it. Codes only: a provider's answer holds no
    /// free text, so nothing in it is personal.
    ProviderDeclineReason {
        NoCapacity => "no capacity",
        NotEligible => "not eligible for the service",
        OutsideArea => "outside the service's area",
        UnableToContact => "unable to contact the person",
        PersonDeclined => "the person declined",
        AlreadyKnown => "already known to the service",
    }
);

/// The service accepted a connection made to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectionAcceptedByProvider {
    pub connection_id: ConnectionId,
}

/// The service declined a connection made to it, with a coded reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectionDeclinedByProvider {
    pub connection_id: ConnectionId,
    pub reason: ProviderDeclineReason,
}

/// The service says whether the person started with it, after accepting the connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectionStartRecorded {
    pub connection_id: ConnectionId,
    pub started: bool,
}

/// Where a service's answer to a connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProviderAnswer {
    Accepted,
    Declined,
    Started,
    NotStarted,
}

impl ProviderAnswer {
    /// A stable code for APIs and pages.
    pub fn code(self) -> &'static str {
        match self {
            ProviderAnswer::Accepted => "accepted",
            ProviderAnswer::Declined => "declined",
            ProviderAnswer::Started => "started",
            ProviderAnswer::NotStarted => "not_started",
        }
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            ProviderAnswer::Accepted => "accepted by the service",
            ProviderAnswer::Declined => "declined by the service",
            ProviderAnswer::Started => "the person started",
            ProviderAnswer::NotStarted => "the person did not start",
        }
    }
}

/// A service's answer to a connection, as a command.
#[derive(Clone, Debug, PartialEq)]
pub enum ProviderCommand {
    Accept(ConnectionAcceptedByProvider),
    Decline(ConnectionDeclinedByProvider),
    RecordStart(ConnectionStartRecorded),
}

impl ProviderCommand {
    /// The connection the answer is about.
    pub fn connection_id(&self) -> ConnectionId {
        match self {
            ProviderCommand::Accept(c) => c.connection_id,
            ProviderCommand::Decline(c) => c.connection_id,
            ProviderCommand::RecordStart(c) => c.connection_id,
        }
    }
}

/// The rules of a service's answer: to a connection of this record that the service was told
/// of (a referral, a warm handover or an accompanied visit: a signposted person is not known to
/// it); accepted or declined once; whether the person started only after an acceptance, once.
///
/// A closed case still takes answers: a service often answers, and the person starts, after the
/// link worker has closed the case as connected onward, and that is the answer the loop waits
/// for. An erased record takes nothing (refused before this is asked).
///
/// # Errors
/// [`CaseError::UnknownConnection`], [`CaseError::ConnectionNotShared`],
/// [`CaseError::ConnectionAlreadyAnswered`], [`CaseError::ConnectionNotAccepted`].
pub(crate) fn answer(
    state: &CaseState,
    command: &ProviderCommand,
) -> Result<Vec<CaseEvent>, CaseError> {
    let connection_id = command.connection_id();
    let Some((_, kind)) = state.connection_services.get(&connection_id) else {
        return Err(CaseError::UnknownConnection);
    };
    if *kind == ConnectionKind::Signposted {
        return Err(CaseError::ConnectionNotShared);
    }
    let answered = state.provider_answers.get(&connection_id).copied();
    match command {
        ProviderCommand::Accept(c) => match answered {
            None => Ok(vec![CaseEvent::ConnectionAcceptedByProvider(c.clone())]),
            Some(answer) => Err(CaseError::ConnectionAlreadyAnswered {
                answer: answer.label(),
            }),
        },
        ProviderCommand::Decline(c) => match answered {
            None => Ok(vec![CaseEvent::ConnectionDeclinedByProvider(c.clone())]),
            Some(answer) => Err(CaseError::ConnectionAlreadyAnswered {
                answer: answer.label(),
            }),
        },
        ProviderCommand::RecordStart(c) => match answered {
            Some(ProviderAnswer::Accepted) => {
                Ok(vec![CaseEvent::ConnectionStartRecorded(c.clone())])
            }
            Some(answer @ (ProviderAnswer::Started | ProviderAnswer::NotStarted)) => {
                Err(CaseError::ConnectionAlreadyAnswered {
                    answer: answer.label(),
                })
            }
            None | Some(ProviderAnswer::Declined) => Err(CaseError::ConnectionNotAccepted),
        },
    }
}

#[cfg(test)]
mod tests;

/// The event types of a service's answer: the service's own word, never corrected by the
/// service that made the connection.
pub const ANSWER_EVENT_TYPES: &[&str] = &[
    "ConnectionAcceptedByProvider",
    "ConnectionDeclinedByProvider",
    "ConnectionStartRecorded",
];

/// Refuses a correction of a service's answer.
pub(crate) fn check_correctable(
    state: &CaseState,
    corrects: crate::EventId,
) -> Result<(), CaseError> {
    match state.events.get(&corrects) {
        Some(event_type) if ANSWER_EVENT_TYPES.contains(event_type) => Err(CaseError::invalid(
            "corrects",
            "a service's answer is its own: it is not corrected here",
        )),
        _ => Ok(()),
    }
}
