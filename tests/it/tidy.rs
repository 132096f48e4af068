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
    let allowed = ["chrono", "serde", "serde_json", "thiserror", "uuid"];
    for dependency in &dependencies {
        assert!(
            allowed.contains(dependency),
            "domain may not depend on {dependency}"
        );
    }
    // And nothing forbidden arrives transitively.
    let tree = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-p",
            "domain",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(root())
        .output()
        .expect("run cargo tree");
    assert!(
        tree.status.success(),
        "{}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let tree = String::from_utf8_lossy(&tree.stdout);
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
        for leftover in [
            "dbg!(",
            "todo!(",
            "unimplemented!(",
            "#[ignore]",
            "#[should_panic]",
        ] {
            assert!(
                !text.contains(leftover),
                "{} contains {leftover}",
                path.display()
            );
        }
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

/// Until the contract is generated from the code, each path in the spec must name a route.
#[test]
fn every_path_in_the_api_spec_has_a_route() {
    let spec = std::fs::read_to_string(root().join("api-spec/openapi.yaml")).expect("the spec");
    let routes =
        std::fs::read_to_string(root().join("crates/casebook/src/http.rs")).expect("the routes");
    let paths: Vec<&str> = spec
        .lines()
        .filter(|line| line.starts_with("  /") && line.ends_with(':'))
        .map(|line| line.trim().trim_end_matches(':'))
        .collect();
    assert!(!paths.is_empty());
    for path in paths {
        assert!(
            routes.contains(&format!(".route(\"{path}\"")),
            "{path} is in the spec but has no route"
        );
    }
}
