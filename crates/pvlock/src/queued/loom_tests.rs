//! Loom models of the `Queued` protocol (the harness: `crate::loom_model`). Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p pvlock --release --lib queued::loom`.

use super::{hash, Queued};
use crate::loom_model::{assert_not_reached, assert_reached, Model, ModelPark, ModelSpin};
use crate::stats::Event;
use crate::sync::Ordering;

/// The holder yields this often inside the critical section in the head models.
const HEAD_CS_YIELDS: usize = 2;

fn after<B: crate::backend::Backend>(l: &Queued<B>) {
    assert_eq!(l.word.load(Ordering::Relaxed), 0, "{l:?}");
    assert!(!hash::contains(l.addr()));
}

fn unlock_fair<B: crate::backend::Backend>(l: &Queued<B>) {
    // SAFETY: the model calls this with the lock held.
    unsafe { l.unlock_fair() }
}

/// (1) Queued node wait/kick: three threads, so a non-head waiter blocks in `wait_node` and is
/// handed over by `kick_node` (HALTED -> HASHED, SLOW), then woken by the unlock.
/// Preemption bound 3.
#[test]
fn loom_queued_node_wait_kick() {
    let events = Model::new(3, 3).check(Queued::<ModelPark>::new, after);
    assert_reached(&events, Event::PvWaitNode);
    assert_reached(&events, Event::PvKickUnlock);
}

/// (2) Head hash/unhash/SLOW: the head hashes itself, sets SLOW and blocks while the holder
/// yields in its critical section; the unlock (`SLOW -> UNLOCKING -> 0`) unhashes and kicks.
/// Removing the unlock's kick makes the model deadlock. Preemption bound 4.
#[test]
fn loom_queued_head_hash_slow() {
    let events = Model::new(2, 4)
        .cs_yields(HEAD_CS_YIELDS)
        .check(Queued::<ModelPark>::new, after);
    assert_reached(&events, Event::PvWaitHead);
    assert_reached(&events, Event::PvKickUnlock);
}

/// (2b) Two rounds each: the first unlocker comes back and steals while the head sleeps, so the
/// head wakes to a lock that is held, its entry gone, and must hash again. Preemption bound 3.
#[test]
fn loom_queued_head_rehash_after_steal() {
    let events = Model::new(2, 3)
        .rounds(2)
        .cs_yields(HEAD_CS_YIELDS)
        .check(Queued::<ModelPark>::new, after);
    assert_reached(&events, Event::PvWaitAgain);
    assert_reached(&events, Event::PvKickUnlock);
}

/// (3) The native protocol with two threads: the pending path (`0,1,1 -> 0,1,0 -> 0,0,1`).
/// Preemption bound 2. A third thread is needed to reach the native queue, and with three
/// spinning threads loom needs bound 2 to get there, which does not finish in 15 minutes; the
/// queue code itself (tail, link, hand-over, tail-clearing CAS) is shared with the pv models
/// above, and the native unit tests run it.
#[test]
fn loom_queued_native_pending() {
    let events = Model::new(2, 2).check(Queued::<ModelSpin>::new, after);
    assert_reached(&events, Event::LockPending);
}

/// (4) Fair unlock, pv: two threads, every unlock fair. The holder yields in its critical
/// section, so the waiter queues while it is held, as a spinning head (`pending`: the CAS to
/// `HANDED`) or a blocked one (`SLOW`: unhash, `HANDED`, kick), and takes the `HANDED` byte.
/// Preemption bound 3 (well under a second); two rounds each, or a third thread, do not finish
/// in 5 minutes: the releaser coming back and queueing behind the waiter is checked by
/// `tests/fair_unlock.rs` instead.
#[test]
fn loom_queued_fair_unlock_pv() {
    let events = Model::new(2, 3).cs_yields(HEAD_CS_YIELDS).check_fair(
        Queued::<ModelPark>::new,
        unlock_fair,
        after,
    );
    assert_reached(&events, Event::LockHanded);
}

/// (5) Fair unlock, native: the pending waiter takes the `HANDED` byte (`0,1,HANDED -> 0,0,1`).
/// Preemption bound 2.
#[test]
fn loom_queued_fair_unlock_native() {
    let events =
        Model::new(2, 2)
            .cs_yields(1)
            .check_fair(Queued::<ModelSpin>::new, unlock_fair, after);
    assert_reached(&events, Event::LockHanded);
}

/// (6) The crowded policy (one CPU, so two queued threads are crowded): queued waiters block
/// without spinning, stealers spin the short entry spin and obey the steal budget; the policy is
/// seen to read "crowded" (`pv_crowded`, which model (7) never reaches). Three threads,
/// preemption bound 1. (That a spent steal budget queues a stealer is unit-tested in
/// `queued::tests` and `tests/stats.rs`; reaching it here needs a bound too costly to explore.)
#[test]
fn loom_queued_crowded_policy() {
    let events = Model::new(3, 1)
        .cpus(1)
        .cs_yields(2)
        .check(Queued::<ModelPark>::new, after);
    assert_reached(&events, Event::PvCrowded);
    assert_reached(&events, Event::PvWaitNode);
    assert_reached(&events, Event::PvKickUnlock);
}

/// (7) The policy with CPUs to spare (four CPUs, two threads): stealers yield between reads once
/// their backoff saturates (under loom at once: the budget is one iteration). Preemption
/// bound 3. Never crowded (`pv_crowded` not reached, the contrast to model (6)).
#[test]
fn loom_queued_spare_cpus_policy() {
    let events = Model::new(2, 3)
        .cpus(4)
        .cs_yields(HEAD_CS_YIELDS)
        .check(Queued::<ModelPark>::new, after);
    assert_not_reached(&events, Event::PvCrowded);
    assert_reached(&events, Event::PvKickUnlock);
}
