//! The steal budget: how many times a running thread may take a lock past the waiters queued for
//! it before it must queue itself.
//!
//! Oversubscribed, a pv [`Queued`](crate::queued::Queued) lock is mostly taken by *stealing*: the
//! threads that are running take the free lock while the queued waiters sleep (the kernel's
//! `pv_hybrid_queued_unfair_trylock`), because waking a sleeper for every hand-over would leave
//! the lock idle for a wake-up latency each time. Unbounded, this lets the running threads keep
//! the lock among themselves while queued threads wait for tens of milliseconds: measured with
//! 16 threads on 2 CPUs, the slowest thread made 0.3-0.5x the acquisitions of the fastest.
//!
//! # The rule
//!
//! A thread may steal past queued waiters (a queue tail is set) at most [`tuning::steal_budget`](crate::tuning::steal_budget) times
//! ([`DEFAULT_STEALS`]) between two passes through a queue. After that it queues like everyone
//! else, at the tail, and its budget is restored when it reaches the head and takes the lock. So
//! the running threads rotate through the FIFO queue, and every thread gets its turn on a CPU with
//! the lock: *bounded bypass*, in acquisitions. Taking a lock that nobody waits for is not
//! stealing and costs nothing here.
//!
//! The budget is enforced only while the process is *crowded*: at least as many threads wait in
//! pv `Queued` queues as it has CPUs ([`std::thread::available_parallelism`]). Then queued
//! threads cannot all run, they sleep, and unbounded stealing is what starves them. With fewer
//! waiters than CPUs they keep a CPU each (they spin) and stealing stays unbounded, as in the
//! kernel: forcing a running thread into a queue whose members may themselves be preempted
//! (vCPUs of an overcommitted VM) only adds their preemption to its wait. Checking the condition
//! reads a shared counter, so it is done once per [`CHECK_EVERY`] steals, not per steal.
//!
//! Why a count and not a time: a time budget (500 µs was measured) also charges threads that
//! steal rarely, e.g. across the 64 bucket locks of a hash table, where it made every thread
//! queue on its first steal once its 500 µs had passed (0.83x of `parking_lot` instead of 1.00x);
//! a count charges each thread for the bypasses it actually made, needs no clock (`no_std` works
//! alike), and makes fairness in acquisitions exact by construction.
//!
//! Measured with `pvlock bench` (alternated runs, medians of 3-4): 16 threads on 2 CPUs, one hot
//! lock: fairness (min/max acquisitions per thread) 0.35-0.49 without a budget; with 1024, 2048,
//! 4096, 8192 steals 0.84, 0.73-0.83, 0.87-0.88, 0.65 at 0.85x, 0.88-0.91x, 0.89-0.92x, 0.96x of
//! the best peer's throughput (a 500 µs time budget: 0.82, 0.86x). The hash table workload
//! (64 bucket locks, 16 threads) runs at 0.98-0.99x of the best peer with any of these counts
//! (0.89x with the time budget, 0.98x with none). In `vmlab` (8 guest
//! threads on 8 vCPUs on 2 host CPUs) a budget enforced without the crowding condition cost a
//! quarter of the throughput (0.51-0.60x against 0.74-0.83x of the best peer), with it nothing.
//!
//! # Fair share
//!
//! While crowded, `Queued` stealers spin only briefly before they queue, which lets one running
//! thread stream the lock but makes the length of each thread's runs a matter of luck (the
//! `Queued` module docs, "Fair share"). So the budget also does the bookkeeping that evens it
//! out: each thread's steals used in finished runs are summed per thread and process-wide (one
//! shared add per run, when it joins a queue), and at each queue pass a thread gets the budget
//! plus its *deficit* against the average, clamped to [budget / 4, 2 x budget]: a thread
//! behind makes longer runs, one ahead shorter ones. With `no_std` (and under loom) there is no
//! accounting and every pass restores the plain budget.
//!
//! A thread starts with an empty budget: in a crowded process its first steal attempt past
//! waiters queues it instead. Override the budget with the environment variable `PVLOCK_STEALS`
//! (read once, at first use), or with
//! [`tuning::set_steal_budget`](crate::tuning::set_steal_budget) (it applies from each thread's
//! next queue pass); both keep it in its valid range (see [`crate::tuning`]).

use crate::registry::Slot;
use crate::sync::Ordering;
#[cfg(not(loom))]
use core::sync::atomic::AtomicU32;
#[cfg(all(feature = "std", not(loom)))]
use core::sync::atomic::AtomicUsize;

/// Default steal budget, in steals past queued waiters.
pub const DEFAULT_STEALS: u32 = 4096;
/// Steals between two checks of the crowding condition once the budget is spent.
#[cfg(not(loom))]
pub const CHECK_EVERY: u32 = 64;
/// Steals between two checks (1 under loom, so that the models reach the "must queue" branch).
#[cfg(loom)]
pub const CHECK_EVERY: u32 = 1;

/// Budget + 1 (0 = not read from the environment yet).
#[cfg(not(loom))]
static BUDGET_PLUS_1: AtomicU32 = AtomicU32::new(0);

/// The steal budget in force, in steals past queued waiters between two queue passes.
#[cfg(not(loom))]
pub(crate) fn steal_budget() -> u32 {
    match BUDGET_PLUS_1.load(Ordering::Relaxed) {
        0 => {
            let n = crate::tuning::steals_from_env();
            set_steal_budget(n);
            n.min(u32::MAX - 1)
        }
        n => n - 1,
    }
}

/// Under loom: one steal, then queue (so the models exercise both branches).
#[cfg(loom)]
pub(crate) fn steal_budget() -> u32 {
    1
}

/// Sets the steal budget (0: never steal past queued waiters; the public setter,
/// [`crate::tuning::set_steal_budget`], keeps it in its valid range). Each thread picks it up at
/// its next pass through a queue.
#[cfg(not(loom))]
pub(crate) fn set_steal_budget(steals: u32) {
    BUDGET_PLUS_1.store(steals.min(u32::MAX - 1) + 1, Ordering::Relaxed);
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

/// Whether at least `factor` times as many threads wait in pv queues as this process has CPUs
/// (also used by `Queued`'s yield-wait, with a factor of 2).
#[cfg(all(feature = "std", not(loom)))]
pub(crate) fn crowded_by(factor: usize) -> bool {
    QUEUED.load(Ordering::Relaxed) >= factor * crate::backend::cpus()
}

/// Whether at least as many threads wait in pv queues as this process has CPUs (module docs).
/// Without `std` (and under loom) there is no way to tell: always.
fn crowded() -> bool {
    #[cfg(all(feature = "std", not(loom)))]
    {
        crowded_by(1)
    }
    #[cfg(not(all(feature = "std", not(loom))))]
    true
}

/// Whether the thread owning `me` may take the lock past queued waiters now (and counts it).
#[inline(always)]
pub(crate) fn may_bypass(me: Option<&Slot>) -> bool {
    let Some(s) = me else { return true };
    // Relaxed: only the slot's own thread touches `steals`.
    let left = s.steals.load(Ordering::Relaxed);
    if left != 0 {
        s.steals.store(left - 1, Ordering::Relaxed);
        return true;
    }
    spent(s)
}

/// The budget is spent: steal on (another [`CHECK_EVERY`]) only if the process is not crowded.
#[cold]
#[inline(never)]
fn spent(s: &Slot) -> bool {
    if steal_budget() == 0 || crowded() {
        return false;
    }
    s.steals.store(CHECK_EVERY - 1, Ordering::Relaxed);
    true
}

/// The thread owning `me` took a lock through the queue: its budget is restored, adjusted by
/// how far it is behind (more) or ahead of (less) the average in steals used ("Fair share").
#[inline]
pub(crate) fn restart(me: &Slot) {
    let b = steal_budget();
    #[cfg(all(feature = "std", not(loom)))]
    let b = fair_budget(b, deficit(me));
    me.steals.store(b, Ordering::Relaxed);
    me.run_base.store(b, Ordering::Relaxed);
}

/// The steal budget of a run: `budget` plus the thread's `deficit` (negative: it is ahead),
/// within [budget / 4, 2 x budget] (and `u32`).
#[cfg_attr(not(all(feature = "std", not(loom))), allow(dead_code))]
fn fair_budget(budget: u32, deficit: i64) -> u32 {
    let b = i64::from(budget);
    let max = (2 * b).min(i64::from(u32::MAX));
    // The clamp keeps the value within `u32`.
    (b + deficit).clamp(b / 4, max) as u32
}

/// Steals used by all accounted threads in their finished runs, and how many threads they are.
#[cfg(all(feature = "std", not(loom)))]
static USED_SUM: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
#[cfg(all(feature = "std", not(loom)))]
static USERS: AtomicUsize = AtomicUsize::new(0);

/// The thread owning `s` joins a queue: its run of steals ends; adds it to its and the
/// process-wide count (one shared RMW per run, not per steal). A thread's first run starts it
/// at the current average, so that a newcomer is neither owed nor owing.
#[inline]
pub(crate) fn end_run(s: &Slot) {
    #[cfg(all(feature = "std", not(loom)))]
    {
        // Relaxed throughout: a heuristic count; only the slot's own thread writes its fields.
        let left = s.steals.load(Ordering::Relaxed);
        let run = s.run_base.load(Ordering::Relaxed).saturating_sub(left) as u64;
        s.run_base.store(left, Ordering::Relaxed);
        if s.counted.load(Ordering::Relaxed) == 0 {
            let users = USERS.load(Ordering::Relaxed) as u64;
            let avg = USED_SUM
                .load(Ordering::Relaxed)
                .checked_div(users)
                .unwrap_or(0);
            s.used.store(avg, Ordering::Relaxed);
            USED_SUM.fetch_add(avg, Ordering::Relaxed);
            USERS.fetch_add(1, Ordering::Relaxed);
            s.counted.store(1, Ordering::Relaxed);
        }
        if run != 0 {
            s.used
                .store(s.used.load(Ordering::Relaxed) + run, Ordering::Relaxed);
            USED_SUM.fetch_add(run, Ordering::Relaxed);
        }
    }
    #[cfg(not(all(feature = "std", not(loom))))]
    let _ = s;
}

/// The slot `s` is given back: its thread leaves the accounting.
#[cfg(feature = "std")]
// Under loom only the models give slots back (thread-local destructors do not).
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn forget(s: &Slot) {
    // The next claimant's first run starts from an empty budget (`registry::release`).
    s.run_base.store(0, Ordering::Relaxed);
    #[cfg(all(feature = "std", not(loom)))]
    if s.counted.swap(0, Ordering::Relaxed) != 0 {
        USED_SUM.fetch_sub(s.used.load(Ordering::Relaxed), Ordering::Relaxed);
        USERS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many steals the thread owning `s` is behind the average of the accounted threads,
/// counting its current run (negative: ahead).
#[cfg(all(feature = "std", not(loom)))]
pub(crate) fn deficit(s: &Slot) -> i64 {
    if s.counted.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    let users = USERS.load(Ordering::Relaxed).max(1) as i64;
    let avg = USED_SUM.load(Ordering::Relaxed) as i64 / users;
    let current = s
        .run_base
        .load(Ordering::Relaxed)
        .saturating_sub(s.steals.load(Ordering::Relaxed));
    avg - (s.used.load(Ordering::Relaxed) as i64 + current as i64)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::fair_budget;

    #[test]
    fn fair_budget_adds_the_deficit_within_bounds() {
        assert_eq!(fair_budget(4096, 0), 4096);
        assert_eq!(fair_budget(4096, 1000), 5096);
        assert_eq!(fair_budget(4096, -1000), 3096);
        assert_eq!(fair_budget(4096, 1 << 40), 8192);
        assert_eq!(fair_budget(4096, -(1 << 40)), 1024);
        // 0 = never steal past waiters, whatever the deficit.
        assert_eq!(fair_budget(0, 5000), 0);
        // The largest budget does not wrap around.
        assert_eq!(fair_budget(u32::MAX - 1, i64::from(u32::MAX)), u32::MAX);
        assert_eq!(fair_budget(u32::MAX - 1, 0), u32::MAX - 1);
    }
}
