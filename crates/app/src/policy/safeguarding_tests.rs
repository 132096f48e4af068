//! Notes and safeguarding concerns as a table: given a role and the caller's relation to the
//! record, what each command gets (allow, 404 as absent, 403 forbidden), and who reads the risk.

use chrono::DateTime;
use domain::*;
use uuid::Uuid;

use crate::access::Role;
use crate::cases::{Denied, LoadedCase};
use crate::policy::tests::Outcome::{self, *};
use crate::policy::tests::{ME, MY_TEAM, ORG, OTHER_ORG, OTHER_TEAM, SOMEONE, principal};
use crate::policy::{may_close_concern, may_command, may_read_record};

/// How the caller stands to the record: [Mine, MyTeamNotMe, NotMine, OtherOrganisation].
const RELATIONS: [(Uuid, (StaffId, TeamId)); 4] = [
    (ORG, (ME, MY_TEAM)),
    (ORG, (SOMEONE, MY_TEAM)),
    (ORG, (SOMEONE, OTHER_TEAM)),
    (OTHER_ORG, (SOMEONE, OTHER_TEAM)),
];

fn case((organisation, worker): (Uuid, (StaffId, TeamId))) -> LoadedCase {
    let mut case = LoadedCase {
        version: 3,
        organisation_id: Some(organisation),
        ..LoadedCase::default()
    };
    case.state.link_worker = Some(worker);
    case
}

fn outcome(result: Result<(), Denied>) -> Outcome {
    match result {
        Ok(()) => Allow,
        Err(Denied::NotFound) => Absent,
        Err(Denied::Forbidden(_)) => Forbidden,
    }
}

fn raise() -> CaseCommand {
    CaseCommand::RaiseConcern(SafeguardingConcernRaised {
        concern_id: ConcernId(Uuid::from_u128(60)),
        category: "self_neglect".into(),
        details: "no heating".into(),
        told: "safeguarding lead".into(),
        told_at: DateTime::UNIX_EPOCH,
        outcome: None,
    })
}

fn close() -> CaseCommand {
    CaseCommand::CloseConcern(SafeguardingConcernClosed {
        concern_id: ConcernId(Uuid::from_u128(60)),
        reason: "resolved".into(),
    })
}

fn note() -> CaseCommand {
    CaseCommand::AddNote(NoteAdded {
        note_id: NoteId(Uuid::from_u128(61)),
        text: "prefers mornings".into(),
        important: false,
    })
}

#[test]
fn who_writes_notes_raises_closes_concerns_and_reads_the_risk() {
    // (role, command, outcomes over RELATIONS)
    let rows: Vec<(Role, CaseCommand, [Outcome; 4])> = vec![
        (
            Role::LinkWorker,
            note(),
            [Allow, Forbidden, Forbidden, Absent],
        ),
        (Role::TeamLead, note(), [Allow, Allow, Forbidden, Absent]),
        (Role::Auditor, note(), [Forbidden; 4]),
        (
            Role::LinkWorker,
            raise(),
            [Allow, Forbidden, Forbidden, Absent],
        ),
        (Role::TeamLead, raise(), [Allow, Allow, Forbidden, Absent]),
        (Role::Auditor, raise(), [Forbidden; 4]),
        (Role::ReportingAnalyst, raise(), [Forbidden; 4]),
        (Role::Administrator, raise(), [Forbidden; 4]),
        (Role::Referrer, raise(), [Forbidden; 4]),
        // A concern ends as a team lead's decision, never by a link worker alone.
        (Role::LinkWorker, close(), [Forbidden; 4]),
        (Role::TeamLead, close(), [Allow, Allow, Forbidden, Absent]),
        (Role::Auditor, close(), [Forbidden; 4]),
    ];
    for (role, command, expected) in rows {
        for (relation, want) in RELATIONS.into_iter().zip(expected) {
            let got = outcome(may_command(
                &principal(role),
                &case(relation),
                &command,
                false,
            ));
            assert_eq!(got, want, "{role:?} {command:?} on {relation:?}");
        }
    }
    // The risk is on the record: everyone who works the case reads it, auditors too, and
    // another organisation finds nothing.
    for (role, expected) in [
        (Role::LinkWorker, [Allow, Forbidden, Forbidden, Absent]),
        (Role::TeamLead, [Allow, Allow, Forbidden, Absent]),
        (Role::Auditor, [Allow, Allow, Allow, Absent]),
        (Role::ReportingAnalyst, [Forbidden; 4]),
        (Role::Referrer, [Forbidden; 4]),
    ] {
        for (relation, want) in RELATIONS.into_iter().zip(expected) {
            let got = outcome(may_read_record(&principal(role), &case(relation)));
            assert_eq!(got, want, "{role:?} reads {relation:?}");
        }
    }
    assert_eq!(
        outcome(may_close_concern(&principal(Role::TeamLead))),
        Allow
    );
    assert_eq!(
        outcome(may_close_concern(&principal(Role::LinkWorker))),
        Forbidden
    );
}
