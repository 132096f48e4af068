//! Signing in to the web console with OpenID Connect (NHS CIS2, Entra ID, any OpenID
//! provider): the authorization code flow with PKCE, the ID token verified, and the verified
//! identity (issuer, subject) mapped to a staff account the operator linked it to
//! (`staff_identities`, `V20__staff_identities.sql`; `casebook staff link-identity`).
//!
//! A sign-in starts with [`Oidc::begin`]: a row in `oidc_sign_ins` (ten minutes, used once) and
//! a credential `cbo_<attempt id>_<secret>` for the browser's cookie. The `state`, the `nonce` and
//! the PKCE verifier are derived from that secret (SHA-256 with a label each), so the database
//! keeps only SHA-256 of the secret and the browser that started is the only one that can finish.
//! [`Oidc::finish`] checks the callback's `state` against the cookie, spends the attempt,
//! exchanges the code with the verifier at the token endpoint, verifies the ID token (its
//! signature against the issuer's published keys, `iss`, `aud`, `exp`, the `nonce`), finds the
//! active staff member the identity is linked to, and opens a session exactly as a sign-in link
//! does ([`crate::sessions`]). Every refusal is written to `session_events` with its reason (and
//! the identity, once it is known, so that the operator can link it).
//!
//! This crate knows no HTTP client: the caller hands it a [`Transport`] (the console's, over
//! reqwest). An ID token's times are checked against the system's clock, not [`crate::Clock`]:
//! they are the issuer's real times, whatever the rules' clock says.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, TokenResponse,
};
use sha2::{Digest, Sha256};
use tokio_postgres::GenericClient;
use uuid::Uuid;

pub use openidconnect::{HttpRequest, HttpResponse};

use crate::AppError;
use crate::access::{AccessError, parse_credential, random_secret, require_active, secret_hash};
use crate::sessions::{Sessions, SignedIn, open_session};

const ATTEMPT_PREFIX: &str = "cbo_";

/// How long a started sign-in may take at the issuer.
pub const ATTEMPT_LIFETIME: Duration = Duration::from_secs(600);

/// How long the issuer's metadata and keys are kept before they are fetched again (and at once
/// when an ID token's signature does not verify: the issuer may have rotated its keys).
const METADATA_LIFETIME: Duration = Duration::from_secs(3600);

/// A transport's failure (the issuer unreachable, a timeout).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// The HTTP client the relying party sends its requests with (discovery, keys, the token
/// endpoint). It must not follow redirects.
pub type Transport = Arc<
    dyn Fn(
            HttpRequest,
        ) -> Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send>>
        + Send
        + Sync,
>;

/// The relying party's configuration.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    /// The issuer's identifier, exactly as its ID tokens' `iss` (discovery is at
    /// `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    /// The client secret (none for a public client, which PKCE alone protects).
    pub client_secret: Option<String>,
    /// Where the issuer sends the browser back: `<public url>/console/oidc/callback`.
    pub redirect_url: String,
    /// The issuer's name on the sign-in button ("Sign in with NHS CIS2").
    pub display_name: String,
    /// The authentication assurance levels accepted (`acr` values, such as NHS CIS2's
    /// `AAL3_ANY` for a smartcard or its equivalents): asked for as `acr_values`, and an ID
    /// token whose `acr` is none of them is refused. Empty: any.
    pub acr_values: Vec<String>,
}

/// Why a sign-in was refused: the `reason` in the session audit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No sign-in was started in this browser, or the callback's `state` is not its own.
    State,
    /// The sign-in was already finished (a replayed callback) or took over ten minutes.
    Spent,
    /// The issuer said no (the person cancelled, or it refused), or sent no code.
    Denied,
    /// The token endpoint refused the code (spent, expired, or not issued for this verifier).
    Exchange,
    /// The ID token is missing or does not verify (signature, issuer, audience, expiry).
    Token,
    /// The ID token's nonce is not this sign-in's.
    Nonce,
    /// The identity is linked to no staff member.
    UnknownIdentity,
    /// The identity's staff member is deactivated.
    Inactive,
    /// The ID token's `acr` is not an assurance level this service accepts.
    Assurance,
}

impl Refusal {
    /// The code kept in `session_events.reason`.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::State => "state",
            Refusal::Spent => "spent",
            Refusal::Denied => "denied",
            Refusal::Exchange => "exchange",
            Refusal::Token => "token",
            Refusal::Nonce => "nonce",
            Refusal::UnknownIdentity => "unknown_identity",
            Refusal::Inactive => "inactive",
            Refusal::Assurance => "assurance",
        }
    }
}

/// A sign-in that did not open a session.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Refused, and audited.
    #[error("sign-in refused ({})", .0.code())]
    Refused(Refusal),
    /// The issuer could not be reached, or answered what is not OpenID Connect.
    #[error("the OpenID provider failed: {0}")]
    Issuer(String),
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<AccessError> for OidcError {
    fn from(e: AccessError) -> Self {
        OidcError::App(e.into())
    }
}

impl From<tokio_postgres::Error> for OidcError {
    fn from(e: tokio_postgres::Error) -> Self {
        OidcError::App(AccessError::from(e).into())
    }
}

/// A sign-in just started: send the browser to `authorization_url`, holding `cookie`.
#[derive(Clone, Debug)]
pub struct Started {
    pub authorization_url: String,
    /// The attempt's credential, for an `HttpOnly` cookie that lives [`ATTEMPT_LIFETIME`].
    pub cookie: String,
}

/// What the issuer sent the browser back with, and the attempt's cookie.
#[derive(Clone, Copy, Debug, Default)]
pub struct Callback<'a> {
    pub cookie: Option<&'a str>,
    pub state: Option<&'a str>,
    pub code: Option<&'a str>,
    /// The issuer's `error` (e.g. `access_denied`).
    pub error: Option<&'a str>,
}

/// The values one attempt's secret stands for.
struct Derived {
    state: String,
    nonce: String,
    verifier: String,
}

impl Derived {
    fn of(secret: &str) -> Derived {
        let derive = |label: &str| Sha256::digest(format!("casebook oidc {label}\0{secret}"));
        Derived {
            state: hex::encode(derive("state")),
            nonce: hex::encode(derive("nonce")),
            // 64 unreserved characters: within PKCE's 43 to 128.
            verifier: hex::encode(derive("pkce verifier")),
        }
    }
}

/// An ID token's issuer, subject and assurance level (`acr`).
fn identity(claims: &openidconnect::core::CoreIdTokenClaims) -> (String, String, Option<String>) {
    (
        claims.issuer().to_string(),
        claims.subject().to_string(),
        claims.auth_context_ref().map(|acr| acr.as_str().to_owned()),
    )
}

fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Inner {
    settings: OidcSettings,
    transport: Transport,
    sessions: Sessions,
    metadata: tokio::sync::Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

/// The console's OpenID Connect relying party.
#[derive(Clone)]
pub struct Oidc {
    inner: Arc<Inner>,
}

impl Oidc {
    /// A relying party for `settings`, opening sessions with `sessions`' rules in its
    /// database. Nothing is fetched until the first sign-in (see [`Oidc::discover`]).
    pub fn new(settings: OidcSettings, transport: Transport, sessions: Sessions) -> Oidc {
        Oidc {
            inner: Arc::new(Inner {
                settings,
                transport,
                sessions,
                metadata: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The issuer's name for the sign-in button.
    pub fn display_name(&self) -> &str {
        &self.inner.settings.display_name
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.settings.issuer
    }

    /// Fetches the issuer's metadata and keys now (`serve` does at start, and carries on with a
    /// warning when it cannot: the next sign-in tries again).
    ///
    /// # Errors
    /// [`OidcError::Issuer`] when discovery fails.
    pub async fn discover(&self) -> Result<(), OidcError> {
        self.metadata(true).await.map(|_| ())
    }

    async fn metadata(&self, fresh: bool) -> Result<CoreProviderMetadata, OidcError> {
        let mut cached = self.inner.metadata.lock().await;
        if let Some((at, metadata)) = cached.as_ref()
            && !fresh
            && at.elapsed() < METADATA_LIFETIME
        {
            return Ok(metadata.clone());
        }
        let issuer = IssuerUrl::new(self.inner.settings.issuer.clone())
            .map_err(|e| OidcError::Issuer(format!("the issuer is not a URL: {e}")))?;
        let transport = self.inner.transport.clone();
        let http = move |request: HttpRequest| transport(request);
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| OidcError::Issuer(format!("discovery: {}", chain(&e))))?;
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    /// A connection from the sessions' pool.
    async fn connection(&self) -> Result<db::deadpool_postgres::Client, OidcError> {
        Ok(self
            .inner
            .sessions
            .pool
            .get()
            .await
            .map_err(AppError::from)?)
    }

    fn client(
        &self,
        metadata: CoreProviderMetadata,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcError,
    > {
        let settings = &self.inner.settings;
        let redirect = RedirectUrl::new(settings.redirect_url.clone())
            .map_err(|e| OidcError::Issuer(format!("the redirect URL is not a URL: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in: the attempt is kept (ten minutes, once), and the browser is to be sent
    /// to the issuer's authorization endpoint with `state`, `nonce` and a PKCE S256 challenge.
    ///
    /// # Errors
    /// [`OidcError::Issuer`] when the issuer's metadata cannot be had; a database failure.
    pub async fn begin(&self) -> Result<Started, OidcError> {
        let metadata = self.metadata(false).await?;
        let client = self.client(metadata)?;
        let secret = random_secret()?;
        let attempt_id = Uuid::now_v7();
        let pooled = self.connection().await?;
        pooled
            .execute(
                "WITH gone AS (DELETE FROM oidc_sign_ins WHERE expires_at < now() - interval '1 hour') \
                 INSERT INTO oidc_sign_ins (attempt_id, secret_hash, issuer, expires_at) \
                 VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
                &[
                    &attempt_id,
                    &secret_hash(&secret),
                    &self.inner.settings.issuer,
                    &(ATTEMPT_LIFETIME.as_secs() as f64),
                ],
            )
            .await?;
        let Derived {
            state,
            nonce,
            verifier,
        } = Derived::of(&secret);
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier));
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .set_pkce_challenge(challenge);
        for acr in &self.inner.settings.acr_values {
            request = request.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
        }
        let (url, _, _) = request.url();
        Ok(Started {
            authorization_url: url.to_string(),
            cookie: format!("{ATTEMPT_PREFIX}{}_{secret}", attempt_id.simple()),
        })
    }

    /// Finishes a sign-in at the callback: a session for the staff member the verified identity
    /// is linked to, or a refusal, audited either way.
    ///
    /// # Errors
    /// [`OidcError::Refused`] (audited, with the reason); [`OidcError::Issuer`] when the token
    /// endpoint or the keys cannot be reached; a database failure.
    pub async fn finish(
        &self,
        callback: Callback<'_>,
        source: Option<&str>,
    ) -> Result<SignedIn, OidcError> {
        // A callback from a browser that started no sign-in names no attempt and no one: it
        // is refused unwritten (anyone may send one, and the audit is append-only).
        let started = callback.cookie.is_some();
        match self.verified_identity(callback).await {
            Ok((issuer, subject)) => self.open(&issuer, &subject, source).await,
            Err(OidcError::Refused(Refusal::State)) if !started => {
                Err(OidcError::Refused(Refusal::State))
            }
            Err(OidcError::Refused(refusal)) => {
                self.refuse(refusal, None, None, None, source).await
            }
            Err(other) => Err(other),
        }
    }

    /// The callback's identity, verified: (issuer, subject).
    async fn verified_identity(
        &self,
        callback: Callback<'_>,
    ) -> Result<(String, String), OidcError> {
        let refused = OidcError::Refused;
        let (attempt_id, secret) = callback
            .cookie
            .and_then(|c| parse_credential(ATTEMPT_PREFIX, c).ok())
            .ok_or(refused(Refusal::State))?;
        let derived = Derived::of(secret);
        if !callback.state.is_some_and(|s| same(s, &derived.state)) {
            return Err(refused(Refusal::State));
        }
        // Spent before anything else is tried: a callback is good once, whatever follows.
        let spent = self
            .connection()
            .await?
            .execute(
                "UPDATE oidc_sign_ins SET used_at = now() \
                 WHERE attempt_id = $1 AND secret_hash = $2 AND issuer = $3 \
                 AND used_at IS NULL AND expires_at > now()",
                &[
                    &attempt_id,
                    &secret_hash(secret),
                    &self.inner.settings.issuer,
                ],
            )
            .await?;
        if spent != 1 {
            return Err(refused(Refusal::Spent));
        }
        if callback.error.is_some() {
            return Err(refused(Refusal::Denied));
        }
        let code = callback
            .code
            .filter(|c| !c.is_empty())
            .ok_or(refused(Refusal::Denied))?;
        let metadata = self.metadata(false).await?;
        let client = self.client(metadata)?;
        let transport = self.inner.transport.clone();
        let http = move |request: HttpRequest| transport(request);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Issuer(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(derived.verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(_) => refused(Refusal::Exchange),
                other => OidcError::Issuer(format!("token endpoint: {}", chain(&other))),
            })?;
        let id_token = response.id_token().ok_or(refused(Refusal::Token))?;
        let nonce = Nonce::new(derived.nonce.clone());
        let verified = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                // Perhaps new keys: fetch them once more and try again.
                let client = self.client(self.metadata(true).await?)?;
                id_token
                    .claims(&client.id_token_verifier(), &nonce)
                    .map(identity)
            }
            other => other.map(identity),
        };
        let (issuer, subject, acr) = verified.map_err(|e| match e {
            ClaimsVerificationError::InvalidNonce(_) => refused(Refusal::Nonce),
            other => {
                tracing::warn!(error = %other, "an ID token did not verify");
                refused(Refusal::Token)
            }
        })?;
        let accepted = &self.inner.settings.acr_values;
        if !accepted.is_empty() && !acr.is_some_and(|acr| accepted.contains(&acr)) {
            return Err(refused(Refusal::Assurance));
        }
        Ok((issuer, subject))
    }

    /// Opens a session for the active staff member `(issuer, subject)` is linked to.
    async fn open(
        &self,
        issuer: &str,
        subject: &str,
        source: Option<&str>,
    ) -> Result<SignedIn, OidcError> {
        let mut pooled = self.connection().await?;
        let client: &mut tokio_postgres::Client = &mut pooled;
        let tx = client.transaction().await?;
        // The staff row is locked as issuing a token locks it: a deactivation waits for this
        // session and ends it, or this waits and finds the account inactive.
        let row = tx
            .query_opt(
                "SELECT s.staff_id, s.active FROM staff_identities i JOIN staff s USING (staff_id) \
                 WHERE i.issuer = $1 AND i.subject = $2 FOR SHARE OF s",
                &[&issuer, &subject],
            )
            .await?;
        let staff_id = match row {
            Some(row) if row.get::<_, bool>(1) => row.get::<_, Uuid>(0),
            Some(row) => {
                let staff = row.get::<_, Uuid>(0);
                // The connection goes back before the refusal takes one to write itself:
                // holding it, enough refusals at once would wait on each other for ever.
                drop(tx);
                drop(pooled);
                return self
                    .refuse(
                        Refusal::Inactive,
                        Some(staff),
                        Some(issuer),
                        Some(subject),
                        source,
                    )
                    .await;
            }
            None => {
                drop(tx);
                drop(pooled);
                return self
                    .refuse(
                        Refusal::UnknownIdentity,
                        None,
                        Some(issuer),
                        Some(subject),
                        source,
                    )
                    .await;
            }
        };
        let signed_in =
            open_session(&tx, &self.inner.sessions.rules, staff_id, None, source).await?;
        tx.commit().await?;
        Ok(signed_in)
    }

    /// Audits a refusal, and answers it.
    async fn refuse(
        &self,
        refusal: Refusal,
        staff_id: Option<Uuid>,
        issuer: Option<&str>,
        subject: Option<&str>,
        source: Option<&str>,
    ) -> Result<SignedIn, OidcError> {
        self.connection()
            .await?
            .execute(
                "INSERT INTO session_events (staff_id, organisation_id, kind, source, via, reason, \
                 issuer, subject) \
                 SELECT $1, (SELECT organisation_id FROM staff WHERE staff_id = $1), \
                 'sign_in_refused', $2, 'oidc', $3, $4, $5",
                &[&staff_id, &source, &refusal.code(), &issuer, &subject],
            )
            .await?;
        Err(OidcError::Refused(refusal))
    }
}

/// An error with its sources, for the log.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// An identity linked to a staff member.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StaffIdentity {
    pub issuer: String,
    pub subject: String,
    pub staff_id: Uuid,
    pub linked_at: chrono::DateTime<chrono::Utc>,
}

/// Links the identity `(issuer, subject)` to an active staff member (the operator's command):
/// from then on that identity signs in as them.
///
/// # Errors
/// [`AccessError::Invalid`] for an empty issuer or subject, an unknown or inactive staff
/// member, or an identity already linked to someone else; a database failure.
pub async fn link_identity(
    client: &impl GenericClient,
    staff_id: Uuid,
    issuer: &str,
    subject: &str,
) -> Result<StaffIdentity, AccessError> {
    for (field, value) in [("issuer", issuer), ("subject", subject)] {
        if value.trim().is_empty() || value.trim() != value {
            return Err(AccessError::Invalid {
                field,
                message: format!("the {field} must be given, without spaces around it"),
            });
        }
    }
    require_active(client, staff_id).await?;
    let row = client
        .query_one(
            "WITH linked AS ( \
               INSERT INTO staff_identities (issuer, subject, staff_id) VALUES ($1, $2, $3) \
               ON CONFLICT (issuer, subject) DO NOTHING RETURNING staff_id, linked_at) \
             SELECT staff_id, linked_at FROM linked \
             UNION ALL SELECT staff_id, linked_at FROM staff_identities \
             WHERE issuer = $1 AND subject = $2 AND NOT EXISTS (SELECT 1 FROM linked)",
            &[&issuer, &subject, &staff_id],
        )
        .await?;
    let owner: Uuid = row.get(0);
    if owner != staff_id {
        return Err(AccessError::Invalid {
            field: "subject",
            message: format!("this identity is already linked to staff {owner}"),
        });
    }
    Ok(StaffIdentity {
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        staff_id,
        linked_at: row.get(1),
    })
}

/// Removes a link; whether there was one. Sessions it opened run on until they end.
///
/// # Errors
/// A database failure.
pub async fn unlink_identity(
    client: &impl GenericClient,
    issuer: &str,
    subject: &str,
) -> Result<bool, AccessError> {
    Ok(client
        .execute(
            "DELETE FROM staff_identities WHERE issuer = $1 AND subject = $2",
            &[&issuer, &subject],
        )
        .await?
        > 0)
}

/// The identities linked to `staff_id` (or to anyone), oldest first.
///
/// # Errors
/// A database failure.
pub async fn identities(
    client: &impl GenericClient,
    staff_id: Option<Uuid>,
) -> Result<Vec<StaffIdentity>, AccessError> {
    let rows = client
        .query(
            "SELECT issuer, subject, staff_id, linked_at FROM staff_identities \
             WHERE $1::uuid IS NULL OR staff_id = $1 ORDER BY linked_at, issuer, subject",
            &[&staff_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StaffIdentity {
            issuer: r.get(0),
            subject: r.get(1),
            staff_id: r.get(2),
            linked_at: r.get(3),
        })
        .collect())
}
