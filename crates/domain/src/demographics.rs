//! Demographics for equity reporting (issue #21 part 5): who the service reaches.
//!
//! A `DemographicsRecorded` event holds what the person told us (`demographics`: sex, gender
//! identity, ethnic category, language and communication needs, GP practice, postcode) and what
//! reports count by (`reportable`: an age band, the ethnic group, the deprivation decile of the
//! postcode's area...), derived once by the application layer when it is recorded, under a
//! versioned rule file (`projections/equity/`). Both are personal and sealed: see ARCHITECTURE
//! "Personal data" for why the derived fact is erased with the person too.
//! A later recording replaces an earlier one; demographics are corrected by recording them
//! again, never by `EntryCorrected` (the derived fact would no longer match what it came from).

use serde::{Deserialize, Serialize};

use crate::codes::coded;
use crate::event::CaseEvent;
use crate::{CaseError, CaseState};

coded!(
    /// Sex, as the NHS Data Dictionary's PERSON PHENOTYPIC SEX (1 male, 2 female,
    /// 9 indeterminate, X not known). [U: the code list as remembered; check it against the
    /// Data Dictionary page before relying on the codes' numbers.]
    Sex {
        Male => "male",
        Female => "female",
        Indeterminate => "indeterminate (unable to be classified as either male or female)",
        NotKnown => "not known",
    }
);

coded!(
    /// Gender identity, as the person describes it: the NHS Data Dictionary's GENDER IDENTITY
    /// CODE (1 male, 2 female, 3 non-binary, 4 other (not listed), X not known, Y not stated:
    /// asked but declined), as quoted in nhs-r-community/health-inequalities-notebook
    /// `gender.qmd`. It is self-identified and never overwritten from another source.
    GenderIdentity {
        Male => "male (including trans man)",
        Female => "female (including trans woman)",
        NonBinary => "non-binary",
        OtherNotListed => "other (not listed)",
        NotKnown => "not known",
        NotStated => "not stated (asked but declined)",
    }
);

coded!(
    /// The top-level groups of the NHS ethnic categories (the 2001 census groups), which reports
    /// count by: the sixteen categories are too fine for the small-number rule.
    EthnicGroup {
        White => "White",
        Mixed => "Mixed",
        AsianOrAsianBritish => "Asian or Asian British",
        BlackOrBlackBritish => "Black or Black British",
        OtherEthnicGroup => "Other ethnic groups",
        NotStated => "not stated",
        NotKnown => "not known",
    }
);

/// The NHS Data Dictionary's ETHNIC CATEGORY (the 2001 census categories, letters A to S, Z not
/// stated, 99 not known), as the person states it. Source: NHS Data Dictionary, "Ethnic
/// Category" (https://www.datadictionary.nhs.uk/data_elements/ethnic_category.html), the code
/// list used by the NHS Equality and Inclusion datasets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EthnicCategory {
    #[serde(rename = "A")]
    WhiteBritish,
    #[serde(rename = "B")]
    WhiteIrish,
    #[serde(rename = "C")]
    AnyOtherWhiteBackground,
    #[serde(rename = "D")]
    WhiteAndBlackCaribbean,
    #[serde(rename = "E")]
    WhiteAndBlackAfrican,
    #[serde(rename = "F")]
    WhiteAndAsian,
    #[serde(rename = "G")]
    AnyOtherMixedBackground,
    #[serde(rename = "H")]
    Indian,
    #[serde(rename = "J")]
    Pakistani,
    #[serde(rename = "K")]
    Bangladeshi,
    #[serde(rename = "L")]
    AnyOtherAsianBackground,
    #[serde(rename = "M")]
    Caribbean,
    #[serde(rename = "N")]
    African,
    #[serde(rename = "P")]
    AnyOtherBlackBackground,
    #[serde(rename = "R")]
    Chinese,
    #[serde(rename = "S")]
    AnyOtherEthnicGroup,
    #[serde(rename = "Z")]
    NotStated,
    #[serde(rename = "99")]
    NotKnown,
}

impl EthnicCategory {
    /// Every category, in the Data Dictionary's order.
    pub const ALL: &'static [EthnicCategory] = &[
        EthnicCategory::WhiteBritish,
        EthnicCategory::WhiteIrish,
        EthnicCategory::AnyOtherWhiteBackground,
        EthnicCategory::WhiteAndBlackCaribbean,
        EthnicCategory::WhiteAndBlackAfrican,
        EthnicCategory::WhiteAndAsian,
        EthnicCategory::AnyOtherMixedBackground,
        EthnicCategory::Indian,
        EthnicCategory::Pakistani,
        EthnicCategory::Bangladeshi,
        EthnicCategory::AnyOtherAsianBackground,
        EthnicCategory::Caribbean,
        EthnicCategory::African,
        EthnicCategory::AnyOtherBlackBackground,
        EthnicCategory::Chinese,
        EthnicCategory::AnyOtherEthnicGroup,
        EthnicCategory::NotStated,
        EthnicCategory::NotKnown,
    ];

    /// The Data Dictionary's words for it.
    pub fn label(self) -> &'static str {
        use EthnicCategory as E;
        match self {
            E::WhiteBritish => "White - British",
            E::WhiteIrish => "White - Irish",
            E::AnyOtherWhiteBackground => "White - Any other White background",
            E::WhiteAndBlackCaribbean => "Mixed - White and Black Caribbean",
            E::WhiteAndBlackAfrican => "Mixed - White and Black African",
            E::WhiteAndAsian => "Mixed - White and Asian",
            E::AnyOtherMixedBackground => "Mixed - Any other mixed background",
            E::Indian => "Asian or Asian British - Indian",
            E::Pakistani => "Asian or Asian British - Pakistani",
            E::Bangladeshi => "Asian or Asian British - Bangladeshi",
            E::AnyOtherAsianBackground => "Asian or Asian British - Any other Asian background",
            E::Caribbean => "Black or Black British - Caribbean",
            E::African => "Black or Black British - African",
            E::AnyOtherBlackBackground => "Black or Black British - Any other Black background",
            E::Chinese => "Other Ethnic Groups - Chinese",
            E::AnyOtherEthnicGroup => "Other Ethnic Groups - Any other ethnic group",
            E::NotStated => "Not stated",
            E::NotKnown => "Not known",
        }
    }

    /// The group reports count it in.
    pub fn group(self) -> EthnicGroup {
        use EthnicCategory as E;
        match self {
            E::WhiteBritish | E::WhiteIrish | E::AnyOtherWhiteBackground => EthnicGroup::White,
            E::WhiteAndBlackCaribbean
            | E::WhiteAndBlackAfrican
            | E::WhiteAndAsian
            | E::AnyOtherMixedBackground => EthnicGroup::Mixed,
            E::Indian | E::Pakistani | E::Bangladeshi | E::AnyOtherAsianBackground => {
                EthnicGroup::AsianOrAsianBritish
            }
            E::Caribbean | E::African | E::AnyOtherBlackBackground => {
                EthnicGroup::BlackOrBlackBritish
            }
            E::Chinese | E::AnyOtherEthnicGroup => EthnicGroup::OtherEthnicGroup,
            E::NotStated => EthnicGroup::NotStated,
            E::NotKnown => EthnicGroup::NotKnown,
        }
    }
}

/// The longest preferred language or communication needs text taken.
pub const DEMOGRAPHICS_TEXT_LIMIT: usize = 500;

/// What the person told us about themselves (all personal data, sealed; every field optional:
/// a person may decline any question).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Demographics {
    pub sex: Option<Sex>,
    pub gender_identity: Option<GenderIdentity>,
    /// The NHS ethnic category code (A to S, Z not stated, 99 not known).
    pub ethnic_category: Option<EthnicCategory>,
    /// Preferred language, in words ("Polish", "British Sign Language").
    pub preferred_language: Option<String>,
    /// Whether they need an interpreter.
    pub interpreter_needed: Option<bool>,
    /// Communication and accessibility needs, in words (the Accessible Information Standard's
    /// kind: large print, easy read, a hearing loop).
    pub communication_needs: Option<String>,
    /// Their registered GP practice's ODS code (a letter and five digits, e.g. `L85016`).
    pub gp_practice: Option<String>,
    /// Their home postcode (for the deprivation decile of its area).
    pub postcode: Option<String>,
}

/// What reports count a person by, derived when their demographics were recorded (under
/// `projections/equity/v{rules_version}.toml`). Nothing here names anyone on its own, but
/// together with the rest of a record it may single someone out: it is sealed with the rest and
/// erased with the person.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ReportableDemographics {
    /// The equity rules version the fact was derived under (0: none, e.g. an erased entry).
    pub rules_version: i32,
    /// The age band at the referral (the latest received when recorded; the day recorded
    /// without one), from the date of birth registered; none without one.
    pub age_band: Option<String>,
    pub sex: Option<Sex>,
    pub gender_identity: Option<GenderIdentity>,
    pub ethnic_group: Option<EthnicGroup>,
    pub interpreter_needed: Option<bool>,
    /// The GP practice's ODS code (an organisation, not a person).
    pub gp_practice: Option<String>,
    /// The English Indices of Deprivation 2019 decile (1 most deprived) of the postcode's
    /// LSOA; none when the postcode is not in the loaded lookup.
    pub imd_decile: Option<i16>,
}

/// The person's demographics were recorded (or recorded again: the latest counts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DemographicsRecorded {
    /// What they told us (personal, sealed).
    pub demographics: Demographics,
    /// What reports count them by (sealed too, erased with them).
    pub reportable: ReportableDemographics,
}

/// Whether `text` looks like a GP practice's ODS code: a letter and five digits.
pub fn is_practice_code(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 6 && bytes[0].is_ascii_uppercase() && bytes[1..].iter().all(u8::is_ascii_digit)
}

/// A UK postcode in its usual form (upper case, one space before the inward code), or `None`
/// for text that is not shaped like one.
pub fn normalise_postcode(text: &str) -> Option<String> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let inward_ok = {
        let b = inward.as_bytes();
        b[0].is_ascii_digit() && b[1].is_ascii_alphabetic() && b[2].is_ascii_alphabetic()
    };
    let outward_ok = outward.as_bytes()[0].is_ascii_alphabetic()
        && outward.bytes().all(|c| c.is_ascii_alphanumeric())
        && outward.bytes().any(|c| c.is_ascii_digit());
    (inward_ok && outward_ok).then(|| format!("{outward} {inward}"))
}

impl Demographics {
    /// Checks what can be checked without IO.
    ///
    /// # Errors
    /// [`CaseError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), CaseError> {
        for (field, text) in [
            ("demographics.preferred_language", &self.preferred_language),
            (
                "demographics.communication_needs",
                &self.communication_needs,
            ),
        ] {
            if let Some(text) = text {
                if text.trim().is_empty() {
                    return Err(CaseError::invalid(field, "leave it out rather than blank"));
                }
                if text.chars().count() > DEMOGRAPHICS_TEXT_LIMIT {
                    return Err(CaseError::invalid(
                        field,
                        format!("at most {DEMOGRAPHICS_TEXT_LIMIT} characters"),
                    ));
                }
            }
        }
        if let Some(practice) = &self.gp_practice
            && !is_practice_code(practice)
        {
            return Err(CaseError::invalid(
                "demographics.gp_practice",
                "a GP practice's ODS code is a capital letter and five digits, e.g. L85016",
            ));
        }
        if let Some(postcode) = &self.postcode
            && normalise_postcode(postcode).is_none()
        {
            return Err(CaseError::invalid(
                "demographics.postcode",
                "this does not look like a UK postcode",
            ));
        }
        Ok(())
    }
}

/// Decides a recording of demographics: the person is registered and the details check.
pub(crate) fn record(
    state: &CaseState,
    recorded: &DemographicsRecorded,
) -> Result<Vec<CaseEvent>, CaseError> {
    if state.status == crate::CaseStatus::Unregistered {
        return Err(CaseError::NotRegistered);
    }
    // Kept in their usual forms, whatever the case they were typed in ("ba11 1px" is
    // BA11 1PX; a practice "l85016" is L85016), so the record shows them as people write them.
    let mut recorded = recorded.clone();
    let demographics = &mut recorded.demographics;
    if let Some(postcode) = demographics
        .postcode
        .as_deref()
        .and_then(normalise_postcode)
    {
        demographics.postcode = Some(postcode);
    }
    if let Some(practice) = &demographics.gp_practice {
        let upper = practice.trim().to_ascii_uppercase();
        if is_practice_code(&upper) {
            demographics.gp_practice = Some(upper);
        }
    }
    recorded.demographics.validate()?;
    Ok(vec![CaseEvent::DemographicsRecorded(recorded)])
}

/// The event type a correction may not name: demographics are recorded again instead.
pub const DEMOGRAPHICS_EVENT_TYPE: &str = "DemographicsRecorded";

/// Refuses a correction of a demographics entry.
pub(crate) fn check_correctable(
    state: &CaseState,
    corrects: crate::EventId,
) -> Result<(), CaseError> {
    match state.events.get(&corrects) {
        Some(event_type) if *event_type == DEMOGRAPHICS_EVENT_TYPE => Err(CaseError::invalid(
            "corrects",
            "demographics are corrected by recording them again: the latest recording counts",
        )),
        _ => Ok(()),
    }
}
