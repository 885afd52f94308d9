//! A `Queued` waiter's MCS queue node: the part of its [`Slot`](super::Slot) that the queue
//! and its pv hooks use.

use crate::sync::{AtomicU32, Ordering};

/// `state`: spinning (queued or head).
pub(crate) const RUNNING: u32 = 0;
/// `state`: a queued (non-head) waiter blocked or about to block.
pub(crate) const HALTED: u32 = 1;
/// `state`: the waiter is hashed: its wake-up comes from the unlock.
pub(crate) const HASHED: u32 = 2;

/// One waiter's queue node (the kernel's `struct pv_node`).
pub(crate) struct Node {
    /// Successor in the queue, as slot index + 1; 0 = none.
    pub(crate) next: AtomicU32,
    /// The MCS hand-off flag: set to 1 by the predecessor when this node becomes the queue head.
    pub(crate) locked: AtomicU32,
    /// pv state: [`RUNNING`], [`HALTED`], [`HASHED`].
    pub(crate) state: AtomicU32,
    /// Index + 1 of the hash entry a lock owner made for this node when it made it `HASHED`
    /// (`kick_node`); 0 until then.
    pub(crate) entry: AtomicU32,
}

impl Node {
    crate::sync::const_fn! {
        pub(crate) fn new() -> Node {
            Node {
                next: AtomicU32::new(0),
                locked: AtomicU32::new(0),
                state: AtomicU32::new(RUNNING),
                entry: AtomicU32::new(0),
            }
        }
    }

    /// The slot is given back: the next thread finds its node as new. Relaxed: the release of
    /// the slot publishes it to the next claimant.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) fn reset(&self) {
        self.next.store(0, Ordering::Relaxed);
        self.locked.store(0, Ordering::Relaxed);
        self.state.store(RUNNING, Ordering::Relaxed);
        self.entry.store(0, Ordering::Relaxed);
    }
}
