//! The web console: pages for link workers and team leads, served by `casebook serve` beside
//! the API, on the application layer. Every page reads and writes through `app` (the same
//! services, policy, read audit and rules the API calls), and holds no rule of its own: a form
//! is read into a command, the application decides, the page shows what it said.
//!
//! Sign-in is a one-time link (`serve --demo` prints one per demo role), or an OpenID Connect
//! provider when one is configured ([`oidc`], [`app::oidc`]), redeemed for a
//! server-side session ([`app::sessions`]); its cookie is `HttpOnly`, `SameSite=Strict`,
//! `Secure` over TLS, and scoped to `/console`. Every form carries the session's CSRF token,
//! and a form posted from another origin is refused.

mod assets;
pub mod forms;
pub mod local;
pub mod oidc;
mod pages;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use app::caseload::CaseloadPage;
use app::records::{ReadContext, ReadPurpose, RequestId};
use app::sessions::{ConsoleSession, Sessions};
use app::{AppError, CaseService, CommandError, Denied, JourneyView, Page, StaffCommand};
use domain::ClientId;
use maud::Markup;
use uuid::Uuid;

use forms::{ContactForm, FieldError};

pub use assets::FRONTEND_VERSION;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "casebook_session";

/// The largest form body the console reads.
const FORM_LIMIT: usize = 64 * 1024;

/// What the console's pages share: the application's services.
#[derive(Clone)]
pub struct Console {
    cases: CaseService,
    reports: app::reports::Reporting,
    admin: app::admin::Admin,
    sessions: Sessions,
    oidc: Option<app::oidc::Oidc>,
    client_address: Option<ClientAddress>,
    through_trusted_proxy: Option<ThroughTrustedProxy>,
    throttle: Option<std::sync::Arc<dyn Throttle>>,
}

/// How the service turns away a caller that keeps presenting sign-in links that open nothing,
/// by address as the API counts bad tokens (in a count of its own, so that an integration
/// retrying a dead token does not keep staff on the same network from signing in). Behind a
/// reverse proxy, name it with `--trusted-proxy`, or every caller is the proxy and none is
/// counted. Session cookies that open nothing are not counted: an expired session is not a
/// guess.
pub trait Throttle: Send + Sync {
    /// How long the caller must wait, if they are turned away now.
    fn wait(&self, req: &HttpRequest) -> Option<std::time::Duration>;
    /// Counts a credential of the caller's that opened nothing.
    fn failed(&self, req: &HttpRequest);
}

/// How the service tells who is calling (the API's rule, trusted proxies and all).
pub type ClientAddress =
    std::sync::Arc<dyn Fn(&HttpRequest) -> Option<std::net::IpAddr> + Send + Sync>;

/// Whether a request came through a trusted proxy (the API's rule), whose forwarding headers
/// then say which host the browser asked for.
pub type ThroughTrustedProxy = std::sync::Arc<dyn Fn(&HttpRequest) -> bool + Send + Sync>;

impl Console {
    /// The console over the same case service the API uses (its store, clock, read wait and
    /// replica).
    pub fn new(cases: CaseService, reports: app::reports::Reporting) -> Console {
        let sessions = Sessions::new(cases.store());
        let admin = app::admin::Admin::new(cases.store());
        Console {
            cases,
            reports,
            admin,
            sessions,
            oidc: None,
            client_address: None,
            through_trusted_proxy: None,
            throttle: None,
        }
    }

    /// The same console, counting sign-in links that open nothing with `throttle` and turning
    /// away the callers it says to.
    pub fn with_throttle(mut self, throttle: std::sync::Arc<dyn Throttle>) -> Console {
        self.throttle = Some(throttle);
        self
    }

    /// The same, telling who is calling (for the session audit) as `find` does.
    pub fn with_client_address(mut self, find: ClientAddress) -> Console {
        self.client_address = Some(find);
        self
    }

    /// The same, believing the forwarding headers of a request that `trusted` says came
    /// through a trusted proxy (for the origin a form was sent from); without it, none.
    pub fn with_trusted_proxy(mut self, trusted: ThroughTrustedProxy) -> Console {
        self.through_trusted_proxy = Some(trusted);
        self
    }

    /// The same, with sign-in by OpenID Connect (`oidc::transport()` is its HTTP client).
    pub fn with_oidc(
        mut self,
        settings: app::oidc::OidcSettings,
        transport: app::oidc::Transport,
    ) -> Console {
        self.oidc = Some(app::oidc::Oidc::new(
            settings,
            transport,
            self.sessions.clone(),
        ));
        self
    }

    /// The OpenID relying party, when one is configured.
    pub fn oidc(&self) -> Option<&app::oidc::Oidc> {
        self.oidc.as_ref()
    }

    /// The OpenID provider's name for the sign-in button, when one is configured.
    fn oidc_name(&self) -> Option<&str> {
        self.oidc.as_ref().map(|o| o.display_name())
    }
}

/// Registers the console's routes under `/console` (and the stylesheet's icons under
/// `/assets/images`).
pub fn configure(console: Console) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        config
            .app_data(web::Data::new(console))
            .app_data(web::PayloadConfig::new(FORM_LIMIT))
            .route("/console", web::get().to(home))
            .route("/console/", web::get().to(home))
            .route("/console/sign-in", web::get().to(sign_in_page))
            .route("/console/sign-in", web::post().to(sign_in))
            .route("/console/sign-out", web::post().to(sign_out))
            .route("/console/oidc/start", web::get().to(oidc::start))
            .route("/console/oidc/callback", web::get().to(oidc::callback))
            .route("/console/caseload", web::get().to(caseload))
            .service(
                web::scope("/console/people/{client_id}")
                    .route("", web::get().to(person))
                    .route("/contacts", web::post().to(record_contact))
                    .route("/decision", web::post().to(decide))
                    .route("/assignment", web::post().to(assign))
                    .route("/appointments", web::post().to(book_appointment))
                    .route("/appointments/outcome", web::post().to(appointment_outcome))
                    .configure(plan::routes)
                    .configure(assessment::routes)
                    .route("/connect", web::get().to(connect::search))
                    .route(
                        "/connections",
                        web::post().to(connect::post::<connect::ConnectForm>),
                    )
                    .route(
                        "/connections/outcome",
                        web::post().to(connect::post::<connect::OutcomeForm>),
                    )
                    .route("/gap", web::get().to(connect::blank::<connect::GapForm>))
                    .route("/gaps", web::post().to(connect::post::<connect::GapForm>))
                    .route(
                        "/close",
                        web::get().to(connect::blank::<closure::CloseForm>),
                    )
                    .route(
                        "/close",
                        web::post().to(connect::post::<closure::CloseForm>),
                    )
                    .route(
                        "/redirect",
                        web::get().to(connect::blank::<closure::RedirectForm>),
                    )
                    .route(
                        "/redirect",
                        web::post().to(connect::post::<closure::RedirectForm>),
                    )
                    .configure(safeguarding::routes)
                    .configure(tags::routes)
                    .configure(demographics::routes)
                    .configure(lone_working::routes),
            )
            .route("/console/triage", web::get().to(triage))
            .route("/console/workload", web::get().to(team::workload))
            .route("/console/tasks", web::get().to(tasks::tasks_page))
            .route("/console/tasks", web::post().to(tasks::raise))
            .route("/console/tasks/{task_id}/done", web::post().to(tasks::done))
            .route(
                "/console/tasks/{task_id}/cancel",
                web::post().to(tasks::cancel),
            )
            .route("/console/provider", web::get().to(provider::provider_page))
            .route(
                "/console/provider/{client_id}/{connection_id}/{action}",
                web::post().to(provider::answer),
            )
            .route("/console/audit", web::get().to(audit))
            .route("/console/admin", web::get().to(admin))
            .route("/console/admin/sessions/end", web::post().to(end_session))
            .configure(reports::configure)
            .configure(equity::configure)
            .configure(staff::configure)
            .configure(teams::configure)
            .configure(gp_messages::configure)
            .configure(reminders::configure)
            .route(
                "/console/assets/10.6.1/nhsuk-frontend.min.css",
                web::get().to(assets::stylesheet),
            )
            .route("/assets/images/{name}", web::get().to(assets::image))
            // Where browsers look for an icon when a page names none (a redirect, a download).
            .route("/favicon.ico", web::get().to(assets::favicon));
    }
}

/// Headers every console page carries: nothing cached, nothing framed, only this origin's
/// stylesheet and images, forms posted only here.
const PAGE_HEADERS: &[(&str, &str)] = &[
    ("cache-control", "no-store"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; font-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    // Same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` with a
    // form, and the origin check below could not tell our forms from a sandboxed frame's.
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
];

fn page(status: StatusCode, markup: Markup) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.content_type("text/html; charset=utf-8");
    for header in PAGE_HEADERS {
        response.insert_header(*header);
    }
    response.body(markup.into_string())
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header(("cache-control", "no-store"))
        .finish()
}

fn request_id(req: &HttpRequest) -> Uuid {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0)
        .unwrap_or_else(Uuid::new_v4)
}

/// Who asked, for the session audit: the caller as the API counts them (behind a trusted
/// reverse proxy, the address it forwarded), else the connection's peer.
pub(crate) fn source(console: &Console, req: &HttpRequest) -> Option<String> {
    let address = match &console.client_address {
        Some(find) => find(req),
        None => req.peer_addr().map(|a| a.ip().to_canonical()),
    };
    address.map(|ip| ip.to_string())
}

fn session_cookie(req: &HttpRequest, value: String) -> Cookie<'static> {
    let mut cookie = Cookie::new(SESSION_COOKIE, value);
    cookie.set_path("/console");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_secure(req.connection_info().scheme() == "https");
    cookie
}

/// The signed-in session, or the response to give instead (a page saying to sign in).
async fn session(req: &HttpRequest, console: &Console) -> Result<ConsoleSession, HttpResponse> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Err(see_other("/console"));
    };
    match console.sessions.session(cookie.value()).await {
        Ok(session) => Ok(session),
        Err(AppError::Access(_)) => {
            let mut response = page(
                StatusCode::UNAUTHORIZED,
                pages::signed_out_with(
                    Some(
                        "Your session has ended: you signed out, it was unused for 30 minutes, \
                         it reached its 12 hours, or your access changed.",
                    ),
                    console.oidc_name(),
                ),
            );
            let mut gone = session_cookie(req, String::new());
            gone.make_removal();
            let _ = response.add_cookie(&gone);
            Err(response)
        }
        Err(e) => Err(failure(None, &e)),
    }
}

/// A form's session, checked: the same origin (when the browser says), and the session's CSRF
/// token in the form.
async fn form_session(
    req: &HttpRequest,
    console: &Console,
    fields: &std::collections::HashMap<String, String>,
) -> Result<ConsoleSession, HttpResponse> {
    if !same_origin(req, console) {
        return Err(page(
            StatusCode::FORBIDDEN,
            pages::message(
                "Form refused",
                None,
                "This form was sent from another site, so nothing was done.",
            ),
        ));
    }
    let session = session(req, console).await?;
    let given = fields.get("csrf").map(String::as_str).unwrap_or_default();
    if !session.csrf_matches(given) {
        return Err(page(
            StatusCode::FORBIDDEN,
            pages::message(
                "Form refused",
                Some(&session),
                "This form is out of date or was not sent from Casebook, so nothing was done. Go back, reload the page and try again.",
            ),
        ));
    }
    Ok(session)
}

/// A browser's `Origin` (or, without one, `Referer`), when sent, names this host: the one the
/// request itself names (`Host`), or one a trusted proxy forwarded. The scheme is the one the
/// request came by or a proxy says (`X-Forwarded-Proto`): it cannot make another site's form
/// pass, and a proxy terminating TLS says it.
fn same_origin(req: &HttpRequest, console: &Console) -> bool {
    let info = req.connection_info();
    let trusted = console
        .through_trusted_proxy
        .as_ref()
        .is_some_and(|trusted| trusted(req));
    let named = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // Behind a trusted proxy, the host it forwarded (the last of `X-Forwarded-Host`'s values,
    // on the last such line: the one that proxy added; never `Forwarded`, which a proxy may
    // pass on from the caller).
    let forwarded = trusted
        .then(|| {
            req.headers()
                .get_all("x-forwarded-host")
                .filter_map(|v| v.to_str().ok())
                .last()
                .and_then(|hosts| hosts.rsplit(',').next())
                .map(|h| h.trim().to_owned())
        })
        .flatten();
    let host = forwarded
        .or_else(|| named("host"))
        .or_else(|| req.uri().authority().map(ToString::to_string))
        .unwrap_or_else(|| req.app_config().host().to_owned());
    let here = format!("{}://{host}", info.scheme());
    let named = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match named(header::ORIGIN) {
        Some(origin) => origin == here,
        None => match named(header::REFERER) {
            Some(referer) => referer == here || referer.starts_with(&format!("{here}/")),
            None => true,
        },
    }
}

/// A page for an error of the application (logged when it is the service's own).
fn failure(who: Option<&ConsoleSession>, error: &AppError) -> HttpResponse {
    match error {
        AppError::Command(CommandError::Denied(denied)) => {
            failure(who, &AppError::Denied(denied.clone()))
        }
        AppError::Denied(Denied::NotFound) | AppError::NotFound(_) => page(
            StatusCode::NOT_FOUND,
            pages::message(
                "Page not found",
                who,
                "There is no such record for you to see.",
            ),
        ),
        AppError::Denied(Denied::Forbidden(why)) => page(
            StatusCode::FORBIDDEN,
            pages::message("You cannot do this", who, why),
        ),
        AppError::BadInput { message, .. } => page(
            StatusCode::BAD_REQUEST,
            pages::message("There is a problem", who, message),
        ),
        AppError::NotCaughtUp { .. } | AppError::NotReady(_) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::message(
                "Try again in a moment",
                who,
                "Casebook is catching up with the latest changes. Reload this page in a few seconds.",
            ),
        ),
        other => {
            tracing::error!(error = %other, "console page failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::message(
                    "Sorry, there is a problem with the service",
                    who,
                    "Try again later. Nothing you sent was half-recorded: it was recorded whole, or not at all.",
                ),
            )
        }
    }
}

/// The signed-in session, or the page that says to sign in (returned from the handler).
macro_rules! signed_in {
    ($req:expr, $console:expr) => {
        match session(&$req, &$console).await {
            Ok(s) => s,
            Err(response) => return response,
        }
    };
}

/// A form posted: its fields and its session (same origin, CSRF token checked); or the refusal
/// (returned from the handler).
macro_rules! posted_form {
    ($req:expr, $console:expr, $body:expr) => {{
        let fields = forms::fields(&$body);
        match form_session(&$req, &$console, &fields).await {
            Ok(session) => (fields, session),
            Err(response) => return response,
        }
    }};
}

/// What a handler of a form posted about one person or record is given: the request, the path
/// naming them, the form as sent, and the console.
type PostedAt = (
    HttpRequest,
    web::Path<String>,
    web::Bytes,
    web::Data<Console>,
);

/// What a handler of a page asked for by a form sent with GET (`Q`) is given: the request, the
/// form as sent, and the console.
type Queried<Q> = (HttpRequest, web::Query<Q>, web::Data<Console>);

/// A form posted about one person: its fields, its session (same origin, CSRF token checked)
/// and the person; or the refusal (returned from the handler).
macro_rules! person_form {
    ($req:expr, $console:expr, $path:expr, $body:expr) => {{
        let (fields, session) = posted_form!($req, $console, $body);
        let Some(client) = $crate::client_id(&$path) else {
            return $crate::no_such_person(&session);
        };
        (fields, session, client)
    }};
}

/// A page about one person: its session and the person; or the page to show instead
/// (returned from the handler).
macro_rules! about_person {
    ($req:expr, $console:expr, $path:expr) => {{
        let session = signed_in!($req, $console);
        let Some(client) = $crate::client_id(&$path) else {
            return $crate::no_such_person(&session);
        };
        (session, client)
    }};
}

// After the macros above, which their handlers use.
mod assessment;
mod closure;
mod connect;
mod dead_letters;
mod demographics;
mod equity;
mod fields;
mod gp_messages;
mod lone_working;
mod plan;
mod provider;
mod reminders;
mod reports;
mod safeguarding;
mod staff;
mod tags;
mod tasks;
mod team;
mod teams;

async fn home(req: HttpRequest, console: web::Data<Console>) -> HttpResponse {
    if req.cookie(SESSION_COOKIE).is_none() {
        return page(
            StatusCode::OK,
            pages::signed_out_with(None, console.oidc_name()),
        );
    }
    match session(&req, &console).await {
        Ok(s) if s.caseload().is_some() => see_other("/console/caseload"),
        Ok(s) if s.audits() => see_other("/console/audit"),
        Ok(s) if s.reads_reports() => see_other("/console/reports"),
        Ok(s) if s.administers() => see_other("/console/admin"),
        Ok(s) if s.provides_services() => see_other("/console/provider"),
        Ok(s) => page(
            StatusCode::OK,
            pages::message(
                "Signed in",
                Some(&s),
                "The console has no pages for your role yet: use the API.",
            ),
        ),
        Err(response) => response,
    }
}

#[derive(serde::Deserialize)]
struct CodeQuery {
    code: Option<String>,
}

async fn sign_in_page(query: web::Query<CodeQuery>, console: web::Data<Console>) -> HttpResponse {
    match query.code.as_deref().filter(|c| !c.is_empty()) {
        Some(code) => page(StatusCode::OK, pages::confirm_sign_in(code)),
        None => page(
            StatusCode::OK,
            pages::signed_out_with(None, console.oidc_name()),
        ),
    }
}

async fn sign_in(req: HttpRequest, body: web::Bytes, console: web::Data<Console>) -> HttpResponse {
    let fields = forms::fields(&body);
    if !same_origin(&req, &console) {
        return page(
            StatusCode::FORBIDDEN,
            pages::message(
                "Form refused",
                None,
                "This form was sent from another site.",
            ),
        );
    }
    // A caller that keeps presenting links that open nothing waits out its window, unheard.
    if let Some(wait) = console.throttle.as_ref().and_then(|t| t.wait(&req)) {
        let mut response = page(
            StatusCode::TOO_MANY_REQUESTS,
            pages::signed_out(Some(
                "Too many sign-in links from here did not work. Wait a minute, then try your link again.",
            )),
        );
        if let Ok(value) = header::HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let code = fields.get("code").map(String::as_str).unwrap_or_default();
    match console
        .sessions
        .sign_in_with_link(code, source(&console, &req).as_deref())
        .await
    {
        Ok(signed_in) => {
            let mut response = see_other("/console");
            let _ = response.add_cookie(&session_cookie(&req, signed_in.cookie));
            response
        }
        Err(AppError::Access(app::access::AccessError::BadToken)) => {
            if let Some(throttle) = &console.throttle {
                throttle.failed(&req);
            }
            page(
                StatusCode::UNAUTHORIZED,
                pages::signed_out(Some(
                    "That sign-in link does not work: it has been used, has expired, or was never issued.",
                )),
            )
        }
        Err(e) => failure(None, &e),
    }
}

async fn sign_out(req: HttpRequest, body: web::Bytes, console: web::Data<Console>) -> HttpResponse {
    let (_, session) = posted_form!(req, console, body);
    if let Err(e) = console
        .sessions
        .sign_out(&session, source(&console, &req).as_deref())
        .await
    {
        return failure(Some(&session), &e);
    }
    let mut response = page(
        StatusCode::OK,
        pages::signed_out(Some("You have signed out.")),
    );
    let mut gone = session_cookie(&req, String::new());
    gone.make_removal();
    let _ = response.add_cookie(&gone);
    response
}

#[derive(serde::Deserialize)]
struct CaseloadQuery {
    cursor: Option<Uuid>,
    /// Only people carrying this tag (empty: everyone).
    tag: Option<String>,
}

async fn caseload(
    req: HttpRequest,
    query: web::Query<CaseloadQuery>,
    console: web::Data<Console>,
) -> HttpResponse {
    let session = signed_in!(req, console);
    let tag = query.tag.clone().filter(|t| !t.is_empty());
    let ask = app::caseload::CaseloadQuery {
        cursor: query.cursor,
        tag: tag.clone(),
        ..app::caseload::CaseloadQuery::default()
    };
    let result: Result<CaseloadPage, AppError> =
        console.cases.caseload(&session.principal, None, &ask).await;
    let named = match result {
        Ok(caseload) => named(&req, &console, &session, caseload).await,
        Err(e) => Err(e),
    };
    match named {
        Ok((caseload, names)) => page(
            StatusCode::OK,
            pages::caseload(&session, &caseload, &names, tag.as_deref()),
        ),
        Err(e) => failure(Some(&session), &e),
    }
}

/// A page of people with their names (each name shown is audited as read for direct care).
async fn named(
    req: &HttpRequest,
    console: &Console,
    session: &ConsoleSession,
    page: CaseloadPage,
) -> Result<(CaseloadPage, pages::Names), AppError> {
    let read = ReadContext::new(Some(ReadPurpose::DirectCare), request_id(req));
    let names = console
        .cases
        .names(&session.principal, &page, &read)
        .await?;
    Ok((page, names))
}

#[derive(serde::Deserialize)]
struct PersonQuery {
    done: Option<String>,
}

fn client_id(path: &str) -> Option<ClientId> {
    Uuid::try_parse(path).ok().map(ClientId)
}

/// The page saying a page's path names no person.
fn no_such_person(session: &ConsoleSession) -> HttpResponse {
    failure(Some(session), &AppError::NotFound("no such person".into()))
}

/// Reads a person's page (record and journey, both audited as direct care; a team lead's
/// team workload, to assign to) and renders it with `form`, `errors` and `banner`.
async fn person_page(
    req: &HttpRequest,
    console: &Console,
    session: &ConsoleSession,
    client: ClientId,
    entered: &Entered,
    errors: &[FieldError],
    banner: Option<&str>,
) -> HttpResponse {
    let record = match connect::record(req, console, session, client).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let read = ReadContext::new(Some(ReadPurpose::DirectCare), request_id(req));
    let journey = match Page::numbered(None, Some(app::MAX_LIMIT)) {
        Ok(p) => {
            console
                .cases
                .journey_page(&session.principal, client, JourneyView::default(), p, &read)
                .await
        }
        Err(e) => Err(e),
    };
    let journey = match journey {
        Ok(j) => j,
        Err(e) => return failure(Some(session), &e),
    };
    let triage = session.triage_team();
    let workers = match triage {
        Some(team) => match console
            .cases
            .team_workload(&session.principal, team, None)
            .await
        {
            Ok(load) => load.workers,
            Err(e) => return failure(Some(session), &e),
        },
        None => Vec::new(),
    };
    // The journey names who recorded each entry; a lone-working plan, its buddy.
    let colleagues = match console.cases.colleague_names(&session.principal).await {
        Ok(names) => names,
        Err(e) => return failure(Some(session), &e),
    };
    let view = pages::PersonView {
        record: &record,
        journey: &journey,
        contact: &entered.contact,
        appointment: &entered.appointment,
        errors,
        banner,
        triage: triage.is_some(),
        workers: &workers,
        colleagues: &colleagues,
        now: console.cases.clock().now(),
    };
    page(connect::status(errors), pages::person(session, &view))
}

/// The forms of a person's page as the person filled them in (blank but for the one sent).
struct Entered {
    contact: ContactForm,
    appointment: forms::AppointmentForm,
}

impl Entered {
    fn blank(console: &Console) -> Entered {
        let now = console.cases.clock().now();
        Entered {
            contact: ContactForm::blank(now),
            appointment: forms::AppointmentForm::blank(now),
        }
    }
}

/// The person's page again, with what to put right in a form that did not read.
async fn again(
    req: &HttpRequest,
    console: &Console,
    session: &ConsoleSession,
    client: ClientId,
    errors: &[FieldError],
) -> HttpResponse {
    person_page(
        req,
        console,
        session,
        client,
        &Entered::blank(console),
        errors,
        None,
    )
    .await
}

/// What a form just did, for the banner of the page it leads back to.
fn banner(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "contact" => Some("Contact recorded"),
        "accepted" => Some("Referral accepted"),
        "declined" => Some("Referral declined"),
        "assigned" => Some("Link worker assigned"),
        "booked" => Some("Appointment booked"),
        "attended" => Some("Attendance recorded"),
        "did_not_attend" => Some("Missed appointment recorded"),
        "cancelled" => Some("Appointment cancelled"),
        "what_matters" => Some("What matters recorded"),
        "need" => Some("Need identified"),
        "goal" => Some("Goal set"),
        "goal_reviewed" => Some("Goal reviewed"),
        "assessment" => Some("Assessment recorded"),
        "consent" => Some("Consent recorded"),
        "consent_withdrawn" => Some("Consent withdrawn"),
        "connected" => Some("Onward connection recorded"),
        "outcome" => Some("Connection outcome recorded"),
        "gap" => Some("Service gap recorded"),
        "closed" => Some("Case closed"),
        "redirected" => Some("Referral redirected"),
        other => safeguarding::banner(other)
            .or_else(|| tags::banner(other))
            .or_else(|| demographics::banner(other))
            .or_else(|| lone_working::banner(other)),
    }
}

async fn person(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PersonQuery>,
    console: web::Data<Console>,
) -> HttpResponse {
    let (session, client) = about_person!(req, console, path);
    person_page(
        &req,
        &console,
        &session,
        client,
        &Entered::blank(&console),
        &[],
        banner(query.done.as_deref()),
    )
    .await
}

async fn record_contact(posted: PostedAt) -> HttpResponse {
    run_typed(posted, |fields, blank| {
        let form = ContactForm::from_fields(fields);
        // The form's own contact id: sending the same form twice records one contact.
        let key = format!("console-contact-{}", form.contact_id);
        let sending = (key, form.expected_version(), "contact", "mode");
        (
            form.command(),
            sending,
            Entered {
                contact: form,
                ..blank
            },
        )
    })
    .await
}

/// A command from a form of the person's page, as it is to be sent.
struct Sending<'a> {
    command: &'a domain::CaseCommand,
    /// The form's own key: sent twice, it is done once.
    idempotency_key: Option<String>,
    /// What makes it the same form under its key ([`forms::fingerprint`]).
    fingerprint: Option<[u8; 32]>,
    /// The record's version the form was shown at (none: whatever it is now; not a number:
    /// the form comes back).
    expected_version: Result<Option<i64>, forms::BadVersion>,
    /// What it did, for the banner of the page it leads back to (`done=`).
    done: &'a str,
    /// The form's field for a refusal that names none (a record changed meanwhile, say).
    unnamed: &'static str,
    /// Why a fact from before the back-entry window is entered so late (a form's
    /// `late_entry_reason` field, where it has one: a team lead's).
    late_entry_reason: Option<String>,
}

/// Carries out a form's command for the session and leads back to the person's page (with a
/// banner saying what was done), or shows the page again with the application's refusal at
/// its field.
async fn run(
    req: &HttpRequest,
    console: &Console,
    session: &ConsoleSession,
    client: ClientId,
    sending: Sending<'_>,
) -> HttpResponse {
    let blank = Entered::blank(console);
    run_keeping((req, console, session), client, sending, &blank).await
}

/// The command a form of the person's page read (or what to put right), carried out with no
/// key of its own while the record is at the version the form was shown at (its `version`
/// field): `done` says what it did, `unnamed` where a refusal naming no field goes.
async fn run_unkeyed(
    (req, console, session): (&HttpRequest, &Console, &ConsoleSession),
    client: ClientId,
    (read, version): (Result<domain::CaseCommand, Vec<FieldError>>, &str),
    (done, unnamed): (fn(&domain::CaseCommand) -> &'static str, &'static str),
) -> HttpResponse {
    match read {
        Ok(command) => {
            let sending = Sending {
                command: &command,
                idempotency_key: None,
                fingerprint: None,
                expected_version: forms::shown_version(version),
                done: done(&command),
                unnamed,
                late_entry_reason: None,
            };
            run(req, console, session, client, sending).await
        }
        Err(errors) => again(req, console, session, client, &errors).await,
    }
}

/// How a form of the person's page is sent: its key, the record's version the form was shown at
/// (if any), what it did (for the banner) and where a refusal naming no field goes.
type Keyed = (
    String,
    Result<Option<i64>, forms::BadVersion>,
    &'static str,
    &'static str,
);

/// A form of the person's own page, sent once for its key: `read` makes, from its fields and
/// the page's blank forms, its command, how it is sent, and the page's forms with it as typed,
/// for the page to come back with when the form does not read or is refused.
async fn run_typed(
    (req, path, body, console): PostedAt,
    read: impl FnOnce(
        &std::collections::HashMap<String, String>,
        Entered,
    ) -> (Result<domain::CaseCommand, Vec<FieldError>>, Keyed, Entered),
) -> HttpResponse {
    let (fields, session, client) = person_form!(req, console, path, body);
    let (command, (key, expected_version, done, unnamed), entered) =
        read(&fields, Entered::blank(&console));
    match command {
        Ok(command) => {
            let sending = Sending {
                command: &command,
                idempotency_key: Some(key),
                fingerprint: Some(forms::fingerprint(&req, &fields)),
                expected_version,
                done,
                unnamed,
                late_entry_reason: fields
                    .get("late_entry_reason")
                    .map(|r| r.trim().to_owned())
                    .filter(|r| !r.is_empty()),
            };
            run_keeping((&req, &console, &session), client, sending, &entered).await
        }
        Err(errors) => person_page(&req, &console, &session, client, &entered, &errors, None).await,
    }
}

/// [`run`], showing the page again with the forms as `entered` when the command is refused.
async fn run_keeping(
    (req, console, session): (&HttpRequest, &Console, &ConsoleSession),
    client: ClientId,
    sending: Sending<'_>,
    entered: &Entered,
) -> HttpResponse {
    let Ok(expected_version) = sending.expected_version else {
        let errors = [FieldError::new(
            sending.unnamed,
            pages::capitalise(forms::BAD_VERSION),
        )];
        return person_page(req, console, session, client, entered, &errors, None).await;
    };
    let sent = send_at(
        (req, console, session),
        client,
        sending.command,
        (sending.idempotency_key, sending.fingerprint),
        (expected_version, sending.late_entry_reason),
    )
    .await;
    match sent {
        Sent::Done => see_other(&format!(
            "/console/people/{}?done={}",
            client.0, sending.done
        )),
        Sent::Refused { field, message } => {
            // A command dated when it was sent (not by a field of its own form, as a contact
            // is) is refused for that time at the form it came from: an attendance recorded
            // before the appointment's day belongs to the appointment, not the contact's date.
            let field = match field {
                None | Some("occurred_at") => sending.unnamed,
                Some(field) => forms::form_field(field),
            };
            let errors = [FieldError::new(field, pages::capitalise(&message))];
            person_page(req, console, session, client, entered, &errors, None).await
        }
        Sent::Failed(response) => response,
    }
}

/// What became of a form's command.
/// Why a form sent at a record's version comes back: the record changed since it was shown.
pub(crate) const STALE: &str =
    "someone else changed this record just now: check it and send the form again";

/// Why a form comes back whose key was used with other entries (the page gone back to and
/// changed after it was sent): it was not sent again.
pub(crate) const ALREADY_SENT: &str = "this form was already sent with other entries, and those \
     were recorded: reload the person's page to record something new";

pub(crate) enum Sent {
    Done,
    /// Refused by the application: the command's field it names (if any), and why, in words
    /// without the field's name.
    Refused {
        field: Option<&'static str>,
        message: String,
    },
    /// Not carried out for another reason: the page that says so.
    Failed(HttpResponse),
}

/// Carries out a form's command for the session (once for its `idempotency_key`), only while
/// the record is at `expected_version` (when given): a record written to since the form was
/// shown is [`CommandError::Conflict`], and the form comes back.
pub(crate) async fn send_at(
    (req, console, session): (&HttpRequest, &Console, &ConsoleSession),
    client: ClientId,
    command: &domain::CaseCommand,
    (idempotency_key, fingerprint): (Option<String>, Option<[u8; 32]>),
    (expected_version, late_entry_reason): (Option<i64>, Option<String>),
) -> Sent {
    let request = StaffCommand {
        idempotency_key,
        fingerprint,
        expected_version,
        correlation_id: request_id(req),
        occurred_at: None,
        late_entry_reason,
    };
    match console
        .cases
        .execute_as(&session.principal, client, command, request)
        .await
    {
        Ok(_) => Sent::Done,
        Err(CommandError::Refused(refusal)) => {
            let field = refusal.field();
            // The domain's message names its field first ("occurred_at: ..."): the page shows
            // the message at the form's field instead.
            let text = refusal.to_string();
            let message = match field.and_then(|f| text.strip_prefix(&format!("{f}: "))) {
                Some(rest) => rest.to_owned(),
                None => text,
            };
            Sent::Refused { field, message }
        }
        Err(CommandError::Invalid { field, message }) => Sent::Refused {
            field: Some(field),
            message,
        },
        // A colleague wrote to the record between its load and this append: the form comes
        // back with what was typed, to be checked and sent again.
        Err(CommandError::Conflict { .. }) => Sent::Refused {
            field: None,
            message: STALE.into(),
        },
        Err(CommandError::IdempotencyMismatch(_)) => Sent::Refused {
            field: None,
            message: ALREADY_SENT.into(),
        },
        Err(e) => Sent::Failed(failure(Some(session), &AppError::from(e))),
    }
}

async fn decide((req, path, body, console): PostedAt) -> HttpResponse {
    let (fields, session, client) = person_form!(req, console, path, body);
    let command = forms::DecisionForm::from_fields(&fields).command();
    let done = |command: &domain::CaseCommand| match command {
        domain::CaseCommand::AcceptReferral(_) => "accepted",
        _ => "declined",
    };
    let sent = (&req, &**console, &session);
    let version = forms::text(&fields, "version");
    let read = (command, version.as_str());
    run_unkeyed(sent, client, read, (done, "decision")).await
}

async fn assign((req, path, body, console): PostedAt) -> HttpResponse {
    let (fields, session, client) = person_form!(req, console, path, body);
    let Some(team) = session.triage_team() else {
        return failure(
            Some(&session),
            &AppError::Denied(Denied::Forbidden("only a team lead assigns cases".into())),
        );
    };
    // Whether it is a transfer: the record as the application reads it (audited, as the page).
    let record = match connect::record(&req, &console, &session, client).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let form = forms::AssignmentForm::from_fields(&fields);
    let command = form.command(domain::TeamId(team), record.link_worker_id.is_some());
    let sent = (&req, &**console, &session);
    let version = forms::text(&fields, "version");
    let read = (command, version.as_str());
    run_unkeyed(sent, client, read, (|_| "assigned", "link_worker_id")).await
}

async fn book_appointment(posted: PostedAt) -> HttpResponse {
    run_typed(posted, |fields, blank| {
        let form = forms::AppointmentForm::from_fields(fields);
        // The form's own appointment id: sending it twice books one appointment.
        let key = format!("console-appointment-{}", form.appointment_id);
        let sending = (key, form.expected_version(), "booked", "appointment_mode");
        let command = form.command();
        (
            command,
            sending,
            Entered {
                appointment: form,
                ..blank
            },
        )
    })
    .await
}

async fn appointment_outcome((req, path, body, console): PostedAt) -> HttpResponse {
    let (fields, session, client) = person_form!(req, console, path, body);
    let done = |command: &domain::CaseCommand| match command {
        domain::CaseCommand::RecordAttendance(_) => "attended",
        domain::CaseCommand::CancelAppointment(_) => "cancelled",
        _ => "did_not_attend",
    };
    let command = forms::appointment_outcome(&fields);
    let sent = (&req, &**console, &session);
    let version = forms::text(&fields, "version");
    let read = (command, version.as_str());
    run_unkeyed(sent, client, read, (done, "appointments")).await
}

#[derive(serde::Deserialize)]
struct AdminParams {
    done: Option<String>,
}

async fn admin(
    req: HttpRequest,
    params: web::Query<AdminParams>,
    console: web::Data<Console>,
) -> HttpResponse {
    let session = signed_in!(req, console);
    let principal = &session.principal;
    let staff = match console
        .admin
        .list_staff(principal, None, Some(app::MAX_LIMIT))
        .await
    {
        Ok(page) => page.items,
        Err(e) => return failure(Some(&session), &e),
    };
    let live = match console.sessions.live_sessions(principal).await {
        Ok(l) => l,
        Err(e) => return failure(Some(&session), &e),
    };
    let events = match console.sessions.organisation_events(principal, 50).await {
        Ok(e) => e,
        Err(e) => return failure(Some(&session), &e),
    };
    let banner = (params.done.as_deref() == Some("ended")).then_some("Session ended");
    page(
        StatusCode::OK,
        pages::admin(&session, &staff, &live, &events, banner),
    )
}

async fn end_session(
    req: HttpRequest,
    body: web::Bytes,
    console: web::Data<Console>,
) -> HttpResponse {
    let (fields, session) = posted_form!(req, console, body);
    let Some(target) = fields
        .get("session_id")
        .and_then(|v| Uuid::try_parse(v).ok())
    else {
        return failure(
            Some(&session),
            &AppError::NotFound("no such session".into()),
        );
    };
    match console
        .sessions
        .end_session(
            &session.principal,
            target,
            source(&console, &req).as_deref(),
        )
        .await
    {
        Ok(true) => see_other("/console/admin?done=ended"),
        Ok(false) => failure(
            Some(&session),
            &AppError::NotFound("no such live session".into()),
        ),
        Err(e) => failure(Some(&session), &e),
    }
}

#[derive(serde::Deserialize)]
struct AuditParams {
    client_id: Option<String>,
    as_of: Option<String>,
    known_at: Option<String>,
}

/// The end of a UK day typed as `YYYY-MM-DD` (its last microsecond, the log's precision:
/// what was recorded in the day's last second is in it), none for an empty field.
fn end_of_day(
    field: &str,
    value: &str,
    errors: &mut Vec<FieldError>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    if value.is_empty() {
        return None;
    }
    match chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(day) => chrono::NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999)
            .and_then(|t| local::instant(day, t)),
        Err(_) => {
            errors.push(FieldError::new(field, "Enter a real date"));
            None
        }
    }
}

async fn audit(
    req: HttpRequest,
    params: web::Query<AuditParams>,
    console: web::Data<Console>,
) -> HttpResponse {
    let session = signed_in!(req, console);
    let query = pages::AuditQuery {
        client_id: params
            .client_id
            .clone()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        as_of: params.as_of.clone().unwrap_or_default(),
        known_at: params.known_at.clone().unwrap_or_default(),
    };
    let names = match console.cases.colleague_names(&session.principal).await {
        Ok(n) => n,
        Err(e) => return failure(Some(&session), &e),
    };
    let render = |errors: &[FieldError], found| {
        page(
            if errors.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            },
            pages::audit(&session, &query, errors, found, &names),
        )
    };
    if params.client_id.is_none() {
        return render(&[], None);
    }
    let mut errors = Vec::new();
    let client = client_id(&query.client_id);
    if client.is_none() {
        errors.push(FieldError::new(
            "client_id",
            "Enter the record id, like 0192c4f0-3b1a-7cde-8f00-1234567890ab",
        ));
    }
    let view = JourneyView {
        as_of: end_of_day("as_of", &query.as_of, &mut errors),
        known_at: end_of_day("known_at", &query.known_at, &mut errors),
    };
    let Some(client) = client.filter(|_| errors.is_empty()) else {
        return render(&errors, None);
    };
    let read = ReadContext::new(Some(ReadPurpose::Audit), request_id(&req));
    let pages_of = |limit| Page::numbered(None, Some(limit));
    let journey = match pages_of(app::MAX_LIMIT) {
        Ok(p) => {
            console
                .cases
                .journey_page(&session.principal, client, view, p, &read)
                .await
        }
        Err(e) => Err(e),
    };
    let journey = match journey {
        Ok(j) => j,
        Err(e) => return failure(Some(&session), &e),
    };
    let reads = match pages_of(app::MAX_LIMIT) {
        Ok(p) => {
            console
                .cases
                .reads(&session.principal, client, p, &read)
                .await
        }
        Err(e) => Err(e),
    };
    match reads {
        Ok(reads) => render(&[], Some((&journey, &reads))),
        Err(e) => failure(Some(&session), &e),
    }
}

#[derive(serde::Deserialize)]
struct TriageQuery {
    cursor: Option<Uuid>,
}

async fn triage(
    req: HttpRequest,
    query: web::Query<TriageQuery>,
    console: web::Data<Console>,
) -> HttpResponse {
    let session = signed_in!(req, console);
    let queue = console
        .cases
        .triage_queue(&session.principal, query.cursor, None, None)
        .await;
    let named = match queue {
        Ok(queue) => {
            let read = ReadContext::new(Some(ReadPurpose::DirectCare), request_id(&req));
            console
                .cases
                .names_and_shared_numbers(&session.principal, &queue, &read)
                .await
                .map(|(names, shared)| (queue, names, shared))
        }
        Err(e) => Err(e),
    };
    match named {
        Ok((queue, names, shared)) => page(
            StatusCode::OK,
            pages::triage(&session, &queue, &names, &shared),
        ),
        Err(e) => failure(Some(&session), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::end_of_day;

    #[test]
    fn a_day_typed_for_the_audit_ends_at_its_last_microsecond_uk_time() {
        let mut errors = Vec::new();
        // British Summer Time: the UK day ends at 22:59:59.999999 UTC.
        let end = end_of_day("known_at", "2026-07-01", &mut errors).expect("a day");
        assert_eq!(end.to_rfc3339(), "2026-07-01T22:59:59.999999+00:00");
        let winter = end_of_day("as_of", "2026-12-01", &mut errors).expect("a day");
        assert_eq!(winter.to_rfc3339(), "2026-12-01T23:59:59.999999+00:00");
        assert!(errors.is_empty());
        assert_eq!(end_of_day("as_of", "", &mut errors), None);
        assert!(errors.is_empty(), "an empty field is no date, not an error");
        assert_eq!(end_of_day("as_of", "2026-02-30", &mut errors), None);
        assert_eq!(errors.len(), 1, "not a real date");
    }
}
