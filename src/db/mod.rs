//! Storage backends behind the domain repositories; the choice of backend
//! is made here, from the database URL, and nowhere else.

// The rules that both backends' SQL must state, written once. Macros, so
// that statements stay texts fixed at compile time (`concat!`).

/// A user who may act: not disabled. `FALSE` reads the same in SQLite
/// (where it is 0) and in PostgreSQL (a boolean).
macro_rules! active_user {
    ($users:literal) => {
        concat!($users, ".disabled = FALSE")
    };
}

/// An admin who may act: the last of them may not be demoted, disabled or
/// deleted.
macro_rules! active_admin {
    ($users:literal) => {
        concat!($users, ".role = 'admin' AND ", active_user!($users))
    };
}

/// A session whose tokens still work: not ended, and not past its absolute
/// end at `$now` (a placeholder).
macro_rules! live_session {
    ($sessions:literal, $now:literal) => {
        concat!(
            $sessions,
            ".revoked_at IS NULL AND ",
            $sessions,
            ".expires_at > ",
            $now
        )
    };
}

pub mod postgres;
pub mod query;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use crate::auth::repository::{MfaRepository, SessionRepository};
use crate::repository::RepoError;
use crate::todos::repository::TodoRepository;
use crate::users::repository::UserRepository;

/// The column expression of `users` that holds the number of a user's own
/// todos with the listing's completed filter (kept by triggers, see the
/// second migration).
fn own_todo_count(completed: Option<bool>) -> &'static str {
    match completed {
        None => "todo_count",
        Some(true) => "completed_todo_count",
        Some(false) => "todo_count - completed_todo_count",
    }
}

/// The version of the newest migration a runner would apply, for readiness.
fn newest_migration(runner: &refinery::Runner) -> i64 {
    runner
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// The repositories of one database, shared by all requests.
#[derive(Clone)]
pub struct Database {
    pub users: Arc<dyn UserRepository>,
    pub todos: Arc<dyn TodoRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    pub mfa: Arc<dyn MfaRepository>,
    health: Arc<dyn HealthCheck>,
}

/// Answers whether the database can serve queries right now.
#[async_trait::async_trait]
pub trait HealthCheck: Send + Sync {
    async fn ping(&self) -> Result<(), RepoError>;

    /// Ready for traffic: the database answers and its schema has every
    /// migration this build knows.
    async fn ready(&self) -> Result<(), RepoError> {
        self.ping().await
    }

    /// The connection pools, for the metrics.
    fn pool_stats(&self) -> Vec<PoolStats> {
        Vec::new()
    }
}

/// Connections of one database pool, as the pool sees them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Which pool, e.g. `reader` or `writer`.
    pub pool: &'static str,
    pub in_use: u32,
    pub idle: u32,
}

/// Where the data lives, parsed from the database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL server; the password, if any, is redacted from `Debug`.
    Postgres(Box<tokio_postgres::Config>),
}

/// How the service uses its database connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbSettings {
    /// How long a request waits for a free connection before the
    /// repository answers [`RepoError::Unavailable`].
    pub acquire_timeout: Duration,
    /// Connections kept by one instance (PostgreSQL).
    pub pool_size: usize,
    /// How long opening a connection may take (PostgreSQL).
    pub connect_timeout: Duration,
    /// How long one statement may run, waits for locks included, before the
    /// server cancels it; zero is no limit (PostgreSQL).
    pub statement_timeout: Duration,
}

impl DatabaseUrl {
    /// Accepts `postgres://…` or `postgresql://…` (a PostgreSQL server),
    /// `sqlite:PATH`, `sqlite://PATH` or a bare file path.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            return postgres::parse_url(url).map(|config| Self::Postgres(Box::new(config)));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path == ":memory:" {
            return Err(format!(
                "the database URL {url:?} names no file; give a path such as sqlite:todo.db"
            ));
        }
        Ok(Self::Sqlite(path.into()))
    }
}

impl Database {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn connect(url: &DatabaseUrl, settings: &DbSettings) -> Result<Self, RepoError> {
        match url {
            DatabaseUrl::Postgres(config) => {
                let store = Arc::new(postgres::PgStore::open((**config).clone(), settings).await?);
                Ok(Self {
                    users: store.clone(),
                    todos: store.clone(),
                    sessions: store.clone(),
                    mfa: store.clone(),
                    health: store,
                })
            }
            DatabaseUrl::Sqlite(path) => {
                let path = path.clone();
                let acquire_timeout = settings.acquire_timeout;
                let store = tokio::task::spawn_blocking(move || {
                    sqlite::SqliteStore::open(&path, acquire_timeout)
                })
                .await
                .map_err(|e| RepoError::Internal(e.to_string()))??;
                let store = Arc::new(store);
                Ok(Self {
                    users: store.clone(),
                    todos: store.clone(),
                    sessions: store.clone(),
                    mfa: store.clone(),
                    health: store,
                })
            }
        }
    }

    pub async fn ping(&self) -> Result<(), RepoError> {
        self.health.ping().await
    }

    /// See [`HealthCheck::ready`].
    pub async fn ready(&self) -> Result<(), RepoError> {
        self.health.ready().await
    }

    pub fn pool_stats(&self) -> Vec<PoolStats> {
        self.health.pool_stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_rules_name_the_stored_role_and_the_live_session() {
        let admin = active_admin!("u");
        assert_eq!(admin, "u.role = 'admin' AND u.disabled = FALSE");
        assert!(admin.contains(&format!("'{}'", crate::users::Role::Admin.as_str())));
        assert_eq!(
            live_session!("s", "$3"),
            "s.revoked_at IS NULL AND s.expires_at > $3"
        );
    }

    #[test]
    fn sqlite_urls_of_every_spelling_name_the_file() {
        for url in ["sqlite:todo.db", "sqlite://todo.db", "todo.db"] {
            assert_eq!(
                DatabaseUrl::parse(url),
                Ok(DatabaseUrl::Sqlite("todo.db".into()))
            );
        }
    }

    #[test]
    fn an_in_memory_database_is_refused() {
        assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
    }

    #[test]
    fn postgres_urls_name_a_server_and_never_show_the_password() {
        for url in [
            "postgres://todo:hunter2@db.example:6543/todo",
            "postgresql://todo:hunter2@db.example:6543/todo",
        ] {
            let parsed = DatabaseUrl::parse(url).expect("a PostgreSQL URL");
            let DatabaseUrl::Postgres(config) = &parsed else {
                panic!("not PostgreSQL: {parsed:?}");
            };
            assert_eq!(config.get_dbname(), Some("todo"));
            assert_eq!(config.get_ports(), [6543]);
            assert!(!format!("{parsed:?}").contains("hunter2"));
        }
    }

    #[test]
    fn a_malformed_postgres_url_is_refused_without_echoing_it() {
        let error = DatabaseUrl::parse("postgres://todo:hunter2@db:notaport/todo").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
    }
}
