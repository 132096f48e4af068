//! The analyst's equity page (issue #21 part 5): the outcome report broken down by a
//! demographic, chosen with a GET form that works without JavaScript, as a table of each
//! group's headline figures. The figures and their suppression are the application's
//! ([`app::reports::Reporting::outcomes_by`]); a suppressed figure reads "suppressed".

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use app::reports::{Breakdown, BreakdownReport, ReportQuery};
use maud::{Markup, html};

use crate::pages::{error_summary, head, layout};
use crate::{Queried, failure, page, session};

/// The page's path.
pub(crate) const PATH: &str = "/console/reports/breakdown";

/// Its CSV file's path.
pub(crate) const CSV_PATH: &str = "/console/reports/breakdown.csv";

/// The breakdown page's routes: the page and its CSV file.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route(PATH, web::get().to(breakdown_page))
        .route(CSV_PATH, web::get().to(breakdown_csv));
}

/// What is asked: by what (default: age band).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub(crate) struct BreakdownForm {
    #[serde(default)]
    by: String,
}

fn code_of(by: Breakdown) -> String {
    serde_json::to_value(by)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The breakdown asked for (age band when none is), none for a code that is not one.
fn chosen(form: &BreakdownForm) -> Option<Breakdown> {
    if form.by.is_empty() {
        Some(Breakdown::AgeBand)
    } else {
        Breakdown::ALL
            .iter()
            .copied()
            .find(|b| code_of(*b) == form.by)
    }
}

/// The breakdown as a CSV file: the same figures and suppression as the page
/// ([`app::reports::Reporting::outcomes_by_csv`]).
async fn breakdown_csv((req, form, console): Queried<BreakdownForm>) -> HttpResponse {
    let session = signed_in!(req, console);
    let Some(by) = chosen(&form) else {
        return failure(
            Some(&session),
            &app::AppError::BadInput {
                field: "by",
                message: "choose what to break the report down by".into(),
            },
        );
    };
    match console
        .reports
        .outcomes_by_csv(
            &session.principal,
            &ReportQuery::default(),
            None,
            by,
            app::export::CsvOptions::default(),
        )
        .await
    {
        Ok(file) => crate::reports::download(file),
        Err(e) => failure(Some(&session), &e),
    }
}

async fn breakdown_page((req, form, console): Queried<BreakdownForm>) -> HttpResponse {
    let session = signed_in!(req, console);
    let Some(by) = chosen(&form) else {
        let errors = [crate::forms::FieldError::new(
            "by",
            "Choose what to break the report down by",
        )];
        let markup = layout(
            "Outcomes by group",
            Some(&session),
            html! {
                (error_summary(&errors))
                h1 class="nhsuk-heading-l" { "Outcomes by group" }
                (chooser(Breakdown::AgeBand))
            },
        );
        return page(StatusCode::UNPROCESSABLE_ENTITY, markup);
    };
    let report = match console
        .reports
        .outcomes_by(&session.principal, &ReportQuery::default(), None, by)
        .await
    {
        Ok(report) => report,
        Err(e) => return failure(Some(&session), &e),
    };
    page(
        StatusCode::OK,
        layout(
            "Outcomes by group",
            Some(&session),
            html! {
                h1 class="nhsuk-heading-l" { "Outcomes by group" }
                (crate::reports::reports_nav(None, &crate::reports::ReportForm::default()))
                p class="nhsuk-body" {
                    "The outcome report for each group of people, from the demographics recorded on their records. "
                    "People with none recorded, or whose personal data was erased, are counted as not recorded."
                }
                (chooser(by))
                (table(&report))
                p class="nhsuk-body" {
                    a id="breakdown-csv" href={(CSV_PATH) "?by=" (code_of(by))} download {
                        "Download these figures (CSV)"
                    }
                }
            },
        ),
    )
}

/// The GET form choosing the breakdown.
fn chooser(current: Breakdown) -> Markup {
    html! {
        form method="get" action=(PATH) novalidate {
            div class="nhsuk-form-group" {
                label class="nhsuk-label" for="by" { "Break the report down by" }
                select class="nhsuk-select" id="by" name="by" {
                    @for b in Breakdown::ALL {
                        option value=(code_of(*b)) selected[*b == current] { (b.label()) }
                    }
                }
            }
            button class="nhsuk-button" id="show-breakdown" type="submit" { "Show" }
        }
    }
}

fn figure(value: Option<i64>) -> String {
    value.map_or_else(|| "suppressed".to_owned(), |n| n.to_string())
}

fn table(report: &BreakdownReport) -> Markup {
    let columns = [
        report.by.label(),
        "Referrals",
        "People referred",
        "Episodes started",
        "Closed",
        "People with a paired measure",
        "Improved on any measure",
    ];
    html! {
        p class="nhsuk-body" {
            "Counted under rules version " (report.rules_version) ". Counts from 1 to "
            (report.suppression.below - 1) " are suppressed, and so is the next smallest group's "
            "count where one group's alone would be (" (report.suppression.cells) " cells)."
        }
        div class="nhsuk-table-container" role="region" aria-label={"Outcomes by " (report.by.label().to_lowercase())} tabindex="0" {
            table class="nhsuk-table" id="breakdown" {
                caption class="nhsuk-table__caption" { "Outcomes by " (report.by.label().to_lowercase()) }
                (head(&columns))
                tbody class="nhsuk-table__body" {
                    @for group in &report.groups {
                        @let r = &group.report;
                        tr class="nhsuk-table__row" {
                            th class="nhsuk-table__header" scope="row" { (group.label) }
                            @for value in [r.referrals.total, r.referrals.people, r.episodes.started,
                                           r.episodes.closed, r.people.paired, r.people.improved_on_any] {
                                td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (figure(value)) }
                            }
                        }
                    }
                }
            }
        }
    }
}
