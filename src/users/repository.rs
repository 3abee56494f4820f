//! The user data access the services need; implemented per backend in `db`.

use async_trait::async_trait;

use super::{Role, Scopes, User};
use crate::repository::{Page, RepoError};

/// A user about to be stored, with the hash of their password.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
}

/// The fields an admin may change; `None` leaves a field as it is, and
/// `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    pub name: Option<String>,
    pub email: Option<Option<String>>,
    pub role: Option<Role>,
    pub scopes: Option<Scopes>,
    pub disabled: Option<bool>,
    pub department: Option<Option<String>>,
    pub clearance_level: Option<u8>,
}

/// A value an update writes to one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnValue {
    Text(Option<String>),
    Flag(bool),
    Level(u8),
}

impl UserChanges {
    /// The columns that change and their new values, for a backend's `SET`.
    pub fn columns(&self) -> Vec<(&'static str, ColumnValue)> {
        let text = |value: &Option<String>| ColumnValue::Text(value.clone());
        [
            (
                "name",
                self.name
                    .as_ref()
                    .map(|n| ColumnValue::Text(Some(n.clone()))),
            ),
            ("email", self.email.as_ref().map(text)),
            (
                "role",
                self.role
                    .map(|r| ColumnValue::Text(Some(r.as_str().into()))),
            ),
            (
                "scopes",
                self.scopes.map(|s| ColumnValue::Text(Some(s.to_string()))),
            ),
            ("disabled", self.disabled.map(ColumnValue::Flag)),
            ("department", self.department.as_ref().map(text)),
            (
                "clearance_level",
                self.clearance_level.map(ColumnValue::Level),
            ),
        ]
        .into_iter()
        .filter_map(|(column, value)| value.map(|v| (column, v)))
        .collect()
    }
}

/// Storage of users. Every write that could leave the service without an
/// active admin fails with [`RepoError::LastAdmin`] and changes nothing;
/// implementations check it inside the write's own transaction so that two
/// admins demoting each other at once cannot both succeed.
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Fails with [`RepoError::Duplicate`] when the name is taken in any case.
    async fn insert(&self, user: NewUser) -> Result<User, RepoError>;
    async fn find(&self, id: i64) -> Result<Option<User>, RepoError>;
    /// Looks the name up case-insensitively; returns the user and the hash.
    async fn find_credentials(&self, username: &str) -> Result<Option<(User, String)>, RepoError>;
    /// A page of users by id.
    async fn list(&self, page: Page) -> Result<Vec<User>, RepoError>;
    async fn update(&self, id: i64, changes: UserChanges) -> Result<Option<User>, RepoError>;
    /// Deletes the user and their todos; false when there was no such user.
    async fn delete(&self, id: i64) -> Result<bool, RepoError>;
    async fn count(&self) -> Result<u64, RepoError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_fields_that_change_become_columns() {
        assert!(UserChanges::default().columns().is_empty());
        let changes = UserChanges {
            email: Some(None),
            role: Some(Role::Admin),
            clearance_level: Some(3),
            ..UserChanges::default()
        };
        assert_eq!(
            changes.columns(),
            [
                ("email", ColumnValue::Text(None)),
                ("role", ColumnValue::Text(Some("admin".into()))),
                ("clearance_level", ColumnValue::Level(3)),
            ]
        );
    }
}
