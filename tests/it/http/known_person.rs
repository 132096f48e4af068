//! A referral of someone new through the API whose NHS number a record of the organisation
//! already holds goes on that record (`app::intake`): one person, one record. Staff hear where
//! it went; a referrer is answered alike whether the person was known or not, and follows the
//! referral by the client id it chose.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use uuid::Uuid;

use super::journey::{client_path, intake};
use super::{Person, Reply, TestServer};

/// A referral (from a GP) of someone new with `nhs` and the given name `given`.
fn referral_of(referral: Uuid, nhs: &str, given: &str) -> Value {
    let mut body = intake(referral, "gp");
    body["client"]["personal"]["nhs_number"] = json!(nhs);
    body["client"]["personal"]["given_name"] = json!(given);
    body
}

/// `who` refers someone new under `client` with `body` and an `Idempotency-Key` `key` (if
/// any); the reply, whatever its status.
async fn refer(
    server: &TestServer,
    who: &Person,
    client: Uuid,
    body: &Value,
    key: Option<&str>,
) -> Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    server
        .call(
            Some(who),
            "POST",
            &client_path(client, "referrals"),
            Some(body),
            &headers,
        )
        .await
}

/// The known-and-declined person's record once a second referral has gone to it.
const REFERRED_AGAIN_AFTER_A_DECLINE: [&str; 4] = [
    "ClientRegistered",
    "ReferralReceived",
    "ReferralDeclined",
    "ReferralReceived",
];

fn keys(body: &Value) -> BTreeSet<String> {
    body.as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

/// The lead declines `referral` on `client`, so that the person may be referred again.
pub(super) async fn decline(server: &TestServer, client: Uuid, referral: Uuid) {
    server
        .ok(
            &server.people.lead,
            &client_path(client, "referral-declines"),
            json!({ "referral_id": referral, "reason": "client_declined", "note": null }),
        )
        .await;
}

/// A person known to the organisation by `nhs`: referred by `who` (as someone new), then
/// declined by the lead, so that a referral of them is taken again. Their record's id.
async fn known_and_declined(server: &TestServer, who: &Person, nhs: &str) -> Uuid {
    let (record, first) = (Uuid::new_v4(), Uuid::new_v4());
    let made = refer(
        server,
        who,
        record,
        &referral_of(first, nhs, "Maggie"),
        None,
    )
    .await;
    assert_eq!(made.status, 201, "{:#}", made.body);
    assert_eq!(made.body.get("referred_as"), None, "someone new");
    decline(server, record, first).await;
    record
}

/// The records of the organisation of `who` holding `nhs` now.
async fn records_holding(server: &TestServer, who: &Person, nhs: &str) -> Vec<Uuid> {
    let number = domain::NhsNumber::parse(nhs).expect("a valid NHS number");
    let tag = app::matching::nhs_number_tag(&server.store, who.organisation_id, &number)
        .await
        .expect("a tag")
        .expect("a sealing store");
    server
        .store
        .streams_tagged(&tag)
        .await
        .expect("the records")
}

#[tokio::test]
async fn a_referrer_referring_a_known_person_is_answered_as_for_someone_new_and_follows_it() {
    const KNOWN: &str = "9990000018";
    const NEW: &str = "9990000026";
    let server = TestServer::start().await;
    let people = server.people.clone();
    let referrer = &people.referrer;

    // The person is known: referred by the lead, declined (so a referral is taken again).
    let record = known_and_declined(&server, &people.lead, KNOWN).await;

    // While the known record would take a referral: what would refuse the referral of someone
    // unknown refuses it alike for the known person, first refusal first (not their details
    // dropped because the record holds its own), for the referrer and for staff; nothing is
    // written.
    let refused_alike = |nhs: &str, broken: &dyn Fn(&mut Value)| {
        let mut body = referral_of(Uuid::new_v4(), nhs, "Maggie");
        broken(&mut body);
        body
    };
    let ancient = |body: &mut Value| {
        body["client"]["personal"]["date_of_birth"] = json!("1899-12-31");
    };
    let misnamed_and_ancient = |body: &mut Value| {
        ancient(body);
        body["referral"]["referrer"]["staff_id"] = json!(people.worker.staff_id);
    };
    for (who, broken, field) in [
        (
            referrer,
            &ancient as &dyn Fn(&mut Value),
            "client.personal.date_of_birth",
        ),
        (
            referrer,
            &misnamed_and_ancient,
            "referral.referrer.staff_id",
        ),
        (&people.lead, &ancient, "client.personal.date_of_birth"),
    ] {
        for nhs in [KNOWN, "9990000042"] {
            let refused = refer(
                &server,
                who,
                Uuid::new_v4(),
                &refused_alike(nhs, broken),
                None,
            )
            .await;
            refused.refused_at(422, field);
        }
    }
    assert_eq!(server.journey_types(record).await.len(), 3);

    // The referrer refers someone new, then the known person (under another name), each under
    // an id of their choosing.
    let (new_client, new_referral) = (Uuid::new_v4(), Uuid::new_v4());
    let new_body = referral_of(new_referral, NEW, "Ada");
    let to_new = refer(&server, referrer, new_client, &new_body, Some("new-1")).await;
    let (chosen, referral) = (Uuid::new_v4(), Uuid::new_v4());
    let known_body = referral_of(referral, KNOWN, "Margaret");
    let to_known = refer(&server, referrer, chosen, &known_body, Some("known-1")).await;

    // Alike: the status, the headers that matter and the body's shape, each naming the ids the
    // referrer chose and where to follow the referral.
    for (reply, client, referral) in [
        (&to_new, new_client, new_referral),
        (&to_known, chosen, referral),
    ] {
        assert_eq!(reply.status, 201, "{:#}", reply.body);
        let follow = format!("/api/v1/clients/{client}/referrals/{referral}");
        assert_eq!(reply.header("location"), Some(follow.as_str()));
        assert_eq!(reply.body["client_id"], json!(client));
        assert_eq!(reply.body["referral_id"], json!(referral));
        assert_eq!(reply.body["follow_at"], json!(follow));
        assert_eq!(reply.header("etag"), None, "no version of any record");
        assert_eq!(reply.header("idempotent-replayed"), None);
    }
    assert_eq!(keys(&to_new.body), keys(&to_known.body));
    assert_eq!(
        to_new.header("content-type"),
        to_known.header("content-type")
    );
    let text = to_known.body.to_string();
    assert!(!text.contains(&record.to_string()), "{text}");

    // One record: the known person's, with both referrals; their details as recorded.
    assert_eq!(
        server.journey_types(record).await,
        REFERRED_AGAIN_AFTER_A_DECLINE
    );
    let none = server.get(&people.auditor, &client_path(chosen, "")).await;
    assert_eq!(none.status, 404, "no record under the id chosen");
    let held = server.get(&people.auditor, &client_path(record, "")).await;
    assert_eq!(held.status, 200, "{:#}", held.body);
    assert_eq!(held.body["personal"]["given_name"], "Maggie");
    assert_eq!(records_holding(&server, referrer, KNOWN).await, [record]);

    // The referrer follows each referral by the id they chose, alike.
    let follow_new = server
        .get(
            referrer,
            &format!("{}/{new_referral}", client_path(new_client, "referrals")),
        )
        .await;
    let follow_known = server
        .get(
            referrer,
            &format!("{}/{referral}", client_path(chosen, "referrals")),
        )
        .await;
    for (reply, client) in [(&follow_new, new_client), (&follow_known, chosen)] {
        assert_eq!(reply.status, 200, "{:#}", reply.body);
        assert_eq!(reply.body["client_id"], json!(client));
        assert_eq!(reply.body["status"], "pending");
    }
    assert_eq!(keys(&follow_new.body), keys(&follow_known.body));
    // Staff following it by the id chosen are told the record.
    let by_lead = server
        .get(
            &people.lead,
            &format!("{}/{referral}", client_path(chosen, "referrals")),
        )
        .await;
    assert_eq!(by_lead.status, 200, "{:#}", by_lead.body);
    assert_eq!(by_lead.body["client_id"], json!(record));
    // Another organisation's staff find nothing by it.
    let foreign = server
        .get(
            &people.foreign_lead,
            &format!("{}/{referral}", client_path(chosen, "referrals")),
        )
        .await;
    assert_eq!(foreign.status, 404, "{:#}", foreign.body);

    // The same request again: the first answer, said to be a replay, nothing written.
    let again_new = refer(&server, referrer, new_client, &new_body, Some("new-1")).await;
    let again_known = refer(&server, referrer, chosen, &known_body, Some("known-1")).await;
    for (again, first) in [(&again_new, &to_new), (&again_known, &to_known)] {
        assert_eq!(again.status, 201, "{:#}", again.body);
        assert_eq!(again.body, first.body);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.header("location"), first.header("location"));
    }
    assert_eq!(server.journey_types(record).await.len(), 4);
    // Its key again with another body: refused alike, naming the key as sent.
    let mut other_new = new_body.clone();
    other_new["referral"]["note"] = json!("changed");
    let mut other_known = known_body.clone();
    other_known["referral"]["note"] = json!("changed");
    let reused_new = refer(&server, referrer, new_client, &other_new, Some("new-1")).await;
    let reused_known = refer(&server, referrer, chosen, &other_known, Some("known-1")).await;
    assert!(reused_new.status >= 400, "{:#}", reused_new.body);
    assert_eq!(
        reused_known.status, reused_new.status,
        "{:#}",
        reused_known.body
    );
    let detail = |reply: &Reply, key: &str| {
        reply.body["detail"]
            .as_str()
            .expect("a detail")
            .replace(key, "KEY")
    };
    assert_eq!(
        detail(&reused_known, "known-1"),
        detail(&reused_new, "new-1")
    );
    assert_eq!(keys(&reused_known.body), keys(&reused_new.body));
    // Without its key, the request is refused alike: the id chosen is taken.
    let unkeyed_new = refer(&server, referrer, new_client, &new_body, None).await;
    let unkeyed_known = refer(&server, referrer, chosen, &known_body, None).await;
    assert_eq!(unkeyed_new.status, 403, "{:#}", unkeyed_new.body);
    assert_eq!(unkeyed_known.status, unkeyed_new.status);
    assert_eq!(unkeyed_known.body["detail"], unkeyed_new.body["detail"]);
    assert_eq!(server.journey_types(record).await.len(), 4);

    // The referral waits, so the known record takes no other. A referrer is not told so (that
    // would tell them who is a client): the person referred again is answered as someone new
    // is, and the referral is kept under the id they chose, a second record holding the number
    // (for the service to see). The known record is untouched.
    let (waiting_client, waiting_referral) = (Uuid::new_v4(), Uuid::new_v4());
    let waiting = refer(
        &server,
        referrer,
        waiting_client,
        &referral_of(waiting_referral, KNOWN, "Maggie"),
        Some("known-2"),
    )
    .await;
    assert_eq!(waiting.status, 201, "{:#}", waiting.body);
    assert_eq!(keys(&waiting.body), keys(&to_new.body));
    assert_eq!(waiting.body["client_id"], json!(waiting_client));
    assert_eq!(server.journey_types(record).await.len(), 4);
    assert_eq!(
        server.journey_types(waiting_client).await,
        ["ClientRegistered", "ReferralReceived"]
    );
    let mut holding = records_holding(&server, referrer, KNOWN).await;
    holding.sort();
    let mut expected = vec![record, waiting_client];
    expected.sort();
    assert_eq!(holding, expected);
    // Two records hold the number now: neither is guessed at, and a referral by staff (who
    // are told who is known) is refused, naming the number, rather than make a third.
    let by_lead = refer(
        &server,
        &people.lead,
        Uuid::new_v4(),
        &referral_of(Uuid::new_v4(), KNOWN, "Maggie"),
        None,
    )
    .await;
    by_lead.refused_at(422, "client.personal.nhs_number");
    assert!(
        by_lead.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("on more than one record")),
        "{:#}",
        by_lead.body
    );
    assert_eq!(records_holding(&server, referrer, KNOWN).await.len(), 2);

    // The number corrected away, a retry still finds where the referral went.
    let registration = server.event_id(&record, "ClientRegistered").await;
    let mut personal = known_body["client"]["personal"].clone();
    personal["given_name"] = json!("Maggie");
    personal["nhs_number"] = json!("9990000034");
    server
        .ok(
            &people.lead,
            &client_path(record, "corrections"),
            json!({ "corrects": registration, "corrected_fields": { "personal": personal },
                    "reason": "the practice gave the wrong number" }),
        )
        .await;
    assert_eq!(
        records_holding(&server, referrer, KNOWN).await,
        [waiting_client],
        "the referrer's second"
    );
    let later = refer(&server, referrer, chosen, &known_body, Some("known-1")).await;
    assert_eq!(later.status, 201, "{:#}", later.body);
    assert_eq!(later.body, to_known.body);
    let still = server
        .get(
            referrer,
            &format!("{}/{referral}", client_path(chosen, "referrals")),
        )
        .await;
    assert_eq!(still.status, 200, "{:#}", still.body);
    assert_eq!(
        server.journey_types(record).await.len(),
        5,
        "the correction only"
    );
}

/// A practice's system referring over the JSON API is answered with a receipt, as a referrer
/// is, and follows the referral where the receipt says; a referral it did not send is absent.
#[tokio::test]
async fn a_practice_system_follows_the_referral_its_receipt_names() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let (client, referral) = (Uuid::new_v4(), Uuid::new_v4());
    let sent = refer(
        &server,
        &people.practice,
        client,
        &referral_of(referral, "9990000107", "Ada"),
        Some("practice-1"),
    )
    .await;
    assert_eq!(sent.status, 201, "{:#}", sent.body);
    let follow_at = sent.body["follow_at"].as_str().expect("where to follow it");
    // No log position: the gap between two would tell how many events each wrote.
    assert_eq!(sent.body.get("position"), None, "{:#}", sent.body);
    let followed = server.get(&people.practice, follow_at).await;
    assert_eq!(followed.status, 200, "{:#}", followed.body);
    assert_eq!(followed.body["status"], "pending");
    // The referrer's own referral is not the practice's to follow.
    let (theirs, their_referral) = (Uuid::new_v4(), Uuid::new_v4());
    let by_referrer = refer(
        &server,
        &people.referrer,
        theirs,
        &referral_of(their_referral, "9990000115", "Bea"),
        None,
    )
    .await;
    assert_eq!(by_referrer.status, 201, "{:#}", by_referrer.body);
    let path = format!("{}/{their_referral}", client_path(theirs, "referrals"));
    let absent = server.get(&people.practice, &path).await;
    assert_eq!(absent.status, 404, "{:#}", absent.body);
}

#[tokio::test]
async fn staff_referring_a_known_person_are_told_it_went_to_their_record() {
    const NHS: &str = "9990000042";
    let server = TestServer::start().await;
    let people = server.people.clone();
    let record = known_and_declined(&server, &people.referrer, NHS).await;

    let (chosen, referral) = (Uuid::new_v4(), Uuid::new_v4());
    let body = referral_of(referral, NHS, "Margaret");
    let reply = refer(&server, &people.lead, chosen, &body, Some("lead-1")).await;
    assert_eq!(reply.status, 201, "{:#}", reply.body);
    let location = client_path(record, "");
    assert_eq!(reply.header("location"), Some(location.as_str()));
    assert_eq!(reply.body["client_id"], json!(record));
    assert_eq!(reply.body["referred_as"], json!(chosen));
    assert_eq!(reply.body["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(reply.header("etag"), Some("\"4\""));
    let again = refer(&server, &people.lead, chosen, &body, Some("lead-1")).await;
    assert_eq!(again.status, 201, "{:#}", again.body);
    assert_eq!(again.body, reply.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        server.journey_types(record).await,
        REFERRED_AGAIN_AFTER_A_DECLINE
    );
    let held = server.get(&people.auditor, &client_path(record, "")).await;
    assert_eq!(held.body["personal"]["given_name"], "Maggie");

    // While it waits, a link worker's self-referral of the person is refused naming the number.
    let waiting = refer(
        &server,
        &people.worker,
        Uuid::new_v4(),
        &referral_of(Uuid::new_v4(), NHS, "Maggie"),
        None,
    )
    .await;
    waiting.refused_at(422, "client.personal.nhs_number");
    assert_eq!(server.journey_types(record).await.len(), 4);
}

#[tokio::test]
async fn another_organisation_and_an_erased_person_are_never_matched() {
    const NHS: &str = "9990000050";
    let server = TestServer::start().await;
    let people = server.people.clone();
    let record = known_and_declined(&server, &people.lead, NHS).await;

    // Another organisation's lead refers the same number: someone new to them.
    let theirs = Uuid::new_v4();
    let reply = refer(
        &server,
        &people.foreign_lead,
        theirs,
        &referral_of(Uuid::new_v4(), NHS, "Maggie"),
        None,
    )
    .await;
    assert_eq!(reply.status, 201, "{:#}", reply.body);
    assert_eq!(reply.body["client_id"], json!(theirs));
    assert_eq!(reply.body.get("referred_as"), None);
    assert_eq!(reply.body["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(server.journey_types(record).await.len(), 3);
    assert_eq!(
        records_holding(&server, &people.foreign_lead, NHS).await,
        [theirs]
    );

    // Erased, the person is found by nothing: the next referral is someone new.
    server
        .ok(
            &people.admin,
            &client_path(record, "erasure"),
            json!({ "reason": "erasure request ref 2026-002" }),
        )
        .await;
    let (fresh, referral) = (Uuid::new_v4(), Uuid::new_v4());
    let reply = refer(
        &server,
        &people.referrer,
        fresh,
        &referral_of(referral, NHS, "Maggie"),
        None,
    )
    .await;
    assert_eq!(reply.status, 201, "{:#}", reply.body);
    assert_eq!(server.journey_types(fresh).await.len(), 2);
    assert_eq!(
        server.journey_types(record).await.len(),
        4,
        "the erasure only"
    );
    assert_eq!(
        records_holding(&server, &people.referrer, NHS).await,
        [fresh]
    );
}

/// More referrals of each number than the server's pool has connections (8), so that waiting
/// for another referral of the number must not hold one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn referrals_of_one_new_nhs_number_racing_make_one_record() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    for nhs in ["9990000069", "9990000077", "9990000085"] {
        let racers: Vec<(Uuid, Value)> = (0..12)
            .map(|_| {
                let referral = Uuid::new_v4();
                (Uuid::new_v4(), referral_of(referral, nhs, "Maggie"))
            })
            .collect();
        let replies = futures_util::future::join_all(
            racers
                .iter()
                .map(|(client, body)| refer(&server, &people.lead, *client, body, None)),
        )
        .await;
        let made: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
        assert_eq!(made.len(), 1, "{replies:#?}");
        for reply in replies.iter().filter(|r| r.status != 201) {
            reply.refused_at(422, "client.personal.nhs_number");
        }
        let holding = records_holding(&server, &people.lead, nhs).await;
        assert_eq!(holding.len(), 1, "one record");
        assert_eq!(json!(holding[0]), made[0].body["client_id"]);
    }

    // A referrer's referrals racing are each answered as someone new's and each kept, under
    // the id chosen, whichever found the person known (a referrer is not told who is): the
    // first makes the record, any later one whose record refused it is kept on its own.
    let nhs = "9990000093";
    let racers: Vec<(Uuid, Uuid)> = (0..6).map(|_| (Uuid::new_v4(), Uuid::new_v4())).collect();
    let bodies: Vec<Value> = racers
        .iter()
        .map(|(_, referral)| referral_of(*referral, nhs, "Maggie"))
        .collect();
    let replies = futures_util::future::join_all(
        racers
            .iter()
            .zip(&bodies)
            .map(|((client, _), body)| refer(&server, &people.referrer, *client, body, None)),
    )
    .await;
    for (reply, (client, referral)) in replies.iter().zip(&racers) {
        assert_eq!(reply.status, 201, "{:#}", reply.body);
        let follow = server
            .get(
                &people.referrer,
                &format!("{}/{referral}", client_path(*client, "referrals")),
            )
            .await;
        assert_eq!(follow.status, 200, "{:#}", follow.body);
        assert_eq!(follow.body["status"], "pending");
    }
}

/// A practice's FHIR referrals and staff's referrals over the API of one new NHS number, all at
/// once: one record is made for the person first, by whichever comes first (each path claims the
/// number when it finds no record holding it, `app::matching::Found`). Every practice's referral
/// is taken, the others on records of their own at their ids that claim nothing, as they would
/// be had the service not known the person (a practice is not told who is known). Staff's are
/// refused: as the known person's while one record holds the number, and for the number being
/// on more than one record once two do (two records holding a number match neither).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fhir_and_api_referrals_of_one_new_number_racing_make_one_record_first() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let nhs = "9990000107";
    let api: Vec<(Uuid, Value)> = (0..4)
        .map(|_| (Uuid::new_v4(), referral_of(Uuid::new_v4(), nhs, "Maggie")))
        .collect();
    let fhir: Vec<Value> = (0..4)
        .map(|i| super::fhir::service_request_for(&format!("R-race-{i}"), nhs))
        .collect();
    let (api_replies, fhir_replies) = tokio::join!(
        futures_util::future::join_all(api.iter().map(|(client, body)| refer(
            &server,
            &people.lead,
            *client,
            body,
            None
        )),),
        futures_util::future::join_all(fhir.iter().map(|body| server.post(
            &people.practice,
            "/fhir/ServiceRequest",
            body.clone()
        )),)
    );
    let mut made: Vec<Uuid> = fhir_replies
        .iter()
        .map(|reply| {
            assert_eq!(reply.status, 201, "{:#}", reply.body);
            let id = reply.body["id"].as_str().expect("an id");
            assert_eq!(reply.body["subject"]["identifier"]["value"], id);
            Uuid::parse_str(id).expect("a uuid")
        })
        .collect();
    for ((client, _), reply) in api.iter().zip(&api_replies) {
        assert!(
            [201, 422].contains(&reply.status),
            "{} {:#}",
            reply.status,
            reply.body
        );
        if reply.status == 201 {
            made.push(*client);
        }
    }
    assert!(
        made.len() <= 5,
        "one of the lead's at most: {api_replies:#?}"
    );
    made.sort();
    let mut holding = records_holding(&server, &people.lead, nhs).await;
    holding.sort();
    assert_eq!(holding, made);
    // The number was claimed once: one record was made first.
    let number = domain::NhsNumber::parse(nhs).expect("a valid NHS number");
    let tag = app::matching::nhs_number_tag(&server.store, people.lead.organisation_id, &number)
        .await
        .expect("a tag")
        .expect("a sealing store");
    let claims: i64 = testkit::query_value(
        &server.db.admin_client().await,
        "SELECT count(*) FROM lookup_claims WHERE claim_id = $1",
        &[&Uuid::from_slice(&tag[..16]).expect("16 bytes")],
    )
    .await;
    assert_eq!(claims, 1);
}

/// One request sent several times at once (a client retrying before its first answer came):
/// for someone new with a number, and, from a referrer, for a person the organisation knows.
/// Every copy is answered with the first result, and one referral is recorded: the copies
/// that lose the number's claim, or the record's version, find the first's result.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_of_one_referral_racing_are_answered_alike_and_recorded_once() {
    let server = TestServer::start().await;
    let people = server.people.clone();

    let (new_client, new_nhs) = (Uuid::new_v4(), "9990000115");
    let new_body = referral_of(Uuid::new_v4(), new_nhs, "Maggie");
    let copies = futures_util::future::join_all(
        (0..8).map(|_| refer(&server, &people.lead, new_client, &new_body, Some("twin-1"))),
    )
    .await;
    let first = copies
        .iter()
        .find(|reply| reply.header("idempotent-replayed").is_none())
        .expect("one copy was the first");
    for copy in &copies {
        assert_eq!(copy.status, 201, "{:#}", copy.body);
        assert_eq!(copy.body, first.body);
    }
    assert_eq!(
        records_holding(&server, &people.lead, new_nhs).await,
        vec![new_client]
    );
    assert_eq!(server.journey_types(new_client).await.len(), 2);

    // A person the service knows, whose referral was declined: a referrer's copies go to
    // their record, once.
    let (known, known_referral, known_nhs) = (Uuid::new_v4(), Uuid::new_v4(), "9990000123");
    let made = refer(
        &server,
        &people.lead,
        known,
        &referral_of(known_referral, known_nhs, "Ada"),
        None,
    )
    .await;
    assert_eq!(made.status, 201, "{:#}", made.body);
    decline(&server, known, known_referral).await;
    let before = server.journey_types(known).await.len();
    let chosen = Uuid::new_v4();
    let body = referral_of(Uuid::new_v4(), known_nhs, "Ada");
    let copies = futures_util::future::join_all(
        (0..8).map(|_| refer(&server, &people.referrer, chosen, &body, Some("twin-2"))),
    )
    .await;
    for copy in &copies {
        assert_eq!(copy.status, 201, "{:#}", copy.body);
        assert_eq!(copy.body, copies[0].body);
    }
    assert_eq!(server.journey_types(known).await.len(), before + 1);
    assert_eq!(
        records_holding(&server, &people.lead, known_nhs).await,
        vec![known]
    );
}

/// More referrals of different NHS numbers at once than the pool has connections: all are
/// taken (none waits for ever on a pool its fellows hold, none is turned away). It was a
/// deadlock when each held a lock on its number while its work needed connections of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_numbers_at_once_than_connections_are_all_taken() {
    let server = TestServer::start().await;
    let people = server.people.clone();
    let connections = server.store.pool().status().max_size;
    let racers: Vec<(Uuid, Value)> = (0..connections * 3)
        .map(|_| {
            let referral = Uuid::new_v4();
            let nhs = crate::support::nhs_number_for(referral);
            (Uuid::new_v4(), referral_of(referral, &nhs, "Maggie"))
        })
        .collect();
    let all = futures_util::future::join_all(
        racers
            .iter()
            .map(|(client, body)| refer(&server, &people.lead, *client, body, None)),
    );
    // Held connections waiting on each other never finish (it was so): fail, not hang.
    let replies = tokio::time::timeout(std::time::Duration::from_secs(90), all)
        .await
        .expect("the referrals were all answered: none waited for ever");
    for reply in &replies {
        assert_eq!(reply.status, 201, "{:#}", reply.body);
    }
    assert_eq!(replies.len(), connections * 3);
}

/// A retry of a referral that went to a known person's record is answered with its first
/// result there, for staff and for a referrer, even once the request itself would be refused
/// (its date now past the window for entering facts late): the try that looks nothing up is
/// refused, and the look-up after it finds where the referral went.
#[tokio::test]
async fn a_retry_of_a_referral_to_a_known_person_is_answered_with_its_first_result_after_its_window()
 {
    const NHS: &str = "9990000077";
    let clock = app::Clock::fixed(chrono::Utc::now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    let people = server.people.clone();
    let record = known_and_declined(&server, &people.lead, NHS).await;

    let (chosen, referral) = (Uuid::new_v4(), Uuid::new_v4());
    // Received 30 days ago (`intake`), within the 93 days a referral may be entered late.
    let body = referral_of(referral, NHS, "Margaret");
    let reply = refer(&server, &people.referrer, chosen, &body, Some("ref-1")).await;
    assert_eq!(reply.status, 201, "{:#}", reply.body);
    assert_eq!(
        reply.body["client_id"],
        json!(chosen),
        "answered as for someone new"
    );
    let types = server.journey_types(record).await;
    assert_eq!(types.len(), 4, "on the known record: {types:?}");

    // Seventy days on, the same request would be refused as a new one...
    clock.set(clock.now() + chrono::Duration::days(70));
    let fresh = referral_of(Uuid::new_v4(), "9990000085", "Ada");
    refer(&server, &people.referrer, Uuid::new_v4(), &fresh, None)
        .await
        .refused_at(422, "referral.received_on");
    // ...but its retry is answered with its first result, and nothing more is written.
    let again = refer(&server, &people.referrer, chosen, &body, Some("ref-1")).await;
    assert_eq!(again.status, 201, "{:#}", again.body);
    assert_eq!(again.body, reply.body);
    assert_eq!(server.journey_types(record).await, types);
    let none = server
        .call(
            Some(&people.auditor),
            "GET",
            &client_path(chosen, ""),
            None,
            &[],
        )
        .await;
    assert_eq!(
        none.status, 404,
        "no record at the id chosen: {:#}",
        none.body
    );
}

/// A referrer cannot tell a known person from someone new by referring again under the id it
/// chose (found by a helper's attack): a second referral naming an id whose first referral
/// went to a known person's record is refused as one naming the record made for someone new
/// is, whatever NHS number it carries (the same, another, none); no record is made under the
/// id, and the person's number stays on one record, so they are still found by it.
#[tokio::test]
async fn a_second_referral_under_an_id_chosen_is_refused_alike_for_a_known_person_and_someone_new()
{
    const KNOWN: &str = "9990000034";
    const NEW: &str = "9990000042";
    const OTHER: &str = "9990000050";
    let server = TestServer::start().await;
    let people = server.people.clone();
    let referrer = &people.referrer;
    let record = known_and_declined(&server, &people.lead, KNOWN).await;

    // The first referral under each id chosen: answered alike (201).
    let (to_known, to_new) = (Uuid::new_v4(), Uuid::new_v4());
    for (chosen, nhs) in [(to_known, KNOWN), (to_new, NEW)] {
        let body = referral_of(Uuid::new_v4(), nhs, "Maggie");
        let first = refer(&server, referrer, chosen, &body, Some("first")).await;
        assert_eq!(first.status, 201, "{:#}", first.body);
    }
    assert_eq!(
        server.journey_types(record).await.len(),
        4,
        "went to the record"
    );

    // A second under each: the same number, another, none. Refused alike.
    let again = |nhs: Option<&str>| {
        let mut body = referral_of(Uuid::new_v4(), nhs.unwrap_or(NEW), "Maggie");
        body["client"]["personal"]["nhs_number"] = json!(nhs);
        body
    };
    for (known_nhs, new_nhs) in [
        (Some(KNOWN), Some(NEW)),
        (Some(OTHER), Some(OTHER)),
        (None, None),
    ] {
        let known = refer(&server, referrer, to_known, &again(known_nhs), None).await;
        let new = refer(&server, referrer, to_new, &again(new_nhs), None).await;
        assert_eq!(new.status, 403, "{:#}", new.body);
        assert_eq!(
            (known.status, &known.body["detail"]),
            (new.status, &new.body["detail"]),
            "{known_nhs:?}: {:#}",
            known.body
        );
    }
    // The first request's key on another body, and a version expected of the id: alike too.
    let body = again(Some(OTHER));
    let known = refer(&server, referrer, to_known, &body, Some("first")).await;
    let new = refer(&server, referrer, to_new, &body, Some("first")).await;
    assert_eq!(new.status, 422, "{:#}", new.body);
    let said = |reply: &Reply| {
        let mut body = reply.body.clone();
        body["request_id"] = Value::Null;
        (reply.status, body)
    };
    assert_eq!(said(&known), said(&new));
    for nhs in [Some(OTHER), None] {
        let versioned = |chosen: Uuid| {
            let body = again(nhs);
            let path = client_path(chosen, "referrals");
            let server = &server;
            async move {
                server
                    .call(
                        Some(referrer),
                        "POST",
                        &path,
                        Some(&body),
                        &[("if-match", "\"2\"")],
                    )
                    .await
            }
        };
        let (known, new) = (versioned(to_known).await, versioned(to_new).await);
        assert_eq!(
            (known.status, &known.body["detail"]),
            (new.status, &new.body["detail"]),
            "{nhs:?}: {:#}",
            known.body
        );
    }
    // Nothing under the id chosen; the number on one record, found by staff's referral of it.
    let none = server
        .get(&people.auditor, &client_path(to_known, ""))
        .await;
    assert_eq!(none.status, 404, "{:#}", none.body);
    assert_eq!(records_holding(&server, referrer, KNOWN).await, [record]);
    assert_eq!(
        records_holding(&server, referrer, OTHER).await,
        Vec::<Uuid>::new()
    );
    server.stop().await;
}

/// A connection of its own holding, in a transaction left open, an event of `stream` at
/// `version`: an append of that version waits for it before it writes anything of its own,
/// and goes on, as if nothing had been held, once it is let go ([`release`]).
async fn hold_version(server: &TestServer, stream: Uuid, version: i64) -> tokio_postgres::Client {
    let holder = server.db.admin_client().await;
    holder.batch_execute("BEGIN").await.expect("begin");
    holder
        .execute(
            "INSERT INTO events (event_id, stream_id, stream_type, stream_version, event_type, \
             schema_version, payload, actor_id, actor_role, organisation_id, correlation_id, \
             occurred_at, recorded_at, hash) \
             VALUES ($1, $2, 'client', $3, 'Held', 1, '{}', $1, 'test', $1, $1, now(), now(), \
             sha256('held'))",
            &[&Uuid::new_v4(), &stream, &version],
        )
        .await
        .expect("the version held");
    holder
}

/// Lets what waits on [`hold_version`]'s event go on.
async fn release(holder: &tokio_postgres::Client) {
    holder.batch_execute("ROLLBACK").await.expect("released");
}

/// Until `n` statements of the server's database wait for a lock.
async fn waiting_for_locks(server: &TestServer, n: i64) {
    let admin = server.db.admin_client().await;
    for _ in 0..2000 {
        let waiting: i64 = testkit::query_value(
            &admin,
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await;
        if waiting >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{n} statements never waited for a lock");
}

/// `first` held at its append by `holder` (it waits for a lock), then `second`, then `holder`
/// let go once `second` is answered (or waits itself): the two replies.
async fn one_then_the_other(
    server: &TestServer,
    holder: tokio_postgres::Client,
    first: impl std::future::Future<Output = Reply>,
    second: impl std::future::Future<Output = Reply>,
) -> (Reply, Reply) {
    tokio::join!(first, async {
        waiting_for_locks(server, 1).await;
        tokio::pin!(second);
        tokio::select! {
            second = &mut second => {
                release(&holder).await;
                second
            }
            () = waiting_for_locks(server, 2) => {
                release(&holder).await;
                second.await
            }
        }
    })
}

/// Two referrals under one new id at the same moment, one of a known person (going to their
/// record) and one of someone new without a number (making a record at the id): one only is
/// taken, whichever is written first, as of two of someone new. Each order is made certain by
/// holding the first's append (an event at the version it writes) while the second runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_known_person_and_someone_new_referred_under_one_id_at_once_are_not_both_taken() {
    const KNOWN: &str = "9990000069";
    let server = TestServer::start().await;
    let people = server.people.clone();
    let referrer = &people.referrer;
    let record = known_and_declined(&server, &people.lead, KNOWN).await;
    let unnumbered = || {
        let mut body = referral_of(Uuid::new_v4(), KNOWN, "Maggie");
        body["client"]["personal"]["nhs_number"] = Value::Null;
        body
    };
    let events_on_record = server.journey_types(record).await.len();
    let known_body = referral_of(Uuid::new_v4(), KNOWN, "Maggie");

    // The known person's referral held at its append to their record (after it found the id
    // free); someone new's under the same id runs meanwhile, and is written.
    let chosen = Uuid::new_v4();
    let holder = hold_version(&server, record, events_on_record as i64 + 1).await;
    let new_body = unnumbered();
    let (known, new) = one_then_the_other(
        &server,
        holder,
        refer(&server, referrer, chosen, &known_body, Some("known")),
        refer(&server, referrer, chosen, &new_body, Some("new")),
    )
    .await;
    assert_eq!(new.status, 201, "{:#}", new.body);
    assert_eq!(known.status, 403, "{:#}", known.body);
    assert_eq!(
        server.journey_types(chosen).await.len(),
        2,
        "made at the id"
    );
    assert_eq!(
        server.journey_types(record).await.len(),
        events_on_record,
        "nothing went to the known person's record"
    );

    // Someone new's held at its append (the id free when it looked); the known person's under
    // the same id runs meanwhile, and goes to their record.
    let chosen = Uuid::new_v4();
    let holder = hold_version(&server, chosen, 1).await;
    let new_body = unnumbered();
    let (new, known) = one_then_the_other(
        &server,
        holder,
        refer(&server, referrer, chosen, &new_body, Some("new")),
        refer(&server, referrer, chosen, &known_body, Some("known")),
    )
    .await;
    assert_eq!(known.status, 201, "{:#}", known.body);
    assert_eq!(new.status, 403, "{:#}", new.body);
    let none = server.get(&people.auditor, &client_path(chosen, "")).await;
    assert_eq!(none.status, 404, "nothing made at the id: {:#}", none.body);
    assert_eq!(
        server.journey_types(record).await.len(),
        events_on_record + 1,
        "went to the known person's record"
    );
    assert_eq!(records_holding(&server, referrer, KNOWN).await, [record]);
    server.stop().await;
}

/// A referrer's referral of a known person that the known record refuses (their referral
/// waiting) is kept as someone new's: two records then hold the number, and staff are shown it
/// on each, over the API and on the console's person page (in a browser), each linking to the
/// other, until one of them no longer holds it.
#[tokio::test]
async fn records_sharing_a_number_are_shown_to_staff_on_each() {
    const NHS: &str = "9990000131";
    let server = TestServer::start().await;
    let people = server.people.clone();
    let shared_with = |client: Uuid| {
        let server = &server;
        let auditor = &server.people.auditor;
        async move {
            server
                .read(auditor, &format!("/api/v1/clients/{client}"))
                .await
                .body["shares_nhs_number_with"]
                .clone()
        }
    };
    let (known, first) = (Uuid::new_v4(), Uuid::new_v4());
    let made = refer(
        &server,
        &people.lead,
        known,
        &referral_of(first, NHS, "Maggie"),
        None,
    )
    .await;
    assert_eq!(made.status, 201, "{:#}", made.body);
    assert_eq!(
        shared_with(known).await,
        json!([]),
        "the number's only record"
    );

    // Referred again by a referrer while the first referral waits: kept as someone new's.
    let (again, again_referral) = (Uuid::new_v4(), Uuid::new_v4());
    let kept = refer(
        &server,
        &people.referrer,
        again,
        &referral_of(again_referral, NHS, "Maggie"),
        None,
    )
    .await;
    assert_eq!(kept.status, 201, "{:#}", kept.body);
    assert_eq!(shared_with(known).await, json!([again]));
    assert_eq!(shared_with(again).await, json!([known]));

    // The team lead triaging the new referral is warned, and follows the link to the other
    // record, which warns of the new one.
    let browser = super::console::signed_in_browser(&server, &people.lead).await;
    browser
        .goto(&format!("{}/console/people/{again}", server.base))
        .await;
    assert!(
        browser
            .text("#shared-nhs-number")
            .await
            .contains("Another record has this NHS number"),
    );
    browser
        .assert_accessible("a record sharing its NHS number")
        .await;
    browser.click_and_wait("#shared-nhs-number a").await;
    assert_eq!(browser.path().await, format!("/console/people/{known}"));
    assert_eq!(
        browser.attr("#shared-nhs-number a", "href").await,
        Some(format!("/console/people/{again}"))
    );

    // The triage queue flags both waiting referrals, and no other.
    let bystander = refer(
        &server,
        &people.referrer,
        Uuid::new_v4(),
        &referral_of(Uuid::new_v4(), "9990000174", "Bea"),
        None,
    )
    .await;
    assert_eq!(bystander.status, 201, "{:#}", bystander.body);
    server.catch_up().await;
    browser
        .goto(&format!("{}/console/triage", server.base))
        .await;
    let rows = browser.texts(".nhsuk-table__body tr").await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert_eq!(
        browser.texts(".shared-nhs-number").await,
        [
            "NHS number on another record",
            "NHS number on another record"
        ]
    );
    assert_eq!(
        rows.iter()
            .filter(|row| row.contains("NHS number on another record"))
            .count(),
        2,
        "{rows:#?}"
    );
    browser
        .assert_accessible("the triage queue with a shared number")
        .await;

    // Its link worker may not open the other record (not yet assigned): it is counted, not
    // named, and the page says who can see it.
    super::journey::accept(&server, &people.lead, again, again_referral).await;
    super::journey::assign(&server, again, &people.worker).await;
    let theirs = server
        .read(&people.worker, &format!("/api/v1/clients/{again}"))
        .await;
    assert_eq!(theirs.body["shares_nhs_number_with"], json!([]));
    assert_eq!(theirs.body["shares_nhs_number_elsewhere"], 1);
    assert_eq!(
        server
            .get(&people.worker, &format!("/api/v1/clients/{known}"))
            .await
            .status,
        403
    );
    let workers = super::console::signed_in_browser(&server, &people.worker).await;
    workers
        .goto(&format!("{}/console/people/{again}", server.base))
        .await;
    assert!(
        workers
            .text("#shared-nhs-number")
            .await
            .contains("One more record with this NHS number is not yours to open"),
    );
    assert!(workers.texts("#shared-nhs-number a").await.is_empty());

    // The second record's number corrected away (it was someone else's): neither is warned.
    let personal =
        referral_of(Uuid::new_v4(), "9990000158", "Maggie")["client"]["personal"].clone();
    let registered = server.event_id(&again, "ClientRegistered").await;
    server
        .ok(
            &people.lead,
            &client_path(again, "corrections"),
            json!({ "corrects": registered,
                    "corrected_fields": { "personal": personal },
                    "reason": "the referrer gave the wrong person's number" }),
        )
        .await;
    assert_eq!(shared_with(known).await, json!([]));
    assert_eq!(shared_with(again).await, json!([]));
    browser
        .goto(&format!("{}/console/people/{known}", server.base))
        .await;
    assert!(browser.texts("#shared-nhs-number").await.is_empty());
    server.stop().await;
}
