//! The steal budget: while the process is crowded (more threads contending for pvlock locks, or
//! blocked in them, than CPUs), a thread whose budget is spent never takes a `Queued` lock past
//! the waiters already queued for it. (Own file: the budget and the crowding count are process-wide.)

#![cfg(not(loom))]

use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use pvlock::queued::Queued;
use pvlock::RawLock;

#[cfg(target_os = "linux")]
type Blocking = pvlock::backend::Futex;
#[cfg(not(target_os = "linux"))]
type Blocking = pvlock::backend::Park;

/// One round: the main thread holds the lock while `waiters` threads queue behind it and block,
/// then releases it and at once takes it again. Returns the order in which the lock was had.
fn round(lock: &Queued<Blocking>, waiters: usize) -> Vec<&'static str> {
    let order = StdMutex::new(Vec::new());
    RawLock::lock(lock);
    std::thread::scope(|s| {
        for _ in 0..waiters {
            s.spawn(|| {
                RawLock::lock(lock);
                order.lock().unwrap().push("waiter");
                // SAFETY: locked just above.
                unsafe { RawLock::unlock(lock) };
            });
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !RawLock::is_contended(lock) {
            assert!(Instant::now() < deadline, "the waiters never queued");
            std::thread::yield_now();
        }
        // Long enough for every waiter to spin out its budget, queue and block: a spinning
        // queue head sets `pending`, which stops stealing by itself; a blocked one does not.
        std::thread::sleep(Duration::from_millis(20));
        // SAFETY: locked above, by this thread.
        unsafe { RawLock::unlock(lock) };
        RawLock::lock(lock);
        order.lock().unwrap().push("releaser");
        // SAFETY: locked just above.
        unsafe { RawLock::unlock(lock) };
    });
    order.into_inner().unwrap()
}

#[test]
fn a_spent_budget_queues_behind_crowded_waiters() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lock = Queued::<Blocking>::new();
    // The releaser has never passed through a queue, so its budget is empty; with more queued
    // threads than CPUs it must queue behind them instead of stealing past the blocked head.
    // (Without the budget rule it steals at once: its relock comes nanoseconds after its unlock,
    // long before the kicked head can run.)
    for r in 0..20 {
        // A fresh thread each round: its slot starts with an empty budget (a slot given back by
        // an exited thread is reset).
        let order = std::thread::scope(|s| s.spawn(|| round(&lock, cpus + 1)).join().unwrap());
        assert_eq!(
            order.first(),
            Some(&"waiter"),
            "round {r}: the releaser stole the lock past {} blocked waiters: {order:?}",
            cpus + 1
        );
    }
    assert!(!RawLock::is_locked(&lock) && !RawLock::is_contended(&lock));
}
