//! Two-step login's secrets and recovery codes in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::sessions::revoke_sessions_of;
use super::{SqliteStore, now};
use crate::auth::repository::{MfaRepository, StoredTotp};
use crate::repository::RepoError;

/// Ends every live session of the user but `keep`.
fn revoke_sessions_but(tx: &Connection, user_id: i64, keep: &str) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "UPDATE sessions SET revoked_at = ?3
         WHERE user_id = ?1 AND id <> ?2 AND revoked_at IS NULL",
    )?
    .execute(params![user_id, keep, now()])
}

#[async_trait]
impl MfaRepository for SqliteStore {
    async fn totp(&self, user_id: i64) -> Result<Option<StoredTotp>, RepoError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT sealed, confirmed, last_step FROM totp_secrets WHERE user_id = ?1",
            )?
            .query_row([user_id], |row| {
                Ok(StoredTotp {
                    sealed: row.get(0)?,
                    confirmed: row.get(1)?,
                    last_step: row.get(2)?,
                })
            })
            .optional()
        })
        .await
    }

    async fn set_pending(&self, user_id: i64, sealed: String) -> Result<bool, RepoError> {
        self.write(move |tx| {
            let stored = tx.execute(
                "INSERT INTO totp_secrets (user_id, sealed, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed,
                     created_at = excluded.created_at
                 WHERE totp_secrets.confirmed = 0",
                params![user_id, sealed, now()],
            )?;
            Ok(stored == 1)
        })
        .await
    }

    async fn enable(
        &self,
        user_id: i64,
        step: i64,
        recovery_hashes: Vec<String>,
        keep_session: String,
    ) -> Result<bool, RepoError> {
        self.write(move |tx| {
            let confirmed = tx.execute(
                "UPDATE totp_secrets SET confirmed = 1, last_step = ?2
                 WHERE user_id = ?1 AND confirmed = 0",
                params![user_id, step],
            )?;
            if confirmed == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
            for hash in &recovery_hashes {
                tx.execute(
                    "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
                    params![user_id, hash],
                )?;
            }
            tx.execute("UPDATE users SET mfa_enabled = 1 WHERE id = ?1", [user_id])?;
            revoke_sessions_but(tx, user_id, &keep_session)?;
            Ok(true)
        })
        .await
    }

    async fn spend_step(&self, user_id: i64, step: i64) -> Result<bool, RepoError> {
        self.write(move |tx| {
            let spent = tx
                .prepare_cached(
                    "UPDATE totp_secrets SET last_step = ?2
                     WHERE user_id = ?1 AND confirmed = 1 AND last_step < ?2",
                )?
                .execute(params![user_id, step])?;
            Ok(spent == 1)
        })
        .await
    }

    async fn spend_recovery_code(
        &self,
        user_id: i64,
        code_hash: String,
    ) -> Result<bool, RepoError> {
        self.write(move |tx| {
            let spent = tx
                .prepare_cached(
                    "UPDATE recovery_codes SET used_at = ?3
                     WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
                )?
                .execute(params![user_id, code_hash, now()])?;
            Ok(spent == 1)
        })
        .await
    }

    async fn disable(&self, user_id: i64, keep_session: Option<String>) -> Result<(), RepoError> {
        self.write(move |tx| {
            tx.execute("DELETE FROM totp_secrets WHERE user_id = ?1", [user_id])?;
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
            tx.execute("UPDATE users SET mfa_enabled = 0 WHERE id = ?1", [user_id])?;
            match keep_session {
                Some(keep) => revoke_sessions_but(tx, user_id, &keep)?,
                None => revoke_sessions_of(tx, user_id)?,
            };
            Ok(())
        })
        .await
    }
}
