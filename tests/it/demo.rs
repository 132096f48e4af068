//! The demo population: made through the command path, believable, reproducible.

use chrono::NaiveDate;
use devtools::population::{PopulationOptions, populate};
use serde_json::Value;

use crate::support::demo_store;

fn options(clients: usize) -> PopulationOptions {
    PopulationOptions {
        clients,
        seed: 7,
        today: NaiveDate::from_ymd_opt(2026, 11, 23).expect("a date"),
        concurrency: 4,
    }
}

/// Every client event in stream order, without what differs between two databases made
/// from the same seed: staff and team ids (made by the access tables) and event ids (made by
/// the store), which corrections name.
async fn log(
    client: &tokio_postgres::Client,
    store: &eventstore::EventStore,
) -> Vec<(String, i64, String, String, Value)> {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.retain(|k, _| {
                    !(k.ends_with("worker_id")
                        || k == "team_id"
                        || k == "staff_id"
                        || k == "corrects")
                });
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    // Read through the store: stored personal fields are sealed with random nonces, so only
    // their opened values can be compared.
    let streams: Vec<uuid::Uuid> = testkit::query_column(
        client,
        "SELECT DISTINCT stream_id FROM events WHERE stream_type = 'client' ORDER BY 1",
        &[],
    )
    .await;
    let mut out = Vec::new();
    for stream in streams {
        for event in store.read_stream(stream, 1, None).await.expect("a stream") {
            let mut payload = event.payload;
            strip(&mut payload);
            out.push((
                stream.to_string(),
                event.stream_version,
                event.event_type,
                event.metadata.occurred_at.to_rfc3339(),
                payload,
            ));
        }
    }
    out
}

#[tokio::test]
async fn the_demo_population_is_believable_reproducible_and_made_once() {
    let (_db, store, admin, access) = demo_store().await;
    // The demo's practice system refers for its own practice only.
    let (_, practice_system, _) = access
        .staff
        .iter()
        .find(|(role, _, _)| *role == app::access::Role::PracticeSystem)
        .expect("a practice system");
    let bound = app::access::bound_practice(&admin, *practice_system)
        .await
        .expect("read");
    assert_eq!(bound.as_deref(), Some(devtools::demo::DEMO_PRACTICE));
    let report = populate(&store, &admin, &access, &options(60), |_| {})
        .await
        .expect("the population");
    assert_eq!((report.clients, report.skipped), (60, 0));
    assert!(report.events > 60 * 12, "{report:?}");

    let count = |sql: &'static str| {
        let admin = &admin;
        async move {
            admin
                .query_one(sql, &[])
                .await
                .expect("a count")
                .get::<_, i64>(0)
        }
    };
    // The mix follows the seed services: GP-led referrals, some declined, scores paired,
    // connections and gaps, appointments missed now and then, a few corrections.
    let referrals =
        count("SELECT count(*) FROM events WHERE event_type = 'ReferralReceived'").await;
    let from_gps = count(
        "SELECT count(*) FROM events WHERE event_type = 'ReferralReceived' \
         AND payload->>'source' IN ('gp', 'practice_staff')",
    )
    .await;
    assert!(referrals >= 60);
    assert!(
        from_gps * 2 > referrals,
        "{from_gps} of {referrals} from practices"
    );
    for (event_type, at_least) in [
        ("ReferralAccepted", 40),
        ("ContactRecorded", 60),
        ("AppointmentAttended", 60),
        ("AssessmentRecorded", 60),
        ("OnwardConnectionMade", 30),
        ("ConnectionOutcomeRecorded", 20),
        ("CaseClosed", 20),
        ("DemographicsRecorded", 40),
    ] {
        let n = admin
            .query_one(
                "SELECT count(*) FROM events WHERE event_type = $1",
                &[&event_type],
            )
            .await
            .expect("count")
            .get::<_, i64>(0);
        assert!(n >= at_least, "{n} {event_type}");
    }
    // Most people's demographics are kept for the equity breakdowns, with their area's
    // deprivation decile from the shipped extract.
    let with_decile: i64 = testkit::query_value(
        &admin,
        "SELECT count(*) FROM equity_demographics WHERE imd_decile IS NOT NULL AND age_band IS NOT NULL",
        &[],
    )
    .await;
    assert!(with_decile >= 40, "{with_decile}");
    // Nothing happens after the "today" the population was made for (services included), and
    // every connection names a listed directory service.
    let end_of_today = (options(60).today + chrono::Duration::days(1))
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    let after_today: i64 = testkit::query_value(
        &admin,
        "SELECT count(*) FROM events WHERE occurred_at >= $1",
        &[&end_of_today],
    )
    .await;
    assert_eq!(after_today, 0);
    // About half agree to text reminders, and most cases still open have their next
    // appointment booked for the coming week: the reminder outbox has people to remind.
    let to_remind: i64 = testkit::query_value(
        &admin,
        "SELECT count(DISTINCT b.stream_id) FROM events b JOIN events c \
           ON c.stream_id = b.stream_id AND c.event_type = 'ConsentRecorded' \
           AND c.payload->>'scope' = 'contact_for_reminders' AND c.payload->>'channel' = 'sms' \
         WHERE b.event_type = 'AppointmentBooked' \
           AND (b.payload->>'scheduled_for')::timestamptz >= $1",
        &[&end_of_today],
    )
    .await;
    assert!(to_remind >= 1, "{to_remind} people to remind");
    assert_eq!(
        count(
            "SELECT count(*) FROM events c WHERE c.event_type = 'OnwardConnectionMade' \
             AND NOT EXISTS (SELECT 1 FROM events s WHERE s.stream_type = 'service' \
               AND s.stream_id = (c.payload->>'service_id')::uuid)"
        )
        .await,
        0
    );
    assert!(matches!(
        eventstore::verify(&admin).await.expect("verify"),
        eventstore::VerifyReport::Ok { .. }
    ));

    // A second run makes no one twice.
    let events = count("SELECT count(*) FROM events").await;
    let again = populate(&store, &admin, &access, &options(60), |_| {})
        .await
        .expect("again");
    assert_eq!((again.clients, again.skipped), (0, 60));
    assert_eq!(count("SELECT count(*) FROM events").await, events);

    // The same seed in another database makes the same log (bar the ids the access tables
    // make).
    let (_other_db, other_store, other_admin, other_access) = demo_store().await;
    populate(
        &other_store,
        &other_admin,
        &other_access,
        &options(60),
        |_| {},
    )
    .await
    .expect("the population again");
    let ours = log(&admin, &store).await;
    let theirs = log(&other_admin, &other_store).await;
    assert_eq!(ours.len(), theirs.len());
    if let Some((a, b)) = ours.iter().zip(&theirs).find(|(a, b)| a != b) {
        panic!("the same seed makes the same log: {a:?}\n  vs {b:?}");
    }
}
