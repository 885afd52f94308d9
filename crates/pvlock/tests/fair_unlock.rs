//! The `lock_api::RawMutexFair` contract: `unlock_fair` (and `bump`) "force the lock to pass on to
//! a waiting thread if there is one". A holder that unlocks fairly and at once asks for the lock
//! again must come after the thread that was already waiting, however fast it comes back; a plain
//! unlock makes no such promise (lock stealing lets the releaser take it straight back).
//!
//! For every lock that implements `RawMutexFair` (`Queued` and `Ticket`, every backend), with the
//! waiter caught both spinning and blocked.

#![cfg(not(loom))]

use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use lock_api::RawMutexFair;
use pvlock::backend::{Auto, Park, Spin};
use pvlock::queued::Queued;
use pvlock::ticket::Ticket;
use pvlock::RawLock;

#[cfg(target_os = "linux")]
use pvlock::backend::Futex;

/// How the holder gives the lock up before asking for it again.
#[derive(Clone, Copy, Debug)]
enum GiveUp {
    UnlockFair,
    Bump,
}

/// One round: hold the lock, let a waiter queue behind it (and, with `settle`, spin out its budget
/// and block), give the lock up with `how`, then at once take it again. Returns who got it first.
fn round<R: RawLock + RawMutexFair>(how: GiveUp, settle: Duration) -> Vec<&'static str> {
    let lock = <R as lock_api::RawMutex>::INIT;
    let order = StdMutex::new(Vec::new());
    RawLock::lock(&lock);
    std::thread::scope(|s| {
        s.spawn(|| {
            RawLock::lock(&lock);
            order.lock().unwrap().push("waiter");
            // SAFETY: locked just above, by this thread.
            unsafe { RawLock::unlock(&lock) };
        });
        // The waiter is visibly waiting (queued, pending, or holding a ticket), not just starting.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !RawLock::is_contended(&lock) {
            assert!(Instant::now() < deadline, "the waiter never queued");
            std::thread::yield_now();
        }
        std::thread::sleep(settle);
        match how {
            GiveUp::UnlockFair => {
                // SAFETY: locked above, by this thread.
                unsafe { RawMutexFair::unlock_fair(&lock) };
                RawLock::lock(&lock);
            }
            // SAFETY: locked above, by this thread; `bump` returns with it held again.
            GiveUp::Bump => unsafe { RawMutexFair::bump(&lock) },
        }
        order.lock().unwrap().push("releaser");
        // SAFETY: locked again just above, by this thread.
        unsafe { RawLock::unlock(&lock) };
    });
    assert!(!RawLock::is_locked(&lock));
    order.into_inner().unwrap()
}

fn check<R: RawLock + RawMutexFair>(name: &str) {
    for settle in [Duration::ZERO, Duration::from_millis(3)] {
        for how in [GiveUp::UnlockFair, GiveUp::Bump] {
            for r in 0..20 {
                assert_eq!(
                    round::<R>(how, settle),
                    ["waiter", "releaser"],
                    "{name}: {how:?} (waiter settled {settle:?}), round {r}: the releaser took \
                     the lock back past the waiting thread"
                );
            }
        }
    }
}

#[test]
fn queued_hands_over_to_the_waiter() {
    check::<Queued<Spin>>("Queued<Spin>");
    #[cfg(target_os = "linux")]
    check::<Queued<Futex>>("Queued<Futex>");
    check::<Queued<Park>>("Queued<Park>");
    check::<Queued<Auto>>("Queued<Auto>");
    check::<pvlock::RawMutex>("pvlock::RawMutex");
}

#[test]
fn ticket_hands_over_to_the_waiter() {
    check::<Ticket<Spin>>("Ticket<Spin>");
    check::<Ticket<Auto>>("Ticket<Auto>");
}

/// With nobody waiting, a fair unlock is an unlock.
#[test]
fn fair_unlock_without_waiters_frees_the_lock() {
    fn free<R: RawLock + RawMutexFair>() {
        let lock = <R as lock_api::RawMutex>::INIT;
        RawLock::lock(&lock);
        // SAFETY: locked just above.
        unsafe { RawMutexFair::unlock_fair(&lock) };
        assert!(!RawLock::is_locked(&lock));
        assert!(RawLock::try_lock(&lock));
        // SAFETY: locked by try_lock just above.
        unsafe { RawLock::unlock(&lock) };
    }
    free::<Queued<Spin>>();
    free::<Queued<Auto>>();
    free::<Ticket<Auto>>();
}
