//! Equity reporting (issue #21 part 5): what reports count a person by, derived when their
//! demographics are recorded, and kept where reports read it.
//!
//! `CaseService` hands a `RecordDemographics` command here before deciding it
//! ([`complete`]: the age band at the referral from the registered date of birth, under
//! `projections/equity/`, the ethnic group of the category, the deprivation decile of the
//! postcode's LSOA from the loaded IMD lookup), and every appended demographics or erasure event
//! after the append ([`keep`]), which writes the person's row of `equity_demographics` (V28),
//! the one place reports read it from: in the log it is sealed with the rest of their personal
//! data, out of the projectors' reach, and erased with them (see ARCHITECTURE "Personal data").

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use domain::{CaseCommand, CaseEvent, ClientId, Demographics, DemographicsRecorded};
use domain::{ReportableDemographics, code, normalise_postcode};

use crate::cases::{CommandError, LoadedCase};

/// Every equity rule version built into this binary.
const RULE_FILES: &[(i32, &str)] = &[(1, include_str!("../../../projections/equity/v1.toml"))];

/// One age band: ages `from` to `to` (inclusive; no `to`: and over).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgeBand {
    pub code: String,
    pub from: u32,
    pub to: Option<u32>,
}

/// A version of the equity rules (`projections/equity/v{n}.toml`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EquityRules {
    pub version: i32,
    pub description: String,
    pub age_bands: Vec<AgeBand>,
}

impl EquityRules {
    /// The rules of one version.
    ///
    /// # Errors
    /// A version not built in, or a file that does not parse, or bands that overlap or leave a
    /// gap (every age from 0 falls in exactly one band).
    pub fn load(version: i32) -> Result<EquityRules, String> {
        let (_, text) = RULE_FILES
            .iter()
            .find(|(v, _)| *v == version)
            .ok_or_else(|| format!("there are no equity rules version {version}"))?;
        let rules: EquityRules = toml::from_str(text).map_err(|e| e.to_string())?;
        if rules.version != version {
            return Err(format!(
                "equity rules v{version} say they are v{}",
                rules.version
            ));
        }
        let mut next = 0;
        for (index, band) in rules.age_bands.iter().enumerate() {
            if band.from != next {
                return Err(format!(
                    "age band {} starts at {}, not {next}",
                    band.code, band.from
                ));
            }
            match band.to {
                Some(to) if to >= band.from => next = to + 1,
                None if index + 1 == rules.age_bands.len() => {}
                _ => return Err(format!("age band {} has no sensible end", band.code)),
            }
        }
        if rules.age_bands.last().is_none_or(|b| b.to.is_some()) {
            return Err("the last age band has no end (`to` left out)".to_owned());
        }
        Ok(rules)
    }

    /// The latest rules built in.
    pub fn current() -> EquityRules {
        let latest = RULE_FILES.iter().map(|(v, _)| *v).max().unwrap_or(1);
        EquityRules::load(latest).expect("the built-in equity rules parse (tested)")
    }

    /// The band of someone born on `born`, on `on`; none for a birth after that day.
    pub fn age_band(&self, born: NaiveDate, on: NaiveDate) -> Option<&str> {
        let age = age_on(born, on)?;
        self.age_bands
            .iter()
            .find(|b| age >= b.from && b.to.is_none_or(|to| age <= to))
            .map(|b| b.code.as_str())
    }
}

/// Whole years from `born` to `on`; none when `on` is before `born`.
pub fn age_on(born: NaiveDate, on: NaiveDate) -> Option<u32> {
    if on < born {
        return None;
    }
    let mut years = on.year() - born.year();
    if (on.month(), on.day()) < (born.month(), born.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// What reports count someone by, from what they told us, their date of birth, the day of
/// their referral and their postcode's deprivation decile: a pure function of its inputs.
pub fn derive(
    rules: &EquityRules,
    given: &Demographics,
    born: Option<NaiveDate>,
    on: NaiveDate,
    imd_decile: Option<i16>,
) -> ReportableDemographics {
    ReportableDemographics {
        rules_version: rules.version,
        age_band: born.and_then(|born| rules.age_band(born, on).map(str::to_owned)),
        sex: given.sex,
        gender_identity: given.gender_identity,
        ethnic_group: given.ethnic_category.map(|c| c.group()),
        interpreter_needed: given.interpreter_needed,
        gp_practice: given.gp_practice.clone(),
        imd_decile,
    }
}

/// The IMD 2019 decile of a postcode's LSOA, when the lookup has both.
///
/// # Errors
/// A database failure.
pub async fn imd_decile(
    client: &impl GenericClient,
    postcode: &str,
) -> Result<Option<i16>, tokio_postgres::Error> {
    let Some(postcode) = normalise_postcode(postcode) else {
        return Ok(None);
    };
    let row = client
        .query_opt(
            "SELECT d.imd_decile FROM imd_postcodes p JOIN imd_lsoa_deciles d USING (lsoa_code) \
             WHERE p.postcode = $1",
            &[&postcode],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The date of birth on the registration as it reads now (corrections applied).
fn registered_birth(loaded: &LoadedCase) -> Option<NaiveDate> {
    loaded.entries.values().find_map(|event| match event {
        CaseEvent::ClientRegistered(registered) => registered.personal.date_of_birth,
        _ => None,
    })
}

/// A `RecordDemographics` command with what reports count by derived (whatever the caller
/// put there is replaced); `None` for any other command.
///
/// # Errors
/// The IMD lookup could not be read.
pub(crate) async fn complete(
    pool: &db::Pool,
    command: &CaseCommand,
    loaded: &LoadedCase,
    today: NaiveDate,
) -> Result<Option<CaseCommand>, CommandError> {
    let CaseCommand::RecordDemographics(recorded) = command else {
        return Ok(None);
    };
    let rules = EquityRules::current();
    let on = loaded
        .state
        .received
        .values()
        .max()
        .copied()
        .unwrap_or(today);
    let imd = match &recorded.demographics.postcode {
        Some(postcode) => {
            let client = pool.get().await.map_err(eventstore::StoreError::from)?;
            imd_decile(&**client, postcode)
                .await
                .map_err(eventstore::StoreError::from)?
        }
        None => None,
    };
    let reportable = derive(
        &rules,
        &recorded.demographics,
        registered_birth(loaded),
        on,
        imd,
    );
    Ok(Some(CaseCommand::RecordDemographics(
        DemographicsRecorded {
            demographics: recorded.demographics.clone(),
            reportable,
        },
    )))
}

/// Keeps what reports count by after an append: the latest recording's row, or an erased row
/// for an erasure. Idempotent: a retry's or replay's older recording changes nothing.
///
/// # Errors
/// A database failure.
pub(crate) async fn keep(
    pool: &db::Pool,
    client_id: ClientId,
    organisation_id: Uuid,
    appended: &[(CaseEvent, i64)],
) -> Result<(), CommandError> {
    let wanted = appended.iter().any(|(e, _)| {
        matches!(
            e,
            CaseEvent::DemographicsRecorded(_) | CaseEvent::ClientErased(_)
        )
    });
    if !wanted {
        return Ok(());
    }
    let client = pool.get().await.map_err(eventstore::StoreError::from)?;
    let failed = |e: tokio_postgres::Error| CommandError::from(eventstore::StoreError::from(e));
    for (event, position) in appended {
        match event {
            CaseEvent::DemographicsRecorded(recorded) => {
                let r = &recorded.reportable;
                client
                    .execute(
                        "INSERT INTO equity_demographics AS d (client_id, organisation_id, \
                         rules_version, age_band, sex, gender_identity, ethnic_group, \
                         interpreter_needed, gp_practice, imd_decile, recorded_position) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                         ON CONFLICT (client_id) DO UPDATE SET rules_version = excluded.rules_version, \
                         age_band = excluded.age_band, sex = excluded.sex, \
                         gender_identity = excluded.gender_identity, ethnic_group = excluded.ethnic_group, \
                         interpreter_needed = excluded.interpreter_needed, \
                         gp_practice = excluded.gp_practice, imd_decile = excluded.imd_decile, \
                         recorded_position = excluded.recorded_position \
                         WHERE NOT d.erased AND d.recorded_position < excluded.recorded_position",
                        &[
                            &client_id.0,
                            &organisation_id,
                            &r.rules_version,
                            &r.age_band,
                            &r.sex.as_ref().map(code),
                            &r.gender_identity.as_ref().map(code),
                            &r.ethnic_group.as_ref().map(code),
                            &r.interpreter_needed,
                            &r.gp_practice,
                            &r.imd_decile,
                            position,
                        ],
                    )
                    .await
                    .map_err(failed)?;
            }
            CaseEvent::ClientErased(_) => {
                client
                    .execute(
                        "INSERT INTO equity_demographics (client_id, organisation_id, rules_version, \
                         recorded_position, erased) VALUES ($1, $2, 0, $3, true) \
                         ON CONFLICT (client_id) DO UPDATE SET erased = true, age_band = NULL, \
                         sex = NULL, gender_identity = NULL, ethnic_group = NULL, \
                         interpreter_needed = NULL, gp_practice = NULL, imd_decile = NULL, \
                         recorded_position = excluded.recorded_position",
                        &[&client_id.0, &organisation_id, position],
                    )
                    .await
                    .map_err(failed)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Clears what reports count `client_id` by and marks the row erased, before their erasure is
/// appended (so that no failure between the two leaves it standing).
///
/// # Errors
/// A database failure.
pub(crate) async fn forget(
    pool: &db::Pool,
    client_id: ClientId,
    organisation_id: Uuid,
) -> Result<(), CommandError> {
    let client = pool.get().await.map_err(eventstore::StoreError::from)?;
    client
        .execute(
            "INSERT INTO equity_demographics (client_id, organisation_id, rules_version, \
             recorded_position, erased) VALUES ($1, $2, 0, 0, true) \
             ON CONFLICT (client_id) DO UPDATE SET erased = true, age_band = NULL, \
             sex = NULL, gender_identity = NULL, ethnic_group = NULL, \
             interpreter_needed = NULL, gp_practice = NULL, imd_decile = NULL",
            &[&client_id.0, &organisation_id],
        )
        .await
        .map_err(|e| CommandError::from(eventstore::StoreError::from(e)))?;
    Ok(())
}

/// File 1 of the English Indices of Deprivation 2019 (MHCLG): its published column names.
pub const IMD_LSOA_CODE: &str = "LSOA code (2011)";
/// The LSOA's name column of File 1.
pub const IMD_LSOA_NAME: &str = "LSOA name (2011)";
/// The rank column of File 1 (1 is the most deprived of England's 32,844 LSOAs).
pub const IMD_RANK: &str = "Index of Multiple Deprivation (IMD) Rank";
/// The decile column of File 1.
pub const IMD_DECILE: &str = "Index of Multiple Deprivation (IMD) Decile";

/// One LSOA of File 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsoaDecile {
    pub lsoa_code: String,
    pub lsoa_name: String,
    pub rank: i32,
    pub decile: i16,
}

/// One postcode's LSOA (from the ONS postcode directories, `pcds` and `lsoa11`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostcodeLsoa {
    pub postcode: String,
    pub lsoa_code: String,
}

fn columns<'a>(
    headers: &csv::StringRecord,
    wanted: &[&'a [&'a str]],
) -> Result<Vec<usize>, String> {
    wanted
        .iter()
        .map(|names| {
            headers
                .iter()
                .position(|h| names.contains(&h.trim_start_matches('\u{feff}').trim()))
                .ok_or_else(|| format!("the file has no column {:?}", names[0]))
        })
        .collect()
}

/// Reads File 1 of the IMD 2019 (CSV, the published column names; other columns ignored).
///
/// # Errors
/// A missing column, or a row (numbered from 2, after the header) whose rank or decile is not
/// a number in range.
pub fn parse_imd_file(text: &str) -> Result<Vec<LsoaDecile>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let at = columns(
        &headers,
        &[
            &[IMD_LSOA_CODE],
            &[IMD_LSOA_NAME],
            &[IMD_RANK],
            &[IMD_DECILE],
        ],
    )?;
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = record.map_err(|e| format!("row {line}: {e}"))?;
        let field = |i: usize| record.get(at[i]).unwrap_or("").trim();
        let rank: i32 = field(2)
            .replace(',', "")
            .parse()
            .map_err(|_| format!("row {line}: the rank {:?} is not a number", field(2)))?;
        let decile: i16 = field(3)
            .parse()
            .ok()
            .filter(|d| (1..=10).contains(d))
            .ok_or_else(|| format!("row {line}: the decile {:?} is not 1 to 10", field(3)))?;
        if field(0).is_empty() {
            return Err(format!("row {line}: no LSOA code"));
        }
        rows.push(LsoaDecile {
            lsoa_code: field(0).to_owned(),
            lsoa_name: field(1).to_owned(),
            rank,
            decile,
        });
    }
    Ok(rows)
}

/// Reads a postcode to LSOA lookup: a CSV with the ONS postcode directories' `pcds` (or
/// `postcode`) and `lsoa11` (or `lsoa_code`) columns; rows without an LSOA (a postcode outside
/// England and Wales, a large user) are left out.
///
/// # Errors
/// A missing column, or a postcode that is not shaped like one.
pub fn parse_postcode_file(text: &str) -> Result<Vec<PostcodeLsoa>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let at = columns(&headers, &[&["pcds", "postcode"], &["lsoa11", "lsoa_code"]])?;
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = record.map_err(|e| format!("row {line}: {e}"))?;
        let postcode = record.get(at[0]).unwrap_or("").trim();
        let lsoa = record.get(at[1]).unwrap_or("").trim();
        if lsoa.is_empty() {
            continue;
        }
        let postcode = normalise_postcode(postcode)
            .ok_or_else(|| format!("row {line}: {postcode:?} is not a postcode"))?;
        rows.push(PostcodeLsoa {
            postcode,
            lsoa_code: lsoa.to_owned(),
        });
    }
    Ok(rows)
}

/// Loads LSOA deciles into `imd_lsoa_deciles` (as the database's owner), replacing rows of the
/// same LSOA, a chunk a statement (loading again is harmless); how many rows.
///
/// # Errors
/// A database failure.
pub async fn load_lsoa_deciles(
    tx: &impl GenericClient,
    rows: &[LsoaDecile],
) -> Result<u64, tokio_postgres::Error> {
    let mut loaded = 0;
    for chunk in rows.chunks(5000) {
        let codes: Vec<&str> = chunk.iter().map(|r| r.lsoa_code.as_str()).collect();
        let names: Vec<&str> = chunk.iter().map(|r| r.lsoa_name.as_str()).collect();
        let ranks: Vec<i32> = chunk.iter().map(|r| r.rank).collect();
        let deciles: Vec<i16> = chunk.iter().map(|r| r.decile).collect();
        loaded += tx
            .execute(
                "INSERT INTO imd_lsoa_deciles (lsoa_code, lsoa_name, imd_rank, imd_decile) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::int2[]) \
                 ON CONFLICT (lsoa_code) DO UPDATE SET lsoa_name = excluded.lsoa_name, \
                 imd_rank = excluded.imd_rank, imd_decile = excluded.imd_decile",
                &[&codes, &names, &ranks, &deciles],
            )
            .await?;
    }
    Ok(loaded)
}

/// Loads a postcode to LSOA lookup into `imd_postcodes`, replacing rows of the same postcode.
///
/// # Errors
/// A database failure.
pub async fn load_postcodes(
    tx: &impl GenericClient,
    rows: &[PostcodeLsoa],
) -> Result<u64, tokio_postgres::Error> {
    let mut loaded = 0;
    for chunk in rows.chunks(10000) {
        let postcodes: Vec<&str> = chunk.iter().map(|r| r.postcode.as_str()).collect();
        let codes: Vec<&str> = chunk.iter().map(|r| r.lsoa_code.as_str()).collect();
        loaded += tx
            .execute(
                "INSERT INTO imd_postcodes (postcode, lsoa_code) \
                 SELECT * FROM unnest($1::text[], $2::text[]) \
                 ON CONFLICT (postcode) DO UPDATE SET lsoa_code = excluded.lsoa_code",
                &[&postcodes, &codes],
            )
            .await?;
    }
    Ok(loaded)
}

/// The extract shipped with Casebook (`data/imd/`): the published File 1 rows of Mendip's
/// LSOAs, real values, for the demo area.
pub const MENDIP_EXTRACT: &str =
    include_str!("../../../data/imd/File_1_IMD2019_Mendip_extract.csv");

/// The demo's postcode lookup (`data/imd/`): ILLUSTRATIVE, not from the ONS postcode
/// directory (the demo's postcodes are invented).
pub const DEMO_POSTCODES: &str = include_str!("../../../data/imd/demo_postcodes_ILLUSTRATIVE.csv");

/// Loads the shipped extract and the demo's postcodes (as the owner): `casebook imd load
/// --demo`, and the demo.
///
/// # Errors
/// A database failure (the shipped files are tested to parse).
pub async fn load_demo_imd(
    client: &impl GenericClient,
) -> Result<(u64, u64), tokio_postgres::Error> {
    let deciles = parse_imd_file(MENDIP_EXTRACT).unwrap_or_default();
    let postcodes = parse_postcode_file(DEMO_POSTCODES).unwrap_or_default();
    Ok((
        load_lsoa_deciles(client, &deciles).await?,
        load_postcodes(client, &postcodes).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a date")
    }

    #[test]
    fn the_shipped_extract_is_the_published_file_1_shape() {
        let rows = parse_imd_file(MENDIP_EXTRACT).expect("the extract parses");
        assert_eq!(rows.len(), 66, "Mendip has 66 LSOAs (2011)");
        assert!(rows.iter().all(|r| r.lsoa_name.starts_with("Mendip ")));
        let first = &rows[0];
        assert_eq!(
            (first.lsoa_code.as_str(), first.rank, first.decile),
            ("E01029018", 20836, 7)
        );
        let postcodes = parse_postcode_file(DEMO_POSTCODES).expect("the demo lookup parses");
        assert!(
            postcodes
                .iter()
                .all(|p| rows.iter().any(|r| r.lsoa_code == p.lsoa_code)),
            "every demo postcode is in an LSOA of the extract"
        );
    }

    #[test]
    fn a_file_without_the_published_columns_or_with_a_bad_decile_is_refused() {
        assert!(
            parse_imd_file("lsoa,decile\nE01000001,9\n")
                .unwrap_err()
                .contains("LSOA code (2011)")
        );
        let bad = format!(
            "{IMD_LSOA_CODE},{IMD_LSOA_NAME},{IMD_RANK},{IMD_DECILE}\nE01000001,x,\"29,199\",11\n"
        );
        assert!(parse_imd_file(&bad).unwrap_err().contains("row 2"));
        assert!(parse_postcode_file("pcds,lsoa11\nnot one,E01000001\n").is_err());
    }

    #[test]
    fn every_built_in_rule_version_parses() {
        for (version, _) in RULE_FILES {
            EquityRules::load(*version).expect("parses");
        }
    }

    #[test]
    fn the_age_band_is_the_age_on_the_day_of_the_referral() {
        let rules = EquityRules::current();
        let cases = [
            // (born, on, band)
            (day(2000, 6, 15), day(2018, 6, 14), Some("0_17")),
            (day(2000, 6, 15), day(2018, 6, 15), Some("18_24")),
            (day(2000, 6, 15), day(2025, 6, 14), Some("18_24")),
            (day(2000, 6, 15), day(2025, 6, 15), Some("25_34")),
            (day(1960, 2, 29), day(2025, 2, 28), Some("55_64")),
            (day(1960, 2, 29), day(2025, 3, 1), Some("65_74")),
            (day(1930, 1, 1), day(2026, 1, 1), Some("85_plus")),
            (day(2026, 1, 2), day(2026, 1, 1), None),
        ];
        for (born, on, band) in cases {
            assert_eq!(rules.age_band(born, on), band, "born {born}, on {on}");
        }
    }

    #[test]
    fn what_reports_count_by_is_derived_from_what_was_given() {
        let rules = EquityRules::current();
        let given = Demographics {
            sex: Some(domain::Sex::Male),
            ethnic_category: Some(domain::EthnicCategory::Pakistani),
            postcode: Some("BA11 1AA".to_owned()),
            preferred_language: Some("Urdu".to_owned()),
            ..Demographics::default()
        };
        let derived = derive(
            &rules,
            &given,
            Some(day(1950, 1, 1)),
            day(2026, 3, 1),
            Some(3),
        );
        assert_eq!(derived.age_band.as_deref(), Some("75_84"));
        assert_eq!(
            derived.ethnic_group,
            Some(domain::EthnicGroup::AsianOrAsianBritish)
        );
        assert_eq!(derived.imd_decile, Some(3));
        assert_eq!(derived.rules_version, 1);
        let unknown = derive(
            &rules,
            &Demographics::default(),
            None,
            day(2026, 3, 1),
            None,
        );
        assert_eq!(unknown.age_band, None);
        assert_eq!(unknown.ethnic_group, None);
    }
}
