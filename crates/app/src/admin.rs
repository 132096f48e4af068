//! Administration within an organisation: teams, staff accounts and their tokens, for
//! administrators only (none of it reads client records); and each member of staff's own
//! account; and the operator at the console, under the same rules.

use chrono::Duration;
use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::access::{
    self, EnrolmentSummary, IssuedEnrolment, IssuedToken, NewStaff, Principal, Revoked, Role,
    StaffMember, TokenIssuer, TokenSummary,
};
use crate::error::{AppError, Page};
use crate::policy::{self, Account, CredentialAction};

/// The longest a token lives.
pub const MAX_TOKEN_DAYS: i64 = 400;

/// A new team.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeamRequest {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
}

/// A team.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Team {
    pub team_id: Uuid,
    pub organisation_id: Uuid,
    pub name: String,
}

/// A team as its administrator sees it: who is in it, and how many people a year its link
/// workers can support between them.
#[derive(Debug, Serialize)]
pub struct TeamSummary {
    pub team_id: Uuid,
    pub name: String,
    /// Active staff of the team (any role).
    pub members: i64,
    /// Active link workers of the team.
    pub link_workers: i64,
    /// The sum of the active link workers' capacities (people a year): their own, or the
    /// caseload rules' default for one with none set (as their workload counts them).
    pub capacity: i64,
}

/// The roles a staff account may hold, in the order a form offers them.
#[must_use]
pub fn roles() -> &'static [Role] {
    &Role::ALL
}

/// A page of staff.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaffPage {
    pub items: Vec<StaffMember>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

/// A new staff account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaffRequest {
    /// The new account's id, the caller's choice (none: the service chooses): a retry of the
    /// same request with it adds nothing and answers as the first did; the id of another account,
    /// or of this one with other details, is a conflict (409).
    #[serde(default)]
    pub staff_id: Option<Uuid>,
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    pub role: Role,
    /// Needed for link workers and team leads.
    pub team_id: Option<Uuid>,
    /// People a year this worker can support (link workers; NHS guidance 200 to 250).
    #[schema(minimum = 1, maximum = 100000)]
    pub capacity: Option<i32>,
}

/// A token to issue.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Days until it expires (1 to 400).
    #[schema(minimum = 1, maximum = 400)]
    pub valid_days: i64,
    /// What it is for (a device, an integration).
    #[schema(max_length = 200)]
    pub label: Option<String>,
}

/// A one-time enrolment to make.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentRequest {
    /// Hours until the code expires unredeemed (1 to 168, default 72).
    #[schema(minimum = 1, maximum = 168)]
    pub valid_hours: Option<i64>,
}

/// The longest an enrolment code waits to be redeemed.
pub const MAX_ENROLMENT_HOURS: i64 = 168;

/// An enrolment code to redeem for a token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedemptionRequest {
    /// The code an administrator gave you (`cbe_...`); it works once.
    #[schema(max_length = 200)]
    pub code: String,
    /// Days until the token expires (1 to 400).
    #[schema(minimum = 1, maximum = 400)]
    pub valid_days: i64,
    /// What it is for (a device, an integration).
    #[schema(max_length = 200)]
    pub label: Option<String>,
}

/// A staff member's tokens and enrolments (never their secrets).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Credentials {
    pub staff_id: Uuid,
    /// Whether the account is active: a deactivated account's tokens do not work.
    pub active: bool,
    /// Newest first.
    pub tokens: Vec<TokenSummary>,
    /// Newest first.
    pub enrolments: Vec<EnrolmentSummary>,
}

/// An enrolment's lifetime, held to the limits.
fn enrolment_terms(request: &EnrolmentRequest) -> Result<Duration, AppError> {
    let hours = request.valid_hours.unwrap_or(72);
    if !(1..=MAX_ENROLMENT_HOURS).contains(&hours) {
        return Err(invalid("valid_hours", "give 1 to 168 hours"));
    }
    Ok(Duration::hours(hours))
}

fn invalid(field: &'static str, message: &str) -> AppError {
    AppError::Access(access::AccessError::Invalid {
        field,
        message: message.to_owned(),
    })
}

/// A name of 1 to 200 characters, trimmed.
fn name(requested: &str) -> Result<String, AppError> {
    let name = requested.trim();
    if name.is_empty() || requested.chars().count() > 200 {
        return Err(invalid("name", "give a name of 1 to 200 characters"));
    }
    Ok(name.to_owned())
}

/// A team of `organisation_id` named `requested` (trimmed), made or found.
async fn team_in(
    client: &impl GenericClient,
    organisation_id: Uuid,
    requested: &str,
) -> Result<Team, AppError> {
    let name = name(requested)?;
    let team_id = access::ensure_team(client, organisation_id, &name).await?;
    Ok(Team {
        team_id: team_id.0,
        organisation_id,
        name,
    })
}

/// A new staff account of `organisation_id`.
async fn staff_in(
    client: &impl GenericClient,
    organisation_id: Uuid,
    request: &NewStaffRequest,
) -> Result<StaffMember, AppError> {
    let name = name(&request.name)?;
    Ok(access::add_staff_as(
        client,
        request.staff_id,
        &NewStaff {
            organisation_id,
            team_id: request.team_id,
            name,
            role: request.role,
            capacity: request.capacity,
        },
    )
    .await?)
}

/// A token's lifetime and label, held to the limits.
fn token_terms(request: &TokenRequest) -> Result<(Duration, String), AppError> {
    if !(1..=MAX_TOKEN_DAYS).contains(&request.valid_days) {
        return Err(invalid("valid_days", "give 1 to 400 days"));
    }
    let label = request.label.clone().unwrap_or_default();
    if label.chars().count() > 200 {
        return Err(invalid("label", "at most 200 characters"));
    }
    Ok((Duration::days(request.valid_days), label))
}

/// Administration on the staff tables, for an organisation's administrators.
#[derive(Clone)]
pub struct Admin {
    pool: db::Pool,
    /// Told of every change to tokens and accounts made here, so that this process forgets the
    /// tokens it remembers at once (other processes hear of it from the database).
    access: Option<eventstore::AccessChanges>,
}

impl Admin {
    /// Administration over `store`'s database.
    pub fn new(store: &eventstore::EventStore) -> Admin {
        Admin {
            pool: store.pool().clone(),
            access: store.access_changes(),
        }
    }

    /// Counts a change to tokens or accounts made here (done or not: forgetting too much only
    /// costs a lookup).
    fn access_changed(&self) {
        if let Some(access) = &self.access {
            access.changed_here();
        }
    }

    /// The caller's own account.
    ///
    /// # Errors
    /// [`AppError::NotFound`] when the account is gone; a database failure.
    pub async fn me(&self, principal: &Principal) -> Result<StaffMember, AppError> {
        let client = self.pool.get().await?;
        access::staff_member(&**client, principal.organisation_id, principal.staff_id.0)
            .await?
            .ok_or_else(|| AppError::NotFound("no such staff member".into()))
    }

    /// Adds a team to the administrator's organisation (or returns the one of that name).
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_administer`]; a bad name; a database failure.
    pub async fn add_team(
        &self,
        principal: &Principal,
        request: &NewTeamRequest,
    ) -> Result<Team, AppError> {
        policy::may_administer(principal)?;
        let client = self.pool.get().await?;
        team_in(&**client, principal.organisation_id, &request.name).await
    }

    /// The organisation's teams by name, each with its active members and capacity.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_administer`]; a database failure.
    pub async fn teams(&self, principal: &Principal) -> Result<Vec<TeamSummary>, AppError> {
        policy::may_administer(principal)?;
        let default_capacity = crate::caseload::caseload_rules()?.default_capacity;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT t.team_id, t.name, \
                        count(s.staff_id) FILTER (WHERE s.active), \
                        count(s.staff_id) FILTER (WHERE s.active AND s.role = 'link_worker'), \
                        coalesce(sum(coalesce(s.capacity, $2)) \
                            FILTER (WHERE s.active AND s.role = 'link_worker'), 0) \
                 FROM teams t LEFT JOIN staff s ON s.team_id = t.team_id \
                 WHERE t.organisation_id = $1 GROUP BY t.team_id, t.name ORDER BY t.name",
                &[&principal.organisation_id, &default_capacity],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| TeamSummary {
                team_id: row.get(0),
                name: row.get(1),
                members: row.get(2),
                link_workers: row.get(3),
                capacity: row.get(4),
            })
            .collect())
    }

    /// One member of the organisation's staff.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_administer`]; [`AppError::NotFound`] for no such
    /// member of the organisation; a database failure.
    pub async fn staff_member(
        &self,
        principal: &Principal,
        staff_id: Uuid,
    ) -> Result<StaffMember, AppError> {
        policy::may_administer(principal)?;
        let client = self.pool.get().await?;
        access::staff_member(&**client, principal.organisation_id, staff_id)
            .await?
            .ok_or_else(|| AppError::NotFound("no such staff member".into()))
    }

    /// The organisation's staff, a page of `limit` after `cursor`.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_administer`]; then a `limit` out of bounds; a
    /// database failure.
    pub async fn list_staff(
        &self,
        principal: &Principal,
        cursor: Option<Uuid>,
        limit: Option<i64>,
    ) -> Result<StaffPage, AppError> {
        policy::may_administer(principal)?;
        let page = Page::new(cursor, limit)?;
        let client = self.pool.get().await?;
        let mut items = access::list_staff(
            &**client,
            principal.organisation_id,
            page.cursor,
            page.limit + 1,
        )
        .await?;
        let more = items.len() as i64 > page.limit;
        items.truncate(page.limit as usize);
        Ok(StaffPage {
            next_cursor: if more {
                items.last().map(|s| s.staff_id)
            } else {
                None
            },
            items,
        })
    }

    /// Adds a staff account to the administrator's organisation; a repeat of the same request
    /// naming its `staff_id` adds nothing and answers with the account.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_administer`]; a bad name, team or capacity; a
    /// `staff_id` that is another account's, or this one's with other details
    /// ([`access::AccessError::Conflict`]); a database failure.
    pub async fn add_staff(
        &self,
        principal: &Principal,
        request: &NewStaffRequest,
    ) -> Result<StaffMember, AppError> {
        policy::may_administer(principal)?;
        let client = self.pool.get().await?;
        staff_in(&**client, principal.organisation_id, request).await
    }

    /// Issues a bearer token to the caller themselves (shown once): a second device, or a
    /// token to replace one about to expire. Nobody issues a token for anyone else.
    ///
    /// # Errors
    /// A lifetime outside 1 to [`MAX_TOKEN_DAYS`] or a label over 200 characters; a
    /// database failure.
    pub async fn issue_own_token(
        &self,
        principal: &Principal,
        request: &TokenRequest,
    ) -> Result<IssuedToken, AppError> {
        policy::may_manage_credentials(principal, Account::Own, CredentialAction::IssueToken)?;
        let (valid_for, label) = token_terms(request)?;
        let client = self.pool.get().await?;
        Ok(access::issue_token(
            &**client,
            principal.staff_id.0,
            valid_for,
            &label,
            TokenIssuer::Holder {
                parent: principal.token_id,
            },
        )
        .await?)
    }

    /// Checks the policy for `action` on `staff_id`'s account: the role first, then that the
    /// account is of the caller's organisation (404 when not).
    async fn check_account(
        &self,
        client: &impl GenericClient,
        principal: &Principal,
        staff_id: Uuid,
        action: CredentialAction,
    ) -> Result<(), AppError> {
        if staff_id == principal.staff_id.0 {
            return Ok(policy::may_manage_credentials(
                principal,
                Account::Own,
                action,
            )?);
        }
        policy::may_manage_credentials(principal, Account::Colleague, action)?;
        if access::staff_member(client, principal.organisation_id, staff_id)
            .await?
            .is_none()
        {
            policy::may_manage_credentials(principal, Account::Elsewhere, action)
                .map_err(|denied| absent(denied, "no such staff member"))?;
            return Err(AppError::NotFound("no such staff member".into()));
        }
        Ok(())
    }

    /// Makes a one-time enrolment code for a staff member of the organisation (shown once),
    /// for them to redeem for a token only they see; it records who made it.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_manage_credentials`]; hours outside 1 to
    /// [`MAX_ENROLMENT_HOURS`]; an inactive staff member; a database failure.
    pub async fn enrol(
        &self,
        principal: &Principal,
        staff_id: Uuid,
        request: &EnrolmentRequest,
    ) -> Result<IssuedEnrolment, AppError> {
        let client = self.pool.get().await?;
        self.check_account(&**client, principal, staff_id, CredentialAction::Enrol)
            .await?;
        let valid_for = enrolment_terms(request)?;
        Ok(
            access::create_enrolment(&**client, staff_id, valid_for, Some(principal.staff_id.0))
                .await?,
        )
    }

    /// Redeems a one-time enrolment code for a token of its holder. No caller: the code is
    /// the credential.
    ///
    /// # Errors
    /// [`access::AccessError::BadToken`] for a code that is not live; a lifetime outside 1 to
    /// [`MAX_TOKEN_DAYS`] or a label over 200 characters; a database failure.
    pub async fn redeem(&self, request: &RedemptionRequest) -> Result<IssuedToken, AppError> {
        let (valid_for, label) = token_terms(&TokenRequest {
            valid_days: request.valid_days,
            label: request.label.clone(),
        })?;
        let mut client = self.pool.get().await?;
        Ok(access::redeem_enrolment(&mut client, &request.code, valid_for, &label).await?)
    }

    /// A staff member's tokens and enrolments (never their secrets), for them or an
    /// administrator of their organisation.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_manage_credentials`]; a database failure.
    pub async fn credentials(
        &self,
        principal: &Principal,
        staff_id: Uuid,
    ) -> Result<Credentials, AppError> {
        let client = self.pool.get().await?;
        self.check_account(&**client, principal, staff_id, CredentialAction::List)
            .await?;
        credentials_of(&**client, staff_id).await
    }

    /// Revokes every live token and unredeemed enrolment of a staff member: they stop at once.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_manage_credentials`]; a database failure.
    pub async fn revoke_all(
        &self,
        principal: &Principal,
        staff_id: Uuid,
    ) -> Result<Revoked, AppError> {
        let client = self.pool.get().await?;
        self.check_account(&**client, principal, staff_id, CredentialAction::Revoke)
            .await?;
        let mut client = client;
        let revoked = access::revoke_all(&mut client, staff_id).await;
        self.access_changed();
        Ok(revoked?)
    }

    /// Deactivates a staff member of the organisation (every token and enrolment is revoked
    /// with it, at once) or reactivates them (they enrol again to get a token).
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_manage_credentials`]; a database failure.
    pub async fn set_active(
        &self,
        principal: &Principal,
        staff_id: Uuid,
        active: bool,
    ) -> Result<StaffMember, AppError> {
        let client = self.pool.get().await?;
        self.check_account(&**client, principal, staff_id, CredentialAction::SetActive)
            .await?;
        let changed = access::set_active(
            &**client,
            Some(principal.organisation_id),
            staff_id,
            active,
            Some(principal.staff_id.0),
        )
        .await;
        self.access_changed();
        let (member, _) =
            changed?.ok_or_else(|| AppError::NotFound("no such staff member".into()))?;
        Ok(member)
    }

    /// [`Admin::revoke_token`] for a token of one member of staff (`staff_id`): a token of
    /// anyone else is no such token (a staff page revokes only what it lists).
    ///
    /// # Errors
    /// As [`Admin::revoke_token`].
    pub async fn revoke_token_of(
        &self,
        principal: &Principal,
        staff_id: Uuid,
        token_id: Uuid,
    ) -> Result<(), AppError> {
        let holder = {
            let client = self.pool.get().await?;
            access::token_holder(&**client, token_id).await?
        };
        match holder {
            Some((holder, _)) if holder == staff_id => self.revoke_token(principal, token_id).await,
            _ => {
                policy::may_manage_credentials(
                    principal,
                    Account::Colleague,
                    CredentialAction::Revoke,
                )?;
                Err(AppError::NotFound("no such live token".into()))
            }
        }
    }

    /// Revokes a token: the holder's own, or any of the organisation's staff's for an
    /// administrator. It stops working at once.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_manage_credentials`]; [`AppError::NotFound`] for
    /// no live token of the organisation; a database failure.
    pub async fn revoke_token(
        &self,
        principal: &Principal,
        token_id: Uuid,
    ) -> Result<(), AppError> {
        let client = self.pool.get().await?;
        let account = match access::token_holder(&**client, token_id).await? {
            Some((holder, _)) if holder == principal.staff_id.0 => Account::Own,
            Some((_, organisation)) if organisation == principal.organisation_id => {
                Account::Colleague
            }
            _ => Account::Elsewhere,
        };
        if account == Account::Elsewhere {
            // The role first: a refusal that says nothing about the token.
            policy::may_manage_credentials(
                principal,
                Account::Colleague,
                CredentialAction::Revoke,
            )?;
        }
        policy::may_manage_credentials(principal, account, CredentialAction::Revoke)
            .map_err(|denied| absent(denied, "no such live token"))?;
        let revoked = access::revoke_token(&**client, principal.organisation_id, token_id).await;
        self.access_changed();
        if revoked? {
            Ok(())
        } else {
            Err(AppError::NotFound("no such live token".into()))
        }
    }
}

/// A staff member's tokens and enrolments, and whether the account is active.
async fn credentials_of(
    client: &impl GenericClient,
    staff_id: Uuid,
) -> Result<Credentials, AppError> {
    let active = client
        .query_opt("SELECT active FROM staff WHERE staff_id = $1", &[&staff_id])
        .await
        .map_err(access::AccessError::from)?
        .ok_or_else(|| AppError::NotFound("no such staff member".into()))?
        .get(0);
    let (tokens, enrolments) = access::credentials(client, staff_id).await?;
    Ok(Credentials {
        staff_id,
        active,
        tokens,
        enrolments,
    })
}

/// The operator at the console (`casebook org | team | staff | token`): administration of any
/// organisation, under the same rules as [`Admin`] but without a caller's policy, on the
/// database owner's connection (the service's role may not create organisations).
pub struct Operator<'c, C> {
    client: &'c C,
}

impl<'c, C: GenericClient> Operator<'c, C> {
    /// The operator acting on `client`.
    pub fn new(client: &'c C) -> Operator<'c, C> {
        Operator { client }
    }

    /// Creates an organisation (or finds the one of that name); its id.
    ///
    /// # Errors
    /// A bad name; a database failure.
    pub async fn add_organisation(&self, requested: &str) -> Result<Uuid, AppError> {
        let name = name(requested)?;
        Ok(access::ensure_organisation(self.client, &name).await?)
    }

    /// Adds a team to an organisation (or returns the one of that name).
    ///
    /// # Errors
    /// A bad name or an unknown organisation; a database failure.
    pub async fn add_team(&self, organisation_id: Uuid, name: &str) -> Result<Team, AppError> {
        team_in(self.client, organisation_id, name).await
    }

    /// Adds a staff account to an organisation.
    ///
    /// # Errors
    /// As [`Admin::add_staff`], without the policy.
    pub async fn add_staff(
        &self,
        organisation_id: Uuid,
        request: &NewStaffRequest,
    ) -> Result<StaffMember, AppError> {
        staff_in(self.client, organisation_id, request).await
    }

    /// Issues a bearer token for any active staff member (shown once), recorded as the
    /// operator's: how an organisation's first administrator starts.
    ///
    /// # Errors
    /// A lifetime outside 1 to [`MAX_TOKEN_DAYS`] or a label over 200 characters (the API's
    /// limits); an unknown or inactive staff member; a database failure.
    pub async fn issue_token(
        &self,
        staff_id: Uuid,
        request: &TokenRequest,
    ) -> Result<IssuedToken, AppError> {
        let (valid_for, label) = token_terms(request)?;
        Ok(access::issue_token(
            self.client,
            staff_id,
            valid_for,
            &label,
            TokenIssuer::Operator,
        )
        .await?)
    }

    /// Makes a one-time enrolment code for any active staff member (shown once).
    ///
    /// # Errors
    /// Hours outside 1 to [`MAX_ENROLMENT_HOURS`]; an unknown or inactive staff member; a
    /// database failure.
    pub async fn enrol(
        &self,
        staff_id: Uuid,
        request: &EnrolmentRequest,
    ) -> Result<IssuedEnrolment, AppError> {
        let valid_for = enrolment_terms(request)?;
        Ok(access::create_enrolment(self.client, staff_id, valid_for, None).await?)
    }

    /// Any staff member's tokens and enrolments.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such staff member; a database failure.
    pub async fn credentials(&self, staff_id: Uuid) -> Result<Credentials, AppError> {
        credentials_of(self.client, staff_id).await
    }

    /// Deactivates (revoking every token and enrolment) or reactivates any staff member.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such staff member; a database failure.
    pub async fn set_active(
        &self,
        staff_id: Uuid,
        active: bool,
    ) -> Result<(StaffMember, Revoked), AppError> {
        access::set_active(self.client, None, staff_id, active, None)
            .await?
            .ok_or_else(|| AppError::NotFound("no such staff member".into()))
    }

    /// Revokes a token of any organisation's staff; false when it was already revoked.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such token; a database failure.
    pub async fn revoke_token(&self, token_id: Uuid) -> Result<bool, AppError> {
        let (_, organisation_id) = access::token_holder(self.client, token_id)
            .await?
            .ok_or_else(|| AppError::NotFound("no such token".into()))?;
        Ok(access::revoke_token(self.client, organisation_id, token_id).await?)
    }
}

/// A refusal of another organisation's account or token: absent, named as what is absent (the
/// policy's 404 names no record of its own); any other refusal as it is.
fn absent(denied: crate::Denied, what: &str) -> AppError {
    match denied {
        crate::Denied::NotFound => AppError::NotFound(what.into()),
        forbidden @ crate::Denied::Forbidden(_) => forbidden.into(),
    }
}
