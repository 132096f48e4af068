//! Request extractors that turn every kind of bad input into a problem naming the field:
//! the caller's bearer token, JSON bodies (size, media type, syntax, types, unknown fields),
//! the command headers, and path and query parameters.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::AppState;
use super::problem::{ApiError, FieldError};
use app::access::Principal;

/// How long a request body may stop arriving (no byte at all) before it is cut off.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The largest JSON body accepted (a referral with a long note fits many times over).
pub const BODY_LIMIT: usize = 64 * 1024;

pub use app::records::RequestId;

/// The request's id, or a fresh one outside the middleware.
pub fn request_id(req: &HttpRequest) -> Uuid {
    req.extensions()
        .get::<RequestId>()
        .map(|id| id.0)
        .unwrap_or_else(Uuid::new_v4)
}

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    /// The principal the authentication middleware found (it runs before any extractor, so a
    /// bad token is a 401 whatever else is wrong with the request).
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .map(Caller)
                .ok_or_else(|| {
                    ApiError::Unauthenticated("this needs an Authorization: Bearer token".into())
                }),
        )
    }
}

/// Finds the caller of a request from its bearer token.
///
/// # Errors
/// 401 for a missing, malformed, unknown, expired or revoked token.
pub async fn authenticate(
    state: &AppState,
    header: Option<&header::HeaderValue>,
) -> Result<Principal, ApiError> {
    let value = header
        .ok_or_else(|| {
            ApiError::Unauthenticated("this needs an Authorization: Bearer token".into())
        })?
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("the bearer token is not valid".into()))?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(ApiError::Unauthenticated(
                "the Authorization header must be `Bearer <token>`".into(),
            ));
        }
    };
    Ok(state.authenticator.authenticate(token).await?)
}

/// A JSON body of type `T`, with a digest of its bytes (what makes a retry "the same request").
#[derive(Debug)]
pub struct Body<T, const LIMIT: usize = BODY_LIMIT> {
    pub value: T,
    pub digest: [u8; 32],
}

impl<T: DeserializeOwned + 'static, const LIMIT: usize> FromRequest for Body<T, LIMIT> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = json_body::<LIMIT>(req, payload);
        Box::pin(async move {
            let (body, digest) = body.await?;
            let value = serde_path_to_error::deserialize(body).map_err(json_error)?;
            Ok(Body { value, digest })
        })
    }
}

/// When a command's fact happened, as its caller says: the fields every command body may carry
/// beside its own.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dated {
    /// When it happened (RFC 3339), for a command not dated by a field of its own.
    pub occurred_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why a fact older than the back-entry window is entered now.
    pub late_entry_reason: Option<String>,
}

/// The longest late-entry reason accepted.
pub const LATE_ENTRY_REASON_LIMIT: usize = 2000;

/// A command's JSON body of type `T`, with the dating fields every command takes
/// (`occurred_at`, `late_entry_reason`) taken out first, and a digest of the bytes.
#[derive(Debug)]
pub struct CommandBody<T> {
    pub value: T,
    pub dated: Dated,
    pub digest: [u8; 32],
}

impl<T: DeserializeOwned + 'static> FromRequest for CommandBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = json_body::<BODY_LIMIT>(req, payload);
        Box::pin(async move {
            let (body, digest) = body.await?;
            let serde_json::Value::Object(mut object) = body else {
                return Err(ApiError::field("body", "send a JSON object"));
            };
            let dated = Dated {
                occurred_at: match object.remove("occurred_at") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(value) => Some(serde_json::from_value(value).map_err(|_| {
                        ApiError::field(
                            "occurred_at",
                            "give a date and time with its offset (RFC 3339), such as 2026-03-02T10:00:00Z",
                        )
                    })?),
                },
                late_entry_reason: match object.remove("late_entry_reason") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(reason))
                        if !reason.trim().is_empty()
                            && reason.chars().count() <= LATE_ENTRY_REASON_LIMIT =>
                    {
                        Some(reason)
                    }
                    Some(_) => {
                        return Err(ApiError::field(
                            "late_entry_reason",
                            format!("give the reason as text of 1 to {LATE_ENTRY_REASON_LIMIT} characters"),
                        ));
                    }
                },
            };
            let value = serde_path_to_error::deserialize(serde_json::Value::Object(object))
                .map_err(json_error)?;
            Ok(CommandBody {
                value,
                dated,
                digest,
            })
        })
    }
}

/// A JSON body of at most `LIMIT` bytes ([`json_bytes`]) as a value whose objects give each key
/// once ([`unique_json`]), and the digest of its bytes. A key given twice is refused naming it,
/// at any depth: even inside a free-form field (a directory import's contents) serde_json's map
/// would keep the last of them silently.
fn json_body<const LIMIT: usize>(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<(serde_json::Value, [u8; 32]), ApiError>> + 'static {
    let bytes = json_bytes::<LIMIT>(req, payload);
    async move {
        let bytes = bytes.await?;
        Ok((unique_json(&bytes)?, Sha256::digest(&bytes).into()))
    }
}

/// The JSON value of `bytes` whose objects, at any depth, give each key once ([`UniqueKeys`]).
///
/// # Errors
/// A 400 naming `body` for what is not JSON, or the path of a key given twice.
pub(crate) fn unique_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    parse_json::<UniqueKeys>(bytes).map(|UniqueKeys(value)| value)
}

/// A JSON value whose objects, at any depth, give each key once: a key given twice is an error
/// ("duplicate field `key`", as serde's own for a struct's field), where `serde_json::Value`
/// would keep the last silently.
struct UniqueKeys(serde_json::Value);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(UniqueKeysVisitor)
            .map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate field `{key}`"
                )));
            }
            let UniqueKeys(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

/// Reads a JSON body of at most `LIMIT` bytes: the media type, the size, an object, no NUL.
pub(crate) fn json_bytes<const LIMIT: usize>(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::BytesMut, ApiError>> + 'static {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let declared_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut payload = payload.take();
    async move {
        match content_type.as_deref() {
            Some("application/json") => {}
            Some(other) if other.ends_with("+json") => {}
            _ => {
                return Err(ApiError::UnsupportedMediaType(
                    "the body must be JSON (Content-Type: application/json)".into(),
                ));
            }
        }
        if declared_length.is_some_and(|n| n > LIMIT) {
            return Err(ApiError::PayloadTooLarge { limit: LIMIT });
        }
        // A body that stalls is cut off: a sender that sends nothing for this long loses the
        // connection's attention (a large import that keeps arriving is not hurried).
        let stalled = || {
            ApiError::field(
                "body",
                format!(
                    "the body stopped arriving for {} s, or came too slowly",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            )
        };
        // And the whole body comes at no less than 64 KiB a second after the first wait, so a
        // sender trickling a byte at a time is cut off too.
        let deadline = tokio::time::Instant::now()
            + BODY_READ_TIMEOUT
            + std::time::Duration::from_secs((LIMIT / 65_536) as u64);
        let mut bytes = web::BytesMut::new();
        loop {
            let wait = (tokio::time::Instant::now() + BODY_READ_TIMEOUT).min(deadline);
            let Some(chunk) = tokio::time::timeout_at(wait, payload.next())
                .await
                .map_err(|_| stalled())?
            else {
                break;
            };
            let chunk = chunk.map_err(|e| ApiError::field("body", e.to_string()))?;
            if bytes.len() + chunk.len() > LIMIT {
                return Err(ApiError::PayloadTooLarge { limit: LIMIT });
            }
            bytes.extend_from_slice(&chunk);
        }
        // Every body is an object (serde would also take an array for a struct).
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::field("body", "a JSON object is expected"));
        }
        // PostgreSQL text cannot hold NUL; refuse it here rather than fail on write.
        if let Some(field) = nul_field(&bytes) {
            return Err(ApiError::field(
                field,
                "text may not contain the NUL character",
            ));
        }
        Ok(bytes)
    }
}

/// The path of the first string (or key) holding a NUL character (`\u0000`), if any.
pub(crate) fn nul_field(bytes: &[u8]) -> Option<String> {
    let escaped = bytes
        .windows(6)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && w[2..].iter().all(|b| *b == b'0'));
    if !escaped {
        return None;
    }
    fn walk(value: &serde_json::Value, path: &str) -> Option<String> {
        let here = || {
            if path.is_empty() {
                "body".to_owned()
            } else {
                path.to_owned()
            }
        };
        match value {
            serde_json::Value::String(s) if s.contains('\0') => Some(here()),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, &format!("{path}[{i}]"))),
            serde_json::Value::Object(fields) => fields.iter().find_map(|(k, v)| {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k.contains('\0') {
                    Some(child)
                } else {
                    walk(v, &child)
                }
            }),
            _ => None,
        }
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    walk(&value, "")
}

/// Parses JSON, naming the field of the first error: its path for a wrong type or value, the
/// unknown field's own name for an unknown field.
///
/// # Errors
/// A 400 problem.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(json_error)?;
    deserializer
        .end()
        .map_err(|e| ApiError::field("body", format!("not valid JSON: {e}")))?;
    Ok(value)
}

/// A JSON error as a problem naming the field: its path for a wrong type or value, the unknown
/// field's own name for an unknown field.
fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::field("body", format!("not valid JSON: {inner}"));
    }
    let message = inner.to_string();
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned();
    // serde reports an unknown field at its own path, a missing one at its parent's.
    let field = match unknown_field(&message) {
        Some(name) if path == "." => name.to_owned(),
        Some(name) if path == name || path.ends_with(&format!(".{name}")) => path,
        Some(name) => format!("{path}.{name}"),
        None if path == "." => "body".to_owned(),
        None => path,
    };
    ApiError::BadRequest {
        detail: format!("{field}: {message}"),
        errors: vec![FieldError { field, message }],
    }
}

/// The field an "unknown field", "missing field" or "duplicate field" message names (serde reports these at the
/// enclosing object's path).
fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))
        .or_else(|| message.strip_prefix("duplicate field `"))
        .and_then(|rest| rest.split('`').next())
}

/// The `Idempotency-Key` header as the OpenAPI document describes it, once for every route
/// that takes it (`params(..., KeyHeader)`); [`CommandHeaders`] reads it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documents the header; never built
pub struct KeyHeader {
    /// Makes a retry safe: the same key and body return the first response and write nothing
    /// (printable ASCII without spaces: the keys the service makes itself hold a space)
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = r"^[!-~]+$"
    )]
    idempotency_key: Option<String>,
}

/// The `If-Match` header as the OpenAPI document describes it (`params(..., VersionHeader)`);
/// [`CommandHeaders`] reads it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documents the header; never built
pub struct VersionHeader {
    /// The record version last seen (the ETag of the last response); stale gives 409
    #[param(
        rename = "If-Match",
        nullable = false,
        pattern = r#"^(W/)?"?[0-9]{1,18}"?$"#
    )]
    if_match: Option<String>,
}

/// The headers a command takes.
#[derive(Clone, Debug, Default)]
pub struct CommandHeaders {
    /// `Idempotency-Key`: a retry with the same key and body returns the first response.
    pub idempotency_key: Option<String>,
    /// `If-Match`: the record version the caller last saw.
    pub if_match: Option<i64>,
}

impl CommandHeaders {
    /// What makes a request "the same" under its key: its route and its body's digest (the
    /// same key on another route is another request).
    pub fn fingerprint(req: &HttpRequest, digest: [u8; 32]) -> [u8; 32] {
        let mut fingerprint = Sha256::new();
        fingerprint.update(req.path().as_bytes());
        fingerprint.update(digest);
        fingerprint.finalize().into()
    }

    /// A command on a person's record as the application takes it: its key, fingerprint and
    /// expected version, tied to the request (dated now unless the caller says otherwise).
    pub fn staff_command(self, req: &HttpRequest, digest: [u8; 32]) -> app::StaffCommand {
        app::StaffCommand {
            idempotency_key: self.idempotency_key,
            fingerprint: Some(CommandHeaders::fingerprint(req, digest)),
            expected_version: self.if_match,
            correlation_id: request_id(req),
            occurred_at: None,
            late_entry_reason: None,
        }
    }

    /// A command on a task as the application takes it.
    pub fn task_request(self, req: &HttpRequest, digest: [u8; 32]) -> app::tasks::TaskRequest {
        app::tasks::TaskRequest {
            idempotency_key: self.idempotency_key,
            fingerprint: Some(CommandHeaders::fingerprint(req, digest)),
            correlation_id: request_id(req),
            expected_version: self.if_match,
        }
    }
}

impl FromRequest for CommandHeaders {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(command_headers(req))
    }
}

fn command_headers(req: &HttpRequest) -> Result<CommandHeaders, ApiError> {
    let mut headers = CommandHeaders::default();
    if let Some(value) = req.headers().get("Idempotency-Key") {
        let key = value
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= 200 && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::field(
                    "header.Idempotency-Key",
                    "give 1 to 200 visible ASCII characters (a UUID is a good key)",
                )
            })?;
        headers.idempotency_key = Some(key.to_owned());
    }
    if let Some(value) = req.headers().get(header::IF_MATCH) {
        let version = value
            .to_str()
            .ok()
            .map(|v| v.trim_start_matches("W/").trim_matches('"'))
            .filter(|v| (1..=18).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v >= 0)
            .ok_or_else(|| {
                ApiError::field(
                    "header.If-Match",
                    "give the record version from the last response's ETag, such as \"7\"",
                )
            })?;
        headers.if_match = Some(version);
    }
    Ok(headers)
}

/// Path-parameter errors (a malformed UUID) as problems naming the parameter.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error, req| {
        let names: Vec<String> = req
            .match_info()
            .iter()
            .map(|(name, _)| format!("path.{name}"))
            .collect();
        let field = if names.len() == 1 {
            names[0].clone()
        } else {
            "path".to_owned()
        };
        ApiError::field(field, format!("{error}")).into()
    })
}

/// Query parameters of type `T`, with errors naming the parameter.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Params<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let query = req.query_string().as_bytes();
        if let Some((name, _)) = form_urlencoded::parse(query).find(|(_, v)| v.contains('\0')) {
            return std::future::ready(Err(ApiError::field(
                format!("query.{name}"),
                "text may not contain the NUL character",
            )));
        }
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query));
        std::future::ready(
            serde_path_to_error::deserialize(deserializer)
                .map(Params)
                .map_err(|e| {
                    let path = e.path().to_string();
                    let message = e.into_inner().to_string();
                    let field = match unknown_field(&message) {
                        Some(name) if path == name => format!("query.{path}"),
                        Some(name) => format!("query.{name}"),
                        None if path == "." => "query".to_owned(),
                        None => format!("query.{path}"),
                    };
                    ApiError::field(field, message)
                }),
        )
    }
}
