//! The task maker: raises the tasks the task rules (`projections/tasks/v{n}.toml`) call for,
//! from the caseload read model, under the thresholds of the caseload rules they name.
//!
//! Each task's id is derived from the rule version, the rule, the person and the fact that
//! called for it ([`task_id`]), and is raised on a new stream only (`NoStream`): running the
//! maker again, or in two processes at once, raises nothing twice (the second append of an id
//! meets the first and counts it as already raised). `casebook tasks make` runs it once;
//! `casebook serve` runs it on a schedule.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::task::{TaskCommand, TaskId, TaskKind, TaskRaised, TaskRule};
use domain::{CaseStatus, ClientId, StaffId, TeamId};
use eventstore::Metadata;
use projector::TaskRules;
use projector::rules::CaseloadRules;
use sha2::Digest as _;
use uuid::Uuid;

use crate::policy::tasks::LoadedTask;
use crate::tasks::{TaskCommandError, TaskRequest, TaskService};
use crate::{AppError, CaseService, CommandError};

/// What the maker reads of a case (a row of the caseload read model).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseFacts {
    pub client_id: Uuid,
    pub organisation_id: Uuid,
    /// Referred or open (the maker reads no other).
    pub status: CaseStatus,
    pub link_worker_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub referred_on: Option<NaiveDate>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub last_contact_at: Option<DateTime<Utc>>,
    pub did_not_attend: i32,
    /// Each instrument's first baseline day this episode.
    pub baseline_dates: BTreeMap<String, NaiveDate>,
    pub follow_ups: BTreeSet<String>,
}

/// A task a rule calls for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// The rule's name in the task rules.
    pub rule: &'static str,
    pub kind: TaskKind,
    pub assignee: Option<Uuid>,
    pub due_on: NaiveDate,
    /// The fact that called for it, in words that identify it (part of the task's id).
    pub trigger: String,
}

/// The tasks the rules call for on one case now. Pure: the facts, the time and the rules.
pub fn due_tasks(
    case: &CaseFacts,
    now: DateTime<Utc>,
    rules: &TaskRules,
    caseload: &CaseloadRules,
) -> Vec<Due> {
    let today = domain::calendar::today(now);
    let mut due = Vec::new();
    if case.team_id.is_none() {
        // A task belongs to a team: a referral no team has yet is the triage queue's.
        return due;
    }
    let open = case.status == CaseStatus::Open;
    let worker = case.link_worker_id;
    if open && worker.is_some() && rules.follow_up_due.enabled {
        for (instrument, taken) in &case.baseline_dates {
            if case.follow_ups.contains(instrument) {
                continue;
            }
            let due_on = *taken + Duration::days(caseload.follow_up_due_days);
            if today >= due_on - Duration::days(rules.follow_up_due.raise_days_before) {
                due.push(Due {
                    rule: "follow_up_due",
                    kind: TaskKind::FollowUpDue,
                    assignee: worker,
                    due_on: due_on.max(today),
                    trigger: format!("{instrument}/{taken}"),
                });
            }
        }
    }
    if open && worker.is_some() && rules.no_contact.enabled {
        let since = case.last_contact_at.or(case.accepted_at);
        if let Some(since) = since
            && (now - since).num_days() >= caseload.no_contact_days
        {
            due.push(Due {
                rule: "no_contact",
                kind: TaskKind::MakeContact,
                assignee: worker,
                due_on: rules.add_working_days(today, rules.no_contact.due_in_working_days),
                trigger: since.to_rfc3339(),
            });
        }
    }
    if worker.is_some() && case.did_not_attend > 0 && rules.missed_appointment.enabled {
        // The episode (its acceptance, or its referral) and the count of missed appointments
        // in it: each new one is a new task.
        let episode = case
            .accepted_at
            .map(|a| a.to_rfc3339())
            .or(case.referred_on.map(|r| r.to_string()))
            .unwrap_or_default();
        due.push(Due {
            rule: "missed_appointment",
            kind: TaskKind::ChaseMissedAppointment,
            assignee: worker,
            due_on: rules.add_working_days(today, rules.missed_appointment.due_in_working_days),
            trigger: format!("{episode}/{}", case.did_not_attend),
        });
    }
    if case.status == CaseStatus::Referred
        && rules.untriaged_referral.enabled
        && let Some(referred_on) = case.referred_on
        && rules.add_working_days(referred_on, rules.untriaged_referral.working_days) <= today
    {
        due.push(Due {
            rule: "untriaged_referral",
            kind: TaskKind::TriageReferral,
            assignee: None,
            due_on: today,
            trigger: referred_on.to_string(),
        });
    }
    due
}

/// The id of the task `rule` (of task rules `version`) calls for on `client` because of
/// `trigger`: a UUID (version 8) made of the SHA-256 of those, so every process derives the
/// same one.
pub fn task_id(version: u32, rule: &str, client: Uuid, trigger: &str) -> TaskId {
    let digest = sha2::Sha256::digest(format!(
        "casebook task/v{version}/{rule}/{client}/{trigger}"
    ));
    TaskId(domain::derived_id(&digest))
}

/// What one run of the maker did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MakerReport {
    /// Cases looked at.
    pub cases: u64,
    /// Tasks raised by this run.
    pub raised: u64,
    /// Tasks the rules call for that were raised before (by an earlier run or another process).
    pub already: u64,
}

/// Raises rule-made tasks over a case service's store and clock.
#[derive(Clone)]
pub struct TaskMaker {
    tasks: TaskService,
    cases: CaseService,
    rules: TaskRules,
    caseload: CaseloadRules,
}

/// Cases read at a time.
const BATCH: i64 = 1000;

impl TaskMaker {
    /// The maker under the latest task rules, beside `cases`.
    ///
    /// # Errors
    /// A rule file that does not load.
    pub fn beside(cases: &CaseService) -> Result<TaskMaker, AppError> {
        let rules = TaskRules::load(TaskRules::latest_version())?;
        let caseload = rules.caseload()?;
        Ok(TaskMaker {
            tasks: TaskService::beside(cases),
            cases: cases.clone(),
            rules,
            caseload,
        })
    }

    /// Looks at every referred or open case once, and raises what the rules call for that was
    /// not raised before.
    ///
    /// # Errors
    /// A database or store failure (what was raised before it stays raised).
    pub async fn run_once(&self) -> Result<MakerReport, AppError> {
        let mut report = MakerReport::default();
        let mut after = Uuid::nil();
        loop {
            let cases = self.cases_after(after).await?;
            let Some(last) = cases.last() else { break };
            after = last.client_id;
            report.cases += cases.len() as u64;
            let now = self.cases.clock().now();
            let wanted: Vec<(TaskId, &CaseFacts, Due)> = cases
                .iter()
                .flat_map(|case| {
                    due_tasks(case, now, &self.rules, &self.caseload)
                        .into_iter()
                        .map(move |due| {
                            let id =
                                task_id(self.rules.version, due.rule, case.client_id, &due.trigger);
                            (id, case, due)
                        })
                })
                .collect();
            let known = self
                .known(&wanted.iter().map(|(id, ..)| id.0).collect::<Vec<_>>())
                .await?;
            for (id, case, due) in wanted {
                if known.contains(&id.0) {
                    report.already += 1;
                    continue;
                }
                if self.raise(id, case, due, now).await? {
                    report.raised += 1;
                } else {
                    report.already += 1;
                }
            }
        }
        tracing::info!(
            cases = report.cases,
            raised = report.raised,
            already = report.already,
            "task maker ran"
        );
        Ok(report)
    }

    /// Raises one task; false when it was already raised (by another process, just now).
    async fn raise(
        &self,
        id: TaskId,
        case: &CaseFacts,
        due: Due,
        now: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        let Some(team) = case.team_id else {
            return Ok(false);
        };
        let command = TaskCommand::Raise(TaskRaised {
            task_id: id,
            kind: due.kind,
            client_id: Some(ClientId(case.client_id)),
            team_id: TeamId(team),
            assignee_id: due.assignee.map(StaffId),
            raised_on: domain::calendar::today(now),
            due_on: due.due_on,
            rule: Some(TaskRule {
                rule: due.rule.to_owned(),
                version: self.rules.version,
            }),
        });
        let metadata = Metadata {
            actor_id: Uuid::nil(),
            actor_role: "task_maker".to_owned(),
            organisation_id: case.organisation_id,
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            occurred_at: now,
        };
        match self
            .tasks
            .append(
                id,
                &LoadedTask::default(),
                &command,
                metadata,
                TaskRequest::default(),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(TaskCommandError::Command(CommandError::Conflict { .. })) => Ok(false),
            Err(TaskCommandError::Command(e)) => Err(e.into()),
            Err(e @ (TaskCommandError::Refused(_) | TaskCommandError::NoSuchCase)) => Err(
                AppError::Unexpected(anyhow::anyhow!("a rule-made task was refused: {e}")),
            ),
        }
    }

    /// Which of `ids` the tasks read model has already (the append is the guard; this only
    /// saves trying again what an earlier run raised).
    async fn known(&self, ids: &[Uuid]) -> Result<BTreeSet<Uuid>, AppError> {
        if ids.is_empty() {
            return Ok(BTreeSet::new());
        }
        let client = self.cases.store().pool().get().await?;
        let rows = client
            .query("SELECT task_id FROM tasks WHERE task_id = ANY($1)", &[&ids])
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn cases_after(&self, after: Uuid) -> Result<Vec<CaseFacts>, AppError> {
        let client = self.cases.store().pool().get().await?;
        let rows = client
            .query(
                "SELECT client_id, organisation_id, status, link_worker_id, team_id, referred_on, \
                 accepted_at, last_contact_at, did_not_attend, baseline_dates, follow_ups \
                 FROM caseload WHERE status IN ('referred', 'open') AND client_id > $1 \
                 ORDER BY client_id LIMIT $2",
                &[&after, &BATCH],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let baseline_dates: serde_json::Value = row.get("baseline_dates");
                let follow_ups: Vec<String> = row.get("follow_ups");
                let status: String = row.get("status");
                Ok(CaseFacts {
                    client_id: row.get("client_id"),
                    organisation_id: row.get("organisation_id"),
                    status: CaseStatus::from_code(&status).ok_or_else(|| {
                        AppError::Unexpected(anyhow::anyhow!("caseload.status: {status:?}"))
                    })?,
                    link_worker_id: row.get("link_worker_id"),
                    team_id: row.get("team_id"),
                    referred_on: row.get("referred_on"),
                    accepted_at: row.get("accepted_at"),
                    last_contact_at: row.get("last_contact_at"),
                    did_not_attend: row.get("did_not_attend"),
                    baseline_dates: serde_json::from_value(baseline_dates).map_err(|e| {
                        AppError::Unexpected(anyhow::anyhow!("caseload.baseline_dates: {e}"))
                    })?,
                    follow_ups: follow_ups.into_iter().collect(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rules() -> (TaskRules, CaseloadRules) {
        let rules = TaskRules::load(1).expect("the task rules");
        let caseload = rules.caseload().expect("the caseload rules");
        (rules, caseload)
    }

    fn open_case() -> CaseFacts {
        CaseFacts {
            client_id: Uuid::from_u128(1),
            organisation_id: Uuid::from_u128(2),
            status: CaseStatus::Open,
            link_worker_id: Some(Uuid::from_u128(3)),
            team_id: Some(Uuid::from_u128(4)),
            referred_on: Some(day("2026-09-01")),
            accepted_at: Some(at("2026-09-02")),
            last_contact_at: Some(at("2026-11-20")),
            ..CaseFacts::default()
        }
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a day")
    }

    fn at(s: &str) -> DateTime<Utc> {
        Utc.from_utc_datetime(&day(s).and_hms_opt(10, 0, 0).expect("a time"))
    }

    fn rules_called(case: &CaseFacts, now: &str) -> Vec<(&'static str, NaiveDate)> {
        let (rules, caseload) = rules();
        due_tasks(case, at(now), &rules, &caseload)
            .into_iter()
            .map(|d| (d.rule, d.due_on))
            .collect()
    }

    #[test]
    fn each_rule_calls_for_its_task_when_the_caseload_rules_say_and_not_before() {
        // Monday 30 November 2026; caseload rules v1: 28 days without contact, follow-up 84
        // days after the baseline.
        let quiet = open_case();
        assert_eq!(rules_called(&quiet, "2026-11-30"), vec![]);
        let mut silent = open_case();
        silent.last_contact_at = Some(at("2026-11-02"));
        assert_eq!(
            rules_called(&silent, "2026-11-30"),
            vec![("no_contact", day("2026-12-02"))],
            "28 days without contact: make contact in 2 working days"
        );
        silent.last_contact_at = Some(at("2026-11-03"));
        assert_eq!(rules_called(&silent, "2026-11-30"), vec![], "27 days");

        let mut baseline = open_case();
        baseline
            .baseline_dates
            .insert("wemwbs".into(), day("2026-09-14"));
        // Due 7 December (84 days on); raised from 30 November, a week ahead.
        assert_eq!(rules_called(&baseline, "2026-11-29"), vec![]);
        assert_eq!(
            rules_called(&baseline, "2026-11-30"),
            vec![("follow_up_due", day("2026-12-07"))]
        );
        // Past its day it is due today; with the follow-up taken, nothing.
        assert_eq!(
            rules_called(&baseline, "2026-12-09"),
            vec![("follow_up_due", day("2026-12-09"))]
        );
        baseline.follow_ups.insert("wemwbs".into());
        assert_eq!(rules_called(&baseline, "2026-12-09"), vec![]);

        let mut missed = open_case();
        missed.did_not_attend = 1;
        // Friday 4 December: chase by Monday.
        assert_eq!(
            rules_called(&missed, "2026-12-04"),
            vec![("missed_appointment", day("2026-12-07"))]
        );

        let mut waiting = open_case();
        waiting.status = CaseStatus::Referred;
        waiting.link_worker_id = None;
        waiting.accepted_at = None;
        waiting.last_contact_at = None;
        // Received Tuesday 1 December: 5 working days is Tuesday 8th.
        waiting.referred_on = Some(day("2026-12-01"));
        assert_eq!(rules_called(&waiting, "2026-12-07"), vec![]);
        assert_eq!(
            rules_called(&waiting, "2026-12-08"),
            vec![("untriaged_referral", day("2026-12-08"))]
        );
        // A referral of no team yet is the triage queue's.
        waiting.team_id = None;
        assert_eq!(rules_called(&waiting, "2026-12-08"), vec![]);
    }

    #[test]
    fn a_task_id_is_the_same_for_the_same_fact_and_differs_for_another() {
        let client = Uuid::from_u128(1);
        let a = task_id(1, "no_contact", client, "2026-11-02T10:00:00+00:00");
        assert_eq!(
            a,
            task_id(1, "no_contact", client, "2026-11-02T10:00:00+00:00")
        );
        assert_ne!(
            a,
            task_id(1, "no_contact", client, "2026-11-03T10:00:00+00:00")
        );
        assert_ne!(
            a,
            task_id(2, "no_contact", client, "2026-11-02T10:00:00+00:00")
        );
        assert_ne!(
            a,
            task_id(
                1,
                "no_contact",
                Uuid::from_u128(2),
                "2026-11-02T10:00:00+00:00"
            )
        );
        assert_eq!(a.0.get_version_num(), 8);
    }
}
