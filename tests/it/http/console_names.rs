//! People by name on the console's lists: a link worker's caseload and a team lead's triage
//! queue name each person from the log (corrections applied), never from a read model, and
//! each name shown is in the read audit, for that person and no one else.

use serde_json::json;
use uuid::Uuid;

use super::console::signed_in_browser;
use super::journey::{client_path, open_case, referred, whole_journey};
use super::{Person, TestServer};

/// The people whose names `who` was shown on a list, as the read audit has them (purpose
/// direct care), with how often.
async fn names_shown(server: &TestServer, who: &Person) -> Vec<(Uuid, i64)> {
    let admin = server.db.admin_client().await;
    admin
        .query(
            "SELECT client_id, count(*) FROM record_reads WHERE staff_id = $1 \
             AND view = 'caseload' AND purpose_code = 'direct_care' \
             GROUP BY client_id ORDER BY client_id",
            &[&who.staff_id],
        )
        .await
        .expect("reads")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn caseloads_and_the_triage_queue_name_each_person_and_audit_each_name_shown() {
    let server = TestServer::start().await;
    let people = &server.people;
    let mine = open_case(&server).await;
    let theirs = open_case(&server).await;
    super::journey::assign(&server, theirs, &people.worker2).await;
    let (waiting, _) = referred(&server).await;

    // The worker puts the registered name right: the caseload shows the name as corrected.
    let journey = whole_journey(&server, mine, "").await;
    let registered = journey.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["event_type"] == "ClientRegistered")
        .expect("the registration")["event_id"]
        .clone();
    server
        .ok(
            &people.worker,
            &client_path(mine, "corrections"),
            json!({ "corrects": registered,
                    "corrected_fields": { "personal": { "given_name": "Margaret", "family_name": "Thornbury-Hale" } },
                    "reason": "she prefers her full name" }),
        )
        .await;
    server.catch_up().await;
    assert_eq!(names_shown(&server, &people.worker).await, []);

    let browser = signed_in_browser(&server, &people.worker).await;
    assert_eq!(browser.path().await, "/console/caseload");
    let rows = browser.texts("tbody tr").await;
    assert_eq!(rows.len(), 1, "only the worker's own case: {rows:?}");
    assert!(
        rows[0].starts_with("Margaret Thornbury-Hale"),
        "named as corrected: {rows:?}"
    );
    browser.assert_accessible("a caseload by name").await;
    // The one name shown was audited, once; the colleague's case and the waiting referral
    // were not shown and are not in the worker's audit.
    assert_eq!(names_shown(&server, &people.worker).await, [(mine, 1)]);

    // The name leads to the person's page.
    browser.click_and_wait("tbody tr a").await;
    assert_eq!(browser.path().await, format!("/console/people/{mine}"));
    assert_eq!(browser.text("h1").await, "Margaret Thornbury-Hale");

    // The team lead lands on the team's caseload: both of the team's cases, by name.
    let lead = signed_in_browser(&server, &people.lead).await;
    assert_eq!(lead.path().await, "/console/caseload");
    let team_rows = lead.texts("tbody tr").await;
    assert_eq!(team_rows.len(), 2, "{team_rows:?}");
    assert!(
        team_rows
            .iter()
            .any(|row| row.starts_with("Margaret Thornbury-Hale")),
        "{team_rows:?}"
    );
    let mut team = vec![(mine, 1), (theirs, 1)];
    team.sort();
    assert_eq!(names_shown(&server, &people.lead).await, team);

    // Their triage queue names the person waiting, and that name is audited too.
    lead.goto(&format!("{}/console/triage", server.base)).await;
    let waiting_rows = lead.texts("tbody tr").await;
    assert_eq!(waiting_rows.len(), 1, "{waiting_rows:?}");
    assert!(
        waiting_rows[0].starts_with("Maggie Thornbury"),
        "{waiting_rows:?}"
    );
    lead.assert_accessible("the triage queue by name").await;
    team.push((waiting, 1));
    team.sort();
    assert_eq!(names_shown(&server, &people.lead).await, team);

    // A lead of another team sees the referral no team has yet (any lead may triage it), but
    // not the first team's cases.
    let other = signed_in_browser(&server, &people.other_lead).await;
    assert_eq!(other.texts("tbody tr").await, Vec::<String>::new());
    other.goto(&format!("{}/console/triage", server.base)).await;
    assert_eq!(other.texts("tbody tr").await.len(), 1);
    assert_eq!(
        names_shown(&server, &people.other_lead).await,
        [(waiting, 1)]
    );

    // Another organisation's lead sees none of it, and is audited for none of it.
    let foreign = signed_in_browser(&server, &people.foreign_lead).await;
    foreign
        .goto(&format!("{}/console/triage", server.base))
        .await;
    assert_eq!(foreign.texts("tbody tr").await, Vec::<String>::new());
    assert_eq!(names_shown(&server, &people.foreign_lead).await, []);
}
