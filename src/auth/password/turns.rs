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
//! Linux only (per-thread timers and signals); elsewhere hashing runs in
//! one piece.

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

    use super::{Duration, PAUSE, TURN};
    use crate::runtime::workers_busy;

    /// Pauses taken so far, for the tests.
    #[cfg(test)]
    pub(super) static PAUSES: AtomicU64 = AtomicU64::new(0);

    fn timespec(duration: Duration) -> libc::timespec {
        libc::timespec {
            tv_sec: libc::time_t::try_from(duration.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(duration.subsec_nanos()),
        }
    }

    /// The signal handler. Only async-signal-safe work: atomic loads (and
    /// in tests an atomic add) and `nanosleep`, leaving errno as it was.
    extern "C" fn end_of_turn(_: libc::c_int) {
        if !workers_busy() {
            return;
        }
        #[cfg(test)]
        PAUSES.fetch_add(1, Ordering::Relaxed);
        let pause = timespec(PAUSE);
        // SAFETY: __errno_location points at this thread's errno. The
        // interrupted code may be about to read errno, so a failing
        // nanosleep (EINTR) must not change it. Both pointers passed to
        // nanosleep are valid (the second may be null); it is
        // async-signal-safe.
        unsafe {
            let errno = libc::__errno_location();
            let saved = *errno;
            libc::nanosleep(&pause, std::ptr::null_mut());
            *errno = saved;
        }
    }

    /// The real-time signal the turns' timers send, once its handler is
    /// installed; `None` if the system refused.
    fn turn_signal() -> Option<libc::c_int> {
        static SIGNAL: OnceLock<Option<libc::c_int>> = OnceLock::new();
        *SIGNAL.get_or_init(|| {
            let signal = libc::SIGRTMIN();
            // SAFETY: a zeroed sigaction is valid; the handler has the
            // signature sa_handler expects and does only signal-safe work.
            // SA_RESTART restarts any system call the signal interrupts.
            let installed = unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = end_of_turn as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut()) == 0
            };
            installed.then_some(signal)
        })
    }

    /// A timer that signals one thread.
    struct Timer(libc::timer_t);

    impl Timer {
        /// A timer aimed at the calling thread.
        fn for_this_thread(signal: libc::c_int) -> Option<Self> {
            // SAFETY: a zeroed sigevent is valid; the fields set make it
            // signal this thread, which outlives the timer (it is dropped
            // with the thread's locals).
            unsafe {
                let mut event: libc::sigevent = std::mem::zeroed();
                event.sigev_notify = libc::SIGEV_THREAD_ID;
                event.sigev_signo = signal;
                event.sigev_notify_thread_id = libc::gettid();
                let mut timer: libc::timer_t = std::ptr::null_mut();
                (libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer) == 0)
                    .then_some(Self(timer))
            }
        }

        /// Fires every `period` from now on; a zero period stops it.
        fn every(&self, period: Duration) {
            let period = timespec(period);
            let schedule = libc::itimerspec {
                it_interval: period,
                it_value: period,
            };
            // SAFETY: the timer is live (deleted only on drop) and the
            // schedule is a valid itimerspec.
            unsafe {
                libc::timer_settime(self.0, 0, &schedule, std::ptr::null_mut());
            }
        }
    }

    impl Drop for Timer {
        fn drop(&mut self) {
            // SAFETY: the timer is live and is deleted once, here.
            unsafe {
                libc::timer_delete(self.0);
            }
        }
    }

    thread_local! {
        static TIMER: RefCell<Option<Timer>> = const { RefCell::new(None) };
    }

    /// For a hashing thread's start: its timer. Without one, it hashes in
    /// one piece.
    pub fn prepare_this_thread() {
        let timer = turn_signal().and_then(Timer::for_this_thread);
        if timer.is_none() {
            tracing::warn!("hashing cannot step aside for requests: no timer");
        }
        TIMER.set(timer);
    }

    /// A timer firing every turn, until dropped (also when the work
    /// panics).
    struct Turns<'a>(&'a Timer);

    impl<'a> Turns<'a> {
        fn start(timer: &'a Timer) -> Self {
            timer.every(TURN);
            Self(timer)
        }
    }

    impl Drop for Turns<'_> {
        fn drop(&mut self) {
            self.0.every(Duration::ZERO);
        }
    }

    /// Runs `work` in turns, on a thread prepared for it.
    pub fn in_turns<T>(work: impl FnOnce() -> T) -> T {
        TIMER.with_borrow(|timer| {
            let _turns = timer.as_ref().map(Turns::start);
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
