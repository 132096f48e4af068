//! The safeguarding rules (`projections/safeguarding/v{n}.toml`), built into the binary: the
//! categories a safeguarding concern may be raised under. Read when a command is carried out
//! (a concern keeps the code it was raised with), so a new version needs no rebuild.

use serde::Deserialize;

use crate::code_list::{self, CodeList, CodeListError};

/// One category of concern: its stable code and the name people read.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ConcernCategory {
    pub code: String,
    pub name: String,
}

/// The safeguarding rules of one version.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SafeguardingRules {
    pub version: i32,
    pub description: String,
    pub categories: Vec<ConcernCategory>,
}

/// Why a safeguarding rule version cannot be had.
pub type SafeguardingRulesError = CodeListError;

impl CodeList for SafeguardingRules {
    const LIST: &'static str = "safeguarding";
    const ENTRY: (&'static str, &'static str) = ("category", "categories");
    const FILES: &'static [(i32, &'static str)] =
        &[(1, include_str!("../../../projections/safeguarding/v1.toml"))];

    fn version(&self) -> i32 {
        self.version
    }

    fn listed_codes(&self) -> Vec<&str> {
        self.categories.iter().map(|c| c.code.as_str()).collect()
    }

    fn empty(version: i32) -> SafeguardingRules {
        SafeguardingRules {
            version,
            description: String::new(),
            categories: Vec::new(),
        }
    }
}

impl SafeguardingRules {
    /// The rules of `version`.
    ///
    /// # Errors
    /// An unknown version, or a file that does not parse, names no category, or repeats a code.
    pub fn load(version: i32) -> Result<SafeguardingRules, SafeguardingRulesError> {
        code_list::load(version)
    }

    /// The latest version this build knows (every file is loaded by a test, so it loads).
    pub fn current() -> SafeguardingRules {
        code_list::current()
    }

    /// The category codes, for `decide`.
    pub fn category_codes(&self) -> Vec<String> {
        self.categories.iter().map(|c| c.code.clone()).collect()
    }

    /// The name of a category code, or the code itself when this version does not list it.
    pub fn category_name<'a>(&'a self, code: &'a str) -> &'a str {
        self.categories
            .iter()
            .find(|c| c.code == code)
            .map_or(code, |c| c.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_safeguarding_rule_file_loads() {
        for (version, _) in SafeguardingRules::FILES {
            let rules = SafeguardingRules::load(*version).expect("loads");
            assert_eq!(rules.version, *version);
        }
        let current = SafeguardingRules::current();
        assert!(
            current
                .category_codes()
                .contains(&"self_neglect".to_owned())
        );
        assert_eq!(current.category_name("self_neglect"), "Self-neglect");
        assert_eq!(current.category_name("retired_code"), "retired_code");
        assert!(matches!(
            SafeguardingRules::load(99),
            Err(SafeguardingRulesError::Unknown { version: 99, .. })
        ));
    }
}
