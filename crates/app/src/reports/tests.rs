//! Figures by name, and what a report that cannot be read as figures does.

use std::collections::BTreeMap;

use super::*;
use crate::export::tests::report;

#[test]
fn numbers_name_every_figure_and_leave_out_what_it_is_as_of() {
    let figures = numbers(&report()).expect("figures");
    assert_eq!(figures.get("referrals.total"), Some(&12.0));
    assert_eq!(figures.get("measures.wemwbs.paired"), Some(&8.0));
    assert_eq!(
        figures.get("referrals.by_reason.loneliness_isolation.count"),
        Some(&12.0)
    );
    assert!(
        !figures
            .keys()
            .any(|name| name.starts_with("as_of") || name == "rules_version"),
        "{figures:?}"
    );
}

#[test]
fn a_comparison_names_each_figure_that_differs() {
    let a = report();
    let mut b = a.clone();
    b.referrals.total = Some(13);
    b.rules_version = 4;
    let comparison = compare(a, b).expect("comparable");
    assert_eq!(
        comparison.differences,
        [Difference {
            figure: "referrals.total".to_owned(),
            a: Some(12.0),
            b: Some(13.0),
        }]
    );
}

/// A report that does not serialise is an error that surfaces (an internal one: the build's
/// fault), never a report with no figures, which would compare as "nothing differs".
#[test]
fn a_report_that_does_not_serialise_is_an_error_never_no_figures() {
    // A JSON object's keys are strings: a map keyed by pairs cannot be written as one.
    let unwritable: BTreeMap<(u8, u8), i64> = BTreeMap::from([((1, 2), 3)]);
    let error = numbers_of(&unwritable).expect_err("not figures");
    assert!(matches!(
        crate::AppError::from(error),
        crate::AppError::Figures(_)
    ));
}
