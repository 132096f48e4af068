//! A versioned code list built into the binary (`projections/tags/`,
//! `projections/safeguarding/`): each version a file of codes and the words people read for
//! them. Read when a command is carried out (a record keeps the code it was given), so a new
//! version needs no rebuild. Every list is loaded and checked the same way: the version the file
//! says, at least one entry, each code of the list's form, no code twice.

use serde::de::DeserializeOwned;

/// Why a code list version cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum CodeListError {
    #[error("no {list} rules version {version}")]
    Unknown { list: &'static str, version: i32 },
    #[error("{list} rules version {version} do not parse: {reason}")]
    Invalid {
        list: &'static str,
        version: i32,
        reason: String,
    },
}

/// A code list, one version a file.
pub trait CodeList: DeserializeOwned {
    /// `tag`, `safeguarding`: for the words of an error.
    const LIST: &'static str;
    /// What one entry is called (`tag`, `category`), and many: for the words of an error.
    const ENTRY: (&'static str, &'static str);
    /// Every version this build knows, in order, with its file.
    const FILES: &'static [(i32, &'static str)];
    /// The version its file says it is.
    fn version(&self) -> i32;
    /// Its codes, in the file's order.
    fn listed_codes(&self) -> Vec<&str>;
    /// A list of `version` with no entries.
    fn empty(version: i32) -> Self;
    /// Whether a code is of the list's form (any, unless the list says otherwise).
    fn well_formed(_code: &str) -> bool {
        true
    }
}

/// The list of `version`.
///
/// # Errors
/// An unknown version, or a file that does not parse, says another version, lists nothing, has
/// a code not of the list's form, or repeats a code.
pub fn load<L: CodeList>(version: i32) -> Result<L, CodeListError> {
    let text = L::FILES
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, text)| *text)
        .ok_or(CodeListError::Unknown {
            list: L::LIST,
            version,
        })?;
    let invalid = |reason: String| CodeListError::Invalid {
        list: L::LIST,
        version,
        reason,
    };
    let (entry, entries) = L::ENTRY;
    let list: L = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    if list.version() != version {
        return Err(invalid(format!("the file says version {}", list.version())));
    }
    let mut codes = list.listed_codes();
    if codes.is_empty() {
        return Err(invalid(format!("no {entries}")));
    }
    if let Some(bad) = codes.iter().find(|code| !L::well_formed(code)) {
        return Err(invalid(format!("the code {bad:?} is not well formed")));
    }
    let listed = codes.len();
    codes.sort_unstable();
    codes.dedup();
    if codes.len() != listed {
        return Err(invalid(format!("a {entry} code is listed twice")));
    }
    Ok(list)
}

/// The latest version this build knows (every file is loaded by a test, so it loads; were it not
/// to, a list of nothing).
pub fn current<L: CodeList>() -> L {
    let latest = L::FILES.last().map_or(1, |(v, _)| *v);
    load(latest).unwrap_or_else(|_| L::empty(latest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list of files written for the test, one fault each.
    #[derive(Debug, serde::Deserialize)]
    struct Colours {
        version: i32,
        colours: Vec<String>,
    }

    impl CodeList for Colours {
        const LIST: &'static str = "colour";
        const ENTRY: (&'static str, &'static str) = ("colour", "colours");
        const FILES: &'static [(i32, &'static str)] = &[
            (1, "version = 1\ncolours = [\"red\", \"green\"]"),
            (2, "version = 3\ncolours = [\"red\"]"),
            (3, "version = 3\ncolours = []"),
            (4, "version = 4\ncolours = [\"red\", \"Blue\"]"),
            (5, "version = 5\ncolours = [\"red\", \"green\", \"red\"]"),
            (6, "version = 6\ncolours = \"red\""),
        ];

        fn version(&self) -> i32 {
            self.version
        }

        fn listed_codes(&self) -> Vec<&str> {
            self.colours.iter().map(String::as_str).collect()
        }

        fn empty(version: i32) -> Colours {
            Colours {
                version,
                colours: Vec::new(),
            }
        }

        fn well_formed(code: &str) -> bool {
            code.chars().all(|c| c.is_ascii_lowercase())
        }
    }

    fn refusal(version: i32) -> String {
        match load::<Colours>(version) {
            Ok(list) => format!("loaded {:?}", list.colours),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_code_list_is_refused_for_each_fault_with_its_own_words() {
        assert_eq!(refusal(1), r#"loaded ["red", "green"]"#);
        assert_eq!(
            refusal(2),
            "colour rules version 2 do not parse: the file says version 3"
        );
        assert_eq!(
            refusal(3),
            "colour rules version 3 do not parse: no colours"
        );
        assert_eq!(
            refusal(4),
            r#"colour rules version 4 do not parse: the code "Blue" is not well formed"#
        );
        assert_eq!(
            refusal(5),
            "colour rules version 5 do not parse: a colour code is listed twice"
        );
        assert!(refusal(6).starts_with("colour rules version 6 do not parse: "));
        assert_eq!(refusal(7), "no colour rules version 7");
        // The latest file does not load: a list of nothing, of that version.
        let current = current::<Colours>();
        assert_eq!((current.version, current.colours.len()), (6, 0));
    }
}
