//! The guest lab from the command line, until `pvlock guest` exists:
//!
//! ```text
//! cargo run --release -p pvlock-vmm --example lab -- [--vcpus 2,8] [--locks queued-pv,tas]
//!     [--workload counter] [--duration 1s] [--repeats 3] [--spin N] [--rounds N] [--ncs N]
//!     [--per-vcpu] [--tsv PATH]
//! ```
//!
//! Runs every lock at every vCPU count `--repeats` times (the locks alternated within each
//! repeat), prints each repeat's table, then the median per lock; `--tsv` appends one line per
//! lock and repeat. Bad arguments: one line, exit code 2.

use pvlock_vmm::{render_table, Config, Lock, LockReport, Workload};
use std::io::Write as _;
use std::time::Duration;

fn usage(m: &str) -> ! {
    eprintln!("lab: {m}");
    std::process::exit(2)
}

fn parse_duration(s: &str) -> Duration {
    let (num, mul) = if let Some(v) = s.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else {
        (s, 1.0)
    };
    match num.parse::<f64>() {
        Ok(x) if x > 0.0 && x < 3600.0 => Duration::from_secs_f64(x * mul),
        _ => usage(&format!("bad duration {s:?}")),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut vcpus = vec![2usize];
    let mut cfg = Config::default();
    let mut repeats = 1usize;
    let mut tsv: Option<std::fs::File> = None;
    let mut per_vcpu = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a}: missing value")))
        };
        match a.as_str() {
            "--vcpus" => {
                vcpus = v()
                    .split(',')
                    .map(|x| {
                        x.parse()
                            .unwrap_or_else(|_| usage(&format!("bad vCPU count {x:?}")))
                    })
                    .collect()
            }
            "--locks" => {
                let s = v();
                cfg.locks = if s == "all" {
                    Lock::ALL.to_vec()
                } else {
                    s.split(',')
                        .map(|x| x.parse().unwrap_or_else(|e| usage(&format!("{e}"))))
                        .collect()
                }
            }
            "--workload" => cfg.workload = v().parse().unwrap_or_else(|e| usage(&format!("{e}"))),
            "--duration" => cfg.duration = parse_duration(&v()),
            "--repeats" => repeats = v().parse().unwrap_or_else(|_| usage("bad --repeats")),
            "--spin" => {
                cfg.spin_iterations = Some(v().parse().unwrap_or_else(|_| usage("bad --spin")))
            }
            "--rounds" => cfg.rounds = v().parse().unwrap_or_else(|_| usage("bad --rounds")),
            "--ncs" => cfg.ncs = v().parse().unwrap_or_else(|_| usage("bad --ncs")),
            "--per-vcpu" => per_vcpu = true,
            "--tsv" => {
                let p = v();
                tsv = Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&p)
                        .unwrap_or_else(|e| usage(&format!("{p}: {e}"))),
                )
            }
            _ => usage(&format!("unknown argument {a:?}")),
        }
    }
    for &n in &vcpus {
        let c = Config {
            vcpus: n,
            ..cfg.clone()
        };
        if let Err(e) = c.validate() {
            usage(&e.to_string());
        }
        let mut runs: Vec<Vec<LockReport>> = Vec::new();
        for rep in 0..repeats {
            let r = match pvlock_vmm::run(&c) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("lab: {e}");
                    std::process::exit(1)
                }
            };
            print!("repeat {}: {}", rep + 1, render_table(&r));
            if per_vcpu {
                for l in &r.locks {
                    println!(
                        "{} per vCPU: acquisitions halts kicks spin% halt% (of its run)",
                        l.lock.id()
                    );
                    for (i, v) in l.vcpus.iter().enumerate() {
                        let w = v.window_cycles.max(1) as f64;
                        println!(
                            "  {i:>2} {:>9} {:>7} {:>7} {:>5.1} {:>5.1}",
                            v.acquisitions,
                            v.halts,
                            v.kicks,
                            100.0 * v.spin_cycles as f64 / w,
                            100.0 * v.halt_cycles as f64 / w
                        );
                    }
                }
            }
            if let Some(f) = tsv.as_mut() {
                for l in &r.locks {
                    let _ = writeln!(
                        f,
                        "{}\t{}\t{}\t{}\t{:.0}\t{:.4}\t{:.3}\t{:.3}\t{:.3}\t{:.4}\t{:.4}\t{}\t{:.4}\t{}\t{}\t{}\t{}\t{}",
                        n,
                        c.workload.id(),
                        l.lock.id(),
                        rep,
                        l.throughput(),
                        l.fairness(),
                        l.exits_per_1k(),
                        l.halts_per_1k(),
                        l.kicks_per_1k(),
                        l.spin_share(),
                        l.halt_share(),
                        l.drain_us().map(|d| format!("{d:.1}")).unwrap_or_else(|| "-".into()),
                        l.wall.as_secs_f64(),
                        l.acquisitions(),
                        l.hist.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","),
                        l.spin_cost_1k,
                        l.drain_cycles.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","),
                        l.tsc_khz,
                    );
                }
            }
            runs.push(r.locks);
        }
        if repeats > 1 {
            println!("median of {repeats}, {n} vCPUs, {}:", c.workload.id());
            let best = (0..c.locks.len())
                .map(|i| median(runs.iter().map(|r| r[i].throughput()).collect()))
                .fold(0.0, f64::max);
            for (i, l) in c.locks.iter().enumerate() {
                let m = |f: &dyn Fn(&LockReport) -> f64| {
                    median(runs.iter().map(|r| f(&r[i])).collect())
                };
                let tp = m(&|r| r.throughput());
                println!(
                    "{:<12} {:>12.0} acq/s {:>5.2}x  fairness {:.2}  exits/1k {:>8.2}  spin {:>3.0}%  kick {:>5.1} us  halt {:>7.1} us  exit {:>4.1} us{}",
                    l.id(),
                    tp,
                    tp / best,
                    m(&|r| r.fairness()),
                    m(&|r| r.exits_per_1k()),
                    100.0 * m(&|r| r.spin_share()),
                    m(&|r| r.kick_exit_us().unwrap_or(0.0)),
                    m(&|r| r.halt_us().unwrap_or(0.0)),
                    m(&|r| r.exit_us()),
                    if c.workload == Workload::Drain {
                        format!("  drain {:.0} us", m(&|r| r.drain_us().unwrap_or(f64::NAN)))
                    } else {
                        String::new()
                    }
                );
            }
        }
    }
}
