//! The directory of services: commands on service streams (load, fold, decide, append), Open
//! Referral UK import, and the reads link workers and directory tools use.

use std::collections::BTreeMap;

use crate::access::Principal;
use crate::policy;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::directory::{
    Availability, DirectoryCommand, DirectoryError, DirectoryEvent, OrukService, OrukStatus,
    SERVICE_STREAM, ServiceState, decide_service, evolve_service,
};
use domain::{DecodeError, NeedDomain, ServiceId};
use eventstore::{AppendRequest, AppendResult, EventStore, ExpectedVersion, Metadata, StoreError};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// Carries out commands on directory services.
#[derive(Clone)]
pub struct DirectoryService {
    store: EventStore,
    clock: crate::Clock,
    /// How its reads of the directory read model wait for `after`.
    freshness: crate::Freshness,
}

/// Why a directory command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryCommandError {
    #[error(transparent)]
    Refused(#[from] DirectoryError),
    /// The id is a stream of another kind (a client's record).
    #[error("the id {0} belongs to another kind of record")]
    NotAService(Uuid),
    #[error("the service changed while this was decided; try again")]
    Conflict,
    #[error(transparent)]
    Corrupt(#[from] DecodeError),
    #[error(transparent)]
    Store(StoreError),
    /// The caller may not change the directory this way.
    #[error(transparent)]
    Denied(#[from] crate::Denied),
    /// An import document of none of the ORUK shapes (the words name the field).
    #[error("{0}")]
    NotAnImport(String),
}

impl From<StoreError> for DirectoryCommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => DirectoryCommandError::Conflict,
            other => DirectoryCommandError::Store(other),
        }
    }
}

/// A service folded from its stream.
#[derive(Clone, Debug, Default)]
pub struct LoadedService {
    pub state: ServiceState,
    /// The stream's version (0: no such service).
    pub version: i64,
}

/// What happened to one record of an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    Added,
    Changed,
    Withdrawn,
    Unchanged,
}

/// A record an import refused, and why.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rejection {
    /// Its place in the file, from 0.
    pub index: usize,
    /// Its `id`, when it had one.
    pub id: Option<String>,
    pub reasons: Vec<String>,
}

/// A well-formed record an import left alone: the service it names is not the importer's
/// (another organisation, or the operator, listed it), so only its owner imports over it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Skipped {
    /// Its place in the file, from 0.
    pub index: usize,
    pub id: Uuid,
    /// Why, in words.
    pub reason: String,
}

/// What an import did. Every record of the file is counted once: added, changed, withdrawn,
/// unchanged, skipped (another owner's service) or rejected (malformed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub records: usize,
    pub added: Vec<Uuid>,
    pub changed: Vec<Uuid>,
    /// Withdrawn: defunct at source, or (with `withdraw_missing`) the importer's own services
    /// the file does not name.
    pub withdrawn: Vec<Uuid>,
    pub unchanged: usize,
    /// Services of other owners the file names: left as they are.
    pub skipped: Vec<Skipped>,
    pub rejected: Vec<Rejection>,
}

/// What importing one record came to.
enum RecordOutcome {
    Done(Uuid, ImportOutcome),
    Skipped(Uuid, String),
    Rejected(Vec<String>),
}

/// The records of an ORUK dump: a `/services` page (`contents`), a list of pages, or a list of
/// services.
///
/// # Errors
/// A document of none of those shapes.
pub fn records_of(document: Value) -> Result<Vec<Value>, String> {
    fn page_contents(page: &mut serde_json::Map<String, Value>) -> Result<Vec<Value>, String> {
        match page.remove("contents") {
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err("contents: a list of services is expected".to_owned()),
            None => Err("contents: an ORUK page has the services in `contents`".to_owned()),
        }
    }
    match document {
        Value::Object(mut page) => page_contents(&mut page),
        Value::Array(items) => {
            let pages = items
                .iter()
                .all(|i| i.as_object().is_some_and(|o| o.contains_key("contents")));
            if pages && !items.is_empty() {
                let mut all = Vec::new();
                for item in items {
                    if let Value::Object(mut page) = item {
                        all.extend(page_contents(&mut page)?);
                    }
                }
                Ok(all)
            } else {
                Ok(items)
            }
        }
        _ => Err("an ORUK /services page or a list of services is expected".to_owned()),
    }
}

impl DirectoryService {
    /// A directory over `store`, on the system's clock.
    pub fn new(store: EventStore) -> Self {
        DirectoryService::with_clock(store, crate::Clock::system())
    }

    /// A directory over `store` whose commands happen at `clock`'s now.
    pub fn with_clock(store: EventStore, clock: crate::Clock) -> Self {
        DirectoryService {
            freshness: crate::Freshness::new(store.clone(), crate::ReadWait::default()),
            store,
            clock,
        }
    }

    /// The directory as `cases` reads and writes: its store and clock, its searches waiting
    /// for `after` and read from where the case service reads (its read wait, its replica).
    pub fn beside(cases: &crate::CaseService) -> Self {
        DirectoryService {
            store: cases.store().clone(),
            clock: cases.clock().clone(),
            freshness: cases.freshness().clone(),
        }
    }

    /// The same directory, its searches waiting for `after` as `wait` says.
    pub fn with_read_wait(mut self, wait: crate::ReadWait) -> Self {
        self.freshness = self.freshness.with_wait(wait);
        self
    }

    /// The same directory, its searches and entries read from `replica` (a streaming replica
    /// of the store's database, as the service's role), waiting on the replica's own
    /// checkpoints for `after`. Commands, imports and the public ORUK answers stay on the store.
    pub fn with_replica(mut self, replica: EventStore) -> Self {
        self.freshness = self.freshness.moved_to(replica.clone(), self.store.clone());
        self
    }

    fn staff_metadata(&self, principal: &Principal, correlation_id: Uuid) -> Metadata {
        principal.metadata(correlation_id, self.clock.now())
    }

    /// Carries out a capacity change or a withdrawal for a member of staff: their role
    /// ([`policy::may_change_directory`]), then, as for every caller, their organisation must
    /// own the service ([`DirectoryService::execute`]).
    ///
    /// # Errors
    /// [`DirectoryCommandError::Denied`] by the policy; as [`DirectoryService::execute`].
    pub async fn execute_as(
        &self,
        principal: &Principal,
        id: ServiceId,
        command: &DirectoryCommand,
        correlation_id: Uuid,
    ) -> Result<Option<(AppendResult, Vec<DirectoryEvent>)>, DirectoryCommandError> {
        policy::may_change_directory(principal, command)?;
        self.execute(id, command, self.staff_metadata(principal, correlation_id))
            .await
    }

    /// Imports an ORUK document ([`records_of`]) for an administrator
    /// ([`policy::may_import_directory`]), as their organisation: it lists new services as its
    /// own and touches only its own ([`DirectoryService::import`]).
    ///
    /// # Errors
    /// [`DirectoryCommandError::Denied`] by the policy; then
    /// [`DirectoryCommandError::NotAnImport`] for a document of no ORUK shape; as
    /// [`DirectoryService::import`].
    pub async fn import_as(
        &self,
        principal: &Principal,
        document: Value,
        withdraw_missing: bool,
        correlation_id: Uuid,
    ) -> Result<ImportReport, DirectoryCommandError> {
        policy::may_import_directory(principal)?;
        let records = records_of(document).map_err(DirectoryCommandError::NotAnImport)?;
        let metadata = self.staff_metadata(principal, correlation_id);
        self.import(records, withdraw_missing, &metadata, |_| {})
            .await
    }

    /// Reads and folds a service's stream.
    ///
    /// # Errors
    /// [`DirectoryCommandError::NotAService`] for a client's id, and store failures.
    pub async fn load(&self, id: ServiceId) -> Result<LoadedService, DirectoryCommandError> {
        load_service(&self.store, id).await
    }

    /// Decides `command` against the service and appends what it produces: `None` when it
    /// produces nothing (an import of the same record). The organisation of `metadata` must own
    /// the service ([`policy::may_change_service`]), whoever the caller is.
    ///
    /// # Errors
    /// [`DirectoryCommandError::Denied`] for another owner's service; a refusal, a concurrent
    /// change ([`DirectoryCommandError::Conflict`]), a store failure.
    pub async fn execute(
        &self,
        id: ServiceId,
        command: &DirectoryCommand,
        metadata: Metadata,
    ) -> Result<Option<(AppendResult, Vec<DirectoryEvent>)>, DirectoryCommandError> {
        let loaded = self.load(id).await?;
        policy::may_change_service(metadata.organisation_id, &loaded.state)?;
        let events = decide_service(&loaded.state, command)?;
        if events.is_empty() {
            return Ok(None);
        }
        let new_events = crate::stream::new_events(&events);
        let result = self
            .store
            .append(AppendRequest {
                stream_id: id.0,
                stream_type: SERVICE_STREAM.to_owned(),
                expected: match loaded.version {
                    0 => ExpectedVersion::NoStream,
                    v => ExpectedVersion::Exact(v),
                },
                events: new_events,
                metadata,
                idempotency_key: None,
                fingerprint: None,
                lookups: None,
                claims: Vec::new(),
            })
            .await?;
        Ok(Some((result, events)))
    }

    /// The operator at the console acting at `at`, for `organisation` (whose services it
    /// then lists and changes, as that organisation's administrators would) or, with `None`,
    /// for itself (the nil organisation: services every organisation connects to and only the
    /// operator changes).
    ///
    /// # Errors
    /// [`DirectoryCommandError::NotAnImport`] naming `organisation` when there is no such
    /// organisation; a store failure.
    pub async fn operator_for(
        &self,
        organisation: Option<Uuid>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Metadata, DirectoryCommandError> {
        let mut metadata = crate::operator_metadata(at);
        if let Some(organisation) = organisation {
            let client = self.store.pool().get().await.map_err(StoreError::from)?;
            let exists = client
                .query_opt(
                    "SELECT 1 FROM organisations WHERE organisation_id = $1",
                    &[&organisation],
                )
                .await
                .map_err(StoreError::from)?;
            if exists.is_none() {
                return Err(DirectoryCommandError::NotAnImport(format!(
                    "organisation: no organisation {organisation}"
                )));
            }
            metadata.organisation_id = organisation;
        }
        Ok(metadata)
    }

    /// Passes a service to another organisation (or, with the nil id, to the operator): the
    /// operator's override, by agreement between them, whoever owns it now. The new owner's
    /// administrators and team leads change it from then on; connections are untouched.
    ///
    /// # Errors
    /// A refusal by [`decide_service`] (not listed, no reason, already theirs); no such
    /// organisation; a store failure.
    pub async fn change_owner_as_operator(
        &self,
        id: ServiceId,
        change: domain::directory::ServiceOwnerChanged,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<AppendResult, DirectoryCommandError> {
        if !change.organisation_id.is_nil() {
            self.operator_for(Some(change.organisation_id), at).await?;
        }
        let loaded = self.load(id).await?;
        let events = decide_service(&loaded.state, &DirectoryCommand::ChangeOwner(change))?;
        Ok(self
            .store
            .append(AppendRequest {
                stream_id: id.0,
                stream_type: SERVICE_STREAM.to_owned(),
                expected: ExpectedVersion::Exact(loaded.version),
                events: crate::stream::new_events(&events),
                metadata: crate::operator_metadata(at),
                idempotency_key: None,
                fingerprint: None,
                lookups: None,
                claims: Vec::new(),
            })
            .await?)
    }

    /// Imports ORUK service records as the organisation of `metadata` (the nil one for the
    /// operator): each is listed (as that organisation's), updated, withdrawn (defunct at
    /// source) or left as it is; a record naming a service another owner listed is skipped and
    /// reported, never written over; a malformed one is rejected with its reasons while the rest
    /// go on. With `withdraw_missing`, the importer's own listed services that the file does not
    /// name are withdrawn (for a full dump of the source); nobody else's. `progress` is told of
    /// each record done.
    ///
    /// # Errors
    /// A store failure (the records before it are imported; importing again goes on from there).
    pub async fn import(
        &self,
        records: Vec<Value>,
        withdraw_missing: bool,
        metadata: &Metadata,
        mut progress: impl FnMut(usize),
    ) -> Result<ImportReport, DirectoryCommandError> {
        let mut report = ImportReport {
            records: records.len(),
            ..ImportReport::default()
        };
        let mut seen: BTreeMap<Uuid, usize> = BTreeMap::new();
        for (index, value) in records.into_iter().enumerate() {
            let id_text = value.get("id").and_then(Value::as_str).map(str::to_owned);
            let outcome = match OrukService::from_value(value) {
                Err(reasons) => RecordOutcome::Rejected(reasons),
                Ok(service) => match seen.insert(service.id, index) {
                    Some(first) => RecordOutcome::Rejected(vec![format!(
                        "id: the file already has this service (record {first})"
                    )]),
                    None => self.import_one(service, metadata).await,
                },
            };
            match outcome {
                RecordOutcome::Done(id, kind) => match kind {
                    ImportOutcome::Added => report.added.push(id),
                    ImportOutcome::Changed => report.changed.push(id),
                    ImportOutcome::Withdrawn => report.withdrawn.push(id),
                    ImportOutcome::Unchanged => report.unchanged += 1,
                },
                RecordOutcome::Skipped(id, reason) => {
                    report.skipped.push(Skipped { index, id, reason })
                }
                RecordOutcome::Rejected(reasons) => report.rejected.push(Rejection {
                    index,
                    id: id_text,
                    reasons,
                }),
            }
            progress(1);
        }
        if withdraw_missing {
            for id in self.listed_ids_of(metadata.organisation_id).await? {
                if seen.contains_key(&id) {
                    continue;
                }
                let command = DirectoryCommand::Withdraw(domain::directory::ServiceWithdrawn {
                    reason: "no longer in the source directory".to_owned(),
                });
                match self
                    .execute(ServiceId(id), &command, metadata.clone())
                    .await
                {
                    Ok(Some(_)) => report.withdrawn.push(id),
                    Ok(None) | Err(DirectoryCommandError::Refused(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(report)
    }

    async fn import_one(&self, service: OrukService, metadata: &Metadata) -> RecordOutcome {
        let id = service.id;
        let command = DirectoryCommand::Import(Box::new(service));
        // A concurrent writer on the same service: decide again on what it wrote.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self
                .execute(ServiceId(id), &command, metadata.clone())
                .await
            {
                Ok(None) => return RecordOutcome::Done(id, ImportOutcome::Unchanged),
                Ok(Some((_, events))) => {
                    let outcome = if events
                        .iter()
                        .any(|e| matches!(e, DirectoryEvent::ServiceWithdrawn(_)))
                    {
                        ImportOutcome::Withdrawn
                    } else if events
                        .iter()
                        .any(|e| matches!(e, DirectoryEvent::ServiceListed(_)))
                    {
                        ImportOutcome::Added
                    } else {
                        ImportOutcome::Changed
                    };
                    return RecordOutcome::Done(id, outcome);
                }
                Err(DirectoryCommandError::Conflict) if attempts < 3 => continue,
                Err(DirectoryCommandError::Denied(denied)) => {
                    return RecordOutcome::Skipped(id, denied.to_string());
                }
                Err(DirectoryCommandError::NotAService(_)) => {
                    return RecordOutcome::Rejected(vec![
                        "id: already used by another kind of record in Casebook".to_owned(),
                    ]);
                }
                Err(e) => return RecordOutcome::Rejected(vec![format!("not imported: {e}")]),
            }
        }
    }

    /// The ids of services `organisation` owns and lists now, from the log. A service stream
    /// starts with its listing, so its first event's organisation is its owner; the fold says
    /// whether it is still listed (and `execute` asks the owner again).
    async fn listed_ids_of(&self, organisation: Uuid) -> Result<Vec<Uuid>, DirectoryCommandError> {
        let client = self
            .store
            .pool()
            .get()
            .await
            .map_err(|e| DirectoryCommandError::Store(StoreError::from(e)))?;
        let rows = client
            .query(
                "SELECT stream_id FROM events \
                 WHERE stream_type = $1 AND stream_version = 1 AND organisation_id = $2",
                &[&SERVICE_STREAM, &organisation],
            )
            .await
            .map_err(|e| DirectoryCommandError::Store(StoreError::from(e)))?;
        let mut listed = Vec::new();
        for row in rows {
            let id: Uuid = row.get(0);
            let state = self.load(ServiceId(id)).await?.state;
            if state.listed() && state.owner == Some(organisation) {
                listed.push(id);
            }
        }
        Ok(listed)
    }
}

/// Reads and folds a service's stream from `store`.
///
/// # Errors
/// [`DirectoryCommandError::NotAService`] for a client's id, and store failures.
pub async fn load_service(
    store: &EventStore,
    id: ServiceId,
) -> Result<LoadedService, DirectoryCommandError> {
    fold_service(store, id).await.map_err(|e| match e {
        crate::stream::LoadError::Store(e) => e.into(),
        crate::stream::LoadError::Corrupt(e) => DirectoryCommandError::Corrupt(e),
        crate::stream::LoadError::OtherKind(id) => DirectoryCommandError::NotAService(id),
    })
}

/// A service's state as `decide` needs it for a connection.
pub(crate) async fn service_state(
    store: &EventStore,
    id: ServiceId,
) -> Result<ServiceState, crate::stream::LoadError> {
    Ok(fold_service(store, id).await?.state)
}

async fn fold_service(
    store: &EventStore,
    id: ServiceId,
) -> Result<LoadedService, crate::stream::LoadError> {
    crate::stream::load(
        store,
        id.0,
        LoadedService::default(),
        |loaded, event, decoded: DirectoryEvent| {
            loaded.state = evolve_service(
                std::mem::take(&mut loaded.state),
                &decoded,
                event.metadata.organisation_id,
            );
            loaded.version = event.stream_version;
        },
    )
    .await
}

/// A service as link workers search for it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DirectoryEntry {
    pub service_id: Uuid,
    pub name: String,
    pub organisation: String,
    pub description: Option<String>,
    pub url: Option<String>,
    /// The source's status: active, inactive, temporarily closed (defunct ones are withdrawn).
    pub status: OrukStatus,
    pub availability: Availability,
    /// About how many weeks, on a waiting list.
    pub waiting_weeks: Option<i32>,
    pub needs: Vec<NeedDomain>,
    /// Areas served (lower case: service areas, towns, postcode districts).
    pub areas: Vec<String>,
    pub categories: Vec<String>,
    /// Accessibility notes of its locations.
    pub accessibility: Vec<String>,
    /// Whether a referral can be made to it now.
    pub takes_referrals: bool,
    pub withdrawn: bool,
    pub modified_at: DateTime<Utc>,
}

/// What link workers search by.
#[derive(Clone, Debug, Default)]
pub struct DirectoryQuery {
    /// Words, as typed into a search box (web-search syntax: quotes, `or`, `-word`).
    pub text: Option<String>,
    pub need: Option<NeedDomain>,
    /// An area: a service area, town or postcode district.
    pub area: Option<String>,
    /// Only services taking referrals now (not on a waiting list, not closed).
    pub available_only: bool,
    pub offset: i64,
    pub limit: i64,
}

impl DirectoryQuery {
    /// The area as services' areas are kept ([`domain::directory::normalise_area`]); none when
    /// blank.
    fn normalised_area(&self) -> Option<String> {
        self.area
            .as_deref()
            .map(domain::directory::normalise_area)
            .filter(|a| !a.is_empty())
    }
}

/// The words typed in a search box, trimmed; none when blank (a blank search filters nothing).
fn search_words(typed: &Option<String>) -> Option<&str> {
    typed.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// The tsquery of search words `$1`: plain words match any of them (a service matching more
/// ranks higher), so "lonely older people" finds a lunch club that says "living alone"; quotes,
/// `or` and `-word` keep their web-search meaning.
const TEXT_QUERY: &str = "CASE WHEN $1::text IS NULL THEN NULL \
     WHEN $1::text ~ '[\"-]' OR $1::text ~* '\\mor\\M' THEN websearch_to_tsquery('english', $1::text) \
     ELSE nullif(replace(plainto_tsquery('english', $1::text)::text, ' & ', ' | '), '')::tsquery END";

const ENTRY_COLUMNS: &str = "service_id, name, organisation, record, status, availability, \
     waiting_weeks, needs, areas, categories, withdrawn, modified_at";

fn entry(row: &tokio_postgres::Row) -> Result<DirectoryEntry, String> {
    let record: Value = row.get(3);
    let service: OrukService = serde_json::from_value(record).map_err(|e| e.to_string())?;
    let status: OrukStatus =
        serde_json::from_value(Value::String(row.get(4))).map_err(|e| e.to_string())?;
    let availability: Availability =
        serde_json::from_value(Value::String(row.get(5))).map_err(|e| e.to_string())?;
    let needs: Vec<String> = row.get(7);
    let withdrawn: bool = row.get(10);
    Ok(DirectoryEntry {
        service_id: row.get(0),
        name: row.get(1),
        organisation: row.get(2),
        description: service.description.clone(),
        url: service.url.clone(),
        status,
        availability,
        waiting_weeks: row.get(6),
        needs: needs
            .into_iter()
            .filter_map(|n| serde_json::from_value(Value::String(n)).ok())
            .collect(),
        areas: row.get(8),
        categories: row.get(9),
        accessibility: service.accessibility(),
        takes_referrals: !withdrawn
            && status == OrukStatus::Active
            && availability != Availability::Closed,
        withdrawn,
        modified_at: row.get(11),
    })
}

/// Searches the directory read model: withdrawn services never; the best text match first,
/// where a match on the name counts most, then categories, then needs and organisation, then
/// the description; a service on a waiting list counts 0.6 of its match and one not taking
/// referrals 0.3; then services open to referrals before waiting lists before closed ones,
/// then by name.
/// Returns one row more than `limit` when there is a next page.
///
/// # Errors
/// A database failure or an unreadable row.
pub async fn search(
    client: &impl tokio_postgres::GenericClient,
    query: &DirectoryQuery,
) -> Result<Vec<DirectoryEntry>, anyhow::Error> {
    Ok(search_ranked(client, query, SEARCH_CANDIDATES).await?.0)
}

/// How many services a search of plain words ranks beyond the end of its page: the best by
/// their words' scores in `directory_search_terms` (V39), ranked with `ts_rank_cd`.
pub const SEARCH_CANDIDATES: i64 = 200;

/// The most words a search chooses its candidates from each word's best list for.
const EACH_WORDS_BEST_UP_TO: usize = 6;

/// How a search chose its page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranked {
    /// Among each word's best services (no other service could reach the page).
    EachWordsBest,
    /// Among the services whose words score best, every match scored.
    BestScores,
    /// Every match ranked: a search with filters, quotes, `or` or `-word`, no words, or a page
    /// the candidates could not prove.
    EveryMatch,
}

/// [`search`], ranking `candidates` services beyond the page's end, and how it chose the page.
///
/// A search of plain words (the broad any-word search, without a need or area) ranks only
/// candidates: first each word's best `candidates` services (plus the page), then, if that
/// cannot prove the page, the services whose words score best in all. The page is answered
/// from candidates only when no other service can rank on it: a service's word scores sum to at
/// least its `ts_rank_cd`, so when the page's last service ranks above the best score outside
/// the candidates, the page is the one [`search_in_full`] answers, in the same order. Otherwise
/// every match is ranked, as for every other search.
///
/// # Errors
/// A database failure or an unreadable row.
pub async fn search_ranked(
    client: &impl tokio_postgres::GenericClient,
    query: &DirectoryQuery,
    candidates: i64,
) -> Result<(Vec<DirectoryEntry>, Ranked), anyhow::Error> {
    if let Some(words) = plain_words(query) {
        let cut = candidates.max(1) + query.offset + query.limit + 1;
        // Each word's best list adds up to `cut` candidates: for many words, choose among the
        // best scores in all at once.
        let many_words = words
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .count()
            > EACH_WORDS_BEST_UP_TO;
        let ways: &[Ranked] = if many_words {
            &[Ranked::BestScores]
        } else {
            &[Ranked::EachWordsBest, Ranked::BestScores]
        };
        for &ranked in ways {
            if let Some(found) = search_candidates(client, words, query, ranked, cut).await? {
                return Ok((found, ranked));
            }
        }
    }
    Ok((search_in_full(client, query).await?, Ranked::EveryMatch))
}

/// The words of a search of plain words only (no need or area, no quotes, `or` or `-word`).
fn plain_words(query: &DirectoryQuery) -> Option<&str> {
    let text = search_words(&query.text)?;
    let area = query.normalised_area();
    let or = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word.eq_ignore_ascii_case("or"));
    let plain = query.need.is_none() && area.is_none() && !or && !text.contains(['"', '-']);
    plain.then_some(text)
}

/// The columns a search's page is chosen by, for a service of `directory_services` whose words
/// match it with `score`: `rank`, the score weighed down for a service on a waiting list (0.6)
/// or not taking referrals (0.3); then `open_first`, `active_first` and `sort_name`, the order
/// among equal ranks ([`PAGE_ORDER`]). Both ways of choosing a page rank alike: that is what
/// lets [`search_ranked`] answer from candidates the page [`search_in_full`] would.
fn page_keys(score: &str) -> String {
    format!(
        "{score} \
           * CASE WHEN status <> 'active' OR availability = 'closed' THEN 0.3 \
                  WHEN availability = 'waiting_list' THEN 0.6 ELSE 1 END AS rank, \
         CASE availability WHEN 'open' THEN 0 WHEN 'waiting_list' THEN 1 ELSE 2 END AS open_first, \
         CASE status WHEN 'active' THEN 0 ELSE 1 END AS active_first, lower(name) AS sort_name"
    )
}

/// The order of a search's page, by the columns of [`page_keys`]: the best rank first, then
/// services open to referrals before waiting lists before closed ones, active ones first, then
/// by name (and id, so that paging is stable).
const PAGE_ORDER: &str = "rank DESC, open_first, active_first, sort_name, service_id";

/// The lexemes of plain words `$1`: those of `plainto_tsquery`, which `TEXT_QUERY` joins with `|`.
const LEXEMES: &str = "tsvector_to_array(to_tsvector('english', $1::text))";

/// The page of a search of plain words `$1` among candidates (at least `$2`), or `None` when the
/// candidates cannot prove it (see [`search_ranked`]).
async fn search_candidates(
    client: &impl tokio_postgres::GenericClient,
    words: &str,
    query: &DirectoryQuery,
    ranked: Ranked,
    cut: i64,
) -> Result<Option<Vec<DirectoryEntry>>, anyhow::Error> {
    // `beyond`: the best score a service outside the candidates can have (none: every match
    // is a candidate).
    let candidates = match ranked {
        // A service in none of the words' best lists scores at most each full list's last.
        Ranked::EachWordsBest => format!(
            "best AS ( \
               SELECT word.lexeme, top.service_id, top.score \
               FROM unnest({LEXEMES}) AS word(lexeme) \
               CROSS JOIN LATERAL ( \
                 SELECT t.service_id, t.score FROM directory_search_terms AS t \
                 WHERE t.lexeme = word.lexeme ORDER BY t.score DESC LIMIT $2) AS top), \
             candidates AS (SELECT DISTINCT service_id FROM best), \
             bound AS ( \
               SELECT sum(least_score) AS beyond FROM ( \
                 SELECT min(score)::float8 AS least_score FROM best \
                 GROUP BY lexeme HAVING count(*) >= $2) AS full_lists)"
        ),
        Ranked::BestScores => format!(
            "scored AS ( \
               SELECT service_id, sum(score)::float8 AS score FROM directory_search_terms \
               WHERE lexeme = ANY ({LEXEMES}) GROUP BY service_id), \
             candidates AS ( \
               SELECT service_id, score FROM scored \
               ORDER BY score DESC FETCH FIRST $2 ROWS WITH TIES), \
             bound AS ( \
               SELECT max(score) AS beyond FROM scored \
               WHERE score < (SELECT min(score) FROM candidates))"
        ),
        Ranked::EveryMatch => return Ok(None),
    };
    let keys = page_keys("ts_rank_cd(search, q.query, 1)");
    let sql = format!(
        "WITH {candidates}, \
         page AS ( \
           SELECT service_id, {keys} \
           FROM directory_services, (SELECT {TEXT_QUERY} AS query) AS q \
           WHERE service_id = ANY (ARRAY(SELECT service_id FROM candidates)) \
             AND NOT withdrawn AND search @@ q.query \
             AND (NOT $3 OR (availability = 'open' AND status = 'active')) \
           ORDER BY {PAGE_ORDER} \
           OFFSET $4 LIMIT $5) \
         SELECT {ENTRY_COLUMNS}, page.rank, bound.beyond, \
           NOT ($1::text ~ '[\"-]' OR $1::text ~* '\\mor\\M') AS plain, \
           cardinality({LEXEMES}) AS words \
         FROM bound LEFT JOIN (page JOIN directory_services USING (service_id)) ON true \
         ORDER BY page.rank DESC, page.open_first, page.active_first, page.sort_name, service_id"
    );
    let rows = client
        .query(
            &sql,
            &[
                &words,
                &cut,
                &query.available_only,
                &query.offset,
                &(query.limit + 1),
            ],
        )
        .await?;
    // One row at least: `bound`'s, without a service when the page is empty.
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let plain: bool = first.get(14);
    let lexemes: i32 = first.get(15);
    if !plain || lexemes == 0 {
        // Words `TEXT_QUERY` reads otherwise, or only stop words (which filter nothing).
        return Ok(None);
    }
    let beyond: Option<f64> = first.get(13);
    let mut found = Vec::with_capacity(rows.len());
    let mut last_rank = None;
    for row in &rows {
        if row.get::<_, Option<Uuid>>(0).is_some() {
            found.push(entry(row).map_err(anyhow::Error::msg)?);
            last_rank = row.get::<_, Option<f64>>(12);
        }
    }
    let proven = match beyond {
        None => true,
        // Every service outside ranks below the page's last (the margin covers the scores'
        // rounding to `real`), so it would come after the page.
        Some(beyond) => {
            found.len() as i64 == query.limit + 1
                && last_rank.is_some_and(|rank| rank > beyond * (1.0 + 1e-5) + 1e-9)
        }
    };
    Ok(proven.then_some(found))
}

/// [`search`] ranking every match, whatever the search: what [`search_ranked`] falls back to.
///
/// # Errors
/// A database failure or an unreadable row.
pub async fn search_in_full(
    client: &impl tokio_postgres::GenericClient,
    query: &DirectoryQuery,
) -> Result<Vec<DirectoryEntry>, anyhow::Error> {
    let text = search_words(&query.text);
    let need = query.need.map(|n| domain::code(&n));
    let area = query.normalised_area();
    // The page is chosen on narrow rows first; only its services' records are read.
    let keys =
        page_keys("CASE WHEN q.query IS NULL THEN 0 ELSE ts_rank_cd(search, q.query, 1) END");
    let sql = format!(
        "WITH q AS (SELECT {TEXT_QUERY} AS query), \
         page AS ( \
           SELECT service_id, {keys} \
           FROM directory_services, q \
           WHERE NOT withdrawn \
             AND (q.query IS NULL OR search @@ q.query) \
             AND ($2::text IS NULL OR needs @> ARRAY[$2::text]) \
             AND ($3::text IS NULL OR areas @> ARRAY[$3::text]) \
             AND (NOT $4 OR (availability = 'open' AND status = 'active')) \
           ORDER BY {PAGE_ORDER} \
           OFFSET $5 LIMIT $6) \
         SELECT {ENTRY_COLUMNS} FROM page JOIN directory_services USING (service_id) \
         ORDER BY page.rank DESC, page.open_first, page.active_first, page.sort_name, service_id"
    );
    let rows = client
        .query(
            &sql,
            &[
                &text,
                &need,
                &area,
                &query.available_only,
                &query.offset,
                &(query.limit + 1),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| entry(row).map_err(anyhow::Error::msg))
        .collect()
}

/// One service from the read model, withdrawn ones included.
///
/// # Errors
/// A database failure or an unreadable row.
pub async fn entry_by_id(
    client: &impl tokio_postgres::GenericClient,
    id: Uuid,
) -> Result<Option<DirectoryEntry>, anyhow::Error> {
    let row = client
        .query_opt(
            &format!("SELECT {ENTRY_COLUMNS} FROM directory_services WHERE service_id = $1"),
            &[&id],
        )
        .await?;
    row.map(|r| entry(&r).map_err(anyhow::Error::msg))
        .transpose()
}

/// What an ORUK `/services` listing filters by.
#[derive(Clone, Debug, Default)]
pub struct OrukQuery {
    pub search: Option<String>,
    pub taxonomy_term_id: Option<String>,
    pub organization_id: Option<Uuid>,
    /// Only services changed after this (withdrawn ones included, as `defunct`, so a
    /// consumer syncing learns they are gone).
    pub modified_after: Option<DateTime<Utc>>,
    /// Top-level fields only, without nested records.
    pub minimal: bool,
    /// From 1.
    pub page: i64,
    pub per_page: i64,
}

/// An ORUK page envelope.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OrukPage {
    pub total_items: i64,
    pub total_pages: i64,
    pub page_number: i64,
    pub size: i64,
    pub first_page: bool,
    pub last_page: bool,
    pub empty: bool,
    pub contents: Vec<OrukService>,
}

/// The ORUK record as Casebook publishes it: `last_modified` is the time of the service's
/// latest event; a waiting list or closure made in Casebook shows as the `alert`; a withdrawn
/// service is `defunct`.
fn published(
    mut service: OrukService,
    availability: &str,
    waiting_weeks: Option<i32>,
    withdrawn: bool,
    modified_at: DateTime<Utc>,
) -> OrukService {
    service.last_modified = Some(modified_at.to_rfc3339_opts(SecondsFormat::Millis, true));
    match availability {
        "waiting_list" => {
            service.alert = Some(match waiting_weeks {
                Some(weeks) => format!("Waiting list: about {weeks} weeks."),
                None => "Waiting list.".to_owned(),
            });
        }
        "closed" => service.alert = Some("Closed to new referrals.".to_owned()),
        _ => {}
    }
    if withdrawn {
        service.status = OrukStatus::Defunct;
    }
    service
}

fn minimal(service: OrukService) -> OrukService {
    OrukService {
        organization: None,
        service_areas: Vec::new(),
        service_at_locations: Vec::new(),
        attributes: Vec::new(),
        extra: service
            .extra
            .into_iter()
            .filter(|(_, v)| !v.is_array() && !v.is_object())
            .collect(),
        ..service
    }
}

/// A page of ORUK services, ordered by name.
///
/// # Errors
/// A database failure or an unreadable row.
pub async fn oruk_page(
    client: &impl tokio_postgres::GenericClient,
    query: &OrukQuery,
) -> Result<OrukPage, anyhow::Error> {
    let text = search_words(&query.search);
    let term = query
        .taxonomy_term_id
        .as_ref()
        .map(|id| serde_json::json!([{ "taxonomy_term": { "id": id } }]));
    let filter = format!(
        "(NOT withdrawn OR $4::timestamptz IS NOT NULL) \
         AND ($1::text IS NULL OR ({TEXT_QUERY}) IS NULL OR search @@ ({TEXT_QUERY})) \
         AND ($2::jsonb IS NULL OR record->'attributes' @> $2::jsonb) \
         AND ($3::uuid IS NULL OR record->'organization'->>'id' = $3::uuid::text) \
         AND ($4::timestamptz IS NULL OR modified_at > $4::timestamptz)"
    );
    let total: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM directory_services WHERE {filter}"),
            &[&text, &term, &query.organization_id, &query.modified_after],
        )
        .await?
        .get(0);
    let offset = (query.page - 1) * query.per_page;
    let rows = client
        .query(
            &format!(
                "SELECT record, availability, waiting_weeks, withdrawn, modified_at \
                 FROM directory_services WHERE {filter} \
                 ORDER BY lower(name), service_id OFFSET $5 LIMIT $6"
            ),
            &[
                &text,
                &term,
                &query.organization_id,
                &query.modified_after,
                &offset,
                &query.per_page,
            ],
        )
        .await?;
    let mut contents = Vec::with_capacity(rows.len());
    for row in rows {
        let service = published_row(&row)?;
        contents.push(if query.minimal {
            minimal(service)
        } else {
            service
        });
    }
    let total_pages = if total == 0 {
        0
    } else {
        (total + query.per_page - 1) / query.per_page
    };
    Ok(OrukPage {
        total_items: total,
        total_pages,
        page_number: query.page,
        size: contents.len() as i64,
        first_page: query.page == 1,
        last_page: query.page >= total_pages,
        empty: contents.is_empty(),
        contents,
    })
}

fn published_row(row: &tokio_postgres::Row) -> Result<OrukService, anyhow::Error> {
    let service: OrukService = serde_json::from_value(row.get(0))?;
    let availability: String = row.get(1);
    Ok(published(
        service,
        &availability,
        row.get(2),
        row.get(3),
        row.get(4),
    ))
}

/// One ORUK service, withdrawn ones as `defunct`.
///
/// # Errors
/// A database failure or an unreadable row.
pub async fn oruk_service(
    client: &impl tokio_postgres::GenericClient,
    id: Uuid,
) -> Result<Option<OrukService>, anyhow::Error> {
    let row = client
        .query_opt(
            "SELECT record, availability, waiting_weeks, withdrawn, modified_at \
             FROM directory_services WHERE service_id = $1",
            &[&id],
        )
        .await?;
    row.map(|r| published_row(&r)).transpose()
}

/// Every service listed now, in the ORUK shape, ordered by name: what an export writes.
///
/// # Errors
/// A database failure or an unreadable row.
pub async fn export(
    client: &impl tokio_postgres::GenericClient,
) -> Result<Vec<OrukService>, anyhow::Error> {
    let rows = client
        .query(
            "SELECT record, availability, waiting_weeks, withdrawn, modified_at \
             FROM directory_services WHERE NOT withdrawn ORDER BY lower(name), service_id",
            &[],
        )
        .await?;
    rows.iter().map(published_row).collect()
}

/// A directory search as asked for: words, need, area, availability and a page, unchecked.
#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    pub q: Option<String>,
    pub need: Option<NeedDomain>,
    pub area: Option<String>,
    pub available: Option<bool>,
    pub cursor: Option<i64>,
    pub limit: Option<i64>,
    /// Answer only once the directory read model has applied the event at this log position.
    pub after: Option<i64>,
}

/// A page of search results, best first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    pub items: Vec<DirectoryEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// The ORUK `/services` listing as asked for, unchecked.
#[derive(Clone, Debug, Default)]
pub struct OrukRequest {
    pub search: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
    pub taxonomy_term_id: Option<String>,
    pub organization_id: Option<Uuid>,
    pub modified_after: Option<DateTime<Utc>>,
    pub minimal: Option<bool>,
}

/// Text of at most `max` characters.
fn bounded(
    field: &'static str,
    text: Option<String>,
    max: usize,
) -> Result<Option<String>, crate::AppError> {
    match text {
        Some(t) if t.chars().count() > max => Err(crate::AppError::BadInput {
            field,
            message: format!("at most {max} characters"),
        }),
        other => Ok(other),
    }
}

fn bad(field: &'static str, message: &str) -> crate::AppError {
    crate::AppError::BadInput {
        field,
        message: message.to_owned(),
    }
}

impl DirectoryService {
    /// Searches the directory for a member of staff (every role may): words (at most 200
    /// characters), need, area (at most 100), availability, and a page of 1 to 100 (20 by
    /// default) after a cursor; once the directory read model has applied the event at `after`.
    ///
    /// # Errors
    /// [`crate::AppError::BadInput`] naming a parameter out of bounds or an `after` that names
    /// no event; [`crate::AppError::NotCaughtUp`]; a store failure.
    pub async fn search_page(
        &self,
        _principal: &Principal,
        request: SearchRequest,
    ) -> Result<SearchPage, crate::AppError> {
        let limit = match request.limit {
            None => 20,
            Some(n) if (1..=100).contains(&n) => n,
            Some(_) => return Err(bad("limit", "give a number from 1 to 100")),
        };
        let offset = match request.cursor {
            None => 0,
            Some(n) if (0..=1_000_000).contains(&n) => n,
            Some(_) => return Err(bad("cursor", "not a cursor of this search")),
        };
        let query = DirectoryQuery {
            text: bounded("q", request.q, 200)?,
            need: request.need,
            area: bounded("area", request.area, 100)?,
            available_only: request.available.unwrap_or(false),
            offset,
            limit,
        };
        self.freshness
            .wait(&[projector::DIRECTORY], request.after)
            .await?;
        let client = self.freshness.store().pool().get().await?;
        let mut items = search(&**client, &query).await?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            Some(offset + limit)
        } else {
            None
        };
        Ok(SearchPage { items, next_cursor })
    }

    /// One directory service as link workers see it (withdrawn ones too, marked), once the
    /// directory read model has applied the event at `after`.
    ///
    /// # Errors
    /// [`crate::AppError::NotFound`] for no such service; as
    /// [`DirectoryService::search_page`] for `after`.
    pub async fn entry(
        &self,
        _principal: &Principal,
        id: Uuid,
        after: Option<i64>,
    ) -> Result<DirectoryEntry, crate::AppError> {
        self.freshness.wait(&[projector::DIRECTORY], after).await?;
        let client = self.freshness.store().pool().get().await?;
        entry_by_id(&**client, id)
            .await?
            .ok_or_else(|| crate::AppError::NotFound("no such service in the directory".into()))
    }

    /// The public ORUK listing (no caller: the directory is public information), a page of 1
    /// to 500 (50 by default) from page 1.
    ///
    /// # Errors
    /// [`crate::AppError::BadInput`] naming a parameter out of bounds; a store failure.
    pub async fn oruk_services(&self, request: OrukRequest) -> Result<OrukPage, crate::AppError> {
        let page = match request.page {
            None => 1,
            Some(n) if (1..=1_000_000).contains(&n) => n,
            Some(_) => return Err(bad("page", "give a page number from 1")),
        };
        let per_page = match request.per_page {
            None => 50,
            Some(n) if (1..=500).contains(&n) => n,
            Some(_) => return Err(bad("per_page", "give 1 to 500")),
        };
        let query = OrukQuery {
            search: bounded("search", request.search, 200)?,
            taxonomy_term_id: bounded("taxonomy_term_id", request.taxonomy_term_id, 200)?,
            organization_id: request.organization_id,
            modified_after: request.modified_after,
            minimal: request.minimal.unwrap_or(false),
            page,
            per_page,
        };
        let client = self.store.pool().get().await?;
        Ok(oruk_page(&**client, &query).await?)
    }

    /// One service in the public ORUK shape (a withdrawn one as `defunct`).
    ///
    /// # Errors
    /// [`crate::AppError::NotFound`] for no such service; a store failure.
    pub async fn oruk_record(&self, id: Uuid) -> Result<OrukService, crate::AppError> {
        let client = self.store.pool().get().await?;
        oruk_service(&**client, id)
            .await?
            .ok_or_else(|| crate::AppError::NotFound("no such service in the directory".into()))
    }
}
