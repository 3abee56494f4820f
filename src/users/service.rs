//! User management: the rules, without HTTP.

use secrecy::SecretString;

use super::repository::{NewUser, UserChanges};
use super::{Role, User};
use crate::error::AppError;
use crate::repository::Page;
use crate::state::AppState;

pub async fn list(state: &AppState, page: Page) -> Result<(Vec<User>, u64), AppError> {
    let users = state.db.users.list(page).await?;
    let total = match page.total_if_last(users.len()) {
        Some(total) => total,
        None => state.db.users.count().await?,
    };
    Ok((users, total))
}

pub async fn get(state: &AppState, id: i64) -> Result<User, AppError> {
    state.db.users.find(id).await?.ok_or(AppError::NotFound)
}

/// Applies an admin's changes; refused with 409 when no active admin would remain.
pub async fn update(
    state: &AppState,
    admin: &User,
    id: i64,
    changes: UserChanges,
) -> Result<User, AppError> {
    let user = state
        .db
        .users
        .update(id, changes.clone())
        .await?
        .ok_or(AppError::NotFound)?;
    // Disabling ends every session, so enabling again brings none back.
    if changes.disabled == Some(true) {
        state.db.sessions.revoke_all(id).await?;
    }
    tracing::info!(admin = %admin.username, user = %user.username, ?changes, "user changed");
    Ok(user)
}

/// Deletes a user with their todos; refused with 409 for the last active admin.
pub async fn delete(state: &AppState, admin: &User, id: i64) -> Result<(), AppError> {
    if !state.db.users.delete(id).await? {
        return Err(AppError::NotFound);
    }
    tracing::info!(admin = %admin.username, id, "user deleted");
    Ok(())
}

/// Seeds the demo accounts into an empty database; their passwords are the
/// lesson's, which registration would refuse as too common.
pub async fn seed_demo(state: &AppState) -> Result<bool, AppError> {
    if state.db.users.count().await? > 0 {
        return Ok(false);
    }
    let demo = [
        (
            "alice",
            "wonderland",
            "Alice Wonderson",
            "alice@example.com",
            Role::User,
        ),
        ("admin", "secret", "Admin", "admin@example.com", Role::Admin),
    ];
    for (username, password, name, email, role) in demo {
        let password_hash = state.passwords.hash(SecretString::from(password)).await?;
        state
            .db
            .users
            .insert(NewUser {
                username: username.into(),
                password_hash,
                name: name.into(),
                email: Some(email.into()),
                role,
            })
            .await?;
    }
    Ok(true)
}
