//! The task rules of `projections/tasks/` built into the binary: which tasks the task maker
//! raises on its own, by when they are due, and which days are working days.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::Deserialize;

use crate::rules::{CaseloadRules, RulesError};

/// Every task rule version this build knows, in order.
const TASK_FILES: &[(u32, &str)] = &[(1, include_str!("../../../projections/tasks/v1.toml"))];

/// A rule raising follow-up tasks ahead of their day.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FollowUpRule {
    pub enabled: bool,
    pub raise_days_before: i64,
}

/// A rule whose task is due some working days after it is raised.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DueInRule {
    pub enabled: bool,
    pub due_in_working_days: u32,
}

/// A rule raising a task once a fact is so many working days old.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AfterRule {
    pub enabled: bool,
    pub working_days: u32,
}

/// One version of the task rules.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TaskRules {
    pub version: u32,
    pub description: String,
    /// The caseload rules version whose thresholds say when a case wants a task.
    pub caseload_rules: i32,
    pub follow_up_due: FollowUpRule,
    pub no_contact: DueInRule,
    pub missed_appointment: DueInRule,
    pub untriaged_referral: AfterRule,
    /// Days besides weekends that are not working days.
    pub bank_holidays: Vec<NaiveDate>,
}

impl TaskRules {
    /// The newest version this build knows.
    pub fn latest_version() -> u32 {
        TASK_FILES.last().map_or(1, |(v, _)| *v)
    }

    /// The task rules of a version.
    ///
    /// # Errors
    /// An unknown version, or a file that does not parse or names caseload rules this build
    /// does not know.
    pub fn load(version: u32) -> Result<TaskRules, RulesError> {
        let signed = i32::try_from(version).unwrap_or(i32::MAX);
        let invalid = |reason: String| RulesError::Invalid {
            version: signed,
            reason: format!("task rules: {reason}"),
        };
        let text = TASK_FILES
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, text)| *text)
            .ok_or_else(|| invalid(format!("no task rules version {version}")))?;
        let rules: TaskRules = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if rules.version != version {
            return Err(invalid(format!("the file says version {}", rules.version)));
        }
        if rules.follow_up_due.raise_days_before < 0 {
            return Err(invalid("raise_days_before is not negative".into()));
        }
        CaseloadRules::load(rules.caseload_rules)?;
        Ok(rules)
    }

    /// The caseload rules these task rules take their thresholds from.
    ///
    /// # Errors
    /// As [`CaseloadRules::load`].
    pub fn caseload(&self) -> Result<CaseloadRules, RulesError> {
        CaseloadRules::load(self.caseload_rules)
    }

    /// Whether `day` is a working day: not a Saturday, a Sunday or a listed bank holiday.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !self.bank_holidays.contains(&day)
    }

    /// The working day `n` working days after `from` (`from` itself for 0, or the next working
    /// day when `from` is not one).
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut day = from;
        while !self.is_working_day(day) {
            day += Duration::days(1);
        }
        for _ in 0..n {
            day += Duration::days(1);
            while !self.is_working_day(day) {
                day += Duration::days(1);
            }
        }
        day
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a day")
    }

    #[test]
    fn every_task_rule_file_loads_and_names_caseload_rules_that_exist() {
        for (version, _) in TASK_FILES {
            let rules = TaskRules::load(*version).expect("the rules load");
            assert!(rules.caseload().is_ok());
        }
        assert!(TaskRules::load(99).is_err());
    }

    #[test]
    fn working_days_skip_weekends_and_bank_holidays() {
        let rules = TaskRules::load(1).expect("the rules");
        // (from, working days, expected)
        let table = [
            // Monday 30 November 2026 + 2 = Wednesday.
            ("2026-11-30", 0, "2026-11-30"),
            ("2026-11-30", 2, "2026-12-02"),
            // Friday + 1 = Monday.
            ("2026-12-04", 1, "2026-12-07"),
            // A Saturday counts from the Monday.
            ("2026-12-05", 0, "2026-12-07"),
            ("2026-12-05", 1, "2026-12-08"),
            // Christmas: Thursday 24th + 1 skips Friday 25th, the weekend and Monday 28th.
            ("2026-12-24", 1, "2026-12-29"),
            ("2026-12-24", 5, "2027-01-05"),
        ];
        for (from, n, expected) in table {
            assert_eq!(
                rules.add_working_days(day(from), n),
                day(expected),
                "{from} + {n} working days"
            );
        }
        assert!(!rules.is_working_day(day("2026-12-25")));
        assert!(rules.is_working_day(day("2026-12-29")));
    }
}
