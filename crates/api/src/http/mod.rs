//! The HTTP API: routes registered through utoipa-actix-web, so that the OpenAPI document in
//! `api-spec/openapi.json` is generated from the same registrations that serve requests (a test
//! fails when the checked-in document and the code differ).

mod admin;
mod commands;
mod contract;
mod directory;
mod equity;
pub mod extract;
mod fhir;
mod gp_outbox;
mod metrics;
mod negotiate;
mod outbox;
pub mod problem;
mod provider;
mod queries;
mod reminders;
mod reports;
mod service;
mod tasks;
mod throttle;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, web};
use eventstore::EventStore;
use tracing::Instrument;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi, OpenApiBuilder};
use utoipa_actix_web::AppExt;
use uuid::Uuid;

use app::CaseService;
use extract::RequestId;
use problem::{ApiError, problem_response};

pub use directory::IMPORT_LIMIT;
pub use extract::BODY_LIMIT;
pub use metrics::install_metrics;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    store: EventStore,
    cases: CaseService,
    directory: app::directory::DirectoryService,
    admin: app::admin::Admin,
    authenticator: app::access::Authenticator,
    health: app::health::Health,
    reports: app::reports::Reporting,
    snapshots: app::snapshots::Snapshots,
    /// Referrals in over FHIR.
    fhir: app::fhir::FhirReferrals,
    /// Messages back to GP practices: endpoints, dead letters, replay.
    gp_outbox: app::gp_outbox::GpOutboxAdmin,
    /// Appointment reminders: dead letters, replay.
    reminders: app::reminders::ReminderAdmin,
    /// Checks `after` on reads straight from the log (always current: nothing to wait for).
    freshness: app::Freshness,
    /// What the OpenAPI document says each route takes.
    routes: Arc<contract::Routes>,
    /// The bearer token that opens `/metrics` to a scraper on another machine (from the
    /// loopback address it is open); none: loopback only.
    metrics_token: Option<Arc<str>>,
    /// Bad bearer tokens by source address.
    throttle: Arc<throttle::AuthThrottle>,
    /// The console's sign-in links that opened nothing, by source (the same limits).
    link_throttle: Arc<throttle::AuthThrottle>,
    trusted_proxies: Arc<[IpAddr]>,
}

impl AppState {
    /// State over an event store (its pool is used for everything else too), on the system's
    /// clock.
    pub fn new(store: EventStore) -> AppState {
        AppState::with_clock(store, app::Clock::system())
    }

    /// State over an event store whose rules read the time from `clock`.
    pub fn with_clock(store: EventStore, clock: app::Clock) -> AppState {
        let routes = contract::Routes::of(&openapi());
        let cases = CaseService::with_clock(store.clone(), clock.clone());
        AppState {
            fhir: app::fhir::FhirReferrals::new(cases.clone()),
            gp_outbox: app::gp_outbox::GpOutboxAdmin::new(store.clone(), clock.clone()),
            reminders: app::reminders::ReminderAdmin::new(store.clone(), clock.clone()),
            cases,
            admin: app::admin::Admin::new(&store),
            authenticator: app::access::Authenticator::new(&store),
            health: app::health::Health::new(store.clone()),
            reports: app::reports::Reporting::new(store.clone()),
            snapshots: app::snapshots::Snapshots::new(store.clone()),
            directory: app::directory::DirectoryService::with_clock(store.clone(), clock.clone()),
            freshness: app::Freshness::new(store.clone(), app::ReadWait::default()),
            store,
            routes: Arc::new(routes),
            metrics_token: None,
            throttle: Arc::default(),
            link_throttle: Arc::default(),
            trusted_proxies: Arc::from(Vec::new()),
        }
    }

    /// The same state, turning a source away after `max_failures` bad bearer tokens in a
    /// minute (default [`throttle::MAX_FAILURES`]), or as many console sign-in links that
    /// opened nothing (counted apart).
    pub fn with_auth_failure_limit(mut self, max_failures: u32) -> AppState {
        self.throttle = Arc::new(throttle::AuthThrottle::new(max_failures));
        self.link_throttle = Arc::new(throttle::AuthThrottle::new(max_failures));
        self
    }

    /// The same state, believing `X-Forwarded-For` from these reverse proxies (and only
    /// them) for who is calling: the bad-token throttle and `/metrics`' loopback rule then
    /// count the caller the proxy forwarded, not the proxy.
    pub fn with_trusted_proxies(mut self, proxies: Vec<IpAddr>) -> AppState {
        self.trusted_proxies = Arc::from(proxies);
        self
    }

    /// Whether the request came through one of the trusted proxies (see
    /// [`AppState::with_trusted_proxies`]): only then do its forwarding headers (`Forwarded`,
    /// `X-Forwarded-Host`) say which host the caller asked for.
    pub fn through_trusted_proxy(&self, req: &HttpRequest) -> bool {
        req.peer_addr()
            .is_some_and(|peer| self.trusted_proxies.contains(&peer.ip().to_canonical()))
    }

    /// Who is calling (see [`AppState::with_trusted_proxies`]); `None` without a peer address.
    pub fn client_address(&self, req: &HttpRequest) -> Option<IpAddr> {
        // A dual-stack listener shows an IPv4 peer as `::ffff:a.b.c.d`: compare it as IPv4.
        let peer = req.peer_addr()?.ip().to_canonical();
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>();
        Some(throttle::client_address(
            peer,
            forwarded.into_iter(),
            &self.trusted_proxies,
        ))
    }

    /// How long the caller of `req` must wait before another console sign-in link is looked
    /// at, if it is turned away now. Links are counted by address as bad tokens are, in a count
    /// of their own: an integration retrying a dead token on a shared network must not keep
    /// the staff behind the same address from signing in.
    pub fn sign_in_wait(&self, req: &HttpRequest) -> Option<std::time::Duration> {
        let source = self
            .client_address(req)
            .filter(|ip| throttle::counted(*ip))?;
        self.link_throttle.blocked(source, Instant::now())
    }

    /// Counts a console sign-in link from the caller of `req` that opened nothing (spent,
    /// expired or never issued).
    pub fn sign_in_failed(&self, req: &HttpRequest) {
        if let Some(source) = self.client_address(req).filter(|ip| throttle::counted(*ip)) {
            count_failure(&self.link_throttle, source, "console sign-in links");
        }
    }

    /// The same state, `/metrics` also open to callers from other addresses who send
    /// `Authorization: Bearer <token>`.
    pub fn with_metrics_token(mut self, token: Option<String>) -> AppState {
        self.metrics_token = token.filter(|t| !t.is_empty()).map(Arc::from);
        self
    }

    /// The same state, its reads from read models waiting for `?after=` as `wait` says (at
    /// most [`app::ReadWait::max_wait`], then 503).
    pub fn with_read_wait(mut self, wait: app::ReadWait) -> AppState {
        self.cases = self.cases.with_read_wait(wait);
        self.fhir = app::fhir::FhirReferrals::new(self.cases.clone());
        self.reports = self.reports.with_read_wait(wait);
        self.directory = self.directory.with_read_wait(wait);
        self.freshness = app::Freshness::new(self.store.clone(), wait);
        self
    }

    /// The same state, its caseloads, reports and directory searches read from `replica`: a
    /// streaming replica of the store's database (as the service's role), whose own
    /// checkpoints a read with `?after=` waits on. Commands, the reads of a record (they write
    /// the read audit), report snapshots, administration and the projectors stay on the store.
    pub fn with_replica(mut self, replica: EventStore) -> AppState {
        self.cases = self.cases.with_replica(replica.clone());
        self.fhir = app::fhir::FhirReferrals::new(self.cases.clone());
        self.reports = self
            .reports
            .with_replica(replica.clone(), self.store.clone());
        self.directory = self.directory.with_replica(replica);
        self
    }

    /// The case service every request goes through (for the web console, which serves pages
    /// over the same service, store, clock and replica).
    pub fn cases(&self) -> &CaseService {
        &self.cases
    }

    /// The published reports every request goes through (for the web console).
    pub fn reports(&self) -> &app::reports::Reporting {
        &self.reports
    }

    /// The report snapshots this state builds (one at a time): `casebook serve` resumes the
    /// unfinished ones through it at start.
    pub fn snapshots(&self) -> &app::snapshots::Snapshots {
        &self.snapshots
    }
}

/// Registers every route.
fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    service::configure(config);
    directory::configure_public(config);
    config.service(
        utoipa_actix_web::scope("/api/v1")
            .configure(commands::configure)
            .configure(queries::configure)
            .configure(reports::configure)
            .configure(directory::configure)
            .configure(admin::configure)
            .configure(tasks::configure)
            .configure(provider::configure)
            .configure(equity::configure)
            .configure(gp_outbox::configure)
            .configure(reminders::configure),
    );
    fhir::configure(config);
}

/// The OpenAPI document, generated from the routes.
pub fn openapi() -> OpenApi {
    let base = OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("Casebook")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Case records for social prescribing services. Every change is a command on a \
                     client's record that appends events; reads come from read models or the log. \
                     Errors are RFC 9457 problem details naming each bad field. FHIR R4 referrals \
                     from GP practices' systems are under /fhir (tag fhir), described by the FHIR \
                     CapabilityStatement at /fhir/metadata; their errors are OperationOutcome.",
                ))
                .build(),
        )
        .build();
    let (_, mut api) = App::new()
        .into_utoipa_app()
        .openapi(base)
        .configure(routes)
        .split_for_parts();
    let components = api.components.get_or_insert_with(Default::default);
    problem::add_components(components);
    fhir::add_components(components);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    negotiate::document_csv_headers(&mut api);
    api
}

/// The application over `state`: routes, request ids, problem bodies, metrics and logs.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, _) = App::new()
        .into_utoipa_app()
        .app_data(web::Data::new(state))
        .app_data(extract::path_config())
        .configure(routes)
        .split_for_parts();
    app.default_service(web::to(fallback))
        // After authentication: a query parameter the operation does not take is refused.
        .wrap(actix_web::middleware::from_fn(require_documented_query))
        // Authentication, before any extractor: everything under /api/v1 needs a token.
        .wrap(actix_web::middleware::from_fn(require_token))
        .wrap_fn(|req, service| {
            let request_id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Uuid::try_parse(v).ok())
                .unwrap_or_else(Uuid::new_v4);
            req.extensions_mut().insert(RequestId(request_id));
            let method = req.method().to_string();
            let path = req.path().to_owned();
            let fhir_path = path == "/fhir" || path.starts_with("/fhir/");
            let span = tracing::info_span!("request", %request_id, %method, %path);
            let started = Instant::now();
            let response = service.call(req);
            async move {
                let mut response = response.await?.map_into_boxed_body();
                let error = response.response().error().map(|e| {
                    e.as_error::<ApiError>()
                        .map(|api| {
                            if fhir_path {
                                fhir::outcome_response(api, Some(request_id))
                            } else {
                                problem_response(api, Some(request_id))
                            }
                        })
                        .unwrap_or_else(|| {
                            let api = ApiError::Internal(e.to_string());
                            let mut r = if fhir_path {
                                fhir::outcome_response(&api, Some(request_id))
                            } else {
                                problem_response(&api, Some(request_id))
                            };
                            // An actix error of its own (a client mistake it caught): keep its status.
                            *r.status_mut() = e.as_response_error().status_code();
                            r
                        })
                });
                if let Some(cause) = response
                    .response()
                    .error()
                    .filter(|_| response.status().is_server_error())
                {
                    tracing::error!(error = %cause, "request failed");
                }
                if let Some(problem) = error {
                    response = response.into_response(problem);
                }
                response.headers_mut().insert(
                    HeaderName::from_static("x-request-id"),
                    HeaderValue::from_str(&request_id.to_string())
                        .unwrap_or(HeaderValue::from_static("invalid")),
                );
                protect_response(response.headers_mut());
                let route = response
                    .request()
                    .match_pattern()
                    .unwrap_or_else(|| "unmatched".to_owned());
                let status = response.status().as_u16();
                let elapsed = started.elapsed();
                metrics::record_request(&method, &route, status, elapsed);
                tracing::info!(status, route, micros = elapsed.as_micros() as u64, "served");
                Ok(response)
            }
            .instrument(span)
        })
}

/// Headers every response carries, unless its handler set its own: answers hold health data,
/// so no cache (browser, proxy) keeps them; a browser takes each as the type it says and runs
/// nothing from it, and no page may frame it.
const RESPONSE_HEADERS: &[(&str, &str)] = &[
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

fn protect_response(headers: &mut actix_web::http::header::HeaderMap) {
    for (name, value) in RESPONSE_HEADERS {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
}

/// The one path under `/api/v1/` that takes no bearer token: the enrolment code in its body is
/// the credential. A code that is not live counts against its source as a bad token does.
const REDEMPTION_PATH: &str = "/api/v1/enrolments/redemption";

/// Counts a bad credential (`what`: which kind) from `source` in `throttle`, and says so once
/// when it turns the source away.
fn count_failure(throttle: &throttle::AuthThrottle, source: IpAddr, what: &str) {
    metrics::record_auth_failure();
    if throttle.failed(source, Instant::now()) {
        tracing::warn!(
            source = %source,
            failures = throttle.max_failures(),
            window_seconds = throttle::WINDOW.as_secs(),
            "bad {what}: this source is turned away until its window ends"
        );
    }
}

/// Authenticates every request under `/api/v1/` and keeps the principal in the request.
async fn require_token<B: actix_web::body::MessageBody + 'static>(
    req: ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // The path as the router reads it: `/%61pi/v1/...` is under /api/v1 too.
    let routed = req.match_info().as_str().to_owned();
    if routed == REDEMPTION_PATH {
        let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
            return Ok(req.error_response(ApiError::Internal("no application state".into())));
        };
        let source = state
            .client_address(req.request())
            .filter(|ip| throttle::counted(*ip));
        if let Some(wait) = source.and_then(|ip| state.throttle.blocked(ip, Instant::now())) {
            return Ok(req.error_response(ApiError::TooManyRequests {
                retry_after: wait.as_secs().max(1),
            }));
        }
        let response = next.call(req).await?.map_into_boxed_body();
        if let (Some(ip), StatusCode::UNAUTHORIZED) = (source, response.status()) {
            count_failure(&state.throttle, ip, "bearer tokens");
        }
        return Ok(response);
    }
    if routed.starts_with("/api/v1/") || fhir::needs_token(&routed) {
        let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
            return Ok(req.error_response(ApiError::Internal("no application state".into())));
        };
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .cloned();
        // A source that keeps presenting bad tokens waits out its window, unheard.
        let source = state
            .client_address(req.request())
            .filter(|ip| header.is_some() && throttle::counted(*ip));
        if let Some(wait) = source.and_then(|ip| state.throttle.blocked(ip, Instant::now())) {
            return Ok(req.error_response(ApiError::TooManyRequests {
                retry_after: wait.as_secs().max(1),
            }));
        }
        match extract::authenticate(&state, header.as_ref()).await {
            Ok(principal) => {
                req.extensions_mut().insert(principal);
            }
            Err(e) => {
                if let (Some(ip), ApiError::Unauthenticated(_)) = (source, &e) {
                    count_failure(&state.throttle, ip, "bearer tokens");
                }
                return Ok(req.error_response(e));
            }
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Refuses, under `/api/v1/`, a query parameter the OpenAPI document does not give the
/// operation (400 naming it), so that a misspelt filter is never silently ignored and a list
/// answered unfiltered. FHIR's routes ignore what they do not know, as FHIR servers do.
async fn require_documented_query<B: actix_web::body::MessageBody + 'static>(
    req: ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // The path as the router reads it (`/api/v1/c%61seload` is the caseload), matched to the
    // pattern it will be routed to.
    let routed = req.match_info().as_str();
    if !req.query_string().is_empty()
        && routed.starts_with("/api/v1/")
        && let Some(pattern) = req.resource_map().match_pattern(routed)
        && let Some(state) = req.app_data::<web::Data<AppState>>()
        && let Err(e) = state
            .routes
            .check_query(req.method(), &pattern, req.query_string())
    {
        return Ok(req.error_response(e));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// No route matched: 405 when the path exists with other methods, else 404.
async fn fallback(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let path = req.path();
    let allowed = state.routes.methods(path);
    if allowed.is_empty() {
        return Err(ApiError::NotFound(format!("there is nothing at {path}")));
    }
    let allow = allowed
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Err(ApiError::MethodNotAllowed {
        method: req.method().to_string(),
        allow,
    })
}

/// The OpenAPI document as JSON.
pub fn openapi_json() -> serde_json::Value {
    let mut json = serde_json::to_value(openapi()).unwrap_or_default();
    // Command bodies carry their dating fields beside the event's (see `CommandBody`).
    commands::add_dating_to_command_bodies(&mut json);
    json
}
