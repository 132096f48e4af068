//! When a fact happened, and the rules a back-dated fact is held to.
//!
//! Every event has two times: `occurred_at`, when the thing happened as the user says, and
//! `recorded_at`, when the log took it (the database's clock, never the caller's). A command
//! carrying its own date (a referral's `received_on`, a contact's `contacted_at`, an
//! assessment's `administered_on`) happened then; any other command happened at the
//! `occurred_at` its caller gave, or now. The rules here refuse a time that cannot be true:
//! later than now, earlier than the case's own earlier facts where the order matters, or older
//! than the back-entry window without a team lead's stated reason.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::CaseError;
use crate::command::CaseCommand;
use crate::state::CaseState;

/// How far back a member of staff may enter a fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackEntryWindow {
    /// Facts that happened more than this many days before today are late entries.
    pub days: i64,
    /// Whether the caller may enter a late one, with a reason (a team lead).
    pub may_exceed: bool,
}

/// When a command's fact happened, as `decide` checks it.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// When the fact happened.
    pub occurred_at: DateTime<Utc>,
    /// The field that said so (`occurred_at`, or the command's own date field), for refusals.
    pub field: &'static str,
    /// The time now, by the service's clock.
    pub now: DateTime<Utc>,
    /// How far a caller's clock may run ahead of ours before a time counts as future.
    pub skew: Duration,
    /// The back-entry window the caller is held to; none for imports and the service itself.
    pub window: Option<BackEntryWindow>,
    /// Why a fact is entered late (kept in the log, in a `LateEntryExplained` event).
    pub late_entry_reason: Option<String>,
    /// The day, when the fact is dated by a day alone (`occurred_at` is its UTC midnight).
    pub own_day: Option<NaiveDate>,
}

/// How many days ahead an appointment may be booked: a year (a date further off is a slip of
/// the keyboard, 2036 for 2026, and would stand as the next appointment for years).
pub const APPOINTMENT_DAYS_AHEAD: i64 = 366;

/// The first year a fact may be dated in: nothing a social prescribing service records
/// happened before it (a date in year 0 is a slip of the keyboard, not history).
pub const EARLIEST_YEAR: i32 = 1900;

/// Whether `day` is before [`EARLIEST_YEAR`].
pub fn too_early(day: NaiveDate) -> bool {
    day < NaiveDate::from_ymd_opt(EARLIEST_YEAR, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// Clock skew allowed between a caller's clock and ours before a time counts as future.
pub const ALLOWED_SKEW_SECONDS: i64 = 300;

impl Timing {
    /// The timing of `command`: its own date when it carries one, else `given`, else `now`.
    ///
    /// # Errors
    /// [`CaseError::Invalid`] on `occurred_at` when it is given to a command dated by a field
    /// of its own (one fact, one date).
    pub fn of(
        command: &CaseCommand,
        given: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Timing, CaseError> {
        let (occurred_at, field) = match (command.own_date(), given) {
            (Some((_, field)), Some(_)) => {
                return Err(CaseError::invalid(
                    "occurred_at",
                    format!("this entry is dated by its {field}; leave occurred_at out"),
                ));
            }
            (Some(own), None) => own,
            (None, Some(given)) => (given, "occurred_at"),
            (None, None) => (now, "occurred_at"),
        };
        Ok(Timing {
            occurred_at,
            field,
            now,
            skew: Duration::seconds(ALLOWED_SKEW_SECONDS),
            window: None,
            late_entry_reason: None,
            own_day: command.own_day(),
        })
    }

    /// The same timing, held to a back-entry window, with the caller's reason if any.
    pub fn within(mut self, window: BackEntryWindow, reason: Option<String>) -> Timing {
        self.window = Some(window);
        self.late_entry_reason = reason;
        self
    }

    /// The fact's day on the UK calendar: its own day, or the UK date of its instant (in the
    /// first hour of a summer day, a day ahead of UTC's), as the days it is held to are.
    fn day(&self) -> NaiveDate {
        self.own_day
            .unwrap_or_else(|| crate::calendar::today(self.occurred_at))
    }

    fn refuse(&self, message: String) -> CaseError {
        CaseError::invalid(self.field, message)
    }
}

/// Checks a command's time against the clock, the window and the record's earlier facts.
///
/// # Errors
/// [`CaseError::Invalid`] naming the field that gave the time (or `late_entry_reason`).
pub fn check_timing(
    state: &CaseState,
    command: &CaseCommand,
    timing: &Timing,
) -> Result<(), CaseError> {
    use CaseCommand as C;
    command.check_dates(timing.now)?;
    let to_come = match timing.own_day {
        Some(day) => day > crate::calendar::today(timing.now),
        None => timing.occurred_at > timing.now + timing.skew,
    };
    if to_come {
        let when = match timing.own_day {
            Some(day) => day.to_string(),
            None => crate::calendar::describe(timing.occurred_at),
        };
        return Err(timing.refuse(format!("{when} is in the future")));
    }
    if too_early(timing.day()) {
        return Err(timing.refuse(format!(
            "{} is before {EARLIEST_YEAR}: give the real date",
            timing.day()
        )));
    }
    if let Some(reason) = &timing.late_entry_reason
        && reason.trim().is_empty()
    {
        return Err(CaseError::invalid(
            "late_entry_reason",
            "say why the entry is late, or leave late_entry_reason out",
        ));
    }
    if let Some(window) = timing.window {
        let earliest = crate::calendar::today(timing.now) - Duration::days(window.days);
        if timing.day() < earliest {
            match (&timing.late_entry_reason, window.may_exceed) {
                (Some(_), true) => {}
                (Some(_), false) => {
                    return Err(CaseError::invalid(
                        "late_entry_reason",
                        format!(
                            "only a team lead may enter a fact from more than {} days ago",
                            window.days
                        ),
                    ));
                }
                (None, _) => {
                    return Err(timing.refuse(format!(
                        "{} is more than {} days ago: only a team lead may enter it, saying why \
                         it is late (late_entry_reason)",
                        timing.day(),
                        window.days
                    )));
                }
            }
        }
    }
    let not_before = |limit: NaiveDate, what: &str| {
        if timing.day() < limit {
            Err(timing.refuse(format!("{} is before {what} ({limit})", timing.day())))
        } else {
            Ok(())
        }
    };
    // Nothing on a record happened before its first referral was received.
    let first_referral = match command {
        C::Intake {
            client: Some(_), ..
        } => None,
        _ => state.first_received,
    };
    if let Some(first) = first_referral {
        not_before(first, "the first referral was received")?;
    }
    match command {
        C::AcceptReferral(c) => received(state, c.referral_id)
            .map_or(Ok(()), |on| not_before(on, "the referral was received")),
        C::DeclineReferral(c) => received(state, c.referral_id)
            .map_or(Ok(()), |on| not_before(on, "the referral was received")),
        C::RedirectReferral(c) => received(state, c.referral_id)
            .map_or(Ok(()), |on| not_before(on, "the referral was received")),
        C::RecordAttendance(c) => scheduled(state, c.appointment_id).map_or(Ok(()), |on| {
            not_before(on, "the appointment was booked for")
        }),
        C::RecordDidNotAttend(c) => scheduled(state, c.appointment_id).map_or(Ok(()), |on| {
            not_before(on, "the appointment was booked for")
        }),
        C::BookAppointment(c) => check_booking(state, c.scheduled_for, timing.now, "scheduled_for"),
        // A check-in says the link worker is safely out of the visit: not before it starts.
        C::CheckInLoneWorking(c) => match state.appointment_dates.get(&c.appointment_id) {
            Some(visit) if timing.occurred_at < *visit => Err(timing.refuse(format!(
                "{} is before the visit starts ({}): check in once safely out of it",
                crate::calendar::describe(timing.occurred_at),
                crate::calendar::describe(*visit)
            ))),
            _ => Ok(()),
        },
        C::CloseCase(_) => state.opened_at.map_or(Ok(()), |at| {
            not_before(crate::calendar::today(at), "the case was opened")
        }),
        C::ReopenCase(_) => state.closed_at.map_or(Ok(()), |at| {
            not_before(crate::calendar::today(at), "the case was closed")
        }),
        _ => Ok(()),
    }
}

/// An appointment is for a day from the first referral on, at most
/// [`APPOINTMENT_DAYS_AHEAD`] days after today (on the UK calendar, both); `field` is named in
/// a refusal (`scheduled_for`, or the correction's field).
///
/// # Errors
/// [`CaseError::Invalid`] naming `field`.
pub(crate) fn check_booking(
    state: &CaseState,
    scheduled_for: DateTime<Utc>,
    now: DateTime<Utc>,
    field: &'static str,
) -> Result<(), CaseError> {
    let on = crate::calendar::today(scheduled_for);
    let last = crate::calendar::today(now) + Duration::days(APPOINTMENT_DAYS_AHEAD);
    match state.first_received {
        Some(first) if on < first => Err(CaseError::invalid(
            field,
            format!("{on} is before the first referral was received ({first})"),
        )),
        _ if on > last => Err(CaseError::invalid(
            field,
            format!(
                "{on} is more than a year ahead: book it nearer the time (at most \
                 {APPOINTMENT_DAYS_AHEAD} days ahead, {last})"
            ),
        )),
        _ => Ok(()),
    }
}

fn received(state: &CaseState, referral: crate::ReferralId) -> Option<NaiveDate> {
    state.received.get(&referral).copied()
}

fn scheduled(state: &CaseState, appointment: crate::AppointmentId) -> Option<NaiveDate> {
    state
        .appointment_dates
        .get(&appointment)
        .map(|at| crate::calendar::today(*at))
}
