//! The sealer and the anchor file: checkpoints of the whole log and the read audit, signed with
//! the anchor key (`eventstore::anchor`), written to the database and appended to a file the
//! organisation keeps; and `casebook verify`, which holds the log against both.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use eventstore::anchor::{AnchorKey, Checkpoint, Sealed};

use crate::settings::SealSettings;

/// Seals now and appends the checkpoint to `anchor_file`: a new one always, the last one when
/// nothing was new and the file does not end with it already.
///
/// # Errors
/// A database failure, a checkpoint that does not verify, or a file that cannot be written.
pub async fn seal_and_anchor(
    client: &tokio_postgres::Client,
    key: &AnchorKey,
    anchor_file: Option<&Path>,
) -> anyhow::Result<Sealed> {
    let sealed = eventstore::anchor::seal(client, key).await?;
    if let Some(path) = anchor_file {
        let (path, sealed) = (path.to_owned(), sealed.clone());
        // Off the runtime's threads: the file is read whole and flushed to disk, and in `serve`
        // the runtime also drives every pooled connection (`db::pool`), on as few as one thread.
        tokio::task::spawn_blocking(move || anchor(&path, &sealed))
            .await
            .context("writing the anchor file")??;
    }
    Ok(sealed)
}

/// The file's part of [`seal_and_anchor`].
fn anchor(path: &Path, sealed: &Sealed) -> anyhow::Result<()> {
    match sealed {
        Sealed::New(checkpoint) => append_anchor(path, checkpoint),
        Sealed::Unchanged(Some(checkpoint)) => {
            if last_anchor(path)?.as_ref() != Some(checkpoint) {
                append_anchor(path, checkpoint)?;
            }
            Ok(())
        }
        Sealed::Unchanged(None) => Ok(()),
    }
}

/// How long the outbound copy's command may take.
const OUTBOUND_PATIENCE: Duration = Duration::from_secs(30);

/// Sends one checkpoint elsewhere: runs `command` with `sh -c` in a process group of its own,
/// its line of JSON on standard input, and wants exit status 0 within 30 s. After that the
/// whole group is killed (a hung `ssh` under the shell too). The exit status decides, not the
/// end of its output: a helper left running in the background (an ssh connection kept open)
/// does not make a copy that arrived look failed.
///
/// # Errors
/// When the command cannot be started, fails, or takes too long; with the start of what it
/// printed on standard error.
pub async fn send_outbound(command: &str, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .context("starting the anchor command")?;
    let group = child.id();
    let line = format!("{}\n", checkpoint.to_line());
    let mut stdin = child.stdin.take().context("the anchor command's input")?;
    let stderr = child.stderr.take().context("the anchor command's errors")?;
    let mut errors = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = stderr.take(4096).read_to_end(&mut text).await;
        text
    });
    let run = async {
        // A command that does not read its input sees it closed; its exit status decides.
        let _ = stdin.write_all(line.as_bytes()).await;
        drop(stdin);
        child.wait().await
    };
    let status = tokio::time::timeout(OUTBOUND_PATIENCE, run).await;
    let status = match status {
        Ok(status) => status.context("running the anchor command")?,
        Err(_) => {
            if let Some(group) = group {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{group}")])
                    .status();
            }
            errors.abort();
            anyhow::bail!(
                "the anchor command took more than {} s",
                OUTBOUND_PATIENCE.as_secs()
            );
        }
    };
    let text = tokio::time::timeout(Duration::from_secs(1), &mut errors)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    errors.abort();
    anyhow::ensure!(
        status.success(),
        "the anchor command failed ({status}): {}",
        String::from_utf8_lossy(&text).trim()
    );
    Ok(())
}

/// Appends one checkpoint as a line of JSON and flushes it to disk.
///
/// # Errors
/// When the file cannot be opened or written.
pub fn append_anchor(path: &Path, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    cut_torn_line(path)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the anchor file {}", path.display()))?;
    writeln!(file, "{}", checkpoint.to_line())
        .and_then(|()| file.sync_data())
        .with_context(|| format!("writing the anchor file {}", path.display()))
}

/// Cuts an unfinished last line (a write cut short by a full disk or a crash) off the anchor
/// file, so the next checkpoint starts a line of its own. It holds nothing that could verify.
fn cut_torn_line(path: &Path) -> anyhow::Result<()> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(());
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    tracing::warn!(
        anchor_file = %path.display(),
        bytes = bytes.len() - keep,
        "the anchor file ends in an unfinished line (a write cut short): cutting it off"
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(keep as u64))
        .with_context(|| format!("cutting the unfinished line off {}", path.display()))
}

/// Every checkpoint of an anchor file, in its order. An unfinished last line (no line end: a
/// write cut short) is left out; any other line that is not a checkpoint is an error.
///
/// # Errors
/// When the file cannot be read or a line is not a checkpoint (naming the line).
pub fn read_anchors(path: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the anchor file {}", path.display()))?;
    let finished = match text.rfind('\n') {
        _ if text.ends_with('\n') => text.as_str(),
        Some(i) => &text[..=i],
        None => "",
    };
    finished
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            Checkpoint::from_line(line).map_err(|e| {
                anyhow::anyhow!(
                    "line {} of the anchor file {} is not a checkpoint: {e}",
                    i + 1,
                    path.display()
                )
            })
        })
        .collect()
}

fn last_anchor(path: &Path) -> anyhow::Result<Option<Checkpoint>> {
    if !path.exists() {
        return Ok(None);
    }
    Ok(read_anchors(path)?.pop())
}

/// Seals in the background until `stop` turns true: whenever `every_events` settled events wait
/// (looked at every few seconds) or `every_seconds` passed with anything new, and once more on
/// the way out. Failures are logged and tried again at the next turn; a checkpoint that does not
/// verify stops sealing (it is logged as an error at every turn).
pub fn spawn_sealer(
    config: tokio_postgres::Config,
    key: AnchorKey,
    anchor_file: Option<PathBuf>,
    anchor_command: Option<String>,
    settings: SealSettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = (settings.seal_every_seconds > 0)
            .then(|| Duration::from_secs(settings.seal_every_seconds));
        let look = every
            .unwrap_or(Duration::from_secs(5))
            .min(Duration::from_secs(5));
        let mut last_seal = Instant::now();
        let mut first = true;
        // One connection, kept between turns and made again after a failure.
        let mut connection: Option<tokio_postgres::Client> = None;
        // The newest checkpoint the outbound copy has not taken yet (the newest is enough:
        // every anchor is held against the database's checkpoints on its own).
        let mut unsent: Option<Checkpoint> = None;
        loop {
            let stopping = *stop.borrow();
            let outcome = async {
                if connection
                    .as_ref()
                    .is_none_or(tokio_postgres::Client::is_closed)
                {
                    connection = Some(db::connect(&config).await?);
                }
                let client = connection.as_ref().expect("connected above");
                let due = first
                    || stopping
                    || every.is_some_and(|every| last_seal.elapsed() >= every)
                    || (settings.seal_every_events > 0
                        && eventstore::anchor::unsealed_events(client, settings.seal_every_events)
                            .await?
                            >= settings.seal_every_events);
                if due {
                    match seal_and_anchor(client, &key, anchor_file.as_deref()).await? {
                        Sealed::New(checkpoint) => unsent = Some(checkpoint),
                        // At start the newest checkpoint goes out again: a copy that failed
                        // before a restart is not left unsent while nothing new is recorded.
                        Sealed::Unchanged(Some(checkpoint)) if first => {
                            unsent = Some(checkpoint);
                        }
                        Sealed::Unchanged(_) => {}
                    }
                }
                anyhow::Ok(due)
            }
            .await;
            match outcome {
                Ok(true) => {
                    last_seal = Instant::now();
                    first = false;
                }
                Ok(false) => {}
                Err(e) => {
                    connection = None;
                    tracing::error!(error = %format!("{e:#}"), "sealing the log failed");
                }
            }
            if let (Some(command), Some(checkpoint)) = (&anchor_command, &unsent) {
                match send_outbound(command, checkpoint).await {
                    Ok(()) => unsent = None,
                    Err(e) => tracing::error!(
                        error = %format!("{e:#}"),
                        checkpoint = checkpoint.seq,
                        "the outbound copy of an anchor failed; tried again at the next turn"
                    ),
                }
            }
            if stopping {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(look) => {}
                _ = stop.changed() => {}
            }
        }
    })
}

/// What `casebook verify` found, as lines to print.
#[derive(Debug)]
pub struct Verification {
    /// Whether everything held.
    pub ok: bool,
    /// What was checked and what broke, one sentence a line.
    pub lines: Vec<String>,
}

/// Walks every stream's hash chain, and with an anchor key recomputes the log-wide chains and
/// holds them against every checkpoint row and every line of the anchor files given.
///
/// # Errors
/// A database failure, or an anchor file that cannot be read or parsed (or given without a key).
pub async fn verify(
    owner: &tokio_postgres::Client,
    key: Option<&AnchorKey>,
    anchor_files: &[PathBuf],
) -> anyhow::Result<Verification> {
    let mut ok = true;
    let mut lines = Vec::new();
    match eventstore::verify(owner).await? {
        eventstore::VerifyReport::Ok { events, streams } => {
            lines.push(format!(
                "ok: {events} events in {streams} streams, every hash chain intact"
            ));
        }
        eventstore::VerifyReport::Broken {
            stream_id,
            stream_version,
            reason,
        } => {
            ok = false;
            lines.push(format!(
                "broken: stream {stream_id} at version {stream_version}: {reason}"
            ));
        }
    }
    let Some(key) = key else {
        anyhow::ensure!(
            anchor_files.is_empty(),
            "--anchor needs the anchor key (CASEBOOK_ANCHOR_KEY or CASEBOOK_ANCHOR_KEY_FILE)"
        );
        lines.push(
            "no anchor key configured: checkpoints were not checked, and deleted or re-hashed \
             events would go unnoticed"
                .to_owned(),
        );
        return Ok(Verification { ok, lines });
    };
    let mut anchors = Vec::new();
    for path in anchor_files {
        anchors.extend(read_anchors(path)?);
    }
    let report = eventstore::anchor::verify_anchors(owner, key, &anchors).await?;
    if report.is_ok() {
        lines.push(format!(
            "ok: {} events and {} reads, {} checkpoints and {} anchors under anchor key {} agree; \
             {} events sealed ({} after the last checkpoint rest on the hash chains alone)",
            report.events,
            report.reads,
            report.checkpoints,
            report.anchors,
            key.id(),
            report.sealed_events,
            report.events.saturating_sub(report.sealed_events)
        ));
    } else {
        ok = false;
        lines.extend(
            report
                .problems
                .iter()
                .map(|problem| format!("broken: {problem}")),
        );
    }
    Ok(Verification { ok, lines })
}
