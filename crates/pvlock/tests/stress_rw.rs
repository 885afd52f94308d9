//! Oversubscription stress of `RwLock` (every backend) and `Condvar`: 4x and 8x more threads than
//! CPUs, under the progress watchdog (a lost wake-up fails within seconds), with exact totals.
//!
//! RwLock: a tenth of the operations are writes, which bump two counters one after the other;
//! every read checks that they are equal (no reader sees a half-done write) and that no writer
//! is inside; some operations are timed, upgradable or downgraded. The counters must equal the
//! writes that succeeded. Condvar: producers and consumers through a bounded queue, with
//! `notify_one` and with `notify_all`; every message is consumed exactly once.

#![cfg(not(loom))]

mod common;

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{cpus, serial, watched_with, Rng, STALL};
use pvlock::backend::{Auto, Backend, Park, Spin};
use pvlock::rwlock::QueuedRwLock;
use pvlock::{Condvar, Mutex};

#[cfg(target_os = "linux")]
use pvlock::backend::Futex;

struct Shared<B: Backend> {
    lock: QueuedRwLock<B>,
    /// (a, b): a writer bumps `a`, then `b`.
    data: UnsafeCell<(u64, u64)>,
    /// 1 while a writer is inside.
    writer_in: AtomicU64,
    bad: AtomicU64,
}
// SAFETY: `data` is only accessed under `lock`.
unsafe impl<B: Backend> Sync for Shared<B> {}

/// How an operation takes the lock (chosen at random, mostly plain).
fn stress<B: Backend>(name: &str, threads: usize, per_thread: u64, timed: bool, cap: Duration) {
    let s = Shared::<B> {
        lock: QueuedRwLock::new(),
        data: UnsafeCell::new((0, 0)),
        writer_in: AtomicU64::new(0),
        bad: AtomicU64::new(0),
    };
    let writes = AtomicU64::new(0);
    let deadline = Instant::now() + cap;
    let sh = &s;
    watched_with(
        name,
        threads,
        STALL,
        || format!("{:?}", sh.lock),
        |w| {
            let mut rng = Rng::new(w.id as u64 + 11);
            let mut n = 0;
            while n < per_thread && !w.stopped() && Instant::now() < deadline {
                n += 1;
                let r = rng.below(100);
                if r < 10 {
                    // A write: plain, timed, through an upgradable read, or downgraded after.
                    let got = match r {
                        0 if timed => sh.lock.try_write_for(Duration::from_micros(rng.below(500))),
                        1 => {
                            sh.lock.read_upgradable();
                            // SAFETY: the upgradable read is held.
                            unsafe { sh.lock.upgrade() };
                            true
                        }
                        _ => {
                            sh.lock.write();
                            true
                        }
                    };
                    if got {
                        if sh.writer_in.swap(1, Ordering::Relaxed) != 0 {
                            sh.bad.fetch_add(1, Ordering::Relaxed);
                        }
                        // SAFETY: the write lock is held.
                        unsafe {
                            let p = sh.data.get();
                            (*p).0 += 1;
                            std::hint::spin_loop();
                            (*p).1 += 1;
                        }
                        sh.writer_in.store(0, Ordering::Relaxed);
                        writes.fetch_add(1, Ordering::Relaxed);
                        if r == 2 {
                            // SAFETY: the write lock is held; then the read it became.
                            unsafe {
                                sh.lock.downgrade();
                                read_check(sh);
                                sh.lock.read_unlock();
                            }
                        } else {
                            // SAFETY: the write lock is held.
                            unsafe { sh.lock.write_unlock() };
                        }
                    }
                } else {
                    let got = if timed && r < 15 {
                        sh.lock.try_read_for(Duration::from_micros(rng.below(500)))
                    } else {
                        sh.lock.read();
                        true
                    };
                    if got {
                        read_check(sh);
                        // SAFETY: a read is held.
                        unsafe { sh.lock.read_unlock() };
                    }
                }
                w.tick();
                rng.think(64);
            }
        },
    );
    assert_eq!(
        s.bad.load(Ordering::Relaxed),
        0,
        "{name}: exclusion violated"
    );
    let (a, b) = s.data.into_inner();
    assert_eq!(
        (a, b),
        (writes.load(Ordering::Relaxed), a),
        "{name}: lost writes"
    );
    assert!(
        !s.lock.is_locked() && !s.lock.is_contended(),
        "{name}: {:?}",
        s.lock
    );
}

/// Under a read lock: the two counters are equal and no writer is inside.
fn read_check<B: Backend>(sh: &Shared<B>) {
    // SAFETY: a read lock is held: no writer changes `data` now.
    let (a, b) = unsafe { std::ptr::read_volatile(sh.data.get()) };
    if a != b || sh.writer_in.load(Ordering::Relaxed) != 0 {
        sh.bad.fetch_add(1, Ordering::Relaxed);
    }
}

macro_rules! rw_stress {
    ($($(#[$a:meta])* $name:ident: $b:ty, $n:expr, $timed:expr, $cap:expr;)*) => {$(
        $(#[$a])*
        #[test]
        fn $name() {
            let _serial = serial();
            for factor in [4, 8] {
                stress::<$b>(stringify!($name), cpus() * factor, $n, $timed, $cap);
            }
        }
    )*};
}

rw_stress! {
    rwlock_spin: Spin, 2_000, false, Duration::from_secs(2);
    #[cfg(target_os = "linux")]
    rwlock_futex: Futex, 20_000, true, Duration::from_secs(8);
    rwlock_park: Park, 20_000, true, Duration::from_secs(8);
    rwlock_auto: Auto, 20_000, true, Duration::from_secs(8);
}

/// Producers put `per_producer` numbered messages each through a queue of 4 slots; consumers
/// take them; every message must arrive exactly once.
fn condvar_stress(name: &str, threads: usize, per_producer: u64, all: bool) {
    struct Q {
        items: VecDeque<u64>,
        done: bool,
    }
    let q = Mutex::new(Q {
        items: VecDeque::new(),
        done: false,
    });
    let (not_empty, not_full) = (Condvar::new(), Condvar::new());
    let producers = threads / 2;
    let produced_done = AtomicU64::new(0);
    let sum = AtomicU64::new(0);
    let got = AtomicU64::new(0);
    let notify = |c: &Condvar| {
        if all {
            c.notify_all();
        } else {
            c.notify_one();
        }
    };
    watched_with(name, threads, STALL, String::new, |w| {
        if w.id < producers {
            for i in 0..per_producer {
                let mut g = q.lock();
                not_full.wait_while(&mut g, |q| q.items.len() >= 4);
                g.items.push_back(w.id as u64 * per_producer + i);
                drop(g);
                notify(&not_empty);
                w.tick();
            }
            if produced_done.fetch_add(1, Ordering::Relaxed) + 1 == producers as u64 {
                q.lock().done = true;
                not_empty.notify_all();
            }
        } else {
            loop {
                let mut g = q.lock();
                not_empty.wait_while(&mut g, |q| q.items.is_empty() && !q.done);
                let Some(m) = g.items.pop_front() else {
                    return; // done and empty
                };
                drop(g);
                notify(&not_full);
                sum.fetch_add(m, Ordering::Relaxed);
                got.fetch_add(1, Ordering::Relaxed);
                w.tick();
            }
        }
    });
    let n = producers as u64 * per_producer;
    assert_eq!(
        got.load(Ordering::Relaxed),
        n,
        "{name}: messages lost or doubled"
    );
    assert_eq!(
        sum.load(Ordering::Relaxed),
        n * (n - 1) / 2,
        "{name}: wrong messages"
    );
}

#[test]
fn condvar_notify_one_oversubscribed() {
    let _serial = serial();
    for factor in [4, 8] {
        condvar_stress("condvar_notify_one", cpus() * factor, 10_000, false);
    }
}

#[test]
fn condvar_notify_all_oversubscribed() {
    let _serial = serial();
    for factor in [4, 8] {
        condvar_stress("condvar_notify_all", cpus() * factor, 10_000, true);
    }
}

/// Writers are not starved by a stream of overlapping readers: with readers holding the lock
/// back to back all the time, each writer still gets in (writer preference), many times.
#[test]
fn writers_are_not_starved() {
    let _serial = serial();
    let l = pvlock::RwLock::new(0u64);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let readers = cpus() * 4;
    std::thread::scope(|s| {
        for _ in 0..readers {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let g = l.read();
                    for _ in 0..200 {
                        std::hint::spin_loop();
                    }
                    drop(g);
                }
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let l = &l;
        let writer = s.spawn(move || {
            for _ in 0..200 {
                *l.write() += 1;
            }
            let _ = tx.send(());
        });
        // A starved writer fails the test within 20 s: the readers are then stopped, so the
        // writer gets in and the scope can end.
        let done = rx.recv_timeout(Duration::from_secs(20));
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        assert!(
            done.is_ok(),
            "200 writes not done within 20 s: writers starved"
        );
    });
    assert_eq!(*l.read(), 200);
}
