//! UK local time: the calendar and wall clock the people of a service live by.
//!
//! The log keeps every instant in UTC. A link worker in England reads "14:05" as the clock on
//! the wall, which is British Summer Time (UTC+1) from 01:00 UTC on the last Sunday of March to
//! 01:00 UTC on the last Sunday of October, and Greenwich Mean Time otherwise (the Summer Time
//! Order 2002). That rule is a few lines, so it is written here rather than shipping a time
//! zone database the machine may not have.
//!
//! Day-only facts (a referral's or an assessment's date) are kept as the UTC midnight of their
//! day; whether such a day is still to come is judged on the UK calendar (`today`), so that a
//! fact typed with today's date between midnight and 01:00 in summer is not refused as future.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};

/// 01:00 UTC on the last Sunday of `month` in `year`.
fn last_sunday_one_am(year: i32, month: u32) -> Option<DateTime<Utc>> {
    let last = NaiveDate::from_ymd_opt(year, month + 1, 1)?.pred_opt()?;
    let back = last.weekday().num_days_from_sunday();
    let sunday = last - Duration::days(i64::from(back));
    debug_assert_eq!(sunday.weekday(), Weekday::Sun);
    Some(sunday.and_hms_opt(1, 0, 0)?.and_utc())
}

/// Whether British Summer Time is in force at `at`.
fn summer(at: DateTime<Utc>) -> bool {
    match (
        last_sunday_one_am(at.year(), 3),
        last_sunday_one_am(at.year(), 10),
    ) {
        (Some(starts), Some(ends)) => at >= starts && at < ends,
        _ => false,
    }
}

/// The wall clock in the UK at `at`.
#[must_use]
pub fn local(at: DateTime<Utc>) -> NaiveDateTime {
    let offset = if summer(at) { 1 } else { 0 };
    let utc = at.naive_utc();
    utc.checked_add_signed(Duration::hours(offset))
        .unwrap_or(utc)
}

/// `at` as people in the UK read it, for a message: "25 December 2026 at 10:00 UK time".
#[must_use]
pub fn describe(at: DateTime<Utc>) -> String {
    local(at).format("%-d %B %Y at %H:%M UK time").to_string()
}

/// Today's date on a UK wall calendar at `now`.
#[must_use]
pub fn today(now: DateTime<Utc>) -> NaiveDate {
    local(now).date()
}

/// The instant a UK wall-clock `day` and `time` name. In the hour the clocks go back, which
/// happens twice, the first (summer time) is meant; in the hour they go forward, which never
/// happens, there is none.
#[must_use]
pub fn instant(day: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let wall = day.and_time(time);
    [1, 0].into_iter().find_map(|offset| {
        let at = wall.checked_sub_signed(Duration::hours(offset))?.and_utc();
        (summer(at) == (offset == 1)).then_some(at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("a UTC instant")
    }

    fn wall(day: &str, time: &str) -> (NaiveDate, NaiveTime) {
        (
            day.parse().expect("a day"),
            NaiveTime::parse_from_str(time, "%H:%M").expect("a time"),
        )
    }

    #[test]
    fn winter_is_utc_and_summer_an_hour_ahead() {
        assert_eq!(
            local(utc("2026-01-15T14:05:00Z")).to_string(),
            "2026-01-15 14:05:00"
        );
        assert_eq!(
            local(utc("2026-07-15T14:05:00Z")).to_string(),
            "2026-07-15 15:05:00"
        );
        // Late in a summer evening in UTC is already tomorrow on the wall.
        assert_eq!(today(utc("2026-06-30T23:30:00Z")).to_string(), "2026-07-01");
    }

    #[test]
    fn the_clocks_change_at_one_in_the_morning_utc_on_the_last_sundays() {
        // 2026: 29 March and 25 October.
        assert!(!summer(utc("2026-03-29T00:59:59Z")));
        assert!(summer(utc("2026-03-29T01:00:00Z")));
        assert!(summer(utc("2026-10-25T00:59:59Z")));
        assert!(!summer(utc("2026-10-25T01:00:00Z")));
        // 2027: 28 March and 31 October (the last day of the month is itself a Sunday).
        assert!(summer(utc("2027-03-28T01:00:00Z")));
        assert!(summer(utc("2027-10-31T00:30:00Z")));
        assert!(!summer(utc("2027-10-31T01:00:00Z")));
    }

    #[test]
    fn a_wall_clock_time_typed_names_its_instant() {
        let (d, t) = wall("2026-07-15", "15:05");
        assert_eq!(instant(d, t), Some(utc("2026-07-15T14:05:00Z")));
        let (d, t) = wall("2026-01-15", "14:05");
        assert_eq!(instant(d, t), Some(utc("2026-01-15T14:05:00Z")));
        // The hour that does not exist when the clocks go forward.
        let (d, t) = wall("2026-03-29", "01:30");
        assert_eq!(instant(d, t), None);
        // The first representable moments read without a panic (nothing before them).
        assert_eq!(
            instant(NaiveDate::MIN, NaiveTime::MIN),
            Some(NaiveDate::MIN.and_time(NaiveTime::MIN).and_utc())
        );
        assert_eq!(
            local(DateTime::<Utc>::MIN_UTC),
            DateTime::<Utc>::MIN_UTC.naive_utc()
        );
        // The hour that happens twice when they go back: the first, in summer time.
        let (d, t) = wall("2026-10-25", "01:30");
        assert_eq!(instant(d, t), Some(utc("2026-10-25T00:30:00Z")));
        // Every instant of a year reads back as the wall time it shows, but for the repeated
        // hour's second time, which reads back as its first.
        let repeated = utc("2026-10-25T01:00:00Z")..utc("2026-10-25T02:00:00Z");
        let mut at = utc("2026-01-01T00:00:00Z");
        while at < utc("2027-01-01T00:00:00Z") {
            let shown = local(at);
            let expected = if repeated.contains(&at) {
                at - Duration::hours(1)
            } else {
                at
            };
            assert_eq!(instant(shown.date(), shown.time()), Some(expected), "{at}");
            at += Duration::minutes(17);
        }
    }
}
