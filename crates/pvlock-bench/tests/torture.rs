//! End-to-end tests of `pvlock torture`: SUCCESS on real locks, FAILURE on a deliberately broken
//! lock and on a stuck one (the watchdog), exit code 2 on bad arguments.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn torture(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pvlock"))
        .arg("torture")
        .args(args)
        .output()
        .expect("run the pvlock binary");
    (out, start.elapsed())
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn real_locks_succeed() {
    let locks = "ticket-futex,byte-park,queued-auto,pvlock";
    let (out, took) = torture(&[
        "--locks",
        locks,
        "--duration",
        "1s",
        "--stat-interval",
        "400ms",
        "--writers",
        "6",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("End of test: SUCCESS"),
        "{stdout}"
    );
    for lock in locks.split(',') {
        assert!(
            stdout.contains(&format!("--- Start of test: lock={lock} writers=6 ")),
            "no header for {lock}:\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("--- End of lock {lock}: SUCCESS")),
            "{lock} did not pass:\n{stdout}"
        );
    }
    let stats: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("Writes: "))
        .collect();
    assert!(
        stats.len() >= 4,
        "one final stats line per lock at least:\n{stdout}"
    );
    for line in &stats {
        // `Writes: Total: N Max/Min: a/b [???] Fail: 0`
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(&words[..2], ["Writes:", "Total:"], "{line}");
        assert!(words[2].parse::<u64>().is_ok(), "{line}");
        assert_eq!(words[3], "Max/Min:", "{line}");
        assert!(line.ends_with(" Fail: 0"), "{line}");
        assert!(!line.contains("!!!"), "{line}");
    }
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn broken_lock_fails() {
    let (out, _) = torture(&["--locks", "broken", "--duration", "1s", "--writers", "4"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("End of test: FAILURE"),
        "{stdout}"
    );
    let flagged = stdout
        .lines()
        .any(|l| l.starts_with("Writes: Total: ") && l.ends_with(" !!!"));
    assert!(flagged, "no `Fail: k !!!` line:\n{stdout}");
    assert!(
        stdout.contains("--- End of lock broken: FAILURE"),
        "{stdout}"
    );
}

#[test]
fn stuck_lock_trips_the_watchdog() {
    let (out, took) = torture(&[
        "--locks",
        "stuck",
        "--duration",
        "20s",
        "--watchdog",
        "1s",
        "--writers",
        "3",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("watchdog: lock stuck made no progress for"),
        "{stdout}"
    );
    assert!(stdout.contains("is_locked=true"), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("End of test: FAILURE"),
        "{stdout}"
    );
    // The watchdog ends the run long before --duration.
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn bad_arguments_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--locks", "nope"], "unknown lock 'nope'"),
        (&["--locks", "ticket-spin,,pvlock"], "empty name"),
        (&["--writers", "0"], "--writers"),
        (&["--writers", "many"], "--writers"),
        (&["--duration", "0s"], "--duration"),
        (&["--duration", "soon"], "--duration"),
        (&["--duration", "48h"], "--duration"),
        (&["--stat-interval", "-1s"], "--stat-interval"),
        (&["--watchdog"], "--watchdog needs a value"),
        (&["--frobnicate"], "unknown option '--frobnicate'"),
    ];
    for (args, wanted) in cases {
        let (out, _) = torture(args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line wanted:\n{stderr}"
        );
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // Unknown names list the valid choices, but never the test-only locks.
    let (out, _) = torture(&["--locks", "nope"]);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("ticket-spin") && stderr.contains("queued-auto"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("broken") && !stderr.contains("stuck"),
        "{stderr}"
    );
}

#[test]
fn help_hides_test_locks() {
    let (out, _) = torture(&["--help"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("--watchdog"), "{stdout}");
    assert!(!stdout.contains("broken"), "{stdout}");
}

/// Readers and writers of the reader-writer locks: SUCCESS with a `Reads:` line; a lock whose
/// readers take no lock (`broken-rw`) is caught by the readers' checks.
#[test]
fn readers_are_checked() {
    let (out, _) = torture(&[
        "--locks",
        "rwlock-auto,rwlock-spin",
        "--duration",
        "500ms",
        "--writers",
        "4",
        "--readers",
        "4",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("readers=4"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("Reads: Total: ")),
        "{stdout}"
    );
    let (out, _) = torture(&["--locks", "broken-rw", "--duration", "1s", "--writers", "4"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("End of test: FAILURE"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("Reads: ") && l.contains("!!!")),
        "{stdout}"
    );
}
