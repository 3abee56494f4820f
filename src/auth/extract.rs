//! Extractors that put a route's protection in its signature: `CurrentUser`
//! for any signed-in user, `Scoped<ReadScope>`/`Scoped<WriteScope>` for a
//! scope, `AdminUser` for user management. Each loads the user from the
//! database on every request, so changes made by an admin apply at once.

use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, header, request::Parts};

use super::jwt::{TokenKind, unix_now};
use super::policy;
use crate::error::{AppError, AuthFailure};
use crate::state::AppState;
use crate::users::{Scope, Scopes, User};

/// How stale a session's "last used" may get before a request refreshes
/// it: a write at most once a minute per session, not one per request.
const LAST_USED_EVERY_SECS: i64 = 60;

/// A signed-in user, as stored now, with the scopes in effect.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    /// The token's scopes that the user still holds.
    pub scopes: Scopes,
    /// The login session the token belongs to.
    pub session: String,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let invalid = AppError::Unauthorized(AuthFailure::InvalidToken);
        let token = bearer_token(&parts.headers)?;
        let claims = state
            .tokens
            .verify(token, TokenKind::Access)
            .ok_or(AppError::Unauthorized(AuthFailure::InvalidToken))?;
        // One query: the id and the name must still belong together (a
        // deleted user's token must not work for a new account that took
        // the name), the user must be enabled and the session live.
        let now = unix_now();
        let (user, last_used_at) = state
            .db
            .sessions
            .authenticate(claims.uid, &claims.sub, &claims.sid, now)
            .await?
            .ok_or(invalid)?;
        if now - last_used_at >= LAST_USED_EVERY_SECS {
            // A session's "last used" is for people to read: a failed note
            // must not fail the request.
            if let Err(error) = state.db.sessions.touch(&claims.sid, now).await {
                tracing::warn!(%error, "cannot note a session's last use");
            }
        }
        crate::telemetry::record_user(&user.username);
        let granted = Scopes::from_known(claims.scopes.iter().map(String::as_str));
        Ok(Self {
            scopes: granted.intersection(user.scopes),
            session: claims.sid.clone(),
            user,
        })
    }
}

/// The bearer token of the request (RFC 6750 §2.1, scheme in any case).
fn bearer_token(headers: &HeaderMap) -> Result<&str, AppError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(AppError::Unauthorized(
            if headers.contains_key(header::AUTHORIZATION) {
                AuthFailure::InvalidToken
            } else {
                AuthFailure::Missing
            },
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| AppError::Unauthorized(AuthFailure::InvalidToken))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AppError::Unauthorized(AuthFailure::Missing));
    }
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(AppError::Unauthorized(AuthFailure::InvalidToken));
    }
    Ok(token)
}

/// A scope a route requires.
pub trait RequiredScope {
    const SCOPE: Scope;
}

/// Requires the `read` scope.
pub struct ReadScope;
/// Requires the `write` scope.
pub struct WriteScope;

impl RequiredScope for ReadScope {
    const SCOPE: Scope = Scope::Read;
}
impl RequiredScope for WriteScope {
    const SCOPE: Scope = Scope::Write;
}

/// A signed-in user whose effective scopes include `S`; 403 otherwise.
pub struct Scoped<S> {
    caller: CurrentUser,
    scope: PhantomData<S>,
}

impl<S> Deref for Scoped<S> {
    type Target = User;

    fn deref(&self) -> &User {
        &self.caller.user
    }
}

impl<S: RequiredScope> FromRequestParts<AppState> for Scoped<S> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let caller = CurrentUser::from_request_parts(parts, state).await?;
        if !caller.scopes.contains(S::SCOPE) {
            return Err(AppError::InsufficientScope(S::SCOPE.as_str()));
        }
        Ok(Self {
            caller,
            scope: PhantomData,
        })
    }
}

/// A signed-in user whose stored role is admin; 403 otherwise.
pub struct AdminUser(pub User);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let CurrentUser { user, .. } = CurrentUser::from_request_parts(parts, state).await?;
        if !policy::may_manage_users(&user) {
            return Err(AppError::Forbidden);
        }
        Ok(Self(user))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn failure(values: &[&str]) -> Option<AuthFailure> {
        match bearer_token(&headers(values)) {
            Err(AppError::Unauthorized(failure)) => Some(failure),
            _ => None,
        }
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc"] {
            assert_eq!(bearer_token(&headers(&[value])).ok(), Some("abc"));
        }
    }

    #[test]
    fn no_bearer_credentials_get_a_bare_challenge() {
        assert_eq!(failure(&[]), Some(AuthFailure::Missing));
        assert_eq!(failure(&["Basic YWxpY2U6eA=="]), Some(AuthFailure::Missing));
    }

    #[test]
    fn a_broken_bearer_header_is_an_invalid_token() {
        assert_eq!(failure(&["Bearer"]), Some(AuthFailure::InvalidToken));
        assert_eq!(failure(&["Bearer a b"]), Some(AuthFailure::InvalidToken));
        assert_eq!(
            failure(&["Bearer a", "Bearer b"]),
            Some(AuthFailure::InvalidToken)
        );
    }
}
