//! Closed-loop connections over HTTP (#21 part 4): a service's provider staff see only the
//! connections made to their services (and of the person only their given name and initial,
//! under consent), each read audited under the record's organisation; they accept or decline
//! once, then say whether the person started; nobody else answers; administrators tie only
//! their own provider staff to their own services.

use serde_json::{Value, json};
use uuid::Uuid;

use super::TestServer;
use super::journey::open_case;

const REFERRED: Uuid = Uuid::from_u128(0xc1);
const SIGNPOSTED: Uuid = Uuid::from_u128(0xc2);
const TO_OTHER_SERVICE: Uuid = Uuid::from_u128(0xc3);

/// The fixture's person with consent to share with the provider's first service only, and
/// three connections: a referral and a signposting to that service, a referral to the second.
async fn connected(server: &TestServer) -> Uuid {
    let client = open_case(server).await;
    let (first, second) = (server.provider_services[0], server.provider_services[1]);
    let writes = vec![
        (
            "consents",
            json!({ "scope": "share_with_onward_services", "services": [first, second] }),
        ),
        (
            "connections",
            json!({ "connection_id": REFERRED, "service_id": first, "need": "loneliness_isolation", "kind": "referred" }),
        ),
        (
            "connections",
            json!({ "connection_id": SIGNPOSTED, "service_id": first, "need": "housing", "kind": "signposted" }),
        ),
        (
            "connections",
            json!({ "connection_id": TO_OTHER_SERVICE, "service_id": second, "need": "physical_activity", "kind": "warm_handover" }),
        ),
        // Consent narrowed to the first service: the second's provider no longer learns the
        // person's name.
        (
            "consents",
            json!({ "scope": "share_with_onward_services", "services": [first] }),
        ),
    ];
    recorded(server, client, writes).await;
    client
}

/// Records each of `writes` (a path under the client's record, and its body) as the link
/// worker, each answered 201.
pub async fn recorded(server: &TestServer, client: Uuid, writes: Vec<(&str, Value)>) {
    for (path, body) in writes {
        let made = server
            .post(
                &server.people.worker,
                &format!("/api/v1/clients/{client}/{path}"),
                body,
            )
            .await;
        assert_eq!(made.status, 201, "{path}: {:#}", made.body);
    }
}

/// The client's consent to share with onward services, and their referral (`connection`) to
/// the provider's first service.
pub async fn referred_to_provider(server: &TestServer, client: Uuid, connection: Uuid) {
    let service = server.provider_services[0];
    let writes = vec![
        (
            "consents",
            json!({ "scope": "share_with_onward_services", "services": [] }),
        ),
        (
            "connections",
            json!({ "connection_id": connection, "service_id": service,
                    "need": "loneliness_isolation", "kind": "referred" }),
        ),
    ];
    recorded(server, client, writes).await;
}

/// The event that made `connection` on `client`'s record.
async fn connection_event(server: &TestServer, client: Uuid, connection: Uuid) -> Uuid {
    testkit::query_value(
        &server.db.admin_client().await,
        "SELECT event_id FROM events WHERE stream_id = $1 \
         AND event_type = 'OnwardConnectionMade' AND payload->>'connection_id' = $2",
        &[&client, &connection.to_string()],
    )
    .await
}

fn ids(page: &Value) -> Vec<Value> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["connection_id"].clone())
        .collect()
}

#[tokio::test]
async fn a_provider_sees_only_the_connections_made_to_its_services_and_only_the_name_shared() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let client = connected(&server).await;

    let mine = server
        .get(&people.provider, "/api/v1/provider/connections")
        .await;
    assert_eq!(mine.status, 200, "{:#}", mine.body);
    assert_eq!(
        ids(&mine.body),
        vec![json!(REFERRED)],
        "no signposting, no other service"
    );
    let item = &mine.body["items"][0];
    assert_eq!(item["client_id"], json!(client));
    assert_eq!(item["service_id"], json!(server.provider_services[0]));
    assert_eq!(item["need"], "loneliness_isolation");
    assert_eq!(item["kind"], "referred");
    assert_eq!(item["answer"], Value::Null);
    assert_eq!(
        item["person"],
        json!({ "given_name": "Maggie", "family_initial": "T" })
    );
    assert!(
        !mine.body.to_string().contains("Thornbury"),
        "never the family name"
    );

    let theirs = server
        .get(&people.other_provider, "/api/v1/provider/connections")
        .await;
    assert_eq!(ids(&theirs.body), vec![json!(TO_OTHER_SERVICE)]);
    assert_eq!(
        theirs.body["items"][0]["person"],
        Value::Null,
        "consent no longer covers the second service"
    );

    // Nobody else lists them; a page out of bounds names its parameter.
    let worker = server
        .get(&people.worker, "/api/v1/provider/connections")
        .await;
    assert_eq!(worker.status, 403);
    let connections = "/api/v1/provider/connections?limit=0";
    server
        .get_refused(&people.provider, connections, "limit")
        .await;

    // Each list was a read of the person's record, audited where the record's auditors look.
    let reads = server
        .get(&people.auditor, &format!("/api/v1/clients/{client}/reads"))
        .await;
    assert_eq!(reads.status, 200, "{:#}", reads.body);
    let provider_reads: Vec<&Value> = reads.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|r| r["view"] == "provider_connections")
        .collect();
    assert_eq!(provider_reads.len(), 2, "{:#}", reads.body);
    assert!(provider_reads.iter().any(
        |r| r["staff_id"] == json!(people.provider.staff_id) && r["role"] == "service_provider"
    ));
    server.stop().await;
}

/// A connection's kind corrected: a referral corrected to signposting leaves its provider's
/// list and may not be answered; a signposting corrected to a referral joins it and may be;
/// a correction to a kind the consent does not cover the service for is refused naming the
/// field, as making the connection would be; and one answered is not corrected to signposting.
#[tokio::test]
async fn a_provider_sees_and_answers_a_connection_as_corrected() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let client = connected(&server).await;
    let correct = async |connection: Uuid, kind: &str| {
        let corrects = connection_event(&server, client, connection).await;
        let body = json!({ "corrects": corrects, "corrected_fields": { "kind": kind },
                           "reason": "recorded as the wrong kind" });
        let path = format!("/api/v1/clients/{client}/corrections");
        server.post(&people.worker, &path, body).await
    };
    let answer = async |connection: Uuid| {
        let path = format!("/api/v1/provider/clients/{client}/connection-acceptances");
        let body = json!({ "connection_id": connection });
        server.post(&people.provider, &path, body).await
    };

    // Consent no longer covers the second service: its warm handover is not made a referral.
    correct(TO_OTHER_SERVICE, "referred")
        .await
        .refused_at(422, "corrected_fields.kind");
    assert_eq!(correct(REFERRED, "signposted").await.status, 201);
    assert_eq!(correct(SIGNPOSTED, "referred").await.status, 201);
    let mine = server
        .read(&people.provider, "/api/v1/provider/connections")
        .await;
    assert_eq!(ids(&mine.body), vec![json!(SIGNPOSTED)], "{:#}", mine.body);
    assert_eq!(mine.body["items"][0]["kind"], "referred");
    assert_eq!(
        mine.body["items"][0]["person"]["given_name"], "Maggie",
        "consent covers the first service"
    );
    let signposted = answer(REFERRED).await;
    assert_eq!(signposted.status, 422, "{:#}", signposted.body);
    assert_eq!(signposted.body["rule"], "connection_not_shared");
    let accepted = answer(SIGNPOSTED).await;
    assert_eq!(accepted.status, 201, "{:#}", accepted.body);
    // The service has answered it: it was told of the person.
    correct(SIGNPOSTED, "signposted")
        .await
        .refused_at(422, "corrected_fields.kind");
    // Its need corrected: listed as corrected.
    let corrects = connection_event(&server, client, SIGNPOSTED).await;
    let need = json!({ "corrects": corrects, "corrected_fields": { "need": "physical_activity" },
                       "reason": "recorded under the wrong need" });
    let path = format!("/api/v1/clients/{client}/corrections");
    assert_eq!(server.post(&people.worker, &path, need).await.status, 201);
    let mine = server
        .read(&people.provider, "/api/v1/provider/connections")
        .await;
    assert_eq!(mine.body["items"][0]["need"], "physical_activity");
    server.stop().await;
}

/// A provider's list pages through what it is shown, newest first: every page but the last is
/// full, and `next_cursor` is set only when the next page has something in it, whatever
/// connections corrected to signposting lie among them (read, not shown, and their people not
/// in the read audit).
#[tokio::test]
async fn a_providers_pages_are_full_until_the_last() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let correct = async |client: Uuid, connection: Uuid, kind: &str| {
        let corrects = connection_event(&server, client, connection).await;
        let body = json!({ "corrects": corrects, "corrected_fields": { "kind": kind },
                           "reason": "recorded as the wrong kind" });
        let path = format!("/api/v1/clients/{client}/corrections");
        assert_eq!(server.post(&people.worker, &path, body).await.status, 201);
    };
    let client = connected(&server).await;
    correct(client, REFERRED, "signposted").await;
    correct(client, SIGNPOSTED, "referred").await;
    let (earlier, hidden, later) = (
        Uuid::from_u128(0xc4),
        Uuid::from_u128(0xc5),
        Uuid::from_u128(0xc6),
    );
    let first = server.provider_services[0];
    let connection = |id: Uuid, need: &str| {
        (
            "connections",
            json!({ "connection_id": id, "service_id": first, "need": need, "kind": "referred" }),
        )
    };
    recorded(&server, client, vec![connection(earlier, "housing")]).await;
    // Between them, another person's referral to the service, since corrected to signposting.
    let other = open_case(&server).await;
    referred_to_provider(&server, other, hidden).await;
    correct(other, hidden, "signposted").await;
    recorded(
        &server,
        client,
        vec![connection(later, "physical_activity")],
    )
    .await;

    // Newest first; REFERRED (now signposting) is the oldest, `hidden` between: neither shown.
    let shown = vec![json!(later), json!(earlier), json!(SIGNPOSTED)];
    for limit in 1..=4 {
        let (mut listed, mut cursor) = (Vec::new(), None::<i64>);
        loop {
            let path = match cursor {
                Some(c) => format!("/api/v1/provider/connections?limit={limit}&cursor={c}"),
                None => format!("/api/v1/provider/connections?limit={limit}"),
            };
            let page = server.read(&people.provider, &path).await;
            let items = ids(&page.body);
            cursor = page.body["next_cursor"].as_i64();
            if cursor.is_some() {
                assert_eq!(
                    items.len(),
                    limit,
                    "a page before the last is full: {:#}",
                    page.body
                );
            } else {
                assert!(!items.is_empty(), "no empty last page at limit {limit}");
            }
            listed.extend(items);
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(listed, shown, "limit {limit}");
    }
    // The person whose connection is not shown was not read by the provider; the other was.
    let provider_reads = async |client: Uuid| {
        let reads = server
            .read(&people.auditor, &format!("/api/v1/clients/{client}/reads"))
            .await;
        reads.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|r| r["view"] == "provider_connections")
            .count()
    };
    assert_eq!(provider_reads(other).await, 0);
    assert!(provider_reads(client).await > 0);

    // More hidden connections than ten pages' worth at the top: a page stops reading there,
    // empty, with a cursor, and the pages after it list the rest.
    for n in 0..21u128 {
        let id = Uuid::from_u128(0xd00 + n);
        recorded(&server, other, vec![connection(id, "housing")]).await;
        correct(other, id, "signposted").await;
    }
    let (mut listed, mut cursor, mut empty) = (Vec::new(), None::<i64>, 0);
    loop {
        let path = match cursor {
            Some(c) => format!("/api/v1/provider/connections?limit=1&cursor={c}"),
            None => "/api/v1/provider/connections?limit=1".to_owned(),
        };
        let page = server.read(&people.provider, &path).await;
        let items = ids(&page.body);
        empty += usize::from(items.is_empty());
        listed.extend(items);
        cursor = page.body["next_cursor"].as_i64();
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(listed, shown);
    assert_eq!(
        empty, 1,
        "the first page read twenty hidden rows and stopped"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_provider_accepts_once_then_says_whether_the_person_started_and_nobody_else_answers() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let client = connected(&server).await;
    let path = |what: &str| format!("/api/v1/provider/clients/{client}/{what}");
    // The provider's answer `what` (acceptance, decline, start) with `body`.
    let answer =
        async |what: &str, body: Value| server.post(&people.provider, &path(what), body).await;

    // Started before accepting: refused, at the connection.
    let early = answer(
        "connection-starts",
        json!({ "connection_id": REFERRED, "started": true }),
    )
    .await;
    assert_eq!(early.status, 422, "{:#}", early.body);
    assert_eq!(early.body["rule"], "connection_not_accepted");

    // Another service's provider, the record's own worker, another organisation: none answer.
    let accept = json!({ "connection_id": REFERRED });
    for (who, status) in [
        (&people.other_provider, 404),
        (&people.worker, 403),
        (&people.foreign_worker, 403),
    ] {
        let refused = server
            .post(who, &path("connection-acceptances"), accept.clone())
            .await;
        assert_eq!(refused.status, status, "{:#}", refused.body);
    }
    // Nor does the provider answer a connection to a service not theirs, or a signposting.
    let not_theirs = answer(
        "connection-acceptances",
        json!({ "connection_id": TO_OTHER_SERVICE }),
    )
    .await;
    assert_eq!(not_theirs.status, 404);
    let signposted = answer(
        "connection-declines",
        json!({ "connection_id": SIGNPOSTED, "reason": "no_capacity" }),
    )
    .await;
    assert_eq!(signposted.status, 422);
    assert_eq!(signposted.body["rule"], "connection_not_shared");
    // A reason not in the list names the field.
    let bad_reason = answer(
        "connection-declines",
        json!({ "connection_id": REFERRED, "reason": "busy" }),
    )
    .await;
    assert_eq!(bad_reason.status, 400, "{:#}", bad_reason.body);
    assert!(
        bad_reason.body.to_string().contains("reason"),
        "{:#}",
        bad_reason.body
    );

    // An If-Match names the header (a provider never sees the record's version, so it could
    // only watch it), and nothing is written.
    let acceptances = path("connection-acceptances");
    let versioned = server
        .call(
            Some(&people.provider),
            "POST",
            &acceptances,
            Some(&accept),
            &[("If-Match", "\"1\"")],
        )
        .await;
    versioned.refused_at(400, "header.If-Match");
    // The key the provider is about to use, used first by the service's staff on the record:
    // the provider's own keys never meet theirs (nothing is learnt of the keys used there).
    // Nor do they meet a staff key spelt as the provider's key is kept (a key the service makes
    // holds a space, which a caller's key never can).
    let key = [("Idempotency-Key", "provider-accept-1")];
    let staff_keyed = async |key: &str| {
        let connection = json!({ "connection_id": Uuid::new_v4(), "service_id": server.provider_services[0], "need": "housing", "kind": "signposted" });
        server
            .call(
                Some(&people.worker),
                "POST",
                &format!("/api/v1/clients/{client}/connections"),
                Some(&connection),
                &[("Idempotency-Key", key)],
            )
            .await
    };
    let kept_as = format!("provider:{}:provider-accept-1", people.provider.staff_id);
    for spelt in ["provider-accept-1", &kept_as, &kept_as.replace(':', "_")] {
        let planted = staff_keyed(spelt).await;
        assert_eq!(planted.status, 201, "{spelt}: {:#}", planted.body);
    }
    staff_keyed(&kept_as.replace(':', " "))
        .await
        .refused_at(400, "header.Idempotency-Key");

    // Accepted once; the same request again with its key is the first answer.
    let accept_keyed = async || {
        let by = Some(&people.provider);
        server
            .call(by, "POST", &acceptances, Some(&accept), &key)
            .await
    };
    let accepted = accept_keyed().await;
    assert_eq!(accepted.status, 201, "{:#}", accepted.body);
    let again = accept_keyed().await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body["position"], accepted.body["position"]);
    let twice = answer(
        "connection-declines",
        json!({ "connection_id": REFERRED, "reason": "no_capacity" }),
    )
    .await;
    assert_eq!(twice.status, 422);
    assert_eq!(twice.body["rule"], "connection_already_answered");

    let started = answer(
        "connection-starts",
        json!({ "connection_id": REFERRED, "started": true }),
    )
    .await;
    assert_eq!(started.status, 201, "{:#}", started.body);
    let mine = server
        .get(&people.provider, "/api/v1/provider/connections")
        .await;
    assert_eq!(mine.body["items"][0]["answer"], "started");

    // The link worker's record has the answers, as the provider's, on the record's organisation.
    let journey = server
        .get(
            &people.worker,
            &format!("/api/v1/clients/{client}/journey?limit=500"),
        )
        .await;
    let answers: Vec<&Value> = journey.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| {
            e["event_type"] == "ConnectionAcceptedByProvider"
                || e["event_type"] == "ConnectionStartRecorded"
        })
        .collect();
    assert_eq!(answers.len(), 2, "{:#}", journey.body);
    for answer in answers {
        assert_eq!(answer["actor_id"], json!(people.provider.staff_id));
        assert_eq!(
            answer["organisation_id"],
            json!(people.worker.organisation_id)
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn an_administrator_ties_only_their_own_provider_staff_to_their_own_services() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let added = server
        .post(
            &people.admin,
            "/api/v1/staff",
            json!({ "name": "Sid Service", "role": "service_provider", "team_id": null, "capacity": null }),
        )
        .await;
    assert_eq!(added.status, 201, "{:#}", added.body);
    let staff = added.body["staff_id"].as_str().expect("an id").to_owned();
    let tie = |service: Uuid| json!({ "service_id": service });
    let ties = format!("/api/v1/staff/{staff}/provider-services");

    let tied = server
        .post(&people.admin, &ties, tie(server.services[0]))
        .await;
    assert_eq!(tied.status, 201, "{:#}", tied.body);
    assert_eq!(tied.body["created"], true);
    let again = server
        .post(&people.admin, &ties, tie(server.services[0]))
        .await;
    assert_eq!(again.body["created"], false);
    // Another organisation's service (the provider organisation's): refused, as the directory
    // is public; a service nobody listed: absent.
    let theirs = server
        .post(&people.admin, &ties, tie(server.provider_services[0]))
        .await;
    assert_eq!(theirs.status, 403, "{:#}", theirs.body);
    let nothing = server.post(&people.admin, &ties, tie(Uuid::new_v4())).await;
    nothing.refused_at(422, "service_id");
    assert_eq!(
        nothing.body["rule"], "unknown_service",
        "{:#}",
        nothing.body
    );
    let removals = format!("/api/v1/staff/{staff}/provider-service-removals");
    let nothing = server
        .post(&people.admin, &removals, tie(Uuid::new_v4()))
        .await;
    nothing.refused_at(422, "service_id");
    assert_eq!(
        nothing.body["rule"], "unknown_service",
        "{:#}",
        nothing.body
    );
    // Another organisation's staff are not found; a link worker is not provider staff.
    let foreign = server
        .post(
            &people.admin,
            &format!(
                "/api/v1/staff/{}/provider-services",
                people.provider.staff_id
            ),
            tie(server.services[0]),
        )
        .await;
    assert_eq!(foreign.status, 404);
    assert_eq!(foreign.body["detail"], "no such staff member");
    let worker = server
        .post(
            &people.admin,
            &format!("/api/v1/staff/{}/provider-services", people.worker.staff_id),
            tie(server.services[0]),
        )
        .await;
    worker.refused_at(400, "staff_id");

    let removed = server
        .post(
            &people.admin,
            &format!("/api/v1/staff/{staff}/provider-service-removals"),
            tie(server.services[0]),
        )
        .await;
    assert_eq!(removed.status, 200, "{:#}", removed.body);
    assert_eq!(removed.body["removed"], true);
    let count: i64 = testkit::query_value(
        &server.db.admin_client().await,
        "SELECT count(*) FROM provider_services WHERE staff_id = $1::text::uuid",
        &[&staff],
    )
    .await;
    assert_eq!(count, 0);
    server.stop().await;
}

/// The gap report counts, per service and need, what the service itself answered: accepted,
/// declined, and the people who started, each under the small-number rule.
#[tokio::test]
async fn the_gap_report_counts_what_each_service_answered() {
    let server = TestServer::start().await;
    let people = &server.people;
    let service = server.provider_services[0];
    let mut connections = Vec::new();
    for _ in 0..7 {
        let client = open_case(&server).await;
        let connection = Uuid::new_v4();
        server
            .ok(
                &people.worker,
                &format!("/api/v1/clients/{client}/consents"),
                json!({ "scope": "share_with_onward_services", "services": [service] }),
            )
            .await;
        server
            .ok(
                &people.worker,
                &format!("/api/v1/clients/{client}/connections"),
                json!({ "connection_id": connection, "service_id": service, "need": "loneliness_isolation", "kind": "referred" }),
            )
            .await;
        connections.push((client, connection));
    }
    // Six accepted, five of whom started; one declined; none of it typed by the link worker.
    let mut last = 0;
    for (n, (client, connection)) in connections.iter().enumerate() {
        let path = |what: &str| format!("/api/v1/provider/clients/{client}/{what}");
        if n == 6 {
            let declined = server
                .ok(
                    &people.provider,
                    &path("connection-declines"),
                    json!({ "connection_id": connection, "reason": "no_capacity" }),
                )
                .await;
            last = declined.body["position"].as_i64().expect("a position");
            continue;
        }
        server
            .ok(
                &people.provider,
                &path("connection-acceptances"),
                json!({ "connection_id": connection }),
            )
            .await;
        if n < 5 {
            let started = server
                .ok(
                    &people.provider,
                    &path("connection-starts"),
                    json!({ "connection_id": connection, "started": true }),
                )
                .await;
            last = started.body["position"].as_i64().expect("a position");
        }
    }
    server.catch_up().await;
    let report = server
        .read(
            &people.analyst,
            &format!("/api/v1/reports/service-gaps?after={last}"),
        )
        .await
        .body;
    let row = report["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .find(|c| c["service_id"] == json!(service))
        .unwrap_or_else(|| panic!("the service's row: {report:#}"));
    assert_eq!(row["made"], 7, "{row:#}");
    assert_eq!(row["accepted_by_service"], 6, "{row:#}");
    assert_eq!(row["started_with_service"], 5, "{row:#}");
    assert_eq!(
        row["declined_by_service"],
        Value::Null,
        "one: suppressed {row:#}"
    );
    // What the link worker recorded of the outcome is apart: nothing here.
    assert_eq!(row["not_taken_up"], 0);
}
