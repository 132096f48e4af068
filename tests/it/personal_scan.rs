//! Nothing personal in the clear, anywhere: a distinctive string entered through every personal
//! and free-text field of every client command over HTTP (and through the one query parameter
//! a read stores) is nowhere in the clear, not in any table, a `pg_dump` of the database, the
//! cluster's WAL or the service's own log; and once the person is erased, nowhere the API
//! shows either.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::journey::{accept, assign, client_path, days_ago, whole_journey};
use crate::http::{Reply, TestServer};
use crate::privacy::{Captured, every_table};

/// Where `mark` is readable in `text` (by name), or nothing.
fn find(mark: &str, what: &str, text: &str) -> Option<String> {
    text.contains(mark).then(|| {
        let at = text.find(mark).unwrap_or(0);
        let from = text.floor_char_boundary(at.saturating_sub(120));
        let to = text.ceil_char_boundary((at + 120).min(text.len()));
        format!("{what}: ...{}...", &text[from..to])
    })
}

fn id_of(reply: &Reply, n: usize) -> Value {
    reply.body["events"][n]["event_id"].clone()
}

/// The files under `dir` (the WAL segments) that hold `mark`, and how many files were read.
fn files_holding(mark: &str, dir: &std::path::Path) -> (Vec<String>, usize) {
    let (mut holding, mut read) = (Vec::new(), 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            let (more, n) = files_holding(mark, &path);
            holding.extend(more);
            read += n;
        } else if let Ok(bytes) = std::fs::read(&path) {
            read += 1;
            if bytes.windows(mark.len()).any(|w| w == mark.as_bytes()) {
                holding.push(format!("WAL file {}", path.display()));
            }
        }
    }
    (holding, read)
}

#[tokio::test]
async fn a_distinctive_string_in_every_personal_field_is_nowhere_in_the_clear() {
    // The service's log at its most verbose, the database driver's statements and parameters
    // included.
    let captured = Captured::install();
    let server = TestServer::start().await;
    let people = server.people.clone();
    let (lead, worker) = (&people.lead, &people.worker);
    let mark = format!("ZQXJ-{}", Uuid::new_v4().simple());
    let text = |field: &str| format!("{mark} {field}");

    // Registration and referral, entered late with a reason: every personal detail that is
    // text, the referrer's name and the note.
    let client = Uuid::new_v4();
    let referral = Uuid::new_v4();
    let registered = server
        .ok(
            lead,
            &client_path(client, "referrals"),
            json!({
                "client": {
                    "personal": {
                        "given_name": text("given"), "family_name": text("family"),
                        "date_of_birth": "1941-02-03", "nhs_number": "943 476 5919",
                        "phone": text("phone"), "email": text("email"),
                        "address": text("address"), "postcode": text("postcode")
                    },
                    "area": "Frome"
                },
                "referral": {
                    "referral_id": referral, "source": "gp",
                    "referrer": { "staff_id": null, "name": text("referrer"), "organisation": "Frome Medical Practice" },
                    "reasons": ["loneliness_isolation"], "urgency": "routine",
                    "received_on": days_ago(200), "note": text("referral note")
                },
                "late_entry_reason": text("late entry")
            }),
        )
        .await;
    let events = registered.body["events"].as_array().expect("events");
    assert_eq!(events.len(), 3, "{:#}", registered.body);
    let (registration, received) = (id_of(&registered, 1), id_of(&registered, 2));
    accept(&server, lead, client, referral).await;
    assign(&server, client, worker).await;
    crate::http::journey::consent(&server, worker, client, "share_with_gp").await;
    let appointment = Uuid::new_v4();
    server
        .ok(
            worker,
            &client_path(client, "appointments"),
            json!({ "appointment_id": appointment, "scheduled_for": format!("{}T10:00:00Z", days_ago(3)), "mode": "phone" }),
        )
        .await;
    let visit = Uuid::new_v4();
    server
        .ok(
            worker,
            &client_path(client, "appointments"),
            json!({ "appointment_id": visit, "scheduled_for": format!("{}T10:00:00Z", days_ago(-1)), "mode": "home_visit" }),
        )
        .await;
    let goal = Uuid::new_v4();
    let concern = Uuid::new_v4();
    let mut ids = std::collections::BTreeMap::new();
    let steps: Vec<(&str, &str, Value)> = vec![
        (
            "cancellation",
            "appointment-cancellations",
            json!({ "appointment_id": appointment, "cancelled_by": "client", "note": text("cancel") }),
        ),
        (
            "contact",
            "contacts",
            json!({ "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 30,
                    "contacted_at": format!("{}T11:00:00Z", days_ago(2)), "note": text("contact") }),
        ),
        (
            "what matters",
            "what-matters",
            json!({ "text": text("what matters") }),
        ),
        (
            "need",
            "needs",
            json!({ "need": "loneliness_isolation", "note": text("need") }),
        ),
        (
            "goal",
            "goals",
            json!({ "goal_id": goal, "description": text("goal"), "need": "loneliness_isolation" }),
        ),
        (
            "review",
            "goal-reviews",
            json!({ "goal_id": goal, "progress": "some_progress", "note": text("review") }),
        ),
        (
            "gap",
            "service-gaps",
            json!({ "gap_id": Uuid::new_v4(), "need": "physical_activity", "area": "Frome",
                    "reason": "transport", "note": text("gap") }),
        ),
        (
            "gp message",
            "gp-messages",
            json!({ "message_id": Uuid::new_v4(), "practice": "Frome Medical Practice",
                    "text": text("gp message") }),
        ),
        (
            "note",
            "notes",
            json!({ "note_id": Uuid::new_v4(), "text": text("note"), "important": true }),
        ),
        (
            "concern",
            "safeguarding-concerns",
            json!({ "concern_id": concern, "category": "self_neglect", "details": text("concern"),
                    "told": text("told"), "told_at": format!("{}T11:00:00Z", days_ago(1)),
                    "outcome": text("outcome") }),
        ),
        (
            "concern update",
            "safeguarding-concern-updates",
            json!({ "concern_id": concern, "told": text("also told"),
                    "told_at": format!("{}T12:00:00Z", days_ago(1)), "outcome": text("later outcome") }),
        ),
        (
            "lone-working plan",
            "lone-working-plans",
            json!({ "appointment_id": visit, "address_note": text("address note"),
                    "check_in_by": format!("{}T12:00:00Z", days_ago(-1)),
                    "buddy_staff_id": lead.staff_id, "known_risks": text("known risks") }),
        ),
        (
            "demographics",
            "demographics",
            json!({ "demographics": { "preferred_language": text("language"),
                    "communication_needs": text("communication needs"), "sex": "female",
                    "ethnic_category": "N", "gp_practice": "L85016" } }),
        ),
    ];
    for (name, what, body) in steps {
        let reply = server.ok(worker, &client_path(client, what), body).await;
        ids.insert(name, id_of(&reply, 0));
    }
    // The concern closed by the lead, with its reason.
    server
        .ok(
            lead,
            &client_path(client, "safeguarding-concern-closures"),
            json!({ "concern_id": concern, "reason": text("concern closed") }),
        )
        .await;

    // Corrections: of the personal details, of a note, of the referrer (with a field that is not
    // personal beside it), of a goal and of a GP message; each with its reason.
    let corrections = [
        (
            registration.clone(),
            json!({ "personal": {
                "given_name": text("corrected given"), "family_name": text("corrected family"),
                "date_of_birth": "1941-02-03", "nhs_number": "9434765919",
                "phone": text("corrected phone"), "email": null,
                "address": text("corrected address"), "postcode": null } }),
        ),
        (
            ids["contact"].clone(),
            json!({ "note": text("corrected contact") }),
        ),
        (
            received.clone(),
            json!({ "referrer": { "staff_id": null, "name": text("corrected referrer"), "organisation": "Frome Medical Practice" },
                    "urgency": "soon" }),
        ),
        (
            ids["goal"].clone(),
            json!({ "description": text("corrected goal") }),
        ),
        (
            ids["gp message"].clone(),
            json!({ "text": text("corrected gp message") }),
        ),
        (
            ids["note"].clone(),
            json!({ "text": text("corrected note") }),
        ),
    ];
    for (corrects, fields) in corrections {
        server
            .ok(
                worker,
                &client_path(client, "corrections"),
                json!({ "corrects": corrects, "corrected_fields": fields, "reason": text("why corrected") }),
            )
            .await;
    }
    // The probe from the issue: fields the registration does not have are refused, not stored.
    let probe = server
        .post(
            worker,
            &client_path(client, "corrections"),
            json!({ "corrects": registration, "reason": text("probe"),
                    "corrected_fields": { "given_name": text("probe given"), "phone": text("probe phone") } }),
        )
        .await;
    probe.refused_at(422, "corrected_fields");
    assert!(
        probe.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("given_name")),
        "{:#}",
        probe.body
    );
    server
        .ok(
            worker,
            &client_path(client, "closure"),
            json!({ "reason": "moved_away", "note": text("closure") }),
        )
        .await;
    server
        .ok(
            lead,
            &client_path(client, "reopening"),
            json!({ "note": text("reopening") }),
        )
        .await;

    // A referral declined and one redirected, each with its note.
    let mut others = Vec::new();
    for (what, body) in [
        (
            "referral-declines",
            json!({ "reason": "needs_clinical_service", "note": text("decline") }),
        ),
        (
            "referral-redirections",
            json!({ "destination": { "kind": "coded", "code": "talking_therapies" },
                    "note": text("redirect") }),
        ),
    ] {
        let (other, other_referral) = crate::http::journey::referred(&server).await;
        let mut body = body;
        body["referral_id"] = json!(other_referral);
        server.ok(lead, &client_path(other, what), body).await;
        others.push(other);
    }

    // A GP practice's system refers someone over FHIR: their name, address, phone, and the
    // referral's notes and requester.
    let mut request = crate::http::fhir::service_request("PS-1");
    request["contained"][0]["name"] = json!([{ "use": "official", "family": text("fhir family"), "given": [text("fhir given")] }]);
    request["contained"][0]["address"][0]["line"] = json!([text("fhir address")]);
    request["contained"][0]["telecom"] =
        json!([{ "system": "phone", "value": text("fhir phone") }]);
    request["note"] = json!([{ "text": text("fhir note") }]);
    request["requester"] = json!({ "display": text("fhir requester") });
    let fhir = server
        .post(&people.practice, "/fhir/ServiceRequest", request)
        .await;
    assert_eq!(fhir.status, 201, "{:#}", fhir.body);
    let referred_by_practice = fhir.body["id"]
        .as_str()
        .and_then(|id| Uuid::try_parse(id).ok())
        .expect("an id");
    let practice_journey = whole_journey(&server, referred_by_practice, "").await;
    for field in ["fhir family", "fhir address", "fhir note", "fhir requester"] {
        assert!(
            practice_journey.body.to_string().contains(&text(field)),
            "{field} in the journey of the practice's referral"
        );
    }
    others.push(referred_by_practice);

    // Reads: the purpose is a code; words are refused before anything is stored.
    let worded = server
        .get(
            &people.auditor,
            &format!(
                "{}?purpose={}",
                client_path(client, "journey"),
                text("purpose").replace(' ', "%20")
            ),
        )
        .await;
    worded.refused_at(400, "query.purpose");
    let journey = whole_journey(&server, client, "&purpose=audit").await;
    // Those who may read it see it all: the string was entered, and is there to find.
    let shown = journey.body.to_string();
    for field in [
        "given",
        "referrer",
        "late entry",
        "cancel",
        "corrected given",
        "corrected referrer",
        "corrected gp message",
        "why corrected",
        "reopening",
        "concern closed",
    ] {
        assert!(shown.contains(&text(field)), "{field} in the journey");
    }
    server.catch_up().await;

    // Every row of every table.
    let mut found: Vec<String> = Vec::new();
    for (table, rows) in every_table(&server).await {
        found.extend(find(&mark, &format!("table {table}"), &rows));
    }
    // A dump of the database, and every WAL segment of the cluster after a checkpoint.
    let admin = server.db.admin_client().await;
    admin.batch_execute("CHECKPOINT").await.expect("checkpoint");
    if let Some(cluster) = testkit::cluster() {
        let dump = crate::support::run_ok(
            cluster.tool("pg_dump").args(["--dbname", server.db.name()]),
            "pg_dump",
        );
        assert!(
            dump.contains("COPY public.events"),
            "the dump holds the log"
        );
        found.extend(find(&mark, "pg_dump", &dump));
        let (holding, read) = files_holding(&mark, &cluster.dir().join("data").join("pg_wal"));
        assert!(read > 0, "the WAL is there to read");
        found.extend(holding);
        // The server's own log (errors with their statements).
        let server_log = std::fs::read(cluster.dir().join("postgres.log")).unwrap_or_default();
        found.extend(find(
            &mark,
            "the PostgreSQL log",
            &String::from_utf8_lossy(&server_log),
        ));
    }
    // The service's log.
    let logs = String::from_utf8_lossy(&captured.0.lock().expect("the logs")).into_owned();
    assert!(
        logs.contains("executing statement"),
        "the driver's log is captured"
    );
    found.extend(find(&mark, "the service's log", &logs));
    assert!(
        found.is_empty(),
        "readable in the clear:\n{}",
        found.join("\n")
    );

    // Erased, the person's record, journey and read audit show none of it, through the API.
    for erased in std::iter::once(client).chain(others) {
        server
            .ok(
                &people.admin,
                &client_path(erased, "erasure"),
                json!({ "reason": "erasure request ref 19" }),
            )
            .await;
        for view in [
            "",
            "journey?limit=500&purpose=subject_access_request",
            "reads",
        ] {
            let read = server
                .get(&people.auditor, &client_path(erased, view))
                .await;
            assert_eq!(read.status, 200, "{view}: {:#}", read.body);
            let body = read.body.to_string();
            assert!(!body.contains(&mark), "{view} after erasure: {body}");
        }
    }
    let journey = whole_journey(&server, client, "").await;
    let entries = journey.body["entries"].as_array().expect("entries");
    let corrected = |event_id: &Value| {
        entries
            .iter()
            .find(|e| &e["event_id"] == event_id)
            .map(|e| e["corrected_payload"].clone())
            .unwrap_or_default()
    };
    assert_eq!(
        corrected(&registration)["personal"]["given_name"],
        domain::ERASED
    );
    assert_eq!(corrected(&received)["referrer"]["name"], domain::ERASED);
    assert_eq!(
        corrected(&received)["referrer"]["organisation"],
        "Frome Medical Practice"
    );
    assert_eq!(corrected(&received)["urgency"], "soon");
    assert_eq!(corrected(&ids["gp message"])["text"], domain::ERASED);
    server.stop().await;
}
