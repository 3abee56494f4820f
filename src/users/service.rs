//! User management: the rules, without HTTP. The service needs the user
//! repository (and, to end a disabled user's sessions, the session one),
//! and answers in its own errors, which `error.rs` turns into the
//! contract's JSON.

use super::User;
use super::repository::{UserChanges, UserRepository};
use crate::auth::repository::SessionRepository;
use crate::repository::{Page, RepoError};

/// Why a user operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("no user has this id")]
    NotFound,
    /// Includes [`RepoError::LastAdmin`]: the change would leave no active admin.
    #[error(transparent)]
    Storage(#[from] RepoError),
}

pub async fn list(users: &dyn UserRepository, page: Page) -> Result<(Vec<User>, u64), UserError> {
    let listed = users.list(page).await?;
    let total = match page.total_if_last(listed.len()) {
        Some(total) => total,
        None => users.count().await?,
    };
    Ok((listed, total))
}

pub async fn get(users: &dyn UserRepository, id: i64) -> Result<User, UserError> {
    users.find(id).await?.ok_or(UserError::NotFound)
}

/// Applies an admin's changes; refused with 409 when no active admin would remain.
pub async fn update(
    users: &dyn UserRepository,
    sessions: &dyn SessionRepository,
    admin: &User,
    id: i64,
    changes: UserChanges,
) -> Result<User, UserError> {
    let user = users
        .update(id, changes.clone())
        .await?
        .ok_or(UserError::NotFound)?;
    // Disabling ends every session, so enabling again brings none back.
    if changes.disabled == Some(true) {
        sessions.revoke_all(id).await?;
    }
    tracing::info!(admin = %admin.username, user = %user.username, ?changes, "user changed");
    Ok(user)
}

/// Deletes a user with their todos; refused with 409 for the last active admin.
pub async fn delete(users: &dyn UserRepository, admin: &User, id: i64) -> Result<(), UserError> {
    if !users.delete(id).await? {
        return Err(UserError::NotFound);
    }
    tracing::info!(admin = %admin.username, id, "user deleted");
    Ok(())
}
