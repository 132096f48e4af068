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
    sessions: Sessions,
    oidc: Option<app::oidc::Oidc>,
}

impl Console {
    /// The console over the same case service the API uses (its store, clock, read wait and
    /// replica).
    pub fn new(cases: CaseService) -> Console {
        let sessions = Sessions::new(cases.store());
        Console {
            cases,
            sessions,
            oidc: None,
        }
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
            .route("/console/people/{client_id}", web::get().to(person))
            .route(
                "/console/people/{client_id}/contacts",
                web::post().to(record_contact),
            )
            .route(
                "/console/assets/10.6.1/nhsuk-frontend.min.css",
                web::get().to(assets::stylesheet),
            )
            .route("/assets/images/{name}", web::get().to(assets::image));
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

/// Who asked, for the session audit: the connection's peer.
fn source(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_canonical().to_string())
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
    if !same_origin(req) {
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

/// A browser's `Origin` (or, without one, `Referer`), when sent, names this host.
fn same_origin(req: &HttpRequest) -> bool {
    let info = req.connection_info();
    let here = format!("{}://{}", info.scheme(), info.host());
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

async fn home(req: HttpRequest, console: web::Data<Console>) -> HttpResponse {
    if req.cookie(SESSION_COOKIE).is_none() {
        return page(
            StatusCode::OK,
            pages::signed_out_with(None, console.oidc_name()),
        );
    }
    match session(&req, &console).await {
        Ok(s) if s.caseload().is_some() => see_other("/console/caseload"),
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
    if !same_origin(&req) {
        return page(
            StatusCode::FORBIDDEN,
            pages::message(
                "Form refused",
                None,
                "This form was sent from another site.",
            ),
        );
    }
    let code = fields.get("code").map(String::as_str).unwrap_or_default();
    match console
        .sessions
        .sign_in_with_link(code, source(&req).as_deref())
        .await
    {
        Ok(signed_in) => {
            let mut response = see_other("/console");
            let _ = response.add_cookie(&session_cookie(&req, signed_in.cookie));
            response
        }
        Err(AppError::Access(_)) => page(
            StatusCode::UNAUTHORIZED,
            pages::signed_out(Some(
                "That sign-in link does not work: it has been used, has expired, or was never issued.",
            )),
        ),
        Err(e) => failure(None, &e),
    }
}

async fn sign_out(req: HttpRequest, body: web::Bytes, console: web::Data<Console>) -> HttpResponse {
    let fields = forms::fields(&body);
    let session = match form_session(&req, &console, &fields).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    if let Err(e) = console
        .sessions
        .sign_out(&session, source(&req).as_deref())
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
}

async fn caseload(
    req: HttpRequest,
    query: web::Query<CaseloadQuery>,
    console: web::Data<Console>,
) -> HttpResponse {
    let session = match session(&req, &console).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let result: Result<CaseloadPage, AppError> = console
        .cases
        .caseload(&session.principal, None, query.cursor, None, None)
        .await;
    match result {
        Ok(caseload) => page(StatusCode::OK, pages::caseload(&session, &caseload)),
        Err(e) => failure(Some(&session), &e),
    }
}

#[derive(serde::Deserialize)]
struct PersonQuery {
    recorded: Option<String>,
}

fn client_id(path: &str) -> Option<ClientId> {
    Uuid::try_parse(path).ok().map(ClientId)
}

/// Reads a person's page (record and journey, both audited as direct care) and renders it with
/// `form` and `errors`.
async fn person_page(
    req: &HttpRequest,
    console: &Console,
    session: &ConsoleSession,
    client: ClientId,
    form: &ContactForm,
    errors: &[FieldError],
    recorded: bool,
) -> HttpResponse {
    let read = ReadContext::new(Some(ReadPurpose::DirectCare), request_id(req));
    let record = match console
        .cases
        .record(&session.principal, client, &read)
        .await
    {
        Ok(r) => r,
        Err(e) => return failure(Some(session), &e),
    };
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
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(
        status,
        pages::person(session, &record, &journey, form, errors, recorded),
    )
}

async fn person(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PersonQuery>,
    console: web::Data<Console>,
) -> HttpResponse {
    let session = match session(&req, &console).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let Some(client) = client_id(&path) else {
        return failure(Some(&session), &AppError::NotFound("no such person".into()));
    };
    let form = ContactForm::blank(console.cases.clock().now());
    let recorded = query.recorded.as_deref() == Some("contact");
    person_page(&req, &console, &session, client, &form, &[], recorded).await
}

async fn record_contact(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    console: web::Data<Console>,
) -> HttpResponse {
    let fields = forms::fields(&body);
    let session = match form_session(&req, &console, &fields).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let Some(client) = client_id(&path) else {
        return failure(Some(&session), &AppError::NotFound("no such person".into()));
    };
    let form = ContactForm::from_fields(&fields);
    let command = match form.command() {
        Ok(c) => c,
        Err(errors) => {
            return person_page(&req, &console, &session, client, &form, &errors, false).await;
        }
    };
    let request = StaffCommand {
        // The form's own contact id: sending the same form twice records one contact.
        idempotency_key: Some(format!("console-contact-{}", form.contact_id)),
        fingerprint: None,
        expected_version: None,
        correlation_id: request_id(&req),
        occurred_at: None,
        late_entry_reason: None,
    };
    match console
        .cases
        .execute_as(&session.principal, client, &command, request)
        .await
    {
        Ok(_) => see_other(&format!(
            "/console/people/{}?recorded=contact#journey",
            client.0
        )),
        Err(CommandError::Refused(refusal)) => {
            let field = refusal.field().map(forms::form_field).unwrap_or("mode");
            let errors = [FieldError::new(field, refusal.to_string())];
            person_page(&req, &console, &session, client, &form, &errors, false).await
        }
        Err(CommandError::Invalid { field, message }) => {
            let errors = [FieldError::new(forms::form_field(field), message)];
            person_page(&req, &console, &session, client, &form, &errors, false).await
        }
        Err(e) => failure(Some(&session), &AppError::from(e)),
    }
}
