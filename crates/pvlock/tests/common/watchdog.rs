//! The progress watchdog: runs worker threads and turns a stall (a lost wake-up) into a test
//! failure within seconds instead of a hang. Shared by the integration tests (`common`) and the
//! crate's unit tests (`testutil`, which includes this file by path); it depends only on `std` (and names even its prelude items by path: the crate is `no_std`).

#![allow(dead_code)]

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long the workers may go without any progress before the watchdog fails the test.
/// Generous: the machine is shared, and a spin lock with 8x more threads than CPUs can take
/// milliseconds per hand-off; a lost wake-up stalls forever.
pub const STALL: Duration = Duration::from_secs(10);

/// One worker's progress counter, on its own cache line.
#[repr(align(128))]
struct Counter(AtomicU64);

/// What a worker thread sees: its index, a progress tick and the stop request.
pub struct Worker<'a> {
    /// 0-based index of this worker.
    pub id: usize,
    progress: &'a AtomicU64,
    stop: &'a AtomicBool,
}

impl Worker<'_> {
    /// Records one unit of progress (e.g. one completed acquisition).
    #[inline]
    pub fn tick(&self) {
        // Relaxed: a monotonic counter read only by the watchdog.
        self.progress
            .store(self.progress.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Whether the watchdog asked the workers to stop (they should return soon).
    #[inline]
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Runs `work` on `threads` scoped threads and watches their progress (see [`watched_with`]).
pub fn watched<F>(name: &str, threads: usize, work: F)
where
    F: Fn(&Worker<'_>) + Sync,
{
    watched_with(name, threads, STALL, std::string::String::new, work)
}

/// Runs `work` on `threads` scoped threads, each given a [`Worker`], while the calling thread
/// watches the sum of their [`Worker::tick`]s. If no worker ticks (or finishes) for `stall`, the
/// watchdog:
///
/// 1. prints the test name, `state()` (e.g. the lock's `is_locked`/`is_contended`) and every
///    worker's progress and whether it finished, directly to stderr (not captured by libtest);
/// 2. asks the workers to stop and waits one more second;
/// 3. if they all returned, panics with that message (an ordinary test failure);
///    otherwise they are stuck in the lock and cannot be joined: the process aborts.
///
/// A panic in a worker propagates as usual.
pub fn watched_with<F, S>(name: &str, threads: usize, stall: Duration, state: S, work: F)
where
    F: Fn(&Worker<'_>) + Sync,
    S: Fn() -> std::string::String + Sync,
{
    let progress: std::vec::Vec<Counter> =
        (0..threads).map(|_| Counter(AtomicU64::new(0))).collect();
    let finished: std::vec::Vec<AtomicBool> =
        (0..threads).map(|_| AtomicBool::new(false)).collect();
    let done = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);

    std::thread::scope(|s| {
        for id in 0..threads {
            let (work, progress, finished, done, stop) =
                (&work, &progress, &finished, &done, &stop);
            s.spawn(move || {
                // Counts the worker as finished even when it panics, so the watchdog does not
                // mistake a failed assertion for a hang.
                struct Finish<'a>(&'a AtomicBool, &'a AtomicUsize);
                impl Drop for Finish<'_> {
                    fn drop(&mut self) {
                        self.0.store(true, Ordering::Relaxed);
                        self.1.fetch_add(1, Ordering::Release);
                    }
                }
                let _finish = Finish(&finished[id], done);
                work(&Worker {
                    id,
                    progress: &progress[id].0,
                    stop,
                });
            });
        }

        let sum = || -> u64 { progress.iter().map(|c| c.0.load(Ordering::Relaxed)).sum() };
        let mut last = (0u64, 0usize);
        let mut since = Instant::now();
        loop {
            let finished_now = done.load(Ordering::Acquire);
            if finished_now == threads {
                return;
            }
            let now = (sum(), finished_now);
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= stall {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }

        // Stalled.
        let per_worker: std::vec::Vec<std::string::String> = progress
            .iter()
            .zip(&finished)
            .map(|(c, f)| {
                let n = c.0.load(Ordering::Relaxed);
                if f.load(Ordering::Relaxed) {
                    std::format!("{n}(done)")
                } else {
                    std::format!("{n}")
                }
            })
            .collect();
        let message = std::format!(
            "watchdog: {name}: no progress for {:.1}s with {} of {threads} workers unfinished; \
             state: {}; progress per worker: [{}]",
            stall.as_secs_f64(),
            threads - done.load(Ordering::Acquire),
            state(),
            per_worker.join(", "),
        );
        let _ = writeln!(std::io::stderr(), "{message}");
        stop.store(true, Ordering::Relaxed);
        let grace = Instant::now();
        while done.load(Ordering::Acquire) < threads {
            if grace.elapsed() > Duration::from_secs(1) {
                let _ = writeln!(
                    std::io::stderr(),
                    "watchdog: {name}: workers are stuck and cannot be joined: aborting"
                );
                std::process::abort();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{message}");
    });
}
