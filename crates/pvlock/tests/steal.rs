//! The steal budget (`pvlock::steal`): with a zero budget a thread never takes a `Queued` lock
//! past a waiter already queued for it. (Own file: the budget is process-wide.)

#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use pvlock::backend::Auto;
use pvlock::queued::Queued;
use pvlock::steal::{set_steal_budget, steal_budget};

#[test]
fn zero_budget_hands_the_lock_to_the_queued_waiter() {
    set_steal_budget(750);
    assert_eq!(steal_budget(), 750);
    set_steal_budget(u32::MAX);
    assert_eq!(steal_budget(), u32::MAX - 1);
    set_steal_budget(0);
    assert_eq!(steal_budget(), 0);

    let lock = Queued::<Auto>::new();
    let order = StdMutex::new(Vec::new());
    for round in 0..50 {
        order.lock().unwrap().clear();
        let entered = AtomicUsize::new(0);
        lock.lock();
        std::thread::scope(|s| {
            s.spawn(|| {
                entered.store(1, Ordering::Relaxed);
                lock.lock();
                order.lock().unwrap().push("waiter");
                // SAFETY: locked just above.
                unsafe { lock.unlock() };
            });
            // Wait until the waiter is queued (a tail in the word), not merely spinning.
            let deadline = Instant::now() + Duration::from_secs(10);
            while entered.load(Ordering::Relaxed) == 0 || !lock.is_contended() {
                assert!(
                    Instant::now() < deadline,
                    "round {round}: the waiter never queued"
                );
                std::thread::yield_now();
            }
            // Give the waiter time to spin out its budget and block: a spinning queue head sets
            // `pending`, which stops stealing anyway; a blocked one does not.
            std::thread::sleep(Duration::from_millis(2));
            // Release and come straight back: with a zero budget we may not take the lock past
            // the queued waiter, however fast we are.
            // SAFETY: locked above, by this thread.
            unsafe { lock.unlock() };
            lock.lock();
            order.lock().unwrap().push("releaser");
            // SAFETY: locked just above.
            unsafe { lock.unlock() };
        });
        assert_eq!(
            *order.lock().unwrap(),
            ["waiter", "releaser"],
            "round {round}: the releaser stole the lock from the queued waiter"
        );
    }
    assert!(!lock.is_locked() && !lock.is_contended());
}
