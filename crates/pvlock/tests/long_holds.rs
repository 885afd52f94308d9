//! Waiters behind a lock that is held for a long time sleep: the CPU time the process burns while
//! threads queue behind 50 ms holds stays a small fraction of the wall time, for every blocking
//! backend and lock. (A waiter that spins or yields in a loop instead, e.g. a queue head that
//! cannot tell whether a kick is still coming, burns a CPU for the whole hold.)
//!
//! This checks a resource bound, not a speed: CPU time counts only this process's threads, so a
//! busy machine makes it no worse.

#![cfg(all(not(loom), target_os = "linux"))]

use std::time::{Duration, Instant};

use pvlock::backend::{Auto, Futex, Park};
use pvlock::byte::Byte;
use pvlock::queued::Queued;
use pvlock::ticket::Ticket;

/// CPU time (user + system) of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass; no other effects.
    let r = unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut r);
        r
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// `threads` threads each take the lock `rounds` times and hold it `hold` (sleeping); returns the
/// CPU time burnt over the wall time taken.
fn cpu_share<R: lock_api::RawMutex + Sync>(threads: usize, rounds: usize, hold: Duration) -> f64 {
    let m = lock_api::Mutex::<R, u64>::new(0);
    let (cpu0, t0) = (cpu_time(), Instant::now());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..rounds {
                    let mut g = m.lock();
                    *g += 1;
                    std::thread::sleep(hold);
                }
            });
        }
    });
    let (cpu, wall) = (cpu_time() - cpu0, t0.elapsed());
    assert_eq!(*m.lock(), (threads * rounds) as u64);
    cpu.as_secs_f64() / wall.as_secs_f64()
}

/// CPU time is process-wide: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check<R: lock_api::RawMutex + Sync>(name: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 12 holds of 50 ms: 0.6 s. Each waiter may spin its budget (40 us) a few times per hold;
    // anything near a tenth of a CPU means a waiter kept running through a hold.
    let share = cpu_share::<R>(6, 2, Duration::from_millis(50));
    assert!(
        share < 0.1,
        "{name}: waiters behind 50 ms holds burnt {:.0}% of a CPU",
        share * 100.0
    );
}

#[test]
fn queued_waiters_sleep_through_long_holds() {
    check::<Queued<Futex>>("Queued<Futex>");
    check::<Queued<Park>>("Queued<Park>");
    check::<Queued<Auto>>("Queued<Auto>");
}

#[test]
fn ticket_and_byte_waiters_sleep_through_long_holds() {
    check::<Ticket<Futex>>("Ticket<Futex>");
    check::<Ticket<Auto>>("Ticket<Auto>");
    check::<Byte<Futex>>("Byte<Futex>");
    check::<Byte<Auto>>("Byte<Auto>");
}
