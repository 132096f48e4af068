//! Closed-loop connections (issue #21, part 4): a directory service's own staff (provider
//! staff, `Role::ServiceProvider`) see the onward connections made to the services they are
//! tied to, accept or decline them (with a coded reason), and say whether the person started.
//!
//! Provider staff belong to their own organisation (a voluntary organisation, usually outside
//! the NHS service that made the connection); its administrator ties them to services the
//! organisation owns in the directory (`provider_services`, V26). A provider sees connections
//! made to its services from any organisation, and of each only what it needs: the need, the
//! kind of connection, when it was made, its own answer, and the person's given name and
//! family initial while the person's consent to share with onward services covers the service
//! (never their journey, scores or notes). Every page is written to the read audit first, one
//! row per person, under the record's own organisation (so the record's auditors see it), as
//! view `provider_connections`.
//!
//! Answers are client events (`domain::provider`), appended through
//! [`CaseService::execute_authorised`] under the record's organisation with the provider's
//! staff id and role as the actor, idempotent by key.

use chrono::{DateTime, Utc};
use domain::{
    CaseEvent, ClientId, ConnectionKind, ConsentScope, DomainEvent, NeedDomain, ProviderAnswer,
    ProviderCommand, ServiceId,
};
use eventstore::{AppendResult, Metadata, StoreError};
use serde::Serialize;
use uuid::Uuid;

use crate::access::{self, Principal};
use crate::error::{AppError, Page};
use crate::policy;
use crate::records::ReadContext;
use crate::{CaseService, CommandError, CommandOptions, Denied, LoadedCase, StaffCommand};

/// What a provider may know of the person: their given name and family initial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SharedPerson {
    pub given_name: String,
    pub family_initial: String,
}

/// A connection made to one of the caller's services.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProviderConnection {
    pub client_id: Uuid,
    pub connection_id: Uuid,
    pub service_id: Uuid,
    /// The service's name in the directory, when the directory lists it.
    pub service_name: Option<String>,
    pub need: NeedDomain,
    pub kind: ConnectionKind,
    /// When the link worker made the connection.
    pub made_at: DateTime<Utc>,
    /// The service's answer so far; none before it answers.
    pub answer: Option<ProviderAnswer>,
    /// The person, while their consent to share with onward services covers this service;
    /// null otherwise (and once erased).
    pub person: Option<SharedPerson>,
    /// The person's personal data was erased: the connection can no longer be answered.
    pub erased: bool,
}

/// A page of connections, newest first.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderConnectionPage {
    pub items: Vec<ProviderConnection>,
    /// Pass as `cursor` for the next page; absent on the last page. A page before the last is
    /// full, unless more than ten pages' worth of connections since corrected to signposting
    /// (not shown) lay where it was read.
    pub next_cursor: Option<i64>,
}

/// A provider staff member's tie to a directory service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ProviderTie {
    pub staff_id: Uuid,
    pub service_id: Uuid,
    /// False when the tie was already there (nothing changed).
    pub created: bool,
}

/// The provider's side of onward connections, beside the [`CaseService`] (the same store and
/// clock).
#[derive(Clone)]
pub struct ProviderConnections {
    cases: CaseService,
}

/// What one person's record gives the list.
struct Person {
    organisation: Uuid,
    loaded: LoadedCase,
}

impl ProviderConnections {
    /// Provider connections over the same store and clock as `cases`.
    pub fn beside(cases: &CaseService) -> ProviderConnections {
        ProviderConnections {
            cases: cases.clone(),
        }
    }

    /// The services `principal` is tied to and their organisation still owns: a tie made while
    /// it owned a service gives nothing once the service has passed to another owner.
    async fn tied(&self, principal: &Principal) -> Result<Vec<ServiceId>, StoreError> {
        let rows = {
            let client = self.cases.store().pool().get().await?;
            client
                .query(
                    "SELECT service_id FROM provider_services WHERE staff_id = $1 \
                     ORDER BY service_id",
                    &[&principal.staff_id.0],
                )
                .await?
        };
        let mut owned = Vec::with_capacity(rows.len());
        for row in &rows {
            let service = ServiceId(row.get(0));
            match crate::directory::service_state(self.cases.store(), service).await {
                Ok(state) if state.owner == Some(principal.organisation_id) => owned.push(service),
                Ok(_) | Err(crate::stream::LoadError::OtherKind(_)) => {}
                Err(crate::stream::LoadError::Store(e)) => return Err(e),
                Err(crate::stream::LoadError::Corrupt(e)) => {
                    return Err(StoreError::InvalidPayload(e.to_string()));
                }
            }
        }
        Ok(owned)
    }

    /// Answers a connection made to one of the caller's services: accept it, decline it with a
    /// reason, or say whether the person started. Idempotent by key, the caller's own: stored on
    /// the record as `provider <staff id> <key>` ([`crate::cases::own_key`]: with spaces, which
    /// no caller's key holds), so that it never meets a key of the service's staff (a provider
    /// learns nothing of the keys used on the record, and staff cannot use one first). The HTTP
    /// routes take no `If-Match` (a provider never sees the record's version, so it could only
    /// be used to watch it); `request.expected_version` is checked for a caller that has one.
    ///
    /// # Errors
    /// [`CommandError::Denied`] by [`policy::provider::may_answer_connection`] (403 for another
    /// role, 404 for a record or connection not theirs); the domain's refusals; conflicts and
    /// store failures.
    #[tracing::instrument(skip_all, fields(client_id = %client_id.0))]
    pub async fn answer_as(
        &self,
        principal: &Principal,
        client_id: ClientId,
        command: &ProviderCommand,
        request: StaffCommand,
    ) -> Result<AppendResult, CommandError> {
        policy::require(
            principal,
            &[access::Role::ServiceProvider],
            "answering a connection made to a service",
        )?;
        let tied = self.tied(principal).await.map_err(CommandError::Store)?;
        let connection_id = command.connection_id();
        // The record's organisation goes on the answer's metadata: the log's organisation names
        // whose record an event belongs to; the actor (and their role) say it was the provider.
        let loaded = self.cases.load(client_id).await?;
        policy::provider::may_answer_connection(principal, &loaded, connection_id, &tied)?;
        let Some(organisation_id) = loaded.organisation_id else {
            return Err(Denied::NotFound.into());
        };
        let metadata = Metadata {
            organisation_id,
            ..principal.metadata(request.correlation_id, self.cases.clock().now())
        };
        let caller_key = request.idempotency_key.clone();
        let options = CommandOptions {
            idempotency_key: request.idempotency_key.map(|key| {
                crate::cases::own_key(&["provider", &principal.staff_id.0.to_string(), &key])
            }),
            fingerprint: request.fingerprint,
            expected_version: request.expected_version,
        };
        let answered = self
            .cases
            .execute_authorised(
                client_id,
                &domain::CaseCommand::AnswerConnection(command.clone()),
                metadata,
                options,
                |check| {
                    policy::provider::may_answer_connection(
                        principal,
                        check.case,
                        connection_id,
                        &tied,
                    )
                },
            )
            .await;
        // A key used for another request is named as the caller gave it.
        answered.map_err(|e| match e {
            CommandError::IdempotencyMismatch(_) => {
                CommandError::IdempotencyMismatch(caller_key.unwrap_or_default())
            }
            e => e,
        })
    }

    /// The connections made to the caller's services, newest first, a page of `limit` after
    /// `cursor` (a log position). Signposting is left out: the service was not told of the
    /// person. Each person on the page is written to the read audit before it is answered.
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::provider::may_read_provider_connections`]; a `limit`
    /// or `cursor` out of bounds; store failures.
    #[tracing::instrument(skip_all)]
    pub async fn connections(
        &self,
        principal: &Principal,
        cursor: Option<i64>,
        limit: Option<i64>,
        read: &ReadContext,
    ) -> Result<ProviderConnectionPage, AppError> {
        policy::provider::may_read_provider_connections(principal)?;
        let page = Page::numbered(cursor, limit)?;
        let tied = self.tied(principal).await?;
        if tied.is_empty() {
            return Ok(ProviderConnectionPage {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let services: Vec<String> = tied.iter().map(|s| s.0.to_string()).collect();
        let mut people: std::collections::HashMap<Uuid, Person> = Default::default();
        let mut items: Vec<(i64, ProviderConnection)> = Vec::new();
        // Rows whose connection is now signposting (corrected so) are read and not shown: the
        // page reads on, a page's worth of rows at a time, until it holds one more than it
        // shows (so that `next_cursor` is set only when the next page has something in it), or
        // the log ends, or it has read ten pages' worth: then the page may be short, and
        // `next_cursor` is where it stopped.
        let (wanted, batch) = (page.limit + 1, page.limit + 1);
        let most = 10 * batch;
        let (mut cursor, mut read_rows, mut ended) = (page.cursor, 0, false);
        'read: loop {
            let rows = self.connection_rows(&services, cursor, batch).await?;
            for row in &rows {
                read_rows += 1;
                cursor = Some(row.get(0));
                let client_id: Uuid = row.get(1);
                if let std::collections::hash_map::Entry::Vacant(vacant) = people.entry(client_id) {
                    let loaded = self.cases.load(ClientId(client_id)).await?;
                    if let Some(organisation) = loaded.organisation_id {
                        vacant.insert(Person {
                            organisation,
                            loaded,
                        });
                    }
                }
                if let Some(person) = people.get(&client_id)
                    && let Some(item) = shown(row, client_id, person)?
                {
                    items.push((row.get(0), item));
                    if items.len() as i64 >= wanted {
                        break 'read;
                    }
                }
            }
            if (rows.len() as i64) < batch {
                ended = true;
                break;
            }
            if read_rows >= most {
                break;
            }
        }
        let next_cursor = if items.len() as i64 > page.limit {
            items.truncate(page.limit as usize);
            items.last().map(|(position, _)| *position)
        } else if ended {
            None
        } else {
            cursor
        };
        let items: Vec<ProviderConnection> = items.into_iter().map(|(_, item)| item).collect();
        // Only those listed were read (a person whose connection here is now signposting was
        // loaded, not shown).
        people.retain(|client_id, _| items.iter().any(|item| item.client_id == *client_id));
        self.audit(principal, &people, read).await?;
        Ok(ProviderConnectionPage { next_cursor, items })
    }

    /// Up to `limit` connections made to `services` before log position `cursor`, newest
    /// first, leaving out those made as signposting and never corrected.
    async fn connection_rows(
        &self,
        services: &[String],
        cursor: Option<i64>,
        limit: i64,
    ) -> Result<Vec<tokio_postgres::Row>, AppError> {
        let client = self.cases.store().pool().get().await?;
        Ok(client
            .query(
                "SELECT e.position, e.stream_id, e.event_type, e.schema_version, e.payload, \
                        e.occurred_at, d.name, e.event_id \
                 FROM events e \
                 LEFT JOIN directory_services d \
                   ON d.service_id = (e.payload->>'service_id')::uuid \
                 WHERE e.event_type = 'OnwardConnectionMade' \
                   AND e.payload->>'service_id' = ANY($1::text[]) \
                   AND (e.payload->>'kind' <> 'signposted' OR EXISTS ( \
                        SELECT 1 FROM events c WHERE c.stream_id = e.stream_id \
                          AND c.event_type = 'EntryCorrected' \
                          AND c.payload->>'corrects' = e.event_id::text)) \
                   AND ($2::bigint IS NULL OR e.position < $2) \
                 ORDER BY e.position DESC LIMIT $3",
                &[&services, &cursor, &limit],
            )
            .await?)
    }

    /// Writes one read per person on the page to the read audit, under the record's own
    /// organisation, in one statement.
    async fn audit(
        &self,
        principal: &Principal,
        people: &std::collections::HashMap<Uuid, Person>,
        read: &ReadContext,
    ) -> Result<(), AppError> {
        if people.is_empty() {
            return Ok(());
        }
        let reads: Vec<(Uuid, Uuid)> = people
            .iter()
            .map(|(client_id, person)| (person.organisation, *client_id))
            .collect();
        let client = self.cases.store().pool().get().await?;
        crate::records::write_reads(
            &**client,
            principal,
            &reads,
            crate::records::RecordView::ProviderConnections,
            read,
        )
        .await
    }

    /// Ties a provider staff member of the administrator's organisation to a directory service
    /// the organisation owns (nothing changes when they are tied already).
    ///
    /// # Errors
    /// [`AppError::Denied`] by [`policy::provider::may_tie_provider`]; a service not in the
    /// directory refused as [`domain::CaseError::UnknownService`]; store failures.
    pub async fn tie(
        &self,
        principal: &Principal,
        staff_id: Uuid,
        service_id: ServiceId,
    ) -> Result<ProviderTie, AppError> {
        self.may_tie(principal, staff_id, service_id).await?;
        let client = self.cases.store().pool().get().await?;
        let created = client
            .execute(
                "INSERT INTO provider_services (staff_id, service_id, organisation_id, tied_by) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[
                    &staff_id,
                    &service_id.0,
                    &principal.organisation_id,
                    &principal.staff_id.0,
                ],
            )
            .await?;
        Ok(ProviderTie {
            staff_id,
            service_id: service_id.0,
            created: created == 1,
        })
    }

    /// Unties a provider staff member from a service: they no longer see or answer its
    /// connections. Returns whether there was a tie.
    ///
    /// # Errors
    /// As [`ProviderConnections::tie`].
    pub async fn untie(
        &self,
        principal: &Principal,
        staff_id: Uuid,
        service_id: ServiceId,
    ) -> Result<bool, AppError> {
        self.may_tie(principal, staff_id, service_id).await?;
        let client = self.cases.store().pool().get().await?;
        let removed = client
            .execute(
                "DELETE FROM provider_services WHERE staff_id = $1 AND service_id = $2",
                &[&staff_id, &service_id.0],
            )
            .await?;
        Ok(removed == 1)
    }

    async fn may_tie(
        &self,
        principal: &Principal,
        staff_id: Uuid,
        service_id: ServiceId,
    ) -> Result<(), AppError> {
        policy::require(
            principal,
            &[access::Role::Administrator],
            "tying provider staff to a service",
        )?;
        let staff = {
            let client = self.cases.store().pool().get().await?;
            access::staff_member(&**client, principal.organisation_id, staff_id).await?
        };
        let owner = match crate::directory::service_state(self.cases.store(), service_id).await {
            Ok(state) => state.owner,
            Err(crate::stream::LoadError::OtherKind(_)) => None,
            Err(crate::stream::LoadError::Store(e)) => return Err(e.into()),
            Err(crate::stream::LoadError::Corrupt(e)) => {
                return Err(AppError::Unexpected(e.into()));
            }
        };
        // An absent staff member (the path's) is not found; an absent service (the body's) is a
        // field naming nothing, refused as a connection to it is (422, unknown_service): a 404
        // would say the staff member the path names is not there.
        policy::provider::may_tie_provider(principal, staff.as_ref(), owner).map_err(|denied| {
            match denied {
                Denied::NotFound if staff.is_none() => {
                    AppError::NotFound("no such staff member".into())
                }
                Denied::NotFound => CommandError::Refused(domain::CaseError::UnknownService).into(),
                Denied::Forbidden(why) => Denied::Forbidden(why).into(),
            }
        })?;
        match staff {
            Some(staff) if staff.role == access::Role::ServiceProvider => Ok(()),
            _ => Err(AppError::bad_input(
                "staff_id",
                "only provider staff (role service_provider) are tied to services",
            )),
        }
    }
}

/// The connection a row of [`ProviderConnections::connection_rows`] holds, as the service is
/// shown it (corrections applied), or none when it is now signposting: the service was not
/// told of the person.
fn shown(
    row: &tokio_postgres::Row,
    client_id: Uuid,
    person: &Person,
) -> Result<Option<ProviderConnection>, AppError> {
    let event = CaseEvent::decode(row.get(2), row.get(3), row.get(4))
        .map_err(|e| AppError::Unexpected(e.into()))?;
    let CaseEvent::OnwardConnectionMade(connection) = event else {
        return Ok(None);
    };
    // As corrected (its need, its kind).
    let connection = match person.loaded.entries.get(&domain::EventId(row.get(7))) {
        Some(CaseEvent::OnwardConnectionMade(corrected)) => corrected.clone(),
        _ => connection,
    };
    let state = &person.loaded.state;
    let kind = state
        .connection_services
        .get(&connection.connection_id)
        .map_or(connection.kind, |(_, kind)| *kind);
    if kind == domain::ConnectionKind::Signposted {
        return Ok(None);
    }
    Ok(Some(ProviderConnection {
        client_id,
        connection_id: connection.connection_id.0,
        service_id: connection.service_id.0,
        service_name: row.get(6),
        need: connection.need,
        kind,
        made_at: row.get(5),
        answer: state
            .provider_answers
            .get(&connection.connection_id)
            .copied(),
        person: shared_person(&person.loaded, connection.service_id),
        erased: state.erased,
    }))
}

/// The person as the service may know them: given name and family initial, while their consent
/// to share with onward services is in force and covers `service` (any service, or it by name),
/// and they are not erased.
fn shared_person(loaded: &LoadedCase, service: ServiceId) -> Option<SharedPerson> {
    let state = &loaded.state;
    if state.erased {
        return None;
    }
    let covered = state
        .consents
        .get(&ConsentScope::ShareWithOnwardServices)
        .is_some_and(|services| services.is_empty() || services.contains(&service));
    if !covered {
        return None;
    }
    loaded.entries.values().find_map(|entry| match entry {
        CaseEvent::ClientRegistered(registered) => Some(SharedPerson {
            given_name: registered.personal.given_name.clone(),
            family_initial: registered
                .personal
                .family_name
                .chars()
                .next()
                .map(String::from)
                .unwrap_or_default(),
        }),
        _ => None,
    })
}
