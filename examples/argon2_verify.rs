//! Times one argon2id password verification with the server's own hasher
//! and parameters, and prints the median in seconds on standard output.
//! `bench/run.sh` runs it pinned to the server's core to know what login
//! throughput to expect: at best one login per verification time per core.
//!
//! ```sh
//! cargo run --release --example argon2_verify -- 20
//! ```

use std::time::Instant;

use secrecy::SecretString;
use todo_api::auth::password::PasswordHasher;

const PASSWORD: &str = "wonderland rabbit hole";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = match std::env::args().nth(1) {
        Some(runs) => runs.parse()?,
        None => 20,
    };
    if runs == 0 {
        return Err("the number of verifications must be at least 1".into());
    }
    let hasher = PasswordHasher::new(1)?;
    let hash = hasher.hash(SecretString::from(PASSWORD)).await?;
    let mut seconds = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let matches = hasher
            .verify(SecretString::from(PASSWORD), Some(hash.clone()))
            .await?;
        seconds.push(started.elapsed().as_secs_f64());
        if !matches {
            return Err("the password did not verify against its own hash".into());
        }
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    eprintln!(
        "argon2_verify: {runs} verifications, median {:.2} ms (fastest {:.2} ms, slowest {:.2} ms)",
        median * 1e3,
        seconds[0] * 1e3,
        seconds[seconds.len() - 1] * 1e3,
    );
    println!("{median:.6}");
    Ok(())
}
