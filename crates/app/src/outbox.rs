//! What the two outboxes (messages to GP practices, `gp_outbox`; appointment reminders,
//! `reminder_outbox`) share: a dispatcher settles an attempt the same way (the row's status and
//! the attempt in one transaction, only while the dispatcher holds the lease), an
//! administrator's list of either is a read of each person on it (written to the read audit
//! first), and a dead letter is replayed the same way (sent again from its first attempt, the
//! replay kept with who asked). What differs (the rows' columns, their order, the record view
//! audited) is said once per outbox: [`Outbox`] and [`Listed`].

use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use chrono::{DateTime, Utc};
use eventstore::EventStore;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::access::Principal;
use crate::gp_outbox::{DispatchReport, DispatchSettings};
use crate::records::{ReadContext, RecordView, write_reads};
use crate::{AppError, Clock, policy};

/// An outbox's tables, what its rows are called, and the view its list is audited as.
#[derive(Clone, Copy, Debug)]
pub struct Outbox {
    pub(crate) table: &'static str,
    pub(crate) attempts: &'static str,
    /// `message`, `reminder`: for the words of a refusal.
    pub(crate) noun: &'static str,
    /// Whether a row keeps the channel it was delivered by (`channel`).
    pub(crate) channel: bool,
    /// What an administrator's list of it is written to the read audit as.
    pub(crate) view: RecordView,
}

/// The messages back to GP practices.
pub(crate) const GP_MESSAGES: Outbox = Outbox {
    table: "gp_outbox",
    attempts: "gp_outbox_attempts",
    noun: "message",
    channel: false,
    view: RecordView::GpMessages,
};

/// The appointment reminders.
pub(crate) const REMINDERS: Outbox = Outbox {
    table: "reminder_outbox",
    attempts: "reminder_outbox_attempts",
    noun: "reminder",
    channel: true,
    view: RecordView::Reminders,
};

/// How one attempt at a leased row ended, as its dispatcher saw it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Attempted<'a> {
    /// Delivered, with the receiver's status (and the channel, where the outbox keeps it): done.
    Delivered {
        status: u16,
        channel: Option<&'a str>,
    },
    /// Not sent, with why: done.
    Withheld(&'static str),
    /// Not delivered: tried again after its backoff, or dead-lettered after the last attempt
    /// (at once when `permanent`: the same request cannot succeed).
    Failed {
        status: Option<i32>,
        error: &'a str,
        permanent: bool,
    },
}

/// A dispatcher's hold on an outbox: the store, the clock, its pace, and the id its leases are
/// taken under. Each dispatcher leases and sends in its own way; both settle an attempt here.
#[derive(Clone)]
pub(crate) struct Dispatch {
    pub store: EventStore,
    pub clock: Clock,
    pub settings: DispatchSettings,
    /// This dispatcher's leases.
    pub holder: Uuid,
    pub outbox: Outbox,
}

impl Dispatch {
    /// A new dispatcher's hold on `outbox` (leases under a fresh id).
    pub fn new(
        store: EventStore,
        clock: Clock,
        settings: DispatchSettings,
        outbox: Outbox,
    ) -> Dispatch {
        Dispatch {
            store,
            clock,
            settings,
            holder: Uuid::new_v4(),
            outbox,
        }
    }

    /// When a lease taken now ends.
    pub fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.settings.lease).unwrap_or_default()
    }

    /// Settles `attempt` at `message_id`, in one transaction, if this dispatcher still leases
    /// it: the row's status, attempts and lease (a failure waits its backoff, or is dead after
    /// the last attempt or a permanent failure), and the attempt in the outbox's attempts table
    /// (its outcome, HTTP status and detail, and the dispatcher); and counts it in `report`.
    /// Answers whether the lease was still this dispatcher's: when it was not, nothing is
    /// written (another dispatcher has the row).
    ///
    /// # Errors
    /// A database failure.
    pub async fn settle(
        &self,
        message_id: Uuid,
        attempt: i32,
        attempted: Attempted<'_>,
        report: &mut DispatchReport,
    ) -> Result<bool, AppError> {
        let now = self.clock.now();
        let outbox = self.outbox;
        let holder = self.holder;
        let dead = matches!(attempted, Attempted::Failed { permanent, .. }
            if permanent || attempt >= self.settings.max_attempts);
        // What the attempts table says of it; for a row done, its outcome and why are the row's.
        let (outcome, status, detail) = match attempted {
            Attempted::Delivered { status, .. } => ("delivered", Some(i32::from(status)), None),
            Attempted::Withheld(reason) => ("withheld", None, Some(reason)),
            Attempted::Failed { status, error, .. } => {
                (if dead { "dead" } else { "failed" }, status, Some(error))
            }
        };
        match attempted {
            Attempted::Delivered { .. } => report.delivered += 1,
            Attempted::Withheld(_) => report.withheld += 1,
            Attempted::Failed { .. } if dead => report.dead_lettered += 1,
            Attempted::Failed { .. } => report.failed += 1,
        }
        let mut client = self.store.pool().get().await?;
        let tx = client.transaction().await?;
        let updated = match attempted {
            Attempted::Failed { error, .. } => {
                let next_attempt_at = self.settings.next_attempt_at(now, attempt);
                tx.execute(
                    &format!(
                        "UPDATE {} SET status = CASE WHEN $3 THEN 'dead' ELSE 'pending' END, \
                         attempts = $4, next_attempt_at = $5, last_error = $6, \
                         leased_until = NULL, lease_holder = NULL \
                         WHERE message_id = $1 AND lease_holder = $2 AND status = 'pending'",
                        outbox.table
                    ),
                    &[
                        &message_id,
                        &holder,
                        &dead,
                        &attempt,
                        &next_attempt_at,
                        &error,
                    ],
                )
                .await?
            }
            Attempted::Delivered { .. } | Attempted::Withheld(_) => {
                let channel = match attempted {
                    Attempted::Delivered { channel, .. } => channel,
                    _ => None,
                };
                let row: [&(dyn ToSql + Sync); 6] =
                    [&message_id, &holder, &outcome, &attempt, &now, &detail];
                let mut params = row.to_vec();
                if outbox.channel {
                    params.push(&channel);
                }
                tx.execute(
                    &format!(
                        "UPDATE {} SET status = $3, attempts = $4, delivered_at = \
                         CASE WHEN $3 = 'delivered' THEN $5::timestamptz END, \
                         withheld_reason = coalesce($6, withheld_reason),{} \
                         leased_until = NULL, lease_holder = NULL, last_error = NULL \
                         WHERE message_id = $1 AND lease_holder = $2 AND status = 'pending'",
                        outbox.table,
                        if outbox.channel { " channel = $7," } else { "" }
                    ),
                    &params,
                )
                .await?
            }
        };
        if updated != 1 {
            return Ok(false);
        }
        tx.execute(
            &format!(
                "INSERT INTO {} (message_id, attempt, at, outcome, http_status, detail, dispatcher) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                outbox.attempts
            ),
            &[
                &message_id,
                &attempt,
                &now,
                &outcome,
                &status,
                &detail,
                &holder,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Runs `pass` every `every` until `stopped` says so; a failed pass is logged (as `dispatcher`'s:
/// `the reminder dispatcher`) and the next one tries again.
pub(crate) async fn run_every<F, Fut>(
    dispatcher: &'static str,
    every: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    pass: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<DispatchReport, AppError>>,
{
    loop {
        if *stopped.borrow() {
            return;
        }
        if let Err(e) = pass().await {
            tracing::warn!(error = %e, "{dispatcher} failed; it runs again at its next turn");
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// A row of an outbox as an administrator sees it (no personal data: the person is a client
/// id), read by [`OutboxAdmin::list`].
pub trait Listed: Sized {
    /// The outbox it is a row of.
    const OUTBOX: Outbox;
    /// The columns [`Listed::from_row`] reads, in its order; `client_id` second.
    const COLUMNS: &'static str;
    /// The list's order.
    const ORDER: &'static str;
    /// The entry of a row of [`Listed::COLUMNS`].
    ///
    /// # Errors
    /// A stored value this build does not know (a status).
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, AppError>;
}

/// Where a row of either outbox stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// Delivered: done.
    Delivered,
    /// Given up on after its last attempt, or a failure no retry can mend: an administrator
    /// may replay it.
    Dead,
    /// Not sent, with why (`withheld_reason`): done.
    Withheld,
}

impl OutboxStatus {
    /// Every status, in the order declared.
    pub const ALL: [OutboxStatus; 4] = [
        OutboxStatus::Pending,
        OutboxStatus::Delivered,
        OutboxStatus::Dead,
        OutboxStatus::Withheld,
    ];

    /// The stored name, as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Dead => "dead",
            OutboxStatus::Withheld => "withheld",
        }
    }

    /// The status of a stored row.
    ///
    /// # Errors
    /// [`AppError::Unexpected`] for a status this build does not know.
    pub(crate) fn of_row(row: &tokio_postgres::Row, column: usize) -> Result<Self, AppError> {
        let stored: &str = row.get(column);
        stored.parse().map_err(|_| {
            AppError::Unexpected(anyhow::anyhow!(
                "outbox status: {stored:?} is not an outbox status"
            ))
        })
    }
}

impl std::str::FromStr for OutboxStatus {
    type Err = AppError;

    /// # Errors
    /// [`AppError::BadInput`] naming `status`.
    fn from_str(s: &str) -> Result<OutboxStatus, AppError> {
        crate::by_code(&OutboxStatus::ALL, s, OutboxStatus::as_str).ok_or_else(|| {
            AppError::bad_input("status", "one of pending, delivered, dead, withheld")
        })
    }
}

/// An administrator's view of an outbox: its rows by status, and replaying a dead letter.
pub struct OutboxAdmin<E> {
    store: EventStore,
    clock: Clock,
    entry: PhantomData<fn() -> E>,
}

impl<E> Clone for OutboxAdmin<E> {
    fn clone(&self) -> Self {
        OutboxAdmin {
            store: self.store.clone(),
            clock: self.clock.clone(),
            entry: PhantomData,
        }
    }
}

impl<E: Listed> OutboxAdmin<E> {
    /// Over `store`, timed by `clock`.
    pub fn new(store: EventStore, clock: Clock) -> OutboxAdmin<E> {
        OutboxAdmin {
            store,
            clock,
            entry: PhantomData,
        }
    }

    pub(crate) fn store(&self) -> &EventStore {
        &self.store
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The caller's organisation's rows of a status (`dead` for the dead letters), in the
    /// outbox's order, at most `limit` (1 to 500) (administrators). Each person listed is
    /// written to the read audit before the list is answered.
    ///
    /// # Errors
    /// [`AppError::Denied`]; a database failure.
    pub async fn list(
        &self,
        principal: &Principal,
        status: OutboxStatus,
        limit: i64,
        read: &ReadContext,
    ) -> Result<Vec<E>, AppError> {
        policy::may_administer(principal)?;
        let client = self.store.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM {} WHERE organisation_id = $1 AND status = $2 \
                     ORDER BY {} LIMIT $3",
                    E::COLUMNS,
                    E::OUTBOX.table,
                    E::ORDER
                ),
                &[
                    &principal.organisation_id,
                    &status.as_str(),
                    &limit.clamp(1, 500),
                ],
            )
            .await?;
        // Each person listed, once, under the caller's organisation (the rows').
        let mut people: Vec<Uuid> = rows.iter().map(|row| row.get("client_id")).collect();
        people.sort_unstable();
        people.dedup();
        let reads: Vec<(Uuid, Uuid)> = people
            .into_iter()
            .map(|client_id| (principal.organisation_id, client_id))
            .collect();
        write_reads(&**client, principal, &reads, E::OUTBOX.view, read).await?;
        rows.iter().map(E::from_row).collect()
    }

    /// Sends a dead letter of the caller's organisation again from its first attempt
    /// (administrators), recording the replay with who asked. Whether it goes is decided again
    /// when it is sent.
    ///
    /// # Errors
    /// [`AppError::Denied`]; [`AppError::NotFound`] for no dead letter of that id in the
    /// caller's organisation.
    pub async fn replay(&self, principal: &Principal, message_id: Uuid) -> Result<(), AppError> {
        policy::may_administer(principal)?;
        let outbox = E::OUTBOX;
        let now = self.clock.now();
        let mut client = self.store.pool().get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                &format!(
                    "UPDATE {} SET status = 'pending', attempts = 0, next_attempt_at = $3, \
                     leased_until = NULL, lease_holder = NULL \
                     WHERE message_id = $1 AND organisation_id = $2 AND status = 'dead' RETURNING attempts",
                    outbox.table
                ),
                &[&message_id, &principal.organisation_id, &now],
            )
            .await?;
        if row.is_none() {
            return Err(AppError::NotFound(format!(
                "no dead-lettered {} {message_id}",
                outbox.noun
            )));
        }
        tx.execute(
            &format!(
                "INSERT INTO {} (message_id, attempt, at, outcome, staff_id) \
                 VALUES ($1, 0, $2, 'replayed', $3)",
                outbox.attempts
            ),
            &[&message_id, &now, &principal.staff_id.0],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
