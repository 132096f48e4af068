//! Demographics for equity reporting on the person's page (issue #21 part 5): what was last
//! recorded, and a page of its own to record them (again: the latest recording counts). Every
//! answer may be left out. The age band is not asked: the application works it out from the
//! registered date of birth at the referral, as it does over the API (`app::equity`), and the
//! page shows the one it worked out. The form goes only while the record is as it was shown,
//! so a colleague's recording meanwhile is not overwritten unseen: the form comes back, as
//! typed, to be checked and sent again.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use app::records::ClientRecord;
use app::reports::Breakdown;
use domain::{
    CaseCommand, Demographics, DemographicsRecorded, EthnicCategory, GenderIdentity,
    ReportableDemographics, Sex,
};
use maud::{Markup, html};
use uuid::Uuid;

use crate::connect::{PersonForm, Shown, posted};
use crate::fields::{input, select, text_area};
use crate::forms::{FieldError, form_id, text};
use crate::pages::summary_row;

/// The routes of this page, under `/console/people/{client_id}`.
pub(crate) fn routes(config: &mut web::ServiceConfig) {
    use crate::connect::{blank, post};
    config
        .route("/demographics", web::get().to(blank::<DemographicsForm>))
        .route("/demographics", web::post().to(post::<DemographicsForm>));
}

/// What the banner of the person's page says after this form.
pub(crate) fn banner(done: &str) -> Option<&'static str> {
    (done == "demographics").then_some("Demographics recorded")
}

/// The demographics as last recorded, with the way to the form (not once erased).
pub(crate) fn section(record: &ClientRecord) -> Markup {
    let recorded = record.plan.demographics.as_ref();
    let given = recorded.map(|r| &r.demographics);
    let or_not = |value: Option<String>| value.unwrap_or_else(|| "Not recorded".to_owned());
    html! {
        @if !record.erased {
            h2 class="nhsuk-heading-m" id="demographics" { "Demographics" }
            @if let (Some(d), Some(r)) = (given, recorded) {
                dl class="nhsuk-summary-list" id="demographics-summary" {
                    (summary_row("Age at referral", &or_not(r.reportable.age_band.as_deref().map(|b| Breakdown::AgeBand.group_label(b)))))
                    (summary_row("Sex", &or_not(d.sex.map(|s| crate::pages::capitalise(s.label())))))
                    (summary_row("Gender identity", &or_not(d.gender_identity.map(|g| crate::pages::capitalise(g.label())))))
                    (summary_row("Ethnic category", &or_not(d.ethnic_category.map(|e| e.label().to_owned()))))
                    (summary_row("Preferred language", &or_not(d.preferred_language.clone())))
                    (summary_row("Interpreter needed", &or_not(d.interpreter_needed.map(|i| (if i { "Yes" } else { "No" }).to_owned()))))
                    (summary_row("Communication needs", &or_not(d.communication_needs.clone())))
                    (summary_row("Registered GP practice", &or_not(d.gp_practice.clone())))
                    (summary_row("Postcode", &or_not(d.postcode.clone())))
                }
            } @else {
                p class="nhsuk-body" id="demographics-summary" { "Not recorded yet." }
            }
            p class="nhsuk-body" {
                a id="record-demographics" href={"/console/people/" (record.client_id) "/demographics"} {
                    @if recorded.is_some() { "Change demographics" } @else { "Record demographics" }
                }
            }
        }
    }
}

/// The demographics form, as typed (every field as sent; empty is not recorded).
#[derive(Clone, Debug, Default)]
pub(crate) struct DemographicsForm {
    /// Chosen when the form is shown: sending it twice records once.
    form_id: Uuid,
    /// The record's version it was shown at (empty: whatever it is now).
    version: String,
    sex: String,
    gender_identity: String,
    ethnic_category: String,
    preferred_language: String,
    interpreter_needed: String,
    communication_needs: String,
    gp_practice: String,
    postcode: String,
}

/// The form's fields, in its order: the domain's field names without `demographics.`.
const FIELDS: [&str; 8] = [
    "sex",
    "gender_identity",
    "ethnic_category",
    "preferred_language",
    "interpreter_needed",
    "communication_needs",
    "gp_practice",
    "postcode",
];

impl DemographicsForm {
    /// The form filled in with what was last recorded, at the record's version.
    fn shown(record: &ClientRecord) -> DemographicsForm {
        let d = record
            .plan
            .demographics
            .as_ref()
            .map(|r| r.demographics.clone())
            .unwrap_or_default();
        let coded = |value: Option<String>| value.unwrap_or_default();
        DemographicsForm {
            form_id: Uuid::new_v4(),
            version: record.version.to_string(),
            sex: coded(d.sex.map(|s| domain::code(&s))),
            gender_identity: coded(d.gender_identity.map(|g| domain::code(&g))),
            ethnic_category: coded(d.ethnic_category.map(|e| domain::code(&e))),
            preferred_language: d.preferred_language.unwrap_or_default(),
            interpreter_needed: coded(d.interpreter_needed.map(|i| i.to_string())),
            communication_needs: d.communication_needs.unwrap_or_default(),
            gp_practice: d.gp_practice.unwrap_or_default(),
            postcode: d.postcode.unwrap_or_default(),
        }
    }
}

/// A chosen code of `all`, none when left empty; an error at `field` for anything else.
fn chosen<T: serde::Serialize + Copy>(
    all: &[T],
    value: &str,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    if value.is_empty() {
        return None;
    }
    let found = crate::forms::coded(all, value);
    if found.is_none() {
        errors.push(FieldError::new(field, "Select one of the answers"));
    }
    found
}

/// A text as typed, none when left empty.
fn typed(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

impl PersonForm for DemographicsForm {
    const DONE: &'static str = "demographics";
    const TITLE: &'static str = "Demographics";
    const ACTION: &'static str = "/demographics";

    /// Filled in with what was last recorded.
    fn blank(_query: &HashMap<String, String>, on: &Shown<'_>) -> DemographicsForm {
        DemographicsForm::shown(on.record)
    }

    fn from_fields(fields: &HashMap<String, String>) -> DemographicsForm {
        DemographicsForm {
            form_id: form_id(fields, "form_id"),
            version: text(fields, "version"),
            sex: text(fields, "sex"),
            gender_identity: text(fields, "gender_identity"),
            ethnic_category: text(fields, "ethnic_category"),
            preferred_language: fields
                .get("preferred_language")
                .cloned()
                .unwrap_or_default(),
            interpreter_needed: text(fields, "interpreter_needed"),
            communication_needs: fields
                .get("communication_needs")
                .cloned()
                .unwrap_or_default(),
            gp_practice: text(fields, "gp_practice"),
            postcode: text(fields, "postcode"),
        }
    }

    fn command(&self) -> Result<CaseCommand, Vec<FieldError>> {
        let mut errors = Vec::new();
        let sex = chosen(Sex::ALL, &self.sex, "sex", &mut errors);
        let gender_identity = chosen(
            GenderIdentity::ALL,
            &self.gender_identity,
            "gender_identity",
            &mut errors,
        );
        let ethnic_category = chosen(
            EthnicCategory::ALL,
            &self.ethnic_category,
            "ethnic_category",
            &mut errors,
        );
        let interpreter_needed = match self.interpreter_needed.as_str() {
            "" => None,
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                errors.push(FieldError::new(
                    "interpreter_needed",
                    "Select one of the answers",
                ));
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        // Whether each text reads is the application's to say (the domain names the field).
        Ok(CaseCommand::RecordDemographics(DemographicsRecorded {
            demographics: Demographics {
                sex,
                gender_identity,
                ethnic_category,
                preferred_language: typed(&self.preferred_language),
                interpreter_needed,
                communication_needs: typed(&self.communication_needs),
                gp_practice: typed(&self.gp_practice),
                postcode: typed(&self.postcode),
            },
            // Worked out by the application when it is recorded, whatever is given here.
            reportable: ReportableDemographics::default(),
        }))
    }

    const DRAWS_VERSION: bool = true;

    fn key(&self) -> String {
        format!("console-demographics-{}", self.form_id)
    }

    fn refused_at(&self, field: Option<&str>) -> String {
        let field = field.map(|f| f.strip_prefix("demographics.").unwrap_or(f));
        match field {
            Some(f) if FIELDS.contains(&f) => f.to_owned(),
            _ => "sex".to_owned(),
        }
    }

    async fn draw(&self, on: &Shown<'_>, errors: &[FieldError]) -> Result<Markup, HttpResponse> {
        let record = on.record;
        let select = |(id, label): (&str, &str), options: Vec<(String, String)>, value: &str| {
            select(
                (id, id),
                (label, None),
                (&options, value, "Not recorded"),
                errors,
            )
        };
        let words = |all: Vec<(String, &str)>| {
            all.into_iter()
                .map(|(c, w)| (c, crate::pages::capitalise(w)))
                .collect::<Vec<_>>()
        };
        let text = |(id, label): (&str, &str), hint: &str, (value, width): (&str, &str)| {
            input(
                (id, id),
                (label, Some(hint)),
                (value, "text", width),
                errors,
            )
        };
        let age = record
            .plan
            .demographics
            .as_ref()
            .and_then(|r| r.reportable.age_band.as_deref())
            .map(|b| Breakdown::AgeBand.group_label(b));
        // A colleague's recording since the form was shown: the form is sent again at the
        // version shown now, once checked. Any other refusal keeps the version the form was
        // first shown at, so a recording made meanwhile is still caught.
        let version = crate::pages::version_to_send(&self.version, record, errors);
        let fields = html! {
            input type="hidden" name="form_id" value=(self.form_id);
            input type="hidden" name="version" value=(version);
            (select(("sex", "Sex"),
                words(Sex::ALL.iter().map(|s| (domain::code(s), s.label())).collect()), &self.sex))
            (select(("gender_identity", "Gender identity, as they describe it"),
                words(GenderIdentity::ALL.iter().map(|g| (domain::code(g), g.label())).collect()), &self.gender_identity))
            (select(("ethnic_category", "Ethnic category (NHS ethnic category codes)"),
                EthnicCategory::ALL.iter().map(|e| (domain::code(e), format!("{} ({})", e.label(), domain::code(e)))).collect(),
                &self.ethnic_category))
            (text(("preferred_language", "Preferred language"), "In words, like Polish or British Sign Language",
                (&self.preferred_language, "nhsuk-input--width-20")))
            (select(("interpreter_needed", "Do they need an interpreter?"),
                vec![("true".to_owned(), "Yes".to_owned()), ("false".to_owned(), "No".to_owned())],
                &self.interpreter_needed))
            (text_area(("communication_needs", "communication_needs"),
                ("Communication needs", Some("Like large print, easy read or a hearing loop")),
                (&self.communication_needs, 2), errors))
            (text(("gp_practice", "Registered GP practice"), "Its ODS code: a capital letter and five digits, like L85016",
                (&self.gp_practice, "nhsuk-input--width-10")))
            (text(("postcode", "Home postcode"), "For the deprivation decile of the area they live in",
                (&self.postcode, "nhsuk-input--width-10")))
            button class="nhsuk-button" id="record-demographics-button" type="submit" { "Record demographics" }
        };
        Ok(html! {
            p class="nhsuk-body" {
                "Every question may be left as not recorded: the person may decline any of them. "
                "Recording again replaces what was recorded before. "
                "The age band is worked out from the date of birth at the referral"
                @if let Some(age) = &age { " (" (age) " when last recorded)" }
                "."
            }
            (posted::<DemographicsForm>(on, fields))
        })
    }
}
