//! Reports as they were known, and why today's differ.
//!
//! A figure sent to commissioners last quarter must be reproducible today, although facts have
//! been entered late and corrected since and the counting rules may have changed. A snapshot
//! replays the log under one rule version keeping only the events recorded by a moment
//! (`known_at`; corrections by `corrections_known_at`, the same unless an explanation needs
//! otherwise) into figures rows of its own (its negative `tag` where a rule version would be),
//! then reports read them as they read a version's. Replays run as jobs with progress; their
//! figures are kept.
//!
//! An explanation compares "as published" (rules A, known at T) with "now" (rules B, known now)
//! through four snapshots that differ by one cause each: the published one; A with every fact
//! known now but corrections only as known at T (the late entries); A known now (the
//! corrections); B known now (the rule change). Each difference splits into the three steps,
//! which add up to it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use eventstore::{EventStore, GlobalPosition, RecordedEvent};
use projector::corrected::FilteredLog;
use projector::rules::{PrivacyRules, Rules};
use projector::{OutcomesProjection, Projection};
use serde::Serialize;
use uuid::Uuid;

use crate::access::Principal;
use crate::reports::{OutcomeReport, ReportQuery, outcome_report, suppress_outcomes};
use crate::{AppError, policy};

/// Events replayed per transaction.
const BATCH: i64 = 2_000;

/// A report snapshot: the figures under a rule version as the log was known at a moment.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Snapshot {
    pub id: Uuid,
    pub rules_version: i32,
    /// Only facts recorded by then count.
    pub known_at: DateTime<Utc>,
    /// Only corrections recorded by then count.
    pub corrections_known_at: DateTime<Utc>,
    pub state: SnapshotState,
    /// Events of the log to read, and read so far.
    pub events_total: i64,
    pub events_done: i64,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Where a snapshot's build stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotState {
    /// Being built (or waiting its turn): its report is not ready.
    Running,
    /// Built: its report can be read.
    Done,
    /// The build failed: start another.
    Failed,
}

impl SnapshotState {
    /// The stored name (`report_snapshots.state`).
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotState::Running => "running",
            SnapshotState::Done => "done",
            SnapshotState::Failed => "failed",
        }
    }
}

impl std::str::FromStr for SnapshotState {
    type Err = AppError;

    fn from_str(s: &str) -> Result<SnapshotState, AppError> {
        let all = [
            SnapshotState::Running,
            SnapshotState::Done,
            SnapshotState::Failed,
        ];
        crate::by_code(&all, s, SnapshotState::as_str).ok_or_else(|| {
            AppError::Unexpected(anyhow::anyhow!(
                "report_snapshots.state: {s:?} is not a snapshot state"
            ))
        })
    }
}

/// A snapshot's report.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SnapshotReport {
    pub snapshot: Snapshot,
    /// The figures, suppressed as published reports are (`as_of` is not used: see `snapshot`).
    pub report: OutcomeReport,
}

/// An explanation: the four snapshots it compares.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Explanation {
    pub id: Uuid,
    /// As published: rules A, known at T.
    pub published: Snapshot,
    /// Rules A, every fact known now, corrections as known at T.
    pub late_entries: Snapshot,
    /// Rules A, known now.
    pub corrections: Snapshot,
    /// Rules B, known now.
    pub current: Snapshot,
}

/// One figure of an explained comparison, split into its causes. A cause is null when a
/// figure it would be worked out from is suppressed (or absent) in either snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExplainedDifference {
    /// Where in the report, e.g. `episodes.appointments_attended`.
    pub figure: String,
    pub published: Option<f64>,
    pub now: Option<f64>,
    /// Facts that happened by then and were recorded after.
    pub late_entries: Option<f64>,
    /// Corrections recorded after.
    pub corrections: Option<f64>,
    /// The change of rule version.
    pub rule_change: Option<f64>,
}

/// An explanation's figures for a query, once its snapshots are built.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExplainedComparison {
    pub explanation: Explanation,
    pub published: OutcomeReport,
    pub now: OutcomeReport,
    /// Every figure that differs.
    pub differences: Vec<ExplainedDifference>,
}

/// Makes and reads snapshots and explanations.
#[derive(Clone)]
pub struct Snapshots {
    store: EventStore,
    privacy: Arc<PrivacyRules>,
    /// One replay at a time: the others wait their turn (a replay reads the whole log).
    builders: Arc<tokio::sync::Semaphore>,
}

fn snapshot_from(row: &tokio_postgres::Row) -> Result<Snapshot, AppError> {
    Ok(Snapshot {
        id: row.get("id"),
        rules_version: row.get("rules_version"),
        known_at: row.get("known_at"),
        corrections_known_at: row.get("corrections_known_at"),
        state: row.get::<_, &str>("state").parse()?,
        events_total: row.get("events_total"),
        events_done: row.get("events_done"),
        created_at: row.get("created_at"),
        finished_at: row.get("finished_at"),
    })
}

/// At most this many snapshots of one organisation are built or waiting at once (an
/// explanation takes four): each replays the whole log, and a caller may not queue without end.
pub const MAX_UNFINISHED: i64 = 8;

/// The advisory lock class a snapshot's builder holds (with the snapshot's tag) while it builds,
/// so that one build runs per snapshot across every instance of the service, and a snapshot
/// whose builder died (its connection gone, its lock with it) can be found and built again.
const BUILDING_LOCK: i32 = 0x5ea7;

const SNAPSHOT_COLUMNS: &str = "id, tag, organisation_id, rules_version, known_at, \
    corrections_known_at, state, events_total, events_done, created_at, finished_at";

/// Which CSV file of a snapshot [`Snapshots::csv`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotCsv {
    /// A snapshot's report ([`crate::export::snapshot_report`]).
    Report,
    /// An explained comparison ([`crate::export::explanation`]).
    Explanation,
}

impl Snapshots {
    /// Snapshots over `store`.
    pub fn new(store: EventStore) -> Snapshots {
        Snapshots {
            store,
            privacy: Arc::new(PrivacyRules::current()),
            builders: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// Starts a snapshot: the figures under `rules` (the version reports used at `known_at`
    /// when none is given) as the log was known at `known_at`. It is built in the background.
    ///
    /// # Errors
    /// [`AppError::Denied`] for a caller who may not read reports; `known_at` in the future or
    /// an unknown rule version (`BadInput`); store failures.
    pub async fn start(
        &self,
        principal: &Principal,
        rules: Option<i32>,
        known_at: DateTime<Utc>,
    ) -> Result<Snapshot, AppError> {
        policy::may_read_reports(principal)?;
        let now = self.log_now().await?;
        if known_at > now {
            return Err(AppError::bad_input(
                "known_at",
                "a report can be reproduced as it was known up to now, not later",
            ));
        }
        let rules = self.rules_at(rules, known_at, "rules").await?;
        self.room_for(principal, 1).await?;
        self.begin(principal, rules, known_at, known_at).await
    }

    /// Starts an explanation of how the report under `published_rules` (default: the version
    /// live then) as known at `published_at` differs from the report under `current_rules`
    /// (default: the live version) known now: four snapshots, built in the background.
    ///
    /// # Errors
    /// As [`Snapshots::start`].
    pub async fn explain(
        &self,
        principal: &Principal,
        published_rules: Option<i32>,
        published_at: DateTime<Utc>,
        current_rules: Option<i32>,
    ) -> Result<Explanation, AppError> {
        policy::may_read_reports(principal)?;
        let now = self.log_now().await?;
        if published_at > now {
            return Err(AppError::bad_input(
                "published_at",
                "a report can only have been published by now",
            ));
        }
        let a = self
            .rules_at(published_rules, published_at, "published_rules")
            .await?;
        let b = self.rules_at(current_rules, now, "current_rules").await?;
        self.room_for(principal, 4).await?;
        let published = self
            .begin(principal, a.clone(), published_at, published_at)
            .await?;
        let late_entries = self.begin(principal, a.clone(), now, published_at).await?;
        let corrections = self.begin(principal, a, now, now).await?;
        let current = self.begin(principal, b, now, now).await?;
        let id = Uuid::new_v4();
        let client = self.store.pool().get().await?;
        client
            .execute(
                "INSERT INTO report_explanations (id, organisation_id, published, late_entries, corrections, current) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &id,
                    &principal.organisation_id,
                    &published.id,
                    &late_entries.id,
                    &corrections.id,
                    &current.id,
                ],
            )
            .await?;
        Ok(Explanation {
            id,
            published,
            late_entries,
            corrections,
            current,
        })
    }

    /// A snapshot of the caller's organisation, as it stands.
    ///
    /// # Errors
    /// [`AppError::Denied`] for a caller who may not read reports; [`AppError::NotFound`] for
    /// another organisation's or no such snapshot.
    pub async fn get(&self, principal: &Principal, id: Uuid) -> Result<Snapshot, AppError> {
        policy::may_read_reports(principal)?;
        snapshot_from(&self.row(principal, id).await?)
    }

    /// A built snapshot's report for `query`, suppressed.
    ///
    /// # Errors
    /// As [`Snapshots::get`], and [`AppError::NotReady`] while it is being built.
    pub async fn report(
        &self,
        principal: &Principal,
        id: Uuid,
        query: &ReportQuery,
    ) -> Result<SnapshotReport, AppError> {
        policy::may_read_reports(principal)?;
        let row = self.row(principal, id).await?;
        let snapshot = snapshot_from(&row)?;
        let report = self.figures(principal, &row, query).await?;
        Ok(SnapshotReport { snapshot, report })
    }

    /// A snapshot's report, or an explained comparison, as a CSV file.
    ///
    /// # Errors
    /// As [`Snapshots::report`] or [`Snapshots::explanation`].
    pub async fn csv(
        &self,
        principal: &Principal,
        id: Uuid,
        query: &ReportQuery,
        which: SnapshotCsv,
        options: crate::export::CsvOptions,
    ) -> Result<crate::export::CsvFile, AppError> {
        match which {
            SnapshotCsv::Report => {
                let report = self.report(principal, id, query).await?;
                crate::export::snapshot_report(&report, options)
            }
            SnapshotCsv::Explanation => {
                let explained = self.explanation(principal, id, query).await?;
                crate::export::explanation(&explained, options)
            }
        }
    }

    /// An explanation of the caller's organisation, with its figures for `query` once built.
    ///
    /// # Errors
    /// As [`Snapshots::report`].
    pub async fn explanation(
        &self,
        principal: &Principal,
        id: Uuid,
        query: &ReportQuery,
    ) -> Result<ExplainedComparison, AppError> {
        policy::may_read_reports(principal)?;
        let client = self.store.pool().get().await?;
        let row = client
            .query_opt(
                "SELECT published, late_entries, corrections, current FROM report_explanations \
                 WHERE id = $1 AND organisation_id = $2",
                &[&id, &principal.organisation_id],
            )
            .await?
            .ok_or_else(|| AppError::NotFound(format!("there is no explanation {id}")))?;
        drop(client);
        let mut rows = Vec::new();
        for k in 0..4 {
            rows.push(self.row(principal, row.get(k)).await?);
        }
        let mut reports = Vec::new();
        for row in &rows {
            reports.push(self.figures(principal, row, query).await?);
        }
        let steps: Vec<BTreeMap<String, f64>> = reports
            .iter()
            .map(crate::reports::numbers)
            .collect::<Result<_, _>>()?;
        let mut names: Vec<&String> = steps.iter().flat_map(|s| s.keys()).collect();
        names.sort();
        names.dedup();
        let step = |from: usize, to: usize, name: &String| -> Option<f64> {
            Some(steps[to].get(name)? - steps[from].get(name)?)
        };
        let differences = names
            .into_iter()
            .filter(|name| steps[0].get(*name) != steps[3].get(*name))
            .map(|name| ExplainedDifference {
                figure: name.clone(),
                published: steps[0].get(name).copied(),
                now: steps[3].get(name).copied(),
                late_entries: step(0, 1, name),
                corrections: step(1, 2, name),
                rule_change: step(2, 3, name),
            })
            .collect();
        let mut reports = reports.into_iter();
        let published = reports
            .next()
            .unwrap_or_else(|| unreachable!("four reports"));
        let now = reports
            .last()
            .unwrap_or_else(|| unreachable!("four reports"));
        Ok(ExplainedComparison {
            explanation: Explanation {
                id,
                published: snapshot_from(&rows[0])?,
                late_entries: snapshot_from(&rows[1])?,
                corrections: snapshot_from(&rows[2])?,
                current: snapshot_from(&rows[3])?,
            },
            published,
            now,
            differences,
        })
    }

    /// The time on the log's clock: `known_at` is compared with when events were recorded,
    /// which the database stamps (the rules' clock, `Clock`, may be set elsewhere in tests).
    async fn log_now(&self) -> Result<DateTime<Utc>, AppError> {
        let client = self.store.pool().get().await?;
        Ok(client.query_one("SELECT now()", &[]).await?.get(0))
    }

    /// The rule version asked for (it must be one this build knows), or the one reports used
    /// at `at`.
    async fn rules_at(
        &self,
        asked: Option<i32>,
        at: DateTime<Utc>,
        field: &'static str,
    ) -> Result<Rules, AppError> {
        let version = match asked {
            Some(v) => v,
            None => {
                let client = self.store.pool().get().await?;
                match projector::bookkeeping::version_live_at(&**client, projector::OUTCOMES, at)
                    .await?
                {
                    Some(v) => v,
                    None => projector::live_version(&client, projector::OUTCOMES).await?,
                }
            }
        };
        Rules::load(version).map_err(|e| AppError::bad_input(field, e.to_string()))
    }

    async fn row(&self, principal: &Principal, id: Uuid) -> Result<tokio_postgres::Row, AppError> {
        let client = self.store.pool().get().await?;
        client
            .query_opt(
                &format!(
                    "SELECT {SNAPSHOT_COLUMNS} FROM report_snapshots WHERE id = $1 AND organisation_id = $2"
                ),
                &[&id, &principal.organisation_id],
            )
            .await?
            .ok_or_else(|| AppError::NotFound(format!("there is no report snapshot {id}")))
    }

    async fn figures(
        &self,
        principal: &Principal,
        row: &tokio_postgres::Row,
        query: &ReportQuery,
    ) -> Result<OutcomeReport, AppError> {
        let state: SnapshotState = row.get::<_, &str>("state").parse()?;
        let id: Uuid = row.get("id");
        match state {
            SnapshotState::Done => {}
            SnapshotState::Running => {
                return Err(AppError::NotReady(format!(
                    "report snapshot {id} is still being built ({} of {} events): ask again soon",
                    row.get::<_, i64>("events_done"),
                    row.get::<_, i64>("events_total")
                )));
            }
            SnapshotState::Failed => {
                return Err(AppError::NotReady(format!(
                    "report snapshot {id} failed; start another"
                )));
            }
        }
        query.check_period()?;
        let filter = query.filter(
            Some(principal.organisation_id),
            row.get("rules_version"),
            Some(row.get("tag")),
        );
        let client = self.store.pool().get().await?;
        let mut report = outcome_report(&**client, &filter).await?;
        suppress_outcomes(&mut report, &self.privacy);
        Ok(report)
    }

    /// Refuses more snapshots for the caller's organisation than [`MAX_UNFINISHED`] unfinished
    /// at once, counting the `more` asked for.
    async fn room_for(&self, principal: &Principal, more: i64) -> Result<(), AppError> {
        let client = self.store.pool().get().await?;
        let unfinished: i64 = client
            .query_one(
                "SELECT count(*) FROM report_snapshots WHERE organisation_id = $1 AND state = 'running'",
                &[&principal.organisation_id],
            )
            .await?
            .get(0);
        if unfinished + more > MAX_UNFINISHED {
            return Err(AppError::NotReady(format!(
                "{unfinished} report snapshots of your organisation are being built (at most \
                 {MAX_UNFINISHED} at once, an explanation takes four): ask again when one is done"
            )));
        }
        Ok(())
    }

    /// Builds again every snapshot left `running` with no builder (the service stopped while
    /// it was being built, here or in another instance): its partial figures are removed and
    /// the log replayed from the start. A snapshot another instance is building is left to it.
    /// Returns how many were found unfinished.
    ///
    /// # Errors
    /// Store and database failures.
    pub async fn resume(&self) -> Result<usize, AppError> {
        let client = self.store.pool().get().await?;
        let rows = client
            .query(
                "SELECT id, tag, rules_version, known_at, corrections_known_at FROM report_snapshots \
                 WHERE state = 'running' ORDER BY created_at",
                &[],
            )
            .await?;
        drop(client);
        for row in &rows {
            let id: Uuid = row.get("id");
            let rules = match Rules::load(row.get("rules_version")) {
                Ok(rules) => rules,
                Err(e) => {
                    self.finish(id, Err(e.into())).await;
                    continue;
                }
            };
            self.spawn_build(
                id,
                row.get("tag"),
                rules,
                row.get("known_at"),
                row.get("corrections_known_at"),
            );
        }
        Ok(rows.len())
    }

    /// Records how a build ended.
    async fn finish(&self, id: Uuid, outcome: Result<(), AppError>) {
        finish(&self.store, id, outcome).await;
    }

    /// Builds a snapshot in the background, one build at a time in this process, and only
    /// while holding the snapshot's lock (so never twice at once anywhere).
    fn spawn_build(
        &self,
        id: Uuid,
        tag: i32,
        rules: Rules,
        known_at: DateTime<Utc>,
        corrections_known_at: DateTime<Utc>,
    ) {
        let store = self.store.clone();
        let builders = self.builders.clone();
        tokio::spawn(async move {
            // Closed only when the service stops: then the snapshot stays `running` until an
            // instance starts again and resumes it.
            let Ok(_turn) = builders.acquire_owned().await else {
                return;
            };
            // The lock lives as long as this connection, which is taken out of the pool and
            // closed when the build ends, however it ends.
            let lock = async {
                let client = store.pool().get().await?;
                let client = db::deadpool_postgres::Object::take(client);
                let held: bool = client
                    .query_one(
                        "SELECT pg_try_advisory_lock($1, $2)",
                        &[&BUILDING_LOCK, &tag],
                    )
                    .await?
                    .get(0);
                let state: Option<String> = client
                    .query_opt("SELECT state FROM report_snapshots WHERE id = $1", &[&id])
                    .await?
                    .map(|row| row.get(0));
                Ok::<_, AppError>((client, held && state.as_deref() == Some("running")))
            };
            let (_lock, ours) = match lock.await {
                Ok(lock) => lock,
                Err(e) => {
                    // Not left `running` for a restart to find: said so, and asked for again.
                    tracing::error!(snapshot = %id, error = %e, "could not lock a snapshot to build it");
                    finish(&store, id, Err(e)).await;
                    return;
                }
            };
            if !ours {
                return; // another instance builds it, or it has finished meanwhile
            }
            let outcome = build(&store, id, tag, rules, known_at, corrections_known_at).await;
            finish(&store, id, outcome).await;
        });
    }

    /// Registers a snapshot and builds it in the background.
    async fn begin(
        &self,
        principal: &Principal,
        rules: Rules,
        known_at: DateTime<Utc>,
        corrections_known_at: DateTime<Utc>,
    ) -> Result<Snapshot, AppError> {
        let id = Uuid::new_v4();
        let client = self.store.pool().get().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO report_snapshots (id, tag, organisation_id, rules_version, known_at, \
                     corrections_known_at, state, events_total) \
                     SELECT $1, nextval('report_snapshot_tags'), $2, $3, $4, $5, 'running', \
                     (SELECT count(*) FROM events) RETURNING {SNAPSHOT_COLUMNS}"
                ),
                &[
                    &id,
                    &principal.organisation_id,
                    &rules.version,
                    &known_at,
                    &corrections_known_at,
                ],
            )
            .await?;
        drop(client);
        self.spawn_build(id, row.get("tag"), rules, known_at, corrections_known_at);
        snapshot_from(&row)
    }
}

/// Records how a snapshot's build ended: done, or failed with the error.
async fn finish(store: &EventStore, id: Uuid, outcome: Result<(), AppError>) {
    let (state, error) = match &outcome {
        Ok(()) => (SnapshotState::Done, None),
        Err(e) => {
            tracing::error!(snapshot = %id, error = %e, "a report snapshot failed");
            (SnapshotState::Failed, Some(e.to_string()))
        }
    };
    if let Ok(client) = store.pool().get().await
        && let Err(e) = client
            .execute(
                "UPDATE report_snapshots SET state = $2, error = $3, finished_at = now() WHERE id = $1",
                &[&id, &state.as_str(), &error],
            )
            .await
    {
        tracing::error!(snapshot = %id, error = %e, "could not record a snapshot's end");
    }
}

/// Whether a snapshot known at `known_at` (corrections at `corrections_known_at`) holds `event`.
fn known(
    event: &RecordedEvent,
    known_at: DateTime<Utc>,
    corrections_known_at: DateTime<Utc>,
) -> bool {
    if event.event_type == "EntryCorrected" {
        event.recorded_at <= corrections_known_at
    } else {
        event.recorded_at <= known_at
    }
}

/// Replays the log into a snapshot's rows, batch by batch, recording progress.
///
/// # Errors
/// Store and database failures.
pub async fn build(
    store: &EventStore,
    id: Uuid,
    tag: i32,
    rules: Rules,
    known_at: DateTime<Utc>,
    corrections_known_at: DateTime<Utc>,
) -> Result<(), AppError> {
    let projection = OutcomesProjection::tagged(rules, tag);
    let keep = move |e: &RecordedEvent| known(e, known_at, corrections_known_at);
    let view = FilteredLog { store, keep: &keep };
    // From the start, over whatever an interrupted build of it left.
    {
        let mut client = store.pool().get().await?;
        let tx = client.transaction().await?;
        projection.reset(&tx).await?;
        tx.execute(
            "UPDATE report_snapshots SET events_done = 0, events_total = (SELECT count(*) FROM events) \
             WHERE id = $1",
            &[&id],
        )
        .await?;
        tx.commit().await?;
    }
    let mut after = GlobalPosition::START;
    let mut done: i64 = 0;
    loop {
        let batch = store.read_all(after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.global;
        done += batch.len() as i64;
        let kept: Vec<RecordedEvent> = batch.into_iter().filter(|e| keep(e)).collect();
        let mut client = store.pool().get().await?;
        let tx = client.transaction().await?;
        projection.apply(&tx, &kept, &view).await?;
        tx.execute(
            "UPDATE report_snapshots SET events_done = $2 WHERE id = $1",
            &[&id, &done],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
