//! The directory of services: ORUK import and export, search, and connections against it.

use std::sync::Arc;

use app::directory::{
    DirectoryQuery, DirectoryService, ImportReport, OrukPage, Ranked, SEARCH_CANDIDATES,
    search_in_full, search_ranked,
};
use domain::NeedDomain;
use domain::directory::OrukService;
use eventstore::EventStore;
use projector::{DirectoryProjection, Runner, RunnerSettings};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::TestServer;
use crate::http::journey::{client_path, open_case};
use crate::support::{oruk_service, store_with_db};

fn sample() -> Value {
    serde_json::from_str(devtools::demo::SAMPLE_DIRECTORY).expect("the sample directory")
}

fn sample_records() -> Vec<Value> {
    sample()["contents"].as_array().expect("contents").clone()
}

async fn import(store: &EventStore, records: Vec<Value>) -> ImportReport {
    DirectoryService::new(store.clone())
        .import(
            records,
            false,
            &app::operator_metadata(chrono::Utc::now()),
            |_| {},
        )
        .await
        .expect("import")
}

async fn catch_up(store: &EventStore) {
    let runner = Runner::new(
        store.clone(),
        Arc::new(DirectoryProjection),
        Uuid::new_v4(),
        RunnerSettings::default(),
    );
    runner.catch_up().await.expect("the directory catches up");
    runner.release().await.expect("release");
}

async fn event_count(store: &EventStore) -> i64 {
    store
        .pool()
        .get()
        .await
        .expect("a connection")
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn the_sample_directory_round_trips_through_import_and_export_and_reimports_as_unchanged() {
    let (db, store) = store_with_db(4).await;
    let records = sample_records();
    assert!(records.len() >= 200, "a few hundred services");
    let first = import(&store, records.clone()).await;
    assert!(first.rejected.is_empty(), "{:?}", first.rejected);
    assert_eq!(first.added.len(), records.len());
    assert_eq!(event_count(&store).await, records.len() as i64);

    // Exported in the ORUK shape: the same records, field for field, except `last_modified`
    // (Casebook's: the time of the service's latest event).
    let page: OrukPage = casebook::directory::export(&store).await.expect("export");
    assert_eq!(page.total_items, records.len() as i64);
    let exported = serde_json::to_value(&page).expect("json");
    for key in [
        "total_items",
        "total_pages",
        "page_number",
        "size",
        "first_page",
        "last_page",
        "empty",
    ] {
        assert!(exported.get(key).is_some(), "the page envelope has {key}");
    }
    let by_id = |records: &[Value]| -> std::collections::BTreeMap<String, Value> {
        records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.as_object_mut()
                    .expect("an object")
                    .remove("last_modified");
                (r["id"].as_str().expect("an id").to_owned(), r)
            })
            .collect()
    };
    let imported = by_id(&records);
    let out = by_id(exported["contents"].as_array().expect("contents"));
    assert_eq!(imported.len(), out.len());
    for (id, record) in &imported {
        assert_eq!(Some(record), out.get(id), "service {id} round trips");
    }
    for record in exported["contents"].as_array().expect("contents") {
        let modified = record["last_modified"].as_str().expect("last_modified");
        assert!(
            chrono::DateTime::parse_from_rfc3339(modified).is_ok(),
            "{modified}"
        );
    }

    // The export imports back as unchanged, and so does the file again: nothing is written.
    let events = event_count(&store).await;
    let again = import(&store, records).await;
    assert_eq!(
        (
            again.added.len(),
            again.changed.len(),
            again.withdrawn.len()
        ),
        (0, 0, 0)
    );
    assert_eq!(again.unchanged, imported.len());
    let reimport = import(
        &store,
        exported["contents"].as_array().expect("contents").clone(),
    )
    .await;
    assert_eq!(reimport.unchanged, imported.len(), "{reimport:?}");
    assert_eq!(event_count(&store).await, events);

    // A changed record is an update; a defunct one is withdrawn; the log still verifies.
    let mut records = sample_records();
    records[0]["description"] = json!("Now meets on Thursdays as well.");
    records[1]["status"] = json!("defunct");
    let changes = import(&store, records).await;
    assert_eq!(changes.changed.len(), 1);
    assert_eq!(changes.withdrawn.len(), 1);
    assert_eq!(changes.unchanged, imported.len() - 2);
    let admin = db.admin_client().await;
    assert!(matches!(
        eventstore::verify(&admin).await.expect("verify"),
        eventstore::VerifyReport::Ok { .. }
    ));
    catch_up(&store).await;
    let client = store.pool().get().await.expect("a connection");
    let withdrawn: Uuid = serde_json::from_value(sample_records()[1]["id"].clone()).expect("id");
    let entry = app::directory::entry_by_id(&**client, withdrawn)
        .await
        .expect("entry")
        .expect("still on record");
    assert!(entry.withdrawn && !entry.takes_referrals);
    assert_eq!(
        casebook::directory::export(&store)
            .await
            .expect("export")
            .total_items,
        imported.len() as i64 - 1,
        "a withdrawn service leaves the export"
    );
}

#[tokio::test]
async fn a_malformed_record_is_rejected_with_its_reasons_while_the_rest_import() {
    let (_db, store) = store_with_db(4).await;
    let good = |n: u128| {
        oruk_service(
            Uuid::from_u128(0xd1_0000 + n),
            &format!("Good service {n}"),
            &["housing"],
            "Wells",
        )
    };
    let without = |field: &str| {
        let mut record = good(90);
        record.as_object_mut().expect("object").remove(field);
        record
    };
    let mut no_org_name = good(91);
    no_org_name["organization"]["name"] = json!("  ");
    let mut bad_need = good(92);
    bad_need["attributes"][0]["taxonomy_term"]["code"] = json!("boredom");
    let mut no_need = good(93);
    no_need["attributes"] = json!([]);
    let mut bad_status = good(94);
    bad_status["status"] = json!("open");
    let mut nul = good(95);
    nul["service_at_locations"] = json!([{ "location": { "name": "Hall\u{0}" } }]);
    let mut bad_url = good(96);
    bad_url["url"] = json!("ftp://example.org");
    let mut bad_id = good(97);
    bad_id["id"] = json!("svc-97");
    let mut wrong_type = good(98);
    wrong_type["service_areas"] = json!([{ "name": 7 }]);
    let records = vec![
        good(1),
        without("name"),
        no_org_name,
        good(2),
        bad_need,
        no_need,
        bad_status,
        nul,
        bad_url,
        bad_id,
        wrong_type,
        json!("not a record"),
        good(1),
        good(3),
    ];
    let report = import(&store, records).await;
    assert_eq!(report.records, 14);
    assert_eq!(
        report.added,
        vec![
            Uuid::from_u128(0xd1_0001),
            Uuid::from_u128(0xd1_0002),
            Uuid::from_u128(0xd1_0003)
        ]
    );
    insta::assert_yaml_snapshot!("directory_import_rejections", report.rejected);
    // Only the good records were written.
    assert_eq!(event_count(&store).await, 3);
}

/// Asserts a search found something, and that everything it found `holds`.
#[track_caller]
fn assert_all(
    found: &[app::directory::DirectoryEntry],
    holds: impl Fn(&app::directory::DirectoryEntry) -> bool,
) {
    assert!(!found.is_empty());
    let names: Vec<&str> = found.iter().take(20).map(|e| e.name.as_str()).collect();
    assert!(found.iter().all(holds), "{names:?}");
}

#[tokio::test]
async fn search_ranks_by_words_and_filters_by_need_area_and_availability() {
    let (_db, store) = store_with_db(4).await;
    let report = import(&store, sample_records()).await;
    assert!(report.rejected.is_empty());
    catch_up(&store).await;
    let client = store.pool().get().await.expect("a connection");
    let search = |text: Option<&str>, need: Option<NeedDomain>, area: Option<&str>, available| {
        let query = DirectoryQuery {
            text: text.map(str::to_owned),
            need,
            area: area.map(str::to_owned),
            available_only: available,
            offset: 0,
            limit: 300,
        };
        let client = &client;
        async move {
            let mut found = app::directory::search(&***client, &query)
                .await
                .expect("search");
            found.truncate(300);
            found
        }
    };
    let names = |found: &[app::directory::DirectoryEntry], n: usize| -> Vec<String> {
        found.iter().take(n).map(|e| e.name.clone()).collect()
    };

    // Words a link worker types, matched through the need's own words too.
    let found = search(Some("lonely older people"), None, Some("Frome"), false).await;
    assert_eq!(names(&found, 1), ["Frome Friendship Lunch Club"]);
    let found = search(Some("walking"), None, None, false).await;
    assert!(
        found
            .iter()
            .take(4)
            .all(|e| e.name.ends_with("Walking for Health")),
        "{:?}",
        names(&found, 6)
    );
    let found = search(Some("grief"), None, None, false).await;
    assert_all(&found, |e| e.needs.contains(&NeedDomain::Bereavement));
    let found = search(Some("\"lunch club\" -frome"), None, None, false).await;
    assert_all(&found, |e| {
        e.name.contains("Lunch Club") && !e.name.contains("Frome")
    });
    assert!(
        search(Some("xylophone"), None, None, false)
            .await
            .is_empty()
    );

    // Filters: a postcode district or town, a need.
    let found = search(
        None,
        Some(NeedDomain::MoneyBenefitsDebt),
        Some("BA5"),
        false,
    )
    .await;
    assert_all(&found, |e| {
        e.areas.contains(&"ba5".to_owned()) && e.needs.contains(&NeedDomain::MoneyBenefitsDebt)
    });
    assert_eq!(
        found,
        search(
            None,
            Some(NeedDomain::MoneyBenefitsDebt),
            Some(" wells "),
            false
        )
        .await
    );

    // Availability: a waiting list or closure made in Casebook ranks a service below open
    // ones with the same words, and `available` leaves it out, as it leaves out services
    // inactive at source.
    let walks = search(Some("walking for health"), None, None, false).await;
    let top = walks[0].service_id;
    let directory = DirectoryService::new(store.clone());
    directory
        .execute(
            domain::ServiceId(top),
            &domain::directory::DirectoryCommand::ChangeCapacity(
                domain::directory::ServiceCapacityChanged {
                    availability: domain::directory::Availability::WaitingList,
                    waiting_weeks: Some(8),
                    note: None,
                },
            ),
            app::operator_metadata(chrono::Utc::now()),
        )
        .await
        .expect("capacity change")
        .expect("written");
    catch_up(&store).await;
    let walks_after = search(Some("walking for health"), None, None, false).await;
    assert_ne!(walks_after[0].service_id, top);
    let waiting = walks_after
        .iter()
        .find(|e| e.service_id == top)
        .expect("still found");
    assert_eq!(waiting.waiting_weeks, Some(8));
    let available = search(Some("walking for health"), None, None, true).await;
    assert!(available.iter().all(|e| e.service_id != top));
    assert!(
        search(None, None, None, true)
            .await
            .iter()
            .all(|e| e.takes_referrals && e.availability == domain::directory::Availability::Open)
    );
    let everything = search(None, None, None, false).await;
    assert_eq!(everything.len(), sample_records().len());
    assert!(
        everything
            .iter()
            .any(|e| e.status != domain::directory::OrukStatus::Active),
        "the sample has inactive services"
    );

    // Rebuilt from the log, the read model is the same (the waiting list included).
    let rebuilt = casebook::rebuild::rebuild(
        &store,
        casebook::rebuild::RebuildTarget::Directory,
        &casebook::rebuild::RebuildOptions::default(),
    )
    .await
    .expect("rebuild");
    assert_eq!(rebuilt.events, sample_records().len() as u64 + 1);
    assert_eq!(search(None, None, None, false).await, everything);
}

#[tokio::test]
async fn connections_must_name_a_listed_service_that_takes_referrals() {
    let server = TestServer::start().await;
    let people = &server.people;
    let client = open_case(&server).await;
    let connect = |service: Uuid, kind: &str| json!({ "connection_id": Uuid::new_v4(), "service_id": service, "need": "housing", "kind": kind });
    let refused = |reply: &crate::http::Reply, rule: &str| {
        assert_eq!(reply.status, 422, "{:#}", reply.body);
        assert_eq!(reply.body["rule"], rule, "{:#}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], "service_id");
    };
    let path = client_path(client, "connections");
    crate::http::journey::consent(
        &server,
        &people.worker,
        client,
        "share_with_onward_services",
    )
    .await;

    // Not in the directory at all (or another kind of record).
    let reply = server
        .post(&people.worker, &path, connect(Uuid::new_v4(), "signposted"))
        .await;
    refused(&reply, "unknown_service");
    let reply = server
        .post(&people.worker, &path, connect(client, "signposted"))
        .await;
    refused(&reply, "unknown_service");

    // Closed to referrals: a referral is refused, signposting is not.
    let service = server.services[0];
    server
        .ok(
            &people.lead,
            &format!("/api/v1/directory/services/{service}/capacity"),
            json!({ "availability": "closed", "waiting_weeks": null, "note": "Full until spring" }),
        )
        .await;
    let reply = server
        .post(&people.worker, &path, connect(service, "referred"))
        .await;
    refused(&reply, "service_not_taking_referrals");
    server
        .ok(&people.worker, &path, connect(service, "signposted"))
        .await;
    // The same change again is refused as a no-op.
    let reply = server
        .post(
            &people.lead,
            &format!("/api/v1/directory/services/{service}/capacity"),
            json!({ "availability": "closed" }),
        )
        .await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.body["rule"], "unchanged");

    // Capacity and withdrawal of a service the directory does not list, or of a client: 404.
    for id in [Uuid::new_v4(), client] {
        for (who, what, body) in [
            (&people.lead, "capacity", json!({ "availability": "open" })),
            (&people.admin, "withdraw", json!({ "reason": "gone" })),
        ] {
            let reply = server
                .post(
                    who,
                    &format!("/api/v1/directory/services/{id}/{what}"),
                    body,
                )
                .await;
            assert_eq!(reply.status, 404, "{what} of {id}: {:#}", reply.body);
        }
    }

    // Withdrawn: refused whatever the kind, and gone from the ORUK listing.
    let other = server.services[1];
    server
        .ok(
            &people.admin,
            &format!("/api/v1/directory/services/{other}/withdraw"),
            json!({ "reason": "The group has closed." }),
        )
        .await;
    let reply = server
        .post(&people.worker, &path, connect(other, "signposted"))
        .await;
    refused(&reply, "service_withdrawn");
    server.catch_up().await;
    let listing = server.get_public("/oruk/services?per_page=500").await;
    assert_eq!(listing.status, 200);
    let ids = crate::support::texts(&listing.body, "contents", "id");
    assert!(!ids.contains(&other.to_string().as_str()));
    assert!(ids.contains(&service.to_string().as_str()));
    // A sync by modification time learns it is gone; by id it reads as defunct.
    let sync = server
        .get_public("/oruk/services?modified_after=2000-01-01T00:00:00Z&per_page=500")
        .await;
    let gone = sync.body["contents"]
        .as_array()
        .expect("contents")
        .iter()
        .find(|s| s["id"] == json!(other))
        .expect("in the sync");
    assert_eq!(gone["status"], "defunct");
    let one = server
        .get_public(&format!("/oruk/services/{service}"))
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["alert"], "Closed to new referrals.");
    let missing = server
        .get_public(&format!("/oruk/services/{}", Uuid::new_v4()))
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn capacity_changes_and_connection_outcomes_show_in_the_gap_report() {
    let server = TestServer::start().await;
    let people = &server.people;
    // Two housing services in Frome, one money service in Wells.
    let frome_a = Uuid::from_u128(0xf1);
    let frome_b = Uuid::from_u128(0xf2);
    let wells = Uuid::from_u128(0xf3);
    let import = server
        .post(
            &people.admin,
            "/api/v1/directory/import",
            json!({ "contents": [
                oruk_service(frome_a, "Frome Housing Advice", &["housing"], "Frome"),
                oruk_service(frome_b, "Frome Tenancy Help", &["housing"], "Frome"),
                oruk_service(wells, "Wells Debt Clinic", &["money_benefits_debt"], "Wells"),
            ]}),
        )
        .await;
    assert_eq!(import.status, 200, "{:#}", import.body);
    assert_eq!(import.body["added"].as_array().map(Vec::len), Some(3));
    let client = open_case(&server).await;
    let connection = Uuid::new_v4();
    server
        .ok(
            &people.worker,
            &client_path(client, "connections"),
            json!({ "connection_id": connection, "service_id": frome_a, "need": "housing", "kind": "signposted" }),
        )
        .await;
    server
        .ok(
            &people.worker,
            &client_path(client, "connection-outcomes"),
            json!({ "connection_id": connection, "outcome": "waiting_list", "waiting_weeks": 10 }),
        )
        .await;
    server
        .ok(
            &people.lead,
            &format!("/api/v1/directory/services/{frome_a}/capacity"),
            json!({ "availability": "waiting_list", "waiting_weeks": 10 }),
        )
        .await;
    server
        .ok(
            &people.lead,
            &format!("/api/v1/directory/services/{frome_b}/capacity"),
            json!({ "availability": "closed" }),
        )
        .await;
    server.catch_up().await;
    let report = server
        .read(&people.lead, "/api/v1/reports/service-gaps")
        .await;
    let capacity: Vec<&Value> = report.body["capacity"]
        .as_array()
        .expect("capacity")
        .iter()
        .filter(|c| c["area"] == "frome" || c["area"] == "wells")
        .collect();
    insta::assert_yaml_snapshot!("directory_capacity_in_gap_report", capacity);
    let connections = report.body["connections"].as_array().expect("connections");
    let row = connections
        .iter()
        .find(|c| c["service_id"] == json!(frome_a))
        .expect("the connection's service");
    assert_eq!(row["service_name"], "Frome Housing Advice");
    // One person's connection: its counts, and the wait that would give them away, are suppressed.
    assert_eq!(row["waiting_list"], Value::Null);
    assert_eq!(row["mean_waiting_weeks"], Value::Null);
    let of_the_organisation = crate::support::under_v3(Some(people.lead.organisation_id));
    let figures = app::reports::gap_report(&server.db.app_client().await, &of_the_organisation)
        .await
        .expect("the figures");
    let row = figures
        .connections
        .iter()
        .find(|c| c.service_id == frome_a)
        .expect("the connection's service");
    assert_eq!(row.waiting_list, Some(1));
    assert_eq!(row.mean_waiting_weeks, Some(10.0));
}

#[test]
fn every_sample_record_meets_the_profile_and_names_real_needs() {
    let mut needs = std::collections::BTreeSet::new();
    for record in sample_records() {
        let service = OrukService::from_value(record).expect("a valid record");
        needs.extend(service.needs());
        assert!(!service.areas().is_empty(), "{} has areas", service.name);
    }
    assert_eq!(
        needs.len(),
        NeedDomain::ALL.len(),
        "the sample covers every need domain"
    );
}

/// A copy of the sample's first service (benefits advice, active, no word of "lonely older
/// people" in it) under another id and name.
fn service_named(id: u128, name: &str) -> Value {
    let mut record = sample_records()[0].clone();
    record["id"] = json!(Uuid::from_u128(id).to_string());
    record["name"] = json!(name);
    record
}

const ALL_WORDS: u128 = 0xA11;
const ONE_WORD: u128 = 0x0E;

/// The sample directory, a service named by all of "lonely older people" and one named by one
/// of them, projected.
async fn directory_with_named_services() -> (testkit::TestDb, EventStore) {
    let (db, store) = store_with_db(4).await;
    let mut records = sample_records();
    records.push(service_named(ALL_WORDS, "Lonely Older People Club"));
    records.push(service_named(ONE_WORD, "People First Club"));
    let report = import(&store, records).await;
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    catch_up(&store).await;
    (db, store)
}

fn words(text: &str, available_only: bool, offset: i64, limit: i64) -> DirectoryQuery {
    DirectoryQuery {
        text: Some(text.to_owned()),
        available_only,
        offset,
        limit,
        ..DirectoryQuery::default()
    }
}

fn ids(found: &[app::directory::DirectoryEntry]) -> Vec<Uuid> {
    found.iter().map(|e| e.service_id).collect()
}

#[tokio::test]
async fn a_broad_search_puts_the_service_matching_every_word_first_and_pages_without_gaps() {
    let (_db, store) = directory_with_named_services().await;
    let client = store.pool().get().await.expect("a connection");
    let broad = |offset, limit| words("lonely older people", false, offset, limit);

    // Most of the directory matches; the service named by every word comes first, above the
    // one named by one word, and the page was chosen among candidates.
    let (found, ranked) = search_ranked(&**client, &broad(0, 100), SEARCH_CANDIDATES)
        .await
        .expect("search");
    assert_ne!(ranked, Ranked::EveryMatch);
    assert_eq!(found[0].service_id, Uuid::from_u128(ALL_WORDS));
    let one_word = found
        .iter()
        .position(|e| e.service_id == Uuid::from_u128(ONE_WORD))
        .expect("the service named by one word is found");
    assert!(one_word > 0);

    // Page one and page two are the first 40 of one ordering, each service once.
    let mut pages = Vec::new();
    for offset in [0, 20] {
        let mut page = app::directory::search(&**client, &broad(offset, 20))
            .await
            .expect("a page");
        assert_eq!(page.len(), 21, "a next page");
        page.truncate(20);
        pages.extend(ids(&page));
    }
    let mut first_40 = search_in_full(&**client, &broad(0, 40))
        .await
        .expect("every match ranked");
    first_40.truncate(40);
    assert_eq!(pages, ids(&first_40));
    let distinct: std::collections::BTreeSet<Uuid> = pages.iter().copied().collect();
    assert_eq!(distinct.len(), 40);
}

#[tokio::test]
async fn a_search_among_candidates_answers_the_page_that_ranking_every_match_answers() {
    let (_db, store) = directory_with_named_services().await;
    let client = store.pool().get().await.expect("a connection");
    let mut ways = Vec::new();
    let mut proven = Vec::new();
    for text in [
        "lonely older people",
        "walking",
        "lunch club",
        "support group for carers",
        "money advice",
        "a walking group for older people who live alone and would like some company",
        "xylophone",
        "the of",
    ] {
        for available_only in [false, true] {
            for offset in [0, 20, 200] {
                let query = words(text, available_only, offset, 20);
                let every = search_in_full(&**client, &query)
                    .await
                    .expect("every match ranked");
                for candidates in [1, 5, 50, SEARCH_CANDIDATES] {
                    let (found, ranked) = search_ranked(&**client, &query, candidates)
                        .await
                        .expect("search");
                    assert_eq!(
                        ids(&found),
                        ids(&every),
                        "{text:?}, available only {available_only}, from {offset}, \
                         {candidates} candidates, {ranked:?}"
                    );
                    ways.push(ranked);
                    proven.push((text, available_only, offset, candidates, ranked));
                }
            }
        }
    }
    // The candidates answered where they are fewer than the matches, so the bound on every
    // service outside them was what let them answer (not a list that held every match).
    let way_of = |text: &str, candidates: i64| {
        proven
            .iter()
            .find(|(t, available, offset, c, _)| {
                *t == text && !*available && *offset == 0 && *c == candidates
            })
            .map(|(.., ranked)| *ranked)
    };
    assert_eq!(
        way_of("lonely older people", 5),
        Some(Ranked::EachWordsBest),
        "the broad search's page proven from each word's five best"
    );
    assert_eq!(
        way_of(
            "a walking group for older people who live alone and would like some company",
            50
        ),
        Some(Ranked::BestScores),
        "a long search's page proven from the best scores"
    );
    // Each way of choosing the page answered some of them.
    for way in [
        Ranked::EachWordsBest,
        Ranked::BestScores,
        Ranked::EveryMatch,
    ] {
        assert!(ways.contains(&way), "{way:?} never answered");
    }
}

#[tokio::test]
async fn search_words_follow_a_changed_service_and_a_rebuild() {
    let (_db, store) = directory_with_named_services().await;
    let client = store.pool().get().await.expect("a connection");
    let find = |text: &'static str| {
        let client = &client;
        async move {
            search_ranked(&***client, &words(text, false, 0, 100), SEARCH_CANDIDATES)
                .await
                .expect("search")
        }
    };
    let mut changed = service_named(ONE_WORD, "People First Club");
    changed["description"] = json!("Zanzibar evenings for anyone who would like company.");
    let report = import(&store, vec![changed]).await;
    assert_eq!(report.changed, [Uuid::from_u128(ONE_WORD)]);
    catch_up(&store).await;

    let (found, ranked) = find("zanzibar").await;
    assert_eq!(ids(&found), [Uuid::from_u128(ONE_WORD)]);
    assert_ne!(ranked, Ranked::EveryMatch);
    // Its old description's words find the others made from the same record, not it.
    let (found, _) = find("appointment entitled").await;
    assert!(
        found
            .iter()
            .any(|e| e.service_id == Uuid::from_u128(ALL_WORDS))
    );
    assert!(
        found
            .iter()
            .all(|e| e.service_id != Uuid::from_u128(ONE_WORD))
    );

    // Rebuilt from the log, the words' scores are the same rows.
    let before = crate::support::table_rows(&client, &["directory_search_terms"]).await;
    casebook::rebuild::rebuild(
        &store,
        casebook::rebuild::RebuildTarget::Directory,
        &casebook::rebuild::RebuildOptions::default(),
    )
    .await
    .expect("rebuild");
    let after = crate::support::table_rows(&client, &["directory_search_terms"]).await;
    assert_eq!(before, after);
    assert!(before[0].as_array().is_some_and(|rows| rows.len() > 1000));
    assert_eq!(find("zanzibar").await.0.len(), 1);
}

/// How many rows of `directory_search_terms` `service` has.
async fn search_terms_of(client: &tokio_postgres::Client, service: Uuid) -> i64 {
    testkit::query_value(
        client,
        "SELECT count(*) FROM directory_search_terms WHERE service_id = $1",
        &[&service],
    )
    .await
}

#[tokio::test]
async fn a_withdrawn_service_leaves_the_search_words_and_comes_back_when_listed_again() {
    let (_db, store) = directory_with_named_services().await;
    let client = store.pool().get().await.expect("a connection");
    const ZANZIBAR: u128 = 0x2A2A;
    let listed = service_named(ZANZIBAR, "Zanzibar Walking Club");
    assert!(
        import(&store, vec![listed.clone()])
            .await
            .rejected
            .is_empty()
    );
    catch_up(&store).await;
    let service = Uuid::from_u128(ZANZIBAR);
    assert!(search_terms_of(&client, service).await > 0);
    let find = async |text: &str| {
        let query = words(text, false, 0, 100);
        let (found, _) = search_ranked(&**client, &query, SEARCH_CANDIDATES)
            .await
            .expect("search");
        let every = search_in_full(&**client, &query)
            .await
            .expect("every match ranked");
        assert_eq!(ids(&found), ids(&every), "{text:?}");
        ids(&found)
    };
    assert_eq!(find("zanzibar").await, [service]);
    assert!(find("walking club").await.contains(&service));

    // Withdrawn (defunct at source): its words go with it, and no search finds it; the others
    // are found as before.
    let mut defunct = listed.clone();
    defunct["status"] = json!("defunct");
    let report = import(&store, vec![defunct]).await;
    assert_eq!(report.withdrawn, [service]);
    catch_up(&store).await;
    assert_eq!(search_terms_of(&client, service).await, 0);
    assert_eq!(find("zanzibar").await, Vec::<Uuid>::new());
    let walking = find("walking club").await;
    assert!(!walking.is_empty() && !walking.contains(&service));
    let broad = find("lonely older people").await;
    assert_eq!(broad[0], Uuid::from_u128(ALL_WORDS));
    let terms: i64 = testkit::query_value(
        &client,
        "SELECT count(*) FROM directory_search_terms t JOIN directory_services d USING (service_id) \
         WHERE d.withdrawn",
        &[],
    )
    .await;
    assert_eq!(terms, 0, "no withdrawn service keeps a word");

    // Listed again, it is found again, with the same words as before.
    let report = import(&store, vec![listed]).await;
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    catch_up(&store).await;
    assert!(search_terms_of(&client, service).await > 0);
    assert_eq!(find("zanzibar").await, [service]);
}
