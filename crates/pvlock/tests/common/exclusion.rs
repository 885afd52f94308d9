//! The mutual-exclusion run every lock goes through, in the integration tests (`common::stress`)
//! and in the crate's unit tests (`testutil::hammer`, which includes this file by path, as it
//! does the watchdog): threads take one lock over and over around a critical section of
//! deliberately non-atomic state, under the progress watchdog, and the totals are checked
//! exactly. It depends on `std`, the watchdog and the `RawLock` trait of its including module
//! (and names even its prelude items by path: the crate is `no_std`).

#![allow(dead_code)]

use core::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::watchdog::{watched_with, STALL};
use super::RawLock;

/// xorshift64*: cheap per-thread randomness for the work outside the critical section.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// A little random work outside the critical section, so threads do not fall into lock-step.
    pub fn think(&mut self, max_spins: u64) {
        for _ in 0..self.below(max_spins + 1) {
            core::hint::spin_loop();
        }
    }
}

/// What one run does.
pub struct Run {
    /// Worker threads.
    pub threads: usize,
    /// Acquisitions each thread makes (fewer if `cap` ends the run first).
    pub per_thread: u64,
    /// How long each acquisition keeps the lock (zero: a few instructions). Longer than the spin
    /// budget, waiters block and must be kicked.
    pub hold: Duration,
    /// After this long the threads stop after their current acquisition; the total is still
    /// checked exactly, against what every thread did. `None`: every thread makes all of them.
    pub cap: Option<Duration>,
    /// One acquisition in this many tries `try_lock` first (0: never).
    pub try_one_in: u64,
    /// The most spin hints of random work between two acquisitions.
    pub think: u64,
}

/// State that only the lock under test protects, deliberately not atomic.
struct Shared {
    /// Incremented with a plain `+= 1` inside the critical section.
    counter: UnsafeCell<u64>,
    /// Id + 1 of the thread inside the critical section, 0 = none.
    owner: UnsafeCell<usize>,
    /// Violations seen inside critical sections (checked after the run: a panic while holding a
    /// raw lock would stall the other threads).
    violations: AtomicU64,
}

// SAFETY: `counter` and `owner` are only accessed while the lock under test is held (that is what
// the run checks) or after every thread joined; `violations` is atomic.
unsafe impl Sync for Shared {}

impl Shared {
    /// The critical section: claim `owner`, bump `counter`, keep the lock for `hold`, verify
    /// nobody else came in.
    ///
    /// # Safety
    /// The caller holds the lock that protects `self`, and `lock` is that lock.
    unsafe fn critical(&self, lock: &impl RawLock, id: usize, hold: Duration) {
        let mut bad = 0;
        // SAFETY: the caller holds the lock, so no other thread accesses these cells now.
        // Volatile: the compiler must really read what another thread may have written if
        // mutual exclusion were broken.
        unsafe {
            if std::ptr::read_volatile(self.owner.get()) != 0 {
                bad += 1;
            }
            std::ptr::write_volatile(self.owner.get(), id + 1);
            *self.counter.get() += 1;
        }
        if !lock.is_locked() {
            bad += 1;
        }
        if hold.is_zero() {
            core::hint::spin_loop();
        } else {
            let t = Instant::now();
            while t.elapsed() < hold {
                core::hint::spin_loop();
            }
        }
        // SAFETY: as above.
        unsafe {
            if std::ptr::read_volatile(self.owner.get()) != id + 1 {
                bad += 1;
            }
            std::ptr::write_volatile(self.owner.get(), 0);
        }
        if bad != 0 {
            self.violations.fetch_add(bad, Ordering::Relaxed);
        }
    }
}

/// Runs `run` on `lock` (`setup(i)` first on the `i`-th thread), all threads released together,
/// under the watchdog (a stall of [`STALL`] fails the test with `lock`'s state). Asserts mutual
/// exclusion on every acquisition, the exact total, and that the lock ends free and uncontended.
/// Returns the total.
pub fn exclusion<L: RawLock + core::fmt::Debug>(
    label: &str,
    lock: &L,
    run: &Run,
    setup: impl Fn(usize) + Sync,
) -> u64 {
    let shared = Shared {
        counter: UnsafeCell::new(0),
        owner: UnsafeCell::new(0),
        violations: AtomicU64::new(0),
    };
    let done: std::vec::Vec<AtomicU64> = (0..run.threads).map(|_| AtomicU64::new(0)).collect();
    let start = std::sync::Barrier::new(run.threads);
    watched_with(
        label,
        run.threads,
        STALL,
        || std::format!("{lock:?}"),
        |w| {
            setup(w.id);
            start.wait();
            let end = run.cap.map(|c| Instant::now() + c);
            let mut rng = Rng::new(w.id as u64 + 1);
            let mut mine = 0;
            while mine < run.per_thread && !w.stopped() && end.map_or(true, |e| Instant::now() < e)
            {
                let quick =
                    run.try_one_in != 0 && rng.below(run.try_one_in) == 0 && lock.try_lock();
                if !quick {
                    lock.lock();
                }
                // SAFETY: locked just above; `lock` protects `shared`.
                unsafe {
                    shared.critical(lock, w.id, run.hold);
                    lock.unlock();
                }
                mine += 1;
                w.tick();
                if run.think != 0 {
                    rng.think(run.think);
                }
            }
            done[w.id].store(mine, Ordering::Relaxed);
        },
    );
    let total: u64 = done.iter().map(|d| d.load(Ordering::Relaxed)).sum();
    assert_eq!(
        shared.violations.load(Ordering::Relaxed),
        0,
        "{label}: mutual exclusion violated"
    );
    assert_eq!(shared.counter.into_inner(), total, "{label}: lost updates");
    if run.cap.is_none() {
        assert_eq!(
            total,
            run.threads as u64 * run.per_thread,
            "{label}: not every acquisition was made"
        );
    } else {
        assert!(
            total >= run.threads as u64,
            "{label}: only {total} acquisitions"
        );
    }
    assert!(!lock.is_locked(), "{label}: left locked: {lock:?}");
    assert!(!lock.is_contended(), "{label}: left contended: {lock:?}");
    total
}
