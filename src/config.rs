//! Typed settings from flags and environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::HeaderValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Args;
use rand::RngCore;
use secrecy::SecretString;

use crate::auth::jwt::{MIN_SECRET_LEN, TokenLifetimes};
use crate::client::TrustedProxies;
use crate::db::{DatabaseUrl, DbSettings};

/// The environment variable that holds the JWT signing secret. It is read
/// from the environment only, never from the command line, where other users
/// of the machine could see it.
pub const JWT_SECRET_VAR: &str = "TODO_API_JWT_SECRET";
/// The key TOTP secrets are sealed under: 32 random bytes, base64.
pub const MFA_KEY_VAR: &str = "TODO_API_MFA_KEY";
/// Keys that sealed secrets before the current one, comma separated.
pub const MFA_PREVIOUS_KEYS_VAR: &str = "TODO_API_MFA_PREVIOUS_KEYS";

/// Where the keys that seal TOTP secrets come from.
#[derive(Debug, Clone, Default)]
pub enum TotpKeySource {
    /// None configured: two-step login cannot be turned on (503).
    #[default]
    Unset,
    /// A random key for a `--demo` run, gone with the process.
    Throwaway,
    Configured {
        current: SecretString,
        previous: Vec<SecretString>,
    },
}

/// The secrets `serve` reads from its environment, never from flags.
#[derive(Debug, Default)]
pub struct ServeSecrets {
    pub jwt_secret: Option<String>,
    pub mfa_key: Option<String>,
    pub mfa_previous_keys: Option<String>,
}

impl ServeSecrets {
    pub fn from_env() -> Self {
        Self {
            jwt_secret: std::env::var(JWT_SECRET_VAR).ok(),
            mfa_key: std::env::var(MFA_KEY_VAR).ok(),
            mfa_previous_keys: std::env::var(MFA_PREVIOUS_KEYS_VAR).ok(),
        }
    }
}

/// Settings shared by every command that opens the database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Where the data lives: a SQLite file, written `sqlite:PATH`,
    /// `sqlite://PATH` or just `PATH` (created if missing), or an existing
    /// PostgreSQL database, `postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME`
    /// (`postgresql://` too).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:todo.db")]
    pub database_url: String,

    /// Seconds to wait for a free database connection before giving up
    /// (`serve` then answers the request 503).
    #[arg(long, env = "TODO_API_DB_TIMEOUT", default_value_t = DEFAULT_DB_TIMEOUT)]
    pub db_timeout: u64,

    /// PostgreSQL connections kept by this instance, at most.
    #[arg(long, env = "TODO_API_DB_POOL_SIZE", default_value_t = DEFAULT_DB_POOL_SIZE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub db_pool_size: u32,

    /// Seconds that opening a PostgreSQL connection may take.
    #[arg(long, env = "TODO_API_DB_CONNECT_TIMEOUT", default_value_t = DEFAULT_DB_CONNECT_TIMEOUT,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub db_connect_timeout: u64,

    /// Seconds one PostgreSQL statement may run, lock waits included, before
    /// it is cancelled (`serve` then answers the request 503); 0 is no limit.
    #[arg(long, env = "TODO_API_DB_STATEMENT_TIMEOUT",
          default_value_t = DEFAULT_DB_STATEMENT_TIMEOUT)]
    pub db_statement_timeout: u64,
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

    /// Proxies (addresses or CIDR networks, comma separated, e.g.
    /// 10.0.0.0/8,fd00::/8) whose X-Forwarded-For names the client. From any
    /// other peer the header is ignored. None by default.
    #[arg(long, env = "TODO_API_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// Seconds a request may take before it is answered 503.
    #[arg(long, env = "TODO_API_REQUEST_TIMEOUT", default_value_t = DEFAULT_REQUEST_TIMEOUT)]
    pub request_timeout: u64,

    /// Seconds a client may take to send a request's headers (also the idle
    /// time allowed between requests on a kept-alive connection).
    #[arg(long, env = "TODO_API_HEADER_READ_TIMEOUT", default_value_t = DEFAULT_HEADER_READ_TIMEOUT,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout: u64,

    /// Connections served at once; further clients wait in the listen queue.
    #[arg(long, env = "TODO_API_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Seconds that requests in flight get to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "TODO_API_SHUTDOWN_GRACE", default_value_t = DEFAULT_SHUTDOWN_GRACE)]
    pub shutdown_grace: u64,

    /// Serve Prometheus metrics at /metrics on the main address (no token needed).
    #[arg(long, env = "TODO_API_METRICS")]
    pub metrics: bool,

    /// Serve /metrics on this separate address instead, e.g. 127.0.0.1:9100.
    #[arg(long, env = "TODO_API_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// Web origins allowed to call the API from a browser (CORS), comma
    /// separated, e.g. https://app.example.com,http://localhost:3000. None by default.
    #[arg(long, env = "TODO_API_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

const DEFAULT_DB_TIMEOUT: u64 = 5;
const DEFAULT_DB_POOL_SIZE: u32 = 16;
const DEFAULT_DB_CONNECT_TIMEOUT: u64 = 5;
const DEFAULT_DB_STATEMENT_TIMEOUT: u64 = 5;
const DEFAULT_ACCESS_TTL: u64 = 15 * 60;
const DEFAULT_REFRESH_TTL: u64 = 7 * 24 * 3600;
const DEFAULT_SESSION_LIFETIME: u64 = 30 * 24 * 3600;
const DEFAULT_LEEWAY: u64 = 5;
const DEFAULT_AUTH_RATE: u32 = 60;
const DEFAULT_REQUEST_TIMEOUT: u64 = 30;
const DEFAULT_HEADER_READ_TIMEOUT: u64 = 10;
const DEFAULT_MAX_CONNECTIONS: u32 = 1024;
const DEFAULT_SHUTDOWN_GRACE: u64 = 10;

/// Everything the application needs to run, already checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub db_timeout: Duration,
    /// PostgreSQL only: connections per instance, and how long connecting
    /// and one statement may take (zero: no statement limit).
    pub db_pool_size: usize,
    pub db_connect_timeout: Duration,
    pub db_statement_timeout: Duration,
    pub jwt_secret: SecretString,
    pub tokens: TokenLifetimes,
    pub hash_concurrency: usize,
    /// Per client address and minute; 0 is no limit.
    pub auth_rate_limit: u32,
    /// Whose `X-Forwarded-For` tells the client's address.
    pub trusted_proxies: TrustedProxies,
    pub request_timeout: Duration,
    /// How long a client may take to send request headers, and to start
    /// the next request on a kept-alive connection.
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long requests in flight may still run after a shutdown signal.
    pub shutdown_grace: Duration,
    /// `/metrics` on the main address.
    pub metrics: bool,
    /// Origins allowed by CORS; empty: no CORS headers at all.
    pub cors_origins: Vec<HeaderValue>,
    pub totp_keys: TotpKeySource,
}

impl DatabaseArgs {
    pub fn url(&self) -> Result<DatabaseUrl, String> {
        DatabaseUrl::parse(&self.database_url)
    }

    /// Carries the connection settings (not the URL) into `config`.
    pub fn apply_to(&self, config: &mut Config) {
        config.db_timeout = Duration::from_secs(self.db_timeout);
        config.db_pool_size = usize::try_from(self.db_pool_size).unwrap_or(usize::MAX);
        config.db_connect_timeout = Duration::from_secs(self.db_connect_timeout);
        config.db_statement_timeout = Duration::from_secs(self.db_statement_timeout);
    }
}

impl ServeArgs {
    /// Checks the flags and reads the secret; the error is a full sentence
    /// for the operator.
    pub fn into_config(self, secrets: ServeSecrets) -> Result<Config, String> {
        let totp_keys = match (secrets.mfa_key, self.demo) {
            (Some(current), _) => TotpKeySource::Configured {
                current: SecretString::from(current),
                previous: secrets
                    .mfa_previous_keys
                    .iter()
                    .flat_map(|keys| keys.split(','))
                    .filter(|key| !key.trim().is_empty())
                    .map(|key| SecretString::from(key.trim().to_owned()))
                    .collect(),
            },
            (None, true) => TotpKeySource::Throwaway,
            (None, false) => TotpKeySource::Unset,
        };
        let jwt_secret = match secrets.jwt_secret {
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
        self.database.apply_to(&mut config);
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
        config.trusted_proxies = TrustedProxies::parse(&self.trusted_proxies)?;
        config.request_timeout = Duration::from_secs(self.request_timeout);
        config.header_read_timeout = Duration::from_secs(self.header_read_timeout);
        config.max_connections = usize::try_from(self.max_connections).unwrap_or(usize::MAX);
        config.shutdown_grace = Duration::from_secs(self.shutdown_grace);
        config.metrics = self.metrics;
        config.cors_origins = parse_origins(&self.cors_origins)?;
        config.totp_keys = totp_keys;
        Ok(config)
    }
}

impl Config {
    /// The defaults of `serve` for everything but the database and the secret.
    pub fn with_defaults(database_url: DatabaseUrl, jwt_secret: SecretString) -> Self {
        Self {
            database_url,
            db_timeout: Duration::from_secs(DEFAULT_DB_TIMEOUT),
            db_pool_size: DEFAULT_DB_POOL_SIZE as usize,
            db_connect_timeout: Duration::from_secs(DEFAULT_DB_CONNECT_TIMEOUT),
            db_statement_timeout: Duration::from_secs(DEFAULT_DB_STATEMENT_TIMEOUT),
            jwt_secret,
            tokens: TokenLifetimes {
                access: Duration::from_secs(DEFAULT_ACCESS_TTL),
                refresh: Duration::from_secs(DEFAULT_REFRESH_TTL),
                session: Duration::from_secs(DEFAULT_SESSION_LIFETIME),
                leeway: Duration::from_secs(DEFAULT_LEEWAY),
            },
            hash_concurrency: num_cpus::get().max(1),
            auth_rate_limit: DEFAULT_AUTH_RATE,
            trusted_proxies: TrustedProxies::default(),
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT),
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT),
            max_connections: DEFAULT_MAX_CONNECTIONS as usize,
            shutdown_grace: Duration::from_secs(DEFAULT_SHUTDOWN_GRACE),
            metrics: false,
            cors_origins: Vec::new(),
            totp_keys: TotpKeySource::Unset,
        }
    }

    /// What [`crate::db::Database::connect`] needs besides the URL.
    pub fn db_settings(&self) -> DbSettings {
        DbSettings {
            acquire_timeout: self.db_timeout,
            pool_size: self.db_pool_size,
            connect_timeout: self.db_connect_timeout,
            statement_timeout: self.db_statement_timeout,
        }
    }
}

/// Checks CORS origins: each `http://` or `https://` with a host, an
/// optional port and nothing after it, exactly as browsers send `Origin`.
pub fn parse_origins(origins: &[String]) -> Result<Vec<HeaderValue>, String> {
    origins
        .iter()
        .map(|origin| origin.trim())
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let valid = host.is_some_and(|host| {
                !host.is_empty()
                    && host.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                    })
            });
            if !valid {
                return Err(format!(
                    "the CORS origin {origin:?} is not an origin; write it as the browser \
                     sends it, e.g. https://app.example.com or http://localhost:3000"
                ));
            }
            HeaderValue::from_str(origin).map_err(|e| e.to_string())
        })
        .collect()
}

/// A fresh random signing secret, for runs whose tokens need not outlive them.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
