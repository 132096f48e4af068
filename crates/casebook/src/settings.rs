//! Command-line flags and their environment variables: the only configuration there is.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::rebuild::{RebuildOptions, RebuildTarget};

/// Casebook keeps the case records of social prescribing services as an append-only event log.
#[derive(Debug, Parser)]
#[command(name = "casebook", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(
        long,
        env = "CASEBOOK_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the database is.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseSettings {
    /// PostgreSQL URL of an existing server (owner role: runs migrations). Without it Casebook
    /// starts and owns a private cluster in --data-dir.
    #[arg(
        long,
        env = "CASEBOOK_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// URL the service itself connects with (INSERT and SELECT only on the log). Defaults to
    /// --database-url with the user `casebook_app`.
    #[arg(
        long,
        env = "CASEBOOK_APP_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub app_database_url: Option<String>,
    /// URL of a streaming read replica of the database (a hot standby), which caseloads,
    /// outcome and gap reports and directory searches are read from; commands, the reads of a
    /// record (they write the read audit) and the projectors stay on the primary. Without a
    /// user in it, the user is `casebook_app`.
    #[arg(
        long,
        env = "CASEBOOK_REPLICA_URL",
        global = true,
        hide_env_values = true
    )]
    pub replica_url: Option<String>,
    /// Home of the private cluster (default: the user's data dir; /var/lib/casebook as root).
    #[arg(long, env = "CASEBOOK_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Directory holding initdb/pg_ctl/postgres, when they are not found by themselves.
    #[arg(long, env = "CASEBOOK_PG_BIN", global = true)]
    pub pg_bin: Option<PathBuf>,
    /// The master key that wraps every person's data key (64 hex digits or base64 of 32 bytes).
    /// Required with --database-url (or its file); a private cluster without one uses
    /// <data dir>/master.key, made on first start.
    #[arg(
        long,
        env = "CASEBOOK_MASTER_KEY",
        global = true,
        hide_env_values = true,
        conflicts_with = "master_key_file"
    )]
    pub master_key: Option<String>,
    /// A file holding the master key.
    #[arg(long, env = "CASEBOOK_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
    /// The key that signs the log's checkpoints and anchors (64 hex digits or base64 of 32
    /// bytes; `casebook key generate` makes one). Keep it away from the database and its
    /// superuser. A private cluster without one uses <data dir>/anchor.key, made on first start;
    /// with --database-url and none, nothing is sealed and `verify` checks the hash chains only.
    #[arg(
        long,
        env = "CASEBOOK_ANCHOR_KEY",
        global = true,
        hide_env_values = true,
        conflicts_with = "anchor_key_file"
    )]
    pub anchor_key: Option<String>,
    /// A file holding the anchor key.
    #[arg(long, env = "CASEBOOK_ANCHOR_KEY_FILE", global = true)]
    pub anchor_key_file: Option<PathBuf>,
    /// The anchor file: every checkpoint is appended to it as a line of JSON. Keep it where the
    /// database's superuser cannot write (another machine's mount, a log shipper's input).
    /// Default for a private cluster: <data dir>/anchors.jsonl; with --database-url, none.
    #[arg(long, env = "CASEBOOK_ANCHOR_FILE", global = true)]
    pub anchor_file: Option<PathBuf>,
    /// The outbound copy of the anchors: a command run (`sh -c`) for each new checkpoint, with
    /// its line of JSON on standard input, that must exit 0 within 30 s (e.g. one that sends it
    /// to another machine). `serve` and `project` try a failed copy again at their next turn;
    /// `casebook anchor` fails.
    #[arg(long, env = "CASEBOOK_ANCHOR_COMMAND", global = true)]
    pub anchor_command: Option<String>,
    /// Most connections in the service's pool.
    #[arg(long, env = "CASEBOOK_POOL_SIZE", default_value_t = 16, global = true)]
    pub pool_size: usize,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (and its private database, when no URL is given).
    Serve {
        /// Address and port to listen on.
        #[arg(long, env = "CASEBOOK_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Set up a demo organisation with one staff member per role, write their tokens to
        /// <data dir>/demo-tokens.env, import the sample directory, and make the demo
        /// population in the background (as `casebook demo` does).
        #[arg(long)]
        demo: bool,
        /// People in the demo population `--demo` makes.
        #[arg(long, default_value_t = 2000)]
        demo_clients: usize,
        /// The longest a read with `?after=` waits for its read model to apply that event, in
        /// milliseconds, before it answers 503 with Retry-After.
        #[arg(long, env = "CASEBOOK_READ_WAIT_MS", default_value_t = 5000)]
        read_wait_ms: u64,
        /// A file holding the bearer token that opens /metrics to a scraper on another
        /// machine; without it, /metrics answers only the loopback address.
        #[arg(long, env = "CASEBOOK_METRICS_TOKEN_FILE")]
        metrics_token_file: Option<std::path::PathBuf>,
        /// Bad bearer tokens one address may present in a minute before it is turned away
        /// (429 with Retry-After) until the minute ends.
        #[arg(long, env = "CASEBOOK_AUTH_FAILURES_PER_MINUTE", default_value_t = 30)]
        auth_failures_per_minute: u32,
        /// The address of a reverse proxy in front of the service whose `X-Forwarded-For` is
        /// believed for who is calling, and its `X-Forwarded-Host` for the host the browser
        /// asked for (the console checks a form's Origin against it) (repeat for more;
        /// comma-separated in the environment). Without one, both headers are ignored and
        /// callers through a proxy on this machine are one loopback source, which the
        /// bad-token limit does not count.
        #[arg(
            long = "trusted-proxy",
            env = "CASEBOOK_TRUSTED_PROXIES",
            value_delimiter = ','
        )]
        trusted_proxies: Vec<std::net::IpAddr>,
        #[command(flatten)]
        sealing: SealSettings,
        /// Attempts to start the private PostgreSQL cluster again when it stops while the
        /// service runs (checked every second; the pause between attempts doubles from half a
        /// second to 30 s); 0 never restarts it. A server given by URL is never restarted.
        #[arg(long, env = "CASEBOOK_CLUSTER_RESTART_ATTEMPTS", default_value_t = 10)]
        cluster_restart_attempts: u32,
        #[command(flatten)]
        oidc: Box<OidcArgs>,
        /// How often the task maker raises the tasks the task rules call for
        /// (projections/tasks/), in seconds; 0 never (run `casebook tasks make` instead).
        #[arg(long, env = "CASEBOOK_TASK_MAKER_EVERY_SECONDS", default_value_t = 300)]
        task_maker_every_seconds: u64,
        /// How often the GP message dispatcher looks for messages due (the outbox), in
        /// seconds; 0 never (run `casebook outbox dispatch` instead).
        #[arg(long, env = "CASEBOOK_GP_OUTBOX_EVERY_SECONDS", default_value_t = 5)]
        gp_outbox_every_seconds: u64,
        /// Let GP practices' endpoints be on loopback or private networks (an HSCN gateway on
        /// the service's own network); without it only public addresses are reached, so that an
        /// organisation's administrator cannot point the service at its own host.
        #[arg(long, env = "CASEBOOK_GP_ENDPOINTS_PRIVATE")]
        gp_endpoints_private: bool,
        #[command(flatten)]
        notify: Box<NotifyArgs>,
    },
    /// Make a believable service for the demo organisation through the real command path:
    /// link workers, the sample directory, and people's journeys over the past year. The same
    /// seed makes the same people; people already there are skipped.
    Demo {
        /// How many people.
        #[arg(long, default_value_t = 2000)]
        clients: usize,
        /// The seed.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// People made at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Run the projections (and the sealer) on their own (no HTTP) until stopped.
    Project {
        #[command(flatten)]
        sealing: SealSettings,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// Walk the event log's hash chains, recompute the log-wide chains of the log and the read
    /// audit, and hold them against every checkpoint (and anchor); exit 1 when anything broke.
    Verify {
        /// An anchor file (JSON lines, as `serve` and `casebook anchor` write them); may be given
        /// more than once. Without it, the configured anchor file, when it exists.
        #[arg(long)]
        anchor: Vec<PathBuf>,
    },
    /// Seal the log and the read audit now: write a checkpoint and append it to the anchor
    /// file (--out, or the configured one), and print it.
    Anchor {
        /// The anchor file to append the checkpoint to (default: the configured anchor file).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Measure against PostgreSQL's own limit on the same cluster (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(devtools::Bench),
    /// Replay the log into a projection beside the one in use (resuming an interrupted
    /// rebuild), then switch reports to it. The log is only read.
    Rebuild(RebuildArgs),
    /// Drop the figures of a rule version reports no longer use (the log is untouched).
    Drop {
        /// `outcomes`.
        projection: String,
        /// The rule version whose figures go.
        #[arg(long)]
        rules: i32,
    },
    /// Show the outcome figures of two rule versions side by side, with what differs.
    Compare {
        /// `outcomes`.
        projection: String,
        a: i32,
        b: i32,
        /// One organisation's figures (default: all).
        #[arg(long)]
        organisation: Option<uuid::Uuid>,
    },
    /// Erase one person's personal data (crypto-shredding): destroys their data key and
    /// records why. Their case still counts in reports; `verify` still passes.
    Erase {
        /// The client's id.
        client: uuid::Uuid,
        /// Why, without personal data (it is kept): "retention period ended", a request reference.
        #[arg(long)]
        reason: String,
    },
    /// List (by default) or erase the records past their retention period: concluded (closed,
    /// or referral declined or redirected) longer ago than the personal data rules keep them.
    Retention {
        /// List only; the default.
        #[arg(long, conflicts_with = "apply")]
        dry_run: bool,
        /// Erase every record listed.
        #[arg(long)]
        apply: bool,
        /// The personal data rules version (projections/privacy/v{N}.toml); default the latest.
        #[arg(long)]
        rules: Option<i32>,
        /// Years to keep, instead of the rules' (a local decision recorded in the DPIA).
        #[arg(long)]
        years: Option<u32>,
    },
    /// Master keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The directory of services, in Open Referral UK JSON.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Organisations (tenants): nothing crosses between them.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Teams of link workers within an organisation.
    #[command(subcommand)]
    Team(TeamCommand),
    /// Staff accounts, one role each.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Bearer tokens for staff.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Tasks: raise the tasks the task rules call for (projections/tasks/).
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// The English Indices of Deprivation 2019, for equity reports' deprivation deciles.
    #[command(subcommand)]
    Imd(ImdCommand),
    /// Messages back to GP practices (projections/gp_messages/).
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// A previous system's records (docs/history-import.md).
    #[command(subcommand)]
    History(HistoryCommand),
}

/// `casebook history ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum HistoryCommand {
    /// Import a previous system's export (CSV, or JSON lines for `.jsonl`): every row through
    /// the same rules as a command, dated when it happened; refused rows are reported with
    /// their line and reason, the rest imported. Importing the same file again adds nothing.
    Import {
        /// The export.
        file: std::path::PathBuf,
        /// The previous system's name (part of every id derived from the file's own ids).
        #[arg(long)]
        system: String,
        /// The organisation the records belong to.
        #[arg(long)]
        organisation: uuid::Uuid,
        /// The link worker or team lead each accepted case is assigned to.
        #[arg(long)]
        assign_to: uuid::Uuid,
        /// Their team.
        #[arg(long)]
        team: uuid::Uuid,
        /// Where the refused rows go, as CSV (line, record_id, field, rule, reason); default
        /// standard output.
        #[arg(long)]
        refused: Option<std::path::PathBuf>,
        /// People per bulk append.
        #[arg(long, default_value_t = 250)]
        batch_people: usize,
    },
}

/// `casebook imd ...`: reference data, loaded as the database's owner; no download.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ImdCommand {
    /// Load File 1 of the English Indices of Deprivation 2019 (MHCLG, Open Government Licence
    /// v3.0), saved as CSV with its published column names ("LSOA code (2011)", "LSOA name
    /// (2011)", "Index of Multiple Deprivation (IMD) Rank", "Index of Multiple Deprivation (IMD)
    /// Decile"); `--demo` loads the shipped extract (Mendip's LSOAs) and the demo's illustrative
    /// postcodes instead.
    Load {
        /// The CSV file (not with `--demo`).
        #[arg(required_unless_present = "demo")]
        file: Option<std::path::PathBuf>,
        #[arg(long, conflicts_with = "file")]
        demo: bool,
    },
    /// Load a postcode to LSOA lookup: a CSV with the ONS postcode directories' `pcds` and
    /// `lsoa11` columns (the National Statistics Postcode Lookup, Open Government Licence).
    Postcodes {
        /// The CSV file.
        file: std::path::PathBuf,
    },
}

/// `casebook outbox ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum OutboxCommand {
    /// Send, once, every GP message due now (as `serve` does every few seconds); prints what
    /// came of them.
    Dispatch {
        /// As `serve --gp-endpoints-private`: endpoints on loopback or private networks too.
        #[arg(long, env = "CASEBOOK_GP_ENDPOINTS_PRIVATE")]
        gp_endpoints_private: bool,
    },
    /// Send, once, every appointment reminder due now (as `serve` does when a notification
    /// service is configured); prints what came of them.
    Reminders {
        #[command(flatten)]
        notify: NotifyArgs,
    },
}

/// The notification service appointment reminders are posted to (GOV.UK Notify's API shape).
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyArgs {
    /// Its base URL (`https://api.notifications.service.gov.uk`); without it no reminder is
    /// sent (they wait in the outbox).
    #[arg(long = "notify-url", env = "CASEBOOK_NOTIFY_URL")]
    pub notify_url: Option<String>,
    /// Its API key, sent as a bearer token: from the environment only (never an argument,
    /// which other users of the machine can read), and never logged.
    #[arg(skip = NotifyKey::from_env())]
    pub notify_api_key: NotifyKey,
    /// How often the reminder dispatcher looks for reminders due, in seconds; 0 never.
    #[arg(long, env = "CASEBOOK_REMINDERS_EVERY_SECONDS", default_value_t = 30)]
    pub reminders_every_seconds: u64,
    /// Let the notification service be on loopback or a private network (a local stand-in);
    /// without it only public https addresses are reached.
    #[arg(long, env = "CASEBOOK_NOTIFY_PRIVATE")]
    pub notify_private: bool,
    /// The id of this service's text message reminder template at the notification service
    /// (given `date`, `time` and `how`); without one, text reminders are held until it is set.
    #[arg(long, env = "CASEBOOK_NOTIFY_SMS_TEMPLATE")]
    pub notify_sms_template: Option<String>,
    /// The id of this service's email reminder template at the notification service; without
    /// one, email reminders are held until it is set.
    #[arg(long, env = "CASEBOOK_NOTIFY_EMAIL_TEMPLATE")]
    pub notify_email_template: Option<String>,
}

/// The notification service's API key (`CASEBOOK_NOTIFY_API_KEY`), shown as redacted.
#[derive(Clone, Default)]
pub struct NotifyKey(Option<String>);

impl NotifyKey {
    /// Read from `CASEBOOK_NOTIFY_API_KEY` (none when unset or empty).
    pub fn from_env() -> NotifyKey {
        NotifyKey(
            std::env::var("CASEBOOK_NOTIFY_API_KEY")
                .ok()
                .map(|key| key.trim().to_owned())
                .filter(|key| !key.is_empty()),
        )
    }
}

impl std::fmt::Debug for NotifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "[redacted]"
        } else {
            "None"
        })
    }
}

impl NotifyArgs {
    /// The endpoint, when both its URL and its key are set.
    ///
    /// # Errors
    /// A URL without a key, or one that is not http(s).
    pub fn endpoint(&self) -> anyhow::Result<Option<app::reminders::NotifyEndpoint>> {
        match (&self.notify_url, &self.notify_api_key.0) {
            (None, _) => Ok(None),
            (Some(_), None) => anyhow::bail!(
                "--notify-url is set without CASEBOOK_NOTIFY_API_KEY in the environment"
            ),
            (Some(url), Some(key)) => {
                app::gp_outbox::check_endpoint_url(url)
                    .map_err(|e| anyhow::anyhow!("--notify-url: {e}"))?;
                Ok(Some(app::reminders::NotifyEndpoint {
                    base_url: url.clone(),
                    api_key: key.clone(),
                    templates: self.templates()?,
                }))
            }
        }
    }

    /// The reminder templates configured (each a template id, a UUID, as Notify shows it).
    ///
    /// # Errors
    /// One that is not a UUID, naming its flag.
    pub fn templates(&self) -> anyhow::Result<app::reminders::NotifyTemplates> {
        let read = |value: &Option<String>, flag: &str| -> anyhow::Result<Option<String>> {
            match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(id) => uuid::Uuid::try_parse(id)
                    .map(|id| Some(id.to_string()))
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "{flag}: {id:?} is not a template id (Notify shows each template's \
                             id, like 6d1a3b1e-8f0c-4f0e-9b5e-2a1f0c7d9e01)"
                        )
                    }),
            }
        };
        Ok(app::reminders::NotifyTemplates {
            sms: read(&self.notify_sms_template, "--notify-sms-template")?,
            email: read(&self.notify_email_template, "--notify-email-template")?,
        })
    }
}

/// `casebook tasks ...`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TasksCommand {
    /// Raise, once, every task the task rules call for now and that was not raised before
    /// (as `serve` does on a schedule); prints how many.
    Make,
}

/// How often the sealer writes a checkpoint.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct SealSettings {
    /// Seal at least this often, in seconds, when anything new was recorded (0: never).
    #[arg(long, env = "CASEBOOK_SEAL_EVERY_SECONDS", default_value_t = 300)]
    pub seal_every_seconds: u64,
    /// Seal as soon as this many events are waiting (checked every few seconds; 0: never).
    #[arg(long, env = "CASEBOOK_SEAL_EVERY_EVENTS", default_value_t = 10_000)]
    pub seal_every_events: i64,
}

/// What `casebook rebuild` rebuilds, and how.
#[derive(Debug, Clone, clap::Args)]
pub struct RebuildArgs {
    /// The read model.
    pub projection: RebuildProjection,
    /// The outcomes rule version (projections/outcomes/v{N}.toml); default the latest.
    #[arg(long)]
    pub rules: Option<i32>,
    /// Start again from the first event instead of resuming.
    #[arg(long)]
    pub restart: bool,
    /// Build it but leave reports on the version they use now.
    #[arg(long)]
    pub no_switch: bool,
}

/// The read models `casebook rebuild` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RebuildProjection {
    /// The outcome figures, under a rule version.
    Outcomes,
    /// The caseload.
    Caseload,
    /// The directory of services (rebuilt in place).
    Directory,
    /// The tasks (rebuilt in place).
    Tasks,
    /// Every read model from one read of the log: the caseload, the directory, and the outcome
    /// figures under every rule version kept and under `--rules` (default the latest).
    All,
}

impl RebuildArgs {
    /// The read model to rebuild; the outcomes under the latest rule version this build knows
    /// when `--rules` is not given.
    ///
    /// # Errors
    /// `--rules` for a read model without rule versions.
    pub fn target(&self) -> Result<RebuildTarget, clap::Error> {
        let no_rules = |what: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                format!("--rules: {what} has no rule versions"),
            )
        };
        match (self.projection, self.rules) {
            (RebuildProjection::Outcomes, rules) => Ok(RebuildTarget::Outcomes {
                rules: rules.unwrap_or_else(projector::rules::Rules::latest_version),
            }),
            (RebuildProjection::Caseload, None) => Ok(RebuildTarget::Caseload),
            (RebuildProjection::Directory, None) => Ok(RebuildTarget::Directory),
            (RebuildProjection::Tasks, None) => Ok(RebuildTarget::Tasks),
            (RebuildProjection::All, rules) => Ok(RebuildTarget::All {
                rules: rules.unwrap_or_else(projector::rules::Rules::latest_version),
            }),
            (RebuildProjection::Caseload, Some(_)) => Err(no_rules("the caseload")),
            (RebuildProjection::Directory, Some(_)) => Err(no_rules("the directory")),
            (RebuildProjection::Tasks, Some(_)) => Err(no_rules("the tasks")),
        }
    }

    /// How to run it, with a progress bar when `progress`.
    pub fn options(&self, progress: bool) -> RebuildOptions {
        RebuildOptions {
            restart: self.restart,
            switch: !self.no_switch,
            progress,
        }
    }
}

/// The directory of services.
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Import an ORUK `/services` dump (a page, a list of pages, or a list of services): adds,
    /// updates and withdraws services by id; importing the same file again changes nothing.
    Import {
        /// The JSON file.
        file: std::path::PathBuf,
        /// Withdraw listed services the file does not name (the file is the whole source).
        #[arg(long)]
        withdraw_missing: bool,
        /// Import as this organisation's services (its administrators and team leads change
        /// them); without it, the operator's own, which only the operator changes.
        #[arg(long)]
        organisation: Option<uuid::Uuid>,
    },
    /// Pass a listed service to another organisation, by agreement (the operator's override,
    /// whoever owns it now); `--to 00000000-0000-0000-0000-000000000000` gives it to the
    /// operator.
    Transfer {
        /// The service's id.
        service: uuid::Uuid,
        /// The organisation that changes it from now on.
        #[arg(long)]
        to: uuid::Uuid,
        /// Why (kept in the service's history).
        #[arg(long)]
        reason: String,
    },
    /// Write every listed service as one ORUK page.
    Export {
        /// Where to write (default: standard output).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

/// The web console's sign-in with an OpenID Connect provider (NHS CIS2, Entra ID, ...).
#[derive(Debug, Clone, clap::Args)]
pub struct OidcArgs {
    /// The OpenID provider's issuer URL, exactly as its ID tokens' `iss` (its metadata is at
    /// <issuer>/.well-known/openid-configuration). The sign-in page then offers it; staff sign
    /// in once the operator has linked their identity (`casebook staff link-identity`).
    #[arg(long, env = "CASEBOOK_OIDC_ISSUER", requires = "oidc_client_id")]
    pub oidc_issuer: Option<String>,
    /// The client id the provider registered Casebook under.
    #[arg(long, env = "CASEBOOK_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// A file holding the client secret (never on the command line); none for a public client.
    #[arg(long, env = "CASEBOOK_OIDC_CLIENT_SECRET_FILE")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// The provider's name on the sign-in button ("Sign in with <name>"); default the issuer's
    /// host.
    #[arg(long, env = "CASEBOOK_OIDC_NAME")]
    pub oidc_name: Option<String>,
    /// The console's address as browsers reach it (behind a proxy, its https address); the
    /// provider sends them back to <public url>/console/oidc/callback, which must be registered
    /// with it. Default: http://<listen address>.
    #[arg(long, env = "CASEBOOK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// An authentication assurance level (`acr`) sign-ins must have, asked for as `acr_values`
    /// (for NHS CIS2, `AAL3_ANY`: a smartcard or its equivalents); repeat, or separate with
    /// commas, to accept several. Default: any the provider gives.
    #[arg(long, env = "CASEBOOK_OIDC_ACR", value_delimiter = ',')]
    pub oidc_acr: Vec<String>,
}

impl OidcArgs {
    /// The console's OpenID settings, the secret read from its file; none without an issuer.
    ///
    /// # Errors
    /// When the secret file cannot be read or is empty, or the issuer or public URL is not an
    /// http(s) URL.
    pub fn console(&self) -> anyhow::Result<Option<crate::http::ConsoleOidc>> {
        use anyhow::Context;
        let Some(issuer) = self.oidc_issuer.clone() else {
            return Ok(None);
        };
        let host = |url: &str, what: &str| -> anyhow::Result<String> {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .with_context(|| format!("{what} must be an http(s) URL: {url}"))?;
            Ok(rest
                .split(['/', '?', '#'])
                .next()
                .unwrap_or(rest)
                .to_owned())
        };
        let issuer_host = host(&issuer, "--oidc-issuer")?;
        if let Some(public) = &self.public_url {
            host(public, "--public-url")?;
        }
        let client_secret = match &self.oidc_client_secret_file {
            Some(path) => {
                let secret = std::fs::read_to_string(path)
                    .with_context(|| {
                        format!("reading the OpenID client secret {}", path.display())
                    })?
                    .trim()
                    .to_owned();
                anyhow::ensure!(!secret.is_empty(), "{} is empty", path.display());
                Some(secret)
            }
            None => None,
        };
        Ok(Some(crate::http::ConsoleOidc {
            issuer,
            client_id: self.oidc_client_id.clone().unwrap_or_default(),
            client_secret,
            display_name: self.oidc_name.clone().unwrap_or(issuer_host),
            public_url: self.public_url.clone(),
            acr_values: self
                .oidc_acr
                .iter()
                .map(|acr| acr.trim().to_owned())
                .filter(|acr| !acr.is_empty())
                .collect(),
        }))
    }
}

/// Master key administration.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print a fresh random key (base64) for CASEBOOK_MASTER_KEY or CASEBOOK_ANCHOR_KEY, or
    /// their files.
    Generate,
    /// Rewrap every person's data key under a new master key (the current one is the configured
    /// key). Stop the service first, and start it again with the new key.
    Rotate {
        /// A file holding the new master key.
        #[arg(long)]
        new_key_file: PathBuf,
    },
}

/// Organisation administration.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organisation (or find the one of that name); prints its id.
    Add {
        /// Its name.
        name: String,
    },
}

/// Team administration.
#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team (or find the one of that name); prints its id.
    Add {
        /// The organisation's id.
        #[arg(long)]
        organisation: uuid::Uuid,
        /// Its name.
        name: String,
    },
}

/// Staff administration.
#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Add a staff account; prints its id.
    Add {
        /// The organisation's id.
        #[arg(long)]
        organisation: uuid::Uuid,
        /// The team's id (link workers and team leads).
        #[arg(long)]
        team: Option<uuid::Uuid>,
        /// referrer, link_worker, team_lead, auditor, reporting_analyst or administrator.
        #[arg(long)]
        role: app::access::Role,
        /// Their name.
        #[arg(long)]
        name: String,
        /// People a year they can support (link workers).
        #[arg(long)]
        capacity: Option<i32>,
    },
    /// Make a one-time enrolment code for a staff member; prints it once. Give it to them only:
    /// they redeem it (`POST /api/v1/enrolments/redemption`) for a token only they see.
    Enrol {
        /// The staff member's id.
        staff: uuid::Uuid,
        /// Hours until the code expires unredeemed (1 to 168).
        #[arg(long, default_value_t = 72, value_parser = clap::value_parser!(i64).range(1..=app::admin::MAX_ENROLMENT_HOURS))]
        hours: i64,
    },
    /// Make a one-time sign-in link to the web console for a staff member; prints its code
    /// once (the link is `<service address>/console/sign-in?code=<code>`). Give it to them only.
    SignInLink {
        /// The staff member's id.
        staff: uuid::Uuid,
        /// Hours until the link expires unused (1 to 168).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(i64).range(1..=app::admin::MAX_ENROLMENT_HOURS))]
        hours: i64,
    },
    /// Link an identity at the web console's OpenID provider (its issuer and the subject it
    /// gives this person, the ID token's `iss` and `sub`) to a staff member: that identity then
    /// signs in as them. A refused sign-in's issuer and subject are in `session_events`.
    LinkIdentity {
        /// The staff member's id.
        staff: uuid::Uuid,
        /// The issuer, exactly as in its ID tokens (`iss`).
        #[arg(long)]
        issuer: String,
        /// The subject (`sub`) the issuer gives this person.
        #[arg(long)]
        subject: String,
    },
    /// Bind a GP practice's system (a staff account of role practice_system) to its practice,
    /// by ODS code: from then on its referrals may name that practice only (the one GP
    /// messages go to). Binding again moves it.
    BindPractice {
        /// The practice system's staff id.
        staff: uuid::Uuid,
        /// The practice's ODS code (a capital letter and five digits, e.g. A81001).
        #[arg(long)]
        ods: String,
    },
    /// Remove an identity's link: it signs in as nobody from then on.
    UnlinkIdentity {
        /// The issuer.
        #[arg(long)]
        issuer: String,
        /// The subject.
        #[arg(long)]
        subject: String,
    },
    /// List the identities linked to a staff member (or to anyone), as JSON.
    Identities {
        /// The staff member's id (default: everyone's).
        staff: Option<uuid::Uuid>,
    },
    /// Deactivate a staff account: every token and enrolment of it stops at once.
    Deactivate {
        /// The staff member's id.
        staff: uuid::Uuid,
    },
    /// Reactivate a staff account (its old tokens stay revoked: enrol them again).
    Activate {
        /// The staff member's id.
        staff: uuid::Uuid,
    },
}

/// Token administration.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token for a staff member as the operator (how an organisation's first administrator
    /// starts); prints it (it is not stored and cannot be shown again).
    Issue {
        /// The staff member's id.
        staff: uuid::Uuid,
        /// Days until it expires (1 to 400, the API's limit: `app::admin::MAX_TOKEN_DAYS`).
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(i64).range(1..=app::admin::MAX_TOKEN_DAYS))]
        days: i64,
        /// What it is for.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List a staff member's tokens and enrolments (never their secrets), as JSON.
    List {
        /// The staff member's id.
        staff: uuid::Uuid,
    },
    /// Revoke a token at once.
    Revoke {
        /// The token's id (the part after `cbk_`, or the id printed when it was issued).
        token: uuid::Uuid,
    },
}

#[cfg(test)]
mod tests;
