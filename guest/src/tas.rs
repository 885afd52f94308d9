//! The kernel's `virt_spin_lock`: the unfair test-and-test-and-set lock a Linux guest uses
//! instead of the queued spinlock when the hypervisor offers no PV_UNHALT (no halt/kick): spin
//! while the word is non-zero, then try a `cmpxchg 0 -> 1`. It never halts.

use core::sync::atomic::{AtomicU32, Ordering};

/// Test-and-test-and-set on one word.
pub struct Tas(AtomicU32);

// SAFETY: `lock` returns only after its CAS moved the word 0 -> 1 and `unlock` stores 0, so at
// most one holder exists; Acquire/Release order the critical sections.
unsafe impl lock_api::RawMutex for Tas {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Tas = Tas(AtomicU32::new(0));
    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock(&self) {
        loop {
            if self.0.load(Ordering::Relaxed) == 0
                && self
                    .0
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            core::hint::spin_loop();
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.0
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    unsafe fn unlock(&self) {
        self.0.store(0, Ordering::Release);
    }
}
