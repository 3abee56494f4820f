//! Registration, login, refresh, logout and password change: the rules,
//! without HTTP.

use secrecy::{ExposeSecret, SecretString};

use super::jwt::{TokenKind, TokenSubject, random_id, unix_after, unix_now};
use super::repository::{NewSession, Rotation, RotationOutcome};
use super::schemas::{NewAccount, TokenInfo, TokenResponse};
use crate::error::{AppError, AuthFailure};
use crate::metrics::LoginOutcome;
use crate::state::AppState;
use crate::users::repository::NewUser;
use crate::users::{Role, Scopes, User};
use crate::validation::{self, PASSWORD_MAX_CHARS};

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

/// Refuses with 429 while logins for `key` are blocked. True when the key
/// has failures on record.
async fn check_throttle(state: &AppState, key: &str, now: i64) -> Result<bool, AppError> {
    let blocked_until = state.db.sessions.blocked_until(key).await?;
    if let Some(until) = blocked_until.filter(|until| *until > now) {
        tracing::info!(user = %key.escape_debug(), "login throttled");
        return Err(AppError::retry_in_ms(until - now));
    }
    Ok(blocked_until.is_some())
}

async fn count_failure(state: &AppState, key: &str, now: i64) -> Result<(), AppError> {
    let sessions = &state.db.sessions;
    sessions.record_failure(key, now, block_for).await?;
    sessions
        .forget_failures_before(now.saturating_sub(FAILURES_FORGOTTEN_AFTER_MS))
        .await?;
    Ok(())
}

/// Stores a new account with role `user` and the default scopes.
pub async fn register(state: &AppState, account: NewAccount) -> Result<User, AppError> {
    create_account(state, account, Role::User).await
}

/// Stores an account with the given role; for registration and the CLI.
pub async fn create_account(
    state: &AppState,
    account: NewAccount,
    role: Role,
) -> Result<User, AppError> {
    let password_hash = state.passwords.hash(account.password).await?;
    let user = state
        .db
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

/// The password grant: checks the credentials and starts a session.
pub async fn login(
    state: &AppState,
    username: &str,
    password: SecretString,
    requested_scope: Option<&str>,
) -> Result<TokenResponse, AppError> {
    let user = match authenticate(state, username, password).await {
        Ok(user) => user,
        Err(error) => {
            if matches!(error, AppError::Unauthorized(_)) {
                state.metrics.login(LoginOutcome::Failure);
            }
            return Err(error);
        }
    };
    if user.disabled {
        state.metrics.login(LoginOutcome::Disabled);
        tracing::info!(user = %user.username, "login refused: account disabled");
        return Err(AppError::ForbiddenWith("Account disabled"));
    }
    let requested = requested_scope
        .filter(|s| !s.trim().is_empty())
        .map(|s| Scopes::from_known(s.split_whitespace()));
    let scopes = grant_scopes(user.scopes, requested)?;
    let now = unix_now();
    let session = NewSession {
        id: random_id(),
        user_id: user.id,
        requested,
        expires_at: unix_after(now, state.tokens.lifetimes().session),
        refresh_jti: random_id(),
        refresh_expires_at: unix_after(now, state.tokens.lifetimes().refresh),
    };
    state.db.sessions.create(session.clone(), now).await?;
    state.metrics.login(LoginOutcome::Success);
    tracing::info!(user = %user.username, "login succeeded");
    let subject = TokenSubject {
        user: &user,
        session: &session.id,
        scopes,
    };
    token_response(
        state,
        &subject,
        &session.refresh_jti,
        now,
        session.expires_at,
    )
}

/// The user whose password this is. An unknown name and a wrong password
/// take the same hashing time and give the same error; a name that failed
/// too often is refused before any hashing.
async fn authenticate(
    state: &AppState,
    username: &str,
    password: SecretString,
) -> Result<User, AppError> {
    let key = username.to_ascii_lowercase();
    let now = now_ms();
    let has_failures = check_throttle(state, &key, now).await?;
    if let Some(user) = check_password(state, username, password).await? {
        if has_failures {
            state.db.sessions.clear_failures(&key).await?;
        }
        return Ok(user);
    }
    count_failure(state, &key, now).await?;
    tracing::info!(user = %username.escape_debug(), "login failed");
    Err(AppError::Unauthorized(AuthFailure::BadCredentials))
}

/// The user `username` names when `password` is theirs; hashes once
/// whether or not the user exists.
async fn check_password(
    state: &AppState,
    username: &str,
    password: SecretString,
) -> Result<Option<User>, AppError> {
    // No stored password is this long, so no hashing is needed to say no.
    if password.expose_secret().chars().count() > PASSWORD_MAX_CHARS {
        return Ok(None);
    }
    let (user, hash) = state.db.users.find_credentials(username).await?.unzip();
    let matches = state.passwords.verify(password, hash).await?;
    Ok(user.filter(|_| matches))
}

/// The refresh grant: spends the refresh token and issues a new pair with
/// the user's current role and scopes. Every failure looks the same.
pub async fn refresh(
    state: &AppState,
    refresh_token: &str,
    requested_scope: Option<&str>,
) -> Result<TokenResponse, AppError> {
    let invalid = || AppError::Unauthorized(AuthFailure::InvalidRefresh);
    let claims = state
        .tokens
        .verify(refresh_token, TokenKind::Refresh)
        .ok_or_else(invalid)?;
    // A refresh may narrow the scopes it was granted, never widen them
    // (RFC 6749 §6); checked before the token is spent.
    let granted = Scopes::from_known(claims.scopes.iter().map(String::as_str));
    let narrowed = match requested_scope.filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(requested) => {
            let requested: Scopes = requested
                .parse()
                .map_err(|_| AppError::BadRequest("invalid_scope".into()))?;
            if requested.intersection(granted) != requested || requested.is_empty() {
                return Err(AppError::BadRequest("invalid_scope".into()));
            }
            Some(requested)
        }
    };
    let now = unix_now();
    let rotation = Rotation {
        user_id: claims.uid,
        spent_jti: claims.jti.clone(),
        next_jti: random_id(),
        next_expires_at: unix_after(now, state.tokens.lifetimes().refresh),
        now,
    };
    let next_jti = rotation.next_jti.clone();
    match state.db.sessions.rotate(rotation).await? {
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
            token_response(state, &subject, &next_jti, now, session_expires_at)
        }
        RotationOutcome::Reused => {
            state.metrics.refresh_token_reused();
            tracing::warn!(user = %claims.sub.escape_debug(), session = %claims.sid,
                "refresh token reused: session revoked");
            Err(invalid())
        }
        RotationOutcome::Invalid => Err(invalid()),
    }
}

/// Revokes the session of `refresh_token`, which must be the caller's, or
/// with no token every session of the caller.
pub async fn logout(
    state: &AppState,
    caller: &User,
    refresh_token: Option<&str>,
) -> Result<(), AppError> {
    let Some(token) = refresh_token else {
        state.db.sessions.revoke_all(caller.id).await?;
        tracing::info!(user = %caller.username, "logged out of every session");
        return Ok(());
    };
    let invalid = AppError::Unauthorized(AuthFailure::InvalidRefresh);
    let claims = state
        .tokens
        .verify(token, TokenKind::Refresh)
        .filter(|claims| claims.uid == caller.id)
        .ok_or(invalid)?;
    if !state.db.sessions.revoke(caller.id, &claims.sid).await? {
        return Err(AppError::Unauthorized(AuthFailure::InvalidRefresh));
    }
    tracing::info!(user = %caller.username, session = %claims.sid, "logged out");
    Ok(())
}

/// Replaces the caller's password after checking the current one; every
/// session, this one included, ends. A wrong current password counts as a
/// failed login.
pub async fn change_password(
    state: &AppState,
    caller: &User,
    current: SecretString,
    new: SecretString,
) -> Result<(), AppError> {
    let mut fields = validation::Fields::default();
    fields.check("new_password", validation::password(&new));
    fields.finish(|| Some(()))?;
    let key = caller.username.to_ascii_lowercase();
    let now = now_ms();
    check_throttle(state, &key, now).await?;
    if check_password(state, &caller.username, current)
        .await?
        .is_none()
    {
        count_failure(state, &key, now).await?;
        return Err(AppError::BadRequest("Current password is incorrect".into()));
    }
    let hash = state.passwords.hash(new).await?;
    state.db.sessions.change_password(caller.id, hash).await?;
    tracing::info!(user = %caller.username, "password changed; every session ended");
    Ok(())
}

/// The scopes to grant at login: the requested ones the user holds, or all
/// of the user's when none were requested (RFC 6749 §3.3).
pub fn grant_scopes(held: Scopes, requested: Option<Scopes>) -> Result<Scopes, AppError> {
    let Some(requested) = requested else {
        return Ok(held);
    };
    let granted = requested.intersection(held);
    if granted.is_empty() {
        return Err(AppError::BadRequest("invalid_scope".into()));
    }
    Ok(granted)
}

fn token_response(
    state: &AppState,
    subject: &TokenSubject<'_>,
    refresh_jti: &str,
    now: i64,
    session_expires_at: i64,
) -> Result<TokenResponse, AppError> {
    let lifetimes = state.tokens.lifetimes();
    let refresh_exp = unix_after(now, lifetimes.refresh).min(session_expires_at);
    let access_token = state
        .tokens
        .access_token(subject, now, session_expires_at)
        .map_err(AppError::internal)?;
    let refresh_token = state
        .tokens
        .refresh_token(subject, refresh_jti, now, refresh_exp)
        .map_err(AppError::internal)?;
    let expires_in = unix_after(now, lifetimes.access).min(session_expires_at) - now;
    Ok(TokenResponse {
        access_token,
        token_type: "bearer",
        expires_in: u64::try_from(expires_in).unwrap_or(0),
        refresh_token,
        scope: subject.scopes.to_string(),
        info: TokenInfo {
            name: subject.user.name.clone(),
            email: subject.user.email.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn an_empty_grant_is_invalid_scope() {
        let error = grant_scopes(scopes("read"), Some(scopes("write"))).unwrap_err();
        assert!(matches!(error, AppError::BadRequest(m) if m == "invalid_scope"));
    }

    #[test]
    fn logins_slow_down_exponentially_after_five_failures_and_never_lock_for_good() {
        let delays: Vec<i64> = (1..=9).map(block_for).collect();
        assert_eq!(delays, [0, 0, 0, 0, 1000, 2000, 4000, 8000, 16000]);
        assert_eq!(block_for(30), MAX_BLOCK_MS);
        assert_eq!(block_for(u32::MAX), MAX_BLOCK_MS);
    }
}
