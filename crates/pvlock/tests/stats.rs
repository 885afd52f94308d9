//! The `stats` feature's queue accounting (`pv_queued_*`), run with
//! `cargo test -p pvlock --features stats --test stats`.
#![cfg(all(feature = "stats", feature = "std"))]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use pvlock::stats::{snapshot, Event};

/// The counters are process-wide: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A waiter that finds the lock held for longer than its spin budget joins the queue for that
/// reason, and its time in the queue is counted: most of its wait in `lock()` (all but the spin
/// budget, 10 us), never more.
#[test]
fn queue_entry_and_time_are_counted() {
    const HOLD: Duration = Duration::from_millis(30);
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = pvlock::Mutex::new(0u64);
    let before = snapshot();
    let wait = std::thread::scope(|s| {
        let g = m.lock();
        let (tx, rx) = mpsc::channel();
        let m = &m;
        let waiter = s.spawn(move || {
            tx.send(()).unwrap();
            let t0 = Instant::now();
            *m.lock() += 1;
            t0.elapsed()
        });
        rx.recv().unwrap();
        std::thread::sleep(HOLD);
        drop(g);
        waiter.join().unwrap()
    });
    let d = snapshot().since(&before);
    assert_eq!(*m.lock(), 1);
    // The lock was held, with nobody queued and no head spinning, for far longer than the spin
    // budget: the waiter queued because its spin budget ran out, not for another reason.
    assert_eq!(d.get(Event::PvQueuedSpin), 1, "{d:?}");
    assert_eq!(d.get(Event::PvQueuedPending), 0, "{d:?}");
    assert_eq!(d.get(Event::PvQueuedBudget), 0, "{d:?}");
    let queued = Duration::from_nanos(d.get(Event::PvQueuedNs));
    assert!(queued <= wait, "queued {queued:?} > waited {wait:?}");
    assert!(queued >= wait / 2, "queued {queued:?}, waited {wait:?}");
}

/// Crowded (8 threads per CPU on one `pvlock::Mutex`), waiters next in line yield-wait instead of
/// blocking (`Backend::YIELD_WAIT`, on for `Auto`), and mutual exclusion holds (exact total).
#[test]
fn crowded_next_in_line_yield_waits() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (8 * cpus).min(256);
    let m = pvlock::Mutex::new(0u64);
    let before = snapshot();
    let deadline = Instant::now() + Duration::from_millis(300);
    let done: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        *m.lock() += 1;
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let d = snapshot().since(&before);
    assert_eq!(*m.lock(), done);
    assert!(
        d.get(Event::PvYieldWait) > 0,
        "no yield-wait while crowded: {d:?}"
    );
}
