//! A service's answers to the connections made to it, as a table through one `check`.

use crate::testing::*;
use crate::*;

/// An open, assigned case with one connection of `kind` to [`SERVICE`].
fn connected(kind: ConnectionKind) -> Vec<CaseEvent> {
    with(
        assigned_case(),
        [CaseEvent::OnwardConnectionMade(connection(kind))],
    )
}

fn referred() -> Vec<CaseEvent> {
    connected(ConnectionKind::Referred)
}

fn accept() -> ConnectionAcceptedByProvider {
    ConnectionAcceptedByProvider {
        connection_id: CONNECTION,
    }
}

fn decline() -> ConnectionDeclinedByProvider {
    ConnectionDeclinedByProvider {
        connection_id: CONNECTION,
        reason: ProviderDeclineReason::NoCapacity,
    }
}

fn start(started: bool) -> ConnectionStartRecorded {
    ConnectionStartRecorded {
        connection_id: CONNECTION,
        started,
    }
}

/// Decides `command` on `given`; `Ok(())` is accepted with the command's one event (which
/// folds and round-trips through its stored encoding), `Err(rule)` refused with that rule. The
/// only place this module calls `decide`.
#[track_caller]
fn check(given: &[CaseEvent], command: ProviderCommand, expect: Result<(), &str>) {
    let state = fold(given);
    let outcome = decide(
        &state,
        &CaseCommand::AnswerConnection(command.clone()),
        &Lookups::default(),
    );
    match (expect, outcome) {
        (Ok(()), Ok(events)) => {
            assert_one_that_round_trips(&events);
            let expected = match command {
                ProviderCommand::Accept(c) => CaseEvent::ConnectionAcceptedByProvider(c),
                ProviderCommand::Decline(c) => CaseEvent::ConnectionDeclinedByProvider(c),
                ProviderCommand::RecordStart(c) => CaseEvent::ConnectionStartRecorded(c),
            };
            assert_eq!(events[0], expected);
            let folded = evolve(state, event_id(999), &events[0], moment());
            assert!(folded.provider_answers.contains_key(&CONNECTION));
        }
        (Err(rule), Err(error)) => {
            assert_eq!(error.rule(), rule, "{error}");
            assert_eq!(error.field(), field_of(rule), "{error}");
        }
        (Ok(()), Err(error)) => panic!("refused: {error} ({})", error.rule()),
        (Err(rule), Ok(events)) => panic!("expected {rule}, got {events:?}"),
    }
}

/// One row of a table: its name, the record, the answer, and the outcome.
type Row = (
    &'static str,
    Vec<CaseEvent>,
    ProviderCommand,
    Result<(), &'static str>,
);

/// Every row of `table` checked.
#[track_caller]
fn check_table(table: Vec<Row>) {
    for (name, given, command, expect) in table {
        eprintln!("case: {name}");
        check(&given, command, expect);
    }
}

/// The referred record, the connection accepted by the service.
fn accepted() -> Vec<CaseEvent> {
    with(
        referred(),
        [CaseEvent::ConnectionAcceptedByProvider(accept())],
    )
}

/// The referred record, the connection declined by the service.
fn declined() -> Vec<CaseEvent> {
    with(
        referred(),
        [CaseEvent::ConnectionDeclinedByProvider(decline())],
    )
}

fn field_of(rule: &str) -> Option<&'static str> {
    match rule {
        "not_registered" | "erased" => None,
        _ => Some("connection_id"),
    }
}

#[test]
fn a_service_accepts_or_declines_a_connection_once() {
    let (accepted, declined) = (accepted(), declined());
    let table: Vec<Row> = vec![
        (
            "accept a referral",
            referred(),
            ProviderCommand::Accept(accept()),
            Ok(()),
        ),
        (
            "decline with a reason",
            referred(),
            ProviderCommand::Decline(decline()),
            Ok(()),
        ),
        (
            "a warm handover is answered too",
            connected(ConnectionKind::WarmHandover),
            ProviderCommand::Accept(accept()),
            Ok(()),
        ),
        (
            "an accompanied visit is answered too",
            connected(ConnectionKind::Accompanied),
            ProviderCommand::Decline(decline()),
            Ok(()),
        ),
        (
            "a signposted person is not known to the service",
            connected(ConnectionKind::Signposted),
            ProviderCommand::Accept(accept()),
            Err("connection_not_shared"),
        ),
        (
            "accepted twice",
            accepted.clone(),
            ProviderCommand::Accept(accept()),
            Err("connection_already_answered"),
        ),
        (
            "declined after accepting",
            accepted.clone(),
            ProviderCommand::Decline(decline()),
            Err("connection_already_answered"),
        ),
        (
            "accepted after declining",
            declined.clone(),
            ProviderCommand::Accept(accept()),
            Err("connection_already_answered"),
        ),
        (
            "no such connection",
            referred()[..4].to_vec(),
            ProviderCommand::Accept(accept()),
            Err("unknown_connection"),
        ),
        (
            "nobody registered",
            vec![],
            ProviderCommand::Accept(accept()),
            Err("not_registered"),
        ),
        (
            "a closed case still takes the service's answer",
            with(referred(), [CaseEvent::CaseClosed(goals_met())]),
            ProviderCommand::Accept(accept()),
            Ok(()),
        ),
        (
            "an erased record takes nothing",
            with(
                referred(),
                [CaseEvent::ClientErased(ClientErased {
                    reason: "retention period ended".to_owned(),
                })],
            ),
            ProviderCommand::Accept(accept()),
            Err("erased"),
        ),
    ];
    check_table(table);
}

#[test]
fn whether_the_person_started_follows_an_acceptance_once() {
    let (accepted, declined) = (accepted(), declined());
    let started = with(
        accepted.clone(),
        [CaseEvent::ConnectionStartRecorded(start(true))],
    );
    let table: Vec<Row> = vec![
        (
            "started after accepting",
            accepted.clone(),
            ProviderCommand::RecordStart(start(true)),
            Ok(()),
        ),
        (
            "did not start after accepting",
            accepted.clone(),
            ProviderCommand::RecordStart(start(false)),
            Ok(()),
        ),
        (
            "not yet answered",
            referred(),
            ProviderCommand::RecordStart(start(true)),
            Err("connection_not_accepted"),
        ),
        (
            "declined",
            declined,
            ProviderCommand::RecordStart(start(true)),
            Err("connection_not_accepted"),
        ),
        (
            "said twice",
            started.clone(),
            ProviderCommand::RecordStart(start(false)),
            Err("connection_already_answered"),
        ),
        (
            "accepting again after the start",
            started,
            ProviderCommand::Accept(accept()),
            Err("connection_already_answered"),
        ),
    ];
    check_table(table);
}

#[test]
fn the_answer_folds_into_the_record() {
    let state = fold(&with(
        referred(),
        [
            CaseEvent::ConnectionAcceptedByProvider(accept()),
            CaseEvent::ConnectionStartRecorded(start(false)),
        ],
    ));
    assert_eq!(
        state.provider_answers.get(&CONNECTION),
        Some(&ProviderAnswer::NotStarted)
    );
    assert_eq!(
        state.connection_services.get(&CONNECTION),
        Some(&(SERVICE, ConnectionKind::Referred))
    );
}

#[test]
fn a_services_answer_is_not_corrected_by_the_service_that_connected() {
    // The acceptance is the record's sixth event (ids count from 1).
    let state = fold(&with(
        referred(),
        [CaseEvent::ConnectionAcceptedByProvider(accept())],
    ));
    let correct = |n: u128| {
        let mut fields = serde_json::Map::new();
        fields.insert("note".to_owned(), serde_json::json!("typed wrong"));
        CaseCommand::CorrectEntry(EntryCorrected {
            corrects: event_id(n),
            corrected_fields: fields,
            reason: "typo".to_owned(),
        })
    };
    let refused = decide(&state, &correct(6), &Lookups::default()).expect_err("refused");
    assert_eq!(
        (refused.rule(), refused.field()),
        ("invalid_field", Some("corrects"))
    );
    assert!(
        refused.to_string().contains("a service's answer"),
        "{refused}"
    );
}
