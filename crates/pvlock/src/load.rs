//! How loaded the process is: threads contending for pvlock locks against the CPUs it may use.
//!
//! A *contender* is a thread that has entered a pvlock slow path (the lock was not free) within
//! the last one or two epochs of [`EPOCH_NS`](crate::tuning::EPOCH_NS) (10 ms), or that is
//! blocked in one now (a waiter behind a lock held for long registers once, then sleeps through
//! many epochs: it still waits). Contenders are
//! the threads that keep asking for CPU time to make progress on pvlock locks, whether they spin,
//! sleep in a queue, hold a lock or run between acquisitions; when there are more of them than
//! CPUs, some are always preempted, and spinning for one of them is wasted. A thread that stops
//! contending stops counting within two epochs: a thread pool that contended once is not loaded
//! forever. (Counting only the threads queued at this instant undercounts: with 16 threads on
//! 2 CPUs most are running or preempted between acquisitions at any moment, not queued.)
//!
//! A thread registers itself ([`Seen::contend`]) on every slow-path entry, at most once per
//! epoch: one shared RMW per thread per 10 ms. Reading the clock is what moves the epoch on, and
//! only waiting threads read it: a thread that is about to queue, block or yield (the clock read
//! is small beside that), and [`Load::now`] where its answer would be "crowded". Every other
//! entry registers in the epoch last read, so threads <= CPUs, which take the slow path all the
//! time without waiting, never read the clock on it. The counts age with the clock: a process
//! that has gone quiet is not crowded, even when nobody has registered since, because the
//! `Load::now` that would say "crowded" reads the clock first. Without `std` there is no clock and
//! no CPU count: nothing is ever crowded.
//!
//! The lock code takes a [`Load`] snapshot when it enters a slow path and again after each
//! wake-up, and hands it by value to the policy ([`crate::policy`]), which makes every decision
//! from that one snapshot.

// The counts are heuristics: no decision they feed affects correctness. Under loom they are kept
// out of the model (plain atomics, per test thread: a model's threads all run on its test's
// thread), so that they add no interleavings while the policy still reads them.
use core::sync::atomic::{AtomicU32, Ordering};

/// One reading of how loaded the process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Load {
    /// Threads that contended for pvlock locks in the last one or two epochs (module docs).
    pub(crate) contenders: u32,
    /// CPUs this process may use; `None` where pvlock cannot tell (without `std`).
    pub(crate) cpus: Option<usize>,
}

impl Load {
    /// The load now.
    #[inline]
    pub(crate) fn now() -> Load {
        let cpus = crate::sync::cpus();
        with_epochs(|ep| {
            // The larger count: the blocked threads are mostly among the recent ones too.
            let blocked = ep.blocked.load(Ordering::Relaxed);
            let mut load = Load {
                contenders: ep.contenders().max(blocked),
                cpus,
            };
            if load.crowded() {
                // The counts age only when someone reads the clock: after a crowded spell with
                // nobody waiting since, they still say crowded. Move the epoch on and count
                // again; the clock is read only here, where the answer would be "crowded".
                ep.read_clock(epoch_now);
                load.contenders = ep.contenders().max(blocked);
            }
            load
        })
    }

    /// More threads contend than there are CPUs: not every contender can run, so a thread that
    /// joins a queue may wait for sleeping threads ahead of it, and a waiter that spins takes a
    /// CPU from one that could make progress. `false` where the CPU count is unknown (without
    /// `std`: a guest kernel's waiters are its CPUs, each one running).
    #[inline]
    pub(crate) fn crowded(self) -> bool {
        self.cpus.is_some_and(|c| self.contenders as usize > c)
    }
}

/// A thread's registration as a contender: the part of its slot that this module owns. Only
/// the slot's own thread writes it.
pub(crate) struct Seen {
    /// The epoch it last registered in (0 = none).
    epoch: AtomicU32,
}

impl Seen {
    pub(crate) const fn new() -> Seen {
        Seen {
            epoch: AtomicU32::new(0),
        }
    }

    /// The thread enters a slow path (`waits`: it is about to queue, block or yield); registers
    /// it as a contender in the current epoch, if it has not yet. Only a waiting thread (or the
    /// first one of the process) reads the clock to move the epoch on; any other registers in
    /// the epoch last read (module docs).
    #[inline]
    pub(crate) fn contend(&self, waits: bool) {
        with_epochs(|ep| ep.contend(&self.epoch, waits, epoch_now));
    }

    /// The slot is given back: the next thread starts unregistered.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) fn reset(&self) {
        self.epoch.store(0, Ordering::Relaxed);
    }
}

/// The current epoch (1, 2, ...: one per `EPOCH_NS` since the process first asked), or `None`
/// without a clock.
#[cfg(all(feature = "std", not(loom)))]
fn epoch_now() -> Option<u32> {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let ns = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos();
    Some((ns / u128::from(crate::tuning::EPOCH_NS)) as u32 + 1)
}

/// Without `std`: no clock.
#[cfg(all(not(feature = "std"), not(loom)))]
fn epoch_now() -> Option<u32> {
    None
}

/// Under loom: one epoch for the whole model.
#[cfg(loom)]
fn epoch_now() -> Option<u32> {
    Some(1)
}

/// Runs `wait`, a backend wait in which the thread blocks, counted as a blocked contender.
#[inline]
pub(crate) fn blocked<R>(wait: impl FnOnce() -> R) -> R {
    // Relaxed: a heuristic count, like the epochs'.
    with_epochs(|ep| ep.blocked.fetch_add(1, Ordering::Relaxed));
    let r = wait();
    with_epochs(|ep| ep.blocked.fetch_sub(1, Ordering::Relaxed));
    r
}

/// Contenders per epoch (the current epoch's and the previous one's counts, by epoch parity),
/// and the threads blocked now.
struct Epochs {
    current: AtomicU32,
    counts: [AtomicU32; 2],
    blocked: AtomicU32,
}

impl Epochs {
    const fn new() -> Epochs {
        Epochs {
            current: AtomicU32::new(0),
            counts: [AtomicU32::new(0), AtomicU32::new(0)],
            blocked: AtomicU32::new(0),
        }
    }

    /// A thread whose registration is `seen` enters a slow path ([`Seen::contend`]); `clock`
    /// is read only if it `waits` or nobody has read it yet.
    fn contend(&self, seen: &AtomicU32, waits: bool, clock: impl FnOnce() -> Option<u32>) {
        // Relaxed: heuristic counts; only the owner thread touches `seen`.
        let mut e = self.current.load(Ordering::Relaxed);
        if waits || e == 0 {
            let Some(current) = self.read_clock(clock) else {
                return;
            };
            e = current;
        }
        if seen.load(Ordering::Relaxed) != e {
            seen.store(e, Ordering::Relaxed);
            self.register(e);
        }
    }

    /// Reads the clock and moves the epoch on to it. Returns the epoch now current: the clock's,
    /// or a later one if another thread read the clock after us and moved it on first; `None`
    /// without a clock.
    fn read_clock(&self, clock: impl FnOnce() -> Option<u32>) -> Option<u32> {
        let now = clock()?;
        self.advance(now);
        Some(self.current.load(Ordering::Relaxed))
    }

    /// The clock says epoch `e`: the first thread to see a new epoch starts its count.
    /// Relaxed throughout: heuristic counts; a lost or doubled registration makes one decision a
    /// little off for one epoch.
    fn advance(&self, e: u32) {
        let cur = self.current.load(Ordering::Relaxed);
        if e > cur
            && self
                .current
                .compare_exchange(cur, e, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.counts[(e & 1) as usize].store(0, Ordering::Relaxed);
            if e > cur + 1 {
                // The previous epoch passed without anyone: nobody contended in it.
                self.counts[((e + 1) & 1) as usize].store(0, Ordering::Relaxed);
            }
        }
    }

    /// A thread contends in epoch `e` (the current one, or one that has just passed).
    fn register(&self, e: u32) {
        self.counts[(e & 1) as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Threads that contended in the current epoch or the one before it (the larger count: a
    /// thread that contends all the time is in both); "current" is the last epoch the clock was
    /// read in, however long ago (an upper bound without reading the clock).
    fn contenders(&self) -> u32 {
        // The other parity holds the previous epoch's count: `advance` clears it when the
        // previous epoch passed without anyone reading the clock.
        let count = |i: usize| self.counts[i].load(Ordering::Relaxed);
        count(0).max(count(1))
    }
}

#[cfg(not(loom))]
#[inline(always)]
fn with_epochs<R>(f: impl FnOnce(&Epochs) -> R) -> R {
    static EPOCHS: Epochs = Epochs::new();
    f(&EPOCHS)
}

#[cfg(loom)]
fn with_epochs<R>(f: impl FnOnce(&Epochs) -> R) -> R {
    std::thread_local! {
        static EPOCHS: Epochs = const { Epochs::new() };
    }
    EPOCHS.with(f)
}

/// Under loom: a fresh count for each execution of a model (the models call it).
#[cfg(all(loom, test))]
pub(crate) fn reset_for_model() {
    with_epochs(|e| {
        e.current.store(0, Ordering::Relaxed);
        e.counts.iter().for_each(|c| c.store(0, Ordering::Relaxed));
        e.blocked.store(0, Ordering::Relaxed);
    });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A thread that reads the clock in epoch `e` and registers in it.
    fn reg(ep: &Epochs, e: u32) {
        ep.advance(e);
        ep.register(e);
    }

    #[test]
    fn crowded_when_contenders_outnumber_the_known_cpus() {
        for contenders in 0..6 {
            let l = Load {
                contenders,
                cpus: Some(3),
            };
            assert_eq!(l.crowded(), contenders > 3);
        }
        // Unknown CPUs (no `std`): never crowded, whatever the count.
        let l = Load {
            contenders: 7,
            cpus: None,
        };
        assert!(!l.crowded());
    }

    #[test]
    fn contenders_of_two_epochs_count_and_older_ones_drop_out() {
        let ep = Epochs::new();
        for _ in 0..5 {
            reg(&ep, 1);
        }
        assert_eq!(ep.contenders(), 5);
        // Two of them go on into epoch 2: the previous epoch still counts.
        reg(&ep, 2);
        reg(&ep, 2);
        assert_eq!(ep.contenders(), 5);
        // In epoch 3 only those two are seen: the three that stopped in epoch 1 are gone.
        reg(&ep, 3);
        reg(&ep, 3);
        assert_eq!(ep.contenders(), 2);
        // After a quiet spell (epoch 9), only the newcomer counts.
        reg(&ep, 9);
        assert_eq!(ep.contenders(), 1);
    }

    /// Only a waiting entry reads the clock; the others register once in the epoch last read,
    /// and again after the clock has moved it on.
    #[test]
    fn only_waiting_entries_read_the_clock() {
        let ep = Epochs::new();
        let (a, b) = (AtomicU32::new(0), AtomicU32::new(0));
        let reads = core::cell::Cell::new(0);
        let clock = |e: u32| {
            let reads = &reads;
            move || {
                reads.set(reads.get() + 1);
                Some(e)
            }
        };
        // The first entry of the process reads it (epoch 3); later plain entries do not, and a
        // thread registers once per epoch however often it enters.
        ep.contend(&a, false, clock(3));
        for _ in 0..10 {
            ep.contend(&a, false, clock(99));
            ep.contend(&b, false, clock(99));
        }
        assert_eq!((reads.get(), ep.contenders()), (1, 2));
        // A waiting entry reads it and moves the epoch on (4); `a` registers there at once, `b`
        // at its next plain entry; epoch 3's count still stands beside epoch 4's.
        ep.contend(&a, true, clock(4));
        assert_eq!((reads.get(), ep.current.load(Ordering::Relaxed)), (2, 4));
        ep.contend(&b, false, clock(99));
        assert_eq!((reads.get(), ep.contenders()), (2, 2));
        // A waiting entry whose clock read is behind (another thread moved the epoch on after
        // it read the clock) registers in the current epoch, not the older one.
        let c = AtomicU32::new(0);
        ep.contend(&c, true, clock(3));
        assert_eq!(c.load(Ordering::Relaxed), 4);
        assert_eq!(ep.contenders(), 3);
        // Without a clock (no `std`) nothing registers.
        let none = Epochs::new();
        none.contend(&a, true, || None);
        none.contend(&a, false, || None);
        assert_eq!(none.contenders(), 0);
    }

    /// Threads blocked now count however long ago they registered: nested `blocked` calls stand
    /// for CPUs + 1 threads asleep in a wait.
    #[test]
    fn blocked_threads_make_the_process_crowded() {
        fn nested(depth: usize) -> Load {
            if depth == 0 {
                Load::now()
            } else {
                blocked(|| nested(depth - 1))
            }
        }
        let cpus = crate::sync::cpus().expect("std knows the CPU count");
        let load = nested(cpus + 1);
        assert!(
            load.contenders as usize > cpus && load.crowded(),
            "{load:?}"
        );
    }

    #[test]
    fn counts_age_with_the_clock_when_nobody_registers() {
        let ep = Epochs::new();
        for _ in 0..5 {
            reg(&ep, 4);
        }
        // Until the clock is read again, the last counts stand.
        assert_eq!(ep.contenders(), 5);
        // In epoch 5 nobody has registered yet: epoch 4's contenders still count...
        ep.advance(5);
        assert_eq!(ep.contenders(), 5);
        // ...and one epoch later they are gone, though nobody registered since.
        ep.advance(6);
        assert_eq!(ep.contenders(), 0);
        // A long quiet spell clears both counts at once.
        let quiet = Epochs::new();
        reg(&quiet, 4);
        quiet.advance(60);
        assert_eq!(quiet.contenders(), 0);
        // A clock read that is behind (another thread moved the epoch on first) changes nothing.
        reg(&ep, 7);
        ep.advance(6);
        assert_eq!(
            (ep.current.load(Ordering::Relaxed), ep.contenders()),
            (7, 1)
        );
    }
}
