use crate::{ConsentScope, Instrument};

/// A refusal: which rule, which field, in words a link worker understands.
/// Business refusals only; there are no technical errors in the domain.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CaseError {
    /// The command needs a registered client.
    #[error("this person is not registered yet")]
    NotRegistered,
    /// Registration happens once.
    #[error("this person is already registered")]
    AlreadyRegistered,
    /// Entries go on open cases only.
    #[error("the case is not open ({status}), so nothing can be recorded on it")]
    CaseNotOpen { status: &'static str },
    /// A new referral while one is pending or the case is open.
    #[error("this person already has a referral waiting or an open case; record on that")]
    CaseAlreadyActive,
    /// The referral is not one of this client's.
    #[error("there is no such referral for this person")]
    UnknownReferral,
    /// Accept, decline and redirect happen once per referral.
    #[error("this referral was already {outcome}")]
    ReferralAlreadyDecided { outcome: &'static str },
    /// Contacts, assessments and connections need an assigned link worker.
    #[error("assign a link worker before recording {what}")]
    NoLinkWorker { what: &'static str },
    /// A transfer names the worker already assigned.
    #[error("the case is already with that link worker")]
    SameLinkWorker,
    /// The answers do not fit the instrument.
    #[error("{} answers are not valid: {detail}", instrument.label())]
    InvalidAnswers {
        instrument: Instrument,
        detail: String,
    },
    /// A follow-up score with no baseline to compare to.
    #[error("record a baseline {} before a later {}", instrument.label(), instrument.label())]
    NoBaseline { instrument: Instrument },
    /// The appointment is not one of this client's.
    #[error("there is no such appointment for this person")]
    UnknownAppointment,
    /// An appointment's outcome is recorded once.
    #[error("this appointment is already {outcome}")]
    AppointmentAlreadySettled { outcome: &'static str },
    /// The goal is not one of this client's.
    #[error("there is no such goal for this person")]
    UnknownGoal,
    /// The connection is not one of this client's.
    #[error("there is no such onward connection for this person")]
    UnknownConnection,
    /// The connection names no directory service.
    #[error("there is no such service in the directory")]
    UnknownService,
    /// The connection names a service withdrawn from the directory.
    #[error("that service was withdrawn from the directory; choose another")]
    ServiceWithdrawn,
    /// A referral to a service that takes none now (signposting is still possible).
    #[error("that service is not taking referrals ({why}); signpost, or choose another")]
    ServiceNotTakingReferrals { why: &'static str },
    /// The person's personal data was erased: their record takes nothing more.
    #[error("this person's personal data was erased; nothing more can be recorded for them")]
    Erased,
    /// A message back to the GP needs the person's consent to share with the GP.
    #[error("a message to the GP needs the person's consent to share with the GP")]
    NoConsentToShareWithGp,
    /// Sharing personal details needs consent.
    #[error("a {kind} needs the person's consent to share with onward services")]
    NoConsentToShare { kind: &'static str },
    /// Withdrawing a consent that is not in force.
    #[error("there is no consent to {} to withdraw", scope.label())]
    ConsentNotGiven { scope: ConsentScope },
    /// Only a closed case reopens.
    #[error("only a closed case can be reopened")]
    NotClosed,
    /// The corrected event is not one of this client's.
    #[error("there is no such entry in this person's record to correct")]
    UnknownEvent,
    /// An id that this record already uses for something else.
    #[error("the id given for {what} is already used in this record")]
    DuplicateId { what: &'static str },
    /// The note is not one of this client's.
    #[error("there is no such note for this person")]
    UnknownNote,
    /// Pinning a pinned note, or unpinning one that is not.
    #[error("{}", if *pinned { "this note is already pinned" } else { "this note is not pinned" })]
    NotePinState { pinned: bool },
    /// The concern is not one of this client's.
    #[error("there is no such safeguarding concern for this person")]
    UnknownConcern,
    /// A closed concern takes nothing more.
    #[error("this safeguarding concern is closed")]
    ConcernClosed,
    /// A concern's entries are never corrected: record an update, or close it with a reason.
    #[error(
        "a safeguarding concern cannot be corrected: record an update, or close it with a reason"
    )]
    ConcernNotCorrectable,
    /// A field's value is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A service answers a connection once (accepted or declined), and says once whether the
    /// person started.
    #[error("this connection was already answered: {answer}")]
    ConnectionAlreadyAnswered { answer: &'static str },
    /// Whether the person started is said only after the service accepted them.
    #[error("the service has not accepted this connection, so the person cannot have started")]
    ConnectionNotAccepted,
    /// A signposted person was not made known to the service: it has nothing to answer.
    #[error("the person was only signposted to this service, so it has nothing to answer")]
    ConnectionNotShared,
    /// Tagging a case with a tag it carries, or untagging one it does not.
    #[error("{}", if *on { "this case already carries this tag" } else { "this case does not carry this tag" })]
    TagState { on: bool },
}

impl CaseError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> CaseError {
        CaseError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// A stable code for the rule refused (used in problem details).
    pub fn rule(&self) -> &'static str {
        match self {
            CaseError::NotRegistered => "not_registered",
            CaseError::AlreadyRegistered => "already_registered",
            CaseError::CaseNotOpen { .. } => "case_not_open",
            CaseError::CaseAlreadyActive => "case_already_active",
            CaseError::UnknownReferral => "unknown_referral",
            CaseError::ReferralAlreadyDecided { .. } => "referral_already_decided",
            CaseError::NoLinkWorker { .. } => "no_link_worker",
            CaseError::SameLinkWorker => "same_link_worker",
            CaseError::InvalidAnswers { .. } => "invalid_answers",
            CaseError::NoBaseline { .. } => "no_baseline",
            CaseError::UnknownAppointment => "unknown_appointment",
            CaseError::AppointmentAlreadySettled { .. } => "appointment_already_settled",
            CaseError::UnknownGoal => "unknown_goal",
            CaseError::UnknownConnection => "unknown_connection",
            CaseError::UnknownService => "unknown_service",
            CaseError::ServiceWithdrawn => "service_withdrawn",
            CaseError::ServiceNotTakingReferrals { .. } => "service_not_taking_referrals",
            CaseError::Erased => "erased",
            CaseError::NoConsentToShare { .. } | CaseError::NoConsentToShareWithGp => {
                "no_consent_to_share"
            }
            CaseError::ConsentNotGiven { .. } => "consent_not_given",
            CaseError::NotClosed => "not_closed",
            CaseError::UnknownEvent => "unknown_event",
            CaseError::DuplicateId { .. } => "duplicate_id",
            CaseError::Invalid { .. } => "invalid_field",
            CaseError::UnknownNote => "unknown_note",
            CaseError::NotePinState { pinned: true } => "note_already_pinned",
            CaseError::NotePinState { pinned: false } => "note_not_pinned",
            CaseError::UnknownConcern => "unknown_concern",
            CaseError::ConcernClosed => "concern_closed",
            CaseError::ConcernNotCorrectable => "safeguarding_not_correctable",
            CaseError::ConnectionAlreadyAnswered { .. } => "connection_already_answered",
            CaseError::ConnectionNotAccepted => "connection_not_accepted",
            CaseError::ConnectionNotShared => "connection_not_shared",
            CaseError::TagState { on: true } => "tag_already_on",
            CaseError::TagState { on: false } => "tag_not_on",
        }
    }

    /// The command field the refusal is about, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            CaseError::UnknownReferral | CaseError::ReferralAlreadyDecided { .. } => {
                Some("referral_id")
            }
            CaseError::NoLinkWorker { .. } => Some("link_worker_id"),
            CaseError::SameLinkWorker => Some("to_link_worker_id"),
            CaseError::InvalidAnswers { .. } => Some("answers"),
            CaseError::NoBaseline { .. } => Some("timepoint"),
            CaseError::UnknownAppointment | CaseError::AppointmentAlreadySettled { .. } => {
                Some("appointment_id")
            }
            CaseError::UnknownGoal => Some("goal_id"),
            CaseError::UnknownConnection => Some("connection_id"),
            CaseError::UnknownService
            | CaseError::ServiceWithdrawn
            | CaseError::ServiceNotTakingReferrals { .. } => Some("service_id"),
            CaseError::NoConsentToShare { .. } => Some("kind"),
            CaseError::ConsentNotGiven { .. } => Some("scope"),
            CaseError::UnknownEvent => Some("corrects"),
            CaseError::Invalid { field, .. } => Some(field),
            CaseError::UnknownNote | CaseError::NotePinState { .. } => Some("note_id"),
            CaseError::UnknownConcern | CaseError::ConcernClosed => Some("concern_id"),
            CaseError::ConcernNotCorrectable => Some("corrects"),
            CaseError::TagState { .. } => Some("tag"),
            CaseError::ConnectionAlreadyAnswered { .. }
            | CaseError::ConnectionNotAccepted
            | CaseError::ConnectionNotShared => Some("connection_id"),
            _ => None,
        }
    }
}
