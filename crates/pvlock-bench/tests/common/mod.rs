//! What the end-to-end tests of the `pvlock` binary share.
#![allow(dead_code)] // each test file uses its own part

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the `pvlock` binary.
pub fn pvlock(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pvlock"))
        .args(args)
        .output()
        .expect("run pvlock")
}

/// An empty temporary directory of this test file's, for one test.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "pvlock-{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit `code`, one line on stderr that contains every `needles`, nothing on stdout.
pub fn fails(args: &[&str], code: i32, needles: &[&str]) {
    let out = pvlock(args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: stderr {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {err}"
    );
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} lacks {n:?}");
    }
    assert!(out.stdout.is_empty(), "{args:?}: printed to stdout");
}

/// Bad input: exit 2, one line on stderr, nothing on stdout.
pub fn bad(args: &[&str], needles: &[&str]) {
    fails(args, 2, needles)
}
