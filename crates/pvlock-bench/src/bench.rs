//! `pvlock bench`: options, the run plan, and turning cell measurements into records.

use crate::locks::{self, LOCKS};
use crate::machine::{self, Machine};
use crate::output::{self, Output, Params, Record};
use crate::run::{self, CellSpec, Hogs};
use crate::workload::WORKLOADS;
use crate::{args, files, hist, plot, CliError};
use indicatif::{ProgressBar, ProgressStyle};
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
    "tiny",
    "short-lived",
];

/// A named set of scenarios, workloads and locks (`--suite`); options given explicitly win.
#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum Suite {
    /// uncontended, native, oversub-8x and noisy with the counter workload and the default locks
    /// (about one minute)
    Default,
    /// Spin locks' home ground: the tiny and short-lived scenarios with the random workload (2,
    /// 64, 1000 and 1000000 locks) for pvlock, queued-spin and the peers (about 4 minutes)
    Tiny,
}

impl Suite {
    fn scenarios(self) -> &'static [&'static str] {
        match self {
            Suite::Default => &["uncontended", "native", "oversub-8x", "noisy"],
            Suite::Tiny => &["tiny", "short-lived"],
        }
    }
    fn workloads(self) -> &'static [&'static str] {
        match self {
            Suite::Default => &["counter"],
            Suite::Tiny => &["random"],
        }
    }
    fn locks(self) -> &'static str {
        match self {
            Suite::Default => DEFAULT_LOCKS_ARG,
            Suite::Tiny => "pvlock,queued-spin,std,parking_lot,spin,spin-ticket,ttas",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Suite::Default => "default",
            Suite::Tiny => "tiny",
        }
    }
}
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

/// A list value of one option (a newtype, so that clap takes the whole list as one value).
#[derive(Debug, Clone, PartialEq)]
pub struct List<T>(pub Vec<T>);

/// `pvlock bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Thread counts, e.g. 1,2,4,8x (8x = 8 x CPUs). They replace the thread counts of the
    /// scenarios and select the `sweep` scenario unless --scenarios or --suite is given.
    #[arg(long, value_name = "LIST", value_parser = parse_threads)]
    pub threads: Option<List<ThreadSpec>>,
    /// Counter workload: volatile writes inside the critical section, spread over 2 cache lines.
    #[arg(long, value_name = "N", default_value = "20", value_parser = args::number(0u32, 1_000_000), allow_hyphen_values = true)]
    pub cs: u32,
    /// Mean non-critical work between two acquisitions of a thread, in dependent multiply-adds
    /// (~1-2 ns each), uniform in 0..=2N. The uncontended scenario always uses 0.
    #[arg(long, value_name = "N", default_value = "100", value_parser = args::number(0u64, 100_000_000), allow_hyphen_values = true)]
    pub ncs: u64,
    /// Time per cell (one lock in one scenario, workload and thread count), from 1ms to 10m.
    #[arg(long, value_name = "TIME", default_value = "200ms", value_parser = args::duration(Duration::from_millis(1), Duration::from_secs(600)), allow_hyphen_values = true)]
    pub duration: Duration,
    /// Rounds: each round runs every lock once, back to back; the round with the median
    /// throughput is reported, with the spread over the rounds. Many short rounds beat few long
    /// ones on a machine whose speed drifts: a round's locks then share one phase of it.
    #[arg(long, value_name = "N", default_value = "6", value_parser = args::number(1u32, 100), allow_hyphen_values = true)]
    pub repeats: u32,
    /// What to run when --scenarios, --workload or --locks are not given (see Suites below)
    /// [default: default; with --threads and no --suite: the sweep scenario]
    #[arg(long, value_name = "NAME")]
    pub suite: Option<Suite>,
    /// Lock ids (see Locks below), comma-separated, or `all` [default: the suite's;
    /// pvlock,queued-spin,queued-futex,ticket-spin,ticket-futex,byte-futex,std,parking_lot,spin,
    /// spin-ticket,ttas in the default suite]
    #[arg(long, value_name = "LIST", value_parser = parse_locks)]
    pub locks: Option<List<&'static str>>,
    /// Scenarios (see Scenarios below), comma-separated, or `all` [default: the suite's;
    /// sweep with --threads]
    #[arg(long, value_name = "LIST", value_parser = parse_scenarios)]
    pub scenarios: Option<List<&'static str>>,
    /// CPU-hog processes in the noisy scenario [default: the number of CPUs].
    #[arg(long, value_name = "N", value_parser = args::number(0usize, MAX_THREADS), allow_hyphen_values = true)]
    pub antagonists: Option<usize>,
    /// Run on these CPUs only (affinity), e.g. 0 or 0-1 or 0,2-3; "CPUs" in the scenarios is
    /// then their number [default: every CPU this process may run on].
    #[arg(long, value_name = "LIST", value_parser = parse_cpus)]
    pub cpus: Option<List<usize>>,
    /// Workloads (see Workloads below), comma-separated, or `all` [default: the suite's].
    #[arg(long, value_name = "LIST", value_parser = parse_workloads)]
    pub workload: Option<List<&'static str>>,
    /// Hashtable workload: the number of buckets, each with its own lock.
    #[arg(long, value_name = "N", default_value = "64", value_parser = args::number(1usize, 1 << 20), allow_hyphen_values = true)]
    pub buckets: usize,
    /// Random workload: numbers of locks, comma-separated; each is a workload of its own
    /// (random-2, random-64, ...).
    #[arg(long, value_name = "LIST", default_value = "2,64,1000,1000000", value_parser = parse_nlocks)]
    pub nlocks: List<usize>,
    /// Rwlock workload: shares of reads in percent, comma-separated; each is a workload of its
    /// own (rwlock-90, rwlock-99, ...).
    #[arg(long, value_name = "LIST", default_value = "90,99", value_parser = parse_read_pct)]
    pub read_pct: List<usize>,
    /// Short-lived scenario: acquisitions of each fresh thread.
    #[arg(long, value_name = "N", default_value = "10000", value_parser = args::number(1u64, 1_000_000_000), allow_hyphen_values = true)]
    pub acquisitions: u64,
    /// Also write every record as JSON to PATH (read back by `pvlock report`). A regular file is
    /// replaced atomically (through a symbolic link: its target); a FIFO or character device
    /// such as /dev/stdout is written in place; a directory or block device is refused.
    #[arg(long, value_name = "PATH", value_parser = files::output_path)]
    pub json: Option<PathBuf>,
    /// Also write the throughput and fairness plots to PATH.svg and PATH.png (PATH may end in
    /// .svg or .png); each file is written as --json's.
    #[arg(long, value_name = "PATH", value_parser = files::plot_path)]
    pub plot: Option<PathBuf>,
}

/// `--locks`' default: the set that fits the one-minute default run.
const DEFAULT_LOCKS_ARG: &str =
    "pvlock,queued-spin,queued-futex,ticket-spin,ticket-futex,byte-futex,std,parking_lot,spin,spin-ticket,ttas";

fn parse_locks(v: &str) -> Result<List<&'static str>, String> {
    let ids: Vec<&'static str> = LOCKS.iter().map(|l| l.0).collect();
    args::names(v, &ids).map(List)
}

fn parse_scenarios(v: &str) -> Result<List<&'static str>, String> {
    args::names(v, SCENARIOS).map(List)
}

fn parse_workloads(v: &str) -> Result<List<&'static str>, String> {
    args::names(v, WORKLOADS).map(List)
}

fn parse_nlocks(v: &str) -> Result<List<usize>, String> {
    let mut out = Vec::new();
    for item in v.split(',') {
        let n = args::number(1usize, 1 << 24)(item)?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(List(out))
}

fn parse_read_pct(v: &str) -> Result<List<usize>, String> {
    let mut out = Vec::new();
    for item in v.split(',') {
        let n = args::number(0usize, 100)(item)?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(List(out))
}

fn parse_threads(v: &str) -> Result<List<ThreadSpec>, String> {
    let bad = |item: &str| {
        format!(
            "bad entry {item:?} in {v:?}; expected a comma list of thread counts \
             (1..={MAX_THREADS}) or CPU multiples like 8x, e.g. 1,2,4,8x"
        )
    };
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim) {
        let (num, per_cpu) = match item.strip_suffix('x') {
            Some(k) => (k, true),
            None => (item, false),
        };
        let n = match num.parse::<usize>() {
            Ok(n) if (1..=MAX_THREADS).contains(&n) => n,
            _ => return Err(bad(item)),
        };
        let spec = if per_cpu {
            ThreadSpec::PerCpu(n)
        } else {
            ThreadSpec::Count(n)
        };
        if !out.contains(&spec) {
            out.push(spec);
        }
    }
    Ok(List(out))
}

/// `0`, `0-1`, `0,2-3`; every CPU must be in the current affinity set.
pub fn parse_cpus(v: &str) -> Result<List<usize>, String> {
    let have = machine::affinity();
    let avail = || {
        have.iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let bad = || {
        format!(
            "malformed CPU list {v:?}; expected e.g. 0 or 0-1 or 0,1 (this machine has CPUs {})",
            avail()
        )
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
        if let Some(c) = (a..=b).find(|c| !have.contains(c)) {
            return Err(format!(
                "CPU {c} is not available here; available CPUs: {}",
                avail()
            ));
        }
        for c in a..=b {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out.sort_unstable();
    Ok(List(out))
}

/// The scenario table of the help texts.
pub fn scenario_table() -> &'static str {
    "  uncontended   1 thread, no non-critical work: the cost of lock + unlock
  native        threads = CPUs
  oversub-2x, oversub-4x, oversub-8x
                threads = 2, 4, 8 x CPUs: a preempted lock holder or next waiter stalls spinners
  noisy         threads = CPUs, plus --antagonists CPU-hog processes competing for the CPUs
  sweep         threads 1, CPUs, CPUs+1, 2x, 4x, 8x (the default scenario when --threads is given)
  tiny          threads = 1, 4, 16 x CPUs, no non-critical work: the lock changes hands all the time
  short-lived   threads = 1, 4, 16 x CPUs, no non-critical work, a fresh set of threads every round,
                --acquisitions each; ops/s = acquisitions over the rounds' wall time, spawn to join
"
}

/// The workload table of the help texts.
pub fn workload_table() -> &'static str {
    "  counter       one hot lock over a 2-cache-line struct; the critical section makes --cs writes
  hashtable     --buckets buckets with a lock each, 90% lookups / 10% inserts, random keys
  stats         4 flow-statistics records under their own locks, half the updates to one hot flow
  random        --nlocks locks, each on its own 128-byte line; one at random per acquisition, whose
                critical section increments one counter
  rwlock        one reader-writer lock over a read-mostly hash table (1024 keys); --read-pct of
                the operations are lookups under the read lock, the rest inserts under the write
                lock; runs pvlock's rwlock (pvlock, queued-*), std and parking_lot
"
}

/// `pvlock bench --help`'s text after the options.
pub fn after_help() -> String {
    format!(
        "Suites:\n{}\n\
         Scenarios (CPUs = the CPUs this process may run on, see --cpus):\n{}\n\
         Workloads:\n{}\n\
         Locks:\n{}\n\
         {}\n\
         Output: one table per scenario, workload and thread count, then a summary. ops/s counts\n\
         acquisitions per second of all threads; vs peer is the throughput relative to the fastest\n\
         peer (std, parking_lot, spin, spin-ticket) round by round, median over the rounds. A cell\n\
         runs for --duration, then every thread stops after its current acquisition; a cell whose\n\
         threads are not done max(1s, --duration) later is reported as STALLED. Acquire latency is\n\
         timed on a random 1 in 8 acquisitions; CPU time and context switches come from getrusage.\n\
         Every workload checks mutual exclusion: a failure is reported and exits with 1. Bad\n\
         arguments: one line on stderr, exit 2.\n\n\
         Examples:\n\
         \x20 pvlock bench                                   the default matrix, about one minute\n\
         \x20 pvlock bench --json run.json --plot run        also write run.json, run.svg, run.png\n\
         \x20 pvlock bench --threads 1,2,8x --locks pvlock,parking_lot,spin\n\
         \x20 pvlock bench --scenarios native --workload hashtable --buckets 1024 --repeats 5\n\
         \x20 pvlock bench --cpus 0 --scenarios oversub-8x    8 threads on one CPU\n\
         \x20 pvlock bench --suite tiny --nlocks 2 --threads 2,8x\n\
         \x20 PVLOCK=ticket:futex pvlock bench --locks dyn,pvlock,std",
        suite_table(),
        scenario_table(),
        workload_table(),
        locks::lock_table(),
        args::DURATIONS
    )
}

/// The suite table of the help texts.
pub fn suite_table() -> String {
    use clap::ValueEnum;
    let mut s = String::new();
    for v in Suite::value_variants() {
        let scenarios = v.scenarios().join(",");
        let workloads = v.workloads().join(",");
        s += &format!(
            "  {:<13} --scenarios {scenarios} --workload {workloads}\n                --locks {}\n",
            v.name(),
            v.locks()
        );
    }
    s
}

/// The thread counts of one scenario's cells.
fn scenario_threads(sc: &str, threads: Option<&[ThreadSpec]>, cpus: usize) -> Vec<usize> {
    if sc == "uncontended" {
        return vec![1];
    }
    if let Some(t) = threads {
        return t.iter().map(|s| s.resolve(cpus)).collect();
    }
    match sc {
        "native" | "noisy" => vec![cpus],
        "oversub-2x" => vec![2 * cpus],
        "oversub-4x" => vec![4 * cpus],
        "oversub-8x" => vec![8 * cpus],
        "tiny" | "short-lived" => vec![cpus, 4 * cpus, 16 * cpus],
        _ => {
            // sweep: FlexGuard's 1..N-1, N, N+1, 2N, 4N, 8N
            let mut v: Vec<usize> = vec![1, cpus, cpus + 1, 2 * cpus, 4 * cpus, 8 * cpus];
            v.dedup();
            v
        }
    }
}

/// The progress bar on stderr, drawn only when stderr is a terminal. It is redrawn between
/// cells only (no ticker thread that would wake up during a measurement).
pub fn progress_bar(cells: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(cells as u64);
    if let Ok(style) = ProgressStyle::with_template("[{bar:30}] {pos}/{len} {elapsed:>4} {msg}") {
        pb.set_style(style.progress_chars("#>."));
    }
    pb
}

pub fn main(o: BenchArgs) -> Result<u8, CliError> {
    let started = Instant::now();
    let threads = o.threads.as_ref().map(|t| t.0.as_slice());
    let suite = o.suite.unwrap_or(Suite::Default);
    let scenarios: Vec<&'static str> = match (&o.scenarios, o.suite, threads) {
        (Some(s), _, _) => s.0.clone(),
        (None, None, Some(_)) => vec!["sweep"],
        (None, _, _) => suite.scenarios().to_vec(),
    };
    let locks = &match &o.locks {
        Some(l) => l.0.clone(),
        None => parse_locks(suite.locks()).map_err(usage)?.0,
    };
    let workloads = &match &o.workload {
        Some(w) => w.0.clone(),
        None => suite.workloads().to_vec(),
    };
    if let Some(cpus) = &o.cpus {
        // Before any thread or hog exists: every later thread and child inherits the mask.
        machine::set_affinity(&cpus.0)
            .map_err(|e| usage(format!("--cpus: sched_setaffinity failed: {e}")))?;
    }
    let cpu_list = machine::affinity();
    let cpus = cpu_list.len().max(1);
    for sc in &scenarios {
        for t in scenario_threads(sc, threads, cpus) {
            if t > MAX_THREADS {
                return Err(usage(format!(
                    "--threads: {t} threads in scenario {sc} is more than the limit {MAX_THREADS}"
                )));
            }
        }
    }
    if locks.contains(&"dyn") {
        pvlock::dynamic::init().map_err(|e| usage(format!("PVLOCK: {e}")))?;
    }
    let clock = hist::init_clock();
    let _ = pvlock::tuning::spin_iterations(); // calibrate the spin budget outside the measurements
    let machine = Machine::describe(cpu_list, clock);
    let antagonists = o.antagonists.unwrap_or(cpus);

    // (scenario, workload, its name in the records, locks of the random workload, threads)
    let mut plan: Vec<(&'static str, &'static str, String, usize, usize)> = Vec::new();
    for &sc in &scenarios {
        for &wl in workloads {
            let variants: Vec<(String, usize)> = if wl == "rwlock" {
                o.read_pct
                    .0
                    .iter()
                    .map(|&p| (format!("rwlock-{p}"), p))
                    .collect()
            } else if wl == "random" {
                o.nlocks
                    .0
                    .iter()
                    .map(|&n| (format!("random-{n}"), n))
                    .collect()
            } else {
                vec![(wl.to_string(), 0)]
            };
            for (label, nlocks) in variants {
                for t in scenario_threads(sc, threads, cpus) {
                    plan.push((sc, wl, label.clone(), nlocks, t));
                }
            }
        }
    }
    let cells = plan.len() * locks.len() * o.repeats as usize;
    let progress = progress_bar(cells);
    let mut results: Vec<Record> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut hogs: Option<Hogs> = None;
    for (sc, wl, label, nlocks, threads) in &plan {
        let (sc, wl, threads) = (*sc, *wl, *threads);
        if sc == "noisy" {
            if hogs.is_none() {
                hogs = Some(Hogs::start(antagonists).map_err(CliError::runtime)?);
            }
        } else {
            hogs = None; // kills and reaps
        }
        let no_work = matches!(sc, "uncontended" | "tiny" | "short-lived");
        let spec = CellSpec {
            workload: wl,
            cs: o.cs,
            ncs: if no_work { 0 } else { o.ncs },
            buckets: o.buckets,
            threads,
            duration: o.duration,
            nlocks: *nlocks,
            read_pct: *nlocks as u32,
            short_lived: (sc == "short-lived").then_some(o.acquisitions),
        };
        // Repeats outside, locks inside: machine noise spreads over all locks alike. Each round
        // starts one lock further down the list, so that no lock always runs first after a change
        // of thread count (in a TCG guest, `pvlock`, first in the list, measured 1.6 M where
        // `queued-auto`, the same type, measured 2.6-2.9 M).
        let mut reps: BTreeMap<&str, Vec<Record>> = BTreeMap::new();
        // The locks that take part in this workload (the rwlock workload: those with an rwlock).
        let cell_locks: Vec<&'static str> = locks
            .iter()
            .copied()
            .filter(|l| locks::applies(l, wl))
            .collect();
        for round in 0..o.repeats as usize {
            for k in 0..cell_locks.len() {
                let lock = cell_locks[(round + k) % cell_locks.len()];
                progress.set_message(format!("{sc} {label} {threads}t {lock}"));
                let out = match run::run_cell(lock, &spec) {
                    Some(r) => r.map_err(CliError::runtime)?,
                    None => return Err(usage(format!("unknown lock {lock}"))),
                };
                let rec = output::record(
                    sc,
                    label,
                    lock,
                    &spec,
                    cpus,
                    if sc == "noisy" { antagonists } else { 0 },
                    &out,
                );
                if !rec.mutual_exclusion_ok {
                    let msg = format!(
                        "MUTUAL EXCLUSION FAILURE: lock {lock} in {sc}/{label} with {threads} threads: \
                         {} acquisitions counted inside the lock, {} by the threads",
                        out.counted.unwrap_or(0),
                        out.final_ops
                    );
                    progress.suspend(|| eprintln!("pvlock: {msg}"));
                    failures.push(msg);
                }
                if rec.leaked > 0 {
                    progress.suspend(|| {
                        eprintln!(
                            "pvlock: warning: {} workers of {lock} in {sc} did not finish within {:?}; left running",
                            rec.leaked,
                            run::DRAIN_LIMIT
                        )
                    });
                }
                reps.entry(lock).or_default().push(rec);
                progress.inc(1);
            }
        }
        for &lock in &cell_locks {
            if let Some(r) = reps.remove(lock) {
                results.push(output::median(r));
            }
        }
    }
    drop(hogs);
    progress.finish_and_clear();
    output::set_ratios(&mut results);

    let params = Params {
        threads: threads.map(|t| t.iter().map(|s| s.label()).collect()),
        cs: o.cs,
        ncs: o.ncs,
        duration_ms: o.duration.as_secs_f64() * 1e3,
        repeats: o.repeats,
        locks: locks.iter().map(|s| s.to_string()).collect(),
        scenarios: scenarios.iter().map(|s| s.to_string()).collect(),
        workloads: workloads.iter().map(|s| s.to_string()).collect(),
        antagonists,
        cpus: o.cpus.as_ref().map(|c| c.0.clone()),
        buckets: o.buckets,
        suite: suite.name().to_string(),
        nlocks: o.nlocks.0.clone(),
        read_pct: o.read_pct.0.clone(),
        acquisitions: o.acquisitions,
        latency_sample_every: run::SAMPLE_EVERY,
        command: std::iter::once("pvlock bench".to_string())
            .chain(std::env::args().skip(2))
            .collect::<Vec<_>>()
            .join(" "),
        version: env!("CARGO_PKG_VERSION").to_string(),
        wall_s: started.elapsed().as_secs_f64(),
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
        files::write_output(p, text.as_bytes()).map_err(CliError::runtime)?;
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

fn usage(msg: impl Into<String>) -> CliError {
    CliError::usage(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_locks_are_lock_ids() {
        assert_eq!(parse_locks(DEFAULT_LOCKS_ARG).unwrap().0.len(), 11);
        assert_eq!(parse_locks(Suite::Tiny.locks()).unwrap().0.len(), 7);
    }

    #[test]
    fn thread_lists() {
        assert_eq!(
            parse_threads("1, 2,8x,2").unwrap().0,
            [
                ThreadSpec::Count(1),
                ThreadSpec::Count(2),
                ThreadSpec::PerCpu(8)
            ]
        );
        for bad in ["", "1,,2", "0", "x", "two", "1025", "0x"] {
            assert!(parse_threads(bad).is_err(), "{bad}");
        }
    }
}
