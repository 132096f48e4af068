//! Tags on the person's page (the tags the case carries, a form to put one of the service's
//! list on, a button to take each off) and the caseload's filter by tag. The application
//! decides; these pages read the forms and show its answer.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use app::caseload::CaseloadItem;
use app::records::ClientRecord;
use app::sessions::ConsoleSession;
use domain::{CaseCommand, CaseTagged, CaseUntagged};
use maud::{Markup, html};
use uuid::Uuid;

use crate::connect::{PersonForm, Shown};
use crate::forms::{FieldError, form_id, text};
use crate::pages::{csrf_field, error_for, error_message, group_class};

/// The routes of these forms, under `/console/people/{client_id}`.
pub(crate) fn routes(config: &mut web::ServiceConfig) {
    use crate::connect::post;
    config.route("/tags", web::post().to(post::<TagForm>));
}

/// What the banner of the person's page says after one of these forms.
pub(crate) fn banner(done: &str) -> Option<&'static str> {
    match done {
        "tag" => Some("Tags changed"),
        _ => None,
    }
}

/// A tag's label under the latest tag rules (the code for one the list no longer has).
fn label(code: &str) -> &str {
    app::tags::rules().label(code)
}

/// The tags a case carries, as small grey tags (on a caseload row).
pub(crate) fn row_tags(item: &CaseloadItem) -> Markup {
    html! {
        @for tag in &item.tags {
            strong class="nhsuk-tag nhsuk-tag--grey" data-tag=(tag) { (label(tag)) } " "
        }
    }
}

/// The filter above a caseload: one of the service's tags, or every case.
pub(crate) fn filter(chosen: Option<&str>) -> Markup {
    html! {
        form method="get" action="/console/caseload" id="tag-filter" novalidate {
            div class="nhsuk-form-group" {
                label class="nhsuk-label" for="tag" { "Show only people tagged" }
                select class="nhsuk-select" id="tag" name="tag" {
                    option value="" selected[chosen.is_none()] { "Everyone" }
                    @for tag in &app::tags::rules().tags {
                        option value=(tag.code) selected[chosen == Some(tag.code.as_str())] { (tag.label) }
                    }
                }
                " "
                button class="nhsuk-button nhsuk-button--secondary" type="submit" id="filter" { "Filter" }
            }
        }
    }
}

/// The tags on the person's page, with the form to change them when the viewer works the case.
pub(crate) fn section(
    who: &ConsoleSession,
    record: &ClientRecord,
    errors: &[FieldError],
) -> Markup {
    let base = format!("/console/people/{}", record.client_id);
    let works = who.caseload().is_some() && !record.erased;
    let untagged: Vec<_> = app::tags::rules()
        .tags
        .iter()
        .filter(|t| !record.tags.iter().any(|on| on.code == t.code))
        .collect();
    let tag_error = error_for(errors, "tag");
    html! {
        h2 class="nhsuk-heading-m" id="tags" { "Tags" }
        @if record.tags.is_empty() {
            p class="nhsuk-body" { "No tags." }
        } @else {
            ul class="nhsuk-list" id="case-tags" {
                @for tag in &record.tags {
                    li data-tag=(tag.code) {
                        strong class="nhsuk-tag nhsuk-tag--grey" { (tag.label) }
                        @if works {
                            " "
                            form method="post" action={(base) "/tags"} novalidate {
                                (csrf_field(who))
                                input type="hidden" name="version" value=(record.version);
                                input type="hidden" name="change_id" value=(Uuid::new_v4());
                                input type="hidden" name="tag" value=(tag.code);
                                input type="hidden" name="action" value="remove";
                                button class="nhsuk-button nhsuk-button--secondary nhsuk-u-margin-bottom-0" type="submit" {
                                    "Remove" span class="nhsuk-u-visually-hidden" { " " (tag.label) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if works && !untagged.is_empty() {
            form method="post" action={(base) "/tags"} id="add-tag" novalidate {
                (csrf_field(who))
                input type="hidden" name="version" value=(record.version);
                input type="hidden" name="change_id" value=(Uuid::new_v4());
                input type="hidden" name="action" value="add";
                div class=(group_class(tag_error)) {
                    label class="nhsuk-label" for="add-tag-code" { "Add a tag" }
                    (error_message(tag_error))
                    select class="nhsuk-select" id="add-tag-code" name="tag" {
                        @for tag in &untagged {
                            option value=(tag.code) { (tag.label) }
                        }
                    }
                }
                button class="nhsuk-button nhsuk-button--secondary" type="submit" { "Add tag" }
            }
        }
    }
}

/// Putting a tag on the case, or taking one off.
#[derive(Clone, Debug, Default)]
pub(crate) struct TagForm {
    change_id: Uuid,
    tag: String,
    remove: bool,
}

impl PersonForm for TagForm {
    const DONE: &'static str = "tag";
    const TITLE: &'static str = "Change tags";
    const ACTION: &'static str = "/tags";

    fn from_fields(fields: &HashMap<String, String>) -> TagForm {
        TagForm {
            change_id: form_id(fields, "change_id"),
            tag: text(fields, "tag"),
            remove: fields.get("action").is_some_and(|v| v == "remove"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        if self.tag.is_empty() {
            return Err(vec![FieldError::new("tag", "Choose a tag")]);
        }
        let tag = self.tag.clone();
        Ok(if self.remove {
            CaseCommand::UntagCase(CaseUntagged { tag })
        } else {
            CaseCommand::TagCase(CaseTagged { tag })
        })
    }

    fn key(&self) -> String {
        format!("console-tag-{}", self.change_id)
    }

    fn refused_at(&self, _field: Option<&str>) -> String {
        "tag".to_owned()
    }

    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        Ok(html! {
            (section(on.session, on.record, errors))
            p class="nhsuk-body" { a href={"/console/people/" (on.record.client_id) "#tags"} { "Back to the person" } }
        })
    }
}
