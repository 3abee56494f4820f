//! Users in PostgreSQL.

use async_trait::async_trait;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{ADMIN_LOCK, PgStore, count, level, parse_text};
use crate::repository::{Page, RepoError};
use crate::users::User;
use crate::users::repository::{ColumnValue, NewUser, UserChanges, UserRepository};

/// The columns [`user_at`] reads, qualified so that joins may use them.
pub(super) const USER_COLUMNS: &str = "users.id, users.username, users.name, users.email,
    users.role, users.scopes, users.disabled, users.department, users.clearance_level,
    users.mfa_enabled";

/// How many columns [`USER_COLUMNS`] names.
pub(super) const USER_COLUMN_COUNT: usize = 10;

/// Reads the [`USER_COLUMNS`] that start at column `at`.
pub(super) fn user_at(row: &Row, at: usize) -> Result<User, RepoError> {
    Ok(User {
        id: row.try_get(at)?,
        username: row.try_get(at + 1)?,
        name: row.try_get(at + 2)?,
        email: row.try_get(at + 3)?,
        role: parse_text(row, at + 4)?,
        scopes: parse_text(row, at + 5)?,
        disabled: row.try_get(at + 6)?,
        department: row.try_get(at + 7)?,
        clearance_level: level(row, at + 8)?,
        mfa_enabled: row.try_get(at + 9)?,
    })
}

type Param = Box<dyn ToSql + Sync + Send>;

/// `SET` clauses and their values for the fields that change.
fn assignments(changes: &UserChanges) -> (Vec<&'static str>, Vec<Param>) {
    changes
        .columns()
        .into_iter()
        .map(|(column, value)| -> (&'static str, Param) {
            match value {
                ColumnValue::Text(text) => (column, Box::new(text)),
                ColumnValue::Flag(flag) => (column, Box::new(flag)),
                ColumnValue::Level(level) => (column, Box::new(i16::from(level))),
            }
        })
        .unzip()
}

/// Fails the transaction when the write just made left no active admin.
/// Call [`lock_admins`] before the write and this after it.
async fn ensure_an_active_admin(tx: &deadpool_postgres::Transaction<'_>) -> Result<(), RepoError> {
    let statement = tx
        .prepare_cached(concat!(
            "SELECT count(*) FROM users WHERE ",
            active_admin!("users")
        ))
        .await?;
    if count(&tx.query_one(&statement, &[]).await?)? == 0 {
        return Err(RepoError::LastAdmin);
    }
    Ok(())
}

/// Waits until no other transaction that could remove an admin is running;
/// the lock is held until this transaction ends. Under READ COMMITTED every
/// later statement then sees what those transactions committed.
async fn lock_admins(tx: &deadpool_postgres::Transaction<'_>) -> Result<(), RepoError> {
    let statement = tx
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await?;
    tx.execute(&statement, &[&ADMIN_LOCK]).await?;
    Ok(())
}

#[async_trait]
impl UserRepository for PgStore {
    async fn insert(&self, user: NewUser) -> Result<User, RepoError> {
        let client = self.client().await?;
        // A name taken in another case is refused before an id is drawn;
        // of concurrent inserts, the unique index refuses all but one.
        let statement = client
            .prepare_cached(&format!(
                "INSERT INTO users (username, password_hash, name, email, role)
                 SELECT $1, $2, $3, $4, $5
                 WHERE NOT EXISTS (SELECT 1 FROM users WHERE lower(username) = lower($1))
                 RETURNING {USER_COLUMNS}"
            ))
            .await?;
        let row = client
            .query_opt(
                &statement,
                &[
                    &user.username,
                    &user.password_hash,
                    &user.name,
                    &user.email,
                    &user.role.as_str(),
                ],
            )
            .await?;
        match row {
            Some(row) => user_at(&row, 0),
            None => Err(RepoError::Duplicate),
        }
    }

    async fn find(&self, id: i64) -> Result<Option<User>, RepoError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .await?;
        client
            .query_opt(&statement, &[&id])
            .await?
            .map(|row| user_at(&row, 0))
            .transpose()
    }

    async fn find_credentials(&self, username: &str) -> Result<Option<(User, String)>, RepoError> {
        // Stored usernames are ASCII letters, digits and `_.-`, and "any
        // case" means ASCII case, as on SQLite. PostgreSQL's lower() follows
        // the database's locale, where the Kelvin sign lower-cases to `k`:
        // a name that is not ASCII names nobody. (NUL, which `text` cannot
        // hold, is ASCII and matches no stored name either.)
        if !username.is_ascii() || username.contains('\0') {
            return Ok(None);
        }
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS}, password_hash FROM users
                 WHERE lower(username) = lower($1)"
            ))
            .await?;
        client
            .query_opt(&statement, &[&username])
            .await?
            .map(|row| Ok((user_at(&row, 0)?, row.try_get(USER_COLUMN_COUNT)?)))
            .transpose()
    }

    async fn list(&self, page: Page) -> Result<Vec<User>, RepoError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY id LIMIT $1 OFFSET $2"
            ))
            .await?;
        client
            .query(&statement, &[&i64::from(page.limit), &page.offset])
            .await?
            .iter()
            .map(|row| user_at(row, 0))
            .collect()
    }

    async fn update(&self, id: i64, changes: UserChanges) -> Result<Option<User>, RepoError> {
        let (columns, mut values) = assignments(&changes);
        if columns.is_empty() {
            return self.find(id).await;
        }
        let set: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, column)| format!("{column} = ${}", i + 1))
            .collect();
        let sql = format!(
            "UPDATE users SET {} WHERE id = ${} RETURNING {USER_COLUMNS}",
            set.join(", "),
            columns.len() + 1
        );
        values.push(Box::new(id));
        let params: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect();

        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_admins(&tx).await?;
        let statement = tx.prepare_cached(&sql).await?;
        let updated = tx.query_opt(&statement, &params).await?;
        ensure_an_active_admin(&tx).await?;
        let user = updated.map(|row| user_at(&row, 0)).transpose()?;
        tx.commit().await?;
        Ok(user)
    }

    async fn delete(&self, id: i64) -> Result<bool, RepoError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_admins(&tx).await?;
        // The user's todos and sessions go with them (ON DELETE CASCADE).
        let statement = tx.prepare_cached("DELETE FROM users WHERE id = $1").await?;
        let deleted = tx.execute(&statement, &[&id]).await? > 0;
        ensure_an_active_admin(&tx).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn count(&self) -> Result<u64, RepoError> {
        let client = self.client().await?;
        let statement = client.prepare_cached("SELECT count(*) FROM users").await?;
        count(&client.query_one(&statement, &[]).await?)
    }
}
