//! The native slow path of [`Queued`]: the pending bit, the MCS queue, the hand-over
//! (the kernel's `queued_spin_lock_slowpath` in kernel/locking/qspinlock.c).
//!
//! It calls the pv hooks of [`pv`](super::pv) at the kernel's points (`pv_init_node`,
//! `pv_wait_node`, `pv_wait_head_or_lock`, `pv_kick_node`, and the hybrid trylock before queueing);
//! with a backend that never blocks they compile to nothing, and this is the native qspinlock.

use super::{
    is_open, slot_of, tail_code, Queued, LOCKED, LOCKED_MASK, LOCKED_PENDING_MASK, PENDING,
    TAIL_MASK, TAIL_SHIFT,
};
use crate::backend::Backend;
use crate::policy::Backoff;
use crate::stats::{count, Event};
use crate::sync::{spin_loop, Ordering};
use crate::tuning::{PENDING_LOOPS, STEAL_BACKOFF_MAX};

impl<B: Backend> Queued<B> {
    #[cold]
    #[inline(never)]
    pub(super) fn lock_slow(&self, val: u32) {
        count(Event::LockSlowpath);
        // A blocking backend skips the pending path, as the kernel's pv slow path does: a pending
        // waiter would spin without a node and so could never block.
        if !B::BLOCKING && self.lock_pending(val) {
            return;
        }
        self.lock_queued();
    }

    /// The native pending path: `0,0,* -> 0,1,* -> 0,0,1`. Returns `false` to queue instead.
    #[inline]
    fn lock_pending(&self, mut val: u32) -> bool {
        // Wait (boundedly, to guarantee progress) for a pending -> locked hand-over in progress.
        // 0,1,0 -> 0,0,1
        if val == PENDING {
            let mut cnt = PENDING_LOOPS;
            while val == PENDING && cnt > 0 {
                spin_loop();
                cnt -= 1;
                val = self.word.load(Ordering::Relaxed);
            }
        }
        // Any contention (queue or pending): queue.
        if val & !LOCKED_MASK != 0 {
            return false;
        }
        // 0,0,* -> 0,1,*. Acquire: if the lock was free, this takes it (below) without another
        // acquiring read.
        val = self.word.fetch_or(PENDING, Ordering::Acquire);
        if val & !LOCKED_MASK != 0 {
            // A concurrent locker. Undo PENDING if we set it: it may have made a head's
            // `n,0,0 -> 0,0,1` CAS fail, and that head now retries or waits for a successor.
            if val & PENDING == 0 {
                self.word.fetch_and(!PENDING, Ordering::Relaxed);
            }
            return false;
        }
        // We are pending: wait for the owner to go (0,1,1 -> 0,1,0) or to hand the lock to us
        // (0,1,1 -> 0,1,HANDED, `unlock_fair`). Acquire: pairs with the owner's releasing unlock.
        let mut byte = val & LOCKED_MASK;
        while !is_open(byte) {
            spin_loop();
            byte = self.word.load(Ordering::Acquire) & LOCKED_MASK;
        }
        // Take it and clear pending in one RMW: 0,1,0 -> 0,0,1 or 0,1,HANDED -> 0,0,1 (nobody
        // else changes the byte while pending is set: the fast path needs a zero word and the
        // queue head waits for pending to clear). Relaxed: the acquire was the read of the byte.
        self.word.fetch_add(
            LOCKED.wrapping_sub(PENDING).wrapping_sub(byte),
            Ordering::Relaxed,
        );
        count(Event::LockPending);
        true
    }

    /// The MCS queue (both modes).
    fn lock_queued(&self) {
        let Some(me) = B::current() else {
            self.lock_no_node();
            return;
        };
        let tail = tail_code(me);
        let node = &me.node;

        // Initialise our node. Relaxed: published by the Release of `xchg_tail` (to the successor
        // that finds us as its predecessor) and of the link store (to the predecessor).
        node.locked.store(0, Ordering::Relaxed);
        node.next.store(0, Ordering::Relaxed);
        self.pv_init_node(me);

        // One more try before queueing: natively one trylock; pv, the hybrid trylock (steal while
        // the head is not spinning, as the policy allows; pending means the head is spinning and
        // must not be starved). `spun_out`: its spin ran out its budget with the lock held
        // throughout (the policy then skips our first spin in the queue).
        let (spun_out, mut policy) = match self.pv_try_before_queue(me) {
            Some(queue) => queue,
            None => return,
        };

        // p,*,* -> n,*,*
        let queued_for = B::BLOCKING.then(crate::stats::Timer::start);
        let old = self.xchg_tail(tail);
        if B::BLOCKING {
            // Queued: a contender for the policy's load (and a clock read, beside the wait).
            me.seen.contend(true);
        }
        if old & TAIL_MASK != 0 {
            let prev = slot_of(old >> TAIL_SHIFT);
            // Link us. Release: our node's initialisation happens before the predecessor, having
            // read the link with Acquire, writes our `locked`/`state`.
            prev.node.next.store(tail >> TAIL_SHIFT, Ordering::Release);
            policy = self.pv_wait_node(me, prev, spun_out, policy);
            // Acquire: pairs with the predecessor's Release hand-over; we are the head now.
            while node.locked.load(Ordering::Acquire) == 0 {
                spin_loop();
            }
        }

        // Head of the queue. pv: returns with the lock held (locked byte LOCKED; SLOW is
        // impossible here: no next head is designated yet, and our own entry, if any, is gone).
        let mut val = match self.pv_wait_head_or_lock(me, spun_out, policy) {
            Some(val) => {
                if let Some(t) = queued_for {
                    t.stop(Event::PvQueuedNs);
                }
                val
            }
            // *,x,y -> *,0,0 or *,0,HANDED (`unlock_fair` handed it to us). Acquire: pairs with
            // the owner's releasing unlock (or the pending waiter's, who took and released the
            // lock in between).
            None => loop {
                let v = self.word.load(Ordering::Acquire);
                if v & PENDING == 0 && is_open(v & LOCKED_MASK) {
                    break v;
                }
                spin_loop();
            },
        };

        // Claim the lock: n,0,0 -> 0,0,1 (pv: n,0,1 -> 0,0,1; handed: n,0,HANDED -> 0,0,1) while
        // we are still the tail. Retried (unlike the kernel) when only a transient pending bit
        // made it fail, see the module docs. Relaxed: the acquire happened above; the
        // successor-less queue needs no publication. The pending bit, if set, is kept: its
        // setter saw our tail and clears it.
        while val & TAIL_MASK == tail {
            match self.word.compare_exchange_weak(
                val,
                (val & !(TAIL_MASK | LOCKED_MASK)) | LOCKED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => val = now,
            }
        }
        if !B::BLOCKING {
            // set_locked: *,*,0 -> *,*,1 (or *,*,HANDED -> *,*,1). Nobody else changes the byte
            // while a tail is present (fast path needs a zero word, a pending setter sees the
            // tail and backs off), so `val`'s byte is still the byte.
            let byte = val & LOCKED_MASK;
            debug_assert!(is_open(byte));
            self.word
                .fetch_add(LOCKED.wrapping_sub(byte), Ordering::Relaxed);
        }

        // Someone is queued behind us: wait for the link (it may still be on its way), then hand
        // over. Acquire: the successor's node initialisation happens before our writes to it.
        let mut backoff =
            Backoff::unbounded(STEAL_BACKOFF_MAX, B::BLOCKING).counting(Event::PvLinkYield);
        let next = loop {
            let n = node.next.load(Ordering::Acquire);
            if n != 0 {
                break n;
            }
            backoff.snooze();
        };
        let succ = slot_of(next);
        // Release: our critical section so far (and the queue state) happens before the new head
        // proceeds.
        succ.node.locked.store(1, Ordering::Release);
        self.pv_kick_node(succ);
    }

    /// No waiter slot is free: spin on the trylock without a node (the kernel's `lock_no_node`),
    /// pv: on the steal, yielding the CPU once the backoff saturates.
    #[cold]
    #[inline(never)]
    fn lock_no_node(&self) {
        count(Event::LockNoNode);
        let mut backoff = Backoff::unbounded(STEAL_BACKOFF_MAX, B::BLOCKING);
        loop {
            if B::BLOCKING {
                if self.steal() {
                    return;
                }
            } else if self.try_lock() {
                return;
            }
            backoff.snooze();
        }
    }

    /// `xchg_tail`: replaces the tail, keeping locked and pending. Returns the old word.
    #[inline]
    fn xchg_tail(&self, tail: u32) -> u32 {
        let mut val = self.word.load(Ordering::Relaxed);
        loop {
            // AcqRel: Release publishes our initialised node to the waiter that will find us as
            // its predecessor; Acquire makes our predecessor's node initialisation (its own
            // Release here) happen before our link store into it, so its `next = 0` cannot
            // overwrite the link (the kernel relies on the address dependency instead).
            match self.word.compare_exchange_weak(
                val,
                (val & !TAIL_MASK) | tail,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return val,
                Err(now) => val = now,
            }
        }
    }

    /// pv steal: take the lock if neither locked nor pending, whatever the queue.
    #[inline]
    pub(super) fn steal(&self) -> bool {
        let mut val = self.word.load(Ordering::Relaxed);
        while val & LOCKED_PENDING_MASK == 0 {
            // Acquire: pairs with the previous releasing unlock.
            match self.word.compare_exchange_weak(
                val,
                val | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => val = now,
            }
        }
        false
    }
}
