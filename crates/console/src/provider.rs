//! "Connections to your services": a directory service's provider staff see the connections
//! made to their services (newest first, the person by given name and initial only when they
//! consented to share), accept or decline each with a reason, and say whether the person
//! started. Every list, rule and refusal is the application's ([`app::provider`]); a form is
//! read into an answer, sent, and answered with 303 back to the page and a banner, or with the
//! page again (422) and what to put right.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use app::provider::{ProviderConnection, ProviderConnectionPage, ProviderConnections};
use app::records::{ReadContext, ReadPurpose};
use app::sessions::ConsoleSession;
use app::{AppError, CommandError, StaffCommand};
use domain::{
    ClientId, ConnectionAcceptedByProvider, ConnectionDeclinedByProvider, ConnectionId,
    ConnectionStartRecorded, ProviderAnswer, ProviderCommand, ProviderDeclineReason,
};
use maud::{Markup, html};
use uuid::Uuid;

use crate::forms::{self, FieldError, coded, form_id, text};
use crate::pages::{
    capitalise, csrf_field, error_for, error_message, error_summary, group_class, layout, moment,
    success,
};
use crate::{Console, failure, form_session, page, request_id, see_other, session};

/// What the page's query may say: what a form just did.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ProviderQuery {
    done: Option<String>,
}

fn banner(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "accepted" => Some("Connection accepted"),
        "declined" => Some("Connection declined"),
        "started" => Some("Recorded whether the person started"),
        _ => None,
    }
}

/// The page.
pub(crate) async fn provider_page(
    req: HttpRequest,
    query: web::Query<ProviderQuery>,
    console: web::Data<Console>,
) -> HttpResponse {
    let session = signed_in!(req, console);
    render(
        &req,
        &console,
        &session,
        StatusCode::OK,
        (Vec::new(), banner(query.done.as_deref())),
    )
    .await
}

async fn render(
    req: &HttpRequest,
    console: &Console,
    session: &ConsoleSession,
    status: StatusCode,
    (errors, banner): (Vec<FieldError>, Option<&'static str>),
) -> HttpResponse {
    let read = ReadContext::new(Some(ReadPurpose::DirectCare), request_id(req));
    match ProviderConnections::beside(&console.cases)
        .connections(&session.principal, None, Some(app::MAX_LIMIT), &read)
        .await
    {
        Ok(list) => page(status, markup(session, &list, &errors, banner)),
        Err(e) => failure(Some(session), &e),
    }
}

fn markup(
    who: &ConsoleSession,
    list: &ProviderConnectionPage,
    errors: &[FieldError],
    banner: Option<&str>,
) -> Markup {
    layout(
        "Connections to your services",
        Some(who),
        html! {
            @if !errors.is_empty() { (error_summary(errors)) }
            @if let Some(text) = banner { (success(text)) }
            h1 class="nhsuk-heading-l" { "Connections to your services" }
            p class="nhsuk-body" {
                "People link workers have connected to your services, newest first. A name shows \
                 only when the person agreed to share it with you."
            }
            @if list.items.is_empty() {
                p class="nhsuk-body" id="no-connections" { "No connections to your services yet." }
            }
            @for item in &list.items {
                (card(who, item, errors))
            }
        },
    )
}

fn person(item: &ProviderConnection) -> String {
    match (&item.person, item.erased) {
        (_, true) => "A person whose details were erased".to_owned(),
        (Some(person), _) => format!("{} {}.", person.given_name, person.family_initial),
        (None, _) => "A person who has not agreed to share their name".to_owned(),
    }
}

fn card(who: &ConsoleSession, item: &ProviderConnection, errors: &[FieldError]) -> Markup {
    let id = item.connection_id;
    let action = |what: &str| format!("/console/provider/{}/{id}/{what}", item.client_id);
    let reason_field = format!("reason-{id}");
    let started_field = format!("started-{id}");
    let reason_error = error_for(errors, &reason_field);
    let started_error = error_for(errors, &started_field);
    let service = item
        .service_name
        .clone()
        .unwrap_or_else(|| "Your service".to_owned());
    html! {
        div class="nhsuk-card" id={"connection-" (id)} {
            div class="nhsuk-card__content" {
                h2 class="nhsuk-card__heading nhsuk-heading-s" { (person(item)) }
                p class="nhsuk-body-s" {
                    (service) ", for " (item.need.label()) " (" (item.kind.label()) "), on " (moment(item.made_at)) "."
                }
                p class="nhsuk-body-s" id={"answer-" (id)} {
                    @match item.answer {
                        Some(answer) => { "Your answer: " strong { (answer.label()) } }
                        None => { "Not answered yet." }
                    }
                }
                @if item.answer.is_none() && !item.erased {
                    form method="post" action=(action("accept")) novalidate {
                        (csrf_field(who))
                        input type="hidden" name="form_id" value=(Uuid::new_v4());
                        button class="nhsuk-button nhsuk-u-margin-bottom-2" id={"accept-" (id)} type="submit" {
                            "Accept" span class="nhsuk-u-visually-hidden" { " " (person(item)) }
                        }
                    }
                    form method="post" action=(action("decline")) novalidate {
                        (csrf_field(who))
                        input type="hidden" name="form_id" value=(Uuid::new_v4());
                        div class=(group_class(reason_error)) {
                            label class="nhsuk-label" for=(reason_field) { "Why decline?" }
                            (error_message(reason_error))
                            select class="nhsuk-select" id=(reason_field) name="reason" {
                                option value="" { "Choose a reason" }
                                @for reason in ProviderDeclineReason::ALL {
                                    option value=(domain::code(reason)) { (capitalise(reason.label())) }
                                }
                            }
                        }
                        button class="nhsuk-button nhsuk-button--warning" id={"decline-" (id)} type="submit" {
                            "Decline" span class="nhsuk-u-visually-hidden" { " " (person(item)) }
                        }
                    }
                }
                @if item.answer == Some(ProviderAnswer::Accepted) && !item.erased {
                    form method="post" action=(action("start")) novalidate {
                        (csrf_field(who))
                        input type="hidden" name="form_id" value=(Uuid::new_v4());
                        div class=(group_class(started_error)) {
                            fieldset class="nhsuk-fieldset" {
                                legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "Did the person start?" }
                                (error_message(started_error))
                                div class="nhsuk-radios nhsuk-radios--inline" id=(started_field) {
                                    div class="nhsuk-radios__item" {
                                        input class="nhsuk-radios__input" id={"started-yes-" (id)} name="started" type="radio" value="yes";
                                        label class="nhsuk-label nhsuk-radios__label" for={"started-yes-" (id)} { "Yes" }
                                    }
                                    div class="nhsuk-radios__item" {
                                        input class="nhsuk-radios__input" id={"started-no-" (id)} name="started" type="radio" value="no";
                                        label class="nhsuk-label nhsuk-radios__label" for={"started-no-" (id)} { "No" }
                                    }
                                }
                            }
                        }
                        button class="nhsuk-button nhsuk-button--secondary" id={"start-" (id)} type="submit" { "Record it" }
                    }
                }
            }
        }
    }
}

/// Reads a form into the answer, or names the field to put right.
fn answer_of(
    action: &str,
    connection_id: ConnectionId,
    fields: &HashMap<String, String>,
) -> Result<(ProviderCommand, &'static str), FieldError> {
    let id = connection_id.0;
    match action {
        "accept" => Ok((
            ProviderCommand::Accept(ConnectionAcceptedByProvider { connection_id }),
            "accepted",
        )),
        "decline" => match coded(ProviderDeclineReason::ALL, &text(fields, "reason")) {
            Some(reason) => Ok((
                ProviderCommand::Decline(ConnectionDeclinedByProvider {
                    connection_id,
                    reason,
                }),
                "declined",
            )),
            None => Err(FieldError::new(
                format!("reason-{id}"),
                "Select why the connection is declined",
            )),
        },
        _ => match text(fields, "started").as_str() {
            answer @ ("yes" | "no") => Ok((
                ProviderCommand::RecordStart(ConnectionStartRecorded {
                    connection_id,
                    started: answer == "yes",
                }),
                "started",
            )),
            _ => Err(FieldError::new(
                format!("started-{id}"),
                "Select whether the person started",
            )),
        },
    }
}

/// Sends an answer's form.
pub(crate) async fn answer(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
    console: web::Data<Console>,
) -> HttpResponse {
    let (fields, session) = posted_form!(req, console, body);
    let (client, connection, action) = path.into_inner();
    let (Ok(client), Ok(connection), true) = (
        Uuid::try_parse(&client),
        Uuid::try_parse(&connection),
        matches!(action.as_str(), "accept" | "decline" | "start"),
    ) else {
        return failure(
            Some(&session),
            &AppError::NotFound("no such connection".into()),
        );
    };
    let again = |errors: Vec<FieldError>| (errors, None);
    let (command, done) = match answer_of(&action, ConnectionId(connection), &fields) {
        Ok(answer) => answer,
        Err(error) => {
            return render(
                &req,
                &console,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                again(vec![error]),
            )
            .await;
        }
    };
    let request = StaffCommand {
        idempotency_key: Some(format!("console-provider-{}", form_id(&fields, "form_id"))),
        correlation_id: request_id(&req),
        ..StaffCommand::default()
    };
    let field = match action.as_str() {
        "start" => format!("started-{connection}"),
        _ => format!("reason-{connection}"),
    };
    let refused = match ProviderConnections::beside(&console.cases)
        .answer_as(&session.principal, ClientId(client), &command, request)
        .await
    {
        Ok(_) => return see_other(&format!("/console/provider?done={done}")),
        Err(CommandError::Refused(refusal)) => capitalise(&refusal.to_string()),
        Err(CommandError::Conflict { .. }) => {
            "This person's record changed while you were looking: try again".to_owned()
        }
        Err(e) => return failure(Some(&session), &AppError::Command(e)),
    };
    let errors = vec![FieldError::new(field, refused)];
    render(
        &req,
        &console,
        &session,
        StatusCode::UNPROCESSABLE_ENTITY,
        again(errors),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::filled;

    #[test]
    fn an_answer_form_reads_its_reason_or_start_and_names_what_is_missing() {
        let id = ConnectionId(Uuid::from_u128(7));
        let (command, done) =
            answer_of("decline", id, &filled(&[("reason", "no_capacity")])).expect("reads");
        assert_eq!(done, "declined");
        assert_eq!(
            command,
            ProviderCommand::Decline(ConnectionDeclinedByProvider {
                connection_id: id,
                reason: ProviderDeclineReason::NoCapacity,
            })
        );
        let (command, _) = answer_of("start", id, &filled(&[("started", "no")])).expect("reads");
        assert_eq!(
            command,
            ProviderCommand::RecordStart(ConnectionStartRecorded {
                connection_id: id,
                started: false,
            })
        );
        let missing = answer_of("decline", id, &filled(&[("reason", "busy")])).expect_err("no");
        assert_eq!(missing.field, format!("reason-{}", id.0));
        let missing = answer_of("start", id, &filled(&[])).expect_err("no");
        assert_eq!(missing.field, format!("started-{}", id.0));
    }
}
