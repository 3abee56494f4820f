//! Registration, login, refresh, logout and password change: the rules,
//! without HTTP. The service needs the user and session repositories, the
//! hasher, the token keys and the login counters ([`Accounts`]), and
//! answers in its own errors, which `error.rs` turns into the contract's
//! JSON.

use secrecy::{ExposeSecret, SecretString};

use super::NewAccount;
use super::jwt::{TokenKeys, TokenKind, TokenSubject, random_id, unix_after, unix_now};
use super::password::{HashError, PasswordHasher};
use super::repository::{
    LoginOrigin, MfaRepository, NewSession, Rotation, RotationOutcome, SessionRepository,
};
use super::totp::SecretKeys;
use crate::metrics::{LoginOutcome, Metrics};
use crate::repository::RepoError;
use crate::users::repository::{NewUser, UserRepository};
use crate::users::{Role, Scopes, User};
use crate::validation::PASSWORD_MAX_CHARS;

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown username or wrong password: the two look the same.
    #[error("incorrect username or password")]
    BadCredentials,
    /// A refresh token that is unknown, spent, expired, revoked or another
    /// user's.
    #[error("invalid refresh token")]
    InvalidRefresh,
    #[error("the account is disabled")]
    Disabled,
    /// A scope request that grants nothing or widens a grant.
    #[error("invalid scope")]
    InvalidScope,
    /// A password change whose current password is wrong.
    #[error("the current password is incorrect")]
    WrongPassword,
    /// The account has two-step login on and the grant carried no code.
    #[error("a one-time code is required")]
    MfaRequired,
    /// A login's one-time or recovery code is wrong or already used.
    #[error("invalid one-time code at login")]
    WrongCode,
    /// A code that confirms or turns off two-step login is wrong.
    #[error("invalid one-time code")]
    CodeRejected,
    /// The password that guards a two-step login change is wrong.
    #[error("incorrect password")]
    IncorrectPassword,
    #[error("two-step login is already on")]
    MfaAlreadyOn,
    #[error("two-step login is off")]
    MfaOff,
    #[error("no two-step login is pending")]
    NothingPending,
    /// No key to seal TOTP secrets under is configured.
    #[error("two-step login is not configured")]
    MfaUnconfigured,
    /// A secret could not be sealed or opened (a key that is gone).
    #[error("a two-step login secret cannot be sealed or opened")]
    Sealing,
    #[error("no user has this id")]
    UnknownUser,
    /// No session of the caller has this id.
    #[error("no such session")]
    UnknownSession,
    /// Too many failed logins for this name; retry after this many ms.
    #[error("logins throttled for {0} ms")]
    Throttled(i64),
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error("cannot sign a token: {0}")]
    Signing(String),
    #[error(transparent)]
    Storage(#[from] RepoError),
}

/// A new access and refresh token pair, and whom it is for.
#[derive(Debug)]
pub struct IssuedTokens {
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub scopes: Scopes,
    pub name: String,
    pub email: Option<String>,
}

/// The second factor a password grant may carry.
#[derive(Debug, Default)]
pub struct SecondFactor {
    /// A 6-digit TOTP code.
    pub otp: Option<String>,
    pub recovery_code: Option<SecretString>,
}

/// What the account rules work with, borrowed from the application state.
#[derive(Clone, Copy)]
pub struct Accounts<'a> {
    pub users: &'a dyn UserRepository,
    pub sessions: &'a dyn SessionRepository,
    pub mfa: &'a dyn MfaRepository,
    /// `None` when no key is configured: two-step login cannot be turned on.
    pub totp_keys: Option<&'a SecretKeys>,
    pub passwords: &'a PasswordHasher,
    pub tokens: &'a TokenKeys,
    pub metrics: &'a Metrics,
}

/// Failed logins in a row allowed before each further one is delayed.
pub const FREE_FAILURES: u32 = 5;
/// The longest delay between two attempts, in milliseconds.
pub const MAX_BLOCK_MS: i64 = 15 * 60 * 1000;
/// A name's failures are forgotten this long after its last block ended
/// (a day): the count starts again, and names a guesser tried once do not
/// stay on record for ever.
pub const FAILURES_FORGOTTEN_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// How long logins stay blocked, in milliseconds, after `failures`
/// consecutive failures: nothing for the first five, then 1, 2, 4 … seconds
/// up to 15 minutes. Never a permanent lockout, which would let anyone lock
/// anyone out.
pub fn block_for(failures: u32) -> i64 {
    match failures.checked_sub(FREE_FAILURES) {
        None => 0,
        Some(extra) => 2_i64
            .checked_pow(extra)
            .and_then(|seconds| seconds.checked_mul(1000))
            .map_or(MAX_BLOCK_MS, |delay| delay.min(MAX_BLOCK_MS)),
    }
}

/// Milliseconds since the Unix epoch: throttling needs finer steps than
/// token expiry.
pub(crate) fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

impl Accounts<'_> {
    /// Stores a new account with role `user` and the default scopes.
    pub async fn register(&self, account: NewAccount) -> Result<User, AuthError> {
        self.create_account(account, Role::User).await
    }

    /// Stores an account with the given role; for registration and the CLI.
    pub async fn create_account(&self, account: NewAccount, role: Role) -> Result<User, AuthError> {
        let password_hash = self.passwords.hash(account.password).await?;
        let user = self
            .users
            .insert(NewUser {
                username: account.username,
                password_hash,
                name: account.name,
                email: account.email,
                role,
            })
            .await?;
        tracing::info!(user = %user.username, id = user.id, "account created");
        Ok(user)
    }

    /// The password grant: checks the credentials (and with two-step
    /// login on, the second factor) and starts a session.
    pub async fn login(
        &self,
        username: &str,
        password: SecretString,
        factor: SecondFactor,
        requested_scope: Option<&str>,
        origin: LoginOrigin,
    ) -> Result<IssuedTokens, AuthError> {
        let user = match self.authenticate(username, password, factor).await {
            Ok(user) => user,
            Err(error) => {
                if matches!(error, AuthError::BadCredentials | AuthError::WrongCode) {
                    self.metrics.login(LoginOutcome::Failure);
                }
                return Err(error);
            }
        };
        if user.disabled {
            self.metrics.login(LoginOutcome::Disabled);
            tracing::info!(user = %user.username, "login refused: account disabled");
            return Err(AuthError::Disabled);
        }
        let requested = requested_scope
            .filter(|s| !s.trim().is_empty())
            .map(|s| Scopes::from_known(s.split_whitespace()));
        let scopes = grant_scopes(user.scopes, requested)?;
        let now = unix_now();
        let lifetimes = self.tokens.lifetimes();
        let session = NewSession {
            id: random_id(),
            user_id: user.id,
            requested,
            expires_at: unix_after(now, lifetimes.session),
            refresh_jti: random_id(),
            refresh_expires_at: unix_after(now, lifetimes.refresh),
            origin,
        };
        self.sessions.create(session.clone(), now).await?;
        self.metrics.login(LoginOutcome::Success);
        tracing::info!(user = %user.username, "login succeeded");
        let subject = TokenSubject {
            user: &user,
            session: &session.id,
            scopes,
        };
        self.token_response(&subject, &session.refresh_jti, now, session.expires_at)
    }

    /// The refresh grant: spends the refresh token and issues a new pair
    /// with the user's current role and scopes. Every failure looks the same.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        requested_scope: Option<&str>,
    ) -> Result<IssuedTokens, AuthError> {
        let claims = self
            .tokens
            .verify(refresh_token, TokenKind::Refresh)
            .ok_or(AuthError::InvalidRefresh)?;
        // A refresh may narrow the scopes it was granted, never widen them
        // (RFC 6749 §6); checked before the token is spent.
        let granted = Scopes::from_known(claims.scopes.iter().map(String::as_str));
        let narrowed = match requested_scope.filter(|s| !s.trim().is_empty()) {
            None => None,
            Some(requested) => Some(narrow_scopes(granted, requested)?),
        };
        let now = unix_now();
        let rotation = Rotation {
            user_id: claims.uid,
            spent_jti: claims.jti.clone(),
            next_jti: random_id(),
            next_expires_at: unix_after(now, self.tokens.lifetimes().refresh),
            now,
        };
        let next_jti = rotation.next_jti.clone();
        match self.sessions.rotate(rotation).await? {
            RotationOutcome::Rotated {
                user,
                session_id,
                requested,
                session_expires_at,
            } => {
                let held = requested.map_or(user.scopes, |r| r.intersection(user.scopes));
                let scopes = narrowed.map_or(held, |n| n.intersection(held));
                let subject = TokenSubject {
                    user: &user,
                    session: &session_id,
                    scopes,
                };
                self.token_response(&subject, &next_jti, now, session_expires_at)
            }
            RotationOutcome::Reused => {
                self.metrics.refresh_token_reused();
                tracing::warn!(user = %claims.sub.escape_debug(), session = %claims.sid,
                    "refresh token reused: session revoked");
                Err(AuthError::InvalidRefresh)
            }
            RotationOutcome::Invalid => Err(AuthError::InvalidRefresh),
        }
    }

    /// Revokes the session of `refresh_token`, which must be the caller's,
    /// or with no token every session of the caller.
    pub async fn logout(
        &self,
        caller: &User,
        refresh_token: Option<&str>,
    ) -> Result<(), AuthError> {
        let Some(token) = refresh_token else {
            self.sessions.revoke_all(caller.id).await?;
            tracing::info!(user = %caller.username, "logged out of every session");
            return Ok(());
        };
        let claims = self
            .tokens
            .verify(token, TokenKind::Refresh)
            .filter(|claims| claims.uid == caller.id)
            .ok_or(AuthError::InvalidRefresh)?;
        if !self.sessions.revoke(caller.id, &claims.sid).await? {
            return Err(AuthError::InvalidRefresh);
        }
        tracing::info!(user = %caller.username, session = %claims.sid, "logged out");
        Ok(())
    }

    /// Replaces the caller's password (already checked against the rules)
    /// after checking the current one; every session, this one included,
    /// ends. A wrong current password counts as a failed login.
    pub async fn change_password(
        &self,
        caller: &User,
        current: SecretString,
        new: SecretString,
    ) -> Result<(), AuthError> {
        if !self.confirm_password(caller, current).await? {
            return Err(AuthError::WrongPassword);
        }
        let hash = self.passwords.hash(new).await?;
        self.sessions.change_password(caller.id, hash).await?;
        tracing::info!(user = %caller.username, "password changed; every session ended");
        Ok(())
    }

    /// The user whose password this is (and, with two-step login on,
    /// whose code `factor` is). An unknown name and a wrong password take
    /// the same hashing time and give the same error; a name that failed
    /// too often is refused before any hashing. A wrong code counts as a
    /// failure too, and the count starts again only once both factors
    /// passed, so that the password alone cannot reset it.
    async fn authenticate(
        &self,
        username: &str,
        password: SecretString,
        factor: SecondFactor,
    ) -> Result<User, AuthError> {
        let key = username.to_ascii_lowercase();
        let now = now_ms();
        let has_failures = self.check_throttle(&key, now).await?;
        let Some(user) = self.check_password(username, password).await? else {
            self.count_failure(&key, now).await?;
            tracing::info!(user = %username.escape_debug(), "login failed");
            return Err(AuthError::BadCredentials);
        };
        if user.mfa_enabled && !user.disabled && !self.second_factor_holds(&user, factor).await? {
            self.count_failure(&key, now).await?;
            tracing::info!(user = %user.username, "login failed: wrong one-time code");
            return Err(AuthError::WrongCode);
        }
        if has_failures {
            self.sessions.clear_failures(&key).await?;
        }
        Ok(user)
    }

    /// Whether `password` is the caller's, for a change it guards; a wrong
    /// one counts as a failed login, and a throttled name is refused.
    pub(super) async fn confirm_password(
        &self,
        caller: &User,
        password: SecretString,
    ) -> Result<bool, AuthError> {
        let key = caller.username.to_ascii_lowercase();
        let now = now_ms();
        self.check_throttle(&key, now).await?;
        if self
            .check_password(&caller.username, password)
            .await?
            .is_some()
        {
            return Ok(true);
        }
        self.count_failure(&key, now).await?;
        Ok(false)
    }

    /// The user with this id, for an admin's action on them.
    pub(super) async fn existing_user(&self, user_id: i64) -> Result<User, AuthError> {
        self.users
            .find(user_id)
            .await?
            .ok_or(AuthError::UnknownUser)
    }

    /// Counts a failed check of the caller's second factor.
    pub(super) async fn count_failure_of(&self, caller: &User) -> Result<(), AuthError> {
        self.count_failure(&caller.username.to_ascii_lowercase(), now_ms())
            .await
    }

    /// The user `username` names when `password` is theirs; hashes once
    /// whether or not the user exists.
    async fn check_password(
        &self,
        username: &str,
        password: SecretString,
    ) -> Result<Option<User>, AuthError> {
        // No stored password is this long, so no hashing is needed to say no.
        if password.expose_secret().chars().count() > PASSWORD_MAX_CHARS {
            return Ok(None);
        }
        let (user, hash) = self.users.find_credentials(username).await?.unzip();
        let matches = self.passwords.verify(password, hash).await?;
        Ok(user.filter(|_| matches))
    }

    /// Refuses while logins for `key` are blocked. True when the key has
    /// failures on record.
    async fn check_throttle(&self, key: &str, now: i64) -> Result<bool, AuthError> {
        let blocked_until = self.sessions.blocked_until(key).await?;
        if let Some(until) = blocked_until.filter(|until| *until > now) {
            tracing::info!(user = %key.escape_debug(), "login throttled");
            return Err(AuthError::Throttled(until - now));
        }
        Ok(blocked_until.is_some())
    }

    async fn count_failure(&self, key: &str, now: i64) -> Result<(), AuthError> {
        self.sessions.record_failure(key, now, block_for).await?;
        self.sessions
            .forget_failures_before(now.saturating_sub(FAILURES_FORGOTTEN_AFTER_MS))
            .await?;
        Ok(())
    }

    fn token_response(
        &self,
        subject: &TokenSubject<'_>,
        refresh_jti: &str,
        now: i64,
        session_expires_at: i64,
    ) -> Result<IssuedTokens, AuthError> {
        let lifetimes = self.tokens.lifetimes();
        let refresh_exp = unix_after(now, lifetimes.refresh).min(session_expires_at);
        let signing = |error: jsonwebtoken::errors::Error| AuthError::Signing(error.to_string());
        let access_token = self
            .tokens
            .access_token(subject, now, session_expires_at)
            .map_err(signing)?;
        let refresh_token = self
            .tokens
            .refresh_token(subject, refresh_jti, now, refresh_exp)
            .map_err(signing)?;
        let expires_in = unix_after(now, lifetimes.access).min(session_expires_at) - now;
        Ok(IssuedTokens {
            access_token,
            expires_in: u64::try_from(expires_in).unwrap_or(0),
            refresh_token,
            scopes: subject.scopes,
            name: subject.user.name.clone(),
            email: subject.user.email.clone(),
        })
    }
}

/// The scopes to grant at login: the requested ones the user holds, or all
/// of the user's when none were requested (RFC 6749 §3.3).
pub fn grant_scopes(held: Scopes, requested: Option<Scopes>) -> Result<Scopes, AuthError> {
    let Some(requested) = requested else {
        return Ok(held);
    };
    let granted = requested.intersection(held);
    if granted.is_empty() {
        return Err(AuthError::InvalidScope);
    }
    Ok(granted)
}

/// The scopes a refresh asks for, which must all be known and among those
/// `granted`.
fn narrow_scopes(granted: Scopes, requested: &str) -> Result<Scopes, AuthError> {
    let requested: Scopes = requested.parse().map_err(|_| AuthError::InvalidScope)?;
    if requested.is_empty() || requested.intersection(granted) != requested {
        return Err(AuthError::InvalidScope);
    }
    Ok(requested)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::auth::jwt::TokenLifetimes;
    use crate::db::sqlite::SqliteStore;
    use crate::repository::RepoError;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    fn account(username: &str, password: &str) -> NewAccount {
        NewAccount {
            username: username.into(),
            password: secret(password),
            name: username.into(),
            email: None,
        }
    }

    /// The account rules with their parts alone, no HTTP: a login, a
    /// refresh, the replay of the spent refresh token ending the session,
    /// and a wrong current password refused without changing anything.
    #[tokio::test]
    async fn a_replayed_refresh_token_ends_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), Duration::from_secs(1)).unwrap();
        let passwords = PasswordHasher::new(1).unwrap();
        let lifetimes = TokenLifetimes {
            access: Duration::from_secs(60),
            refresh: Duration::from_secs(600),
            session: Duration::from_secs(3600),
            leeway: Duration::ZERO,
        };
        let tokens = TokenKeys::new(&secret(&"k".repeat(32)), lifetimes).unwrap();
        let metrics = Metrics::new();
        let accounts = Accounts {
            users: &store,
            sessions: &store,
            mfa: &store,
            totp_keys: None,
            passwords: &passwords,
            tokens: &tokens,
            metrics: &metrics,
        };
        let user = accounts
            .register(account("jdoe", "correct horse battery"))
            .await
            .unwrap();
        assert!(matches!(
            accounts
                .register(account("JDOE", "another horse battery"))
                .await,
            Err(AuthError::Storage(RepoError::Duplicate))
        ));
        assert!(matches!(
            accounts
                .login(
                    "jdoe",
                    secret("wrong horse battery"),
                    SecondFactor::default(),
                    None,
                    LoginOrigin::default(),
                )
                .await,
            Err(AuthError::BadCredentials)
        ));
        let first = accounts
            .login(
                "jdoe",
                secret("correct horse battery"),
                SecondFactor::default(),
                Some("read"),
                LoginOrigin::default(),
            )
            .await
            .unwrap();
        assert_eq!(first.scopes, scopes("read"));
        assert!(matches!(
            accounts.refresh(&first.refresh_token, Some("write")).await,
            Err(AuthError::InvalidScope)
        ));
        let second = accounts.refresh(&first.refresh_token, None).await.unwrap();
        assert!(matches!(
            accounts.refresh(&first.refresh_token, None).await,
            Err(AuthError::InvalidRefresh)
        ));
        assert!(matches!(
            accounts.refresh(&second.refresh_token, None).await,
            Err(AuthError::InvalidRefresh)
        ));
        assert!(matches!(
            accounts
                .change_password(&user, secret("not it at all"), secret("new horse battery"))
                .await,
            Err(AuthError::WrongPassword)
        ));
        accounts
            .login(
                "jdoe",
                secret("correct horse battery"),
                SecondFactor::default(),
                None,
                LoginOrigin::default(),
            )
            .await
            .unwrap();
    }

    fn scopes(s: &str) -> Scopes {
        s.parse().unwrap()
    }

    #[test]
    fn no_requested_scope_grants_all_held_scopes() {
        assert_eq!(
            grant_scopes(Scopes::DEFAULT, None).unwrap(),
            Scopes::DEFAULT
        );
    }

    #[test]
    fn a_requested_scope_narrows_and_never_widens() {
        let read_admin = Scopes::from_known(["read", "admin"]);
        assert_eq!(
            grant_scopes(Scopes::DEFAULT, Some(read_admin)).unwrap(),
            scopes("read")
        );
        assert_eq!(
            grant_scopes(scopes("read"), Some(Scopes::DEFAULT)).unwrap(),
            scopes("read")
        );
    }

    #[test]
    fn a_refresh_may_narrow_its_scopes_but_never_widen_them() {
        let granted = scopes("read write");
        assert_eq!(narrow_scopes(granted, "read").unwrap(), scopes("read"));
        for refused in ["admin", "read admin", "read bogus", " "] {
            assert!(matches!(
                narrow_scopes(granted, refused),
                Err(AuthError::InvalidScope)
            ));
        }
    }

    #[test]
    fn an_empty_grant_is_invalid_scope() {
        let error = grant_scopes(scopes("read"), Some(scopes("write"))).unwrap_err();
        assert!(matches!(error, AuthError::InvalidScope));
    }

    #[test]
    fn logins_slow_down_exponentially_after_five_failures_and_never_lock_for_good() {
        let delays: Vec<i64> = (1..=9).map(block_for).collect();
        assert_eq!(delays, [0, 0, 0, 0, 1000, 2000, 4000, 8000, 16000]);
        assert_eq!(block_for(30), MAX_BLOCK_MS);
        assert_eq!(block_for(u32::MAX), MAX_BLOCK_MS);
    }
}
