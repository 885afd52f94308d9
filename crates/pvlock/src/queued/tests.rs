//! Unit tests of `Queued`: states, FIFO order, mutual exclusion with every backend, the
//! no-node path, the `lock_api` glue.

use super::*;
use crate::backend::{Park, Spin};
use crate::slot::Slot;
use std::vec::Vec;

static STATIC_LOCK: Queued<Spin> = Queued::new();

#[test]
fn word_is_four_bytes_and_zero() {
    assert_eq!(core::mem::size_of::<Queued<Spin>>(), 4);
    assert_eq!(core::mem::size_of::<Queued<Park>>(), 4);
    assert_eq!(STATIC_LOCK.word.load(Ordering::Relaxed), 0);
    assert_eq!(Queued::<Park>::default().word.load(Ordering::Relaxed), 0);
}

fn states<B: Backend>() {
    let q = Queued::<B>::new();
    assert!(!q.is_locked());
    assert!(!q.is_contended());
    q.lock();
    assert!(q.is_locked());
    assert!(!q.is_contended());
    assert!(!q.try_lock());
    assert_eq!(q.word.load(Ordering::Relaxed), LOCKED);
    // SAFETY: locked above.
    unsafe { q.unlock() };
    assert!(!q.is_locked());
    assert!(q.try_lock());
    assert!(q.is_locked());
    // SAFETY: locked by try_lock.
    unsafe { q.unlock() };
    assert_eq!(q.word.load(Ordering::Relaxed), 0);
    assert!(std::format!("{q:?}").contains("locked: 0"));
}

crate::testutil::per_backend!(states: spin, park);

fn contended<B: Backend>() {
    let q = Queued::<B>::new();
    q.lock();
    std::thread::scope(|s| {
        s.spawn(|| {
            q.lock();
            // SAFETY: locked just above.
            unsafe { q.unlock() };
        });
        while !q.is_contended() {
            std::thread::yield_now();
        }
        assert!(!q.try_lock());
        // SAFETY: locked above, by this thread.
        unsafe { q.unlock() };
    });
    assert!(!q.is_locked());
    assert!(!q.is_contended());
    assert!(!hash::contains(q.addr()));
}

crate::testutil::per_backend!(contended: spin, park);

/// Threads that queue in a known order get the lock in that order: each waiter is started
/// only once the previous one is visibly queued (tail changed; with `Spin` the first waiter
/// takes the pending bit instead).
fn fifo<B: Backend>() {
    const N: usize = 6;
    let q = Queued::<B>::new();
    let order = std::sync::Mutex::new(Vec::new());
    q.lock();
    std::thread::scope(|s| {
        for id in 0..N {
            let before = q.word.load(Ordering::Relaxed);
            let (q, order) = (&q, &order);
            s.spawn(move || {
                q.lock();
                order.lock().unwrap().push(id);
                // SAFETY: locked just above.
                unsafe { q.unlock() };
            });
            loop {
                let w = q.word.load(Ordering::Relaxed);
                let queued = w & TAIL_MASK != before & TAIL_MASK;
                let pending = !B::BLOCKING && w & PENDING != 0 && before & PENDING == 0;
                if queued || pending {
                    break;
                }
                std::thread::yield_now();
            }
        }
        // SAFETY: locked above, by this thread.
        unsafe { q.unlock() };
    });
    assert_eq!(*order.lock().unwrap(), (0..N).collect::<Vec<_>>());
    assert_eq!(q.word.load(Ordering::Relaxed), 0);
}

crate::testutil::per_backend!(fifo: spin, park, futex);

fn hammer<B: Backend>(threads: usize, iters: u64, hold: std::time::Duration) {
    let lock = Queued::<B>::new();
    crate::testutil::hammer(&lock, threads, iters, hold);
    assert_eq!(lock.word.load(Ordering::Relaxed), 0, "{lock:?}");
    assert!(!hash::contains(lock.addr()));
}

// Few iterations with `Spin`: 8 spinning threads on a small machine is exactly the
// lock-waiter-preemption case the pv path exists for, and it is slow.
#[test]
fn eight_threads_spin() {
    hammer::<Spin>(8, 2_000, std::time::Duration::ZERO);
}

crate::testutil::blocking_backend_tests!(20_000);

std::thread_local! {
    static NO_NODE: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// A backend whose threads marked `NO_NODE` get no waiter slot (the `lock_no_node` path);
/// `BLOCKING` chooses between the native and the pv protocol.
struct Mixed<const BLOCKING: bool>;
// SAFETY: wait/kick are Park's; `current` hands out registry slots or none.
unsafe impl<const BLOCKING: bool> Backend for Mixed<BLOCKING> {
    const BLOCKING: bool = BLOCKING;
    fn current() -> Option<&'static Slot> {
        if NO_NODE.with(|n| n.get()) {
            None
        } else {
            crate::slot::current()
        }
    }
    fn wait(me: &Slot, ptr: &AtomicU32, val: u32) {
        Park::wait(me, ptr, val)
    }
    fn kick(target: &Slot) {
        Park::kick(target)
    }
}

fn hammer_mixed<const BLOCKING: bool>(threads: usize, iters: u64) {
    let lock = Queued::<Mixed<BLOCKING>>::new();
    crate::testutil::hammer_with(&lock, threads, iters, std::time::Duration::ZERO, |t| {
        NO_NODE.with(|n| n.set(t % 2 == 0))
    });
    assert_eq!(lock.word.load(Ordering::Relaxed), 0, "{lock:?}");
}

/// Half the threads have no node: native `lock_no_node` spins on `try_lock` next to a queue.
#[test]
fn no_node_native() {
    hammer_mixed::<false>(4, 2_000);
}

/// Half the threads have no node: pv `lock_no_node` steals next to blocking queue waiters.
#[test]
fn no_node_pv() {
    hammer_mixed::<true>(4, 5_000);
}

#[test]
fn lock_api_mutex() {
    let m = lock_api::Mutex::<Queued<Park>, u64>::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..1000 {
                    *m.lock() += 1;
                }
            });
        }
    });
    assert_eq!(*m.lock(), 4000);
    let g = m.lock();
    assert!(m.is_locked());
    lock_api::MutexGuard::unlock_fair(g);
    assert!(!m.is_locked());
}

/// Why a pv newcomer queues decides whether the policy skips its first spin ("spun out"): only a
/// spin that ran out its budget with the lock held throughout counts; a pending head or a spent
/// steal budget does not. The lock word is set by hand, the policy given by value.
#[test]
fn only_a_spin_that_ran_out_is_spun_out() {
    use crate::load::Load;
    use crate::policy::Policy;
    let me = crate::slot::current().expect("a slot");
    let calm = Policy::with(
        Load {
            contenders: 0,
            cpus: Some(2),
        },
        64,
    );
    let crowded = Policy::with(
        Load {
            contenders: 9,
            cpus: Some(2),
        },
        64,
    );
    let q = Queued::<Park>::new();
    // Held, nobody queued: the spin runs out.
    q.word.store(LOCKED, Ordering::Relaxed);
    assert_eq!(q.steal_hybrid(me, calm), Err(Event::PvQueuedSpin));
    assert_eq!(q.steal_hybrid(me, crowded), Err(Event::PvQueuedSpin));
    // The head is spinning (pending): queue at once, not spun out.
    q.word
        .store(LOCKED | PENDING | 7 << TAIL_SHIFT, Ordering::Relaxed);
    assert_eq!(q.steal_hybrid(me, calm), Err(Event::PvQueuedPending));
    // Free with waiters queued, crowded, and no steal budget left: the budget sends it to queue.
    q.word.store(7 << TAIL_SHIFT, Ordering::Relaxed);
    me.account.restart(0);
    assert_eq!(q.steal_hybrid(me, crowded), Err(Event::PvQueuedBudget));
    // Not crowded it may steal past them (and does).
    assert_eq!(q.steal_hybrid(me, calm), Ok(()));
    assert_eq!(q.word.load(Ordering::Relaxed), 7 << TAIL_SHIFT | LOCKED);
    q.word.store(0, Ordering::Relaxed);
    // Only the first of those reasons makes the waiter skip its first spin.
    use super::pv::spun_out;
    assert!(spun_out(Event::PvQueuedSpin));
    assert!(!spun_out(Event::PvQueuedPending) && !spun_out(Event::PvQueuedBudget));
}
