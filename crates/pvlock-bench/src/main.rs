//! `pvlock`: the pvlock command-line tool.
//!
//! * `pvlock bench`: the benchmark matrix of pvlock's locks against std, parking_lot and spin
//!   under scenarios without and with oversubscription (see `pvlock help`).
//! * `pvlock report FILE.json...`: re-render tables and plots from `bench --json` files.
//! * `pvlock torture`: the locktorture-style stress test.

use std::process::ExitCode;

mod bench;
mod hist;
mod locks;
mod machine;
mod output;
mod plot;
mod run;
mod torture;
mod workload;

/// An error for the user: one line, and the exit code (2 = bad input, 1 = failure at run time).
#[derive(Debug)]
pub struct CliError {
    code: u8,
    msg: String,
}

impl CliError {
    pub fn usage(msg: impl Into<String>) -> CliError {
        CliError {
            code: 2,
            msg: msg.into(),
        }
    }
    pub fn runtime(msg: impl Into<String>) -> CliError {
        CliError {
            code: 1,
            msg: msg.into(),
        }
    }
}

fn help() -> String {
    let mut s = String::from(
        "pvlock: spinlocks that stay fast when CPUs are overcommitted, and the tools to show it.

Usage:
  pvlock bench [OPTIONS]        run the benchmark matrix (about one minute with no options)
  pvlock report FILE.json... [--plot PATH]
                                re-print tables (several files side by side) and plots from --json files
  pvlock torture [OPTIONS]      locktorture-style stress test of every pvlock lock (see pvlock torture --help)
  pvlock help                   this text

Scenarios (CPUs = CPUs this process may run on, see --cpus):
  uncontended   1 thread, no non-critical work: the cost of lock + unlock
  native        threads = CPUs
  oversub-2x, oversub-4x, oversub-8x
                threads = 2, 4, 8 x CPUs: a preempted lock holder or next waiter stalls spinners
  noisy         threads = CPUs, plus --antagonists CPU-hog processes competing for the CPUs
  sweep         threads 1, CPUs, CPUs+1, 2x, 4x, 8x (the default scenario when --threads is given)

Workloads:
  counter       one hot lock over a 2-cache-line struct; the critical section makes --cs writes
  hashtable     --buckets buckets with a lock each, 90% lookups / 10% inserts, random keys
  stats         4 flow-statistics records under their own locks, half the updates to one hot flow

Bench options:
",
    );
    for (name, text) in bench::OPTIONS {
        s += &format!("  {name} {text}\n");
    }
    s += "\nLocks (--locks):\n";
    for (id, what) in locks::LOCKS {
        s += &format!("  {id:<13} {what}\n");
    }
    s += "
Notes: a cell runs for --duration, then a stop flag is set and each thread stops after its current
acquisition; with a pathological lock (a spinning FIFO lock whose next waiter is preempted) this can
take longer than --duration, and throughput counts the real wall time. A cell whose threads are not
done max(1 s, --duration) after the deadline is reported as STALLED. Acquire latency is timed on a
random 1 in 8 acquisitions (rdtsc where the TSC is invariant). CPU time and context switches come
from getrusage over the whole process. Every workload also checks mutual exclusion (exit code 1 if
a lock failed it). Bad arguments: one-line error, exit code 2.
";
    s
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    let result = match cmd {
        "bench" => {
            if rest.iter().any(|a| a == "--help" || a == "-h") {
                print!("{}", help());
                Ok(0)
            } else {
                bench::main(rest)
            }
        }
        "report" => output::report_main(rest),
        "torture" => return torture::main(rest),
        "hog" => return run::hog_main(rest),
        "help" | "--help" | "-h" => {
            print!("{}", help());
            Ok(0)
        }
        other => Err(CliError::usage(format!(
            "unknown command {other:?}; commands: bench, report, torture, help"
        ))),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("pvlock: {}", e.msg);
            ExitCode::from(e.code)
        }
    }
}
