//! What every request handler can reach: the database, the hasher, the
//! token keys, the settings and the metrics, opened once at start-up.

use std::sync::Arc;

use crate::auth::jwt::TokenKeys;
use crate::auth::password::PasswordHasher;
use crate::auth::service::Accounts;
use crate::config::Config;
use crate::db::Database;
use crate::metrics;

/// What every request handler can reach. Cloned several times per request
/// (each extractor and layer that needs it), so it is one shared pointer:
/// a clone is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

/// The services behind [`AppState`].
pub struct Services {
    pub db: Database,
    pub passwords: Arc<PasswordHasher>,
    pub tokens: Arc<TokenKeys>,
    pub config: Arc<Config>,
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    /// Opens the database and prepares the keys; fails with a sentence.
    pub async fn new(config: Config) -> Result<Self, String> {
        let tokens =
            TokenKeys::new(&config.jwt_secret, config.tokens).map_err(|e| e.to_string())?;
        let db = Database::connect(&config.database_url, &config.db_settings())
            .await
            .map_err(|e| format!("cannot open the database: {e}"))?;
        let passwords = PasswordHasher::new(config.hash_concurrency).map_err(|e| e.to_string())?;
        Ok(Self(Arc::new(Services {
            db,
            passwords: Arc::new(passwords),
            tokens: Arc::new(tokens),
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::new()),
        })))
    }
}

impl Services {
    /// What the account rules work with.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts {
            users: self.db.users.as_ref(),
            sessions: self.db.sessions.as_ref(),
            passwords: &self.passwords,
            tokens: &self.tokens,
            metrics: &self.metrics,
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}
