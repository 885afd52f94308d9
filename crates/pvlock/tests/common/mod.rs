//! The integration tests' harness: a progress watchdog (`watchdog.rs`), so that a lost wake-up
//! fails a test within seconds instead of hanging CI; the mutual-exclusion run every lock goes
//! through (`exclusion.rs`: non-atomic state checked on every acquisition, exact totals), both
//! shared with the crate's unit tests; and a small random generator.

#![allow(dead_code)]

use std::time::Duration;

use pvlock::RawLock;

mod exclusion;
mod watchdog;
// Not every test file uses every item.
#[allow(unused_imports)]
pub use exclusion::{exclusion, Rng, Run};
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

/// `threads` threads each take a new lock `L` `total / threads` times (1 in 16 via `try_lock`
/// first, with up to 64 spin hints of random work between acquisitions), or fewer if the run
/// reaches `cap` ([`exclusion`]).
pub fn stress<L: RawLock + lock_api::RawMutex + core::fmt::Debug>(
    name: &str,
    threads: usize,
    total: u64,
    cap: Duration,
) {
    let lock = <L as lock_api::RawMutex>::INIT;
    let run = Run {
        threads,
        per_thread: (total / threads as u64).max(1),
        hold: Duration::ZERO,
        cap: Some(cap),
        try_one_in: 16,
        think: 64,
    };
    exclusion(&format!("{name} x{threads}"), &lock, &run, |_| {});
}
