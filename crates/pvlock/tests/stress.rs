//! Oversubscription stress: every algorithm x backend (and `pvlock::Mutex`) with 4x and 8x more
//! threads than CPUs, mutual exclusion checked on every acquisition with non-atomic state, exact
//! final totals, all under a progress watchdog (a lost wake-up fails within seconds).
//!
//! The tests of this file run one at a time (they would only slow each other down on a small
//! machine). Spin-backend cases get far fewer acquisitions and a time cap: a FIFO spin lock with
//! 8x more threads than CPUs hands the lock to preempted waiters and can fall to about one
//! acquisition per scheduler time slice (measured here on 2 CPUs: 6 000 acquisitions took from
//! 0.05 s to 88 s for `Ticket<Spin>`), which is the very problem pvlock exists to solve, not a bug.
//! When the cap ends a run early, the threads stop after their current acquisition and the total
//! is still checked exactly, against the sum of what every thread did.

#![cfg(not(loom))]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{cpus, serial, stress, watched, watched_with, Rng, STALL};
use pvlock::backend::{Auto, Park, Spin};
use pvlock::byte::Byte;
use pvlock::queued::Queued;
use pvlock::ticket::Ticket;

#[cfg(target_os = "linux")]
use pvlock::backend::Futex;

/// Total acquisitions per run (split evenly over the threads) for blocking backends...
const TOTAL_BLOCKING: u64 = 100_000;
/// ...and for the `Spin` backend (see the module docs).
const TOTAL_SPIN: u64 = 6_000;
/// Time cap of one spin-backend run...
const CAP_SPIN: Duration = Duration::from_secs(2);
/// ...and of one blocking run (normally done well before: a safety net for slow machines).
const CAP_BLOCKING: Duration = Duration::from_secs(8);

/// The cap for a lock with backend `B`.
fn cap<B: pvlock::backend::Backend>() -> Duration {
    if B::BLOCKING {
        CAP_BLOCKING
    } else {
        CAP_SPIN
    }
}

macro_rules! stress_tests {
    ($($(#[$attr:meta])* $name:ident: $alg:ident<$b:ty>, $total:expr;)*) => {$(
        $(#[$attr])*
        #[test]
        fn $name() {
            let _serial = serial();
            for factor in [4, 8] {
                stress::<$alg<$b>>(stringify!($name), cpus() * factor, $total, cap::<$b>());
            }
        }
    )*};
}

stress_tests! {
    ticket_spin: Ticket<Spin>, TOTAL_SPIN;
    #[cfg(target_os = "linux")]
    ticket_futex: Ticket<Futex>, TOTAL_BLOCKING;
    ticket_park: Ticket<Park>, TOTAL_BLOCKING;
    ticket_auto: Ticket<Auto>, TOTAL_BLOCKING;
    byte_spin: Byte<Spin>, TOTAL_SPIN;
    #[cfg(target_os = "linux")]
    byte_futex: Byte<Futex>, TOTAL_BLOCKING;
    byte_park: Byte<Park>, TOTAL_BLOCKING;
    byte_auto: Byte<Auto>, TOTAL_BLOCKING;
    queued_spin: Queued<Spin>, TOTAL_SPIN;
    #[cfg(target_os = "linux")]
    queued_futex: Queued<Futex>, TOTAL_BLOCKING;
    queued_park: Queued<Park>, TOTAL_BLOCKING;
    queued_auto: Queued<Auto>, TOTAL_BLOCKING;
}

/// `Queued<Auto>` with the smallest steal budget: every thread queues (and blocks) far more often
/// than with the default, so the queue and wake-up paths carry the load.
#[test]
fn queued_auto_smallest_steal_budget() {
    let _serial = serial();
    let default = pvlock::tuning::steal_budget();
    let budget = pvlock::tuning::set_steal_budget(0);
    let name = format!("queued_auto_steal_budget_{budget}");
    stress::<Queued<Auto>>(&name, cpus() * 8, TOTAL_BLOCKING, CAP_BLOCKING);
    pvlock::tuning::set_steal_budget(default);
}

/// Data behind a `lock_api` mutex: the same non-atomic checks, through guards.
#[derive(Default)]
struct Data {
    counter: u64,
    owner: usize,
    violations: u64,
}

/// `pvlock::Mutex` (and any `lock_api::Mutex` over a pvlock lock) through its guards.
fn stress_mutex<R: lock_api::RawMutex + Sync>(name: &str, threads: usize, total: u64) {
    let per_thread = (total / threads as u64).max(1);
    let deadline = Instant::now() + CAP_BLOCKING;
    let done: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
    let m = lock_api::Mutex::<R, Data>::new(Data::default());
    let label = format!("{name} x{threads}");
    watched_with(
        &label,
        threads,
        STALL,
        || format!("is_locked={}", m.is_locked()),
        |w| {
            let mut rng = Rng::new(w.id as u64 + 7);
            let mut mine = 0;
            while mine < per_thread && !w.stopped() && Instant::now() < deadline {
                let mut g = m.lock();
                if g.owner != 0 {
                    g.violations += 1;
                }
                g.owner = w.id + 1;
                g.counter += 1;
                std::hint::spin_loop();
                if g.owner != w.id + 1 {
                    g.violations += 1;
                }
                g.owner = 0;
                drop(g);
                mine += 1;
                w.tick();
                rng.think(64);
            }
            done[w.id].store(mine, Ordering::Relaxed);
        },
    );
    let expected: u64 = done.iter().map(|d| d.load(Ordering::Relaxed)).sum();
    let d = m.into_inner();
    assert_eq!(d.violations, 0, "{label}: mutual exclusion violated");
    assert_eq!(d.counter, expected, "{label}: lost updates");
    assert!(
        expected >= threads as u64,
        "{label}: only {expected} acquisitions"
    );
}

#[test]
fn pvlock_mutex() {
    let _serial = serial();
    for factor in [4, 8] {
        stress_mutex::<pvlock::RawMutex>("pvlock::Mutex", cpus() * factor, TOTAL_BLOCKING);
    }
}

/// Guards, `try_lock`, `MutexGuard::unlocked` (release and re-take inside a guard's life) and
/// mapped guards, mixed at random, with an exact total.
fn mixed<R: lock_api::RawMutex + Sync>(name: &str, threads: usize, total: u64, cap: Duration) {
    let per_thread = (total / threads as u64).max(1);
    let deadline = Instant::now() + cap;
    let m = lock_api::Mutex::<R, Data>::new(Data::default());
    // Increments done by each thread, to compute the exact expected total.
    let done: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
    let label = format!("{name} x{threads}");
    watched(&label, threads, |w| {
        let mut rng = Rng::new(w.id as u64 + 99);
        let mut mine = 0u64;
        let bump = |d: &mut Data, id: usize| {
            if d.owner != 0 {
                d.violations += 1;
            }
            d.owner = id + 1;
            d.counter += 1;
            if d.owner != id + 1 {
                d.violations += 1;
            }
            d.owner = 0;
        };
        for _ in 0..per_thread {
            if w.stopped() || Instant::now() >= deadline {
                break;
            }
            match rng.below(4) {
                0 => {
                    // try_lock until it works, with some work between attempts.
                    loop {
                        if let Some(mut g) = m.try_lock() {
                            bump(&mut g, w.id);
                            break;
                        }
                        rng.think(16);
                        std::thread::yield_now();
                    }
                    mine += 1;
                }
                1 => {
                    // Two increments in one guard's life, with the lock released between them.
                    let mut g = m.lock();
                    bump(&mut g, w.id);
                    lock_api::MutexGuard::unlocked(&mut g, || rng.think(32));
                    bump(&mut g, w.id);
                    mine += 2;
                }
                2 => {
                    let mut g = lock_api::MutexGuard::map(m.lock(), |d| &mut d.counter);
                    *g += 1;
                    mine += 1;
                }
                _ => {
                    bump(&mut m.lock(), w.id);
                    mine += 1;
                }
            }
            w.tick();
            rng.think(64);
        }
        done[w.id].store(mine, Ordering::Relaxed);
    });
    let expected: u64 = done.iter().map(|d| d.load(Ordering::Relaxed)).sum();
    assert!(!m.is_locked(), "{label}: left locked");
    let d = m.into_inner();
    assert_eq!(d.violations, 0, "{label}: mutual exclusion violated");
    assert_eq!(d.counter, expected, "{label}: lost updates");
    assert!(
        expected >= threads as u64,
        "{label}: only {expected} increments"
    );
}

#[test]
fn mixed_guards_and_try_lock() {
    let _serial = serial();
    let threads = cpus() * 4;
    let total = TOTAL_BLOCKING / 2;
    mixed::<pvlock::RawMutex>("mixed pvlock::Mutex", threads, total, CAP_BLOCKING);
    mixed::<Ticket<Auto>>("mixed ticket-auto", threads, total, CAP_BLOCKING);
    mixed::<Byte<Auto>>("mixed byte-auto", threads, total, CAP_BLOCKING);
    mixed::<Queued<Auto>>("mixed queued-auto", threads, total, CAP_BLOCKING);
    mixed::<Ticket<Park>>("mixed ticket-park", threads, total, CAP_BLOCKING);
    mixed::<Byte<Park>>("mixed byte-park", threads, total, CAP_BLOCKING);
    mixed::<Queued<Park>>("mixed queued-park", threads, total, CAP_BLOCKING);
    mixed::<Queued<Spin>>("mixed queued-spin", threads, TOTAL_SPIN, CAP_SPIN);
}

/// The watchdog itself: workers that make no progress but can be stopped fail the test with a
/// panic naming the run and its state.
#[test]
#[should_panic(expected = "watchdog: idle workers: no progress")]
fn watchdog_reports_a_stall() {
    watched_with(
        "idle workers",
        2,
        Duration::from_millis(300),
        || "state here".to_string(),
        |w| {
            while !w.stopped() {
                std::thread::sleep(Duration::from_millis(5));
            }
        },
    );
}

/// Run only by [`watchdog_aborts_on_a_stuck_lock`], in a child process: a lock that is never
/// released, as after a lost wake-up. The workers block in `lock()` forever.
#[test]
#[ignore = "run in a child process by watchdog_aborts_on_a_stuck_lock"]
fn stuck_lock_child() {
    if std::env::var_os("PVLOCK_STUCK_CHILD").is_none() {
        return;
    }
    let lock = Ticket::<Park>::new();
    lock.lock();
    watched_with(
        "stuck ticket-park",
        2,
        Duration::from_millis(500),
        || format!("is_locked={}", lock.is_locked()),
        |_| lock.lock(),
    );
}

/// A lost wake-up ends the test process within seconds, with a report, instead of hanging CI.
#[test]
fn watchdog_aborts_on_a_stuck_lock() {
    let start = Instant::now();
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "stuck_lock_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PVLOCK_STUCK_CHILD", "1")
        .output()
        .expect("run the child test");
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the stuck child passed:\n{stderr}");
    assert!(
        stderr.contains("watchdog: stuck ticket-park: no progress")
            && stderr.contains("is_locked=true")
            && stderr.contains("cannot be joined: aborting"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
}
