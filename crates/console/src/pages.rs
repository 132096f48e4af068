//! The console's pages, in the NHS.UK frontend's markup: every page one layout (skip link,
//! header with who is signed in, main, footer), forms that work without JavaScript, errors as
//! an error summary linked to each field.

use std::collections::HashMap;

use app::caseload::{CaseloadFlag, CaseloadItem, CaseloadPage, CaseloadScope, WorkerLoad};
use app::names::PersonName;
use app::records::{ClientRecord, JourneyPage, RecordReadPage, ReferralSummary};
use app::sessions::ConsoleSession;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{CaseStatus, ContactMode, DeclineReason, ReferralStatus, TransferReason};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;
use uuid::Uuid;

use crate::assets::STYLESHEET;
use crate::fields::{fieldset, input};
use crate::forms::{AppointmentForm, ContactForm, FieldError};

/// A whole page: `title` names it (and the browser tab), `who` is the signed-in session.
pub fn layout(title: &str, who: Option<&ConsoleSession>, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – Casebook" }
                link rel="stylesheet" href=(STYLESHEET);
                link rel="icon" href="/assets/images/favicon.svg" type="image/svg+xml";
            }
            body {
                a class="nhsuk-skip-link" href="#maincontent" { "Skip to main content" }
                header class="nhsuk-header" role="banner" {
                    div class="nhsuk-header__container nhsuk-width-container" {
                        div class="nhsuk-header__service" {
                            a class="nhsuk-header__service-name" href="/console" { "Casebook" }
                        }
                        @if let Some(session) = who {
                            nav class="nhsuk-header__account" aria-label="Account" {
                                ul class="nhsuk-header__account-list" {
                                    li class="nhsuk-header__account-item" {
                                        (session.name) " (" (session.role_name()) ")"
                                    }
                                    li class="nhsuk-header__account-item" {
                                        form method="post" action="/console/sign-out" {
                                            (csrf_field(session))
                                            button class="nhsuk-header__account-button" id="sign-out" type="submit" { "Sign out" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(session) = who {
                        nav class="nhsuk-header__navigation" aria-label="Menu" {
                            div class="nhsuk-header__navigation-container nhsuk-width-container" {
                                ul class="nhsuk-header__navigation-list" {
                                    @if session.administers() {
                                        li class="nhsuk-header__navigation-item" {
                                            a class="nhsuk-header__navigation-link" href="/console/admin" { "Administration" }
                                        }
                                    }
                                    @if session.reads_reports() {
                                        li class="nhsuk-header__navigation-item" {
                                            a class="nhsuk-header__navigation-link" href="/console/reports" { "Reports" }
                                        }
                                    }
                                    @if session.audits() {
                                        li class="nhsuk-header__navigation-item" {
                                            a class="nhsuk-header__navigation-link" href="/console/audit" { "Audit a record" }
                                        }
                                    }
                                    @if session.triage_team().is_some() {
                                        li class="nhsuk-header__navigation-item" {
                                            a class="nhsuk-header__navigation-link" href="/console/triage" { "Referrals to triage" }
                                        }
                                        li class="nhsuk-header__navigation-item" {
                                            a class="nhsuk-header__navigation-link" href="/console/workload" { "Team workload" }
                                        }
                                    }
                                    @if let Some(scope) = session.caseload() {
                                        li class="nhsuk-header__navigation-item" {
                                            a class="nhsuk-header__navigation-link" href="/console/caseload" { (caseload_title(&scope)) }
                                        }
                                    }
                                    @if session.caseload().is_some() {
                                        li class="nhsuk-header__navigation-item" {
                                            a class="nhsuk-header__navigation-link" id="nav-tasks" href="/console/tasks" { "My tasks" }
                                        }
                                    }
                                    @if session.provides_services() {
                                        li class="nhsuk-header__navigation-item" {
                                            a class="nhsuk-header__navigation-link" id="nav-provider" href="/console/provider" { "Connections to your services" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                div class="nhsuk-width-container" {
                    main class="nhsuk-main-wrapper" id="maincontent" {
                        (main)
                    }
                }
                footer role="contentinfo" {
                    div class="nhsuk-footer" {
                        div class="nhsuk-width-container" {
                            p class="nhsuk-body-s" {
                                "Casebook keeps special category health data. Every record you open is recorded with your name."
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) fn csrf_field(session: &ConsoleSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf_token()); }
}

fn caseload_title(scope: &CaseloadScope) -> &'static str {
    match scope {
        CaseloadScope::Own(_) => "My caseload",
        CaseloadScope::Team { .. } => "Team caseload",
    }
}

/// 29 November 2026.
pub fn day(date: NaiveDate) -> String {
    date.format("%-d %B %Y").to_string()
}

/// 29 November 2026 at 14:05, on a UK wall clock.
pub fn moment(at: DateTime<Utc>) -> String {
    crate::local::local(at)
        .format("%-d %B %Y at %H:%M")
        .to_string()
}

/// The UK date of an instant: 29 November 2026.
pub fn day_of(at: DateTime<Utc>) -> String {
    day(crate::local::today(at))
}

pub(crate) fn short(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

/// A message page: `heading`, then a paragraph.
pub fn message(title: &str, who: Option<&ConsoleSession>, text: &str) -> Markup {
    layout(
        title,
        who,
        html! {
            h1 class="nhsuk-heading-l" { (title) }
            p class="nhsuk-body" { (text) }
        },
    )
}

/// Where someone lands without a session.
pub fn signed_out(note: Option<&str>) -> Markup {
    signed_out_with(note, None)
}

/// The sign-in page, with a button to sign in with the OpenID provider named `oidc` when one is
/// configured (a link, not a form: the provider is another site, which the page's
/// `form-action` does not allow).
pub fn signed_out_with(note: Option<&str>, oidc: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            h1 class="nhsuk-heading-l" { "Sign in to Casebook" }
            @if let Some(note) = note {
                div class="nhsuk-inset-text" { p { (note) } }
            }
            @if let Some(name) = oidc {
                p class="nhsuk-body" {
                    a class="nhsuk-button" id="oidc-sign-in" href="/console/oidc/start" role="button" draggable="false" {
                        "Sign in with " (name)
                    }
                }
                p class="nhsuk-body" {
                    "Or open the one-time sign-in link you were given."
                }
            } @else {
                p class="nhsuk-body" {
                    "Open the one-time sign-in link you were given. Ask your administrator for a new one if it has been used or has expired."
                }
            }
        },
    )
}

/// The page the OpenID provider's callback answers with once a session is made: it moves on
/// to the console at once. The browser arrived here from another site, and a `SameSite=Strict`
/// cookie is not sent on a redirect that site started; this page's own move is same-site, so
/// the session cookie goes with it.
pub fn signed_in_moving_on() -> Markup {
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="0; url=/console";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Signed in – Casebook" }
                link rel="stylesheet" href=(STYLESHEET);
            }
            body {
                div class="nhsuk-width-container" {
                    main class="nhsuk-main-wrapper" id="maincontent" {
                        h1 class="nhsuk-heading-l" { "Signed in" }
                        p class="nhsuk-body" { a href="/console" { "Continue to Casebook" } }
                    }
                }
            }
        }
    }
}

/// The sign-in link's page: a button that uses it (a link alone signs no one in, so a mail
/// scanner that follows it uses nothing up).
pub fn confirm_sign_in(code: &str) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            h1 class="nhsuk-heading-l" { "Sign in to Casebook" }
            p class="nhsuk-body" { "This link signs you in once. It cannot be used again." }
            form method="post" action="/console/sign-in" novalidate {
                input type="hidden" name="code" value=(code);
                button class="nhsuk-button" id="sign-in" type="submit" { "Sign in" }
            }
        },
    )
}

fn flag_tag(flag: CaseloadFlag) -> Markup {
    let (text, colour) = match flag {
        CaseloadFlag::NoContact => ("No recent contact", "nhsuk-tag--red"),
        CaseloadFlag::DidNotAttend => ("Missed appointments", "nhsuk-tag--orange"),
        CaseloadFlag::BaselineMissing => ("No baseline score", "nhsuk-tag--yellow"),
        CaseloadFlag::FollowUpDue => ("Follow-up score due", "nhsuk-tag--blue"),
        CaseloadFlag::Safeguarding => ("Safeguarding concern open", "nhsuk-tag--red"),
        CaseloadFlag::TriageOverdue => ("Waiting too long", "nhsuk-tag--red"),
        CaseloadFlag::MissedCheckIn => ("Missed lone-working check-in", "nhsuk-tag--red"),
        CaseloadFlag::UrgentReferral => ("Urgent referral", "nhsuk-tag--red"),
        CaseloadFlag::AppointmentOutcomeMissing => {
            ("Appointment outcome not recorded", "nhsuk-tag--orange")
        }
        CaseloadFlag::NoAnswerFromService => ("No answer from service", "nhsuk-tag--orange"),
    };
    html! { strong class={"nhsuk-tag " (colour)} { (text) } }
}

fn status_name(status: CaseStatus) -> &'static str {
    match status {
        CaseStatus::Unregistered => "Not registered",
        CaseStatus::Idle => "No open case",
        CaseStatus::Referred => "Referred",
        CaseStatus::Open => "Open",
        CaseStatus::Closed => "Closed",
    }
}

/// The names on a list of people, by client id ([`app::names`]).
pub type Names = std::collections::HashMap<Uuid, PersonName>;

/// A person on a list, linked to their page: their name, or what is known without it.
pub(crate) fn person_link(client_id: Uuid, names: &Names) -> Markup {
    html! {
        a href={"/console/people/" (client_id)} {
            @match names.get(&client_id) {
                Some(PersonName::Known(name)) => { (name) }
                Some(PersonName::Erased) => { "Name erased (" (short(client_id)) ")" }
                None => { "Person " (short(client_id)) }
            }
        }
    }
}

fn caseload_row(item: &CaseloadItem, names: &Names) -> Markup {
    html! {
        tr class="nhsuk-table__row" {
            td class="nhsuk-table__cell" { (person_link(item.client_id, names)) }
            td class="nhsuk-table__cell" { (item.area) }
            td class="nhsuk-table__cell" { (status_name(item.status)) }
            td class="nhsuk-table__cell" {
                @match item.last_contact_at {
                    Some(at) => (day_of(at)),
                    None => "None yet",
                }
            }
            td class="nhsuk-table__cell" {
                @match item.next_appointment_at {
                    Some(at) => (moment(at)),
                    None => "None booked",
                }
            }
            td class="nhsuk-table__cell" {
                @for flag in &item.flags { (flag_tag(*flag)) " " }
            }
            td class="nhsuk-table__cell" { (crate::tags::row_tags(item)) }
        }
    }
}

/// A caseload, one row a person.
pub fn caseload(
    who: &ConsoleSession,
    page: &CaseloadPage,
    names: &Names,
    tag: Option<&str>,
) -> Markup {
    let title = who.caseload().as_ref().map_or("Caseload", caseload_title);
    layout(
        title,
        Some(who),
        html! {
            h1 class="nhsuk-heading-l" { (title) }
            p class="nhsuk-body" { a id="my-tasks" href="/console/tasks" { "My tasks" } }
            (crate::tags::filter(tag))
            @if page.items.is_empty() {
                @if tag.is_some() {
                    p class="nhsuk-body" { "No one on this caseload carries this tag." }
                } @else {
                    p class="nhsuk-body" { "No one is on this caseload." }
                }
            } @else {
                div class="nhsuk-table-container" role="region" aria-label="Caseload" tabindex="0" {
                    table class="nhsuk-table" {
                        caption class="nhsuk-table__caption" {
                            (page.items.len()) " people" (as_of(&page.as_of))
                        }
                        (head(&["Person", "Area", "Status", "Last contact", "Next appointment", "Needs attention", "Tags"]))
                        tbody class="nhsuk-table__body" {
                            @for item in &page.items { (caseload_row(item, names)) }
                        }
                    }
                }
                @if let Some(next) = page.next_cursor {
                    p class="nhsuk-body" {
                        a href={"/console/caseload?cursor=" (next) @if let Some(tag) = tag { "&tag=" (tag) }} { "Next page" }
                    }
                }
            }
        },
    )
}

/// `ContactRecorded` → `Contact recorded`.
fn event_name(event_type: &str) -> String {
    let mut out = String::new();
    for (i, c) in event_type.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The facts of a payload worth a line: its plain fields, ids left out.
/// When a journey entry happened: its day alone for a fact dated by a day (a referral, an
/// assessment, and the registration a referral brings, kept at their day's UTC midnight),
/// else the wall-clock time.
fn happened(at: DateTime<Utc>, event_type: &str) -> String {
    let by_day = matches!(
        event_type,
        "ReferralReceived" | "ClientRegistered" | "AssessmentRecorded"
    );
    if by_day && at.time() == chrono::NaiveTime::MIN {
        day(at.date_naive())
    } else {
        moment(at)
    }
}

/// Who recorded a journey entry: their name and role when they are a colleague, else their
/// role.
fn actor(entry: &app::JourneyEntry, colleagues: &HashMap<Uuid, String>) -> String {
    let role = entry.actor_role.replace('_', " ");
    match colleagues.get(&entry.actor_id) {
        Some(name) => format!("{name} ({role})"),
        None => format!("a {role}"),
    }
}

/// The facts of a journey entry a person reads: its fields but ids, codes in words, the
/// service a connection names by its name (`services`: by id).
fn facts(payload: &Value, services: &HashMap<String, &str>) -> Vec<(String, String)> {
    let Value::Object(fields) = payload else {
        return Vec::new();
    };
    let service = fields
        .get("service_id")
        .and_then(Value::as_str)
        .and_then(|id| services.get(id))
        .map(|name| ("service".to_owned(), (*name).to_owned()));
    service
        .into_iter()
        .chain(
            fields
                .iter()
                .filter(|(k, _)| !k.ends_with("_id") && !k.ends_with("_ids"))
                .filter_map(|(k, v)| {
                    let text = match v {
                        // An instant (`contacted_at`) as the wall clock showed it, like the card's own.
                        Value::String(s) if let Ok(at) = DateTime::parse_from_rfc3339(s) => {
                            moment(at.with_timezone(&Utc))
                        }
                        Value::String(s) if let Ok(d) = s.parse::<NaiveDate>() => day(d),
                        // A code ("money_benefits_debt") in words; free text as written.
                        Value::String(s)
                            if !s.is_empty()
                                && s.chars().all(|c| {
                                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
                                }) =>
                        {
                            code_words(s)
                        }
                        Value::String(s) => s.clone(),
                        // Where a redirected referral went: a directory service, a code, or
                        // words.
                        Value::Object(o) if k == "destination" => {
                            let field = |name: &str| o.get(name).and_then(Value::as_str);
                            match field("kind") {
                                Some("service") => field("service_id")
                                    .and_then(|id| services.get(id))
                                    .map_or_else(
                                        || "a directory service".to_owned(),
                                        |name| (*name).to_owned(),
                                    ),
                                Some("coded") => code_words(field("code").unwrap_or_default()),
                                _ => field("text").unwrap_or_default().to_owned(),
                            }
                        }
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
                        _ => return None,
                    };
                    Some((k.replace('_', " "), text))
                }),
        )
        .take(6)
        .collect()
}

/// What a person's page shows.
pub struct PersonView<'a> {
    pub record: &'a ClientRecord,
    pub journey: &'a JourneyPage,
    pub contact: &'a ContactForm,
    pub appointment: &'a AppointmentForm,
    pub errors: &'a [FieldError],
    /// What was just done ("Contact recorded"), after a form was sent.
    pub banner: Option<&'a str>,
    /// Whether the viewer triages referrals (a team lead).
    pub triage: bool,
    /// A team lead's team of link workers, to assign or transfer the case to.
    pub workers: &'a [WorkerLoad],
    /// The names of the viewer's colleagues (a lone-working plan names its buddy); empty when
    /// the page names none.
    pub colleagues: &'a HashMap<Uuid, String>,
    /// The time now, by the service's clock.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// A person's page: their record, what the viewer can do (decide a referral, assign the case,
/// record a contact), and their journey.
pub fn person(who: &ConsoleSession, view: &PersonView<'_>) -> Markup {
    let PersonView {
        record,
        journey,
        contact: form,
        appointment,
        errors,
        banner,
        triage,
        workers,
        colleagues,
        now,
    } = *view;
    let name = person_name(record);
    // The services the record's connections name, for the journey's entries.
    let services: HashMap<String, &str> = record
        .onward
        .iter()
        .filter_map(|c| Some((c.service_id.to_string(), c.service_name.as_deref()?)))
        .collect();
    layout(
        &name,
        Some(who),
        html! {
            @if !errors.is_empty() { (error_summary(errors)) }
            @if let Some(banner) = banner {
                (success(banner))
            }
            h1 class="nhsuk-heading-l" { (name) }
            (crate::safeguarding::risk_flag(record))
            (shared_number(record))
            dl class="nhsuk-summary-list" {
                (summary_row("Status", status_name(record.status)))
                (summary_row("Area", record.area.as_deref().unwrap_or("Not recorded")))
                @if let Some(p) = &record.personal {
                    @if let Some(dob) = p.date_of_birth { (summary_row("Date of birth", &day(dob))) }
                    @if let Some(nhs) = &p.nhs_number { (summary_row("NHS number", &domain::code(nhs))) }
                    @if let Some(phone) = &p.phone { (summary_row("Telephone", phone)) }
                }
                @if let Some(referral) = record.referrals.last() {
                    (summary_row("Referral", &referral_text(referral)))
                    @if let Some(note) = referral.note.as_deref().filter(|n| !n.trim().is_empty()) {
                        (summary_row("Referrer's note", note))
                    }
                    @if let Some(to) = &referral.redirected_to {
                        (summary_row("Redirected to", to))
                    }
                }
                (summary_row("Link worker", &worker_name(record.link_worker_id, workers, who)))
                (summary_row("Contacts", &record.contacts.to_string()))
                (summary_row("Assessments", &record.assessments.to_string()))
                (summary_row("Onward connections", &record.connections.to_string()))
            }
            @if triage {
                // At most one referral waits at a time: the domain refuses a new referral while
                // one is pending or the case is open (`CaseAlreadyActive`).
                @if let Some(referral) = record.referrals.iter().find(|r| r.status == ReferralStatus::Pending) {
                    (decision_form(who, record, referral, errors))
                    (crate::closure::redirect_link(record))
                }
                @if matches!(record.status, CaseStatus::Open | CaseStatus::Referred) && !workers.is_empty() {
                    (assignment_form(who, record, workers, errors))
                }
            }
            @if record.status == CaseStatus::Open {
                (appointments(who, record, journey, appointment, errors, now))
                (contact_form(who, record, form, errors))
            }
            (crate::plan::summary(record))
            (crate::demographics::section(record))
            (crate::connect::section(who, record))
            (crate::closure::close_link(record))
            (crate::lone_working::section(who, record, colleagues, now))
            (crate::tags::section(who, record, errors))
            (crate::safeguarding::section(who, record))
            h2 class="nhsuk-heading-m" id="journey" { "Journey" }
            ol class="nhsuk-list" {
                @for entry in journey.entries.iter().rev() {
                    li class="nhsuk-card" {
                        div class="nhsuk-card__content" {
                            h3 class="nhsuk-card__heading nhsuk-heading-s" { (event_name(&entry.event_type)) }
                            @let shown = entry.corrected_payload.as_ref().unwrap_or(&entry.payload);
                            p class="nhsuk-body-s" {
                                "Happened " (happened(entry.occurred_at, &entry.event_type)) ". Recorded " (moment(entry.recorded_at))
                                " by " (actor(entry, colleagues)) "."
                            }
                            @let facts = facts(shown, &services);
                            @if !facts.is_empty() {
                                ul class="nhsuk-list nhsuk-body-s" {
                                    @for (k, v) in &facts { li { (k) ": " (v) } }
                                }
                            }
                            @if !entry.corrected_by.is_empty() {
                                p class="nhsuk-body-s" { strong class="nhsuk-tag nhsuk-tag--grey" { "Corrected" } }
                            }
                        }
                    }
                }
            }
            @if journey.next_cursor.is_some() {
                p class="nhsuk-body-s" { "Older entries are not shown." }
            }
        },
    )
}

/// Other records holding the person's NHS number: perhaps the same person, referred again by
/// someone who was not told the service knew them, for staff to check. Those the viewer may
/// open are linked; the rest are counted.
fn shared_number(record: &ClientRecord) -> Markup {
    let elsewhere = record.shares_nhs_number_elsewhere;
    html! {
        @if !record.shares_nhs_number_with.is_empty() || elsewhere > 0 {
            div class="nhsuk-warning-callout" id="shared-nhs-number" {
                h3 class="nhsuk-warning-callout__label" {
                    span role="text" { span class="nhsuk-u-visually-hidden" { "Important: " } "Another record has this NHS number" }
                }
                @if !record.shares_nhs_number_with.is_empty() {
                    p {
                        "This NHS number is also on "
                        @for (i, other) in record.shares_nhs_number_with.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href={"/console/people/" (other)} { "person " (short(*other)) }
                        }
                        "."
                    }
                }
                @if elsewhere > 0 {
                    p {
                        @if elsewhere == 1 { "One more record" } @else { (elsewhere) " more records" }
                        " with this NHS number "
                        @if elsewhere == 1 { "is" } @else { "are" }
                        " not yours to open: a team lead can see "
                        @if elsewhere == 1 { "it" } @else { "them" }
                        "."
                    }
                }
                p { "It may be the same person, referred again. Check the records and correct the one that is wrong." }
            }
        }
    }
}

/// A referral in a sentence: when it came, from whom, for what, and how soon contact is asked
/// for when that is not routine ("Received 1 December 2026 from GP (Dr A Patel, Frome Medical
/// Practice), for loneliness or isolation, mental wellbeing; urgent").
/// Words for a code of a vocabulary a page shows (a referral source, a need, an outcome
/// measure), else the code with spaces.
pub(crate) fn code_words(code: &str) -> String {
    fn find<T: Copy + serde::Serialize>(
        all: &[T],
        label: fn(T) -> &'static str,
        code: &str,
    ) -> Option<&'static str> {
        all.iter()
            .find(|v| domain::code(*v) == code)
            .map(|v| label(*v))
    }
    if let Some(words) = find(
        domain::ReferralSource::ALL,
        domain::ReferralSource::label,
        code,
    )
    .or_else(|| find(domain::NeedDomain::ALL, domain::NeedDomain::label, code))
    {
        return words.to_owned();
    }
    // A measure of the outcome rules: its instrument, then what of it ("ONS4 anxiety").
    for instrument in domain::Instrument::ALL {
        let name = domain::code(instrument);
        if code == name {
            return instrument.label().to_owned();
        }
        if let Some(rest) = code.strip_prefix(&format!("{name}_")) {
            return format!("{} {}", instrument.label(), rest.replace('_', " "));
        }
    }
    code.replace('_', " ")
}

pub(crate) fn referral_text(referral: &ReferralSummary) -> String {
    let mut text = format!(
        "Received {} from {}",
        day(referral.received_on),
        referral.source.label()
    );
    let by: Vec<&str> = [&referral.referrer_name, &referral.referrer_organisation]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .filter(|v| !v.trim().is_empty())
        .collect();
    if !by.is_empty() {
        text.push_str(&format!(" ({})", by.join(", ")));
    }
    if !referral.reasons.is_empty() {
        let reasons: Vec<&str> = referral.reasons.iter().map(|r| r.label()).collect();
        text.push_str(&format!(", for {}", reasons.join(", ")));
    }
    if referral.urgency != domain::Urgency::Routine {
        text.push_str(&format!("; {}", referral.urgency.label()));
    }
    text
}

/// What a person's pages call them: their name, or who they are without one.
pub(crate) fn person_name(record: &ClientRecord) -> String {
    match &record.personal {
        Some(p) => format!("{} {}", p.given_name, p.family_name),
        None if record.erased => "Personal details erased".to_owned(),
        None => format!("Person {}", short(record.client_id)),
    }
}

/// Who holds the case, by name: the viewer themself (a link worker sees only their own
/// cases), or one of a team lead's team.
fn worker_name(id: Option<Uuid>, workers: &[WorkerLoad], who: &ConsoleSession) -> String {
    match id {
        None => "Not assigned".to_owned(),
        Some(id) if id == who.principal.staff_id.0 => who.name.clone(),
        Some(id) => workers
            .iter()
            .find(|w| w.link_worker_id == id)
            .map(|w| w.name.clone())
            .unwrap_or_else(|| "Assigned".to_owned()),
    }
}

fn decision_form(
    who: &ConsoleSession,
    record: &ClientRecord,
    referral: &ReferralSummary,
    errors: &[FieldError],
) -> Markup {
    let decision_error = error_for(errors, "decision");
    let reason_error = error_for(errors, "reason");
    html! {
        h2 class="nhsuk-heading-m" { "Decide the referral" }
        p class="nhsuk-body" id="referral-to-decide" { (referral_text(referral)) "." }
        @if referral.urgency != domain::Urgency::Routine {
            strong class="nhsuk-tag nhsuk-tag--red" { "Contact " (referral.urgency.label()) }
        }
        @if let Some(note) = referral.note.as_deref().filter(|n| !n.trim().is_empty()) {
            div class="nhsuk-inset-text" {
                span class="nhsuk-u-visually-hidden" { "The referrer's note: " }
                p { (note) }
            }
        }
        form method="post" action={"/console/people/" (record.client_id) "/decision"} novalidate {
            (csrf_field(who))
            input type="hidden" name="referral_id" value=(referral.referral_id);
            input type="hidden" name="version" value=(record.version);
            div class=(group_class(decision_error.or(reason_error))) {
                fieldset class="nhsuk-fieldset" {
                    legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "Decision" }
                    (error_message(decision_error))
                    (error_message(reason_error))
                    div class="nhsuk-radios" {
                        div class="nhsuk-radios__item" {
                            input class="nhsuk-radios__input" id="decision" name="decision" type="radio" value="accept";
                            label class="nhsuk-label nhsuk-radios__label" for="decision" { "Accept" }
                        }
                        div class="nhsuk-radios__item" {
                            input class="nhsuk-radios__input" id="decision-decline" name="decision" type="radio" value="decline";
                            label class="nhsuk-label nhsuk-radios__label" for="decision-decline" { "Decline" }
                        }
                    }
                }
            }
            div class="nhsuk-form-group" {
                fieldset class="nhsuk-fieldset" {
                    legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "If you decline it, why?" }
                    (radios("reason", DeclineReason::ALL, |c| c.label(), None, false))
                }
            }
            div class="nhsuk-form-group" {
                label class="nhsuk-label" for="decline-note" { "Note (optional)" }
                textarea class="nhsuk-textarea" id="decline-note" name="note" rows="2" {}
            }
            button class="nhsuk-button" id="decide" type="submit" { "Save decision" }
        }
    }
}

fn assignment_form(
    who: &ConsoleSession,
    record: &ClientRecord,
    workers: &[WorkerLoad],
    errors: &[FieldError],
) -> Markup {
    let transfer = record.link_worker_id.is_some();
    let worker_error = error_for(errors, "link_worker_id");
    html! {
        h2 class="nhsuk-heading-m" { @if transfer { "Transfer the case" } @else { "Assign a link worker" } }
        form method="post" action={"/console/people/" (record.client_id) "/assignment"} novalidate {
            (csrf_field(who))
            input type="hidden" name="version" value=(record.version);
            div class=(group_class(worker_error)) {
                label class="nhsuk-label" for="link_worker_id" { "Link worker" }
                div class="nhsuk-hint" id="link_worker_id-hint" { "With the people each supported this year, against their capacity" }
                (error_message(worker_error))
                select class="nhsuk-select" id="link_worker_id" name="link_worker_id"
                    aria-describedby={"link_worker_id-hint" @if worker_error.is_some() { " link_worker_id-error" }} {
                    option value="" { "Choose a link worker" }
                    @for w in workers.iter().filter(|w| Some(w.link_worker_id) != record.link_worker_id) {
                        option value=(w.link_worker_id) {
                            (w.name) " – " (w.open) " open, " (w.people_this_year) " of " (w.capacity) " this year"
                        }
                    }
                }
            }
            @if transfer {
                (fieldset("transfer_reason", "Why does the case move?", errors,
                    radios("transfer_reason", TransferReason::ALL, |c| c.label(), None, false)))
            }
            button class="nhsuk-button" id="assign" type="submit" { @if transfer { "Transfer" } @else { "Assign" } }
        }
    }
}

/// A team lead's triage queue: each referral waiting for a decision, and each case accepted
/// with no link worker yet, oldest referral first, with its flags, and whether the person's
/// NHS number is on another record too (`shared`: perhaps the same person, referred again).
pub fn triage(
    who: &ConsoleSession,
    page: &CaseloadPage,
    names: &Names,
    shared: &std::collections::HashSet<Uuid>,
) -> Markup {
    layout(
        "Referrals to triage",
        Some(who),
        html! {
            h1 class="nhsuk-heading-l" { "Referrals to triage" }
            @if page.items.is_empty() {
                p class="nhsuk-body" { "No referral is waiting for a decision or a link worker." }
            } @else {
                div class="nhsuk-table-container" role="region" aria-label="Referrals to triage" tabindex="0" {
                    table class="nhsuk-table" {
                        caption class="nhsuk-table__caption" {
                            (page.items.len()) " waiting, oldest referral first" (as_of(&page.as_of))
                        }
                        (head(&["Person", "Waiting for", "Area", "Referred", "From", "Days waiting", "Flags"]))
                        tbody class="nhsuk-table__body" {
                            @for item in &page.items {
                                tr class="nhsuk-table__row" {
                                    td class="nhsuk-table__cell" { (person_link(item.client_id, names)) }
                                    td class="nhsuk-table__cell waiting-for" {
                                        @if item.status == CaseStatus::Referred {
                                            "A decision"
                                        } @else {
                                            strong class="nhsuk-tag nhsuk-tag--yellow" { "A link worker (accepted)" }
                                        }
                                    }
                                    td class="nhsuk-table__cell" { (item.area) }
                                    td class="nhsuk-table__cell" {
                                        @match item.referred_on { Some(d) => (day(d)), None => "Not recorded" }
                                    }
                                    td class="nhsuk-table__cell" {
                                        (item.referral_source.as_deref().map_or("Not recorded".to_owned(), code_words))
                                    }
                                    td class="nhsuk-table__cell" {
                                        @match item.days_since_referral { Some(d) => (d), None => "" }
                                    }
                                    td class="nhsuk-table__cell" {
                                        @for flag in &item.flags { (flag_tag(*flag)) " " }
                                        @if shared.contains(&item.client_id) {
                                            strong class="nhsuk-tag nhsuk-tag--orange shared-nhs-number" { "NHS number on another record" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = page.next_cursor {
                    p class="nhsuk-body" { a href={"/console/triage?cursor=" (next)} { "Next page" } }
                }
            }
        },
    )
}

/// What the auditor's page asked for, as typed.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub client_id: String,
    pub as_of: String,
    pub known_at: String,
}

/// The auditor's page: a form to choose a person and a moment, and when chosen, the journey
/// as selected (who did what, when it happened and when it was recorded, corrections beside
/// what they correct) and who read the record.
pub fn audit(
    who: &ConsoleSession,
    query: &AuditQuery,
    errors: &[FieldError],
    found: Option<(&JourneyPage, &RecordReadPage)>,
    names: &std::collections::HashMap<Uuid, String>,
) -> Markup {
    let name = |id: Uuid| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("Staff {}", short(id)))
    };
    let client_error = error_for(errors, "client_id");
    let as_of_error = error_for(errors, "as_of");
    let known_error = error_for(errors, "known_at");
    layout(
        "Audit a record",
        Some(who),
        html! {
            @if !errors.is_empty() { (error_summary(errors)) }
            h1 class="nhsuk-heading-l" { "Audit a record" }
            form method="get" action="/console/audit" novalidate {
                div class=(group_class(client_error)) {
                    label class="nhsuk-label" for="client_id" { "The person's record id" }
                    (error_message(client_error))
                    input class="nhsuk-input nhsuk-input--width-30" id="client_id" name="client_id" type="text"
                        spellcheck="false" value=(query.client_id) aria-describedby=[client_error.map(|_| "client_id-error")];
                }
                div class=(group_class(as_of_error)) {
                    label class="nhsuk-label" for="as_of" { "As it happened up to (optional)" }
                    div class="nhsuk-hint" id="as_of-hint" { "Only what had happened by the end of this day (UK time)" }
                    (error_message(as_of_error))
                    input class="nhsuk-input nhsuk-input--width-10" id="as_of" name="as_of" type="date" value=(query.as_of)
                        aria-describedby={"as_of-hint" @if as_of_error.is_some() { " as_of-error" }};
                }
                div class=(group_class(known_error)) {
                    label class="nhsuk-label" for="known_at" { "As it was known on (optional)" }
                    div class="nhsuk-hint" id="known_at-hint" { "Only what had been recorded by the end of this day (UK time)" }
                    (error_message(known_error))
                    input class="nhsuk-input nhsuk-input--width-10" id="known_at" name="known_at" type="date" value=(query.known_at)
                        aria-describedby={"known_at-hint" @if known_error.is_some() { " known_at-error" }};
                }
                button class="nhsuk-button" id="show" type="submit" { "Show the journey" }
            }
            @if let Some((journey, reads)) = found {
                h2 class="nhsuk-heading-m" id="journey" { "Journey of person " (short(journey.client_id)) }
                p class="nhsuk-body" {
                    (journey.entries.len()) " entries; status " (status_name(journey.status).to_lowercase()) "."
                }
                div class="nhsuk-table-container" role="region" aria-label="Every entry, oldest first" tabindex="0" {
                    table class="nhsuk-table" {
                        caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Every entry, oldest first" }
                        (head(&["Entry", "What", "Happened", "Recorded", "By"]))
                        tbody class="nhsuk-table__body" {
                            @for entry in &journey.entries {
                                tr class="nhsuk-table__row" {
                                    td class="nhsuk-table__cell" { (entry.stream_version) }
                                    td class="nhsuk-table__cell" {
                                        (event_name(&entry.event_type))
                                        @let recorded = facts(&entry.payload, &HashMap::new());
                                        @if !recorded.is_empty() {
                                            ul class="nhsuk-list nhsuk-body-s" {
                                                @for (k, v) in &recorded { li { (k) ": " (v) } }
                                            }
                                        }
                                        @if let Some(corrected) = &entry.corrected_payload {
                                            p class="nhsuk-body-s" {
                                                strong class="nhsuk-tag nhsuk-tag--grey" { "Corrected" }
                                                " now reads: "
                                                @for (i, (k, v)) in facts(corrected, &HashMap::new()).iter().enumerate() {
                                                    @if i > 0 { "; " }
                                                    (k) ": " (v)
                                                }
                                            }
                                        }
                                    }
                                    td class="nhsuk-table__cell" { (moment(entry.occurred_at)) }
                                    td class="nhsuk-table__cell" { (moment(entry.recorded_at)) }
                                    td class="nhsuk-table__cell" {
                                        @if entry.actor_role == "operator" || entry.actor_role == "system" {
                                            "Casebook (" (entry.actor_role) ")"
                                        } @else {
                                            (name(entry.actor_id)) " (" (entry.actor_role.replace('_', " ")) ")"
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                h2 class="nhsuk-heading-m" id="reads" { "Who read this record" }
                div class="nhsuk-table-container" role="region" aria-label="Every read, oldest first" tabindex="0" {
                    table class="nhsuk-table" {
                        caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Every read, oldest first" }
                        (head(&["When", "Who", "What", "Why"]))
                        tbody class="nhsuk-table__body" {
                            @for read in &reads.items {
                                tr class="nhsuk-table__row" {
                                    td class="nhsuk-table__cell" { (moment(read.read_at)) }
                                    td class="nhsuk-table__cell" { (name(read.staff_id)) }
                                    td class="nhsuk-table__cell" { (read.view.code().replace('_', " ")) }
                                    td class="nhsuk-table__cell" {
                                        @match (&read.purpose, &read.purpose_text) {
                                            (Some(p), _) => (domain::code(p).replace('_', " ")),
                                            (None, Some(t)) => (t),
                                            (None, None) => "Not said",
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if reads.next_cursor.is_some() {
                    p class="nhsuk-body-s" { "Later reads are not shown." }
                }
            }
        },
    )
}

/// The administrator's page: the organisation's staff, the console sessions live now (each
/// can be ended), and the latest session events.
pub fn admin(
    who: &ConsoleSession,
    staff: &[app::access::StaffMember],
    live: &[app::sessions::LiveSession],
    events: &[app::sessions::SessionEvent],
    banner: Option<&str>,
) -> Markup {
    let name = |id: Option<Uuid>| {
        id.and_then(|id| staff.iter().find(|s| s.staff_id == id))
            .map_or_else(|| "Unknown".to_owned(), |s| s.name.clone())
    };
    layout(
        "Administration",
        Some(who),
        html! {
            @if let Some(banner) = banner {
                (success(banner))
            }
            h1 class="nhsuk-heading-l" { "Administration" }
            h2 class="nhsuk-heading-m" id="sessions" { "Signed in now" }
            @if live.is_empty() {
                p class="nhsuk-body" { "No one is signed in to the console." }
            } @else {
                div class="nhsuk-table-container" role="region" aria-label="Live console sessions" tabindex="0" {
                    table class="nhsuk-table" id="sessions-table" {
                        caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Live console sessions" }
                        thead class="nhsuk-table__head" {
                            tr class="nhsuk-table__row" {
                                th class="nhsuk-table__header" scope="col" { "Who" }
                                th class="nhsuk-table__header" scope="col" { "Signed in" }
                                th class="nhsuk-table__header" scope="col" { "Last seen" }
                                th class="nhsuk-table__header" scope="col" { "How" }
                                th class="nhsuk-table__header" scope="col" { span class="nhsuk-u-visually-hidden" { "Action" } }
                            }
                        }
                        tbody class="nhsuk-table__body" {
                            @for s in live {
                                tr class="nhsuk-table__row" {
                                    td class="nhsuk-table__cell" { (s.name) }
                                    td class="nhsuk-table__cell" { (moment(s.created_at)) }
                                    td class="nhsuk-table__cell" { (moment(s.last_seen_at)) }
                                    td class="nhsuk-table__cell" { @if s.signed_in_via == "link" { "Sign-in link" } @else { "Single sign-on" } }
                                    td class="nhsuk-table__cell" {
                                        @if s.session_id != who.session_id() {
                                            form method="post" action="/console/admin/sessions/end" {
                                                (csrf_field(who))
                                                input type="hidden" name="session_id" value=(s.session_id);
                                                button class="nhsuk-button nhsuk-button--warning nhsuk-u-margin-bottom-0" type="submit" {
                                                    "End session" span class="nhsuk-u-visually-hidden" { " of " (s.name) }
                                                }
                                            }
                                        } @else {
                                            "This session"
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 class="nhsuk-heading-m" id="events" { "Recent sign-ins and sign-outs" }
            div class="nhsuk-table-container" role="region" aria-label="Session events, newest first" tabindex="0" {
                table class="nhsuk-table" id="events-table" {
                    caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Session events, newest first" }
                    (head(&["When", "Who", "What", "From"]))
                    tbody class="nhsuk-table__body" {
                        @for e in events {
                            tr class="nhsuk-table__row" {
                                td class="nhsuk-table__cell" { (moment(e.at)) }
                                td class="nhsuk-table__cell" { (name(e.staff_id)) }
                                td class="nhsuk-table__cell" { (e.kind.replace('_', " ")) }
                                td class="nhsuk-table__cell" { (e.source.as_deref().unwrap_or("–")) }
                            }
                        }
                    }
                }
            }
            h2 class="nhsuk-heading-m" id="staff" { "Staff" }
            p class="nhsuk-body" { a href="/console/admin/teams" { "Teams, and adding a team or a member of staff" } }
            p class="nhsuk-body" { a href="/console/admin/gp-messages" { "Messages to GP practices not delivered" } }
            p class="nhsuk-body" { a href="/console/admin/reminders" { "Appointment reminders not delivered" } }
            div class="nhsuk-table-container" role="region" aria-label="The organisation's staff" tabindex="0" {
                table class="nhsuk-table" id="staff-table" {
                    caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "The organisation's staff" }
                    (head(&["Name", "Role", "Active"]))
                    tbody class="nhsuk-table__body" {
                        @for member in staff {
                            tr class="nhsuk-table__row" {
                                td class="nhsuk-table__cell" { a href={"/console/admin/staff/" (member.staff_id)} { (member.name) } }
                                td class="nhsuk-table__cell" { (member.role.as_str().replace('_', " ")) }
                                td class="nhsuk-table__cell" { @if member.active { "Yes" } @else { "No" } }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub(crate) fn figure(value: Option<i64>) -> String {
    value.map_or_else(|| "Suppressed".to_owned(), |v| v.to_string())
}

pub(crate) fn decimal(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

/// A horizontal bar chart of `bars` (label, value; a suppressed value draws no bar), drawn on
/// the server. It is a picture of the table printed beside it, which screen readers read.
pub(crate) fn bar_chart(title_id: &str, title: &str, bars: &[(String, Option<i64>)]) -> Markup {
    bar_chart_to(title_id, title, bars, 1)
}

/// [`bar_chart`] on a scale to at least `scale` (100 for percentages), so that small values
/// look small.
pub(crate) fn bar_chart_to(
    title_id: &str,
    title: &str,
    bars: &[(String, Option<i64>)],
    scale: i64,
) -> Markup {
    const WIDTH: i64 = 640;
    const LABEL: i64 = 220;
    const ROW: i64 = 28;
    let max = bars
        .iter()
        .filter_map(|(_, v)| *v)
        .max()
        .unwrap_or(0)
        .max(scale)
        .max(1);
    let height = ROW * bars.len() as i64 + 8;
    // In a box that scrolls sideways on a screen narrower than the chart, as a table's does.
    html! {
        div class="nhsuk-table-container" role="region" aria-label={"Chart: " (title)} tabindex="0" {
            svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby=(title_id) width=(WIDTH) height=(height)
                viewBox={"0 0 " (WIDTH) " " (height)} class="casebook-chart" {
                title id=(title_id) { (title) }
                @for (i, (label, value)) in bars.iter().enumerate() {
                    @let y = i as i64 * ROW + 4;
                    text x="0" y=(y + 18) font-size="14" fill="#212b32" { (label) }
                    @if let Some(v) = value {
                        @let w = (WIDTH - LABEL - 60) * v / max;
                        rect x=(LABEL) y=(y + 4) width=(w.max(1)) height=(ROW - 10) fill="#005eb8" {}
                        text x=(LABEL + w + 6) y=(y + 18) font-size="14" fill="#212b32" { (v) }
                    } @else {
                        text x=(LABEL) y=(y + 18) font-size="14" fill="#4c6272" { "suppressed" }
                    }
                }
            }
        }
    }
}

/// Radios for a coded value: one per code of `all`, the first with the id `name` (where an
/// error links to), each labelled by `label`, `chosen` checked.
pub(crate) fn radios<T: serde::Serialize + Copy>(
    name: &str,
    all: &[T],
    label: impl Fn(T) -> &'static str,
    chosen: Option<&str>,
    inline: bool,
) -> Markup {
    radios_at((name, name), (all, label), chosen, inline)
}

/// The same, their ids starting `id` (for a page with the same form more than once).
pub(crate) fn radios_at<T: serde::Serialize + Copy>(
    (id, name): (&str, &str),
    (all, label): (&[T], impl Fn(T) -> &'static str),
    chosen: Option<&str>,
    inline: bool,
) -> Markup {
    html! {
        div class={"nhsuk-radios" @if inline { " nhsuk-radios--inline" }} {
            @for (i, value) in all.iter().enumerate() {
                @let code = domain::code(value);
                @let id = if i == 0 { id.to_owned() } else { format!("{id}-{code}") };
                div class="nhsuk-radios__item" {
                    input class="nhsuk-radios__input" id=(id) name=(name) type="radio" value=(code)
                        checked[chosen == Some(code.as_str())];
                    label class="nhsuk-label nhsuk-radios__label" for=(id) { (capitalise(label(*value))) }
                }
            }
        }
    }
}

/// A table's head: one column header each (a name starting `#` is a numeric column).
pub(crate) fn head(columns: &[&str]) -> Markup {
    html! {
        thead class="nhsuk-table__head" {
            tr class="nhsuk-table__row" {
                @for column in columns {
                    @match column.strip_prefix('#') {
                        Some(name) => th class="nhsuk-table__header nhsuk-table__header--numeric" scope="col" { (name) },
                        None => th class="nhsuk-table__header" scope="col" { (column) },
                    }
                }
            }
        }
    }
}

/// The banner that says what a form just did.
pub(crate) fn success(text: &str) -> Markup {
    html! {
        div class="nhsuk-notification-banner nhsuk-notification-banner--success" role="alert" aria-labelledby="success-title" {
            div class="nhsuk-notification-banner__header" {
                h2 class="nhsuk-notification-banner__title" id="success-title" { "Success" }
            }
            div class="nhsuk-notification-banner__content" {
                p class="nhsuk-notification-banner__heading" { (text) }
            }
        }
    }
}

pub(crate) fn summary_row(key: &str, value: &str) -> Markup {
    html! {
        div class="nhsuk-summary-list__row" {
            dt class="nhsuk-summary-list__key" { (key) }
            dd class="nhsuk-summary-list__value" { (value) }
        }
    }
}

/// How current a list drawn from a read model is, for its caption: ", as recorded up to
/// 2 December 2026 at 14:05", and how many changes it has still to take in when it lags.
fn as_of(as_of: &app::AsOf) -> String {
    let mut text = match as_of.recorded_at {
        Some(at) => format!(", as recorded up to {}", moment(at)),
        None => String::new(),
    };
    if as_of.behind > 0 {
        text.push_str(&format!(" ({} recent changes still to show)", as_of.behind));
    }
    text
}

/// The summary of a form's problems, focused when the page loads (no script needed), so that
/// a screen reader reads it first and the keyboard starts from it.
pub(crate) fn error_summary(errors: &[FieldError]) -> Markup {
    html! {
        div class="nhsuk-error-summary" aria-labelledby="error-summary-title" role="alert" tabindex="-1" autofocus {
            h2 class="nhsuk-error-summary__title" id="error-summary-title" { "There is a problem" }
            div class="nhsuk-error-summary__body" {
                ul class="nhsuk-list nhsuk-error-summary__list" {
                    @for e in errors {
                        li { a href={"#" (e.field)} { (e.message) } }
                    }
                }
            }
        }
    }
}

pub(crate) fn error_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a FieldError> {
    errors.iter().find(|e| e.field == field)
}

pub(crate) fn error_message(error: Option<&FieldError>) -> Markup {
    html! {
        @if let Some(e) = error {
            span class="nhsuk-error-message" id={(e.field) "-error"} {
                span class="nhsuk-u-visually-hidden" { "Error: " } (e.message)
            }
        }
    }
}

pub(crate) fn group_class(error: Option<&FieldError>) -> &'static str {
    if error.is_some() {
        "nhsuk-form-group nhsuk-form-group--error"
    } else {
        "nhsuk-form-group"
    }
}

/// When an appointment is, and how it takes place.
type Booking = (DateTime<Utc>, String);

/// When each open appointment is, from its booking in the journey.
fn booked(journey: &JourneyPage, id: Uuid) -> Option<Booking> {
    journey.entries.iter().rev().find_map(|e| {
        let payload = e.corrected_payload.as_ref().unwrap_or(&e.payload);
        (e.event_type == "AppointmentBooked" && payload["appointment_id"] == id.to_string())
            .then(|| {
                let at = payload["scheduled_for"].as_str()?.parse().ok()?;
                Some((
                    at,
                    payload["mode"]
                        .as_str()
                        .unwrap_or_default()
                        .replace('_', " "),
                ))
            })
            .flatten()
    })
}

/// The booked appointments, soonest first, each with what may be recorded of it by `now`
/// (whether they came from its day on; a cancellation at any time), and the booking form.
fn appointments(
    who: &ConsoleSession,
    record: &ClientRecord,
    journey: &JourneyPage,
    form: &AppointmentForm,
    errors: &[FieldError],
    now: chrono::DateTime<chrono::Utc>,
) -> Markup {
    let outcome_error = error_for(errors, "appointments");
    let day_error = error_for(errors, "appointment_on");
    let time_error = error_for(errors, "appointment_at");
    let mut open: Vec<(Uuid, Option<Booking>)> = record
        .open_appointments
        .iter()
        .map(|id| (*id, booked(journey, *id)))
        .collect();
    open.sort_by_key(|(_, when)| when.as_ref().map(|(at, _)| *at));
    html! {
        h2 class="nhsuk-heading-m" id="appointments" { "Appointments" }
        (error_message(outcome_error))
        @if open.is_empty() {
            p class="nhsuk-body" { "No appointment is booked." }
        }
        @for (id, when) in &open {
            div class="nhsuk-card" {
                div class="nhsuk-card__content" {
                    h3 class="nhsuk-card__heading nhsuk-heading-s" {
                        @match when {
                            Some((at, mode)) => { (moment(*at)) ", " (mode) }
                            None => "Booked",
                        }
                    }
                    @let when_text = match when {
                        Some((at, _)) => moment(*at),
                        None => "booked".to_owned(),
                    };
                    // Whether they came is recorded from the day the record says, not before.
                    @let due = record.plan.booked.iter()
                        .find(|a| a.appointment_id == *id)
                        .is_none_or(|a| a.outcome_from <= domain::calendar::today(now));
                    form method="post" action={"/console/people/" (record.client_id) "/appointments/outcome"} {
                        (csrf_field(who))
                        input type="hidden" name="appointment_id" value=(id);
                        input type="hidden" name="version" value=(record.version);
                        @if due {
                            button class="nhsuk-button nhsuk-button--secondary" type="submit" name="outcome" value="attended" {
                                "They came" span class="nhsuk-u-visually-hidden" { " to the appointment of " (when_text) }
                            }
                            " "
                            button class="nhsuk-button nhsuk-button--secondary" type="submit" name="outcome" value="did_not_attend" {
                                "They did not come" span class="nhsuk-u-visually-hidden" { " to the appointment of " (when_text) }
                            }
                            " "
                        } @else {
                            p class="nhsuk-body-s" { "Record whether they came on the day." }
                        }
                        // Cancelling is a step away from "They came", so that a slip of the
                        // thumb on a phone does not cancel.
                        details class="nhsuk-details" {
                            summary class="nhsuk-details__summary" {
                                span class="nhsuk-details__summary-text" {
                                    "Cancel it" span class="nhsuk-u-visually-hidden" { " (the appointment of " (when_text) ")" }
                                }
                            }
                            div class="nhsuk-details__text" {
                                button class="nhsuk-button nhsuk-button--secondary" type="submit" name="outcome" value="cancelled_by_client" {
                                    "They cancelled" span class="nhsuk-u-visually-hidden" { " the appointment of " (when_text) }
                                }
                                " "
                                button class="nhsuk-button nhsuk-button--secondary" type="submit" name="outcome" value="cancelled_by_service" {
                                    "We cancelled" span class="nhsuk-u-visually-hidden" { " the appointment of " (when_text) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h3 class="nhsuk-heading-s" { "Book an appointment" }
        form method="post" action={"/console/people/" (record.client_id) "/appointments"} novalidate {
            (csrf_field(who))
            input type="hidden" name="appointment_id" value=(form.appointment_id);
            input type="hidden" name="version" value=(version_to_send(&form.version, record, errors));
            (fieldset("appointment_mode", "How will it take place?", errors,
                radios("appointment_mode", ContactMode::ALL, |c| c.label(), form.mode.as_deref(), true)))
            div class=(group_class(day_error)) {
                label class="nhsuk-label" for="appointment_on" { "Date" }
                (error_message(day_error))
                input class="nhsuk-input nhsuk-input--width-10" id="appointment_on" name="appointment_on" type="date"
                    value=(form.on) aria-describedby=[day_error.map(|_| "appointment_on-error")];
            }
            div class=(group_class(time_error)) {
                label class="nhsuk-label" for="appointment_at" { "Time (UK time)" }
                (error_message(time_error))
                input class="nhsuk-input nhsuk-input--width-5" id="appointment_at" name="appointment_at" type="time"
                    value=(form.at) aria-describedby=[time_error.map(|_| "appointment_at-error")];
            }
            button class="nhsuk-button" id="book" type="submit" { "Book appointment" }
        }
    }
}

/// The record's version a form of the person's page goes with: the one it was first shown at,
/// so that a colleague's write meanwhile brings it back rather than being passed over unseen;
/// the version shown now when the form is blank, or came back because the record had changed
/// or its version did not read (to be checked and sent again).
pub(crate) fn version_to_send(shown: &str, record: &ClientRecord, errors: &[FieldError]) -> String {
    let stale = errors.iter().any(|e| {
        e.message.eq_ignore_ascii_case(crate::STALE)
            || e.message.eq_ignore_ascii_case(crate::forms::BAD_VERSION)
    });
    if !matches!(crate::forms::shown_version(shown), Ok(Some(_))) || stale {
        record.version.to_string()
    } else {
        shown.to_owned()
    }
}

fn contact_form(
    who: &ConsoleSession,
    record: &ClientRecord,
    form: &ContactForm,
    errors: &[FieldError],
) -> Markup {
    let minutes_error = error_for(errors, "minutes");
    let note_error = error_for(errors, "note");
    html! {
        h2 class="nhsuk-heading-m" { "Record a contact" }
        form method="post" action={"/console/people/" (record.client_id) "/contacts"} novalidate {
            (csrf_field(who))
            input type="hidden" name="contact_id" value=(form.contact_id);
            input type="hidden" name="version" value=(version_to_send(&form.version, record, errors));
            (fieldset("mode", "How did the contact take place?", errors,
                radios("mode", ContactMode::ALL, |c| c.label(), form.mode.as_deref(), false)))
            div class=(group_class(minutes_error)) {
                label class="nhsuk-label" for="minutes" { "How many minutes did it take?" }
                (error_message(minutes_error))
                input class={"nhsuk-input nhsuk-input--width-4" @if minutes_error.is_some() { " nhsuk-input--error" }}
                    id="minutes" name="minutes" type="text" inputmode="numeric" spellcheck="false"
                    value=(form.minutes) aria-describedby=[minutes_error.map(|_| "minutes-error")];
            }
            (input(("contacted_on", "contacted_on"), ("Date of the contact", Some("For example, 27 November 2026")),
                (&form.contacted_on, "date", "nhsuk-input--width-10"), errors))
            (input(("contacted_time", "contacted_time"), ("Time of the contact (UK time)", None),
                (&form.contacted_time, "time", "nhsuk-input--width-5"), errors))
            div class=(group_class(note_error)) {
                label class="nhsuk-label" for="note" { "Note (optional)" }
                (error_message(note_error))
                textarea class="nhsuk-textarea" id="note" name="note" rows="3"
                    aria-describedby=[note_error.map(|_| "note-error")] { (form.note) }
            }
            // Notes typed up long after (past the back-entry window) are a team lead's to enter,
            // saying why: the application holds the window and says who may.
            @if who.enters_late() {
                @let late_error = error_for(errors, "late_entry_reason");
                div class=(group_class(late_error)) {
                    label class="nhsuk-label" for="late_entry_reason" { "Why is it entered late? (only for a contact long past)" }
                    div class="nhsuk-hint" id="late_entry_reason-hint" {
                        "A contact more than the service's back-entry window ago is a late entry: say why, and it is kept beside it."
                    }
                    (error_message(late_error))
                    textarea class="nhsuk-textarea" id="late_entry_reason" name="late_entry_reason" rows="2"
                        aria-describedby={"late_entry_reason-hint" @if late_error.is_some() { " late_entry_reason-error" }} { (form.late_entry_reason) }
                }
            }
            button class="nhsuk-button" id="record-contact" type="submit" { "Record contact" }
        }
    }
}

pub(crate) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::code_words;

    #[test]
    fn codes_read_as_words() {
        assert_eq!(code_words("gp"), "GP");
        assert_eq!(code_words("money_benefits_debt"), "money, benefits or debt");
        assert_eq!(code_words("swemwbs"), "SWEMWBS");
        assert_eq!(code_words("ons4_anxiety"), "ONS4 anxiety");
        assert_eq!(code_words("ons_loneliness"), "ONS loneliness question");
        assert_eq!(code_words("something_new"), "something new");
    }
}
