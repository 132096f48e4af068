//! An administrator's dead letters of the messages back to GP practices (the page of
//! [`crate::dead_letters`]): each by when it was decided, its code and its practice.

use actix_web::web;
use app::gp_outbox::OutboxEntry;
use maud::{Markup, html};

use crate::dead_letters::{self, DeadLetters, Letter};
use crate::pages::moment;

/// The routes: the dead letters and the replay form.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    dead_letters::configure::<OutboxEntry>(config);
}

impl DeadLetters for OutboxEntry {
    const PATH: &'static str = "/console/admin/gp-messages";
    const TITLE: &'static str = "Messages to GP practices not delivered";
    const NOUN: &'static str = "message";
    const INTRO: &'static str = "Each message here was tried until its last attempt and not delivered. \
        Later messages about the same person wait until it is. Put right what stopped it \
        (the practice's endpoint), then send it again.";
    const NONE: &'static str = "Every message has been delivered or is still being tried.";
    const CAPTION: &'static str = "Messages not delivered, oldest first";
    const HEADINGS: &'static [&'static str] = &["Decided", "Message", "Practice"];

    fn letter(&self) -> Letter<'_> {
        Letter::of(self.message_id, self.attempts, self.last_error.as_deref())
    }

    fn cells(&self) -> Markup {
        html! {
            td class="nhsuk-table__cell" { (moment(self.occurred_at)) }
            td class="nhsuk-table__cell" { (self.kind.replace('_', " ")) " (SNOMED CT " (self.code) ")" }
            td class="nhsuk-table__cell" { (self.practice_ods.as_deref().unwrap_or("–")) }
        }
    }
}
