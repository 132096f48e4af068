//! The mapping over real UK Core examples (`tests/fixtures/fhir/`, see its SOURCE.md), as they
//! are and changed only where the test says.

use domain::{NeedDomain, ReferralStatus, Urgency};
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;

const PATIENT: &str =
    include_str!("../../../../tests/fixtures/fhir/UKCore-Patient-RichardSmith-Example.json");
const COLONOSCOPY: &str = include_str!(
    "../../../../tests/fixtures/fhir/UKCore-ServiceRequest-ColonoscopyRequest-Example.json"
);
const QUESTIONNAIRE: &str = include_str!(
    "../../../../tests/fixtures/fhir/UKCore-QuestionnaireResponse-FitnessForWork-Example.json"
);

fn patient() -> Value {
    serde_json::from_str(PATIENT).expect("the fixture is JSON")
}

/// The UK Core colonoscopy request as it is, with the UK Core patient contained in it.
fn colonoscopy() -> Value {
    let mut request: Value = serde_json::from_str(COLONOSCOPY).expect("the fixture is JSON");
    let mut patient = patient();
    patient["id"] = json!("patient");
    request["contained"] = json!([patient]);
    request["subject"] = json!({ "reference": "#patient" });
    request
}

/// The same request made a referral to social prescribing: its code, a social reason beside
/// its own, and an identifier.
fn social_prescribing() -> Value {
    let mut request = colonoscopy();
    request["code"] = json!({ "coding": [{
        "system": SNOMED, "code": "871731000000106",
        "display": "Referral to social prescribing service"
    }] });
    let own_reason = request["reasonCode"][0].clone();
    request["reasonCode"] = json!([
        { "coding": [{ "system": SNOMED, "code": "422650009", "display": "Social isolation" }] },
        own_reason,
    ]);
    request["identifier"] =
        json!([{ "system": "https://example.org/practice/referrals", "value": "R-1" }]);
    request
}

fn expressions(issues: &[Issue]) -> Vec<&str> {
    issues.iter().map(|i| i.expression.as_str()).collect()
}

#[test]
fn every_mapping_file_parses_and_the_latest_is_used() {
    for (version, text) in FhirRules::all() {
        let rules = FhirRules::parse(text).expect("parses");
        assert_eq!(rules.version, version);
        assert!(
            rules
                .request
                .codes
                .contains(&SOCIAL_PRESCRIBING_REFERRAL.to_owned())
        );
        for reason in &rules.reasons {
            assert!(
                reason.code.chars().all(|c| c.is_ascii_digit()),
                "{}",
                reason.code
            );
        }
    }
    assert_eq!(FhirRules::latest().version, 1);
}

#[test]
fn a_real_gp_referral_for_a_colonoscopy_is_refused_at_its_code_and_for_its_missing_identifier() {
    let issues = map_service_request(&colonoscopy(), FhirRules::latest()).expect_err("refused");
    assert_eq!(
        expressions(&issues),
        ["ServiceRequest.identifier", "ServiceRequest.code"],
        "{issues:#?}"
    );
    assert_eq!(issues[1].code, "code-invalid");
}

#[test]
fn a_referral_to_social_prescribing_maps_the_patient_reasons_requester_and_occurrence() {
    let mapped =
        map_service_request(&social_prescribing(), FhirRules::latest()).expect("a referral");
    assert_eq!(
        mapped.identifier,
        (
            "https://example.org/practice/referrals".to_owned(),
            "R-1".to_owned()
        )
    );
    assert_eq!(mapped.personal.given_name, "Richard");
    assert_eq!(mapped.personal.family_name, "SMITH");
    assert_eq!(
        mapped.personal.nhs_number.as_ref().map(|n| n.as_str()),
        Some("9912003888")
    );
    assert_eq!(
        mapped
            .personal
            .date_of_birth
            .map(|d| d.to_string())
            .as_deref(),
        Some("1970-09-11")
    );
    assert_eq!(mapped.personal.phone.as_deref(), Some("01131231234"));
    assert_eq!(mapped.personal.postcode.as_deref(), Some("LS17 7DF"));
    assert_eq!(
        mapped.personal.address.as_deref(),
        Some("4 Sandmoor Drive, LEEDS")
    );
    assert_eq!(mapped.area, "LS17");
    // Social isolation maps to a need; the swollen abdomen does not, and is kept in words.
    assert_eq!(
        mapped.reasons,
        [NeedDomain::LonelinessIsolation, NeedDomain::Other]
    );
    assert_eq!(mapped.urgency, Urgency::Routine);
    assert_eq!(mapped.source, domain::ReferralSource::Gp);
    assert_eq!(
        mapped.referrer.name.as_deref(),
        Some("Practitioner/UKCore-Practitioner-DoctorPaulRastall-Example")
    );
    let note = mapped.note.expect("a note");
    assert!(
        note.contains("Swollen abdomen (SNOMED CT 271835004)"),
        "{note}"
    );
    assert!(
        note.contains("Requested from 2021-10-13T16:20:27+07:00"),
        "{note}"
    );
}

/// A change to a resource, for a table of bad resources.
type Change = Box<dyn Fn(&mut Value)>;

#[test]
fn each_bad_element_is_named_by_its_path() {
    let rules = FhirRules::latest();
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "a wrong check digit",
            Box::new(|r| r["contained"][0]["identifier"][0]["value"] = json!("9912003889")),
            "ServiceRequest.contained[0].identifier[0].value",
        ),
        (
            "no subject",
            Box::new(|r| {
                r.as_object_mut().map(|o| o.remove("subject"));
            }),
            "ServiceRequest.subject",
        ),
        (
            "a subject not sent",
            Box::new(|r| r["subject"] = json!({ "reference": "Patient/elsewhere" })),
            "ServiceRequest.subject",
        ),
        (
            "an unknown priority",
            Box::new(|r| r["priority"] = json!("whenever")),
            "ServiceRequest.priority",
        ),
        (
            "a draft",
            Box::new(|r| r["status"] = json!("draft")),
            "ServiceRequest.status",
        ),
        (
            "no reason",
            Box::new(|r| r["reasonCode"] = json!([])),
            "ServiceRequest.reasonCode",
        ),
        (
            "an identifier that is not a list",
            Box::new(|r| r["identifier"] = json!("R-1")),
            "ServiceRequest.identifier",
        ),
        (
            "a reason code that is a number",
            Box::new(|r| r["reasonCode"][0]["coding"][0]["code"] = json!(422650009)),
            "ServiceRequest.reasonCode[0].coding[0].code",
        ),
        (
            "no family name",
            Box::new(|r| r["contained"][0]["name"][0]["family"] = json!(" ")),
            "ServiceRequest.contained[0].name[0].family",
        ),
        (
            "a modifier extension",
            Box::new(|r| r["modifierExtension"] = json!([{ "url": "https://example.org/x" }])),
            "ServiceRequest.modifierExtension",
        ),
        (
            "no requester",
            Box::new(|r| {
                r.as_object_mut().map(|o| o.remove("requester"));
            }),
            "ServiceRequest.requester",
        ),
        (
            "no address",
            Box::new(|r| r["contained"][0]["address"] = json!([])),
            "ServiceRequest.contained[0].address",
        ),
    ];
    for (what, change, path) in cases {
        let mut request = social_prescribing();
        change(&mut request);
        let issues = map_service_request(&request, rules).expect_err(what);
        assert_eq!(expressions(&issues), [path], "{what}: {issues:#?}");
    }
}

/// A transaction of the UK Core patient, the referral and the UK Core questionnaire, each
/// referring to the others by `fullUrl`.
fn transaction() -> Value {
    let mut request = social_prescribing();
    request.as_object_mut().map(|o| o.remove("contained"));
    request["subject"] = json!({ "reference": "urn:uuid:7f3c3a59-58d1-4b43-9c4e-8b8c2f4a0001" });
    request["supportingInfo"] =
        json!([{ "reference": "urn:uuid:7f3c3a59-58d1-4b43-9c4e-8b8c2f4a0003" }]);
    let questionnaire: Value = serde_json::from_str(QUESTIONNAIRE).expect("JSON");
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            { "fullUrl": "urn:uuid:7f3c3a59-58d1-4b43-9c4e-8b8c2f4a0001", "resource": patient(),
              "request": { "method": "POST", "url": "Patient" } },
            { "fullUrl": "urn:uuid:7f3c3a59-58d1-4b43-9c4e-8b8c2f4a0002", "resource": request,
              "request": { "method": "POST", "url": "ServiceRequest" } },
            { "fullUrl": "urn:uuid:7f3c3a59-58d1-4b43-9c4e-8b8c2f4a0003", "resource": questionnaire,
              "request": { "method": "POST", "url": "QuestionnaireResponse" } },
        ]
    })
}

#[test]
fn a_transaction_maps_the_same_referral_with_the_questionnaire_in_its_note() {
    let rules = FhirRules::latest();
    let mapped = map_transaction(&transaction(), rules).expect("a referral");
    let alone = map_service_request(&social_prescribing(), rules).expect("a referral");
    assert_eq!(mapped.personal, alone.personal);
    assert_eq!(mapped.reasons, alone.reasons);
    let note = mapped.note.expect("a note");
    assert!(note.contains("Condition (Coded): Fibromyalgia"), "{note}");
    assert!(
        note.contains("I find you: Fit for work with restrictions"),
        "{note}"
    );
    assert!(note.contains("Assessment Date: 2023-11-13"), "{note}");

    let mut bad = transaction();
    bad["entry"][2]["request"]["method"] = json!("PUT");
    bad["entry"][0]["resource"]["birthDate"] = json!("11/09/1970");
    let issues = map_transaction(&bad, rules).expect_err("refused");
    assert_eq!(expressions(&issues), ["Bundle.entry[2].request.method"]);
    bad["entry"][2]["request"]["method"] = json!("POST");
    let issues = map_transaction(&bad, rules).expect_err("refused");
    assert_eq!(expressions(&issues), ["Bundle.entry[0].resource.birthDate"]);
    let mut batch = transaction();
    batch["type"] = json!("batch");
    let issues = map_transaction(&batch, rules).expect_err("refused");
    assert_eq!(expressions(&issues), ["Bundle.type"]);
}

#[test]
fn the_status_a_practice_sees_follows_the_decision_and_the_closure() {
    use PracticeStatus as P;
    let table = [
        (
            ReferralStatus::Pending,
            false,
            P::Received,
            "received",
            "active",
        ),
        (
            ReferralStatus::Accepted,
            false,
            P::Accepted,
            "accepted",
            "active",
        ),
        (
            ReferralStatus::Accepted,
            true,
            P::Completed,
            "completed",
            "completed",
        ),
        (
            ReferralStatus::Declined,
            true,
            P::Declined,
            "rejected",
            "revoked",
        ),
        (
            ReferralStatus::Redirected,
            true,
            P::Redirected,
            "rejected",
            "revoked",
        ),
    ];
    for (status, ended, expected, task, request) in table {
        let got = PracticeStatus::of(status, ended);
        assert_eq!(got, expected);
        assert_eq!(got.task_status(), task);
        assert_eq!(got.request_status(), request);
    }
}

#[test]
fn a_resource_id_is_its_organisations_and_identifiers() {
    let org = Uuid::from_u128(1);
    let id = resource_id(org, "https://example.org/r", "1");
    assert_eq!(id, resource_id(org, "https://example.org/r", "1"));
    assert_ne!(
        id,
        resource_id(Uuid::from_u128(2), "https://example.org/r", "1")
    );
    assert_ne!(id, resource_id(org, "https://example.org/r1", ""));
    assert_ne!(id, resource_id(org, "https://example.org/r", "2"));
    assert_eq!(postcode_district("ba11 1aa").as_deref(), Some("BA11"));
    assert_eq!(postcode_district("LS177DF").as_deref(), Some("LS17"));
    assert_eq!(postcode_district("nowhere"), None);
}
