//! The outcomes read model, under a rule version: per client, a pure fold of their events into
//! referrals, episodes, raw assessments, onward connections and service gaps; from that state
//! and the rules, the figures rows every report aggregates (each tagged with the rule version).
//!
//! Versions live side by side: `outcomes_v1` and `outcomes_v2` are two projections with their
//! own checkpoints and rows, so a rule change is rebuilt beside the figures in use.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{CaseEvent, Instrument, Timepoint, code};
use eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::{Json, ToSql, Type};
use uuid::Uuid;

use crate::corrected::Fact;
use crate::rules::{Corrections, EvaluationConsent, Rules};
use crate::{Batch, Projection, ProjectionError};

/// A referral as reports count it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferralFact {
    pub referral_id: Uuid,
    pub source: String,
    pub reasons: Vec<String>,
    pub received_on: NaiveDate,
    /// `accepted`, `declined`, `redirected`, or none yet.
    pub outcome: Option<String>,
    pub decline_reason: Option<String>,
    /// Where a redirected referral went: a destination code, `service:<id>`, or
    /// `uncoded` for one recorded in words before destinations were coded (the words are not
    /// copied: they may name a person).
    #[serde(default)]
    pub destination: Option<String>,
    pub first_contact_at: Option<DateTime<Utc>>,
}

/// One assessment as recorded (corrections applied).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssessmentFact {
    pub event_id: Uuid,
    pub instrument: Instrument,
    pub timepoint: Timepoint,
    pub answers: Vec<i32>,
    pub licensor_score: Option<f64>,
    pub administered_on: NaiveDate,
}

/// What happened on a day of an episode, counted by that day under rules that date facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Attended,
    NotAttended,
    Contact,
}

impl Activity {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Activity::Attended => "attended",
            Activity::NotAttended => "not_attended",
            Activity::Contact => "contact",
        }
    }
}

/// An episode: from an accepted referral to closure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeFact {
    pub referral_id: Uuid,
    pub accepted_on: Option<NaiveDate>,
    pub team_id: Option<Uuid>,
    pub closed_on: Option<NaiveDate>,
    pub closure_reason: Option<String>,
    pub contacts: i32,
    pub attended: i32,
    pub did_not_attend: i32,
    pub assessments: Vec<AssessmentFact>,
    /// Each appointment kept or missed (by the day it was booked for) and each contact (by its
    /// day), in the order recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activity: Vec<(Activity, NaiveDate)>,
}

/// An onward connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectionFact {
    pub connection_id: Uuid,
    pub service_id: Uuid,
    pub need: String,
    pub kind: String,
    pub made_on: NaiveDate,
    pub outcome: Option<String>,
    pub waiting_weeks: Option<i32>,
    pub team_id: Option<Uuid>,
    /// The service's answer (`accepted`, `declined`), by its own staff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_answer: Option<String>,
    /// Whether the person started with the service, as the service says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
}

/// A need no service could meet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GapFact {
    pub gap_id: Uuid,
    pub need: String,
    pub area: String,
    pub reason: String,
    pub recorded_on: NaiveDate,
    pub team_id: Option<Uuid>,
}

/// A client's outcome facts, folded from their stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientOutcomes {
    pub client_id: Uuid,
    pub organisation_id: Uuid,
    pub area: String,
    pub referrals: Vec<ReferralFact>,
    pub episodes: Vec<EpisodeFact>,
    /// Whether the last episode is open.
    pub open: bool,
    pub connections: Vec<ConnectionFact>,
    pub gaps: Vec<GapFact>,
    /// The day each appointment was booked for (until it is kept, missed or cancelled).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub appointments: BTreeMap<Uuid, NaiveDate>,
    /// The person's consent to evaluation was withdrawn (and not given again).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub evaluation_withdrawn: bool,
}

impl ClientOutcomes {
    fn connection(&mut self, connection_id: Uuid) -> Option<&mut ConnectionFact> {
        self.connections
            .iter_mut()
            .find(|c| c.connection_id == connection_id)
    }

    fn current(&mut self) -> Option<&mut EpisodeFact> {
        if self.open {
            self.episodes.last_mut()
        } else {
            None
        }
    }

    fn team(&self) -> Option<Uuid> {
        self.episodes.last().and_then(|e| e.team_id)
    }
}

/// Folds one event into a client's facts. Pure: no clock, no IO, no rules.
pub fn apply_outcome_event(
    state: &mut ClientOutcomes,
    event: &CaseEvent,
    event_id: Uuid,
    occurred_at: DateTime<Utc>,
) {
    let day = occurred_at.date_naive();
    match event {
        CaseEvent::ClientRegistered(e) => {
            state.client_id = e.client_id.0;
            state.area = e.area.clone();
        }
        CaseEvent::ReferralReceived(e) => state.referrals.push(ReferralFact {
            referral_id: e.referral_id.0,
            source: code(&e.source),
            reasons: e.reasons.iter().map(code).collect(),
            received_on: e.received_on,
            ..ReferralFact::default()
        }),
        CaseEvent::ReferralAccepted(e) => {
            if let Some(r) = state
                .referrals
                .iter_mut()
                .find(|r| r.referral_id == e.referral_id.0)
            {
                r.outcome = Some("accepted".into());
            }
            let team_id = state.team();
            state.episodes.push(EpisodeFact {
                referral_id: e.referral_id.0,
                accepted_on: Some(day),
                team_id,
                ..EpisodeFact::default()
            });
            state.open = true;
        }
        CaseEvent::ReferralDeclined(e) => {
            if let Some(r) = state
                .referrals
                .iter_mut()
                .find(|r| r.referral_id == e.referral_id.0)
            {
                r.outcome = Some("declined".into());
                r.decline_reason = Some(code(&e.reason));
            }
        }
        CaseEvent::ReferralRedirected(e) => {
            if let Some(r) = state
                .referrals
                .iter_mut()
                .find(|r| r.referral_id == e.referral_id.0)
            {
                r.outcome = Some("redirected".into());
                r.destination = Some(e.destination.report_code());
            }
        }
        CaseEvent::LinkWorkerAssigned(e) => {
            if let Some(episode) = state.current() {
                episode.team_id = Some(e.team_id.0);
            }
        }
        CaseEvent::CaseTransferred(e) => {
            if let Some(episode) = state.current() {
                episode.team_id = Some(e.team_id.0);
            }
        }
        CaseEvent::AppointmentBooked(e) => {
            state
                .appointments
                .insert(e.appointment_id.0, e.scheduled_for.date_naive());
        }
        CaseEvent::AppointmentCancelled(e) => {
            state.appointments.remove(&e.appointment_id.0);
        }
        CaseEvent::AppointmentAttended(e) => {
            let on = state.appointments.remove(&e.appointment_id.0).unwrap_or(day);
            if let Some(episode) = state.current() {
                episode.attended += 1;
                episode.activity.push((Activity::Attended, on));
            }
        }
        CaseEvent::AppointmentNotAttended(e) => {
            let on = state.appointments.remove(&e.appointment_id.0).unwrap_or(day);
            if let Some(episode) = state.current() {
                episode.did_not_attend += 1;
                episode.activity.push((Activity::NotAttended, on));
            }
        }
        CaseEvent::ContactRecorded(e) => {
            if let Some(episode) = state.current() {
                episode.contacts += 1;
                episode
                    .activity
                    .push((Activity::Contact, e.contacted_at.date_naive()));
                let referral_id = episode.referral_id;
                if let Some(r) = state
                    .referrals
                    .iter_mut()
                    .find(|r| r.referral_id == referral_id)
                {
                    r.first_contact_at = Some(
                        r.first_contact_at
                            .map_or(e.contacted_at, |first| first.min(e.contacted_at)),
                    );
                }
            }
        }
        CaseEvent::AssessmentRecorded(e) => {
            if let Some(episode) = state.current() {
                episode.assessments.push(AssessmentFact {
                    event_id,
                    instrument: e.instrument,
                    timepoint: e.timepoint,
                    answers: e.answers.clone(),
                    licensor_score: e.licensor_score,
                    administered_on: e.administered_on,
                });
            }
        }
        CaseEvent::OnwardConnectionMade(e) => {
            let team_id = state.team();
            state.connections.push(ConnectionFact {
                connection_id: e.connection_id.0,
                service_id: e.service_id.0,
                need: code(&e.need),
                kind: code(&e.kind),
                made_on: day,
                outcome: None,
                waiting_weeks: None,
                team_id,
                service_answer: None,
                started: None,
            });
        }
        CaseEvent::ConnectionAcceptedByProvider(e) => {
            if let Some(c) = state.connection(e.connection_id.0) {
                c.service_answer = Some("accepted".to_owned());
            }
        }
        CaseEvent::ConnectionDeclinedByProvider(e) => {
            if let Some(c) = state.connection(e.connection_id.0) {
                c.service_answer = Some("declined".to_owned());
            }
        }
        CaseEvent::ConnectionStartRecorded(e) => {
            if let Some(c) = state.connection(e.connection_id.0) {
                c.started = Some(e.started);
            }
        }
        CaseEvent::ConnectionOutcomeRecorded(e) => {
            if let Some(c) = state
                .connections
                .iter_mut()
                .find(|c| c.connection_id == e.connection_id.0)
            {
                c.outcome = Some(code(&e.outcome));
                c.waiting_weeks = e.waiting_weeks.map(|w| w as i32);
            }
        }
        CaseEvent::ServiceGapRecorded(e) => {
            let team_id = state.team();
            state.gaps.push(GapFact {
                gap_id: e.gap_id.0,
                need: code(&e.need),
                area: e.area.clone(),
                reason: code(&e.reason),
                recorded_on: day,
                team_id,
            });
        }
        CaseEvent::CaseClosed(e) => {
            if let Some(episode) = state.current() {
                episode.closed_on = Some(day);
                episode.closure_reason = Some(code(&e.reason));
            }
            state.open = false;
        }
        CaseEvent::CaseReopened(_) => {
            if let Some(episode) = state.episodes.last_mut() {
                episode.closed_on = None;
                episode.closure_reason = None;
                state.open = true;
            }
        }
        CaseEvent::EntryCorrected(e) => {
            // Corrections of an assessment's answers, timepoint or date change the figures.
            for episode in &mut state.episodes {
                for assessment in &mut episode.assessments {
                    if assessment.event_id != e.corrects.0 {
                        continue;
                    }
                    let fields = &e.corrected_fields;
                    correct(&mut assessment.answers, fields, "answers");
                    correct(&mut assessment.timepoint, fields, "timepoint");
                    correct(&mut assessment.administered_on, fields, "administered_on");
                    correct(&mut assessment.licensor_score, fields, "licensor_score");
                }
            }
        }
        CaseEvent::ConsentRecorded(e) if e.scope == domain::ConsentScope::Evaluation => {
            state.evaluation_withdrawn = false;
        }
        CaseEvent::ConsentWithdrawn(e) if e.scope == domain::ConsentScope::Evaluation => {
            state.evaluation_withdrawn = true;
        }
        CaseEvent::ConsentRecorded(_)
        | CaseEvent::ConsentWithdrawn(_)
        | CaseEvent::WhatMattersRecorded(_)
        | CaseEvent::NeedIdentified(_)
        | CaseEvent::GoalSet(_)
        | CaseEvent::GoalReviewed(_)
        // Aggregates keep counting an erased person's case: nothing here is personal.
        | CaseEvent::GpMessageSent(_)
        | CaseEvent::ClientErased(_)
        | CaseEvent::LateEntryExplained(_)
        | CaseEvent::NoteAdded(_)
        | CaseEvent::NotePinned(_)
        | CaseEvent::NoteUnpinned(_)
        | CaseEvent::SafeguardingConcernRaised(_)
        | CaseEvent::SafeguardingConcernUpdated(_)
        | CaseEvent::SafeguardingConcernClosed(_)
        // Sealed: reports read what it counts by from `equity_demographics` (app::equity).
        | CaseEvent::DemographicsRecorded(_)
        | CaseEvent::CaseTagged(_)
        | CaseEvent::CaseUntagged(_)
        | CaseEvent::LoneWorkingPlanRecorded(_)
        | CaseEvent::LoneWorkingCheckedIn(_) => {}
    }
}

/// `field` set to the value a correction's `fields` give it under `name`, if they give one it
/// can hold.
fn correct<T: serde::de::DeserializeOwned>(
    field: &mut T,
    fields: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) {
    if let Some(value) = fields
        .get(name)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
    {
        *field = value;
    }
}

/// One paired score: the baseline and the last later score of an episode, for one measure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScorePair {
    pub episode: i32,
    pub measure: String,
    pub baseline: f64,
    pub follow_up: f64,
    pub baseline_on: NaiveDate,
    pub follow_up_on: NaiveDate,
    /// `improved`, `no_change` or `worse`.
    pub category: String,
}

/// The paired scores of a client under `rules`: per episode and measure, the first baseline
/// with the last score at a pairing timepoint at least the rules' minimum days later.
pub fn score_pairs(state: &ClientOutcomes, rules: &Rules) -> Vec<ScorePair> {
    let mut pairs = Vec::new();
    for (index, episode) in state.episodes.iter().enumerate() {
        for measure in &rules.measures {
            let scored = |a: &AssessmentFact| {
                rules
                    .score(measure, a.instrument, &a.answers, a.licensor_score)
                    .map(|s| (a.administered_on, s))
            };
            let Some((baseline_on, baseline)) = baseline_of(state, index, measure, rules) else {
                continue;
            };
            let later = episode
                .assessments
                .iter()
                .filter(|a| rules.pairs_after(a.timepoint))
                .filter_map(scored)
                .filter(|(on, _)| (*on - baseline_on).num_days() >= rules.pairing.min_days_between)
                .max_by_key(|(on, _)| *on);
            if let Some((follow_up_on, follow_up)) = later {
                pairs.push(ScorePair {
                    episode: index as i32 + 1,
                    measure: measure.name.clone(),
                    baseline,
                    follow_up,
                    baseline_on,
                    follow_up_on,
                    category: measure.classify(baseline, follow_up).code().to_owned(),
                });
            }
        }
    }
    pairs
}

/// An episode's baseline for a measure: its first, or (when the rules carry baselines over) the
/// last of an earlier episode's.
fn baseline_of(
    state: &ClientOutcomes,
    index: usize,
    measure: &crate::rules::Measure,
    rules: &Rules,
) -> Option<(NaiveDate, f64)> {
    let first = |episode: &EpisodeFact| {
        episode
            .assessments
            .iter()
            .filter(|a| a.timepoint == Timepoint::Baseline)
            .find_map(|a| {
                rules
                    .score(measure, a.instrument, &a.answers, a.licensor_score)
                    .map(|s| (a.administered_on, s))
            })
    };
    first(&state.episodes[index]).or_else(|| {
        if !rules.pairing.carry_over_baselines {
            return None;
        }
        state.episodes[..index].iter().rev().find_map(first)
    })
}

/// A baseline of an episode and measure, paired or not.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BaselineFact {
    pub episode: i32,
    pub measure: String,
    pub baseline_on: NaiveDate,
    pub paired: bool,
    pub episode_closed: bool,
}

/// Every baseline of a client's episodes under `rules`, with whether a later score pairs with
/// it: the drop-out a report shows beside each measure.
pub fn baselines(state: &ClientOutcomes, rules: &Rules) -> Vec<BaselineFact> {
    let pairs = score_pairs(state, rules);
    let mut out = Vec::new();
    for (index, episode) in state.episodes.iter().enumerate() {
        let number = index as i32 + 1;
        for measure in &rules.measures {
            let Some((baseline_on, _)) = baseline_of(state, index, measure, rules) else {
                continue;
            };
            out.push(BaselineFact {
                episode: number,
                measure: measure.name.clone(),
                baseline_on,
                paired: pairs
                    .iter()
                    .any(|p| p.episode == number && p.measure == measure.name),
                episode_closed: episode.closed_on.is_some(),
            });
        }
    }
    out
}

/// The outcomes projection under one rule version.
pub struct OutcomesProjection {
    rules: Rules,
    name: String,
    /// The `rules_version` its rows are stored under: the rules' version, or a snapshot's tag.
    tag: i32,
}

impl OutcomesProjection {
    /// The projection for a rule set (`outcomes_v{version}`).
    pub fn new(rules: Rules) -> OutcomesProjection {
        OutcomesProjection {
            name: outcomes_name(rules.version),
            tag: rules.version,
            rules,
        }
    }

    /// The projection for a rule set whose rows are stored under `tag` (a report snapshot's,
    /// negative so it meets no rule version) instead of the rules' version.
    pub fn tagged(rules: Rules, tag: i32) -> OutcomesProjection {
        OutcomesProjection {
            name: format!("outcomes_snapshot_{}", -tag),
            tag,
            rules,
        }
    }

    /// Its rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }
}

/// The projection name of an outcomes rule version.
pub fn outcomes_name(version: i32) -> String {
    format!("outcomes_v{version}")
}

/// Every table of the outcome read model, each holding rows per rule version (reset and
/// replaced per client by this projection; tests and checks compare them all).
pub const FIGURE_TABLES: &[&str] = &[
    "report_referrals",
    "report_episodes",
    "report_scores",
    "report_connections",
    "report_gaps",
    "report_activity",
    "report_baselines",
    "outcome_state",
];

#[async_trait]
impl Projection for OutcomesProjection {
    fn name(&self) -> &str {
        &self.name
    }

    async fn reset(&self, tx: &tokio_postgres::Transaction<'_>) -> Result<(), ProjectionError> {
        for table in FIGURE_TABLES {
            tx.execute(
                &format!("DELETE FROM {table} WHERE rules_version = $1"),
                &[&self.tag],
            )
            .await?;
        }
        Ok(())
    }

    fn refolds(&self) -> bool {
        self.rules.corrections == Corrections::Every
    }

    async fn apply(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        events: &[RecordedEvent],
        log: &dyn crate::corrected::RecordSource,
    ) -> Result<(), ProjectionError> {
        // The runners fold through `apply_decoded` and mark their own transactions; this is
        // the path of a report snapshot's build (`app::snapshots::build`), whose rows are
        // replayed from the start when it is interrupted (and whose end, committed with a
        // flush, flushes them too): it need not wait for the WAL flush either.
        crate::bookkeeping::commit_without_flush(tx).await?;
        crate::runner::apply_decoding(self, tx, events, log).await
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

/// A client's outcome state, read back, folded and written with its figure rows.
#[async_trait]
impl crate::held::PerClient for OutcomesProjection {
    type Value = ClientOutcomes;

    fn refolds_clients(&self) -> bool {
        self.refolds()
    }

    async fn load(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
        clients: &[Uuid],
    ) -> Result<Vec<(Uuid, ClientOutcomes)>, ProjectionError> {
        let select = batch
            .prepare(
                tx,
                "SELECT client_id, state FROM outcome_state WHERE rules_version = $1 AND client_id = ANY($2)",
            )
            .await?;
        tx.query(&select, &[&self.tag, &clients])
            .await?
            .iter()
            .map(|row| {
                // Parsed straight from the stored text (V40: `json`, not `jsonb`).
                let state: Json<ClientOutcomes> = row
                    .try_get(1)
                    .map_err(|e| ProjectionError::Corrupt(format!("outcome_state: {e}")))?;
                Ok((row.get(0), state.0))
            })
            .collect()
    }

    fn start(&self, client_id: Uuid, first: &Fact) -> ClientOutcomes {
        ClientOutcomes {
            client_id,
            organisation_id: first.organisation_id,
            ..ClientOutcomes::default()
        }
    }

    fn apply(&self, state: &mut ClientOutcomes, fact: &Fact) {
        apply_outcome_event(state, &fact.event, fact.event_id, fact.occurred_at);
    }

    async fn write(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
        states: &[&ClientOutcomes],
        stored: &[(Uuid, &ClientOutcomes)],
    ) -> Result<(), ProjectionError> {
        let version = self.tag;
        // A client with no stored state has no rows: all of theirs are copied in. A client
        // with one has rows in a table to replace only where the rows their state makes now
        // differ from those the stored state made (a follow-up assessment changes the scores
        // and the baselines, not the referral's, the episode's or the connections' rows):
        // those are deleted and copied in again, every other table of theirs is left as it is.
        // The stored rows are taken to be those the stored state makes under this build's
        // rules: a change to how a rule version's rows are made needs a rebuild (as it always
        // did for the clients no batch touches).
        let mut figures = Figures::default();
        let mut replaced: [Vec<Uuid>; TABLES.len()] = Default::default();
        for state in states {
            let before = stored
                .binary_search_by_key(&state.client_id, |(id, _)| *id)
                .ok()
                .map(|i| stored[i].1);
            match before {
                None => figures.add(state, &self.rules),
                Some(before) => {
                    let now = Figures::of(state, &self.rules);
                    let changed = now.changed(&Figures::of(before, &self.rules));
                    for (ids, changed) in replaced.iter_mut().zip(changed) {
                        if changed {
                            ids.push(state.client_id);
                        }
                    }
                    figures.extend(&now, changed);
                }
            }
        }
        for (table, ids) in TABLES.iter().zip(&replaced) {
            if ids.is_empty() {
                continue;
            }
            let delete = batch
                .prepare(
                    tx,
                    &format!(
                        "DELETE FROM {table} WHERE rules_version = $1 AND client_id = ANY($2)"
                    ),
                )
                .await?;
            tx.execute(&delete, &[&version, ids]).await?;
        }
        figures.write(tx, batch, version).await
    }
}

/// A column of figures rows to copy: its PostgreSQL type, its length, and row `i`'s value.
trait Column: Sync {
    fn pg_type(&self) -> Type;
    fn rows(&self) -> usize;
    fn at(&self, i: usize) -> &(dyn ToSql + Sync);
}

/// The PostgreSQL type a value is copied into a figures column as.
trait ColumnType {
    const TYPE: Type;
}

impl ColumnType for Uuid {
    const TYPE: Type = Type::UUID;
}
impl ColumnType for i32 {
    const TYPE: Type = Type::INT4;
}
impl ColumnType for f64 {
    const TYPE: Type = Type::FLOAT8;
}
impl ColumnType for bool {
    const TYPE: Type = Type::BOOL;
}
impl ColumnType for NaiveDate {
    const TYPE: Type = Type::DATE;
}
impl ColumnType for String {
    const TYPE: Type = Type::TEXT;
}
impl ColumnType for &str {
    const TYPE: Type = Type::TEXT;
}
impl<T> ColumnType for Json<T> {
    const TYPE: Type = Type::JSONB;
}
impl<T: ColumnType> ColumnType for Option<T> {
    const TYPE: Type = T::TYPE;
}

impl<T: ColumnType + ToSql + Sync> Column for Vec<T> {
    fn pg_type(&self) -> Type {
        T::TYPE
    }

    fn rows(&self) -> usize {
        self.len()
    }

    fn at(&self, i: usize) -> &(dyn ToSql + Sync) {
        &self[i]
    }
}

/// A figures table's rows held column by column, each column named as the table names it.
trait Columns: Sync {
    fn columns(&self) -> Vec<(&'static str, &dyn Column)>;
}

/// A struct of rows column by column, one `Vec` per column (after a group's columns, where
/// `..group: Type` names one): its columns are copied under the fields' names, in their order.
macro_rules! columns {
    (
        $(#[$meta:meta])*
        struct $name:ident $(<$lt:lifetime>)? {
            $(..$group:ident: $group_type:ty,)?
            $($field:ident: $type:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Default, PartialEq)]
        struct $name $(<$lt>)? {
            $($group: $group_type,)?
            $($field: Vec<$type>,)*
        }

        impl $(<$lt>)? $name $(<$lt>)? {
            /// Appends `other`'s rows.
            fn extend(&mut self, other: &Self) {
                $(self.$group.extend(&other.$group);)?
                $(self.$field.extend(other.$field.iter().cloned());)*
            }
        }

        impl $(<$lt>)? Columns for $name $(<$lt>)? {
            fn columns(&self) -> Vec<(&'static str, &dyn Column)> {
                let mut columns: Vec<(&'static str, &dyn Column)> = Vec::new();
                $(columns.extend(self.$group.columns());)?
                columns.extend([$((stringify!($field), &self.$field as &dyn Column)),*]);
                columns
            }
        }
    };
}

/// Copies `rows` into `table` under rules version `version` with one binary `COPY`.
async fn copy_figures(
    tx: &tokio_postgres::Transaction<'_>,
    batch: &Batch<'_>,
    table: &str,
    version: &i32,
    rows: &dyn Columns,
) -> Result<(), ProjectionError> {
    let columns = rows.columns();
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let copy = format!(
        "COPY {table} (rules_version, {}) FROM STDIN (FORMAT binary)",
        names.join(", ")
    );
    let types: Vec<Type> = std::iter::once(Type::INT4)
        .chain(columns.iter().map(|(_, column)| column.pg_type()))
        .collect();
    let n_rows = columns.first().map_or(0, |(_, column)| column.rows());
    debug_assert!(columns.iter().all(|(_, column)| column.rows() == n_rows));
    batch
        .copy_rows(tx, &copy, &types, n_rows, |i| {
            std::iter::once(version as &(dyn ToSql + Sync))
                .chain(columns.iter().map(|(_, column)| column.at(i)))
                .collect()
        })
        .await
}

/// The outcome read model's tables in the order [`Figures::write`] writes them: the state, then
/// each table of figures. Every one of them is in [`FIGURE_TABLES`].
const TABLES: [&str; 8] = [
    "outcome_state",
    "report_referrals",
    "report_episodes",
    "report_scores",
    "report_connections",
    "report_gaps",
    "report_baselines",
    "report_activity",
];

/// For each of [`TABLES`], whether a client's rows in it are to be written.
type Tables = [bool; TABLES.len()];

/// Rows to insert, column by column, each table's copied in with one binary `COPY`.
#[derive(Default)]
struct Figures<'a> {
    /// The states, serialised straight into the `COPY` (no `Value` in between).
    state: Vec<&'a ClientOutcomes>,
    referrals: ReferralColumns<'a>,
    episodes: EpisodeColumns<'a>,
    scores: ScoreColumns<'a>,
    connections: ConnectionColumns,
    gaps: GapColumns,
    activity: ActivityColumns<'a>,
    baselines: BaselineColumns<'a>,
}

columns! {
    /// The columns every row of an episode's figures starts with: whose, which episode, the
    /// organisation and team, and the referral's source and reasons (what reports filter by).
    /// The source and reasons are borrowed from the state (and serialised straight into the
    /// copy).
    struct EpisodeKeys<'a> {
        client_id: Uuid,
        episode: i32,
        organisation_id: Uuid,
        team_id: Option<Uuid>,
        source: &'a str,
        reasons: Json<&'a [String]>,
    }
}

impl<'a> EpisodeKeys<'a> {
    /// The keys of a row of episode `episode` (from 1) of `state`, in team `team_id`.
    fn push(&mut self, state: &'a ClientOutcomes, episode: i32, team_id: Option<Uuid>) {
        let e = &state.episodes[(episode - 1) as usize];
        let r = state
            .referrals
            .iter()
            .find(|r| r.referral_id == e.referral_id);
        self.client_id.push(state.client_id);
        self.episode.push(episode);
        self.organisation_id.push(state.organisation_id);
        self.team_id.push(team_id);
        self.source.push(r.map_or("", |r| r.source.as_str()));
        self.reasons
            .push(Json(r.map_or(&[][..], |r| r.reasons.as_slice())));
    }
}

columns! {
    /// `report_baselines`.
    struct BaselineColumns<'a> {
        ..keys: EpisodeKeys<'a>,
        measure: String,
        baseline_on: NaiveDate,
        paired: bool,
        episode_closed: bool,
    }
}

columns! {
    /// `report_activity`.
    struct ActivityColumns<'a> {
        ..keys: EpisodeKeys<'a>,
        kind: &'static str,
        on_day: NaiveDate,
    }
}

columns! {
    /// `report_referrals`.
    struct ReferralColumns<'a> {
        referral_id: Uuid,
        client_id: Uuid,
        organisation_id: Uuid,
        team_id: Option<Uuid>,
        source: &'a str,
        reasons: Json<&'a [String]>,
        received_on: NaiveDate,
        outcome: Option<String>,
        decline_reason: Option<String>,
        destination: Option<String>,
        days_to_first_contact: Option<i32>,
    }
}

columns! {
    /// `report_episodes`.
    struct EpisodeColumns<'a> {
        ..keys: EpisodeKeys<'a>,
        accepted_on: Option<NaiveDate>,
        closed_on: Option<NaiveDate>,
        closure_reason: Option<String>,
        contacts: i32,
        attended: i32,
        did_not_attend: i32,
        evaluation_excluded: bool,
    }
}

columns! {
    /// `report_scores`.
    struct ScoreColumns<'a> {
        ..keys: EpisodeKeys<'a>,
        measure: String,
        baseline: f64,
        follow_up: f64,
        category: String,
        baseline_on: NaiveDate,
        follow_up_on: NaiveDate,
        baseline_band: Option<String>,
        follow_up_band: Option<String>,
    }
}

columns! {
    /// `report_connections`.
    struct ConnectionColumns {
        connection_id: Uuid,
        client_id: Uuid,
        organisation_id: Uuid,
        team_id: Option<Uuid>,
        service_id: Uuid,
        need: String,
        kind: String,
        made_on: NaiveDate,
        outcome: Option<String>,
        waiting_weeks: Option<i32>,
        service_answer: Option<String>,
        started: Option<bool>,
    }
}

columns! {
    /// `report_gaps`.
    struct GapColumns {
        gap_id: Uuid,
        client_id: Uuid,
        organisation_id: Uuid,
        team_id: Option<Uuid>,
        need: String,
        area: String,
        reason: String,
        recorded_on: NaiveDate,
    }
}

impl<'a> Figures<'a> {
    /// One client's rows.
    fn of(state: &'a ClientOutcomes, rules: &Rules) -> Figures<'a> {
        let mut figures = Figures::default();
        figures.add(state, rules);
        figures
    }

    /// For one client's rows, which of [`TABLES`] hold rows other than `before`'s (the state:
    /// whether it differs).
    fn changed(&self, before: &Figures<'_>) -> Tables {
        [
            self.state != before.state,
            self.referrals != before.referrals,
            self.episodes != before.episodes,
            self.scores != before.scores,
            self.connections != before.connections,
            self.gaps != before.gaps,
            self.baselines != before.baselines,
            self.activity != before.activity,
        ]
    }

    /// Appends `other`'s rows of the tables `tables` marks.
    fn extend(&mut self, other: &Figures<'a>, tables: Tables) {
        let [
            state,
            referrals,
            episodes,
            scores,
            connections,
            gaps,
            baselines,
            activity,
        ] = tables;
        if state {
            self.state.extend(other.state.iter().copied());
        }
        if referrals {
            self.referrals.extend(&other.referrals);
        }
        if episodes {
            self.episodes.extend(&other.episodes);
        }
        if scores {
            self.scores.extend(&other.scores);
        }
        if connections {
            self.connections.extend(&other.connections);
        }
        if gaps {
            self.gaps.extend(&other.gaps);
        }
        if baselines {
            self.baselines.extend(&other.baselines);
        }
        if activity {
            self.activity.extend(&other.activity);
        }
    }

    fn add(&mut self, state: &'a ClientOutcomes, rules: &Rules) {
        let client = state.client_id;
        let org = state.organisation_id;
        // A state that does not serialise fails the batch's COPY: it is never stored as null.
        self.state.push(state);
        // Whose scores count, under the rules' evaluation consent rule.
        let excluded = rules.figures.evaluation_consent == EvaluationConsent::ExcludeWithdrawn
            && state.evaluation_withdrawn;
        for r in &state.referrals {
            let episode = state
                .episodes
                .iter()
                .find(|e| e.referral_id == r.referral_id);
            let c = &mut self.referrals;
            c.referral_id.push(r.referral_id);
            c.client_id.push(client);
            c.organisation_id.push(org);
            c.team_id.push(episode.and_then(|e| e.team_id));
            c.source.push(r.source.as_str());
            c.reasons.push(Json(r.reasons.as_slice()));
            c.received_on.push(r.received_on);
            c.outcome.push(r.outcome.clone());
            c.decline_reason.push(r.decline_reason.clone());
            c.destination.push(r.destination.clone());
            c.days_to_first_contact.push(
                r.first_contact_at
                    .map(|at| (at.date_naive() - r.received_on).num_days().max(0) as i32),
            );
        }
        for (index, e) in state.episodes.iter().enumerate() {
            let episode = index as i32 + 1;
            let c = &mut self.episodes;
            c.keys.push(state, episode, e.team_id);
            c.accepted_on.push(e.accepted_on);
            c.closed_on.push(e.closed_on);
            c.closure_reason.push(e.closure_reason.clone());
            c.contacts.push(e.contacts);
            c.attended.push(e.attended);
            c.did_not_attend.push(e.did_not_attend);
            c.evaluation_excluded.push(excluded);
            if rules.dating.dates_facts() {
                let a = &mut self.activity;
                for (kind, on) in &e.activity {
                    a.keys.push(state, episode, e.team_id);
                    a.kind.push(kind.code());
                    a.on_day.push(*on);
                }
            }
        }
        let pairs = if excluded {
            Vec::new()
        } else {
            score_pairs(state, rules)
        };
        for pair in pairs {
            let measure = rules.measures.iter().find(|m| m.name == pair.measure);
            let band = |score: f64| measure.and_then(|m| m.band(score)).map(str::to_owned);
            self.scores.baseline_band.push(band(pair.baseline));
            self.scores.follow_up_band.push(band(pair.follow_up));
            let team_id = state.episodes[(pair.episode - 1) as usize].team_id;
            let c = &mut self.scores;
            c.keys.push(state, pair.episode, team_id);
            c.measure.push(pair.measure);
            c.baseline.push(pair.baseline);
            c.follow_up.push(pair.follow_up);
            c.category.push(pair.category);
            c.baseline_on.push(pair.baseline_on);
            c.follow_up_on.push(pair.follow_up_on);
        }
        if rules.figures.baselines && !excluded {
            for b in baselines(state, rules) {
                let team_id = state.episodes[(b.episode - 1) as usize].team_id;
                let c = &mut self.baselines;
                c.keys.push(state, b.episode, team_id);
                c.measure.push(b.measure);
                c.baseline_on.push(b.baseline_on);
                c.paired.push(b.paired);
                c.episode_closed.push(b.episode_closed);
            }
        }
        for x in &state.connections {
            let c = &mut self.connections;
            c.connection_id.push(x.connection_id);
            c.client_id.push(client);
            c.organisation_id.push(org);
            c.team_id.push(x.team_id);
            c.service_id.push(x.service_id);
            c.need.push(x.need.clone());
            c.kind.push(x.kind.clone());
            c.made_on.push(x.made_on);
            c.outcome.push(x.outcome.clone());
            c.waiting_weeks.push(x.waiting_weeks);
            c.service_answer.push(x.service_answer.clone());
            c.started.push(x.started);
        }
        for g in &state.gaps {
            let c = &mut self.gaps;
            c.gap_id.push(g.gap_id);
            c.client_id.push(client);
            c.organisation_id.push(org);
            c.team_id.push(g.team_id);
            c.need.push(g.need.clone());
            // By code under rules that code areas, as typed otherwise.
            c.area.push(match &rules.area_rules {
                Some(areas) => areas.code(&g.area).0,
                None => g.area.clone(),
            });
            c.reason.push(g.reason.clone());
            c.recorded_on.push(g.recorded_on);
        }
    }

    /// Every table's rows, each table's in one binary `COPY` (rows go to PostgreSQL as they
    /// are stored, without arrays to build and unnest, and are inserted a page at a time).
    async fn write(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
        version: i32,
    ) -> Result<(), ProjectionError> {
        let states: Vec<(Uuid, Json<&ClientOutcomes>)> =
            self.state.iter().map(|s| (s.client_id, Json(*s))).collect();
        batch
            .copy_rows(
                tx,
                "COPY outcome_state (rules_version, client_id, state) FROM STDIN (FORMAT binary)",
                &[Type::INT4, Type::UUID, Type::JSON],
                states.len(),
                |i| vec![&version, &states[i].0, &states[i].1],
            )
            .await?;
        let rows: [&dyn Columns; 7] = [
            &self.referrals,
            &self.episodes,
            &self.scores,
            &self.connections,
            &self.gaps,
            &self.baselines,
            &self.activity,
        ];
        for (table, rows) in TABLES[1..].iter().zip(rows) {
            copy_figures(tx, batch, table, &version, rows).await?;
        }
        Ok(())
    }
}

/// Paired scores of a state by measure (for tests and snapshots).
pub fn pairs_by_measure(state: &ClientOutcomes, rules: &Rules) -> BTreeMap<String, ScorePair> {
    score_pairs(state, rules)
        .into_iter()
        .map(|p| (format!("{}#{}", p.measure, p.episode), p))
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use domain::*;

    use super::*;

    /// The tables a write compares and rewrites are the tables a reset empties, each once.
    #[test]
    fn the_tables_written_are_the_figure_tables() {
        let mut written = TABLES.to_vec();
        let mut figures = FIGURE_TABLES.to_vec();
        written.sort_unstable();
        figures.sort_unstable();
        written.dedup();
        assert_eq!(written, figures);
    }

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 9, 0, 0)
            .single()
            .expect("a time")
    }

    fn assessment(id: u128, timepoint: Timepoint, answers: Vec<i32>, day: u32) -> CaseEvent {
        CaseEvent::AssessmentRecorded(AssessmentRecorded {
            assessment_id: AssessmentId(Uuid::from_u128(id)),
            instrument: if answers.len() == 4 {
                Instrument::Ons4
            } else {
                Instrument::Swemwbs
            },
            instrument_version: 1,
            timepoint,
            mode: AdministrationMode::SelfCompleted,
            answers,
            licensor_score: None,
            administered_on: NaiveDate::from_ymd_opt(2026, 3, day).expect("a date"),
        })
    }

    /// Two episodes: the first with SWEMWBS and ONS4 pairs and a corrected follow-up, a
    /// connection on a waiting list and a gap; the second declined at first, then accepted.
    fn events() -> Vec<(u128, CaseEvent, DateTime<Utc>)> {
        let referral = |n| ReferralId(Uuid::from_u128(n));
        vec![
            (
                1,
                CaseEvent::ReferralReceived(ReferralReceived {
                    referral_id: referral(10),
                    source: ReferralSource::Gp,
                    referrer: Referrer {
                        staff_id: None,
                        name: None,
                        organisation: None,
                    },
                    reasons: vec![NeedDomain::MoneyBenefitsDebt, NeedDomain::Housing],
                    urgency: Urgency::Soon,
                    received_on: NaiveDate::from_ymd_opt(2026, 3, 1).expect("a date"),
                    note: None,
                }),
                at(1),
            ),
            (
                2,
                CaseEvent::ReferralAccepted(ReferralAccepted {
                    referral_id: referral(10),
                }),
                at(2),
            ),
            (
                3,
                CaseEvent::LinkWorkerAssigned(LinkWorkerAssigned {
                    link_worker_id: StaffId(Uuid::from_u128(0x5)),
                    team_id: TeamId(Uuid::from_u128(0x7)),
                }),
                at(2),
            ),
            (
                4,
                CaseEvent::ContactRecorded(ContactRecorded {
                    contact_id: ContactId(Uuid::from_u128(40)),
                    mode: ContactMode::Phone,
                    minutes: 15,
                    contacted_at: at(6),
                    note: None,
                }),
                at(6),
            ),
            (5, assessment(50, Timepoint::Baseline, vec![2; 7], 6), at(6)),
            (
                6,
                assessment(51, Timepoint::Baseline, vec![4, 5, 3, 8], 6),
                at(6),
            ),
            (
                7,
                CaseEvent::AppointmentNotAttended(AppointmentNotAttended {
                    appointment_id: AppointmentId(Uuid::from_u128(70)),
                }),
                at(9),
            ),
            (
                8,
                CaseEvent::OnwardConnectionMade(OnwardConnectionMade {
                    connection_id: ConnectionId(Uuid::from_u128(80)),
                    service_id: ServiceId(Uuid::from_u128(0x5e)),
                    need: NeedDomain::MoneyBenefitsDebt,
                    kind: ConnectionKind::WarmHandover,
                }),
                at(9),
            ),
            (
                9,
                CaseEvent::ConnectionOutcomeRecorded(ConnectionOutcomeRecorded {
                    connection_id: ConnectionId(Uuid::from_u128(80)),
                    outcome: ConnectionOutcome::WaitingList,
                    waiting_weeks: Some(8),
                }),
                at(12),
            ),
            (
                10,
                CaseEvent::ServiceGapRecorded(ServiceGapRecorded {
                    gap_id: GapId(Uuid::from_u128(100)),
                    need: NeedDomain::Housing,
                    area: "Wells".to_owned(),
                    reason: GapReason::WaitingListTooLong,
                    note: None,
                }),
                at(12),
            ),
            (
                11,
                assessment(52, Timepoint::FollowUp, vec![3; 7], 20),
                at(20),
            ),
            // Both ONS4 follow-ups are too soon after the baseline to pair (the rules want 28
            // days); the SWEMWBS one pairs only once its date is corrected.
            (
                12,
                assessment(53, Timepoint::FollowUp, vec![4, 7, 6, 3], 20),
                at(20),
            ),
            (
                13,
                assessment(54, Timepoint::FollowUp, vec![4, 7, 6, 3], 30),
                at(30),
            ),
            (
                14,
                CaseEvent::EntryCorrected(EntryCorrected {
                    corrects: EventId(Uuid::from_u128(11)),
                    corrected_fields: serde_json::json!({ "administered_on": "2026-04-10" })
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    reason: "dated wrongly".to_owned(),
                }),
                at(30),
            ),
            (
                15,
                CaseEvent::CaseClosed(CaseClosed {
                    reason: ClosureReason::ConnectedOnward,
                    note: None,
                }),
                at(31),
            ),
        ]
    }

    #[test]
    fn the_outcome_fold_and_its_pairs_under_each_rule_version() {
        let mut state = ClientOutcomes {
            client_id: Uuid::from_u128(1),
            organisation_id: Uuid::from_u128(0xa),
            ..ClientOutcomes::default()
        };
        for (id, event, occurred_at) in events() {
            apply_outcome_event(&mut state, &event, Uuid::from_u128(id), occurred_at);
        }
        insta::assert_yaml_snapshot!("outcome_state", state);
        let v1 = Rules::load(1).expect("rules");
        insta::assert_yaml_snapshot!("outcome_pairs_v1", pairs_by_measure(&state, &v1));
    }
}
