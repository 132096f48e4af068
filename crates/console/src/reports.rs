//! The reporting analyst's pages: the outcome report, the service-gap report, and two rule
//! versions' figures side by side, each for a period. Charts are drawn on the server, each
//! with a table of the same figures (which screen readers read); each report downloads as CSV.
//! The figures, their suppression and who may read them are the application's
//! ([`app::reports::Reporting`]).

use std::collections::BTreeMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use app::AppError;
use app::export::CsvFile;
use app::reports::{Comparison, GapReport, OutcomeReport, ReportQuery};
use app::sessions::ConsoleSession;
use maud::{Markup, html};

use crate::forms::FieldError;
use crate::pages::{
    bar_chart, decimal, error_for, error_message, error_summary, figure, group_class, head, layout,
    summary_row,
};
use crate::{Console, Queried, failure, page, session};

/// The reports' routes: each a page and a CSV file.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    for report in Report::ALL {
        for (path, csv) in [(report.path(), false), (report.csv_path(), true)] {
            config.route(
                path,
                web::get().to(move |asked: Queried<ReportForm>| async move {
                    if csv {
                        report_csv(asked, report).await
                    } else {
                        report_page(asked, report).await
                    }
                }),
            );
        }
    }
}

/// The three reports, each a page and a CSV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Report {
    Outcomes,
    Gaps,
    Compare,
}

impl Report {
    const ALL: [Report; 3] = [Report::Outcomes, Report::Gaps, Report::Compare];

    pub(crate) fn path(self) -> &'static str {
        match self {
            Report::Outcomes => "/console/reports",
            Report::Gaps => "/console/reports/gaps",
            Report::Compare => "/console/reports/compare",
        }
    }

    pub(crate) fn csv_path(self) -> &'static str {
        match self {
            Report::Outcomes => "/console/reports/outcomes.csv",
            Report::Gaps => "/console/reports/gaps.csv",
            Report::Compare => "/console/reports/compare.csv",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Report::Outcomes => "Outcome report",
            Report::Gaps => "Service gaps",
            Report::Compare => "Rule versions side by side",
        }
    }
}

/// A report's form, as asked (every field optional; `a` and `b` only for the comparison).
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
pub(crate) struct ReportForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    rules: String,
    #[serde(default)]
    a: String,
    #[serde(default)]
    b: String,
}

impl ReportForm {
    /// The form's fields as a query string (for the CSV link and the other reports' links).
    fn query_string(&self, report: Report) -> String {
        let mut fields = vec![("from", &self.from), ("to", &self.to)];
        if report == Report::Compare {
            fields.extend([("a", &self.a), ("b", &self.b)]);
        } else {
            fields.push(("rules", &self.rules));
        }
        serde_urlencoded::to_string(fields).unwrap_or_default()
    }
}

/// What the form asks for: the period, and the rule versions by field.
struct Asked {
    query: ReportQuery,
    rules: Option<i32>,
    a: Option<i32>,
    b: Option<i32>,
}

/// Reads the form: dates are days, versions are numbers; the rest is the application's.
fn asked(form: &ReportForm) -> Result<Asked, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut day = |field: &str, value: &str| {
        if value.is_empty() {
            return None;
        }
        let parsed = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").ok();
        if parsed.is_none() {
            errors.push(FieldError::new(field, "Enter a real date"));
        }
        parsed
    };
    let (from, to) = (day("from", &form.from), day("to", &form.to));
    let mut version = |field: &str, value: &str| {
        if value.is_empty() {
            return None;
        }
        let parsed = value.parse::<i32>().ok();
        if parsed.is_none() {
            errors.push(FieldError::new(
                field,
                "Enter a rule version as a number, like 3",
            ));
        }
        parsed
    };
    let (rules, a, b) = (
        version("rules", &form.rules),
        version("a", &form.a),
        version("b", &form.b),
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    let query = ReportQuery {
        from,
        to,
        ..Default::default()
    };
    Ok(Asked { query, rules, a, b })
}

/// A report's figures, as the application answered.
enum Figures {
    Outcomes(Box<OutcomeReport>),
    Gaps(GapReport),
    Compare(Box<Compared>),
    /// The comparison, not asked for particular versions, while there is only one: nothing is
    /// wrong, there is nothing to compare yet.
    NothingToCompare,
}

/// A comparison with each side's figures by name, as its table shows them.
struct Compared {
    comparison: Comparison,
    a: BTreeMap<String, f64>,
    b: BTreeMap<String, f64>,
}

/// The figures `report` asks for, or what to put right (the application's refusals of a
/// period or a version are shown at their field).
async fn figures(
    console: &Console,
    session: &ConsoleSession,
    report: Report,
    asked: &Asked,
    versions: &[i32],
) -> Result<Result<Figures, Vec<FieldError>>, AppError> {
    let principal = &session.principal;
    let query = &asked.query;
    // Unless asked, the comparison is of the newest two versions.
    let newest = |n: usize| versions.iter().rev().nth(n).copied();
    let answer = match report {
        Report::Outcomes => console
            .reports
            .outcomes(principal, query, asked.rules)
            .await
            .map(|r| Figures::Outcomes(Box::new(r))),
        Report::Gaps => console
            .reports
            .service_gaps(principal, query, asked.rules)
            .await
            .map(Figures::Gaps),
        Report::Compare => match (asked.a.or(newest(1)), asked.b.or(newest(0))) {
            (Some(a), Some(b)) => console
                .reports
                .compare(principal, query, a, b)
                .await
                .and_then(|comparison| {
                    Ok(Figures::Compare(Box::new(Compared {
                        a: app::reports::numbers(&comparison.a)?,
                        b: app::reports::numbers(&comparison.b)?,
                        comparison,
                    })))
                }),
            _ if asked.a.is_none() && asked.b.is_none() => Ok(Figures::NothingToCompare),
            _ => Err(AppError::BadInput {
                field: "a",
                message: "there is only one rule version: nothing to compare yet".into(),
            }),
        },
    };
    match answer {
        Ok(figures) => Ok(Ok(figures)),
        Err(AppError::BadInput { field, message }) => {
            Ok(Err(vec![FieldError::new(field, capitalise(&message))]))
        }
        Err(e) => Err(e),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A report's page: its form, then its figures or what to put right.
pub(crate) async fn report_page(
    (req, form, console): Queried<ReportForm>,
    report: Report,
) -> HttpResponse {
    let session = signed_in!(req, console);
    let versions = match console.reports.rule_versions(&session.principal).await {
        Ok(v) => v,
        Err(e) => return failure(Some(&session), &e),
    };
    let numbers: Vec<i32> = versions.iter().map(|v| v.rules_version).collect();
    let shown = match asked(&form) {
        Ok(asked) => match figures(&console, &session, report, &asked, &numbers).await {
            Ok(shown) => shown,
            Err(e) => return failure(Some(&session), &e),
        },
        Err(errors) => Err(errors),
    };
    let (status, errors, figures) = match &shown {
        Ok(figures) => (StatusCode::OK, &[][..], Some(figures)),
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, &errors[..], None),
    };
    let versions: Vec<(i32, String)> = versions
        .iter()
        .map(|v| (v.rules_version, v.state.to_string()))
        .collect();
    page(
        status,
        render(&session, report, &form, &versions, errors, figures),
    )
}

/// A report as a CSV file: the same figures as its page.
pub(crate) async fn report_csv(
    (req, form, console): Queried<ReportForm>,
    report: Report,
) -> HttpResponse {
    let session = signed_in!(req, console);
    let Ok(asked) = asked(&form) else {
        return failure(
            Some(&session),
            &AppError::BadInput {
                field: "from",
                message: "the report's form does not read: go back to it".into(),
            },
        );
    };
    let (principal, query, options) = (
        &session.principal,
        &asked.query,
        app::export::CsvOptions::default(),
    );
    let file = match report {
        Report::Outcomes => {
            console
                .reports
                .outcomes_csv(principal, query, asked.rules, options)
                .await
        }
        Report::Gaps => {
            console
                .reports
                .service_gaps_csv(principal, query, asked.rules, options)
                .await
        }
        Report::Compare => match (asked.a, asked.b) {
            (Some(a), Some(b)) => {
                console
                    .reports
                    .compare_csv(principal, query, a, b, options)
                    .await
            }
            _ => Err(AppError::BadInput {
                field: "a",
                message: "name both rule versions".into(),
            }),
        },
    };
    match file {
        Ok(file) => download(file),
        Err(e) => failure(Some(&session), &e),
    }
}

pub(crate) fn download(file: CsvFile) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", file.filename),
        ))
        .insert_header(("cache-control", "no-store"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(file.bytes)
}

fn render(
    who: &ConsoleSession,
    report: Report,
    form: &ReportForm,
    versions: &[(i32, String)],
    errors: &[FieldError],
    figures: Option<&Figures>,
) -> Markup {
    layout(
        report.title(),
        Some(who),
        html! {
            @if !errors.is_empty() { (error_summary(errors)) }
            h1 class="nhsuk-heading-l" { (report.title()) }
            (reports_nav(Some(report), form))
            (period_form(report, form, versions, errors))
            @match figures {
                Some(Figures::Outcomes(r)) => (outcomes(r, &form.query_string(report))),
                Some(Figures::Gaps(r)) => (gaps(r, &form.query_string(report))),
                Some(Figures::Compare(c)) => (comparison(c, form)),
                Some(Figures::NothingToCompare) => {
                    div class="nhsuk-inset-text" id="nothing-to-compare" {
                        span class="nhsuk-u-visually-hidden" { "Information: " }
                        p { "There is only one version of the counting rules, so there is nothing to compare yet. "
                            "When the rules change, this page shows each figure under both versions, side by side." }
                    }
                }
                None => {}
            }
        },
    )
}

/// Links between the reports, for the same period: the three of this module and the outcomes
/// by group (`current` none: that one is shown).
pub(crate) fn reports_nav(current: Option<Report>, form: &ReportForm) -> Markup {
    html! {
        nav class="nhsuk-contents-list" aria-label="Reports" {
            ol class="nhsuk-contents-list__list" {
                @for report in Report::ALL {
                    @if Some(report) == current {
                        li class="nhsuk-contents-list__item" aria-current="page" {
                            span class="nhsuk-contents-list__current" { (report.title()) }
                        }
                    } @else {
                        li class="nhsuk-contents-list__item" {
                            a class="nhsuk-contents-list__link" href={(report.path()) "?" (form.query_string(report))} { (report.title()) }
                        }
                    }
                }
                @if current.is_none() {
                    li class="nhsuk-contents-list__item" aria-current="page" {
                        span class="nhsuk-contents-list__current" { "Outcomes by group" }
                    }
                } @else {
                    li class="nhsuk-contents-list__item" {
                        a class="nhsuk-contents-list__link" id="nav-breakdown" href=(crate::equity::PATH) { "Outcomes by group" }
                    }
                }
            }
        }
    }
}

/// The period, and the rule version (two for the comparison), as a GET form.
fn period_form(
    report: Report,
    form: &ReportForm,
    versions: &[(i32, String)],
    errors: &[FieldError],
) -> Markup {
    let date = |name: &str, label: &str, value: &str| {
        let error = error_for(errors, name);
        html! {
            div class=(group_class(error)) {
                label class="nhsuk-label" for=(name) { (label) }
                (error_message(error))
                input class="nhsuk-input nhsuk-input--width-10" id=(name) name=(name) type="date" value=(value)
                    aria-describedby=[error.map(|_| format!("{name}-error"))];
            }
        }
    };
    let version = |name: &str, label: &str, value: &str| {
        let error = error_for(errors, name);
        let known: Vec<String> = versions
            .iter()
            .map(|(v, state)| format!("{v} ({state})"))
            .collect();
        html! {
            div class=(group_class(error)) {
                label class="nhsuk-label" for=(name) { (label) }
                div class="nhsuk-hint" id={(name) "-hint"} { "Versions with figures: " (known.join(", ")) }
                (error_message(error))
                input class="nhsuk-input nhsuk-input--width-4" id=(name) name=(name) type="text" inputmode="numeric"
                    value=(value) aria-describedby={(name) "-hint" @if error.is_some() { " " (name) "-error" }};
            }
        }
    };
    html! {
        form method="get" action=(report.path()) novalidate {
            (date("from", "From (optional)", &form.from))
            (date("to", "To (optional)", &form.to))
            @if report == Report::Compare {
                (version("a", "Rule version A (optional: the one before the newest)", &form.a))
                (version("b", "Rule version B (optional: the newest)", &form.b))
            } @else {
                (version("rules", "Rule version (optional: the one in use)", &form.rules))
            }
            button class="nhsuk-button" id="show-report" type="submit" { "Show the report" }
        }
    }
}

/// Under which rules, what is suppressed, and the CSV link.
fn counted_under(rules_version: i32, suppression: &app::reports::Suppression, csv: &str) -> Markup {
    html! {
        p class="nhsuk-body" {
            "Counted under rules version " (rules_version) ". "
            @if suppression.below > 1 {
                "Counts from 1 to " (suppression.below - 1) " are suppressed ("
                (suppression.cells) @if suppression.cells == 1 { " cell). " } @else { " cells). " }
            }
            a href=(csv) download { "Download these figures (CSV)" }
        }
    }
}

fn cell(value: &str) -> Markup {
    html! { td class="nhsuk-table__cell" { (value) } }
}

fn numeric(value: &str) -> Markup {
    html! { td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (value) } }
}

/// A table with a visually hidden caption, `columns` (see [`head`]) and `rows` of cells.
fn table(id: &str, caption: &str, columns: &[&str], rows: Markup) -> Markup {
    html! {
        div class="nhsuk-table-container" role="region" aria-label=(caption) tabindex="0" {
            table class="nhsuk-table" id=(id) {
                caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { (caption) }
                (head(columns))
                tbody class="nhsuk-table__body" { (rows) }
            }
        }
    }
}

fn outcomes(report: &OutcomeReport, query: &str) -> Markup {
    let bars: Vec<(String, Option<i64>)> = report
        .referrals
        .by_source
        .iter()
        .map(|s| (crate::pages::code_words(&s.code), s.count))
        .collect();
    html! {
        (counted_under(report.rules_version, &report.suppression, &format!("{}?{query}", Report::Outcomes.csv_path())))
        h2 class="nhsuk-heading-m" id="referrals" { "Referrals" }
        dl class="nhsuk-summary-list" {
            (summary_row("Referrals", &figure(report.referrals.total)))
            (summary_row("People referred", &figure(report.referrals.people)))
            (summary_row("Accepted", &figure(report.referrals.accepted)))
            (summary_row("Declined", &figure(report.referrals.declined)))
            (summary_row("Redirected", &figure(report.referrals.redirected)))
        }
        h3 class="nhsuk-heading-s" id="by-source" { "Referrals by source" }
        (bar_chart("by-source-chart", "Referrals by source (the table below has the same figures)", &bars))
        (table("by-source-table", "Referrals by source", &["Source", "#Referrals", "#Per cent"], html! {
            @for share in &report.referrals.by_source {
                tr class="nhsuk-table__row" {
                    (cell(&crate::pages::code_words(&share.code)))
                    (numeric(&figure(share.count)))
                    (numeric(&decimal(share.percent)))
                }
            }
        }))
        h2 class="nhsuk-heading-m" id="measures" { "Wellbeing, baseline to follow-up" }
        (table("measures-table", "Change by measure", &["Measure", "#People paired", "#Mean baseline", "#Mean follow-up", "#Improved %"], html! {
            @for m in &report.measures {
                tr class="nhsuk-table__row" {
                    (cell(&crate::pages::code_words(&m.measure)))
                    (numeric(&figure(m.paired)))
                    (numeric(&decimal(m.mean_baseline)))
                    (numeric(&decimal(m.mean_follow_up)))
                    (numeric(&decimal(m.improved_percent)))
                }
            }
        }))
    }
}

/// Gaps by need: the shown counts summed (a suppressed cell adds nothing, so no total gives
/// a suppressed count away), largest first.
fn gaps_by_need(report: &GapReport) -> Vec<(String, Option<i64>)> {
    let mut needs: std::collections::BTreeMap<&str, Option<i64>> = Default::default();
    for gap in &report.gaps {
        let total = needs.entry(gap.need.as_str()).or_default();
        if let Some(count) = gap.count {
            *total = Some(total.unwrap_or(0) + count);
        }
    }
    let mut bars: Vec<(String, Option<i64>)> = needs
        .into_iter()
        .map(|(need, count)| (crate::pages::code_words(need), count))
        .collect();
    bars.sort_by_key(|(_, count)| std::cmp::Reverse(count.unwrap_or(0)));
    bars
}

fn gaps(report: &GapReport, query: &str) -> Markup {
    let by_need = gaps_by_need(report);
    let area = |code: &str, name: &Option<String>| name.clone().unwrap_or_else(|| code.to_owned());
    html! {
        (counted_under(report.rules_version, &report.suppression, &format!("{}?{query}", Report::Gaps.csv_path())))
        h2 class="nhsuk-heading-m" id="gaps" { "Needs no service could meet" }
        @if report.gaps.is_empty() {
            p class="nhsuk-body" id="no-gaps" { "No service gaps were recorded in this period." }
        } @else {
            (bar_chart("gaps-chart", "Service gaps by need, the shown counts summed (the table below has the same figures)", &by_need))
            (table("gaps-by-need-table", "Service gaps by need", &["Need", "#Gaps shown"], html! {
                @for (need, count) in &by_need {
                    tr class="nhsuk-table__row" { (cell(need)) (numeric(&figure(*count))) }
                }
            }))
            h3 class="nhsuk-heading-s" id="gap-detail" { "By area, month and reason" }
            (table("gaps-table", "Service gaps by need, area, month and reason", &["Need", "Area", "Month", "Reason", "#Gaps"], html! {
                @for gap in &report.gaps {
                    tr class="nhsuk-table__row" {
                        (cell(&crate::pages::code_words(&gap.need)))
                        (cell(&area(&gap.area, &gap.area_name)))
                        (cell(&gap.month.format("%B %Y").to_string()))
                        (cell(&gap.reason.replace('_', " ")))
                        (numeric(&figure(gap.count)))
                    }
                }
            }))
        }
        h2 class="nhsuk-heading-m" id="connections" { "What came of onward connections" }
        @if report.connections.is_empty() {
            p class="nhsuk-body" id="no-connections" { "No onward connections were made in this period." }
        } @else {
        (table("connections-table", "Onward connections by service and need", &["Service", "Need", "#Made", "#Not taken up", "#Waiting list", "#Declined", "#Mean wait (weeks)", "#Accepted by the service", "#Declined by the service", "#Started with the service"], html! {
            @for c in &report.connections {
                tr class="nhsuk-table__row" {
                    (cell(c.service_name.as_deref().unwrap_or("(no longer listed)")))
                    (cell(&crate::pages::code_words(&c.need)))
                    (numeric(&figure(c.made)))
                    (numeric(&figure(c.not_taken_up)))
                    (numeric(&figure(c.waiting_list)))
                    (numeric(&figure(c.declined)))
                    (numeric(&decimal(c.mean_waiting_weeks)))
                    (numeric(&figure(c.accepted_by_service)))
                    (numeric(&figure(c.declined_by_service)))
                    (numeric(&figure(c.started_with_service)))
                }
            }
        }))
        }
        h2 class="nhsuk-heading-m" id="capacity" { "The directory's capacity now" }
        (table("capacity-table", "Listed services by need and area", &["Need", "Area", "#Services", "#Taking referrals", "#Waiting list", "#Not taking referrals"], html! {
            @for c in &report.capacity {
                tr class="nhsuk-table__row" {
                    (cell(&crate::pages::code_words(&c.need)))
                    (cell(&area(&c.area, &c.area_name)))
                    (numeric(&c.services.to_string()))
                    (numeric(&c.open.to_string()))
                    (numeric(&c.waiting_list.to_string()))
                    (numeric(&c.not_taking_referrals.to_string()))
                }
            }
        }))
    }
}

fn comparison(compared: &Compared, form: &ReportForm) -> Markup {
    let c = &compared.comparison;
    let (a, b) = (c.a.rules_version, c.b.rules_version);
    let asked = ReportForm {
        a: a.to_string(),
        b: b.to_string(),
        ..form.clone()
    };
    let csv = format!(
        "{}?{}",
        Report::Compare.csv_path(),
        asked.query_string(Report::Compare)
    );
    let (numbers_a, numbers_b) = (&compared.a, &compared.b);
    let shown = |n: Option<&f64>| n.map_or_else(|| "–".to_owned(), |v| trim(*v));
    html! {
        p class="nhsuk-body" {
            "Version " (a) " beside version " (b) ", both suppressed before they are compared. "
            a href=(csv) download { "Download the comparison (CSV)" }
        }
        h2 class="nhsuk-heading-m" id="differences" {
            @match c.differences.len() {
                0 => { "No figure differs" }
                1 => { "1 figure differs" }
                n => { (n) " figures differ" }
            }
        }
        @if !c.differences.is_empty() {
            (table("differences-table", "Figures that differ between the versions", &["Figure", &format!("#Version {a}"), &format!("#Version {b}")], html! {
                @for d in &c.differences {
                    tr class="nhsuk-table__row" {
                        (cell(&d.figure))
                        (numeric(&d.a.map_or_else(|| "–".to_owned(), trim)))
                        (numeric(&d.b.map_or_else(|| "–".to_owned(), trim)))
                    }
                }
            }))
        }
        h2 class="nhsuk-heading-m" id="all-figures" { "Every figure" }
        (table("figures-table", "Every figure under both versions", &["Figure", &format!("#Version {a}"), &format!("#Version {b}")], html! {
            @for figure in numbers_a.keys().chain(numbers_b.keys().filter(|k| !numbers_a.contains_key(*k))) {
                tr class="nhsuk-table__row" {
                    (cell(figure))
                    (numeric(&shown(numbers_a.get(figure))))
                    (numeric(&shown(numbers_b.get(figure))))
                }
            }
        }))
    }
}

/// A figure as a person writes it: whole numbers without a decimal point.
fn trim(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}
