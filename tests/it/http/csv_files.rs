//! Reports and caseloads as CSV files: each file, read back with the `csv` crate, holds the JSON
//! answer's figures cell for cell; free text is quoted and never read as a formula; what the
//! figures are is in the file's notes and in the headers; errors stay problems.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use super::journey::{client_path, intake, open_case, referred, wemwbs};
use super::{Person, Reply, TestServer};

/// A file's table, read back as a spreadsheet importer would: the notes skipped, the header
/// row and the rows.
fn table(reply: &Reply) -> (Vec<String>, Vec<Vec<String>>) {
    let text = csv_text(reply);
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("a record").iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// A CSV answer's text, checked for its media type, byte order mark and line ends.
fn csv_text(reply: &Reply) -> &str {
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    let text = reply.body.as_str().expect("a text body");
    assert!(text.starts_with('\u{feff}'), "UTF-8 with a byte order mark");
    assert!(text.ends_with("\r\n"));
    text
}

/// The `# name: value` notes at the top of a file.
fn notes(reply: &Reply) -> BTreeMap<String, String> {
    csv_text(reply)
        .trim_start_matches('\u{feff}')
        .lines()
        .map_while(|line| line.strip_prefix("# "))
        .filter_map(|note| note.split_once(": "))
        .map(|(name, value)| (name.to_owned(), value.trim_end().to_owned()))
        .collect()
}

async fn get_as(server: &TestServer, who: &Person, path: &str, accept: &str) -> Reply {
    server
        .call(Some(who), "GET", path, None, &[("accept", accept)])
        .await
}

/// A cell as a number, or nothing for an empty one.
fn number(cell: &str) -> Option<f64> {
    (!cell.is_empty()).then(|| {
        cell.parse()
            .unwrap_or_else(|_| panic!("a number: {cell:?}"))
    })
}

/// A JSON figure as a number, or nothing for null.
fn figure(value: &Value) -> Option<f64> {
    match value {
        Value::Null => None,
        other => Some(
            other
                .as_f64()
                .unwrap_or_else(|| panic!("a number: {other}")),
        ),
    }
}

/// A figure's value: a number, a word (which way a measure runs, whose scores count), or
/// nothing.
#[derive(Clone, Debug, PartialEq)]
enum Figure {
    Number(f64),
    Word(String),
    Nothing,
}

impl Figure {
    fn of_json(value: &Value) -> Figure {
        match value {
            Value::Null => Figure::Nothing,
            Value::String(word) => Figure::Word(word.clone()),
            other => Figure::Number(
                other
                    .as_f64()
                    .unwrap_or_else(|| panic!("a number: {other}")),
            ),
        }
    }

    fn of_cell(cell: &str) -> Figure {
        match cell.parse::<f64>() {
            _ if cell.is_empty() => Figure::Nothing,
            Ok(n) => Figure::Number(n),
            Err(_) => Figure::Word(cell.to_owned()),
        }
    }
}

/// Where a figure is in the outcome report: section, figure, code, band.
type Place = (String, String, String, String);

/// A JSON report's cells by place: the value, and for a share whether the JSON says it is
/// suppressed. Walked from the JSON alone, not from the CSV writer's code.
fn outcome_cells(report: &Value) -> BTreeMap<Place, (Figure, Option<bool>)> {
    let mut cells = BTreeMap::new();
    let place = |section: &str, figure: &str, code: &str, band: &str| {
        (
            section.to_owned(),
            figure.to_owned(),
            code.to_owned(),
            band.to_owned(),
        )
    };
    for section in ["referrals", "episodes", "people"] {
        for (name, value) in report[section].as_object().expect("a section") {
            match value {
                // The names of the destinations counted: words beside the figures, not cells.
                _ if name == "destination_names" => {}
                Value::Array(shares) => {
                    for share in shares {
                        let code = share["code"].as_str().expect("a code");
                        let suppressed = share["suppressed"].as_bool();
                        cells.insert(
                            place(section, name, code, ""),
                            (Figure::of_json(&share["count"]), suppressed),
                        );
                        cells.insert(
                            place(section, &format!("{name}_percent"), code, ""),
                            (Figure::of_json(&share["percent"]), suppressed),
                        );
                    }
                }
                other => {
                    cells.insert(place(section, name, "", ""), (Figure::of_json(other), None));
                }
            }
        }
    }
    for measure in report["measures"].as_array().expect("measures") {
        let code = measure["measure"].as_str().expect("a measure");
        for (name, value) in measure.as_object().expect("a measure") {
            match name.as_str() {
                "measure" => {}
                "bands" => {
                    for band in value.as_array().expect("bands") {
                        let band_code = band["code"].as_str().expect("a band");
                        for (key, value) in band.as_object().expect("a band") {
                            if key != "code" {
                                cells.insert(
                                    place("measures", &format!("band_{key}"), code, band_code),
                                    (Figure::of_json(value), None),
                                );
                            }
                        }
                    }
                }
                _ => {
                    cells.insert(
                        place("measures", name, code, ""),
                        (Figure::of_json(value), None),
                    );
                }
            }
        }
    }
    cells
}

/// Checks an outcome report's CSV rows against its JSON, cell for cell: the same cells, the
/// same numbers and words, a share's suppression as the JSON says, and nothing shown called
/// suppressed.
fn assert_outcomes_match(json: &Value, header: &[String], rows: &[Vec<String>]) {
    assert_eq!(
        header,
        ["section", "figure", "code", "band", "value", "suppressed"]
    );
    let expected = outcome_cells(json);
    let mut seen = BTreeMap::new();
    for row in rows {
        let key = (
            row[0].clone(),
            row[1].clone(),
            row[2].clone(),
            row[3].clone(),
        );
        assert!(seen.insert(key.clone(), ()).is_none(), "{key:?} twice");
        let (value, suppressed) = expected
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} is not in the JSON report"));
        assert_eq!(&Figure::of_cell(&row[4]), value, "{key:?}");
        let said: bool = row[5].parse().expect("true or false");
        match suppressed {
            Some(suppressed) => assert_eq!(said, *suppressed, "{key:?}"),
            None if *value != Figure::Nothing => assert!(!said, "{key:?} is shown"),
            None => {}
        }
    }
    let missing: Vec<_> = expected.keys().filter(|k| !seen.contains_key(*k)).collect();
    assert!(missing.is_empty(), "not in the CSV: {missing:?}");
}

/// A server holding [`cohort`], caught up.
async fn with_cohort() -> TestServer {
    let server = TestServer::start().await;
    cohort(&server).await;
    server
}

/// Eight referrals (six from GPs, accepted, with contacts; two self-referrals, too few to
/// show), three WEMWBS pairs (too few to show), one case closed.
async fn cohort(server: &TestServer) {
    let people = &server.people;
    for i in 0..6 {
        let client = open_case(server).await;
        server
            .ok(
                &people.worker,
                &client_path(client, "contacts"),
                json!({ "contact_id": Uuid::new_v4(), "mode": "phone", "minutes": 20,
                        "contacted_at": chrono::Utc::now().to_rfc3339(), "note": null }),
            )
            .await;
        if i < 3 {
            for (timepoint, answer, days) in [("baseline", 2, 30), ("follow_up", 4, 1)] {
                server
                    .ok(
                        &people.worker,
                        &client_path(client, "assessments"),
                        wemwbs(timepoint, answer, days),
                    )
                    .await;
            }
        }
        if i == 5 {
            server
                .ok(
                    &people.worker,
                    &client_path(client, "closure"),
                    json!({ "reason": "goals_met", "note": null }),
                )
                .await;
        }
    }
    for _ in 0..2 {
        super::journey::refer_new(server, &people.referrer).await;
    }
    server.catch_up().await;
}

#[tokio::test]
async fn the_outcome_report_as_csv_holds_the_json_figures_cell_for_cell() {
    let server = with_cohort().await;
    let analyst = &server.people.analyst;
    let query = "from=2000-01-01&to=2099-12-31";
    let json = server
        .read(analyst, &format!("/api/v1/reports/outcomes?{query}"))
        .await;
    assert_eq!(json.header("vary"), Some("Accept"));
    let file = server
        .get(analyst, &format!("/api/v1/reports/outcomes.csv?{query}"))
        .await;
    let (header, rows) = table(&file);
    assert_outcomes_match(&json.body, &header, &rows);

    // Some cells are suppressed, and say so with an empty value.
    let row = |figure: &str, code: &str| {
        rows.iter()
            .find(|r| r[1] == figure && r[2] == code)
            .unwrap_or_else(|| panic!("a row for {figure} {code}"))
            .clone()
    };
    assert_eq!(row("by_source", "self_referral")[4..], ["", "true"]);
    assert_eq!(row("by_source", "gp")[4..], ["", "true"], "its complement");
    assert_eq!(row("total", "")[4..], ["8", "false"]);
    assert_eq!(row("paired", "wemwbs")[4..], ["", "true"]);
    assert_eq!(row("mean_change", "wemwbs")[4..], ["", "true"]);
    assert_eq!(
        row("direction", "wemwbs")[4..],
        ["higher_is_better", "false"]
    );

    // What the figures are, in the notes and in the headers.
    let notes = notes(&file);
    let body = &json.body;
    // Each note's header is `Casebook-` and the note's name, words joined by `-`.
    for (note, value) in [
        ("rules_version", &body["rules_version"]),
        (
            "suppression_rules_version",
            &body["suppression"]["rules_version"],
        ),
        ("suppression_below", &body["suppression"]["below"]),
        ("suppression_cells", &body["suppression"]["cells"]),
        ("from", &body["from"]),
        ("to", &body["to"]),
        ("as_of_position", &body["as_of"]["position"]),
        ("as_of_recorded_at", &body["as_of"]["recorded_at"]),
        ("as_of_behind", &body["as_of"]["behind"]),
    ] {
        let header = format!("casebook-{}", note.replace('_', "-"));
        let value = value
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        assert_eq!(notes.get(note), Some(&value), "note {note}");
        assert_eq!(
            file.header(&header),
            Some(value.as_str()),
            "header {header}"
        );
    }
    // Times read back as the same instant as the JSON's.
    let at = |text: &str| chrono::DateTime::parse_from_rfc3339(text).expect("RFC 3339");
    assert_eq!(
        at(&notes["as_of_recorded_at"]),
        at(body["as_of"]["recorded_at"].as_str().expect("a time"))
    );
    assert!(!notes.contains_key("team_id"), "no team was asked for");
    assert_eq!(
        file.header("content-disposition"),
        Some("attachment; filename=\"outcomes-2000-01-01-2099-12-31.csv\"")
    );

    // Asked for by Accept, the same file; and the same figures without the notes.
    let accepted = get_as(
        &server,
        analyst,
        &format!("/api/v1/reports/outcomes?{query}"),
        "application/json;q=0.5, text/csv",
    )
    .await;
    assert_eq!(accepted.body, file.body);
    assert_eq!(accepted.header("vary"), Some("Accept"));
    let plain = server
        .get(
            analyst,
            &format!("/api/v1/reports/outcomes.csv?{query}&comments=false"),
        )
        .await;
    let text = csv_text(&plain);
    assert!(text.starts_with("\u{feff}section,figure,code,band,value,suppressed\r\n"));
    assert_eq!(table(&plain), (header, rows));
    assert_eq!(
        plain.header("casebook-as-of-position"),
        file.header("casebook-as-of-position")
    );
    server.stop().await;
}

#[tokio::test]
async fn every_filter_works_on_the_csv_as_on_the_json() {
    let server = with_cohort().await;
    let analyst = &server.people.analyst;
    let team = server.people.lead.team_id.expect("a team");
    let live = server.get(analyst, "/api/v1/reports/outcomes").await.body["rules_version"].clone();
    for query in [
        format!("team_id={team}"),
        "source=self_referral".to_owned(),
        "reason=mental_wellbeing&from=2000-01-01".to_owned(),
        format!("rules={live}&to=2099-12-31"),
        "after=1".to_owned(),
    ] {
        let json = server
            .get(analyst, &format!("/api/v1/reports/outcomes?{query}"))
            .await;
        let file = server
            .get(analyst, &format!("/api/v1/reports/outcomes.csv?{query}"))
            .await;
        let (header, rows) = table(&file);
        assert_outcomes_match(&json.body, &header, &rows);
        for (note, field) in [
            ("team_id", "team_id"),
            ("source", "source"),
            ("reason", "reason"),
        ] {
            assert_eq!(
                notes(&file).get(note).map(String::as_str),
                json.body[field].as_str(),
                "{query}: {note}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn the_gap_report_as_csv_quotes_free_text_and_never_lets_it_be_a_formula() {
    let server = TestServer::start().await;
    let (worker, admin) = (&server.people.worker, &server.people.admin);
    // Free text reaches the gap report as a gap's area (coded by the live rules, which keep a
    // name's letters, digits, spaces and punctuation inside it) and as a directory service's
    // name (as imported).
    let formula = "=HYPERLINK(\"http://example.invalid\",\"x\")";
    let awkward = "Frome, \"East\"\nside";
    let (formula_service, awkward_service) = (Uuid::new_v4(), Uuid::new_v4());
    let imported = server
        .post(
            admin,
            "/api/v1/directory/import",
            json!({ "contents": [
                crate::support::oruk_service(formula_service, formula, &["housing"], "Frome"),
                crate::support::oruk_service(awkward_service, awkward, &["housing"], "Frome"),
            ] }),
        )
        .await;
    assert!(imported.status < 300, "{:#}", imported.body);
    // Five gaps in one area (shown), one in the awkward area (suppressed), and a connection to
    // each service (suppressed).
    for area in ["Frome", "Frome", "Frome", "Frome", "Frome", awkward] {
        let client = open_case(&server).await;
        server
            .ok(
                worker,
                &client_path(client, "service-gaps"),
                json!({ "gap_id": Uuid::new_v4(), "need": "physical_activity", "area": area,
                        "reason": "no_service_exists", "note": null }),
            )
            .await;
    }
    for service in [formula_service, awkward_service] {
        let client = open_case(&server).await;
        server
            .ok(
                worker,
                &client_path(client, "connections"),
                json!({ "connection_id": Uuid::new_v4(), "service_id": service,
                        "need": "housing", "kind": "signposted" }),
            )
            .await;
    }
    server.catch_up().await;
    let analyst = &server.people.analyst;
    let file = server
        .get(analyst, "/api/v1/reports/service-gaps.csv")
        .await;
    let text = csv_text(&file);
    assert!(
        text.contains("\"Frome, \"\"East\"\"\nside\""),
        "RFC 4180 quoting of the service's name: {text}"
    );
    assert!(text.contains(",\"'=HYPERLINK("), "{text}");
    assert!(!text.contains(",=HYPERLINK"), "{text}");
    assert!(!text.contains(",\"=HYPERLINK"), "{text}");
    gaps_match(&server, formula, awkward).await;
    assert_eq!(
        file.header("content-disposition"),
        Some("attachment; filename=\"service-gaps-all-time.csv\"")
    );
    server.stop().await;
}

/// Checks the gap report's CSV against its JSON, cell for cell: text a spreadsheet would take
/// for a formula with a `'` before it, the rest as it is.
async fn gaps_match(server: &TestServer, formula: &str, awkward: &str) {
    let analyst = &server.people.analyst;
    let json = server.read(analyst, "/api/v1/reports/service-gaps").await;
    let file = server
        .get(analyst, "/api/v1/reports/service-gaps.csv")
        .await;
    let (header, rows) = table(&file);
    assert_eq!(
        header.join(","),
        "section,figure,need,area,area_name,month,reason,service_id,service_name,value,suppressed"
    );
    let shown = |text: &str| {
        if text.starts_with(['=', '+', '-', '@']) {
            format!("'{text}")
        } else {
            text.to_owned()
        }
    };
    let gap_rows: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == "gaps").collect();
    let gaps = json.body["gaps"].as_array().expect("gaps");
    assert_eq!(gap_rows.len(), gaps.len());
    for gap in gaps {
        let area = gap["area"].as_str().expect("an area");
        let row = gap_rows
            .iter()
            .find(|r| r[3] == shown(area))
            .unwrap_or_else(|| panic!("a row for {area:?}: {rows:?}"));
        assert_eq!(row[1], "count");
        assert_eq!(row[2], gap["need"].as_str().expect("a need"));
        assert_eq!(row[4], shown(gap["area_name"].as_str().unwrap_or("")));
        assert_eq!(row[5], gap["month"].as_str().expect("a month"));
        assert_eq!(row[6], gap["reason"].as_str().expect("a reason"));
        assert_eq!(number(&row[9]), figure(&gap["count"]));
        assert_eq!(row[10], gap["count"].is_null().to_string());
    }
    // Five gaps in one area, shown; one in the awkward area, suppressed.
    assert!(gap_rows.iter().any(|r| r[9] == "5" && r[10] == "false"));
    let awkward_name = gaps
        .iter()
        .find(|g| g["count"].is_null())
        .and_then(|g| g["area_name"].as_str())
        .expect("the awkward area's gap");
    assert!(awkward_name.contains(", \"east\""), "{awkward_name:?}");
    assert!(
        gap_rows
            .iter()
            .any(|r| r[4] == awkward_name && r[10] == "true")
    );
    // Each service's name, the formula's neutralised.
    for name in [formula, awkward] {
        assert!(
            rows.iter()
                .any(|r| r[0] == "connections" && r[8] == shown(name)),
            "{name:?} in {rows:?}"
        );
    }
    // The connections and the directory's capacity, cell for cell.
    for (section, items, keys) in [
        (
            "connections",
            &json.body["connections"],
            &[
                "made",
                "not_taken_up",
                "waiting_list",
                "declined",
                "mean_waiting_weeks",
                "accepted_by_service",
                "declined_by_service",
                "started_with_service",
            ][..],
        ),
        (
            "capacity",
            &json.body["capacity"],
            &[
                "services",
                "open",
                "waiting_list",
                "not_taking_referrals",
                "mean_waiting_weeks",
            ][..],
        ),
    ] {
        let items = items.as_array().expect("a list");
        assert!(!items.is_empty(), "{section}");
        let section_rows: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == section).collect();
        assert_eq!(section_rows.len(), items.len() * keys.len(), "{section}");
        for item in items {
            for key in keys {
                let row = section_rows
                    .iter()
                    .find(|r| {
                        r[1] == *key
                            && r[2] == item["need"].as_str().expect("a need")
                            && match section {
                                "connections" => {
                                    r[7] == item["service_id"].as_str().expect("an id")
                                        && r[8]
                                            == shown(item["service_name"].as_str().unwrap_or(""))
                                }
                                _ => {
                                    r[3] == shown(item["area"].as_str().expect("an area"))
                                        && r[4] == shown(item["area_name"].as_str().unwrap_or(""))
                                }
                            }
                    })
                    .unwrap_or_else(|| panic!("a {section} row for {key} of {item}"));
                assert_eq!(number(&row[9]), figure(&item[key]), "{section} {key}");
            }
        }
    }
    let made = rows
        .iter()
        .find(|r| r[0] == "connections" && r[1] == "made")
        .expect("the connection");
    assert_eq!(made[9..], ["", "true"], "one connection is too few to show");
    assert_eq!(
        notes(&file)["suppression_cells"],
        json.body["suppression"]["cells"].to_string()
    );
}

#[tokio::test]
async fn the_comparison_as_csv_puts_both_versions_side_by_side() {
    let server = with_cohort().await;
    let analyst = &server.people.analyst;
    let live = server.get(analyst, "/api/v1/reports/outcomes").await.body["rules_version"].clone();
    let path = format!("/api/v1/reports/outcomes/comparison?a={live}&b={live}");
    let json = server.read(analyst, &path).await;
    let file = get_as(&server, analyst, &path, "text/csv").await;
    let (header, rows) = table(&file);
    assert_eq!(
        header.join(","),
        "section,figure,code,band,a_value,a_suppressed,b_value,b_suppressed,differs"
    );
    for (side, columns) in [("a", [0, 1, 2, 3, 4, 5]), ("b", [0, 1, 2, 3, 6, 7])] {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| columns.iter().map(|&i| r[i].clone()).collect())
            .collect();
        let header: Vec<String> = ["section", "figure", "code", "band", "value", "suppressed"]
            .map(str::to_owned)
            .into();
        assert_outcomes_match(&json.body[side], &header, &cells);
    }
    assert_eq!(json.body["differences"], json!([]));
    assert!(rows.iter().all(|r| r[8] == "false"));
    let notes = notes(&file);
    assert_eq!(notes["a_rules_version"], live.to_string());
    assert_eq!(notes["differences"], "0");
    assert_eq!(
        file.header("content-disposition"),
        Some(
            format!(
                "attachment; filename=\"outcomes-comparison-rules-{live}-{live}-all-time.csv\""
            )
            .as_str()
        )
    );
    let suffixed = server
        .get(
            analyst,
            &format!("/api/v1/reports/outcomes/comparison.csv?a={live}&b={live}"),
        )
        .await;
    assert_eq!(suffixed.body, file.body);
    server.stop().await;
}

/// Checks a caseload's CSV rows against its JSON items, column for column.
fn assert_caseload_matches(json: &Value, header: &[String], rows: &[Vec<String>]) {
    let items = json["items"].as_array().expect("items");
    assert_eq!(rows.len(), items.len());
    let names: Vec<String> = items[0]
        .as_object()
        .expect("an item")
        .keys()
        .cloned()
        .collect();
    let mut sorted = header.to_vec();
    sorted.sort();
    assert_eq!(sorted, names, "the JSON's fields are the columns");
    for (item, row) in items.iter().zip(rows) {
        for (column, cell) in header.iter().zip(row) {
            let expected = match &item[column] {
                Value::Null => String::new(),
                Value::String(s) if s.starts_with(['=', '+', '-', '@']) => format!("'{s}"),
                Value::String(s) => s.clone(),
                Value::Array(codes) => codes
                    .iter()
                    .map(|c| c.as_str().expect("a code"))
                    .collect::<Vec<_>>()
                    .join(";"),
                Value::Number(n) => {
                    assert_eq!(number(cell), n.as_f64(), "{column} of {item}");
                    continue;
                }
                other => other.to_string(),
            };
            assert_eq!(cell, &expected, "{column} of {item}");
        }
    }
}

#[tokio::test]
async fn caseloads_and_the_workload_as_csv_hold_the_json_rows_column_for_column() {
    let server = TestServer::start().await;
    let people = &server.people;
    for area in ["Frome", "@Frome", "Wells, \"Somerset\""] {
        let client = Uuid::new_v4();
        let referral = Uuid::new_v4();
        let mut body = intake(referral, "gp");
        body["client"]["area"] = json!(area);
        super::journey::refer_and_accept(
            &server,
            (&people.referrer, &people.lead),
            client,
            referral,
            body,
        )
        .await;
        super::journey::assign(&server, client, &people.worker).await;
        server
            .ok(
                &people.worker,
                &client_path(client, "assessments"),
                wemwbs("baseline", 3, 2),
            )
            .await;
    }
    server.catch_up().await;
    let team = people.lead.team_id.expect("a team");
    for (who, path) in [
        (&people.worker, "/api/v1/caseload".to_owned()),
        (&people.lead, format!("/api/v1/teams/{team}/caseload")),
    ] {
        let json = server.read(who, &path).await;
        let file = server.get(who, &format!("{path}.csv")).await;
        let (header, rows) = table(&file);
        assert_caseload_matches(&json.body, &header, &rows);
        assert!(rows.iter().any(|r| r[4] == "'@Frome"), "{rows:?}");
        assert!(
            rows.iter().any(|r| r[4] == "Wells, \"Somerset\""),
            "{rows:?}"
        );
        let notes = notes(&file);
        assert_eq!(notes["cases"], "3");
        assert_eq!(notes["caseload_rules_version"], "2");
        assert_eq!(
            notes["as_of_position"],
            json.body["as_of"]["position"].to_string()
        );
        assert!(!notes.contains_key("next_cursor"));
        // A page of a limit, as on screen, says where the next starts.
        let json = server.get(who, &format!("{path}?limit=2")).await;
        let file = server.get(who, &format!("{path}.csv?limit=2")).await;
        let (header, rows) = table(&file);
        assert_caseload_matches(&json.body, &header, &rows);
        let next = json.body["next_cursor"].as_str().expect("a next page");
        assert_eq!(file.header("casebook-next-cursor"), Some(next));
        let rest = server
            .get(who, &format!("{path}.csv?cursor={next}&comments=false"))
            .await;
        assert_eq!(table(&rest).1.len(), 1);
    }
    let name = |reply: &Reply| {
        reply
            .header("content-disposition")
            .and_then(|d| d.strip_prefix("attachment; filename=\""))
            .map(|d| d.trim_end_matches('"').to_owned())
            .expect("a file name")
    };
    let mine = server.get(&people.worker, "/api/v1/caseload.csv").await;
    assert!(name(&mine).starts_with("caseload-"), "{}", name(&mine));
    let team_file = server
        .get(&people.lead, &format!("/api/v1/teams/{team}/caseload.csv"))
        .await;
    assert!(name(&team_file).starts_with("team-caseload-"));

    let path = format!("/api/v1/teams/{team}/workload");
    let json = server.get(&people.lead, &path).await;
    let file = get_as(&server, &people.lead, &path, "text/csv").await;
    let (header, rows) = table(&file);
    let loads = json.body["workers"].as_array().expect("workers");
    assert_eq!(rows.len(), loads.len());
    for (load, row) in loads.iter().zip(&rows) {
        for (column, cell) in header.iter().zip(row) {
            match &load[column] {
                Value::String(s) => assert_eq!(cell, s, "{column} of {load}"),
                other => assert_eq!(number(cell), other.as_f64(), "{column} of {load}"),
            }
        }
    }
    assert!(rows.iter().any(|r| r[1] == "Wyn Worker" && r[2] == "3"));
    assert_eq!(notes(&file)["team_id"], team.to_string());
    // The notes say what the JSON says beside its rows.
    assert_eq!(
        notes(&file)["as_of_position"],
        json.body["as_of"]["position"].to_string(),
        "{:#}",
        json.body
    );
    assert!(name(&file).starts_with("team-workload-"));
    server.stop().await;
}

#[tokio::test]
async fn errors_stay_problems_when_csv_is_asked_for_and_an_accept_of_neither_is_406() {
    let server = TestServer::start().await;
    let people = &server.people;
    let team = people.lead.team_id.expect("a team");
    let problem = |reply: &Reply, status: u16| {
        assert_eq!(reply.status, status, "{:#}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.body["status"], status);
    };
    for (who, path) in [
        (&people.analyst, "/api/v1/reports/outcomes".to_owned()),
        (&people.analyst, "/api/v1/reports/service-gaps".to_owned()),
        (
            &people.analyst,
            "/api/v1/reports/outcomes/comparison?a=3&b=3".to_owned(),
        ),
        (&people.worker, "/api/v1/caseload".to_owned()),
        (&people.lead, format!("/api/v1/teams/{team}/caseload")),
        (&people.lead, format!("/api/v1/teams/{team}/workload")),
    ] {
        for accept in ["application/xml", "text/html, application/json;q=0"] {
            let reply = get_as(&server, who, &path, accept).await;
            problem(&reply, 406);
        }
        // The .csv path answers CSV only.
        let (base, query) = path.split_once('?').unwrap_or((&path, ""));
        let csv_path = format!("{base}.csv?{query}");
        problem(
            &get_as(&server, who, &csv_path, "application/json").await,
            406,
        );
        assert_eq!(get_as(&server, who, &csv_path, "*/*").await.status, 200);
        // JSON stays the default, and what a browser asks for.
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        let reply = get_as(&server, who, &path, browser).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
    // A bad period, a bad option, a bad page, an unknown rule version: problems naming them.
    for (who, path, field) in [
        (
            &people.analyst,
            "/api/v1/reports/outcomes.csv?from=2025-02-01&to=2025-01-01".to_owned(),
            "query.to",
        ),
        (
            &people.analyst,
            "/api/v1/reports/outcomes.csv?rules=99".to_owned(),
            "query.rules",
        ),
        (
            &people.analyst,
            "/api/v1/reports/service-gaps.csv?comments=maybe".to_owned(),
            "query.comments",
        ),
        (
            &people.worker,
            "/api/v1/caseload.csv?limit=0".to_owned(),
            "query.limit",
        ),
        (
            &people.lead,
            format!("/api/v1/teams/{team}/workload.csv?after=0"),
            "query.after",
        ),
    ] {
        let reply = get_as(&server, who, &path, "text/csv").await;
        problem(&reply, 400);
        assert_eq!(reply.body["errors"][0]["field"], field, "{path}");
    }
    // Who may not read a report or a team's caseload is refused as for JSON.
    let reply = get_as(
        &server,
        &people.worker,
        "/api/v1/reports/outcomes",
        "text/csv",
    )
    .await;
    problem(&reply, 403);
    let other = people.other_lead.team_id.expect("a team");
    let reply = server
        .get(&people.lead, &format!("/api/v1/teams/{other}/caseload.csv"))
        .await;
    problem(&reply, 403);
    server.stop().await;
}

/// One small file whole: the outcome report of a year with nothing in it.
#[tokio::test]
async fn an_empty_years_outcome_report_as_csv() {
    let server = TestServer::start().await;
    let file = server
        .get(
            &server.people.analyst,
            "/api/v1/reports/outcomes.csv?from=2000-01-01&to=2000-12-31",
        )
        .await;
    let text = csv_text(&file);
    assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
    // The as_of notes change from run to run; their shape is checked above.
    let shown: Vec<String> = text
        .replace('\u{feff}', "[BOM]")
        .lines()
        .map(|line| match line.split_once(": ") {
            Some((note, _)) if note.starts_with("# as_of_") => format!("{note}: [as_of]"),
            _ => line.to_owned(),
        })
        .collect();
    insta::assert_snapshot!(shown.join("\n"));
    server.stop().await;
}

/// The JSON path a comparison names a CSV row's figure by (worked out here from the JSON's
/// shape, not taken from the CSV writer).
fn json_path(row: &[String]) -> String {
    let (section, figure, code, band) = (&row[0], &row[1], &row[2], &row[3]);
    if let Some(key) = figure.strip_prefix("band_") {
        return format!("measures.{code}.bands.{band}.{key}");
    }
    match (section.as_str(), code.is_empty()) {
        (_, true) => format!("{section}.{figure}"),
        ("measures", false) => format!("measures.{code}.{figure}"),
        (_, false) => match figure.strip_suffix("_percent") {
            Some(base) => format!("{section}.{base}.{code}.percent"),
            None => format!("{section}.{figure}.{code}.count"),
        },
    }
}

#[tokio::test]
async fn a_report_as_it_was_known_and_its_explanation_as_csv_hold_the_json_cell_for_cell() {
    let server = with_cohort().await;
    let analyst = &server.people.analyst;
    let sent = super::published::log_now(&server).await;
    // Two referrals entered after the report was sent.
    for _ in 0..2 {
        referred(&server).await;
    }
    server.catch_up().await;

    let started = server.start_snapshot(analyst, json!(sent)).await;
    let id = started["id"].as_str().expect("an id").to_owned();
    let path = format!("/api/v1/reports/outcomes/snapshots/{id}/report");
    let json = super::published::when_built(&server, &path).await;
    assert_eq!(json.body["report"]["referrals"]["total"], 8);
    let file = server.get(analyst, &format!("{path}.csv")).await;
    let (header, rows) = table(&file);
    assert_outcomes_match(&json.body["report"], &header, &rows);
    let snapshot_notes = notes(&file);
    assert_eq!(snapshot_notes["snapshot_id"], id);
    let at = |text: &str| chrono::DateTime::parse_from_rfc3339(text).expect("RFC 3339");
    assert_eq!(
        at(&snapshot_notes["known_at"]),
        at(json.body["snapshot"]["known_at"].as_str().expect("a time"))
    );
    assert!(
        !snapshot_notes.contains_key("as_of_position"),
        "a snapshot is not as of the log now"
    );
    assert_eq!(
        get_as(&server, analyst, &path, "text/csv").await.body,
        file.body
    );

    // As sent (the live rules, known then) against now under rules v1.
    let started = server
        .post(
            analyst,
            "/api/v1/reports/outcomes/explanations",
            json!({ "published_at": sent, "current_rules": 1 }),
        )
        .await;
    assert_eq!(started.status, 202, "{:#}", started.body);
    let id = started.body["id"].as_str().expect("an id").to_owned();
    let path = format!("/api/v1/reports/outcomes/explanations/{id}");
    let json = super::published::when_built(&server, &path).await;
    let file = server.get(analyst, &format!("{path}.csv")).await;
    assert_eq!(
        get_as(&server, analyst, &path, "text/csv").await.body,
        file.body
    );
    let (header, rows) = table(&file);
    assert_eq!(
        header.join(","),
        "section,figure,code,band,published_value,published_suppressed,now_value,now_suppressed,differs,late_entries,corrections,rule_change"
    );
    let outcome_header: Vec<String> = ["section", "figure", "code", "band", "value", "suppressed"]
        .map(str::to_owned)
        .into();
    for (side, columns) in [
        ("published", [0, 1, 2, 3, 4, 5]),
        ("now", [0, 1, 2, 3, 6, 7]),
    ] {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .filter(|r| !r[columns[4]].is_empty() || !r[columns[5]].is_empty())
            .map(|r| columns.iter().map(|&i| r[i].clone()).collect())
            .collect();
        assert_outcomes_match(&json.body[side], &outcome_header, &cells);
    }
    // Each difference's causes on its figure's row; no causes on a row that does not differ.
    let differences = json.body["differences"].as_array().expect("differences");
    let mut explained = 0;
    for row in &rows {
        let cause = differences.iter().find(|d| d["figure"] == json_path(row));
        match cause {
            Some(d) => {
                explained += 1;
                assert_eq!(row[8], "true", "{row:?}");
                for (i, key) in [
                    (9, "late_entries"),
                    (10, "corrections"),
                    (11, "rule_change"),
                ] {
                    assert_eq!(number(&row[i]), figure(&d[key]), "{key} of {row:?}");
                }
            }
            None => assert_eq!(row[9..], ["", "", ""], "{row:?}"),
        }
    }
    let total = rows
        .iter()
        .find(|r| r[0] == "referrals" && r[1] == "total")
        .expect("the total");
    assert_eq!(
        total[4..],
        ["8", "false", "10", "false", "true", "2", "0", "0"]
    );
    // Every difference of a figure the report shows is on a row (the suppression rule's own
    // numbers are notes).
    let of_figures = differences
        .iter()
        .filter(|d| {
            !d["figure"]
                .as_str()
                .is_some_and(|f| f.starts_with("suppression."))
        })
        .count();
    assert_eq!(explained, of_figures, "{differences:#?}");
    let notes = notes(&file);
    assert_eq!(notes["now_rules_version"], "1");
    assert_eq!(notes["explanation_id"], id);
}
