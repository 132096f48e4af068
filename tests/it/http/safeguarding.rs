//! Case notes and safeguarding over HTTP, against the real database: notes sealed at rest,
//! important ones first, gone with the person's erasure; a concern's risk flag on the record and
//! the caseload for everyone working the case, never corrected away, closed only by a team lead
//! with a reason, and every read of it in the read audit.

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use super::TestServer;
use super::journey::{client_path, open_case};

const NOTE_TEXT: &str = "Dog is nervous with strangers; knock twice zq7wy";
const PINNED_TEXT: &str = "Hard of hearing: face her when speaking zq8wy";
const CONCERN_DETAILS: &str = "No heating and little food in the house zq9wy";

fn note(note_id: Uuid, text: &str, important: bool) -> Value {
    json!({ "note_id": note_id, "text": text, "important": important })
}

fn concern(concern_id: Uuid) -> Value {
    json!({
        "concern_id": concern_id, "category": "self_neglect", "details": CONCERN_DETAILS,
        "told": "Safeguarding lead, then the duty team", "told_at": Utc::now().to_rfc3339(),
        "outcome": null
    })
}

#[tokio::test]
async fn notes_are_sealed_shown_important_first_and_gone_after_erasure() {
    let server = TestServer::start().await;
    let people = &server.people;
    let client = open_case(&server).await;
    let on = server.on(client);
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    on.ok(&people.worker, "notes", note(first, NOTE_TEXT, false))
        .await;
    on.ok(&people.lead, "notes", note(second, PINNED_TEXT, false))
        .await;
    // Pinning the older note puts it first; pinning it again is refused by name.
    on.ok(&people.worker, "note-pins", json!({ "note_id": first }))
        .await;
    let again = on
        .post(&people.worker, "note-pins", json!({ "note_id": first }))
        .await;
    assert_eq!(again.status, 422, "{:#}", again.body);
    assert_eq!(again.body["rule"], "note_already_pinned");
    assert_eq!(again.body["errors"][0]["field"], "note_id");
    let unknown = on
        .post(
            &people.worker,
            "note-unpins",
            json!({ "note_id": Uuid::new_v4() }),
        )
        .await;
    assert_eq!(unknown.body["rule"], "unknown_note", "{:#}", unknown.body);
    let blank = on
        .post(&people.worker, "notes", note(Uuid::new_v4(), "  ", false))
        .await;
    blank.refused_at(422, "text");

    let record = server
        .read(&people.worker, &client_path(client, ""))
        .await
        .body;
    let notes = record["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0]["note_id"], json!(first));
    assert_eq!(notes[0]["important"], true);
    assert_eq!(notes[0]["text"], NOTE_TEXT);
    assert_eq!(notes[0]["written_by"], json!(people.worker.staff_id));
    assert_eq!(notes[1]["text"], PINNED_TEXT);
    assert_eq!(notes[1]["important"], false);

    // At rest the text is sealed: no table holds it readable.
    let marker = |text: &str| text.contains("zq7wy") || text.contains("zq8wy");
    for (table, text) in crate::privacy::every_table(&server).await {
        assert!(!marker(&text), "a note is readable in {table}");
    }
    let stored: Value = testkit::query_value(
        &server.db.admin_client().await,
        "SELECT payload FROM events WHERE stream_id = $1 AND event_type = 'NoteAdded' LIMIT 1",
        &[&client],
    )
    .await;
    assert!(stored["text"][eventstore::SEALED].is_string(), "{stored:#}");

    // Erased with the person, through the real erasure path.
    on.ok(
        &people.admin,
        "erasure",
        json!({ "reason": "erasure request ref 12" }),
    )
    .await;
    let erased = server
        .read(&people.auditor, &client_path(client, ""))
        .await
        .body;
    assert_eq!(erased["erased"], true);
    let notes = erased["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 2, "the notes stay, unreadable");
    for n in notes {
        assert_eq!(n["text"], domain::ERASED);
    }
    let journey = server
        .read(
            &people.auditor,
            &format!("{}?limit=500", client_path(client, "journey")),
        )
        .await;
    assert!(
        !marker(&journey.body.to_string()),
        "a note is in the journey"
    );
    // Nothing more is written on an erased record.
    let late = on
        .post(&people.worker, "notes", note(Uuid::new_v4(), "more", false))
        .await;
    assert_eq!(late.body["rule"], "erased", "{:#}", late.body);
    server.stop().await;
}

#[tokio::test]
async fn a_concern_flags_the_record_and_caseload_is_never_corrected_and_closes_with_a_reason() {
    let server = TestServer::start().await;
    let people = &server.people;
    let client = open_case(&server).await;
    let on = server.on(client);
    let concern_id = Uuid::new_v4();
    let mut unlisted = concern(Uuid::new_v4());
    unlisted["category"] = json!("burglary");
    let refused = on
        .post(&people.worker, "safeguarding-concerns", unlisted)
        .await;
    refused.refused_at(422, "category");
    let mut future = concern(Uuid::new_v4());
    future["told_at"] = json!((Utc::now() + chrono::Duration::days(2)).to_rfc3339());
    let refused = on
        .post(&people.worker, "safeguarding-concerns", future)
        .await;
    refused.refused_at(422, "told_at");

    on.ok(&people.worker, "safeguarding-concerns", concern(concern_id))
        .await;
    let update = json!({
        "concern_id": concern_id, "told": "GP", "told_at": Utc::now().to_rfc3339(),
        "outcome": "Visit on Friday"
    });
    on.ok(&people.worker, "safeguarding-concern-updates", update)
        .await;

    // Everyone working the case sees the risk, the auditor too; another organisation nothing.
    for who in [&people.worker, &people.lead, &people.auditor] {
        let record = server.read(who, &client_path(client, "")).await.body;
        assert_eq!(record["at_risk"], true);
        let concerns = record["safeguarding_concerns"]
            .as_array()
            .expect("concerns");
        assert_eq!(concerns.len(), 1);
        assert_eq!(concerns[0]["details"], CONCERN_DETAILS);
        assert_eq!(concerns[0]["category_name"], "Self-neglect");
        assert_eq!(concerns[0]["outcome"], "Visit on Friday");
        assert_eq!(concerns[0]["updates"][0]["told"], "GP");
    }
    for who in [&people.foreign_lead, &people.foreign_auditor] {
        let reply = server.get(who, &client_path(client, "")).await;
        assert_eq!(reply.status, 404);
    }
    assert_eq!(
        server
            .get(&people.worker2, &client_path(client, ""))
            .await
            .status,
        403
    );

    // The caseload flags it.
    server.catch_up().await;
    let flags = |caseload: &Value| {
        caseload["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["client_id"] == json!(client))
            .map(|i| i["flags"].clone())
            .expect("the case is on the caseload")
    };
    let mine = server.read(&people.worker, "/api/v1/caseload").await.body;
    assert!(
        flags(&mine)
            .as_array()
            .expect("flags")
            .contains(&json!("safeguarding"))
    );
    let team = format!(
        "/api/v1/teams/{}/caseload",
        people.lead.team_id.expect("a team")
    );
    let theirs = server.read(&people.lead, &team).await.body;
    assert!(
        flags(&theirs)
            .as_array()
            .expect("flags")
            .contains(&json!("safeguarding"))
    );

    // A correction cannot erase it, whatever it names.
    let raised = server.event_id(&client, "SafeguardingConcernRaised").await;
    let corrected = json!({
        "corrects": raised, "corrected_fields": { "details": "nothing" }, "reason": "wrong record"
    });
    let correction = on.post(&people.lead, "corrections", corrected).await;
    assert_eq!(correction.status, 422, "{:#}", correction.body);
    assert_eq!(correction.body["rule"], "safeguarding_not_correctable");
    assert_eq!(correction.body["errors"][0]["field"], "corrects");

    // Only a team lead closes it, and only with a reason.
    let close = |reason: &str| json!({ "concern_id": concern_id, "reason": reason });
    let by_worker = on
        .post(
            &people.worker,
            "safeguarding-concern-closures",
            close("done"),
        )
        .await;
    assert_eq!(by_worker.status, 403);
    let no_reason = on
        .post(&people.lead, "safeguarding-concern-closures", close(" "))
        .await;
    no_reason.refused_at(422, "reason");
    on.ok(
        &people.lead,
        "safeguarding-concern-closures",
        close("Heating mended; care package in place"),
    )
    .await;
    let twice = on
        .post(
            &people.lead,
            "safeguarding-concern-closures",
            close("again"),
        )
        .await;
    assert_eq!(twice.body["rule"], "concern_closed", "{:#}", twice.body);
    let record = server
        .read(&people.worker, &client_path(client, ""))
        .await
        .body;
    assert_eq!(record["at_risk"], false);
    let closed = &record["safeguarding_concerns"][0];
    assert_eq!(closed["open"], false);
    assert_eq!(
        closed["closure_reason"],
        "Heating mended; care package in place"
    );
    assert_eq!(closed["closed_by"], json!(people.lead.staff_id));
    server.catch_up().await;
    let mine = server.read(&people.worker, "/api/v1/caseload").await.body;
    assert!(
        !flags(&mine)
            .as_array()
            .expect("flags")
            .contains(&json!("safeguarding"))
    );

    // Who read it is in the read audit: the worker's, the lead's and the auditor's reads.
    let reads = server
        .read(
            &people.auditor,
            &format!("{}?limit=200", client_path(client, "reads")),
        )
        .await
        .body;
    let readers: Vec<&Value> = reads["items"]
        .as_array()
        .expect("reads")
        .iter()
        .filter(|r| r["view"] == "record")
        .map(|r| &r["staff_id"])
        .collect();
    for who in [&people.worker, &people.lead, &people.auditor] {
        assert!(readers.contains(&&json!(who.staff_id)), "{readers:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_console_raises_a_concern_shows_the_risk_flag_and_keeps_notes() {
    use super::console::{get, hidden, post_page, sign_in};
    let server = TestServer::start().await;
    let people = &server.people;
    let client = open_case(&server).await;
    let person = format!("/console/people/{client}");
    let worker = sign_in(&server, &people.worker).await;
    let (status, page) = get(&server, &worker, &person).await;
    assert_eq!(status, 200);
    assert!(page.contains("No safeguarding concern has been raised."));
    assert!(!page.contains("id=\"risk-flag\""));

    // The form: refused with what to put right (422), then raised (303 with a banner).
    let (status, form) = get(&server, &worker, &format!("{person}/safeguarding/new")).await;
    assert_eq!(status, 200, "{form}");
    let csrf = hidden(&form, "csrf");
    let concern_id = hidden(&form, "concern_id");
    let fields = |category: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("concern_id", concern_id.clone()),
            ("category", category.to_owned()),
            ("details", CONCERN_DETAILS.to_owned()),
            ("told", "Safeguarding lead".to_owned()),
            ("told_at_date", Utc::now().format("%Y-%m-%d").to_string()),
            ("told_at_time", "00:00".to_owned()),
        ]
    };
    let raising = format!("{person}/safeguarding");
    let raise =
        async |sent: &[(&str, &str)]| post_page(&server, &worker, &raising, None, sent).await;
    let refused = fields("");
    let refused: Vec<(&str, &str)> = refused.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = raise(&refused).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("Select the category"), "{body}");
    assert!(body.contains(CONCERN_DETAILS), "what was typed is kept");
    let sent = fields("self_neglect");
    let sent: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = raise(&sent).await;
    assert_eq!(status, 303, "{body}");
    // Sent twice (the same drawn id), it is raised once.
    let (status, _) = raise(&sent).await;
    assert_eq!(status, 303);
    let record = server
        .read(&people.auditor, &client_path(client, ""))
        .await
        .body;
    assert_eq!(
        record["safeguarding_concerns"].as_array().map(Vec::len),
        Some(1)
    );

    let (_, page) = get(&server, &worker, &format!("{person}?done=concern")).await;
    assert!(page.contains("Safeguarding concern raised"));
    assert!(page.contains("id=\"risk-flag\""));
    assert!(page.contains(CONCERN_DETAILS));
    assert!(page.contains("Add to this concern"));
    assert!(
        !page.contains("Close this concern"),
        "a link worker does not close it"
    );
    let lead = sign_in(&server, &people.lead).await;
    let (_, page) = get(&server, &lead, &person).await;
    assert!(page.contains("Close this concern"));

    // The caseload shows the flag.
    server.catch_up().await;
    let (_, caseload) = get(&server, &worker, "/console/caseload").await;
    assert!(caseload.contains("Safeguarding concern open"), "{caseload}");

    // A note, pinned from the start.
    let (_, form) = get(&server, &worker, &format!("{person}/notes/new")).await;
    let note_form = [
        ("csrf", csrf.as_str()),
        ("note_id", &hidden(&form, "note_id")),
        ("text", NOTE_TEXT),
        ("important", "yes"),
    ];
    let (status, body) = post_page(
        &server,
        &worker,
        &format!("{person}/notes"),
        None,
        &note_form,
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let (_, page) = get(&server, &worker, &person).await;
    assert!(page.contains(NOTE_TEXT));
    assert!(page.contains("Unpin"));

    // Another organisation's worker finds no such person.
    let foreign = sign_in(&server, &people.foreign_worker).await;
    for path in [
        format!("{person}/safeguarding/new"),
        format!("{person}/notes/new"),
    ] {
        assert_eq!(get(&server, &foreign, &path).await.0, 404, "{path}");
    }
    server.stop().await;
}
