//! The integration tests' harness: a progress watchdog, so that a lost wake-up fails a test within
//! seconds instead of hanging CI; the stress run every lock goes through (mutual exclusion checked
//! with non-atomic state on every acquisition, exact totals); and a small random generator.

#![allow(dead_code)]

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pvlock::RawLock;

mod watchdog;
// Not every test file uses every item.
#[allow(unused_imports)]
pub use watchdog::{watched, watched_with, Worker, STALL};

/// Tests of one file that must not overlap (timing-sensitive or global state): hold the guard.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// CPUs available to this process (affinity and cgroup quota included).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// xorshift64*: cheap per-thread randomness for the non-critical work.
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
            std::hint::spin_loop();
        }
    }
}

/// A raw lock guarding state that is deliberately not atomic.
struct Shared<L> {
    lock: L,
    /// Incremented with a plain `+= 1` inside the critical section.
    counter: UnsafeCell<u64>,
    /// Id + 1 of the thread inside the critical section, 0 = none.
    owner: UnsafeCell<usize>,
    /// Violations seen inside critical sections (checked after the run: a panic while holding a
    /// raw lock would stall the other threads).
    violations: AtomicU64,
}

// SAFETY: `counter` and `owner` are only accessed while `lock` is held (that is what the test
// checks); the rest is Sync.
unsafe impl<L: Sync> Sync for Shared<L> {}

impl<L: RawLock> Shared<L> {
    fn new(lock: L) -> Self {
        Shared {
            lock,
            counter: UnsafeCell::new(0),
            owner: UnsafeCell::new(0),
            violations: AtomicU64::new(0),
        }
    }

    /// The critical section: claim `owner`, bump `counter`, verify nobody else came in.
    ///
    /// # Safety
    /// The caller holds `lock`.
    unsafe fn critical(&self, id: usize) {
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
            if !self.lock.is_locked() {
                bad += 1;
            }
            std::hint::spin_loop();
            if std::ptr::read_volatile(self.owner.get()) != id + 1 {
                bad += 1;
            }
            std::ptr::write_volatile(self.owner.get(), 0);
        }
        if bad != 0 {
            self.violations.fetch_add(bad, Ordering::Relaxed);
        }
    }

    fn state(&self) -> String {
        format!(
            "is_locked={} is_contended={}",
            self.lock.is_locked(),
            self.lock.is_contended()
        )
    }
}

/// `threads` threads each take the lock `total / threads` times (1 in 16 via `try_lock` first),
/// or fewer if the run reaches `cap`.
pub fn stress<L: RawLock + lock_api::RawMutex>(
    name: &str,
    threads: usize,
    total: u64,
    cap: Duration,
) {
    let per_thread = (total / threads as u64).max(1);
    let shared = Shared::new(<L as lock_api::RawMutex>::INIT);
    let done: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
    let label = format!("{name} x{threads}");
    let deadline = Instant::now() + cap;
    watched_with(
        &label,
        threads,
        STALL,
        || shared.state(),
        |w| {
            let mut rng = Rng::new(w.id as u64 + 1);
            let mut mine = 0;
            while mine < per_thread && !w.stopped() && Instant::now() < deadline {
                let quick = rng.below(16) == 0 && RawLock::try_lock(&shared.lock);
                if !quick {
                    RawLock::lock(&shared.lock);
                }
                // SAFETY: locked just above.
                unsafe {
                    shared.critical(w.id);
                    RawLock::unlock(&shared.lock);
                }
                mine += 1;
                w.tick();
                rng.think(64);
            }
            done[w.id].store(mine, Ordering::Relaxed);
        },
    );
    let expected: u64 = done.iter().map(|d| d.load(Ordering::Relaxed)).sum();
    assert_eq!(
        shared.violations.load(Ordering::Relaxed),
        0,
        "{label}: mutual exclusion violated"
    );
    assert_eq!(
        shared.counter.into_inner(),
        expected,
        "{label}: lost updates"
    );
    assert!(
        expected >= threads as u64,
        "{label}: only {expected} acquisitions"
    );
    assert!(!RawLock::is_locked(&shared.lock), "{label}: left locked");
    assert!(
        !RawLock::is_contended(&shared.lock),
        "{label}: left contended"
    );
}
