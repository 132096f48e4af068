//! FHIR R4 referrals in: a practice's system refers over `/fhir` with real UK Core examples
//! (`tests/fixtures/fhir/`, see its SOURCE.md), once per identifier, and follows the referral's
//! Task through the service's decision and closure; every error is an OperationOutcome naming
//! the element, and every read is audited.

use serde_json::{Value, json};
use uuid::Uuid;

use super::journey::client_path;
use super::{Person, TestServer};

const PATIENT: &str = include_str!("../../fixtures/fhir/UKCore-Patient-RichardSmith-Example.json");
const COLONOSCOPY: &str =
    include_str!("../../fixtures/fhir/UKCore-ServiceRequest-ColonoscopyRequest-Example.json");
const QUESTIONNAIRE: &str =
    include_str!("../../fixtures/fhir/UKCore-QuestionnaireResponse-FitnessForWork-Example.json");
const SNOMED: &str = "http://snomed.info/sct";
const IDENTIFIER_SYSTEM: &str = "https://example.org/frome-medical-practice/referrals";

/// The UK Core colonoscopy referral as it is, with the UK Core patient contained in it.
pub fn colonoscopy() -> Value {
    let mut request: Value = serde_json::from_str(COLONOSCOPY).expect("JSON");
    let mut patient: Value = serde_json::from_str(PATIENT).expect("JSON");
    patient["id"] = json!("patient");
    request["contained"] = json!([patient]);
    request["subject"] = json!({ "reference": "#patient" });
    request
}

/// The same made a referral to social prescribing (code, a social reason, an identifier).
pub fn service_request(identifier: &str) -> Value {
    let mut request = colonoscopy();
    request["code"] = json!({ "coding": [{ "system": SNOMED, "code": "871731000000106" }] });
    request["reasonCode"] = json!([{ "coding": [{ "system": SNOMED, "code": "422650009", "display": "Social isolation" }] }]);
    request["identifier"] = json!([{ "system": IDENTIFIER_SYSTEM, "value": identifier }]);
    request
}

/// The same for a Patient with NHS number `nhs`.
pub fn service_request_for(identifier: &str, nhs: &str) -> Value {
    let mut request = service_request(identifier);
    request["contained"][0]["identifier"][0]["value"] = json!(nhs);
    request
}

/// A transaction of the UK Core patient, the referral and the UK Core questionnaire.
pub fn transaction(identifier: &str) -> Value {
    let mut request = service_request(identifier);
    request.as_object_mut().map(|o| o.remove("contained"));
    request["subject"] = json!({ "reference": "urn:uuid:0d1b3c6a-1f5e-4c1e-9d55-000000000001" });
    request["supportingInfo"] =
        json!([{ "reference": "urn:uuid:0d1b3c6a-1f5e-4c1e-9d55-000000000003" }]);
    let patient: Value = serde_json::from_str(PATIENT).expect("JSON");
    let questionnaire: Value = serde_json::from_str(QUESTIONNAIRE).expect("JSON");
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            { "fullUrl": "urn:uuid:0d1b3c6a-1f5e-4c1e-9d55-000000000001", "resource": patient,
              "request": { "method": "POST", "url": "Patient" } },
            { "fullUrl": "urn:uuid:0d1b3c6a-1f5e-4c1e-9d55-000000000002", "resource": request,
              "request": { "method": "POST", "url": "ServiceRequest" } },
            { "fullUrl": "urn:uuid:0d1b3c6a-1f5e-4c1e-9d55-000000000003", "resource": questionnaire,
              "request": { "method": "POST", "url": "QuestionnaireResponse" } },
        ]
    })
}

/// The practice refers someone with this identifier; the ServiceRequest's id.
pub async fn refer(server: &TestServer, practice: &Person, identifier: &str) -> Uuid {
    let reply = server
        .post(
            practice,
            "/fhir/ServiceRequest",
            service_request(identifier),
        )
        .await;
    assert_eq!(reply.status, 201, "{:#}", reply.body);
    reply.body["id"]
        .as_str()
        .and_then(|id| Uuid::try_parse(id).ok())
        .expect("an id")
}

fn expressions(outcome: &Value) -> Vec<String> {
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome:#}");
    outcome["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .flat_map(|i| i["expression"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect()
}

async fn task_status(server: &TestServer, practice: &Person, id: Uuid) -> (String, String) {
    let task = server.read(practice, &format!("/fhir/Task/{id}")).await;
    assert_eq!(task.header("content-type"), Some("application/fhir+json"));
    assert_eq!(
        task.body["basedOn"][0]["reference"],
        format!("ServiceRequest/{id}")
    );
    (
        task.body["status"].as_str().unwrap_or("").to_owned(),
        task.body["businessStatus"]["coding"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )
}

/// Another GP practice's system, of `organisation`, named `name`.
async fn practice_system(server: &TestServer, organisation: Uuid, name: &str) -> Person {
    let admin = server.db.admin_client().await;
    let role = app::access::Role::PracticeSystem;
    super::person(&admin, organisation, None, role, name).await
}

#[tokio::test]
async fn a_practice_refers_once_per_identifier_and_follows_the_decision_to_completion() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let practice = &people.practice;

    let first = server
        .post(practice, "/fhir/ServiceRequest", service_request("R-100"))
        .await;
    assert_eq!(first.status, 201, "{:#}", first.body);
    assert_eq!(first.header("content-type"), Some("application/fhir+json"));
    let id = first.body["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        first.header("location"),
        Some(format!("/fhir/ServiceRequest/{id}").as_str())
    );
    assert_eq!(first.body["identifier"][0]["value"], "R-100");
    assert_eq!(first.body["status"], "active");
    assert_eq!(
        first.body["reasonCode"][0]["coding"][0]["code"],
        "loneliness_isolation"
    );
    let id = Uuid::try_parse(&id).expect("a uuid");

    // The same ServiceRequest again: the same resource, and still one referral.
    let again = server
        .post(practice, "/fhir/ServiceRequest", service_request("R-100"))
        .await;
    assert_eq!(again.status, 200, "{:#}", again.body);
    assert_eq!(again.body, first.body);
    let journey = server
        .read(&people.auditor, &format!("/api/v1/clients/{id}/journey"))
        .await;
    let types: Vec<&str> = journey.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(types, ["ClientRegistered", "ReferralReceived"]);
    let referral = &journey.body["entries"][1];
    assert_eq!(referral["actor_id"], json!(practice.staff_id));
    assert_eq!(
        referral["payload"]["referrer"]["staff_id"],
        json!(practice.staff_id)
    );
    assert_eq!(referral["payload"]["source"], "gp");
    let record = server
        .read(&people.auditor, &format!("/api/v1/clients/{id}"))
        .await;
    assert_eq!(record.body["personal"]["nhs_number"], "9912003888");
    assert_eq!(record.body["personal"]["family_name"], "SMITH");
    assert_eq!(record.body["area"], "LS17");

    // The same identifier with other content is refused, and changes nothing.
    let mut changed = service_request("R-100");
    changed["priority"] = json!("urgent");
    let conflict = server.post(practice, "/fhir/ServiceRequest", changed).await;
    assert_eq!(conflict.status, 409, "{:#}", conflict.body);
    assert_eq!(expressions(&conflict.body), ["ServiceRequest.identifier"]);

    assert_eq!(
        task_status(&server, practice, id).await,
        ("received".to_owned(), "received".to_owned())
    );
    server
        .ok(
            &people.lead,
            &client_path(id, "referral-acceptances"),
            json!({ "referral_id": id }),
        )
        .await;
    assert_eq!(
        task_status(&server, practice, id).await,
        ("accepted".to_owned(), "accepted".to_owned())
    );
    server
        .ok(
            &people.lead,
            &client_path(id, "closure"),
            json!({ "reason": "goals_met", "note": null }),
        )
        .await;
    assert_eq!(
        task_status(&server, practice, id).await,
        ("completed".to_owned(), "completed".to_owned())
    );
    let request = server
        .read(practice, &format!("/fhir/ServiceRequest/{id}"))
        .await;
    assert_eq!(request.body["status"], "completed");
    assert_eq!(request.body["identifier"][0]["system"], IDENTIFIER_SYSTEM);
    // What a practice reads back names no one.
    let text = request.body.to_string();
    assert!(
        !text.contains("SMITH") && !text.contains("9912003888"),
        "{text}"
    );

    // A declined referral's Task says so (someone else: the first person's number would
    // find their record).
    let declined = server
        .post(
            practice,
            "/fhir/ServiceRequest",
            service_request_for("R-101", "9990000026"),
        )
        .await;
    assert_eq!(declined.status, 201, "{:#}", declined.body);
    let declined = declined.body["id"]
        .as_str()
        .and_then(|id| Uuid::try_parse(id).ok())
        .expect("an id");
    server
        .ok(
            &people.lead,
            &client_path(declined, "referral-declines"),
            json!({ "referral_id": declined, "reason": "not_eligible", "note": "out of area" }),
        )
        .await;
    assert_eq!(
        task_status(&server, practice, declined).await,
        ("rejected".to_owned(), "declined".to_owned())
    );

    // Every read the practice made is in the read audit, as the practice system.
    let reads = server
        .read(&people.auditor, &format!("/api/v1/clients/{id}/reads"))
        .await;
    let views: Vec<(&str, &str)> = reads.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|r| r["staff_id"] == json!(practice.staff_id))
        .map(|r| {
            (
                r["view"].as_str().unwrap_or(""),
                r["role"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        views,
        [
            // The same ServiceRequest sent again was answered with where it stood.
            ("fhir_service_request", "practice_system"),
            ("fhir_task", "practice_system"),
            ("fhir_task", "practice_system"),
            ("fhir_task", "practice_system"),
            ("fhir_service_request", "practice_system"),
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_transaction_bundle_refers_with_its_questionnaire_once() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let practice = &people.practice;
    let reply = server.post(practice, "/fhir", transaction("R-200")).await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    assert_eq!(reply.body["type"], "transaction-response");
    let entries = reply.body["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[1]["response"]["status"], "201 Created");
    let location = entries[1]["response"]["location"]
        .as_str()
        .expect("a location");
    let id = location
        .strip_prefix("ServiceRequest/")
        .expect("a ServiceRequest");
    let again = server.post(practice, "/fhir", transaction("R-200")).await;
    assert_eq!(again.body["entry"][1]["response"]["status"], "200 OK");
    assert_eq!(again.body["entry"][1]["response"]["location"], location);
    // The same identifier on its own, without the questionnaire, is other content: refused.
    let alone = server
        .post(practice, "/fhir/ServiceRequest", service_request("R-200"))
        .await;
    assert_eq!(alone.status, 409, "not the same content: {:#}", alone.body);
    let journey = server
        .read(&people.auditor, &format!("/api/v1/clients/{id}/journey"))
        .await;
    let note = journey.body["entries"][1]["payload"]["note"]
        .as_str()
        .expect("a note");
    assert!(
        note.contains("I find you: Fit for work with restrictions"),
        "{note}"
    );
    server.stop().await;
}

#[tokio::test]
async fn fhir_errors_are_operation_outcomes_naming_the_element() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let practice = &people.practice;

    // A real UK Core GP referral for a colonoscopy is no referral to social prescribing.
    let colonoscopy = server
        .post(practice, "/fhir/ServiceRequest", colonoscopy())
        .await;
    assert_eq!(colonoscopy.status, 422, "{:#}", colonoscopy.body);
    assert_eq!(
        colonoscopy.header("content-type"),
        Some("application/fhir+json")
    );
    assert_eq!(
        expressions(&colonoscopy.body),
        ["ServiceRequest.identifier", "ServiceRequest.code"]
    );
    let mut bad_number = service_request("R-300");
    bad_number["contained"][0]["identifier"][0]["value"] = json!("9912003880");
    let bad_number = server
        .post(practice, "/fhir/ServiceRequest", bad_number)
        .await;
    assert_eq!(bad_number.status, 422);
    assert_eq!(
        expressions(&bad_number.body),
        ["ServiceRequest.contained[0].identifier[0].value"]
    );
    let not_json = server
        .call_raw(
            practice,
            "POST",
            "/fhir/ServiceRequest",
            b"{".to_vec(),
            "application/fhir+json",
        )
        .await;
    assert_eq!(not_json.status, 400);
    assert_eq!(expressions(&not_json.body), ["ServiceRequest"]);
    // An element given twice (its status here) is refused naming it, never read
    // as the last of them.
    let twice = super::malformed::with_key_twice(
        &service_request("R-302"),
        "status",
        &json!("active"),
        &json!("draft"),
    );
    let twice = server
        .call_raw(
            practice,
            "POST",
            "/fhir/ServiceRequest",
            twice,
            "application/fhir+json",
        )
        .await;
    assert_eq!(twice.status, 400, "{:#}", twice.body);
    assert_eq!(
        expressions(&twice.body),
        ["ServiceRequest.status"],
        "{:#}",
        twice.body
    );
    let xml = server
        .call_raw(
            practice,
            "POST",
            "/fhir/ServiceRequest",
            b"<ServiceRequest/>".to_vec(),
            "application/fhir+xml",
        )
        .await;
    assert_eq!(xml.status, 415);
    assert_eq!(xml.body["resourceType"], "OperationOutcome");
    // A NUL character (PostgreSQL's text cannot hold one) is refused before anything is
    // recorded, wherever it is: here in the identifier the referral would be followed by.
    let mut nul = service_request("R-301");
    nul["identifier"][0]["value"] = json!("R-\u{0}301");
    let nul = server.post(practice, "/fhir/ServiceRequest", nul).await;
    assert_eq!(nul.status, 400, "{:#}", nul.body);
    assert_eq!(nul.body["resourceType"], "OperationOutcome");
    // A body past the limit (256 KiB) is too long, said as FHIR says it, on both routes.
    let mut long = service_request("R-304");
    long["note"] = json!([{ "text": "x".repeat(300 * 1024) }]);
    for path in ["/fhir/ServiceRequest", "/fhir"] {
        let too_long = server.post(practice, path, long.clone()).await;
        assert_eq!(too_long.status, 413, "{path}: {:#}", too_long.body);
        assert_eq!(too_long.body["resourceType"], "OperationOutcome");
        assert_eq!(too_long.body["issue"][0]["code"], "too-long", "{path}");
        assert!(
            too_long.body["issue"][0]["diagnostics"]
                .as_str()
                .is_some_and(|d| d.contains("262144")),
            "{path}: {:#}",
            too_long.body
        );
    }
    // Nothing was recorded by any of them.
    let events: i64 = testkit::query_value(
        &server.db.admin_client().await,
        "SELECT count(*) FROM events WHERE actor_id = $1",
        &[&practice.staff_id],
    )
    .await;
    assert_eq!(events, 0);

    // Who may: no token, someone who is not a practice system, another practice's referral.
    let anonymous = server
        .call(
            None,
            "POST",
            "/fhir/ServiceRequest",
            Some(&service_request("R-301")),
            &[],
        )
        .await;
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.header("www-authenticate").is_some());
    assert_eq!(anonymous.body["issue"][0]["code"], "login");
    let worker = server
        .post(
            &people.worker,
            "/fhir/ServiceRequest",
            service_request("R-302"),
        )
        .await;
    assert_eq!(worker.status, 403);
    assert_eq!(worker.body["issue"][0]["code"], "forbidden");
    let id = refer(&server, practice, "R-303").await;
    let foreign = practice_system(
        &server,
        people.foreign_admin.organisation_id,
        "Leeds practice system",
    )
    .await;
    let colleague =
        practice_system(&server, practice.organisation_id, "Shepton practice system").await;
    for (who, path) in [
        (&foreign, format!("/fhir/Task/{id}")),
        (&foreign, format!("/fhir/ServiceRequest/{id}")),
        (&colleague, format!("/fhir/Task/{id}")),
        (practice, format!("/fhir/Task/{}", Uuid::new_v4())),
        (practice, "/fhir/Task/not-one-of-ours".to_owned()),
    ] {
        let reply = server.get(who, &path).await;
        assert_eq!(reply.status, 404, "{path}: {:#}", reply.body);
        assert_eq!(reply.body["issue"][0]["code"], "not-found");
    }
    // Another organisation's practice sending the same identifier makes its own referral.
    let theirs = refer(&server, &foreign, "R-303").await;
    assert_ne!(theirs, id);

    // The CapabilityStatement is public, and the API document points to it.
    let metadata = server.get_public("/fhir/metadata").await;
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.body["resourceType"], "CapabilityStatement");
    assert_eq!(metadata.body["fhirVersion"], "4.0.1");
    let spec = api::http::openapi_json();
    assert!(
        spec["info"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("/fhir/metadata"))
    );
    server.stop().await;
}

/// The ServiceRequest's id and the record it names (`subject`).
fn referred(reply: &super::Reply) -> (Uuid, Uuid) {
    let id = |v: &Value| v.as_str().and_then(|id| Uuid::try_parse(id).ok());
    (
        id(&reply.body["id"]).expect("an id"),
        id(&reply.body["subject"]["identifier"]["value"]).expect("a subject"),
    )
}

/// A practice's system is answered alike whether the service knew the person or not, as a
/// referrer is over the API: every answer (the ServiceRequest and its Task) is shaped as a new
/// person's and names the referral's own id, never a known person's record; a referral the
/// known person's record would refuse (their referral waiting) is kept as someone new's, under
/// its own id, rather than refused; and a retry of one that went to a known person's record
/// goes there again even before its row is written, when the number no longer finds them.
#[tokio::test]
async fn a_practice_is_not_told_whether_the_person_is_known() {
    const NHS: &str = "9990000123";
    let server = TestServer::start().await;
    let people = server.people.clone();
    let practice = &people.practice;
    let post = |identifier: &str| {
        server.post(
            practice,
            "/fhir/ServiceRequest",
            service_request_for(identifier, NHS),
        )
    };
    // An answer with its own id and identifier taken out.
    let shape = |body: &Value, identifier: &str| {
        let id = body["id"].as_str().expect("an id").to_owned();
        body.to_string()
            .replace(&id, "<id>")
            .replace(identifier, "<identifier>")
    };
    let task = async |id: Uuid| {
        server
            .read(practice, &format!("/fhir/Task/{id}"))
            .await
            .body
    };

    // Someone new, declined: a referral of them is taken again.
    let first = post("K-1").await;
    assert_eq!(first.status, 201, "{:#}", first.body);
    let (record, _) = referred(&first);
    let first_task = task(record).await;
    super::known_person::decline(&server, record, record).await;

    // Referred again: it goes on their record, answered as someone new's.
    let known = post("K-2").await;
    assert_eq!(known.status, 201, "{:#}", known.body);
    let (known_id, subject) = referred(&known);
    assert_eq!(subject, known_id, "named by its own id");
    assert_eq!(shape(&known.body, "K-2"), shape(&first.body, "K-1"));
    assert_eq!(
        shape(&task(known_id).await, "K-2"),
        shape(&first_task, "K-1")
    );
    let on_record = [
        "ClientRegistered",
        "ReferralReceived",
        "ReferralDeclined",
        "ReferralReceived",
    ];
    assert_eq!(server.journey_types(record).await, on_record);

    // Referred again while that referral waits, which the known record would refuse: taken as
    // someone new's, on a record of its own, answered alike.
    let kept = post("K-3").await;
    assert_eq!(kept.status, 201, "{:#}", kept.body);
    let (kept_id, subject) = referred(&kept);
    assert_eq!(subject, kept_id);
    assert_eq!(shape(&kept.body, "K-3"), shape(&first.body, "K-1"));
    assert_eq!(
        shape(&task(kept_id).await, "K-3"),
        shape(&first_task, "K-1")
    );
    assert_eq!(
        server.journey_types(record).await,
        on_record,
        "nothing on it"
    );
    assert_eq!(
        server.journey_types(kept_id).await,
        ["ClientRegistered", "ReferralReceived"]
    );
    let again = post("K-3").await;
    assert_eq!(again.status, 200, "{:#}", again.body);
    assert_eq!(again.body, kept.body);

    // K-2 sent again before its row was written (its first try failed after the append):
    // the number is on two records now and finds neither, but the tag its append wrote on the
    // known record does: the same answer, nothing new, no record at its id.
    let admin = server.db.admin_client().await;
    admin
        .batch_execute(&format!(
            "ALTER TABLE fhir_service_requests DISABLE TRIGGER USER; \
             DELETE FROM fhir_service_requests WHERE resource_id = '{known_id}'; \
             ALTER TABLE fhir_service_requests ENABLE TRIGGER USER;"
        ))
        .await
        .expect("the row deleted");
    let retried = post("K-2").await;
    assert_eq!(retried.status, 200, "{:#}", retried.body);
    assert_eq!(retried.body, known.body);
    assert_eq!(server.journey_types(record).await, on_record);
    let no_record = server
        .get(&people.auditor, &format!("/api/v1/clients/{known_id}"))
        .await;
    assert_eq!(no_record.status, 404, "{:#}", no_record.body);

    // Two records hold the number, and neither is matched: the next is someone new too.
    let next = post("K-4").await;
    assert_eq!(next.status, 201, "{:#}", next.body);
    let (next_id, subject) = referred(&next);
    assert_eq!(subject, next_id);
    assert_eq!(
        server.journey_types(next_id).await,
        ["ClientRegistered", "ReferralReceived"]
    );
    server.stop().await;
}

/// A Patient whose NHS number the organisation holds for a client is that client: the referral
/// is added to their record (once per identifier), never found in another organisation, and not
/// found once they are erased.
#[tokio::test]
async fn a_known_person_is_found_by_nhs_number_in_the_organisation_only() {
    const NHS: &str = "9990000034";
    let server = TestServer::start().await;
    let people = server.people.clone();
    let practice = &people.practice;
    let post = |identifier: &str| {
        server.post(
            practice,
            "/fhir/ServiceRequest",
            service_request_for(identifier, NHS),
        )
    };

    let first = post("M-1").await;
    assert_eq!(first.status, 201, "{:#}", first.body);
    let (first_id, record) = referred(&first);
    assert_eq!(record, first_id, "someone new: a record of their own");

    // Declined; then referred again: the same record takes the new referral.
    super::known_person::decline(&server, record, first_id).await;
    let second = post("M-3").await;
    assert_eq!(second.status, 201, "{:#}", second.body);
    let (second_id, second_subject) = referred(&second);
    assert_ne!(second_id, first_id);
    assert_eq!(
        second_subject, second_id,
        "named by its own id, known or not: the practice is not told who is known"
    );
    assert_eq!(
        server.journey_types(record).await,
        [
            "ClientRegistered",
            "ReferralReceived",
            "ReferralDeclined",
            "ReferralReceived"
        ]
    );
    let no_record = server
        .get(&people.auditor, &format!("/api/v1/clients/{second_id}"))
        .await;
    assert_eq!(no_record.status, 404, "no record was made for the referral");
    // Each referral's Task is its own.
    assert_eq!(
        task_status(&server, practice, first_id).await,
        ("rejected".to_owned(), "declined".to_owned())
    );
    assert_eq!(
        task_status(&server, practice, second_id).await,
        ("received".to_owned(), "received".to_owned())
    );
    // The same ServiceRequest again: the same answer, nothing new.
    let again = post("M-3").await;
    assert_eq!(again.status, 200, "{:#}", again.body);
    assert_eq!(again.body, second.body);
    assert_eq!(server.journey_types(record).await.len(), 4);
    // A referral the practice reads back names no one.
    let text = second.body.to_string();
    assert!(!text.contains(NHS) && !text.contains("SMITH"), "{text}");

    // Another organisation's practice with the same NHS number finds nothing of this one's.
    let admin = server.db.admin_client().await;
    let foreign = practice_system(
        &server,
        people.foreign_admin.organisation_id,
        "Leeds practice system",
    )
    .await;
    let theirs = server
        .post(
            &foreign,
            "/fhir/ServiceRequest",
            service_request_for("M-3", NHS),
        )
        .await;
    assert_eq!(theirs.status, 201, "{:#}", theirs.body);
    let (theirs_id, theirs_record) = referred(&theirs);
    assert_eq!(theirs_record, theirs_id, "a record of their own");
    assert_ne!(theirs_record, record);
    assert_eq!(server.journey_types(record).await.len(), 4);
    let foreign_record = server
        .get(&people.auditor, &format!("/api/v1/clients/{theirs_record}"))
        .await;
    assert_eq!(foreign_record.status, 404, "theirs is not ours to see");
    // Nor does the tag of one organisation's number find the other's record.
    let number = domain::NhsNumber::parse(NHS).expect("valid");
    let store = server.store.clone();
    let tag = |organisation| {
        let store = store.clone();
        let number = number.clone();
        async move {
            app::matching::nhs_number_tag(&store, organisation, &number)
                .await
                .expect("a tag")
                .expect("a sealing store")
        }
    };
    let ours = tag(practice.organisation_id).await;
    let others = tag(people.foreign_admin.organisation_id).await;
    assert_ne!(ours, others);
    assert_eq!(store.streams_tagged(&ours).await.expect("ours"), [record]);
    assert_eq!(
        store.streams_tagged(&others).await.expect("theirs"),
        [theirs_record]
    );
    // Nothing of the number is stored in clear.
    let clear: i64 = testkit::query_value(
        &admin,
        "SELECT count(*) FROM events WHERE payload::text LIKE '%' || $1 || '%'",
        &[&NHS],
    )
    .await;
    assert_eq!(clear, 0);

    // Erased, the person is found by nothing: the next referral is someone new.
    server
        .ok(
            &people.lead,
            &client_path(record, "referral-declines"),
            json!({ "referral_id": second_id, "reason": "client_declined", "note": null }),
        )
        .await;
    server
        .ok(
            &people.admin,
            &client_path(record, "erasure"),
            json!({ "reason": "erasure request ref 7" }),
        )
        .await;
    assert!(store.streams_tagged(&ours).await.expect("ours").is_empty());
    let after = post("M-4").await;
    assert_eq!(after.status, 201, "{:#}", after.body);
    let (after_id, after_record) = referred(&after);
    assert_eq!(after_record, after_id, "someone new");
    assert_eq!(
        store.streams_tagged(&ours).await.expect("ours"),
        [after_record]
    );
    server.stop().await;
}

/// The id a practice's referral will be given is derived from the practice's identifier (and
/// so can be worked out ahead): nobody may refer under it first, as a new record's id or as a
/// referral's, in this organisation or another, to take it before the practice's referral
/// arrives. Refused naming the field; the practice's referral then makes its record there.
#[tokio::test]
async fn nobody_takes_the_id_a_practices_referral_will_be_given() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let derived =
        app::fhir::resource_id(people.practice.organisation_id, IDENTIFIER_SYSTEM, "R-700");
    for who in [&people.foreign_lead, &people.lead, &people.referrer] {
        let as_record = server
            .post(
                who,
                &client_path(derived, "referrals"),
                super::journey::intake(Uuid::new_v4(), "gp"),
            )
            .await;
        assert_eq!(as_record.status, 422, "{:#}", as_record.body);
        assert_eq!(as_record.body["errors"][0]["field"], "client_id");
        let as_referral = server
            .post(
                who,
                &client_path(Uuid::new_v4(), "referrals"),
                super::journey::intake(derived, "gp"),
            )
            .await;
        assert_eq!(as_referral.status, 422, "{:#}", as_referral.body);
        assert_eq!(
            as_referral.body["errors"][0]["field"],
            "referral.referral_id"
        );
    }
    let admin = server.db.admin_client().await;
    let written: i64 = testkit::query_value(
        &admin,
        "SELECT count(*) FROM events WHERE stream_type = 'client'",
        &[],
    )
    .await;
    assert_eq!(written, 0, "nothing written by the refusals");

    assert_eq!(refer(&server, &people.practice, "R-700").await, derived);
    let record = server
        .read(&people.auditor, &format!("/api/v1/clients/{derived}"))
        .await;
    assert_eq!(record.body["personal"]["family_name"], "SMITH");
    server.stop().await;
}

/// A practice's system bound to its practice (`casebook staff bind-practice`) refers for that
/// practice only, over FHIR (its requester's ODS identifier) and over the API (the referrer
/// organisation): naming another practice is refused and writes nothing, since GP messages go
/// to the practice a practice system's referral names. An unbound one names any.
#[tokio::test]
async fn a_bound_practice_system_refers_for_its_own_practice_only() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let practice = &people.practice;
    let from = |ods: &str, identifier: &str| {
        let mut request = service_request(identifier);
        request["requester"]["identifier"] =
            json!({ "system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": ods });
        request
    };
    // Unbound: any practice.
    let unbound = server
        .post(practice, "/fhir/ServiceRequest", from("B82002", "R-800"))
        .await;
    assert_eq!(unbound.status, 201, "{:#}", unbound.body);

    let admin = server.db.admin_client().await;
    app::access::bind_practice(&admin, practice.staff_id, "A81001")
        .await
        .expect("bound");
    let refused = server
        .post(practice, "/fhir/ServiceRequest", from("B82002", "R-801"))
        .await;
    assert_eq!(refused.status, 422, "{:#}", refused.body);
    assert_eq!(refused.body["resourceType"], "OperationOutcome");
    assert!(
        refused
            .body
            .to_string()
            .contains("own practice only (ODS A81001)"),
        "{:#}",
        refused.body
    );
    let mut body = super::journey::intake(Uuid::new_v4(), "gp");
    body["referral"]["referrer"]["organisation"] = json!("ODS B82002");
    let over_the_api = server
        .post(
            practice,
            &client_path(Uuid::new_v4(), "referrals"),
            body.clone(),
        )
        .await;
    over_the_api.refused_at(422, "referral.referrer.organisation");
    let written: i64 = testkit::query_value(
        &admin,
        "SELECT count(*) FROM events WHERE actor_id = $1",
        &[&practice.staff_id],
    )
    .await;
    assert_eq!(written, 2, "only the unbound referral's two events");

    // Its own practice, or none named: taken.
    let own = server
        .post(practice, "/fhir/ServiceRequest", from("A81001", "R-802"))
        .await;
    assert_eq!(own.status, 201, "{:#}", own.body);
    body["referral"]["referrer"]["organisation"] = json!("ODS A81001");
    server
        .ok(practice, &client_path(Uuid::new_v4(), "referrals"), body)
        .await;
    // Only a practice's system can be bound.
    assert!(
        app::access::bind_practice(&admin, people.referrer.staff_id, "A81001")
            .await
            .is_err()
    );
    server.stop().await;
}
