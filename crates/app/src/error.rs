//! Why a read or an administrative request was not answered.

use eventstore::StoreError;

use crate::access::AccessError;
use crate::{CommandError, Denied};

/// Why a query, a report or an administrative request was not answered.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The caller may not (403), or may not know (404).
    #[error(transparent)]
    Denied(#[from] Denied),
    /// Nothing by that id for this caller.
    #[error("{0}")]
    NotFound(String),
    /// What was asked for is not ready yet (a snapshot still being built): ask again later.
    #[error("{0}")]
    NotReady(String),
    /// A parameter outside its bounds, by name (a query parameter over HTTP).
    #[error("{field}: {message}")]
    BadInput {
        field: &'static str,
        message: String,
    },
    /// The read models an answer comes from did not apply the event at log position `after`
    /// within the wait allowed (HTTP 503: try again later).
    #[error(
        "the read model has not caught up with log position {after} after waiting {} ms; try again",
        waited.as_millis()
    )]
    NotCaughtUp {
        after: i64,
        /// The read models still behind it (versioned names).
        projections: Vec<String>,
        /// How long the read waited.
        waited: std::time::Duration,
    },
    /// A command was refused or failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// Access management refused or failed.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    /// No connection could be had.
    #[error(transparent)]
    Pool(#[from] db::deadpool_postgres::PoolError),
    /// A read model failed.
    #[error(transparent)]
    Projection(#[from] projector::ProjectionError),
    /// A rule file did not load.
    #[error(transparent)]
    Rules(#[from] projector::rules::RulesError),
    /// A report could not be read as figures (a fault of this build).
    #[error(transparent)]
    Figures(#[from] crate::reports::FiguresError),
    /// A read failed in a way only the logs need to know.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl AppError {
    pub(crate) fn bad_input(field: &'static str, message: impl Into<String>) -> AppError {
        AppError::BadInput {
            field,
            message: message.into(),
        }
    }
}

/// Rows per page when none is asked for.
pub const DEFAULT_LIMIT: i64 = 50;
/// The most rows a page holds.
pub const MAX_LIMIT: i64 = 500;

/// Where a page starts and how long it is, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page<C> {
    /// The `next_cursor` of the page before, if any.
    pub cursor: Option<C>,
    /// Rows on the page, 1 to [`MAX_LIMIT`].
    pub limit: i64,
}

impl<C> Page<C> {
    /// A page of `limit` rows (default [`DEFAULT_LIMIT`]) after `cursor`.
    ///
    /// # Errors
    /// [`AppError::BadInput`] naming `limit` outside 1 to [`MAX_LIMIT`].
    pub fn new(cursor: Option<C>, limit: Option<i64>) -> Result<Page<C>, AppError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(AppError::bad_input(
                    "limit",
                    format!("give a number from 1 to {MAX_LIMIT}"),
                ));
            }
        };
        Ok(Page { cursor, limit })
    }
}

impl Page<i64> {
    /// A page after a numeric cursor, which is never negative.
    ///
    /// # Errors
    /// As [`Page::new`], and [`AppError::BadInput`] naming a negative `cursor`.
    pub fn numbered(cursor: Option<i64>, limit: Option<i64>) -> Result<Page<i64>, AppError> {
        let page = Page::new(cursor, limit)?;
        if cursor.is_some_and(|c| c < 0) {
            return Err(AppError::bad_input("cursor", "a cursor is not negative"));
        }
        Ok(page)
    }
}

/// Whether a database error means the database cannot be reached (the connection was lost or
/// refused, or the server is shutting down or starting), rather than a fault of the request or
/// the code: a caller may try again later.
pub fn database_unreachable(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if error.is_closed() {
        return true;
    }
    match error.as_db_error() {
        Some(db) => [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(db.code()),
        None => std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// Whether no connection could be had because the database is away (a timeout, a refused or
/// lost connection, a server shutting down), not because it answered with a fault that waiting
/// will not heal (a wrong password, a missing database).
pub fn pool_unreachable(error: &db::deadpool_postgres::PoolError) -> bool {
    match error {
        db::deadpool_postgres::PoolError::Backend(e) => database_unreachable(e),
        _ => true,
    }
}
