//! Running one benchmark cell (one lock, workload and thread count for a fixed time), and the CPU
//! hog antagonists.
//!
//! A cell: spawn the workers, wait until all are parked at the start gate, take the usage and
//! lock-event snapshots, open the gate, sleep `--duration`, set the stop flag. Each worker checks
//! the flag after every acquisition, so a worker still waiting for the lock when the flag is set
//! finishes its acquisition first: with a pathological lock (a FIFO spin lock whose next ticket
//! holder is preempted) a cell's wall time can exceed `--duration`. Throughput is always the work
//! done over the wall time it really took. If the workers are not all done [`hard_timeout`] after
//! the stop flag, the cell is reported as *stalled* with what it did until then; the bench then
//! waits up to [`DRAIN_LIMIT`] more for the workers to drain (so they do not disturb the next cell)
//! and otherwise leaves them behind and says so.
//!
//! A *short-lived* cell (`--scenarios short-lived`) runs rounds until `--duration` is over: each
//! round spawns `threads` fresh threads that do `--acquisitions` acquisitions each and exit; the
//! time from the first spawn to the last join is the round's wall time, and throughput is all
//! acquisitions over the rounds' wall times. The stop flag ends a round still running at the end
//! of `--duration` (it counts with the acquisitions it made), and the same stall rules apply.

use crate::hist::{self, Histogram};
use crate::locks::{with_family, with_rw_family, Family, RwFamily};
use crate::machine::Usage;
use crate::workload::{spin_work, Counter, HashTable, Random, Rng, RwTable, Stats, Work};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long after the stop flag a cell may take before it is reported as stalled.
pub fn hard_timeout(duration: Duration) -> Duration {
    duration.max(Duration::from_secs(1))
}

/// How long the bench waits for the workers of a stalled cell before leaving them behind.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// One acquisition in this many is timed (chosen at random per thread, so never in lock-step).
pub const SAMPLE_EVERY: u64 = 8;

/// What to run.
#[derive(Debug, Clone)]
pub struct CellSpec {
    pub workload: &'static str,
    pub cs: u32,
    pub ncs: u64,
    pub buckets: usize,
    pub threads: usize,
    pub duration: Duration,
    /// The random workload's number of locks.
    pub nlocks: usize,
    /// `Some(n)`: short-lived threads, a fresh set per round, `n` acquisitions each.
    pub short_lived: Option<u64>,
    /// The rwlock workload's share of reads, in percent.
    pub read_pct: u32,
}

/// What one cell measured.
pub struct CellOut {
    pub per_thread: Vec<u64>,
    /// Of those, the writes (the rwlock workload; all 0 otherwise).
    pub per_thread_writes: Vec<u64>,
    pub elapsed: Duration,
    pub hist: Histogram,
    pub usage: Usage,
    pub stats: pvlock::stats::Snapshot,
    pub pvlock: bool,
    pub stalled: bool,
    /// Workers that never finished (left running).
    pub leaked: usize,
    /// Acquisitions counted inside the protected data, if all workers finished.
    pub counted: Option<u64>,
    /// The threads' own total once all finished (exceeds the reported total for a stalled cell).
    pub final_ops: u64,
    /// Rounds of fresh threads (short-lived cells; 0 otherwise).
    pub rounds: u64,
}

#[repr(align(128))]
struct Padded(AtomicU64);

struct Gate {
    ready: usize,
    go: bool,
    done: usize,
    hist: Histogram,
}

struct Ctl {
    stop: AtomicBool,
    counts: Vec<Padded>,
    writes: Vec<Padded>,
    gate: Mutex<Gate>,
    cv: Condvar,
}

/// Runs one cell of lock `lock`; `None` for an unknown lock id.
pub fn run_cell(lock: &str, spec: &CellSpec) -> Option<Result<CellOut, String>> {
    if spec.workload == "rwlock" {
        return with_rw_family!(lock, run_rw_family(spec));
    }
    with_family!(lock, run_family(spec))
}

fn run_rw_family<F: RwFamily>(spec: &CellSpec) -> Result<CellOut, String> {
    let mut out = run_work(Arc::new(RwTable::<F>::new(spec.read_pct)), spec)?;
    out.pvlock = F::PVLOCK;
    Ok(out)
}

fn run_family<F: Family>(spec: &CellSpec) -> Result<CellOut, String> {
    let mut out = match spec.workload {
        "hashtable" => run_work(Arc::new(HashTable::<F>::new(spec.buckets)), spec),
        "stats" => run_work(Arc::new(Stats::<F>::new()), spec),
        "random" => run_work(Arc::new(Random::<F>::new(spec.nlocks)), spec),
        _ => run_work(Arc::new(Counter::<F>::new(spec.cs)), spec),
    }?;
    out.pvlock = F::PVLOCK;
    Ok(out)
}

fn lock_gate(ctl: &Ctl) -> std::sync::MutexGuard<'_, Gate> {
    ctl.gate.lock().unwrap_or_else(|e| e.into_inner())
}

/// The measured loop of one thread: up to `quota` acquisitions, each after a random amount of
/// non-critical work, until `stop`; returns the acquisitions made. Progress goes to `count`,
/// sampled latencies to `h`.
///
/// Never inlined: each lock and workload gets a loop of its own under a symbol of its own
/// (`acquire_loop::<Counter<PvMutex>>` in a profile). Its code placement measured as noise: two
/// copies of the same lock's loop (pvlock and queued-auto) at different addresses differed by
/// 0.91-1.06x in per-run medians, with or without this attribute and `-align-loops=64`, while
/// consecutive 200 ms cells of one lock varied 1.5x with the machine's speed.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn acquire_loop<W: Work>(
    w: &W,
    rng: &mut Rng,
    ncs: u64,
    quota: u64,
    stop: &AtomicBool,
    count: &AtomicU64,
    write_count: &AtomicU64,
    h: &mut hist::Recorder,
) -> u64 {
    let mut ops = 0u64;
    let mut writes = 0u64;
    let span = 2 * ncs + 1;
    while ops < quota {
        if ncs > 0 {
            let n = rng.below(span);
            spin_work(n, ops);
        }
        let sample = rng.below(SAMPLE_EVERY) == 0;
        let (lat, write) = w.op_rw(rng, sample);
        ops += 1;
        if write {
            writes += 1;
            // Relaxed: as `count` below.
            write_count.store(writes, Ordering::Relaxed);
        }
        if sample {
            h.record(hist::ticks_to_ns(lat));
        }
        // Relaxed: a progress report for the measuring thread; a plain store to our own line.
        count.store(ops, Ordering::Relaxed);
        // Relaxed: the flag carries no data; a late view costs one more acquisition.
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    ops
}

fn seed(idx: usize) -> Rng {
    Rng::new((idx as u64 + 1) ^ hist::now().rotate_left(17))
}

fn worker<W: Work>(w: &W, ctl: &Ctl, idx: usize, ncs: u64) {
    let mut rng = seed(idx);
    {
        let mut g = lock_gate(ctl);
        g.ready += 1;
        ctl.cv.notify_all();
        while !g.go {
            g = ctl.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
    let mut h = hist::Recorder::default();
    acquire_loop(
        w,
        &mut rng,
        ncs,
        u64::MAX,
        &ctl.stop,
        &ctl.counts[idx].0,
        &ctl.writes[idx].0,
        &mut h,
    );
    let mut g = lock_gate(ctl);
    h.add_to(&mut g.hist);
    g.done += 1;
    ctl.cv.notify_all();
}

fn run_work<W: Work>(w: Arc<W>, spec: &CellSpec) -> Result<CellOut, String> {
    if let Some(quota) = spec.short_lived {
        return run_short_lived(w, spec, quota);
    }
    let n = spec.threads;
    let ctl = Arc::new(Ctl {
        stop: AtomicBool::new(false),
        counts: (0..n).map(|_| Padded(AtomicU64::new(0))).collect(),
        writes: (0..n).map(|_| Padded(AtomicU64::new(0))).collect(),
        gate: Mutex::new(Gate {
            ready: 0,
            go: false,
            done: 0,
            hist: hist::histogram(),
        }),
        cv: Condvar::new(),
    });
    let mut handles = Vec::with_capacity(n);
    let mut spawn_err = None;
    for idx in 0..n {
        let (w, c, ncs) = (w.clone(), ctl.clone(), spec.ncs);
        match std::thread::Builder::new()
            .name(format!("bench-{idx}"))
            .stack_size(256 << 10)
            .spawn(move || worker(&*w, &c, idx, ncs))
        {
            Ok(h) => handles.push(h),
            Err(e) => {
                spawn_err = Some(format!("cannot start worker thread {idx} of {n}: {e}"));
                break;
            }
        }
    }
    let spawned = handles.len();
    {
        let mut g = lock_gate(&ctl);
        while spawn_err.is_none() && g.ready < spawned {
            g = ctl.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
    let stats0 = pvlock::stats::snapshot();
    let usage0 = Usage::now();
    let t0 = Instant::now();
    {
        let mut g = lock_gate(&ctl);
        g.go = true;
        if spawn_err.is_some() {
            // Release: not needed for data; the flag just ends the spawned workers at once.
            ctl.stop.store(true, Ordering::Relaxed);
        }
        ctl.cv.notify_all();
    }
    if spawn_err.is_none() {
        std::thread::sleep(spec.duration);
        // Relaxed: see `worker`.
        ctl.stop.store(true, Ordering::Relaxed);
    }
    let deadline = Instant::now() + hard_timeout(spec.duration);
    let mut g = lock_gate(&ctl);
    while g.done < spawned && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        g = ctl
            .cv
            .wait_timeout(g, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    let elapsed = t0.elapsed();
    let stalled = g.done < spawned;
    let usage = Usage::now().since(&usage0);
    let stats = pvlock::stats::snapshot().since(&stats0);
    // Relaxed: progress counters; exact for finished workers (their exit went through the gate
    // mutex), a lower bound for stalled ones.
    let per_thread: Vec<u64> = ctl
        .counts
        .iter()
        .map(|c| c.0.load(Ordering::Relaxed))
        .collect();
    let per_thread_writes: Vec<u64> = ctl
        .writes
        .iter()
        .map(|c| c.0.load(Ordering::Relaxed))
        .collect();
    if stalled {
        let drain = Instant::now() + DRAIN_LIMIT;
        while g.done < spawned && Instant::now() < drain {
            let left = drain.saturating_duration_since(Instant::now());
            g = ctl
                .cv
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
    let leaked = spawned - g.done;
    // Relaxed: as above; exact once every worker went through the gate mutex.
    let final_ops: u64 = ctl.counts.iter().map(|c| c.0.load(Ordering::Relaxed)).sum();
    let hist = std::mem::replace(&mut g.hist, hist::histogram());
    drop(g);
    if let Some(e) = spawn_err {
        for h in handles {
            let _ = h.join();
        }
        return Err(e);
    }
    let counted = if leaked == 0 {
        for h in handles {
            if h.join().is_err() {
                return Err("a worker thread panicked".into());
            }
        }
        Some(w.counted())
    } else {
        None // the stuck workers still hold or wait for the lock: leave them detached
    };
    Ok(CellOut {
        per_thread,
        per_thread_writes,
        elapsed,
        hist,
        usage,
        stats,
        pvlock: false,
        stalled,
        leaked,
        counted,
        final_ops,
        rounds: 0,
    })
}

/// One short-lived thread: its acquisitions, then its recorder back for the next round.
fn short_lived_thread<W: Work>(
    w: &W,
    ctl: &Ctl,
    idx: usize,
    ncs: u64,
    quota: u64,
    mut h: hist::Recorder,
) -> hist::Recorder {
    let mut rng = seed(idx);
    let count = AtomicU64::new(0);
    let writes = AtomicU64::new(0);
    let ops = acquire_loop(w, &mut rng, ncs, quota, &ctl.stop, &count, &writes, &mut h);
    // Relaxed: a total for the measuring thread, read after it saw `done` through the mutex.
    ctl.counts[idx].0.fetch_add(ops, Ordering::Relaxed);
    ctl.writes[idx]
        .0
        .fetch_add(writes.load(Ordering::Relaxed), Ordering::Relaxed);
    let mut g = lock_gate(ctl);
    g.done += 1;
    ctl.cv.notify_all();
    h
}

/// A short-lived cell: rounds of fresh threads until `spec.duration` is over (module docs).
fn run_short_lived<W: Work>(w: Arc<W>, spec: &CellSpec, quota: u64) -> Result<CellOut, String> {
    let n = spec.threads;
    let ctl = Arc::new(Ctl {
        stop: AtomicBool::new(false),
        counts: (0..n).map(|_| Padded(AtomicU64::new(0))).collect(),
        writes: (0..n).map(|_| Padded(AtomicU64::new(0))).collect(),
        gate: Mutex::new(Gate {
            ready: 0,
            go: true,
            done: 0,
            hist: hist::histogram(),
        }),
        cv: Condvar::new(),
    });
    // The threads' recorders, made outside the timed rounds and handed from round to round.
    let mut recorders: Vec<hist::Recorder> = (0..n).map(|_| hist::Recorder::default()).collect();
    let stats0 = pvlock::stats::snapshot();
    let usage0 = Usage::now();
    let end = Instant::now() + spec.duration;
    let mut elapsed = Duration::ZERO;
    let mut rounds = 0u64;
    let mut stalled = false;
    let mut leaked = 0;
    while !stalled && Instant::now() < end {
        lock_gate(&ctl).done = 0;
        let t0 = Instant::now();
        let mut handles = Vec::with_capacity(n);
        for (idx, h) in recorders.drain(..).enumerate() {
            let (w, c, ncs) = (w.clone(), ctl.clone(), spec.ncs);
            let spawned = std::thread::Builder::new()
                .name(format!("bench-{idx}"))
                .stack_size(256 << 10)
                .spawn(move || short_lived_thread(&*w, &c, idx, ncs, quota, h));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Relaxed: see `worker`; the started threads end at once.
                    ctl.stop.store(true, Ordering::Relaxed);
                    for h in handles {
                        let _ = h.join();
                    }
                    return Err(format!("cannot start worker thread {idx} of {n}: {e}"));
                }
            }
        }
        let mut g = lock_gate(&ctl);
        let mut deadline = end;
        let mut stop_set = false;
        while g.done < n {
            let now = Instant::now();
            if now >= deadline {
                if stop_set {
                    break;
                }
                // Relaxed: see `worker`.
                ctl.stop.store(true, Ordering::Relaxed);
                stop_set = true;
                deadline = now + hard_timeout(spec.duration);
                continue;
            }
            g = ctl
                .cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let all_done = g.done == n;
        drop(g);
        if all_done {
            for h in handles {
                recorders.push(
                    h.join()
                        .map_err(|_| "a worker thread panicked".to_string())?,
                );
            }
            elapsed += t0.elapsed(); // up to the last thread's exit
        } else {
            elapsed += t0.elapsed(); // up to the stall verdict, as in a long-lived cell
            stalled = true;
            let drain = Instant::now() + DRAIN_LIMIT;
            let mut g = lock_gate(&ctl);
            while g.done < n && Instant::now() < drain {
                let left = drain.saturating_duration_since(Instant::now());
                g = ctl
                    .cv
                    .wait_timeout(g, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            leaked = n - g.done;
            drop(g);
            if leaked == 0 {
                for h in handles {
                    recorders.push(
                        h.join()
                            .map_err(|_| "a worker thread panicked".to_string())?,
                    );
                }
            } // else the stuck threads still hold or wait for the lock: leave them detached
        }
        rounds += 1;
    }
    let usage = Usage::now().since(&usage0);
    let stats = pvlock::stats::snapshot().since(&stats0);
    let mut hist = hist::histogram();
    for r in &recorders {
        r.add_to(&mut hist);
    }
    // Relaxed: every finished thread's total was added before it went through the gate mutex.
    let per_thread: Vec<u64> = ctl
        .counts
        .iter()
        .map(|c| c.0.load(Ordering::Relaxed))
        .collect();
    let final_ops = per_thread.iter().sum();
    // Relaxed: as above.
    let per_thread_writes: Vec<u64> = ctl
        .writes
        .iter()
        .map(|c| c.0.load(Ordering::Relaxed))
        .collect();
    Ok(CellOut {
        per_thread,
        per_thread_writes,
        elapsed,
        hist,
        usage,
        stats,
        pvlock: false,
        stalled,
        leaked,
        counted: (leaked == 0).then(|| w.counted()),
        final_ops,
        rounds,
    })
}

/// CPU-hog antagonist processes (`pvlock hog`), killed and reaped on drop.
pub struct Hogs(Vec<Child>);

impl Hogs {
    /// Starts `n` hogs (they inherit this process's CPU affinity).
    pub fn start(n: usize) -> Result<Hogs, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
        let mut hogs = Hogs(Vec::with_capacity(n));
        let me = std::process::id().to_string();
        for _ in 0..n {
            let child = Command::new(&exe)
                .arg("hog")
                .arg(&me)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start CPU hog process: {e}"))?;
            hogs.0.push(child); // on error above, `hogs` drops and reaps those started
        }
        if n > 0 {
            std::thread::sleep(Duration::from_millis(50)); // let them reach their loop
        }
        Ok(hogs)
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

/// `pvlock hog PARENT_PID`: burn CPU until killed or the parent dies.
pub fn hog_main(parent: Option<&str>) -> Result<u8, crate::CliError> {
    // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number has no memory effects.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    // The parent may have died before the prctl: then we were re-parented; exit.
    let parent: Option<i32> = parent.and_then(|a| a.parse().ok());
    // SAFETY: getppid has no preconditions.
    if parent.is_some_and(|p| p != unsafe { libc::getppid() }) {
        return Ok(0);
    }
    let mut x = 1u64;
    loop {
        spin_work(1 << 20, x);
        x = x.wrapping_add(1);
    }
}
