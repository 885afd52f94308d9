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
    // Spun out ("spun out" in the policy docs): alone in the queue, it was head at once
    // and did not spin again there: one skipped spin, then it blocked as head. (That only a
    // spun-out waiter skips is unit-tested in queued/tests.rs.)
    assert_eq!(d.get(Event::PvSpinSkip), 1, "{d:?}");
    assert!(d.get(Event::PvWaitHead) >= 1, "{d:?}");
}

/// Crowded (8 threads per CPU on one `pvlock::Mutex`), the steal budget sends running threads
/// through the queue (`pv_queued_budget`), and mutual exclusion holds (exact total).
#[test]
fn crowded_stealers_run_out_of_steal_budget() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (8 * cpus).min(256);
    let m = pvlock::Mutex::new(0u64);
    let before = snapshot();
    // Runs of 300 ms until a steal budget runs out (a busy machine may need more), at most 5 s.
    let cap = Instant::now() + Duration::from_secs(5);
    let mut done = 0u64;
    loop {
        let deadline = Instant::now() + Duration::from_millis(300);
        done += std::thread::scope(|s| {
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
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        if snapshot().since(&before).get(Event::PvQueuedBudget) > 0 || Instant::now() > cap {
            break;
        }
    }
    let d = snapshot().since(&before);
    assert_eq!(*m.lock(), done);
    assert!(
        d.get(Event::PvQueuedBudget) > 0,
        "no steal budget ran out while crowded: {d:?}"
    );
    assert!(
        d.get(Event::PvCrowded) > 0,
        "the policy never read the process as crowded: {d:?}"
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

/// With fewer waiting threads than CPUs, a stealer whose backoff has saturated yields the CPU
/// between its reads of the lock ("yielding stealers" in the policy docs).
#[test]
fn few_threads_stealer_yields() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Threads of earlier tests stop counting as contenders within two 10 ms epochs.
    std::thread::sleep(Duration::from_millis(25));
    let yields = with_spin_budget(LONG_SPIN, yields_behind_long_hold);
    assert!(yields > 0, "a lone stealer did not yield");
}

/// With more threads contending for pvlock locks than CPUs (here: hammering another lock),
/// stealers only spin: the queue and its steal budget are in charge then. Once those threads
/// stop contending the process is not crowded any more: a stealer yields again (a pool that
/// contended once is not loaded forever).
#[test]
fn crowded_process_stealer_does_not_yield() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Four per CPU: the process stays crowded even while a few of them are preempted for a
    // while (on a busy machine a thread may not run for longer than the two epochs).
    let extra = (4 * cpus).min(256);
    let busy = pvlock::Mutex::new(0u64);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let yields = std::thread::scope(|s| {
        let hammers: Vec<_> = (0..extra)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        *busy.lock() += 1;
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        // Long enough for all of them to have contended and registered.
        std::thread::sleep(Duration::from_millis(50));
        // On a machine busy with other processes the hammering threads may all sleep in the
        // queue for longer than two epochs, and then (rightly) not count: up to 5 tries, the
        // first without a yield ends it.
        let mut yields = 0;
        for _ in 0..5 {
            yields = with_spin_budget(LONG_SPIN, yields_behind_long_hold);
            if yields == 0 {
                break;
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let total: u64 = hammers.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(*busy.lock(), total);
        yields
    });
    assert_eq!(
        yields, 0,
        "a stealer yielded with {extra} threads contending on {cpus} CPUs"
    );
    // The same threads contended, and are done: 20 ms later (two 10 ms epochs) they no longer
    // count, and a stealer yields again.
    std::thread::sleep(Duration::from_millis(25));
    let again = with_spin_budget(LONG_SPIN, yields_behind_long_hold);
    assert!(again > 0, "still treated as crowded after the waiters left");
}
