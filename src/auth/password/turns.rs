//! Hashing in turns.
//!
//! An argon2 call holds a core for ~15 ms. A kernel switches between two
//! busy threads of one core only at its scheduler tick (every 4 ms at
//! HZ=250), so requests that wait behind a hash wait up to a tick, however
//! low the hashing thread's priority. Here a timer interrupts a hashing
//! thread every [`TURN`] while it hashes; if request handling is busy at
//! that moment, the thread sleeps for [`PAUSE`], and the scheduler gives
//! the core to the requests. Measured with reads and 16 logins on one
//! core: the reads' p99 went from 5.2 ms to 2.6–3.0 ms.
//!
//! Linux only (per-thread timers and signals, through nix's safe
//! wrappers; installing the handler is the one unsafe step); elsewhere
//! hashing runs in one piece.

use std::time::Duration;

/// How long a hashing thread runs before it checks whether to step aside.
const TURN: Duration = Duration::from_micros(500);
/// How long it then sleeps, when request handling is busy.
const PAUSE: Duration = Duration::from_micros(50);

#[cfg(target_os = "linux")]
pub use linux::{in_turns, prepare_this_thread};

#[cfg(not(target_os = "linux"))]
pub fn prepare_this_thread() {}

#[cfg(not(target_os = "linux"))]
pub fn in_turns<T>(work: impl FnOnce() -> T) -> T {
    work()
}

#[cfg(target_os = "linux")]
mod linux {
    use std::cell::RefCell;
    use std::sync::OnceLock;
    #[cfg(test)]
    use std::sync::atomic::{AtomicU64, Ordering};

    use nix::errno::Errno;
    use nix::sys::signal::{SaFlags, SigAction, SigEvent, SigHandler, SigSet, SigevNotify, Signal};
    use nix::sys::time::TimeSpec;
    use nix::sys::timer::{Expiration, Timer, TimerSetTimeFlags};
    use nix::time::{ClockId, ClockNanosleepFlags, clock_nanosleep};

    use super::{Duration, PAUSE, TURN};
    use crate::runtime::workers_busy;

    /// The signal of the turns' timers. Not a real-time one, which nix does
    /// not name: SIGURG, which only a socket with an owner (`F_SETOWN`, never
    /// set here) could otherwise send, and which is ignored by default.
    const TURN_SIGNAL: Signal = Signal::SIGURG;

    /// Pauses taken so far, for the tests.
    #[cfg(test)]
    pub(super) static PAUSES: AtomicU64 = AtomicU64::new(0);

    /// The signal handler. Only async-signal-safe work: atomic loads (and
    /// in tests an atomic add) and `clock_nanosleep`, leaving errno as it
    /// was for the code it interrupted.
    extern "C" fn end_of_turn(_: libc::c_int) {
        if !workers_busy() {
            return;
        }
        #[cfg(test)]
        PAUSES.fetch_add(1, Ordering::Relaxed);
        let errno = Errno::last_raw();
        let _ = clock_nanosleep(
            ClockId::CLOCK_MONOTONIC,
            ClockNanosleepFlags::empty(),
            &TimeSpec::from_duration(PAUSE),
        );
        Errno::set_raw(errno);
    }

    /// Whether the handler of [`TURN_SIGNAL`] is installed.
    fn handler_installed() -> bool {
        static INSTALLED: OnceLock<bool> = OnceLock::new();
        *INSTALLED.get_or_init(|| {
            // SA_RESTART restarts any system call the signal interrupts.
            let action = SigAction::new(
                SigHandler::Handler(end_of_turn),
                SaFlags::SA_RESTART,
                SigSet::empty(),
            );
            // SAFETY: the handler does only async-signal-safe work (see
            // `end_of_turn`), and no other code of the process handles
            // this signal.
            unsafe { nix::sys::signal::sigaction(TURN_SIGNAL, &action) }.is_ok()
        })
    }

    /// A timer aimed at the calling thread, which outlives it (it is
    /// dropped with the thread's locals).
    fn timer_for_this_thread() -> Option<Timer> {
        let event = SigEvent::new(SigevNotify::SigevThreadId {
            signal: TURN_SIGNAL,
            thread_id: nix::unistd::gettid().as_raw(),
            si_value: 0,
        });
        Timer::new(ClockId::CLOCK_MONOTONIC, event).ok()
    }

    thread_local! {
        static TIMER: RefCell<Option<Timer>> = const { RefCell::new(None) };
    }

    /// For a hashing thread's start: its timer. Without one, it hashes in
    /// one piece.
    pub fn prepare_this_thread() {
        let timer = handler_installed().then(timer_for_this_thread).flatten();
        if timer.is_none() {
            tracing::warn!("hashing cannot step aside for requests: no timer");
        }
        TIMER.set(timer);
    }

    /// A timer firing every turn, until dropped (also when the work
    /// panics).
    struct Turns<'a>(&'a mut Timer);

    impl<'a> Turns<'a> {
        fn start(timer: &'a mut Timer) -> Self {
            let every = TimeSpec::from_duration(TURN);
            let _ = timer.set(Expiration::Interval(every), TimerSetTimeFlags::empty());
            Self(timer)
        }
    }

    impl Drop for Turns<'_> {
        fn drop(&mut self) {
            // A one-shot alarm of zero disarms the timer.
            let never = TimeSpec::from_duration(Duration::ZERO);
            let _ = self
                .0
                .set(Expiration::OneShot(never), TimerSetTimeFlags::empty());
        }
    }

    /// Runs `work` in turns, on a thread prepared for it.
    pub fn in_turns<T>(work: impl FnOnce() -> T) -> T {
        TIMER.with_borrow_mut(|timer| {
            let _turns = timer.as_mut().map(Turns::start);
            work()
        })
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    use super::linux::PAUSES;
    use super::*;

    fn spin(duration: Duration) {
        let started = Instant::now();
        while started.elapsed() < duration {
            std::hint::spin_loop();
        }
    }

    /// Pauses a hashing thread takes while it spins for 20 ms.
    fn pauses_while_hashing() -> u64 {
        std::thread::spawn(|| {
            prepare_this_thread();
            let before = PAUSES.load(Ordering::Relaxed);
            in_turns(|| spin(Duration::from_millis(20)));
            PAUSES.load(Ordering::Relaxed) - before
        })
        .join()
        .unwrap()
    }

    #[test]
    fn hashing_pauses_only_while_request_handling_is_busy() {
        let runtime = crate::runtime::build().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(pauses_while_hashing(), 0, "the workers were idle");

        runtime.spawn(async { spin(Duration::from_millis(200)) });
        std::thread::sleep(Duration::from_millis(10));
        let pauses = pauses_while_hashing();
        assert!(
            pauses >= 10,
            "only {pauses} pauses in 20 ms of turns of 0.5 ms"
        );
    }
}
