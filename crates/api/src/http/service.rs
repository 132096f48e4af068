//! Unauthenticated service routes: liveness, readiness, metrics and the OpenAPI document.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;

use super::AppState;
use super::problem::ApiError;

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(health)
        .service(ready)
        .service(metrics_text)
        .service(openapi_json);
}

/// Liveness.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// The process is up.
#[utoipa::path(tag = "service", security(()), responses((status = 200, body = Health)))]
#[get("/health")]
async fn health() -> web::Json<Health> {
    web::Json(Health {
        status: "ok".to_owned(),
    })
}

/// How far one projection is behind the log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProjectionLag {
    pub projection: String,
    pub events_behind: i64,
    /// How long ago the oldest event it has not applied was recorded.
    pub seconds_behind: f64,
    pub events_applied: i64,
}

/// Readiness.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: String,
    /// `ok`.
    pub database: String,
    /// `current`.
    pub migrations: String,
    /// How far each projection is behind (lag does not make the service unready).
    pub projections: Vec<ProjectionLag>,
}

/// Ready when the database answers as the service's role and every migration is applied.
#[utoipa::path(
    tag = "service",
    security(()),
    responses(
        (status = 200, body = Readiness),
        (status = 503, description = "The database is unreachable or migrations are missing",
         body = super::problem::Problem, content_type = "application/problem+json")
    )
)]
#[get("/ready")]
async fn ready(state: web::Data<AppState>) -> Result<web::Json<Readiness>, ApiError> {
    let lags = state
        .health
        .readiness()
        .await
        .map_err(|unready| ApiError::Unavailable(unready.to_string()))?;
    super::metrics::record_lag(&lags);
    Ok(web::Json(Readiness {
        status: "ready".to_owned(),
        database: "ok".to_owned(),
        migrations: "current".to_owned(),
        projections: lags
            .into_iter()
            .map(|l| ProjectionLag {
                projection: l.projection,
                events_behind: l.events_behind,
                seconds_behind: l.seconds_behind,
                events_applied: l.events_applied,
            })
            .collect(),
    }))
}

/// Metrics in the Prometheus text format: requests by route and status, latencies, events
/// appended, projection lag. With a metrics token (`serve --metrics-token-file`), answered to
/// whoever sends it as a bearer token; without one, to the loopback address only.
#[utoipa::path(
    tag = "service",
    security(()),
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
        (status = 403, description = "Not from the loopback address, and no valid metrics token",
         body = super::problem::Problem, content_type = "application/problem+json")
    )
)]
#[get("/metrics")]
async fn metrics_text(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // With a token configured, everyone sends it (a reverse proxy on this machine not named as
    // trusted makes every caller look local); without one, only this machine is answered.
    let local = state.metrics_token.is_none()
        && state
            .client_address(&req)
            .is_some_and(|caller| caller.is_loopback());
    let bearer = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token_ok = match (&state.metrics_token, bearer) {
        (Some(expected), Some(given)) => constant_time_eq(expected.as_bytes(), given.as_bytes()),
        _ => false,
    };
    if !(local || token_ok) {
        return Err(ApiError::Forbidden(
            "metrics are served to the loopback address, or with the metrics token".to_owned(),
        ));
    }
    match state.health.lag().await {
        Ok(lags) => super::metrics::record_lag(&lags),
        Err(e) => tracing::warn!(error = %e, "could not read projection lag"),
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(super::metrics::render()))
}

/// Compares two secrets in time that does not depend on where they first differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    tag = "service",
    security(()),
    responses((status = 200, description = "The OpenAPI document", body = Object))
)]
#[get("/openapi.json")]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(super::openapi_json())
}
