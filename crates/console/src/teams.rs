//! An administrator's teams: each team with its active members, link workers and their
//! capacity between them; a team added; a member of staff added (to a team, with a role and a
//! capacity), who then signs in with single sign-on or a link. Who may do each, and what a
//! name, role, team or capacity must be, is the application's ([`app::admin::Admin`]).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use app::AppError;
use app::access::{AccessError, Role};
use app::admin::{NewStaffRequest, NewTeamRequest, TeamSummary};
use app::sessions::ConsoleSession;
use maud::{Markup, html};
use uuid::Uuid;

use crate::forms::{FieldError, text};
use crate::pages::{
    capitalise, csrf_field, error_for, error_message, error_summary, group_class, head, layout,
    success,
};
use crate::{Console, failure, form_session, forms, page, see_other, session};

/// The routes: the teams page and its two forms.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/console/admin/teams", web::get().to(teams_page))
        .route("/console/admin/teams", web::post().to(add_team))
        .route("/console/admin/staff", web::post().to(add_staff));
}

/// What the two forms held as typed.
#[derive(Default)]
struct Entered {
    team_name: String,
    /// The new account's id, drawn when the staff form is first shown and kept while it is put
    /// right: the form sent twice adds one account.
    staff_id: String,
    name: String,
    role: String,
    team_id: String,
    capacity: String,
}

impl Entered {
    fn from_fields(fields: &HashMap<String, String>) -> Entered {
        Entered {
            team_name: text(fields, "team_name"),
            staff_id: text(fields, "staff_id"),
            name: text(fields, "name"),
            role: text(fields, "role"),
            team_id: text(fields, "team_id"),
            capacity: text(fields, "capacity"),
        }
    }

    /// The staff account the form asks for, or what to put right.
    fn staff(&self) -> Result<NewStaffRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        // Drawn by the page (none: the service draws one); anything else was not drawn here.
        let staff_id = match self.staff_id.as_str() {
            "" => None,
            id => {
                let id = Uuid::try_parse(id).ok();
                if id.is_none() {
                    errors.push(FieldError::new(
                        "name",
                        "This form's account id does not read: check the details and add again",
                    ));
                }
                id
            }
        };
        let role = self.role.parse::<Role>().ok();
        if role.is_none() {
            errors.push(FieldError::new("role", "Select the role"));
        }
        let team_id = if self.team_id.is_empty() {
            None
        } else {
            let id = Uuid::try_parse(&self.team_id).ok();
            if id.is_none() {
                errors.push(FieldError::new("team_id", "Select a team from the list"));
            }
            id
        };
        let capacity = if self.capacity.is_empty() {
            None
        } else {
            let n = self.capacity.parse::<i32>().ok();
            if n.is_none() {
                errors.push(FieldError::new(
                    "capacity",
                    "Enter the capacity as a whole number of people a year, like 220",
                ));
            }
            n
        };
        match role {
            Some(role) if errors.is_empty() => Ok(NewStaffRequest {
                staff_id,
                name: self.name.clone(),
                role,
                team_id,
                capacity,
            }),
            _ => Err(errors),
        }
    }
}

#[derive(serde::Deserialize)]
struct Done {
    done: Option<String>,
}

/// The application's refusal of a form as the field it names, when it names one.
fn refused(
    error: AppError,
    field_of: impl Fn(&str) -> &'static str,
) -> Result<FieldError, AppError> {
    match error {
        AppError::Access(AccessError::Invalid { field, message }) => {
            Ok(FieldError::new(field_of(field), capitalise(&message)))
        }
        other => Err(other),
    }
}

async fn teams_page(
    req: HttpRequest,
    done: web::Query<Done>,
    console: web::Data<Console>,
) -> HttpResponse {
    let session = signed_in!(req, console);
    let banner = match done.done.as_deref() {
        Some("team") => Some("Team added"),
        Some("team_exists") => Some("That team already exists"),
        _ => None,
    };
    show(&console, &session, &Entered::default(), &[], banner).await
}

/// The page, with what was typed and what to put right.
async fn show(
    console: &Console,
    session: &ConsoleSession,
    entered: &Entered,
    errors: &[FieldError],
    banner: Option<&str>,
) -> HttpResponse {
    match console.admin.teams(&session.principal).await {
        Ok(teams) => {
            let status = if errors.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            page(status, render(session, &teams, entered, errors, banner))
        }
        Err(e) => failure(Some(session), &e),
    }
}

async fn add_team(req: HttpRequest, body: web::Bytes, console: web::Data<Console>) -> HttpResponse {
    let (fields, session) = posted_form!(req, console, body);
    let entered = Entered::from_fields(&fields);
    let request = NewTeamRequest {
        name: entered.team_name.clone(),
    };
    // A name already taken is that team (a form sent twice, or a colleague first): said so.
    let known = match console.admin.teams(&session.principal).await {
        Ok(teams) => teams.iter().any(|t| t.name == request.name.trim()),
        Err(e) => return failure(Some(&session), &e),
    };
    match console.admin.add_team(&session.principal, &request).await {
        Ok(_) if known => see_other("/console/admin/teams?done=team_exists"),
        Ok(_) => see_other("/console/admin/teams?done=team"),
        Err(e) => match refused(e, |_| "team_name") {
            Ok(error) => show(&console, &session, &entered, &[error], None).await,
            Err(e) => failure(Some(&session), &e),
        },
    }
}

async fn add_staff(
    req: HttpRequest,
    body: web::Bytes,
    console: web::Data<Console>,
) -> HttpResponse {
    let (fields, session) = posted_form!(req, console, body);
    let entered = Entered::from_fields(&fields);
    let request = match entered.staff() {
        Ok(r) => r,
        Err(errors) => return show(&console, &session, &entered, &errors, None).await,
    };
    match console.admin.add_staff(&session.principal, &request).await {
        Ok(member) => see_other(&format!(
            "/console/admin/staff/{}?done=added",
            member.staff_id
        )),
        // The form sent again once its account was added with other details (back, changed,
        // sent): a new form adds another.
        Err(AppError::Access(AccessError::Conflict { .. })) => {
            let fresh = Entered {
                staff_id: String::new(),
                ..entered
            };
            let error = FieldError::new(
                "name",
                "This form already added a member of staff: check the details and add again",
            );
            show(&console, &session, &fresh, &[error], None).await
        }
        Err(e) => {
            let field_of = |field: &str| match field {
                "team_id" => "team_id",
                "capacity" => "capacity",
                "role" => "role",
                _ => "name",
            };
            match refused(e, field_of) {
                Ok(error) => show(&console, &session, &entered, &[error], None).await,
                Err(e) => failure(Some(&session), &e),
            }
        }
    }
}

/// The staff form's account id: drawn now for a new form (or one whose id does not read), the
/// one it had while it is put right.
fn staff_id_field(entered: &Entered) -> Markup {
    let staff_id = match Uuid::try_parse(&entered.staff_id) {
        Ok(id) => id.to_string(),
        Err(_) => Uuid::now_v7().to_string(),
    };
    html! { input type="hidden" name="staff_id" value=(staff_id); }
}

fn render(
    who: &ConsoleSession,
    teams: &[TeamSummary],
    entered: &Entered,
    errors: &[FieldError],
    banner: Option<&str>,
) -> Markup {
    let title = "Teams";
    layout(
        title,
        Some(who),
        html! {
            @if let Some(banner) = banner { (success(banner)) }
            @if !errors.is_empty() { (error_summary(errors)) }
            h1 class="nhsuk-heading-l" { (title) }
            @if teams.is_empty() {
                p class="nhsuk-body" { "The organisation has no teams yet." }
            } @else {
                div class="nhsuk-table-container" role="region" aria-label="The organisation's teams" tabindex="0" {
                    table class="nhsuk-table" id="teams-table" {
                        caption class="nhsuk-table__caption nhsuk-u-visually-hidden" { "The organisation's teams" }
                        (head(&["Team", "#Active staff", "#Link workers", "#Capacity (people a year)"]))
                        tbody class="nhsuk-table__body" {
                            @for team in teams {
                                tr class="nhsuk-table__row" {
                                    td class="nhsuk-table__cell" { (team.name) }
                                    td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (team.members) }
                                    td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (team.link_workers) }
                                    td class="nhsuk-table__cell nhsuk-table__cell--numeric" { (team.capacity) }
                                }
                            }
                        }
                    }
                }
            }
            h2 class="nhsuk-heading-m" { "Add a team" }
            form method="post" action="/console/admin/teams" novalidate {
                (csrf_field(who))
                @let error = error_for(errors, "team_name");
                div class=(group_class(error)) {
                    label class="nhsuk-label" for="team_name" { "Team name" }
                    (error_message(error))
                    input class="nhsuk-input nhsuk-input--width-20" id="team_name" name="team_name" type="text"
                        value=(entered.team_name) autocomplete="off";
                }
                button class="nhsuk-button" id="add-team" type="submit" { "Add team" }
            }
            h2 class="nhsuk-heading-m" { "Add a member of staff" }
            form method="post" action="/console/admin/staff" novalidate {
                (csrf_field(who))
                (staff_id_field(entered))
                @let error = error_for(errors, "name");
                div class=(group_class(error)) {
                    label class="nhsuk-label" for="name" { "Full name" }
                    (error_message(error))
                    input class="nhsuk-input nhsuk-input--width-20" id="name" name="name" type="text"
                        value=(entered.name) autocomplete="off";
                }
                @let error = error_for(errors, "role");
                div class=(group_class(error)) {
                    fieldset class="nhsuk-fieldset" {
                        legend class="nhsuk-fieldset__legend nhsuk-fieldset__legend--s" { "Role" }
                        (error_message(error))
                        div class="nhsuk-radios" {
                            @for (i, role) in app::admin::roles().iter().enumerate() {
                                @let code = role.as_str();
                                @let id = if i == 0 { "role".to_owned() } else { format!("role-{code}") };
                                div class="nhsuk-radios__item" {
                                    input class="nhsuk-radios__input" id=(id) name="role" type="radio" value=(code)
                                        checked[entered.role == code];
                                    label class="nhsuk-label nhsuk-radios__label" for=(id) { (capitalise(&code.replace('_', " "))) }
                                }
                            }
                        }
                    }
                }
                @let error = error_for(errors, "team_id");
                div class=(group_class(error)) {
                    label class="nhsuk-label" for="team_id" { "Team (link workers and team leads)" }
                    (error_message(error))
                    select class="nhsuk-select" id="team_id" name="team_id" {
                        option value="" { "No team" }
                        @for team in teams {
                            @let id = team.team_id.to_string();
                            option value=(id) selected[entered.team_id == id] { (team.name) }
                        }
                    }
                }
                @let error = error_for(errors, "capacity");
                div class=(group_class(error)) {
                    label class="nhsuk-label" for="capacity" { "Capacity: people a year (link workers)" }
                    div class="nhsuk-hint" id="capacity-hint" { "NHS guidance is 200 to 250 for a full-time link worker." }
                    (error_message(error))
                    input class="nhsuk-input nhsuk-input--width-4" id="capacity" name="capacity" type="text"
                        inputmode="numeric" aria-describedby="capacity-hint" value=(entered.capacity);
                }
                button class="nhsuk-button" id="add-staff" type="submit" { "Add member of staff" }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::filled;

    #[test]
    fn a_staff_form_reads_or_names_every_field_to_put_right() {
        let entered = Entered::from_fields(&filled(&[
            ("name", "Nia Worker"),
            ("role", "link_worker"),
            ("team_id", "4b0f1d7e-0000-4000-8000-000000000001"),
            ("capacity", " 220 "),
        ]));
        let request = entered.staff().expect("reads");
        assert_eq!(request.staff_id, None, "none drawn: the service draws one");
        assert_eq!(request.role.as_str(), "link_worker");
        assert_eq!(request.capacity, Some(220));
        assert!(request.team_id.is_some());

        let wrong = Entered::from_fields(&filled(&[
            ("name", "Nia Worker"),
            ("role", "superuser"),
            ("team_id", "the blue team"),
            ("capacity", "lots"),
        ]));
        let errors = wrong.staff().expect_err("three fields to put right");
        let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["role", "team_id", "capacity"]);
    }

    #[test]
    fn a_staff_form_whose_account_id_does_not_read_is_refused_at_the_name() {
        let entered = Entered::from_fields(&filled(&[
            ("staff_id", "not-an-id"),
            ("name", "Nia Worker"),
            ("role", "auditor"),
        ]));
        let errors = entered.staff().expect_err("the id does not read");
        let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["name"]);
        assert!(errors[0].message.contains("account id"), "{errors:?}");
        // Shown again, the form draws an id that reads.
        let field = staff_id_field(&entered).into_string();
        assert!(!field.contains("not-an-id"), "{field}");
        let drawn = field
            .split("value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a value");
        assert!(Uuid::try_parse(drawn).is_ok(), "{drawn}");
    }

    #[test]
    fn the_staff_form_names_the_account_it_adds_so_sent_twice_it_adds_one() {
        let id = "0193b0c4-0000-7000-8000-000000000001";
        let entered = Entered::from_fields(&filled(&[
            ("staff_id", id),
            ("name", "Nia Worker"),
            ("role", "auditor"),
        ]));
        assert_eq!(
            entered.staff().expect("reads").staff_id,
            Some(Uuid::parse_str(id).expect("an id"))
        );
        // Drawn for a new form, a new one each time; kept while the form is put right.
        let value = |field: Markup| {
            let field = field.into_string();
            field
                .split("value=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_owned)
                .expect("a value")
        };
        let drawn = value(staff_id_field(&Entered::default()));
        assert!(Uuid::try_parse(&drawn).is_ok(), "{drawn}");
        assert_ne!(value(staff_id_field(&Entered::default())), drawn);
        let kept = Entered {
            staff_id: drawn.clone(),
            ..Entered::default()
        };
        assert_eq!(value(staff_id_field(&kept)), drawn);
    }
}
