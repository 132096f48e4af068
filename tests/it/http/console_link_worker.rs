//! A person's page names the link worker who holds the case, for the link worker themself as
//! for their team lead (it said "Assigned" to the link worker).

use uuid::Uuid;

use super::console::{get, sign_in};
use super::journey::open_case;
use super::{Person, TestServer};

/// What the summary row `key` of a person's page says.
fn summary_value(page: &str, key: &str) -> String {
    let row = format!("<dt class=\"nhsuk-summary-list__key\">{key}</dt>");
    let at = page
        .find(&row)
        .unwrap_or_else(|| panic!("no {key} row: {page}"))
        + row.len();
    let value = &page[at..];
    let start = value.find('>').expect("the value") + 1;
    value[start..]
        .split('<')
        .next()
        .expect("a value")
        .to_owned()
}

async fn staff_name(server: &TestServer, who: &Person) -> String {
    let admin = server.db.admin_client().await;
    admin
        .query_one(
            "SELECT name FROM staff WHERE staff_id = $1",
            &[&who.staff_id],
        )
        .await
        .expect("a name")
        .get(0)
}

async fn link_worker_shown(server: &TestServer, who: &Person, client: Uuid) -> String {
    let session = sign_in(server, who).await;
    let (status, page) = get(server, &session, &format!("/console/people/{client}")).await;
    assert_eq!(status, 200, "{page}");
    summary_value(&page, "Link worker")
}

#[tokio::test]
async fn the_link_worker_sees_their_own_name_on_their_persons_page_as_the_lead_does() {
    let server = TestServer::start().await;
    let client = open_case(&server).await;
    server.catch_up().await;
    let name = staff_name(&server, &server.people.worker).await;
    assert!(!name.is_empty());
    assert_eq!(
        link_worker_shown(&server, &server.people.worker, client).await,
        name
    );
    assert_eq!(
        link_worker_shown(&server, &server.people.lead, client).await,
        name
    );
    server.stop().await;
}
