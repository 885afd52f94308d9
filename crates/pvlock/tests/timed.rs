//! Timed locking (`try_lock_for`, `try_lock_until`, `lock_api::RawMutexTimed` and
//! `RawRwLockTimed`) and the condition variable's timed waits: timeouts on held locks are
//! honoured (no `false` before the deadline), wake-ups by unlock well before the deadline, a
//! waiter that gives up strands nobody queued beside or behind it, and oversubscribed stress
//! where timed and untimed waiters mix (exact totals, clean lock words afterwards, under the
//! watchdog).

#![cfg(not(loom))]

mod common;

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
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

/// Runs the generic check `f::<L>()` for every mutex with timed locking: `Queued` with each
/// blocking backend and `Byte` with each backend (`blocking`: without `Byte<Spin>`, which nothing
/// wakes).
macro_rules! each_timed_lock {
    ($f:ident) => {{
        each_timed_lock!($f, blocking);
        $f::<Byte<Spin>>();
    }};
    ($f:ident, blocking) => {{
        $f::<Queued<Auto>>();
        $f::<Queued<Park>>();
        #[cfg(target_os = "linux")]
        $f::<Queued<Futex>>();
        $f::<Byte<Auto>>();
        $f::<Byte<Park>>();
    }};
}

#[test]
fn held_locks_time_out() {
    each_timed_lock!(times_out);
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
    each_timed_lock!(woken_by_unlock, blocking);
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

/// The next message from a helper thread within 20 s, else the test fails (the helper, stuck in
/// a lock, is left behind: it is not a scoped thread, so the failure does not hang the test).
fn within<T>(rx: &Receiver<T>, what: &str) -> T {
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{what}: nothing within 20 s ({e})"))
}

/// Polls `cond` (yielding) for up to 20 s; fails the test if it never holds.
fn until(what: &str, cond: impl Fn() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(20), "never: {what}");
        std::thread::yield_now();
    }
}

/// A timed waiter that gives up strands nobody: untimed waiters that queued before it and after
/// it both get the lock once the holder releases it, and the lock is clean afterwards.
fn give_up_strands_nobody<L>()
where
    L: RawLock + RawMutexTimed<Duration = Duration, Instant = Instant> + Default + Send + Sync,
    L: 'static,
{
    let l = Arc::new(L::default());
    RawLock::lock(&*l);
    let (tx, rx) = channel();
    let untimed = |tx: std::sync::mpsc::Sender<&'static str>, name: &'static str| {
        let l = l.clone();
        std::thread::spawn(move || {
            RawLock::lock(&*l);
            // SAFETY: locked just above.
            unsafe { RawLock::unlock(&*l) };
            let _ = tx.send(name);
        })
    };
    let first = untimed(tx.clone(), "first");
    // Long enough for the first waiter to spin out and sleep (or keep spinning: either way it
    // waits ahead of the timed one).
    std::thread::sleep(Duration::from_millis(20));
    let timeout = Duration::from_millis(60);
    let timed = {
        let l = l.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            let got = RawMutexTimed::try_lock_for(&*l, timeout);
            (got, t.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let second = untimed(tx, "second");
    let (got, took) = timed.join().unwrap();
    assert!(!got, "the lock is held: the timed attempt must fail");
    assert!(
        took >= timeout,
        "gave up after {took:?}, before {timeout:?}"
    );
    assert!(rx.try_recv().is_err(), "an untimed waiter got a held lock");
    // SAFETY: locked at the start, by this thread.
    unsafe { RawLock::unlock(&*l) };
    let mut seen = [
        within(&rx, "an untimed waiter after the timed one gave up"),
        "",
    ];
    seen[1] = within(&rx, "the other untimed waiter");
    seen.sort_unstable();
    assert_eq!(seen, ["first", "second"]);
    first.join().unwrap();
    second.join().unwrap();
    assert!(!RawLock::is_locked(&*l) && !RawLock::is_contended(&*l));
}

#[test]
fn timed_give_up_strands_nobody() {
    let _serial = serial();
    each_timed_lock!(give_up_strands_nobody);
}

/// `RawRwLockTimed` on a held lock: every timed attempt that cannot succeed fails, and not
/// before its timeout; one that can succeed does, at once; nothing of a failed attempt stays
/// behind (a reader gets in past a writer that gave up).
fn rw_times_out<B: pvlock::backend::Backend>()
where
    pvlock::rwlock::QueuedRwLock<B>:
        lock_api::RawRwLockTimed<Duration = Duration, Instant = Instant>,
{
    let l = pvlock::RwLockWith::<B, u32>::new(0);
    for timeout in [Duration::ZERO, Duration::from_millis(20)] {
        let w = l.write();
        let t = Instant::now();
        assert!(l.try_read_for(timeout).is_none());
        assert!(t.elapsed() >= timeout);
        let t = Instant::now();
        assert!(l.try_write_for(timeout).is_none());
        assert!(t.elapsed() >= timeout);
        let t = Instant::now();
        assert!(l.try_read_until(t + timeout).is_none());
        assert!(t.elapsed() >= timeout);
        let t = Instant::now();
        assert!(l.try_write_until(t + timeout).is_none());
        assert!(t.elapsed() >= timeout);
        drop(w);
        let r = l.read();
        let t = Instant::now();
        assert!(l.try_write_for(timeout).is_none());
        assert!(t.elapsed() >= timeout);
        assert!(l.try_read().is_some(), "a failed writer left its mark");
        assert!(l.try_read_for(timeout).is_some());
        drop(r);
        assert!(!l.is_locked());
        // SAFETY: only reads the lock's state.
        assert!(!unsafe { l.raw() }.is_contended(), "{:?}", unsafe {
            l.raw()
        });
        assert!(l.try_write_for(timeout).is_some());
    }
}

#[test]
fn rwlock_timeouts_are_honoured() {
    rw_times_out::<Auto>();
    rw_times_out::<Park>();
    #[cfg(target_os = "linux")]
    rw_times_out::<Futex>();
}

/// A timed writer that heads the wait queue (it set the writer-waiting bit, so new readers
/// queue behind it) and gives up lets the readers queued behind it in, while the first read is
/// still held; a timed reader that waits for a writer and gives up lets a writer queued behind
/// it in once the first writer leaves.
fn rw_give_up_strands_nobody<B: pvlock::backend::Backend + 'static>()
where
    pvlock::rwlock::QueuedRwLock<B>:
        lock_api::RawRwLockTimed<Duration = Duration, Instant = Instant>,
{
    let l = Arc::new(pvlock::RwLockWith::<B, u32>::new(0));
    let timeout = Duration::from_millis(80);
    // SAFETY (both closures): only read the lock's state.
    let contended = |l: &pvlock::RwLockWith<B, u32>| unsafe { l.raw() }.is_contended();

    // A timed writer behind a reader, an untimed reader behind the writer.
    let r1 = l.read();
    let (tx, rx) = channel();
    let writer = {
        let l = l.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            let deadline = t + timeout;
            let got = l.try_write_until(deadline).is_some();
            (got, t.elapsed(), deadline)
        })
    };
    // Once the writer has set the writer-waiting bit, a new reader's attempt fails.
    until("the timed writer waits", || l.try_read().is_none());
    let reader = {
        let l = l.clone();
        std::thread::spawn(move || {
            let g = l.read();
            let _ = tx.send(Instant::now());
            drop(g);
        })
    };
    let (got, took, deadline) = writer.join().unwrap();
    assert!(!got && took >= timeout, "writer: got {got} after {took:?}");
    let entered = within(&rx, "the reader queued behind a writer that gave up");
    assert!(
        entered >= deadline,
        "a reader passed a waiting writer before its deadline"
    );
    reader.join().unwrap();
    drop(r1);

    // A timed reader behind a writer, an untimed writer behind the reader.
    let w1 = l.write();
    let (tx, rx) = channel();
    let reader = {
        let l = l.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            let got = l.try_read_for(timeout).is_some();
            (got, t.elapsed())
        })
    };
    until("the timed reader waits", || contended(&l));
    let writer = {
        let l = l.clone();
        std::thread::spawn(move || {
            *l.write() += 1;
            let _ = tx.send(());
        })
    };
    let (got, took) = reader.join().unwrap();
    assert!(!got && took >= timeout, "reader: got {got} after {took:?}");
    assert!(rx.try_recv().is_err(), "a writer got a write-locked lock");
    drop(w1);
    within(&rx, "the writer queued behind a reader that gave up");
    writer.join().unwrap();
    assert_eq!(*l.read(), 1);
    assert!(!l.is_locked() && !contended(&l));
}

#[test]
fn rwlock_timed_give_up_strands_nobody() {
    let _serial = serial();
    rw_give_up_strands_nobody::<Auto>();
    rw_give_up_strands_nobody::<Park>();
    #[cfg(target_os = "linux")]
    rw_give_up_strands_nobody::<Futex>();
}

/// Condvar timed waits: the timeout is honoured, and a waiter that timed out has left the
/// list, so that `notify_one` reaches the waiter still there (and then reports nobody left).
#[test]
fn condvar_timed_out_waiter_leaves() {
    let pair = Arc::new((pvlock::Mutex::new(false), pvlock::Condvar::new()));
    let (m, cv) = &*pair;
    // Nobody notifies: a plain timeout, and a deadline already past.
    let mut g = m.lock();
    for timeout in [Duration::ZERO, Duration::from_millis(20)] {
        let t = Instant::now();
        assert!(cv.wait_for(&mut g, timeout).timed_out());
        assert!(t.elapsed() >= timeout);
    }
    assert!(cv.wait_until(&mut g, Instant::now()).timed_out());
    drop(g);

    let waiting = Arc::new(AtomicBool::new(false));
    let (tx, rx) = channel();
    let untimed = {
        let (pair, waiting) = (pair.clone(), waiting.clone());
        std::thread::spawn(move || {
            let (m, cv) = &*pair;
            let mut g = m.lock();
            waiting.store(true, Ordering::Relaxed);
            cv.wait_while(&mut g, |go| !*go);
            let _ = tx.send(());
        })
    };
    // The flag is set under the mutex before the wait: once we hold the mutex and see it, the
    // untimed thread is in the condvar's list (it enqueues before it releases the mutex).
    until("the untimed waiter waits", || {
        let _g = m.lock();
        waiting.load(Ordering::Relaxed)
    });
    let timeout = Duration::from_millis(30);
    let timed = {
        let pair = pair.clone();
        std::thread::spawn(move || {
            let (m, cv) = &*pair;
            let mut g = m.lock();
            let t = Instant::now();
            let r = cv.wait_for(&mut g, timeout);
            (r.timed_out(), t.elapsed())
        })
    };
    let (timed_out, took) = timed.join().unwrap();
    assert!(
        timed_out && took >= timeout,
        "timed out {timed_out} after {took:?}"
    );
    let mut g = m.lock();
    *g = true;
    assert!(cv.notify_one(), "the untimed waiter must still be waiting");
    drop(g);
    within(&rx, "the untimed waiter, notified");
    untimed.join().unwrap();
    assert!(!cv.notify_one(), "nobody waits any more");
    assert_eq!(cv.notify_all(), 0);
}
