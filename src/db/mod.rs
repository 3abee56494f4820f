//! Storage backends behind the domain repositories; the choice of backend
//! is made here, from the database URL, and nowhere else.

pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use crate::auth::repository::SessionRepository;
use crate::todos::repository::TodoRepository;
use crate::users::repository::UserRepository;

/// What can go wrong in a repository, in terms the services understand.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No connection could be had in time, or the database is locked.
    #[error("database unavailable")]
    Unavailable,
    /// A unique constraint refused the write.
    #[error("duplicate")]
    Duplicate,
    /// The write would leave no active admin.
    #[error("last active admin")]
    LastAdmin,
    #[error("{0}")]
    Internal(String),
}

/// One page of a list: `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: i64,
}

/// The repositories of one database, shared by all requests.
#[derive(Clone)]
pub struct Database {
    pub users: Arc<dyn UserRepository>,
    pub todos: Arc<dyn TodoRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    health: Arc<dyn HealthCheck>,
}

/// Answers whether the database can serve queries right now.
#[async_trait::async_trait]
pub trait HealthCheck: Send + Sync {
    async fn ping(&self) -> Result<(), RepoError>;
}

/// Where the data lives, parsed from the database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(std::path::PathBuf),
}

impl DatabaseUrl {
    /// Accepts `sqlite:PATH`, `sqlite://PATH` or a bare file path.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            return Err("PostgreSQL is not supported by this build; use a SQLite file".into());
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
    pub async fn connect(url: &DatabaseUrl, acquire_timeout: Duration) -> Result<Self, RepoError> {
        match url {
            DatabaseUrl::Sqlite(path) => {
                let path = path.clone();
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
                    health: store,
                })
            }
        }
    }

    pub async fn ping(&self) -> Result<(), RepoError> {
        self.health.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
