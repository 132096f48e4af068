//! Recording an assessment, without JavaScript in two steps: the worker chooses the
//! questionnaire (a GET form, `?instrument=`), then answers its form: when, at which point of
//! the journey and how it was taken, and one radio group per item with the instrument's answer
//! scale. The domain checks the answers (`Instrument::validate`); the wordings here are only
//! what the person is asked.
//!
//! PAM is not offered: its score comes from the licensor's algorithm, not from answers typed
//! here, so it is recorded through the API with that score.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use app::records::ClientRecord;
use app::sessions::ConsoleSession;
use chrono::NaiveDate;
use domain::{
    AdministrationMode, AssessmentId, AssessmentRecorded, CaseCommand, ClientId, Instrument,
    Timepoint,
};
use maud::{Markup, html};
use uuid::Uuid;

use crate::connect::form_page;
use crate::fields::{fieldset, input};
use crate::forms::{self, FieldError, coded, form_id, text};
use crate::pages::{capitalise, csrf_field, error_for, error_message, group_class, radios};
use crate::plan::{execute, person_subpage};
use crate::{Console, PostedAt, form_session, session};

/// The version of each instrument these wordings are.
const INSTRUMENT_VERSION: i32 = 1;

/// An answer scale: each value with its words.
type Scale = &'static [(i32, &'static str)];

const FREQUENCY: Scale = &[
    (1, "None of the time"),
    (2, "Rarely"),
    (3, "Some of the time"),
    (4, "Often"),
    (5, "All of the time"),
];

const ONS_SCALE: Scale = &[
    (0, "0 – not at all"),
    (1, "1"),
    (2, "2"),
    (3, "3"),
    (4, "4"),
    (5, "5"),
    (6, "6"),
    (7, "7"),
    (8, "8"),
    (9, "9"),
    (10, "10 – completely"),
];

const UCLA_SCALE: Scale = &[
    (1, "Hardly ever or never"),
    (2, "Some of the time"),
    (3, "Often"),
];

const LONELY_SCALE: Scale = &[
    (1, "Often or always"),
    (2, "Some of the time"),
    (3, "Occasionally"),
    (4, "Hardly ever"),
    (5, "Never"),
];

const CONCERN_SCALE: Scale = &[
    (0, "0 – not bothering me at all"),
    (1, "1"),
    (2, "2"),
    (3, "3"),
    (4, "4"),
    (5, "5"),
    (6, "6 – bothers me greatly"),
];

const WELLBEING_SCALE: Scale = &[
    (0, "0 – as good as it could be"),
    (1, "1"),
    (2, "2"),
    (3, "3"),
    (4, "4"),
    (5, "5"),
    (6, "6 – as bad as it could be"),
];

/// One question: its wording, its scale, and whether it may be left unanswered.
#[derive(Clone, Copy)]
struct Item {
    wording: &'static str,
    scale: Scale,
    optional: bool,
}

const fn item(wording: &'static str, scale: Scale) -> Item {
    Item {
        wording,
        scale,
        optional: false,
    }
}

/// WEMWBS's 14 items, in order, in the scale's own words (as published in Tennant et al. 2007;
/// the University of Warwick, which holds the scale, asks that it be used exactly as published,
/// and that services register their use of it with them: a service's to do, not Casebook's).
const WEMWBS: &[Item] = &[
    item("I've been feeling optimistic about the future", FREQUENCY),
    item("I've been feeling useful", FREQUENCY),
    item("I've been feeling relaxed", FREQUENCY),
    item("I've been feeling interested in other people", FREQUENCY),
    item("I've had energy to spare", FREQUENCY),
    item("I've been dealing with problems well", FREQUENCY),
    item("I've been thinking clearly", FREQUENCY),
    item("I've been feeling good about myself", FREQUENCY),
    item("I've been feeling close to other people", FREQUENCY),
    item("I've been feeling confident", FREQUENCY),
    item(
        "I've been able to make up my own mind about things",
        FREQUENCY,
    ),
    item("I've been feeling loved", FREQUENCY),
    item("I've been interested in new things", FREQUENCY),
    item("I've been feeling cheerful", FREQUENCY),
];

/// SWEMWBS: WEMWBS items 1, 2, 3, 6, 7, 9 and 11, worded as WEMWBS words them.
const SWEMWBS: &[Item] = &[
    WEMWBS[0], WEMWBS[1], WEMWBS[2], WEMWBS[5], WEMWBS[6], WEMWBS[8], WEMWBS[10],
];

const ONS4: &[Item] = &[
    item(
        "Overall, how satisfied are you with your life nowadays?",
        ONS_SCALE,
    ),
    item(
        "Overall, to what extent do you feel the things you do in your life are worthwhile?",
        ONS_SCALE,
    ),
    item("Overall, how happy did you feel yesterday?", ONS_SCALE),
    item("Overall, how anxious did you feel yesterday?", ONS_SCALE),
];

const UCLA3: &[Item] = &[
    item(
        "How often do you feel that you lack companionship?",
        UCLA_SCALE,
    ),
    item("How often do you feel left out?", UCLA_SCALE),
    item("How often do you feel isolated from others?", UCLA_SCALE),
];

const ONS_LONELINESS: &[Item] = &[item("How often do you feel lonely?", LONELY_SCALE)];

/// MYCaW: the person's first concern, a second if they name one, then their wellbeing.
const MYCAW: &[Item] = &[
    item(
        "Concern 1: how much is it bothering you now?",
        CONCERN_SCALE,
    ),
    Item {
        wording: "Concern 2 (if there is one): how much is it bothering you now?",
        scale: CONCERN_SCALE,
        optional: true,
    },
    item(
        "How would you rate your general feeling of wellbeing now?",
        WELLBEING_SCALE,
    ),
];

/// What WEMWBS and SWEMWBS ask first, as published.
const WEMWBS_STEM: &str = "Below are some statements about feelings and thoughts. Please tick the \
    box that best describes your experience of each over the last 2 weeks.";

/// The instruments the console offers, with what the person is asked first.
const QUESTIONNAIRES: &[(Instrument, &str, &[Item])] = &[
    (Instrument::Wemwbs, WEMWBS_STEM, WEMWBS),
    (Instrument::Swemwbs, WEMWBS_STEM, SWEMWBS),
    (
        Instrument::Ons4,
        "Answer each on a scale of 0 to 10, where 0 is not at all and 10 is completely.",
        ONS4,
    ),
    (Instrument::Ucla3, "", UCLA3),
    (Instrument::OnsLoneliness, "", ONS_LONELINESS),
    (
        Instrument::Mycaw,
        "The concerns are the person's own, in their words; only the scores are recorded.",
        MYCAW,
    ),
];

fn questionnaire(instrument: Instrument) -> Option<(&'static str, &'static [Item])> {
    QUESTIONNAIRES
        .iter()
        .find(|(i, _, _)| *i == instrument)
        .map(|(_, intro, items)| (*intro, *items))
}

/// An instrument the console offers, by its code.
fn offered(code: &str) -> Option<Instrument> {
    coded(Instrument::ALL, code).filter(|i| questionnaire(*i).is_some())
}

fn item_field(n: usize) -> String {
    format!("item-{n}")
}

/// The assessment form, as shown and as sent back.
#[derive(Clone, Debug)]
pub(crate) struct AssessmentForm {
    /// Chosen when the form is shown: a second send records nothing new.
    assessment_id: Uuid,
    instrument: Instrument,
    timepoint: String,
    mode: String,
    administered_on: String,
    /// Each item's answer as sent (empty when none), in order.
    answers: Vec<String>,
}

impl AssessmentForm {
    fn blank(instrument: Instrument, today: NaiveDate) -> AssessmentForm {
        let items = questionnaire(instrument).map_or(0, |(_, items)| items.len());
        AssessmentForm {
            assessment_id: Uuid::new_v4(),
            instrument,
            timepoint: String::new(),
            mode: String::new(),
            administered_on: today.format("%Y-%m-%d").to_string(),
            answers: vec![String::new(); items],
        }
    }

    /// The form as sent, for an instrument the console offers.
    fn from_fields(fields: &HashMap<String, String>) -> Option<AssessmentForm> {
        let instrument = offered(&text(fields, "instrument"))?;
        let (_, items) = questionnaire(instrument)?;
        Some(AssessmentForm {
            assessment_id: form_id(fields, "assessment_id"),
            instrument,
            timepoint: text(fields, "timepoint"),
            mode: text(fields, "mode"),
            administered_on: text(fields, "administered_on"),
            answers: (1..=items.len())
                .map(|n| text(fields, &item_field(n)))
                .collect(),
        })
    }

    /// The command the form asks for, or what to put right.
    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let timepoint = coded(Timepoint::ALL, &self.timepoint);
        if timepoint.is_none() {
            errors.push(FieldError::new(
                "timepoint",
                "Select when in the journey it was taken",
            ));
        }
        let administered_on = NaiveDate::parse_from_str(&self.administered_on, "%Y-%m-%d").ok();
        if administered_on.is_none() {
            errors.push(FieldError::new(
                "administered_on",
                "Enter the date it was taken as a real date",
            ));
        }
        let mode = coded(AdministrationMode::ALL, &self.mode);
        if mode.is_none() {
            errors.push(FieldError::new("mode", "Select who completed it"));
        }
        let items = questionnaire(self.instrument).map_or(&[][..], |(_, items)| items);
        let mut answers = Vec::new();
        for (n, (item, typed)) in items.iter().zip(&self.answers).enumerate() {
            let value = typed
                .parse::<i32>()
                .ok()
                .filter(|v| item.scale.iter().any(|(s, _)| s == v));
            match value {
                Some(v) => answers.push(v),
                None if typed.is_empty() && item.optional => {}
                None => errors.push(FieldError::new(
                    item_field(n + 1),
                    format!("Select an answer to “{}”", item.wording),
                )),
            }
        }
        match (timepoint, administered_on, mode) {
            (Some(timepoint), Some(administered_on), Some(mode)) if errors.is_empty() => {
                Ok(CaseCommand::RecordAssessment(AssessmentRecorded {
                    assessment_id: AssessmentId(self.assessment_id),
                    instrument: self.instrument,
                    instrument_version: INSTRUMENT_VERSION,
                    timepoint,
                    mode,
                    answers,
                    licensor_score: None,
                    administered_on,
                }))
            }
            _ => Err(errors),
        }
    }
}

/// Where on the form a refusal of the application belongs.
fn form_field(field: Option<&str>) -> &'static str {
    match field {
        Some("timepoint") => "timepoint",
        Some("administered_on") => "administered_on",
        Some("mode") => "mode",
        Some("answers") => "answers",
        _ => "assessment",
    }
}

/// The assessment page's routes, in the person's scope.
pub(crate) fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/assessment", web::get().to(show))
        .route("/assessment", web::post().to(record));
}

#[derive(serde::Deserialize)]
struct Chosen {
    instrument: Option<String>,
    /// Sent by the form that chooses: without `instrument`, nothing was chosen.
    chosen: Option<String>,
}

/// The page: the choice of questionnaire, or the chosen one's form.
async fn render(
    req: &HttpRequest,
    console: &Console,
    session: &ConsoleSession,
    client: ClientId,
    step: Step<'_>,
    errors: &[FieldError],
) -> HttpResponse {
    person_subpage(req, console, session, client, errors, |record| {
        assessment_page(session, record, step, errors)
    })
    .await
}

/// Which of the page's two steps is shown.
#[derive(Clone, Copy)]
enum Step<'a> {
    Choose,
    Answer(&'a AssessmentForm),
}

async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<Chosen>,
    console: web::Data<Console>,
) -> HttpResponse {
    let (session, client) = about_person!(req, console, path);
    match query.instrument.as_deref().and_then(offered) {
        Some(instrument) => {
            // Today on the UK calendar, which is the one the domain judges a day-only fact by.
            let today = console.cases.clock().today();
            let form = AssessmentForm::blank(instrument, today);
            render(&req, &console, &session, client, Step::Answer(&form), &[]).await
        }
        None => {
            // The chooser sent without a choice (or with one the console does not offer).
            let asked = query.instrument.is_some() || query.chosen.is_some();
            let errors: Vec<FieldError> = asked
                .then(|| FieldError::new("instrument", "Select the questionnaire"))
                .into_iter()
                .collect();
            render(&req, &console, &session, client, Step::Choose, &errors).await
        }
    }
}

async fn record((req, path, body, console): PostedAt) -> HttpResponse {
    let (fields, session, client) = person_form!(req, console, path, body);
    let Some(form) = AssessmentForm::from_fields(&fields) else {
        let errors = [FieldError::new("instrument", "Select the questionnaire")];
        return render(&req, &console, &session, client, Step::Choose, &errors).await;
    };
    // The record's version the page was drawn at: a colleague's write since brings the form
    // back; one that is not a number is refused.
    let version = forms::shown_version(&text(&fields, "version"));
    let errors = match (form.command(), version) {
        (Err(errors), _) => errors,
        (Ok(_), Err(forms::BadVersion)) => {
            vec![FieldError::new(
                "assessment",
                capitalise(forms::BAD_VERSION),
            )]
        }
        (Ok(command), Ok(version)) => {
            let key = format!("console-assessment-{}", form.assessment_id);
            match execute(
                &req,
                &console,
                &session,
                client,
                &command,
                (key, crate::forms::fingerprint(&req, &fields), version),
                "assessment",
            )
            .await
            {
                Ok(response) => return response,
                Err((field, message)) => vec![FieldError::new(form_field(field), message)],
            }
        }
    };
    render(
        &req,
        &console,
        &session,
        client,
        Step::Answer(&form),
        &errors,
    )
    .await
}

/// Radios for one answer scale: the first with the id `name` (where an error links to).
fn scale_radios(name: &str, scale: Scale, chosen: &str) -> Markup {
    html! {
        div class="nhsuk-radios nhsuk-radios--inline" {
            @for (i, (value, words)) in scale.iter().enumerate() {
                @let id = if i == 0 { name.to_owned() } else { format!("{name}-{value}") };
                div class="nhsuk-radios__item" {
                    input class="nhsuk-radios__input" id=(id) name=(name) type="radio" value=(value)
                        checked[chosen == value.to_string()];
                    label class="nhsuk-label nhsuk-radios__label" for=(id) { (words) }
                }
            }
        }
    }
}

fn assessment_page(
    who: &ConsoleSession,
    record: &ClientRecord,
    step: Step<'_>,
    errors: &[FieldError],
) -> Markup {
    let base = format!("/console/people/{}", record.client_id);
    form_page(
        who,
        record,
        "Record an assessment",
        errors,
        html! {
            @match step {
                Step::Choose => (choose(&base, errors)),
                Step::Answer(form) => (answer(who, (&base, record.version), form, errors)),
            }
        },
    )
}

fn choose(base: &str, errors: &[FieldError]) -> Markup {
    let error = error_for(errors, "instrument");
    html! {
        form method="get" action={(base) "/assessment"} novalidate {
            input type="hidden" name="chosen" value="yes";
            div class=(group_class(error)) {
                fieldset class="nhsuk-fieldset" aria-describedby={"instrument-hint" @if error.is_some() { " instrument-error" }} {
                    legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--m" { "Which questionnaire?" }
                    div class="nhsuk-hint" id="instrument-hint" {
                        "PAM is not here: its score comes from its licensor, so it is recorded with that score through the API."
                    }
                    (error_message(error))
                    (radios("instrument", &QUESTIONNAIRES.iter().map(|(i, _, _)| *i).collect::<Vec<_>>(), |i| i.label(), None, false))
                }
            }
            button class="nhsuk-button" id="choose-instrument" type="submit" { "Continue" }
        }
    }
}

fn answer(
    who: &ConsoleSession,
    (base, version): (&str, i64),
    form: &AssessmentForm,
    errors: &[FieldError],
) -> Markup {
    let (intro, items) = questionnaire(form.instrument).unwrap_or(("", &[]));
    let answers_error = error_for(errors, "answers");
    let whole_error = error_for(errors, "assessment");
    html! {
        p class="nhsuk-body" {
            (form.instrument.label()) ". "
            a href={(base) "/assessment"} { "Choose another questionnaire" }
        }
        form method="post" action={(base) "/assessment"} id="assessment" novalidate {
            (csrf_field(who))
            input type="hidden" name="version" value=(version);
            (error_message(whole_error))
            input type="hidden" name="assessment_id" value=(form.assessment_id);
            input type="hidden" name="instrument" value=(domain::code(&form.instrument));
            (fieldset("timepoint", "When in the journey was it taken?", errors,
                radios("timepoint", Timepoint::ALL, |t| t.label(), Some(form.timepoint.as_str()), true)))
            (input(("administered_on", "administered_on"), ("Date it was taken", None),
                (&form.administered_on, "date", "nhsuk-input--width-10"), errors))
            (fieldset("mode", "Who completed it?", errors,
                radios("mode", AdministrationMode::ALL, |m| m.label(), Some(form.mode.as_str()), true)))
            h2 class="nhsuk-heading-m" id="answers" { "The questions" }
            (error_message(answers_error))
            @if !intro.is_empty() { p class="nhsuk-body" { (intro) } }
            @for (n, (item, typed)) in items.iter().zip(&form.answers).enumerate() {
                @let field = item_field(n + 1);
                (fieldset(&field, &capitalise(item.wording), errors, scale_radios(&field, item.scale, typed)))
            }
            button class="nhsuk-button" id="record-assessment" type="submit" { "Save assessment" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_questionnaire_fits_its_instrument_and_pam_is_left_out() {
        for (instrument, _, items) in QUESTIONNAIRES {
            let (fewest, most) = instrument.item_count();
            let required = items.iter().filter(|i| !i.optional).count();
            assert_eq!(required, fewest, "{instrument:?}: answers required");
            assert_eq!(items.len(), most, "{instrument:?}: items");
            let (low, high) = instrument.answer_range();
            for item in items.iter() {
                let values: Vec<i32> = item.scale.iter().map(|(v, _)| *v).collect();
                assert_eq!(
                    values,
                    (low..=high).collect::<Vec<_>>(),
                    "{instrument:?}: {}",
                    item.wording
                );
            }
        }
        assert_eq!(offered("pam"), None);
        assert_eq!(offered("wemwbs"), Some(Instrument::Wemwbs));
    }

    #[test]
    fn swemwbs_asks_wemwbs_items_1_2_3_6_7_9_and_11() {
        let wordings: Vec<&str> = [1, 2, 3, 6, 7, 9, 11]
            .iter()
            .map(|n| WEMWBS[n - 1].wording)
            .collect();
        let short: Vec<&str> = SWEMWBS.iter().map(|i| i.wording).collect();
        assert_eq!(short, wordings);
    }

    fn sent(pairs: &[(&str, &str)]) -> AssessmentForm {
        let fields: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AssessmentForm::from_fields(&fields).expect("an offered instrument")
    }

    #[test]
    fn a_missing_answer_is_named_and_mycaws_second_concern_may_be_left_out() {
        let base = [
            ("instrument", "ucla3"),
            ("timepoint", "baseline"),
            ("mode", "assisted"),
            ("administered_on", "2026-11-02"),
            ("item-1", "2"),
            ("item-3", "3"),
        ];
        let errors = sent(&base).command().expect_err("item 2 is missing");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "item-2");
        assert!(errors[0].message.contains("left out"), "{errors:?}");
        let mut mycaw = base.to_vec();
        mycaw[0] = ("instrument", "mycaw");
        let Ok(CaseCommand::RecordAssessment(recorded)) = sent(&mycaw).command() else {
            panic!("concern 1 and wellbeing are enough");
        };
        assert_eq!(recorded.answers, [2, 3]);
        assert_eq!(recorded.instrument_version, INSTRUMENT_VERSION);
        assert_eq!(recorded.licensor_score, None);
    }
}
