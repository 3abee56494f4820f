//! Storage of login sessions, refresh tokens and failed-login counters;
//! implemented per backend in `db`. Unix timestamps are in seconds, except
//! for throttling, which counts milliseconds.

use async_trait::async_trait;

use crate::repository::RepoError;
use crate::users::{Scopes, User};

/// A login session about to be stored, with its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub user_id: i64,
    /// The scopes asked for at login; `None` means all the user holds.
    pub requested: Option<Scopes>,
    pub expires_at: i64,
    pub refresh_jti: String,
    pub refresh_expires_at: i64,
    pub origin: LoginOrigin,
}

/// Where a login came from, kept with its session.
#[derive(Debug, Clone)]
pub struct LoginOrigin {
    /// `password` or `oidc`.
    pub method: &'static str,
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

impl Default for LoginOrigin {
    /// A password login from nowhere known (the CLI, the service's tests).
    fn default() -> Self {
        Self {
            method: "password",
            address: None,
            user_agent: None,
        }
    }
}

/// A live session as its user sees it. Times are unix seconds but
/// `created_at`, which is RFC 3339 already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    pub method: String,
    pub created_at: String,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

/// A refresh token to spend, and the one to issue in its place.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub user_id: i64,
    pub spent_jti: String,
    pub next_jti: String,
    pub next_expires_at: i64,
    pub now: i64,
}

/// What became of a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationOutcome {
    /// The token was live: it is spent and the next one stored.
    Rotated {
        user: User,
        session_id: String,
        requested: Option<Scopes>,
        session_expires_at: i64,
    },
    /// The token had been spent before: its session is now revoked.
    Reused,
    /// Unknown, expired, revoked, or its user is gone or disabled.
    Invalid,
}

/// Sessions and throttling state, shared by every instance of the service.
#[async_trait]
pub trait SessionRepository: Send + Sync {
    async fn create(&self, session: NewSession, now: i64) -> Result<(), RepoError>;
    /// The user, when the id and name still belong together, the user is
    /// enabled and the session is live, with when the session was last
    /// used: the one query behind every request.
    async fn authenticate(
        &self,
        user_id: i64,
        username: &str,
        session_id: &str,
        now: i64,
    ) -> Result<Option<(User, i64)>, RepoError>;
    /// Notes that the session was used at `now`.
    async fn touch(&self, session_id: &str, now: i64) -> Result<(), RepoError>;
    /// The user's live sessions, newest first.
    async fn list_live(&self, user_id: i64, now: i64) -> Result<Vec<SessionInfo>, RepoError>;
    /// Spends a refresh token atomically: of concurrent rotations of one
    /// token, at most one succeeds.
    async fn rotate(&self, rotation: Rotation) -> Result<RotationOutcome, RepoError>;
    /// Revokes one session of the user; false when it was not theirs.
    async fn revoke(&self, user_id: i64, session_id: &str) -> Result<bool, RepoError>;
    async fn revoke_all(&self, user_id: i64) -> Result<(), RepoError>;
    /// Replaces the password hash and revokes every session, at once.
    async fn change_password(&self, user_id: i64, password_hash: String) -> Result<(), RepoError>;
    /// Until when logins for this name are refused; `None` when the name
    /// has no recent failures at all.
    async fn blocked_until(&self, username_key: &str) -> Result<Option<i64>, RepoError>;
    /// Counts a failure; returns the consecutive failures so far. The
    /// caller's `block_for` tells, from that count, how long to block.
    async fn record_failure(
        &self,
        username_key: &str,
        now: i64,
        block_for: fn(u32) -> i64,
    ) -> Result<u32, RepoError>;
    async fn clear_failures(&self, username_key: &str) -> Result<(), RepoError>;
    /// Forgets every name whose block ended before `before`; returns how
    /// many were forgotten.
    async fn forget_failures_before(&self, before: i64) -> Result<u64, RepoError>;
    /// Spends one request of `address`'s allowance, atomically. Its row
    /// holds when the allowance is whole again; a request moves that on by
    /// `interval_ms` from `now_ms` or from where it was, whichever is later,
    /// unless that would put it more than `window_ms` ahead of `now_ms`:
    /// then the request is refused and nothing changes. `None` when the
    /// request may go ahead, else the milliseconds until one could.
    async fn spend_allowance(
        &self,
        address: &str,
        now_ms: i64,
        interval_ms: i64,
        window_ms: i64,
    ) -> Result<Option<i64>, RepoError>;
    /// Forgets the addresses whose allowance was whole again before
    /// `before_ms`; returns how many were forgotten.
    async fn forget_allowances_before(&self, before_ms: i64) -> Result<u64, RepoError>;
}

/// A user's TOTP secret as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTotp {
    /// Sealed under the configured key (`auth::totp::SecretKeys`).
    pub sealed: String,
    /// False while the secret awaits its first code.
    pub confirmed: bool,
    /// The last step whose code was used; it and earlier ones are refused.
    pub last_step: i64,
}

/// Two-step login's storage. Every change that turns it on or off also
/// ends sessions, in the same transaction.
#[async_trait]
pub trait MfaRepository: Send + Sync {
    async fn totp(&self, user_id: i64) -> Result<Option<StoredTotp>, RepoError>;
    /// Stores a pending secret in place of any pending one; false when
    /// two-step login is already on.
    async fn set_pending(&self, user_id: i64, sealed: String) -> Result<bool, RepoError>;
    /// Turns two-step login on: the pending secret is confirmed with the
    /// step of its first code, the recovery codes' hashes are stored and
    /// every session but `keep_session` ends. False when nothing was pending.
    async fn enable(
        &self,
        user_id: i64,
        step: i64,
        recovery_hashes: Vec<String>,
        keep_session: String,
    ) -> Result<bool, RepoError>;
    /// Spends a step of a confirmed secret: true when it is later than the
    /// last one used (atomically, so of two logins with one code one wins).
    async fn spend_step(&self, user_id: i64, step: i64) -> Result<bool, RepoError>;
    /// Spends a recovery code by its hash: true when it was unused.
    async fn spend_recovery_code(&self, user_id: i64, code_hash: String)
    -> Result<bool, RepoError>;
    /// Turns two-step login off (secret and recovery codes gone) and ends
    /// every session of the user but `keep_session`, if one is named.
    async fn disable(&self, user_id: i64, keep_session: Option<String>) -> Result<(), RepoError>;
}
