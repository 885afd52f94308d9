//! Timed acquisition of [`Queued`] (`try_lock_for`, `try_lock_until`): a timed waiter never joins
//! the MCS queue, so giving up leaves the queue as it was.
//!
//! # Why not in the queue
//!
//! A queued waiter cannot leave: its predecessor will hand it the queue (`next.locked = 1`) and
//! perhaps hash it for the unlock's kick, and its node is the one node of its thread, needed for
//! the next lock it waits for. Unlinking a node from the middle of an MCS queue needs a handshake
//! with both neighbours (Scott and Scherer's MCS-try), which here may be asleep; leaving the node
//! behind as a ghost would tie the thread's next wait, on any lock, to this lock's progress. So a
//! timed waiter waits beside the queue, as a stealer that sleeps.
//!
//! # Transitions `(tail, timed, pending, locked)`, pv only
//!
//! ```text
//!  timed lock:   (*,k,0,0) -cas-> (*,k,0,1)                   take: byte free, no spinning head
//!  register:     record (lock) in my slot, then
//!                (*,k,p,y) -cas-> (*,k+1,p,y)   (y != 0 or p) the lock is held: count me
//!  wait:         wait_timeout(word unchanged, time left)
//!  take:         (*,k,0,0) -cas-> (*,k-1,0,1)                 (registered) take and leave
//!  give up:      clear record; (*,k,*,*) -sub-> (*,k-1,*,*)   the deadline passed
//!  unlock:       (*,k,*,1) -sub-> (*,k,*,0);  k != 0: kick every slot whose record names the lock
//! ```
//!
//! `timed` is a count of registered timed waiters in bits 9-15 of the word (127 at most; a waiter
//! that finds the count full polls instead of registering). Every unlock that reads a non-zero
//! count kicks *every* registered waiter (it scans the slots, as the `Byte` and `Ticket` unlocks
//! do), so no waiter ever depends on a kick given to another: a waiter that times out and leaves
//! strands nobody, and needs no hand-over. The timed waiters then race for the lock as stealers;
//! a queue head that spins (pending) still may not be robbed, so timed waiters cannot starve the
//! queue, and the unlock of whoever wins kicks the others again.
//!
//! **No lost wake-up.** A waiter registers with a CAS that expects a *held* word (and publishes
//! its record, release); the lock's release comes later in the word's modification order, so the
//! releasing RMW reads the count (or a later RMW does, while the waiter is still counted), and its
//! acquire fence makes the record visible to the scan. A kick that arrives before the wait is
//! latched; a word that changed before the wait makes it return at once.
//!
//! **No use after free.** The unlock scans with the lock's address only, after its releasing RMW,
//! and never reads the word again (the lock may be gone by then); a record naming the address
//! belongs to a waiter inside this lock's `try_lock_until`, which keeps the lock alive.
//!
//! Without a blocking backend (`Queued<Spin>`) the native queue hands the lock from head to head
//! and no one else may take it while a tail is set: a timed waiter could only `try_lock` until the
//! queue happens to be empty, and would fail while the lock is merely busy. So `Queued<Spin>` does
//! not implement `lock_api::RawMutexTimed`.

// Without `std` there is no clock, so no timed API: only the unlock's kick is used.
#![cfg_attr(not(feature = "std"), allow(dead_code))]

use super::{Queued, LOCKED, LOCKED_PENDING_MASK, TIMED_MASK, TIMED_ONE};
use crate::backend::Backend;
use crate::policy::{Backoff, Policy};
use crate::slot;
use crate::stats::{count, Event};
use crate::sync::{fence, Deadline, Ordering};
use crate::tuning::STEAL_BACKOFF_MAX;

impl<B: Backend> Queued<B> {
    /// Takes the lock, waiting at most until `deadline`; `false` if the deadline passed first.
    /// A timed waiter may return `true` a little after its deadline, never `false` before it.
    pub(crate) fn lock_until(&self, deadline: &Deadline) -> bool {
        // Acquire: pairs with the releasing RMW of the previous unlock.
        if self
            .word
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return true;
        }
        self.lock_until_slow(deadline)
    }

    #[cold]
    #[inline(never)]
    fn lock_until_slow(&self, deadline: &Deadline) -> bool {
        count(Event::LockSlowpath);
        if !B::BLOCKING {
            return self.poll_until(deadline, false);
        }
        let Some(me) = B::current() else {
            return self.poll_until(deadline, true);
        };
        me.seen.contend(false);
        // Spin first, as a queued waiter would (the policy's spin: none while crowded).
        let mut spin = Policy::now().queued_spin(false);
        loop {
            if self.take_timed(false) {
                return true;
            }
            if spin.look_aside() && deadline.passed() {
                count(Event::TimedOut);
                return false;
            }
            if !spin.snooze() {
                break;
            }
        }

        // Relaxed: published by the Release of the registering CAS below.
        me.record.lock.store(self.addr(), Ordering::Relaxed);
        // About to sleep: a contender (the policy's load).
        me.seen.contend(true);
        let mut registered = false;
        let mut poll = Backoff::unbounded(STEAL_BACKOFF_MAX, true);
        let got = loop {
            if self.take_timed(registered) {
                break true;
            }
            if deadline.passed() {
                break false;
            }
            let val = self.word.load(Ordering::Relaxed);
            if val & LOCKED_PENDING_MASK == 0 {
                continue; // free again: take it
            }
            if !registered {
                if val & TIMED_MASK == TIMED_MASK {
                    poll.snooze(); // the count is full: poll instead
                    continue;
                }
                // Release: our record happens before any unlock that reads the count (its
                // acquire fence). Expects a held word: the release we wait for comes later.
                registered = self
                    .word
                    .compare_exchange_weak(
                        val,
                        val + TIMED_ONE,
                        Ordering::Release,
                        Ordering::Relaxed,
                    )
                    .is_ok();
                continue; // re-check before blocking
            }
            count(Event::TimedWait);
            crate::load::blocked(|| B::wait_timeout(me, &self.word, val, deadline.remaining()));
        };
        if registered && !got {
            // Leave. Relaxed, both: an unlock that still sees us counted, or our record, only
            // kicks us needlessly (a latched kick is a spurious wake-up later, which waits
            // allow); nobody else depends on our kick (module docs).
            me.record.lock.store(0, Ordering::Relaxed);
            self.word.fetch_sub(TIMED_ONE, Ordering::Relaxed);
        } else {
            // Relaxed: as above.
            me.record.lock.store(0, Ordering::Relaxed);
        }
        if !got {
            count(Event::TimedOut);
        }
        got
    }

    /// The pv steal for a timed waiter: takes the lock if its byte is free and no head spins
    /// (pending), past queued waiters; `registered`: also leaves the timed count, in the same RMW.
    #[inline]
    fn take_timed(&self, registered: bool) -> bool {
        let leave = if registered { TIMED_ONE } else { 0 };
        let mut val = self.word.load(Ordering::Relaxed);
        while val & LOCKED_PENDING_MASK == 0 {
            // Acquire: pairs with the previous releasing unlock.
            match self.word.compare_exchange_weak(
                val,
                (val | LOCKED) - leave,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if B::BLOCKING {
                        count(Event::PvLockStealing);
                    }
                    return true;
                }
                Err(now) => val = now,
            }
        }
        false
    }

    /// No blocking (no backend that blocks, or no waiter slot): try until the deadline, yielding
    /// once the backoff saturates. `steal`: the pv steal; else (native) only a free, unqueued
    /// lock may be taken.
    #[cold]
    fn poll_until(&self, deadline: &Deadline, steal: bool) -> bool {
        let mut backoff = Backoff::unbounded(STEAL_BACKOFF_MAX, true);
        loop {
            if if steal {
                self.take_timed(false)
            } else {
                self.try_lock()
            } {
                return true;
            }
            if backoff.look_aside() && deadline.passed() {
                count(Event::TimedOut);
                return false;
            }
            backoff.snooze();
        }
    }

    /// The unlock found a `SLOW` byte or registered timed waiters in its releasing RMW's result
    /// `old`: the pv unlock of a `SLOW` byte (which also kicks the timed waiters it sees), else
    /// the timed waiters' kick.
    #[cold]
    #[inline(never)]
    pub(super) fn unlock_wake(&self, old: u32) {
        if old & super::LOCKED_MASK != LOCKED {
            self.unlock_slow(old & super::LOCKED_MASK, 0);
        } else {
            Self::kick_timed(self.addr());
        }
    }

    /// Kicks every timed waiter registered on the lock at `addr`. The caller's releasing RMW
    /// read a non-zero timed count; the lock may be gone already: only its address is used.
    #[cold]
    #[inline(never)]
    pub(super) fn kick_timed(addr: usize) {
        // Acquire: the caller's RMW read the count from a waiter's registering (release) CAS, or
        // from a later RMW of its release sequence; this makes the waiters' records visible.
        fence(Ordering::Acquire);
        for i in 0..slot::high_water() {
            let s = slot::slot_at(i);
            // Relaxed: see the fence; a record written later belongs to a waiter whose
            // registering CAS comes after our release, and the next unlock kicks it.
            if s.record.lock.load(Ordering::Relaxed) == addr {
                count(Event::TimedKick);
                B::kick(s);
            }
        }
    }
}

/// The public timed API and `lock_api::RawMutexTimed`, for the backends that block.
#[cfg(all(feature = "std", not(loom)))]
mod api {
    use super::*;
    use std::time::{Duration, Instant};

    impl<B: Backend> Queued<B> {
        /// Takes the lock, waiting at most `timeout`; `false` if it did not get it in time.
        ///
        /// The waiter never joins the queue (module `queued::timed`): it spins, then sleeps
        /// beside the queue and is woken by every unlock until it takes the lock or its time is
        /// up. With [`Spin`](crate::backend::Spin) it only retries `try_lock`, which fails while
        /// waiters are queued.
        ///
        /// ```
        /// use pvlock::{backend::Auto, queued::Queued};
        /// use std::time::Duration;
        ///
        /// let lock = Queued::<Auto>::new();
        /// assert!(lock.try_lock_for(Duration::from_millis(10)));
        /// // Held: a second attempt times out.
        /// assert!(!lock.try_lock_for(Duration::from_millis(10)));
        /// // SAFETY: locked by the first `try_lock_for`.
        /// unsafe { lock.unlock() };
        /// ```
        pub fn try_lock_for(&self, timeout: Duration) -> bool {
            match Instant::now().checked_add(timeout) {
                Some(at) => self.try_lock_until(at),
                None => {
                    self.lock();
                    true
                }
            }
        }

        /// Takes the lock, waiting at most until `deadline`; `false` if it did not get it in
        /// time. See [`try_lock_for`](Self::try_lock_for).
        pub fn try_lock_until(&self, deadline: Instant) -> bool {
            self.lock_until(&Deadline::at(deadline))
        }
    }

    macro_rules! timed {
        ($($b:ty),*) => {$(
            // SAFETY: `try_lock_until` takes the lock only through the same RMWs as `lock`
            // (module docs): mutual exclusion holds; on `false` the lock is not held.
            unsafe impl lock_api::RawMutexTimed for Queued<$b> {
                type Duration = Duration;
                type Instant = Instant;

                #[inline]
                fn try_lock_for(&self, timeout: Duration) -> bool {
                    Queued::try_lock_for(self, timeout)
                }

                #[inline]
                fn try_lock_until(&self, timeout: Instant) -> bool {
                    Queued::try_lock_until(self, timeout)
                }
            }
        )*};
    }

    #[cfg(target_os = "linux")]
    timed!(crate::backend::Futex);
    timed!(crate::backend::Park, crate::backend::Auto);
}

/// Loom models of timed locking (`RUSTFLAGS="--cfg loom" cargo test -p pvlock --release --lib
/// timed`): thread 0 takes the lock with a deadline that passes after a few looks at the clock,
/// the others with `lock`. Under loom a timed wait is an untimed one, so a timed waiter that an
/// unlock forgot to kick deadlocks the model.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::loom_model::{assert_reached, Model, ModelPark};

    /// Thread 0 takes the lock with a deadline that passes at its `CHECKS + 1`-th look at the
    /// clock, the others with `lock`.
    fn acquire<const CHECKS: u32>(l: &Queued<ModelPark>, thread: usize) -> bool {
        if thread == 0 {
            l.lock_until(&Deadline::after_checks(CHECKS))
        } else {
            l.lock();
            true
        }
    }

    fn after(l: &Queued<ModelPark>) {
        assert_eq!(l.word.load(Ordering::Relaxed), 0, "{l:?}");
        assert!(!super::super::hash::contains(l.addr()));
    }

    /// Two threads, a long deadline: the timed waiter takes the free lock, or counts itself
    /// beside the held one, sleeps and is kicked by its unlock (a missing kick deadlocks).
    #[test]
    fn loom_queued_timed_kick() {
        let events = Model::new(2, 3).cs_yields(2).check_acquire(
            Queued::<ModelPark>::new,
            acquire::<3>,
            after,
        );
        assert_reached(&events, Event::TimedWait);
        assert_reached(&events, Event::TimedKick);
    }

    /// Two threads, a short deadline: the timed waiter counts itself beside the held lock and
    /// gives up, leaving the count (the final word must be 0).
    #[test]
    fn loom_queued_timed_out() {
        let events = Model::new(2, 3).cs_yields(2).check_acquire(
            Queued::<ModelPark>::new,
            acquire::<1>,
            after,
        );
        assert_reached(&events, Event::TimedOut);
    }

    /// Three threads: a timed waiter beside a queue whose head blocks (`SLOW`): the unlock of a
    /// `SLOW` byte kicks both the head and the timed waiter. Preemption bound 1.
    #[test]
    fn loom_queued_timed_beside_queue() {
        let events = Model::new(3, 1).cs_yields(2).check_acquire(
            Queued::<ModelPark>::new,
            acquire::<3>,
            after,
        );
        assert_reached(&events, Event::TimedKick);
        assert_reached(&events, Event::PvWaitHead);
    }
}
