//! The locks under test, behind one small trait so pvlock's locks and the peers run the exact same
//! workload code, monomorphised per lock (no dynamic dispatch in the measured loop).

use std::sync::atomic::{AtomicBool, Ordering};

/// A mutex protecting a `T`, as the benchmark uses it.
pub trait BenchLock<T>: Send + Sync {
    /// A new unlocked mutex around `t`.
    fn new(t: T) -> Self;
    /// Runs `f` with the lock held.
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R;
}

/// A lock *family*: one mutex type constructor, e.g. `std::sync::Mutex<_>`.
pub trait Family: 'static {
    /// The mutex protecting a `T`.
    type L<T: Send + 'static>: BenchLock<T> + 'static;
    /// Whether this is one of pvlock's own locks (its event counters are reported).
    const PVLOCK: bool;
}

impl<R: lock_api::RawMutex + Send + Sync, T: Send> BenchLock<T> for lock_api::Mutex<R, T> {
    fn new(t: T) -> Self {
        lock_api::Mutex::new(t)
    }
    #[inline]
    fn with<U>(&self, f: impl FnOnce(&mut T) -> U) -> U {
        f(&mut self.lock())
    }
}

impl<T: Send> BenchLock<T> for std::sync::Mutex<T> {
    fn new(t: T) -> Self {
        std::sync::Mutex::new(t)
    }
    #[inline]
    fn with<U>(&self, f: impl FnOnce(&mut T) -> U) -> U {
        // A panicking worker would be a bench bug; keep going with the data rather than abort.
        f(&mut self.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<T: Send> BenchLock<T> for spin::mutex::SpinMutex<T> {
    fn new(t: T) -> Self {
        spin::mutex::SpinMutex::new(t)
    }
    #[inline]
    fn with<U>(&self, f: impl FnOnce(&mut T) -> U) -> U {
        f(&mut self.lock())
    }
}

impl<T: Send> BenchLock<T> for spin::mutex::TicketMutex<T> {
    fn new(t: T) -> Self {
        spin::mutex::TicketMutex::new(t)
    }
    #[inline]
    fn with<U>(&self, f: impl FnOnce(&mut T) -> U) -> U {
        f(&mut self.lock())
    }
}

/// `ttas`: a test-and-test-and-set spin lock with exponential backoff (the `BackoffLock` of
/// Herlihy and Shavit, *The Art of Multiprocessor Programming*, 7.4), written here as a plain
/// reference peer: waiters read the lock word until it looks free, then try to swap it; a waiter
/// that loses the race spins 2x longer (up to [`Ttas::MAX_DELAY`] pauses) before it looks again.
pub struct Ttas {
    locked: AtomicBool,
}

impl Ttas {
    const MIN_DELAY: u32 = 4;
    const MAX_DELAY: u32 = 1024;
}

// SAFETY: `lock` returns only after swapping `locked` from false to true, and only `unlock` (by
// the holder) stores false: at most one holder at a time.
unsafe impl lock_api::RawMutex for Ttas {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Ttas = Ttas {
        locked: AtomicBool::new(false),
    };
    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock(&self) {
        let mut delay = Self::MIN_DELAY;
        loop {
            // Relaxed: only a hint that the swap may succeed; the swap below synchronises.
            while self.locked.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
            // Acquire: pairs with the holder's Release in `unlock`.
            if !self.locked.swap(true, Ordering::Acquire) {
                return;
            }
            for _ in 0..delay {
                std::hint::spin_loop();
            }
            delay = (delay * 2).min(Self::MAX_DELAY);
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        // Relaxed load: see `lock`; Acquire swap: pairs with `unlock`.
        !self.locked.load(Ordering::Relaxed) && !self.locked.swap(true, Ordering::Acquire)
    }

    #[inline]
    unsafe fn unlock(&self) {
        // Release: the critical section's writes become visible to the next holder.
        self.locked.store(false, Ordering::Release);
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

macro_rules! family {
    ($name:ident, $pv:expr, $ty:ty) => {
        pub struct $name;
        impl Family for $name {
            type L<T: Send + 'static> = $ty;
            const PVLOCK: bool = $pv;
        }
    };
}

/// The lock families.
pub mod fam {
    use super::Family;
    use pvlock::backend::{Auto, Futex, Park, Spin};
    use pvlock::{byte::Byte, queued::Queued, ticket::Ticket};

    family!(PvMutex, true, pvlock::Mutex<T>);
    family!(DynMutex, true, pvlock::DynMutex<T>);
    family!(TicketSpin, true, lock_api::Mutex<Ticket<Spin>, T>);
    family!(TicketFutex, true, lock_api::Mutex<Ticket<Futex>, T>);
    family!(TicketPark, true, lock_api::Mutex<Ticket<Park>, T>);
    family!(TicketAuto, true, lock_api::Mutex<Ticket<Auto>, T>);
    family!(ByteSpin, true, lock_api::Mutex<Byte<Spin>, T>);
    family!(ByteFutex, true, lock_api::Mutex<Byte<Futex>, T>);
    family!(BytePark, true, lock_api::Mutex<Byte<Park>, T>);
    family!(ByteAuto, true, lock_api::Mutex<Byte<Auto>, T>);
    family!(QueuedSpin, true, lock_api::Mutex<Queued<Spin>, T>);
    family!(QueuedFutex, true, lock_api::Mutex<Queued<Futex>, T>);
    family!(QueuedPark, true, lock_api::Mutex<Queued<Park>, T>);
    family!(QueuedAuto, true, lock_api::Mutex<Queued<Auto>, T>);
    family!(Std, false, std::sync::Mutex<T>);
    family!(ParkingLot, false, parking_lot::Mutex<T>);
    family!(SpinTas, false, spin::mutex::SpinMutex<T>);
    family!(SpinTicket, false, spin::mutex::TicketMutex<T>);
    family!(Ttas, false, lock_api::Mutex<super::Ttas, T>);
}

/// A reader-writer lock protecting a `T`, as the `rwlock` workload uses it.
pub trait RwBenchLock<T>: Send + Sync {
    /// A new unlocked rwlock around `t`.
    fn new(t: T) -> Self;
    /// Runs `f` with a read lock held.
    fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R;
    /// Runs `f` with the write lock held.
    fn write<R>(&self, f: impl FnOnce(&mut T) -> R) -> R;
}

/// An rwlock family, as [`Family`] for mutexes.
pub trait RwFamily: 'static {
    /// The rwlock protecting a `T`.
    type L<T: Send + Sync + 'static>: RwBenchLock<T> + 'static;
    /// Whether this is one of pvlock's own locks.
    const PVLOCK: bool;
}

impl<R: lock_api::RawRwLock + Send + Sync, T: Send + Sync> RwBenchLock<T>
    for lock_api::RwLock<R, T>
{
    fn new(t: T) -> Self {
        lock_api::RwLock::new(t)
    }
    #[inline]
    fn read<U>(&self, f: impl FnOnce(&T) -> U) -> U {
        f(&self.read())
    }
    #[inline]
    fn write<U>(&self, f: impl FnOnce(&mut T) -> U) -> U {
        f(&mut self.write())
    }
}

impl<T: Send + Sync> RwBenchLock<T> for std::sync::RwLock<T> {
    fn new(t: T) -> Self {
        std::sync::RwLock::new(t)
    }
    #[inline]
    fn read<U>(&self, f: impl FnOnce(&T) -> U) -> U {
        f(&self.read().unwrap_or_else(|e| e.into_inner()))
    }
    #[inline]
    fn write<U>(&self, f: impl FnOnce(&mut T) -> U) -> U {
        f(&mut self.write().unwrap_or_else(|e| e.into_inner()))
    }
}

macro_rules! rw_family {
    ($name:ident, $pv:expr, $ty:ty) => {
        pub struct $name;
        impl RwFamily for $name {
            type L<T: Send + Sync + 'static> = $ty;
            const PVLOCK: bool = $pv;
        }
    };
}

/// The rwlock families of the `rwlock` workload (lock ids as for the mutexes: `pvlock` and the
/// `queued-*` ids are pvlock's queued rwlock with that backend).
pub mod rwfam {
    use super::RwFamily;
    use pvlock::backend::{Auto, Futex, Park, Spin};

    rw_family!(PvRwLock, true, pvlock::RwLock<T>);
    rw_family!(RwSpin, true, pvlock::RwLockWith<Spin, T>);
    rw_family!(RwFutex, true, pvlock::RwLockWith<Futex, T>);
    rw_family!(RwPark, true, pvlock::RwLockWith<Park, T>);
    rw_family!(RwAuto, true, pvlock::RwLockWith<Auto, T>);
    rw_family!(StdRw, false, std::sync::RwLock<T>);
    rw_family!(ParkingLotRw, false, parking_lot::RwLock<T>);
}

/// Whether lock `id` takes part in workload `wl`: the `rwlock` workload runs the locks that have
/// a reader-writer form (pvlock's queued rwlock, std, parking_lot), every other workload all.
pub fn applies(id: &str, wl: &str) -> bool {
    wl != "rwlock"
        || matches!(
            id,
            "pvlock"
                | "queued-spin"
                | "queued-futex"
                | "queued-park"
                | "queued-auto"
                | "std"
                | "parking_lot"
        )
}

/// Calls `$f::<RwFamily>($args)` for the rwlock family of lock id `$id`.
macro_rules! with_rw_family {
    ($id:expr, $f:ident ( $($args:expr),* )) => {{
        use $crate::locks::rwfam::*;
        match $id {
            "pvlock" => Some($f::<PvRwLock>($($args),*)),
            "queued-spin" => Some($f::<RwSpin>($($args),*)),
            "queued-futex" => Some($f::<RwFutex>($($args),*)),
            "queued-park" => Some($f::<RwPark>($($args),*)),
            "queued-auto" => Some($f::<RwAuto>($($args),*)),
            "std" => Some($f::<StdRw>($($args),*)),
            "parking_lot" => Some($f::<ParkingLotRw>($($args),*)),
            _ => None,
        }
    }};
}
pub(crate) use with_rw_family;

/// Every lock id, in table order, with a one-line description.
pub const LOCKS: &[(&str, &str)] = &[
    (
        "pvlock",
        "pvlock::Mutex (Queued + Auto backend), the recommended lock; rwlock workload: pvlock::RwLock",
    ),
    (
        "queued-spin",
        "pvlock Queued (qspinlock) with the Spin backend: never blocks",
    ),
    (
        "queued-futex",
        "pvlock Queued with the Futex backend (pvqspinlock)",
    ),
    (
        "queued-park",
        "pvlock Queued with the Park (condvar) backend",
    ),
    (
        "queued-auto",
        "pvlock Queued with the Auto backend (= pvlock)",
    ),
    (
        "ticket-spin",
        "pvlock Ticket with the Spin backend: a plain FIFO ticket lock",
    ),
    (
        "ticket-futex",
        "pvlock Ticket with the Futex backend (pv ticketlock)",
    ),
    ("ticket-park", "pvlock Ticket with the Park backend"),
    ("ticket-auto", "pvlock Ticket with the Auto backend"),
    (
        "byte-spin",
        "pvlock Byte (Xen byte lock) with the Spin backend",
    ),
    ("byte-futex", "pvlock Byte with the Futex backend"),
    ("byte-park", "pvlock Byte with the Park backend"),
    ("byte-auto", "pvlock Byte with the Auto backend"),
    (
        "dyn",
        "pvlock::DynMutex: algorithm chosen at run time by PVLOCK (default queued:auto)",
    ),
    ("std", "peer: std::sync::Mutex (futex); rwlock workload: std::sync::RwLock"),
    (
        "parking_lot",
        "peer: parking_lot::Mutex 0.12 (spin, yield, park); rwlock workload: parking_lot::RwLock",
    ),
    (
        "spin",
        "peer: spin::mutex::SpinMutex 0.10 (test-and-test-and-set)",
    ),
    (
        "spin-ticket",
        "peer: spin::mutex::TicketMutex 0.10 (FIFO ticket lock)",
    ),
    (
        "ttas",
        "peer: test-and-test-and-set with exponential backoff (a reference lock of this bench)",
    ),
];

/// The lock table of the help texts.
pub fn lock_table() -> String {
    LOCKS
        .iter()
        .map(|(id, what)| format!("  {id:<13} {what}\n"))
        .collect()
}

/// Whether `id` is a peer (not one of pvlock's locks).
pub fn is_peer(id: &str) -> bool {
    matches!(id, "std" | "parking_lot" | "spin" | "spin-ticket" | "ttas")
}

/// Calls `$f::<Family>($args)` for the family named `$id` (a `&str` from [`LOCKS`]).
macro_rules! with_family {
    ($id:expr, $f:ident ( $($args:expr),* )) => {{
        use $crate::locks::fam::*;
        match $id {
            "pvlock" => Some($f::<PvMutex>($($args),*)),
            "dyn" => Some($f::<DynMutex>($($args),*)),
            "ticket-spin" => Some($f::<TicketSpin>($($args),*)),
            "ticket-futex" => Some($f::<TicketFutex>($($args),*)),
            "ticket-park" => Some($f::<TicketPark>($($args),*)),
            "ticket-auto" => Some($f::<TicketAuto>($($args),*)),
            "byte-spin" => Some($f::<ByteSpin>($($args),*)),
            "byte-futex" => Some($f::<ByteFutex>($($args),*)),
            "byte-park" => Some($f::<BytePark>($($args),*)),
            "byte-auto" => Some($f::<ByteAuto>($($args),*)),
            "queued-spin" => Some($f::<QueuedSpin>($($args),*)),
            "queued-futex" => Some($f::<QueuedFutex>($($args),*)),
            "queued-park" => Some($f::<QueuedPark>($($args),*)),
            "queued-auto" => Some($f::<QueuedAuto>($($args),*)),
            "std" => Some($f::<Std>($($args),*)),
            "parking_lot" => Some($f::<ParkingLot>($($args),*)),
            "spin" => Some($f::<SpinTas>($($args),*)),
            "spin-ticket" => Some($f::<SpinTicket>($($args),*)),
            "ttas" => Some($f::<Ttas>($($args),*)),
            _ => None,
        }
    }};
}
pub(crate) use with_family;

#[cfg(test)]
mod tests {
    use lock_api::RawMutex;

    #[test]
    fn ttas_excludes() {
        let m = lock_api::Mutex::<super::Ttas, u64>::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..20_000 {
                        let mut g = m.lock();
                        // A separate read and write: a second holder would lose updates.
                        let v = std::hint::black_box(*g);
                        *g = v + 1;
                    }
                });
            }
        });
        assert_eq!(*m.lock(), 80_000);
        let raw = super::Ttas::INIT;
        assert!(raw.try_lock() && !raw.try_lock() && raw.is_locked());
        // SAFETY: locked by the successful try_lock above.
        unsafe { raw.unlock() };
        assert!(!raw.is_locked());
    }
}
