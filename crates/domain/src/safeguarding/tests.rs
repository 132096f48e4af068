//! The rules of case notes and safeguarding concerns, as tables through one `check`.

use serde_json::{Map, json};

use crate::testing::*;
use crate::*;

const NOTE: NoteId = NoteId(uuid::Uuid::from_u128(70));
const CONCERN: ConcernId = ConcernId(uuid::Uuid::from_u128(71));

fn categories() -> Vec<String> {
    vec!["self_neglect".to_owned(), "domestic_abuse".to_owned()]
}

fn registered_only() -> Vec<CaseEvent> {
    vec![CaseEvent::ClientRegistered(registered())]
}

/// Decides `command` on `given` with the category list; `Ok(rule)` is accepted, `Err(rule)`
/// refused with that rule. The only place this module calls `decide`.
#[track_caller]
fn check(given: &[CaseEvent], command: CaseCommand, expect: Result<(), &str>) {
    let codes = categories();
    let state = fold(given);
    let outcome = decide(
        &state,
        &command,
        &Lookups {
            concern_categories: Some(&codes),
            ..Lookups::default()
        },
    );
    match (expect, outcome) {
        (Ok(()), Ok(events)) => {
            assert_one_that_round_trips(&events);
        }
        (Err(rule), Err(error)) => assert_eq!(error.rule(), rule, "{error}"),
        (Ok(()), Err(error)) => panic!("refused: {error} ({})", error.rule()),
        (Err(rule), Ok(events)) => panic!("expected {rule}, got {events:?}"),
    }
}

fn note(important: bool) -> NoteAdded {
    NoteAdded {
        note_id: NOTE,
        text: "Prefers calls after 2pm".to_owned(),
        important,
    }
}

fn concern() -> SafeguardingConcernRaised {
    SafeguardingConcernRaised {
        concern_id: CONCERN,
        category: "self_neglect".to_owned(),
        details: "No heating, little food in the house".to_owned(),
        told: "Safeguarding lead, then the adult social care duty team".to_owned(),
        told_at: moment(),
        outcome: None,
    }
}

fn closed() -> SafeguardingConcernClosed {
    SafeguardingConcernClosed {
        concern_id: CONCERN,
        reason: "Heating mended; care package in place".to_owned(),
    }
}

#[test]
fn notes_are_written_pinned_and_unpinned() {
    let pin = || CaseCommand::PinNote(NotePinned { note_id: NOTE });
    let unpin = || CaseCommand::UnpinNote(NoteUnpinned { note_id: NOTE });
    let added = |important| with(registered_only(), [CaseEvent::NoteAdded(note(important))]);
    check(
        &[],
        CaseCommand::AddNote(note(false)),
        Err("not_registered"),
    );
    check(&registered_only(), CaseCommand::AddNote(note(true)), Ok(()));
    check(
        &added(false),
        CaseCommand::AddNote(note(false)),
        Err("duplicate_id"),
    );
    let mut blank = note(false);
    blank.text = "  ".to_owned();
    check(
        &registered_only(),
        CaseCommand::AddNote(blank),
        Err("invalid_field"),
    );
    let mut long = note(false);
    long.text = "x".repeat(NOTE_TEXT_LIMIT + 1);
    check(
        &registered_only(),
        CaseCommand::AddNote(long),
        Err("invalid_field"),
    );
    check(&registered_only(), pin(), Err("unknown_note"));
    check(&added(false), pin(), Ok(()));
    check(&added(true), pin(), Err("note_already_pinned"));
    check(&added(false), unpin(), Err("note_not_pinned"));
    check(&added(true), unpin(), Ok(()));
    let unpinned = with(
        added(true),
        [CaseEvent::NoteUnpinned(NoteUnpinned { note_id: NOTE })],
    );
    assert_eq!(fold(&unpinned).notes.get(&NOTE), Some(&false));
    check(&unpinned, pin(), Ok(()));
}

#[test]
fn a_concern_is_raised_in_a_listed_category_updated_and_closed_once() {
    let raised = with(
        registered_only(),
        [CaseEvent::SafeguardingConcernRaised(concern())],
    );
    check(
        &[],
        CaseCommand::RaiseConcern(concern()),
        Err("not_registered"),
    );
    check(
        &registered_only(),
        CaseCommand::RaiseConcern(concern()),
        Ok(()),
    );
    check(
        &raised,
        CaseCommand::RaiseConcern(concern()),
        Err("duplicate_id"),
    );
    let mut unlisted = concern();
    unlisted.category = "burglary".to_owned();
    check(
        &registered_only(),
        CaseCommand::RaiseConcern(unlisted),
        Err("invalid_field"),
    );
    for blank in ["details", "told"] {
        let mut c = concern();
        match blank {
            "details" => c.details = " ".to_owned(),
            _ => c.told = String::new(),
        }
        check(
            &registered_only(),
            CaseCommand::RaiseConcern(c),
            Err("invalid_field"),
        );
    }
    let update = |told: Option<&str>, told_at, outcome: Option<&str>| {
        CaseCommand::UpdateConcern(SafeguardingConcernUpdated {
            concern_id: CONCERN,
            told: told.map(str::to_owned),
            told_at,
            outcome: outcome.map(str::to_owned),
        })
    };
    check(&raised, update(None, None, Some("Visit on Friday")), Ok(()));
    check(&raised, update(Some("GP"), Some(moment()), None), Ok(()));
    check(&raised, update(None, None, None), Err("invalid_field"));
    check(
        &raised,
        update(Some("GP"), None, None),
        Err("invalid_field"),
    );
    check(
        &raised,
        update(None, Some(moment()), Some("x")),
        Err("invalid_field"),
    );
    check(
        &registered_only(),
        update(None, None, Some("x")),
        Err("unknown_concern"),
    );
    check(&raised, CaseCommand::CloseConcern(closed()), Ok(()));
    let mut no_reason = closed();
    no_reason.reason = " ".to_owned();
    check(
        &raised,
        CaseCommand::CloseConcern(no_reason),
        Err("invalid_field"),
    );
    let ended = with(
        raised.clone(),
        [CaseEvent::SafeguardingConcernClosed(closed())],
    );
    assert_eq!(fold(&raised).concerns.get(&CONCERN), Some(&true));
    assert_eq!(fold(&ended).concerns.get(&CONCERN), Some(&false));
    check(
        &ended,
        CaseCommand::CloseConcern(closed()),
        Err("concern_closed"),
    );
    check(&ended, update(None, None, Some("x")), Err("concern_closed"));
}

#[test]
fn a_concern_is_never_corrected_but_a_note_is() {
    let given = with(
        registered_only(),
        [
            CaseEvent::SafeguardingConcernRaised(concern()),
            CaseEvent::SafeguardingConcernUpdated(SafeguardingConcernUpdated {
                concern_id: CONCERN,
                told: None,
                told_at: None,
                outcome: Some("Visit booked".to_owned()),
            }),
            CaseEvent::SafeguardingConcernClosed(closed()),
            CaseEvent::NoteAdded(note(false)),
        ],
    );
    let correct = |n: u128, field: &str| {
        let mut fields = Map::new();
        fields.insert(field.to_owned(), json!("typed wrong"));
        CaseCommand::CorrectEntry(EntryCorrected {
            corrects: event_id(n),
            corrected_fields: fields,
            reason: "typed on the wrong record".to_owned(),
        })
    };
    // Events 2, 3 and 4 are the concern's: raised, updated, closed.
    check(
        &given,
        correct(2, "details"),
        Err("safeguarding_not_correctable"),
    );
    check(
        &given,
        correct(3, "outcome"),
        Err("safeguarding_not_correctable"),
    );
    check(
        &given,
        correct(4, "reason"),
        Err("safeguarding_not_correctable"),
    );
    check(&given, correct(5, "text"), Ok(()));
}

#[test]
fn nobody_is_told_in_the_future() {
    let mut later = concern();
    later.told_at = moment() + chrono::Duration::hours(1);
    let command = CaseCommand::RaiseConcern(later);
    let error = command.check_dates(moment()).expect_err("refused");
    assert_eq!(error.field(), Some("told_at"));
    assert!(
        CaseCommand::RaiseConcern(concern())
            .check_dates(moment())
            .is_ok()
    );
}
