//! Reads: caseloads from the caseload read model; a client's record, journey and referral status
//! from the log (exact, and audited: every read of a record is itself recorded); who read a
//! record, for auditors.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, NaiveDate, Utc};
use domain::{ClientId, ReferralId, ReferralStatus};
use projector::{CaseloadFilter, CaseloadProjection, CaseloadRow};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use super::extract::{Caller, Params, request_id};
use super::problem::{ApiError, ReadErrors};
use crate::access::{self, Principal, Role, StaffMember};
use crate::journey::{JourneyEntry, JourneyView, journey};
use crate::policy;

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(me)
        .service(my_caseload)
        .service(team_caseload)
        .service(team_workload)
        .service(client_record)
        .service(client_journey)
        .service(referral_status)
        .service(record_reads);
}

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;
const MAX_PURPOSE: usize = 500;

/// The caseload rules of the live rule version (`projections/outcomes/v{n}.toml`).
async fn caseload_rules(state: &AppState) -> Result<projector::rules::CaseloadRules, ApiError> {
    let client = state.pool().get().await?;
    let version = projector::live_version(&client, projector::OUTCOMES).await?;
    projector::rules::Rules::load(version)
        .map(|r| r.caseload)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn limit(requested: Option<i64>) -> Result<i64, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::field(
            "query.limit",
            format!("give a number from 1 to {MAX_LIMIT}"),
        )),
    }
}

fn purpose(requested: Option<String>) -> Result<Option<String>, ApiError> {
    match requested {
        Some(p) if p.chars().count() > MAX_PURPOSE => Err(ApiError::field(
            "query.purpose",
            format!("at most {MAX_PURPOSE} characters"),
        )),
        Some(p) if p.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// The caller's own account.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    responses((status = 200, body = StaffMember), ReadErrors)
)]
#[get("/me")]
async fn me(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<StaffMember>, ApiError> {
    let client = state.pool().get().await?;
    access::staff_member(&**client, caller.0.organisation_id, caller.0.staff_id.0)
        .await?
        .map(web::Json)
        .ok_or_else(|| ApiError::NotFound("no such staff member".into()))
}

/// Paging through a caseload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CaseloadParams {
    /// A team lead: only this link worker's cases (of their team).
    link_worker_id: Option<Uuid>,
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    /// Rows per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// Paging through a team's caseload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageParams {
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    /// Rows per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// One case on a caseload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CaseloadItem {
    pub client_id: Uuid,
    /// `referred` or `open`.
    pub status: String,
    pub link_worker_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub area: String,
    pub referred_on: Option<NaiveDate>,
    pub referral_source: Option<String>,
    pub days_since_referral: Option<i64>,
    pub last_contact_at: Option<DateTime<Utc>>,
    pub days_since_contact: Option<i64>,
    /// The earliest booked appointment not yet settled.
    pub next_appointment_at: Option<DateTime<Utc>>,
    pub contacts: i32,
    pub did_not_attend: i32,
    /// Instruments with a baseline this episode.
    pub baselines: Vec<String>,
    /// Instruments with a follow-up this episode.
    pub follow_ups: Vec<String>,
    /// `no_contact` (open, no contact for the rules' days, 28 in v1), `did_not_attend` (missed
    /// the rules' number of appointments, 2), `baseline_missing` (open with no baseline),
    /// `follow_up_due` (a baseline but no follow-up, accepted the rules' days ago, 84).
    pub flags: Vec<String>,
    /// The record version this row reflects.
    pub stream_version: i64,
}

/// A page of a caseload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CaseloadPage {
    pub items: Vec<CaseloadItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

fn caseload_item(
    row: CaseloadRow,
    now: DateTime<Utc>,
    rules: &projector::rules::CaseloadRules,
) -> CaseloadItem {
    let today = now.date_naive();
    let days_since_contact = row
        .last_contact_at
        .map(|at| (now - at).num_days())
        .or_else(|| row.accepted_at.map(|at| (now - at).num_days()));
    let mut flags = Vec::new();
    let open = row.status == "open";
    if open && days_since_contact.is_some_and(|d| d >= rules.no_contact_days) {
        flags.push("no_contact".to_owned());
    }
    if row.did_not_attend >= rules.did_not_attend_flag {
        flags.push("did_not_attend".to_owned());
    }
    if open && row.baselines.is_empty() {
        flags.push("baseline_missing".to_owned());
    }
    let follow_up_missing = row.baselines.iter().any(|b| !row.follow_ups.contains(b));
    if open
        && follow_up_missing
        && row
            .accepted_at
            .is_some_and(|at| (now - at).num_days() >= rules.follow_up_due_days)
    {
        flags.push("follow_up_due".to_owned());
    }
    CaseloadItem {
        client_id: row.client_id,
        status: row.status,
        link_worker_id: row.link_worker_id,
        team_id: row.team_id,
        area: row.area,
        days_since_referral: row.referred_on.map(|d| (today - d).num_days()),
        referred_on: row.referred_on,
        referral_source: row.referral_source,
        last_contact_at: row.last_contact_at,
        days_since_contact: row.last_contact_at.map(|at| (now - at).num_days()),
        next_appointment_at: row.booked_appointments.values().min().copied(),
        contacts: row.contacts,
        did_not_attend: row.did_not_attend,
        baselines: row.baselines.into_iter().collect(),
        follow_ups: row.follow_ups.into_iter().collect(),
        flags,
        stream_version: row.stream_version,
    }
}

async fn caseload_page(
    state: &AppState,
    mut filter: CaseloadFilter,
) -> Result<CaseloadPage, ApiError> {
    let client = state.pool().get().await?;
    let limit = filter.limit;
    filter.limit = limit + 1;
    let mut rows = CaseloadProjection::page(&client, &filter).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| r.client_id)
    } else {
        None
    };
    let now = state.cases.clock().now();
    let rules = caseload_rules(state).await?;
    Ok(CaseloadPage {
        items: rows
            .into_iter()
            .map(|r| caseload_item(r, now, &rules))
            .collect(),
        next_cursor,
    })
}

/// The caller's caseload: a link worker's own cases, or a team lead's team (optionally one
/// link worker of it). Served from the caseload read model, which follows the log closely but
/// not instantly.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(CaseloadParams),
    responses((status = 200, body = CaseloadPage), ReadErrors)
)]
#[get("/caseload")]
async fn my_caseload(
    state: web::Data<AppState>,
    caller: Caller,
    params: Params<CaseloadParams>,
) -> Result<web::Json<CaseloadPage>, ApiError> {
    let principal = &caller.0;
    policy::require(principal, &[Role::LinkWorker, Role::TeamLead], "a caseload")?;
    let params = params.0;
    let filter = match principal.role {
        Role::LinkWorker => {
            if params
                .link_worker_id
                .is_some_and(|id| id != principal.staff_id.0)
            {
                return Err(ApiError::Forbidden(
                    "a link worker sees their own caseload".into(),
                ));
            }
            CaseloadFilter {
                organisation_id: principal.organisation_id,
                link_worker_id: Some(principal.staff_id.0),
                team_id: None,
                after: params.cursor,
                limit: limit(params.limit)?,
            }
        }
        _ => CaseloadFilter {
            organisation_id: principal.organisation_id,
            link_worker_id: params.link_worker_id,
            team_id: principal.team_id.map(|t| t.0),
            after: params.cursor,
            limit: limit(params.limit)?,
        },
    };
    Ok(web::Json(caseload_page(&state, filter).await?))
}

/// The team must be the caller's own, as its lead: another team of the organisation is 403,
/// a team of another organisation (or none) 404.
async fn own_team(
    state: &AppState,
    principal: &Principal,
    team_id: Uuid,
    what: &str,
) -> Result<(), ApiError> {
    policy::require(principal, &[Role::TeamLead], &format!("a team's {what}"))?;
    if principal.team_id.map(|t| t.0) == Some(team_id) {
        return Ok(());
    }
    let client = state.pool().get().await?;
    let known = client
        .query_opt(
            "SELECT 1 FROM teams WHERE team_id = $1 AND organisation_id = $2",
            &[&team_id, &principal.organisation_id],
        )
        .await?;
    Err(match known {
        Some(_) => ApiError::Forbidden(format!("a team lead sees their own team's {what}")),
        None => ApiError::NotFound("no such team".into()),
    })
}

/// A team's caseload, for its team lead.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(("team_id" = Uuid, Path, description = "The team"), PageParams),
    responses((status = 200, body = CaseloadPage), ReadErrors)
)]
#[get("/teams/{team_id}/caseload")]
async fn team_caseload(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    params: Params<PageParams>,
) -> Result<web::Json<CaseloadPage>, ApiError> {
    let principal = &caller.0;
    let team_id = path.into_inner();
    own_team(&state, principal, team_id, "caseload").await?;
    let params = params.0;
    let filter = CaseloadFilter {
        organisation_id: principal.organisation_id,
        link_worker_id: None,
        team_id: Some(team_id),
        after: params.cursor,
        limit: limit(params.limit)?,
    };
    Ok(web::Json(caseload_page(&state, filter).await?))
}

/// One link worker's load against their capacity.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkerLoad {
    pub link_worker_id: Uuid,
    pub name: String,
    /// Cases open now.
    pub open: i64,
    /// Referrals waiting for a decision, assigned to them.
    pub referred: i64,
    /// People whose current episode was accepted in the last 365 days.
    pub people_this_year: i64,
    /// People a year they can support (their own, or the rules' default: NHS guidance 200-250).
    pub capacity: i32,
    /// People this year, of capacity, 0 to 100 and more.
    pub percent_of_capacity: f64,
}

/// A team's link workers: their open cases and the people they supported this year, against
/// capacity. For the team's lead.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(("team_id" = Uuid, Path, description = "The team")),
    responses((status = 200, body = Vec<WorkerLoad>), ReadErrors)
)]
#[get("/teams/{team_id}/workload")]
async fn team_workload(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<web::Json<Vec<WorkerLoad>>, ApiError> {
    let principal = &caller.0;
    let team_id = path.into_inner();
    own_team(&state, principal, team_id, "workload").await?;
    let client = state.pool().get().await?;
    let rules = caseload_rules(&state).await?;
    let rows = client
        .query(
            "SELECT s.staff_id, s.name, s.capacity,              count(c.client_id) FILTER (WHERE c.status = 'open'),              count(c.client_id) FILTER (WHERE c.status = 'referred'),              count(c.client_id) FILTER (WHERE c.accepted_at > $3)              FROM staff s LEFT JOIN caseload c ON c.link_worker_id = s.staff_id AND c.organisation_id = s.organisation_id              WHERE s.team_id = $1 AND s.organisation_id = $2 AND s.role IN ('link_worker', 'team_lead') AND s.active              GROUP BY s.staff_id, s.name, s.capacity ORDER BY s.name, s.staff_id",
            &[
                &team_id,
                &principal.organisation_id,
                &(state.cases.clock().now() - chrono::Duration::days(365)),
            ],
        )
        .await?;
    Ok(web::Json(
        rows.iter()
            .map(|row| {
                let capacity = row
                    .get::<_, Option<i32>>(2)
                    .unwrap_or(rules.default_capacity);
                let people: i64 = row.get(5);
                WorkerLoad {
                    link_worker_id: row.get(0),
                    name: row.get(1),
                    capacity,
                    open: row.get(3),
                    referred: row.get(4),
                    people_this_year: people,
                    percent_of_capacity: (people as f64 * 1000.0 / f64::from(capacity.max(1)))
                        .round()
                        / 10.0,
                }
            })
            .collect(),
    ))
}

/// Records a read of a client's record before it is answered.
async fn audit_read(
    state: &AppState,
    principal: &Principal,
    client_id: Uuid,
    view: &str,
    purpose: Option<&str>,
    request_id: Uuid,
) -> Result<(), ApiError> {
    let client = state.pool().get().await?;
    client
        .execute(
            "INSERT INTO record_reads (organisation_id, client_id, staff_id, role, view, purpose, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &principal.organisation_id,
                &client_id,
                &principal.staff_id.0,
                &principal.role.as_str(),
                &view,
                &purpose,
                &request_id,
            ],
        )
        .await?;
    Ok(())
}

/// Why the record is read (kept with the read).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReadParams {
    /// Why it is read (kept in the read audit; at most 500 characters).
    #[param(max_length = 500)]
    purpose: Option<String>,
}

/// A referral as the record shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReferralSummary {
    pub referral_id: Uuid,
    /// `pending`, `accepted`, `declined` or `redirected`.
    pub status: String,
    pub source: Value,
    pub reasons: Value,
    pub received_on: Value,
}

/// A client's record now, folded from the log with corrections applied.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientRecord {
    pub client_id: Uuid,
    /// The version to send as `If-Match`.
    pub version: i64,
    /// `idle`, `referred`, `open` or `closed`.
    pub status: String,
    /// Personal details as registered, with corrections applied; null once erased.
    pub personal: Option<Value>,
    /// The person's personal data was erased: every personal field of the record reads as erased.
    pub erased: bool,
    pub area: Option<String>,
    pub link_worker_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub referrals: Vec<ReferralSummary>,
    /// Consent scopes in force.
    pub consents: Vec<String>,
    /// Appointments booked and not yet settled.
    pub open_appointments: Vec<Uuid>,
    pub contacts: usize,
    pub goals: usize,
    pub assessments: usize,
    pub connections: usize,
}

fn referral_status_code(status: ReferralStatus) -> &'static str {
    match status {
        ReferralStatus::Pending => "pending",
        ReferralStatus::Accepted => "accepted",
        ReferralStatus::Declined => "declined",
        ReferralStatus::Redirected => "redirected",
    }
}

/// A client's record: status, personal details, referrals, consents and counts. Every read is
/// recorded in the read audit.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(("client_id" = Uuid, Path, description = "The client"), ReadParams),
    responses(
        (status = 200, body = ClientRecord, headers(("ETag" = String, description = "The record's version"))),
        ReadErrors
    )
)]
#[get("/clients/{client_id}")]
async fn client_record(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    params: Params<ReadParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let client_id = path.into_inner();
    let purpose = purpose(params.0.purpose)?;
    let loaded = state.cases.load(ClientId(client_id)).await?;
    policy::may_read_record(&caller.0, &loaded)?;
    audit_read(
        &state,
        &caller.0,
        client_id,
        "record",
        purpose.as_deref(),
        request_id(&req),
    )
    .await?;
    let journey = journey(&state.store, ClientId(client_id), JourneyView::default()).await?;
    let current = |entry: &JourneyEntry| {
        entry
            .corrected_payload
            .clone()
            .unwrap_or_else(|| entry.payload.clone())
    };
    let mut personal = None;
    let mut area = None;
    let mut referrals = Vec::new();
    for entry in &journey.entries {
        match entry.event_type.as_str() {
            "ClientRegistered" => {
                let payload = current(entry);
                personal = payload.get("personal").cloned();
                area = payload
                    .get("area")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            "ReferralReceived" => {
                let payload = current(entry);
                let referral_id = payload
                    .get("referral_id")
                    .and_then(Value::as_str)
                    .and_then(|s| Uuid::try_parse(s).ok())
                    .unwrap_or_default();
                let status = loaded
                    .state
                    .referrals
                    .get(&ReferralId(referral_id))
                    .map(|s| referral_status_code(*s))
                    .unwrap_or("pending");
                referrals.push(ReferralSummary {
                    referral_id,
                    status: status.to_owned(),
                    source: payload.get("source").cloned().unwrap_or(Value::Null),
                    reasons: payload.get("reasons").cloned().unwrap_or(Value::Null),
                    received_on: payload.get("received_on").cloned().unwrap_or(Value::Null),
                });
            }
            _ => {}
        }
    }
    let state_now = &loaded.state;
    let record = ClientRecord {
        client_id,
        version: loaded.version,
        status: state_now.status.code().to_owned(),
        personal: if state_now.erased { None } else { personal },
        erased: state_now.erased,
        area,
        link_worker_id: state_now.link_worker.map(|(w, _)| w.0),
        team_id: state_now.link_worker.map(|(_, t)| t.0),
        referrals,
        consents: state_now.consents.keys().map(domain::code).collect(),
        open_appointments: state_now
            .appointments
            .iter()
            .filter(|(_, s)| **s == domain::AppointmentStatus::Booked)
            .map(|(id, _)| id.0)
            .collect(),
        contacts: state_now.contacts.len(),
        goals: state_now.goals.len(),
        assessments: state_now.assessments.len(),
        connections: state_now.connections.len(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", loaded.version)))
        .json(record))
}

/// Which moment of the journey, and which page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct JourneyParams {
    /// Only what had happened by then (RFC 3339).
    as_of: Option<DateTime<Utc>>,
    /// Only what had been recorded by then (RFC 3339): the record as it was known.
    known_at: Option<DateTime<Utc>>,
    /// Why it is read (kept in the read audit; at most 500 characters).
    #[param(max_length = 500)]
    purpose: Option<String>,
    /// `next_cursor` of the previous page (a record version).
    #[param(minimum = 0)]
    cursor: Option<i64>,
    /// Entries per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// A page of a client's journey.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JourneyPage {
    pub client_id: Uuid,
    /// What the selected events add up to: `idle`, `referred`, `open` or `closed`.
    pub status: String,
    pub link_worker_id: Option<Uuid>,
    pub entries: Vec<JourneyEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// A client's whole journey for auditors: every event in order with who did it, in which role,
/// when it happened and when it was recorded, corrections beside what they correct; as it was
/// at a moment (`as_of`) or as it was known at a moment (`known_at`). Every read is recorded.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(("client_id" = Uuid, Path, description = "The client"), JourneyParams),
    responses((status = 200, body = JourneyPage), ReadErrors)
)]
#[get("/clients/{client_id}/journey")]
async fn client_journey(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    params: Params<JourneyParams>,
    req: HttpRequest,
) -> Result<web::Json<JourneyPage>, ApiError> {
    let client_id = path.into_inner();
    let params = params.0;
    let purpose = purpose(params.purpose)?;
    let limit = limit(params.limit)?;
    if params.cursor.is_some_and(|c| c < 0) {
        return Err(ApiError::field("query.cursor", "a cursor is not negative"));
    }
    let loaded = state.cases.load(ClientId(client_id)).await?;
    policy::may_read_record(&caller.0, &loaded)?;
    audit_read(
        &state,
        &caller.0,
        client_id,
        "journey",
        purpose.as_deref(),
        request_id(&req),
    )
    .await?;
    let view = JourneyView {
        as_of: params.as_of,
        known_at: params.known_at,
    };
    let journey = journey(&state.store, ClientId(client_id), view).await?;
    let after = params.cursor.unwrap_or(0);
    let mut entries: Vec<JourneyEntry> = journey
        .entries
        .into_iter()
        .filter(|e| e.stream_version > after)
        .take(limit as usize + 1)
        .collect();
    let more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    Ok(web::Json(JourneyPage {
        client_id,
        status: journey.status,
        link_worker_id: journey.link_worker_id,
        next_cursor: if more {
            entries.last().map(|e| e.stream_version)
        } else {
            None
        },
        entries,
    }))
}

/// A referral's status, for its referrer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReferralStatusView {
    pub client_id: Uuid,
    pub referral_id: Uuid,
    /// `pending`, `accepted`, `declined` or `redirected`.
    pub status: String,
}

/// Where a referral stands: for the referrer who made it (no personal data), and for whoever
/// may read the record.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(
        ("client_id" = Uuid, Path, description = "The client"),
        ("referral_id" = Uuid, Path, description = "The referral")
    ),
    responses((status = 200, body = ReferralStatusView), ReadErrors)
)]
#[get("/clients/{client_id}/referrals/{referral_id}")]
async fn referral_status(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    req: HttpRequest,
) -> Result<web::Json<ReferralStatusView>, ApiError> {
    let (client_id, referral_id) = path.into_inner();
    let loaded = state.cases.load(ClientId(client_id)).await?;
    policy::may_read_referral(&caller.0, &loaded, ReferralId(referral_id))?;
    let status = loaded
        .state
        .referrals
        .get(&ReferralId(referral_id))
        .copied()
        .ok_or_else(|| ApiError::NotFound("no such referral for this client".into()))?;
    audit_read(
        &state,
        &caller.0,
        client_id,
        "referral_status",
        None,
        request_id(&req),
    )
    .await?;
    Ok(web::Json(ReferralStatusView {
        client_id,
        referral_id,
        status: referral_status_code(status).to_owned(),
    }))
}

/// One read of a client's record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordRead {
    pub read_id: i64,
    pub staff_id: Uuid,
    pub role: String,
    /// `record`, `journey` or `referral_status`.
    pub view: String,
    pub purpose: Option<String>,
    pub request_id: Uuid,
    pub read_at: DateTime<Utc>,
}

/// A page of reads.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordReadPage {
    pub items: Vec<RecordRead>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// Paging through reads.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReadsParams {
    /// `next_cursor` of the previous page.
    #[param(minimum = 0)]
    cursor: Option<i64>,
    /// Rows per page (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// Who read a client's record and when, for auditors.
#[utoipa::path(
    tag = "queries",
    security(("bearer" = [])),
    params(("client_id" = Uuid, Path, description = "The client"), ReadsParams),
    responses((status = 200, body = RecordReadPage), ReadErrors)
)]
#[get("/clients/{client_id}/reads")]
async fn record_reads(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    params: Params<ReadsParams>,
) -> Result<web::Json<RecordReadPage>, ApiError> {
    let client_id = path.into_inner();
    let params = params.0;
    let limit = limit(params.limit)?;
    if params.cursor.is_some_and(|c| c < 0) {
        return Err(ApiError::field("query.cursor", "a cursor is not negative"));
    }
    policy::require(&caller.0, &[Role::Auditor], "the read audit")?;
    let loaded = state.cases.load(ClientId(client_id)).await?;
    policy::may_read_record(&caller.0, &loaded)?;
    let client = state.pool().get().await?;
    let rows = client
        .query(
            "SELECT read_id, staff_id, role, view, purpose, request_id, read_at FROM record_reads \
             WHERE organisation_id = $1 AND client_id = $2 AND read_id > $3 ORDER BY read_id LIMIT $4",
            &[
                &caller.0.organisation_id,
                &client_id,
                &params.cursor.unwrap_or(0),
                &(limit + 1),
            ],
        )
        .await?;
    let mut items: Vec<RecordRead> = rows
        .iter()
        .map(|row| RecordRead {
            read_id: row.get(0),
            staff_id: row.get(1),
            role: row.get(2),
            view: row.get(3),
            purpose: row.get(4),
            request_id: row.get(5),
            read_at: row.get(6),
        })
        .collect();
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    Ok(web::Json(RecordReadPage {
        next_cursor: if more {
            items.last().map(|r| r.read_id)
        } else {
            None
        },
        items,
    }))
}
