//! Tags on a case, as the record and the caseload show them: codes of the service's own list
//! (`projections/tags/`), each with its label. The rules of tagging are the domain's
//! (`domain::decide`); who may tag is the policy's, as for every command on a record
//! (`policy::may_command`: whoever works the case).

use std::sync::LazyLock;

use projector::tag_rules::TagRules;
use serde::Serialize;

static RULES: LazyLock<TagRules> = LazyLock::new(TagRules::current);

/// The tag rules commands and caseload filters are held to (the latest version this build
/// knows).
pub fn rules() -> &'static TagRules {
    &RULES
}

/// A tag a case carries, with the label the latest rules give it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CaseTag {
    /// The tag's code (`projections/tags/`).
    pub code: String,
    /// Its label under the latest rules (the code itself for a tag the list no longer has).
    pub label: String,
}

/// The tags of a record, in code order, labelled.
pub fn labelled<'a>(codes: impl IntoIterator<Item = &'a String>) -> Vec<CaseTag> {
    let rules = rules();
    codes
        .into_iter()
        .map(|code| CaseTag {
            label: rules.label(code).to_owned(),
            code: code.clone(),
        })
        .collect()
}
