//! Two-step login's secrets and recovery codes in PostgreSQL.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::PgStore;
use super::sessions::revoke_sessions_of;
use crate::auth::repository::{MfaRepository, StoredTotp};
use crate::repository::RepoError;

/// Runs `statement` with `params`; how many rows it changed.
async fn execute(
    client: &impl GenericClient,
    statement: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, RepoError> {
    let statement = client.prepare_cached(statement).await?;
    Ok(client.execute(&statement, params).await?)
}

/// Ends every live session of the user but `keep`.
async fn revoke_sessions_but(
    client: &impl GenericClient,
    user_id: i64,
    keep: &str,
) -> Result<(), RepoError> {
    execute(
        client,
        "UPDATE sessions SET revoked_at = now()
         WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
        &[&user_id, &keep],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl MfaRepository for PgStore {
    async fn totp(&self, user_id: i64) -> Result<Option<StoredTotp>, RepoError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT sealed, confirmed, last_step FROM totp_secrets WHERE user_id = $1",
            )
            .await?;
        let row = client.query_opt(&statement, &[&user_id]).await?;
        row.map(|row| {
            Ok(StoredTotp {
                sealed: row.try_get(0)?,
                confirmed: row.try_get(1)?,
                last_step: row.try_get(2)?,
            })
        })
        .transpose()
    }

    async fn set_pending(&self, user_id: i64, sealed: String) -> Result<bool, RepoError> {
        let client = self.client().await?;
        let stored = execute(
            &client,
            "INSERT INTO totp_secrets (user_id, sealed) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed, created_at = now()
             WHERE NOT totp_secrets.confirmed",
            &[&user_id, &sealed],
        )
        .await?;
        Ok(stored == 1)
    }

    async fn enable(
        &self,
        user_id: i64,
        step: i64,
        recovery_hashes: Vec<String>,
        keep_session: String,
    ) -> Result<bool, RepoError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let confirmed = execute(
            &tx,
            "UPDATE totp_secrets SET confirmed = true, last_step = $2
             WHERE user_id = $1 AND NOT confirmed",
            &[&user_id, &step],
        )
        .await?;
        if confirmed == 0 {
            return Ok(false);
        }
        execute(
            &tx,
            "DELETE FROM recovery_codes WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
        execute(
            &tx,
            "INSERT INTO recovery_codes (user_id, code_hash) SELECT $1, unnest($2::text[])",
            &[&user_id, &recovery_hashes],
        )
        .await?;
        execute(
            &tx,
            "UPDATE users SET mfa_enabled = true WHERE id = $1",
            &[&user_id],
        )
        .await?;
        revoke_sessions_but(&tx, user_id, &keep_session).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn spend_step(&self, user_id: i64, step: i64) -> Result<bool, RepoError> {
        let client = self.client().await?;
        let spent = execute(
            &client,
            "UPDATE totp_secrets SET last_step = $2
             WHERE user_id = $1 AND confirmed AND last_step < $2",
            &[&user_id, &step],
        )
        .await?;
        Ok(spent == 1)
    }

    async fn spend_recovery_code(
        &self,
        user_id: i64,
        code_hash: String,
    ) -> Result<bool, RepoError> {
        let client = self.client().await?;
        let spent = execute(
            &client,
            "UPDATE recovery_codes SET used_at = now()
             WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
            &[&user_id, &code_hash],
        )
        .await?;
        Ok(spent == 1)
    }

    async fn disable(&self, user_id: i64, keep_session: Option<String>) -> Result<(), RepoError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute(
            &tx,
            "DELETE FROM totp_secrets WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
        execute(
            &tx,
            "DELETE FROM recovery_codes WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
        execute(
            &tx,
            "UPDATE users SET mfa_enabled = false WHERE id = $1",
            &[&user_id],
        )
        .await?;
        match keep_session {
            Some(keep) => revoke_sessions_but(&tx, user_id, &keep).await?,
            None => revoke_sessions_of(&tx, user_id).await?,
        }
        tx.commit().await?;
        Ok(())
    }
}
