//! The Rust standard library's tests of `RwLock` (library/std/tests/sync/rwlock.rs) and `Condvar`
//! (library/std/tests/sync/condvar.rs), ported to `pvlock::RwLock`, `pvlock::Mutex` and
//! `pvlock::Condvar` with the same logic and constants. pvlock's locks do not poison, so the
//! non-poison variant of each test is the one ported, and the poison-only tests are left out;
//! std's guard-by-value condvar API (`cvar.wait(guard) -> guard`) is written with parking_lot's
//! `&mut guard`. `RwLock::get_cloned`, `set` and `replace` (std-only conveniences) are written
//! out with `read`/`write`. `rand` is replaced by a small xorshift generator. Not ported:
//! `test_read_guard_covariance` and `test_mapped_read_guard_covariance`, which do not compile
//! with any `lock_api` lock (parking_lot's included): `lock_api`'s guards hold a reference to the
//! `RwLock<R, T>`, which is invariant in `T` (it holds an `UnsafeCell<T>`), while std's guards
//! hold a pointer to the data.

#![cfg(not(loom))]

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::Duration;
use std::{hint, mem, thread};

use pvlock::{
    Condvar, MappedRwLockReadGuard, MappedRwLockWriteGuard, Mutex, RwLock, RwLockReadGuard,
    RwLockWriteGuard,
};

#[derive(Eq, PartialEq, Debug)]
struct NonCopy(i32);

#[derive(Eq, PartialEq, Debug)]
struct NonCopyNeedsDrop(i32);

impl Drop for NonCopyNeedsDrop {
    fn drop(&mut self) {
        hint::black_box(());
    }
}

/// std's `test_rng().random_bool` stand-in.
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rng(t | 1)
    }
    fn random_bool(&mut self, p: f64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

#[test]
fn test_needs_drop() {
    assert!(!mem::needs_drop::<NonCopy>());
    assert!(mem::needs_drop::<NonCopyNeedsDrop>());
}

mod rwlock {
    use super::*;

    #[test]
    fn smoke() {
        let l = RwLock::new(());
        drop(l.read());
        drop(l.write());
        drop((l.read(), l.read()));
        drop(l.write());
    }

    #[test]
    fn frob() {
        const N: u32 = 10;
        const M: usize = 1000;

        let r = Arc::new(RwLock::new(()));

        let (tx, rx) = channel::<()>();
        for _ in 0..N {
            let tx = tx.clone();
            let r = r.clone();
            thread::spawn(move || {
                let mut rng = Rng::new();
                for _ in 0..M {
                    if rng.random_bool(1.0 / (N as f64)) {
                        drop(r.write());
                    } else {
                        drop(r.read());
                    }
                }
                drop(tx);
            });
        }
        drop(tx);
        let _ = rx.recv();
    }

    #[test]
    fn test_rw_arc() {
        let arc = Arc::new(RwLock::new(0));
        let arc2 = arc.clone();
        let (tx, rx) = channel();

        thread::spawn(move || {
            let mut lock = arc2.write();
            for _ in 0..10 {
                let tmp = *lock;
                *lock = -1;
                thread::yield_now();
                *lock = tmp + 1;
            }
            tx.send(()).unwrap();
        });

        // Readers try to catch the writer in the act
        let mut children = Vec::new();
        for _ in 0..5 {
            let arc3 = arc.clone();
            children.push(thread::spawn(move || {
                let lock = arc3.read();
                assert!(*lock >= 0);
            }));
        }

        // Wait for children to pass their asserts
        for r in children {
            assert!(r.join().is_ok());
        }

        // Wait for writer to finish
        rx.recv().unwrap();
        let lock = arc.read();
        assert_eq!(*lock, 10);
    }

    #[test]
    fn test_rw_arc_access_in_unwind() {
        let arc = Arc::new(RwLock::new(1));
        let arc2 = arc.clone();
        let _ = thread::spawn(move || {
            struct Unwinder {
                i: Arc<RwLock<isize>>,
            }
            impl Drop for Unwinder {
                fn drop(&mut self) {
                    let mut lock = self.i.write();
                    *lock += 1;
                }
            }
            let _u = Unwinder { i: arc2 };
            panic!();
        })
        .join();
        let lock = arc.read();
        assert_eq!(*lock, 2);
    }

    #[test]
    fn test_rwlock_unsized() {
        let rw: &RwLock<[i32]> = &RwLock::new([1, 2, 3]);
        {
            let b = &mut *rw.write();
            b[0] = 4;
            b[2] = 5;
        }
        let comp: &[i32] = &[4, 2, 5];
        assert_eq!(&*rw.read(), comp);
    }

    #[test]
    fn test_into_inner() {
        let m = RwLock::new(NonCopy(10));
        assert_eq!(m.into_inner(), NonCopy(10));
    }

    #[test]
    fn test_into_inner_drop() {
        struct Foo(Arc<AtomicUsize>);
        impl Drop for Foo {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }

        let num_drops = Arc::new(AtomicUsize::new(0));
        let m = RwLock::new(Foo(num_drops.clone()));
        assert_eq!(num_drops.load(Ordering::SeqCst), 0);
        {
            let _inner = m.into_inner();
            assert_eq!(num_drops.load(Ordering::SeqCst), 0);
        }
        assert_eq!(num_drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn test_get_cloned() {
        #[derive(Clone, Eq, PartialEq, Debug)]
        struct Cloneable(i32);

        let m = RwLock::new(Cloneable(10));

        assert_eq!(m.read().clone(), Cloneable(10));
    }

    #[test]
    fn test_get_mut() {
        let mut m = RwLock::new(NonCopy(10));
        *m.get_mut() = NonCopy(20);
        assert_eq!(m.into_inner(), NonCopy(20));
    }

    #[test]
    fn test_set() {
        fn inner<T>(mut init: impl FnMut() -> T, mut value: impl FnMut() -> T)
        where
            T: Debug + Eq,
        {
            let m = RwLock::new(init());

            assert_eq!(*m.read(), init());
            *m.write() = value();
            assert_eq!(*m.read(), value());
        }

        inner(|| NonCopy(10), || NonCopy(20));
        inner(|| NonCopyNeedsDrop(10), || NonCopyNeedsDrop(20));
    }

    #[test]
    fn test_replace() {
        fn inner<T>(mut init: impl FnMut() -> T, mut value: impl FnMut() -> T)
        where
            T: Debug + Eq,
        {
            let m = RwLock::new(init());

            assert_eq!(*m.read(), init());
            assert_eq!(mem::replace(&mut *m.write(), value()), init());
            assert_eq!(*m.read(), value());
        }

        inner(|| NonCopy(10), || NonCopy(20));
        inner(|| NonCopyNeedsDrop(10), || NonCopyNeedsDrop(20));
    }

    #[test]
    fn test_downgrade_basic() {
        let r = RwLock::new(());

        let write_guard = r.write();
        let _read_guard = RwLockWriteGuard::downgrade(write_guard);
    }

    #[test]
    fn test_downgrade_observe() {
        // Inspired by the test `test_rwlock_downgrade` from parking_lot.

        const W: usize = 20;
        const N: usize = 100;

        // This test spawns `W` writer threads, where each will increment a counter `N` times,
        // ensuring that the value they wrote has not changed after downgrading.

        let rw = Arc::new(RwLock::new(0));

        // Spawn the writers that will do `W * N` operations and checks.
        let handles: Vec<_> = (0..W)
            .map(|_| {
                let rw = rw.clone();
                thread::spawn(move || {
                    for _ in 0..N {
                        // Increment the counter.
                        let mut write_guard = rw.write();
                        *write_guard += 1;
                        let cur_val = *write_guard;

                        // Downgrade the lock to read mode, where the value protected cannot be
                        // modified.
                        let read_guard = RwLockWriteGuard::downgrade(write_guard);
                        assert_eq!(cur_val, *read_guard);
                    }
                })
            })
            .collect();

        for handle in handles {
            handle.join().unwrap();
        }

        assert_eq!(*rw.read(), W * N);
    }

    #[test]
    fn test_downgrade_atomic() {
        const NEW_VALUE: i32 = -1;

        // This test checks that `downgrade` is atomic, meaning as soon as a write lock has been
        // downgraded, the lock must be in read mode and no other threads can take the write lock
        // to modify the protected value.

        // `W` is the number of evil writer threads.
        const W: usize = 20;
        let rwlock = Arc::new(RwLock::new(0));

        // Spawns many evil writer threads that will try and write to the locked value before the
        // initial writer (who has the exclusive lock) can read after it downgrades.
        // If the `RwLock` behaves correctly, then the initial writer should read the value it
        // wrote itself as no other thread should be able to mutate the protected value.

        // Put the lock in write mode, causing all future threads trying to access this go to
        // sleep.
        let mut main_write_guard = rwlock.write();

        // Spawn all of the evil writer threads. They will each increment the protected value by 1.
        let handles: Vec<_> = (0..W)
            .map(|_| {
                let rwlock = rwlock.clone();
                thread::spawn(move || {
                    // Will go to sleep since the main thread initially has the write lock.
                    let mut evil_guard = rwlock.write();
                    *evil_guard += 1;
                })
            })
            .collect();

        // Wait for a good amount of time so that evil threads go to sleep.
        // Note: this is not strictly necessary...
        let eternity = std::time::Duration::from_millis(42);
        thread::sleep(eternity);

        // Once everyone is asleep, set the value to `NEW_VALUE`.
        *main_write_guard = NEW_VALUE;

        // Atomically downgrade the write guard into a read guard.
        let main_read_guard = RwLockWriteGuard::downgrade(main_write_guard);

        // If the above is not atomic, then it would be possible for an evil thread to get in front
        // of this read and change the value to be non-negative.
        assert_eq!(*main_read_guard, NEW_VALUE, "`downgrade` was not atomic");

        // Drop the main read guard and allow the evil writer threads to start incrementing.
        drop(main_read_guard);

        for handle in handles {
            handle.join().unwrap();
        }

        let final_check = rwlock.read();
        assert_eq!(*final_check, W as i32 + NEW_VALUE);
    }

    #[test]
    fn test_mapping_mapped_guard() {
        let arr = [0; 4];
        let mut lock = RwLock::new(arr);
        let guard = lock.write();
        let guard = RwLockWriteGuard::map(guard, |arr| &mut arr[..2]);
        let mut guard = MappedRwLockWriteGuard::map(guard, |slice| &mut slice[1..]);
        assert_eq!(guard.len(), 1);
        guard[0] = 42;
        drop(guard);
        assert_eq!(*lock.get_mut(), [0, 42, 0, 0]);

        let guard = lock.read();
        let guard = RwLockReadGuard::map(guard, |arr| &arr[..2]);
        let guard = MappedRwLockReadGuard::map(guard, |slice| &slice[1..]);
        assert_eq!(*guard, [42]);
        drop(guard);
        assert_eq!(*lock.get_mut(), [0, 42, 0, 0]);
    }

    #[test]
    fn nonpoison_test_rwlock_try_write() {
        let lock = RwLock::new(0isize);
        let read_guard = lock.read();

        let write_result = lock.try_write();
        assert!(
            write_result.is_none(),
            "try_write should not succeed while read_guard is in scope"
        );

        drop(read_guard);
        let mapped_read_guard = RwLockReadGuard::map(lock.read(), |_| &());

        let write_result = lock.try_write();
        assert!(
            write_result.is_none(),
            "try_write should not succeed while mapped_read_guard is in scope"
        );

        drop(mapped_read_guard);
    }
}

mod condvar {
    use super::*;

    #[test]
    fn smoke() {
        let c = Condvar::new();
        c.notify_one();
        c.notify_all();
    }

    #[test]
    fn notify_one() {
        let m = Arc::new(Mutex::new(()));
        let m2 = m.clone();
        let c = Arc::new(Condvar::new());
        let c2 = c.clone();

        let mut g = m.lock();
        let _t = thread::spawn(move || {
            let _g = m2.lock();
            c2.notify_one();
        });
        c.wait(&mut g);
        drop(g);
    }

    #[test]
    fn notify_all() {
        const N: usize = 10;

        let data = Arc::new((Mutex::new(0), Condvar::new()));
        let (tx, rx) = channel();
        for _ in 0..N {
            let data = data.clone();
            let tx = tx.clone();
            thread::spawn(move || {
                let (lock, cond) = &*data;
                let mut cnt = lock.lock();
                *cnt += 1;
                if *cnt == N {
                    tx.send(()).unwrap();
                }
                while *cnt != 0 {
                    cond.wait(&mut cnt);
                }
                tx.send(()).unwrap();
            });
        }
        drop(tx);

        let (lock, cond) = &*data;
        rx.recv().unwrap();
        let mut cnt = lock.lock();
        *cnt = 0;
        cond.notify_all();
        drop(cnt);

        for _ in 0..N {
            rx.recv().unwrap();
        }
    }

    #[test]
    fn test_mutex_arc_condvar() {
        struct Packet<T>(Arc<(Mutex<T>, Condvar)>);

        let packet = Packet(Arc::new((Mutex::new(false), Condvar::new())));
        let packet2 = Packet(packet.0.clone());

        let (tx, rx) = channel();

        let _t = thread::spawn(move || {
            // Wait until our parent has taken the lock.
            rx.recv().unwrap();
            let (lock, cvar) = &*packet2.0;

            // Set the data to `true` and wake up our parent.
            let mut guard = lock.lock();
            *guard = true;
            cvar.notify_one();
        });

        let (lock, cvar) = &*packet.0;
        let mut guard = lock.lock();
        // Wake up our child.
        tx.send(()).unwrap();

        // Wait until our child has set the data to `true`.
        assert!(!*guard);
        while !*guard {
            cvar.wait(&mut guard);
        }
    }

    #[test]
    fn wait_while() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let pair2 = pair.clone();

        // Inside of our lock, spawn a new thread, and then wait for it to start.
        thread::spawn(move || {
            let (lock, cvar) = &*pair2;
            let mut started = lock.lock();
            *started = true;
            // We notify the condvar that the value has changed.
            cvar.notify_one();
        });

        // Wait for the thread to start up.
        let (lock, cvar) = &*pair;
        let mut guard = lock.lock();
        cvar.wait_while(&mut guard, |started| !*started);
        assert!(*guard);
    }

    #[test]
    fn wait_timeout_wait() {
        let m = Arc::new(Mutex::new(()));
        let c = Arc::new(Condvar::new());

        loop {
            let mut g = m.lock();
            let no_timeout = c.wait_for(&mut g, Duration::from_millis(1));
            // spurious wakeups mean this isn't necessarily true
            // so execute test again, if not timeout
            if !no_timeout.timed_out() {
                continue;
            }

            break;
        }
    }

    #[test]
    fn wait_timeout_while_wait() {
        let m = Arc::new(Mutex::new(()));
        let c = Arc::new(Condvar::new());

        let mut g = m.lock();
        let wait = c.wait_while_for(&mut g, |_| true, Duration::from_millis(1));
        // no spurious wakeups. ensure it timed-out
        assert!(wait.timed_out());
    }

    #[test]
    fn wait_timeout_while_instant_satisfy() {
        let m = Arc::new(Mutex::new(()));
        let c = Arc::new(Condvar::new());

        let mut g = m.lock();
        let wait = c.wait_while_for(&mut g, |_| false, Duration::from_millis(0));
        // ensure it didn't time-out even if we were not given any time.
        assert!(!wait.timed_out());
    }

    #[test]
    fn wait_timeout_while_wake() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let pair_copy = pair.clone();

        let (m, c) = &*pair;
        let mut g = m.lock();
        let _t = thread::spawn(move || {
            let (lock, cvar) = &*pair_copy;
            let mut started = lock.lock();
            thread::sleep(Duration::from_millis(1));
            *started = true;
            cvar.notify_one();
        });
        let wait = c.wait_while_for(
            &mut g,
            |&mut notified| !notified,
            Duration::from_millis(u64::MAX),
        );
        // ensure it didn't time-out even if we were not given any time.
        assert!(!wait.timed_out());
        assert!(*g);
    }

    #[test]
    fn wait_timeout_wake() {
        let m = Arc::new(Mutex::new(()));
        let c = Arc::new(Condvar::new());

        loop {
            let mut g = m.lock();

            let c2 = c.clone();
            let m2 = m.clone();

            let notified = Arc::new(AtomicBool::new(false));
            let notified_copy = notified.clone();

            let t = thread::spawn(move || {
                let _g = m2.lock();
                thread::sleep(Duration::from_millis(1));
                notified_copy.store(true, Ordering::Relaxed);
                c2.notify_one();
            });
            let timeout_res = c.wait_for(&mut g, Duration::from_millis(u64::MAX));
            assert!(!timeout_res.timed_out());
            // spurious wakeups mean this isn't necessarily true
            // so execute test again, if not notified
            if !notified.load(Ordering::Relaxed) {
                t.join().unwrap();
                continue;
            }
            drop(g);

            t.join().unwrap();

            break;
        }
    }
}
