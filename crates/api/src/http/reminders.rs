//! Appointment reminders over HTTP, for administrators: the reminder outbox by status (the
//! dead letters) and replaying a dead letter. Each handler parses, calls `app::reminders`, and
//! renders, through `outbox` as the GP messages' routes do.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use uuid::Uuid;

use super::AppState;
use super::extract::{Caller, Params};
use super::outbox::{self, OutboxParams};
use super::problem::{ApiError, ReadErrors};
use app::reminders::ReminderEntry;

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config.service(list_reminders).service(replay_reminder);
}

/// The organisation's appointment reminders of a status, by appointment time: no personal data
/// (the person by client id; no phone number or email address is kept with a reminder). Each
/// person listed is written to the read audit.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(OutboxParams),
    responses((status = 200, body = Vec<ReminderEntry>), ReadErrors)
)]
#[get("/reminders")]
async fn list_reminders(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<OutboxParams>,
) -> Result<web::Json<Vec<ReminderEntry>>, ApiError> {
    outbox::list(&req, &state.reminders, &caller, params.0).await
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
    outbox::replay(&state.reminders, &caller, path.into_inner()).await
}
