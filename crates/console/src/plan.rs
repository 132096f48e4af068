//! A person's plan, on a page of its own: what matters to them, the needs identified, the goals
//! agreed and how far each has come, and the consents in force. Each form is read into the
//! domain's command (`RecordWhatMatters`, `IdentifyNeed`, `SetGoal`, `ReviewGoal`,
//! `RecordConsent`, `WithdrawConsent`); the application decides, and a refusal is shown at its
//! field with what was typed kept.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use app::records::{ClientRecord, Plan};
use app::sessions::ConsoleSession;
use domain::{
    CaseCommand, ClientId, ConsentRecorded, ConsentScope, ConsentWithdrawn, ContactChannel, GoalId,
    GoalProgress, GoalReviewed, GoalSet, NeedDomain, NeedIdentified, WhatMattersRecorded,
};
use maud::{Markup, html};
use uuid::Uuid;

use crate::connect::{form_page, record, status};
use crate::fields::{fieldset, hinted_fieldset, text_area, typed_text};
use crate::forms::{self, FieldError, NOTE_LIMIT, coded, form_id, text};
use crate::pages::{
    capitalise, csrf_field, day, error_for, error_message, group_class, head, radios, summary_row,
};
use crate::{Console, PostedAt, form_session, page, see_other, session};

/// The plan's forms as the person filled them in (blank but for the one sent).
#[derive(Clone, Debug, Default)]
pub(crate) struct PlanForms {
    what_matters: WhatMattersForm,
    need: NeedForm,
    goal: GoalForm,
    review: ReviewForm,
    consent: ConsentForm,
}

impl PlanForms {
    fn blank() -> PlanForms {
        PlanForms {
            what_matters: WhatMattersForm::from_fields(&HashMap::new()),
            need: NeedForm::from_fields(&HashMap::new()),
            goal: GoalForm::from_fields(&HashMap::new()),
            review: ReviewForm::from_fields(&HashMap::new()),
            consent: ConsentForm::from_fields(&HashMap::new()),
        }
    }
}

/// A note as sent (kept as typed), and as the command takes it: trimmed, none when blank; or
/// the error when it is too long.
fn note(fields: &HashMap<String, String>, name: &str) -> String {
    fields.get(name).cloned().unwrap_or_default()
}

/// The form's outcome: its command, or what to put right.
fn outcome(
    command: Option<CaseCommand>,
    errors: Vec<FieldError>,
) -> Result<CaseCommand, Vec<FieldError>> {
    match command {
        Some(command) if errors.is_empty() => Ok(command),
        _ => Err(errors),
    }
}

/// What matters to the person, in their words.
#[derive(Clone, Debug, Default)]
pub(crate) struct WhatMattersForm {
    form_id: Uuid,
    text: String,
}

impl WhatMattersForm {
    fn from_fields(fields: &HashMap<String, String>) -> WhatMattersForm {
        WhatMattersForm {
            form_id: form_id(fields, "form_id"),
            text: note(fields, "what_matters"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let text = self.text.trim();
        if text.is_empty() {
            errors.push(FieldError::new(
                "what_matters",
                "Write what matters to the person",
            ));
        } else if text.chars().count() > NOTE_LIMIT {
            errors.push(FieldError::new(
                "what_matters",
                format!("What matters must be {NOTE_LIMIT} characters or fewer"),
            ));
        }
        let command = CaseCommand::RecordWhatMatters(WhatMattersRecorded {
            text: text.to_owned(),
        });
        outcome(Some(command), errors)
    }
}

/// A need identified, from the domain's list.
#[derive(Clone, Debug, Default)]
pub(crate) struct NeedForm {
    form_id: Uuid,
    need: String,
    note: String,
}

impl NeedForm {
    fn from_fields(fields: &HashMap<String, String>) -> NeedForm {
        NeedForm {
            form_id: form_id(fields, "form_id"),
            need: text(fields, "need"),
            note: note(fields, "need_note"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let need = coded(NeedDomain::ALL, &self.need);
        if need.is_none() {
            errors.push(FieldError::new("need", "Select the need"));
        }
        let note = typed_text(&self.note, "need_note", NOTE_LIMIT, &mut errors);
        let command = need.map(|need| CaseCommand::IdentifyNeed(NeedIdentified { need, note }));
        outcome(command, errors)
    }
}

/// A goal agreed, linked to a need when the worker says which.
#[derive(Clone, Debug, Default)]
pub(crate) struct GoalForm {
    /// Chosen when the form is shown: a second send sets no second goal.
    goal_id: Uuid,
    description: String,
    need: String,
}

impl GoalForm {
    fn from_fields(fields: &HashMap<String, String>) -> GoalForm {
        GoalForm {
            goal_id: form_id(fields, "goal_id"),
            description: note(fields, "goal_description"),
            need: text(fields, "goal_need"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let description = self.description.trim();
        if description.is_empty() {
            errors.push(FieldError::new("goal_description", "Describe the goal"));
        } else if description.chars().count() > NOTE_LIMIT {
            errors.push(FieldError::new(
                "goal_description",
                format!("The goal must be {NOTE_LIMIT} characters or fewer"),
            ));
        }
        let need = match self.need.as_str() {
            "" => Some(None),
            code => coded(NeedDomain::ALL, code).map(Some),
        };
        if need.is_none() {
            errors.push(FieldError::new("goal_need", "Select a need from the list"));
        }
        let command = need.map(|need| {
            CaseCommand::SetGoal(GoalSet {
                goal_id: GoalId(self.goal_id),
                description: description.to_owned(),
                need,
            })
        });
        outcome(command, errors)
    }
}

/// A goal's progress, reviewed.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReviewForm {
    form_id: Uuid,
    goal_id: String,
    progress: String,
    note: String,
}

impl ReviewForm {
    fn from_fields(fields: &HashMap<String, String>) -> ReviewForm {
        ReviewForm {
            form_id: form_id(fields, "form_id"),
            goal_id: text(fields, "review_goal"),
            progress: text(fields, "progress"),
            note: note(fields, "review_note"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let goal = Uuid::try_parse(&self.goal_id).ok().map(GoalId);
        if goal.is_none() {
            errors.push(FieldError::new("review_goal", "Select the goal"));
        }
        let progress = coded(GoalProgress::ALL, &self.progress);
        if progress.is_none() {
            errors.push(FieldError::new(
                "progress",
                "Select how far the goal has come",
            ));
        }
        let note = typed_text(&self.note, "review_note", NOTE_LIMIT, &mut errors);
        let command = match (goal, progress) {
            (Some(goal_id), Some(progress)) => Some(CaseCommand::ReviewGoal(GoalReviewed {
                goal_id,
                progress,
                note,
            })),
            _ => None,
        };
        outcome(command, errors)
    }
}

/// A consent given: for onward services it covers any service (the console names none).
#[derive(Clone, Debug, Default)]
pub(crate) struct ConsentForm {
    form_id: Uuid,
    scope: String,
    /// For consent to be contacted for reminders: by text message or email.
    channel: String,
}

impl ConsentForm {
    fn from_fields(fields: &HashMap<String, String>) -> ConsentForm {
        ConsentForm {
            form_id: form_id(fields, "form_id"),
            scope: text(fields, "consent_scope"),
            channel: text(fields, "contact_channel"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        match coded(ConsentScope::ALL, &self.scope) {
            Some(scope) => Ok(CaseCommand::RecordConsent(ConsentRecorded {
                scope,
                services: Vec::new(),
                // Only consent to be contacted for reminders names a channel.
                channel: (scope == ConsentScope::ContactForReminders)
                    .then(|| coded(ContactChannel::ALL, &self.channel))
                    .flatten(),
            })),
            None => Err(vec![FieldError::new(
                "consent_scope",
                "Select what the person consents to",
            )]),
        }
    }
}

/// The withdrawal of a consent in force (the button names its scope).
fn withdrawal(fields: &HashMap<String, String>) -> Result<CaseCommand, Vec<FieldError>> {
    match coded(ConsentScope::ALL, &text(fields, "withdraw_scope")) {
        Some(scope) => Ok(CaseCommand::WithdrawConsent(ConsentWithdrawn { scope })),
        None => Err(vec![FieldError::new(
            "consents",
            "Choose the consent to withdraw",
        )]),
    }
}

/// Where on the plan page a refusal of the application belongs (the command's field names are
/// not the form's); a refusal of no field goes to `fallback`, the form sent.
fn plan_field<'a>(field: Option<&str>, fallback: &'a str) -> &'a str {
    match field {
        Some("text") => "what_matters",
        Some("note") if fallback == "need" => "need_note",
        Some("description") => "goal_description",
        Some("goal_id") => "review_goal",
        Some("scope") if fallback == "consent_scope" => "consent_scope",
        Some("channel") if fallback == "consent_scope" => "contact_channel",
        _ => fallback,
    }
}

/// Carries out a form's command for the session: the response leading back to the person's
/// page with the banner `done` (or the page for an error of the service), or the application's
/// refusal, at the field it names (the command's own name for it) or none.
pub(crate) async fn execute(
    req: &HttpRequest,
    console: &Console,
    session: &ConsoleSession,
    client: ClientId,
    command: &CaseCommand,
    (idempotency_key, fingerprint, expected_version): (String, [u8; 32], Option<i64>),
    done: &str,
) -> Result<HttpResponse, (Option<&'static str>, String)> {
    match crate::send_at(
        (req, console, session),
        client,
        command,
        (Some(idempotency_key), Some(fingerprint)),
        (expected_version, None),
    )
    .await
    {
        crate::Sent::Done => Ok(see_other(&format!(
            "/console/people/{}?done={done}",
            client.0
        ))),
        crate::Sent::Refused { field, message } => Err((field, capitalise(&message))),
        crate::Sent::Failed(response) => Ok(response),
    }
}

/// One of the person's own pages: their record read (audited as direct care) and shown by
/// `markup`, with `errors` to put right (then as 422).
pub(crate) async fn person_subpage(
    req: &HttpRequest,
    console: &Console,
    session: &ConsoleSession,
    client: ClientId,
    errors: &[FieldError],
    markup: impl FnOnce(&ClientRecord) -> Markup,
) -> HttpResponse {
    match record(req, console, session, client).await {
        Ok(record) => page(status(errors), markup(&record)),
        Err(response) => response,
    }
}

/// The plan page, with `forms` as typed and `errors` to put right.
async fn render(
    req: &HttpRequest,
    console: &Console,
    session: &ConsoleSession,
    client: ClientId,
    forms: &PlanForms,
    errors: &[FieldError],
) -> HttpResponse {
    person_subpage(req, console, session, client, errors, |record| {
        plan_page(session, record, forms, errors)
    })
    .await
}

async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    console: web::Data<Console>,
) -> HttpResponse {
    let (session, client) = about_person!(req, console, path);
    render(&req, &console, &session, client, &PlanForms::blank(), &[]).await
}

/// The plan's forms, by what each does.
#[derive(Clone, Copy, Debug)]
enum Sent {
    WhatMatters,
    Need,
    Goal,
    Review,
    Consent,
    Withdrawal,
}

impl Sent {
    /// Reads the form sent into `forms` (kept there as typed): its command, or what to put
    /// right; and its idempotency key, from the id the form was drawn with.
    fn read(
        self,
        fields: &HashMap<String, String>,
        forms: &mut PlanForms,
    ) -> (Result<CaseCommand, Vec<FieldError>>, String) {
        let (command, kind, id) = match self {
            Sent::WhatMatters => {
                forms.what_matters = WhatMattersForm::from_fields(fields);
                let form = &forms.what_matters;
                (form.command(), "what-matters", form.form_id)
            }
            Sent::Need => {
                forms.need = NeedForm::from_fields(fields);
                (forms.need.command(), "need", forms.need.form_id)
            }
            Sent::Goal => {
                forms.goal = GoalForm::from_fields(fields);
                (forms.goal.command(), "goal", forms.goal.goal_id)
            }
            Sent::Review => {
                forms.review = ReviewForm::from_fields(fields);
                (forms.review.command(), "goal-review", forms.review.form_id)
            }
            Sent::Consent => {
                forms.consent = ConsentForm::from_fields(fields);
                (forms.consent.command(), "consent", forms.consent.form_id)
            }
            Sent::Withdrawal => (
                withdrawal(fields),
                "consent-withdrawal",
                form_id(fields, "form_id"),
            ),
        };
        (command, format!("console-{kind}-{id}"))
    }

    /// The form's field for a refusal that names none of its own, and the banner's code.
    fn field_and_banner(self) -> (&'static str, &'static str) {
        match self {
            Sent::WhatMatters => ("what_matters", "what_matters"),
            Sent::Need => ("need", "need"),
            Sent::Goal => ("goal_description", "goal"),
            Sent::Review => ("review_goal", "goal_reviewed"),
            Sent::Consent => ("consent_scope", "consent"),
            Sent::Withdrawal => ("consents", "consent_withdrawn"),
        }
    }
}

/// The plan page's routes, in the person's scope.
pub(crate) fn routes(config: &mut web::ServiceConfig) {
    let post = |sent: Sent| web::post().to(move |posted: PostedAt| send(sent, posted));
    config
        .route("/plan", web::get().to(show))
        .route("/what-matters", post(Sent::WhatMatters))
        .route("/needs", post(Sent::Need))
        .route("/goals", post(Sent::Goal))
        .route("/goals/review", post(Sent::Review))
        .route("/consent", post(Sent::Consent))
        .route("/consent/withdrawal", post(Sent::Withdrawal));
}

/// A plan form sent: read into its command and carried out under its key; a refusal is shown
/// at its field, the form as typed.
async fn send(sent: Sent, (req, path, body, console): PostedAt) -> HttpResponse {
    let (fields, session, client) = person_form!(req, console, path, body);
    let mut forms = PlanForms::blank();
    let (command, key) = sent.read(&fields, &mut forms);
    let (fallback, done) = sent.field_and_banner();
    // The record's version the page was drawn at: a colleague's write since brings the form
    // back; one that is not a number is refused.
    let version = crate::forms::shown_version(&crate::forms::text(&fields, "version"));
    let errors = match (command, version) {
        (Err(errors), _) => errors,
        (Ok(_), Err(crate::forms::BadVersion)) => vec![FieldError::new(
            fallback,
            capitalise(crate::forms::BAD_VERSION),
        )],
        (Ok(command), Ok(version)) => {
            let sending = (key, crate::forms::fingerprint(&req, &fields), version);
            match execute(&req, &console, &session, client, &command, sending, done).await {
                Ok(response) => return response,
                // Nothing was written (a refusal is not kept under the form's key): the form
                // is shown again as typed, to send again once put right.
                Err((field, message)) => {
                    vec![FieldError::new(plan_field(field, fallback), message)]
                }
            }
        }
    };
    render(&req, &console, &session, client, &forms, &errors).await
}

fn need_name(need: NeedDomain) -> String {
    capitalise(need.label())
}

fn progress_name(progress: Option<GoalProgress>) -> String {
    progress.map_or("Not reviewed yet".to_owned(), |p| capitalise(p.label()))
}

/// The plan as the person's page shows it, with the way to the plan's and the assessment's
/// pages while the case is open.
pub(crate) fn summary(record: &ClientRecord) -> Markup {
    let Plan {
        what_matters,
        needs,
        goals,
        consents,
        assessments,
        ..
    } = &record.plan;
    let open = record.status == domain::CaseStatus::Open;
    let base = format!("/console/people/{}", record.client_id);
    html! {
        h2 class="nhsuk-heading-m" id="plan" { "Plan" }
        dl class="nhsuk-summary-list" id="plan-summary" {
            (summary_row("What matters to them", what_matters.as_deref().unwrap_or("Not recorded yet")))
            div class="nhsuk-summary-list__row" {
                dt class="nhsuk-summary-list__key" { "Needs" }
                dd class="nhsuk-summary-list__value" {
                    @if needs.is_empty() { "None identified yet" }
                    ul class="nhsuk-list" {
                        @for n in needs.iter() { li { (need_name(n.need)) } }
                    }
                }
            }
            div class="nhsuk-summary-list__row" {
                dt class="nhsuk-summary-list__key" { "Goals" }
                dd class="nhsuk-summary-list__value" {
                    @if goals.is_empty() { "None agreed yet" }
                    ul class="nhsuk-list" {
                        @for g in goals.iter() { li { (g.description) " (" (progress_name(g.progress)) ")" } }
                    }
                }
            }
            (summary_row("Consent", &consent_names(consents)))
            div class="nhsuk-summary-list__row" {
                dt class="nhsuk-summary-list__key" { "Assessments taken" }
                dd class="nhsuk-summary-list__value" {
                    @if assessments.is_empty() { "None yet" }
                    ul class="nhsuk-list" {
                        @for a in assessments.iter() {
                            li class="assessment-taken" {
                                (a.instrument.label()) ", " (a.timepoint.label()) ", " (day(a.administered_on))
                                @if !a.scores.is_empty() { ": " (score_text(&a.scores)) }
                            }
                        }
                    }
                }
            }
        }
        @if open {
            ul class="nhsuk-list" {
                li { a href={(base) "/plan"} id="update-plan" { "Update the plan or consent" } }
                li { a href={(base) "/assessment"} id="record-assessment" { "Record an assessment" } }
            }
        }
    }
}

/// An assessment's scores as a link worker reads them: "score 23.21" for an instrument one
/// measure scores, "life satisfaction 7 (high), ..., anxiety 2 (low)" for one several do,
/// each with its band when it has one.
fn score_text(scores: &[app::records::AssessmentScore]) -> String {
    let value = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    let band = |b: &Option<String>| {
        b.as_deref()
            .map(|b| format!(" ({})", b.replace('_', " ")))
            .unwrap_or_default()
    };
    match scores {
        [one] => format!("score {}{}", value(one.value), band(&one.band)),
        several => several
            .iter()
            .map(|s| {
                // The measure's own part of its name: "ons4_life_satisfaction" is the
                // instrument's "life satisfaction".
                let name = s
                    .measure
                    .split_once('_')
                    .map_or(s.measure.as_str(), |(_, n)| n);
                format!(
                    "{} {}{}",
                    name.replace('_', " "),
                    value(s.value),
                    band(&s.band)
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn consent_names(consents: &[(ConsentScope, Vec<domain::ServiceId>)]) -> String {
    if consents.is_empty() {
        return "None given".to_owned();
    }
    consents
        .iter()
        .map(|(scope, _)| capitalise(scope.label()))
        .collect::<Vec<_>>()
        .join("; ")
}

fn plan_page(
    who: &ConsoleSession,
    record: &ClientRecord,
    forms: &PlanForms,
    errors: &[FieldError],
) -> Markup {
    let base = format!("/console/people/{}", record.client_id);
    let plan = &record.plan;
    let open = record.status == domain::CaseStatus::Open;
    form_page(
        who,
        record,
        "Plan and consent",
        errors,
        html! {
            @if open {
                (what_matters_section(who, (&base, record.version), plan, &forms.what_matters, errors))
                (needs_section(who, (&base, record.version), plan, &forms.need, errors))
                (goals_section(who, (&base, record.version), plan, forms, errors))
            } @else {
                p class="nhsuk-body" { "The plan is kept while the case is open." }
            }
            (consent_section(who, (&base, record.version), plan, &forms.consent, errors))
        },
    )
}

fn what_matters_section(
    who: &ConsoleSession,
    (base, version): (&str, i64),
    plan: &Plan,
    form: &WhatMattersForm,
    errors: &[FieldError],
) -> Markup {
    let typed = if form.text.is_empty() {
        plan.what_matters.clone().unwrap_or_default()
    } else {
        form.text.clone()
    };
    html! {
        h2 class="nhsuk-heading-m" { "What matters to them" }
        form method="post" action={(base) "/what-matters"} novalidate {
            (csrf_field(who))
            input type="hidden" name="version" value=(version);
            input type="hidden" name="form_id" value=(form.form_id);
            (text_area(("what_matters", "what_matters"), ("In their words",
                Some("What is recorded here replaces what was recorded before; the journey keeps both.")),
                (&typed, 3), errors))
            button class="nhsuk-button" id="record-what-matters" type="submit" { "Save what matters" }
        }
    }
}

fn needs_section(
    who: &ConsoleSession,
    (base, version): (&str, i64),
    plan: &Plan,
    form: &NeedForm,
    errors: &[FieldError],
) -> Markup {
    html! {
        h2 class="nhsuk-heading-m" id="needs" { "Needs" }
        @if plan.needs.is_empty() {
            p class="nhsuk-body" { "No need is identified yet." }
        } @else {
            ul class="nhsuk-list nhsuk-list--bullet" {
                @for n in &plan.needs {
                    li { (need_name(n.need)) @if let Some(note) = &n.note { ": " (note) } }
                }
            }
        }
        form method="post" action={(base) "/needs"} novalidate {
            (csrf_field(who))
            input type="hidden" name="version" value=(version);
            input type="hidden" name="form_id" value=(form.form_id);
            (fieldset("need", "Identify a need", errors,
                radios("need", NeedDomain::ALL, |c| c.label(), Some(form.need.as_str()), false)))
            (text_area(("need_note", "need_note"), ("Note (optional)", None), (&form.note, 3), errors))
            button class="nhsuk-button" id="identify-need" type="submit" { "Save need" }
        }
    }
}

fn goals_section(
    who: &ConsoleSession,
    (base, version): (&str, i64),
    plan: &Plan,
    forms: &PlanForms,
    errors: &[FieldError],
) -> Markup {
    let (goal, review) = (&forms.goal, &forms.review);
    let need_error = error_for(errors, "goal_need");
    let goal_error = error_for(errors, "review_goal");
    html! {
        h2 class="nhsuk-heading-m" id="goals" { "Goals" }
        @if plan.goals.is_empty() {
            p class="nhsuk-body" { "No goal is agreed yet." }
        } @else {
            div class="nhsuk-table-container" role="region" aria-label="Goals agreed, oldest first" tabindex="0" {
                table class="nhsuk-table" id="goals-table" {
                    caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Goals agreed, oldest first" }
                    (head(&["Goal", "Need", "Progress"]))
                    tbody class="nhsuk-table__body" {
                        @for g in &plan.goals {
                            tr class="nhsuk-table__row" {
                                td class="nhsuk-table__cell" { (g.description) }
                                td class="nhsuk-table__cell" { (g.need.map_or("None named".to_owned(), need_name)) }
                                td class="nhsuk-table__cell" {
                                    (progress_name(g.progress))
                                    @if let Some(note) = &g.review_note { ": " (note) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h3 class="nhsuk-heading-s" { "Set a goal" }
        form method="post" action={(base) "/goals"} novalidate {
            (csrf_field(who))
            input type="hidden" name="version" value=(version);
            input type="hidden" name="goal_id" value=(goal.goal_id);
            (text_area(("goal_description", "goal_description"), ("The goal", None), (&goal.description, 3), errors))
            div class=(group_class(need_error)) {
                label class="nhsuk-label" for="goal_need" { "The need it meets (optional)" }
                (error_message(need_error))
                select class="nhsuk-select" id="goal_need" name="goal_need" aria-describedby=[need_error.map(|_| "goal_need-error")] {
                    option value="" { "No need named" }
                    @for need in NeedDomain::ALL {
                        @let code = domain::code(need);
                        option value=(code) selected[goal.need == code] { (need_name(*need)) }
                    }
                }
            }
            button class="nhsuk-button" id="set-goal" type="submit" { "Save goal" }
        }
        @if !plan.goals.is_empty() {
            h3 class="nhsuk-heading-s" { "Review a goal" }
            form method="post" action={(base) "/goals/review"} novalidate {
                (csrf_field(who))
                input type="hidden" name="version" value=(version);
                input type="hidden" name="form_id" value=(review.form_id);
                div class=(group_class(goal_error)) {
                    label class="nhsuk-label" for="review_goal" { "Goal" }
                    (error_message(goal_error))
                    select class="nhsuk-select" id="review_goal" name="review_goal" aria-describedby=[goal_error.map(|_| "review_goal-error")] {
                        option value="" { "Choose a goal" }
                        @for g in &plan.goals {
                            @let id = g.goal_id.0.to_string();
                            option value=(id) selected[review.goal_id == id] { (g.description) }
                        }
                    }
                }
                (fieldset("progress", "How far has it come?", errors,
                    radios("progress", GoalProgress::ALL, |c| c.label(), Some(review.progress.as_str()), false)))
                (text_area(("review_note", "review_note"), ("Note (optional)", None), (&review.note, 3), errors))
                button class="nhsuk-button" id="review-goal" type="submit" { "Save review" }
            }
        }
    }
}

fn consent_section(
    who: &ConsoleSession,
    (base, version): (&str, i64),
    plan: &Plan,
    form: &ConsentForm,
    errors: &[FieldError],
) -> Markup {
    let withdraw_error = error_for(errors, "consents");
    html! {
        h2 class="nhsuk-heading-m" id="consents" { "Consent" }
        (error_message(withdraw_error))
        @if plan.consents.is_empty() {
            p class="nhsuk-body" { "No consent is in force." }
        }
        @for (scope, services) in &plan.consents {
            div class="nhsuk-card" {
                div class="nhsuk-card__content" {
                    h3 class="nhsuk-card__heading nhsuk-heading-s" { (capitalise(scope.label())) }
                    @if *scope == ConsentScope::ShareWithOnwardServices {
                        p class="nhsuk-body-s" {
                            @if services.is_empty() { "Any onward service." } @else { (services.len()) " named services." }
                        }
                    }
                    form method="post" action={(base) "/consent/withdrawal"} {
                        (csrf_field(who))
                        input type="hidden" name="version" value=(version);
                        input type="hidden" name="form_id" value=(Uuid::new_v4());
                        button class="nhsuk-button nhsuk-button--secondary" type="submit" name="withdraw_scope" value=(domain::code(scope)) {
                            "Withdraw"
                            span class="nhsuk-u-visually-hidden" { " consent to " (scope.label()) }
                        }
                    }
                }
            }
        }
        h3 class="nhsuk-heading-s" { "Record consent" }
        form method="post" action={(base) "/consent"} novalidate {
            (csrf_field(who))
            input type="hidden" name="version" value=(version);
            input type="hidden" name="form_id" value=(form.form_id);
            (hinted_fieldset("consent_scope",
                ("What does the person consent to?", Some("Consent to share with onward services covers any service.")), errors,
                radios("consent_scope", ConsentScope::ALL, |c| c.label(), Some(form.scope.as_str()), false)))
            (hinted_fieldset("contact_channel",
                ("How would they like reminders?", Some("Only for consent to be contacted for reminders.")), errors,
                radios("contact_channel", ContactChannel::ALL, |c| c.label(), Some(form.channel.as_str()), false)))
            button class="nhsuk-button" id="record-consent" type="submit" { "Save consent" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::filled as fields;

    #[test]
    fn a_goal_names_a_need_only_from_the_domains_list() {
        let id = Uuid::new_v4();
        let form = GoalForm::from_fields(&fields(&[
            ("goal_id", &id.to_string()),
            ("goal_description", "  Join the walking group "),
            ("goal_need", "physical_activity"),
        ]));
        let Ok(CaseCommand::SetGoal(goal)) = form.command() else {
            panic!("not a goal");
        };
        assert_eq!(goal.goal_id, GoalId(id));
        assert_eq!(goal.description, "Join the walking group");
        assert_eq!(goal.need, Some(NeedDomain::PhysicalActivity));
        let unlinked = GoalForm::from_fields(&fields(&[("goal_description", "Sleep better")]));
        assert!(matches!(
            unlinked.command(),
            Ok(CaseCommand::SetGoal(GoalSet { need: None, .. }))
        ));
        let errors = GoalForm::from_fields(&fields(&[("goal_need", "astrology")]))
            .command()
            .expect_err("refused");
        let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["goal_description", "goal_need"]);
    }

    #[test]
    fn a_review_needs_its_goal_and_progress_and_a_blank_note_is_none() {
        let goal = Uuid::new_v4().to_string();
        let Ok(CaseCommand::ReviewGoal(review)) = ReviewForm::from_fields(&fields(&[
            ("review_goal", &goal),
            ("progress", "some_progress"),
            ("review_note", "   "),
        ]))
        .command() else {
            panic!("not a review");
        };
        assert_eq!(review.progress, GoalProgress::SomeProgress);
        assert_eq!(review.note, None);
        let errors = ReviewForm::from_fields(&fields(&[("progress", "done-ish")]))
            .command()
            .expect_err("refused");
        let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["review_goal", "progress"]);
    }
}
