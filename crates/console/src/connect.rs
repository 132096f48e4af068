//! Onward connections: a search of the directory with a form to connect the person to each
//! service found, what came of each connection (on the person's page), and a service gap when
//! no service fits. The application decides; these pages read the forms and show its answer.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use app::AppError;
use app::directory::{DirectoryEntry, DirectoryService, SearchPage, SearchRequest};
use app::records::{ClientRecord, OnwardConnection, ReadContext, ReadPurpose};
use app::sessions::ConsoleSession;
use domain::directory::Availability;
use domain::{
    CaseCommand, CaseStatus, ClientId, ConnectionId, ConnectionKind, ConnectionOutcome,
    ConnectionOutcomeRecorded, GapId, GapReason, NeedDomain, OnwardConnectionMade,
    ServiceGapRecorded, ServiceId,
};
use maud::{Markup, html};
use uuid::Uuid;

use crate::fields::{choice, input, select, text_area, typed_text};
use crate::forms::{self, FieldError, NOTE_LIMIT, coded, form_id, text};
use crate::pages::{
    capitalise, csrf_field, error_for, error_message, error_summary, group_class, layout,
    person_name,
};
use crate::{
    Console, PostedAt, Sent, client_id, failure, form_session, no_such_person, page, request_id,
    see_other, send_at, session,
};

/// The person's record, read for direct care (audited, and refused to whoever may not read
/// it), or the page that says why not.
pub(crate) async fn record(
    req: &HttpRequest,
    console: &Console,
    session: &ConsoleSession,
    client: ClientId,
) -> Result<ClientRecord, HttpResponse> {
    let read = ReadContext::new(Some(ReadPurpose::DirectCare), request_id(req));
    console
        .cases
        .record(&session.principal, client, &read)
        .await
        .map_err(|e| failure(Some(session), &e))
}

/// 422 when there is something to put right.
pub(crate) fn status(errors: &[FieldError]) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

/// The signed-in session and the record of the person a page is about (read for direct care,
/// audited), or the page to show instead.
pub(crate) async fn viewer(
    req: &HttpRequest,
    console: &Console,
    path: &str,
) -> Result<(ConsoleSession, ClientRecord), HttpResponse> {
    let session = session(req, console).await?;
    let Some(client) = client_id(path) else {
        return Err(no_such_person(&session));
    };
    let record = record(req, console, &session, client).await?;
    Ok((session, record))
}

/// A form about one person, on a page of its own (or shown again there when refused).
pub(crate) trait PersonForm: Sized {
    /// What it did, for the banner of the person's page (`done=`).
    const DONE: &'static str;

    /// The heading of its page.
    const TITLE: &'static str;

    /// Where it is sent, under the person's page.
    const ACTION: &'static str;

    /// The form as sent.
    fn from_fields(fields: &HashMap<String, String>) -> Self;

    /// The form as first shown, from its page's `query` (a fresh id: a link never fixes the
    /// form's idempotency key, so no one is handed a form whose sending is silently a replay).
    fn blank(query: &HashMap<String, String>, on: &Shown<'_>) -> Self {
        let _ = (query, on);
        Self::from_fields(&HashMap::new())
    }

    /// The command it asks for, or what to put right.
    fn command(&self) -> Result<CaseCommand, Vec<FieldError>>;

    /// Its idempotency key, from the id it was drawn with: sent twice, it is done once.
    fn key(&self) -> String;

    /// The form's field for the application's refusal of the command's `field`.
    fn refused_at(&self, field: Option<&str>) -> String;

    /// Whether its fields carry the record's version it was shown at themselves (see
    /// [`posted`]).
    const DRAWS_VERSION: bool = false;

    /// What its page shows under the heading (the form, as typed, with `errors` beside its
    /// fields), or the page to show instead.
    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse>;

    /// The page again, with the form as typed and `errors`.
    async fn again(&self, on: &Shown<'_>, errors: &[FieldError]) -> HttpResponse {
        match self.draw(on, errors).await {
            Ok(body) => page(
                status(errors),
                form_page(on.session, on.record, Self::TITLE, errors, body),
            ),
            Err(response) => response,
        }
    }
}

/// The form element of a person's form `F`: sent to its action, with the session's token, the
/// record's version the form is drawn at (unless `F` carries its own), and then `fields`. The
/// form is sent only while the record is still at that version: a colleague's write meanwhile
/// brings it back, as typed, to be checked and sent again.
pub(crate) fn posted<F: PersonForm>(on: &Shown<'_>, fields: Markup) -> Markup {
    html! {
        form method="post" action={"/console/people/" (on.record.client_id) (F::ACTION)} novalidate {
            (csrf_field(on.session))
            @if !F::DRAWS_VERSION {
                input type="hidden" name="version" value=(on.record.version);
            }
            (fields)
        }
    }
}

/// Where a person's form is shown: the console, who is signed in, and the person's record as
/// they may read it.
#[derive(Clone, Copy)]
pub(crate) struct Shown<'a> {
    pub console: &'a Console,
    pub session: &'a ConsoleSession,
    pub record: &'a ClientRecord,
}

/// The page `draw` makes of the person's record as the signed-in caller may read it (for direct
/// care, audited), or the page to show instead.
async fn shown(
    req: &HttpRequest,
    console: &Console,
    path: &str,
    draw: impl AsyncFnOnce(&Shown<'_>) -> HttpResponse,
) -> HttpResponse {
    match viewer(req, console, path).await {
        Ok((session, record)) => {
            let on = Shown {
                console,
                session: &session,
                record: &record,
            };
            draw(&on).await
        }
        Err(response) => response,
    }
}

/// The page of a person's form `F`, as first shown.
pub(crate) async fn blank<F: PersonForm>(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
    console: web::Data<Console>,
) -> HttpResponse {
    let page = async |on: &Shown<'_>| F::blank(&query, on).again(on, &[]).await;
    shown(&req, &console, &path, page).await
}

/// Carries out a person's form `F`: back to their page with a banner, or the form again with
/// what to put right (422).
pub(crate) async fn post<F: PersonForm>((req, path, body, console): PostedAt) -> HttpResponse {
    let (fields, session, client) = person_form!(req, console, path, body);
    let form = F::from_fields(&fields);
    let version = crate::forms::shown_version(&crate::forms::text(&fields, "version"));
    let errors = match (form.command(), version) {
        (Ok(_), Err(crate::forms::BadVersion)) => vec![FieldError::new(
            form.refused_at(None),
            capitalise(crate::forms::BAD_VERSION),
        )],
        (Ok(command), Ok(expected_version)) => {
            let sent = send_at(
                (&req, &console, &session),
                client,
                &command,
                (
                    Some(form.key()),
                    Some(crate::forms::fingerprint(&req, &fields)),
                ),
                (expected_version, None),
            )
            .await;
            match sent {
                Sent::Done => {
                    return see_other(&format!("/console/people/{}?done={}", client.0, F::DONE));
                }
                Sent::Refused { field, message } => {
                    vec![FieldError::new(
                        form.refused_at(field),
                        capitalise(&message),
                    )]
                }
                Sent::Failed(response) => return response,
            }
        }
        (Err(errors), _) => errors,
    };
    match record(&req, &console, &session, client).await {
        Ok(record) => {
            let on = Shown {
                console: &console,
                session: &session,
                record: &record,
            };
            form.again(&on, &errors).await
        }
        Err(response) => response,
    }
}

/// A page of its own for one of a person's forms: a link back to their page, what to put
/// right, and the heading with their name above it.
pub(crate) fn form_page(
    who: &ConsoleSession,
    record: &ClientRecord,
    title: &str,
    errors: &[FieldError],
    body: Markup,
) -> Markup {
    let name = person_name(record);
    layout(
        &format!("{title}: {name}"),
        Some(who),
        html! {
            a class="nhsuk-back-link" href={"/console/people/" (record.client_id)} { "Back to " (name) }
            @if !errors.is_empty() { (error_summary(errors)) }
            span class="nhsuk-caption-l" { (name) }
            h1 class="nhsuk-heading-l" { (title) }
            (body)
        },
    )
}

/// The field of a refusal on a form whose fields are the command's own (`renamed` gives the
/// exceptions), `otherwise` when the refusal names none the form has.
pub(crate) fn refused_at(
    field: Option<&str>,
    renamed: &[(&str, &str)],
    known: &[&str],
    otherwise: &str,
) -> String {
    let Some(field) = field else {
        return otherwise.to_owned();
    };
    match renamed.iter().find(|(from, _)| *from == field) {
        Some((_, to)) => (*to).to_owned(),
        None if known.contains(&field) => field.to_owned(),
        None => otherwise.to_owned(),
    }
}

/// Every need, as a choice.
fn needs() -> Vec<(String, String)> {
    NeedDomain::ALL
        .iter()
        .map(|need| (domain::code(need), capitalise(need.label())))
        .collect()
}

/// Services on one page of a directory search.
const PAGE: i64 = 20;

/// What the directory search asked for, as typed.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub(crate) struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    need: String,
    #[serde(default)]
    area: Option<String>,
    /// Where the page of results starts (the search's `next_cursor`); empty: the first.
    #[serde(default)]
    cursor: String,
}

impl SearchForm {
    /// The search a connect form was sent from (its hidden fields).
    fn sent_with(fields: &HashMap<String, String>) -> SearchForm {
        SearchForm {
            q: text(fields, "search_q"),
            need: text(fields, "search_need"),
            area: Some(text(fields, "search_area")),
            cursor: text(fields, "search_cursor"),
        }
    }

    /// The first result of the page asked for (0: the first page).
    fn cursor(&self) -> Option<i64> {
        self.cursor.trim().parse().ok()
    }

    /// The same search, from `cursor` (the first page for none).
    fn href(&self, client: Uuid, cursor: Option<i64>) -> String {
        let mut href = format!(
            "/console/people/{client}/connect?q={}&need={}&area={}",
            encode(&self.q),
            encode(&self.need),
            encode(self.area())
        );
        if let Some(from) = cursor {
            href.push_str(&format!("&cursor={from}"));
        }
        href
    }

    fn need(&self) -> Option<NeedDomain> {
        coded(NeedDomain::ALL, &self.need)
    }

    fn area(&self) -> &str {
        self.area.as_deref().unwrap_or_default().trim()
    }

    /// Whether anything was searched for (a page opened from the person's page has not).
    fn asked(&self) -> bool {
        self.area.is_some()
    }

    fn hidden(&self) -> Markup {
        html! {
            input type="hidden" name="search_q" value=(self.q);
            input type="hidden" name="search_need" value=(self.need);
            input type="hidden" name="search_area" value=(self.area());
            input type="hidden" name="search_cursor" value=(self.cursor);
        }
    }
}

/// A connect form as sent: for which service, with what, from which search.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnectForm {
    connection_id: Uuid,
    service_id: Uuid,
    need: String,
    kind: String,
    search: SearchForm,
}

impl ConnectForm {
    fn need_id(&self) -> String {
        format!("need-{}", self.service_id)
    }

    fn kind_id(&self) -> String {
        format!("kind-{}", self.service_id)
    }
}

impl PersonForm for ConnectForm {
    const DONE: &'static str = "connected";
    const TITLE: &'static str = "Connect to a service";
    const ACTION: &'static str = "/connections";

    fn from_fields(fields: &HashMap<String, String>) -> ConnectForm {
        ConnectForm {
            connection_id: form_id(fields, "connection_id"),
            service_id: Uuid::try_parse(&text(fields, "service_id")).unwrap_or_default(),
            need: text(fields, "need"),
            kind: text(fields, "kind"),
            search: SearchForm::sent_with(fields),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let need = coded(NeedDomain::ALL, &self.need);
        let kind = coded(ConnectionKind::ALL, &self.kind);
        let mut errors = Vec::new();
        if need.is_none() {
            errors.push(FieldError::new(
                self.need_id(),
                "Select the need this connection meets",
            ));
        }
        if kind.is_none() {
            errors.push(FieldError::new(
                self.kind_id(),
                "Select how the person is connected",
            ));
        }
        match (need, kind) {
            (Some(need), Some(kind)) => Ok(CaseCommand::MakeConnection(OnwardConnectionMade {
                connection_id: ConnectionId(self.connection_id),
                service_id: ServiceId(self.service_id),
                need,
                kind,
            })),
            _ => Err(errors),
        }
    }

    fn key(&self) -> String {
        format!("console-connection-{}", self.connection_id)
    }

    fn refused_at(&self, field: Option<&str>) -> String {
        refused_at(field, &[("need", &self.need_id())], &[], &self.kind_id())
    }

    /// Its page is the search it was sent from.
    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        Err(search_page(on, &self.search, Some(self), errors).await)
    }
}

/// Shows the directory search for a person: the form, and when searched, the services found.
pub(crate) async fn search(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<SearchForm>,
    console: web::Data<Console>,
) -> HttpResponse {
    let page = async |on: &Shown<'_>| search_page(on, &query, None, &[]).await;
    shown(&req, &console, &path, page).await
}

/// The search page, with the connect form that was sent (`sent`) as typed, and `errors`.
async fn search_page(
    on: &Shown<'_>,
    search: &SearchForm,
    sent: Option<&ConnectForm>,
    errors: &[FieldError],
) -> HttpResponse {
    let Shown {
        console,
        session,
        record,
        ..
    } = *on;
    let mut errors = errors.to_vec();
    let found = if search.asked() {
        let request = SearchRequest {
            q: Some(search.q.clone()).filter(|q| !q.trim().is_empty()),
            need: search.need(),
            area: Some(search.area().to_owned()).filter(|a| !a.is_empty()),
            limit: Some(PAGE),
            cursor: search.cursor(),
            ..SearchRequest::default()
        };
        match DirectoryService::beside(&console.cases)
            .search_page(&session.principal, request)
            .await
        {
            Ok(found) => Some(found),
            Err(AppError::BadInput { field, message }) => {
                errors.push(FieldError::new(
                    field,
                    if field == "cursor" {
                        "That page of results is not there: search again".to_owned()
                    } else {
                        format!("The search is too long: {message}")
                    },
                ));
                None
            }
            Err(e) => return failure(Some(session), &e),
        }
    } else {
        None
    };
    page(
        status(&errors),
        connect_markup(session, record, search, found.as_ref(), sent, &errors),
    )
}

fn connect_markup(
    who: &ConsoleSession,
    record: &ClientRecord,
    search: &SearchForm,
    found: Option<&SearchPage>,
    sent: Option<&ConnectForm>,
    errors: &[FieldError],
) -> Markup {
    let area = match &search.area {
        Some(a) => a.clone(),
        None => record.area.clone().unwrap_or_default(),
    };
    let gap = format!(
        "/console/people/{}/gap?need={}&area={}",
        record.client_id,
        encode(&search.need),
        encode(search.area())
    );
    form_page(
        who,
        record,
        "Connect to a service",
        errors,
        html! {
            form method="get" action={"/console/people/" (record.client_id) "/connect"} novalidate {
                (input(("q", "q"), ("What are you looking for? (optional)", Some("Words, like lunch club or debt advice")),
                    (&search.q, "text", ""), errors))
                (select(("need", "need"), ("Need (optional)", None), (&needs(), &search.need, "Any need"), &[]))
                (input(("area", "area"), ("Area (optional)", Some("A town, service area or postcode district")),
                    (&area, "text", "nhsuk-input--width-20"), errors))
                button class="nhsuk-button" id="search" type="submit" { "Search the directory" }
            }
            @if let Some(found) = found {
                @let from = search.cursor().unwrap_or(0);
                @let paged = from > 0 || found.next_cursor.is_some();
                h2 class="nhsuk-heading-m" id="results" {
                    @match (found.items.len(), paged) {
                        (0, _) => "No service found",
                        (1, false) => "1 service found",
                        (n, false) => { (n) " services found" }
                        (n, true) => { "Services " (from + 1) " to " (from + n as i64) }
                    }
                }
                @for entry in &found.items {
                    (service_card(who, record, search, entry, sent, errors))
                }
                @if paged {
                    nav class="nhsuk-pagination" role="navigation" aria-label="Pages of services found" {
                        ul class="nhsuk-list nhsuk-pagination__list" {
                            @if from > 0 {
                                li class="nhsuk-pagination-item--previous" {
                                    a class="nhsuk-pagination__link nhsuk-pagination__link--prev" id="first-results"
                                        href=(search.href(record.client_id, None)) {
                                        span class="nhsuk-pagination__title" { "First services found" }
                                    }
                                }
                            }
                            @if let Some(next) = found.next_cursor {
                                li class="nhsuk-pagination-item--next" {
                                    a class="nhsuk-pagination__link nhsuk-pagination__link--next" id="more-results"
                                        href=(search.href(record.client_id, Some(next))) {
                                        span class="nhsuk-pagination__title" { "More services" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 class="nhsuk-heading-m" id="no-service" { "No service fits?" }
            p class="nhsuk-body" {
                a id="gap-for-need" href=(gap) { "Record a service gap for this need" }
            }
        },
    )
}

/// `text` for a URL's query.
fn encode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

fn availability(entry: &DirectoryEntry) -> String {
    match (
        entry.takes_referrals,
        entry.availability,
        entry.waiting_weeks,
    ) {
        (true, _, _) => "Taking referrals".to_owned(),
        (false, Availability::WaitingList, Some(weeks)) => {
            format!("Waiting list, about {weeks} weeks")
        }
        (false, Availability::WaitingList, None) => "Waiting list".to_owned(),
        _ => "Not taking referrals now".to_owned(),
    }
}

fn service_card(
    who: &ConsoleSession,
    record: &ClientRecord,
    search: &SearchForm,
    entry: &DirectoryEntry,
    sent: Option<&ConnectForm>,
    errors: &[FieldError],
) -> Markup {
    let blank = ConnectForm {
        connection_id: Uuid::new_v4(),
        service_id: entry.service_id,
        need: search.need.clone(),
        ..ConnectForm::default()
    };
    let form = sent
        .filter(|s| s.service_id == entry.service_id)
        .unwrap_or(&blank);
    html! {
        div class="nhsuk-card" {
            div class="nhsuk-card__content" {
                h3 class="nhsuk-card__heading nhsuk-heading-m" { (entry.name) }
                p class="nhsuk-body-s" { "By " (entry.organisation) ". " (availability(entry)) "." }
                @if let Some(description) = &entry.description {
                    p class="nhsuk-body" { (description) }
                }
                @if !entry.areas.is_empty() {
                    p class="nhsuk-body-s" { "Where: " (capitalise(&entry.areas.join(", "))) }
                }
                form method="post" action={"/console/people/" (record.client_id) "/connections"} novalidate {
                    (csrf_field(who))
                    input type="hidden" name="version" value=(record.version);
                    input type="hidden" name="connection_id" value=(form.connection_id);
                    input type="hidden" name="service_id" value=(entry.service_id);
                    (search.hidden())
                    (select((&form.need_id(), "need"), ("The need it meets", None),
                        (&needs(), &form.need, "Choose a need"), errors))
                    (choice((&form.kind_id(), "kind"), "How is the person connected?",
                        (ConnectionKind::ALL, ConnectionKind::label), &form.kind, errors))
                    button class="nhsuk-button nhsuk-u-margin-bottom-0" id={"connect-" (entry.service_id)} type="submit" {
                        "Connect" span class="nhsuk-u-visually-hidden" { " to " (entry.name) }
                    }
                }
            }
        }
    }
}

/// The person's onward connections, each still open with a form for what came of it; links to
/// connect them and to record a service gap.
pub(crate) fn section(who: &ConsoleSession, record: &ClientRecord) -> Markup {
    let open = record.status == CaseStatus::Open;
    html! {
        h2 class="nhsuk-heading-m" id="connections" { "Onward connections" }
        @if record.onward.is_empty() {
            p class="nhsuk-body" { "No onward connection yet." }
        }
        @for connection in &record.onward {
            div class="nhsuk-card" {
                div class="nhsuk-card__content" {
                    h3 class="nhsuk-card__heading nhsuk-heading-s" { (service_name(connection)) }
                    p class="nhsuk-body-s" { (connection_facts(connection)) }
                    @if let Some(answer) = connection.provider_answer {
                        p class="nhsuk-body-s" id={"provider-answer-" (connection.connection_id)} {
                            "The service's answer: " strong { (answer.label()) }
                        }
                    }
                    @if open && connection.open() {
                        (outcome_form(who, record, connection, &OutcomeForm::blank(connection), &[]))
                    }
                }
            }
        }
        @if open {
            p class="nhsuk-body" {
                a id="connect" href={"/console/people/" (record.client_id) "/connect"} { "Find a service and connect the person" }
            }
            p class="nhsuk-body" {
                a id="gap" href={"/console/people/" (record.client_id) "/gap"} { "Record a service gap" }
            }
        }
    }
}

fn service_name(connection: &OnwardConnection) -> String {
    connection
        .service_name
        .clone()
        .unwrap_or_else(|| "A service no longer in the directory".to_owned())
}

fn connection_facts(connection: &OnwardConnection) -> String {
    let outcome = match (connection.outcome, connection.waiting_weeks) {
        (None, _) => "No outcome yet".to_owned(),
        (Some(ConnectionOutcome::WaitingList), Some(weeks)) => {
            format!("On a waiting list of {weeks} weeks")
        }
        (Some(outcome), _) => capitalise(outcome.label()),
    };
    format!(
        "For {}; {}. {outcome}.",
        connection.need.label(),
        connection.kind.label()
    )
}

/// What came of a connection, as typed.
#[derive(Clone, Debug, Default)]
pub(crate) struct OutcomeForm {
    connection_id: Uuid,
    /// Chosen when the form is shown: sending it twice records one outcome.
    outcome_key: Uuid,
    outcome: String,
    waiting_weeks: String,
}

impl OutcomeForm {
    fn blank(connection: &OnwardConnection) -> OutcomeForm {
        OutcomeForm {
            connection_id: connection.connection_id,
            outcome_key: Uuid::new_v4(),
            ..OutcomeForm::default()
        }
    }

    fn outcome_id(&self) -> String {
        format!("outcome-{}", self.connection_id)
    }

    fn weeks_id(&self) -> String {
        format!("waiting_weeks-{}", self.connection_id)
    }
}

impl PersonForm for OutcomeForm {
    const DONE: &'static str = "outcome";
    const TITLE: &'static str = "What came of the connection";
    const ACTION: &'static str = "/connections/outcome";

    fn from_fields(fields: &HashMap<String, String>) -> OutcomeForm {
        OutcomeForm {
            connection_id: Uuid::try_parse(&text(fields, "connection_id")).unwrap_or_default(),
            outcome_key: form_id(fields, "outcome_key"),
            outcome: text(fields, "outcome"),
            waiting_weeks: text(fields, "waiting_weeks"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let outcome = coded(ConnectionOutcome::ALL, &self.outcome);
        if outcome.is_none() {
            errors.push(FieldError::new(
                self.outcome_id(),
                "Select what came of the connection",
            ));
        }
        let waiting_weeks = match self.waiting_weeks.as_str() {
            "" => None,
            weeks => match weeks.parse::<u32>() {
                Ok(n) if n <= 520 => Some(n),
                _ => {
                    errors.push(FieldError::new(
                        self.weeks_id(),
                        "Enter the weeks as a whole number, like 6",
                    ));
                    None
                }
            },
        };
        match outcome {
            Some(outcome) if errors.is_empty() => Ok(CaseCommand::RecordConnectionOutcome(
                ConnectionOutcomeRecorded {
                    connection_id: ConnectionId(self.connection_id),
                    outcome,
                    waiting_weeks,
                },
            )),
            _ => Err(errors),
        }
    }

    fn key(&self) -> String {
        format!("console-outcome-{}", self.outcome_key)
    }

    fn refused_at(&self, field: Option<&str>) -> String {
        let weeks = self.weeks_id();
        refused_at(field, &[("waiting_weeks", &weeks)], &[], &self.outcome_id())
    }

    /// A page of its own for the one connection.
    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        let Some(connection) = on
            .record
            .onward
            .iter()
            .find(|c| c.connection_id == self.connection_id)
        else {
            return Err(failure(
                Some(on.session),
                &AppError::NotFound("no such onward connection for this person".into()),
            ));
        };
        Ok(html! {
            p class="nhsuk-body" { (service_name(connection)) ": " (connection_facts(connection)) }
            (outcome_form(on.session, on.record, connection, self, errors))
        })
    }
}

fn outcome_form(
    who: &ConsoleSession,
    record: &ClientRecord,
    connection: &OnwardConnection,
    form: &OutcomeForm,
    errors: &[FieldError],
) -> Markup {
    let weeks_id = form.weeks_id();
    let weeks_error = error_for(errors, &weeks_id);
    let service = service_name(connection);
    html! {
        form method="post" action={"/console/people/" (record.client_id) (OutcomeForm::ACTION)} novalidate {
            (csrf_field(who))
            input type="hidden" name="version" value=(record.version);
            input type="hidden" name="connection_id" value=(connection.connection_id);
            input type="hidden" name="outcome_key" value=(form.outcome_key);
            (choice((&form.outcome_id(), "outcome"), &format!("What came of the connection to {service}?"),
                (ConnectionOutcome::ALL, ConnectionOutcome::label), &form.outcome, errors))
            div class=(group_class(weeks_error)) {
                label class="nhsuk-label" for=(weeks_id) {
                    "For a waiting list, how many weeks?"
                    span class="nhsuk-u-visually-hidden" { " (" (service) ")" }
                }
                (error_message(weeks_error))
                input class={"nhsuk-input nhsuk-input--width-3" @if weeks_error.is_some() { " nhsuk-input--error" }}
                    id=(weeks_id) name="waiting_weeks" type="text" inputmode="numeric" value=(form.waiting_weeks)
                    aria-describedby=[weeks_error.map(|_| format!("{weeks_id}-error"))];
            }
            button class="nhsuk-button nhsuk-button--secondary nhsuk-u-margin-bottom-0" id={"record-outcome-" (connection.connection_id)} type="submit" {
                "Record outcome" span class="nhsuk-u-visually-hidden" { " for " (service) }
            }
        }
    }
}

/// A service gap, as typed (as asked for in a link from a search, or as sent).
#[derive(Clone, Debug, Default)]
pub(crate) struct GapForm {
    /// Drawn afresh whenever the page is shown (`blank`).
    gap_id: Uuid,
    need: String,
    area: String,
    reason: String,
    note: String,
}

impl PersonForm for GapForm {
    const DONE: &'static str = "gap";
    const TITLE: &'static str = "Record a service gap";
    const ACTION: &'static str = "/gaps";

    /// Its need and area from the search that found nothing.
    fn blank(query: &HashMap<String, String>, _on: &Shown<'_>) -> GapForm {
        GapForm {
            gap_id: Uuid::new_v4(),
            ..GapForm::from_fields(query)
        }
    }

    fn from_fields(fields: &HashMap<String, String>) -> GapForm {
        GapForm {
            gap_id: form_id(fields, "gap_id"),
            need: text(fields, "need"),
            area: text(fields, "area"),
            reason: text(fields, "reason"),
            note: fields.get("note").cloned().unwrap_or_default(),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let need = coded(NeedDomain::ALL, &self.need);
        if need.is_none() {
            errors.push(FieldError::new("need", "Select the need no service meets"));
        }
        let reason = coded(GapReason::ALL, &self.reason);
        if reason.is_none() {
            errors.push(FieldError::new("reason", "Select why no service meets it"));
        }
        let note = typed_text(&self.note, "note", NOTE_LIMIT, &mut errors);
        match (need, reason) {
            (Some(need), Some(reason)) if errors.is_empty() => {
                Ok(CaseCommand::RecordServiceGap(ServiceGapRecorded {
                    gap_id: GapId(self.gap_id),
                    need,
                    area: self.area.clone(),
                    reason,
                    note,
                }))
            }
            _ => Err(errors),
        }
    }

    fn key(&self) -> String {
        format!("console-gap-{}", self.gap_id)
    }

    fn refused_at(&self, field: Option<&str>) -> String {
        refused_at(field, &[], &["need", "area", "reason", "note"], "need")
    }

    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        // A gap is where the person looked: their own area unless the search said otherwise.
        let area = match self.area.trim() {
            "" => on.record.area.clone().unwrap_or_default(),
            area => area.to_owned(),
        };
        let fields = html! {
            input type="hidden" name="gap_id" value=(self.gap_id);
            (select(("need", "need"), ("The need", None), (&needs(), &self.need, "Choose a need"), errors))
            (input(("area", "area"), ("Area", Some("Where the person looked: a town, service area or postcode district")),
                (&area, "text", "nhsuk-input--width-20"), errors))
            (choice(("reason", "reason"), "Why does no service meet it?",
                (GapReason::ALL, GapReason::label), &self.reason, errors))
            (text_area(("note", "note"), ("What was sought (optional)", None), (&self.note, 3), errors))
            button class="nhsuk-button" id="record-gap" type="submit" { "Record the gap" }
        };
        Ok(html! {
            p class="nhsuk-body" { "A need no service in the directory could meet: gaps are counted by need, area and reason." }
            (posted::<GapForm>(on, fields))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::filled as fields;

    #[test]
    fn an_outcome_reads_its_weeks_and_names_what_does_not_read() {
        let id = Uuid::new_v4();
        let form = OutcomeForm::from_fields(&fields(&[
            ("connection_id", &id.to_string()),
            ("outcome", "waiting_list"),
            ("waiting_weeks", "6"),
        ]));
        let CaseCommand::RecordConnectionOutcome(outcome) = form.command().expect("reads") else {
            panic!("not an outcome");
        };
        assert_eq!(outcome.outcome, ConnectionOutcome::WaitingList);
        assert_eq!(outcome.waiting_weeks, Some(6));
        let refused = OutcomeForm::from_fields(&fields(&[
            ("connection_id", &id.to_string()),
            ("waiting_weeks", "six"),
        ]))
        .command()
        .expect_err("refused");
        let named: Vec<String> = refused.into_iter().map(|e| e.field).collect();
        assert_eq!(
            named,
            [format!("outcome-{id}"), format!("waiting_weeks-{id}")]
        );
    }
}
