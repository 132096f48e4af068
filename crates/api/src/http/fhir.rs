//! FHIR R4 referrals in (`/fhir`): a practice's system posts a UK Core ServiceRequest (or a
//! transaction Bundle of Patient, ServiceRequest and QuestionnaireResponse) and follows it as
//! the ServiceRequest and its Task. Bodies are `application/fhir+json`; every error is an
//! `OperationOutcome` whose issues name the element (`ServiceRequest.subject`). The mapping and
//! every rule are `app::fhir`'s; this module parses, calls and renders.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, get, post, web};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::extract::{Caller, request_id};
use super::problem::{ApiError, problem_response};
use app::fhir::{FhirError, Issue, Submission, Submitted};
use app::records::ReadContext;

/// The FHIR JSON media type.
pub const FHIR_JSON: &str = "application/fhir+json";

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config.service(
        utoipa_actix_web::scope("/fhir")
            .service(fhir_metadata)
            .service(fhir_transaction)
            .service(fhir_create_service_request)
            .service(fhir_read_service_request)
            .service(fhir_read_task),
    );
}

/// Whether a path is one of the FHIR routes that need a bearer token (all but the
/// CapabilityStatement).
pub(super) fn needs_token(path: &str) -> bool {
    path == "/fhir" || (path.starts_with("/fhir/") && path != "/fhir/metadata")
}

/// A FHIR R4 resource in JSON (`resourceType` names which); its elements are FHIR's.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FhirResource {
    #[serde(rename = "resourceType")]
    pub resource_type: String,
}

/// One issue of an OperationOutcome.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OutcomeIssue {
    /// `error` (or `information`).
    pub severity: String,
    /// The FHIR issue type (`required`, `value`, `code-invalid`, `not-found`, `forbidden`...).
    pub code: String,
    /// What is wrong, in words.
    pub diagnostics: String,
    /// The element at fault, as FHIRPath (`ServiceRequest.reasonCode[0]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<Vec<String>>,
}

/// A FHIR OperationOutcome: why a request failed, element by element.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OperationOutcome {
    /// Always `OperationOutcome`.
    #[serde(rename = "resourceType")]
    pub resource_type: String,
    /// The request, to quote when asking for help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub issue: Vec<OutcomeIssue>,
}

impl OperationOutcome {
    fn of(issues: Vec<OutcomeIssue>, request_id: Option<Uuid>) -> OperationOutcome {
        OperationOutcome {
            resource_type: "OperationOutcome".to_owned(),
            id: request_id.map(|id| id.to_string()),
            issue: issues,
        }
    }
}

/// The OperationOutcomes a referral sent can be answered with.
struct SubmitErrors;

impl utoipa::IntoResponses for SubmitErrors {
    fn responses()
    -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        outcome_responses(&[
            ("400", "Not JSON"),
            ("401", "No valid bearer token"),
            ("403", "Not a practice's system"),
            ("409", "The identifier was used for other content"),
            ("413", "The body is larger than 256 KiB"),
            ("415", "Not FHIR JSON"),
            (
                "422",
                "Not a referral Casebook can take, or the person's case is already active; each issue names its element",
            ),
            ("503", "The database cannot be reached: send it again"),
        ])
    }
}

/// The OperationOutcomes a read of a referral sent can be answered with.
struct ReadErrors;

impl utoipa::IntoResponses for ReadErrors {
    fn responses()
    -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        outcome_responses(&[
            ("401", "No valid bearer token"),
            ("403", "Not a practice's system"),
            ("404", "No such referral from this caller"),
        ])
    }
}

/// Each status with its description, an OperationOutcome in FHIR JSON.
fn outcome_responses(
    statuses: &[(&str, &str)],
) -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
    statuses
        .iter()
        .map(|(status, description)| {
            let content = utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name(
                    "OperationOutcome",
                )))
                .build();
            let response = utoipa::openapi::ResponseBuilder::new()
                .description(*description)
                .content(FHIR_JSON, content)
                .build();
            ((*status).to_owned(), response.into())
        })
        .collect()
}

/// Adds the OperationOutcome schema (the errors' body, referred to by name) to the document.
pub(super) fn add_components(components: &mut utoipa::openapi::Components) {
    use utoipa::{PartialSchema, ToSchema};
    let mut schemas = vec![(
        OperationOutcome::name().into_owned(),
        OperationOutcome::schema(),
    )];
    OperationOutcome::schemas(&mut schemas);
    components.schemas.extend(schemas);
}

/// The FHIR issue type for an HTTP status.
fn issue_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "structure",
        401 => "login",
        403 => "forbidden",
        404 => "not-found",
        405 | 406 | 415 => "not-supported",
        409 => "duplicate",
        413 => "too-long",
        422 => "business-rule",
        429 => "throttled",
        503 => "transient",
        _ => "exception",
    }
}

/// Renders any API error as an OperationOutcome, with the headers its problem would carry
/// (`WWW-Authenticate`, `Retry-After`, `Allow`): for every answer under `/fhir` that a handler
/// did not render itself (no token, no route, a method not allowed).
pub fn outcome_response(error: &ApiError, request_id: Option<Uuid>) -> HttpResponse {
    let problem = error.problem(request_id);
    let status = error.status_code();
    let mut issues: Vec<OutcomeIssue> = problem
        .errors
        .iter()
        .map(|e| OutcomeIssue {
            severity: "error".to_owned(),
            code: issue_code(status).to_owned(),
            diagnostics: e.message.clone(),
            expression: Some(vec![e.field.clone()]),
        })
        .collect();
    if issues.is_empty() {
        issues.push(OutcomeIssue {
            severity: "error".to_owned(),
            code: issue_code(status).to_owned(),
            diagnostics: problem.detail.clone(),
            expression: None,
        });
    }
    let body = serde_json::to_vec(&OperationOutcome::of(issues, request_id)).unwrap_or_default();
    let mut response = problem_response(error, request_id);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response.set_body(actix_web::body::BoxBody::new(body))
}

/// A FHIR answer: the resource as `application/fhir+json`.
fn fhir_json(status: StatusCode, resource: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, FHIR_JSON))
        .body(serde_json::to_vec(resource).unwrap_or_default())
}

/// An error of the FHIR service as an OperationOutcome.
fn fhir_error(error: FhirError, request_id: Uuid) -> HttpResponse {
    let (status, issues) = match error {
        FhirError::Invalid(issues) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            issues.into_iter().map(issue).collect(),
        ),
        FhirError::Duplicate { expression } => (
            StatusCode::CONFLICT,
            vec![OutcomeIssue {
                severity: "error".to_owned(),
                code: "duplicate".to_owned(),
                diagnostics: "this identifier was already used for a ServiceRequest with other \
                              content: send the same request again, or give the new one an \
                              identifier of its own"
                    .to_owned(),
                expression: Some(vec![expression]),
            }],
        ),
        FhirError::Denied(denied) => return outcome_response(&denied.into(), Some(request_id)),
        FhirError::Command(e) => {
            let api: ApiError = e.into();
            log_failure(&api);
            return outcome_response(&api, Some(request_id));
        }
        FhirError::App(e) => {
            let api: ApiError = e.into();
            log_failure(&api);
            return outcome_response(&api, Some(request_id));
        }
    };
    let outcome = OperationOutcome::of(issues, Some(request_id));
    fhir_json(status, &serde_json::to_value(outcome).unwrap_or_default())
}

/// A server-side failure goes to the log (the caller sees only the request id).
fn log_failure(error: &ApiError) {
    if error.status_code().is_server_error() {
        tracing::error!(error = %error, "FHIR request failed");
    }
}

fn issue(issue: Issue) -> OutcomeIssue {
    OutcomeIssue {
        severity: "error".to_owned(),
        code: issue.code.to_owned(),
        diagnostics: issue.diagnostics,
        expression: Some(vec![issue.expression]),
    }
}

/// The body of a FHIR POST: JSON, sent as `application/fhir+json` (or `application/json`).
async fn body_json(req: &HttpRequest, body: web::Payload, what: &str) -> Result<Value, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !matches!(content_type.as_str(), FHIR_JSON | "application/json") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send the {what} as {FHIR_JSON}, not {content_type:?}"
        )));
    }
    // Named within the resource: the whole of it when it is not JSON.
    let within = |e: ApiError| match e {
        ApiError::BadRequest { errors, .. } if errors.len() == 1 => {
            let error = &errors[0];
            match error.field.as_str() {
                "body" => ApiError::field(what, error.message.clone()),
                field => ApiError::field(format!("{what}.{field}"), error.message.clone()),
            }
        }
        other => other,
    };
    // Read as every JSON body is: at most FHIR_BODY_LIMIT bytes (413 beyond), cut off if it
    // stalls, a JSON object, and no NUL character (PostgreSQL's text cannot hold it).
    let body = super::extract::json_bytes::<FHIR_BODY_LIMIT>(req, &mut body.into_inner())
        .await
        .map_err(within)?;
    // Each key once, at any depth: a key given twice is refused naming its element, never read
    // as the last of them.
    super::extract::unique_json(&body).map_err(within)
}

/// The most a FHIR referral's body may hold: 256 KiB (a transaction Bundle carries the patient
/// and a questionnaire's answers beside the referral).
const FHIR_BODY_LIMIT: usize = 256 * 1024;

/// What this server does with FHIR: a CapabilityStatement.
fn capability_statement() -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-30",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON],
        "software": { "name": "Casebook", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "Casebook: referrals to social prescribing from GP practices' systems" },
        "rest": [{
            "mode": "server",
            "documentation": "A GP practice's system (a client credential: a Casebook account with \
                the role practice_system and its bearer token) sends a referral as a UK Core \
                ServiceRequest with its Patient contained, or as a transaction Bundle of Patient, \
                ServiceRequest and an optional QuestionnaireResponse. ServiceRequest.code is SNOMED CT \
                871731000000106; reasonCode (SNOMED CT) maps to the service's needs by a versioned \
                file; the NHS number's check digit is checked. The same identifier (system and value) \
                sent again is the same referral. The referral's progress is the Task of the same id \
                (businessStatus received, accepted, declined, redirected or completed). Every read is \
                audited. Errors are OperationOutcome naming the element.",
            "security": { "description": "Authorization: Bearer <token>; a token of a practice_system account" },
            "resource": [
                {
                    "type": "ServiceRequest",
                    "profile": "https://fhir.hl7.org.uk/StructureDefinition/UKCore-ServiceRequest",
                    "interaction": [{ "code": "create" }, { "code": "read" }],
                    "conditionalCreate": false
                },
                {
                    "type": "Task",
                    "interaction": [{ "code": "read" }]
                }
            ],
            "interaction": [{ "code": "transaction" }]
        }]
    })
}

/// The CapabilityStatement: what this FHIR endpoint takes and answers (public).
#[utoipa::path(
    tag = "fhir",
    security(()),
    responses((status = 200, description = "The CapabilityStatement", body = FhirResource, content_type = "application/fhir+json"))
)]
#[get("/metadata")]
async fn fhir_metadata() -> HttpResponse {
    fhir_json(StatusCode::OK, &capability_statement())
}

/// Refer someone: a transaction Bundle of a Patient, a ServiceRequest and optionally a
/// QuestionnaireResponse (each a POST, referring to each other by `fullUrl`). Answers a
/// transaction-response Bundle; the same ServiceRequest identifier again is the same referral.
#[utoipa::path(
    tag = "fhir",
    security(("bearer" = [])),
    request_body(content = FhirResource, content_type = "application/fhir+json"),
    responses(
        (status = 200, description = "The transaction-response Bundle", body = FhirResource, content_type = "application/fhir+json"),
        SubmitErrors
    )
)]
#[post("")]
async fn fhir_transaction(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Payload,
    req: HttpRequest,
) -> HttpResponse {
    let (bundle, submitted) =
        match submit(&state, &caller, (body, &req), Submission::Transaction).await {
            Ok(taken) => taken,
            Err(answer) => return answer,
        };
    let status = if submitted.created {
        "201 Created"
    } else {
        "200 OK"
    };
    let entries: Vec<Value> = bundle["entry"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|entry| {
            if entry["resource"]["resourceType"] == "ServiceRequest" {
                json!({
                    "fullUrl": format!("ServiceRequest/{}", submitted.id),
                    "resource": submitted.service_request,
                    "response": {
                        "status": status,
                        "location": format!("ServiceRequest/{}", submitted.id),
                    }
                })
            } else {
                json!({
                    "response": {
                        "status": status,
                        "outcome": {
                            "resourceType": "OperationOutcome",
                            "issue": [{
                                "severity": "information",
                                "code": "informational",
                                "diagnostics": format!(
                                    "recorded with the referral ServiceRequest/{}; not kept as a \
                                     resource of its own", submitted.id),
                            }]
                        }
                    }
                })
            }
        })
        .collect();
    fhir_json(
        StatusCode::OK,
        &json!({
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": entries,
        }),
    )
}

/// Refer someone: a ServiceRequest with its Patient contained (`subject` `#id`). 201 with the
/// ServiceRequest as Casebook holds it; the same identifier again answers 200 with the same
/// resource and records nothing. A Patient whose NHS number the organisation already holds for
/// a client is that client: the referral goes on their record, or, where that record would
/// refuse it (their referral waiting or their case open), is kept as someone new's under its
/// own id. Its `subject` is its own id either way: the practice is answered alike whether the
/// service knew the person or not.
#[utoipa::path(
    tag = "fhir",
    security(("bearer" = [])),
    request_body(content = FhirResource, content_type = "application/fhir+json"),
    responses(
        (status = 201, description = "Received", body = FhirResource, content_type = "application/fhir+json",
         headers(("Location" = String, description = "The ServiceRequest"))),
        (status = 200, description = "Received before: the same referral", body = FhirResource, content_type = "application/fhir+json"),
        SubmitErrors
    )
)]
#[post("/ServiceRequest")]
async fn fhir_create_service_request(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Payload,
    req: HttpRequest,
) -> HttpResponse {
    let submitted = match submit(&state, &caller, (body, &req), Submission::ServiceRequest).await {
        Ok((_, submitted)) => submitted,
        Err(answer) => return answer,
    };
    let status = if submitted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = fhir_json(status, &submitted.service_request);
    if let Ok(location) = HeaderValue::from_str(&format!("/fhir/ServiceRequest/{}", submitted.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Takes a referral sent as `submission`: reads the body (FHIR JSON of the resource
/// `submission` names) and submits it. What was sent and what the submission did; or the
/// answer to give instead, an OperationOutcome.
async fn submit(
    state: &AppState,
    caller: &Caller,
    (body, req): (web::Payload, &HttpRequest),
    submission: Submission,
) -> Result<(Value, Submitted), HttpResponse> {
    let what = match submission {
        Submission::Transaction => "Bundle",
        Submission::ServiceRequest => "ServiceRequest",
    };
    let id = request_id(req);
    let resource = body_json(req, body, what)
        .await
        .map_err(|e| outcome_response(&e, Some(id)))?;
    let submitted = state
        .fhir
        .submit(&caller.0, submission, &resource, id)
        .await
        .map_err(|e| fhir_error(e, id))?;
    Ok((resource, submitted))
}

/// A route reading one resource by its id (with [`read_by_id`]): `$name` at `$path`, whose
/// path parameter `$id` is described by `$id_doc`, answering a `$ok` read by `app::fhir`'s
/// `$read`.
macro_rules! read_route {
    (
        $(#[doc = $doc:literal])*
        $name:ident, $path:literal, $id:literal = $id_doc:literal, $ok:literal, $read:ident
    ) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            tag = "fhir",
            security(("bearer" = [])),
            params(($id = String, Path, description = $id_doc)),
            responses(
                (status = 200, description = $ok, body = FhirResource, content_type = "application/fhir+json"),
                ReadErrors
            )
        )]
        #[get($path)]
        async fn $name(
            state: web::Data<AppState>,
            caller: Caller,
            id: web::Path<String>,
            req: HttpRequest,
        ) -> HttpResponse {
            read_by_id(&req, &id, async |id, read| {
                state.fhir.$read(&caller.0, id, &read).await
            })
            .await
        }
    };
}

read_route!(
    /// A referral the caller sent, as Casebook holds it (nothing personal). The read is audited.
    fhir_read_service_request, "/ServiceRequest/{service_request_id}",
    "service_request_id" = "The ServiceRequest's id, as answered when it was sent",
    "The ServiceRequest", service_request
);

read_route!(
    /// Where a referral the caller sent stands: a Task based on the ServiceRequest, whose
    /// `businessStatus` is received, accepted, declined, redirected or completed. Poll it (at most
    /// every 15 minutes). The read is audited.
    fhir_read_task, "/Task/{task_id}",
    "task_id" = "The ServiceRequest's id (a referral's Task has the same)",
    "The Task", task
);

/// A read of one resource by id: parse, read (audited by the application), render; an id
/// Casebook could not have made (not a UUID) is no resource of this caller's.
async fn read_by_id(
    req: &HttpRequest,
    path: &str,
    read: impl AsyncFnOnce(Uuid, ReadContext) -> Result<Value, FhirError>,
) -> HttpResponse {
    let request = request_id(req);
    let Ok(id) = Uuid::try_parse(path) else {
        return not_found(request);
    };
    match read(id, ReadContext::new(None, request)).await {
        Ok(resource) => fhir_json(StatusCode::OK, &resource),
        Err(e) => fhir_error(e, request),
    }
}

/// No resource of this caller's: any id Casebook could not have made (not a UUID) too.
fn not_found(request: Uuid) -> HttpResponse {
    outcome_response(
        &ApiError::NotFound("no such resource".to_owned()),
        Some(request),
    )
}
