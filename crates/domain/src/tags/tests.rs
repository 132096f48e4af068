//! The rules of tags, as tables through one `check`.

use serde_json::{Map, json};

use crate::testing::*;
use crate::*;

fn codes() -> Vec<String> {
    vec!["housing-priority".to_owned(), "carer".to_owned()]
}

fn tagged(tag: &str) -> CaseEvent {
    CaseEvent::CaseTagged(CaseTagged {
        tag: tag.to_owned(),
    })
}

fn untagged(tag: &str) -> CaseEvent {
    CaseEvent::CaseUntagged(CaseUntagged {
        tag: tag.to_owned(),
    })
}

fn tag(tag: &str) -> CaseCommand {
    CaseCommand::TagCase(CaseTagged {
        tag: tag.to_owned(),
    })
}

fn untag(tag: &str) -> CaseCommand {
    CaseCommand::UntagCase(CaseUntagged {
        tag: tag.to_owned(),
    })
}

/// Decides `command` on `given` with the tag list; `Ok(event)` is the one event written,
/// `Err((rule, field))` a refusal. The only place this module calls `decide`.
#[track_caller]
fn check(
    given: &[CaseEvent],
    command: CaseCommand,
    expect: Result<CaseEvent, (&str, Option<&str>)>,
) {
    let tags = codes();
    let state = fold(given);
    let outcome = decide(
        &state,
        &command,
        &Lookups {
            tags: Some(&tags),
            ..Lookups::default()
        },
    );
    match (expect, outcome) {
        (Ok(expected), Ok(events)) => assert_eq!(events, vec![expected]),
        (Err((rule, field)), Err(error)) => {
            assert_eq!((error.rule(), error.field()), (rule, field), "{error}")
        }
        (Ok(_), Err(error)) => panic!("refused: {error} ({})", error.rule()),
        (Err((rule, _)), Ok(events)) => panic!("expected {rule}, got {events:?}"),
    }
}

#[test]
fn a_tag_of_the_list_goes_on_once_and_comes_off_once() {
    let registered = vec![CaseEvent::ClientRegistered(registered())];
    let with = |more: &[CaseEvent]| {
        let mut events = registered.clone();
        events.extend_from_slice(more);
        events
    };
    check(&[], tag("carer"), Err(("not_registered", None)));
    check(&registered, tag("carer"), Ok(tagged("carer")));
    check(&registered, tag("vip"), Err(("invalid_field", Some("tag"))));
    check(
        &with(&[tagged("carer")]),
        tag("carer"),
        Err(("tag_already_on", Some("tag"))),
    );
    check(
        &with(&[tagged("carer")]),
        tag("housing-priority"),
        Ok(tagged("housing-priority")),
    );
    check(
        &registered,
        untag("carer"),
        Err(("tag_not_on", Some("tag"))),
    );
    check(
        &with(&[tagged("carer")]),
        untag("carer"),
        Ok(untagged("carer")),
    );
    check(
        &with(&[tagged("carer"), untagged("carer")]),
        untag("carer"),
        Err(("tag_not_on", Some("tag"))),
    );
    check(
        &with(&[tagged("carer"), untagged("carer")]),
        tag("carer"),
        Ok(tagged("carer")),
    );
    // A tag the list no longer has still comes off.
    check(
        &with(&[tagged("retired")]),
        untag("retired"),
        Ok(untagged("retired")),
    );
}

#[test]
fn an_erased_record_takes_no_tag() {
    let erased = vec![
        CaseEvent::ClientRegistered(registered()),
        CaseEvent::ClientErased(ClientErased {
            reason: "retention period ended".to_owned(),
        }),
    ];
    check(&erased, tag("carer"), Err(("erased", None)));
}

#[test]
fn a_tag_is_never_corrected() {
    let given = vec![CaseEvent::ClientRegistered(registered()), tagged("carer")];
    let mut fields = Map::new();
    fields.insert("tag".to_owned(), json!("housing-priority"));
    check(
        &given,
        CaseCommand::CorrectEntry(EntryCorrected {
            corrects: event_id(2),
            corrected_fields: fields,
            reason: "wrong tag".to_owned(),
        }),
        Err(("invalid_field", Some("corrects"))),
    );
}
