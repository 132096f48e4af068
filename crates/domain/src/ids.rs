//! Identifier newtypes: a client id cannot be passed where a service id is meant.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// A client: the person whose journey a stream records. The client's stream id.
    ClientId
);
id!(
    /// A staff member (link worker, team lead, referrer...).
    StaffId
);
id!(
    /// A team of link workers.
    TeamId
);
id!(
    /// A directory service (its stream id).
    ServiceId
);
id!(
    /// One referral of a client.
    ReferralId
);
id!(
    /// One booked appointment.
    AppointmentId
);
id!(
    /// One recorded contact.
    ContactId
);
id!(
    /// One goal.
    GoalId
);
id!(
    /// One assessment.
    AssessmentId
);
id!(
    /// One onward connection.
    ConnectionId
);
id!(
    /// One recorded service gap.
    GapId
);
id!(
    /// One message back to the person's GP.
    GpMessageId
);
id!(
    /// A stored event (the envelope's id).
    EventId
);
id!(
    /// One case note.
    NoteId
);
id!(
    /// One safeguarding concern.
    ConcernId
);

/// An id Casebook derives itself from what it stands for (the first 16 bytes of a SHA-256
/// `digest`, as a UUID of version 8), so that every process, and every replay, gives the same
/// one: the task maker's tasks, a FHIR ServiceRequest's record and referral, a history
/// import's records, an appointment's reminder.
///
/// # Panics
/// When `digest` is shorter than 16 bytes (a SHA-256 digest has 32).
pub fn derived_id(digest: &[u8]) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Whether `id` has the shape of an id Casebook derives itself ([`derived_id`]: version 8).
/// A caller never chooses one for something new (a record, a referral, a task), so that nobody
/// can take such an id before Casebook derives it: another organisation raising a task under
/// the id the task maker would give, which the maker would then count as its own, or making
/// a record under the id a practice's referral will be given.
pub fn is_derived(id: Uuid) -> bool {
    id.get_version_num() == 8
}

/// What a caller is told of an id it chose that [`is_derived`] refuses.
pub const DERIVED_ID_REFUSED: &str =
    "ids of version 8 are those Casebook derives itself: choose a random id (version 4 or 7)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_id_is_version_8_and_random_ids_are_not() {
        let id = derived_id(&[7u8; 32]);
        assert!(is_derived(id));
        assert_eq!(derived_id(&[7u8; 32]), id, "the same digest, the same id");
        assert_ne!(derived_id(&[8u8; 32]), id);
        assert!(!is_derived(Uuid::from_u128(
            0x0192_0000_0000_7000_8000_0000_0000_0001
        )));
        assert!(!is_derived(Uuid::from_u128(
            0x0192_0000_0000_4000_8000_0000_0000_0001
        )));
        assert!(!is_derived(Uuid::nil()));
    }
}
