//! What a run measured, the figures derived from it, and a plain-text table.

use crate::abi::HIST_BUCKETS;
use crate::{Config, Lock};
use std::fmt::Write as _;
use std::time::Duration;

/// One vCPU's counters for one lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VcpuStats {
    /// Lock acquisitions.
    pub acquisitions: u64,
    /// TSC cycles from calling `lock` to holding the lock, summed over acquisitions.
    pub acquire_cycles: u64,
    /// The part of `acquire_cycles` not spent halted: spinning, or preempted while spinning
    /// (the guest cannot tell those apart). `acquire_cycles - halt_cycles`.
    pub spin_cycles: u64,
    /// Halt exits (the pv `wait`).
    pub halts: u64,
    /// TSC cycles spent in halt exits, blocked or not.
    pub halt_cycles: u64,
    /// Kick exits (the pv `kick`).
    pub kicks: u64,
    /// TSC cycles spent in kick exits.
    pub kick_cycles: u64,
    /// TSC cycles of this vCPU's measured run, from the start signal to the stop flag.
    pub window_cycles: u64,
}

/// One lock's run: one VM, `vcpus` vCPUs, `duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct LockReport {
    /// The lock.
    pub lock: Lock,
    /// Wall time from the start signal until the last vCPU finished (includes the drain after
    /// the stop flag: with a lock that stalls, this exceeds the configured duration).
    pub wall: Duration,
    /// Per vCPU, in vCPU order.
    pub vcpus: Vec<VcpuStats>,
    /// Acquisitions counted inside the lock-protected data; equal to the vCPUs' total (checked).
    pub counted: u64,
    /// Acquire latency histogram over all vCPUs: entry `b` counts acquisitions that took
    /// `[2^b, 2^(b+1))` TSC cycles.
    pub hist: [u64; HIST_BUCKETS],
    /// `drain` workload: TSC cycles from the holder's release until the last of the queued
    /// vCPUs had the lock, per round.
    pub drain_cycles: Vec<u64>,
    /// TSC frequency in kHz (converts cycles to time).
    pub tsc_khz: u32,
    /// TSC cycles per 1,024 iterations of a spin loop (`PAUSE` + load) in the guest, measured at
    /// boot: converts cycles to spin iterations.
    pub spin_cost_1k: u64,
    /// TSC cycles of the fastest of 64 bare kick exits (nobody to wake) the guest made at boot:
    /// the exit round trip.
    pub exit_cycles: u64,
}

/// Every lock's run for one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// What ran.
    pub config: Config,
    /// One per lock, in the configuration's order.
    pub locks: Vec<LockReport>,
}

impl LockReport {
    /// Total acquisitions.
    pub fn acquisitions(&self) -> u64 {
        self.vcpus.iter().map(|v| v.acquisitions).sum()
    }

    /// Acquisitions per second of wall time.
    pub fn throughput(&self) -> f64 {
        self.acquisitions() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The fewest acquisitions of a vCPU over the most (1 = perfectly fair, 0 = a vCPU starved).
    pub fn fairness(&self) -> f64 {
        let min = self.vcpus.iter().map(|v| v.acquisitions).min().unwrap_or(0);
        let max = self.vcpus.iter().map(|v| v.acquisitions).max().unwrap_or(0);
        if max == 0 {
            0.0
        } else {
            min as f64 / max as f64
        }
    }

    /// Total halt exits.
    pub fn halts(&self) -> u64 {
        self.vcpus.iter().map(|v| v.halts).sum()
    }

    /// Total kick exits.
    pub fn kicks(&self) -> u64 {
        self.vcpus.iter().map(|v| v.kicks).sum()
    }

    /// Halt + kick exits per 1,000 acquisitions.
    pub fn exits_per_1k(&self) -> f64 {
        per_1k(self.halts() + self.kicks(), self.acquisitions())
    }

    /// Halt exits per 1,000 acquisitions.
    pub fn halts_per_1k(&self) -> f64 {
        per_1k(self.halts(), self.acquisitions())
    }

    /// Kick exits per 1,000 acquisitions.
    pub fn kicks_per_1k(&self) -> f64 {
        per_1k(self.kicks(), self.acquisitions())
    }

    /// Share of the vCPUs' time spent in `lock` without being halted (spinning, or preempted
    /// while spinning): summed spin cycles over summed run cycles.
    pub fn spin_share(&self) -> f64 {
        ratio(
            self.vcpus.iter().map(|v| v.spin_cycles).sum(),
            self.vcpus.iter().map(|v| v.window_cycles).sum(),
        )
    }

    /// Share of the vCPUs' time spent halted inside `lock`.
    pub fn halt_share(&self) -> f64 {
        ratio(
            self.vcpus.iter().map(|v| v.halt_cycles).sum(),
            self.vcpus.iter().map(|v| v.window_cycles).sum(),
        )
    }

    /// The bare exit round trip in microseconds (see [`exit_cycles`](LockReport::exit_cycles)).
    pub fn exit_us(&self) -> f64 {
        self.cycles_to_us(self.exit_cycles)
    }

    /// Mean time of one kick exit in microseconds (the exit round trip; the waker does not
    /// wait for the target), `None` without kicks.
    pub fn kick_exit_us(&self) -> Option<f64> {
        let (c, n) = self
            .vcpus
            .iter()
            .fold((0, 0), |(c, n), v| (c + v.kick_cycles, n + v.kicks));
        (n > 0).then(|| self.cycles_to_us(c) / n as f64)
    }

    /// Mean time of one halt exit in microseconds, from the `out` until the vCPU runs again
    /// (blocked until kicked, then waiting for a host CPU), `None` without halts.
    pub fn halt_us(&self) -> Option<f64> {
        let (c, n) = self
            .vcpus
            .iter()
            .fold((0, 0), |(c, n), v| (c + v.halt_cycles, n + v.halts));
        (n > 0).then(|| self.cycles_to_us(c) / n as f64)
    }

    /// Converts TSC cycles to microseconds.
    pub fn cycles_to_us(&self, cycles: u64) -> f64 {
        cycles as f64 * 1000.0 / f64::from(self.tsc_khz.max(1))
    }

    /// Median drain time in microseconds (`drain` workload), if any round completed.
    pub fn drain_us(&self) -> Option<f64> {
        median_u64(&self.drain_cycles).map(|c| self.cycles_to_us(c))
    }

    /// The share of acquisitions that took less time than `n` spin iterations would (see
    /// [`spin_cost_1k`](LockReport::spin_cost_1k); whole histogram buckets, as [`share_within`]).
    ///
    /// [`share_within`]: LockReport::share_within
    pub fn share_within_spins(&self, n: u64) -> f64 {
        self.share_within(n.saturating_mul(self.spin_cost_1k) / 1024)
    }

    /// The share of acquisitions that took fewer than `cycles` TSC cycles, from the histogram
    /// (counts whole buckets: `cycles` is rounded down to a power of two).
    pub fn share_within(&self, cycles: u64) -> f64 {
        let b = (63 - (cycles | 1).leading_zeros()) as usize;
        let below: u64 = self.hist.iter().take(b.min(HIST_BUCKETS)).sum();
        ratio(below, self.hist.iter().sum())
    }
}

fn per_1k(n: u64, acq: u64) -> f64 {
    if acq == 0 {
        0.0
    } else {
        n as f64 * 1000.0 / acq as f64
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn median_u64(v: &[u64]) -> Option<u64> {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get(s.len() / 2).copied()
}

/// Acquisitions per second in a short form (`1.23 M`, `45.6 k`).
fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// A plain-text table of a report: one row per lock with throughput, its ratio to the best
/// lock, fairness, exits per 1,000 acquisitions and spin share.
pub fn render_table(r: &Report) -> String {
    let c = &r.config;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "guest lab: {} vCPUs, workload {}, {:?} per lock",
        c.vcpus,
        c.workload.id(),
        c.duration
    );
    let best = r
        .locks
        .iter()
        .map(|l| l.throughput())
        .fold(0.0f64, f64::max);
    let _ = writeln!(
        s,
        "{:<12} {:>10} {:>7} {:>9} {:>8} {:>8} {:>8} {:>6} {:>6}{}",
        "lock",
        "acq/s",
        "vs best",
        "fairness",
        "exits/1k",
        "halts/1k",
        "kicks/1k",
        "spin",
        "halt",
        if c.workload == crate::Workload::Drain {
            "  drain µs"
        } else {
            ""
        }
    );
    for l in &r.locks {
        let _ = write!(
            s,
            "{:<12} {:>10} {:>6.2}x {:>9.2} {:>8.1} {:>8.1} {:>8.1} {:>5.0}% {:>5.0}%",
            l.lock.id(),
            si(l.throughput()),
            if best > 0.0 {
                l.throughput() / best
            } else {
                0.0
            },
            l.fairness(),
            l.exits_per_1k(),
            l.halts_per_1k(),
            l.kicks_per_1k(),
            100.0 * l.spin_share(),
            100.0 * l.halt_share(),
        );
        if c.workload == crate::Workload::Drain {
            match l.drain_us() {
                Some(us) => {
                    let _ = write!(s, " {us:>9.0}");
                }
                None => s.push_str("         -"),
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Workload;

    fn report(acq: &[u64], halts: u64) -> LockReport {
        LockReport {
            lock: Lock::QueuedPv,
            wall: Duration::from_secs(2),
            vcpus: acq
                .iter()
                .map(|&a| VcpuStats {
                    acquisitions: a,
                    acquire_cycles: 900,
                    spin_cycles: 600,
                    halts,
                    halt_cycles: 300,
                    kicks: halts,
                    kick_cycles: 10,
                    window_cycles: 1000,
                })
                .collect(),
            counted: acq.iter().sum(),
            hist: [0; HIST_BUCKETS],
            drain_cycles: vec![3_000, 1_000, 2_000],
            tsc_khz: 1_000_000,
            spin_cost_1k: 40_000,
            exit_cycles: 20_000,
        }
    }

    #[test]
    fn derived_figures() {
        let r = report(&[1000, 500], 5);
        assert_eq!(r.acquisitions(), 1500);
        assert_eq!(r.throughput(), 750.0);
        assert_eq!(r.fairness(), 0.5);
        assert_eq!(r.exits_per_1k(), 20.0 * 1000.0 / 1500.0);
        assert_eq!(r.spin_share(), 0.6);
        assert_eq!(r.halt_share(), 0.3);
        assert_eq!(r.drain_us(), Some(2.0));
        // 2 vCPUs x 10 cycles over 2 x 5 kicks at 1 GHz; 2 x 300 cycles over 2 x 5 halts.
        assert_eq!(r.kick_exit_us(), Some(0.002));
        assert_eq!(r.halt_us(), Some(0.06));
        assert_eq!(report(&[1], 0).halt_us(), None);
        assert_eq!(r.exit_us(), 20.0);
        assert_eq!(report(&[0, 0], 0).fairness(), 0.0);
        assert_eq!(report(&[0, 0], 1).exits_per_1k(), 0.0);
    }

    #[test]
    fn share_within_counts_whole_buckets() {
        let mut r = report(&[1], 0);
        r.hist[3] = 1; // 8..16 cycles
        r.hist[10] = 3; // 1024..2048
        assert_eq!(r.share_within(16), 0.25);
        assert_eq!(r.share_within(1024), 0.25);
        assert_eq!(r.share_within(2048), 1.0);
    }

    #[test]
    fn table_has_a_row_per_lock_with_ratios() {
        let mut a = report(&[1000, 1000], 0);
        let mut b = report(&[250, 250], 0);
        a.lock = Lock::QueuedPv;
        b.lock = Lock::TicketSpin;
        let cfg = Config {
            workload: Workload::Drain,
            ..Config::default()
        };
        let t = render_table(&Report {
            config: cfg,
            locks: vec![a, b],
        });
        let rows: Vec<&str> = t.lines().collect();
        assert_eq!(rows.len(), 4, "{t}");
        assert!(
            rows[2].starts_with("queued-pv") && rows[2].contains("1.00x"),
            "{t}"
        );
        assert!(
            rows[3].starts_with("ticket-spin") && rows[3].contains("0.25x"),
            "{t}"
        );
        assert!(rows[1].contains("drain"), "{t}");
    }
}
