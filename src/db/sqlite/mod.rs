//! The SQLite backend: WAL mode, one writer connection, a pool of readers,
//! all used on the blocking thread pool.

mod sessions;
mod todos;
mod users;

use std::path::Path;
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

use super::{HealthCheck, PoolStats, RepoError};

mod embedded {
    refinery::embed_migrations!("migrations/sqlite");
}

/// WAL lets readers run while the writer writes; `synchronous=NORMAL` in WAL
/// mode keeps every committed transaction through a crash of the process
/// (only a power loss can take the last ones back).
const PRAGMAS: &str = "PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA foreign_keys = ON;";

/// How long a writer waits for a lock held elsewhere (another process, a
/// checkpoint). Readers run on the async workers and must not stall them:
/// in WAL mode they wait only in rare moments, and briefly.
const WRITER_BUSY_MS: u32 = 5000;
const READER_BUSY_MS: u32 = 250;

/// Read connections kept open: enough that every runtime worker thread has
/// one, since reads run on the worker itself.
fn readers() -> u32 {
    u32::try_from(num_cpus::get()).map_or(8, |cores| cores.max(8))
}

/// A SQLite database file.
pub struct SqliteStore {
    readers: Pool<SqliteConnectionManager>,
    /// Exactly one connection, so writers queue here instead of failing
    /// with `SQLITE_BUSY` against each other.
    writer: Pool<SqliteConnectionManager>,
}

impl SqliteStore {
    /// Opens the file, creating and migrating it as needed. Blocking.
    pub fn open(path: &Path, acquire_timeout: Duration) -> Result<Self, RepoError> {
        let pool = |size, busy_ms: u32| {
            let manager = SqliteConnectionManager::file(path).with_init(move |connection| {
                connection.execute_batch(PRAGMAS)?;
                // Keeps each cached statement's plan: without it SQLite
                // re-prepares a statement whenever a bound value could
                // change the plan, which cost a fifth of a list request.
                connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
                connection.busy_timeout(Duration::from_millis(busy_ms.into()))
            });
            Pool::builder()
                .max_size(size)
                // A file connection does not go stale; testing it on every
                // checkout ran an extra statement per query.
                .test_on_check_out(false)
                .connection_timeout(acquire_timeout)
                .build(manager)
                .map_err(|e| RepoError::Internal(e.to_string()))
        };
        let writer = pool(1, WRITER_BUSY_MS)?;
        {
            let mut connection = writer.get().map_err(|_| RepoError::Unavailable)?;
            embedded::migrations::runner()
                .run(&mut *connection)
                .map_err(|e| RepoError::Internal(format!("migration failed: {e}")))?;
        }
        Ok(Self {
            readers: pool(readers(), READER_BUSY_MS)?,
            writer,
        })
    }

    /// Runs `query` on a read connection, in place. Reads are short and
    /// indexed, and in WAL mode they never wait for the writer, so handing
    /// them to the blocking pool would cost more (two thread switches) than
    /// the query itself.
    async fn read<T, F>(&self, query: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let connection = checkout(&self.readers)?;
        query(&connection).map_err(RepoError::from)
    }

    /// Runs `work` in an immediate transaction on the writer connection and
    /// commits it when it returns `Ok`.
    async fn write<T, F>(&self, work: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, RepoError> + Send + 'static,
    {
        let pool = self.writer.clone();
        blocking(move || {
            let mut connection = checkout(&pool)?;
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = work(&transaction)?;
            transaction.commit()?;
            Ok(value)
        })
        .await
    }
}

fn checkout(
    pool: &Pool<SqliteConnectionManager>,
) -> Result<PooledConnection<SqliteConnectionManager>, RepoError> {
    pool.get().map_err(|_| RepoError::Unavailable)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RepoError> + Send + 'static,
) -> Result<T, RepoError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RepoError::Internal(e.to_string()))?
}

impl From<rusqlite::Error> for RepoError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation)
                if error.to_string().contains("UNIQUE constraint failed") =>
            {
                RepoError::Duplicate
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => RepoError::Unavailable,
            _ => RepoError::Internal(error.to_string()),
        }
    }
}

#[async_trait::async_trait]
impl HealthCheck for SqliteStore {
    async fn ping(&self) -> Result<(), RepoError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    async fn ready(&self) -> Result<(), RepoError> {
        let expected = latest_migration();
        let applied: Option<i64> = self
            .read(|c| {
                c.query_row(
                    "SELECT MAX(version) FROM refinery_schema_history",
                    [],
                    |row| row.get(0),
                )
            })
            .await?;
        match applied {
            Some(version) if version >= expected => Ok(()),
            _ => Err(RepoError::Unavailable),
        }
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        [("reader", &self.readers), ("writer", &self.writer)]
            .into_iter()
            .map(|(pool, connections)| {
                let state = connections.state();
                PoolStats {
                    pool,
                    in_use: state.connections.saturating_sub(state.idle_connections),
                    idle: state.idle_connections,
                }
            })
            .collect()
    }
}

/// The version of the newest migration built into this binary.
fn latest_migration() -> i64 {
    super::newest_migration(&embedded::migrations::runner())
}

/// The current time as stored: RFC 3339, UTC, microseconds.
fn now() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_default()
}

/// Reads a `count(*)` column.
fn count_column(row: &rusqlite::Row<'_>) -> rusqlite::Result<u64> {
    let count: i64 = row.get(0)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Converts a stored text column into a domain value, failing like any
/// other column conversion.
fn parse_column<T: std::str::FromStr>(index: usize, value: String) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            e.to_string().into(),
        )
    })
}
