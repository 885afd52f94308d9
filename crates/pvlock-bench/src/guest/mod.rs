//! `pvlock guest`: the guest lab. pvlock's `no_std` locks as the spinlocks of a freestanding
//! guest kernel on `/dev/kvm` (the `pvlock-vmm` crate), with wait and kick as real VM exits, and
//! more vCPUs than host CPUs, so that the host scheduler preempts lock holders and waiters.
//!
//! Each lock runs in a VM of its own, for every vCPU count and workload, `--repeats` rounds (a
//! round runs every lock once, back to back, starting one lock further down the list each time).
//! Exit codes: 0 done, 1 a failure at run time (a guest fault, a deadline, a lock that let two
//! vCPUs in), 2 bad input, [`EXIT_UNAVAILABLE`] no usable KVM here (no `/dev/kvm`, no
//! permission, or a build for another platform than Linux on x86-64).

// Without the VMM (other platforms) the settings are parsed and checked, but never used.
#![cfg_attr(
    not(all(target_os = "linux", target_arch = "x86_64")),
    allow(dead_code)
)]

pub mod output;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod lab;

use crate::bench::{self, List};
use crate::machine::{self, Machine};
use crate::{args, files, plot, CliError};
use output::{GuestOutput, GuestParams, GuestRecord, Host};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The exit code when this machine cannot run the guest lab.
pub const EXIT_UNAVAILABLE: u8 = 3;

/// The guest's locks: id, whether it halts and kicks, whether it is an outside peer, what it is.
pub const LOCKS: &[(&str, bool, bool, &str)] = &[
    (
        "queued-pv",
        true,
        false,
        "pvlock::queued::Queued, hypervisor backend: the pvqspinlock",
    ),
    (
        "queued-spin",
        false,
        false,
        "pvlock::queued::Queued<Spin>: the native qspinlock",
    ),
    (
        "ticket-pv",
        true,
        false,
        "pvlock::ticket::Ticket, hypervisor backend: the pv ticketlock",
    ),
    (
        "ticket-spin",
        false,
        false,
        "pvlock::ticket::Ticket<Spin>: the plain ticket lock",
    ),
    (
        "byte-pv",
        true,
        false,
        "pvlock::byte::Byte, hypervisor backend: the Xen byte lock",
    ),
    (
        "tas",
        false,
        true,
        "peer: test-and-test-and-set, never halts (the kernel's virt_spin_lock)",
    ),
    ("spin", false, true, "peer: the spin crate's SpinMutex"),
    (
        "spin-ticket",
        false,
        true,
        "peer: the spin crate's TicketMutex",
    ),
];

/// The workloads: id and what the vCPUs do.
pub const WORKLOADS: &[(&str, &str)] = &[
    (
        "counter",
        "one hot lock over a 2-cache-line struct; the critical section makes --cs writes",
    ),
    (
        "hashtable",
        "--buckets buckets with a lock each, 90% lookups / 10% inserts, random keys",
    ),
    (
        "stats",
        "4 flow-statistics records under their own locks, half the updates to one hot flow",
    ),
    (
        "drain",
        "--drain-rounds rounds of: vCPU 0 holds the lock until all others wait for it, then\n\
         \x20               releases it; measures the time until the last waiter has had it",
    ),
];

/// Most vCPUs of a VM.
pub const MAX_VCPUS: usize = 64;
/// Most hash table buckets (the guest's arena holds 32768 of 256 bytes).
pub const MAX_BUCKETS: u32 = 32768;
/// Most drain rounds the guest records.
pub const MAX_DRAIN_ROUNDS: u32 = 64;

const DEFAULT_DURATION: Duration = Duration::from_millis(300);
const DEFAULT_DRAIN_LIMIT: Duration = Duration::from_secs(60);

pub fn is_peer(id: &str) -> bool {
    LOCKS.iter().any(|l| l.0 == id && l.2)
}

pub fn is_pv(id: &str) -> bool {
    LOCKS.iter().any(|l| l.0 == id && l.1)
}

/// `pvlock guest` options.
#[derive(Debug, Clone, clap::Args)]
pub struct GuestArgs {
    /// vCPU counts, comma-separated (1 to 64); every lock runs at each.
    #[arg(long, value_name = "LIST", default_value = "2,8,16,32", value_parser = parse_vcpus)]
    pub vcpus: List<usize>,
    /// Lock ids (see Locks below), comma-separated, or `all`.
    #[arg(long, value_name = "LIST", default_value = "all", value_parser = parse_locks)]
    pub locks: List<&'static str>,
    /// Workloads (see Workloads below), comma-separated, or `all`.
    #[arg(long, value_name = "LIST", default_value = "counter", value_parser = parse_workloads)]
    pub workload: List<&'static str>,
    /// Measured time per lock and vCPU count, from 1ms to 1h; for drain, a time limit (the run
    /// ends after --drain-rounds) [default: 300ms; drain: 1m]
    #[arg(long, value_name = "TIME", value_parser = args::duration(Duration::from_millis(1), Duration::from_secs(3600)), allow_hyphen_values = true)]
    pub duration: Option<Duration>,
    /// Rounds: each runs every lock once, one VM each; the round with the median throughput
    /// (drain: drain time) is reported, with the spread of the per-round ratios to the peers.
    #[arg(long, value_name = "N", default_value = "5", value_parser = args::number(1u32, 100), allow_hyphen_values = true)]
    pub repeats: u32,
    /// Counter workload: volatile writes inside the critical section, spread over 2 cache lines.
    #[arg(long, value_name = "N", default_value = "20", value_parser = args::number(0u32, 1_000_000), allow_hyphen_values = true)]
    pub cs: u32,
    /// Mean non-critical work between two acquisitions of a vCPU, in dependent multiply-adds,
    /// uniform in 0..=2N.
    #[arg(long, value_name = "N", default_value = "100", value_parser = args::number(0u64, 100_000_000), allow_hyphen_values = true)]
    pub ncs: u64,
    /// Hashtable workload: the number of buckets, each with its own lock.
    #[arg(long, value_name = "N", default_value = "64", value_parser = args::number(1u32, MAX_BUCKETS), allow_hyphen_values = true)]
    pub buckets: u32,
    /// Drain workload: rounds per run (hold, queue everyone, release), up to 64.
    #[arg(long, value_name = "N", default_value = "10", value_parser = args::number(1u32, MAX_DRAIN_ROUNDS), allow_hyphen_values = true)]
    pub drain_rounds: u32,
    /// pvlock's spin budget in the guest: spin-loop iterations before a pv waiter halts
    /// [default: the library's no_std default, 4096]
    #[arg(long, value_name = "N", value_parser = args::number(1u32, 1 << 30), allow_hyphen_values = true)]
    pub spin_iterations: Option<u32>,
    /// How long the guest may take to finish after the stop flag before the run fails (exit 1),
    /// from 10ms to 10m; a lock that stalls under overcommit drains slowly.
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = args::duration(Duration::from_millis(10), Duration::from_secs(600)), allow_hyphen_values = true)]
    pub grace: Duration,
    /// Run the vCPU threads on these host CPUs only, e.g. 0 or 0-1 [default: every CPU this
    /// process may run on].
    #[arg(long, value_name = "LIST", value_parser = bench::parse_cpus)]
    pub cpus: Option<List<usize>>,
    /// Also print each lock's vCPUs: acquisitions, halts, kicks, spin and halted shares.
    #[arg(long)]
    pub per_vcpu: bool,
    /// Also print each lock's acquire-latency distribution in spin iterations (2^4 ... 2^16).
    #[arg(long)]
    pub latency: bool,
    /// Also write every record as JSON to PATH (format `pvlock-guest`, read back by `pvlock
    /// report`); written as `pvlock bench --json`'s.
    #[arg(long, value_name = "PATH", value_parser = files::output_path)]
    pub json: Option<PathBuf>,
    /// Also write the throughput and fairness plots (drain: drain time and spin share) to
    /// PATH.svg and PATH.png (PATH may end in .svg or .png).
    #[arg(long, value_name = "PATH", value_parser = files::plot_path)]
    pub plot: Option<PathBuf>,
}

fn parse_vcpus(v: &str) -> Result<List<usize>, String> {
    let mut out = Vec::new();
    for item in v.split(',') {
        let n = args::number(1usize, MAX_VCPUS)(item)
            .map_err(|_| format!("bad entry {item:?} in {v:?}; expected a comma list of vCPU counts from 1 to {MAX_VCPUS}, e.g. 2,8,16,32"))?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(List(out))
}

fn parse_locks(v: &str) -> Result<List<&'static str>, String> {
    let ids: Vec<&'static str> = LOCKS.iter().map(|l| l.0).collect();
    args::names(v, &ids).map(List)
}

fn parse_workloads(v: &str) -> Result<List<&'static str>, String> {
    let ids: Vec<&'static str> = WORKLOADS.iter().map(|w| w.0).collect();
    args::names(v, &ids).map(List)
}

/// `pvlock guest --help`'s text after the options.
pub fn after_help() -> String {
    let mut locks = String::new();
    for (id, _, _, what) in LOCKS {
        locks += &format!("  {id:<14}{what}\n");
    }
    let mut workloads = String::new();
    for (id, what) in WORKLOADS {
        workloads += &format!("  {id:<14}{what}\n");
    }
    format!(
        "Locks:\n{locks}\n\
         Workloads (those of `pvlock bench`, plus drain):\n{workloads}\n\
         {}\n\
         Output: one table per workload and vCPU count, then a summary. acq/s counts acquisitions\n\
         per second of all vCPUs; vs peer is the throughput relative to the fastest peer (tas, spin,\n\
         spin-ticket) round by round, median over the rounds; halts/1k and kicks/1k are VM exits\n\
         per 1000 acquisitions; spin is the share of the vCPUs' time spent in lock() without\n\
         halting. Each lock runs in a VM of its own, every vCPU a host thread; the VMM checks mutual\n\
         exclusion against a count kept inside the lock.\n\n\
         Needs a usable /dev/kvm (read-write: root or the kvm group) on Linux x86-64. Exit codes:\n\
         0 done; 1 a failure at run time (guest fault, deadline, mutual exclusion); 2 bad\n\
         arguments (one line on stderr); {EXIT_UNAVAILABLE} no usable KVM here (one line on stderr).\n\n\
         Examples:\n\
         \x20 pvlock guest                                   every lock at 2, 8, 16, 32 vCPUs, about a minute\n\
         \x20 pvlock guest --json guest.json --plot guest    also write guest.json, guest.svg, guest.png\n\
         \x20 pvlock report guest.json                       the tables again\n\
         \x20 pvlock guest --vcpus 8 --locks queued-pv,tas --workload hashtable,stats --duration 1s\n\
         \x20 pvlock guest --vcpus 2,4,8,16,32 --workload drain\n\
         \x20 pvlock guest --locks byte-pv --spin-iterations 65536 --latency\n\
         \x20 pvlock guest --vcpus 32 --locks queued-pv --workload hashtable --per-vcpu",
        args::DURATIONS
    )
}

/// One workload at one vCPU count.
#[derive(Debug, Clone)]
pub struct Cell {
    pub workload: &'static str,
    pub vcpus: usize,
    pub duration: Duration,
}

/// What every cell shares.
#[derive(Debug, Clone)]
pub struct Settings {
    pub cs: u32,
    pub ncs: u64,
    pub buckets: u32,
    pub drain_rounds: u32,
    pub spin_iterations: Option<u32>,
    pub grace: Duration,
}

/// The exit-3 error: this machine cannot run the guest lab.
pub fn unavailable(why: &str) -> CliError {
    CliError {
        code: EXIT_UNAVAILABLE,
        msg: format!("guest: no usable KVM: {why}"),
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
mod lab {
    //! Stands in for the VMM where there is none: every run is unavailable.
    use super::{Cell, Settings};
    use crate::CliError;

    fn why() -> CliError {
        super::unavailable(&format!(
            "the guest lab needs Linux on x86-64; this pvlock was built for {} on {}",
            std::env::consts::OS,
            std::env::consts::ARCH
        ))
    }

    pub fn check(_: &Cell, _: &str, _: &Settings) -> Result<(), String> {
        Ok(())
    }
    pub fn available() -> Result<(), CliError> {
        Err(why())
    }
    pub fn run(_: &Cell, _: &str, _: &Settings, _: usize) -> Result<super::GuestRecord, CliError> {
        Err(why())
    }
}

/// The KVM modules loaded on the host.
fn kvm_modules() -> String {
    ["kvm_intel", "kvm_amd", "kvm_pvm"]
        .iter()
        .filter(|m| std::path::Path::new("/sys/module").join(m).exists())
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

pub fn main(a: GuestArgs) -> Result<u8, CliError> {
    let started = Instant::now();
    let workloads = &a.workload.0;
    let vcpus = &a.vcpus.0;
    let locks = &a.locks.0;
    if workloads.contains(&"drain") && vcpus.contains(&1) {
        return Err(CliError::usage(
            "--vcpus: the drain workload needs at least 2 vCPUs (a holder and a waiter), --vcpus has 1",
        ));
    }
    let settings = Settings {
        cs: a.cs,
        ncs: a.ncs,
        buckets: a.buckets,
        drain_rounds: a.drain_rounds,
        spin_iterations: a.spin_iterations,
        grace: a.grace,
    };
    let duration = a.duration.unwrap_or(DEFAULT_DURATION);
    let drain_limit = a.duration.unwrap_or(DEFAULT_DRAIN_LIMIT);
    let mut cells = Vec::new();
    for &workload in workloads {
        for &n in vcpus {
            cells.push(Cell {
                workload,
                vcpus: n,
                duration: if workload == "drain" {
                    drain_limit
                } else {
                    duration
                },
            });
        }
    }
    for c in &cells {
        for l in locks {
            lab::check(c, l, &settings).map_err(CliError::usage)?;
        }
    }
    if let Some(cpus) = &a.cpus {
        // Before any vCPU thread exists: they inherit the mask.
        machine::set_affinity(&cpus.0)
            .map_err(|e| CliError::usage(format!("--cpus: sched_setaffinity failed: {e}")))?;
    }
    lab::available()?;

    let cpu_list = machine::affinity();
    let cpus = cpu_list.len().max(1);
    let m = Machine::host(cpu_list);
    let host = Host {
        cpus,
        cpu_list: m.cpu_list,
        model_name: m.model_name,
        kernel: m.kernel,
        hypervisor: m.hypervisor,
        kvm: kvm_modules(),
        date: m.date,
        hostname: m.hostname,
    };
    let progress = bench::progress_bar(cells.len() * locks.len() * a.repeats as usize);
    let mut results: Vec<GuestRecord> = Vec::new();
    for cell in &cells {
        // Rounds outside, locks inside; each round starts one lock further down the list.
        let mut reps: Vec<Vec<GuestRecord>> = vec![Vec::new(); locks.len()];
        for round in 0..a.repeats as usize {
            for k in 0..locks.len() {
                let i = (round + k) % locks.len();
                progress.set_message(format!(
                    "{} {} vCPUs {}",
                    cell.workload, cell.vcpus, locks[i]
                ));
                let r = lab::run(cell, locks[i], &settings, cpus).map_err(|mut e| {
                    e.msg += &format!(
                        " [{} vCPUs, {}, round {}]",
                        cell.vcpus,
                        cell.workload,
                        round + 1
                    );
                    e
                })?;
                reps[i].push(r);
                progress.inc(1);
            }
        }
        results.extend(reps.into_iter().map(output::median));
    }
    progress.finish_and_clear();
    output::set_ratios(&mut results);

    let params = GuestParams {
        vcpus: vcpus.clone(),
        locks: locks.iter().map(|s| s.to_string()).collect(),
        workloads: workloads.iter().map(|s| s.to_string()).collect(),
        duration_ms: duration.as_secs_f64() * 1e3,
        drain_limit_ms: drain_limit.as_secs_f64() * 1e3,
        repeats: a.repeats,
        cs: a.cs,
        ncs: a.ncs,
        buckets: a.buckets,
        drain_rounds: a.drain_rounds,
        spin_iterations: a.spin_iterations,
        grace_ms: a.grace.as_secs_f64() * 1e3,
        cpus: a.cpus.as_ref().map(|c| c.0.clone()),
        per_vcpu: a.per_vcpu,
        latency: a.latency,
        command: std::iter::once("pvlock guest".to_string())
            .chain(std::env::args().skip(2))
            .collect::<Vec<_>>()
            .join(" "),
        version: env!("CARGO_PKG_VERSION").to_string(),
        wall_s: started.elapsed().as_secs_f64(),
    };
    let doc = GuestOutput {
        format: output::FORMAT.to_string(),
        format_version: 1,
        params,
        host,
        results,
    };
    let mut stdout = std::io::stdout().lock();
    let _ = output::print_report(&mut stdout, &doc);
    if let Some(p) = &a.json {
        let text =
            serde_json::to_string_pretty(&doc).map_err(|e| CliError::runtime(e.to_string()))?;
        files::write_output(p, text.as_bytes()).map_err(CliError::runtime)?;
        let _ = writeln!(stdout, "JSON written to {}", p.display());
    }
    if let Some(p) = &a.plot {
        let (svg, png) =
            plot::write_guest(p, &[(String::new(), &doc)]).map_err(CliError::runtime)?;
        let _ = writeln!(
            stdout,
            "Plots written to {} and {}",
            svg.display(),
            png.display()
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcpu_lists() {
        assert_eq!(parse_vcpus("2, 8,2,64").unwrap().0, [2, 8, 64]);
        for bad in ["", "0", "65", "two", "2,,4", "-1"] {
            let e = parse_vcpus(bad).unwrap_err();
            assert!(e.contains("1 to 64"), "{bad}: {e}");
        }
    }

    #[test]
    fn peers_and_pv_locks() {
        let peers: Vec<&str> = LOCKS.iter().map(|l| l.0).filter(|l| is_peer(l)).collect();
        assert_eq!(peers, ["tas", "spin", "spin-ticket"]);
        assert!(is_pv("queued-pv") && !is_pv("queued-spin") && !is_pv("nosuch"));
    }
}
