//! The directory read model: one row per directory service, ranked by full-text search.

use domain::NeedDomain;
use domain::directory::{DirectoryEvent, OrukService};
use eventstore::RecordedEvent;

use crate::runner::ProjectionError;
use crate::stream_table::stream_table;

/// Folds directory service streams into `directory_services`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectoryProjection;

/// Its name (and checkpoint key).
pub const DIRECTORY: &str = "directory_v1";

stream_table!(
    DirectoryProjection,
    DIRECTORY,
    "directory_services",
    DirectoryEvent
);

impl DirectoryProjection {
    async fn apply_event(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        event: &RecordedEvent,
        decoded: &DirectoryEvent,
    ) -> Result<(), ProjectionError> {
        let id = event.stream_id;
        let at = event.recorded_at;
        let version = event.stream_version;
        match decoded {
            DirectoryEvent::ServiceListed(e) => upsert(tx, event, &e.service, true).await,
            DirectoryEvent::ServiceUpdated(e) => upsert(tx, event, &e.service, false).await,
            DirectoryEvent::ServiceCapacityChanged(e) => {
                let weeks = e.waiting_weeks.and_then(|w| i32::try_from(w).ok());
                tx.execute(
                    "UPDATE directory_services SET availability = $2, waiting_weeks = $3, \
                     modified_at = $4, version = $5 WHERE service_id = $1",
                    &[&id, &domain::code(&e.availability), &weeks, &at, &version],
                )
                .await?;
                Ok(())
            }
            // The read model keeps no owner (the stream decides who may change a service).
            DirectoryEvent::ServiceOwnerChanged(_) => {
                tx.execute(
                    "UPDATE directory_services SET modified_at = $2, version = $3 WHERE service_id = $1",
                    &[&id, &at, &version],
                )
                .await?;
                Ok(())
            }
            DirectoryEvent::ServiceWithdrawn(_) => {
                tx.execute(
                    "UPDATE directory_services SET withdrawn = true, modified_at = $2, version = $3 \
                     WHERE service_id = $1",
                    &[&id, &at, &version],
                )
                .await?;
                Ok(())
            }
        }
    }
}

/// Writes a listed or updated record. A listing brings a withdrawn service back; the
/// availability set in Casebook survives both.
async fn upsert(
    tx: &tokio_postgres::Transaction<'_>,
    event: &RecordedEvent,
    service: &OrukService,
    listing: bool,
) -> Result<(), ProjectionError> {
    let at = event.recorded_at;
    let organisation = service
        .organization
        .as_ref()
        .map(|o| o.name.clone())
        .unwrap_or_default();
    let needs: Vec<String> = service.needs().iter().map(domain::code).collect();
    let need_words: Vec<&str> = service
        .needs()
        .iter()
        .flat_map(|n| [n.label(), need_keywords(*n)])
        .collect();
    let areas: Vec<String> = service.areas().into_iter().collect();
    let categories: Vec<String> = service.categories().into_iter().collect();
    let mut details = service.description.clone().unwrap_or_default();
    for note in service.accessibility() {
        details.push(' ');
        details.push_str(&note);
    }
    let record =
        serde_json::to_value(service).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
    tx.execute(
        "INSERT INTO directory_services (service_id, name, organisation, status, availability, \
         waiting_weeks, withdrawn, needs, areas, categories, record, search, listed_at, \
         modified_at, version) \
         VALUES ($1, $2, $3, $4, 'open', NULL, false, $5, $6, $7, $8, \
           setweight(to_tsvector('english', $2), 'A') \
           || setweight(to_tsvector('english', $9), 'B') \
           || setweight(to_tsvector('english', $3 || ' ' || $10), 'C') \
           || setweight(to_tsvector('english', $11), 'D'), \
           $12, $12, $13) \
         ON CONFLICT (service_id) DO UPDATE SET name = excluded.name, \
           organisation = excluded.organisation, status = excluded.status, \
           withdrawn = directory_services.withdrawn AND NOT $14, needs = excluded.needs, \
           areas = excluded.areas, categories = excluded.categories, record = excluded.record, \
           search = excluded.search, modified_at = excluded.modified_at, \
           version = excluded.version",
        &[
            &event.stream_id,
            &service.name,
            &organisation,
            &domain::code(&service.status),
            &needs,
            &areas,
            &categories,
            &record,
            &categories.join(" "),
            &need_words.join(" "),
            &details,
            &at,
            &event.stream_version,
            &listing,
        ],
    )
    .await?;
    Ok(())
}

/// Words people search with for a need, beyond its label: a service listed under a need is
/// found by them even when its own text uses others ("lonely" finds a lunch club for people
/// "living alone").
fn need_keywords(need: NeedDomain) -> &'static str {
    match need {
        NeedDomain::MentalWellbeing => {
            "mental health wellbeing anxiety depression stress low mood worry"
        }
        NeedDomain::LonelinessIsolation => {
            "lonely loneliness isolated isolation alone social company friendship friends"
        }
        NeedDomain::MoneyBenefitsDebt => {
            "money benefits debt debts finance bills budgeting welfare"
        }
        NeedDomain::Housing => "housing home homeless homelessness tenancy landlord rent",
        NeedDomain::Employment => "employment work job jobs unemployed volunteering skills",
        NeedDomain::PhysicalActivity => "physical activity exercise active fitness walking sport",
        NeedDomain::LongTermCondition => "long-term condition chronic illness health pain",
        NeedDomain::CarerSupport => "carer carers caring respite",
        NeedDomain::Bereavement => "bereavement grief loss bereaved",
        NeedDomain::SubstanceUse => "substance alcohol drinking drugs smoking addiction recovery",
        NeedDomain::Other => "",
    }
}
