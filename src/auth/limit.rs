//! The per-address limit of `/auth/token` and `/auth/register`: at most
//! `--auth-rate-limit` requests a minute from one client address, counted
//! in the database so that it holds across instances. It is a token bucket
//! kept as one time per address (the generic cell rate algorithm): the
//! moment the address's allowance is whole again. Each request moves that
//! moment on by a minute's share; a request that would move it more than a
//! minute ahead is refused with 429 and the seconds to wait.

use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::repository::SessionRepository;
use super::service::now_ms;
use crate::client::ClientAddr;
use crate::error::AppError;
use crate::state::AppState;

const MINUTE_MS: i64 = 60_000;

/// How often each instance forgets the addresses whose allowance is whole.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// The key an address is counted under: an IPv4 address itself, an IPv6
/// one by its /64, the block one subscriber usually holds whole (counting
/// each of its addresses apart would let one client be 2^64 clients).
pub fn limit_key(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::from(u64::MAX));
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// The bucket of `per_minute` requests, in milliseconds: how far each
/// request moves the address's time on, and how far ahead of now that time
/// may go (the burst). The step is at least a millisecond: beyond 60,000 a
/// minute the limit would otherwise stop counting at all.
fn bucket(per_minute: u32) -> (i64, i64) {
    let per_minute = i64::from(per_minute.max(1));
    let interval_ms = (MINUTE_MS / per_minute).max(1);
    (interval_ms, interval_ms * per_minute)
}

/// Spends one of `address`'s `per_minute` requests: 429 with the whole
/// seconds to wait when there is none left.
pub async fn spend(
    allowances: &dyn SessionRepository,
    per_minute: u32,
    address: IpAddr,
) -> Result<(), AppError> {
    let (interval_ms, window_ms) = bucket(per_minute);
    let wait_ms = allowances
        .spend_allowance(&limit_key(address), now_ms(), interval_ms, window_ms)
        .await?;
    wait_ms.map_or(Ok(()), |wait_ms| Err(AppError::retry_in_ms(wait_ms)))
}

/// Middleware of the limited routes; a request without a known client
/// address (only in-process calls have none) is not counted.
pub async fn per_address(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(&ClientAddr(address)) = request.extensions().get::<ClientAddr>()
        && let Err(refused) = spend(
            state.db.sessions.as_ref(),
            state.config.auth_rate_limit,
            address,
        )
        .await
    {
        return refused.into_response();
    }
    next.run(request).await
}

/// Forgets, every minute, the addresses whose allowance is whole again
/// (their rows say nothing any more), until the repository is dropped.
pub fn spawn_purge(allowances: &Arc<dyn SessionRepository>) {
    let allowances: Weak<dyn SessionRepository> = Arc::downgrade(allowances);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        loop {
            tick.tick().await;
            let Some(allowances) = allowances.upgrade() else {
                break;
            };
            if let Err(error) = allowances.forget_allowances_before(now_ms()).await {
                tracing::warn!(%error, "could not forget spent request allowances");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_one_request_per_share_of_the_minute() {
        assert_eq!(bucket(60), (1_000, 60_000));
        assert_eq!(bucket(3), (20_000, 60_000));
        assert_eq!(bucket(0), (60_000, 60_000));
        // Even a huge limit still counts.
        assert_eq!(bucket(100_000), (1, 100_000));
    }

    #[test]
    fn an_ipv4_address_is_its_own_key() {
        assert_eq!(limit_key("203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(
            limit_key("::ffff:203.0.113.7".parse().unwrap()),
            "203.0.113.7"
        );
    }

    #[test]
    fn an_ipv6_address_is_counted_by_its_64_bit_prefix() {
        let key = limit_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap());
        assert_eq!(key, "2001:db8:1:2::/64");
        assert_eq!(limit_key("2001:db8:1:2::1".parse().unwrap()), key);
        assert_ne!(limit_key("2001:db8:1:3::1".parse().unwrap()), key);
    }
}
