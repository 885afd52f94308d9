//! How loaded the process is: threads waiting for pvlock locks against the CPUs it may use.
//!
//! One counter, [`Waiting`], counts the threads that are waiting in earnest now: queued in a
//! `Queued` lock (from joining the queue to taking the lock as its head), or past their spin in
//! a `Ticket` or `Byte` slow path. A thread that only spins briefly at slow-path entry is not
//! counted (the common case with threads <= CPUs, which must stay cheap), nor is one that has
//! waited before but does not wait now: a thread pool that contended once is not loaded forever.
//!
//! The lock code takes a [`Load`] snapshot when it enters a slow path and again after each
//! wake-up, and hands it by value to the policy ([`crate::policy`]), which makes every decision
//! from that one snapshot.

/// One reading of how loaded the process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Load {
    /// Threads waiting in earnest for pvlock locks now (module docs).
    pub(crate) waiting: usize,
    /// CPUs this process may use; `None` where pvlock cannot tell (without `std`).
    pub(crate) cpus: Option<usize>,
}

impl Load {
    /// The load now.
    #[inline]
    pub(crate) fn now() -> Load {
        Load {
            // Relaxed: a heuristic; a stale count only makes one decision a little off.
            waiting: with_counter(|c| c.load(Ordering::Relaxed)),
            cpus: crate::sync::cpus(),
        }
    }

    /// At least as many threads wait as there are CPUs: not every waiter can run, so a thread
    /// that joins a queue may wait for sleeping threads ahead of it, and a waiter that spins
    /// takes a CPU from one that could make progress. `false` where the CPU count is unknown
    /// (without `std`: a guest kernel's waiters are its CPUs, each one running).
    #[inline]
    pub(crate) fn crowded(self) -> bool {
        self.cpus.is_some_and(|c| self.waiting >= c)
    }
}

// The counter is a heuristic: no decision it feeds affects correctness. Under loom it is kept
// out of the model (a plain atomic per test thread; a model's threads all run on its test's
// thread), so that it adds no interleavings while the policy still reads it.
use core::sync::atomic::{AtomicUsize, Ordering};

#[cfg(not(loom))]
#[inline(always)]
fn with_counter<R>(f: impl FnOnce(&AtomicUsize) -> R) -> R {
    static WAITING: AtomicUsize = AtomicUsize::new(0);
    f(&WAITING)
}

#[cfg(loom)]
fn with_counter<R>(f: impl FnOnce(&AtomicUsize) -> R) -> R {
    std::thread_local! {
        static WAITING: AtomicUsize = const { AtomicUsize::new(0) };
    }
    WAITING.with(f)
}

/// A thread waiting in earnest: counted from [`Waiting::start`] until dropped.
#[must_use = "the thread counts as waiting only while this is alive"]
pub(crate) struct Waiting(());

impl Waiting {
    /// Counts the calling thread as waiting.
    #[inline]
    pub(crate) fn start() -> Waiting {
        // Relaxed: a heuristic count, read by `Load::now`.
        with_counter(|c| c.fetch_add(1, Ordering::Relaxed));
        Waiting(())
    }
}

impl Drop for Waiting {
    #[inline]
    fn drop(&mut self) {
        with_counter(|c| c.fetch_sub(1, Ordering::Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::Load;

    #[test]
    fn crowded_when_waiters_fill_the_known_cpus() {
        for waiting in 0..6 {
            let l = Load {
                waiting,
                cpus: Some(3),
            };
            assert_eq!(l.crowded(), waiting >= 3);
        }
        // Unknown CPUs (no `std`): never crowded, whatever the count.
        let l = Load {
            waiting: 7,
            cpus: None,
        };
        assert!(!l.crowded());
    }
}
