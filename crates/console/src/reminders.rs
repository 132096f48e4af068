//! An administrator's dead letters of the appointment reminders (the page of
//! [`crate::dead_letters`]): each by its appointment's time and person; and, chosen with a GET
//! form, the reminders waiting to be sent, delivered or withheld.

use actix_web::web;
use app::reminders::ReminderEntry;
use maud::{Markup, html};

use crate::dead_letters::{self, DeadLetters, Letter};
use crate::pages::moment;

/// The routes: the dead letters and the replay form.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    dead_letters::configure::<ReminderEntry>(config);
}

impl DeadLetters for ReminderEntry {
    const PATH: &'static str = "/console/admin/reminders";
    const TITLE: &'static str = "Appointment reminders not delivered";
    const NOUN: &'static str = "reminder";
    const INTRO: &'static str = "Each reminder here was tried until its last attempt, or refused by the \
        notification service, and not delivered. Put right what stopped it, then send it \
        again: it still goes only with the person's consent, before the appointment.";
    const NONE: &'static str =
        "Every reminder has been delivered, withheld or is still being tried.";
    const CAPTION: &'static str = "Reminders not delivered, by appointment time";
    const HEADINGS: &'static [&'static str] = &["Appointment", "Client"];
    const LISTED_TITLE: &'static str = "Appointment reminders";
    const STATUSES: &'static [(&'static str, &'static str)] = &[
        ("dead", "Not delivered"),
        ("pending", "Waiting to be sent"),
        ("delivered", "Delivered"),
        ("withheld", "Withheld"),
    ];
    const LISTED_HEADINGS: &'static [&'static str] = &[
        "Appointment",
        "Client",
        "Due",
        "Channel",
        "Why withheld or held",
    ];

    fn letter(&self) -> Letter<'_> {
        Letter::of(self.message_id, self.attempts, self.last_error.as_deref())
    }

    fn cells(&self) -> Markup {
        html! {
            td class="nhsuk-table__cell" { (moment(self.scheduled_for)) }
            td class="nhsuk-table__cell" { (self.client_id) }
        }
    }

    fn listed_cells(&self) -> Markup {
        html! {
            td class="nhsuk-table__cell" { (moment(self.scheduled_for)) }
            td class="nhsuk-table__cell" { (self.client_id) }
            td class="nhsuk-table__cell" { (moment(self.next_attempt_at)) }
            td class="nhsuk-table__cell" { (self.channel.as_deref().unwrap_or("–")) }
            td class="nhsuk-table__cell" { (why(self)) }
        }
    }
}

/// Why a reminder was withheld, or why a pending one is held (nothing configured to send it
/// by), in words.
fn why(entry: &ReminderEntry) -> String {
    match (&entry.withheld_reason, &entry.held_reason) {
        (Some(withheld), _) => withheld.replace('_', " "),
        (None, Some(held)) => format!(
            "held: {}",
            app::reminders::Held::from_code(held).map_or(held.as_str(), |h| h.words())
        ),
        (None, None) => "–".to_owned(),
    }
}
