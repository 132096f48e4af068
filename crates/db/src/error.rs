use std::path::PathBuf;

/// Why the database could not be reached, started or prepared.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No PostgreSQL server binaries were found on this machine.
    #[error(
        "no PostgreSQL server binaries found (looked in $CASEBOOK_PG_BIN, `pg_config --bindir`, \
         /usr/lib/postgresql/*/bin and $PATH): install them (Debian: `apt-get install postgresql`) \
         or set CASEBOOK_DATABASE_URL to a running server"
    )]
    NoBinaries,
    /// The process runs as root and there is no `postgres` system user to run the server as.
    #[error(
        "running as root, and PostgreSQL refuses root: create a `postgres` system user \
         (Debian's postgresql package does) or run as an ordinary user"
    )]
    NoPostgresUser,
    /// The `postgres` user cannot reach the data directory (a parent is not searchable).
    #[error(
        "the postgres user cannot reach {0}: a parent directory is not searchable by others; \
         choose another --data-dir"
    )]
    Unreachable(PathBuf),
    /// A PostgreSQL tool (initdb, pg_ctl) failed.
    #[error("{tool} failed: {detail}")]
    Tool { tool: String, detail: String },
    /// Reading or writing the cluster directory failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A database statement failed.
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The pool could not hand out a connection.
    #[error("database pool error: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
    /// A configuration value could not be used.
    #[error("invalid database configuration: {0}")]
    Config(String),
}

impl DbError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DbError::Io {
            context: context.into(),
            source,
        }
    }
}
