//! The lock-to-waiter hash table of the pv slow path (the kernel's `pv_hash`/`pv_unhash`,
//! kernel/locking/qspinlock_paravirt.h).
//!
//! When the queue head of a [`Queued`](super::Queued) lock is about to block, it (or the lock
//! owner on its behalf, in `kick_node`) records `(lock address, head's slot)` here and then marks
//! the lock `SLOW`. An unlock that finds `SLOW` looks the lock up, removes the entry and kicks the
//! slot. The lock word itself has no room for a pointer, hence the table.
//!
//! * Open addressing, linear probing from a Fibonacci hash of the lock address; the probe starts
//!   at the first entry of the cache line the hash falls in, as in the kernel, so that most
//!   look-ups touch one line. [`hash`] claims an empty entry with a CAS `0 -> address` and then
//!   writes the slot index; [`unhash`] finds the address, reads the slot, clears the address.
//! * [`SIZE`] is a power of two of at least `4 * MAX_SLOTS` entries (the kernel: 4 per CPU).
//!
//! # Why it is never full and never misses (the kernel's two `BUG()`s)
//!
//! * **Never full.** An entry exists only while its lock's locked byte is `SLOW` (or `UNLOCKING`,
//!   the owner's unlock removing it), and a lock has
//!   at most one entry: it is made either by the queue head for itself, or by the owner for its
//!   successor in `kick_node`, never both (they race on the successor's `state` with one CAS, and
//!   only the side that moves it to `HASHED` hashes), and the owner removes the entry *before* it
//!   releases the lock, so the next head cannot add a second one. The slot named by an entry is the
//!   head of that lock's queue, and a slot heads at most one queue (a thread waits for one lock at
//!   a time), so at most `MAX_SLOTS` entries are live: the table is at most a quarter full.
//! * **Never misses.** An unlock reaches [`unhash`] only after it saw `SLOW`, and `SLOW` is only
//!   ever set after the entry was written (by the same thread, or by one whose `SLOW`-setting RMW
//!   released the entry to the unlocker's acquire fence); only the owner clears the byte (`SLOW`
//!   -> `UNLOCKING` -> 0), after removing the entry. So the entry is there and visible.
//!
//! Both are invariants of the protocol; if one were ever broken we do not panic in a release build
//! (a lock must not bring the process down): `debug_assert!`, then yield and probe again.

use crate::slot::{self, Slot, MAX_SLOTS};
use crate::stats::{count_n, Event};
use crate::sync::{AtomicU32, AtomicUsize, Ordering};

/// Number of entries: a power of two, at least four per waiter slot.
pub(super) const SIZE: usize = (4 * MAX_SLOTS).next_power_of_two();
const BITS: u32 = SIZE.trailing_zeros();
const MASK: usize = SIZE - 1;
/// Entries per 64-byte cache line (the probe starts at a line boundary).
const PER_LINE: usize = {
    let n = 64 / core::mem::size_of::<Entry>();
    if n == 0 {
        1
    } else {
        n
    }
};

const _: () = assert!(SIZE >= 4 * MAX_SLOTS && SIZE.is_power_of_two());
const _: () = assert!(PER_LINE.is_power_of_two() && PER_LINE <= SIZE);

/// One `(lock, node)` pair; `lock == 0` means empty.
struct Entry {
    lock: AtomicUsize,
    /// Slot index of the blocked queue head.
    node: AtomicU32,
}

impl Entry {
    crate::sync::const_fn! {
        fn new() -> Entry {
            Entry { lock: AtomicUsize::new(0), node: AtomicU32::new(0) }
        }
    }
}

crate::sync::static_cells! {
    fn table() -> [Entry; SIZE] = Entry::new();
}

/// Fibonacci hashing of the lock address into `BITS` bits, rounded down to a line boundary.
#[inline(always)]
fn start(lock: usize) -> usize {
    let h = (lock as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - BITS);
    (h as usize) & !(PER_LINE - 1)
}

/// The "impossible" case: yield (without `std`, spin once) and let the caller probe again.
#[cold]
fn backoff() {
    crate::sync::yield_now();
}

/// Records `(lock, node)`; returns the entry's index (for [`clear`]).
///
/// The caller publishes the entry with the release RMW that sets `SLOW` afterwards (or is the
/// thread that will unhash it).
pub(super) fn hash(lock: usize, node: &Slot) -> usize {
    debug_assert_ne!(lock, 0);
    let t = table();
    let first = start(lock);
    loop {
        for hops in 0..SIZE {
            let i = (first + hops) & MASK;
            let e = &t[i];
            // The Relaxed load only avoids a write to occupied entries; the CAS decides.
            // Acquire on the CAS: pairs with the Release clear in `unhash`/`clear`, so the previous
            // occupant's read of `node` happens before our write of it below.
            if e.lock.load(Ordering::Relaxed) == 0
                && e.lock
                    .compare_exchange(0, lock, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // Relaxed: published by the caller's SLOW-setting release RMW (see above).
                e.node.store(node.index() as u32, Ordering::Relaxed);
                count_n(Event::PvHashHops, hops as u64);
                return i;
            }
        }
        debug_assert!(
            false,
            "pvlock: queued hash table full (protocol invariant broken)"
        );
        backoff();
    }
}

/// Removes the entry of `lock` and returns its node. The caller saw `SLOW` and issued an acquire
/// fence, which makes the entry visible.
pub(super) fn unhash(lock: usize) -> &'static Slot {
    let t = table();
    let first = start(lock);
    loop {
        for hops in 0..SIZE {
            let e = &t[(first + hops) & MASK];
            // Relaxed: the entry was made visible by the caller's acquire fence; an older entry
            // of this address was cleared before the lock was last released to us (coherence).
            if e.lock.load(Ordering::Relaxed) == lock {
                let node = e.node.load(Ordering::Relaxed);
                // Release: our read of `node` happens before the next claimant writes it.
                e.lock.store(0, Ordering::Release);
                return slot::slot_at(node as usize);
            }
        }
        debug_assert!(false, "pvlock: queued lock SLOW without a hash entry");
        backoff();
    }
}

/// Clears entry `index` (returned by [`hash`]) without a look-up: the head that hashed itself
/// and then found the lock free removes its own entry.
pub(super) fn clear(index: usize) {
    // Release: as in `unhash`.
    table()[index].lock.store(0, Ordering::Release);
}

/// Whether entry `index` (returned by [`hash`]) still records `(lock, node)`: `false` once the
/// unlock that kicks `node` has removed it.
///
/// Exact for the head of `lock`'s queue asking about its own entry: nobody else makes an entry
/// naming the head while it is head (an owner hashes only its successor, in `kick_node`), so an
/// index that names another lock or node has been removed (and perhaps reused).
pub(super) fn holds(index: usize, lock: usize, node: &Slot) -> bool {
    let e = &table()[index];
    // Acquire: pairs with the Release clear in `unhash`, so a head that sees its entry gone also
    // sees the unlock's `SLOW -> UNLOCKING` (sequenced before that clear) on the lock word.
    e.lock.load(Ordering::Acquire) == lock && e.node.load(Ordering::Relaxed) == node.index() as u32
}

/// Whether an entry for `lock` exists now (tests and assertions).
#[cfg(test)]
pub(super) fn contains(lock: usize) -> bool {
    table()
        .iter()
        .any(|e| e.lock.load(Ordering::Acquire) == lock)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    // Odd "addresses": never those of a real (4-byte aligned) lock, so these tests cannot collide
    // with locks used by tests running in parallel.
    const A: usize = 0x1001;
    const B: usize = 0x1003;

    #[test]
    fn size_and_start() {
        assert_eq!(start(A) % PER_LINE, 0);
        assert!(start(usize::MAX) < SIZE);
    }

    #[test]
    fn hash_unhash_round_trip() {
        let s1 = slot::slot_at(1);
        let s2 = slot::slot_at(2);
        let i = hash(A, s1);
        let j = hash(B, s2);
        assert_ne!(i, j);
        assert!(contains(A) && contains(B));
        assert_eq!(unhash(B).index(), 2);
        assert!(!contains(B));
        assert_eq!(unhash(A).index(), 1);
        assert!(!contains(A));
    }

    #[test]
    fn colliding_addresses_probe_linearly() {
        // Fill a whole line's worth of entries for addresses that all start at the same line,
        // then look them up in a different order.
        let addrs: std::vec::Vec<usize> = (0..4096usize)
            .map(|k| 0x4001 + 2 * k)
            .filter(|&a| start(a) == start(0x4001))
            .take(PER_LINE + 2)
            .collect();
        assert!(addrs.len() >= 2);
        for (n, &a) in addrs.iter().enumerate() {
            hash(a, slot::slot_at(n));
        }
        for (n, &a) in addrs.iter().enumerate().rev() {
            assert_eq!(unhash(a).index(), n);
        }
        for &a in &addrs {
            assert!(!contains(a));
        }
        let i = hash(A, slot::slot_at(7));
        clear(i);
        assert!(!contains(A));
    }
}
