//! Sessions, refresh tokens and failed-login counters in SQLite.

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::users::{USER_COLUMN_COUNT, user_from_row, user_from_row_at};
use super::{SqliteStore, now, parse_column};
use crate::auth::repository::{
    NewSession, Rotation, RotationOutcome, SessionInfo, SessionRepository,
};
use crate::repository::RepoError;
use crate::users::Scopes;

/// The scopes a session asked for in column `index`, if it narrowed them.
fn requested_scopes(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Scopes>> {
    if row.get_ref(index)? == ValueRef::Null {
        return Ok(None);
    }
    parse_column(row, index).map(Some)
}

fn insert_refresh_token(
    tx: &Connection,
    jti: &str,
    session_id: &str,
    expires_at: i64,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "INSERT INTO refresh_tokens (jti, session_id, expires_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![jti, session_id, expires_at])
}

/// Revokes every live session of the user.
pub(super) fn revoke_sessions_of(tx: &Connection, user_id: i64) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "UPDATE sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![user_id, now()])
}

fn revoke_session(tx: &Connection, session_id: &str) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![session_id, now()],
    )
}

impl SqliteStore {
    /// Runs a `DELETE` whose one parameter is `bound`; how many rows went.
    async fn delete_counted(&self, statement: &'static str, bound: i64) -> Result<u64, RepoError> {
        self.write(move |tx| {
            let deleted = tx.prepare_cached(statement)?.execute([bound])?;
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
        .await
    }
}

#[async_trait]
impl SessionRepository for SqliteStore {
    async fn create(&self, session: NewSession, now_secs: i64) -> Result<(), RepoError> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO sessions (id, user_id, scopes, created_at, expires_at, method,
                                       address, user_agent, last_used_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    session.id,
                    session.user_id,
                    session.requested.map(|s| s.to_string()),
                    now(),
                    session.expires_at,
                    session.origin.method,
                    session.origin.address,
                    session.origin.user_agent,
                    now_secs
                ],
            )?;
            insert_refresh_token(
                tx,
                &session.refresh_jti,
                &session.id,
                session.refresh_expires_at,
            )?;
            // Old, finished sessions are of no use to anyone.
            tx.execute(
                "DELETE FROM sessions WHERE user_id = ?1 AND expires_at < ?2",
                params![session.user_id, now_secs],
            )?;
            Ok(())
        })
        .await
    }

    async fn authenticate(
        &self,
        user_id: i64,
        username: &str,
        session_id: &str,
        now_secs: i64,
    ) -> Result<Option<(crate::users::User, i64)>, RepoError> {
        self.read(|c| {
            c.prepare_cached(concat!(
                "SELECT ",
                user_columns!(),
                ", s.last_used_at FROM sessions s JOIN users ON users.id = s.user_id
                 WHERE s.id = ?3 AND users.id = ?1 AND users.username = ?2 AND ",
                active_user!("users"),
                " AND ",
                live_session!("s", "?4")
            ))?
            .query_row(params![user_id, username, session_id, now_secs], |row| {
                Ok((user_from_row(row)?, row.get(USER_COLUMN_COUNT)?))
            })
            .optional()
        })
        .await
    }

    async fn touch(&self, session_id: &str, now_secs: i64) -> Result<(), RepoError> {
        let session_id = session_id.to_owned();
        self.write(move |tx| {
            tx.prepare_cached("UPDATE sessions SET last_used_at = ?2 WHERE id = ?1")?
                .execute(params![session_id, now_secs])?;
            Ok(())
        })
        .await
    }

    async fn list_live(&self, user_id: i64, now_secs: i64) -> Result<Vec<SessionInfo>, RepoError> {
        self.read(|c| {
            c.prepare_cached(concat!(
                "SELECT s.id, s.method, s.created_at, s.last_used_at, s.expires_at, s.address,
                        s.user_agent FROM sessions s
                 WHERE s.user_id = ?1 AND ",
                live_session!("s", "?2"),
                " ORDER BY s.created_at DESC, s.id"
            ))?
            .query_map(params![user_id, now_secs], |row| {
                Ok(SessionInfo {
                    id: row.get(0)?,
                    method: row.get(1)?,
                    created_at: row.get(2)?,
                    last_used_at: row.get(3)?,
                    expires_at: row.get(4)?,
                    address: row.get(5)?,
                    user_agent: row.get(6)?,
                })
            })?
            .collect()
        })
        .await
    }

    async fn rotate(&self, rotation: Rotation) -> Result<RotationOutcome, RepoError> {
        self.write(move |tx| {
            let token: Option<(String, Option<String>, i64)> = tx
                .query_row(
                    "SELECT r.session_id, r.used_at, r.expires_at FROM refresh_tokens r
                     JOIN sessions s ON s.id = r.session_id
                     WHERE r.jti = ?1 AND s.user_id = ?2",
                    params![rotation.spent_jti, rotation.user_id],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            let Some((session_id, used_at, expires_at)) = token else {
                return Ok(RotationOutcome::Invalid);
            };
            if used_at.is_some() {
                revoke_session(tx, &session_id)?;
                return Ok(RotationOutcome::Reused);
            }
            if expires_at <= rotation.now {
                return Ok(RotationOutcome::Invalid);
            }
            let live: Option<(Option<Scopes>, i64, crate::users::User)> = tx
                .query_row(
                    concat!(
                        "SELECT s.scopes, s.expires_at, ",
                        user_columns!(),
                        " FROM sessions s JOIN users ON users.id = s.user_id
                         WHERE s.id = ?1 AND ",
                        live_session!("s", "?2"),
                        " AND ",
                        active_user!("users")
                    ),
                    params![session_id, rotation.now],
                    |row| {
                        let user = user_from_row_at(row, 2)?;
                        Ok((requested_scopes(row, 0)?, row.get(1)?, user))
                    },
                )
                .optional()?;
            let Some((requested, session_expires_at, user)) = live else {
                return Ok(RotationOutcome::Invalid);
            };
            tx.execute(
                "UPDATE refresh_tokens SET used_at = ?2 WHERE jti = ?1 AND used_at IS NULL",
                params![rotation.spent_jti, now()],
            )?;
            tx.execute(
                "UPDATE sessions SET last_used_at = ?2 WHERE id = ?1",
                params![session_id, rotation.now],
            )?;
            insert_refresh_token(
                tx,
                &rotation.next_jti,
                &session_id,
                rotation.next_expires_at,
            )?;
            Ok(RotationOutcome::Rotated {
                user,
                requested,
                session_id,
                session_expires_at,
            })
        })
        .await
    }

    async fn revoke(&self, user_id: i64, session_id: &str) -> Result<bool, RepoError> {
        let session_id = session_id.to_string();
        self.write(move |tx| {
            let owner: Option<i64> = tx
                .query_row(
                    "SELECT user_id FROM sessions WHERE id = ?1",
                    [&session_id],
                    |row| row.get(0),
                )
                .optional()?;
            if owner != Some(user_id) {
                return Ok(false);
            }
            revoke_session(tx, &session_id)?;
            Ok(true)
        })
        .await
    }

    async fn revoke_all(&self, user_id: i64) -> Result<(), RepoError> {
        self.write(move |tx| {
            revoke_sessions_of(tx, user_id)?;
            Ok(())
        })
        .await
    }

    async fn change_password(&self, user_id: i64, password_hash: String) -> Result<(), RepoError> {
        self.write(move |tx| {
            tx.execute(
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![user_id, password_hash],
            )?;
            revoke_sessions_of(tx, user_id)?;
            Ok(())
        })
        .await
    }

    async fn blocked_until(&self, username_key: &str) -> Result<Option<i64>, RepoError> {
        let key = username_key.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT blocked_until FROM login_failures WHERE username_key = ?1")?
                .query_row([key], |row| row.get(0))
                .optional()
        })
        .await
    }

    async fn record_failure(
        &self,
        username_key: &str,
        now_ms: i64,
        block_for: fn(u32) -> i64,
    ) -> Result<u32, RepoError> {
        let key = username_key.to_string();
        self.write(move |tx| {
            let failures: u32 = tx.query_row(
                "INSERT INTO login_failures (username_key, failures, blocked_until)
                 VALUES (?1, 1, 0)
                 ON CONFLICT (username_key) DO UPDATE SET failures = failures + 1
                 RETURNING failures",
                [&key],
                |row| row.get(0),
            )?;
            tx.execute(
                "UPDATE login_failures SET blocked_until = ?2 WHERE username_key = ?1",
                params![key, now_ms.saturating_add(block_for(failures))],
            )?;
            Ok(failures)
        })
        .await
    }

    async fn clear_failures(&self, username_key: &str) -> Result<(), RepoError> {
        let key = username_key.to_string();
        self.write(move |tx| {
            tx.execute("DELETE FROM login_failures WHERE username_key = ?1", [key])?;
            Ok(())
        })
        .await
    }

    async fn forget_failures_before(&self, before: i64) -> Result<u64, RepoError> {
        self.delete_counted(
            "DELETE FROM login_failures WHERE blocked_until < ?1",
            before,
        )
        .await
    }

    async fn spend_allowance(
        &self,
        address: &str,
        now_ms: i64,
        interval_ms: i64,
        window_ms: i64,
    ) -> Result<Option<i64>, RepoError> {
        let address = address.to_string();
        self.write(move |tx| {
            let spent = tx
                .prepare_cached(
                    "INSERT INTO request_allowances (address, refilled_at) VALUES (?1, ?2 + ?3)
                     ON CONFLICT (address) DO UPDATE
                         SET refilled_at = max(refilled_at, ?2) + ?3
                         WHERE max(refilled_at, ?2) + ?3 - ?2 <= ?4
                     RETURNING refilled_at",
                )?
                .query_row(params![address, now_ms, interval_ms, window_ms], |_| Ok(()))
                .optional()?;
            if spent.is_some() {
                return Ok(None);
            }
            let refilled_at: i64 = tx
                .prepare_cached("SELECT refilled_at FROM request_allowances WHERE address = ?1")?
                .query_row([&address], |row| row.get(0))?;
            Ok(Some(refilled_at + interval_ms - now_ms - window_ms))
        })
        .await
    }

    async fn forget_allowances_before(&self, before_ms: i64) -> Result<u64, RepoError> {
        self.delete_counted(
            "DELETE FROM request_allowances WHERE refilled_at < ?1",
            before_ms,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DAY_MS: i64 = 24 * 60 * 60 * 1000;

    fn no_block(_: u32) -> i64 {
        0
    }

    #[tokio::test]
    async fn failures_whose_block_ended_before_the_cutoff_are_forgotten_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(&dir.path().join("failures.db"), Duration::from_secs(5)).unwrap();
        store.record_failure("ghost", 0, no_block).await.unwrap();
        store
            .record_failure("recent", DAY_MS + 1, no_block)
            .await
            .unwrap();
        store
            .record_failure("blocked", 0, |_| 2 * DAY_MS)
            .await
            .unwrap();

        assert_eq!(store.forget_failures_before(DAY_MS).await.unwrap(), 1);
        assert_eq!(store.blocked_until("ghost").await.unwrap(), None);
        assert_eq!(
            store.blocked_until("recent").await.unwrap(),
            Some(DAY_MS + 1)
        );
        assert_eq!(
            store.blocked_until("blocked").await.unwrap(),
            Some(2 * DAY_MS)
        );
        // A forgotten name counts from one again.
        assert_eq!(
            store
                .record_failure("ghost", DAY_MS, no_block)
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn an_allowance_refills_one_request_per_interval_and_is_forgotten_when_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), Duration::from_secs(1)).unwrap();
        // Three a minute: one every 20 s, three at once.
        let spend = |at_ms| store.spend_allowance("203.0.113.7", at_ms, 20_000, 60_000);
        for at_ms in [0, 1, 2] {
            assert_eq!(spend(at_ms).await.unwrap(), None, "at {at_ms} ms");
        }
        assert_eq!(spend(3).await.unwrap(), Some(19_997));
        assert_eq!(spend(10_000).await.unwrap(), Some(10_000));
        assert_eq!(spend(20_002).await.unwrap(), None);
        assert_eq!(spend(20_003).await.unwrap(), Some(19_997));
        let other = store.spend_allowance("198.51.100.9", 20_003, 20_000, 60_000);
        assert_eq!(other.await.unwrap(), None);

        // The first address is whole again at 80,000 ms, the other at 40,003.
        assert_eq!(store.forget_allowances_before(40_004).await.unwrap(), 1);
        assert_eq!(store.forget_allowances_before(80_003).await.unwrap(), 1);
        assert_eq!(spend(80_003).await.unwrap(), None);
    }
}
