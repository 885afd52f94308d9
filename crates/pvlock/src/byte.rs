//! `Byte`: the Xen byte lock (the Xen PV spinlock, Linux 2.6.26, commit 2d9e1e2f58b5), a test-and-set lock whose waiters spin, then register
//! in a spinner count and block; unlock kicks one of them.
//!
//! # Word
//!
//! ```text
//!  31                             16 15            8 7              0
//! +---------------------------------+---------------+----------------+
//! |      spinners (16 bit)          | cursor (8 bit)| locked (8 bit) |
//! +---------------------------------+---------------+----------------+
//! ```
//!
//! * `locked` (byte 0) is `LOCKED` (1) while the lock is held, else 0: the Xen lock's lock byte.
//! * `spinners` counts the waiters *registered on the slow path*: each has recorded the lock's
//!   address in its [`Slot`](crate::backend::Slot) and may be blocked. It is not the number of threads spinning, as the
//!   Xen lock's own comment admits ("only the count of contended lock-takers entering the slow
//!   path").
//!   A waiter registers only with a slot of its own, so the count is at most
//!   the 1024 waiter slots and never overflows 16 bits.
//! * `cursor` (pv only) is bumped by every unlock and says where the next unlock starts its scan
//!   for a waiter to kick, so that kicks rotate over the waiters (the Xen lock's "XXX should mix up next
//!   cpu selection"). Only the holder writes it, in its releasing RMW, so the holder reads it
//!   stably and wraps it by itself without carrying into `spinners` (the trick `Ticket` uses for
//!   `head`).
//!
//! With [`Spin`](crate::backend::Spin) nobody ever registers and the word is only ever 0 or `LOCKED`: the lock is a
//! plain test-and-test-and-set lock, unlock is a plain release store, and
//! [`is_contended`](Byte::is_contended) is always `false`.
//!
//! # Transitions `(spinners, cursor, locked)`
//!
//! ```text
//! lock, fast:    (n, c, l) -fetch_or-> (n, c, 1)          locked if l was 0
//! lock, spin:    load until l == 0, then fetch_or as above (test-and-test-and-set), for
//!                the policy's spin (`Policy::queued_spin`)
//! lock, pv:      record the lock's address in my slot, then
//!                register   (n, c, l) -fetch_add-> (n+1, c, l)
//!                           if l == 0: (n+1, c, 0) -fetch_or-> (n+1, c, 1): locked
//!                           else wait(me) while the word is unchanged
//!                deregister: clear my record, then (n, c, l) -fetch_sub-> (n-1, c, l)
//!                then try once more, else spin again (or return, if locked above)
//! unlock, Spin:  (0, 0, 1) -store-> (0, 0, 0)
//! unlock, pv:    (n, c, 1) -fetch_add-> (n, c+1, 0)      if n > 0: kick one slot whose record is
//!                                                         this lock, scanning from `c`
//! ```
//!
//! # Why no wake-up is lost
//!
//! Registration and unlock are both single RMWs on the one word, so the modification order of the
//! word puts one before the other (no store-buffering window, unlike the Xen lock's plain byte store
//! followed by a plain read of `spinners`, which x86 may reorder):
//!
//! * The unlock comes first: the waiter's registering RMW returns `locked == 0` and the waiter
//!   tries the lock instead of blocking. If someone else took the lock in between, that holder's
//!   unlock comes after the registration and is the next case.
//! * The registration comes first: the unlock's RMW returns `spinners > 0`. Being acquiring, it
//!   reads from the release sequence headed by the (releasing) registration, so the waiter's record
//!   is visible to the scan (and so is its slot's index, below the slots' high-water mark). The
//!   scan finds *a* registered waiter, not necessarily that one, and kicks it. If it finds none,
//!   every registered waiter has already left its wait and is spinning again.
//!
//! A kicked waiter leaves its wait (a kick that arrives before the wait is latched by the backend,
//! so the wait returns at once) and tries the lock. It either takes it, and its own unlock kicks
//! again while anyone is still registered, or someone else holds it, whose unlock then kicks again.
//! A kick that reaches a waiter that has already left (it took the lock, or woke up and is spinning)
//! is latched and harmless: its next wait returns at once, spuriously, which every wait tolerates.
//! So while a waiter is blocked, every unlock kicks somebody who goes on to take the lock or leaves
//! it to someone whose unlock kicks again: the lock is never free with all its waiters asleep.
//!
//! Like every test-and-set lock this one is unfair: a running thread may take the lock ahead of
//! a woken waiter (which is what keeps it fast under overcommit: the lock never waits for a
//! preempted thread), and a waiter may be passed over. The rotating scan start spreads the kicks
//! over the waiters; no waiter is guaranteed a turn.
//!
//! The unlocker never reads the lock after its releasing RMW (the lock may be freed as soon as the
//! bit is clear): it takes `spinners` and `cursor` from that RMW's result and compares the lock's
//! *address* with the records, without dereferencing it. A record of a new lock at the same address
//! can only draw a spurious kick.
//!
//! # Timed locking
//!
//! `try_lock_for` / `try_lock_until` (`lock_api::RawMutexTimed`, every backend): a test-and-set
//! lock has no queue order to keep, so a timed waiter is an ordinary waiter that may leave. It
//! spins, registers and sleeps with a timeout (`wait_timeout`), and each time it wakes it leaves
//! the count; then it tries the lock once more, and gives up only if that fails and its deadline
//! has passed:
//!
//! ```text
//! leave:        clear my record, then (s, c, y) -sub-> (s-1, c, y)   (Release)
//! last try:     (s, c, 0) -or-> (s, c, 1)                             else, past the deadline: give up
//! ```
//!
//! An unlock kicks *one* registered waiter, so a waiter that leaves must not take a kick that
//! another needed. The order makes sure of it: an unlock whose RMW reads the count after our
//! releasing `sub` synchronizes with it and no longer sees our record, so it kicks another
//! waiter; an unlock whose RMW came before our `sub` released the lock before our last try, which
//! then either takes the lock (our unlock kicks next) or finds it held by a thread whose lock RMW
//! is later, and whose unlock is after our `sub` (it kicks another waiter, as above).
//!
//! # The policy it consults
//!
//! One question, once per wait (`Policy::queued_spin`): how long to spin before registering as
//! a spinner and blocking. The spin budget; none while the process is crowded (more threads
//! contending for pvlock locks than CPUs), where a spinning waiter only takes a CPU from the
//! holder or from a thread that could use the lock next. The rule's reason and measurements are
//! in `docs/tuning.md`.
//!
//! # Choices
//!
//! * Fast path `fetch_or(LOCKED)`: it compiles to `lock bts` on x86, as cheap uncontended as a
//!   `compare_exchange(0, LOCKED)` and faster contended; and it
//!   succeeds while waiters are registered (`spinners > 0`), where a CAS from 0 would fail and go
//!   the slow way. A held lock is written anyway, so spinners test first (`load`) and only then
//!   `fetch_or`.
//! * pv unlock is a `fetch_add` (`lock xadd`), not a `fetch_and` (a CAS loop on x86 when the old
//!   value is used): the holder knows byte 0 is exactly `LOCKED`, so subtracting it borrows nothing.
//! * There is no `RawMutexFair` (`impl_fair!`): handing the lock to a waiter is not meaningful
//!   for a test-and-set lock, which has no queue and no owner-to-owner transfer; an unlock lets
//!   anyone, the releasing thread included, take the lock next.

use core::marker::PhantomData;

use crate::backend::Backend;
use crate::policy::Policy;
use crate::slot;
use crate::stats::{count, Event};
use crate::sync::{spin_loop, AtomicU32, Deadline, Ordering};

const LOCKED: u32 = 1;
const LOCKED_MASK: u32 = 0xFF;
const CURSOR_SHIFT: u32 = 8;
const CURSOR_MASK: u32 = 0xFF;
const SPINNERS_SHIFT: u32 = 16;
const SPINNER_INC: u32 = 1 << SPINNERS_SHIFT;

#[inline(always)]
fn spinners(w: u32) -> u32 {
    w >> SPINNERS_SHIFT
}

#[inline(always)]
fn cursor(w: u32) -> u32 {
    (w >> CURSOR_SHIFT) & CURSOR_MASK
}

/// The Xen byte lock on one `AtomicU32`; see the [module docs](self) for the protocol.
///
/// With [`Spin`](crate::backend::Spin) it is a plain test-and-test-and-set spinlock; with a blocking backend a waiter
/// that has spun for its budget registers and sleeps, and an unlock that sees registered waiters
/// wakes one of them.
#[repr(transparent)]
pub struct Byte<B: Backend> {
    word: AtomicU32,
    _backend: PhantomData<fn() -> B>,
}

impl<B: Backend> Default for Byte<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backend> core::fmt::Debug for Byte<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let w = self.word.load(Ordering::Relaxed);
        f.debug_struct("Byte")
            .field("locked", &(w & LOCKED_MASK != 0))
            .field("spinners", &spinners(w))
            .finish()
    }
}

impl<B: Backend> Byte<B> {
    crate::sync::const_fn! {
        /// An unlocked lock (all-zero word).
        pub fn new() -> Self {
            Byte { word: AtomicU32::new(0), _backend: PhantomData }
        }
    }

    /// Whether the lock is held now.
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) & LOCKED_MASK != 0
    }

    /// Whether waiters are registered on the slow path now (as in the Xen lock, spinning waiters that
    /// have not registered yet are not counted; with [`Spin`](crate::backend::Spin) this is
    /// always `false`).
    #[inline]
    pub fn is_contended(&self) -> bool {
        spinners(self.word.load(Ordering::Relaxed)) != 0
    }

    /// Takes the lock if it is free now.
    #[inline]
    pub fn try_lock(&self) -> bool {
        // Test first: a failing try_lock does not take the line away from the holder.
        // Acquire: the previous holder's critical section happens before ours.
        self.word.load(Ordering::Relaxed) & LOCKED == 0
            && self.word.fetch_or(LOCKED, Ordering::Acquire) & LOCKED == 0
    }

    /// Takes the lock, spinning and then (with a blocking backend) sleeping until it is free.
    #[inline]
    pub fn lock(&self) {
        // Acquire: pairs with the releasing unlock (store or RMW; every later write to the word is
        // an RMW, so the release sequence reaches us whichever value we read).
        if self.word.fetch_or(LOCKED, Ordering::Acquire) & LOCKED != 0 {
            self.lock_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_slow(&self) {
        count(Event::LockSlowpath);
        if !B::BLOCKING {
            // The native lock: test-and-test-and-set until it is ours.
            while !self.try_lock() {
                spin_loop();
            }
            return;
        }
        if let Some(me) = B::current() {
            me.seen.contend(false);
        }
        loop {
            if self.spin() {
                return;
            }
            // Spin spent.
            match self.wait_pv(None) {
                Some(true) => return,
                // Woken (or the word changed before we slept) and the lock is held again.
                Some(false) => count(Event::PvSpuriousWakeup),
                None => {}
            }
        }
    }

    /// Test-and-test-and-set for the policy's spin (read at the start and after each wake-up).
    /// `true` once locked.
    #[inline]
    fn spin(&self) -> bool {
        let mut spin = Policy::now().queued_spin(false);
        loop {
            if self.try_lock() {
                return true;
            }
            if !spin.snooze() {
                return false;
            }
        }
    }

    /// One wait of the pv slow path: record the lock in our slot, register as a spinner, block
    /// (until kicked, or until `deadline`) unless the lock is free, leave, try the lock once more.
    /// `Some(true)`: we hold the lock; `Some(false)`: woken with the lock held by another (or the
    /// deadline passed), spin again; `None`: no waiter slot is free, spin again without blocking
    /// (correct, just not paravirtual).
    #[cold]
    fn wait_pv(&self, deadline: Option<&Deadline>) -> Option<bool> {
        let Some(me) = B::current() else {
            count(Event::LockNoNode);
            spin_loop();
            return None;
        };
        me.seen.contend(true);
        // Relaxed: the Release of the registering RMW below publishes it to the unlocker whose
        // RMW reads the word (acquire, through the release sequence of RMWs).
        me.record.lock.store(self.addr(), Ordering::Relaxed);
        // Release (the kernel's `wmb(); lock incw`): the record, and our slot claim that raised
        // `high_water`, happen before any unlock that sees this count. This is the waiter's half
        // of the handshake; no SeqCst is needed because the other half is an RMW on the same
        // word: the modification order alone decides which comes first (module docs).
        let mut w = self
            .word
            .fetch_add(SPINNER_INC, Ordering::Release)
            .wrapping_add(SPINNER_INC);
        let mut locked = false;
        if w & LOCKED == 0 {
            // Freed before we registered: its unlock did not count us, so try once more.
            // Acquire: as in `lock`.
            w = self.word.fetch_or(LOCKED, Ordering::Acquire);
            locked = w & LOCKED == 0;
        }
        if !locked {
            // Any unlock after our registration sees `spinners > 0` and kicks somebody; if the
            // word already changed, the wait returns at once.
            match deadline {
                None => {
                    count(Event::PvWaitNode);
                    crate::load::blocked(|| B::wait(me, &self.word, w | LOCKED));
                }
                Some(d) => {
                    count(Event::TimedWait);
                    crate::load::blocked(|| {
                        B::wait_timeout(me, &self.word, w | LOCKED, d.remaining())
                    });
                }
            }
        }
        // Leave: the record first, then the count with Release ("Timed locking": an unlock that
        // reads the count without us sees the record gone and kicks another waiter, so a waiter
        // that leaves, timed or not, never swallows a kick that another needed). The `sub`
        // cannot move before the wait, which returns through an acquiring operation.
        me.record.lock.store(0, Ordering::Relaxed);
        self.word.fetch_sub(SPINNER_INC, Ordering::Release);
        Some(locked || self.try_lock())
    }

    /// Releases the lock and, if waiters are registered, kicks one of them.
    ///
    /// # Safety
    /// The lock must be held.
    #[inline]
    pub unsafe fn unlock(&self) {
        if !B::BLOCKING {
            // Without a blocking backend nothing but LOCKED is ever set, so the word is LOCKED
            // here and 0 after: a plain store (the Xen lock's `xl->lock = 0`), no RMW needed.
            // Release: our critical section happens before the next acquirer's.
            self.word.store(0, Ordering::Release);
            return;
        }
        // Relaxed: only the holder writes the cursor (in its releasing RMW) and we acquired after
        // the previous holder's, so this read of it is stable; the other fields are not used.
        let c = cursor(self.word.load(Ordering::Relaxed));
        let next = (c + 1) & CURSOR_MASK;
        // Clear LOCKED (byte 0 is exactly LOCKED: no borrow) and step the cursor, wrapping it by
        // subtraction so that it never carries into `spinners`.
        let delta = (next.wrapping_sub(c) << CURSOR_SHIFT).wrapping_sub(LOCKED);
        // AcqRel: Release ends the critical section; Acquire makes the records of the waiters
        // counted in `spinners` (published by their registering RMWs) visible to the scan.
        let old = self.word.fetch_add(delta, Ordering::AcqRel);
        if spinners(old) != 0 {
            // The lock is released: from here on we use only its address, never the word.
            Self::kick_one(self.addr(), c);
        }
    }

    /// Kicks one waiter whose record names the lock at `addr`, scanning the slots from a start
    /// derived from `cursor` and wrapping around.
    #[cold]
    #[inline(never)]
    fn kick_one(addr: usize, cursor: u32) {
        let hw = slot::high_water();
        if hw == 0 {
            return;
        }
        let c = cursor as usize;
        // Up to 256 slots the start rotates by one slot per unlock; beyond, it sweeps the table in
        // steps of hw/256.
        let start = if hw <= 256 { c % hw } else { (c * hw) >> 8 };
        for k in 0..hw {
            let i = if start + k < hw {
                start + k
            } else {
                start + k - hw
            };
            let s = slot::slot_at(i);
            // Relaxed: the records of the counted waiters were made visible by the Acquire of our
            // unlock RMW; a record written after it belongs to a waiter whose registering RMW
            // sees the lock free.
            if s.record.lock.load(Ordering::Relaxed) == addr {
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

// Without `std` there is no clock, so no timed API.
#[cfg_attr(not(feature = "std"), allow(dead_code))]
impl<B: Backend> Byte<B> {
    /// Takes the lock, waiting at most until `deadline` ("Timed locking" in the module docs).
    pub(crate) fn lock_until(&self, deadline: &Deadline) -> bool {
        // Acquire: as in `lock`.
        if self.word.fetch_or(LOCKED, Ordering::Acquire) & LOCKED == 0 {
            return true;
        }
        self.lock_until_slow(deadline)
    }

    #[cold]
    #[inline(never)]
    fn lock_until_slow(&self, deadline: &Deadline) -> bool {
        count(Event::LockSlowpath);
        if B::BLOCKING {
            if let Some(me) = B::current() {
                me.seen.contend(false);
            }
        }
        loop {
            // The policy's spin (none while crowded; natively unbounded but for the clock).
            let mut spin = if B::BLOCKING {
                Policy::now().queued_spin(false)
            } else {
                crate::policy::Backoff::unbounded(1, false)
            };
            loop {
                if self.try_lock() {
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
            if deadline.passed() {
                count(Event::TimedOut);
                return false;
            }
            match self.wait_pv(Some(deadline)) {
                Some(true) => return true,
                Some(false) if deadline.passed() => {
                    count(Event::TimedOut);
                    return false;
                }
                Some(false) => count(Event::PvSpuriousWakeup),
                None => {}
            }
        }
    }
}

#[cfg(all(feature = "std", not(loom)))]
mod timed_api {
    use super::*;
    use std::time::{Duration, Instant};

    impl<B: Backend> Byte<B> {
        /// Takes the lock, waiting at most `timeout`; `false` if it did not get it in time
        /// (module docs, "Timed locking").
        ///
        /// ```
        /// use pvlock::{backend::Auto, byte::Byte};
        /// use std::time::Duration;
        ///
        /// let lock = Byte::<Auto>::new();
        /// assert!(lock.try_lock_for(Duration::from_millis(5)));
        /// assert!(!lock.try_lock_for(Duration::from_millis(5)));
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
        /// time.
        pub fn try_lock_until(&self, deadline: Instant) -> bool {
            self.lock_until(&Deadline::at(deadline))
        }
    }

    // SAFETY: `try_lock_until` takes the lock only through the RMWs of `lock` and `try_lock`.
    unsafe impl<B: Backend> lock_api::RawMutexTimed for Byte<B> {
        type Duration = Duration;
        type Instant = Instant;

        #[inline]
        fn try_lock_for(&self, timeout: Duration) -> bool {
            Byte::try_lock_for(self, timeout)
        }

        #[inline]
        fn try_lock_until(&self, timeout: Instant) -> bool {
            Byte::try_lock_until(self, timeout)
        }
    }
}

crate::raw::impl_raw_lock!(Byte);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::backend::{Park, Spin};
    use std::time::{Duration, Instant};

    #[test]
    fn word_is_four_bytes_and_zero() {
        assert_eq!(core::mem::size_of::<Byte<Spin>>(), 4);
        assert_eq!(core::mem::size_of::<Byte<Park>>(), 4);
        let b = Byte::<Spin>::new();
        assert_eq!(b.word.load(Ordering::Relaxed), 0);
        static B: Byte<Spin> = Byte::new();
        assert!(!B.is_locked());
    }

    fn states<B: Backend>() {
        let b = Byte::<B>::new();
        assert!(!b.is_locked());
        b.lock();
        assert!(b.is_locked());
        assert!(!b.is_contended());
        assert!(!b.try_lock());
        // SAFETY: locked above.
        unsafe { b.unlock() };
        assert!(!b.is_locked());
        assert!(b.try_lock());
        assert!(b.is_locked());
        // SAFETY: locked by try_lock.
        unsafe { b.unlock() };
        assert!(!b.is_locked());
        assert_eq!(
            b.word.load(Ordering::Relaxed) & !(CURSOR_MASK << CURSOR_SHIFT),
            0
        );
    }

    #[test]
    fn lock_unlock_try_lock_state() {
        states::<Spin>();
        states::<Park>();
        #[cfg(target_os = "linux")]
        states::<crate::backend::Futex>();
    }

    #[test]
    fn cursor_wraps_without_touching_spinners() {
        let b = Byte::<Park>::new();
        for i in 0..(CURSOR_MASK as usize + 1) * 2 + 3 {
            b.lock();
            // SAFETY: locked above.
            unsafe { b.unlock() };
            let w = b.word.load(Ordering::Relaxed);
            assert_eq!(spinners(w), 0, "{w:#x}");
            assert_eq!(w & LOCKED_MASK, 0, "{w:#x}");
            assert_eq!(cursor(w) as usize, (i + 1) % 256, "{w:#x}");
        }
    }

    #[test]
    fn contended_when_a_waiter_is_registered() {
        let b = Byte::<Park>::new();
        b.lock();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                b.lock();
                // SAFETY: locked just above.
                unsafe { b.unlock() };
            });
            // The waiter spins for its budget (microseconds), then registers and blocks.
            let deadline = Instant::now() + Duration::from_secs(20);
            while !b.is_contended() {
                assert!(Instant::now() < deadline, "waiter never registered: {b:?}");
                std::thread::yield_now();
            }
            assert!(b.is_locked());
            // SAFETY: locked by this thread above; the unlock must kick the blocked waiter.
            unsafe { b.unlock() };
            waiter.join().unwrap();
        });
        assert!(!b.is_locked());
        assert!(!b.is_contended(), "{b:?}");
    }

    fn hammer<B: Backend>(threads: usize, iters: u64, hold: std::time::Duration) {
        let lock = Byte::<B>::new();
        crate::testutil::hammer(&lock, threads, iters, hold);
        assert!(!lock.is_contended(), "{lock:?}");
    }

    #[test]
    fn eight_threads_spin() {
        hammer::<Spin>(8, 20_000, std::time::Duration::ZERO);
    }

    crate::testutil::blocking_backend_tests!(20_000);
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::loom_model::{assert_reached, Model, ModelPark};
    use crate::stats::{Event, Snapshot};

    fn model(threads: usize, preemptions: usize) -> Snapshot {
        Model::new(threads, preemptions).check(Byte::<ModelPark>::new, |l| {
            assert!(!l.is_locked());
            assert!(!l.is_contended());
        })
    }

    /// Two threads: the loser spins once, registers and blocks; either the unlock sees the count
    /// or the waiter sees the lock free, and the kick reaches it.
    #[test]
    fn loom_byte_two_threads() {
        let events = model(2, 8);
        assert_reached(&events, Event::PvWaitNode);
        assert_reached(&events, Event::PvKickUnlock);
    }

    /// Three threads: two registered waiters, kicks to a waiter that already left, the rotating
    /// scan start.
    #[test]
    fn loom_byte_three_threads() {
        let events = model(3, 3);
        assert_reached(&events, Event::PvWaitNode);
        assert_reached(&events, Event::PvKickUnlock);
    }

    /// Crowded (three threads, one CPU): the policy reads "crowded" (`pv_crowded`), so a
    /// waiter's spin before it blocks is empty; it registers, blocks and is kicked as in the
    /// calm models.
    #[test]
    fn loom_byte_crowded_policy() {
        let events = Model::new(3, 1)
            .cpus(1)
            .cs_yields(2)
            .check(Byte::<ModelPark>::new, |l| {
                assert!(!l.is_locked());
                assert!(!l.is_contended());
            });
        assert_reached(&events, Event::PvCrowded);
        assert_reached(&events, Event::PvWaitNode);
        assert_reached(&events, Event::PvKickUnlock);
    }

    fn acquire_timed(l: &Byte<ModelPark>, thread: usize) -> bool {
        if thread == 0 {
            l.lock_until(&crate::sync::Deadline::after_checks(2))
        } else {
            l.lock();
            true
        }
    }

    /// Timed locking, three threads: thread 0 has a deadline; when it leaves, the unlock that
    /// would have kicked it must kick the other registered waiter ("Timed locking"). Swapping the
    /// leave's record clear and count (or making the count's RMW Relaxed) deadlocks this model.
    #[test]
    fn loom_byte_timed() {
        let events = Model::new(3, 2).cs_yields(1).check_acquire(
            Byte::<ModelPark>::new,
            acquire_timed,
            |l| {
                assert!(!l.is_locked());
                assert!(!l.is_contended());
            },
        );
        assert_reached(&events, Event::TimedWait);
        assert_reached(&events, Event::TimedOut);
        assert_reached(&events, Event::PvKickUnlock);
    }
}
