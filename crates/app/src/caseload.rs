//! Caseloads for link workers and team leads, and a team's workload against capacity: the
//! caseload read model with its flags computed now, under the caseload rules
//! (`projections/caseload/`) and the service's clock.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveDate, Utc};
use domain::CaseStatus;
use projector::TaskRules;
use projector::rules::CaseloadRules;
use projector::{CaseloadFilter, CaseloadProjection, CaseloadRow, LIVE_CASELOAD};
use serde::Serialize;
use uuid::Uuid;

use crate::access::Principal;
use crate::error::{AppError, Page};
use crate::export::{self, CaseloadFile, CsvFile, CsvOptions, WorkloadFile};
use crate::freshness::{AsOf, as_of, snapshot};
use crate::policy;
pub use crate::policy::CaseloadScope;
use crate::{CaseService, Denied};

/// Why a case on a caseload wants attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseloadFlag {
    /// Open, and no contact (or, before the first, since acceptance) for the rules' days.
    NoContact,
    /// The rules' number of appointments missed this episode.
    DidNotAttend,
    /// Open with no baseline score.
    BaselineMissing,
    /// An instrument's baseline with no follow-up, taken the rules' days ago or more.
    FollowUpDue,
    /// A safeguarding concern is open on the case: the risk flag, shown to everyone working it.
    Safeguarding,
    /// A referral still waiting for a decision the task rules' `untriaged_referral` working
    /// days after it arrived. A referral no team holds yet is every lead's, so no task is
    /// raised for it: this flag on the triage queue is how it shows.
    TriageOverdue,
    /// A home visit's lone-working plan said the link worker would check in by a time now past,
    /// and no check-in is recorded: someone should ring them (the buddy, then the team lead).
    MissedCheckIn,
    /// The referral waiting for a decision, or for a link worker once accepted, asked for
    /// urgent contact: to be seen first on the triage queue.
    UrgentReferral,
    /// An appointment booked for a day now past has no outcome recorded (came, did not come,
    /// or cancelled): the record, the figures and the "next appointment" wait for it.
    AppointmentOutcomeMissing,
    /// A connection made to a directory service with provider staff has had no answer
    /// (accepted or declined) from the service for the caseload rules'
    /// `provider_no_answer_days`: time to chase the service.
    NoAnswerFromService,
}

/// One case on a caseload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CaseloadItem {
    pub client_id: Uuid,
    /// `referred` or `open` (a caseload shows active cases).
    pub status: CaseStatus,
    pub link_worker_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub area: String,
    pub referred_on: Option<NaiveDate>,
    pub referral_source: Option<String>,
    pub days_since_referral: Option<i64>,
    pub last_contact_at: Option<DateTime<Utc>>,
    pub days_since_contact: Option<i64>,
    /// The earliest booked appointment not yet settled, of today or later.
    pub next_appointment_at: Option<DateTime<Utc>>,
    pub contacts: i32,
    pub did_not_attend: i32,
    /// Instruments with a baseline this episode.
    pub baselines: Vec<String>,
    /// Instruments with a follow-up this episode.
    pub follow_ups: Vec<String>,
    /// What wants attention, under the latest caseload rules (`projections/caseload/v{n}.toml`).
    pub flags: Vec<CaseloadFlag>,
    /// The record version this row reflects.
    pub stream_version: i64,
    /// The tags the case carries (codes of `projections/tags/`).
    pub tags: Vec<String>,
}

/// Which part of a caseload to read: a page after `cursor`, once the read model has applied
/// the event at `after`, only of cases carrying `tag` when one is given.
#[derive(Clone, Debug, Default)]
pub struct CaseloadQuery {
    /// The `next_cursor` of the page before.
    pub cursor: Option<Uuid>,
    /// Rows on the page.
    pub limit: Option<i64>,
    /// A log position the read must include.
    pub after: Option<i64>,
    /// Only cases carrying this tag (a code of the latest tag rules).
    pub tag: Option<String>,
}

/// The tag a caseload is filtered by, checked against the latest tag rules.
///
/// # Errors
/// [`AppError::BadInput`] naming `tag` for a code the rules do not list.
fn checked_tag(tag: Option<&str>) -> Result<Option<String>, AppError> {
    match tag {
        None => Ok(None),
        Some(tag) => {
            let codes = crate::tags::rules().codes();
            if codes.iter().any(|code| code == tag) {
                Ok(Some(tag.to_owned()))
            } else {
                Err(AppError::bad_input(
                    "tag",
                    format!(
                        "not one of this service's tags: use one of {}",
                        codes.join(", ")
                    ),
                ))
            }
        }
    }
}

/// A page of a caseload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CaseloadPage {
    pub items: Vec<CaseloadItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
    /// What the caseload read model had applied when this page was read.
    pub as_of: AsOf,
}

/// A team's link workers against their capacity, and what the figures are as of.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TeamWorkload {
    pub team_id: Uuid,
    /// One per active link worker (and the lead) of the team, by name.
    pub workers: Vec<WorkerLoad>,
    /// The caseload rules version the default capacity comes from.
    pub rules_version: i32,
    /// When the year of work was counted back from (365 days before this).
    pub computed_at: chrono::DateTime<chrono::Utc>,
    /// What the caseload read model had applied when the workload was read.
    pub as_of: AsOf,
}

/// One link worker's load against their capacity.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkerLoad {
    pub link_worker_id: Uuid,
    pub name: String,
    /// Cases open now.
    pub open: i64,
    /// Referrals waiting for a decision, assigned to them.
    pub referred: i64,
    /// People whose current episode was accepted in the last 365 days.
    pub people_this_year: i64,
    /// People a year they can support (their own, or the rules' default: NHS guidance 200-250).
    pub capacity: i32,
    /// People this year, of capacity, 0 to 100 and more.
    pub percent_of_capacity: f64,
}

/// What wants attention on a case now. Pure: the row, the time and the rules.
pub fn flags(row: &CaseloadRow, now: DateTime<Utc>, rules: &CaseloadRules) -> Vec<CaseloadFlag> {
    let open = row.status == CaseStatus::Open;
    let days_since_contact = row
        .last_contact_at
        .or(row.accepted_at)
        .map(|at| (now - at).num_days());
    let mut flags = Vec::new();
    if open && days_since_contact.is_some_and(|d| d >= rules.no_contact_days) {
        flags.push(CaseloadFlag::NoContact);
    }
    if row.did_not_attend >= rules.did_not_attend_flag {
        flags.push(CaseloadFlag::DidNotAttend);
    }
    if open && row.baselines.is_empty() {
        flags.push(CaseloadFlag::BaselineMissing);
    }
    let today = domain::calendar::today(now);
    let follow_up_due = row
        .baselines
        .iter()
        .filter(|instrument| !row.follow_ups.contains(*instrument))
        .any(|instrument| {
            let days = match row.baseline_dates.get(instrument) {
                Some(taken) => (today - *taken).num_days(),
                // A row written before baseline dates were kept (until the caseload is
                // rebuilt): counted from acceptance, as then.
                None => row.accepted_at.map_or(0, |at| (now - at).num_days()),
            };
            days >= rules.follow_up_due_days
        });
    if open && follow_up_due {
        flags.push(CaseloadFlag::FollowUpDue);
    }
    if !row.open_concerns.is_empty() {
        flags.push(CaseloadFlag::Safeguarding);
    }
    if row.check_ins_due.values().any(|by| *by < now) {
        flags.push(CaseloadFlag::MissedCheckIn);
    }
    let waiting = row.status == CaseStatus::Referred || (open && row.link_worker_id.is_none());
    if waiting && row.urgency.as_deref() == Some(domain::code(&domain::Urgency::Urgent).as_str()) {
        flags.push(CaseloadFlag::UrgentReferral);
    }
    if row
        .booked_appointments
        .values()
        .any(|at| domain::calendar::today(*at) < today)
    {
        flags.push(CaseloadFlag::AppointmentOutcomeMissing);
    }
    flags
}

/// The next appointment of a case: the earliest booked for today or later (one of a day now
/// past with no outcome is flagged instead, [`CaseloadFlag::AppointmentOutcomeMissing`]).
/// Pure.
pub fn next_appointment(row: &CaseloadRow, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let today = domain::calendar::today(now);
    row.booked_appointments
        .values()
        .filter(|at| domain::calendar::today(**at) >= today)
        .min()
        .copied()
}

/// The services a case's connections have waited on past the caseload rules'
/// `provider_no_answer_days` (none under rules without it). Pure.
pub fn unanswered_services(
    row: &CaseloadRow,
    now: DateTime<Utc>,
    rules: &CaseloadRules,
) -> Vec<Uuid> {
    let Some(days) = rules.provider_no_answer_days else {
        return Vec::new();
    };
    row.awaited_answers
        .values()
        .filter(|awaited| (now - awaited.made_at).num_days() >= days)
        .map(|awaited| awaited.service_id)
        .collect()
}

/// Whether a referral has waited for a decision past the task rules' `untriaged_referral`
/// working days (on the UK calendar, with its bank holidays). Pure.
pub fn triage_overdue(row: &CaseloadRow, now: DateTime<Utc>, rules: &TaskRules) -> bool {
    row.status == CaseStatus::Referred
        && rules.untriaged_referral.enabled
        && row.referred_on.is_some_and(|on| {
            rules.add_working_days(on, rules.untriaged_referral.working_days)
                <= domain::calendar::today(now)
        })
}

/// The latest task rules this build knows, parsed once.
fn task_rules() -> Result<Arc<TaskRules>, AppError> {
    static PARSED: OnceLock<Arc<TaskRules>> = OnceLock::new();
    if let Some(rules) = PARSED.get() {
        return Ok(rules.clone());
    }
    let rules = Arc::new(TaskRules::load(TaskRules::latest_version())?);
    Ok(PARSED.get_or_init(|| rules).clone())
}

fn item(
    row: CaseloadRow,
    now: DateTime<Utc>,
    rules: &CaseloadRules,
    answering: &HashSet<Uuid>,
) -> Result<CaseloadItem, AppError> {
    let mut flags = flags(&row, now, rules);
    if unanswered_services(&row, now, rules)
        .iter()
        .any(|service| answering.contains(service))
    {
        flags.push(CaseloadFlag::NoAnswerFromService);
    }
    if triage_overdue(&row, now, &*task_rules()?) {
        flags.push(CaseloadFlag::TriageOverdue);
    }
    let status = row.status;
    Ok(CaseloadItem {
        client_id: row.client_id,
        days_since_referral: row
            .referred_on
            .map(|d| (domain::calendar::today(now) - d).num_days()),
        days_since_contact: row.last_contact_at.map(|at| (now - at).num_days()),
        next_appointment_at: next_appointment(&row, now),
        status,
        link_worker_id: row.link_worker_id,
        team_id: row.team_id,
        area: row.area,
        referred_on: row.referred_on,
        referral_source: row.referral_source,
        last_contact_at: row.last_contact_at,
        contacts: row.contacts,
        did_not_attend: row.did_not_attend,
        baselines: row.baselines.into_iter().collect(),
        follow_ups: row.follow_ups.into_iter().collect(),
        flags,
        stream_version: row.stream_version,
        tags: row.tags.into_iter().collect(),
    })
}

/// The latest caseload rules this build knows, parsed once.
pub(crate) fn caseload_rules() -> Result<Arc<CaseloadRules>, AppError> {
    static PARSED: OnceLock<Arc<CaseloadRules>> = OnceLock::new();
    if let Some(rules) = PARSED.get() {
        return Ok(rules.clone());
    }
    let rules = Arc::new(CaseloadRules::load(CaseloadRules::latest_version())?);
    Ok(PARSED.get_or_init(|| rules).clone())
}

/// The most cases one caseload file holds; past that, the file says where the next part starts
/// (`next_cursor`).
pub const FILE_ROWS: i64 = 100_000;

/// The part of a caseload a file holds: the whole caseload after `cursor` (up to
/// [`FILE_ROWS`]) unless a `limit` is asked for, and then a page as on screen.
fn file_page(cursor: Option<Uuid>, limit: Option<i64>) -> Result<Page<Uuid>, AppError> {
    match limit {
        None => Ok(Page {
            cursor,
            limit: FILE_ROWS,
        }),
        Some(_) => Page::new(cursor, limit),
    }
}

/// The caseload rows the caller's scope and a page select.
fn caseload_filter(
    principal: &Principal,
    scope: CaseloadScope,
    page: Page<Uuid>,
    tag: Option<String>,
) -> CaseloadFilter {
    let (link_worker_id, team_id) = match scope {
        CaseloadScope::Own(worker) => (Some(worker), None),
        CaseloadScope::Team { team, link_worker } => (link_worker, Some(team)),
    };
    CaseloadFilter {
        organisation_id: principal.organisation_id,
        link_worker_id,
        team_id,
        after: page.cursor,
        limit: page.limit,
        triage: false,
        tag,
    }
}

/// A caseload as a file: what the rows are of, and when they were computed.
fn caseload_file(
    filter: &CaseloadFilter,
    page: CaseloadPage,
    computed_at: DateTime<Utc>,
    options: CsvOptions,
) -> Result<CsvFile, AppError> {
    let file = CaseloadFile {
        team_id: filter.team_id,
        link_worker_id: filter.link_worker_id,
        rules_version: caseload_rules()?.version,
        computed_at,
        next_cursor: page.next_cursor,
        as_of: page.as_of,
    };
    export::caseload(&page.items, &file, options)
}

impl CaseService {
    /// A page of the caseload read model once it has applied the event at `after`, and what
    /// it is as of, read in one snapshot; with the time its flags were computed at.
    async fn caseload_page(
        &self,
        mut filter: CaseloadFilter,
        after: Option<i64>,
    ) -> Result<(CaseloadPage, DateTime<Utc>), AppError> {
        self.freshness().wait(&[LIVE_CASELOAD], after).await?;
        let limit = filter.limit;
        filter.limit = limit + 1;
        let (mut rows, as_of) = {
            let mut client = self.read_store().pool().get().await?;
            let snapshot = snapshot(&mut client).await?;
            let rows = CaseloadProjection::page(&*snapshot, &filter).await?;
            let as_of = as_of(&*snapshot, &[LIVE_CASELOAD]).await?;
            snapshot.commit().await?;
            (rows, self.freshness().recount(as_of).await?)
        };
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| r.client_id)
        } else {
            None
        };
        let now = self.clock().now();
        let rules = caseload_rules()?;
        // Which of the services waited on past the rules' days have provider staff to answer.
        let waited: Vec<Uuid> = rows
            .iter()
            .flat_map(|r| unanswered_services(r, now, &rules))
            .collect();
        let answering: HashSet<Uuid> = if waited.is_empty() {
            HashSet::new()
        } else {
            let client = self.read_store().pool().get().await?;
            client
                .query(
                    "SELECT DISTINCT service_id FROM provider_services WHERE service_id = ANY($1)",
                    &[&waited],
                )
                .await?
                .iter()
                .map(|row| row.get(0))
                .collect()
        };
        let page = CaseloadPage {
            items: rows
                .into_iter()
                .map(|r| item(r, now, &rules, &answering))
                .collect::<Result<_, _>>()?,
            next_cursor,
            as_of,
        };
        Ok((page, now))
    }

    /// The caller's caseload: a link worker's own cases, or a team lead's team (optionally one
    /// link worker of it), a page of `limit` after `cursor`, only of cases carrying `tag` when
    /// one is given. Served from the caseload read model once it has applied the event at log
    /// position `after` (see [`crate::freshness`]).
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_read_caseload`]; then a `limit` out of bounds, a
    /// tag the tag rules do not list, or an `after` that names no event;
    /// [`AppError::NotCaughtUp`]; store failures.
    pub async fn caseload(
        &self,
        principal: &Principal,
        link_worker_id: Option<Uuid>,
        query: &CaseloadQuery,
    ) -> Result<CaseloadPage, AppError> {
        let scope = policy::may_read_caseload(principal, link_worker_id)?;
        let page = Page::new(query.cursor, query.limit)?;
        let tag = checked_tag(query.tag.as_deref())?;
        let filter = caseload_filter(principal, scope, page, tag);
        Ok(self.caseload_page(filter, query.after).await?.0)
    }

    /// A team lead's triage queue: referrals waiting for a decision, and cases accepted with no
    /// link worker yet (so that one accepted and not assigned is not lost), of their team or of
    /// no team yet, oldest referral first, a page of `limit` after `cursor` (flags as on a
    /// caseload).
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_triage`]; then a `limit` out of bounds;
    /// [`AppError::NotCaughtUp`]; store failures.
    pub async fn triage_queue(
        &self,
        principal: &Principal,
        cursor: Option<Uuid>,
        limit: Option<i64>,
        after: Option<i64>,
    ) -> Result<CaseloadPage, AppError> {
        let team = policy::may_triage(principal)?;
        let page = Page::new(cursor, limit)?;
        let filter = CaseloadFilter {
            organisation_id: principal.organisation_id,
            link_worker_id: None,
            team_id: Some(team),
            after: page.cursor,
            limit: page.limit,
            triage: true,
            tag: None,
        };
        Ok(self.caseload_page(filter, after).await?.0)
    }

    /// The caller's caseload as a CSV file ([`export::caseload`]): every case after `cursor`,
    /// or a page of `limit` when one is asked for.
    ///
    /// # Errors
    /// As [`CaseService::caseload`].
    pub async fn caseload_csv(
        &self,
        principal: &Principal,
        link_worker_id: Option<Uuid>,
        query: &CaseloadQuery,
        options: CsvOptions,
    ) -> Result<CsvFile, AppError> {
        let scope = policy::may_read_caseload(principal, link_worker_id)?;
        let page = file_page(query.cursor, query.limit)?;
        let tag = checked_tag(query.tag.as_deref())?;
        let filter = caseload_filter(principal, scope, page, tag);
        let (page, computed_at) = self.caseload_page(filter.clone(), query.after).await?;
        caseload_file(&filter, page, computed_at, options)
    }

    /// Whether `team_id` is the caller's own team to lead ([`policy::may_read_team`]); the
    /// teams table is asked only to tell another team (403) from no team (404).
    async fn own_team(
        &self,
        principal: &Principal,
        team_id: Uuid,
        what: &str,
    ) -> Result<(), AppError> {
        match policy::may_read_team(principal, team_id, None, what) {
            Err(Denied::NotFound) => {
                let client = self.read_store().pool().get().await?;
                let known = client
                    .query_opt(
                        "SELECT 1 FROM teams WHERE team_id = $1 AND organisation_id = $2",
                        &[&team_id, &principal.organisation_id],
                    )
                    .await?
                    .is_some();
                match policy::may_read_team(principal, team_id, Some(known), what) {
                    Err(Denied::NotFound) => Err(AppError::NotFound("no such team".into())),
                    other => Ok(other?),
                }
            }
            other => Ok(other?),
        }
    }

    /// A team's caseload, for its team lead, once the caseload has applied the event at
    /// `after`.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_read_team`]; as [`CaseService::caseload`].
    pub async fn team_caseload(
        &self,
        principal: &Principal,
        team_id: Uuid,
        query: &CaseloadQuery,
    ) -> Result<CaseloadPage, AppError> {
        self.own_team(principal, team_id, "caseload").await?;
        let page = Page::new(query.cursor, query.limit)?;
        let mut filter = team_filter(principal, team_id, page);
        filter.tag = checked_tag(query.tag.as_deref())?;
        Ok(self.caseload_page(filter, query.after).await?.0)
    }

    /// A team's caseload as a CSV file, as [`CaseService::caseload_csv`].
    ///
    /// # Errors
    /// As [`CaseService::team_caseload`].
    pub async fn team_caseload_csv(
        &self,
        principal: &Principal,
        team_id: Uuid,
        query: &CaseloadQuery,
        options: CsvOptions,
    ) -> Result<CsvFile, AppError> {
        self.own_team(principal, team_id, "caseload").await?;
        let page = file_page(query.cursor, query.limit)?;
        let mut filter = team_filter(principal, team_id, page);
        filter.tag = checked_tag(query.tag.as_deref())?;
        let (page, computed_at) = self.caseload_page(filter.clone(), query.after).await?;
        caseload_file(&filter, page, computed_at, options)
    }

    /// A team's link workers: their open cases and the people they supported this year (the
    /// 365 days to now by the clock), against capacity. For the team's lead, once the caseload
    /// has applied the event at `after`.
    ///
    /// # Errors
    /// As [`CaseService::team_caseload`].
    pub async fn team_workload(
        &self,
        principal: &Principal,
        team_id: Uuid,
        after: Option<i64>,
    ) -> Result<TeamWorkload, AppError> {
        let (workers, file) = self.workload(principal, team_id, after).await?;
        Ok(TeamWorkload {
            team_id: file.team_id,
            workers,
            rules_version: file.rules_version,
            computed_at: file.computed_at,
            as_of: file.as_of,
        })
    }

    /// A team's workload as a CSV file ([`export::workload`]).
    ///
    /// # Errors
    /// As [`CaseService::team_caseload`].
    pub async fn team_workload_csv(
        &self,
        principal: &Principal,
        team_id: Uuid,
        after: Option<i64>,
        options: CsvOptions,
    ) -> Result<CsvFile, AppError> {
        let (loads, file) = self.workload(principal, team_id, after).await?;
        export::workload(&loads, &file, options)
    }

    /// A team's workload, and what it is of: read in one snapshot with what the caseload
    /// read model is as of.
    async fn workload(
        &self,
        principal: &Principal,
        team_id: Uuid,
        after: Option<i64>,
    ) -> Result<(Vec<WorkerLoad>, WorkloadFile), AppError> {
        self.own_team(principal, team_id, "workload").await?;
        self.freshness().wait(&[LIVE_CASELOAD], after).await?;
        let rules = caseload_rules()?;
        let now = self.clock().now();
        let year_ago = now - chrono::Duration::days(365);
        let mut client = self.read_store().pool().get().await?;
        let snapshot = snapshot(&mut client).await?;
        let rows = snapshot
            .query(
                "SELECT s.staff_id, s.name, s.capacity, \
                 count(c.client_id) FILTER (WHERE c.status = 'open'), \
                 count(c.client_id) FILTER (WHERE c.status = 'referred'), \
                 count(c.client_id) FILTER (WHERE c.accepted_at > $3) \
                 FROM staff s LEFT JOIN caseload c ON c.link_worker_id = s.staff_id AND c.organisation_id = s.organisation_id \
                 WHERE s.team_id = $1 AND s.organisation_id = $2 AND s.role IN ('link_worker', 'team_lead') AND s.active \
                 GROUP BY s.staff_id, s.name, s.capacity ORDER BY s.name, s.staff_id",
                &[&team_id, &principal.organisation_id, &year_ago],
            )
            .await?;
        let as_of = as_of(&*snapshot, &[LIVE_CASELOAD]).await?;
        snapshot.commit().await?;
        let as_of = self.freshness().recount(as_of).await?;
        let loads = rows
            .iter()
            .map(|row| {
                let capacity = row
                    .get::<_, Option<i32>>(2)
                    .unwrap_or(rules.default_capacity);
                let people: i64 = row.get(5);
                WorkerLoad {
                    link_worker_id: row.get(0),
                    name: row.get(1),
                    capacity,
                    open: row.get(3),
                    referred: row.get(4),
                    people_this_year: people,
                    percent_of_capacity: (people as f64 * 1000.0 / f64::from(capacity.max(1)))
                        .round()
                        / 10.0,
                }
            })
            .collect();
        let file = WorkloadFile {
            team_id,
            rules_version: rules.version,
            computed_at: now,
            as_of,
        };
        Ok((loads, file))
    }
}

/// A team's caseload rows on a page.
fn team_filter(principal: &Principal, team_id: Uuid, page: Page<Uuid>) -> CaseloadFilter {
    CaseloadFilter {
        organisation_id: principal.organisation_id,
        link_worker_id: None,
        team_id: Some(team_id),
        after: page.cursor,
        limit: page.limit,
        triage: false,
        tag: None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn rules() -> CaseloadRules {
        CaseloadRules::load(1).expect("caseload rules v1")
    }

    fn noon(date: NaiveDate) -> DateTime<Utc> {
        Utc.from_utc_datetime(&date.and_hms_opt(12, 0, 0).expect("noon"))
    }

    fn day(d: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2030, 1, 1).expect("a date") + Duration::days(d)
    }

    /// Accepted on day 0, a WEMWBS baseline on day 30, a contact on day 30.
    fn open_row() -> CaseloadRow {
        CaseloadRow {
            status: CaseStatus::Open,
            accepted_at: Some(noon(day(0))),
            last_contact_at: Some(noon(day(30))),
            baselines: ["wemwbs".to_owned()].into_iter().collect(),
            baseline_dates: [("wemwbs".to_owned(), day(30))].into_iter().collect(),
            ..CaseloadRow::default()
        }
    }

    #[test]
    fn a_referral_waits_for_triage_five_working_days_then_is_flagged_with_or_without_a_team() {
        let rules = TaskRules::load(1).expect("task rules v1");
        let at = |text: &str| text.parse::<DateTime<Utc>>().expect("an instant");
        let mut row = CaseloadRow {
            status: CaseStatus::Referred,
            // Thursday 24 December 2026. Christmas, the Boxing Day holiday (the 28th), New
            // Year's Day and the weekends do not count: the five working days after are 29,
            // 30 and 31 December, 4 and 5 January.
            referred_on: Some("2026-12-24".parse().expect("a day")),
            ..CaseloadRow::default()
        };
        assert!(!triage_overdue(&row, at("2027-01-04T12:00:00Z"), &rules));
        assert!(triage_overdue(&row, at("2027-01-05T09:00:00Z"), &rules));
        // 00:30 on the 5th in winter is still the 5th; 23:30 UTC on the 4th is the 4th.
        assert!(!triage_overdue(&row, at("2027-01-04T23:30:00Z"), &rules));
        row.team_id = Some(Uuid::from_u128(1));
        assert!(triage_overdue(&row, at("2027-01-05T09:00:00Z"), &rules));
        row.status = CaseStatus::Open;
        assert!(!triage_overdue(&row, at("2027-01-05T09:00:00Z"), &rules));
    }

    #[test]
    fn a_follow_up_is_due_the_rules_days_after_the_baseline_not_after_acceptance() {
        let rules = rules();
        assert_eq!(rules.follow_up_due_days, 84);
        let mut row = open_row();
        // Contacts keep coming, so only the follow-up can be flagged.
        let at = |d: i64, row: &mut CaseloadRow| {
            row.last_contact_at = Some(noon(day(d)));
            flags(row, noon(day(d)), &rules)
        };
        assert_eq!(
            at(84, &mut row),
            vec![],
            "84 days after acceptance, 54 after the baseline"
        );
        assert_eq!(at(113, &mut row), vec![]);
        assert_eq!(at(114, &mut row), vec![CaseloadFlag::FollowUpDue]);
        row.follow_ups.insert("wemwbs".into());
        assert_eq!(at(114, &mut row), vec![]);
        // A second instrument's baseline has its own clock.
        row.baselines.insert("ucla3".into());
        row.baseline_dates.insert("ucla3".into(), day(100));
        assert_eq!(at(183, &mut row), vec![]);
        assert_eq!(at(184, &mut row), vec![CaseloadFlag::FollowUpDue]);
    }

    #[test]
    fn a_row_written_before_baseline_dates_were_kept_counts_from_acceptance() {
        let rules = rules();
        let mut row = open_row();
        row.baseline_dates.clear();
        let at = |d: i64, row: &mut CaseloadRow| {
            row.last_contact_at = Some(noon(day(d)));
            flags(row, noon(day(d)), &rules)
        };
        assert_eq!(at(83, &mut row), vec![]);
        assert_eq!(at(84, &mut row), vec![CaseloadFlag::FollowUpDue]);
    }

    #[test]
    fn no_contact_counts_from_the_last_contact_or_acceptance_and_only_for_open_cases() {
        let rules = rules();
        let mut row = open_row();
        row.last_contact_at = None;
        assert_eq!(flags(&row, noon(day(27)), &rules), vec![]);
        assert_eq!(
            flags(&row, noon(day(28)), &rules),
            vec![CaseloadFlag::NoContact]
        );
        row.last_contact_at = Some(noon(day(20)));
        assert_eq!(flags(&row, noon(day(47)), &rules), vec![]);
        assert_eq!(
            flags(&row, noon(day(48)), &rules),
            vec![CaseloadFlag::NoContact]
        );
        row.status = CaseStatus::Referred;
        assert_eq!(flags(&row, noon(day(48)), &rules), vec![]);
    }

    /// An appointment of a day now past with no outcome is flagged, and is not the next
    /// appointment; one of today (earlier or later) or to come is the next.
    #[test]
    fn an_appointment_past_its_day_with_no_outcome_is_flagged_not_next() {
        let rules = rules();
        let mut row = open_row();
        let now = noon(day(40));
        let past = noon(day(39));
        let earlier_today = now - Duration::hours(2);
        let to_come = noon(day(45));
        row.booked_appointments = [(Uuid::from_u128(1), past), (Uuid::from_u128(2), to_come)]
            .into_iter()
            .collect();
        assert!(flags(&row, now, &rules).contains(&CaseloadFlag::AppointmentOutcomeMissing));
        assert_eq!(next_appointment(&row, now), Some(to_come));
        row.booked_appointments
            .insert(Uuid::from_u128(3), earlier_today);
        assert_eq!(next_appointment(&row, now), Some(earlier_today));
        row.booked_appointments.remove(&Uuid::from_u128(1));
        assert!(!flags(&row, now, &rules).contains(&CaseloadFlag::AppointmentOutcomeMissing));
        // The day after, today's is past its day too.
        let tomorrow = now + Duration::days(1);
        assert!(flags(&row, tomorrow, &rules).contains(&CaseloadFlag::AppointmentOutcomeMissing));
        assert_eq!(next_appointment(&row, tomorrow), Some(to_come));
    }

    /// An urgent referral is flagged while it waits for a decision or a link worker, not once
    /// someone works the case; a routine one, or one of a row from before V46, never.
    #[test]
    fn an_urgent_referral_is_flagged_while_it_waits() {
        let rules = rules();
        let now = noon(day(31));
        let urgent = |status, worker: Option<Uuid>, urgency: Option<&str>| {
            let row = CaseloadRow {
                status,
                link_worker_id: worker,
                urgency: urgency.map(str::to_owned),
                ..open_row()
            };
            flags(&row, now, &rules).contains(&CaseloadFlag::UrgentReferral)
        };
        let worker = Some(Uuid::from_u128(5));
        assert!(urgent(CaseStatus::Referred, None, Some("urgent")));
        assert!(urgent(CaseStatus::Open, None, Some("urgent")));
        assert!(!urgent(CaseStatus::Open, worker, Some("urgent")));
        assert!(!urgent(CaseStatus::Referred, None, Some("soon")));
        assert!(!urgent(CaseStatus::Referred, None, None));
    }

    #[test]
    fn missed_appointments_and_a_missing_baseline_are_flagged() {
        let rules = rules();
        let mut row = open_row();
        row.baselines.clear();
        row.did_not_attend = rules.did_not_attend_flag;
        assert_eq!(
            flags(&row, noon(day(31)), &rules),
            vec![CaseloadFlag::DidNotAttend, CaseloadFlag::BaselineMissing]
        );
    }
}
