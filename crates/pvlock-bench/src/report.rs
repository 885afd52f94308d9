//! `pvlock report FILE.json [FILE2.json ...] [--plot PATH]`: re-prints the tables of one
//! `bench --json` or `guest --json` file, or several of one kind side by side, and draws their
//! plots. A guest file says so in its `format` field; any other is read as a bench file.

use crate::guest::output::{self as guest, GuestOutput};
use crate::output::{key, print_report, si, Output, Record};
use crate::{files, plot, CliError};
use std::io::Write;
use std::path::PathBuf;

/// `pvlock report` options.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:
  pvlock report run.json                         the tables of one run again
  pvlock report before.json after.json           two runs side by side
  pvlock report run.json --plot run              the plots again: run.svg and run.png
  pvlock report guest.json                       a `pvlock guest --json` file's tables again")]
pub struct ReportArgs {
    /// JSON files written by `pvlock bench --json` (any version) or `pvlock guest --json`. One
    /// file: its tables and summary again. Two or more of one kind: throughput and fairness side
    /// by side.
    #[arg(value_name = "FILE.json", required = true)]
    pub files: Vec<PathBuf>,
    /// Also write the plots of these files to PATH.svg and PATH.png (PATH may end in .svg or
    /// .png); with several files, later runs are drawn dashed.
    #[arg(long, value_name = "PATH", value_parser = files::plot_path)]
    pub plot: Option<PathBuf>,
}

/// Side by side: ops/s and min/max per input file.
fn print_side_by_side(w: &mut impl Write, docs: &[(String, Output)]) -> std::io::Result<()> {
    writeln!(w, "Side by side ({} runs):", docs.len())?;
    for (i, (name, d)) in docs.iter().enumerate() {
        let m = &d.machine;
        writeln!(
            w,
            "  [{}] {name}: {} CPUs, {}, {}, {}",
            i + 1,
            m.cpus,
            if m.hypervisor { "VM" } else { "bare metal" },
            m.model_name,
            m.date
        )?;
    }
    let all: Vec<Record> = docs
        .iter()
        .flat_map(|d| d.1.results.iter().cloned())
        .collect();
    let mut keys: Vec<(String, String, usize, usize)> = Vec::new();
    for r in &all {
        let k = key(r);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for k in keys {
        writeln!(w)?;
        writeln!(
            w,
            "{} [{}]: {} threads{}",
            k.0,
            k.1,
            k.2,
            if k.3 > 0 {
                format!(" + {} hogs", k.3)
            } else {
                String::new()
            }
        )?;
        write!(w, "  {:<14}", "lock")?;
        for i in 0..docs.len() {
            write!(
                w,
                " {:>11} {:>7}",
                format!("ops/s [{}]", i + 1),
                format!("min/max")
            )?;
        }
        writeln!(w)?;
        let mut locks: Vec<&str> = Vec::new();
        for r in all.iter().filter(|r| key(r) == k) {
            if !locks.contains(&r.lock.as_str()) {
                locks.push(&r.lock);
            }
        }
        for lock in locks {
            write!(w, "  {lock:<14}")?;
            for (_, d) in docs {
                match d.results.iter().find(|r| key(r) == k && r.lock == lock) {
                    Some(r) => write!(w, " {:>11} {:>7.2}", si(r.ops_per_sec), r.min_max)?,
                    None => write!(w, " {:>11} {:>7}", "-", "-")?,
                }
            }
            writeln!(w)?;
        }
    }
    Ok(())
}

/// One input file, of either kind.
enum Doc {
    Bench(Output),
    Guest(GuestOutput),
}

fn read(f: &std::path::Path) -> Result<(String, Doc), CliError> {
    let name = f.display().to_string();
    let text = std::fs::read_to_string(f)
        .map_err(|e| CliError::usage(format!("report: cannot read {name:?}: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        CliError::usage(format!(
            "report: {name:?} is not a pvlock bench or guest JSON file: {e}"
        ))
    })?;
    let doc = if value.get("format").and_then(|f| f.as_str()) == Some(guest::FORMAT) {
        Doc::Guest(serde_json::from_value(value).map_err(|e| {
            CliError::usage(format!(
                "report: {name:?} is not a pvlock guest JSON file: {e}"
            ))
        })?)
    } else {
        Doc::Bench(serde_json::from_value(value).map_err(|e| {
            CliError::usage(format!(
                "report: {name:?} is not a pvlock bench JSON file: {e}"
            ))
        })?)
    };
    Ok((name, doc))
}

pub fn main(a: ReportArgs) -> Result<u8, CliError> {
    let mut benches = Vec::new();
    let mut guests = Vec::new();
    for f in &a.files {
        match read(f)? {
            (name, Doc::Bench(d)) => benches.push((name, d)),
            (name, Doc::Guest(d)) => guests.push((name, d)),
        }
    }
    if !benches.is_empty() && !guests.is_empty() {
        return Err(CliError::usage(format!(
            "report: {:?} is a guest lab file and {:?} a bench file: report each kind on its own",
            guests[0].0, benches[0].0
        )));
    }
    if !guests.is_empty() {
        return main_guest(&guests, a.plot.as_deref());
    }
    let docs = benches;
    let mut out = std::io::stdout().lock();
    let _ = if docs.len() == 1 {
        print_report(&mut out, &docs[0].1)
    } else {
        print_side_by_side(&mut out, &docs)
    };
    if let Some(p) = a.plot {
        let labelled: Vec<(String, &Output)> = if docs.len() == 1 {
            vec![(String::new(), &docs[0].1)]
        } else {
            docs.iter()
                .enumerate()
                .map(|(i, d)| (format!("[{}]", i + 1), &d.1))
                .collect()
        };
        let (svg, png) = plot::write(&p, &labelled).map_err(CliError::runtime)?;
        let _ = writeln!(
            out,
            "Plots written to {} and {}",
            svg.display(),
            png.display()
        );
    }
    Ok(0)
}

fn main_guest(
    docs: &[(String, GuestOutput)],
    plot: Option<&std::path::Path>,
) -> Result<u8, CliError> {
    let mut out = std::io::stdout().lock();
    let _ = if docs.len() == 1 {
        guest::print_report(&mut out, &docs[0].1)
    } else {
        guest::print_side_by_side(&mut out, docs)
    };
    if let Some(p) = plot {
        let labelled: Vec<(String, &GuestOutput)> = if docs.len() == 1 {
            vec![(String::new(), &docs[0].1)]
        } else {
            docs.iter()
                .enumerate()
                .map(|(i, d)| (format!("[{}]", i + 1), &d.1))
                .collect()
        };
        let (svg, png) = plot::write_guest(p, &labelled).map_err(CliError::runtime)?;
        let _ = writeln!(
            out,
            "Plots written to {} and {}",
            svg.display(),
            png.display()
        );
    }
    Ok(0)
}
