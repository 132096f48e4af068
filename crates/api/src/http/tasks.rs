//! Tasks over HTTP: raise one, mark it done or cancel it; the caller's open tasks and a team's
//! overdue tasks. Each handler parses, calls `app::tasks`, and renders.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use domain::task::TaskId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AppState;
use super::commands::AcceptedEvent;
use super::extract::{Body, Caller, CommandHeaders, KeyHeader, Params};
use super::problem::{ApiError, CommandErrors, WaitingReadErrors};
use app::tasks::{CancelTask, RaiseTask, TaskCommandError, TaskPage, TaskRequest, TaskService};
use app::{CommandError, Denied};

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(my_tasks)
        .service(raise_task)
        .service(task_done)
        .service(cancel_task)
        .service(team_overdue_tasks);
}

impl From<TaskCommandError> for ApiError {
    fn from(error: TaskCommandError) -> Self {
        match error {
            TaskCommandError::Refused(refusal) => {
                ApiError::refused(refusal.to_string(), refusal.rule(), refusal.field())
            }
            TaskCommandError::Command(CommandError::Denied(Denied::NotFound)) => {
                ApiError::NotFound("no such task".to_owned())
            }
            TaskCommandError::Command(e) => e.into(),
            TaskCommandError::NoSuchCase => ApiError::NotFound(error.to_string()),
        }
    }
}

/// What a task command wrote.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TaskCommandAccepted {
    pub task_id: Uuid,
    /// The task's version after the command: send it as `If-Match` next time.
    pub stream_version: i64,
    /// The log position of the command's last event: give it as `?after=` to a task list that
    /// must show this write.
    pub position: i64,
    pub events: Vec<AcceptedEvent>,
}

fn accepted(result: &eventstore::AppendResult) -> HttpResponse {
    if !result.replayed {
        super::metrics::record_appended(result.events.len());
    }
    let mut response = HttpResponse::Created();
    response.insert_header((header::ETAG, format!("\"{}\"", result.stream_version)));
    if result.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.json(TaskCommandAccepted {
        task_id: result.stream_id,
        stream_version: result.stream_version,
        position: result.events.iter().map(|e| e.position).max().unwrap_or(0),
        events: AcceptedEvent::all(result),
    })
}

fn request(req: &HttpRequest, headers: CommandHeaders, digest: [u8; 32]) -> TaskRequest {
    headers.task_request(req, digest)
}

/// Raise a task: what to do (a code), on whose case (or none: a team task), for whom (a link
/// worker: themself; a team lead: anyone of their team; by default the caller), due by when
/// (not before today). The task id is the caller's choice, so a retry names the same task.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(
        KeyHeader,
    ),
    request_body(content = RaiseTask, content_type = "application/json"),
    responses((status = 201, body = TaskCommandAccepted), CommandErrors)
)]
#[post("/tasks")]
async fn raise_task(
    state: web::Data<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    body: Body<RaiseTask>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let request = request(&req, headers, body.digest);
    let accepted_task = TaskService::beside(&state.cases)
        .raise_as(&caller.0, &body.value, request)
        .await?;
    Ok(accepted(&accepted_task.result))
}

/// The `If-Match` header of a command on a task that exists (read by `CommandHeaders`; this
/// describes it, beside [`KeyHeader`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct TaskVersionHeader {
    /// The task version last seen; stale gives 409
    #[param(
        rename = "If-Match",
        nullable = false,
        pattern = r#"^(W/)?"?[0-9]{1,18}"?$"#
    )]
    if_match: Option<String>,
}

/// The body of marking a task done: nothing (it is done today, by the service's clock).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkDone {}

/// Mark a task done (today): its assignee or its team's lead.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("task_id" = Uuid, Path, description = "The task"), KeyHeader, TaskVersionHeader),
    request_body(content = MarkDone, content_type = "application/json"),
    responses((status = 201, body = TaskCommandAccepted), CommandErrors)
)]
#[post("/tasks/{task_id}/done")]
async fn task_done(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    headers: CommandHeaders,
    body: Body<MarkDone>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let request = request(&req, headers, body.digest);
    let done = TaskService::beside(&state.cases)
        .done_as(&caller.0, TaskId(path.into_inner()), request)
        .await?;
    Ok(accepted(&done.result))
}

/// Cancel a task, with the reason: its assignee or its team's lead.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("task_id" = Uuid, Path, description = "The task"), KeyHeader, TaskVersionHeader),
    request_body(content = CancelTask, content_type = "application/json"),
    responses((status = 201, body = TaskCommandAccepted), CommandErrors)
)]
#[post("/tasks/{task_id}/cancel")]
async fn cancel_task(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    headers: CommandHeaders,
    body: Body<CancelTask>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let request = request(&req, headers, body.digest);
    let cancelled = TaskService::beside(&state.cases)
        .cancel_as(&caller.0, TaskId(path.into_inner()), &body.value, request)
        .await?;
    Ok(accepted(&cancelled.result))
}

/// Whose tasks.
#[derive(Clone, Copy, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Assignee {
    /// The caller's own.
    Me,
}

/// A task list's query parameters: the fields named first, then the page (`cursor`, `limit`)
/// and `after`, with the documentation given it.
macro_rules! task_page_params {
    (
        $(#[$meta:meta])*
        struct $name:ident {
            $($(#[$first_meta:meta])* $first:ident: $first_type:ty,)*
            ..Page,
            $(#[$after_doc:meta])*
            after,
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize, utoipa::IntoParams)]
        #[into_params(parameter_in = Query)]
        #[serde(deny_unknown_fields)]
        struct $name {
            $($(#[$first_meta])* $first: $first_type,)*
            /// `next_cursor` of the previous page.
            #[param(max_length = 100)]
            cursor: Option<String>,
            /// Rows per page (1 to 500, default 50).
            #[param(minimum = 1, maximum = 500)]
            limit: Option<i64>,
            $(#[$after_doc])*
            #[param(minimum = 1)]
            after: Option<i64>,
        }
    };
}

task_page_params! {
    /// Paging through tasks.
    struct MyTaskParams {
        /// Whose tasks: `me` (the default, and the only one for now).
        #[allow(dead_code)]
        #[param(inline)]
        assignee: Option<Assignee>,
        ..Page,
        /// Answer only once the tasks read model has applied the event at this log position (the
        /// `position` a task command answered with). Waits a few seconds at most, then 503.
        after,
    }
}

/// The caller's open tasks, soonest due first, each saying whether it is overdue (due before
/// today by the service's clock). For link workers and team leads.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(MyTaskParams),
    responses((status = 200, body = TaskPage), WaitingReadErrors)
)]
#[get("/tasks")]
async fn my_tasks(
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<MyTaskParams>,
) -> Result<web::Json<TaskPage>, ApiError> {
    let page = params.0;
    Ok(web::Json(
        TaskService::beside(&state.cases)
            .mine(&caller.0, page.cursor.as_deref(), page.limit, page.after)
            .await
            .map_err(ApiError::query)?,
    ))
}

task_page_params! {
    /// Paging through a team's overdue tasks.
    struct TeamTaskParams {
        ..Page,
        /// As for the caller's tasks.
        after,
    }
}

/// A team's open tasks due before today (the service's clock), most overdue first: for the
/// team's lead.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("team_id" = Uuid, Path, description = "The team"), TeamTaskParams),
    responses((status = 200, body = TaskPage), WaitingReadErrors)
)]
#[get("/teams/{team_id}/tasks/overdue")]
async fn team_overdue_tasks(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    params: Params<TeamTaskParams>,
) -> Result<web::Json<TaskPage>, ApiError> {
    let page = params.0;
    Ok(web::Json(
        TaskService::beside(&state.cases)
            .team_overdue(
                &caller.0,
                path.into_inner(),
                page.cursor.as_deref(),
                page.limit,
                page.after,
            )
            .await
            .map_err(ApiError::query)?,
    ))
}
