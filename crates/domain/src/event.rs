//! The client stream's events: past-tense facts. Their encoding (type name, schema version,
//! payload JSON) is a permanent API, pinned by a snapshot test; a change of shape needs a new
//! schema version and an upcaster in `eventstore`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::codes::*;
use crate::ids::*;
use crate::provider::{
    ConnectionAcceptedByProvider, ConnectionDeclinedByProvider, ConnectionStartRecorded,
};
use crate::safeguarding::*;
use crate::{Instrument, PersonalDetails};

/// The stream type of a client's journey.
pub const CLIENT_STREAM: &str = "client";

/// The person was registered; personal details are kept in their own field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClientRegistered {
    pub client_id: ClientId,
    pub personal: PersonalDetails,
    /// Locality used for area reports (a ward, town or postcode district; not an address).
    pub area: String,
}

/// Consent was given for a scope; for onward services, optionally only named ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConsentRecorded {
    pub scope: ConsentScope,
    /// For onward sharing: the services covered; empty means any service.
    pub services: Vec<ServiceId>,
    /// For consent to be contacted for reminders: the person's preferred channel (needed with
    /// that scope, refused with any other). Absent from every event recorded before it existed
    /// (and from every other scope's), so old events decode unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<ContactChannel>,
}

/// Consent for a scope was withdrawn; honoured from now on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConsentWithdrawn {
    pub scope: ConsentScope,
}

/// Who made a referral.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Referrer {
    /// A Casebook user, when the referrer is one.
    pub staff_id: Option<StaffId>,
    /// The referrer's name as given.
    pub name: Option<String>,
    /// Their practice or organisation.
    pub organisation: Option<String>,
}

/// A referral arrived through the single point of access.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReferralReceived {
    pub referral_id: ReferralId,
    pub source: ReferralSource,
    pub referrer: Referrer,
    /// One or more coded reasons.
    pub reasons: Vec<NeedDomain>,
    pub urgency: Urgency,
    pub received_on: NaiveDate,
    /// Free text from the referrer (personal data).
    pub note: Option<String>,
}

/// The referral was accepted: the case is open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReferralAccepted {
    pub referral_id: ReferralId,
}

/// The referral was declined (who declined it is in the event's metadata).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReferralDeclined {
    pub referral_id: ReferralId,
    pub reason: DeclineReason,
    pub note: Option<String>,
}

/// The referral was sent to a more suitable service instead (schema v2: where it went is a
/// directory service or a coded destination, so redirections can be counted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReferralRedirected {
    pub referral_id: ReferralId,
    /// Where it went.
    pub destination: Destination,
    pub note: Option<String>,
}

/// Where a redirected referral went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Destination {
    /// A service listed in the directory that takes referrals.
    Service { service_id: ServiceId },
    /// One of the destinations the recording rules list (`projections/recording/`), e.g.
    /// `gp_practice` or `talking_therapies`.
    Coded { code: String },
    /// Where it went, in words: only redirections recorded before destinations were coded
    /// (schema v1) read like this; a new redirection names a service or a code.
    Described { text: String },
}

impl Destination {
    /// The key reports count by: the code, `service:<id>`, or `uncoded` for every
    /// redirection recorded in words before destinations were coded.
    pub fn report_code(&self) -> String {
        match self {
            Destination::Service { service_id } => format!("service:{}", service_id.0),
            Destination::Coded { code } => code.clone(),
            // The words stay in the record: typed freely, they may name a person, and figures
            // (kept by analysts, copied into read models, outliving erasure) hold codes only.
            Destination::Described { .. } => "uncoded".to_owned(),
        }
    }
}

/// Upcasts a `ReferralRedirected` payload from schema v1 (`redirected_to`, free text) to v2
/// (`destination`): the words become a described destination.
///
/// # Errors
/// A payload that is not a v1 redirection.
pub fn referral_redirected_v1_to_v2(payload: Value) -> Result<Value, String> {
    let Value::Object(mut fields) = payload else {
        return Err("a ReferralRedirected v1 payload is an object".to_owned());
    };
    let Some(text) = fields.remove("redirected_to") else {
        return Err("a ReferralRedirected v1 payload has redirected_to".to_owned());
    };
    let mut destination = Map::new();
    destination.insert("kind".to_owned(), Value::String("described".to_owned()));
    destination.insert("text".to_owned(), text);
    fields.insert("destination".to_owned(), Value::Object(destination));
    Ok(Value::Object(fields))
}

/// One upcasting step: a payload of one schema version to the next version's shape.
pub type UpcastStep = fn(Value) -> Result<Value, String>;

/// Every upcasting step this build knows: (event type, from schema version, step), each giving
/// the next version. Stored events are never rewritten; they are brought to the current shape
/// as they are read.
pub const UPCASTS: &[(&str, i32, UpcastStep)] =
    &[("ReferralRedirected", 1, referral_redirected_v1_to_v2)];

/// A link worker was assigned to the case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LinkWorkerAssigned {
    pub link_worker_id: StaffId,
    pub team_id: TeamId,
}

/// The case moved to another link worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CaseTransferred {
    pub from_link_worker_id: StaffId,
    pub to_link_worker_id: StaffId,
    pub team_id: TeamId,
    pub reason: TransferReason,
}

/// An appointment was booked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AppointmentBooked {
    pub appointment_id: AppointmentId,
    pub scheduled_for: DateTime<Utc>,
    pub mode: ContactMode,
}

/// The person came to the appointment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AppointmentAttended {
    pub appointment_id: AppointmentId,
}

/// The person did not attend, without cancelling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AppointmentNotAttended {
    pub appointment_id: AppointmentId,
}

/// Who cancelled an appointment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CancelledBy {
    Client,
    Service,
}

/// The appointment was cancelled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AppointmentCancelled {
    pub appointment_id: AppointmentId,
    pub cancelled_by: CancelledBy,
    pub note: Option<String>,
}

/// A contact with the person took place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ContactRecorded {
    pub contact_id: ContactId,
    pub mode: ContactMode,
    pub minutes: u32,
    pub contacted_at: DateTime<Utc>,
    /// Free-text note (personal data).
    pub note: Option<String>,
}

/// What matters to the person, in their words (personal data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WhatMattersRecorded {
    pub text: String,
}

/// A need was identified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NeedIdentified {
    pub need: NeedDomain,
    pub note: Option<String>,
}

/// A goal was agreed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GoalSet {
    pub goal_id: GoalId,
    pub description: String,
    pub need: Option<NeedDomain>,
}

/// A goal's progress was reviewed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GoalReviewed {
    pub goal_id: GoalId,
    pub progress: GoalProgress,
    pub note: Option<String>,
}

/// A wellbeing instrument was completed; raw answers only (scores are derived by rules).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AssessmentRecorded {
    pub assessment_id: AssessmentId,
    pub instrument: Instrument,
    pub instrument_version: i32,
    pub timepoint: Timepoint,
    pub mode: AdministrationMode,
    /// One answer per item, in the instrument's item order.
    pub answers: Vec<i32>,
    /// PAM only: the score the licensor's algorithm returned.
    pub licensor_score: Option<f64>,
    pub administered_on: NaiveDate,
}

/// The person was connected to a directory service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OnwardConnectionMade {
    pub connection_id: ConnectionId,
    pub service_id: ServiceId,
    pub need: NeedDomain,
    pub kind: ConnectionKind,
}

/// What came of an onward connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectionOutcomeRecorded {
    pub connection_id: ConnectionId,
    pub outcome: ConnectionOutcome,
    /// For a waiting list: how many weeks.
    pub waiting_weeks: Option<u32>,
}

/// A need that no service could meet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceGapRecorded {
    pub gap_id: GapId,
    pub need: NeedDomain,
    pub area: String,
    pub reason: GapReason,
    pub note: Option<String>,
}

/// The case was closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CaseClosed {
    pub reason: ClosureReason,
    pub note: Option<String>,
}

/// A closed case was reopened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CaseReopened {
    pub note: Option<String>,
}

/// An earlier entry was corrected; the original stays in the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EntryCorrected {
    /// The event corrected.
    pub corrects: EventId,
    /// The corrected fields of that event's payload, with their new values.
    pub corrected_fields: Map<String, Value>,
    pub reason: String,
}

/// A message went back to the person's GP practice (what social prescribing did for them).
/// Needs their consent to share with the GP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GpMessageSent {
    pub message_id: GpMessageId,
    /// The practice it went to.
    pub practice: String,
    /// What it said (personal data).
    pub text: String,
}

/// The person's personal data was erased: their data key is destroyed with this event, so every
/// personal field of their record reads as erased from now on, in every copy. The case still
/// counts in aggregate figures; nothing more can be recorded for them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClientErased {
    /// Why, without personal data (it is kept): "retention period ended", a request reference.
    pub reason: String,
}

/// A fact entered later than the back-entry window allows, by someone who may (a team lead),
/// with why. It is written just before the fact it explains, with the same `occurred_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LateEntryExplained {
    /// Why it is entered late (personal data: it may name the person).
    pub reason: String,
}

/// Everything that can happen on a client's stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "payload")]
pub enum CaseEvent {
    ClientRegistered(ClientRegistered),
    ConsentRecorded(ConsentRecorded),
    ConsentWithdrawn(ConsentWithdrawn),
    ReferralReceived(ReferralReceived),
    ReferralAccepted(ReferralAccepted),
    ReferralDeclined(ReferralDeclined),
    ReferralRedirected(ReferralRedirected),
    LinkWorkerAssigned(LinkWorkerAssigned),
    CaseTransferred(CaseTransferred),
    AppointmentBooked(AppointmentBooked),
    AppointmentAttended(AppointmentAttended),
    AppointmentNotAttended(AppointmentNotAttended),
    AppointmentCancelled(AppointmentCancelled),
    ContactRecorded(ContactRecorded),
    WhatMattersRecorded(WhatMattersRecorded),
    NeedIdentified(NeedIdentified),
    GoalSet(GoalSet),
    GoalReviewed(GoalReviewed),
    AssessmentRecorded(AssessmentRecorded),
    OnwardConnectionMade(OnwardConnectionMade),
    ConnectionOutcomeRecorded(ConnectionOutcomeRecorded),
    ServiceGapRecorded(ServiceGapRecorded),
    CaseClosed(CaseClosed),
    CaseReopened(CaseReopened),
    EntryCorrected(EntryCorrected),
    GpMessageSent(GpMessageSent),
    ClientErased(ClientErased),
    LateEntryExplained(LateEntryExplained),
    NoteAdded(NoteAdded),
    NotePinned(NotePinned),
    NoteUnpinned(NoteUnpinned),
    SafeguardingConcernRaised(SafeguardingConcernRaised),
    SafeguardingConcernUpdated(SafeguardingConcernUpdated),
    SafeguardingConcernClosed(SafeguardingConcernClosed),
    ConnectionAcceptedByProvider(ConnectionAcceptedByProvider),
    ConnectionDeclinedByProvider(ConnectionDeclinedByProvider),
    ConnectionStartRecorded(ConnectionStartRecorded),
    DemographicsRecorded(crate::demographics::DemographicsRecorded),
    CaseTagged(crate::tags::CaseTagged),
    CaseUntagged(crate::tags::CaseUntagged),
    LoneWorkingPlanRecorded(crate::lone_working::LoneWorkingPlanRecorded),
    LoneWorkingCheckedIn(crate::lone_working::LoneWorkingCheckedIn),
}

/// Every event type name with its current schema version. Pinned by a test: renaming a type or
/// changing a version without an upcaster fails it.
pub const EVENT_TYPES: &[(&str, i32)] = &[
    ("ClientRegistered", 1),
    ("ConsentRecorded", 1),
    ("ConsentWithdrawn", 1),
    ("ReferralReceived", 1),
    ("ReferralAccepted", 1),
    ("ReferralDeclined", 1),
    ("ReferralRedirected", 2),
    ("LinkWorkerAssigned", 1),
    ("CaseTransferred", 1),
    ("AppointmentBooked", 1),
    ("AppointmentAttended", 1),
    ("AppointmentNotAttended", 1),
    ("AppointmentCancelled", 1),
    ("ContactRecorded", 1),
    ("WhatMattersRecorded", 1),
    ("NeedIdentified", 1),
    ("GoalSet", 1),
    ("GoalReviewed", 1),
    ("AssessmentRecorded", 1),
    ("OnwardConnectionMade", 1),
    ("ConnectionOutcomeRecorded", 1),
    ("ServiceGapRecorded", 1),
    ("CaseClosed", 1),
    ("CaseReopened", 1),
    ("EntryCorrected", 1),
    ("GpMessageSent", 1),
    ("ClientErased", 1),
    ("LateEntryExplained", 1),
    ("NoteAdded", 1),
    ("NotePinned", 1),
    ("NoteUnpinned", 1),
    ("SafeguardingConcernRaised", 1),
    ("SafeguardingConcernUpdated", 1),
    ("SafeguardingConcernClosed", 1),
    ("ConnectionAcceptedByProvider", 1),
    ("ConnectionDeclinedByProvider", 1),
    ("ConnectionStartRecorded", 1),
    ("DemographicsRecorded", 1),
    ("CaseTagged", 1),
    ("CaseUntagged", 1),
    ("LoneWorkingPlanRecorded", 1),
    ("LoneWorkingCheckedIn", 1),
];

/// What `[erased]` text reads as: the value every personal text field shows once its key is gone.
pub const ERASED: &str = "[erased]";

/// Where personal data sits in client events: (event type, dotted path into the payload).
/// Each is sealed under the client's own data key when stored, and shows as erased once the key
/// is destroyed (see [`erased_form`]). A correction's corrected fields are personal where the
/// same fields of the entry it corrects are (see [`corrected_personal_paths`]): this one table
/// decides both.
pub const PERSONAL_FIELDS: &[(&str, &str)] = &[
    ("ClientRegistered", "personal"),
    ("ReferralReceived", "referrer.name"),
    ("ReferralReceived", "note"),
    ("ReferralDeclined", "note"),
    ("ReferralRedirected", "note"),
    ("AppointmentCancelled", "note"),
    ("ContactRecorded", "note"),
    ("WhatMattersRecorded", "text"),
    ("NeedIdentified", "note"),
    ("GoalSet", "description"),
    ("GoalReviewed", "note"),
    ("ServiceGapRecorded", "note"),
    ("CaseClosed", "note"),
    ("CaseReopened", "note"),
    ("EntryCorrected", "reason"),
    ("GpMessageSent", "text"),
    ("LateEntryExplained", "reason"),
    ("NoteAdded", "text"),
    ("SafeguardingConcernRaised", "details"),
    ("SafeguardingConcernRaised", "told"),
    ("SafeguardingConcernRaised", "outcome"),
    ("SafeguardingConcernUpdated", "told"),
    ("SafeguardingConcernUpdated", "outcome"),
    ("SafeguardingConcernClosed", "reason"),
    ("DemographicsRecorded", "demographics"),
    ("DemographicsRecorded", "reportable"),
    ("LoneWorkingPlanRecorded", "address_note"),
    ("LoneWorkingPlanRecorded", "known_risks"),
];

/// Where a correction keeps the fields it corrects: an object whose fields are the corrected
/// entry's own, personal where that entry's are. (Event type, payload path.)
pub const CORRECTED_FIELDS: (&str, &str) = ("EntryCorrected", "corrected_fields");

/// The paths of an `EntryCorrected` payload that hold personal data, for a correction of an
/// entry of type `corrected_type` that corrects `corrected_fields`: every path the corrected
/// entry's type has in [`PERSONAL_FIELDS`] whose field the correction gives, under
/// `corrected_fields.` (a correction of `personal`, any `note`, a referral's `referrer.name`).
/// When the corrected entry's type is not known, every corrected field is taken as personal.
pub fn corrected_personal_paths(
    corrected_type: Option<&str>,
    corrected_fields: &Map<String, Value>,
) -> Vec<String> {
    let prefix = CORRECTED_FIELDS.1;
    let Some(corrected_type) = corrected_type else {
        return corrected_fields
            .keys()
            .map(|field| format!("{prefix}.{field}"))
            .collect();
    };
    PERSONAL_FIELDS
        .iter()
        .filter(|(event_type, path)| {
            *event_type == corrected_type
                && path
                    .split('.')
                    .next()
                    .is_some_and(|field| corrected_fields.contains_key(field))
        })
        .map(|(_, path)| format!("{prefix}.{path}"))
        .collect()
}

/// What a personal field reads as once it cannot be read: `[erased]` text, and for personal
/// details a record whose names are `[erased]` and whose other fields are empty. Every event
/// still decodes.
pub fn erased_form(path: &str) -> Value {
    if path.ends_with("personal") {
        serde_json::json!({
            "given_name": ERASED, "family_name": ERASED, "date_of_birth": null,
            "nhs_number": null, "phone": null, "email": null, "address": null, "postcode": null
        })
    } else if path.ends_with("demographics") || path.ends_with("reportable") {
        // Every field of a demographics entry is optional: erased, none is known.
        serde_json::json!({})
    } else {
        Value::String(ERASED.to_owned())
    }
}

/// An event that could not be decoded from its stored form.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {event_type} v{schema_version}: {reason}")]
pub struct DecodeError {
    pub event_type: String,
    pub schema_version: i32,
    pub reason: String,
}

/// An event enum as the log stores it: every type name with its current schema version, the
/// kind of stream it lives on, and one encoding for all of them (`{"event_type", "payload"}`
/// with the payload stored on its own). Client and directory events share it.
pub trait DomainEvent: Serialize + serde::de::DeserializeOwned + Sized {
    /// Every event type with its current schema version, in variant order.
    const TYPES: &'static [(&'static str, i32)];
    /// The stream type these events live on (`client`, `service`).
    const STREAM: &'static str;

    /// The variant's place in [`DomainEvent::TYPES`].
    fn index(&self) -> usize;

    /// The stable type name.
    fn event_type(&self) -> &'static str {
        Self::TYPES[self.index()].0
    }

    /// The current schema version of this event's payload.
    fn schema_version(&self) -> i32 {
        Self::TYPES[self.index()].1
    }

    /// The payload as stored (without the type name).
    fn to_payload(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut envelope)) => envelope.remove("payload").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Rebuilds an event from its stored type, schema version and (upcast) payload.
    ///
    /// # Errors
    /// [`DecodeError`] for a type not of this stream, a version this build does not know, or a
    /// payload of the wrong shape.
    fn decode(event_type: &str, schema_version: i32, payload: Value) -> Result<Self, DecodeError> {
        let error = |reason: String| DecodeError {
            event_type: event_type.to_owned(),
            schema_version,
            reason,
        };
        match Self::TYPES.iter().find(|(name, _)| *name == event_type) {
            None => return Err(error(format!("not a {} event type", Self::STREAM))),
            Some((_, current)) if *current != schema_version => {
                return Err(error(format!(
                    "this build reads v{current}; an upcaster is missing"
                )));
            }
            Some(_) => {}
        }
        let mut envelope = Map::new();
        envelope.insert(
            "event_type".to_owned(),
            Value::String(event_type.to_owned()),
        );
        envelope.insert("payload".to_owned(), payload);
        serde_json::from_value(Value::Object(envelope)).map_err(|e| error(e.to_string()))
    }

    /// As [`DomainEvent::decode`], from the payload's JSON text as stored (no upcasting
    /// needed): read straight into the event, with no [`Value`] built in between.
    ///
    /// # Errors
    /// As [`DomainEvent::decode`], refused alike; text that is not one JSON value.
    fn decode_json(event_type: &str, schema_version: i32, json: &str) -> Result<Self, DecodeError> {
        let error = |reason: String| DecodeError {
            event_type: event_type.to_owned(),
            schema_version,
            reason,
        };
        let name = match Self::TYPES.iter().find(|(name, _)| *name == event_type) {
            None => return Err(error(format!("not a {} event type", Self::STREAM))),
            Some((_, current)) if *current != schema_version => {
                return Err(error(format!(
                    "this build reads v{current}; an upcaster is missing"
                )));
            }
            Some((name, _)) => name,
        };
        // The envelope `decode` builds, given as a map whose payload is read from the text
        // itself (no copy of it), which must hold that one value and nothing after it.
        let mut payload = serde_json::Deserializer::from_str(json);
        let envelope = Envelope {
            event_type: name,
            payload: &mut payload,
            next: 0,
        };
        Self::deserialize(serde::de::value::MapAccessDeserializer::new(envelope))
            .and_then(|event| payload.end().map(|()| event))
            .map_err(|e| {
                // Said as a `Value` read says it, without the place in the text.
                let place = format!(" at line {} column {}", e.line(), e.column());
                let reason = e.to_string();
                error(reason.strip_suffix(&place).unwrap_or(&reason).to_owned())
            })
    }
}

/// `{"event_type": …, "payload": …}` as [`DomainEvent::decode_json`] reads it: the type name
/// given, the payload read from its text.
struct Envelope<'a, 'de> {
    event_type: &'static str,
    payload: &'a mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
    /// The entries given so far.
    next: u8,
}

impl<'de> serde::de::MapAccess<'de> for Envelope<'_, 'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let key = match self.next {
            0 => "event_type",
            1 => "payload",
            _ => return Ok(None),
        };
        seed.deserialize(serde::de::value::BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        self.next += 1;
        if self.next == 1 {
            seed.deserialize(serde::de::value::BorrowedStrDeserializer::new(
                self.event_type,
            ))
        } else {
            seed.deserialize(&mut *self.payload)
        }
    }
}

impl DomainEvent for CaseEvent {
    const TYPES: &'static [(&'static str, i32)] = EVENT_TYPES;
    const STREAM: &'static str = CLIENT_STREAM;

    fn index(&self) -> usize {
        match self {
            CaseEvent::ClientRegistered(_) => 0,
            CaseEvent::ConsentRecorded(_) => 1,
            CaseEvent::ConsentWithdrawn(_) => 2,
            CaseEvent::ReferralReceived(_) => 3,
            CaseEvent::ReferralAccepted(_) => 4,
            CaseEvent::ReferralDeclined(_) => 5,
            CaseEvent::ReferralRedirected(_) => 6,
            CaseEvent::LinkWorkerAssigned(_) => 7,
            CaseEvent::CaseTransferred(_) => 8,
            CaseEvent::AppointmentBooked(_) => 9,
            CaseEvent::AppointmentAttended(_) => 10,
            CaseEvent::AppointmentNotAttended(_) => 11,
            CaseEvent::AppointmentCancelled(_) => 12,
            CaseEvent::ContactRecorded(_) => 13,
            CaseEvent::WhatMattersRecorded(_) => 14,
            CaseEvent::NeedIdentified(_) => 15,
            CaseEvent::GoalSet(_) => 16,
            CaseEvent::GoalReviewed(_) => 17,
            CaseEvent::AssessmentRecorded(_) => 18,
            CaseEvent::OnwardConnectionMade(_) => 19,
            CaseEvent::ConnectionOutcomeRecorded(_) => 20,
            CaseEvent::ServiceGapRecorded(_) => 21,
            CaseEvent::CaseClosed(_) => 22,
            CaseEvent::CaseReopened(_) => 23,
            CaseEvent::EntryCorrected(_) => 24,
            CaseEvent::GpMessageSent(_) => 25,
            CaseEvent::ClientErased(_) => 26,
            CaseEvent::LateEntryExplained(_) => 27,
            CaseEvent::NoteAdded(_) => 28,
            CaseEvent::NotePinned(_) => 29,
            CaseEvent::NoteUnpinned(_) => 30,
            CaseEvent::SafeguardingConcernRaised(_) => 31,
            CaseEvent::SafeguardingConcernUpdated(_) => 32,
            CaseEvent::SafeguardingConcernClosed(_) => 33,
            CaseEvent::ConnectionAcceptedByProvider(_) => 34,
            CaseEvent::ConnectionDeclinedByProvider(_) => 35,
            CaseEvent::ConnectionStartRecorded(_) => 36,
            CaseEvent::DemographicsRecorded(_) => 37,
            CaseEvent::CaseTagged(_) => 38,
            CaseEvent::CaseUntagged(_) => 39,
            CaseEvent::LoneWorkingPlanRecorded(_) => 40,
            CaseEvent::LoneWorkingCheckedIn(_) => 41,
        }
    }
}
