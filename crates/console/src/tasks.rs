//! "My tasks": a link worker's or team lead's open tasks, soonest due first, each with a form
//! to mark it done and one to cancel it with a reason; a form to raise a task; and, for a team
//! lead, the team's overdue tasks. Every list, rule and refusal is the application's
//! ([`app::tasks::TaskService`]); a form is read into a command, sent, and answered with 303
//! back to the page and a banner, or with the page again (422) and what to put right.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use app::records::{ReadContext, ReadPurpose};
use app::sessions::ConsoleSession;
use app::tasks::{
    CancelTask, RaiseTask, TaskCommandError, TaskItem, TaskPage, TaskRequest, TaskService,
};
use app::{AppError, CommandError};
use chrono::NaiveDate;
use domain::task::{TaskCancelReason, TaskId, TaskKind};
use maud::{Markup, html};
use uuid::Uuid;

use crate::forms::{self, FieldError, coded, form_id, text};
use crate::pages::{
    Names, csrf_field, day, error_for, error_message, error_summary, group_class, head, layout,
    radios, success,
};
use crate::{Console, failure, form_session, page, request_id, see_other, session};

/// What the page's query may say: what a form just did, and the log position to show.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct TasksQuery {
    done: Option<String>,
    after: Option<i64>,
}

/// The raise form, as typed.
#[derive(Clone, Debug, Default)]
struct RaiseForm {
    /// Drawn when the form is shown: it is the task's id, so sending it twice raises once.
    task_id: Uuid,
    kind: String,
    due_on: String,
}

impl RaiseForm {
    fn blank() -> RaiseForm {
        RaiseForm {
            task_id: Uuid::new_v4(),
            ..RaiseForm::default()
        }
    }

    fn from_fields(fields: &HashMap<String, String>) -> RaiseForm {
        RaiseForm {
            task_id: form_id(fields, "task_id"),
            kind: text(fields, "kind"),
            due_on: text(fields, "due_on"),
        }
    }

    /// Only the shape: a kind chosen, a date that is a date.
    fn command(&self) -> Result<RaiseTask, Vec<FieldError>> {
        let mut errors = Vec::new();
        let kind = coded(TaskKind::ALL, &self.kind);
        if kind.is_none() {
            errors.push(FieldError::new("kind", "Select what the task is"));
        }
        let due_on = NaiveDate::parse_from_str(&self.due_on, "%Y-%m-%d").ok();
        if due_on.is_none() {
            errors.push(FieldError::new(
                "due_on",
                "Enter the day it is due, such as 2026-12-24",
            ));
        }
        match (kind, due_on) {
            (Some(kind), Some(due_on)) => Ok(RaiseTask {
                task_id: TaskId(self.task_id),
                kind,
                client_id: None,
                assignee_id: None,
                due_on,
            }),
            _ => Err(errors),
        }
    }
}

fn banner(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "raised" => Some("Task added"),
        "done" => Some("Task marked done"),
        "cancelled" => Some("Task cancelled"),
        _ => None,
    }
}

/// The page: the caller's tasks, their team's overdue ones for a lead.
pub(crate) async fn tasks_page(
    req: HttpRequest,
    query: web::Query<TasksQuery>,
    console: web::Data<Console>,
) -> HttpResponse {
    let session = signed_in!(req, console);
    let shown = Shown {
        raise: RaiseForm::blank(),
        errors: Vec::new(),
        banner: banner(query.done.as_deref()),
        after: query.after,
    };
    render(&req, &console, &session, StatusCode::OK, shown).await
}

struct Shown {
    raise: RaiseForm,
    errors: Vec<FieldError>,
    banner: Option<&'static str>,
    after: Option<i64>,
}

/// The page again, with a closing form's refusal.
async fn refused(
    req: &HttpRequest,
    console: &Console,
    session: &ConsoleSession,
    errors: Vec<FieldError>,
) -> HttpResponse {
    let shown = Shown {
        raise: RaiseForm::blank(),
        errors,
        banner: None,
        after: None,
    };
    render(
        req,
        console,
        session,
        StatusCode::UNPROCESSABLE_ENTITY,
        shown,
    )
    .await
}

async fn render(
    req: &HttpRequest,
    console: &Console,
    session: &ConsoleSession,
    status: StatusCode,
    shown: Shown,
) -> HttpResponse {
    let tasks = TaskService::beside(&console.cases);
    let mine = match tasks
        .mine(&session.principal, None, Some(app::MAX_LIMIT), shown.after)
        .await
    {
        Ok(page) => page,
        Err(e) => return failure(Some(session), &e),
    };
    let team = match session.triage_team() {
        Some(team) => match tasks
            .team_overdue(
                &session.principal,
                team,
                None,
                Some(app::MAX_LIMIT),
                shown.after,
            )
            .await
        {
            Ok(page) => Some(page),
            Err(e) => return failure(Some(session), &e),
        },
        None => None,
    };
    // Each task's person by name (each name shown is a read of their record, audited).
    let people: Vec<Uuid> = mine
        .items
        .iter()
        .chain(team.iter().flat_map(|t| &t.items))
        .filter_map(|item| item.client_id)
        .collect();
    let read = ReadContext::new(Some(ReadPurpose::DirectCare), request_id(req));
    let names = match console
        .cases
        .names_of(&session.principal, &people, &read)
        .await
    {
        Ok(names) => names,
        Err(e) => return failure(Some(session), &e),
    };
    page(
        status,
        markup(session, &mine, team.as_ref(), &shown, &names),
    )
}

fn markup(
    who: &ConsoleSession,
    mine: &TaskPage,
    team: Option<&TaskPage>,
    shown: &Shown,
    names: &Names,
) -> Markup {
    layout(
        "My tasks",
        Some(who),
        html! {
            @if !shown.errors.is_empty() { (error_summary(&shown.errors)) }
            @if let Some(text) = shown.banner { (success(text)) }
            h1 class="nhsuk-heading-l" { "My tasks" }
            p class="nhsuk-body" { "Open tasks, soonest due first. Today is " (day(mine.today)) "." }
            @if mine.items.is_empty() {
                p class="nhsuk-body" id="no-tasks" { "You have no open tasks." }
            } @else {
                (table(("my-tasks", ""), "Your open tasks", who, &mine.items, (&shown.errors, names)))
            }
            @if let Some(team) = team {
                h2 class="nhsuk-heading-m" id="team-overdue" { "Overdue in your team" }
                @if team.items.is_empty() {
                    p class="nhsuk-body" id="no-overdue" { "Nothing in your team is overdue." }
                } @else {
                    (table(("team-overdue-tasks", "team-"), "Your team's overdue tasks", who, &team.items, (&shown.errors, names)))
                }
            }
            h2 class="nhsuk-heading-m" id="new-task" { "Add a task for yourself" }
            (raise_form(who, &shown.raise, &shown.errors))
        },
    )
}

/// A table of tasks; `at` starts its rows' and forms' ids (a task can be in both tables).
fn table(
    (id, at): (&str, &str),
    caption: &str,
    who: &ConsoleSession,
    items: &[TaskItem],
    (errors, names): (&[FieldError], &Names),
) -> Markup {
    html! {
        div class="nhsuk-table-container" role="region" aria-label=(caption) tabindex="0" {
            table class="nhsuk-table" id=(id) {
                caption class="nhsuk-table__caption" { (caption) }
                (head(&["Task", "Person", "Due", "Done or cancel"]))
                tbody class="nhsuk-table__body" {
                    @for item in items {
                        tr class="nhsuk-table__row" id={(at) "task-" (item.task_id)} {
                            td class="nhsuk-table__cell" {
                                (crate::pages::capitalise(&item.label))
                                @if item.rule.is_some() { br; span class="nhsuk-body-s" { "(made by a rule)" } }
                            }
                            td class="nhsuk-table__cell" {
                                @if let Some(client) = item.client_id {
                                    (crate::pages::person_link(client, names))
                                } @else { "Team task" }
                            }
                            td class="nhsuk-table__cell" {
                                (day(item.due_on))
                                @if item.overdue { " " strong class="nhsuk-tag nhsuk-tag--red" { "Overdue" } }
                            }
                            td class="nhsuk-table__cell" { (close_forms(who, item, at, errors)) }
                        }
                    }
                }
            }
        }
    }
}

fn close_forms(who: &ConsoleSession, item: &TaskItem, at: &str, errors: &[FieldError]) -> Markup {
    let field = format!("{at}reason-{}", item.task_id);
    let error = error_for(errors, &field);
    html! {
        form method="post" action={"/console/tasks/" (item.task_id) "/done"} novalidate {
            (csrf_field(who))
            input type="hidden" name="form_id" value=(Uuid::new_v4());
            input type="hidden" name="version" value=(item.stream_version);
            input type="hidden" name="at" value=(at);
            button class="nhsuk-button nhsuk-button--secondary nhsuk-u-margin-bottom-2" id={(at) "done-" (item.task_id)} type="submit" { "Mark done" }
        }
        form method="post" action={"/console/tasks/" (item.task_id) "/cancel"} novalidate {
            (csrf_field(who))
            input type="hidden" name="form_id" value=(Uuid::new_v4());
            input type="hidden" name="version" value=(item.stream_version);
            input type="hidden" name="at" value=(at);
            div class=(group_class(error)) {
                label class="nhsuk-label" for=(field) { "Why cancel it?" }
                (error_message(error))
                select class="nhsuk-select" id=(field) name="reason" {
                    option value="" { "Choose a reason" }
                    @for reason in TaskCancelReason::ALL {
                        option value=(domain::code(reason)) { (crate::pages::capitalise(reason.label())) }
                    }
                }
            }
            button class="nhsuk-button nhsuk-button--warning" id={(at) "cancel-" (item.task_id)} type="submit" { "Cancel task" }
        }
    }
}

fn raise_form(who: &ConsoleSession, form: &RaiseForm, errors: &[FieldError]) -> Markup {
    let kind_error = error_for(errors, "kind");
    let due_error = error_for(errors, "due_on");
    html! {
        form method="post" action="/console/tasks" novalidate {
            (csrf_field(who))
            input type="hidden" name="task_id" value=(form.task_id);
            div class=(group_class(kind_error)) {
                fieldset class="nhsuk-fieldset" {
                    legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "What is to be done?" }
                    (error_message(kind_error))
                    (radios("kind", TaskKind::ALL, TaskKind::label, Some(&form.kind), false))
                }
            }
            div class=(group_class(due_error)) {
                label class="nhsuk-label" for="due_on" { "Due by" }
                (error_message(due_error))
                input class="nhsuk-input nhsuk-input--width-10" id="due_on" name="due_on" type="date" value=(form.due_on);
            }
            button class="nhsuk-button" id="raise-task" type="submit" { "Add the task" }
        }
    }
}

/// Where a refusal belongs on the page: the field it names, else the closing forms' reason.
fn refusal(error: TaskCommandError, reason_field: &str) -> Result<FieldError, AppError> {
    match error {
        TaskCommandError::Refused(refusal) => {
            let field = match refusal.field() {
                Some("due_on") => "due_on".to_owned(),
                _ => reason_field.to_owned(),
            };
            Ok(FieldError::new(field, refusal.to_string()))
        }
        TaskCommandError::Command(CommandError::Invalid { field, message }) => Ok(FieldError::new(
            if field == "assignee_id" {
                "kind"
            } else {
                field
            },
            message,
        )),
        TaskCommandError::Command(CommandError::Conflict { .. }) => Ok(FieldError::new(
            reason_field,
            "This task changed while you were looking at it: look again, and try again",
        )),
        TaskCommandError::Command(CommandError::IdempotencyMismatch(_)) => Ok(FieldError::new(
            reason_field,
            "This form was already sent with other entries, and those were recorded: open \
             the tasks page again to do something new",
        )),
        TaskCommandError::Command(e) => Err(AppError::Command(e)),
        TaskCommandError::NoSuchCase => Err(AppError::NotFound("no such client record".to_owned())),
    }
}

/// Sends the raise form.
pub(crate) async fn raise(
    req: HttpRequest,
    body: web::Bytes,
    console: web::Data<Console>,
) -> HttpResponse {
    let (fields, session) = posted_form!(req, console, body);
    let form = RaiseForm::from_fields(&fields);
    let again = |errors: Vec<FieldError>, form: RaiseForm| Shown {
        raise: form,
        errors,
        banner: None,
        after: None,
    };
    let command = match form.command() {
        Ok(c) => c,
        Err(errors) => {
            return render(
                &req,
                &console,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                again(errors, form),
            )
            .await;
        }
    };
    let request = TaskRequest {
        idempotency_key: Some(format!("console-task-{}", form.task_id)),
        fingerprint: Some(forms::fingerprint(&req, &fields)),
        correlation_id: request_id(&req),
        expected_version: None,
    };
    match TaskService::beside(&console.cases)
        .raise_as(&session.principal, &command, request)
        .await
    {
        Ok(done) => see_other(&format!(
            "/console/tasks?done=raised&after={}",
            position(&done)
        )),
        Err(e) => match refusal(e, "kind") {
            Ok(error) => {
                render(
                    &req,
                    &console,
                    &session,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    again(vec![error], form),
                )
                .await
            }
            Err(e) => failure(Some(&session), &e),
        },
    }
}

/// The log position of what a command wrote, for the page to wait for.
fn position(done: &app::tasks::TaskAccepted) -> i64 {
    done.result
        .events
        .iter()
        .map(|e| e.position)
        .max()
        .unwrap_or(1)
}

/// What closing a task means.
#[derive(Clone, Copy)]
enum Close {
    Done,
    Cancel,
}

/// Sends a task's done form.
pub(crate) async fn done(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    console: web::Data<Console>,
) -> HttpResponse {
    close(req, path, body, console, Close::Done).await
}

/// Sends a task's cancel form.
pub(crate) async fn cancel(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    console: web::Data<Console>,
) -> HttpResponse {
    close(req, path, body, console, Close::Cancel).await
}

async fn close(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    console: web::Data<Console>,
    how: Close,
) -> HttpResponse {
    let (fields, session) = posted_form!(req, console, body);
    let Ok(task) = Uuid::try_parse(&path) else {
        return failure(Some(&session), &AppError::NotFound("no such task".into()));
    };
    // Where the refusal shows: the table the form was sent from (a task can be in both).
    let at = if text(&fields, "at") == "team-" {
        "team-"
    } else {
        ""
    };
    let reason_field = format!("{at}reason-{task}");
    let form = form_id(&fields, "form_id");
    // A version that is not a number is refused, not passed by unchecked.
    let Ok(expected_version) = forms::shown_version(&text(&fields, "version")) else {
        return refused(
            &req,
            &console,
            &session,
            vec![FieldError::new(
                reason_field,
                crate::pages::capitalise(forms::BAD_VERSION),
            )],
        )
        .await;
    };
    let request = TaskRequest {
        idempotency_key: Some(format!("console-task-close-{form}")),
        fingerprint: Some(forms::fingerprint(&req, &fields)),
        correlation_id: request_id(&req),
        expected_version,
    };
    let tasks = TaskService::beside(&console.cases);
    let sent = match how {
        Close::Done => {
            tasks
                .done_as(&session.principal, TaskId(task), request)
                .await
        }
        Close::Cancel => {
            let Some(reason) = coded(TaskCancelReason::ALL, &text(&fields, "reason")) else {
                let errors = vec![FieldError::new(
                    reason_field,
                    "Select why the task is cancelled",
                )];
                return refused(&req, &console, &session, errors).await;
            };
            tasks
                .cancel_as(
                    &session.principal,
                    TaskId(task),
                    &CancelTask { reason },
                    request,
                )
                .await
        }
    };
    let done = match how {
        Close::Done => "done",
        Close::Cancel => "cancelled",
    };
    match sent {
        Ok(sent) => see_other(&format!(
            "/console/tasks?done={done}&after={}",
            position(&sent)
        )),
        Err(e) => match refusal(e, &reason_field) {
            Ok(error) => refused(&req, &console, &session, vec![error]).await,
            Err(e) => failure(Some(&session), &e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::filled;

    #[test]
    fn the_raise_form_reads_a_kind_and_a_day_and_names_what_is_missing() {
        let id = Uuid::new_v4().to_string();
        let form = RaiseForm::from_fields(&filled(&[
            ("task_id", &id),
            ("kind", "call_back"),
            ("due_on", "2026-12-24"),
        ]));
        let command = form.command().expect("a command");
        assert_eq!(command.task_id.0.to_string(), id);
        assert_eq!(command.kind, TaskKind::CallBack);
        assert_eq!(
            command.due_on,
            NaiveDate::from_ymd_opt(2026, 12, 24).expect("a day")
        );
        let form = RaiseForm::from_fields(&filled(&[("kind", "nap"), ("due_on", "24/12/2026")]));
        let fields: Vec<String> = form
            .command()
            .expect_err("refused")
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["kind", "due_on"]);
    }
}
