//! End-to-end tests of the `pvlock` binary: argument errors, a short bench with JSON and plots,
//! and `report` re-rendering it.

use std::path::PathBuf;
use std::process::Output;

mod common;
use common::{bad, pvlock, tmpdir};

#[test]
fn unknown_names_list_the_valid_choices() {
    bad(
        &["bench", "--locks", "pvlock,nosuch"],
        &["nosuch", "ticket-spin", "parking_lot"],
    );
    bad(
        &["bench", "--scenarios", "oversub-3x"],
        &["oversub-3x", "uncontended", "noisy"],
    );
    bad(
        &["bench", "--workload", "queue"],
        &["queue", "counter", "hashtable", "stats"],
    );
    bad(
        &["bench", "--frobnicate", "1"],
        &["--frobnicate", "--threads"],
    );
    bad(&["nosuchcommand"], &["bench", "report"]);
}

#[test]
fn malformed_numbers_and_lists() {
    bad(&["bench", "--threads", "1,,2"], &["--threads"]);
    bad(&["bench", "--threads", "two"], &["--threads", "8x"]);
    bad(&["bench", "--threads", "0"], &["--threads"]);
    bad(&["bench", "--threads", "100000"], &["--threads"]);
    bad(&["bench", "--duration", "0s"], &["--duration", "500ms"]);
    bad(&["bench", "--duration", "5 fortnights"], &["--duration"]);
    bad(&["bench", "--duration", "3h"], &["--duration"]);
    bad(&["bench", "--repeats", "0"], &["--repeats"]);
    bad(&["bench", "--cs", "-1"], &["--cs"]);
    bad(&["bench", "--buckets"], &["--buckets", "missing"]);
}

#[test]
fn cpu_subset_the_machine_lacks() {
    bad(
        &["bench", "--cpus", "4000"],
        &["--cpus", "4000", "available"],
    );
    bad(&["bench", "--cpus", "1-0"], &["--cpus"]);
    bad(&["bench", "--cpus", "zero"], &["--cpus"]);
}

#[test]
fn unwritable_output_leaves_nothing() {
    let d = tmpdir("unwritable");
    let missing = d.join("no/such/dir/out.json");
    bad(
        &["bench", "--json", missing.to_str().unwrap()],
        &["--json", "cannot write"],
    );
    bad(&["bench", "--plot", d.to_str().unwrap()], &["--plot"]);
    bad(
        &["report", d.join("absent.json").to_str().unwrap()],
        &["absent.json"],
    );
    let junk = d.join("junk.json");
    std::fs::write(&junk, "{not json").unwrap();
    bad(
        &["report", junk.to_str().unwrap()],
        &["not a pvlock bench or guest JSON"],
    );
    let left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("junk.json")],
        "stray files"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn help_lists_commands_and_locks() {
    let out = pvlock(&["help"]);
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8_lossy(&out.stdout);
    for w in [
        "bench",
        "report",
        "torture",
        "--threads",
        "spin-ticket",
        "oversub-8x",
        "hashtable",
    ] {
        assert!(s.contains(w), "help lacks {w}");
    }
}

#[test]
fn short_bench_writes_json_plots_and_report_rerenders() {
    let d = tmpdir("e2e");
    let json = d.join("run.json");
    let plot = d.join("plot");
    let out = pvlock(&[
        "bench",
        "--duration",
        "50ms",
        "--locks",
        "pvlock,std,ticket-futex",
        "--scenarios",
        "uncontended,native,noisy",
        "--antagonists",
        "1",
        "--workload",
        "counter,hashtable,stats",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Summary:") && stdout.contains("pvlock::Mutex is"),
        "{stdout}"
    );

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["params"]["duration_ms"].as_f64().unwrap() > 49.0);
    let m = &v["machine"];
    assert!(m["cpus"].as_u64().unwrap() >= 1);
    for f in [
        "model_name",
        "kernel",
        "hypervisor",
        "available_parallelism",
        "date",
    ] {
        assert!(!m[f].is_null(), "machine.{f} missing");
    }
    // The calibrated spin budget is recorded and printed: it differs by machine (a PAUSE costs
    // ~30 ns on the development host and ~165 ns in a TCG guest).
    for f in ["spin_ns_per_1k", "spin_budget_iterations"] {
        assert!(m[f].as_u64().unwrap_or(0) > 0, "machine.{f} missing or 0");
    }
    assert!(stdout.contains("pvlock spin budget: "), "{stdout}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3 * 3 * 3, "scenarios x workloads x locks");
    let fields = [
        "scenario",
        "workload",
        "lock",
        "threads",
        "cpus",
        "ops_per_sec",
        "min_thread_ops",
        "max_thread_ops",
        "jain",
        "cv",
        "p50_ns",
        "p99_ns",
        "p999_ns",
        "max_ns",
        "cpu_ns_per_op",
        "ctx_switches_per_op",
        "stats",
        "repeats",
    ];
    for r in results {
        for f in fields {
            assert!(!r[f].is_null(), "record lacks {f}: {r}");
        }
        assert!(r["ops_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["mutual_exclusion_ok"], true, "{r}");
        let jain = r["jain"].as_f64().unwrap();
        assert!(jain > 0.0 && jain <= 1.0 + 1e-9, "{r}");
        if r["scenario"] == "uncontended" {
            assert_eq!(r["threads"], 1);
        }
        if r["scenario"] == "noisy" {
            assert_eq!(r["antagonists"], 1);
        }
        // pvlock's own locks report their event counters, peers an empty object.
        let stats = r["stats"].as_object().unwrap();
        assert_eq!(stats.is_empty(), r["lock"] == "std", "{r}");
    }
    let svg = std::fs::read_to_string(d.join("plot.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Throughput") && svg.contains("Fairness"));
    let png = std::fs::read(d.join("plot.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // report: one file re-renders the same tables; two files side by side; plots again.
    let out = pvlock(&["report", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let rep = String::from_utf8_lossy(&out.stdout);
    assert!(
        rep.contains("native [hashtable]") && rep.contains("Summary:"),
        "{rep}"
    );
    let plot2 = d.join("again.svg");
    let j = json.to_str().unwrap();
    let out = pvlock(&["report", j, j, "--plot", plot2.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rep = String::from_utf8_lossy(&out.stdout);
    assert!(
        rep.contains("Side by side (2 runs)") && rep.contains("ops/s [2]"),
        "{rep}"
    );
    assert!(d.join("again.svg").exists() && d.join("again.png").exists());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn thread_sweep_with_cpu_subset() {
    let out = pvlock(&[
        "bench",
        "--duration",
        "30ms",
        "--locks",
        "spin",
        "--threads",
        "1,2x",
        "--cpus",
        "0",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("sweep [counter]: 2 threads on 1 CPUs"), "{s}");
}

#[test]
fn help_texts_show_defaults_and_examples() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["bench", "--help"],
            &[
                "Usage: pvlock bench",
                "[default: 200ms]",
                "[default: 6]",
                "[default: default;",
                "Durations (TIME)",
                "bare number",
                "Examples:",
                "pvlock bench --json run.json",
            ],
        ),
        (
            &["report", "--help"],
            &[
                "Usage: pvlock report",
                "<FILE.json>...",
                "--plot",
                "Examples:",
                "pvlock report before.json after.json",
            ],
        ),
        (&["help", "report"], &["Usage: pvlock report", "Examples:"]),
        (
            &["torture", "--help"],
            &[
                "Usage: pvlock torture",
                "[default: 10s]",
                "[default: 5s]",
                "[default: 100ms]",
                "Durations (TIME)",
                "Examples:",
            ],
        ),
    ];
    for (args, needles) in cases {
        let out = pvlock(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}");
        let s = String::from_utf8_lossy(&out.stdout);
        for n in *needles {
            assert!(s.contains(n), "{args:?}: help lacks {n:?}:\n{s}");
        }
    }
}

#[test]
fn durations_need_a_unit() {
    bad(&["bench", "--duration", "5"], &["--duration", "no unit"]);
    bad(&["torture", "--duration", "10"], &["--duration", "no unit"]);
    bad(
        &["torture", "--watchdog", "0.5"],
        &["--watchdog", "no unit"],
    );
    // A sum of units is one duration.
    let d = tmpdir("duration");
    let json = d.join("d.json");
    let out = pvlock(&[
        "bench",
        "--duration",
        "1ms 500us",
        "--repeats",
        "1",
        "--locks",
        "spin",
        "--scenarios",
        "uncontended",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["params"]["duration_ms"].as_f64(), Some(1.5));
    let _ = std::fs::remove_dir_all(&d);
}

/// The smallest bench run that writes JSON (and plots): one lock, one cell, one round.
fn tiny_bench(extra: &[&str]) -> Output {
    let mut args = vec![
        "bench",
        "--duration",
        "5ms",
        "--repeats",
        "1",
        "--locks",
        "spin",
        "--scenarios",
        "uncontended",
    ];
    args.extend_from_slice(extra);
    pvlock(&args)
}

fn is_bench_json(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v["results"].is_array())
}

#[test]
fn output_through_a_symlink_writes_its_target() {
    use std::os::unix::fs::symlink;
    let d = tmpdir("symlink");
    std::fs::write(d.join("target.json"), "old").unwrap();
    symlink("target.json", d.join("link.json")).unwrap();
    // A dangling link: its target is created.
    symlink("made.svg", d.join("plot.svg")).unwrap();
    symlink("made.png", d.join("plot.png")).unwrap();
    let out = tiny_bench(&[
        "--json",
        d.join("link.json").to_str().unwrap(),
        "--plot",
        d.join("plot").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for link in ["link.json", "plot.svg", "plot.png"] {
        let m = std::fs::symlink_metadata(d.join(link)).unwrap();
        assert!(m.file_type().is_symlink(), "{link} is no longer a link");
    }
    assert!(is_bench_json(
        &std::fs::read_to_string(d.join("target.json")).unwrap()
    ));
    assert!(std::fs::read_to_string(d.join("made.svg"))
        .unwrap()
        .starts_with("<svg"));
    assert_eq!(&std::fs::read(d.join("made.png")).unwrap()[..4], b"\x89PNG");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn output_to_a_fifo_is_written_through() {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let d = tmpdir("fifo");
    let fifo = d.join("out.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    // A reader that does not block, so that the bench's open for writing finds one; the JSON
    // of a one-cell run fits in the pipe's buffer.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let out = tiny_bench(&["--json", fifo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut text = String::new();
    let _ = reader.read_to_string(&mut text);
    assert!(is_bench_json(&text), "the FIFO got {text:?}");
    let m = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(m.file_type().is_fifo(), "the FIFO was replaced");
    let _ = std::fs::remove_dir_all(&d);
}

/// A character device node like /dev/null (1, 3) or /dev/full (1, 7) in `d`, if this process
/// may make one (root); never the real /dev nodes, which a faulty build would replace.
fn char_device(d: &std::path::Path, name: &str, minor: u32) -> Option<PathBuf> {
    let p = d.join(name);
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a NUL-terminated path; mknod only creates the node.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, minor)) };
    if rc != 0 {
        eprintln!(
            "skipped: cannot make a character device here: {}",
            std::io::Error::last_os_error()
        );
        return None;
    }
    Some(p)
}

#[test]
fn output_to_a_device_is_written_through_and_errors_are_reported() {
    use std::os::unix::fs::FileTypeExt;
    let d = tmpdir("device");
    let (Some(null), Some(full)) = (char_device(&d, "null", 3), char_device(&d, "full", 7)) else {
        return;
    };
    let out = tiny_bench(&["--json", null.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = tiny_bench(&["--json", full.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot write") && err.contains("No space left"),
        "{err}"
    );
    for dev in [null, full] {
        let m = std::fs::symlink_metadata(&dev).unwrap();
        assert!(m.file_type().is_char_device(), "{dev:?} was replaced");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn output_to_a_directory_is_refused_before_the_run() {
    let d = tmpdir("directory");
    std::fs::create_dir(d.join("plot.svg")).unwrap();
    std::fs::create_dir(d.join("out.json")).unwrap();
    std::os::unix::fs::symlink("out.json", d.join("link.json")).unwrap();
    let plot = d.join("plot");
    bad(
        &["bench", "--plot", plot.to_str().unwrap()],
        &["--plot", "plot.svg", "is a directory"],
    );
    bad(
        &["report", "x.json", "--plot", plot.to_str().unwrap()],
        &["--plot", "is a directory"],
    );
    for p in ["out.json", "link.json"] {
        bad(
            &["bench", "--json", d.join(p).to_str().unwrap()],
            &["--json", "is a directory"],
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn tiny_suite_runs_random_locks_and_short_lived_threads() {
    let d = tmpdir("tiny");
    let json = d.join("tiny.json");
    let out = pvlock(&[
        "bench",
        "--suite",
        "tiny",
        "--duration",
        "20ms",
        "--repeats",
        "1",
        "--nlocks",
        "2,64",
        "--threads",
        "2",
        "--acquisitions",
        "1000",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("short-lived [random-64]: 2 threads"),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["params"]["suite"], "tiny");
    assert_eq!(v["params"]["acquisitions"], 1000);
    let results = v["results"].as_array().unwrap();
    let locks = [
        "pvlock",
        "queued-spin",
        "std",
        "parking_lot",
        "spin",
        "spin-ticket",
        "ttas",
    ];
    assert_eq!(
        results.len(),
        2 * 2 * locks.len(),
        "scenarios x nlocks x locks"
    );
    for r in results {
        assert!(locks.contains(&r["lock"].as_str().unwrap()), "{r}");
        assert!(["random-2", "random-64"].contains(&r["workload"].as_str().unwrap()));
        assert_eq!(r["mutual_exclusion_ok"], true, "{r}");
        assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
        // The ratio to the best peer, with its spread over the rounds (one round here).
        let x = |f: &str| r[f].as_f64().unwrap_or_else(|| panic!("{f} missing: {r}"));
        assert!(x("vs_best_peer_min") <= x("vs_best_peer"), "{r}");
        assert!(x("vs_best_peer") <= x("vs_best_peer_max"), "{r}");
        let rounds = r["rounds"].as_u64().unwrap();
        if r["scenario"] == "short-lived" {
            // Every round but a last one cut by the deadline does 2 x 1000 acquisitions.
            assert!(rounds >= 1, "{r}");
            assert!(r["ops"].as_u64().unwrap() <= rounds * 2000, "{r}");
        } else {
            assert_eq!(r["scenario"], "tiny");
            assert_eq!(rounds, 0, "{r}");
        }
    }
    // Options given explicitly win over the suite's.
    let out = pvlock(&[
        "bench",
        "--suite",
        "tiny",
        "--duration",
        "5ms",
        "--repeats",
        "1",
        "--nlocks",
        "2",
        "--threads",
        "2",
        "--locks",
        "pvlock,ttas",
        "--scenarios",
        "tiny",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("tiny [random-2]: 2 threads"), "{stdout}");
    assert!(!stdout.contains("short-lived ["), "{stdout}");
    assert!(
        !stdout.lines().any(|l| l.starts_with("  spin ")),
        "{stdout}"
    );
    bad(&["bench", "--suite", "huge"], &["--suite", "huge", "tiny"]);
    bad(&["bench", "--nlocks", "2,0"], &["--nlocks"]);
    let _ = std::fs::remove_dir_all(&d);
}
