//! Who may see and answer the connections made to a directory service, and who ties provider
//! staff to services: pure rules over the caller, the services they are tied to and the loaded
//! record, tested as a table below and over HTTP by the matrix test.
//!
//! A provider's staff see a connection only when it was made to one of their services; any
//! other connection, and any other record, is answered as absent (404), as another
//! organisation's record is.

use domain::{ConnectionId, ServiceId};
use uuid::Uuid;

use super::{forbidden, require};
use crate::access::{Principal, Role, StaffMember};
use crate::cases::{Denied, LoadedCase};

/// May the caller list the connections made to their services? Provider staff only.
///
/// # Errors
/// [`Denied::Forbidden`] for any other role.
pub fn may_read_provider_connections(principal: &Principal) -> Result<(), Denied> {
    require(
        principal,
        &[Role::ServiceProvider],
        "the connections made to a service",
    )
}

/// May the caller answer `connection_id` on this record (accept, decline, say whether the
/// person started)? Provider staff, for a connection of the record made to a service they are
/// tied to (`tied`). Whatever else the record holds is not theirs to know about.
///
/// # Errors
/// [`Denied::Forbidden`] for any other role; [`Denied::NotFound`] for no such record, no such
/// connection on it, or a connection to a service not theirs.
pub fn may_answer_connection(
    principal: &Principal,
    case: &LoadedCase,
    connection_id: ConnectionId,
    tied: &[ServiceId],
) -> Result<(), Denied> {
    require(
        principal,
        &[Role::ServiceProvider],
        "answering a connection made to a service",
    )?;
    match case.state.connection_services.get(&connection_id) {
        Some((service, _)) if case.exists() && tied.contains(service) => Ok(()),
        _ => Err(Denied::NotFound),
    }
}

/// May the caller tie `staff` to (or untie them from) a directory service owned by `owner`?
/// An administrator, for a staff account of their own organisation (looked up there: `None` is
/// absent) and a service their organisation owns. A directory service is public, so another
/// organisation's is 403, not 404. (That the account is provider staff is a check of the
/// request, the application's: 422 at `staff_id`.)
///
/// # Errors
/// [`Denied::Forbidden`] for another role or a service of another owner; [`Denied::NotFound`]
/// for no such staff member of the organisation, or no such service (`owner` is `None`).
pub fn may_tie_provider(
    principal: &Principal,
    staff: Option<&StaffMember>,
    owner: Option<Uuid>,
) -> Result<(), Denied> {
    require(
        principal,
        &[Role::Administrator],
        "tying provider staff to a service",
    )?;
    if staff.is_none() {
        return Err(Denied::NotFound);
    }
    let Some(owner) = owner else {
        return Err(Denied::NotFound);
    };
    if owner != principal.organisation_id {
        return Err(forbidden(
            "only the organisation that owns a service in the directory ties staff to it",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use domain::{
        CaseEvent, ConnectionKind, EventId, NeedDomain, OnwardConnectionMade, StaffId, evolve,
    };

    use super::*;

    const SERVICE: ServiceId = ServiceId(Uuid::from_u128(0x5e));
    const OTHER_SERVICE: ServiceId = ServiceId(Uuid::from_u128(0x5f));
    const CONNECTION: ConnectionId = ConnectionId(Uuid::from_u128(0xc0));
    const ORGANISATION: Uuid = Uuid::from_u128(0x01);
    const PROVIDER_ORGANISATION: Uuid = Uuid::from_u128(0x02);

    fn principal(role: Role, organisation_id: Uuid) -> Principal {
        Principal {
            staff_id: StaffId(Uuid::from_u128(0x99)),
            organisation_id,
            team_id: None,
            role,
            token_id: Uuid::nil(),
        }
    }

    fn connected_case() -> LoadedCase {
        let connection = CaseEvent::OnwardConnectionMade(OnwardConnectionMade {
            connection_id: CONNECTION,
            service_id: SERVICE,
            need: NeedDomain::LonelinessIsolation,
            kind: ConnectionKind::Referred,
        });
        LoadedCase {
            state: evolve(
                Default::default(),
                EventId(Uuid::from_u128(1)),
                &connection,
                chrono::DateTime::UNIX_EPOCH,
            ),
            version: 5,
            organisation_id: Some(ORGANISATION),
            ..LoadedCase::default()
        }
    }

    /// A row of the table: its name, the caller's role, the record, the connection, the
    /// services the caller is tied to, and whether they may answer (`Err` is absent).
    type Row<'a> = (
        &'static str,
        Role,
        &'a LoadedCase,
        ConnectionId,
        &'a [ServiceId],
        Result<(), bool>,
    );

    #[test]
    fn only_provider_staff_of_the_service_answer_its_connections() {
        let case = connected_case();
        let absent = LoadedCase::default();
        let table: Vec<Row<'_>> = vec![
            (
                "provider of the service",
                Role::ServiceProvider,
                &case,
                CONNECTION,
                &[SERVICE],
                Ok(()),
            ),
            (
                "tied to several",
                Role::ServiceProvider,
                &case,
                CONNECTION,
                &[OTHER_SERVICE, SERVICE],
                Ok(()),
            ),
            (
                "provider of another service",
                Role::ServiceProvider,
                &case,
                CONNECTION,
                &[OTHER_SERVICE],
                Err(true),
            ),
            (
                "provider of no service",
                Role::ServiceProvider,
                &case,
                CONNECTION,
                &[],
                Err(true),
            ),
            (
                "no such connection",
                Role::ServiceProvider,
                &case,
                ConnectionId(Uuid::from_u128(7)),
                &[SERVICE],
                Err(true),
            ),
            (
                "no such record",
                Role::ServiceProvider,
                &absent,
                CONNECTION,
                &[SERVICE],
                Err(true),
            ),
        ];
        for (name, role, case, connection, tied, expected) in table {
            let outcome = may_answer_connection(
                &principal(role, PROVIDER_ORGANISATION),
                case,
                connection,
                tied,
            );
            match expected {
                Ok(()) => assert_eq!(outcome, Ok(()), "{name}"),
                Err(_) => assert_eq!(outcome, Err(Denied::NotFound), "{name}"),
            }
        }
        for role in Role::ALL {
            if role == Role::ServiceProvider {
                continue;
            }
            // Even the record's own team is refused: answering is the service's, not theirs.
            let outcome = may_answer_connection(
                &principal(role, ORGANISATION),
                &case,
                CONNECTION,
                &[SERVICE],
            );
            assert!(
                matches!(outcome, Err(Denied::Forbidden(_))),
                "{role}: {outcome:?}"
            );
            assert!(
                matches!(
                    may_read_provider_connections(&principal(role, ORGANISATION)),
                    Err(Denied::Forbidden(_))
                ),
                "{role}"
            );
        }
        assert_eq!(
            may_read_provider_connections(&principal(Role::ServiceProvider, PROVIDER_ORGANISATION)),
            Ok(())
        );
    }

    #[test]
    fn an_administrator_ties_their_own_provider_staff_to_their_own_services() {
        let member = |role: Role| StaffMember {
            staff_id: Uuid::from_u128(0x77),
            organisation_id: PROVIDER_ORGANISATION,
            team_id: None,
            name: "Chris Dunn".to_owned(),
            role,
            capacity: None,
            active: true,
        };
        let provider = member(Role::ServiceProvider);
        let admin = principal(Role::Administrator, PROVIDER_ORGANISATION);
        assert_eq!(
            may_tie_provider(&admin, Some(&provider), Some(PROVIDER_ORGANISATION)),
            Ok(())
        );
        assert_eq!(
            may_tie_provider(&admin, None, Some(PROVIDER_ORGANISATION)),
            Err(Denied::NotFound),
            "staff of another organisation are not found"
        );
        assert_eq!(
            may_tie_provider(&admin, Some(&provider), None),
            Err(Denied::NotFound),
            "no such service"
        );
        for (name, staff, owner) in [
            (
                "another organisation's service",
                &provider,
                Some(ORGANISATION),
            ),
            ("the operator's service", &provider, Some(Uuid::nil())),
        ] {
            assert!(
                matches!(
                    may_tie_provider(&admin, Some(staff), owner),
                    Err(Denied::Forbidden(_))
                ),
                "{name}"
            );
        }
        for role in Role::ALL {
            if role == Role::Administrator {
                continue;
            }
            let outcome = may_tie_provider(
                &principal(role, PROVIDER_ORGANISATION),
                Some(&provider),
                Some(PROVIDER_ORGANISATION),
            );
            assert!(matches!(outcome, Err(Denied::Forbidden(_))), "{role}");
        }
    }
}
