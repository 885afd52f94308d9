//! The loom harness shared by the three locks' models (`RUSTFLAGS="--cfg loom"`).
//!
//! `cargo test -p pvlock --release --lib loom` runs every model; each sets its own preemption
//! bound (an explicit `LOOM_MAX_PREEMPTIONS` overrides it). With `--release` the `debug_assert!`s
//! of the protocols are off; add `CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true` to check them too.
//!
//! Under loom the spin budget is one iteration and the steal budget one steal, so waiters block
//! and queue at once; the policy runs as it does natively, with the CPU count the model sets
//! ([`Model::cpus`]: unknown by default, as without `std`). Every model checks mutual exclusion
//! (a loom `UnsafeCell` reports an access the lock did not order as a causality violation) and
//! completion (a lost wake-up is a loom deadlock), and the models assert, through the lock event
//! counters (counted per test thread under loom), that they reached the path they are for.

use crate::slot::Slot;
use crate::stats::{self, Event};
use crate::sync::AtomicU32;
use crate::RawLock;
use core::cell::Cell;
use loom::cell::UnsafeCell;
use loom::sync::Arc;

loom::thread_local! {
    static MY_SLOT: Cell<Option<&'static Slot>> = Cell::new(None);
}

/// Park's wait/kick (`BLOCKING`) or a spin hint (the native protocol), with slots handed out by
/// the model instead of the registry's thread-local: loom's `join` returns before the joined
/// thread's thread-locals are dropped, so a slot given back by that destructor could touch the
/// registry's lazy statics after the model closure returned and loom freed them. The model's
/// main thread claims the slots before spawning and gives them back after joining.
pub(crate) struct ModelBackend<const BLOCKING: bool>;

/// The pv protocols' model backend.
pub(crate) type ModelPark = ModelBackend<true>;
/// The native protocols' model backend.
pub(crate) type ModelSpin = ModelBackend<false>;

// SAFETY: `wait`/`kick` are Park's (latched) when blocking, and a spin hint otherwise; `current`
// returns the slot the model gave this thread, a different one to each thread.
unsafe impl<const BLOCKING: bool> crate::backend::Backend for ModelBackend<BLOCKING> {
    const BLOCKING: bool = BLOCKING;
    fn current() -> Option<&'static Slot> {
        MY_SLOT.with(|s| s.get())
    }
    fn wait(me: &Slot, ptr: &AtomicU32, val: u32) {
        if BLOCKING {
            crate::backend::park::park_wait(me, ptr, val)
        } else {
            crate::sync::spin_loop()
        }
    }
    fn kick(target: &Slot) {
        if BLOCKING {
            crate::backend::park::park_kick(target)
        }
    }
    /// Untimed under loom (`park_wait_timeout`): a timed waiter must be kicked like any other.
    fn wait_timeout(me: &Slot, ptr: &AtomicU32, val: u32, timeout: core::time::Duration) {
        if BLOCKING {
            crate::backend::park::park_wait_timeout(me, ptr, val, timeout)
        } else {
            crate::sync::spin_loop()
        }
    }
}

/// One model: how many threads take the lock how often, and how.
#[derive(Clone, Copy)]
pub(crate) struct Model {
    threads: usize,
    rounds: usize,
    preemptions: usize,
    cs_yields: usize,
    cpus: Option<usize>,
}

impl Model {
    /// `threads` threads take the lock once each; preemption bound `preemptions`.
    pub(crate) fn new(threads: usize, preemptions: usize) -> Model {
        Model {
            threads,
            rounds: 1,
            preemptions,
            cs_yields: 0,
            cpus: None,
        }
    }

    /// Each thread takes the lock `n` times.
    pub(crate) fn rounds(self, n: usize) -> Model {
        Model { rounds: n, ..self }
    }

    /// The holder yields `n` times inside its critical section. Loom turns every spin of a waiter
    /// into a yield back to the holder, so without these the holder always finishes before a
    /// waiter has spun its (tiny) budget, and the paths where a waiter blocks while the lock is
    /// held (the queue head's hash + SLOW, the unlock's kick) are never reached.
    pub(crate) fn cs_yields(self, n: usize) -> Model {
        Model {
            cs_yields: n,
            ..self
        }
    }

    /// The policy sees this many CPUs (default: unknown, as without `std`).
    pub(crate) fn cpus(self, n: usize) -> Model {
        Model {
            cpus: Some(n),
            ..self
        }
    }

    /// Checks the lock made by `new`; `after` checks the final lock state. Returns the lock
    /// events counted over all executions.
    pub(crate) fn check<L: RawLock + 'static>(
        self,
        new: fn() -> L,
        after: fn(&L),
    ) -> stats::Snapshot {
        self.run(new, lock, unlock, after)
    }

    /// As [`check`](Self::check), with every unlock `unlock_fair`.
    pub(crate) fn check_fair<L: RawLock + 'static>(
        self,
        new: fn() -> L,
        unlock_fair: fn(&L),
        after: fn(&L),
    ) -> stats::Snapshot {
        self.run(new, lock, unlock_fair, after)
    }

    /// As [`check`](Self::check), with every acquisition `acquire(lock, thread)`, which may give
    /// up (`false`: a timed acquisition that timed out; the thread then skips that critical
    /// section). The total is checked against the acquisitions that succeeded.
    pub(crate) fn check_acquire<L: RawLock + 'static>(
        self,
        new: fn() -> L,
        acquire: fn(&L, usize) -> bool,
        after: fn(&L),
    ) -> stats::Snapshot {
        self.run(new, acquire, unlock, after)
    }

    fn run<L: RawLock + 'static>(
        self,
        new: fn() -> L,
        acquire: fn(&L, usize) -> bool,
        unlock: fn(&L),
        after: fn(&L),
    ) -> stats::Snapshot {
        stats::reset();
        crate::sync::set_model_cpus(self.cpus.unwrap_or(0));
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(self.preemptions);
        }
        let m = self;
        builder.check(move || {
            crate::load::reset_for_model();
            let s = Arc::new(Shared {
                lock: new(),
                counter: UnsafeCell::new(0),
                acquired: loom::sync::atomic::AtomicU32::new(0),
            });
            let slots: std::vec::Vec<&'static Slot> = (0..m.threads)
                .map(|_| crate::slot::claim().expect("loom slot table too small"))
                .collect();
            let handles: std::vec::Vec<_> = slots
                .iter()
                .enumerate()
                .map(|(t, &slot)| {
                    let s = s.clone();
                    loom::thread::spawn(move || {
                        MY_SLOT.with(|c| c.set(Some(slot)));
                        for _ in 0..m.rounds {
                            if !acquire(&s.lock, t) {
                                continue;
                            }
                            s.acquired
                                .fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
                            for _ in 0..m.cs_yields {
                                loom::thread::yield_now();
                            }
                            s.counter.with_mut(|c| {
                                // SAFETY: the lock is held; loom checks the claim.
                                unsafe { *c += 1 }
                            });
                            unlock(&s.lock);
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            for slot in slots {
                crate::slot::release(slot);
            }
            let total = s.counter.with(|c| {
                // SAFETY: all other threads have been joined.
                unsafe { *c }
            });
            let acquired = s.acquired.load(loom::sync::atomic::Ordering::Relaxed);
            assert_eq!(total, acquired);
            assert!(acquired <= (m.threads * m.rounds) as u32);
            after(&s.lock);
        });
        crate::sync::set_model_cpus(0);
        stats::snapshot()
    }
}

impl Model {
    /// A model of threads of its own (the `RwLock` and `Condvar` models): in each execution
    /// `setup` makes the shared state, thread `t` (of `threads`) runs `body(&state, t)` with a
    /// waiter slot of its own, and `after` checks the state once every thread has joined.
    /// `rounds` and `cs_yields` are the body's business. Returns the lock events counted over
    /// all executions.
    pub(crate) fn check_threads<S: Send + Sync + 'static>(
        self,
        setup: fn() -> S,
        body: fn(&S, usize),
        after: fn(&S),
    ) -> stats::Snapshot {
        stats::reset();
        crate::sync::set_model_cpus(self.cpus.unwrap_or(0));
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(self.preemptions);
        }
        let threads = self.threads;
        builder.check(move || {
            crate::load::reset_for_model();
            let state = Arc::new(setup());
            let slots: std::vec::Vec<&'static Slot> = (0..threads)
                .map(|_| crate::slot::claim().expect("loom slot table too small"))
                .collect();
            let handles: std::vec::Vec<_> = slots
                .iter()
                .enumerate()
                .map(|(t, &slot)| {
                    let state = state.clone();
                    loom::thread::spawn(move || {
                        MY_SLOT.with(|c| c.set(Some(slot)));
                        body(&state, t);
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            for slot in slots {
                crate::slot::release(slot);
            }
            after(&state);
        });
        crate::sync::set_model_cpus(0);
        stats::snapshot()
    }
}

fn lock<L: RawLock>(l: &L, _thread: usize) -> bool {
    l.lock();
    true
}

fn unlock<L: RawLock>(l: &L) {
    // SAFETY: the model calls this with the lock held.
    unsafe { l.unlock() }
}

struct Shared<L> {
    lock: L,
    counter: UnsafeCell<u32>,
    /// Acquisitions that succeeded (a timed one may not).
    acquired: loom::sync::atomic::AtomicU32,
}
// SAFETY: the counter is only accessed under the lock (which loom checks) or after joining.
unsafe impl<L: Sync> Sync for Shared<L> {}
// SAFETY: as above; the fields are owned data.
unsafe impl<L: Send> Send for Shared<L> {}

/// Asserts that a model reached the path counted by `e`.
#[track_caller]
pub(crate) fn assert_reached(events: &stats::Snapshot, e: Event) {
    assert!(
        events.get(e) > 0,
        "the model never reached {}: {events:?}",
        e.name()
    );
}

/// Asserts that a model never took the path counted by `e` (the contrast to a model that does,
/// so that a rule that should apply in one and not the other is seen to switch).
#[track_caller]
pub(crate) fn assert_not_reached(events: &stats::Snapshot, e: Event) {
    assert_eq!(
        events.get(e),
        0,
        "the model reached {}: {events:?}",
        e.name()
    );
}
