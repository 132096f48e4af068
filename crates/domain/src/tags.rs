//! Tags on a case: codes from the service's own list (`projections/tags/`), such as
//! `housing-priority` or `interpreter-needed`, that link workers and team leads filter their
//! caseloads by. A tag is put on and taken off, never corrected: an `EntryCorrected` naming
//! either event is refused (field `corrects`), since what a tag means is only its code.

use serde::{Deserialize, Serialize};

use crate::CaseError;
use crate::event::CaseEvent;
use crate::state::CaseState;

/// The event types of tags: never corrected, only put on and taken off.
pub const TAG_EVENT_TYPES: &[&str] = &["CaseTagged", "CaseUntagged"];

/// A tag of the service's list was put on the case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CaseTagged {
    /// A tag code of the tag rules (`projections/tags/`).
    pub tag: String,
}

/// A tag was taken off the case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CaseUntagged {
    /// A tag the case carries.
    pub tag: String,
}

/// Puts a tag of the list (`codes`; `None` does not check) on a registered record that does not
/// carry it yet. A closed case can be tagged too: it may be reopened, and the tag says why.
pub(crate) fn tag(
    state: &CaseState,
    c: &CaseTagged,
    codes: Option<&[String]>,
) -> Result<Vec<CaseEvent>, CaseError> {
    crate::decide::registered(state)?;
    if let Some(codes) = codes
        && !codes.contains(&c.tag)
    {
        return Err(CaseError::invalid(
            "tag",
            format!(
                "not one of this service's tags: use one of {}",
                codes.join(", ")
            ),
        ));
    }
    if state.tags.contains(&c.tag) {
        return Err(CaseError::TagState { on: true });
    }
    Ok(vec![CaseEvent::CaseTagged(c.clone())])
}

/// Takes a tag the case carries off it (whether or not the list still has it: a tag retired
/// from the list must still come off).
pub(crate) fn untag(state: &CaseState, c: &CaseUntagged) -> Result<Vec<CaseEvent>, CaseError> {
    crate::decide::registered(state)?;
    if !state.tags.contains(&c.tag) {
        return Err(CaseError::TagState { on: false });
    }
    Ok(vec![CaseEvent::CaseUntagged(c.clone())])
}

/// Refuses a correction of a tag event: a wrong tag is taken off and the right one put on.
pub(crate) fn check_correctable(
    state: &CaseState,
    corrects: crate::EventId,
) -> Result<(), CaseError> {
    match state.events.get(&corrects) {
        Some(event_type) if TAG_EVENT_TYPES.contains(event_type) => Err(CaseError::invalid(
            "corrects",
            "a tag is not corrected: take the wrong tag off and put the right one on",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
