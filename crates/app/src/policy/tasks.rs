//! Who may raise, close and read tasks: pure rules over the caller, the task and (for a task
//! on a person's case) the case, tested as a table below and over HTTP by the matrix test.

use domain::task::TaskState;
use domain::{StaffId, TeamId};
use uuid::Uuid;

use super::{forbidden, require, same_organisation, works_case};
use crate::access::{Principal, Role};
use crate::cases::{Denied, LoadedCase};

/// A task as loaded for a decision: its state and the organisation it belongs to.
#[derive(Clone, Debug, Default)]
pub struct LoadedTask {
    pub state: TaskState,
    /// The organisation of its first event; `None` when there is no such task.
    pub organisation_id: Option<Uuid>,
    /// The stream's version (0: no such task).
    pub version: i64,
}

/// Who a task is to be raised for: the member of staff named as its assignee, looked up in
/// the caller's organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assignee {
    pub staff_id: StaffId,
    pub team_id: Option<TeamId>,
    pub role: Role,
    pub active: bool,
}

/// Why a raise names the wrong assignee (422 at the field, not an access refusal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssigneeProblem {
    /// A link worker raises tasks for themself only; a lead for their own team.
    NotInTeam,
    /// Not a link worker or team lead, or not active.
    CannotHoldTasks,
    /// A link worker or lead of no team: a task belongs to a team.
    NoTeam,
}

/// May the caller raise a task, on `case` when it names one? Link workers and team leads, on
/// a case they work (its link worker, or a lead of its team). Returns the team the task goes
/// to: the assignee's.
///
/// # Errors
/// `Err(Err(Denied))`: [`Denied::Forbidden`] for another role or a case not theirs,
/// [`Denied::NotFound`] for no record or another organisation's. `Err(Ok(problem))` for an
/// assignee the caller may not name.
pub fn may_raise_task(
    principal: &Principal,
    case: Option<&LoadedCase>,
    assignee: &Assignee,
) -> Result<TeamId, Result<AssigneeProblem, Denied>> {
    require(
        principal,
        &[Role::LinkWorker, Role::TeamLead],
        "raising a task",
    )
    .map_err(Err)?;
    if let Some(case) = case {
        if !case.exists() {
            return Err(Err(Denied::NotFound));
        }
        same_organisation(principal, case).map_err(Err)?;
        if !works_case(principal, case) {
            return Err(Err(forbidden(match principal.role {
                Role::LinkWorker => "this case is not assigned to you",
                _ => "this case belongs to another team",
            })));
        }
    }
    if !assignee.active || !matches!(assignee.role, Role::LinkWorker | Role::TeamLead) {
        return Err(Ok(AssigneeProblem::CannotHoldTasks));
    }
    let Some(team) = assignee.team_id else {
        return Err(Ok(AssigneeProblem::NoTeam));
    };
    match principal.role {
        Role::LinkWorker if assignee.staff_id != principal.staff_id => {
            Err(Ok(AssigneeProblem::NotInTeam))
        }
        Role::TeamLead if principal.team_id != Some(team) => Err(Ok(AssigneeProblem::NotInTeam)),
        _ => Ok(team),
    }
}

/// May the caller close (mark done or cancel) this task? Its assignee, or a lead of its team.
///
/// # Errors
/// [`Denied::Forbidden`] for another role or someone else's task; [`Denied::NotFound`] for no
/// such task or another organisation's.
pub fn may_close_task(principal: &Principal, task: &LoadedTask) -> Result<(), Denied> {
    require(
        principal,
        &[Role::LinkWorker, Role::TeamLead],
        "closing a task",
    )?;
    match task.organisation_id {
        Some(organisation) if organisation == principal.organisation_id => {}
        _ => return Err(Denied::NotFound),
    }
    let assignee = task.state.assignee_id == Some(principal.staff_id);
    let lead = principal.role == Role::TeamLead
        && task.state.team_id.is_some()
        && task.state.team_id == principal.team_id;
    if assignee || lead {
        Ok(())
    } else {
        Err(forbidden(match principal.role {
            Role::LinkWorker => "this task is not yours",
            _ => "this task belongs to another team",
        }))
    }
}

/// May the caller read their own tasks? Link workers and team leads.
///
/// # Errors
/// [`Denied::Forbidden`] for any other role.
pub fn may_read_own_tasks(principal: &Principal) -> Result<(), Denied> {
    require(
        principal,
        &[Role::LinkWorker, Role::TeamLead],
        "a task list",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::task::{TaskEvent, TaskKind, TaskRaised, evolve_task};

    fn principal(role: Role, staff: u128, team: Option<u128>) -> Principal {
        Principal {
            staff_id: StaffId(Uuid::from_u128(staff)),
            organisation_id: Uuid::from_u128(100),
            team_id: team.map(|t| TeamId(Uuid::from_u128(t))),
            role,
            token_id: Uuid::nil(),
        }
    }

    fn task(organisation: u128, assignee: Option<u128>, team: u128) -> LoadedTask {
        let raised = TaskRaised {
            task_id: domain::task::TaskId(Uuid::from_u128(1)),
            kind: TaskKind::CallBack,
            client_id: None,
            team_id: TeamId(Uuid::from_u128(team)),
            assignee_id: assignee.map(|a| StaffId(Uuid::from_u128(a))),
            raised_on: chrono::NaiveDate::MIN,
            due_on: chrono::NaiveDate::MIN,
            rule: None,
        };
        LoadedTask {
            state: evolve_task(TaskState::default(), &TaskEvent::TaskRaised(raised)),
            organisation_id: Some(Uuid::from_u128(organisation)),
            version: 1,
        }
    }

    #[test]
    fn closing_a_task_is_for_its_assignee_and_its_team_lead() {
        use Role::*;
        let forbidden = |d: &Result<(), Denied>| matches!(d, Err(Denied::Forbidden(_)));
        let absent = |d: &Result<(), Denied>| matches!(d, Err(Denied::NotFound));
        let allowed = |d: &Result<(), Denied>| d.is_ok();
        type Check = fn(&Result<(), Denied>) -> bool;
        // (caller, task, expected)
        let table: &[(Principal, LoadedTask, Check)] = &[
            (
                principal(LinkWorker, 7, Some(3)),
                task(100, Some(7), 3),
                allowed,
            ),
            (
                principal(LinkWorker, 8, Some(3)),
                task(100, Some(7), 3),
                forbidden,
            ),
            (
                principal(TeamLead, 9, Some(3)),
                task(100, Some(7), 3),
                allowed,
            ),
            (principal(TeamLead, 9, Some(3)), task(100, None, 3), allowed),
            (
                principal(TeamLead, 9, Some(4)),
                task(100, Some(7), 3),
                forbidden,
            ),
            (
                principal(LinkWorker, 7, Some(3)),
                task(200, Some(7), 3),
                absent,
            ),
            (
                principal(TeamLead, 9, Some(3)),
                task(200, Some(7), 3),
                absent,
            ),
            (
                principal(Auditor, 7, None),
                task(100, Some(7), 3),
                forbidden,
            ),
            (
                principal(Administrator, 7, None),
                task(100, Some(7), 3),
                forbidden,
            ),
            (
                principal(LinkWorker, 7, Some(3)),
                LoadedTask::default(),
                absent,
            ),
        ];
        for (caller, task, expected) in table {
            let got = may_close_task(caller, task);
            assert!(expected(&got), "{caller:?} closing {task:?}: {got:?}");
        }
    }

    #[test]
    fn a_task_is_raised_for_oneself_or_by_a_lead_for_their_team() {
        use Role::*;
        let member = |staff: u128, team: Option<u128>, role: Role| Assignee {
            staff_id: StaffId(Uuid::from_u128(staff)),
            team_id: team.map(|t| TeamId(Uuid::from_u128(t))),
            role,
            active: true,
        };
        let worker = principal(LinkWorker, 7, Some(3));
        let lead = principal(TeamLead, 9, Some(3));
        let team = Ok(TeamId(Uuid::from_u128(3)));
        assert_eq!(
            may_raise_task(&worker, None, &member(7, Some(3), LinkWorker)),
            team
        );
        assert_eq!(
            may_raise_task(&worker, None, &member(8, Some(3), LinkWorker)),
            Err(Ok(AssigneeProblem::NotInTeam))
        );
        assert_eq!(
            may_raise_task(&lead, None, &member(8, Some(3), LinkWorker)),
            team
        );
        assert_eq!(
            may_raise_task(&lead, None, &member(8, Some(4), LinkWorker)),
            Err(Ok(AssigneeProblem::NotInTeam))
        );
        assert_eq!(
            may_raise_task(&lead, None, &member(8, Some(3), Auditor)),
            Err(Ok(AssigneeProblem::CannotHoldTasks))
        );
        let mut inactive = member(8, Some(3), LinkWorker);
        inactive.active = false;
        assert_eq!(
            may_raise_task(&lead, None, &inactive),
            Err(Ok(AssigneeProblem::CannotHoldTasks))
        );
        assert!(matches!(
            may_raise_task(
                &principal(Auditor, 7, None),
                None,
                &member(7, Some(3), LinkWorker)
            ),
            Err(Err(Denied::Forbidden(_)))
        ));
        // A case that does not exist, or is another organisation's, is absent.
        assert_eq!(
            may_raise_task(
                &worker,
                Some(&LoadedCase::default()),
                &member(7, Some(3), LinkWorker)
            ),
            Err(Err(Denied::NotFound))
        );
        let foreign = LoadedCase {
            version: 1,
            organisation_id: Some(Uuid::from_u128(200)),
            ..LoadedCase::default()
        };
        assert_eq!(
            may_raise_task(&worker, Some(&foreign), &member(7, Some(3), LinkWorker)),
            Err(Err(Denied::NotFound))
        );
        // A case of the organisation nobody has assigned: a lead works it, a worker does not.
        let unassigned = LoadedCase {
            version: 1,
            organisation_id: Some(Uuid::from_u128(100)),
            ..LoadedCase::default()
        };
        assert!(matches!(
            may_raise_task(&worker, Some(&unassigned), &member(7, Some(3), LinkWorker)),
            Err(Err(Denied::Forbidden(_)))
        ));
        assert_eq!(
            may_raise_task(&lead, Some(&unassigned), &member(9, Some(3), TeamLead)),
            team
        );
    }
}
