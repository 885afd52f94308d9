//! The `loom` shim: every atomic, spin hint and yield in the crate goes through here, so the
//! same lock code runs natively and under the [loom] model checker (`RUSTFLAGS="--cfg loom"`).
//!
//! Under loom a spin loop must yield to the model checker, otherwise a waiter that spins on a
//! value only another thread can change explodes the state space; [`spin_loop`] does that.
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// One iteration of a busy-wait loop: `PAUSE` natively, a yield to the scheduler under loom.
#[inline(always)]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
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
