//! Wait/kick backends: the paravirt hooks of the kernel's `pv_wait(ptr, val)` / `pv_kick(cpu)`.
//!
//! A lock algorithm spins for a while, then asks its backend to *wait*; whoever later changes
//! what it waits for *kicks* it. How long to spin, and when, is the lock's waiting policy, the
//! same for every backend; a backend is only how to block and wake. The contract, taken from the
//! kernel's `pv_wait`/`pv_kick`:
//!
//! * [`Backend::wait`]`(me, ptr, val)` blocks the calling thread, the owner of slot `me`, while
//!   `*ptr == val`. It may return spuriously at any time; callers re-check their condition in a
//!   loop.
//! * [`Backend::kick`]`(target)` wakes the owner of `target`. A kick that arrives *before* the
//!   target waits must be **latched**: the next `wait` of that slot returns at once. This is what
//!   makes the lock protocols free of lost wake-ups; they only ever kick after publishing the
//!   change the waiter waits for, and a waiter only waits after publishing that it is about to.
//! * [`Backend::wait_timeout`]`(me, ptr, val, timeout)` is `wait` that also returns once
//!   `timeout` has run out, for the timed lock paths; the default returns at once (the caller
//!   then polls until its deadline), so a backend need not provide it.
//! * [`Backend::current`] names the calling thread's (or CPU's) [`Slot`]: its queue node and
//!   latch, which other threads find by index.
//! * [`Backend::BLOCKING`] is `false` for a backend that never blocks ([`Spin`]); every pv branch
//!   of the algorithms is guarded by it and compiles away.
//!
//! | backend | wait | wait_timeout | kick | where |
//! |---|---|---|---|---|
//! | [`Spin`] | one `PAUSE` | one `PAUSE` | nothing | everywhere, `no_std`; the native lock |
//! | [`Futex`] | `FUTEX_WAIT` on the slot's latch word | `FUTEX_WAIT` with a relative timeout | `FUTEX_WAKE` if the waiter sleeps | Linux + `std` |
//! | [`Park`] | a `Condvar` on the slot's latch | `Condvar::wait_timeout` | `notify_one` | any `std` platform |
//! | [`Auto`] | [`Futex`] on Linux, else [`Park`] | same | same | `std` |
//!
//! # Writing a backend for an OS kernel in a guest (`no_std`)
//!
//! The kernel's own answer: wait = halt the vCPU if the value still matches (`sti; hlt`, so a
//! kick interrupt that raced ahead is still pending and ends the halt at once), kick = a hypercall
//! naming the vCPU. The slot index is the CPU number: [`Backend::current`] names this CPU's slot
//! with the `unsafe` [`slot`], whose contract the kernel keeps by construction (a CPU waits for
//! one lock at a time, with preemption off):
//!
//! ```
//! use pvlock::backend::{self, Backend, Slot};
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
//! // wait began or before it; an interrupt left pending by a kick ends the halt. Each CPU names
//! // its own slot.
//! unsafe impl Backend for Hypervisor {
//!     const BLOCKING: bool = true;
//!     fn current() -> Option<&'static Slot> {
//!         // SAFETY: the slot of the CPU we run on, used with preemption disabled (as spinlocks
//!         // are in a kernel); this kernel's locks take no slot from the thread registry.
//!         Some(unsafe { backend::slot(this_cpu()) })
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
//!
//! Without `std` there is no clock: the spin budget is a count of iterations
//! ([`tuning::set_spin_iterations`](crate::tuning::set_spin_iterations)).

pub use crate::slot::{slot, Slot};
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
/// CPUs) that can wait at the same time: the slot is the waiter's queue node.
pub unsafe trait Backend: 'static {
    /// `false` if [`wait`](Backend::wait) never blocks; the pv slow paths compile away.
    const BLOCKING: bool;

    /// The calling thread's slot, or `None` when none is free (the lock then spins without a
    /// node). With `std` the default gives each thread a slot of its own from a fixed table of
    /// 1024, claimed when it first waits and given back when it exits; without `std` the default
    /// is `None` and a backend that blocks must say which slot is this CPU's ([`slot`]).
    #[inline]
    fn current() -> Option<&'static Slot> {
        #[cfg(feature = "std")]
        return crate::slot::current();
        #[cfg(not(feature = "std"))]
        None
    }

    /// Blocks the owner of `me` while `*ptr == val` and no kick is latched in `me`; may return
    /// spuriously.
    fn wait(me: &Slot, ptr: &AtomicU32, val: u32);

    /// Wakes the owner of `target`, or latches the kick so its next wait returns at once.
    fn kick(target: &Slot);

    /// [`wait`](Backend::wait) for at most `timeout`: blocks the owner of `me` while
    /// `*ptr == val`, no kick is latched in `me` and the timeout has not run out; may return
    /// spuriously. The timed lock paths (`try_lock_for`, `Condvar::wait_for`) call it with the
    /// time left to their deadline and re-check both their condition and the clock after it
    /// returns.
    ///
    /// The default does not block: it returns at once (a spurious return, which the contract
    /// allows), so a timed waiter of a backend without a timed wait polls until its deadline.
    /// Correct for every backend; the built-in blocking backends override it with the OS's timed
    /// wait (`FUTEX_WAIT` with a timeout, `Condvar::wait_timeout`).
    #[inline]
    fn wait_timeout(me: &Slot, ptr: &AtomicU32, val: u32, timeout: core::time::Duration) {
        let _ = (me, ptr, val, timeout);
        crate::sync::spin_loop();
    }
}
