//! Messages back to the GP practice: delivering the transactional outbox (issue #20, part 2).
//!
//! The outbox projection (`projector::gp_messages`) writes each message in the same
//! transaction as its checkpoint; this module sends them. The [`Dispatcher`] leases due
//! messages with `FOR UPDATE SKIP LOCKED` (a lease, not a held transaction, so that a killed
//! dispatcher's messages are sent again once the lease runs out), only the earliest message of
//! a person not yet delivered (in order per person: message n+1 waits for n, and a
//! dead-lettered n holds the person's later messages until an administrator replays it), posts
//! each as a FHIR R4 `Communication` to the practice's endpoint (configured by an administrator)
//! with its id as `Idempotency-Key`, so that a receiver sees each message once however often it
//! is sent, and writes every attempt to `gp_outbox_attempts`. A failure waits an exponential
//! backoff with a cap; after the last attempt the message is dead-lettered.
//!
//! `app` holds no HTTP client: the caller hands the dispatcher a [`Transport`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::CaseEvent;
use eventstore::EventStore;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::outbox::{self, Attempted, Dispatch, Listed, Outbox, OutboxAdmin, OutboxStatus};
use crate::{AppError, Clock, policy};

/// The SNOMED CT system.
pub const SNOMED: &str = "http://snomed.info/sct";
/// The NHS number's identifier system.
pub const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// The ODS organisation code's identifier system.
pub const ODS_CODE: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// What a receiver answered: its HTTP status, or why there was no answer.
pub type Delivery = Result<u16, String>;

/// A post in flight.
pub type PostFuture<'a> = BoxFuture<'a, Delivery>;

/// Posts a message: `url`, headers, body. Implemented over an HTTP client by the binary.
pub trait Transport: Send + Sync {
    fn post<'a>(
        &'a self,
        url: &'a str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> PostFuture<'a>;
}

/// How the dispatcher paces itself.
#[derive(Clone, Copy, Debug)]
pub struct DispatchSettings {
    /// How long a leased message is the dispatcher's: longer than the transport's timeout.
    pub lease: Duration,
    /// The first wait after a failure; each further failure doubles it...
    pub backoff: Duration,
    /// ...up to this.
    pub backoff_cap: Duration,
    /// Attempts before a message is dead-lettered.
    pub max_attempts: i32,
    /// Messages leased at a time.
    pub batch: i64,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            lease: Duration::from_secs(60),
            backoff: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(3600),
            max_attempts: 12,
            // A batch is sent in turn, each up to the transport's 10 s: five of them end well
            // inside the lease, so no other dispatcher takes one while it is being sent.
            batch: 5,
        }
    }
}

impl DispatchSettings {
    /// The wait after the `attempts`-th failure: `backoff * 2^(attempts-1)`, at most the cap.
    pub fn backoff_after(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.backoff
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.backoff_cap)
            .min(self.backoff_cap)
    }

    /// When the next attempt is due, at `now` after the `attempts`-th failure.
    pub fn next_attempt_at(&self, now: DateTime<Utc>, attempts: i32) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.backoff_after(attempts)).unwrap_or_default()
    }
}

/// A leased message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxMessage {
    pub message_id: Uuid,
    pub organisation_id: Uuid,
    pub client_id: Uuid,
    pub seq: i32,
    pub kind: String,
    pub code: String,
    pub display: String,
    pub content: Option<String>,
    pub summary: Option<String>,
    pub practice_ods: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub attempts: i32,
    /// The code's system when it is not SNOMED CT.
    pub code_system: Option<String>,
    /// The assessments (their ids) whose scores go with it.
    pub observations: Vec<Uuid>,
    /// The message rule version it was decided under.
    pub rules_version: i32,
}

/// A score sent with a message, as an `Observation`: scored from the log as it is sent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Score {
    /// The assessment.
    pub assessment_id: Uuid,
    /// The SNOMED CT observable entity.
    pub code: String,
    pub display: String,
    pub value: f64,
    pub on: chrono::NaiveDate,
    /// `baseline`, `follow-up`...
    pub timepoint: &'static str,
}

/// What one dispatch pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    pub delivered: u32,
    pub failed: u32,
    pub dead_lettered: u32,
    pub withheld: u32,
    /// Reminders held, nothing being configured to send them by (no attempt counted).
    pub held: u32,
}

/// The message as FHIR R4: a `Communication` (a notification) about the person (by NHS number)
/// to the practice (by ODS code), sent at `sent`, its reason the code (SNOMED CT unless the
/// message names another system), and with full content the summary as its payload and each
/// score as a contained `Observation` (SNOMED CT observable, its day, its value) referenced from
/// the payload. Nothing else of the record goes.
pub fn communication(
    message: &OutboxMessage,
    nhs_number: &str,
    sent: DateTime<Utc>,
    scores: &[Score],
) -> Value {
    let mut resource = json!({
        "resourceType": "Communication",
        "id": message.message_id,
        "identifier": [{ "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", message.message_id) }],
        "status": "completed",
        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/communication-category", "code": "notification", "display": "Notification" }] }],
        "subject": { "identifier": { "system": NHS_NUMBER, "value": nhs_number } },
        "recipient": [{ "identifier": { "system": ODS_CODE, "value": message.practice_ods } }],
        "sent": sent.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "reasonCode": [{ "coding": [{ "system": message.code_system.as_deref().unwrap_or(SNOMED), "code": message.code, "display": message.display }] }],
    });
    if let (Some("full"), Some(summary)) = (message.content.as_deref(), &message.summary) {
        let mut payload = vec![json!({ "contentString": summary })];
        let mut contained = Vec::new();
        for (n, score) in scores.iter().enumerate() {
            let id = format!("score-{}", n + 1);
            contained.push(json!({
                "resourceType": "Observation",
                "id": id,
                "identifier": [{ "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", score.assessment_id) }],
                "status": "final",
                "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey", "display": "Survey" }] }],
                "code": { "coding": [{ "system": SNOMED, "code": score.code, "display": score.display }] },
                "subject": { "identifier": { "system": NHS_NUMBER, "value": nhs_number } },
                "effectiveDateTime": score.on.to_string(),
                "valueQuantity": { "value": score.value, "unit": "score", "system": "http://unitsofmeasure.org", "code": "{score}" },
                "note": [{ "text": score.timepoint }],
            }));
            payload.push(json!({ "contentReference": { "reference": format!("#{id}") } }));
        }
        if !contained.is_empty() {
            resource["contained"] = Value::Array(contained);
        }
        resource["payload"] = Value::Array(payload);
    }
    resource
}

/// The scores of a message's assessments, in the order the message lists them, each by the
/// measure its rule version names for the instrument (an assessment no longer there, or whose
/// answers no longer score, is left out).
///
/// # Errors
/// The message's rule version, or the outcome rules it names, do not load.
fn scores(
    message: &OutboxMessage,
    assessments: &[domain::AssessmentRecorded],
) -> Result<Vec<Score>, AppError> {
    if message.observations.is_empty() {
        return Ok(Vec::new());
    }
    let version = u32::try_from(message.rules_version).unwrap_or(0);
    let rules = projector::gp_messages::GpMessageRules::load(version)?;
    let Some(ended) = rules.ended else {
        return Ok(Vec::new());
    };
    let outcomes = projector::rules::Rules::load(ended.outcome_rules)?;
    let mut scores = Vec::new();
    for id in &message.observations {
        let Some(assessment) = assessments.iter().find(|a| a.assessment_id.0 == *id) else {
            continue;
        };
        let Some(rule) = ended
            .scores
            .iter()
            .find(|s| s.instrument == Some(assessment.instrument))
        else {
            continue;
        };
        let Some(measure) = outcomes.measures.iter().find(|m| m.name == rule.measure) else {
            continue;
        };
        let Some(value) = outcomes.score(
            measure,
            assessment.instrument,
            &assessment.answers,
            assessment.licensor_score,
        ) else {
            continue;
        };
        scores.push(Score {
            assessment_id: *id,
            code: rule.code.clone(),
            display: rule.display.clone(),
            value,
            on: assessment.administered_on,
            timepoint: assessment.timepoint.label(),
        });
    }
    Ok(scores)
}

/// Sends the outbox.
#[derive(Clone)]
pub struct Dispatcher {
    dispatch: Dispatch,
    transport: Arc<dyn Transport>,
}

/// Why a message was not addressed once its person was read.
enum Addressed {
    /// Their NHS number, and the message's scores.
    To(String, Vec<Score>),
    Withheld(&'static str),
}

impl Dispatcher {
    /// A dispatcher over `store`, timed by `clock`, sending through `transport`.
    pub fn new(
        store: EventStore,
        clock: Clock,
        transport: Arc<dyn Transport>,
        settings: DispatchSettings,
    ) -> Dispatcher {
        Dispatcher {
            dispatch: Dispatch::new(store, clock, settings, outbox::GP_MESSAGES),
            transport,
        }
    }

    /// Sends every message due now, batch by batch, until none is due.
    ///
    /// # Errors
    /// Database failures (a message whose delivery failed is not an error: it waits its turn).
    pub async fn run_once(&self) -> Result<DispatchReport, AppError> {
        let mut report = DispatchReport::default();
        loop {
            let leased = self.lease().await?;
            // A batch not full leaves nothing else due; a full one may (and a pass whose
            // deliveries keep failing still ends: failed messages wait their backoff).
            let more =
                i64::try_from(leased.len()).unwrap_or(i64::MAX) >= self.dispatch.settings.batch;
            for (message, url) in leased {
                self.deliver(&message, url.as_deref(), &mut report).await?;
            }
            if !more {
                return Ok(report);
            }
        }
    }

    /// Runs [`Dispatcher::run_once`] every `every` until `stopped` says so; a failed pass is
    /// logged and the next one tries again.
    pub async fn run(&self, every: Duration, stopped: tokio::sync::watch::Receiver<bool>) {
        outbox::run_every("the GP message dispatcher", every, stopped, || {
            self.run_once()
        })
        .await;
    }

    async fn lease(&self) -> Result<Vec<(OutboxMessage, Option<String>)>, AppError> {
        let now = self.dispatch.clock.now();
        let until = self.dispatch.lease_until(now);
        let client = self.dispatch.store.pool().get().await?;
        let rows = client
            .query(
                "WITH due AS ( \
                   SELECT o.message_id FROM gp_outbox o \
                   WHERE o.status = 'pending' AND o.next_attempt_at <= $1 \
                     AND (o.leased_until IS NULL OR o.leased_until <= $1) \
                     AND NOT EXISTS (SELECT 1 FROM gp_outbox p WHERE p.client_id = o.client_id \
                                     AND p.seq < o.seq AND p.status IN ('pending', 'dead')) \
                   ORDER BY o.next_attempt_at, o.client_id, o.seq LIMIT $2 \
                   FOR UPDATE SKIP LOCKED) \
                 UPDATE gp_outbox o SET leased_until = $3, lease_holder = $4 FROM due \
                 WHERE o.message_id = due.message_id \
                 RETURNING o.message_id, o.organisation_id, o.client_id, o.seq, o.kind, o.code, \
                   o.display, o.content, o.summary, o.practice_ods, o.occurred_at, o.attempts, \
                   (SELECT e.url FROM gp_practice_endpoints e \
                    WHERE e.organisation_id = o.organisation_id AND e.ods_code = o.practice_ods), \
                   o.code_system, o.observations, o.rules_version",
                &[
                    &now,
                    &self.dispatch.settings.batch,
                    &until,
                    &self.dispatch.holder,
                ],
            )
            .await?;
        let mut leased: Vec<(OutboxMessage, Option<String>)> = rows
            .iter()
            .map(|row| {
                (
                    OutboxMessage {
                        message_id: row.get(0),
                        organisation_id: row.get(1),
                        client_id: row.get(2),
                        seq: row.get(3),
                        kind: row.get(4),
                        code: row.get(5),
                        display: row.get(6),
                        content: row.get(7),
                        summary: row.get(8),
                        practice_ods: row.get(9),
                        occurred_at: row.get(10),
                        attempts: row.get(11),
                        code_system: row.get(13),
                        observations: row.get(14),
                        rules_version: row.get(15),
                    },
                    row.get(12),
                )
            })
            .collect();
        leased.sort_by_key(|(m, _)| (m.client_id, m.seq));
        Ok(leased)
    }

    /// The person's NHS number, read from their record (sealed in the log), corrections applied,
    /// and the message's scores, scored from their assessments as they read now; or why nothing
    /// goes: erased, no NHS number, or they object now to sharing with their GP (a withdrawal of
    /// that consent after the message was decided still stops it).
    async fn address(&self, message: &OutboxMessage) -> Result<Addressed, AppError> {
        let rules = projector::gp_messages::GpMessageRules::latest()?;
        let mut types = vec![
            "ClientRegistered",
            "EntryCorrected",
            "ClientErased",
            "ConsentRecorded",
            "ConsentWithdrawn",
            "ReferralReceived",
        ];
        if !message.observations.is_empty() {
            types.push("AssessmentRecorded");
        }
        let events = self
            .dispatch
            .store
            .read_streams_of_types(&[message.client_id], &types)
            .await?;
        let facts = projector::corrected::with_corrections(&events)?;
        let scope = rules.consent.scope;
        let mut nhs_number = None;
        let mut objected = false;
        let mut assessments = Vec::new();
        // Whether a referral names the message's practice under the rules in force: a message
        // decided under older rules (v1, v2: any referral's "ODS <code>"), or from a state kept
        // since, goes only if one the practice's own system sent names it (v3).
        let mut named = false;
        for fact in facts {
            match fact.event {
                CaseEvent::ClientErased(_) => return Ok(Addressed::Withheld("erased")),
                CaseEvent::ClientRegistered(registered) => {
                    nhs_number = registered.personal.nhs_number.map(String::from);
                }
                CaseEvent::ReferralReceived(referral) => {
                    named |= message.practice_ods.is_some()
                        && rules.practice_named(
                            referral.referrer.organisation.as_deref(),
                            fact.recorded_by,
                        ) == message.practice_ods;
                }
                CaseEvent::ConsentRecorded(c) if c.scope == scope => objected = false,
                CaseEvent::ConsentWithdrawn(c) if c.scope == scope => objected = true,
                CaseEvent::AssessmentRecorded(a)
                    if message.observations.contains(&a.assessment_id.0) =>
                {
                    assessments.push(a);
                }
                _ => {}
            }
        }
        if objected {
            return Ok(Addressed::Withheld("objected"));
        }
        if !named {
            return Ok(Addressed::Withheld("not_named_by_practice"));
        }
        let Some(nhs_number) = nhs_number else {
            return Ok(Addressed::Withheld("no_nhs_number"));
        };
        Ok(Addressed::To(nhs_number, scores(message, &assessments)?))
    }

    async fn deliver(
        &self,
        message: &OutboxMessage,
        url: Option<&str>,
        report: &mut DispatchReport,
    ) -> Result<(), AppError> {
        let attempt = message.attempts + 1;
        let (nhs_number, scores) = match self.address(message).await? {
            Addressed::To(number, scores) => (number, scores),
            Addressed::Withheld(reason) => {
                let withheld = Attempted::Withheld(reason);
                self.dispatch
                    .settle(message.message_id, attempt, withheld, report)
                    .await?;
                return Ok(());
            }
        };
        let outcome = match url {
            None => Err(format!(
                "no endpoint is configured for practice {}",
                message.practice_ods.as_deref().unwrap_or("(none)")
            )),
            Some(url) => {
                let body = serde_json::to_vec(&communication(
                    message,
                    &nhs_number,
                    self.dispatch.clock.now(),
                    &scores,
                ))
                .map_err(|e| AppError::Unexpected(e.into()))?;
                let headers = vec![
                    ("content-type", "application/fhir+json".to_owned()),
                    ("idempotency-key", message.message_id.to_string()),
                    ("x-casebook-sequence", message.seq.to_string()),
                ];
                match self.transport.post(url, headers, body).await {
                    Ok(status) if (200..300).contains(&status) => Ok(status),
                    Ok(status) => Err(format!("the practice's endpoint answered {status}")),
                    Err(e) => Err(e),
                }
            }
        };
        let attempted = match &outcome {
            Ok(status) => Attempted::Delivered {
                status: *status,
                channel: None,
            },
            Err(error) => Attempted::Failed {
                status: error
                    .strip_prefix("the practice's endpoint answered ")
                    .and_then(|s| s.parse::<i32>().ok()),
                error,
                permanent: false,
            },
        };
        self.dispatch
            .settle(message.message_id, attempt, attempted, report)
            .await?;
        Ok(())
    }
}

/// A message as an administrator sees it (no personal data: the person is a client id).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    pub message_id: Uuid,
    pub client_id: Uuid,
    pub seq: i32,
    pub kind: String,
    /// SNOMED CT code.
    pub code: String,
    pub practice_ods: Option<String>,
    /// `coded` or `full`; none when withheld.
    pub content: Option<String>,
    pub status: OutboxStatus,
    pub withheld_reason: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A practice's endpoint as configured.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PracticeEndpoint {
    pub ods_code: String,
    pub url: String,
    pub updated_at: DateTime<Utc>,
}

/// Checks an ODS code: 3 to 10 capital letters and digits.
///
/// # Errors
/// [`AppError::BadInput`] naming `ods_code`.
pub fn check_ods_code(code: &str) -> Result<(), AppError> {
    let ok = (3..=10).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(AppError::BadInput {
            field: "ods_code",
            message: "an ODS code is 3 to 10 capital letters and digits".to_owned(),
        })
    }
}

/// Checks an endpoint URL as the dispatcher's HTTP client will read it (the `url` crate, as
/// reqwest's): `http` or `https` (in any case), a host, a port that exists, no credentials,
/// no fragment, no spaces; so that what is accepted here can be sent to (where the address
/// may be reached is decided at each connection, by the transport).
///
/// # Errors
/// [`AppError::BadInput`] naming `url`.
pub fn check_endpoint_url(url: &str) -> Result<(), AppError> {
    let bad = |message: String| AppError::BadInput {
        field: "url",
        message,
    };
    if url.len() > 2048 {
        return Err(bad("a URL of at most 2048 characters".to_owned()));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("a URL holds no spaces or control characters".to_owned()));
    }
    let parsed =
        url::Url::parse(url).map_err(|e| bad(format!("not a URL that can be sent to: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("only http and https endpoints are allowed".to_owned()));
    }
    // As typed, the scheme then `://` then the host: `https:///x` or `https:x` would be read as
    // `https://x`.
    let authority = url
        .get(parsed.scheme().len()..)
        .and_then(|rest| rest.strip_prefix("://"))
        .unwrap_or_default()
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    if parsed.host().is_none() || authority.is_empty() {
        return Err(bad("the URL names no host".to_owned()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("the URL may not carry credentials".to_owned()));
    }
    if parsed.fragment().is_some() {
        return Err(bad("the URL may not carry a fragment".to_owned()));
    }
    Ok(())
}

impl Listed for OutboxEntry {
    const OUTBOX: Outbox = outbox::GP_MESSAGES;
    const COLUMNS: &'static str = "message_id, client_id, seq, kind, code, practice_ods, content, \
        status, withheld_reason, attempts, last_error, occurred_at, delivered_at";
    const ORDER: &'static str = "occurred_at, client_id, seq";

    fn from_row(row: &tokio_postgres::Row) -> Result<OutboxEntry, AppError> {
        Ok(OutboxEntry {
            message_id: row.get(0),
            client_id: row.get(1),
            seq: row.get(2),
            kind: row.get(3),
            code: row.get(4),
            practice_ods: row.get(5),
            content: row.get(6),
            status: OutboxStatus::of_row(row, 7)?,
            withheld_reason: row.get(8),
            attempts: row.get(9),
            last_error: row.get(10),
            occurred_at: row.get(11),
            delivered_at: row.get(12),
        })
    }
}

/// An administrator's view of the GP outbox: its messages by status, oldest first (each person
/// listed, what was said of them to their GP, written to the read audit), a dead letter sent
/// again (the person's later messages follow it), and where a practice's messages go.
pub type GpOutboxAdmin = OutboxAdmin<OutboxEntry>;

impl OutboxAdmin<OutboxEntry> {
    /// Sets where a practice's messages go, for the caller's organisation (administrators).
    ///
    /// # Errors
    /// [`AppError::Denied`]; [`AppError::BadInput`] naming the field.
    pub async fn set_endpoint(
        &self,
        principal: &Principal,
        ods_code: &str,
        url: &str,
    ) -> Result<PracticeEndpoint, AppError> {
        policy::may_administer(principal)?;
        check_ods_code(ods_code)?;
        check_endpoint_url(url)?;
        let now = self.clock().now();
        let client = self.store().pool().get().await?;
        client
            .execute(
                "INSERT INTO gp_practice_endpoints (organisation_id, ods_code, url, updated_by, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (organisation_id, ods_code) \
                 DO UPDATE SET url = excluded.url, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                &[&principal.organisation_id, &ods_code, &url, &principal.staff_id.0, &now],
            )
            .await?;
        Ok(PracticeEndpoint {
            ods_code: ods_code.to_owned(),
            url: url.to_owned(),
            updated_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let settings = DispatchSettings {
            backoff: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(60),
            ..DispatchSettings::default()
        };
        let waits: Vec<u64> = (1..=6)
            .map(|n| settings.backoff_after(n).as_secs())
            .collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(settings.backoff_after(1000).as_secs(), 60);
    }

    #[test]
    fn endpoint_urls_are_http_or_https_without_credentials() {
        for good in [
            "https://gp.example/fhir",
            "http://127.0.0.1:8080/in",
            "HTTPS://GP.EXAMPLE/fhir",
            "https://[2001:db8::1]:8443/in",
        ] {
            assert!(check_endpoint_url(good).is_ok(), "{good}");
        }
        for bad in [
            "file:///etc/passwd",
            "ftp://gp.example/",
            "gopher://x",
            "https://user:pw@gp.example/",
            "https:///nohost",
            "https://gp.example/a b",
            "https://gp.example/#x",
            "https:/gp.example/",
            "https:gp.example/x?u=http://a",
            "https://gp.example:99999/",
            "https://[fe80::1%25lo]/",
            "https://gp..example:-1/",
            "",
        ] {
            assert!(
                matches!(
                    check_endpoint_url(bad),
                    Err(AppError::BadInput { field: "url", .. })
                ),
                "{bad}"
            );
        }
        assert!(check_ods_code("A81001").is_ok());
        assert!(check_ods_code("a81001").is_err());
        assert!(check_ods_code("A8").is_err());
    }
}
