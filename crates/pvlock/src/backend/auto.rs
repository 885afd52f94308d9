//! The `Auto` backend: the best way to block on this platform.

use super::Backend;
use crate::slot::Slot;
use crate::sync::AtomicU32;

/// `Auto`: the backend to take without thinking. Blocks like [`Futex`](super::Futex) on Linux and
/// like [`Park`](super::Park) elsewhere.
///
/// How long a waiter spins before it blocks, whether it yields, how often it may steal: that is
/// the waiting policy, the same for every blocking backend, and it adapts to the load (how many
/// threads wait against how many CPUs the process may use, cgroup quota included): with threads
/// <= CPUs a waiter spins like the native spinlock; with more, queued waiters block at once and
/// the machine keeps doing useful work (the crate docs, "Tuning").
#[derive(Debug, Clone, Copy, Default)]
pub struct Auto;

// SAFETY: `wait` and `kick` are those of Futex (Linux) or Park, which keep the latch contract.
unsafe impl Backend for Auto {
    const BLOCKING: bool = true;

    #[inline]
    fn wait(me: &Slot, ptr: &AtomicU32, val: u32) {
        #[cfg(all(target_os = "linux", not(loom)))]
        super::futex::futex_wait(me, ptr, val);
        #[cfg(not(all(target_os = "linux", not(loom))))]
        super::park::park_wait(me, ptr, val);
    }

    #[inline]
    fn wait_timeout(me: &Slot, ptr: &AtomicU32, val: u32, timeout: core::time::Duration) {
        #[cfg(all(target_os = "linux", not(loom)))]
        super::futex::futex_wait_timeout(me, ptr, val, Some(timeout));
        #[cfg(not(all(target_os = "linux", not(loom))))]
        super::park::park_wait_timeout(me, ptr, val, timeout);
    }

    #[inline]
    fn kick(target: &Slot) {
        #[cfg(all(target_os = "linux", not(loom)))]
        super::futex::futex_kick(target);
        #[cfg(not(all(target_os = "linux", not(loom))))]
        super::park::park_kick(target);
    }
}
