//! Closing a case with its reason, and a team lead's redirection of a referral to a more
//! suitable place: each a page of its own, linked from the person's page.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use app::AppError;
use app::directory::{DirectoryEntry, DirectoryService, SearchRequest};
use app::records::{ClientRecord, ReferralSummary};
use app::sessions::ConsoleSession;
use domain::{
    CaseClosed, CaseCommand, CaseStatus, ClosureReason, Destination, ReferralId,
    ReferralRedirected, ReferralStatus, ServiceId,
};
use maud::{Markup, html};
use uuid::Uuid;

use crate::Console;
use crate::connect::{
    PersonForm, Shown, choice, form_page, note_area, refused_at, show, status, typed_note,
};
use crate::forms::{FieldError, coded, form_id, text};
use crate::pages::{csrf_field, error_for, error_message, group_class};
use crate::{failure, page};

/// A link to close the case, while it is open.
pub(crate) fn close_link(record: &ClientRecord) -> Markup {
    html! {
        @if record.status == CaseStatus::Open {
            h2 class="nhsuk-heading-m" id="closure" { "Closing the case" }
            p class="nhsuk-body" {
                a id="close" href={"/console/people/" (record.client_id) "/close"} { "Close the case" }
            }
        }
    }
}

/// A link to redirect a waiting referral elsewhere (shown to those who triage).
pub(crate) fn redirect_link(record: &ClientRecord) -> Markup {
    html! {
        p class="nhsuk-body" {
            a id="redirect" href={"/console/people/" (record.client_id) "/redirect"} { "Redirect the referral to a more suitable service" }
        }
    }
}

/// The closure form, as typed.
#[derive(Clone, Debug, Default)]
pub(crate) struct CloseForm {
    /// Chosen when the form is shown: sending it twice closes once.
    closure_id: Uuid,
    reason: String,
    note: String,
}

impl PersonForm for CloseForm {
    const DONE: &'static str = "closed";

    fn from_fields(fields: &HashMap<String, String>) -> CloseForm {
        CloseForm {
            closure_id: form_id(fields, "closure_id"),
            reason: text(fields, "reason"),
            note: fields.get("note").cloned().unwrap_or_default(),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let reason = coded(ClosureReason::ALL, &self.reason);
        if reason.is_none() {
            errors.push(FieldError::new("reason", "Select why the case is closed"));
        }
        let note = typed_note(&self.note, "note", &mut errors);
        match reason {
            Some(reason) if errors.is_empty() => {
                Ok(CaseCommand::CloseCase(CaseClosed { reason, note }))
            }
            _ => Err(errors),
        }
    }

    fn key(&self) -> String {
        format!("console-closure-{}", self.closure_id)
    }

    fn refused_at(&self, field: Option<&str>) -> String {
        refused_at(field, &[], &["reason", "note"], "reason")
    }

    async fn again(&self, on: &Shown<'_>, errors: &[FieldError]) -> HttpResponse {
        let Shown {
            session, record, ..
        } = *on;
        let body = html! {
            form method="post" action={"/console/people/" (record.client_id) "/close"} novalidate {
                (csrf_field(session))
                input type="hidden" name="closure_id" value=(self.closure_id);
                (choice(("reason", "reason"), "Why is the case closed?",
                    (ClosureReason::ALL, ClosureReason::label), &self.reason, errors))
                (note_area("note", "Note (needed for other)", &self.note, errors))
                button class="nhsuk-button" id="close-case" type="submit" { "Close the case" }
            }
        };
        page(
            status(errors),
            form_page(session, record, "Close the case", errors, body),
        )
    }
}

/// The page to close the case.
pub(crate) async fn close_page(
    req: HttpRequest,
    path: web::Path<String>,
    console: web::Data<Console>,
) -> HttpResponse {
    let form = CloseForm {
        closure_id: Uuid::new_v4(),
        ..CloseForm::default()
    };
    show(&req, &console, &path, &form).await
}

/// A redirection, as typed: a destination code, or `service` with the service chosen.
#[derive(Clone, Debug, Default)]
pub(crate) struct RedirectForm {
    /// Chosen when the form is shown: sending it twice redirects once.
    redirect_id: Uuid,
    referral_id: String,
    destination: String,
    service_id: String,
    note: String,
}

/// The destination that names a directory service.
const SERVICE: &str = "service";

impl PersonForm for RedirectForm {
    const DONE: &'static str = "redirected";

    fn from_fields(fields: &HashMap<String, String>) -> RedirectForm {
        RedirectForm {
            redirect_id: form_id(fields, "redirect_id"),
            referral_id: text(fields, "referral_id"),
            destination: text(fields, "destination"),
            service_id: text(fields, "service_id"),
            note: fields.get("note").cloned().unwrap_or_default(),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Ok(referral_id) = Uuid::try_parse(&self.referral_id).map(ReferralId) else {
            return Err(vec![FieldError::new(
                "destination",
                "This referral is not on the record: reload the page",
            )]);
        };
        let destination = match self.destination.as_str() {
            "" => {
                errors.push(FieldError::new(
                    "destination",
                    "Select where the referral goes",
                ));
                None
            }
            SERVICE => match Uuid::try_parse(&self.service_id) {
                Ok(id) => Some(Destination::Service {
                    service_id: ServiceId(id),
                }),
                Err(_) => {
                    errors.push(FieldError::new(
                        "service_id",
                        "Choose the service in the directory",
                    ));
                    None
                }
            },
            code => Some(Destination::Coded {
                code: code.to_owned(),
            }),
        };
        let note = typed_note(&self.note, "note", &mut errors);
        match destination {
            Some(destination) if errors.is_empty() => {
                Ok(CaseCommand::RedirectReferral(ReferralRedirected {
                    referral_id,
                    destination,
                    note,
                }))
            }
            _ => Err(errors),
        }
    }

    fn key(&self) -> String {
        format!("console-redirect-{}", self.redirect_id)
    }

    fn refused_at(&self, field: Option<&str>) -> String {
        let renamed = [("destination.service_id", "service_id")];
        refused_at(field, &renamed, &["note"], "destination")
    }

    async fn again(&self, on: &Shown<'_>, errors: &[FieldError]) -> HttpResponse {
        let Shown {
            console,
            session,
            record,
            ..
        } = *on;
        let Some(referral) = record
            .referrals
            .iter()
            .find(|r| r.status == ReferralStatus::Pending)
        else {
            return failure(
                Some(session),
                &AppError::NotFound("no referral of this person is waiting for a decision".into()),
            );
        };
        // The services a referral can go to now.
        let request = SearchRequest {
            available: Some(true),
            limit: Some(100),
            ..SearchRequest::default()
        };
        let services = match DirectoryService::beside(&console.cases)
            .search_page(&session.principal, request)
            .await
        {
            Ok(found) => found.items,
            Err(e) => return failure(Some(session), &e),
        };
        let body = redirect_markup(session, record, referral, self, &services, errors, console);
        page(
            status(errors),
            form_page(session, record, "Redirect the referral", errors, body),
        )
    }
}

fn redirect_markup(
    session: &ConsoleSession,
    record: &ClientRecord,
    referral: &ReferralSummary,
    form: &RedirectForm,
    services: &[DirectoryEntry],
    errors: &[FieldError],
    console: &Console,
) -> Markup {
    let destination_error = error_for(errors, "destination");
    let service_error = error_for(errors, "service_id");
    let chosen = |value: &str| form.destination == value;
    html! {
        p class="nhsuk-body" {
            "Received " (crate::pages::day(referral.received_on)) " from "
            (domain::code(&referral.source).replace('_', " ")) "."
        }
        form method="post" action={"/console/people/" (record.client_id) "/redirect"} novalidate {
            (csrf_field(session))
            input type="hidden" name="redirect_id" value=(form.redirect_id);
            input type="hidden" name="referral_id" value=(referral.referral_id);
            div class=(group_class(destination_error.or(service_error))) {
                fieldset class="nhsuk-fieldset" aria-describedby=[destination_error.map(|_| "destination-error")] {
                    legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "Where does the referral go?" }
                    (error_message(destination_error))
                    div class="nhsuk-radios" {
                        @for (i, place) in console.cases.redirect_destinations().iter().enumerate() {
                            @let id = if i == 0 { "destination".to_owned() } else { format!("destination-{}", place.code) };
                            div class="nhsuk-radios__item" {
                                input class="nhsuk-radios__input" id=(id) name="destination" type="radio"
                                    value=(place.code) checked[chosen(place.code.as_str())];
                                label class="nhsuk-label nhsuk-radios__label" for=(id) { (place.name) }
                            }
                        }
                        div class="nhsuk-radios__item" {
                            input class="nhsuk-radios__input" id="destination-service" name="destination" type="radio"
                                value=(SERVICE) checked[chosen(SERVICE)];
                            label class="nhsuk-label nhsuk-radios__label" for="destination-service" { "A service in the directory (choose it below)" }
                        }
                    }
                }
            }
            div class=(group_class(service_error)) {
                label class="nhsuk-label" for="service_id" { "The service in the directory" }
                div class="nhsuk-hint" id="service_id-hint" { "Services taking referrals now" }
                (error_message(service_error))
                select class={"nhsuk-select" @if service_error.is_some() { " nhsuk-select--error" }} id="service_id" name="service_id"
                    aria-describedby={"service_id-hint" @if service_error.is_some() { " service_id-error" }} {
                    option value="" { "Choose a service" }
                    @for s in services {
                        option value=(s.service_id) selected[form.service_id == s.service_id.to_string()] {
                            (s.name) " – " (s.organisation)
                        }
                    }
                }
            }
            (note_area("note", "Note (optional)", &form.note, errors))
            button class="nhsuk-button" id="redirect-referral" type="submit" { "Redirect the referral" }
        }
    }
}

/// The page to redirect the person's waiting referral.
pub(crate) async fn redirect_page(
    req: HttpRequest,
    path: web::Path<String>,
    console: web::Data<Console>,
) -> HttpResponse {
    let form = RedirectForm {
        redirect_id: Uuid::new_v4(),
        ..RedirectForm::default()
    };
    show(&req, &console, &path, &form).await
}
