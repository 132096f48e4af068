//! The one place the application reads the time from.
//!
//! Every rule that needs "now" (a date in the future, the back-entry window, follow-up due, no
//! contact for N days, retention, the demo's "today") asks a [`Clock`], never the system
//! directly, so a test can fix the time and move it on. The database keeps its own clock for
//! `recorded_at`, leases and token expiry.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveDate, Utc};

/// Where "now" comes from: the system's clock, or a fixed time that tests set.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    fixed: Option<Arc<RwLock<DateTime<Utc>>>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that says `at` until [`Clock::set`] moves it (every clone sees the move).
    pub fn fixed(at: DateTime<Utc>) -> Clock {
        Clock {
            fixed: Some(Arc::new(RwLock::new(at))),
        }
    }

    /// Moves a fixed clock to `at`.
    ///
    /// # Panics
    /// On the system clock, which cannot be moved.
    pub fn set(&self, at: DateTime<Utc>) {
        let fixed = self
            .fixed
            .as_ref()
            .expect("only a fixed clock can be moved");
        *fixed
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = at;
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.fixed {
            None => Utc::now(),
            Some(at) => *at.read().unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }

    /// Today's date on the UK calendar (a day ahead of UTC's from midnight to 01:00 in summer).
    pub fn today(&self) -> NaiveDate {
        domain::calendar::today(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_says_what_it_was_set_to_in_every_clone() {
        let at = DateTime::parse_from_rfc3339("2030-02-28T23:30:00Z")
            .expect("a time")
            .with_timezone(&Utc);
        let clock = Clock::fixed(at);
        let other = clock.clone();
        assert_eq!(other.now(), at);
        let later = at + chrono::Duration::hours(1);
        clock.set(later);
        assert_eq!(other.now(), later);
        assert_eq!(
            other.today(),
            NaiveDate::from_ymd_opt(2030, 3, 1).expect("a date")
        );
    }
}
