//! Helpers shared by the unit tests of the lock modules.

use std::time::Duration;

use crate::RawLock;

// The integration tests' watchdog and mutual-exclusion run, so that the unit tests check locks
// the same way and a lost wake-up in a unit test fails it instead of hanging the run.
#[path = "../tests/common/exclusion.rs"]
mod exclusion;
#[path = "../tests/common/watchdog.rs"]
mod watchdog;

/// `threads` threads each take `lock` `iters` times around a critical section of non-atomic
/// state (the integration tests' mutual-exclusion run); with a non-zero `hold` each keeps the
/// lock that long, past the waiters' spin budget, so that they block. Asserts mutual exclusion,
/// the exact total and that the lock ends free; a stall of 10 s (a lost wake-up) fails the test.
pub(crate) fn hammer<L: RawLock + core::fmt::Debug>(
    lock: &L,
    threads: usize,
    iters: u64,
    hold: Duration,
) {
    hammer_with(lock, threads, iters, hold, |_| {})
}

/// [`hammer`], with `setup(i)` run first on the `i`-th thread.
pub(crate) fn hammer_with<L: RawLock + core::fmt::Debug>(
    lock: &L,
    threads: usize,
    iters: u64,
    hold: Duration,
    setup: impl Fn(usize) + Sync,
) {
    let run = exclusion::Run {
        threads,
        per_thread: iters,
        hold,
        cap: None,
        try_one_in: 0,
        think: 0,
    };
    exclusion::exclusion(core::any::type_name::<L>(), lock, &run, setup);
}

/// The blocking-backend tests every lock module runs, over that module's `hammer::<B>(threads,
/// iters, hold)`: 8 threads with Futex (Linux), Park and Auto, and 100 µs holds (past the default
/// 40 µs spin budget) so that waiters really block and must be kicked.
macro_rules! blocking_backend_tests {
    ($iters:expr) => {
        #[cfg(target_os = "linux")]
        #[test]
        fn eight_threads_futex() {
            hammer::<crate::backend::Futex>(8, $iters, std::time::Duration::ZERO);
        }

        #[test]
        fn eight_threads_park() {
            hammer::<crate::backend::Park>(8, $iters, std::time::Duration::ZERO);
        }

        #[test]
        fn eight_threads_auto() {
            hammer::<crate::backend::Auto>(8, $iters, std::time::Duration::ZERO);
        }

        #[test]
        fn blocking_waiters_are_kicked() {
            let hold = std::time::Duration::from_micros(100);
            #[cfg(target_os = "linux")]
            hammer::<crate::backend::Futex>(4, 200, hold);
            hammer::<crate::backend::Park>(4, 200, hold);
        }
    };
}
pub(crate) use blocking_backend_tests;

/// One `#[test]` per backend for a generic test `fn f<B: Backend>()`: `per_backend!(f: spin,
/// park, auto, futex)` makes the module `f` with the tests `f::spin`, `f::park`, `f::auto` and
/// (on Linux) `f::futex`.
macro_rules! per_backend {
    ($f:ident: $($b:ident),+ $(,)?) => {
        mod $f {
            $( $crate::testutil::per_backend!(@one $f $b); )+
        }
    };
    (@one $f:ident spin) => {
        #[test]
        fn spin() {
            super::$f::<crate::backend::Spin>();
        }
    };
    (@one $f:ident park) => {
        #[test]
        fn park() {
            super::$f::<crate::backend::Park>();
        }
    };
    (@one $f:ident auto) => {
        #[test]
        fn auto() {
            super::$f::<crate::backend::Auto>();
        }
    };
    (@one $f:ident futex) => {
        #[cfg(target_os = "linux")]
        #[test]
        fn futex() {
            super::$f::<crate::backend::Futex>();
        }
    };
}
pub(crate) use per_backend;
