//! What every request handler can reach: the database, the hasher, the
//! token keys, the settings and the metrics, opened once at start-up.

use std::sync::Arc;

use crate::auth::jwt::TokenKeys;
use crate::auth::password::PasswordHasher;
use crate::auth::service::Accounts;
use crate::auth::totp::SecretKeys;
use crate::config::{Config, MFA_KEY_VAR, TotpKeySource};
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
    /// What seals TOTP secrets; `None` when no key is configured.
    pub totp_keys: Option<SecretKeys>,
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
        let totp_keys = match &config.totp_keys {
            TotpKeySource::Unset => None,
            TotpKeySource::Throwaway => Some(SecretKeys::throwaway()),
            TotpKeySource::Configured { current, previous } => Some(
                SecretKeys::new(current, previous).map_err(|e| format!("{MFA_KEY_VAR}: {e}"))?,
            ),
        };
        Ok(Self(Arc::new(Services {
            db,
            passwords: Arc::new(passwords),
            tokens: Arc::new(tokens),
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::new()),
            totp_keys,
        })))
    }
}

impl Services {
    /// What the account rules work with.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts {
            users: self.db.users.as_ref(),
            sessions: self.db.sessions.as_ref(),
            mfa: self.db.mfa.as_ref(),
            totp_keys: self.totp_keys.as_ref(),
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
