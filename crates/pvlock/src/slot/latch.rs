//! A waiter's wake-up latch: the part of its [`Slot`](super::Slot) that the built-in
//! backends block on and kick. (The types only: how each backend uses its latch is in its module.)

use crate::sync::AtomicU32;

#[cfg(all(feature = "std", loom))]
use loom::sync::{Condvar, Mutex};
#[cfg(all(feature = "std", not(loom)))]
use std::sync::{Condvar, Mutex};

/// The latches of the built-in backends (a waiter uses the one of its lock's backend).
pub(crate) struct Latch {
    /// The futex word ([`Futex`](crate::backend::Futex)): `EMPTY`, `NOTIFIED` or `PARKED`.
    #[cfg_attr(
        not(all(feature = "std", target_os = "linux", not(loom))),
        allow(dead_code)
    )]
    pub(crate) futex: AtomicU32,
    /// A token and a condition variable ([`Park`](crate::backend::Park)).
    #[cfg(feature = "std")]
    pub(crate) park: ParkLatch,
}

impl Latch {
    crate::sync::const_fn! {
        pub(crate) fn new() -> Latch {
            Latch {
                futex: AtomicU32::new(0),
                #[cfg(feature = "std")]
                park: ParkLatch::new(),
            }
        }
    }
}

/// The latch of [`Park`](crate::backend::Park): a token under a mutex, and a condition variable to sleep
/// on until it is set.
#[cfg(feature = "std")]
pub(crate) struct ParkLatch {
    pub(crate) token: Mutex<bool>,
    pub(crate) cvar: Condvar,
}

#[cfg(feature = "std")]
impl ParkLatch {
    crate::sync::const_fn! {
        pub(crate) fn new() -> ParkLatch {
            ParkLatch { token: Mutex::new(false), cvar: Condvar::new() }
        }
    }
}
