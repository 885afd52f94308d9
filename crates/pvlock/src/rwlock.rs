//! `QueuedRwLock`: the kernel's queued rwlock (qrwlock), whose contended readers and writers
//! queue on a [`Queued`] wait lock and so inherit its paravirtual slow path.
//!
//! Follows kernel/locking/qrwlock.c and include/asm-generic/qrwlock.h of Linux (Waiman Long,
//! 2013-2014); the code is our own, the protocol and its names are the kernel's, with two
//! additions: the wait-lock holder blocks instead of spinning (`PARKED_*`), and upgradable reads.
//!
//! # Word
//!
//! ```text
//!  31 30                              8 7        4   3   2   1   0
//! +--+---------------------------------+----------+---+---+---+---+
//! |OV|        readers (23 bit)         |    0     |P_R|P_W| W | L |
//! +--+---------------------------------+----------+---+---+---+---+
//! ```
//!
//! * `L` (`WRITER`): held for writing. `readers`: read holders (`READER` = 1 << 8 each).
//! * `W` (`WAITING`): the writer at the head of the wait lock waits for the readers to leave; new
//!   readers must queue (writer preference).
//! * `P_W`, `P_R` (`PARKED_W`, `PARKED_R`, pv only): the wait-lock holder sleeps, named in the
//!   lock's `parked` field, until the writer leaves (`P_W`: the writer's unlock kicks it) or the
//!   readers leave (`P_R`: the unlock of the last reader kicks it).
//! * `OV`: the reader count's top bit; a read that would set it panics instead of overflowing.
//!
//! A second word, the wait lock, is a `Queued<B>`: contended readers and writers queue on it, in
//! order, spinning and then blocking as every `Queued` waiter does, kicked in turn. A third holds
//! the sleeping wait-lock holder's slot, a fourth the number of writers in the slow path.
//!
//! # Transitions (readers, `W`, `L`; the parked bits below)
//!
//! ```text
//! read, fast:     (r,0,0) -cas-> (r+1,0,0)              no writer holds, waits, or sleeps
//! read, slow:     [pv: the fast path again, with backoff]; then
//!                 wait.lock(); (r,*,l) -add-> (r+1,*,l); wait for l == 0; wait.unlock()
//! write, fast:    (0,0,0) -cas-> (0,0,1)
//! write, slow:    wait.lock(); (0,0,0) -cas-> (0,0,1), or
//!                 (r,0,l) -or-> (r,1,l); wait for (0,1,0); (0,1,0) -cas-> (0,0,1); wait.unlock()
//! read unlock:    (r,w,l) -sub-> (r-1,w,l)
//! write unlock:   (r,w,1) -sub-> (r,w,0)
//! downgrade:      (0,w,1) -add-> (1,w,0)                write -> read
//! upgradable:     wait.lock(); then as a slow read, keeping the wait lock
//! upgrade:        (r,0,0) -add-> (r-1,1,0) (our read becomes W); as a slow write from "wait for"
//! try_upgrade:    (1,0,0) -cas-> (0,0,1); wait.unlock()
//! ```
//!
//! The wait-lock holder waits for what it needs (`l == 0` for a reader, `(0,1,0)` for a writer)
//! by spinning for the policy's spin, then sleeping: it writes its slot to `parked` and sets
//! `P_W` if a writer holds the lock, else `P_R`, with a CAS that expects that state (release),
//! and waits. Whoever ends that state kicks it, and *only* that thread, by construction:
//!
//! ```text
//! write unlock:   old = (r,w,1)+P_W -sub-> (r,w,0)+P_W: read parked; -sub P_W-; kick(parked)
//! read unlock:    old - READER == (0,1,0)+P_R:         read parked; -sub P_R-; kick(parked)
//! ```
//!
//! `P_*` is cleared only by that kicker, and the sleeper goes on only once it is clear, so the
//! kicker's clearing RMW is its last access to the lock (the sleeper may free it after that):
//! only the static slot is used for the kick. The last reader is unique: while `W` is set the
//! reader count only rises where it is already non-zero (a recursive read, which needs a held
//! read), so exactly one unlock brings it to zero. (The kernel's readers add their count first
//! and take it back when a writer is there; here the fast path is a CAS, so no transient count
//! can make a second "last reader".) Lost wake-ups: the sleeper's CAS expects the state that
//! makes the kicker responsible, so the kicker's RMW comes later in the word's order and reads
//! `P_*` (its acquire fence then sees `parked`); a kick before the wait is latched.
//!
//! # Writer preference, reader batching, no writer starvation
//!
//! As in the kernel: a writer at the head of the wait lock sets `W`, after which no new reader
//! gets in (the fast path needs `W` clear; the slow path queues behind the writer), and the
//! writer takes the lock when the readers inside have left. A reader at the head of the wait lock
//! passes it on as soon as it holds its read, so a run of readers queued behind a writer enter
//! together once it leaves (reader batching).
//!
//! **Writer starvation is impossible by construction.** A writer that misses the fast path counts
//! itself in `writers` (SeqCst) and then queues on the wait lock. While the count is non-zero,
//! every release of the wait lock is `unlock_fair`: with waiters queued the lock is handed to the
//! queue head and never left free for a thread that has not queued (without writers in the slow
//! path the release is a plain unlock, and a running reader may take the wait lock past queued
//! readers: runs of readers then move without a hand-over each). A release can miss the count at
//! most once per writer: a releaser whose SeqCst load misses the increment may release unfairly,
//! but the thread that takes the wait lock from that release synchronizes with the writer's
//! queueing (its tail exchange, in the release sequence the releasing RMW continues), so every
//! later release sees the count. So the writer's turn comes after the finitely many waiters ahead
//! of it plus at most one thread that took the lock past it, each of which holds the wait lock
//! only until it gets the rwlock (a reader: until the writer inside leaves; a writer: until the
//! readers inside leave, none of which can be replaced). At the head it sets `W`; from then on no
//! reader and no writer can enter before it (the fast paths need `W` clear, recursive reads need
//! a read that is already held), so it waits only for the readers inside, each of which leaves
//! after its critical section. Only threads without a waiter slot (more than 1024 waiting at
//! once) spin beside the queue, as on every `Queued` lock.
//!
//! # Timed locking (`lock_api::RawRwLockTimed`, blocking backends)
//!
//! The wait lock is taken with its own timed path (a timed `Queued` waiter never joins the queue,
//! see `queued`); the holder's wait ends at the deadline, and it backs out: a reader takes back its
//! count (`(r+1,0,1) -cas-> (r,0,1)`), a writer its `W` (`(r,1,l) -cas-> (r,0,l)`), clearing its
//! `P_*` in the same CAS, which expects the state in which no kicker has been made responsible
//! yet (a writer still inside, readers still inside). When the kicker is already on its way the
//! waiter waits for its kick and takes the lock, a little after its deadline. Then it releases
//! the wait lock.
//!
//! # Upgradable reads
//!
//! An upgradable read holds the wait lock and a read: it excludes writers and other upgradable
//! reads (they queue on the wait lock) but not plain readers. `upgrade` turns its read into `W` in
//! one RMW and waits as a queued writer. There is no `downgrade_to_upgradable`
//! (`lock_api::RawRwLockUpgradeDowngrade`): a writer would have to take the wait lock while
//! holding the write lock, and a reader at the head of the wait lock waits for that writer: a
//! deadlock.
//!
//! # The policy it consults (pv)
//!
//! * **Reader entry spin** (`Policy::reader_entry_spin`): a reader that a writer keeps out
//!   retries the fast path for the spin budget, with exponential backoff that yields the CPU
//!   between tries once it saturates, before it queues on the wait lock, also while the process
//!   is crowded. A writer's critical section is short, so the retry usually succeeds; a reader
//!   that queued instead would need a hand-over of the wait lock of its own, and with more
//!   threads than CPUs the readers queued behind a writer sleep and are woken one after another.
//!   Measured with the read-mostly hash table (`pvlock bench --workload rwlock --read-pct 99`,
//!   16 threads on 2 CPUs, two alternated sittings): 0.80x of the best peer without it,
//!   0.87x and 0.99x with it, and fairer (docs/rwlock.md has the whole matrix). Yielding, not spinning, is what makes it safe while
//!   crowded: the CPU goes to a thread that can run, the writer among them.
//! * **Wait-lock holder's spin** (`Policy::queued_spin`): the reader or writer at the head of
//!   the wait lock spins for the spin budget (none while crowded) before it sleeps, as a queued
//!   `Queued` waiter does.
//!
//! With [`Spin`](crate::backend::Spin) the rwlock is the kernel's native qrwlock (the wait-lock
//! holder spins; no pv code) and needs no `std`.

use core::marker::PhantomData;

use crate::backend::Backend;
use crate::policy::{Backoff, Policy};
use crate::queued::Queued;
use crate::slot;
use crate::stats::{count, Event};
use crate::sync::{fence, yield_now, AtomicU32, Deadline, Ordering};
use crate::tuning::STEAL_BACKOFF_MAX;

const WRITER: u32 = 1;
const WAITING: u32 = 1 << 1;
const PARKED_W: u32 = 1 << 2;
const PARKED_R: u32 = 1 << 3;
const PARKED: u32 = PARKED_W | PARKED_R;
/// Anything that makes a reader's fast path fail.
const WMASK: u32 = WRITER | WAITING | PARKED;
const READER: u32 = 1 << 8;
const READERS: u32 = !0 << 8;
const OVERFLOW: u32 = 1 << 31;

/// The kernel's queued rwlock: one word of state plus a [`Queued`] wait lock; see the
/// [module docs](self) for the protocol.
///
/// ```
/// use pvlock::{backend::Auto, rwlock::QueuedRwLock};
///
/// let l = QueuedRwLock::<Auto>::new();
/// l.read();
/// assert!(l.try_read() && !l.try_write());
/// // SAFETY: two reads taken above.
/// unsafe { l.read_unlock(); l.read_unlock() };
/// l.write();
/// assert!(l.is_locked_exclusive());
/// // SAFETY: the write lock is held.
/// unsafe { l.write_unlock() };
/// ```
pub struct QueuedRwLock<B: Backend> {
    state: AtomicU32,
    /// Slot index + 1 of the sleeping wait-lock holder, while `PARKED_*` is set.
    parked: AtomicU32,
    /// Writers in the slow path (queued on the wait lock or holding it): while there are any,
    /// every release of the wait lock is fair ("No writer starvation").
    writers: AtomicU32,
    wait: Queued<B>,
    _backend: PhantomData<fn() -> B>,
}

impl<B: Backend> Default for QueuedRwLock<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backend> core::fmt::Debug for QueuedRwLock<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("QueuedRwLock")
            .field("readers", &((s & READERS) / READER))
            .field("writer", &(s & WRITER != 0))
            .field("waiting", &(s & WAITING != 0))
            .field("parked", &(s & PARKED != 0))
            .field("wait", &self.wait)
            .finish()
    }
}

#[cold]
#[inline(never)]
fn overflow() -> ! {
    panic!("pvlock: RwLock reader count overflow");
}

impl<B: Backend> QueuedRwLock<B> {
    crate::sync::const_fn! {
        /// An unlocked rwlock.
        pub fn new() -> Self {
            QueuedRwLock {
                state: AtomicU32::new(0),
                parked: AtomicU32::new(0),
                writers: AtomicU32::new(0),
                wait: Queued::new(),
                _backend: PhantomData,
            }
        }
    }

    /// Whether the lock is held, for reading or writing, now.
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & (WRITER | READERS) != 0
    }

    /// Whether the lock is held for writing now.
    #[inline]
    pub fn is_locked_exclusive(&self) -> bool {
        self.state.load(Ordering::Relaxed) & WRITER != 0
    }

    /// Whether threads are waiting now (queued on the wait lock, or a writer waiting for the
    /// readers to leave).
    #[inline]
    pub fn is_contended(&self) -> bool {
        self.state.load(Ordering::Relaxed) & (WAITING | PARKED) != 0 || self.wait.is_locked()
    }

    // ---- reads ----

    /// Takes a read lock if no writer holds, waits for or sleeps in the lock now.
    #[inline]
    pub fn try_read(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & (WMASK | OVERFLOW) == 0 {
            // Acquire: pairs with the release of the last writer (its unlock or a later RMW).
            match self.state.compare_exchange_weak(
                s,
                s + READER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        if s & OVERFLOW != 0 {
            overflow();
        }
        false
    }

    /// Takes a read lock, waiting behind queued writers (writer preference).
    #[inline]
    pub fn read(&self) {
        let s = self.state.load(Ordering::Relaxed);
        // Acquire: as in `try_read`.
        if s & (WMASK | OVERFLOW) != 0
            || self
                .state
                .compare_exchange_weak(s, s + READER, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            self.read_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn read_slow(&self) {
        // Readers contend only among themselves here: retry the CAS while no writer is around.
        if self.try_read() {
            return;
        }
        count(Event::RwReadSlowpath);
        if B::BLOCKING {
            // Before queueing: the writer may leave soon, or be preempted (module docs,
            // "Reader entry spin").
            let mut spin = Policy::now().reader_entry_spin();
            while spin.snooze() {
                if self.try_read() {
                    return;
                }
            }
        }
        self.wait.lock();
        self.read_queued();
        self.release_wait();
    }

    /// Releases the wait lock: fairly (to the queue head, no stealing) while a writer is in the
    /// slow path, else as a plain unlock, so that runs of readers and writers move without a
    /// hand-over each ("No writer starvation" in the module docs).
    #[inline]
    fn release_wait(&self) {
        // SeqCst: pairs with the writer's SeqCst increment before it queues (module docs).
        if self.writers.load(Ordering::SeqCst) != 0 {
            // SAFETY: the caller holds the wait lock.
            unsafe { self.wait.unlock_fair() };
        } else {
            // SAFETY: as above.
            unsafe { self.wait.unlock() };
        }
    }

    /// A writer enters the slow path: from now on the wait lock is released fairly.
    #[inline]
    fn writer_enters(&self) {
        // SeqCst: ordered before our queueing on the wait lock (module docs).
        self.writers.fetch_add(1, Ordering::SeqCst);
    }

    /// A writer leaves the slow path (before it releases the wait lock).
    #[inline]
    fn writer_leaves(&self) {
        self.writers.fetch_sub(1, Ordering::SeqCst);
    }

    /// As the wait-lock holder: count ourselves in, wait for the writer to leave.
    fn read_queued(&self) {
        self.add_queued_reader();
        let _ = self.wait_for(reader_ready, None);
    }

    /// The wait-lock holder counts itself as a reader (the kernel's `atomic_add(_QR_BIAS)`).
    #[inline]
    fn add_queued_reader(&self) {
        // Acquire: if the writer is gone already, this is the read that orders us after it.
        let s = self.state.fetch_add(READER, Ordering::Acquire);
        if s & OVERFLOW != 0 {
            self.state.fetch_sub(READER, Ordering::Relaxed);
            // SAFETY: the caller holds the wait lock; release it before unwinding.
            unsafe { self.wait.unlock_fair() };
            overflow();
        }
    }

    /// Takes a read lock even while a writer waits for the readers to leave, as long as other
    /// readers hold it (one of them may be the caller): `lock_api`'s recursive read.
    #[inline]
    pub fn read_recursive(&self) {
        if !self.try_read_recursive() {
            self.read_slow();
        }
    }

    /// [`try_read`](Self::try_read), but also past a waiting writer while other readers hold
    /// the lock.
    #[inline]
    pub fn try_read_recursive(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let free = s & WMASK == 0;
            let joins_readers = s & WRITER == 0 && s & READERS != 0;
            if s & OVERFLOW != 0 {
                overflow();
            }
            if !(free || joins_readers) {
                return false;
            }
            // Acquire: as in `try_read`. Joining held reads keeps the "last reader" unique: the
            // count only rises where it is non-zero (module docs).
            match self.state.compare_exchange_weak(
                s,
                s + READER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Releases a read lock; the last reader kicks a writer that sleeps waiting for the readers.
    ///
    /// # Safety
    /// A read lock must be held.
    #[inline]
    pub unsafe fn read_unlock(&self) {
        // Release: ends the read section for the writer that acquires after it.
        let old = self.state.fetch_sub(READER, Ordering::Release);
        debug_assert!(
            old & READERS != 0,
            "pvlock: read_unlock of an RwLock not read-locked"
        );
        if B::BLOCKING && old.wrapping_sub(READER) == WAITING | PARKED_R {
            self.kick_parked(PARKED_R);
        }
    }

    // ---- writes ----

    /// Takes the write lock if the lock is free and nobody waits for it now.
    #[inline]
    pub fn try_write(&self) -> bool {
        // Acquire: pairs with the releases of the previous holders.
        self.state.load(Ordering::Relaxed) == 0
            && self
                .state
                .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Takes the write lock.
    #[inline]
    pub fn write(&self) {
        // Acquire: as in `try_write`.
        if self
            .state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.write_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn write_slow(&self) {
        count(Event::RwWriteSlowpath);
        self.writer_enters();
        self.wait.lock();
        if !self.try_write() {
            // Writer preference: from here no new reader gets in. Relaxed: WAITING orders nothing
            // by itself; our acquire is the final CAS.
            self.state.fetch_or(WAITING, Ordering::Relaxed);
            self.take_drained();
        }
        self.writer_leaves();
        self.release_wait();
    }

    /// As the wait-lock holder with `WAITING` set: wait for the readers (and a writer that got
    /// in first) to leave, then take the write lock.
    fn take_drained(&self) {
        loop {
            let _ = self.wait_for(writer_ready, None);
            // Acquire: pairs with the release of the last reader (or writer) through the release
            // sequence. Only we change a WAITING-only word (module docs), so this rarely fails.
            if self
                .state
                .compare_exchange(WAITING, WRITER, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Releases the write lock; kicks the wait-lock holder if it sleeps waiting for us.
    ///
    /// # Safety
    /// The write lock must be held.
    #[inline]
    pub unsafe fn write_unlock(&self) {
        // Release: ends the critical section.
        let old = self.state.fetch_sub(WRITER, Ordering::Release);
        debug_assert!(
            old & WRITER != 0,
            "pvlock: write_unlock of an RwLock not write-locked"
        );
        if B::BLOCKING && old & PARKED_W != 0 {
            self.kick_parked(PARKED_W);
        }
    }

    /// Turns the write lock into a read lock without letting a writer in between.
    ///
    /// # Safety
    /// The write lock must be held.
    #[inline]
    pub unsafe fn downgrade(&self) {
        // Release: our writes so far happen before the readers that get in now.
        let old = self
            .state
            .fetch_add(READER.wrapping_sub(WRITER), Ordering::Release);
        debug_assert!(
            old & WRITER != 0,
            "pvlock: downgrade of an RwLock not write-locked"
        );
        if B::BLOCKING && old & PARKED_W != 0 {
            // We still hold a read: the lock is alive.
            self.kick_parked(PARKED_W);
        }
    }

    // ---- upgradable reads ----

    /// Takes an upgradable read: a read that excludes writers and other upgradable reads.
    pub fn read_upgradable(&self) {
        self.wait.lock();
        self.read_queued();
    }

    /// Takes an upgradable read if no writer or upgradable read holds or waits for the lock.
    pub fn try_read_upgradable(&self) -> bool {
        if !self.wait.try_lock() {
            return false;
        }
        let mut s = self.state.load(Ordering::Relaxed);
        while s & (WRITER | PARKED | OVERFLOW) == 0 {
            // Acquire: as in `try_read`. (WAITING cannot be set: we hold the wait lock.)
            match self.state.compare_exchange_weak(
                s,
                s + READER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        // Locked above, by us.
        self.release_wait();
        if s & OVERFLOW != 0 {
            overflow();
        }
        false
    }

    /// Releases an upgradable read.
    ///
    /// # Safety
    /// An upgradable read must be held.
    pub unsafe fn read_upgradable_unlock(&self) {
        // Release: ends our read. Nobody sleeps for the readers: we hold the wait lock.
        self.state.fetch_sub(READER, Ordering::Release);
        // The upgradable read holds the wait lock.
        self.release_wait();
    }

    /// Turns the upgradable read into the write lock, waiting for the other readers to leave.
    ///
    /// # Safety
    /// An upgradable read must be held.
    pub unsafe fn upgrade(&self) {
        // Our read becomes WAITING in one RMW: readers drain as for a queued writer.
        self.state
            .fetch_add(WAITING.wrapping_sub(READER), Ordering::Relaxed);
        self.take_drained();
        // The upgradable read held the wait lock.
        self.release_wait();
    }

    /// Turns the upgradable read into the write lock if no other reader holds the lock now.
    ///
    /// # Safety
    /// An upgradable read must be held.
    pub unsafe fn try_upgrade(&self) -> bool {
        // Acquire: pairs with the releases of the readers that left.
        if self
            .state
            .compare_exchange(READER, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // The upgradable read held the wait lock.
            self.release_wait();
            true
        } else {
            false
        }
    }

    /// Turns the upgradable read into a plain read.
    ///
    /// # Safety
    /// An upgradable read must be held.
    pub unsafe fn downgrade_upgradable(&self) {
        // The upgradable read holds the wait lock; the read stays.
        self.release_wait();
    }

    // ---- the wait-lock holder's wait and its kick ----

    /// The wait-lock holder waits until `ready(state)`: it spins for the policy's spin, then
    /// sleeps (pv): it names itself in `parked` and sets `PARKED_W` (a writer holds the lock) or
    /// `PARKED_R` (readers hold it) with a CAS that expects that state, and waits for the kick
    /// (module docs). `Err(state)`: `deadline` passed first; the caller backs out.
    fn wait_for(&self, ready: fn(u32) -> bool, deadline: Option<&Deadline>) -> Result<u32, u32> {
        let mut spin = if B::BLOCKING {
            Policy::now().queued_spin(false)
        } else {
            Backoff::unbounded(1, false)
        };
        loop {
            // Acquire: the release of whoever we waited for.
            let s = self.state.load(Ordering::Acquire);
            if ready(s) {
                return Ok(s);
            }
            if spin.look_aside() && deadline.is_some_and(Deadline::passed) {
                return Err(s);
            }
            if !spin.snooze() {
                break;
            }
        }
        let Some(me) = B::current() else {
            return self.poll_for(ready, deadline);
        };
        // About to sleep: a contender (the policy's load).
        me.seen.contend(true);
        loop {
            // Acquire: as above.
            let mut s = self.state.load(Ordering::Acquire);
            if ready(s) {
                return Ok(s);
            }
            if deadline.is_some_and(Deadline::passed) {
                return Err(s);
            }
            if s & PARKED == 0 {
                let bit = if s & WRITER != 0 {
                    PARKED_W
                } else if s & READERS != 0 {
                    PARKED_R
                } else {
                    continue; // changing under us: look again
                };
                // Relaxed: published by the Release CAS that sets the bit.
                self.parked.store(me.index() as u32 + 1, Ordering::Relaxed);
                // Release: `parked` before the bit, for the kicker's acquire fence. Expects the
                // state that makes the kicker responsible (a writer inside, readers inside).
                if self
                    .state
                    .compare_exchange_weak(s, s | bit, Ordering::Release, Ordering::Relaxed)
                    .is_err()
                {
                    continue;
                }
                s |= bit;
            }
            count(Event::RwWait);
            crate::load::blocked(|| match deadline {
                Some(d) => B::wait_timeout(me, &self.state, s, d.remaining()),
                None => B::wait(me, &self.state, s),
            });
        }
    }

    /// No waiter slot (or no blocking backend past its spin): poll, yielding.
    #[cold]
    fn poll_for(&self, ready: fn(u32) -> bool, deadline: Option<&Deadline>) -> Result<u32, u32> {
        let mut backoff = Backoff::unbounded(STEAL_BACKOFF_MAX, true);
        loop {
            // Acquire: as in `wait_for`.
            let s = self.state.load(Ordering::Acquire);
            if ready(s) {
                return Ok(s);
            }
            if backoff.look_aside() && deadline.is_some_and(Deadline::passed) {
                return Err(s);
            }
            backoff.snooze();
        }
    }

    /// The kick of the sleeping wait-lock holder by the one thread responsible for it: the
    /// caller's RMW read `bit` set (and made it the kicker: module docs).
    #[cold]
    #[inline(never)]
    fn kick_parked(&self, bit: u32) {
        // Acquire: pairs with the sleeper's release CAS that set `bit` (our RMW read it or a
        // later value of its release sequence): its slot in `parked` is visible.
        fence(Ordering::Acquire);
        let who = self.parked.load(Ordering::Relaxed);
        // Release: continues the release sequence the sleeper acquires through. The last access
        // to the lock: once `bit` is clear the sleeper goes on and may free it.
        self.state.fetch_sub(bit, Ordering::Release);
        count(Event::RwKick);
        debug_assert_ne!(who, 0);
        if who != 0 {
            B::kick(slot::slot_at(who as usize - 1));
        }
    }

    // ---- timed ----

    // Without `std` there is no clock, so no timed API.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    /// A read lock before `deadline`, or `false`.
    pub(crate) fn read_until(&self, deadline: &Deadline) -> bool {
        if self.try_read() {
            return true;
        }
        count(Event::RwReadSlowpath);
        if !self.wait.lock_until(deadline) {
            return false;
        }
        self.add_queued_reader();
        let got = match self.wait_for(reader_ready, Some(deadline)) {
            Ok(_) => true,
            Err(_) => self.back_out(reader_ready, |s| {
                // Still a writer inside: nobody is responsible for a kick yet.
                (s & WRITER != 0).then(|| (s - READER) & !PARKED)
            }),
        };
        self.release_wait();
        got
    }

    // Without `std` there is no clock, so no timed API.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    /// The write lock before `deadline`, or `false`.
    pub(crate) fn write_until(&self, deadline: &Deadline) -> bool {
        // Acquire: as in `write`.
        if self
            .state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return true;
        }
        count(Event::RwWriteSlowpath);
        self.writer_enters();
        if !self.wait.lock_until(deadline) {
            self.writer_leaves();
            return false;
        }
        let got = self.try_write() || {
            // Relaxed: as in `write_slow`.
            self.state.fetch_or(WAITING, Ordering::Relaxed);
            loop {
                let ready = match self.wait_for(writer_ready, Some(deadline)) {
                    Ok(_) => true,
                    Err(_) => self.back_out(writer_ready, |s| {
                        // Readers (or a writer) still inside: no kicker yet.
                        let inside = if s & PARKED_R != 0 {
                            s & READERS != 0
                        } else if s & PARKED_W != 0 {
                            s & WRITER != 0
                        } else {
                            true
                        };
                        inside.then_some(s & !(WAITING | PARKED))
                    }),
                };
                if !ready {
                    break false;
                }
                // Acquire: as in `take_drained`.
                if self
                    .state
                    .compare_exchange(WAITING, WRITER, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    break true;
                }
            }
        };
        self.writer_leaves();
        self.release_wait();
        got
    }

    // Without `std` there is no clock, so no timed API.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    /// The wait-lock holder's deadline passed: undo with the CAS `retract(state)` gives (None:
    /// a kicker is on its way; wait for it). `true` if the lock became ready meanwhile.
    #[cold]
    fn back_out(&self, ready: fn(u32) -> bool, retract: impl Fn(u32) -> Option<u32>) -> bool {
        loop {
            // Acquire: as in `wait_for`.
            let s = self.state.load(Ordering::Acquire);
            if ready(s) {
                return true;
            }
            match retract(s) {
                // Relaxed: we only take back what we added; nobody acquires through it.
                Some(new) => {
                    if self
                        .state
                        .compare_exchange_weak(s, new, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                    {
                        count(Event::TimedOut);
                        return false;
                    }
                }
                // The kicker clears our bit in a moment and kicks us.
                None => yield_now(),
            }
        }
    }
}

/// A queued reader (which has counted itself) may go on: no writer inside, no kick pending.
fn reader_ready(s: u32) -> bool {
    s & (WRITER | PARKED_W) == 0
}

/// A queued writer may take the lock: only its `WAITING` is left.
fn writer_ready(s: u32) -> bool {
    s == WAITING
}

#[cfg(not(loom))]
// SAFETY: shared and exclusive locking as documented in the module: the write lock excludes
// everything, reads exclude the write lock. No per-thread state outlives an acquisition (the wait
// lock is released before `lock_*` returns, or held by the upgradable read, which any thread may
// release), so guards may be sent.
unsafe impl<B: Backend> lock_api::RawRwLock for QueuedRwLock<B> {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = QueuedRwLock::new();
    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock_shared(&self) {
        self.read()
    }
    #[inline]
    fn try_lock_shared(&self) -> bool {
        self.try_read()
    }
    #[inline]
    unsafe fn unlock_shared(&self) {
        // SAFETY: lock_api calls this only with a read lock held.
        unsafe { self.read_unlock() }
    }
    #[inline]
    fn lock_exclusive(&self) {
        self.write()
    }
    #[inline]
    fn try_lock_exclusive(&self) -> bool {
        self.try_write()
    }
    #[inline]
    unsafe fn unlock_exclusive(&self) {
        // SAFETY: lock_api calls this only with the write lock held.
        unsafe { self.write_unlock() }
    }
    #[inline]
    fn is_locked(&self) -> bool {
        QueuedRwLock::is_locked(self)
    }
    #[inline]
    fn is_locked_exclusive(&self) -> bool {
        QueuedRwLock::is_locked_exclusive(self)
    }
}

#[cfg(not(loom))]
// SAFETY: `downgrade` turns the write lock into a read in one RMW.
unsafe impl<B: Backend> lock_api::RawRwLockDowngrade for QueuedRwLock<B> {
    #[inline]
    unsafe fn downgrade(&self) {
        // SAFETY: lock_api calls this only with the write lock held.
        unsafe { QueuedRwLock::downgrade(self) }
    }
}

#[cfg(not(loom))]
// SAFETY: a recursive read only joins reads that are held (module docs).
unsafe impl<B: Backend> lock_api::RawRwLockRecursive for QueuedRwLock<B> {
    #[inline]
    fn lock_shared_recursive(&self) {
        self.read_recursive()
    }
    #[inline]
    fn try_lock_shared_recursive(&self) -> bool {
        self.try_read_recursive()
    }
}

#[cfg(not(loom))]
// SAFETY: upgradable reads hold the wait lock, which excludes writers and other upgradable reads
// (module docs, "Upgradable reads").
unsafe impl<B: Backend> lock_api::RawRwLockUpgrade for QueuedRwLock<B> {
    #[inline]
    fn lock_upgradable(&self) {
        self.read_upgradable()
    }
    #[inline]
    fn try_lock_upgradable(&self) -> bool {
        self.try_read_upgradable()
    }
    #[inline]
    unsafe fn unlock_upgradable(&self) {
        // SAFETY: lock_api calls this only with an upgradable read held.
        unsafe { self.read_upgradable_unlock() }
    }
    #[inline]
    unsafe fn upgrade(&self) {
        // SAFETY: as above.
        unsafe { QueuedRwLock::upgrade(self) }
    }
    #[inline]
    unsafe fn try_upgrade(&self) -> bool {
        // SAFETY: as above.
        unsafe { QueuedRwLock::try_upgrade(self) }
    }
}

#[cfg(all(feature = "std", not(loom)))]
mod timed_api {
    use super::*;
    use std::time::{Duration, Instant};

    impl<B: Backend> QueuedRwLock<B> {
        /// A read lock within `timeout`, or `false` (module docs, "Timed locking").
        pub fn try_read_for(&self, timeout: Duration) -> bool {
            match Instant::now().checked_add(timeout) {
                Some(at) => self.try_read_until(at),
                None => {
                    self.read();
                    true
                }
            }
        }
        /// A read lock before `deadline`, or `false`.
        pub fn try_read_until(&self, deadline: Instant) -> bool {
            self.read_until(&Deadline::at(deadline))
        }
        /// The write lock within `timeout`, or `false`.
        pub fn try_write_for(&self, timeout: Duration) -> bool {
            match Instant::now().checked_add(timeout) {
                Some(at) => self.try_write_until(at),
                None => {
                    self.write();
                    true
                }
            }
        }
        /// The write lock before `deadline`, or `false`.
        pub fn try_write_until(&self, deadline: Instant) -> bool {
            self.write_until(&Deadline::at(deadline))
        }
    }

    macro_rules! timed {
        ($($b:ty),*) => {$(
            // SAFETY: the timed paths take the lock through the same RMWs as the untimed ones
            // and back out cleanly (module docs, "Timed locking").
            unsafe impl lock_api::RawRwLockTimed for QueuedRwLock<$b> {
                type Duration = Duration;
                type Instant = Instant;
                fn try_lock_shared_for(&self, timeout: Duration) -> bool {
                    self.try_read_for(timeout)
                }
                fn try_lock_shared_until(&self, timeout: Instant) -> bool {
                    self.try_read_until(timeout)
                }
                fn try_lock_exclusive_for(&self, timeout: Duration) -> bool {
                    self.try_write_for(timeout)
                }
                fn try_lock_exclusive_until(&self, timeout: Instant) -> bool {
                    self.try_write_until(timeout)
                }
            }
        )*};
    }

    #[cfg(target_os = "linux")]
    timed!(crate::backend::Futex);
    timed!(crate::backend::Park, crate::backend::Auto);
}

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;
