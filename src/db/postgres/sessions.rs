//! Sessions, refresh tokens and failed-login counters in PostgreSQL.
//! Failed logins are counted per SHA-256 of the name's bytes: a name as
//! typed may be longer than an index key or hold NUL, which `text` refuses.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::PgStore;
use super::users::{USER_COLUMN_COUNT, USER_COLUMNS, user_at};
use crate::auth::repository::{
    NewSession, Rotation, RotationOutcome, SessionInfo, SessionRepository,
};
use crate::repository::RepoError;
use crate::users::{Scopes, User};

async fn insert_refresh_token(
    tx: &deadpool_postgres::Transaction<'_>,
    jti: &str,
    session_id: &str,
    expires_at: i64,
) -> Result<(), RepoError> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO refresh_tokens (jti, session_id, expires_at) VALUES ($1, $2, $3)",
        )
        .await?;
    tx.execute(&statement, &[&jti, &session_id, &expires_at])
        .await?;
    Ok(())
}

/// Revokes every live session of the user.
pub(super) async fn revoke_sessions_of(
    client: &impl GenericClient,
    user_id: i64,
) -> Result<(), RepoError> {
    let statement = client
        .prepare_cached(
            "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .await?;
    client.execute(&statement, &[&user_id]).await?;
    Ok(())
}

fn requested_scopes(stored: Option<String>) -> Result<Option<Scopes>, RepoError> {
    stored
        .map(|s| s.parse().map_err(RepoError::Internal))
        .transpose()
}

#[async_trait]
impl SessionRepository for PgStore {
    async fn create(&self, session: NewSession, now_secs: i64) -> Result<(), RepoError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let statement = tx
            .prepare_cached(
                "INSERT INTO sessions (id, user_id, scopes, expires_at, method, address,
                                       user_agent, last_used_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .await?;
        tx.execute(
            &statement,
            &[
                &session.id,
                &session.user_id,
                &session.requested.map(|s| s.to_string()),
                &session.expires_at,
                &session.origin.method,
                &session.origin.address,
                &session.origin.user_agent,
                &now_secs,
            ],
        )
        .await?;
        insert_refresh_token(
            &tx,
            &session.refresh_jti,
            &session.id,
            session.refresh_expires_at,
        )
        .await?;
        // Old, finished sessions are of no use to anyone.
        let statement = tx
            .prepare_cached("DELETE FROM sessions WHERE user_id = $1 AND expires_at < $2")
            .await?;
        tx.execute(&statement, &[&session.user_id, &now_secs])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn authenticate(
        &self,
        user_id: i64,
        username: &str,
        session_id: &str,
        now_secs: i64,
    ) -> Result<Option<(User, i64)>, RepoError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                concat!(
                    "SELECT {}, s.last_used_at FROM sessions s JOIN users ON users.id = s.user_id
                     WHERE s.id = $3 AND users.id = $1 AND users.username = $2 AND ",
                    active_user!("users"),
                    " AND ",
                    live_session!("s", "$4")
                ),
                USER_COLUMNS
            ))
            .await?;
        client
            .query_opt(&statement, &[&user_id, &username, &session_id, &now_secs])
            .await?
            .map(|row| Ok((user_at(&row, 0)?, row.try_get(USER_COLUMN_COUNT)?)))
            .transpose()
    }

    async fn touch(&self, session_id: &str, now_secs: i64) -> Result<(), RepoError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("UPDATE sessions SET last_used_at = $2 WHERE id = $1")
            .await?;
        client
            .execute(&statement, &[&session_id, &now_secs])
            .await?;
        Ok(())
    }

    async fn list_live(&self, user_id: i64, now_secs: i64) -> Result<Vec<SessionInfo>, RepoError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(concat!(
                "SELECT s.id, s.method,
                        to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                        s.last_used_at, s.expires_at, s.address, s.user_agent FROM sessions s
                 WHERE s.user_id = $1 AND ",
                live_session!("s", "$2"),
                " ORDER BY s.created_at DESC, s.id"
            ))
            .await?;
        client
            .query(&statement, &[&user_id, &now_secs])
            .await?
            .iter()
            .map(|row| {
                Ok(SessionInfo {
                    id: row.try_get(0)?,
                    method: row.try_get(1)?,
                    created_at: row.try_get(2)?,
                    last_used_at: row.try_get(3)?,
                    expires_at: row.try_get(4)?,
                    address: row.try_get(5)?,
                    user_agent: row.try_get(6)?,
                })
            })
            .collect()
    }

    async fn rotate(&self, rotation: Rotation) -> Result<RotationOutcome, RepoError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Spend the token in one statement, only if it is live and so is its
        // session. Concurrent spends of one token queue on its row; after
        // the first commits, the others find `used_at` set and spend nothing.
        let statement = tx
            .prepare_cached(concat!(
                "UPDATE refresh_tokens r SET used_at = now()
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE r.jti = $1 AND r.used_at IS NULL AND r.expires_at > $3
                   AND s.id = r.session_id AND s.user_id = $2 AND ",
                live_session!("s", "$3"),
                " AND ",
                active_user!("u"),
                " RETURNING r.session_id"
            ))
            .await?;
        let spent = tx
            .query_opt(
                &statement,
                &[&rotation.spent_jti, &rotation.user_id, &rotation.now],
            )
            .await?;
        let Some(spent) = spent else {
            // Nothing spent: tell a reused token (which revokes its
            // session, in this transaction) from an invalid one.
            let statement = tx
                .prepare_cached(
                    "SELECT r.session_id, r.used_at IS NOT NULL FROM refresh_tokens r
                     JOIN sessions s ON s.id = r.session_id
                     WHERE r.jti = $1 AND s.user_id = $2",
                )
                .await?;
            let token = tx
                .query_opt(&statement, &[&rotation.spent_jti, &rotation.user_id])
                .await?;
            let Some(token) = token else {
                return Ok(RotationOutcome::Invalid);
            };
            let (session_id, used): (String, bool) = (token.try_get(0)?, token.try_get(1)?);
            if !used {
                return Ok(RotationOutcome::Invalid);
            }
            let statement = tx
                .prepare_cached(
                    "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
                )
                .await?;
            tx.execute(&statement, &[&session_id]).await?;
            tx.commit().await?;
            return Ok(RotationOutcome::Reused);
        };
        let session_id: String = spent.try_get(0)?;
        let statement = tx
            .prepare_cached("UPDATE sessions SET last_used_at = $2 WHERE id = $1")
            .await?;
        tx.execute(&statement, &[&session_id, &rotation.now])
            .await?;
        let statement = tx
            .prepare_cached(&format!(
                "SELECT s.scopes, s.expires_at, {USER_COLUMNS} FROM sessions s
                 JOIN users ON users.id = s.user_id
                 WHERE s.id = $1"
            ))
            .await?;
        let live = tx.query_one(&statement, &[&session_id]).await?;
        let requested: Option<String> = live.try_get(0)?;
        let session_expires_at: i64 = live.try_get(1)?;
        let user = user_at(&live, 2)?;
        insert_refresh_token(
            &tx,
            &rotation.next_jti,
            &session_id,
            rotation.next_expires_at,
        )
        .await?;
        tx.commit().await?;
        Ok(RotationOutcome::Rotated {
            user,
            requested: requested_scopes(requested)?,
            session_id,
            session_expires_at,
        })
    }

    async fn revoke(&self, user_id: i64, session_id: &str) -> Result<bool, RepoError> {
        let client = self.client().await?;
        // True whenever the session is theirs, revoked before or not.
        let statement = client
            .prepare_cached(
                "UPDATE sessions SET revoked_at = coalesce(revoked_at, now())
                 WHERE id = $1 AND user_id = $2",
            )
            .await?;
        Ok(client.execute(&statement, &[&session_id, &user_id]).await? > 0)
    }

    async fn revoke_all(&self, user_id: i64) -> Result<(), RepoError> {
        let client = self.client().await?;
        revoke_sessions_of(&client, user_id).await
    }

    async fn change_password(&self, user_id: i64, password_hash: String) -> Result<(), RepoError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let statement = tx
            .prepare_cached("UPDATE users SET password_hash = $2 WHERE id = $1")
            .await?;
        tx.execute(&statement, &[&user_id, &password_hash]).await?;
        revoke_sessions_of(&tx, user_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn blocked_until(&self, username_key: &str) -> Result<Option<i64>, RepoError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT blocked_until FROM login_failures WHERE username_key = sha256($1)",
            )
            .await?;
        client
            .query_opt(&statement, &[&username_key.as_bytes()])
            .await?
            .map(|row| row.try_get(0).map_err(RepoError::from))
            .transpose()
    }

    async fn record_failure(
        &self,
        username_key: &str,
        now_ms: i64,
        block_for: fn(u32) -> i64,
    ) -> Result<u32, RepoError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The upsert locks the row until commit: concurrent failures for
        // one name are counted one after the other.
        let statement = tx
            .prepare_cached(
                "INSERT INTO login_failures AS f (username_key, failures, blocked_until)
                 VALUES (sha256($1), 1, 0)
                 ON CONFLICT (username_key) DO UPDATE SET failures = f.failures + 1
                 RETURNING f.failures",
            )
            .await?;
        let key = username_key.as_bytes();
        let failures: i32 = tx.query_one(&statement, &[&key]).await?.try_get(0)?;
        let failures = u32::try_from(failures).unwrap_or(0);
        let statement = tx
            .prepare_cached(
                "UPDATE login_failures SET blocked_until = $2 WHERE username_key = sha256($1)",
            )
            .await?;
        tx.execute(
            &statement,
            &[&key, &now_ms.saturating_add(block_for(failures))],
        )
        .await?;
        tx.commit().await?;
        Ok(failures)
    }

    async fn clear_failures(&self, username_key: &str) -> Result<(), RepoError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("DELETE FROM login_failures WHERE username_key = sha256($1)")
            .await?;
        client
            .execute(&statement, &[&username_key.as_bytes()])
            .await?;
        Ok(())
    }

    async fn forget_failures_before(&self, before: i64) -> Result<u64, RepoError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("DELETE FROM login_failures WHERE blocked_until < $1")
            .await?;
        Ok(client.execute(&statement, &[&before]).await?)
    }

    async fn spend_allowance(
        &self,
        address: &str,
        now_ms: i64,
        interval_ms: i64,
        window_ms: i64,
    ) -> Result<Option<i64>, RepoError> {
        let client = self.client().await?;
        // The upsert locks the address's row: concurrent requests from one
        // address, on any instance, are counted one after the other.
        let spend = client
            .prepare_cached(
                "INSERT INTO request_allowances AS a (address, refilled_at)
                 VALUES ($1, $2::bigint + $3::bigint)
                 ON CONFLICT (address) DO UPDATE
                     SET refilled_at = GREATEST(a.refilled_at, $2) + $3
                     WHERE GREATEST(a.refilled_at, $2) + $3 - $2 <= $4::bigint
                 RETURNING a.refilled_at",
            )
            .await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&address, &now_ms, &interval_ms, &window_ms];
        if client.query_opt(&spend, &params).await?.is_some() {
            return Ok(None);
        }
        let current = client
            .prepare_cached("SELECT refilled_at FROM request_allowances WHERE address = $1")
            .await?;
        let refilled_at: i64 = client.query_one(&current, &[&address]).await?.try_get(0)?;
        Ok(Some(refilled_at + interval_ms - now_ms - window_ms))
    }

    async fn forget_allowances_before(&self, before_ms: i64) -> Result<u64, RepoError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("DELETE FROM request_allowances WHERE refilled_at < $1")
            .await?;
        Ok(client.execute(&statement, &[&before_ms]).await?)
    }
}
