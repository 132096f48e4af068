//! Messages back to the GP through the transactional outbox (issue #20, part 2), delivered to a
//! real HTTP receiver started here that is down, answers 500, hangs past the timeout, drops the
//! connection and comes back: every message arrives once (the receiver dedupes on
//! `Idempotency-Key`), in order per person, and a dispatcher killed mid-delivery loses nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::gp_outbox::{DispatchSettings, Dispatcher, GpOutboxAdmin, OutboxMessage};
use app::outbox::OutboxStatus;
use app::{AppError, CaseService, CommandOptions};
use domain::*;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::support::{metadata, new_client_intake, store_with_db};

/// The outbox projection's runner for a test: one holder, caught up as often as asked.
fn outbox_runner(store: &eventstore::EventStore) -> projector::Runner {
    projector::Runner::new(
        store.clone(),
        Arc::new(projector::GpOutboxProjection::new().expect("the message rules")),
        Uuid::new_v4(),
        projector::RunnerSettings::default(),
    )
}

/// What the receiver does with the next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// 500, nothing kept.
    Fail,
    /// Keeps the message, then answers only after the sender's timeout.
    Hang,
    /// Keeps the message, then closes the connection without an answer.
    Drop,
    /// Keeps the message (once per key) and answers 200.
    Ok,
}

#[derive(Default)]
struct Received {
    /// Answers to give, in order; then `Ok`.
    script: VecDeque<Answer>,
    /// Every request, by key.
    requests: Vec<Uuid>,
    /// Each message kept, once per key, in the order first kept, with its body and sequence.
    kept: Vec<(Uuid, String, Value)>,
    /// Signalled when a request arrives.
    arrived: Option<tokio::sync::mpsc::UnboundedSender<Uuid>>,
}

/// A practice's system: a bare HTTP/1.1 server on a port of its own, stopped and started again
/// at will on the same port.
struct Practice {
    port: u16,
    received: Arc<Mutex<Received>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Practice {
    async fn new() -> Practice {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("its address").port();
        drop(listener);
        Practice {
            port,
            received: Arc::default(),
            server: None,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/fhir/Communication", self.port)
    }

    fn received(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().expect("receiver")
    }

    fn script(&self, answers: &[Answer]) {
        self.received().script.extend(answers.iter().copied());
    }

    fn kept_ids(&self) -> Vec<Uuid> {
        self.received().kept.iter().map(|(id, _, _)| *id).collect()
    }

    fn requests(&self) -> Vec<Uuid> {
        self.received().requests.clone()
    }

    fn body(&self, id: Uuid) -> Value {
        self.received()
            .kept
            .iter()
            .find(|(kept, _, _)| *kept == id)
            .map(|(_, _, body)| body.clone())
            .expect("the message was kept")
    }

    async fn start(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the practice's port again");
        self.server = Some(crate::support::serve(
            listener,
            self.received.clone(),
            answer,
        ));
    }

    fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

impl Drop for Practice {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn answer(mut socket: tokio::net::TcpStream, received: Arc<Mutex<Received>>) {
    let Some(crate::support::ReceivedRequest { headers, body, .. }) =
        crate::support::read_request(&mut socket).await
    else {
        return;
    };
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|k| Uuid::parse_str(k).ok())
    else {
        reply(&mut socket, "400 Bad Request").await;
        return;
    };
    let action = {
        let mut received = received.lock().expect("receiver");
        received.requests.push(key);
        if let Some(arrived) = &received.arrived {
            let _ = arrived.send(key);
        }
        let action = received.script.pop_front().unwrap_or(Answer::Ok);
        if action != Answer::Fail && !received.kept.iter().any(|(id, _, _)| *id == key) {
            let sequence = headers
                .get("x-casebook-sequence")
                .cloned()
                .unwrap_or_default();
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            received.kept.push((key, sequence, json));
        }
        action
    };
    match action {
        Answer::Fail => reply(&mut socket, "500 Internal Server Error").await,
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            reply(&mut socket, "200 OK").await;
        }
        Answer::Drop => {}
        Answer::Ok => reply(&mut socket, "200 OK").await,
    }
}

/// An empty answer with `status`, then the connection closed.
async fn reply(socket: &mut tokio::net::TcpStream, status: &str) {
    let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = socket.write_all(answer.as_bytes()).await;
}

fn quick(max_attempts: i32) -> DispatchSettings {
    DispatchSettings {
        lease: Duration::from_millis(1500),
        backoff: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(200),
        max_attempts,
        batch: 10,
    }
}

fn dispatcher(store: &eventstore::EventStore, settings: DispatchSettings) -> Dispatcher {
    Dispatcher::new(
        store.clone(),
        app::Clock::system(),
        Arc::new(
            casebook::gp_outbox::HttpTransport::new(
                Duration::from_millis(500),
                casebook::gp_outbox::Reach::Any,
            )
            .expect("an HTTP client"),
        ),
        settings,
    )
}

/// Runs dispatch passes until nothing is pending (or 30 s).
async fn drain(dispatcher: &Dispatcher, client: &tokio_postgres::Client) {
    for _ in 0..300 {
        dispatcher.run_once().await.expect("a dispatch pass");
        let pending: i64 = client
            .query_one(
                "SELECT count(*) FROM gp_outbox WHERE status = 'pending'",
                &[],
            )
            .await
            .expect("pending")
            .get(0);
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("messages still pending after 30 s");
}

/// An intake from practice `ods` (or none), for client `client`.
fn intake(client: ClientId, referral: ReferralId, ods: Option<&str>) -> CaseCommand {
    let mut command = new_client_intake(
        client,
        referral,
        "Frome",
        ReferralSource::Gp,
        vec![NeedDomain::LonelinessIsolation],
    );
    if let CaseCommand::Intake { referral, .. } = &mut command {
        referral.referrer.organisation = ods.map(|code| format!("ODS {code}"));
    }
    command
}

/// Two episodes from practice `ods`: the first referral accepted and the case closed, then a
/// second referral (a day later) accepted.
fn twice(
    client: ClientId,
    (first, second): (ReferralId, ReferralId),
    ods: &str,
) -> Vec<CaseCommand> {
    let CaseCommand::Intake { mut referral, .. } = intake(client, second, Some(ods)) else {
        unreachable!("an intake")
    };
    referral.received_on = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).expect("a day");
    let again = CaseCommand::Intake {
        client: None,
        referral,
    };
    [
        accepted(client, first, Some(ods)),
        vec![goals_met(), again],
        vec![CaseCommand::AcceptReferral(ReferralAccepted {
            referral_id: second,
        })],
    ]
    .concat()
}

async fn message_of(
    client: &tokio_postgres::Client,
    person: ClientId,
    seq: i32,
) -> (Uuid, String, Option<String>, Option<String>) {
    let row = client
        .query_one(
            "SELECT message_id, status, content, withheld_reason FROM gp_outbox \
             WHERE client_id = $1 AND seq = $2",
            &[&person.0, &seq],
        )
        .await
        .unwrap_or_else(|e| panic!("message {seq} of {person:?}: {e}"));
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

/// A new organisation with an administrator, as the principal the administrator acts as.
async fn organisation_with_admin(
    db: &testkit::TestDb,
    name: &str,
) -> (Uuid, app::access::Principal) {
    let admin_client = db.admin_client().await;
    let operator = app::admin::Operator::new(&admin_client);
    let organisation = operator
        .add_organisation(name)
        .await
        .expect("an organisation");
    let administrator = operator
        .add_staff(
            organisation,
            &app::admin::NewStaffRequest {
                staff_id: None,
                name: "Ada Admin".to_owned(),
                role: app::access::Role::Administrator,
                team_id: None,
                capacity: None,
            },
        )
        .await
        .expect("an administrator");
    let admin = app::access::Principal {
        staff_id: StaffId(administrator.staff_id),
        organisation_id: organisation,
        team_id: None,
        role: app::access::Role::Administrator,
        token_id: Uuid::nil(),
    };
    (organisation, admin)
}

/// A test's service: its database and store, an organisation with an administrator, the case
/// service, and a connection to read the outbox with.
struct Service {
    db: testkit::TestDb,
    store: eventstore::EventStore,
    organisation: Uuid,
    admin: app::access::Principal,
    cases: CaseService,
    client: tokio_postgres::Client,
}

impl Service {
    async fn new(pool_size: usize, name: &str) -> Service {
        let (db, store) = store_with_db(pool_size).await;
        let (organisation, admin) = organisation_with_admin(&db, name).await;
        let cases = CaseService::new(store.clone());
        let client = db.app_client().await;
        Service {
            db,
            store,
            organisation,
            admin,
            cases,
            client,
        }
    }

    /// Carries out `commands` on `client`'s record, each recorded as it happens (a fact
    /// recorded long after it happened is withheld as late): a referral as a practice's own
    /// system sends it, everything else by a link worker.
    async fn run(&self, client: ClientId, commands: Vec<CaseCommand>) {
        self.run_as(None, client, commands).await;
    }

    /// For each of `roles`, someone new referred naming practice `ods`, the referral recorded
    /// by someone of that role, then accepted: each role with the person.
    async fn referred_by<'a>(&self, roles: &[&'a str], ods: &str) -> Vec<(&'a str, ClientId)> {
        let mut people = Vec::new();
        for role in roles {
            let (person, referral) = (ClientId(Uuid::new_v4()), ReferralId(Uuid::new_v4()));
            let [intake, accept] =
                <[CaseCommand; 2]>::try_from(accepted(person, referral, Some(ods)))
                    .expect("an intake and an acceptance");
            self.run_as(Some(role), person, vec![intake]).await;
            self.run(person, vec![accept]).await;
            people.push((*role, person));
        }
        people
    }

    /// As [`Service::run`], every command recorded by someone of `role` when given.
    async fn run_as(&self, role: Option<&str>, client: ClientId, commands: Vec<CaseCommand>) {
        crate::support::hire_named(&self.store, self.organisation, &commands).await;
        for command in commands {
            let by = role.unwrap_or(match command {
                CaseCommand::Intake { .. } => "practice_system",
                _ => "link_worker",
            });
            let meta = eventstore::Metadata {
                organisation_id: self.organisation,
                occurred_at: app::Clock::system().now(),
                actor_role: by.to_owned(),
                ..metadata()
            };
            self.cases
                .execute(client, &command, meta, CommandOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        }
    }

    /// A practice's system, up, with the endpoint of practice `ods` set to it by the
    /// administrator.
    async fn practice_up(&self, ods: &str) -> Practice {
        let mut practice = Practice::new().await;
        practice.start().await;
        GpOutboxAdmin::new(self.store.clone(), app::Clock::system())
            .set_endpoint(&self.admin, ods, &practice.url())
            .await
            .expect("the endpoint");
        practice
    }
}

/// An intake from practice `ods` (or none), accepted.
fn accepted(client: ClientId, referral: ReferralId, ods: Option<&str>) -> Vec<CaseCommand> {
    vec![
        intake(client, referral, ods),
        CaseCommand::AcceptReferral(ReferralAccepted {
            referral_id: referral,
        }),
    ]
}

/// An intake from practice `ods` (or none), the person's consent to share with their GP, and
/// the referral accepted.
fn consented(client: ClientId, referral: ReferralId, ods: Option<&str>) -> Vec<CaseCommand> {
    let mut commands = accepted(client, referral, ods);
    commands.insert(
        1,
        CaseCommand::RecordConsent(ConsentRecorded {
            scope: ConsentScope::ShareWithGp,
            services: vec![],
            channel: None,
        }),
    );
    commands
}

/// The case closed, its goals met.
fn goals_met() -> CaseCommand {
    CaseCommand::CloseCase(CaseClosed {
        reason: ClosureReason::GoalsMet,
        note: None,
    })
}

/// How many messages the outbox holds for `person`.
async fn messages_for(client: &tokio_postgres::Client, person: ClientId) -> i64 {
    count(
        client,
        "SELECT count(*) FROM gp_outbox WHERE client_id = $1",
        &[&person.0],
    )
    .await
}

/// The count `sql` answers.
async fn count(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> i64 {
    client
        .query_one(sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

#[tokio::test]
async fn gp_messages_arrive_once_in_order_through_failures_restarts_and_a_killed_dispatcher() {
    let service = Service::new(8, "GP outbox service").await;
    let (store, admin, client) = (&service.store, &service.admin, &service.client);
    let runner = outbox_runner(store);
    let outbox = GpOutboxAdmin::new(store.clone(), app::Clock::system());

    // Five people: A accepted, closed, referred again and accepted again (two messages, in
    // order); B consents to sharing with the GP, then is accepted; C's referral names no
    // practice; D declines; E is not eligible (not the person's choice: no message).
    let [a, b, c, d, e] = [(); 5].map(|()| ClientId(Uuid::new_v4()));
    let [ra, ra2, rb, rc, rd, re] = [(); 6].map(|()| ReferralId(Uuid::new_v4()));
    service.run(a, twice(a, (ra, ra2), "A81001")).await;
    service.run(b, consented(b, rb, Some("A81001"))).await;
    service.run(c, accepted(c, rc, None)).await;
    for (person, referral, reason) in [
        (d, rd, DeclineReason::ClientDeclined),
        (e, re, DeclineReason::NotEligible),
    ] {
        let decline = CaseCommand::DeclineReferral(ReferralDeclined {
            referral_id: referral,
            reason,
            note: None,
        });
        let commands = vec![intake(person, referral, Some("A81001")), decline];
        service.run(person, commands).await;
    }
    runner.catch_up().await.expect("the outbox catches up");

    let (a1, status, content, _) = message_of(client, a, 1).await;
    assert_eq!(
        (status.as_str(), content.as_deref()),
        ("pending", Some("coded"))
    );
    let (a2, _, _, _) = message_of(client, a, 2).await;
    let (b1, _, content, _) = message_of(client, b, 1).await;
    assert_eq!(content.as_deref(), Some("full"));
    let (_, status, content, why) = message_of(client, c, 1).await;
    assert_eq!(
        (status.as_str(), content, why.as_deref()),
        ("withheld", None, Some("no_practice"))
    );
    let (d1, _, _, _) = message_of(client, d, 1).await;
    let for_e = messages_for(client, e).await;
    assert_eq!(for_e, 0, "not eligible is not the person's decline");
    // The projection caught up again writes nothing twice.
    runner.catch_up().await.expect("the outbox catches up");
    assert_eq!(
        count(client, "SELECT count(*) FROM gp_outbox", &[]).await,
        5
    );

    // Only an administrator sets an endpoint, and only to an http(s) URL.
    let mut practice = Practice::new().await;
    let worker = app::access::Principal {
        role: app::access::Role::LinkWorker,
        ..admin.clone()
    };
    assert!(matches!(
        outbox
            .set_endpoint(&worker, "A81001", &practice.url())
            .await,
        Err(AppError::Denied(_))
    ));
    assert!(matches!(
        outbox
            .set_endpoint(admin, "A81001", "file:///etc/passwd")
            .await,
        Err(AppError::BadInput { field: "url", .. })
    ));
    outbox
        .set_endpoint(admin, "A81001", &practice.url())
        .await
        .expect("the endpoint");

    // The practice's system is down: every attempt fails, nothing is lost.
    let first = dispatcher(store, quick(50));
    let report = first.run_once().await.expect("a pass");
    assert_eq!(report.delivered, 0);
    assert!(report.failed >= 3, "{report:?}");
    assert!(practice.requests().is_empty());

    // It comes back, answering 500 twice, hanging past the timeout, dropping a connection,
    // then going away and coming back once more.
    practice.script(&[Answer::Fail, Answer::Fail, Answer::Hang, Answer::Drop]);
    practice.start().await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    first.run_once().await.expect("a pass");
    practice.stop();
    first.run_once().await.expect("a pass while it is away");
    practice.start().await;
    drain(&first, client).await;

    // A dispatcher killed mid-delivery: F's message reaches the practice, and the dispatcher
    // is dropped before it hears the answer. Its lease runs out, another dispatcher sends it
    // again, and the practice keeps it once.
    let f = ClientId(Uuid::new_v4());
    let rf = ReferralId(Uuid::new_v4());
    service.run(f, accepted(f, rf, Some("A81001"))).await;
    runner.catch_up().await.expect("the outbox catches up");
    let (f1, _, _, _) = message_of(client, f, 1).await;
    let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    practice.received().arrived = Some(arrived);
    practice.script(&[Answer::Hang]);
    let doomed = dispatcher(store, quick(50));
    let killed = tokio::spawn(async move { doomed.run_once().await });
    let got = tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
        .await
        .expect("the message arrives")
        .expect("a key");
    assert_eq!(got, f1);
    killed.abort();
    let _ = killed.await;
    let (_, status, _, _) = message_of(client, f, 1).await;
    assert_eq!(
        status, "pending",
        "the killed dispatcher's message is not lost"
    );
    let second = dispatcher(store, quick(50));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    drain(&second, client).await;

    // Every message arrived once, A's in order; the practice saw retries of them.
    let kept = practice.kept_ids();
    let mut unique = kept.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), kept.len(), "each message kept once: {kept:?}");
    let mut expected = vec![a1, a2, b1, d1, f1];
    expected.sort_unstable();
    assert_eq!(unique, expected);
    let position = |id: Uuid| kept.iter().position(|k| *k == id).expect("kept");
    assert!(position(a1) < position(a2), "A's messages in order");
    assert!(
        practice.requests().len() > kept.len(),
        "retries happened: {:?}",
        practice.requests()
    );
    assert_eq!(
        practice.requests().iter().filter(|id| **id == f1).count(),
        2,
        "F's message was sent again after the kill"
    );
    // Every message is delivered or withheld, and every delivery is audited.
    let row = client
        .query_one(
            "SELECT \
               (SELECT count(*) FROM gp_outbox WHERE status NOT IN ('delivered', 'withheld')), \
               (SELECT count(DISTINCT message_id) FROM gp_outbox_attempts \
                 WHERE outcome = 'delivered'), \
               (SELECT count(*) FROM gp_outbox_attempts WHERE outcome = 'failed')",
            &[],
        )
        .await
        .expect("counts");
    let (undelivered, audited, failures): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((undelivered, audited), (0, 5));
    assert!(failures >= 5, "failed attempts are audited: {failures}");

    // What went: coded, to the practice, about the person by NHS number; the summary only
    // with consent.
    let a_body = practice.body(a1);
    assert_eq!(a_body["resourceType"], "Communication");
    assert_eq!(
        a_body["reasonCode"][0]["coding"][0]["code"],
        "871731000000106"
    );
    assert_eq!(a_body["subject"]["identifier"]["value"], "9434765919");
    assert_eq!(a_body["recipient"][0]["identifier"]["value"], "A81001");
    assert!(
        a_body.get("payload").is_none(),
        "codes only without consent"
    );
    let b_body = practice.body(b1);
    assert!(
        b_body["payload"][0]["contentString"].is_string(),
        "{b_body}"
    );
    assert_eq!(
        practice.body(d1)["reasonCode"][0]["coding"][0]["code"],
        "871711000000103"
    );
}

#[tokio::test]
async fn a_message_that_cannot_be_delivered_is_dead_lettered_holds_the_persons_next_and_is_replayed()
 {
    let service = Service::new(6, "Dead letters").await;
    let (store, admin, client) = (&service.store, &service.admin, &service.client);
    let (_, stranger) = organisation_with_admin(&service.db, "Another service").await;
    let (admin, stranger) = (admin, &stranger);
    let runner = outbox_runner(store);
    let outbox = GpOutboxAdmin::new(store.clone(), app::Clock::system());
    // A practice with no endpoint yet: two messages for one person.
    let a = ClientId(Uuid::new_v4());
    let (ra, ra2) = (ReferralId(Uuid::new_v4()), ReferralId(Uuid::new_v4()));
    service.run(a, twice(a, (ra, ra2), "B82002")).await;
    runner.catch_up().await.expect("the outbox catches up");
    let (a1, _, _, _) = message_of(client, a, 1).await;
    let (a2, _, _, _) = message_of(client, a, 2).await;

    let dispatcher = dispatcher(store, quick(2));
    for _ in 0..3 {
        dispatcher.run_once().await.expect("a pass");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, status, _, _) = message_of(client, a, 1).await;
    assert_eq!(status, "dead");
    let (_, status, _, _) = message_of(client, a, 2).await;
    assert_eq!(
        status, "pending",
        "the person's next message waits behind the dead letter"
    );
    let attempts = count(
        client,
        "SELECT count(*) FROM gp_outbox_attempts WHERE message_id = $1",
        &[&a2],
    )
    .await;
    assert_eq!(attempts, 0, "message 2 was never sent before message 1");

    let read = app::records::ReadContext::new(None, Uuid::new_v4());
    let dead = outbox
        .list(admin, OutboxStatus::Dead, 50, &read)
        .await
        .expect("dead letters");
    assert_eq!(dead.iter().map(|m| m.message_id).collect::<Vec<_>>(), [a1]);
    // The administrator read what was said of the person to their GP: audited, once.
    let audited: Vec<(Uuid, String)> = client
        .query(
            "SELECT client_id, view FROM record_reads WHERE request_id = $1",
            &[&read.request_id],
        )
        .await
        .expect("reads")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(audited, [(a.0, "gp_messages".to_owned())]);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("no endpoint")),
        "{dead:?}"
    );
    assert!(
        outbox
            .list(stranger, OutboxStatus::Dead, 50, &read)
            .await
            .expect("theirs")
            .is_empty()
    );
    assert!(matches!(
        outbox.replay(stranger, a1).await,
        Err(AppError::NotFound(_))
    ));
    // A status that is none of the outbox's is refused, naming the field.
    assert!(matches!(
        "lost".parse::<OutboxStatus>(),
        Err(AppError::BadInput {
            field: "status",
            ..
        })
    ));

    let practice = service.practice_up("B82002").await;
    outbox.replay(admin, a1).await.expect("replayed");
    assert!(
        matches!(outbox.replay(admin, a1).await, Err(AppError::NotFound(_))),
        "only a dead letter is replayed"
    );
    drain(&dispatcher, client).await;
    assert_eq!(practice.kept_ids(), [a1, a2]);
    let replayed_by: Uuid = client
        .query_one(
            "SELECT staff_id FROM gp_outbox_attempts WHERE message_id = $1 AND outcome = 'replayed'",
            &[&a1],
        )
        .await
        .expect("the replay is audited")
        .get(0);
    assert_eq!(replayed_by, admin.staff_id.0);

    // A message decided with the person's consent, who objects before it goes: it never goes.
    let c = ClientId(Uuid::new_v4());
    let rc = ReferralId(Uuid::new_v4());
    service.run(c, consented(c, rc, Some("B82002"))).await;
    runner.catch_up().await.expect("the outbox catches up");
    let (c1, status, content, _) = message_of(client, c, 1).await;
    assert_eq!(
        (status.as_str(), content.as_deref()),
        ("pending", Some("full"))
    );
    service
        .run(
            c,
            vec![CaseCommand::WithdrawConsent(ConsentWithdrawn {
                scope: ConsentScope::ShareWithGp,
            })],
        )
        .await;
    drain(&dispatcher, client).await;
    let (_, status, _, reason) = message_of(client, c, 1).await;
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("withheld", Some("objected"))
    );
    assert!(!practice.requests().contains(&c1), "nothing was sent");
}

#[test]
fn a_communication_is_coded_and_carries_the_summary_only_with_full_content() {
    let message = |content: &str, summary: Option<&str>| OutboxMessage {
        message_id: Uuid::from_u128(0x5eed),
        organisation_id: Uuid::from_u128(0x0a),
        client_id: Uuid::from_u128(0xc1),
        seq: 1,
        kind: "referral_accepted".to_owned(),
        code: "871731000000106".to_owned(),
        display: "Referral to social prescribing service (procedure)".to_owned(),
        content: Some(content.to_owned()),
        summary: summary.map(str::to_owned),
        practice_ods: Some("A81001".to_owned()),
        occurred_at: crate::support::at(2),
        attempts: 0,
        code_system: None,
        observations: Vec::new(),
        rules_version: 1,
    };
    let full = app::gp_outbox::communication(
        &message(
            "full",
            Some(
                "The referral to the social prescribing service was accepted; a link worker will contact the person.",
            ),
        ),
        "9434765919",
        crate::support::at(3),
        &[],
    );
    testkit::insta_settings().bind(|| insta::assert_json_snapshot!("gp_communication_full", full));
    let coded = app::gp_outbox::communication(
        &message("coded", None),
        "9434765919",
        crate::support::at(3),
        &[],
    );
    let mut without = full.clone();
    without
        .as_object_mut()
        .expect("an object")
        .remove("payload");
    assert_eq!(
        coded, without,
        "codes only: the same resource without the summary"
    );

    // The end of an episode: a local code, the summary, and each score a contained
    // Observation referenced from the payload.
    let ended = OutboxMessage {
        kind: "episode_ended".to_owned(),
        code_system: Some("https://casebook.example/fhir/CodeSystem/gp-message".to_owned()),
        code: "social-prescribing-episode-ended".to_owned(),
        display: "Social prescribing support ended".to_owned(),
        observations: vec![Uuid::from_u128(0xa1), Uuid::from_u128(0xa2)],
        rules_version: 2,
        ..message(
            "full",
            Some(
                "The person's episode of social prescribing support has ended. Reason for ending: goals met.",
            ),
        )
    };
    let score =
        |id: u128, value: f64, on: (u32, u32), timepoint: &'static str| app::gp_outbox::Score {
            assessment_id: Uuid::from_u128(id),
            code: "718466001".to_owned(),
            display: "Short Warwick-Edinburgh Mental Well-being Scale score".to_owned(),
            value,
            on: chrono::NaiveDate::from_ymd_opt(2026, on.0, on.1).expect("a day"),
            timepoint,
        };
    let scores = [
        score(0xa1, 17.43, (1, 5), "baseline"),
        score(0xa2, 21.54, (3, 9), "follow-up"),
    ];
    let with_scores =
        app::gp_outbox::communication(&ended, "9434765919", crate::support::at(3), &scores);
    testkit::insta_settings()
        .bind(|| insta::assert_json_snapshot!("gp_communication_episode_ended", with_scores));
}

/// Two dispatchers (two `serve` processes) draining the same outbox at once: their leases keep
/// them apart, so each message is sent once, not merely kept once by a receiver that dedupes.
#[tokio::test]
async fn two_dispatchers_at_once_send_each_message_once() {
    let service = Service::new(6, "Two dispatchers").await;
    let (store, client) = (&service.store, &service.client);
    let people: Vec<ClientId> = (0..12).map(|_| ClientId(Uuid::new_v4())).collect();
    for person in &people {
        let referral = ReferralId(Uuid::new_v4());
        service
            .run(*person, accepted(*person, referral, Some("C83003")))
            .await;
    }
    outbox_runner(store)
        .catch_up()
        .await
        .expect("the outbox catches up");
    let practice = service.practice_up("C83003").await;
    let settings = DispatchSettings {
        batch: 2,
        ..quick(5)
    };
    let (first, second) = (dispatcher(store, settings), dispatcher(store, settings));
    tokio::join!(drain(&first, client), drain(&second, client));

    let requests = practice.requests();
    assert_eq!(
        requests.len(),
        people.len(),
        "one request per message: {requests:?}"
    );
    let mut distinct = requests.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), people.len(), "no message sent twice");
    let delivered = count(
        client,
        "SELECT count(*) FROM gp_outbox_attempts WHERE outcome = 'delivered'",
        &[],
    )
    .await;
    assert_eq!(delivered, 12, "each delivery audited once");
}

/// The end of an episode goes to the GP with its wellbeing scores, as Observations scored from
/// the log as the message is sent, and only for someone who consented to share with their GP;
/// withheld once they object.
#[tokio::test]
async fn the_end_of_an_episode_goes_to_the_gp_with_its_scores_only_with_consent() {
    use crate::support::assessment;
    let service = Service::new(6, "Episodes end").await;
    let (store, client) = (&service.store, &service.client);
    let day = |m: u32, d: u32| chrono::NaiveDate::from_ymd_opt(2026, m, d).expect("a day");
    let swemwbs = |id: Uuid, timepoint: Timepoint, answer: i32, on| {
        assessment(id, Instrument::Swemwbs, timepoint, vec![answer; 7], on)
    };
    let assign = CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
        link_worker_id: StaffId(Uuid::new_v4()),
        team_id: TeamId(Uuid::new_v4()),
    });
    let [p, q, r] = [(); 3].map(|()| ClientId(Uuid::new_v4()));
    let (baseline, follow_up) = (Uuid::new_v4(), Uuid::new_v4());
    // Each person: an intake, their consent or not, the referral accepted, what happens in the
    // episode, and its end.
    let episodes = [
        // P consents; SWEMWBS at baseline (raw 14) and follow-up (raw 21), and a UCLA score
        // the rules do not send.
        (
            p,
            true,
            vec![
                assign.clone(),
                swemwbs(baseline, Timepoint::Baseline, 2, day(3, 5)),
                assessment(
                    Uuid::new_v4(),
                    Instrument::Ucla3,
                    Timepoint::Baseline,
                    vec![2; 3],
                    day(3, 5),
                ),
                swemwbs(Uuid::new_v4(), Timepoint::Review, 5, day(4, 1)),
                swemwbs(follow_up, Timepoint::FollowUp, 3, day(5, 11)),
            ],
        ),
        // Q never consented: the acceptance's code goes, and nothing at the end.
        (
            q,
            false,
            vec![
                assign,
                swemwbs(Uuid::new_v4(), Timepoint::Baseline, 2, day(3, 5)),
            ],
        ),
        // R consented, then withdrew it before the end.
        (
            r,
            true,
            vec![CaseCommand::WithdrawConsent(ConsentWithdrawn {
                scope: ConsentScope::ShareWithGp,
            })],
        ),
    ];
    for (person, consents, during) in episodes {
        let referral = ReferralId(Uuid::new_v4());
        let start = if consents {
            consented(person, referral, Some("A81001"))
        } else {
            accepted(person, referral, Some("A81001"))
        };
        service
            .run(person, [start, during, vec![goals_met()]].concat())
            .await;
    }
    outbox_runner(store)
        .catch_up()
        .await
        .expect("the outbox catches up");
    let for_q = messages_for(client, q).await;
    assert_eq!(for_q, 1, "no consent: no message at the end");
    let (_, status, _, why) = message_of(client, r, 2).await;
    assert_eq!(
        (status.as_str(), why.as_deref()),
        ("withheld", Some("objected"))
    );
    let (ended, status, content, _) = message_of(client, p, 2).await;
    assert_eq!(
        (status.as_str(), content.as_deref()),
        ("pending", Some("full"))
    );
    let kept: Vec<Uuid> = client
        .query_one(
            "SELECT observations FROM gp_outbox WHERE message_id = $1",
            &[&ended],
        )
        .await
        .expect("the row")
        .get(0);
    assert_eq!(
        kept,
        [baseline, follow_up],
        "the first baseline and the last follow-up"
    );

    let practice = service.practice_up("A81001").await;
    drain(&dispatcher(store, quick(3)), client).await;
    let body = practice.body(ended);
    assert_eq!(
        body["reasonCode"][0]["coding"][0]["code"],
        "social-prescribing-episode-ended"
    );
    assert!(
        body["payload"][0]["contentString"]
            .as_str()
            .is_some_and(|s| s.ends_with("Reason for ending: goals met.")),
        "{body:#}"
    );
    let observations: Vec<(String, f64, String, String)> = body["contained"]
        .as_array()
        .expect("contained Observations")
        .iter()
        .map(|o| {
            (
                o["code"]["coding"][0]["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                o["valueQuantity"]["value"].as_f64().unwrap_or(f64::NAN),
                o["effectiveDateTime"].as_str().unwrap_or("").to_owned(),
                o["note"][0]["text"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    // The SWEMWBS metric scores of raw 14 and 21 (the published conversion table).
    assert_eq!(
        observations,
        [
            (
                "718466001".to_owned(),
                15.32,
                "2026-03-05".to_owned(),
                "baseline".to_owned()
            ),
            (
                "718466001".to_owned(),
                19.25,
                "2026-05-11".to_owned(),
                "follow-up".to_owned()
            ),
        ]
    );
    assert_eq!(
        body["payload"][1]["contentReference"]["reference"],
        "#score-1"
    );
    assert_eq!(
        body["payload"][2]["contentReference"]["reference"],
        "#score-2"
    );
}

/// Under the rules in force (v3), only a referral a practice's own system sent names the
/// practice to write to: the same referral typed by a referrer or recorded by a link worker names
/// none, and its acceptance is withheld as naming no practice.
#[tokio::test]
async fn a_practice_is_named_only_by_a_referral_its_own_system_sent() {
    let service = Service::new(4, "Named by the practice").await;
    let runner = outbox_runner(&service.store);
    // The same referral naming practice A81001, sent by the practice's system, typed by a
    // referrer, and recorded by a link worker; each accepted.
    let people = service
        .referred_by(&["practice_system", "referrer", "link_worker"], "A81001")
        .await;
    runner.catch_up().await.expect("the outbox catches up");
    for (role, person) in people {
        let row = service
            .client
            .query_one(
                "SELECT status, practice_ods, withheld_reason FROM gp_outbox \
                 WHERE client_id = $1 AND seq = 1",
                &[&person.0],
            )
            .await
            .expect("the message of the acceptance");
        let (status, practice, why): (String, Option<String>, Option<String>) =
            (row.get(0), row.get(1), row.get(2));
        let expected = if role == "practice_system" {
            ("pending", Some("A81001"), None)
        } else {
            ("withheld", None, Some("no_practice"))
        };
        assert_eq!(
            (status.as_str(), practice.as_deref(), why.as_deref()),
            expected,
            "a referral recorded by {role}"
        );
    }
}

/// A message decided before v3 (under v2, any referral's "ODS <code>" named the practice), or
/// from a state kept since, is sent only if a referral the practice's own system sent names
/// the practice: the dispatcher asks the rules in force, and withholds the others
/// (`not_named_by_practice`).
#[tokio::test]
async fn a_message_decided_before_v3_goes_only_where_the_practices_own_system_named_it() {
    let service = Service::new(4, "Decided before v3").await;
    let practice = service.practice_up("A81001").await;
    let people = service
        .referred_by(&["practice_system", "referrer"], "A81001")
        .await;
    // Decided as a build with v2 newest did: both pending, to A81001.
    projector::Runner::new(
        service.store.clone(),
        Arc::new(projector::GpOutboxProjection::under(2).expect("the v2 rules")),
        Uuid::new_v4(),
        projector::RunnerSettings::default(),
    )
    .catch_up()
    .await
    .expect("the outbox catches up under v2");
    let dispatcher = dispatcher(&service.store, quick(2));
    drain(&dispatcher, &service.client).await;
    for (role, person) in people {
        let (_, status, _, why) = message_of(&service.client, person, 1).await;
        let expected = if role == "practice_system" {
            ("delivered", None)
        } else {
            ("withheld", Some("not_named_by_practice"))
        };
        assert_eq!(
            (status.as_str(), why.as_deref()),
            expected,
            "a referral recorded by {role}"
        );
    }
    assert_eq!(
        practice.kept_ids().len(),
        1,
        "only the practice system's referral's message"
    );
}

/// A person's GP-message state is kept only once there is something to remember: a referral
/// that names no practice writes none (and its acceptance is still decided, withheld as naming
/// no practice); a referral that names one writes a first state, which later batches update.
#[tokio::test]
async fn a_gp_message_state_is_kept_only_for_someone_with_something_to_remember() {
    let service = Service::new(4, "States kept").await;
    let (store, client) = (&service.store, &service.client);
    let runner = outbox_runner(store);
    let states = |person: ClientId| async move {
        client
            .query_opt(
                "SELECT state FROM gp_outbox_state WHERE client_id = $1",
                &[&person.0],
            )
            .await
            .expect("the state")
            .map(|row| row.get::<_, Value>(0))
    };
    let [none, named, at_once] = [(); 3].map(|()| ClientId(Uuid::new_v4()));
    let [r_none, r_named, r_at_once] = [(); 3].map(|()| ReferralId(Uuid::new_v4()));
    service.run(none, vec![intake(none, r_none, None)]).await;
    service
        .run(named, vec![intake(named, r_named, Some("A81001"))])
        .await;
    runner.catch_up().await.expect("the outbox catches up");
    assert_eq!(states(none).await, None, "nothing to remember");
    let first = states(named).await.expect("a first state");
    assert_eq!(
        first["referrals"],
        serde_json::json!([[r_named.0, "A81001"]])
    );
    assert_eq!(first["seq"], 0);

    // Both accepted in a later batch, and a third person referred (naming no practice) and
    // accepted within one batch: the first gets a first state, the second's is updated.
    let accept = |referral| {
        vec![CaseCommand::AcceptReferral(ReferralAccepted {
            referral_id: referral,
        })]
    };
    service.run(none, accept(r_none)).await;
    service.run(named, accept(r_named)).await;
    service
        .run(at_once, accepted(at_once, r_at_once, None))
        .await;
    runner.catch_up().await.expect("the outbox catches up");
    for person in [none, at_once] {
        let state = states(person).await.expect("a state once accepted");
        assert_eq!(
            (
                &state["referrals"],
                &state["seq"],
                &state["accepted_in_episode"]
            ),
            (
                &serde_json::json!([]),
                &serde_json::json!(1),
                &Value::Bool(true)
            )
        );
        let (_, status, _, why) = message_of(client, person, 1).await;
        assert_eq!(
            (status.as_str(), why.as_deref()),
            ("withheld", Some("no_practice"))
        );
    }
    let updated = states(named).await.expect("the state");
    assert_eq!(
        (&updated["seq"], &updated["referrals"]),
        (&serde_json::json!(1), &first["referrals"])
    );
    let (_, status, content, _) = message_of(client, named, 1).await;
    assert_eq!(
        (status.as_str(), content.as_deref()),
        ("pending", Some("coded"))
    );
    // Caught up again: nothing more is written (the three rows are where they were, as the
    // transactions that wrote them left them).
    let places = || async {
        client
            .query(
                "SELECT ctid::text || '@' || xmin::text FROM gp_outbox_state \
                 WHERE client_id = ANY($1) ORDER BY client_id",
                &[&vec![none.0, named.0, at_once.0]],
            )
            .await
            .expect("the states' places")
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect::<Vec<_>>()
    };
    let before = places().await;
    assert_eq!(before.len(), 3);
    runner.catch_up().await.expect("the outbox catches up");
    assert_eq!(places().await, before);
}
