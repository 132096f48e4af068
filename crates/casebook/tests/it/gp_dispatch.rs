//! The GP message dispatcher inside the real `casebook serve`, killed with SIGKILL while a
//! practice's system holds a message's request unanswered (the practice kept it; its answer is
//! never sent), then started again on the same data dir: after the dead process's leases run
//! out every message arrives, kept once per message id by the receiver (which dedupes on
//! `Idempotency-Key`, as the contract asks), in order per person.
//!
//! The receiver is a bare HTTP/1.1 server on threads of its own. Nothing asserted depends on
//! timing: waits are bounded only as a safety net.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::process::{DataDir, Running, casebook_ok, start_with, stop};

/// The longest anything here is waited for: a safety bound (the dispatcher's lease is 60 s).
const PATIENCE: Duration = Duration::from_secs(240);

const DECLINED: &str = "871711000000103";
const ACCEPTED: &str = "871731000000106";
const ODS: &str = "A81001";

/// What the practice's system has seen.
#[derive(Default)]
struct Seen {
    /// Every request on the wire, by idempotency key, in arrival order.
    wire: Vec<Uuid>,
    /// Each message kept once per key, in the order first kept: key, NHS number, code.
    kept: Vec<(Uuid, String, String)>,
    /// The request (by its place on the wire, from 1) to hold unanswered.
    stall_at: usize,
    /// The key of the request held unanswered, once it came.
    stalled: Option<Uuid>,
}

/// A practice's system on a port of its own.
struct Practice {
    port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl Practice {
    fn start(stall_at: usize) -> Practice {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("its address").port();
        let seen = Arc::new(Mutex::new(Seen {
            stall_at,
            ..Seen::default()
        }));
        std::thread::spawn({
            let seen = seen.clone();
            move || {
                for stream in listener.incoming().map_while(Result::ok) {
                    let seen = seen.clone();
                    std::thread::spawn(move || answer(stream, &seen));
                }
            }
        });
        Practice { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/fhir/Communication", self.port)
    }

    fn stalled(&self) -> Option<Uuid> {
        self.seen.lock().expect("seen").stalled
    }

    fn kept(&self) -> Vec<(Uuid, String, String)> {
        self.seen.lock().expect("seen").kept.clone()
    }

    fn wire(&self) -> Vec<Uuid> {
        self.seen.lock().expect("seen").wire.clone()
    }
}

/// One request: read, kept once per key, answered 200 (or, the one to stall, held open with no
/// answer until the sender goes away).
fn answer(mut stream: TcpStream, seen: &Mutex<Seen>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head, mut body) = loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            break (head, buffer[end + 4..].to_vec());
        }
    };
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    while body.len() < length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let Some(key) = header("idempotency-key").and_then(|k| Uuid::parse_str(&k).ok()) else {
        let _ = stream.write_all(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
        return;
    };
    let stall = {
        let mut seen = seen.lock().expect("seen");
        seen.wire.push(key);
        if !seen.kept.iter().any(|(kept, ..)| *kept == key) {
            let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            seen.kept.push((
                key,
                text(&message["subject"]["identifier"]["value"]),
                text(&message["reasonCode"][0]["coding"][0]["code"]),
            ));
        }
        let stall = seen.wire.len() == seen.stall_at;
        if stall {
            seen.stalled = Some(key);
        }
        stall
    };
    if stall {
        // Kept, but never answered: wait for the sender to go away.
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let _ = stream.read(&mut chunk);
        return;
    }
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
}

/// `serve` with the dispatcher every second, allowed to reach the receiver on loopback.
fn serve(data_dir: &DataDir) -> Running {
    tokio::task::block_in_place(|| {
        start_with(
            &data_dir.path,
            &["--gp-outbox-every-seconds", "1", "--gp-endpoints-private"],
        )
    })
}

/// The organisation's administrator, team lead and a GP practice's system, made with the
/// administration commands: their tokens.
fn staff(data_dir: &DataDir) -> (String, String, String) {
    let path = &data_dir.path;
    let organisation = casebook_ok(path, &["org", "add", "Practice Line Link"]);
    let team = casebook_ok(
        path,
        &["team", "add", "--organisation", &organisation, "Frome"],
    );
    let token = |role: &str, team: Option<&str>, name: &str| {
        let mut args = vec!["staff", "add", "--organisation", organisation.as_str()];
        if let Some(team) = team {
            args.extend(["--team", team]);
        }
        args.extend(["--role", role, "--name", name]);
        let staff = casebook_ok(path, &args);
        casebook_ok(path, &["token", "issue", &staff, "--days", "30"])
    };
    (
        token("administrator", None, "Ade Admin"),
        token("team_lead", Some(&team), "Lee Lead"),
        token("practice_system", None, "Frome practice system"),
    )
}

async fn post(http: &reqwest::Client, running: &Running, token: &str, path: &str, body: Value) {
    let reply = http
        .post(format!("{}{path}", running.base))
        .bearer_auth(token)
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("an answer");
    let status = reply.status();
    let text = reply.text().await.unwrap_or_default();
    assert!(status.is_success(), "POST {path}: {status} {text}");
}

fn referral(referral_id: Uuid, days_ago: i64) -> Value {
    // The service's clock is the test's (both a year ahead under `.ci/a-year-ahead`).
    let received_on = (chrono::Utc::now() - chrono::Duration::days(days_ago)).date_naive();
    json!({
        "referral_id": referral_id, "source": "gp",
        "referrer": { "staff_id": null, "name": null, "organisation": format!("ODS {ODS}") },
        "reasons": ["loneliness_isolation"], "urgency": "routine",
        "received_on": received_on, "note": null
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_killed_mid_delivery_sends_every_gp_message_once_in_order_per_person() {
    let data_dir = DataDir::new("kill-gp");
    let running = serve(&data_dir);
    // Referred by the practice's own system: only its referrals name a practice to write to.
    let (admin, lead, practice_system) = staff(&data_dir);
    let http = reqwest::Client::new();
    // The third request is held unanswered: by then the dispatcher has more leased behind it.
    let practice = Practice::start(3);
    post(
        &http,
        &running,
        &admin,
        "/api/v1/gp-endpoints",
        json!({ "ods_code": ODS, "url": practice.url() }),
    )
    .await;

    // Each person: referred by their practice and declined by them (a coded message), referred
    // again and accepted (another): two messages each, the decline first.
    let people = ["9990000018", "9990000026", "9990000042", "9990000050"];
    for nhs in people {
        let client = Uuid::new_v4();
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        let path = |what: &str| format!("/api/v1/clients/{client}/{what}");
        let person = json!({
            "personal": {
                "given_name": "Test", "family_name": "Person", "date_of_birth": null,
                "nhs_number": nhs, "phone": null, "email": null, "address": null,
                "postcode": null
            },
            "area": "Frome"
        });
        post(
            &http,
            &running,
            &practice_system,
            &path("referrals"),
            json!({ "client": person, "referral": referral(first, 3) }),
        )
        .await;
        post(
            &http,
            &running,
            &lead,
            &path("referral-declines"),
            json!({ "referral_id": first, "reason": "client_declined", "note": null }),
        )
        .await;
        // Referred again by the practice, as someone new: the NHS number finds the record.
        post(
            &http,
            &running,
            &practice_system,
            &format!("/api/v1/clients/{}/referrals", Uuid::new_v4()),
            json!({ "client": person, "referral": referral(second, 0) }),
        )
        .await;
        post(
            &http,
            &running,
            &lead,
            &path("referral-acceptances"),
            json!({ "referral_id": second }),
        )
        .await;
    }

    // The practice holds a request unanswered: serve is killed mid-delivery.
    let deadline = Instant::now() + PATIENCE;
    while practice.stalled().is_none() {
        assert!(
            Instant::now() < deadline,
            "no request reached the practice: {}",
            running.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stalled = practice.stalled().expect("the held request");
    running.kill();
    let before_restart = practice.wire();

    // Started again: once the dead process's leases run out, everything is sent.
    let running = serve(&data_dir);
    let expected = people.len() * 2;
    while practice.kept().len() < expected
        || !practice.wire()[before_restart.len()..].contains(&stalled)
    {
        assert!(
            Instant::now() < deadline,
            "kept {:?} of {expected}; on the wire {:?}",
            practice.kept(),
            practice.wire()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every message once from the practice's point of view, each person's in order.
    let kept = practice.kept();
    assert_eq!(kept.len(), expected, "{kept:?}");
    let mut per_person: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (_, nhs, code) in &kept {
        per_person.entry(nhs).or_default().push(code);
    }
    for nhs in people {
        assert_eq!(
            per_person.get(nhs).map(Vec::as_slice),
            Some(&[DECLINED, ACCEPTED][..]),
            "{nhs}: {kept:?}"
        );
    }
    // The held message went again after the restart, under the same key.
    let wire = practice.wire();
    assert_eq!(
        wire.iter().filter(|key| **key == stalled).count(),
        2,
        "{wire:?}"
    );

    // The outbox says every message was delivered, and its audit shows the attempt lost with
    // the killed process: none delivered twice.
    let db = data_dir.connect().await;
    let statuses: Vec<(String, i64)> = db
        .query(
            "SELECT status, count(*) FROM gp_outbox GROUP BY status ORDER BY status",
            &[],
        )
        .await
        .expect("the outbox")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(statuses, [("delivered".to_owned(), expected as i64)]);
    let delivered: i64 = db
        .query_one(
            "SELECT count(*) FROM gp_outbox_attempts WHERE outcome = 'delivered'",
            &[],
        )
        .await
        .expect("the attempts")
        .get(0);
    assert_eq!(delivered, expected as i64);
    stop(running);
    let out = casebook_ok(&data_dir.path, &["verify"]);
    assert!(out.starts_with("ok: "), "{out}");
    data_dir.remove();
}
