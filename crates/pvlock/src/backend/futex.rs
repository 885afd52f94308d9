//! Linux futex backend: one futex word per waiter slot, the latch of `std`'s futex thread parker.
//!
//! Latch word states (the slot's `latch.futex`):
//!
//! ```text
//!   EMPTY ──wait──▶ PARKED ──kick──▶ NOTIFIED ──wait returns──▶ EMPTY
//!   EMPTY ──kick──▶ NOTIFIED        (latched: the next wait returns at once)
//! ```
//!
//! `wait` decrements the word: from `NOTIFIED` (1) that consumes the token and returns, from
//! `EMPTY` (0) it becomes `PARKED` (-1) and the thread sleeps in `FUTEX_WAIT` while it stays
//! `PARKED`. `kick` swaps in `NOTIFIED` and issues `FUTEX_WAKE` only if the waiter was `PARKED`,
//! so a kick of a thread that has not gone to sleep costs no system call.

use super::Backend;
use crate::slot::Slot;
use crate::sync::{AtomicU32, Ordering};

const EMPTY: u32 = 0;
const NOTIFIED: u32 = 1;
const PARKED: u32 = u32::MAX;

/// Blocks on a per-waiter futex word (Linux only). A kick before the wait is latched.
#[derive(Debug, Clone, Copy, Default)]
pub struct Futex;

// SAFETY: the latch protocol above: a kick stores NOTIFIED before waking, `wait` consumes it
// before or after sleeping, so a kick is never lost; `wait` checks `*ptr == val` first.
unsafe impl Backend for Futex {
    const BLOCKING: bool = true;

    fn wait(me: &Slot, ptr: &AtomicU32, val: u32) {
        futex_wait(me, ptr, val)
    }

    fn kick(target: &Slot) {
        futex_kick(target)
    }

    fn wait_timeout(me: &Slot, ptr: &AtomicU32, val: u32, timeout: core::time::Duration) {
        futex_wait_timeout(me, ptr, val, Some(timeout))
    }
}

#[inline]
pub(crate) fn futex_wait(me: &Slot, ptr: &AtomicU32, val: u32) {
    futex_wait_timeout(me, ptr, val, None)
}

/// `timeout` as the relative `timespec` of `FUTEX_WAIT` (saturating at the largest `time_t`).
fn timespec(timeout: core::time::Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 10^9: fits every `c_long`.
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    }
}

/// The futex wait, with a relative timeout (`None`: none). A timeout ends the sleep as a kick
/// would; the latch is reset the same way (module docs).
#[inline]
pub(crate) fn futex_wait_timeout(
    me: &Slot,
    ptr: &AtomicU32,
    val: u32,
    timeout: Option<core::time::Duration>,
) {
    // SeqCst: this load is the re-check after the caller published "I am about to wait"; it must
    // not be reordered before that publication (the kernel's "full barrier, then re-check").
    if ptr.load(Ordering::SeqCst) != val {
        return;
    }
    // Acquire on consuming the token: the kicker's writes before its kick are visible to us.
    if me.latch.futex.fetch_sub(1, Ordering::Acquire) == NOTIFIED {
        return; // consumed a latched kick; the word is EMPTY again
    }
    // Now PARKED. Sleep until the word changes (a kick), the timeout runs out, or spuriously.
    let ts = timeout.map(timespec);
    let ts_ptr = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT only reads the 4-byte aligned word at a valid address (the slot lives in
    // a static table and is never freed) and the timespec, which lives on our stack until the
    // call returns (or is null: no timeout).
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            me.latch.futex.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            PARKED,
            ts_ptr,
        );
    }
    // Whatever woke us (a kick, the timeout, a signal, a spurious wake-up), reset the latch to
    // EMPTY; if it was NOTIFIED we consumed the kick, otherwise this is a spurious return, which
    // the contract allows.
    me.latch.futex.swap(EMPTY, Ordering::Acquire);
}

#[inline]
pub(crate) fn futex_kick(target: &Slot) {
    // Release: the change the waiter waits for (written before this kick) is visible to it once
    // it sees NOTIFIED.
    if target.latch.futex.swap(NOTIFIED, Ordering::Release) == PARKED {
        // SAFETY: FUTEX_WAKE on a valid, aligned word in the static slot table.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                target.latch.futex.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                1,
            );
        }
    }
}
