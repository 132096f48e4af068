//! Tasks: raised by hand or by the task maker ([`crate::task_maker`]), done or cancelled by
//! their assignee or their team's lead, and read as "my open tasks" and "my team's overdue
//! tasks" from the tasks read model (`tasks_v1`).
//!
//! A command loads the task's stream, asks the policy ([`policy::tasks`]), decides
//! ([`domain::task::decide_task`]) and appends under the stream's version, idempotent by key.

use chrono::NaiveDate;
use domain::task::{
    TASK_STREAM, TaskCancelReason, TaskCancelled, TaskCommand, TaskDone, TaskError, TaskEvent,
    TaskId, TaskKind, TaskRaised, TaskStatus, decide_task, evolve_task,
};
use domain::{ClientId, StaffId};
use eventstore::{AppendRequest, AppendResult, ExpectedVersion, Metadata, StoreError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::{self, Principal};
use crate::error::{AppError, Page};
use crate::freshness::{AsOf, as_of, snapshot};
use crate::policy;
use crate::policy::tasks::{Assignee, AssigneeProblem, LoadedTask};
use crate::{CaseService, CommandError, Denied};

/// A task to raise by hand.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseTask {
    /// Chosen by the caller, so that a retry names the same task: a random id (UUID version
    /// 4 or 7); version 8 ids are those Casebook derives itself, and are refused.
    pub task_id: TaskId,
    pub kind: TaskKind,
    /// The person's case it is about; none for a team task.
    #[serde(default)]
    pub client_id: Option<ClientId>,
    /// Who is to do it (a link worker: themself; a lead: anyone of their team); none: the
    /// caller.
    #[serde(default)]
    pub assignee_id: Option<StaffId>,
    /// The day it is due by (not before today).
    pub due_on: NaiveDate,
}

/// Why a task is cancelled.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelTask {
    pub reason: TaskCancelReason,
}

/// How a task command was sent: its idempotency key and what makes a retry "the same".
#[derive(Clone, Debug, Default)]
pub struct TaskRequest {
    /// A repeat of a key already used on this task returns the first result.
    pub idempotency_key: Option<String>,
    /// A digest of the request as received.
    pub fingerprint: Option<[u8; 32]>,
    /// Ties the events to the request that caused them.
    pub correlation_id: Uuid,
    /// The task version the caller last saw (HTTP If-Match); stale means a conflict.
    pub expected_version: Option<i64>,
}

/// Why a task command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum TaskCommandError {
    /// A rule of the task refused it.
    #[error(transparent)]
    Refused(#[from] TaskError),
    /// Refused or failed as any command is (access, a field, a conflict, the store).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The case a task to raise names is not one the caller may know of (none, or another
    /// organisation's): answered as absent.
    #[error("no such client record")]
    NoSuchCase,
}

impl From<Denied> for TaskCommandError {
    fn from(denied: Denied) -> Self {
        TaskCommandError::Command(denied.into())
    }
}

impl From<StoreError> for TaskCommandError {
    fn from(e: StoreError) -> Self {
        TaskCommandError::Command(e.into())
    }
}

impl From<crate::stream::LoadError> for TaskCommandError {
    fn from(e: crate::stream::LoadError) -> Self {
        match e {
            // Another kind of stream (a client's id given as a task's): no such task.
            crate::stream::LoadError::OtherKind(_) => Denied::NotFound.into(),
            other => TaskCommandError::Command(other.into()),
        }
    }
}

impl From<access::AccessError> for TaskCommandError {
    fn from(e: access::AccessError) -> Self {
        TaskCommandError::Command(e.into())
    }
}

fn invalid(field: &'static str, message: &str) -> TaskCommandError {
    TaskCommandError::Command(CommandError::Invalid {
        field,
        message: message.to_owned(),
    })
}

/// One task as lists show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TaskItem {
    pub task_id: Uuid,
    pub kind: TaskKind,
    /// What the kind means, in words.
    pub label: String,
    pub client_id: Option<Uuid>,
    pub team_id: Uuid,
    pub assignee_id: Option<Uuid>,
    pub status: TaskStatus,
    pub raised_on: NaiveDate,
    pub due_on: NaiveDate,
    /// Due before today (the service's clock) and still open.
    pub overdue: bool,
    /// The task rule that made it, if a rule did.
    pub rule: Option<String>,
    /// The task's version: what a command on it was decided against.
    pub stream_version: i64,
}

/// A page of tasks, in due order.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TaskPage {
    pub items: Vec<TaskItem>,
    /// The day "overdue" was judged against.
    pub today: NaiveDate,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// What the tasks read model had applied when this page was read.
    pub as_of: AsOf,
}

/// What a task command wrote.
#[derive(Clone, Debug)]
pub struct TaskAccepted {
    pub result: AppendResult,
    pub events: Vec<TaskEvent>,
}

/// Carries out task commands and answers task queries, over the case service's store, clock
/// and read settings.
#[derive(Clone)]
pub struct TaskService {
    cases: CaseService,
}

/// Where a page of tasks starts: after this due day and task id.
fn parse_cursor(cursor: Option<&str>) -> Result<Option<(NaiveDate, Uuid)>, AppError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let bad = || AppError::bad_input("cursor", "give the next_cursor of the page before");
    let (day, id) = cursor.split_once('_').ok_or_else(bad)?;
    Ok(Some((
        day.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    )))
}

impl TaskService {
    /// Tasks beside `cases`: the same store, clock, read wait and replica.
    pub fn beside(cases: &CaseService) -> TaskService {
        TaskService {
            cases: cases.clone(),
        }
    }

    /// Reads and folds a task's stream.
    ///
    /// # Errors
    /// A store failure, or an event that cannot be decoded.
    pub async fn load(&self, id: TaskId) -> Result<LoadedTask, TaskCommandError> {
        Ok(crate::stream::load(self.cases.store(), id.0, LoadedTask::default(), fold).await?)
    }

    /// The task's stream loaded for a command under `request`'s key: the task, or
    /// (`Err`) the answer stored under the key when it was used before.
    async fn load_keyed(
        &self,
        id: Uuid,
        request: &TaskRequest,
        principal: &Principal,
    ) -> Result<Result<LoadedTask, TaskAccepted>, TaskCommandError> {
        let (loaded, head) = crate::stream::load_for_command(
            self.cases.store(),
            id,
            request.idempotency_key.as_deref(),
            LoadedTask::default(),
            fold,
        )
        .await?;
        Ok(match replayed(&head, request, principal, &loaded)? {
            Some(answer) => Err(answer),
            None => Ok(loaded),
        })
    }

    fn metadata(&self, principal: &Principal, correlation_id: Uuid) -> Metadata {
        principal.metadata(correlation_id, self.cases.clock().now())
    }

    /// Raises a task for a member of staff: the policy ([`policy::tasks::may_raise_task`]) on
    /// the case it names and the assignee, then the task's own rules. Idempotent by key; a
    /// task id already raised is refused (`task_already_raised`), and so is one of the shape
    /// the task maker derives ([`domain::is_derived`]).
    ///
    /// # Errors
    /// [`TaskCommandError`]: denied, a field (the assignee), a rule, a conflict, the store.
    pub async fn raise_as(
        &self,
        principal: &Principal,
        raise: &RaiseTask,
        request: TaskRequest,
    ) -> Result<TaskAccepted, TaskCommandError> {
        // The task maker's ids are its own: a caller that could raise a task under one would
        // keep the maker from raising it (it takes the id for its own task, already raised).
        if domain::is_derived(raise.task_id.0) {
            return Err(invalid("task_id", domain::DERIVED_ID_REFUSED));
        }
        let loaded = match self
            .load_keyed(raise.task_id.0, &request, principal)
            .await?
        {
            Ok(fresh) => fresh,
            Err(replayed) => return Ok(replayed),
        };
        let case = match raise.client_id {
            Some(client) => Some(self.cases.load(client).await?),
            None => None,
        };
        // Whether the caller may raise a task on this case at all decides first (an absent
        // case is absent, whoever it names).
        let caller = Assignee {
            staff_id: principal.staff_id,
            team_id: principal.team_id,
            role: principal.role,
            active: true,
        };
        match policy::tasks::may_raise_task(principal, case.as_ref(), &caller) {
            Err(Err(Denied::NotFound)) => return Err(TaskCommandError::NoSuchCase),
            Err(Err(denied)) => return Err(denied.into()),
            _ => {}
        }
        let assignee_id = raise.assignee_id.unwrap_or(principal.staff_id);
        let member = {
            let client = self.cases.connection().await?;
            access::staff_member_cached(&client, principal.organisation_id, assignee_id.0).await?
        };
        let Some(member) = member else {
            return Err(invalid(
                "assignee_id",
                "no such member of staff in this organisation",
            ));
        };
        let assignee = Assignee {
            staff_id: StaffId(member.staff_id),
            team_id: member.team_id.map(domain::TeamId),
            role: member.role,
            active: member.active,
        };
        let team = match policy::tasks::may_raise_task(principal, case.as_ref(), &assignee) {
            Ok(team) => team,
            Err(Err(denied)) => return Err(denied.into()),
            Err(Ok(problem)) => {
                return Err(invalid(
                    "assignee_id",
                    match problem {
                        AssigneeProblem::NotInTeam => {
                            "a link worker raises tasks for themself, a team lead for their team"
                        }
                        AssigneeProblem::CannotHoldTasks => {
                            "tasks are for active link workers and team leads"
                        }
                        AssigneeProblem::NoTeam => "that member of staff is in no team",
                    },
                ));
            }
        };
        let command = TaskCommand::Raise(TaskRaised {
            task_id: raise.task_id,
            kind: raise.kind,
            client_id: raise.client_id,
            team_id: team,
            assignee_id: Some(assignee.staff_id),
            raised_on: self.cases.clock().today(),
            due_on: raise.due_on,
            rule: None,
        });
        self.append(
            raise.task_id,
            &loaded,
            &command,
            self.metadata(principal, request.correlation_id),
            request,
        )
        .await
    }

    /// Marks a task done today, for its assignee or its team's lead
    /// ([`policy::tasks::may_close_task`]).
    ///
    /// # Errors
    /// As [`TaskService::raise_as`]; `task_closed` for a task already done or cancelled.
    pub async fn done_as(
        &self,
        principal: &Principal,
        id: TaskId,
        request: TaskRequest,
    ) -> Result<TaskAccepted, TaskCommandError> {
        let command = TaskCommand::Done(TaskDone {
            done_on: self.cases.clock().today(),
        });
        self.close_as(principal, id, &command, request).await
    }

    /// Cancels a task, for its assignee or its team's lead.
    ///
    /// # Errors
    /// As [`TaskService::done_as`].
    pub async fn cancel_as(
        &self,
        principal: &Principal,
        id: TaskId,
        cancel: &CancelTask,
        request: TaskRequest,
    ) -> Result<TaskAccepted, TaskCommandError> {
        let command = TaskCommand::Cancel(TaskCancelled {
            reason: cancel.reason,
        });
        self.close_as(principal, id, &command, request).await
    }

    async fn close_as(
        &self,
        principal: &Principal,
        id: TaskId,
        command: &TaskCommand,
        request: TaskRequest,
    ) -> Result<TaskAccepted, TaskCommandError> {
        let loaded = match self.load_keyed(id.0, &request, principal).await? {
            Ok(fresh) => fresh,
            Err(replayed) => return Ok(replayed),
        };
        policy::tasks::may_close_task(principal, &loaded)?;
        if let Some(expected) = request.expected_version
            && expected != loaded.version
        {
            return Err(TaskCommandError::Command(CommandError::Conflict {
                expected: ExpectedVersion::Exact(expected),
                actual: loaded.version,
            }));
        }
        self.append(
            id,
            &loaded,
            command,
            self.metadata(principal, request.correlation_id),
            request,
        )
        .await
    }

    /// Decides `command` against the loaded task and appends what it produces, after the
    /// version it was decided on.
    pub(crate) async fn append(
        &self,
        id: TaskId,
        loaded: &LoadedTask,
        command: &TaskCommand,
        metadata: Metadata,
        request: TaskRequest,
    ) -> Result<TaskAccepted, TaskCommandError> {
        let events = decide_task(&loaded.state, command)?;
        let result = self
            .cases
            .store()
            .append(AppendRequest {
                stream_id: id.0,
                stream_type: TASK_STREAM.to_owned(),
                expected: match loaded.version {
                    0 => ExpectedVersion::NoStream,
                    v => ExpectedVersion::Exact(v),
                },
                events: crate::stream::new_events(&events),
                metadata,
                idempotency_key: request.idempotency_key,
                fingerprint: request.fingerprint,
                lookups: None,
                claims: Vec::new(),
            })
            .await?;
        Ok(TaskAccepted { result, events })
    }

    /// The caller's open tasks, soonest due first (then by id), a page of `limit` after
    /// `cursor`, once the tasks read model has applied log position `after`.
    ///
    /// # Errors
    /// [`AppError::Denied`] for a role with no tasks; a bad `limit` or `cursor`;
    /// [`AppError::NotCaughtUp`]; store failures.
    pub async fn mine(
        &self,
        principal: &Principal,
        cursor: Option<&str>,
        limit: Option<i64>,
        after: Option<i64>,
    ) -> Result<TaskPage, AppError> {
        policy::tasks::may_read_own_tasks(principal)?;
        let page = Page::new(parse_cursor(cursor)?, limit)?;
        self.page(
            TaskList::Mine,
            principal.organisation_id,
            principal.staff_id.0,
            None,
            page,
            after,
        )
        .await
    }

    /// A team's open tasks due before today (the service's clock), most overdue first, for
    /// the team's lead ([`policy::may_read_team`]).
    ///
    /// # Errors
    /// As [`TaskService::mine`]; [`AppError::Denied`] for another team (403 in the
    /// organisation, 404 otherwise).
    pub async fn team_overdue(
        &self,
        principal: &Principal,
        team_id: Uuid,
        cursor: Option<&str>,
        limit: Option<i64>,
        after: Option<i64>,
    ) -> Result<TaskPage, AppError> {
        let no_such_team = |denied: Denied| match denied {
            Denied::NotFound => AppError::NotFound("no such team".to_owned()),
            denied => denied.into(),
        };
        if let Err(denied) = policy::may_read_team(principal, team_id, None, "overdue tasks") {
            let known = match denied {
                Denied::NotFound => {
                    let client = self.cases.store().pool().get().await?;
                    Some(
                        client
                            .query_opt(
                                "SELECT 1 FROM teams WHERE team_id = $1 AND organisation_id = $2",
                                &[&team_id, &principal.organisation_id],
                            )
                            .await?
                            .is_some(),
                    )
                }
                Denied::Forbidden(_) => None,
            };
            policy::may_read_team(principal, team_id, known, "overdue tasks")
                .map_err(no_such_team)?;
        }
        let page = Page::new(parse_cursor(cursor)?, limit)?;
        let today = self.cases.clock().today();
        self.page(
            TaskList::TeamOverdue,
            principal.organisation_id,
            team_id,
            Some(today),
            page,
            after,
        )
        .await
    }

    async fn page(
        &self,
        list: TaskList,
        organisation: Uuid,
        who: Uuid,
        due_before: Option<NaiveDate>,
        page: Page<(NaiveDate, Uuid)>,
        after: Option<i64>,
    ) -> Result<TaskPage, AppError> {
        let freshness = self.cases.freshness();
        freshness.wait(&[projector::TASKS], after).await?;
        let (after_day, after_id) = page.cursor.unzip();
        let after = after_day.zip(after_id);
        let sql = list_sql(list, due_before.is_some(), after.is_some());
        let limit = page.limit + 1;
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&organisation, &who];
        if let Some(day) = &due_before {
            params.push(day);
        }
        if let Some((day, id)) = &after {
            params.push(day);
            params.push(id);
        }
        params.push(&limit);
        let (rows, as_of) = {
            let mut client = self.cases.read_store().pool().get().await?;
            let snapshot = snapshot(&mut client).await?;
            let rows = snapshot.query(&sql, &params).await?;
            let as_of = as_of(&*snapshot, &[projector::TASKS]).await?;
            snapshot.commit().await?;
            (rows, freshness.recount(as_of).await?)
        };
        let today = self.cases.clock().today();
        let mut items = rows
            .iter()
            .map(|row| item(row, today))
            .collect::<Result<Vec<_>, _>>()?;
        let more = items.len() as i64 > page.limit;
        items.truncate(page.limit as usize);
        let next_cursor = more
            .then(|| items.last().map(|t| format!("{}_{}", t.due_on, t.task_id)))
            .flatten();
        Ok(TaskPage {
            items,
            today,
            next_cursor,
            as_of,
        })
    }
}

fn item(row: &tokio_postgres::Row, today: NaiveDate) -> Result<TaskItem, AppError> {
    let corrupt = |what: &str| AppError::Unexpected(anyhow::anyhow!("tasks.{what} unreadable"));
    let kind: TaskKind = serde_json::from_value(serde_json::Value::String(row.get("kind")))
        .map_err(|_| corrupt("kind"))?;
    let status: TaskStatus = serde_json::from_value(serde_json::Value::String(row.get("status")))
        .map_err(|_| corrupt("status"))?;
    let due_on: NaiveDate = row.get("due_on");
    Ok(TaskItem {
        task_id: row.get("task_id"),
        kind,
        label: kind.label().to_owned(),
        client_id: row.get("client_id"),
        team_id: row.get("team_id"),
        assignee_id: row.get("assignee_id"),
        status,
        raised_on: row.get("raised_on"),
        due_on,
        overdue: status == TaskStatus::Open && due_on < today,
        rule: row.get("rule"),
        stream_version: row.get("stream_version"),
    })
}

/// A list of open tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskList {
    /// A member of staff's (`$2` is their staff id).
    Mine,
    /// A team's due before a day (`$2` is the team's id).
    TeamOverdue,
}

/// The query of a page of `list`, soonest due first: `$1` the organisation, `$2` whose, then
/// the day they are due before (when `due_before`), then the cursor's day and task id (when
/// `after`), then the limit. Each condition is there only when asked for, so that every plan,
/// generic or not, is a range scan of one of the partial indexes on open tasks (V24).
pub fn list_sql(list: TaskList, due_before: bool, after: bool) -> String {
    let mut sql = String::from(
        "SELECT task_id, kind, client_id, team_id, assignee_id, status, raised_on, due_on, \
         rule, stream_version FROM tasks WHERE organisation_id = $1 AND ",
    );
    sql.push_str(match list {
        TaskList::Mine => "assignee_id = $2",
        TaskList::TeamOverdue => "team_id = $2",
    });
    sql.push_str(" AND status = 'open'");
    let mut n = 2;
    if due_before {
        n += 1;
        sql.push_str(&format!(" AND due_on < ${n}"));
    }
    if after {
        sql.push_str(&format!(
            " AND (due_on, task_id) > (${}, ${})",
            n + 1,
            n + 2
        ));
        n += 2;
    }
    sql.push_str(&format!(" ORDER BY due_on, task_id LIMIT ${}", n + 1));
    sql
}

pub(crate) fn fold(loaded: &mut LoadedTask, event: eventstore::RecordedEvent, decoded: TaskEvent) {
    loaded
        .organisation_id
        .get_or_insert(event.metadata.organisation_id);
    loaded.state = evolve_task(std::mem::take(&mut loaded.state), &decoded);
    loaded.version = event.stream_version;
}

/// The first result of a repeated idempotency key, for a caller who may know of the task: its
/// assignee or its team's lead, as for closing it ([`policy::tasks::may_close_task`]). The first
/// request was allowed; a colleague who reuses its key learns nothing.
fn replayed(
    head: &eventstore::StreamHead,
    request: &TaskRequest,
    principal: &Principal,
    loaded: &LoadedTask,
) -> Result<Option<TaskAccepted>, TaskCommandError> {
    if request.idempotency_key.is_none() {
        return Ok(None);
    }
    let visible =
        || policy::tasks::may_close_task(principal, loaded).map_err(TaskCommandError::from);
    match head.stored_result(request.fingerprint) {
        Ok(None) => Ok(None),
        Ok(Some(result)) => {
            visible()?;
            Ok(Some(TaskAccepted {
                result,
                events: Vec::new(),
            }))
        }
        Err(mismatch @ StoreError::IdempotencyMismatch { .. }) => {
            visible()?;
            Err(mismatch.into())
        }
        Err(other) => Err(other.into()),
    }
}
