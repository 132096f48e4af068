//! Every console form that changes a record goes with the record's version its page was drawn
//! at: the attendance, decision and assignment forms as the contact and booking forms do. A
//! colleague's write meanwhile brings the form back with the problem beside it instead of both
//! writes standing; a version that is not a number is refused, never passed by unchecked.

use serde_json::json;
use uuid::Uuid;

use super::TestServer;
use super::console::{banner, get, hidden, post_page, sign_in, signed_in_browser};
use super::console_plan::events;
use super::journey::{client_path, open_case, referred};

const STALE: &str = "Someone else changed this record just now: check it and send the form again";

/// An appointment of `client`'s two hours ago (on the service's clock), booked by the worker.
async fn booked_earlier(server: &TestServer, client: Uuid) -> Uuid {
    let appointment = Uuid::new_v4();
    let at = app::Clock::system().now() - chrono::Duration::hours(2);
    server
        .ok(
            &server.people.worker,
            &client_path(client, "appointments"),
            json!({ "appointment_id": appointment, "scheduled_for": at, "mode": "phone" }),
        )
        .await;
    appointment
}

/// The team lead records a contact on `client`'s record over the API.
async fn colleague_writes(server: &TestServer, client: Uuid) {
    let at = app::Clock::system().now() - chrono::Duration::minutes(30);
    server
        .ok(
            &server.people.lead,
            &client_path(client, "contacts"),
            json!({ "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 5,
                    "contacted_at": at, "note": null }),
        )
        .await;
}

#[tokio::test]
async fn an_attendance_sent_from_a_page_a_colleague_has_written_to_since_comes_back() {
    let server = TestServer::start().await;
    let client = open_case(&server).await;
    booked_earlier(&server, client).await;
    server.catch_up().await;
    let browser = signed_in_browser(&server, &server.people.worker).await;
    let person = format!("/console/people/{client}");
    browser.goto(&format!("{}{person}", server.base)).await;

    // The lead records a contact while the worker's page is open: the worker's "They came",
    // sent from that page, is not recorded; the page comes back saying why, beside the
    // appointments.
    colleague_writes(&server, client).await;
    browser.click_and_wait("button[value='attended']").await;
    assert_eq!(
        browser.path().await,
        format!("{person}/appointments/outcome")
    );
    assert_eq!(browser.error_summary().await, [STALE]);
    assert_eq!(
        browser
            .attr(".nhsuk-error-summary__list a", "href")
            .await
            .as_deref(),
        Some("#appointments")
    );
    assert!(
        browser.text("#appointments-error").await.contains(STALE),
        "the problem is beside the appointments"
    );
    assert!(
        events(&server, client, "AppointmentAttended")
            .await
            .is_empty()
    );
    browser
        .assert_accessible("an attendance sent against a stale version")
        .await;

    // Sent again from the page as it is now, it is recorded, once.
    browser.click_and_wait("button[value='attended']").await;
    assert_eq!(banner(&browser).await, "Attendance recorded");
    assert_eq!(
        events(&server, client, "AppointmentAttended").await.len(),
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn console_forms_refuse_a_version_that_is_not_a_number_and_a_stale_one() {
    let server = TestServer::start().await;
    let client = open_case(&server).await;
    let appointment = booked_earlier(&server, client).await;
    server.catch_up().await;
    let session = sign_in(&server, &server.people.worker).await;
    let person = format!("/console/people/{client}");
    let (_, page) = get(&server, &session, &person).await;
    let csrf = hidden(&page, "csrf");
    let version = hidden(&page, "version");
    assert!(version.parse::<i64>().is_ok_and(|v| v > 0), "{version}");
    let appointment = appointment.to_string();
    let attended = |version: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("appointment_id", appointment.clone()),
            ("outcome", "attended".to_owned()),
            ("version", version.to_owned()),
        ]
    };
    let send = async |path: &str, form: Vec<(&str, String)>| {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_page(&server, &session, &format!("{person}{path}"), None, &pairs).await
    };
    let says_unreadable = |page: &str| page.contains("page could not be read");

    // An attendance whose version is not a number: refused beside the appointments.
    for bad in ["abc", "7x", "-1", "1.5"] {
        let (status, page) = send("/appointments/outcome", attended(bad)).await;
        assert_eq!(status, 422, "{bad}: {page}");
        assert!(page.contains("appointments-error"), "{bad}: {page}");
        assert!(says_unreadable(&page), "{bad}: {page}");
    }
    // A contact whose version is not a number: refused at the form's first field, as typed.
    let today = console::local::local(app::Clock::system().now() - chrono::Duration::hours(1));
    let contact = vec![
        ("csrf", csrf.clone()),
        ("contact_id", Uuid::new_v4().to_string()),
        ("version", "v3".to_owned()),
        ("mode", "phone".to_owned()),
        ("minutes", "12".to_owned()),
        ("contacted_on", today.format("%Y-%m-%d").to_string()),
        ("contacted_time", today.format("%H:%M").to_string()),
        ("note", String::new()),
    ];
    let (status, page) = send("/contacts", contact).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("mode-error"), "{page}");
    assert!(says_unreadable(&page), "{page}");
    // The form comes back at the version the record is at now, to be sent again.
    let contact_form = &page[page.find("/contacts\"").expect("the contact form")..];
    assert_eq!(hidden(contact_form, "version"), version);
    assert!(events(&server, client, "ContactRecorded").await.is_empty());
    assert!(
        events(&server, client, "AppointmentAttended")
            .await
            .is_empty()
    );

    // A stale version is refused too (the lead wrote meanwhile); the current one is recorded.
    colleague_writes(&server, client).await;
    let (status, page) = send("/appointments/outcome", attended(&version)).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains(STALE), "{page}");
    let now_at = hidden(&page, "version");
    assert!(now_at.parse::<i64>().expect("a version") > version.parse::<i64>().expect("a version"));
    let (status, page) = send("/appointments/outcome", attended(&now_at)).await;
    assert_eq!(status, 303, "{page}");
    assert_eq!(
        events(&server, client, "AppointmentAttended").await.len(),
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn a_referral_decided_from_a_stale_or_unreadable_page_is_not_decided() {
    let server = TestServer::start().await;
    let (client, referral) = referred(&server).await;
    server.catch_up().await;
    let session = sign_in(&server, &server.people.lead).await;
    let person = format!("/console/people/{client}");
    let (_, page) = get(&server, &session, &person).await;
    let csrf = hidden(&page, "csrf");
    let version = hidden(&page, "version");
    let decide = |version: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("referral_id", referral.to_string()),
            ("decision", "accept".to_owned()),
            ("version", version.to_owned()),
        ]
    };
    let send = async |form: Vec<(&str, String)>| {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_page(
            &server,
            &session,
            &format!("{person}/decision"),
            None,
            &pairs,
        )
        .await
    };
    let (status, page) = send(decide("twelve")).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("decision-error"), "{page}");
    let stale = (version.parse::<i64>().expect("a version") - 1).to_string();
    let (status, page) = send(decide(&stale)).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains(STALE), "{page}");
    assert!(events(&server, client, "ReferralAccepted").await.is_empty());
    let (status, page) = send(decide(&version)).await;
    assert_eq!(status, 303, "{page}");
    assert_eq!(events(&server, client, "ReferralAccepted").await.len(), 1);
    server.stop().await;
}
