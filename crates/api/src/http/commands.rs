//! One route per command on a client's record: `POST /api/v1/clients/{client_id}/<what>`.
//!
//! Ids of new things (the client, a referral, an appointment...) are chosen by the caller as
//! UUIDs, so a retry names the same things. Every command takes an `Idempotency-Key` (a retry
//! with the same key and body returns the first response and writes nothing) and an optional
//! `If-Match` with the record version (stale: 409 with the current version).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use domain::*;
use eventstore::AppendResult;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AppState;
use super::extract::{Caller, CommandBody, CommandHeaders, Dated, KeyHeader, VersionHeader};
use super::problem::{ApiError, CommandErrors};
use app::StaffCommand;

/// A new client's details, given with their first referral.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    pub personal: PersonalDetails,
    /// Locality for area reports (a ward, town or postcode district; not an address).
    pub area: String,
}

/// A referral through the single point of access: with `client` for someone new, without for
/// someone already registered.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntakeRequest {
    pub client: Option<NewClient>,
    pub referral: ReferralReceived,
}

/// Where one appended event landed.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AcceptedEvent {
    pub event_id: Uuid,
    pub stream_version: i64,
    /// Its position in the global log.
    pub position: i64,
}

impl AcceptedEvent {
    /// Where each event of an append landed.
    pub(super) fn all(result: &AppendResult) -> Vec<AcceptedEvent> {
        result
            .events
            .iter()
            .map(|e| AcceptedEvent {
                event_id: e.event_id,
                stream_version: e.stream_version,
                position: e.position,
            })
            .collect()
    }
}

/// What a command wrote.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CommandAccepted {
    pub client_id: Uuid,
    /// The record's version after the command: send it as `If-Match` next time.
    pub stream_version: i64,
    /// The log position of the command's last event: give it as `?after=` to a read that must
    /// see this write.
    pub position: i64,
    pub events: Vec<AcceptedEvent>,
    /// A referral of someone new that went to the record the organisation already held for
    /// them (by their NHS number): the client id the request named (which names no record;
    /// `client_id` is the record's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referred_as: Option<Uuid>,
}

impl CommandAccepted {
    pub(super) fn from_result(result: &AppendResult) -> CommandAccepted {
        CommandAccepted {
            referred_as: None,
            client_id: result.stream_id,
            stream_version: result.stream_version,
            position: result.events.iter().map(|e| e.position).max().unwrap_or(0),
            events: AcceptedEvent::all(result),
        }
    }
}

/// Carries out a command for the caller and answers 201.
async fn run(
    state: &AppState,
    caller: &Caller,
    client_id: Uuid,
    command: CaseCommand,
    (dated, digest): (Dated, [u8; 32]),
    headers: CommandHeaders,
    req: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let request = StaffCommand {
        occurred_at: dated.occurred_at,
        late_entry_reason: dated.late_entry_reason,
        ..headers.staff_command(req, digest)
    };
    let result = state
        .cases
        .execute_as(&caller.0, ClientId(client_id), &command, request)
        .await?;
    Ok(created(
        &result,
        Some(format!("/api/v1/clients/{client_id}")),
    ))
}

/// 201 for a command on a record: its new version as the ETag, a replay said so, the events
/// written counted.
pub(super) fn created(result: &AppendResult, location: Option<String>) -> HttpResponse {
    created_as(result, location, CommandAccepted::from_result(result))
}

/// [`created`] answering `body`.
fn created_as(
    result: &AppendResult,
    location: Option<String>,
    body: impl Serialize,
) -> HttpResponse {
    if !result.replayed {
        super::metrics::record_appended(result.events.len());
    }
    let mut response = HttpResponse::Created();
    response.insert_header((header::ETAG, format!("\"{}\"", result.stream_version)));
    if let Some(location) = location {
        response.insert_header((header::LOCATION, location));
    }
    if result.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.json(body)
}

/// Declares a command route: handler name, path under the client, body type, and how the body
/// becomes a command.
macro_rules! command_route {
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $body:ty, |$client:pat_param, $value:ident| $command:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            tag = "commands",
            security(("bearer" = [])),
            params(
                ("client_id" = Uuid, Path, description = "The client's id (chosen by the caller for a new client)"),
                KeyHeader,
                VersionHeader
            ),
            request_body(content = $body, content_type = "application/json"),
            responses(
                (status = 201, description = "Done: the events written", body = CommandAccepted,
                 headers(("ETag" = String, description = "The record's new version"))),
                CommandErrors
            )
        )]
        #[post($path)]
        async fn $name(
            state: web::Data<AppState>,
            caller: Caller,
            path: web::Path<Uuid>,
            headers: CommandHeaders,
            body: CommandBody<$body>,
            req: HttpRequest,
        ) -> Result<HttpResponse, ApiError> {
            let client_id = path.into_inner();
            let CommandBody { value, dated, digest } = body;
            #[allow(clippy::redundant_closure_call)]
            let command = (|$client: Uuid, $value: $body| -> CaseCommand { $command })(client_id, value);
            run(&state, &caller, client_id, command, (dated, digest), headers, &req).await
        }
    };
}

/// A referral received, as a referrer (or a practice's system) is answered: the ids they chose
/// and where to follow it. It is the same whether the person was new to the service or the
/// organisation already held them.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ReferralReceipt {
    /// The client id the request named.
    pub client_id: Uuid,
    pub referral_id: Uuid,
    /// Where the referral is followed (`GET`): also the `Location`.
    pub follow_at: String,
}

/// What a referral wrote: to staff of the service, the events written (on the record the
/// organisation already held for the person, when it did: then `referred_as` is the id the
/// request named); to a referrer or a practice's system, a receipt, alike whether the person was
/// known or not.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum IntakeAccepted {
    Events(CommandAccepted),
    Receipt(ReferralReceipt),
}

/// Refer someone (new, with their details, or already registered) through the single point
/// of access.
///
/// Someone new whose NHS number one record of the organisation already holds (not
/// erased) is that record's: the referral goes on it, their details stay as recorded (checked
/// as a new person's are). Staff are answered with the events written on that record (its
/// `Location`, `client_id`, and the id the request named as `referred_as`), and refused naming
/// `client.personal.nhs_number` while the person's referral waits or their case is open. A
/// referrer or a practice's system gets a receipt, the same whether the person was known or
/// not, and follows the referral at `/api/v1/clients/{client_id}/referrals/{referral_id}` with
/// the client id it chose; where the known record would refuse the referral, it is kept as
/// someone new's under that id (a refusal would tell them who is a client). Two records then
/// hold the number, and match neither: staff are refused naming `client.personal.nhs_number`
/// until one is corrected (each record names the others: `shares_nhs_number_with`).
#[utoipa::path(
    tag = "commands",
    security(("bearer" = [])),
    params(
        ("client_id" = Uuid, Path, description = "The client's id (chosen by the caller for a new client: a random id, version 4 or 7; version 8 ids are those Casebook derives itself, and are refused, as is a referral_id of version 8)"),
        KeyHeader,
        VersionHeader
    ),
    request_body(content = IntakeRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Done: the events written (staff), or a receipt (a referrer or a practice's system)", body = IntakeAccepted,
         headers(("ETag" = String, description = "The record's new version (staff)"),
                 ("Location" = String, description = "The record (staff), or where the referral is followed (a referrer)"))),
        CommandErrors
    )
)]
#[post("/clients/{client_id}/referrals")]
async fn refer(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    headers: CommandHeaders,
    body: CommandBody<IntakeRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let client_id = path.into_inner();
    let CommandBody {
        value,
        dated,
        digest,
    } = body;
    let command = CaseCommand::Intake {
        client: value.client.map(|c| {
            Box::new(ClientRegistered {
                client_id: ClientId(client_id),
                personal: c.personal,
                area: c.area,
            })
        }),
        referral: value.referral,
    };
    let request = StaffCommand {
        occurred_at: dated.occurred_at,
        late_entry_reason: dated.late_entry_reason,
        ..headers.staff_command(&req, digest)
    };
    let referred = state
        .cases
        .refer(&caller.0, ClientId(client_id), &command, request)
        .await?;
    let result = &referred.result;
    if referred.told {
        let mut accepted = CommandAccepted::from_result(result);
        accepted.referred_as = referred.to_known_person().then_some(referred.referred_as.0);
        let location = format!("/api/v1/clients/{}", referred.record.0);
        return Ok(created_as(
            result,
            Some(location),
            IntakeAccepted::Events(accepted),
        ));
    }
    if !result.replayed {
        super::metrics::record_appended(result.events.len());
    }
    let follow_at = format!(
        "/api/v1/clients/{}/referrals/{}",
        referred.referred_as.0, referred.referral_id.0
    );
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, follow_at.clone()));
    if result.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(response.json(IntakeAccepted::Receipt(ReferralReceipt {
        client_id: referred.referred_as.0,
        referral_id: referred.referral_id.0,
        follow_at,
    })))
}

command_route!(
    /// Record consent (to be contacted, to share with onward services, to message the GP...).
    record_consent, "/clients/{client_id}/consents", ConsentRecorded, |_, c| CaseCommand::RecordConsent(c)
);
command_route!(
    /// Withdraw a consent; honoured from now on.
    withdraw_consent, "/clients/{client_id}/consent-withdrawals", ConsentWithdrawn, |_, c| CaseCommand::WithdrawConsent(c)
);
command_route!(
    /// Accept a referral: the case opens.
    accept_referral, "/clients/{client_id}/referral-acceptances", ReferralAccepted, |_, c| CaseCommand::AcceptReferral(c)
);
command_route!(
    /// Decline a referral, with the reason.
    decline_referral, "/clients/{client_id}/referral-declines", ReferralDeclined, |_, c| CaseCommand::DeclineReferral(c)
);
command_route!(
    /// Send a referral to a more suitable service instead.
    redirect_referral, "/clients/{client_id}/referral-redirections", ReferralRedirected, |_, c| CaseCommand::RedirectReferral(c)
);
command_route!(
    /// Assign the case to a link worker of the team lead's team.
    assign_link_worker, "/clients/{client_id}/assignment", LinkWorkerAssigned, |_, c| CaseCommand::AssignLinkWorker(c)
);
command_route!(
    /// Move the case to another link worker.
    transfer_case, "/clients/{client_id}/transfers", TransferCase, |_, c| CaseCommand::TransferCase(c)
);
command_route!(
    /// Book an appointment.
    book_appointment, "/clients/{client_id}/appointments", AppointmentBooked, |_, c| CaseCommand::BookAppointment(c)
);
command_route!(
    /// Record that the person came to an appointment.
    record_attendance, "/clients/{client_id}/attendances", AppointmentAttended, |_, c| CaseCommand::RecordAttendance(c)
);
command_route!(
    /// Record that the person did not attend an appointment.
    record_did_not_attend, "/clients/{client_id}/non-attendances", AppointmentNotAttended, |_, c| CaseCommand::RecordDidNotAttend(c)
);
command_route!(
    /// Cancel an appointment.
    cancel_appointment, "/clients/{client_id}/appointment-cancellations", AppointmentCancelled, |_, c| CaseCommand::CancelAppointment(c)
);
command_route!(
    /// Record a contact with the person.
    record_contact, "/clients/{client_id}/contacts", ContactRecorded, |_, c| CaseCommand::RecordContact(c)
);
command_route!(
    /// Record what matters to the person, in their words.
    record_what_matters, "/clients/{client_id}/what-matters", WhatMattersRecorded, |_, c| CaseCommand::RecordWhatMatters(c)
);
command_route!(
    /// Record a need.
    identify_need, "/clients/{client_id}/needs", NeedIdentified, |_, c| CaseCommand::IdentifyNeed(c)
);
command_route!(
    /// Agree a goal.
    set_goal, "/clients/{client_id}/goals", GoalSet, |_, c| CaseCommand::SetGoal(c)
);
command_route!(
    /// Review a goal's progress.
    review_goal, "/clients/{client_id}/goal-reviews", GoalReviewed, |_, c| CaseCommand::ReviewGoal(c)
);
command_route!(
    /// Record a completed wellbeing instrument (raw answers).
    record_assessment, "/clients/{client_id}/assessments", AssessmentRecorded, |_, c| CaseCommand::RecordAssessment(c)
);
command_route!(
    /// Connect the person onward to a directory service.
    make_connection, "/clients/{client_id}/connections", OnwardConnectionMade, |_, c| CaseCommand::MakeConnection(c)
);
command_route!(
    /// Record what came of an onward connection.
    record_connection_outcome, "/clients/{client_id}/connection-outcomes", ConnectionOutcomeRecorded, |_, c| CaseCommand::RecordConnectionOutcome(c)
);
command_route!(
    /// Record a need that no service could meet.
    record_service_gap, "/clients/{client_id}/service-gaps", ServiceGapRecorded, |_, c| CaseCommand::RecordServiceGap(c)
);
command_route!(
    /// Close the case.
    close_case, "/clients/{client_id}/closure", CaseClosed, |_, c| CaseCommand::CloseCase(c)
);
command_route!(
    /// Reopen a closed case.
    reopen_case, "/clients/{client_id}/reopening", CaseReopened, |_, c| CaseCommand::ReopenCase(c)
);
command_route!(
    /// Correct an earlier entry; the original stays in the record.
    correct_entry, "/clients/{client_id}/corrections", EntryCorrected, |_, c| CaseCommand::CorrectEntry(c)
);
command_route!(
    /// Send a message back to the person's GP practice; needs their consent to share with the GP.
    send_gp_message, "/clients/{client_id}/gp-messages", GpMessageSent, |_, c| CaseCommand::SendGpMessage(c)
);
command_route!(
    /// Erase the person's personal data (administrators): their data key is destroyed with the
    /// erasure event, so every personal field reads as erased from now on, everywhere. The case
    /// still counts in reports; nothing more can be recorded for them. Say why without personal
    /// data: the reason is kept.
    erase_client, "/clients/{client_id}/erasure", ClientErased, |_, c| CaseCommand::EraseClient(c)
);

command_route!(
    /// Write a case note (personal data: sealed, and erased with the person); `important` pins
    /// it to the top of the record.
    add_note, "/clients/{client_id}/notes", NoteAdded, |_, c| CaseCommand::AddNote(c)
);
command_route!(
    /// Pin a note as important: shown first on the record.
    pin_note, "/clients/{client_id}/note-pins", NotePinned, |_, c| CaseCommand::PinNote(c)
);
command_route!(
    /// Take a note's "important" pin off.
    unpin_note, "/clients/{client_id}/note-unpins", NoteUnpinned, |_, c| CaseCommand::UnpinNote(c)
);
command_route!(
    /// Raise a safeguarding concern on the case (a category of the safeguarding rules, who was
    /// told and when): the record and the caseload carry a risk flag while it is open. A concern
    /// is never corrected: add to it, or have a team lead close it with a reason.
    raise_concern, "/clients/{client_id}/safeguarding-concerns", SafeguardingConcernRaised, |_, c| CaseCommand::RaiseConcern(c)
);
command_route!(
    /// Add to an open safeguarding concern: someone else told (and when), or what came of it.
    update_concern, "/clients/{client_id}/safeguarding-concern-updates", SafeguardingConcernUpdated, |_, c| CaseCommand::UpdateConcern(c)
);
command_route!(
    /// Close a safeguarding concern with the reason (team leads).
    close_concern, "/clients/{client_id}/safeguarding-concern-closures", SafeguardingConcernClosed, |_, c| CaseCommand::CloseConcern(c)
);

command_route!(
    /// Put a tag of the service's list (`projections/tags/`) on the case, for caseloads to be
    /// filtered by (`GET /caseload?tag=`). A tag not on the list, or one the case already
    /// carries, is refused naming `tag`.
    tag_case, "/clients/{client_id}/tags", CaseTagged, |_, c| CaseCommand::TagCase(c)
);
command_route!(
    /// Take a tag off the case (refused naming `tag` when the case does not carry it).
    untag_case, "/clients/{client_id}/tag-removals", CaseUntagged, |_, c| CaseCommand::UntagCase(c)
);

command_route!(
    /// Record a lone-working plan for a booked home visit (an appointment booked with mode
    /// `home_visit`): where the visit is and how to get in, by when the link worker will check
    /// in (no earlier than the visit), their buddy (an active colleague, not themselves) and any
    /// risk known. The address note and the risks are personal data: sealed, and erased with
    /// the person. Until the check-in is recorded, a check-in time past by the service's clock
    /// flags the case `missed_check_in` on every caseload holding it.
    record_lone_working_plan, "/clients/{client_id}/lone-working-plans", LoneWorkingPlanRecorded, |_, c| CaseCommand::RecordLoneWorkingPlan(c)
);
command_route!(
    /// Record the check-in after a home visit with a lone-working plan (once).
    check_in_lone_working, "/clients/{client_id}/lone-working-check-ins", LoneWorkingCheckedIn, |_, c| CaseCommand::CheckInLoneWorking(c)
);

/// A person's demographics for equity reporting (every answer optional; recording again
/// replaces them). What reports count by (age band, ethnic group, deprivation decile...) is
/// derived by the service, not given.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemographicsRequest {
    pub demographics: Demographics,
}

command_route!(
    /// Record the person's demographics for equity reporting: sex, gender identity, NHS ethnic
    /// category, preferred language, interpreter and communication needs, registered GP practice
    /// and postcode (all personal data, sealed). Recording them again replaces them; they are
    /// never corrected with `/corrections`.
    record_demographics, "/clients/{client_id}/demographics", DemographicsRequest, |_, c| CaseCommand::RecordDemographics(DemographicsRecorded {
        demographics: c.demographics,
        reportable: ReportableDemographics::default(),
    })
);

pub(super) fn configure(config: &mut utoipa_actix_web::service_config::ServiceConfig) {
    config
        .service(refer)
        .service(record_consent)
        .service(withdraw_consent)
        .service(accept_referral)
        .service(decline_referral)
        .service(redirect_referral)
        .service(assign_link_worker)
        .service(transfer_case)
        .service(book_appointment)
        .service(record_attendance)
        .service(record_did_not_attend)
        .service(cancel_appointment)
        .service(record_contact)
        .service(record_what_matters)
        .service(identify_need)
        .service(set_goal)
        .service(review_goal)
        .service(record_assessment)
        .service(make_connection)
        .service(record_connection_outcome)
        .service(record_service_gap)
        .service(close_case)
        .service(reopen_case)
        .service(correct_entry)
        .service(send_gp_message)
        .service(erase_client)
        .service(add_note)
        .service(pin_note)
        .service(unpin_note)
        .service(raise_concern)
        .service(update_concern)
        .service(close_concern)
        .service(record_demographics)
        .service(tag_case)
        .service(untag_case)
        .service(record_lone_working_plan)
        .service(check_in_lone_working);
}

/// Command bodies dated by a field of their own: they take no `occurred_at`.
const DATED_BY_THEIR_OWN_FIELD: &[&str] =
    &["IntakeRequest", "ContactRecorded", "AssessmentRecorded"];

/// Every command body also takes `occurred_at` (unless dated by a field of its own) and
/// `late_entry_reason` (see [`CommandBody`]): in the contract, each command's body is its own
/// schema, `<Body>Command`, the event's fields with those beside them.
pub(super) fn add_dating_to_command_bodies(api: &mut serde_json::Value) {
    let occurred_at = serde_json::json!({
        "type": "string", "format": "date-time",
        "description": "When it happened (RFC 3339), if not now: no later than now, not before \
                        what it follows on the record; older than the back-entry window \
                        (projections/recording) only for a team lead with a late_entry_reason"
    });
    let reason = serde_json::json!({
        "type": "string", "minLength": 1, "maxLength": super::extract::LATE_ENTRY_REASON_LIMIT,
        "pattern": "\\S",
        "description": "Why a fact older than the back-entry window is entered now (team leads); \
                        kept in the record beside it"
    });
    // (the body's schema as the contract names it, the event's schema it extends)
    let mut dated: Vec<(String, String)> = Vec::new();
    if let Some(paths) = api["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            if !path.starts_with("/api/v1/clients/{client_id}/") {
                continue;
            }
            let Some(schema) =
                item.pointer_mut("/post/requestBody/content/application~1json/schema/$ref")
            else {
                continue;
            };
            let Some(name) = schema
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .map(str::to_owned)
            else {
                continue;
            };
            let command = format!("{name}Command");
            *schema = serde_json::Value::String(format!("#/components/schemas/{command}"));
            if !dated.iter().any(|(c, _)| *c == command) {
                dated.push((command, name));
            }
        }
    }
    let schemas = &mut api["components"]["schemas"];
    for (command, name) in dated {
        let mut body = schemas[&name].clone();
        if let Some(properties) = body["properties"].as_object_mut() {
            if !DATED_BY_THEIR_OWN_FIELD.contains(&name.as_str()) {
                properties.insert("occurred_at".to_owned(), occurred_at.clone());
            }
            properties.insert("late_entry_reason".to_owned(), reason.clone());
        }
        schemas[command] = body;
    }
}
