//! Closing a case with its reason, and a team lead's redirection of a referral to a more
//! suitable place: each a page of its own, linked from the person's page.

use std::collections::HashMap;

use actix_web::HttpResponse;
use app::AppError;
use app::directory::{DirectoryEntry, DirectoryService, SearchRequest};
use app::records::{ClientRecord, ReferralSummary};
use domain::{
    CaseClosed, CaseCommand, CaseStatus, ClosureReason, Destination, ReferralId,
    ReferralRedirected, ReferralStatus, ServiceId,
};
use maud::{Markup, html};
use uuid::Uuid;

use crate::connect::{PersonForm, Shown, posted, refused_at};
use crate::failure;
use crate::fields::{choice, fieldset, select, text_area, typed_text};
use crate::forms::{FieldError, NOTE_LIMIT, coded, form_id, text};

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
    const TITLE: &'static str = "Close the case";
    const ACTION: &'static str = "/close";

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
        let note = typed_text(&self.note, "note", NOTE_LIMIT, &mut errors);
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

    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        Ok(posted::<CloseForm>(
            on,
            html! {
                input type="hidden" name="closure_id" value=(self.closure_id);
                (choice(("reason", "reason"), "Why is the case closed?",
                    (ClosureReason::ALL, ClosureReason::label), &self.reason, errors))
                (text_area(("note", "note"), ("Note (needed for other)", None), (&self.note, 3), errors))
                button class="nhsuk-button" id="close-case" type="submit" { "Close the case" }
            },
        ))
    }
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
    const TITLE: &'static str = "Redirect the referral";
    const ACTION: &'static str = "/redirect";

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
        let note = typed_text(&self.note, "note", NOTE_LIMIT, &mut errors);
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

    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        let Some(referral) = on
            .record
            .referrals
            .iter()
            .find(|r| r.status == ReferralStatus::Pending)
        else {
            return Err(failure(
                Some(on.session),
                &AppError::NotFound("no referral of this person is waiting for a decision".into()),
            ));
        };
        // The services a referral can go to now.
        let request = SearchRequest {
            available: Some(true),
            limit: Some(100),
            ..SearchRequest::default()
        };
        let services = match DirectoryService::beside(&on.console.cases)
            .search_page(&on.session.principal, request)
            .await
        {
            Ok(found) => found.items,
            Err(e) => return Err(failure(Some(on.session), &e)),
        };
        Ok(html! {
            p class="nhsuk-body" { (crate::pages::referral_text(referral)) "." }
            (posted::<RedirectForm>(on, self.fields(on, referral, &services, errors)))
        })
    }
}

impl RedirectForm {
    /// The form's fields, as typed, for `referral` and the `services` it may go to.
    fn fields(
        &self,
        on: &Shown<'_>,
        referral: &ReferralSummary,
        services: &[DirectoryEntry],
        errors: &[FieldError],
    ) -> Markup {
        let chosen = |value: &str| self.destination == value;
        let radios = html! {
            div class="nhsuk-radios" {
                @for (i, place) in on.console.cases.redirect_destinations().iter().enumerate() {
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
        };
        let services: Vec<(String, String)> = services
            .iter()
            .map(|s| {
                (
                    s.service_id.to_string(),
                    format!("{} – {}", s.name, s.organisation),
                )
            })
            .collect();
        html! {
            input type="hidden" name="redirect_id" value=(self.redirect_id);
            input type="hidden" name="referral_id" value=(referral.referral_id);
            (fieldset("destination", "Where does the referral go?", errors, radios))
            (select(("service_id", "service_id"), ("The service in the directory", Some("Services taking referrals now")),
                (&services, &self.service_id, "Choose a service"), errors))
            (text_area(("note", "note"), ("Note (optional)", None), (&self.note, 3), errors))
            button class="nhsuk-button" id="redirect-referral" type="submit" { "Redirect the referral" }
        }
    }
}
