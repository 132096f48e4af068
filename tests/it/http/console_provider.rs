//! "Connections to your services" in the console: provider staff land on the connections made
//! to their service, decline without a reason is put right at the field, accept, and record
//! that the person started, in a real browser (axe clean); the link worker's person page shows
//! the service's answer.

use uuid::Uuid;

use super::TestServer;
use super::console::{banner, signed_in_browser};
use super::journey::open_case;

const CONNECTION: Uuid = Uuid::from_u128(0xc0_0001);

#[tokio::test]
async fn provider_staff_accept_a_connection_and_record_the_start_and_the_link_worker_sees_it() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let client = open_case(&server).await;
    super::provider::referred_to_provider(&server, client, CONNECTION).await;
    let _projectors = server.run_projectors().await;

    // Signed in, provider staff land on their connections.
    let browser = signed_in_browser(&server, &people.provider).await;
    browser.goto(&format!("{}/console", server.base)).await;
    assert_eq!(browser.path().await, "/console/provider");
    assert_eq!(
        browser.text(&format!("#connection-{CONNECTION} h2")).await,
        "Maggie T."
    );
    assert_eq!(
        browser.text(&format!("#answer-{CONNECTION}")).await,
        "Not answered yet."
    );
    browser.assert_accessible("connections to a service").await;

    // Declining needs a reason, shown at the field.
    browser
        .click_and_wait(&format!("#decline-{CONNECTION}"))
        .await;
    assert_eq!(
        browser.error_summary().await,
        ["Select why the connection is declined"]
    );
    browser
        .assert_accessible("a decline without a reason")
        .await;

    browser
        .click_and_wait(&format!("#accept-{CONNECTION}"))
        .await;
    assert_eq!(banner(&browser).await, "Connection accepted");
    assert_eq!(
        browser.text(&format!("#answer-{CONNECTION}")).await,
        "Your answer: accepted by the service"
    );
    browser
        .click(&format!("label[for='started-yes-{CONNECTION}']"))
        .await;
    browser
        .click_and_wait(&format!("#start-{CONNECTION}"))
        .await;
    assert_eq!(
        banner(&browser).await,
        "Recorded whether the person started"
    );
    assert_eq!(
        browser.text(&format!("#answer-{CONNECTION}")).await,
        "Your answer: the person started"
    );
    browser.assert_accessible("a connection answered").await;

    // The link worker sees the service's answer on the person's page.
    let worker = signed_in_browser(&server, &people.worker).await;
    worker
        .goto(&format!("{}/console/people/{client}", server.base))
        .await;
    assert_eq!(
        worker.text(&format!("#provider-answer-{CONNECTION}")).await,
        "The service's answer: the person started"
    );
    server.stop().await;
}
