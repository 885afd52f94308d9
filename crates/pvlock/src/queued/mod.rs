//! `Queued`: the kernel's queued spinlock (qspinlock) with the complete pvqspinlock slow path.
//!
//! Follows kernel/locking/qspinlock.c (native) and kernel/locking/qspinlock_paravirt.h (pv) of
//! Linux; the code is our own, the protocol and its names are the kernel's.
//!
//! # Word
//!
//! ```text
//!  31                          16 15          9   8   7               0
//! +------------------------------+-------------+---+-----------------+
//! |  tail: waiter slot index + 1 |    timed    | P |   locked byte   |
//! +------------------------------+-------------+---+-----------------+
//! ```
//!
//! * locked byte: 0 free, `LOCKED` (1) held, `SLOW` (3, pv only) held *and* a blocked queue head
//!   is recorded in the lock-to-waiter hash table: the unlock must look it up and kick it;
//!   `UNLOCKING` (2, pv only) the owner's unlock is removing that entry: still held for everyone
//!   else, free once the unlock clears it. "Slow" below means `SLOW` or `UNLOCKING` (bit 1 set).
//!   `HANDED` (4) a fair unlock handed the lock to the waiter next in line (the pending waiter,
//!   else the queue head): held for everyone else ("Fair unlock" below).
//! * `P`, pending: native: the one waiter that waits without a queue node; pv: the queue head is
//!   spinning actively, newcomers must not steal.
//! * tail: the last waiter of the MCS queue, as its [`Slot`] index + 1; 0 = no queue.
//! * timed (pv only): how many timed waiters (`try_lock_for`) sleep beside the queue; every
//!   unlock that sees a non-zero count kicks them (module `timed`, "Timed locking" below).
//!
//! Rust has no mixed-size atomics on one location, so every byte or half-word operation of the
//! kernel is a 32-bit RMW here: `clear_pending_set_locked` is one `fetch_add`, the unlock (native
//! and pv) one `fetch_sub`; `xchg_tail`, `trylock_clear_pending` and the byte `xchg` to `SLOW` are
//! CAS loops that keep the other fields. Every word change is an RMW (never a plain store), so all of them extend the
//! release sequence of the last release RMW, which several orderings below rely on.
//!
//! # Nodes: one per thread
//!
//! The MCS node of a waiter is part of its [`Slot`] (its `Node`). The kernel needs
//! four nodes per CPU because an interrupt can nest a second spinlock slow path inside the first;
//! a thread cannot: it waits for one lock at a time, and its node is free again as soon as it
//! holds the lock (the head hands the queue over to its successor before `lock` returns, and the
//! unlock never touches it). So one node per thread suffices, and no per-holder state exists,
//! which is why the `lock_api` guards may be `Send` (another thread may unlock). When no slot is
//! free ([`Backend::current`] returns `None`), the thread takes the lock without a node (the
//! kernel's `lock_no_node`): it spins on the trylock (pv: the steal), yielding the CPU now and then.
//!
//! # Transitions `(tail, pending, locked)`, native (`Queued<Spin>`)
//!
//! ```text
//!               fast     :    slow                                  :    unlock
//!                        :                                          :
//!  uncontended  (0,0,0) -:--> (0,0,1) ------------------------------:--> (*,*,0)
//!                        :       | ^--------.------.             /  :
//!                        :       v           \      \            |  :
//!  pending               :    (0,1,1) +--> (0,1,0)   \           |  :
//!                        :       | ^--'              |           |  :
//!                        :       v                   |           |  :
//!  uncontended           :    (n,x,y) +--> (n,0,0) --'           |  :
//!    queue               :       | ^--'                          |  :
//!                        :       v                               |  :
//!  contended             :    (*,x,y) +--> (*,0,0) ---> (*,0,1) -'  :
//!    queue               :         ^--'                             :
//! ```
//!
//! * fast: CAS `(0,0,0) -> (0,0,1)`. unlock: `fetch_sub(LOCKED)`, a single release RMW.
//! * pending: a waiter that finds no queue sets `P` (`fetch_or`), waits for `locked == 0`, then
//!   `(0,1,0) -> (0,0,1)` with one `fetch_add(LOCKED - PENDING)`. It first waits (at most
//!   512 reads, the kernel's `_Q_PENDING_LOOPS`) for a `(0,1,0)` hand-over in progress to finish. If its `fetch_or`
//!   finds a tail or another pending waiter it undoes `P` (if it set it) and queues.
//! * queue: initialise the node, publish it as the tail (`p,*,* -> n,*,*`), link the predecessor
//!   to it and spin on the node's `locked` flag. The head waits for `(*,0,0)`, then either
//!   `(n,0,0) -> (0,0,1)` if it is the last (CAS) or sets `locked` and hands the queue to its
//!   successor (`next.locked = 1`).
//!
//! # Transitions, pv (`B::BLOCKING`)
//!
//! ```text
//!  lock fast path:  (0,0,0) -cas-> (0,0,1), else (*,0,0) -cas-> (*,0,1)   inline steal (*)
//!  slowpath entry:  while (*,0,*) (no queue, or a queue whose head is not spinning):
//!                   retry (*,0,0) -cas-> (*,0,1) (*)           (the kernel's
//!                   pv_hybrid_queued_unfair_trylock; pv_lock_stealing); no pending path
//!  queued node:     spin, then state RUNNING -> HALTED, wait(state == HALTED)   (pv_wait_node)
//!  hand-over:       next.locked = 1; if next.state HALTED -cas-> HASHED:
//!                     i = hash(lock, next), next.entry = i + 1, (*,*,1) -> (*,*,SLOW)
//!                     (pv_kick_node: no kick now, the successor is woken by our unlock,
//!                     saving a wake/sleep cycle)
//!  head:            (*,0,*) -or-> (*,1,*); spin: (*,1,0) -cas-> (*,0,1) wins
//!                   (*,1,*) -and-> (*,0,*); then, unless an entry of ours is in the table
//!                   ("A head's entry" below) or the byte is UNLOCKING: hash(lock, me), then
//!                   (*,*,y) -cas-> (*,*,SLOW): y == 0 means we own it: (*,*,SLOW) -> (*,*,1),
//!                   remove our entry; else state = HASHED, wait(word unchanged) (pv_wait_head)
//!  unlock:          (*,*,1) -sub-> (*,*,0)                done, nobody to kick
//!                   (*,*,SLOW) -sub-> (*,*,UNLOCKING): node = unhash(lock);
//!                   (*,*,UNLOCKING) -sub-> (*,*,0); kick(node)
//!  fair unlock:     as unlock, but with a tail or pending set the byte becomes HANDED instead
//!                   of 0 (the waiter takes (*,0,HANDED) as it takes (*,0,0))   ("Fair unlock")
//! ```
//!
//! (*) A steal past queued waiters (tail != 0) is allowed only if the policy says so (the steal
//! budget, below). How long each waiter spins, and whether it yields, is the policy's too; every
//! transition above is correct whatever it answers.
//!
//! Node states (`Node::state`):
//!
//! | state | meaning | set by |
//! |---|---|---|
//! | `RUNNING` (0) | spinning (queued or head) | the waiter: init, after a wait, each head round |
//! | `HALTED` (1) | a queued (non-head) waiter blocked or about to block | the waiter in `wait_node` |
//! | `HASHED` (2) | the waiter is hashed: its wake-up comes from the unlock | the owner (`kick_node`: `HALTED -> HASHED`) or the head itself before it blocks |
//!
//! A queued waiter also blocks early, before its spin budget, when its predecessor is not
//! `RUNNING` (checked every 256 spins: `pv_wait_early`): then the lock cannot come soon. That is a
//! rule of the policy, not of the protocol (a waiter may block at any point of its spin): see the
//! table in "The policy it consults" below.
//!
//! # Memory ordering: the two pv diagrams
//!
//! **state vs locked** (no lost wake-up between a queued waiter and the hand-over):
//!
//! ```text
//!  waiter (wait_node)                 owner (kick_node)
//!  [S]   state = HALTED               [S]   next.locked = 1
//!        fence(SeqCst)                      fence(SeqCst)
//!  [L]   locked == 0 ? wait           [RmW] state HALTED -> HASHED ? hash + SLOW
//! ```
//!
//! A Dekker pair: with the fences, either the waiter sees `locked == 1` and does not block, or the
//! owner's CAS sees `HALTED`, hashes the waiter and kicks it at unlock (the backend latches a kick
//! that comes before the wait). The owner's CAS is a release and the waiter's CAS back
//! `HALTED -> RUNNING` acquires even when it fails, so a waiter that sees `HASHED` also sees
//! `locked == 1` and never stores `HALTED` over `HASHED` (which would hash the lock twice).
//!
//! **hash vs SLOW** (an unlock that sees `SLOW` finds the entry):
//!
//! ```text
//!  head (wait_head_or_lock)           owner (unlock)
//!  [S]   hash(lock, me)               [RmW] locked SLOW -> UNLOCKING  (Release; reads SLOW)
//!  [RmW] locked = SLOW   (AcqRel)           fence(Acquire)
//!                                     [L]   unhash(lock)
//!                                     [RmW] locked UNLOCKING -> 0     (Release)
//!                                           kick(node)
//! ```
//!
//! The unlock reads `SLOW` from the head's release RMW (or a later RMW in its release sequence)
//! and its acquire fence makes the entry visible. The owner removes the entry *before* it releases
//! the lock and never reads the lock word after the releasing RMW: after it the lock may be freed
//! or reused, and a later `SLOW` on it belongs to another hand-over (the kernel's ABA lesson); only
//! the node, a static slot, is used for the kick. Lost wake-ups of the head: its `SLOW` RMW and the
//! unlock's RMW are ordered on the word; if the unlock came first the head's RMW finds the lock
//! free and takes it, otherwise the unlock sees `SLOW` and kicks.
//!
//! **The `UNLOCKING` window.** Between the unlock's two RMWs the byte is `UNLOCKING` while the
//! head's entry may already be gone. The head must not take that byte for "released" (it would
//! hash a second entry and set `SLOW` over `UNLOCKING`, and the unlock's final subtraction would
//! then leave `LOCKED` with no owner), so it treats `UNLOCKING` as `SLOW`: it does not hash again
//! and, if it blocks, waits for the word to change, which the final RMW does before its kick.
//! Nobody else changes the byte then: stealers and the head's trylock need 0 (or `HANDED`), and
//! `kick_node` runs in the owner.
//!
//! **A head's entry.** Before it blocks, the head must know whether an entry naming it is still in
//! the table: if it is, the unlock that removes it kicks the head; if the unlock has already
//! removed it (and kicked the head, which consumed that kick), the lock was released and then
//! stolen, and nobody will kick the head unless it hashes itself again. The head knows where its
//! entry is: its own `hash` returns the index, and an owner that hashes its successor in
//! `kick_node` records the index + 1 in the successor's node (`entry`, a release store) before it
//! sets `SLOW`. So before blocking the head looks at that one table entry (`hash::holds`, acquire,
//! pairing with `unhash`'s release clear): still `(lock, me)`, it blocks; gone, it hashes itself
//! again (or, on an `UNLOCKING` byte, blocks for the kick that follows). A node made `HASHED`
//! whose `entry` still reads 0 has an owner between its CAS and that store: its unlock, which
//! kicks, is still to come, so the head may block. Only the head's queue pass ever hashes it, so
//! an entry that names another lock or node has been removed.
//!
//! # Fair unlock
//!
//! `lock_api::RawMutexFair::unlock_fair` (and `bump`) must pass the lock to a waiting thread if
//! there is one, and stealing would let the releaser, coming straight back, take it first. So a
//! fair unlock with a tail or the pending bit set does not free the locked byte: it sets it to
//! `HANDED` (one CAS; on a `SLOW` byte, through `UNLOCKING` after removing the blocked head's
//! entry, then a kick). `HANDED` is "held" to the fast path and to every stealer, which need
//! locked and pending clear; the waiter next in line takes it as it takes a free byte: the native
//! pending waiter (`(0,1,HANDED) -> (0,0,1)`) before the queue head, which waits for pending to
//! clear (`(*,0,HANDED) -> (*,0,1)`, or the tail-clearing CAS), and a pv head in its trylock or its
//! `SLOW` RMW. Threads spinning without a node (`lock_no_node`) are not seen; with no tail and no
//! pending bit a fair unlock is a plain one.
//! The kernel has no such window: its unlock clears the byte in one store after `unhash`; a 32-bit
//! `fetch_and` could too, but only the subtraction makes the common unlock a single RMW whatever
//! the tail holds (`fetch_and` returning the old value is a CAS loop on x86).
//!
//! # Timed locking
//!
//! `try_lock_for` / `try_lock_until` (and `lock_api::RawMutexTimed`, with a blocking backend): a
//! timed waiter never joins the MCS queue, because a queued waiter cannot leave it (its
//! predecessor hands it the queue, and its node is its thread's only one). It spins, then counts
//! itself in the `timed` field and sleeps with a timeout; every unlock that reads a non-zero count
//! wakes every counted waiter, which then takes the lock as a stealer would (never past a spinning
//! head) or counts itself out when its deadline passes. The protocol and its proof are in the
//! `timed` submodule's docs. `Queued<Spin>` has no timed locking: in the native protocol only the
//! queue head may take a queued lock, so a timed waiter could never get a busy one.
//!
//! # The policy it consults
//!
//! The slow path asks the waiting policy at these points; the reasons and measurements of
//! each rule are in `docs/tuning.md`.
//!
//! | where | question | answer |
//! |---|---|---|
//! | inline steal, slowpath entry | may this thread take the lock past queued waiters? | yes, within its steal budget while crowded; always otherwise |
//! | slowpath entry | how long to try stealing before queueing; yield between reads? | the spin budget (1/32 of it while crowded, unless the thread is behind its fair share); yield once the backoff saturates while not crowded |
//! | queued node | how long to spin before blocking | the spin budget; none while crowded, none in the first round after the entry spin ran out its budget ("spun out") |
//! | queued node | block before the spin budget is spent? | yes once its predecessor's node is not `RUNNING` (blocked, or hashed for the unlock's kick: the lock cannot reach this waiter soon), looked at before the first spin and then every `LOOK_ASIDE_EVERY` (256) spins (the kernel's `pv_wait_early`) |
//! | head | how long to spin with pending set | the spin budget, also while crowded; none in the first round when spun out |
//!
//! "Crowded": more threads have contended for pvlock locks (entered a slow path) in the last
//! 10-20 ms than the process has CPUs; without `std`, never (the steal budget then always holds).
//!
//! # Deviations from the kernel
//!
//! * **Re-hashing after a steal** (improvement). The kernel's head hashes itself once; if the lock
//!   is stolen after the unlock that unhashed and kicked it, its `pv_wait(&locked, SLOW)` returns
//!   at once forever, so it spins without blocking until the thief unlocks: a burnt CPU under
//!   oversubscription (with that rule, threads queued behind 50 ms holds burnt 17-34% of a CPU;
//!   with this one, under 1%). Here the head checks its entry in the table and hashes itself
//!   again when the entry is gone ("A head's entry"), then blocks.
//! * **A fair unlock** (`HANDED`, "Fair unlock"): the kernel has none.
//! * **A stealer also spins when nobody is queued** (tail 0): a test-and-test-and-set waiter
//!   instead of a queue of one, so that with threads <= CPUs the lock goes to whichever thread is
//!   ready, often the last holder with the lock's cache line still local (the kernel's
//!   `pv_hybrid_queued_unfair_trylock` stops at once when nobody is queued).
//! * **The head's tail-clearing CAS is retried** while the tail is still ours. The kernel tries it
//!   once and otherwise waits for a successor to link; a failed CAS caused only by a transient
//!   pending bit would then wait for a successor that never comes when the pending setter has no
//!   node (native `lock_no_node`).
//! * Byte and half-word operations are 32-bit RMWs (see above). The pv unlock is a subtraction
//!   instead of the kernel's byte `cmpxchg(LOCKED -> 0)`: one `lock xadd` whatever the other
//!   fields hold (a 32-bit CAS from `LOCKED` would fail whenever a tail is set, and retry), at the
//!   price of the `UNLOCKING` state, and measurably faster uncontended (`docs/design.md`).

pub(crate) mod hash;
#[cfg(all(test, loom))]
mod loom_tests;
mod native;
mod pv;
#[cfg(all(test, not(loom)))]
mod tests;
mod timed;

use core::marker::PhantomData;

use crate::backend::Backend;
use crate::slot::{self, Slot};
use crate::stats::{count, Event};
use crate::sync::{AtomicU32, Ordering};

const LOCKED_MASK: u32 = 0xFF;
const LOCKED: u32 = 1;
const UNLOCKING: u32 = 2;
const SLOW: u32 = 3;
/// Handed over by a fair unlock: held, on behalf of the waiter that takes it next (the pending
/// waiter, else the queue head); nobody else may take it.
const HANDED: u32 = 4;
const PENDING: u32 = 1 << 8;
const LOCKED_PENDING_MASK: u32 = LOCKED_MASK | PENDING;
/// One timed waiter in the `timed` count (bits 9-15; pv only).
const TIMED_ONE: u32 = 1 << 9;
const TIMED_MASK: u32 = 0x7F << 9;
const TAIL_SHIFT: u32 = 16;
const TAIL_MASK: u32 = !0 << TAIL_SHIFT;

/// The locked byte is `SLOW` or `UNLOCKING`: a blocked head's hash entry exists, or is being
/// removed by the unlock that will kick it.
#[inline(always)]
fn is_slow(w: u32) -> bool {
    w & UNLOCKING != 0
}

/// The locked byte lets its waiter in: free (0), or handed over to it (`HANDED`).
#[inline(always)]
fn is_open(byte: u32) -> bool {
    byte == 0 || byte == HANDED
}

// The tail field holds a slot index + 1 in 16 bits.
const _: () = assert!(slot::MAX_SLOTS < 1 << 16);

#[inline(always)]
fn tail_code(s: &Slot) -> u32 {
    // Cannot overflow: index < MAX_SLOTS < 2^16 (asserted above).
    (s.index() as u32 + 1) << TAIL_SHIFT
}

/// The slot named by a tail code or a `next` link (slot index + 1, non-zero).
#[inline(always)]
fn slot_of(code: u32) -> &'static Slot {
    debug_assert_ne!(code, 0);
    slot::slot_at(code as usize - 1)
}

/// The kernel's queued spinlock on one `AtomicU32`; see the [module docs](self) for the protocol.
///
/// With [`Spin`](crate::backend::Spin) it is the native qspinlock (every pv branch is compiled away); with a blocking
/// backend it is the pvqspinlock: waiters block after their spin and are woken in queue order,
/// the lock owner's unlock kicks the blocked queue head.
///
/// ```
/// use pvlock::{backend::Auto, queued::Queued};
///
/// static LOCK: Queued<Auto> = Queued::new();
/// LOCK.lock();
/// assert!(LOCK.is_locked());
/// // SAFETY: locked just above, by this thread.
/// unsafe { LOCK.unlock() };
/// assert!(LOCK.try_lock());
/// // SAFETY: locked by `try_lock`.
/// unsafe { LOCK.unlock_fair() };
/// ```
#[repr(transparent)]
pub struct Queued<B: Backend> {
    word: AtomicU32,
    _backend: PhantomData<fn() -> B>,
}

impl<B: Backend> Default for Queued<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backend> core::fmt::Debug for Queued<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let w = self.word.load(Ordering::Relaxed);
        f.debug_struct("Queued")
            .field("locked", &(w & LOCKED_MASK))
            .field("pending", &(w & PENDING != 0))
            .field("timed", &((w & TIMED_MASK) / TIMED_ONE))
            .field("tail", &(w >> TAIL_SHIFT))
            .finish()
    }
}

impl<B: Backend> Queued<B> {
    crate::sync::const_fn! {
        /// An unlocked lock (all-zero word).
        pub fn new() -> Self {
            Queued { word: AtomicU32::new(0), _backend: PhantomData }
        }
    }

    /// Whether the lock is held, or being handed over to a waiter, now. As in the kernel any
    /// non-zero word counts (a waiter about to take the lock makes it "locked" already), except
    /// the count of sleeping timed waiters.
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) & !TIMED_MASK != 0
    }

    /// Whether threads are waiting now (pending bit, queue, or timed waiters).
    #[inline]
    pub fn is_contended(&self) -> bool {
        self.word.load(Ordering::Relaxed) & !LOCKED_MASK != 0
    }

    /// Takes the lock if it is free and nobody is queued or pending for it now (sleeping timed
    /// waiters do not stop it: they race for the lock like any newcomer).
    #[inline]
    pub fn try_lock(&self) -> bool {
        let w = self.word.load(Ordering::Relaxed);
        // Only pv words carry a timed count.
        let others = if B::BLOCKING { w & !TIMED_MASK } else { w };
        if others != 0 {
            return false;
        }
        // Acquire: the previous holder's critical section happens before ours.
        self.word
            .compare_exchange(w, w | LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Acquires the lock.
    #[inline]
    pub fn lock(&self) {
        // Acquire: pairs with the releasing RMW of the previous unlock.
        if let Err(val) =
            self.word
                .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
        {
            // pv: the one steal of `pv_queued_spin_steal_lock`, inline. Oversubscribed, waiters
            // sit blocked in the queue (tail != 0) while the running threads take the lock in
            // turn; without this every such acquisition would pay the out-of-line slow path.
            // Only while neither locked nor pending: a spinning head (pending) is never robbed;
            // and only as the policy allows (the steal budget), else it queues.
            if B::BLOCKING && val & LOCKED_PENDING_MASK == 0 && self.steal_inline(val) {
                return;
            }
            self.lock_slow(val);
        }
    }

    /// Releases the lock; with a blocking backend, kicks the queue head if it blocked (`SLOW`).
    ///
    /// # Safety
    /// The lock must be held.
    #[inline]
    pub unsafe fn unlock(&self) {
        // One subtraction of LOCKED, whatever tail and pending hold: the 32-bit form of the
        // kernel's byte operations (native: the byte store; pv: `cmpxchg(locked, LOCKED, 0)`, which
        // also never fails on a changed tail). Only the owner changes a held locked byte, so it
        // borrows nothing. Release ends the critical section.
        let old = self.word.fetch_sub(LOCKED, Ordering::Release);
        // pv: a byte that was SLOW is now UNLOCKING: the lock stays held for everyone else while
        // we remove the hash entry and kick the queue head. Timed waiters counted: kick them.
        if B::BLOCKING && old & (LOCKED_MASK | TIMED_MASK) != LOCKED {
            self.unlock_wake(old);
        }
    }

    /// Releases the lock to the thread that waits longest for it, if one does: the pending waiter
    /// (native), else the queue head; nobody else can take it in between, the caller included.
    /// With nobody queued or pending it is [`unlock`](Self::unlock). Threads that spin without a
    /// waiter slot (`lock_no_node`) are not seen as waiting.
    ///
    /// ```text
    ///  (0,0,1)   -sub->  (0,0,0)                                   nobody waits: a plain unlock
    ///  (n,p,1)   -cas->  (n,p,HANDED)                              n != 0 or p: hand over
    ///  (n,p,SLOW) -sub-> (n,p,UNLOCKING): node = unhash(lock);     the head is blocked: wake it
    ///            -add->  (n,p,HANDED); kick(node)
    /// ```
    ///
    /// The waiter takes a `HANDED` byte as it takes a free one (`(*,0,HANDED) -> (*,0,1)`, or
    /// `(0,1,HANDED) -> (0,0,1)` for the native pending waiter), and only it may: the fast path
    /// needs a zero word, stealers need locked and pending clear.
    ///
    /// # Safety
    /// The lock must be held.
    #[inline]
    pub unsafe fn unlock_fair(&self) {
        let mut val = self.word.load(Ordering::Relaxed);
        loop {
            let byte = val & LOCKED_MASK;
            if B::BLOCKING && byte == SLOW {
                self.unlock_slow(SLOW, HANDED);
                return;
            }
            debug_assert_eq!(
                byte, LOCKED,
                "pvlock: unlock_fair of a Queued lock not held"
            );
            // Handed to the queue or the pending waiter only: timed waiters take a free lock.
            let handing = val & (TAIL_MASK | PENDING) != 0;
            let new = if handing {
                val - LOCKED + HANDED
            } else {
                val - LOCKED
            };
            // Release, as in `unlock`: ends the critical section; the waiter's acquiring read of
            // HANDED (or of 0) synchronizes with it. Only the owner changes a held byte, so this
            // fails only when tail or pending change.
            match self
                .word
                .compare_exchange(val, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if handing {
                        count(Event::LockHanded);
                    }
                    if B::BLOCKING && val & TIMED_MASK != 0 {
                        Self::kick_timed(self.addr());
                    }
                    return;
                }
                Err(now) => val = now,
            }
        }
    }

    #[inline(always)]
    fn addr(&self) -> usize {
        self as *const Self as usize
    }
}

crate::raw::impl_raw_lock!(Queued);

#[cfg(not(loom))]
// SAFETY: `unlock_fair` passes the lock to the pending waiter or the queue head, if there is one,
// without a window for anyone else (module docs, "Fair unlock").
unsafe impl<B: Backend> lock_api::RawMutexFair for Queued<B> {
    #[inline]
    unsafe fn unlock_fair(&self) {
        // SAFETY: lock_api calls this only while the lock is held.
        unsafe { Queued::unlock_fair(self) }
    }
}
