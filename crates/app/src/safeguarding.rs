//! Case notes and safeguarding concerns as the record shows them: notes with the important ones
//! first, concerns with who was told and what came of it, and the risk flag (an open concern).
//! They are part of the record read (`CaseService::record`), so every read of them is audited.
//! The rules are the domain's (`domain::decide`) and the policy's (`policy::may_close_concern`).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use domain::CaseEvent;
use projector::safeguarding_rules::SafeguardingRules;
use serde::Serialize;
use uuid::Uuid;

use crate::journey::History;

static RULES: LazyLock<SafeguardingRules> = LazyLock::new(SafeguardingRules::current);

/// The safeguarding rules commands are held to (the latest version this build knows).
pub fn rules() -> &'static SafeguardingRules {
    &RULES
}

/// A case note as the record shows it (corrections applied; `[erased]` once the person's
/// personal data is erased).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CaseNote {
    pub note_id: Uuid,
    pub text: String,
    /// Pinned as important: shown first.
    pub important: bool,
    pub written_at: DateTime<Utc>,
    pub written_by: Uuid,
}

/// One addition to a concern: someone else told, or what came of it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConcernUpdate {
    pub told: Option<String>,
    pub told_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Uuid,
}

/// A safeguarding concern as the record shows it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SafeguardingConcern {
    pub concern_id: Uuid,
    /// The category's code (`projections/safeguarding/`).
    pub category: String,
    /// The category's name under the latest rules.
    pub category_name: String,
    pub details: String,
    /// Who was told first, and when.
    pub told: String,
    pub told_at: DateTime<Utc>,
    /// What came of it, as last recorded.
    pub outcome: Option<String>,
    pub raised_at: DateTime<Utc>,
    pub raised_by: Uuid,
    /// Everything added since, oldest first.
    pub updates: Vec<ConcernUpdate>,
    /// Open until closed with a reason.
    pub open: bool,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<Uuid>,
    pub closure_reason: Option<String>,
}

/// What the record shows of notes and safeguarding.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct NotesAndConcerns {
    pub notes: Vec<CaseNote>,
    pub concerns: Vec<SafeguardingConcern>,
}

/// Notes (important first, then newest first) and concerns (open first, then newest first),
/// from the record's events with corrections applied.
pub(crate) fn notes_and_concerns(history: &History) -> NotesAndConcerns {
    let rules = rules();
    let mut notes: Vec<CaseNote> = Vec::new();
    let mut concerns: Vec<SafeguardingConcern> = Vec::new();
    for ((recorded, _), event) in history.events.iter().zip(history.corrected()) {
        let at = recorded.metadata.occurred_at;
        let by = recorded.metadata.actor_id;
        match event {
            CaseEvent::NoteAdded(e) => notes.push(CaseNote {
                note_id: e.note_id.0,
                text: e.text,
                important: e.important,
                written_at: at,
                written_by: by,
            }),
            CaseEvent::NotePinned(e) => set_pin(&mut notes, e.note_id.0, true),
            CaseEvent::NoteUnpinned(e) => set_pin(&mut notes, e.note_id.0, false),
            CaseEvent::SafeguardingConcernRaised(e) => concerns.push(SafeguardingConcern {
                concern_id: e.concern_id.0,
                category_name: rules.category_name(&e.category).to_owned(),
                category: e.category,
                details: e.details,
                told: e.told,
                told_at: e.told_at,
                outcome: e.outcome,
                raised_at: at,
                raised_by: by,
                updates: Vec::new(),
                open: true,
                closed_at: None,
                closed_by: None,
                closure_reason: None,
            }),
            CaseEvent::SafeguardingConcernUpdated(e) => {
                if let Some(concern) = concerns.iter_mut().find(|c| c.concern_id == e.concern_id.0)
                {
                    if e.outcome.is_some() {
                        concern.outcome.clone_from(&e.outcome);
                    }
                    concern.updates.push(ConcernUpdate {
                        told: e.told,
                        told_at: e.told_at,
                        outcome: e.outcome,
                        recorded_at: at,
                        recorded_by: by,
                    });
                }
            }
            CaseEvent::SafeguardingConcernClosed(e) => {
                if let Some(concern) = concerns.iter_mut().find(|c| c.concern_id == e.concern_id.0)
                {
                    concern.open = false;
                    concern.closed_at = Some(at);
                    concern.closed_by = Some(by);
                    concern.closure_reason = Some(e.reason);
                }
            }
            _ => {}
        }
    }
    // Stable sorts over the log's order reversed: newest first within each group.
    notes.reverse();
    notes.sort_by_key(|n| !n.important);
    concerns.reverse();
    concerns.sort_by_key(|c| !c.open);
    NotesAndConcerns { notes, concerns }
}

fn set_pin(notes: &mut [CaseNote], note_id: Uuid, important: bool) {
    if let Some(note) = notes.iter_mut().find(|n| n.note_id == note_id) {
        note.important = important;
    }
}
