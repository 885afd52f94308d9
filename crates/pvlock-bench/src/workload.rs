//! The workloads: what a thread does inside and outside the critical section.
//!
//! * `counter`: one hot lock protecting a small struct on two cache lines. The critical section
//!   increments a counter and makes `--cs` volatile writes spread over the two lines.
//! * `hashtable`: `--buckets` buckets, each with its own lock and up to 8 (key, value) pairs; keys
//!   uniformly random over 8 x buckets; 90% lookups, 10% insert-or-update (like the IPVS connection
//!   table and the XFS buffer cache).
//! * `stats`: 4 flow-statistics records, each under its own lock, half of the updates to one hot
//!   flow; each update adds to packets, bytes, last-used and TCP flags (the flow statistics of
//!   Open vSwitch).
//! * `random`: `--nlocks` locks, each on its own 128-byte line (as crossbeam's `CachePadded`)
//!   around one counter; every acquisition picks one at random and increments its counter: the
//!   smallest critical section there is.
//!
//! * `rwlock`: one reader-writer lock over a read-mostly hash table of 1024 keys in 2048 slots
//!   (open addressing); `--read-pct` of the operations look a random key up under the read lock,
//!   the rest insert or update one under the write lock. A writer bumps a count before and a
//!   mirror after its update; every reader checks that they are equal (no half-done write
//!   visible) and counts its read in a per-thread shard.
//!
//! Between acquisitions every thread does random non-critical work: uniformly 0..=2 x `--ncs`
//! iterations of a dependent multiply-add (about 1-2 ns each), from a per-thread xorshift generator,
//! so threads do not fall into lock-step.
//!
//! Every workload counts its acquisitions inside the protected data with plain (non-atomic)
//! increments; after the run their sum must equal the threads' own counts, a cheap check that the
//! lock really excluded.
//!
//! The random generator, the non-critical work and the data and critical sections of `counter`,
//! `hashtable` and `stats` are the `pvlock-workload` crate's, which the guest lab's guest runs
//! too; here they are put under the lock family being measured and timed.

use crate::hist;
use crate::locks::{BenchLock, Family};
use pvlock_workload::counter::CounterData;
use pvlock_workload::hashtable::{Bucket, HashOp};
use pvlock_workload::stats::{FlowStats, FlowUpdate, FLOWS};
pub use pvlock_workload::{spin_work, Rng};
use std::hint::black_box;

/// The workload names.
pub const WORKLOADS: &[&str] = &["counter", "hashtable", "stats", "random", "rwlock"];

/// One workload over lock family `F`.
pub trait Work: Send + Sync + 'static {
    /// One acquisition with its critical section. With `sample`, returns the ticks from calling
    /// lock to holding it, else 0.
    fn op(&self, rng: &mut Rng, sample: bool) -> u64;
    /// [`op`](Self::op), and whether it was a write (the `rwlock` workload; every other
    /// workload's operations are all one kind).
    #[inline]
    fn op_rw(&self, rng: &mut Rng, sample: bool) -> (u64, bool) {
        (self.op(rng, sample), false)
    }
    /// Acquisitions counted inside the protected data (see the module docs).
    fn counted(&self) -> u64;
}

/// Times an acquisition: `t0` before the call, the returned closure's result inside the lock.
#[inline(always)]
fn start(sample: bool) -> u64 {
    if sample {
        hist::now()
    } else {
        0
    }
}

#[inline(always)]
fn acquired(sample: bool, t0: u64) -> u64 {
    if sample {
        hist::now().wrapping_sub(t0).max(1)
    } else {
        0
    }
}

/// `counter`: one hot lock.
pub struct Counter<F: Family> {
    lock: F::L<CounterData>,
    cs: u32,
}

impl<F: Family> Counter<F> {
    pub fn new(cs: u32) -> Self {
        Counter {
            lock: BenchLock::new(CounterData::new()),
            cs,
        }
    }
}

impl<F: Family> Work for Counter<F> {
    #[inline]
    fn op(&self, _rng: &mut Rng, sample: bool) -> u64 {
        let t0 = start(sample);
        self.lock.with(|d| {
            let lat = acquired(sample, t0);
            d.apply(self.cs);
            lat
        })
    }
    fn counted(&self) -> u64 {
        self.lock.with(|d| d.count())
    }
}

/// `hashtable`: per-bucket locks, lookup-heavy.
pub struct HashTable<F: Family> {
    buckets: Box<[F::L<Bucket>]>,
}

impl<F: Family> HashTable<F> {
    pub fn new(buckets: usize) -> Self {
        let buckets = (0..buckets.max(1))
            .map(|_| BenchLock::new(Bucket::new()))
            .collect();
        HashTable { buckets }
    }
}

impl<F: Family> Work for HashTable<F> {
    #[inline]
    fn op(&self, rng: &mut Rng, sample: bool) -> u64 {
        let op = HashOp::random(rng, self.buckets.len());
        let t0 = start(sample);
        self.buckets[op.bucket()].with(|d| {
            let lat = acquired(sample, t0);
            d.apply(op);
            lat
        })
    }
    fn counted(&self) -> u64 {
        self.buckets.iter().map(|b| b.with(|d| d.ops())).sum()
    }
}

/// `stats`: small updates of shared statistics under a few locks.
pub struct Stats<F: Family> {
    flows: [F::L<FlowStats>; FLOWS],
}

impl<F: Family> Stats<F> {
    pub fn new() -> Self {
        let flows = std::array::from_fn(|_| BenchLock::new(FlowStats::new()));
        Stats { flows }
    }
}

impl<F: Family> Work for Stats<F> {
    #[inline]
    fn op(&self, rng: &mut Rng, sample: bool) -> u64 {
        let u = FlowUpdate::random(rng);
        let t0 = start(sample);
        self.flows[u.flow()].with(|d| {
            let lat = acquired(sample, t0);
            d.apply(u);
            lat
        })
    }
    fn counted(&self) -> u64 {
        self.flows.iter().map(|f| f.with(|d| d.ops())).sum()
    }
}

/// One lock of [`Random`] with its counter, on a 128-byte line of its own.
#[repr(align(128))]
struct PaddedLock<L>(L);

/// `random`: many small locks, one chosen at random per acquisition.
pub struct Random<F: Family> {
    locks: Box<[PaddedLock<F::L<u64>>]>,
}

impl<F: Family> Random<F> {
    pub fn new(n: usize) -> Self {
        Random {
            locks: (0..n.max(1))
                .map(|_| PaddedLock(BenchLock::new(0)))
                .collect(),
        }
    }
}

impl<F: Family> Work for Random<F> {
    #[inline]
    fn op(&self, rng: &mut Rng, sample: bool) -> u64 {
        let i = rng.below(self.locks.len() as u64) as usize;
        let t0 = start(sample);
        self.locks[i].0.with(|n| {
            let lat = acquired(sample, t0);
            *n += 1;
            lat
        })
    }
    fn counted(&self) -> u64 {
        self.locks.iter().map(|l| l.0.with(|n| *n)).sum()
    }
}

/// Keys of the `rwlock` workload's table, and its slots (a power of two, twice the keys).
const RW_KEYS: u64 = 1024;
const RW_SLOTS: usize = 2048;
/// Read-count shards (per thread, round robin), each on its own line.
const RW_SHARDS: usize = 64;

pub struct RwTableData {
    /// Writes, bumped at the start of a write...
    writes: u64,
    keys: Box<[u64]>,
    vals: Box<[u64]>,
    /// ...and this at its end: a reader that sees them differ saw a half-done write.
    mirror: u64,
}

impl RwTableData {
    #[inline]
    fn slot(key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & (RW_SLOTS - 1)
    }
}

#[repr(align(128))]
struct Shard(std::sync::atomic::AtomicU64);

/// `rwlock`: a read-mostly hash table under one reader-writer lock.
pub struct RwTable<F: crate::locks::RwFamily> {
    lock: F::L<RwTableData>,
    read_pct: u64,
    reads: Box<[Shard]>,
    torn: std::sync::atomic::AtomicBool,
}

impl<F: crate::locks::RwFamily> RwTable<F> {
    pub fn new(read_pct: u32) -> Self {
        use crate::locks::RwBenchLock;
        RwTable {
            lock: RwBenchLock::new(RwTableData {
                writes: 0,
                keys: vec![0; RW_SLOTS].into_boxed_slice(),
                vals: vec![0; RW_SLOTS].into_boxed_slice(),
                mirror: 0,
            }),
            read_pct: u64::from(read_pct.min(100)),
            reads: (0..RW_SHARDS)
                .map(|_| Shard(std::sync::atomic::AtomicU64::new(0)))
                .collect(),
            torn: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

fn rw_shard() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % RW_SHARDS;
    }
    MINE.with(|m| *m)
}

impl<F: crate::locks::RwFamily> Work for RwTable<F> {
    #[inline]
    fn op(&self, rng: &mut Rng, sample: bool) -> u64 {
        self.op_rw(rng, sample).0
    }

    #[inline]
    fn op_rw(&self, rng: &mut Rng, sample: bool) -> (u64, bool) {
        use crate::locks::RwBenchLock;
        use std::sync::atomic::Ordering;
        let key = rng.below(RW_KEYS) + 1;
        let write = rng.below(100) >= self.read_pct;
        let t0 = start(sample);
        let lat = if write {
            self.lock.write(|d| {
                let lat = acquired(sample, t0);
                d.writes += 1;
                let mut i = RwTableData::slot(key);
                loop {
                    if d.keys[i] == key || d.keys[i] == 0 {
                        d.keys[i] = key;
                        d.vals[i] = d.vals[i].wrapping_add(1);
                        break;
                    }
                    i = (i + 1) & (RW_SLOTS - 1);
                }
                // SAFETY: `mirror` is a field of the locked data; volatile so that the two
                // counts are really written apart.
                unsafe { std::ptr::write_volatile(&mut d.mirror, d.writes) };
                lat
            })
        } else {
            let lat = self.lock.read(|d| {
                let lat = acquired(sample, t0);
                let mut i = RwTableData::slot(key);
                for _ in 0..RW_SLOTS {
                    let k = d.keys[i];
                    if k == key {
                        black_box(d.vals[i]);
                        break;
                    }
                    if k == 0 {
                        break;
                    }
                    i = (i + 1) & (RW_SLOTS - 1);
                }
                // SAFETY: fields of the data we hold a read lock on.
                let (w, m) = unsafe {
                    (
                        std::ptr::read_volatile(&d.writes),
                        std::ptr::read_volatile(&d.mirror),
                    )
                };
                if w != m {
                    self.torn.store(true, Ordering::Relaxed);
                }
                lat
            });
            // Relaxed: a count read after the threads joined.
            self.reads[rw_shard()].0.fetch_add(1, Ordering::Relaxed);
            lat
        };
        (lat, write)
    }

    fn counted(&self) -> u64 {
        use crate::locks::RwBenchLock;
        use std::sync::atomic::Ordering;
        let writes = self.lock.read(|d| d.writes);
        let reads: u64 = self.reads.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
        if self.torn.load(Ordering::Relaxed) {
            return u64::MAX; // a reader saw a half-done write: report an exclusion failure
        }
        writes + reads
    }
}
