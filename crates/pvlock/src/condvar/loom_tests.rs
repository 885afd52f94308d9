//! Loom models of the condition variable (`RUSTFLAGS="--cfg loom" cargo test -p pvlock --release
//! --lib condvar`): no lost notification with `notify_one`, the chained wake-up of `notify_all`,
//! and a timed wait that leaves its list. The mutex is a `Queued` with the model backend.

use super::*;
use crate::loom_model::{assert_reached, Model, ModelPark};
use loom::cell::UnsafeCell;

struct S {
    m: Queued<ModelPark>,
    /// Under `m`: set by the notifier.
    flag: UnsafeCell<bool>,
    /// Under `m`: waiters that saw the flag.
    woke: UnsafeCell<u32>,
    cv: CondvarWith<ModelPark>,
}
// SAFETY: the cells are accessed only under `m` (loom checks it) or after joining.
unsafe impl Sync for S {}
// SAFETY: as above.
unsafe impl Send for S {}

fn setup() -> S {
    S {
        m: Queued::new(),
        flag: UnsafeCell::new(false),
        woke: UnsafeCell::new(0),
        cv: CondvarWith::new(),
    }
}

fn addr(s: &S) -> usize {
    &s.m as *const _ as usize
}

/// Waits for the flag, with `deadline` (`None`: untimed). Returns whether it saw it.
fn waiter(s: &S, checks: Option<u32>) -> bool {
    s.m.lock();
    // SAFETY (all cell accesses): `m` is held.
    let mut seen = s.flag.with(|f| unsafe { *f });
    while !seen {
        let d = checks.map(Deadline::after_checks);
        let timed_out = s.cv.wait_raw(addr(s), d.as_ref(), |f| {
            // SAFETY: `m` is held; it is taken again below.
            unsafe { s.m.unlock() };
            f();
            s.m.lock();
        });
        seen = s.flag.with(|f| unsafe { *f });
        if timed_out {
            break;
        }
    }
    if seen {
        s.woke.with_mut(|w| unsafe { *w += 1 });
    }
    // SAFETY: locked above.
    unsafe { s.m.unlock() };
    seen
}

fn notifier(s: &S, all: bool) {
    s.m.lock();
    // SAFETY: `m` is held.
    s.flag.with_mut(|f| unsafe { *f = true });
    // SAFETY: locked above.
    unsafe { s.m.unlock() };
    if all {
        s.cv.notify_all();
    } else {
        s.cv.notify_one();
    }
}

fn after(s: &S, waiters: u32) {
    assert!(!s.m.is_locked());
    assert!(s.cv.waiting.is_empty() && s.cv.chain.is_empty());
    assert_eq!(s.cv.mutex.load(Ordering::Relaxed), 0);
    // SAFETY: every thread has joined.
    assert_eq!(s.woke.with(|w| unsafe { *w }), waiters);
}

/// One waiter, one notifier that sets the flag under the mutex and notifies after releasing
/// it: the waiter must wake (a lost notification deadlocks). Preemption bound 3.
#[test]
fn loom_condvar_notify_one() {
    let events = Model::new(2, 3).check_threads(
        setup,
        |s, t| {
            if t == 0 {
                assert!(waiter(s, None));
            } else {
                notifier(s, false);
            }
        },
        |s| after(s, 1),
    );
    assert_reached(&events, Event::CvWait);
}

/// Two waiters, `notify_all`: the runner wakes the other once it holds the mutex (a broken
/// chain deadlocks). Preemption bound 2.
#[test]
fn loom_condvar_notify_all_chain() {
    let events = Model::new(3, 2).check_threads(
        setup,
        |s, t| {
            if t < 2 {
                assert!(waiter(s, None));
            } else {
                notifier(s, true);
            }
        },
        |s| after(s, 2),
    );
    assert_reached(&events, Event::CvChain);
}

/// A timed waiter (deadline at its first look at the clock) and a notifier: it sees the flag,
/// or times out and leaves its list (the lists must end empty and the mutex forgotten).
/// Preemption bound 3.
#[test]
fn loom_condvar_timed() {
    let events = Model::new(2, 3).check_threads(
        setup,
        |s, t| {
            if t == 0 {
                let _ = waiter(s, Some(0));
            } else {
                notifier(s, false);
            }
        },
        |s| {
            assert!(!s.m.is_locked());
            assert!(s.cv.waiting.is_empty() && s.cv.chain.is_empty());
            assert_eq!(s.cv.mutex.load(Ordering::Relaxed), 0);
        },
    );
    assert_reached(&events, Event::TimedOut);
}
