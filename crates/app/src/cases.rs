use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::{
    BackEntryWindow, CLIENT_STREAM, CaseCommand, CaseError, CaseEvent, CaseState, ClientId,
    DecodeError, EventId, ReferralId, Timing, evolve,
};
use eventstore::{
    AppendRequest, AppendResult, EventStore, ExpectedVersion, Metadata, StoreError, StreamHead,
};
use projector::rules::RecordingRules;
use uuid::Uuid;

use crate::access::{self, Principal, Role};
use crate::clock::Clock;
use crate::policy;

/// Carries out commands on client records.
#[derive(Clone)]
pub struct CaseService {
    store: EventStore,
    clock: Clock,
    recording: RecordingRules,
    /// Where the caseloads are read: `store`, or a read replica of its database.
    reads: EventStore,
    /// How its reads of read models (the caseloads) wait for `after`.
    freshness: crate::Freshness,
}

/// How to carry out one command.
#[derive(Clone, Debug, Default)]
pub struct CommandOptions {
    /// A repeat of a key already used on this client's stream returns the first result.
    pub idempotency_key: Option<String>,
    /// What makes a request "the same" for its key (a digest of the request body).
    pub fingerprint: Option<[u8; 32]>,
    /// The stream version the caller last saw (HTTP If-Match); stale means a conflict.
    pub expected_version: Option<i64>,
}

/// What the append of a referral matched by NHS number (`crate::intake`, `crate::fhir`)
/// writes beside its events.
#[derive(Clone, Debug, Default)]
pub(crate) struct Matched {
    /// Tags of the id a referrer chose for someone new, on the record the referral went to
    /// because the organisation already held the person ([`crate::matching::referred_as_tag`],
    /// [`crate::matching::chosen_id_tag`]).
    pub(crate) referred_as: Vec<[u8; 32]>,
    /// The NHS number's claim ([`crate::matching::number_claim`]), made by the append of a new
    /// record for a number the referral found no record holding: a racing referral of the same
    /// number that found the same fails, nothing of it written. A referral of someone new
    /// that goes to a known person's record claims the id chosen
    /// ([`crate::matching::chosen_id_claim`]), as a record made at the id does.
    pub(crate) claims: Vec<eventstore::Claim>,
    /// Claims made only by an append that makes the record: the id chosen's, by a referral of
    /// someone new made at the id ([`crate::matching::chosen_id_claim`]).
    pub(crate) claims_if_new: Vec<eventstore::Claim>,
}

/// An idempotency key the service makes itself, for a command it appends on someone's behalf
/// (a provider's answer, kept apart from the keys the record's staff use) or for its own (a
/// practice's FHIR referral): `parts` joined by spaces. A caller's key is printable ASCII
/// without a space (the API refuses any other), so no caller can use one of these first, to
/// have the service's command refused or answered with what the caller did.
pub fn own_key(parts: &[&str]) -> String {
    parts.join(" ")
}

/// A command from a member of staff: what makes it retry-safe and current.
#[derive(Clone, Debug, Default)]
pub struct StaffCommand {
    /// A repeat of a key already used on this client's stream returns the first result.
    pub idempotency_key: Option<String>,
    /// What makes a request "the same" for its key (a digest of the request as received).
    pub fingerprint: Option<[u8; 32]>,
    /// The stream version the caller last saw (HTTP If-Match); stale means a conflict.
    pub expected_version: Option<i64>,
    /// Ties the events to the request that caused them (the request id).
    pub correlation_id: Uuid,
    /// When the fact happened, for a command not dated by a field of its own (default: now).
    pub occurred_at: Option<DateTime<Utc>>,
    /// Why a fact older than the back-entry window is entered now (a team lead's).
    pub late_entry_reason: Option<String>,
}

/// When a command's fact happened, as its caller says, and the window they are held to.
#[derive(Clone, Debug, Default)]
struct Dating {
    given: Option<DateTime<Utc>>,
    window: Option<BackEntryWindow>,
    reason: Option<String>,
}

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A business rule refused it.
    #[error(transparent)]
    Refused(#[from] CaseError),
    /// A field names something the caller may not name (staff of another team or
    /// organisation, someone else as the referrer).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The record changed since the caller looked (or concurrently): nothing was written.
    #[error("the record is at version {actual}, not {expected}")]
    Conflict {
        expected: ExpectedVersion,
        actual: i64,
    },
    /// The idempotency key was used for a different request.
    #[error("idempotency key {0:?} was already used for a different request")]
    IdempotencyMismatch(String),
    /// A stored event could not be read in its current shape.
    #[error(transparent)]
    Corrupt(#[from] DecodeError),
    /// The caller may not do this to this record.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The staff tables could not be read.
    #[error(transparent)]
    Access(#[from] access::AccessError),
}

/// What an access check is asked about.
#[derive(Clone, Copy, Debug)]
pub struct Authorise<'a> {
    /// The record as loaded.
    pub case: &'a LoadedCase,
    /// True when only the first result of a repeated idempotency key would be returned.
    pub replay: bool,
}

/// Why a caller may not act on or see something.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Not theirs to know about (another organisation's record): answered as if absent.
    #[error("no such record")]
    NotFound,
    /// Theirs to know about, not theirs to do.
    #[error("{0}")]
    Forbidden(String),
}

impl From<crate::stream::LoadError> for CommandError {
    fn from(e: crate::stream::LoadError) -> Self {
        match e {
            crate::stream::LoadError::Store(e) => e.into(),
            crate::stream::LoadError::Corrupt(e) => CommandError::Corrupt(e),
            // A service's id given as a client's: there is no such client record.
            crate::stream::LoadError::OtherKind(_) => CommandError::Denied(Denied::NotFound),
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict {
                expected, actual, ..
            } => CommandError::Conflict { expected, actual },
            StoreError::IdempotencyMismatch { key, .. } => CommandError::IdempotencyMismatch(key),
            // Erased between the load and the append: the same refusal as after it.
            StoreError::SubjectErased(_) => CommandError::Refused(CaseError::Erased),
            other => CommandError::Store(other),
        }
    }
}

/// A client's record folded from its stream.
#[derive(Clone, Debug, Default)]
pub struct LoadedCase {
    /// The folded state.
    pub state: CaseState,
    /// The stream's version (0 when there is no such client).
    pub version: i64,
    /// The organisation the record belongs to (its first event's), when there is a record.
    pub organisation_id: Option<Uuid>,
    /// Who submitted each referral (the actor of its `ReferralReceived`).
    pub referred_by: BTreeMap<ReferralId, Uuid>,
    /// The referral received last.
    pub latest_referral: Option<ReferralId>,
    /// Every entry as it reads now (corrections applied), for a correction to be checked
    /// against the entry it names.
    pub entries: BTreeMap<EventId, CaseEvent>,
}

impl LoadedCase {
    /// Folds the next event of the stream and keeps it.
    pub(crate) fn fold_owned(&mut self, event: &eventstore::RecordedEvent, case_event: CaseEvent) {
        self.fold(event, &case_event);
        if let CaseEvent::EntryCorrected(correction) = &case_event
            && let Some(original) = self.entries.get(&correction.corrects)
            && let Ok(corrected) = domain::corrected_entry(original, correction)
        {
            self.entries.insert(correction.corrects, corrected);
        }
        self.entries.insert(EventId(event.event_id), case_event);
    }

    /// Folds the next event of the stream.
    pub(crate) fn fold(&mut self, event: &eventstore::RecordedEvent, case_event: &CaseEvent) {
        if let CaseEvent::ReferralReceived(referral) = case_event {
            self.referred_by
                .insert(referral.referral_id, event.metadata.actor_id);
            self.latest_referral = Some(referral.referral_id);
        }
        self.organisation_id
            .get_or_insert(event.metadata.organisation_id);
        self.state = evolve(
            std::mem::take(&mut self.state),
            EventId(event.event_id),
            case_event,
            event.metadata.occurred_at,
        );
        self.version = event.stream_version;
    }

    /// Whether there is a record at all.
    pub fn exists(&self) -> bool {
        self.version > 0
    }
}

impl CaseService {
    /// A service appending to `store`, on the system's clock.
    pub fn new(store: EventStore) -> Self {
        CaseService::with_clock(store, Clock::system())
    }

    /// A service appending to `store`, reading the time from `clock`.
    pub fn with_clock(store: EventStore, clock: Clock) -> Self {
        CaseService {
            freshness: crate::Freshness::new(store.clone(), crate::ReadWait::default()),
            reads: store.clone(),
            store,
            clock,
            recording: RecordingRules::current(),
        }
    }

    /// The same service, its reads of read models waiting for `after` as `wait` says.
    pub fn with_read_wait(mut self, wait: crate::ReadWait) -> Self {
        self.freshness = self.freshness.with_wait(wait);
        self
    }

    /// The same service, its caseloads read from `replica` (a streaming replica of the
    /// store's database, as the service's role), waiting on the replica's own checkpoints.
    /// Commands and the reads of a record (which write the read audit) stay on the store.
    pub fn with_replica(mut self, replica: EventStore) -> Self {
        self.freshness = self.freshness.moved_to(replica.clone(), self.store.clone());
        self.reads = replica;
        self
    }

    /// Where the caseloads are read from: the store, or its read replica.
    pub fn read_store(&self) -> &EventStore {
        &self.reads
    }

    /// How reads of read models wait for the caller's own writes.
    pub fn freshness(&self) -> &crate::Freshness {
        &self.freshness
    }

    /// The clock every rule of this service reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Where a redirected referral may be said to have gone, when not to a listed service: the
    /// destination codes of the recording rules commands are held to, with their names.
    pub fn redirect_destinations(&self) -> &[projector::rules::DestinationCode] {
        &self.recording.destinations
    }

    /// The event store.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// `command` decided as a new person's first (against an empty record, with the caller's
    /// dating rules), writing nothing: a referral of someone new that goes to the record the
    /// organisation already holds (`crate::intake`) is refused first for whatever would refuse
    /// it for someone unknown (their details, its dates), so that no refusal depends on who is
    /// known.
    ///
    /// Checked in the order the usual path checks (`decide_and_append`): whom the command
    /// names, then its dates, then `decide`, so that the first refusal is the same one.
    ///
    /// # Errors
    /// [`CommandError::Invalid`] for whom it names; [`CommandError::Refused`]: what `decide`
    /// refuses.
    pub(crate) async fn decide_as_new(
        &self,
        principal: &Principal,
        command: &CaseCommand,
        request: &StaffCommand,
    ) -> Result<(), CommandError> {
        policy::may_name(principal, command)
            .map_err(|misnamed| invalid(misnamed.field, misnamed.message))?;
        let actor = (principal.staff_id.0, principal.role.as_str());
        check_staff_named(self.store.pool(), principal.organisation_id, actor, command).await?;
        let timing = Timing::of(command, request.occurred_at, self.clock.now())?.within(
            BackEntryWindow {
                days: self.recording.back_entry_days,
                may_exceed: policy::may_enter_late(principal),
            },
            request.late_entry_reason.clone(),
        );
        let destinations = self.recording.destination_codes();
        let needing_note = self.recording.destinations_needing_note();
        let concern_categories = crate::safeguarding::rules().category_codes();
        let tags = crate::tags::rules().codes();
        let lookups = domain::Lookups {
            service: None,
            timing: Some(&timing),
            corrected: None,
            destinations: Some(&destinations),
            concern_categories: Some(&concern_categories),
            tags: Some(&tags),
            destinations_needing_note: Some(&needing_note),
        };
        domain::decide(&CaseState::default(), command, &lookups)?;
        Ok(())
    }

    /// A pooled connection to the store's database.
    ///
    /// # Errors
    /// The pool cannot give one.
    pub(crate) async fn connection(&self) -> Result<db::deadpool_postgres::Client, StoreError> {
        Ok(self.store.pool().get().await?)
    }

    /// Reads and folds a client's stream.
    ///
    /// # Errors
    /// A store failure or an event that cannot be decoded.
    pub async fn load(&self, client_id: ClientId) -> Result<LoadedCase, CommandError> {
        Ok(crate::stream::load(
            &self.store,
            client_id.0,
            LoadedCase::default(),
            |loaded, event, decoded: CaseEvent| loaded.fold_owned(&event, decoded),
        )
        .await?)
    }

    /// Decides `command` against the client's record and appends what it produces: the
    /// service's own path (imports, the demo, erasure), not held to the back-entry window.
    /// The fact happened at `metadata.occurred_at`, or at the command's own date if it has one.
    /// The staff a command names are looked up as for any caller, in `metadata`'s organisation
    /// (an assignment's link worker exists, is active and is in the team named).
    ///
    /// With an idempotency key already used on this record, returns the first result without
    /// deciding again (a retried "accept referral" must not be refused as already accepted),
    /// and without checking `expected_version` (the retry carries the version seen before).
    ///
    /// # Errors
    /// [`CommandError::Refused`] for a business rule, [`CommandError::Conflict`] when the
    /// record moved (a stale `expected_version`, or a concurrent writer), and store failures.
    pub async fn execute(
        &self,
        client_id: ClientId,
        command: &CaseCommand,
        metadata: Metadata,
        options: CommandOptions,
    ) -> Result<AppendResult, CommandError> {
        self.execute_authorised(client_id, command, metadata, options, |_| Ok(()))
            .await
    }

    /// Carries out `command` for a member of staff: every rule a caller is held to, in one
    /// place, with the record loaded once.
    ///
    /// In order: the record is loaded; a repeat of an idempotency key returns the first result
    /// to a caller who may see the record; otherwise the access policy
    /// ([`policy::may_command`]), whom the caller may name ([`policy::may_name`]) and the staff
    /// the command names, looked up as for every caller ([`check_staff_named`]), the
    /// command's dates against the clock, the record's version (`expected_version`), `decide`,
    /// the directory for an onward connection, and the append. The command happens now unless
    /// it carries its own date.
    ///
    /// # Errors
    /// As [`CaseService::execute`], and [`CommandError::Denied`] from the policy.
    pub async fn execute_as(
        &self,
        principal: &Principal,
        client_id: ClientId,
        command: &CaseCommand,
        request: StaffCommand,
    ) -> Result<AppendResult, CommandError> {
        self.execute_as_under(
            principal,
            (client_id, Matched::default()),
            command,
            request,
            |check| policy::may_command(principal, check.case, command, check.replay),
        )
        .await
    }

    /// [`CaseService::execute_as`] under another access rule than [`policy::may_command`], for a
    /// path the policy names on its own (a FHIR referral of a person found by NHS number,
    /// [`policy::may_refer_known_person`]; a referral of someone new the organisation already
    /// holds, [`policy::may_refer_matched_person`], whose append also tags the record with
    /// `referred_as`, [`crate::matching::referred_as_tag`]); with `matched`, the append also
    /// writes what [`Matched`] says.
    ///
    /// # Errors
    /// As [`CaseService::execute_as`].
    pub(crate) async fn execute_as_under(
        &self,
        principal: &Principal,
        (client_id, matched): (ClientId, Matched),
        command: &CaseCommand,
        request: StaffCommand,
        authorise: impl Fn(Authorise<'_>) -> Result<(), Denied>,
    ) -> Result<AppendResult, CommandError> {
        // Dated now until the command's timing is checked.
        let metadata = principal.metadata(request.correlation_id, self.clock.now());
        let dating = Dating {
            given: request.occurred_at,
            window: Some(BackEntryWindow {
                days: self.recording.back_entry_days,
                may_exceed: policy::may_enter_late(principal),
            }),
            reason: request.late_entry_reason,
        };
        let options = CommandOptions {
            idempotency_key: request.idempotency_key,
            fingerprint: request.fingerprint,
            expected_version: request.expected_version,
        };
        self.run(
            client_id,
            command,
            (metadata, dating),
            options,
            (Some(principal), matched),
            authorise,
        )
        .await
    }

    /// [`CaseService::execute`] with an access check on the loaded record.
    ///
    /// The record is loaded first. `authorise` is asked with `replay` true before a repeated
    /// idempotency key's first result is returned (only whether the caller may see this record
    /// at all matters then: the first request was already allowed) and with `replay` false
    /// before deciding a new command.
    ///
    /// # Errors
    /// As [`CaseService::execute`], and [`CommandError::Denied`] from `authorise`.
    #[tracing::instrument(skip_all, fields(client_id = %client_id))]
    pub async fn execute_authorised(
        &self,
        client_id: ClientId,
        command: &CaseCommand,
        metadata: Metadata,
        options: CommandOptions,
        authorise: impl Fn(Authorise<'_>) -> Result<(), Denied>,
    ) -> Result<AppendResult, CommandError> {
        let dating = Dating {
            given: command.own_date().is_none().then_some(metadata.occurred_at),
            ..Dating::default()
        };
        self.run(
            client_id,
            command,
            (metadata, dating),
            options,
            (None, Matched::default()),
            authorise,
        )
        .await
    }

    async fn run(
        &self,
        client_id: ClientId,
        command: &CaseCommand,
        (metadata, dating): (Metadata, Dating),
        options: CommandOptions,
        (staff, matched): (Option<&Principal>, Matched),
        authorise: impl Fn(Authorise<'_>) -> Result<(), Denied>,
    ) -> Result<AppendResult, CommandError> {
        let organisation_id = metadata.organisation_id;
        let named = || async {
            // What the caller alone decides (the policy's), then whom the command names, looked
            // up for every caller: a system path (the demo, an import) names real staff too.
            if let Some(principal) = staff {
                policy::may_name(principal, command)
                    .map_err(|misnamed| invalid(misnamed.field, misnamed.message))?;
            }
            let actor = (metadata.actor_id, metadata.actor_role.as_str());
            check_staff_named(self.store.pool(), organisation_id, actor, command).await
        };
        // A new person's record at an id not yet used: decided against an empty record and
        // written in one statement, with nothing read first (`head_of_new_stream`). Whatever
        // stops that (the id in use, by anyone's record or by this request's own earlier try;
        // a refusal; a failure), nothing was written, and the command goes the usual way
        // below, whose answer is the one given.
        if let CaseCommand::Intake {
            client: Some(_), ..
        } = command
            && options.expected_version.unwrap_or(0) == 0
        {
            let head = self
                .store
                .head_of_new_stream(client_id.0, options.idempotency_key.as_deref());
            let decided = self
                .decide_and_append(
                    client_id,
                    command,
                    (metadata.clone(), dating.clone()),
                    options.clone(),
                    (&authorise, matched.clone()),
                    (LoadedCase::default(), head, true),
                    named().await,
                )
                .await;
            match decided {
                Ok(result) => return Ok(result),
                // Another record claimed the person's NHS number first: its caller decides
                // again on what it finds now (`crate::intake`).
                Err(taken @ CommandError::Store(StoreError::ClaimTaken(_))) => return Err(taken),
                Err(_) => {}
            }
        }
        // The record, the stream's head for the append and any result stored under the key
        // in one round trip; the staff a command names (an assignment's or transfer's link
        // worker) looked up at the same time, on another connection.
        let load = crate::stream::load_for_command(
            &self.store,
            client_id.0,
            options.idempotency_key.as_deref(),
            LoadedCase::default(),
            |loaded: &mut LoadedCase, event, decoded: CaseEvent| loaded.fold_owned(&event, decoded),
        );
        let (loaded, named) = tokio::join!(load, named());
        let (loaded, head) = loaded?;
        self.decide_and_append(
            client_id,
            command,
            (metadata, dating),
            options,
            (&authorise, matched),
            (loaded, head, false),
            named,
        )
        .await
    }

    /// The rest of [`CaseService::run`] once the record is loaded (`assumed_new`: not loaded
    /// but assumed empty, when any failure is answered as it is, for `run` to load and decide
    /// again).
    #[allow(clippy::too_many_arguments)]
    async fn decide_and_append(
        &self,
        client_id: ClientId,
        command: &CaseCommand,
        (mut metadata, dating): (Metadata, Dating),
        options: CommandOptions,
        (authorise, matched): (&impl Fn(Authorise<'_>) -> Result<(), Denied>, Matched),
        (loaded, head, assumed_new): (LoadedCase, StreamHead, bool),
        named: Result<(), CommandError>,
    ) -> Result<AppendResult, CommandError> {
        if options.idempotency_key.is_some() {
            // A key already used: only a caller who may see the record learns of it, whether
            // they get the first result or hear that the key was used for something else.
            let stored = head.stored_result(options.fingerprint);
            let replay = Authorise {
                case: &loaded,
                replay: true,
            };
            match stored {
                Ok(None) => {}
                Ok(Some(result)) => {
                    authorise(replay)?;
                    // What reports count by is written after the append: a first attempt
                    // stopped between the two is completed by its retry (idempotent).
                    if let Some(organisation_id) = loaded.organisation_id {
                        let kept: Vec<(CaseEvent, i64)> = result
                            .events
                            .iter()
                            .filter_map(|e| {
                                let event = loaded.entries.get(&EventId(e.event_id))?;
                                Some((event.clone(), e.position))
                            })
                            .collect();
                        crate::equity::keep(self.store.pool(), client_id, organisation_id, &kept)
                            .await?;
                    }
                    return Ok(result);
                }
                Err(mismatch @ StoreError::IdempotencyMismatch { .. }) => {
                    authorise(replay)?;
                    return Err(mismatch.into());
                }
                Err(other) => return Err(other.into()),
            }
        }
        authorise(Authorise {
            case: &loaded,
            replay: false,
        })?;
        named?;
        let mut timing = Timing::of(command, dating.given, self.clock.now())?;
        if let Some(window) = dating.window {
            timing = timing.within(window, dating.reason);
        }
        metadata.occurred_at = timing.occurred_at;
        if let Some(expected) = options.expected_version
            && expected != loaded.version
        {
            return Err(CommandError::Conflict {
                expected: ExpectedVersion::Exact(expected),
                actual: loaded.version,
            });
        }
        // Demographics: what reports count by is derived here (app::equity), not by the caller.
        let completed = crate::equity::complete(
            self.store.pool(),
            command,
            &loaded,
            domain::calendar::today(timing.occurred_at),
        )
        .await?;
        let command = completed.as_ref().unwrap_or(command);
        // What `decide` needs from outside the record: the directory service a connection
        // names, from the log (a service listed a moment ago can be used at once).
        // A redirection's service is looked up the same way, as is one a correction of a
        // redirection names, and a connection's whose kind a correction changes.
        let corrected = match command {
            CaseCommand::CorrectEntry(correction) => loaded.entries.get(&correction.corrects),
            _ => None,
        };
        let named_service = match command {
            CaseCommand::MakeConnection(connection) => Some(connection.service_id),
            CaseCommand::RedirectReferral(domain::ReferralRedirected {
                destination: domain::Destination::Service { service_id },
                ..
            }) => Some(*service_id),
            CaseCommand::CorrectEntry(correction) => match corrected {
                Some(CaseEvent::OnwardConnectionMade(connection))
                    if correction.corrected_fields.contains_key("kind") =>
                {
                    Some(connection.service_id)
                }
                _ => correction
                    .corrected_fields
                    .get("destination")
                    .and_then(|d| d.get("service_id"))
                    .and_then(|id| id.as_str())
                    .and_then(|id| id.parse().ok())
                    .map(domain::ServiceId),
            },
            _ => None,
        };
        let service = match named_service {
            Some(service_id) => {
                match crate::directory::service_state(&self.store, service_id).await {
                    Ok(state) => Some(state),
                    // Another kind of record: no such service.
                    Err(crate::stream::LoadError::OtherKind(_)) => None,
                    Err(e) => return Err(e.into()),
                }
            }
            None => None,
        };
        let destinations = self.recording.destination_codes();
        let needing_note = self.recording.destinations_needing_note();
        let concern_categories = crate::safeguarding::rules().category_codes();
        let tags = crate::tags::rules().codes();
        let lookups = domain::Lookups {
            service: service.as_ref(),
            timing: Some(&timing),
            corrected,
            destinations: Some(&destinations),
            concern_categories: Some(&concern_categories),
            tags: Some(&tags),
            destinations_needing_note: Some(&needing_note),
        };
        let events = domain::decide(&loaded.state, command, &lookups)?;
        let mut new_events = crate::stream::new_events(&events);
        for (new_event, event) in new_events.iter_mut().zip(&events) {
            new_event.personal_paths = crate::privacy::personal_paths(event, &loaded.entries);
        }
        // The NHS number's lookup tag, in the append's statement, when the events register
        // the person or correct their registration (`matching`); a referral of someone new that
        // went to this record (`intake`) tags it with the id its referrer chose, the same way.
        let lookups = match command {
            CaseCommand::EraseClient(_) => None,
            _ => {
                crate::matching::lookups_after(
                    &self.store,
                    loaded.organisation_id.unwrap_or(metadata.organisation_id),
                    (client_id.0, &loaded),
                    &events,
                    &matched.referred_as,
                )
                .await?
            }
        };
        // The version the decision was made on: a concurrent writer makes this a conflict.
        let expected = match loaded.version {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exact(version),
        };
        let mut claims = matched.claims;
        if loaded.version == 0 {
            claims.extend(matched.claims_if_new);
        }
        let request = AppendRequest {
            stream_id: client_id.0,
            stream_type: CLIENT_STREAM.to_owned(),
            expected,
            events: new_events,
            metadata,
            idempotency_key: options.idempotency_key,
            fingerprint: options.fingerprint,
            lookups,
            claims,
        };
        let appended = if matches!(command, CaseCommand::EraseClient(_)) {
            // What reports count the person by goes first: an erasure that then fails leaves
            // them uncounted (until it is retried), never counted after it succeeded.
            if let Some(organisation_id) = loaded.organisation_id {
                crate::equity::forget(self.store.pool(), client_id, organisation_id).await?;
            }
            // The erasure event and the destruction of the data key, in one statement.
            self.store.append_and_shred(request).await
        } else {
            // After the head the load read: one round trip, the insert.
            self.store.append_after(request, head).await
        };
        match appended {
            Ok(result) => {
                if let Some(organisation_id) = loaded.organisation_id {
                    let kept: Vec<(CaseEvent, i64)> = events
                        .into_iter()
                        .zip(result.events.iter().map(|e| e.position))
                        .collect();
                    crate::equity::keep(self.store.pool(), client_id, organisation_id, &kept)
                        .await?;
                }
                Ok(result)
            }
            // Another writer got there first. Whoever it was, the caller hears of the record's
            // version only if they may still see the record as it is now: a referral racing
            // another organisation's to a new id is answered as any id of theirs would be.
            Err(conflict @ StoreError::Conflict { .. }) if !assumed_new => {
                let now = self.load(client_id).await?;
                let seen = authorise(Authorise {
                    case: &now,
                    replay: false,
                });
                match seen {
                    Err(Denied::NotFound) => Err(Denied::NotFound.into()),
                    _ => Err(conflict.into()),
                }
            }
            Err(other) => Err(other.into()),
        }
    }
}

fn invalid(field: &'static str, message: &str) -> CommandError {
    CommandError::Invalid {
        field,
        message: message.to_owned(),
    }
}

/// Whom a command names, looked up in `organisation_id`'s staff (what a caller alone may not
/// name is [`policy::may_name`], asked before): an assignment or transfer names an active link
/// worker (or team lead) of the organisation, in the team it names, a lone worker's buddy is an
/// active link worker or team lead of it ([`policy::may_be_buddy`]), and a referral's referrer,
/// when it names a Casebook user, names one of the organisation's staff (active or not: a
/// referral may be recorded after its referrer left); a practice's system bound to its practice
/// (`access::bind_practice`) names no other practice as the referrer organisation.
///
/// # Errors
/// [`CommandError::Invalid`] naming the field; a database failure.
async fn check_staff_named(
    pool: &db::Pool,
    organisation_id: Uuid,
    (actor_id, actor_role): (Uuid, &str),
    command: &CaseCommand,
) -> Result<(), CommandError> {
    let (worker, team, field) = match command {
        CaseCommand::AssignLinkWorker(assign) => {
            (assign.link_worker_id, assign.team_id, "link_worker_id")
        }
        CaseCommand::TransferCase(transfer) => (
            transfer.to_link_worker_id,
            transfer.team_id,
            "to_link_worker_id",
        ),
        // A lone worker's buddy is an active link worker or team lead of the organisation
        // (`policy::may_be_buddy`): someone who sees a missed check-in and can act on it.
        CaseCommand::RecordLoneWorkingPlan(plan) => {
            let client = pool.get().await.map_err(StoreError::from)?;
            let buddy =
                access::staff_member_cached(&client, organisation_id, plan.buddy_staff_id.0)
                    .await?;
            return match buddy {
                Some(m) if !policy::may_be_buddy(m.role) => Err(invalid(
                    "buddy_staff_id",
                    "a buddy is a link worker or team lead, who sees a missed check-in and can act on it",
                )),
                Some(m) if m.active => Ok(()),
                Some(_) => Err(invalid("buddy_staff_id", "that staff member is not active")),
                None => Err(invalid(
                    "buddy_staff_id",
                    "no such staff member in this organisation",
                )),
            };
        }
        CaseCommand::Intake { referral, .. } => {
            // A practice's system bound to its practice names that practice only (GP message
            // rules v3 write to the practice a practice system's referral names, as the FHIR
            // mapping records it: "ODS <code>").
            if actor_role == Role::PracticeSystem.as_str()
                && let Some(named) = referral
                    .referrer
                    .organisation
                    .as_deref()
                    .and_then(|o| o.strip_prefix("ODS "))
                    .map(str::trim)
            {
                let client = pool.get().await.map_err(StoreError::from)?;
                if let Some(own) = access::bound_practice(&**client, actor_id).await?
                    && own != named
                {
                    return Err(invalid(
                        "referral.referrer.organisation",
                        &format!(
                            "a practice's system refers for its own practice only (ODS {own})"
                        ),
                    ));
                }
            }
            let Some(referrer) = referral.referrer.staff_id else {
                return Ok(());
            };
            let client = pool.get().await.map_err(StoreError::from)?;
            return match access::staff_member_cached(&client, organisation_id, referrer.0).await? {
                Some(_) => Ok(()),
                None => Err(invalid(
                    "referral.referrer.staff_id",
                    "no such staff member in this organisation",
                )),
            };
        }
        _ => return Ok(()),
    };
    let client = pool.get().await.map_err(StoreError::from)?;
    let member = access::staff_member_cached(&client, organisation_id, worker.0).await?;
    match member {
        Some(m) if m.active && matches!(m.role, Role::LinkWorker | Role::TeamLead) => {
            if m.team_id != Some(team.0) {
                Err(invalid("team_id", "that link worker is not in this team"))
            } else {
                Ok(())
            }
        }
        Some(m) if !m.active => Err(invalid(field, "that staff member is not active")),
        Some(_) => Err(invalid(field, "that staff member is not a link worker")),
        None => Err(invalid(field, "no such link worker in this organisation")),
    }
}
