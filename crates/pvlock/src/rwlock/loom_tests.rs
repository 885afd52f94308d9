//! Loom models of the `QueuedRwLock` hand-offs (`RUSTFLAGS="--cfg loom" cargo test -p pvlock
//! --release --lib rwlock`): a writer sleeping for the readers (`PARKED_R`), a queued reader
//! sleeping for the writer (`PARKED_W`), a batch of readers behind a writer, timed back-outs and
//! upgrades. Every model checks exclusion with a loom `UnsafeCell` (a read and a write that the
//! lock did not order are a causality violation), completion (a lost kick is a deadlock), the
//! final word, and that it reached the path it is for.

use super::*;
use crate::loom_model::{assert_reached, Model, ModelPark};
use loom::cell::UnsafeCell;

type L = QueuedRwLock<ModelPark>;

struct S {
    lock: L,
    data: UnsafeCell<u32>,
}
// SAFETY: `data` is accessed only under `lock` (loom checks it).
unsafe impl Sync for S {}
// SAFETY: as above.
unsafe impl Send for S {}

fn setup() -> S {
    S {
        lock: L::new(),
        data: UnsafeCell::new(0),
    }
}

fn yields(n: usize) {
    for _ in 0..n {
        loom::thread::yield_now();
    }
}

fn read(s: &S, hold: usize) {
    s.lock.read();
    s.data.with(|d| {
        // SAFETY: a read lock is held.
        let _ = unsafe { *d };
    });
    yields(hold);
    // SAFETY: locked above.
    unsafe { s.lock.read_unlock() };
}

fn write(s: &S, hold: usize) {
    s.lock.write();
    yields(hold);
    s.data.with_mut(|d| {
        // SAFETY: the write lock is held.
        unsafe { *d += 1 };
    });
    // SAFETY: locked above.
    unsafe { s.lock.write_unlock() };
}

fn clean(s: &S) {
    assert_eq!(s.lock.state.load(Ordering::Relaxed), 0, "{:?}", s.lock);
    assert!(!s.lock.wait.is_locked(), "{:?}", s.lock);
}

fn writes(s: &S, n: u32) {
    clean(s);
    // SAFETY: every thread has joined.
    assert_eq!(s.data.with(|d| unsafe { *d }), n);
}

/// A writer that finds a reader inside sets WAITING, sleeps with `PARKED_R`, and the reader's
/// unlock (the last reader) kicks it. Preemption bound 3.
#[test]
fn loom_rwlock_writer_waits_for_reader() {
    let events = Model::new(2, 3).check_threads(
        setup,
        |s, t| if t == 0 { read(s, 2) } else { write(s, 0) },
        |s| writes(s, 1),
    );
    assert_reached(&events, Event::RwWait);
    assert_reached(&events, Event::RwKick);
}

/// A reader that finds the writer inside queues, counts itself in, sleeps with `PARKED_W`, and
/// the writer's unlock kicks it. Preemption bound 3.
#[test]
fn loom_rwlock_reader_waits_for_writer() {
    let events = Model::new(2, 3).check_threads(
        setup,
        |s, t| if t == 0 { write(s, 2) } else { read(s, 0) },
        |s| writes(s, 1),
    );
    assert_reached(&events, Event::RwReadSlowpath);
    assert_reached(&events, Event::RwKick);
}

/// Two readers and a writer: writer preference (readers that come after WAITING queue), the
/// unique last reader's kick, a batch of readers behind the writer. Preemption bound 2.
#[test]
fn loom_rwlock_two_readers_one_writer() {
    let events = Model::new(3, 2).check_threads(
        setup,
        |s, t| if t == 0 { write(s, 1) } else { read(s, 1) },
        |s| writes(s, 1),
    );
    assert_reached(&events, Event::RwWait);
    assert_reached(&events, Event::RwKick);
}

/// Downgrade with a writer sleeping for the write lock: the downgrade kicks it, it sleeps again
/// for the reader the writer became, and that reader's unlock kicks it. Preemption bound 3.
#[test]
fn loom_rwlock_downgrade() {
    let events = Model::new(2, 3).check_threads(
        setup,
        |s, t| {
            if t == 0 {
                s.lock.write();
                yields(2);
                s.data.with_mut(|d| {
                    // SAFETY: the write lock is held.
                    unsafe { *d += 1 }
                });
                // SAFETY: the write lock is held; then the read it became.
                unsafe { s.lock.downgrade() };
                yields(1);
                // SAFETY: as above.
                unsafe { s.lock.read_unlock() };
            } else {
                write(s, 0);
            }
        },
        |s| writes(s, 2),
    );
    assert_reached(&events, Event::RwKick);
}

/// Upgradable read and upgrade beside a plain reader: the upgrade turns its read into WAITING,
/// sleeps for the other reader and is kicked by its unlock. Preemption bound 3.
#[test]
fn loom_rwlock_upgrade() {
    let events = Model::new(2, 3).check_threads(
        setup,
        |s, t| {
            if t == 0 {
                s.lock.read_upgradable();
                // SAFETY: the upgradable read is held, then the write lock.
                unsafe { s.lock.upgrade() };
                s.data.with_mut(|d| {
                    // SAFETY: the write lock is held.
                    unsafe { *d += 1 }
                });
                // SAFETY: as above.
                unsafe { s.lock.write_unlock() };
            } else {
                read(s, 2);
            }
        },
        |s| writes(s, 1),
    );
    assert_reached(&events, Event::RwWait);
    assert_reached(&events, Event::RwKick);
}

/// Timed: a writer with a deadline (passing at its second look at the clock: the first is before
/// its spin) against a reader, and a reader with one (its third look) against a writer; each either gets the lock, or backs out leaving
/// nothing in the word, or finds its kicker on the way and waits for it. Preemption bound 2.
#[test]
fn loom_rwlock_timed() {
    let events = Model::new(2, 2).check_threads(
        setup,
        |s, t| {
            if t == 0 {
                if s.lock.write_until(&Deadline::after_checks(1)) {
                    s.data.with_mut(|d| {
                        // SAFETY: the write lock is held.
                        unsafe { *d += 1 }
                    });
                    // SAFETY: locked above.
                    unsafe { s.lock.write_unlock() };
                }
                if s.lock.read_until(&Deadline::after_checks(2)) {
                    // SAFETY: locked above.
                    unsafe { s.lock.read_unlock() };
                }
            } else {
                read(s, 2);
                write(s, 2);
            }
        },
        clean,
    );
    assert_reached(&events, Event::TimedOut);
    assert_reached(&events, Event::RwKick);
}
