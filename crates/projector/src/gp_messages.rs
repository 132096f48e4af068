//! Messages back to the GP practice (issue #20, part 2): the transactional outbox's writer.
//!
//! `GpOutboxProjection` (`gp_outbox_v1`) folds each client's events with the pure
//! [`decide_gp_messages`] under a rule version of `projections/gp_messages/`, and writes each
//! message it decides as a row of `gp_outbox` in the same transaction as its checkpoint. The
//! log is gapless and read in its global order, and the runner moves the checkpoint with a
//! compare-and-set, so every event is looked at exactly once: a message is written once, with
//! the events it comes from already committed, and never for an event rolled back. A message's
//! id is its event's id, and rows are inserted with `ON CONFLICT (message_id) DO NOTHING` (a clash on a person's sequence number fails loudly), so a rebuild from
//! the start of the log decides the same messages and writes (and sends) none again.
//! Delivery is the dispatcher's (`app::gp_outbox`).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{CaseEvent, ConsentScope, Instrument, Timepoint};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::corrected::Fact;
use crate::rules::RulesError;
use crate::runner::{Batch, Projection, ProjectionError};

/// Every message rule version this build knows, in order.
const GP_MESSAGE_FILES: &[(u32, &str)] = &[
    (1, include_str!("../../../projections/gp_messages/v1.toml")),
    (2, include_str!("../../../projections/gp_messages/v2.toml")),
    (3, include_str!("../../../projections/gp_messages/v3.toml")),
];

/// Its name (and checkpoint key).
pub const GP_OUTBOX: &str = "gp_outbox_v1";

/// Where a referral names its practice.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PracticeRule {
    /// The referrer organisation's prefix before an ODS code (`"ODS "`).
    pub prefix: String,
    /// Whether only a referral a GP practice's own system sent names a practice to write to
    /// (from v3): a referrer or a member of staff typing "ODS <code>" names none.
    #[serde(default)]
    pub only_from_practice_systems: bool,
}

/// The consent that lets the full content go.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConsentRule {
    pub scope: ConsentScope,
}

/// One coded message.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CodedMessage {
    /// SNOMED CT concept id.
    pub code: String,
    /// Its term.
    pub display: String,
    /// What the full content adds, in words (no personal data).
    pub summary: String,
    /// For a decline, the decline reasons (codes) that are the person's choice.
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// One score sent at the end of an episode.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScoreRule {
    /// The outcome rules' measure that scores it.
    pub measure: String,
    /// Its SNOMED CT observable entity.
    pub code: String,
    pub display: String,
    /// The measure's instrument (from the outcome rules, when loaded).
    #[serde(skip)]
    pub instrument: Option<Instrument>,
}

/// The message at the end of an episode (v2 on).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EndedRule {
    /// The code system of `code` (a local one: no national code is published).
    pub system: String,
    pub code: String,
    pub display: String,
    pub summary: String,
    /// The outcome rule version whose measures score the assessments.
    pub outcome_rules: i32,
    pub scores: Vec<ScoreRule>,
    /// The timepoints that count as a follow-up (the outcome rules' pairing, when loaded).
    #[serde(skip)]
    pub follow_up: Vec<Timepoint>,
}

/// One version of the message rules.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GpMessageRules {
    pub version: u32,
    pub description: String,
    pub practice: PracticeRule,
    pub consent: ConsentRule,
    pub accepted: CodedMessage,
    pub declined: CodedMessage,
    /// The end of an episode, with its scores (absent in v1: no message).
    #[serde(default)]
    pub ended: Option<EndedRule>,
    /// How late a fact may be recorded and still be news to the practice (absent in v1: any).
    #[serde(default)]
    pub timeliness: Option<TimelinessRule>,
}

/// A fact recorded long after it happened (a previous system's history imported, an old
/// back-entry) is withheld (`late`): the practice would hear of it months or years on.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TimelinessRule {
    /// Days between when a fact happened and when it was recorded, at most.
    pub late_after_days: u32,
}

impl GpMessageRules {
    /// Whether `fact` was recorded too long after it happened to be sent, or is a previous
    /// system's record imported (that system told the practice, or it is history).
    fn late(&self, fact: &Fact) -> bool {
        self.timeliness.as_ref().is_some_and(|t| {
            fact.recorded_by == crate::corrected::RecordedBy::Import
                || fact.recorded_at - fact.occurred_at
                    > chrono::Duration::days(i64::from(t.late_after_days))
        })
    }
}

impl GpMessageRules {
    /// The rules of `version`.
    ///
    /// # Errors
    /// An unknown version or a file that does not parse.
    pub fn load(version: u32) -> Result<GpMessageRules, RulesError> {
        let (_, text) = GP_MESSAGE_FILES
            .iter()
            .find(|(v, _)| *v == version)
            .ok_or_else(|| RulesError::Invalid {
                version: i32::try_from(version).unwrap_or(i32::MAX),
                reason: "no GP message rules of this version in this build".to_owned(),
            })?;
        let invalid = |reason: String| RulesError::Invalid {
            version: i32::try_from(version).unwrap_or(i32::MAX),
            reason,
        };
        let mut rules: GpMessageRules = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if rules.version != version {
            return Err(invalid(format!("the file says version {}", rules.version)));
        }
        if let Some(ended) = &mut rules.ended {
            let outcomes = crate::rules::Rules::load(ended.outcome_rules)?;
            for score in &mut ended.scores {
                let measure = outcomes
                    .measures
                    .iter()
                    .find(|m| m.name == score.measure)
                    .ok_or_else(|| {
                        invalid(format!(
                            "no measure {} in outcome rules v{}",
                            score.measure, ended.outcome_rules
                        ))
                    })?;
                score.instrument = Some(measure.instrument);
            }
            ended.follow_up = [Timepoint::Review, Timepoint::FollowUp, Timepoint::Discharge]
                .into_iter()
                .filter(|t| outcomes.pairs_after(*t))
                .collect();
        }
        Ok(rules)
    }

    /// The newest version.
    ///
    /// # Errors
    /// A file that does not parse.
    pub fn latest() -> Result<GpMessageRules, RulesError> {
        GpMessageRules::load(GP_MESSAGE_FILES.last().map_or(1, |(v, _)| *v))
    }

    /// The practice a referral recorded by `recorded_by` names, if it names one as the rule
    /// says: its referrer organisation's ODS code, and (from v3) only when a practice's own
    /// system sent it.
    pub fn practice_named(
        &self,
        organisation: Option<&str>,
        recorded_by: crate::corrected::RecordedBy,
    ) -> Option<String> {
        if self.practice.only_from_practice_systems
            && recorded_by != crate::corrected::RecordedBy::PracticeSystem
        {
            return None;
        }
        self.practice_of(organisation)
    }

    /// The ODS code a referrer organisation names, if it names one as the rule says.
    pub fn practice_of(&self, organisation: Option<&str>) -> Option<String> {
        // A GP practice's ODS code is a letter and five digits (A81001); a trust's, a
        // pharmacy's or a council's is shaped otherwise, and is no GP to write to.
        let code = organisation?.strip_prefix(&self.practice.prefix)?.trim();
        domain::is_practice_code(code).then(|| code.to_owned())
    }
}

/// What the person said about sharing with their GP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpConsent {
    /// Nothing recorded: the codes alone go.
    #[default]
    NotRecorded,
    /// Consent to share: the coded entries and the summary go.
    Given,
    /// Consent withdrawn: the person objects, nothing goes.
    Objected,
}

/// What the outbox knows of one person, folded from their events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpMessageState {
    /// The practice of each referral that named one, by referral id (states folded by
    /// earlier builds also hold referrals that named none, with none).
    pub referrals: Vec<(Uuid, Option<String>)>,
    pub consent: GpConsent,
    /// The acceptance code went out (or was decided) in the episode now open.
    pub accepted_in_episode: bool,
    pub erased: bool,
    /// The last message's sequence number (0: none yet).
    pub seq: i32,
    /// The referral accepted at the start of the episode now open (v2 on).
    #[serde(default)]
    pub episode_referral: Option<Uuid>,
    /// The episode's first baseline of each instrument scored at its end: its assessment id.
    #[serde(default)]
    pub baselines: Vec<(Instrument, Uuid)>,
    /// The episode's last follow-up of each instrument scored at its end.
    #[serde(default)]
    pub follow_ups: Vec<(Instrument, Uuid)>,
    /// The episode's onward connections: need, kind, and what came of each so far.
    #[serde(default)]
    pub connections: Vec<EpisodeConnection>,
}

/// An onward connection of the episode, as the message at its end says it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpisodeConnection {
    pub connection_id: Uuid,
    /// The event that made it (a correction names it); none in states folded before.
    #[serde(default)]
    pub event_id: Option<Uuid>,
    pub need: domain::NeedDomain,
    pub kind: domain::ConnectionKind,
    pub outcome: Option<domain::ConnectionOutcome>,
    /// The event that recorded the outcome last (a correction names it); none in states
    /// folded before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_event_id: Option<Uuid>,
}

impl GpMessageState {
    fn practice(&self, referral: Uuid) -> Option<String> {
        self.referrals
            .iter()
            .find(|(id, _)| *id == referral)
            .and_then(|(_, practice)| practice.clone())
    }
}

/// How much of a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// The SNOMED code only.
    Coded,
    /// The code and the summary.
    Full,
}

impl Content {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Content::Coded => "coded",
            Content::Full => "full",
        }
    }
}

/// Why a decided message is not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Withheld {
    /// The referral named no GP practice (by ODS code).
    NoPractice,
    /// The person withdrew consent to share with the GP.
    Objected,
    /// Recorded too long after it happened (see [`TimelinessRule`]).
    Late,
}

impl Withheld {
    /// The stored reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Withheld::NoPractice => "no_practice",
            Withheld::Objected => "objected",
            Withheld::Late => "late",
        }
    }
}

/// A message an event calls for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GpMessage {
    /// The event it comes from (and so its id).
    pub message_id: Uuid,
    /// The person's order.
    pub seq: i32,
    /// `referral_accepted`, `referral_declined` or `episode_ended`.
    pub kind: &'static str,
    /// The code's system when it is not SNOMED CT.
    pub code_system: Option<String>,
    pub code: String,
    pub display: String,
    pub practice_ods: Option<String>,
    /// How much goes; none when withheld.
    pub content: Option<Content>,
    pub summary: Option<String>,
    pub withheld: Option<Withheld>,
    pub rules_version: u32,
    pub occurred_at: DateTime<Utc>,
    /// The assessments (their ids) whose scores go with it, scored when it is sent.
    pub observations: Vec<Uuid>,
}

/// Folds one event of a person's record: the new state, and the message it calls for, if any.
/// Pure: the same events under the same rules always decide the same messages.
pub fn decide_gp_messages(
    state: &mut GpMessageState,
    fact: &Fact,
    rules: &GpMessageRules,
) -> Option<GpMessage> {
    let coded = |state: &mut GpMessageState,
                 kind: &'static str,
                 message: &CodedMessage,
                 referral: Uuid|
     -> GpMessage {
        state.seq += 1;
        let practice = state.practice(referral);
        let (content, withheld) = match (&practice, state.consent) {
            (None, _) => (None, Some(Withheld::NoPractice)),
            (Some(_), GpConsent::Objected) => (None, Some(Withheld::Objected)),
            (Some(_), _) if rules.late(fact) => (None, Some(Withheld::Late)),
            (Some(_), GpConsent::NotRecorded) => (Some(Content::Coded), None),
            (Some(_), GpConsent::Given) => (Some(Content::Full), None),
        };
        GpMessage {
            message_id: fact.event_id,
            seq: state.seq,
            kind,
            code_system: None,
            code: message.code.clone(),
            display: message.display.clone(),
            practice_ods: practice,
            content,
            summary: (content == Some(Content::Full)).then(|| message.summary.clone()),
            withheld,
            rules_version: rules.version,
            occurred_at: fact.occurred_at,
            observations: Vec::new(),
        }
    };
    if state.erased {
        return None;
    }
    match &fact.event {
        CaseEvent::ReferralReceived(e) => {
            // Only a referral that names a practice is kept: one that names none has nobody to
            // write to, and is found in no list as surely as it would be found with none.
            if let Some(practice) =
                rules.practice_named(e.referrer.organisation.as_deref(), fact.recorded_by)
            {
                state.referrals.push((e.referral_id.0, Some(practice)));
            }
            None
        }
        CaseEvent::ConsentRecorded(e) if e.scope == rules.consent.scope => {
            state.consent = GpConsent::Given;
            None
        }
        CaseEvent::ConsentWithdrawn(e) if e.scope == rules.consent.scope => {
            state.consent = GpConsent::Objected;
            None
        }
        CaseEvent::ReferralAccepted(e) => {
            if state.accepted_in_episode {
                return None;
            }
            state.accepted_in_episode = true;
            state.episode_referral = Some(e.referral_id.0);
            state.baselines.clear();
            state.follow_ups.clear();
            state.connections.clear();
            Some(coded(
                state,
                "referral_accepted",
                &rules.accepted,
                e.referral_id.0,
            ))
        }
        CaseEvent::ReferralDeclined(e) => {
            let reason = domain::code(&e.reason);
            rules
                .declined
                .reasons
                .contains(&reason)
                .then(|| coded(state, "referral_declined", &rules.declined, e.referral_id.0))
        }
        CaseEvent::OnwardConnectionMade(e) => {
            if rules.ended.is_some() && state.accepted_in_episode {
                state.connections.push(EpisodeConnection {
                    connection_id: e.connection_id.0,
                    event_id: Some(fact.event_id),
                    need: e.need,
                    kind: e.kind,
                    outcome: None,
                    outcome_event_id: None,
                });
            }
            None
        }
        // A connection's need or kind, or what came of it, corrected: the message at the end
        // says it as corrected.
        CaseEvent::EntryCorrected(e) => {
            let field = |name: &str| e.corrected_fields.get(name).cloned();
            let corrects = Some(e.corrects.0);
            if let Some(connection) = state
                .connections
                .iter_mut()
                .find(|c| c.event_id == corrects)
            {
                if let Some(Ok(need)) = field("need").map(serde_json::from_value) {
                    connection.need = need;
                }
                if let Some(Ok(kind)) = field("kind").map(serde_json::from_value) {
                    connection.kind = kind;
                }
            } else if let Some(connection) = state
                .connections
                .iter_mut()
                .find(|c| c.outcome_event_id == corrects)
                && let Some(Ok(outcome)) = field("outcome").map(serde_json::from_value)
            {
                connection.outcome = Some(outcome);
            }
            None
        }
        CaseEvent::ConnectionOutcomeRecorded(e) => {
            if let Some(connection) = state
                .connections
                .iter_mut()
                .find(|c| c.connection_id == e.connection_id.0)
            {
                connection.outcome = Some(e.outcome);
                connection.outcome_event_id = Some(fact.event_id);
            }
            None
        }
        CaseEvent::AssessmentRecorded(e) => {
            let ended = rules.ended.as_ref()?;
            let scored = ended
                .scores
                .iter()
                .any(|s| s.instrument == Some(e.instrument));
            if !state.accepted_in_episode || !scored {
                return None;
            }
            if e.timepoint == Timepoint::Baseline {
                if !state.baselines.iter().any(|(i, _)| *i == e.instrument) {
                    state.baselines.push((e.instrument, e.assessment_id.0));
                }
            } else if ended.follow_up.contains(&e.timepoint) {
                state.follow_ups.retain(|(i, _)| *i != e.instrument);
                state.follow_ups.push((e.instrument, e.assessment_id.0));
            }
            None
        }
        CaseEvent::CaseClosed(e) => {
            let message = match (&rules.ended, state.accepted_in_episode) {
                (Some(ended), true) => ended_message(state, fact, rules, ended, e),
                _ => None,
            };
            state.accepted_in_episode = false;
            state.episode_referral = None;
            state.baselines.clear();
            state.follow_ups.clear();
            state.connections.clear();
            message
        }
        CaseEvent::ClientErased(_) => {
            // Nothing more goes, and nothing of the person is kept beyond their messages'
            // count: their practices and consent go with them.
            *state = GpMessageState {
                erased: true,
                seq: state.seq,
                ..GpMessageState::default()
            };
            None
        }
        _ => None,
    }
}

/// The end of an episode: only for someone who consented to share with their GP (its content
/// is their scores and words; there is no national code to send alone), withheld if they have
/// objected since or the episode's referral named no practice.
fn ended_message(
    state: &mut GpMessageState,
    fact: &Fact,
    rules: &GpMessageRules,
    ended: &EndedRule,
    closed: &domain::CaseClosed,
) -> Option<GpMessage> {
    let practice = state.episode_referral.and_then(|r| state.practice(r));
    let (content, withheld) = match (&practice, state.consent) {
        (_, GpConsent::NotRecorded) => return None,
        (None, _) => (None, Some(Withheld::NoPractice)),
        (Some(_), GpConsent::Objected) => (None, Some(Withheld::Objected)),
        (Some(_), GpConsent::Given) if rules.late(fact) => (None, Some(Withheld::Late)),
        (Some(_), GpConsent::Given) => (Some(Content::Full), None),
    };
    state.seq += 1;
    let observations = state
        .baselines
        .iter()
        .chain(&state.follow_ups)
        .map(|(_, id)| *id)
        .collect();
    Some(GpMessage {
        message_id: fact.event_id,
        seq: state.seq,
        kind: "episode_ended",
        code_system: Some(ended.system.clone()),
        code: ended.code.clone(),
        display: ended.display.clone(),
        practice_ods: practice,
        content,
        summary: (content == Some(Content::Full)).then(|| ended_summary(state, ended, closed)),
        withheld,
        rules_version: rules.version,
        occurred_at: fact.occurred_at,
        observations,
    })
}

/// The words of the message at the end of an episode: the rule's summary, the reason for
/// ending, and each onward connection by need, kind and what came of it (no service names, no
/// notes: only codes' words).
fn ended_summary(state: &GpMessageState, ended: &EndedRule, closed: &domain::CaseClosed) -> String {
    let mut summary = format!(
        "{} Reason for ending: {}.",
        ended.summary,
        closed.reason.label()
    );
    if !state.connections.is_empty() {
        let connections: Vec<String> = state
            .connections
            .iter()
            .map(|c| {
                let outcome = c.outcome.map_or("no outcome recorded", |o| o.label());
                format!("{} ({}): {outcome}", c.need.label(), c.kind.label())
            })
            .collect();
        summary.push_str(&format!(" Onward connections: {}.", connections.join("; ")));
    }
    summary
}

/// Writes the messages of the log into `gp_outbox`.
#[derive(Clone, Debug)]
pub struct GpOutboxProjection {
    rules: GpMessageRules,
}

impl GpOutboxProjection {
    /// The projection under the newest message rules.
    ///
    /// # Errors
    /// A rule file that does not parse.
    pub fn new() -> Result<GpOutboxProjection, RulesError> {
        Ok(GpOutboxProjection {
            rules: GpMessageRules::latest()?,
        })
    }

    /// The projection under the message rules of `version`, as a build that had them newest
    /// ran it (what was decided before an upgrade).
    ///
    /// # Errors
    /// An unknown version or a rule file that does not parse.
    pub fn under(version: u32) -> Result<GpOutboxProjection, RulesError> {
        Ok(GpOutboxProjection {
            rules: GpMessageRules::load(version)?,
        })
    }
}

#[async_trait]
impl Projection for GpOutboxProjection {
    fn name(&self) -> &str {
        GP_OUTBOX
    }

    /// Forgets the fold's state only: the messages stay (they may have been sent), and a
    /// rebuild decides the same ones again under the same ids, which are not written twice.
    async fn reset(&self, tx: &tokio_postgres::Transaction<'_>) -> Result<(), ProjectionError> {
        tx.batch_execute("DELETE FROM gp_outbox_state").await?;
        Ok(())
    }

    async fn apply_decoded(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
    ) -> Result<(), ProjectionError> {
        self.write(tx, batch).await
    }
}

impl GpOutboxProjection {
    /// A batch in at most four round trips however many people it holds: the states of those
    /// whose record began before it read at once (no one else can have one), their messages
    /// decided in memory and inserted side by side (pipelined on the connection), the changed
    /// states of people who had one updated in one statement and the first states of the rest
    /// inserted in another. A person with nothing to remember (a referral naming no practice,
    /// and nothing since) gets no state row.
    async fn write(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
    ) -> Result<(), ProjectionError> {
        let clients = batch.decoded.clients(false)?;
        if clients.is_empty() {
            return Ok(());
        }
        let continuing = batch.decoded.continuing_client_ids();
        let mut stored: HashMap<Uuid, GpMessageState> = HashMap::with_capacity(continuing.len());
        if !continuing.is_empty() {
            let select = batch
                .prepare(
                    tx,
                    "SELECT client_id, state FROM gp_outbox_state WHERE client_id = ANY($1)",
                )
                .await?;
            for row in tx.query(&select, &[&continuing]).await? {
                let state = serde_json::from_value(row.get(1))
                    .map_err(|e| ProjectionError::Corrupt(format!("gp_outbox_state: {e}")))?;
                stored.insert(row.get(0), state);
            }
        }
        let mut messages = Vec::new();
        let (mut changed, mut first) = (States::default(), States::default());
        for client in &clients {
            let had = stored.remove(&client.client_id);
            let mut state = had.clone().unwrap_or_default();
            for fact in client.facts {
                if let Some(message) = decide_gp_messages(&mut state, fact, &self.rules) {
                    messages.push((client.client_id, fact.organisation_id, message));
                }
            }
            match had {
                Some(before) if state != before => changed.push(client.client_id, &state)?,
                None if state != GpMessageState::default() => {
                    first.push(client.client_id, &state)?;
                }
                _ => {}
            }
        }
        if !messages.is_empty() {
            let statement = batch.prepare(tx, INSERT_MESSAGE).await?;
            let inserts = messages
                .iter()
                .map(|(client_id, organisation_id, message)| {
                    insert(tx, &statement, *client_id, *organisation_id, message)
                });
            futures_util::future::try_join_all(inserts).await?;
        }
        for (states, sql) in [
            (
                &changed,
                "UPDATE gp_outbox_state AS s SET state = c.state \
                 FROM unnest($1::uuid[], $2::jsonb[]) AS c(client_id, state) \
                 WHERE s.client_id = c.client_id",
            ),
            (
                &first,
                "INSERT INTO gp_outbox_state (client_id, state) \
                 SELECT * FROM unnest($1::uuid[], $2::jsonb[])",
            ),
        ] {
            if !states.ids.is_empty() {
                let statement = batch.prepare(tx, sql).await?;
                tx.execute(&statement, &[&states.ids, &states.states])
                    .await?;
            }
        }
        Ok(())
    }
}

/// States to write, column by column.
#[derive(Default)]
struct States {
    ids: Vec<Uuid>,
    states: Vec<serde_json::Value>,
}

impl States {
    fn push(&mut self, client_id: Uuid, state: &GpMessageState) -> Result<(), ProjectionError> {
        let json = serde_json::to_value(state)
            .map_err(|e| ProjectionError::Corrupt(format!("gp_outbox_state: {e}")))?;
        self.ids.push(client_id);
        self.states.push(json);
        Ok(())
    }
}

const INSERT_MESSAGE: &str = "INSERT INTO gp_outbox (message_id, organisation_id, client_id, seq, \
     kind, code, display, content, summary, practice_ods, rules_version, occurred_at, status, \
     withheld_reason, next_attempt_at, code_system, observations) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $12, $15, $16) \
     ON CONFLICT (message_id) DO NOTHING";

async fn insert(
    tx: &tokio_postgres::Transaction<'_>,
    statement: &tokio_postgres::Statement,
    client_id: Uuid,
    organisation_id: Uuid,
    message: &GpMessage,
) -> Result<(), ProjectionError> {
    let status = if message.withheld.is_some() {
        "withheld"
    } else {
        "pending"
    };
    let rules_version = i32::try_from(message.rules_version).unwrap_or(i32::MAX);
    tx.execute(
        statement,
        &[
            &message.message_id,
            &organisation_id,
            &client_id,
            &message.seq,
            &message.kind,
            &message.code,
            &message.display,
            &message.content.map(Content::as_str),
            &message.summary,
            &message.practice_ods,
            &rules_version,
            &message.occurred_at,
            &status,
            &message.withheld.map(Withheld::as_str),
            &message.code_system,
            &message.observations,
        ],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{
        ConsentRecorded, ConsentWithdrawn, DeclineReason, ReferralAccepted, ReferralDeclined,
    };

    fn rules() -> GpMessageRules {
        GpMessageRules::load(1).expect("rules v1")
    }

    fn fact(n: u128, event: CaseEvent) -> Fact {
        Fact {
            event_id: Uuid::from_u128(n),
            stream_version: i64::try_from(n).unwrap_or(0),
            organisation_id: Uuid::nil(),
            occurred_at: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("time"),
            recorded_at: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("time"),
            recorded_by: crate::corrected::RecordedBy::Other,
            event,
        }
    }

    fn referred(n: u128, organisation: Option<&str>) -> CaseEvent {
        let mut received = domain::testing::referral(domain::ReferralId(Uuid::from_u128(n)));
        received.referrer.organisation = organisation.map(str::to_owned);
        CaseEvent::ReferralReceived(received)
    }

    fn accepted(n: u128) -> CaseEvent {
        CaseEvent::ReferralAccepted(ReferralAccepted {
            referral_id: domain::ReferralId(Uuid::from_u128(n)),
        })
    }

    fn declined(n: u128, reason: DeclineReason) -> CaseEvent {
        CaseEvent::ReferralDeclined(ReferralDeclined {
            referral_id: domain::ReferralId(Uuid::from_u128(n)),
            reason,
            note: None,
        })
    }

    fn consent(given: bool) -> CaseEvent {
        if given {
            CaseEvent::ConsentRecorded(ConsentRecorded {
                scope: ConsentScope::ShareWithGp,
                services: vec![],
                channel: None,
            })
        } else {
            CaseEvent::ConsentWithdrawn(ConsentWithdrawn {
                scope: ConsentScope::ShareWithGp,
            })
        }
    }

    /// A message as the table shows it: kind, code, content, why withheld, sequence.
    type Seen = (
        &'static str,
        String,
        Option<&'static str>,
        Option<&'static str>,
        i32,
    );

    /// Folds `events` and gives each message as (kind, code, content, withheld, seq).
    fn run(events: Vec<CaseEvent>) -> Vec<Seen> {
        let rules = rules();
        let mut state = GpMessageState::default();
        events
            .into_iter()
            .enumerate()
            .filter_map(|(i, e)| decide_gp_messages(&mut state, &fact(1000 + i as u128, e), &rules))
            .map(|m| {
                (
                    m.kind,
                    m.code,
                    m.content.map(Content::as_str),
                    m.withheld.map(Withheld::as_str),
                    m.seq,
                )
            })
            .collect()
    }

    #[test]
    fn messages_by_consent_practice_and_reason() {
        let accept = "871731000000106".to_owned();
        let decline = "871711000000103".to_owned();
        let table: Vec<(&str, Vec<CaseEvent>, Vec<Seen>)> = vec![
            (
                "accepted, no consent recorded: the code alone",
                vec![referred(1, Some("ODS A81001")), accepted(1)],
                vec![("referral_accepted", accept.clone(), Some("coded"), None, 1)],
            ),
            (
                "accepted with consent to share: code and summary",
                vec![consent(true), referred(1, Some("ODS A81001")), accepted(1)],
                vec![("referral_accepted", accept.clone(), Some("full"), None, 1)],
            ),
            (
                "consent withdrawn: the person objected, withheld",
                vec![
                    consent(true),
                    consent(false),
                    referred(1, Some("ODS A81001")),
                    accepted(1),
                ],
                vec![(
                    "referral_accepted",
                    accept.clone(),
                    None,
                    Some("objected"),
                    1,
                )],
            ),
            (
                "no practice named by ODS code: withheld, said so",
                vec![referred(1, Some("Frome Medical Practice")), accepted(1)],
                vec![(
                    "referral_accepted",
                    accept.clone(),
                    None,
                    Some("no_practice"),
                    1,
                )],
            ),
            (
                "the person declined: the declined code",
                vec![
                    referred(1, Some("ODS A81001")),
                    declined(1, DeclineReason::ClientDeclined),
                ],
                vec![("referral_declined", decline.clone(), Some("coded"), None, 1)],
            ),
            (
                "declined as not eligible: not the person's choice, no message",
                vec![
                    referred(1, Some("ODS A81001")),
                    declined(1, DeclineReason::NotEligible),
                ],
                vec![],
            ),
            (
                "a second episode after closure is coded again, in order",
                vec![
                    referred(1, Some("ODS A81001")),
                    accepted(1),
                    CaseEvent::CaseClosed(domain::CaseClosed {
                        reason: domain::ClosureReason::GoalsMet,
                        note: None,
                    }),
                    referred(2, Some("ODS B82002")),
                    accepted(2),
                ],
                vec![
                    ("referral_accepted", accept.clone(), Some("coded"), None, 1),
                    ("referral_accepted", accept.clone(), Some("coded"), None, 2),
                ],
            ),
            (
                "erased: nothing more",
                vec![
                    referred(1, Some("ODS A81001")),
                    CaseEvent::ClientErased(domain::ClientErased {
                        reason: "request".to_owned(),
                    }),
                    accepted(1),
                ],
                vec![],
            ),
        ];
        for (name, events, expected) in table {
            assert_eq!(run(events), expected, "{name}");
        }
    }

    #[test]
    fn the_end_of_an_episode_carries_its_first_baseline_and_last_follow_up_with_consent() {
        let rules = GpMessageRules::load(2).expect("rules v2");
        let scored = |n: u128, instrument: Instrument, timepoint: Timepoint| {
            CaseEvent::AssessmentRecorded(domain::testing::self_completed(
                domain::AssessmentId(Uuid::from_u128(n)),
                instrument,
                timepoint,
                vec![2; 7],
                chrono::NaiveDate::from_ymd_opt(2026, 3, 5).expect("a day"),
            ))
        };
        let closed = || {
            CaseEvent::CaseClosed(domain::CaseClosed {
                reason: domain::ClosureReason::GoalsMet,
                note: None,
            })
        };
        let consent = CaseEvent::ConsentRecorded(ConsentRecorded {
            scope: ConsentScope::ShareWithGp,
            services: vec![],
            channel: None,
        });
        let decide = |events: Vec<CaseEvent>| {
            let mut state = GpMessageState::default();
            events
                .into_iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    decide_gp_messages(&mut state, &fact(3000 + i as u128, e), &rules)
                })
                .collect::<Vec<_>>()
        };
        let messages = decide(vec![
            referred(1, Some("ODS A81001")),
            consent.clone(),
            scored(10, Instrument::Swemwbs, Timepoint::Baseline),
            accepted(1),
            scored(11, Instrument::Swemwbs, Timepoint::Baseline),
            scored(12, Instrument::Swemwbs, Timepoint::Baseline),
            scored(13, Instrument::Ons4, Timepoint::Baseline),
            scored(14, Instrument::Swemwbs, Timepoint::FollowUp),
            scored(15, Instrument::Swemwbs, Timepoint::Review),
            scored(16, Instrument::Swemwbs, Timepoint::Discharge),
            CaseEvent::OnwardConnectionMade(domain::OnwardConnectionMade {
                connection_id: domain::ConnectionId(Uuid::from_u128(20)),
                service_id: domain::ServiceId(Uuid::from_u128(21)),
                need: domain::NeedDomain::PhysicalActivity,
                kind: domain::ConnectionKind::Referred,
            }),
            CaseEvent::OnwardConnectionMade(domain::OnwardConnectionMade {
                connection_id: domain::ConnectionId(Uuid::from_u128(22)),
                service_id: domain::ServiceId(Uuid::from_u128(23)),
                need: domain::NeedDomain::LonelinessIsolation,
                kind: domain::ConnectionKind::Signposted,
            }),
            CaseEvent::ConnectionOutcomeRecorded(domain::ConnectionOutcomeRecorded {
                connection_id: domain::ConnectionId(Uuid::from_u128(20)),
                outcome: domain::ConnectionOutcome::Attended,
                waiting_weeks: None,
            }),
            // The signposting (the twelfth fact) was a warm handover: said as corrected.
            CaseEvent::EntryCorrected(domain::EntryCorrected {
                corrects: domain::EventId(Uuid::from_u128(3011)),
                corrected_fields: serde_json::json!({ "kind": "warm_handover" })
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                reason: "recorded as the wrong kind".to_owned(),
            }),
            // What came of the referral (the thirteenth fact) was not attending after all.
            CaseEvent::EntryCorrected(domain::EntryCorrected {
                corrects: domain::EventId(Uuid::from_u128(3012)),
                corrected_fields: serde_json::json!({ "outcome": "not_taken_up" })
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                reason: "recorded the wrong outcome".to_owned(),
            }),
            closed(),
        ]);
        let ended = messages.last().expect("a message at the end");
        assert_eq!(ended.kind, "episode_ended");
        assert_eq!(ended.seq, 2);
        assert_eq!(ended.content, Some(Content::Full));
        assert_eq!(ended.practice_ods.as_deref(), Some("A81001"));
        // Before the episode's acceptance: not its baseline; a second baseline: not the first;
        // ONS4 is not sent; a review is not a follow-up; the discharge is the last follow-up.
        assert_eq!(
            ended.observations,
            [Uuid::from_u128(11), Uuid::from_u128(16)]
        );
        assert_eq!(
            ended.summary.as_deref(),
            Some(
                "The person's episode of social prescribing support has ended. Reason for \
                 ending: goals met. Onward connections: physical activity (referred): not taken \
                 up; \
                 loneliness or isolation (warm handover): no outcome recorded."
            )
        );
        // No consent: nothing at the end. Under v1: nothing at the end either.
        let without = decide(vec![referred(1, Some("ODS A81001")), accepted(1), closed()]);
        assert_eq!(without.len(), 1);
        let mut state = GpMessageState::default();
        let v1 = GpMessageRules::load(1).expect("v1");
        let under_v1: Vec<_> = [
            referred(1, Some("ODS A81001")),
            consent,
            accepted(1),
            closed(),
        ]
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| decide_gp_messages(&mut state, &fact(4000 + i as u128, e), &v1))
        .collect();
        assert_eq!(under_v1.len(), 1);
    }

    #[test]
    fn a_fact_recorded_long_after_it_happened_is_withheld_as_late() {
        let rules = GpMessageRules::load(2).expect("rules v2");
        let mut state = GpMessageState::default();
        let mut late = |n: u128, event: CaseEvent, days_late: i64| {
            let mut fact = fact(n, event);
            fact.recorded_at = fact.occurred_at + chrono::Duration::days(days_late);
            decide_gp_messages(&mut state, &fact, &rules)
        };
        assert_eq!(late(1, referred(1, Some("ODS A81001")), 400), None);
        // A history import: accepted two years ago, recorded today.
        let imported = late(2, accepted(1), 730).expect("a message decided");
        assert_eq!(imported.withheld, Some(Withheld::Late));
        assert_eq!(imported.content, None);
        // Entered a few days late is still news.
        let mut state = GpMessageState::default();
        let mut fresh = |n: u128, event: CaseEvent| {
            let mut fact = fact(n, event);
            fact.recorded_at = fact.occurred_at + chrono::Duration::days(5);
            decide_gp_messages(&mut state, &fact, &rules)
        };
        fresh(3, referred(2, Some("ODS A81001")));
        let sent = fresh(4, accepted(2)).expect("a message");
        assert_eq!(sent.withheld, None);
        assert_eq!(sent.content, Some(Content::Coded));
        // Imported yesterday's acceptance: the previous system's, withheld whatever its age.
        let mut state = GpMessageState::default();
        let mut imported = |n: u128, event: CaseEvent| {
            let mut fact = fact(n, event);
            fact.recorded_by = crate::corrected::RecordedBy::Import;
            decide_gp_messages(&mut state, &fact, &rules)
        };
        imported(5, referred(3, Some("ODS A81001")));
        let history = imported(6, accepted(3)).expect("a message decided");
        assert_eq!(history.withheld, Some(Withheld::Late));
    }

    #[test]
    fn an_erased_person_s_state_keeps_only_their_message_count() {
        let rules = rules();
        let mut state = GpMessageState::default();
        let events = [
            referred(1, Some("ODS A81001")),
            accepted(1),
            CaseEvent::ClientErased(domain::ClientErased {
                reason: "request".to_owned(),
            }),
        ];
        for (i, event) in events.into_iter().enumerate() {
            decide_gp_messages(&mut state, &fact(2000 + i as u128, event), &rules);
        }
        assert_eq!(
            state,
            GpMessageState {
                erased: true,
                seq: 1,
                ..GpMessageState::default()
            }
        );
    }

    #[test]
    fn practice_codes_are_read_only_as_the_rule_says() {
        let rules = rules();
        assert_eq!(
            rules.practice_of(Some("ODS A81001")).as_deref(),
            Some("A81001")
        );
        assert_eq!(rules.practice_of(Some("ODS a81001")), None);
        assert_eq!(rules.practice_of(Some("A81001")), None);
        assert_eq!(rules.practice_of(Some("ODS A8/../x")), None);
        // A trust (RBA), a pharmacy (FA123) or a PCN (U12345) is not a practice.
        assert_eq!(rules.practice_of(Some("ODS RBA")), None);
        assert_eq!(rules.practice_of(Some("ODS FA123")), None);
        assert_eq!(rules.practice_of(Some("ODS A810011")), None);
        assert_eq!(rules.practice_of(None), None);
    }
}
