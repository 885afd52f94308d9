//! Records, the JSON document, tables and the plain-English summary.

use crate::locks::is_peer;
use crate::machine::Machine;
use crate::run::{CellOut, CellSpec};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;

/// The run's parameters (top-level `params` in the JSON).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Params {
    pub threads: Option<Vec<String>>,
    pub cs: u32,
    pub ncs: u64,
    pub duration_ms: f64,
    pub repeats: u32,
    pub locks: Vec<String>,
    pub scenarios: Vec<String>,
    pub workloads: Vec<String>,
    pub antagonists: usize,
    pub cpus: Option<Vec<usize>>,
    pub buckets: usize,
    /// `--suite` (absent in files written before it existed).
    pub suite: String,
    /// The random workload's numbers of locks.
    pub nlocks: Vec<usize>,
    /// Acquisitions of each thread in the short-lived scenario.
    pub acquisitions: u64,
    /// The rwlock workload's shares of reads (percent).
    pub read_pct: Vec<usize>,
    pub latency_sample_every: u64,
    pub command: String,
    pub version: String,
    pub wall_s: f64,
}

/// One (scenario, workload, lock, threads) result.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Record {
    pub scenario: String,
    pub workload: String,
    pub lock: String,
    pub threads: usize,
    pub cpus: usize,
    pub antagonists: usize,
    pub ops: u64,
    pub elapsed_s: f64,
    pub ops_per_sec: f64,
    pub ns_per_op: f64,
    pub min_thread_ops: u64,
    pub max_thread_ops: u64,
    pub min_max: f64,
    pub jain: f64,
    pub cv: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub latency_samples: u64,
    pub cpu_ns_per_op: f64,
    pub ctx_switches_per_op: f64,
    pub voluntary_ctx_per_op: f64,
    pub involuntary_ctx_per_op: f64,
    pub stats: BTreeMap<String, u64>,
    pub repeats: u32,
    pub repeat_ops_per_sec: Vec<f64>,
    /// The same throughputs in the order they were run: repeat `i` of every lock of a group ran
    /// back to back (round `i`), which is what makes per-round ratios meaningful. Absent in files
    /// written before it existed.
    #[serde(default)]
    pub round_ops_per_sec: Vec<f64>,
    pub stalled: bool,
    pub leaked: usize,
    pub mutual_exclusion_ok: bool,
    /// Short-lived cells: the rounds of fresh threads (0 otherwise).
    pub rounds: u64,
    /// Throughput relative to the fastest peer of the group: the median over the rounds of the
    /// per-round ratios, as printed in the tables (absent without a peer, or in older files).
    pub vs_best_peer: Option<f64>,
    /// The smallest and largest of those per-round ratios.
    pub vs_best_peer_min: Option<f64>,
    pub vs_best_peer_max: Option<f64>,
    /// The rwlock workload: fewest / most reads of one thread, and the same for writes.
    pub min_max_reads: Option<f64>,
    pub min_max_writes: Option<f64>,
}

/// A whole JSON file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Output {
    #[serde(default)]
    pub params: Params,
    #[serde(default)]
    pub machine: Machine,
    pub results: Vec<Record>,
}

/// Builds the record of one cell.
pub fn record(
    sc: &str,
    wl: &str,
    lock: &str,
    spec: &CellSpec,
    cpus: usize,
    antagonists: usize,
    out: &CellOut,
) -> Record {
    let ops: u64 = out.per_thread.iter().sum();
    let secs = out.elapsed.as_secs_f64().max(1e-9);
    let n = out.per_thread.len().max(1) as f64;
    let min = out.per_thread.iter().copied().min().unwrap_or(0);
    let max = out.per_thread.iter().copied().max().unwrap_or(0);
    let mean = ops as f64 / n;
    let sumsq: f64 = out
        .per_thread
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum();
    let jain = if sumsq > 0.0 {
        (ops as f64) * (ops as f64) / (n * sumsq)
    } else {
        0.0
    };
    let var = out
        .per_thread
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let cv = if mean > 0.0 { var.sqrt() / mean } else { 0.0 };
    let per_op = |x: u64| if ops > 0 { x as f64 / ops as f64 } else { 0.0 };
    let stats = if out.pvlock {
        out.stats.iter().map(|(k, v)| (k.to_string(), v)).collect()
    } else {
        BTreeMap::new()
    };
    let ops_per_sec = ops as f64 / secs;
    Record {
        scenario: sc.into(),
        workload: wl.into(),
        lock: lock.into(),
        threads: spec.threads,
        cpus,
        antagonists,
        ops,
        elapsed_s: secs,
        ops_per_sec,
        ns_per_op: if ops > 0 { 1e9 / ops_per_sec } else { 0.0 },
        min_thread_ops: min,
        max_thread_ops: max,
        min_max: if max > 0 {
            min as f64 / max as f64
        } else {
            0.0
        },
        jain,
        cv,
        p50_ns: out.hist.value_at_quantile(0.5),
        p99_ns: out.hist.value_at_quantile(0.99),
        p999_ns: out.hist.value_at_quantile(0.999),
        max_ns: out.hist.max(),
        latency_samples: out.hist.len(),
        cpu_ns_per_op: per_op(out.usage.cpu_ns),
        ctx_switches_per_op: per_op(out.usage.voluntary + out.usage.involuntary),
        voluntary_ctx_per_op: per_op(out.usage.voluntary),
        involuntary_ctx_per_op: per_op(out.usage.involuntary),
        stats,
        repeats: 1,
        repeat_ops_per_sec: vec![ops_per_sec],
        round_ops_per_sec: vec![ops_per_sec],
        stalled: out.stalled,
        leaked: out.leaked,
        mutual_exclusion_ok: out.counted.is_none_or(|c| c == out.final_ops),
        rounds: out.rounds,
        vs_best_peer: None,
        vs_best_peer_min: None,
        vs_best_peer_max: None,
        min_max_reads: (wl.starts_with("rwlock")).then(|| {
            let reads: Vec<u64> = out
                .per_thread
                .iter()
                .zip(&out.per_thread_writes)
                .map(|(o, w)| o - w)
                .collect();
            min_max(&reads)
        }),
        min_max_writes: (wl.starts_with("rwlock")).then(|| min_max(&out.per_thread_writes)),
    }
}

/// Fewest over most (0 when all are 0).
fn min_max(v: &[u64]) -> f64 {
    let min = v.iter().copied().min().unwrap_or(0);
    let max = v.iter().copied().max().unwrap_or(0);
    if max > 0 {
        min as f64 / max as f64
    } else {
        0.0
    }
}

/// The repeat with the median throughput, with every repeat's throughput attached.
pub fn median(mut reps: Vec<Record>) -> Record {
    let rounds: Vec<f64> = reps.iter().map(|r| r.ops_per_sec).collect();
    reps.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
    let all: Vec<f64> = reps.iter().map(|r| r.ops_per_sec).collect();
    let ok = reps.iter().all(|r| r.mutual_exclusion_ok);
    let stalled = reps.iter().any(|r| r.stalled);
    let n = reps.len();
    let mut m = reps.swap_remove(n / 2);
    m.repeats = n as u32;
    m.repeat_ops_per_sec = all;
    m.round_ops_per_sec = rounds;
    m.mutual_exclusion_ok = ok;
    m.stalled = stalled;
    m
}

/// `12.3 M`, `456 k`.
pub fn si(x: f64) -> String {
    let (v, u) = if x >= 1e9 {
        (x / 1e9, " G")
    } else if x >= 1e6 {
        (x / 1e6, " M")
    } else if x >= 1e3 {
        (x / 1e3, " k")
    } else {
        (x, "")
    };
    if v >= 100.0 {
        format!("{v:.0}{u}")
    } else if v >= 10.0 {
        format!("{v:.1}{u}")
    } else {
        format!("{v:.2}{u}")
    }
}

/// `85 ns`, `1.2 us`, `3.4 ms`.
pub fn dur_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.0} us", ns / 1e3)
    } else if ns >= 1e3 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

pub type Key = (String, String, usize, usize);

pub fn key(r: &Record) -> Key {
    (
        r.scenario.clone(),
        r.workload.clone(),
        r.threads,
        r.antagonists,
    )
}

/// What the ratio to the best peer needs of a record: `pvlock bench`'s and `pvlock guest`'s
/// records both implement it, so that both commands compute it the same way.
pub trait Scored {
    /// The group a record is compared within.
    type Key: PartialEq;
    fn group(&self) -> Self::Key;
    /// Whether the record is a peer's (a lock pvlock is compared against).
    fn is_peer_record(&self) -> bool;
    /// Higher is better (the median round's).
    fn score(&self) -> f64;
    /// Each round's score, in run order (empty in files that do not have them).
    fn round_scores(&self) -> Cow<'_, [f64]>;
    /// Stores the record's ratio to the best peer of its group.
    fn set_ratio(&mut self, ratio: Option<Ratio>);
}

impl Scored for Record {
    type Key = Key;
    fn group(&self) -> Key {
        key(self)
    }
    fn is_peer_record(&self) -> bool {
        is_peer(&self.lock)
    }
    fn score(&self) -> f64 {
        self.ops_per_sec
    }
    fn round_scores(&self) -> Cow<'_, [f64]> {
        Cow::Borrowed(&self.round_ops_per_sec)
    }
    fn set_ratio(&mut self, ratio: Option<Ratio>) {
        self.vs_best_peer = ratio.map(|x| x.median);
        self.vs_best_peer_min = ratio.map(|x| x.min);
        self.vs_best_peer_max = ratio.map(|x| x.max);
    }
}

/// Groups in first-seen order.
pub(crate) fn groups<R: Scored>(results: &[R]) -> Vec<(R::Key, Vec<&R>)> {
    let mut out: Vec<(R::Key, Vec<&R>)> = Vec::new();
    for r in results {
        let k = r.group();
        match out.iter_mut().find(|g| g.0 == k) {
            Some(g) => g.1.push(r),
            None => out.push((k, vec![r])),
        }
    }
    out
}

fn group_title(k: &Key, cpus: usize) -> String {
    let (sc, wl, threads, hogs) = k;
    let what = match sc.as_str() {
        "uncontended" => "one thread, no contention: the cost of lock + unlock".to_string(),
        "tiny" => "no work between acquisitions".to_string(),
        "short-lived" => {
            "a fresh set of threads every round, no work between acquisitions".to_string()
        }
        "native" => "one thread per CPU".to_string(),
        "noisy" => {
            format!("one thread per CPU, plus {hogs} CPU-hog processes competing for the CPUs")
        }
        s if s.starts_with("oversub") => {
            format!("{}x more threads than CPUs", threads / cpus.max(1))
        }
        _ => String::new(),
    };
    let t = if *threads == 1 { "thread" } else { "threads" };
    let mut s = format!("{sc} [{wl}]: {threads} {t} on {cpus} CPUs");
    if *hogs > 0 && sc != "noisy" {
        s += &format!(" + {hogs} CPU hogs");
    }
    if !what.is_empty() {
        s += &format!(" ({what})");
    }
    s
}

/// A throughput relative to the fastest peer: the median and the spread over the rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Ratio {
    /// `0.95x`
    pub fn show(&self) -> String {
        format!("{:.2}x", self.median)
    }
    /// `0.90-1.02`
    pub fn spread(&self) -> String {
        format!("{:.2}-{:.2}", self.min, self.max)
    }
}

/// Score of `r` relative to the best peer of its group: per round, `r / best peer of that
/// round`, when every peer has the same rounds as `r` (this machine's speed can change by 2x
/// within a minute, and a round runs all locks back to back); the median of those ratios and
/// their min-max. Else the ratio of the reported scores (older files, or a lock that is its own
/// best peer), with no spread.
pub fn ratio_to_best_peer<R: Scored>(r: &R, rows: &[&R]) -> Option<Ratio> {
    let peers: Vec<&R> = rows
        .iter()
        .copied()
        .filter(|p| p.is_peer_record())
        .collect();
    let mine = r.round_scores();
    let theirs: Vec<Cow<'_, [f64]>> = peers.iter().map(|p| p.round_scores()).collect();
    let n = mine.len();
    if n > 0 && !peers.is_empty() && theirs.iter().all(|t| t.len() == n) {
        let mut ratios: Vec<f64> = (0..n)
            .filter_map(|i| {
                let best = theirs.iter().map(|t| t[i]).fold(0.0, f64::max);
                (best > 0.0).then(|| mine[i] / best)
            })
            .collect();
        if !ratios.is_empty() {
            ratios.sort_by(f64::total_cmp);
            return Some(Ratio {
                median: ratios[ratios.len() / 2],
                min: ratios[0],
                max: ratios[ratios.len() - 1],
            });
        }
    }
    let best = best_peer(rows)?.score();
    (best > 0.0).then(|| {
        let x = r.score() / best;
        Ratio {
            median: x,
            min: x,
            max: x,
        }
    })
}

/// Fills in every record's ratio to the best peer of its group.
pub fn set_ratios<R: Scored>(results: &mut [R]) {
    let ratios: Vec<Option<Ratio>> = {
        let gs = groups(results);
        results
            .iter()
            .map(|r| {
                let rows = &gs.iter().find(|g| g.0 == r.group())?.1;
                ratio_to_best_peer(r, rows)
            })
            .collect()
    };
    for (r, x) in results.iter_mut().zip(ratios) {
        r.set_ratio(x);
    }
}

/// The best-scoring peer record among `rows`.
pub(crate) fn best_peer<'a, R: Scored>(rows: &[&'a R]) -> Option<&'a R> {
    rows.iter()
        .copied()
        .filter(|r| r.is_peer_record())
        .max_by(|a, b| a.score().total_cmp(&b.score()))
}

const LEGEND: &str = "\
Columns: ops/s = lock acquisitions per second, all threads together (higher is better);
  vs peer = ops/s relative to the fastest peer (std, parking_lot, spin, spin-ticket, ttas) in the same group,
  round by round (each round runs every lock once, back to back), median over the rounds;
  (rounds) = the smallest and largest of those per-round ratios: differences inside it are noise;
  min/max = fewest / most acquisitions of any one thread (1.00 = perfectly fair, 0 = a thread starved);
  p99 = 99th percentile time to acquire the lock (from lock() call to holding it); cpu/op = CPU time burnt per acquisition
  (spinning shows up here); ctx/1k ops = context switches per 1000 acquisitions (blocking and
  preemption show up here).";

/// Prints the tables and the summary of one run.
pub fn print_report(w: &mut impl Write, doc: &Output) -> std::io::Result<()> {
    let m = &doc.machine;
    let p = &doc.params;
    writeln!(
        w,
        "pvlock bench: {} CPUs ({}), {}{}, kernel {}, {}",
        m.cpus,
        if m.model_name.is_empty() {
            "unknown CPU"
        } else {
            &m.model_name
        },
        if m.hypervisor {
            "virtual machine"
        } else {
            "bare metal"
        },
        if m.available_parallelism != m.cpus && m.available_parallelism > 0 {
            format!(", available_parallelism {}", m.available_parallelism)
        } else {
            String::new()
        },
        m.kernel,
        m.date
    )?;
    writeln!(
        w,
        "{:.0} ms per cell, median of {} repeat(s); counter critical section = {} writes to 2 cache lines; \
         non-critical work = random 0..{} multiply-adds (none in uncontended, tiny, short-lived); \
         latency sampled on 1 in {} acquisitions.",
        p.duration_ms,
        p.repeats,
        p.cs,
        2 * p.ncs,
        p.latency_sample_every
    )?;
    if m.spin_ns_per_1k > 0 {
        writeln!(
            w,
            "pvlock spin budget: {} spin iterations of {:.1} ns (PAUSE + load, calibrated at start-up) = {}.",
            m.spin_budget_iterations,
            f64::from(m.spin_ns_per_1k) / 1024.0,
            dur_ns(f64::from(m.spin_budget_iterations) * f64::from(m.spin_ns_per_1k) / 1024.0),
        )?;
    }
    writeln!(w, "{LEGEND}")?;
    for (k, rows) in groups(&doc.results) {
        writeln!(w)?;
        writeln!(w, "{}", group_title(&k, rows[0].cpus))?;
        writeln!(
            w,
            "  {:<14} {:>9} {:>8} {:>10} {:>8} {:>9} {:>9} {:>10}",
            "lock", "ops/s", "vs peer", "(rounds)", "min/max", "p99", "cpu/op", "ctx/1k ops"
        )?;
        let bp = best_peer(&rows);
        for r in &rows {
            let (ratio, spread) = match ratio_to_best_peer(*r, &rows) {
                Some(x) => (x.show(), x.spread()),
                None => ("-".into(), String::new()),
            };
            let mut flags = String::new();
            if bp.is_some_and(|b| std::ptr::eq(b, *r)) {
                flags += " (best peer)";
            }
            if r.stalled {
                flags += " STALLED: workers were still waiting long after the deadline";
            }
            if !r.mutual_exclusion_ok {
                flags += " MUTUAL EXCLUSION FAILURE";
            }
            writeln!(
                w,
                "  {:<14} {:>9} {:>8} {:>10} {:>8.2} {:>9} {:>9} {:>10.1}{}",
                r.lock,
                si(r.ops_per_sec),
                ratio,
                spread,
                r.min_max,
                dur_ns(r.p99_ns as f64),
                dur_ns(r.cpu_ns_per_op),
                r.ctx_switches_per_op * 1e3,
                flags
            )?;
        }
        for r in &rows {
            if let Some(line) = queue_line(r) {
                writeln!(w, "{line}")?;
            }
        }
        let rw: Vec<String> = rows
            .iter()
            .filter_map(|r| {
                Some(format!(
                    "{} {:.2}/{:.2}",
                    r.lock, r.min_max_reads?, r.min_max_writes?
                ))
            })
            .collect();
        if !rw.is_empty() {
            writeln!(w, "  min/max of reads/writes per thread: {}", rw.join(", "))?;
        }
    }
    writeln!(w)?;
    for line in summary(&doc.results) {
        writeln!(w, "{line}")?;
    }
    Ok(())
}

/// With the `stats` feature: how much of its threads' time a pv `Queued` lock kept in its queue,
/// the mean stay, and why threads joined it (per 1000 acquisitions). `None` without queue time.
pub fn queue_line(r: &Record) -> Option<String> {
    let ns = *r.stats.get("pv_queued_ns")?;
    let get = |k: &str| r.stats.get(k).copied().unwrap_or(0);
    let (budget, pending, spin) = (
        get("pv_queued_budget"),
        get("pv_queued_pending"),
        get("pv_queued_spin"),
    );
    let entries = budget + pending + spin;
    let thread_ns = r.threads as f64 * r.elapsed_s * 1e9;
    if ns == 0 || entries == 0 || thread_ns <= 0.0 || r.ops == 0 {
        return None;
    }
    let per_k = |n: u64| n as f64 * 1e3 / r.ops as f64;
    Some(format!(
        "  {:<14} queued {:.0}% of thread time, mean stay {}; joined per 1k ops: {:.2} steal budget spent, {:.2} head spinning, {:.2} spin budget spent",
        r.lock,
        100.0 * ns as f64 / thread_ns,
        dur_ns(ns as f64 / entries as f64),
        per_k(budget),
        per_k(pending),
        per_k(spin)
    ))
}

/// The plain-English summary lines.
pub fn summary(results: &[Record]) -> Vec<String> {
    let mut out = vec!["Summary:".to_string()];
    let gs = groups(results);
    for (k, rows) in &gs {
        let label = format!(
            "{} [{}, {} thread{}]",
            k.0,
            k.1,
            k.2,
            if k.2 == 1 { "" } else { "s" }
        );
        let Some(best) = rows
            .iter()
            .max_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec))
        else {
            continue;
        };
        let mut line = format!(
            "  {label}: fastest is {} ({} ops/s",
            best.lock,
            si(best.ops_per_sec)
        );
        if k.0 == "uncontended" && best.ops_per_sec > 0.0 {
            line += &format!(", {:.1} ns per lock+unlock", 1e9 / best.ops_per_sec);
        }
        line += ")";
        let bp = best_peer(rows);
        let pv = rows.iter().find(|r| r.lock == "pvlock");
        if let (Some(pv), Some(bp), Some(ratio)) =
            (pv, bp, pv.and_then(|pv| ratio_to_best_peer(*pv, rows)))
        {
            line += &format!(
                "; {} is {} the best peer {} ({}, rounds {}{})",
                if k.1.starts_with("rwlock") {
                    "pvlock::RwLock"
                } else {
                    "pvlock::Mutex"
                },
                ratio.show(),
                bp.lock,
                if ratio.median >= 1.0 {
                    "faster"
                } else {
                    "slower"
                },
                ratio.spread(),
                if (pv.min_max - bp.min_max).abs() > 0.1 {
                    format!(", fairness {:.2} vs {:.2}", pv.min_max, bp.min_max)
                } else {
                    String::new()
                }
            );
        }
        line += ".";
        out.push(line);
        let oversub = k.2 > rows[0].cpus;
        if oversub {
            let st = rows.iter().find(|r| r.lock == "spin-ticket");
            // Only where it did collapse (with many locks a ticket lock is seldom contended).
            if let (Some(pv), Some(st)) = (pv, st) {
                if pv.ops_per_sec <= 2.0 * st.ops_per_sec {
                    continue;
                }
                out.push(format!(
                    "    With more threads than CPUs a plain ticket lock collapses: spin-ticket did {} ops/s, \
                     pvlock {} ops/s ({}x).",
                    si(st.ops_per_sec),
                    si(pv.ops_per_sec),
                    if st.ops_per_sec > 0.0 {
                        format!("{:.0}", pv.ops_per_sec / st.ops_per_sec)
                    } else {
                        "inf".into()
                    }
                ));
            }
        }
    }
    let stalled: Vec<String> = results
        .iter()
        .filter(|r| r.stalled)
        .map(|r| format!("{} in {}", r.lock, r.scenario))
        .collect();
    if !stalled.is_empty() {
        out.push(format!(
            "  Stalled (workers still waiting for the lock a long time after the deadline): {}.",
            stalled.join(", ")
        ));
    }
    if results.iter().any(|r| !r.mutual_exclusion_ok) {
        out.push("  A MUTUAL EXCLUSION FAILURE was detected: see the flagged rows.".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(lock: &str, rounds: &[f64]) -> Record {
        let mut sorted = rounds.to_vec();
        sorted.sort_by(f64::total_cmp);
        Record {
            lock: lock.into(),
            ops_per_sec: sorted.get(sorted.len() / 2).copied().unwrap_or(0.0),
            round_ops_per_sec: rounds.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn ratio_is_paired_by_round() {
        // Round 2 ran in a slow phase of the machine for everyone.
        let pv = rec("pvlock", &[10.0, 4.0, 9.0]);
        let std = rec("std", &[11.0, 4.0, 10.0]);
        let pl = rec("parking_lot", &[11.5, 6.0, 9.5]);
        let rows = [&pv, &std, &pl];
        // Per round: 10/11.5, 4/6, 9/10 -> median 10/11.5 (the medians alone would give 9/10).
        let r = ratio_to_best_peer(&pv, &rows).unwrap();
        assert!((r.median - 10.0 / 11.5).abs() < 1e-12, "{r:?}");
        assert!((r.min - 4.0 / 6.0).abs() < 1e-12, "{r:?}");
        assert!((r.max - 9.0 / 10.0).abs() < 1e-12, "{r:?}");
        assert_eq!(r.spread(), "0.67-0.90");
        // A peer is compared with the best peer of each round, itself included.
        let pl = ratio_to_best_peer(&pl, &rows).unwrap();
        assert_eq!((pl.median, pl.max), (1.0, 1.0));
        assert!((pl.min - 9.5 / 10.0).abs() < 1e-12, "{pl:?}");
    }

    #[test]
    fn queue_line_reports_share_stay_and_reasons() {
        let mut r = rec("pvlock", &[]);
        r.threads = 4;
        r.elapsed_s = 0.5;
        r.ops = 1_000_000;
        // No stats compiled in: no line.
        assert_eq!(queue_line(&r), None);
        for (k, v) in [
            ("pv_queued_budget", 100),
            ("pv_queued_pending", 200),
            ("pv_queued_spin", 700),
            // 1 of the 2 thread-seconds, over 1000 stays: 1 ms each.
            ("pv_queued_ns", 1_000_000_000),
        ] {
            r.stats.insert(k.into(), v);
        }
        let line = queue_line(&r).unwrap();
        assert!(line.contains("queued 50% of thread time"), "{line}");
        assert!(line.contains("mean stay 1.0 ms"), "{line}");
        assert!(
            line.contains("0.10 steal budget spent, 0.20 head spinning, 0.70 spin budget spent"),
            "{line}"
        );
        // Counted entries but no time (a build without `std` timing): no line.
        r.stats.insert("pv_queued_ns".into(), 0);
        assert_eq!(queue_line(&r), None);
    }

    #[test]
    fn ratio_falls_back_to_medians_without_rounds() {
        let mut pv = rec("pvlock", &[]);
        pv.ops_per_sec = 8.0;
        let mut std = rec("std", &[]);
        std.ops_per_sec = 10.0;
        let r = ratio_to_best_peer(&pv, &[&pv, &std]).unwrap();
        assert_eq!((r.median, r.min, r.max), (0.8, 0.8, 0.8));
        // No peer in the group: no ratio.
        assert_eq!(ratio_to_best_peer(&pv, &[&pv]), None);
    }
}
