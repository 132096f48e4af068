//! The database's clock as this process last read it, carried forward by the process's
//! monotonic clock.
//!
//! `recorded_at` is the database's clock, read with a command's load
//! ([`crate::EventStore::read_stream_for_append`]). A new record's first append reads nothing
//! before it writes ([`crate::EventStore::head_of_new_stream`]), so it takes the last reading
//! moved on by the time that has passed since, on a clock no one can set back. The estimate is
//! never later than the database's clock (the reading was taken before its answer arrived), so
//! an event is never recorded after a moment the database has yet to reach; a reading older
//! than [`FRESH_FOR`] is not used at all (the command then loads the stream, which reads the
//! clock again).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::hash::to_micros;

/// How long a reading of the database's clock is carried forward.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub(crate) struct DbClock {
    /// The last reading and the moment its answer arrived.
    last: Mutex<Option<(DateTime<Utc>, Instant)>>,
}

impl DbClock {
    /// Keeps `read`, the database's clock in an answer that has just arrived.
    pub(crate) fn observe(&self, read: DateTime<Utc>) {
        let arrived = Instant::now();
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((read, arrived));
    }

    /// The database's clock now, estimated from a reading at most `FRESH_FOR` old, to the
    /// microsecond (as the log stores it); `None` without one.
    pub(crate) fn estimate(&self) -> Option<DateTime<Utc>> {
        let (read, arrived) = (*self.last.lock().unwrap_or_else(|p| p.into_inner()))?;
        let since = arrived.elapsed();
        if since > FRESH_FOR {
            return None;
        }
        let since = chrono::Duration::from_std(since).ok()?;
        Some(to_micros(read + since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_is_carried_forward_while_fresh_and_never_without_one() {
        let clock = DbClock::default();
        assert_eq!(clock.estimate(), None);
        let read = DateTime::parse_from_rfc3339("2031-01-02T03:04:05.123456Z")
            .expect("a time")
            .with_timezone(&Utc);
        clock.observe(read);
        let estimate = clock.estimate().expect("a fresh reading");
        assert!(estimate >= read && estimate < read + chrono::Duration::seconds(2));
        assert_eq!(estimate, to_micros(estimate));
        // A reading from before the freshness window is not used.
        *clock.last.lock().expect("unpoisoned") =
            Some((read, Instant::now() - FRESH_FOR - Duration::from_millis(1)));
        assert_eq!(clock.estimate(), None);
    }
}
