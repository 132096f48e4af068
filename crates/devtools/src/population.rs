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
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
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

/// The commands of client `n`'s journey, in order; `None` after `today`.
#[allow(clippy::too_many_lines)]
fn journey(
    n: u64,
    options: &PopulationOptions,
    teams: &[(TeamId, Vec<StaffId>, StaffId)],
    referrer: StaffId,
    directory: &DirectoryIndex,
) -> (ClientId, Vec<Step>) {
    let rng = &mut Rng::new(options.seed, n);
    let client = ClientId(rng.uuid());
    let today = options.today;
    let (town, district, team_index) = *rng.pick(TOWNS);
    let (team, workers, lead) = &teams[team_index % teams.len()];
    let worker = *rng.pick(workers);
    let received = today - Duration::days(rng.range(1, 365));
    let mut steps = Vec::new();
    let push = |steps: &mut Vec<Step>, actor: StaffId, role, at: DateTime<Utc>, command| {
        if at.date_naive() <= today {
            steps.push(Step {
                actor,
                role,
                at,
                command,
            });
            true
        } else {
            false
        }
    };

    let source = rng.weighted(&[
        (ReferralSource::Gp, 55.0),
        (ReferralSource::PracticeStaff, 12.0),
        (ReferralSource::OtherHealthProfessional, 8.0),
        (ReferralSource::SocialCare, 5.0),
        (ReferralSource::Hospital, 3.0),
        (ReferralSource::VoluntarySector, 6.0),
        (ReferralSource::CommunityConnector, 3.0),
        (ReferralSource::SelfReferral, 8.0),
    ]);
    let reason_weights = [
        (NeedDomain::MentalWellbeing, 30.0),
        (NeedDomain::LonelinessIsolation, 25.0),
        (NeedDomain::MoneyBenefitsDebt, 14.0),
        (NeedDomain::Housing, 6.0),
        (NeedDomain::PhysicalActivity, 7.0),
        (NeedDomain::LongTermCondition, 6.0),
        (NeedDomain::CarerSupport, 4.0),
        (NeedDomain::Bereavement, 4.0),
        (NeedDomain::Employment, 2.0),
        (NeedDomain::SubstanceUse, 1.0),
        (NeedDomain::Other, 1.0),
    ];
    let mut reasons = vec![rng.weighted(&reason_weights)];
    for _ in 0..rng.weighted(&[(0, 50.0), (1, 35.0), (2, 15.0)]) {
        let more = rng.weighted(&reason_weights);
        if !reasons.contains(&more) {
            reasons.push(more);
        }
    }
    let age = rng.weighted(&[(25, 10.0), (40, 15.0), (55, 20.0), (70, 30.0), (82, 25.0)])
        + rng.range(-7, 7);
    let born = today - Duration::days(age * 365 + rng.range(0, 364));
    let (intake_actor, intake_role) = match source {
        ReferralSource::Gp | ReferralSource::PracticeStaff => (referrer, Role::Referrer),
        _ => (*lead, Role::TeamLead),
    };
    let referral_id = ReferralId(rng.uuid());
    let family = *rng.pick(FAMILY);
    push(
        &mut steps,
        intake_actor,
        intake_role,
        noon(received),
        CaseCommand::Intake {
            client: Some(Box::new(ClientRegistered {
                client_id: client,
                personal: PersonalDetails {
                    given_name: (*rng.pick(GIVEN)).to_owned(),
                    family_name: family.to_owned(),
                    date_of_birth: Some(born),
                    nhs_number: nhs_number(rng),
                    phone: Some(format!("07700 900{:03}", rng.range(0, 999))),
                    email: None,
                    address: Some(format!("{} Church Street, {town}", rng.range(1, 120))),
                    postcode: Some(format!("{district} {}XY", rng.range(1, 9))),
                },
                area: town.to_owned(),
            })),
            referral: ReferralReceived {
                referral_id,
                source,
                referrer: Referrer {
                    staff_id: (intake_role == Role::Referrer).then_some(referrer),
                    name: None,
                    organisation: match source {
                        ReferralSource::Gp | ReferralSource::PracticeStaff => {
                            Some((*rng.pick(PRACTICES)).to_owned())
                        }
                        _ => None,
                    },
                },
                reasons: reasons.clone(),
                urgency: rng.weighted(&[
                    (Urgency::Routine, 80.0),
                    (Urgency::Soon, 17.0),
                    (Urgency::Urgent, 3.0),
                ]),
                received_on: received,
                note: None,
            },
        },
    );

    // Triage: most are accepted; some declined or sent elsewhere.
    let decided = noon(received + Duration::days(rng.range(0, 4)));
    match rng.weighted(&[(0, 86.0), (1, 9.0), (2, 5.0)]) {
        1 => {
            push(
                &mut steps,
                *lead,
                Role::TeamLead,
                decided,
                CaseCommand::DeclineReferral(ReferralDeclined {
                    referral_id,
                    reason: rng.weighted(&[
                        (DeclineReason::ClientDeclined, 4.0),
                        (DeclineReason::UnableToContact, 3.0),
                        (DeclineReason::NotEligible, 1.0),
                        (DeclineReason::NeedsClinicalService, 1.0),
                    ]),
                    note: None,
                }),
            );
            return (client, steps);
        }
        2 => {
            push(
                &mut steps,
                *lead,
                Role::TeamLead,
                decided,
                CaseCommand::RedirectReferral(ReferralRedirected {
                    referral_id,
                    redirected_to: (*rng.pick(&[
                        "NHS Talking Therapies",
                        "Community mental health team",
                        "Adult social care",
                    ]))
                    .to_owned(),
                    note: None,
                }),
            );
            return (client, steps);
        }
        _ => {}
    }
    if !push(
        &mut steps,
        *lead,
        Role::TeamLead,
        decided,
        CaseCommand::AcceptReferral(ReferralAccepted { referral_id }),
    ) {
        return (client, steps);
    }
    push(
        &mut steps,
        *lead,
        Role::TeamLead,
        decided + Duration::hours(1),
        CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
            link_worker_id: worker,
            team_id: *team,
        }),
    );
    let mut worker = worker;
    let mut day = received + Duration::days(rng.range(3, 14));
    let shares_onward = rng.chance(0.85);
    for (scope, p) in [
        (ConsentScope::ShareWithGp, 0.75),
        (
            ConsentScope::ShareWithOnwardServices,
            if shares_onward { 1.0 } else { 0.0 },
        ),
        (ConsentScope::Evaluation, 0.8),
    ] {
        if rng.chance(p) {
            push(
                &mut steps,
                worker,
                Role::LinkWorker,
                noon(day),
                CaseCommand::RecordConsent(ConsentRecorded {
                    scope,
                    services: vec![],
                }),
            );
        }
    }
    push(
        &mut steps,
        worker,
        Role::LinkWorker,
        noon(day),
        CaseCommand::RecordWhatMatters(WhatMattersRecorded {
            text: (*rng.pick(WHAT_MATTERS)).to_owned(),
        }),
    );
    for need in &reasons {
        push(
            &mut steps,
            worker,
            Role::LinkWorker,
            noon(day),
            CaseCommand::IdentifyNeed(NeedIdentified {
                need: *need,
                note: None,
            }),
        );
    }
    let goals: Vec<GoalId> = (0..rng.range(1, 2)).map(|_| GoalId(rng.uuid())).collect();
    for goal in &goals {
        let (description, need) = *rng.pick(GOALS);
        push(
            &mut steps,
            worker,
            Role::LinkWorker,
            noon(day),
            CaseCommand::SetGoal(GoalSet {
                goal_id: *goal,
                description: description.to_owned(),
                need: Some(need),
            }),
        );
    }
    // Baseline scores at the first meeting.
    let instrument = rng.weighted(&[
        (Instrument::Wemwbs, 70.0),
        (Instrument::Swemwbs, 20.0),
        (Instrument::Ons4, 10.0),
    ]);
    let baseline = match instrument {
        Instrument::Wemwbs => rng.normal(38.0, 7.0),
        Instrument::Swemwbs => rng.normal(19.0, 3.5),
        _ => rng.normal(18.0, 6.0),
    };
    let lonely = reasons.contains(&NeedDomain::LonelinessIsolation) && rng.chance(0.6);
    let mut scored = vec![(instrument, baseline)];
    if lonely {
        scored.push((Instrument::Ucla3, rng.normal(7.5, 1.2)));
    }
    for (instrument, total) in &scored {
        push(
            &mut steps,
            worker,
            Role::LinkWorker,
            noon(day),
            CaseCommand::RecordAssessment(AssessmentRecorded {
                assessment_id: AssessmentId(rng.uuid()),
                instrument: *instrument,
                instrument_version: 1,
                timepoint: Timepoint::Baseline,
                mode: AdministrationMode::SelfCompleted,
                answers: answers(*instrument, *total, rng),
                licensor_score: None,
                administered_on: day,
            }),
        );
    }
    let first_meeting = day;
    push(
        &mut steps,
        worker,
        Role::LinkWorker,
        noon(day),
        CaseCommand::RecordContact(ContactRecorded {
            contact_id: ContactId(rng.uuid()),
            mode: rng.weighted(&[
                (ContactMode::FaceToFace, 60.0),
                (ContactMode::HomeVisit, 30.0),
                (ContactMode::Phone, 10.0),
            ]),
            minutes: rng.range(40, 75) as u32,
            contacted_at: noon(day) - Duration::minutes(30),
            note: None,
        }),
    );

    // Contacts: 6 to 12, about weekly; some appointments missed or cancelled; the person may
    // drift away.
    let contacts = rng.range(6, 12);
    let disengages = rng.chance(0.1);
    let mut connected = 0;
    let mut open_connections = Vec::new();
    for k in 0..contacts {
        day += Duration::days(rng.range(5, 10));
        if day > today || (disengages && k >= 3) {
            break;
        }
        let at = noon(day);
        if rng.chance(0.6) {
            let appointment_id = AppointmentId(rng.uuid());
            let mode = rng.weighted(&[
                (ContactMode::FaceToFace, 55.0),
                (ContactMode::HomeVisit, 20.0),
                (ContactMode::Video, 10.0),
                (ContactMode::Group, 15.0),
            ]);
            push(
                &mut steps,
                worker,
                Role::LinkWorker,
                at - Duration::days(4),
                CaseCommand::BookAppointment(AppointmentBooked {
                    appointment_id,
                    scheduled_for: at,
                    mode,
                }),
            );
            let outcome = rng.weighted(&[(0, 86.0), (1, 9.0), (2, 5.0)]);
            let command = match outcome {
                1 => CaseCommand::RecordDidNotAttend(AppointmentNotAttended { appointment_id }),
                2 => CaseCommand::CancelAppointment(AppointmentCancelled {
                    appointment_id,
                    cancelled_by: CancelledBy::Client,
                    note: None,
                }),
                _ => CaseCommand::RecordAttendance(AppointmentAttended { appointment_id }),
            };
            push(
                &mut steps,
                worker,
                Role::LinkWorker,
                at + Duration::hours(1),
                command,
            );
        } else {
            push(
                &mut steps,
                worker,
                Role::LinkWorker,
                at,
                CaseCommand::RecordContact(ContactRecorded {
                    contact_id: ContactId(rng.uuid()),
                    mode: ContactMode::Phone,
                    minutes: rng.range(10, 45) as u32,
                    contacted_at: at,
                    note: None,
                }),
            );
        }
        // Onward connections from the second contact on, for each need.
        if (1..=3).contains(&k) && connected < reasons.len() {
            let need = reasons[connected];
            connected += 1;
            let services = directory.get(&(need, town.to_owned()));
            let kind = rng.weighted(&[
                (ConnectionKind::Signposted, 40.0),
                (ConnectionKind::Referred, 40.0),
                (ConnectionKind::WarmHandover, 15.0),
                (ConnectionKind::Accompanied, 5.0),
            ]);
            let kind = if shares_onward {
                kind
            } else {
                ConnectionKind::Signposted
            };
            let choice = services.and_then(|s| {
                let fits: Vec<_> = s
                    .iter()
                    .filter(|(_, takes)| *takes || kind == ConnectionKind::Signposted)
                    .collect();
                (!fits.is_empty()).then(|| *rng.pick(&fits))
            });
            match choice {
                Some((service, _)) if !rng.chance(0.05) => {
                    let connection_id = ConnectionId(rng.uuid());
                    push(
                        &mut steps,
                        worker,
                        Role::LinkWorker,
                        at + Duration::hours(2),
                        CaseCommand::MakeConnection(OnwardConnectionMade {
                            connection_id,
                            service_id: *service,
                            need,
                            kind,
                        }),
                    );
                    open_connections.push((connection_id, at + Duration::days(14)));
                }
                found => {
                    push(
                        &mut steps,
                        worker,
                        Role::LinkWorker,
                        at + Duration::hours(2),
                        CaseCommand::RecordServiceGap(ServiceGapRecorded {
                            gap_id: GapId(rng.uuid()),
                            need,
                            area: town.to_owned(),
                            reason: if found.is_none() {
                                GapReason::NoServiceExists
                            } else {
                                rng.weighted(&[
                                    (GapReason::WaitingListTooLong, 3.0),
                                    (GapReason::Transport, 3.0),
                                    (GapReason::Cost, 1.0),
                                    (GapReason::NotAccessible, 1.0),
                                ])
                            },
                            note: None,
                        }),
                    );
                }
            }
        }
        // A few cases move to another worker in the team.
        if k == 4 && rng.chance(0.03) {
            let workers_here = &teams[team_index % teams.len()].1;
            if let Some(other) = workers_here.iter().find(|w| **w != worker) {
                push(
                    &mut steps,
                    *lead,
                    Role::TeamLead,
                    at + Duration::hours(3),
                    CaseCommand::TransferCase(TransferCase {
                        to_link_worker_id: *other,
                        team_id: *team,
                        reason: TransferReason::Capacity,
                    }),
                );
                worker = *other;
            }
        }
    }
    for (connection_id, when) in open_connections {
        let outcome = rng.weighted(&[
            (ConnectionOutcome::Attended, 35.0),
            (ConnectionOutcome::Engaged, 28.0),
            (ConnectionOutcome::NotTakenUp, 15.0),
            (ConnectionOutcome::WaitingList, 10.0),
            (ConnectionOutcome::Declined, 6.0),
            (ConnectionOutcome::NotEligible, 3.0),
            (ConnectionOutcome::ServiceFull, 3.0),
        ]);
        push(
            &mut steps,
            worker,
            Role::LinkWorker,
            when,
            CaseCommand::RecordConnectionOutcome(ConnectionOutcomeRecorded {
                connection_id,
                outcome,
                waiting_weeks: (outcome == ConnectionOutcome::WaitingList)
                    .then(|| rng.range(2, 16) as u32),
            }),
        );
    }
    // Follow-up scores 8 to 12 weeks after the baseline, with a realistic change.
    let follow_up = first_meeting + Duration::days(rng.range(56, 84));
    let engaged = !disengages;
    if engaged && follow_up <= today {
        for (instrument, total) in &scored {
            let change = match instrument {
                Instrument::Wemwbs => rng.normal(6.0, 7.0),
                Instrument::Swemwbs => rng.normal(2.5, 3.0),
                Instrument::Ucla3 => rng.normal(-1.2, 1.2),
                _ => rng.normal(3.0, 4.0),
            };
            push(
                &mut steps,
                worker,
                Role::LinkWorker,
                noon(follow_up),
                CaseCommand::RecordAssessment(AssessmentRecorded {
                    assessment_id: AssessmentId(rng.uuid()),
                    instrument: *instrument,
                    instrument_version: 1,
                    timepoint: Timepoint::FollowUp,
                    mode: AdministrationMode::SelfCompleted,
                    answers: answers(*instrument, total + change, rng),
                    licensor_score: None,
                    administered_on: follow_up,
                }),
            );
        }
        for goal in &goals {
            push(
                &mut steps,
                worker,
                Role::LinkWorker,
                noon(follow_up),
                CaseCommand::ReviewGoal(GoalReviewed {
                    goal_id: *goal,
                    progress: rng.weighted(&[
                        (GoalProgress::Achieved, 45.0),
                        (GoalProgress::SomeProgress, 40.0),
                        (GoalProgress::NotStarted, 10.0),
                        (GoalProgress::NoLongerRelevant, 5.0),
                    ]),
                    note: None,
                }),
            );
        }
    }
    let closing = if disengages {
        day + Duration::days(28)
    } else {
        follow_up.max(day) + Duration::days(rng.range(1, 10))
    };
    let closed = push(
        &mut steps,
        worker,
        Role::LinkWorker,
        noon(closing),
        CaseCommand::CloseCase(CaseClosed {
            reason: if disengages {
                ClosureReason::Disengaged
            } else {
                rng.weighted(&[
                    (ClosureReason::GoalsMet, 50.0),
                    (ClosureReason::ConnectedOnward, 35.0),
                    (ClosureReason::ClientWithdrew, 8.0),
                    (ClosureReason::MovedAway, 4.0),
                    (ClosureReason::Deceased, 1.0),
                ])
            },
            note: None,
        }),
    );
    // Some come back.
    let again = closing + Duration::days(rng.range(30, 150));
    if closed && again <= today && rng.chance(0.06) {
        let referral_id = ReferralId(rng.uuid());
        push(
            &mut steps,
            *lead,
            Role::TeamLead,
            noon(again),
            CaseCommand::Intake {
                client: None,
                referral: ReferralReceived {
                    referral_id,
                    source: ReferralSource::SelfReferral,
                    referrer: Referrer {
                        staff_id: None,
                        name: None,
                        organisation: None,
                    },
                    reasons: vec![reasons[0]],
                    urgency: Urgency::Routine,
                    received_on: again,
                    note: None,
                },
            },
        );
        push(
            &mut steps,
            *lead,
            Role::TeamLead,
            noon(again) + Duration::hours(2),
            CaseCommand::AcceptReferral(ReferralAccepted { referral_id }),
        );
        push(
            &mut steps,
            *lead,
            Role::TeamLead,
            noon(again) + Duration::hours(3),
            CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
                link_worker_id: worker,
                team_id: *team,
            }),
        );
    }
    (client, steps)
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
    crate::demo::import_sample_directory(store, listed_at).await?;
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
