//! `pvlock bench`: options, the run plan, and turning cell measurements into records.

use crate::hist;
use crate::locks::{DEFAULT_LOCKS, LOCKS};
use crate::machine::{self, Machine};
use crate::output::{self, Output, Params, Record};
use crate::run::{self, CellSpec, Hogs};
use crate::workload::WORKLOADS;
use crate::{plot, CliError};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const SCENARIOS: &[&str] = &[
    "uncontended",
    "native",
    "oversub-2x",
    "oversub-4x",
    "oversub-8x",
    "noisy",
    "sweep",
];
pub const DEFAULT_SCENARIOS: &[&str] = &["uncontended", "native", "oversub-8x", "noisy"];
pub const DEFAULT_DURATION: Duration = Duration::from_millis(400);
pub const DEFAULT_REPEATS: u32 = 3;
pub const DEFAULT_CS: u32 = 20;
pub const DEFAULT_NCS: u64 = 100;
pub const DEFAULT_BUCKETS: usize = 64;
pub const MAX_THREADS: usize = 1024;

/// A `--threads` entry: a count, or a multiple of the CPU count (`8x`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThreadSpec {
    Count(usize),
    PerCpu(usize),
}

impl ThreadSpec {
    fn resolve(self, cpus: usize) -> usize {
        match self {
            ThreadSpec::Count(n) => n,
            ThreadSpec::PerCpu(k) => k * cpus,
        }
    }
    fn label(self) -> String {
        match self {
            ThreadSpec::Count(n) => n.to_string(),
            ThreadSpec::PerCpu(k) => format!("{k}x"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BenchOpts {
    pub threads: Option<Vec<ThreadSpec>>,
    pub cs: u32,
    pub ncs: u64,
    pub duration: Duration,
    pub repeats: u32,
    pub locks: Vec<&'static str>,
    pub scenarios: Vec<&'static str>,
    pub antagonists: Option<usize>,
    pub cpus: Option<Vec<usize>>,
    pub workloads: Vec<&'static str>,
    pub buckets: usize,
    pub json: Option<PathBuf>,
    pub plot: Option<PathBuf>,
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::usage(msg)
}

fn names(list: &[&str]) -> String {
    list.join(", ")
}

/// Parses a comma list of names against `valid` (`all` = every one).
fn parse_names(opt: &str, v: &str, valid: &[&'static str]) -> Result<Vec<&'static str>, CliError> {
    if v.trim() == "all" {
        return Ok(valid.to_vec());
    }
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim) {
        match valid.iter().find(|&&n| n == item) {
            Some(&n) if !out.contains(&n) => out.push(n),
            Some(_) => {}
            None if item.is_empty() => {
                return Err(usage(format!(
                    "{opt}: empty name in {v:?}; valid: {}",
                    names(valid)
                )))
            }
            None => {
                return Err(usage(format!(
                    "{opt}: unknown name {item:?}; valid: {} (or all)",
                    names(valid)
                )))
            }
        }
    }
    Ok(out)
}

fn parse_num<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    opt: &str,
    v: &str,
    min: T,
    max: T,
) -> Result<T, CliError> {
    match v.trim().parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(usage(format!(
            "{opt}: expected a whole number from {min} to {max}, got {v:?}"
        ))),
    }
}

/// `500ms`, `2s`, `1.5s`, `100us`, `1m`.
pub fn parse_duration(opt: &str, v: &str) -> Result<Duration, CliError> {
    let bad = || {
        usage(format!(
            "{opt}: expected a duration from 1ms to 10m such as 500ms, 2s or 1.5s, got {v:?}"
        ))
    };
    let s = v.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "s" | "" => num,
        "ms" => num / 1e3,
        "us" => num / 1e6,
        "m" | "min" => num * 60.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || !(0.001..=600.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_threads(v: &str) -> Result<Vec<ThreadSpec>, CliError> {
    let bad = |item: &str| {
        usage(format!(
            "--threads: bad entry {item:?} in {v:?}; expected a comma list of thread counts \
             (1..={MAX_THREADS}) or CPU multiples like 8x, e.g. 1,2,4,8x"
        ))
    };
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim) {
        let spec = if let Some(k) = item.strip_suffix('x') {
            match k.parse::<usize>() {
                Ok(k) if (1..=MAX_THREADS).contains(&k) => ThreadSpec::PerCpu(k),
                _ => return Err(bad(item)),
            }
        } else {
            match item.parse::<usize>() {
                Ok(n) if (1..=MAX_THREADS).contains(&n) => ThreadSpec::Count(n),
                _ => return Err(bad(item)),
            }
        };
        if !out.contains(&spec) {
            out.push(spec);
        }
    }
    Ok(out)
}

/// `0`, `0-1`, `0,2-3`; every CPU must be in the current affinity set.
fn parse_cpus(v: &str, have: &[usize]) -> Result<Vec<usize>, CliError> {
    let avail = || {
        have.iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let bad = || {
        usage(format!(
            "--cpus: malformed CPU list {v:?}; expected e.g. 0 or 0-1 or 0,1 (this machine has CPUs {})",
            avail()
        ))
    };
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim) {
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (item, item),
        };
        let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b {
            return Err(bad());
        }
        if b >= libc::CPU_SETSIZE as usize && !have.contains(&b) {
            return Err(usage(format!(
                "--cpus: CPU {b} is not available here; available CPUs: {}",
                avail()
            )));
        }
        for c in a..=b {
            if !have.contains(&c) {
                return Err(usage(format!(
                    "--cpus: CPU {c} is not available here; available CPUs: {}",
                    avail()
                )));
            }
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

impl BenchOpts {
    pub fn parse(args: &[String]) -> Result<BenchOpts, CliError> {
        let mut o = BenchOpts {
            threads: None,
            cs: DEFAULT_CS,
            ncs: DEFAULT_NCS,
            duration: DEFAULT_DURATION,
            repeats: DEFAULT_REPEATS,
            locks: DEFAULT_LOCKS.to_vec(),
            scenarios: DEFAULT_SCENARIOS.to_vec(),
            antagonists: None,
            cpus: None,
            workloads: vec!["counter"],
            buckets: DEFAULT_BUCKETS,
            json: None,
            plot: None,
        };
        let mut scenarios_given = false;
        let lock_ids: Vec<&'static str> = LOCKS.iter().map(|l| l.0).collect();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (key, inline) = match arg.split_once('=') {
                Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            if !OPTIONS.iter().any(|(n, _)| *n == key) {
                return Err(usage(format!(
                    "bench: unknown argument {arg:?}; options: {}",
                    OPTIONS.iter().map(|o| o.0).collect::<Vec<_>>().join(" ")
                )));
            }
            let v = match inline.or_else(|| it.next().cloned()) {
                Some(v) => v,
                None => return Err(usage(format!("{key}: missing value"))),
            };
            match key {
                "--threads" => o.threads = Some(parse_threads(&v)?),
                "--cs" => o.cs = parse_num(key, &v, 0, 1_000_000)?,
                "--ncs" => o.ncs = parse_num(key, &v, 0, 100_000_000)?,
                "--duration" => o.duration = parse_duration(key, &v)?,
                "--repeats" => o.repeats = parse_num(key, &v, 1, 100)?,
                "--locks" => o.locks = parse_names(key, &v, &lock_ids)?,
                "--scenarios" => {
                    o.scenarios = parse_names(key, &v, SCENARIOS)?;
                    scenarios_given = true;
                }
                "--antagonists" => o.antagonists = Some(parse_num(key, &v, 0, MAX_THREADS)?),
                "--cpus" => o.cpus = Some(parse_cpus(&v, &machine::affinity())?),
                "--workload" => o.workloads = parse_names(key, &v, WORKLOADS)?,
                "--buckets" => o.buckets = parse_num(key, &v, 1, 1 << 20)?,
                "--json" => o.json = Some(output::check_writable(key, &v)?),
                // The SVG and PNG go to the same directory as PATH: one check covers both.
                "--plot" => o.plot = Some(output::check_writable(key, &v)?),
                _ => unreachable!("checked against OPTIONS"),
            }
        }
        if o.threads.is_some() && !scenarios_given {
            o.scenarios = vec!["sweep"];
        }
        Ok(o)
    }
}

/// Bench options with their one-line help.
pub const OPTIONS: &[(&str, &str)] = &[
    ("--threads", "LIST   thread counts, e.g. 1,2,4,8x (8x = 8 x CPUs); replaces the scenario thread counts"),
    ("--cs", "N         counter workload: volatile writes inside the critical section, over 2 cache lines (default 20)"),
    ("--ncs", "N        mean non-critical work per acquisition, in dependent multiply-adds (~1-2 ns each), uniform 0..=2N (default 100; 0 in uncontended)"),
    ("--duration", "D   time per cell, e.g. 500ms, 2s (default 400ms)"),
    ("--repeats", "N    repeats per cell; the repeat with the median throughput is reported (default 3)"),
    ("--locks", "LIST     lock ids, or all (default: pvlock,queued-spin,queued-futex,ticket-spin,ticket-futex,byte-futex,std,parking_lot,spin,spin-ticket)"),
    ("--scenarios", "LIST uncontended,native,oversub-2x,oversub-4x,oversub-8x,noisy,sweep or all (default uncontended,native,oversub-8x,noisy)"),
    ("--antagonists", "N  CPU-hog processes in the noisy scenario (default = CPUs)"),
    ("--cpus", "LIST      run on these CPUs only (affinity), e.g. 0 or 0-1; CPUs in the scenarios = their number"),
    ("--workload", "W   counter, hashtable, stats, a comma list, or all (default counter)"),
    ("--buckets", "N    hashtable buckets (default 64)"),
    ("--json", "PATH      write every record as JSON"),
    ("--plot", "PATH      write throughput and fairness plots as PATH.svg and PATH.png"),
];

/// The cells of one scenario: (threads, antagonists, ncs).
fn scenario_threads(sc: &str, o: &BenchOpts, cpus: usize) -> Vec<usize> {
    if sc == "uncontended" {
        return vec![1];
    }
    if let Some(t) = &o.threads {
        return t.iter().map(|s| s.resolve(cpus)).collect();
    }
    match sc {
        "native" | "noisy" => vec![cpus],
        "oversub-2x" => vec![2 * cpus],
        "oversub-4x" => vec![4 * cpus],
        "oversub-8x" => vec![8 * cpus],
        _ => {
            // sweep: FlexGuard's 1..N-1, N, N+1, 2N, 4N, 8N
            let mut v: Vec<usize> = vec![1, cpus, cpus + 1, 2 * cpus, 4 * cpus, 8 * cpus];
            v.dedup();
            v
        }
    }
}

struct Progress {
    on: bool,
    total: usize,
    done: usize,
    started: Instant,
}

impl Progress {
    fn show(&self, what: &str) {
        if !self.on {
            return;
        }
        let width = 30;
        let filled = (self.done * width).checked_div(self.total).unwrap_or(width);
        let secs = self.started.elapsed().as_secs();
        let mut e = std::io::stderr().lock();
        let _ = write!(
            e,
            "\r\x1b[2K[{}{}] {}/{} {:>3}s {}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.done,
            self.total,
            secs,
            what
        );
        let _ = e.flush();
    }
    fn clear(&self) {
        if self.on {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

pub fn main(args: &[String]) -> Result<u8, CliError> {
    let o = BenchOpts::parse(args)?;
    if let Some(cpus) = &o.cpus {
        // Before any thread or hog exists: every later thread and child inherits the mask.
        machine::set_affinity(cpus).map_err(CliError::usage)?;
    }
    let cpu_list = machine::affinity();
    let cpus = cpu_list.len().max(1);
    for sc in &o.scenarios {
        for t in scenario_threads(sc, &o, cpus) {
            if t > MAX_THREADS {
                return Err(usage(format!(
                    "--threads: {t} threads in scenario {sc} is more than the limit {MAX_THREADS}"
                )));
            }
        }
    }
    if o.locks.contains(&"dyn") {
        pvlock::dynamic::init().map_err(|e| usage(format!("PVLOCK: {e}")))?;
    }
    let clock = hist::init_clock();
    let _ = pvlock::tuning::spin_iterations(); // calibrate the spin budget outside the measurements
    let machine = Machine::describe(cpu_list, clock);
    let antagonists = o.antagonists.unwrap_or(cpus);

    let mut plan: Vec<(&'static str, &'static str, usize)> = Vec::new();
    for &sc in &o.scenarios {
        for &wl in &o.workloads {
            for t in scenario_threads(sc, &o, cpus) {
                plan.push((sc, wl, t));
            }
        }
    }
    let cells = plan.len() * o.locks.len() * o.repeats as usize;
    let mut progress = Progress {
        on: std::io::stderr().is_terminal(),
        total: cells,
        done: 0,
        started: Instant::now(),
    };
    let mut results: Vec<Record> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut hogs: Option<Hogs> = None;
    for &(sc, wl, threads) in &plan {
        if sc == "noisy" {
            if hogs.is_none() {
                hogs = Some(Hogs::start(antagonists).map_err(CliError::runtime)?);
            }
        } else {
            hogs = None; // kills and reaps
        }
        let spec = CellSpec {
            workload: wl,
            cs: o.cs,
            ncs: if sc == "uncontended" { 0 } else { o.ncs },
            buckets: o.buckets,
            threads,
            duration: o.duration,
        };
        // Repeats outside, locks inside: machine noise spreads over all locks alike. Each round
        // starts one lock further down the list, so that no lock always runs first after a change
        // of thread count (in a TCG guest, `pvlock`, first in the list, measured 1.6 M where
        // `queued-auto`, the same type, measured 2.6-2.9 M).
        let mut reps: BTreeMap<&str, Vec<Record>> = BTreeMap::new();
        for round in 0..o.repeats as usize {
            for k in 0..o.locks.len() {
                let lock = o.locks[(round + k) % o.locks.len()];
                progress.show(&format!("{sc} {wl} {threads}t {lock}"));
                let out = match run::run_cell(lock, &spec) {
                    Some(r) => r.map_err(CliError::runtime)?,
                    None => return Err(usage(format!("unknown lock {lock}"))),
                };
                let rec = output::record(
                    sc,
                    wl,
                    lock,
                    &spec,
                    cpus,
                    if sc == "noisy" { antagonists } else { 0 },
                    &out,
                );
                if !rec.mutual_exclusion_ok {
                    let msg = format!(
                        "MUTUAL EXCLUSION FAILURE: lock {lock} in {sc}/{wl} with {threads} threads: \
                         {} acquisitions counted inside the lock, {} by the threads",
                        out.counted.unwrap_or(0),
                        out.final_ops
                    );
                    progress.clear();
                    eprintln!("pvlock: {msg}");
                    failures.push(msg);
                }
                if rec.leaked > 0 {
                    progress.clear();
                    eprintln!(
                        "pvlock: warning: {} workers of {lock} in {sc} did not finish within {:?}; left running",
                        rec.leaked,
                        run::DRAIN_LIMIT
                    );
                }
                reps.entry(lock).or_default().push(rec);
                progress.done += 1;
            }
        }
        for &lock in &o.locks {
            if let Some(r) = reps.remove(lock) {
                results.push(output::median(r));
            }
        }
    }
    drop(hogs);
    progress.clear();

    let params = Params {
        threads: o
            .threads
            .as_ref()
            .map(|t| t.iter().map(|s| s.label()).collect()),
        cs: o.cs,
        ncs: o.ncs,
        duration_ms: o.duration.as_secs_f64() * 1e3,
        repeats: o.repeats,
        locks: o.locks.iter().map(|s| s.to_string()).collect(),
        scenarios: o.scenarios.iter().map(|s| s.to_string()).collect(),
        workloads: o.workloads.iter().map(|s| s.to_string()).collect(),
        antagonists,
        cpus: o.cpus.clone(),
        buckets: o.buckets,
        latency_sample_every: run::SAMPLE_EVERY,
        command: std::iter::once("pvlock bench".to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        version: env!("CARGO_PKG_VERSION").to_string(),
        wall_s: progress.started.elapsed().as_secs_f64(),
    };
    let doc = Output {
        params,
        machine,
        results,
    };
    let mut stdout = std::io::stdout().lock();
    let _ = output::print_report(&mut stdout, &doc);
    if let Some(p) = &o.json {
        let text =
            serde_json::to_string_pretty(&doc).map_err(|e| CliError::runtime(e.to_string()))?;
        output::write_atomic(p, text.as_bytes()).map_err(CliError::runtime)?;
        let _ = writeln!(stdout, "JSON written to {}", p.display());
    }
    if let Some(p) = &o.plot {
        let (svg, png) = plot::write(p, &[("".to_string(), &doc)]).map_err(CliError::runtime)?;
        let _ = writeln!(
            stdout,
            "Plots written to {} and {}",
            svg.display(),
            png.display()
        );
    }
    Ok(if failures.is_empty() { 0 } else { 1 })
}
