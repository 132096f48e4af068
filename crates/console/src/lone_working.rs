//! Lone-working plans on the person's page: each home visit's plan (where, by when the check-in
//! is due, any known risk) and whether the check-in came, a missed one tagged red. Read only:
//! plans and check-ins are recorded over the API so far.

use app::records::ClientRecord;
use maud::{Markup, html};

use crate::pages::moment;

/// The plans, newest first; nothing when there are none.
pub(crate) fn section(record: &ClientRecord) -> Markup {
    html! {
        @if !record.lone_working.is_empty() {
            h2 class="nhsuk-heading-m" id="lone-working" { "Lone working" }
            @for plan in &record.lone_working {
                div class="nhsuk-card" {
                    div class="nhsuk-card__content" {
                        h3 class="nhsuk-card__heading nhsuk-heading-s" {
                            "Home visit, check in by " (moment(plan.check_in_by)) " "
                            @if plan.check_in_missed {
                                strong class="nhsuk-tag nhsuk-tag--red" { "Check-in missed" }
                            } @else if plan.checked_in_at.is_some() {
                                strong class="nhsuk-tag nhsuk-tag--green" { "Checked in" }
                            } @else if plan.visit_cancelled {
                                strong class="nhsuk-tag nhsuk-tag--grey" { "Visit cancelled" }
                            }
                        }
                        p class="nhsuk-body" { (plan.address_note) }
                        @if let Some(risks) = &plan.known_risks {
                            p class="nhsuk-body" { "Known risks: " (risks) }
                        }
                        @if let Some(at) = plan.checked_in_at {
                            p class="nhsuk-body-s" { "Checked in " (moment(at)) "." }
                        }
                    }
                }
            }
        }
    }
}
