//! The guest lab's JSON document (`pvlock guest --json`), its tables and summary, and the
//! side-by-side view of several files. Independent of the VMM, so that `pvlock report` re-renders
//! guest files on any platform.
//!
//! The document (`format: "pvlock-guest"`, described field by field in docs/guest-lab.md):
//!
//! ```text
//! { "format": "pvlock-guest", "format_version": 1,
//!   "params": { "vcpus": [2, 8], "locks": [...], "workloads": [...], "duration_ms": 300, ... },
//!   "host": { "cpus": 2, "model_name": ..., "kvm": "kvm_pvm", "date": ..., ... },
//!   "results": [ { "workload": "counter", "lock": "queued-pv", "vcpus": 8, "acq_per_sec": ...,
//!                  "vs_best_peer": 2.1, "per_vcpu": [...], "latency_hist_log2_cycles": [...] } ] }
//! ```

pub use crate::output::set_ratios;
use crate::output::{best_peer, dur_ns, groups, ratio_to_best_peer, si, Ratio, Scored};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::Write;

/// The value of [`GuestOutput::format`]: how `pvlock report` tells a guest file from a bench file.
pub const FORMAT: &str = "pvlock-guest";

/// The run's parameters.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct GuestParams {
    pub vcpus: Vec<usize>,
    pub locks: Vec<String>,
    pub workloads: Vec<String>,
    /// Measured time per lock and vCPU count (counter, hashtable, stats).
    pub duration_ms: f64,
    /// The drain workload's time limit per lock and vCPU count (it ends after `drain_rounds`).
    pub drain_limit_ms: f64,
    pub repeats: u32,
    pub cs: u32,
    pub ncs: u64,
    pub buckets: u32,
    pub drain_rounds: u32,
    /// pvlock's spin budget in iterations; `None`: the library's `no_std` default.
    pub spin_iterations: Option<u32>,
    pub grace_ms: f64,
    /// Host CPUs given with `--cpus` (`None`: every CPU the process could run on).
    pub cpus: Option<Vec<usize>>,
    /// Whether the tables show each lock's vCPUs (`--per-vcpu`) and latency lines (`--latency`).
    pub per_vcpu: bool,
    pub latency: bool,
    pub command: String,
    pub version: String,
    pub wall_s: f64,
}

/// The host the VMs ran on.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Host {
    /// Host CPUs the vCPU threads could run on.
    pub cpus: usize,
    pub cpu_list: Vec<usize>,
    pub model_name: String,
    pub kernel: String,
    /// Whether the host itself runs in a VM (the `hypervisor` CPU flag).
    pub hypervisor: bool,
    /// The KVM modules loaded (`kvm_intel`, `kvm_amd`, `kvm_pvm`), comma-separated.
    pub kvm: String,
    pub date: String,
    pub hostname: String,
}

/// One vCPU's counters in one run.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default)]
pub struct VcpuRecord {
    pub acquisitions: u64,
    /// TSC cycles from calling `lock` to holding the lock, summed.
    pub acquire_cycles: u64,
    /// `acquire_cycles` not spent halted (spinning, or preempted while spinning).
    pub spin_cycles: u64,
    pub halts: u64,
    pub halt_cycles: u64,
    pub kicks: u64,
    pub kick_cycles: u64,
    /// TSC cycles of the vCPU's measured run.
    pub window_cycles: u64,
}

/// One (workload, lock, vCPU count) result: the round with the median score (throughput, or
/// drain time for `drain`), with every round's figures attached.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct GuestRecord {
    pub workload: String,
    pub lock: String,
    pub vcpus: usize,
    /// Host CPUs.
    pub cpus: usize,
    /// Whether the lock halts and kicks (pvlock's hypervisor backend).
    pub pv: bool,
    /// Whether the lock is an outside peer (`tas`, `spin`, `spin-ticket`).
    pub peer: bool,
    pub duration_ms: f64,
    pub acquisitions: u64,
    /// From the start signal until the last vCPU finished.
    pub wall_s: f64,
    pub acq_per_sec: f64,
    pub min_vcpu_acquisitions: u64,
    pub max_vcpu_acquisitions: u64,
    pub min_max: f64,
    pub halts: u64,
    pub kicks: u64,
    pub halts_per_1k: f64,
    pub kicks_per_1k: f64,
    pub exits_per_1k: f64,
    /// Share of the vCPUs' time spent in `lock` not halted.
    pub spin_share: f64,
    /// Share of the vCPUs' time spent halted in `lock`.
    pub halt_share: f64,
    /// Mean kick exit and mean halt (until the vCPU runs again), microseconds.
    pub kick_us: Option<f64>,
    pub halt_us: Option<f64>,
    /// The bare exit round trip measured at boot, microseconds.
    pub exit_us: f64,
    /// Drain workload: median and per-round drain times, microseconds.
    pub drain_us: Option<f64>,
    pub drain_rounds_us: Vec<f64>,
    pub tsc_khz: u32,
    /// TSC cycles per 1,024 spin-loop iterations (`PAUSE` + load) in the guest.
    pub spin_cost_1k: u64,
    /// Acquire latency: entry `b` counts acquisitions of `[2^b, 2^(b+1))` TSC cycles.
    pub latency_hist_log2_cycles: Vec<u64>,
    pub per_vcpu: Vec<VcpuRecord>,
    pub repeats: u32,
    /// Every round's throughput, sorted, and in the order the rounds ran.
    pub repeat_acq_per_sec: Vec<f64>,
    pub round_acq_per_sec: Vec<f64>,
    /// Drain workload: every round's median drain time, in run order.
    pub round_drain_us: Vec<f64>,
    /// Score relative to the best peer of the group, round by round (median, min, max); the
    /// score is throughput, or for `drain` the inverse of the drain time.
    pub vs_best_peer: Option<f64>,
    pub vs_best_peer_min: Option<f64>,
    pub vs_best_peer_max: Option<f64>,
}

impl Scored for GuestRecord {
    type Key = Key;
    fn group(&self) -> Key {
        key(self)
    }
    fn is_peer_record(&self) -> bool {
        self.peer
    }
    /// Throughput, or drains per second for the drain workload.
    fn score(&self) -> f64 {
        if self.workload == "drain" {
            self.drain_us.map_or(0.0, |d| 1e6 / d.max(1e-9))
        } else {
            self.acq_per_sec
        }
    }
    fn round_scores(&self) -> Cow<'_, [f64]> {
        if self.workload == "drain" {
            self.round_drain_us
                .iter()
                .map(|&d| if d > 0.0 { 1e6 / d } else { 0.0 })
                .collect()
        } else {
            Cow::Borrowed(&self.round_acq_per_sec)
        }
    }
    fn set_ratio(&mut self, ratio: Option<Ratio>) {
        self.vs_best_peer = ratio.map(|x| x.median);
        self.vs_best_peer_min = ratio.map(|x| x.min);
        self.vs_best_peer_max = ratio.map(|x| x.max);
    }
}

/// A whole `pvlock guest --json` file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestOutput {
    /// Always [`FORMAT`].
    pub format: String,
    pub format_version: u32,
    #[serde(default)]
    pub params: GuestParams,
    #[serde(default)]
    pub host: Host,
    pub results: Vec<GuestRecord>,
}

/// The round with the median score, with every round's figures attached (`reps` in run order).
pub fn median(mut reps: Vec<GuestRecord>) -> GuestRecord {
    let rounds: Vec<f64> = reps.iter().map(|r| r.acq_per_sec).collect();
    let drains: Vec<f64> = reps.iter().filter_map(|r| r.drain_us).collect();
    reps.sort_by(|a, b| a.score().total_cmp(&b.score()));
    let mut sorted = rounds.clone();
    sorted.sort_by(f64::total_cmp);
    let n = reps.len();
    let mut m = reps.swap_remove(n / 2);
    m.repeats = n as u32;
    m.repeat_acq_per_sec = sorted;
    m.round_acq_per_sec = rounds;
    m.round_drain_us = if drains.len() == n { drains } else { vec![] };
    m
}

type Key = (String, usize);

fn key(r: &GuestRecord) -> Key {
    (r.workload.clone(), r.vcpus)
}

fn us(x: f64) -> String {
    dur_ns(x * 1e3)
}

fn pct(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

const LEGEND: &str = "\
Columns: acq/s = lock acquisitions per second, all vCPUs together (higher is better);
  vs peer = acq/s relative to the fastest peer (tas, spin, spin-ticket) of the same vCPU count,
  round by round (each round runs every lock once, one VM each), median over the rounds;
  (rounds) = the smallest and largest of those per-round ratios: differences inside it are noise;
  min/max = fewest / most acquisitions of any one vCPU (1.00 = fair, 0 = a vCPU starved);
  halts/1k, kicks/1k = halt and kick VM exits per 1000 acquisitions;
  spin = share of all vCPUs' time spent in lock() not halted (spinning, or preempted while
  spinning); halted = share spent halted in lock(); kick = mean time of a kick exit; wait = mean
  time from a halt until the vCPU runs again. Each row is the round with the median acq/s.";

const DRAIN_LEGEND: &str = "\
Drain: vCPU 0 holds the lock until every other vCPU waits for it, then releases it; drain = the
  time until the last waiter has had the lock (median of the rounds of the reported run);
  /waiter = drain over the n-1 waiters; vs peer = the best peer's drain time over the lock's.";

/// The group's heading.
fn group_title(k: &Key, rows: &[&GuestRecord]) -> String {
    let (wl, n) = (&k.0, k.1);
    let cpus = rows[0].cpus.max(1);
    let what = if n > cpus && n % cpus == 0 {
        format!("{}x more vCPUs than CPUs", n / cpus)
    } else if n > cpus {
        "more vCPUs than CPUs".to_string()
    } else if n == cpus {
        "one vCPU per CPU".to_string()
    } else {
        "fewer vCPUs than CPUs".to_string()
    };
    let mut exits: Vec<f64> = rows
        .iter()
        .map(|r| r.exit_us)
        .filter(|&x| x > 0.0)
        .collect();
    exits.sort_by(f64::total_cmp);
    let mut s = format!("{wl}: {n} vCPUs on {cpus} CPUs ({what})");
    if let Some(x) = exits.get(exits.len() / 2) {
        s += &format!("; bare VM exit {}", us(*x));
    }
    s
}

/// Prints the tables and the summary of one guest lab run.
pub fn print_report(w: &mut impl Write, doc: &GuestOutput) -> std::io::Result<()> {
    let h = &doc.host;
    let p = &doc.params;
    writeln!(
        w,
        "pvlock guest: {} vCPUs each on a host thread, {} CPUs ({}), {}, KVM {}, kernel {}, {}",
        p.vcpus
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join("/"),
        h.cpus,
        if h.model_name.is_empty() {
            "unknown CPU"
        } else {
            &h.model_name
        },
        if h.hypervisor {
            "virtual machine"
        } else {
            "bare metal"
        },
        if h.kvm.is_empty() { "?" } else { &h.kvm },
        h.kernel,
        h.date
    )?;
    let measured = p.workloads.iter().any(|w| w != "drain");
    let mut line = String::new();
    if measured {
        line += &format!(
            "{} per lock and vCPU count, median of {} round(s); counter critical section = {} writes \
             to 2 cache lines; non-critical work = random 0..{} multiply-adds",
            crate::args::show(std::time::Duration::from_secs_f64(p.duration_ms / 1e3)),
            p.repeats,
            p.cs,
            2 * p.ncs
        );
    }
    if p.workloads.iter().any(|w| w == "drain") {
        if !line.is_empty() {
            line += "; ";
        }
        line += &format!(
            "drain: {} rounds per run, {} run(s), time limit {}",
            p.drain_rounds,
            p.repeats,
            crate::args::show(std::time::Duration::from_secs_f64(p.drain_limit_ms / 1e3))
        );
    }
    writeln!(
        w,
        "{line}; pvlock spin budget: {}.",
        match p.spin_iterations {
            Some(n) => format!("{n} iterations"),
            None => "the library's no_std default".to_string(),
        }
    )?;
    if measured {
        writeln!(w, "{LEGEND}")?;
    }
    if !measured || p.workloads.iter().any(|w| w == "drain") {
        writeln!(w, "{DRAIN_LEGEND}")?;
    }
    for (k, rows) in groups(&doc.results) {
        writeln!(w)?;
        writeln!(w, "{}", group_title(&k, &rows))?;
        let drain = k.0 == "drain";
        if drain {
            writeln!(
                w,
                "  {:<12} {:>9} {:>8} {:>10} {:>9} {:>9} {:>9} {:>6} {:>7}",
                "lock",
                "drain",
                "vs peer",
                "(rounds)",
                "/waiter",
                "halts/1k",
                "kicks/1k",
                "spin",
                "halted"
            )?;
        } else {
            writeln!(
                w,
                "  {:<12} {:>8} {:>8} {:>10} {:>7} {:>9} {:>9} {:>5} {:>7} {:>8} {:>8}",
                "lock",
                "acq/s",
                "vs peer",
                "(rounds)",
                "min/max",
                "halts/1k",
                "kicks/1k",
                "spin",
                "halted",
                "kick",
                "wait"
            )?;
        }
        let bp = best_peer(&rows);
        for r in &rows {
            let (ratio, spread) = match ratio_to_best_peer(*r, &rows) {
                Some(x) => (x.show(), x.spread()),
                None => ("-".into(), String::new()),
            };
            let flag = if bp.is_some_and(|b| std::ptr::eq(b, *r)) {
                " (best peer)"
            } else {
                ""
            };
            let opt_us = |x: Option<f64>| x.map_or_else(|| "-".to_string(), us);
            if drain {
                let waiters = r.vcpus.saturating_sub(1).max(1) as f64;
                writeln!(
                    w,
                    "  {:<12} {:>9} {:>8} {:>10} {:>9} {:>9.1} {:>9.1} {:>6} {:>7}{flag}",
                    r.lock,
                    opt_us(r.drain_us),
                    ratio,
                    spread,
                    opt_us(r.drain_us.map(|d| d / waiters)),
                    r.halts_per_1k,
                    r.kicks_per_1k,
                    pct(r.spin_share),
                    pct(r.halt_share),
                )?;
            } else {
                writeln!(
                    w,
                    "  {:<12} {:>8} {:>8} {:>10} {:>7.2} {:>9.1} {:>9.1} {:>5} {:>7} {:>8} {:>8}{flag}",
                    r.lock,
                    si(r.acq_per_sec),
                    ratio,
                    spread,
                    r.min_max,
                    r.halts_per_1k,
                    r.kicks_per_1k,
                    pct(r.spin_share),
                    pct(r.halt_share),
                    opt_us(r.kick_us),
                    opt_us(r.halt_us),
                )?;
            }
        }
        if p.latency && !drain {
            writeln!(
                w,
                "  acquire latency: % of acquisitions taken within 2^k spin iterations; past 2^16: \
                 how many, and their share of the acquire time (estimated)"
            )?;
            writeln!(
                w,
                "  {:<12} {:>7} {:>7} {:>7} {:>7} {:>7} {:>17} {:>6}",
                "lock", "2^4", "2^8", "2^10", "2^12", "2^16", "past 2^16", "time"
            )?;
            for r in &rows {
                writeln!(w, "{}", latency_line(r))?;
            }
        }
        if p.per_vcpu {
            for r in &rows {
                print_per_vcpu(w, r)?;
            }
        }
    }
    writeln!(w)?;
    for line in summary(&doc.results) {
        writeln!(w, "{line}")?;
    }
    Ok(())
}

/// The share of acquisitions that took less than `cycles`, from the log2 histogram (whole
/// buckets: `cycles` is rounded down to a power of two).
fn share_below(hist: &[u64], cycles: u64) -> f64 {
    let b = (63 - (cycles | 1).leading_zeros()) as usize;
    let total: u64 = hist.iter().sum();
    let below: u64 = hist.iter().take(b).sum();
    if total == 0 {
        0.0
    } else {
        below as f64 / total as f64
    }
}

/// The share of acquire time spent in acquisitions of at least `cycles`, estimated with each
/// bucket's midpoint (1.5 x 2^b cycles).
fn time_share_from(hist: &[u64], cycles: u64) -> f64 {
    let b = (63 - (cycles | 1).leading_zeros()) as usize;
    let t = |(i, &n): (usize, &u64)| n as f64 * 1.5 * 2f64.powi(i as i32);
    let total: f64 = hist.iter().enumerate().map(t).sum();
    let from: f64 = hist.iter().enumerate().skip(b).map(t).sum();
    if total > 0.0 {
        from / total
    } else {
        0.0
    }
}

fn latency_line(r: &GuestRecord) -> String {
    let h = &r.latency_hist_log2_cycles;
    let cycles = |k: u32| (1u64 << k).saturating_mul(r.spin_cost_1k) / 1024;
    let mut s = format!("  {:<12}", r.lock);
    for k in [4, 8, 10, 12, 16] {
        s += &format!(" {:>7.3}", 100.0 * share_below(h, cycles(k)));
    }
    let b = (63 - (cycles(16) | 1).leading_zeros()) as usize;
    let past: u64 = h.iter().skip(b).sum();
    let n: u64 = h.iter().sum();
    s += &format!(
        " {:>17} {:>5.1}%",
        format!("{past} of {n}"),
        100.0 * time_share_from(h, cycles(16))
    );
    s
}

fn print_per_vcpu(w: &mut impl Write, r: &GuestRecord) -> std::io::Result<()> {
    writeln!(w, "  {} per vCPU:", r.lock)?;
    writeln!(
        w,
        "    {:>5} {:>10} {:>8} {:>8} {:>6} {:>7}",
        "vCPU", "acq", "halts", "kicks", "spin", "halted"
    )?;
    for (i, v) in r.per_vcpu.iter().enumerate() {
        let win = v.window_cycles.max(1) as f64;
        writeln!(
            w,
            "    {i:>5} {:>10} {:>8} {:>8} {:>6} {:>7}",
            v.acquisitions,
            v.halts,
            v.kicks,
            pct(v.spin_cycles as f64 / win),
            pct(v.halt_cycles as f64 / win)
        )?;
    }
    Ok(())
}

/// Least-squares slope of ln(y) over ln(x).
fn loglog_slope(pts: &[(f64, f64)]) -> Option<f64> {
    let pts: Vec<(f64, f64)> = pts
        .iter()
        .filter(|p| p.0 > 0.0 && p.1 > 0.0)
        .map(|p| (p.0.ln(), p.1.ln()))
        .collect();
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return None;
    }
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// The plain-English summary lines.
pub fn summary(results: &[GuestRecord]) -> Vec<String> {
    let mut out = vec!["Summary:".to_string()];
    for (k, rows) in &groups(results) {
        let label = format!("{} [{} vCPUs]", k.0, k.1);
        let Some(best) = rows.iter().max_by(|a, b| a.score().total_cmp(&b.score())) else {
            continue;
        };
        let drain = k.0 == "drain";
        let mut line = if drain {
            format!(
                "  {label}: fastest to drain is {} ({})",
                best.lock,
                best.drain_us.map_or_else(|| "-".into(), us)
            )
        } else {
            format!(
                "  {label}: fastest is {} ({} acq/s)",
                best.lock,
                si(best.acq_per_sec)
            )
        };
        let qpv = rows.iter().find(|r| r.lock == "queued-pv");
        if let (Some(q), Some(bp), Some(x)) = (
            qpv,
            best_peer(rows),
            qpv.and_then(|q| ratio_to_best_peer(*q, rows)),
        ) {
            line += &format!(
                "; queued-pv is {} the best peer {} ({}, rounds {}",
                x.show(),
                bp.lock,
                if (x.median - 1.0).abs() < 0.005 {
                    "on par"
                } else if x.median > 1.0 {
                    "faster"
                } else {
                    "slower"
                },
                x.spread()
            );
            if !drain {
                line += &format!(
                    ", fairness {:.2} vs {:.2}, {:.2} exits per 1000 acquisitions",
                    q.min_max, bp.min_max, q.exits_per_1k
                );
            }
            line += ")";
        }
        line += ".";
        out.push(line);
        if !drain && k.1 > rows[0].cpus {
            let ts = rows.iter().find(|r| r.lock == "ticket-spin");
            if let (Some(q), Some(ts)) = (qpv, ts) {
                if ts.acq_per_sec > 0.0 && q.acq_per_sec > 2.0 * ts.acq_per_sec {
                    out.push(format!(
                        "    With more vCPUs than CPUs the plain ticket lock collapses: ticket-spin did {} \
                         acq/s ({} of the vCPUs' time spinning), queued-pv {} ({:.0}x).",
                        si(ts.acq_per_sec),
                        pct(ts.spin_share),
                        si(q.acq_per_sec),
                        q.acq_per_sec / ts.acq_per_sec
                    ));
                }
            }
        }
    }
    // Drain: how the drain time grows with the number of waiters.
    let mut locks: Vec<&str> = Vec::new();
    for r in results.iter().filter(|r| r.workload == "drain") {
        if !locks.contains(&r.lock.as_str()) {
            locks.push(&r.lock);
        }
    }
    let mut fits = Vec::new();
    for lock in locks {
        let pts: Vec<(f64, f64)> = results
            .iter()
            .filter(|r| r.workload == "drain" && r.lock == lock)
            .filter_map(|r| Some((r.vcpus.saturating_sub(1) as f64, r.drain_us?)))
            .collect();
        if let Some(k) = loglog_slope(&pts) {
            fits.push(format!("{lock} {k:.2}"));
        }
    }
    if !fits.is_empty() {
        out.push(format!(
            "  Drain time grows as (n-1)^k with n vCPUs (least-squares fit over the vCPU counts): {}.",
            fits.join(", ")
        ));
    }
    out
}

/// Side by side: acq/s and min/max (drain: drain time) per input file.
pub fn print_side_by_side(
    w: &mut impl Write,
    docs: &[(String, GuestOutput)],
) -> std::io::Result<()> {
    writeln!(w, "Side by side ({} guest lab runs):", docs.len())?;
    for (i, (name, d)) in docs.iter().enumerate() {
        let h = &d.host;
        writeln!(
            w,
            "  [{}] {name}: {} CPUs, {}, KVM {}, {}",
            i + 1,
            h.cpus,
            h.model_name,
            h.kvm,
            h.date
        )?;
    }
    let mut keys: Vec<Key> = Vec::new();
    for r in docs.iter().flat_map(|d| d.1.results.iter()) {
        if !keys.contains(&key(r)) {
            keys.push(key(r));
        }
    }
    for k in keys {
        let drain = k.0 == "drain";
        writeln!(w)?;
        writeln!(w, "{}: {} vCPUs", k.0, k.1)?;
        write!(w, "  {:<12}", "lock")?;
        for i in 0..docs.len() {
            if drain {
                write!(w, " {:>11}", format!("drain [{}]", i + 1))?;
            } else {
                write!(w, " {:>11} {:>7}", format!("acq/s [{}]", i + 1), "min/max")?;
            }
        }
        writeln!(w)?;
        let mut locks: Vec<&str> = Vec::new();
        for r in docs.iter().flat_map(|d| d.1.results.iter()) {
            if key(r) == k && !locks.contains(&r.lock.as_str()) {
                locks.push(&r.lock);
            }
        }
        for lock in locks {
            write!(w, "  {lock:<12}")?;
            for (_, d) in docs {
                let r = d.results.iter().find(|r| key(r) == k && r.lock == lock);
                match (r, drain) {
                    (Some(r), true) => {
                        write!(w, " {:>11}", r.drain_us.map_or_else(|| "-".into(), us))?
                    }
                    (Some(r), false) => write!(w, " {:>11} {:>7.2}", si(r.acq_per_sec), r.min_max)?,
                    (None, true) => write!(w, " {:>11}", "-")?,
                    (None, false) => write!(w, " {:>11} {:>7}", "-", "-")?,
                }
            }
            writeln!(w)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(lock: &str, peer: bool, rounds: &[f64]) -> GuestRecord {
        GuestRecord {
            workload: "counter".into(),
            lock: lock.into(),
            vcpus: 8,
            cpus: 2,
            peer,
            acq_per_sec: rounds[0],
            round_acq_per_sec: rounds.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn ratio_is_paired_by_round_and_against_peers_only() {
        let q = rec("queued-pv", false, &[10.0, 4.0, 9.0]);
        // Faster than every peer, but not a peer: not the reference.
        let other = rec("byte-pv", false, &[100.0, 100.0, 100.0]);
        let tas = rec("tas", true, &[5.0, 2.0, 6.0]);
        let spin = rec("spin", true, &[4.0, 4.0, 3.0]);
        let rows = [&q, &other, &tas, &spin];
        let r = ratio_to_best_peer(&q, &rows).unwrap();
        // Per round: 10/5, 4/4, 9/6.
        assert_eq!((r.median, r.min, r.max), (1.5, 1.0, 2.0));
        assert_eq!(ratio_to_best_peer(&q, &[&q, &other]), None);
    }

    #[test]
    fn drain_scores_are_inverse_times() {
        let mut q = rec("queued-pv", false, &[1.0, 1.0, 1.0]);
        let mut t = rec("tas", true, &[1.0, 1.0, 1.0]);
        for (r, d) in [
            (&mut q, [100.0, 200.0, 300.0]),
            (&mut t, [50.0, 400.0, 150.0]),
        ] {
            r.workload = "drain".into();
            r.round_drain_us = d.to_vec();
            r.drain_us = Some(d[1]);
        }
        let r = ratio_to_best_peer(&q, &[&q, &t]).unwrap();
        // Best peer's time over ours: 50/100, 400/200, 150/300.
        assert_eq!((r.min, r.median, r.max), (0.5, 0.5, 2.0));
    }

    #[test]
    fn median_keeps_the_median_round_and_every_round() {
        let reps: Vec<GuestRecord> = [3.0, 1.0, 2.0]
            .iter()
            .map(|&x| {
                let mut r = rec("tas", true, &[x]);
                r.min_max = x / 10.0;
                r
            })
            .collect();
        let m = median(reps);
        assert_eq!(m.acq_per_sec, 2.0);
        assert_eq!(m.min_max, 0.2, "the figures of one round, not mixed");
        assert_eq!(m.repeats, 3);
        assert_eq!(m.round_acq_per_sec, [3.0, 1.0, 2.0]);
        assert_eq!(m.repeat_acq_per_sec, [1.0, 2.0, 3.0]);
    }

    #[test]
    fn latency_shares_count_whole_buckets() {
        let mut h = vec![0u64; 40];
        h[3] = 1; // 8..16 cycles
        h[10] = 3; // 1024..2048
        assert_eq!(share_below(&h, 16), 0.25);
        assert_eq!(share_below(&h, 2048), 1.0);
        let t = time_share_from(&h, 1024);
        assert!(
            (t - 3.0 * 1024.0 / (3.0 * 1024.0 + 8.0)).abs() < 1e-12,
            "{t}"
        );
    }

    #[test]
    fn drain_exponent_is_fitted() {
        // t = 3 (n-1)^2
        let pts: Vec<(f64, f64)> = [1.0, 3.0, 7.0, 15.0]
            .iter()
            .map(|&x: &f64| (x, 3.0 * x * x))
            .collect();
        assert!((loglog_slope(&pts).unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(loglog_slope(&pts[..1]), None);
    }
}
