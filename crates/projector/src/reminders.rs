//! Appointment reminders (issue #21, part 1): the notification outbox's writer.
//!
//! `ReminderOutboxProjection` (`reminder_outbox_v1`) folds each event with the pure
//! [`decide_reminder`] under a rule version of `projections/reminders/`, and writes what it
//! decides to `reminder_outbox` in the same transaction as its checkpoint: a booking writes a
//! pending reminder due `hours_before` the appointment (out of quiet hours); a cancellation,
//! an attendance or a missed appointment withholds it; a correction of the booked time moves
//! it; an erasure withholds every reminder of the person still pending. A reminder's id is
//! derived from the client and the appointment ([`reminder_id`]) and rows are inserted with
//! `ON CONFLICT (message_id) DO NOTHING`, so a rebuild from the start of the log writes (and
//! sends) none again; withholding touches only pending rows, so a replay changes nothing sent.
//! Consent, the channel and the person's phone or email are the dispatcher's to read when the
//! reminder is due (`app::reminders`): nothing personal is written here.

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveTime, Timelike, Utc};
use domain::{CaseEvent, ConsentScope};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::corrected::{Decoded, Fact};
use crate::rules::RulesError;
use crate::runner::{Batch, Projection, ProjectionError};

/// Every reminder rule version this build knows, in order.
const REMINDER_FILES: &[(u32, &str)] =
    &[(1, include_str!("../../../projections/reminders/v1.toml"))];

/// Its name (and checkpoint key).
pub const REMINDER_OUTBOX: &str = "reminder_outbox_v1";

/// The UK wall-clock hours reminders may go out between.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// The first hour a reminder may go (08 for 08:00).
    pub send_from: u32,
    /// The last moment a reminder may go (20 for 20:00).
    pub send_until: u32,
}

/// The consent a reminder needs.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReminderConsent {
    pub scope: ConsentScope,
}

/// One version of the reminder rules.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReminderRules {
    pub version: u32,
    pub description: String,
    pub hours_before: u32,
    pub quiet_hours: QuietHours,
    pub consent: ReminderConsent,
}

impl ReminderRules {
    /// The rules of `version`.
    ///
    /// # Errors
    /// An unknown version, or a file that does not parse or says nonsense.
    pub fn load(version: u32) -> Result<ReminderRules, RulesError> {
        let as_i32 = i32::try_from(version).unwrap_or(i32::MAX);
        let invalid = |reason: String| RulesError::Invalid {
            version: as_i32,
            reason,
        };
        let (_, text) = REMINDER_FILES
            .iter()
            .find(|(v, _)| *v == version)
            .ok_or_else(|| invalid("no reminder rules of this version in this build".to_owned()))?;
        let rules: ReminderRules = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if rules.version != version {
            return Err(invalid(format!("the file says version {}", rules.version)));
        }
        let quiet = rules.quiet_hours;
        if !(quiet.send_from < quiet.send_until && quiet.send_until <= 23) {
            return Err(invalid(
                "quiet hours: send_from comes before send_until, both hours of a day".to_owned(),
            ));
        }
        if rules.hours_before == 0 || rules.hours_before > 24 * 14 {
            return Err(invalid("hours_before: from 1 to 336".to_owned()));
        }
        Ok(rules)
    }

    /// The newest version.
    ///
    /// # Errors
    /// A file that does not parse.
    pub fn latest() -> Result<ReminderRules, RulesError> {
        ReminderRules::load(REMINDER_FILES.last().map_or(1, |(v, _)| *v))
    }

    /// When the reminder of an appointment at `scheduled_for` is due: `hours_before` it, moved
    /// earlier out of quiet hours (a reminder never comes later than the rule says).
    pub fn due_at(&self, scheduled_for: DateTime<Utc>) -> DateTime<Utc> {
        let due = scheduled_for - Duration::hours(i64::from(self.hours_before));
        let local = domain::calendar::local(due);
        let QuietHours {
            send_from,
            send_until,
        } = self.quiet_hours;
        let evening = |day: chrono::NaiveDate| {
            NaiveTime::from_hms_opt(send_until, 0, 0)
                .and_then(|time| domain::calendar::instant(day, time))
        };
        let moved = if local.hour() < send_from {
            local.date().pred_opt().and_then(evening)
        } else if local.time() > NaiveTime::from_hms_opt(send_until, 0, 0).unwrap_or(NaiveTime::MIN)
        {
            evening(local.date())
        } else {
            None
        };
        moved.map_or(due, |at| at.min(due))
    }
}

impl ReminderRules {
    /// When quiet hours that hold at `now` end (`send_from` that morning or the next), or none
    /// when it is not quiet now.
    pub fn quiet_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = domain::calendar::local(now);
        let QuietHours {
            send_from,
            send_until,
        } = self.quiet_hours;
        let morning = |day: chrono::NaiveDate| {
            NaiveTime::from_hms_opt(send_from, 0, 0)
                .and_then(|time| domain::calendar::instant(day, time))
        };
        if local.hour() < send_from {
            morning(local.date())
        } else if local.time() > NaiveTime::from_hms_opt(send_until, 0, 0)? {
            morning(local.date().succ_opt()?)
        } else {
            None
        }
    }
}

/// The id of the reminder of `appointment_id` on `client_id`'s record: the same however often
/// the log is replayed, and distinct per client even if two records used one appointment id.
pub fn reminder_id(client_id: Uuid, appointment_id: Uuid) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(b"casebook appointment reminder\0");
    hash.update(client_id.as_bytes());
    hash.update(appointment_id.as_bytes());
    domain::derived_id(&hash.finalize())
}

/// What an event means for the reminders of its person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReminderChange {
    /// A booking: a reminder, pending until `due_at`.
    Due {
        message_id: Uuid,
        appointment_id: Uuid,
        booked_event_id: Uuid,
        scheduled_for: DateTime<Utc>,
        due_at: DateTime<Utc>,
    },
    /// The appointment is settled: its reminder, if still pending, is not sent.
    Withhold {
        message_id: Uuid,
        reason: &'static str,
    },
    /// The booking was corrected to another time: a pending reminder moves with it.
    Moved {
        booked_event_id: Uuid,
        scheduled_for: DateTime<Utc>,
        due_at: DateTime<Utc>,
    },
    /// The person was erased: nothing pending is sent.
    Erased,
    /// The case closed (the person died, moved away, or support ended): nothing pending is
    /// sent while it stays closed.
    Closed,
    /// The case reopened: what its closure withheld is pending again (and, as every reminder,
    /// decided again when it is sent).
    Reopened,
    /// Consent to be contacted was recorded or withdrawn: a reminder held for want of a
    /// template for the channel the person had chosen is looked at again (the new channel may
    /// have one), and held again, with the reason of now, if not.
    ConsentChanged,
}

/// Folds one event of `client_id`'s record under `rules`. Pure: the same events under the same
/// rules always decide the same reminders.
pub fn decide_reminder(
    client_id: Uuid,
    fact: &Fact,
    rules: &ReminderRules,
) -> Option<ReminderChange> {
    let withhold = |appointment: domain::AppointmentId, reason| ReminderChange::Withhold {
        message_id: reminder_id(client_id, appointment.0),
        reason,
    };
    match &fact.event {
        CaseEvent::AppointmentBooked(e) => Some(ReminderChange::Due {
            message_id: reminder_id(client_id, e.appointment_id.0),
            appointment_id: e.appointment_id.0,
            booked_event_id: fact.event_id,
            scheduled_for: e.scheduled_for,
            due_at: rules.due_at(e.scheduled_for),
        }),
        CaseEvent::AppointmentCancelled(e) => Some(withhold(e.appointment_id, "cancelled")),
        CaseEvent::AppointmentAttended(e) => Some(withhold(e.appointment_id, "attended")),
        CaseEvent::AppointmentNotAttended(e) => Some(withhold(e.appointment_id, "not_attended")),
        CaseEvent::EntryCorrected(e) => {
            let scheduled_for: DateTime<Utc> = e
                .corrected_fields
                .get("scheduled_for")
                .and_then(|v| serde_json::from_value(v.clone()).ok())?;
            Some(ReminderChange::Moved {
                booked_event_id: e.corrects.0,
                scheduled_for,
                due_at: rules.due_at(scheduled_for),
            })
        }
        CaseEvent::ClientErased(_) => Some(ReminderChange::Erased),
        CaseEvent::CaseClosed(_) => Some(ReminderChange::Closed),
        CaseEvent::CaseReopened(_) => Some(ReminderChange::Reopened),
        CaseEvent::ConsentRecorded(_) | CaseEvent::ConsentWithdrawn(_) => {
            Some(ReminderChange::ConsentChanged)
        }
        _ => None,
    }
}

/// Writes the reminders of the log into `reminder_outbox`.
#[derive(Clone, Debug)]
pub struct ReminderOutboxProjection {
    rules: ReminderRules,
}

impl ReminderOutboxProjection {
    /// The projection under the newest reminder rules.
    ///
    /// # Errors
    /// A rule file that does not parse.
    pub fn new() -> Result<ReminderOutboxProjection, RulesError> {
        Ok(ReminderOutboxProjection {
            rules: ReminderRules::latest()?,
        })
    }
}

#[async_trait]
impl Projection for ReminderOutboxProjection {
    fn name(&self) -> &str {
        REMINDER_OUTBOX
    }

    /// Keeps every reminder (it may have been sent): a rebuild decides the same ones under the
    /// same ids, which are not written twice.
    async fn reset(&self, _tx: &tokio_postgres::Transaction<'_>) -> Result<(), ProjectionError> {
        Ok(())
    }

    async fn apply_decoded(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        batch: &Batch<'_>,
    ) -> Result<(), ProjectionError> {
        self.write(tx, batch.decoded).await
    }
}

impl ReminderOutboxProjection {
    async fn write(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        decoded: &Decoded,
    ) -> Result<(), ProjectionError> {
        let rules_version = i32::try_from(self.rules.version).unwrap_or(i32::MAX);
        for client in decoded.clients(false)? {
            for fact in client.facts {
                let Some(change) = decide_reminder(client.client_id, fact, &self.rules) else {
                    continue;
                };
                match change {
                    ReminderChange::Due {
                        message_id,
                        appointment_id,
                        booked_event_id,
                        scheduled_for,
                        due_at,
                    } => {
                        tx.execute(
                            "INSERT INTO reminder_outbox (message_id, organisation_id, client_id, \
                             appointment_id, booked_event_id, scheduled_for, rules_version, status, \
                             next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8) \
                             ON CONFLICT (message_id) DO NOTHING",
                            &[
                                &message_id,
                                &fact.organisation_id,
                                &client.client_id,
                                &appointment_id,
                                &booked_event_id,
                                &scheduled_for,
                                &rules_version,
                                &due_at,
                            ],
                        )
                        .await?;
                    }
                    ReminderChange::Withhold { message_id, reason } => {
                        tx.execute(
                            "UPDATE reminder_outbox SET status = 'withheld', withheld_reason = $2, \
                             leased_until = NULL, lease_holder = NULL \
                             WHERE message_id = $1 AND status = 'pending'",
                            &[&message_id, &reason],
                        )
                        .await?;
                    }
                    ReminderChange::Moved {
                        booked_event_id,
                        scheduled_for,
                        due_at,
                    } => {
                        tx.execute(
                            "UPDATE reminder_outbox SET scheduled_for = $3, next_attempt_at = $4 \
                             WHERE client_id = $1 AND booked_event_id = $2 AND status = 'pending' \
                             AND attempts = 0",
                            &[&client.client_id, &booked_event_id, &scheduled_for, &due_at],
                        )
                        .await?;
                    }
                    ReminderChange::Closed => {
                        tx.execute(
                            // Not one a dispatcher holds: it may be posting it now, and its
                            // settling needs the lease (a reopening would otherwise make a
                            // delivered reminder pending again). The dispatcher reads the
                            // closure itself when it sends.
                            "UPDATE reminder_outbox SET status = 'withheld', \
                             withheld_reason = 'case_closed' \
                             WHERE client_id = $1 AND status = 'pending' AND lease_holder IS NULL",
                            &[&client.client_id],
                        )
                        .await?;
                    }
                    ReminderChange::Reopened => {
                        tx.execute(
                            "UPDATE reminder_outbox SET status = 'pending', withheld_reason = NULL \
                             WHERE client_id = $1 AND status = 'withheld' \
                             AND withheld_reason = 'case_closed'",
                            &[&client.client_id],
                        )
                        .await?;
                    }
                    ReminderChange::ConsentChanged => {
                        tx.execute(
                            "UPDATE reminder_outbox SET held_reason = NULL \
                             WHERE client_id = $1 AND status = 'pending' \
                             AND held_reason IS NOT NULL",
                            &[&client.client_id],
                        )
                        .await?;
                    }
                    ReminderChange::Erased => {
                        tx.execute(
                            "UPDATE reminder_outbox SET status = 'withheld', withheld_reason = 'erased', \
                             leased_until = NULL, lease_holder = NULL \
                             WHERE client_id = $1 AND status IN ('pending', 'dead')",
                            &[&client.client_id],
                        )
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{
        AppointmentBooked, AppointmentCancelled, AppointmentId, CancelledBy, ContactMode,
    };

    fn rules() -> ReminderRules {
        ReminderRules::load(1).expect("reminder rules v1")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("a UTC instant")
    }

    fn fact(event: CaseEvent) -> Fact {
        Fact {
            event_id: Uuid::from_u128(7),
            stream_version: 3,
            organisation_id: Uuid::nil(),
            occurred_at: utc("2026-03-01T10:00:00Z"),
            recorded_at: utc("2026-03-01T10:00:00Z"),
            recorded_by: crate::corrected::RecordedBy::Other,
            event,
        }
    }

    #[test]
    fn a_reminder_is_due_a_day_before_and_never_in_quiet_hours() {
        let rules = rules();
        // Winter (GMT): 14:00 on Tuesday, reminded 14:00 on Monday.
        assert_eq!(
            rules.due_at(utc("2026-03-03T14:00:00Z")),
            utc("2026-03-02T14:00:00Z")
        );
        // 07:30 wall clock is quiet: moved to 20:00 the evening before.
        assert_eq!(
            rules.due_at(utc("2026-03-03T07:30:00Z")),
            utc("2026-03-01T20:00:00Z")
        );
        // 21:00 is quiet: moved back to 20:00 the same evening.
        assert_eq!(
            rules.due_at(utc("2026-03-03T21:00:00Z")),
            utc("2026-03-02T20:00:00Z")
        );
        // Summer (BST): 09:30 wall clock is 08:30 UTC, allowed as it is; 07:30 BST is not.
        assert_eq!(
            rules.due_at(utc("2026-07-08T08:30:00Z")),
            utc("2026-07-07T08:30:00Z")
        );
        assert_eq!(
            rules.due_at(utc("2026-07-08T06:30:00Z")),
            utc("2026-07-06T19:00:00Z")
        );
    }

    #[test]
    fn quiet_hours_end_at_eight_on_the_uk_wall_clock() {
        let rules = rules();
        assert_eq!(rules.quiet_until(utc("2026-03-02T12:00:00Z")), None);
        assert_eq!(rules.quiet_until(utc("2026-03-02T20:00:00Z")), None);
        assert_eq!(
            rules.quiet_until(utc("2026-03-02T20:01:00Z")),
            Some(utc("2026-03-03T08:00:00Z"))
        );
        assert_eq!(
            rules.quiet_until(utc("2026-03-03T06:00:00Z")),
            Some(utc("2026-03-03T08:00:00Z"))
        );
        // In summer 08:00 BST is 07:00 UTC; 07:30 UTC is 08:30 BST, not quiet.
        assert_eq!(
            rules.quiet_until(utc("2026-07-08T06:00:00Z")),
            Some(utc("2026-07-08T07:00:00Z"))
        );
        assert_eq!(rules.quiet_until(utc("2026-07-08T07:30:00Z")), None);
    }

    #[test]
    fn a_reminder_s_id_is_the_same_on_replay_and_distinct_per_client() {
        let (a, b, appointment) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        assert_eq!(reminder_id(a, appointment), reminder_id(a, appointment));
        assert_ne!(reminder_id(a, appointment), reminder_id(b, appointment));
        assert_ne!(reminder_id(a, appointment), appointment);
    }

    #[test]
    fn bookings_write_and_settlements_withhold() {
        let rules = rules();
        let client = Uuid::from_u128(9);
        let appointment = AppointmentId(Uuid::from_u128(10));
        let booked = decide_reminder(
            client,
            &fact(CaseEvent::AppointmentBooked(AppointmentBooked {
                appointment_id: appointment,
                scheduled_for: utc("2026-03-03T14:00:00Z"),
                mode: ContactMode::FaceToFace,
            })),
            &rules,
        );
        assert_eq!(
            booked,
            Some(ReminderChange::Due {
                message_id: reminder_id(client, appointment.0),
                appointment_id: appointment.0,
                booked_event_id: Uuid::from_u128(7),
                scheduled_for: utc("2026-03-03T14:00:00Z"),
                due_at: utc("2026-03-02T14:00:00Z"),
            })
        );
        let cancelled = decide_reminder(
            client,
            &fact(CaseEvent::AppointmentCancelled(AppointmentCancelled {
                appointment_id: appointment,
                cancelled_by: CancelledBy::Client,
                note: None,
            })),
            &rules,
        );
        assert_eq!(
            cancelled,
            Some(ReminderChange::Withhold {
                message_id: reminder_id(client, appointment.0),
                reason: "cancelled",
            })
        );
        let erased = decide_reminder(
            client,
            &fact(CaseEvent::ClientErased(domain::ClientErased {
                reason: "request".to_owned(),
            })),
            &rules,
        );
        assert_eq!(erased, Some(ReminderChange::Erased));
        // A closure withholds what is pending; a reopening brings it back.
        let closed = decide_reminder(
            client,
            &fact(CaseEvent::CaseClosed(domain::CaseClosed {
                reason: domain::ClosureReason::Deceased,
                note: None,
            })),
            &rules,
        );
        assert_eq!(closed, Some(ReminderChange::Closed));
        let reopened = decide_reminder(
            client,
            &fact(CaseEvent::CaseReopened(domain::CaseReopened { note: None })),
            &rules,
        );
        assert_eq!(reopened, Some(ReminderChange::Reopened));
    }
}
