//! The tag rules (`projections/tags/v{n}.toml`), built into the binary: the tags a case may
//! carry, each a code and the label people read. Read when a command is carried out (a case
//! keeps the code it was tagged with), so a new version needs no rebuild.

use serde::Deserialize;

/// Every tag rule version this build knows, in order.
const TAG_FILES: &[(i32, &str)] = &[(1, include_str!("../../../projections/tags/v1.toml"))];

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
#[derive(Debug, thiserror::Error)]
pub enum TagRulesError {
    #[error("no tag rules version {0}")]
    Unknown(i32),
    #[error("tag rules version {version} do not parse: {reason}")]
    Invalid { version: i32, reason: String },
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
        let text = TAG_FILES
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, text)| *text)
            .ok_or(TagRulesError::Unknown(version))?;
        let invalid = |reason: String| TagRulesError::Invalid { version, reason };
        let rules: TagRules = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if rules.version != version {
            return Err(invalid(format!("the file says version {}", rules.version)));
        }
        if rules.tags.is_empty() {
            return Err(invalid("no tags".to_owned()));
        }
        if let Some(bad) = rules.tags.iter().find(|t| !well_formed(&t.code)) {
            return Err(invalid(format!(
                "the code {:?} is not well formed",
                bad.code
            )));
        }
        let mut codes = rules.codes();
        codes.sort();
        codes.dedup();
        if codes.len() != rules.tags.len() {
            return Err(invalid("a tag code is listed twice".to_owned()));
        }
        Ok(rules)
    }

    /// The latest version this build knows (every file is loaded by a test, so it loads).
    pub fn current() -> TagRules {
        let latest = TAG_FILES.last().map_or(1, |(v, _)| *v);
        TagRules::load(latest).unwrap_or(TagRules {
            version: latest,
            description: String::new(),
            tags: Vec::new(),
        })
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
        for (version, _) in TAG_FILES {
            let rules = TagRules::load(*version).expect("loads");
            assert_eq!(rules.version, *version);
        }
        let current = TagRules::current();
        assert!(current.codes().contains(&"housing-priority".to_owned()));
        assert_eq!(current.label("carer"), "Carer");
        assert_eq!(current.label("retired-code"), "retired-code");
        assert!(matches!(
            TagRules::load(99),
            Err(TagRulesError::Unknown(99))
        ));
        assert!(!well_formed("a,b"));
        assert!(!well_formed("Housing"));
        assert!(well_formed("interpreter-needed"));
    }
}
