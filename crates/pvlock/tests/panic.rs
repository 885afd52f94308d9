//! A panic inside a critical section releases the lock: `lock_api` guards drop during unwinding
//! and there is no poisoning, so other threads, including waiters blocked in the slow path at the
//! time of the panic, carry on. For every algorithm and backend.

#![cfg(not(loom))]

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

use common::{cpus, serial, watched_with, STALL};
use pvlock::backend::{Auto, Park, Spin};
use pvlock::byte::Byte;
use pvlock::queued::Queued;
use pvlock::ticket::Ticket;

#[cfg(target_os = "linux")]
use pvlock::backend::Futex;

/// Acquisitions per thread after the panic, for blocking backends and for `Spin`.
const BLOCKING: u64 = 400;
const SPIN: u64 = 30;

const DELIBERATE: &str = "deliberate panic inside the critical section";

/// Keeps the expected panics out of the test output; any other panic is reported as usual.
fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str));
            if msg != Some(DELIBERATE) {
                default(info);
            }
        }));
    });
}

/// Runs the checks on `lock_api::Mutex<R, _>`; `per_thread` acquisitions per thread afterwards
/// (few for the `Spin` backend: a FIFO spin lock with 4x more threads than CPUs, all queued up
/// behind a sleeping holder, runs at about one hand-off per scheduler time slice).
fn check<R: lock_api::RawMutex + Sync>(name: &str, per_thread: u64) {
    quiet_deliberate_panics();
    let m = lock_api::Mutex::<R, u64>::new(0);

    // 1. Uncontended: the guard is released by unwinding; no poisoning.
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut g = m.lock();
        *g += 1;
        panic!("{}", DELIBERATE);
    }));
    assert!(r.is_err(), "{name}: the closure should have panicked");
    assert!(!m.is_locked(), "{name}: lock still held after the panic");
    assert_eq!(*m.try_lock().expect("free after the panic"), 1, "{name}");

    // 2. Waiters blocked while the holder panics: the holder sleeps inside the critical section
    //    long enough for every waiter to exhaust its spin budget and block, then panics.
    //    Afterwards every thread panics inside the section now and then; the increments made
    //    before each panic persist (no poisoning), so the total is exact.
    let threads = cpus() * 4;
    let panics = AtomicU64::new(0);
    let label = format!("{name}: panics under contention, {threads} threads");
    watched_with(
        &label,
        threads,
        STALL,
        || format!("is_locked={}", m.is_locked()),
        |w| {
            if w.id == 0 {
                let r = panic::catch_unwind(AssertUnwindSafe(|| {
                    let mut g = m.lock();
                    *g += 1;
                    std::thread::sleep(Duration::from_millis(100));
                    panic!("{}", DELIBERATE);
                }));
                assert!(r.is_err());
                panics.fetch_add(1, Ordering::Relaxed);
            } else {
                // Let thread 0 take the lock first, most of the time.
                std::thread::sleep(Duration::from_millis(10));
            }
            for i in 0..per_thread {
                if w.stopped() {
                    return;
                }
                if (i + w.id as u64) % 10 == 0 {
                    let r = panic::catch_unwind(AssertUnwindSafe(|| {
                        let mut g = m.lock();
                        *g += 1;
                        panic!("{}", DELIBERATE);
                    }));
                    assert!(r.is_err());
                    panics.fetch_add(1, Ordering::Relaxed);
                } else {
                    *m.lock() += 1;
                }
                w.tick();
            }
        },
    );
    let panics = panics.into_inner();
    assert!(panics > threads as u64, "{label}: only {panics} panics");
    assert!(!m.is_locked(), "{label}: left locked");
    assert_eq!(
        m.into_inner(),
        1 + 1 + per_thread * threads as u64,
        "{label}: lost increments"
    );
}

#[test]
fn ticket() {
    let _serial = serial();
    check::<Ticket<Spin>>("ticket-spin", SPIN);
    #[cfg(target_os = "linux")]
    check::<Ticket<Futex>>("ticket-futex", BLOCKING);
    check::<Ticket<Park>>("ticket-park", BLOCKING);
    check::<Ticket<Auto>>("ticket-auto", BLOCKING);
}

#[test]
fn byte() {
    let _serial = serial();
    check::<Byte<Spin>>("byte-spin", SPIN);
    #[cfg(target_os = "linux")]
    check::<Byte<Futex>>("byte-futex", BLOCKING);
    check::<Byte<Park>>("byte-park", BLOCKING);
    check::<Byte<Auto>>("byte-auto", BLOCKING);
}

#[test]
fn queued() {
    let _serial = serial();
    check::<Queued<Spin>>("queued-spin", SPIN);
    #[cfg(target_os = "linux")]
    check::<Queued<Futex>>("queued-futex", BLOCKING);
    check::<Queued<Park>>("queued-park", BLOCKING);
    check::<Queued<Auto>>("queued-auto", BLOCKING);
}

#[test]
fn pvlock_mutex() {
    let _serial = serial();
    check::<pvlock::RawMutex>("pvlock::Mutex", BLOCKING);
    // The alias itself, as users write it.
    quiet_deliberate_panics();
    let m = pvlock::Mutex::new(String::from("ok"));
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut g = m.lock();
        g.push('!');
        panic!("{}", DELIBERATE);
    }));
    assert!(r.is_err());
    assert_eq!(*m.lock(), "ok!");
}
