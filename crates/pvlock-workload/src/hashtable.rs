//! `hashtable`: a table of buckets, each under its own lock and holding up to [`WAYS`]
//! (key, value) pairs, like the IPVS connection table and the XFS buffer cache. Keys are uniformly
//! random over 1..=`WAYS` x buckets and spread over the buckets by a multiplicative hash; 90% of
//! the operations look their key up, 10% insert it (value 1) or increment its value. A full
//! bucket makes room by overwriting slot key mod `WAYS`.
//!
//! Before the lock, [`HashOp::random`] draws the key and the kind (two draws); under the
//! bucket's lock, [`Bucket::apply`] counts the acquisition and does the lookup or the update.

use core::hint::black_box;

/// Slots per bucket.
pub const WAYS: usize = 8;

/// One bucket: its acquisition count and up to [`WAYS`] pairs, `len` of them in use; 144 bytes,
/// padded to three cache lines.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Bucket {
    ops: u64,
    len: u64,
    keys: [u64; WAYS],
    vals: [u64; WAYS],
}

/// One operation, chosen before the lock: the key, its bucket, and whether it inserts or updates
/// the key (else it looks it up).
#[derive(Clone, Copy, Debug)]
pub struct HashOp {
    key: u64,
    bucket: usize,
    insert: bool,
}

impl HashOp {
    /// The next operation on a table of `buckets` buckets (> 0): a key uniform in
    /// 1..=`WAYS` x `buckets` (one draw), then insert-or-update with probability 1/10 (another).
    #[inline]
    pub fn random(rng: &mut crate::Rng, buckets: usize) -> HashOp {
        let n = buckets as u64;
        let key = rng.below(n * WAYS as u64) + 1;
        let bucket = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % n;
        let insert = rng.below(10) == 0;
        HashOp {
            key,
            bucket: bucket as usize,
            insert,
        }
    }

    /// The index of the key's bucket, whose lock the operation takes.
    #[inline]
    pub fn bucket(&self) -> usize {
        self.bucket
    }
}

impl Bucket {
    /// Empty.
    #[inline]
    pub const fn new() -> Self {
        Bucket {
            ops: 0,
            len: 0,
            keys: [0; WAYS],
            vals: [0; WAYS],
        }
    }

    /// The critical section of `op` (on its bucket): counts the acquisition, then looks the key
    /// up (reading its value if found) or inserts or updates it.
    #[inline]
    pub fn apply(&mut self, op: HashOp) {
        let HashOp { key, insert, .. } = op;
        self.ops += 1;
        let len = self.len as usize;
        let found = self.keys[..len].iter().position(|&k| k == key);
        match (found, insert) {
            (Some(i), false) => {
                black_box(self.vals[i]);
            }
            (None, false) => {}
            (Some(i), true) => self.vals[i] += 1,
            (None, true) => {
                let i = if len < WAYS {
                    self.len += 1;
                    len
                } else {
                    (key % WAYS as u64) as usize
                };
                self.keys[i] = key;
                self.vals[i] = 1;
            }
        }
    }

    /// Acquisitions counted by [`apply`](Self::apply).
    #[inline]
    pub fn ops(&self) -> u64 {
        self.ops
    }
}

impl Default for Bucket {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::{Bucket, HashOp, WAYS};
    use crate::Rng;

    #[test]
    fn counts_and_stays_in_range() {
        let mut rng = Rng::new(3);
        let mut buckets: [Bucket; 5] = core::array::from_fn(|_| Bucket::new());
        let mut inserts = 0;
        for _ in 0..10_000 {
            let op = HashOp::random(&mut rng, buckets.len());
            inserts += u32::from(op.insert);
            assert!((1..=(5 * WAYS) as u64).contains(&op.key));
            buckets[op.bucket()].apply(op);
        }
        assert_eq!(buckets.iter().map(Bucket::ops).sum::<u64>(), 10_000);
        assert!((800..1200).contains(&inserts), "{inserts} inserts in 10000");
        for b in &buckets {
            let keys = &b.keys[..b.len as usize];
            assert!(keys.iter().all(|&k| k != 0));
            assert!(keys.iter().enumerate().all(|(i, k)| !keys[..i].contains(k)));
        }
    }
}
