//! Demo access: an organisation with a team and one staff member in each role, and fresh
//! tokens for them written to a file the user can `source`, so that a new install can be tried
//! with curl at once; and the sample directory. (The synthetic population of clients comes
//! with `casebook demo`.)

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use app::access::{self, NewStaff, Role};
use app::directory::{DirectoryService, ImportReport};
use eventstore::EventStore;
use uuid::Uuid;

/// The sample directory (made-up services in Mendip's towns) the demo and the tests use.
pub const SAMPLE_DIRECTORY: &str = include_str!("../demo/sample-directory.json");

/// Imports the sample directory at `at` for `organisation` (the demo organisation), which so
/// owns the services it lists: its administrator and team lead may change them, and other
/// organisations may only connect people to them.
///
/// # Errors
/// A store failure.
pub async fn import_sample_directory(
    store: &EventStore,
    organisation: Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<ImportReport> {
    let document: serde_json::Value =
        serde_json::from_str(SAMPLE_DIRECTORY).context("the sample directory is not JSON")?;
    let records = app::directory::records_of(document).map_err(anyhow::Error::msg)?;
    let metadata = eventstore::Metadata {
        organisation_id: organisation,
        ..app::operator_metadata(at)
    };
    let report = DirectoryService::new(store.clone())
        .import(records, false, &metadata, |_| {})
        .await?;
    Ok(report)
}

/// The demo organisation's name.
pub const DEMO_ORGANISATION: &str = "Demo Social Prescribing Service";
const DEMO_TEAM: &str = "Town Centre";
const TOKEN_LABEL: &str = "demo";
/// The practice the demo's practice system is bound to (one of the demo people's practices).
pub const DEMO_PRACTICE: &str = "L85016";

/// The demo organisation and its staff, with tokens.
#[derive(Clone, Debug)]
pub struct DemoAccess {
    pub organisation_id: Uuid,
    pub team_id: Uuid,
    /// (role, staff id, token)
    pub staff: Vec<(Role, Uuid, String)>,
}

fn demo_name(role: Role) -> &'static str {
    match role {
        Role::Referrer => "Dr Priya Shah (GP referrer)",
        Role::LinkWorker => "Sam Okafor (link worker)",
        Role::TeamLead => "Jo Marsh (team lead)",
        Role::Auditor => "Alex Byrne (auditor)",
        Role::ReportingAnalyst => "Kim Lowe (reporting analyst)",
        Role::Administrator => "Pat Quinn (administrator)",
        Role::PracticeSystem => "Frome Medical Practice (practice system)",
        Role::ServiceProvider => "Chris Dunn (provider staff)",
    }
}

/// Creates what is missing of the demo organisation, revokes the demo tokens of earlier starts
/// and issues new ones (valid 30 days).
///
/// # Errors
/// A database failure.
pub async fn ensure_demo_access(client: &tokio_postgres::Client) -> anyhow::Result<DemoAccess> {
    let organisation_id = access::ensure_organisation(client, DEMO_ORGANISATION).await?;
    let team_id = access::ensure_team(client, organisation_id, DEMO_TEAM)
        .await?
        .0;
    client
        .execute(
            "UPDATE api_tokens t SET revoked_at = now() FROM staff s \
             WHERE s.staff_id = t.staff_id AND s.organisation_id = $1 AND t.label = $2 \
             AND t.revoked_at IS NULL",
            &[&organisation_id, &TOKEN_LABEL],
        )
        .await?;
    let mut staff = Vec::new();
    for role in Role::ALL {
        let name = demo_name(role);
        let existing = client
            .query_opt(
                "SELECT staff_id FROM staff WHERE organisation_id = $1 AND name = $2",
                &[&organisation_id, &name],
            )
            .await?;
        let staff_id = match existing {
            Some(row) => row.get(0),
            None => {
                access::add_staff(
                    client,
                    &NewStaff {
                        organisation_id,
                        team_id: role.needs_team().then_some(team_id),
                        name: name.to_owned(),
                        role,
                        capacity: (role == Role::LinkWorker).then_some(220),
                    },
                )
                .await?
                .staff_id
            }
        };
        if role == Role::PracticeSystem {
            access::bind_practice(client, staff_id, DEMO_PRACTICE).await?;
        }
        let token = access::issue_token(
            client,
            staff_id,
            chrono::Duration::days(30),
            TOKEN_LABEL,
            access::TokenIssuer::System,
        )
        .await?;
        staff.push((role, staff_id, token.token));
    }
    // The deprivation deciles of the demo's area (a real extract) and its invented postcodes
    // (an illustrative lookup), for the equity breakdowns.
    app::equity::load_demo_imd(client).await?;
    Ok(DemoAccess {
        organisation_id,
        team_id,
        staff,
    })
}

/// Writes `export CASEBOOK_<ROLE>_TOKEN=...` lines (and the ids) to `<dir>/demo-tokens.env`,
/// readable by the owner only; returns the path.
///
/// # Errors
/// When the file cannot be written.
pub fn write_tokens(dir: &Path, demo: &DemoAccess) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("demo-tokens.env");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(
        file,
        "# Demo tokens for {DEMO_ORGANISATION}; new ones at every `serve --demo`."
    )?;
    writeln!(file, "export CASEBOOK_TEAM_ID={}", demo.team_id)?;
    for (role, staff_id, token) in &demo.staff {
        let upper = role.as_str().to_ascii_uppercase();
        writeln!(file, "export CASEBOOK_{upper}_TOKEN={token}")?;
        writeln!(file, "export CASEBOOK_{upper}_ID={staff_id}")?;
    }
    Ok(path)
}
