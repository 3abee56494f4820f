//! Users in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

use super::{SqliteStore, count_column, now, parse_column};
use crate::repository::{Page, RepoError};
use crate::users::User;
use crate::users::repository::{ColumnValue, NewUser, UserChanges, UserRepository};

const USER_BY_ID: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = ?1");

/// How many columns `user_columns!` names.
pub(super) const USER_COLUMN_COUNT: usize = 10;

pub(super) fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    user_from_row_at(row, 0)
}

/// Reads the columns of `user_columns!` that start at column `at`.
pub(super) fn user_from_row_at(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(at)?,
        username: row.get(at + 1)?,
        name: row.get(at + 2)?,
        email: row.get(at + 3)?,
        role: parse_column(row, at + 4)?,
        scopes: parse_column(row, at + 5)?,
        disabled: row.get(at + 6)?,
        department: row.get(at + 7)?,
        clearance_level: row.get(at + 8)?,
        mfa_enabled: row.get(at + 9)?,
    })
}

fn find_in(tx: &Connection, id: i64) -> rusqlite::Result<Option<User>> {
    tx.prepare_cached(USER_BY_ID)?
        .query_row([id], user_from_row)
        .optional()
}

/// Fails the surrounding transaction when no active admin is left.
fn ensure_an_active_admin(tx: &Connection) -> Result<(), RepoError> {
    let admins: i64 = tx
        .prepare_cached(concat!(
            "SELECT count(*) FROM users WHERE ",
            active_admin!("users")
        ))?
        .query_row([], |row| row.get(0))?;
    if admins == 0 {
        return Err(RepoError::LastAdmin);
    }
    Ok(())
}

/// `SET` clauses and their values for the fields that change.
fn assignments(changes: &UserChanges) -> (Vec<&'static str>, Vec<Box<dyn ToSql + Send>>) {
    changes
        .columns()
        .into_iter()
        .map(|(column, value)| -> (&'static str, Box<dyn ToSql + Send>) {
            match value {
                ColumnValue::Text(text) => (column, Box::new(text)),
                ColumnValue::Flag(flag) => (column, Box::new(flag)),
                ColumnValue::Level(level) => (column, Box::new(level)),
            }
        })
        .unzip()
}

#[async_trait]
impl UserRepository for SqliteStore {
    async fn insert(&self, user: NewUser) -> Result<User, RepoError> {
        self.write(move |tx| {
            let id = tx
                .prepare_cached(
                    "INSERT INTO users (username, password_hash, name, email, role, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                )?
                .query_row(
                    params![
                        user.username,
                        user.password_hash,
                        user.name,
                        user.email,
                        user.role.as_str(),
                        now()
                    ],
                    |row| row.get(0),
                )?;
            find_in(tx, id)?.ok_or_else(|| RepoError::Internal("inserted user vanished".into()))
        })
        .await
    }

    async fn find(&self, id: i64) -> Result<Option<User>, RepoError> {
        self.read(|c| {
            c.prepare_cached(USER_BY_ID)?
                .query_row([id], user_from_row)
                .optional()
        })
        .await
    }

    async fn find_credentials(&self, username: &str) -> Result<Option<(User, String)>, RepoError> {
        self.read(|c| {
            c.prepare_cached(concat!(
                "SELECT ",
                user_columns!(),
                ", password_hash FROM users WHERE lower(username) = lower(?1)"
            ))?
            .query_row([username], |row| {
                Ok((user_from_row(row)?, row.get(USER_COLUMN_COUNT)?))
            })
            .optional()
        })
        .await
    }

    async fn list(&self, page: Page) -> Result<Vec<User>, RepoError> {
        self.read(|c| {
            c.prepare_cached(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users ORDER BY id LIMIT ?1 OFFSET ?2"
            ))?
            .query_map(params![page.limit, page.offset], user_from_row)?
            .collect()
        })
        .await
    }

    async fn update(&self, id: i64, changes: UserChanges) -> Result<Option<User>, RepoError> {
        self.write(move |tx| {
            let (columns, mut values) = assignments(&changes);
            if !columns.is_empty() {
                let set: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .map(|(i, column)| format!("{column} = ?{}", i + 1))
                    .collect();
                let sql = format!(
                    "UPDATE users SET {} WHERE id = ?{}",
                    set.join(", "),
                    columns.len() + 1
                );
                values.push(Box::new(id));
                let params: Vec<&dyn ToSql> = values.iter().map(|v| v.as_ref() as _).collect();
                tx.prepare_cached(&sql)?.execute(params.as_slice())?;
                ensure_an_active_admin(tx)?;
            }
            Ok(find_in(tx, id)?)
        })
        .await
    }

    async fn delete(&self, id: i64) -> Result<bool, RepoError> {
        self.write(move |tx| {
            let deleted = tx
                .prepare_cached("DELETE FROM users WHERE id = ?1")?
                .execute([id])?
                > 0;
            ensure_an_active_admin(tx)?;
            Ok(deleted)
        })
        .await
    }

    async fn count(&self) -> Result<u64, RepoError> {
        self.read(|c| {
            c.prepare_cached("SELECT count(*) FROM users")?
                .query_row([], count_column)
        })
        .await
    }
}
