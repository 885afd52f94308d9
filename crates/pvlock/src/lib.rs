//! # pvlock: spinlocks that stay fast when CPUs are overcommitted
//!
//! A spinlock assumes the thread that holds it is running. Under a hypervisor, or whenever
//! runnable threads outnumber CPUs, that is false: the holder (or the next waiter of a FIFO lock)
//! is preempted and everyone else spins through whole timeslices. The Linux kernel met this as
//! *lock-holder preemption* in virtual machines and answered it in three generations of paravirtual
//! spinlocks; pvlock brings all three to Rust, on one 32-bit word each, with the kernel's two hooks
//! (`wait`, `kick`) as a pluggable [`Backend`](backend::Backend):
//!
//! | module | algorithm | from |
//! |---|---|---|
//! | [`ticket`] | FIFO ticket lock; pv slow path: flag the lock, block, unlock kicks the next ticket | pv ticketlocks (Linux 3.12) |
//! | [`byte`] | test-and-set byte + spinner count; spin, then register and block; unlock kicks one | the Xen byte lock (2008) |
//! | [`queued`] | qspinlock (locked, pending, tail) + MCS nodes + the full pvqspinlock slow path | pvqspinlock (Linux 4.2) |
//!
//! | backend | what `wait` does |
//! |---|---|
//! | [`Spin`](backend::Spin) | spins: the native lock, every pv branch compiled away |
//! | [`Futex`](backend::Futex) | Linux futex on a per-waiter word |
//! | [`Park`](backend::Park) | portable: mutex + condition variable per waiter |
//! | [`Auto`](backend::Auto) | futex/park with load control: at most CPUs-1 waiters spin |
//!
//! ## Use
//!
//! ```
//! let counter = pvlock::Mutex::new(0u64);
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| {
//!             for _ in 0..1000 {
//!                 *counter.lock() += 1;
//!             }
//!         });
//!     }
//! });
//! assert_eq!(*counter.lock(), 4000);
//! ```
//!
//! [`Mutex`] is a [`lock_api::Mutex`] over [`RawMutex`] (`Queued<Auto>`), so guards, mapped guards
//! and `try_lock` work as with `parking_lot`. To pick an algorithm and backend explicitly use the
//! generic forms, e.g. [`QueuedMutexWith<Futex, T>`](QueuedMutexWith). To pick them at run time,
//! once per process (the kernel's `pv_lock_ops`), use [`DynMutex`] and the `PVLOCK` environment
//! variable.
//!
//! ## Tuning
//!
//! Two process-wide budgets shape the pv slow path, both with defaults chosen on the whole
//! benchmark matrix and a valid range ([`tuning`]): the spin budget (how long a waiter spins
//! before it blocks, 40 µs, `PVLOCK_SPIN_NS`) and the steal budget (how many times a running
//! thread may take a `Queued` lock past queued waiters before it must queue itself, 4096 when the
//! process is crowded, `PVLOCK_STEALS`).
//!
//! ## Features
//! * `std` (default): the OS backends, the per-thread waiter [registry], [`DynMutex`],
//!   the calibrated time-based spin [budget]. Without it the crate is `no_std`: the algorithms with
//!   [`Spin`](backend::Spin), or with your own backend (see [`backend`] for a hypervisor example).
//! * `stats`: lock event counters with the kernel's names, see [`stats`].

#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod sync;

pub mod backend;
pub mod budget;
pub mod byte;
#[cfg(all(feature = "std", not(loom)))]
pub mod dynamic;
#[cfg(all(test, loom))]
mod loom_model;
pub mod queued;
pub mod registry;
pub mod stats;
pub mod steal;
#[cfg(all(test, not(loom), feature = "std"))]
mod testutil;
pub mod ticket;
pub mod tuning;

/// The `pv_lock_ops` surface of seed 000: what every pvlock lock offers.
///
/// # Safety
///
/// An implementation must provide mutual exclusion: after `lock` returns, or `try_lock` returns
/// `true`, no other caller's `lock`/`try_lock` succeeds until `unlock` is called.
pub unsafe trait RawLock: Send + Sync {
    /// Whether the lock is held now (a snapshot, for diagnostics and assertions).
    fn is_locked(&self) -> bool;
    /// Whether other threads are waiting for the lock now (a snapshot).
    fn is_contended(&self) -> bool;
    /// Acquires the lock, waiting as long as needed.
    fn lock(&self);
    /// Acquires the lock if it is free now; never waits.
    fn try_lock(&self) -> bool;
    /// Releases the lock.
    ///
    /// # Safety
    /// The lock must be held, by this thread or by one that handed the right to release it over.
    unsafe fn unlock(&self);
}

/// Implements [`RawLock`] and `lock_api::RawMutex` for a lock type that has the inherent methods.
macro_rules! impl_raw_lock {
    ($ty:ident) => {
        // SAFETY: forwards to the inherent methods, which implement the algorithm's mutual
        // exclusion as documented in its module.
        unsafe impl<B: $crate::backend::Backend> $crate::RawLock for $ty<B> {
            #[inline]
            fn is_locked(&self) -> bool {
                $ty::is_locked(self)
            }
            #[inline]
            fn is_contended(&self) -> bool {
                $ty::is_contended(self)
            }
            #[inline]
            fn lock(&self) {
                $ty::lock(self)
            }
            #[inline]
            fn try_lock(&self) -> bool {
                $ty::try_lock(self)
            }
            #[inline]
            unsafe fn unlock(&self) {
                // SAFETY: the caller's contract is ours.
                unsafe { $ty::unlock(self) }
            }
        }

        #[cfg(not(loom))]
        // SAFETY: `lock`/`try_lock`/`unlock` provide mutual exclusion (module docs). The guard may
        // be sent: no lock keeps per-thread state for the holder (a `Queued` node is given back
        // when its thread acquires the lock, as in the kernel), so another thread may unlock.
        unsafe impl<B: $crate::backend::Backend> lock_api::RawMutex for $ty<B> {
            #[allow(clippy::declare_interior_mutable_const)]
            const INIT: Self = $ty::new();
            type GuardMarker = lock_api::GuardSend;

            #[inline]
            fn lock(&self) {
                $ty::lock(self)
            }
            #[inline]
            fn try_lock(&self) -> bool {
                $ty::try_lock(self)
            }
            #[inline]
            unsafe fn unlock(&self) {
                // SAFETY: lock_api calls this only while the lock is held.
                unsafe { $ty::unlock(self) }
            }
            #[inline]
            fn is_locked(&self) -> bool {
                $ty::is_locked(self)
            }
        }
    };
}
pub(crate) use impl_raw_lock;

/// Implements `lock_api::RawMutexFair` for a FIFO lock whose plain unlock already hands over in order.
macro_rules! impl_fair {
    ($ty:ident) => {
        #[cfg(not(loom))]
        // SAFETY: `unlock` already passes the lock to the longest waiter (module docs).
        unsafe impl<B: $crate::backend::Backend> lock_api::RawMutexFair for $ty<B> {
            #[inline]
            unsafe fn unlock_fair(&self) {
                // SAFETY: lock_api calls this only while the lock is held.
                unsafe { $ty::unlock(self) }
            }
        }
    };
}
pub(crate) use impl_fair;

#[cfg(not(loom))]
mod aliases {
    use crate::{byte::Byte, queued::Queued, ticket::Ticket};

    #[cfg(feature = "std")]
    type DefaultBackend = crate::backend::Auto;
    #[cfg(not(feature = "std"))]
    type DefaultBackend = crate::backend::Spin;

    /// The recommended raw lock: [`Queued`] with the [`Auto`](crate::backend::Auto) backend
    /// (`Spin` without `std`).
    pub type RawMutex = Queued<DefaultBackend>;

    /// The recommended mutex: a [`lock_api::Mutex`] over [`RawMutex`].
    pub type Mutex<T> = lock_api::Mutex<RawMutex, T>;
    /// Guard of [`Mutex`].
    pub type MutexGuard<'a, T> = lock_api::MutexGuard<'a, RawMutex, T>;

    /// A FIFO ticket-lock mutex with the default backend.
    pub type TicketMutex<T> = lock_api::Mutex<Ticket<DefaultBackend>, T>;
    /// A Xen byte-lock mutex with the default backend.
    pub type ByteMutex<T> = lock_api::Mutex<Byte<DefaultBackend>, T>;
    /// A queued-spinlock mutex with the default backend (the same as [`Mutex`]).
    pub type QueuedMutex<T> = lock_api::Mutex<Queued<DefaultBackend>, T>;

    /// A ticket-lock mutex with backend `B`, e.g. `TicketMutexWith<Futex, T>`.
    pub type TicketMutexWith<B, T> = lock_api::Mutex<Ticket<B>, T>;
    /// A byte-lock mutex with backend `B`.
    pub type ByteMutexWith<B, T> = lock_api::Mutex<Byte<B>, T>;
    /// A queued-spinlock mutex with backend `B`.
    pub type QueuedMutexWith<B, T> = lock_api::Mutex<Queued<B>, T>;
}
#[cfg(not(loom))]
pub use aliases::*;

#[cfg(all(feature = "std", not(loom)))]
pub use dynamic::{DynMutex, RawDynMutex};

pub use lock_api;
