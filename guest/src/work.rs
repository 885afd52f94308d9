//! The workloads of `pvlock bench`, for the guest: the same critical sections, non-critical work
//! and random streams (`counter`, `hashtable`, `stats`; their data and operations are the
//! `pvlock-workload` crate's, shared with the bench), plus `drain`, which times how long a queue
//! of waiting vCPUs takes to get through the lock. Here they are put under the lock being
//! measured, their data in the arena, and timed with the TSC.
//!
//! Every workload counts its acquisitions inside the protected data with plain increments; the
//! VMM checks that their sum equals the vCPUs' own counts.

use crate::abi::{self, Mailbox, HIST_BUCKETS};
use crate::rt::{self, add, rdtsc};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use lock_api::{Mutex, RawMutex};
use pvlock_workload::counter::CounterData;
use pvlock_workload::hashtable::{Bucket, HashOp};
use pvlock_workload::stats::{FlowStats, FlowUpdate, FLOWS};
use pvlock_workload::{spin_work, Rng};

/// One workload over raw lock `R`, its data in the arena.
pub trait Work {
    /// One acquisition and its critical section; returns the TSC cycles from calling `lock` to
    /// holding the lock.
    fn op(&self, rng: &mut Rng) -> u64;
    /// Acquisitions counted inside the protected data.
    fn counted(&self) -> u64;
}

/// Takes `lock`, returning the guard and the cycles it took.
#[inline(always)]
fn timed<R: RawMutex, T>(lock: &Mutex<R, T>) -> (lock_api::MutexGuard<'_, R, T>, u64) {
    let t0 = rdtsc();
    let g = lock.lock();
    (g, rdtsc().wrapping_sub(t0))
}

/// `counter`: one hot lock; `cs` volatile writes inside.
pub struct Counter<R: RawMutex + 'static> {
    lock: &'static Mutex<R, CounterData>,
    cs: u32,
}

/// `hashtable`: per-bucket locks, 90% lookups, 10% insert-or-update, random keys.
pub struct HashTable<R: RawMutex + 'static> {
    buckets: &'static [Mutex<R, Bucket>],
}

/// `stats`: four flow records under their own locks, half the updates to one hot flow.
pub struct Stats<R: RawMutex + 'static> {
    flows: &'static [Mutex<R, FlowStats>; FLOWS],
}

/// The arena as `n` values of `T`.
///
/// # Safety
/// The boot vCPU must have initialised them (`init_arena`) before anyone else calls this.
unsafe fn arena<T>(n: usize) -> &'static [T] {
    assert!(n * core::mem::size_of::<T>() <= abi::ARENA_SIZE as usize);
    // SAFETY: the arena is guest memory reserved for this (abi), aligned to 8 MiB, and the
    // caller guarantees its initialisation.
    unsafe { core::slice::from_raw_parts(abi::ARENA as *const T, n) }
}

/// Writes `n` values made by `f` into the arena (boot vCPU only, before `go`).
fn init_arena<T>(n: usize, f: impl Fn() -> T) {
    assert!(n * core::mem::size_of::<T>() <= abi::ARENA_SIZE as usize);
    let p = abi::ARENA as *mut T;
    for i in 0..n {
        // SAFETY: within the arena (asserted), aligned (the arena is 8 MiB aligned and `T`'s
        // size is a multiple of its alignment); nobody else reads it before `go`.
        unsafe { p.add(i).write(f()) };
    }
}

impl<R: RawMutex + 'static> Counter<R> {
    pub fn init() {
        init_arena(1, || Mutex::<R, CounterData>::new(CounterData::new()));
    }
    pub fn get(cs: u32) -> Self {
        // SAFETY: initialised by `init` on the boot vCPU before `go`.
        let lock = unsafe { &arena::<Mutex<R, CounterData>>(1)[0] };
        Counter { lock, cs }
    }
}

impl<R: RawMutex + 'static> Work for Counter<R> {
    #[inline]
    fn op(&self, _rng: &mut Rng) -> u64 {
        let (mut d, c) = timed(self.lock);
        d.apply(self.cs);
        c
    }
    fn counted(&self) -> u64 {
        self.lock.lock().count()
    }
}

impl<R: RawMutex + 'static> HashTable<R> {
    pub fn init(n: usize) {
        init_arena(n, || Mutex::<R, Bucket>::new(Bucket::new()));
    }
    pub fn get(n: usize) -> Self {
        // SAFETY: initialised by `init` on the boot vCPU before `go`.
        let buckets = unsafe { arena::<Mutex<R, Bucket>>(n) };
        HashTable { buckets }
    }
}

impl<R: RawMutex + 'static> Work for HashTable<R> {
    #[inline]
    fn op(&self, rng: &mut Rng) -> u64 {
        let op = HashOp::random(rng, self.buckets.len());
        let (mut d, c) = timed(&self.buckets[op.bucket()]);
        d.apply(op);
        c
    }
    fn counted(&self) -> u64 {
        self.buckets.iter().map(|b| b.lock().ops()).sum()
    }
}

impl<R: RawMutex + 'static> Stats<R> {
    pub fn init() {
        init_arena(1, || {
            core::array::from_fn::<_, FLOWS, _>(|_| Mutex::<R, FlowStats>::new(FlowStats::new()))
        });
    }
    pub fn get() -> Self {
        // SAFETY: initialised by `init` on the boot vCPU before `go`.
        let flows = unsafe { &arena::<[Mutex<R, FlowStats>; FLOWS]>(1)[0] };
        Stats { flows }
    }
}

impl<R: RawMutex + 'static> Work for Stats<R> {
    #[inline]
    fn op(&self, rng: &mut Rng) -> u64 {
        let u = FlowUpdate::random(rng);
        let (mut d, c) = timed(&self.flows[u.flow()]);
        d.apply(u);
        c
    }
    fn counted(&self) -> u64 {
        self.flows.iter().map(|f| f.lock().ops()).sum()
    }
}

/// Histogram bucket of a latency in cycles.
#[inline(always)]
fn bucket(c: u64) -> usize {
    ((63 - (c | 1).leading_zeros()) as usize).min(HIST_BUCKETS - 1)
}

/// The measured loop of `counter`, `hashtable` and `stats`: acquire, count, non-critical work,
/// until the stop flag.
pub fn run<W: Work>(w: &W, mb: &Mailbox) {
    let me = rt::cpu();
    let rec = &mb.vcpu[me];
    let ncs = mb.ncs.load(Relaxed);
    let mut rng = Rng::new(me as u64 + 1);
    let (mut acq, mut cycles) = (0u64, 0u64);
    let mut hist = [0u64; HIST_BUCKETS];
    let start = rdtsc();
    loop {
        let c = w.op(&mut rng);
        acq += 1;
        cycles += c;
        hist[bucket(c)] += 1;
        if ncs != 0 {
            let n = rng.below(2 * ncs + 1);
            spin_work(n, acq);
        }
        if mb.stop.load(Relaxed) != 0 {
            break;
        }
    }
    rec.window_cycles
        .store(rdtsc().wrapping_sub(start), Relaxed);
    rec.acquisitions.store(acq, Relaxed);
    rec.acquire_cycles.store(cycles, Relaxed);
    for (dst, n) in rec.hist.iter().zip(hist) {
        dst.store(n, Relaxed);
    }
}

// The drain workload's shared state (non-generic, so plain statics).
static BARRIER_COUNT: AtomicU32 = AtomicU32::new(0);
static BARRIER_GEN: AtomicU32 = AtomicU32::new(0);
static ARRIVED: AtomicU32 = AtomicU32::new(0);
static DRAINED: AtomicU32 = AtomicU32::new(0);
static GO_ON: AtomicU32 = AtomicU32::new(0);
static T0: AtomicU64 = AtomicU64::new(0);

/// All `n` vCPUs meet; the last one kicks the others (halt/kick, so waiting costs no CPU).
/// Its halts and kicks are not counted as the lock's.
fn barrier(n: usize) {
    let me = rt::cpu();
    let gen = BARRIER_GEN.load(Acquire);
    // AcqRel: everyone's writes before the barrier happen before everyone's reads after it.
    if BARRIER_COUNT.fetch_add(1, AcqRel) as usize == n - 1 {
        BARRIER_COUNT.store(0, Relaxed);
        BARRIER_GEN.store(gen.wrapping_add(1), Release);
        for i in (0..n).filter(|&i| i != me) {
            rt::kick_raw(i);
        }
    } else {
        while BARRIER_GEN.load(Acquire) == gen {
            rt::halt_raw();
        }
    }
}

/// `drain`: rounds of "vCPU 0 holds the lock while every other vCPU queues for it, then
/// releases it"; records the TSC cycles from that release until the last waiter has had the lock.
pub fn drain<R: RawMutex + 'static>(w: &Counter<R>, mb: &Mailbox) {
    let me = rt::cpu();
    let n = mb.vcpus.load(Relaxed) as usize;
    let rounds = (mb.rounds.load(Relaxed) as usize).min(abi::MAX_ROUNDS);
    // How long vCPU 0 keeps holding the lock after every waiter has announced itself, so that
    // they are all in `lock` (2 ms).
    let settle = u64::from(mb.tsc_khz.load(Relaxed)) * 2;
    let rec = &mb.vcpu[me];
    let start = rdtsc();
    let (mut acq, mut cycles) = (0u64, 0u64);
    let mut held = None;
    for r in 0.. {
        if me == 0 {
            ARRIVED.store(0, Relaxed);
            DRAINED.store(0, Relaxed);
            let go_on = r < rounds && mb.stop.load(Relaxed) == 0;
            GO_ON.store(u32::from(go_on), Relaxed);
            if go_on {
                let (g, c) = timed(w.lock);
                held = Some(g);
                acq += 1;
                cycles += c;
            }
        }
        barrier(n);
        if GO_ON.load(Relaxed) == 0 {
            break;
        }
        if me == 0 {
            while ARRIVED.load(Acquire) as usize != n - 1 {
                core::hint::spin_loop();
            }
            let t = rdtsc();
            while rdtsc().wrapping_sub(t) < settle {
                core::hint::spin_loop();
            }
            let mut g = held.take().expect("vCPU 0 holds the lock in a round");
            g.apply(0); // the acquisition counted, no further writes
            T0.store(rdtsc(), Relaxed);
            drop(g);
        } else {
            ARRIVED.fetch_add(1, Release);
            let (mut g, c) = timed(w.lock);
            acq += 1;
            cycles += c;
            g.apply(0);
            // The lock orders T0 (stored before vCPU 0's unlock) before this read.
            if DRAINED.fetch_add(1, Relaxed) as usize == n - 2 {
                let t = rdtsc().wrapping_sub(T0.load(Relaxed));
                mb.drain_cycles[r].store(t, Relaxed);
                mb.drained.store(r as u32 + 1, Relaxed);
            }
            drop(g);
        }
        barrier(n);
    }
    rec.window_cycles
        .store(rdtsc().wrapping_sub(start), Relaxed);
    add(&rec.acquisitions, acq);
    add(&rec.acquire_cycles, cycles);
}
