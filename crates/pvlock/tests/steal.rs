//! The steal budget: while the process is crowded (more threads contending for pvlock locks, or
//! blocked in them, than CPUs), a thread whose budget is spent never takes a `Queued` lock past
//! the waiters already queued for it. (Own file: the budget and the crowding count are process-wide,
//! and so is the gate of the test backend.)

#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use pvlock::backend::{Backend, Slot};
use pvlock::queued::Queued;
use pvlock::RawLock;

#[cfg(target_os = "linux")]
type Inner = pvlock::backend::Futex;
#[cfg(not(target_os = "linux"))]
type Inner = pvlock::backend::Park;

/// While set, a waiter that `Inner` wakes does not return from its wait yet: no waiter can run,
/// spin (a queue head would set `pending`) or take the lock until the gate opens.
static GATE_CLOSED: AtomicBool = AtomicBool::new(false);
/// Threads inside [`Gated::wait`] now (woken or not).
static IN_WAIT: AtomicUsize = AtomicUsize::new(0);

/// `Inner`, with a gate on the way out of every wait.
struct Gated;

// SAFETY: `wait` and `kick` are `Inner`'s, which keeps the latch contract; a wait returns later
// than `Inner`'s only while the gate is closed, and the test always opens it again. `current` is
// the default: the calling thread's own slot.
unsafe impl Backend for Gated {
    const BLOCKING: bool = true;

    fn wait(me: &Slot, ptr: &AtomicU32, val: u32) {
        IN_WAIT.fetch_add(1, Ordering::SeqCst);
        Inner::wait(me, ptr, val);
        while GATE_CLOSED.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_micros(100));
        }
        IN_WAIT.fetch_sub(1, Ordering::SeqCst);
    }

    fn kick(target: &Slot) {
        Inner::kick(target);
    }
}

/// Polls `cond` for up to 10 s; whether it became true.
fn eventually(cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    true
}

/// What one round saw.
struct Round {
    /// The order in which the lock was had.
    order: Vec<&'static str>,
    /// Every waiter was blocked (and held there by the gate) when the releaser unlocked.
    waiters_blocked: bool,
    /// The releaser blocked in the queue while the lock was free, instead of taking it.
    releaser_queued: bool,
    /// `pv_queued_budget` events between the unlock and the opening of the gate (`stats`).
    #[cfg_attr(not(feature = "stats"), allow(dead_code))]
    budget_refusals: u64,
}

/// One round: the releaser (the calling thread) holds the lock while `waiters` threads queue
/// behind it and block, with the gate closed; then it releases the lock, which kicks the queue
/// head (held in its wait by the gate), and at once asks for the lock again. A keeper thread opens
/// the gate once the releaser has blocked in the queue too, or has got the lock.
fn round(lock: &Queued<Gated>, waiters: usize) -> Round {
    assert_eq!(IN_WAIT.load(Ordering::SeqCst), 0);
    let order = StdMutex::new(Vec::new());
    GATE_CLOSED.store(true, Ordering::SeqCst);
    RawLock::lock(lock);
    let (waiters_blocked, (releaser_queued, budget_refusals)) = std::thread::scope(|s| {
        for _ in 0..waiters {
            s.spawn(|| {
                RawLock::lock(lock);
                order.lock().unwrap().push("waiter");
                // SAFETY: locked just above.
                unsafe { RawLock::unlock(lock) };
            });
        }
        // The queue head too: it spins out its spin budget, then blocks, with pending clear.
        let waiters_blocked = eventually(|| IN_WAIT.load(Ordering::SeqCst) == waiters);
        let before = pvlock::stats::snapshot();
        let order = &order;
        let keeper = s.spawn(move || {
            let releaser_blocked = eventually(|| {
                IN_WAIT.load(Ordering::SeqCst) == waiters + 1 || !order.lock().unwrap().is_empty()
            });
            let queued = releaser_blocked && order.lock().unwrap().is_empty();
            let refusals = pvlock::stats::snapshot()
                .since(&before)
                .get(pvlock::stats::Event::PvQueuedBudget);
            GATE_CLOSED.store(false, Ordering::SeqCst);
            (queued, refusals)
        });
        // SAFETY: locked above, by this thread.
        unsafe { RawLock::unlock(lock) };
        RawLock::lock(lock);
        order.lock().unwrap().push("releaser");
        // SAFETY: locked just above.
        unsafe { RawLock::unlock(lock) };
        (waiters_blocked, keeper.join().unwrap())
    });
    Round {
        order: order.into_inner().unwrap(),
        waiters_blocked,
        releaser_queued,
        budget_refusals,
    }
}

/// What this proves: a thread whose steal budget is spent, in a crowded process, does not take a
/// free `Queued` lock past queued waiters, and for no other reason than its budget. When the
/// releaser asks for the lock again, the lock is free, the tail is set, and every waiter is held
/// in its wait by the gate: the head does not spin, so `pending` is clear and cannot refuse the
/// steal, and no woken waiter can take the lock first. The releaser has never passed through a
/// queue (a fresh thread each round: a slot given back by an exited thread is reset), so its
/// budget is empty; the blocked waiters make the process crowded (`cpus + 1` of them). The only
/// rule left that refuses it the free lock is the budget: without it the releaser takes the lock
/// at once and comes first. With `stats`, the refusal is also seen as one `pv_queued_budget`.
#[test]
fn a_spent_budget_queues_behind_crowded_waiters() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let waiters = cpus + 1;
    let lock = Queued::<Gated>::new();
    for r in 0..5 {
        let seen = std::thread::scope(|s| s.spawn(|| round(&lock, waiters)).join().unwrap());
        assert!(
            seen.waiters_blocked,
            "round {r}: the {waiters} waiters never all blocked"
        );
        assert!(
            seen.releaser_queued,
            "round {r}: the releaser took the lock past {waiters} blocked waiters: {:?}",
            seen.order
        );
        let mut fifo = vec!["waiter"; waiters];
        fifo.push("releaser");
        assert_eq!(seen.order, fifo, "round {r}");
        #[cfg(feature = "stats")]
        assert_eq!(seen.budget_refusals, 1, "round {r}");
    }
    assert!(!RawLock::is_locked(&lock) && !RawLock::is_contended(&lock));
}
