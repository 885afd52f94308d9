//! The lock trait every pvlock lock implements, and the `lock_api` glue.

/// The `pv_lock_ops` surface of the first paravirtual spinlocks (Linux 2.6.25's
/// `struct pv_lock_ops`): what every pvlock lock offers, so that code can be generic over them
/// (the benchmark and torture harnesses are).
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
