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
//! | [`ticket`] | FIFO ticket lock; pv slow path: flag the lock, block, unlock kicks the next ticket | pv ticketlocks, Linux 3.12 (commit 545ac13892ab) |
//! | [`byte`] | test-and-set byte + spinner count; spin, then register and block; unlock kicks one | the Xen PV spinlock, Linux 2.6.26 (commit 2d9e1e2f58b5) |
//! | [`queued`] | qspinlock (locked, pending, tail) + MCS nodes + the full pvqspinlock slow path | qspinlock and pvqspinlock, Linux 4.2 (commits a33fda35e3a7, a23db284fe0d) |
//! | [`rwlock`] | queued rwlock whose waiters queue on a [`queued`] lock | qrwlock, Linux 3.16 (commit 70af2f8a4f48) |
//!
//! | backend | what `wait` does |
//! |---|---|
//! | [`Spin`](backend::Spin) | spins: the native lock, every pv branch compiled away |
//! | [`Futex`](backend::Futex) | Linux futex on a per-waiter word |
//! | [`Park`](backend::Park) | portable: mutex + condition variable per waiter |
//! | [`Auto`](backend::Auto) | the best of those on this platform: futex on Linux, else park |
//!
//! How long a waiter spins, when it yields or may steal, is the waiting policy, the same for
//! every blocking backend; it adapts to the load (threads waiting against the CPUs the process
//! may use): with threads <= CPUs a waiter spins like the native spinlock, oversubscribed the
//! queued waiters sleep and the lock moves among the running threads, in bounded turns.
//!
//! ## Which lock
//!
//! | situation | use | measured |
//! |---|---|---|
//! | threads may outnumber CPUs: thread pools, containers with a CPU quota, VMs; or you do not know | [`Mutex`] (`Queued<Auto>`) | 16 threads on 2 CPUs: 0.86x the best peer (`std`) with 2.5x its fairness, 45x a plain ticket lock |
//! | one thread per CPU, or CPU hogs beside you | [`Mutex`] | 2 threads on 2 CPUs: 0.94x the best peer; beside 2 CPU hogs: 0.98x |
//! | mostly readers | [`RwLock`] | 90% and 99% reads, 2 and 16 threads on 2 CPUs: 0.81x to 1.03x the best peer |
//! | waiting threads must take turns in order | [`Mutex`] with [`MutexGuard::unlock_fair`](lock_api::MutexGuard::unlock_fair) where it matters; [`TicketMutex`] only if threads never outnumber CPUs | a FIFO lock collapses when they do: `Ticket` with the futex backend, 16 threads on 2 CPUs: 0.02x the best peer |
//! | a waiter must give up after a while | [`Mutex::try_lock_for`](lock_api::Mutex::try_lock_for) | (same lock as [`Mutex`]) |
//! | wait for a condition | [`Condvar`] with any of these mutexes | |
//! | threads never outnumber CPUs and must never sleep | [`QueuedMutexWith<Spin, T>`](QueuedMutexWith) (the native qspinlock) | 16 threads on 2 CPUs: 0.03x the best peer |
//! | choose the lock when the program starts (`PVLOCK=ticket:spin ./prog`) | [`DynMutex`] | uncontended: 0.81x the static [`Mutex`] (one load and a branch more per operation) |
//! | an OS kernel, a guest, `no_std` | `Queued<YourBackend>` ([`backend`]) | 32 vCPUs on 2 CPUs, halt and kick as VM exits: 7.12x the best spinlock |
//!
//! The figures are from `pvlock bench` and `pvlock guest` (a command-line tool in pvlock's
//! repository) on a 2-CPU Linux virtual machine; the repository's `docs/results.md` gives each
//! with its date, commit and command. "Best peer" is the fastest of `std::sync::Mutex`,
//! `parking_lot::Mutex`, `spin`'s spin and ticket mutexes and a test-and-test-and-set lock in the
//! same round.
//!
//! Prefer `std::sync::Mutex` if you want lock poisoning or no dependency and your threads rarely
//! contend; `parking_lot` for a reentrant mutex, deadlock detection or eventual fairness built in;
//! a plain spinlock (`spin`) only where nothing can preempt the holder (pvlock's `Spin` backend is
//! the same lock with the kernel's queue).
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
//! generic forms, e.g. [`QueuedMutexWith<Futex, T>`](QueuedMutexWith); the raw lock types
//! (`Queued<B>`, `Ticket<B>`, `Byte<B>`, `QueuedRwLock<B>`) have no default backend, so the choice
//! is always written out. To pick them at run time, once per process (the kernel's
//! `pv_lock_ops`), use [`DynMutex`] and the `PVLOCK` environment variable. The crate's
//! `examples/` show a `Mutex`, `RwLock` and `Condvar` together, `DynMutex` with its error path,
//! and a backend of your own.
//!
//! ## Limits
//!
//! * **No poisoning.** A panic while a guard is held releases the lock as the guard drops; the
//!   next `lock()` succeeds and sees the data as the panic left it. `lock()` returns the guard, not
//!   a `Result`.
//! * **Guards are `Send`** (`lock_api::GuardSend`): a guard may be dropped, and the lock released,
//!   on another thread. No lock keeps per-thread state for its holder.
//! * **Not reentrant**: a thread that locks a mutex it holds deadlocks.
//! * **Waiter slots.** A waiter that blocks uses a slot of its thread, from a table of 1024
//!   claimed on a thread's first wait and given back when it exits. While all 1024 are taken, a
//!   waiter without one spins on `try_lock`, yielding now and then (the kernel's `lock_no_node`).
//! * **Platforms.** [`Futex`](backend::Futex) exists on Linux only; elsewhere [`Auto`](backend::Auto)
//!   is [`Park`](backend::Park). pvlock is developed, tested and measured on Linux x86-64.
//! * **`no_std`** (without the default feature `std`): the algorithms, [`RwLockWith`], the
//!   [`Spin`](backend::Spin) backend and backends of your own; no `Futex`, `Park`, `Auto`,
//!   [`DynMutex`], `Condvar` or timed locking (there is no clock: the spin budget is a number of
//!   iterations), and the default [`Mutex`] spins (`Spin`).
//! * `Queued<Spin>` has no timed locking: in the native protocol only the queue head may take a
//!   queued lock, so a timed waiter could never leave.
//! * [`DynMutex`] has no `unlock_fair`: one of its choices, the byte lock, cannot hand the lock
//!   over ([`dynamic`]).
//! * No async locks, no reentrant mutex, no `downgrade_to_upgradable` on the rwlock.
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
//! * `std` (default): the OS backends, per-thread waiter slots, [`DynMutex`], `Condvar`, the
//!   spin budget in time. Without it the crate is `no_std` (see Limits).
//! * `stats`: lock event counters with the kernel's names, see [`stats`].

#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

mod load;
mod policy;
mod raw;
mod slot;
mod sync;

pub mod backend;
pub mod byte;
#[cfg(feature = "std")]
pub mod condvar;
#[cfg(all(feature = "std", not(loom)))]
pub mod dynamic;
pub mod queued;
pub mod rwlock;
pub mod stats;
pub mod ticket;
pub mod tuning;

#[cfg(all(test, loom))]
mod loom_model;
#[cfg(all(test, not(loom), feature = "std"))]
mod testutil;

pub use raw::RawLock;

#[cfg(not(loom))]
mod aliases {
    use crate::{byte::Byte, queued::Queued, rwlock::QueuedRwLock, ticket::Ticket};

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
    /// A [`MutexGuard`] mapped to a part of the data ([`MutexGuard::map`](lock_api::MutexGuard::map)).
    pub type MappedMutexGuard<'a, T> = lock_api::MappedMutexGuard<'a, RawMutex, T>;

    /// A FIFO ticket-lock mutex with the default backend.
    pub type TicketMutex<T> = lock_api::Mutex<Ticket<DefaultBackend>, T>;
    /// Guard of [`TicketMutex`].
    pub type TicketMutexGuard<'a, T> = lock_api::MutexGuard<'a, Ticket<DefaultBackend>, T>;
    /// A Xen byte-lock mutex with the default backend.
    pub type ByteMutex<T> = lock_api::Mutex<Byte<DefaultBackend>, T>;
    /// Guard of [`ByteMutex`].
    pub type ByteMutexGuard<'a, T> = lock_api::MutexGuard<'a, Byte<DefaultBackend>, T>;
    /// A queued-spinlock mutex with the default backend (the same as [`Mutex`]).
    pub type QueuedMutex<T> = lock_api::Mutex<Queued<DefaultBackend>, T>;
    /// Guard of [`QueuedMutex`].
    pub type QueuedMutexGuard<'a, T> = lock_api::MutexGuard<'a, Queued<DefaultBackend>, T>;

    /// A ticket-lock mutex with backend `B`, e.g. `TicketMutexWith<Futex, T>`.
    pub type TicketMutexWith<B, T> = lock_api::Mutex<Ticket<B>, T>;
    /// Guard of [`TicketMutexWith`].
    pub type TicketMutexGuardWith<'a, B, T> = lock_api::MutexGuard<'a, Ticket<B>, T>;
    /// A byte-lock mutex with backend `B`.
    pub type ByteMutexWith<B, T> = lock_api::Mutex<Byte<B>, T>;
    /// Guard of [`ByteMutexWith`].
    pub type ByteMutexGuardWith<'a, B, T> = lock_api::MutexGuard<'a, Byte<B>, T>;
    /// A queued-spinlock mutex with backend `B`.
    ///
    /// ```
    /// use pvlock::backend::{Park, Spin};
    /// // Waiters that never block: the kernel's native qspinlock.
    /// static SPINNING: pvlock::QueuedMutexWith<Spin, u32> = pvlock::QueuedMutexWith::new(0);
    /// // Waiters that block on a condition variable each, on any platform.
    /// let parking = pvlock::QueuedMutexWith::<Park, u32>::new(0);
    /// *SPINNING.lock() += 1;
    /// *parking.lock() += 1;
    /// ```
    pub type QueuedMutexWith<B, T> = lock_api::Mutex<Queued<B>, T>;
    /// Guard of [`QueuedMutexWith`].
    pub type QueuedMutexGuardWith<'a, B, T> = lock_api::MutexGuard<'a, Queued<B>, T>;

    /// The recommended raw rwlock: the kernel's queued rwlock ([`QueuedRwLock`]) with the
    /// [`Auto`](crate::backend::Auto) backend (`Spin` without `std`).
    pub type RawRwLock = QueuedRwLock<DefaultBackend>;
    /// The recommended reader-writer lock: a [`lock_api::RwLock`] over [`RawRwLock`].
    ///
    /// ```
    /// let table = pvlock::RwLock::new(vec![1, 2, 3]);
    /// {
    ///     let (a, b) = (table.read(), table.read()); // readers share the lock
    ///     assert_eq!(a.len() + b.len(), 6);
    /// }
    /// table.write().push(4); // a writer has it alone
    /// assert_eq!(*table.read(), [1, 2, 3, 4]);
    /// ```
    pub type RwLock<T> = lock_api::RwLock<RawRwLock, T>;
    /// Read guard of [`RwLock`].
    pub type RwLockReadGuard<'a, T> = lock_api::RwLockReadGuard<'a, RawRwLock, T>;
    /// Write guard of [`RwLock`].
    pub type RwLockWriteGuard<'a, T> = lock_api::RwLockWriteGuard<'a, RawRwLock, T>;
    /// Upgradable read guard of [`RwLock`].
    pub type RwLockUpgradableReadGuard<'a, T> =
        lock_api::RwLockUpgradableReadGuard<'a, RawRwLock, T>;
    /// A [`RwLockReadGuard`] mapped to a part of the data.
    pub type MappedRwLockReadGuard<'a, T> = lock_api::MappedRwLockReadGuard<'a, RawRwLock, T>;
    /// A [`RwLockWriteGuard`] mapped to a part of the data.
    pub type MappedRwLockWriteGuard<'a, T> = lock_api::MappedRwLockWriteGuard<'a, RawRwLock, T>;
    /// A queued rwlock with backend `B`, e.g. `RwLockWith<Futex, T>`.
    pub type RwLockWith<B, T> = lock_api::RwLock<QueuedRwLock<B>, T>;
}
#[cfg(not(loom))]
pub use aliases::*;

#[cfg(all(feature = "std", not(loom)))]
pub use dynamic::{DynMutex, RawDynMutex};

/// The recommended condition variable: [`CondvarWith`](condvar::CondvarWith) whose waiters block
/// with the [`Auto`](backend::Auto) backend; it works with the guard of every `lock_api` mutex
/// ([`Mutex`], [`TicketMutex`], [`ByteMutex`], [`DynMutex`], ...).
///
/// ```
/// use std::sync::Arc;
/// let pair = Arc::new((pvlock::Mutex::new(false), pvlock::Condvar::new()));
/// let pair2 = Arc::clone(&pair);
/// std::thread::spawn(move || {
///     *pair2.0.lock() = true;
///     pair2.1.notify_one();
/// });
/// let (ready, cv) = &*pair;
/// let mut guard = ready.lock();
/// cv.wait_while(&mut guard, |ready| !*ready);
/// assert!(*guard);
/// ```
#[cfg(all(feature = "std", not(loom)))]
pub type Condvar = condvar::CondvarWith<backend::Auto>;
#[cfg(feature = "std")]
pub use condvar::WaitTimeoutResult;

pub use lock_api;

/// The package README's code, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
