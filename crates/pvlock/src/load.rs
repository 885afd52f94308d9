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
//! A thread registers itself ([`Seen::contend`]) when it joins a queue, blocks or yields the CPU,
//! and on every 32nd slow-path entry otherwise ([`CONTEND_SAMPLE`](crate::tuning::CONTEND_SAMPLE)), so that the clock is read rarely on a path that
//! threads <= CPUs take all the time. The counts age with the clock: where they would say
//! "crowded", [`Load::now`] checks them against the current epoch, so a process that has gone
//! quiet is not crowded even when nobody has registered since. Each thread registers at most once per epoch: one shared RMW per thread per
//! 10 ms. Without `std` there is no clock and no CPU count: nothing is ever crowded.
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
                contenders: ep.contenders(None).max(blocked),
                cpus,
            };
            if load.crowded() {
                // The counts age only when a thread registers in a new epoch: after a crowded
                // spell with nobody registering since, they still say crowded. Check them
                // against the clock, which is read only here, where the answer would be
                // "crowded".
                load.contenders = ep.contenders(epoch_now()).max(blocked);
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
    /// Slow-path entries since it last read the clock.
    entries: AtomicU32,
}

impl Seen {
    pub(crate) const fn new() -> Seen {
        Seen {
            epoch: AtomicU32::new(0),
            entries: AtomicU32::new(0),
        }
    }

    /// The thread enters a slow path (`always`: it is about to queue or block); registers it as
    /// a contender in the current epoch, reading the clock only every
    /// [`CONTEND_SAMPLE`](crate::tuning::CONTEND_SAMPLE)th time unless `always`.
    #[inline]
    pub(crate) fn contend(&self, always: bool) {
        // Relaxed: only the owner thread touches its registration.
        let n = self.entries.load(Ordering::Relaxed).wrapping_add(1);
        if !always && n % crate::tuning::CONTEND_SAMPLE != 0 {
            self.entries.store(n, Ordering::Relaxed);
            return;
        }
        self.entries.store(0, Ordering::Relaxed);
        if let Some(e) = epoch_now() {
            if self.epoch.load(Ordering::Relaxed) != e {
                self.epoch.store(e, Ordering::Relaxed);
                with_epochs(|ep| ep.register(e));
            }
        }
    }

    /// The slot is given back: the next thread starts unregistered.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) fn reset(&self) {
        self.epoch.store(0, Ordering::Relaxed);
        self.entries.store(0, Ordering::Relaxed);
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

    /// A thread contends in epoch `e`. The first thread to see a new epoch starts its count.
    /// Relaxed throughout: heuristic counts; a lost or doubled registration makes one decision a
    /// little off for one epoch.
    fn register(&self, e: u32) {
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
        self.counts[(e & 1) as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Threads that contended in epoch `now` or the one before it (the larger count: a thread
    /// that contends all the time is in both). `None`: the last two epochs anyone registered in,
    /// however long ago (an upper bound, without reading the clock).
    fn contenders(&self, now: Option<u32>) -> u32 {
        let cur = self.current.load(Ordering::Relaxed);
        let count = |e: u32| self.counts[(e & 1) as usize].load(Ordering::Relaxed);
        match now {
            // Nobody registered in `now` or the epoch before: nobody contends.
            Some(now) if now > cur.saturating_add(1) => 0,
            // Nobody registered in `now` yet: the previous epoch (`cur`) is all there is; the
            // other count is from the epoch before it.
            Some(now) if now == cur.saturating_add(1) => count(cur),
            _ => count(cur).max(count(cur.wrapping_add(1))),
        }
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
            ep.register(1);
        }
        assert_eq!(ep.contenders(None), 5);
        assert_eq!(ep.contenders(Some(1)), 5);
        // Two of them go on into epoch 2: the previous epoch still counts.
        ep.register(2);
        ep.register(2);
        assert_eq!(ep.contenders(Some(2)), 5);
        // In epoch 3 only those two are seen: the three that stopped in epoch 1 are gone.
        ep.register(3);
        ep.register(3);
        assert_eq!(ep.contenders(Some(3)), 2);
        // After a quiet spell (epoch 9), only the newcomer counts.
        ep.register(9);
        assert_eq!(ep.contenders(Some(9)), 1);
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
            ep.register(4);
        }
        // Without the clock, the last counts stand.
        assert_eq!(ep.contenders(None), 5);
        // In epoch 5 nobody has registered yet: epoch 4's contenders still count...
        assert_eq!(ep.contenders(Some(5)), 5);
        // ...and one epoch later they are gone, though nobody registered since.
        assert_eq!(ep.contenders(Some(6)), 0);
        assert_eq!(ep.contenders(Some(60)), 0);
        // A newcomer in epoch 5 leaves epoch 4's count the larger one while both are recent.
        ep.register(5);
        assert_eq!(ep.contenders(Some(5)), 5);
        assert_eq!(ep.contenders(Some(6)), 1);
    }
}
