//! Who may do what to which record: pure rules over the caller and the loaded record.
//!
//! Nothing crosses organisations: another organisation's record is answered as absent (404),
//! so its existence is not revealed. Within the organisation, a refusal is a 403 saying why.

use domain::{CaseCommand, StaffId, TeamId};
use uuid::Uuid;

use crate::access::{Principal, Role};
use crate::cases::{Denied, LoadedCase};

pub mod provider;
pub mod tasks;

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

/// Whether a member of staff may enter a fact older than the back-entry window (with a reason):
/// a team lead, who answers for their team's record.
pub fn may_enter_late(principal: &Principal) -> bool {
    principal.role == Role::TeamLead
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
        Role::PracticeSystem if !intake => {
            return Err(forbidden("a practice system can only submit referrals"));
        }
        Role::ServiceProvider => {
            return Err(forbidden(
                "provider staff answer the connections made to their services, nothing else",
            ));
        }
        Role::LinkWorker if triage => {
            return Err(forbidden("only a team lead assigns or transfers cases"));
        }
        _ => {}
    }
    if matches!(command, CaseCommand::CloseConcern(_)) {
        may_close_concern(principal)?;
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
            Role::Referrer | Role::PracticeSystem if case.exists() || client.is_none() => {
                Err(forbidden(
                    "a referrer refers people new to the service; the service links repeat referrals",
                ))
            }
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

/// Why the caller may not name someone in a command: the field, and what to put right (a 422,
/// not a refusal of the caller: the same command naming someone else is theirs to send).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Misnamed {
    pub field: &'static str,
    pub message: &'static str,
}

/// May a member of staff of `role` be a lone worker's buddy, who acts if the check-in does not
/// come? A link worker or a team lead: those who see the missed check-in on a caseload and
/// may read the person's record (the visit's address); never an administrator or an analyst
/// (who see neither), an auditor (who reads records but no caseload), a practice's system (a
/// credential, nobody to act), provider staff or a referrer (outside the service).
pub fn may_be_buddy(role: Role) -> bool {
    matches!(role, Role::LinkWorker | Role::TeamLead)
}

/// May the caller name whom `command` names, as far as the caller alone decides it? A team lead
/// assigns within their own team; a referrer (or practice system) refers in their own name; a
/// lone worker's buddy is someone else. Whether the person named exists, is active and is in the
/// team is looked up after (`CaseService`).
///
/// # Errors
/// [`Misnamed`] naming the field.
pub fn may_name(principal: &Principal, command: &CaseCommand) -> Result<(), Misnamed> {
    let refused = |field, message| Err(Misnamed { field, message });
    match command {
        CaseCommand::AssignLinkWorker(assign)
            if principal.role == Role::TeamLead && Some(assign.team_id) != principal.team_id =>
        {
            refused("team_id", "a team lead assigns cases within their own team")
        }
        CaseCommand::RecordLoneWorkingPlan(plan) if plan.buddy_staff_id == principal.staff_id => {
            refused(
                "buddy_staff_id",
                "a buddy is someone else, who acts if the check-in does not come",
            )
        }
        CaseCommand::Intake { referral, .. }
            if matches!(principal.role, Role::Referrer | Role::PracticeSystem)
                && referral
                    .referrer
                    .staff_id
                    .is_some_and(|id| id != principal.staff_id) =>
        {
            refused(
                "referral.referrer.staff_id",
                "a referrer submits referrals in their own name",
            )
        }
        _ => Ok(()),
    }
}

/// May the caller close a safeguarding concern (with its reason)? A team lead, answering for
/// their team's cases: a concern ends as a supervised decision, never by its raiser alone. Who
/// works the case is asked after, as for every command. Anyone working the case raises a concern
/// and adds to it; nobody corrects one away (the domain's `safeguarding_not_correctable`).
///
/// # Errors
/// [`Denied::Forbidden`] for any other role.
pub fn may_close_concern(principal: &Principal) -> Result<(), Denied> {
    require(
        principal,
        &[Role::TeamLead],
        "closing a safeguarding concern",
    )
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

/// May the caller see a person's name on a list of people (a caseload, the triage queue)?
/// Whoever works the case: its link worker, a team lead of its team, or of any team while it is
/// unassigned; never another organisation's (absent). Auditors read whole records, not lists.
///
/// # Errors
/// [`Denied::Forbidden`] for any other role or someone else's case; [`Denied::NotFound`] for no
/// record or another organisation's.
pub fn may_name_on_list(principal: &Principal, case: &LoadedCase) -> Result<(), Denied> {
    require(
        principal,
        &[Role::LinkWorker, Role::TeamLead],
        "a list of names",
    )?;
    if !case.exists() {
        return Err(Denied::NotFound);
    }
    same_organisation(principal, case)?;
    if works_case(principal, case) {
        Ok(())
    } else {
        Err(not_your_case(principal))
    }
}

/// May the caller see the status of one referral? Its referrer (a person, or a practice's
/// system that sent it over the JSON API and was given its receipt), and whoever may read the
/// record.
///
/// # Errors
/// As [`may_read_record`].
pub fn may_read_referral(
    principal: &Principal,
    case: &LoadedCase,
    referral_id: domain::ReferralId,
) -> Result<(), Denied> {
    if matches!(principal.role, Role::Referrer | Role::PracticeSystem) {
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
    /// A team lead's team, optionally one link worker of it.
    Team {
        team: Uuid,
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
        // A lead of no team has no caseload (never the whole organisation's).
        _ => match principal.team_id {
            Some(team) => Ok(CaseloadScope::Team {
                team: team.0,
                link_worker: link_worker_id,
            }),
            None => Err(forbidden("a team lead of no team has no caseload")),
        },
    }
}

/// May the caller triage referrals (accept, decline, redirect those waiting, of their team or
/// of no team yet)? A team lead of a team; returns the team.
///
/// # Errors
/// [`Denied::Forbidden`] for any other role, or a lead of no team.
pub fn may_triage(principal: &Principal) -> Result<Uuid, Denied> {
    require(principal, &[Role::TeamLead], "the triage queue")?;
    principal
        .team_id
        .map(|t| t.0)
        .ok_or_else(|| forbidden("a team lead of no team has no triage queue"))
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

/// May the caller read aggregate reports (never personal data)? Reporting analysts and team
/// leads.
///
/// # Errors
/// [`Denied::Forbidden`] for any other role.
pub fn may_read_reports(principal: &Principal) -> Result<(), Denied> {
    require(
        principal,
        &[Role::ReportingAnalyst, Role::TeamLead],
        "a report",
    )
}

/// May the caller import the directory? Administrators.
///
/// # Errors
/// [`Denied::Forbidden`] for any other role.
pub fn may_import_directory(principal: &Principal) -> Result<(), Denied> {
    require(principal, &[Role::Administrator], "importing the directory")
}

/// May the caller's role carry out `command` on a directory service? Capacity: administrators
/// and team leads; withdrawal and import: administrators. Asked before the service is read;
/// whose service it is, [`may_change_service`], is asked of every caller once it is read.
///
/// # Errors
/// [`Denied::Forbidden`] for any other role.
pub fn may_change_directory(
    principal: &Principal,
    command: &domain::directory::DirectoryCommand,
) -> Result<(), Denied> {
    use domain::directory::DirectoryCommand as D;
    match command {
        D::ChangeCapacity(_) => require(
            principal,
            &[Role::Administrator, Role::TeamLead],
            "changing a service's capacity",
        ),
        D::Withdraw(_) => require(principal, &[Role::Administrator], "withdrawing a service"),
        D::Import(_) => may_import_directory(principal),
        D::ChangeOwner(_) => Err(forbidden(
            "a service changes hands only at the operator's console, by agreement between \
             the organisations",
        )),
    }
}

/// May `organisation` change this directory service at all (import over it, change its
/// capacity, withdraw it)? Only its owner, the organisation that first listed it; a service
/// never listed is anyone's to list (and then theirs). Every caller is held to it: staff (their
/// organisation), the operator (the nil organisation, which owns what it imported) and the
/// demo. Connections and redirections to a service do not ask: any listed service takes them,
/// whoever owns it.
///
/// The refusal is 403, not 404: the directory is public (`/oruk/services` lists the service),
/// so answering as if it were absent would hide nothing and mislead.
///
/// # Errors
/// [`Denied::Forbidden`] saying whose it is.
pub fn may_change_service(
    organisation: Uuid,
    service: &domain::directory::ServiceState,
) -> Result<(), Denied> {
    match service.owner {
        None => Ok(()),
        Some(owner) if owner == organisation => Ok(()),
        Some(owner) if owner.is_nil() => Err(forbidden(
            "this directory service was listed by the operator for every organisation: only \
             the operator changes it (anyone may still connect people to it)",
        )),
        Some(_) => Err(forbidden(
            "this directory service is another organisation's: only the organisation that \
             listed it changes it (anyone may still connect people to it)",
        )),
    }
}

/// May the caller manage teams, staff and tokens? Administrators.
///
/// # Errors
/// [`Denied::Forbidden`] for any other role.
pub fn may_administer(principal: &Principal) -> Result<(), Denied> {
    require(principal, &[Role::Administrator], "administration")
}

/// Whose account a credential action is about, as the caller sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Account {
    /// The caller's own.
    Own,
    /// Someone else's in the caller's organisation.
    Colleague,
    /// Another organisation's, or none at all (answered alike).
    Elsewhere,
}

/// What is done to an account's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialAction {
    /// Issue a bearer token. Only ever to its own holder: nobody mints a token that acts as
    /// someone else (an administrator makes an enrolment the holder redeems instead).
    IssueToken,
    /// Make a one-time enrolment code for the holder to redeem.
    Enrol,
    /// See the account's tokens and enrolments (never their secrets).
    List,
    /// Revoke one token, or every token and enrolment.
    Revoke,
    /// Deactivate the account (every token stops) or reactivate it.
    SetActive,
}

/// May the caller do `action` to `account`'s credentials?
///
/// Anyone issues, lists and revokes their own tokens. An administrator enrols, lists, revokes,
/// deactivates and reactivates the organisation's accounts, but issues no token for anyone
/// else, and does not deactivate their own account (another administrator or the operator
/// does). Another organisation's account is absent.
///
/// # Errors
/// [`Denied::NotFound`] for another organisation's account; [`Denied::Forbidden`] saying why.
pub fn may_manage_credentials(
    principal: &Principal,
    account: Account,
    action: CredentialAction,
) -> Result<(), Denied> {
    use CredentialAction::{Enrol, IssueToken, List, Revoke, SetActive};
    let administrator = principal.role == Role::Administrator;
    match (account, action) {
        (Account::Elsewhere, _) => {
            if administrator || action == IssueToken {
                Err(Denied::NotFound)
            } else {
                Err(forbidden(
                    "managing other people's access is for administrators",
                ))
            }
        }
        (Account::Own, IssueToken | List | Revoke) => Ok(()),
        (Account::Own, Enrol) | (Account::Colleague, Enrol | List | Revoke) => {
            may_administer(principal)
        }
        (Account::Own, SetActive) => Err(forbidden(
            "no one deactivates or reactivates their own account: another administrator or the \
             operator does",
        )),
        (Account::Colleague, SetActive) => may_administer(principal),
        (Account::Colleague, IssueToken) => Err(forbidden(
            "a token is issued only to its holder: make an enrolment for them to redeem",
        )),
    }
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

/// May the caller submit a referral over FHIR? A practice's system (a person refers through
/// the API or the console).
///
/// # Errors
/// [`Denied::Forbidden`] for any other role.
pub fn may_submit_fhir_referral(principal: &Principal) -> Result<(), Denied> {
    require(
        principal,
        &[Role::PracticeSystem],
        "submitting a FHIR ServiceRequest",
    )
}

/// May the caller add a referral it sends over FHIR to a record found by the person's NHS
/// number (`app::matching`)? A practice system, for a record of its own organisation that is not
/// erased (or, for `replay`, the first result of the same ServiceRequest); anything else is
/// answered as absent. Whether the record takes a referral now is the domain's (a case already
/// referred or open refuses it). What the practice reads back of the record stays its own
/// referral ([`may_follow_fhir_referral`]).
///
/// # Errors
/// [`Denied::Forbidden`] for any other role; [`Denied::NotFound`] for another organisation's,
/// an erased or no record.
pub fn may_refer_known_person(
    principal: &Principal,
    case: &LoadedCase,
    replay: bool,
) -> Result<(), Denied> {
    require(
        principal,
        &[Role::PracticeSystem],
        "referring a known person over FHIR",
    )?;
    if !case.exists() || (case.state.erased && !replay) {
        return Err(Denied::NotFound);
    }
    same_organisation(principal, case)
}

/// May the caller add the referral they sent for someone new to the record the organisation
/// already holds for the person (found by their NHS number, `app::intake`)? Whoever may refer
/// someone new (a referrer, a practice's system, a link worker, a team lead), on a record of
/// their organisation that is not erased (or, for `replay`, the first result of the same
/// request); a link worker or team lead only on a case they work once it is assigned, as for any
/// referral of a known person ([`may_command`]). Whether the record takes a referral now is the
/// domain's (a referral waiting or a case open refuses it).
///
/// # Errors
/// [`Denied::Forbidden`] for any other role, or a case not the caller's; [`Denied::NotFound`]
/// for another organisation's, an erased or no record.
pub fn may_refer_matched_person(
    principal: &Principal,
    case: &LoadedCase,
    replay: bool,
) -> Result<(), Denied> {
    require(
        principal,
        &[
            Role::Referrer,
            Role::PracticeSystem,
            Role::LinkWorker,
            Role::TeamLead,
        ],
        "referring a person",
    )?;
    if !case.exists() || (case.state.erased && !replay) {
        return Err(Denied::NotFound);
    }
    same_organisation(principal, case)?;
    if replay {
        return Ok(());
    }
    match principal.role {
        Role::LinkWorker | Role::TeamLead
            if case.state.link_worker.is_some() && !works_case(principal, case) =>
        {
            Err(not_your_case(principal))
        }
        _ => Ok(()),
    }
}

/// Is the caller told that a referral they sent for someone new went to the record the
/// organisation already held for the person (`app::intake`)? Staff of the service (link
/// workers, team leads, auditors, administrators), who see its records. A referrer or a
/// practice's system is answered alike whether the person was known or not: who is known to
/// the service is not theirs to learn from a referral.
pub fn may_learn_known_person(principal: &Principal) -> bool {
    matches!(
        principal.role,
        Role::LinkWorker | Role::TeamLead | Role::Auditor | Role::Administrator
    )
}

/// May the caller follow a referral it sent over FHIR (the ServiceRequest and its Task)? The
/// practice system that submitted it, and no one else: any other referral, of its organisation
/// or another, is answered as absent.
///
/// # Errors
/// [`Denied::Forbidden`] for any other role; [`Denied::NotFound`] for a referral not its own.
pub fn may_follow_fhir_referral(
    principal: &Principal,
    case: &LoadedCase,
    referral_id: domain::ReferralId,
) -> Result<(), Denied> {
    require(
        principal,
        &[Role::PracticeSystem],
        "a FHIR referral's status",
    )?;
    if !case.exists() {
        return Err(Denied::NotFound);
    }
    same_organisation(principal, case)?;
    match case.referred_by.get(&referral_id) {
        Some(submitter) if *submitter == principal.staff_id.0 => Ok(()),
        _ => Err(Denied::NotFound),
    }
}

#[cfg(test)]
mod safeguarding_tests;

#[cfg(test)]
mod tests {
    //! Every decision as a table: given a role, the caller's relation to the record and an
    //! action, allow, refuse as absent (404) or refuse as forbidden (403). The HTTP matrix test
    //! is the system-level net over the same rules.

    use chrono::NaiveDate;
    use domain::*;

    use super::*;

    pub(super) const ORG: Uuid = Uuid::from_u128(1);
    pub(super) const OTHER_ORG: Uuid = Uuid::from_u128(2);
    pub(super) const ME: StaffId = StaffId(Uuid::from_u128(10));
    pub(super) const SOMEONE: StaffId = StaffId(Uuid::from_u128(11));
    pub(super) const MY_TEAM: TeamId = TeamId(Uuid::from_u128(20));
    pub(super) const OTHER_TEAM: TeamId = TeamId(Uuid::from_u128(21));
    const REFERRAL: ReferralId = ReferralId(Uuid::from_u128(30));

    /// The enum `Relation` of these variants, and `RELATIONS`, every one of them in order.
    macro_rules! relations {
        ($($(#[$doc:meta])* $variant:ident,)*) => {
            /// How the caller stands to the record.
            #[derive(Clone, Copy, Debug)]
            enum Relation {
                $($(#[$doc])* $variant,)*
            }

            /// Every relation, in the order of a row's outcomes.
            const RELATIONS: [Relation; 6] = [$(Relation::$variant,)*];
        };
    }

    relations! {
        /// There is no record.
        NoRecord,
        /// Another organisation's record.
        OtherOrganisation,
        /// Of the organisation, with nobody assigned (at triage).
        Unassigned,
        /// Assigned to the caller (a link worker) or in the caller's team (a team lead);
        /// referred by the caller.
        Mine,
        /// Assigned to someone else in another team.
        NotMine,
        /// Assigned to someone else in the caller's team.
        MyTeamNotMe,
    }
    use Relation::*;

    /// What a decision comes to: allowed, refused as absent (404) or as forbidden (403).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Outcome {
        Allow,
        Absent,
        Forbidden,
    }
    use Outcome::*;

    /// A caller of `role` in the organisation `ORG` (and the team `MY_TEAM` when it has one).
    pub(super) fn principal(role: Role) -> Principal {
        Principal {
            staff_id: ME,
            organisation_id: ORG,
            team_id: role.needs_team().then_some(MY_TEAM),
            role,
            token_id: Uuid::nil(),
        }
    }

    fn case(relation: Relation) -> LoadedCase {
        let mut case = LoadedCase::default();
        let (organisation, worker) = match relation {
            NoRecord => return case,
            OtherOrganisation => (OTHER_ORG, Some((SOMEONE, OTHER_TEAM))),
            Unassigned => (ORG, None),
            Mine => (ORG, Some((ME, MY_TEAM))),
            NotMine => (ORG, Some((SOMEONE, OTHER_TEAM))),
            MyTeamNotMe => (ORG, Some((SOMEONE, MY_TEAM))),
        };
        case.version = 3;
        case.organisation_id = Some(organisation);
        case.state.link_worker = worker;
        let referrer = if matches!(relation, Mine) {
            ME
        } else {
            SOMEONE
        };
        case.referred_by.insert(REFERRAL, referrer.0);
        case
    }

    fn intake(new_client: bool) -> CaseCommand {
        CaseCommand::Intake {
            client: new_client.then(|| {
                Box::new(ClientRegistered {
                    client_id: ClientId(Uuid::from_u128(40)),
                    personal: PersonalDetails::named("Ada", "Example"),
                    area: "Frome".into(),
                })
            }),
            referral: domain::testing::unnamed_referral(
                REFERRAL,
                ReferralSource::Gp,
                vec![NeedDomain::LonelinessIsolation],
                NaiveDate::from_ymd_opt(2026, 3, 1).expect("a date"),
            ),
        }
    }

    fn contact() -> CaseCommand {
        CaseCommand::RecordContact(ContactRecorded {
            contact_id: ContactId(Uuid::from_u128(50)),
            mode: ContactMode::Phone,
            minutes: 10,
            contacted_at: chrono::DateTime::UNIX_EPOCH,
            note: None,
        })
    }

    fn assign() -> CaseCommand {
        CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
            link_worker_id: ME,
            team_id: MY_TEAM,
        })
    }

    fn erase() -> CaseCommand {
        CaseCommand::EraseClient(ClientErased {
            reason: "request 1".into(),
        })
    }

    /// A directory service closed to referrals.
    fn closed_to_referrals() -> domain::directory::DirectoryCommand {
        domain::directory::DirectoryCommand::ChangeCapacity(
            domain::directory::ServiceCapacityChanged {
                availability: domain::directory::Availability::Closed,
                waiting_weeks: None,
                note: None,
            },
        )
    }

    /// A directory service withdrawn.
    fn closed_down() -> domain::directory::DirectoryCommand {
        domain::directory::DirectoryCommand::Withdraw(domain::directory::ServiceWithdrawn {
            reason: "closed down".into(),
        })
    }

    fn outcome(result: Result<(), Denied>) -> Outcome {
        match result {
            Ok(()) => Allow,
            Err(Denied::NotFound) => Absent,
            Err(Denied::Forbidden(_)) => Forbidden,
        }
    }

    /// One row: the role, then the outcome for each relation in the order of `RELATIONS`
    /// [NoRecord, OtherOrganisation, Unassigned, Mine, NotMine, MyTeamNotMe].
    type Row = (Role, [Outcome; 6]);

    /// A decision on a case, as an outcome.
    type Decide = fn(&Principal, &LoadedCase) -> Outcome;

    #[track_caller]
    fn table(action: &str, rows: &[Row], decide: impl Fn(&Principal, &LoadedCase) -> Outcome) {
        for (role, expected) in rows {
            for (relation, expected) in RELATIONS.iter().zip(expected) {
                let got = decide(&principal(*role), &case(*relation));
                assert_eq!(
                    got, *expected,
                    "{action}: a {role} on a record {relation:?} should be {expected:?}"
                );
            }
        }
    }

    use Role::{Administrator, Auditor, LinkWorker, ReportingAnalyst, TeamLead};

    #[test]
    fn a_buddy_is_a_person_of_the_service() {
        let table = [
            (Role::LinkWorker, true),
            (Role::TeamLead, true),
            (Role::Administrator, false),
            (Role::Auditor, false),
            (Role::ReportingAnalyst, false),
            (Role::Referrer, false),
            (Role::PracticeSystem, false),
            (Role::ServiceProvider, false),
        ];
        assert_eq!(table.len(), Role::ALL.len(), "every role decided");
        for (role, expected) in table {
            assert_eq!(may_be_buddy(role), expected, "{role}");
        }
    }

    #[test]
    fn whom_a_caller_may_name_in_a_command() {
        let assign_in = |team| {
            CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
                link_worker_id: SOMEONE,
                team_id: team,
            })
        };
        let buddy = |staff| {
            CaseCommand::RecordLoneWorkingPlan(LoneWorkingPlanRecorded {
                appointment_id: AppointmentId(Uuid::from_u128(60)),
                address_note: "Flat 2".into(),
                check_in_by: chrono::DateTime::UNIX_EPOCH,
                buddy_staff_id: staff,
                known_risks: None,
            })
        };
        let referred_by = |staff| {
            let mut command = intake(true);
            if let CaseCommand::Intake { referral, .. } = &mut command {
                referral.referrer.staff_id = staff;
            }
            command
        };
        let field = |role: Role, command: &CaseCommand| {
            may_name(&principal(role), command).err().map(|m| m.field)
        };
        // (role, command, the field refused or none)
        let table: Vec<(Role, CaseCommand, Option<&str>)> = vec![
            (TeamLead, assign_in(MY_TEAM), None),
            (TeamLead, assign_in(OTHER_TEAM), Some("team_id")),
            // Only a team lead is held to their team here (a link worker is refused by
            // `may_command`).
            (Administrator, assign_in(OTHER_TEAM), None),
            (LinkWorker, buddy(SOMEONE), None),
            (LinkWorker, buddy(ME), Some("buddy_staff_id")),
            (TeamLead, buddy(ME), Some("buddy_staff_id")),
            (Role::Referrer, referred_by(Some(ME)), None),
            (Role::Referrer, referred_by(None), None),
            (
                Role::Referrer,
                referred_by(Some(SOMEONE)),
                Some("referral.referrer.staff_id"),
            ),
            (
                Role::PracticeSystem,
                referred_by(Some(SOMEONE)),
                Some("referral.referrer.staff_id"),
            ),
            // A link worker takes a self-referral and names whoever referred.
            (LinkWorker, referred_by(Some(SOMEONE)), None),
            (LinkWorker, contact(), None),
        ];
        for (role, command, expected) in &table {
            assert_eq!(
                field(*role, command),
                *expected,
                "a {role} sending {command:?}"
            );
        }
    }

    #[test]
    fn who_may_record_a_contact_on_a_case_and_see_the_persons_name_on_a_list() {
        // The same people: whoever works the case.
        let decisions: [(&str, Decide); 2] = [
            ("a contact", |p, c| {
                outcome(may_command(p, c, &contact(), false))
            }),
            ("a name on a caseload", |p, c| {
                outcome(may_name_on_list(p, c))
            }),
        ];
        for (action, decide) in decisions {
            table(
                action,
                &[
                    (Role::Referrer, [Forbidden; 6]),
                    (
                        LinkWorker,
                        [Absent, Absent, Forbidden, Allow, Forbidden, Forbidden],
                    ),
                    (TeamLead, [Absent, Absent, Allow, Allow, Forbidden, Allow]),
                    (Auditor, [Forbidden; 6]),
                    (ReportingAnalyst, [Forbidden; 6]),
                    (Administrator, [Forbidden; 6]),
                ],
                decide,
            );
        }
    }

    #[test]
    fn only_a_team_lead_of_a_team_has_a_triage_queue_and_it_is_their_team() {
        for role in Role::ALL {
            let expected = if role == TeamLead { Allow } else { Forbidden };
            assert_eq!(
                outcome(may_triage(&principal(role)).map(|_| ())),
                expected,
                "{role}"
            );
        }
        assert_eq!(may_triage(&principal(TeamLead)), Ok(MY_TEAM.0));
        let teamless = Principal {
            team_id: None,
            ..principal(TeamLead)
        };
        assert_eq!(outcome(may_triage(&teamless).map(|_| ())), Forbidden);
    }

    #[test]
    fn who_may_assign_a_case() {
        table(
            "an assignment",
            &[
                (Role::Referrer, [Forbidden; 6]),
                (LinkWorker, [Forbidden; 6]),
                (TeamLead, [Absent, Absent, Allow, Allow, Forbidden, Allow]),
                (Auditor, [Forbidden; 6]),
                (ReportingAnalyst, [Forbidden; 6]),
                (Administrator, [Forbidden; 6]),
            ],
            |p, c| outcome(may_command(p, c, &assign(), false)),
        );
    }

    #[test]
    fn who_may_refer_a_new_person_and_who_may_refer_a_known_one_again() {
        table(
            "a referral with the person's details",
            &[
                (
                    Role::Referrer,
                    [Allow, Absent, Forbidden, Forbidden, Forbidden, Forbidden],
                ),
                (
                    LinkWorker,
                    [Allow, Absent, Allow, Allow, Forbidden, Forbidden],
                ),
                (TeamLead, [Allow, Absent, Allow, Allow, Forbidden, Allow]),
                (Auditor, [Forbidden; 6]),
                (ReportingAnalyst, [Forbidden; 6]),
                (Administrator, [Forbidden; 6]),
            ],
            |p, c| outcome(may_command(p, c, &intake(true), false)),
        );
        table(
            "a referral of a known person",
            &[
                (
                    Role::Referrer,
                    [
                        Forbidden, Absent, Forbidden, Forbidden, Forbidden, Forbidden,
                    ],
                ),
                (
                    LinkWorker,
                    [Allow, Absent, Allow, Allow, Forbidden, Forbidden],
                ),
                (TeamLead, [Allow, Absent, Allow, Allow, Forbidden, Allow]),
            ],
            |p, c| outcome(may_command(p, c, &intake(false), false)),
        );
    }

    #[test]
    fn only_an_administrator_erases_and_only_a_record_of_their_organisation() {
        table(
            "an erasure",
            &[
                (Role::Referrer, [Forbidden; 6]),
                (LinkWorker, [Forbidden; 6]),
                (TeamLead, [Forbidden; 6]),
                (Auditor, [Forbidden; 6]),
                (ReportingAnalyst, [Forbidden; 6]),
                (Administrator, [Absent, Absent, Allow, Allow, Allow, Allow]),
            ],
            |p, c| outcome(may_command(p, c, &erase(), false)),
        );
    }

    #[test]
    fn a_repeated_key_answers_whoever_may_see_the_record_at_all() {
        table(
            "a repeated contact",
            &[
                (LinkWorker, [Absent, Absent, Allow, Allow, Allow, Allow]),
                (Auditor, [Forbidden; 6]),
            ],
            |p, c| outcome(may_command(p, c, &contact(), true)),
        );
    }

    #[test]
    fn who_may_read_a_record_its_referrals_and_who_read_it() {
        table(
            "the record",
            &[
                (Role::Referrer, [Forbidden; 6]),
                (
                    LinkWorker,
                    [Absent, Absent, Forbidden, Allow, Forbidden, Forbidden],
                ),
                (TeamLead, [Absent, Absent, Allow, Allow, Forbidden, Allow]),
                (Auditor, [Absent, Absent, Allow, Allow, Allow, Allow]),
                (ReportingAnalyst, [Forbidden; 6]),
                (Administrator, [Forbidden; 6]),
            ],
            |p, c| outcome(may_read_record(p, c)),
        );
        table(
            "a referral's status",
            &[
                // A referrer follows only their own referral, and learns nothing of others.
                (
                    Role::Referrer,
                    [Absent, Absent, Absent, Allow, Absent, Absent],
                ),
                (
                    Role::PracticeSystem,
                    [Absent, Absent, Absent, Allow, Absent, Absent],
                ),
                (
                    LinkWorker,
                    [Absent, Absent, Forbidden, Allow, Forbidden, Forbidden],
                ),
                (Auditor, [Absent, Absent, Allow, Allow, Allow, Allow]),
                (Administrator, [Forbidden; 6]),
            ],
            |p, c| outcome(may_read_referral(p, c, REFERRAL)),
        );
        table(
            "the read audit",
            &[
                (LinkWorker, [Forbidden; 6]),
                (TeamLead, [Forbidden; 6]),
                (Auditor, [Absent, Absent, Allow, Allow, Allow, Allow]),
                (Administrator, [Forbidden; 6]),
            ],
            |p, c| outcome(may_read_audit(p, c)),
        );
    }

    #[test]
    fn who_may_read_which_caseload_and_team() {
        let mine = Some(ME.0);
        let theirs = Some(SOMEONE.0);
        for (role, own, anyone) in [
            (LinkWorker, Allow, Forbidden),
            (TeamLead, Allow, Allow),
            (Role::Referrer, Forbidden, Forbidden),
            (Auditor, Forbidden, Forbidden),
            (ReportingAnalyst, Forbidden, Forbidden),
            (Administrator, Forbidden, Forbidden),
        ] {
            let p = principal(role);
            let got = |worker| outcome(may_read_caseload(&p, worker).map(|_| ()));
            assert_eq!((got(mine), got(theirs)), (own, anyone), "{role}");
        }
        assert_eq!(
            may_read_caseload(&principal(LinkWorker), None),
            Ok(CaseloadScope::Own(ME.0))
        );
        assert_eq!(
            may_read_caseload(&principal(TeamLead), theirs),
            Ok(CaseloadScope::Team {
                team: MY_TEAM.0,
                link_worker: theirs
            })
        );
        let lead = principal(TeamLead);
        assert_eq!(
            outcome(may_read_team(&lead, MY_TEAM.0, None, "caseload")),
            Allow
        );
        assert_eq!(
            outcome(may_read_team(&lead, OTHER_TEAM.0, Some(true), "caseload")),
            Forbidden
        );
        assert_eq!(
            outcome(may_read_team(&lead, OTHER_TEAM.0, Some(false), "caseload")),
            Absent
        );
        assert_eq!(
            outcome(may_read_team(
                &principal(LinkWorker),
                MY_TEAM.0,
                None,
                "caseload"
            )),
            Forbidden
        );
    }

    /// How the caller's organisation stands to a directory service.
    #[derive(Clone, Copy, Debug)]
    enum Listing {
        /// Never listed: whoever lists it owns it.
        NotListed,
        /// Listed by the caller's organisation.
        Ours,
        /// Listed by another organisation.
        Theirs,
        /// Listed by the operator (the command line), for every organisation.
        Operators,
    }

    fn service(listing: Listing) -> domain::directory::ServiceState {
        domain::directory::ServiceState {
            owner: match listing {
                Listing::NotListed => None,
                Listing::Ours => Some(ORG),
                Listing::Theirs => Some(OTHER_ORG),
                Listing::Operators => Some(Uuid::nil()),
            },
            ..Default::default()
        }
    }

    #[test]
    fn only_the_owner_changes_a_directory_service_and_only_in_the_roles_that_may() {
        use domain::directory::{DirectoryCommand, OrukService};
        let record: OrukService = serde_json::from_value(serde_json::json!({
            "id": Uuid::from_u128(60), "name": "Walking group", "status": "active"
        }))
        .expect("a record");
        let import = DirectoryCommand::Import(Box::new(record));
        let (capacity, withdraw) = (closed_to_referrals(), closed_down());
        const LISTINGS: [Listing; 4] = [
            Listing::NotListed,
            Listing::Ours,
            Listing::Theirs,
            Listing::Operators,
        ];
        // As the application asks: the role before reading the service, then its owner.
        let decide = |p: &Principal, command: &DirectoryCommand, listing: Listing| {
            outcome(
                may_change_directory(p, command)
                    .and_then(|()| may_change_service(p.organisation_id, &service(listing))),
            )
        };
        // Per role, the outcome for [NotListed, Ours, Theirs, Operators].
        let owner_only = [Allow, Allow, Forbidden, Forbidden];
        for (command, name, rows) in [
            (
                &import,
                "an import over it",
                [
                    (Administrator, owner_only),
                    (TeamLead, [Forbidden; 4]),
                    (LinkWorker, [Forbidden; 4]),
                ],
            ),
            (
                &capacity,
                "a capacity change",
                [
                    (Administrator, owner_only),
                    (TeamLead, owner_only),
                    (LinkWorker, [Forbidden; 4]),
                ],
            ),
            (
                &withdraw,
                "a withdrawal",
                [
                    (Administrator, owner_only),
                    (TeamLead, [Forbidden; 4]),
                    (LinkWorker, [Forbidden; 4]),
                ],
            ),
        ] {
            for (role, expected) in rows {
                for (listing, expected) in LISTINGS.iter().zip(expected) {
                    assert_eq!(
                        decide(&principal(role), command, *listing),
                        expected,
                        "{name}: a {role} on a service {listing:?}"
                    );
                }
            }
            for role in [Role::Referrer, Auditor, ReportingAnalyst] {
                for listing in LISTINGS {
                    assert_eq!(
                        decide(&principal(role), command, listing),
                        Forbidden,
                        "{name}: a {role} on a service {listing:?}"
                    );
                }
            }
        }
        // The operator (the nil organisation, no role) is held to the same owner rule.
        let owned = |listing| outcome(may_change_service(Uuid::nil(), &service(listing)));
        assert_eq!(
            LISTINGS.map(owned),
            [Allow, Forbidden, Forbidden, Allow],
            "the operator"
        );
    }

    #[test]
    fn who_may_manage_whose_tokens_enrolments_and_account() {
        use CredentialAction::{Enrol, IssueToken, List, Revoke, SetActive};
        // For each action: a non-administrator's outcome, then an administrator's, on
        // [their own account, a colleague's, one elsewhere].
        let rows: [(CredentialAction, [Outcome; 3], [Outcome; 3]); 5] = [
            (
                IssueToken,
                [Allow, Forbidden, Absent],
                [Allow, Forbidden, Absent],
            ),
            (
                Enrol,
                [Forbidden, Forbidden, Forbidden],
                [Allow, Allow, Absent],
            ),
            (List, [Allow, Forbidden, Forbidden], [Allow, Allow, Absent]),
            (
                Revoke,
                [Allow, Forbidden, Forbidden],
                [Allow, Allow, Absent],
            ),
            (
                SetActive,
                [Forbidden, Forbidden, Forbidden],
                [Forbidden, Allow, Absent],
            ),
        ];
        let accounts = [Account::Own, Account::Colleague, Account::Elsewhere];
        for (action, others, administrator) in rows {
            for role in Role::ALL {
                let expected = if role == Administrator {
                    administrator
                } else {
                    others
                };
                for (account, expected) in accounts.iter().zip(expected) {
                    assert_eq!(
                        outcome(may_manage_credentials(&principal(role), *account, action)),
                        expected,
                        "{action:?} by a {role} on {account:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn reports_administration_and_the_directory_by_role() {
        let (capacity, withdraw) = (closed_to_referrals(), closed_down());
        for role in Role::ALL {
            let p = principal(role);
            let allowed = |r: Result<(), Denied>| outcome(r) == Allow;
            assert_eq!(
                allowed(may_read_reports(&p)),
                matches!(role, ReportingAnalyst | TeamLead),
                "reports: {role}"
            );
            assert_eq!(
                allowed(may_administer(&p)),
                role == Administrator,
                "administration: {role}"
            );
            assert_eq!(
                allowed(may_import_directory(&p)),
                role == Administrator,
                "directory import: {role}"
            );
            assert_eq!(
                allowed(may_change_directory(&p, &capacity)),
                matches!(role, Administrator | TeamLead),
                "capacity: {role}"
            );
            assert_eq!(
                allowed(may_change_directory(&p, &withdraw)),
                role == Administrator,
                "withdrawal: {role}"
            );
        }
    }

    #[test]
    fn a_practice_system_refers_a_known_person_of_its_own_organisation_only() {
        let practice = principal(Role::PracticeSystem);
        for (relation, expected) in [
            (Mine, Allow),
            (Unassigned, Allow),
            (NotMine, Allow),
            (NoRecord, Absent),
            (OtherOrganisation, Absent),
        ] {
            assert_eq!(
                outcome(may_refer_known_person(&practice, &case(relation), false)),
                expected,
                "{relation:?}"
            );
        }
        let mut erased = case(Unassigned);
        erased.state.erased = true;
        assert_eq!(
            outcome(may_refer_known_person(&practice, &erased, false)),
            Absent
        );
        for role in [Role::Referrer, LinkWorker, TeamLead, Administrator] {
            assert_eq!(
                outcome(may_refer_known_person(
                    &principal(role),
                    &case(Unassigned),
                    false
                )),
                Forbidden,
                "{role}"
            );
        }
    }

    #[test]
    fn a_referral_of_someone_new_goes_to_the_record_held_for_them_for_whoever_may_refer() {
        table(
            "a referral of someone new the organisation already holds",
            &[
                (Role::Referrer, [Absent, Absent, Allow, Allow, Allow, Allow]),
                (
                    Role::PracticeSystem,
                    [Absent, Absent, Allow, Allow, Allow, Allow],
                ),
                (
                    LinkWorker,
                    [Absent, Absent, Allow, Allow, Forbidden, Forbidden],
                ),
                (TeamLead, [Absent, Absent, Allow, Allow, Forbidden, Allow]),
                (Auditor, [Forbidden; 6]),
                (ReportingAnalyst, [Forbidden; 6]),
                (Administrator, [Forbidden; 6]),
                (Role::ServiceProvider, [Forbidden; 6]),
            ],
            |p, c| outcome(may_refer_matched_person(p, c, false)),
        );
        // An erased person is never matched; the first result of the same request is answered.
        let mut erased = case(Unassigned);
        erased.state.erased = true;
        for role in [Role::Referrer, LinkWorker, TeamLead] {
            assert_eq!(
                outcome(may_refer_matched_person(&principal(role), &erased, false)),
                Absent,
                "{role}"
            );
            assert_eq!(
                outcome(may_refer_matched_person(&principal(role), &erased, true)),
                Allow,
                "{role}: a retry"
            );
            assert_eq!(
                outcome(may_refer_matched_person(
                    &principal(role),
                    &case(OtherOrganisation),
                    true
                )),
                Absent,
                "{role}: a retry on another organisation's record"
            );
        }
        // Only staff of the service hear that the person was known.
        for role in Role::ALL {
            let told = matches!(role, LinkWorker | TeamLead | Auditor | Administrator);
            assert_eq!(may_learn_known_person(&principal(role)), told, "{role}");
        }
    }

    #[test]
    fn only_a_practice_system_sends_fhir_referrals_and_follows_only_its_own() {
        for role in Role::ALL {
            let expected = if role == Role::PracticeSystem {
                Allow
            } else {
                Forbidden
            };
            assert_eq!(
                outcome(may_submit_fhir_referral(&principal(role))),
                expected,
                "{role}"
            );
        }
        let practice = principal(Role::PracticeSystem);
        for (relation, expected) in [
            (Mine, Allow),
            (NoRecord, Absent),
            (OtherOrganisation, Absent),
            (Unassigned, Absent),
            (NotMine, Absent),
        ] {
            assert_eq!(
                outcome(may_follow_fhir_referral(
                    &practice,
                    &case(relation),
                    REFERRAL
                )),
                expected,
                "{relation:?}"
            );
        }
        for role in [Role::Referrer, LinkWorker, TeamLead, Auditor, Administrator] {
            assert_eq!(
                outcome(may_follow_fhir_referral(
                    &principal(role),
                    &case(Mine),
                    REFERRAL
                )),
                Forbidden,
                "{role}"
            );
        }
        // Over the JSON API a practice system refers someone new, follows that referral by its
        // receipt, and nothing else.
        assert_eq!(
            outcome(may_command(
                &practice,
                &case(NoRecord),
                &intake(true),
                false
            )),
            Allow
        );
        assert_eq!(
            outcome(may_command(&practice, &case(Mine), &intake(false), false)),
            Forbidden
        );
        assert_eq!(
            outcome(may_read_referral(&practice, &case(Mine), REFERRAL)),
            Allow
        );
        assert_eq!(
            outcome(may_read_referral(&practice, &case(NotMine), REFERRAL)),
            Absent
        );
        assert_eq!(outcome(may_read_record(&practice, &case(Mine))), Forbidden);
    }
}
