//! The web console's sign-in: one-time sign-in links and server-side sessions.
//!
//! A session is a row in `console_sessions` (`V19__console_sessions.sql`); the browser holds
//! only `cbs_<session id>_<secret>` in an `HttpOnly` cookie, and the database only SHA-256 of
//! the secret. A session ends when its holder signs out, when it is unused for its idle timeout,
//! at its absolute lifetime, when its holder's access is revoked, or when the account is
//! deactivated; every session event (and every refused sign-in) is written to the append-only
//! `session_events`. Times are the database's, as for tokens.
//!
//! Every form the console serves carries a token derived from the session's secret
//! ([`ConsoleSession::csrf_token`]): a page of another site cannot read it, so it cannot make
//! the browser send a form that passes [`ConsoleSession::csrf_matches`].

use chrono::{DateTime, Duration, Utc};
use domain::{StaffId, TeamId};
use sha2::{Digest, Sha256};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::access::{
    AccessError, Principal, Role, one_time_code, parse_credential, random_secret, secret_hash,
};

const LINK_PREFIX: &str = "cbl_";
const SESSION_PREFIX: &str = "cbs_";

/// How stale a session's last use may be before a page writes it again.
pub const SEEN_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a session lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRules {
    /// Ends when unused this long.
    pub idle_timeout: Duration,
    /// Ends this long after sign-in, however much it is used.
    pub lifetime: Duration,
}

impl Default for SessionRules {
    /// 30 minutes idle, 12 hours in all (a working day with its breaks, signed in once).
    fn default() -> Self {
        SessionRules {
            idle_timeout: Duration::minutes(30),
            lifetime: Duration::hours(12),
        }
    }
}

/// A one-time sign-in link as made: the code is shown once, to its holder only.
#[derive(Clone, Debug)]
pub struct IssuedLink {
    pub link_id: Uuid,
    pub staff_id: Uuid,
    /// Goes in the link: `/console/sign-in?code=<code>`.
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// Makes a one-time sign-in link for an active staff member, valid for `valid_for`; `issued_by`
/// is the administrator who made it (`None`: the operator or the demo).
///
/// # Errors
/// [`AccessError::Invalid`] for an unknown or inactive staff member or a period that is not
/// positive; a database failure.
pub async fn create_sign_in_link(
    client: &impl GenericClient,
    staff_id: Uuid,
    valid_for: Duration,
    issued_by: Option<Uuid>,
) -> Result<IssuedLink, AccessError> {
    if valid_for <= Duration::zero() {
        return Err(AccessError::Invalid {
            field: "valid_for",
            message: "a sign-in link must be valid for some time".into(),
        });
    }
    let kept_in = ("sign_in_links", "link_id", LINK_PREFIX);
    let (link_id, code, expires_at) =
        one_time_code(client, kept_in, staff_id, valid_for, issued_by).await?;
    Ok(IssuedLink {
        link_id,
        staff_id,
        code,
        expires_at,
    })
}

/// A session just made: give the browser `cookie`.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub session_id: Uuid,
    /// The cookie's value (the session's credential).
    pub cookie: String,
    pub expires_at: DateTime<Utc>,
}

/// A live session, as found from its cookie.
#[derive(Clone, Debug)]
pub struct ConsoleSession {
    /// Who is signed in (`token_id` is the session's id).
    pub principal: Principal,
    /// Their name, for the page header.
    pub name: String,
    csrf: String,
}

impl ConsoleSession {
    /// The session's id.
    pub fn session_id(&self) -> Uuid {
        self.principal.token_id
    }

    /// Whose caseload the console shows this session by default (a link worker's own, a team
    /// lead's team), or none: the policy's answer, for choosing pages.
    pub fn caseload(&self) -> Option<crate::policy::CaseloadScope> {
        crate::policy::may_read_caseload(&self.principal, None).ok()
    }

    /// The team whose referrals this session may triage (a team lead's), or none: the
    /// policy's answer, for choosing pages.
    pub fn triage_team(&self) -> Option<Uuid> {
        crate::policy::may_triage(&self.principal).ok()
    }

    /// Whether this session may enter a fact from past the back-entry window, saying why (a
    /// team lead): the policy's answer, for choosing which fields a form shows.
    pub fn enters_late(&self) -> bool {
        crate::policy::may_enter_late(&self.principal)
    }

    /// Whether this session audits records (reads any journey of the organisation and who
    /// read it): the policy's answer, for choosing pages.
    pub fn audits(&self) -> bool {
        crate::policy::require(&self.principal, &[Role::Auditor], "the read audit").is_ok()
    }

    /// Whether this session answers for directory services (provider staff): the policy's
    /// answer, for choosing pages.
    pub fn provides_services(&self) -> bool {
        crate::policy::provider::may_read_provider_connections(&self.principal).is_ok()
    }

    /// Whether this session may close safeguarding concerns (a team lead): the policy's
    /// answer, for choosing what to show.
    pub fn closes_concerns(&self) -> bool {
        crate::policy::may_close_concern(&self.principal).is_ok()
    }

    /// Whether this session administers the organisation (staff, tokens, sessions): the
    /// policy's answer, for choosing pages.
    pub fn administers(&self) -> bool {
        crate::policy::may_administer(&self.principal).is_ok()
    }

    /// Whether this session reads the published reports: the policy's answer, for choosing
    /// pages.
    pub fn reads_reports(&self) -> bool {
        crate::policy::may_read_reports(&self.principal).is_ok()
    }

    /// The role's name in words ("link worker").
    pub fn role_name(&self) -> &'static str {
        match self.principal.role {
            Role::Referrer => "referrer",
            Role::LinkWorker => "link worker",
            Role::TeamLead => "team lead",
            Role::Auditor => "auditor",
            Role::ReportingAnalyst => "reporting analyst",
            Role::Administrator => "administrator",
            Role::PracticeSystem => "practice system",
            Role::ServiceProvider => "provider staff",
        }
    }

    /// The token every form of this session carries.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// Whether a form's token is this session's (compared in constant time).
    pub fn csrf_matches(&self, given: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

fn csrf_for(secret: &str) -> String {
    hex::encode(Sha256::digest(
        format!("casebook console csrf\0{secret}").as_bytes(),
    ))
}

/// One session event, as an administrator or auditor sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEvent {
    pub event_id: i64,
    pub session_id: Option<Uuid>,
    pub staff_id: Option<Uuid>,
    pub kind: String,
    pub source: Option<String>,
    pub at: DateTime<Utc>,
}

/// Sessions over the service's pool.
#[derive(Clone)]
pub struct Sessions {
    pub(crate) pool: db::Pool,
    pub(crate) rules: SessionRules,
}

impl Sessions {
    /// Sessions in `store`'s database, under the default [`SessionRules`].
    pub fn new(store: &eventstore::EventStore) -> Sessions {
        Sessions {
            pool: store.pool().clone(),
            rules: SessionRules::default(),
        }
    }

    /// The same, under `rules`.
    pub fn with_rules(mut self, rules: SessionRules) -> Sessions {
        self.rules = rules;
        self
    }

    /// Redeems a one-time sign-in link for a new session, in one transaction: a link works
    /// once, however many try at the same moment. A refused link is written to the session
    /// audit (with its holder when the link's id is known).
    ///
    /// # Errors
    /// [`AccessError::BadToken`] for a code that is malformed, unknown, used, expired, or whose
    /// holder is no longer active (deliberately not saying which); a database failure.
    pub async fn sign_in_with_link(
        &self,
        code: &str,
        source: Option<&str>,
    ) -> Result<SignedIn, crate::AppError> {
        let mut pooled = self.pool.get().await?;
        let client: &mut tokio_postgres::Client = &mut pooled;
        // A code that does not parse names no link and no one: it is refused unwritten (anyone
        // may send one, and the audit is append-only).
        let Ok((link_id, secret)) = parse_credential(LINK_PREFIX, code) else {
            return Err(AccessError::BadToken.into());
        };
        let tx = client.transaction().await.map_err(AccessError::from)?;
        let row = tx
            .query_opt(
                "SELECT l.secret_hash, l.staff_id FROM sign_in_links l \
                 JOIN staff s USING (staff_id) \
                 WHERE l.link_id = $1 AND l.used_at IS NULL AND l.expires_at > now() \
                 AND s.active FOR UPDATE OF l FOR SHARE OF s",
                &[&link_id],
            )
            .await
            .map_err(AccessError::from)?;
        let staff_id = match row {
            Some(row) if row.get::<_, Vec<u8>>(0) == secret_hash(secret) => row.get::<_, Uuid>(1),
            _ => {
                drop(tx);
                // Audited only for a link that was issued (spent, expired, or its holder
                // gone): made-up ids are refused unwritten.
                let staff: Option<Uuid> = client
                    .query_opt(
                        "SELECT staff_id FROM sign_in_links WHERE link_id = $1",
                        &[&link_id],
                    )
                    .await
                    .map_err(AccessError::from)?
                    .map(|r| r.get(0));
                if staff.is_some() {
                    record(&*client, None, staff, "sign_in_refused", source).await?;
                }
                return Err(AccessError::BadToken.into());
            }
        };
        let signed_in = open_session(&tx, &self.rules, staff_id, Some(link_id), source).await?;
        tx.execute(
            "UPDATE sign_in_links SET used_at = now() WHERE link_id = $1",
            &[&link_id],
        )
        .await
        .map_err(AccessError::from)?;
        tx.commit().await.map_err(AccessError::from)?;
        Ok(signed_in)
    }

    /// The live session a cookie holds, its use counted (the idle timeout starts again). A
    /// session found idle or past its lifetime is ended here, and that is audited.
    ///
    /// Its use is written only when the last one written is more than [`SEEN_EVERY`] old, so a
    /// page read in the same half-minute writes nothing (and waits for no flush of the
    /// database's journal); the idle timeout is counted to within that.
    ///
    /// # Errors
    /// [`AccessError::BadToken`] for anything but a live session of an active staff member; a
    /// database failure.
    pub async fn session(&self, cookie: &str) -> Result<ConsoleSession, crate::AppError> {
        let (session_id, secret) = parse_credential(SESSION_PREFIX, cookie)?;
        let hash = secret_hash(secret);
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "WITH live AS ( \
                   SELECT c.session_id, c.last_seen_at, s.staff_id, s.organisation_id, s.team_id, \
                          s.role, s.name \
                   FROM console_sessions c JOIN staff s ON s.staff_id = c.staff_id \
                   WHERE c.session_id = $1 AND c.secret_hash = $2 \
                   AND c.ended_at IS NULL AND s.active AND c.expires_at > now() \
                   AND c.last_seen_at + c.idle_timeout > now()), \
                 seen AS ( \
                   UPDATE console_sessions c SET last_seen_at = now() FROM live \
                   WHERE c.session_id = live.session_id AND c.ended_at IS NULL \
                   AND live.last_seen_at <= now() - least(make_interval(secs => $3), c.idle_timeout / 2)) \
                 SELECT staff_id, organisation_id, team_id, role, name FROM live",
                &[&session_id, &hash, &SEEN_EVERY.as_secs_f64()],
            )
            .await
            .map_err(AccessError::from)?;
        let Some(row) = row else {
            // Ended by time, found now: say so once, in the audit.
            client
                .execute(
                    "WITH ended AS ( \
                       UPDATE console_sessions SET ended_at = now(), ended_why = \
                         CASE WHEN expires_at <= now() THEN 'expired' ELSE 'idle' END \
                       WHERE session_id = $1 AND secret_hash = $2 AND ended_at IS NULL \
                       AND (expires_at <= now() OR last_seen_at + idle_timeout <= now()) \
                       RETURNING session_id, staff_id, ended_why) \
                     INSERT INTO session_events (session_id, staff_id, organisation_id, kind) \
                     SELECT e.session_id, e.staff_id, s.organisation_id, e.ended_why \
                     FROM ended e JOIN staff s USING (staff_id)",
                    &[&session_id, &hash],
                )
                .await
                .map_err(AccessError::from)?;
            return Err(AccessError::BadToken.into());
        };
        let role: String = row.get(3);
        Ok(ConsoleSession {
            principal: Principal {
                staff_id: StaffId(row.get(0)),
                organisation_id: row.get(1),
                team_id: row.get::<_, Option<Uuid>>(2).map(TeamId),
                role: role
                    .parse::<Role>()
                    .map_err(|e| AccessError::Corrupt(format!("staff role: {e}")))?,
                token_id: session_id,
            },
            name: row.get(4),
            csrf: csrf_for(secret),
        })
    }

    /// Ends a session at its holder's request.
    ///
    /// # Errors
    /// A database failure.
    pub async fn sign_out(
        &self,
        session: &ConsoleSession,
        source: Option<&str>,
    ) -> Result<(), crate::AppError> {
        let mut pooled = self.pool.get().await?;
        let client: &mut tokio_postgres::Client = &mut pooled;
        let tx = client.transaction().await.map_err(AccessError::from)?;
        let ended = tx
            .execute(
                "UPDATE console_sessions SET ended_at = now(), ended_why = 'signed_out' \
                 WHERE session_id = $1 AND ended_at IS NULL",
                &[&session.session_id()],
            )
            .await
            .map_err(AccessError::from)?;
        if ended > 0 {
            record(
                &tx,
                Some(session.session_id()),
                Some(session.principal.staff_id.0),
                "signed_out",
                source,
            )
            .await?;
        }
        tx.commit().await.map_err(AccessError::from)?;
        Ok(())
    }

    /// The session audit of one staff member, newest first (at most `limit`).
    ///
    /// # Errors
    /// A database failure.
    pub async fn events(
        &self,
        staff_id: Uuid,
        limit: i64,
    ) -> Result<Vec<SessionEvent>, crate::AppError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT event_id, session_id, staff_id, kind, source, at FROM session_events \
                 WHERE staff_id = $1 ORDER BY event_id DESC LIMIT $2",
                &[&staff_id, &limit],
            )
            .await
            .map_err(AccessError::from)?;
        Ok(rows.iter().map(session_event).collect())
    }
}

/// A live console session, as an administrator sees it (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSession {
    pub session_id: Uuid,
    pub staff_id: Uuid,
    pub name: String,
    pub signed_in_via: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Sessions {
    /// The live sessions of the administrator's organisation, newest first (at most 500).
    ///
    /// # Errors
    /// [`crate::AppError::Denied`] by [`crate::policy::may_administer`]; a database failure.
    pub async fn live_sessions(
        &self,
        principal: &Principal,
    ) -> Result<Vec<LiveSession>, crate::AppError> {
        crate::policy::may_administer(principal)?;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT c.session_id, c.staff_id, s.name, c.signed_in_via, c.created_at,                  c.last_seen_at, c.expires_at FROM console_sessions c JOIN staff s USING (staff_id)                  WHERE s.organisation_id = $1 AND c.ended_at IS NULL AND c.expires_at > now()                  AND c.last_seen_at + c.idle_timeout > now()                  ORDER BY c.created_at DESC LIMIT 500",
                &[&principal.organisation_id],
            )
            .await
            .map_err(AccessError::from)?;
        Ok(rows
            .iter()
            .map(|r| LiveSession {
                session_id: r.get(0),
                staff_id: r.get(1),
                name: r.get(2),
                signed_in_via: r.get(3),
                created_at: r.get(4),
                last_seen_at: r.get(5),
                expires_at: r.get(6),
            })
            .collect())
    }

    /// Ends a live session of the administrator's organisation (a lost laptop, a leaver), and
    /// audits it with the administrator's source; false when there is no such live session.
    ///
    /// # Errors
    /// [`crate::AppError::Denied`] by [`crate::policy::may_administer`]; a database failure.
    pub async fn end_session(
        &self,
        principal: &Principal,
        session_id: Uuid,
        source: Option<&str>,
    ) -> Result<bool, crate::AppError> {
        crate::policy::may_administer(principal)?;
        let client = self.pool.get().await?;
        let ended = client
            .execute(
                "WITH ended AS (                    UPDATE console_sessions c SET ended_at = now(), ended_why = 'revoked'                    FROM staff s WHERE c.session_id = $1 AND s.staff_id = c.staff_id                    AND s.organisation_id = $2 AND c.ended_at IS NULL                    RETURNING c.session_id, c.staff_id)                  INSERT INTO session_events (session_id, staff_id, organisation_id, kind, source)                  SELECT e.session_id, e.staff_id, $2, 'revoked', $3 FROM ended e",
                &[&session_id, &principal.organisation_id, &source],
            )
            .await
            .map_err(AccessError::from)?;
        Ok(ended > 0)
    }

    /// The session audit of the administrator's organisation, newest first (at most `limit`).
    ///
    /// # Errors
    /// [`crate::AppError::Denied`] by [`crate::policy::may_administer`]; a database failure.
    pub async fn organisation_events(
        &self,
        principal: &Principal,
        limit: i64,
    ) -> Result<Vec<SessionEvent>, crate::AppError> {
        crate::policy::may_administer(principal)?;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT event_id, session_id, staff_id, kind, source, at FROM session_events                  WHERE organisation_id = $1 ORDER BY event_id DESC LIMIT $2",
                &[&principal.organisation_id, &limit],
            )
            .await
            .map_err(AccessError::from)?;
        Ok(rows.iter().map(session_event).collect())
    }
}

fn session_event(r: &tokio_postgres::Row) -> SessionEvent {
    SessionEvent {
        event_id: r.get(0),
        session_id: r.get(1),
        staff_id: r.get(2),
        kind: r.get(3),
        source: r.get(4),
        at: r.get(5),
    }
}

/// Opens a session for `staff_id` in the caller's transaction and audits it: by a one-time link
/// (`link_id`), or, without one, by OpenID Connect. The caller has checked who it is for.
pub(crate) async fn open_session(
    tx: &impl GenericClient,
    rules: &SessionRules,
    staff_id: Uuid,
    link_id: Option<Uuid>,
    source: Option<&str>,
) -> Result<SignedIn, AccessError> {
    let secret = random_secret()?;
    let session_id = Uuid::now_v7();
    let via = if link_id.is_some() { "link" } else { "oidc" };
    let row = tx
        .query_one(
            "INSERT INTO console_sessions (session_id, staff_id, secret_hash, signed_in_via, \
             link_id, idle_timeout, expires_at) \
             VALUES ($1, $2, $3, $4, $5, make_interval(secs => $6), \
             now() + make_interval(secs => $7)) RETURNING expires_at",
            &[
                &session_id,
                &staff_id,
                &secret_hash(&secret),
                &via,
                &link_id,
                &(rules.idle_timeout.num_seconds() as f64),
                &(rules.lifetime.num_seconds() as f64),
            ],
        )
        .await?;
    tx.execute(
        "INSERT INTO session_events (session_id, staff_id, organisation_id, kind, source, via) \
         SELECT $1, $2, (SELECT organisation_id FROM staff WHERE staff_id = $2), 'signed_in', \
         $3, $4",
        &[&session_id, &staff_id, &source, &via],
    )
    .await?;
    Ok(SignedIn {
        session_id,
        cookie: format!("{SESSION_PREFIX}{}_{secret}", session_id.simple()),
        expires_at: row.get(0),
    })
}

/// Ends every live session of `staff_id` (their access revoked, or the account deactivated),
/// in the caller's transaction, and audits each; returns how many ended.
///
/// # Errors
/// A database failure.
pub async fn revoke_sessions(
    client: &impl GenericClient,
    staff_id: Uuid,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "UPDATE sign_in_links SET expires_at = least(expires_at, now()) \
             WHERE staff_id = $1 AND used_at IS NULL",
            &[&staff_id],
        )
        .await?;
    client
        .execute(
            "WITH ended AS ( \
               UPDATE console_sessions SET ended_at = now(), ended_why = 'revoked' \
               WHERE staff_id = $1 AND ended_at IS NULL RETURNING session_id, staff_id) \
             INSERT INTO session_events (session_id, staff_id, organisation_id, kind) \
             SELECT e.session_id, e.staff_id, s.organisation_id, 'revoked' \
             FROM ended e JOIN staff s USING (staff_id)",
            &[&staff_id],
        )
        .await
}

async fn record(
    client: &impl GenericClient,
    session_id: Option<Uuid>,
    staff_id: Option<Uuid>,
    kind: &str,
    source: Option<&str>,
) -> Result<(), AccessError> {
    client
        .execute(
            "INSERT INTO session_events (session_id, staff_id, organisation_id, kind, source) \
             SELECT $1, $2, (SELECT organisation_id FROM staff WHERE staff_id = $2), $3, $4",
            &[&session_id, &staff_id, &kind, &source],
        )
        .await?;
    Ok(())
}
