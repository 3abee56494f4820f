//! The server's tokio runtime, and whether its workers are handling
//! requests right now (password hashing steps aside when they are).

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::telemetry;

/// Runtime worker threads, once the runtime is built.
static WORKERS: AtomicUsize = AtomicUsize::new(0);
/// Of those, the ones parked for want of work.
static PARKED: AtomicUsize = AtomicUsize::new(0);

/// A multi-threaded runtime, one worker per usable core, whose idle
/// workers write their held log lines and say they are idle.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(|| {
            PARKED.fetch_add(1, Ordering::Relaxed);
            telemetry::write_held_lines();
        })
        .on_thread_unpark(|| {
            PARKED.fetch_sub(1, Ordering::Relaxed);
        })
        .on_thread_stop(telemetry::release_held_lines)
        .build()?;
    WORKERS.store(runtime.metrics().num_workers(), Ordering::Relaxed);
    Ok(runtime)
}

/// True while some worker of the runtime from [`build`] is awake, that is
/// handling requests. Two atomic loads: safe in a signal handler.
pub fn workers_busy() -> bool {
    PARKED.load(Ordering::Relaxed) < WORKERS.load(Ordering::Relaxed)
}
