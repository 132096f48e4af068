//! The social prescribing case as commands, events and pure rules.
//!
//! A client's stream is the story of their journey: registered, referred, accepted, assigned,
//! met, assessed, connected onward, reviewed, closed, perhaps referred again. [`decide`] holds
//! every rule and turns a [`CaseCommand`] into [`CaseEvent`]s or a [`CaseError`]; [`evolve`]
//! folds events into [`CaseState`] and holds none.
//!
//! This crate does no IO, reads no clock and makes no random numbers: ids and times arrive
//! inside commands (and the time now in a [`Timing`]), so every decision can be replayed.

pub mod calendar;
pub mod codes;
mod command;
mod correct;
mod decide;
mod demographics;
pub mod directory;
mod error;
mod event;
mod ids;
mod instrument;
mod lone_working;
mod personal;
pub mod provider;
mod safeguarding;
mod state;
mod tags;
pub mod task;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod timing;

pub use codes::*;
pub use command::{CaseCommand, TransferCase};
pub use correct::{apply_corrected_fields, corrected_entry};
pub use decide::{Lookups, MAX_CONTACT_MINUTES, decide};
pub use demographics::{
    DEMOGRAPHICS_EVENT_TYPE, DEMOGRAPHICS_TEXT_LIMIT, Demographics, DemographicsRecorded,
    EthnicCategory, EthnicGroup, GenderIdentity, ReportableDemographics, Sex, is_practice_code,
    normalise_postcode,
};
pub use error::CaseError;
pub use event::*;
pub use ids::*;
pub use instrument::Instrument;
pub use lone_working::{LONE_WORKING_TEXT_LIMIT, LoneWorkingCheckedIn, LoneWorkingPlanRecorded};
pub use personal::{NhsNumber, PersonalDetails};
pub use provider::{
    ConnectionAcceptedByProvider, ConnectionDeclinedByProvider, ConnectionStartRecorded,
    ProviderAnswer, ProviderCommand, ProviderDeclineReason,
};
pub use safeguarding::{
    CONCERN_EVENT_TYPES, CONCERN_TEXT_LIMIT, NOTE_TEXT_LIMIT, NoteAdded, NotePinned, NoteUnpinned,
    SafeguardingConcernClosed, SafeguardingConcernRaised, SafeguardingConcernUpdated,
};
pub use state::{AppointmentStatus, CaseState, CaseStatus, ReferralStatus, evolve};
pub use tags::{CaseTagged, CaseUntagged, TAG_EVENT_TYPES};
pub use timing::{ALLOWED_SKEW_SECONDS, BackEntryWindow, Timing, check_timing};

#[cfg(test)]
mod tests;
