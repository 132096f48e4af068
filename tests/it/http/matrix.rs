//! Every route of the spec, tried by every role, by another organisation's staff, with no token
//! and with a bad token. A route in the spec with no row here fails the test.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::journey::{intake, open_case, wemwbs};
use super::{Person, TestServer};

/// What a caller should get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Past authorisation: anything but 401, 403 and 404.
    Allowed,
    Forbidden,
    NotFound,
    /// 401: the credential is in the body, and the matrix's is not live.
    Unauthenticated,
}
use Expect::*;

/// Who may do it: the names of the people allowed; `foreign` says what another organisation's
/// staff get when they are not listed.
struct Rule {
    allowed: &'static [&'static str],
    foreign: Expect,
    public: bool,
    /// What everyone gets, whoever they are, when the answer does not depend on the caller.
    everyone: Option<Expect>,
    /// Who gets 404 though their role may (a provider of another service).
    absent: &'static [&'static str],
}

const CASEWORKERS: &[&str] = &["lead", "worker"];
const LEAD: &[&str] = &["lead"];
const READERS: &[&str] = &["lead", "worker", "auditor"];
const ANY_WORKER: &[&str] = &[
    "lead",
    "worker",
    "worker2",
    "other_lead",
    "other_worker",
    "foreign_lead",
    "foreign_worker",
];
const ADMINS: &[&str] = &["admin", "foreign_admin"];
const REPORTERS: &[&str] = &["lead", "other_lead", "analyst", "foreign_lead"];
const EVERYONE: &[&str] = &[
    "referrer",
    "lead",
    "worker",
    "worker2",
    "other_lead",
    "other_worker",
    "auditor",
    "analyst",
    "admin",
    "foreign_lead",
    "foreign_worker",
    "foreign_auditor",
    "foreign_admin",
    "practice",
    "provider",
    "other_provider",
];

fn rules() -> BTreeMap<&'static str, Rule> {
    let case = |allowed| Rule {
        allowed,
        foreign: NotFound,
        public: false,
        everyone: None,
        absent: &[],
    };
    let own = |allowed| Rule {
        allowed,
        foreign: Forbidden,
        public: false,
        everyone: None,
        absent: &[],
    };
    let public = Rule {
        allowed: EVERYONE,
        foreign: Allowed,
        public: true,
        everyone: None,
        absent: &[],
    };
    let mut rules = BTreeMap::new();
    for command in [
        "refer",
        "record_consent",
        "withdraw_consent",
        "accept_referral",
        "decline_referral",
        "redirect_referral",
        "book_appointment",
        "record_attendance",
        "record_did_not_attend",
        "cancel_appointment",
        "record_contact",
        "record_what_matters",
        "identify_need",
        "set_goal",
        "review_goal",
        "record_assessment",
        "make_connection",
        "record_connection_outcome",
        "record_service_gap",
        "close_case",
        "reopen_case",
        "correct_entry",
        "send_gp_message",
        "add_note",
        "pin_note",
        "unpin_note",
        "raise_concern",
        "update_concern",
        "tag_case",
        "untag_case",
        "record_lone_working_plan",
        "check_in_lone_working",
    ] {
        rules.insert(command, case(CASEWORKERS));
    }
    // A safeguarding concern ends as a team lead's decision.
    rules.insert("close_concern", case(LEAD));
    rules.insert("erase_client", case(&["admin"]));
    rules.insert("assign_link_worker", case(LEAD));
    rules.insert("transfer_case", case(LEAD));
    rules.insert("client_record", case(READERS));
    rules.insert("client_journey", case(READERS));
    // A referral is followed by whoever may read the record, and by its referrer (a person, or
    // a practice's system that sent it over the JSON API): the fixture's is the referrer's, so
    // to a practice's system it is absent.
    rules.insert(
        "referral_status",
        Rule {
            absent: &["practice"],
            ..case(&["referrer", "lead", "worker", "auditor"])
        },
    );
    rules.insert("record_reads", case(&["auditor"]));
    rules.insert("me", own(EVERYONE));
    rules.insert("my_caseload", own(ANY_WORKER));
    rules.insert("my_caseload_csv", own(ANY_WORKER));
    for route in [
        "team_caseload",
        "team_caseload_csv",
        "team_workload",
        "team_workload_csv",
    ] {
        rules.insert(route, case(LEAD));
    }
    for report in [
        "outcome_report",
        "outcome_report_csv",
        "gap_report",
        "gap_report_csv",
        "compare_outcomes",
        "compare_outcomes_csv",
        "start_snapshot",
        "start_explanation",
    ] {
        rules.insert(report, own(REPORTERS));
    }
    // A snapshot or explanation belongs to the organisation that asked for it.
    for report in [
        "get_snapshot",
        "snapshot_report",
        "snapshot_report_csv",
        "get_explanation",
        "get_explanation_csv",
    ] {
        rules.insert(report, case(&["lead", "other_lead", "analyst"]));
    }
    rules.insert("list_staff", own(ADMINS));
    rules.insert("add_staff", own(ADMINS));
    rules.insert("add_team", own(ADMINS));
    // Tokens are issued only to their holder: everyone issues their own, and nobody issues
    // one for anyone else (there is no route for it). An administrator enrols, lists, revokes,
    // deactivates and reactivates the organisation's accounts (here a spare account nobody in
    // the matrix uses; a holder's own are in `tokens.rs`).
    rules.insert("issue_own_token", own(EVERYONE));
    for route in [
        "enrol",
        "list_credentials",
        "revoke_all",
        "deactivate",
        "activate",
        "revoke_token",
    ] {
        rules.insert(route, case(&["admin"]));
    }
    // The enrolment code in the body is the credential: a bearer token changes nothing.
    rules.insert(
        "redeem_enrolment",
        Rule {
            allowed: &[],
            foreign: Unauthenticated,
            public: false,
            everyone: Some(Unauthenticated),
            absent: &[],
        },
    );
    // The directory is shared by every organisation for finding and connecting: anyone signed
    // in searches it. A service belongs to the organisation that listed it (the fixture's are
    // the first organisation's): only its administrators withdraw it, its team leads and
    // administrators change its capacity, and another organisation's get 403 (the directory is
    // public, so not 404). Any administrator imports: another organisation's records in the
    // file are skipped (`directory_owner.rs`).
    rules.insert("search", own(EVERYONE));
    rules.insert("entry", own(EVERYONE));
    rules.insert("import", own(ADMINS));
    rules.insert("withdraw", own(&["admin"]));
    rules.insert("change_capacity", own(&["lead", "other_lead", "admin"]));
    for route in ["oruk_root", "oruk_services", "oruk_service"] {
        rules.insert(route, public.clone_rule());
    }
    for route in ["health", "ready", "metrics_text", "openapi_json"] {
        rules.insert(route, public.clone_rule());
    }
    // Tasks: anyone who works cases raises their own (the matrix's is a team task); the task
    // of the fixture is `worker`'s, in `lead`'s team: its assignee or its lead closes it (the
    // second to try gets 422, already closed); another organisation's is absent.
    rules.insert("my_tasks", own(ANY_WORKER));
    rules.insert("raise_task", own(ANY_WORKER));
    rules.insert("task_done", case(CASEWORKERS));
    rules.insert("cancel_task", case(CASEWORKERS));
    rules.insert("team_overdue_tasks", case(LEAD));
    // FHIR referrals in: only a practice's system sends them and follows its own (another
    // organisation's staff are refused by role before any record is looked at).
    rules.insert("fhir_metadata", public.clone_rule());
    rules.insert("fhir_create_service_request", own(&["practice"]));
    rules.insert("fhir_transaction", own(&["practice"]));
    rules.insert("fhir_read_service_request", case(&["practice"]));
    rules.insert("fhir_read_task", case(&["practice"]));
    // Closed-loop connections: provider staff list the connections made to their services;
    // the fixture's connection is to `provider`'s service, so only they answer it, and a
    // provider of another service finds no such connection (404). Everyone else is refused by
    // role, the record's own team too: answering is the service's. An administrator ties only
    // their own organisation's staff (the matrix's spare account is not provider staff: 400;
    // another organisation's administrator does not find it: 404).
    rules.insert("provider_connections", own(&["provider", "other_provider"]));
    for route in [
        "accept_connection",
        "decline_connection",
        "record_connection_start",
    ] {
        rules.insert(
            route,
            Rule {
                absent: &["other_provider"],
                ..case(&["provider"])
            },
        );
    }
    rules.insert("tie_provider_service", case(&["admin"]));
    rules.insert("untie_provider_service", case(&["admin"]));
    // Equity reporting: demographics are recorded by whoever works the case; the breakdown is
    // a report.
    rules.insert("record_demographics", case(CASEWORKERS));
    rules.insert("outcome_breakdown", own(REPORTERS));
    rules.insert("outcome_breakdown_csv", own(REPORTERS));
    // Messages back to GP practices: an organisation's administrators set its practices'
    // endpoints and see its messages; a dead letter (the fixture's, the first organisation's)
    // is replayed by its administrator, and is absent for another organisation's.
    rules.insert("set_gp_endpoint", own(ADMINS));
    rules.insert("list_gp_messages", own(ADMINS));
    rules.insert("replay_gp_message", case(&["admin"]));
    // Appointment reminders: an organisation's administrators see its reminders; a dead letter
    // (the fixture's, the first organisation's) is replayed by its administrator, and is absent
    // for another organisation's.
    rules.insert("list_reminders", own(ADMINS));
    rules.insert("replay_reminder", case(&["admin"]));
    rules
}

/// The fixture's connection to `provider`'s service.
const PROVIDER_CONNECTION: Uuid = Uuid::from_u128(0xc0_ffee);

impl Rule {
    fn clone_rule(&self) -> Rule {
        Rule {
            allowed: self.allowed,
            foreign: self.foreign,
            public: self.public,
            everyone: self.everyone,
            absent: self.absent,
        }
    }

    fn expect(&self, name: &str) -> Expect {
        // Another organisation's staff get the role refusal when their role could never do
        // it here either, and `foreign` when it is only the organisation that differs.
        match name.strip_prefix("foreign_") {
            _ if self.everyone.is_some() => self.everyone.unwrap_or(Allowed),
            _ if self.absent.contains(&name) => NotFound,
            _ if self.allowed.contains(&name) => Allowed,
            Some(domestic) if self.allowed.contains(&domestic) => self.foreign,
            _ => Forbidden,
        }
    }
}

/// A body for each command, fitting the fixture's case (the assignment stays with `worker`).
pub fn body(
    operation: &str,
    people: &super::People,
    referral: Uuid,
    services: &[Uuid],
) -> Option<Value> {
    let now = Utc::now();
    Some(match operation {
        "refer" => {
            let mut known = intake(Uuid::new_v4(), "gp");
            known["client"] = Value::Null;
            known
        }
        "record_consent" => json!({ "scope": "share_with_gp", "services": [] }),
        "withdraw_consent" => json!({ "scope": "evaluation" }),
        "accept_referral" => json!({ "referral_id": referral }),
        "decline_referral" => {
            json!({ "referral_id": referral, "reason": "other", "note": null })
        }
        "redirect_referral" => {
            json!({ "referral_id": referral, "destination": { "kind": "coded", "code": "talking_therapies" }, "note": null })
        }
        "assign_link_worker" => {
            json!({ "link_worker_id": people.worker.staff_id, "team_id": people.worker.team_id })
        }
        // Compared with when events were recorded, on the database's clock: a moment long past
        // whatever clock the test runs on.
        "start_snapshot" => json!({ "known_at": "2020-01-01T00:00:00Z" }),
        "start_explanation" => json!({ "published_at": "2020-01-01T00:00:00Z" }),
        "transfer_case" => json!({
            "to_link_worker_id": people.worker.staff_id, "team_id": people.worker.team_id, "reason": "other"
        }),
        "book_appointment" => json!({
            "appointment_id": Uuid::new_v4(), "scheduled_for": (now + Duration::days(3)).to_rfc3339(), "mode": "phone"
        }),
        "record_attendance" | "record_did_not_attend" => {
            json!({ "appointment_id": Uuid::new_v4() })
        }
        "cancel_appointment" => {
            json!({ "appointment_id": Uuid::new_v4(), "cancelled_by": "client", "note": null })
        }
        "record_contact" => json!({
            "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 10, "contacted_at": now.to_rfc3339(), "note": null
        }),
        "record_what_matters" => json!({ "text": "Seeing my grandchildren." }),
        "identify_need" => json!({ "need": "housing", "note": null }),
        "set_goal" => {
            json!({ "goal_id": Uuid::new_v4(), "description": "Join a walking group", "need": null })
        }
        "review_goal" => {
            json!({ "goal_id": Uuid::new_v4(), "progress": "some_progress", "note": null })
        }
        "record_assessment" => wemwbs("baseline", 3, 1),
        "make_connection" => json!({
            "connection_id": Uuid::new_v4(), "service_id": services[0], "need": "housing", "kind": "signposted"
        }),
        "record_connection_outcome" => {
            json!({ "connection_id": Uuid::new_v4(), "outcome": "engaged", "waiting_weeks": null })
        }
        "record_service_gap" => json!({
            "gap_id": Uuid::new_v4(), "need": "housing", "area": "Frome", "reason": "cost", "note": null
        }),
        "close_case" => json!({ "reason": "other", "note": null }),
        "reopen_case" => json!({ "note": null }),
        "send_gp_message" => json!({
            "message_id": Uuid::new_v4(), "practice": "Frome Medical Practice", "text": "seen twice"
        }),
        "erase_client" => json!({ "reason": "erasure request ref 7" }),
        "correct_entry" => json!({
            "corrects": Uuid::new_v4(), "corrected_fields": { "note": "typo" }, "reason": "typo"
        }),
        "add_staff" => {
            json!({ "name": "New Referrer", "role": "referrer", "team_id": null, "capacity": null })
        }
        "add_team" => json!({ "name": "Glastonbury" }),
        "issue_own_token" => json!({ "valid_days": 1, "label": "matrix" }),
        "enrol" => json!({ "valid_hours": 1 }),
        "redeem_enrolment" => json!({
            "code": "cbe_00000000000000000000000000000000_00", "valid_days": 1
        }),
        "import" => json!({
            "contents": [crate::support::oruk_service(services[1], "Matrix walking group", &["physical_activity"], "Frome")]
        }),
        "change_capacity" => {
            json!({ "availability": "waiting_list", "waiting_weeks": 6, "note": null })
        }
        "withdraw" => json!({ "reason": "closed down" }),
        "add_note" => {
            json!({ "note_id": Uuid::new_v4(), "text": "Prefers calls after 2pm", "important": false })
        }
        "pin_note" | "unpin_note" => json!({ "note_id": Uuid::new_v4() }),
        "tag_case" | "untag_case" => json!({ "tag": "carer" }),
        "record_lone_working_plan" => json!({
            "appointment_id": Uuid::new_v4(), "address_note": "Flat 2, side door",
            "check_in_by": (now + Duration::hours(2)).to_rfc3339(),
            "buddy_staff_id": Uuid::new_v4(), "known_risks": null
        }),
        "check_in_lone_working" => json!({ "appointment_id": Uuid::new_v4() }),
        "raise_concern" => json!({
            "concern_id": Uuid::new_v4(), "category": "self_neglect", "details": "No heating",
            "told": "Safeguarding lead", "told_at": now.to_rfc3339(), "outcome": null
        }),
        "update_concern" => json!({
            "concern_id": Uuid::new_v4(), "told": null, "told_at": null, "outcome": "Visit booked"
        }),
        "close_concern" => json!({ "concern_id": Uuid::new_v4(), "reason": "Resolved" }),
        "raise_task" => json!({
            "task_id": Uuid::new_v4(), "kind": "review_plan", "due_on": (now + Duration::days(3)).date_naive()
        }),
        "task_done" => json!({}),
        "cancel_task" => json!({ "reason": "no_longer_needed" }),
        "fhir_create_service_request" => super::fhir::service_request("matrix-1"),
        "fhir_transaction" => super::fhir::transaction("matrix-2"),
        "accept_connection" => json!({ "connection_id": PROVIDER_CONNECTION }),
        "decline_connection" => {
            json!({ "connection_id": PROVIDER_CONNECTION, "reason": "no_capacity" })
        }
        "record_connection_start" => {
            json!({ "connection_id": PROVIDER_CONNECTION, "started": true })
        }
        "tie_provider_service" | "untie_provider_service" => {
            json!({ "service_id": services[0] })
        }
        "record_demographics" => json!({
            "demographics": { "sex": "female", "ethnic_category": "Z", "gp_practice": "L85016" }
        }),
        "set_gp_endpoint" => {
            json!({ "ods_code": "A81001", "url": "http://127.0.0.1:9/fhir/Communication" })
        }
        _ => return None,
    })
}

#[tokio::test]
async fn every_route_refuses_every_caller_it_should() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let client = open_case(&server).await;
    let journey = server
        .get(
            &people.auditor,
            &format!("/api/v1/clients/{client}/journey"),
        )
        .await;
    let referral = journey.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["event_type"] == "ReferralReceived")
        .map(|e| e["payload"]["referral_id"].clone())
        .expect("the referral");
    let referral: Uuid = serde_json::from_value(referral).expect("a uuid");
    let admin_client = server.db.admin_client().await;
    // An account nobody in the matrix signs in with, for the routes that revoke, deactivate
    // or enrol: trying them must not lock out the people trying the rest.
    // The one whose single token is revoked is another, as the account routes revoke every
    // token of the first.
    let spare_account = |name: &'static str| {
        let admin_client = &admin_client;
        async move {
            app::access::add_staff(
                admin_client,
                &app::access::NewStaff {
                    organisation_id: people.admin.organisation_id,
                    team_id: None,
                    name: name.to_owned(),
                    role: app::access::Role::Referrer,
                    capacity: None,
                },
            )
            .await
            .expect("a spare account")
        }
    };
    let spare = spare_account("Spare Account").await;
    let spare_token = app::access::issue_token(
        &admin_client,
        spare_account("Spare Device").await.staff_id,
        chrono::Duration::days(1),
        "spare",
        app::access::TokenIssuer::Operator,
    )
    .await
    .expect("a token");

    // A report snapshot and an explanation of the lead's organisation.
    let snapshot = server
        .post(
            &people.lead,
            "/api/v1/reports/outcomes/snapshots",
            body("start_snapshot", &people, referral, &server.services).expect("a body"),
        )
        .await;
    assert_eq!(snapshot.status, 202, "{:#}", snapshot.body);
    let snapshot = snapshot.body["id"].as_str().expect("an id").to_owned();
    let explanation = server
        .post(
            &people.lead,
            "/api/v1/reports/outcomes/explanations",
            body("start_explanation", &people, referral, &server.services).expect("a body"),
        )
        .await;
    assert_eq!(explanation.status, 202, "{:#}", explanation.body);
    let explanation = explanation.body["id"].as_str().expect("an id").to_owned();

    // A task of `worker`'s on the fixture's case.
    let task = Uuid::new_v4();
    let raised = server
        .post(
            &people.worker,
            "/api/v1/tasks",
            json!({ "task_id": task, "kind": "call_back", "client_id": client,
                    "due_on": domain::calendar::today(Utc::now()) }),
        )
        .await;
    assert_eq!(raised.status, 201, "{:#}", raised.body);
    // A referral the practice sent over FHIR, to follow.
    let fhir_referral = super::fhir::refer(&server, &people.practice, "matrix-0").await;
    // A referral of the fixture's person to `provider`'s service, with their consent.
    super::provider::referred_to_provider(&server, client, PROVIDER_CONNECTION).await;

    // A dead-lettered message back to the GP, of the first organisation.
    let dead_letter = super::gp_messages::dead_letter(&server, people.admin.organisation_id).await;

    // A dead-lettered appointment reminder, of the first organisation.
    let dead_reminder = Uuid::new_v4();
    admin_client
        .execute(
            "INSERT INTO reminder_outbox (message_id, organisation_id, client_id, appointment_id, \
             booked_event_id, scheduled_for, rules_version, status, attempts, next_attempt_at, \
             last_error) VALUES ($1, $2, $3, $4, $5, now(), 1, 'dead', 12, now(), \
             'the notification service answered 500')",
            &[
                &dead_reminder,
                &people.admin.organisation_id,
                &Uuid::new_v4(),
                &Uuid::new_v4(),
                &Uuid::new_v4(),
            ],
        )
        .await
        .expect("a dead reminder");

    let spec = api::http::openapi_json();
    let rules = rules();
    let mut tried = 0;
    for (template, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("methods") {
            let id = operation["operationId"].as_str().expect("an operation id");
            let rule = rules
                .get(id)
                .unwrap_or_else(|| panic!("{method} {template} ({id}) has no row in the matrix"));
            let path = template
                .replace("{client_id}", &client.to_string())
                .replace("{referral_id}", &referral.to_string())
                .replace(
                    "{team_id}",
                    &people.lead.team_id.expect("a team").to_string(),
                )
                .replace("{staff_id}", &spare.staff_id.to_string())
                .replace("{token_id}", &spare_token.token_id.to_string())
                .replace("{service_id}", &server.services[2].to_string())
                .replace("{id}", &server.services[2].to_string())
                .replace("{snapshot_id}", &snapshot)
                .replace("{explanation_id}", &explanation)
                .replace("{service_request_id}", &fhir_referral.to_string())
                .replace("{message_id}", &dead_letter.to_string())
                .replace("{reminder_id}", &dead_reminder.to_string())
                // A FHIR Task is the referral's; the API's tasks are tasks.
                .replace(
                    "{task_id}",
                    &if template.starts_with("/fhir/") {
                        fhir_referral
                    } else {
                        task
                    }
                    .to_string(),
                );
            // Required query parameters, so that only who is asking decides the answer.
            let path = match id {
                "compare_outcomes" | "compare_outcomes_csv" => format!("{path}?a=1&b=1"),
                "outcome_breakdown" | "outcome_breakdown_csv" => format!("{path}?by=sex"),
                _ => path,
            };
            let method = method.to_ascii_uppercase();
            let body = body(id, &people, referral, &server.services);

            // Without a token, and with a bad one.
            let anonymous = server.call(None, &method, &path, body.as_ref(), &[]).await;
            let bad = Person {
                token: "cbk_00000000000000000000000000000000_00".to_owned(),
                ..people.worker.clone()
            };
            let bad_token = server
                .call(Some(&bad), &method, &path, body.as_ref(), &[])
                .await;
            if rule.public {
                assert!(anonymous.status < 300, "{method} {path} is public");
            } else if rule.everyone == Some(Unauthenticated) {
                assert_eq!(anonymous.status, 401, "{method} {path} without a code");
                assert_eq!(bad_token.status, 401, "{method} {path} with a bad code");
            } else {
                assert_eq!(anonymous.status, 401, "{method} {path} without a token");
                assert_eq!(bad_token.status, 401, "{method} {path} with a bad token");
                assert!(anonymous.header("www-authenticate").is_some());
            }

            for (name, person) in people.all() {
                let reply = server
                    .call(Some(person), &method, &path, body.as_ref(), &[])
                    .await;
                let expected = rule.expect(name);
                let ok = match expected {
                    Allowed => !matches!(reply.status, 401 | 403 | 404) && reply.status < 500,
                    Forbidden => reply.status == 403,
                    NotFound => reply.status == 404,
                    Unauthenticated => reply.status == 401,
                };
                assert!(
                    ok,
                    "{method} {path} as {name}: expected {expected:?}, got {} {:#}",
                    reply.status, reply.body
                );
                tried += 1;
            }
        }
    }
    assert_eq!(
        tried,
        rules.len() * people.all().len(),
        "every row was tried"
    );
    // Nothing the other organisation did touched the record.
    let record = server
        .get(&people.auditor, &format!("/api/v1/clients/{client}"))
        .await;
    let journey = server
        .get(
            &people.auditor,
            &format!("/api/v1/clients/{client}/journey?limit=500"),
        )
        .await;
    for entry in journey.body["entries"].as_array().expect("entries") {
        assert_eq!(entry["organisation_id"], json!(people.lead.organisation_id));
        assert!(
            ["lead", "worker", "referrer", "admin", "provider"]
                .iter()
                .any(|n| {
                    let p = people
                        .all()
                        .into_iter()
                        .find(|(name, _)| name == n)
                        .expect("a person")
                        .1;
                    entry["actor_id"] == json!(p.staff_id)
                }),
            "an event by someone not allowed: {entry:#}"
        );
    }
    assert_eq!(record.status, 200);
    server.stop().await;
}
