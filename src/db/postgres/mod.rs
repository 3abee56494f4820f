//! The PostgreSQL backend: a pool of tokio-postgres connections. Every rule
//! that concurrent requests could break — the last admin, single-use
//! refresh tokens, unique usernames, login throttling — is decided by the
//! database inside one transaction, so any number of instances may share it.

mod mfa;
mod sessions;
mod todos;
mod users;

use std::fmt::Display;
use std::str::FromStr;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use tokio_postgres::{Config, NoTls, Row};

use super::{DbSettings, HealthCheck, PoolStats};
use crate::repository::RepoError;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// The session-level advisory lock that migrations run under, so that
/// instances started together migrate one after the other.
const MIGRATION_LOCK: i64 = 0x7464_6170_6900_0001;

/// The transaction-scoped advisory lock taken by every write that could
/// leave the service without an active admin, before the write and the
/// count: such writes run one at a time, each seeing the last one's result.
const ADMIN_LOCK: i64 = 0x7464_6170_6900_0002;

/// Timestamps as the API shows them: RFC 3339, UTC, microseconds, `Z`, the
/// same text the SQLite backend stores.
const TIMESTAMP: &[FormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

/// Parses a `postgres://` or `postgresql://` URL; the error never repeats it.
pub fn parse_url(url: &str) -> Result<Config, String> {
    Config::from_str(url).map_err(|e| format!("the PostgreSQL URL is malformed: {}", describe(&e)))
}

/// A PostgreSQL database.
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// Connects, brings the schema up to date and prepares the pool.
    pub async fn open(mut config: Config, settings: &DbSettings) -> Result<Self, RepoError> {
        config.connect_timeout(settings.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("todo-api");
        }
        // Migrations may take their time; requests may not.
        migrate(&config).await?;
        let limit = format!(
            "-c statement_timeout={}",
            settings.statement_timeout.as_millis()
        );
        let options = match config.get_options() {
            Some(given) if !given.trim().is_empty() => format!("{given} {limit}"),
            _ => limit,
        };
        config.options(&options);

        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .wait_timeout(Some(settings.acquire_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| RepoError::Internal(e.to_string()))?;
        Ok(Self { pool })
    }

    /// A connection from the pool; waiting longer than the acquire timeout,
    /// or failing to connect, is [`RepoError::Unavailable`].
    async fn client(&self) -> Result<Object, RepoError> {
        self.pool.get().await.map_err(|error| {
            match &error {
                PoolError::Backend(cause) => {
                    tracing::warn!(cause = %describe(cause), "no PostgreSQL connection")
                }
                other => tracing::warn!(cause = %other, "no PostgreSQL connection"),
            }
            RepoError::Unavailable
        })
    }
}

/// Runs the embedded migrations on a connection of their own, without the
/// statement timeout, holding [`MIGRATION_LOCK`].
async fn migrate(config: &Config) -> Result<(), RepoError> {
    let (mut client, connection) = config.connect(NoTls).await.map_err(|e| {
        RepoError::Internal(format!("cannot connect to PostgreSQL: {}", describe(&e)))
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(cause = %describe(&e), "migration connection failed");
        }
    });
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let outcome = embedded::migrations::runner()
        .run_async(&mut client)
        .await
        .map(|_| ())
        .map_err(|e| RepoError::Internal(format!("migration failed: {e}")));
    // Closing the connection would release the lock as well.
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    outcome
}

/// An error with its causes, for logs and operators; never for clients.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        },
    }
}

impl From<tokio_postgres::Error> for RepoError {
    fn from(error: tokio_postgres::Error) -> Self {
        let Some(code) = error.code() else {
            // The connection broke or could not be used.
            let io = std::error::Error::source(&error).is_some_and(|c| c.is::<std::io::Error>());
            return if error.is_closed() || io {
                tracing::warn!(cause = %describe(&error), "PostgreSQL unavailable");
                RepoError::Unavailable
            } else {
                RepoError::Internal(describe(&error))
            };
        };
        match code.code() {
            // unique_violation: a username taken in some case.
            "23505" => RepoError::Duplicate,
            // Connection exceptions, insufficient resources, operator
            // intervention (statement timeout, shutdown) and transaction
            // rollbacks (deadlock, serialization): try again later.
            class
                if ["08", "53", "57", "40"]
                    .iter()
                    .any(|c| class.starts_with(c)) =>
            {
                tracing::warn!(cause = %describe(&error), "PostgreSQL unavailable");
                RepoError::Unavailable
            }
            _ => RepoError::Internal(describe(&error)),
        }
    }
}

#[async_trait::async_trait]
impl HealthCheck for PgStore {
    async fn ping(&self) -> Result<(), RepoError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn ready(&self) -> Result<(), RepoError> {
        let client = self.client().await?;
        let applied: Option<i32> = client
            .query_one("SELECT max(version) FROM refinery_schema_history", &[])
            .await?
            .try_get(0)?;
        match applied {
            Some(version) if i64::from(version) >= latest_migration() => Ok(()),
            _ => Err(RepoError::Unavailable),
        }
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        let status = self.pool.status();
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        vec![PoolStats {
            pool: "postgres",
            in_use: clamp(status.size.saturating_sub(status.available)),
            idle: clamp(status.available),
        }]
    }
}

/// The version of the newest migration built into this binary.
fn latest_migration() -> i64 {
    super::newest_migration(&embedded::migrations::runner())
}

/// Reads a `timestamptz` column as the API shows it.
fn timestamp(row: &Row, index: usize) -> Result<String, RepoError> {
    let at: OffsetDateTime = row.try_get(index)?;
    at.to_offset(time::UtcOffset::UTC)
        .format(TIMESTAMP)
        .map_err(|e| RepoError::Internal(e.to_string()))
}

/// Reads a `count(*)` column.
fn count(row: &Row) -> Result<u64, RepoError> {
    let count: i64 = row.try_get(0)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Converts a stored text column into a domain value.
fn parse_text<T: FromStr>(row: &Row, index: usize) -> Result<T, RepoError>
where
    T::Err: Display,
{
    let text: &str = row.try_get(index)?;
    text.parse()
        .map_err(|e: T::Err| RepoError::Internal(format!("column {index}: {e}")))
}

/// Reads a `clearance_level` (smallint, 0–5 by a check constraint).
fn level(row: &Row, index: usize) -> Result<u8, RepoError> {
    let level: i16 = row.try_get(index)?;
    u8::try_from(level).map_err(|e| RepoError::Internal(format!("column {index}: {e}")))
}
