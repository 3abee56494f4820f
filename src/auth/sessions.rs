//! Sessions a user can see and end, and an admin's view of a user's:
//! the rules, without HTTP.

use super::jwt::unix_now;
use super::repository::SessionInfo;
use super::service::{Accounts, AuthError};
use crate::users::User;

impl Accounts<'_> {
    /// The caller's live sessions, newest first.
    pub async fn own_sessions(&self, caller: &User) -> Result<Vec<SessionInfo>, AuthError> {
        Ok(self.sessions.list_live(caller.id, unix_now()).await?)
    }

    /// Ends one of the caller's sessions: its refresh token and access
    /// tokens stop at once. Another user's session is refused as unknown.
    pub async fn end_own_session(&self, caller: &User, session_id: &str) -> Result<(), AuthError> {
        if !self.sessions.revoke(caller.id, session_id).await? {
            return Err(AuthError::UnknownSession);
        }
        tracing::info!(user = %caller.username, session = %session_id.escape_debug(),
            "session ended by its user");
        Ok(())
    }

    /// A user's live sessions, for an admin.
    pub async fn user_sessions(&self, user_id: i64) -> Result<Vec<SessionInfo>, AuthError> {
        let user = self.existing_user(user_id).await?;
        Ok(self.sessions.list_live(user.id, unix_now()).await?)
    }

    /// Ends every session of a user, for an admin.
    pub async fn end_user_sessions(&self, admin: &User, user_id: i64) -> Result<(), AuthError> {
        let user = self.existing_user(user_id).await?;
        self.sessions.revoke_all(user.id).await?;
        tracing::info!(admin = %admin.username, user = %user.username,
            "every session of the user ended");
        Ok(())
    }
}
