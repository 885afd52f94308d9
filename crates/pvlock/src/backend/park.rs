//! Portable backend: a token and a condition variable per waiter slot (any `std` platform).
//!
//! The latch is a `bool` token under a mutex: `kick` sets it and notifies, `wait` sleeps until it
//! is set and clears it. A kick before the wait leaves the token set, so that wait returns at
//! once. Under loom the mutex and condition variable are loom's, which makes this the backend the
//! loom models of the lock protocols run with.

use super::Backend;
use crate::slot::Slot;
use crate::sync::{AtomicU32, Ordering};

/// Blocks on a mutex + condition variable per waiter slot: portable, a little slower than
/// [`Futex`](super::Futex) on Linux. A kick before the wait is latched.
#[derive(Debug, Clone, Copy, Default)]
pub struct Park;

// SAFETY: `kick` sets the token under the mutex and `wait` only sleeps while the token is clear,
// checking it under the same mutex, so a kick is never lost; `wait` checks `*ptr == val` first.
unsafe impl Backend for Park {
    const BLOCKING: bool = true;

    fn wait(me: &Slot, ptr: &AtomicU32, val: u32) {
        park_wait(me, ptr, val)
    }

    fn kick(target: &Slot) {
        park_kick(target)
    }

    fn wait_timeout(me: &Slot, ptr: &AtomicU32, val: u32, timeout: core::time::Duration) {
        park_wait_timeout(me, ptr, val, timeout)
    }
}

pub(crate) fn park_wait(me: &Slot, ptr: &AtomicU32, val: u32) {
    // SeqCst: the re-check after the caller's publication (see the futex backend).
    if ptr.load(Ordering::SeqCst) != val {
        return;
    }
    // A poisoned latch only means a panic elsewhere while holding this tiny mutex; the bool is
    // still meaningful, so recover it.
    let mut token = me
        .latch
        .park
        .token
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    while !*token {
        token = me
            .latch
            .park
            .cvar
            .wait(token)
            .unwrap_or_else(|e| e.into_inner());
    }
    *token = false;
}

/// [`park_wait`] for at most `timeout`; the token is consumed if it is set when the wait ends.
#[cfg(not(loom))]
pub(crate) fn park_wait_timeout(
    me: &Slot,
    ptr: &AtomicU32,
    val: u32,
    timeout: core::time::Duration,
) {
    // SeqCst: the re-check after the caller's publication (see the futex backend).
    if ptr.load(Ordering::SeqCst) != val {
        return;
    }
    let end = std::time::Instant::now().checked_add(timeout);
    let mut token = me
        .latch
        .park
        .token
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    while !*token {
        let left = match end {
            Some(end) => end.saturating_duration_since(std::time::Instant::now()),
            None => timeout, // a timeout beyond the clock's range: wait in its slices
        };
        if left.is_zero() {
            return;
        }
        token = me
            .latch
            .park
            .cvar
            .wait_timeout(token, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    *token = false;
}

/// Under loom there is no clock: a timed wait is an untimed one (the models' deadlines run out
/// by counting checks, `crate::sync::Deadline`), so a waiter that the protocol forgot to kick
/// deadlocks the model instead of timing out.
#[cfg(loom)]
pub(crate) fn park_wait_timeout(
    me: &Slot,
    ptr: &AtomicU32,
    val: u32,
    _timeout: core::time::Duration,
) {
    park_wait(me, ptr, val)
}

pub(crate) fn park_kick(target: &Slot) {
    let mut token = target
        .latch
        .park
        .token
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    *token = true;
    drop(token);
    target.latch.park.cvar.notify_one();
}
