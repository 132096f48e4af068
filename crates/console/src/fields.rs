//! One helper per kind of form field, so that every page draws a field's label, its hint, the
//! error beside it and the value as typed the same way; and the readings of typed words and
//! times the forms share. Only the shape of the input is read here: every rule is the
//! application's.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use maud::{Markup, html};

use crate::forms::FieldError;
use crate::pages::{error_for, error_message, group_class, radios_at};

/// What a field's `aria-describedby` names: its hint and its error, when it has them.
fn described(id: &str, hint: bool, error: bool) -> Option<String> {
    let ids: Vec<String> = [hint.then_some("hint"), error.then_some("error")]
        .into_iter()
        .flatten()
        .map(|kind| format!("{id}-{kind}"))
        .collect();
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// A form group: the label of `id`, its hint, the error at it, and the control `control`
/// draws (told whether there is an error, and what describes it).
fn group(
    id: &str,
    (label, hint): (&str, Option<&str>),
    errors: &[FieldError],
    control: impl FnOnce(bool, Option<String>) -> Markup,
) -> Markup {
    let error = error_for(errors, id);
    html! {
        div class=(group_class(error)) {
            label class="nhsuk-label" for=(id) { (label) }
            @if let Some(hint) = hint { div class="nhsuk-hint" id={(id) "-hint"} { (hint) } }
            (error_message(error))
            (control(error.is_some(), described(id, hint.is_some(), error.is_some())))
        }
    }
}

/// A text area kept as typed (`name` is what it is sent as, `rows` its height).
pub(crate) fn text_area(
    (id, name): (&str, &str),
    label: (&str, Option<&str>),
    (value, rows): (&str, u8),
    errors: &[FieldError],
) -> Markup {
    group(id, label, errors, |error, described| {
        html! {
            textarea class={"nhsuk-textarea" @if error { " nhsuk-textarea--error" }}
                id=(id) name=(name) rows=(rows) aria-describedby=[described] { (value) }
        }
    })
}

/// An input kept as typed: `kind` its type (`text`, `date`, `time`), `width` its width class.
pub(crate) fn input(
    (id, name): (&str, &str),
    label: (&str, Option<&str>),
    (value, kind, width): (&str, &str, &str),
    errors: &[FieldError],
) -> Markup {
    group(id, label, errors, |error, described| {
        html! {
            input class={"nhsuk-input " (width) @if error { " nhsuk-input--error" }}
                id=(id) name=(name) type=(kind) value=(value) aria-describedby=[described];
        }
    })
}

/// A choice from a list (`options`: each value with its words; `none`: the words of the
/// empty choice), the one `chosen` selected.
pub(crate) fn select(
    (id, name): (&str, &str),
    label: (&str, Option<&str>),
    (options, chosen, none): (&[(String, String)], &str, &str),
    errors: &[FieldError],
) -> Markup {
    group(id, label, errors, |error, described| {
        html! {
            select class={"nhsuk-select" @if error { " nhsuk-select--error" }} id=(id) name=(name)
                aria-describedby=[described] {
                option value="" selected[chosen.is_empty()] { (none) }
                @for (value, words) in options {
                    option value=(value) selected[value == chosen] { (words) }
                }
            }
        }
    })
}

/// Questions in a fieldset headed `legend`, with the error at `id` (the first control's id).
pub(crate) fn fieldset(id: &str, legend: &str, errors: &[FieldError], questions: Markup) -> Markup {
    hinted_fieldset(id, (legend, None), errors, questions)
}

/// [`fieldset`] with its hint, when it has one, under the legend.
pub(crate) fn hinted_fieldset(
    id: &str,
    (legend, hint): (&str, Option<&str>),
    errors: &[FieldError],
    questions: Markup,
) -> Markup {
    let error = error_for(errors, id);
    html! {
        div class=(group_class(error)) {
            fieldset class="nhsuk-fieldset" aria-describedby=[described(id, hint.is_some(), error.is_some())] {
                legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { (legend) }
                @if let Some(hint) = hint { div class="nhsuk-hint" id={(id) "-hint"} { (hint) } }
                (error_message(error))
                (questions)
            }
        }
    }
}

/// Radios for a coded value in a fieldset headed `legend`, with its error (ids from `id`).
pub(crate) fn choice<T: serde::Serialize + Copy>(
    (id, name): (&str, &str),
    legend: &str,
    (all, label): (&[T], fn(T) -> &'static str),
    chosen: &str,
    errors: &[FieldError],
) -> Markup {
    let radios = radios_at((id, name), (all, label), Some(chosen), false);
    fieldset(id, legend, errors, radios)
}

/// A date and a time, kept as typed (`name_date`, `name_time`), with one error for both.
pub(crate) fn date_time(
    name: &str,
    legend: &str,
    (date, time): (&str, &str),
    errors: &[FieldError],
) -> Markup {
    let questions = html! {
        label class="nhsuk-label" for=(name) { "Date (YYYY-MM-DD)" }
        input class="nhsuk-input nhsuk-input--width-10" id=(name) name={(name) "_date"} type="date" value=(date);
        label class="nhsuk-label" for={(name) "_time"} { "Time (HH:MM)" }
        input class="nhsuk-input nhsuk-input--width-5" id={(name) "_time"} name={(name) "_time"} type="time" value=(time);
    };
    fieldset(name, legend, errors, questions)
}

/// Words as typed: none when blank; an error at `field` when over `limit` characters.
pub(crate) fn typed_text(
    value: &str,
    field: &str,
    limit: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    if value.chars().count() > limit {
        errors.push(FieldError::new(
            field,
            format!("This must be {limit} characters or fewer"),
        ));
    }
    Some(value.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A day and a time as typed (`YYYY-MM-DD`, `HH:MM`), each if it reads.
fn parsed(day: &str, time: &str) -> (Option<NaiveDate>, Option<NaiveTime>) {
    (
        NaiveDate::parse_from_str(day, "%Y-%m-%d").ok(),
        NaiveTime::parse_from_str(time, "%H:%M").ok(),
    )
}

/// The moment of a day and a time on the UK wall clock, as every console time is typed; an
/// error at `field` for an hour the clocks skip.
fn on_wall_clock(
    day: NaiveDate,
    time: NaiveTime,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    let at = crate::local::instant(day, time);
    if at.is_none() {
        errors.push(FieldError::new(
            field,
            "That time does not happen on that day: the clocks go forward an hour",
        ));
    }
    at
}

/// A day and a time typed in two fields: the moment, or an error at `day_field` or
/// `time_field` for each that does not read (`what`: of what, in words).
pub(crate) fn typed_instant(
    (day, time): (&str, &str),
    (day_field, time_field): (&str, &str),
    what: &str,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    let (day, time) = parsed(day, time);
    if day.is_none() {
        errors.push(FieldError::new(
            day_field,
            format!("Enter the date of {what} as a real date"),
        ));
    }
    if time.is_none() {
        errors.push(FieldError::new(
            time_field,
            format!("Enter the time of {what}, like 14:30"),
        ));
    }
    let (day, time) = (day?, time?);
    on_wall_clock(day, time, time_field, errors)
}

/// A date and a time typed together (`date_time`), or the one error at `field`; none when
/// both are blank.
pub(crate) fn typed_moment(
    (date, time): (&str, &str),
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    if date.is_empty() && time.is_empty() {
        return None;
    }
    match parsed(date, time) {
        (Some(day), Some(time)) => on_wall_clock(day, time, field, errors),
        _ => {
            errors.push(FieldError::new(
                field,
                "Enter a real date and a time, like 2026-03-10 and 14:30",
            ));
            None
        }
    }
}
