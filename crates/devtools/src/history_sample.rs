//! A fictional previous system's export, for `casebook history import` (docs/history-import.md):
//! people referred between January 2024 and June 2025, their referrals and decisions, consent,
//! appointments and their outcomes, contacts, WEMWBS at baseline and follow-up, onward
//! connections to the sample directory's services and what came of them, and closures, each
//! dated when it happened; then a few deliberately bad rows (record ids starting `BAD-`) that
//! the import must refuse. Deterministic: the same seed and count give the same bytes.
//! `data/history/sample.csv` is `sample(SAMPLE_SEED, SAMPLE_PEOPLE)` (a test holds it so).

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use uuid::Uuid;

/// The seed of the committed sample.
pub const SAMPLE_SEED: u64 = 20;
/// People in the committed sample.
pub const SAMPLE_PEOPLE: usize = 2000;

/// The columns, in order (docs/history-import.md).
pub const COLUMNS: &[&str] = &[
    "record_id",
    "person_id",
    "kind",
    "date",
    "given_name",
    "family_name",
    "date_of_birth",
    "nhs_number",
    "postcode",
    "area",
    "item_id",
    "source",
    "referrer_organisation",
    "reasons",
    "urgency",
    "reason",
    "mode",
    "minutes",
    "scheduled_for",
    "outcome",
    "waiting_weeks",
    "instrument",
    "timepoint",
    "answers",
    "service_id",
    "need",
    "connection_kind",
    "consent_scope",
];

const GIVEN: &[&str] = &[
    "Ada", "Ben", "Cara", "Dev", "Elin", "Finn", "Gita", "Hal", "Iris", "Jon", "Kai", "Lena",
    "Milo", "Nia", "Owen", "Pia", "Rhys", "Sana", "Tom", "Uma", "Vic", "Wren", "Yara", "Zac",
];
const FAMILY: &[&str] = &[
    "Abbot",
    "Brook",
    "Carver",
    "Dale",
    "Ellery",
    "Fairweather",
    "Gale",
    "Hollis",
    "Ivers",
    "Jessop",
    "Kettle",
    "Lark",
    "Moss",
    "Nettle",
    "Orchard",
    "Penn",
    "Quill",
    "Rook",
    "Sallow",
    "Thorne",
    "Underhill",
    "Vane",
    "Wick",
    "Yew",
];
const AREAS: &[(&str, &str)] = &[
    ("Frome", "BA11"),
    ("Shepton Mallet", "BA4"),
    ("Wells", "BA5"),
    ("Glastonbury", "BA6"),
    ("Street", "BA16"),
];
const SOURCES: &[(&str, u32)] = &[
    ("gp", 45),
    ("practice_staff", 20),
    ("self_referral", 12),
    ("social_care", 8),
    ("voluntary_sector", 7),
    ("hospital", 5),
    ("other_health_professional", 3),
];
const NEEDS: &[&str] = &[
    "mental_wellbeing",
    "loneliness_isolation",
    "money_benefits_debt",
    "housing",
    "physical_activity",
    "long_term_condition",
    "carer_support",
    "bereavement",
];

/// SplitMix64 (`population::splitmix64`): small, seedable, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        crate::population::splitmix64(&mut self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn weighted(&mut self, items: &[(&'static str, u32)]) -> &'static str {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut at = self.below(u64::from(total)) as u32;
        for (item, weight) in items {
            if at < *weight {
                return item;
            }
            at -= weight;
        }
        items[0].0
    }
}

/// The active services of the sample directory (the connections' services).
pub fn sample_services() -> Vec<Uuid> {
    let page: serde_json::Value =
        serde_json::from_str(crate::demo::SAMPLE_DIRECTORY).unwrap_or_default();
    page["contents"]
        .as_array()
        .map(|services| {
            services
                .iter()
                .filter(|s| s["status"] == "active")
                .filter_map(|s| s["id"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// An NHS number with its modulus 11 check digit (a fictional one: 999 numbers are never
/// issued).
fn nhs_number(rng: &mut Rng) -> String {
    loop {
        let mut digits = vec![9u32, 9, 9];
        for _ in 0..6 {
            digits.push(rng.below(10) as u32);
        }
        let sum: u32 = digits
            .iter()
            .enumerate()
            .map(|(i, d)| d * (10 - i as u32))
            .sum();
        let check = 11 - sum % 11;
        let check = if check == 11 { 0 } else { check };
        if check == 10 {
            continue;
        }
        digits.push(check);
        return digits.iter().map(|d| d.to_string()).collect();
    }
}

/// One row of the file, by column name.
#[derive(Default)]
struct Row(Vec<(&'static str, String)>);

impl Row {
    fn new(record: &mut u64, person: &str, kind: &str, date: String) -> Row {
        *record += 1;
        Row(vec![
            ("record_id", format!("R{:06}", *record)),
            ("person_id", person.to_owned()),
            ("kind", kind.to_owned()),
            ("date", date),
        ])
    }
    fn with(mut self, column: &'static str, value: impl Into<String>) -> Row {
        self.0.push((column, value.into()));
        self
    }
    fn write(&self, out: &mut csv::Writer<Vec<u8>>) {
        let cells: Vec<&str> = COLUMNS
            .iter()
            .map(|c| {
                self.0
                    .iter()
                    .find(|(name, _)| name == c)
                    .map_or("", |(_, v)| v.as_str())
            })
            .collect();
        // Writing to memory cannot fail.
        let _ = out.write_record(&cells);
    }
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn time(d: NaiveDate, hour: u32) -> String {
    let at = NaiveDateTime::new(
        d,
        NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN),
    );
    format!("{}Z", at.format("%Y-%m-%dT%H:%M:%S"))
}

fn wemwbs(rng: &mut Rng, centre: i64) -> Vec<i64> {
    (0..14)
        .map(|_| (centre + rng.below(3) as i64 - 1).clamp(1, 5))
        .collect()
}

fn answers(items: &[i64]) -> String {
    items
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(";")
}

/// The export of `people` people from `seed`, as CSV with a header row.
pub fn sample(seed: u64, people: usize) -> String {
    let services = sample_services();
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = out.write_record(COLUMNS);
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
    let mut record = 0u64;
    for n in 1..=people {
        let mut rng = Rng(seed ^ (n as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let person = format!("P{n:05}");
        let referred = start + Duration::days(rng.below(547) as i64);
        let (area, district) = *rng.pick(AREAS);
        let born = NaiveDate::from_ymd_opt(1935 + rng.below(70) as i32, 1, 1).unwrap_or_default()
            + Duration::days(rng.below(365) as i64);
        Row::new(&mut record, &person, "person", day(referred))
            .with("given_name", *rng.pick(GIVEN))
            .with("family_name", *rng.pick(FAMILY))
            .with("date_of_birth", day(born))
            .with("nhs_number", nhs_number(&mut rng))
            .with(
                "postcode",
                format!(
                    "{district} {}{}{}",
                    1 + rng.below(9),
                    (b'A' + rng.below(26) as u8) as char,
                    (b'A' + rng.below(26) as u8) as char
                ),
            )
            .with("area", area)
            .write(&mut out);
        let need = *rng.pick(NEEDS);
        let mut reasons = vec![need];
        if rng.chance(0.3) {
            let other = *rng.pick(NEEDS);
            if other != need {
                reasons.push(other);
            }
        }
        let source = rng.weighted(SOURCES);
        Row::new(&mut record, &person, "referral", day(referred))
            .with("item_id", "1")
            .with("source", source)
            .with(
                "referrer_organisation",
                if source == "gp" {
                    "Frome Medical Practice"
                } else {
                    ""
                },
            )
            .with("reasons", reasons.join(";"))
            .with("urgency", if rng.chance(0.1) { "soon" } else { "routine" })
            .write(&mut out);
        let consent = rng.chance(0.7);
        if consent {
            Row::new(&mut record, &person, "consent", day(referred))
                .with("consent_scope", "share_with_onward_services")
                .write(&mut out);
        }
        let decided = referred + Duration::days(2 + rng.below(9) as i64);
        let roll = rng.below(100);
        if roll >= 95 {
            // Still waiting for a decision when the system was switched off.
            continue;
        }
        if roll >= 85 {
            let reason = *rng.pick(&["client_declined", "not_eligible", "unable_to_contact"]);
            Row::new(&mut record, &person, "referral_declined", day(decided))
                .with("item_id", "1")
                .with("reason", reason)
                .write(&mut out);
            continue;
        }
        Row::new(&mut record, &person, "referral_accepted", day(decided))
            .with("item_id", "1")
            .write(&mut out);
        let met = decided + Duration::days(3 + rng.below(10) as i64);
        let mode = *rng.pick(&["face_to_face", "phone", "video", "home_visit"]);
        Row::new(&mut record, &person, "appointment", day(decided))
            .with("item_id", "1")
            .with("scheduled_for", time(met, 10))
            .with("mode", mode)
            .write(&mut out);
        let attendance = rng.below(100);
        let outcome = match attendance {
            0..80 => "attended",
            80..95 => "did_not_attend",
            _ => "cancelled_by_client",
        };
        Row::new(&mut record, &person, "appointment_outcome", time(met, 11))
            .with("item_id", "1")
            .with("outcome", outcome)
            .write(&mut out);
        if outcome != "attended" {
            // Met at a second appointment a week later.
            Row::new(&mut record, &person, "appointment", time(met, 12))
                .with("item_id", "2")
                .with("scheduled_for", time(met + Duration::days(7), 10))
                .with("mode", mode)
                .write(&mut out);
            Row::new(
                &mut record,
                &person,
                "appointment_outcome",
                time(met + Duration::days(7), 11),
            )
            .with("item_id", "2")
            .with("outcome", "attended")
            .write(&mut out);
        }
        let met = if outcome == "attended" {
            met
        } else {
            met + Duration::days(7)
        };
        Row::new(&mut record, &person, "contact", time(met, 10))
            .with("mode", mode)
            .with("minutes", (30 + 5 * rng.below(7)).to_string())
            .write(&mut out);
        let centre = 2 + rng.below(2) as i64;
        let baseline = rng.chance(0.85);
        if baseline {
            Row::new(&mut record, &person, "assessment", day(met))
                .with("item_id", "1")
                .with("instrument", "wemwbs")
                .with("timepoint", "baseline")
                .with("answers", answers(&wemwbs(&mut rng, centre)))
                .write(&mut out);
        }
        if rng.chance(0.65) && !services.is_empty() {
            let connected = met + Duration::days(7 + rng.below(14) as i64);
            let kind = if consent && rng.chance(0.6) {
                "referred"
            } else {
                "signposted"
            };
            Row::new(&mut record, &person, "connection", day(connected))
                .with("item_id", "1")
                .with("service_id", rng.pick(&services).to_string())
                .with("need", need)
                .with("connection_kind", kind)
                .write(&mut out);
            if rng.chance(0.7) {
                let outcome = *rng.pick(&["attended", "engaged", "not_taken_up", "waiting_list"]);
                let weeks = if outcome == "waiting_list" {
                    (2 + rng.below(11)).to_string()
                } else {
                    String::new()
                };
                Row::new(
                    &mut record,
                    &person,
                    "connection_outcome",
                    day(connected + Duration::days(21)),
                )
                .with("item_id", "1")
                .with("outcome", outcome)
                .with("waiting_weeks", weeks)
                .write(&mut out);
            }
        }
        let follow_up = met + Duration::days(56 + rng.below(60) as i64);
        if baseline && rng.chance(0.6) {
            let later = (centre + rng.below(3) as i64 - 1).clamp(1, 5);
            Row::new(&mut record, &person, "assessment", day(follow_up))
                .with("item_id", "2")
                .with("instrument", "wemwbs")
                .with("timepoint", "follow_up")
                .with("answers", answers(&wemwbs(&mut rng, later)))
                .write(&mut out);
        }
        if rng.chance(0.85) {
            let reason = *rng.pick(&[
                "goals_met",
                "connected_onward",
                "disengaged",
                "client_withdrew",
                "moved_away",
            ]);
            Row::new(
                &mut record,
                &person,
                "closure",
                day(follow_up + Duration::days(rng.below(14) as i64)),
            )
            .with("reason", reason)
            .write(&mut out);
        }
    }
    let mut out = String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default();
    out.push_str(BAD_ROWS);
    out
}

/// Rows the import must refuse, each for its own reason (a kind it does not read, a referral
/// in the future and the person it would have registered, a date that is no date, an
/// acceptance of a referral the person never had, answers out of range, a row with too few
/// columns); every record id starts with `BAD-`.
const BAD_ROWS: &str = "\
BAD-1,P00001,phone_call,2024-03-01,,,,,,,,,,,,,,,,,,,,,,,,
BAD-2,P99001,person,2099-01-01,Future,Person,1980-01-01,,,Frome,,,,,,,,,,,,,,,,,,
BAD-3,P99001,referral,2099-01-01,,,,,,,1,gp,,loneliness_isolation,routine,,,,,,,,,,,,,
BAD-4,P00002,contact,31/02/2025,,,,,,,,,,,,,phone,30,,,,,,,,,,
BAD-5,P00003,referral_accepted,2025-01-01,,,,,,,77,,,,,,,,,,,,,,,,,
BAD-6,P00004,assessment,2025-01-01,,,,,,,99,,,,,,,,,,,wemwbs,baseline,9;9;9,,,,
BAD-7,P00005
";
