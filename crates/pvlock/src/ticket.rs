//! `Ticket`: the FIFO ticket lock, with the pv slow path of the kernel's pv ticketlocks.
//!
//! # Word
//!
//! ```text
//!  31              17  16  15               1   0
//! +------------------+---+------------------+-----+
//! |   tail (15 bit)  | 0 |   head (15 bit)  | SLOW|
//! +------------------+---+------------------+-----+
//! ```
//!
//! `tail` is the next ticket to hand out, `head` the ticket being served; the lock is free when
//! they are equal. `tail` sits at the top so that its wrap-around carries out of the word, and the
//! owner, the only writer of `head`, wraps `head` by subtraction so that it never carries into bit
//! 16. Tickets are 15 bits: at most 32 767 threads may wait for one lock at once. `SLOW` (pv only)
//! says "a waiter may be blocked: unlock must look for it". Every backend uses this one layout, so
//! the native and pv variants can never meet a word laid out by the other (the lesson of
//! "xen: disable PV spinlocks on HVM", commit f10cd522c5fb, 2011).
//!
//! # Transitions `(tail, head, SLOW)`
//!
//! ```text
//! lock, fast:   (t, h, s) -fetch_add-> (t+1, h, s)        mine = t; if t == h: locked
//! lock, spin:   wait until head == mine                    (FIFO: tickets are served in order)
//! lock, pv:     after the spin budget: record (lock, mine) in my slot, then
//!               (t, h, s) -fetch_or-> (t, h, 1)           if h == mine: locked, else wait(me)
//! acquired:     if SLOW and nobody queued behind me (t == mine+1): (t, h, 1) -cas-> (t, h, 0)
//! unlock:       (t, h, s) -add/wrap-> (t, h+1, s)         if s: kick the slot waiting for h+1
//! ```
//!
//! The pv handshake is a Dekker pair: the waiter publishes its slot record, then sets `SLOW` with a
//! sequentially consistent RMW and re-reads `head` in the same RMW; the unlocker bumps `head` with
//! an RMW that returns the old `SLOW`. Whichever RMW comes second sees the other: either the waiter
//! sees its turn and does not block, or the unlocker sees `SLOW` (and, acquiring, the record) and
//! kicks. A kick that races ahead of the wait is latched by the backend. The unlocker never reads
//! the lock after its releasing RMW: it knows `SLOW` and the next ticket from that RMW's result and
//! compares the lock's *address* with the records, without dereferencing it.
//!
//! Unlike the kernel, where only the next ticket matters, waiters further back also block here; the
//! kick always targets the next ticket, and each new owner's unlock kicks the one after it, so the
//! queue drains in order.
//!
//! `SLOW` is only ever cleared by the owner, with a CAS that expects `tail == mine + 1`: a waiter
//! takes its ticket (moving `tail`) before it can record itself and set `SLOW`, so the CAS fails
//! whenever anyone waits behind the owner, and a later waiter sets the flag again itself. The
//! loom models (`loom_tests`, three threads) fail with a deadlock if the kick, the tail check of
//! that CAS, or the release/acquire pairing of the two RMWs is removed.
//!
//! # The policy it consults
//!
//! One question, once per wait (`Policy::queued_spin`): how long to spin on
//! `head` before recording itself and blocking. The spin budget; none while the process is
//! crowded (more threads contending for pvlock locks than CPUs): a FIFO waiter whose turn is
//! behind preempted threads cannot be helped by spinning, and its spin takes a CPU from a thread
//! that could make progress. There is nothing else to decide: the order of service is the
//! tickets'. The rule's reason and measurements are in `docs/tuning.md`.

use core::marker::PhantomData;

use crate::backend::Backend;
use crate::policy::Policy;
use crate::slot::{self, Slot};
use crate::stats::{count, Event};
use crate::sync::{spin_loop, AtomicU32, Ordering};

const SLOW: u32 = 1;
const HEAD_SHIFT: u32 = 1;
const HEAD_INC: u32 = 1 << HEAD_SHIFT;
const TAIL_SHIFT: u32 = 17;
const TAIL_INC: u32 = 1 << TAIL_SHIFT;
const TICKET_MASK: u32 = 0x7FFF;

#[inline(always)]
fn head(w: u32) -> u32 {
    (w >> HEAD_SHIFT) & TICKET_MASK
}

#[inline(always)]
fn tail(w: u32) -> u32 {
    w >> TAIL_SHIFT
}

/// A FIFO ticket lock on one `AtomicU32`; see the [module docs](self) for the protocol.
///
/// With [`Spin`](crate::backend::Spin) it is the classic ticket lock, whose strict order is
/// exactly what collapses under preemption; with a blocking backend waiters sleep after their
/// spin and each unlock wakes the next ticket's holder.
///
/// ```
/// use pvlock::{backend::Auto, ticket::Ticket};
///
/// let lock = Ticket::<Auto>::new();
/// lock.lock();
/// assert!(lock.is_locked() && !lock.try_lock());
/// // SAFETY: locked just above, by this thread.
/// unsafe { lock.unlock() };
/// ```
#[repr(transparent)]
pub struct Ticket<B: Backend> {
    word: AtomicU32,
    _backend: PhantomData<fn() -> B>,
}

impl<B: Backend> Default for Ticket<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backend> core::fmt::Debug for Ticket<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let w = self.word.load(Ordering::Relaxed);
        f.debug_struct("Ticket")
            .field("head", &head(w))
            .field("tail", &tail(w))
            .field("slow", &(w & SLOW != 0))
            .finish()
    }
}

impl<B: Backend> Ticket<B> {
    crate::sync::const_fn! {
        /// An unlocked lock (all-zero word).
        pub fn new() -> Self {
            Ticket { word: AtomicU32::new(0), _backend: PhantomData }
        }
    }

    /// Whether the lock is held now.
    #[inline]
    pub fn is_locked(&self) -> bool {
        let w = self.word.load(Ordering::Relaxed);
        head(w) != tail(w)
    }

    /// Whether threads are waiting behind the holder now.
    #[inline]
    pub fn is_contended(&self) -> bool {
        let w = self.word.load(Ordering::Relaxed);
        tail(w).wrapping_sub(head(w)) & TICKET_MASK > 1
    }

    /// Takes the lock if it is free now.
    #[inline]
    pub fn try_lock(&self) -> bool {
        let w = self.word.load(Ordering::Relaxed);
        if head(w) != tail(w) {
            return false;
        }
        // Acquire: the previous holder's critical section happens before ours.
        self.word
            .compare_exchange(
                w,
                w.wrapping_add(TAIL_INC),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Takes a ticket and waits for its turn.
    #[inline]
    pub fn lock(&self) {
        // Acquire: pairs with the Release of the unlock that serves our ticket (when we get the
        // lock at once); the slow path re-reads head with Acquire.
        let old = self.word.fetch_add(TAIL_INC, Ordering::Acquire);
        let mine = tail(old);
        if head(old) != mine {
            self.lock_slow(mine);
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_slow(&self, mine: u32) {
        count(Event::LockSlowpath);
        if !B::BLOCKING {
            // The native ticket lock: spin until served.
            while head(self.word.load(Ordering::Acquire)) != mine {
                spin_loop();
            }
            return;
        }
        if let Some(me) = B::current() {
            me.seen.contend(false);
        }
        loop {
            // Read at the start and after each wake-up.
            let mut spin = Policy::now().queued_spin(false);
            loop {
                if head(self.word.load(Ordering::Acquire)) == mine {
                    self.clear_slow_if_alone(mine);
                    return;
                }
                if !spin.snooze() {
                    break;
                }
            }
            if self.wait_turn(mine) {
                self.clear_slow_if_alone(mine);
                return;
            }
        }
    }

    /// The pv slow path: record (lock, mine) in our slot, set SLOW, block unless it is our turn.
    /// Returns `true` once it is our turn.
    #[cold]
    fn wait_turn(&self, mine: u32) -> bool {
        let Some(me) = B::current() else {
            // No slot free: keep spinning (correct, just not paravirtual). The pause matters while
            // the process is crowded: the policy's queued spin is then empty, and without it the
            // caller's loop would re-read the word and the load (`Policy::now`) back to back.
            count(Event::LockNoNode);
            spin_loop();
            return false;
        };
        me.seen.contend(true);
        let record = &me.record;
        record.want.store(mine, Ordering::Relaxed);
        // Relaxed is enough for both record fields: the SeqCst RMW below publishes them (release)
        // to the unlocker whose RMW reads it (acquire).
        record.lock.store(self.addr(), Ordering::Relaxed);
        // SeqCst: the store half of the Dekker pair; it also re-reads head atomically.
        let w = self.word.fetch_or(SLOW, Ordering::SeqCst);
        if head(w) == mine {
            record.lock.store(0, Ordering::Relaxed);
            return true;
        }
        count(Event::PvWaitNode);
        crate::load::blocked(|| B::wait(me, &self.word, w | SLOW));
        record.lock.store(0, Ordering::Relaxed);
        let served = head(self.word.load(Ordering::Acquire)) == mine;
        if !served {
            count(Event::PvSpuriousWakeup);
        }
        served
    }

    /// We own the lock: if SLOW is set but nobody waits behind us, clear it so that our unlock and
    /// later ones skip the scan. Fails harmlessly if a ticket is taken meanwhile.
    #[inline]
    fn clear_slow_if_alone(&self, mine: u32) {
        let w = self.word.load(Ordering::Relaxed);
        if w & SLOW != 0 && tail(w) == (mine + 1) & TICKET_MASK {
            // Relaxed: we hold the lock; this only changes an advisory flag, and a failure means a
            // new waiter arrived, which keeps the flag (correctly) set.
            let _ = self
                .word
                .compare_exchange(w, w & !SLOW, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Releases the lock and, if a waiter may be blocked, kicks the holder of the next ticket.
    ///
    /// # Safety
    /// The lock must be held.
    #[inline]
    pub unsafe fn unlock(&self) {
        // Relaxed: only the owner writes head, so this read of it is stable.
        let w = self.word.load(Ordering::Relaxed);
        // AcqRel when pv: Release ends the critical section; Acquire makes the blocked waiter's
        // slot record (published by its SLOW fetch_or) visible to the scan. Release suffices native.
        let order = if B::BLOCKING {
            Ordering::AcqRel
        } else {
            Ordering::Release
        };
        let old = if head(w) == TICKET_MASK {
            // Wrap head to 0 without borrowing from, or carrying into, the tail half.
            self.word.fetch_sub(TICKET_MASK << HEAD_SHIFT, order)
        } else {
            self.word.fetch_add(HEAD_INC, order)
        };
        if B::BLOCKING && old & SLOW != 0 {
            // The lock is released: from here on we use only its address, never the word.
            Self::kick_next(self.addr(), (head(old) + 1) & TICKET_MASK);
        }
    }

    #[cold]
    #[inline(never)]
    fn kick_next(addr: usize, next: u32) {
        for i in 0..slot::high_water() {
            let s: &Slot = slot::slot_at(i);
            // Relaxed: the record was made visible by the Acquire of our unlock RMW; a record
            // written later belongs to a waiter whose own RMW will see its turn.
            if s.record.lock.load(Ordering::Relaxed) == addr
                && s.record.want.load(Ordering::Relaxed) == next
            {
                count(Event::PvKickUnlock);
                B::kick(s);
                return;
            }
        }
    }

    #[inline(always)]
    fn addr(&self) -> usize {
        self as *const Self as usize
    }
}

crate::raw::impl_raw_lock!(Ticket);
crate::raw::impl_fair!(Ticket);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::backend::Spin;

    #[test]
    fn word_is_four_bytes_and_zero() {
        assert_eq!(core::mem::size_of::<Ticket<Spin>>(), 4);
        let t = Ticket::<Spin>::new();
        assert_eq!(t.word.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn lock_unlock_try_lock_state() {
        let t = Ticket::<Spin>::new();
        assert!(!t.is_locked());
        t.lock();
        assert!(t.is_locked());
        assert!(!t.is_contended());
        assert!(!t.try_lock());
        // SAFETY: locked above.
        unsafe { t.unlock() };
        assert!(!t.is_locked());
        assert!(t.try_lock());
        // SAFETY: locked by try_lock.
        unsafe { t.unlock() };
    }

    #[test]
    fn head_wraps_without_touching_tail() {
        let t = Ticket::<Spin>::new();
        for _ in 0..(TICKET_MASK as usize + 1) * 2 + 3 {
            t.lock();
            assert!(t.is_locked());
            // SAFETY: locked above.
            unsafe { t.unlock() };
            assert!(!t.is_locked(), "{t:?}");
        }
    }

    #[test]
    fn contended_counts_waiters() {
        let t = Ticket::<Spin>::new();
        t.lock();
        // Take a second ticket by hand, as a waiter would.
        t.word.fetch_add(TAIL_INC, Ordering::Relaxed);
        assert!(t.is_contended());
        // SAFETY: locked above; hands over to the hand-made waiter.
        unsafe { t.unlock() };
        assert!(t.is_locked());
        assert!(!t.is_contended());
        // SAFETY: the hand-made waiter's turn: release it.
        unsafe { t.unlock() };
        assert!(!t.is_locked());
    }
}

#[cfg(all(test, not(loom)))]
mod blocking_tests {
    use super::*;

    /// 8 threads on (typically) fewer CPUs: waiters exceed their spin budget, set SLOW, block,
    /// and must each be kicked in ticket order.
    fn hammer<B: Backend>(threads: usize, iters: u64, hold: std::time::Duration) {
        let lock = Ticket::<B>::new();
        crate::testutil::hammer(&lock, threads, iters, hold);
    }

    crate::testutil::blocking_backend_tests!(5_000);
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::loom_model::{assert_reached, Model, ModelPark};
    use crate::stats::{Event, Snapshot};

    fn model(threads: usize, preemptions: usize) -> Snapshot {
        Model::new(threads, preemptions).check(Ticket::<ModelPark>::new, |l| {
            assert!(!l.is_locked(), "{l:?}");
        })
    }

    /// Two threads: the SLOW handshake between one blocked waiter and the unlock.
    #[test]
    fn loom_ticket_two_threads() {
        let events = model(2, 8);
        assert_reached(&events, Event::PvWaitNode);
        assert_reached(&events, Event::PvKickUnlock);
    }

    /// Crowded (three threads, one CPU): the policy reads "crowded" (`pv_crowded`), so a
    /// waiter's spin before it blocks is empty; the SLOW handshake and the kicks in ticket order
    /// hold as in the calm models. Preemption bound 2: with bound 1 no explored execution has a
    /// waiter read the load while two threads count as contenders.
    #[test]
    fn loom_ticket_crowded_policy() {
        let events = Model::new(3, 2)
            .cpus(1)
            .cs_yields(2)
            .check(Ticket::<ModelPark>::new, |l| {
                assert!(!l.is_locked(), "{l:?}");
            });
        assert_reached(&events, Event::PvCrowded);
        assert_reached(&events, Event::PvWaitNode);
        assert_reached(&events, Event::PvKickUnlock);
    }

    /// Three threads: a waiter blocks behind another waiter's ticket; each unlock must kick the
    /// next ticket, and SLOW must survive the middle owner's `clear_slow_if_alone`.
    #[test]
    fn loom_ticket_three_threads() {
        let events = model(3, 3);
        assert_reached(&events, Event::PvWaitNode);
        assert_reached(&events, Event::PvKickUnlock);
    }
}
