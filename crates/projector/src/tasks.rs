//! The tasks read model: one row per task stream, for "my open tasks" and "a team's overdue
//! tasks" (see `migrations/V24__tasks.sql` for the indexes that serve them).

use domain::task::{TaskEvent, TaskStatus};
use eventstore::RecordedEvent;

use crate::runner::ProjectionError;
use crate::stream_table::stream_table;

/// Folds task streams into `tasks`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TasksProjection;

/// Its name (and checkpoint key).
pub const TASKS: &str = "tasks_v1";

stream_table!(TasksProjection, TASKS, "tasks", TaskEvent);

impl TasksProjection {
    async fn apply_event(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        event: &RecordedEvent,
        decoded: &TaskEvent,
    ) -> Result<(), ProjectionError> {
        let id = event.stream_id;
        let version = event.stream_version;
        match decoded {
            TaskEvent::TaskRaised(e) => {
                let rules_version = e
                    .rule
                    .as_ref()
                    .map(|r| i32::try_from(r.version).unwrap_or(i32::MAX));
                tx.execute(
                    "INSERT INTO tasks (task_id, organisation_id, team_id, assignee_id, client_id, \
                     kind, status, raised_on, due_on, rule, rules_version, raised_by, stream_version) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (task_id) DO NOTHING",
                    &[
                        &id,
                        &event.metadata.organisation_id,
                        &e.team_id.0,
                        &e.assignee_id.map(|s| s.0),
                        &e.client_id.map(|c| c.0),
                        &domain::code(&e.kind),
                        &e.raised_on,
                        &e.due_on,
                        &e.rule.as_ref().map(|r| r.rule.clone()),
                        &rules_version,
                        &event.metadata.actor_id,
                        &version,
                    ],
                )
                .await?;
            }
            TaskEvent::TaskReassigned(e) => {
                tx.execute(
                    "UPDATE tasks SET assignee_id = $2, team_id = $3, stream_version = $4 \
                     WHERE task_id = $1",
                    &[&id, &e.assignee_id.0, &e.team_id.0, &version],
                )
                .await?;
            }
            TaskEvent::TaskDone(e) => {
                close(tx, event, TaskStatus::Done, e.done_on).await?;
            }
            TaskEvent::TaskCancelled(_) => {
                let on = event.metadata.occurred_at.date_naive();
                close(tx, event, TaskStatus::Cancelled, on).await?;
            }
        }
        Ok(())
    }
}

async fn close(
    tx: &tokio_postgres::Transaction<'_>,
    event: &RecordedEvent,
    status: TaskStatus,
    on: chrono::NaiveDate,
) -> Result<(), ProjectionError> {
    tx.execute(
        "UPDATE tasks SET status = $2, closed_on = $3, stream_version = $4 WHERE task_id = $1",
        &[
            &event.stream_id,
            &status.as_str(),
            &on,
            &event.stream_version,
        ],
    )
    .await?;
    Ok(())
}
