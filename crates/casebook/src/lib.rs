//! The Casebook service: settings, telemetry, the database it runs on (a private cluster or a
//! configured server), and the HTTP application. `main.rs` is only the command line.
//!
//! Library crates below this one never read the environment; this crate turns flags and
//! environment variables into typed settings and hands them down.

pub mod database;
pub mod directory;
pub mod gp_outbox;
pub mod http;
pub mod rebuild;
pub mod reminders;
pub mod sealer;
pub mod settings;
pub mod supervisor;
pub mod task_maker;
pub mod telemetry;

pub use database::Database;
pub use http::Application;
pub use settings::{Cli, Command, DatabaseSettings};
