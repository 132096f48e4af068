//! Who may use Casebook: organisations, teams, staff with one role each, and the bearer tokens
//! they present. Tokens are `cbk_<token id>_<secret>`; only SHA-256 of the 256-bit random
//! secret is stored, so a copy of the database does not hold usable tokens.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use domain::{StaffId, TeamId};
use eventstore::Metadata;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// What a staff member may do. One role per account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Submits referrals and follows the status of their own.
    Referrer,
    /// Works the cases assigned to them.
    LinkWorker,
    /// Triages referrals, assigns and transfers cases, and works any case of their team.
    TeamLead,
    /// Reads any client's journey in their organisation and who viewed it; writes nothing.
    Auditor,
    /// Reads aggregate reports only, never personal data.
    ReportingAnalyst,
    /// Manages staff and tokens; reads no client records.
    Administrator,
    /// A GP practice's system: submits referrals over FHIR and follows its own (a client
    /// credential, not a person).
    PracticeSystem,
    /// A directory service's own staff (provider staff): sees the connections made to the
    /// services they are tied to, answers them, and says whether the person started; nothing
    /// else of any record.
    ServiceProvider,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 8] = [
        Role::Referrer,
        Role::LinkWorker,
        Role::TeamLead,
        Role::Auditor,
        Role::ReportingAnalyst,
        Role::Administrator,
        Role::PracticeSystem,
        Role::ServiceProvider,
    ];

    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Referrer => "referrer",
            Role::LinkWorker => "link_worker",
            Role::TeamLead => "team_lead",
            Role::Auditor => "auditor",
            Role::ReportingAnalyst => "reporting_analyst",
            Role::Administrator => "administrator",
            Role::PracticeSystem => "practice_system",
            Role::ServiceProvider => "service_provider",
        }
    }

    /// Whether accounts with this role belong to a team.
    pub fn needs_team(self) -> bool {
        matches!(self, Role::LinkWorker | Role::TeamLead)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role {s:?}; one of {}", names.join(", "))
            })
    }
}

/// The authenticated caller of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub staff_id: StaffId,
    pub organisation_id: Uuid,
    pub team_id: Option<TeamId>,
    pub role: Role,
    pub token_id: Uuid,
}

impl Principal {
    /// The metadata of what this caller records at `occurred_at` for the request
    /// `correlation_id`, under their own organisation.
    pub fn metadata(&self, correlation_id: Uuid, occurred_at: DateTime<Utc>) -> Metadata {
        Metadata {
            actor_id: self.staff_id.0,
            actor_role: self.role.as_str().to_owned(),
            organisation_id: self.organisation_id,
            correlation_id,
            causation_id: None,
            occurred_at,
        }
    }
}

/// A staff account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StaffMember {
    pub staff_id: Uuid,
    pub organisation_id: Uuid,
    pub team_id: Option<Uuid>,
    pub name: String,
    pub role: Role,
    /// People a year this worker can support (link workers).
    pub capacity: Option<i32>,
    pub active: bool,
}

/// A new staff account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewStaff {
    pub organisation_id: Uuid,
    pub team_id: Option<Uuid>,
    pub name: String,
    pub role: Role,
    pub capacity: Option<i32>,
}

/// A token as issued: the secret is shown once and never stored.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub token_id: Uuid,
    pub staff_id: Uuid,
    /// Present as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Why access management refused something.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The request names something that does not fit (a team of another organisation...).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The request names, by `field`, something that exists as something else (a staff id
    /// taken by another account): nothing was done.
    #[error("{field}: {message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    /// The token is missing, malformed, unknown, expired or revoked (deliberately not saying
    /// which).
    #[error("the bearer token is not valid")]
    BadToken,
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    #[error("no random numbers: {0}")]
    Random(String),
    /// A stored row that does not read (a role this build does not know).
    #[error("unreadable staff row: {0}")]
    Corrupt(String),
}

fn invalid(field: &'static str, message: impl Into<String>) -> AccessError {
    AccessError::Invalid {
        field,
        message: message.into(),
    }
}

const TOKEN_PREFIX: &str = "cbk_";

/// The largest capacity an account can state (the API schema says the same).
pub const MAX_CAPACITY: i32 = 100_000;

/// Creates an organisation, or returns the one of that name.
///
/// # Errors
/// A database failure.
pub async fn ensure_organisation(
    client: &impl GenericClient,
    name: &str,
) -> Result<Uuid, AccessError> {
    if name.trim().is_empty() {
        return Err(invalid("name", "an organisation needs a name"));
    }
    let row = client
        .query_one(
            "WITH new AS (INSERT INTO organisations (organisation_id, name) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING RETURNING organisation_id) \
             SELECT organisation_id FROM new UNION ALL \
             SELECT organisation_id FROM organisations WHERE name = $2 LIMIT 1",
            &[&Uuid::now_v7(), &name],
        )
        .await?;
    Ok(row.get(0))
}

/// Creates a team in an organisation, or returns the one of that name there.
///
/// # Errors
/// [`AccessError::Invalid`] for an unknown organisation; a database failure.
pub async fn ensure_team(
    client: &impl GenericClient,
    organisation_id: Uuid,
    name: &str,
) -> Result<TeamId, AccessError> {
    if name.trim().is_empty() {
        return Err(invalid("name", "a team needs a name"));
    }
    let exists = client
        .query_opt(
            "SELECT 1 FROM organisations WHERE organisation_id = $1",
            &[&organisation_id],
        )
        .await?;
    if exists.is_none() {
        return Err(invalid("organisation_id", "no such organisation"));
    }
    let row = client
        .query_one(
            "WITH new AS (INSERT INTO teams (team_id, organisation_id, name) VALUES ($1, $2, $3) \
             ON CONFLICT (organisation_id, name) DO NOTHING RETURNING team_id) \
             SELECT team_id FROM new UNION ALL \
             SELECT team_id FROM teams WHERE organisation_id = $2 AND name = $3 LIMIT 1",
            &[&Uuid::now_v7(), &organisation_id, &name],
        )
        .await?;
    Ok(TeamId(row.get(0)))
}

/// Adds a staff account, under a new id.
///
/// # Errors
/// As [`add_staff_as`].
pub async fn add_staff(
    client: &impl GenericClient,
    staff: &NewStaff,
) -> Result<StaffMember, AccessError> {
    add_staff_as(client, None, staff).await
}

/// Adds a staff account under `staff_id` (the caller's choice, so that a retry names the same
/// account; none: a new id). A repeat of the same request (the same id, organisation, team,
/// name, role and capacity) answers with the account as it is and adds nothing.
///
/// # Errors
/// [`AccessError::Invalid`] for a missing name, a team outside the organisation, or a role
/// that needs a team without one; [`AccessError::Conflict`] naming `staff_id` when that id is
/// another account's, or this account's with other details; a database failure.
pub async fn add_staff_as(
    client: &impl GenericClient,
    staff_id: Option<Uuid>,
    staff: &NewStaff,
) -> Result<StaffMember, AccessError> {
    if staff.name.trim().is_empty() {
        return Err(invalid("name", "a staff member needs a name"));
    }
    if staff.role.needs_team() && staff.team_id.is_none() {
        return Err(invalid(
            "team_id",
            format!("a {} belongs to a team", staff.role),
        ));
    }
    if staff
        .capacity
        .is_some_and(|c| !(1..=MAX_CAPACITY).contains(&c))
    {
        return Err(invalid(
            "capacity",
            format!("capacity is a number of people a year, 1 to {MAX_CAPACITY}"),
        ));
    }
    if let Some(team_id) = staff.team_id {
        let team = client
            .query_opt(
                "SELECT 1 FROM teams WHERE team_id = $1 AND organisation_id = $2",
                &[&team_id, &staff.organisation_id],
            )
            .await?;
        if team.is_none() {
            return Err(invalid("team_id", "no such team in this organisation"));
        }
    }
    // The nil id is the log's own actor (the system, an operator at the command line): an
    // account under it, or under the all-ones id, would pass for it.
    if staff_id.is_some_and(|id| id.is_nil() || id.is_max()) {
        return Err(invalid(
            "staff_id",
            "choose a random id (a UUID of version 4 or 7), not the nil or all-ones id",
        ));
    }
    let staff_id = staff_id.unwrap_or_else(Uuid::now_v7);
    let added = client
        .execute(
            "INSERT INTO staff (staff_id, organisation_id, team_id, name, role, capacity) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (staff_id) DO NOTHING",
            &[
                &staff_id,
                &staff.organisation_id,
                &staff.team_id,
                &staff.name,
                &staff.role.as_str(),
                &staff.capacity,
            ],
        )
        .await
        .map_err(|e| match e.code() {
            Some(code) if *code == tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION => {
                invalid("organisation_id", "no such organisation")
            }
            _ => AccessError::Database(e),
        })?;
    let asked = StaffMember {
        staff_id,
        organisation_id: staff.organisation_id,
        team_id: staff.team_id,
        name: staff.name.clone(),
        role: staff.role,
        capacity: staff.capacity,
        active: true,
    };
    if added == 1 {
        return Ok(asked);
    }
    // The id is taken: by this very request made before (answered as the account is now,
    // active or not), or by something else.
    let row = client
        .query_opt(
            &format!("SELECT {STAFF_COLUMNS} FROM staff WHERE staff_id = $1"),
            &[&staff_id],
        )
        .await?;
    match row.as_ref().map(staff_from_row).transpose()? {
        Some(existing)
            if (
                existing.organisation_id,
                existing.team_id,
                &existing.name,
                existing.role,
                existing.capacity,
            ) == (
                asked.organisation_id,
                asked.team_id,
                &asked.name,
                asked.role,
                asked.capacity,
            ) =>
        {
            Ok(existing)
        }
        _ => Err(AccessError::Conflict {
            field: "staff_id",
            message: "that id is another staff account's, or this one's with other details"
                .to_owned(),
        }),
    }
}

const STAFF_COLUMNS: &str = "staff_id, organisation_id, team_id, name, role, capacity, active";

fn staff_from_row(row: &tokio_postgres::Row) -> Result<StaffMember, AccessError> {
    let role: String = row.get(4);
    Ok(StaffMember {
        staff_id: row.get(0),
        organisation_id: row.get(1),
        team_id: row.get(2),
        name: row.get(3),
        // The column's CHECK keeps it to known roles; anything else is an error, never a
        // guess.
        role: role.parse().map_err(AccessError::Corrupt)?,
        capacity: row.get(5),
        active: row.get(6),
    })
}

/// One staff account of an organisation.
///
/// # Errors
/// A database failure.
pub async fn staff_member(
    client: &impl GenericClient,
    organisation_id: Uuid,
    staff_id: Uuid,
) -> Result<Option<StaffMember>, AccessError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {STAFF_COLUMNS} FROM staff WHERE organisation_id = $1 AND staff_id = $2"
            ),
            &[&organisation_id, &staff_id],
        )
        .await?;
    row.as_ref().map(staff_from_row).transpose()
}

/// Binds a GP practice's system (a staff account of role `practice_system`) to the practice it
/// speaks for, by its ODS code (a letter and five digits): from then on its referrals may name
/// that practice only (`CaseService`'s check of whom a command names). Binding again moves it.
///
/// # Errors
/// [`AccessError::Invalid`] naming `ods_code` or `staff_id` (no such account, or not a
/// practice's system); a database failure.
pub async fn bind_practice(
    client: &impl GenericClient,
    staff_id: Uuid,
    ods_code: &str,
) -> Result<(), AccessError> {
    if !domain::is_practice_code(ods_code) {
        return Err(AccessError::Invalid {
            field: "ods_code",
            message: "a GP practice's ODS code is a capital letter and five digits (A81001)"
                .to_owned(),
        });
    }
    let role: Option<String> = client
        .query_opt("SELECT role FROM staff WHERE staff_id = $1", &[&staff_id])
        .await?
        .map(|row| row.get(0));
    if role.as_deref() != Some(Role::PracticeSystem.as_str()) {
        return Err(AccessError::Invalid {
            field: "staff_id",
            message: "no practice's system (a staff account of role practice_system) has this id"
                .to_owned(),
        });
    }
    client
        .execute(
            "INSERT INTO practice_system_practices (staff_id, ods_code) VALUES ($1, $2) \
             ON CONFLICT (staff_id) DO UPDATE SET ods_code = $2, bound_at = now()",
            &[&staff_id, &ods_code],
        )
        .await?;
    Ok(())
}

/// The practice a GP practice's system is bound to ([`bind_practice`]), if it is.
///
/// # Errors
/// A database failure.
pub async fn bound_practice(
    client: &impl GenericClient,
    staff_id: Uuid,
) -> Result<Option<String>, AccessError> {
    Ok(client
        .query_opt(
            "SELECT ods_code FROM practice_system_practices WHERE staff_id = $1",
            &[&staff_id],
        )
        .await?
        .map(|row| row.get(0)))
}

/// One staff account of an organisation, on a pooled connection, with the statement prepared
/// once per connection (an assignment or transfer looks up the link worker it names).
///
/// # Errors
/// A database failure.
pub async fn staff_member_cached(
    client: &db::deadpool_postgres::Client,
    organisation_id: Uuid,
    staff_id: Uuid,
) -> Result<Option<StaffMember>, AccessError> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {STAFF_COLUMNS} FROM staff WHERE organisation_id = $1 AND staff_id = $2"
        ))
        .await?;
    let row = client
        .query_opt(&statement, &[&organisation_id, &staff_id])
        .await?;
    row.as_ref().map(staff_from_row).transpose()
}

/// An organisation's staff in id order, after `after`, at most `limit`.
///
/// # Errors
/// A database failure.
pub async fn list_staff(
    client: &impl GenericClient,
    organisation_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StaffMember>, AccessError> {
    let rows = client
        .query(
            &format!(
                "SELECT {STAFF_COLUMNS} FROM staff WHERE organisation_id = $1 AND ($2::uuid IS NULL OR staff_id > $2) \
                 ORDER BY staff_id LIMIT $3"
            ),
            &[&organisation_id, &after, &limit],
        )
        .await?;
    rows.iter().map(staff_from_row).collect()
}

pub(crate) fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Who issued a token. A token is always issued to its own holder: nobody else can mint one
/// that acts as them (an administrator makes a one-time enrolment the holder redeems).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenIssuer {
    /// The operator at the console, who holds the database itself (how an organisation's first
    /// administrator starts).
    Operator,
    /// Casebook itself (the demo's tokens).
    System,
    /// The holder, with a token of their own (`parent`): the new one never outlives it and is
    /// revoked with it.
    Holder { parent: Uuid },
    /// The holder, redeeming an enrolment made by `issued_by` (`None`: the operator).
    Enrolment {
        enrolment_id: Uuid,
        issued_by: Option<Uuid>,
    },
}

impl TokenIssuer {
    /// The stored `issued_via`, `issued_by`, `enrolment_id` and `parent_token_id` for a token
    /// of `staff_id`.
    fn columns(self, staff_id: Uuid) -> (&'static str, Option<Uuid>, Option<Uuid>, Option<Uuid>) {
        match self {
            TokenIssuer::Operator => ("operator", None, None, None),
            TokenIssuer::System => ("system", None, None, None),
            TokenIssuer::Holder { parent } => ("self", Some(staff_id), None, Some(parent)),
            TokenIssuer::Enrolment {
                enrolment_id,
                issued_by,
            } => ("enrolment", issued_by, Some(enrolment_id), None),
        }
    }
}

/// 256 random bits as hex.
pub(crate) fn random_secret() -> Result<String, AccessError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AccessError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Refuses an unknown or inactive staff member.
pub(crate) async fn require_active(
    client: &impl GenericClient,
    staff_id: Uuid,
) -> Result<(), AccessError> {
    let active = client
        .query_opt("SELECT active FROM staff WHERE staff_id = $1", &[&staff_id])
        .await?;
    match active {
        Some(row) if row.get::<_, bool>(0) => Ok(()),
        Some(_) => Err(invalid("staff_id", "this staff member is not active")),
        None => Err(invalid("staff_id", "no such staff member")),
    }
}

/// Issues a token for an active staff member, valid for `valid_for`, recording who issued it.
///
/// One statement that reads the staff row (and a parent token's row) `FOR SHARE`: a
/// deactivation or a revocation of the parent, which update those rows, waits for it to commit
/// and then revokes what it made, or it waits for them and finds the account inactive or the
/// parent revoked. A token issued with a parent never outlives it.
///
/// # Errors
/// [`AccessError::Invalid`] for an unknown or inactive staff member, or a parent token that is
/// not live; a database failure.
pub async fn issue_token(
    client: &impl GenericClient,
    staff_id: Uuid,
    valid_for: Duration,
    label: &str,
    issuer: TokenIssuer,
) -> Result<IssuedToken, AccessError> {
    if valid_for <= Duration::zero() {
        return Err(invalid("valid_days", "a token must be valid for some time"));
    }
    let secret = random_secret()?;
    let token_id = Uuid::now_v7();
    let (issued_via, issued_by, enrolment_id, parent) = issuer.columns(staff_id);
    // The parent's row is locked too: its revocation waits for this token and then revokes
    // it, or this waits for the revocation and issues nothing.
    let sql = if parent.is_some() {
        "INSERT INTO api_tokens (token_id, staff_id, secret_hash, label, expires_at, \
         issued_via, issued_by, enrolment_id, parent_token_id) \
         SELECT $1, s.staff_id, $3, $4, least(now() + make_interval(secs => $5), p.expires_at), \
           $6, $7, $8, p.token_id \
         FROM staff s JOIN api_tokens p ON p.token_id = $9 AND p.staff_id = s.staff_id \
         WHERE s.staff_id = $2 AND s.active AND p.revoked_at IS NULL AND p.expires_at > now() \
         FOR SHARE OF s, p \
         RETURNING expires_at"
    } else {
        "INSERT INTO api_tokens (token_id, staff_id, secret_hash, label, expires_at, \
         issued_via, issued_by, enrolment_id, parent_token_id) \
         SELECT $1, s.staff_id, $3, $4, now() + make_interval(secs => $5), $6, $7, $8, $9 \
         FROM staff s WHERE s.staff_id = $2 AND s.active \
         FOR SHARE OF s \
         RETURNING expires_at"
    };
    let row = client
        .query_opt(
            sql,
            &[
                &token_id,
                &staff_id,
                &secret_hash(&secret),
                &label,
                &(valid_for.num_seconds() as f64),
                &issued_via,
                &issued_by,
                &enrolment_id,
                &parent,
            ],
        )
        .await?;
    let Some(row) = row else {
        if parent.is_some() {
            return Err(AccessError::BadToken);
        }
        require_active(client, staff_id).await?;
        return Err(invalid("staff_id", "this staff member is not active"));
    };
    Ok(IssuedToken {
        token_id,
        staff_id,
        token: format!("{TOKEN_PREFIX}{}_{secret}", token_id.simple()),
        expires_at: row.get(0),
    })
}

const ENROLMENT_PREFIX: &str = "cbe_";

/// A one-time enrolment as made: the code is shown once, to be given to the holder only.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedEnrolment {
    pub enrolment_id: Uuid,
    pub staff_id: Uuid,
    /// Give this to the holder, and no one else: they redeem it once, before `expires_at`, at
    /// `POST /api/v1/enrolments/redemption`, for a token only they see.
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// Makes a one-time enrolment for an active staff member, valid for `valid_for`; `issued_by`
/// is the administrator who made it (`None`: the operator).
///
/// # Errors
/// [`AccessError::Invalid`] for an unknown or inactive staff member; a database failure.
pub async fn create_enrolment(
    client: &impl GenericClient,
    staff_id: Uuid,
    valid_for: Duration,
    issued_by: Option<Uuid>,
) -> Result<IssuedEnrolment, AccessError> {
    let kept_in = ("enrolments", "enrolment_id", ENROLMENT_PREFIX);
    let (enrolment_id, code, expires_at) =
        one_time_code(client, kept_in, staff_id, valid_for, issued_by).await?;
    Ok(IssuedEnrolment {
        enrolment_id,
        staff_id,
        code,
        expires_at,
    })
}

/// Makes a one-time code for an active staff member, valid for `valid_for` (by the database's
/// clock): its id, the code (`prefix`, the id, `_` and a fresh secret, as [`parse_credential`]
/// reads it) and when it expires. The code is kept as enrolments and sign-in links keep theirs,
/// in `table` keyed by `id_column`: only the secret's hash, with who it is for and who made it
/// (`issued_by`; `None`: the operator).
///
/// # Errors
/// [`AccessError::Invalid`] for an unknown or inactive staff member; a database failure.
pub(crate) async fn one_time_code(
    client: &impl GenericClient,
    (table, id_column, prefix): (&str, &str, &str),
    staff_id: Uuid,
    valid_for: Duration,
    issued_by: Option<Uuid>,
) -> Result<(Uuid, String, DateTime<Utc>), AccessError> {
    require_active(client, staff_id).await?;
    let secret = random_secret()?;
    let id = Uuid::now_v7();
    let row = client
        .query_one(
            &format!(
                "INSERT INTO {table} ({id_column}, staff_id, secret_hash, issued_by, expires_at) \
                 VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING expires_at"
            ),
            &[
                &id,
                &staff_id,
                &secret_hash(&secret),
                &issued_by,
                &(valid_for.num_seconds() as f64),
            ],
        )
        .await?;
    let code = format!("{prefix}{}_{secret}", id.simple());
    Ok((id, code, row.get(0)))
}

/// Redeems a one-time enrolment code for a token of its holder, in one transaction: a code
/// redeems once, however many try at the same moment.
///
/// # Errors
/// [`AccessError::BadToken`] for a code that is malformed, unknown, used, revoked, expired, or
/// whose holder is no longer active (deliberately not saying which); a database failure.
pub async fn redeem_enrolment(
    client: &mut tokio_postgres::Client,
    code: &str,
    valid_for: Duration,
    label: &str,
) -> Result<IssuedToken, AccessError> {
    let (enrolment_id, secret) = parse_credential(ENROLMENT_PREFIX, code)?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT e.secret_hash, e.staff_id, e.issued_by FROM enrolments e \
             JOIN staff s USING (staff_id) \
             WHERE e.enrolment_id = $1 AND e.redeemed_at IS NULL AND e.revoked_at IS NULL \
             AND e.expires_at > now() AND s.active FOR UPDATE OF e",
            &[&enrolment_id],
        )
        .await?
        .ok_or(AccessError::BadToken)?;
    let stored: Vec<u8> = row.get(0);
    if stored != secret_hash(secret) {
        return Err(AccessError::BadToken);
    }
    let staff_id: Uuid = row.get(1);
    let issuer = TokenIssuer::Enrolment {
        enrolment_id,
        issued_by: row.get(2),
    };
    let token = issue_token(&tx, staff_id, valid_for, label, issuer).await?;
    tx.execute(
        "UPDATE enrolments SET redeemed_at = now(), token_id = $2 WHERE enrolment_id = $1",
        &[&enrolment_id, &token.token_id],
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// A token as an administrator or its holder sees it: never the secret.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TokenSummary {
    pub token_id: Uuid,
    pub label: String,
    /// How it was issued: `self`, `enrolment`, `operator`, `system`, or `unrecorded` (before
    /// Casebook kept it).
    pub issued_via: String,
    /// Who issued it: the holder (`self`), the administrator who made the enrolment, or absent
    /// (the operator, the system).
    pub issued_by: Option<Uuid>,
    pub enrolment_id: Option<Uuid>,
    /// For a token its holder issued: the token they issued it with.
    pub parent_token_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Whether it works now (not revoked, not expired, its holder active).
    pub live: bool,
}

/// An enrolment as an administrator sees it: never the code.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EnrolmentSummary {
    pub enrolment_id: Uuid,
    pub issued_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub redeemed_at: Option<DateTime<Utc>>,
    /// The token it was redeemed for.
    pub token_id: Option<Uuid>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Every token and enrolment of a staff member, newest first.
///
/// # Errors
/// A database failure.
pub async fn credentials(
    client: &impl GenericClient,
    staff_id: Uuid,
) -> Result<(Vec<TokenSummary>, Vec<EnrolmentSummary>), AccessError> {
    let tokens = client
        .query(
            "SELECT t.token_id, t.label, t.issued_via, t.issued_by, t.enrolment_id, t.created_at, \
             t.expires_at, t.revoked_at, t.parent_token_id, \
             (t.revoked_at IS NULL AND t.expires_at > now() AND s.active) \
             FROM api_tokens t JOIN staff s USING (staff_id) \
             WHERE t.staff_id = $1 ORDER BY t.created_at DESC, t.token_id DESC",
            &[&staff_id],
        )
        .await?
        .iter()
        .map(|row| TokenSummary {
            token_id: row.get(0),
            label: row.get(1),
            issued_via: row.get(2),
            issued_by: row.get(3),
            enrolment_id: row.get(4),
            created_at: row.get(5),
            expires_at: row.get(6),
            revoked_at: row.get(7),
            parent_token_id: row.get(8),
            live: row.get(9),
        })
        .collect();
    let enrolments = client
        .query(
            "SELECT enrolment_id, issued_by, created_at, expires_at, redeemed_at, token_id, \
             revoked_at FROM enrolments WHERE staff_id = $1 \
             ORDER BY created_at DESC, enrolment_id DESC",
            &[&staff_id],
        )
        .await?
        .iter()
        .map(|row| EnrolmentSummary {
            enrolment_id: row.get(0),
            issued_by: row.get(1),
            created_at: row.get(2),
            expires_at: row.get(3),
            redeemed_at: row.get(4),
            token_id: row.get(5),
            revoked_at: row.get(6),
        })
        .collect();
    Ok((tokens, enrolments))
}

/// What revoking everything of a staff member revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Revoked {
    pub tokens: u64,
    pub enrolments: u64,
}

/// Revokes every live token and unredeemed enrolment of a staff member; they stop at once.
///
/// In one transaction that first locks the staff row, so a token being issued (which reads the
/// row `FOR SHARE`) is either committed before and revoked here, or waits and is issued after:
/// none slips between.
///
/// # Errors
/// A database failure.
pub async fn revoke_all(
    client: &mut tokio_postgres::Client,
    staff_id: Uuid,
) -> Result<Revoked, AccessError> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT 1 FROM staff WHERE staff_id = $1 FOR UPDATE",
        &[&staff_id],
    )
    .await?;
    let revoked = revoke_every(&tx, staff_id).await?;
    tx.commit().await?;
    Ok(revoked)
}

/// Revokes every live token and unredeemed enrolment of a staff member, in one statement, and
/// ends their console sessions and unused sign-in links ([`crate::sessions`]).
async fn revoke_every(client: &impl GenericClient, staff_id: Uuid) -> Result<Revoked, AccessError> {
    crate::sessions::revoke_sessions(client, staff_id).await?;
    let row = client
        .query_one(
            "WITH tokens AS ( \
               UPDATE api_tokens SET revoked_at = now() \
               WHERE staff_id = $1 AND revoked_at IS NULL RETURNING 1), \
             enrolled AS ( \
               UPDATE enrolments SET revoked_at = now() \
               WHERE staff_id = $1 AND revoked_at IS NULL AND redeemed_at IS NULL RETURNING 1) \
             SELECT (SELECT count(*) FROM tokens), (SELECT count(*) FROM enrolled)",
            &[&staff_id],
        )
        .await?;
    Ok(Revoked {
        tokens: row.get::<_, i64>(0) as u64,
        enrolments: row.get::<_, i64>(1) as u64,
    })
}

/// Deactivates (`active` false, by `by`: `None` for the operator) or reactivates a staff
/// member of the organisation (`None`: any). Deactivating revokes every token and enrolment, so
/// reactivating brings none back: the holder enrols again.
///
/// Two statements. The first updates the staff row, which waits for any token being issued
/// (issuing reads the row `FOR SHARE`); once it commits, authentication refuses every token of
/// the account and no new one can be issued. The second, on a fresh snapshot, revokes every
/// token and enrolment there is, including any issued just before.
///
/// # Errors
/// A database failure. `Ok(None)`: no such staff member in the organisation.
pub async fn set_active(
    client: &impl GenericClient,
    organisation_id: Option<Uuid>,
    staff_id: Uuid,
    active: bool,
    by: Option<Uuid>,
) -> Result<Option<(StaffMember, Revoked)>, AccessError> {
    let row = client
        .query_opt(
            &format!(
                "UPDATE staff SET active = $3, \
                 deactivated_at = CASE WHEN $3 THEN NULL ELSE coalesce(deactivated_at, now()) END, \
                 deactivated_by = CASE WHEN $3 THEN NULL ELSE coalesce(deactivated_by, $4) END \
                 WHERE staff_id = $1 AND ($2::uuid IS NULL OR organisation_id = $2) \
                 RETURNING {STAFF_COLUMNS}"
            ),
            &[&staff_id, &organisation_id, &active, &by],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let member = staff_from_row(&row)?;
    let revoked = if active {
        Revoked {
            tokens: 0,
            enrolments: 0,
        }
    } else {
        revoke_every(client, staff_id).await?
    };
    Ok(Some((member, revoked)))
}

/// The staff member holding a token (revoked or not) and their organisation; `None` for no
/// such token.
///
/// # Errors
/// A database failure.
pub async fn token_holder(
    client: &impl GenericClient,
    token_id: Uuid,
) -> Result<Option<(Uuid, Uuid)>, AccessError> {
    Ok(client
        .query_opt(
            "SELECT t.staff_id, s.organisation_id FROM api_tokens t JOIN staff s USING (staff_id) \
             WHERE t.token_id = $1",
            &[&token_id],
        )
        .await?
        .map(|row| (row.get(0), row.get(1))))
}

/// Revokes a token of an organisation's staff, and every token issued with it; false when
/// there is no such live token.
///
/// # Errors
/// A database failure.
pub async fn revoke_token(
    client: &impl GenericClient,
    organisation_id: Uuid,
    token_id: Uuid,
) -> Result<bool, AccessError> {
    let n = client
        .execute(
            "UPDATE api_tokens t SET revoked_at = now() FROM staff s \
             WHERE t.token_id = $1 AND t.revoked_at IS NULL AND s.staff_id = t.staff_id \
             AND s.organisation_id = $2",
            &[&token_id, &organisation_id],
        )
        .await?;
    if n == 1 {
        // Then, on a fresh snapshot, every token issued with it, and with those: a token
        // being issued with it held its row and is committed by now, and no new one can be.
        client
            .execute(
                "WITH RECURSIVE issued_with(token_id) AS ( \
                   SELECT token_id FROM api_tokens WHERE parent_token_id = $1 \
                   UNION SELECT t.token_id FROM api_tokens t \
                   JOIN issued_with w ON t.parent_token_id = w.token_id) \
                 UPDATE api_tokens SET revoked_at = now() \
                 WHERE token_id IN (SELECT token_id FROM issued_with) AND revoked_at IS NULL",
                &[&token_id],
            )
            .await?;
    }
    Ok(n == 1)
}

/// The token's id and secret, from `cbk_<id>_<secret>`.
fn parse_token(token: &str) -> Result<(Uuid, &str), AccessError> {
    parse_credential(TOKEN_PREFIX, token)
}

/// The id and secret of `<prefix><id>_<secret>`.
pub(crate) fn parse_credential<'a>(
    prefix: &str,
    token: &'a str,
) -> Result<(Uuid, &'a str), AccessError> {
    let (id, secret) = token
        .strip_prefix(prefix)
        .and_then(|rest| rest.split_once('_'))
        .ok_or(AccessError::BadToken)?;
    let token_id = Uuid::try_parse(id).map_err(|_| AccessError::BadToken)?;
    Ok((token_id, secret))
}

const AUTHENTICATE_SQL: &str = "SELECT t.secret_hash, s.staff_id, s.organisation_id, s.team_id, s.role, \
     extract(epoch FROM t.expires_at - now())::float8 \
     FROM api_tokens t JOIN staff s USING (staff_id) \
     WHERE t.token_id = $1 AND t.revoked_at IS NULL AND t.expires_at > now() AND s.active";

/// How long a verified token is trusted from memory at most. Revocation does not wait for
/// this: a change to the access tables anywhere drops every remembered token as soon as the
/// process hears of it.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The most tokens remembered at once; beyond it, the memory starts again empty.
const TOKEN_CACHE_CAPACITY: usize = 10_000;

/// Finds who bearer tokens belong to, on the service's pooled connections, with the statement
/// prepared once per connection (every request comes through here).
///
/// With a store that has a listener, a verified token is remembered for at most
/// [`TOKEN_CACHE_TTL`], and only while the listener is connected and has heard no change to the
/// access tables since the token was looked up: a token revoked, or an account deactivated or
/// changed, through any process or at the console is announced by the database when that
/// commits (`V18__access_notify.sql`), and every process then forgets every token it
/// remembered. A change made through this process's [`crate::admin::Admin`] is counted at once
/// ([`eventstore::AccessChanges::changed_here`]), before it answers.
#[derive(Clone)]
pub struct Authenticator {
    pool: db::Pool,
    cache: Option<std::sync::Arc<TokenCache>>,
}

struct TokenCache {
    changes: eventstore::AccessChanges,
    entries: std::sync::Mutex<std::collections::HashMap<Uuid, Verified>>,
}

/// A token as verified against the database.
struct Verified {
    secret_hash: Vec<u8>,
    principal: Principal,
    /// When it expires, by the database's clock (its time left when looked up, from then on
    /// this process's monotonic clock: no wall clock is compared with the database's).
    expires: std::time::Instant,
    /// The change counter when the token was looked up.
    heard: u64,
    at: std::time::Instant,
}

impl TokenCache {
    fn get(&self, token_id: Uuid, secret: &str, heard: u64) -> Option<Principal> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let verified = entries.get(&token_id)?;
        let fresh = verified.heard == heard
            && verified.at.elapsed() < TOKEN_CACHE_TTL
            && verified.expires > std::time::Instant::now();
        // Both sides are digests of secrets, so comparing them leaks nothing useful by its timing.
        (fresh && verified.secret_hash == secret_hash(secret)).then(|| verified.principal.clone())
    }

    fn put(&self, verified: Verified) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let heard = verified.heard;
        if entries.len() >= TOKEN_CACHE_CAPACITY {
            entries.retain(|_, v| v.heard == heard && v.at.elapsed() < TOKEN_CACHE_TTL);
            if entries.len() >= TOKEN_CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(verified.principal.token_id, verified);
    }
}

impl Authenticator {
    /// Authentication over `store`'s database; remembering verified tokens when `store` has a
    /// listener.
    pub fn new(store: &eventstore::EventStore) -> Authenticator {
        Authenticator {
            pool: store.pool().clone(),
            cache: store.access_changes().map(|changes| {
                std::sync::Arc::new(TokenCache {
                    changes,
                    entries: std::sync::Mutex::new(std::collections::HashMap::new()),
                })
            }),
        }
    }

    /// Finds who a bearer token belongs to.
    ///
    /// # Errors
    /// [`AccessError::BadToken`] (in [`crate::AppError::Access`]) for anything but a live
    /// token of an active staff member; no connection; a database failure.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, crate::AppError> {
        let (token_id, secret) = parse_token(token)?;
        // What had been heard before the lookup: a change heard after it makes the answer old.
        let heard = self
            .cache
            .as_ref()
            .and_then(|cache| cache.changes.current());
        if let (Some(cache), Some(heard)) = (&self.cache, heard)
            && let Some(principal) = cache.get(token_id, secret, heard)
        {
            return Ok(principal);
        }
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(AUTHENTICATE_SQL)
            .await
            .map_err(AccessError::from)?;
        let row = client
            .query_opt(&statement, &[&token_id])
            .await
            .map_err(AccessError::from)?
            .ok_or(AccessError::BadToken)?;
        let principal = principal(&row, token_id, secret)?;
        if let (Some(cache), Some(heard)) = (&self.cache, heard) {
            cache.put(Verified {
                secret_hash: row.get(0),
                principal: principal.clone(),
                expires: std::time::Instant::now()
                    + std::time::Duration::try_from_secs_f64(row.get::<_, f64>(5))
                        .unwrap_or_default(),
                heard,
                at: std::time::Instant::now(),
            });
        }
        Ok(principal)
    }
}

fn principal(
    row: &tokio_postgres::Row,
    token_id: Uuid,
    secret: &str,
) -> Result<Principal, AccessError> {
    let stored: Vec<u8> = row.get(0);
    // Both sides are digests of secrets, so comparing them leaks nothing useful by its timing.
    if stored != secret_hash(secret) {
        return Err(AccessError::BadToken);
    }
    let role: String = row.get(4);
    Ok(Principal {
        staff_id: StaffId(row.get(1)),
        organisation_id: row.get(2),
        team_id: row.get::<_, Option<Uuid>>(3).map(TeamId),
        role: role.parse().map_err(|_| AccessError::BadToken)?,
        token_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_that_does_not_parse_is_an_error_never_a_referrer() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        for unknown in [
            "",
            "admin",
            "Referrer",
            "referrer ",
            "team-lead",
            "superuser",
        ] {
            let refused = unknown.parse::<Role>();
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|e| e.contains("one of referrer, link_worker")),
                "{unknown:?} gave {refused:?}"
            );
        }
    }
}
