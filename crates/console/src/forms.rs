//! What the console's forms send, read into the domain's commands. Only the shape of the input
//! is checked here (a number is a number, a date a date); every rule is the application's.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{
    AppointmentAttended, AppointmentBooked, AppointmentId, AppointmentNotAttended, CaseCommand,
    ContactId, ContactMode, ContactRecorded, DeclineReason, LinkWorkerAssigned, ReferralAccepted,
    ReferralDeclined, ReferralId, StaffId, TeamId, TransferCase, TransferReason,
};
use uuid::Uuid;

use crate::fields::{typed_instant, typed_text};

/// A field the person must put right, by its form name (the id of its input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A form's fields as sent (the last of a repeated name).
pub fn fields(body: &[u8]) -> HashMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// A form's fields from name and value pairs, for the forms' unit tests.
#[cfg(test)]
pub(crate) fn filled(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The code of `all` a form sent as `value`, if it is one.
pub(crate) fn coded<T: serde::Serialize + Copy>(all: &[T], value: &str) -> Option<T> {
    all.iter().find(|c| domain::code(*c) == value).copied()
}

/// A field as sent, trimmed (empty when absent).
pub(crate) fn text(fields: &HashMap<String, String>, name: &str) -> String {
    fields
        .get(name)
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

/// The id a form was drawn with (a fresh one when it sent none that reads).
pub(crate) fn form_id(fields: &HashMap<String, String>, name: &str) -> Uuid {
    fields
        .get(name)
        .and_then(|v| Uuid::try_parse(v).ok())
        .unwrap_or_else(Uuid::new_v4)
}

/// Why a form comes back whose record's version is not a number (a page damaged or made up):
/// it is not sent unchecked.
pub(crate) const BAD_VERSION: &str =
    "this form's page could not be read: open the page again and send the form again";

/// A form's record version that is not a number (see [`BAD_VERSION`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadVersion;

/// The record's version a form says it was shown at (`version` as sent): none when it says
/// none (the command then goes whatever the record's version is now), [`BadVersion`] when it
/// is not a version, which refuses the form rather than passing the check by.
pub fn shown_version(version: &str) -> Result<Option<i64>, BadVersion> {
    let version = version.trim();
    if version.is_empty() {
        return Ok(None);
    }
    match version.parse::<i64>() {
        Ok(v) if v >= 0 => Ok(Some(v)),
        _ => Err(BadVersion),
    }
}

/// How a contact or an appointment takes place, as chosen; or the error at `field` saying
/// `message`.
fn mode_chosen(
    chosen: Option<&str>,
    (field, message): (&str, &str),
    errors: &mut Vec<FieldError>,
) -> Option<ContactMode> {
    let mode = chosen.and_then(|m| coded(ContactMode::ALL, m));
    if mode.is_none() {
        errors.push(FieldError::new(field, message));
    }
    mode
}

/// The contact form, as shown and as sent back.
#[derive(Clone, Debug, Default)]
pub struct ContactForm {
    /// Chosen when the form is shown: a second send of the same form records nothing new.
    pub contact_id: Uuid,
    /// The record's version the form was shown at (empty: whatever it is now).
    pub version: String,
    pub mode: Option<String>,
    pub minutes: String,
    pub contacted_on: String,
    pub contacted_time: String,
    pub note: String,
    /// Why a contact from before the back-entry window is entered so late (a team lead's).
    pub late_entry_reason: String,
}

/// The longest note the form takes (characters).
pub const NOTE_LIMIT: usize = 10_000;

impl ContactForm {
    /// An empty form, dated `now`.
    pub fn blank(now: DateTime<Utc>) -> ContactForm {
        ContactForm {
            contact_id: Uuid::new_v4(),
            version: String::new(),
            mode: None,
            minutes: String::new(),
            contacted_on: crate::local::local(now).format("%Y-%m-%d").to_string(),
            contacted_time: crate::local::local(now).format("%H:%M").to_string(),
            note: String::new(),
            late_entry_reason: String::new(),
        }
    }

    /// The form as sent.
    pub fn from_fields(fields: &HashMap<String, String>) -> ContactForm {
        ContactForm {
            contact_id: form_id(fields, "contact_id"),
            version: text(fields, "version"),
            mode: fields.get("mode").cloned().filter(|m| !m.is_empty()),
            minutes: text(fields, "minutes"),
            contacted_on: text(fields, "contacted_on"),
            contacted_time: text(fields, "contacted_time"),
            note: fields.get("note").cloned().unwrap_or_default(),
            late_entry_reason: text(fields, "late_entry_reason"),
        }
    }

    /// The record's version the form was shown at, if it says one: the contact is recorded
    /// only while the record is still there.
    ///
    /// # Errors
    /// [`BadVersion`]: it says one that is not a number.
    pub fn expected_version(&self) -> Result<Option<i64>, BadVersion> {
        shown_version(&self.version)
    }

    /// The command the form asks for, or what to put right.
    ///
    /// # Errors
    /// One [`FieldError`] per field that does not read.
    pub fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let how = ("mode", "Select how the contact took place");
        let mode = mode_chosen(self.mode.as_deref(), how, &mut errors);
        let minutes = match self.minutes.parse::<u32>() {
            Ok(m) if (1..=domain::MAX_CONTACT_MINUTES).contains(&m) => Some(m),
            Ok(_) => {
                errors.push(FieldError::new(
                    "minutes",
                    format!(
                        "Minutes must be between 1 and {}",
                        domain::MAX_CONTACT_MINUTES
                    ),
                ));
                None
            }
            Err(_) => {
                errors.push(FieldError::new(
                    "minutes",
                    "Enter the minutes as a whole number, like 30",
                ));
                None
            }
        };
        let at = typed_instant(
            (&self.contacted_on, &self.contacted_time),
            ("contacted_on", "contacted_time"),
            "the contact",
            &mut errors,
        );
        let note = typed_text(&self.note, "note", NOTE_LIMIT, &mut errors);
        match (mode, minutes, at) {
            (Some(mode), Some(minutes), Some(at)) if errors.is_empty() => {
                Ok(CaseCommand::RecordContact(ContactRecorded {
                    contact_id: ContactId(self.contact_id),
                    mode,
                    minutes,
                    contacted_at: at,
                    note,
                }))
            }
            _ => Err(errors),
        }
    }
}

/// Booking an appointment with the person.
#[derive(Clone, Debug, Default)]
pub struct AppointmentForm {
    /// Chosen when the form is shown: a second send books nothing new.
    pub appointment_id: Uuid,
    /// The record's version the form was shown at (empty: whatever it is now).
    pub version: String,
    pub mode: Option<String>,
    pub on: String,
    pub at: String,
}

impl AppointmentForm {
    /// An empty form, for a day from `now`.
    pub fn blank(now: DateTime<Utc>) -> AppointmentForm {
        AppointmentForm {
            appointment_id: Uuid::new_v4(),
            version: String::new(),
            mode: None,
            on: (crate::local::today(now) + chrono::Duration::days(7))
                .format("%Y-%m-%d")
                .to_string(),
            at: "10:00".to_owned(),
        }
    }

    /// The form as sent.
    pub fn from_fields(fields: &HashMap<String, String>) -> AppointmentForm {
        AppointmentForm {
            appointment_id: form_id(fields, "appointment_id"),
            version: text(fields, "version"),
            mode: fields
                .get("appointment_mode")
                .cloned()
                .filter(|m| !m.is_empty()),
            on: text(fields, "appointment_on"),
            at: text(fields, "appointment_at"),
        }
    }

    /// The record's version the form was shown at, if it says one: the appointment is booked
    /// only while the record is still there.
    ///
    /// # Errors
    /// [`BadVersion`]: it says one that is not a number.
    pub fn expected_version(&self) -> Result<Option<i64>, BadVersion> {
        shown_version(&self.version)
    }

    /// The booking the form asks for, or what to put right.
    ///
    /// # Errors
    /// One [`FieldError`] per field that does not read.
    pub fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let how = (
            "appointment_mode",
            "Select how the appointment will take place",
        );
        let mode = mode_chosen(self.mode.as_deref(), how, &mut errors);
        let at = typed_instant(
            (&self.on, &self.at),
            ("appointment_on", "appointment_at"),
            "the appointment",
            &mut errors,
        );
        match (mode, at) {
            (Some(mode), Some(at)) if errors.is_empty() => {
                Ok(CaseCommand::BookAppointment(AppointmentBooked {
                    appointment_id: AppointmentId(self.appointment_id),
                    scheduled_for: at,
                    mode,
                }))
            }
            _ => Err(errors),
        }
    }
}

/// What became of a booked appointment: `attended`, `did_not_attend`, or cancelled by the
/// person (`cancelled_by_client`) or by the service (`cancelled_by_service`).
///
/// # Errors
/// A [`FieldError`] when the form names no appointment or no outcome.
pub fn appointment_outcome(
    fields: &HashMap<String, String>,
) -> Result<CaseCommand, Vec<FieldError>> {
    let id = fields
        .get("appointment_id")
        .and_then(|v| Uuid::try_parse(v).ok())
        .map(AppointmentId);
    match (id, fields.get("outcome").map(String::as_str)) {
        (Some(appointment_id), Some("attended")) => {
            Ok(CaseCommand::RecordAttendance(AppointmentAttended {
                appointment_id,
            }))
        }
        (Some(appointment_id), Some("did_not_attend")) => {
            Ok(CaseCommand::RecordDidNotAttend(AppointmentNotAttended {
                appointment_id,
            }))
        }
        (Some(appointment_id), Some(by @ ("cancelled_by_client" | "cancelled_by_service"))) => Ok(
            CaseCommand::CancelAppointment(domain::AppointmentCancelled {
                appointment_id,
                cancelled_by: if by == "cancelled_by_client" {
                    domain::CancelledBy::Client
                } else {
                    domain::CancelledBy::Service
                },
                note: None,
            }),
        ),
        _ => Err(vec![FieldError::new(
            "appointments",
            "Choose what became of an appointment",
        )]),
    }
}

/// A team lead's decision on a referral: accept it, or decline it with a reason.
#[derive(Clone, Debug, Default)]
pub struct DecisionForm {
    pub referral_id: String,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub note: String,
}

impl DecisionForm {
    /// The form as sent.
    pub fn from_fields(fields: &HashMap<String, String>) -> DecisionForm {
        let chosen = |name: &str| fields.get(name).cloned().filter(|v| !v.is_empty());
        DecisionForm {
            referral_id: fields.get("referral_id").cloned().unwrap_or_default(),
            decision: chosen("decision"),
            reason: chosen("reason"),
            note: fields.get("note").cloned().unwrap_or_default(),
        }
    }

    /// The command the form asks for, or what to put right.
    ///
    /// # Errors
    /// One [`FieldError`] per field that does not read.
    pub fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let Ok(referral_id) = Uuid::try_parse(&self.referral_id).map(ReferralId) else {
            return Err(vec![FieldError::new(
                "decision",
                "This referral is not on the record: reload the page",
            )]);
        };
        let note = Some(self.note.trim().to_owned()).filter(|n| !n.is_empty());
        if note
            .as_ref()
            .is_some_and(|n| n.chars().count() > NOTE_LIMIT)
        {
            return Err(vec![FieldError::new(
                "decline-note",
                format!("The note must be {NOTE_LIMIT} characters or fewer"),
            )]);
        }
        match self.decision.as_deref() {
            Some("accept") => Ok(CaseCommand::AcceptReferral(ReferralAccepted {
                referral_id,
            })),
            Some("decline") => {
                let reason = self
                    .reason
                    .as_deref()
                    .and_then(|r| coded(DeclineReason::ALL, r));
                match reason {
                    Some(reason) => Ok(CaseCommand::DeclineReferral(ReferralDeclined {
                        referral_id,
                        reason,
                        note,
                    })),
                    None => Err(vec![FieldError::new(
                        "reason",
                        "Select why the referral is declined",
                    )]),
                }
            }
            _ => Err(vec![FieldError::new(
                "decision",
                "Choose to accept or decline the referral",
            )]),
        }
    }
}

/// A team lead's assignment of a case to a link worker of their team (a transfer, with its
/// reason, when someone else has it).
#[derive(Clone, Debug, Default)]
pub struct AssignmentForm {
    pub link_worker_id: Option<String>,
    pub transfer_reason: Option<String>,
}

impl AssignmentForm {
    /// The form as sent.
    pub fn from_fields(fields: &HashMap<String, String>) -> AssignmentForm {
        let chosen = |name: &str| fields.get(name).cloned().filter(|v| !v.is_empty());
        AssignmentForm {
            link_worker_id: chosen("link_worker_id"),
            transfer_reason: chosen("transfer_reason"),
        }
    }

    /// The command: an assignment to `team`, or a transfer when the case has a link worker.
    ///
    /// # Errors
    /// One [`FieldError`] per field that does not read.
    pub fn command(&self, team: TeamId, transfer: bool) -> Result<CaseCommand, Vec<FieldError>> {
        let Some(worker) = self
            .link_worker_id
            .as_deref()
            .and_then(|w| Uuid::try_parse(w).ok())
            .map(StaffId)
        else {
            return Err(vec![FieldError::new(
                "link_worker_id",
                "Select a link worker",
            )]);
        };
        if !transfer {
            return Ok(CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
                link_worker_id: worker,
                team_id: team,
            }));
        }
        let reason = self
            .transfer_reason
            .as_deref()
            .and_then(|r| coded(TransferReason::ALL, r));
        match reason {
            Some(reason) => Ok(CaseCommand::TransferCase(TransferCase {
                to_link_worker_id: worker,
                team_id: team,
                reason,
            })),
            None => Err(vec![FieldError::new(
                "transfer_reason",
                "Select why the case moves",
            )]),
        }
    }
}

/// Where on the form a refusal of the application belongs: the command's field names are the
/// form's, but for the date, which the form splits in two.
pub fn form_field(field: &str) -> &str {
    match field {
        "contacted_at" => "contacted_on",
        "referral_id" => "decision",
        "to_link_worker_id" => "link_worker_id",
        "scheduled_for" => "appointment_on",
        "appointment_id" => "appointments",
        other => other,
    }
}

/// What makes a form sent twice under its key "the same request" (its fingerprint): the path
/// it was sent to and every field as sent, but the CSRF token. A form sent again as it was
/// (a double click, a retry) is answered with its first result; the same key with other
/// entries (the page gone back to and changed, or a key edited) is refused
/// ([`crate::ALREADY_SENT`]), never taken as done.
pub(crate) fn fingerprint(
    req: &actix_web::HttpRequest,
    fields: &HashMap<String, String>,
) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut named: Vec<(&String, &String)> =
        fields.iter().filter(|(name, _)| *name != "csrf").collect();
    named.sort();
    let mut digest = Sha256::new();
    digest.update(b"casebook-console-form\0");
    digest.update(req.path().as_bytes());
    for (name, value) in named {
        for part in [name, value] {
            digest.update((part.len() as u64).to_be_bytes());
            digest.update(part.as_bytes());
        }
    }
    digest.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> ContactForm {
        ContactForm::from_fields(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_complete_form_is_a_contact_at_its_date_and_time() {
        let id = Uuid::new_v4();
        let command = form(&[
            ("contact_id", &id.to_string()),
            ("mode", "phone"),
            ("minutes", " 25 "),
            ("contacted_on", "2026-11-27"),
            ("contacted_time", "09:05"),
            ("note", "  "),
        ])
        .command()
        .expect("reads");
        let CaseCommand::RecordContact(contact) = command else {
            panic!("not a contact: {command:?}");
        };
        assert_eq!(contact.contact_id, ContactId(id));
        assert_eq!(contact.mode, ContactMode::Phone);
        assert_eq!(contact.minutes, 25);
        assert_eq!(
            contact.contacted_at.to_rfc3339(),
            "2026-11-27T09:05:00+00:00"
        );
        assert_eq!(contact.note, None, "a blank note is no note");
    }

    #[test]
    fn a_version_is_a_number_or_none_and_anything_else_is_refused() {
        assert_eq!(shown_version(""), Ok(None));
        assert_eq!(shown_version(" 12 "), Ok(Some(12)));
        assert_eq!(shown_version("0"), Ok(Some(0)));
        for bad in ["abc", "7x", "-1", "1.5", "1e3", "99999999999999999999"] {
            assert_eq!(shown_version(bad), Err(BadVersion), "{bad}");
        }
    }

    #[test]
    fn times_are_typed_on_a_uk_wall_clock() {
        let contact = |day: &str, time: &str| {
            form(&[
                ("mode", "phone"),
                ("minutes", "10"),
                ("contacted_on", day),
                ("contacted_time", time),
            ])
            .command()
        };
        let Ok(CaseCommand::RecordContact(summer)) = contact("2026-07-01", "09:05") else {
            panic!("a summer contact reads");
        };
        assert_eq!(
            summer.contacted_at.to_rfc3339(),
            "2026-07-01T08:05:00+00:00"
        );
        // The hour the clocks skip is no time at all, and the field says so.
        let skipped = contact("2026-03-29", "01:30").expect_err("01:30 did not happen");
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].field, "contacted_time");
        // The form's defaults are the wall clock's too.
        let blank = ContactForm::blank("2026-06-30T23:30:00Z".parse().expect("instant"));
        assert_eq!(
            (blank.contacted_on.as_str(), blank.contacted_time.as_str()),
            ("2026-07-01", "00:30")
        );
    }

    #[test]
    fn every_field_that_does_not_read_is_named() {
        let errors = form(&[
            ("mode", "carrier pigeon"),
            ("minutes", "half an hour"),
            ("contacted_on", "2026-02-30"),
            ("contacted_time", "25:00"),
        ])
        .command()
        .expect_err("refused");
        let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["mode", "minutes", "contacted_on", "contacted_time"]);
        let zero = form(&[
            ("mode", "phone"),
            ("minutes", "0"),
            ("contacted_on", "2026-02-03"),
            ("contacted_time", "10:00"),
        ])
        .command()
        .expect_err("no minutes");
        assert_eq!(zero[0].field, "minutes");
    }
}
