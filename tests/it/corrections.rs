//! Corrections flow into every read model: for each correctable field, a record with a wrong
//! value and its correction makes the same caseload row and the same outcome figures (rules
//! v3) as a record where the value was right the first time.

use std::sync::Arc;

use app::{CaseService, CommandOptions};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use domain::*;
use eventstore::Metadata;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::support::{
    assessment, list_sample_services, metadata, new_client_intake, record_contact, store_with_db,
};

fn at(month: u32, day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, 10, 0, 0)
        .single()
        .expect("a time")
}

fn date(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, day).expect("a date")
}

/// Which step of the journey a correction corrects (the index of its command), and how.
struct Case {
    name: &'static str,
    step: usize,
    /// Which event of the step's events (the intake writes two).
    event: usize,
    field: &'static str,
    wrong: Value,
    right: Value,
}

/// The journey's commands with `fields` set on the command at `step` (by way of its JSON).
fn journey(
    client: ClientId,
    service: Uuid,
    patch: Option<(usize, &str, &Value)>,
) -> Vec<CaseCommand> {
    let n = |k: u128| Uuid::from_u128(client.0.as_u128() * 100 + k);
    let referral = ReferralId(n(1));
    let appointment = AppointmentId(n(2));
    let connection = ConnectionId(n(3));
    let mut commands = vec![
        new_client_intake(
            client,
            referral,
            "Frome",
            ReferralSource::Gp,
            vec![NeedDomain::LonelinessIsolation],
        ),
        CaseCommand::AcceptReferral(ReferralAccepted {
            referral_id: referral,
        }),
        CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
            link_worker_id: StaffId(Uuid::from_u128(0x77)),
            team_id: TeamId(Uuid::from_u128(0x7e)),
        }),
        CaseCommand::BookAppointment(AppointmentBooked {
            appointment_id: appointment,
            scheduled_for: at(3, 10),
            mode: ContactMode::FaceToFace,
        }),
        CaseCommand::RecordAttendance(AppointmentAttended {
            appointment_id: appointment,
        }),
        record_contact(n(4), ContactMode::Phone, 20, at(3, 5)),
        assessment(
            n(5),
            Instrument::Swemwbs,
            Timepoint::Baseline,
            vec![2; 7],
            date(3, 5),
        ),
        assessment(
            n(6),
            Instrument::Swemwbs,
            Timepoint::FollowUp,
            vec![4; 7],
            date(4, 20),
        ),
        // Consent to share, so that a connection corrected to an accompanied visit is one it
        // could have been recorded as.
        CaseCommand::RecordConsent(ConsentRecorded {
            scope: ConsentScope::ShareWithOnwardServices,
            services: vec![],
            channel: None,
        }),
        CaseCommand::MakeConnection(OnwardConnectionMade {
            connection_id: connection,
            service_id: ServiceId(service),
            need: NeedDomain::LonelinessIsolation,
            kind: ConnectionKind::Signposted,
        }),
        CaseCommand::RecordConnectionOutcome(ConnectionOutcomeRecorded {
            connection_id: connection,
            outcome: ConnectionOutcome::WaitingList,
            waiting_weeks: Some(6),
        }),
        CaseCommand::RecordServiceGap(domain::testing::gap(
            GapId(n(7)),
            NeedDomain::PhysicalActivity,
        )),
        CaseCommand::CloseCase(domain::testing::goals_met()),
    ];
    if let Some((step, field, value)) = patch {
        commands[step] = patched(&commands[step], field, value);
    }
    commands
}

/// `command`, one of the commands `Name(payload)` whose event is `Event(payload)`, with its
/// event passed through `set`.
macro_rules! reencoded {
    ($command:expr, $set:expr, $($name:ident => $event:ident),+ $(,)?) => {
        match $command {
            $(CaseCommand::$name(c) => match $set(CaseEvent::$event(c.clone())) {
                CaseEvent::$event(c) => CaseCommand::$name(c),
                _ => unreachable!(),
            },)+
            other => panic!("no patch for {other:?}"),
        }
    };
}

/// A command with one field of its event changed (through the event's own encoding).
fn patched(command: &CaseCommand, field: &str, value: &Value) -> CaseCommand {
    let set = |event: CaseEvent| -> CaseEvent {
        let mut payload = event.to_payload();
        payload[field] = value.clone();
        CaseEvent::decode(event.event_type(), event.schema_version(), payload).expect("patched")
    };
    match command {
        CaseCommand::Intake { client, referral } if field == "area" => {
            let Some(client) = client else { unreachable!() };
            let CaseEvent::ClientRegistered(c) =
                set(CaseEvent::ClientRegistered((**client).clone()))
            else {
                unreachable!()
            };
            CaseCommand::Intake {
                client: Some(Box::new(c)),
                referral: referral.clone(),
            }
        }
        CaseCommand::Intake { client, referral } => {
            let CaseEvent::ReferralReceived(r) = set(CaseEvent::ReferralReceived(referral.clone()))
            else {
                unreachable!()
            };
            CaseCommand::Intake {
                client: client.clone(),
                referral: r,
            }
        }
        other => reencoded!(
            other,
            set,
            BookAppointment => AppointmentBooked,
            RecordContact => ContactRecorded,
            RecordAssessment => AssessmentRecorded,
            MakeConnection => OnwardConnectionMade,
            RecordConnectionOutcome => ConnectionOutcomeRecorded,
            RecordServiceGap => ServiceGapRecorded,
            CloseCase => CaseClosed,
        ),
    }
}

/// Everything after intake happens on 20 March (a command's own date aside).
fn when() -> Metadata {
    Metadata {
        occurred_at: at(3, 20),
        ..metadata()
    }
}

/// Runs a journey; returns each step's event ids.
async fn run(cases: &CaseService, client: ClientId, commands: &[CaseCommand]) -> Vec<Vec<Uuid>> {
    crate::support::hire_named(cases.store(), crate::support::ORG, commands).await;
    let mut ids = Vec::new();
    for command in commands {
        let result = cases
            .execute(client, command, when(), CommandOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        ids.push(result.events.iter().map(|e| e.event_id).collect());
    }
    ids
}

/// A client's rows in every read model the correction can reach, with the ids that differ
/// between two clients taken out.
async fn rows(client: &tokio_postgres::Client, client_id: Uuid) -> Value {
    let mut out = Map::new();
    for (table, drop) in [
        ("caseload", "'{client_id,stream_version}'"),
        ("report_referrals", "'{client_id,referral_id}'"),
        ("report_episodes", "'{client_id}'"),
        ("report_scores", "'{client_id}'"),
        ("report_connections", "'{client_id,connection_id}'"),
        ("report_gaps", "'{client_id,gap_id}'"),
        ("report_activity", "'{client_id}'"),
    ] {
        let version = if table == "caseload" {
            String::new()
        } else {
            " AND rules_version = 3".to_owned()
        };
        // The connections a caseload row awaits an answer for are keyed by connection id:
        // compared by what they hold.
        let awaited = if table == "caseload" {
            " || jsonb_build_object('awaited_answers', (SELECT coalesce(jsonb_agg(v ORDER BY v::text), '[]') \
             FROM jsonb_each(t.awaited_answers) AS e(k, v)))"
        } else {
            ""
        };
        let value: Value = client
            .query_one(
                &format!(
                    "SELECT coalesce(jsonb_agg((to_jsonb(t) - {drop}::text[]){awaited} ORDER BY to_jsonb(t)::text), '[]') \
                     FROM {table} t WHERE client_id = $1{version}"
                ),
                &[&client_id],
            )
            .await
            .expect("rows")
            .get(0);
        out.insert(table.to_owned(), value);
    }
    Value::Object(out)
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "referral reasons",
            step: 0,
            event: 1,
            field: "reasons",
            wrong: json!(["loneliness_isolation"]),
            right: json!(["money_benefits_debt", "housing"]),
        },
        Case {
            name: "referral source",
            step: 0,
            event: 1,
            field: "source",
            wrong: json!("gp"),
            right: json!("self_referral"),
        },
        Case {
            name: "referral received",
            step: 0,
            event: 1,
            field: "received_on",
            wrong: json!("2026-03-01"),
            right: json!("2026-02-23"),
        },
        Case {
            name: "client area",
            step: 0,
            event: 0,
            field: "area",
            wrong: json!("Frome"),
            right: json!("Wells"),
        },
        Case {
            name: "appointment day",
            step: 3,
            event: 0,
            field: "scheduled_for",
            wrong: json!("2026-03-10T10:00:00Z"),
            right: json!("2026-03-12T10:00:00Z"),
        },
        Case {
            name: "contact time",
            step: 5,
            event: 0,
            field: "contacted_at",
            wrong: json!("2026-03-05T10:00:00Z"),
            right: json!("2026-03-03T15:00:00Z"),
        },
        Case {
            name: "baseline answers",
            step: 6,
            event: 0,
            field: "answers",
            wrong: json!([2, 2, 2, 2, 2, 2, 2]),
            right: json!([1, 1, 2, 1, 1, 2, 1]),
        },
        Case {
            name: "follow-up date",
            step: 7,
            event: 0,
            field: "administered_on",
            wrong: json!("2026-04-20"),
            right: json!("2026-04-27"),
        },
        Case {
            name: "connection need",
            step: 9,
            event: 0,
            field: "need",
            wrong: json!("loneliness_isolation"),
            right: json!("mental_wellbeing"),
        },
        Case {
            name: "connection kind",
            step: 9,
            event: 0,
            field: "kind",
            wrong: json!("signposted"),
            right: json!("accompanied"),
        },
        Case {
            name: "connection waiting weeks",
            step: 10,
            event: 0,
            field: "waiting_weeks",
            wrong: json!(6),
            right: json!(14),
        },
        Case {
            name: "gap need",
            step: 11,
            event: 0,
            field: "need",
            wrong: json!("physical_activity"),
            right: json!("housing"),
        },
        Case {
            name: "gap area",
            step: 11,
            event: 0,
            field: "area",
            wrong: json!("Frome"),
            right: json!("Shepton Mallet"),
        },
        Case {
            name: "gap reason",
            step: 11,
            event: 0,
            field: "reason",
            wrong: json!("no_service_exists"),
            right: json!("transport"),
        },
        Case {
            name: "closure reason",
            step: 12,
            event: 0,
            field: "reason",
            wrong: json!("goals_met"),
            right: json!("moved_away"),
        },
    ]
}

#[tokio::test]
async fn a_corrected_field_makes_the_read_models_of_a_record_right_the_first_time() {
    let (db, store) = store_with_db(4).await;
    let service = list_sample_services(&store, 1).await[0];
    let cases_service = CaseService::new(store.clone());
    let mut pairs = Vec::new();
    for (k, case) in cases().into_iter().enumerate() {
        let wrong = ClientId(Uuid::from_u128(1000 + 2 * k as u128));
        let right = ClientId(Uuid::from_u128(1001 + 2 * k as u128));
        let ids = run(
            &cases_service,
            wrong,
            &journey(wrong, service, Some((case.step, case.field, &case.wrong))),
        )
        .await;
        let mut fields = Map::new();
        fields.insert(case.field.to_owned(), case.right.clone());
        cases_service
            .execute(
                wrong,
                &CaseCommand::CorrectEntry(EntryCorrected {
                    corrects: EventId(ids[case.step][case.event]),
                    corrected_fields: fields,
                    reason: format!("{} was recorded wrongly", case.name),
                }),
                Metadata {
                    occurred_at: at(5, 2),
                    ..metadata()
                },
                CommandOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        run(
            &cases_service,
            right,
            &journey(right, service, Some((case.step, case.field, &case.right))),
        )
        .await;
        pairs.push((case.name, wrong.0, right.0));
    }
    // The read models, caught up in small batches (so corrections meet the events they
    // correct in other batches).
    let projections: Vec<Arc<dyn projector::Projection>> = vec![
        Arc::new(projector::CaseloadProjection),
        Arc::new(projector::OutcomesProjection::new(
            projector::rules::Rules::load(3).expect("v3"),
        )),
    ];
    for projection in projections {
        projector::Runner::new(
            store.clone(),
            projection,
            Uuid::new_v4(),
            projector::RunnerSettings {
                batch_size: 5,
                ..projector::RunnerSettings::default()
            },
        )
        .catch_up()
        .await
        .expect("catch up");
    }
    let client = db.app_client().await;
    for (name, wrong, right) in pairs {
        let (corrected, clean) = (rows(&client, wrong).await, rows(&client, right).await);
        assert_ne!(
            corrected["report_episodes"],
            json!([]),
            "{name}: figures were made"
        );
        assert_eq!(corrected, clean, "{name}");
    }
}
