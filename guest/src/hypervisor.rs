//! `Hypervisor`: the guest kernel's pvlock backend. `wait` re-checks the value and halts the
//! vCPU (a VM exit the VMM blocks until a kick), `kick` names the vCPU to wake (a VM exit the VMM
//! turns into a wake-up, latched if the target has not halted yet), and a vCPU's waiter slot is
//! the one with its index, as the kernel's per-CPU nodes are.

use crate::rt;
use core::sync::atomic::{AtomicU32, Ordering};
use pvlock::backend::{self, Backend, Slot};

/// Wait = the halt exit, kick = the kick exit, slot = vCPU index.
pub struct Hypervisor;

// SAFETY: the VMM latches a kick that arrives before the halt (its per-vCPU `kicked` flag, like
// KVM's `pv_unhalted`), so a `wait` of slot `s` returns if `kick(s)` came after the previous wait
// returned; `wait` returns at once when `*ptr != val`. Slot `i` is used only by vCPU `i`, and a
// vCPU waits for one lock at a time.
unsafe impl Backend for Hypervisor {
    const BLOCKING: bool = true;

    #[inline]
    fn current() -> Option<&'static Slot> {
        // SAFETY: slot i is vCPU i's and nobody else's (no lock here takes a slot from the
        // thread registry: the guest has no `std`); a vCPU runs one thread of the guest, which
        // waits for one lock at a time.
        Some(unsafe { backend::slot(rt::cpu()) })
    }

    #[inline]
    fn wait(_me: &Slot, ptr: &AtomicU32, val: u32) {
        // SeqCst: the re-check is ordered after the caller's published state (its own fence).
        if ptr.load(Ordering::SeqCst) == val {
            rt::halt();
        }
    }

    #[inline]
    fn kick(target: &Slot) {
        rt::kick(target.index());
    }
}
