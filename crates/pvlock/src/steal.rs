//! The steal budget: how long a running thread may take a lock past the waiters queued for it.
//!
//! Oversubscribed, a pv [`Queued`](crate::queued::Queued) lock is mostly taken by *stealing*: the threads
//! that are running take the free lock while the queued waiters sleep (the kernel's
//! `pv_hybrid_queued_unfair_trylock`), because waking a sleeper for every hand-over would leave
//! the lock idle for a wake-up latency each time. Unbounded, this lets the running threads keep
//! the lock among themselves while queued threads wait for tens of milliseconds: measured with
//! 16 threads on 2 CPUs, the slowest thread made 0.3-0.5x the acquisitions of the fastest.
//!
//! # The rule
//!
//! A thread may steal past queued waiters (a queue tail is set) for at most the steal budget
//! ([`DEFAULT_NS`], 500 µs, parking_lot's eventual-fairness period) since it last took the lock
//! through the queue. After that it queues like everyone else, at the tail, and its budget
//! restarts when it reaches the head and takes the lock. So the running threads rotate through
//! the FIFO queue at least once per budget, and every thread gets its turn on a CPU with the lock.
//! Taking a lock that nobody waits for is not stealing and costs nothing here.
//!
//! The budget is enforced only while the process is *crowded*: at least as many threads wait in
//! pv `Queued` queues as it has CPUs ([`std::thread::available_parallelism`]). Then queued
//! threads cannot all run, they sleep, and unbounded stealing is what starves them. With fewer
//! waiters than CPUs they keep a CPU each (they spin) and stealing stays unbounded, as in the
//! kernel: forcing a running thread into a queue whose members may themselves be preempted
//! (vCPUs of an overcommitted VM) only adds their preemption to its wait.
//!
//! Measured with `pvlock bench` (median of 3 to 5 alternated runs): 16 threads on 2 CPUs,
//! fairness (min/max acquisitions per thread) 0.35-0.49 without a budget, 0.82-0.86 with it, at
//! the same throughput (0.83-0.89x of the best peer either way); in `vmlab` (8 guest threads on 8
//! vCPUs on 2 host CPUs) the budget enforced without the crowding condition cost a quarter of
//! the throughput (0.51-0.60x against 0.74-0.83x of the best peer), with it nothing.
//!
//! The clock is read once per [`CHECK_EVERY`] steals, not per steal, and once per queue pass.
//! Without `std` there is no clock: the budget is then [`CHECK_EVERY`] x [`NO_CLOCK_CHECKS`]
//! steals. Threads without a waiter slot ([`registry::current`](crate::registry::current) is
//! `None`) steal without a bound; they have no place in the queue.
//!
//! Override with the environment variable `PVLOCK_STEAL_NS` (read once, at first use), or with
//! [`set_steal_budget`] at any time (a thread in the middle of a budget notices within
//! [`CHECK_EVERY`] steals); a budget of 0 turns stealing past waiters off: the lock is then FIFO
//! whenever anyone is queued.
//!
//! ```
//! use std::time::Duration;
//! pvlock::steal::set_steal_budget(Duration::from_micros(200));
//! assert_eq!(pvlock::steal::steal_budget(), Duration::from_micros(200));
//! ```

use crate::registry::Slot;
use crate::sync::Ordering;
#[cfg(all(feature = "std", not(loom)))]
use core::sync::atomic::{AtomicU32, AtomicUsize};

/// Default steal budget in nanoseconds.
pub const DEFAULT_NS: u64 = 500_000;
/// Steals between two reads of the clock.
#[cfg(not(loom))]
pub const CHECK_EVERY: u32 = 64;
/// Steals between two checks (1 under loom, so the models reach the "must queue" branch).
#[cfg(loom)]
pub const CHECK_EVERY: u32 = 1;
/// Without a clock (`no_std`): checks before a thread must queue.
#[cfg(not(loom))]
pub const NO_CLOCK_CHECKS: u32 = 32;
/// Without a clock: checks before a thread must queue (1 under loom, see [`CHECK_EVERY`]).
#[cfg(loom)]
pub const NO_CLOCK_CHECKS: u32 = 1;

/// Budget in microseconds + 1 (0 = not read from the environment yet).
#[cfg(all(feature = "std", not(loom)))]
static BUDGET_US_PLUS_1: AtomicU32 = AtomicU32::new(0);

#[cfg(all(feature = "std", not(loom)))]
fn budget_us() -> u32 {
    match BUDGET_US_PLUS_1.load(Ordering::Relaxed) {
        0 => {
            let ns = std::env::var("PVLOCK_STEAL_NS")
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(DEFAULT_NS);
            store_budget_ns(ns)
        }
        n => n - 1,
    }
}

#[cfg(all(feature = "std", not(loom)))]
fn store_budget_ns(ns: u64) -> u32 {
    // Microseconds in a u32 (the clock below wraps at 2^32 us, about 71 minutes).
    let us = (ns / 1000).min(u32::MAX as u64 / 2) as u32;
    BUDGET_US_PLUS_1.store(us + 1, Ordering::Relaxed);
    us
}

/// Sets the steal budget (zero: never steal past queued waiters).
#[cfg(all(feature = "std", not(loom)))]
pub fn set_steal_budget(budget: std::time::Duration) {
    store_budget_ns(u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX));
}

/// The steal budget in force.
#[cfg(all(feature = "std", not(loom)))]
pub fn steal_budget() -> std::time::Duration {
    std::time::Duration::from_micros(budget_us() as u64)
}

/// Threads queued (or queue heads) in pv `Queued` locks now, process-wide.
#[cfg(all(feature = "std", not(loom)))]
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// A thread joined a pv queue (after publishing its node as the tail).
#[inline]
pub(crate) fn enter_queue() {
    // Relaxed: a heuristic count.
    #[cfg(all(feature = "std", not(loom)))]
    QUEUED.fetch_add(1, Ordering::Relaxed);
}

/// A thread left a pv queue (it holds the lock as the queue head).
#[inline]
pub(crate) fn leave_queue() {
    #[cfg(all(feature = "std", not(loom)))]
    QUEUED.fetch_sub(1, Ordering::Relaxed);
}

/// Whether at least as many threads wait in pv queues as this process has CPUs: then queued
/// threads cannot all run, and stealing past them is what starves them.
#[cfg(all(feature = "std", not(loom)))]
fn crowded() -> bool {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    QUEUED.load(Ordering::Relaxed) >= cpus
}

/// Microseconds since the first call in this process, wrapping.
#[cfg(all(feature = "std", not(loom)))]
fn clock_us() -> u32 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    epoch.elapsed().as_micros() as u32
}

/// Whether the thread owning `me` may take the lock past queued waiters now (and counts it).
#[inline(always)]
pub(crate) fn may_bypass(me: Option<&Slot>) -> bool {
    let Some(s) = me else { return true };
    // Relaxed: only the slot's own thread touches `steals` and `streak`.
    let left = s.steals.load(Ordering::Relaxed);
    if left != 0 {
        s.steals.store(left - 1, Ordering::Relaxed);
        return true;
    }
    check(s)
}

/// Every [`CHECK_EVERY`] steals: still within the budget? Then another [`CHECK_EVERY`].
#[cold]
#[inline(never)]
fn check(s: &Slot) -> bool {
    #[cfg(all(feature = "std", not(loom)))]
    let within = clock_us().wrapping_sub(s.streak.load(Ordering::Relaxed)) < budget_us()
        || (budget_us() != 0 && !crowded());
    #[cfg(not(all(feature = "std", not(loom))))]
    let within = {
        let n = s.streak.load(Ordering::Relaxed);
        if n < NO_CLOCK_CHECKS {
            s.streak.store(n + 1, Ordering::Relaxed);
        }
        n < NO_CLOCK_CHECKS
    };
    if within {
        s.steals.store(CHECK_EVERY - 1, Ordering::Relaxed);
    }
    within
}

/// The thread owning `me` took a lock through the queue: its budget starts again.
#[inline]
pub(crate) fn restart(me: &Slot) {
    #[cfg(all(feature = "std", not(loom)))]
    {
        me.streak.store(clock_us(), Ordering::Relaxed);
        // A zero budget: check (and refuse) at the very next steal.
        let free = if budget_us() == 0 { 0 } else { CHECK_EVERY };
        me.steals.store(free, Ordering::Relaxed);
    }
    #[cfg(not(all(feature = "std", not(loom))))]
    {
        me.streak.store(0, Ordering::Relaxed);
        me.steals.store(CHECK_EVERY, Ordering::Relaxed);
    }
}
