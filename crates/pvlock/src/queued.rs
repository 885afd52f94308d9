//! `Queued`: the Xen queued spinlock. (Being written.)
use crate::backend::{Backend, Spin};
use crate::sync::{spin_loop, AtomicU32, Ordering};
use core::marker::PhantomData;

/// The queued lock (placeholder: test-and-set only, pv slow path pending).
#[repr(transparent)]
pub struct Queued<B: Backend = Spin> {
    word: AtomicU32,
    _backend: PhantomData<fn() -> B>,
}
impl<B: Backend> Queued<B> {
    crate::sync::const_fn! {
        /// An unlocked lock.
        pub fn new() -> Self { Queued { word: AtomicU32::new(0), _backend: PhantomData } }
    }
    /// Whether held.
    pub fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) & 1 != 0
    }
    /// Whether contended.
    pub fn is_contended(&self) -> bool {
        false
    }
    /// Try.
    pub fn try_lock(&self) -> bool {
        self.word.fetch_or(1, Ordering::Acquire) & 1 == 0
    }
    /// Lock.
    pub fn lock(&self) {
        while !self.try_lock() {
            spin_loop()
        }
    }
    /// Unlock.
    /// # Safety
    /// held
    pub unsafe fn unlock(&self) {
        self.word.fetch_and(!1, Ordering::Release);
    }
}
crate::impl_raw_lock!(Queued);
