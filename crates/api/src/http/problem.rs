//! Errors as RFC 9457 problem details (`application/problem+json`).
//!
//! Every client mistake is a 4xx naming each bad field. A 500 says nothing internal: the cause
//! goes to the log with the request id, which the body repeats so the two can be matched.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use uuid::Uuid;

use app::access::AccessError;
use app::{AppError, CommandError, Denied};
use eventstore::StoreError;

/// One bad field of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Where: a body path such as `referral.reasons[0]`, or `path.client_id`, `query.limit`,
    /// `header.If-Match`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An RFC 9457 problem details body.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` or a `urn:casebook:problem:` name).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time, in words.
    pub detail: String,
    /// The request, to quote when asking for help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Uuid>,
    /// Each bad field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For a refusal by a business rule (422): the rule's stable code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// For a stale `If-Match` (409): the record's version now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
}

/// An error a handler returns; rendered as a [`Problem`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("{detail}")]
    Unprocessable {
        detail: String,
        rule: String,
        errors: Vec<FieldError>,
    },
    #[error("{detail}")]
    Conflict {
        detail: String,
        current_version: i64,
    },
    /// The request names, by a field, something that exists as something else (a staff id
    /// taken by another account): 409, naming the field.
    #[error("{detail}")]
    Taken {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The `Accept` header welcomes none of the representations the route answers with.
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{method} is not allowed here; use {allow}")]
    MethodNotAllowed { method: String, allow: String },
    /// The caller's address presented too many bad bearer tokens: 429, wait `retry_after`
    /// seconds.
    #[error("too many requests with bad bearer tokens from this address; wait {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    /// The service cannot serve (readiness): 503, saying why.
    #[error("{0}")]
    Unavailable(String),
    /// The database could not be reached while answering: 503 with `Retry-After`; the cause
    /// goes to the log, not to the caller.
    #[error("the database cannot be reached: {0}")]
    DatabaseUnreachable(String),
    /// What was asked for is still being made (a report snapshot): 409, ask again.
    #[error("{0}")]
    NotReady(String),
    /// The read models an answer comes from have not applied the event asked for (`after`)
    /// within the wait allowed: 503 with `Retry-After` (whole seconds).
    #[error("{detail}")]
    NotCaughtUp { detail: String, retry_after: u64 },
    /// Anything else: logged with the request id, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 naming one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::fields(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// A 400 naming each field in `errors`.
    pub fn fields(errors: Vec<FieldError>) -> ApiError {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::BadRequest { detail, errors }
    }

    /// A 422 naming one field that parsed but is not acceptable.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let field = field.into();
        let message = message.into();
        ApiError::Unprocessable {
            detail: format!("{field}: {message}"),
            rule: "invalid_field".to_owned(),
            errors: vec![FieldError { field, message }],
        }
    }

    /// A 422 for a business rule: its words, its code, and the field it is about.
    pub fn refused(detail: String, rule: &str, field: Option<&str>) -> ApiError {
        ApiError::Unprocessable {
            errors: field
                .map(|field| FieldError {
                    field: field.to_owned(),
                    message: detail.clone(),
                })
                .into_iter()
                .collect(),
            detail,
            rule: rule.to_owned(),
        }
    }

    /// The problem body, with the request id.
    pub fn problem(&self, request_id: Option<Uuid>) -> Problem {
        let status = self.status_code();
        let (problem_type, detail) = match self {
            ApiError::Internal(_) => (
                "about:blank",
                "something went wrong on our side; quote the request id when reporting it"
                    .to_owned(),
            ),
            ApiError::Unprocessable { .. } => ("urn:casebook:problem:refused", self.to_string()),
            ApiError::Conflict { .. } | ApiError::Taken { .. } => {
                ("urn:casebook:problem:conflict", self.to_string())
            }
            ApiError::BadRequest { .. } => {
                ("urn:casebook:problem:invalid-request", self.to_string())
            }
            ApiError::NotCaughtUp { .. } => {
                ("urn:casebook:problem:not-caught-up", self.to_string())
            }
            ApiError::NotReady(_) => ("urn:casebook:problem:not-ready", self.to_string()),
            ApiError::TooManyRequests { .. } => {
                ("urn:casebook:problem:too-many-requests", self.to_string())
            }
            ApiError::DatabaseUnreachable(_) => (
                "urn:casebook:problem:unavailable",
                "the service cannot reach its database just now: try again after Retry-After \
                 seconds (a command may or may not have been recorded; send it again with the same \
                 Idempotency-Key and it is recorded once)"
                    .to_owned(),
            ),
            _ => ("about:blank", self.to_string()),
        };
        let mut problem = Problem {
            problem_type: problem_type.to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            request_id,
            errors: Vec::new(),
            rule: None,
            current_version: None,
        };
        match self {
            ApiError::BadRequest { errors, .. } | ApiError::Taken { errors, .. } => {
                problem.errors = errors.clone()
            }
            ApiError::Unprocessable { errors, rule, .. } => {
                problem.errors = errors.clone();
                problem.rule = Some(rule.clone());
            }
            ApiError::Conflict {
                current_version, ..
            } => problem.current_version = Some(*current_version),
            _ => {}
        }
        problem
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict { .. } | ApiError::Taken { .. } | ApiError::NotReady(_) => {
                StatusCode::CONFLICT
            }
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_)
            | ApiError::DatabaseUnreachable(_)
            | ApiError::NotCaughtUp { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body is written by the request-id middleware, which knows the id; here it is
    /// rendered without one (used only if the middleware is not in place).
    fn error_response(&self) -> HttpResponse {
        problem_response(self, None)
    }
}

/// How long a caller is asked to wait while the database cannot be reached.
const UNAVAILABLE_RETRY_SECONDS: u64 = 5;

/// A store failure: 503 when the database cannot be reached (or a referral kept losing its
/// person's NHS number to racing ones), else 500.
fn store_failure(error: StoreError) -> ApiError {
    match &error {
        StoreError::Unavailable(pool) if app::pool_unreachable(pool) => {
            ApiError::DatabaseUnreachable(error.to_string())
        }
        StoreError::Unexpected(e) if app::database_unreachable(e) => {
            ApiError::DatabaseUnreachable(error.to_string())
        }
        // Referrals of one person racing, again and again (`app::matching::CLAIM_ATTEMPTS`):
        // nothing was written, and a retry is taken. Said as any busy moment is: a caller not
        // told who is a client learns nothing of another's referral from it.
        StoreError::ClaimTaken(_) => ApiError::Unavailable(
            "the service could not record this now: nothing was recorded, try again".to_owned(),
        ),
        _ => ApiError::Internal(error.to_string()),
    }
}

/// A database failure: 503 when the database cannot be reached, else 500.
fn database_failure(error: &tokio_postgres::Error) -> ApiError {
    if app::database_unreachable(error) {
        ApiError::DatabaseUnreachable(error.to_string())
    } else {
        ApiError::Internal(error.to_string())
    }
}

/// Renders an error as a problem response.
pub fn problem_response(error: &ApiError, request_id: Option<Uuid>) -> HttpResponse {
    let problem = error.problem(request_id);
    let mut response = HttpResponse::build(error.status_code());
    response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
    match error {
        ApiError::Unauthenticated(_) => {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"casebook\""),
            ));
        }
        ApiError::MethodNotAllowed { allow, .. } => {
            if let Ok(value) = HeaderValue::from_str(allow) {
                response.insert_header((header::ALLOW, value));
            }
        }
        ApiError::NotCaughtUp { retry_after, .. } => {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after)));
        }
        ApiError::TooManyRequests { retry_after } => {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after)));
        }
        ApiError::Unavailable(_) | ApiError::DatabaseUnreachable(_) => {
            response.insert_header((
                header::RETRY_AFTER,
                HeaderValue::from(UNAVAILABLE_RETRY_SECONDS),
            ));
        }
        _ => {}
    }
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    response.body(body)
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::NotFound => ApiError::NotFound("no such client record".to_owned()),
            Denied::Forbidden(why) => ApiError::Forbidden(why),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Refused(refusal) => {
                ApiError::refused(refusal.to_string(), refusal.rule(), refusal.field())
            }
            CommandError::Conflict { expected, actual } => ApiError::Conflict {
                detail: format!(
                    "the record changed: it is at version {actual}, and the request expected {expected}; \
                     read it again and retry"
                ),
                current_version: actual,
            },
            CommandError::IdempotencyMismatch(key) => ApiError::Unprocessable {
                detail: format!(
                    "the Idempotency-Key {key:?} was already used for a different request on this record"
                ),
                rule: "idempotency_key_reused".to_owned(),
                errors: vec![FieldError {
                    field: "header.Idempotency-Key".to_owned(),
                    message: "already used for a different request".to_owned(),
                }],
            },
            CommandError::Denied(denied) => denied.into(),
            CommandError::Corrupt(e) => ApiError::Internal(e.to_string()),
            CommandError::Store(e) => store_failure(e),
            CommandError::Access(e) => e.into(),
            CommandError::Invalid { field, message } => ApiError::invalid(field, message),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Invalid { field, message } => ApiError::invalid(field, message),
            AccessError::Conflict { field, message } => ApiError::Taken {
                detail: format!("{field}: {message}"),
                errors: vec![FieldError {
                    field: field.to_owned(),
                    message,
                }],
            },
            AccessError::BadToken => ApiError::Unauthenticated(error.to_string()),
            AccessError::Database(e) => database_failure(&e),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl ApiError {
    /// An error of the application layer about a query parameter: the field is named as
    /// `query.<name>`.
    pub fn query(error: AppError) -> ApiError {
        match error {
            AppError::BadInput { field, message } => {
                ApiError::field(format!("query.{field}"), message)
            }
            other => other.into(),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Denied(denied) => denied.into(),
            AppError::NotFound(what) => ApiError::NotFound(what),
            AppError::NotReady(what) => ApiError::NotReady(what),
            AppError::BadInput { field, message } => ApiError::field(field, message),
            AppError::Command(e) => e.into(),
            AppError::Access(e) => e.into(),
            AppError::NotCaughtUp { waited, .. } => ApiError::NotCaughtUp {
                detail: error.to_string(),
                // Wait as long again, in whole seconds (at least one).
                retry_after: waited.as_secs_f64().ceil().max(1.0) as u64,
            },
            AppError::Store(e) => store_failure(e),
            AppError::Database(e) => database_failure(&e),
            AppError::Pool(e) if app::pool_unreachable(&e) => {
                ApiError::DatabaseUnreachable(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> Self {
        database_failure(&error)
    }
}

impl From<projector::ProjectionError> for ApiError {
    fn from(error: projector::ProjectionError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

/// The problem responses operations share, by component name.
const PROBLEM_RESPONSES: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "The request is malformed; `errors` names each bad field.",
    ),
    ("401", "Unauthorized", "No valid bearer token."),
    (
        "403",
        "Forbidden",
        "The caller's role or assignment does not allow this (or the directory service is another organisation's).",
    ),
    (
        "404",
        "NotFound",
        "No such resource (or not in the caller's organisation).",
    ),
    (
        "406",
        "NotAcceptable",
        "The Accept header allows none of what this answers with: application/json or text/csv \
         (a path ending in `.csv`: text/csv only). The problem itself is application/problem+json.",
    ),
    (
        "409",
        "Conflict",
        "The record changed since the version given in If-Match; `current_version` says where it is now. \
         (Adding a staff account: the `staff_id` given is another account's, or this one's with other \
         details; `errors` names it.)",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is larger than the route accepts (64 KiB; 256 KiB for a FHIR referral, 16 MiB for a directory import).",
    ),
    ("415", "UnsupportedMediaType", "The body is not JSON."),
    (
        "422",
        "Unprocessable",
        "A business rule refused it; `rule` is its code and `errors` names the field.",
    ),
    (
        "429",
        "TooManyRequests",
        "This address presented too many bad bearer tokens; try again after `Retry-After` seconds.",
    ),
    (
        "503",
        "Unavailable",
        "The service cannot answer now: the database cannot be reached (a command may or may not \
         have been recorded), or the read model this answer comes from has not yet applied the \
         event named by `after` (it waited as long as the service allows). Try again after \
         `Retry-After` seconds; a command retried with the same Idempotency-Key is recorded once.",
    ),
];

/// Adds the problem schema and the shared problem responses to the document.
pub(crate) fn add_components(components: &mut utoipa::openapi::Components) {
    use utoipa::{PartialSchema, ToSchema};
    let mut schemas = vec![(Problem::name().into_owned(), Problem::schema())];
    Problem::schemas(&mut schemas);
    for (name, schema) in schemas {
        components.schemas.insert(name, schema);
    }
    for (status, name, description) in PROBLEM_RESPONSES {
        let mut response = utoipa::openapi::ResponseBuilder::new()
            .description(*description)
            .content(
                "application/problem+json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                    .build(),
            );
        if *status == "503" || *status == "429" {
            response = response.header(
                "Retry-After",
                utoipa::openapi::header::HeaderBuilder::new()
                    .schema(Some(utoipa::openapi::Object::with_type(
                        utoipa::openapi::Type::Integer,
                    )))
                    .description(Some("Seconds to wait before asking again."))
                    .build(),
            );
        }
        let response = response.build();
        components
            .responses
            .insert((*name).to_owned(), response.into());
    }
}

/// The shared problem responses of `statuses`, each a reference to its component.
fn problem_refs(
    statuses: &[&str],
) -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
    PROBLEM_RESPONSES
        .iter()
        .filter(|(status, _, _)| statuses.contains(status))
        .map(|(status, name, _)| {
            (
                (*status).to_owned(),
                utoipa::openapi::RefOr::Ref(utoipa::openapi::Ref::from_response_name(*name)),
            )
        })
        .collect()
}

/// Declares a set of problems routes answer with (for `responses(...)` of `#[utoipa::path]`):
/// a type whose responses are [`problem_refs`] of the statuses listed.
macro_rules! problems {
    ($(#[doc = $doc:literal])* $name:ident = [$($status:literal),+ $(,)?]) => {
        $(#[doc = $doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses()
            -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>>
            {
                problem_refs(&[$($status),+])
            }
        }
    };
}

problems!(
    /// The problems a command can answer with.
    CommandErrors = ["400", "401", "403", "404", "409", "413", "415", "422", "429", "503"]
);

problems!(
    /// The problems a public (tokenless) read can answer with.
    PublicErrors = ["400", "404", "503"]
);

problems!(
    /// The problems a read can answer with.
    ReadErrors = ["400", "401", "403", "404", "429", "503"]
);

problems!(
    /// The problems a read from a read model that takes `after` can answer with: a read's, and
    /// 503 (with `Retry-After`) when the read model has not caught up in time.
    WaitingReadErrors = ["400", "401", "403", "404", "429", "503"]
);

problems!(
    /// The problems a request about a report snapshot can answer with: a read's, 409 while it is
    /// being built, 413/415 for a body.
    SnapshotErrors = ["400", "401", "403", "404", "409", "413", "415", "429", "503"]
);

problems!(
    /// The problems a report or caseload that can answer JSON or CSV can answer with: a waiting
    /// read's, and 406 for an `Accept` header that allows neither.
    NegotiatedReadErrors = ["400", "401", "403", "404", "406", "429", "503"]
);

problems!(
    /// The problems a read of a report snapshot or explanation that can answer JSON or CSV can
    /// answer with: a read's, 406 for an `Accept` header that allows neither, 409 while it is being
    /// built.
    NegotiatedSnapshotErrors = ["400", "401", "403", "404", "406", "409", "429", "503"]
);

problems!(
    /// The problems redeeming an enrolment code can answer with (401: the code is not live).
    RedemptionErrors = ["400", "401", "413", "415", "422", "429", "503"]
);

problems!(
    /// The problems an administrative write can answer with.
    AdminErrors = ["400", "401", "403", "404", "413", "415", "422", "429", "503"]
);
