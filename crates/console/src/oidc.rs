//! Sign-in with OpenID Connect, over HTTP: `GET /console/oidc/start` sends the browser to the
//! issuer, `GET /console/oidc/callback` comes back from it. What is checked, and who is signed
//! in, is `app::oidc`'s; this module holds the attempt's cookie, the redirects and the pages, and
//! the HTTP client (reqwest, rustls with the system's roots, no redirects followed) the relying
//! party sends its requests with.

use std::sync::Arc;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use app::oidc::{
    Callback, HttpRequest as OidcRequest, OidcError, Refusal, Transport, TransportError,
};

use crate::{Console, failure, page, pages, session_cookie, source};

/// The cookie that holds a sign-in in flight (`cbo_<attempt id>_<secret>`): `HttpOnly`,
/// `SameSite=Lax` (the issuer's redirect back is a top-level navigation from another site, which
/// `Lax` allows and `Strict` would not), scoped to `/console/oidc`, ten minutes.
pub const ATTEMPT_COOKIE: &str = "casebook_oidc";

/// The relying party's HTTP client: a timeout of 10 s, no redirect followed.
///
/// # Errors
/// When the TLS roots cannot be loaded.
pub fn transport() -> Result<Transport, String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(move |request: OidcRequest| {
        let client = client.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| TransportError(app::oidc::chain(&e)))?;
            let mut answer = openidconnect::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                answer = answer.header(name, value);
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| TransportError(app::oidc::chain(&e)))?;
            answer
                .body(body.to_vec())
                .map_err(|e| TransportError(e.to_string()))
        })
    }))
}

fn attempt_cookie(req: &HttpRequest, value: String) -> Cookie<'static> {
    let mut cookie = Cookie::new(ATTEMPT_COOKIE, value);
    cookie.set_path("/console/oidc");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_secure(req.connection_info().scheme() == "https");
    cookie.set_max_age(actix_web::cookie::time::Duration::seconds(
        app::oidc::ATTEMPT_LIFETIME.as_secs() as i64,
    ));
    cookie
}

fn unavailable(console: &Console, name: &str) -> HttpResponse {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::signed_out_with(
            Some(&format!(
                "Signing in with {name} is not working just now. Try again in a few minutes, or use a one-time sign-in link."
            )),
            console.oidc_name(),
        ),
    )
}

/// `GET /console/oidc/start`: a new attempt, and off to the issuer.
pub(crate) async fn start(req: HttpRequest, console: web::Data<Console>) -> HttpResponse {
    let Some(oidc) = console.oidc.as_ref() else {
        return failure(None, &app::AppError::NotFound("no OpenID provider".into()));
    };
    match oidc.begin().await {
        Ok(started) => {
            let mut response = HttpResponse::SeeOther()
                .insert_header((header::LOCATION, started.authorization_url))
                .insert_header(("cache-control", "no-store"))
                .finish();
            let _ = response.add_cookie(&attempt_cookie(&req, started.cookie));
            response
        }
        Err(OidcError::Issuer(e)) => {
            tracing::error!(error = %e, "OpenID sign-in could not start");
            unavailable(&console, oidc.display_name())
        }
        Err(OidcError::App(e)) => failure(None, &e),
        Err(OidcError::Refused(_)) => unavailable(&console, oidc.display_name()),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Why a sign-in did not work, in words.
fn refusal_text(refusal: Refusal, name: &str) -> String {
    match refusal {
        Refusal::UnknownIdentity => format!(
            "Your {name} account is not linked to a Casebook account. Ask your administrator to link it."
        ),
        Refusal::Inactive => {
            "Your Casebook account is not active. Ask your administrator.".to_owned()
        }
        Refusal::Denied => format!("Signing in with {name} was cancelled."),
        Refusal::State | Refusal::Spent => {
            "That sign-in had already been used, took too long, or was not started in this browser. Try again.".to_owned()
        }
        Refusal::Assurance => format!(
            "Signing in with {name} this way is not secure enough for Casebook. Sign in again with your smartcard or another strong method."
        ),
        Refusal::Exchange | Refusal::Token | Refusal::Nonce => {
            format!("Casebook could not confirm who you are with {name}. Try again.")
        }
    }
}

/// `GET /console/oidc/callback?code&state`: the session, or why not.
pub(crate) async fn callback(
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
    console: web::Data<Console>,
) -> HttpResponse {
    let Some(oidc) = console.oidc.as_ref() else {
        return failure(None, &app::AppError::NotFound("no OpenID provider".into()));
    };
    let attempt = req.cookie(ATTEMPT_COOKIE);
    let callback = Callback {
        cookie: attempt.as_ref().map(|c| c.value()),
        state: query.state.as_deref(),
        code: query.code.as_deref(),
        error: query.error.as_deref(),
    };
    let mut response = match oidc
        .finish(callback, source(&console, &req).as_deref())
        .await
    {
        Ok(signed_in) => {
            let mut response = page(StatusCode::OK, pages::signed_in_moving_on());
            let _ = response.add_cookie(&session_cookie(&req, signed_in.cookie));
            response
        }
        Err(OidcError::Refused(refusal)) => page(
            StatusCode::UNAUTHORIZED,
            pages::signed_out_with(
                Some(&refusal_text(refusal, oidc.display_name())),
                console.oidc_name(),
            ),
        ),
        Err(OidcError::Issuer(e)) => {
            tracing::error!(error = %e, "OpenID sign-in could not finish");
            unavailable(&console, oidc.display_name())
        }
        Err(OidcError::App(e)) => failure(None, &e),
    };
    // The attempt is spent (or was never good): the browser forgets it.
    let mut gone = attempt_cookie(&req, String::new());
    gone.make_removal();
    let _ = response.add_cookie(&gone);
    response
}
