//! The benchmark workloads that `pvlock bench` runs on host threads and the guest lab's guest
//! runs on vCPUs: their protected data, their critical sections, their random streams and the
//! non-critical work between acquisitions. Both sides use this crate, so a number measured in a
//! VM and one measured on the host come from the same operations.
//!
//! An operation has two halves: what a thread chooses before it calls `lock` (which bucket and
//! key, which flow; drawn from its [`Rng`]), and what it writes once it holds the lock. This crate
//! has both halves and no lock: the caller puts the second half under the lock being measured
//! and times the acquisition its own way (the bench with its sampled clock, the guest with the
//! TSC). Between acquisitions a thread runs [`spin_work`].
//!
//! * [`counter`]: one hot lock around a count and 15 more words on two cache lines.
//! * [`hashtable`]: per-bucket locks over a small hash table; 90% lookups, 10%
//!   insert-or-update.
//! * [`stats`]: four flow-statistics records under their own locks, one of them hot.
//!
//! Every workload counts its acquisitions inside the protected data with plain (non-atomic)
//! increments ([`CounterData::count`](counter::CounterData::count),
//! [`Bucket::ops`](hashtable::Bucket::ops), [`FlowStats::ops`](stats::FlowStats::ops)); after a
//! run their sum must equal the threads' own counts, a cheap check that the lock really excluded.
//!
//! `no_std`, no allocation, no dependencies. The operations are `#[inline]`: they are the
//! measured loop's body and must compile into the caller as if written there.
//!
//! # Example
//!
//! The `hashtable` workload on two threads, each bucket under a `std::sync::Mutex`:
//!
//! ```
//! use pvlock_workload::hashtable::{Bucket, HashOp};
//! use pvlock_workload::{spin_work, Rng};
//! use std::sync::Mutex;
//!
//! let buckets: Vec<Mutex<Bucket>> = (0..16).map(|_| Mutex::new(Bucket::new())).collect();
//! std::thread::scope(|s| {
//!     for t in 0..2u64 {
//!         let buckets = &buckets;
//!         s.spawn(move || {
//!             let mut rng = Rng::new(t + 1);
//!             for i in 0..1000 {
//!                 // Chosen before the lock...
//!                 let op = HashOp::random(&mut rng, buckets.len());
//!                 // ...applied under it.
//!                 buckets[op.bucket()].lock().unwrap().apply(op);
//!                 // Non-critical work: uniformly 0..=2 x 50 multiply-adds.
//!                 spin_work(rng.below(2 * 50 + 1), i);
//!             }
//!         });
//!     }
//! });
//! let counted: u64 = buckets.iter().map(|b| b.lock().unwrap().ops()).sum();
//! assert_eq!(counted, 2 * 1000);
//! ```

#![no_std]

pub mod counter;
pub mod hashtable;
pub mod stats;

use core::hint::black_box;

/// A xorshift64* generator (Vigna, "An experimental exploration of Marsaglia's xorshift
/// generators, scrambled"): one per thread, so threads draw independent streams and do not fall
/// into lock-step. The same seed gives the same stream on the host and in the guest.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (any value: it is mixed, and the state made odd, so never
    /// zero).
    #[inline]
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    #[inline]
    #[allow(clippy::should_implement_trait)] // an endless stream of words, not an `Iterator`
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..n (n > 0, at most 2^32), by multiply-shift of the high 32 bits; one draw.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    /// `true` with probability about 1/n (n > 0); one draw.
    #[inline]
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// Non-critical work: `n` dependent multiply-adds (an LCG step each, about 1-2 ns), starting from
/// `seed`. Each step goes through [`black_box`], so the loop is neither vectorised nor folded
/// away and its time is proportional to `n`.
#[inline]
pub fn spin_work(n: u64, seed: u64) {
    let mut x = seed;
    for _ in 0..n {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    black_box(x);
}

#[cfg(test)]
mod tests {
    use super::Rng;

    /// The stream is part of the workloads' definition: the bench and the guest draw these.
    #[test]
    fn rng_stream() {
        let mut rng = Rng::new(1);
        assert_eq!(rng.next(), 0x0d83_b3e2_9a21_487a);
        assert_eq!(rng.next(), 0x54c4_4c79_f1fe_9d67);
        assert_eq!(rng.next(), 0xa845_f342_007a_0e78);
        let mut rng = Rng::new(7);
        for n in [1, 2, 3, 10, 1 << 20, 1 << 32] {
            for _ in 0..100 {
                assert!(rng.below(n) < n);
            }
        }
    }
}
