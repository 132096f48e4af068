//! Tasks: something a member of staff must do by a date, on a person's case or for their team.
//!
//! One stream per task (stream type `task`, stream id = the task id). A task is raised once,
//! may pass to someone else while open, and is closed once: done or cancelled. What to do is a
//! code ([`TaskKind`]), never free text, so a task holds no personal data: the person is named
//! by their client id, and what is known about them stays sealed in their own record.
//!
//! Who may raise, reassign or close a task is the application's policy; the rules here are
//! the task's own: raised once, closed once, nothing changes a closed task, and a task is not
//! due before the day it was raised.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codes::coded;
use crate::event::DomainEvent;
use crate::ids::{ClientId, StaffId, TeamId};

/// The stream type of a task.
pub const TASK_STREAM: &str = "task";

/// A task (its stream id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct TaskId(pub Uuid);

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

coded!(
    /// What the task is: what to do, in the service's words.
    TaskKind {
        /// A follow-up assessment is due after the baseline.
        FollowUpDue => "follow-up assessment due",
        /// No contact with the person for too long.
        MakeContact => "make contact",
        /// The person missed an appointment: chase it.
        ChaseMissedAppointment => "chase a missed appointment",
        /// An onward connection has no outcome yet: find out what came of it.
        ChaseConnectionOutcome => "find out what came of a connection",
        /// A referral is waiting for a decision.
        TriageReferral => "triage a referral",
        /// Call the person back.
        CallBack => "call the person back",
        /// Review the person's plan with them.
        ReviewPlan => "review the plan",
        /// Anything else the team agrees.
        Other => "other",
    }
);

coded!(
    /// Why a task was cancelled.
    TaskCancelReason {
        NoLongerNeeded => "no longer needed",
        Duplicate => "a duplicate of another task",
        RaisedInError => "raised in error",
        CaseClosed => "the case closed",
    }
);

/// Which rule made a task, when a rule did (the task maker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskRule {
    /// The rule's name in the task rules (`projections/tasks/`), e.g. `no_contact`.
    pub rule: String,
    /// The version of the rule file.
    pub version: u32,
}

/// A task was raised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskRaised {
    pub task_id: TaskId,
    pub kind: TaskKind,
    /// The person's case it is about; none for a team task.
    pub client_id: Option<ClientId>,
    /// The team it belongs to (its lead sees it when overdue).
    pub team_id: TeamId,
    /// Who is to do it; none: the team's (its lead's to hand out).
    pub assignee_id: Option<StaffId>,
    /// The day it was raised.
    pub raised_on: NaiveDate,
    /// The day it is due by.
    pub due_on: NaiveDate,
    /// The rule that made it; none when someone raised it by hand.
    pub rule: Option<TaskRule>,
}

/// The task passed to someone else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskReassigned {
    pub assignee_id: StaffId,
    pub team_id: TeamId,
}

/// The task was done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskDone {
    /// The day it was done.
    pub done_on: NaiveDate,
}

/// The task was cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskCancelled {
    pub reason: TaskCancelReason,
}

/// Everything that can happen on a task's stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "payload")]
pub enum TaskEvent {
    TaskRaised(TaskRaised),
    TaskReassigned(TaskReassigned),
    TaskDone(TaskDone),
    TaskCancelled(TaskCancelled),
}

/// Every task event type with its current schema version.
pub const TASK_EVENT_TYPES: &[(&str, i32)] = &[
    ("TaskRaised", 1),
    ("TaskReassigned", 1),
    ("TaskDone", 1),
    ("TaskCancelled", 1),
];

impl DomainEvent for TaskEvent {
    const TYPES: &'static [(&'static str, i32)] = TASK_EVENT_TYPES;
    const STREAM: &'static str = TASK_STREAM;

    fn index(&self) -> usize {
        match self {
            TaskEvent::TaskRaised(_) => 0,
            TaskEvent::TaskReassigned(_) => 1,
            TaskEvent::TaskDone(_) => 2,
            TaskEvent::TaskCancelled(_) => 3,
        }
    }
}

/// Where a task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Done,
    Cancelled,
}

impl TaskStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Done => "done",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

/// A task folded from its stream; `None` before it was raised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskState {
    pub raised: Option<TaskRaised>,
    pub assignee_id: Option<StaffId>,
    pub team_id: Option<TeamId>,
    pub status: Option<TaskStatus>,
}

/// Folds one task event. Holds no rule.
pub fn evolve_task(mut state: TaskState, event: &TaskEvent) -> TaskState {
    match event {
        TaskEvent::TaskRaised(e) => {
            state.assignee_id = e.assignee_id;
            state.team_id = Some(e.team_id);
            state.status = Some(TaskStatus::Open);
            state.raised = Some(e.clone());
        }
        TaskEvent::TaskReassigned(e) => {
            state.assignee_id = Some(e.assignee_id);
            state.team_id = Some(e.team_id);
        }
        TaskEvent::TaskDone(_) => state.status = Some(TaskStatus::Done),
        TaskEvent::TaskCancelled(_) => state.status = Some(TaskStatus::Cancelled),
    }
    state
}

/// What can be asked of a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskCommand {
    Raise(TaskRaised),
    Reassign(TaskReassigned),
    /// Done on the day given (today, from the caller's clock).
    Done(TaskDone),
    Cancel(TaskCancelled),
}

/// How many years after the day it is raised a task may fall due at the latest: a date past
/// it is a slip of the keyboard, not a task (and a year past 9999 cannot be written as a date).
pub const TASK_DUE_WITHIN_YEARS: u32 = 5;

/// Why a task command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error("there is no such task")]
    NotRaised,
    #[error("this task was already raised")]
    AlreadyRaised,
    #[error("this task is already {0}")]
    Closed(&'static str),
    #[error("a task cannot be due before the day it is raised ({raised_on})")]
    DueBeforeRaised { raised_on: NaiveDate },
    #[error(
        "a task is due within {TASK_DUE_WITHIN_YEARS} years of the day it is raised (by {latest})"
    )]
    DueTooLate { latest: NaiveDate },
    #[error("a task cannot be done before the day it was raised ({raised_on})")]
    DoneBeforeRaised { raised_on: NaiveDate },
    #[error("the task is already with this member of staff")]
    SameAssignee,
}

impl TaskError {
    /// A stable code for the rule refused.
    pub fn rule(&self) -> &'static str {
        match self {
            TaskError::NotRaised => "task_not_raised",
            TaskError::AlreadyRaised => "task_already_raised",
            TaskError::Closed(_) => "task_closed",
            TaskError::DueBeforeRaised { .. } => "task_due_before_raised",
            TaskError::DueTooLate { .. } => "task_due_too_late",
            TaskError::DoneBeforeRaised { .. } => "task_done_before_raised",
            TaskError::SameAssignee => "task_same_assignee",
        }
    }

    /// The field the refusal is about, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            TaskError::DueBeforeRaised { .. } | TaskError::DueTooLate { .. } => Some("due_on"),
            TaskError::DoneBeforeRaised { .. } => Some("done_on"),
            TaskError::SameAssignee => Some("assignee_id"),
            TaskError::AlreadyRaised => Some("task_id"),
            _ => None,
        }
    }
}

/// Decides what a command means for a task: raised once; closed (done or cancelled) once;
/// nothing changes a closed task; not due, nor done, before the day it was raised.
///
/// # Errors
/// A [`TaskError`] naming the rule refused.
pub fn decide_task(state: &TaskState, command: &TaskCommand) -> Result<Vec<TaskEvent>, TaskError> {
    if let TaskCommand::Raise(raise) = command {
        if state.raised.is_some() {
            return Err(TaskError::AlreadyRaised);
        }
        if raise.due_on < raise.raised_on {
            return Err(TaskError::DueBeforeRaised {
                raised_on: raise.raised_on,
            });
        }
        let latest = raise
            .raised_on
            .checked_add_months(chrono::Months::new(12 * TASK_DUE_WITHIN_YEARS))
            .unwrap_or(NaiveDate::MAX);
        if raise.due_on > latest {
            return Err(TaskError::DueTooLate { latest });
        }
        return Ok(vec![TaskEvent::TaskRaised(raise.clone())]);
    }
    let Some(raised) = &state.raised else {
        return Err(TaskError::NotRaised);
    };
    match state.status {
        Some(TaskStatus::Done) => return Err(TaskError::Closed("done")),
        Some(TaskStatus::Cancelled) => return Err(TaskError::Closed("cancelled")),
        _ => {}
    }
    match command {
        TaskCommand::Raise(_) => Err(TaskError::AlreadyRaised),
        TaskCommand::Reassign(change) => {
            if state.assignee_id == Some(change.assignee_id) {
                return Err(TaskError::SameAssignee);
            }
            Ok(vec![TaskEvent::TaskReassigned(change.clone())])
        }
        TaskCommand::Done(done) => {
            if done.done_on < raised.raised_on {
                return Err(TaskError::DoneBeforeRaised {
                    raised_on: raised.raised_on,
                });
            }
            Ok(vec![TaskEvent::TaskDone(done.clone())])
        }
        TaskCommand::Cancel(cancel) => Ok(vec![TaskEvent::TaskCancelled(cancel.clone())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).expect("a day")
    }

    fn raised(raised_on: u32, due_on: u32) -> TaskRaised {
        TaskRaised {
            task_id: TaskId(Uuid::from_u128(1)),
            kind: TaskKind::CallBack,
            client_id: Some(ClientId(Uuid::from_u128(2))),
            team_id: TeamId(Uuid::from_u128(3)),
            assignee_id: Some(StaffId(Uuid::from_u128(4))),
            raised_on: day(raised_on),
            due_on: day(due_on),
            rule: None,
        }
    }

    fn fold(events: &[TaskEvent]) -> TaskState {
        events.iter().fold(TaskState::default(), evolve_task)
    }

    /// Given the events so far, a command, and what it should come to.
    fn check(given: &[TaskEvent], command: TaskCommand, expect: Result<&[&str], TaskError>) {
        let got = decide_task(&fold(given), &command)
            .map(|events| events.iter().map(|e| e.event_type()).collect::<Vec<_>>());
        assert_eq!(
            got,
            expect.map(<[&str]>::to_vec),
            "{command:?} after {given:?}"
        );
    }

    #[test]
    fn a_task_is_raised_once_and_closed_once() {
        let raise = TaskEvent::TaskRaised(raised(10, 12));
        let done = TaskEvent::TaskDone(TaskDone { done_on: day(11) });
        let cancelled = TaskEvent::TaskCancelled(TaskCancelled {
            reason: TaskCancelReason::Duplicate,
        });
        let cancel = TaskCommand::Cancel(TaskCancelled {
            reason: TaskCancelReason::NoLongerNeeded,
        });
        let done_on = |d| TaskCommand::Done(TaskDone { done_on: day(d) });
        let other = StaffId(Uuid::from_u128(9));
        let reassign = |s| {
            TaskCommand::Reassign(TaskReassigned {
                assignee_id: s,
                team_id: TeamId(Uuid::from_u128(3)),
            })
        };
        check(&[], TaskCommand::Raise(raised(10, 10)), Ok(&["TaskRaised"]));
        check(
            &[],
            TaskCommand::Raise(raised(10, 9)),
            Err(TaskError::DueBeforeRaised { raised_on: day(10) }),
        );
        // Due five years on at the latest (to the day), never in a year past 9999.
        let due = |date: NaiveDate| {
            TaskCommand::Raise(TaskRaised {
                due_on: date,
                ..raised(10, 10)
            })
        };
        let latest = NaiveDate::from_ymd_opt(2031, 11, 10).expect("a day");
        check(&[], due(latest), Ok(&["TaskRaised"]));
        for late in [latest.succ_opt().expect("a day"), NaiveDate::MAX] {
            check(&[], due(late), Err(TaskError::DueTooLate { latest }));
        }
        check(
            std::slice::from_ref(&raise),
            TaskCommand::Raise(raised(10, 12)),
            Err(TaskError::AlreadyRaised),
        );
        check(&[], done_on(11), Err(TaskError::NotRaised));
        check(&[], cancel.clone(), Err(TaskError::NotRaised));
        check(std::slice::from_ref(&raise), done_on(11), Ok(&["TaskDone"]));
        // Late is still done: a task is done after its due day as well.
        check(std::slice::from_ref(&raise), done_on(20), Ok(&["TaskDone"]));
        check(
            std::slice::from_ref(&raise),
            done_on(9),
            Err(TaskError::DoneBeforeRaised { raised_on: day(10) }),
        );
        check(
            std::slice::from_ref(&raise),
            cancel.clone(),
            Ok(&["TaskCancelled"]),
        );
        check(
            &[raise.clone(), done.clone()],
            done_on(11),
            Err(TaskError::Closed("done")),
        );
        check(
            &[raise.clone(), done.clone()],
            cancel.clone(),
            Err(TaskError::Closed("done")),
        );
        check(
            &[raise.clone(), cancelled.clone()],
            done_on(11),
            Err(TaskError::Closed("cancelled")),
        );
        check(
            &[raise.clone(), cancelled],
            reassign(other),
            Err(TaskError::Closed("cancelled")),
        );
        check(
            std::slice::from_ref(&raise),
            reassign(other),
            Ok(&["TaskReassigned"]),
        );
        check(
            std::slice::from_ref(&raise),
            reassign(StaffId(Uuid::from_u128(4))),
            Err(TaskError::SameAssignee),
        );
    }

    #[test]
    fn evolve_follows_the_assignee_and_the_status() {
        let state = fold(&[
            TaskEvent::TaskRaised(raised(10, 12)),
            TaskEvent::TaskReassigned(TaskReassigned {
                assignee_id: StaffId(Uuid::from_u128(8)),
                team_id: TeamId(Uuid::from_u128(7)),
            }),
        ]);
        assert_eq!(state.assignee_id, Some(StaffId(Uuid::from_u128(8))));
        assert_eq!(state.team_id, Some(TeamId(Uuid::from_u128(7))));
        assert_eq!(state.status, Some(TaskStatus::Open));
        let state = evolve_task(state, &TaskEvent::TaskDone(TaskDone { done_on: day(12) }));
        assert_eq!(state.status, Some(TaskStatus::Done));
    }

    #[test]
    fn the_task_event_encoding_is_pinned() {
        let mut by_rule = raised(10, 24);
        by_rule.kind = TaskKind::FollowUpDue;
        by_rule.assignee_id = None;
        by_rule.rule = Some(TaskRule {
            rule: "follow_up_due".to_owned(),
            version: 1,
        });
        let events = [
            TaskEvent::TaskRaised(raised(10, 12)),
            TaskEvent::TaskRaised(by_rule),
            TaskEvent::TaskReassigned(TaskReassigned {
                assignee_id: StaffId(Uuid::from_u128(8)),
                team_id: TeamId(Uuid::from_u128(7)),
            }),
            TaskEvent::TaskDone(TaskDone { done_on: day(12) }),
            TaskEvent::TaskCancelled(TaskCancelled {
                reason: TaskCancelReason::CaseClosed,
            }),
        ];
        let encoded: Vec<Value> = events
            .iter()
            .map(|e| json!({ "event_type": e.event_type(), "schema_version": e.schema_version(), "payload": e.to_payload() }))
            .collect();
        insta::assert_json_snapshot!("task_event_encoding", encoded);
        for event in &events {
            let back = TaskEvent::decode(
                event.event_type(),
                event.schema_version(),
                event.to_payload(),
            )
            .expect("decodes");
            assert_eq!(&back, event);
        }
        assert!(TaskEvent::decode("ContactRecorded", 1, json!({})).is_err());
        insta::assert_snapshot!(
            TASK_EVENT_TYPES.iter().map(|(name, version)| format!("{name} v{version}")).collect::<Vec<_>>().join("\n"),
            @r"
        TaskRaised v1
        TaskReassigned v1
        TaskDone v1
        TaskCancelled v1
        "
        );
    }
}
