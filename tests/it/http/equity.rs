//! Demographics for equity reporting over HTTP, against the real database: recorded and
//! sealed, what reports count by derived by the service (age band at referral, ethnic group,
//! deprivation decile of the postcode), the outcome report broken down by each under the
//! small-number rule (firing where a group is small, with its complement across groups, and not
//! where every group is large enough), and gone from every breakdown with the person's erasure.

use serde_json::{Value, json};
use uuid::Uuid;

use super::journey::{assign, client_path, intake, refer_and_accept};
use super::{Person, TestServer};

/// A GP referral of someone born on `born`, accepted by the lead and assigned to the worker.
async fn person_born(server: &TestServer, born: &str) -> Uuid {
    let people = &server.people;
    let (client, referral) = (Uuid::new_v4(), Uuid::new_v4());
    let mut body = intake(referral, "gp");
    body["client"]["personal"]["date_of_birth"] = json!(born);
    refer_and_accept(
        server,
        (&people.referrer, &people.lead),
        client,
        referral,
        body,
    )
    .await;
    assign(server, client, &people.worker).await;
    client
}

async fn record(server: &TestServer, who: &Person, client: Uuid, demographics: Value) -> i64 {
    let reply = server
        .ok(
            who,
            &client_path(client, "demographics"),
            json!({ "demographics": demographics }),
        )
        .await;
    reply.body["position"].as_i64().expect("a position")
}

/// The breakdown's group `code`.
fn group<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["code"] == code)
        .unwrap_or_else(|| panic!("no group {code} in {report:#}"))
}

/// Every count of a group's report by its path (`referrals.by_source.gp`): percentages, means
/// and bookkeeping left out; a withheld count is null.
fn counts(report: &Value) -> std::collections::BTreeMap<String, Value> {
    fn walk(path: &str, value: &Value, out: &mut std::collections::BTreeMap<String, Value>) {
        match value {
            Value::Object(fields) => {
                for (name, field) in fields {
                    let skip = name.ends_with("_percent")
                        || name.starts_with("mean_")
                        || name.starts_with("median_")
                        || ["suppression", "as_of", "rules_version", "destination_names"]
                            .contains(&name.as_str());
                    if !skip {
                        walk(&format!("{path}.{name}"), field, out);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    let code = item["code"]
                        .as_str()
                        .or_else(|| item["measure"].as_str())
                        .unwrap_or("?");
                    walk(&format!("{path}.{code}"), item, out);
                }
            }
            Value::Number(n) if n.is_i64() => {
                out.insert(path.to_owned(), value.clone());
            }
            Value::Null => {
                out.insert(path.to_owned(), Value::Null);
            }
            _ => {}
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk("", report, &mut out);
    out
}

/// An attacker's one subtraction over what was published: a count of every group adds up to
/// the whole report's, and a group's referrals and closures add up to their parts, so none of
/// those sums may have exactly one withheld cell.
fn assert_no_cell_worked_out(report: &Value) {
    let groups: Vec<_> = report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| counts(&g["report"]))
        .collect();
    let paths: std::collections::BTreeSet<&String> = groups.iter().flat_map(|g| g.keys()).collect();
    for path in paths {
        let nulls = groups
            .iter()
            .filter(|g| g.get(path) == Some(&Value::Null))
            .count();
        let numbers = groups
            .iter()
            .filter(|g| g.get(path).is_some_and(Value::is_i64))
            .count();
        assert!(
            !(nulls == 1 && numbers > 0),
            "{path} of one group is the whole's less the others': {report:#}"
        );
    }
    for group in &groups {
        for (total, parts) in [
            (".referrals.total", ".referrals.by_source."),
            (".episodes.closed", ".episodes.closed_by_reason."),
        ] {
            let hidden = std::iter::once(group.get(total))
                .chain(
                    group
                        .iter()
                        .filter(|(k, _)| k.starts_with(parts) && k.ends_with(".count"))
                        .map(|(_, v)| Some(v)),
                )
                .filter(|v| *v == Some(&Value::Null))
                .count();
            assert_ne!(hidden, 1, "{total} and its parts: {report:#}");
        }
    }
}

async fn breakdown(server: &TestServer, by: &str, after: i64) -> Value {
    server.catch_up().await;
    server
        .read(
            &server.people.analyst,
            &format!("/api/v1/reports/outcomes/breakdown?by={by}&after={after}"),
        )
        .await
        .body
}

#[tokio::test]
async fn the_outcome_report_breaks_down_by_demographics_under_the_small_number_rule() {
    let server = TestServer::start().await;
    let people = &server.people;
    let admin = server.db.admin_client().await;
    // A clearly labelled test fixture, not a published value: one LSOA in decile 2.
    admin
        .batch_execute(
            "INSERT INTO imd_lsoa_deciles VALUES ('E0TEST001', 'test fixture 001A', 5000, 2);
             INSERT INTO imd_postcodes VALUES ('BA11 1AA', 'E0TEST001');",
        )
        .await
        .expect("the IMD fixture");

    // Seven people aged 75 to 84 at referral, six aged 45 to 54, two aged 25 to 34; nine
    // women and six men; all but the youngest two in the fixture's postcode.
    let mut position = 0;
    let mut youngest = Vec::new();
    for (index, born) in std::iter::repeat_n("1948-05-02", 7)
        .chain(std::iter::repeat_n("1975-01-01", 6))
        .chain(std::iter::repeat_n("1996-01-01", 2))
        .enumerate()
    {
        let client = person_born(&server, born).await;
        let young = born == "1996-01-01";
        if young {
            youngest.push(client);
        }
        let demographics = json!({
            "sex": if index % 5 < 3 { "female" } else { "male" },
            "gender_identity": if index % 5 < 3 { "female" } else { "male" },
            "ethnic_category": if young { "H" } else { "A" },
            "preferred_language": "English",
            "interpreter_needed": false,
            "gp_practice": "L85016",
            "postcode": if young { Value::Null } else { json!("ba11 1aa") },
        });
        position = record(&server, &people.worker, client, demographics).await;
    }

    // What reports count by was derived by the service, and kept apart from the sealed event.
    let row = admin
        .query_one(
            "SELECT age_band, ethnic_group, imd_decile, sex FROM equity_demographics \
             WHERE client_id = $1",
            &[&youngest[0]],
        )
        .await
        .expect("the youngest's row");
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("25_34"));
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("asian_or_asian_british")
    );
    assert_eq!(row.get::<_, Option<i16>>(2), None, "no postcode, no decile");
    let deciles: Vec<Option<i16>> = admin
        .query(
            "SELECT imd_decile FROM equity_demographics WHERE age_band <> '25_34'",
            &[],
        )
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(deciles, vec![Some(2); 13]);
    let stored: Value = testkit::query_value(
        &admin,
        "SELECT payload FROM events WHERE stream_id = $1 AND event_type = 'DemographicsRecorded'",
        &[&youngest[0]],
    )
    .await;
    assert!(
        stored["demographics"][eventstore::SEALED].is_string(),
        "{stored:#}"
    );
    assert!(
        stored["reportable"][eventstore::SEALED].is_string(),
        "{stored:#}"
    );

    // By age band: the two youngest are suppressed; alone, they could be worked out from the
    // whole report, so the next smallest group (six) goes with them; the seven are shown.
    let by_age = breakdown(&server, "age_band", position).await;
    assert_no_cell_worked_out(&by_age);
    let whole = server.caught_up_outcomes().await;
    assert_eq!(whole["referrals"]["total"], 15, "{whole:#}");
    assert_eq!(group(&by_age, "75_84")["report"]["referrals"]["total"], 7);
    assert_eq!(group(&by_age, "75_84")["report"]["episodes"]["started"], 7);
    assert_eq!(
        group(&by_age, "25_34")["report"]["referrals"]["total"],
        Value::Null,
        "{by_age:#}"
    );
    assert_eq!(
        group(&by_age, "45_54")["report"]["referrals"]["total"],
        Value::Null,
        "the complement is suppressed too: {by_age:#}"
    );
    assert_eq!(group(&by_age, "0_17")["report"]["referrals"]["total"], 0);
    assert_eq!(
        group(&by_age, "not_recorded")["report"]["referrals"]["total"],
        0
    );
    assert!(by_age["suppression"]["cells"].as_u64().expect("cells") > 0);
    assert_eq!(by_age["suppression"]["below"], 5);

    // By sex: nine and six, both shown, and they add up to the whole.
    let by_sex = breakdown(&server, "sex", position).await;
    assert_no_cell_worked_out(&by_sex);
    assert_eq!(group(&by_sex, "female")["report"]["referrals"]["total"], 9);
    assert_eq!(group(&by_sex, "male")["report"]["referrals"]["total"], 6);
    assert_eq!(group(&by_sex, "male")["report"]["referrals"]["people"], 6);
    assert_eq!(
        group(&by_sex, "not_recorded")["report"]["referrals"]["total"],
        0
    );

    // By deprivation decile: thirteen in decile 2; the two with no postcode are not recorded,
    // suppressed, and decile 2 with them.
    let by_imd = breakdown(&server, "imd_decile", position).await;
    assert_no_cell_worked_out(&by_imd);
    assert_eq!(
        group(&by_imd, "not_recorded")["report"]["referrals"]["total"],
        Value::Null
    );
    assert_eq!(
        group(&by_imd, "2")["report"]["referrals"]["total"],
        Value::Null
    );
    assert_eq!(group(&by_imd, "1")["report"]["referrals"]["total"], 0);

    // Erasure takes the person out of every group: they count as not recorded.
    let erased = server
        .ok(
            &people.admin,
            &client_path(youngest[0], "erasure"),
            json!({ "reason": "erasure request ref 29" }),
        )
        .await;
    let erased_row = admin
        .query_one(
            "SELECT erased, age_band, ethnic_group, sex FROM equity_demographics \
             WHERE client_id = $1",
            &[&youngest[0]],
        )
        .await
        .expect("the erased row");
    assert!(erased_row.get::<_, bool>(0));
    assert_eq!(erased_row.get::<_, Option<String>>(1), None);
    assert_eq!(erased_row.get::<_, Option<String>>(2), None);
    let after_erasure = breakdown(
        &server,
        "ethnic_group",
        erased.body["position"].as_i64().expect("a position"),
    )
    .await;
    assert_no_cell_worked_out(&after_erasure);
    assert_eq!(
        group(&after_erasure, "white")["report"]["referrals"]["total"],
        13
    );
    // One Asian person left and one not recorded: both small, so neither is shown.
    assert_eq!(
        group(&after_erasure, "asian_or_asian_british")["report"]["referrals"]["total"],
        Value::Null
    );
    assert_eq!(
        group(&after_erasure, "not_recorded")["report"]["referrals"]["total"],
        Value::Null
    );
}

/// What reports count by is written just after the append. A service stopped between the two
/// leaves no row; the caller's retry under the same key (answered with the first result) writes
/// it, and a retry of an older recording never overwrites a newer one.
#[tokio::test]
async fn a_retried_recording_writes_what_a_stopped_first_attempt_left_unwritten() {
    let server = TestServer::start().await;
    let people = &server.people;
    let admin = server.db.admin_client().await;
    let client = person_born(&server, "1950-06-01").await;
    let path = client_path(client, "demographics");
    let first = json!({ "demographics": { "sex": "female", "ethnic_category": "A" } });
    let key = [("Idempotency-Key", "demographics-1")];
    let recorded = server
        .call(Some(&people.worker), "POST", &path, Some(&first), &key)
        .await;
    assert_eq!(recorded.status, 201, "{:#}", recorded.body);
    // As if the service had stopped after the append: the row was never written.
    let removed = admin
        .execute(
            "DELETE FROM equity_demographics WHERE client_id = $1",
            &[&client],
        )
        .await
        .expect("delete");
    assert_eq!(removed, 1);
    let retried = server
        .call(Some(&people.worker), "POST", &path, Some(&first), &key)
        .await;
    assert_eq!(retried.status, 201, "{:#}", retried.body);
    assert_eq!(
        retried.body["position"], recorded.body["position"],
        "the first result"
    );
    let sex = |row: tokio_postgres::Row| row.get::<_, Option<String>>(0);
    let row = admin
        .query_one(
            "SELECT sex, ethnic_group FROM equity_demographics WHERE client_id = $1",
            &[&client],
        )
        .await
        .expect("the row is back");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("white"));
    assert_eq!(sex(row).as_deref(), Some("female"));

    // A newer recording, then the first one's retry again: the newer stays.
    let newer = json!({ "demographics": { "sex": "male" } });
    record(
        &server,
        &people.worker,
        client,
        newer["demographics"].clone(),
    )
    .await;
    let again = server
        .call(Some(&people.worker), "POST", &path, Some(&first), &key)
        .await;
    assert_eq!(again.status, 201, "{:#}", again.body);
    let row = admin
        .query_one(
            "SELECT sex FROM equity_demographics WHERE client_id = $1",
            &[&client],
        )
        .await
        .expect("the row");
    assert_eq!(sex(row).as_deref(), Some("male"));
}

#[tokio::test]
async fn demographics_are_refused_by_field_and_never_corrected() {
    let server = TestServer::start().await;
    let people = &server.people;
    let client = person_born(&server, "1960-02-29").await;
    let bad_practice = server
        .post(
            &people.worker,
            &client_path(client, "demographics"),
            json!({ "demographics": { "gp_practice": "surgery on the hill" } }),
        )
        .await;
    bad_practice.refused_at(422, "demographics.gp_practice");
    let bad_code = server
        .post(
            &people.worker,
            &client_path(client, "demographics"),
            json!({ "demographics": { "ethnic_category": "Q" } }),
        )
        .await;
    assert_eq!(bad_code.status, 400, "{:#}", bad_code.body);
    let derived_given = server
        .post(
            &people.worker,
            &client_path(client, "demographics"),
            json!({ "demographics": {}, "reportable": { "age_band": "0_17" } }),
        )
        .await;
    assert_eq!(derived_given.status, 400, "{:#}", derived_given.body);
    // Another organisation's staff do not learn the record exists.
    let foreign = server
        .post(
            &people.foreign_worker,
            &client_path(client, "demographics"),
            json!({ "demographics": {} }),
        )
        .await;
    assert_eq!(foreign.status, 404, "{:#}", foreign.body);

    record(
        &server,
        &people.worker,
        client,
        json!({ "sex": "male", "postcode": "BA11 1AA" }),
    )
    .await;
    let entry = server.event_id(&client, "DemographicsRecorded").await;
    let correction = server
        .post(
            &people.worker,
            &client_path(client, "corrections"),
            json!({ "corrects": entry, "corrected_fields": { "demographics": { "sex": "female" } },
                    "reason": "typed the wrong one" }),
        )
        .await;
    correction.refused_at(422, "corrects");

    // Recording again replaces them: the latest counts.
    record(&server, &people.worker, client, json!({ "sex": "female" })).await;
    let sex: Option<String> = testkit::query_value(
        &server.db.admin_client().await,
        "SELECT sex FROM equity_demographics WHERE client_id = $1",
        &[&client],
    )
    .await;
    assert_eq!(sex.as_deref(), Some("female"));

    let unknown_by = server
        .get(
            &people.analyst,
            "/api/v1/reports/outcomes/breakdown?by=shoe_size",
        )
        .await;
    assert_eq!(unknown_by.status, 400, "{:#}", unknown_by.body);
    let worker_reads = server
        .get(&people.worker, "/api/v1/reports/outcomes/breakdown?by=sex")
        .await;
    assert_eq!(worker_reads.status, 403, "{:#}", worker_reads.body);
}

#[tokio::test]
async fn the_analyst_chooses_a_breakdown_in_the_console_without_script() {
    let server = TestServer::start().await;
    let people = &server.people;
    // Five women, five men, and one each of two answers too few to show: two cells are
    // suppressed, so neither needs a complement and the fives are shown.
    let mut position = 0;
    for sex in std::iter::repeat_n("female", 5)
        .chain(std::iter::repeat_n("male", 5))
        .chain(["not_known", "indeterminate"])
    {
        let client = person_born(&server, "1948-05-02").await;
        position = record(&server, &people.worker, client, json!({ "sex": sex })).await;
    }
    server.catch_up().await;
    assert!(position > 0);

    let browser = super::console::signed_in_browser(&server, &people.analyst).await;
    browser
        .goto(&format!("{}/console/reports/breakdown", server.base))
        .await;
    assert_eq!(browser.text("h1").await, "Outcomes by group");
    browser.assert_accessible("the breakdown page").await;
    browser.select("#by", "sex").await;
    browser.click_and_wait("#show-breakdown").await;
    let rows = browser.texts("#breakdown tbody tr").await;
    for shown in [
        "female 5 5 5",
        "male 5 5 5",
        "not known suppressed suppressed",
    ] {
        assert!(
            rows.iter().any(|r| r.starts_with(shown)),
            "{shown}: {rows:?}"
        );
    }
    browser.assert_accessible("the breakdown by sex").await;

    // The CSV download holds the page's figures, suppressed alike (and the API's file is the
    // same file).
    assert_eq!(
        browser.text("#breakdown-csv").await,
        "Download these figures (CSV)"
    );
    let analyst = super::console::sign_in(&server, &people.analyst).await;
    let (status, csv) =
        super::console::get(&server, &analyst, "/console/reports/breakdown.csv?by=sex").await;
    assert_eq!(status, 200, "{csv}");
    let row = |group: &str, figure: &str| {
        csv.lines()
            .find(|l| {
                l.starts_with(&format!("{group},")) && l.contains(&format!(",referrals,{figure},"))
            })
            .unwrap_or_else(|| panic!("no {group} {figure} in {csv}"))
            .to_owned()
    };
    assert!(csv.contains("# by: sex"), "{csv}");
    assert!(
        csv.contains("group,group_label,section,figure,code,band,value,suppressed"),
        "{csv}"
    );
    assert_eq!(
        row("female", "total"),
        "female,female,referrals,total,,,5,false"
    );
    assert_eq!(
        row("male", "people"),
        "male,male,referrals,people,,,5,false"
    );
    assert_eq!(
        row("not_known", "total"),
        "not_known,not known,referrals,total,,,,true"
    );
    let api = server
        .read(
            &people.analyst,
            &format!("/api/v1/reports/outcomes/breakdown.csv?by=sex&after={position}"),
        )
        .await;
    let api_csv = api.body.as_str().expect("a text body");
    assert!(
        api_csv.contains("\r\nfemale,female,referrals,total,,,5,false\r\n"),
        "{api_csv}"
    );
    let (status, _) = super::console::get(
        &server,
        &analyst,
        "/console/reports/breakdown.csv?by=shoe_size",
    )
    .await;
    assert_eq!(status, 400);

    // Anything else is refused at the field; a link worker has no report.
    let (status, _) =
        super::console::get(&server, &analyst, "/console/reports/breakdown?by=shoe_size").await;
    assert_eq!(status, 422);
    let worker = super::console::sign_in(&server, &people.worker).await;
    let (status, _) =
        super::console::get(&server, &worker, "/console/reports/breakdown?by=sex").await;
    assert_eq!(status, 403);
    server.stop().await;
}

/// The person's page records their demographics through the same command as the API, the age
/// band worked out by the service; a refusal and a form sent after a colleague's recording (a
/// stale version) both come back with what was typed and an error summary, axe clean.
#[tokio::test]
async fn a_link_worker_records_demographics_in_the_console_and_a_stale_form_comes_back_as_typed() {
    let server = TestServer::start().await;
    let people = &server.people;
    let client = person_born(&server, "1948-05-02").await;
    let browser = super::console::signed_in_browser(&server, &people.worker).await;
    let person = format!("/console/people/{client}");
    browser.goto(&format!("{}{person}", server.base)).await;
    assert_eq!(
        browser.text("#demographics-summary").await,
        "Not recorded yet."
    );
    browser.click_and_wait("#record-demographics").await;
    assert_eq!(browser.path().await, format!("{person}/demographics"));
    browser.assert_accessible("the demographics form").await;

    // A practice code the application refuses: shown at its field, the rest kept.
    browser.select("#sex", "female").await;
    browser.select("#gender_identity", "female").await;
    browser.select("#ethnic_category", "C").await;
    browser.select("#interpreter_needed", "true").await;
    browser.fill("preferred_language", "Polish").await;
    browser.fill("communication_needs", "Large print").await;
    browser.fill("gp_practice", "surgery on the hill").await;
    browser.fill("postcode", "ba11 1aa").await;
    browser.click_and_wait("#record-demographics-button").await;
    assert!(!browser.text(".nhsuk-error-summary a").await.is_empty());
    assert!(
        browser
            .text("#gp_practice-error")
            .await
            .contains("capital letter and five digits"),
        "{}",
        browser.text("#gp_practice-error").await
    );
    assert_eq!(browser.value_of("preferred_language").await, "Polish");
    assert_eq!(browser.value_of("sex").await, "female");
    browser.assert_accessible("demographics refused").await;

    // Meanwhile a colleague records the person's demographics over the API: the form, sent
    // against the version it was shown at, comes back as typed with the error summary, and
    // nothing of it was written.
    browser.fill("gp_practice", "L85016").await;
    record(&server, &people.lead, client, json!({ "sex": "male" })).await;
    browser.click_and_wait("#record-demographics-button").await;
    assert_eq!(browser.path().await, format!("{person}/demographics"));
    assert!(
        browser
            .text(".nhsuk-error-summary")
            .await
            .contains("Someone else changed this record just now"),
        "{}",
        browser.text(".nhsuk-error-summary").await
    );
    for (id, typed) in [
        ("sex", "female"),
        ("gender_identity", "female"),
        ("ethnic_category", "C"),
        ("interpreter_needed", "true"),
        ("preferred_language", "Polish"),
        ("communication_needs", "Large print"),
        ("gp_practice", "L85016"),
        ("postcode", "ba11 1aa"),
    ] {
        assert_eq!(browser.value_of(id).await, typed, "{id} kept as typed");
    }
    browser
        .assert_accessible("a form sent against a stale version")
        .await;
    assert_eq!(
        sex_of(&server, client).await.as_deref(),
        Some("male"),
        "the colleague's stands"
    );

    // Sent again (now at the version it was shown at), it is recorded; the page shows the age
    // band the service worked out from the date of birth.
    browser.click_and_wait("#record-demographics-button").await;
    assert_eq!(browser.path().await, format!("{person}?done=demographics"));
    assert_eq!(
        super::console::banner(&browser).await,
        "Demographics recorded"
    );
    let summary = browser.text("#demographics-summary").await;
    for shown in [
        "75 to 84",
        "Female",
        "White - Any other White background",
        "Polish",
        "L85016",
        "BA11 1AA",
    ] {
        assert!(summary.contains(shown), "{shown}: {summary}");
    }
    browser
        .assert_accessible("the person's page with demographics")
        .await;
    assert_eq!(sex_of(&server, client).await.as_deref(), Some("female"));
    let age_band: Option<String> = testkit::query_value(
        &server.db.admin_client().await,
        "SELECT age_band FROM equity_demographics WHERE client_id = $1",
        &[&client],
    )
    .await;
    assert_eq!(age_band.as_deref(), Some("75_84"));
    server.stop().await;
}

/// The sex the breakdowns count `client` by.
async fn sex_of(server: &TestServer, client: Uuid) -> Option<String> {
    testkit::query_value(
        &server.db.admin_client().await,
        "SELECT sex FROM equity_demographics WHERE client_id = $1",
        &[&client],
    )
    .await
}
