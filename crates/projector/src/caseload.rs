//! The caseload read model: one row per client, as link workers and team leads see them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{CaseEvent, CaseStatus, Timepoint, code};

use serde::Serialize;
use uuid::Uuid;

use crate::bookkeeping;
use crate::corrected::Fact;
use crate::{Batch, Projection, ProjectionError};

/// A client's line on a caseload.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CaseloadRow {
    pub client_id: Uuid,
    pub organisation_id: Uuid,
    /// Where the case stands, as the domain folds it (stored as its code: `idle`, `referred`,
    /// `open` or `closed`).
    pub status: CaseStatus,
    /// The person was erased: the row is deleted when the batch is written, never stored.
    #[serde(skip)]
    pub erased: bool,
    pub link_worker_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub area: String,
    pub referred_on: Option<NaiveDate>,
    pub referral_source: Option<String>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub last_contact_at: Option<DateTime<Utc>>,
    /// Contacts in the current episode.
    pub contacts: i32,
    /// Appointments not attended in the current episode.
    pub did_not_attend: i32,
    /// Appointments booked and not yet settled.
    pub booked_appointments: BTreeMap<Uuid, DateTime<Utc>>,
    /// Instruments with a baseline in the current episode.
    pub baselines: BTreeSet<String>,
    /// The earliest date of each instrument's baseline in the current episode (empty in rows
    /// written before migration V9, until the caseload is rebuilt).
    pub baseline_dates: BTreeMap<String, NaiveDate>,
    /// Instruments with a follow-up in the current episode.
    pub follow_ups: BTreeSet<String>,
    /// The client stream's version this row reflects.
    pub stream_version: i64,
    /// Safeguarding concerns raised and not yet closed: the record's risk flag while any is open.
    pub open_concerns: BTreeSet<Uuid>,
    /// The tags the case carries (codes of `projections/tags/`), for filtering caseloads.
    pub tags: BTreeSet<String>,
    /// Home visits with a lone-working plan and no check-in yet: appointment id to the time
    /// the link worker said they would check in by.
    pub check_ins_due: BTreeMap<Uuid, DateTime<Utc>>,
    /// Connections the service they were made to can answer (not signposting) and has not yet
    /// accepted or declined, by connection id.
    pub awaited_answers: BTreeMap<Uuid, AwaitedAnswer>,
    /// The urgency the current episode's referral asked for (its code: `routine`, `soon`,
    /// `urgent`); none in rows written before migration V46, until the caseload is rebuilt.
    pub urgency: Option<String>,
}

/// A connection waiting for its service's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AwaitedAnswer {
    pub service_id: Uuid,
    /// When the connection was made.
    pub made_at: DateTime<Utc>,
}

/// Folds one client event into the row. Pure: no clock, no IO.
pub fn apply_case_event(
    row: &mut CaseloadRow,
    event: &CaseEvent,
    occurred_at: DateTime<Utc>,
    stream_version: i64,
) {
    row.stream_version = stream_version;
    match event {
        CaseEvent::ClientRegistered(e) => {
            row.client_id = e.client_id.0;
            row.area = e.area.clone();
            row.status = CaseStatus::Idle;
        }
        CaseEvent::ReferralReceived(e) => {
            // A new episode: the caseload shows the current one.
            row.status = CaseStatus::Referred;
            row.referred_on = Some(e.received_on);
            row.referral_source = Some(code(&e.source));
            row.urgency = Some(code(&e.urgency));
            row.accepted_at = None;
            row.closed_at = None;
            row.contacts = 0;
            row.did_not_attend = 0;
            row.booked_appointments.clear();
            row.baselines.clear();
            row.baseline_dates.clear();
            row.follow_ups.clear();
        }
        CaseEvent::ReferralAccepted(_) => {
            row.status = CaseStatus::Open;
            row.accepted_at = Some(occurred_at);
        }
        CaseEvent::ReferralDeclined(_) | CaseEvent::ReferralRedirected(_) => {
            row.status = CaseStatus::Idle
        }
        CaseEvent::LinkWorkerAssigned(e) => {
            row.link_worker_id = Some(e.link_worker_id.0);
            row.team_id = Some(e.team_id.0);
        }
        CaseEvent::CaseTransferred(e) => {
            row.link_worker_id = Some(e.to_link_worker_id.0);
            row.team_id = Some(e.team_id.0);
        }
        CaseEvent::AppointmentBooked(e) => {
            row.booked_appointments
                .insert(e.appointment_id.0, e.scheduled_for);
        }
        CaseEvent::AppointmentAttended(e) => {
            row.booked_appointments.remove(&e.appointment_id.0);
        }
        CaseEvent::AppointmentCancelled(e) => {
            row.booked_appointments.remove(&e.appointment_id.0);
            // No visit, so no one to check in.
            row.check_ins_due.remove(&e.appointment_id.0);
        }
        CaseEvent::AppointmentNotAttended(e) => {
            row.booked_appointments.remove(&e.appointment_id.0);
            row.did_not_attend += 1;
        }
        CaseEvent::ContactRecorded(e) => {
            row.contacts += 1;
            row.last_contact_at = Some(
                row.last_contact_at
                    .map_or(e.contacted_at, |last| last.max(e.contacted_at)),
            );
        }
        CaseEvent::AssessmentRecorded(e) => {
            let instrument = code(&e.instrument);
            if e.timepoint == Timepoint::Baseline {
                row.baseline_dates
                    .entry(instrument.clone())
                    .and_modify(|day| *day = (*day).min(e.administered_on))
                    .or_insert(e.administered_on);
                row.baselines.insert(instrument);
            } else if e.timepoint == Timepoint::FollowUp {
                row.follow_ups.insert(instrument);
            }
        }
        CaseEvent::CaseClosed(_) => {
            row.status = CaseStatus::Closed;
            row.closed_at = Some(occurred_at);
            row.booked_appointments.clear();
            // Support ended: no service's answer is awaited by the link worker any more.
            row.awaited_answers.clear();
        }
        CaseEvent::CaseReopened(_) => {
            row.status = CaseStatus::Open;
            row.closed_at = None;
        }
        CaseEvent::SafeguardingConcernRaised(e) => {
            row.open_concerns.insert(e.concern_id.0);
        }
        CaseEvent::SafeguardingConcernClosed(e) => {
            row.open_concerns.remove(&e.concern_id.0);
        }
        CaseEvent::CaseTagged(e) => {
            row.tags.insert(e.tag.clone());
        }
        CaseEvent::CaseUntagged(e) => {
            row.tags.remove(&e.tag);
        }
        CaseEvent::LoneWorkingPlanRecorded(e) => {
            row.check_ins_due.insert(e.appointment_id.0, e.check_in_by);
        }
        CaseEvent::LoneWorkingCheckedIn(e) => {
            row.check_ins_due.remove(&e.appointment_id.0);
        }
        // A signposted person was not made known to the service: it has nothing to answer.
        CaseEvent::OnwardConnectionMade(e) if e.kind != domain::ConnectionKind::Signposted => {
            row.awaited_answers.insert(
                e.connection_id.0,
                AwaitedAnswer {
                    service_id: e.service_id.0,
                    made_at: occurred_at,
                },
            );
        }
        CaseEvent::ConnectionAcceptedByProvider(e) => {
            row.awaited_answers.remove(&e.connection_id.0);
        }
        CaseEvent::ConnectionDeclinedByProvider(e) => {
            row.awaited_answers.remove(&e.connection_id.0);
        }
        // The link worker knows what came of it: nothing to chase the service for.
        CaseEvent::ConnectionOutcomeRecorded(e) => {
            row.awaited_answers.remove(&e.connection_id.0);
        }
        // An erased person leaves every caseload: the row is deleted when the batch is written.
        CaseEvent::ClientErased(_) => row.erased = true,
        CaseEvent::ConsentRecorded(_)
        | CaseEvent::DemographicsRecorded(_)
        | CaseEvent::LateEntryExplained(_)
        | CaseEvent::GpMessageSent(_)
        | CaseEvent::ConsentWithdrawn(_)
        | CaseEvent::WhatMattersRecorded(_)
        | CaseEvent::NeedIdentified(_)
        | CaseEvent::GoalSet(_)
        | CaseEvent::GoalReviewed(_)
        | CaseEvent::OnwardConnectionMade(_)
        | CaseEvent::ServiceGapRecorded(_)
        | CaseEvent::EntryCorrected(_)
        | CaseEvent::NoteAdded(_)
        | CaseEvent::NotePinned(_)
        | CaseEvent::NoteUnpinned(_)
        | CaseEvent::SafeguardingConcernUpdated(_)
        | CaseEvent::ConnectionStartRecorded(_) => {}
    }
}

/// The caseload projection, version 1, into the `caseload` table.
pub struct CaseloadProjection;

/// The same projection into `caseload_rebuild`, beside the live table: a rebuild fills it, then
/// [`switch_rebuilt_caseload`] moves its rows into `caseload` in one transaction.
pub struct ShadowCaseload;

/// The live projection's name.
pub const LIVE_CASELOAD: &str = "caseload_v1";

/// The shadow projection's name.
pub const SHADOW_CASELOAD: &str = "caseload_v1_rebuild";

const SELECT_COLUMNS: &str = "SELECT client_id, organisation_id, status, link_worker_id, team_id, area, referred_on, \
    referral_source, accepted_at, closed_at, last_contact_at, contacts, did_not_attend, booked_appointments, \
    baselines, follow_ups, stream_version, baseline_dates, open_concerns, tags, check_ins_due, awaited_answers, urgency FROM caseload";

const ALL_COLUMNS: &str = "client_id, organisation_id, status, link_worker_id, team_id, area, referred_on, \
    referral_source, accepted_at, closed_at, last_contact_at, contacts, did_not_attend, booked_appointments, \
    baselines, follow_ups, stream_version, baseline_dates, open_concerns, tags, check_ins_due, awaited_answers, urgency";

/// Every touched row of a batch in one statement: one array per column, unnested. (Row by row,
/// a rebuild spent a round trip per client per batch.) The follow-up instruments go as
/// comma-separated codes (codes hold no commas), the baseline dates as a JSON object.
const UPSERT_ROWS: &str = "INSERT INTO {table} (client_id, organisation_id, status, link_worker_id, team_id, area, \
    referred_on, referral_source, accepted_at, closed_at, last_contact_at, contacts, did_not_attend, \
    booked_appointments, baselines, follow_ups, stream_version, baseline_dates, open_concerns, tags, check_ins_due, awaited_answers, urgency) \
    SELECT c, o, s, lw, t, a, r, rs, acc, cl, lc, n, dna, b, string_to_array(bl, ','), string_to_array(fu, ','), v, bd, \
      string_to_array(oc, ',')::uuid[], string_to_array(tg, ','), ci, aa, ur \
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::text[], $7::date[], \
      $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::int[], $13::int[], \
      $14::jsonb[], $15::text[], $16::text[], $17::bigint[], $18::jsonb[], $19::text[], $20::text[], $21::jsonb[], $22::jsonb[], $23::text[]) \
      AS u(c, o, s, lw, t, a, r, rs, acc, cl, lc, n, dna, b, bl, fu, v, bd, oc, tg, ci, aa, ur) \
    ON CONFLICT (client_id) DO UPDATE SET organisation_id = excluded.organisation_id, \
    status = excluded.status, link_worker_id = excluded.link_worker_id, team_id = excluded.team_id, \
    area = excluded.area, referred_on = excluded.referred_on, referral_source = excluded.referral_source, \
    accepted_at = excluded.accepted_at, closed_at = excluded.closed_at, \
    last_contact_at = excluded.last_contact_at, contacts = excluded.contacts, \
    did_not_attend = excluded.did_not_attend, booked_appointments = excluded.booked_appointments, \
    baselines = excluded.baselines, follow_ups = excluded.follow_ups, \
    stream_version = excluded.stream_version, baseline_dates = excluded.baseline_dates, \
    open_concerns = excluded.open_concerns, tags = excluded.tags, \
    check_ins_due = excluded.check_ins_due, awaited_answers = excluded.awaited_answers, \
    urgency = excluded.urgency";

impl CaseloadProjection {
    /// Reads rows back (for queries and tests), in client order.
    ///
    /// # Errors
    /// A database failure.
    pub async fn rows(
        client: &tokio_postgres::Client,
        client_ids: &[Uuid],
    ) -> Result<Vec<CaseloadRow>, ProjectionError> {
        let rows = client
            .query(
                &format!("{SELECT_COLUMNS} WHERE client_id = ANY($1) ORDER BY client_id"),
                &[&client_ids],
            )
            .await?;
        rows.iter().map(decode_row).collect()
    }

    /// A page of an organisation's active cases (referred or open), in client order after
    /// `after`: one link worker's, one team's, or all. A triage queue (`filter.triage`) is read
    /// by [`CaseloadProjection::triage_page`] instead.
    ///
    /// # Errors
    /// A database failure.
    pub async fn page(
        client: &impl tokio_postgres::GenericClient,
        filter: &CaseloadFilter,
    ) -> Result<Vec<CaseloadRow>, ProjectionError> {
        if filter.triage {
            return Self::triage_page(client, filter).await;
        }
        let rows = client
            .query(
                &format!(
                    "{SELECT_COLUMNS} WHERE organisation_id = $1 AND status IN ('referred', 'open') \
                     AND ($2::uuid IS NULL OR link_worker_id = $2) \
                     AND ($3::uuid IS NULL OR team_id = $3) \
                     AND ($4::uuid IS NULL OR client_id > $4) \
                     AND ($6::text IS NULL OR tags @> ARRAY[$6::text]) ORDER BY client_id LIMIT $5"
                ),
                &[
                    &filter.organisation_id,
                    &filter.link_worker_id,
                    &filter.team_id,
                    &filter.after,
                    &filter.limit,
                    &filter.tag,
                ],
            )
            .await?;
        rows.iter().map(decode_row).collect()
    }

    /// A page of a triage queue: the referrals waiting for a decision and the cases accepted
    /// with no link worker yet, of `filter.team_id` or of no team, urgent ones first, then
    /// those asked to be seen soon, then the rest, each oldest referral first (one with no date
    /// first of all), after the row of the client `filter.after`, of the caller's organisation
    /// (when that row is gone, erased, the queue starts again from its first row: the page
    /// after it cannot be told).
    ///
    /// # Errors
    /// A database failure.
    async fn triage_page(
        client: &impl tokio_postgres::GenericClient,
        filter: &CaseloadFilter,
    ) -> Result<Vec<CaseloadRow>, ProjectionError> {
        // Urgent first, then soon, then the rest; within each, the oldest referral first.
        const KEY: &str = "ROW(CASE urgency WHEN 'urgent' THEN 0 WHEN 'soon' THEN 1 ELSE 2 END, \
             COALESCE(referred_on, '-infinity'::date), client_id)";
        let rows = client
            .query(
                &format!(
                    "{SELECT_COLUMNS} WHERE organisation_id = $1 \
                     AND (status = 'referred' OR (status = 'open' AND link_worker_id IS NULL)) \
                     AND (team_id IS NULL OR team_id = $2) \
                     AND ($3::uuid IS NULL OR {KEY} > COALESCE( \
                          (SELECT {KEY} FROM caseload WHERE client_id = $3 AND organisation_id = $1), \
                          ROW(0, '-infinity'::date, $3::uuid))) \
                     ORDER BY {KEY} LIMIT $4"
                ),
                &[
                    &filter.organisation_id,
                    &filter.team_id,
                    &filter.after,
                    &filter.limit,
                ],
            )
            .await?;
        rows.iter().map(decode_row).collect()
    }
}

/// Which caseload rows to read.
#[derive(Clone, Debug, Default)]
pub struct CaseloadFilter {
    pub organisation_id: Uuid,
    pub link_worker_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// The last client id of the previous page.
    pub after: Option<Uuid>,
    pub limit: i64,
    /// A triage queue: referrals waiting for a decision and cases accepted with no link worker
    /// yet, of `team_id` or of no team yet, urgent first, then oldest referral first
    /// (`link_worker_id` and `tag` are not read).
    pub triage: bool,
    /// Only cases carrying this tag.
    pub tag: Option<String>,
}

fn decode_row(row: &tokio_postgres::Row) -> Result<CaseloadRow, ProjectionError> {
    let booked: serde_json::Value = row.get(13);
    let baselines: Vec<String> = row.get(14);
    let baseline_dates: serde_json::Value = row.get(17);
    let follow_ups: Vec<String> = row.get(15);
    let open_concerns: Vec<Uuid> = row.get(18);
    let tags: Vec<String> = row.get(19);
    let check_ins_due: serde_json::Value = row.get(20);
    let awaited_answers: serde_json::Value = row.get(21);
    Ok(CaseloadRow {
        client_id: row.get(0),
        organisation_id: row.get(1),
        status: {
            let code: &str = row.get(2);
            // Rows written before the status was typed defaulted to an empty string for a
            // record not yet registered: read so, a row left from then does not stop the
            // projection at its client's next event.
            match code {
                "" => CaseStatus::Unregistered,
                code => CaseStatus::from_code(code).ok_or_else(|| {
                    ProjectionError::Corrupt(format!("caseload.status: {code:?}"))
                })?,
            }
        },
        erased: false,
        link_worker_id: row.get(3),
        team_id: row.get(4),
        area: row.get(5),
        referred_on: row.get(6),
        referral_source: row.get(7),
        accepted_at: row.get(8),
        closed_at: row.get(9),
        last_contact_at: row.get(10),
        contacts: row.get(11),
        did_not_attend: row.get(12),
        booked_appointments: serde_json::from_value(booked)
            .map_err(|e| ProjectionError::Corrupt(format!("caseload.booked_appointments: {e}")))?,
        baselines: baselines.into_iter().collect(),
        baseline_dates: serde_json::from_value(baseline_dates)
            .map_err(|e| ProjectionError::Corrupt(format!("caseload.baseline_dates: {e}")))?,
        follow_ups: follow_ups.into_iter().collect(),
        stream_version: row.get(16),
        open_concerns: open_concerns.into_iter().collect(),
        tags: tags.into_iter().collect(),
        check_ins_due: serde_json::from_value(check_ins_due)
            .map_err(|e| ProjectionError::Corrupt(format!("caseload.check_ins_due: {e}")))?,
        awaited_answers: serde_json::from_value(awaited_answers)
            .map_err(|e| ProjectionError::Corrupt(format!("caseload.awaited_answers: {e}")))?,
        urgency: row.get(22),
    })
}

/// What tells the live caseload and its shadow apart: the projection's name and its table.
trait CaseloadTable: Send + Sync + 'static {
    const NAME: &'static str;
    const TABLE: &'static str;
}

impl CaseloadTable for CaseloadProjection {
    const NAME: &'static str = LIVE_CASELOAD;
    const TABLE: &'static str = "caseload";
}

impl CaseloadTable for ShadowCaseload {
    const NAME: &'static str = SHADOW_CASELOAD;
    const TABLE: &'static str = "caseload_rebuild";
}

#[async_trait]
impl<T: CaseloadTable> Projection for T {
    fn name(&self) -> &str {
        T::NAME
    }

    async fn reset(&self, tx: &tokio_postgres::Transaction<'_>) -> Result<(), ProjectionError> {
        tx.batch_execute(&format!("DELETE FROM {}", T::TABLE))
            .await?;
        Ok(())
    }

    fn refolds(&self) -> bool {
        true
    }

    async fn apply_decoded(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
    ) -> Result<(), ProjectionError> {
        crate::held::apply_batch(self, tx, batch).await
    }

    fn deferred(self: Arc<Self>) -> Option<Box<dyn crate::held::Deferred>> {
        Some(Box::new(crate::held::HeldFold::new(self)))
    }
}

/// A client's row of `caseload` or its shadow, read back, folded and written. A client with a
/// correction is refolded from the start of their record, corrections applied.
#[async_trait]
impl<T: CaseloadTable> crate::held::PerClient for T {
    type Value = CaseloadRow;

    fn refolds_clients(&self) -> bool {
        true
    }

    async fn load(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
        clients: &[Uuid],
    ) -> Result<Vec<(Uuid, CaseloadRow)>, ProjectionError> {
        let select = batch
            .prepare(
                tx,
                &format!(
                    "{} WHERE client_id = ANY($1)",
                    SELECT_COLUMNS.replace("FROM caseload", &format!("FROM {}", T::TABLE))
                ),
            )
            .await?;
        tx.query(&select, &[&clients])
            .await?
            .iter()
            .map(|row| decode_row(row).map(|r| (r.client_id, r)))
            .collect()
    }

    fn start(&self, client_id: Uuid, first: &Fact) -> CaseloadRow {
        CaseloadRow {
            client_id,
            organisation_id: first.organisation_id,
            ..CaseloadRow::default()
        }
    }

    fn apply(&self, row: &mut CaseloadRow, fact: &Fact) {
        apply_case_event(row, &fact.event, fact.occurred_at, fact.stream_version);
    }

    async fn write(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
        rows: &[&CaseloadRow],
        stored: &[(Uuid, &CaseloadRow)],
    ) -> Result<(), ProjectionError> {
        // Every stored row is replaced: each carries its stream's version, which every event
        // moves.
        let stored: Vec<Uuid> = stored.iter().map(|(id, _)| *id).collect();
        write_rows(T::TABLE, tx, batch, rows, &stored).await
    }
}

/// Writes `rows` into `table` (`caseload` or its shadow): an erased client's row deleted, a
/// client with no stored row yet copied in, the rest (`stored`) replacing the rows they have.
async fn write_rows(
    table: &str,
    tx: &tokio_postgres::Transaction<'_>,
    batch: &Batch<'_>,
    rows: &[&CaseloadRow],
    stored: &[Uuid],
) -> Result<(), ProjectionError> {
    let erased: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.erased)
        .map(|r| r.client_id)
        .collect();
    if !erased.is_empty() {
        let delete = batch
            .prepare(
                tx,
                &format!("DELETE FROM {table} WHERE client_id = ANY($1)"),
            )
            .await?;
        tx.execute(&delete, &[&erased]).await?;
    }
    let (rows, fresh): (Vec<&CaseloadRow>, Vec<&CaseloadRow>) = rows
        .iter()
        .copied()
        .filter(|r| !r.erased)
        .partition(|r| stored.binary_search(&r.client_id).is_ok());
    copy_fresh(table, tx, batch, &fresh).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let column =
        |f: fn(&CaseloadRow) -> Option<Uuid>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
    let client_ids = column(|r| Some(r.client_id));
    let organisation_ids = column(|r| Some(r.organisation_id));
    let link_workers = column(|r| r.link_worker_id);
    let teams = column(|r| r.team_id);
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.code()).collect();
    let areas: Vec<&str> = rows.iter().map(|r| r.area.as_str()).collect();
    let referred_on: Vec<Option<NaiveDate>> = rows.iter().map(|r| r.referred_on).collect();
    let sources: Vec<Option<&str>> = rows.iter().map(|r| r.referral_source.as_deref()).collect();
    let urgencies: Vec<Option<&str>> = rows.iter().map(|r| r.urgency.as_deref()).collect();
    let time = |f: fn(&CaseloadRow) -> Option<DateTime<Utc>>| {
        rows.iter().map(|r| f(r)).collect::<Vec<_>>()
    };
    let accepted = time(|r| r.accepted_at);
    let closed = time(|r| r.closed_at);
    let last_contact = time(|r| r.last_contact_at);
    let contacts: Vec<i32> = rows.iter().map(|r| r.contacts).collect();
    let did_not_attend: Vec<i32> = rows.iter().map(|r| r.did_not_attend).collect();
    let booked = rows
        .iter()
        .map(|r| serde_json::to_value(&r.booked_appointments))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
    let codes =
        |set: &BTreeSet<String>| set.iter().map(String::as_str).collect::<Vec<_>>().join(",");
    let baselines: Vec<String> = rows.iter().map(|r| codes(&r.baselines)).collect();
    let baseline_dates = rows
        .iter()
        .map(|r| serde_json::to_value(&r.baseline_dates))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
    let follow_ups: Vec<String> = rows.iter().map(|r| codes(&r.follow_ups)).collect();
    // Tag codes hold no commas (the tag rules refuse them).
    let tags: Vec<String> = rows.iter().map(|r| codes(&r.tags)).collect();
    let check_ins_due = rows
        .iter()
        .map(|r| serde_json::to_value(&r.check_ins_due))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
    let awaited_answers = rows
        .iter()
        .map(|r| serde_json::to_value(&r.awaited_answers))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
    let versions: Vec<i64> = rows.iter().map(|r| r.stream_version).collect();
    // Uuids hold no commas: one text per row, split back into an array by the statement.
    let open_concerns: Vec<String> = rows
        .iter()
        .map(|r| {
            r.open_concerns
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let upsert = batch
        .prepare(tx, &UPSERT_ROWS.replace("{table}", table))
        .await?;
    tx.execute(
        &upsert,
        &[
            &client_ids,
            &organisation_ids,
            &statuses,
            &link_workers,
            &teams,
            &areas,
            &referred_on,
            &sources,
            &accepted,
            &closed,
            &last_contact,
            &contacts,
            &did_not_attend,
            &booked,
            &baselines,
            &follow_ups,
            &versions,
            &baseline_dates,
            &open_concerns,
            &tags,
            &check_ins_due,
            &awaited_answers,
            &urgencies,
        ],
    )
    .await?;
    Ok(())
}

/// Writes the rows of clients whose record began in the batch (none of theirs can be stored
/// yet) into `table` with one binary `COPY`.
async fn copy_fresh(
    table: &str,
    tx: &tokio_postgres::Transaction<'_>,
    batch: &Batch<'_>,
    rows: &[&CaseloadRow],
) -> Result<(), ProjectionError> {
    use tokio_postgres::types::{Json, Type};
    /// A row's sets and maps, as their columns store them.
    struct Stored<'a> {
        status: &'static str,
        booked: Json<&'a BTreeMap<Uuid, DateTime<Utc>>>,
        baselines: Vec<&'a str>,
        follow_ups: Vec<&'a str>,
        baseline_dates: Json<&'a BTreeMap<String, NaiveDate>>,
        open_concerns: Vec<Uuid>,
        tags: Vec<&'a str>,
        check_ins_due: Json<&'a BTreeMap<Uuid, DateTime<Utc>>>,
        awaited_answers: Json<&'a BTreeMap<Uuid, AwaitedAnswer>>,
    }
    let stored: Vec<Stored<'_>> = rows
        .iter()
        .map(|r| Stored {
            status: r.status.code(),
            booked: Json(&r.booked_appointments),
            baselines: r.baselines.iter().map(String::as_str).collect(),
            follow_ups: r.follow_ups.iter().map(String::as_str).collect(),
            baseline_dates: Json(&r.baseline_dates),
            open_concerns: r.open_concerns.iter().copied().collect(),
            tags: r.tags.iter().map(String::as_str).collect(),
            check_ins_due: Json(&r.check_ins_due),
            awaited_answers: Json(&r.awaited_answers),
        })
        .collect();
    batch
        .copy_rows(
            tx,
            &format!("COPY {table} ({ALL_COLUMNS}) FROM STDIN (FORMAT binary)"),
            &[
                Type::UUID,
                Type::UUID,
                Type::TEXT,
                Type::UUID,
                Type::UUID,
                Type::TEXT,
                Type::DATE,
                Type::TEXT,
                Type::TIMESTAMPTZ,
                Type::TIMESTAMPTZ,
                Type::TIMESTAMPTZ,
                Type::INT4,
                Type::INT4,
                Type::JSONB,
                Type::TEXT_ARRAY,
                Type::TEXT_ARRAY,
                Type::INT8,
                Type::JSONB,
                Type::UUID_ARRAY,
                Type::TEXT_ARRAY,
                Type::JSONB,
                Type::JSONB,
                Type::TEXT,
            ],
            rows.len(),
            |i| {
                let (r, s) = (rows[i], &stored[i]);
                vec![
                    &r.client_id,
                    &r.organisation_id,
                    &s.status,
                    &r.link_worker_id,
                    &r.team_id,
                    &r.area,
                    &r.referred_on,
                    &r.referral_source,
                    &r.accepted_at,
                    &r.closed_at,
                    &r.last_contact_at,
                    &r.contacts,
                    &r.did_not_attend,
                    &s.booked,
                    &s.baselines,
                    &s.follow_ups,
                    &r.stream_version,
                    &s.baseline_dates,
                    &s.open_concerns,
                    &s.tags,
                    &s.check_ins_due,
                    &s.awaited_answers,
                    &r.urgency,
                ]
            },
        )
        .await
}

/// Makes a rebuilt shadow caseload the live one, in one transaction: takes the live
/// projection's lease (waiting for a batch in flight), replaces the rows of `caseload` with
/// the shadow's, moves `caseload_v1`'s checkpoint to where the shadow stopped, and gives the
/// lease back. Readers see the old rows until the commit, then the new ones; the live runner
/// finds its lease gone or its checkpoint moved, and goes on from the new checkpoint.
///
/// # Errors
/// A database failure (nothing changes then).
pub async fn switch_rebuilt_caseload(
    client: &mut tokio_postgres::Client,
    holder: Uuid,
) -> Result<u64, ProjectionError> {
    let tx = client.transaction().await?;
    bookkeeping::seize_lease(&tx, LIVE_CASELOAD, holder).await?;
    tx.batch_execute("DELETE FROM caseload").await?;
    let moved = tx
        .execute(
            &format!(
                "INSERT INTO caseload ({ALL_COLUMNS}) SELECT {ALL_COLUMNS} FROM caseload_rebuild"
            ),
            &[],
        )
        .await?;
    let (at, applied) = bookkeeping::read_checkpoint(&tx, SHADOW_CASELOAD)
        .await?
        .ok_or_else(|| ProjectionError::Corrupt("the shadow caseload has no checkpoint".into()))?;
    bookkeeping::set_checkpoint(&tx, LIVE_CASELOAD, at, applied).await?;
    bookkeeping::release_lease(&tx, LIVE_CASELOAD, holder).await?;
    tx.commit().await?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use domain::testing::{command_pool, event_id, listed_service};
    use domain::{CaseState, Lookups, decide, evolve};
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// For any command sequence, the caseload row says what the folded case says: its
        /// status, who holds it and in which team, and the current referral's date and source.
        #[test]
        fn the_caseload_row_follows_the_folded_case(picks in proptest::collection::vec(0usize..64, 0..60)) {
            let pool = command_pool();
            let service = listed_service();
            let lookups = Lookups { service: Some(&service), timing: None, corrected: None, destinations: None, concern_categories: None, tags: None, destinations_needing_note: None };
            let at = Utc.with_ymd_and_hms(2026, 3, 5, 9, 0, 0).single().expect("a time");
            let mut state = CaseState::default();
            let mut row = CaseloadRow::default();
            let mut version = 0;
            let mut referral = None;
            let mut dates: BTreeMap<String, NaiveDate> = BTreeMap::new();
            for pick in picks {
                let command = &pool[pick % pool.len()];
                let Ok(events) = decide(&state, command, &lookups) else { continue };
                for event in events {
                    version += 1;
                    match &event {
                        CaseEvent::ReferralReceived(r) => {
                            referral = Some((r.received_on, code(&r.source)));
                            dates.clear();
                        }
                        CaseEvent::AssessmentRecorded(a) if a.timepoint == Timepoint::Baseline => {
                            let day = dates.entry(code(&a.instrument)).or_insert(a.administered_on);
                            *day = (*day).min(a.administered_on);
                        }
                        _ => {}
                    }
                    state = evolve(state, event_id(version as u128), &event, at);
                    apply_case_event(&mut row, &event, at, version);
                }
                prop_assert_eq!(row.status, state.status, "after {:?}", command);
                prop_assert_eq!(row.link_worker_id, state.link_worker.map(|(w, _)| w.0));
                prop_assert_eq!(row.team_id, state.link_worker.map(|(_, t)| t.0));
                prop_assert_eq!(row.referred_on, referral.as_ref().map(|r| r.0));
                prop_assert_eq!(row.referral_source.as_ref(), referral.as_ref().map(|r| &r.1));
                prop_assert_eq!(row.stream_version, version);
                prop_assert_eq!(&row.baseline_dates, &dates);
                prop_assert!(row.baselines.iter().eq(dates.keys()));
                let open: BTreeSet<Uuid> = state.concerns.iter().filter(|(_, open)| **open).map(|(id, _)| id.0).collect();
                prop_assert_eq!(&row.open_concerns, &open);
                prop_assert_eq!(&row.tags, &state.tags);
            }
        }
    }

    /// A baseline entered late with an earlier date moves the due date back.
    #[test]
    fn the_earliest_baseline_of_an_episode_counts() {
        let at = Utc
            .with_ymd_and_hms(2026, 3, 5, 9, 0, 0)
            .single()
            .expect("a time");
        let baseline = |n: u128, day: u32| {
            CaseEvent::AssessmentRecorded(domain::AssessmentRecorded {
                assessment_id: domain::AssessmentId(Uuid::from_u128(n)),
                instrument: domain::Instrument::Wemwbs,
                instrument_version: 1,
                timepoint: Timepoint::Baseline,
                mode: domain::AdministrationMode::SelfCompleted,
                answers: vec![3; 14],
                licensor_score: None,
                administered_on: NaiveDate::from_ymd_opt(2026, 3, day).expect("a date"),
            })
        };
        let mut row = CaseloadRow::default();
        apply_case_event(&mut row, &baseline(1, 10), at, 1);
        apply_case_event(&mut row, &baseline(2, 4), at, 2);
        apply_case_event(&mut row, &baseline(3, 20), at, 3);
        assert_eq!(
            row.baseline_dates.get("wemwbs"),
            NaiveDate::from_ymd_opt(2026, 3, 4).as_ref()
        );
    }
}
