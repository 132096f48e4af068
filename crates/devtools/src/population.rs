//! `casebook demo`: a believable social prescribing service, made through the real command
//! path (`CaseService::execute`: load, decide, check the directory, append), from a seed.
//!
//! The mix follows the seed services' write-ups: most referrals from GPs and practice staff,
//! reasons led by mental wellbeing, isolation and money; 6 to 12 contacts a person; a baseline
//! and, when enough time has passed, a follow-up score with a realistic change; onward
//! connections to the sample directory's services in the person's town (a gap recorded when
//! there is none), some declines, did-not-attends, transfers, corrections and repeat
//! referrals. Referrals spread over the year before `today`; recent ones are still open.
//!
//! Every client's journey comes from its own generator (the seed and its number), so the same
//! seed makes the same people whatever the concurrency, and a second run skips clients that
//! already exist.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use app::access::{self, NewStaff, Role};
use app::{CaseService, CommandOptions};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use domain::directory::{OrukService, OrukStatus};
use domain::*;
use eventstore::{EventStore, Metadata};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::demo::DemoAccess;
use crate::population::journey::journey;

mod journey;

/// What to make.
#[derive(Clone, Debug)]
pub struct PopulationOptions {
    pub clients: usize,
    pub seed: u64,
    /// The last day anything happens on.
    pub today: NaiveDate,
    /// Clients made at once.
    pub concurrency: usize,
}

/// What was made.
#[derive(Clone, Debug, Default)]
pub struct PopulationReport {
    pub clients: usize,
    pub skipped: usize,
    pub commands: usize,
    pub events: usize,
    pub link_workers: usize,
    pub seconds: f64,
}

/// One step of SplitMix64 from `state`: the demo population's and the history sample's
/// generators both draw through it, so a seed makes the same draws everywhere.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64: a small, good, seedable generator (the demo needs nothing stronger).
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }

    fn weighted<T: Copy>(&mut self, items: &[(T, f64)]) -> T {
        let total: f64 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.unit() * total;
        for (item, weight) in items {
            if x < *weight {
                return *item;
            }
            x -= weight;
        }
        items[items.len() - 1].0
    }

    /// Roughly normal (sum of uniforms).
    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let sum: f64 = (0..12).map(|_| self.unit()).sum();
        mean + (sum - 6.0) * sd
    }

    fn uuid(&mut self) -> Uuid {
        let bytes = ((u128::from(self.next()) << 64) | u128::from(self.next())).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

const GIVEN: &[&str] = &[
    "Margaret",
    "Susan",
    "Linda",
    "Patricia",
    "Jean",
    "Christine",
    "Sarah",
    "Emma",
    "Rebecca",
    "Aisha",
    "Priya",
    "Joanna",
    "Helen",
    "Karen",
    "Olga",
    "Grace",
    "Sophie",
    "Mary",
    "Ruth",
    "John",
    "David",
    "Michael",
    "Peter",
    "Robert",
    "Paul",
    "Andrew",
    "James",
    "Mark",
    "Tom",
    "Daniel",
    "Kwame",
    "Tomasz",
    "Imran",
    "George",
    "Brian",
    "Keith",
    "Alan",
    "Liam",
    "Ryan",
];
const FAMILY: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Wood", "Jackson", "Clarke", "Hughes", "Edwards", "Hill", "Moore", "Kowalski", "Begum", "Khan",
    "Okafor", "Mensah", "Harris", "Martin", "Cooper", "King", "Baker", "Lewis",
];
/// Towns, their postcode districts, and the team that covers them.
const TOWNS: &[(&str, &str, usize)] = &[
    ("Frome", "BA11", 0),
    ("Shepton Mallet", "BA4", 1),
    ("Wells", "BA5", 1),
    ("Glastonbury", "BA6", 2),
    ("Street", "BA16", 2),
    ("Coleford", "BA3", 0),
    ("Evercreech", "BA4", 1),
];
const TEAMS: &[&str] = &[
    "Frome and Coleford",
    "Shepton Mallet and Wells",
    "Glastonbury and Street",
];
const PRACTICES: &[&str] = &[
    "Frome Medical Practice",
    "Shepton Mallet Health Centre",
    "Wells City Practice",
    "Glastonbury Surgery",
    "Vine Surgery, Street",
];
const WORKER_NAMES: &[&str] = &[
    "Bea Walsh",
    "Carl Young",
    "Dina Roy",
    "Eli Marsh",
    "Femi Ade",
    "Gwen Hart",
    "Hal Price",
    "Ines Moreau",
    "Jay Patel",
    "Kate Bloom",
    "Leo Grant",
    "Mina Shah",
    "Ned Cole",
    "Orla Quinn",
    "Pia Novak",
    "Raj Mehta",
    "Sian Lloyd",
    "Theo Dunn",
    "Uma Rao",
    "Vic Hale",
];
const WHAT_MATTERS: &[&str] = &[
    "Getting out of the house more and seeing people.",
    "Sorting out my money worries so I can sleep.",
    "Feeling less anxious when I go into town.",
    "Getting back to gardening like I used to.",
    "Looking after my wife without going under myself.",
    "Finding something to do with my days since I retired.",
    "Being able to walk to the shops again.",
    "Making friends since we moved here.",
    "Feeling like myself again after losing my husband.",
    "Getting back into work, even a few hours.",
];
const GOALS: &[(&str, NeedDomain)] = &[
    ("Go to a group once a week", NeedDomain::LonelinessIsolation),
    (
        "Walk for 20 minutes three times a week",
        NeedDomain::PhysicalActivity,
    ),
    (
        "Get a benefits check and sort the arrears",
        NeedDomain::MoneyBenefitsDebt,
    ),
    ("Try a mindfulness course", NeedDomain::MentalWellbeing),
    ("Speak to the council about the damp", NeedDomain::Housing),
    ("Find a volunteering role", NeedDomain::Employment),
    (
        "Have a break from caring once a fortnight",
        NeedDomain::CarerSupport,
    ),
    ("Talk to someone about the loss", NeedDomain::Bereavement),
];

/// Services of the sample directory by need and town: (id, takes referrals).
type DirectoryIndex = BTreeMap<(NeedDomain, String), Vec<(ServiceId, bool)>>;

fn directory_index() -> anyhow::Result<DirectoryIndex> {
    let page: Value = serde_json::from_str(crate::demo::SAMPLE_DIRECTORY)?;
    let mut index = DirectoryIndex::new();
    for record in page["contents"].as_array().into_iter().flatten() {
        let service = OrukService::from_value(record.clone())
            .map_err(|reasons| anyhow::anyhow!("the sample directory: {reasons:?}"))?;
        if service.status == OrukStatus::Defunct {
            continue;
        }
        let takes = service.status == OrukStatus::Active;
        for need in service.needs() {
            for area in service.service_areas.iter().filter_map(|a| a.name.clone()) {
                index
                    .entry((need, area))
                    .or_default()
                    .push((ServiceId(service.id), takes));
            }
        }
    }
    Ok(index)
}

/// The demo service's link workers by team (made when missing): about one per 150 people.
async fn ensure_link_workers(
    client: &tokio_postgres::Client,
    demo: &DemoAccess,
    clients: usize,
) -> anyhow::Result<Vec<(TeamId, Vec<StaffId>, StaffId)>> {
    let per_team = (clients / 150 / TEAMS.len()).clamp(1, WORKER_NAMES.len() / TEAMS.len());
    let demo_staff = |role: Role| {
        demo.staff
            .iter()
            .find(|(r, _, _)| *r == role)
            .map(|(_, id, _)| StaffId(*id))
            .with_context(|| format!("the demo {}", role.as_str()))
    };
    let mut teams = Vec::new();
    for (t, name) in TEAMS.iter().enumerate() {
        // The first team is the demo team, so the demo tokens see its people.
        let team = if t == 0 {
            TeamId(demo.team_id)
        } else {
            access::ensure_team(client, demo.organisation_id, name).await?
        };
        let staff = |name: String, role: Role| {
            let team = team.0;
            async move {
                let existing = client
                    .query_opt(
                        "SELECT staff_id FROM staff WHERE organisation_id = $1 AND name = $2",
                        &[&demo.organisation_id, &name],
                    )
                    .await?;
                anyhow::Ok(StaffId(match existing {
                    Some(row) => row.get(0),
                    None => {
                        access::add_staff(
                            client,
                            &NewStaff {
                                organisation_id: demo.organisation_id,
                                team_id: Some(team),
                                name,
                                role,
                                capacity: (role == Role::LinkWorker).then_some(225),
                            },
                        )
                        .await?
                        .staff_id
                    }
                }))
            }
        };
        let lead = if t == 0 {
            demo_staff(Role::TeamLead)?
        } else {
            staff(format!("{name} team lead"), Role::TeamLead).await?
        };
        let mut workers = Vec::new();
        if t == 0 {
            workers.push(demo_staff(Role::LinkWorker)?);
        }
        for w in workers.len()..per_team {
            let worker_name = WORKER_NAMES[t * (WORKER_NAMES.len() / TEAMS.len()) + w];
            workers.push(staff(worker_name.to_owned(), Role::LinkWorker).await?);
        }
        teams.push((team, workers, lead));
    }
    Ok(teams)
}

/// One step of a journey: who does what, when.
struct Step {
    actor: StaffId,
    role: Role,
    at: DateTime<Utc>,
    command: CaseCommand,
}

fn noon(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::from_hms_opt(11, 0, 0).unwrap_or(NaiveTime::MIN))
        .and_utc()
}

fn nhs_number(rng: &mut Rng) -> Option<NhsNumber> {
    loop {
        let digits: Vec<u32> = (0..9).map(|_| rng.range(0, 9) as u32).collect();
        let sum: u32 = digits
            .iter()
            .enumerate()
            .map(|(i, d)| d * (10 - i as u32))
            .sum();
        let check = (11 - sum % 11) % 11;
        if check == 10 || digits[0] == 0 {
            continue;
        }
        let text: String = digits
            .iter()
            .chain(std::iter::once(&check))
            .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
            .collect();
        return NhsNumber::parse(&text).ok();
    }
}

/// Answers for `instrument` whose total is near `target` (WEMWBS and SWEMWBS: items 1 to 5).
fn answers(instrument: Instrument, target: f64, rng: &mut Rng) -> Vec<i32> {
    let (items, lo, hi) = match instrument {
        Instrument::Wemwbs => (14, 1, 5),
        Instrument::Swemwbs => (7, 1, 5),
        Instrument::Ons4 => (4, 0, 10),
        Instrument::Ucla3 => (3, 1, 3),
        _ => (1, 1, 5),
    };
    let mean = (target / items as f64).clamp(lo as f64, hi as f64);
    (0..items)
        .map(|i| {
            // ONS4's fourth item is anxiety: it falls as wellbeing rises.
            let centre = if instrument == Instrument::Ons4 && i == 3 {
                f64::from(hi) - mean
            } else {
                mean
            };
            let x = centre + rng.normal(0.0, 0.6);
            (x.round() as i32).clamp(lo, hi)
        })
        .collect()
}

/// Carries out one client's journey; a few entries are corrected afterwards, as happens.
async fn run_journey(
    cases: &CaseService,
    organisation_id: Uuid,
    client: ClientId,
    steps: Vec<Step>,
    correct: bool,
) -> anyhow::Result<(usize, usize)> {
    if cases.load(client).await?.exists() {
        return Ok((0, 0));
    }
    let mut events = 0;
    let mut commands = 0;
    let mut last_contact: Option<(EventId, DateTime<Utc>, StaffId)> = None;
    for step in steps {
        let metadata = Metadata {
            actor_id: step.actor.0,
            actor_role: step.role.as_str().to_owned(),
            organisation_id,
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            occurred_at: step.command.occurred_at().unwrap_or(step.at),
        };
        let is_contact = matches!(step.command, CaseCommand::RecordContact(_));
        let result = cases
            .execute(client, &step.command, metadata, CommandOptions::default())
            .await
            .with_context(|| format!("client {client}: {:?}", step.command))?;
        commands += 1;
        events += result.events.len();
        if is_contact && let Some(first) = result.events.first() {
            last_contact = Some((EventId(first.event_id), step.at, step.actor));
        }
    }
    if correct && let Some((event, at, actor)) = last_contact {
        let mut fields = Map::new();
        fields.insert("minutes".to_owned(), json!(30));
        let result = cases
            .execute(
                client,
                &CaseCommand::CorrectEntry(EntryCorrected {
                    corrects: event,
                    corrected_fields: fields,
                    reason: "The call was 30 minutes; the time was mistyped.".to_owned(),
                }),
                Metadata {
                    actor_id: actor.0,
                    actor_role: Role::LinkWorker.as_str().to_owned(),
                    organisation_id,
                    correlation_id: Uuid::new_v4(),
                    causation_id: None,
                    occurred_at: at + Duration::days(1),
                },
                CommandOptions::default(),
            )
            .await;
        if let Ok(result) = result {
            commands += 1;
            events += result.events.len();
        }
    }
    Ok((commands, events))
}

/// Makes the population for the demo organisation: link workers, the sample directory, and
/// `options.clients` journeys.
///
/// # Errors
/// A database failure, or a journey a rule refuses (a bug in this generator).
pub async fn populate(
    store: &EventStore,
    admin: &tokio_postgres::Client,
    demo: &DemoAccess,
    options: &PopulationOptions,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<PopulationReport> {
    let started = Instant::now();
    // The directory is there before the year's first referral; the journeys happen on a clock
    // whose day is `today` (nothing may be dated after it).
    let listed_at = (options.today - Duration::days(366))
        .and_time(NaiveTime::MIN)
        .and_utc();
    crate::demo::import_sample_directory(store, demo.organisation_id, listed_at).await?;
    let clock = app::Clock::fixed(
        options
            .today
            .and_hms_opt(23, 59, 59)
            .context("the end of today")?
            .and_utc(),
    );
    let teams = ensure_link_workers(admin, demo, options.clients).await?;
    let referrer = demo
        .staff
        .iter()
        .find(|(role, _, _)| *role == Role::Referrer)
        .map(|(_, id, _)| StaffId(*id))
        .context("the demo referrer")?;
    let directory = directory_index()?;
    let cases = CaseService::with_clock(store.clone(), clock);
    let mut report = PopulationReport {
        link_workers: teams.iter().map(|(_, w, _)| w.len()).sum(),
        ..PopulationReport::default()
    };
    let journeys = (0..options.clients as u64).map(|n| {
        let (client, steps) = journey(n, options, &teams, referrer, &directory);
        let correct = Rng::new(options.seed ^ 0xC0, n).chance(0.03);
        let cases = cases.clone();
        let organisation = demo.organisation_id;
        async move { run_journey(&cases, organisation, client, steps, correct).await }
    });
    let mut results =
        futures_util::stream::iter(journeys).buffer_unordered(options.concurrency.max(1));
    while let Some(result) = results.next().await {
        let (commands, events) = result?;
        if commands == 0 {
            report.skipped += 1;
        } else {
            report.clients += 1;
        }
        report.commands += commands;
        report.events += events;
        progress(1);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
