//! What the two outboxes' administrator routes (`/gp-messages`, `/reminders`) share: the list
//! by status and the replay of a dead letter, each parsed, called on the outbox's
//! `app::outbox::OutboxAdmin` and rendered the same way. The routes stay in their own modules,
//! where the OpenAPI document describes each.

use actix_web::{HttpRequest, HttpResponse, web};
use app::outbox::{Listed, OutboxAdmin, OutboxStatus};
use serde::Deserialize;
use uuid::Uuid;

use super::extract::{Caller, request_id};
use super::problem::ApiError;

/// Which rows.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct OutboxParams {
    /// Which rows: the dead letters by default.
    status: Option<OutboxStatus>,
    /// Rows (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The caller's organisation's rows of the status asked for (the dead letters by default).
pub(super) async fn list<E: Listed>(
    req: &HttpRequest,
    outbox: &OutboxAdmin<E>,
    caller: &Caller,
    params: OutboxParams,
) -> Result<web::Json<Vec<E>>, ApiError> {
    let limit = params.limit.unwrap_or(app::DEFAULT_LIMIT);
    if !(1..=app::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field("query.limit", "from 1 to 500"));
    }
    let status = params.status.unwrap_or(OutboxStatus::Dead);
    Ok(web::Json(
        outbox
            .list(
                &caller.0,
                status,
                limit,
                &app::records::ReadContext::new(None, request_id(req)),
            )
            .await
            .map_err(ApiError::query)?,
    ))
}

/// Sends a dead letter again: 204.
pub(super) async fn replay<E: Listed>(
    outbox: &OutboxAdmin<E>,
    caller: &Caller,
    message_id: Uuid,
) -> Result<HttpResponse, ApiError> {
    outbox.replay(&caller.0, message_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
