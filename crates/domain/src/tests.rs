//! Domain tests: given events, when a command, then events or a refusal (all through `check`);
//! the event encoding pinned by snapshots; properties of `decide` and `evolve`.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::testing::*;
use crate::*;

/// Registered with a referral waiting.
fn referred() -> Vec<CaseEvent> {
    vec![
        CaseEvent::ClientRegistered(registered()),
        CaseEvent::ReferralReceived(referral(REFERRAL)),
    ]
}

/// Accepted, no link worker yet.
fn open_unassigned() -> Vec<CaseEvent> {
    let mut events = referred();
    events.push(CaseEvent::ReferralAccepted(ReferralAccepted {
        referral_id: REFERRAL,
    }));
    events
}

/// Accepted and assigned.
fn open_case() -> Vec<CaseEvent> {
    let mut events = open_unassigned();
    events.push(CaseEvent::LinkWorkerAssigned(LinkWorkerAssigned {
        link_worker_id: WORKER,
        team_id: TEAM,
    }));
    events
}

fn closed_case() -> Vec<CaseEvent> {
    let mut events = open_case();
    events.push(CaseEvent::CaseClosed(goals_met()));
    events
}

fn fold(events: &[CaseEvent]) -> CaseState {
    events
        .iter()
        .enumerate()
        .fold(CaseState::default(), |state, (n, event)| {
            evolve(state, event_id(n as u128), event, moment())
        })
}

enum Expect {
    /// These events exactly.
    Events(Vec<CaseEvent>),
    /// The command's own event (for commands that carry their event's data).
    Accepted,
    /// Refused with this rule code.
    Refused(&'static str),
}

/// `decide` with the directory holding [`listed_service`].
fn decide_listed(state: &CaseState, command: &CaseCommand) -> Result<Vec<CaseEvent>, CaseError> {
    decide_listed_with(state, command, None)
}

/// `decide` with the directory holding [`listed_service`] and `timing`, nothing else looked up.
fn decide_listed_with(
    state: &CaseState,
    command: &CaseCommand,
    timing: Option<&Timing>,
) -> Result<Vec<CaseEvent>, CaseError> {
    let service = listed_service();
    decide(
        state,
        command,
        &Lookups {
            service: Some(&service),
            timing,
            corrected: None,
            destinations: None,
            concern_categories: None,
            tags: None,
            destinations_needing_note: None,
        },
    )
}

/// The one place that calls `decide` and `evolve` in the table tests.
#[track_caller]
fn check(given: Vec<CaseEvent>, command: CaseCommand, expect: Expect) {
    let state = fold(&given);
    let outcome = decide_listed(&state, &command);
    match (expect, outcome) {
        (Expect::Events(expected), Ok(events)) => assert_eq!(events, expected),
        (Expect::Accepted, Ok(events)) => {
            assert_eq!(events.len(), 1, "{events:?}");
            // The emitted event folds, and round-trips through its stored encoding.
            let folded = evolve(state, event_id(999), &events[0], moment());
            assert!(folded.events.contains_key(&event_id(999)));
            let decoded = CaseEvent::decode(
                events[0].event_type(),
                events[0].schema_version(),
                events[0].to_payload(),
            )
            .expect("decodes");
            assert_eq!(decoded, events[0]);
        }
        (Expect::Refused(rule), Err(error)) => {
            assert_eq!(error.rule(), rule, "refused for another reason: {error}");
            assert!(!error.to_string().is_empty());
        }
        (Expect::Refused(rule), Ok(events)) => {
            panic!("expected a refusal ({rule}), got {events:?}")
        }
        (_, Err(error)) => panic!("expected events, got a refusal: {error} ({})", error.rule()),
    }
}

#[test]
fn intake_registers_a_new_client_with_their_referral() {
    check(
        vec![],
        CaseCommand::Intake {
            client: Some(Box::new(registered())),
            referral: referral(REFERRAL),
        },
        Expect::Events(referred()),
    );
}

#[test]
fn intake_rules() {
    let new_client = |client| CaseCommand::Intake {
        client,
        referral: referral(ReferralId(id(20))),
    };
    check(
        referred(),
        new_client(Some(Box::new(registered()))),
        Expect::Refused("already_registered"),
    );
    check(vec![], new_client(None), Expect::Refused("not_registered"));
    check(
        referred(),
        new_client(None),
        Expect::Refused("case_already_active"),
    );
    check(
        open_case(),
        new_client(None),
        Expect::Refused("case_already_active"),
    );
    // A repeat referral after the case closed, or after a decline, continues the same stream.
    check(
        closed_case(),
        new_client(None),
        Expect::Events(vec![CaseEvent::ReferralReceived(referral(ReferralId(id(
            20,
        ))))]),
    );
    let declined = with(
        referred(),
        [CaseEvent::ReferralDeclined(ReferralDeclined {
            referral_id: REFERRAL,
            reason: DeclineReason::ClientDeclined,
            note: None,
        })],
    );
    check(
        declined,
        new_client(None),
        Expect::Events(vec![CaseEvent::ReferralReceived(referral(ReferralId(id(
            20,
        ))))]),
    );

    let mut no_reasons = referral(ReferralId(id(20)));
    no_reasons.reasons.clear();
    check(
        closed_case(),
        CaseCommand::Intake {
            client: None,
            referral: no_reasons,
        },
        Expect::Refused("invalid_field"),
    );
    let mut nameless = registered();
    nameless.personal.family_name = " ".to_owned();
    check(
        vec![],
        new_client(Some(Box::new(nameless))),
        Expect::Refused("invalid_field"),
    );
    check(
        closed_case(),
        CaseCommand::Intake {
            client: None,
            referral: referral(REFERRAL),
        },
        Expect::Refused("duplicate_id"),
    );
}

#[test]
fn a_referral_is_accepted_or_declined_once() {
    let accept = CaseCommand::AcceptReferral(ReferralAccepted {
        referral_id: REFERRAL,
    });
    let decline = CaseCommand::DeclineReferral(ReferralDeclined {
        referral_id: REFERRAL,
        reason: DeclineReason::NotEligible,
        note: None,
    });
    check(referred(), accept.clone(), Expect::Accepted);
    check(referred(), decline.clone(), Expect::Accepted);
    check(
        open_case(),
        accept.clone(),
        Expect::Refused("referral_already_decided"),
    );
    check(
        open_case(),
        decline.clone(),
        Expect::Refused("referral_already_decided"),
    );
    let declined = with(
        referred(),
        decide_listed(&fold(&referred()), &decline).expect("declined"),
    );
    check(
        declined.clone(),
        accept,
        Expect::Refused("referral_already_decided"),
    );
    check(
        declined,
        CaseCommand::RedirectReferral(ReferralRedirected {
            referral_id: REFERRAL,
            destination: Destination::Coded {
                code: "community_mental_health".to_owned(),
            },
            note: None,
        }),
        Expect::Refused("referral_already_decided"),
    );
    check(
        referred(),
        CaseCommand::AcceptReferral(ReferralAccepted {
            referral_id: ReferralId(id(99)),
        }),
        Expect::Refused("unknown_referral"),
    );
    check(
        referred(),
        CaseCommand::DeclineReferral(ReferralDeclined {
            referral_id: REFERRAL,
            reason: DeclineReason::Other,
            note: None,
        }),
        Expect::Refused("invalid_field"),
    );
}

#[test]
fn nothing_is_recorded_on_a_case_that_is_not_open() {
    let commands = [
        CaseCommand::RecordContact(contact(1)),
        CaseCommand::RecordWhatMatters(WhatMattersRecorded {
            text: "my garden".to_owned(),
        }),
        CaseCommand::IdentifyNeed(NeedIdentified {
            need: NeedDomain::Housing,
            note: None,
        }),
        CaseCommand::BookAppointment(booked(ContactMode::FaceToFace)),
        CaseCommand::RecordServiceGap(gap(GapId(id(30)), NeedDomain::Housing)),
        CaseCommand::CloseCase(goals_met()),
    ];
    for command in commands {
        check(vec![], command.clone(), Expect::Refused("not_registered"));
        check(
            referred(),
            command.clone(),
            Expect::Refused("case_not_open"),
        );
        check(
            closed_case(),
            command.clone(),
            Expect::Refused("case_not_open"),
        );
        check(open_case(), command, Expect::Accepted);
    }
}

#[test]
fn contacts_assessments_and_connections_need_a_link_worker() {
    let baseline = assessment(1, Instrument::Swemwbs, Timepoint::Baseline, vec![3; 7]);
    for command in [
        CaseCommand::RecordContact(contact(1)),
        CaseCommand::RecordAssessment(baseline),
        CaseCommand::MakeConnection(connection(ConnectionKind::Signposted)),
    ] {
        check(
            open_unassigned(),
            command.clone(),
            Expect::Refused("no_link_worker"),
        );
        check(open_case(), command, Expect::Accepted);
    }
}

#[test]
fn assessment_answers_are_checked_per_instrument() {
    let cases: Vec<(Instrument, Vec<i32>, Option<f64>, bool)> = vec![
        (Instrument::Wemwbs, vec![3; 14], None, true),
        (Instrument::Wemwbs, vec![3; 13], None, false),
        (
            Instrument::Wemwbs,
            [vec![3; 13], vec![6]].concat(),
            None,
            false,
        ),
        (Instrument::Swemwbs, vec![1, 2, 3, 4, 5, 1, 2], None, true),
        (Instrument::Swemwbs, vec![0, 2, 3, 4, 5, 1, 2], None, false),
        (Instrument::Ons4, vec![0, 10, 5, 7], None, true),
        (Instrument::Ons4, vec![0, 11, 5, 7], None, false),
        (Instrument::Ucla3, vec![1, 2, 3], None, true),
        (Instrument::Ucla3, vec![1, 2, 4], None, false),
        (Instrument::OnsLoneliness, vec![5], None, true),
        (Instrument::Mycaw, vec![4, 5], None, true),
        (Instrument::Mycaw, vec![4, 5, 3], None, true),
        (Instrument::Mycaw, vec![4], None, false),
        (Instrument::Pam, vec![2], Some(52.5), true),
        (Instrument::Pam, vec![2], None, false),
        (Instrument::Pam, vec![5], Some(52.5), false),
        (Instrument::Pam, vec![2], Some(120.0), false),
        (Instrument::Ons4, vec![0, 10, 5, 7], Some(3.0), false),
    ];
    for (n, (instrument, answers, score, valid)) in cases.into_iter().enumerate() {
        let mut recorded = assessment(n as u128, instrument, Timepoint::Baseline, answers);
        recorded.licensor_score = score;
        let expect = if valid {
            Expect::Accepted
        } else {
            Expect::Refused("invalid_answers")
        };
        check(open_case(), CaseCommand::RecordAssessment(recorded), expect);
    }
    let mut unknown_version = assessment(50, Instrument::Wemwbs, Timepoint::Baseline, vec![3; 14]);
    unknown_version.instrument_version = 2;
    check(
        open_case(),
        CaseCommand::RecordAssessment(unknown_version),
        Expect::Refused("invalid_answers"),
    );
}

#[test]
fn a_follow_up_needs_an_earlier_baseline_of_the_same_instrument() {
    let follow_up = CaseCommand::RecordAssessment(assessment(
        2,
        Instrument::Wemwbs,
        Timepoint::FollowUp,
        vec![4; 14],
    ));
    check(
        open_case(),
        follow_up.clone(),
        Expect::Refused("no_baseline"),
    );
    let other_baseline = with(
        open_case(),
        [CaseEvent::AssessmentRecorded(assessment(
            1,
            Instrument::Swemwbs,
            Timepoint::Baseline,
            vec![3; 7],
        ))],
    );
    check(
        other_baseline,
        follow_up.clone(),
        Expect::Refused("no_baseline"),
    );
    let baseline = with(
        open_case(),
        [CaseEvent::AssessmentRecorded(assessment(
            1,
            Instrument::Wemwbs,
            Timepoint::Baseline,
            vec![3; 14],
        ))],
    );
    check(baseline.clone(), follow_up, Expect::Accepted);
    check(
        baseline,
        CaseCommand::RecordAssessment(assessment(
            1,
            Instrument::Wemwbs,
            Timepoint::Review,
            vec![3; 14],
        )),
        Expect::Refused("duplicate_id"),
    );
}

#[test]
fn a_connection_outcome_names_an_existing_connection() {
    let outcome = |outcome, waiting_weeks| {
        CaseCommand::RecordConnectionOutcome(ConnectionOutcomeRecorded {
            connection_id: CONNECTION,
            outcome,
            waiting_weeks,
        })
    };
    check(
        open_case(),
        outcome(ConnectionOutcome::Attended, None),
        Expect::Refused("unknown_connection"),
    );
    let connected = with(
        open_case(),
        [CaseEvent::OnwardConnectionMade(connection(
            ConnectionKind::Signposted,
        ))],
    );
    check(
        connected.clone(),
        outcome(ConnectionOutcome::Attended, None),
        Expect::Accepted,
    );
    check(
        connected.clone(),
        outcome(ConnectionOutcome::WaitingList, Some(6)),
        Expect::Accepted,
    );
    check(
        connected.clone(),
        outcome(ConnectionOutcome::WaitingList, None),
        Expect::Refused("invalid_field"),
    );
    check(
        connected,
        outcome(ConnectionOutcome::Engaged, Some(2)),
        Expect::Refused("invalid_field"),
    );
}

#[test]
fn a_referral_warm_handover_or_accompanied_visit_needs_consent_to_share() {
    let consent = |services: Vec<ServiceId>| {
        CaseEvent::ConsentRecorded(ConsentRecorded {
            scope: ConsentScope::ShareWithOnwardServices,
            services,
            channel: None,
        })
    };
    for kind in [
        ConnectionKind::Referred,
        ConnectionKind::WarmHandover,
        ConnectionKind::Accompanied,
    ] {
        let command = CaseCommand::MakeConnection(connection(kind));
        check(
            open_case(),
            command.clone(),
            Expect::Refused("no_consent_to_share"),
        );
        check(
            with(open_case(), [consent(vec![])]),
            command.clone(),
            Expect::Accepted,
        );
        check(
            with(open_case(), [consent(vec![SERVICE])]),
            command.clone(),
            Expect::Accepted,
        );
        check(
            with(open_case(), [consent(vec![ServiceId(id(77))])]),
            command.clone(),
            Expect::Refused("no_consent_to_share"),
        );
        let withdrawn = with(
            open_case(),
            [
                consent(vec![]),
                CaseEvent::ConsentWithdrawn(ConsentWithdrawn {
                    scope: ConsentScope::ShareWithOnwardServices,
                }),
            ],
        );
        check(withdrawn, command, Expect::Refused("no_consent_to_share"));
    }
    // Signposting shares nothing and needs no consent.
    check(
        open_case(),
        CaseCommand::MakeConnection(connection(ConnectionKind::Signposted)),
        Expect::Accepted,
    );
    check(
        open_case(),
        CaseCommand::WithdrawConsent(ConsentWithdrawn {
            scope: ConsentScope::ShareWithGp,
        }),
        Expect::Refused("consent_not_given"),
    );
    check(
        open_case(),
        CaseCommand::RecordConsent(ConsentRecorded {
            scope: ConsentScope::ShareWithGp,
            services: vec![SERVICE],
            channel: None,
        }),
        Expect::Refused("invalid_field"),
    );
}

#[test]
fn consent_to_be_contacted_for_reminders_names_its_channel_and_no_other_consent_does() {
    let reminders = |channel| {
        CaseCommand::RecordConsent(ConsentRecorded {
            scope: ConsentScope::ContactForReminders,
            services: vec![],
            channel,
        })
    };
    check(
        open_case(),
        reminders(Some(ContactChannel::Sms)),
        Expect::Events(vec![CaseEvent::ConsentRecorded(ConsentRecorded {
            scope: ConsentScope::ContactForReminders,
            services: vec![],
            channel: Some(ContactChannel::Sms),
        })]),
    );
    check(
        open_case(),
        reminders(None),
        Expect::Refused("invalid_field"),
    );
    check(
        open_case(),
        CaseCommand::RecordConsent(ConsentRecorded {
            scope: ConsentScope::ShareWithGp,
            services: vec![],
            channel: Some(ContactChannel::Email),
        }),
        Expect::Refused("invalid_field"),
    );
    // A consent recorded before the channel existed decodes as it was, with no channel, and
    // encodes again without one.
    let old = json!({ "scope": "share_with_gp", "services": [] });
    let decoded = CaseEvent::decode("ConsentRecorded", 1, old.clone()).expect("decodes");
    assert_eq!(
        decoded,
        CaseEvent::ConsentRecorded(ConsentRecorded {
            scope: ConsentScope::ShareWithGp,
            services: vec![],
            channel: None,
        })
    );
    assert_eq!(decoded.to_payload(), old);
}

fn gp_message(n: u128) -> GpMessageSent {
    GpMessageSent {
        message_id: GpMessageId(id(n)),
        practice: "Frome Medical Practice".to_owned(),
        text: "Maggie joined the walking group".to_owned(),
    }
}

#[test]
fn a_message_to_the_gp_needs_consent_to_share_with_the_gp_until_it_is_withdrawn() {
    let gp_consent = CaseEvent::ConsentRecorded(ConsentRecorded {
        scope: ConsentScope::ShareWithGp,
        services: vec![],
        channel: None,
    });
    let command = CaseCommand::SendGpMessage(gp_message(40));
    check(
        open_case(),
        command.clone(),
        Expect::Refused("no_consent_to_share"),
    );
    // Consent to share with onward services is another scope.
    check(
        with(
            open_case(),
            [CaseEvent::ConsentRecorded(ConsentRecorded {
                scope: ConsentScope::ShareWithOnwardServices,
                services: vec![],
                channel: None,
            })],
        ),
        command.clone(),
        Expect::Refused("no_consent_to_share"),
    );
    check(
        with(open_case(), [gp_consent.clone()]),
        command.clone(),
        Expect::Accepted,
    );
    // A closure summary goes back after the case closes, too.
    check(
        with(closed_case(), [gp_consent.clone()]),
        command.clone(),
        Expect::Accepted,
    );
    let withdrawn = with(
        open_case(),
        [
            gp_consent.clone(),
            CaseEvent::GpMessageSent(gp_message(41)),
            CaseEvent::ConsentWithdrawn(ConsentWithdrawn {
                scope: ConsentScope::ShareWithGp,
            }),
        ],
    );
    check(
        withdrawn,
        command.clone(),
        Expect::Refused("no_consent_to_share"),
    );
    check(
        with(
            open_case(),
            [gp_consent.clone(), CaseEvent::GpMessageSent(gp_message(40))],
        ),
        command,
        Expect::Refused("duplicate_id"),
    );
    let mut blank = gp_message(42);
    blank.text = " ".to_owned();
    check(
        with(open_case(), [gp_consent]),
        CaseCommand::SendGpMessage(blank),
        Expect::Refused("invalid_field"),
    );
}

#[test]
fn an_erased_record_takes_nothing_more() {
    let erase = CaseCommand::EraseClient(ClientErased {
        reason: "retention period ended".to_owned(),
    });
    check(Vec::new(), erase.clone(), Expect::Refused("not_registered"));
    check(
        closed_case(),
        CaseCommand::EraseClient(ClientErased {
            reason: String::new(),
        }),
        Expect::Refused("invalid_field"),
    );
    check(closed_case(), erase.clone(), Expect::Accepted);
    check(open_case(), erase.clone(), Expect::Accepted);
    let erased = with(
        closed_case(),
        [CaseEvent::ClientErased(ClientErased {
            reason: "retention period ended".to_owned(),
        })],
    );
    assert!(fold(&erased).erased);
    for command in [
        erase,
        CaseCommand::ReopenCase(CaseReopened { note: None }),
        CaseCommand::Intake {
            client: None,
            referral: referral(ReferralId(id(50))),
        },
        CaseCommand::RecordConsent(ConsentRecorded {
            scope: ConsentScope::ShareWithGp,
            services: vec![],
            channel: None,
        }),
    ] {
        check(erased.clone(), command, Expect::Refused("erased"));
    }
}

/// Read from its stored text, every event is what it is read as through a `Value`, however
/// the text is spaced (PostgreSQL prints `jsonb` with a space after each colon and comma); a
/// type or version the build does not read, or a payload of the wrong shape, is refused alike.
#[test]
fn an_event_read_from_its_text_is_the_event_read_from_its_value() {
    for event in one_of_each() {
        let payload = event.to_payload();
        let (event_type, version) = (event.event_type(), event.schema_version());
        for text in [
            payload.to_string(),
            serde_json::to_string_pretty(&payload).unwrap_or_default(),
        ] {
            let read = CaseEvent::decode_json(event_type, version, &text)
                .unwrap_or_else(|e| panic!("{event_type}: {e}"));
            assert_eq!(read, event);
        }
    }
    let refused = |event_type: &str, version: i32, text: &str| {
        let value = serde_json::from_str(text).unwrap_or(Value::Null);
        let by_value = CaseEvent::decode(event_type, version, value).map_err(|e| e.to_string());
        let by_text = CaseEvent::decode_json(event_type, version, text).map_err(|e| e.to_string());
        assert!(by_text.is_err(), "{event_type} v{version} {text}");
        assert_eq!(by_text, by_value);
    };
    refused("NoSuchEvent", 1, "{}");
    refused("ReferralRedirected", 1, r#"{"referral_id": "x"}"#);
    refused("NoteAdded", 1, r#"{"unknown": 1}"#);
    refused("NoteAdded", 1, "[]");
    // Not JSON at all, or a whole payload and more after it: refused (no value to compare
    // with).
    let note = one_of_each()
        .into_iter()
        .find(|e| e.event_type() == "NoteAdded")
        .map(|e| e.to_payload().to_string())
        .unwrap_or_default();
    assert!(
        CaseEvent::decode_json("NoteAdded", 1, &note).is_ok(),
        "{note}"
    );
    for text in [
        "{".to_owned(),
        format!(r#"{note}, "x": 0"#),
        format!("{note} {{}}"),
    ] {
        assert!(
            CaseEvent::decode_json("NoteAdded", 1, &text).is_err(),
            "{text}"
        );
    }
}

#[test]
fn every_personal_field_is_where_its_event_keeps_it_and_its_erased_form_decodes() {
    let mut events = one_of_each();
    // Each entry's personal paths; a correction's are those of the entry it corrects.
    let mut paths: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            PERSONAL_FIELDS
                .iter()
                .filter(|(t, _)| *t == e.event_type())
                .map(|(_, path)| (*path).to_owned())
                .collect()
        })
        .collect();
    // A correction of every entry with personal fields, giving each such field again, so every
    // corrected personal path has a value to find.
    let mut corrections = Vec::new();
    for event in &events {
        let payload = event.to_payload();
        let mut fields = Map::new();
        for (_, path) in PERSONAL_FIELDS
            .iter()
            .filter(|(t, _)| *t == event.event_type())
        {
            let field = path.split('.').next().unwrap_or(path);
            if let Some(value) = payload.get(field) {
                fields.insert(field.to_owned(), value.clone());
            }
        }
        if fields.is_empty() || matches!(event, CaseEvent::EntryCorrected(_)) {
            continue;
        }
        let mut personal = vec!["reason".to_owned()];
        personal.extend(corrected_personal_paths(Some(event.event_type()), &fields));
        corrections.push((
            CaseEvent::EntryCorrected(EntryCorrected {
                corrects: event_id(1),
                corrected_fields: fields,
                reason: "wrong person's notes".to_owned(),
            }),
            personal,
        ));
    }
    assert!(corrections.len() > 10, "{}", corrections.len());
    for (correction, personal) in corrections {
        events.push(correction);
        paths.push(personal);
    }
    for (event_type, path) in PERSONAL_FIELDS {
        assert!(
            EVENT_TYPES.iter().any(|(name, _)| name == event_type),
            "{event_type} is an event type"
        );
        let found = events
            .iter()
            .filter(|e| e.event_type() == *event_type)
            .any(|e| {
                let payload = e.to_payload();
                path.split('.')
                    .try_fold(&payload, |v, key| v.get(key))
                    .is_some()
            });
        assert!(found, "{event_type}.{path} is in the payload");
    }
    for (event, personal) in events.iter().zip(&paths) {
        let mut payload = event.to_payload();
        for path in personal {
            let keys: Vec<&str> = path.split('.').collect();
            let target = keys.iter().try_fold(&mut payload, |v, key| v.get_mut(*key));
            if let Some(value) = target
                && !value.is_null()
            {
                *value = erased_form(path);
            }
        }
        let decoded = CaseEvent::decode(event.event_type(), event.schema_version(), payload)
            .unwrap_or_else(|e| panic!("{} erased does not decode: {e}", event.event_type()));
        let text = serde_json::to_string(&decoded.to_payload()).unwrap_or_default();
        for secret in [
            "Example",
            "9434765919",
            "allotment",
            "walking group",
            "three calls",
            "re-referred",
            "something personal",
            "typed 30",
        ] {
            assert!(!text.contains(secret), "{secret} left in {text}");
        }
    }
}

#[test]
fn a_corrected_field_is_personal_exactly_where_the_corrected_entry_s_is() {
    let fields = |value: Value| value.as_object().cloned().unwrap_or_default();
    let referrer = fields(json!({
        "referrer": { "staff_id": null, "name": "Dr Who", "organisation": "Frome MP" },
        "source": "gp", "note": "typo"
    }));
    assert_eq!(
        corrected_personal_paths(Some("ReferralReceived"), &referrer),
        ["corrected_fields.referrer.name", "corrected_fields.note"]
    );
    let registration = fields(json!({ "personal": { "given_name": "Maggie" }, "area": "Frome" }));
    assert_eq!(
        corrected_personal_paths(Some("ClientRegistered"), &registration),
        ["corrected_fields.personal"]
    );
    let gp = fields(json!({ "text": "joined the choir", "practice": "Frome MP" }));
    assert_eq!(
        corrected_personal_paths(Some("GpMessageSent"), &gp),
        ["corrected_fields.text"]
    );
    // A field named like a personal one is not personal where the entry's is not.
    let answers = fields(json!({ "answers": [1, 2], "timepoint": "baseline" }));
    assert!(corrected_personal_paths(Some("AssessmentRecorded"), &answers).is_empty());
    let reason = fields(json!({ "reason": "moved_away" }));
    assert!(corrected_personal_paths(Some("CaseClosed"), &reason).is_empty());
    // Not knowing the entry, every corrected field is taken as personal.
    assert_eq!(
        corrected_personal_paths(None, &answers),
        ["corrected_fields.answers", "corrected_fields.timepoint"]
    );
}

#[test]
fn closing_needs_a_reason_and_only_a_closed_case_reopens() {
    check(
        open_case(),
        CaseCommand::CloseCase(CaseClosed {
            reason: ClosureReason::Other,
            note: Some("  ".to_owned()),
        }),
        Expect::Refused("invalid_field"),
    );
    check(
        open_case(),
        CaseCommand::CloseCase(CaseClosed {
            reason: ClosureReason::Other,
            note: Some("moved into care".to_owned()),
        }),
        Expect::Accepted,
    );
    let reopen = CaseCommand::ReopenCase(CaseReopened { note: None });
    check(open_case(), reopen.clone(), Expect::Refused("not_closed"));
    check(referred(), reopen.clone(), Expect::Refused("not_closed"));
    check(closed_case(), reopen.clone(), Expect::Accepted);
    let reopened = with(
        closed_case(),
        decide_listed(&fold(&closed_case()), &reopen).expect("reopens"),
    );
    check(
        reopened,
        CaseCommand::RecordContact(contact(2)),
        Expect::Accepted,
    );
}

#[test]
fn a_correction_names_an_existing_event_of_this_client() {
    let given = with(open_case(), [CaseEvent::ContactRecorded(contact(1))]);
    let mut fields = Map::new();
    fields.insert("minutes".to_owned(), json!(45));
    let correction = |corrects, corrected_fields: Map<String, Value>, reason: &str| {
        CaseCommand::CorrectEntry(EntryCorrected {
            corrects,
            corrected_fields,
            reason: reason.to_owned(),
        })
    };
    // The contact is the fifth event given (index 4).
    check(
        given.clone(),
        correction(event_id(4), fields.clone(), "typed 30, was 45"),
        Expect::Accepted,
    );
    check(
        given.clone(),
        correction(EventId(id(4242)), fields.clone(), "typo"),
        Expect::Refused("unknown_event"),
    );
    check(
        given.clone(),
        correction(event_id(4), Map::new(), "typo"),
        Expect::Refused("invalid_field"),
    );
    check(
        given,
        correction(event_id(4), fields, ""),
        Expect::Refused("invalid_field"),
    );
}

#[test]
fn appointments_are_settled_once_and_transfers_change_the_worker() {
    let booked = with(
        open_case(),
        [CaseEvent::AppointmentBooked(booked(
            ContactMode::FaceToFace,
        ))],
    );
    let missed = CaseCommand::RecordDidNotAttend(AppointmentNotAttended {
        appointment_id: APPOINTMENT,
    });
    check(booked.clone(), missed.clone(), Expect::Accepted);
    let attended = with(
        booked,
        [CaseEvent::AppointmentAttended(AppointmentAttended {
            appointment_id: APPOINTMENT,
        })],
    );
    check(
        attended,
        missed,
        Expect::Refused("appointment_already_settled"),
    );
    check(
        open_case(),
        CaseCommand::CancelAppointment(AppointmentCancelled {
            appointment_id: APPOINTMENT,
            cancelled_by: CancelledBy::Client,
            note: None,
        }),
        Expect::Refused("unknown_appointment"),
    );

    let transfer = |to| {
        CaseCommand::TransferCase(TransferCase {
            to_link_worker_id: to,
            team_id: TEAM,
            reason: TransferReason::Capacity,
        })
    };
    check(
        open_unassigned(),
        transfer(StaffId(id(33))),
        Expect::Refused("no_link_worker"),
    );
    check(
        open_case(),
        transfer(WORKER),
        Expect::Refused("same_link_worker"),
    );
    check(
        open_case(),
        transfer(StaffId(id(33))),
        Expect::Events(vec![CaseEvent::CaseTransferred(CaseTransferred {
            from_link_worker_id: WORKER,
            to_link_worker_id: StaffId(id(33)),
            team_id: TEAM,
            reason: TransferReason::Capacity,
        })]),
    );
    let goal = GoalSet {
        goal_id: GOAL,
        description: "join a walking group".to_owned(),
        need: Some(NeedDomain::PhysicalActivity),
    };
    let review = CaseCommand::ReviewGoal(GoalReviewed {
        goal_id: GOAL,
        progress: GoalProgress::SomeProgress,
        note: None,
    });
    check(open_case(), review.clone(), Expect::Refused("unknown_goal"));
    check(
        with(open_case(), [CaseEvent::GoalSet(goal)]),
        review,
        Expect::Accepted,
    );
}

#[test]
fn nhs_numbers_are_checked() {
    assert_eq!(
        NhsNumber::parse("943 476 5919").map(|n| n.as_str().to_owned()),
        Ok("9434765919".to_owned())
    );
    assert!(
        NhsNumber::parse("943 476 5918").is_err(),
        "wrong check digit"
    );
    assert!(NhsNumber::parse("94347659").is_err(), "too short");
    assert!(NhsNumber::parse("94347659x9").is_err(), "not digits");
    let decoded: Result<NhsNumber, _> = serde_json::from_value(json!("1234567890"));
    assert!(
        decoded.is_err(),
        "a bad number cannot come in through JSON either"
    );
}

/// One event of every type, with fixed values: the encoding's reference.
fn one_of_each() -> Vec<CaseEvent> {
    let mut fields = Map::new();
    fields.insert("minutes".to_owned(), json!(45));
    let mut pam = assessment(9, Instrument::Pam, Timepoint::Baseline, vec![3]);
    pam.licensor_score = Some(58.1);
    vec![
        CaseEvent::ClientRegistered(registered()),
        CaseEvent::ConsentRecorded(ConsentRecorded {
            scope: ConsentScope::ShareWithOnwardServices,
            services: vec![SERVICE],
            channel: None,
        }),
        CaseEvent::ConsentRecorded(ConsentRecorded {
            scope: ConsentScope::ContactForReminders,
            services: vec![],
            channel: Some(ContactChannel::Email),
        }),
        CaseEvent::ConsentWithdrawn(ConsentWithdrawn {
            scope: ConsentScope::Evaluation,
        }),
        CaseEvent::ReferralReceived(referral(REFERRAL)),
        CaseEvent::ReferralAccepted(ReferralAccepted {
            referral_id: REFERRAL,
        }),
        CaseEvent::ReferralDeclined(ReferralDeclined {
            referral_id: REFERRAL,
            reason: DeclineReason::UnableToContact,
            note: Some("three calls".to_owned()),
        }),
        CaseEvent::ReferralRedirected(ReferralRedirected {
            referral_id: REFERRAL,
            destination: Destination::Coded {
                code: "talking_therapies".to_owned(),
            },
            note: None,
        }),
        CaseEvent::LinkWorkerAssigned(LinkWorkerAssigned {
            link_worker_id: WORKER,
            team_id: TEAM,
        }),
        CaseEvent::CaseTransferred(CaseTransferred {
            from_link_worker_id: WORKER,
            to_link_worker_id: StaffId(id(33)),
            team_id: TEAM,
            reason: TransferReason::StaffLeft,
        }),
        CaseEvent::AppointmentBooked(booked(ContactMode::HomeVisit)),
        CaseEvent::AppointmentAttended(AppointmentAttended {
            appointment_id: APPOINTMENT,
        }),
        CaseEvent::AppointmentNotAttended(AppointmentNotAttended {
            appointment_id: APPOINTMENT,
        }),
        CaseEvent::AppointmentCancelled(AppointmentCancelled {
            appointment_id: APPOINTMENT,
            cancelled_by: CancelledBy::Service,
            note: None,
        }),
        CaseEvent::ContactRecorded(contact(1)),
        CaseEvent::WhatMattersRecorded(WhatMattersRecorded {
            text: "getting back to the allotment".to_owned(),
        }),
        CaseEvent::NeedIdentified(NeedIdentified {
            need: NeedDomain::MoneyBenefitsDebt,
            note: None,
        }),
        CaseEvent::GoalSet(GoalSet {
            goal_id: GOAL,
            description: "join a walking group".to_owned(),
            need: Some(NeedDomain::PhysicalActivity),
        }),
        CaseEvent::GoalReviewed(GoalReviewed {
            goal_id: GOAL,
            progress: GoalProgress::Achieved,
            note: None,
        }),
        CaseEvent::AssessmentRecorded(pam),
        CaseEvent::OnwardConnectionMade(connection(ConnectionKind::WarmHandover)),
        CaseEvent::ConnectionOutcomeRecorded(ConnectionOutcomeRecorded {
            connection_id: CONNECTION,
            outcome: ConnectionOutcome::WaitingList,
            waiting_weeks: Some(6),
        }),
        CaseEvent::ServiceGapRecorded(ServiceGapRecorded {
            gap_id: GapId(id(30)),
            need: NeedDomain::Bereavement,
            area: "Frome".to_owned(),
            reason: GapReason::WaitingListTooLong,
            note: None,
        }),
        CaseEvent::CaseClosed(CaseClosed {
            reason: ClosureReason::ConnectedOnward,
            note: None,
        }),
        CaseEvent::CaseReopened(CaseReopened {
            note: Some("re-referred by GP".to_owned()),
        }),
        CaseEvent::EntryCorrected(EntryCorrected {
            corrects: event_id(13),
            corrected_fields: fields,
            reason: "typed 30, was 45".to_owned(),
        }),
        CaseEvent::GpMessageSent(gp_message(43)),
        CaseEvent::ClientErased(ClientErased {
            reason: "retention period ended".to_owned(),
        }),
        CaseEvent::LateEntryExplained(LateEntryExplained {
            reason: "paper notes from the outreach clinic, typed up on return".to_owned(),
        }),
        CaseEvent::NoteAdded(NoteAdded {
            note_id: NoteId(id(60)),
            text: "something personal about the dog".to_owned(),
            important: true,
        }),
        CaseEvent::NotePinned(NotePinned {
            note_id: NoteId(id(60)),
        }),
        CaseEvent::NoteUnpinned(NoteUnpinned {
            note_id: NoteId(id(60)),
        }),
        CaseEvent::SafeguardingConcernRaised(SafeguardingConcernRaised {
            concern_id: ConcernId(id(61)),
            category: "self_neglect".to_owned(),
            details: "something personal: no heating".to_owned(),
            told: "something personal: the duty team".to_owned(),
            told_at: moment(),
            outcome: None,
        }),
        CaseEvent::SafeguardingConcernUpdated(SafeguardingConcernUpdated {
            concern_id: ConcernId(id(61)),
            told: None,
            told_at: None,
            outcome: Some("something personal: a visit booked".to_owned()),
        }),
        CaseEvent::SafeguardingConcernClosed(SafeguardingConcernClosed {
            concern_id: ConcernId(id(61)),
            reason: "something personal: heating mended".to_owned(),
        }),
        CaseEvent::ConnectionAcceptedByProvider(ConnectionAcceptedByProvider {
            connection_id: CONNECTION,
        }),
        CaseEvent::ConnectionDeclinedByProvider(ConnectionDeclinedByProvider {
            connection_id: CONNECTION,
            reason: ProviderDeclineReason::OutsideArea,
        }),
        CaseEvent::ConnectionStartRecorded(ConnectionStartRecorded {
            connection_id: CONNECTION,
            started: true,
        }),
        CaseEvent::DemographicsRecorded(DemographicsRecorded {
            demographics: Demographics {
                sex: Some(Sex::Female),
                gender_identity: Some(GenderIdentity::Female),
                ethnic_category: Some(EthnicCategory::AnyOtherWhiteBackground),
                preferred_language: Some("something personal: Polish".to_owned()),
                interpreter_needed: Some(true),
                communication_needs: Some("something personal: large print".to_owned()),
                gp_practice: Some("L85016".to_owned()),
                postcode: Some("BA11 1AA".to_owned()),
            },
            reportable: ReportableDemographics {
                rules_version: 1,
                age_band: Some("65_74".to_owned()),
                sex: Some(Sex::Female),
                gender_identity: Some(GenderIdentity::Female),
                ethnic_group: Some(EthnicGroup::White),
                interpreter_needed: Some(true),
                gp_practice: Some("L85016".to_owned()),
                imd_decile: Some(6),
            },
        }),
        CaseEvent::CaseTagged(CaseTagged {
            tag: "housing-priority".to_owned(),
        }),
        CaseEvent::CaseUntagged(CaseUntagged {
            tag: "housing-priority".to_owned(),
        }),
        CaseEvent::LoneWorkingPlanRecorded(LoneWorkingPlanRecorded {
            appointment_id: AppointmentId(id(20)),
            address_note: "something personal: flat 2, side door".to_owned(),
            check_in_by: moment(),
            buddy_staff_id: StaffId(id(3)),
            known_risks: Some("something personal: a large dog".to_owned()),
        }),
        CaseEvent::LoneWorkingCheckedIn(LoneWorkingCheckedIn {
            appointment_id: AppointmentId(id(20)),
        }),
    ]
}

#[test]
fn the_event_encoding_is_pinned() {
    let events = one_of_each();
    let types: Vec<&str> = events.iter().map(CaseEvent::event_type).collect();
    let mut unique = types.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), EVENT_TYPES.len(), "one sample per event type");
    let encoded: Vec<Value> = events
        .iter()
        .map(|e| json!({ "event_type": e.event_type(), "schema_version": e.schema_version(), "payload": e.to_payload() }))
        .collect();
    insta::assert_json_snapshot!("event_encoding", encoded);
    for event in &events {
        let back = CaseEvent::decode(
            event.event_type(),
            event.schema_version(),
            event.to_payload(),
        )
        .expect("decodes");
        assert_eq!(&back, event);
    }
    assert!(
        CaseEvent::decode("ContactRecorded", 2, json!({})).is_err(),
        "a version with no upcaster is refused"
    );
    assert!(CaseEvent::decode("NoSuchEvent", 1, json!({})).is_err());
}

#[test]
fn the_event_type_names_and_versions_are_pinned() {
    insta::assert_snapshot!(
        EVENT_TYPES.iter().map(|(name, version)| format!("{name} v{version}")).collect::<Vec<_>>().join("\n"),
        @r"
    ClientRegistered v1
    ConsentRecorded v1
    ConsentWithdrawn v1
    ReferralReceived v1
    ReferralAccepted v1
    ReferralDeclined v1
    ReferralRedirected v2
    LinkWorkerAssigned v1
    CaseTransferred v1
    AppointmentBooked v1
    AppointmentAttended v1
    AppointmentNotAttended v1
    AppointmentCancelled v1
    ContactRecorded v1
    WhatMattersRecorded v1
    NeedIdentified v1
    GoalSet v1
    GoalReviewed v1
    AssessmentRecorded v1
    OnwardConnectionMade v1
    ConnectionOutcomeRecorded v1
    ServiceGapRecorded v1
    CaseClosed v1
    CaseReopened v1
    EntryCorrected v1
    GpMessageSent v1
    ClientErased v1
    LateEntryExplained v1
    NoteAdded v1
    NotePinned v1
    NoteUnpinned v1
    SafeguardingConcernRaised v1
    SafeguardingConcernUpdated v1
    SafeguardingConcernClosed v1
    ConnectionAcceptedByProvider v1
    ConnectionDeclinedByProvider v1
    ConnectionStartRecorded v1
    DemographicsRecorded v1
    CaseTagged v1
    CaseUntagged v1
    LoneWorkingPlanRecorded v1
    LoneWorkingCheckedIn v1
    "
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `decide` never emits an event that `evolve` cannot fold or the store cannot decode; and
    /// over any command sequence, the status and each referral's decision follow a model of the
    /// case written here from the event list alone (not through `evolve`), so a wrong fold or
    /// a command accepted in the wrong state breaks it.
    #[test]
    fn decide_only_emits_events_that_fold_and_round_trip(picks in proptest::collection::vec(0usize..64, 0..60)) {
        let pool = command_pool();
        let mut log: Vec<CaseEvent> = Vec::new();
        let mut state = CaseState::default();
        for pick in picks {
            let command = &pool[pick % pool.len()];
            if let Ok(events) = decide_listed(&state, command) {
                prop_assert!(!events.is_empty());
                for event in events {
                    let decoded = CaseEvent::decode(event.event_type(), event.schema_version(), event.to_payload());
                    prop_assert_eq!(decoded.as_ref().ok(), Some(&event));
                    let text = event.to_payload().to_string();
                    let read = CaseEvent::decode_json(event.event_type(), event.schema_version(), &text);
                    prop_assert_eq!(read.as_ref().ok(), Some(&event));
                    state = evolve(state, event_id(log.len() as u128), &event, moment());
                    log.push(event);
                }
            }
            let (status, decisions) = model(&log);
            prop_assert_eq!(state.status, status, "after {:?}", command);
            for (referral, decided) in decisions {
                prop_assert_eq!(state.referrals.get(&referral).copied(), Some(decided));
            }
            // Only an open case is worked: a contact is accepted exactly when the model says
            // the case is open and someone holds it.
            let contact = CaseCommand::RecordContact(contact(99));
            let open_and_held = status == CaseStatus::Open && state.link_worker.is_some();
            prop_assert_eq!(decide_listed(&state, &contact).is_ok(), open_and_held);
        }
    }
}

/// The case's status and each referral's decision, from the event list alone.
fn model(log: &[CaseEvent]) -> (CaseStatus, Vec<(ReferralId, ReferralStatus)>) {
    let mut status = CaseStatus::Unregistered;
    let mut decisions: Vec<(ReferralId, ReferralStatus)> = Vec::new();
    let decide = |decisions: &mut Vec<(ReferralId, ReferralStatus)>, id, to| {
        if let Some(entry) = decisions.iter_mut().find(|(r, _)| *r == id) {
            entry.1 = to;
        }
    };
    for event in log {
        match event {
            CaseEvent::ClientRegistered(_) => status = CaseStatus::Idle,
            CaseEvent::ReferralReceived(r) => {
                status = CaseStatus::Referred;
                decisions.push((r.referral_id, ReferralStatus::Pending));
            }
            CaseEvent::ReferralAccepted(r) => {
                status = CaseStatus::Open;
                decide(&mut decisions, r.referral_id, ReferralStatus::Accepted);
            }
            CaseEvent::ReferralDeclined(r) => {
                status = CaseStatus::Idle;
                decide(&mut decisions, r.referral_id, ReferralStatus::Declined);
            }
            CaseEvent::ReferralRedirected(r) => {
                status = CaseStatus::Idle;
                decide(&mut decisions, r.referral_id, ReferralStatus::Redirected);
            }
            CaseEvent::CaseClosed(_) => status = CaseStatus::Closed,
            CaseEvent::CaseReopened(_) => status = CaseStatus::Open,
            _ => {}
        }
    }
    (status, decisions)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Folding any sequence of events, even one no command would produce, never panics.
    #[test]
    fn folding_any_event_sequence_never_panics(picks in proptest::collection::vec(0usize..25, 0..80)) {
        let samples = one_of_each();
        let events: Vec<CaseEvent> = picks.into_iter().map(|i| samples[i % samples.len()].clone()).collect();
        let state = fold(&events);
        prop_assert_eq!(state.events.len(), events.len());
    }
}

/// `decide` holds the directory's rule for onward connections: the service looked up must be
/// the one named, listed, and for a referral taking referrals now.
#[test]
fn an_onward_connection_needs_the_named_service_listed_and_for_a_referral_open() {
    let consented = with(
        open_case(),
        [CaseEvent::ConsentRecorded(ConsentRecorded {
            scope: ConsentScope::ShareWithOnwardServices,
            services: vec![],
            channel: None,
        })],
    );
    let state = fold(&consented);
    let decide_with = |service: Option<&directory::ServiceState>, kind| {
        decide(
            &state,
            &CaseCommand::MakeConnection(connection(kind)),
            &Lookups {
                service,
                timing: None,
                corrected: None,
                destinations: None,
                concern_categories: None,
                tags: None,
                destinations_needing_note: None,
            },
        )
        .map_err(|e| e.rule())
    };
    let listed = listed_service();
    assert!(decide_with(Some(&listed), ConnectionKind::Referred).is_ok());
    // Nothing looked up, or another service than the one named: no such service.
    assert_eq!(
        decide_with(None, ConnectionKind::Signposted),
        Err("unknown_service")
    );
    let mut other = listed.clone();
    if let Some(record) = other.service.as_mut() {
        record.id = Uuid::from_u128(6);
    }
    assert_eq!(
        decide_with(Some(&other), ConnectionKind::Signposted),
        Err("unknown_service")
    );
    // Withdrawn: nothing connects to it.
    let withdrawn = directory::evolve_service(
        listed.clone(),
        &directory::DirectoryEvent::ServiceWithdrawn(directory::ServiceWithdrawn {
            reason: "closed down".into(),
        }),
        SERVICE_OWNER,
    );
    assert_eq!(
        decide_with(Some(&withdrawn), ConnectionKind::Signposted),
        Err("service_withdrawn")
    );
    // Closed to referrals: signposting still works, a referral does not.
    let closed = closed_to_referrals(listed);
    assert!(decide_with(Some(&closed), ConnectionKind::Signposted).is_ok());
    assert_eq!(
        decide_with(Some(&closed), ConnectionKind::Referred),
        Err("service_not_taking_referrals")
    );
}

/// A redirection names a directory service that takes referrals or a listed destination code;
/// words alone are refused (they are only how schema v1 redirections read).
#[test]
fn a_redirection_names_a_listed_service_or_a_destination_code() {
    let state = fold(&referred());
    let codes = vec!["gp_practice".to_owned(), "talking_therapies".to_owned()];
    let redirect = |destination: Destination, service: Option<&directory::ServiceState>| {
        decide(
            &state,
            &CaseCommand::RedirectReferral(ReferralRedirected {
                referral_id: REFERRAL,
                destination,
                note: None,
            }),
            &Lookups {
                service,
                timing: None,
                corrected: None,
                destinations: Some(&codes),
                concern_categories: None,
                tags: None,
                destinations_needing_note: None,
            },
        )
        .map_err(|e| (e.rule(), e.field()))
    };
    let coded = |code: &str| Destination::Coded {
        code: code.to_owned(),
    };
    assert!(redirect(coded("talking_therapies"), None).is_ok());
    assert_eq!(
        redirect(coded("talking therapies"), None),
        Err(("invalid_field", Some("destination.code")))
    );
    assert_eq!(
        redirect(coded(" "), None),
        Err(("invalid_field", Some("destination.code")))
    );
    assert_eq!(
        redirect(
            Destination::Described {
                text: "the mental health team".to_owned()
            },
            None
        ),
        Err(("invalid_field", Some("destination.kind")))
    );
    let listed = listed_service();
    let to_service = Destination::Service {
        service_id: SERVICE,
    };
    assert!(redirect(to_service.clone(), Some(&listed)).is_ok());
    assert_eq!(
        redirect(to_service.clone(), None),
        Err(("invalid_field", Some("destination.service_id")))
    );
    let closed = closed_to_referrals(listed);
    assert_eq!(
        redirect(to_service, Some(&closed)),
        Err(("invalid_field", Some("destination.service_id")))
    );
}

/// A redirection stored as schema v1 (where it went, in words) reads as a described
/// destination; a correction recorded against it then (`redirected_to`) still applies, and a
/// correction to a code is held to the code list.
#[test]
fn a_schema_v1_redirection_is_upcast_and_its_corrections_still_apply() {
    let stored = json!({
        "referral_id": REFERRAL.0,
        "redirected_to": "Mendip  Talking Therapies",
        "note": null
    });
    let (_, _, step) = UPCASTS
        .iter()
        .find(|(t, v, _)| *t == "ReferralRedirected" && *v == 1)
        .expect("an upcaster from v1");
    let event = CaseEvent::decode("ReferralRedirected", 2, step(stored).expect("upcasts"))
        .expect("decodes as v2");
    let CaseEvent::ReferralRedirected(redirected) = &event else {
        panic!("{event:?}")
    };
    // Counted without its words: they may name a person.
    assert_eq!(redirected.destination.report_code(), "uncoded");
    assert!(step(json!({ "referral_id": REFERRAL.0 })).is_err());

    let mut given = referred();
    given.push(event.clone());
    let state = fold(&given);
    let correct = |fields: Value| {
        let Value::Object(fields) = fields else {
            unreachable!()
        };
        CaseCommand::CorrectEntry(EntryCorrected {
            corrects: event_id(given.len() as u128 - 1),
            corrected_fields: fields,
            reason: "typed in the wrong box".to_owned(),
        })
    };
    let codes = vec!["talking_therapies".to_owned()];
    let decide_correction = |command: &CaseCommand| {
        decide(
            &state,
            command,
            &Lookups {
                service: None,
                timing: None,
                corrected: Some(&event),
                destinations: Some(&codes),
                concern_categories: None,
                tags: None,
                destinations_needing_note: None,
            },
        )
        .map_err(|e| (e.rule(), e.field()))
    };
    // Words stay words: a correction to words alone is refused as a new redirection would be.
    assert_eq!(
        decide_correction(&correct(json!({ "redirected_to": "Talking Therapies" }))),
        Err(("invalid_field", Some("corrected_fields.destination")))
    );
    assert!(
        decide_correction(&correct(
            json!({ "destination": { "kind": "coded", "code": "talking_therapies" } })
        ))
        .is_ok()
    );
    assert_eq!(
        decide_correction(&correct(
            json!({ "destination": { "kind": "coded", "code": "nowhere" } })
        )),
        Err(("invalid_field", Some("corrected_fields.destination")))
    );
    // The old field name applies to the upcast entry, for every reader that applies
    // corrections (the projectors' refold and the journey as well as deciding).
    let mut payload = event.to_payload();
    apply_corrected_fields(
        "ReferralRedirected",
        &mut payload,
        &[("redirected_to".to_owned(), json!("Frome Health Coaching"))]
            .into_iter()
            .collect(),
    );
    let refolded = CaseEvent::decode("ReferralRedirected", 2, payload).expect("still decodes");
    let CaseEvent::ReferralRedirected(refolded) = refolded else {
        unreachable!()
    };
    assert_eq!(
        refolded.destination,
        Destination::Described {
            text: "Frome Health Coaching".to_owned()
        }
    );
    let corrected = corrected_entry(
        &event,
        &EntryCorrected {
            corrects: event_id(0),
            corrected_fields: [("redirected_to".to_owned(), json!("Frome Health Coaching"))]
                .into_iter()
                .collect(),
            reason: "typo".to_owned(),
        },
    )
    .expect("applies");
    let CaseEvent::ReferralRedirected(corrected) = corrected else {
        unreachable!()
    };
    assert_eq!(
        corrected.destination,
        Destination::Described {
            text: "Frome Health Coaching".to_owned()
        }
    );
}

/// `decide` at a time: `occurred_at` given (or the command's own date), `now` the clock's.
fn decide_at(
    given: &[CaseEvent],
    command: &CaseCommand,
    occurred_at: Option<chrono::DateTime<Utc>>,
    window: Option<(BackEntryWindow, Option<&str>)>,
) -> Result<Vec<CaseEvent>, CaseError> {
    let state = fold(given);
    let now = Utc
        .with_ymd_and_hms(2026, 9, 1, 12, 0, 0)
        .single()
        .expect("a time");
    let mut timing = Timing::of(command, occurred_at, now)?;
    if let Some((window, reason)) = window {
        timing = timing.within(window, reason.map(str::to_owned));
    }
    decide_listed_with(&state, command, Some(&timing))
}

/// `service` closed to referrals by its owner.
fn closed_to_referrals(service: directory::ServiceState) -> directory::ServiceState {
    directory::evolve_service(
        service,
        &directory::DirectoryEvent::ServiceCapacityChanged(directory::ServiceCapacityChanged {
            availability: directory::Availability::Closed,
            waiting_weeks: None,
            note: None,
        }),
        SERVICE_OWNER,
    )
}

fn on(month: u32, day: u32) -> Option<chrono::DateTime<Utc>> {
    Utc.with_ymd_and_hms(2026, month, day, 11, 0, 0).single()
}

#[track_caller]
fn refused_on(outcome: Result<Vec<CaseEvent>, CaseError>, field: &str) {
    match outcome {
        Err(error) => assert_eq!(error.field(), Some(field), "{error}"),
        Ok(events) => panic!("expected a refusal naming {field}, got {events:?}"),
    }
}

#[test]
fn every_fact_is_dated_no_later_than_now_and_no_earlier_than_what_it_follows() {
    let accept = CaseCommand::AcceptReferral(ReferralAccepted {
        referral_id: REFERRAL,
    });
    let close = CaseCommand::CloseCase(goals_met());
    // A back-dated acceptance happened when the caller says (the fold puts the referral on
    // 1 March and every earlier fact on 10 March); now is 1 September.
    assert!(decide_at(&referred(), &accept, on(3, 5), None).is_ok());
    assert!(decide_at(&referred(), &accept, None, None).is_ok());
    // Later than now (beyond the allowed skew), or before the referral was received.
    refused_on(
        decide_at(&referred(), &accept, on(9, 2), None),
        "occurred_at",
    );
    refused_on(
        decide_at(&referred(), &accept, on(2, 28), None),
        "occurred_at",
    );
    // A closure before the case was opened (10 March); on the day is fine.
    refused_on(
        decide_at(&open_case(), &close, on(3, 9), None),
        "occurred_at",
    );
    assert!(decide_at(&open_case(), &close, on(3, 10), None).is_ok());
    // A reopening before the closure.
    let reopen = CaseCommand::ReopenCase(CaseReopened { note: None });
    refused_on(
        decide_at(&closed_case(), &reopen, on(3, 9), None),
        "occurred_at",
    );
    assert!(decide_at(&closed_case(), &reopen, on(4, 1), None).is_ok());
    // An attendance before the day the appointment was booked for.
    let booked = with(
        open_case(),
        [CaseEvent::AppointmentBooked(AppointmentBooked {
            appointment_id: APPOINTMENT,
            scheduled_for: on(4, 20).expect("a time"),
            mode: ContactMode::FaceToFace,
        })],
    );
    let attended = CaseCommand::RecordAttendance(AppointmentAttended {
        appointment_id: APPOINTMENT,
    });
    let missed = CaseCommand::RecordDidNotAttend(AppointmentNotAttended {
        appointment_id: APPOINTMENT,
    });
    refused_on(
        decide_at(&booked, &attended, on(4, 19), None),
        "occurred_at",
    );
    refused_on(decide_at(&booked, &missed, on(4, 19), None), "occurred_at");
    assert!(decide_at(&booked, &attended, on(4, 20), None).is_ok());
    // A command dated by its own field is refused on that field, and takes no second date.
    let mut early = contact(60);
    early.contacted_at = on(2, 27).expect("a time");
    refused_on(
        decide_at(&open_case(), &CaseCommand::RecordContact(early), None, None),
        "contacted_at",
    );
    refused_on(
        decide_at(
            &open_case(),
            &CaseCommand::RecordContact(contact(61)),
            on(3, 20),
            None,
        ),
        "occurred_at",
    );
}

#[test]
fn facts_older_than_the_back_entry_window_need_a_team_lead_and_a_reason() {
    let accept = CaseCommand::AcceptReferral(ReferralAccepted {
        referral_id: REFERRAL,
    });
    let worker = BackEntryWindow {
        days: 93,
        may_exceed: false,
    };
    let lead = BackEntryWindow {
        days: 93,
        may_exceed: true,
    };
    // 5 March is 180 days before 1 September; 1 June is inside the window.
    assert!(decide_at(&referred(), &accept, on(6, 1), Some((worker, None))).is_ok());
    refused_on(
        decide_at(&referred(), &accept, on(3, 5), Some((worker, None))),
        "occurred_at",
    );
    refused_on(
        decide_at(
            &referred(),
            &accept,
            on(3, 5),
            Some((worker, Some("notes"))),
        ),
        "late_entry_reason",
    );
    refused_on(
        decide_at(&referred(), &accept, on(3, 5), Some((lead, None))),
        "occurred_at",
    );
    refused_on(
        decide_at(&referred(), &accept, on(3, 5), Some((lead, Some("  ")))),
        "late_entry_reason",
    );
    // The reason is kept, in an event just before the fact.
    let events = decide_at(
        &referred(),
        &accept,
        on(3, 5),
        Some((lead, Some(" moved from the paper register "))),
    )
    .expect("a team lead's late entry with a reason");
    assert_eq!(
        events,
        vec![
            CaseEvent::LateEntryExplained(LateEntryExplained {
                reason: "moved from the paper register".to_owned()
            }),
            CaseEvent::ReferralAccepted(ReferralAccepted {
                referral_id: REFERRAL
            }),
        ]
    );
    // A referral's own date is held to the window too.
    let intake = CaseCommand::Intake {
        client: Some(Box::new(registered())),
        referral: referral(REFERRAL),
    };
    refused_on(
        decide_at(&[], &intake, None, Some((worker, None))),
        "referral.received_on",
    );
    // With no window (an import, the service itself), the history may be entered as it was.
    assert!(decide_at(&[], &intake, None, None).is_ok());
}

/// `decide` of a correction of the event at `index` of `given`, looked up as the service does.
fn correct(given: &[CaseEvent], index: usize, fields: Value) -> Result<Vec<CaseEvent>, CaseError> {
    correct_beside(given, index, fields, None)
}

/// [`correct`], with `service` the directory's service the app looked up.
fn correct_beside(
    given: &[CaseEvent],
    index: usize,
    fields: Value,
    service: Option<&directory::ServiceState>,
) -> Result<Vec<CaseEvent>, CaseError> {
    let state = fold(given);
    let correction = EntryCorrected {
        corrects: event_id(index as u128),
        corrected_fields: fields.as_object().cloned().unwrap_or_default(),
        reason: "recorded wrongly".to_owned(),
    };
    decide(
        &state,
        &CaseCommand::CorrectEntry(correction),
        &Lookups {
            service,
            timing: None,
            corrected: Some(&given[index]),
            destinations: None,
            concern_categories: None,
            tags: None,
            destinations_needing_note: None,
        },
    )
}

#[test]
fn a_correction_is_held_to_the_rules_of_the_entry_it_corrects() {
    let baseline = CaseEvent::AssessmentRecorded(assessment(
        40,
        Instrument::Wemwbs,
        Timepoint::Baseline,
        vec![3; 14],
    ));
    let follow_up = CaseEvent::AssessmentRecorded(assessment(
        41,
        Instrument::Wemwbs,
        Timepoint::FollowUp,
        vec![4; 14],
    ));
    let scored = with(open_case(), [baseline, follow_up]);
    let (b, f) = (scored.len() - 2, scored.len() - 1);
    // Right the first time: accepted.
    assert!(correct(&scored, f, json!({ "answers": vec![5; 14] })).is_ok());
    assert!(correct(&scored, 1, json!({ "reasons": ["housing"] })).is_ok());
    // An answer out of range, a wrong item count, an unknown field, an id: refused.
    let refused = |fields: Value, index: usize, field: &str| {
        let error = correct(&scored, index, fields).expect_err("refused");
        assert_eq!(error.field(), Some(field), "{error}");
    };
    refused(
        json!({ "answers": vec![9; 14] }),
        f,
        "corrected_fields.answers",
    );
    refused(
        json!({ "answers": vec![3; 7] }),
        f,
        "corrected_fields.answers",
    );
    refused(json!({ "colour": "blue" }), f, "corrected_fields");
    refused(
        json!({ "assessment_id": Uuid::from_u128(99) }),
        f,
        "corrected_fields.assessment_id",
    );
    refused(json!({ "timepoint": "whenever" }), f, "corrected_fields");
    refused(json!({ "reasons": [] }), 1, "corrected_fields.reasons");
    // The only baseline cannot be relabelled (as a review, it would be a later score with no
    // baseline, which could not have been recorded); beside a second baseline it can; and a
    // follow-up cannot move to an instrument with no baseline.
    refused(
        json!({ "timepoint": "review" }),
        b,
        "corrected_fields.timepoint",
    );
    let two = with(
        scored.clone(),
        [CaseEvent::AssessmentRecorded(assessment(
            42,
            Instrument::Wemwbs,
            Timepoint::Baseline,
            vec![3; 14],
        ))],
    );
    assert!(correct(&two, b, json!({ "timepoint": "review" })).is_ok());
    refused(
        json!({ "instrument": "swemwbs", "answers": vec![3; 7] }),
        f,
        "corrected_fields.instrument",
    );
    // A correction is not corrected: the original is.
    let corrected = with(
        scored.clone(),
        [CaseEvent::EntryCorrected(EntryCorrected {
            corrects: event_id(f as u128),
            corrected_fields: json!({ "answers": vec![5; 14] })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            reason: "typed wrongly".to_owned(),
        })],
    );
    let error =
        correct(&corrected, corrected.len() - 1, json!({ "reason": "x" })).expect_err("refused");
    assert_eq!(error.field(), Some("corrects"));
    // A relabel folds: the baseline moved, so a later score of that instrument is refused.
    let relabelled = with(
        scored[..f].to_vec(),
        [CaseEvent::EntryCorrected(EntryCorrected {
            corrects: event_id(b as u128),
            corrected_fields: json!({ "timepoint": "review" })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            reason: "was a review".to_owned(),
        })],
    );
    assert!(!fold(&relabelled).baselines.contains(&Instrument::Wemwbs));
}

/// No fact is dated before 1900 (a date in year 0 is a slip), whichever field dates it: a
/// referral's receipt, a birth, an `occurred_at`, a contact, or a corrected date.
/// `decide` at `now` with the command's own date (no back-entry window).
fn decide_now(
    given: &[CaseEvent],
    command: &CaseCommand,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<CaseEvent>, CaseError> {
    decide_listed_with(
        &fold(given),
        command,
        Some(&Timing::of(command, None, now)?),
    )
}

#[test]
fn a_day_is_to_come_by_the_uk_calendar() {
    let at = |text: &str| text.parse::<chrono::DateTime<Utc>>().expect("an instant");
    let day = |text: &str| text.parse::<chrono::NaiveDate>().expect("a day");
    let mut assessed = assessment(1, Instrument::Swemwbs, Timepoint::Baseline, vec![3; 7]);
    let mut assess_on = |on: &str| {
        assessed.administered_on = day(on);
        CaseCommand::RecordAssessment(assessed.clone())
    };
    let mut received = referral(REFERRAL);
    let mut refer_on = |on: &str| {
        received.received_on = day(on);
        CaseCommand::Intake {
            client: Some(Box::new(registered())),
            referral: received.clone(),
        }
    };
    // 00:30 on 1 July in England (summer time) is 23:30 UTC on 30 June: the 1st is today.
    let summer_night = at("2026-06-30T23:30:00Z");
    assert!(decide_now(&open_case(), &assess_on("2026-07-01"), summer_night).is_ok());
    assert!(decide_now(&[], &refer_on("2026-07-01"), summer_night).is_ok());
    refused_on(
        decide_now(&open_case(), &assess_on("2026-07-02"), summer_night),
        "administered_on",
    );
    refused_on(
        decide_now(&[], &refer_on("2026-07-02"), summer_night),
        "referral.received_on",
    );
    // And what follows it that night is on the same UK day, not before it.
    let referred_tonight =
        decide_now(&[], &refer_on("2026-07-01"), summer_night).expect("referred");
    let accept = CaseCommand::AcceptReferral(ReferralAccepted {
        referral_id: REFERRAL,
    });
    assert!(
        decide_now(
            &referred_tonight,
            &accept,
            summer_night + chrono::Duration::minutes(10)
        )
        .is_ok()
    );
    // 23:30 on 15 December (winter, the UK keeps UTC): the 16th is still to come.
    let winter_night = at("2026-12-15T23:30:00Z");
    assert!(decide_now(&open_case(), &assess_on("2026-12-15"), winter_night).is_ok());
    refused_on(
        decide_now(&open_case(), &assess_on("2026-12-16"), winter_night),
        "administered_on",
    );
    refused_on(
        decide_now(&[], &refer_on("2026-12-16"), winter_night),
        "referral.received_on",
    );
}

#[test]
fn no_fact_is_dated_before_1900() {
    let mut early = referral(REFERRAL);
    early.received_on = chrono::NaiveDate::from_ymd_opt(0, 1, 1).expect("year 0");
    let intake = |referral: ReferralReceived, client: Option<Box<ClientRegistered>>| {
        CaseCommand::Intake { client, referral }
    };
    refused_on(
        decide_at(
            &[],
            &intake(early, Some(Box::new(registered()))),
            None,
            None,
        ),
        "referral.received_on",
    );
    let mut ancient = registered();
    ancient.personal.date_of_birth = chrono::NaiveDate::from_ymd_opt(1899, 12, 31);
    refused_on(
        decide_at(
            &[],
            &intake(referral(REFERRAL), Some(Box::new(ancient.clone()))),
            None,
            None,
        ),
        "client.personal.date_of_birth",
    );
    let mut oldest = ancient;
    oldest.personal.date_of_birth = chrono::NaiveDate::from_ymd_opt(1900, 1, 1);
    assert!(
        decide_at(
            &[],
            &intake(referral(REFERRAL), Some(Box::new(oldest))),
            None,
            None
        )
        .is_ok()
    );
    let accept = CaseCommand::AcceptReferral(ReferralAccepted {
        referral_id: REFERRAL,
    });
    refused_on(
        decide_at(
            &referred(),
            &accept,
            Utc.with_ymd_and_hms(1899, 6, 1, 0, 0, 0).single(),
            None,
        ),
        "occurred_at",
    );
    // A correction to a date before 1900 is refused as the fact would have been.
    let given = open_case();
    let state = fold(&given);
    let received = given
        .iter()
        .position(|e| matches!(e, CaseEvent::ReferralReceived(_)))
        .expect("a referral");
    let corrected = CaseCommand::CorrectEntry(EntryCorrected {
        corrects: event_id(received as u128),
        corrected_fields: [("received_on".to_owned(), json!("1066-10-14"))]
            .into_iter()
            .collect(),
        reason: "typed the wrong year".to_owned(),
    });
    let outcome = decide(
        &state,
        &corrected,
        &Lookups {
            service: None,
            timing: None,
            corrected: Some(&given[received]),
            destinations: None,
            concern_categories: None,
            tags: None,
            destinations_needing_note: None,
        },
    );
    refused_on(outcome, "corrected_fields.received_on");
}

#[test]
fn demographics_are_recorded_for_a_registered_person_and_checked() {
    let registered = vec![CaseEvent::ClientRegistered(ClientRegistered {
        client_id: ClientId(id(1)),
        personal: PersonalDetails::named("Ada", "Lovelace"),
        area: "Frome".to_owned(),
    })];
    let recorded = |demographics: Demographics| {
        CaseCommand::RecordDemographics(DemographicsRecorded {
            demographics,
            reportable: ReportableDemographics::default(),
        })
    };
    let state = fold(&registered);
    let ok = decide_listed(
        &state,
        &recorded(Demographics {
            ethnic_category: Some(EthnicCategory::Indian),
            gp_practice: Some(" l85016".to_owned()),
            postcode: Some("ba11  1aa".to_owned()),
            ..Demographics::default()
        }),
    );
    // Kept in their usual forms.
    let Ok([CaseEvent::DemographicsRecorded(kept)]) = ok.as_deref() else {
        panic!("not recorded: {ok:?}");
    };
    assert_eq!(kept.demographics.gp_practice.as_deref(), Some("L85016"));
    assert_eq!(kept.demographics.postcode.as_deref(), Some("BA11 1AA"));
    let refused = |demographics: Demographics| {
        decide_listed(&state, &recorded(demographics))
            .map_err(|e| (e.rule(), e.field()))
            .err()
    };
    assert_eq!(
        refused(Demographics {
            gp_practice: Some("not a code".to_owned()),
            ..Demographics::default()
        }),
        Some(("invalid_field", Some("demographics.gp_practice")))
    );
    assert_eq!(
        refused(Demographics {
            postcode: Some("12345".to_owned()),
            ..Demographics::default()
        }),
        Some(("invalid_field", Some("demographics.postcode")))
    );
    assert_eq!(
        refused(Demographics {
            preferred_language: Some("  ".to_owned()),
            ..Demographics::default()
        }),
        Some(("invalid_field", Some("demographics.preferred_language")))
    );
    assert_eq!(
        decide_listed(&CaseState::default(), &recorded(Demographics::default()))
            .map_err(|e| e.rule())
            .err(),
        Some("not_registered")
    );
}

#[test]
fn the_nhs_ethnic_categories_serialise_as_their_codes_and_fall_in_their_groups() {
    let codes: Vec<String> = EthnicCategory::ALL.iter().map(code).collect();
    assert_eq!(codes.join(" "), "A B C D E F G H J K L M N P R S Z 99");
    let groups: Vec<String> = EthnicCategory::ALL
        .iter()
        .map(|c| code(&c.group()))
        .collect();
    assert_eq!(groups[0], "white");
    assert_eq!(groups[6], "mixed");
    assert_eq!(groups[10], "asian_or_asian_british");
    assert_eq!(groups[13], "black_or_black_british");
    assert_eq!(groups[14], "other_ethnic_group");
    assert_eq!(groups[16], "not_stated");
    assert_eq!(normalise_postcode("ba111aa").as_deref(), Some("BA11 1AA"));
    assert_eq!(normalise_postcode("BA11"), None);
}

/// A connection whose kind is corrected is held to the rules of a connection of that kind made
/// now (consent to share, a service taking referrals; never to signposting once the service has
/// answered), and the record follows the corrected kind: who may answer it is the corrected
/// kind's.
#[test]
fn a_connection_s_kind_corrected_is_held_to_that_kind_s_rules() {
    let consent = CaseEvent::ConsentRecorded(ConsentRecorded {
        scope: ConsentScope::ShareWithOnwardServices,
        services: vec![],
        channel: None,
    });
    let made = |kind| CaseEvent::OnwardConnectionMade(connection(kind));
    let to = |kind: &str| json!({ "kind": kind });
    let listed = listed_service();
    let field = |refused: Result<Vec<CaseEvent>, CaseError>| {
        refused.expect_err("refused").field().map(str::to_owned)
    };
    let kind_field = Some("corrected_fields.kind".to_owned());
    let answer = |given: &[CaseEvent]| {
        decide(
            &fold(given),
            &CaseCommand::AnswerConnection(provider::ProviderCommand::Accept(
                provider::ConnectionAcceptedByProvider {
                    connection_id: CONNECTION,
                },
            )),
            &Lookups::default(),
        )
        .map_err(|e| e.rule())
    };

    // Signposted, with no consent to share: not to a kind the service hears of.
    let signposted = with(open_case(), [made(ConnectionKind::Signposted)]);
    let at = signposted.len() - 1;
    for kind in ["referred", "warm_handover", "accompanied"] {
        let refused = correct_beside(&signposted, at, to(kind), Some(&listed));
        assert_eq!(field(refused), kind_field, "{kind}");
    }
    // With consent, to a listed service taking referrals: corrected, and the service may answer.
    let consented = with(
        open_case(),
        [consent.clone(), made(ConnectionKind::Signposted)],
    );
    let at = consented.len() - 1;
    assert_eq!(answer(&consented), Err("connection_not_shared"));
    let corrected = correct_beside(&consented, at, to("referred"), Some(&listed)).expect("ok");
    let now_referred = with(consented.clone(), corrected);
    assert_eq!(
        fold(&now_referred).connection_services.get(&CONNECTION),
        Some(&(SERVICE, ConnectionKind::Referred))
    );
    assert!(answer(&now_referred).is_ok());
    // A service closed to referrals, or none looked up: refused as making it would be.
    let closed = closed_to_referrals(listed.clone());
    assert_eq!(
        field(correct_beside(
            &consented,
            at,
            to("referred"),
            Some(&closed)
        )),
        kind_field
    );
    assert_eq!(
        field(correct_beside(&consented, at, to("referred"), None)),
        kind_field
    );

    // A referral corrected to signposting before the service answers: its service may no
    // longer answer it.
    let referred = with(open_case(), [consent, made(ConnectionKind::Referred)]);
    let at = referred.len() - 1;
    let corrected = correct_beside(&referred, at, to("signposted"), None).expect("ok");
    let now_signposted = with(referred.clone(), corrected);
    assert_eq!(answer(&now_signposted), Err("connection_not_shared"));
    // Once the service has answered, it was told of the person: not corrected to signposting.
    let answered = with(
        referred.clone(),
        [CaseEvent::ConnectionAcceptedByProvider(
            provider::ConnectionAcceptedByProvider {
                connection_id: CONNECTION,
            },
        )],
    );
    assert_eq!(
        field(correct_beside(&answered, at, to("signposted"), None)),
        kind_field
    );
    // Another field corrected leaves the kind's rules alone, consent withdrawn since or not.
    let withdrawn = with(
        referred,
        [CaseEvent::ConsentWithdrawn(ConsentWithdrawn {
            scope: ConsentScope::ShareWithOnwardServices,
        })],
    );
    assert!(correct_beside(&withdrawn, at, json!({ "need": "housing" }), None).is_ok());
}

/// An appointment is for a day from the first referral on (received 1 March 2026), within a
/// year of now (1 September 2026), and not at a time another still booked holds.
#[test]
fn an_appointment_is_booked_after_the_referral_within_a_year_and_once_a_time() {
    let book = |at: Option<chrono::DateTime<Utc>>| {
        CaseCommand::BookAppointment(AppointmentBooked {
            appointment_id: AppointmentId(uuid::Uuid::from_u128(0xb00c)),
            scheduled_for: at.expect("a time"),
            mode: ContactMode::Phone,
        })
    };
    let case = assigned_case();
    assert!(decide_at(&case, &book(on(9, 8)), None, None).is_ok());
    // Last week's, entered now, is taken; one before the referral is not.
    assert!(decide_at(&case, &book(on(8, 25)), None, None).is_ok());
    refused_on(
        decide_at(&case, &book(on(2, 27)), None, None),
        "scheduled_for",
    );
    // 366 days ahead (on the UK calendar, whatever the hour) is the furthest.
    let furthest = Utc.with_ymd_and_hms(2027, 9, 2, 22, 30, 0).single();
    assert!(decide_at(&case, &book(furthest), None, None).is_ok());
    let beyond = Utc.with_ymd_and_hms(2027, 9, 3, 9, 0, 0).single();
    refused_on(decide_at(&case, &book(beyond), None, None), "scheduled_for");
    let ten_years = Utc.with_ymd_and_hms(2036, 1, 1, 10, 0, 0).single();
    refused_on(
        decide_at(&case, &book(ten_years), None, None),
        "scheduled_for",
    );
    // The time of one still booked the same way is taken (another way is not: a call to
    // arrange a visit); once it is cancelled, it is free again.
    let booked_at = booked(ContactMode::Phone).scheduled_for;
    let holding = with(
        case,
        [CaseEvent::AppointmentBooked(booked(ContactMode::Phone))],
    );
    refused_on(
        decide_at(&holding, &book(Some(booked_at)), None, None),
        "scheduled_for",
    );
    let visit = CaseCommand::BookAppointment(AppointmentBooked {
        appointment_id: AppointmentId(uuid::Uuid::from_u128(0xb00d)),
        scheduled_for: booked_at,
        mode: ContactMode::HomeVisit,
    });
    assert!(decide_at(&holding, &visit, None, None).is_ok());
    let cancelled = with(
        holding,
        [CaseEvent::AppointmentCancelled(AppointmentCancelled {
            appointment_id: APPOINTMENT,
            cancelled_by: CancelledBy::Client,
            note: None,
        })],
    );
    assert!(decide_at(&cancelled, &book(Some(booked_at)), None, None).is_ok());
}

/// A redirection to a destination that says too little alone ("somewhere else") says where in
/// its note; other codes need none.
#[test]
fn a_redirection_somewhere_else_says_where_in_its_note() {
    let state = fold(&referred());
    let codes = vec!["gp_practice".to_owned(), "other".to_owned()];
    let needing = vec!["other".to_owned()];
    let redirect = |code: &str, note: Option<&str>| {
        decide(
            &state,
            &CaseCommand::RedirectReferral(ReferralRedirected {
                referral_id: REFERRAL,
                destination: Destination::Coded {
                    code: code.to_owned(),
                },
                note: note.map(str::to_owned),
            }),
            &Lookups {
                destinations: Some(&codes),
                destinations_needing_note: Some(&needing),
                ..Lookups::default()
            },
        )
        .map_err(|e| (e.rule(), e.field()))
    };
    assert!(redirect("gp_practice", None).is_ok());
    for note in [None, Some(""), Some("  ")] {
        assert_eq!(
            redirect("other", note),
            Err(("invalid_field", Some("note"))),
            "{note:?}"
        );
    }
    assert!(redirect("other", Some("Wells Foodbank, by phone")).is_ok());
}

/// A booking corrected is held to a booking's days: not to ten years ahead, nor to before the
/// referral.
#[test]
fn a_booking_corrected_is_held_to_a_bookings_days() {
    let case = with(
        assigned_case(),
        [CaseEvent::AppointmentBooked(booked(ContactMode::Phone))],
    );
    let booking = fold(&case)
        .appointment_events
        .keys()
        .next()
        .copied()
        .expect("the booking");
    let correct = |to: chrono::DateTime<Utc>| {
        let mut fields = serde_json::Map::new();
        fields.insert("scheduled_for".to_owned(), serde_json::json!(to));
        let command = CaseCommand::CorrectEntry(EntryCorrected {
            corrects: booking,
            corrected_fields: fields,
            reason: "typed wrong".to_owned(),
        });
        let state = fold(&case);
        let now = Utc
            .with_ymd_and_hms(2026, 9, 1, 12, 0, 0)
            .single()
            .expect("now");
        let timing = Timing::of(&command, None, now).expect("a timing");
        let original = CaseEvent::AppointmentBooked(booked(ContactMode::Phone));
        decide(
            &state,
            &command,
            &Lookups {
                timing: Some(&timing),
                corrected: Some(&original),
                ..Lookups::default()
            },
        )
        .map_err(|e| e.field().map(str::to_owned))
    };
    assert!(
        correct(
            Utc.with_ymd_and_hms(2026, 9, 8, 10, 0, 0)
                .single()
                .expect("a time")
        )
        .is_ok()
    );
    for to in [
        Utc.with_ymd_and_hms(2036, 1, 1, 10, 0, 0)
            .single()
            .expect("a time"),
        Utc.with_ymd_and_hms(2026, 2, 1, 10, 0, 0)
            .single()
            .expect("a time"),
    ] {
        assert_eq!(
            correct(to),
            Err(Some("corrected_fields.scheduled_for".to_owned())),
            "{to}"
        );
    }
}

/// A connection's waiting list is held to the weeks a directory service's own is (1 to 104).
#[test]
fn a_waiting_list_is_one_to_a_hundred_and_four_weeks() {
    let outcome = |weeks| {
        crate::decide::check_fact(&CaseEvent::ConnectionOutcomeRecorded(
            ConnectionOutcomeRecorded {
                connection_id: CONNECTION,
                outcome: ConnectionOutcome::WaitingList,
                waiting_weeks: Some(weeks),
            },
        ))
        .map_err(|e| e.field().map(str::to_owned))
    };
    assert_eq!(outcome(1), Ok(()));
    assert_eq!(outcome(104), Ok(()));
    for weeks in [0, 105, 500] {
        assert_eq!(
            outcome(weeks),
            Err(Some("waiting_weeks".to_owned())),
            "{weeks}"
        );
    }
}
