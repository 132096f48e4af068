//! Appointment reminders (issue #21, part 1) through the notification outbox, delivered to a
//! real Notify-shaped HTTP receiver started here that fails, drops the connection and answers
//! again: a reminder goes once, when due by the app clock (never the wall clock), only with
//! consent to be contacted for reminders, by the channel that consent names, never after a
//! cancellation, a withdrawal or an erasure, and never again on a rebuild. Administrators see
//! their organisation's dead letters and replay one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::gp_outbox::DispatchSettings;
use app::reminders::{NotifyEndpoint, NotifyTemplates, ReminderDispatcher};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use uuid::Uuid;

use super::journey::{accept, assign};
use super::{Person, TestServer};

/// The notification service's API key in these tests.
const API_KEY: &str = "casebook_test-11111111-2222-3333-4444-555555555555";

/// The service's own text message template (`serve --notify-sms-template`) in these tests.
const SMS_TEMPLATE: &str = "0f8e6a52-1111-4c2e-9d3b-7a1e2c3d4e5f";

/// The service's own email template (`serve --notify-email-template`) in these tests.
const EMAIL_TEMPLATE: &str = "1a9f7b63-2222-4d3f-8e4c-8b2f3d4e5f60";

/// What the receiver does with the next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// 500, nothing kept.
    Fail,
    /// Keeps the notification, then closes the connection without an answer.
    Drop,
    /// Keeps the notification (once per reference) and answers 201.
    Ok,
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    authorization: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Received {
    script: VecDeque<Answer>,
    requests: Vec<Request>,
    /// Each notification kept, once per `reference`.
    kept: Vec<Request>,
}

/// A notification service shaped as GOV.UK Notify's API: a bare HTTP/1.1 server on a port of its
/// own, deduplicating on `reference`.
struct Notify {
    port: u16,
    received: Arc<Mutex<Received>>,
    server: tokio::task::JoinHandle<()>,
}

impl Notify {
    async fn start() -> Notify {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("its address").port();
        let received: Arc<Mutex<Received>> = Arc::default();
        let server = crate::support::serve(listener, received.clone(), answer);
        Notify {
            port,
            received,
            server,
        }
    }

    /// The receiver, with the service's own templates configured for both channels.
    fn endpoint(&self) -> NotifyEndpoint {
        self.endpoint_with(NotifyTemplates {
            sms: Some(SMS_TEMPLATE.to_owned()),
            email: Some(EMAIL_TEMPLATE.to_owned()),
        })
    }

    /// The receiver, with `templates` configured.
    fn endpoint_with(&self, templates: NotifyTemplates) -> NotifyEndpoint {
        NotifyEndpoint {
            base_url: format!("http://127.0.0.1:{}", self.port),
            api_key: API_KEY.to_owned(),
            templates,
        }
    }

    fn received(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().expect("receiver")
    }

    fn script(&self, answers: &[Answer]) {
        self.received().script.extend(answers.iter().copied());
    }

    fn kept(&self) -> Vec<Request> {
        self.received().kept.clone()
    }

    fn requests(&self) -> Vec<Request> {
        self.received().requests.clone()
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(mut socket: tokio::net::TcpStream, received: Arc<Mutex<Received>>) {
    let Some(crate::support::ReceivedRequest {
        path,
        headers,
        body,
    }) = crate::support::read_request(&mut socket).await
    else {
        return;
    };
    let request = Request {
        path,
        authorization: headers.get("authorization").cloned(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let action = {
        let mut received = received.lock().expect("receiver");
        received.requests.push(request.clone());
        let action = received.script.pop_front().unwrap_or(Answer::Ok);
        let reference = request.body["reference"].clone();
        if action != Answer::Fail
            && !received
                .kept
                .iter()
                .any(|r| r.body["reference"] == reference)
        {
            received.kept.push(request);
        }
        action
    };
    let reply: &[u8] = match action {
        Answer::Fail => {
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        }
        Answer::Drop => return,
        Answer::Ok => {
            b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
        }
    };
    let _ = socket.write_all(reply).await;
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a UTC instant")
}

/// A dispatcher as `serve` runs it, timed by the server's clock, to `notify`.
fn dispatcher(
    server: &TestServer,
    clock: &app::Clock,
    notify: Option<NotifyEndpoint>,
) -> ReminderDispatcher {
    dispatcher_leasing(server, clock, notify, Duration::from_secs(30))
}

/// [`dispatcher`], leasing each reminder for `lease`.
fn dispatcher_leasing(
    server: &TestServer,
    clock: &app::Clock,
    notify: Option<NotifyEndpoint>,
    lease: Duration,
) -> ReminderDispatcher {
    dispatcher_over(server.store.clone(), clock, notify, lease)
}

/// [`dispatcher_leasing`] over a store of the caller's.
fn dispatcher_over(
    store: eventstore::EventStore,
    clock: &app::Clock,
    notify: Option<NotifyEndpoint>,
    lease: Duration,
) -> ReminderDispatcher {
    ReminderDispatcher::new(
        store,
        clock.clone(),
        Arc::new(
            casebook::gp_outbox::HttpTransport::to(
                "the notification service",
                Duration::from_millis(800),
                casebook::gp_outbox::Reach::Any,
            )
            .expect("an HTTP client"),
        ),
        DispatchSettings {
            lease,
            backoff: Duration::from_secs(60),
            backoff_cap: Duration::from_secs(60),
            max_attempts: 3,
            batch: 10,
        },
        notify,
    )
}

/// A new person, referred on `received_on` with `phone` and `email`, accepted and assigned.
async fn person(server: &TestServer, phone: Option<&str>, email: Option<&str>) -> Uuid {
    let people = &server.people;
    let (client, referral) = (Uuid::new_v4(), Uuid::new_v4());
    let body = json!({
        "client": {
            "personal": {
                "given_name": "Maggie", "family_name": "Thornbury", "date_of_birth": "1948-05-02",
                "nhs_number": null, "phone": phone, "email": email, "address": null, "postcode": null
            },
            "area": "Frome"
        },
        "referral": {
            "referral_id": referral, "source": "gp",
            "referrer": { "staff_id": null, "name": null, "organisation": null },
            "reasons": ["loneliness_isolation"], "urgency": "routine",
            "received_on": "2026-02-20", "note": null
        }
    });
    server
        .ok(
            &people.referrer,
            &format!("/api/v1/clients/{client}/referrals"),
            body,
        )
        .await;
    accept(server, &people.lead, client, referral).await;
    assign(server, client, &people.worker).await;
    client
}

async fn record(server: &TestServer, who: &Person, client: Uuid, what: &str, body: Value) {
    server
        .ok(who, &format!("/api/v1/clients/{client}/{what}"), body)
        .await;
}

/// Erases `client`, as an administrator at the person's request.
async fn erase(server: &TestServer, client: Uuid) {
    let reason = json!({ "reason": "the person asked" });
    record(server, &server.people.admin, client, "erasure", reason).await;
}

/// Consent to reminders by `channel`.
fn reminders_by(channel: &str) -> Value {
    json!({ "scope": "contact_for_reminders", "services": [], "channel": channel })
}

/// Someone new with the phone number `phone` and consent to text reminders.
async fn texted(server: &TestServer, phone: &str) -> Uuid {
    let client = person(server, Some(phone), None).await;
    let consent = reminders_by("sms");
    record(server, &server.people.worker, client, "consents", consent).await;
    client
}

async fn book(server: &TestServer, client: Uuid, when: &str) -> Uuid {
    let appointment = Uuid::new_v4();
    record(
        server,
        &server.people.worker,
        client,
        "appointments",
        json!({ "appointment_id": appointment, "scheduled_for": when, "mode": "face_to_face" }),
    )
    .await;
    appointment
}

/// Each reminder's (status, withheld reason, channel, attempts), by client.
async fn outbox_of(
    server: &TestServer,
    client: Uuid,
) -> Vec<(String, Option<String>, Option<String>, i32)> {
    let rows = server
        .db
        .admin_client()
        .await
        .query(
            "SELECT status, withheld_reason, channel, attempts FROM reminder_outbox \
             WHERE client_id = $1 ORDER BY scheduled_for",
            &[&client],
        )
        .await
        .expect("the outbox");
    rows.iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

fn reminder_id(client: Uuid, appointment: Uuid) -> String {
    projector::reminders::reminder_id(client, appointment).to_string()
}

#[tokio::test]
async fn reminders_go_once_when_due_with_consent_by_the_chosen_channel_and_never_otherwise() {
    // Monday 2 March 2026, 09:00 (GMT): the app clock, moved by the test.
    let clock = app::Clock::fixed(at("2026-03-02T09:00:00Z"));
    let server = TestServer::start_with_clock(clock.clone()).await;
    let people = server.people.clone();
    let notify = Notify::start().await;
    let worker = &people.worker;
    let reminders = |scope_channel: Option<&str>| match scope_channel {
        Some(channel) => reminders_by(channel),
        None => json!({ "scope": "contact_for_reminders", "services": [] }),
    };

    // Consent to be reminded names its channel; no other consent does.
    let sms = person(&server, Some("07700 900001"), None).await;
    let reply = server
        .post(
            worker,
            &format!("/api/v1/clients/{sms}/consents"),
            reminders(None),
        )
        .await;
    reply.refused_at(422, "channel");
    let reply = server
        .post(
            worker,
            &format!("/api/v1/clients/{sms}/consents"),
            json!({ "scope": "share_with_gp", "services": [], "channel": "sms" }),
        )
        .await;
    assert_eq!(reply.status, 422, "{:#}", reply.body);
    let reply = server
        .post(
            worker,
            &format!("/api/v1/clients/{sms}/consents"),
            reminders(Some("pigeon")),
        )
        .await;
    assert_eq!(reply.status, 400, "{:#}", reply.body);

    // sms: consents by text; email: by email; none: never consented; cancelled: consents,
    // then the appointment is cancelled; withdrawn: consents, then withdraws; erased: consents,
    // then is erased; no_phone: consents to texts with no phone number on record.
    record(&server, worker, sms, "consents", reminders(Some("sms"))).await;
    let email = person(&server, Some("07700 900002"), Some("maggie@example.org")).await;
    record(&server, worker, email, "consents", reminders(Some("email"))).await;
    let none = person(&server, Some("07700 900003"), None).await;
    let cancelled = person(&server, Some("07700 900004"), None).await;
    record(
        &server,
        worker,
        cancelled,
        "consents",
        reminders(Some("sms")),
    )
    .await;
    let withdrawn = person(&server, Some("07700 900005"), None).await;
    record(
        &server,
        worker,
        withdrawn,
        "consents",
        reminders(Some("sms")),
    )
    .await;
    let erased = person(&server, Some("07700 900006"), None).await;
    record(&server, worker, erased, "consents", reminders(Some("sms"))).await;
    let no_phone = person(&server, None, Some("someone@example.org")).await;
    record(
        &server,
        worker,
        no_phone,
        "consents",
        reminders(Some("sms")),
    )
    .await;

    // Each has an appointment tomorrow at 14:00; `sms` another on Friday.
    let tomorrow = "2026-03-03T14:00:00Z";
    let mut appointments = Vec::new();
    for client in [sms, email, none, cancelled, withdrawn, erased, no_phone] {
        appointments.push((client, book(&server, client, tomorrow).await));
    }
    let friday = book(&server, sms, "2026-03-06T10:00:00Z").await;
    record(
        &server,
        worker,
        cancelled,
        "appointment-cancellations",
        json!({ "appointment_id": appointments[3].1, "cancelled_by": "client", "note": null }),
    )
    .await;
    record(
        &server,
        worker,
        withdrawn,
        "consent-withdrawals",
        json!({ "scope": "contact_for_reminders" }),
    )
    .await;
    erase(&server, erased).await;
    server.catch_up().await;

    // Written by the projection: pending, due 24 hours before; the cancelled one withheld
    // already, and the erased person's too. No phone number or email address in the outbox.
    assert_eq!(
        outbox_of(&server, cancelled).await,
        [("withheld".to_owned(), Some("cancelled".to_owned()), None, 0)]
    );
    assert_eq!(
        outbox_of(&server, erased).await,
        [("withheld".to_owned(), Some("erased".to_owned()), None, 0)]
    );
    let admin_client = server.db.admin_client().await;
    let due: DateTime<Utc> = testkit::query_value(
        &admin_client,
        "SELECT next_attempt_at FROM reminder_outbox WHERE appointment_id = $1",
        &[&appointments[0].1],
    )
    .await;
    assert_eq!(due, at("2026-03-02T14:00:00Z"));
    let outbox_text: String = testkit::query_value(
        &admin_client,
        "SELECT coalesce(string_agg(r::text, ' '), '') FROM reminder_outbox r",
        &[],
    )
    .await;
    for personal in ["07700", "example.org", "Maggie", "Thornbury"] {
        assert!(!outbox_text.contains(personal), "{personal} in the outbox");
    }

    // Not due yet at 09:00: nothing goes.
    let dispatch = dispatcher(&server, &clock, Some(notify.endpoint()));
    let report = dispatch.run_once().await.expect("a pass");
    assert_eq!(report, app::gp_outbox::DispatchReport::default());
    assert!(notify.requests().is_empty());

    // 14:05: due. The service fails the first request, and drops the connection on the next
    // after keeping it: each is tried again after its backoff (by the app clock).
    notify.script(&[Answer::Fail, Answer::Drop]);
    clock.set(at("2026-03-02T14:05:00Z"));
    let first = dispatch.run_once().await.expect("a pass");
    assert_eq!(first.failed, 2, "{first:?}");
    assert_eq!(first.delivered, 0, "{first:?}");
    // none, withdrawn: no consent; no_phone: nothing to text.
    assert_eq!(first.withheld, 3, "{first:?}");
    // Nothing more before the backoff has passed.
    let early = dispatch.run_once().await.expect("a pass");
    assert_eq!(early, app::gp_outbox::DispatchReport::default());
    clock.set(at("2026-03-02T14:07:00Z"));
    let second = dispatch.run_once().await.expect("a pass");
    assert_eq!(second.delivered, 2, "{second:?}");
    let third = dispatch.run_once().await.expect("a pass");
    assert_eq!(third, app::gp_outbox::DispatchReport::default());

    // Each arrived once, with its reference, to its channel's endpoint, with the key.
    let kept = notify.kept();
    assert_eq!(kept.len(), 2, "{kept:#?}");
    let of = |reference: &str| {
        kept.iter()
            .find(|r| r.body["reference"] == reference)
            .unwrap_or_else(|| panic!("{reference} was not kept"))
            .clone()
    };
    let texted = of(&reminder_id(sms, appointments[0].1));
    assert_eq!(texted.path, "/v2/notifications/sms");
    assert_eq!(
        texted.authorization.as_deref(),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(texted.body["phone_number"], "07700 900001");
    assert_eq!(
        texted.body["personalisation"],
        json!({ "date": "Tuesday 3 March", "time": "2:00pm", "how": "face to face" })
    );
    // Each went with the service's own template for its channel.
    assert_eq!(texted.body["template_id"], SMS_TEMPLATE);
    let emailed = of(&reminder_id(email, appointments[1].1));
    assert_eq!(emailed.path, "/v2/notifications/email");
    assert_eq!(emailed.body["template_id"], EMAIL_TEMPLATE);
    assert_eq!(emailed.body["email_address"], "maggie@example.org");
    assert!(emailed.body.get("phone_number").is_none());
    // Sent again after a dropped connection, it carried the same reference: the service
    // kept it once.
    let requests = notify.requests();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    let mut references: Vec<String> = requests
        .iter()
        .map(|r| r.body["reference"].as_str().unwrap_or_default().to_owned())
        .collect();
    references.sort();
    references.dedup();
    assert_eq!(references.len(), 2);

    let withheld = |reason: &str| ("withheld".to_owned(), Some(reason.to_owned()), None, 1);
    assert_eq!(outbox_of(&server, none).await, [withheld("no_consent")]);
    assert_eq!(
        outbox_of(&server, withdrawn).await,
        [withheld("no_consent")]
    );
    assert_eq!(outbox_of(&server, no_phone).await, [withheld("no_phone")]);
    assert_eq!(
        outbox_of(&server, sms).await,
        [
            ("delivered".to_owned(), None, Some("sms".to_owned()), 2),
            ("pending".to_owned(), None, None, 0),
        ]
    );

    // A rebuild of the projection from the start of the log writes no reminder again, and
    // nothing more is sent.
    let rows_before: i64 =
        testkit::query_value(&admin_client, "SELECT count(*) FROM reminder_outbox", &[]).await;
    server.reset_projection(projector::REMINDER_OUTBOX).await;
    server.catch_up().await;
    let rows_after: i64 =
        testkit::query_value(&admin_client, "SELECT count(*) FROM reminder_outbox", &[]).await;
    assert_eq!(rows_after, rows_before);
    dispatch.run_once().await.expect("a pass");
    assert_eq!(notify.kept().len(), 2);
    assert_eq!(notify.requests().len(), 4);

    // Friday's reminder: the person withdraws consent after it was written; at its due time
    // (Thursday 10:00) it is withheld, not sent.
    record(
        &server,
        worker,
        sms,
        "consent-withdrawals",
        json!({ "scope": "contact_for_reminders" }),
    )
    .await;
    clock.set(at("2026-03-05T10:00:00Z"));
    let report = dispatch.run_once().await.expect("a pass");
    assert_eq!(report.withheld, 1, "{report:?}");
    assert_eq!(notify.requests().len(), 4);
    let status: String = testkit::query_value(
        &admin_client,
        "SELECT withheld_reason FROM reminder_outbox WHERE appointment_id = $1",
        &[&friday],
    )
    .await;
    assert_eq!(status, "no_consent");
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_by_their_organisation_s_administrator_only() {
    let clock = app::Clock::fixed(at("2026-03-02T09:00:00Z"));
    let server = TestServer::start_with_clock(clock.clone()).await;
    let people = server.people.clone();
    let client = texted(&server, "07700 900001").await;
    let appointment = book(&server, client, "2026-03-03T14:00:00Z").await;
    server.catch_up().await;
    let id = projector::reminders::reminder_id(client, appointment);

    // The notification service refuses the request (a 400 is not worth retrying): it is
    // dead-lettered at once.
    let notify = Notify::start().await;
    let refuser = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let refuser_port = refuser.local_addr().expect("its address").port();
    let refuser_task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = refuser.accept().await {
            let mut chunk = [0u8; 4096];
            let _ = socket.read(&mut chunk).await;
            let _ = socket
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    });
    clock.set(at("2026-03-02T14:00:00Z"));
    let bad = NotifyEndpoint {
        base_url: format!("http://127.0.0.1:{refuser_port}"),
        api_key: API_KEY.to_owned(),
        templates: NotifyTemplates {
            sms: Some(SMS_TEMPLATE.to_owned()),
            email: None,
        },
    };
    let report = dispatcher(&server, &clock, Some(bad))
        .run_once()
        .await
        .expect("a pass");
    assert_eq!(report.dead_lettered, 1, "{report:?}");
    refuser_task.abort();

    // Listed for the administrator of the organisation, with the error; nobody else.
    let listed = server.get(&people.admin, "/api/v1/reminders").await;
    assert_eq!(listed.status, 200, "{:#}", listed.body);
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(1),
        "{:#}",
        listed.body
    );
    assert_eq!(listed.body[0]["message_id"], id.to_string());
    assert_eq!(
        listed.body[0]["last_error"],
        "the notification service answered 400"
    );
    let text = listed.body.to_string();
    assert!(
        !text.contains("07700"),
        "no phone number in the list: {text}"
    );
    // Reading the list is reading of the person (their appointment): in the read audit.
    let admin_db = server.db.admin_client().await;
    let audited: Vec<(String, String)> = admin_db
        .query(
            "SELECT client_id::text, view FROM record_reads WHERE staff_id = $1",
            &[&people.admin.staff_id],
        )
        .await
        .expect("reads")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        audited,
        [(
            listed.body[0]["client_id"]
                .as_str()
                .expect("a client")
                .to_owned(),
            "reminders".to_owned()
        )]
    );
    let theirs = server.get(&people.foreign_admin, "/api/v1/reminders").await;
    assert_eq!(theirs.status, 200);
    assert_eq!(theirs.body, json!([]));
    assert_eq!(
        server.get(&people.lead, "/api/v1/reminders").await.status,
        403
    );
    server
        .get_refused(&people.admin, "/api/v1/reminders?status=lost", "status")
        .await;

    // The console's page of dead letters (the GP messages' page, for reminders) lists it with
    // its appointment, its error and a form that replays it.
    let session = super::console::sign_in(&server, &people.admin).await;
    let (status, page) = super::console::get(&server, &session, "/console/admin/reminders").await;
    assert_eq!(status, 200, "{page}");
    for shown in [
        "<h1 class=\"nhsuk-heading-l\">Appointment reminders not delivered</h1>",
        "Reminders not delivered, by appointment time",
        "the notification service answered 400",
        "action=\"/console/admin/reminders/replay\"",
        format!(" the reminder {id}").as_str(),
        client.to_string().as_str(),
    ] {
        assert!(page.contains(shown), "{shown} in {page}");
    }
    assert!(!page.contains("no-dead-letters"), "{page}");

    // Replayed: not by another organisation's administrator; once; then delivered.
    let replay = format!("/api/v1/reminders/{id}/replay");
    let reply = server
        .call(Some(&people.foreign_admin), "POST", &replay, None, &[])
        .await;
    assert_eq!(reply.status, 404);
    let reply = server
        .call(Some(&people.admin), "POST", &replay, None, &[])
        .await;
    assert_eq!(reply.status, 204, "{:#}", reply.body);
    let reply = server
        .call(Some(&people.admin), "POST", &replay, None, &[])
        .await;
    assert_eq!(reply.status, 404, "only a dead letter is replayed");
    let report = dispatcher(&server, &clock, Some(notify.endpoint()))
        .run_once()
        .await
        .expect("a pass");
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(notify.kept().len(), 1);
    let audit: Vec<String> = server
        .db
        .admin_client()
        .await
        .query(
            "SELECT outcome FROM reminder_outbox_attempts WHERE message_id = $1 ORDER BY attempt_id",
            &[&id],
        )
        .await
        .expect("the attempts")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(audit, ["dead", "replayed", "delivered"]);

    // The console page, linked from administration, lists what is dead (nothing now).
    let session = super::console::sign_in(&server, &people.admin).await;
    let (status, page) = super::console::get(&server, &session, "/console/admin").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("/console/admin/reminders"),
        "linked from administration"
    );
    let (status, page) = super::console::get(&server, &session, "/console/admin/reminders").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("no-dead-letters"), "{page}");
    // Chosen with the page's GET form: what was delivered, and by which channel.
    let (status, page) = super::console::get(
        &server,
        &session,
        "/console/admin/reminders?status=delivered",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"reminders\""), "{page}");
    assert!(page.contains(&client.to_string()), "{page}");
    assert!(page.contains(">sms<"), "{page}");
    let (status, page) =
        super::console::get(&server, &session, "/console/admin/reminders?status=pending").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("no-reminders"), "{page}");
    let (status, _) =
        super::console::get(&server, &session, "/console/admin/reminders?status=lost").await;
    assert_eq!(status, 400);
    let session = super::console::sign_in(&server, &people.lead).await;
    let (status, _) = super::console::get(&server, &session, "/console/admin/reminders").await;
    assert_eq!(status, 403);
}

/// `serve` started without a channel's template (`--notify-sms-template`): that channel's
/// reminders are held, pending with the reason on the administrator's list, never sent with a
/// made-up template, never dead-lettered, however many passes go by; the other channel's go.
/// Started again with the template, the held reminder goes, once.
#[tokio::test]
async fn a_reminder_is_held_while_its_channel_has_no_template_and_goes_once_one_is_configured() {
    let clock = app::Clock::fixed(at("2026-03-02T09:00:00Z"));
    let server = TestServer::start_with_clock(clock.clone()).await;
    let people = server.people.clone();
    let worker = &people.worker;
    let notify = Notify::start().await;
    let texted = person(&server, Some("07700 900011"), None).await;
    record(&server, worker, texted, "consents", reminders_by("sms")).await;
    let emailed = person(&server, None, Some("maggie@example.org")).await;
    record(&server, worker, emailed, "consents", reminders_by("email")).await;
    let text_appointment = book(&server, texted, "2026-03-03T14:00:00Z").await;
    let email_appointment = book(&server, emailed, "2026-03-03T14:00:00Z").await;
    server.catch_up().await;
    let text_reminder = projector::reminders::reminder_id(texted, text_appointment);
    let admin = server.db.admin_client().await;
    let held_reason = async |id: Uuid| -> Option<String> {
        testkit::query_value(
            &admin,
            "SELECT held_reason FROM reminder_outbox WHERE message_id = $1",
            &[&id],
        )
        .await
    };

    // Due at 14:05, sent by a service with an email template and no text template.
    clock.set(at("2026-03-02T14:05:00Z"));
    let without_sms = dispatcher(
        &server,
        &clock,
        Some(notify.endpoint_with(NotifyTemplates {
            sms: None,
            email: Some(EMAIL_TEMPLATE.to_owned()),
        })),
    );
    let report = without_sms.run_once().await.expect("a pass");
    assert_eq!(
        report,
        app::gp_outbox::DispatchReport {
            delivered: 1,
            held: 1,
            ..Default::default()
        }
    );
    let requests = notify.requests();
    assert_eq!(requests.len(), 1, "only the email went: {requests:#?}");
    assert_eq!(
        requests[0].body["reference"],
        reminder_id(emailed, email_appointment)
    );
    assert_eq!(requests[0].body["template_id"], EMAIL_TEMPLATE);
    assert_eq!(
        outbox_of(&server, texted).await,
        [("pending".to_owned(), None, None, 0)]
    );
    assert_eq!(
        held_reason(text_reminder).await.as_deref(),
        Some("no_sms_template")
    );

    // Pass after pass, past every backoff and more passes than attempts allowed, it stays
    // held: not tried, not dead-lettered. A dispatcher with no notification service at all
    // passes it by too.
    for hour in 15..=19 {
        clock.set(at(&format!("2026-03-02T{hour}:00:00Z")));
        let report = without_sms.run_once().await.expect("a pass");
        assert_eq!(report, app::gp_outbox::DispatchReport::default());
        let report = dispatcher(&server, &clock, None)
            .run_once()
            .await
            .expect("a pass");
        assert_eq!(report, app::gp_outbox::DispatchReport::default());
    }
    assert_eq!(notify.requests().len(), 1);
    assert_eq!(
        outbox_of(&server, texted).await,
        [("pending".to_owned(), None, None, 0)]
    );
    let tried: i64 = testkit::query_value(
        &admin,
        "SELECT count(*) FROM reminder_outbox_attempts WHERE message_id = $1",
        &[&text_reminder],
    )
    .await;
    assert_eq!(tried, 0, "a hold is not an attempt");

    // The administrator sees why it waits, over the API and on the console; no dead letter.
    let pending = server
        .get(&people.admin, "/api/v1/reminders?status=pending")
        .await;
    assert_eq!(pending.status, 200, "{:#}", pending.body);
    assert_eq!(
        pending.body.as_array().map(Vec::len),
        Some(1),
        "{:#}",
        pending.body
    );
    assert_eq!(pending.body[0]["message_id"], text_reminder.to_string());
    assert_eq!(pending.body[0]["held_reason"], "no_sms_template");
    assert_eq!(pending.body[0]["attempts"], 0);
    let dead = server.get(&people.admin, "/api/v1/reminders").await;
    assert_eq!(dead.body, json!([]), "no dead letters");
    let session = super::console::sign_in(&server, &people.admin).await;
    let (status, page) =
        super::console::get(&server, &session, "/console/admin/reminders?status=pending").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("held: no text message template is configured (--notify-sms-template)"),
        "{page}"
    );

    // Started again with the text template (before the appointment, out of quiet hours): it
    // goes, once, with that template, and is no longer held.
    let report = dispatcher(&server, &clock, Some(notify.endpoint()))
        .run_once()
        .await
        .expect("a pass");
    assert_eq!(report.delivered, 1, "{report:?}");
    let requests = notify.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[1].path, "/v2/notifications/sms");
    assert_eq!(requests[1].body["reference"], text_reminder.to_string());
    assert_eq!(requests[1].body["template_id"], SMS_TEMPLATE);
    assert_eq!(requests[1].body["phone_number"], "07700 900011");
    assert_eq!(
        outbox_of(&server, texted).await,
        [("delivered".to_owned(), None, Some("sms".to_owned()), 1)]
    );
    assert_eq!(held_reason(text_reminder).await, None);
    let report = dispatcher(&server, &clock, Some(notify.endpoint()))
        .run_once()
        .await
        .expect("a pass");
    assert_eq!(report, app::gp_outbox::DispatchReport::default());
    assert_eq!(notify.requests().len(), 2);
}

/// A reminder held because the person chose text messages and no text template is configured
/// is looked at again when their consent changes: moved to email, which has a template, it
/// goes by email at the next pass, once.
#[tokio::test]
async fn a_reminder_held_for_its_channel_goes_when_consent_moves_to_a_channel_with_a_template() {
    let clock = app::Clock::fixed(at("2026-03-02T09:00:00Z"));
    let server = TestServer::start_with_clock(clock.clone()).await;
    let people = server.people.clone();
    let worker = &people.worker;
    let notify = Notify::start().await;
    let both = person(&server, Some("07700 900013"), Some("ada@example.org")).await;
    record(&server, worker, both, "consents", reminders_by("sms")).await;
    let appointment = book(&server, both, "2026-03-03T14:00:00Z").await;
    server.catch_up().await;
    let reminder = projector::reminders::reminder_id(both, appointment);
    let admin = server.db.admin_client().await;
    let email_only = NotifyTemplates {
        sms: None,
        email: Some(EMAIL_TEMPLATE.to_owned()),
    };

    clock.set(at("2026-03-02T14:05:00Z"));
    let report = dispatcher(
        &server,
        &clock,
        Some(notify.endpoint_with(email_only.clone())),
    )
    .run_once()
    .await
    .expect("a pass");
    assert_eq!(report.held, 1, "{report:?}");
    let held: Option<String> = testkit::query_value(
        &admin,
        "SELECT held_reason FROM reminder_outbox WHERE message_id = $1",
        &[&reminder],
    )
    .await;
    assert_eq!(held.as_deref(), Some("no_sms_template"));

    // The person now prefers email: the hold is lifted by the consent, and the same
    // dispatcher (still without a text template) sends it by email.
    record(&server, worker, both, "consents", reminders_by("email")).await;
    server.catch_up().await;
    clock.set(at("2026-03-02T14:10:00Z"));
    let report = dispatcher(&server, &clock, Some(notify.endpoint_with(email_only)))
        .run_once()
        .await
        .expect("a pass");
    assert_eq!(report.delivered, 1, "{report:?}");
    let requests = notify.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].path, "/v2/notifications/email");
    assert_eq!(requests[0].body["reference"], reminder.to_string());
    assert_eq!(requests[0].body["template_id"], EMAIL_TEMPLATE);
    assert_eq!(
        outbox_of(&server, both).await,
        [("delivered".to_owned(), None, Some("email".to_owned()), 1)]
    );
}

#[tokio::test]
async fn a_corrected_time_moves_the_reminder_and_an_erasure_not_yet_projected_still_stops_it() {
    let clock = app::Clock::fixed(at("2026-03-02T09:00:00Z"));
    let server = TestServer::start_with_clock(clock.clone()).await;
    let people = server.people.clone();
    let notify = Notify::start().await;
    let moved = texted(&server, "07700 900011").await;
    let moved_appointment = book(&server, moved, "2026-03-03T14:00:00Z").await;
    let erased = texted(&server, "07700 900012").await;
    book(&server, erased, "2026-03-03T14:00:00Z").await;
    server.catch_up().await;

    // The appointment was booked for the wrong day: corrected to Thursday 11:00, its reminder
    // is due Wednesday 11:00.
    let booked = server.event_id(&moved, "AppointmentBooked").await;
    server
        .ok(
            &people.lead,
            &format!("/api/v1/clients/{moved}/corrections"),
            json!({ "corrects": booked, "corrected_fields": { "scheduled_for": "2026-03-05T11:00:00Z" },
                    "reason": "booked on the wrong day" }),
        )
        .await;
    // The person is erased, and the dispatcher runs before the projection has seen it: the
    // reminder is still written as pending, but what the log says now stops it.
    erase(&server, erased).await;
    let admin_client = server.db.admin_client().await;
    let due = |appointment: Uuid| {
        let admin_client = &admin_client;
        async move {
            testkit::query_value::<DateTime<Utc>>(
                admin_client,
                "SELECT next_attempt_at FROM reminder_outbox WHERE appointment_id = $1",
                &[&appointment],
            )
            .await
        }
    };
    assert_eq!(due(moved_appointment).await, at("2026-03-02T14:00:00Z"));

    clock.set(at("2026-03-02T14:00:00Z"));
    let dispatch = dispatcher(&server, &clock, Some(notify.endpoint()));
    let report = dispatch.run_once().await.expect("a pass");
    // The moved one waits (found moved when read at send time); the erased one is withheld.
    assert_eq!(report.withheld, 1, "{report:?}");
    assert_eq!(report.delivered, 0, "{report:?}");
    assert!(notify.requests().is_empty(), "nothing was sent");
    assert_eq!(
        outbox_of(&server, erased).await,
        [("withheld".to_owned(), Some("erased".to_owned()), None, 1)]
    );
    assert_eq!(due(moved_appointment).await, at("2026-03-04T11:00:00Z"));

    // The projection then sees the correction too: the same due time, no second reminder.
    server.catch_up().await;
    assert_eq!(due(moved_appointment).await, at("2026-03-04T11:00:00Z"));
    assert_eq!(outbox_of(&server, moved).await.len(), 1);

    // Due on Wednesday at 11:00, it goes then, saying Thursday.
    clock.set(at("2026-03-04T11:00:00Z"));
    let report = dispatch.run_once().await.expect("a pass");
    assert_eq!(report.delivered, 1, "{report:?}");
    let kept = notify.kept();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].body["personalisation"]["date"], "Thursday 5 March");
    assert_eq!(kept[0].body["personalisation"]["time"], "11:00am");
    assert_eq!(kept[0].body["phone_number"], "07700 900011");
}

/// The renew-before-post refusal: a dispatcher whose lease has run out by the time it would
/// post (here a lease of no length, out as soon as it is taken, as if the dispatcher had been
/// slowed past it) posts nothing and records no attempt; the reminder stays pending for the
/// next dispatcher, which sends it, once.
#[tokio::test]
async fn a_dispatcher_whose_lease_ran_out_before_posting_posts_nothing() {
    let clock = app::Clock::fixed(at("2026-03-02T09:00:00Z"));
    let server = TestServer::start_with_clock(clock.clone()).await;
    let notify = Notify::start().await;
    let client = texted(&server, "07700 900031").await;
    let appointment = book(&server, client, "2026-03-03T14:00:00Z").await;
    server.catch_up().await;
    clock.set(at("2026-03-02T14:00:00Z"));

    let slowed = dispatcher_leasing(&server, &clock, Some(notify.endpoint()), Duration::ZERO);
    let report = slowed.run_once().await.expect("a pass");
    assert_eq!(
        (
            report.delivered,
            report.failed,
            report.withheld,
            report.dead_lettered
        ),
        (0, 0, 0, 0),
        "{report:?}"
    );
    assert!(notify.requests().is_empty(), "nothing was posted");
    assert_eq!(
        outbox_of(&server, client).await,
        [("pending".to_owned(), None, None, 0)]
    );
    let id = projector::reminders::reminder_id(client, appointment);
    let admin = server.db.admin_client().await;
    assert_eq!(attempts(&admin, id).await, 0, "no attempt is recorded");

    // The next dispatcher (the lease has run out) sends it, once.
    let report = dispatcher(&server, &clock, Some(notify.endpoint()))
        .run_once()
        .await
        .expect("a pass");
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(notify.requests().len(), 1);
    assert_eq!(notify.kept()[0].body["reference"], id.to_string());
    assert_eq!(
        outbox_of(&server, client).await,
        [("delivered".to_owned(), None, Some("sms".to_owned()), 1)]
    );
    assert_eq!(attempts(&admin, id).await, 1);
}

/// How many attempts of reminder `id` are audited.
async fn attempts(admin: &tokio_postgres::Client, id: Uuid) -> i64 {
    testkit::query_value(
        admin,
        "SELECT count(*) FROM reminder_outbox_attempts WHERE message_id = $1",
        &[&id],
    )
    .await
}

/// The reminder projection itself withholds a closed case's pending reminders (the
/// administrator's list says so before any dispatcher runs), and a reopening brings them back
/// to be decided again when sent.
#[tokio::test]
async fn closing_the_case_withholds_its_pending_reminders_and_reopening_brings_them_back() {
    let clock = app::Clock::fixed(at("2026-03-02T09:00:00Z"));
    let server = TestServer::start_with_clock(clock.clone()).await;
    let people = server.people.clone();
    let worker = &people.worker;
    let client = texted(&server, "07700 900041").await;
    book(&server, client, "2026-03-05T14:00:00Z").await;
    server.catch_up().await;
    assert_eq!(
        outbox_of(&server, client).await,
        [("pending".to_owned(), None, None, 0)]
    );

    record(
        &server,
        worker,
        client,
        "closure",
        json!({ "reason": "moved_away", "note": null }),
    )
    .await;
    server.catch_up().await;
    assert_eq!(
        outbox_of(&server, client).await,
        [(
            "withheld".to_owned(),
            Some("case_closed".to_owned()),
            None,
            0
        )]
    );
    let listed = server
        .read(&people.admin, "/api/v1/reminders?status=withheld")
        .await;
    assert_eq!(listed.body[0]["withheld_reason"], "case_closed");

    record(
        &server,
        worker,
        client,
        "reopening",
        json!({ "note": null }),
    )
    .await;
    server.catch_up().await;
    assert_eq!(
        outbox_of(&server, client).await,
        [("pending".to_owned(), None, None, 0)]
    );
    // Due on Wednesday at 14:00, it goes then.
    let notify = Notify::start().await;
    clock.set(at("2026-03-04T14:00:00Z"));
    let report = dispatcher(&server, &clock, Some(notify.endpoint()))
        .run_once()
        .await
        .expect("a pass");
    assert_eq!(report.delivered, 1, "{report:?}");
}

#[tokio::test]
async fn the_console_records_consent_to_be_reminded_only_with_a_channel() {
    let clock = app::Clock::fixed(at("2026-03-02T09:00:00Z"));
    let server = TestServer::start_with_clock(clock.clone()).await;
    let client = person(&server, Some("07700 900021"), None).await;
    let session = super::console::sign_in(&server, &server.people.worker).await;
    let (status, plan) =
        super::console::get(&server, &session, &format!("/console/people/{client}/plan")).await;
    assert_eq!(status, 200, "{plan}");
    assert!(
        plan.contains("id=\"contact_channel-email\""),
        "the channel is asked for"
    );
    let csrf = super::console::hidden(&plan, "csrf");
    let path = format!("/console/people/{client}/consent");
    let consents = || async {
        server
            .db
            .admin_client()
            .await
            .query(
                "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'ConsentRecorded'",
                &[&client],
            )
            .await
            .expect("events")[0]
            .get::<_, i64>(0)
    };
    // The consent form sent with `channel` (none: not answered), under a fresh form id.
    let consent = async |channel: Option<&str>| {
        let form_id = Uuid::new_v4().to_string();
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("form_id", form_id.as_str()),
            ("consent_scope", "contact_for_reminders"),
        ];
        fields.extend(channel.map(|c| ("contact_channel", c)));
        super::console::post_page(&server, &session, &path, None, &fields).await
    };
    // Without a channel: refused at the channel's question, nothing recorded.
    let (status, page) = consent(None).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("contact_channel-error"), "{page}");
    assert_eq!(consents().await, 0);
    // By email: recorded with its channel.
    let (status, page) = consent(Some("email")).await;
    assert_eq!(status, 303, "{page}");
    let payload: Value = testkit::query_value(
        &server.db.admin_client().await,
        "SELECT payload FROM events WHERE stream_id = $1 AND event_type = 'ConsentRecorded'",
        &[&client],
    )
    .await;
    assert_eq!(
        payload,
        json!({ "scope": "contact_for_reminders", "services": [], "channel": "email" })
    );
}

/// Polls `what` (a count from the database) until it is at least one; panics, naming `why`,
/// after a minute (a bound for a broken run, not a measure of speed).
async fn until_seen(admin: &tokio_postgres::Client, what: &str, why: &str) {
    for _ in 0..6000 {
        let n: i64 = testkit::query_value(admin, what, &[]).await;
        if n > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never saw {why}");
}

/// Waits until a future is waiting for a connection of `pool`.
async fn until_waiting(pool: &db::Pool, why: &str) {
    for _ in 0..6000 {
        if pool.status().waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never saw {why}");
}

/// The race the hold must not lose: the dispatcher reads the person's record (consent to text
/// messages, and no text template), then the person's consent moves to email and is projected
/// (which lifts holds already made: there is none yet), and only then does the dispatcher hold
/// the reminder. Held regardless, it would stay held until the next consent change; it must
/// instead go by email at the next pass. The interleaving is made exact: the dispatcher's
/// connection pool has one connection, its read of the record waits on a lock of the log while
/// the test queues for that connection, and its hold waits for the test to give it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_projected_between_the_dispatchers_read_and_its_hold_is_not_missed() {
    let clock = app::Clock::fixed(at("2026-03-02T09:00:00Z"));
    let server = TestServer::start_with_clock(clock.clone()).await;
    let worker = server.people.worker.clone();
    let notify = Notify::start().await;
    let consent = |channel: &str| json!({ "scope": "contact_for_reminders", "services": [], "channel": channel });
    let both = person(&server, Some("07700 900014"), Some("ada@example.org")).await;
    record(&server, &worker, both, "consents", consent("sms")).await;
    let appointment = book(&server, both, "2026-03-03T14:00:00Z").await;
    server.catch_up().await;
    let reminder = projector::reminders::reminder_id(both, appointment);
    let email_only = NotifyTemplates {
        sms: None,
        email: Some(EMAIL_TEMPLATE.to_owned()),
    };
    // A dispatcher over a pool of one connection.
    let pool = server.db.app_pool(1);
    let store =
        crate::support::protected(eventstore::EventStore::new(pool.clone(), app::upcasters()));
    let dispatch = dispatcher_over(
        store,
        &clock,
        Some(notify.endpoint_with(email_only)),
        Duration::from_secs(300),
    );
    clock.set(at("2026-03-02T14:05:00Z"));

    // The log is locked: the dispatcher leases the reminder, then waits to read the record.
    let admin = server.db.admin_client().await;
    let mut locker = server.db.admin_client().await;
    let lock = locker.transaction().await.expect("begin");
    lock.batch_execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("the log locked");
    let pass = tokio::spawn({
        let dispatch = dispatch.clone();
        async move { dispatch.run_once().await }
    });
    until_seen(
        &admin,
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
         WHERE NOT l.granted AND l.relation = 'events'::regclass \
         AND a.query LIKE '%event_type IN (%'",
        "the dispatcher waiting to read the record",
    )
    .await;
    // Queued for the dispatcher's one connection, the test takes it as soon as the read is
    // done: the dispatcher then waits for it to hold the reminder.
    let taken = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.expect("the connection") }
    });
    until_waiting(&pool, "the test queued for the connection").await;
    lock.commit().await.expect("the log unlocked");
    let connection = taken.await.expect("join");
    until_waiting(&pool, "the dispatcher waiting to hold the reminder").await;

    // Meanwhile the person moves to email, and the projection sees it.
    record(&server, &worker, both, "consents", consent("email")).await;
    server.catch_up().await;
    drop(connection);
    let report = pass.await.expect("join").expect("a pass");
    assert_eq!(report.delivered, 0, "{report:?}");
    let held: Option<String> = testkit::query_value(
        &admin,
        "SELECT held_reason FROM reminder_outbox WHERE message_id = $1",
        &[&reminder],
    )
    .await;
    assert_eq!(held, None, "not held on what the record no longer says");

    // The next pass reads the record again and sends it by email, once.
    clock.set(at("2026-03-02T14:10:00Z"));
    let report = dispatch.run_once().await.expect("a pass");
    assert_eq!(report.delivered, 1, "{report:?}");
    let requests = notify.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].path, "/v2/notifications/email");
    assert_eq!(requests[0].body["reference"], reminder.to_string());
    assert_eq!(
        outbox_of(&server, both).await,
        [("delivered".to_owned(), None, Some("email".to_owned()), 1)]
    );
}
