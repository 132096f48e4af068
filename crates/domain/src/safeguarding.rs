//! Case notes and safeguarding: free-text notes with an "important" pin, and safeguarding
//! concerns raised on a case (category, who was told, when, what came of it), updated, and
//! closed with a reason. An open concern is the record's risk flag.
//!
//! A concern is never corrected away: `EntryCorrected` naming one of its events is refused
//! (`safeguarding_not_correctable`); what changed is recorded as an update, and a concern ends
//! only by being closed with a reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::CaseError;
use crate::event::CaseEvent;
use crate::ids::{ConcernId, NoteId};
use crate::state::{CaseState, CaseStatus};

/// Longest case note, in characters.
pub const NOTE_TEXT_LIMIT: usize = 10_000;

/// Longest free text of a safeguarding concern (details, who was told, outcome, reason).
pub const CONCERN_TEXT_LIMIT: usize = 4_000;

/// A case note was written (the text is personal data). An important note is pinned: shown
/// first on the record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NoteAdded {
    pub note_id: NoteId,
    /// The note (personal data).
    pub text: String,
    /// Pinned as important from the start.
    pub important: bool,
}

/// A note was pinned as important.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NotePinned {
    pub note_id: NoteId,
}

/// A note's "important" pin was taken off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NoteUnpinned {
    pub note_id: NoteId,
}

/// A safeguarding concern was raised on the case: while it is open the record carries a risk
/// flag, shown to everyone working the case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SafeguardingConcernRaised {
    pub concern_id: ConcernId,
    /// A category code of the safeguarding rules (`projections/safeguarding/`).
    pub category: String,
    /// What the concern is (personal data).
    pub details: String,
    /// Who was told: the safeguarding lead, the local authority's duty team (personal data).
    pub told: String,
    /// When they were told.
    pub told_at: DateTime<Utc>,
    /// What came of it so far, if anything yet (personal data).
    pub outcome: Option<String>,
}

/// More about an open concern: someone else told, or what came of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SafeguardingConcernUpdated {
    pub concern_id: ConcernId,
    /// Who else was told (personal data).
    pub told: Option<String>,
    /// When they were told (with `told`).
    pub told_at: Option<DateTime<Utc>>,
    /// What came of it (personal data).
    pub outcome: Option<String>,
}

/// A concern was closed, with why: the only way a concern ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SafeguardingConcernClosed {
    pub concern_id: ConcernId,
    /// Why it is closed (personal data).
    pub reason: String,
}

/// The event types of a safeguarding concern: never corrected, only updated or closed.
pub const CONCERN_EVENT_TYPES: &[&str] = &[
    "SafeguardingConcernRaised",
    "SafeguardingConcernUpdated",
    "SafeguardingConcernClosed",
];

/// A note is written on a registered record, open or not (a closed case can still need one).
pub(crate) fn add_note(state: &CaseState, c: &NoteAdded) -> Result<Vec<CaseEvent>, CaseError> {
    registered(state)?;
    if state.notes.contains_key(&c.note_id) {
        return Err(CaseError::DuplicateId { what: "the note" });
    }
    Ok(vec![CaseEvent::NoteAdded(c.clone())])
}

/// Pins a note not pinned yet.
pub(crate) fn pin_note(state: &CaseState, c: &NotePinned) -> Result<Vec<CaseEvent>, CaseError> {
    registered(state)?;
    match state.notes.get(&c.note_id) {
        None => Err(CaseError::UnknownNote),
        Some(true) => Err(CaseError::NotePinState { pinned: true }),
        Some(false) => Ok(vec![CaseEvent::NotePinned(c.clone())]),
    }
}

/// Unpins a pinned note.
pub(crate) fn unpin_note(state: &CaseState, c: &NoteUnpinned) -> Result<Vec<CaseEvent>, CaseError> {
    registered(state)?;
    match state.notes.get(&c.note_id) {
        None => Err(CaseError::UnknownNote),
        Some(false) => Err(CaseError::NotePinState { pinned: false }),
        Some(true) => Ok(vec![CaseEvent::NoteUnpinned(c.clone())]),
    }
}

/// Raises a concern in a category the rules list (`categories`; `None` does not check).
pub(crate) fn raise_concern(
    state: &CaseState,
    c: &SafeguardingConcernRaised,
    categories: Option<&[String]>,
) -> Result<Vec<CaseEvent>, CaseError> {
    registered(state)?;
    if state.concerns.contains_key(&c.concern_id) {
        return Err(CaseError::DuplicateId {
            what: "the concern",
        });
    }
    if let Some(codes) = categories
        && !codes.contains(&c.category)
    {
        return Err(CaseError::invalid(
            "category",
            format!(
                "not a safeguarding category: use one of {}",
                codes.join(", ")
            ),
        ));
    }
    Ok(vec![CaseEvent::SafeguardingConcernRaised(c.clone())])
}

/// Adds to an open concern.
pub(crate) fn update_concern(
    state: &CaseState,
    c: &SafeguardingConcernUpdated,
) -> Result<Vec<CaseEvent>, CaseError> {
    open_concern(state, c.concern_id)?;
    Ok(vec![CaseEvent::SafeguardingConcernUpdated(c.clone())])
}

/// Closes an open concern.
pub(crate) fn close_concern(
    state: &CaseState,
    c: &SafeguardingConcernClosed,
) -> Result<Vec<CaseEvent>, CaseError> {
    open_concern(state, c.concern_id)?;
    Ok(vec![CaseEvent::SafeguardingConcernClosed(c.clone())])
}

/// A correction may not name a concern's events: refused with its own rule.
pub(crate) fn check_correctable(
    state: &CaseState,
    corrects: crate::EventId,
) -> Result<(), CaseError> {
    match state.events.get(&corrects) {
        Some(event_type) if CONCERN_EVENT_TYPES.contains(event_type) => {
            Err(CaseError::ConcernNotCorrectable)
        }
        _ => Ok(()),
    }
}

/// The stateless rules of these facts (text given and not too long; an update says something).
pub(crate) fn check_fact(event: &CaseEvent) -> Result<(), CaseError> {
    match event {
        CaseEvent::NoteAdded(c) => text(&c.text, "text", "write the note", NOTE_TEXT_LIMIT),
        CaseEvent::SafeguardingConcernRaised(c) => {
            text(&c.category, "category", "choose the category", 100)?;
            text(
                &c.details,
                "details",
                "say what the concern is",
                CONCERN_TEXT_LIMIT,
            )?;
            text(&c.told, "told", "say who was told", CONCERN_TEXT_LIMIT)?;
            optional(&c.outcome, "outcome")
        }
        CaseEvent::SafeguardingConcernUpdated(c) => {
            if c.told.is_none() && c.outcome.is_none() {
                return Err(CaseError::invalid(
                    "outcome",
                    "say who else was told or what came of it",
                ));
            }
            match (&c.told, c.told_at) {
                (Some(_), None) => {
                    return Err(CaseError::invalid("told_at", "say when they were told"));
                }
                (None, Some(_)) => {
                    return Err(CaseError::invalid("told", "say who was told"));
                }
                _ => {}
            }
            optional(&c.told, "told")?;
            optional(&c.outcome, "outcome")
        }
        CaseEvent::SafeguardingConcernClosed(c) => text(
            &c.reason,
            "reason",
            "say why the concern is closed",
            CONCERN_TEXT_LIMIT,
        ),
        _ => Ok(()),
    }
}

/// When someone was told, if the command says: it cannot be in the future.
pub(crate) fn told_at(event: &crate::CaseCommand) -> Option<DateTime<Utc>> {
    match event {
        crate::CaseCommand::RaiseConcern(c) => Some(c.told_at),
        crate::CaseCommand::UpdateConcern(c) => c.told_at,
        _ => None,
    }
}

fn open_concern(state: &CaseState, concern_id: ConcernId) -> Result<(), CaseError> {
    registered(state)?;
    match state.concerns.get(&concern_id) {
        None => Err(CaseError::UnknownConcern),
        Some(false) => Err(CaseError::ConcernClosed),
        Some(true) => Ok(()),
    }
}

fn registered(state: &CaseState) -> Result<(), CaseError> {
    if state.status == CaseStatus::Unregistered {
        Err(CaseError::NotRegistered)
    } else {
        Ok(())
    }
}

fn text(value: &str, field: &'static str, message: &str, limit: usize) -> Result<(), CaseError> {
    if value.trim().is_empty() {
        return Err(CaseError::invalid(field, message));
    }
    if value.chars().count() > limit {
        return Err(CaseError::invalid(
            field,
            format!("at most {limit} characters"),
        ));
    }
    Ok(())
}

fn optional(value: &Option<String>, field: &'static str) -> Result<(), CaseError> {
    match value {
        Some(v) => text(
            v,
            field,
            "leave it out, or write something",
            CONCERN_TEXT_LIMIT,
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
