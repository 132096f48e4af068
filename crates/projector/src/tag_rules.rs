//! The tag rules (`projections/tags/v{n}.toml`), built into the binary: the tags a case may
//! carry, each a code and the label people read. Read when a command is carried out (a case
//! keeps the code it was tagged with), so a new version needs no rebuild.

use serde::Deserialize;

use crate::code_list::{self, CodeList, CodeListError};

/// One tag: its stable code and the label people read.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    pub code: String,
    pub label: String,
}

/// The tag rules of one version.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TagRules {
    pub version: i32,
    pub description: String,
    pub tags: Vec<Tag>,
}

/// Why a tag rule version cannot be had.
pub type TagRulesError = CodeListError;

impl CodeList for TagRules {
    const LIST: &'static str = "tag";
    const ENTRY: (&'static str, &'static str) = ("tag", "tags");
    const FILES: &'static [(i32, &'static str)] =
        &[(1, include_str!("../../../projections/tags/v1.toml"))];

    fn version(&self) -> i32 {
        self.version
    }

    fn listed_codes(&self) -> Vec<&str> {
        self.tags.iter().map(|t| t.code.as_str()).collect()
    }

    fn empty(version: i32) -> TagRules {
        TagRules {
            version,
            description: String::new(),
            tags: Vec::new(),
        }
    }

    fn well_formed(code: &str) -> bool {
        well_formed(code)
    }
}

/// Whether a code is lower case letters, digits and hyphens, 1 to 40 of them.
fn well_formed(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 40
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl TagRules {
    /// The rules of `version`.
    ///
    /// # Errors
    /// An unknown version, or a file that does not parse, names no tag, repeats a code or has
    /// a code of other characters than lower case letters, digits and hyphens.
    pub fn load(version: i32) -> Result<TagRules, TagRulesError> {
        code_list::load(version)
    }

    /// The latest version this build knows (every file is loaded by a test, so it loads).
    pub fn current() -> TagRules {
        code_list::current()
    }

    /// The tag codes, for `decide`.
    pub fn codes(&self) -> Vec<String> {
        self.tags.iter().map(|t| t.code.clone()).collect()
    }

    /// The label of a tag code, or the code itself when this version does not list it.
    pub fn label<'a>(&'a self, code: &'a str) -> &'a str {
        self.tags
            .iter()
            .find(|t| t.code == code)
            .map_or(code, |t| t.label.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_rule_file_loads() {
        for (version, _) in TagRules::FILES {
            let rules = TagRules::load(*version).expect("loads");
            assert_eq!(rules.version, *version);
        }
        let current = TagRules::current();
        assert!(current.codes().contains(&"housing-priority".to_owned()));
        assert_eq!(current.label("carer"), "Carer");
        assert_eq!(current.label("retired-code"), "retired-code");
        assert!(matches!(
            TagRules::load(99),
            Err(TagRulesError::Unknown { version: 99, .. })
        ));
        assert!(!well_formed("a,b"));
        assert!(!well_formed("Housing"));
        assert!(well_formed("interpreter-needed"));
    }
}
