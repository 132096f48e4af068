//! Bad input on every route: each gets a 4xx problem naming the field, never a 500, and
//! nothing is written.

use serde_json::{Value, json};
use uuid::Uuid;

use super::journey::{client_path, open_case};
use super::matrix::body;
use super::{Person, TestServer};

fn truncated(body: &Value) -> Vec<u8> {
    let text = body.to_string();
    text.as_bytes()[..text.len() - 2].to_vec()
}

/// A body just over the route's limit.
fn oversize(operation: &str) -> usize {
    match operation {
        "import" => api::http::IMPORT_LIMIT + 1024,
        _ => api::http::BODY_LIMIT + 1024,
    }
}

fn field(reply: &super::Reply) -> &str {
    reply.body["errors"][0]["field"].as_str().unwrap_or("")
}

#[tokio::test]
async fn every_route_names_the_bad_field_and_writes_nothing() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let client = open_case(&server).await;
    let version_before = server.store.stream_version(client).await.expect("version");
    let spec = api::http::openapi_json();
    let mut checked = 0;
    for (template, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("methods") {
            let id = operation["operationId"].as_str().expect("an id");
            let who: &Person = match operation["tags"][0].as_str() {
                Some("admin" | "directory") => &people.admin,
                Some("service") => continue,
                _ if id == "record_reads" => &people.auditor,
                Some("provider") => &people.provider,
                _ => &people.lead,
            };
            // FHIR's routes answer bad input as OperationOutcomes naming the element, take any
            // id (an unknown one is 404), and ignore elements they do not read, as FHIR servers
            // do: `http::fhir` tests them.
            if id.starts_with("fhir_") {
                continue;
            }
            let method = method.to_ascii_uppercase();
            let path = template
                .replace("{client_id}", &client.to_string())
                .replace("{referral_id}", &Uuid::new_v4().to_string())
                .replace(
                    "{team_id}",
                    &people.lead.team_id.expect("a team").to_string(),
                )
                .replace("{staff_id}", &people.worker.staff_id.to_string())
                .replace("{token_id}", &Uuid::new_v4().to_string())
                .replace("{service_id}", &server.services[0].to_string())
                .replace("{id}", &server.services[0].to_string())
                .replace("{task_id}", &Uuid::new_v4().to_string());

            // A path id that is not a UUID.
            if template.contains('{') {
                let bad = template
                    .split('/')
                    .map(|part| {
                        if part.starts_with('{') {
                            "not-a-uuid"
                        } else {
                            part
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                let reply = server
                    .call_raw(who, &method, &bad, b"{}".to_vec(), "application/json")
                    .await;
                assert_eq!(reply.status, 400, "{method} {bad}: {:#}", reply.body);
                assert!(
                    field(&reply).starts_with("path"),
                    "{method} {bad}: {:#}",
                    reply.body
                );
                checked += 1;
            }

            // A query parameter the operation does not take (a misspelt filter): refused
            // naming it, beside one it does take, never ignored. (The Open Referral UK
            // routes, for any directory client, ignore what they do not read, as FHIR's do.)
            let known = operation["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["in"] == "query"))
                .and_then(|p| p["name"].as_str());
            let query = match known {
                Some(name) => format!("{name}=1&not_a_parameter=1"),
                None => "not_a_parameter=1".to_owned(),
            };
            if path.starts_with("/api/v1/") {
                let with = format!("{path}?{query}");
                let reply = server
                    .call_raw(who, &method, &with, b"{}".to_vec(), "application/json")
                    .await;
                assert_eq!(reply.status, 400, "{method} {with}: {:#}", reply.body);
                let errors = reply.body["errors"].as_array().expect("errors");
                assert_eq!(errors.len(), 1, "{method} {with}: {:#}", reply.body);
                assert_eq!(field(&reply), "query.not_a_parameter");
                checked += 1;
            }

            if method == "GET" {
                let params: Vec<&str> = operation["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "query")
                            .filter_map(|p| p["name"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                if params.contains(&"limit") {
                    for bad in ["abc", "0", "100000"] {
                        let reply = server.get(who, &format!("{path}?limit={bad}")).await;
                        assert_eq!(reply.status, 400, "{path}?limit={bad}");
                        assert_eq!(
                            field(&reply),
                            "query.limit",
                            "{path}?limit={bad}: {:#}",
                            reply.body
                        );
                    }
                    checked += 1;
                }
                if params.contains(&"as_of") {
                    let reply = server
                        .get(who, &format!("{path}?as_of=last%20tuesday"))
                        .await;
                    assert_eq!(reply.status, 400);
                    assert_eq!(field(&reply), "query.as_of", "{:#}", reply.body);
                }
                continue;
            }

            let Some(good) = body(id, &people, Uuid::new_v4(), &server.services) else {
                // Routes without a body (a revocation).
                continue;
            };
            let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
                (truncated(&good), "application/json", 400, "body"),
                (b"[1, 2]".to_vec(), "application/json", 400, "body"),
                (
                    format!("{good} trailing").into_bytes(),
                    "application/json",
                    400,
                    "body",
                ),
                (good.to_string().into_bytes(), "text/plain", 415, ""),
                (vec![b' '; oversize(id)], "application/json", 413, ""),
            ];
            for (bytes, content_type, status, named) in cases {
                let reply = server
                    .call_raw(who, &method, &path, bytes, content_type)
                    .await;
                assert_eq!(
                    reply.status, status,
                    "{method} {path} ({content_type}): {:#}",
                    reply.body
                );
                if !named.is_empty() {
                    assert_eq!(field(&reply), named, "{method} {path}: {:#}", reply.body);
                }
            }
            // An unknown field, at the top and nested. (An ORUK page carries fields Casebook
            // does not read, so an import takes them.)
            if id == "import" {
                checked += 1;
                continue;
            }
            let mut unknown = good.clone();
            unknown["surprise"] = json!(1);
            let reply = server.post(who, &path, unknown).await;
            assert_eq!(reply.status, 400, "{method} {path}");
            assert_eq!(
                field(&reply),
                "surprise",
                "{method} {path}: {:#}",
                reply.body
            );
            // A key given twice: refused naming it (never read as the last of them).
            if let Some((key, value)) = good.as_object().and_then(|o| o.iter().next()) {
                let text = good.to_string();
                let twice = format!("{{{}:{value},{}", json!(key), &text[1..]);
                let reply = server
                    .call_raw(who, &method, &path, twice.into_bytes(), "application/json")
                    .await;
                assert_eq!(reply.status, 400, "{method} {path}: {:#}", reply.body);
                assert_eq!(field(&reply), key, "{method} {path}: {:#}", reply.body);
            }
            // Every required field missing: the first is named (optional fields may be left out;
            // an enrolment's only field is optional).
            let required = id != "enrol"
                && good
                    .as_object()
                    .is_some_and(|o| o.values().any(|v| !v.is_null()));
            if required {
                let reply = server.post(who, &path, json!({})).await;
                assert_eq!(reply.status, 400, "{method} {path}: {:#}", reply.body);
                assert!(
                    !field(&reply).is_empty(),
                    "{method} {path}: {:#}",
                    reply.body
                );
            }
            // Each field of the wrong type.
            if let Value::Object(fields) = &good {
                for (name, value) in fields {
                    let mut wrong = good.clone();
                    wrong[name] = match value {
                        Value::String(_) | Value::Null => json!({ "not": "a string" }),
                        _ => json!("wrong"),
                    };
                    let reply = server.post(who, &path, wrong).await;
                    if reply.status == 201 {
                        // A free-form field (corrected values) takes anything.
                        continue;
                    }
                    assert_eq!(
                        reply.status, 400,
                        "{method} {path} with {name} wrong: {:#}",
                        reply.body
                    );
                    assert!(
                        field(&reply).starts_with(name.as_str()),
                        "{method} {path} with {name} wrong: {:#}",
                        reply.body
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} routes checked");
    // A path written with a percent-escape is the path the router serves: its query is held
    // to the same parameters, and it needs the same token.
    server
        .get_refused(
            &people.worker,
            "/api/v1/c%61seload?not_a_parameter=1",
            "not_a_parameter",
        )
        .await;
    assert_eq!(server.get_public("/%61pi/v1/caseload").await.status, 401);
    assert_eq!(
        server.store.stream_version(client).await.expect("version"),
        version_before,
        "no bad request wrote anything"
    );

    // Nested fields are named by their path.
    let mut referral = super::journey::intake(Uuid::new_v4(), "gp");
    referral["referral"]["reasons"] = json!(["mental_wellbeing", "boredom"]);
    let reply = super::journey::refer(&server, &people.referrer, referral).await;
    assert_eq!(reply.status, 400);
    assert_eq!(field(&reply), "referral.reasons[1]", "{:#}", reply.body);
    let mut nhs = super::journey::intake(Uuid::new_v4(), "gp");
    nhs["client"]["personal"]["nhs_number"] = json!("943 476 5918");
    let reply = super::journey::refer(&server, &people.referrer, nhs).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        field(&reply),
        "client.personal.nhs_number",
        "{:#}",
        reply.body
    );
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("check digit")
    );
    // NUL cannot be stored in PostgreSQL text: refused up front, naming the field.
    let reply = server
        .post(
            &people.worker,
            &client_path(client, "what-matters"),
            json!({ "text": "tea\u{0}and biscuits" }),
        )
        .await;
    assert_eq!(reply.status, 400, "{:#}", reply.body);
    assert_eq!(field(&reply), "text");
    let reply = server
        .get(
            &people.worker,
            &format!("{}?purpose=audit%00", client_path(client, "")),
        )
        .await;
    assert_eq!(reply.status, 400, "{:#}", reply.body);
    assert_eq!(field(&reply), "query.purpose");
    // A command on a record that does not exist: no such record (only a referral creates one).
    let reply = server
        .post(
            &people.lead,
            &client_path(Uuid::new_v4(), "what-matters"),
            json!({ "text": "anything" }),
        )
        .await;
    assert_eq!(reply.status, 404, "{:#}", reply.body);
    // Values the schema bounds are refused when out of bounds.
    let reply = server
        .post(
            &people.admin,
            "/api/v1/staff",
            json!({ "name": "Big", "role": "link_worker", "team_id": people.lead.team_id, "capacity": 100_001 }),
        )
        .await;
    assert_eq!(reply.status, 422, "{:#}", reply.body);
    assert_eq!(field(&reply), "capacity");
    // A domain refusal is a 422 naming its rule.
    let reply = server
        .post(
            &people.worker,
            &client_path(client, "goal-reviews"),
            json!({ "goal_id": Uuid::new_v4(), "progress": "achieved", "note": null }),
        )
        .await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.body["rule"], "unknown_goal");
    assert_eq!(field(&reply), "goal_id");
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let reply = server.get(&people.lead, "/api/v1/nothing-here").await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let reply = server
        .call(Some(&people.lead), "DELETE", "/api/v1/caseload", None, &[])
        .await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET"));
    let reply = server
        .call(
            Some(&people.lead),
            "GET",
            &format!("/api/v1/clients/{}/contacts", Uuid::new_v4()),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    assert!(reply.header("x-request-id").is_some());
    assert_eq!(
        reply.body["request_id"].as_str(),
        reply.header("x-request-id")
    );
    server.stop().await;
}

/// A body that stalls half way is cut off after the bounded wait with a problem naming the
/// body, and nothing is written: a slow sender cannot hold a connection open for long.
#[tokio::test]
async fn a_body_that_stalls_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let client = uuid::Uuid::new_v4();
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("a connection");
    let head = format!(
        "POST /api/v1/clients/{client}/referrals HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n\
         {{\"client\": ",
        server.people.referrer.token
    );
    stream.write_all(head.as_bytes()).await.expect("the head");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut answer),
    )
    .await;
    let waited = started.elapsed();
    assert!(read.is_ok(), "the server held the connection for 30 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"field\":\"body\""), "{answer}");
    assert!(
        waited >= api::http::extract::BODY_READ_TIMEOUT - std::time::Duration::from_secs(1),
        "{waited:?}"
    );
    assert_eq!(
        server.store.stream_version(client).await.expect("version"),
        0
    );
    server.stop().await;
}

/// `body` as JSON text with `key` given a second time, as `again`, right after its first
/// `"key":value`: the bytes a test sends.
pub(super) fn with_key_twice(body: &Value, key: &str, value: &Value, again: &Value) -> Vec<u8> {
    let text = body.to_string();
    let first = format!("{}:{value}", json!(key));
    let twice = text.replacen(&first, &format!("{first},{}:{again}", json!(key)), 1);
    assert_ne!(twice, text, "{first} is not in the body");
    twice.into_bytes()
}

/// A key given twice inside a command's body (the person's given name, nested) is refused
/// naming it, and nothing is written: serde_json's own map would have kept the last silently.
#[tokio::test]
async fn a_key_given_twice_deep_in_a_body_is_refused_naming_it() {
    let server = TestServer::start().await;
    let client = Uuid::new_v4();
    let twice = with_key_twice(
        &super::journey::intake(Uuid::new_v4(), "gp"),
        "given_name",
        &json!("Maggie"),
        &json!("Margaret"),
    );
    let reply = server
        .call_raw(
            &server.people.lead,
            "POST",
            &client_path(client, "referrals"),
            twice,
            "application/json",
        )
        .await;
    assert_eq!(reply.status, 400, "{:#}", reply.body);
    assert_eq!(
        field(&reply),
        "client.personal.given_name",
        "{:#}",
        reply.body
    );
    let none = server
        .get(&server.people.lead, &client_path(client, ""))
        .await;
    assert_eq!(none.status, 404, "nothing written: {:#}", none.body);
    server.stop().await;
}

/// A key given twice inside a free-form part of a body (a directory import's service) is
/// refused naming it, and nothing is imported.
#[tokio::test]
async fn a_key_given_twice_in_an_import_is_refused_naming_it() {
    let server = TestServer::start().await;
    let service = Uuid::new_v4();
    let body = json!({ "contents": [
        crate::support::oruk_service(service, "Walking group", &["physical_activity"], "Frome"),
    ] });
    let twice = with_key_twice(
        &body,
        "name",
        &json!("Walking group"),
        &json!("Knitting circle"),
    );
    let reply = server
        .call_raw(
            &server.people.admin,
            "POST",
            "/api/v1/directory/import",
            twice,
            "application/json",
        )
        .await;
    assert_eq!(reply.status, 400, "{:#}", reply.body);
    assert_eq!(field(&reply), "contents[0].name", "{:#}", reply.body);
    let none = server
        .get(
            &server.people.admin,
            &format!("/api/v1/directory/services/{service}"),
        )
        .await;
    assert_eq!(none.status, 404, "nothing imported: {:#}", none.body);
    server.stop().await;
}
