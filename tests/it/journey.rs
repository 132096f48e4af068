//! The auditor's journey: corrections beside what they correct; as-of and as-known-at differ
//! when an entry is recorded late.

use app::records::{JourneyPage, ReadContext, ReadPurpose};
use app::{CaseService, CommandOptions, JourneyView, Page};
use chrono::{DateTime, TimeZone, Utc};
use domain::*;
use serde_json::{Map, json};
use uuid::Uuid;

use crate::support::{auditor, metadata, opened_case, store_with_db};

fn on(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 10, 0, 0)
        .single()
        .expect("time")
}

fn contact(n: u128, day: u32) -> CaseCommand {
    CaseCommand::RecordContact(ContactRecorded {
        contact_id: ContactId(Uuid::from_u128(n)),
        mode: ContactMode::Phone,
        minutes: 30,
        contacted_at: on(day),
        note: None,
    })
}

/// An auditor of the organisation reads the journey through the application layer (audited).
async fn journey(cases: &CaseService, client: ClientId, view: JourneyView) -> JourneyPage {
    let auditor = auditor();
    let read = ReadContext::new(Some(ReadPurpose::Audit), Uuid::new_v4());
    let page = Page::numbered(None, Some(app::MAX_LIMIT)).expect("a page");
    cases
        .journey_page(&auditor, client, view, page, &read)
        .await
        .expect("the journey")
}

#[tokio::test]
async fn a_late_entry_makes_as_of_and_as_known_at_differ_and_corrections_sit_beside_their_entry() {
    let (db, store) = store_with_db(4).await;
    let cases = CaseService::new(store.clone());
    let client = ClientId(Uuid::from_u128(77));
    let referral_id = ReferralId(Uuid::from_u128(78));
    let happened = |day: u32| {
        let mut m = metadata();
        m.occurred_at = on(day);
        m
    };
    let opened = opened_case(
        client,
        referral_id,
        ReferralSource::Gp,
        vec![NeedDomain::Bereavement],
        (StaffId(Uuid::from_u128(5)), TeamId(Uuid::from_u128(6))),
    );
    crate::support::hire_named(&store, crate::support::ORG, &opened).await;
    let steps: Vec<(u32, CaseCommand)> = [1, 2, 2]
        .into_iter()
        .zip(opened)
        .chain([(10, contact(1, 10))])
        .collect();
    for (day, command) in &steps {
        cases
            .execute(client, command, happened(*day), CommandOptions::default())
            .await
            .expect("step");
    }
    let admin = db.admin_client().await;
    let before_late_entry: DateTime<Utc> =
        testkit::query_value(&admin, "SELECT clock_timestamp()", &[]).await;
    // A contact on the 5th, written up only now: after the contact on the 10th.
    cases
        .execute(
            client,
            &contact(2, 5),
            happened(5),
            CommandOptions::default(),
        )
        .await
        .expect("late contact");
    let everything = journey(&cases, client, JourneyView::default()).await;
    let contact_on_tenth = everything
        .entries
        .iter()
        .find(|e| e.payload["contact_id"] == json!(Uuid::from_u128(1)))
        .expect("entry");
    let mut fields = Map::new();
    fields.insert("minutes".to_owned(), json!(45));
    let correction = CaseCommand::CorrectEntry(EntryCorrected {
        corrects: EventId(contact_on_tenth.event_id),
        corrected_fields: fields,
        reason: "the call ran long".to_owned(),
    });
    cases
        .execute(client, &correction, happened(11), CommandOptions::default())
        .await
        .expect("correct");

    let contacts_in = |journey: &JourneyPage| -> Vec<u128> {
        journey
            .entries
            .iter()
            .filter(|e| e.event_type == "ContactRecorded")
            .map(|e| {
                serde_json::from_value::<Uuid>(e.payload["contact_id"].clone())
                    .expect("uuid")
                    .as_u128()
            })
            .collect()
    };
    // As it was on the 6th (known now): the late contact of the 5th is there, the 10th is not.
    let as_of = journey(
        &cases,
        client,
        JourneyView {
            as_of: Some(on(6)),
            known_at: None,
        },
    )
    .await;
    assert_eq!(contacts_in(&as_of), vec![2]);
    assert_eq!(as_of.status, CaseStatus::Open);
    // As it was known before the late entry: the 10th is there, the 5th is not.
    let known = journey(
        &cases,
        client,
        JourneyView {
            as_of: None,
            known_at: Some(before_late_entry),
        },
    )
    .await;
    assert_eq!(contacts_in(&known), vec![1]);
    // Both together: as it was on the 6th, as known before the late entry: no contact yet.
    let both = journey(
        &cases,
        client,
        JourneyView {
            as_of: Some(on(6)),
            known_at: Some(before_late_entry),
        },
    )
    .await;
    assert_eq!(contacts_in(&both), Vec::<u128>::new());

    let now = journey(&cases, client, JourneyView::default()).await;
    assert_eq!(now.entries.len(), 7);
    let corrected = now
        .entries
        .iter()
        .find(|e| e.event_id == contact_on_tenth.event_id)
        .expect("entry");
    assert_eq!(
        corrected.payload["minutes"], 30,
        "the original stays as recorded"
    );
    assert_eq!(
        corrected
            .corrected_payload
            .as_ref()
            .map(|p| p["minutes"].clone()),
        Some(json!(45))
    );
    assert_eq!(corrected.corrected_by.len(), 1);
    assert_eq!(
        now.entries.last().map(|e| e.event_type.as_str()),
        Some("EntryCorrected")
    );
    assert!(
        now.entries
            .windows(2)
            .all(|w| w[0].stream_version < w[1].stream_version)
    );
    assert!(
        now.entries
            .iter()
            .all(|e| e.actor_role == "link_worker" && e.recorded_at >= e.occurred_at)
    );
    // Every read above went through the read audit, with its purpose.
    let reads: i64 = testkit::query_value(
        &admin,
        "SELECT count(*) FROM record_reads WHERE client_id = $1 AND view = 'journey' \
             AND purpose_code = 'audit' AND purpose IS NULL AND role = 'auditor'",
        &[&client.0],
    )
    .await;
    assert_eq!(reads, 5);
}
