//! Read models: each [`Projection`] folds events into its own tables, and the [`Runner`] writes
//! every batch together with the projection's checkpoint in one transaction, so delivery that
//! is at least once (a crash replays the last batch) becomes exactly once in the tables.
//!
//! A projection runs in one place at a time: the runner holds a lease row, renewed inside the
//! same transaction as every batch, so a runner that lost its lease can never commit a batch.
//! Projections never call out, never read the clock and never make random numbers: a rebuild
//! replays the log into the same rows.

mod caseload;
mod registry;
mod runner;

pub use caseload::{CaseloadFilter, CaseloadProjection, CaseloadRow, apply_case_event};
pub use registry::{Lag, all, lag, spawn_all};
pub use runner::{Projection, ProjectionError, Runner, RunnerSettings};
