//! `casebook bench rebuild`: how fast every read model is rebuilt from the log, beside reading
//! the same log with `COPY ... TO` on the same cluster (the floor a replay cannot beat).
//!
//! The log is filled with client journeys decided by the real domain rules (intake, acceptance,
//! assignment, contacts, appointments, baseline and follow-up scores, an onward connection, a
//! gap, closure), each client's journey appended in one call.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use db::Cluster;
use domain::*;
use eventstore::{AppendRequest, EventStore, ExpectedVersion};
use futures_util::StreamExt;
use uuid::Uuid;

/// Options for the rebuild benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct RebuildBench {
    /// Events in the log (about 20 per client).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Where to put the benchmark's own cluster (removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Only rebuild every read model together (skip rebuilding them one after the other).
    #[arg(long)]
    pub together_only: bool,
    /// Interleave the journeys, as a log kept over a year does: this many clients' journeys at
    /// once, each appended five events at a time in turn, so a client's events spread over
    /// several of a rebuild's batches (0: each journey whole in one append).
    #[arg(long, default_value_t = 0)]
    pub interleave: u64,
}

/// A read model a benchmark rebuilds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadModel {
    /// The caseload (into its shadow table, then switched).
    Caseload,
    /// The outcome figures of a rule version.
    Outcomes {
        /// The rule version.
        rules: i32,
    },
    /// The tasks read model (in place).
    Tasks,
    /// Every read model from one read of the log (`casebook rebuild all --restart`): the
    /// caseload, the directory, and the outcome figures under every rule version kept and
    /// under `rules`.
    All {
        /// The rule version made live.
        rules: i32,
    },
}

/// What a rebuild reports to a benchmark.
#[derive(Clone, Debug)]
pub struct Rebuilt {
    /// The projection's versioned name (`caseload_v1`).
    pub projection: String,
    /// Events replayed.
    pub events: u64,
    /// How long the replay took.
    pub seconds: f64,
}

/// Runs the benchmark in `cluster`; the lines of its table. `rebuild` is the product's
/// rebuild from the first event (`casebook rebuild --restart`), which the binary hands in.
///
/// # Errors
/// When a step fails.
pub(crate) async fn measure(
    cluster: &Cluster,
    options: &RebuildBench,
    rebuild: &impl AsyncFn(&EventStore, ReadModel) -> anyhow::Result<Rebuilt>,
) -> anyhow::Result<Vec<String>> {
    // Sealed personal fields, as the service writes them.
    let (admin, store) = crate::bench::sealed_store(cluster, "bench").await?;

    let started = Instant::now();
    let written = fill(&store, options.events, options.interleave).await?;
    eprintln!(
        "filled the log with {written} events in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    admin.batch_execute("VACUUM ANALYZE events").await?;

    // The floor: the whole log out through COPY, in the projectors' read order.
    let started = Instant::now();
    let copy = admin
        .copy_out(
            "COPY (SELECT * FROM events ORDER BY log_generation, transaction_id, position) TO STDOUT",
        )
        .await?;
    let mut bytes = 0usize;
    let mut copy = std::pin::pin!(copy);
    while let Some(chunk) = copy.next().await {
        bytes += chunk?.len();
    }
    let copy_seconds = started.elapsed().as_secs_f64();
    let copy_rate = written as f64 / copy_seconds;

    let shape = match options.interleave {
        0 => "each journey whole in one append".to_owned(),
        window => {
            format!("journeys interleaved, {window} at once, {INTERLEAVED_CHUNK} events an append")
        }
    };
    let mut lines = vec![
        format!(
            "rebuild from {written} events ({:.0} MB through COPY; {shape}), fsync on",
            bytes as f64 / 1e6
        ),
        "| what | seconds | events/s | ratio to COPY |".to_owned(),
        "|---|---|---|---|".to_owned(),
        format!("| COPY ... TO (read the log) | {copy_seconds:.1} | {copy_rate:.0} | 1.00 |"),
    ];
    let mut total_seconds = 0.0;
    let alone: &[ReadModel] = if options.together_only {
        &[]
    } else {
        &[
            ReadModel::Caseload,
            ReadModel::Outcomes { rules: 1 },
            ReadModel::Outcomes { rules: 3 },
        ]
    };
    if options.together_only {
        // Rules v1 kept beside v3, as the rebuilds one after the other leave them.
        projector::start_version(&admin, projector::OUTCOMES, 1).await?;
    }
    // Outcome rules v1 and v3 side by side: v3 dates every fact, keeps every baseline and
    // refolds corrected records, and is held to at least 0.8 of v1's rate.
    for &model in alone {
        let report = rebuild(&store, model).await?;
        total_seconds += report.seconds;
        let rate = report.events as f64 / report.seconds;
        lines.push(format!(
            "| rebuild {} | {:.1} | {rate:.0} | {:.2} |",
            report.projection,
            report.seconds,
            rate / copy_rate
        ));
    }
    if !alone.is_empty() {
        let all_rate = written as f64 / total_seconds;
        lines.push(format!(
            "| every read model, one after the other | {total_seconds:.1} | {all_rate:.0} | {:.2} |",
            all_rate / copy_rate
        ));
    }
    // The same read models (and the directory) together, from one read of the log.
    let report = rebuild(&store, ReadModel::All { rules: 3 }).await?;
    let rate = report.events as f64 / report.seconds;
    lines.push(format!(
        "| every read model together, one read ({}) | {:.1} | {rate:.0} | {:.2} |",
        report.projection,
        report.seconds,
        rate / copy_rate
    ));
    lines.push(format!("peak RSS of this process: {} MB", peak_rss_mb()));
    Ok(lines)
}

/// The process's peak resident set (VmHWM), in MB.
pub fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

/// Appends decided journeys until the log holds at least `events`, each whole or `interleave`
/// at once; returns how many it holds.
async fn fill(store: &EventStore, events: u64, interleave: u64) -> anyhow::Result<u64> {
    let per_client = journey_events(0).len() as u64;
    let clients = events.div_ceil(per_client);
    if interleave == 0 {
        append_journeys(store, clients, journey_events).await
    } else {
        append_interleaved(store, clients, interleave).await
    }
}

/// How many of a journey's events an interleaved fill appends at a time.
const INTERLEAVED_CHUNK: usize = 5;

/// Appends the journeys of clients 1 to `clients`, `window` of them at once: each worker takes
/// its share of the window's clients and appends the next [`INTERLEAVED_CHUNK`] events of each
/// in turn, so the log holds every client of the window a few events at a time, as journeys
/// kept over months do. Returns how many events were written.
async fn append_interleaved(store: &EventStore, clients: u64, window: u64) -> anyhow::Result<u64> {
    let workers = 8u64;
    let mut written = 0u64;
    let mut first = 0u64;
    while first < clients {
        let last = (first + window).min(clients);
        let mut tasks = Vec::new();
        for w in 0..workers {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let journeys: Vec<(Uuid, Uuid, Vec<eventstore::NewEvent>)> = (first + w..last)
                    .step_by(workers as usize)
                    .map(|n| {
                        let id = u128::from(n) + 1;
                        let decided = journey_events(id);
                        (
                            Uuid::from_u128(id),
                            actor_of(&decided),
                            app::new_events(&decided),
                        )
                    })
                    .collect();
                let mut written = 0u64;
                let rounds = journeys.iter().map(|j| j.2.len()).max().unwrap_or(0);
                for start in (0..rounds).step_by(INTERLEAVED_CHUNK) {
                    for (stream_id, actor, events) in &journeys {
                        let Some(chunk) =
                            events.get(start..(start + INTERLEAVED_CHUNK).min(events.len()))
                        else {
                            continue;
                        };
                        written += chunk.len() as u64;
                        store
                            .append(AppendRequest {
                                stream_id: *stream_id,
                                stream_type: CLIENT_STREAM.to_owned(),
                                expected: if start == 0 {
                                    ExpectedVersion::NoStream
                                } else {
                                    ExpectedVersion::Exact(start as i64)
                                },
                                events: chunk.to_vec(),
                                metadata: crate::bench::worker_metadata(*actor, BENCH_ORGANISATION),
                                idempotency_key: None,
                                fingerprint: None,
                                lookups: None,
                                claims: Vec::new(),
                            })
                            .await?;
                    }
                }
                Ok::<_, eventstore::StoreError>(written)
            }));
        }
        for task in tasks {
            written += task.await.context("a filler task")??;
        }
        first = last;
    }
    Ok(written)
}

/// The link worker a decided journey is assigned to (the actor of its appends).
fn actor_of(decided: &[CaseEvent]) -> Uuid {
    decided
        .iter()
        .find_map(|e| match e {
            CaseEvent::LinkWorkerAssigned(a) => Some(a.link_worker_id.0),
            _ => None,
        })
        .unwrap_or_default()
}

/// Appends the journeys of clients 1 to `clients`, each whole in one call, eight appenders at
/// once, as its link worker; returns how many events were written.
///
/// # Errors
/// A store failure.
pub(crate) async fn append_journeys(
    store: &EventStore,
    clients: u64,
    journey: fn(u128) -> Vec<CaseEvent>,
) -> anyhow::Result<u64> {
    let workers = 8u64;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut written = 0u64;
            let mut n = w;
            while n < clients {
                let id = u128::from(n) + 1;
                let decided = journey(id);
                written += decided.len() as u64;
                let actor = actor_of(&decided);
                store
                    .append(AppendRequest {
                        stream_id: Uuid::from_u128(id),
                        stream_type: CLIENT_STREAM.to_owned(),
                        expected: ExpectedVersion::NoStream,
                        events: app::new_events(&decided),
                        metadata: crate::bench::worker_metadata(actor, BENCH_ORGANISATION),
                        idempotency_key: None,
                        fingerprint: None,
                        lookups: None,
                        claims: Vec::new(),
                    })
                    .await?;
                n += workers;
            }
            Ok::<_, eventstore::StoreError>(written)
        }));
    }
    let mut written = 0;
    for task in tasks {
        written += task.await.context("a filler task")??;
    }
    Ok(written)
}

/// The organisation of every benchmark journey.
pub(crate) const BENCH_ORGANISATION: Uuid = Uuid::from_u128(0x0a);

/// One client's journey, decided by the domain rules from its commands (about 25 events).
pub fn journey_events(n: u128) -> Vec<CaseEvent> {
    journey_events_sized(n, 6, 3, 40, true)
}

/// One client's journey with `appointments` appointments (booked, then attended or not) and
/// `contacts` contacts, so `2 * appointments + contacts + 10` events, assigned to one of
/// `link_workers` link workers; closed at the end when `close` (one event fewer otherwise).
pub fn journey_events_sized(
    n: u128,
    appointments: u128,
    contacts: u128,
    link_workers: u128,
    close: bool,
) -> Vec<CaseEvent> {
    let client = ClientId(Uuid::from_u128(n));
    let sub = |k: u128| Uuid::from_u128((n << 16) + k);
    let day = |d: i64| NaiveDate::from_ymd_opt(2026, 1, 5).expect("a date") + Duration::days(d);
    let at = |d: i64| {
        Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0)
            .single()
            .expect("a time")
            + Duration::days(d)
    };
    let referral_id = ReferralId(sub(1));
    let answers = |base: i32| -> Vec<i32> { (0..14).map(|i| 1 + (base + i) % 5).collect() };
    let mut commands = vec![
        CaseCommand::Intake {
            client: Some(Box::new(ClientRegistered {
                client_id: client,
                personal: PersonalDetails::named("Bench", format!("Client {n}")),
                area: ["Frome", "Shepton Mallet", "Wells", "Street"][(n % 4) as usize].to_owned(),
            })),
            referral: ReferralReceived {
                referral_id,
                source: ReferralSource::ALL[(n % ReferralSource::ALL.len() as u128) as usize],
                referrer: Referrer {
                    staff_id: None,
                    name: None,
                    organisation: None,
                },
                reasons: vec![NeedDomain::ALL[(n % NeedDomain::ALL.len() as u128) as usize]],
                urgency: Urgency::Routine,
                received_on: day(0),
                note: None,
            },
        },
        CaseCommand::AcceptReferral(ReferralAccepted { referral_id }),
        CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
            link_worker_id: StaffId(Uuid::from_u128(0x5000 + n % link_workers)),
            team_id: TeamId(Uuid::from_u128(0x7ea + n % 4)),
        }),
        CaseCommand::RecordConsent(ConsentRecorded {
            scope: ConsentScope::ShareWithOnwardServices,
            services: vec![],
            channel: None,
        }),
        CaseCommand::RecordAssessment(AssessmentRecorded {
            assessment_id: AssessmentId(sub(2)),
            instrument: Instrument::Wemwbs,
            instrument_version: 1,
            timepoint: Timepoint::Baseline,
            mode: AdministrationMode::SelfCompleted,
            answers: answers(n as i32),
            licensor_score: None,
            administered_on: day(3),
        }),
    ];
    for k in 0..appointments {
        let appointment_id = AppointmentId(sub(1000 + k));
        commands.push(CaseCommand::BookAppointment(AppointmentBooked {
            appointment_id,
            scheduled_for: at(7 * k as i64 + 7),
            mode: ContactMode::FaceToFace,
        }));
        commands.push(if (n + k).is_multiple_of(7) {
            CaseCommand::RecordDidNotAttend(AppointmentNotAttended { appointment_id })
        } else {
            CaseCommand::RecordAttendance(AppointmentAttended { appointment_id })
        });
    }
    for k in 0..contacts {
        commands.push(CaseCommand::RecordContact(ContactRecorded {
            contact_id: ContactId(sub(3000 + k)),
            mode: ContactMode::Phone,
            minutes: 20,
            contacted_at: at(7 * k as i64 + 8),
            note: None,
        }));
    }
    let connection_id = ConnectionId(sub(40));
    commands.extend([
        CaseCommand::MakeConnection(OnwardConnectionMade {
            connection_id,
            service_id: ServiceId(Uuid::from_u128(0x5e00 + n % 50)),
            need: NeedDomain::LonelinessIsolation,
            kind: ConnectionKind::Referred,
        }),
        CaseCommand::RecordConnectionOutcome(ConnectionOutcomeRecorded {
            connection_id,
            outcome: ConnectionOutcome::Engaged,
            waiting_weeks: None,
        }),
        CaseCommand::RecordAssessment(AssessmentRecorded {
            assessment_id: AssessmentId(sub(3)),
            instrument: Instrument::Wemwbs,
            instrument_version: 1,
            timepoint: Timepoint::FollowUp,
            mode: AdministrationMode::SelfCompleted,
            answers: answers(n as i32 + 1),
            licensor_score: None,
            administered_on: day(60),
        }),
    ]);
    if close {
        commands.push(CaseCommand::CloseCase(CaseClosed {
            reason: ClosureReason::GoalsMet,
            note: None,
        }));
    }
    let mut state = CaseState::default();
    let mut events = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        // The directory the connections name: a listed service of that id.
        let service = match command {
            CaseCommand::MakeConnection(c) => Some(listed_service(c.service_id)),
            _ => None,
        };
        let lookups = Lookups {
            service: service.as_ref(),
            timing: None,
            corrected: None,
            destinations: None,
            concern_categories: None,
            tags: None,
            destinations_needing_note: None,
        };
        match decide(&state, command, &lookups) {
            Ok(decided) => {
                for (j, event) in decided.into_iter().enumerate() {
                    state = evolve(
                        state,
                        EventId(Uuid::from_u128((n << 16) + (i as u128) * 8 + j as u128)),
                        &event,
                        Utc::now(),
                    );
                    events.push(event);
                }
            }
            Err(e) => panic!("the benchmark's journey breaks a rule at {command:?}: {e}"),
        }
    }
    events
}

/// A listed directory service of id `id`, taking referrals.
fn listed_service(id: ServiceId) -> domain::directory::ServiceState {
    use domain::directory::{
        DirectoryEvent, NEED_TAXONOMY, OrukService, ServiceListed, ServiceState, evolve_service,
    };
    let record = OrukService::from_value(serde_json::json!({
        "id": id.0,
        "name": "Benchmark service",
        "status": "active",
        "organization": { "id": Uuid::from_u128(0x5e0f), "name": "Benchmark" },
        "attributes": [{ "taxonomy_term": {
            "code": "loneliness_isolation", "taxonomy": NEED_TAXONOMY
        } }]
    }))
    .expect("a valid record");
    evolve_service(
        ServiceState::default(),
        &DirectoryEvent::ServiceListed(ServiceListed { service: record }),
        Uuid::nil(),
    )
}
