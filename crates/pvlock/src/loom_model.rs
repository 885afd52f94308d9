//! Shared loom harness for the lock modules' models (`RUSTFLAGS="--cfg loom"`).

use crate::registry::Slot;
use crate::sync::AtomicU32;
use crate::RawLock;
use core::cell::Cell;
use loom::cell::UnsafeCell;
use loom::sync::Arc;

loom::thread_local! {
    static MY_SLOT: Cell<Option<&'static Slot>> = Cell::new(None);
}

/// [`Park`](crate::backend::Park) with slots handed out by the model instead of the
/// registry's thread-local: loom's `join` returns before the joined thread's thread-locals
/// are dropped, so a slot given back by that destructor could touch the registry's lazy
/// statics after the model closure returned and loom freed them. The model's main thread
/// claims the slots before spawning and gives them back after joining.
pub(crate) struct ModelPark;

// SAFETY: `wait`/`kick` are Park's, which keep the latch contract; `current` returns the slot
// the model gave this thread, a different one to each thread.
unsafe impl crate::backend::Backend for ModelPark {
    const BLOCKING: bool = true;
    fn current() -> Option<&'static Slot> {
        MY_SLOT.with(|s| s.get())
    }
    fn wait(me: &Slot, ptr: &AtomicU32, val: u32) {
        crate::backend::park::park_wait(me, ptr, val)
    }
    fn kick(target: &Slot) {
        crate::backend::park::park_kick(target)
    }
}

/// Runs `body(i)` on `threads` loom threads, each with a [`ModelPark`] slot of its own.
pub(crate) fn run_threads<F>(threads: usize, body: F)
where
    F: Fn(usize) + Send + Sync + 'static,
{
    let slots: std::vec::Vec<&'static Slot> = (0..threads)
        .map(|_| crate::registry::claim().expect("loom slot table too small"))
        .collect();
    let body = Arc::new(body);
    let handles: std::vec::Vec<_> = slots
        .iter()
        .enumerate()
        .map(|(i, &slot)| {
            let body = body.clone();
            loom::thread::spawn(move || {
                MY_SLOT.with(|s| s.set(Some(slot)));
                body(i);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for s in slots {
        crate::registry::release(s);
    }
}

struct Shared<L> {
    lock: L,
    counter: UnsafeCell<u32>,
}
// SAFETY: the counter is only accessed under the lock (which loom checks) or after joining.
unsafe impl<L: Sync> Sync for Shared<L> {}
// SAFETY: as above; the fields are owned data.
unsafe impl<L: Send> Send for Shared<L> {}

/// Model-checks mutual exclusion and completion of the lock made by `new`: `threads` threads each
/// take it once and bump a loom `UnsafeCell` (an access not ordered by the lock is reported as a
/// causality violation; a lost wake-up is a loom deadlock). `after` checks the final lock state.
pub(crate) fn check_lock<L: RawLock + 'static>(
    new: fn() -> L,
    threads: usize,
    preemptions: usize,
    after: fn(&L),
) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(move || {
        let s = Arc::new(Shared {
            lock: new(),
            counter: UnsafeCell::new(0),
        });
        let s2 = s.clone();
        run_threads(threads, move |_| {
            s2.lock.lock();
            s2.counter.with_mut(|c| {
                // SAFETY: the lock is held; loom checks the claim.
                unsafe { *c += 1 }
            });
            // SAFETY: locked above.
            unsafe { s2.lock.unlock() };
        });
        let total = s.counter.with(|c| {
            // SAFETY: all other threads have been joined.
            unsafe { *c }
        });
        assert_eq!(total, threads as u32);
        after(&s.lock);
    });
}
