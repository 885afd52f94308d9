//! Lock event counters (feature `stats`), named after the kernel's `lock_events_list.h`.
//!
//! Counting must not create the contention it measures, so the counters are sharded: each thread
//! counts into one of 16 cache-line-aligned shards (chosen once per thread) with a relaxed
//! add, and [`snapshot`] sums the shards. Without the feature every `count` call is an empty inline
//! function and the counters do not exist.
//!
//! The events ([`Event`]):
//!
//! | name | meaning |
//! |---|---|
//! | `lock_slowpath` | a `lock` missed the fast path |
//! | `lock_pending` | `Queued`: took the lock through the pending bit, without a queue node |
//! | `lock_no_node` | no waiter slot was free: spun on `try_lock` without a node |
//! | `lock_handed` | a fair unlock handed the lock to the waiter next in line (`Queued`) |
//! | `pv_lock_stealing` | `Queued` pv: a newcomer took the lock ahead of the queue |
//! | `pv_wait_node` | a queued (non-head) waiter, or a `Ticket`/`Byte` waiter, blocked |
//! | `pv_wait_head` | the `Queued` head blocked |
//! | `pv_wait_again` | the `Queued` head blocked again after a wake-up that did not get it the lock |
//! | `pv_wait_early` | a waiter blocked before its budget, its predecessor not running |
//! | `pv_kick_unlock` | an unlock kicked a blocked waiter |
//! | `pv_spin_yield` | a `Queued` waiter spinning with backoff yielded the CPU between two reads of the lock (a stealer while not crowded, or a thread without a node) |
//! | `pv_link_yield` | a `Queued` new owner yielded the CPU while it waited for its successor to link its node (the successor preempted between joining the queue and linking) |
//! | `pv_spin_skip` | a `Queued` waiter that joined the queue because its stealer spin ran out skipped a spin phase (once as a queued waiter, once as head, at most) |
//! | `pv_crowded` | a pv waiter read the load (at slow-path entry or after a wake-up) and found the process crowded: more threads contending than CPUs, so the policy's crowded rules applied ([`crate::tuning`]) |
//! | `pv_spurious_wakeup` | a wait returned without the awaited change |
//! | `pv_hash_hops` | extra probes in the `Queued` lock-to-node hash table |
//! | `pv_queued_budget` | `Queued` pv: joined the queue because its steal budget ([`crate::tuning`]) was spent |
//! | `pv_queued_pending` | `Queued` pv: joined the queue because the head was spinning (pending set) |
//! | `pv_queued_spin` | `Queued` pv: joined the queue because the lock stayed held for the whole spin budget |
//! | `pv_queued_ns` | `Queued` pv: nanoseconds spent in queues, summed over threads (with `std`) |
//! | `timed_wait` | a timed waiter (`try_lock_for`, `try_lock_until`) of `Queued` or `Byte` blocked |
//! | `timed_kick` | an unlock kicked a blocked timed waiter |
//! | `timed_out` | a timed acquisition gave up at its deadline |
//! | `rw_read_slowpath` | an `RwLock` read missed the fast path and queued on the wait lock |
//! | `rw_write_slowpath` | an `RwLock` write missed the fast path and queued on the wait lock |
//! | `rw_wait` | the `RwLock` wait-lock holder blocked: a reader waiting for the writer, or a writer (or upgrader) waiting for the readers to leave |
//! | `rw_kick` | an `RwLock` release kicked the blocked wait-lock holder |
//! | `cv_wait` | a `Condvar` waiter blocked |
//! | `cv_chain` | a waiter woken by `notify_all` woke the next one, once it held the mutex (no thundering herd) |
//!
//! `lock_handed`, `pv_spin_yield`, `pv_link_yield`, `pv_spin_skip`, `pv_crowded` and the last
//! four are pvlock's own (the kernel has neither a fair unlock, nor yielding waiters, nor a load
//! regime, nor a steal budget to run out of). The last four say where
//! a pv `Queued` lock's waiters spend their time: a queue of sleeping waiters moves one wake-up at
//! a time, so `pv_queued_ns` divided by the threads' total time is the share of them that is out
//! of the game, and divided by the three `pv_queued_*` counts the mean stay in the queue.
//! `pvlock bench` built with `--features stats` prints both. The `timed_*`, `rw_*` and `cv_*`
//! events count the timed acquisitions, the `RwLock` and the `Condvar`.

/// Lock events; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
#[allow(missing_docs)]
pub enum Event {
    LockSlowpath,
    LockPending,
    LockNoNode,
    LockHanded,
    PvLockStealing,
    PvWaitNode,
    PvWaitHead,
    PvWaitAgain,
    PvWaitEarly,
    PvKickUnlock,
    PvSpinYield,
    PvLinkYield,
    PvSpinSkip,
    PvCrowded,
    PvSpuriousWakeup,
    PvHashHops,
    PvQueuedBudget,
    PvQueuedPending,
    PvQueuedSpin,
    PvQueuedNs,
    TimedWait,
    TimedKick,
    TimedOut,
    RwReadSlowpath,
    RwWriteSlowpath,
    RwWait,
    RwKick,
    CvWait,
    CvChain,
}

impl Event {
    /// Every event, in report order.
    pub const ALL: [Event; 29] = [
        Event::LockSlowpath,
        Event::LockPending,
        Event::LockNoNode,
        Event::LockHanded,
        Event::PvLockStealing,
        Event::PvWaitNode,
        Event::PvWaitHead,
        Event::PvWaitAgain,
        Event::PvWaitEarly,
        Event::PvKickUnlock,
        Event::PvSpinYield,
        Event::PvLinkYield,
        Event::PvSpinSkip,
        Event::PvCrowded,
        Event::PvSpuriousWakeup,
        Event::PvHashHops,
        Event::PvQueuedBudget,
        Event::PvQueuedPending,
        Event::PvQueuedSpin,
        Event::PvQueuedNs,
        Event::TimedWait,
        Event::TimedKick,
        Event::TimedOut,
        Event::RwReadSlowpath,
        Event::RwWriteSlowpath,
        Event::RwWait,
        Event::RwKick,
        Event::CvWait,
        Event::CvChain,
    ];

    /// The kernel's name of the event.
    pub const fn name(self) -> &'static str {
        match self {
            Event::LockSlowpath => "lock_slowpath",
            Event::LockPending => "lock_pending",
            Event::LockNoNode => "lock_no_node",
            Event::LockHanded => "lock_handed",
            Event::PvLockStealing => "pv_lock_stealing",
            Event::PvWaitNode => "pv_wait_node",
            Event::PvWaitHead => "pv_wait_head",
            Event::PvWaitAgain => "pv_wait_again",
            Event::PvWaitEarly => "pv_wait_early",
            Event::PvKickUnlock => "pv_kick_unlock",
            Event::PvSpinYield => "pv_spin_yield",
            Event::PvLinkYield => "pv_link_yield",
            Event::PvSpinSkip => "pv_spin_skip",
            Event::PvCrowded => "pv_crowded",
            Event::PvSpuriousWakeup => "pv_spurious_wakeup",
            Event::PvHashHops => "pv_hash_hops",
            Event::PvQueuedBudget => "pv_queued_budget",
            Event::PvQueuedPending => "pv_queued_pending",
            Event::PvQueuedSpin => "pv_queued_spin",
            Event::PvQueuedNs => "pv_queued_ns",
            Event::TimedWait => "timed_wait",
            Event::TimedKick => "timed_kick",
            Event::TimedOut => "timed_out",
            Event::RwReadSlowpath => "rw_read_slowpath",
            Event::RwWriteSlowpath => "rw_write_slowpath",
            Event::RwWait => "rw_wait",
            Event::RwKick => "rw_kick",
            Event::CvWait => "cv_wait",
            Event::CvChain => "cv_chain",
        }
    }
}

const EVENTS: usize = Event::ALL.len();

/// A copy of all counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    counts: [u64; EVENTS],
}

impl Snapshot {
    /// The count of one event.
    pub fn get(&self, e: Event) -> u64 {
        self.counts[e as usize]
    }

    /// `(name, count)` for every event, in report order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Event::ALL.iter().map(move |&e| (e.name(), self.get(e)))
    }

    /// Counts since `earlier` (saturating, in case of a [`reset`] in between).
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let mut counts = [0; EVENTS];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = self.counts[i].saturating_sub(earlier.counts[i]);
        }
        Snapshot { counts }
    }
}

#[cfg(all(feature = "stats", not(loom)))]
mod imp {
    use super::*;
    use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    /// Number of counter shards: threads beyond it share shards (and their cache lines).
    const SHARDS: usize = 16;

    #[repr(align(128))]
    struct Shard([AtomicU64; EVENTS]);

    static COUNTERS: [Shard; SHARDS] =
        [const { Shard([const { AtomicU64::new(0) }; EVENTS]) }; SHARDS];

    #[cfg(feature = "std")]
    fn shard() -> usize {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        std::thread_local! {
            static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
        }
        MINE.try_with(|m| *m).unwrap_or(0)
    }
    #[cfg(not(feature = "std"))]
    fn shard() -> usize {
        let _ = AtomicUsize::new(0);
        0
    }

    #[inline]
    pub(crate) fn count(e: Event, n: u64) {
        // Relaxed: counters order nothing; a snapshot is a sum of independent counts.
        COUNTERS[shard()].0[e as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot() -> Snapshot {
        let mut counts = [0; EVENTS];
        for s in &COUNTERS {
            for (i, c) in counts.iter_mut().enumerate() {
                *c += s.0[i].load(Ordering::Relaxed);
            }
        }
        Snapshot { counts }
    }

    pub fn reset() {
        for s in &COUNTERS {
            for c in &s.0 {
                c.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// Under loom's tests the events are counted too, per OS thread (a model's threads all run on its
/// test's thread), outside the model: the models assert which paths they reached.
#[cfg(all(test, loom))]
mod imp {
    use super::*;
    use core::cell::Cell;

    std::thread_local! {
        static COUNTS: [Cell<u64>; EVENTS] = const { [const { Cell::new(0) }; EVENTS] };
    }

    #[inline]
    pub(crate) fn count(e: Event, n: u64) {
        COUNTS.with(|c| c[e as usize].set(c[e as usize].get() + n));
    }

    pub fn snapshot() -> Snapshot {
        let mut counts = [0; EVENTS];
        COUNTS.with(|c| {
            for (i, n) in counts.iter_mut().enumerate() {
                *n = c[i].get();
            }
        });
        Snapshot { counts }
    }

    pub fn reset() {
        COUNTS.with(|c| c.iter().for_each(|n| n.set(0)));
    }
}

#[cfg(all(not(all(feature = "stats", not(loom))), not(all(test, loom))))]
mod imp {
    use super::*;
    #[inline(always)]
    pub(crate) fn count(_e: Event, _n: u64) {}
    pub fn snapshot() -> Snapshot {
        Snapshot::default()
    }
    pub fn reset() {}
}

/// Counts one occurrence of `e` (nothing without the `stats` feature).
#[inline(always)]
pub(crate) fn count(e: Event) {
    imp::count(e, 1)
}

/// Counts `n` occurrences of `e` (nothing without the `stats` feature).
#[inline(always)]
pub(crate) fn count_n(e: Event, n: u64) {
    imp::count(e, n)
}

/// Measures a span of time into an event (with `stats` and `std`; otherwise an empty type).
pub(crate) struct Timer {
    #[cfg(all(feature = "stats", feature = "std", not(loom)))]
    start: std::time::Instant,
}

impl Timer {
    /// Starts the clock.
    #[inline(always)]
    pub(crate) fn start() -> Timer {
        Timer {
            #[cfg(all(feature = "stats", feature = "std", not(loom)))]
            start: std::time::Instant::now(),
        }
    }

    /// Adds the nanoseconds since [`Timer::start`] to `e`.
    #[inline(always)]
    pub(crate) fn stop(self, e: Event) {
        #[cfg(all(feature = "stats", feature = "std", not(loom)))]
        count_n(
            e,
            u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX),
        );
        let _ = e;
    }
}

/// The counters now (all zero without the `stats` feature).
pub fn snapshot() -> Snapshot {
    imp::snapshot()
}

/// Sets every counter to zero.
pub fn reset() {
    imp::reset()
}
