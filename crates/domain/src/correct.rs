//! What a correction may change: the fields of the entry it names, to values the entry could
//! have been recorded with in the first place. A corrected entry is held to the same rules as
//! the original fact (an answer out of range, a wrong item count, a date in the future), and a
//! baseline cannot be relabelled so that later scores are left with none to pair with.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::CaseError;
use crate::codes::Timepoint;
use crate::event::*;
use crate::state::CaseState;

/// The command field a refusal of a corrected value names (`corrected_fields.<field>`), for
/// the fields an entry has; `corrected_fields` for any other.
fn nested(field: &str) -> &'static str {
    const FIELDS: &[&str] = &[
        "corrected_fields.answers",
        "corrected_fields.appointment_id",
        "corrected_fields.assessment_id",
        "corrected_fields.client_id",
        "corrected_fields.connection_id",
        "corrected_fields.contact_id",
        "corrected_fields.gap_id",
        "corrected_fields.goal_id",
        "corrected_fields.link_worker_id",
        "corrected_fields.message_id",
        "corrected_fields.referral_id",
        "corrected_fields.service_id",
        "corrected_fields.team_id",
        "corrected_fields.area",
        "corrected_fields.administered_on",
        "corrected_fields.contacted_at",
        "corrected_fields.description",
        "corrected_fields.destination",
        "corrected_fields.instrument",
        "corrected_fields.instrument_version",
        "corrected_fields.kind",
        "corrected_fields.licensor_score",
        "corrected_fields.minutes",
        "corrected_fields.need",
        "corrected_fields.note",
        "corrected_fields.outcome",
        "corrected_fields.personal",
        "corrected_fields.practice",
        "corrected_fields.reason",
        "corrected_fields.reasons",
        "corrected_fields.received_on",
        "corrected_fields.redirected_to",
        "corrected_fields.scheduled_for",
        "corrected_fields.source",
        "corrected_fields.text",
        "corrected_fields.timepoint",
        "corrected_fields.waiting_weeks",
    ];
    FIELDS
        .iter()
        .find(|f| f.strip_prefix("corrected_fields.") == Some(field))
        .copied()
        .unwrap_or("corrected_fields")
}

/// Writes a correction's fields over the payload of the entry it corrects (an event of
/// `event_type`, as read now). A correction recorded when a redirection's destination was words
/// (`redirected_to`, schema v1) corrects the destination of the upcast entry. Every reader that
/// applies corrections (deciding, the projectors' refold, the journey) comes through here.
pub fn apply_corrected_fields(
    event_type: &str,
    payload: &mut Value,
    corrected_fields: &serde_json::Map<String, Value>,
) {
    let Value::Object(fields) = payload else {
        return;
    };
    for (field, value) in corrected_fields {
        let (field, value) = current_field(event_type, field, value);
        fields.insert(field, value);
    }
}

/// A corrected field as the entry's current schema names it: `redirected_to` (a redirection's
/// words, schema v1) is a described destination now.
fn current_field(event_type: &str, field: &str, value: &Value) -> (String, Value) {
    match (event_type, field) {
        ("ReferralRedirected", "redirected_to") => (
            "destination".to_owned(),
            serde_json::json!({ "kind": "described", "text": value }),
        ),
        _ => (field.to_owned(), value.clone()),
    }
}

/// The entry a correction names, as it will read once corrected.
///
/// # Errors
/// [`CaseError::Invalid`] on `corrected_fields` (or the field) when a field is not the entry's,
/// is an id, or does not fit.
pub fn corrected_entry(
    original: &CaseEvent,
    correction: &EntryCorrected,
) -> Result<CaseEvent, CaseError> {
    if matches!(
        original,
        CaseEvent::EntryCorrected(_)
            | CaseEvent::ClientErased(_)
            | CaseEvent::LateEntryExplained(_)
    ) {
        return Err(CaseError::invalid(
            "corrects",
            format!("a {} cannot be corrected", original.event_type()),
        ));
    }
    let mut payload = original.to_payload();
    let Value::Object(fields) = &mut payload else {
        return Err(CaseError::invalid("corrects", "this entry has no fields"));
    };
    for (field, value) in &correction.corrected_fields {
        // A correction recorded when a redirection's destination was words (schema v1) reads
        // as a correction of the destination, as the entry it corrects now does.
        let (field, value) = current_field(original.event_type(), field, value);
        let (field, value) = (&field, &value);
        if !fields.contains_key(field) {
            return Err(CaseError::invalid(
                nested(field),
                format!("a {} has no field {field}", original.event_type()),
            ));
        }
        if field.ends_with("_id") && fields.get(field) != Some(value) {
            return Err(CaseError::invalid(
                nested(field),
                "an id cannot be corrected: record the right entry instead",
            ));
        }
        fields.insert(field.clone(), value.clone());
    }
    CaseEvent::decode(original.event_type(), original.schema_version(), payload).map_err(|e| {
        CaseError::invalid(
            "corrected_fields",
            format!(
                "the corrected values do not fit a {}: {}",
                original.event_type(),
                e.reason
            ),
        )
    })
}

/// Checks a corrected entry as the original fact was checked, and that relabelling an
/// assessment leaves every later score a baseline to pair with.
///
/// # Errors
/// [`CaseError::Invalid`] naming `corrected_fields.<field>`.
pub fn check_correction(
    state: &CaseState,
    correction: &EntryCorrected,
    original: &CaseEvent,
    corrected: &CaseEvent,
    now: Option<DateTime<Utc>>,
) -> Result<(), CaseError> {
    let within = |error: CaseError| match error {
        CaseError::Invalid { field, message } => {
            CaseError::invalid(nested(field.split('.').next().unwrap_or(field)), message)
        }
        CaseError::InvalidAnswers { instrument, detail } => CaseError::invalid(
            "corrected_fields.answers",
            format!("{} answers are not valid: {detail}", instrument.label()),
        ),
        other => other,
    };
    crate::decide::check_fact(corrected).map_err(within)?;
    if let Some(now) = now {
        let future = |field: &'static str, later: bool| {
            if later {
                Err(CaseError::invalid(nested(field), "that is in the future"))
            } else {
                Ok(())
            }
        };
        let skew = chrono::Duration::seconds(crate::timing::ALLOWED_SKEW_SECONDS);
        match corrected {
            CaseEvent::ReferralReceived(r) => {
                future("received_on", r.received_on > crate::calendar::today(now))?
            }
            CaseEvent::ContactRecorded(c) => future("contacted_at", c.contacted_at > now + skew)?,
            CaseEvent::AssessmentRecorded(a) => {
                future(
                    "administered_on",
                    a.administered_on > crate::calendar::today(now),
                )?;
            }
            // A booking corrected is held to a booking's days.
            CaseEvent::AppointmentBooked(b) => crate::timing::check_booking(
                state,
                b.scheduled_for,
                now,
                "corrected_fields.scheduled_for",
            )?,
            _ => {}
        }
    }
    // No corrected date before the first year any fact may have.
    let early = match corrected {
        CaseEvent::ReferralReceived(r) => Some(("received_on", r.received_on)),
        CaseEvent::ContactRecorded(c) => Some(("contacted_at", c.contacted_at.date_naive())),
        CaseEvent::AssessmentRecorded(a) => Some(("administered_on", a.administered_on)),
        CaseEvent::AppointmentBooked(a) => Some(("scheduled_for", a.scheduled_for.date_naive())),
        CaseEvent::ClientRegistered(c) => c.personal.date_of_birth.map(|d| ("personal", d)),
        _ => None,
    };
    if let Some((field, day)) = early
        && crate::timing::too_early(day)
    {
        return Err(CaseError::invalid(
            nested(field),
            format!(
                "{day} is before {}: give the real date",
                crate::timing::EARLIEST_YEAR
            ),
        ));
    }
    if let (CaseEvent::AssessmentRecorded(before), CaseEvent::AssessmentRecorded(after)) =
        (original, corrected)
    {
        let mut scores = state.assessment_facts.clone();
        scores.insert(correction.corrects, (after.instrument, after.timepoint));
        for instrument in [before.instrument, after.instrument] {
            let of = |t: &Timepoint| {
                scores
                    .values()
                    .filter(|(i, _)| *i == instrument)
                    .any(|(_, timepoint)| timepoint == t)
            };
            let later = scores
                .values()
                .any(|(i, t)| *i == instrument && *t != Timepoint::Baseline);
            if later && !of(&Timepoint::Baseline) {
                return Err(CaseError::invalid(
                    if before.instrument == after.instrument {
                        "corrected_fields.timepoint"
                    } else {
                        "corrected_fields.instrument"
                    },
                    format!(
                        "later {} scores would have no baseline to pair with",
                        instrument.label()
                    ),
                ));
            }
        }
    }
    Ok(())
}
