//! Validated wellbeing instruments: which items each has and the range of each answer.
//! Raw answers go into events; derived numbers (SWEMWBS metric scores, ONS4 bands,
//! improvement thresholds) belong to the versioned rules in `projections/`, not here.

use serde::{Deserialize, Serialize};

use crate::CaseError;

/// A wellbeing or activation instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Instrument {
    /// Warwick-Edinburgh Mental Wellbeing Scale: 14 items, 1 (none of the time) to 5 (all of the time).
    Wemwbs,
    /// Short WEMWBS: items 1, 2, 3, 6, 7, 9 and 11 of WEMWBS, 1 to 5.
    Swemwbs,
    /// ONS personal wellbeing: life satisfaction, worthwhile, happiness, anxiety, each 0 to 10.
    Ons4,
    /// UCLA 3-item loneliness: 1 (hardly ever) to 3 (often).
    Ucla3,
    /// The ONS direct question "How often do you feel lonely?": 1 (often or always) to 5 (never).
    OnsLoneliness,
    /// Measure Yourself Concerns and Wellbeing: one or two concerns and wellbeing, 0 to 6.
    Mycaw,
    /// Patient Activation Measure: only the licensor's level (1 to 4) and score (0 to 100).
    Pam,
}

impl Instrument {
    /// Every instrument.
    pub const ALL: &'static [Instrument] = &[
        Instrument::Wemwbs,
        Instrument::Swemwbs,
        Instrument::Ons4,
        Instrument::Ucla3,
        Instrument::OnsLoneliness,
        Instrument::Mycaw,
        Instrument::Pam,
    ];

    /// The instrument's name as services write it.
    pub fn label(self) -> &'static str {
        match self {
            Instrument::Wemwbs => "WEMWBS",
            Instrument::Swemwbs => "SWEMWBS",
            Instrument::Ons4 => "ONS4",
            Instrument::Ucla3 => "UCLA 3-item loneliness scale",
            Instrument::OnsLoneliness => "ONS loneliness question",
            Instrument::Mycaw => "MYCaW",
            Instrument::Pam => "PAM",
        }
    }

    /// How many answers it takes (inclusive range).
    pub fn item_count(self) -> (usize, usize) {
        match self {
            Instrument::Wemwbs => (14, 14),
            Instrument::Swemwbs => (7, 7),
            Instrument::Ons4 => (4, 4),
            Instrument::Ucla3 => (3, 3),
            Instrument::OnsLoneliness => (1, 1),
            Instrument::Mycaw => (2, 3),
            Instrument::Pam => (1, 1),
        }
    }

    /// The range every answer must fall in (inclusive).
    pub fn answer_range(self) -> (i32, i32) {
        match self {
            Instrument::Wemwbs | Instrument::Swemwbs => (1, 5),
            Instrument::Ons4 => (0, 10),
            Instrument::Ucla3 => (1, 3),
            Instrument::OnsLoneliness => (1, 5),
            Instrument::Mycaw => (0, 6),
            Instrument::Pam => (1, 4),
        }
    }

    /// The versions of each instrument this build knows.
    pub fn known_version(self, version: i32) -> bool {
        version == 1
    }

    /// Checks a set of answers: item count, each answer's range, and for PAM the licensor score.
    ///
    /// # Errors
    /// [`CaseError::InvalidAnswers`] naming the first problem.
    pub fn validate(
        self,
        version: i32,
        answers: &[i32],
        licensor_score: Option<f64>,
    ) -> Result<(), CaseError> {
        let refuse = |detail: String| {
            Err(CaseError::InvalidAnswers {
                instrument: self,
                detail,
            })
        };
        if !self.known_version(version) {
            return refuse(format!(
                "version {version} of {} is not known",
                self.label()
            ));
        }
        let (min_items, max_items) = self.item_count();
        if answers.len() < min_items || answers.len() > max_items {
            let expected = if min_items == max_items {
                format!("{min_items}")
            } else {
                format!("{min_items} to {max_items}")
            };
            return refuse(format!(
                "{} takes {expected} answers, not {}",
                self.label(),
                answers.len()
            ));
        }
        let (low, high) = self.answer_range();
        if let Some((index, value)) = answers
            .iter()
            .enumerate()
            .find(|(_, v)| **v < low || **v > high)
        {
            return refuse(format!(
                "answer {} is {value}; {} answers run from {low} to {high}",
                index + 1,
                self.label()
            ));
        }
        match (self, licensor_score) {
            (Instrument::Pam, None) => {
                refuse("PAM needs the licensor's score as well as the level".to_owned())
            }
            (Instrument::Pam, Some(score)) if !(0.0..=100.0).contains(&score) => {
                refuse(format!("the PAM score is {score}; it runs from 0 to 100"))
            }
            (Instrument::Pam, Some(_)) => Ok(()),
            (_, Some(_)) => refuse(format!("{} has no licensor score", self.label())),
            (_, None) => Ok(()),
        }
    }
}
