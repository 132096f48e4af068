//! Invariants of the code base that are cheaper to check than to review.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn files_under(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, extension, out);
        } else if path.extension().is_some_and(|e| e == extension) {
            out.push(path);
        }
    }
}

/// The domain decides and folds; it must not be able to do IO.
#[test]
fn the_domain_crate_depends_on_no_runtime_database_or_web_crate() {
    let manifest =
        std::fs::read_to_string(root().join("crates/domain/Cargo.toml")).expect("domain manifest");
    let dependencies: Vec<&str> = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a dependencies table")
        .lines()
        .take_while(|line| !line.starts_with('['))
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split(['.', ' ', '=']).next())
        .filter(|name| !name.is_empty())
        .collect();
    // utoipa is optional (feature `openapi`, used by the api crate): schema derives, no IO.
    let allowed = [
        "chrono",
        "serde",
        "serde_json",
        "serde_path_to_error",
        "thiserror",
        "uuid",
        "utoipa",
    ];
    for dependency in &dependencies {
        assert!(
            allowed.contains(dependency),
            "domain may not depend on {dependency}"
        );
    }
    // And nothing forbidden arrives transitively, whatever features are on.
    let tree = dependency_tree("domain", true);
    for forbidden in [
        "tokio",
        "postgres",
        "actix",
        "deadpool",
        "tracing-subscriber",
        "rand",
        "getrandom",
    ] {
        assert!(
            !tree.lines().any(|line| line.starts_with(forbidden)),
            "domain pulls in {forbidden}:\n{tree}"
        );
    }
}

/// The packages `package` depends on for building and running (with every feature on, when
/// `all_features`), one `name vX.Y.Z` a line.
fn dependency_tree(package: &str, all_features: bool) -> String {
    let mut args = vec!["tree", "--offline", "-p", package, "-e", "normal"];
    if all_features {
        args.push("--all-features");
    }
    args.extend(["--prefix", "none", "--format", "{p}"]);
    crate::support::run_ok(
        Command::new(env!("CARGO")).args(args).current_dir(root()),
        "cargo tree",
    )
}

/// Every rule lives in the application layer, which HTTP, the command line and the console
/// call: it must not know a web framework.
#[test]
fn the_application_layer_depends_on_no_web_framework() {
    let tree = dependency_tree("app", false);
    for forbidden in ["actix", "utoipa-actix-web", "hyper", "reqwest"] {
        assert!(
            !tree.lines().any(|line| line.starts_with(forbidden)),
            "app pulls in {forbidden}:\n{tree}"
        );
    }
    assert!(tree.lines().any(|line| line.starts_with("eventstore")));
}

/// The HTTP layer (the API and the web console) parses, calls the application layer and
/// renders: no role check, no policy
/// call, no SQL, no connection of its own (authentication and readiness are the application
/// layer's), no date rule of its own.
#[test]
fn http_handlers_hold_no_rule_and_no_sql() {
    let mut sources = Vec::new();
    files_under(&root().join("crates/api/src/http"), "rs", &mut sources);
    files_under(&root().join("crates/console/src"), "rs", &mut sources);
    assert!(sources.len() > 8);
    for path in &sources {
        let text = std::fs::read_to_string(path).expect("read source");
        let forbidden = [
            "Role::",
            "policy::",
            "SELECT ",
            "INSERT ",
            "UPDATE ",
            "DELETE ",
            ".query(",
            ".query_one(",
            ".query_opt(",
            ".execute(",
            ".batch_execute(",
            ".prepare",
            ".pool()",
            "deadpool",
            "check_dates",
            "Utc::now",
        ];
        assert_free_of(path, &text, &forbidden, ": that belongs in crates/app");
    }
}

#[test]
fn every_library_opens_with_a_doc_paragraph_and_no_debug_leftovers_remain() {
    let mut sources = Vec::new();
    files_under(&root().join("crates"), "rs", &mut sources);
    files_under(&root().join("tests"), "rs", &mut sources);
    for path in &sources {
        let text = std::fs::read_to_string(path).expect("read source");
        if path.file_name().is_some_and(|n| n == "lib.rs") {
            assert!(
                text.starts_with("//!"),
                "{} must open with a //! paragraph",
                path.display()
            );
        }
        // This file names the leftovers it looks for.
        if path.ends_with("tests/it/tidy.rs") {
            continue;
        }
        let leftovers = [
            "dbg!(",
            "todo!(",
            "unimplemented!(",
            "#[ignore]",
            "#[should_panic]",
        ];
        assert_free_of(path, &text, &leftovers, "");
    }
}

/// Fails naming the first of `words` that `text`, the source at `path`, holds, and `why`.
#[track_caller]
fn assert_free_of(path: &Path, text: &str, words: &[&str], why: &str) {
    for word in words {
        assert!(
            !text.contains(word),
            "{} contains `{word}`{why}",
            path.display()
        );
    }
}

#[test]
fn migrations_are_named_by_version_and_never_skip_one() {
    let mut versions: Vec<u32> = std::fs::read_dir(root().join("migrations"))
        .expect("migrations dir")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .map(|name| {
            let version = name
                .strip_prefix('V')
                .and_then(|rest| rest.split_once("__"))
                .filter(|(_, what)| what.ends_with(".sql") && what.len() > 4)
                .and_then(|(version, _)| version.parse().ok());
            version.unwrap_or_else(|| panic!("migration {name} is not named V{{n}}__{{what}}.sql"))
        })
        .collect();
    versions.sort();
    assert_eq!(versions, (1..=versions.len() as u32).collect::<Vec<_>>());
}

/// The contract in api-spec/ is generated from the routes; it must be the code's. Run with
/// `UPDATE_SPEC=1` to rewrite it after changing the API, and review the diff.
#[test]
fn the_checked_in_openapi_document_is_the_codes() {
    let path = root().join("api-spec/openapi.json");
    let generated =
        serde_json::to_string_pretty(&api::http::openapi_json()).expect("the spec") + "\n";
    if std::env::var_os("UPDATE_SPEC").is_some() {
        std::fs::write(&path, &generated).expect("writing the spec");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "api-spec/openapi.json differs from the routes; run `UPDATE_SPEC=1 cargo nextest run -E 'test(openapi)'` \
         and review the diff"
    );
}

/// A rule file marks a local, unconfirmed choice `[U]` in its comments and description, never
/// in a name the console shows a user (a safeguarding category read "Risk of suicide or
/// self-harm [U]").
#[test]
fn no_name_a_user_reads_carries_the_unconfirmed_marker() {
    let mut files = Vec::new();
    files_under(&root().join("projections"), "toml", &mut files);
    assert!(files.len() > 10, "{files:?}");
    let mut marked = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a rule file");
        for (n, line) in text.lines().enumerate() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim();
            let value = value.split('#').next().unwrap_or_default();
            if ["name", "label", "display", "title"].contains(&key) && value.contains("[U]") {
                marked.push(format!("{}:{}: {line}", file.display(), n + 1));
            }
        }
    }
    assert!(marked.is_empty(), "{marked:#?}");
}
