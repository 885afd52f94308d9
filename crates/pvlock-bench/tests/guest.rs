//! End-to-end tests of `pvlock guest`: argument errors (everywhere), the one-line exit-3 error
//! where KVM cannot be used, and a short real run with JSON, plots and `report` where it can
//! (skipped with a line saying so where it cannot).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{bad, fails, pvlock, text, tmpdir};

/// Whether this machine can run the guest lab; says why not when it cannot.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn kvm_here(test: &str) -> bool {
    match pvlock_vmm::available() {
        Ok(()) => true,
        Err(e) if e.is_unavailable() => {
            println!("{test}: skipped: {e}");
            false
        }
        Err(e) => panic!("{test}: {e}"),
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn kvm_here(test: &str) -> bool {
    println!("{test}: skipped: the guest lab needs Linux on x86-64");
    false
}

#[test]
fn bad_input_is_one_line_and_exit_2_with_or_without_kvm() {
    bad(&["guest", "--vcpus", "0"], &["--vcpus", "1 to 64"]);
    bad(&["guest", "--vcpus", "65"], &["--vcpus", "1 to 64"]);
    bad(&["guest", "--vcpus", "2,,8"], &["--vcpus"]);
    bad(&["guest", "--vcpus", "two"], &["--vcpus", "2,8,16,32"]);
    bad(
        &["guest", "--locks", "queued-pv,nosuch"],
        &["nosuch", "ticket-spin", "spin-ticket"],
    );
    bad(
        &["guest", "--workload", "random"],
        &["random", "counter", "drain"],
    );
    bad(&["guest", "--duration", "5"], &["--duration", "no unit"]);
    bad(&["guest", "--duration", "0s"], &["--duration"]);
    bad(
        &["guest", "--duration", "2h"],
        &["--duration", "out of range"],
    );
    bad(&["guest", "--grace", "1ms"], &["--grace"]);
    bad(&["guest", "--repeats", "0"], &["--repeats"]);
    bad(&["guest", "--buckets", "0"], &["--buckets"]);
    bad(&["guest", "--buckets", "32769"], &["--buckets", "32768"]);
    bad(&["guest", "--drain-rounds", "65"], &["--drain-rounds"]);
    bad(&["guest", "--spin-iterations", "0"], &["--spin-iterations"]);
    bad(&["guest", "--cs", "-1"], &["--cs"]);
    bad(&["guest", "--cpus", "4000"], &["--cpus", "available"]);
    bad(
        &["guest", "--workload", "counter,drain", "--vcpus", "1,2"],
        &["--vcpus", "drain", "at least 2"],
    );
    bad(&["guest", "--frobnicate"], &["--frobnicate", "--vcpus"]);
    bad(&["guest", "--repeats"], &["--repeats", "missing"]);
    let d = tmpdir("bad");
    bad(
        &["guest", "--json", d.to_str().unwrap()],
        &["--json", "is a directory"],
    );
    bad(
        &[
            "guest",
            "--json",
            d.join("no/such/g.json").to_str().unwrap(),
        ],
        &["--json", "cannot write"],
    );
    bad(&["guest", "--plot", d.to_str().unwrap()], &["--plot"]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn help_shows_defaults_exit_codes_and_examples() {
    let out = pvlock(&["guest", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let s = text(&out.stdout);
    for n in [
        "Usage: pvlock guest",
        "[default: 2,8,16,32]",
        "[default: all]",
        "[default: counter]",
        "[default: 300ms; drain: 1m]",
        "[default: 5]",
        "[default: 10s]",
        "queued-pv",
        "spin-ticket",
        "drain",
        "Durations (TIME)",
        "3 no usable KVM",
        "Examples:",
        "pvlock guest --json guest.json",
    ] {
        assert!(s.contains(n), "guest --help lacks {n:?}:\n{s}");
    }
    let top = text(&pvlock(&["help"]).stdout);
    assert!(
        top.contains("guest") && top.contains("pvlock guest"),
        "{top}"
    );
}

/// `/dev/kvm` that cannot be opened (here: as an unprivileged user, where root runs the tests and
/// the device is not world-accessible) is one line and exit 3, at once.
#[test]
fn unusable_kvm_is_one_line_and_exit_3() {
    let kvm = std::fs::metadata("/dev/kvm");
    let setpriv = Path::new("/usr/bin/setpriv");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let exe = env!("CARGO_BIN_EXE_pvlock");
    let args = [
        "guest",
        "--vcpus",
        "2",
        "--repeats",
        "1",
        "--duration",
        "10ms",
    ];
    match kvm {
        Err(_) => {
            // No /dev/kvm at all: the plain command says so.
            fails(&args, 3, &["no usable KVM", "/dev/kvm"]);
        }
        Ok(m) => {
            use std::os::unix::fs::PermissionsExt;
            if !root || !setpriv.exists() || m.permissions().mode() & 0o006 != 0 {
                println!(
                    "unusable_kvm_is_one_line_and_exit_3: skipped: needs root, setpriv and a \
                     /dev/kvm that others cannot open"
                );
                return;
            }
            let t = Instant::now();
            let out = Command::new(setpriv)
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", exe])
                .args(args)
                .output()
                .expect("run setpriv");
            let err = text(&out.stderr);
            if err.contains("setpriv:") {
                println!("unusable_kvm_is_one_line_and_exit_3: skipped: {err}");
                return;
            }
            assert_eq!(out.status.code(), Some(3), "{err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
            assert!(
                err.contains("no usable KVM") && err.contains("/dev/kvm"),
                "{err}"
            );
            assert!(out.stdout.is_empty());
            assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        }
    }
}

#[test]
fn short_run_writes_json_plots_and_report_rerenders_it() {
    if !kvm_here("short_run_writes_json_plots_and_report_rerenders_it") {
        // The command itself must say it cannot run, with exit 3.
        fails(
            &[
                "guest",
                "--vcpus",
                "2",
                "--repeats",
                "1",
                "--duration",
                "10ms",
            ],
            3,
            &["no usable KVM"],
        );
        return;
    }
    let d = tmpdir("run");
    let json = d.join("g.json");
    let plot = d.join("g");
    let out = pvlock(&[
        "guest",
        "--vcpus",
        "2,3",
        "--locks",
        "queued-pv,ticket-spin,tas,spin",
        "--workload",
        "counter,drain",
        "--duration",
        "100ms",
        "--drain-rounds",
        "2",
        "--repeats",
        "2",
        "--latency",
        "--per-vcpu",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    for n in [
        "counter: 3 vCPUs on ",
        "drain: 2 vCPUs on ",
        "(best peer)",
        "acquire latency",
        "queued-pv per vCPU:",
        "Summary:",
        "queued-pv is ",
        "Drain time grows as (n-1)^k",
    ] {
        assert!(stdout.contains(n), "output lacks {n:?}:\n{stdout}");
    }

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["format"], "pvlock-guest");
    assert_eq!(v["params"]["vcpus"], serde_json::json!([2, 3]));
    assert_eq!(v["params"]["repeats"], 2);
    assert!(v["host"]["cpus"].as_u64().unwrap() >= 1);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2 * 2 * 4, "workloads x vCPU counts x locks");
    for r in results {
        let lock = r["lock"].as_str().unwrap();
        let n = r["vcpus"].as_u64().unwrap() as usize;
        let x = |f: &str| r[f].as_f64().unwrap_or_else(|| panic!("{f} missing: {r}"));
        assert!(r["acquisitions"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["per_vcpu"].as_array().unwrap().len(), n, "{r}");
        let hist: u64 = r["latency_hist_log2_cycles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_u64().unwrap())
            .sum();
        if r["workload"] != "drain" {
            // Every acquisition is timed (drain times its rounds instead).
            assert_eq!(hist, r["acquisitions"].as_u64().unwrap(), "{r}");
        }
        assert_eq!(r["round_acq_per_sec"].as_array().unwrap().len(), 2, "{r}");
        assert_eq!(r["peer"], ["tas", "spin"].contains(&lock), "{r}");
        assert_eq!(r["pv"], lock == "queued-pv", "{r}");
        if r["pv"] == false {
            assert_eq!((x("halts_per_1k"), x("kicks_per_1k")), (0.0, 0.0), "{r}");
        }
        // Every row has its ratio to the best peer, inside its spread over the rounds.
        assert!(x("vs_best_peer_min") <= x("vs_best_peer"), "{r}");
        assert!(x("vs_best_peer") <= x("vs_best_peer_max"), "{r}");
        let (spin, halt) = (x("spin_share"), x("halt_share"));
        assert!(
            (0.0..=1.0).contains(&spin) && (0.0..=1.0).contains(&halt),
            "{r}"
        );
        if r["workload"] == "drain" {
            assert!(x("drain_us") > 0.0, "{r}");
            assert_eq!(r["round_drain_us"].as_array().unwrap().len(), 2, "{r}");
        } else {
            assert!(x("acq_per_sec") > 0.0 && x("wall_s") >= 0.1, "{r}");
            let mm = x("min_max");
            assert!((0.0..=1.0).contains(&mm), "{r}");
        }
    }
    let svg = std::fs::read_to_string(d.join("g.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Throughput") && svg.contains("Drain time"));
    assert!(svg.contains("vCPUs (on "), "x axis");
    assert_eq!(&std::fs::read(d.join("g.png")).unwrap()[..4], b"\x89PNG");

    // report: the same tables, byte for byte, as the run printed before its file lines.
    let out = pvlock(&["report", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let tables = stdout.split("JSON written to").next().unwrap();
    assert_eq!(text(&out.stdout), tables);
    // Two guest files side by side, with plots; a guest file beside a bench file is refused.
    let j = json.to_str().unwrap();
    let again = d.join("again.svg");
    let out = pvlock(&["report", j, j, "--plot", again.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("Side by side (2 guest lab runs)") && s.contains("acq/s [2]"),
        "{s}"
    );
    assert!(s.contains("drain [2]"), "{s}");
    assert!(d.join("again.png").exists());
    let bench = d.join("bench.json");
    let out = pvlock(&[
        "bench",
        "--duration",
        "5ms",
        "--repeats",
        "1",
        "--locks",
        "spin",
        "--scenarios",
        "uncontended",
        "--json",
        bench.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    bad(
        &["report", j, bench.to_str().unwrap()],
        &["guest lab file", "bench file"],
    );
    let _ = std::fs::remove_dir_all(&d);
}
