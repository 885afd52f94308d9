//! Tuning: the two values that shape pvlock's slow paths, each with its valid range.
//!
//! | value | default | valid range | environment | set with |
//! |---|---|---|---|---|
//! | spin budget: how long a waiter spins before it blocks | 40 µs (without `std`: 4096 iterations) | 0 to 10 ms (1 to 1 048 576 iterations) | `PVLOCK_SPIN_NS` (nanoseconds) | [`set_spin_budget`], [`set_spin_iterations`] |
//! | steal budget: how often a running thread may take a `Queued` lock past queued waiters before it must queue itself, while the process is crowded | 4096 | 256 to 1 048 576 | `PVLOCK_STEALS` | [`set_steal_budget`] |
//!
//! **When you would change them.** The spin budget: shorter if your critical sections are long
//! and your CPUs are better spent elsewhere (waiters then sleep sooner), longer if waking a
//! sleeping thread is very expensive where you run (a guest whose vCPUs are overcommitted) and
//! hold times are short. The steal budget: lower for fairer turns among many threads that share
//! few CPUs, at some cost in throughput (every turn through the queue costs a wake-up); higher for
//! throughput at the cost of longer waits for the unlucky threads. Both defaults were chosen on
//! the whole benchmark matrix of `pvlock bench` (`docs/`), not for one scenario.
//!
//! **Out of range.** A value outside its range is clamped to the range (the setters return the
//! value in force). The environment variables are read once, at first use; a value that is not a
//! whole number, or out of range, does not stop the locks: the default (or the clamped value) is
//! used, and [`check_env`] says so, so that a program can report it (`pvlock bench` refuses to run
//! with one).
//!
//! ```
//! use std::time::Duration;
//! // 1 s is above the range: the budget in force is 10 ms (to within one spin iteration).
//! let used = pvlock::tuning::set_spin_budget(Duration::from_secs(1));
//! assert!(used > Duration::from_millis(9) && used <= Duration::from_micros(10_100));
//! assert_eq!(pvlock::tuning::set_steal_budget(1), 256);
//! ```

// Without `std` (and under loom) the environment is not read.
#![cfg_attr(not(all(feature = "std", not(loom))), allow(dead_code))]

#[cfg(all(feature = "std", not(loom)))]
use core::fmt;

/// A tuning value's name, unit, range and default.
struct Knob {
    var: &'static str,
    what: &'static str,
    min: u64,
    max: u64,
    default: u64,
}

const SPIN_NS: Knob = Knob {
    var: "PVLOCK_SPIN_NS",
    what: "nanoseconds",
    min: 0,
    max: 10_000_000,
    default: 40_000,
};

const STEALS: Knob = Knob {
    var: "PVLOCK_STEALS",
    what: "steals",
    min: 256,
    max: 1 << 20,
    default: 4096,
};

impl Knob {
    const fn clamp(&self, v: u64) -> u64 {
        if v < self.min {
            self.min
        } else if v > self.max {
            self.max
        } else {
            v
        }
    }

    /// The value the environment asks for (or the default), and what was wrong with it.
    #[cfg(all(feature = "std", not(loom)))]
    fn read_env(&self) -> (u64, Option<EnvError>) {
        let Some(raw) = std::env::var_os(self.var) else {
            return (self.default, None);
        };
        let text = raw.to_string_lossy().into_owned();
        match text.trim().parse::<u64>() {
            Ok(v) if (self.min..=self.max).contains(&v) => (v, None),
            Ok(v) => {
                let used = self.clamp(v);
                (used, Some(self.error(text, used)))
            }
            Err(_) => (self.default, Some(self.error(text, self.default))),
        }
    }

    #[cfg(all(feature = "std", not(loom)))]
    fn error(&self, value: std::string::String, used: u64) -> EnvError {
        EnvError {
            variable: self.var,
            value,
            what: self.what,
            min: self.min,
            max: self.max,
            used,
        }
    }
}

/// A tuning environment variable that pvlock could not use as given (see [`check_env`]).
#[cfg(all(feature = "std", not(loom)))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    variable: &'static str,
    value: std::string::String,
    what: &'static str,
    min: u64,
    max: u64,
    used: u64,
}

#[cfg(all(feature = "std", not(loom)))]
impl EnvError {
    /// The variable, e.g. `PVLOCK_SPIN_NS`.
    pub fn variable(&self) -> &'static str {
        self.variable
    }

    /// The value pvlock uses instead: the default for a value that is not a number, else the
    /// nearest end of the range.
    pub fn used(&self) -> u64 {
        self.used
    }
}

#[cfg(all(feature = "std", not(loom)))]
impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?}: expected a whole number of {} from {} to {}; using {}",
            self.variable, self.value, self.what, self.min, self.max, self.used
        )
    }
}

#[cfg(all(feature = "std", not(loom)))]
impl std::error::Error for EnvError {}

/// Checks the tuning environment variables (`PVLOCK_SPIN_NS`, `PVLOCK_STEALS`) as they are now:
/// the first one that is not a whole number in its range, with the value pvlock uses instead.
///
/// # Errors
/// [`EnvError`] for a variable that is set to something outside its range or not a number.
#[cfg(all(feature = "std", not(loom)))]
pub fn check_env() -> Result<(), EnvError> {
    for knob in [&SPIN_NS, &STEALS] {
        if let (_, Some(e)) = knob.read_env() {
            return Err(e);
        }
    }
    Ok(())
}

/// The spin budget the environment asks for, in nanoseconds (the default when unset or invalid).
#[cfg(all(feature = "std", not(loom)))]
pub(crate) fn spin_ns_from_env() -> u64 {
    SPIN_NS.read_env().0
}

/// The steal budget the environment asks for (the default without `std`, unset or invalid).
pub(crate) fn steals_from_env() -> u32 {
    #[cfg(all(feature = "std", not(loom)))]
    let n = STEALS.read_env().0;
    #[cfg(not(all(feature = "std", not(loom))))]
    let n = STEALS.default;
    n as u32
}

/// The spin budget in force.
#[cfg(all(feature = "std", not(loom)))]
pub fn spin_budget() -> core::time::Duration {
    spin::spin_budget()
}

/// Sets the spin budget, clamped to 0 to 10 ms; returns the budget in force (converted to spin
/// iterations with the calibrated cost of one, so it may differ from `budget` by a few ns).
#[cfg(all(feature = "std", not(loom)))]
pub fn set_spin_budget(budget: core::time::Duration) -> core::time::Duration {
    let ns = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX);
    spin::set_spin_ns(SPIN_NS.clamp(ns));
    spin_budget()
}

/// The spin budget in force, in iterations of the spin loop (a `PAUSE` and a load).
#[inline]
pub fn spin_iterations() -> u32 {
    spin::iterations()
}

/// Sets the spin budget in iterations of the spin loop, clamped to 1 to 1 048 576; returns the
/// budget in force. This is how to set it without `std`, where there is no clock to convert a
/// duration (the default there is 4096 iterations); with `std` prefer [`set_spin_budget`], since
/// what one iteration costs differs tenfold between CPUs.
pub fn set_spin_iterations(iterations: u32) -> u32 {
    let n = iterations.clamp(1, 1 << 20);
    spin::set_iterations(n);
    n
}

/// The steal budget in force.
#[inline]
pub fn steal_budget() -> u32 {
    steal::steals()
}

/// Sets the steal budget, clamped to 256 to 1 048 576; returns the budget in force. Each thread
/// picks it up at its next pass through a queue.
///
/// Lower it when threads outnumber the CPUs and spread over many locks and even turns matter: a
/// 64-lock hash table with 16 threads on 2 CPUs measured fairness (the least over the most
/// acquisitions of any thread) 0.22 at the default and 0.52 at 512, at the same throughput.
/// Raise it for the throughput of one hot lock, where every pass through the queue costs a
/// wake-up.
///
/// ```
/// assert_eq!(pvlock::tuning::set_steal_budget(512), 512);
/// assert_eq!(pvlock::tuning::steal_budget(), 512);
/// ```
pub fn set_steal_budget(steals: u32) -> u32 {
    let n = STEALS.clamp(u64::from(steals)) as u32;
    steal::store_steals(n);
    n
}

/// The spin budget in iterations of a spin loop, calibrated from the budget in time.
///
/// The budget is set in **time**, because one `PAUSE` costs anything from about 10 to 140 cycles
/// depending on the CPU (parking_lot issue #201: a budget in iterations does not port). At first
/// use pvlock times a run of `PAUSE`s and converts the budget to iterations of the spin loop (a
/// `PAUSE` and a load), so the spin loops never read a clock. Without `std` there is no clock:
/// the budget is 4096 iterations until set in iterations.
mod spin {
    #[cfg(all(feature = "std", not(loom)))]
    use super::spin_ns_from_env;

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

    /// Stores the budget in iterations (0 is stored as 1: "block after one check"); the callers
    /// keep it in its valid range.
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
        let n = ns_to_iterations(spin_ns_from_env());
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

    /// Stores the spin budget given in nanoseconds; the caller ([`set_spin_budget`](super::set_spin_budget)) has clamped it.
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
}

/// The steal budget's storage.
mod steal {
    #[cfg(not(loom))]
    use super::steals_from_env;

    /// The steal budget in force + 1 (0: not read from the environment yet).
    #[cfg(not(loom))]
    static BUDGET_PLUS_1: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

    /// The steal budget in force, in steals past queued waiters between two queue passes.
    #[cfg(not(loom))]
    #[inline]
    pub(super) fn steals() -> u32 {
        // Relaxed: a tuning value; a thread picks a new one up at its next queue pass.
        match BUDGET_PLUS_1.load(core::sync::atomic::Ordering::Relaxed) {
            0 => {
                let n = steals_from_env();
                store_steals(n);
                n
            }
            n => n - 1,
        }
    }

    /// Under loom: one steal, then queue, so that the models reach both branches.
    #[cfg(loom)]
    #[inline]
    pub(super) fn steals() -> u32 {
        1
    }

    /// Stores the steal budget; the caller ([`set_steal_budget`](super::set_steal_budget)) has clamped it.
    #[cfg(not(loom))]
    pub(super) fn store_steals(steals: u32) {
        BUDGET_PLUS_1.store(
            steals.min(u32::MAX - 1) + 1,
            core::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Under loom the budget is fixed.
    #[cfg(loom)]
    pub(super) fn store_steals(_steals: u32) {}
}

// ---- The fixed values of the slow paths ----
//
// Not settable at run time: each is a property of the algorithm or of the machines pvlock is for,
// with the reason it has its value and when you would change it (in the source).

/// `Queued`, native: how many reads a newcomer waits for a `(0,1,0)` pending hand-over to finish
/// before it queues (the kernel's `_Q_PENDING_LOOPS` on x86). Change it only with the kernel's.
#[cfg(not(loom))]
pub(crate) const PENDING_LOOPS: u32 = 1 << 9;
/// Under loom every read is a scheduling branch: two.
#[cfg(loom)]
pub(crate) const PENDING_LOOPS: u32 = 2;

/// A spinning waiter looks at something besides what it waits for before its first `PAUSE` and
/// then once in this many `PAUSE`s ([`Backoff::look_aside`](crate::policy::Backoff::look_aside)):
/// a `Queued` pv queued waiter at its predecessor's state, to block early if the predecessor is
/// not running (the kernel's `PV_PREV_CHECK_MASK + 1`, 256), and a timed waiter (`try_lock_for`
/// and the like of `Queued`, `Byte`, `QueuedRwLock`) at the clock, for its deadline. Lower notices
/// a preempted predecessor or a passed deadline sooner, at the cost of more reads off the spin's
/// own line (another waiter's node, the clock); higher blocks later behind a preempted waiter and
/// may overrun a deadline by more spinning. Change it with the cost of those reads against a
/// `PAUSE`.
pub(crate) const LOOK_ASIDE_EVERY: u32 = 256;

/// The most `PAUSE`s between two reads of a `Queued` lock word by a stealer, doubling from 1.
/// Every read by a waiter costs the holder a coherence miss on its next write, so backing off lets
/// a holder that releases and retakes the lock keep the line (measurements: `docs/tuning.md`).
/// Change it with the cost of a cross-CPU cache-line transfer.
pub(crate) const STEAL_BACKOFF_MAX: u32 = 64;

/// Crowded, a `Queued` stealer spins the spin budget divided by this before it queues, unless it
/// is [`FAIR_SHARE_SLACK`] steal budgets behind its fair share: one running thread then streams
/// the lock with its cache line local instead of two CPUs passing it back and forth.
pub(crate) const CROWDED_ENTRY_DIV: u32 = 32;
/// See [`CROWDED_ENTRY_DIV`]: how far behind the average in steals (in steal budgets) a crowded
/// stealer must be to spin the whole budget, which wins it the lock against a short spinner.
pub(crate) const FAIR_SHARE_SLACK: i64 = 2;

/// How long a thread counts as contending for pvlock locks after its last slow path (between one
/// and two of these): long enough to span a thread's queue passes and sleeps under heavy
/// oversubscription, short enough that a thread pool that stops contending is no longer
/// "crowded" a few hundredths of a second later. Change it with the scheduler's time slice.
pub(crate) const EPOCH_NS: u64 = 10_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamp_keeps_the_range() {
        assert_eq!(STEALS.clamp(0), 256);
        assert_eq!(STEALS.clamp(4096), 4096);
        assert_eq!(STEALS.clamp(u64::MAX), 1 << 20);
        assert_eq!(SPIN_NS.clamp(u64::MAX), 10_000_000);
        assert_eq!(SPIN_NS.clamp(0), 0);
    }
}
