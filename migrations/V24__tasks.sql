-- The tasks read model (`tasks_v1`): one row per task stream, projected from the log and
-- rebuilt at will. Tasks hold no personal data (what to do is a code; the person is a client
-- id), so the row is the whole task.
--
-- "Overdue" is computed at query time (due_on before the clock's today), so the projection
-- reads no clock. The two partial indexes serve the two questions asked most, as index range
-- scans in due order, however many closed tasks pile up:
--   my open tasks, ordered by due day:      (organisation_id, assignee_id, due_on, task_id)
--   a team's open tasks due before a day:   (organisation_id, team_id, due_on, task_id)
CREATE TABLE tasks (
    task_id         uuid PRIMARY KEY,
    organisation_id uuid NOT NULL,
    team_id         uuid NOT NULL,
    assignee_id     uuid,
    client_id       uuid,
    kind            text NOT NULL,
    status          text NOT NULL CHECK (status IN ('open', 'done', 'cancelled')),
    raised_on       date NOT NULL,
    due_on          date NOT NULL,
    closed_on       date,
    rule            text,
    rules_version   integer,
    raised_by       uuid NOT NULL,
    stream_version  bigint NOT NULL
);
CREATE INDEX tasks_open_by_assignee ON tasks (organisation_id, assignee_id, due_on, task_id)
    WHERE status = 'open';
CREATE INDEX tasks_open_by_team ON tasks (organisation_id, team_id, due_on, task_id)
    WHERE status = 'open';

GRANT SELECT, INSERT, UPDATE, DELETE ON tasks TO casebook_app;
