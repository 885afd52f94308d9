//! Waiter slots: the user-space analogue of the kernel's per-CPU data.
//!
//! Every thread that has to wait for a pvlock lock needs a little state that *other* threads can
//! find: its MCS queue node (for [`Queued`](crate::queued)), the lock and ticket it is blocked on
//! (for the pv [`Ticket`](crate::ticket) and [`Byte`](crate::byte) locks, whose unlock scans for
//! the waiter to kick), and its wake-up latch (for the [backends](crate::backend)). The kernel keeps
//! these per CPU; a user-space thread cannot be pinned to a CPU, so pvlock keeps them per *thread*,
//! in a fixed, pre-allocated table of [`MAX_SLOTS`] cache-line-aligned [`Slot`]s.
//!
//! * A thread claims a slot the first time it has to wait (never on the fast path), keeps it while
//!   it lives and gives it back when it exits, so slots are recycled.
//! * The slot's index + 1 is the `tail` of a [`Queued`](crate::queued) lock word.
//! * When every slot is taken, [`current`] returns `None` and the locks fall back to spinning
//!   without a node (the kernel's `lock_no_node` case): correct, slower, never a panic.
//!   [`set_max_slots`] lowers the limit, e.g. to test that path.
//! * Slots are never freed, so a kick that races with a thread's exit touches valid memory; at
//!   worst it leaves a stale token in the latch, which the next owner sees as a spurious wake-up
//!   (the [`Backend`](crate::backend::Backend) contract allows those).
//!
//! Without the `std` feature there are no thread-locals: a `no_std` user supplies the slot of the
//! current CPU through [`Backend::current`](crate::backend::Backend::current), using [`slot`].
//!
//! A slot is its thread's identity while the thread lives: if two threads used one slot, both
//! could be handed the same queue position and enter a critical section together. So claiming
//! and giving back slots is the registry's own business, and safe code cannot do either:
//!
//! ```compile_fail,E0603
//! let mine = pvlock::registry::claim();
//! ```
//!
//! ```compile_fail,E0603
//! // Giving a slot back while its thread may still wait with it: not possible from outside.
//! pvlock::registry::release(pvlock::registry::current().unwrap());
//! ```

use crate::sync::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// How many slots the table holds: the most threads that can wait with a node at once.
///
/// The `Queued` tail field has room for 65 535; 1024 keeps the table at 128 KiB of zero pages.
#[cfg(not(loom))]
pub const MAX_SLOTS: usize = 1024;
/// How many slots the table holds (small under loom, to keep the models small).
#[cfg(loom)]
pub const MAX_SLOTS: usize = 8;

const WORDS: usize = MAX_SLOTS.div_ceil(64);

/// Per-waiter state shared by all lock algorithms and backends. One cache line pair each, so a
/// waiter spinning on its own slot never shares a line with the lock word or another waiter.
#[repr(align(128))]
pub struct Slot {
    // ---- MCS queue node (queued.rs) ----
    /// Successor in the MCS queue, as slot index + 1; 0 = none.
    pub(crate) next: AtomicU32,
    /// MCS hand-off flag: set to 1 by the predecessor when this node becomes the queue head.
    pub(crate) locked: AtomicU32,
    /// pv node state (`RUNNING`, `HALTED`, `HASHED`; see queued.rs).
    pub(crate) state: AtomicU32,
    /// Index of the hash entry a lock owner made for this node when it made it `HASHED`
    /// (queued.rs, `kick_node`); written before that release CAS.
    pub(crate) entry: AtomicU32,
    /// Steals past queued waiters left in this thread's steal budget (steal.rs). Only its own
    /// thread touches it.
    pub(crate) steals: AtomicU32,
    /// Steals this thread used in its finished runs, on the scale of [`crate::steal`]'s
    /// process-wide average (fair share accounting). Only its own thread writes it.
    #[cfg_attr(not(all(feature = "std", not(loom))), allow(dead_code))]
    pub(crate) used: AtomicU64,
    /// `steals` when the current run began (its last queue pass or last join).
    pub(crate) run_base: AtomicU32,
    /// 1 while `used` is counted in the process-wide sum (steal.rs).
    #[cfg_attr(not(all(feature = "std", not(loom))), allow(dead_code))]
    pub(crate) counted: AtomicU32,
    // ---- blocked-on record (ticket.rs, byte.rs) ----
    /// Address of the lock this waiter is blocked on, 0 = none.
    pub(crate) lock: AtomicUsize,
    /// Ticket this waiter waits for (ticket.rs).
    pub(crate) want: AtomicU32,
    // ---- wake-up latch (backends) ----
    /// Futex latch word (backend/futex.rs): `EMPTY`, `NOTIFIED` or `PARKED`.
    #[cfg_attr(
        not(all(feature = "std", target_os = "linux", not(loom))),
        allow(dead_code)
    )]
    pub(crate) futex: AtomicU32,
    /// Portable latch (backend/park.rs): a token and a condition variable.
    #[cfg(feature = "std")]
    pub(crate) park: crate::backend::park::Latch,
}

impl Slot {
    crate::sync::const_fn! {
        pub(crate) fn new() -> Slot {
            Slot {
                next: AtomicU32::new(0),
                locked: AtomicU32::new(0),
                state: AtomicU32::new(0),
                entry: AtomicU32::new(0),
                steals: AtomicU32::new(0),
                used: AtomicU64::new(0),
                run_base: AtomicU32::new(0),
                counted: AtomicU32::new(0),
                lock: AtomicUsize::new(0),
                want: AtomicU32::new(0),
                futex: AtomicU32::new(0),
                #[cfg(feature = "std")]
                park: crate::backend::park::Latch::new(),
            }
        }
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

#[cfg(not(loom))]
static TABLE: [Slot; MAX_SLOTS] = [const { Slot::new() }; MAX_SLOTS];

#[cfg(not(loom))]
#[inline]
fn table() -> &'static [Slot] {
    &TABLE
}

#[cfg(loom)]
loom::lazy_static! {
    static ref TABLE: std::vec::Vec<Slot> = (0..MAX_SLOTS).map(|_| Slot::new()).collect();
}
#[cfg(loom)]
fn table() -> &'static [Slot] {
    &TABLE
}

/// Bitmap of claimed slots.
struct Claims {
    words: [AtomicU64; WORDS],
    /// One past the highest index ever claimed: the unlock scans of ticket.rs/byte.rs stop here.
    high_water: AtomicUsize,
    /// Slots beyond this index are never handed out (see [`set_max_slots`]).
    limit: AtomicUsize,
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
                limit: AtomicUsize::new(MAX_SLOTS),
            }
        }
    }
}

#[cfg(not(loom))]
static CLAIMS: Claims = Claims::new();
#[cfg(not(loom))]
fn claims() -> &'static Claims {
    &CLAIMS
}
#[cfg(loom)]
loom::lazy_static! {
    static ref CLAIMS: Claims = Claims::new();
}
#[cfg(loom)]
fn claims() -> &'static Claims {
    &CLAIMS
}

/// The slot with this index (crate-internal: a tail code or a scan names a slot by index).
///
/// # Panics
/// If `index >= MAX_SLOTS`.
#[inline]
pub(crate) fn slot_at(index: usize) -> &'static Slot {
    &table()[index]
}

/// The slot with this index, for a `no_std` backend whose
/// [`Backend::current`](crate::backend::Backend::current) names the slot of the CPU it runs on
/// (the kernel's per-CPU node).
///
/// A slot is a waiter's identity: its MCS queue node, the record of the lock it is blocked on,
/// its wake-up latch. Two threads that both use one slot as their own corrupt the queue and can
/// both enter the critical section; hence `unsafe`. Safe code only ever gets its own slot, from
/// [`Backend::current`](crate::backend::Backend::current).
///
/// ```compile_fail,E0133
/// // A slot by index is not for safe code: this does not compile.
/// let s = pvlock::registry::slot(0);
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
/// If `index >= MAX_SLOTS`.
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

/// One past the highest slot index that has ever been claimed: scans of waiters stop here.
#[inline]
pub fn high_water() -> usize {
    // Acquire pairs with the Release in `claim`. A scanner relies on the waiter's own SeqCst
    // registration (not on this) to see the slot's fields; this only bounds the scan.
    claims().high_water.load(Ordering::Acquire)
}

/// Limits the slots handed out from now on to the first `n` (at most [`MAX_SLOTS`]); returns the
/// limit in force. Slots already claimed stay with their threads. Threads that find no slot take
/// the lock without a node (the kernel's `lock_no_node` path).
pub fn set_max_slots(n: usize) -> usize {
    let n = n.min(MAX_SLOTS);
    claims().limit.store(n, Ordering::Relaxed);
    n
}

/// Claims a free slot, or `None` when all of them (up to the limit) are taken. Crate-internal:
/// a claimed slot is the claimer's identity until [`release`].
#[cfg(feature = "std")]
pub(crate) fn claim() -> Option<&'static Slot> {
    let c = claims();
    let limit = c.limit.load(Ordering::Relaxed);
    for (w, word) in c.words.iter().enumerate() {
        let mut bits = word.load(Ordering::Relaxed);
        loop {
            let free = !bits;
            if free == 0 {
                break;
            }
            let bit = free.trailing_zeros() as usize;
            let index = w * 64 + bit;
            if index >= limit {
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

/// Gives a slot back. Crate-internal: the caller (the thread-local owner at thread exit, or a
/// loom model) must not use it afterwards, since the next claimant owns it.
#[cfg(feature = "std")]
// Under loom only the models give slots back (thread-local destructors do not).
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn release(s: &'static Slot) {
    let index = s.index();
    crate::steal::forget(s);
    // The next claimant starts with an empty steal budget, as a fresh slot does (steal.rs).
    s.steals.store(0, Ordering::Relaxed);
    s.lock.store(0, Ordering::Relaxed);
    s.next.store(0, Ordering::Relaxed);
    s.locked.store(0, Ordering::Relaxed);
    s.state.store(0, Ordering::Relaxed);
    // Release: the resets above happen before the next claimant's Acquire.
    claims().words[index / 64].fetch_and(!(1 << (index % 64)), Ordering::Release);
}

/// How many slots are claimed now (threads alive that have waited for a pvlock lock).
pub fn claimed() -> usize {
    // Only the words below the high-water mark can have bits set: one word for up to 64 threads.
    let words = high_water().div_ceil(64);
    claims().words[..words]
        .iter()
        .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
        .sum()
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
    std::thread_local! {
        pub(super) static MINE: Owned = const { Owned(Cell::new(None)) };
    }
    #[cfg(loom)]
    loom::thread_local! {
        pub(super) static MINE: Owned = Owned(Cell::new(None));
    }
}

/// The calling thread's slot, claimed on first use and kept until the thread exits; `None` when
/// the table is full (or the thread is being torn down).
///
/// A thread that found the table full tries again on its next call, so it picks up a slot as
/// soon as another thread exits.
#[cfg(feature = "std")]
#[inline]
pub fn current() -> Option<&'static Slot> {
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

/// Without `std` there is no thread-local storage: the backend names the current slot.
#[cfg(not(feature = "std"))]
#[inline]
pub fn current() -> Option<&'static Slot> {
    None
}
