//! Versioned counting rules, read from `projections/outcomes/v{n}.toml` (built into the binary,
//! so a rule version means the same thing wherever it runs). Scoring instruments, pairing a
//! baseline with its follow-up, and classifying change are pure functions of a rule set.

use domain::{Instrument, Timepoint};
use serde::Deserialize;

/// Every rule version this build knows, in order.
const RULE_FILES: &[(i32, &str)] = &[
    (1, include_str!("../../../projections/outcomes/v1.toml")),
    (2, include_str!("../../../projections/outcomes/v2.toml")),
    (3, include_str!("../../../projections/outcomes/v3.toml")),
];

/// A rule set.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub version: i32,
    pub description: String,
    pub pairing: PairingRules,
    pub measures: Vec<Measure>,
    pub swemwbs: SwemwbsTable,
    /// Which date each figure counts by (absent in v1 and v2: the defaults are theirs).
    #[serde(default)]
    pub dating: Dating,
    /// Which corrections change the figures (absent in v1 and v2: assessments only).
    #[serde(default)]
    pub corrections: Corrections,
    /// Which figures beyond v1's are kept, and who counts in outcome measures (absent in v1
    /// and v2: none, and everyone).
    #[serde(default)]
    pub figures: FigureRules,
    /// The area rules `figures.areas` names, loaded with these.
    #[serde(skip)]
    pub area_rules: Option<AreaRules>,
}

/// Figures a rule version keeps beyond v1's, and who counts in outcome measures.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FigureRules {
    /// Keep every baseline, paired or not, so reports can show the baselines with no follow-up
    /// (drop-out) beside each paired measure.
    #[serde(default)]
    pub baselines: bool,
    /// Who counts in the outcome measures (paired scores, baselines).
    #[serde(default)]
    pub evaluation_consent: EvaluationConsent,
    /// The area rules version gaps (and the directory's capacity beside them) are counted by,
    /// as codes (`projections/areas/`); none counts areas as typed (v1, v2).
    #[serde(default)]
    pub areas: Option<i32>,
    /// Count redirected referrals by where they went (a destination code or a directory
    /// service; absent in v1 and v2).
    #[serde(default)]
    pub redirections: bool,
}

/// Whether a person's consent to evaluation decides if their scores count.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EvaluationConsent {
    /// Everyone's scores count (v1, v2).
    #[default]
    Ignore,
    /// The scores of people whose consent to evaluation is withdrawn (or recorded and then
    /// withdrawn) do not count; the report says how many were left out.
    ExcludeWithdrawn,
}

impl EvaluationConsent {
    /// The stable code reports state.
    pub fn code(self) -> &'static str {
        match self {
            EvaluationConsent::Ignore => "ignore",
            EvaluationConsent::ExcludeWithdrawn => "exclude_withdrawn",
        }
    }
}

/// Every area rule version this build knows, in order (`projections/areas/`).
const AREA_FILES: &[(i32, &str)] = &[(1, include_str!("../../../projections/areas/v1.toml"))];

/// The places a service covers, as the codes reports count areas by.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AreaRules {
    pub version: i32,
    pub description: String,
    pub areas: Vec<Area>,
}

/// One place: its code, its name, and what people type for it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Area {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub spellings: Vec<String>,
    #[serde(default)]
    pub postcode_districts: Vec<String>,
}

/// Lower case, without surrounding spaces or punctuation, single spaces.
fn tidy(text: &str) -> String {
    text.split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim_matches(|c: char| c.is_ascii_punctuation())
        .trim()
        .to_lowercase()
}

/// The district of a UK postcode ("BA11 1AA", "ba11"), if the text is one.
fn postcode_district(text: &str) -> Option<String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let compact = compact.to_uppercase();
    let is_district = |d: &str| {
        let letters = d.chars().take_while(char::is_ascii_alphabetic).count();
        let rest = &d[letters..];
        (1..=2).contains(&letters)
            && rest.chars().next().is_some_and(|c| c.is_ascii_digit())
            && (1..=2).contains(&rest.len())
            && rest.chars().all(|c| c.is_ascii_alphanumeric())
    };
    if is_district(&compact) {
        return Some(compact);
    }
    // A full postcode: the inward code is a digit and two letters.
    let (outward, inward) = compact.split_at(compact.len().checked_sub(3)?);
    let inward_ok = inward.chars().next().is_some_and(|c| c.is_ascii_digit())
        && inward.chars().skip(1).all(|c| c.is_ascii_alphabetic());
    (inward_ok && is_district(outward)).then(|| outward.to_owned())
}

impl AreaRules {
    /// The area rules of a version.
    ///
    /// # Errors
    /// An unknown version, a file that does not parse, or two areas with one code or spelling.
    pub fn load(version: i32) -> Result<AreaRules, RulesError> {
        let text = rule_file(AREA_FILES, version).ok_or(RulesError::UnknownAreas(version))?;
        let invalid = |reason: String| RulesError::Invalid { version, reason };
        let rules: AreaRules = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if rules.version != version {
            return Err(invalid(format!("the file says version {}", rules.version)));
        }
        let mut seen = std::collections::BTreeSet::new();
        for area in &rules.areas {
            for key in std::iter::once(&area.name)
                .chain(&area.spellings)
                .map(|s| tidy(s))
                .chain(std::iter::once(format!("code:{}", area.code)))
                .chain(
                    area.postcode_districts
                        .iter()
                        .map(|d| format!("pc:{}", d.to_uppercase())),
                )
            {
                if !seen.insert(key.clone()) {
                    return Err(invalid(format!("{key} names two areas")));
                }
            }
        }
        Ok(rules)
    }

    /// The code and name of the area a typed text means: by name or spelling, then by postcode
    /// district; otherwise `uncoded:<tidied text>` with the text as typed.
    pub fn code(&self, typed: &str) -> (String, String) {
        let tidied = tidy(typed);
        let by_name = self.areas.iter().find(|a| {
            tidy(&a.name) == tidied
                || a.code == tidied
                || a.spellings.iter().any(|s| tidy(s) == tidied)
        });
        let by_postcode = || {
            let district = postcode_district(&tidied)?;
            self.areas.iter().find(|a| {
                a.postcode_districts
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(&district))
            })
        };
        match by_name.or_else(by_postcode) {
            Some(area) => (area.code.clone(), area.name.clone()),
            None => (format!("uncoded:{tidied}"), typed.trim().to_owned()),
        }
    }
}

/// Which corrections change the figures.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Corrections {
    /// Corrections of an assessment's answers, timepoint, date or licensor score (v1, v2);
    /// other corrections leave the figures as first recorded.
    #[default]
    Assessments,
    /// Every correction, as if the fact had been recorded right the first time.
    Every,
}

/// Which date a figure counts by, where versions differ. Every version counts referrals by the
/// day received, episodes started by the day accepted, closures by the day closed, paired scores
/// by the follow-up's day, gaps and connections by the day they happened.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Dating {
    /// Appointments attended and not attended.
    #[serde(default)]
    pub appointments: FactDate,
    /// Contacts.
    #[serde(default)]
    pub contacts: FactDate,
}

impl Dating {
    /// Whether any fact is counted by its own date (so the projection keeps a row per fact).
    pub fn dates_facts(&self) -> bool {
        self.appointments == FactDate::Own || self.contacts == FactDate::Own
    }
}

/// The date a fact inside an episode counts by.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FactDate {
    /// The day its episode was accepted (outcome rules v1 and v2): a period's report counts the
    /// appointments and contacts of the episodes that started in it, whenever they were.
    #[default]
    EpisodeAccepted,
    /// Its own day: an appointment's booked day, a contact's time.
    Own,
}

/// Every caseload rule version this build knows, in order (`projections/caseload/`).
const CASELOAD_FILES: &[(i32, &str)] = &[
    (1, include_str!("../../../projections/caseload/v1.toml")),
    (2, include_str!("../../../projections/caseload/v2.toml")),
];

/// Caseload flags and capacity, read when a caseload is (no stored figure depends on them).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CaseloadRules {
    pub version: i32,
    pub description: String,
    pub no_contact_days: i64,
    pub did_not_attend_flag: i32,
    pub follow_up_due_days: i64,
    pub default_capacity: i32,
    /// Days a connection may wait for its service's answer before the case is flagged
    /// `no_answer_from_service` (from version 2; none: never flagged).
    #[serde(default)]
    pub provider_no_answer_days: Option<i64>,
}

/// Every recording rule version this build knows, in order (`projections/recording/`).
const RECORDING_FILES: &[(i32, &str)] = &[
    (1, include_str!("../../../projections/recording/v1.toml")),
    (2, include_str!("../../../projections/recording/v2.toml")),
    (3, include_str!("../../../projections/recording/v3.toml")),
];

/// How facts are recorded: read when a command is carried out (nothing stored depends on them).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecordingRules {
    pub version: i32,
    pub description: String,
    /// Facts older than this many days are late entries (a team lead's, with a reason).
    pub back_entry_days: i64,
    /// The codes a redirection may name when it did not go to a listed service (none in v1).
    #[serde(default)]
    pub destinations: Vec<DestinationCode>,
}

/// A place a redirected referral may go, by code.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DestinationCode {
    pub code: String,
    pub name: String,
    /// The code says too little alone: a redirection to it says where in its note (from v3).
    #[serde(default)]
    pub needs_note: bool,
}

/// Which scores pair with a baseline.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PairingRules {
    pub after: Vec<Timepoint>,
    pub min_days_between: i64,
    /// Whether an episode with no baseline of its own pairs with the last baseline of an
    /// earlier episode (absent in v1 and v2: false, as they always did).
    #[serde(default)]
    pub carry_over_baselines: bool,
}

/// How a score is made from an instrument's answers.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    Sum,
    SwemwbsMetric,
    Item,
    /// The last answer (MYCaW's wellbeing, after one or two concerns).
    LastItem,
    Licensor,
}

/// Which way is better.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

/// One reported score.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    pub name: String,
    pub instrument: Instrument,
    pub score: Scoring,
    /// For `item`: which answer, from 1.
    pub item: Option<usize>,
    pub direction: Direction,
    pub threshold: f64,
    /// Named bands of the score (e.g. the ONS thresholds), each from `from` to `to` inclusive;
    /// reports count paired people in each band at baseline and at follow-up.
    #[serde(default)]
    pub bands: Vec<Band>,
}

/// A named band of a score, inclusive at both ends.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub code: String,
    pub from: f64,
    pub to: f64,
}

/// SWEMWBS raw 7..35 to metric.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SwemwbsTable {
    pub metric: Vec<f64>,
}

/// A change between a baseline and a follow-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Improved,
    NoChange,
    Worse,
}

impl Change {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Change::Improved => "improved",
            Change::NoChange => "no_change",
            Change::Worse => "worse",
        }
    }
}

/// Why a rule set cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("no rules version {0}; this build knows {known:?}", known = known_versions())]
    Unknown(i32),
    #[error("no caseload rules version {0}; this build knows {known:?}", known = CASELOAD_FILES.iter().map(|(v, _)| *v).collect::<Vec<_>>())]
    UnknownCaseload(i32),
    #[error("no recording rules version {0}; this build knows {known:?}", known = RECORDING_FILES.iter().map(|(v, _)| *v).collect::<Vec<_>>())]
    UnknownRecording(i32),
    #[error("no area rules version {0}; this build knows {known:?}", known = AREA_FILES.iter().map(|(v, _)| *v).collect::<Vec<_>>())]
    UnknownAreas(i32),
    #[error("no personal data rules version {0}; this build knows {known:?}", known = PRIVACY_FILES.iter().map(|(v, _)| *v).collect::<Vec<_>>())]
    UnknownPrivacy(i32),
    #[error("rules version {version} do not parse: {reason}")]
    Invalid { version: i32, reason: String },
}

/// The versions this build knows.
pub fn known_versions() -> Vec<i32> {
    RULE_FILES.iter().map(|(v, _)| *v).collect()
}

impl Rules {
    /// The rule set of a version.
    ///
    /// # Errors
    /// An unknown version, or a file that does not parse or does not hold together.
    pub fn load(version: i32) -> Result<Rules, RulesError> {
        let text = rule_file(RULE_FILES, version).ok_or(RulesError::Unknown(version))?;
        let invalid = |reason: String| RulesError::Invalid { version, reason };
        let mut rules: Rules = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if rules.version != version {
            return Err(invalid(format!("the file says version {}", rules.version)));
        }
        if let Some(areas) = rules.figures.areas {
            rules.area_rules = Some(AreaRules::load(areas)?);
        }
        if rules.swemwbs.metric.len() != 29 {
            return Err(invalid(
                "the SWEMWBS table needs 29 values (raw 7 to 35)".into(),
            ));
        }
        for measure in &rules.measures {
            if measure.score == Scoring::Item && measure.item.is_none_or(|i| i == 0) {
                return Err(invalid(format!("{} needs an item from 1", measure.name)));
            }
            if measure.threshold <= 0.0 {
                return Err(invalid(format!(
                    "{} needs a positive threshold",
                    measure.name
                )));
            }
        }
        Ok(rules)
    }

    /// The latest version this build knows.
    pub fn latest_version() -> i32 {
        RULE_FILES.last().map(|(v, _)| *v).unwrap_or(1)
    }

    /// A measure's score from an assessment, when it applies to that instrument.
    pub fn score(
        &self,
        measure: &Measure,
        instrument: Instrument,
        answers: &[i32],
        licensor_score: Option<f64>,
    ) -> Option<f64> {
        if measure.instrument != instrument {
            return None;
        }
        match measure.score {
            Scoring::Sum => Some(answers.iter().map(|a| f64::from(*a)).sum()),
            Scoring::SwemwbsMetric => {
                let raw: i32 = answers.iter().sum();
                let index = usize::try_from(raw - 7).ok()?;
                self.swemwbs.metric.get(index).copied()
            }
            Scoring::Item => measure
                .item
                .and_then(|i| answers.get(i - 1))
                .map(|a| f64::from(*a)),
            Scoring::LastItem => answers.last().map(|a| f64::from(*a)),
            Scoring::Licensor => licensor_score,
        }
    }

    /// Whether a timepoint counts as "after" for pairing.
    pub fn pairs_after(&self, timepoint: Timepoint) -> bool {
        self.pairing.after.contains(&timepoint)
    }
}

impl Measure {
    /// The band a score falls in, if the measure has bands.
    pub fn band(&self, score: f64) -> Option<&str> {
        self.bands
            .iter()
            .find(|b| score >= b.from - 1e-9 && score <= b.to + 1e-9)
            .map(|b| b.code.as_str())
    }

    /// A change signed so that positive is better, whichever way the measure runs.
    pub fn improvement(&self, baseline: f64, follow_up: f64) -> f64 {
        match self.direction {
            Direction::HigherIsBetter => follow_up - baseline,
            Direction::LowerIsBetter => baseline - follow_up,
        }
    }

    /// Classifies `follow_up - baseline`.
    pub fn classify(&self, baseline: f64, follow_up: f64) -> Change {
        let better = self.improvement(baseline, follow_up);
        // Scores are sums of small integers or two-decimal table values: compare with a margin
        // so that 3.0 - 0.0000001 still counts as 3.
        if better >= self.threshold - 1e-9 {
            Change::Improved
        } else if better <= -self.threshold + 1e-9 {
            Change::Worse
        } else {
            Change::NoChange
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_file_loads_and_numbers_itself() {
        for version in known_versions() {
            let rules = Rules::load(version).expect("rules load");
            assert_eq!(rules.version, version);
        }
        assert!(Rules::load(99).is_err());
    }

    #[test]
    fn versions_differ_in_the_wemwbs_threshold() {
        let wemwbs = |v| {
            Rules::load(v)
                .expect("rules")
                .measures
                .into_iter()
                .find(|m| m.name == "wemwbs")
                .expect("wemwbs")
                .threshold
        };
        assert_eq!((wemwbs(1), wemwbs(2)), (9.0, 3.0));
    }

    #[test]
    fn swemwbs_goes_through_the_rasch_table_and_ons4_is_never_summed() {
        let rules = Rules::load(1).expect("rules");
        let measure = |name: &str| {
            rules
                .measures
                .iter()
                .find(|m| m.name == name)
                .expect("measure")
                .clone()
        };
        let swemwbs = measure("swemwbs");
        assert_eq!(
            rules.score(&swemwbs, Instrument::Swemwbs, &[3; 7], None),
            Some(19.25),
            "raw 21"
        );
        assert_eq!(
            rules.score(&swemwbs, Instrument::Swemwbs, &[1; 7], None),
            Some(7.00)
        );
        assert_eq!(
            rules.score(&swemwbs, Instrument::Swemwbs, &[5; 7], None),
            Some(35.00)
        );
        let anxiety = measure("ons4_anxiety");
        assert_eq!(
            rules.score(&anxiety, Instrument::Ons4, &[7, 8, 6, 2], None),
            Some(2.0)
        );
        assert_eq!(
            rules.score(&anxiety, Instrument::Wemwbs, &[1; 14], None),
            None
        );
        // Lower anxiety is better.
        assert_eq!(anxiety.classify(6.0, 2.0), Change::Improved);
        assert_eq!(anxiety.classify(2.0, 6.0), Change::Worse);
        assert_eq!(anxiety.classify(2.0, 2.5), Change::NoChange);
        let wemwbs = measure("wemwbs");
        assert_eq!(wemwbs.classify(40.0, 49.0), Change::Improved);
        assert_eq!(wemwbs.classify(40.0, 48.0), Change::NoChange);
        assert_eq!(wemwbs.classify(40.0, 31.0), Change::Worse);
    }
}

/// The text of one version's file.
fn rule_file(files: &[(i32, &'static str)], version: i32) -> Option<&'static str> {
    files
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, text)| *text)
}

impl CaseloadRules {
    /// The newest version this build knows.
    pub fn latest_version() -> i32 {
        CASELOAD_FILES.last().map_or(1, |(v, _)| *v)
    }

    /// The caseload rules of a version.
    ///
    /// # Errors
    /// An unknown version, or a file that does not parse or does not hold together.
    pub fn load(version: i32) -> Result<CaseloadRules, RulesError> {
        let text =
            rule_file(CASELOAD_FILES, version).ok_or(RulesError::UnknownCaseload(version))?;
        let invalid = |reason: String| RulesError::Invalid { version, reason };
        let rules: CaseloadRules = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if rules.version != version {
            return Err(invalid(format!("the file says version {}", rules.version)));
        }
        if rules.no_contact_days < 1
            || rules.did_not_attend_flag < 1
            || rules.follow_up_due_days < 1
            || rules.default_capacity < 1
            || rules.provider_no_answer_days.is_some_and(|days| days < 1)
        {
            return Err(invalid("every caseload threshold is at least 1".into()));
        }
        Ok(rules)
    }
}

impl RecordingRules {
    /// The destination codes, for `decide`.
    pub fn destination_codes(&self) -> Vec<String> {
        self.destinations.iter().map(|d| d.code.clone()).collect()
    }

    /// The destination codes a redirection must add a note to.
    pub fn destinations_needing_note(&self) -> Vec<String> {
        self.destinations
            .iter()
            .filter(|d| d.needs_note)
            .map(|d| d.code.clone())
            .collect()
    }

    /// The name of a destination code, if this version lists it.
    pub fn destination_name(&self, code: &str) -> Option<&str> {
        self.destinations
            .iter()
            .find(|d| d.code == code)
            .map(|d| d.name.as_str())
    }

    /// The newest version this build knows: the one commands are held to.
    pub fn current() -> RecordingRules {
        let latest = RECORDING_FILES.last().map_or(1, |(v, _)| *v);
        // Every file is loaded by a test, so the latest one loads.
        RecordingRules::load(latest).unwrap_or(RecordingRules {
            version: latest,
            description: String::new(),
            back_entry_days: 93,
            destinations: Vec::new(),
        })
    }

    /// The recording rules of a version.
    ///
    /// # Errors
    /// An unknown version, or a file that does not parse or does not hold together.
    pub fn load(version: i32) -> Result<RecordingRules, RulesError> {
        let text =
            rule_file(RECORDING_FILES, version).ok_or(RulesError::UnknownRecording(version))?;
        let invalid = |reason: String| RulesError::Invalid { version, reason };
        let rules: RecordingRules = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if rules.version != version {
            return Err(invalid(format!("the file says version {}", rules.version)));
        }
        if rules.back_entry_days < 1 {
            return Err(invalid("back_entry_days is at least 1".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for destination in &rules.destinations {
            let code = destination.code.as_str();
            if code.is_empty()
                || !code
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(invalid(format!(
                    "destination code {code:?} is lower case letters, digits and _"
                )));
            }
            if !seen.insert(code) {
                return Err(invalid(format!("destination code {code} twice")));
            }
        }
        Ok(rules)
    }
}

/// Every personal data rule version this build knows, in order (`projections/privacy/`).
const PRIVACY_FILES: &[(i32, &str)] = &[
    (1, include_str!("../../../projections/privacy/v1.toml")),
    (2, include_str!("../../../projections/privacy/v2.toml")),
    (3, include_str!("../../../projections/privacy/v3.toml")),
];

/// Rules for personal data: how long it is kept, and which report cells are too small to show.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrivacyRules {
    pub version: i32,
    pub description: String,
    pub retention: RetentionRules,
    pub disclosure: DisclosureRules,
}

/// How long personal data is kept.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionRules {
    /// Years after the record concluded (case closed, or referral declined or redirected).
    pub years_after_conclusion: u32,
}

/// Small-number suppression in reports.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DisclosureRules {
    /// Counts from 1 to below this are suppressed.
    pub suppress_below: i64,
    /// Where a breakdown adds up to a shown total, a lone suppressed cell takes the smallest
    /// other shown cell with it (absent in v1: false).
    #[serde(default)]
    pub complementary: bool,
    /// The complementary rule also covers a measure's improved / no change / worse, which add
    /// up to its shown paired total (absent before v3: false).
    #[serde(default)]
    pub complementary_measures: bool,
}

impl DisclosureRules {
    /// Whether a count of people may not be shown.
    pub fn suppresses(&self, count: i64) -> bool {
        count > 0 && count < self.suppress_below
    }
}

impl PrivacyRules {
    /// The newest version this build knows.
    pub fn latest_version() -> i32 {
        PRIVACY_FILES.last().map_or(1, |(v, _)| *v)
    }

    /// The latest version's rules. Every built-in file is loaded by a test, so the fallback (the
    /// same figures, written out) is only there to never panic.
    pub fn current() -> PrivacyRules {
        PrivacyRules::load(PrivacyRules::latest_version()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the personal data rules do not load; using the built-in ones");
            PrivacyRules {
                version: PrivacyRules::latest_version(),
                description: "built-in fallback".to_owned(),
                retention: RetentionRules {
                    years_after_conclusion: 8,
                },
                disclosure: DisclosureRules {
                    suppress_below: 5,
                    complementary: true,
                    complementary_measures: true,
                },
            }
        })
    }

    /// The personal data rules of a version.
    ///
    /// # Errors
    /// An unknown version, or a file that does not parse or does not hold together.
    pub fn load(version: i32) -> Result<PrivacyRules, RulesError> {
        let text = rule_file(PRIVACY_FILES, version).ok_or(RulesError::UnknownPrivacy(version))?;
        let invalid = |reason: String| RulesError::Invalid { version, reason };
        let rules: PrivacyRules = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if rules.version != version {
            return Err(invalid(format!("the file says version {}", rules.version)));
        }
        if rules.retention.years_after_conclusion == 0 {
            return Err(invalid("retention must be at least a year".into()));
        }
        if rules.disclosure.suppress_below < 1 {
            return Err(invalid(
                "suppress_below must be at least 1 (1: none)".into(),
            ));
        }
        Ok(rules)
    }
}

#[cfg(test)]
mod privacy_tests {
    use super::*;

    #[test]
    fn every_caseload_rule_version_loads_and_unknown_ones_are_refused() {
        for (version, _) in CASELOAD_FILES {
            let rules = CaseloadRules::load(*version).expect("loads");
            assert_eq!(rules.version, *version);
        }
        let v1 = CaseloadRules::load(1).expect("v1");
        assert_eq!(
            (
                v1.no_contact_days,
                v1.did_not_attend_flag,
                v1.follow_up_due_days,
                v1.default_capacity
            ),
            (28, 2, 84, 225)
        );
        assert!(matches!(
            CaseloadRules::load(99),
            Err(RulesError::UnknownCaseload(99))
        ));
    }

    #[test]
    fn typed_areas_map_to_one_code() {
        let areas = AreaRules::load(1).expect("v1");
        for typed in [
            "Frome",
            "frome ",
            "FROME",
            " Frome,",
            "Frome, Somerset",
            "BA11 1AA",
            "ba11",
        ] {
            assert_eq!(areas.code(typed).0, "frome", "{typed:?}");
        }
        assert_eq!(areas.code("Glasto").0, "glastonbury");
        assert_eq!(areas.code("BA4 5XY").0, "shepton_mallet");
        assert_eq!(areas.code("Nunney").0, "uncoded:nunney");
        assert_eq!(areas.code("  NUNNEY ").0, "uncoded:nunney");
        assert_eq!(areas.code("Street").1, "Street");
        assert!(AreaRules::load(9).is_err());
    }

    #[test]
    fn every_recording_rule_version_loads() {
        for (version, _) in RECORDING_FILES {
            let rules = RecordingRules::load(*version).expect("loads");
            assert_eq!(rules.version, *version);
        }
        assert_eq!(RecordingRules::load(1).expect("v1").back_entry_days, 93);
        assert_eq!(
            RecordingRules::current(),
            RecordingRules::load(RECORDING_FILES.len() as i32).expect("latest")
        );
        assert!(matches!(
            RecordingRules::load(99),
            Err(RulesError::UnknownRecording(99))
        ));
    }

    #[test]
    fn every_privacy_rule_version_loads() {
        for (version, _) in PRIVACY_FILES {
            let rules = PrivacyRules::load(*version).expect("loads");
            assert_eq!(rules.version, *version);
        }
        let v1 = PrivacyRules::load(1).expect("v1");
        assert_eq!(v1.retention.years_after_conclusion, 8);
        assert!(v1.disclosure.suppresses(3));
        assert!(!v1.disclosure.suppresses(0));
        assert!(!v1.disclosure.suppresses(5));
        assert!(!v1.disclosure.complementary);
        let v2 = PrivacyRules::load(2).expect("v2");
        assert!(v2.disclosure.complementary);
        assert!(!v2.disclosure.complementary_measures);
        assert_eq!(v2.disclosure.suppress_below, 5);
        let v3 = PrivacyRules::load(3).expect("v3");
        assert!(v3.disclosure.complementary_measures);
        assert_eq!(PrivacyRules::current(), v3);
        assert!(PrivacyRules::load(99).is_err());
    }
}
