//! From FHIR resources to a referral: pure functions of the resources, the mapping rules of
//! `projections/fhir/v{n}.toml` and the day. Every refusal is an [`Issue`] naming the element
//! (`ServiceRequest.subject`, `Patient.identifier[0].value`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate};
use domain::{NeedDomain, NhsNumber, PersonalDetails, ReferralSource, Referrer, Urgency};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::resources::{
    Bundle, CodeableConcept, Patient, QuestionnaireItem, QuestionnaireResponse, Reference,
    ServiceRequest,
};

/// SNOMED CT's system URI.
pub const SNOMED: &str = "http://snomed.info/sct";
/// The NHS number's identifier system.
pub const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// The ODS organisation code's identifier system.
pub const ODS_CODE: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// The mapping files, built into the binary.
const MAPPING_FILES: &[(i32, &str)] = &[(1, include_str!("../../../../projections/fhir/v1.toml"))];

/// Longest note kept from a referral (the ServiceRequest's notes, its occurrence and the
/// questionnaire's answers together).
const NOTE_LIMIT: usize = 8_000;

/// One problem with a submitted resource: an `OperationOutcome.issue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// The FHIR issue type (`required`, `value`, `invalid`, `code-invalid`, `not-supported`,
    /// `structure`, `duplicate`).
    pub code: &'static str,
    /// The element, as a FHIRPath expression (`ServiceRequest.reasonCode[1]`).
    pub expression: String,
    /// What is wrong, in words.
    pub diagnostics: String,
}

impl Issue {
    fn new(code: &'static str, expression: impl Into<String>, words: impl Into<String>) -> Issue {
        Issue {
            code,
            expression: expression.into(),
            diagnostics: words.into(),
        }
    }
}

/// One reason code's mapping.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonMapping {
    pub code: String,
    pub term: String,
    pub need: NeedDomain,
    /// False for a code nobody has confirmed against the SNOMED CT UK edition.
    pub confirmed: bool,
}

/// What a ServiceRequest must be, and where it counts from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestRules {
    /// The SNOMED codes of `ServiceRequest.code` accepted as a social prescribing referral.
    pub codes: Vec<String>,
    pub source: ReferralSource,
}

/// One version of the FHIR mapping rules.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FhirRules {
    pub version: i32,
    pub description: String,
    pub request: RequestRules,
    /// `ServiceRequest.priority` to urgency.
    pub priority: BTreeMap<String, Urgency>,
    pub reasons: Vec<ReasonMapping>,
}

impl FhirRules {
    /// The latest version, parsed once.
    ///
    /// # Panics
    /// When a built-in file does not parse (a unit test loads every file).
    pub fn latest() -> &'static FhirRules {
        static RULES: OnceLock<FhirRules> = OnceLock::new();
        RULES.get_or_init(|| {
            let (version, text) = MAPPING_FILES
                .last()
                .expect("at least one FHIR mapping file");
            let rules = FhirRules::parse(text).expect("the built-in FHIR mapping parses");
            assert_eq!(rules.version, *version, "the file's version");
            rules
        })
    }

    /// Parses one mapping file.
    ///
    /// # Errors
    /// The TOML error, in words.
    pub fn parse(text: &str) -> Result<FhirRules, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Every built-in version.
    pub fn all() -> impl Iterator<Item = (i32, &'static str)> {
        MAPPING_FILES.iter().copied()
    }

    fn need_for(&self, code: &str) -> Option<NeedDomain> {
        self.reasons.iter().find(|r| r.code == code).map(|r| r.need)
    }
}

/// A referral as read from FHIR resources, before it has ids.
#[derive(Clone, Debug, PartialEq)]
pub struct MappedReferral {
    /// The ServiceRequest's identifier: system and value.
    pub identifier: (String, String),
    pub personal: PersonalDetails,
    /// A postcode district, or the town, for area reports.
    pub area: String,
    pub source: ReferralSource,
    /// Who referred (the staff id is the caller's, set when it is submitted).
    pub referrer: Referrer,
    pub reasons: Vec<NeedDomain>,
    pub urgency: Urgency,
    pub note: Option<String>,
}

/// Deserialises `value` as `T`, naming the element that does not fit under `base`.
fn parse<T: DeserializeOwned>(value: &Value, base: &str) -> Result<T, Issue> {
    serde_path_to_error::deserialize::<_, T>(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        let expression = if path == "." || path.is_empty() {
            base.to_owned()
        } else {
            format!("{base}.{path}")
        };
        Issue::new("structure", expression, e.into_inner().to_string())
    })
}

fn resource_type(value: &Value) -> Option<&str> {
    value.get("resourceType").and_then(Value::as_str)
}

/// Maps a ServiceRequest sent on its own: the patient must be contained in it (`subject`
/// `#id`), and a questionnaire, when there is one, too (`supportingInfo`).
///
/// # Errors
/// Every issue found (at least one).
pub fn map_service_request(value: &Value, rules: &FhirRules) -> Result<MappedReferral, Vec<Issue>> {
    if resource_type(value) != Some("ServiceRequest") {
        return Err(vec![Issue::new(
            "invalid",
            "ServiceRequest.resourceType",
            "this endpoint takes a ServiceRequest (a Patient, ServiceRequest and \
             QuestionnaireResponse together go to the base URL as a transaction Bundle)",
        )]);
    }
    let request: ServiceRequest = parse(value, "ServiceRequest").map_err(|i| vec![i])?;
    let find = |reference: &str| -> Option<(String, Value)> {
        let id = reference.strip_prefix('#')?;
        request.contained.iter().enumerate().find_map(|(i, c)| {
            (c.get("id").and_then(Value::as_str) == Some(id))
                .then(|| (format!("ServiceRequest.contained[{i}]"), c.clone()))
        })
    };
    map_request(&request, "ServiceRequest", rules, &find)
}

/// Maps a transaction Bundle of a Patient, a ServiceRequest and optionally a
/// QuestionnaireResponse, each entry a POST, referring to each other by `fullUrl`.
///
/// # Errors
/// Every issue found (at least one).
pub fn map_transaction(value: &Value, rules: &FhirRules) -> Result<MappedReferral, Vec<Issue>> {
    if resource_type(value) != Some("Bundle") {
        return Err(vec![Issue::new(
            "invalid",
            "Bundle.resourceType",
            "the base URL takes a transaction Bundle",
        )]);
    }
    let bundle: Bundle = parse(value, "Bundle").map_err(|i| vec![i])?;
    if bundle.bundle_type.as_deref() != Some("transaction") {
        return Err(vec![Issue::new(
            "value",
            "Bundle.type",
            "only a transaction Bundle is taken",
        )]);
    }
    let mut issues = Vec::new();
    let mut requests = Vec::new();
    for (i, entry) in bundle.entry.iter().enumerate() {
        let at = format!("Bundle.entry[{i}]");
        let Some(resource) = &entry.resource else {
            issues.push(Issue::new(
                "required",
                format!("{at}.resource"),
                "every entry carries a resource",
            ));
            continue;
        };
        let kind = resource_type(resource).unwrap_or("");
        if !matches!(kind, "Patient" | "ServiceRequest" | "QuestionnaireResponse") {
            issues.push(Issue::new(
                "not-supported",
                format!("{at}.resource.resourceType"),
                format!(
                    "a referral Bundle holds a Patient, a ServiceRequest and a \
                     QuestionnaireResponse, not a {kind:?}"
                ),
            ));
        }
        let method = entry.request.as_ref().and_then(|r| r.method.as_deref());
        if method != Some("POST") {
            issues.push(Issue::new(
                "not-supported",
                format!("{at}.request.method"),
                "each entry is created (POST)",
            ));
        }
        if kind == "ServiceRequest" {
            requests.push((i, resource));
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let (index, resource) = match requests.as_slice() {
        [one] => *one,
        [] => {
            return Err(vec![Issue::new(
                "required",
                "Bundle.entry",
                "the Bundle holds no ServiceRequest",
            )]);
        }
        _ => {
            return Err(vec![Issue::new(
                "not-supported",
                "Bundle.entry",
                "one ServiceRequest per Bundle",
            )]);
        }
    };
    let base = format!("Bundle.entry[{index}].resource");
    let request: ServiceRequest = parse(resource, &base).map_err(|i| vec![i])?;
    let find = |reference: &str| -> Option<(String, Value)> {
        bundle.entry.iter().enumerate().find_map(|(i, e)| {
            let resource = e.resource.as_ref()?;
            let by_url = e.full_url.as_deref() == Some(reference);
            let by_id = match (resource_type(resource), resource.get("id")) {
                (Some(kind), Some(Value::String(id))) => reference == format!("{kind}/{id}"),
                _ => false,
            };
            (by_url || by_id).then(|| (format!("Bundle.entry[{i}].resource"), resource.clone()))
        })
    };
    map_request(&request, &base, rules, &find)
}

/// The ServiceRequest's own rules, and the resources it refers to through `find`.
fn map_request(
    request: &ServiceRequest,
    at: &str,
    rules: &FhirRules,
    find: &dyn Fn(&str) -> Option<(String, Value)>,
) -> Result<MappedReferral, Vec<Issue>> {
    let mut issues = Vec::new();
    if !request.modifier_extension.is_empty() {
        issues.push(Issue::new(
            "not-supported",
            format!("{at}.modifierExtension"),
            "a modifier extension changes what the request means, and none is understood here",
        ));
    }
    let identifier = request
        .identifier
        .iter()
        .find_map(|id| match (&id.system, &id.value) {
            (Some(s), Some(v)) if !s.trim().is_empty() && !v.trim().is_empty() => {
                Some((s.trim().to_owned(), v.trim().to_owned()))
            }
            _ => None,
        });
    if identifier.is_none() {
        issues.push(Issue::new(
            "required",
            format!("{at}.identifier"),
            "an identifier with a system and a value is needed: sending the same ServiceRequest \
             again is recognised by it",
        ));
    }
    if let Some((system, value)) = &identifier
        && (system.len() > 500 || value.len() > 200)
    {
        issues.push(Issue::new(
            "value",
            format!("{at}.identifier"),
            "an identifier's system is at most 500 characters and its value at most 200",
        ));
    }
    match request.status.as_deref() {
        Some("active") => {}
        None => issues.push(Issue::new(
            "required",
            format!("{at}.status"),
            "status is needed (active)",
        )),
        Some(other) => issues.push(Issue::new(
            "value",
            format!("{at}.status"),
            format!("a referral is sent active, not {other:?}"),
        )),
    }
    match request.intent.as_deref() {
        Some("order") => {}
        None => issues.push(Issue::new(
            "required",
            format!("{at}.intent"),
            "intent is needed (order)",
        )),
        Some(other) => issues.push(Issue::new(
            "value",
            format!("{at}.intent"),
            format!("a referral is an order, not {other:?}"),
        )),
    }
    let referral_code = request.code.as_ref().is_some_and(|code| {
        code.coding.iter().any(|c| {
            c.system.as_deref() == Some(SNOMED)
                && c.code
                    .as_deref()
                    .is_some_and(|code| rules.request.codes.iter().any(|r| r == code))
        })
    });
    if !referral_code {
        issues.push(Issue::new(
            if request.code.is_none() {
                "required"
            } else {
                "code-invalid"
            },
            format!("{at}.code"),
            format!(
                "code must be a SNOMED CT referral to social prescribing ({})",
                rules.request.codes.join(", ")
            ),
        ));
    }
    let urgency = match request.priority.as_deref() {
        None => Some(Urgency::Routine),
        Some(p) => match rules.priority.get(p) {
            Some(u) => Some(*u),
            None => {
                issues.push(Issue::new(
                    "code-invalid",
                    format!("{at}.priority"),
                    format!("priority is one of routine, urgent, asap or stat, not {p:?}"),
                ));
                None
            }
        },
    };
    let mut notes: Vec<String> = Vec::new();
    let (reasons, reason_words) = reasons(&request.reason_code, at, rules, &mut issues);
    notes.extend(reason_words);
    let referrer = referrer(request.requester.as_ref(), at, &mut issues);
    if let Some(words) = occurrence(request, at, &mut issues) {
        notes.push(words);
    }
    if let Some(authored) = &request.authored_on
        && !is_date_or_date_time(authored)
    {
        issues.push(Issue::new(
            "value",
            format!("{at}.authoredOn"),
            "authoredOn is a FHIR date or dateTime",
        ));
    }
    for (i, note) in request.note.iter().enumerate() {
        match note.text.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => notes.push(text.to_owned()),
            _ => issues.push(Issue::new(
                "required",
                format!("{at}.note[{i}].text"),
                "a note has text",
            )),
        }
    }
    let patient = match request
        .subject
        .as_ref()
        .and_then(|s| s.reference.as_deref())
    {
        None => {
            issues.push(Issue::new(
                "required",
                format!("{at}.subject"),
                "subject must refer to the Patient sent with the request",
            ));
            None
        }
        Some(reference) => match find(reference) {
            Some((path, value)) if resource_type(&value) == Some("Patient") => {
                patient(&value, &path, &mut issues)
            }
            _ => {
                issues.push(Issue::new(
                    "invalid",
                    format!("{at}.subject"),
                    format!(
                        "subject {reference:?} is not a Patient sent with the request (contained \
                         in it as \"#id\", or an entry of the Bundle by its fullUrl)"
                    ),
                ));
                None
            }
        },
    };
    for (i, info) in request.supporting_info.iter().enumerate() {
        let Some(reference) = info.reference.as_deref() else {
            continue;
        };
        if let Some((path, value)) = find(reference)
            && resource_type(&value) == Some("QuestionnaireResponse")
        {
            match parse::<QuestionnaireResponse>(&value, &path) {
                Ok(response) => {
                    if !response.modifier_extension.is_empty() {
                        issues.push(Issue::new(
                            "not-supported",
                            format!("{path}.modifierExtension"),
                            "a modifier extension is not understood here",
                        ));
                    }
                    if !matches!(response.status.as_deref(), Some("completed" | "amended")) {
                        issues.push(Issue::new(
                            "value",
                            format!("{path}.status"),
                            "a questionnaire sent with a referral is completed (or amended)",
                        ));
                    }
                    let mut lines = Vec::new();
                    answers(&response.item, &mut lines);
                    if !lines.is_empty() {
                        notes.push(format!("Questionnaire:\n{}", lines.join("\n")));
                    }
                }
                Err(issue) => issues.push(issue),
            }
        } else if find(reference).is_none() && reference.starts_with('#') {
            issues.push(Issue::new(
                "invalid",
                format!("{at}.supportingInfo[{i}]"),
                format!("{reference:?} is not contained in the request"),
            ));
        }
    }
    let note = notes.join("\n\n");
    if note.chars().count() > NOTE_LIMIT {
        issues.push(Issue::new(
            "too-long",
            format!("{at}.note"),
            format!(
                "the notes, reasons in words and questionnaire answers together are longer than \
                 {NOTE_LIMIT} characters"
            ),
        ));
    }
    match (issues.is_empty(), identifier, patient, urgency, referrer) {
        (true, Some(identifier), Some((personal, area)), Some(urgency), Some(referrer)) => {
            Ok(MappedReferral {
                identifier,
                personal,
                area,
                source: rules.request.source,
                referrer,
                reasons,
                urgency,
                note: (!note.is_empty()).then_some(note),
            })
        }
        _ => Err(issues),
    }
}

/// The need of each reason, and in words each reason no rule maps.
fn reasons(
    codes: &[CodeableConcept],
    at: &str,
    rules: &FhirRules,
    issues: &mut Vec<Issue>,
) -> (Vec<NeedDomain>, Option<String>) {
    if codes.is_empty() {
        issues.push(Issue::new(
            "required",
            format!("{at}.reasonCode"),
            "at least one reason for the referral is needed (SNOMED CT)",
        ));
    }
    let mut needs = Vec::new();
    let mut words = Vec::new();
    for (i, concept) in codes.iter().enumerate() {
        let snomed = concept
            .coding
            .iter()
            .find(|c| c.system.as_deref() == Some(SNOMED) && c.code.is_some());
        let need = snomed
            .and_then(|c| c.code.as_deref())
            .and_then(|c| rules.need_for(c));
        match need {
            Some(need) => {
                if !needs.contains(&need) {
                    needs.push(need);
                }
            }
            None => {
                let term = concept
                    .text
                    .clone()
                    .or_else(|| snomed.and_then(|c| c.display.clone()))
                    .or_else(|| concept.coding.iter().find_map(|c| c.display.clone()));
                let code = snomed.and_then(|c| c.code.clone());
                match (term, code) {
                    (None, None) => issues.push(Issue::new(
                        "required",
                        format!("{at}.reasonCode[{i}]"),
                        "a reason has a SNOMED CT code or words",
                    )),
                    (term, code) => {
                        if !needs.contains(&NeedDomain::Other) {
                            needs.push(NeedDomain::Other);
                        }
                        words.push(match (term, code) {
                            (Some(t), Some(c)) => format!("{t} (SNOMED CT {c})"),
                            (Some(t), None) => t,
                            (None, Some(c)) => format!("SNOMED CT {c}"),
                            (None, None) => String::new(),
                        });
                    }
                }
            }
        }
    }
    let words = (!words.is_empty()).then(|| format!("Other reasons: {}", words.join("; ")));
    (needs, words)
}

/// Who referred: the requester's name and practice (its ODS code when given).
fn referrer(requester: Option<&Reference>, at: &str, issues: &mut Vec<Issue>) -> Option<Referrer> {
    let Some(requester) = requester else {
        issues.push(Issue::new(
            "required",
            format!("{at}.requester"),
            "requester is needed: who in the practice makes the referral",
        ));
        return None;
    };
    let name = requester
        .display
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let organisation = requester
        .identifier
        .as_ref()
        .filter(|id| id.system.as_deref() == Some(ODS_CODE))
        .and_then(|id| id.value.as_deref())
        .map(|code| format!("ODS {}", code.trim()));
    if name.is_none() && organisation.is_none() && requester.reference.is_none() {
        issues.push(Issue::new(
            "required",
            format!("{at}.requester"),
            "requester needs a display name, an ODS identifier or a reference",
        ));
        return None;
    }
    Some(Referrer {
        staff_id: None,
        name: name.or_else(|| requester.reference.clone()),
        organisation,
    })
}

/// When the service is asked to happen, in words for the note.
fn occurrence(request: &ServiceRequest, at: &str, issues: &mut Vec<Issue>) -> Option<String> {
    if let Some(when) = &request.occurrence_date_time {
        if !is_date_or_date_time(when) {
            issues.push(Issue::new(
                "value",
                format!("{at}.occurrenceDateTime"),
                "occurrenceDateTime is a FHIR date or dateTime",
            ));
            return None;
        }
        return Some(format!("Requested for: {when}"));
    }
    let period = request.occurrence_period.as_ref()?;
    for (name, value) in [("start", &period.start), ("end", &period.end)] {
        if let Some(value) = value
            && !is_date_or_date_time(value)
        {
            issues.push(Issue::new(
                "value",
                format!("{at}.occurrencePeriod.{name}"),
                format!("occurrencePeriod.{name} is a FHIR dateTime"),
            ));
            return None;
        }
    }
    match (&period.start, &period.end) {
        (Some(s), Some(e)) => Some(format!("Requested between {s} and {e}")),
        (Some(s), None) => Some(format!("Requested from {s}")),
        (None, Some(e)) => Some(format!("Requested by {e}")),
        (None, None) => None,
    }
}

/// A FHIR `date` (YYYY, YYYY-MM, YYYY-MM-DD) or `dateTime` with its zone.
fn is_date_or_date_time(text: &str) -> bool {
    DateTime::parse_from_rfc3339(text).is_ok()
        || NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
        || NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").is_ok()
        || NaiveDate::parse_from_str(&format!("{text}-01-01"), "%Y-%m-%d").is_ok()
}

/// The person: name, date of birth, NHS number (its check digit checked), telephone, email,
/// address; and the area reports count them in.
fn patient(value: &Value, at: &str, issues: &mut Vec<Issue>) -> Option<(PersonalDetails, String)> {
    let patient: Patient = match parse(value, at) {
        Ok(p) => p,
        Err(issue) => {
            issues.push(issue);
            return None;
        }
    };
    let before = issues.len();
    if !patient.modifier_extension.is_empty() {
        issues.push(Issue::new(
            "not-supported",
            format!("{at}.modifierExtension"),
            "a modifier extension changes what the record means, and none is understood here",
        ));
    }
    let name = patient
        .name
        .iter()
        .enumerate()
        .find(|(_, n)| n.name_use.as_deref() == Some("official"))
        .or_else(|| patient.name.iter().enumerate().next());
    let (given_name, family_name) = match name {
        None => {
            issues.push(Issue::new(
                "required",
                format!("{at}.name"),
                "the person's name is needed",
            ));
            (String::new(), String::new())
        }
        Some((i, n)) => {
            let given = n.given.join(" ").trim().to_owned();
            let family = n.family.as_deref().unwrap_or("").trim().to_owned();
            if given.is_empty() {
                issues.push(Issue::new(
                    "required",
                    format!("{at}.name[{i}].given"),
                    "a given name is needed",
                ));
            }
            if family.is_empty() {
                issues.push(Issue::new(
                    "required",
                    format!("{at}.name[{i}].family"),
                    "a family name is needed",
                ));
            }
            (given, family)
        }
    };
    let mut nhs_number = None;
    for (i, id) in patient.identifier.iter().enumerate() {
        if id.system.as_deref() != Some(NHS_NUMBER) {
            continue;
        }
        match id.value.as_deref().map(NhsNumber::parse) {
            Some(Ok(number)) => nhs_number = Some(number),
            Some(Err(why)) => issues.push(Issue::new(
                "value",
                format!("{at}.identifier[{i}].value"),
                why,
            )),
            None => issues.push(Issue::new(
                "required",
                format!("{at}.identifier[{i}].value"),
                "an NHS number identifier has a value",
            )),
        }
    }
    let date_of_birth = match patient.birth_date.as_deref() {
        None => None,
        Some(text) => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) => Some(date),
            Err(_) => {
                issues.push(Issue::new(
                    "value",
                    format!("{at}.birthDate"),
                    "birthDate is a full date (YYYY-MM-DD)",
                ));
                None
            }
        },
    };
    let telecom = |system: &str| {
        patient
            .telecom
            .iter()
            .find(|t| t.system.as_deref() == Some(system))
            .and_then(|t| t.value.clone())
    };
    let address = patient
        .address
        .iter()
        .find(|a| a.address_use.as_deref() == Some("home"))
        .or_else(|| patient.address.first());
    let postcode = address
        .and_then(|a| a.postal_code.as_deref())
        .map(|p| p.trim().to_uppercase())
        .filter(|p| !p.is_empty());
    let area = postcode.as_deref().and_then(postcode_district).or_else(|| {
        address.and_then(|a| {
            a.city
                .clone()
                .or_else(|| a.district.clone())
                .filter(|c| !c.trim().is_empty())
        })
    });
    if area.is_none() {
        issues.push(Issue::new(
            "required",
            format!("{at}.address"),
            "a postcode or town is needed: the service counts its referrals by area",
        ));
    }
    let lines = address.map(|a| {
        let mut parts: Vec<String> = a.line.clone();
        parts.extend(a.city.clone());
        parts.extend(a.district.clone());
        if parts.is_empty() {
            parts.extend(a.text.clone());
        }
        parts.join(", ")
    });
    if issues.len() > before {
        return None;
    }
    let personal = PersonalDetails {
        given_name,
        family_name,
        date_of_birth,
        nhs_number,
        phone: telecom("phone"),
        email: telecom("email"),
        address: lines.filter(|l| !l.is_empty()),
        postcode,
    };
    Some((personal, area.unwrap_or_default()))
}

/// The outward code of a UK postcode ("BA11 1AA" gives "BA11"), when it looks like one.
pub fn postcode_district(postcode: &str) -> Option<String> {
    let compact: String = postcode.split_whitespace().collect();
    let compact = compact.to_uppercase();
    if !(5..=7).contains(&compact.len()) || !compact.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let inward: Vec<char> = inward.chars().collect();
    let looks_like_one = outward.starts_with(|c: char| c.is_ascii_alphabetic())
        && outward.chars().any(|c| c.is_ascii_digit())
        && inward[0].is_ascii_digit()
        && inward[1..].iter().all(char::is_ascii_alphabetic);
    looks_like_one.then(|| outward.to_owned())
}

/// Each answered question as a line of words.
fn answers(items: &[QuestionnaireItem], lines: &mut Vec<String>) {
    for item in items {
        let question = item
            .text
            .clone()
            .or_else(|| item.link_id.clone())
            .unwrap_or_default();
        let said: Vec<String> = item.answer.iter().filter_map(answer_words).collect();
        if !said.is_empty() {
            lines.push(format!("{question}: {}", said.join(", ")));
        }
        for answer in &item.answer {
            if let Some(Value::Array(nested)) = answer.get("item")
                && let Ok(nested) =
                    serde_json::from_value::<Vec<QuestionnaireItem>>(Value::Array(nested.clone()))
            {
                answers(&nested, lines);
            }
        }
        answers(&item.item, lines);
    }
}

/// One `value[x]` answer in words.
fn answer_words(answer: &Value) -> Option<String> {
    let object = answer.as_object()?;
    object.iter().find_map(|(key, value)| {
        let kind = key.strip_prefix("value")?;
        Some(match (kind, value) {
            ("Coding", v) => v
                .get("display")
                .or_else(|| v.get("code"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            ("Quantity", v) => format!(
                "{} {}",
                v.get("value").map(Value::to_string).unwrap_or_default(),
                v.get("unit").and_then(Value::as_str).unwrap_or("")
            )
            .trim()
            .to_owned(),
            (_, Value::String(s)) => s.clone(),
            (_, Value::Bool(b)) => if *b { "yes" } else { "no" }.to_owned(),
            (_, Value::Number(n)) => n.to_string(),
            (_, other) => other.to_string(),
        })
    })
}
