//! The team lead's workload page: each link worker's open cases, referrals waiting and people
//! this year against their capacity, as a chart and the same figures as a table. The figures
//! and who may read them are the application's ([`app::CaseService::team_workload`]).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use app::AppError;
use app::Denied;
use app::caseload::TeamWorkload;
use app::sessions::ConsoleSession;
use maud::{Markup, html};

use crate::pages::{bar_chart_to, head, layout, moment};
use crate::{Console, failure, page, session};

pub(crate) async fn workload(req: HttpRequest, console: web::Data<Console>) -> HttpResponse {
    let session = signed_in!(req, console);
    let Some(team) = session.triage_team() else {
        return failure(
            Some(&session),
            &AppError::Denied(Denied::Forbidden(
                "only a team lead reads their team's workload".into(),
            )),
        );
    };
    match console
        .cases
        .team_workload(&session.principal, team, None)
        .await
    {
        Ok(load) => page(StatusCode::OK, render(&session, &load)),
        Err(e) => failure(Some(&session), &e),
    }
}

fn render(who: &ConsoleSession, load: &TeamWorkload) -> Markup {
    // The chart draws whole percentages; the table gives them to one place.
    let bars: Vec<(String, Option<i64>)> = load
        .workers
        .iter()
        .map(|w| (w.name.clone(), Some(w.percent_of_capacity.round() as i64)))
        .collect();
    layout(
        "Team workload",
        Some(who),
        html! {
            h1 class="nhsuk-heading-l" { "Team workload" }
            p class="nhsuk-body" {
                "People supported in the year to " (moment(load.computed_at))
                ", against each link worker's capacity for a year (caseload rules version "
                (load.rules_version) ")."
            }
            @if load.workers.is_empty() {
                p class="nhsuk-body" { "The team has no active link workers." }
            } @else {
                (bar_chart_to("workload-chart", "Per cent of capacity used this year, by link worker, on a scale to 100 (the table below has the same figures)", &bars, 100))
                div class="nhsuk-table-container" role="region" aria-label="Workload by link worker" tabindex="0" {
                    table class="nhsuk-table" id="workload-table" {
                        caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "Workload by link worker" }
                        (head(&["Link worker", "#Open cases", "#Referrals waiting", "#People this year", "#Capacity", "#Per cent of capacity"]))
                        tbody class="nhsuk-table__body" {
                            @for w in &load.workers {
                                tr class="nhsuk-table__row" {
                                    td class="nhsuk-table__cell" { (w.name) }
                                    td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (w.open) }
                                    td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (w.referred) }
                                    td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (w.people_this_year) }
                                    td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (w.capacity) }
                                    td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (format!("{:.1}", w.percent_of_capacity)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
