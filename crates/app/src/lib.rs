//! The application layer between every caller and the log: HTTP, the command line, the demo and
//! the console all call it, and none of them holds a rule of its own.
//!
//! [`CaseService`] carries out a command on a client's record (load the stream, fold it, check
//! its dates against the [`Clock`], `decide`, check the directory, append under the stream's
//! version, idempotent by key); [`access`] knows staff, roles and tokens; [`policy`] decides
//! who may do what to which record; [`journey`], [`reports`], [`directory`] and [`privacy`] are
//! the reads and the rest of the commands; [`freshness`] lets a read wait until its read models
//! have applied the caller's own writes.
//!
//! Nothing here knows HTTP; nothing below this crate knows roles.

pub mod access;
pub mod admin;
pub mod caseload;
mod cases;
pub mod clock;
pub mod directory;
pub mod equity;
mod error;
pub mod export;
pub mod fhir;
pub mod freshness;
pub mod gp_outbox;
pub mod health;
pub mod history;
mod intake;
mod journey;
pub mod lone_working;
pub mod matching;
pub mod names;
pub mod oidc;
pub mod outbox;
pub mod policy;
pub mod privacy;
pub mod provider;
pub mod records;
pub mod reminders;
pub mod reports;
pub mod safeguarding;
pub mod sessions;
pub mod snapshots;
mod stream;
pub mod tags;
pub mod task_maker;
pub mod tasks;

pub use cases::{
    Authorise, CaseService, CommandError, CommandOptions, Denied, LoadedCase, StaffCommand,
};
pub use clock::Clock;
pub use intake::Referred;

/// Every upcasting step of the domain's events, for the event store: each store the product
/// opens reads old rows through these.
pub fn upcasters() -> eventstore::Upcasters {
    domain::UPCASTS.iter().fold(
        eventstore::Upcasters::new(),
        |upcasters, (event_type, from, step)| upcasters.register(event_type, *from, *step),
    )
}
pub use error::{AppError, DEFAULT_LIMIT, MAX_LIMIT, Page, database_unreachable, pool_unreachable};
pub use freshness::{AsOf, Freshness, ReadWait};
pub use journey::{Journey, JourneyEntry, JourneyView};
pub use stream::new_events;

/// The one of `all` whose stored code (`code_of`) is `code`: how every coded value this crate
/// keeps (a view of a record, an outbox's status, a snapshot's state) is read back.
pub(crate) fn by_code<T: Copy>(all: &[T], code: &str, code_of: fn(T) -> &'static str) -> Option<T> {
    all.iter().copied().find(|value| code_of(*value) == code)
}

/// Who the command line and the developer tools act as in the log: the operator at the
/// console, of no organisation, acting at `at`.
pub fn operator_metadata(at: chrono::DateTime<chrono::Utc>) -> eventstore::Metadata {
    eventstore::Metadata {
        actor_id: uuid::Uuid::nil(),
        actor_role: "operator".to_owned(),
        organisation_id: uuid::Uuid::nil(),
        correlation_id: uuid::Uuid::new_v4(),
        causation_id: None,
        occurred_at: at,
    }
}
