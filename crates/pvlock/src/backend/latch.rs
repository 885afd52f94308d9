//! A waiter's wake-up latch: the part of its [`Slot`](crate::slot::Slot) that the built-in
//! backends block on and kick.

use crate::sync::AtomicU32;

/// The latches of the built-in backends (a waiter uses the one of its lock's backend).
pub(crate) struct Latch {
    /// The futex word ([`Futex`](super::Futex)): `EMPTY`, `NOTIFIED` or `PARKED`.
    #[cfg_attr(
        not(all(feature = "std", target_os = "linux", not(loom))),
        allow(dead_code)
    )]
    pub(crate) futex: AtomicU32,
    /// A token and a condition variable ([`Park`](super::Park)).
    #[cfg(feature = "std")]
    pub(crate) park: super::park::Latch,
}

impl Latch {
    crate::sync::const_fn! {
        pub(crate) fn new() -> Latch {
            Latch {
                futex: AtomicU32::new(0),
                #[cfg(feature = "std")]
                park: super::park::Latch::new(),
            }
        }
    }
}
