//! The safeguarding rules (`projections/safeguarding/v{n}.toml`), built into the binary: the
//! categories a safeguarding concern may be raised under. Read when a command is carried out
//! (a concern keeps the code it was raised with), so a new version needs no rebuild.

use serde::Deserialize;

/// Every safeguarding rule version this build knows, in order.
const SAFEGUARDING_FILES: &[(i32, &str)] =
    &[(1, include_str!("../../../projections/safeguarding/v1.toml"))];

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
#[derive(Debug, thiserror::Error)]
pub enum SafeguardingRulesError {
    #[error("no safeguarding rules version {0}")]
    Unknown(i32),
    #[error("safeguarding rules version {version} do not parse: {reason}")]
    Invalid { version: i32, reason: String },
}

impl SafeguardingRules {
    /// The rules of `version`.
    ///
    /// # Errors
    /// An unknown version, or a file that does not parse, names no category, or repeats a code.
    pub fn load(version: i32) -> Result<SafeguardingRules, SafeguardingRulesError> {
        let text = SAFEGUARDING_FILES
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, text)| *text)
            .ok_or(SafeguardingRulesError::Unknown(version))?;
        let invalid = |reason: String| SafeguardingRulesError::Invalid { version, reason };
        let rules: SafeguardingRules = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if rules.version != version {
            return Err(invalid(format!("the file says version {}", rules.version)));
        }
        if rules.categories.is_empty() {
            return Err(invalid("no categories".to_owned()));
        }
        let mut codes = rules.category_codes();
        codes.sort();
        codes.dedup();
        if codes.len() != rules.categories.len() {
            return Err(invalid("a category code is listed twice".to_owned()));
        }
        Ok(rules)
    }

    /// The latest version this build knows (every file is loaded by a test, so it loads).
    pub fn current() -> SafeguardingRules {
        let latest = SAFEGUARDING_FILES.last().map_or(1, |(v, _)| *v);
        SafeguardingRules::load(latest).unwrap_or(SafeguardingRules {
            version: latest,
            description: String::new(),
            categories: Vec::new(),
        })
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
        for (version, _) in SAFEGUARDING_FILES {
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
            Err(SafeguardingRulesError::Unknown(99))
        ));
    }
}
