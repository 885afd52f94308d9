//! The spin budget in iterations of a spin loop, calibrated from the budget in time.
//!
//! The budget is set in **time** ([`crate::tuning`]), because one `PAUSE` costs anything from
//! about 10 to 140 cycles depending on the CPU (parking_lot issue #201: a budget in iterations
//! does not port). At first use pvlock times a run of `PAUSE`s and converts the budget to
//! iterations of the spin loop (a `PAUSE` and a load), so the spin loops never read a clock.
//! Without `std` there is no clock: the budget is 4096 iterations until set in iterations.

#[cfg(not(loom))]
use crate::sync::{AtomicU32, Ordering};

/// The budget in iterations where no clock is available (`no_std`).
#[cfg(not(loom))]
const DEFAULT_ITERATIONS: u32 = 1 << 12;

/// The budget in iterations; 0 = not calibrated yet.
#[cfg(not(loom))]
static ITERATIONS: AtomicU32 = AtomicU32::new(0);
/// Nanoseconds per 1024 spin iterations; 0 = not measured yet.
#[cfg(all(feature = "std", not(loom)))]
static NS_PER_1K: AtomicU32 = AtomicU32::new(0);

/// The budget in spin iterations (calibrated on first call).
#[cfg(not(loom))]
#[inline]
pub(crate) fn iterations() -> u32 {
    // Relaxed: a tuning value; a thread that reads an older one spins a little more or less.
    match ITERATIONS.load(Ordering::Relaxed) {
        0 => calibrate(),
        n => n,
    }
}

/// Under loom: spin once, then wait, so that the models reach the blocking paths.
#[cfg(loom)]
#[inline]
pub(crate) fn iterations() -> u32 {
    1
}

/// Sets the budget in iterations (0 is stored as 1: "block after one check"). The public
/// setters ([`crate::tuning`]) keep it in its valid range.
#[cfg(not(loom))]
pub(crate) fn set_iterations(n: u32) {
    ITERATIONS.store(n.max(1), Ordering::Relaxed);
}

/// Under loom the budget is fixed.
#[cfg(loom)]
pub(crate) fn set_iterations(_n: u32) {}

#[cfg(all(not(feature = "std"), not(loom)))]
#[cold]
fn calibrate() -> u32 {
    ITERATIONS.store(DEFAULT_ITERATIONS, Ordering::Relaxed);
    DEFAULT_ITERATIONS
}

#[cfg(all(feature = "std", not(loom)))]
#[cold]
fn calibrate() -> u32 {
    let _ = DEFAULT_ITERATIONS;
    let n = ns_to_iterations(crate::tuning::spin_ns_from_env());
    // Several threads may calibrate at once; they all store about the same value.
    ITERATIONS.store(n, Ordering::Relaxed);
    n
}

/// Nanoseconds 1024 spin iterations cost on this CPU (a `PAUSE` plus a load each), measured
/// once: the best of a few short runs, the undisturbed cost (the measuring thread may be
/// preempted).
#[cfg(all(feature = "std", not(loom)))]
pub(crate) fn ns_per_1k_iterations() -> u32 {
    let known = NS_PER_1K.load(Ordering::Relaxed);
    if known != 0 {
        return known;
    }
    let probe = core::sync::atomic::AtomicU32::new(0);
    let mut best = u128::MAX;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        for _ in 0..1024 * 4 {
            core::hint::spin_loop();
            core::hint::black_box(probe.load(Ordering::Relaxed));
        }
        best = best.min(t.elapsed().as_nanos() / 4);
    }
    let v = best.clamp(1, u32::MAX as u128) as u32;
    NS_PER_1K.store(v, Ordering::Relaxed);
    v
}

#[cfg(all(feature = "std", not(loom)))]
fn ns_to_iterations(ns: u64) -> u32 {
    let per_1k = u64::from(ns_per_1k_iterations());
    (ns.saturating_mul(1024) / per_1k).clamp(1, u64::from(u32::MAX)) as u32
}

/// Sets the spin budget in nanoseconds; the caller ([`crate::tuning::set_spin_budget`]) has
/// clamped it.
#[cfg(all(feature = "std", not(loom)))]
pub(crate) fn set_spin_ns(ns: u64) {
    set_iterations(ns_to_iterations(ns));
}

/// The spin budget in force, as a duration.
#[cfg(all(feature = "std", not(loom)))]
pub(crate) fn spin_budget() -> core::time::Duration {
    let ns = u64::from(iterations()) * u64::from(ns_per_1k_iterations()) / 1024;
    core::time::Duration::from_nanos(ns)
}
