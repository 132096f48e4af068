//! Whether the service can serve: the database answers as the service's role and every
//! migration is applied; and how far each read model is behind the log.

use eventstore::EventStore;

use crate::AppError;

/// Why the service is not ready.
#[derive(Debug, thiserror::Error)]
pub enum Unready {
    #[error("the database is unreachable")]
    Database,
    #[error("migrations are not all applied")]
    Migrations,
}

/// The service's health, over its store.
#[derive(Clone)]
pub struct Health {
    store: EventStore,
}

impl Health {
    /// Health over `store`'s database.
    pub fn new(store: EventStore) -> Health {
        Health { store }
    }

    /// Ready when the database answers as the service's role and every migration is applied;
    /// then how far each projection is behind (lag does not make the service unready, and a
    /// lag that cannot be read is left out).
    ///
    /// # Errors
    /// [`Unready`] says why not.
    pub async fn readiness(&self) -> Result<Vec<projector::Lag>, Unready> {
        let client = self.store.pool().get().await.map_err(|e| {
            tracing::warn!(error = %e, "readiness: no database connection");
            Unready::Database
        })?;
        let current = db::schema_is_current(&client).await.map_err(|e| {
            tracing::warn!(error = %e, "readiness: cannot read the schema version");
            Unready::Database
        })?;
        drop(client);
        if !current {
            return Err(Unready::Migrations);
        }
        Ok(self.lag().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read projection lag");
            Vec::new()
        }))
    }

    /// How far each projection is behind the log.
    ///
    /// # Errors
    /// A database failure.
    pub async fn lag(&self) -> Result<Vec<projector::Lag>, AppError> {
        Ok(projector::lag(&self.store).await?)
    }
}
