//! The HTTP API end to end: a real server on a real database, called over HTTP, with every
//! response checked against the OpenAPI document (its status must be documented for the
//! operation, and its body must match the documented schema).

mod after;
mod cohort;
mod console;
mod console_admin;
mod console_connect;
mod console_crawl;
mod console_journey;
mod console_link_worker;
mod console_names;
mod console_oidc;
mod console_plan;
mod console_provider;
mod console_stale;
mod console_tasks;
mod console_versions;
mod csv_files;
mod dating;
mod directory_owner;
mod equity;
pub mod fhir;
mod gp_messages;
pub mod journey;
mod known_person;
mod lone_working;
mod malformed;
mod matrix;
mod metrics_access;
mod no_answer;
mod provider;
mod published;
mod redirections;
mod reminders;
mod replica;
mod safeguarding;
mod snapshot_jobs;
mod tags;
mod tasks;
mod token_memory;
mod tokens;
mod unreachable;

use std::sync::Arc;

use actix_web::dev::ServerHandle;
use app::access::{self, NewStaff, Role};
use eventstore::EventStore;
use serde_json::{Value, json};
use testkit::TestDb;
use uuid::Uuid;

/// A staff member with a token.
#[derive(Clone, Debug)]
pub struct Person {
    pub staff_id: Uuid,
    pub organisation_id: Uuid,
    pub team_id: Option<Uuid>,
    pub token: String,
}

/// Everyone the tests act as: two teams in one organisation, and another organisation.
#[derive(Clone, Debug)]
pub struct People {
    pub referrer: Person,
    pub lead: Person,
    pub worker: Person,
    /// A second link worker in the lead's team.
    pub worker2: Person,
    /// The lead and a worker of another team in the same organisation.
    pub other_lead: Person,
    pub other_worker: Person,
    pub auditor: Person,
    pub analyst: Person,
    pub admin: Person,
    /// Another organisation's staff.
    pub foreign_lead: Person,
    pub foreign_worker: Person,
    pub foreign_auditor: Person,
    pub foreign_admin: Person,
    /// A GP practice's system (a client credential) of the first organisation.
    pub practice: Person,
    /// Provider staff of a third organisation (a voluntary organisation), tied to the first of
    /// its services (`TestServer::provider_services`).
    pub provider: Person,
    /// Provider staff of the same organisation, tied to its second service only.
    pub other_provider: Person,
}

impl People {
    /// Every person, with a name for messages.
    pub fn all(&self) -> Vec<(&'static str, &Person)> {
        vec![
            ("referrer", &self.referrer),
            ("lead", &self.lead),
            ("worker", &self.worker),
            ("worker2", &self.worker2),
            ("other_lead", &self.other_lead),
            ("other_worker", &self.other_worker),
            ("auditor", &self.auditor),
            ("analyst", &self.analyst),
            ("admin", &self.admin),
            ("foreign_lead", &self.foreign_lead),
            ("foreign_worker", &self.foreign_worker),
            ("foreign_auditor", &self.foreign_auditor),
            ("foreign_admin", &self.foreign_admin),
            ("practice", &self.practice),
            ("provider", &self.provider),
            ("other_provider", &self.other_provider),
        ]
    }
}

/// A running server over a fresh database.
pub struct TestServer {
    pub db: TestDb,
    pub store: EventStore,
    pub base: String,
    pub people: People,
    /// Services listed in the directory (from the sample) by the organisation of `lead`, for
    /// connections.
    pub services: Vec<Uuid>,
    /// Services listed by the provider organisation: `provider` answers for the first,
    /// `other_provider` for the second.
    pub provider_services: Vec<Uuid>,
    handle: ServerHandle,
    /// Holds the caseload projection's lease across catch-ups.
    pub holder: Uuid,
    http: reqwest::Client,
    spec: Arc<Value>,
}

/// A response, its body parsed.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Insists on `status`, with the first error naming `field`.
    pub fn refused_at(&self, status: u16, field: &str) {
        assert_eq!(self.status, status, "{:#}", self.body);
        let named = &self.body["errors"][0]["field"];
        assert_eq!(named, field, "{:#}", self.body);
    }
}

async fn person(
    admin: &tokio_postgres::Client,
    organisation_id: Uuid,
    team_id: Option<Uuid>,
    role: Role,
    name: &str,
) -> Person {
    let member = access::add_staff(
        admin,
        &NewStaff {
            organisation_id,
            team_id,
            name: name.to_owned(),
            role,
            capacity: role.needs_team().then_some(220),
        },
    )
    .await
    .expect("adding staff");
    let token = access::issue_token(
        admin,
        member.staff_id,
        chrono::Duration::days(1),
        "test",
        access::TokenIssuer::Operator,
    )
    .await
    .expect("issuing a token");
    Person {
        staff_id: member.staff_id,
        organisation_id,
        team_id,
        token: token.token,
    }
}

/// Projectors running in the background, as `casebook serve` runs them; stopped when dropped.
pub struct BackgroundProjectors {
    stop: tokio::sync::watch::Sender<bool>,
    _listener: eventstore::Listener,
}

impl Drop for BackgroundProjectors {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A client's record on a test server: posts go to what is under it
/// (`/api/v1/clients/{client}/{what}`).
pub struct OnRecord<'a> {
    server: &'a TestServer,
    client: Uuid,
}

impl OnRecord<'_> {
    /// Posts `body` to `what` under the record.
    pub async fn post(&self, who: &Person, what: &str, body: Value) -> Reply {
        let path = journey::client_path(self.client, what);
        self.server.post(who, &path, body).await
    }

    /// [`OnRecord::post`], insisting on 201.
    pub async fn ok(&self, who: &Person, what: &str, body: Value) -> Reply {
        let path = journey::client_path(self.client, what);
        self.server.ok(who, &path, body).await
    }
}

impl TestServer {
    /// A server whose reads wait for `?after=` as long as the service's default allows.
    pub async fn start() -> TestServer {
        TestServer::start_with(app::Clock::system(), app::ReadWait::default().max_wait).await
    }

    /// A server whose rules read the time from `clock` (a fixed one a test moves on).
    pub async fn start_with_clock(clock: app::Clock) -> TestServer {
        TestServer::start_with(clock, app::ReadWait::default().max_wait).await
    }

    /// A server whose reads wait for `?after=` at most `max_wait`.
    pub async fn start_waiting(max_wait: std::time::Duration) -> TestServer {
        TestServer::start_with(app::Clock::system(), max_wait).await
    }

    /// A server whose rules read the time from `clock` and whose reads wait for `?after=` at
    /// most `max_wait`.
    pub async fn start_with(clock: app::Clock, max_wait: std::time::Duration) -> TestServer {
        TestServer::start_over(clock, max_wait, |db| db.app_pool(8)).await
    }

    /// A server whose store's connections come from `pool` (made for the test database), e.g.
    /// through a proxy a test can cut.
    pub async fn start_over(
        clock: app::Clock,
        max_wait: std::time::Duration,
        pool: impl FnOnce(&TestDb) -> db::Pool,
    ) -> TestServer {
        TestServer::start_full(clock, max_wait, pool, None).await
    }

    /// A server whose web console signs in with the OpenID provider `oidc`.
    pub async fn start_with_oidc(oidc: casebook::http::ConsoleOidc) -> TestServer {
        TestServer::start_full(
            app::Clock::system(),
            app::ReadWait::default().max_wait,
            |db| db.app_pool(8),
            Some(oidc),
        )
        .await
    }

    async fn start_full(
        clock: app::Clock,
        max_wait: std::time::Duration,
        pool: impl FnOnce(&TestDb) -> db::Pool,
        oidc: Option<casebook::http::ConsoleOidc>,
    ) -> TestServer {
        testkit::init_tracing();
        let db = TestDb::new().await;
        let store = crate::support::protected(EventStore::new(pool(&db), app::upcasters()));
        let admin = db.admin_client().await;
        let org = access::ensure_organisation(&admin, "Mendip Link")
            .await
            .expect("organisation");
        let foreign = access::ensure_organisation(&admin, "Connect North")
            .await
            .expect("organisation");
        let team = access::ensure_team(&admin, org, "Frome")
            .await
            .expect("team")
            .0;
        let team2 = access::ensure_team(&admin, org, "Shepton")
            .await
            .expect("team")
            .0;
        let provider_org = access::ensure_organisation(&admin, "Frome Community Hub")
            .await
            .expect("organisation");
        let foreign_team = access::ensure_team(&admin, foreign, "Leeds")
            .await
            .expect("team")
            .0;
        let people = People {
            referrer: person(&admin, org, None, Role::Referrer, "Dr Rees").await,
            lead: person(&admin, org, Some(team), Role::TeamLead, "Lena Lead").await,
            worker: person(&admin, org, Some(team), Role::LinkWorker, "Wyn Worker").await,
            worker2: person(&admin, org, Some(team), Role::LinkWorker, "Wren Worker").await,
            other_lead: person(&admin, org, Some(team2), Role::TeamLead, "Omar Lead").await,
            other_worker: person(&admin, org, Some(team2), Role::LinkWorker, "Ola Worker").await,
            auditor: person(&admin, org, None, Role::Auditor, "Audrey Auditor").await,
            analyst: person(&admin, org, None, Role::ReportingAnalyst, "Ana Analyst").await,
            admin: person(&admin, org, None, Role::Administrator, "Adam Admin").await,
            foreign_lead: person(
                &admin,
                foreign,
                Some(foreign_team),
                Role::TeamLead,
                "Fay Lead",
            )
            .await,
            foreign_worker: person(
                &admin,
                foreign,
                Some(foreign_team),
                Role::LinkWorker,
                "Finn Worker",
            )
            .await,
            foreign_auditor: person(&admin, foreign, None, Role::Auditor, "Flo Auditor").await,
            foreign_admin: person(&admin, foreign, None, Role::Administrator, "Fred Admin").await,
            practice: person(
                &admin,
                org,
                None,
                Role::PracticeSystem,
                "Frome Medical Practice system",
            )
            .await,
            provider: person(
                &admin,
                provider_org,
                None,
                Role::ServiceProvider,
                "Pia Provider",
            )
            .await,
            other_provider: person(
                &admin,
                provider_org,
                None,
                Role::ServiceProvider,
                "Otto Provider",
            )
            .await,
        };
        // Listed by the first organisation: its administrator and team leads may change them,
        // the other's staff may only connect people to them.
        let services = crate::support::list_sample_services_for(&store, 3, org).await;
        // The provider organisation's own services (the next two of the sample), each tied to
        // one of its provider staff.
        let provider_services =
            crate::support::list_more_sample_services_for(&store, 3, 2, provider_org).await;
        for (person, service) in [&people.provider, &people.other_provider]
            .into_iter()
            .zip(&provider_services)
        {
            admin
                .execute(
                    "INSERT INTO provider_services (staff_id, service_id, organisation_id) \
                     VALUES ($1, $2, $3)",
                    &[&person.staff_id, service, &provider_org],
                )
                .await
                .expect("a provider tied to its service");
        }
        // The tests probe every route with bad tokens from one address: the guessing limit is
        // tested on a server of its own (`metrics_access`).
        let state = api::http::AppState::with_clock(store.clone(), clock)
            .with_read_wait(app::ReadWait::at_most(max_wait))
            .with_auth_failure_limit(100_000);
        let app =
            casebook::Application::build_with_oidc("127.0.0.1:0", state, oidc).expect("binding");
        let base = format!("http://{}", app.address());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let server = TestServer {
            db,
            store,
            base,
            people,
            services,
            provider_services,
            handle,
            holder: Uuid::new_v4(),
            // Idle connections are dropped before the server's keep-alive (5 s) closes them, so
            // a request after a pause never goes out on a connection the server is closing.
            http: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(3))
                .build()
                .expect("an HTTP client"),
            spec: Arc::new(api::http::openapi_json()),
        };
        server.catch_up().await;
        server
    }

    /// Sends a request as `who` (None: no token) and checks the response against the spec.
    pub async fn call(
        &self,
        who: Option<&Person>,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(person) = who {
            request = request.bearer_auth(&person.token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        let reply = Reply {
            status,
            headers,
            body,
        };
        check_against_spec(&self.spec, method.as_str(), path, &reply);
        reply
    }

    /// Sends raw bytes with a content type, checked against the spec like any call.
    pub async fn call_raw(
        &self,
        who: &Person,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let response = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&who.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let reply = Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        };
        check_against_spec(&self.spec, method.as_str(), path, &reply);
        reply
    }

    pub async fn get(&self, who: &Person, path: &str) -> Reply {
        self.call(Some(who), "GET", path, None, &[]).await
    }

    /// Gets `path` as `who`, expecting a 400 that names the query parameter `field`.
    pub async fn get_refused(&self, who: &Person, path: &str, field: &str) {
        let reply = self.get(who, path).await;
        assert_eq!(reply.status, 400, "{path}: {:#}", reply.body);
        let named = &reply.body["errors"][0]["field"];
        assert_eq!(named, &format!("query.{field}"), "{path}: {:#}", reply.body);
    }

    /// Gets with no credentials, as the public does.
    pub async fn get_public(&self, path: &str) -> Reply {
        self.call(None, "GET", path, None, &[]).await
    }

    pub async fn post(&self, who: &Person, path: &str, body: Value) -> Reply {
        self.call(Some(who), "POST", path, Some(&body), &[]).await
    }

    /// The id of the one event of `event_type` on `client`'s record.
    pub async fn event_id(&self, client: &Uuid, event_type: &str) -> Uuid {
        testkit::query_value(
            &self.db.admin_client().await,
            "SELECT event_id FROM events WHERE stream_id = $1 AND event_type = $2",
            &[client, &event_type],
        )
        .await
    }

    /// The outcome report the reporting analyst reads once every projection has caught up.
    pub async fn caught_up_outcomes(&self) -> Value {
        self.catch_up().await;
        self.read(&self.people.analyst, "/api/v1/reports/outcomes")
            .await
            .body
    }

    /// Starts a snapshot of the outcome report as known at `known_at` (an RFC 3339 time) and
    /// insists on 202; the snapshot.
    pub async fn start_snapshot(&self, who: &Person, known_at: Value) -> Value {
        let started = self
            .post(
                who,
                "/api/v1/reports/outcomes/snapshots",
                json!({ "known_at": known_at }),
            )
            .await;
        assert_eq!(started.status, 202, "{:#}", started.body);
        started.body
    }

    /// The entries of `client`'s journey (its first 500) as the auditor reads them.
    pub async fn journey_entries(&self, client: Uuid) -> Vec<Value> {
        let path = format!("/api/v1/clients/{client}/journey?limit=500");
        let reply = self.read(&self.people.auditor, &path).await;
        reply.body["entries"].as_array().expect("entries").clone()
    }

    /// The types of the events of `client`'s journey, in order, as the auditor reads them.
    pub async fn journey_types(&self, client: Uuid) -> Vec<String> {
        self.journey_entries(client)
            .await
            .iter()
            .map(|e| e["event_type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Gets and insists on 200.
    pub async fn read(&self, who: &Person, path: &str) -> Reply {
        let reply = self.get(who, path).await;
        assert_eq!(reply.status, 200, "GET {path}: {:#}", reply.body);
        reply
    }

    /// `client`'s record, to post to what is under it.
    pub fn on(&self, client: Uuid) -> OnRecord<'_> {
        OnRecord {
            server: self,
            client,
        }
    }

    /// Posts and insists on 201.
    pub async fn ok(&self, who: &Person, path: &str, body: Value) -> Reply {
        let reply = self.post(who, path, body).await;
        assert_eq!(reply.status, 201, "POST {path}: {:#}", reply.body);
        reply
    }

    /// Brings the read models (the caseload, the directory, the outcomes under every rule
    /// version there is) up to the log.
    pub async fn catch_up(&self) {
        let projections = projector::all(&self.store).await.expect("the projections");
        for projection in projections {
            let runner = projector::Runner::new(
                self.store.clone(),
                projection,
                self.holder,
                projector::RunnerSettings::default(),
            );
            runner.catch_up().await.expect("catching up");
        }
    }

    /// Moves the projection `name` back to the start of the log (its `reset`), under the lease
    /// [`TestServer::catch_up`] holds; the next catch-up replays the whole log into it.
    pub async fn reset_projection(&self, name: &str) {
        let projections = projector::all(&self.store).await.expect("the projections");
        let projection = projections
            .into_iter()
            .find(|p| p.name() == name)
            .unwrap_or_else(|| panic!("no projection {name}"));
        projector::Runner::new(
            self.store.clone(),
            projection,
            self.holder,
            projector::RunnerSettings::default(),
        )
        .reset()
        .await
        .expect("resetting");
    }

    /// Starts every projection's runner in the background, as `casebook serve` does (woken by
    /// appends through a listener), after giving up the leases [`TestServer::catch_up`] holds.
    pub async fn run_projectors(&self) -> BackgroundProjectors {
        let client = self.db.app_client().await;
        for projection in projector::all(&self.store).await.expect("the projections") {
            projector::bookkeeping::release_lease(&client, projection.name(), self.holder)
                .await
                .expect("giving up a lease");
        }
        let listener = eventstore::Listener::start(self.db.app_config());
        let store = self.store.clone().with_listener(&listener);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        projector::spawn_all(&store, &stopped)
            .await
            .expect("starting the projectors");
        BackgroundProjectors {
            stop,
            _listener: listener,
        }
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// The operation of the spec a concrete path and method fall under: of the templates that fit,
/// the one with the most literal text (`/explanations/{explanation_id}.csv` before
/// `/explanations/{explanation_id}` for a path ending in `.csv`).
fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> Option<(&'a str, &'a Value)> {
    let path = path.split('?').next().unwrap_or(path);
    // As the router reads it: a percent-escape stands for its character (test paths hold no
    // '+', '&' or '=', which this decoding would read otherwise).
    let decoded: String = url::form_urlencoded::parse(path.as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default();
    let path = if path.contains('%') {
        decoded.as_str()
    } else {
        path
    };
    let paths = spec["paths"].as_object()?;
    // A template segment `{name}` or `{name}<suffix>` fits a non-empty segment ending so.
    let fits_segment = |t: &str, p: &str| match t.strip_prefix('{').and_then(|t| t.split_once('}'))
    {
        Some((_, suffix)) => p.len() > suffix.len() && p.ends_with(suffix),
        None => t == p,
    };
    paths
        .iter()
        .filter_map(|(template, item)| {
            let a: Vec<&str> = template.split('/').collect();
            let b: Vec<&str> = path.split('/').collect();
            let fits = a.len() == b.len() && a.iter().zip(&b).all(|(t, p)| fits_segment(t, p));
            if !fits {
                return None;
            }
            item.get(method.to_ascii_lowercase())
                .map(|op| (template.as_str(), op))
        })
        .max_by_key(|(template, _)| {
            template
                .split('/')
                .map(|t| {
                    t.split_once('}')
                        .map_or(t.len(), |(_, suffix)| suffix.len())
                })
                .sum::<usize>()
        })
}

/// Fails unless the reply's status is documented for the operation and its body fits the
/// documented schema. Undocumented paths and methods must answer 404 or 405.
fn check_against_spec(spec: &Value, method: &str, path: &str, reply: &Reply) {
    let Some((template, op)) = operation(spec, method, path) else {
        assert!(
            matches!(reply.status, 404 | 405),
            "{method} {path} is not in the spec but answered {}",
            reply.status
        );
        return;
    };
    let status = reply.status.to_string();
    let mut response = op["responses"].get(&status).unwrap_or_else(|| {
        panic!(
            "{method} {template} answered {status}, which the spec does not document: {:#}",
            reply.body
        )
    });
    if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().expect("a ref name");
        response = &spec["components"]["responses"][name];
    }
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return;
    };
    let content_type = reply
        .header("content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .to_owned();
    let media = content.get(&content_type).unwrap_or_else(|| {
        panic!("{method} {template} {status} answered {content_type}, not a documented type")
    });
    if content_type.ends_with("json") {
        let mut schema = spec.clone();
        schema["allOf"] = json!([media["schema"].clone()]);
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let errors: Vec<String> = validator
            .iter_errors(&reply.body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status}: the body does not fit the spec: {errors:#?}\n{:#}",
            reply.body
        );
    }
}
