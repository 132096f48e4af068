//! An administrator's teams in a real browser: the organisation's teams with their members and
//! capacity, a team added, a member of staff added (refused field by field first), and nobody
//! else's teams shown or changed.

use uuid::Uuid;

use super::TestServer;
use super::console::{get, sign_in, signed_in_browser};

/// The organisation's staff rows named `name`: (role, team name, capacity, active).
async fn staff_named(
    server: &TestServer,
    name: &str,
) -> Vec<(String, Option<String>, Option<i32>, bool)> {
    let admin = server.db.admin_client().await;
    admin
        .query(
            "SELECT s.role, t.name, s.capacity, s.active FROM staff s \
             LEFT JOIN teams t ON t.team_id = s.team_id WHERE s.name = $1",
            &[&name],
        )
        .await
        .expect("staff")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// The teams page, insisting that Mendip East's row reads `figures` (members, link workers,
/// capacity); its rows.
async fn mendip_east_reads(
    browser: &crate::browser::Browser,
    base: &str,
    figures: [&str; 3],
) -> Vec<String> {
    browser.goto(&format!("{base}/console/admin/teams")).await;
    let rows = browser.texts("#teams-table tbody tr").await;
    let expected = [["Mendip", "East"].as_slice(), figures.as_slice()].concat();
    assert!(
        rows.iter()
            .any(|r| r.split_whitespace().collect::<Vec<_>>() == expected),
        "{rows:?}"
    );
    rows
}

#[tokio::test]
async fn an_administrator_sees_the_teams_and_adds_a_team_and_a_member_of_staff() {
    let server = TestServer::start().await;
    let people = &server.people;
    let browser = signed_in_browser(&server, &people.admin).await;
    browser
        .goto(&format!("{}/console/admin", server.base))
        .await;
    browser
        .click_and_wait("a[href='/console/admin/teams']")
        .await;
    assert_eq!(browser.path().await, "/console/admin/teams");
    let before = browser.texts("#teams-table tbody tr").await;
    assert!(!before.is_empty(), "the test organisation has teams");
    browser.assert_accessible("the teams page").await;

    // A team added, shown with nobody in it yet.
    browser.click("#team_name").await;
    browser.press("Mendip East").await;
    browser.click_and_wait("#add-team").await;
    assert_eq!(
        browser.text(".nhsuk-notification-banner__heading").await,
        "Team added"
    );
    let rows = browser.texts("#teams-table tbody tr").await;
    assert_eq!(rows.len(), before.len() + 1);
    assert!(
        rows.iter()
            .any(|r| r.split_whitespace().collect::<Vec<_>>() == ["Mendip", "East", "0", "0", "0"]),
        "{rows:?}"
    );

    // A member of staff sent wrong: each problem named, what was typed kept, nobody added.
    browser.click("#name").await;
    browser.press("Nia Worker").await;
    browser.click("#capacity").await;
    browser.press("lots").await;
    browser.click_and_wait("#add-staff").await;
    assert_eq!(
        browser.error_summary().await,
        [
            "Select the role",
            "Enter the capacity as a whole number of people a year, like 220"
        ]
    );
    assert_eq!(staff_named(&server, "Nia Worker").await, []);
    browser
        .assert_accessible("the staff form with errors")
        .await;

    // A link worker needs a team: the application says so, at the team field.
    browser.click("#role-link_worker").await;
    browser.click("#capacity").await;
    browser
        .press(&fantoccini::key::Key::Backspace.to_string().repeat(4))
        .await;
    browser.press("220").await;
    browser.click_and_wait("#add-staff").await;
    let problems = browser.error_summary().await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        browser.text(".nhsuk-error-summary__list a").await,
        problems[0]
    );
    assert!(
        browser
            .texts(".nhsuk-form-group--error select#team_id")
            .await
            .len()
            == 1,
        "the team field is the one marked"
    );
    assert_eq!(staff_named(&server, "Nia Worker").await, []);

    // Put right: added to the new team, and the new member's page says so.
    let team: uuid::Uuid = server
        .db
        .admin_client()
        .await
        .query_one("SELECT team_id FROM teams WHERE name = 'Mendip East'", &[])
        .await
        .expect("the new team")
        .get(0);
    browser.select("#team_id", &team.to_string()).await;
    browser.click_and_wait("#add-staff").await;
    assert!(browser.path().await.starts_with("/console/admin/staff/"));
    assert_eq!(
        browser.text(".nhsuk-notification-banner__heading").await,
        "Member of staff added"
    );
    assert_eq!(
        staff_named(&server, "Nia Worker").await,
        [(
            "link_worker".to_owned(),
            Some("Mendip East".to_owned()),
            Some(220),
            true
        )]
    );
    mendip_east_reads(&browser, &server.base, ["1", "1", "220"]).await;

    // A link worker with no capacity of their own counts at the caseload rules' default (225).
    browser.click("#name").await;
    browser.press("Oli Worker").await;
    browser.click("#role-link_worker").await;
    browser.select("#team_id", &team.to_string()).await;
    browser.click_and_wait("#add-staff").await;
    assert_eq!(
        browser.text(".nhsuk-notification-banner__heading").await,
        "Member of staff added"
    );
    let rows = mendip_east_reads(&browser, &server.base, ["2", "2", "445"]).await;

    // The same team again is the one there is: said so, and no second row.
    browser.click("#team_name").await;
    browser.press("Mendip East").await;
    browser.click_and_wait("#add-team").await;
    assert_eq!(
        browser.text(".nhsuk-notification-banner__heading").await,
        "That team already exists"
    );
    assert_eq!(
        browser.texts("#teams-table tbody tr").await.len(),
        rows.len()
    );

    // Nobody but an administrator has the page; another organisation's sees only its own.
    let worker = sign_in(&server, &people.worker).await;
    assert_eq!(get(&server, &worker, "/console/admin/teams").await.0, 403);
    let foreign = signed_in_browser(&server, &people.foreign_admin).await;
    foreign
        .goto(&format!("{}/console/admin/teams", server.base))
        .await;
    let theirs = foreign.texts("#teams-table tbody tr").await;
    assert!(
        theirs.iter().all(|r| !r.contains("Mendip East")),
        "{theirs:?}"
    );
}

/// The staff form sent twice (a double click, a resend) adds one member of staff; the same form
/// sent again with other details is refused at the name, and adds no one.
#[tokio::test]
async fn the_staff_form_sent_twice_adds_one_member_of_staff() {
    let server = TestServer::start().await;
    let session = sign_in(&server, &server.people.admin).await;
    let (status, page) = get(&server, &session, "/console/admin/teams").await;
    assert_eq!(status, 200);
    let (csrf, staff_id) = (
        super::console::hidden(&page, "csrf"),
        super::console::hidden(&page, "staff_id"),
    );
    let form = |name: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("staff_id", staff_id.clone()),
            ("name", name.to_owned()),
            ("role", "auditor".to_owned()),
        ]
    };
    let send = |name: &'static str| {
        let (server, session, fields) = (&server, &session, form(name));
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            super::console::post_page(server, session, "/console/admin/staff", None, &fields).await
        }
    };
    assert_eq!(send("Rhys Auditor").await.0, 303);
    assert_eq!(send("Rhys Auditor").await.0, 303);
    assert_eq!(
        staff_named(&server, "Rhys Auditor").await,
        [("auditor".to_owned(), None, None, true)]
    );
    let (status, page) = send("Rhys Auditer").await;
    assert_eq!(status, 422, "{page}");
    assert!(
        page.contains("This form already added a member of staff"),
        "{page}"
    );
    assert_eq!(staff_named(&server, "Rhys Auditer").await, []);
    // The form shown again draws a new account id: sent, it adds that one.
    assert_ne!(super::console::hidden(&page, "staff_id"), staff_id);

    // An account id that does not read is refused beside the name, adding no one (not
    // silently a fresh account), and the form comes back with one that reads.
    let fields = [
        ("csrf", csrf.as_str()),
        ("staff_id", "not-an-id"),
        ("name", "Tam Auditor"),
        ("role", "auditor"),
    ];
    let (status, page) =
        super::console::post_page(&server, &session, "/console/admin/staff", None, &fields).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("id=\"name-error\""), "{page}");
    assert!(page.contains("account id does not read"), "{page}");
    assert_eq!(staff_named(&server, "Tam Auditor").await, []);
    let redrawn = super::console::hidden(&page, "staff_id");
    assert!(Uuid::try_parse(&redrawn).is_ok(), "{redrawn}");
    server.stop().await;
}
