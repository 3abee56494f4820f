//! Password hashing with argon2id, kept off the async runtime, on threads
//! of their own that yield the CPU to request handling.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::distr::{Alphanumeric, SampleString};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

mod turns;

/// How long a hashing request may queue for a free slot before the server
/// answers 503 rather than pile up work it cannot do.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// How much lower than the rest of the server the hashing threads run
/// (a nice value: 8 gives them about a seventh of a core that request
/// handling also wants, and all of an idle one). With reads saturating one
/// core and 16 logins queued, +5 let the reads' p99 reach twice its
/// undisturbed value; +8 keeps it near 1.6× while logins still complete
/// (p99 about 4 s, well inside the 10 s queue limit); from +10 the slowest
/// logins come within a few seconds of that limit.
const HASHING_NICENESS: i32 = 8;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing thread stayed busy for the whole queue timeout.
    #[error("every password hashing thread is busy")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

impl HashError {
    fn failed(error: impl std::fmt::Display) -> Self {
        Self::Failed(error.to_string())
    }
}

/// Hashes and verifies passwords on `permits` dedicated threads, one call
/// per thread at a time: each argon2 call takes ~19 MiB and a full core for
/// ~20 ms. The threads run at a lower priority, so that a flood of logins
/// slows logins rather than every other request.
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    threads: rayon::ThreadPool,
    /// Verified against when the user does not exist, so that an unknown
    /// username costs the same time as a wrong password.
    dummy_hash: String,
}

/// argon2id with OWASP's parameters: 19 MiB, two passes, one lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_now(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(HashError::failed)
}

fn verify_now(password: &str, hash: &str) -> bool {
    // The stored hash names its own parameters, so old hashes keep working.
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Lowers the calling thread's priority (on Linux the nice value belongs
/// to the thread). Raising one's nice value is always allowed; should it
/// fail anyway, hashing still works, only at the normal priority.
fn lower_priority() {
    if let Err(error) = rustix::process::setpriority_process(None, HASHING_NICENESS) {
        tracing::warn!(%error, "cannot lower the priority of a hashing thread");
    }
}

impl PasswordHasher {
    pub fn new(permits: usize) -> Result<Self, HashError> {
        let permits = permits.max(1);
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(permits)
            .thread_name(|n| format!("argon2-{n}"))
            .start_handler(|_| {
                lower_priority();
                turns::prepare_this_thread();
            })
            // Without a handler a panicking job would abort the process; the
            // request then gets a 500 through its dropped reply channel.
            .panic_handler(|_| tracing::error!("a password hashing job panicked"))
            .build()
            .map_err(HashError::failed)?;
        let random = Alphanumeric.sample_string(&mut rand::rng(), 32);
        Ok(Self {
            permits: Arc::new(Semaphore::new(permits)),
            threads,
            dummy_hash: hash_now(&random)?,
        })
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        self.run(move || hash_now(password.expose_secret())).await?
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is
    /// no user, doing the same work either way.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<String>,
    ) -> Result<bool, HashError> {
        let found = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self
            .run(move || verify_now(password.expose_secret(), &hash))
            .await?;
        Ok(found && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(HashError::failed)?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.threads.spawn(move || {
            let _permit = permit;
            // The receiver is gone only if the request was dropped meanwhile.
            let _ = done.send(turns::in_turns(work));
        });
        result.await.map_err(HashError::failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = PasswordHasher::new(1).unwrap();
        let hash = hasher.hash(secret("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            hasher
                .verify(secret("correct horse"), Some(hash.clone()))
                .await
                .unwrap()
        );
        for wrong in ["correct hors", "Correct horse", "correct horse "] {
            assert!(
                !hasher
                    .verify(secret(wrong), Some(hash.clone()))
                    .await
                    .unwrap()
            );
        }
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = PasswordHasher::new(1).unwrap();
        assert!(!hasher.verify(secret("anything"), None).await.unwrap());
    }

    #[tokio::test]
    async fn hashing_runs_below_the_priority_of_request_handling() {
        let hasher = PasswordHasher::new(2).unwrap();
        let own = rustix::process::getpriority_process(None).unwrap();
        let hashing = hasher
            .run(|| rustix::process::getpriority_process(None).unwrap())
            .await
            .unwrap();
        assert_eq!(hashing, (own + HASHING_NICENESS).min(19));
    }

    #[test]
    fn a_malformed_stored_hash_does_not_verify() {
        assert!(!verify_now("password", "not a hash"));
    }
}
