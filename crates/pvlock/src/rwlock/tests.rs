//! Unit tests of `QueuedRwLock`: the word's transitions, writer preference, blocking hand-offs with
//! every backend, timed back-outs, upgrades and downgrades.

use super::*;
use crate::backend::{Auto, Park, Spin};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

fn word<B: Backend>(l: &QueuedRwLock<B>) -> u32 {
    l.state.load(Ordering::Relaxed)
}

fn states<B: Backend>() {
    let l = QueuedRwLock::<B>::new();
    assert!(!l.is_locked() && !l.is_contended());
    l.read();
    l.read();
    assert_eq!(word(&l), 2 * READER);
    assert!(l.is_locked() && !l.is_locked_exclusive());
    assert!(!l.try_write());
    // SAFETY: two reads held.
    unsafe {
        l.read_unlock();
        l.read_unlock();
    }
    assert_eq!(word(&l), 0);
    l.write();
    assert_eq!(word(&l), WRITER);
    assert!(!l.try_read() && !l.try_write() && !l.try_read_recursive());
    // SAFETY: the write lock is held; then the read it became.
    unsafe {
        l.downgrade();
        assert_eq!(word(&l), READER);
        l.read_unlock();
    }
    l.read_upgradable();
    assert!(l.try_read(), "plain reads share with an upgradable read");
    assert!(
        !l.try_read_upgradable(),
        "upgradable reads exclude each other"
    );
    // SAFETY: one plain read and the upgradable read are held.
    unsafe {
        assert!(!l.try_upgrade(), "another reader is inside");
        l.read_unlock();
        assert!(l.try_upgrade());
        assert_eq!(word(&l), WRITER);
        l.write_unlock();
    }
    assert!(l.try_read_upgradable());
    // SAFETY: the upgradable read is held.
    unsafe {
        l.upgrade();
        l.write_unlock();
        assert!(l.try_read_upgradable());
        l.downgrade_upgradable();
        l.read_unlock();
    }
    assert_eq!(word(&l), 0);
    assert!(!l.is_contended(), "{l:?}");
}

crate::testutil::per_backend!(states: spin, park, auto);

/// Waits (yielding) until `cond`, failing after 20 s.
fn until(what: &str, cond: impl Fn() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(20), "never: {what}");
        std::thread::yield_now();
    }
}

/// A writer that queues behind readers sets WAITING; from then on new readers queue too
/// (writer preference), and a recursive read still gets in.
fn writer_preference<B: Backend>() {
    let l = QueuedRwLock::<B>::new();
    l.read();
    let wrote = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            l.write();
            wrote.store(true, Ordering::Relaxed);
            // SAFETY: locked just above.
            unsafe { l.write_unlock() };
        });
        until("the writer waits", || word(&l) & WAITING != 0);
        assert!(
            !l.try_read(),
            "a new reader must not pass a waiting writer: {l:?}"
        );
        assert!(
            l.try_read_recursive(),
            "a recursive read joins the held ones"
        );
        // SAFETY: the recursive read and the first read are held.
        unsafe {
            l.read_unlock();
            assert!(!wrote.load(Ordering::Relaxed));
            l.read_unlock();
        }
    });
    assert!(wrote.load(Ordering::Relaxed));
    assert_eq!(word(&l), 0, "{l:?}");
}

crate::testutil::per_backend!(writer_preference: spin, park);

/// Long holds (past the spin budget): a writer sleeps waiting for a reader (`PARKED_R`), a
/// reader at the head of the wait lock sleeps waiting for a writer (`PARKED_W`), and both are
/// kicked.
fn parked_handoffs<B: Backend>() {
    let l = QueuedRwLock::<B>::new();
    let hold = Duration::from_millis(30);
    // Writer waits for a reader.
    l.read();
    std::thread::scope(|s| {
        s.spawn(|| {
            l.write();
            // SAFETY: locked just above.
            unsafe { l.write_unlock() };
        });
        until("the writer parks", || word(&l) & PARKED_R != 0);
        std::thread::sleep(hold);
        // SAFETY: the read taken above.
        unsafe { l.read_unlock() };
    });
    assert_eq!(word(&l), 0, "{l:?}");
    // A reader waits for the writer.
    l.write();
    std::thread::scope(|s| {
        s.spawn(|| {
            l.read();
            // SAFETY: locked just above.
            unsafe { l.read_unlock() };
        });
        until("the reader parks", || word(&l) & PARKED_W != 0);
        std::thread::sleep(hold);
        // SAFETY: the write lock taken above.
        unsafe { l.write_unlock() };
    });
    assert_eq!(word(&l), 0, "{l:?}");
    // A writer that waits for a writer, then (after a downgrade) for the reader it became.
    l.write();
    std::thread::scope(|s| {
        s.spawn(|| {
            l.write();
            // SAFETY: locked just above.
            unsafe { l.write_unlock() };
        });
        until("the writer parks", || word(&l) & PARKED_W != 0);
        // SAFETY: the write lock taken above; then the read it became.
        unsafe { l.downgrade() };
        until("the writer parks again", || word(&l) & PARKED_R != 0);
        // SAFETY: as above.
        unsafe { l.read_unlock() };
    });
    assert_eq!(word(&l), 0, "{l:?}");
}

crate::testutil::per_backend!(parked_handoffs: park, auto, futex);

/// `downgrade` lets a reader that sleeps waiting for the writer in at once, while the
/// downgraded read is still held, and no writer in between; `upgrade` waits for the other
/// readers to leave, and excludes them from then on.
fn downgrade_and_upgrade_hand_offs<B: Backend>() {
    let l = QueuedRwLock::<B>::new();
    let read = AtomicBool::new(false);
    l.write();
    std::thread::scope(|s| {
        s.spawn(|| {
            l.read();
            read.store(true, Ordering::Relaxed);
            // SAFETY: locked just above.
            unsafe { l.read_unlock() };
        });
        if B::BLOCKING {
            until("the reader parks", || word(&l) & PARKED_W != 0);
        } else {
            until("the reader waits", || l.is_contended());
        }
        assert!(!read.load(Ordering::Relaxed), "a reader passed the writer");
        // SAFETY: the write lock taken above.
        unsafe { l.downgrade() };
        until("the reader joins the downgraded read", || {
            read.load(Ordering::Relaxed)
        });
        assert!(!l.try_write(), "the downgraded read is still held");
        // SAFETY: the read the write lock became.
        unsafe { l.read_unlock() };
    });
    assert_eq!(word(&l), 0, "{l:?}");

    let upgraded = AtomicBool::new(false);
    l.read();
    std::thread::scope(|s| {
        s.spawn(|| {
            l.read_upgradable();
            // SAFETY: the upgradable read taken just above; then the write lock.
            unsafe {
                l.upgrade();
                upgraded.store(true, Ordering::Relaxed);
                l.write_unlock();
            }
        });
        until("the upgrade waits for our read", || word(&l) & WAITING != 0);
        assert!(!l.try_read(), "a new reader passed the upgrade");
        std::thread::sleep(Duration::from_millis(5));
        assert!(!upgraded.load(Ordering::Relaxed), "upgraded past a reader");
        // SAFETY: the read taken above.
        unsafe { l.read_unlock() };
    });
    assert!(upgraded.load(Ordering::Relaxed));
    assert_eq!(word(&l), 0, "{l:?}");
}

crate::testutil::per_backend!(downgrade_and_upgrade_hand_offs: spin, park, auto, futex);

/// Timed attempts that back out, in both roles and at each waiting stage: nothing of theirs is
/// left in the word, and the lock works normally afterwards.
#[test]
fn timed_back_outs() {
    let l = QueuedRwLock::<Auto>::new();
    let short = Duration::from_millis(20);
    l.write();
    assert!(!l.try_read_for(short));
    assert!(!l.try_write_for(short));
    assert_eq!(word(&l), WRITER, "{l:?}");
    // SAFETY: the write lock taken above.
    unsafe { l.write_unlock() };
    l.read();
    assert!(!l.try_write_for(short));
    assert!(l.try_read_for(short));
    assert_eq!(word(&l), 2 * READER, "{l:?}");
    // SAFETY: two reads held.
    unsafe {
        l.read_unlock();
        l.read_unlock();
    }
    // A timed attempt that waits on the wait lock (held by an upgradable read).
    l.read_upgradable();
    assert!(!l.try_write_for(short));
    // SAFETY: the upgradable read taken above.
    unsafe { l.read_upgradable_unlock() };
    assert!(!l.is_locked() && !l.is_contended(), "{l:?}");
    // Timed waiters that get the lock when it is released before their deadline.
    l.write();
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(l.try_read_for(Duration::from_secs(30)));
            // SAFETY: locked just above.
            unsafe { l.read_unlock() };
        });
        until("the reader parks", || word(&l) & PARKED_W != 0);
        // SAFETY: the write lock taken above.
        unsafe { l.write_unlock() };
    });
    l.read();
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(l.try_write_for(Duration::from_secs(30)));
            // SAFETY: locked just above.
            unsafe { l.write_unlock() };
        });
        until("the writer parks", || word(&l) & PARKED_R != 0);
        // SAFETY: the read taken above.
        unsafe { l.read_unlock() };
    });
    assert_eq!(word(&l), 0, "{l:?}");
}

/// Readers and writers (a tenth) with exact totals: writers increment two counters that readers
/// must always see equal.
fn hammer<B: Backend>(threads: usize, iters: u64) {
    struct Data(core::cell::UnsafeCell<(u64, u64)>);
    // SAFETY: accessed only under the rwlock under test.
    unsafe impl Sync for Data {}
    let l = QueuedRwLock::<B>::new();
    let d = Data(core::cell::UnsafeCell::new((0, 0)));
    let writes = core::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (l, d, writes) = (&l, &d, &writes);
            s.spawn(move || {
                let mut x = t as u64 + 1;
                for _ in 0..iters {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if x % 10 == 0 {
                        l.write();
                        // SAFETY: the write lock is held.
                        unsafe {
                            let p = d.0.get();
                            (*p).0 += 1;
                            core::hint::spin_loop();
                            (*p).1 += 1;
                            l.write_unlock();
                        }
                        writes.fetch_add(1, Ordering::Relaxed);
                    } else {
                        l.read();
                        // SAFETY: a read lock is held.
                        unsafe {
                            let (a, b) = core::ptr::read_volatile(d.0.get());
                            assert_eq!(a, b, "a reader saw a half-done write");
                            l.read_unlock();
                        }
                    }
                }
            });
        }
    });
    let (a, b) = d.0.into_inner();
    assert_eq!(a, writes.into_inner());
    assert_eq!(a, b);
    assert_eq!(word(&l), 0, "{l:?}");
    assert!(!l.is_contended());
}

#[test]
fn eight_threads_spin() {
    hammer::<Spin>(8, 2_000);
}

#[test]
fn eight_threads_park() {
    hammer::<Park>(8, 20_000);
}

#[test]
fn eight_threads_auto() {
    hammer::<Auto>(8, 20_000);
}

#[cfg(target_os = "linux")]
#[test]
fn eight_threads_futex() {
    hammer::<crate::backend::Futex>(8, 20_000);
}

#[test]
fn size() {
    assert_eq!(core::mem::size_of::<QueuedRwLock<Spin>>(), 16);
}
