//! The application layer between the outside world and the log: [`CaseService`] carries out a
//! command on a client's record (load the stream, fold it, `decide`, append under the stream's
//! version, idempotent by key); [`access`] knows staff, roles and tokens; [`policy`] decides who
//! may do what to which record; [`http`] is the HTTP API and its OpenAPI contract.
//!
//! Nothing below this crate knows HTTP or roles.

pub mod access;
mod cases;
pub mod clock;
pub mod directory;
pub mod http;
mod journey;
pub mod policy;
pub mod privacy;
pub mod reports;

pub use cases::{Authorise, CaseService, CommandError, CommandOptions, Denied, LoadedCase};
pub use clock::Clock;
pub use journey::{Journey, JourneyEntry, JourneyView, journey};
