//! The native backend: never blocks. With it the algorithms are the plain kernel spinlocks.

use super::Backend;
use crate::slot::Slot;
use crate::sync::{spin_loop, AtomicU32};

/// The native backend: waiting is spinning, kicking is nothing.
///
/// [`BLOCKING`](Backend::BLOCKING) is `false`, so every pv branch of the lock algorithms is
/// removed at compile time: `Queued<Spin>` is the kernel's native qspinlock, `Ticket<Spin>` a
/// plain ticket lock. Use it only where every waiting thread has a CPU of its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spin;

// SAFETY: `wait` returns after one spin hint, which satisfies the contract trivially (every
// return may be spurious), so kicks need no latching.
unsafe impl Backend for Spin {
    const BLOCKING: bool = false;

    #[inline(always)]
    fn wait(_me: &Slot, _ptr: &AtomicU32, _val: u32) {
        spin_loop();
    }

    #[inline(always)]
    fn kick(_target: &Slot) {}
}
