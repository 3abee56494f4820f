//! Registration and login: the rules, without HTTP.

use secrecy::{ExposeSecret, SecretString};

use super::jwt::TokenKind;
use super::schemas::{NewAccount, TokenInfo, TokenResponse};
use crate::AppState;
use crate::error::{AppError, AuthFailure};
use crate::users::repository::NewUser;
use crate::users::{Role, Scopes, User};
use crate::validation::PASSWORD_MAX_CHARS;

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

/// The password grant: checks the credentials and issues a token pair.
pub async fn login(
    state: &AppState,
    username: &str,
    password: SecretString,
    requested_scope: Option<&str>,
) -> Result<TokenResponse, AppError> {
    let user = authenticate(state, username, password).await?;
    if user.disabled {
        tracing::info!(user = %user.username, "login refused: account disabled");
        return Err(AppError::ForbiddenWith("Account disabled"));
    }
    let scopes = narrow_scopes(user.scopes, requested_scope)?;
    tracing::info!(user = %user.username, "login succeeded");
    issue_pair(state, &user, scopes)
}

/// The user whose password this is. An unknown name and a wrong password
/// take the same hashing time and give the same error.
async fn authenticate(
    state: &AppState,
    username: &str,
    password: SecretString,
) -> Result<User, AppError> {
    let bad_credentials = AppError::Unauthorized(AuthFailure::BadCredentials);
    // No stored password is this long, so no hashing is needed to say no.
    if password.expose_secret().chars().count() > PASSWORD_MAX_CHARS {
        return Err(bad_credentials);
    }
    let found = state.db.users.find_credentials(username).await?;
    let (user, hash) = found.unzip();
    if state.passwords.verify(password, hash).await?
        && let Some(user) = user
    {
        return Ok(user);
    }
    tracing::info!(user = %username.escape_debug(), "login failed");
    Err(bad_credentials)
}

/// The scopes to grant: the requested ones the user holds, or all of the
/// user's when none were requested (RFC 6749 §3.3).
pub fn narrow_scopes(held: Scopes, requested: Option<&str>) -> Result<Scopes, AppError> {
    let Some(requested) = requested.filter(|s| !s.trim().is_empty()) else {
        return Ok(held);
    };
    let granted = Scopes::from_known(requested.split_whitespace()).intersection(held);
    if granted.is_empty() {
        return Err(AppError::BadRequest("invalid_scope".into()));
    }
    Ok(granted)
}

fn issue_pair(state: &AppState, user: &User, scopes: Scopes) -> Result<TokenResponse, AppError> {
    let session = uuid::Uuid::new_v4().simple().to_string();
    let issue = |kind| {
        state
            .tokens
            .issue(kind, user, &session, scopes)
            .map_err(AppError::internal)
    };
    Ok(TokenResponse {
        access_token: issue(TokenKind::Access)?,
        token_type: "bearer",
        expires_in: state.tokens.lifetimes().access.as_secs(),
        refresh_token: issue(TokenKind::Refresh)?,
        scope: scopes.to_string(),
        info: TokenInfo {
            name: user.name.clone(),
            email: user.email.clone(),
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
            narrow_scopes(Scopes::DEFAULT, None).unwrap(),
            Scopes::DEFAULT
        );
        assert_eq!(
            narrow_scopes(Scopes::DEFAULT, Some(" ")).unwrap(),
            Scopes::DEFAULT
        );
    }

    #[test]
    fn a_requested_scope_narrows_and_never_widens() {
        assert_eq!(
            narrow_scopes(Scopes::DEFAULT, Some("read admin")).unwrap(),
            scopes("read")
        );
        assert_eq!(
            narrow_scopes(scopes("read"), Some("read write")).unwrap(),
            scopes("read")
        );
    }

    #[test]
    fn an_empty_grant_is_invalid_scope() {
        let error = narrow_scopes(scopes("read"), Some("write admin")).unwrap_err();
        assert!(matches!(error, AppError::BadRequest(m) if m == "invalid_scope"));
    }
}
