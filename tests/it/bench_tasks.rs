//! The scale benchmark's tasks (`bench scale`): what it appends is what "my tasks" and "my
//! team's overdue tasks" answer, through the tasks read model and `app::tasks`, on the real
//! database. Not a timing test: the benchmark times them at 10M events.

use std::collections::BTreeSet;

use app::access::{Principal, Role};
use chrono::Utc;
use devtools::bench_tasks::{append_tasks, client_tasks, link_worker_of, team_of};
use domain::{StaffId, TeamId};
use uuid::Uuid;

use crate::support::{ORG, catch_up, store_with_db};

const CLIENTS: u64 = 300;
const LINK_WORKERS: u64 = 7;

#[tokio::test]
async fn the_bench_tasks_are_what_my_tasks_and_my_teams_overdue_tasks_answer() {
    let (_db, store) = store_with_db(4).await;
    let clock = app::Clock::fixed(Utc::now());
    let today = clock.today();
    let written = append_tasks(&store, CLIENTS, LINK_WORKERS, today)
        .await
        .expect("the bench's tasks appended");
    let expected: Vec<_> = (1..=u128::from(CLIENTS))
        .flat_map(|n| client_tasks(n, u128::from(LINK_WORKERS), today))
        .collect();
    assert_eq!(written.tasks, expected.len() as u64);
    assert_eq!(
        written.open,
        expected.iter().filter(|t| t.is_open()).count() as u64
    );
    assert!(
        written.open > 0 && written.open < written.tasks,
        "some open, some closed: {written:?}"
    );
    catch_up(&store, projector::TasksProjection).await;
    let tasks = app::tasks::TaskService::beside(&app::CaseService::with_clock(
        store.clone(),
        clock.clone(),
    ));

    // Each link worker's open tasks: exactly the open ones assigned to them, soonest due first.
    let mut rule_made = 0;
    for w in 0..u128::from(LINK_WORKERS) {
        let worker = link_worker_of(w, u128::from(LINK_WORKERS));
        let principal = Principal {
            staff_id: StaffId(worker),
            organisation_id: ORG,
            team_id: None,
            role: Role::LinkWorker,
            token_id: Uuid::nil(),
        };
        let page = tasks
            .mine(&principal, None, Some(app::MAX_LIMIT), None)
            .await
            .expect("my tasks");
        let mut want: Vec<_> = expected
            .iter()
            .filter(|t| t.is_open() && t.raised().assignee_id == Some(StaffId(worker)))
            .map(|t| (t.raised().due_on, t.task_id.0))
            .collect();
        want.sort();
        let got: Vec<_> = page.items.iter().map(|t| (t.due_on, t.task_id)).collect();
        assert!(!got.is_empty(), "worker {worker} has open tasks");
        assert_eq!(got, want, "worker {worker}'s open tasks in due order");
        assert!(page.items.iter().any(|t| t.overdue), "some overdue");
        assert!(page.items.iter().any(|t| !t.overdue), "some not yet due");
        rule_made += page.items.iter().filter(|t| t.rule.is_some()).count();
    }
    assert!(rule_made > 0, "rule-made tasks among the open ones");

    // Each team's overdue tasks for its lead: the open ones due before today, assigned or not.
    let mut unassigned = 0;
    for t in 0..4u128 {
        let team = team_of(t);
        let lead = Principal {
            staff_id: StaffId(Uuid::from_u128(0x1EAD)),
            organisation_id: ORG,
            team_id: Some(TeamId(team)),
            role: Role::TeamLead,
            token_id: Uuid::nil(),
        };
        let page = tasks
            .team_overdue(&lead, team, None, Some(app::MAX_LIMIT), None)
            .await
            .expect("the team's overdue tasks");
        let want: BTreeSet<_> = expected
            .iter()
            .filter(|x| {
                x.is_open() && x.raised().team_id == TeamId(team) && x.raised().due_on < today
            })
            .map(|x| x.task_id.0)
            .collect();
        let got: BTreeSet<_> = page.items.iter().map(|x| x.task_id).collect();
        assert!(!got.is_empty(), "team {team} has overdue tasks");
        assert_eq!(got, want, "team {team}'s overdue tasks");
        assert!(page.items.iter().all(|x| x.overdue && x.due_on < today));
        assert!(
            page.items.is_sorted_by_key(|x| (x.due_on, x.task_id)),
            "most overdue first"
        );
        unassigned += page
            .items
            .iter()
            .filter(|x| x.assignee_id.is_none())
            .count();
    }
    assert!(
        unassigned > 0,
        "team tasks for a lead to hand out are among them"
    );
}
