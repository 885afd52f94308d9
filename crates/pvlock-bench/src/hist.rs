//! A cheap clock for acquire latencies, and the latency histogram.
//!
//! Clock: on x86-64 with an invariant TSC (`constant_tsc` and `nonstop_tsc` in /proc/cpuinfo) the
//! time-stamp counter (`RDTSC`, ~10-40 cycles even in a KVM guest), converted to ns by a factor
//! calibrated against `Instant` at start-up; elsewhere `Instant::now()` (vDSO clock_gettime).
//!
//! The minimum cost of two back-to-back clock reads is measured at start-up and subtracted from
//! every sample, so an uncontended acquisition shows its own cost.

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

/// Acquire latencies in ns: an HDR histogram with 2 significant digits (each value within 1%)
/// from 1 ns to one hour; longer values are counted as one hour.
pub type Histogram = hdrhistogram::Histogram<u64>;

/// The longest latency told apart: one hour.
const MAX_NS: u64 = 3_600_000_000_000;
const SIGFIG: u8 = 2;

/// An empty latency histogram.
pub fn histogram() -> Histogram {
    // 1 <= 1 ns, 2 * 1 <= one hour and 2 significant digits are valid bounds: cannot fail.
    Histogram::new_with_bounds(1, MAX_NS, SIGFIG).expect("constant, valid histogram bounds")
}

// The bucket layout of `Histogram` with a lowest value of 1 and 2 significant digits: 2^8 = 256
// sub-buckets (the smallest power of two >= 2 * 10^2), of which each power of two above the
// first bucket uses the upper half (128).
const SUB_MAGNITUDE: u32 = 8;
const HALF_MAGNITUDE: u32 = SUB_MAGNITUDE - 1;
const SUB_MASK: u64 = (1 << SUB_MAGNITUDE) - 1;

fn index(v: u64) -> usize {
    let bucket = (64 - SUB_MAGNITUDE) - (v | SUB_MASK).leading_zeros();
    let sub = (v >> bucket) as usize;
    ((bucket as usize + 1) << HALF_MAGNITUDE) + sub - (1 << HALF_MAGNITUDE)
}

/// The smallest value counted at `index`.
fn lowest(index: usize) -> u64 {
    let half = 1usize << HALF_MAGNITUDE;
    if index < half {
        return index as u64;
    }
    let bucket = (index >> HALF_MAGNITUDE) - 1;
    let sub = (index & (half - 1)) + half;
    (sub as u64) << bucket
}

/// One thread's acquire latencies while it measures: the bucket counts of a [`Histogram`] alone,
/// without its bookkeeping (total, minimum, maximum, overflow checks), which makes recording
/// 1.5-3x dearer (on an Intel Xeon VM: 3.5-7.7 ns per value against 2.3-2.5 ns here). Its
/// [`Recorder::add_to`] gives exactly the histogram that recording the same values into a
/// [`Histogram`] gives.
pub struct Recorder {
    counts: Box<[u64]>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            counts: vec![0; index(MAX_NS) + 1].into_boxed_slice(),
        }
    }
}

impl Recorder {
    /// Counts `ns` (values beyond one hour as one hour).
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[index(ns.min(MAX_NS))] += 1;
    }

    /// Adds these counts to `h`, a [`histogram`].
    pub fn add_to(&self, h: &mut Histogram) {
        for (i, &n) in self.counts.iter().enumerate().filter(|(_, &n)| n > 0) {
            h.saturating_record_n(lowest(i), n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_one_percent() {
        let mut h = histogram();
        for v in 1..=1000u64 {
            h.saturating_record(v);
        }
        h.saturating_record(u64::MAX); // counted as one hour, not lost
        assert_eq!(h.len(), 1001);
        let p50 = h.value_at_quantile(0.5);
        assert!((495..=506).contains(&p50), "{p50}");
        let p99 = h.value_at_quantile(0.99);
        assert!((985..=1000).contains(&p99), "{p99}");
        assert!(h.max().abs_diff(MAX_NS) < MAX_NS / 100, "{}", h.max());
    }

    #[test]
    fn recorder_gives_the_same_histogram() {
        let mut direct = histogram();
        let mut local = Recorder::default();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut values: Vec<u64> = vec![0, 1, 127, 128, 255, 256, 257, 1000, MAX_NS, u64::MAX];
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 64));
        }
        for &v in &values {
            direct.saturating_record(v.min(MAX_NS));
            local.record(v);
        }
        let mut converted = histogram();
        local.add_to(&mut converted);
        assert_eq!(converted, direct);
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(converted.value_at_quantile(q), direct.value_at_quantile(q));
        }
        assert_eq!(converted.max(), direct.max());
        assert_eq!(converted.len(), values.len() as u64);
    }
}
