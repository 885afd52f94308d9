//! The loom shim: everything the lock code touches that the [loom] model checker must see or
//! replace goes through here, so the same code runs natively, without `std`, and under loom
//! (`RUSTFLAGS="--cfg loom"`): atomics and fences, the spin hint, yielding the CPU, time, the CPU
//! count, thread-locals and the static tables.
//!
//! | | native, `std` | native, `no_std` | loom |
//! |---|---|---|---|
//! | atomics | `core` | `core` | loom's |
//! | [`spin_loop`] | `PAUSE` | `PAUSE` | a yield to the model checker |
//! | [`yield_now`] | `sched_yield` | nothing (`can_yield()` is false) | a yield to the model checker |
//! | [`Deadline`] | `Instant` | none: always expired | a few checks |
//! | [`cpus`] | affinity + cgroup quota, once | unknown | what the model set (`set_model_cpus`) |
//! | [`static_cells!`] | `static` arrays | `static` arrays | per-execution lazy statics |
//!
//! Under loom a spin loop must yield to the model checker, otherwise a waiter that spins on a
//! value only another thread can change explodes the state space; [`spin_loop`] does that.
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// One iteration of a busy-wait loop: `PAUSE` natively, a yield to the scheduler under loom.
#[inline(always)]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Whether [`yield_now`] gives the CPU away (it cannot without `std`).
pub(crate) const CAN_YIELD: bool = cfg!(any(feature = "std", loom));

/// Gives the CPU to another runnable thread, if there is one (`sched_yield`); without `std`, one
/// spin hint.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(all(feature = "std", not(loom)))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(any(feature = "std", loom)))]
    core::hint::spin_loop();
}

/// A point in time a waiter stops waiting at (natively with `std`); without a clock it has always
/// passed, under loom it passes after a few checks.
pub(crate) struct Deadline {
    #[cfg(all(feature = "std", not(loom)))]
    at: std::time::Instant,
    #[cfg(loom)]
    checks: core::cell::Cell<u32>,
}

impl Deadline {
    /// At `at` (the timed lock paths' deadline).
    #[cfg(all(feature = "std", not(loom)))]
    #[inline]
    pub(crate) fn at(at: std::time::Instant) -> Deadline {
        Deadline { at }
    }

    /// Under loom: a deadline that passes after `checks` looks at it (there is no clock; the
    /// models use it).
    #[cfg(all(loom, test))]
    pub(crate) fn after_checks(checks: u32) -> Deadline {
        Deadline {
            checks: core::cell::Cell::new(checks),
        }
    }

    /// The time left until the deadline (zero once passed). Under loom, and without a clock, a
    /// nominal millisecond: what matters there is [`passed`](Self::passed).
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    #[inline]
    pub(crate) fn remaining(&self) -> core::time::Duration {
        #[cfg(all(feature = "std", not(loom)))]
        let left = self.at.saturating_duration_since(std::time::Instant::now());
        #[cfg(not(all(feature = "std", not(loom))))]
        let left = core::time::Duration::from_millis(1);
        left
    }

    /// Whether the deadline has passed.
    #[inline]
    pub(crate) fn passed(&self) -> bool {
        #[cfg(all(feature = "std", not(loom)))]
        let passed = std::time::Instant::now() >= self.at;
        #[cfg(loom)]
        let passed = {
            let left = self.checks.get();
            self.checks.set(left.saturating_sub(1));
            left == 0
        };
        #[cfg(not(any(feature = "std", loom)))]
        let passed = true;
        passed
    }
}

/// The CPUs this process may use ([`std::thread::available_parallelism`]: affinity mask and
/// cgroup CPU quota included), computed once; `None` without `std`, where pvlock cannot tell
/// (a guest kernel's locks run one waiter per CPU).
#[cfg(all(feature = "std", not(loom)))]
pub(crate) fn cpus() -> Option<usize> {
    static CPUS: AtomicUsize = AtomicUsize::new(0);
    // Relaxed: several threads may compute it at once; they all store the same value.
    match CPUS.load(Ordering::Relaxed) {
        0 => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            CPUS.store(n, Ordering::Relaxed);
            Some(n)
        }
        n => Some(n),
    }
}

/// The CPUs this process may use: unknown without `std`.
#[cfg(all(not(feature = "std"), not(loom)))]
pub(crate) fn cpus() -> Option<usize> {
    None
}

// Per OS thread: a model's threads all run on its test's thread, and tests run in parallel, so
// a process-wide setting of one model would leak into another's executions (a non-deterministic
// model to loom).
#[cfg(loom)]
std::thread_local! {
    static MODEL_CPUS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// The CPU count a loom model runs with (0 = unknown, as without `std`). Not a loom cell: it is
/// the model's setting, made before `loom::model` runs.
#[cfg(all(loom, test))]
pub(crate) fn set_model_cpus(n: usize) {
    MODEL_CPUS.with(|c| c.set(n));
}

/// The CPU count the loom model of this test thread set ([`set_model_cpus`]).
#[cfg(loom)]
pub(crate) fn cpus() -> Option<usize> {
    match MODEL_CPUS.with(|c| c.get()) {
        0 => None,
        n => Some(n),
    }
}

/// `const`-constructs an atomic natively; under loom atomics cannot be built in `const` context,
/// so the lock types' `new` is only `const` when not model checking.
macro_rules! const_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident() -> $ret:ty $body:block) => {
        #[cfg(not(loom))]
        $(#[$m])* $vis const fn $name() -> $ret $body
        #[cfg(loom)]
        $(#[$m])* $vis fn $name() -> $ret $body
    };
}
pub(crate) use const_fn;

/// A process-wide table of `$n` values of type `$ty`, each made by `$new` (a `const fn`), read by
/// the accessor `$get() -> &'static [$ty]`: a `static` array natively; under loom a lazy static,
/// which loom makes anew for every execution of a model.
macro_rules! static_cells {
    ($(#[$m:meta])* $vis:vis fn $get:ident() -> [$ty:ty; $n:expr] = $new:expr;) => {
        $(#[$m])*
        #[inline(always)]
        $vis fn $get() -> &'static [$ty] {
            #[cfg(not(loom))]
            {
                static CELLS: [$ty; $n] = [const { $new }; $n];
                &CELLS
            }
            #[cfg(loom)]
            {
                loom::lazy_static! {
                    static ref CELLS: std::vec::Vec<$ty> = (0..$n).map(|_| $new).collect();
                }
                &CELLS
            }
        }
    };
}
pub(crate) use static_cells;

/// `thread_local!`: std's natively, loom's under loom.
#[cfg(loom)]
pub(crate) use loom::thread_local;
#[cfg(all(feature = "std", not(loom)))]
pub(crate) use std::thread_local;
