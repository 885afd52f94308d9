//! Waiter slots: the user-space analogue of the kernel's per-CPU data.
//!
//! Every thread that has to wait for a pvlock lock needs a little state that *other* threads can
//! find: its MCS queue node (for `Queued`), the lock and ticket it is blocked on (for the pv
//! `Ticket` and `Byte` locks, whose unlock scans for the waiter to kick), its steal account, and
//! its wake-up latch (for the backends). The kernel keeps these per CPU; a user-space thread cannot
//! be pinned to a CPU, so pvlock keeps them per *thread*, in a fixed, pre-allocated table of
//! [`MAX_SLOTS`] cache-line-aligned [`Slot`]s. Each part of a slot is its own type, used by one
//! subsystem: the [`Node`] (submodule `node`) by `queued`, the [`Record`] by the `Ticket`, `Byte`
//! and timed `Queued` waiters, the [`Account`] by the policy, [`Seen`] by the load count, the
//! [`CvLink`] by `condvar`, the [`Latch`] (submodule `latch`) by the backends. The parts that only
//! the slot table holds are declared here, so that the slot depends on no lock and no backend
//! (those depend on it).
//!
//! * A thread claims a slot the first time it has to wait (never on the fast path), keeps it while
//!   it lives and gives it back when it exits, so slots are recycled.
//! * The slot's index + 1 is the `tail` of a `Queued` lock word.
//! * When every slot is taken, [`current`] returns `None` and the locks fall back to spinning
//!   without a node (the kernel's `lock_no_node` case): correct, slower, never a panic.
//! * Slots are never freed, so a kick that races with a thread's exit touches valid memory; at
//!   worst it leaves a stale token in the latch, which the next owner sees as a spurious wake-up
//!   (the [`Backend`](crate::backend::Backend) contract allows those).
//!
//! Without the `std` feature there are no thread-locals: a `no_std` backend names the slot of the
//! current CPU in [`Backend::current`](crate::backend::Backend::current), with [`slot`].
//!
//! A slot is its thread's identity while the thread lives: if two threads used one slot, both
//! could be handed the same queue position and enter a critical section together. So claiming and
//! giving back slots is this module's own business, and safe code cannot do either:
//!
//! ```compile_fail,E0603
//! let mine = pvlock::slot::claim();
//! ```
//!
//! ```compile_fail,E0603
//! // Giving a slot back while its thread may still wait with it: not possible from outside.
//! use pvlock::backend::{Auto, Backend};
//! pvlock::slot::release(Auto::current().unwrap());
//! ```

pub(crate) mod latch;
pub(crate) mod node;

use crate::load::Seen;
use crate::policy::steal::Account;
use crate::sync::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use latch::Latch;
use node::Node;

/// How many slots the table holds: the most threads that can wait with a node at once.
///
/// The `Queued` tail field has room for 65 535; 1024 keeps the table at 128 KiB of zero pages.
#[cfg(not(loom))]
pub(crate) const MAX_SLOTS: usize = 1024;
/// Under loom, few: the models' tables are made anew for every execution.
#[cfg(loom)]
pub(crate) const MAX_SLOTS: usize = 8;

const WORDS: usize = MAX_SLOTS.div_ceil(64);

/// The lock a `Ticket` or `Byte` waiter is blocked on, for the unlock that scans for it.
pub(crate) struct Record {
    /// Address of the lock, 0 = none.
    pub(crate) lock: AtomicUsize,
    /// The ticket it waits for (`Ticket`).
    pub(crate) want: AtomicU32,
}

impl Record {
    /// The slot is given back: the next thread starts blocked on no lock. Relaxed: as in
    /// [`Node::reset`].
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    fn reset(&self) {
        self.lock.store(0, Ordering::Relaxed);
        self.want.store(0, Ordering::Relaxed);
    }
}

/// A `Condvar` waiter's place in its condition variable's lists.
// Without `std` there is no `Condvar`.
#[cfg_attr(not(feature = "std"), allow(dead_code))]
pub(crate) struct CvLink {
    /// The next waiter in the list, as slot index + 1; 0 = none.
    pub(crate) next: AtomicU32,
    /// Where the waiter is: idle, waiting, chained, notified (`condvar` module).
    pub(crate) state: AtomicU32,
}

impl CvLink {
    /// The slot is given back: the next thread starts in no list, idle (`condvar`'s `IDLE`, 0).
    /// Relaxed: as in [`Node::reset`].
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    fn reset(&self) {
        self.next.store(0, Ordering::Relaxed);
        self.state.store(0, Ordering::Relaxed);
    }
}

/// One waiter's state, as other threads find it. Two cache lines, so that a waiter spinning on
/// its own slot never shares a line with a lock word or another waiter.
#[repr(align(128))]
pub struct Slot {
    pub(crate) node: Node,
    pub(crate) record: Record,
    pub(crate) account: Account,
    pub(crate) seen: Seen,
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) cv: CvLink,
    // Without `std` only a backend of the user's own blocks, on whatever it likes.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) latch: Latch,
}

impl Slot {
    crate::sync::const_fn! {
        fn new() -> Slot {
            Slot {
                node: Node::new(),
                record: Record { lock: AtomicUsize::new(0), want: AtomicU32::new(0) },
                account: Account::new(),
                seen: Seen::new(),
                cv: CvLink { next: AtomicU32::new(0), state: AtomicU32::new(0) },
                latch: Latch::new(),
            }
        }
    }

    /// Every part of the slot starts again as new, but the latch, for the next thread that
    /// claims it ([`release`]).
    ///
    /// The latch keeps what it holds: at most a kick that came after its thread's last wait (no
    /// thread waits on it now). Clearing it could not make it clean: a kick aimed at the thread
    /// that is leaving may still land after this (module docs). The next owner's first wait then
    /// returns at once, a spurious wake-up that every waiter tolerates.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    fn reset(&self) {
        self.node.reset();
        self.record.reset();
        self.account.close();
        self.seen.reset();
        self.cv.reset();
    }

    /// This slot's index in the table (what a `no_std` backend maps to a CPU number).
    #[inline]
    pub fn index(&self) -> usize {
        let base = table().as_ptr() as usize;
        (self as *const Slot as usize - base) / core::mem::size_of::<Slot>()
    }
}

impl core::fmt::Debug for Slot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Slot")
            .field("index", &self.index())
            .finish_non_exhaustive()
    }
}

crate::sync::static_cells! {
    fn table() -> [Slot; MAX_SLOTS] = Slot::new();
}

/// Bitmap of claimed slots, and one past the highest index ever handed out.
struct Claims {
    /// Without `std` nothing claims: a `no_std` backend names slots by index.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    words: [AtomicU64; WORDS],
    /// The unlock scans of `Ticket` and `Byte` stop here.
    high_water: AtomicUsize,
}

impl Claims {
    crate::sync::const_fn! {
        fn new() -> Claims {
            Claims {
                #[cfg(not(loom))]
                words: [const { AtomicU64::new(0) }; WORDS],
                #[cfg(loom)]
                words: core::array::from_fn(|_| AtomicU64::new(0)),
                high_water: AtomicUsize::new(0),
            }
        }
    }
}

crate::sync::static_cells! {
    /// The one `Claims` of the process (a table of one, for the loom shim).
    fn claims_cell() -> [Claims; 1] = Claims::new();
}

#[inline(always)]
fn claims() -> &'static Claims {
    &claims_cell()[0]
}

/// The slot with this index (a tail code or a scan names a slot by index).
///
/// # Panics
/// If `index >= MAX_SLOTS`.
#[inline]
pub(crate) fn slot_at(index: usize) -> &'static Slot {
    &table()[index]
}

/// The slot with this index, for a `no_std` backend whose
/// [`Backend::current`](crate::backend::Backend::current) names the slot of the CPU it runs on
/// (the kernel's per-CPU node). Indexes go from 0 to 1023.
///
/// Two threads that both use one slot as their own corrupt the queue and can both enter the
/// critical section; hence `unsafe`. Safe code only ever gets its own slot, from
/// [`Backend::current`](crate::backend::Backend::current).
///
/// ```compile_fail,E0133
/// // A slot by index is not for safe code: this does not compile.
/// let s = pvlock::backend::slot(0);
/// ```
///
/// # Safety
/// While the caller may wait for a pvlock lock with this slot, no other thread or CPU may use it
/// as its own: not return it from a `Backend::current` of its own, and not have it claimed by the
/// per-thread registry (so a process whose locks use the registry's slots, as every `std` backend
/// does, must not also hand out slots by index). In a guest kernel: `index` is the number of the
/// CPU the caller runs on, used with preemption disabled.
///
/// # Panics
/// If `index >= 1024`.
#[inline]
pub unsafe fn slot(index: usize) -> &'static Slot {
    let s = slot_at(index);
    // The unlock scans of `Ticket` and `Byte` look for blocked waiters below the high-water mark
    // only, so a slot handed out by index must raise it as a claimed one does. A load first: the
    // mark rarely changes, and this runs each time a waiter asks for its slot.
    let c = claims();
    if c.high_water.load(Ordering::Relaxed) <= index {
        // Release: as in `claim`.
        c.high_water.fetch_max(index + 1, Ordering::Release);
    }
    s
}

/// One past the highest slot index that has ever been handed out: scans of waiters stop here.
#[inline]
pub(crate) fn high_water() -> usize {
    // Acquire pairs with the Release in `claim`. A scanner relies on the waiter's own registration
    // (not on this) to see the slot's fields; this only bounds the scan.
    claims().high_water.load(Ordering::Acquire)
}

/// Claims a free slot, or `None` when all of them are taken. A claimed slot is the claimer's
/// identity until [`release`].
#[cfg(feature = "std")]
pub(crate) fn claim() -> Option<&'static Slot> {
    let c = claims();
    for (w, word) in c.words.iter().enumerate() {
        let mut bits = word.load(Ordering::Relaxed);
        loop {
            let free = !bits;
            if free == 0 {
                break;
            }
            let bit = free.trailing_zeros() as usize;
            let index = w * 64 + bit;
            if index >= MAX_SLOTS {
                return None;
            }
            // Acquire: the previous owner's last writes to the slot (its Release in `release`)
            // happen before we use it.
            match word.compare_exchange_weak(
                bits,
                bits | 1 << bit,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    c.high_water.fetch_max(index + 1, Ordering::Release);
                    return Some(slot_at(index));
                }
                Err(now) => bits = now,
            }
        }
    }
    None
}

/// Gives a slot back: the caller (the thread-local owner at thread exit, or a loom model) must
/// not use it afterwards, since the next claimant owns it.
#[cfg(feature = "std")]
// Under loom only the models give slots back (thread-local destructors do not).
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn release(s: &'static Slot) {
    let index = s.index();
    s.reset();
    // Release: the resets happen before the next claimant's Acquire.
    claims().words[index / 64].fetch_and(!(1 << (index % 64)), Ordering::Release);
}

#[cfg(feature = "std")]
mod per_thread {
    use super::*;
    use core::cell::Cell;

    /// Holds the thread's slot and gives it back when the thread exits.
    pub(super) struct Owned(pub(super) Cell<Option<&'static Slot>>);
    impl Drop for Owned {
        fn drop(&mut self) {
            // Under loom a thread's locals may be dropped after the model (and its lazy statics,
            // the slot table among them) is gone; the table is per execution anyway, so skip.
            #[cfg(not(loom))]
            if let Some(s) = self.0.take() {
                release(s);
            }
        }
    }

    #[cfg(not(loom))]
    crate::sync::thread_local! {
        pub(super) static MINE: Owned = const { Owned(Cell::new(None)) };
    }
    #[cfg(loom)]
    crate::sync::thread_local! {
        pub(super) static MINE: Owned = Owned(Cell::new(None));
    }
}

/// The calling thread's slot, claimed on first use and kept until the thread exits; `None` when
/// the table is full (or the thread is being torn down). A thread that found the table full tries
/// again on its next call, so it picks up a slot as soon as another thread exits.
#[cfg(feature = "std")]
#[inline]
pub(crate) fn current() -> Option<&'static Slot> {
    per_thread::MINE
        .try_with(|m| {
            if let Some(s) = m.0.get() {
                return Some(s);
            }
            let s = claim();
            m.0.set(s);
            s
        })
        .ok()
        .flatten()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::node::HASHED;
    use super::*;

    /// The parts the lock protocols write, as a waiter leaves them, are new again after a reset.
    #[test]
    fn a_reset_slot_is_new() {
        let s = Slot::new();
        s.node.next.store(3, Ordering::Relaxed);
        s.node.locked.store(1, Ordering::Relaxed);
        s.node.state.store(HASHED, Ordering::Relaxed);
        s.node.entry.store(9, Ordering::Relaxed);
        s.record.lock.store(0x1000, Ordering::Relaxed);
        s.record.want.store(7, Ordering::Relaxed);
        s.cv.next.store(2, Ordering::Relaxed);
        s.cv.state.store(3, Ordering::Relaxed);
        s.reset();
        let fields = [
            &s.node.next,
            &s.node.locked,
            &s.node.state,
            &s.node.entry,
            &s.record.want,
            &s.cv.next,
            &s.cv.state,
        ];
        for (i, f) in fields.into_iter().enumerate() {
            assert_eq!(f.load(Ordering::Relaxed), 0, "field {i}");
        }
        assert_eq!(s.record.lock.load(Ordering::Relaxed), 0);
    }
}
