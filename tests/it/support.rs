//! Helpers shared by the system tests.

use chrono::{DateTime, TimeZone, Utc};
use domain::CaseCommand;
use eventstore::{AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent};
use serde_json::{Value, json};
use testkit::TestDb;
use uuid::Uuid;

pub const ORG: Uuid = Uuid::from_u128(0x0a);
pub const ACTOR: Uuid = Uuid::from_u128(0xac);

/// A projector runner's settings for tests: batches of `batch_size`, polling every 20 ms.
pub fn quick_runner(batch_size: i64) -> projector::RunnerSettings {
    projector::RunnerSettings {
        batch_size,
        poll_interval: std::time::Duration::from_millis(20),
        ..projector::RunnerSettings::default()
    }
}

/// A test database and an event store over it, as the service's own role.
pub async fn store_with_db(pool_size: usize) -> (TestDb, EventStore) {
    testkit::init_tracing();
    let db = TestDb::new().await;
    let store = protected(EventStore::new(db.app_pool(pool_size), app::upcasters()));
    register_organisation(&db.admin_client().await, ORG).await;
    (db, store)
}

/// Registers `organisation_id` in the administrators' table (the service's role may not), so
/// that staff can be added to it ([`hire_named`]).
pub async fn register_organisation(owner: &tokio_postgres::Client, organisation_id: Uuid) {
    owner
        .execute(
            "INSERT INTO organisations (organisation_id, name) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
            &[
                &organisation_id,
                &format!("Test organisation {organisation_id}"),
            ],
        )
        .await
        .expect("an organisation");
}

/// Adds to `organisation_id` (which must exist: [`store_with_db`] registers [`ORG`]) the staff
/// `commands` name, as its administrator would have: each link worker an assignment or transfer
/// names, active, in the team it names (made when missing), and each lone worker's buddy (a
/// link worker of a team of the organisation's own). The
/// application checks whom a command names for every caller, the tests' own included.
pub async fn hire_named(store: &EventStore, organisation_id: Uuid, commands: &[CaseCommand]) {
    let client = store.pool().get().await.expect("a connection");
    for command in commands {
        let (staff, team, role) = match command {
            CaseCommand::AssignLinkWorker(assign) => {
                (assign.link_worker_id, Some(assign.team_id), "link_worker")
            }
            CaseCommand::TransferCase(transfer) => (
                transfer.to_link_worker_id,
                Some(transfer.team_id),
                "link_worker",
            ),
            // A buddy is a link worker (`policy::may_be_buddy`), in a team of the organisation's.
            CaseCommand::RecordLoneWorkingPlan(plan) => (
                plan.buddy_staff_id,
                Some(domain::TeamId(Uuid::from_u128(
                    organisation_id.as_u128() ^ 0xb0dd,
                ))),
                "link_worker",
            ),
            _ => continue,
        };
        if let Some(team) = team {
            client
                .execute(
                    "INSERT INTO teams (team_id, organisation_id, name) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                    &[&team.0, &organisation_id, &format!("Team {}", team.0)],
                )
                .await
                .expect("a team");
        }
        client
            .execute(
                "INSERT INTO staff (staff_id, organisation_id, team_id, name, role) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    &staff.0,
                    &organisation_id,
                    &team.map(|t| t.0),
                    &format!("Staff {}", staff.0),
                    &role,
                ],
            )
            .await
            .expect("a member of staff");
    }
}

/// Brings `projection` up to the end of `store`'s log once, with a runner of its own.
pub async fn catch_up(store: &EventStore, projection: impl projector::Projection) {
    projector::Runner::new(
        store.clone(),
        std::sync::Arc::new(projection),
        Uuid::new_v4(),
        projector::RunnerSettings::default(),
    )
    .catch_up()
    .await
    .expect("catching up");
}

/// The outcome figures under rule version `version`.
pub fn outcomes_under(version: i32) -> projector::OutcomesProjection {
    projector::OutcomesProjection::new(projector::rules::Rules::load(version).expect("the rules"))
}

/// The text `field` of each item of the JSON array `list` (named in a failure) that has one.
#[track_caller]
pub fn texts<'a>(value: &'a Value, list: &str, field: &str) -> Vec<&'a str> {
    value[list]
        .as_array()
        .expect(list)
        .iter()
        .filter_map(|item| item[field].as_str())
        .collect()
}

/// A store as [`store_with_db`] makes it, its owner's connection, and the demo's organisation
/// and staff in it.
pub async fn demo_store() -> (
    TestDb,
    EventStore,
    tokio_postgres::Client,
    devtools::demo::DemoAccess,
) {
    let (db, store) = store_with_db(8).await;
    let admin = db.admin_client().await;
    let access = devtools::demo::ensure_demo_access(&admin)
        .await
        .expect("demo access");
    (db, store, admin, access)
}

/// Checks every stream's hash chain in `db` holds, over `events` events in `streams` streams.
pub async fn assert_chains_hold(db: &TestDb, events: u64, streams: u64) {
    let admin = db.admin_client().await;
    assert_eq!(
        eventstore::verify(&admin).await.expect("verify"),
        eventstore::VerifyReport::Ok { events, streams }
    );
}

/// The figures under rules v3, for all time, of one organisation (`None`: of every one).
pub fn under_v3(organisation_id: Option<Uuid>) -> app::reports::ReportFilter {
    app::reports::ReportFilter {
        organisation_id,
        rules_version: 3,
        ..Default::default()
    }
}

/// The master key of the test stores.
pub fn test_master_key() -> eventstore::MasterKey {
    eventstore::MasterKey::from_bytes([0x5e; 32])
}

/// A store that seals client events' personal fields, as the service's does.
pub fn protected(store: EventStore) -> EventStore {
    store.with_protection(app::privacy::protection(test_master_key()))
}

pub fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 10, 0, 0)
        .single()
        .expect("a valid date")
}

pub fn metadata() -> Metadata {
    Metadata {
        actor_id: ACTOR,
        actor_role: "link_worker".to_owned(),
        organisation_id: ORG,
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: at(2),
    }
}

pub fn event(event_type: &str, payload: Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        payload,
        personal_paths: Vec::new(),
    }
}

pub fn request(stream_id: Uuid, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        stream_id,
        stream_type: "client".to_owned(),
        expected,
        events,
        metadata: metadata(),
        idempotency_key: None,
        fingerprint: None,
        lookups: None,
        claims: Vec::new(),
    }
}

pub fn contact(n: i64) -> NewEvent {
    event(
        "ContactRecorded",
        json!({ "n": n, "mode": "phone", "minutes": 20 }),
    )
}

/// Appends `events` to `stream_id` at `expected`, which must succeed.
pub async fn append(
    store: &EventStore,
    stream_id: Uuid,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> eventstore::AppendResult {
    store
        .append(request(stream_id, expected, events))
        .await
        .expect("append")
}

/// Builds the shadow caseload to the head of the log, without switching it in.
pub async fn caseload_shadow_built(store: &EventStore) {
    let built = casebook::rebuild::rebuild(
        store,
        casebook::rebuild::RebuildTarget::Caseload,
        &casebook::rebuild::RebuildOptions {
            switch: false,
            ..casebook::rebuild::RebuildOptions::default()
        },
    )
    .await
    .expect("the shadow is built");
    assert!(!built.switched);
}

/// Asserts that an append was refused as a conflict: it expected `expected`, and the stream
/// stood at `actual`.
pub fn assert_conflict(err: &eventstore::StoreError, expected: ExpectedVersion, actual: i64) {
    assert!(
        matches!(err, eventstore::StoreError::Conflict { expected: e, actual: a, .. }
            if *e == expected && *a == actual),
        "{err:?}"
    );
}

/// How many events `stream_id` holds.
pub async fn stream_len(store: &EventStore, stream_id: Uuid) -> usize {
    store
        .read_stream(stream_id, 1, None)
        .await
        .expect("read")
        .len()
}

/// Appends one contact to a new stream and returns the event's id.
pub async fn append_new(store: &EventStore, n: i64) -> Uuid {
    store
        .append(request(
            Uuid::new_v4(),
            ExpectedVersion::NoStream,
            vec![contact(n)],
        ))
        .await
        .expect("append to a new stream")
        .events[0]
        .event_id
}

/// Takes event ids from `subscription` until there are `count`, failing after 30 s.
pub async fn collect(subscription: &mut eventstore::Subscription, count: usize) -> Vec<Uuid> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let batch = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            subscription.next_batch(),
        )
        .await
        .unwrap_or_else(|_| panic!("only {} of {count} events arrived: {seen:?}", seen.len()))
        .expect("next batch");
        seen.extend(batch.into_iter().map(|e| e.event_id));
    }
    seen
}

/// Runs `command`, which must succeed (`what` it is names it in the failure); its standard
/// output.
pub fn run_ok(command: &mut std::process::Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("run {what}: {err}"));
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The outcome read model's tables: the projection's own list, so none is left out.
pub const OUTCOME_TABLES: &[&str] = projector::FIGURE_TABLES;

/// Every row of each of `tables` as a JSON array, in a fixed order.
pub async fn table_rows(client: &tokio_postgres::Client, tables: &[&str]) -> Vec<Value> {
    let mut rows = Vec::new();
    for table in tables {
        rows.push(
            client
                .query_one(
                    &format!(
                        "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]') FROM {table} t"
                    ),
                    &[],
                )
                .await
                .expect("rows")
                .get(0),
        );
    }
    rows
}

/// A member of staff of [`ORG`] as the application layer sees them (no token).
pub fn principal(
    staff_id: domain::StaffId,
    role: app::access::Role,
    team_id: Option<domain::TeamId>,
) -> app::access::Principal {
    app::access::Principal {
        staff_id,
        organisation_id: ORG,
        team_id,
        role,
        token_id: Uuid::nil(),
    }
}

/// The auditor of [`ORG`] in these tests.
pub fn auditor() -> app::access::Principal {
    principal(
        domain::StaffId(Uuid::from_u128(0xA0D1)),
        app::access::Role::Auditor,
        None,
    )
}

/// A new client's intake (as [`new_client_intake`], in Frome), the referral accepted and the
/// case assigned to `worker` of `team`.
pub fn opened_case(
    client: domain::ClientId,
    referral_id: domain::ReferralId,
    source: domain::ReferralSource,
    reasons: Vec<domain::NeedDomain>,
    (worker, team): (domain::StaffId, domain::TeamId),
) -> Vec<domain::CaseCommand> {
    use domain::*;
    vec![
        new_client_intake(client, referral_id, "Frome", source, reasons),
        CaseCommand::AcceptReferral(ReferralAccepted { referral_id }),
        CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
            link_worker_id: worker,
            team_id: team,
        }),
    ]
}

/// Runs each of `commands` on `client` (as [`metadata`] says), which must succeed, the staff
/// they name hired first ([`hire_named`]).
pub async fn execute_all(
    cases: &app::CaseService,
    client: domain::ClientId,
    commands: Vec<domain::CaseCommand>,
) {
    hire_named(cases.store(), ORG, &commands).await;
    for command in commands {
        cases
            .execute(client, &command, metadata(), app::CommandOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    }
}

/// A contact of `minutes` by `mode` at `contacted_at`, with no note.
pub fn record_contact(
    contact_id: Uuid,
    mode: domain::ContactMode,
    minutes: u32,
    contacted_at: DateTime<Utc>,
) -> domain::CaseCommand {
    domain::CaseCommand::RecordContact(domain::ContactRecorded {
        contact_id: domain::ContactId(contact_id),
        mode,
        minutes,
        contacted_at,
        note: None,
    })
}

/// A self-completed assessment (version 1 of `instrument`) with `answers`, taken on
/// `administered_on`.
pub fn assessment(
    assessment_id: Uuid,
    instrument: domain::Instrument,
    timepoint: domain::Timepoint,
    answers: Vec<i32>,
    administered_on: chrono::NaiveDate,
) -> domain::CaseCommand {
    domain::CaseCommand::RecordAssessment(domain::testing::self_completed(
        domain::AssessmentId(assessment_id),
        instrument,
        timepoint,
        answers,
        administered_on,
    ))
}

/// A self-completed WEMWBS (version 1) with `answers`, taken on `administered_on`.
pub fn wemwbs(
    timepoint: domain::Timepoint,
    answers: Vec<i32>,
    administered_on: chrono::NaiveDate,
) -> domain::CaseCommand {
    assessment(
        Uuid::new_v4(),
        domain::Instrument::Wemwbs,
        timepoint,
        answers,
        administered_on,
    )
}

/// WEMWBS answers (14 items, 1 to 5) summing to `total`.
pub fn wemwbs_answers(total: i32) -> Vec<i32> {
    let mut answers = vec![1; 14];
    let mut left = total - 14;
    for a in &mut answers {
        let add = left.min(4);
        *a += add;
        left -= add;
    }
    answers
}

/// A valid NHS number (ten digits, the last its modulus 11 check digit) made from `id`: each
/// client a test registers can have their own (two records of one number are allowed, as yet).
pub fn nhs_number_for(id: Uuid) -> String {
    // The first eight digits are the id's last eight (distinct ids in a test differ there);
    // the ninth is the first that makes a check digit (one in eleven makes none).
    let stem = id.as_u128() % 100_000_000;
    (0..10)
        .find_map(|ninth| {
            let base = format!("{:09}", stem * 10 + ninth);
            let sum: u32 = base
                .chars()
                .enumerate()
                .map(|(i, c)| c.to_digit(10).unwrap_or(0) * (10 - i as u32))
                .sum();
            let check = (11 - sum % 11) % 11;
            (check != 10).then(|| format!("{base}{check}"))
        })
        .expect("one of two ninth digits makes a check digit")
}

/// Intake of a new client (Ada Example, with an NHS number of their own, [`nhs_number_for`]
/// the client) with one referral.
pub fn new_client_intake(
    client: domain::ClientId,
    referral_id: domain::ReferralId,
    area: &str,
    source: domain::ReferralSource,
    reasons: Vec<domain::NeedDomain>,
) -> domain::CaseCommand {
    use domain::*;
    CaseCommand::Intake {
        client: Some(Box::new(ClientRegistered {
            client_id: client,
            personal: PersonalDetails {
                given_name: "Ada".to_owned(),
                family_name: "Example".to_owned(),
                date_of_birth: chrono::NaiveDate::from_ymd_opt(1950, 5, 17),
                nhs_number: Some(NhsNumber::parse("9434765919").expect("a valid NHS number")),
                phone: None,
                email: None,
                address: None,
                postcode: Some("BA11 1AA".to_owned()),
            },
            area: area.to_owned(),
        })),
        referral: testing::unnamed_referral(
            referral_id,
            source,
            reasons,
            chrono::NaiveDate::from_ymd_opt(2026, 3, 1).expect("a valid date"),
        ),
    }
}

/// A minimal Open Referral UK service that Casebook's profile accepts.
pub fn oruk_service(id: Uuid, name: &str, needs: &[&str], area: &str) -> Value {
    let attributes: Vec<Value> = needs
        .iter()
        .map(|need| {
            json!({
                "id": Uuid::new_v4(),
                "taxonomy_term": {
                    "id": Uuid::new_v4(),
                    "code": need,
                    "name": need,
                    "taxonomy": domain::directory::NEED_TAXONOMY
                }
            })
        })
        .collect();
    json!({
        "id": id,
        "name": name,
        "description": format!("{name}, for testing."),
        "url": "https://directory.example.org/test",
        "status": "active",
        "organization": { "id": Uuid::from_u128(0x0b), "name": "Test Services Trust" },
        "service_areas": [{ "id": Uuid::new_v4(), "name": area }],
        "attributes": attributes
    })
}

/// Lists services in the directory (through the import, as the operator would) and checks
/// none was refused or skipped.
pub async fn list_services(
    store: &EventStore,
    records: Vec<Value>,
) -> app::directory::ImportReport {
    list_services_for(store, records, Uuid::nil()).await
}

/// Lists services in the directory for `organisation` (their owner; the nil id is the
/// operator), and checks none was refused or skipped.
pub async fn list_services_for(
    store: &EventStore,
    records: Vec<Value>,
    organisation: Uuid,
) -> app::directory::ImportReport {
    let metadata = eventstore::Metadata {
        organisation_id: organisation,
        ..app::operator_metadata(chrono::Utc::now())
    };
    let report = app::directory::DirectoryService::new(store.clone())
        .import(records, false, &metadata, |_| {})
        .await
        .expect("import");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    report
}

/// The first `n` active services of the sample directory, listed by the operator; their ids.
pub async fn list_sample_services(store: &EventStore, n: usize) -> Vec<Uuid> {
    list_sample_services_for(store, n, Uuid::nil()).await
}

/// `n` active services of the sample directory (Open Referral UK records) after the first `skip`.
pub fn sample_records(skip: usize, n: usize) -> Vec<Value> {
    let page: Value = serde_json::from_str(devtools::demo::SAMPLE_DIRECTORY).expect("the sample");
    page["contents"]
        .as_array()
        .expect("contents")
        .iter()
        .filter(|s| s["status"] == "active")
        .skip(skip)
        .take(n)
        .cloned()
        .collect()
}

/// Lists `n` active services of the sample directory after the first `skip` for `organisation`;
/// their ids.
pub async fn list_more_sample_services_for(
    store: &EventStore,
    skip: usize,
    n: usize,
    organisation: Uuid,
) -> Vec<Uuid> {
    let records = sample_records(skip, n);
    let ids = records
        .iter()
        .map(|r| serde_json::from_value(r["id"].clone()).expect("an id"))
        .collect();
    list_services_for(store, records, organisation).await;
    ids
}

/// The first `n` active services of the sample directory, listed for `organisation`; their ids.
pub async fn list_sample_services_for(
    store: &EventStore,
    n: usize,
    organisation: Uuid,
) -> Vec<Uuid> {
    list_more_sample_services_for(store, 0, n, organisation).await
}

/// One HTTP/1.1 request as a receiver the tests start reads it: the path, the headers (names
/// in lower case) and the body (up to its `content-length`).
pub struct ReceivedRequest {
    pub path: String,
    pub headers: std::collections::HashMap<String, String>,
    pub body: Vec<u8>,
}

/// Answers every connection `listener` accepts with `answer` (given `state`), each on a task of
/// its own, until the task this returns is aborted.
pub fn serve<S, F>(
    listener: tokio::net::TcpListener,
    state: S,
    answer: fn(tokio::net::TcpStream, S) -> F,
) -> tokio::task::JoinHandle<()>
where
    S: Clone + Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(answer(socket, state.clone()));
        }
    })
}

/// Reads one request from `socket`; none when the caller hung up first.
pub async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<ReceivedRequest> {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head, mut body) = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            break (head, buffer[end + 4..].to_vec());
        }
    };
    let path = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_owned();
    let headers: std::collections::HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(ReceivedRequest {
        path,
        headers,
        body,
    })
}
