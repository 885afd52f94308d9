//! `pvlock torture`: the kernel's locktorture (kernel/locking/locktorture.c) for every pvlock lock.
//!
//! For each lock in turn, `--writers` threads (default 2 x CPUs, like `nwriters_stress`) acquire
//! and release one shared lock for `--duration`, and check mutual exclusion on every acquisition:
//!
//! * an owner field `in_cs` must be 0 on entry and still hold the writer's id on exit;
//! * `is_locked()` must be true inside the critical section;
//! * a counter is incremented non-atomically (a separate load and store, the load on entry and
//!   the store on exit), so a second writer inside the section loses an update; at the end the
//!   counter must equal the number of acquisitions.
//!
//! The owner field and the counter are relaxed atomics accessed only with plain loads and stores:
//! on every machine this compiles to exactly the plain accesses the kernel uses, but a lock that
//! lets two writers in (the hidden `broken` lock, used by the tests to prove that failures are
//! detected) causes a *detected* race instead of undefined behaviour.
//!
//! Like the kernel's `torture_spin_lock_write_delay`, most holds are short, some last ~2 us, and
//! rarely a writer holds the lock for 1-10 ms, sleeps inside the critical section or yields the
//! CPU there. Writers take the lock with `lock()`, sometimes with `try_lock()` first, and
//! periodically move themselves to one random CPU and back to all (the kernel's shuffler).
//!
//! Every `--stat-interval` the kernel's statistics line is printed:
//! `Writes: Total: N Max/Min: a/b Fail: k` (cumulative acquisitions, the most and fewest of one
//! writer, failed checks), with `???` after Max/Min when max/2 > min (unfair) and `!!!` after
//! Fail when k > 0. (The kernel puts two spaces between fields and prints Fail as 0/1; here fields
//! are separated by one space and Fail counts failed checks.)
//!
//! A watchdog ends the run if no acquisition completes for `--watchdog` while writers are still
//! active (a lost wake-up or a deadlock): it prints the lock, how long, its `is_locked` and
//! `is_contended` state and what the writers are doing, then `End of test: FAILURE`, and exits
//! with code 1 without waiting for the stuck threads.

use crate::workload::Rng;
use crate::{args, machine, CliError};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pvlock::backend::{Auto, Park, Spin};
use pvlock::byte::Byte;
use pvlock::queued::Queued;
use pvlock::ticket::Ticket;
use pvlock::RawLock;

#[cfg(target_os = "linux")]
use pvlock::backend::Futex;

// ---------------------------------------------------------------------------------------------
// Locks under test
// ---------------------------------------------------------------------------------------------

/// The operations the torture test needs; every pvlock lock provides them through [`RawLock`].
/// The test-only locks implement this trait (and not `RawLock`, whose contract they break).
trait TortureLock: Send + Sync {
    fn lock(&self);
    fn try_lock(&self) -> bool;
    /// # Safety
    /// The lock must be held.
    unsafe fn unlock(&self);
    fn is_locked(&self) -> bool;
    fn is_contended(&self) -> bool;
    /// Reader-writer locks: takes a read lock and returns `true`; a mutex returns `false` (it
    /// has no readers).
    fn read_lock(&self) -> bool {
        false
    }
    /// Releases a read lock.
    ///
    /// # Safety
    /// A read lock taken with `read_lock` must be held.
    unsafe fn read_unlock(&self) {}
}

/// pvlock's queued rwlock: writers take the write lock through [`TortureLock`], readers the
/// read lock.
struct RwTorture<B: pvlock::backend::Backend>(pvlock::rwlock::QueuedRwLock<B>);

impl<B: pvlock::backend::Backend> RwTorture<B> {
    fn new() -> Self {
        RwTorture(pvlock::rwlock::QueuedRwLock::new())
    }
}

impl<B: pvlock::backend::Backend> TortureLock for RwTorture<B> {
    fn lock(&self) {
        self.0.write()
    }
    fn try_lock(&self) -> bool {
        self.0.try_write()
    }
    unsafe fn unlock(&self) {
        // SAFETY: the caller holds the write lock.
        unsafe { self.0.write_unlock() }
    }
    fn is_locked(&self) -> bool {
        self.0.is_locked_exclusive()
    }
    fn is_contended(&self) -> bool {
        self.0.is_contended()
    }
    fn read_lock(&self) -> bool {
        self.0.read();
        true
    }
    unsafe fn read_unlock(&self) {
        // SAFETY: the caller holds a read lock.
        unsafe { self.0.read_unlock() }
    }
}

impl<L: RawLock> TortureLock for L {
    #[inline]
    fn lock(&self) {
        RawLock::lock(self)
    }
    #[inline]
    fn try_lock(&self) -> bool {
        RawLock::try_lock(self)
    }
    #[inline]
    unsafe fn unlock(&self) {
        // SAFETY: the caller holds the lock.
        unsafe { RawLock::unlock(self) }
    }
    #[inline]
    fn is_locked(&self) -> bool {
        RawLock::is_locked(self)
    }
    #[inline]
    fn is_contended(&self) -> bool {
        RawLock::is_contended(self)
    }
}

/// Test-only: a test-and-set lock that now and then lets a writer in although the lock is held.
/// Not mutually exclusive on purpose: `--locks broken` must end with FAILURE.
struct Broken {
    holders: AtomicU32,
    rng: AtomicU64,
}

impl Broken {
    fn new() -> Self {
        Broken {
            holders: AtomicU32::new(0),
            rng: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
        }
    }
    /// One time in 32, barge in regardless of the holder.
    fn barge(&self) -> bool {
        let x = self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        mix(x).is_multiple_of(32)
    }
}

impl TortureLock for Broken {
    fn lock(&self) {
        if self.barge() {
            self.holders.fetch_add(1, Ordering::Acquire);
            return;
        }
        while !self.try_lock() {
            std::hint::spin_loop();
        }
    }
    fn try_lock(&self) -> bool {
        if self.barge() {
            self.holders.fetch_add(1, Ordering::Acquire);
            return true;
        }
        self.holders
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
    unsafe fn unlock(&self) {
        self.holders.fetch_sub(1, Ordering::Release);
    }
    fn is_locked(&self) -> bool {
        self.holders.load(Ordering::Relaxed) != 0
    }
    fn is_contended(&self) -> bool {
        self.holders.load(Ordering::Relaxed) > 1
    }
}

/// Test-only: a correct lock whose unlock, after a while, "forgets" to release once — every
/// writer then waits forever, as after a lost wake-up. `--locks stuck` must end with the
/// watchdog's FAILURE.
struct Stuck {
    inner: Ticket<Spin>,
    unlocks: AtomicU64,
}

impl TortureLock for Stuck {
    fn lock(&self) {
        self.inner.lock()
    }
    fn try_lock(&self) -> bool {
        self.inner.try_lock()
    }
    unsafe fn unlock(&self) {
        if self.unlocks.fetch_add(1, Ordering::Relaxed) == 2000 {
            return; // the lost release
        }
        // SAFETY: the caller holds the lock.
        unsafe { self.inner.unlock() }
    }
    fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }
    fn is_contended(&self) -> bool {
        self.inner.is_contended()
    }
}

/// Test-only: a correct mutex for writers whose readers take no lock at all: `--locks broken-rw`
/// must end with FAILURE (readers see writers inside).
struct BrokenRw(Ticket<Spin>);

impl TortureLock for BrokenRw {
    fn lock(&self) {
        self.0.lock()
    }
    fn try_lock(&self) -> bool {
        self.0.try_lock()
    }
    unsafe fn unlock(&self) {
        // SAFETY: the caller holds the lock.
        unsafe { self.0.unlock() }
    }
    fn is_locked(&self) -> bool {
        self.0.is_locked()
    }
    fn is_contended(&self) -> bool {
        self.0.is_contended()
    }
    fn read_lock(&self) -> bool {
        true // no exclusion at all
    }
}

/// A lock id (the names `pvlock bench` uses too) and how to make one.
#[derive(Clone)]
pub struct LockKind {
    id: &'static str,
    make: fn() -> Box<dyn TortureLock>,
}

macro_rules! kind {
    ($id:literal, $ty:ty) => {
        LockKind {
            id: $id,
            make: || Box::new(<$ty>::new()),
        }
    };
}

/// The locks `--locks all` runs, in order.
fn public_locks() -> Vec<LockKind> {
    vec![
        kind!("ticket-spin", Ticket<Spin>),
        #[cfg(target_os = "linux")]
        kind!("ticket-futex", Ticket<Futex>),
        kind!("ticket-park", Ticket<Park>),
        kind!("ticket-auto", Ticket<Auto>),
        kind!("byte-spin", Byte<Spin>),
        #[cfg(target_os = "linux")]
        kind!("byte-futex", Byte<Futex>),
        kind!("byte-park", Byte<Park>),
        kind!("byte-auto", Byte<Auto>),
        kind!("queued-spin", Queued<Spin>),
        #[cfg(target_os = "linux")]
        kind!("queued-futex", Queued<Futex>),
        kind!("queued-park", Queued<Park>),
        kind!("queued-auto", Queued<Auto>),
        kind!("pvlock", pvlock::RawMutex),
        kind!("rwlock-spin", RwTorture<Spin>),
        #[cfg(target_os = "linux")]
        kind!("rwlock-futex", RwTorture<Futex>),
        kind!("rwlock-park", RwTorture<Park>),
        kind!("rwlock-auto", RwTorture<Auto>),
        kind!("dyn", pvlock::RawDynMutex),
    ]
}

/// Test-only locks: accepted by `--locks`, never listed.
fn hidden_locks() -> Vec<LockKind> {
    vec![
        LockKind {
            id: "broken",
            make: || Box::new(Broken::new()),
        },
        LockKind {
            id: "broken-rw",
            make: || Box::new(BrokenRw(Ticket::new())),
        },
        LockKind {
            id: "stuck",
            make: || {
                Box::new(Stuck {
                    inner: Ticket::new(),
                    unlocks: AtomicU64::new(0),
                })
            },
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

const MAX_WRITERS: usize = 4096;
const MS: Duration = Duration::from_millis(1);
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

struct Config {
    locks: Vec<LockKind>,
    writers: usize,
    readers: usize,
    duration: Duration,
    stat_interval: Duration,
    watchdog: Duration,
    shuffle: Duration,
}

/// `--locks`: the locks to run, in order.
#[derive(Clone)]
pub struct Locks(Vec<LockKind>);

/// `pvlock torture` options.
#[derive(Clone, clap::Args)]
pub struct TortureArgs {
    /// Lock ids (see Locks below), comma-separated, or `all`.
    #[arg(long, value_name = "LIST", default_value = "all", value_parser = parse_locks)]
    locks: Locks,
    /// Writer threads per lock [default: 2 x CPUs, like the kernel's nwriters_stress].
    #[arg(long, value_name = "N", default_value_t = 2 * cpus(), hide_default_value = true, value_parser = args::number(1usize, MAX_WRITERS), allow_hyphen_values = true)]
    writers: usize,
    /// Reader threads per reader-writer lock (the rwlock-* locks) [default: as many as writers,
    /// like the kernel's nreaders_stress].
    #[arg(long, value_name = "N", value_parser = args::number(0usize, MAX_WRITERS), allow_hyphen_values = true)]
    readers: Option<usize>,
    /// Test time per lock, from 1ms to 24h.
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = args::duration(MS, MAX_DURATION), allow_hyphen_values = true)]
    duration: Duration,
    /// Time between statistics lines, from 10ms to 24h.
    #[arg(long, value_name = "TIME", default_value = "2s", value_parser = args::duration(10 * MS, MAX_DURATION), allow_hyphen_values = true)]
    stat_interval: Duration,
    /// Fail (exit 1) if no acquisition completes for this long, from 100ms to 24h.
    #[arg(long, value_name = "TIME", default_value = "5s", value_parser = args::duration(100 * MS, MAX_DURATION), allow_hyphen_values = true)]
    watchdog: Duration,
    /// How often each writer moves to a random CPU or back to all, from 1ms to 24h.
    #[arg(long = "shuffle-interval", value_name = "TIME", default_value = "100ms", value_parser = args::duration(MS, MAX_DURATION), allow_hyphen_values = true)]
    shuffle: Duration,
}

/// `pvlock torture --help`'s text after the options.
pub fn after_help() -> String {
    let ids: Vec<&str> = public_locks().iter().map(|k| k.id).collect();
    format!(
        "Locks: {}\n\
         \x20 (`dyn` is pvlock::DynMutex, its algorithm chosen by the PVLOCK variable)\n\n\
         {}\n\
         Output: per lock a header, then every --stat-interval\n\
         \x20 Writes: Total: N Max/Min: a/b [???] Fail: k [!!!]\n\
         (cumulative acquisitions, the most and fewest of one writer, failed checks; ??? = max/2 >\n\
         min, !!! = mutual exclusion violated). The last line is `End of test: SUCCESS` (exit 0) or\n\
         `End of test: FAILURE` (exit 1). Bad arguments: one line on stderr, exit 2.\n\n\
         Examples:\n\
         \x20 pvlock torture                                 every lock, 10 s each\n\
         \x20 pvlock torture --locks pvlock,ticket-futex --duration 1m --writers 16\n\
         \x20 PVLOCK=byte:park pvlock torture --locks dyn --watchdog 2s",
        ids.join(", "),
        args::DURATIONS
    )
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn parse_locks(list: &str) -> Result<Locks, String> {
    let valid = || {
        let ids: Vec<&str> = public_locks().iter().map(|k| k.id).collect();
        format!("{}, all", ids.join(", "))
    };
    let mut out: Vec<LockKind> = Vec::new();
    for name in list.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(format!(
                "'{list}' has an empty name; valid locks: {}",
                valid()
            ));
        }
        if name == "all" {
            for k in public_locks() {
                if !out.iter().any(|o| o.id == k.id) {
                    out.push(k);
                }
            }
            continue;
        }
        let found = public_locks()
            .into_iter()
            .chain(hidden_locks())
            .find(|k| k.id == name);
        match found {
            Some(k) if !out.iter().any(|o| o.id == k.id) => out.push(k),
            Some(_) => {}
            None => return Err(format!("unknown lock '{name}'; valid locks: {}", valid())),
        }
    }
    Ok(Locks(out))
}

// ---------------------------------------------------------------------------------------------
// Randomness and delays
// ---------------------------------------------------------------------------------------------

/// splitmix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Busy-waits (the kernel's `udelay`/`mdelay`): the holder keeps its CPU.
fn busy_wait(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

// ---------------------------------------------------------------------------------------------
// CPU shuffling
// ---------------------------------------------------------------------------------------------

/// Moves the calling writer between CPUs: to one random CPU of the allowed set, or back to all.
/// Failures (e.g. a CPU went offline) are ignored: shuffling is a stress, not a requirement.
struct Shuffler {
    /// The allowed CPUs, if more than one.
    all: Option<Vec<usize>>,
    pinned: bool,
}

impl Shuffler {
    fn new() -> Self {
        let all = machine::affinity();
        Shuffler {
            all: (all.len() > 1).then_some(all),
            pinned: false,
        }
    }

    fn shuffle(&mut self, rng: &mut Rng) {
        if let Some(all) = &self.all {
            if self.pinned {
                let _ = machine::set_affinity(all);
                self.pinned = false;
            } else {
                let cpu = all[rng.below(all.len() as u64) as usize];
                let _ = machine::set_affinity(&[cpu]);
                self.pinned = true;
            }
        }
    }

    fn restore(&mut self) {
        if let (Some(all), true) = (&self.all, self.pinned) {
            let _ = machine::set_affinity(all);
        }
        self.pinned = false;
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// Writer phases, for the watchdog's report.
const OUTSIDE: u8 = 0;
const ACQUIRING: u8 = 1;
const INSIDE: u8 = 2;
const DONE: u8 = 3;

/// One writer's counters, on their own cache lines (written by the writer only).
#[repr(align(128))]
struct WriterStats {
    acquired: AtomicU64,
    fails: AtomicU64,
    phase: AtomicU8,
}

struct Shared {
    lock: Box<dyn TortureLock>,
    /// Id + 1 of the writer inside the critical section, 0 = none. Plain loads and stores only.
    in_cs: AtomicU64,
    /// Incremented by a plain load on entry and a plain store on exit.
    counter: AtomicU64,
    stop: AtomicBool,
    writers: Vec<WriterStats>,
    /// Readers of a reader-writer lock (empty for a mutex).
    readers: Vec<WriterStats>,
    /// Readers inside their read section now.
    readers_in: AtomicU64,
}

impl Shared {
    fn totals(&self) -> (u64, u64, u64, u64) {
        Self::sum(&self.writers)
    }

    fn sum(stats: &[WriterStats]) -> (u64, u64, u64, u64) {
        let mut sum = 0u64;
        let mut max = 0u64;
        let mut min = u64::MAX;
        let mut fails = 0u64;
        for w in stats {
            let n = w.acquired.load(Ordering::Relaxed);
            sum += n;
            max = max.max(n);
            min = min.min(n);
            fails += w.fails.load(Ordering::Relaxed);
        }
        if stats.is_empty() {
            min = 0;
        }
        (sum, max, min, fails)
    }

    fn active(&self) -> usize {
        self.writers
            .iter()
            .chain(&self.readers)
            .filter(|w| w.phase.load(Ordering::Relaxed) != DONE)
            .count()
    }
}

/// The kernel's statistics line.
fn stats_line(sum: u64, max: u64, min: u64, fails: u64) -> String {
    stats_line_of("Writes", sum, max, min, fails)
}

/// The kernel's statistics line for `what` (`Writes` or `Reads`).
fn stats_line_of(what: &str, sum: u64, max: u64, min: u64, fails: u64) -> String {
    let mut s = format!("{what}: Total: {sum} Max/Min: {max}/{min}");
    if max / 2 > min {
        s.push_str(" ???");
    }
    let _ = write!(s, " Fail: {fails}");
    if fails > 0 {
        s.push_str(" !!!");
    }
    s
}

fn writer(shared: &Shared, id: usize, nwriters: u64, shuffle_every: Duration) {
    let me = &shared.writers[id];
    let tag = id as u64 + 1;
    let mut rng = Rng::new(tag.wrapping_mul(0x1234_5678_9ABC_DEF1) ^ std::process::id() as u64);
    let mut shuffler = Shuffler::new();
    let mut next_shuffle =
        Instant::now() + shuffle_every.mul_f64(0.5 + rng.below(1000) as f64 / 1000.0);
    let mut acquired = 0u64;
    let mut fails = 0u64;

    while !shared.stop.load(Ordering::Relaxed) {
        // Outside the critical section: a little random work, and very rarely a sleep.
        if rng.one_in(1 << 16) {
            std::thread::sleep(Duration::from_millis(1));
        }
        for _ in 0..rng.below(32) {
            std::hint::spin_loop();
        }
        if acquired.is_multiple_of(64) && Instant::now() >= next_shuffle {
            shuffler.shuffle(&mut rng);
            next_shuffle =
                Instant::now() + shuffle_every.mul_f64(0.5 + rng.below(1000) as f64 / 1000.0);
        }

        me.phase.store(ACQUIRING, Ordering::Relaxed);
        if rng.one_in(8) {
            // try_lock a few times before falling back to lock().
            let mut got = false;
            for _ in 0..rng.below(64) + 1 {
                if shared.lock.try_lock() {
                    got = true;
                    break;
                }
                std::hint::spin_loop();
            }
            if !got {
                shared.lock.lock();
            }
        } else {
            shared.lock.lock();
        }
        me.phase.store(INSIDE, Ordering::Relaxed);

        // ---- critical section: the checks of lock_torture_writer ----
        if shared.in_cs.load(Ordering::Relaxed) != 0 {
            fails += 1;
        }
        shared.in_cs.store(tag, Ordering::Relaxed);
        if !shared.lock.is_locked() {
            fails += 1;
        }
        // A reader inside with us: the write lock did not exclude it.
        if shared.readers_in.load(Ordering::Relaxed) != 0 {
            fails += 1;
        }
        let seen = shared.counter.load(Ordering::Relaxed);

        // torture_spin_lock_write_delay, scaled for user space.
        if rng.one_in(nwriters * 20_000) {
            busy_wait(Duration::from_micros(1000 + rng.below(9000)));
        }
        if rng.one_in(nwriters * 50_000) {
            std::thread::sleep(Duration::from_millis(1));
        }
        if rng.one_in(nwriters * 4) {
            busy_wait(Duration::from_micros(2));
        }
        if rng.one_in(nwriters * 20_000) {
            std::thread::yield_now();
        }

        shared.counter.store(seen + 1, Ordering::Relaxed);
        if shared.in_cs.load(Ordering::Relaxed) != tag {
            fails += 1;
        }
        shared.in_cs.store(0, Ordering::Relaxed);
        acquired += 1;
        // SAFETY: acquired above by this writer.
        unsafe { shared.lock.unlock() };
        // ---- end of critical section ----

        me.phase.store(OUTSIDE, Ordering::Relaxed);
        me.acquired.store(acquired, Ordering::Relaxed);
        me.fails.store(fails, Ordering::Relaxed);
    }
    shuffler.restore();
    me.phase.store(DONE, Ordering::Relaxed);
}

/// A reader of a reader-writer lock (the kernel's `lock_torture_reader`): under the read lock no
/// writer may be inside, and the counter a writer updates (a load on entry, a store on exit) must
/// not change: a reader must never see a writer's update half done.
fn reader(shared: &Shared, id: usize) {
    let me = &shared.readers[id];
    let mut rng =
        Rng::new((id as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D) ^ std::process::id() as u64);
    let mut acquired = 0u64;
    let mut fails = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        for _ in 0..rng.below(32) {
            std::hint::spin_loop();
        }
        me.phase.store(ACQUIRING, Ordering::Relaxed);
        if !shared.lock.read_lock() {
            break;
        }
        me.phase.store(INSIDE, Ordering::Relaxed);
        shared.readers_in.fetch_add(1, Ordering::Relaxed);
        if shared.in_cs.load(Ordering::Relaxed) != 0 {
            fails += 1;
        }
        let seen = shared.counter.load(Ordering::Relaxed);
        // torture_rwlock_read_delay, scaled: mostly short, rarely long.
        if rng.one_in(20_000) {
            busy_wait(Duration::from_micros(1000 + rng.below(4000)));
        } else if rng.one_in(8) {
            busy_wait(Duration::from_micros(2));
        }
        if shared.counter.load(Ordering::Relaxed) != seen
            || shared.in_cs.load(Ordering::Relaxed) != 0
        {
            fails += 1;
        }
        shared.readers_in.fetch_sub(1, Ordering::Relaxed);
        acquired += 1;
        // SAFETY: the read lock taken above.
        unsafe { shared.lock.read_unlock() };
        me.phase.store(OUTSIDE, Ordering::Relaxed);
        me.acquired.store(acquired, Ordering::Relaxed);
        me.fails.store(fails, Ordering::Relaxed);
    }
    me.phase.store(DONE, Ordering::Relaxed);
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs one lock; returns whether it passed. Exits the process if the watchdog fires.
fn run_lock(kind: &LockKind, cfg: &Config) -> bool {
    let mut header = format!(
        "--- Start of test: lock={} writers={} duration={} stat_interval={} watchdog={} cpus={}",
        kind.id,
        cfg.writers,
        args::show(cfg.duration),
        args::show(cfg.stat_interval),
        args::show(cfg.watchdog),
        cpus()
    );
    if kind.id == "dyn" {
        if let Some(choice) = pvlock::dynamic::frozen() {
            let _ = write!(header, " PVLOCK={choice}");
        }
    }
    let lock = (kind.make)();
    // A reader-writer lock has readers: probe with one read (nobody else runs yet).
    let rw = lock.read_lock();
    if rw {
        // SAFETY: the read lock just taken.
        unsafe { lock.read_unlock() };
        let _ = write!(header, " readers={}", cfg.readers);
    }
    let nreaders = if rw { cfg.readers } else { 0 };
    print_line(&header);
    let shared = Arc::new(Shared {
        lock,
        in_cs: AtomicU64::new(0),
        counter: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        writers: (0..cfg.writers)
            .map(|_| WriterStats {
                acquired: AtomicU64::new(0),
                fails: AtomicU64::new(0),
                phase: AtomicU8::new(OUTSIDE),
            })
            .collect(),
        readers: (0..nreaders)
            .map(|_| WriterStats {
                acquired: AtomicU64::new(0),
                fails: AtomicU64::new(0),
                phase: AtomicU8::new(OUTSIDE),
            })
            .collect(),
        readers_in: AtomicU64::new(0),
    });

    let mut handles = Vec::with_capacity(cfg.writers);
    for id in 0..cfg.writers {
        let sh = Arc::clone(&shared);
        let n = cfg.writers as u64;
        let shuffle = cfg.shuffle;
        let spawned = std::thread::Builder::new()
            .name(format!("torture-{id}"))
            .spawn(move || writer(&sh, id, n, shuffle));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                // Writers that could not start count as done, so the run still ends.
                shared.writers[id].phase.store(DONE, Ordering::Relaxed);
                print_line(&format!("warning: could not start writer {id}: {e}"));
            }
        }
    }

    for id in 0..nreaders {
        let sh = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("torture-r{id}"))
            .spawn(move || reader(&sh, id));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                shared.readers[id].phase.store(DONE, Ordering::Relaxed);
                print_line(&format!("warning: could not start reader {id}: {e}"));
            }
        }
    }

    let start = Instant::now();
    let tick = Duration::from_millis(20).min(cfg.watchdog / 4);
    let mut last_seen = (0u64, usize::MAX);
    let mut last_progress = Instant::now();
    let mut next_stats = start + cfg.stat_interval;
    loop {
        std::thread::sleep(tick);
        let now = Instant::now();
        let (sum, max, min, fails) = shared.totals();
        let reads = Shared::sum(&shared.readers);
        if !shared.stop.load(Ordering::Relaxed) && now.duration_since(start) >= cfg.duration {
            shared.stop.store(true, Ordering::Relaxed);
        }
        // Progress: an acquisition completed, or a writer finished (it is then not stuck).
        let active = shared.active();
        if active == 0 {
            break;
        }
        if (sum + reads.0, active) != last_seen {
            last_seen = (sum + reads.0, active);
            last_progress = now;
        }
        let stalled = now.duration_since(last_progress);
        if stalled >= cfg.watchdog {
            watchdog_fire(kind.id, &shared, stalled, active);
        }
        if now >= next_stats && !shared.stop.load(Ordering::Relaxed) {
            print_line(&stats_line(sum, max, min, fails));
            if nreaders > 0 {
                print_line(&stats_line_of("Reads", reads.0, reads.1, reads.2, reads.3));
            }
            next_stats += cfg.stat_interval;
        }
    }
    for h in handles {
        let _ = h.join();
    }
    let elapsed = start.elapsed();

    let (sum, max, min, mut fails) = shared.totals();
    let counter = shared.counter.load(Ordering::Relaxed);
    let lost = sum.abs_diff(counter);
    fails += lost;
    print_line(&stats_line(sum, max, min, fails));
    let reads = Shared::sum(&shared.readers);
    if nreaders > 0 {
        print_line(&stats_line_of("Reads", reads.0, reads.1, reads.2, reads.3));
    }
    let ok = fails == 0 && reads.3 == 0 && sum > 0 && (nreaders == 0 || reads.0 > 0);
    let mut verdict = format!(
        "--- End of lock {}: {} ({} acquisitions in {:.2}s, {:.0}/s",
        kind.id,
        if ok { "SUCCESS" } else { "FAILURE" },
        sum,
        elapsed.as_secs_f64(),
        sum as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    if lost > 0 {
        let _ = write!(
            verdict,
            "; counter {counter} != acquisitions {sum}: lost updates"
        );
    }
    if sum == 0 {
        verdict.push_str("; no acquisition at all");
    }
    verdict.push(')');
    print_line(&verdict);
    ok
}

/// The watchdog's report; never returns.
fn watchdog_fire(id: &str, shared: &Shared, stalled: Duration, active: usize) -> ! {
    let mut phases = [0usize; 4];
    for w in &shared.writers {
        phases[(w.phase.load(Ordering::Relaxed) as usize).min(3)] += 1;
    }
    let (sum, max, min, fails) = shared.totals();
    print_line(&stats_line(sum, max, min, fails));
    print_line(&format!(
        "watchdog: lock {id} made no progress for {:.1}s with {active} writers active: \
         is_locked={} is_contended={}; writers acquiring={} inside={} outside={} done={}; \
         {sum} acquisitions so far",
        stalled.as_secs_f64(),
        shared.lock.is_locked(),
        shared.lock.is_contended(),
        phases[ACQUIRING as usize],
        phases[INSIDE as usize],
        phases[OUTSIDE as usize],
        phases[DONE as usize],
    ));
    print_line(&format!("--- End of lock {id}: FAILURE (stuck)"));
    print_line("End of test: FAILURE");
    // The writers are stuck in the lock: do not wait for them.
    std::process::exit(1);
}

/// Entry point of `pvlock torture`.
pub fn main(a: TortureArgs) -> Result<u8, CliError> {
    let cfg = Config {
        locks: a.locks.0,
        writers: a.writers,
        readers: a.readers.unwrap_or(a.writers),
        duration: a.duration,
        stat_interval: a.stat_interval,
        watchdog: a.watchdog,
        shuffle: a.shuffle,
    };
    if cfg.locks.iter().any(|k| k.id == "dyn") {
        pvlock::dynamic::init().map_err(|e| CliError::usage(format!("PVLOCK: {e}")))?;
    }

    let mut failed: Vec<&str> = Vec::new();
    for kind in &cfg.locks {
        if !run_lock(kind, &cfg) {
            failed.push(kind.id);
        }
    }
    if failed.is_empty() {
        print_line("End of test: SUCCESS");
        Ok(0)
    } else {
        print_line(&format!("failed locks: {}", failed.join(", ")));
        print_line("End of test: FAILURE");
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_line_marks() {
        assert_eq!(
            stats_line(30, 20, 10, 0),
            "Writes: Total: 30 Max/Min: 20/10 Fail: 0"
        );
        assert_eq!(
            stats_line(30, 25, 5, 2),
            "Writes: Total: 30 Max/Min: 25/5 ??? Fail: 2 !!!"
        );
    }

    #[test]
    fn lock_lists() {
        let ids = |s: &str| -> Vec<&'static str> {
            parse_locks(s).unwrap().0.iter().map(|k| k.id).collect()
        };
        assert_eq!(
            ids("ticket-spin,pvlock,ticket-spin"),
            ["ticket-spin", "pvlock"]
        );
        assert_eq!(ids("broken"), ["broken"]);
        assert_eq!(ids("all").len(), public_locks().len());
        let e = parse_locks("nope").err().unwrap();
        assert!(
            e.contains("unknown lock 'nope'") && e.contains("queued-auto"),
            "{e}"
        );
        assert!(!e.contains("broken"), "{e}");
        assert!(parse_locks("ticket-spin,").is_err());
    }
}
