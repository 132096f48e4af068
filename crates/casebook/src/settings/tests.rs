use clap::Parser;
use clap::error::ErrorKind;

use crate::rebuild::{RebuildOptions, RebuildTarget};
use crate::settings::{Cli, Command, RebuildArgs};

fn rebuild_args(args: &[&str]) -> Result<RebuildArgs, clap::Error> {
    let cli = Cli::try_parse_from([&["casebook", "rebuild"], args].concat())?;
    match cli.command {
        Command::Rebuild(args) => Ok(args),
        other => panic!("parsed as {other:?}"),
    }
}

#[test]
fn an_unknown_projection_is_refused_by_the_parser() {
    let refused = rebuild_args(&["caseloads"]).expect_err("no such projection");
    assert_eq!(refused.kind(), ErrorKind::InvalidValue);
}

#[test]
fn rebuild_flags_become_a_target_and_options() {
    let args = rebuild_args(&["outcomes", "--rules", "2", "--restart"]).expect("parsed");
    assert_eq!(
        args.target().expect("a target"),
        RebuildTarget::Outcomes { rules: 2 }
    );
    assert_eq!(
        args.options(false),
        RebuildOptions {
            restart: true,
            switch: true,
            progress: false
        }
    );
    let args = rebuild_args(&["outcomes", "--no-switch"]).expect("parsed");
    assert_eq!(
        args.target().expect("a target"),
        RebuildTarget::Outcomes {
            rules: projector::rules::Rules::latest_version()
        }
    );
    assert!(!args.options(true).switch);
    let args = rebuild_args(&["directory"]).expect("parsed");
    assert_eq!(args.target().expect("a target"), RebuildTarget::Directory);
}

#[test]
fn rules_for_a_read_model_without_versions_are_refused() {
    let args = rebuild_args(&["caseload", "--rules", "2"]).expect("parsed");
    let refused = args.target().expect_err("the caseload has no versions");
    assert_eq!(refused.kind(), ErrorKind::ArgumentConflict);
}

/// The command line issues tokens under the same lifetime cap as the API.
#[test]
fn a_token_lives_at_most_as_long_as_the_api_allows() {
    let parse = |days: &str| {
        Cli::try_parse_from([
            "casebook".to_owned(),
            "token".to_owned(),
            "issue".to_owned(),
            "00000000-0000-0000-0000-000000000001".to_owned(),
            format!("--days={days}"),
        ])
    };
    assert!(parse("400").is_ok());
    for refused in ["401", "100000", "0", "-1"] {
        let error = parse(refused).expect_err(refused);
        assert_eq!(error.kind(), ErrorKind::ValueValidation, "{refused}");
    }
}
