//! Typed settings from flags and environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Args;
use rand::RngCore;
use secrecy::SecretString;

use crate::auth::jwt::{MIN_SECRET_LEN, TokenLifetimes};
use crate::db::DatabaseUrl;

/// The environment variable that holds the JWT signing secret. It is read
/// from the environment only, never from the command line, where other users
/// of the machine could see it.
pub const JWT_SECRET_VAR: &str = "TODO_API_JWT_SECRET";

/// Settings shared by every command that opens the database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Where the data lives: `sqlite:PATH` (created if missing).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:todo.db")]
    pub database_url: String,

    /// Seconds to wait for a database connection before answering 503.
    #[arg(long, env = "TODO_API_DB_TIMEOUT", default_value_t = DEFAULT_DB_TIMEOUT)]
    pub db_timeout: u64,
}

/// Flags of `todo-api serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TODO_API_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Seed the demo users alice/wonderland and admin/secret into an empty database.
    #[arg(long, env = "TODO_API_DEMO")]
    pub demo: bool,

    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "TODO_API_ACCESS_TOKEN_TTL", default_value_t = DEFAULT_ACCESS_TTL)]
    pub access_token_ttl: u64,

    /// Lifetime of each refresh token, in seconds.
    #[arg(long, env = "TODO_API_REFRESH_TOKEN_TTL", default_value_t = DEFAULT_REFRESH_TTL)]
    pub refresh_token_ttl: u64,

    /// Absolute lifetime of a login session, in seconds: refreshing never extends it.
    #[arg(long, env = "TODO_API_SESSION_LIFETIME", default_value_t = DEFAULT_SESSION_LIFETIME)]
    pub session_lifetime: u64,

    /// Clock skew tolerated when checking token expiry, in seconds (at most 30).
    #[arg(long, env = "TODO_API_JWT_LEEWAY", default_value_t = DEFAULT_LEEWAY,
          value_parser = clap::value_parser!(u64).range(0..=30))]
    pub jwt_leeway: u64,

    /// Password hashes computed at once (each takes ~19 MiB); default: one per core.
    #[arg(long, env = "TODO_API_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,

    /// Requests to /auth/token and /auth/register allowed per client address
    /// per minute (also the burst); 0 turns the limit off.
    #[arg(long, env = "TODO_API_AUTH_RATE_LIMIT", default_value_t = DEFAULT_AUTH_RATE)]
    pub auth_rate_limit: u32,

    /// Seconds a request may take before it is answered 503.
    #[arg(long, env = "TODO_API_REQUEST_TIMEOUT", default_value_t = DEFAULT_REQUEST_TIMEOUT)]
    pub request_timeout: u64,
}

const DEFAULT_DB_TIMEOUT: u64 = 5;
const DEFAULT_ACCESS_TTL: u64 = 15 * 60;
const DEFAULT_REFRESH_TTL: u64 = 7 * 24 * 3600;
const DEFAULT_SESSION_LIFETIME: u64 = 30 * 24 * 3600;
const DEFAULT_LEEWAY: u64 = 5;
const DEFAULT_AUTH_RATE: u32 = 60;
const DEFAULT_REQUEST_TIMEOUT: u64 = 30;

/// Everything the application needs to run, already checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub db_timeout: Duration,
    pub jwt_secret: SecretString,
    pub tokens: TokenLifetimes,
    pub hash_concurrency: usize,
    /// Per client address and minute; 0 is no limit.
    pub auth_rate_limit: u32,
    pub request_timeout: Duration,
}

impl DatabaseArgs {
    pub fn url(&self) -> Result<DatabaseUrl, String> {
        DatabaseUrl::parse(&self.database_url)
    }
}

impl ServeArgs {
    /// Checks the flags and reads the secret; the error is a full sentence
    /// for the operator.
    pub fn into_config(self, jwt_secret: Option<String>) -> Result<Config, String> {
        let jwt_secret = match jwt_secret {
            Some(secret) if secret.len() >= MIN_SECRET_LEN => SecretString::from(secret),
            Some(secret) => {
                return Err(format!(
                    "{JWT_SECRET_VAR} is {} bytes long; it must be at least {MIN_SECRET_LEN} \
                     random bytes (for example: openssl rand -base64 48).",
                    secret.len()
                ));
            }
            None if self.demo => {
                tracing::warn!(
                    "{JWT_SECRET_VAR} is not set: using a random secret for this demo run; \
                     tokens will not survive a restart"
                );
                SecretString::from(random_secret())
            }
            None => {
                return Err(format!(
                    "{JWT_SECRET_VAR} is not set. Set it to at least {MIN_SECRET_LEN} random \
                     bytes (for example: export {JWT_SECRET_VAR}=$(openssl rand -base64 48)), \
                     or run with --demo to try the service with a throwaway secret."
                ));
            }
        };
        let mut config = Config::with_defaults(self.database.url()?, jwt_secret);
        config.db_timeout = Duration::from_secs(self.database.db_timeout);
        config.tokens = TokenLifetimes {
            access: Duration::from_secs(self.access_token_ttl),
            refresh: Duration::from_secs(self.refresh_token_ttl),
            session: Duration::from_secs(self.session_lifetime),
            leeway: Duration::from_secs(self.jwt_leeway),
        };
        if let Some(permits) = self.hash_concurrency {
            config.hash_concurrency = permits.max(1);
        }
        config.auth_rate_limit = self.auth_rate_limit;
        config.request_timeout = Duration::from_secs(self.request_timeout);
        Ok(config)
    }
}

impl Config {
    /// The defaults of `serve` for everything but the database and the secret.
    pub fn with_defaults(database_url: DatabaseUrl, jwt_secret: SecretString) -> Self {
        Self {
            database_url,
            db_timeout: Duration::from_secs(DEFAULT_DB_TIMEOUT),
            jwt_secret,
            tokens: TokenLifetimes {
                access: Duration::from_secs(DEFAULT_ACCESS_TTL),
                refresh: Duration::from_secs(DEFAULT_REFRESH_TTL),
                session: Duration::from_secs(DEFAULT_SESSION_LIFETIME),
                leeway: Duration::from_secs(DEFAULT_LEEWAY),
            },
            hash_concurrency: num_cpus::get().max(1),
            auth_rate_limit: DEFAULT_AUTH_RATE,
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT),
        }
    }
}

/// A fresh random signing secret, for runs whose tokens need not outlive them.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
