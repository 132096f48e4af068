//! History import (issue #20 part 3): a previous system's records, one row per fact, turned
//! into events through the same rules as every command (`domain::decide`, with each fact's own
//! date checked by `check_timing`), then appended in bulk.
//!
//! The column set is documented in `docs/history-import.md`. Rows are grouped by person, in the
//! file's order; each row is decided against the person's record as the rows before it left
//! it, so a refused row leaves the record as it was and the rest go on. A refused row is
//! reported with its line, its record id and the domain's reason.
//!
//! Ids are derived from the organisation, the system's name and the file's own record ids
//! (UUIDv8 of SHA-256), so the same file imported again makes the same streams and events, and
//! a second import adds nothing. A new person's stream is written whole in one statement, so an
//! import killed half-way and run again completes without duplicates. For a person already in
//! the log, a row whose first event is on their record was imported before and is left as it
//! is; their other rows (a later export's) are decided against the record as it stands and
//! appended after the version they were decided on.
//!
//! The back-entry window does not apply to an import (facts are years old), but the allowance
//! is explicit and audited: every imported stream begins with a `LateEntryExplained` whose
//! reason names the system and the person's id there, and every event is recorded with the
//! actor role `history_import`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use domain::directory::ServiceState;
use domain::*;
use eventstore::{AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, NewStream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use uuid::Uuid;

use crate::access::Role;
use crate::cases::LoadedCase;
use crate::clock::Clock;

/// The actor role every imported event is recorded with.
pub const IMPORT_ROLE: &str = projector::corrected::IMPORT_ROLE;

/// How the file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated, with a header row naming the columns.
    Csv,
    /// One JSON object per line, with the same names as the CSV columns.
    JsonLines,
}

impl Format {
    /// The format a file's name says (`.jsonl`, `.ndjson` or `.json`: JSON lines; else CSV).
    pub fn of_path(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson" | "json") => Format::JsonLines,
            _ => Format::Csv,
        }
    }
}

/// One row of a previous system's export: one fact about one person (see the column set in
/// `docs/history-import.md`). Columns a kind does not read are left empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryRow {
    pub record_id: String,
    pub person_id: String,
    pub kind: String,
    pub date: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub date_of_birth: Option<String>,
    pub nhs_number: Option<String>,
    pub postcode: Option<String>,
    pub area: Option<String>,
    pub item_id: Option<String>,
    pub source: Option<String>,
    pub referrer_organisation: Option<String>,
    pub reasons: Option<String>,
    pub urgency: Option<String>,
    pub reason: Option<String>,
    pub mode: Option<String>,
    pub minutes: Option<String>,
    pub scheduled_for: Option<String>,
    pub outcome: Option<String>,
    pub waiting_weeks: Option<String>,
    pub instrument: Option<String>,
    pub timepoint: Option<String>,
    pub answers: Option<String>,
    pub service_id: Option<String>,
    pub need: Option<String>,
    pub connection_kind: Option<String>,
    pub consent_scope: Option<String>,
    pub text: Option<String>,
    pub progress: Option<String>,
}

/// A row with the line of the file it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceRow {
    /// The line of the file (1 is a CSV file's header).
    pub line: u64,
    pub row: HistoryRow,
}

/// A row that was not imported, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The line of the file.
    pub line: u64,
    /// The row's `record_id`, when it could be read.
    pub record_id: String,
    /// The column or field refused, when the rule names one.
    pub field: Option<String>,
    /// The rule's stable code (`case_not_open`, `invalid_field`, `unreadable`, ...).
    pub rule: String,
    /// The reason, as the domain states it.
    pub reason: String,
}

/// Reads every row of `reader`; rows that cannot be read are refused with their line.
pub fn read_rows(reader: impl Read, format: Format) -> (Vec<SourceRow>, Vec<Refusal>) {
    let mut rows = Vec::new();
    let mut refused = Vec::new();
    let unreadable = |line: u64, reason: String| Refusal {
        line,
        record_id: String::new(),
        field: None,
        rule: "unreadable".to_owned(),
        reason,
    };
    match format {
        Format::Csv => {
            let mut csv = csv::ReaderBuilder::new()
                .flexible(false)
                .from_reader(reader);
            let headers = match csv.headers() {
                Ok(headers) => headers.clone(),
                Err(e) => {
                    refused.push(unreadable(1, e.to_string()));
                    return (rows, refused);
                }
            };
            let mut record = csv::StringRecord::new();
            loop {
                match csv.read_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {
                        let line = record.position().map_or(0, csv::Position::line);
                        match record.deserialize::<HistoryRow>(Some(&headers)) {
                            Ok(row) => rows.push(SourceRow { line, row }),
                            Err(e) => {
                                let mut refusal = unreadable(line, e.to_string());
                                refusal.record_id = record.get(0).unwrap_or_default().to_owned();
                                refused.push(refusal);
                            }
                        }
                    }
                    Err(e) => {
                        let line = e.position().map_or(0, csv::Position::line);
                        let fatal = !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. });
                        refused.push(unreadable(line, e.to_string()));
                        if fatal {
                            break;
                        }
                    }
                }
            }
        }
        Format::JsonLines => {
            let text = {
                let mut text = String::new();
                let mut reader = reader;
                if let Err(e) = reader.read_to_string(&mut text) {
                    refused.push(unreadable(0, e.to_string()));
                }
                text
            };
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<HistoryRow>(line) {
                    Ok(row) => rows.push(SourceRow {
                        line: i as u64 + 1,
                        row,
                    }),
                    Err(e) => refused.push(unreadable(i as u64 + 1, e.to_string())),
                }
            }
        }
    }
    (rows, refused)
}

/// What an import is for and who it is.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The previous system's name: part of every id derived, and of each stream's reason.
    pub system: String,
    /// The organisation the records belong to.
    pub organisation_id: Uuid,
    /// The link worker (or team lead) each accepted case is assigned to, with their team: the
    /// previous system's staff are not carried over.
    pub assign_to: (StaffId, TeamId),
    /// People per bulk append.
    pub batch_people: usize,
}

/// Why an import could not run at all (rows are refused one by one instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// An option names something that is not there.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] eventstore::StoreError),
    /// The staff tables could not be read.
    #[error(transparent)]
    Access(#[from] crate::access::AccessError),
    /// A service's stream could not be read.
    #[error("a directory service could not be read: {0}")]
    Directory(String),
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportReport {
    /// Rows read (refused ones included).
    pub rows: usize,
    /// People in the file.
    pub people: usize,
    /// People whose streams this run wrote.
    pub people_written: usize,
    /// Events this run wrote.
    pub events_written: usize,
    /// People left out because an earlier run wrote them.
    pub already_imported: usize,
    /// Events decided for people already imported (not written again).
    pub events_already_imported: usize,
    /// People imported before to whom this run added later rows.
    pub people_added_to: usize,
    /// Rows of people imported before that an earlier run imported (left as they are).
    pub rows_already_imported: usize,
    /// Refused rows, by line.
    pub refused: Vec<Refusal>,
}

/// Every person's decided events, ready to append.
#[derive(Clone, Debug, Default)]
pub struct ImportPlan {
    /// One new stream per person with at least one fact accepted.
    pub streams: Vec<NewStream>,
    /// Later rows of people imported before, decided against their records as they stand.
    pub additions: Vec<Addition>,
    /// People in the file.
    pub people: usize,
    /// People of the file already in the log when the plan was made.
    pub people_imported_before: usize,
    /// Their rows that an earlier run imported (left as they are).
    pub rows_imported_before: usize,
    /// Rows read.
    pub rows: usize,
    /// Refused rows, by line.
    pub refused: Vec<Refusal>,
}

impl ImportPlan {
    /// How many events the plan holds: new streams' and additions'.
    pub fn events(&self) -> usize {
        self.streams.iter().map(|s| s.events.len()).sum::<usize>()
            + self.additions.iter().map(|a| a.events.len()).sum::<usize>()
    }
}

/// Later rows for a person imported before: events to append to their stream after `version`
/// (the version they were decided against), each with its own metadata.
#[derive(Clone, Debug)]
pub struct Addition {
    /// The person's stream.
    pub stream_id: Uuid,
    /// Its version when the rows were decided: another writer since makes the append a
    /// conflict.
    pub version: i64,
    /// The events, in order.
    pub events: Vec<(NewEvent, Metadata)>,
}

/// What one person's rows came to.
struct PersonPlan {
    stream: Option<NewStream>,
    addition: Option<Addition>,
    /// The NHS number registered by a new stream, for its lookup tag.
    nhs_number: Option<NhsNumber>,
    rows_imported_before: usize,
    refused: Vec<Refusal>,
}

/// Imports a previous system's history into a store.
#[derive(Clone)]
pub struct HistoryImport {
    store: EventStore,
    clock: Clock,
    options: ImportOptions,
    correlation_id: Uuid,
}

impl HistoryImport {
    /// An import into `store` on `clock`, after checking that `assign_to` is an active link
    /// worker or team lead of the organisation, in the team named.
    ///
    /// # Errors
    /// [`ImportError::Invalid`] naming the option; a database failure.
    pub async fn new(
        store: EventStore,
        clock: Clock,
        options: ImportOptions,
    ) -> Result<HistoryImport, ImportError> {
        if options.system.trim().is_empty() {
            return Err(ImportError::Invalid("name the previous system".to_owned()));
        }
        let client = store
            .pool()
            .get()
            .await
            .map_err(eventstore::StoreError::from)?;
        let (staff, team) = options.assign_to;
        let member =
            crate::access::staff_member_cached(&client, options.organisation_id, staff.0).await?;
        match member {
            Some(m)
                if m.active
                    && matches!(m.role, Role::LinkWorker | Role::TeamLead)
                    && m.team_id == Some(team.0) => {}
            _ => {
                return Err(ImportError::Invalid(format!(
                    "{} is not an active link worker or team lead of team {} in organisation {}",
                    staff.0, team.0, options.organisation_id
                )));
            }
        }
        Ok(HistoryImport {
            store,
            clock,
            options,
            correlation_id: Uuid::new_v4(),
        })
    }

    /// Decides every row (every person's in the file's order) and reads the directory services
    /// the rows name; appends nothing.
    ///
    /// # Errors
    /// A directory service that cannot be read.
    pub async fn plan(&self, rows: Vec<SourceRow>) -> Result<ImportPlan, ImportError> {
        let services = self.services(&rows).await?;
        let rules = Rules {
            destinations: projector::rules::RecordingRules::current().destination_codes(),
            categories: crate::safeguarding::rules().category_codes(),
            services,
        };
        let now = self.clock.now();
        let mut plan = ImportPlan {
            rows: rows.len(),
            ..ImportPlan::default()
        };
        let mut people: BTreeMap<usize, (String, Vec<SourceRow>)> = BTreeMap::new();
        let mut order: HashMap<String, usize> = HashMap::new();
        for mut row in rows {
            // " 12" and "12" are one person, one record.
            row.row.person_id = row.row.person_id.trim().to_owned();
            row.row.record_id = row.row.record_id.trim().to_owned();
            let n = order.len();
            let at = *order.entry(row.row.person_id.clone()).or_insert(n);
            people
                .entry(at)
                .or_insert_with(|| (row.row.person_id.clone(), Vec::new()))
                .1
                .push(row);
        }
        plan.people = people.len();
        let ids: Vec<Uuid> = people
            .values()
            .map(|(person_id, _)| self.client_id(person_id).0)
            .collect();
        let mut existing = self.existing(&ids).await?;
        plan.people_imported_before = existing.len();
        for (_, (person_id, rows)) in people {
            if person_id.trim().is_empty() {
                plan.refused.extend(rows.iter().map(|r| {
                    refusal(
                        r,
                        Some("person_id"),
                        "invalid_field",
                        "give the person's id".to_owned(),
                    )
                }));
                continue;
            }
            let before = existing.remove(&self.client_id(&person_id).0);
            let mut person = self.person(&person_id, &rows, &rules, now, before.as_ref());
            if let Some(stream) = &mut person.stream
                && let Some(number) = &person.nhs_number
                && let Some(tag) = crate::matching::nhs_number_tag(
                    &self.store,
                    self.options.organisation_id,
                    number,
                )
                .await?
            {
                stream.lookups.push(tag);
            }
            plan.refused.extend(person.refused);
            plan.rows_imported_before += person.rows_imported_before;
            plan.streams.extend(person.stream);
            plan.additions.extend(person.addition);
        }
        plan.refused.sort_by_key(|r| r.line);
        Ok(plan)
    }

    /// The records of the people in `ids` already in the log, as they stand (corrections
    /// applied), to decide their later rows against.
    async fn existing(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, LoadedCase>, ImportError> {
        let client = self
            .store
            .pool()
            .get()
            .await
            .map_err(eventstore::StoreError::from)?;
        let rows = client
            .query(
                "SELECT DISTINCT stream_id FROM events WHERE stream_id = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(eventstore::StoreError::from)?;
        drop(client);
        let found: Vec<Uuid> = rows.iter().map(|row| row.get(0)).collect();
        let store = &self.store;
        let mut loads = futures_util::stream::iter(found.into_iter().map(|id| async move {
            let loaded = crate::stream::load(
                store,
                id,
                LoadedCase::default(),
                |loaded: &mut LoadedCase, event, decoded: CaseEvent| {
                    loaded.fold_owned(&event, decoded);
                },
            )
            .await;
            (id, loaded)
        }))
        .buffer_unordered(8);
        let mut existing = HashMap::new();
        while let Some((id, loaded)) = loads.next().await {
            let loaded = loaded.map_err(|e| match e {
                crate::stream::LoadError::Store(e) => ImportError::Store(e),
                other => ImportError::Invalid(format!("the record {id} cannot be read: {other}")),
            })?;
            existing.insert(id, loaded);
        }
        Ok(existing)
    }

    /// Appends a plan's streams in bulk (people already in the log are left out), calling
    /// `progress` with the events done so far after each batch.
    ///
    /// # Errors
    /// A store failure (what was appended before it stays, whole people only).
    pub async fn append(
        &self,
        plan: &ImportPlan,
        mut progress: impl FnMut(usize),
    ) -> Result<ImportReport, ImportError> {
        let mut report = ImportReport {
            rows: plan.rows,
            people: plan.people,
            refused: plan.refused.clone(),
            ..ImportReport::default()
        };
        let batches = plan.streams.chunks(self.options.batch_people.max(1));
        let mut appends = futures_util::stream::iter(batches.map(|batch| async move {
            let result = self.store.append_new_streams(batch).await;
            (batch, result)
        }))
        .buffered(2);
        let mut done = 0;
        while let Some((batch, result)) = appends.next().await {
            let appended = result?;
            report.people_written += appended.streams;
            report.events_written += appended.events;
            report.already_imported += appended.existing.len();
            report.events_already_imported += batch
                .iter()
                .filter(|s| appended.existing.contains(&s.stream_id))
                .map(|s| s.events.len())
                .sum::<usize>();
            done += batch.iter().map(|s| s.events.len()).sum::<usize>();
            progress(done);
        }
        report.already_imported += plan.people_imported_before;
        report.rows_already_imported += plan.rows_imported_before;
        // Later rows of people imported before: appended after the version they were decided
        // against, a run of events with one date at a time (each append has one metadata).
        for addition in &plan.additions {
            let mut version = addition.version;
            for run in addition
                .events
                .chunk_by(|(_, a), (_, b)| a.occurred_at == b.occurred_at)
            {
                let appended = self
                    .store
                    .append(AppendRequest {
                        stream_id: addition.stream_id,
                        stream_type: CLIENT_STREAM.to_owned(),
                        expected: ExpectedVersion::Exact(version),
                        events: run.iter().map(|(event, _)| event.clone()).collect(),
                        metadata: run[0].1.clone(),
                        idempotency_key: None,
                        fingerprint: None,
                        lookups: None,
                        claims: Vec::new(),
                    })
                    .await?;
                version = appended.stream_version;
                report.events_written += run.len();
                done += run.len();
                progress(done);
            }
            report.people_added_to += 1;
        }
        Ok(report)
    }

    /// Plans and appends.
    ///
    /// # Errors
    /// As [`HistoryImport::plan`] and [`HistoryImport::append`].
    pub async fn run(
        &self,
        rows: Vec<SourceRow>,
        progress: impl FnMut(usize),
    ) -> Result<ImportReport, ImportError> {
        let plan = self.plan(rows).await?;
        self.append(&plan, progress).await
    }

    /// The client id a person of the previous system is given.
    pub fn client_id(&self, person_id: &str) -> ClientId {
        ClientId(self.derive(&["person", person_id]))
    }

    fn derive(&self, parts: &[&str]) -> Uuid {
        derive_id(self.options.organisation_id, &self.options.system, parts)
    }

    /// Every directory service the rows name, folded from the log once each.
    async fn services(
        &self,
        rows: &[SourceRow],
    ) -> Result<HashMap<Uuid, ServiceState>, ImportError> {
        let named: HashSet<Uuid> = rows
            .iter()
            .filter_map(|r| r.row.service_id.as_deref())
            .filter_map(|id| id.trim().parse().ok())
            .collect();
        let mut services = HashMap::new();
        for id in named {
            match crate::directory::service_state(&self.store, ServiceId(id)).await {
                Ok(state) => {
                    services.insert(id, state);
                }
                Err(crate::stream::LoadError::OtherKind(_)) => {}
                Err(e) => return Err(ImportError::Directory(e.to_string())),
            }
        }
        Ok(services)
    }

    /// One person's rows decided in order: their stream (none when nothing was accepted) and
    /// the rows refused.
    ///
    /// For a person imported before (`before`, their record as it stands), only the rows whose
    /// events are not on the record are decided, against the record as it stands and then as
    /// the rows before them left it: a later export's new rows are added, nothing twice.
    fn person(
        &self,
        person_id: &str,
        rows: &[SourceRow],
        rules: &Rules,
        now: DateTime<Utc>,
        before: Option<&LoadedCase>,
    ) -> PersonPlan {
        let client_id = self.client_id(person_id);
        let mut state = before.map(|b| b.state.clone()).unwrap_or_default();
        let mut pending: Option<(&SourceRow, ClientRegistered)> = None;
        let mut events: Vec<(CaseEvent, DateTime<Utc>, Uuid)> = Vec::new();
        let mut refused = Vec::new();
        let mut rows_imported_before = 0;
        let mut first_new: Option<&str> = None;
        let mut seen = std::collections::HashSet::new();
        for source in rows {
            // Ids are derived from the record id: a second row under one would clash with the
            // first's events.
            if !source.row.record_id.is_empty() && !seen.insert(source.row.record_id.as_str()) {
                refused.push(refusal(
                    source,
                    Some("record_id"),
                    "duplicate_record_id",
                    "another row of this person has this record id".to_owned(),
                ));
                continue;
            }
            if let Some(before) = before {
                // Imported by an earlier run: its first event is on the record (a person's
                // details went with their first referral, so a registered person's are too).
                let first_event =
                    self.derive(&["event", person_id, &source.row.record_id, "0", "0"]);
                let details = source.row.kind.trim() == "person"
                    && before.state.status != CaseStatus::Unregistered;
                if details || before.entries.contains_key(&EventId(first_event)) {
                    rows_imported_before += 1;
                    continue;
                }
            }
            let commands = match self.commands(client_id, person_id, source, &mut pending, &state) {
                Ok(Some(commands)) => commands,
                Ok(None) => continue,
                Err(refusal) => {
                    refused.push(refusal);
                    continue;
                }
            };
            // A row's commands are taken together or not at all.
            let mut trial = state.clone();
            let mut decided = Vec::new();
            let mut failed = None;
            for (k, (command, given)) in commands.iter().enumerate() {
                let timing = match Timing::of(command, *given, now) {
                    Ok(timing) => timing,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                };
                let service = match command {
                    CaseCommand::MakeConnection(c) => rules.services.get(&c.service_id.0),
                    _ => None,
                };
                let lookups = Lookups {
                    service,
                    timing: Some(&timing),
                    corrected: None,
                    destinations: Some(&rules.destinations),
                    concern_categories: Some(&rules.categories),
                    // The column set records no tags.
                    tags: None,
                    destinations_needing_note: None,
                };
                match decide(&trial, command, &lookups) {
                    Ok(new) => {
                        for (i, event) in new.into_iter().enumerate() {
                            let event_id = self.derive(&[
                                "event",
                                person_id,
                                &source.row.record_id,
                                &k.to_string(),
                                &i.to_string(),
                            ]);
                            trial = evolve(trial, EventId(event_id), &event, timing.occurred_at);
                            decided.push((event, timing.occurred_at, event_id));
                        }
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                Some(e) => refused.push(refusal(source, e.field(), e.rule(), e.to_string())),
                None => {
                    state = trial;
                    first_new.get_or_insert(source.row.record_id.as_str());
                    events.extend(decided);
                    if commands.iter().any(|(command, _)| {
                        matches!(
                            command,
                            CaseCommand::Intake {
                                client: Some(_),
                                ..
                            }
                        )
                    }) {
                        pending = None;
                    }
                }
            }
        }
        if let Some((source, _)) = pending {
            refused.push(refusal(
                source,
                Some("kind"),
                "not_registered",
                "a person is registered with their first referral, and none followed".to_owned(),
            ));
        }
        let nhs_number = events.iter().find_map(|(event, ..)| match event {
            CaseEvent::ClientRegistered(registered) => registered.personal.nhs_number.clone(),
            _ => None,
        });
        let mut person = PersonPlan {
            stream: None,
            addition: None,
            nhs_number,
            rows_imported_before,
            refused,
        };
        let Some(first_at) = events.first().map(|(_, at, _)| *at) else {
            return person;
        };
        // The explicit allowance past the back-entry window, audited: the stream says where it
        // came from, before its first fact and dated with it; so does each later addition,
        // before its first row's facts.
        let (reason, explained_id) = match (before, first_new) {
            (Some(_), Some(record_id)) => (
                format!(
                    "imported from {} (later rows), where the person's id is {person_id}",
                    self.options.system
                ),
                self.derive(&["event", person_id, "imported", record_id]),
            ),
            _ => (
                format!(
                    "imported from {}, where the person's id is {person_id}",
                    self.options.system
                ),
                self.derive(&["event", person_id, "imported"]),
            ),
        };
        let explained = CaseEvent::LateEntryExplained(LateEntryExplained { reason });
        let events: Vec<(NewEvent, Metadata)> =
            std::iter::once((explained, first_at, explained_id))
                .chain(events)
                .map(|(event, occurred_at, event_id)| {
                    let mut new = crate::stream::new_events(std::slice::from_ref(&event))
                        .pop()
                        .expect("one event gives one new event");
                    new.event_id = event_id;
                    (
                        new,
                        Metadata {
                            actor_id: Uuid::nil(),
                            actor_role: IMPORT_ROLE.to_owned(),
                            organisation_id: self.options.organisation_id,
                            correlation_id: self.correlation_id,
                            causation_id: None,
                            occurred_at,
                        },
                    )
                })
                .collect();
        match before {
            Some(before) => {
                person.addition = Some(Addition {
                    stream_id: client_id.0,
                    version: before.version,
                    events,
                });
            }
            None => {
                person.stream = Some(NewStream {
                    stream_id: client_id.0,
                    stream_type: CLIENT_STREAM.to_owned(),
                    events,
                    lookups: Vec::new(),
                });
            }
        }
        person
    }

    /// The commands a row stands for, each with the time it happened when the command carries
    /// no date of its own; `None` for a person's details (held for their first referral).
    fn commands<'a>(
        &self,
        client_id: ClientId,
        person_id: &str,
        source: &'a SourceRow,
        pending: &mut Option<(&'a SourceRow, ClientRegistered)>,
        state: &CaseState,
    ) -> Result<Option<Commands>, Refusal> {
        let row = &source.row;
        let invalid =
            |field: &str, reason: String| refusal(source, Some(field), "invalid_field", reason);
        if row.record_id.trim().is_empty() {
            return Err(invalid("record_id", "give the row's record id".to_owned()));
        }
        let id = |what: &str| -> Result<Uuid, Refusal> {
            match row.item_id.as_deref().map(str::trim) {
                Some(item) if !item.is_empty() => Ok(self.derive(&[what, person_id, item])),
                _ => Err(invalid("item_id", format!("give the {what}'s id"))),
            }
        };
        let when = parse_when(&row.date).map_err(|reason| invalid("date", reason))?;
        let code = |field: &str, value: &Option<String>| -> Result<String, Refusal> {
            text(value)
                .map(str::to_owned)
                .ok_or_else(|| invalid(field, format!("give the {field}")))
        };
        let single = |command: CaseCommand, dated: bool| -> Result<Option<Commands>, Refusal> {
            Ok(Some(vec![(command, (!dated).then_some(when))]))
        };
        match row.kind.trim() {
            "person" => {
                if pending.is_some() || state.status != CaseStatus::Unregistered {
                    return Err(refusal(
                        source,
                        Some("kind"),
                        "already_registered",
                        "the person's details were already given".to_owned(),
                    ));
                }
                let date_of_birth = match text(&row.date_of_birth) {
                    Some(day) => Some(parse_day(day).map_err(|r| invalid("date_of_birth", r))?),
                    None => None,
                };
                let nhs_number = match text(&row.nhs_number) {
                    Some(number) => {
                        Some(NhsNumber::parse(number).map_err(|r| invalid("nhs_number", r))?)
                    }
                    None => None,
                };
                let personal = PersonalDetails {
                    given_name: text(&row.given_name).unwrap_or_default().to_owned(),
                    family_name: text(&row.family_name).unwrap_or_default().to_owned(),
                    date_of_birth,
                    nhs_number,
                    phone: None,
                    email: None,
                    address: None,
                    postcode: text(&row.postcode).map(str::to_owned),
                };
                *pending = Some((
                    source,
                    ClientRegistered {
                        client_id,
                        personal,
                        area: text(&row.area).unwrap_or_default().to_owned(),
                    },
                ));
                Ok(None)
            }
            "referral" => {
                let reasons = text(&row.reasons)
                    .unwrap_or_default()
                    .split(';')
                    .filter(|r| !r.trim().is_empty())
                    .map(|r| parse_code::<NeedDomain>("reasons", r, &invalid))
                    .collect::<Result<Vec<_>, _>>()?;
                let referral = ReferralReceived {
                    referral_id: ReferralId(id("referral")?),
                    source: parse_code("source", &code("source", &row.source)?, &invalid)?,
                    referrer: Referrer {
                        staff_id: None,
                        name: None,
                        organisation: text(&row.referrer_organisation).map(str::to_owned),
                    },
                    reasons,
                    urgency: match text(&row.urgency) {
                        Some(urgency) => parse_code("urgency", urgency, &invalid)?,
                        None => Urgency::Routine,
                    },
                    received_on: calendar::today(when),
                    note: None,
                };
                // The person's details go with their first referral; if it is refused, they
                // wait for the next.
                let client = pending.as_ref().map(|(_, c)| Box::new(c.clone()));
                single(CaseCommand::Intake { client, referral }, true)
            }
            "referral_accepted" => {
                let referral_id = ReferralId(id("referral")?);
                let mut commands = vec![(
                    CaseCommand::AcceptReferral(ReferralAccepted { referral_id }),
                    Some(when),
                )];
                if state.link_worker.is_none() {
                    let (link_worker_id, team_id) = self.options.assign_to;
                    commands.push((
                        CaseCommand::AssignLinkWorker(LinkWorkerAssigned {
                            link_worker_id,
                            team_id,
                        }),
                        Some(when),
                    ));
                }
                Ok(Some(commands))
            }
            "referral_declined" => single(
                CaseCommand::DeclineReferral(ReferralDeclined {
                    referral_id: ReferralId(id("referral")?),
                    reason: parse_code("reason", &code("reason", &row.reason)?, &invalid)?,
                    note: None,
                }),
                false,
            ),
            "consent" => single(
                CaseCommand::RecordConsent(ConsentRecorded {
                    scope: parse_code(
                        "consent_scope",
                        &code("consent_scope", &row.consent_scope)?,
                        &invalid,
                    )?,
                    services: Vec::new(),
                    // The column set names no channel: a consent to reminders is refused.
                    channel: None,
                }),
                false,
            ),
            "contact" => single(
                CaseCommand::RecordContact(ContactRecorded {
                    contact_id: ContactId(self.derive(&["contact", person_id, &row.record_id])),
                    mode: parse_code("mode", &code("mode", &row.mode)?, &invalid)?,
                    minutes: code("minutes", &row.minutes)?
                        .parse()
                        .map_err(|_| invalid("minutes", "give whole minutes".to_owned()))?,
                    contacted_at: when,
                    note: None,
                }),
                true,
            ),
            "appointment" => single(
                CaseCommand::BookAppointment(AppointmentBooked {
                    appointment_id: AppointmentId(id("appointment")?),
                    scheduled_for: parse_when(&code("scheduled_for", &row.scheduled_for)?)
                        .map_err(|r| invalid("scheduled_for", r))?,
                    mode: parse_code("mode", &code("mode", &row.mode)?, &invalid)?,
                }),
                false,
            ),
            "appointment_outcome" => {
                let appointment_id = AppointmentId(id("appointment")?);
                let outcome = code("outcome", &row.outcome)?;
                let command = match outcome.as_str() {
                    "attended" => {
                        CaseCommand::RecordAttendance(AppointmentAttended { appointment_id })
                    }
                    "did_not_attend" => {
                        CaseCommand::RecordDidNotAttend(AppointmentNotAttended { appointment_id })
                    }
                    "cancelled_by_client" | "cancelled_by_service" => {
                        CaseCommand::CancelAppointment(AppointmentCancelled {
                            appointment_id,
                            cancelled_by: if outcome == "cancelled_by_client" {
                                CancelledBy::Client
                            } else {
                                CancelledBy::Service
                            },
                            note: None,
                        })
                    }
                    other => {
                        return Err(invalid(
                            "outcome",
                            format!(
                                "{other:?} is not an appointment's outcome (attended, did_not_attend, cancelled_by_client, cancelled_by_service)"
                            ),
                        ));
                    }
                };
                single(command, false)
            }
            "assessment" => {
                let answers = code("answers", &row.answers)?
                    .split(';')
                    .map(|a| a.trim().parse::<i32>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        invalid(
                            "answers",
                            "give whole-number answers separated by ;".to_owned(),
                        )
                    })?;
                single(
                    CaseCommand::RecordAssessment(AssessmentRecorded {
                        assessment_id: AssessmentId(id("assessment")?),
                        instrument: parse_code(
                            "instrument",
                            &code("instrument", &row.instrument)?,
                            &invalid,
                        )?,
                        instrument_version: 1,
                        timepoint: parse_code(
                            "timepoint",
                            &code("timepoint", &row.timepoint)?,
                            &invalid,
                        )?,
                        mode: match text(&row.mode) {
                            Some(mode) => parse_code("mode", mode, &invalid)?,
                            None => AdministrationMode::SelfCompleted,
                        },
                        answers,
                        licensor_score: None,
                        administered_on: calendar::today(when),
                    }),
                    true,
                )
            }
            "connection" => {
                let service_id = code("service_id", &row.service_id)?.parse().map_err(|_| {
                    invalid("service_id", "give the directory service's id".to_owned())
                })?;
                single(
                    CaseCommand::MakeConnection(OnwardConnectionMade {
                        connection_id: ConnectionId(id("connection")?),
                        service_id: ServiceId(service_id),
                        need: parse_code("need", &code("need", &row.need)?, &invalid)?,
                        kind: parse_code(
                            "connection_kind",
                            &code("connection_kind", &row.connection_kind)?,
                            &invalid,
                        )?,
                    }),
                    false,
                )
            }
            "connection_outcome" => single(
                CaseCommand::RecordConnectionOutcome(ConnectionOutcomeRecorded {
                    connection_id: ConnectionId(id("connection")?),
                    outcome: parse_code("outcome", &code("outcome", &row.outcome)?, &invalid)?,
                    waiting_weeks: match text(&row.waiting_weeks) {
                        Some(weeks) => Some(weeks.parse().map_err(|_| {
                            invalid("waiting_weeks", "give whole weeks".to_owned())
                        })?),
                        None => None,
                    },
                }),
                false,
            ),
            "note" => single(
                CaseCommand::AddNote(NoteAdded {
                    note_id: NoteId(self.derive(&["note", person_id, &row.record_id])),
                    text: code("text", &row.text)?,
                    important: false,
                }),
                false,
            ),
            "what_matters" => single(
                CaseCommand::RecordWhatMatters(WhatMattersRecorded {
                    text: code("text", &row.text)?,
                }),
                false,
            ),
            "goal" => single(
                CaseCommand::SetGoal(GoalSet {
                    goal_id: GoalId(id("goal")?),
                    description: code("text", &row.text)?,
                    need: match text(&row.need) {
                        Some(need) => Some(parse_code("need", need, &invalid)?),
                        None => None,
                    },
                }),
                false,
            ),
            "goal_review" => single(
                CaseCommand::ReviewGoal(GoalReviewed {
                    goal_id: GoalId(id("goal")?),
                    progress: parse_code("progress", &code("progress", &row.progress)?, &invalid)?,
                    note: text(&row.text).map(str::to_owned),
                }),
                false,
            ),
            "closure" => single(
                CaseCommand::CloseCase(CaseClosed {
                    reason: parse_code("reason", &code("reason", &row.reason)?, &invalid)?,
                    note: None,
                }),
                false,
            ),
            other => Err(invalid(
                "kind",
                format!(
                    "{other:?} is not a kind this import reads (person, referral, referral_accepted, referral_declined, consent, contact, appointment, appointment_outcome, assessment, connection, connection_outcome, note, what_matters, goal, goal_review, closure)"
                ),
            )),
        }
    }
}

/// A row's commands, each with the time it happened when it carries no date of its own.
type Commands = Vec<(CaseCommand, Option<DateTime<Utc>>)>;

/// A cell's text, trimmed; `None` when empty.
fn text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// What every decision of one import is checked against.
struct Rules {
    destinations: Vec<String>,
    categories: Vec<String>,
    services: HashMap<Uuid, ServiceState>,
}

/// An id derived from the organisation, the previous system's name and the file's own ids
/// (UUIDv8 of SHA-256): the same file gives the same ids.
pub fn derive_id(organisation_id: Uuid, system: &str, parts: &[&str]) -> Uuid {
    let mut h = sha2::Sha256::new();
    h.update(b"casebook history import v1");
    h.update(organisation_id.as_bytes());
    for part in std::iter::once(system).chain(parts.iter().copied()) {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    domain::derived_id(&h.finalize())
}

fn refusal(source: &SourceRow, field: Option<&str>, rule: &str, reason: String) -> Refusal {
    Refusal {
        line: source.line,
        record_id: source.row.record_id.clone(),
        field: field.map(str::to_owned),
        rule: rule.to_owned(),
        reason,
    }
}

fn parse_code<T: serde::de::DeserializeOwned>(
    field: &str,
    value: &str,
    invalid: &impl Fn(&str, String) -> Refusal,
) -> Result<T, Refusal> {
    serde_json::from_value(serde_json::Value::String(value.trim().to_owned())).map_err(|_| {
        invalid(
            field,
            format!("{:?} is not a known {field} code", value.trim()),
        )
    })
}

fn parse_day(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a date (YYYY-MM-DD)"))
}

/// A date (`YYYY-MM-DD`, its UTC midnight) or a time (RFC 3339).
fn parse_when(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("give the date it happened".to_owned());
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    parse_day(text)
        .map(|day| day.and_time(NaiveTime::MIN).and_utc())
        .map_err(|_| format!("{text:?} is not a date (YYYY-MM-DD) or a time (RFC 3339)"))
}

/// The refused rows as CSV (line, record_id, field, rule, reason).
pub fn refusals_csv(refused: &[Refusal]) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = out.write_record(["line", "record_id", "field", "rule", "reason"]);
    for r in refused {
        let _ = out.write_record([
            r.line.to_string().as_str(),
            crate::export::neutralise(&r.record_id).as_str(),
            r.field.as_deref().unwrap_or(""),
            r.rule.as_str(),
            crate::export::neutralise(&r.reason).as_str(),
        ]);
    }
    String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
}
