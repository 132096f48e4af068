//! Appointment reminders over HTTP, for administrators: the reminder outbox by status (the
//! dead letters) and replaying a dead letter. Each handler parses, calls `app::reminders`, and
//! renders.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::extract::{Caller, Params, request_id};
use super::problem::{ApiError, ReadErrors};
use app::reminders::ReminderEntry;

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config.service(list_reminders).service(replay_reminder);
}

/// Which reminders.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReminderParams {
    /// `pending`, `delivered`, `dead` (the dead letters, by default) or `withheld`.
    status: Option<String>,
    /// Rows (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The organisation's appointment reminders of a status, by appointment time: no personal data
/// (the person by client id; no phone number or email address is kept with a reminder). Each
/// person listed is written to the read audit.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(ReminderParams),
    responses((status = 200, body = Vec<ReminderEntry>), ReadErrors)
)]
#[get("/reminders")]
async fn list_reminders(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<ReminderParams>,
) -> Result<web::Json<Vec<ReminderEntry>>, ApiError> {
    let params = params.0;
    let limit = params.limit.unwrap_or(app::DEFAULT_LIMIT);
    if !(1..=app::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field("query.limit", "from 1 to 500"));
    }
    let status = params.status.as_deref().unwrap_or("dead");
    Ok(web::Json(
        state
            .reminders
            .reminders(
                &caller.0,
                status,
                limit,
                &app::records::ReadContext::new(None, request_id(&req)),
            )
            .await
            .map_err(ApiError::query)?,
    ))
}

/// Sends a dead-lettered reminder again from its first attempt (whether it goes is decided
/// again: consent, erasure, the appointment still to come); recorded with who asked.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("reminder_id" = Uuid, Path, description = "The reminder")),
    responses((status = 204, description = "Queued again"), ReadErrors)
)]
#[post("/reminders/{reminder_id}/replay")]
async fn replay_reminder(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.reminders.replay(&caller.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
