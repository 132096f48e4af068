//! The tasks of the scale benchmark's people: a year's worth of what link workers and team
//! leads are asked to do beside the journeys of `bench_rebuild::journey_events_sized`, decided
//! by the task rules of the domain and appended through the bulk path a history import uses.
//!
//! Every person has three closed tasks of the past months: the task maker's follow-up
//! assessment (done), its chase of a missed appointment (done), and a call-back raised by hand
//! (done, or one in five cancelled). A person whose case is still open also has what is open
//! now: a hand-made call-back (one in five overdue), for one in two a rule-made "make contact"
//! after a silence (most of them overdue), for one in six the next follow-up due in the coming
//! week; and one open case in fifty has a team task for the lead to hand out (no assignee).
//! Rule-made tasks carry the id and rule the task maker gives them (`app::task_maker::task_id`).
//! Dates are counted back and forth from `today`, so "overdue" means what it means on the day
//! the benchmark runs.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use domain::task::{
    TASK_STREAM, TaskCancelReason, TaskCancelled, TaskCommand, TaskDone, TaskEvent, TaskId,
    TaskKind, TaskRaised, TaskRule, TaskState, decide_task, evolve_task,
};
use domain::{ClientId, StaffId, TeamId};
use eventstore::{EventStore, Metadata, NewStream};
use uuid::Uuid;

use crate::bench_rebuild::BENCH_ORGANISATION;

/// The link worker of person `n` among `link_workers` (as `journey_events_sized` assigns).
pub fn link_worker_of(n: u128, link_workers: u128) -> Uuid {
    Uuid::from_u128(0x5000 + n % link_workers)
}

/// The team of person `n` (as `journey_events_sized` assigns).
pub fn team_of(n: u128) -> Uuid {
    Uuid::from_u128(0x7ea + n % 4)
}

/// Whether person `n`'s case is closed at the end of their journey (as `bench scale` makes
/// them: one in three).
pub fn is_closed(n: u128) -> bool {
    (n - 1).is_multiple_of(3)
}

/// One task as the benchmark makes it: its id, its decided events and who raised it.
#[derive(Clone, Debug)]
pub struct BenchTask {
    /// The task's id (its stream's).
    pub task_id: TaskId,
    /// Its events, decided by the task rules: raised, then done or cancelled when closed.
    pub events: Vec<TaskEvent>,
    /// Raised by the task maker (the nil actor) or by hand (the link worker).
    pub by_rule: bool,
}

impl BenchTask {
    /// What the task was raised as.
    pub fn raised(&self) -> &TaskRaised {
        match &self.events[0] {
            TaskEvent::TaskRaised(raised) => raised,
            other => unreachable!("a task's first event is its raising, not {other:?}"),
        }
    }

    /// Whether it is still open.
    pub fn is_open(&self) -> bool {
        self.events.len() == 1
    }
}

/// What to do with a task once raised.
enum Then {
    Open,
    Done(NaiveDate),
    Cancel,
}

/// A stream id for the `k`th hand-made task of person `n`: beside the bench's client ids
/// (small numbers), never one of them.
fn hand_made_id(n: u128, k: u128) -> TaskId {
    TaskId(Uuid::from_u128((0x7a5c_u128 << 96) | (n << 16) | k))
}

/// A number from 0 to `k - 1` for person `n`, spread so that it does not follow `n` modulo the
/// link workers (who hold every `link_workers`th person).
fn spread(n: u128, salt: u128, k: u128) -> u128 {
    ((n ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17) % k
}

/// Person `n`'s tasks, open and closed, with dates counted from `today`.
pub fn client_tasks(n: u128, link_workers: u128, today: NaiveDate) -> Vec<BenchTask> {
    let client = ClientId(Uuid::from_u128(n));
    let worker = StaffId(link_worker_of(n, link_workers));
    let team = TeamId(team_of(n));
    let days = |d: i64| today + Duration::days(d);
    let pick = |salt: u128, k: u128| spread(n, salt, k) as i64;
    let rule = |name: &str| {
        Some(TaskRule {
            rule: name.to_owned(),
            version: 1,
        })
    };
    let rule_id =
        |name: &str, trigger: String| app::task_maker::task_id(1, name, client.0, &trigger);
    // The follow-up the maker raises for the WEMWBS baseline taken on `baseline`.
    let follow_up = |baseline: NaiveDate, raised_on: NaiveDate, due_on: NaiveDate| TaskRaised {
        task_id: rule_id("follow_up_due", format!("wemwbs/{baseline}")),
        kind: TaskKind::FollowUpDue,
        client_id: Some(client),
        team_id: team,
        assignee_id: Some(worker),
        raised_on,
        due_on,
        rule: rule("follow_up_due"),
    };
    let mut tasks = Vec::new();
    let mut add = |task: TaskRaised, then: Then, by_rule: bool| {
        let raised_on = task.raised_on;
        let mut commands = vec![TaskCommand::Raise(task.clone())];
        match then {
            Then::Open => {}
            Then::Done(on) => commands.push(TaskCommand::Done(TaskDone {
                done_on: on.max(raised_on),
            })),
            Then::Cancel => commands.push(TaskCommand::Cancel(TaskCancelled {
                reason: TaskCancelReason::NoLongerNeeded,
            })),
        }
        let mut state = TaskState::default();
        let mut events = Vec::new();
        for command in &commands {
            let decided = decide_task(&state, command)
                .unwrap_or_else(|e| panic!("the benchmark's task breaks a rule: {e}"));
            for event in decided {
                state = evolve_task(state, &event);
                events.push(event);
            }
        }
        tasks.push(BenchTask {
            task_id: task.task_id,
            events,
            by_rule,
        });
    };

    // The past months: the follow-up the maker raised a week ahead of the baseline's 84 days,
    // its chase of a missed appointment, and a call-back by hand; all closed.
    let baseline = days(-180 - pick(1, 60));
    let follow_up_due = baseline + Duration::days(84);
    add(
        follow_up(baseline, follow_up_due - Duration::days(7), follow_up_due),
        Then::Done(follow_up_due - Duration::days(pick(2, 3))),
        true,
    );
    let missed = days(-60 - pick(3, 30));
    add(
        TaskRaised {
            task_id: rule_id("missed_appointment", format!("bench/{missed}/1")),
            kind: TaskKind::ChaseMissedAppointment,
            client_id: Some(client),
            team_id: team,
            assignee_id: Some(worker),
            raised_on: missed,
            due_on: missed + Duration::days(1),
            rule: rule("missed_appointment"),
        },
        Then::Done(missed + Duration::days(1)),
        true,
    );
    let called = days(-40 - pick(4, 20));
    add(
        TaskRaised {
            task_id: hand_made_id(n, 1),
            kind: TaskKind::CallBack,
            client_id: Some(client),
            team_id: team,
            assignee_id: Some(worker),
            raised_on: called,
            due_on: called + Duration::days(3),
            rule: None,
        },
        if pick(5, 5) == 0 {
            Then::Cancel
        } else {
            Then::Done(called + Duration::days(2))
        },
        false,
    );
    if is_closed(n) {
        return tasks;
    }

    // What is open now on an open case.
    let due = days(pick(6, 14) - 3);
    add(
        TaskRaised {
            task_id: hand_made_id(n, 2),
            kind: TaskKind::CallBack,
            client_id: Some(client),
            team_id: team,
            assignee_id: Some(worker),
            raised_on: due.min(days(-2)),
            due_on: due,
            rule: None,
        },
        Then::Open,
        false,
    );
    if pick(7, 2) == 0 {
        let silent_since = days(-28 - pick(8, 7));
        let raised = days(-pick(8, 7));
        add(
            TaskRaised {
                task_id: rule_id("no_contact", format!("{silent_since}T10:00:00+00:00")),
                kind: TaskKind::MakeContact,
                client_id: Some(client),
                team_id: team,
                assignee_id: Some(worker),
                raised_on: raised,
                due_on: raised + Duration::days(2),
                rule: rule("no_contact"),
            },
            Then::Open,
            true,
        );
    }
    if pick(9, 6) == 0 {
        let baseline = days(6 - 84);
        add(follow_up(baseline, days(-1), days(6)), Then::Open, true);
    }
    if pick(10, 50) == 0 {
        let due = days(pick(11, 10) - 5);
        add(
            TaskRaised {
                task_id: hand_made_id(n, 3),
                kind: TaskKind::ReviewPlan,
                client_id: None,
                team_id: team,
                assignee_id: None,
                raised_on: due.min(days(-5)),
                due_on: due,
                rule: None,
            },
            Then::Open,
            false,
        );
    }
    tasks
}

/// What [`append_tasks`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TasksWritten {
    /// Task streams.
    pub tasks: u64,
    /// Of which still open.
    pub open: u64,
    /// Events.
    pub events: u64,
}

/// The new stream of `task`, each event with its own metadata: raised by the task maker or by
/// the link worker, closed by the link worker, each on its own day.
fn new_stream(task: &BenchTask) -> NewStream {
    let raised = task.raised();
    let at =
        |day: NaiveDate| Utc.from_utc_datetime(&day.and_hms_opt(10, 0, 0).expect("a time of day"));
    let worker = raised.assignee_id.map(|s| s.0).unwrap_or_default();
    let new_events = app::new_events(&task.events);
    let events = new_events
        .into_iter()
        .zip(&task.events)
        .map(|(event, decided)| {
            let (actor_id, actor_role, day) = match decided {
                TaskEvent::TaskRaised(r) if task.by_rule => {
                    (Uuid::nil(), "task_maker", r.raised_on)
                }
                TaskEvent::TaskRaised(r) => (worker, "link_worker", r.raised_on),
                TaskEvent::TaskDone(d) => (worker, "link_worker", d.done_on),
                _ => (worker, "link_worker", raised.raised_on),
            };
            let metadata = Metadata {
                actor_id,
                actor_role: actor_role.to_owned(),
                organisation_id: BENCH_ORGANISATION,
                correlation_id: Uuid::new_v4(),
                causation_id: None,
                occurred_at: at(day),
            };
            (event, metadata)
        })
        .collect();
    NewStream {
        stream_id: task.task_id.0,
        stream_type: TASK_STREAM.to_owned(),
        events,
        lookups: Vec::new(),
    }
}

/// Appends the tasks of people 1 to `clients` (see the module's documentation), as whole new
/// streams through the bulk path, the tasks of 300 people a statement, four appenders at once.
///
/// # Errors
/// A store failure.
pub async fn append_tasks(
    store: &EventStore,
    clients: u64,
    link_workers: u64,
    today: NaiveDate,
) -> anyhow::Result<TasksWritten> {
    const PER_BATCH: u64 = 300;
    let appenders = 4u64;
    let mut running = Vec::new();
    for a in 0..appenders {
        let store = store.clone();
        running.push(tokio::spawn(async move {
            let mut written = TasksWritten::default();
            let mut first = 1 + a * PER_BATCH;
            while first <= clients {
                let last = (first + PER_BATCH - 1).min(clients);
                let mut streams = Vec::new();
                for n in first..=last {
                    for task in client_tasks(u128::from(n), u128::from(link_workers), today) {
                        written.tasks += 1;
                        written.open += u64::from(task.is_open());
                        written.events += task.events.len() as u64;
                        streams.push(new_stream(&task));
                    }
                }
                store.append_new_streams(&streams).await?;
                first += appenders * PER_BATCH;
            }
            Ok::<_, anyhow::Error>(written)
        }));
    }
    let mut total = TasksWritten::default();
    for appender in running {
        let written = appender.await??;
        total.tasks += written.tasks;
        total.open += written.open;
        total.events += written.events;
    }
    Ok(total)
}
