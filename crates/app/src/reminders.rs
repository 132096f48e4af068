//! Appointment reminders to the person (issue #21, part 1): delivering the notification outbox.
//!
//! The reminder projection (`projector::reminders`) writes a reminder per booking in the same
//! transaction as its checkpoint, due some hours before the appointment; this module sends them
//! to a notification service shaped as GOV.UK Notify's API (`POST /v2/notifications/sms` or
//! `/email` with a bearer key, the reminder's id as `reference` so the service can dedupe).
//! The [`ReminderDispatcher`] leases due reminders as the GP dispatcher does (leases, not held
//! transactions; backoff with a cap; dead letters after the last attempt, replayed by an
//! administrator; the same [`Transport`] and [`DispatchSettings`]), and when it sends one it
//! reads the person's record from the log (sealed): a reminder goes only if the appointment is
//! still booked and to come, the person has consent to be contacted for reminders in force, and
//! their record holds the phone number or email address of the channel that consent names.
//! Otherwise it is withheld, with why. Nothing personal is copied into the outbox: after an
//! erasure (the key shredded) there is nothing to send a reminder to.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{CaseEvent, ContactChannel, ContactMode};
use eventstore::EventStore;
use projector::reminders::ReminderRules;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::gp_outbox::{DispatchReport, DispatchSettings, Transport};
use crate::outbox::{self, Attempted, Dispatch, Listed, Outbox, OutboxAdmin, OutboxStatus};
use crate::{AppError, Clock};

/// Where reminders are posted: a Notify-shaped service's base URL, its API key, and the
/// service's own templates.
#[derive(Clone)]
pub struct NotifyEndpoint {
    /// `https://api.notifications.service.gov.uk` or a local stand-in; no trailing slash needed.
    pub base_url: String,
    /// Sent as `Authorization: Bearer <key>`; never logged, never shown.
    pub api_key: String,
    /// The templates this service made at the notification service (a channel with none
    /// configured holds its reminders).
    pub templates: NotifyTemplates,
}

impl std::fmt::Debug for NotifyEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyEndpoint")
            .field("base_url", &self.base_url)
            .field("api_key", &"[redacted]")
            .field("templates", &self.templates)
            .finish()
    }
}

/// The template ids a service configured for its reminders, by channel (`serve
/// --notify-sms-template`, `--notify-email-template`). There is no default: a channel without
/// one holds its reminders ([`Held`]) until the service is started with one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifyTemplates {
    pub sms: Option<String>,
    pub email: Option<String>,
}

/// Why a due reminder is held rather than sent: it stays pending, no attempt is counted and it
/// is never dead-lettered for it; a dispatcher configured to send it sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// No template id is configured for text messages.
    NoSmsTemplate,
    /// No template id is configured for emails.
    NoEmailTemplate,
    /// No notification service is configured at all.
    NoNotifyService,
}

impl Held {
    /// Every reason.
    pub const ALL: [Held; 3] = [
        Held::NoSmsTemplate,
        Held::NoEmailTemplate,
        Held::NoNotifyService,
    ];

    /// Its code, as `reminder_outbox.held_reason` and the lists show it.
    pub fn code(self) -> &'static str {
        match self {
            Held::NoSmsTemplate => "no_sms_template",
            Held::NoEmailTemplate => "no_email_template",
            Held::NoNotifyService => "no_notify_service",
        }
    }

    /// The reason of a code, as [`Held::code`] writes it.
    pub fn from_code(code: &str) -> Option<Held> {
        Held::ALL.into_iter().find(|held| held.code() == code)
    }

    /// What is missing, in words, with the setting that supplies it.
    pub fn words(self) -> &'static str {
        match self {
            Held::NoSmsTemplate => "no text message template is configured (--notify-sms-template)",
            Held::NoEmailTemplate => "no email template is configured (--notify-email-template)",
            Held::NoNotifyService => "no notification service is configured (--notify-url)",
        }
    }
}

impl NotifyTemplates {
    /// The template a reminder by `channel` goes with: the one configured.
    ///
    /// # Errors
    /// None is configured for the channel: the reminder is held.
    pub fn template_id(&self, channel: ContactChannel) -> Result<String, Held> {
        let (configured, held) = match channel {
            ContactChannel::Sms => (&self.sms, Held::NoSmsTemplate),
            ContactChannel::Email => (&self.email, Held::NoEmailTemplate),
        };
        configured
            .as_ref()
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .ok_or(held)
    }

    /// The reasons a dispatcher with these templates still cannot send a held reminder for.
    fn still_held(&self) -> Vec<&'static str> {
        [ContactChannel::Sms, ContactChannel::Email]
            .into_iter()
            .filter_map(|channel| self.template_id(channel).err())
            .map(Held::code)
            .collect()
    }
}

impl NotifyEndpoint {
    /// The URL of a channel's notifications.
    pub fn url(&self, channel: ContactChannel) -> String {
        let base = self.base_url.trim_end_matches('/');
        match channel {
            ContactChannel::Sms => format!("{base}/v2/notifications/sms"),
            ContactChannel::Email => format!("{base}/v2/notifications/email"),
        }
    }
}

/// A leased reminder (no personal data).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeasedReminder {
    pub message_id: Uuid,
    pub client_id: Uuid,
    pub appointment_id: Uuid,
    pub scheduled_for: DateTime<Utc>,
    pub attempts: i32,
}

/// Where a reminder goes, once its person's record is read; or why it does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addressed {
    /// To this phone number or email address by this channel, about an appointment of this mode
    /// at this time (as the record says now).
    To {
        channel: ContactChannel,
        address: String,
        mode: ContactMode,
        scheduled_for: DateTime<Utc>,
    },
    /// Not yet: the booked time was corrected (the reminder is due at another time), or it is
    /// quiet hours now and the appointment is after they end.
    Waits {
        until: DateTime<Utc>,
        scheduled_for: DateTime<Utc>,
    },
    /// Not sent, with why.
    Withheld(&'static str),
}

/// What a reminder's person's record says now (events read from the log, corrections applied),
/// for the reminder of `appointment_id` booked for `scheduled_for`, at `now`. Pure.
pub fn address(
    facts: &[CaseEvent],
    appointment_id: Uuid,
    scheduled_for: DateTime<Utc>,
    now: DateTime<Utc>,
    rules: &ReminderRules,
) -> Addressed {
    let mut channel = None;
    let mut phone = None;
    let mut email = None;
    let mut booked = None;
    let mut settled = None;
    let mut closed = false;
    for event in facts {
        match event {
            CaseEvent::ClientErased(_) => return Addressed::Withheld("erased"),
            // A case closed (the person died, moved away, or support ended) reminds nobody of
            // an appointment left booked; reopened, it does again.
            CaseEvent::CaseClosed(_) => closed = true,
            CaseEvent::CaseReopened(_) => closed = false,
            CaseEvent::ClientRegistered(registered) => {
                phone.clone_from(&registered.personal.phone);
                email.clone_from(&registered.personal.email);
            }
            CaseEvent::ConsentRecorded(c) if c.scope == rules.consent.scope => channel = c.channel,
            CaseEvent::ConsentWithdrawn(c) if c.scope == rules.consent.scope => channel = None,
            CaseEvent::AppointmentBooked(a) if a.appointment_id.0 == appointment_id => {
                booked = Some((a.scheduled_for, a.mode));
            }
            CaseEvent::AppointmentCancelled(a) if a.appointment_id.0 == appointment_id => {
                settled = Some("cancelled");
            }
            CaseEvent::AppointmentAttended(a) if a.appointment_id.0 == appointment_id => {
                settled = Some("attended");
            }
            CaseEvent::AppointmentNotAttended(a) if a.appointment_id.0 == appointment_id => {
                settled = Some("not_attended");
            }
            _ => {}
        }
    }
    let Some((booked_for, mode)) = booked else {
        return Addressed::Withheld("no_appointment");
    };
    if let Some(reason) = settled {
        return Addressed::Withheld(reason);
    }
    if closed {
        return Addressed::Withheld("case_closed");
    }
    if booked_for != scheduled_for && rules.due_at(booked_for) > now {
        return Addressed::Waits {
            until: rules.due_at(booked_for),
            scheduled_for: booked_for,
        };
    }
    if booked_for <= now {
        return Addressed::Withheld("appointment_passed");
    }
    let Some(channel) = channel else {
        return Addressed::Withheld("no_consent");
    };
    let usable = |value: Option<String>| {
        value
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty() && v != domain::ERASED)
    };
    let address = match channel {
        ContactChannel::Sms => usable(phone).ok_or("no_phone"),
        ContactChannel::Email => usable(email).ok_or("no_email"),
    };
    match address {
        Err(reason) => Addressed::Withheld(reason),
        // Due in quiet hours (booked late, or retried): it waits for the morning, unless the
        // appointment comes first.
        Ok(_)
            if rules
                .quiet_until(now)
                .is_some_and(|until| until < booked_for) =>
        {
            Addressed::Waits {
                until: rules.quiet_until(now).unwrap_or(now),
                scheduled_for: booked_for,
            }
        }
        Ok(address) => Addressed::To {
            channel,
            address,
            mode,
            scheduled_for: booked_for,
        },
    }
}

/// The notification as Notify's API takes it: the address, the channel's template
/// (`template_id`), the appointment's day, time (UK wall clock) and kind, and the reminder's id
/// as `reference`.
pub fn notification(
    message_id: Uuid,
    channel: ContactChannel,
    address: &str,
    scheduled_for: DateTime<Utc>,
    mode: ContactMode,
    template_id: &str,
) -> Value {
    let local = domain::calendar::local(scheduled_for);
    let personalisation = json!({
        "date": local.format("%A %-d %B").to_string(),
        "time": local.format("%-I:%M%P").to_string(),
        "how": mode.label(),
    });
    match channel {
        ContactChannel::Sms => json!({
            "phone_number": address,
            "template_id": template_id,
            "personalisation": personalisation,
            "reference": message_id.to_string(),
        }),
        ContactChannel::Email => json!({
            "email_address": address,
            "template_id": template_id,
            "personalisation": personalisation,
            "reference": message_id.to_string(),
        }),
    }
}

/// The events of a person's record that decide whether, when and how a reminder goes.
const RECORD_TYPES: &[&str] = &[
    "ClientRegistered",
    "EntryCorrected",
    "ClientErased",
    "ConsentRecorded",
    "ConsentWithdrawn",
    "AppointmentBooked",
    "AppointmentCancelled",
    "AppointmentAttended",
    "AppointmentNotAttended",
    "CaseClosed",
    "CaseReopened",
];

/// Sends the reminder outbox.
#[derive(Clone)]
pub struct ReminderDispatcher {
    dispatch: Dispatch,
    transport: Arc<dyn Transport>,
    notify: Option<NotifyEndpoint>,
}

/// How a send ended, when it did not succeed.
struct Failure {
    status: Option<i32>,
    error: String,
    /// The service said the request itself is wrong (a bad number, a bad key): trying again
    /// the same way cannot succeed, so it is dead-lettered at once.
    permanent: bool,
}

impl ReminderDispatcher {
    /// A dispatcher over `store`, timed by `clock`, sending through `transport` to `notify`
    /// (none: every due reminder is held, `no_notify_service`).
    pub fn new(
        store: EventStore,
        clock: Clock,
        transport: Arc<dyn Transport>,
        settings: DispatchSettings,
        notify: Option<NotifyEndpoint>,
    ) -> ReminderDispatcher {
        ReminderDispatcher {
            dispatch: Dispatch::new(store, clock, settings, outbox::REMINDERS),
            transport,
            notify,
        }
    }

    /// Sends every reminder due now, batch by batch, until none is due.
    ///
    /// # Errors
    /// Database failures (a reminder whose delivery failed is not an error: it waits its turn).
    pub async fn run_once(&self) -> Result<DispatchReport, AppError> {
        let rules = ReminderRules::latest()?;
        let mut report = DispatchReport::default();
        loop {
            let leased = self.lease().await?;
            let more =
                i64::try_from(leased.len()).unwrap_or(i64::MAX) >= self.dispatch.settings.batch;
            for reminder in leased {
                self.deliver(&reminder, &rules, &mut report).await?;
            }
            if !more {
                return Ok(report);
            }
        }
    }

    /// Runs [`ReminderDispatcher::run_once`] every `every` until `stopped` says so; a failed
    /// pass is logged and the next one tries again.
    pub async fn run(
        &self,
        every: std::time::Duration,
        stopped: tokio::sync::watch::Receiver<bool>,
    ) {
        outbox::run_every("the reminder dispatcher", every, stopped, || {
            self.run_once()
        })
        .await;
    }

    async fn lease(&self) -> Result<Vec<LeasedReminder>, AppError> {
        let now = self.dispatch.clock.now();
        let until = self.dispatch.lease_until(now);
        // Held reminders this dispatcher could not send either are passed by (they keep their
        // place and their reason); one it can send (its template configured now) it takes.
        let still_held: Vec<&str> = match &self.notify {
            None => Held::ALL.iter().map(|h| h.code()).collect(),
            Some(notify) => notify.templates.still_held(),
        };
        let client = self.dispatch.store.pool().get().await?;
        let rows = client
            .query(
                "WITH due AS ( \
                   SELECT message_id FROM reminder_outbox \
                   WHERE status = 'pending' AND next_attempt_at <= $1 \
                     AND (leased_until IS NULL OR leased_until <= $1) \
                     AND (held_reason IS NULL OR NOT held_reason = ANY($5)) \
                   ORDER BY next_attempt_at, message_id LIMIT $2 \
                   FOR UPDATE SKIP LOCKED) \
                 UPDATE reminder_outbox o SET leased_until = $3, lease_holder = $4 FROM due \
                 WHERE o.message_id = due.message_id \
                 RETURNING o.message_id, o.client_id, o.appointment_id, o.scheduled_for, o.attempts",
                &[
                    &now,
                    &self.dispatch.settings.batch,
                    &until,
                    &self.dispatch.holder,
                    &still_held,
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| LeasedReminder {
                message_id: row.get(0),
                client_id: row.get(1),
                appointment_id: row.get(2),
                scheduled_for: row.get(3),
                attempts: row.get(4),
            })
            .collect())
    }

    /// What of `client_id`'s record decides a reminder, corrections applied, and the version of
    /// the last of its events read (see [`ReminderDispatcher::hold`]).
    async fn read_record(&self, client_id: Uuid) -> Result<(Vec<CaseEvent>, i64), AppError> {
        let events = self
            .dispatch
            .store
            .read_streams_of_types(&[client_id], RECORD_TYPES)
            .await?;
        let read = events.last().map_or(0, |e| e.stream_version);
        let facts = projector::corrected::with_corrections(&events)?
            .into_iter()
            .map(|fact| fact.event)
            .collect();
        Ok((facts, read))
    }

    async fn deliver(
        &self,
        reminder: &LeasedReminder,
        rules: &ReminderRules,
        report: &mut DispatchReport,
    ) -> Result<(), AppError> {
        let attempt = reminder.attempts + 1;
        let now = self.dispatch.clock.now();
        let (record, read) = self.read_record(reminder.client_id).await?;
        let (channel, address, mode, scheduled_for) = match address(
            &record,
            reminder.appointment_id,
            reminder.scheduled_for,
            now,
            rules,
        ) {
            Addressed::To {
                channel,
                address,
                mode,
                scheduled_for,
            } => (channel, address, mode, scheduled_for),
            Addressed::Waits {
                until,
                scheduled_for,
            } => {
                self.waits(reminder, scheduled_for, until).await?;
                return Ok(());
            }
            Addressed::Withheld(reason) => {
                let withheld = Attempted::Withheld(reason);
                self.dispatch
                    .settle(reminder.message_id, attempt, withheld, report)
                    .await?;
                return Ok(());
            }
        };
        let template = match &self.notify {
            None => Err(Held::NoNotifyService),
            Some(notify) => notify
                .templates
                .template_id(channel)
                .map(|template_id| (notify, template_id)),
        };
        let outcome = match template {
            // Not configured: held, pending, until a dispatcher configured to send it runs (the
            // service started again with the template). No attempt is counted.
            Err(held) => {
                if self.hold(reminder, held, read).await? {
                    report.held += 1;
                }
                return Ok(());
            }
            Ok((notify, template_id)) => {
                let to = (channel, address.as_str());
                self.post(reminder, notify, to, (scheduled_for, mode), &template_id)
                    .await?
            }
        };
        let outcome = match outcome {
            Err(failure) => Err(failure),
            // The lease ran out before posting: nothing was sent, and nothing is recorded.
            Ok(None) => return Ok(()),
            Ok(Some(status)) => Ok(status),
        };
        let channel = domain::code(&channel);
        let attempted = match &outcome {
            Ok(status) => Attempted::Delivered {
                status: *status,
                channel: Some(channel.as_str()),
            },
            Err(failure) => Attempted::Failed {
                status: failure.status,
                error: &failure.error,
                permanent: failure.permanent,
            },
        };
        self.dispatch
            .settle(reminder.message_id, attempt, attempted, report)
            .await?;
        Ok(())
    }

    /// Posts the reminder to the notification service, once this dispatcher has renewed its
    /// lease: the status it answered, or none when the lease had run out (nothing posted).
    async fn post(
        &self,
        reminder: &LeasedReminder,
        notify: &NotifyEndpoint,
        (channel, address): (ContactChannel, &str),
        (scheduled_for, mode): (DateTime<Utc>, ContactMode),
        template_id: &str,
    ) -> Result<Result<Option<u16>, Failure>, AppError> {
        // The lease is ours still, and for long enough to send: a dispatcher slowed past its
        // lease must not post what another has leased since (GOV.UK Notify does not dedupe).
        if !self.still_leased(reminder).await? {
            return Ok(Ok(None));
        }
        let body = serde_json::to_vec(&notification(
            reminder.message_id,
            channel,
            address,
            scheduled_for,
            mode,
            template_id,
        ))
        .map_err(|e| AppError::Unexpected(e.into()))?;
        let headers = vec![
            ("content-type", "application/json".to_owned()),
            ("authorization", format!("Bearer {}", notify.api_key)),
        ];
        Ok(
            match self
                .transport
                .post(&notify.url(channel), headers, body)
                .await
            {
                Ok(status) if (200..300).contains(&status) => Ok(Some(status)),
                Ok(status) => Err(Failure {
                    status: Some(i32::from(status)),
                    error: format!("the notification service answered {status}"),
                    permanent: (400..500).contains(&status) && status != 408 && status != 429,
                }),
                Err(error) => Err(Failure {
                    status: None,
                    error,
                    permanent: false,
                }),
            },
        )
    }

    /// Held (see [`Held`]): pending still, with why, due as it was; no attempt counted. Only
    /// while the person's record is as it was read (its events up to version `read`): a
    /// consent recorded since may have chosen a channel that has a template, and its
    /// projection lifts only holds already made, so a hold made after it would last until the
    /// next consent. Then the reminder is not held but left to the next pass, which reads the
    /// record again. Whether it was held.
    async fn hold(
        &self,
        reminder: &LeasedReminder,
        held: Held,
        read: i64,
    ) -> Result<bool, AppError> {
        let client = self.dispatch.store.pool().get().await?;
        let held_now = client
            .query_opt(
                "UPDATE reminder_outbox SET held_reason = CASE WHEN EXISTS ( \
                   SELECT 1 FROM events WHERE stream_id = $4 AND stream_version > $5 \
                   AND event_type = ANY($6)) THEN NULL ELSE $3 END, \
                 leased_until = NULL, lease_holder = NULL \
                 WHERE message_id = $1 AND lease_holder = $2 AND status = 'pending' \
                 RETURNING held_reason IS NOT NULL",
                &[
                    &reminder.message_id,
                    &self.dispatch.holder,
                    &held.code(),
                    &reminder.client_id,
                    &read,
                    &RECORD_TYPES,
                ],
            )
            .await?
            .is_some_and(|row| row.get::<_, bool>(0));
        // Looked at again once the hold is committed: a consent committed while it was being
        // made is either seen here, or projected after the hold, whose projection lifts it.
        let held_now = held_now
            && client
                .execute(
                    "UPDATE reminder_outbox SET held_reason = NULL \
                     WHERE message_id = $1 AND status = 'pending' AND held_reason = $2 \
                     AND EXISTS (SELECT 1 FROM events WHERE stream_id = $3 \
                       AND stream_version > $4 AND event_type = ANY($5))",
                    &[
                        &reminder.message_id,
                        &held.code(),
                        &reminder.client_id,
                        &read,
                        &RECORD_TYPES,
                    ],
                )
                .await?
                == 0;
        if held_now {
            tracing::info!(
                message_id = %reminder.message_id,
                reason = held.code(),
                "a reminder is held: nothing is configured to send it by"
            );
        } else {
            tracing::debug!(
                message_id = %reminder.message_id,
                "the person's record changed while a reminder was decided: it is read again"
            );
        }
        Ok(held_now)
    }

    /// Not yet (the appointment's time was corrected since the reminder was written, or it is
    /// quiet hours): it waits (no attempt counted).
    async fn waits(
        &self,
        reminder: &LeasedReminder,
        scheduled_for: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let client = self.dispatch.store.pool().get().await?;
        client
            .execute(
                "UPDATE reminder_outbox SET scheduled_for = $3, next_attempt_at = $4, \
                 leased_until = NULL, lease_holder = NULL, held_reason = NULL \
                 WHERE message_id = $1 AND lease_holder = $2 AND status = 'pending'",
                &[
                    &reminder.message_id,
                    &self.dispatch.holder,
                    &scheduled_for,
                    &due_at,
                ],
            )
            .await?;
        Ok(())
    }

    /// Renews this dispatcher's lease on `reminder` from now, if it still holds it: false when
    /// the lease ran out (another dispatcher may have it now). It is being sent: no longer held.
    async fn still_leased(&self, reminder: &LeasedReminder) -> Result<bool, AppError> {
        let now = self.dispatch.clock.now();
        let until = self.dispatch.lease_until(now);
        let client = self.dispatch.store.pool().get().await?;
        let renewed = client
            .execute(
                "UPDATE reminder_outbox SET leased_until = $3, held_reason = NULL \
                 WHERE message_id = $1 AND lease_holder = $2 AND leased_until > $4 \
                 AND status = 'pending'",
                &[&reminder.message_id, &self.dispatch.holder, &until, &now],
            )
            .await?;
        Ok(renewed == 1)
    }
}

/// A reminder as an administrator sees it (no personal data: the person is a client id).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReminderEntry {
    pub message_id: Uuid,
    pub client_id: Uuid,
    pub appointment_id: Uuid,
    pub scheduled_for: DateTime<Utc>,
    /// `sms` or `email`, once sent.
    pub channel: Option<String>,
    pub status: OutboxStatus,
    pub withheld_reason: Option<String>,
    /// Why a pending reminder is held rather than sent (`no_sms_template`,
    /// `no_email_template`, `no_notify_service`): it goes once the service is started with
    /// what it lacks.
    pub held_reason: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// When it is (or was last) due.
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl Listed for ReminderEntry {
    const OUTBOX: Outbox = outbox::REMINDERS;
    const COLUMNS: &'static str = "message_id, client_id, appointment_id, scheduled_for, channel, \
        status, withheld_reason, attempts, last_error, next_attempt_at, delivered_at, held_reason";
    const ORDER: &'static str = "scheduled_for, message_id";

    fn from_row(row: &tokio_postgres::Row) -> Result<ReminderEntry, AppError> {
        Ok(ReminderEntry {
            message_id: row.get(0),
            client_id: row.get(1),
            appointment_id: row.get(2),
            scheduled_for: row.get(3),
            channel: row.get(4),
            status: OutboxStatus::of_row(row, 5)?,
            withheld_reason: row.get(6),
            attempts: row.get(7),
            last_error: row.get(8),
            next_attempt_at: row.get(9),
            delivered_at: row.get(10),
            held_reason: row.get(11),
        })
    }
}

/// An administrator's view of the reminder outbox: its reminders by status, by appointment time
/// (each person listed, when their appointments are and whether they came, written to the read
/// audit), and a dead letter sent again (whether it goes is decided again when it is sent:
/// consent, erasure, the appointment still to come).
pub type ReminderAdmin = OutboxAdmin<ReminderEntry>;

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{
        AppointmentBooked, AppointmentCancelled, AppointmentId, CancelledBy, ClientErased,
        ClientId, ClientRegistered, ConsentRecorded, ConsentScope, ConsentWithdrawn,
        PersonalDetails,
    };

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("a UTC instant")
    }

    const APPOINTMENT: Uuid = Uuid::from_u128(5);

    fn registered() -> CaseEvent {
        let mut personal = PersonalDetails::named("Maggie", "Jones");
        personal.phone = Some("07700 900123".to_owned());
        CaseEvent::ClientRegistered(ClientRegistered {
            client_id: ClientId(Uuid::from_u128(1)),
            personal,
            area: "Frome".to_owned(),
        })
    }

    fn consent(channel: ContactChannel) -> CaseEvent {
        CaseEvent::ConsentRecorded(ConsentRecorded {
            scope: ConsentScope::ContactForReminders,
            services: vec![],
            channel: Some(channel),
        })
    }

    fn booked(at: &str) -> CaseEvent {
        CaseEvent::AppointmentBooked(AppointmentBooked {
            appointment_id: AppointmentId(APPOINTMENT),
            scheduled_for: utc(at),
            mode: ContactMode::FaceToFace,
        })
    }

    #[test]
    fn a_reminder_goes_only_with_consent_by_its_channel_to_an_appointment_to_come() {
        let rules = ReminderRules::latest().expect("rules");
        let at = utc("2026-03-03T14:00:00Z");
        let now = utc("2026-03-02T14:00:00Z");
        let check = |facts: Vec<CaseEvent>| address(&facts, APPOINTMENT, at, now, &rules);
        let sms = Addressed::To {
            channel: ContactChannel::Sms,
            address: "07700 900123".to_owned(),
            mode: ContactMode::FaceToFace,
            scheduled_for: at,
        };
        let base = || vec![registered(), booked("2026-03-03T14:00:00Z")];
        assert_eq!(check(base()), Addressed::Withheld("no_consent"));
        let with = |more: Vec<CaseEvent>| base().into_iter().chain(more).collect::<Vec<_>>();
        assert_eq!(check(with(vec![consent(ContactChannel::Sms)])), sms);
        assert_eq!(
            check(with(vec![consent(ContactChannel::Email)])),
            Addressed::Withheld("no_email")
        );
        assert_eq!(
            check(with(vec![
                consent(ContactChannel::Sms),
                CaseEvent::ConsentWithdrawn(ConsentWithdrawn {
                    scope: ConsentScope::ContactForReminders,
                }),
            ])),
            Addressed::Withheld("no_consent")
        );
        assert_eq!(
            check(with(vec![
                consent(ContactChannel::Sms),
                CaseEvent::AppointmentCancelled(AppointmentCancelled {
                    appointment_id: AppointmentId(APPOINTMENT),
                    cancelled_by: CancelledBy::Client,
                    note: None,
                }),
            ])),
            Addressed::Withheld("cancelled")
        );
        assert_eq!(
            check(with(vec![
                consent(ContactChannel::Sms),
                CaseEvent::ClientErased(ClientErased {
                    reason: "request".to_owned(),
                }),
            ])),
            Addressed::Withheld("erased")
        );
        // A case closed (here: the person died) reminds nobody; reopened, it does again.
        let closed = || {
            CaseEvent::CaseClosed(domain::CaseClosed {
                reason: domain::ClosureReason::Deceased,
                note: None,
            })
        };
        assert_eq!(
            check(with(vec![consent(ContactChannel::Sms), closed()])),
            Addressed::Withheld("case_closed")
        );
        assert_eq!(
            check(with(vec![
                consent(ContactChannel::Sms),
                closed(),
                CaseEvent::CaseReopened(domain::CaseReopened { note: None }),
            ])),
            sms
        );
        // Consent to share with the GP is not consent to be reminded.
        assert_eq!(
            check(with(vec![CaseEvent::ConsentRecorded(ConsentRecorded {
                scope: ConsentScope::ShareWithGp,
                services: vec![],
                channel: None,
            })])),
            Addressed::Withheld("no_consent")
        );
        // Booked again later (a corrected time): it waits; one that has begun is not reminded.
        let later = vec![
            registered(),
            booked("2026-03-05T14:00:00Z"),
            consent(ContactChannel::Sms),
        ];
        assert_eq!(
            check(later),
            Addressed::Waits {
                until: utc("2026-03-04T14:00:00Z"),
                scheduled_for: utc("2026-03-05T14:00:00Z")
            }
        );
        // Due (or retried) in quiet hours: it waits for 08:00, unless the appointment is first.
        let facts = with(vec![consent(ContactChannel::Sms)]);
        let late = utc("2026-03-02T22:30:00Z");
        assert_eq!(
            address(&facts, APPOINTMENT, at, late, &rules),
            Addressed::Waits {
                until: utc("2026-03-03T08:00:00Z"),
                scheduled_for: at
            }
        );
        let early = vec![
            registered(),
            booked("2026-03-03T07:30:00Z"),
            consent(ContactChannel::Sms),
        ];
        assert!(matches!(
            address(
                &early,
                APPOINTMENT,
                utc("2026-03-03T07:30:00Z"),
                late,
                &rules
            ),
            Addressed::To { .. }
        ));
        let facts = with(vec![consent(ContactChannel::Sms)]);
        assert_eq!(
            address(&facts, APPOINTMENT, at, at, &rules),
            Addressed::Withheld("appointment_passed")
        );
    }

    #[test]
    fn the_notification_is_notify_shaped_with_the_reminder_as_reference() {
        let id = Uuid::from_u128(77);
        let template = "0f8e6a52-1111-4c2e-9d3b-7a1e2c3d4e5f";
        let body = notification(
            id,
            ContactChannel::Sms,
            "07700 900123",
            utc("2026-07-08T13:30:00Z"),
            ContactMode::Phone,
            template,
        );
        assert_eq!(
            body,
            json!({
                "phone_number": "07700 900123",
                "template_id": template,
                "personalisation": { "date": "Wednesday 8 July", "time": "2:30pm", "how": "phone" },
                "reference": id.to_string(),
            })
        );
        let endpoint = NotifyEndpoint {
            base_url: "https://notify.example/".to_owned(),
            api_key: "secret-key".to_owned(),
            templates: NotifyTemplates::default(),
        };
        assert_eq!(
            endpoint.url(ContactChannel::Email),
            "https://notify.example/v2/notifications/email"
        );
        assert!(!format!("{endpoint:?}").contains("secret-key"));
    }

    #[test]
    fn a_reminder_template_is_the_service_s_own_and_without_one_the_reminder_is_held() {
        let configured = NotifyTemplates {
            sms: Some("0f8e6a52-1111-4c2e-9d3b-7a1e2c3d4e5f".to_owned()),
            email: Some("  ".to_owned()),
        };
        assert_eq!(
            configured.template_id(ContactChannel::Sms),
            Ok("0f8e6a52-1111-4c2e-9d3b-7a1e2c3d4e5f".to_owned())
        );
        // A blank one is none: held, never a placeholder.
        assert_eq!(
            configured.template_id(ContactChannel::Email),
            Err(Held::NoEmailTemplate)
        );
        assert_eq!(configured.still_held(), vec!["no_email_template"]);
        let none = NotifyTemplates::default();
        assert_eq!(
            none.template_id(ContactChannel::Sms),
            Err(Held::NoSmsTemplate)
        );
        assert_eq!(
            none.still_held(),
            vec!["no_sms_template", "no_email_template"]
        );
    }
}
