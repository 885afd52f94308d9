//! `pvlock`: the pvlock command-line tool.
//!
//! * `pvlock bench`: the benchmark matrix of pvlock's locks against std, parking_lot and spin
//!   under scenarios without and with oversubscription.
//! * `pvlock guest`: the guest lab, pvlock's `no_std` locks as a guest kernel's spinlocks on
//!   `/dev/kvm`, against the `spin` crate's locks and a test-and-set lock.
//! * `pvlock report FILE.json...`: re-render tables and plots from `bench --json` and `guest
//!   --json` files.
//! * `pvlock torture`: the locktorture-style stress test.
//!
//! Every bad input ends with one line on stderr and exit code 2; a failure at run time with exit
//! code 1; `pvlock guest` where there is no usable KVM with exit code 3.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;
use std::process::ExitCode;

mod args;
mod bench;
mod files;
mod guest;
mod hist;
mod locks;
mod machine;
mod output;
mod plot;
mod report;
mod run;
mod torture;
mod workload;

/// An error for the user: one line, and the exit code (2 = bad input, 1 = failure at run time,
/// 3 = no usable KVM for `pvlock guest`).
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

/// pvlock: spinlocks that stay fast when CPUs are overcommitted, and the tools to show it.
#[derive(Parser)]
#[command(name = "pvlock", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the benchmark matrix: pvlock's locks against std, parking_lot and spin.
    ///
    /// Measures throughput, fairness, acquire latency and CPU cost of each lock (--locks) in each
    /// scenario (--scenarios), workload (--workload) and thread count, peers and pvlock's locks
    /// in the same rounds. With no options: about one minute.
    Bench(bench::BenchArgs),
    /// Run the guest lab: pvlock's no_std locks as a guest kernel's spinlocks, on /dev/kvm.
    ///
    /// Runs a freestanding guest on N vCPUs (--vcpus), one host thread each, whose vCPUs contend
    /// on one lock (--locks), one VM per lock; the pv locks wait by halting the vCPU and wake a
    /// waiter by kicking its vCPU, both real VM exits. Measures throughput, fairness, exits per
    /// acquisition and the share of vCPU time spent spinning, against the spin crate's locks and a
    /// test-and-set lock in the same rounds. With no options: about one minute.
    Guest(guest::GuestArgs),
    /// Re-print the tables and plots of `pvlock bench --json` or `pvlock guest --json` files.
    ///
    /// One file: its tables and summary as `pvlock bench` or `pvlock guest` printed them.
    /// Several of one kind: side by side.
    Report(report::ReportArgs),
    /// Stress-test every pvlock lock, in the manner of the kernel's locktorture.
    ///
    /// Per lock, --writers threads take and release one shared lock for --duration and check
    /// mutual exclusion on every acquisition (an owner field, is_locked(), a counter that loses
    /// updates when two writers get in); holds are mostly short, sometimes milliseconds long,
    /// sometimes asleep; writers move between CPUs. A watchdog fails the run when no acquisition
    /// completes for --watchdog.
    Torture(torture::TortureArgs),
    /// A CPU hog for the `noisy` scenario (started by `pvlock bench`)
    #[command(hide = true)]
    Hog { parent: Option<String> },
}

fn command() -> clap::Command {
    Cli::command()
        .after_help(top_help())
        .mut_subcommand("bench", |c| c.after_help(bench::after_help()))
        .mut_subcommand("guest", |c| c.after_help(guest::after_help()))
        .mut_subcommand("torture", |c| c.after_help(torture::after_help()))
}

fn top_help() -> String {
    format!(
        "Suites (`pvlock bench --suite`):\n{}\n\
         Scenarios (`pvlock bench --scenarios`; CPUs = CPUs this process may run on, see --cpus):\n{}\n\
         Workloads (`pvlock bench --workload`):\n{}\n\
         Locks (`pvlock bench --locks`):\n{}\n\
         {}\n\
         Examples:\n\
         \x20 pvlock bench                                  the default matrix, about one minute\n\
         \x20 pvlock bench --threads 1,2,8x --locks pvlock,std,spin\n\
         \x20 pvlock bench --json run.json --plot run && pvlock report run.json\n\
         \x20 pvlock guest                                  the guest lab on /dev/kvm, about one minute\n\
         \x20 pvlock torture --duration 2s\n\n\
         `pvlock help COMMAND` or `pvlock COMMAND --help` shows a command's options.",
        bench::suite_table(),
        bench::scenario_table(),
        bench::workload_table(),
        locks::lock_table(),
        args::DURATIONS
    )
}

/// Renders a clap error as one line (clap's own errors span several lines).
fn one_line(e: &clap::Error, cmd: &clap::Command, argv: &[OsString]) -> String {
    let ctx = |k: ContextKind| match e.get(k) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(", "),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    // `--threads <LIST>` -> `--threads`
    let opt = || {
        ctx(ContextKind::InvalidArg)
            .split(' ')
            .next()
            .unwrap_or("")
            .to_string()
    };
    let sub_name = argv.get(1).and_then(|a| a.to_str()).unwrap_or("");
    let sub = cmd.find_subcommand(sub_name);
    match e.kind() {
        ErrorKind::InvalidSubcommand => {
            format!(
                "unknown command '{}'; commands: bench, guest, report, torture, help",
                ctx(ContextKind::InvalidSubcommand),
            )
        }
        ErrorKind::UnknownArgument => {
            let valid: Vec<String> = sub
                .unwrap_or(cmd)
                .get_arguments()
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .collect();
            format!(
                "{sub_name}: unknown option '{}'; valid options: {}",
                ctx(ContextKind::InvalidArg),
                valid.join(", ")
            )
        }
        ErrorKind::ValueValidation => {
            let why = std::error::Error::source(e).map_or_else(String::new, |s| s.to_string());
            format!("{}: {why}", opt())
        }
        ErrorKind::InvalidValue if !ctx(ContextKind::InvalidValue).is_empty() => format!(
            "{}: invalid value '{}'; valid: {}",
            opt(),
            ctx(ContextKind::InvalidValue),
            ctx(ContextKind::ValidValue)
        ),
        ErrorKind::InvalidValue => {
            let value = ctx(ContextKind::InvalidArg);
            format!("missing value: {} needs a value, e.g. {value}", opt())
        }
        ErrorKind::MissingRequiredArgument => {
            let usage = sub
                .map(|s| {
                    let mut s = s.clone().bin_name(format!("pvlock {sub_name}"));
                    s.render_usage().to_string()
                })
                .unwrap_or_default();
            format!(
                "{sub_name}: missing {}; {}",
                ctx(ContextKind::InvalidArg),
                usage.trim().replace("Usage: ", "usage: ")
            )
        }
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            first.trim_start_matches("error: ").to_string()
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let mut cmd = command();
    let parsed = cmd
        .try_get_matches_from_mut(&argv)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("pvlock: {}", one_line(&e, &cmd, &argv));
            return ExitCode::from(2);
        }
    };
    let result = match cli.cmd {
        None => {
            let _ = cmd.print_help();
            Ok(0)
        }
        Some(Cmd::Bench(a)) => bench::main(a),
        Some(Cmd::Guest(a)) => guest::main(a),
        Some(Cmd::Report(a)) => report::main(a),
        Some(Cmd::Torture(a)) => torture::main(a),
        Some(Cmd::Hog { parent }) => run::hog_main(parent.as_deref()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("pvlock: {}", e.msg);
            ExitCode::from(e.code)
        }
    }
}
