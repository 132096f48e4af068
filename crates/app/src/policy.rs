//! Who may do what to which record: pure rules over the caller and the loaded record.
//!
//! Nothing crosses organisations: another organisation's record is answered as absent (404),
//! so its existence is not revealed. Within the organisation, a refusal is a 403 saying why.

use domain::{CaseCommand, StaffId, TeamId};
use uuid::Uuid;

use crate::access::{Principal, Role};
use crate::cases::{Denied, LoadedCase};

fn forbidden(why: impl Into<String>) -> Denied {
    Denied::Forbidden(why.into())
}

/// The record must be of the caller's organisation (or not exist yet).
fn same_organisation(principal: &Principal, case: &LoadedCase) -> Result<(), Denied> {
    match case.organisation_id {
        Some(organisation) if organisation != principal.organisation_id => Err(Denied::NotFound),
        _ => Ok(()),
    }
}

/// Whether the caller works this case: its assigned link worker, or a team lead of its team
/// (or of any team while it is unassigned, as at triage).
fn works_case(principal: &Principal, case: &LoadedCase) -> bool {
    let assigned: Option<(StaffId, TeamId)> = case.state.link_worker;
    match principal.role {
        Role::LinkWorker => assigned.is_some_and(|(worker, _)| worker == principal.staff_id),
        Role::TeamLead => match assigned {
            None => true,
            Some((_, team)) => Some(team) == principal.team_id,
        },
        _ => false,
    }
}

fn not_your_case(principal: &Principal) -> Denied {
    match principal.role {
        Role::LinkWorker => forbidden("this case is not assigned to you"),
        Role::TeamLead => forbidden("this case belongs to another team"),
        role => forbidden(format!("a {role} cannot change client records")),
    }
}

/// May the caller carry out `command` on this record?
///
/// In order: a role that can never do this is refused (403); another organisation's record is
/// answered as absent (404); then the case must be the caller's to work (403).
///
/// # Errors
/// [`Denied::NotFound`] for another organisation's record, [`Denied::Forbidden`] otherwise.
pub fn may_command(
    principal: &Principal,
    case: &LoadedCase,
    command: &CaseCommand,
    replay: bool,
) -> Result<(), Denied> {
    if matches!(command, CaseCommand::EraseClient(_)) {
        // Erasure is an administrator's, on any record of their organisation.
        if principal.role != Role::Administrator {
            return Err(forbidden("only an administrator erases personal data"));
        }
        same_organisation(principal, case)?;
        return if case.exists() {
            Ok(())
        } else {
            Err(Denied::NotFound)
        };
    }
    let intake = matches!(command, CaseCommand::Intake { .. });
    let triage = matches!(
        command,
        CaseCommand::AssignLinkWorker(_) | CaseCommand::TransferCase(_)
    );
    match principal.role {
        Role::Auditor | Role::ReportingAnalyst | Role::Administrator => {
            return Err(not_your_case(principal));
        }
        Role::Referrer if !intake => {
            return Err(forbidden("a referrer can only submit referrals"));
        }
        Role::LinkWorker if triage => {
            return Err(forbidden("only a team lead assigns or transfers cases"));
        }
        _ => {}
    }
    same_organisation(principal, case)?;
    if !case.exists() && !intake {
        return Err(Denied::NotFound);
    }
    if replay {
        return Ok(());
    }
    match command {
        CaseCommand::Intake { client, .. } => match principal.role {
            Role::Referrer if case.exists() || client.is_none() => Err(forbidden(
                "a referrer refers people new to the service; the service links repeat referrals",
            )),
            // Link workers take self-referrals; a known client's new referral goes to whoever
            // works their case.
            Role::LinkWorker | Role::TeamLead
                if case.exists() && case.state.link_worker.is_some() =>
            {
                if works_case(principal, case) {
                    Ok(())
                } else {
                    Err(not_your_case(principal))
                }
            }
            _ => Ok(()),
        },
        _ if works_case(principal, case) => Ok(()),
        _ => Err(not_your_case(principal)),
    }
}

/// May the caller read this client's record or journey? Caseworkers of the case and auditors.
///
/// # Errors
/// [`Denied::Forbidden`] for a role that never reads records, [`Denied::NotFound`] for no
/// record or another organisation's, [`Denied::Forbidden`] for a case not the caller's.
pub fn may_read_record(principal: &Principal, case: &LoadedCase) -> Result<(), Denied> {
    if !matches!(
        principal.role,
        Role::Auditor | Role::LinkWorker | Role::TeamLead
    ) {
        return Err(forbidden(format!(
            "a {} cannot read client records",
            principal.role
        )));
    }
    if !case.exists() {
        return Err(Denied::NotFound);
    }
    same_organisation(principal, case)?;
    match principal.role {
        Role::Auditor => Ok(()),
        _ if works_case(principal, case) => Ok(()),
        _ => Err(not_your_case(principal)),
    }
}

/// May the caller see the status of one referral? Its referrer, and whoever may read the record.
///
/// # Errors
/// As [`may_read_record`].
pub fn may_read_referral(
    principal: &Principal,
    case: &LoadedCase,
    referral_id: domain::ReferralId,
) -> Result<(), Denied> {
    if principal.role == Role::Referrer {
        if !case.exists() {
            return Err(Denied::NotFound);
        }
        same_organisation(principal, case)?;
        return match case.referred_by.get(&referral_id) {
            Some(referrer) if *referrer == principal.staff_id.0 => Ok(()),
            _ => Err(Denied::NotFound),
        };
    }
    may_read_record(principal, case)
}

/// May the caller see who read this client's record? Auditors of its organisation.
///
/// # Errors
/// [`Denied::Forbidden`] for any other role; as [`may_read_record`].
pub fn may_read_audit(principal: &Principal, case: &LoadedCase) -> Result<(), Denied> {
    require(principal, &[Role::Auditor], "the read audit")?;
    may_read_record(principal, case)
}

/// Whose cases a caseload shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseloadScope {
    /// A link worker's own cases.
    Own(Uuid),
    /// A team lead's team (`None`: a lead of no team sees only unassigned work), optionally
    /// one link worker of it.
    Team {
        team: Option<Uuid>,
        link_worker: Option<Uuid>,
    },
}

/// Whose caseload may the caller see, asking for `link_worker_id`'s? A link worker their own;
/// a team lead their team's, or one link worker of it.
///
/// # Errors
/// [`Denied::Forbidden`] for any other role, and for a link worker asking for someone else's.
pub fn may_read_caseload(
    principal: &Principal,
    link_worker_id: Option<Uuid>,
) -> Result<CaseloadScope, Denied> {
    require(principal, &[Role::LinkWorker, Role::TeamLead], "a caseload")?;
    match principal.role {
        Role::LinkWorker if link_worker_id.is_some_and(|id| id != principal.staff_id.0) => {
            Err(forbidden("a link worker sees their own caseload"))
        }
        Role::LinkWorker => Ok(CaseloadScope::Own(principal.staff_id.0)),
        _ => Ok(CaseloadScope::Team {
            team: principal.team_id.map(|t| t.0),
            link_worker: link_worker_id,
        }),
    }
}

/// May the caller see team `team_id`'s `what` (caseload, workload)? Its own team lead only.
/// `team_in_organisation` says whether the team is one of the caller's organisation, when
/// that has been looked up: another team of it is 403, anything else 404.
///
/// # Errors
/// [`Denied::Forbidden`] for another role or another team of the organisation;
/// [`Denied::NotFound`] otherwise (ask again with `team_in_organisation` to tell them apart).
pub fn may_read_team(
    principal: &Principal,
    team_id: Uuid,
    team_in_organisation: Option<bool>,
    what: &str,
) -> Result<(), Denied> {
    require(principal, &[Role::TeamLead], &format!("a team's {what}"))?;
    if principal.team_id.map(|t| t.0) == Some(team_id) {
        return Ok(());
    }
    match team_in_organisation {
        Some(true) => Err(forbidden(format!(
            "a team lead sees their own team's {what}"
        ))),
        _ => Err(Denied::NotFound),
    }
}

/// May the caller manage teams, staff and tokens? Administrators.
///
/// # Errors
/// [`Denied::Forbidden`] for any other role.
pub fn may_administer(principal: &Principal) -> Result<(), Denied> {
    require(principal, &[Role::Administrator], "administration")
}

/// Requires one of `roles`.
///
/// # Errors
/// [`Denied::Forbidden`] naming the roles that may.
pub fn require(principal: &Principal, roles: &[Role], what: &str) -> Result<(), Denied> {
    if roles.contains(&principal.role) {
        Ok(())
    } else {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(forbidden(format!(
            "{what} is for {}, not a {}",
            names.join(" or "),
            principal.role
        )))
    }
}
