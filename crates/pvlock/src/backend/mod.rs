//! Wait/kick backends: the paravirt hooks of the kernel's `pv_wait(ptr, val)` / `pv_kick(cpu)`.
//!
//! A lock algorithm spins for a while ([`Backend::spin_start`] says how long), then asks its
//! backend to *wait*; whoever later changes what it waits for *kicks* it. The contract, taken from
//! the kernel's `pv_wait`/`pv_kick`:
//!
//! * [`Backend::wait`]`(me, ptr, val)` blocks the calling thread, the owner of slot `me`, while
//!   `*ptr == val`. It may return spuriously at any time; callers re-check their condition in a loop.
//! * [`Backend::kick`]`(target)` wakes the owner of `target`. A kick that arrives *before* the
//!   target waits must be **latched**: the next `wait` of that slot returns at once. This is what
//!   makes the lock protocols free of lost wake-ups; they only ever kick after publishing the change
//!   the waiter waits for, and a waiter only waits after publishing that it is about to.
//! * [`Backend::BLOCKING`] is `false` for a backend that never blocks ([`Spin`]); every pv branch of
//!   the algorithms is guarded by it and compiles away.
//!
//! | backend | wait | kick | where |
//! |---|---|---|---|
//! | [`Spin`] | one `PAUSE` | nothing | everywhere, `no_std`; the native lock |
//! | [`Futex`] | `FUTEX_WAIT` on the slot's latch word | `FUTEX_WAKE` if the waiter sleeps | Linux + `std` |
//! | [`Park`] | a `Condvar` on the slot's latch | `notify_one` | any `std` platform |
//! | [`Auto`] | [`Futex`] on Linux, else [`Park`], with load control | same | `std` |
//!
//! # Writing a backend for an OS kernel in a guest (`no_std`)
//!
//! The kernel's own answer: wait = halt the vCPU if the value still matches (`sti; hlt`, so a
//! kick interrupt that raced ahead is still pending and ends the halt at once), kick = a hypercall
//! naming the vCPU. The slot index is the CPU number, and [`Backend::current`] tells the lock which
//! slot is this CPU's:
//!
//! ```
//! use pvlock::backend::Backend;
//! use pvlock::registry::{self, Slot};
//! use core::sync::atomic::{AtomicU32, Ordering};
//!
//! // Stand-ins for what the guest kernel has: its CPU number, halt and the kick hypercall.
//! fn this_cpu() -> usize { 0 }
//! fn halt_if(cond: impl FnOnce() -> bool) { if cond() { /* unsafe { asm!("sti; hlt") } */ } }
//! fn hypercall_kick_cpu(_cpu: usize) { /* KVM_HC_KICK_CPU */ }
//!
//! struct Hypervisor;
//!
//! // SAFETY: `wait` returns (at the latest) once `kick` has been called for the slot after the
//! // wait began or before it; an interrupt left pending by a kick ends the halt.
//! unsafe impl Backend for Hypervisor {
//!     const BLOCKING: bool = true;
//!     fn current() -> Option<&'static Slot> {
//!         // SAFETY: the slot of the CPU we run on, used with preemption disabled (as spinlocks
//!         // are in a kernel); this kernel's locks take no slot from the thread registry.
//!         Some(unsafe { registry::slot(this_cpu()) })
//!     }
//!     fn wait(_me: &Slot, ptr: &AtomicU32, val: u32) {
//!         halt_if(|| ptr.load(Ordering::SeqCst) == val);
//!     }
//!     fn kick(target: &Slot) {
//!         hypercall_kick_cpu(target.index());
//!     }
//! }
//!
//! let lock = pvlock::queued::Queued::<Hypervisor>::new();
//! lock.lock();
//! // SAFETY: locked just above, by this thread.
//! unsafe { lock.unlock() };
//! ```

use crate::registry::Slot;
use crate::sync::AtomicU32;

mod spin;
pub use spin::Spin;

#[cfg(all(feature = "std", target_os = "linux", not(loom)))]
mod futex;
#[cfg(all(feature = "std", target_os = "linux", not(loom)))]
pub use futex::Futex;

#[cfg(feature = "std")]
pub(crate) mod park;
#[cfg(feature = "std")]
pub use park::Park;

#[cfg(feature = "std")]
mod auto;
#[cfg(all(feature = "std", not(loom)))]
pub(crate) use auto::cpus;
#[cfg(feature = "std")]
pub use auto::Auto;

/// The wait/kick hooks a lock algorithm uses on its slow path. See the [module docs](self).
///
/// # Safety
///
/// The lock algorithms rely on the latch contract for the absence of lost wake-ups: an
/// implementation must guarantee that a [`wait`](Backend::wait) of slot `s` returns if
/// [`kick`](Backend::kick)`(s)` was called after the previous `wait` of `s` returned (the kick is
/// latched), and that `wait(me, ptr, val)` returns when `*ptr != val` on entry. It may return
/// spuriously. [`current`](Backend::current) must never return the same slot to two threads (or
/// CPUs) that can wait at the same time.
pub unsafe trait Backend: 'static {
    /// `false` if [`wait`](Backend::wait) never blocks; the pv slow paths compile away.
    const BLOCKING: bool;

    /// The calling thread's slot, or `None` when none is free (the lock then spins without a node).
    /// With `std` the default takes one from the [registry](crate::registry); without `std` the
    /// default is `None` and a backend that blocks must say which slot is this CPU's.
    #[inline]
    fn current() -> Option<&'static Slot> {
        crate::registry::current()
    }

    /// A waiter starts to spin: returns how many spin iterations it may spend before it waits.
    /// The default is the process-wide [spin budget](crate::budget).
    #[inline]
    fn spin_start() -> u32 {
        crate::budget::iterations()
    }

    /// The waiter that called [`spin_start`](Backend::spin_start) stops spinning (it got what it
    /// waited for, or it is about to wait).
    #[inline]
    fn spin_end() {}

    /// `Queued`: when a new owner hands the queue to a successor that is blocked and has a
    /// waiter of its own queued behind it, wake it at once (`true`, the pre-4.2 kernel's
    /// `pv_kick_wake`: the wake-up latency overlaps the critical section) or always defer the
    /// wake-up to the unlock (`false`, the default and the kernel's `pv_kick_node`: saves a
    /// wake/sleep cycle when the lock is held long).
    const WAKE_NEXT_EARLY: bool = false;

    /// `Queued`, while the process is crowded (at least
    /// [`YIELD_WAIT_CROWDING`](crate::queued::YIELD_WAIT_CROWDING) times as many threads queued in
    /// pv locks as CPUs): the waiter next in line (behind the queue head) waits
    /// *runnable*, yielding the CPU between checks, for up to
    /// [`YIELD_WAIT_NS`](crate::queued::YIELD_WAIT_NS) before it blocks, and a new owner wakes
    /// the waiter that becomes next in line; and while no more threads wait for pvlock locks than
    /// there are CPUs, a stealer whose backoff has saturated yields the CPU between its reads of
    /// the lock (`true`). Or every non-head waiter blocks after its spin budget and stealers only
    /// spin (`false`, the default). Why: see the [`Queued` module docs](crate::queued),
    /// "Yield-wait" and "Yielding stealers". Needs `std`; without it the setting is ignored.
    const YIELD_WAIT: bool = false;

    /// Blocks the owner of `me` while `*ptr == val` and no kick is latched in `me`; may return
    /// spuriously.
    fn wait(me: &Slot, ptr: &AtomicU32, val: u32);

    /// Wakes the owner of `target`, or latches the kick so its next wait returns at once.
    fn kick(target: &Slot);
}
