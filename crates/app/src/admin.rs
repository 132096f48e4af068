//! Administration within an organisation: teams, staff accounts and their tokens, for
//! administrators only (none of it reads client records); and each member of staff's own
//! account; and the operator at the console, under the same rules.

use chrono::Duration;
use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::access::{self, IssuedToken, NewStaff, Principal, Role, StaffMember};
use crate::error::{AppError, Page};
use crate::policy;

/// The longest a token issued by an administrator lives.
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
    Ok(access::add_staff(
        client,
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
}

impl Admin {
    /// Administration over `store`'s database.
    pub fn new(store: &eventstore::EventStore) -> Admin {
        Admin {
            pool: store.pool().clone(),
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

    /// Adds a staff account to the administrator's organisation.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_administer`]; a bad name, team or capacity; a
    /// database failure.
    pub async fn add_staff(
        &self,
        principal: &Principal,
        request: &NewStaffRequest,
    ) -> Result<StaffMember, AppError> {
        policy::may_administer(principal)?;
        let client = self.pool.get().await?;
        staff_in(&**client, principal.organisation_id, request).await
    }

    /// Issues a bearer token for a staff member of the organisation (shown once).
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_administer`]; a lifetime outside 1 to
    /// [`MAX_TOKEN_DAYS`] or a label over 200 characters; [`AppError::NotFound`] for staff not
    /// of the organisation; a database failure.
    pub async fn issue_token(
        &self,
        principal: &Principal,
        staff_id: Uuid,
        request: &TokenRequest,
    ) -> Result<IssuedToken, AppError> {
        policy::may_administer(principal)?;
        let (valid_for, label) = token_terms(request)?;
        let client = self.pool.get().await?;
        if access::staff_member(&**client, principal.organisation_id, staff_id)
            .await?
            .is_none()
        {
            return Err(AppError::NotFound("no such staff member".into()));
        }
        Ok(access::issue_token(&**client, staff_id, valid_for, &label).await?)
    }

    /// Revokes a token of the organisation's staff; it stops working at once.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::may_administer`]; [`AppError::NotFound`] for no live
    /// token of the organisation; a database failure.
    pub async fn revoke_token(
        &self,
        principal: &Principal,
        token_id: Uuid,
    ) -> Result<(), AppError> {
        policy::may_administer(principal)?;
        let client = self.pool.get().await?;
        if access::revoke_token(&**client, principal.organisation_id, token_id).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("no such live token".into()))
        }
    }
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

    /// Issues a bearer token for any active staff member (shown once).
    ///
    /// # Errors
    /// As [`Admin::issue_token`], without the policy; an unknown or inactive staff member.
    pub async fn issue_token(
        &self,
        staff_id: Uuid,
        request: &TokenRequest,
    ) -> Result<IssuedToken, AppError> {
        let (valid_for, label) = token_terms(request)?;
        Ok(access::issue_token(self.client, staff_id, valid_for, &label).await?)
    }

    /// Revokes a token of any organisation's staff; false when it was already revoked.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such token; a database failure.
    pub async fn revoke_token(&self, token_id: Uuid) -> Result<bool, AppError> {
        let organisation_id = access::token_organisation(self.client, token_id)
            .await?
            .ok_or_else(|| AppError::NotFound("no such token".into()))?;
        Ok(access::revoke_token(self.client, organisation_id, token_id).await?)
    }
}
