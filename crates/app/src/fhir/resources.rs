//! The FHIR R4 resources a referral arrives in, as typed serde structs restricted to the
//! elements Casebook reads (UK Core ServiceRequest, Patient, QuestionnaireResponse and a
//! transaction Bundle). Every other element is ignored, except `modifierExtension`, which
//! changes the meaning of what carries it and so is refused.

use serde::Deserialize;
use serde_json::Value;

/// An identifier: a namespace and a value in it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Identifier {
    pub system: Option<String>,
    pub value: Option<String>,
}

/// A code in a code system.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Coding {
    pub system: Option<String>,
    pub code: Option<String>,
    pub display: Option<String>,
}

/// Codes and words for one concept.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CodeableConcept {
    #[serde(default)]
    pub coding: Vec<Coding>,
    pub text: Option<String>,
}

/// A reference to another resource, by URL, by identifier, or by words alone.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Reference {
    pub reference: Option<String>,
    pub identifier: Option<Identifier>,
    pub display: Option<String>,
}

/// A time span.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Period {
    pub start: Option<String>,
    pub end: Option<String>,
}

/// A note.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Annotation {
    pub text: Option<String>,
}

/// The ServiceRequest elements a referral maps.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRequest {
    #[serde(default)]
    pub contained: Vec<Value>,
    #[serde(default)]
    pub modifier_extension: Vec<Value>,
    #[serde(default)]
    pub identifier: Vec<Identifier>,
    pub status: Option<String>,
    pub intent: Option<String>,
    pub code: Option<CodeableConcept>,
    pub subject: Option<Reference>,
    pub occurrence_date_time: Option<String>,
    pub occurrence_period: Option<Period>,
    pub authored_on: Option<String>,
    pub requester: Option<Reference>,
    pub priority: Option<String>,
    #[serde(default)]
    pub reason_code: Vec<CodeableConcept>,
    #[serde(default)]
    pub supporting_info: Vec<Reference>,
    #[serde(default)]
    pub note: Vec<Annotation>,
}

/// A person's name.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct HumanName {
    #[serde(rename = "use")]
    pub name_use: Option<String>,
    pub family: Option<String>,
    #[serde(default)]
    pub given: Vec<String>,
}

/// A telephone number, email address or the like.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ContactPoint {
    pub system: Option<String>,
    pub value: Option<String>,
}

/// A postal address.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[serde(rename = "use")]
    pub address_use: Option<String>,
    #[serde(default)]
    pub line: Vec<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub postal_code: Option<String>,
    pub text: Option<String>,
}

/// The Patient elements a referral maps.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    #[serde(default)]
    pub modifier_extension: Vec<Value>,
    #[serde(default)]
    pub identifier: Vec<Identifier>,
    #[serde(default)]
    pub name: Vec<HumanName>,
    #[serde(default)]
    pub telecom: Vec<ContactPoint>,
    pub birth_date: Option<String>,
    #[serde(default)]
    pub address: Vec<Address>,
}

/// One question and its answers.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionnaireItem {
    pub link_id: Option<String>,
    pub text: Option<String>,
    /// Each answer is one `value[x]` (kept as it came, rendered as words).
    #[serde(default)]
    pub answer: Vec<Value>,
    #[serde(default)]
    pub item: Vec<QuestionnaireItem>,
}

/// The QuestionnaireResponse elements a referral keeps (as words in its note).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionnaireResponse {
    #[serde(default)]
    pub modifier_extension: Vec<Value>,
    pub status: Option<String>,
    #[serde(default)]
    pub item: Vec<QuestionnaireItem>,
}

/// How a transaction entry asks to be carried out.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct BundleRequest {
    pub method: Option<String>,
}

/// One entry of a Bundle.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    pub full_url: Option<String>,
    pub resource: Option<Value>,
    pub request: Option<BundleRequest>,
}

/// A Bundle.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    #[serde(rename = "type")]
    pub bundle_type: Option<String>,
    #[serde(default)]
    pub entry: Vec<BundleEntry>,
}
