//! Read models: each [`Projection`] folds events into its own tables, and the [`Runner`] writes
//! every batch together with the projection's checkpoint in one transaction, so delivery that
//! is at least once (a crash replays the last batch) becomes exactly once in the tables.
//!
//! A projection runs in one place at a time: the runner holds a lease row, renewed inside the
//! same transaction as every batch, so a runner that lost its lease can never commit a batch.
//! Projections never call out, never read the clock and never make random numbers: a rebuild
//! replays the log into the same rows.

pub mod bookkeeping;
mod caseload;
pub mod code_list;
pub mod corrected;
mod directory;
pub mod gp_messages;
pub mod held;
pub mod live;
mod outcomes;
mod registry;
pub mod reminders;
pub mod rules;
mod runner;
pub mod safeguarding_rules;
mod stream_table;
pub mod tag_rules;
mod task_rules;
mod tasks;

pub use bookkeeping::{live_version, start_version, switch_live, versions};
pub use caseload::{
    CaseloadFilter, CaseloadProjection, CaseloadRow, LIVE_CASELOAD, SHADOW_CASELOAD,
    ShadowCaseload, apply_case_event, switch_rebuilt_caseload,
};
pub use directory::{DIRECTORY, DirectoryProjection};
pub use gp_messages::{GP_OUTBOX, GpOutboxProjection};
pub use outcomes::{
    ClientOutcomes, FIGURE_TABLES, OutcomesProjection, ScorePair, apply_outcome_event,
    outcomes_name, pairs_by_measure, score_pairs,
};
pub use registry::{Lag, OUTCOMES, ProjectionVersion, VersionState, all, lag, spawn_all};
pub use reminders::{REMINDER_OUTBOX, ReminderOutboxProjection};
pub use runner::{Batch, Projection, ProjectionError, Runner, RunnerSettings, Together};
pub use task_rules::TaskRules;
pub use tasks::{TASKS, TasksProjection};
