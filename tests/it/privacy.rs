//! Personal data: sealed at rest, erased by destroying the key, kept out of read models, logs and
//! small report cells; retention finds exactly the records past it; consent gates sharing.

use chrono::{DateTime, Duration, Utc};
use domain::{CaseCommand, ClientId};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::TestServer;
use crate::http::journey::{
    assign, client_path, days_ago, open_case, refer_and_accept, whole_journey,
};

/// Every personal value the journey below records, in the form a reader would see it.
const SECRETS: &[&str] = &[
    "Philippa",
    "Quennell-Ashdown",
    "Quennell-Ashby",
    "9434765919",
    "07700 900461",
    "pq@example.org",
    "7 Lark Rise",
    "BA11 9ZZ",
    "1939-04-23",
    "Okonkwo-Baptiste",
    "worried since the flood",
    "sounded brighter on the phone",
    "singing in the choir again",
    "misses her sister in Leeds",
    "join the Tuesday choir",
    "went twice already",
    "the bus from Nunney stopped",
    "joined the choir",
    "surname misspelt at intake",
    "she moved in with her sister",
];

fn intake_body(referral: Uuid) -> Value {
    json!({
        "client": {
            "personal": {
                "given_name": "Philippa", "family_name": "Quennell-Ashdown",
                "date_of_birth": "1939-04-23", "nhs_number": "943 476 5919",
                "phone": "07700 900461", "email": "pq@example.org",
                "address": "7 Lark Rise, Frome", "postcode": "BA11 9ZZ"
            },
            "area": "Frome"
        },
        "referral": {
            "referral_id": referral, "source": "gp",
            "referrer": { "staff_id": null, "name": "Dr Okonkwo-Baptiste", "organisation": "Frome Medical Practice" },
            "reasons": ["loneliness_isolation"], "urgency": "routine",
            "received_on": days_ago(20), "note": "GP worried since the flood"
        }
    })
}

/// A whole journey with a personal value in every personal field; returns the client's id.
async fn journey_with_personal_data(server: &TestServer) -> Uuid {
    let people = &server.people;
    let client = Uuid::new_v4();
    let referral = Uuid::new_v4();
    refer_and_accept(
        server,
        (&people.referrer, &people.lead),
        client,
        referral,
        intake_body(referral),
    )
    .await;
    // A referrer's answer is a receipt: the registration's id is the record's.
    let registration = json!(server.event_id(&client, "ClientRegistered").await);
    assign(server, client, &people.worker).await;
    let worker = &people.worker;
    let goal = Uuid::new_v4();
    let steps: Vec<(&str, Value)> = vec![
        (
            "consents",
            json!({ "scope": "share_with_gp", "services": [] }),
        ),
        (
            "contacts",
            json!({ "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 30,
                    "contacted_at": (Utc::now() - Duration::days(10)).to_rfc3339(),
                    "note": "sounded brighter on the phone" }),
        ),
        (
            "what-matters",
            json!({ "text": "singing in the choir again" }),
        ),
        (
            "needs",
            json!({ "need": "loneliness_isolation", "note": "misses her sister in Leeds" }),
        ),
        (
            "goals",
            json!({ "goal_id": goal, "description": "join the Tuesday choir", "need": "loneliness_isolation" }),
        ),
        (
            "goal-reviews",
            json!({ "goal_id": goal, "progress": "some_progress", "note": "went twice already" }),
        ),
        (
            "assessments",
            crate::http::journey::wemwbs("baseline", 3, 9),
        ),
        (
            "service-gaps",
            json!({ "gap_id": Uuid::new_v4(), "need": "physical_activity", "area": "Frome",
                    "reason": "transport", "note": "the bus from Nunney stopped" }),
        ),
        (
            "gp-messages",
            json!({ "message_id": Uuid::new_v4(), "practice": "Frome Medical Practice",
                    "text": "Philippa joined the choir" }),
        ),
        (
            "corrections",
            json!({ "corrects": registration, "reason": "surname misspelt at intake",
                    "corrected_fields": { "personal": {
                        "given_name": "Philippa", "family_name": "Quennell-Ashby",
                        "date_of_birth": "1939-04-23", "nhs_number": "9434765919",
                        "phone": "07700 900461", "email": "pq@example.org",
                        "address": "7 Lark Rise, Frome", "postcode": "BA11 9ZZ" } } }),
        ),
        (
            "closure",
            json!({ "reason": "moved_away", "note": "she moved in with her sister" }),
        ),
    ];
    for (what, body) in steps {
        server.ok(worker, &client_path(client, what), body).await;
    }
    client
}

/// Every row of every table, as text, with the table's name.
pub(crate) async fn every_table(server: &TestServer) -> Vec<(String, String)> {
    let admin = server.db.admin_client().await;
    let tables: Vec<String> = testkit::query_column(
        &admin,
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
        &[],
    )
    .await;
    assert!(tables.len() > 10, "{tables:?}");
    let mut out = Vec::new();
    for table in tables {
        let text: Option<String> = testkit::query_value(
            &admin,
            &format!("SELECT string_agg(t::text, E'\\n') FROM \"{table}\" t"),
            &[],
        )
        .await;
        out.push((table, text.unwrap_or_default()));
    }
    out
}

fn assert_no_secret(what: &str, text: &str) {
    let lower = text.to_lowercase();
    for secret in SECRETS {
        assert!(
            !lower.contains(&secret.to_lowercase()),
            "{secret:?} is readable in {what}"
        );
    }
}

async fn outcome_figures(server: &TestServer) -> (Value, Value) {
    let analyst = &server.people.analyst;
    let outcomes = server.read(analyst, "/api/v1/reports/outcomes").await;
    let gaps = server.read(analyst, "/api/v1/reports/service-gaps").await;
    (outcomes.body, gaps.body)
}

#[tokio::test]
async fn personal_data_is_sealed_at_rest_and_erasure_leaves_no_readable_trace() {
    let server = TestServer::start().await;
    let people = &server.people;
    // Enough people for the report cells to show, and one whose data is erased.
    for _ in 0..5 {
        open_case(&server).await;
    }
    let client = journey_with_personal_data(&server).await;
    server.catch_up().await;

    // At rest: no table shows any of it, and the registration is sealed in the log.
    for (table, text) in every_table(&server).await {
        assert_no_secret(&format!("table {table}"), &text);
    }
    let admin = server.db.admin_client().await;
    let sealed: Value = testkit::query_value(
        &admin,
        "SELECT payload FROM events WHERE stream_id = $1 AND event_type = 'ClientRegistered'",
        &[&client],
    )
    .await;
    assert!(
        sealed["personal"][eventstore::SEALED].is_string(),
        "{sealed:#}"
    );
    assert_eq!(
        sealed["area"], "Frome",
        "what is not personal stays readable"
    );

    // Those who may read the record see it all, corrections applied.
    let record = server.read(&people.worker, &client_path(client, "")).await;
    assert_eq!(record.body["personal"]["family_name"], "Quennell-Ashby");
    assert_eq!(record.body["erased"], false);
    let journey = whole_journey(&server, client, "").await;
    let text = journey.body.to_string();
    for secret in [
        "Okonkwo-Baptiste",
        "singing in the choir again",
        "went twice already",
    ] {
        assert!(text.contains(secret), "{secret} in the journey");
    }
    let before = outcome_figures(&server).await;

    // Only an administrator erases, and says why.
    let why = json!({ "reason": "erasure request ref 2026-114" });
    let refused = server
        .post(&people.lead, &client_path(client, "erasure"), why.clone())
        .await;
    assert_eq!(refused.status, 403, "{:#}", refused.body);
    let blank = server
        .post(
            &people.admin,
            &client_path(client, "erasure"),
            json!({ "reason": " " }),
        )
        .await;
    assert_eq!(blank.status, 422, "{:#}", blank.body);
    server
        .ok(&people.admin, &client_path(client, "erasure"), why.clone())
        .await;
    let key: Option<Vec<u8>> = testkit::query_value(
        &admin,
        "SELECT wrapped_key FROM subject_keys WHERE subject_id = $1",
        &[&client],
    )
    .await;
    assert!(key.is_none(), "the data key is destroyed");

    // Every read now shows the fields erased; the journey says who erased it and why.
    let record = server.read(&people.auditor, &client_path(client, "")).await;
    assert_eq!(record.body["erased"], true);
    assert!(record.body["personal"].is_null());
    let journey = whole_journey(&server, client, "").await;
    assert_no_secret("the journey", &journey.body.to_string());
    let entries = journey.body["entries"].as_array().expect("entries");
    let last = entries.last().expect("an entry");
    assert_eq!(last["event_type"], "ClientErased");
    assert_eq!(last["payload"]["reason"], "erasure request ref 2026-114");
    assert_eq!(last["actor_role"], "administrator");
    let registered = &entries[0];
    assert_eq!(registered["payload"]["personal"]["given_name"], "[erased]");
    assert_eq!(registered["payload"]["area"], "Frome");

    // Nothing more can be recorded for them; erasing again is refused too.
    let more = server
        .post(
            &people.worker,
            &client_path(client, "what-matters"),
            json!({ "text": "anything" }),
        )
        .await;
    assert_eq!(more.status, 422, "{:#}", more.body);
    assert_eq!(more.body["rule"], "erased");
    let again = server
        .post(&people.admin, &client_path(client, "erasure"), why)
        .await;
    assert_eq!(again.status, 422, "{:#}", again.body);

    // Rebuilt from the log, the read models hold nothing of theirs, and the figures are the same.
    server.catch_up().await;
    // The caseload into its shadow and back; the outcomes, under the live rules, replayed from
    // the first event into a snapshot of the log as it is now.
    let restart = casebook::rebuild::RebuildOptions {
        restart: true,
        ..casebook::rebuild::RebuildOptions::default()
    };
    casebook::rebuild::rebuild(
        &server.store,
        casebook::rebuild::RebuildTarget::Caseload,
        &restart,
    )
    .await
    .expect("rebuild");
    server.catch_up().await;
    let now: chrono::DateTime<chrono::Utc> =
        testkit::query_value(&admin, "SELECT now()", &[]).await;
    let snapshot = server.start_snapshot(&people.analyst, json!(now)).await;
    let path = format!(
        "/api/v1/reports/outcomes/snapshots/{}/report",
        snapshot["id"].as_str().expect("an id")
    );
    let mut replayed = server.get(&people.analyst, &path).await;
    for _ in 0..600 {
        if replayed.status != 409 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        replayed = server.get(&people.analyst, &path).await;
    }
    assert_eq!(replayed.status, 200, "{:#}", replayed.body);
    for (table, text) in every_table(&server).await {
        assert_no_secret(&format!("table {table} after erasure and rebuild"), &text);
    }
    let caseload_rows: i64 = testkit::query_value(
        &admin,
        "SELECT count(*) FROM caseload WHERE client_id = $1",
        &[&client],
    )
    .await;
    assert_eq!(caseload_rows, 0, "an erased person leaves the caseload");
    let after = outcome_figures(&server).await;
    assert!(
        after.0["as_of"]["position"].as_i64() > before.0["as_of"]["position"].as_i64(),
        "the figures after the erasure are as of a later event"
    );
    // The same figures, as of different events.
    let strip = |mut report: Value| {
        if let Some(object) = report.as_object_mut() {
            object.remove("as_of");
        }
        report
    };
    assert_eq!(
        strip(before.0.clone()),
        strip(after.0),
        "the outcome figures still count the case"
    );
    assert_eq!(
        strip(before.0),
        strip(replayed.body["report"].clone()),
        "and so do they replayed from the log"
    );
    assert_eq!(strip(before.1), strip(after.1), "so do the gap figures");
    assert_eq!(
        eventstore::verify(&admin).await.expect("verify"),
        eventstore::VerifyReport::Ok {
            events: admin
                .query_one("SELECT count(*) FROM events", &[])
                .await
                .expect("count")
                .get::<_, i64>(0) as u64,
            streams: admin
                .query_one("SELECT count(DISTINCT stream_id) FROM events", &[])
                .await
                .expect("count")
                .get::<_, i64>(0) as u64,
        },
        "every hash chain is intact after the key is gone"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_message_to_the_gp_needs_consent_and_a_withdrawal_is_honoured_and_shown() {
    let server = TestServer::start().await;
    let people = &server.people;
    let client = open_case(&server).await;
    let message = || {
        json!({ "message_id": Uuid::new_v4(), "practice": "Frome Medical Practice",
                "text": "first appointment done" })
    };
    let gp = client_path(client, "gp-messages");
    let refused = server.post(&people.worker, &gp, message()).await;
    assert_eq!(refused.status, 422, "{:#}", refused.body);
    assert_eq!(refused.body["rule"], "no_consent_to_share");
    crate::http::journey::consent(&server, &people.worker, client, "share_with_gp").await;
    server.ok(&people.worker, &gp, message()).await;
    server
        .ok(
            &people.worker,
            &client_path(client, "consent-withdrawals"),
            json!({ "scope": "share_with_gp" }),
        )
        .await;
    let refused = server.post(&people.worker, &gp, message()).await;
    assert_eq!(refused.status, 422, "{:#}", refused.body);
    assert_eq!(refused.body["rule"], "no_consent_to_share");
    let journey = server
        .get(&people.auditor, &client_path(client, "journey"))
        .await;
    let types = crate::support::texts(&journey.body, "entries", "event_type");
    let tail = &types[types.len() - 3..];
    assert_eq!(
        tail,
        ["ConsentRecorded", "GpMessageSent", "ConsentWithdrawn"]
    );
    let record = server.get(&people.worker, &client_path(client, "")).await;
    assert_eq!(record.body["consents"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn report_cells_of_fewer_than_five_people_are_suppressed() {
    let server = TestServer::start().await;
    let people = &server.people;
    // Three gaps for one need and area, five for another.
    for (need, n) in [("physical_activity", 3), ("money_benefits_debt", 5)] {
        for _ in 0..n {
            let client = open_case(&server).await;
            server
                .ok(
                    &people.worker,
                    &client_path(client, "service-gaps"),
                    json!({ "gap_id": Uuid::new_v4(), "need": need, "area": "Frome",
                            "reason": "no_service_exists", "note": null }),
                )
                .await;
        }
    }
    server.catch_up().await;
    let report = server
        .read(&people.analyst, "/api/v1/reports/service-gaps")
        .await;
    let gaps = report.body["gaps"].as_array().expect("gaps");
    let cell = |need: &str| {
        gaps.iter()
            .find(|g| g["need"] == need)
            .unwrap_or_else(|| panic!("a {need} cell"))["count"]
            .clone()
    };
    assert_eq!(
        cell("physical_activity"),
        Value::Null,
        "a cell of 3 is suppressed"
    );
    assert_eq!(
        cell("money_benefits_debt"),
        json!(5),
        "a cell of 5 is shown"
    );
    assert_eq!(report.body["suppression"]["below"], 5);
    assert_eq!(report.body["suppression"]["rules_version"], 3);
    assert_eq!(report.body["suppression"]["cells"], 1);

    // In the outcome report, the eight referrals show.
    let outcomes = server
        .read(&people.analyst, "/api/v1/reports/outcomes")
        .await;
    assert_eq!(
        outcomes.body["referrals"]["total"], 8,
        "{:#}",
        outcomes.body
    );
    assert_eq!(outcomes.body["referrals"]["by_source"][0]["count"], 8);

    // Two self-referrals more: 10 in all, 8 from GPs, 2 self-referred. The 2 is suppressed, and
    // so is the 8, or 10 - 8 would give the 2 away.
    for _ in 0..2 {
        crate::http::journey::refer_new(&server, &people.referrer).await;
    }
    let outcomes = server.caught_up_outcomes().await;
    let referrals = &outcomes["referrals"];
    assert_eq!(referrals["total"], 10, "{referrals:#}");
    let sources = referrals["by_source"].as_array().expect("sources");
    assert_eq!(sources.len(), 2, "{referrals:#}");
    for share in sources {
        assert_eq!(share["count"], Value::Null, "{referrals:#}");
        assert_eq!(share["suppressed"], true);
    }
    assert_eq!(outcomes["suppression"]["rules_version"], 3);
    // Referrals received in one day only: none (zero discloses nobody).
    let today = server
        .get(
            &people.analyst,
            &format!(
                "/api/v1/reports/outcomes?from={}&to={}",
                days_ago(0),
                days_ago(0)
            ),
        )
        .await;
    assert_eq!(today.body["referrals"]["total"], 0, "{:#}", today.body);
    server.stop().await;
}

/// The client's referral waiting for a decision.
async fn pending_referral(cases: &app::CaseService, client: Uuid) -> domain::ReferralId {
    cases
        .load(ClientId(client))
        .await
        .expect("load")
        .state
        .referrals
        .iter()
        .find(|(_, s)| **s == domain::ReferralStatus::Pending)
        .map(|(id, _)| *id)
        .expect("a pending referral")
}

/// Clients concluded at given moments, through the command path with past times.
async fn client_concluded(cases: &app::CaseService, steps: &[(&str, DateTime<Utc>)]) -> Uuid {
    let client = Uuid::new_v4();
    let worker = Uuid::new_v4();
    let team = Uuid::new_v4();
    for (step, at) in steps {
        let referral = domain::ReferralId(Uuid::new_v4());
        let commands: Vec<CaseCommand> = match *step {
            "referred" | "re-referred" => {
                let mut client_details: Value = intake_body(referral.0)["client"].clone();
                // One record per NHS number: each person their own.
                client_details["personal"]["nhs_number"] =
                    json!(crate::support::nhs_number_for(client));
                let mut referral_body: Value = intake_body(referral.0)["referral"].clone();
                referral_body["received_on"] = json!(at.date_naive());
                vec![CaseCommand::Intake {
                    client: (*step == "referred").then(|| {
                        Box::new(domain::ClientRegistered {
                            client_id: ClientId(client),
                            personal: serde_json::from_value(client_details["personal"].clone())
                                .expect("personal"),
                            area: "Frome".to_owned(),
                        })
                    }),
                    referral: serde_json::from_value(referral_body).expect("referral"),
                }]
            }
            "opened" => {
                let pending = pending_referral(cases, client).await;
                vec![
                    CaseCommand::AcceptReferral(domain::ReferralAccepted {
                        referral_id: pending,
                    }),
                    CaseCommand::AssignLinkWorker(domain::LinkWorkerAssigned {
                        link_worker_id: domain::StaffId(worker),
                        team_id: domain::TeamId(team),
                    }),
                ]
            }
            "declined" => {
                let pending = pending_referral(cases, client).await;
                vec![CaseCommand::DeclineReferral(domain::ReferralDeclined {
                    referral_id: pending,
                    reason: domain::DeclineReason::UnableToContact,
                    note: None,
                })]
            }
            "closed" => vec![CaseCommand::CloseCase(domain::testing::goals_met())],
            "reopened" => vec![CaseCommand::ReopenCase(domain::CaseReopened { note: None })],
            "erased" => vec![CaseCommand::EraseClient(domain::ClientErased {
                reason: "erasure request".to_owned(),
            })],
            other => panic!("no step {other}"),
        };
        crate::support::hire_named(cases.store(), crate::support::ORG, &commands).await;
        for command in commands {
            let metadata = eventstore::Metadata {
                occurred_at: *at,
                ..crate::support::metadata()
            };
            cases
                .execute(ClientId(client), &command, metadata, Default::default())
                .await
                .unwrap_or_else(|e| panic!("{step}: {e}"));
        }
    }
    client
}

#[tokio::test]
async fn retention_lists_exactly_the_records_concluded_more_than_eight_years_ago() {
    let (db, store) = crate::support::store_with_db(4).await;
    let cases = app::CaseService::new(store.clone());
    let now = Utc::now();
    let years = |y: f64| now - Duration::days((y * 365.25) as i64);
    // Each history (steps and how many years ago), and whether retention lists it: with the
    // status it is listed in.
    type Steps = &'static [(&'static str, f64)];
    let histories: [(Option<&str>, Steps); 7] = [
        (
            Some("closed"),
            &[("referred", 9.5), ("opened", 9.4), ("closed", 9.0)],
        ),
        (Some("idle"), &[("referred", 9.2), ("declined", 9.1)]),
        (None, &[("referred", 7.5), ("opened", 7.4), ("closed", 7.0)]),
        (None, &[("referred", 10.0), ("opened", 10.0)]),
        (
            None,
            &[
                ("referred", 12.0),
                ("opened", 12.0),
                ("closed", 11.0),
                ("reopened", 10.0),
                ("closed", 1.0),
            ],
        ),
        (
            None,
            &[("referred", 11.0), ("declined", 11.0), ("re-referred", 2.0)],
        ),
        (
            None,
            &[
                ("referred", 10.0),
                ("opened", 10.0),
                ("closed", 9.5),
                ("erased", 0.5),
            ],
        ),
    ];
    let mut expected = Vec::new();
    for (listed_as, steps) in histories {
        let steps: Vec<_> = steps.iter().map(|&(step, y)| (step, years(y))).collect();
        let client = client_concluded(&cases, &steps).await;
        if let Some(status) = listed_as {
            expected.push((client, status));
        }
    }
    let rules = projector::rules::PrivacyRules::load(1).expect("rules");
    let cutoff = app::privacy::retention_cutoff(now, rules.retention.years_after_conclusion);
    let expired = app::privacy::past_retention(&store, cutoff)
        .await
        .expect("dry run");
    expected.sort();
    let listed: Vec<(Uuid, &str)> = expired
        .iter()
        .map(|e| (e.client_id, e.status.code()))
        .collect();
    assert_eq!(listed, expected);
    let closed = expired
        .iter()
        .find(|e| e.status == domain::CaseStatus::Closed)
        .expect("listed");
    let closed_nine = closed.client_id;
    assert_eq!(
        closed.concluded_at.timestamp(),
        years(9.0).timestamp(),
        "concluded when the case closed"
    );
    // A dry run erases nothing: the same list again.
    assert_eq!(
        app::privacy::past_retention(&store, cutoff)
            .await
            .expect("again")
            .len(),
        2
    );
    // Applying it erases them, and then nothing is past retention.
    for record in &expired {
        app::privacy::erase_as_system(
            &cases,
            record.client_id,
            record.organisation_id,
            "retention period ended",
            now,
        )
        .await
        .expect("erase");
    }
    assert!(
        app::privacy::past_retention(&store, cutoff)
            .await
            .expect("after")
            .is_empty()
    );
    let record = cases.load(ClientId(closed_nine)).await.expect("load");
    assert!(record.state.erased);
    let admin = db.admin_client().await;
    assert!(matches!(
        eventstore::verify(&admin).await.expect("verify"),
        eventstore::VerifyReport::Ok { .. }
    ));
}

/// Everything written to the logs, for scanning.
#[derive(Clone, Default)]
pub(crate) struct Captured(pub(crate) std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Installs this test process's subscriber at the most verbose level, spans included,
    /// writing everything to the returned buffer.
    pub(crate) fn install() -> Captured {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("this test's process has no subscriber yet");
        captured
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_logs_of_a_whole_journey_hold_ids_never_personal_data_tokens_or_keys() {
    // Everything at the most verbose level, spans and the database driver's own log included.
    let captured = Captured::install();
    let server = TestServer::start().await;
    let people = server.people.clone();
    let people = &people;
    let client = journey_with_personal_data(&server).await;
    server.catch_up().await;
    for reader in [&people.worker, &people.auditor] {
        server.read(reader, &client_path(client, "journey")).await;
    }
    // A refused request that carries personal data.
    let mut bad = intake_body(Uuid::new_v4());
    bad["client"]["personal"]["nhs_number"] = json!("943 476 5918");
    let refused = crate::http::journey::refer(&server, &people.referrer, bad).await;
    assert_eq!(refused.status, 400, "{:#}", refused.body);
    server
        .ok(
            &people.admin,
            &client_path(client, "erasure"),
            json!({ "reason": "erasure request ref 9" }),
        )
        .await;
    server.stop().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().expect("the logs")).into_owned();
    assert!(
        logs.contains(&client.to_string()),
        "the logs name the client by id"
    );
    assert!(logs.contains("served"), "requests are logged");
    assert!(
        logs.contains("executing statement"),
        "the driver's log is captured"
    );
    assert_no_secret("the logs", &logs);
    for (name, person) in people.all() {
        let secret = person.token.rsplit('_').next().expect("a secret");
        assert!(!logs.contains(secret), "{name}'s token is in the logs");
    }
    let master = crate::support::test_master_key().to_base64();
    assert!(!logs.contains(&master), "the master key is in the logs");
}

#[tokio::test]
async fn the_service_role_can_destroy_a_data_key_but_never_replace_one_or_change_the_log() {
    let (db, store) = crate::support::store_with_db(2).await;
    let cases = app::CaseService::new(store.clone());
    let now = Utc::now();
    let client = client_concluded(&cases, &[("referred", now - Duration::days(3))]).await;
    let app = db.app_client().await;
    let admin = db.admin_client().await;
    // The service's own role: no schema changes, no rewriting the log, no swapping keys.
    for (sql, who) in [
        ("ALTER TABLE events ADD COLUMN extra text", "app"),
        ("DROP TABLE events", "app"),
        ("CREATE TABLE sneaky (id int)", "app"),
        ("DELETE FROM events", "app"),
        ("DELETE FROM subject_keys", "app"),
        ("TRUNCATE subject_keys", "app"),
        ("UPDATE subject_keys SET master_key_id = 'other'", "app"),
        (
            "UPDATE subject_keys SET wrapped_key = decode(repeat('00', 72), 'hex'), destroyed_at = NULL",
            "app",
        ),
        // Not even the owner replaces a key or deletes one.
        (
            "UPDATE subject_keys SET wrapped_key = decode(repeat('00', 72), 'hex'), destroyed_at = NULL",
            "owner",
        ),
        ("DELETE FROM subject_keys", "owner"),
    ] {
        let connection = if who == "app" { &app } else { &admin };
        let message = testkit::refusal(connection, sql).await;
        assert!(
            message.contains("permission denied")
                || message.contains("must be owner")
                || message.contains("never replaced")
                || message.contains("append-only"),
            "{who}: {sql}: {message}"
        );
    }
    // What the service does need: destroying the key (as an erasure does).
    app.batch_execute(&format!(
        "UPDATE subject_keys SET wrapped_key = NULL, destroyed_at = now() WHERE subject_id = '{client}'"
    ))
    .await
    .expect("the service destroys a key");
    // And then the person's record reads as erased, and takes nothing personal any more.
    let recorded = store.read_stream(client, 1, None).await.expect("read");
    assert_eq!(recorded[0].payload["personal"]["family_name"], "[erased]");
    let write = cases
        .execute(
            ClientId(client),
            &CaseCommand::DeclineReferral(domain::ReferralDeclined {
                referral_id: domain::ReferralId(
                    recorded[1].payload["referral_id"]
                        .as_str()
                        .and_then(|s| Uuid::parse_str(s).ok())
                        .expect("the referral"),
                ),
                reason: domain::DeclineReason::Other,
                note: Some("a personal note".to_owned()),
            }),
            // Declined when it was received: only the destroyed key stands in the way.
            eventstore::Metadata {
                occurred_at: recorded[1].metadata.occurred_at,
                ..crate::support::metadata()
            },
            Default::default(),
        )
        .await;
    assert!(
        matches!(
            write,
            Err(app::CommandError::Refused(domain::CaseError::Erased))
        ),
        "{write:?}"
    );
}

#[tokio::test]
async fn racing_first_appends_to_a_new_record_leave_one_winner_and_one_data_key() {
    let (db, store) = crate::support::store_with_db(8).await;
    let client = Uuid::new_v4();
    let registration = |n: usize| {
        let registered = crate::support::event(
            "ClientRegistered",
            json!({
                "client_id": client, "area": "Frome",
                "personal": { "given_name": format!("Racer {n}"), "family_name": "Quennell-Ashdown",
                    "date_of_birth": null, "nhs_number": null, "phone": null, "email": null,
                    "address": null, "postcode": null }
            }),
        );
        crate::support::request(
            client,
            eventstore::ExpectedVersion::NoStream,
            vec![registered],
        )
    };
    let results = futures_util::future::join_all((0..8).map(|n| {
        let store = store.clone();
        let request = registration(n);
        async move { store.append(request).await }
    }))
    .await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, eventstore::StoreError::Conflict { .. })),
        "{results:?}"
    );
    let admin = db.admin_client().await;
    let keys: i64 = testkit::query_value(
        &admin,
        "SELECT count(*) FROM subject_keys WHERE subject_id = $1",
        &[&client],
    )
    .await;
    assert_eq!(keys, 1);
    let read = store.read_stream(client, 1, None).await.expect("read");
    assert!(
        read[0].payload["personal"]["given_name"]
            .as_str()
            .is_some_and(|name| name.starts_with("Racer ")),
        "the winner's details open with the one key: {:#}",
        read[0].payload
    );
}
