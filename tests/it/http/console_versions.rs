//! The person's page's contact and booking forms go with the record's version they were shown
//! at, as the demographics form does: a colleague's write to the record meanwhile brings the
//! form back, as typed, with the problem beside its first field, instead of being passed over
//! unseen; sent again (now at the version shown), it is recorded once.

use serde_json::json;
use uuid::Uuid;

use super::TestServer;
use super::console::{banner, get, hidden, post_page, sign_in, signed_in_browser};
use super::console_plan::events;
use super::journey::{client_path, open_case};
use crate::browser::Browser;

/// A colleague (the team lead) writes to `client`'s record over the API.
async fn colleague_writes(server: &TestServer, client: Uuid, sex: &str) {
    server
        .ok(
            &server.people.lead,
            &client_path(client, "demographics"),
            json!({ "demographics": { "sex": sex } }),
        )
        .await;
}

/// The value of the radio of `name` that is checked, if any.
async fn checked(browser: &Browser, name: &str) -> Option<String> {
    browser
        .client
        .execute(
            "const e = document.querySelector(`input[name='${arguments[0]}']:checked`); \
             return e ? e.value : null;",
            vec![name.into()],
        )
        .await
        .expect("reading a radio")
        .as_str()
        .map(str::to_owned)
}

/// The version a form of the page (its `action` ending `to`) goes with.
async fn version_sent(browser: &Browser, to: &str) -> String {
    browser
        .client
        .execute(
            "return document.querySelector(`form[action$='${arguments[0]}'] input[name='version']`).value;",
            vec![to.into()],
        )
        .await
        .expect("reading the version")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_contact_or_booking_sent_after_a_colleagues_write_comes_back_as_typed() {
    let server = TestServer::start().await;
    let client = open_case(&server).await;
    server.catch_up().await;
    let browser = signed_in_browser(&server, &server.people.worker).await;
    let person = format!("/console/people/{client}");
    browser.goto(&format!("{}{person}", server.base)).await;
    let shown_at = version_sent(&browser, "/contacts").await;
    assert_eq!(version_sent(&browser, "/appointments").await, shown_at);
    assert!(shown_at.parse::<i64>().is_ok_and(|v| v > 0), "{shown_at}");

    // A call typed in while the team lead records the person's demographics: the contact,
    // sent at the version the page was shown at, comes back with everything typed and the
    // problem beside the first field, and nothing of it is written.
    browser.click("label[for='mode']").await;
    let mode = checked(&browser, "mode").await.expect("a mode chosen");
    browser.fill("minutes", "35").await;
    // An hour and a half ago on a UK wall clock (the server's clock is the real one): never in
    // the future, whatever the hour the test runs.
    let typed = domain::calendar::local(chrono::Utc::now() - chrono::Duration::minutes(90));
    let (day, time) = (
        typed.date().to_string(),
        typed.time().format("%H:%M").to_string(),
    );
    browser.fill("contacted_on", &day).await;
    browser.fill("contacted_time", &time).await;
    browser
        .fill("note", "Rang about the walking group zq8kept")
        .await;
    colleague_writes(&server, client, "male").await;
    browser.click_and_wait("#record-contact").await;
    assert_eq!(browser.path().await, format!("{person}/contacts"));
    let summary = browser.error_summary().await;
    assert_eq!(
        summary,
        ["Someone else changed this record just now: check it and send the form again"]
    );
    let link = browser.attr(".nhsuk-error-summary__list a", "href").await;
    assert_eq!(link.as_deref(), Some("#mode"), "it leads to the form");
    assert!(
        browser
            .text("#mode-error")
            .await
            .contains("Someone else changed this record"),
        "the problem is beside the field"
    );
    assert_eq!(checked(&browser, "mode").await.as_deref(), Some(&*mode));
    assert_eq!(browser.value_of("minutes").await, "35");
    assert_eq!(browser.value_of("contacted_on").await, day);
    assert_eq!(browser.value_of("contacted_time").await, time);
    assert_eq!(
        browser.value_of("note").await,
        "Rang about the walking group zq8kept"
    );
    assert!(events(&server, client, "ContactRecorded").await.is_empty());
    let now_at = version_sent(&browser, "/contacts").await;
    assert!(
        now_at.parse::<i64>().expect("a version") > shown_at.parse::<i64>().expect("a version"),
        "sent again, it goes at the version shown now: {shown_at} then {now_at}"
    );
    browser
        .assert_accessible("a contact sent against a stale version")
        .await;

    // Checked and sent again, it is recorded, once.
    browser.click_and_wait("#record-contact").await;
    assert_eq!(banner(&browser).await, "Contact recorded");
    let contacts = events(&server, client, "ContactRecorded").await;
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0]["payload"]["minutes"], 35);

    // The same for a booking.
    browser.click("label[for='appointment_mode-phone']").await;
    browser.fill("appointment_at", "14:30").await;
    let booked_on = browser.value_of("appointment_on").await;
    colleague_writes(&server, client, "female").await;
    browser.click_and_wait("#book").await;
    assert_eq!(browser.path().await, format!("{person}/appointments"));
    assert_eq!(
        browser.error_summary().await,
        ["Someone else changed this record just now: check it and send the form again"]
    );
    assert!(
        browser
            .text("#appointment_mode-error")
            .await
            .contains("Someone else changed this record"),
        "the problem is beside the field"
    );
    assert_eq!(
        checked(&browser, "appointment_mode").await.as_deref(),
        Some("phone")
    );
    assert_eq!(browser.value_of("appointment_on").await, booked_on);
    assert_eq!(browser.value_of("appointment_at").await, "14:30");
    assert!(
        events(&server, client, "AppointmentBooked")
            .await
            .is_empty()
    );
    browser
        .assert_accessible("a booking sent against a stale version")
        .await;
    browser.click_and_wait("#book").await;
    assert_eq!(banner(&browser).await, "Appointment booked");
    assert_eq!(events(&server, client, "AppointmentBooked").await.len(), 1);
    drop(browser);

    // Over HTTP: a form that names a version the record has passed is refused (422) and the
    // record is unchanged; one without a version (an older page) is taken at whatever the
    // record is now; a second send of a recorded form (same contact id) records nothing more,
    // though the record has moved on since.
    let session = sign_in(&server, &server.people.worker).await;
    let (_, page) = get(&server, &session, &person).await;
    let csrf = hidden(&page, "csrf");
    let current = hidden(&page, "version");
    let contact = |id: &str, version: &str| {
        vec![
            ("csrf".to_owned(), csrf.clone()),
            ("contact_id".to_owned(), id.to_owned()),
            ("version".to_owned(), version.to_owned()),
            ("mode".to_owned(), "phone".to_owned()),
            ("minutes".to_owned(), "12".to_owned()),
            ("contacted_on".to_owned(), day.clone()),
            ("contacted_time".to_owned(), time.clone()),
            ("note".to_owned(), String::new()),
        ]
    };
    let send = |form: Vec<(String, String)>| {
        let server = &server;
        let session = &session;
        let person = &person;
        async move {
            let pairs: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            post_page(server, session, &format!("{person}/contacts"), None, &pairs).await
        }
    };
    let stale = (current.parse::<i64>().expect("a version") - 1).to_string();
    let (status, page) = send(contact(&Uuid::new_v4().to_string(), &stale)).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("mode-error"), "{page}");
    assert_eq!(events(&server, client, "ContactRecorded").await.len(), 1);
    let id = Uuid::new_v4().to_string();
    let (status, page) = send(contact(&id, &current)).await;
    assert_eq!(status, 303, "{page}");
    assert_eq!(events(&server, client, "ContactRecorded").await.len(), 2);
    let (status, page) = send(contact(&id, &current)).await;
    assert_eq!(status, 303, "a second send is the first's answer: {page}");
    let (status, page) = send(contact(&Uuid::new_v4().to_string(), "")).await;
    assert_eq!(status, 303, "{page}");
    assert_eq!(events(&server, client, "ContactRecorded").await.len(), 3);
    server.stop().await;
}
