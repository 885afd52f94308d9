//! Timed locking (`try_lock_for`, `try_lock_until`, `lock_api::RawMutexTimed`): timeouts on held
//! locks, wake-ups by unlock well before the deadline, and oversubscribed stress where timed and
//! untimed waiters mix (exact totals, clean lock words afterwards, under the watchdog).

#![cfg(not(loom))]

mod common;

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{cpus, serial, watched_with, Rng};
use lock_api::RawMutexTimed;
use pvlock::backend::{Auto, Park, Spin};
use pvlock::byte::Byte;
use pvlock::queued::Queued;
use pvlock::RawLock;

#[cfg(target_os = "linux")]
use pvlock::backend::Futex;

/// A held lock: the timed attempt fails, and not before its timeout.
fn times_out<L: RawLock + RawMutexTimed<Duration = Duration, Instant = Instant> + Default>() {
    let l = L::default();
    assert!(RawMutexTimed::try_lock_for(&l, Duration::from_millis(1)));
    for timeout in [Duration::ZERO, Duration::from_millis(20)] {
        let t = Instant::now();
        assert!(!RawMutexTimed::try_lock_for(&l, timeout));
        assert!(t.elapsed() >= timeout);
        let t = Instant::now();
        assert!(!RawMutexTimed::try_lock_until(&l, t + timeout));
        assert!(t.elapsed() >= timeout);
    }
    // SAFETY: locked by the first try_lock_for.
    unsafe { RawLock::unlock(&l) };
    assert!(!RawLock::is_locked(&l));
    assert!(!RawLock::is_contended(&l));
    assert!(RawMutexTimed::try_lock_until(&l, Instant::now()));
    // SAFETY: locked just above.
    unsafe { RawLock::unlock(&l) };
}

#[test]
fn held_locks_time_out() {
    times_out::<Queued<Auto>>();
    times_out::<Queued<Park>>();
    #[cfg(target_os = "linux")]
    times_out::<Queued<Futex>>();
    times_out::<Byte<Auto>>();
    times_out::<Byte<Park>>();
    times_out::<Byte<Spin>>();
}

/// A timed waiter with a long timeout gets the lock when the holder releases it, long before
/// its deadline: the unlock wakes it (it sleeps beside the queue).
fn woken_by_unlock<L: RawLock + RawMutexTimed<Duration = Duration, Instant = Instant> + Default>() {
    let l = L::default();
    RawLock::lock(&l);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let t = Instant::now();
            let got = RawMutexTimed::try_lock_for(&l, Duration::from_secs(30));
            let took = t.elapsed();
            if got {
                // SAFETY: locked just above.
                unsafe { RawLock::unlock(&l) };
            }
            (got, took)
        });
        // Long enough for the waiter to spin out and sleep.
        std::thread::sleep(Duration::from_millis(50));
        assert!(RawLock::is_contended(&l) || cfg!(not(target_os = "linux")));
        // SAFETY: locked above, by this thread.
        unsafe { RawLock::unlock(&l) };
        let (got, took) = waiter.join().unwrap();
        assert!(got);
        assert!(took < Duration::from_secs(20), "woken after {took:?}");
    });
    assert!(!RawLock::is_locked(&l));
    assert!(!RawLock::is_contended(&l));
}

#[test]
fn timed_waiters_are_woken_by_unlock() {
    woken_by_unlock::<Queued<Auto>>();
    woken_by_unlock::<Queued<Park>>();
    #[cfg(target_os = "linux")]
    woken_by_unlock::<Queued<Futex>>();
    woken_by_unlock::<Byte<Auto>>();
    woken_by_unlock::<Byte<Park>>();
}

struct Shared<L> {
    lock: L,
    counter: UnsafeCell<u64>,
}
// SAFETY: `counter` is only touched with `lock` held.
unsafe impl<L: Sync> Sync for Shared<L> {}

/// `threads` threads, half of them timed (timeouts from 0 to 2 ms), take one lock `per_thread`
/// times each (a timed thread counts only the attempts that succeeded); holds are sometimes
/// longer than the spin budget, so that waiters sleep. The counter must equal the successes.
fn stress<L>(name: &str, threads: usize, per_thread: u64)
where
    L: RawLock + RawMutexTimed<Duration = Duration, Instant = Instant> + Default,
{
    let shared = Shared {
        lock: L::default(),
        counter: UnsafeCell::new(0),
    };
    let successes = AtomicU64::new(0);
    let timeouts = AtomicU64::new(0);
    // The whole struct (it is Sync), not its fields, goes into the closures.
    let sh = &shared;
    watched_with(
        name,
        threads,
        common::STALL,
        || {
            format!(
                "is_locked={} is_contended={}",
                RawLock::is_locked(&sh.lock),
                RawLock::is_contended(&sh.lock)
            )
        },
        |w| {
            let mut rng = Rng::new(w.id as u64 + 7);
            let timed = w.id % 2 == 0;
            for _ in 0..per_thread {
                if w.stopped() {
                    break;
                }
                let got = if timed {
                    let timeout = Duration::from_micros(rng.below(2000));
                    RawMutexTimed::try_lock_for(&sh.lock, timeout)
                } else {
                    RawLock::lock(&sh.lock);
                    true
                };
                if got {
                    // SAFETY: the lock is held.
                    unsafe { *sh.counter.get() += 1 };
                    if rng.below(64) == 0 {
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_micros(100) {
                            std::hint::spin_loop();
                        }
                    }
                    // SAFETY: locked above.
                    unsafe { RawLock::unlock(&sh.lock) };
                    successes.fetch_add(1, Ordering::Relaxed);
                } else {
                    timeouts.fetch_add(1, Ordering::Relaxed);
                }
                w.tick();
                rng.think(64);
            }
        },
    );
    let n = successes.load(Ordering::Relaxed);
    assert_eq!(shared.counter.into_inner(), n, "{name}: lost updates");
    assert!(
        n >= per_thread * (threads as u64 / 2),
        "{name}: {n} successes"
    );
    assert!(!RawLock::is_locked(&shared.lock), "{name}: left locked");
    assert!(
        !RawLock::is_contended(&shared.lock),
        "{name}: left contended"
    );
}

macro_rules! timed_stress {
    ($($(#[$a:meta])* $name:ident: $ty:ty;)*) => {$(
        $(#[$a])*
        #[test]
        fn $name() {
            let _serial = serial();
            for factor in [1, 8] {
                stress::<$ty>(stringify!($name), cpus() * factor, 3_000);
            }
        }
    )*};
}

timed_stress! {
    queued_auto_timed_stress: Queued<Auto>;
    queued_park_timed_stress: Queued<Park>;
    #[cfg(target_os = "linux")]
    queued_futex_timed_stress: Queued<Futex>;
    byte_auto_timed_stress: Byte<Auto>;
    byte_park_timed_stress: Byte<Park>;
    byte_spin_timed_stress: Byte<Spin>;
}

/// The mutex types of the crate root have `try_lock_for` through `lock_api`.
#[test]
fn mutex_try_lock_for() {
    let m = pvlock::Mutex::new(1u32);
    let g = m.try_lock_for(Duration::from_millis(5)).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| assert!(m.try_lock_for(Duration::from_millis(5)).is_none()));
    });
    drop(g);
    *m.try_lock_until(Instant::now() + Duration::from_millis(5))
        .unwrap() += 1;
    assert_eq!(*m.lock(), 2);
    let b = pvlock::ByteMutex::new(());
    assert!(b.try_lock_for(Duration::ZERO).is_some());
}
