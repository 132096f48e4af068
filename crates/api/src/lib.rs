//! The application layer between the outside world and the log: [`CaseService`] carries out a
//! command on a client's record (load the stream, fold it, `decide`, append under the stream's
//! version, idempotent by key).
//!
//! The HTTP routes, authorisation and problem details will live here too; this crate is where
//! JSON wire shapes are known, and nothing below it knows HTTP.

mod cases;
mod journey;

pub use cases::{CaseService, CommandError, CommandOptions, LoadedCase};
pub use journey::{Journey, JourneyEntry, JourneyView, journey};
