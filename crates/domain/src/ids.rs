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
