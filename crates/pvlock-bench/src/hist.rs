//! A cheap clock for acquire latencies and a log-linear latency histogram.
//!
//! Clock: on x86-64 with an invariant TSC (`constant_tsc` and `nonstop_tsc` in /proc/cpuinfo) the
//! time-stamp counter (`RDTSC`, ~10-40 cycles even in a KVM guest), converted to ns by a factor
//! calibrated against `Instant` at start-up; elsewhere `Instant::now()` (vDSO clock_gettime).
//!
//! The minimum cost of two back-to-back clock reads is measured at start-up and subtracted from
//! every sample, so an uncontended acquisition shows its own cost.
//!
//! Histogram: values in ns, 16 sub-buckets per power of two (each bucket within ~6% of its
//! values), exact minimum and maximum; merging is bucket-wise addition.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Ticks to ns: `ns = ticks * num >> 32`, or `None` when ticks are `Instant` ns already.
static TSC_SCALE: OnceLock<Option<u64>> = OnceLock::new();
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The cost of reading the clock twice, in ticks: subtracted from every latency sample.
static OVERHEAD: OnceLock<u64> = OnceLock::new();

/// Chooses and calibrates the clock (takes ~20 ms with the TSC). Call once before measuring.
pub fn init_clock() -> &'static str {
    let _ = EPOCH.get_or_init(Instant::now);
    let tsc = *TSC_SCALE.get_or_init(calibrate);
    let _ = OVERHEAD.get_or_init(|| {
        (0..10_000)
            .map(|_| {
                let t = now();
                now().wrapping_sub(t)
            })
            .min()
            .unwrap_or(0)
    });
    match tsc {
        Some(_) => "rdtsc",
        None => "clock_gettime",
    }
}

#[cfg(target_arch = "x86_64")]
fn calibrate() -> Option<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    if !(has("constant_tsc") && has("nonstop_tsc")) {
        return None;
    }
    let mut best: Option<f64> = None;
    for _ in 0..3 {
        let (t0, c0) = (Instant::now(), rdtsc());
        std::thread::sleep(Duration::from_millis(5));
        let (t1, c1) = (Instant::now(), rdtsc());
        let ns = (t1 - t0).as_nanos() as f64;
        let ticks = c1.wrapping_sub(c0) as f64;
        if ticks > 0.0 && ns > 0.0 {
            let r = ns / ticks;
            // Smallest ratio of three: the two clocks are read back to back, a preemption in between
            // only makes a run's ratio larger.
            best = Some(best.map_or(r, |b: f64| b.min(r)));
        }
    }
    best.filter(|r| r.is_finite() && *r > 0.0 && *r < 100.0)
        .map(|r| (r * 4294967296.0) as u64)
}

#[cfg(not(target_arch = "x86_64"))]
fn calibrate() -> Option<u64> {
    None
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: LFENCE and RDTSC exist on every x86-64 CPU and only write EAX/EDX. The asm block is
    // deliberately *not* `nomem`: the compiler must treat it as touching memory, so it cannot move
    // the timestamp across the lock's atomic operations (the `_rdtsc` intrinsic has no memory
    // effects and was hoisted into the critical section). LFENCE keeps the CPU from reading the
    // counter before earlier instructions completed.
    unsafe {
        core::arch::asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// A raw timestamp (ticks); convert a difference with [`ticks_to_ns`].
#[inline(always)]
pub fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if let Some(Some(_)) = TSC_SCALE.get() {
        return rdtsc();
    }
    EPOCH.get().map_or(0, |e| e.elapsed().as_nanos() as u64)
}

/// Converts a measured tick difference to ns, less the clock's own overhead.
#[inline]
pub fn ticks_to_ns(d: u64) -> u64 {
    let d = d.saturating_sub(OVERHEAD.get().copied().unwrap_or(0));
    match TSC_SCALE.get() {
        Some(Some(scale)) => ((d as u128 * *scale as u128) >> 32) as u64,
        _ => d,
    }
}

const SUB: usize = 16;
const SUB_BITS: u32 = 4;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// Log-linear histogram of ns values.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = msb - SUB_BITS;
    let sub = (v >> shift) as usize & (SUB - 1);
    ((shift as usize + 1) * SUB) + sub
}

/// Smallest value of bucket `i`, and the bucket width.
fn bounds(i: usize) -> (u64, u64) {
    if i < SUB {
        return (i as u64, 1);
    }
    let shift = (i / SUB - 1) as u32;
    let sub = (i % SUB) as u64;
    (((SUB as u64) | sub) << shift, 1u64 << shift)
}

impl Histogram {
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        if v > self.max {
            self.max = v;
        }
    }

    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.total += o.total;
        self.max = self.max.max(o.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the middle of its bucket, capped at the maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, w) = bounds(i);
                return (lo + w / 2).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_within_precision() {
        for v in [0u64, 1, 15, 16, 17, 100, 1000, 123_456, 1 << 40, u64::MAX] {
            let (lo, w) = bounds(index(v));
            assert!(lo <= v && v - lo < w.max(1), "v={v} lo={lo} w={w}");
            assert!(w as f64 <= (v as f64 / 16.0).max(1.0), "v={v} w={w}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v);
        }
        let p50 = h.quantile(0.5);
        assert!((470..=530).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((950..=1000).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), 1000);
        assert_eq!(h.max(), 1000);
    }
}
