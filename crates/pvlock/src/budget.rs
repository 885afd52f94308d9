//! The spin budget: how long a waiter spins before it asks its backend to block.
//!
//! The budget is set in **time**, not iterations, because one `PAUSE` costs anything from about
//! 10 to 140 cycles depending on the CPU (parking_lot issue #201: a budget in iterations does not
//! port). At first use pvlock times a run of `PAUSE`s and converts the budget to iterations of the
//! lock's spin loop, so the spin loops themselves never read a clock.
//!
//! * Default: [`DEFAULT_NS`], 40 µs: a few times the cost of blocking and being woken on bare
//!   metal or a KVM guest (LiTL's rule for spin-then-park is "about one context switch"), because
//!   in a guest whose vCPUs are overcommitted waking a halted vCPU costs far more (see the
//!   measurements at [`DEFAULT_NS`]).
//! * Override with the environment variable `PVLOCK_SPIN_NS` (read once, at calibration), or with
//!   [`tuning::set_spin_budget`](crate::tuning::set_spin_budget) at any time; both are checked
//!   against the valid range (see [`crate::tuning`]).
//! * Without `std` there is no clock: the budget is [`DEFAULT_ITERATIONS`] until set.
//!
//! A backend may shorten it per wait ([`Backend::spin_start`](crate::backend::Backend::spin_start)),
//! as [`Auto`](crate::backend::Auto) does when more threads spin than there are CPUs.

#[cfg(not(loom))]
use crate::sync::{AtomicU32, Ordering};

/// Default spin budget in nanoseconds.
///
/// Measured with `pvlock bench` against 10 µs, A/B alternated: in vmlab (8 vCPUs on 2 host CPUs,
/// `pvlock::Mutex` against the better of `std` and `parking_lot`, four series of 3-4 guest runs)
/// 0.86-0.93x against 0.82-0.84x at 8 guest threads and 0.89-0.95x against 0.88-0.91x at 4; on
/// the 2-CPU host unchanged within noise (`oversub-8x` 0.89x vs 0.87x, `native` 0.93x vs 0.92x,
/// `noisy` 1.00x vs 0.95x, hash table `oversub-8x` 0.98x both). 2 µs cost the guest 10-20%.
pub const DEFAULT_NS: u64 = 40_000;
/// Budget in iterations where no clock is available (`no_std`), and under loom a tiny one.
#[cfg(not(loom))]
pub const DEFAULT_ITERATIONS: u32 = 1 << 12;
/// Budget in iterations where no clock is available (`no_std`), and under loom a tiny one.
#[cfg(loom)]
pub const DEFAULT_ITERATIONS: u32 = 1;

/// 0 = not calibrated yet.
#[cfg(not(loom))]
static ITERATIONS: AtomicU32 = AtomicU32::new(0);
/// Nanoseconds per 1024 spin iterations, 0 = not measured yet.
#[cfg(all(feature = "std", not(loom)))]
static NS_PER_1K: AtomicU32 = AtomicU32::new(0);

/// The budget in spin iterations (calibrated on first call).
#[cfg(not(loom))]
#[inline]
pub fn iterations() -> u32 {
    match ITERATIONS.load(Ordering::Relaxed) {
        0 => calibrate(),
        n => n,
    }
}

/// Under loom: spin once, then wait, so the models exercise the blocking paths.
#[cfg(loom)]
#[inline]
pub fn iterations() -> u32 {
    DEFAULT_ITERATIONS
}

/// Sets the budget in iterations directly (0 means "block at once" and is stored as 1). The
/// public setters ([`crate::tuning`]) keep it in its valid range.
#[cfg(not(loom))]
pub(crate) fn set_iterations(n: u32) {
    ITERATIONS.store(n.max(1), Ordering::Relaxed);
}

#[cfg(all(not(feature = "std"), not(loom)))]
#[cold]
fn calibrate() -> u32 {
    ITERATIONS.store(DEFAULT_ITERATIONS, Ordering::Relaxed);
    DEFAULT_ITERATIONS
}

#[cfg(all(feature = "std", not(loom)))]
#[cold]
fn calibrate() -> u32 {
    let n = ns_to_iterations(crate::tuning::spin_ns_from_env());
    // Several threads may calibrate at once; they all store about the same value.
    ITERATIONS.store(n, Ordering::Relaxed);
    n
}

/// Nanoseconds one spin iteration costs on this CPU (a `PAUSE` plus a load), measured once.
#[cfg(all(feature = "std", not(loom)))]
pub fn ns_per_1k_iterations() -> u32 {
    let known = NS_PER_1K.load(Ordering::Relaxed);
    if known != 0 {
        return known;
    }
    // Best of a few short runs: the minimum is the undisturbed cost (we may be preempted).
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
    let per_1k = ns_per_1k_iterations() as u64;
    (ns.saturating_mul(1024) / per_1k).clamp(1, u32::MAX as u64) as u32
}

/// Sets the spin budget in nanoseconds (converted with the calibrated cost of one iteration);
/// the caller ([`crate::tuning::set_spin_budget`]) has clamped it.
#[cfg(all(feature = "std", not(loom)))]
pub(crate) fn set_spin_ns(ns: u64) {
    set_iterations(ns_to_iterations(ns));
}

/// The spin budget in force, as a duration.
#[cfg(all(feature = "std", not(loom)))]
pub fn spin_budget() -> std::time::Duration {
    let ns = iterations() as u64 * ns_per_1k_iterations() as u64 / 1024;
    std::time::Duration::from_nanos(ns)
}
