//! The two databases: how to open each, and the few statements whose SQL differs between them.
//!
//! Everything else is one SQL text run through sqlx's `Any` driver: both SQLite and PostgreSQL
//! accept `$1` placeholders, `RETURNING`, `ON CONFLICT` and row-value comparisons, so the object
//! and event logic is written once instead of twice.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions as _, Executor as _, Row as _};

use super::{StoreError, StoreOptions};

/// Which database a [`Store`](super::Store) runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An embedded SQLite file in WAL mode: one central replica.
    Sqlite,
    /// A PostgreSQL server: any number of central replicas.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        })
    }
}

impl Backend {
    /// Starts a write transaction. SQLite takes the write lock at once rather than at the first
    /// write, so that another process on the same file waits (busy timeout) instead of failing.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }

    /// Starts a read transaction whose statements all see one snapshot, so that a list's
    /// resourceVersion matches its items. SQLite's deferred transactions already do (in WAL mode
    /// a reader keeps the snapshot of its first read); PostgreSQL's default, read committed,
    /// takes a new snapshot per statement.
    pub(crate) fn begin_read(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN",
            Self::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        }
    }

    /// The embedded, numbered migrations of this backend.
    fn migrator(self) -> &'static Migrator {
        static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
        static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
        match self {
            Self::Sqlite => &SQLITE,
            Self::Postgres => &POSTGRES,
        }
    }
}

/// The channel on which PostgreSQL writers announce each commit (payload: its resourceVersion).
pub(crate) const NOTIFY_CHANNEL: &str = "osc_events";

/// How long a SQLite connection waits for a lock held by another connection before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// The connection pools of an opened database, migrated.
pub(crate) struct Pools {
    /// Pool for reads.
    pub reads: AnyPool,
    /// Pool for writes: on SQLite a single connection, so writes queue in the process instead of
    /// contending for the file lock; on PostgreSQL the same pool as `reads`.
    pub writes: AnyPool,
}

/// Opens (creating it if missing) the SQLite database at `path`, switches it to WAL and migrates.
pub(crate) async fn open_sqlite(path: &Path, options: &StoreOptions) -> Result<Pools, StoreError> {
    sqlx::any::install_default_drivers();
    let connect_error = |source| StoreError::Connect {
        backend: Backend::Sqlite,
        target: path.display().to_string(),
        source,
    };
    // An absolute path keeps the URL that `Any` needs free of a host part that URL parsing
    // would lower-case.
    let path = std::path::absolute(path).map_err(|error| connect_error(error.into()))?;
    let url_of = |read_only: bool| {
        let sqlite = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(!read_only)
            .read_only(read_only);
        AnyConnectOptions::from_url(&sqlite.to_url_lossy())
    };

    let writes = sqlite_pool(1)
        .connect_with(url_of(false).map_err(connect_error)?)
        .await
        .map_err(connect_error)?;
    // WAL lets readers run beside the writer. The mode is stored in the file, so setting it once
    // per open is enough; an answer other than "wal" means the file system cannot do it.
    let mode: String = sqlx::query("PRAGMA journal_mode = WAL")
        .fetch_one(&writes)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(connect_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(connect_error(sqlx::Error::Configuration(
            format!("SQLite refused WAL mode (journal mode is {mode}); use a local file system")
                .into(),
        )));
    }
    migrate(Backend::Sqlite, &writes).await?;

    let reads = sqlite_pool(options.max_connections)
        .connect_with(url_of(true).map_err(connect_error)?)
        .await
        .map_err(connect_error)?;
    Ok(Pools { reads, writes })
}

/// Connects to PostgreSQL at `url` and migrates (concurrent replicas take turns: sqlx holds an
/// advisory lock while migrating).
pub(crate) async fn connect_postgres(
    url: &str,
    options: &StoreOptions,
) -> Result<Pools, StoreError> {
    sqlx::any::install_default_drivers();
    let connect_error = |source| StoreError::Connect {
        backend: Backend::Postgres,
        target: describe_postgres(url),
        source,
    };
    let pool = AnyPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(AnyConnectOptions::from_str(url).map_err(connect_error)?)
        .await
        .map_err(connect_error)?;
    migrate(Backend::Postgres, &pool).await?;
    Ok(Pools {
        reads: pool.clone(),
        writes: pool,
    })
}

/// `host:port/database as user` from a PostgreSQL URL, leaving out the password.
pub(crate) fn describe_postgres(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(options) => format!(
            "{}:{}/{} as {}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(default)"),
            options.get_username(),
        ),
        Err(_) => "(unparseable URL)".to_owned(),
    }
}

/// Pool options for SQLite connections: the busy timeout is set on every new connection.
fn sqlite_pool(max_connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection
                    .execute(sqlx::AssertSqlSafe(format!(
                        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                    )))
                    .await
                    .map(drop)
            })
        })
}

/// Applies the backend's pending migrations.
async fn migrate(backend: Backend, pool: &AnyPool) -> Result<(), StoreError> {
    backend
        .migrator()
        .run(pool)
        .await
        .map_err(|source| StoreError::Migrate { backend, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_targets_never_show_the_password() {
        let cases = [
            (
                "postgres://osc:s3cret@db.example:5433/central",
                "db.example:5433/central as osc",
            ),
            (
                "postgres://postgres@127.0.0.1/postgres",
                "127.0.0.1:5432/postgres as postgres",
            ),
            ("not a url s3cret", "(unparseable URL)"),
        ];
        for (url, shown) in cases {
            let described = describe_postgres(url);
            assert_eq!(described, shown);
            assert!(!described.contains("s3cret"));
        }
    }
}
