//! Personal details, kept in one struct apart from the rest of the record so that the store can
//! encrypt them per client and destroy them by destroying the key.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::CaseError;

/// Who the client is. Everything here is personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PersonalDetails {
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Date of birth, when known.
    pub date_of_birth: Option<NaiveDate>,
    /// NHS number, checked with its modulus 11 digit.
    pub nhs_number: Option<NhsNumber>,
    /// Telephone.
    pub phone: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Postal address.
    pub address: Option<String>,
    /// Postcode.
    pub postcode: Option<String>,
}

impl PersonalDetails {
    /// The details of someone known only by name.
    pub fn named(given_name: impl Into<String>, family_name: impl Into<String>) -> Self {
        PersonalDetails {
            given_name: given_name.into(),
            family_name: family_name.into(),
            date_of_birth: None,
            nhs_number: None,
            phone: None,
            email: None,
            address: None,
            postcode: None,
        }
    }

    /// Checks what can be checked without IO: names present.
    ///
    /// # Errors
    /// [`CaseError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), CaseError> {
        if self.given_name.trim().is_empty() {
            return Err(CaseError::invalid(
                "personal.given_name",
                "a given name is needed",
            ));
        }
        if self.family_name.trim().is_empty() {
            return Err(CaseError::invalid(
                "personal.family_name",
                "a family name is needed",
            ));
        }
        Ok(())
    }
}

/// A ten-digit NHS number whose last digit is its modulus 11 check digit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct NhsNumber(String);

impl NhsNumber {
    /// Parses "943 476 5919", "9434765919" or "943-476-5919".
    ///
    /// # Errors
    /// A sentence saying what is wrong.
    pub fn parse(text: &str) -> Result<NhsNumber, String> {
        let digits: Vec<u32> = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| {
                c.to_digit(10)
                    .ok_or_else(|| "an NHS number has only digits".to_owned())
            })
            .collect::<Result<_, _>>()?;
        if digits.len() != 10 {
            return Err(format!("an NHS number has 10 digits, not {}", digits.len()));
        }
        let sum: u32 = digits[..9]
            .iter()
            .zip((2..=10).rev())
            .map(|(d, w)| d * w)
            .sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => {
                return Err(
                    "this is not a valid NHS number (its check digit cannot be 10)".to_owned(),
                );
            }
            c => c,
        };
        if check != digits[9] {
            return Err(
                "this is not a valid NHS number (the check digit does not match)".to_owned(),
            );
        }
        Ok(NhsNumber(
            digits
                .iter()
                .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
                .collect(),
        ))
    }

    /// The ten digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NhsNumber {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        NhsNumber::parse(&value)
    }
}

impl From<NhsNumber> for String {
    fn from(value: NhsNumber) -> String {
        value.0
    }
}
