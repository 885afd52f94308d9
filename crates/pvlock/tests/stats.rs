//! What the `stats` feature counts: queue accounting (`pv_queued_*`) and the yields of `Queued`
//! waiters; run with `cargo test -p pvlock --features stats --test stats`.
#![cfg(all(feature = "stats", feature = "std"))]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use pvlock::stats::{snapshot, Event, Snapshot};

/// The counters are process-wide: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One waiter for a `pvlock::Mutex` held for `hold` (to the waiter, a holder preempted by another
/// process's thread looks the same): how long its `lock()` took, and the lock events meanwhile.
fn wait_behind_hold(hold: Duration) -> (Duration, Snapshot) {
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
        std::thread::sleep(hold);
        drop(g);
        waiter.join().unwrap()
    });
    let d = snapshot().since(&before);
    assert_eq!(*m.lock(), 1);
    (wait, d)
}

/// Runs `f` with a spin budget of `iterations`, then restores the one before.
fn with_spin_budget<T>(iterations: u32, f: impl FnOnce() -> T) -> T {
    let old = pvlock::tuning::spin_iterations();
    assert_eq!(pvlock::tuning::set_spin_iterations(iterations), iterations);
    let r = f();
    pvlock::tuning::set_spin_iterations(old);
    r
}

/// A waiter that finds the lock held for longer than its spin budget joins the queue for that
/// reason, and its time in the queue is counted: most of its wait in `lock()` (all but the spin
/// budget), never more. The budget is kept below one saturated backoff round (64 reads), so the
/// waiter does not yield while it spins: on a loaded machine each yield may last a time slice.
#[test]
fn queue_entry_and_time_are_counted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (wait, d) = with_spin_budget(100, || wait_behind_hold(Duration::from_millis(30)));
    // The lock was held, with nobody queued and no head spinning, for far longer than the spin
    // budget: the waiter queued because its spin budget ran out, not for another reason.
    assert_eq!(d.get(Event::PvQueuedSpin), 1, "{d:?}");
    assert_eq!(d.get(Event::PvQueuedPending), 0, "{d:?}");
    assert_eq!(d.get(Event::PvQueuedBudget), 0, "{d:?}");
    let queued = Duration::from_nanos(d.get(Event::PvQueuedNs));
    assert!(queued <= wait, "queued {queued:?} > waited {wait:?}");
    assert!(queued >= wait / 2, "queued {queued:?}, waited {wait:?}");
    // Spun out ("Spun out" in the `Queued` module docs): alone in the queue, it was head at once
    // and did not spin again there: one skipped spin, then it blocked as head.
    assert_eq!(d.get(Event::PvSpinSkip), 1, "{d:?}");
    assert!(d.get(Event::PvWaitHead) >= 1, "{d:?}");
}

/// Only a waiter whose spin ran out its budget skips a spin in the queue ("Spun out" in the
/// `Queued` module docs; the skip itself is checked in `queue_entry_and_time_are_counted`).
#[test]
fn only_a_spun_out_waiter_skips_its_spin() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Queued for another reason (here none: it got the lock by spinning), nothing is skipped.
    let (_, d) = with_spin_budget(1 << 20, || wait_behind_hold(Duration::from_millis(1)));
    assert_eq!(d.get(Event::PvQueuedSpin), 0, "{d:?}");
    assert_eq!(d.get(Event::PvSpinSkip), 0, "{d:?}");
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

/// How often a lone waiter for a lock held 20 ms yielded while it spun (`pv_spin_yield`).
fn yields_behind_long_hold() -> u64 {
    wait_behind_hold(Duration::from_millis(20))
        .1
        .get(Event::PvSpinYield)
}

/// A spin budget long enough for a stealer's backoff to saturate many times.
const LONG_SPIN: u32 = 1 << 14;

/// With no more waiting threads than CPUs, a stealer whose backoff has saturated yields the CPU
/// between its reads of the lock (`Backend::YIELD_WAIT`, on for `Auto`): "Yielding stealers" in
/// the `Queued` module docs.
#[test]
fn few_threads_stealer_yields() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Threads of earlier tests give their waiter slots back when they exit, which may be just
    // after they were joined.
    let deadline = Instant::now() + Duration::from_secs(5);
    while pvlock::registry::claimed() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let yields = with_spin_budget(LONG_SPIN, yields_behind_long_hold);
    assert!(yields > 0, "a lone stealer did not yield");
}

/// With more threads that wait for pvlock locks than CPUs (here: parked, each holding the waiter
/// slot it claimed when it waited once), stealers only spin: the queue and its steal budget are in
/// charge then (the yields cost `oversub-8x` fairness).
#[test]
fn crowded_process_stealer_does_not_yield() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let extra = (cpus + 1).min(256);
    let gate = pvlock::Mutex::new(());
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let stop_rx = std::sync::Mutex::new(stop_rx);
    let yields = std::thread::scope(|s| {
        let held = gate.lock();
        for _ in 0..extra {
            let ready_tx = ready_tx.clone();
            let (gate, stop_rx) = (&gate, &stop_rx);
            s.spawn(move || {
                // Waits for `gate` (claims a waiter slot), then stays alive until told to stop.
                drop(gate.lock());
                ready_tx.send(()).unwrap();
                let _ = stop_rx.lock().unwrap().recv();
            });
        }
        // Keep `gate` until they all wait for it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while pvlock::registry::claimed() < extra && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(held);
        for _ in 0..extra {
            ready_rx.recv().unwrap();
        }
        assert!(
            pvlock::registry::claimed() > cpus,
            "the parked threads hold no slots"
        );
        let yields = with_spin_budget(LONG_SPIN, yields_behind_long_hold);
        drop(stop_tx);
        yields
    });
    assert_eq!(
        yields, 0,
        "a stealer yielded with more waiting threads than CPUs"
    );
}
