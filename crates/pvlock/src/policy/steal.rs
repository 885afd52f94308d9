//! The steal account: how many times a running thread may still take a `Queued` lock past the
//! waiters queued for it, and how its steals compare with everyone else's (fair share).
//!
//! # The rule (bounded bypass)
//!
//! Oversubscribed, a pv `Queued` lock is mostly taken by *stealing*: the threads that are
//! running take the free lock while the queued waiters sleep (the kernel's
//! `pv_hybrid_queued_unfair_trylock`), because waking a sleeper for every hand-over would leave
//! the lock idle for a wake-up each time. Unbounded, this lets the running threads keep the lock
//! among themselves while queued threads wait for tens of milliseconds (16 threads on 2 CPUs: the
//! slowest thread made 0.3-0.5x the acquisitions of the fastest).
//!
//! So while the process is crowded ([`Load::crowded`], and always where the CPU count is unknown),
//! a thread may steal past queued waiters (a queue tail is set) at most the steal budget's times
//! ([`crate::tuning`], 4096) between two passes through a queue; then it queues like everyone
//! else, and its budget is restored when it takes the lock as the queue head. The running threads
//! so rotate through the FIFO queue: every thread gets its turns. Taking a lock that nobody waits
//! for is not stealing and costs nothing here. A thread starts with an empty budget, so in a
//! crowded process its first steal past waiters queues it instead. Not crowded, stealing is not
//! bounded, as in the kernel: queued waiters then have CPUs and spin, and forcing a running thread
//! into a queue whose members may be preempted only adds their preemption to its wait.
//!
//! A count, not a time: a time budget also charges threads that steal rarely (across the bucket
//! locks of a hash table it made every thread queue on its first steal: 0.83x of `parking_lot`
//! instead of 1.00x), while a count charges each thread for the bypasses it made.
//!
//! # Fair share
//!
//! Crowded, `Queued` stealers spin only briefly before they queue ([`crate::policy`]), which lets
//! one running thread stream the lock but makes the length of each thread's runs a matter of
//! luck. The account evens it out: each thread's steals in finished runs are summed per thread
//! and process-wide (one shared add per run, when the thread joins a queue), and at each queue
//! pass a thread gets the budget plus its *deficit* against the average, within [budget / 4,
//! 2 x budget]: a thread behind makes longer runs, one ahead shorter ones. A thread's first run
//! starts it at the current average; a thread that exits leaves the sums.

use crate::load::Load;
// Plain atomics, also under loom: the account is heuristic state that only its thread writes and
// that no correctness argument uses, so the model checker need not interleave it.
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// One thread's steal account. Only the slot's own thread writes it.
pub(crate) struct Account {
    /// Steals past queued waiters left in the current run.
    left: AtomicU32,
    /// `left` when the current run began (its last queue pass or queue join).
    run_base: AtomicU32,
    /// Steals used in finished runs, on the scale of the process-wide average.
    used: AtomicU64,
    /// Whether `used` is counted in the process-wide sums.
    counted: AtomicU32,
}

impl Account {
    pub(crate) const fn new() -> Account {
        Account {
            left: AtomicU32::new(0),
            run_base: AtomicU32::new(0),
            used: AtomicU64::new(0),
            counted: AtomicU32::new(0),
        }
    }

    /// Whether the thread may take a lock past queued waiters now, given the load and the steal
    /// budget `budget` in force (and counts the steal). `load` is asked only when the budget is
    /// spent.
    #[inline(always)]
    pub(crate) fn may_bypass(&self, budget: u32, load: impl FnOnce() -> Load) -> bool {
        // Relaxed throughout: only the owner thread touches its account.
        let left = self.left.load(Ordering::Relaxed);
        if left != 0 {
            self.left.store(left - 1, Ordering::Relaxed);
            return true;
        }
        self.spent(budget, load())
    }

    /// The budget is spent: while bypassing is not bounded, the thread gets another budget of
    /// steals (this one included) before it looks at the load again, so the load is read once
    /// per budget, not per steal; the run goes on (its steals all count in `end_run`).
    #[cold]
    #[inline(never)]
    fn spent(&self, budget: u32, load: Load) -> bool {
        if budget == 0 || bounded(load) {
            return false;
        }
        self.left.store(budget - 1, Ordering::Relaxed);
        let base = self.run_base.load(Ordering::Relaxed);
        self.run_base
            .store(base.saturating_add(budget), Ordering::Relaxed);
        true
    }

    /// The thread took a lock through the queue: its budget is restored, plus its deficit
    /// against the average (fair share).
    #[inline]
    pub(crate) fn restart(&self, budget: u32) {
        let b = fair_budget(budget, self.deficit());
        self.left.store(b, Ordering::Relaxed);
        self.run_base.store(b, Ordering::Relaxed);
    }

    /// The thread joins a queue: its run of steals ends and is added to its own and the
    /// process-wide count (one shared RMW per run, not per steal). Its first run starts it at the
    /// current average, so that a newcomer is neither owed nor owing.
    #[inline]
    pub(crate) fn end_run(&self) {
        let left = self.left.load(Ordering::Relaxed);
        let run = u64::from(self.run_base.load(Ordering::Relaxed).saturating_sub(left));
        self.run_base.store(left, Ordering::Relaxed);
        with_sums(|s| {
            if self.counted.load(Ordering::Relaxed) == 0 {
                let users = s.users.load(Ordering::Relaxed) as u64;
                let avg = s
                    .used
                    .load(Ordering::Relaxed)
                    .checked_div(users)
                    .unwrap_or(0);
                self.used.store(avg, Ordering::Relaxed);
                s.used.fetch_add(avg, Ordering::Relaxed);
                s.users.fetch_add(1, Ordering::Relaxed);
                self.counted.store(1, Ordering::Relaxed);
            }
            if run != 0 {
                self.used
                    .store(self.used.load(Ordering::Relaxed) + run, Ordering::Relaxed);
                s.used.fetch_add(run, Ordering::Relaxed);
            }
        })
    }

    /// How many steals the thread is behind the average (negative: ahead), counting its current
    /// run.
    pub(crate) fn deficit(&self) -> i64 {
        if self.counted.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let avg = with_sums(|s| {
            let users = s.users.load(Ordering::Relaxed).max(1) as i64;
            s.used.load(Ordering::Relaxed) as i64 / users
        });
        let current = self
            .run_base
            .load(Ordering::Relaxed)
            .saturating_sub(self.left.load(Ordering::Relaxed));
        avg - (self.used.load(Ordering::Relaxed) as i64 + i64::from(current))
    }

    /// The slot is given back: its thread leaves the sums, and the next one starts with an
    /// empty budget.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) fn close(&self) {
        if self.counted.swap(0, Ordering::Relaxed) != 0 {
            with_sums(|s| {
                s.used
                    .fetch_sub(self.used.load(Ordering::Relaxed), Ordering::Relaxed);
                s.users.fetch_sub(1, Ordering::Relaxed);
            });
        }
        self.left.store(0, Ordering::Relaxed);
        self.run_base.store(0, Ordering::Relaxed);
        self.used.store(0, Ordering::Relaxed);
    }
}

/// Whether bypassing queued waiters is bounded by the budget under this load: while crowded, and
/// where the CPU count is unknown (module docs).
#[inline]
pub(crate) fn bounded(load: Load) -> bool {
    load.crowded() || load.cpus.is_none()
}

/// The steal budget of a run: `budget` plus the thread's `deficit` (negative: it is ahead),
/// within [budget / 4, 2 x budget] (and `u32`).
fn fair_budget(budget: u32, deficit: i64) -> u32 {
    let b = i64::from(budget);
    let max = (2 * b).min(i64::from(u32::MAX));
    // The clamp keeps the value within `u32`.
    (b + deficit).clamp(b / 4, max) as u32
}

/// The process-wide fair-share sums: steals used by all accounted threads in their finished
/// runs, and how many threads they are.
struct Sums {
    used: AtomicU64,
    users: AtomicUsize,
}

#[cfg(not(loom))]
fn with_sums<R>(f: impl FnOnce(&Sums) -> R) -> R {
    static SUMS: Sums = Sums {
        used: AtomicU64::new(0),
        users: AtomicUsize::new(0),
    };
    f(&SUMS)
}

/// Under loom, per test thread (a model's threads all run on it), outside the model.
#[cfg(loom)]
fn with_sums<R>(f: impl FnOnce(&Sums) -> R) -> R {
    std::thread_local! {
        static SUMS: Sums = const { Sums { used: AtomicU64::new(0), users: AtomicUsize::new(0) } };
    }
    SUMS.with(f)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fair_budget_adds_the_deficit_within_bounds() {
        assert_eq!(fair_budget(4096, 0), 4096);
        assert_eq!(fair_budget(4096, 1000), 5096);
        assert_eq!(fair_budget(4096, -1000), 3096);
        assert_eq!(fair_budget(4096, 1 << 40), 8192);
        assert_eq!(fair_budget(4096, -(1 << 40)), 1024);
        assert_eq!(fair_budget(0, 5000), 0);
        assert_eq!(fair_budget(u32::MAX - 1, i64::from(u32::MAX)), u32::MAX);
        assert_eq!(fair_budget(u32::MAX - 1, 0), u32::MAX - 1);
    }

    const CROWDED: Load = Load {
        contenders: 4,
        cpus: Some(2),
    };
    const CALM: Load = Load {
        contenders: 1,
        cpus: Some(2),
    };

    /// The budget alone decides: a run of exactly `budget` steals while crowded, then none until
    /// a queue pass restarts it; not crowded, steals go on (in rechecked batches).
    #[test]
    fn a_run_is_the_budget_while_crowded_and_unbounded_otherwise() {
        let a = Account::new();
        // A fresh account is empty: crowded, its first steal past waiters is refused.
        assert!(!a.may_bypass(300, || CROWDED));
        // Not crowded, it may steal, and it rechecks the load once per budget of steals.
        for _ in 0..3 * 300 + 10 {
            assert!(a.may_bypass(300, || CALM));
        }
        // ... and once crowded, at the next recheck it stops: after the rest of that budget.
        let mut allowed = 0;
        while a.may_bypass(300, || CROWDED) {
            allowed += 1;
        }
        // 910 steals took 4 grants of 300: the rest of the fourth, 290, is allowed.
        assert_eq!(allowed, 4 * 300 - 910);
        // The run is every steal of the grants (what `end_run` counts).
        let run = a.run_base.load(Ordering::Relaxed) - a.left.load(Ordering::Relaxed);
        assert_eq!(run, 910 + 290);
        // A queue pass: exactly `budget` steals (this account has no deficit: not counted).
        a.left.store(0, Ordering::Relaxed);
        a.restart(300);
        for i in 0..300 {
            assert!(a.may_bypass(300, || CROWDED), "steal {i} refused");
        }
        assert!(!a.may_bypass(300, || CROWDED), "steal 301 allowed");
        // Where the CPU count is unknown the budget holds, however few wait.
        let unknown = Load {
            contenders: 0,
            cpus: None,
        };
        assert!(!a.may_bypass(300, || unknown));
    }
}
