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
    crate::policy::budget::spin_budget()
}

/// Sets the spin budget, clamped to 0 to 10 ms; returns the budget in force (converted to spin
/// iterations with the calibrated cost of one, so it may differ from `budget` by a few ns).
#[cfg(all(feature = "std", not(loom)))]
pub fn set_spin_budget(budget: core::time::Duration) -> core::time::Duration {
    let ns = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX);
    crate::policy::budget::set_spin_ns(SPIN_NS.clamp(ns));
    spin_budget()
}

/// The spin budget in force, in iterations of the spin loop (a `PAUSE` and a load).
pub fn spin_iterations() -> u32 {
    crate::policy::budget::iterations()
}

/// Sets the spin budget in iterations of the spin loop, clamped to 1 to 1 048 576; returns the
/// budget in force. This is how to set it without `std`, where there is no clock to convert a
/// duration (the default there is 4096 iterations); with `std` prefer [`set_spin_budget`], since
/// what one iteration costs differs tenfold between CPUs.
pub fn set_spin_iterations(iterations: u32) -> u32 {
    let n = iterations.clamp(1, 1 << 20);
    crate::policy::budget::set_iterations(n);
    n
}

/// The steal budget in force.
pub fn steal_budget() -> u32 {
    crate::policy::steal::budget()
}

/// Sets the steal budget, clamped to 256 to 1 048 576; returns the budget in force. Each thread
/// picks it up at its next pass through a queue.
pub fn set_steal_budget(steals: u32) -> u32 {
    let n = STEALS.clamp(u64::from(steals)) as u32;
    crate::policy::steal::set_budget(n);
    n
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

/// `Queued`, pv: a queued waiter looks at its predecessor's state every this many spins and blocks
/// early if the predecessor is not running (the kernel's `PV_PREV_CHECK_MASK + 1`). Lower checks
/// more often (a read of another waiter's line), higher blocks later behind a preempted waiter.
pub(crate) const PREV_CHECK_EVERY: u32 = 256;

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

/// How long the waiter next in line of a crowded `Queued` queue waits runnable, yielding, before
/// it blocks: longer than a pass of a crowded queue (0.4-0.8 ms measured with 16 threads on
/// 2 CPUs), short enough not to keep a CPU busy while a holder keeps the lock long.
pub(crate) const YIELD_WAIT_NS: u64 = 1_000_000;

/// How long a thread counts as contending for pvlock locks after its last slow path (between one
/// and two of these): long enough to span a thread's queue passes and sleeps under heavy
/// oversubscription (a few ms each with 16 threads on 2 CPUs), short enough that a thread pool
/// that stops contending is no longer "crowded" a few hundredths of a second later.
pub(crate) const EPOCH_NS: u64 = 10_000_000;

/// Once a thread's steal budget is spent and the process is not crowded, the next look at the
/// load comes after this many more steals (it reads a shared counter, so not per steal).
pub(crate) const RECHECK_STEALS: u32 = 64;

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
