//! The CSV files' layout, quoting and formula neutralisation, on reports made by hand.

use chrono::{NaiveDate, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::reports::{
    BandFigures, CapacityCount, ConnectionCount, Difference, EpisodeFigures, GapCount,
    MeasureFigures, PeopleFigures, ReferralFigures,
};

fn as_of() -> AsOf {
    AsOf {
        position: 42,
        recorded_at: Some(Utc.with_ymd_and_hms(2026, 1, 5, 9, 30, 0).unwrap()),
        behind: 0,
    }
}

fn share(code: &str, count: Option<i64>, percent: Option<f64>) -> Share {
    Share {
        code: code.to_owned(),
        count,
        percent,
        suppressed: count.is_none(),
    }
}

/// Twelve referrals, ten from GPs and two self-referred (suppressed, with the GPs' cell as its
/// complement); one measure with a negative mean change, and one with bands.
pub(crate) fn report() -> OutcomeReport {
    OutcomeReport {
        rules_version: 3,
        from: NaiveDate::from_ymd_opt(2025, 1, 1),
        to: NaiveDate::from_ymd_opt(2025, 12, 31),
        team_id: None,
        source: None,
        reason: None,
        referrals: ReferralFigures {
            total: Some(12),
            people: Some(11),
            accepted: Some(10),
            declined: None,
            redirected: Some(0),
            by_destination: None,
            destination_names: Default::default(),
            by_source: vec![share("gp", None, None), share("self_referral", None, None)],
            by_reason: vec![share("loneliness_isolation", Some(12), Some(100.0))],
            contacted: Some(9),
            mean_days_to_first_contact: Some(4.25),
            median_days_to_first_contact: Some(3.0),
        },
        episodes: EpisodeFigures {
            episodes: Some(10),
            started: Some(10),
            active: Some(10),
            people: Some(10),
            contacts: Some(31),
            mean_contacts: Some(3.1),
            appointments_attended: Some(0),
            appointments_not_attended: Some(0),
            did_not_attend_percent: None,
            closed: Some(0),
            closed_by_reason: vec![],
        },
        measures: vec![
            MeasureFigures {
                measure: "ucla3".to_owned(),
                direction: "lower_is_better".to_owned(),
                paired: Some(6),
                mean_baseline: Some(7.0),
                mean_follow_up: Some(5.0),
                mean_change: Some(-2.0),
                mean_improvement: Some(2.0),
                improved: Some(6),
                no_change: Some(0),
                worse: Some(0),
                improved_percent: Some(100.0),
                no_change_percent: Some(0.0),
                worse_percent: Some(0.0),
                baselines: Some(9),
                no_follow_up: None,
                awaiting_follow_up: None,
                bands: vec![
                    BandFigures {
                        code: "lonely".to_owned(),
                        baseline: Some(6),
                        follow_up: Some(0),
                        follow_up_percent: Some(0.0),
                    },
                    BandFigures {
                        code: "not_lonely".to_owned(),
                        baseline: Some(0),
                        follow_up: Some(6),
                        follow_up_percent: Some(100.0),
                    },
                ],
            },
            MeasureFigures {
                measure: "wemwbs".to_owned(),
                direction: "higher_is_better".to_owned(),
                paired: Some(8),
                mean_baseline: Some(40.5),
                mean_follow_up: Some(39.0),
                mean_change: Some(-1.5),
                mean_improvement: Some(-1.5),
                improved: None,
                no_change: Some(5),
                worse: None,
                improved_percent: None,
                no_change_percent: Some(62.5),
                worse_percent: None,
                baselines: Some(8),
                no_follow_up: Some(0),
                awaiting_follow_up: Some(0),
                bands: vec![],
            },
        ],
        people: PeopleFigures {
            paired: Some(9),
            improved_on_any: Some(6),
            improved_on_any_percent: Some(66.7),
            evaluation_consent: "exclude_withdrawn".to_owned(),
            excluded_without_evaluation_consent: Some(0),
        },
        suppression: Suppression {
            rules_version: Some(2),
            below: 5,
            cells: 7,
        },
        as_of: as_of(),
    }
}

fn text(file: &CsvFile) -> &str {
    std::str::from_utf8(&file.bytes).expect("UTF-8")
}

/// The rows of a file, read back as a spreadsheet importer would (notes skipped).
fn read_back(file: &CsvFile) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .comment(Some(b'#'))
        .from_reader(file.bytes.as_slice())
        .records()
        .map(|r| r.expect("a record").iter().map(str::to_owned).collect())
        .collect()
}

#[test]
fn the_outcome_report_is_one_row_per_figure_after_its_notes() {
    let file = outcome_report(&report(), CsvOptions::default()).expect("a file");
    assert_eq!(file.filename, "outcomes-2025-01-01-2025-12-31.csv");
    let expected = "\u{feff}# Casebook outcome report
# rules_version: 3
# suppression_rules_version: 2
# suppression_below: 5
# suppression_cells: 7
# evaluation_consent: exclude_withdrawn
# from: 2025-01-01
# to: 2025-12-31
# as_of_position: 42
# as_of_recorded_at: 2026-01-05T09:30:00Z
# as_of_behind: 0

section,figure,code,band,value,suppressed
referrals,total,,,12,false
referrals,people,,,11,false
referrals,accepted,,,10,false
referrals,declined,,,,true
referrals,redirected,,,0,false
referrals,by_destination,,,,false
referrals,by_source,gp,,,true
referrals,by_source,self_referral,,,true
referrals,by_source_percent,gp,,,true
referrals,by_source_percent,self_referral,,,true
referrals,by_reason,loneliness_isolation,,12,false
referrals,by_reason_percent,loneliness_isolation,,100,false
referrals,contacted,,,9,false
referrals,mean_days_to_first_contact,,,4.25,false
referrals,median_days_to_first_contact,,,3,false
episodes,episodes,,,10,false
episodes,started,,,10,false
episodes,active,,,10,false
episodes,people,,,10,false
episodes,contacts,,,31,false
episodes,mean_contacts,,,3.1,false
episodes,appointments_attended,,,0,false
episodes,appointments_not_attended,,,0,false
episodes,did_not_attend_percent,,,,false
episodes,closed,,,0,false
measures,direction,ucla3,,lower_is_better,false
measures,paired,ucla3,,6,false
measures,mean_baseline,ucla3,,7,false
measures,mean_follow_up,ucla3,,5,false
measures,mean_change,ucla3,,-2,false
measures,mean_improvement,ucla3,,2,false
measures,improved,ucla3,,6,false
measures,no_change,ucla3,,0,false
measures,worse,ucla3,,0,false
measures,improved_percent,ucla3,,100,false
measures,no_change_percent,ucla3,,0,false
measures,worse_percent,ucla3,,0,false
measures,baselines,ucla3,,9,false
measures,no_follow_up,ucla3,,,true
measures,awaiting_follow_up,ucla3,,,true
measures,band_baseline,ucla3,lonely,6,false
measures,band_follow_up,ucla3,lonely,0,false
measures,band_follow_up_percent,ucla3,lonely,0,false
measures,band_baseline,ucla3,not_lonely,0,false
measures,band_follow_up,ucla3,not_lonely,6,false
measures,band_follow_up_percent,ucla3,not_lonely,100,false
measures,direction,wemwbs,,higher_is_better,false
measures,paired,wemwbs,,8,false
measures,mean_baseline,wemwbs,,40.5,false
measures,mean_follow_up,wemwbs,,39,false
measures,mean_change,wemwbs,,-1.5,false
measures,mean_improvement,wemwbs,,-1.5,false
measures,improved,wemwbs,,,true
measures,no_change,wemwbs,,5,false
measures,worse,wemwbs,,,true
measures,improved_percent,wemwbs,,,true
measures,no_change_percent,wemwbs,,62.5,false
measures,worse_percent,wemwbs,,,true
measures,baselines,wemwbs,,8,false
measures,no_follow_up,wemwbs,,0,false
measures,awaiting_follow_up,wemwbs,,0,false
people,paired,,,9,false
people,improved_on_any,,,6,false
people,improved_on_any_percent,,,66.7,false
people,evaluation_consent,,,exclude_withdrawn,false
people,excluded_without_evaluation_consent,,,0,false
";
    assert_eq!(text(&file), expected.replace('\n', "\r\n"));
    assert_eq!(
        file.metadata.first(),
        Some(&("rules_version", "3".to_owned()))
    );
    assert!(file.metadata.iter().all(|(name, _)| *name != "team_id"));
}

#[test]
fn without_notes_the_file_is_a_plain_table_and_the_notes_are_still_given() {
    let file = outcome_report(&report(), CsvOptions { comments: false }).expect("a file");
    assert!(
        text(&file).starts_with("\u{feff}section,figure,code,band,value,suppressed\r\n"),
        "{}",
        text(&file)
    );
    assert!(!text(&file).contains('#'));
    let rows = read_back(&file);
    assert_eq!(rows[0], OUTCOME_COLUMNS);
    assert!(rows.iter().all(|row| row.len() == OUTCOME_COLUMNS.len()));
    assert!(file.metadata.contains(&("as_of_position", "42".to_owned())));
}

fn gaps(area: &str, service_name: &str) -> GapReport {
    GapReport {
        rules_version: 3,
        from: None,
        to: None,
        gaps: vec![GapCount {
            need: "housing".to_owned(),
            area: area.to_owned(),
            area_name: None,
            month: NaiveDate::from_ymd_opt(2025, 3, 1).expect("a date"),
            reason: "no_service_exists".to_owned(),
            count: None,
        }],
        connections: vec![ConnectionCount {
            service_id: Uuid::from_u128(7),
            service_name: Some(service_name.to_owned()),
            need: "housing".to_owned(),
            made: Some(6),
            not_taken_up: Some(0),
            waiting_list: None,
            declined: Some(0),
            mean_waiting_weeks: None,
            accepted_by_service: Some(6),
            declined_by_service: Some(0),
            started_with_service: None,
        }],
        capacity: vec![CapacityCount {
            need: "housing".to_owned(),
            area: area.to_owned(),
            area_name: Some("Frome".to_owned()),
            services: 2,
            open: 1,
            waiting_list: 1,
            not_taking_referrals: 0,
            mean_waiting_weeks: None,
        }],
        suppression: Suppression {
            rules_version: Some(2),
            below: 5,
            cells: 2,
        },
        as_of: as_of(),
    }
}

#[test]
fn commas_quotes_and_line_breaks_in_free_text_are_quoted_and_read_back_whole() {
    let area = "Frome, \"East\"\nside";
    let file = gap_report(
        &gaps(area, "Walk, Talk & \"Tea\""),
        None,
        CsvOptions::default(),
    )
    .expect("a file");
    assert_eq!(file.filename, "service-gaps-all-time.csv");
    assert!(
        text(&file).contains("\"Frome, \"\"East\"\"\nside\""),
        "{}",
        text(&file)
    );
    let rows = read_back(&file);
    assert_eq!(rows[0], GAP_COLUMNS);
    let gap = &rows[1];
    assert_eq!(
        gap[..7],
        [
            "gaps",
            "count",
            "housing",
            area,
            "",
            "2025-03-01",
            "no_service_exists"
        ]
    );
    assert_eq!(gap[9..], ["", "true"], "a suppressed count is empty");
    let name = rows
        .iter()
        .find(|r| r[0] == "connections")
        .map(|r| r[8].clone());
    assert_eq!(name.as_deref(), Some("Walk, Talk & \"Tea\""));
    // A mean withheld with its suppressed count says so; the directory's is never suppressed.
    let mean = |section: &str| {
        rows.iter()
            .find(|r| r[0] == section && r[1] == "mean_waiting_weeks")
            .map(|r| r[9..].to_vec())
    };
    assert_eq!(
        mean("connections"),
        Some(vec![String::new(), "true".into()])
    );
    assert_eq!(mean("capacity"), Some(vec![String::new(), "false".into()]));
    // Every line ends with CRLF, except the break inside the quoted area.
    let bare = text(&file).matches('\n').count() - text(&file).matches("\r\n").count();
    assert_eq!(
        bare, 6,
        "the area's line break, in the gap's row and the five figures of its capacity"
    );
}

#[test]
fn text_a_spreadsheet_would_take_for_a_formula_is_neutralised_and_numbers_are_not() {
    for (typed, written) in [
        ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tFrome", "'\tFrome"),
        ("\rFrome", "'\rFrome"),
        ("Frome", "Frome"),
        ("Frome = Mendip", "Frome = Mendip"),
        ("", ""),
    ] {
        assert_eq!(neutralise(typed), written);
    }
    let file = gap_report(
        &gaps("=HYPERLINK(\"http://x\")", "@evil"),
        None,
        CsvOptions { comments: false },
    )
    .expect("a file");
    let rows = read_back(&file);
    assert_eq!(rows[1][3], "'=HYPERLINK(\"http://x\")");
    assert!(
        rows.iter()
            .filter(|r| r[0] == "connections")
            .all(|r| r[8] == "'@evil")
    );
    // A negative mean change is a number, not text.
    let file = outcome_report(&report(), CsvOptions { comments: false }).expect("a file");
    assert!(text(&file).contains("\r\nmeasures,mean_change,wemwbs,,-1.5,false\r\n"));
}

#[test]
fn a_comparison_puts_each_figure_of_both_versions_side_by_side() {
    let a = report();
    let mut b = report();
    b.rules_version = 4;
    b.referrals.accepted = Some(11);
    b.episodes.closed_by_reason = vec![share("goals_met", Some(0), Some(0.0))];
    let comparison = Comparison {
        differences: vec![Difference {
            figure: "referrals.accepted".to_owned(),
            a: Some(10.0),
            b: Some(11.0),
        }],
        as_of: a.as_of,
        a,
        b,
    };
    let file = super::comparison(&comparison, CsvOptions::default()).expect("a file");
    assert_eq!(
        file.filename,
        "outcomes-comparison-rules-3-4-2025-01-01-2025-12-31.csv"
    );
    assert!(file.metadata.contains(&("b_rules_version", "4".to_owned())));
    let rows = read_back(&file);
    assert_eq!(rows[0], COMPARISON_COLUMNS);
    let row = |figure: &str, code: &str| {
        rows.iter()
            .find(|r| r[1] == figure && r[2] == code)
            .unwrap_or_else(|| panic!("a row for {figure} {code}"))[4..]
            .to_vec()
    };
    assert_eq!(row("accepted", ""), ["10", "false", "11", "false", "true"]);
    assert_eq!(row("total", ""), ["12", "false", "12", "false", "false"]);
    assert_eq!(row("declined", ""), ["", "true", "", "true", "false"]);
    // A figure only one version has is empty on the other side.
    assert_eq!(
        row("closed_by_reason", "goals_met"),
        ["", "", "0", "false", "true"]
    );
    let differing = rows.iter().filter(|r| r[8] == "true").count();
    assert_eq!(
        differing, 3,
        "accepted, and the new closure reason's count and share"
    );
}

#[test]
fn a_caseload_is_one_row_per_case_with_its_lists_joined() {
    let worker = Uuid::from_u128(2);
    let item = CaseloadItem {
        client_id: Uuid::from_u128(1),
        status: domain::CaseStatus::Open,
        link_worker_id: Some(worker),
        team_id: None,
        area: "-Frome".to_owned(),
        referred_on: NaiveDate::from_ymd_opt(2025, 12, 1),
        referral_source: Some("gp".to_owned()),
        days_since_referral: Some(35),
        last_contact_at: Some(Utc.with_ymd_and_hms(2025, 12, 20, 14, 0, 0).unwrap()),
        days_since_contact: Some(16),
        next_appointment_at: None,
        contacts: 2,
        did_not_attend: 0,
        baselines: vec!["ucla3".to_owned(), "wemwbs".to_owned()],
        follow_ups: vec![],
        flags: vec![
            crate::caseload::CaseloadFlag::NoContact,
            crate::caseload::CaseloadFlag::FollowUpDue,
        ],
        stream_version: 9,
        tags: vec!["carer".to_owned(), "housing-priority".to_owned()],
    };
    let file = CaseloadFile {
        team_id: None,
        link_worker_id: Some(worker),
        rules_version: 1,
        computed_at: Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap(),
        next_cursor: None,
        as_of: as_of(),
    };
    let file = caseload(&[item], &file, CsvOptions { comments: false }).expect("a file");
    assert_eq!(file.filename, "caseload-2026-01-05.csv");
    assert_eq!(
        text(&file),
        "\u{feff}client_id,status,link_worker_id,team_id,area,referred_on,referral_source,\
         days_since_referral,last_contact_at,days_since_contact,next_appointment_at,contacts,\
         did_not_attend,baselines,follow_ups,flags,stream_version,tags\r\n\
         00000000-0000-0000-0000-000000000001,open,00000000-0000-0000-0000-000000000002,,'-Frome,\
         2025-12-01,gp,35,2025-12-20T14:00:00Z,16,,2,0,ucla3;wemwbs,,no_contact;follow_up_due,9,carer;housing-priority\r\n"
    );
    assert!(
        file.metadata
            .contains(&("computed_at", "2026-01-05T10:00:00Z".to_owned()))
    );
}

#[test]
fn file_names_hold_only_safe_characters() {
    assert_eq!(safe_filename("a b/../c\"d.csv"), "a-b-..-c-d.csv");
    assert_eq!(
        period_name(None, NaiveDate::from_ymd_opt(2025, 3, 31)),
        "to-2025-03-31"
    );
    assert_eq!(
        period_name(NaiveDate::from_ymd_opt(2025, 4, 1), None),
        "from-2025-04-01"
    );
}
