//! The directory of services: Open Referral UK (HSDS 3.0 profile) records kept as event streams.
//!
//! A service's stream holds its listing, each update of its record, changes of capacity
//! (open, waiting list, closed to referrals) and its withdrawal. The record is the ORUK
//! `service` object as the source directory sent it: the fields Casebook reads are typed, every
//! other field is kept as it came (`extra`), so an export gives back what was imported.
//!
//! Casebook's own required-field profile (stricter than ORUK's, as the DfE found it needed):
//! an id that is a UUID, a name, a status, an organisation with a name, and at least one need
//! domain from the taxonomy [`NEED_TAXONOMY`], so that link workers can find the service by need
//! and connections and gaps join against it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::event::DomainEvent;
use crate::{CaseError, ConnectionKind, NeedDomain};

/// The stream type of a directory service.
pub const SERVICE_STREAM: &str = "service";

/// The taxonomy whose terms name Casebook's need domains; a term's `code` is the need's code
/// (`mental_wellbeing`, `money_benefits_debt`...).
pub const NEED_TAXONOMY: &str = "casebook-need-domains";

/// Longest waiting list a capacity change records, in weeks.
pub const MAX_WAITING_WEEKS: u32 = 104;

/// An ORUK service's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OrukStatus {
    #[serde(rename = "active")]
    Active,
    #[serde(rename = "inactive")]
    Inactive,
    #[serde(rename = "defunct")]
    Defunct,
    #[serde(rename = "temporarily closed")]
    TemporarilyClosed,
}

crate::codes::coded!(
    /// Whether a service takes referrals now: kept by Casebook, beside the source's record.
    Availability {
        Open => "open to referrals",
        WaitingList => "waiting list",
        Closed => "closed to referrals",
    }
);

/// An Open Referral UK service, fully nested (`GET /services/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrukService {
    pub id: Uuid,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub status: OrukStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// The source's own; an export gives the time of the service's latest event instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<OrukOrganization>,
    #[serde(default)]
    pub service_areas: Vec<OrukServiceArea>,
    #[serde(default)]
    pub service_at_locations: Vec<OrukServiceAtLocation>,
    #[serde(default)]
    pub attributes: Vec<OrukAttribute>,
    /// Every other ORUK field, as it came.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Map<String, Value>,
}

/// The organisation that runs a service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrukOrganization {
    pub id: Uuid,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Map<String, Value>,
}

/// An area a service covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrukServiceArea {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Map<String, Value>,
}

/// A service delivered at a location.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrukServiceAtLocation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<OrukLocation>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Map<String, Value>,
}

/// A place a service is delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrukLocation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub addresses: Vec<OrukAddress>,
    #[serde(default)]
    pub accessibility: Vec<OrukAccessibility>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Map<String, Value>,
}

/// A postal or physical address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrukAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Map<String, Value>,
}

/// What a location offers for access (step-free, hearing loop...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrukAccessibility {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Map<String, Value>,
}

/// A link from the service to a taxonomy term (its need domains and its own categories).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrukAttribute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxonomy_term: Option<OrukTaxonomyTerm>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Map<String, Value>,
}

/// A term of a taxonomy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrukTaxonomyTerm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxonomy: Option<String>,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Map<String, Value>,
}

impl OrukService {
    /// Reads one ORUK service record and checks it against Casebook's required-field profile.
    ///
    /// # Errors
    /// Every reason the record is refused, each naming its field (`organization.name`,
    /// `service_at_locations[0].location`...).
    pub fn from_value(value: Value) -> Result<OrukService, Vec<String>> {
        if !value.is_object() {
            return Err(vec!["a service is a JSON object".to_owned()]);
        }
        let mut reasons = Vec::new();
        if let Some(field) = nul_path(&value, String::new()) {
            reasons.push(format!("{field}: text may not contain the NUL character"));
            return Err(reasons);
        }
        let service: OrukService = match serde_path_to_error::deserialize(value) {
            Ok(service) => service,
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                let missing = inner
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.strip_suffix('`'));
                reasons.push(match (path.as_str(), missing) {
                    (".", Some(field)) => format!("{field}: required"),
                    (_, Some(field)) => format!("{path}.{field}: required"),
                    (".", None) => inner,
                    _ => format!("{path}: {inner}"),
                });
                return Err(reasons);
            }
        };
        reasons.extend(service.problems());
        if reasons.is_empty() {
            Ok(service)
        } else {
            Err(reasons)
        }
    }

    /// What the record lacks under Casebook's profile.
    pub fn problems(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.id.is_nil() {
            reasons.push("id: the nil UUID is not an id".to_owned());
        }
        // A service's id is its stream's, and stream ids are one space: a source may not list a
        // service under an id Casebook derives (a task the maker will raise, a practice's
        // referral), which would take it first.
        if crate::is_derived(self.id) {
            reasons.push(format!("id: {}", crate::DERIVED_ID_REFUSED));
        }
        if self.name.trim().is_empty() {
            reasons.push("name: required".to_owned());
        } else if self.name.chars().count() > 255 {
            reasons.push("name: at most 255 characters".to_owned());
        }
        match &self.organization {
            None => reasons.push("organization: required".to_owned()),
            Some(org) if org.name.trim().is_empty() => {
                reasons.push("organization.name: required".to_owned())
            }
            Some(_) => {}
        }
        if let Some(url) = &self.url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            reasons.push("url: an http or https address".to_owned());
        }
        let unknown_needs: Vec<String> = self
            .need_terms()
            .filter(|(_, need)| need.is_none())
            .map(|(code, _)| code.to_owned())
            .collect();
        if !unknown_needs.is_empty() {
            reasons.push(format!(
                "attributes: {NEED_TAXONOMY} has no term {}",
                unknown_needs.join(", ")
            ));
        } else if self.needs().is_empty() {
            reasons.push(format!(
                "attributes: at least one need domain ({NEED_TAXONOMY} taxonomy term) is required, \
                 so link workers can find the service by need"
            ));
        }
        reasons
    }

    /// Terms of the need taxonomy: each code, with the need it names (if any).
    fn need_terms(&self) -> impl Iterator<Item = (&str, Option<NeedDomain>)> {
        self.attributes
            .iter()
            .filter_map(|a| a.taxonomy_term.as_ref())
            .filter(|t| {
                t.taxonomy
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(NEED_TAXONOMY))
            })
            .map(|t| {
                let code = t.code.as_deref().unwrap_or("");
                (
                    code,
                    serde_json::from_value(Value::String(code.to_owned())).ok(),
                )
            })
    }

    /// The need domains the service meets.
    pub fn needs(&self) -> BTreeSet<NeedDomain> {
        self.need_terms().filter_map(|(_, need)| need).collect()
    }

    /// Its own categories: names of its terms outside the need taxonomy.
    pub fn categories(&self) -> BTreeSet<String> {
        self.attributes
            .iter()
            .filter_map(|a| a.taxonomy_term.as_ref())
            .filter(|t| {
                !t.taxonomy
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(NEED_TAXONOMY))
            })
            .filter_map(|t| t.name.clone().or_else(|| t.code.clone()))
            .collect()
    }

    /// The areas it serves, lower-cased: its service areas' names, the towns of its addresses,
    /// and their postcode districts (`ba11` of `BA11 1AA`).
    pub fn areas(&self) -> BTreeSet<String> {
        let mut areas: BTreeSet<String> = self
            .service_areas
            .iter()
            .filter_map(|a| a.name.as_deref())
            .map(normalise_area)
            .collect();
        for address in self.addresses() {
            if let Some(city) = &address.city {
                areas.insert(normalise_area(city));
            }
            if let Some(district) = address
                .postal_code
                .as_deref()
                .and_then(|p| p.split_whitespace().next())
            {
                areas.insert(normalise_area(district));
            }
        }
        areas.retain(|a| !a.is_empty());
        areas
    }

    fn addresses(&self) -> impl Iterator<Item = &OrukAddress> {
        self.service_at_locations
            .iter()
            .filter_map(|s| s.location.as_ref())
            .flat_map(|l| l.addresses.iter())
    }

    /// The accessibility notes of its locations.
    pub fn accessibility(&self) -> Vec<String> {
        self.service_at_locations
            .iter()
            .filter_map(|s| s.location.as_ref())
            .flat_map(|l| l.accessibility.iter())
            .filter_map(|a| a.description.clone().or_else(|| a.details.clone()))
            .collect()
    }

    /// The record without the source's modification time: what "the same record" compares.
    fn comparable(&self) -> OrukService {
        OrukService {
            last_modified: None,
            ..self.clone()
        }
    }
}

/// An area name as search and gap counts compare it.
pub fn normalise_area(area: &str) -> String {
    area.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The first string anywhere in `value` holding a NUL, as a path.
fn nul_path(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(if path.is_empty() {
            ".".to_owned()
        } else {
            path
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_path(v, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                return Some(path.clone());
            }
            let field = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            nul_path(v, field)
        }),
        _ => None,
    }
}

/// A service was added to the directory (or came back after a withdrawal).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceListed {
    pub service: OrukService,
}

/// A service's record changed; the whole new record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceUpdated {
    pub service: OrukService,
}

/// A service opened, started a waiting list, or closed to referrals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceCapacityChanged {
    pub availability: Availability,
    /// For a waiting list: about how many weeks.
    #[serde(default)]
    pub waiting_weeks: Option<u32>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A service left the directory; connections to it are refused from then on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceWithdrawn {
    pub reason: String,
}

/// The service passed to another organisation, which changes it from then on (the operator's
/// decision, by agreement between them; the nil organisation is the operator itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceOwnerChanged {
    pub organisation_id: Uuid,
    pub reason: String,
}

/// Everything that can happen on a directory service's stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "payload")]
pub enum DirectoryEvent {
    ServiceListed(ServiceListed),
    ServiceUpdated(ServiceUpdated),
    ServiceCapacityChanged(ServiceCapacityChanged),
    ServiceWithdrawn(ServiceWithdrawn),
    ServiceOwnerChanged(ServiceOwnerChanged),
}

/// Every directory event type with its current schema version.
pub const DIRECTORY_EVENT_TYPES: &[(&str, i32)] = &[
    ("ServiceListed", 1),
    ("ServiceUpdated", 1),
    ("ServiceCapacityChanged", 1),
    ("ServiceWithdrawn", 1),
    ("ServiceOwnerChanged", 1),
];

impl DomainEvent for DirectoryEvent {
    const TYPES: &'static [(&'static str, i32)] = DIRECTORY_EVENT_TYPES;
    const STREAM: &'static str = SERVICE_STREAM;

    fn index(&self) -> usize {
        match self {
            DirectoryEvent::ServiceListed(_) => 0,
            DirectoryEvent::ServiceUpdated(_) => 1,
            DirectoryEvent::ServiceCapacityChanged(_) => 2,
            DirectoryEvent::ServiceWithdrawn(_) => 3,
            DirectoryEvent::ServiceOwnerChanged(_) => 4,
        }
    }
}

/// A directory service folded from its stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceState {
    /// The organisation that first listed it (imported it): the organisation its first
    /// `ServiceListed` event was recorded for. Only its owner changes, withdraws or imports over
    /// it (`app::policy::may_change_service`); anyone connects to it. `Uuid::nil()` is the
    /// operator (`casebook directory import`, no organisation). `None` before any listing.
    pub owner: Option<Uuid>,
    /// The current record (kept after a withdrawal, for the record).
    pub service: Option<OrukService>,
    pub withdrawn: bool,
    pub availability: Option<Availability>,
    pub waiting_weeks: Option<u32>,
}

impl ServiceState {
    /// Whether the service is in the directory now.
    pub fn listed(&self) -> bool {
        self.service.is_some() && !self.withdrawn
    }

    /// Whether it takes referrals now: listed, active at source, and not closed here.
    pub fn takes_referrals(&self) -> bool {
        self.listed()
            && self
                .service
                .as_ref()
                .is_some_and(|s| s.status == OrukStatus::Active)
            && self.availability != Some(Availability::Closed)
    }
}

/// Folds one directory event into a service's state. `organisation` is the organisation the
/// event was recorded for (the `organisation_id` every stored event carries in its metadata):
/// the first listing's is the service's owner, for good (a withdrawal and a listing again keep
/// it).
pub fn evolve_service(
    mut state: ServiceState,
    event: &DirectoryEvent,
    organisation: Uuid,
) -> ServiceState {
    match event {
        DirectoryEvent::ServiceListed(e) => {
            state.owner.get_or_insert(organisation);
            state.service = Some(e.service.clone());
            state.withdrawn = false;
            state.availability.get_or_insert(Availability::Open);
        }
        DirectoryEvent::ServiceUpdated(e) => state.service = Some(e.service.clone()),
        DirectoryEvent::ServiceCapacityChanged(e) => {
            state.availability = Some(e.availability);
            state.waiting_weeks = e.waiting_weeks;
        }
        DirectoryEvent::ServiceWithdrawn(_) => state.withdrawn = true,
        DirectoryEvent::ServiceOwnerChanged(e) => state.owner = Some(e.organisation_id),
    }
    state
}

/// What can be asked of a directory service.
#[derive(Clone, Debug, PartialEq)]
pub enum DirectoryCommand {
    /// Take the source directory's record: list, update, withdraw (when defunct) or nothing.
    Import(Box<OrukService>),
    ChangeCapacity(ServiceCapacityChanged),
    Withdraw(ServiceWithdrawn),
    /// Pass the service to another organisation (the operator only).
    ChangeOwner(ServiceOwnerChanged),
}

/// Why a directory command was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DirectoryError {
    #[error("there is no such service in the directory")]
    NotListed,
    #[error("the service was withdrawn from the directory")]
    Withdrawn,
    #[error("the service is already {0}")]
    Unchanged(&'static str),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl DirectoryError {
    /// A stable code for the rule refused.
    pub fn rule(&self) -> &'static str {
        match self {
            DirectoryError::NotListed => "service_not_listed",
            DirectoryError::Withdrawn => "service_withdrawn",
            DirectoryError::Unchanged(_) => "unchanged",
            DirectoryError::Invalid { .. } => "invalid_field",
        }
    }

    /// The field the refusal is about, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            DirectoryError::Invalid { field, .. } => Some(field),
            DirectoryError::Unchanged(_) => Some("availability"),
            _ => None,
        }
    }
}

/// Decides what a directory command means for this service.
///
/// # Errors
/// A [`DirectoryError`] naming the rule refused.
pub fn decide_service(
    state: &ServiceState,
    command: &DirectoryCommand,
) -> Result<Vec<DirectoryEvent>, DirectoryError> {
    match command {
        DirectoryCommand::Import(record) => Ok(import(state, record)),
        DirectoryCommand::ChangeCapacity(change) => {
            listed(state)?;
            match (change.availability, change.waiting_weeks) {
                (Availability::WaitingList, None) => {
                    return Err(DirectoryError::Invalid {
                        field: "waiting_weeks",
                        message: "say about how many weeks the waiting list is".to_owned(),
                    });
                }
                (Availability::WaitingList, Some(weeks))
                    if weeks == 0 || weeks > MAX_WAITING_WEEKS =>
                {
                    return Err(DirectoryError::Invalid {
                        field: "waiting_weeks",
                        message: format!("between 1 and {MAX_WAITING_WEEKS} weeks"),
                    });
                }
                (Availability::Open | Availability::Closed, Some(_)) => {
                    return Err(DirectoryError::Invalid {
                        field: "waiting_weeks",
                        message: "only a waiting list has weeks".to_owned(),
                    });
                }
                _ => {}
            }
            if let Some(note) = &change.note
                && note.chars().count() > 2000
            {
                return Err(DirectoryError::Invalid {
                    field: "note",
                    message: "at most 2000 characters".to_owned(),
                });
            }
            let current = state.availability.unwrap_or(Availability::Open);
            if current == change.availability && state.waiting_weeks == change.waiting_weeks {
                return Err(DirectoryError::Unchanged(current.label()));
            }
            Ok(vec![DirectoryEvent::ServiceCapacityChanged(change.clone())])
        }
        DirectoryCommand::Withdraw(w) => {
            listed(state)?;
            if w.reason.trim().is_empty() || w.reason.chars().count() > 2000 {
                return Err(DirectoryError::Invalid {
                    field: "reason",
                    message: "say why the service leaves the directory (at most 2000 characters)"
                        .to_owned(),
                });
            }
            Ok(vec![DirectoryEvent::ServiceWithdrawn(w.clone())])
        }
        DirectoryCommand::ChangeOwner(change) => {
            if state.service.is_none() {
                return Err(DirectoryError::NotListed);
            }
            if change.reason.trim().is_empty() || change.reason.chars().count() > 2000 {
                return Err(DirectoryError::Invalid {
                    field: "reason",
                    message: "say why the service changes hands (at most 2000 characters)"
                        .to_owned(),
                });
            }
            if state.owner == Some(change.organisation_id) {
                return Err(DirectoryError::Invalid {
                    field: "organisation_id",
                    message: "the service already belongs to that organisation".to_owned(),
                });
            }
            Ok(vec![DirectoryEvent::ServiceOwnerChanged(change.clone())])
        }
    }
}

fn listed(state: &ServiceState) -> Result<(), DirectoryError> {
    match (&state.service, state.withdrawn) {
        (None, _) => Err(DirectoryError::NotListed),
        (Some(_), true) => Err(DirectoryError::Withdrawn),
        (Some(_), false) => Ok(()),
    }
}

/// The source's record against what the directory holds. The same record again (whatever its
/// `last_modified`) changes nothing, so importing a file twice writes nothing the second time.
fn import(state: &ServiceState, record: &OrukService) -> Vec<DirectoryEvent> {
    let defunct = record.status == OrukStatus::Defunct;
    let same = state
        .service
        .as_ref()
        .is_some_and(|current| current.comparable() == record.comparable());
    match (&state.service, state.withdrawn) {
        // Never listed: a defunct record has nothing to add.
        (None, _) if defunct => vec![],
        (None, _) => vec![DirectoryEvent::ServiceListed(ServiceListed {
            service: record.clone(),
        })],
        // Withdrawn: back only when the source's record changed and is not defunct.
        (Some(_), true) if same || defunct => vec![],
        (Some(_), true) => vec![DirectoryEvent::ServiceListed(ServiceListed {
            service: record.clone(),
        })],
        (Some(_), false) if same => vec![],
        (Some(_), false) if defunct => vec![
            DirectoryEvent::ServiceUpdated(ServiceUpdated {
                service: record.clone(),
            }),
            DirectoryEvent::ServiceWithdrawn(ServiceWithdrawn {
                reason: "defunct in the source directory".to_owned(),
            }),
        ],
        (Some(_), false) => vec![DirectoryEvent::ServiceUpdated(ServiceUpdated {
            service: record.clone(),
        })],
    }
}

/// Whether a connection of `kind` may be made to a service in this state (`None`: no such
/// service). Signposting only needs the service to be listed; a referral, warm handover or
/// accompanied visit needs it to take referrals.
///
/// # Errors
/// [`CaseError::UnknownService`], [`CaseError::ServiceWithdrawn`] or
/// [`CaseError::ServiceNotTakingReferrals`].
pub fn check_connection(
    service: Option<&ServiceState>,
    kind: ConnectionKind,
) -> Result<(), CaseError> {
    let Some(state) = service.filter(|s| s.service.is_some()) else {
        return Err(CaseError::UnknownService);
    };
    if state.withdrawn {
        return Err(CaseError::ServiceWithdrawn);
    }
    if kind != ConnectionKind::Signposted && !state.takes_referrals() {
        let why = match (state.service.as_ref().map(|s| s.status), state.availability) {
            (Some(OrukStatus::Inactive), _) => "inactive",
            (Some(OrukStatus::TemporarilyClosed), _) => "temporarily closed",
            _ => "closed to referrals",
        };
        return Err(CaseError::ServiceNotTakingReferrals { why });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(status: &str) -> OrukService {
        OrukService::from_value(json!({
            "id": "8b0f9a58-8a8e-4c39-9c55-2d7f3b1f6a01",
            "name": "Frome Walking for Health",
            "status": status,
            "organization": { "id": "1c1f1b7e-6f7e-4d6b-9a55-0b8f1e2d3c4a", "name": "Frome Active Living" },
            "service_areas": [{ "name": "Frome" }],
            "service_at_locations": [{ "location": { "addresses": [
                { "city": "Frome", "postal_code": "BA11 1AA" }
            ] } }],
            "attributes": [
                { "taxonomy_term": { "code": "physical_activity", "taxonomy": NEED_TAXONOMY } },
                { "taxonomy_term": { "code": "walking", "name": "Walking", "taxonomy": "local" } }
            ],
            "schedules": [{ "byday": "TU" }]
        }))
        .expect("a valid record")
    }

    const OWNER: Uuid = Uuid::from_u128(0x0a);
    const OTHER: Uuid = Uuid::from_u128(0x0b);

    fn fold(events: &[DirectoryEvent]) -> ServiceState {
        events
            .iter()
            .fold(ServiceState::default(), |s, e| evolve_service(s, e, OWNER))
    }

    fn import(state: &ServiceState, service: OrukService) -> Vec<DirectoryEvent> {
        decide_service(state, &DirectoryCommand::Import(Box::new(service))).expect("decided")
    }

    #[test]
    fn a_record_under_an_id_casebook_derives_is_refused() {
        let mut value = serde_json::to_value(record("active")).expect("JSON");
        value["id"] = json!(crate::derived_id(&[1u8; 32]));
        let reasons = OrukService::from_value(value).expect_err("refused");
        assert_eq!(reasons, [format!("id: {}", crate::DERIVED_ID_REFUSED)]);
    }

    #[test]
    fn a_record_reads_its_needs_areas_and_categories_and_keeps_every_other_field() {
        let service = record("active");
        assert_eq!(
            service.needs().into_iter().collect::<Vec<_>>(),
            [NeedDomain::PhysicalActivity]
        );
        assert_eq!(
            service.areas().into_iter().collect::<Vec<_>>(),
            ["ba11", "frome"]
        );
        assert_eq!(
            service.categories().into_iter().collect::<Vec<_>>(),
            ["Walking"]
        );
        assert_eq!(service.extra["schedules"], json!([{ "byday": "TU" }]));
    }

    #[test]
    fn importing_lists_then_updates_then_changes_nothing_for_the_same_record() {
        let listed = import(&ServiceState::default(), record("active"));
        assert!(matches!(listed[..], [DirectoryEvent::ServiceListed(_)]));
        let state = fold(&listed);
        assert!(import(&state, record("active")).is_empty());
        // A newer modification time alone is the same record.
        let mut touched = record("active");
        touched.last_modified = Some("2030-01-01T00:00:00Z".to_owned());
        assert!(import(&state, touched).is_empty());
        let mut changed = record("active");
        changed.description = Some("Now on Thursdays too.".to_owned());
        assert!(matches!(
            import(&state, changed)[..],
            [DirectoryEvent::ServiceUpdated(_)]
        ));
    }

    #[test]
    fn a_defunct_record_withdraws_a_listed_service_and_adds_nothing_new() {
        assert!(import(&ServiceState::default(), record("defunct")).is_empty());
        let state = fold(&import(&ServiceState::default(), record("active")));
        let events = import(&state, record("defunct"));
        assert!(matches!(
            events[..],
            [
                DirectoryEvent::ServiceUpdated(_),
                DirectoryEvent::ServiceWithdrawn(_)
            ]
        ));
        let withdrawn =
            fold(&[import(&ServiceState::default(), record("active")), events].concat());
        assert!(!withdrawn.listed());
        // The same defunct record again: nothing. Back at source as active: listed again.
        assert!(import(&withdrawn, record("defunct")).is_empty());
        assert!(matches!(
            import(&withdrawn, record("active"))[..],
            [DirectoryEvent::ServiceListed(_)]
        ));
    }

    #[test]
    fn the_owner_is_the_organisation_that_first_listed_it_and_stays_through_a_withdrawal() {
        let listed = ServiceListed {
            service: record("active"),
        };
        let withdrawn = ServiceWithdrawn {
            reason: "gone".to_owned(),
        };
        // (event, the organisation it was recorded for, the owner after it)
        let steps = [
            (DirectoryEvent::ServiceListed(listed.clone()), OWNER, OWNER),
            (
                DirectoryEvent::ServiceUpdated(ServiceUpdated {
                    service: record("inactive"),
                }),
                OTHER,
                OWNER,
            ),
            (
                DirectoryEvent::ServiceCapacityChanged(ServiceCapacityChanged {
                    availability: Availability::Closed,
                    waiting_weeks: None,
                    note: None,
                }),
                OTHER,
                OWNER,
            ),
            (DirectoryEvent::ServiceWithdrawn(withdrawn), OTHER, OWNER),
            (DirectoryEvent::ServiceListed(listed), OTHER, OWNER),
        ];
        let mut state = ServiceState::default();
        assert_eq!(state.owner, None);
        for (event, organisation, owner) in steps {
            state = evolve_service(state, &event, organisation);
            assert_eq!(state.owner, Some(owner), "after {}", event.event_type());
        }
        // Listed by the operator (no organisation): the nil id owns it.
        let by_operator = evolve_service(
            ServiceState::default(),
            &DirectoryEvent::ServiceListed(ServiceListed {
                service: record("active"),
            }),
            Uuid::nil(),
        );
        assert_eq!(by_operator.owner, Some(Uuid::nil()));
    }

    #[test]
    fn a_service_changes_hands_with_a_reason_to_an_organisation_that_does_not_hold_it() {
        let to_other = |reason: &str| {
            DirectoryCommand::ChangeOwner(ServiceOwnerChanged {
                organisation_id: OTHER,
                reason: reason.to_owned(),
            })
        };
        assert_eq!(
            decide_service(&ServiceState::default(), &to_other("merger")),
            Err(DirectoryError::NotListed)
        );
        let state = evolve_service(
            ServiceState::default(),
            &DirectoryEvent::ServiceListed(ServiceListed {
                service: record("active"),
            }),
            OWNER,
        );
        assert_eq!(
            decide_service(&state, &to_other("  ")).unwrap_err().field(),
            Some("reason")
        );
        let events = decide_service(&state, &to_other("merger")).expect("passed on");
        assert!(matches!(
            events[..],
            [DirectoryEvent::ServiceOwnerChanged(_)]
        ));
        // Whoever the event was recorded for (the operator), the owner is the one it names,
        // and a later listing by anyone does not take it back.
        let passed = evolve_service(state, &events[0], Uuid::nil());
        assert_eq!(passed.owner, Some(OTHER));
        let relisted = evolve_service(
            passed.clone(),
            &DirectoryEvent::ServiceListed(ServiceListed {
                service: record("active"),
            }),
            OWNER,
        );
        assert_eq!(relisted.owner, Some(OTHER));
        assert_eq!(
            decide_service(&passed, &to_other("again"))
                .unwrap_err()
                .field(),
            Some("organisation_id")
        );
    }

    #[test]
    fn capacity_changes_need_weeks_for_a_waiting_list_only_and_change_something() {
        let state = fold(&import(&ServiceState::default(), record("active")));
        let change = |availability, waiting_weeks| {
            decide_service(
                &state,
                &DirectoryCommand::ChangeCapacity(ServiceCapacityChanged {
                    availability,
                    waiting_weeks,
                    note: None,
                }),
            )
        };
        assert_eq!(
            change(Availability::WaitingList, None).unwrap_err().field(),
            Some("waiting_weeks")
        );
        assert!(change(Availability::WaitingList, Some(0)).is_err());
        assert!(change(Availability::WaitingList, Some(MAX_WAITING_WEEKS + 1)).is_err());
        assert!(change(Availability::Closed, Some(3)).is_err());
        assert_eq!(
            change(Availability::Open, None),
            Err(DirectoryError::Unchanged("open to referrals"))
        );
        assert!(change(Availability::WaitingList, Some(6)).is_ok());
        assert_eq!(
            decide_service(
                &ServiceState::default(),
                &DirectoryCommand::Withdraw(ServiceWithdrawn {
                    reason: "gone".to_owned()
                })
            ),
            Err(DirectoryError::NotListed)
        );
    }

    #[test]
    fn connections_need_a_listed_service_and_referrals_one_that_takes_them() {
        use ConnectionKind::*;
        assert_eq!(
            check_connection(None, Signposted),
            Err(CaseError::UnknownService)
        );
        let listed = fold(&import(&ServiceState::default(), record("active")));
        for kind in ConnectionKind::ALL {
            assert_eq!(check_connection(Some(&listed), *kind), Ok(()));
        }
        let closed = evolve_service(
            listed.clone(),
            &DirectoryEvent::ServiceCapacityChanged(ServiceCapacityChanged {
                availability: Availability::Closed,
                waiting_weeks: None,
                note: None,
            }),
            OWNER,
        );
        assert_eq!(check_connection(Some(&closed), Signposted), Ok(()));
        assert_eq!(
            check_connection(Some(&closed), Referred),
            Err(CaseError::ServiceNotTakingReferrals {
                why: "closed to referrals"
            })
        );
        let inactive = fold(&import(&ServiceState::default(), record("inactive")));
        assert_eq!(
            check_connection(Some(&inactive), WarmHandover),
            Err(CaseError::ServiceNotTakingReferrals { why: "inactive" })
        );
        let withdrawn = evolve_service(
            listed,
            &DirectoryEvent::ServiceWithdrawn(ServiceWithdrawn {
                reason: "closed".to_owned(),
            }),
            OWNER,
        );
        assert_eq!(
            check_connection(Some(&withdrawn), Signposted),
            Err(CaseError::ServiceWithdrawn)
        );
    }

    #[test]
    fn directory_events_round_trip_through_their_stored_form() {
        let events = [
            DirectoryEvent::ServiceListed(ServiceListed {
                service: record("active"),
            }),
            DirectoryEvent::ServiceCapacityChanged(ServiceCapacityChanged {
                availability: Availability::WaitingList,
                waiting_weeks: Some(4),
                note: Some("till March".to_owned()),
            }),
            DirectoryEvent::ServiceWithdrawn(ServiceWithdrawn {
                reason: "closed".to_owned(),
            }),
        ];
        for event in events {
            let decoded = DirectoryEvent::decode(
                event.event_type(),
                event.schema_version(),
                event.to_payload(),
            )
            .expect("decodes");
            assert_eq!(decoded, event);
        }
        assert!(DirectoryEvent::decode("ClientRegistered", 1, json!({})).is_err());
    }
}
