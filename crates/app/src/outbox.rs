//! What the two outboxes (messages to GP practices, `gp_outbox`; appointment reminders,
//! `reminder_outbox`) share for administrators: an administrator's list of either is a read of
//! each person on it (written to the read audit first), and a dead letter is replayed the same
//! way (sent again from its first attempt, the replay kept with who asked).

use eventstore::EventStore;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::access::Principal;
use crate::records::{ReadContext, ReadPurpose, RecordView};
use crate::{AppError, Clock, policy};

/// An outbox's tables and what its rows are called.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outbox {
    pub table: &'static str,
    pub attempts: &'static str,
    /// `message`, `reminder`: for the words of a refusal.
    pub noun: &'static str,
}

/// The messages back to GP practices.
pub(crate) const GP_MESSAGES: Outbox = Outbox {
    table: "gp_outbox",
    attempts: "gp_outbox_attempts",
    noun: "message",
};

/// The appointment reminders.
pub(crate) const REMINDERS: Outbox = Outbox {
    table: "reminder_outbox",
    attempts: "reminder_outbox_attempts",
    noun: "reminder",
};

/// Writes one read per person listed to the read audit (under the caller's organisation, which
/// is the records'), before the list is answered.
///
/// # Errors
/// A database failure.
pub(crate) async fn audit_listed(
    client: &impl GenericClient,
    principal: &Principal,
    mut people: Vec<Uuid>,
    view: RecordView,
    read: &ReadContext,
) -> Result<(), AppError> {
    people.sort_unstable();
    people.dedup();
    if people.is_empty() {
        return Ok(());
    }
    client
        .execute(
            "INSERT INTO record_reads (organisation_id, client_id, staff_id, role, view, purpose_code, request_id) \
             SELECT $1, client_id, $3, $4, $5, $6, $7 FROM unnest($2::uuid[]) AS shown(client_id)",
            &[
                &principal.organisation_id,
                &people,
                &principal.staff_id.0,
                &principal.role.as_str(),
                &view.code(),
                &read.purpose.map(ReadPurpose::code),
                &read.request_id,
            ],
        )
        .await?;
    Ok(())
}

/// Sends a dead letter of the caller's organisation again from its first attempt
/// (administrators), recording the replay with who asked.
///
/// # Errors
/// [`AppError::Denied`]; [`AppError::NotFound`] for no dead letter of that id in the caller's
/// organisation.
pub(crate) async fn replay(
    store: &EventStore,
    clock: &Clock,
    outbox: Outbox,
    principal: &Principal,
    message_id: Uuid,
) -> Result<(), AppError> {
    policy::may_administer(principal)?;
    let now = clock.now();
    let mut client = store.pool().get().await?;
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
