//! The `casebook` binary as a user runs it: no database configured, so it starts its own.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use process::{casebook, casebook_env_ok, casebook_out, start, stop, succeeded};

mod faults;
mod gp_dispatch;
mod process;

#[tokio::test]
async fn serve_with_no_configuration_becomes_ready_and_stops_its_cluster() {
    let data_dir = process::scratch("serve");
    let http = reqwest::Client::new();

    let running = start(&data_dir);
    let health = get(&http, &running, "/health").await;
    assert_eq!(health.status(), 200);
    let ready = get(&http, &running, "/ready").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("JSON body");
    assert_eq!(body["migrations"], "current");
    assert_eq!(
        body["projections"][0]["projection"], "caseload_v1",
        "{body}"
    );
    assert_eq!(body["projections"][0]["events_behind"], 0, "{body}");
    let missing = get(&http, &running, "/no/such/route").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    stop(running);

    let postmaster_pid = data_dir.join("postgres/data/postmaster.pid");
    assert!(
        !postmaster_pid.exists(),
        "the private cluster was stopped on shutdown"
    );
    assert!(
        data_dir.join("anchor.key").exists(),
        "a private cluster gets an anchor key of its own, as it does a master key"
    );

    // The data survives: a second start finds the initialised cluster and is ready again.
    let running = start(&data_dir);
    let ready = get(&http, &running, "/ready").await;
    assert_eq!(ready.status(), 200);
    stop(running);
    std::fs::remove_dir_all(&data_dir).expect("clean up");
}

/// `GET {path}` of the running binary.
async fn get(http: &reqwest::Client, running: &process::Running, path: &str) -> reqwest::Response {
    http.get(format!("{}{path}", running.base))
        .send()
        .await
        .unwrap_or_else(|err| panic!("GET {path}: {err}"))
}

/// The URL of a test database, as `CASEBOOK_DATABASE_URL` takes it.
fn database_url(db: &testkit::TestDb) -> String {
    let cluster = testkit::cluster().expect("the private test cluster");
    let socket = cluster.socket_dir().to_string_lossy().replace('/', "%2F");
    format!("postgresql://postgres@{socket}:5432/{}", db.name())
}

#[test]
fn verify_on_the_private_cluster_reports_ok_and_stops_the_cluster_again() {
    let data_dir = process::scratch("verify");
    let out = casebook(&data_dir, &["verify"], &[]);
    let stdout = succeeded(&out);
    assert_eq!(
        stdout.lines().next(),
        Some("ok: 0 events in 0 streams, every hash chain intact"),
        "{stdout}"
    );
    assert!(
        !data_dir.join("postgres/data/postmaster.pid").exists(),
        "a one-shot command stops the cluster it started"
    );
    std::fs::remove_dir_all(&data_dir).expect("clean up");
}

#[test]
fn without_postgresql_binaries_the_error_says_what_to_install() {
    let data_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-binaries");
    let out = casebook(
        &data_dir,
        &["migrate"],
        &[("CASEBOOK_PG_BIN", "/nonexistent/postgresql/bin")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no PostgreSQL server binaries found"),
        "{stderr}"
    );
    assert!(stderr.contains("apt-get install postgresql"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// With CASEBOOK_DATABASE_URL the binary uses that server and starts no cluster of its own.
#[tokio::test]
async fn with_a_database_url_the_binary_uses_that_server() {
    let db = testkit::TestDb::new().await;
    let url = database_url(&db);
    let data_dir = process::scratch("unused");
    // A server of our own needs the master key that protects the personal data in it.
    let out = casebook(&data_dir, &["verify"], &[("CASEBOOK_DATABASE_URL", &url)]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set CASEBOOK_MASTER_KEY"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = "ab".repeat(32);
    let out = casebook(
        &data_dir,
        &["verify"],
        &[
            ("CASEBOOK_DATABASE_URL", &url),
            ("CASEBOOK_MASTER_KEY", &key),
        ],
    );
    let stdout = succeeded(&out);
    assert_eq!(
        stdout.lines().next(),
        Some("ok: 0 events in 0 streams, every hash chain intact"),
        "{stdout}"
    );
    // Without an anchor key there are no checkpoints to check, and verify says so.
    assert!(stdout.contains("no anchor key configured"), "{stdout}");
    assert!(!data_dir.exists(), "no private cluster was made");
}

#[test]
fn the_directory_commands_import_report_rejections_and_export_what_they_imported() {
    let data_dir = process::scratch("directory");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let sample: serde_json::Value =
        serde_json::from_str(devtools::demo::SAMPLE_DIRECTORY).expect("the sample");
    let mut records = sample["contents"].as_array().expect("contents")[..5].to_vec();
    records.push(serde_json::json!({ "id": "not-a-uuid", "name": "Broken" }));
    let file = data_dir.join("import.json");
    std::fs::write(
        &file,
        serde_json::json!({ "contents": records }).to_string(),
    )
    .expect("write the file");
    let path = file.to_str().expect("a path");

    // One bad record: the rest import, the report names it, and the exit code says so.
    let out = casebook(&data_dir, &["directory", "import", path], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.starts_with(
            "6 records: 5 added, 0 changed, 0 withdrawn, 0 unchanged, 0 skipped, 1 rejected"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("rejected record 5 (not-a-uuid): id:"),
        "{stdout}"
    );

    // The export holds the five, in the ORUK shape; importing it again changes nothing.
    let exported = data_dir.join("export.json");
    let out = casebook(
        &data_dir,
        &[
            "directory",
            "export",
            "--out",
            exported.to_str().expect("a path"),
        ],
        &[],
    );
    succeeded(&out);
    let page: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&exported).expect("the export"))
            .expect("JSON");
    assert_eq!(page["total_items"], 5);
    assert!(page["contents"][0]["organization"]["name"].is_string());
    let out = casebook(
        &data_dir,
        &["directory", "import", exported.to_str().expect("a path")],
        &[],
    );
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(
            "5 records: 0 added, 0 changed, 0 withdrawn, 5 unchanged, 0 skipped, 0 rejected"
        ),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The operator passes one to an organisation, once; an import for no organisation fails.
    let out = casebook(&data_dir, &["org", "add", "Frome Link"], &[]);
    let organisation = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let service = records[0]["id"].as_str().expect("an id");
    let transfer = [
        "directory",
        "transfer",
        service,
        "--to",
        &organisation,
        "--reason",
        "agreed",
    ];
    let out = casebook(&data_dir, &transfer, &[]);
    assert_eq!(
        succeeded(&out).trim(),
        format!("service {service} now belongs to {organisation}")
    );
    let out = casebook(&data_dir, &transfer, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already belongs to that organisation"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nobody = uuid::Uuid::new_v4().to_string();
    let out = casebook(
        &data_dir,
        &["directory", "import", path, "--organisation", &nobody],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no organisation"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&data_dir).expect("clean up");
}

/// A client referred, accepted and closed `years` ago, written as the service writes.
/// A new database, a new master key, and a store over the database sealing personal fields
/// under the key.
async fn sealed_store() -> (
    testkit::TestDb,
    eventstore::MasterKey,
    eventstore::EventStore,
) {
    let db = testkit::TestDb::new().await;
    let key = eventstore::MasterKey::generate().expect("a key");
    let store = eventstore::EventStore::new(db.app_pool(2), app::upcasters())
        .with_protection(app::privacy::protection(key.clone()));
    (db, key, store)
}

/// The arguments of `casebook staff add` for Sam Okafor, a link worker of `team`.
fn add_link_worker<'a>(organisation: &'a str, team: &'a str) -> [&'a str; 10] {
    [
        "staff",
        "add",
        "--organisation",
        organisation,
        "--team",
        team,
        "--role",
        "link_worker",
        "--name",
        "Sam Okafor",
    ]
}

/// A link worker of an organisation of `db` (made once, as an operator would): the staff a
/// client's assignment names, who must exist.
async fn link_worker(db: &testkit::TestDb) -> (uuid::Uuid, domain::StaffId, domain::TeamId) {
    let owner = db.admin_client().await;
    let operator = app::admin::Operator::new(&owner);
    let organisation = operator
        .add_organisation("Retention tests")
        .await
        .expect("an organisation");
    let team = operator
        .add_team(organisation, "Frome")
        .await
        .expect("a team");
    let staff = app::access::list_staff(&owner, organisation, None, 1)
        .await
        .expect("the staff");
    let worker = match staff.first() {
        Some(worker) => worker.staff_id,
        None => {
            let request = app::admin::NewStaffRequest {
                staff_id: None,
                name: "Sam Okafor".to_owned(),
                role: app::access::Role::LinkWorker,
                team_id: Some(team.team_id),
                capacity: None,
            };
            operator
                .add_staff(organisation, &request)
                .await
                .expect("a link worker")
                .staff_id
        }
    };
    (
        organisation,
        domain::StaffId(worker),
        domain::TeamId(team.team_id),
    )
}

async fn closed_client(
    db: &testkit::TestDb,
    store: &eventstore::EventStore,
    years: i64,
) -> uuid::Uuid {
    use domain::*;
    let (organisation, worker, team) = link_worker(db).await;
    let cases = app::CaseService::new(store.clone());
    let client = uuid::Uuid::new_v4();
    let at = chrono::Utc::now() - chrono::Duration::days(years * 366);
    let referral = ReferralId(uuid::Uuid::new_v4());
    let commands = [
        CaseCommand::Intake {
            client: Some(Box::new(ClientRegistered {
                client_id: ClientId(client),
                personal: PersonalDetails::named("Hester", "Fairbrother"),
                area: "Frome".to_owned(),
            })),
            referral: testing::unnamed_referral(
                referral,
                ReferralSource::Gp,
                vec![NeedDomain::LonelinessIsolation],
                at.date_naive(),
            ),
        },
        CaseCommand::AcceptReferral(ReferralAccepted {
            referral_id: referral,
        }),
        CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
            link_worker_id: worker,
            team_id: team,
        }),
        CaseCommand::CloseCase(testing::goals_met()),
    ];
    for command in commands {
        let metadata = eventstore::Metadata {
            actor_id: uuid::Uuid::new_v4(),
            actor_role: "team_lead".to_owned(),
            organisation_id: organisation,
            correlation_id: uuid::Uuid::new_v4(),
            causation_id: None,
            occurred_at: at,
        };
        cases
            .execute(ClientId(client), &command, metadata, Default::default())
            .await
            .expect("a command");
    }
    client
}

#[tokio::test]
async fn retention_and_erase_run_from_the_command_line_under_the_configured_master_key() {
    let (db, key, store) = sealed_store().await;
    let url = database_url(&db);
    let old = closed_client(&db, &store, 9).await;
    let recent = closed_client(&db, &store, 2).await;
    let data_dir = process::scratch("retention");
    let encoded = key.to_base64();
    let env = [
        ("CASEBOOK_DATABASE_URL", url.as_str()),
        ("CASEBOOK_MASTER_KEY", encoded.as_str()),
    ];
    let run = |args: &[&str]| casebook_out(&data_dir, args, &env);

    // The dry run lists only the record concluded more than 8 years ago, and erases nothing.
    let (code, stdout, stderr) = run(&["retention"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with("1 record(s) concluded before"),
        "{stdout}"
    );
    assert!(stdout.contains("dry run"), "{stdout}");
    assert!(stdout.contains(&old.to_string()), "{stdout}");
    assert!(!stdout.contains(&recent.to_string()), "{stdout}");
    let (_, again, _) = run(&["retention", "--dry-run"]);
    assert!(again.starts_with("1 record(s)"), "{again}");

    // Applied, it erases that one; then nothing is past retention.
    let (code, stdout, stderr) = run(&["retention", "--apply"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let read = store.read_stream(old, 1, None).await.expect("read");
    assert_eq!(read[0].payload["personal"]["family_name"], "[erased]");
    assert_eq!(read.last().expect("events").event_type, "ClientErased");
    let kept = store.read_stream(recent, 1, None).await.expect("read");
    assert_eq!(kept[0].payload["personal"]["family_name"], "Fairbrother");
    let (_, stdout, _) = run(&["retention"]);
    assert!(stdout.starts_with("0 record(s)"), "{stdout}");

    // `erase` by hand: the recent one; again, or an unknown client, is refused with exit 2.
    let recent_id = recent.to_string();
    let (code, stdout, stderr) = run(&["erase", &recent_id, "--reason", "request ref 5"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let (code, _, stderr) = run(&["erase", &recent_id, "--reason", "request ref 5"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("erased"), "{stderr}");
    let unknown = uuid::Uuid::new_v4().to_string();
    let (code, _, stderr) = run(&["erase", &unknown, "--reason", "x"]);
    assert_eq!(code, Some(2), "{stderr}");

    let (code, stdout, _) = run(&["verify"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.starts_with("ok: 12 events in 2 streams"), "{stdout}");

    // Another master key is refused at start, naming both keys (ids, not keys).
    let other = eventstore::MasterKey::generate().expect("a key");
    let other_encoded = other.to_base64();
    // Make a third client's key under the first master key still live, so the check has one.
    closed_client(&db, &store, 1).await;
    let out = casebook(
        &data_dir,
        &["verify"],
        &[
            ("CASEBOOK_DATABASE_URL", url.as_str()),
            ("CASEBOOK_MASTER_KEY", other_encoded.as_str()),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(key.id()) && stderr.contains(other.id()),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&encoded),
        "the key itself is never printed"
    );
}

#[tokio::test]
async fn key_rotate_rewraps_every_data_key_under_the_new_master_key() {
    let db = testkit::TestDb::new().await;
    let url = database_url(&db);
    let old = eventstore::MasterKey::generate().expect("a key");
    let new = eventstore::MasterKey::generate().expect("a key");
    let store_under = |key: &eventstore::MasterKey| {
        eventstore::EventStore::new(db.app_pool(2), app::upcasters())
            .with_protection(app::privacy::protection(key.clone()))
    };
    let client = closed_client(&db, &store_under(&old), 1).await;
    let erased = closed_client(&db, &store_under(&old), 1).await;
    let data_dir = process::scratch("rotate");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let old_text = old.to_base64();
    let new_file = data_dir.join("new.key");
    std::fs::write(&new_file, new.to_base64()).expect("the new key's file");
    let with_key = |key: &str| {
        [
            ("CASEBOOK_DATABASE_URL", url.clone()),
            ("CASEBOOK_MASTER_KEY", key.to_owned()),
        ]
    };
    let run = |args: &[&str], key: &str| {
        let env = with_key(key);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        casebook(&data_dir, args, &env)
    };
    let out = run(
        &["erase", &erased.to_string(), "--reason", "request ref 3"],
        &old_text,
    );
    succeeded(&out);

    let out = run(
        &[
            "key",
            "rotate",
            "--new-key-file",
            new_file.to_str().expect("a path"),
        ],
        &old_text,
    );
    let stdout = succeeded(&out);
    assert!(
        stdout.starts_with(&format!(
            "rewrapped 1 data keys from master key {} to {}",
            old.id(),
            new.id()
        )),
        "{stdout}"
    );

    // Under the new key the details open; the old key no longer unwraps anything, and the
    // service refuses to start with it.
    let read = store_under(&new)
        .read_stream(client, 1, None)
        .await
        .expect("read");
    assert_eq!(read[0].payload["personal"]["family_name"], "Fairbrother");
    assert!(
        store_under(&old)
            .read_stream(client, 1, None)
            .await
            .is_err()
    );
    let out = run(&["verify"], &old_text);
    assert!(!out.status.success());
    let out = run(&["verify"], &new.to_base64());
    succeeded(&out);
    // The erased person stays erased.
    let read = store_under(&new)
        .read_stream(erased, 1, None)
        .await
        .expect("read");
    assert_eq!(read[0].payload["personal"]["family_name"], "[erased]");
}

/// The administration commands print what they made, under the same rules as the API's
/// administration, and a revoked token stops working at once.
#[tokio::test]
async fn the_administration_commands_make_an_organisation_its_staff_and_tokens_and_revoke_one() {
    let db = testkit::TestDb::new().await;
    let url = database_url(&db);
    let data_dir = process::scratch("admin");
    let key = "cd".repeat(32);
    let env = [
        ("CASEBOOK_DATABASE_URL", url.as_str()),
        ("CASEBOOK_MASTER_KEY", key.as_str()),
    ];
    let run = |args: &[&str]| {
        let out = casebook(&data_dir, args, &env);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            // The last line: the error, after the log lines.
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let id = |printed: &str| uuid::Uuid::parse_str(printed).expect("an id is printed");

    let (code, organisation, stderr) = run(&["org", "add", "Mendip Link"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (_, again, _) = run(&["org", "add", "Mendip Link"]);
    assert_eq!(id(&again), id(&organisation), "the one of that name");
    let (code, team, stderr) = run(&["team", "add", "--organisation", &organisation, "Frome"]);
    assert_eq!(code, Some(0), "{stderr}");
    id(&team);
    let (code, staff, stderr) = run(&add_link_worker(&organisation, &team));
    assert_eq!(code, Some(0), "{stderr}");
    let staff_id = id(&staff);
    let (code, _, stderr) = run(&[
        "staff",
        "add",
        "--organisation",
        &organisation,
        "--role",
        "link_worker",
        "--name",
        "Ana Teamless",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr, "error: team_id: a link_worker belongs to a team");

    // A practice's system, bound to its practice; binding again moves it.
    let (code, practice, stderr) = run(&[
        "staff",
        "add",
        "--organisation",
        &organisation,
        "--role",
        "practice_system",
        "--name",
        "Vine Surgery's system",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let client = db.app_client().await;
    for ods in ["A81001", "B82002"] {
        let (code, printed, stderr) = run(&["staff", "bind-practice", &practice, "--ods", ods]);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(
            printed,
            format!(
                "bound practice system {practice} to ODS {ods}: its referrals name that practice only"
            )
        );
        let bound = app::access::bound_practice(&client, id(&practice))
            .await
            .expect("read");
        assert_eq!(bound.as_deref(), Some(ods));
    }
    let (code, _, stderr) = run(&["staff", "bind-practice", &practice, "--ods", "ODS A81001"]);
    assert_eq!(code, Some(1));
    assert!(stderr.starts_with("error: ods_code: "), "{stderr}");
    let (code, _, stderr) = run(&["staff", "bind-practice", &staff, "--ods", "A81001"]);
    assert_eq!(code, Some(1));
    assert!(stderr.starts_with("error: staff_id: "), "{stderr}");
    let bound = app::access::bound_practice(&client, staff_id)
        .await
        .expect("read");
    assert_eq!(bound, None, "a link worker is never bound");

    let (code, token, stderr) = run(&["token", "issue", &staff, "--days", "30"]);
    assert_eq!(code, Some(0), "{stderr}");
    let store = eventstore::EventStore::new(db.app_pool(2), eventstore::Upcasters::new());
    let authenticator = app::access::Authenticator::new(&store);
    let principal = authenticator
        .authenticate(&token)
        .await
        .expect("the token works");
    assert_eq!(principal.staff_id.0, staff_id);
    assert_eq!(principal.organisation_id, id(&organisation));

    let token_id = principal.token_id.to_string();
    let (code, revoked, stderr) = run(&["token", "revoke", &token_id]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(revoked, format!("revoked {token_id}"));
    assert!(authenticator.authenticate(&token).await.is_err());
    let (code, _, stderr) = run(&["token", "revoke", &token_id]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!("error: token {token_id} was already revoked")
    );
    let (code, _, stderr) = run(&["token", "revoke", &uuid::Uuid::new_v4().to_string()]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr, "error: no such token");

    // The console holds to the API's lifetime cap.
    let (code, _, _) = run(&["token", "issue", &staff, "--days", "100000"]);
    assert_eq!(code, Some(2), "clap refuses a lifetime over 400 days");
    // An enrolment code, redeemed by its holder, and the listing that says so.
    let (code, printed, stderr) = run(&["staff", "enrol", &staff, "--hours", "2"]);
    assert_eq!(code, Some(0), "{stderr}");
    let enrolment_code = printed.lines().next().expect("the code").to_owned();
    assert!(enrolment_code.starts_with("cbe_"), "{printed}");
    let mut client = db.app_client().await;
    let redeemed = app::access::redeem_enrolment(
        &mut client,
        &enrolment_code,
        chrono::Duration::days(1),
        "laptop",
    )
    .await
    .expect("the holder redeems it");
    let (code, listed, stderr) = run(&["token", "list", &staff]);
    assert_eq!(code, Some(0), "{stderr}");
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    let via: Vec<&str> = listed["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t["issued_via"].as_str().expect("issued_via"))
        .collect();
    assert_eq!(via, ["enrolment", "operator"], "newest first");
    assert_eq!(
        listed["enrolments"][0]["issued_by"],
        serde_json::Value::Null
    );
    // Deactivated: the redeemed token stops at once.
    assert!(authenticator.authenticate(&redeemed.token).await.is_ok());
    let (code, printed, stderr) = run(&["staff", "deactivate", &staff]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        printed,
        format!("deactivated {staff_id}: 1 tokens and 0 enrolments revoked")
    );
    assert!(authenticator.authenticate(&redeemed.token).await.is_err());
    let (code, _, stderr) = run(&["token", "issue", &staff, "--days", "30"]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr, "error: staff_id: this staff member is not active");
    let (code, _, stderr) = run(&["staff", "activate", &staff]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(authenticator.authenticate(&redeemed.token).await.is_err());
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir).expect("clean up");
    }
}

/// The URL of a database in one of our clusters, as `CASEBOOK_*_URL` takes it (no user: the
/// one the setting defaults to).
fn cluster_url(cluster: &db::Cluster, user: Option<&str>, dbname: &str) -> String {
    let socket = cluster.socket_dir().to_string_lossy().replace('/', "%2F");
    let user = user.map(|u| format!("{u}@")).unwrap_or_default();
    format!("postgresql://{user}{socket}:5432/{dbname}")
}

/// `serve --replica-url` reads caseloads and directory searches from the replica: with the
/// replica's replay paused, a read with `?after=` a new write cannot be answered (the
/// primary's read models have it, the replica's do not), and once it replays, it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_a_replica_url_reads_from_the_replica() {
    let pair = testkit::ReplicatedCluster::start().await;
    let primary = cluster_url(
        pair.primary(),
        Some("postgres"),
        testkit::REPLICATED_DATABASE,
    );
    let replica = cluster_url(pair.standby(), None, testkit::REPLICATED_DATABASE);
    let data_dir = process::scratch("replica");
    let key = "ef".repeat(32);
    let env = [
        ("CASEBOOK_DATABASE_URL", primary.as_str()),
        ("CASEBOOK_MASTER_KEY", key.as_str()),
    ];
    let run = |args: &[&str]| casebook_env_ok(&data_dir, args, &env);
    let organisation = run(&["org", "add", "Mendip Link"]);
    let team = run(&["team", "add", "--organisation", &organisation, "Frome"]);
    let worker = run(&add_link_worker(&organisation, &team));
    let token = run(&["token", "issue", &worker, "--days", "1"]);

    let mut child = process::serve_command(&data_dir, &[])
        .env("CASEBOOK_DATABASE_URL", &primary)
        .env("CASEBOOK_REPLICA_URL", &replica)
        .env("CASEBOOK_MASTER_KEY", &key)
        .env("CASEBOOK_READ_WAIT_MS", "1000")
        .spawn()
        .expect("start casebook serve");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("read from the replica") {
                let _ = sender.send(None);
            }
            if let Some(rest) = line.split("address=").nth(1) {
                let address = rest.split_whitespace().next().unwrap_or_default();
                let _ = sender.send(Some(address.to_owned()));
            }
        }
    });
    let said_replica = receiver
        .recv_timeout(Duration::from_secs(120))
        .expect("casebook serve starts");
    assert_eq!(
        said_replica, None,
        "it says it reads from the replica first"
    );
    let address = receiver
        .recv_timeout(Duration::from_secs(120))
        .expect("casebook serve reports its address")
        .expect("an address");
    let running = process::Running::adopt(child, format!("http://{address}"));
    let http = reqwest::Client::new();
    let get = async |path: String| {
        http.get(format!("{}{path}", running.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("a read")
            .status()
            .as_u16()
    };

    pair.pause_replay().await;
    let client = uuid::Uuid::new_v4();
    let referral = http
        .post(format!(
            "{}/api/v1/clients/{client}/referrals",
            running.base
        ))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "client": {
                "personal": {
                    "given_name": "Maggie", "family_name": "Thornbury",
                    "date_of_birth": "1948-05-02", "nhs_number": "943 476 5919",
                    "phone": "01373 000000", "email": null, "address": "3 Vicarage St", "postcode": "BA11 1PX"
                },
                "area": "Frome"
            },
            "referral": {
                "referral_id": uuid::Uuid::new_v4(), "source": "self_referral",
                "referrer": { "staff_id": null, "name": null, "organisation": null },
                "reasons": ["loneliness_isolation"], "urgency": "routine",
                "received_on": chrono::Utc::now().date_naive().to_string(), "note": "Lives alone."
            }
        }))
        .send()
        .await
        .expect("a referral");
    assert_eq!(referral.status(), 201);
    let reply: serde_json::Value = referral.json().await.expect("a reply");
    let at = reply["position"].as_i64().expect("a position");
    // The primary's own read models pass the write (the replica's cannot, paused).
    let primary_store = eventstore::EventStore::new(
        db::pool(pair.primary_app(), db::PoolSettings { max_size: 2 }).expect("a pool"),
        eventstore::Upcasters::new(),
    );
    app::Freshness::new(
        primary_store,
        app::ReadWait::at_most(Duration::from_secs(60)),
    )
    .wait(&["caseload_v1", "directory_v1"], Some(at))
    .await
    .expect("the primary's read models pass the write");
    assert_eq!(get(format!("/api/v1/caseload?after={at}")).await, 503);
    assert_eq!(
        get(format!("/api/v1/directory/services?after={at}")).await,
        503
    );
    pair.resume_replay().await;
    assert_eq!(get(format!("/api/v1/caseload?after={at}")).await, 200);
    assert_eq!(
        get(format!("/api/v1/directory/services?after={at}")).await,
        200
    );
    stop(running);
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir).expect("clean up");
    }
}

/// `casebook anchor` seals the log into an anchor file; `verify --anchor` holds the log against
/// it and exits 1, naming what broke, once a superuser has deleted an event.
#[tokio::test]
async fn anchor_then_verify_with_the_anchor_file_catches_a_deleted_event() {
    let (db, master, store) = sealed_store().await;
    let url = database_url(&db);
    let first = closed_client(&db, &store, 1).await;
    closed_client(&db, &store, 1).await;
    let data_dir = process::scratch("anchor");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let anchor_file = data_dir.join("anchors.jsonl");
    let anchor_path = anchor_file.to_string_lossy().into_owned();
    let master_text = master.to_base64();
    let anchor_key = "cd".repeat(32);
    let env = [
        ("CASEBOOK_DATABASE_URL", url.as_str()),
        ("CASEBOOK_MASTER_KEY", master_text.as_str()),
        ("CASEBOOK_ANCHOR_KEY", anchor_key.as_str()),
    ];
    let run = |args: &[&str]| casebook_out(&data_dir, args, &env);

    // A transaction running elsewhere on the test cluster may hold the newest events back from
    // a seal for a moment: seal until the checkpoint takes all eight.
    let mut sealed = 0;
    for _ in 0..200 {
        let (code, stdout, stderr) = run(&["anchor", "--out", &anchor_path]);
        assert_eq!(code, Some(0), "{stderr}");
        let checkpoint = eventstore::anchor::Checkpoint::from_line(stdout.trim()).expect("a line");
        sealed = checkpoint.events;
        if sealed == 10 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(sealed, 10);
    let (code, stdout, stderr) = run(&["verify", "--anchor", &anchor_path]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("10 events sealed"), "{stdout}");

    let admin = db.admin_client().await;
    admin
        .batch_execute(&format!(
            "SET session_replication_role = replica; \
             DELETE FROM events WHERE stream_id = '{first}' AND stream_version = 5"
        ))
        .await
        .expect("tamper");
    let (code, stdout, _) = run(&["verify", "--anchor", &anchor_path]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.starts_with("ok: 9 events"), "{stdout}");
    assert!(
        stdout.contains("sealed 10 events, but the log holds only 9: events were deleted"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&data_dir).expect("clean up");
}

/// The outbound copy of the anchors: `serve` hands every new checkpoint to the configured
/// command, whose copy then verifies the log on its own; `casebook anchor` fails when the
/// command does.
#[tokio::test(flavor = "multi_thread")]
async fn every_new_anchor_is_sent_through_the_outbound_command() {
    let data_dir = process::scratch("outbound");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let copy = data_dir.join("elsewhere.jsonl");
    let command = format!("cat >> '{}'", copy.display());
    let running = tokio::task::block_in_place(|| {
        process::start_with(
            &data_dir,
            &[
                "--demo",
                "--demo-clients",
                "0",
                "--anchor-command",
                &command,
            ],
        )
    });
    stop(running);

    let anchors = std::fs::read_to_string(data_dir.join("anchors.jsonl")).expect("the anchors");
    let sent = std::fs::read_to_string(&copy).expect("the outbound copy");
    let last = |text: &str| text.lines().last().map(str::to_owned);
    assert!(last(&sent).is_some(), "something was sent");
    assert_eq!(
        last(&sent),
        last(&anchors),
        "the newest anchor went out as it was written"
    );
    let out = casebook(
        &data_dir,
        &["verify", "--anchor", &copy.to_string_lossy()],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");

    // A command that leaves a helper running in the background, holding its error output open
    // (as an ssh connection kept for reuse does), succeeded when it exited: its exit decides,
    // not the end of its output (waiting for that would time out after 30 s and fail).
    let lingering = format!("sleep 45 >&2 & cat >> '{}'", copy.display());
    let out = casebook(
        &data_dir,
        &["anchor"],
        &[("CASEBOOK_ANCHOR_COMMAND", lingering.as_str())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent_again = std::fs::read_to_string(&copy).expect("the outbound copy");
    assert_eq!(
        last(&sent_again),
        last(&anchors),
        "casebook anchor sends the newest checkpoint"
    );

    let refused = casebook(
        &data_dir,
        &["anchor"],
        &[(
            "CASEBOOK_ANCHOR_COMMAND",
            "echo the far side said no >&2; exit 3",
        )],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the far side said no"), "{stderr}");
    std::fs::remove_dir_all(&data_dir).expect("clean up");
}

/// `serve --demo` prints a one-time sign-in link for each demo role (issue #17): the link's
/// page has one button; sent, it signs that person in to the console where their role lands,
/// with the session cookie's flags; sent again, it opens nothing.
#[tokio::test(flavor = "multi_thread")]
async fn serve_demo_prints_a_one_time_sign_in_link_for_each_role() {
    let data_dir = process::scratch("demo-links");
    let running = tokio::task::block_in_place(|| {
        process::start_with(&data_dir, &["--demo", "--demo-clients", "0"])
    });
    let value = |line: &str, name: &str| {
        line.split(&format!(" {name}="))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(|v| v.trim_matches('"').to_owned())
    };
    // The links are logged once the service listens.
    let started = std::time::Instant::now();
    let links: Vec<(String, String)> = loop {
        let links: Vec<(String, String)> = running
            .log()
            .lines()
            .filter(|line| line.contains("web console: one-time sign-in link"))
            .filter_map(|line| Some((value(line, "role")?, value(line, "link")?)))
            .collect();
        if links.len() == 8 || started.elapsed() > Duration::from_secs(120) {
            break links;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let roles: Vec<&str> = links.iter().map(|(role, _)| role.as_str()).collect();
    assert_eq!(
        roles,
        [
            "referrer",
            "link_worker",
            "team_lead",
            "auditor",
            "reporting_analyst",
            "administrator",
            "practice_system",
            "service_provider"
        ],
        "{}",
        running.log()
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    for (role, link) in &links {
        let code = link
            .strip_prefix(&format!("{}/console/sign-in?code=", running.base))
            .unwrap_or_else(|| panic!("{role}'s link is not to the service's sign-in: {link}"));
        assert!(code.starts_with("cbl_"), "{link}");
        // Opened, the page asks for the button (a link scanner following it uses nothing up).
        let page = get(&http, &running, &format!("/console/sign-in?code={code}")).await;
        assert_eq!(page.status(), 200);
        assert!(
            page.text()
                .await
                .expect("a page")
                .contains("id=\"sign-in\"")
        );
        let sign_in = || {
            http.post(format!("{}/console/sign-in", running.base))
                .form(&[("code", code)])
                .send()
        };
        let signed_in = sign_in().await.expect("signing in");
        assert_eq!(signed_in.status(), 303, "{role}");
        let cookie = signed_in.headers()["set-cookie"]
            .to_str()
            .expect("a cookie")
            .to_owned();
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
            assert!(
                cookie.contains(flag),
                "{role}: {flag} missing from {cookie}"
            );
        }
        let session = cookie.split(';').next().expect("the cookie's value");
        let home = http
            .get(format!("{}/console", running.base))
            .header("cookie", session)
            .send()
            .await
            .expect("the console");
        let landing = home
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let expected = match role.as_str() {
            "link_worker" | "team_lead" => Some("/console/caseload"),
            "auditor" => Some("/console/audit"),
            "reporting_analyst" => Some("/console/reports"),
            "administrator" => Some("/console/admin"),
            "service_provider" => Some("/console/provider"),
            _ => None,
        };
        assert_eq!(landing.as_deref(), expected, "{role} lands");
        if expected.is_none() {
            assert_eq!(home.status(), 200, "{role}: signed in, with no pages yet");
        }
        // Once only.
        let again = sign_in().await.expect("signing in again");
        assert_ne!(again.status(), 303, "{role}'s link worked twice");
        assert!(again.headers().get("set-cookie").is_none());
    }
    stop(running);
    std::fs::remove_dir_all(&data_dir).expect("clean up");
}
