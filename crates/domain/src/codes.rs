//! Coded values: the vocabularies services record and report by. Each serialises as a stable
//! snake_case string that is part of the event encoding.

use serde::{Deserialize, Serialize};

/// The stable code a coded value serialises as (`self_referral`, `waiting_list`...); empty for
/// a value that is not a plain string.
pub fn code<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

macro_rules! coded {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Words for people.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }
    };
}
pub(crate) use coded;

coded!(
    /// Who referred the person.
    ReferralSource {
        Gp => "GP",
        PracticeStaff => "practice staff or care navigator",
        OtherHealthProfessional => "other health professional",
        SocialCare => "social care",
        Hospital => "hospital",
        VoluntarySector => "voluntary sector",
        CommunityConnector => "community connector",
        SelfReferral => "self-referral",
    }
);

coded!(
    /// A need or concern, used both for referral reasons and for needs, connections and gaps.
    NeedDomain {
        MentalWellbeing => "mental wellbeing",
        LonelinessIsolation => "loneliness or isolation",
        MoneyBenefitsDebt => "money, benefits or debt",
        Housing => "housing",
        Employment => "employment",
        PhysicalActivity => "physical activity",
        LongTermCondition => "long-term condition",
        CarerSupport => "carer support",
        Bereavement => "bereavement",
        SubstanceUse => "substance use",
        Other => "other",
    }
);

coded!(
    /// How soon the referrer asks for contact.
    Urgency {
        Routine => "routine",
        Soon => "soon",
        Urgent => "urgent",
    }
);

coded!(
    /// Why a referral was declined.
    DeclineReason {
        ClientDeclined => "the person declined",
        NotEligible => "not eligible",
        UnableToContact => "unable to contact",
        NeedsClinicalService => "needs a clinical service",
        Other => "other",
    }
);

coded!(
    /// How a contact took place.
    ContactMode {
        FaceToFace => "face to face",
        Phone => "phone",
        Video => "video",
        HomeVisit => "home visit",
        Group => "group",
    }
);

coded!(
    /// When in the journey an assessment was taken.
    Timepoint {
        Baseline => "baseline",
        Review => "review",
        FollowUp => "follow-up",
        Discharge => "discharge",
    }
);

coded!(
    /// Who completed an assessment.
    AdministrationMode {
        SelfCompleted => "self-completed",
        Assisted => "assisted",
        Proxy => "proxy",
    }
);

coded!(
    /// How the person was connected onward.
    ConnectionKind {
        Signposted => "signposted",
        Referred => "referred",
        WarmHandover => "warm handover",
        Accompanied => "accompanied",
    }
);

coded!(
    /// What came of an onward connection.
    ConnectionOutcome {
        Attended => "attended",
        Engaged => "engaged",
        NotTakenUp => "not taken up",
        WaitingList => "on a waiting list",
        NotEligible => "not eligible",
        ServiceFull => "service full",
        Declined => "declined",
    }
);

coded!(
    /// Why no service could meet a need.
    GapReason {
        NoServiceExists => "no service exists",
        WaitingListTooLong => "waiting list too long",
        NotAccessible => "not accessible",
        Cost => "cost",
        Eligibility => "eligibility",
        Transport => "transport",
        Language => "language",
    }
);

coded!(
    /// Why a case was closed.
    ClosureReason {
        GoalsMet => "goals met",
        ConnectedOnward => "connected onward",
        ClientWithdrew => "the person withdrew",
        Disengaged => "disengaged",
        MovedAway => "moved away",
        Deceased => "deceased",
        Other => "other",
    }
);

coded!(
    /// What a consent covers.
    ConsentScope {
        ShareWithGp => "share with the GP",
        ShareWithOnwardServices => "share with onward services",
        Evaluation => "use for evaluation",
        /// To be sent reminders of appointments, by the channel the consent names.
        ContactForReminders => "contact for reminders",
    }
);

coded!(
    /// How the person prefers to be contacted with reminders.
    ContactChannel {
        Sms => "text message",
        Email => "email",
    }
);

coded!(
    /// How far a goal has come.
    GoalProgress {
        NotStarted => "not started",
        SomeProgress => "some progress",
        Achieved => "achieved",
        NoLongerRelevant => "no longer relevant",
    }
);

coded!(
    /// Why a case moved from one link worker to another.
    TransferReason {
        Capacity => "caseload capacity",
        StaffLeft => "staff member left",
        ClientRequest => "the person asked",
        Specialism => "better matched elsewhere",
        Other => "other",
    }
);
