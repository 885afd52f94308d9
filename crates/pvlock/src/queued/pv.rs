//! The pv hooks of [`Queued`] (the kernel's kernel/locking/qspinlock_paravirt.h): what the
//! native slow path calls at its named points, no-ops with a backend that never blocks, and the
//! pv unlock. Every decision that is policy (how long to spin, whether to steal, yield or wake
//! early) is asked of [`Policy`]; the protocol steps here are correct whatever it answers.

use super::{
    hash, is_open, is_slow, Queued, LOCKED, LOCKED_MASK, LOCKED_PENDING_MASK, PENDING, SLOW,
    TAIL_MASK, UNLOCKING,
};
use crate::backend::Backend;
use crate::policy::Policy;
use crate::slot::node::{HALTED, HASHED, RUNNING};
use crate::slot::Slot;
use crate::stats::{count, Event};
use crate::sync::{fence, Ordering};

/// Whether a newcomer that queues for reason `why` (the stats event of `steal_hybrid`) spun out:
/// its spin ran out with the lock held throughout, so the policy skips its first spin in the queue
/// ("spun out" in the policy docs).
#[inline]
pub(in crate::queued) fn spun_out(why: Event) -> bool {
    why == Event::PvQueuedSpin
}

impl<B: Backend> Queued<B> {
    /// The inline steal of the fast path (`pv_queued_spin_steal_lock`), word `val` seen neither
    /// locked nor pending: past queued waiters only as the policy allows.
    #[inline]
    pub(super) fn steal_inline(&self, val: u32) -> bool {
        if val & TAIL_MASK != 0 {
            match B::current() {
                Some(me) if !Policy::may_bypass_now(&me.account) => return false,
                _ => {}
            }
        }
        // Acquire: pairs with the previous releasing unlock.
        let stolen = self
            .word
            .compare_exchange(val, val | LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if stolen {
            count(Event::PvLockStealing);
        }
        stolen
    }

    /// `pv_init_node`.
    #[inline(always)]
    pub(super) fn pv_init_node(&self, me: &Slot) {
        if B::BLOCKING {
            // Relaxed: published with the rest of the node (see `lock_queued`).
            me.node.state.store(RUNNING, Ordering::Relaxed);
            me.node.entry.store(0, Ordering::Relaxed);
        }
    }

    /// The last try before queueing: natively one trylock; pv the hybrid trylock
    /// ([`steal_hybrid`](Self::steal_hybrid)). `None`: we hold the lock. `Some((spun_out,
    /// policy))`: queue; `spun_out` if the pv spin ran out its budget with the lock held
    /// throughout; `policy`, the slow path's reading at entry, which the waiter keeps until its
    /// first wake-up (natively unused).
    #[inline]
    pub(super) fn pv_try_before_queue(&self, me: &Slot) -> Option<(bool, Policy)> {
        if !B::BLOCKING {
            return (!self.try_lock()).then_some((false, Policy::NATIVE));
        }
        me.seen.contend(false);
        let policy = Policy::now();
        match self.steal_hybrid(me, policy) {
            Ok(()) => {
                count(Event::PvLockStealing);
                None
            }
            Err(why) => {
                count(why);
                me.account.end_run();
                Some((spun_out(why), policy))
            }
        }
    }

    /// `pv_hybrid_queued_unfair_trylock`: while the head is not spinning (pending clear), keep
    /// trying to steal instead of joining the queue, for as long as the policy's entry spin lasts.
    /// Joining a queue whose members sleep means waiting for a chain of wake-ups; stealing keeps
    /// the lock moving among running threads, so a convoy of sleepers does not grow (it drains as
    /// each kicked head sets pending). Bounded: the head's pending bit stops it, so does the spin
    /// (the holder may be preempted), and so does the thread's steal budget when waiters are
    /// queued. Unlike the kernel, it also spins when nobody is queued (module docs,
    /// "Deviations").
    ///
    /// `Err` says why the caller must queue, as the stats event that counts it.
    #[inline]
    pub(super) fn steal_hybrid(&self, me: &Slot, policy: Policy) -> Result<(), Event> {
        let mut backoff = policy.entry_spin(&me.account);
        loop {
            let val = self.word.load(Ordering::Relaxed);
            if val & LOCKED_PENDING_MASK == 0 {
                // Past queued waiters only within our steal budget; otherwise queue.
                if val & TAIL_MASK != 0 && !policy.may_bypass(&me.account) {
                    return Err(Event::PvQueuedBudget);
                }
                // Acquire: pairs with the previous releasing unlock.
                if self
                    .word
                    .compare_exchange_weak(val, val | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(());
                }
                continue;
            }
            if val & PENDING != 0 {
                return Err(Event::PvQueuedPending);
            }
            if !backoff.snooze() {
                return Err(Event::PvQueuedSpin);
            }
            if backoff.yielding() {
                // A stealer that yields may spin for long with few slow-path entries: register
                // it (at most once per epoch; the clock read is small beside the yield), or a
                // process whose threads all spin yielding would never count as crowded.
                me.seen.contend(true);
            }
        }
    }

    /// `pv_wait_node`: a queued (non-head) waiter spins on its `locked` flag, then blocks.
    ///
    /// `spun_out`: our entry spin ran out its budget; the policy skips our first spin. `policy`:
    /// the reading in force; returns the one in force when we became the head (read again after
    /// each wake-up).
    #[inline]
    pub(super) fn pv_wait_node(
        &self,
        me: &Slot,
        prev: &Slot,
        spun_out: bool,
        policy: Policy,
    ) -> Policy {
        if B::BLOCKING {
            self.wait_node(me, prev, spun_out, policy)
        } else {
            policy
        }
    }

    #[cold]
    fn wait_node(&self, me: &Slot, prev: &Slot, spun_out: bool, mut policy: Policy) -> Policy {
        let node = &me.node;
        let mut skip = spun_out;
        loop {
            if skip {
                count(Event::PvSpinSkip);
            }
            let mut spin = policy.queued_spin(skip);
            skip = false;
            let mut early = false;
            let granted = loop {
                // Relaxed: the caller re-reads `locked` with Acquire.
                if node.locked.load(Ordering::Relaxed) != 0 {
                    break true;
                }
                // Wait early when the predecessor is not running (it cannot hand over soon).
                // Relaxed: a heuristic.
                if spin.look_aside() && prev.node.state.load(Ordering::Relaxed) != RUNNING {
                    early = true;
                    break false;
                }
                if !spin.snooze() {
                    break false;
                }
            };
            if granted {
                return policy;
            }

            // smp_store_mb(state, HALTED): the store + full fence of diagram "state vs locked".
            node.state.store(HALTED, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if node.locked.load(Ordering::Relaxed) == 0 {
                count(Event::PvWaitNode);
                if early {
                    count(Event::PvWaitEarly);
                }
                crate::load::blocked(|| B::wait(me, &node.state, HALTED));
                // Woken: the load may have changed while we slept.
                policy = Policy::now();
            }
            // Back to RUNNING, unless `kick_node` made us HASHED: keep that, so that as head we
            // do not hash the lock a second time. Acquire (also on failure): pairs with the
            // Release of `kick_node`'s CAS, so HASHED implies we see `locked == 1` and our entry.
            let _ =
                node.state
                    .compare_exchange(HALTED, RUNNING, Ordering::Acquire, Ordering::Acquire);
            if node.locked.load(Ordering::Relaxed) == 0 {
                count(Event::PvSpuriousWakeup);
            }
        }
    }

    /// `pv_kick_node`, after `succ.locked = 1`: if the successor blocked, do not wake it now;
    /// make it HASHED, record it and set SLOW, so that our unlock wakes it (it would only go
    /// back to sleep as the head while we hold the lock).
    #[inline]
    pub(super) fn pv_kick_node(&self, succ: &Slot) {
        if !B::BLOCKING {
            return;
        }
        // The fence of diagram "state vs locked", between our `locked` store and the CAS.
        fence(Ordering::SeqCst);
        let node = &succ.node;
        if node
            .state
            .compare_exchange(HALTED, HASHED, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            // Release: `succ.locked = 1` happens before the successor's (failing, acquiring) CAS
            // that reads HASHED. We hold the lock (byte LOCKED); the hashed successor never sets
            // SLOW itself. Hash first so that SLOW always implies an entry. Relaxed: our own
            // unlock reads both.
            let entry = hash::hash(self.addr(), succ);
            // Tell the successor where its entry is (index + 1; it reads 0 until now, and then
            // knows that our unlock, which comes after this, has not kicked it yet). Release: the
            // entry's fields are written before a successor that reads this index looks at them.
            node.entry.store(entry as u32 + 1, Ordering::Release);
            let _old = self.word.fetch_or(SLOW, Ordering::Relaxed);
            debug_assert_eq!(_old & LOCKED_MASK, LOCKED);
        }
        // Else it was running: it sees `locked` and carries on by itself.
    }

    /// `pv_wait_head_or_lock`: the queue head spins for the lock with pending set (no stealing),
    /// then hashes itself, sets SLOW and blocks until the unlock kicks it. Natively `None` (the
    /// caller waits for the lock); pv returns the word with the lock held.
    ///
    /// `spun_out`: our entry spin ran out its budget; the policy skips our first spin. `policy`:
    /// the reading in force (read again after each wake-up).
    #[inline]
    pub(super) fn pv_wait_head_or_lock(
        &self,
        me: &Slot,
        spun_out: bool,
        policy: Policy,
    ) -> Option<u32> {
        if !B::BLOCKING {
            return None;
        }
        self.wait_head_or_lock(me, spun_out, policy);
        // Through the queue: our steal budget starts again.
        me.account.restart(crate::tuning::steal_budget());
        Some(self.word.load(Ordering::Relaxed))
    }

    #[cold]
    fn wait_head_or_lock(&self, me: &Slot, spun_out: bool, mut policy: Policy) {
        let addr = self.addr();
        let node = &me.node;
        // Whether a hash entry names us: made by our predecessor's `kick_node` (it made us HASHED,
        // which our own last RMW on `state`, in `wait_node`, read: Relaxed suffices) or by us.
        let mut hashed = node.state.load(Ordering::Relaxed) == HASHED;
        // Where that entry is, once known (module docs, "A head's entry").
        let mut index: Option<usize> = None;
        let mut waits = 0u32;
        let mut skip = spun_out;
        loop {
            // For the wait-early check of our successor. Relaxed: a heuristic.
            node.state.store(RUNNING, Ordering::Relaxed);
            // set_pending: no stealing while we spin. Relaxed: an advisory flag.
            self.word.fetch_or(PENDING, Ordering::Relaxed);
            if skip {
                count(Event::PvSpinSkip);
            }
            let mut spin = policy.head_spin(skip);
            skip = false;
            loop {
                if self.trylock_clear_pending().is_ok() {
                    // The lock was free or handed to us: the unlock that freed it removed our
                    // entry, if we had one (an entry keeps the byte SLOW, which we cannot take).
                    return;
                }
                if !spin.snooze() {
                    break;
                }
            }
            // clear_pending. Relaxed: advisory.
            self.word.fetch_and(!PENDING, Ordering::Relaxed);

            // Is our entry still there? The unlock that kicks us removes it first; after that
            // (the lock was released and then stolen) nobody kicks us for it.
            if hashed {
                if index.is_none() {
                    // Acquire: pairs with `kick_node`'s Release store of the index.
                    index = match node.entry.load(Ordering::Acquire) {
                        0 => None, // not recorded yet: the owner has not unlocked, a kick comes
                        e => Some(e as usize - 1),
                    };
                }
                if index.is_some_and(|i| !hash::holds(i, addr, me)) {
                    hashed = false;
                    index = None;
                }
            }
            // Acquire: if our entry is gone, `holds` synchronized with its removal, so this sees
            // the unlock's UNLOCKING byte or a later value, never the SLOW it removed.
            let mut w = self.word.load(Ordering::Acquire);
            if !hashed && !is_slow(w) {
                let entry = hash::hash(addr, me);
                // Diagram "hash vs SLOW": the entry is written before this release RMW.
                let old = self.set_slow();
                if is_open(old & LOCKED_MASK) {
                    // The lock was free (or handed to us): we own it now (the RMW acquired).
                    // Make the byte LOCKED and drop our entry; only this lock's owner (us)
                    // would look for it.
                    self.word.fetch_sub(SLOW - LOCKED, Ordering::Relaxed);
                    hash::clear(entry);
                    return;
                }
                hashed = true;
                index = Some(entry);
                w = self.word.load(Ordering::Acquire);
            }
            // Safe to block: either our entry is in the table, so the byte is (or, before our
            // predecessor's unlock, becomes) SLOW and that unlock removes the entry and kicks us;
            // or the byte is UNLOCKING, and the unlock that removed our entry kicks us next. A
            // kick that comes first is latched.
            node.state.store(HASHED, Ordering::Relaxed);
            count(Event::PvWaitHead);
            if waits > 0 {
                count(Event::PvWaitAgain);
            }
            waits += 1;
            // Blocks while the word is unchanged and no kick is latched.
            crate::load::blocked(|| B::wait(me, &self.word, w));
            // Woken: the load may have changed while we slept.
            policy = Policy::now();
            if !is_open(self.word.load(Ordering::Relaxed) & LOCKED_MASK) {
                // Still held: spurious, or the lock was stolen after our kick.
                count(Event::PvSpuriousWakeup);
            }
        }
    }

    /// pv `trylock_clear_pending`: `*,1,0 -> *,0,1` (or `*,1,HANDED -> *,0,1`). On failure
    /// returns the word seen.
    #[inline]
    fn trylock_clear_pending(&self) -> Result<(), u32> {
        let mut val = self.word.load(Ordering::Relaxed);
        loop {
            if !is_open(val & LOCKED_MASK) {
                return Err(val);
            }
            // Acquire: pairs with the previous releasing unlock.
            match self.word.compare_exchange_weak(
                val,
                (val & !(PENDING | LOCKED_MASK)) | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => val = now,
            }
        }
    }

    /// The byte `xchg(locked, SLOW)` as a CAS loop; returns the old word.
    #[inline]
    fn set_slow(&self) -> u32 {
        let mut val = self.word.load(Ordering::Relaxed);
        loop {
            debug_assert!(!is_slow(val));
            // AcqRel: Release publishes our hash entry to the unlock that reads SLOW; Acquire
            // takes the lock when the byte was 0 or HANDED.
            match self.word.compare_exchange_weak(
                val,
                (val & !LOCKED_MASK) | SLOW,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return val,
                Err(now) => val = now,
            }
        }
    }

    /// The pv unlock of a `SLOW` byte: remove the blocked head's entry, release the lock with the
    /// byte `to` (0, or `HANDED` for [`unlock_fair`](Self::unlock_fair)), kick the head.
    /// `byte` is the locked byte before; `unlock` has already subtracted `LOCKED` (so the byte
    /// is `UNLOCKING` now), `unlock_fair` has not.
    #[cold]
    #[inline(never)]
    pub(super) fn unlock_slow(&self, byte: u32, to: u32) {
        if byte != SLOW {
            // Not held: a caller broke the contract (the kernel WARNs "corrupted value").
            debug_assert!(false, "pvlock: unlock of a Queued lock that is not held");
            return;
        }
        if to != 0 {
            // SLOW -> UNLOCKING, as `unlock`'s subtraction does. Release: ends the critical
            // section for the waiter that reads the final byte through this release sequence.
            self.word.fetch_sub(LOCKED, Ordering::Release);
        }
        // Acquire fence: our subtraction was a Release RMW only; this orders the look-up after
        // it, synchronizing with the release RMW that set SLOW after hashing (diagram "hash vs
        // SLOW"). When we set SLOW ourselves (`kick_node`) program order suffices.
        fence(Ordering::Acquire);
        let node = hash::unhash(self.addr());
        // Release: the entry is gone before the lock is free (or handed over). Only the owner
        // changes the byte while it is UNLOCKING (stealers and the head need 0, the head never
        // sets SLOW over it), so this sets it without touching tail/pending. After this RMW the
        // lock may be freed or reused: we never read it again, only the (static) node.
        let addr = self.addr();
        let old = self
            .word
            .fetch_add(to.wrapping_sub(UNLOCKING), Ordering::Release);
        count(Event::PvKickUnlock);
        if to != 0 {
            count(Event::LockHanded);
        }
        B::kick(node);
        // Timed waiters counted at our release (module `timed`): kick them too.
        if old & super::TIMED_MASK != 0 {
            Self::kick_timed(addr);
        }
    }
}
