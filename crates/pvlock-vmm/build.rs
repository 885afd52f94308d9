//! Builds the freestanding guest (`guest/` at the repository root, its own cargo workspace) and
//! hands its ELF to the crate, which embeds it with `include_bytes!`.
//!
//! The guest links for bare metal with the installed host target only (its flags are in
//! `guest/.cargo/config.toml`, which applies because cargo runs in that directory). It is always
//! built optimised, into this build script's `OUT_DIR`, and without the outer build's flags and
//! wrappers: `RUSTFLAGS` such as `-C target-cpu=native` must not reach a guest whose vCPUs offer
//! only baseline x86-64, and clippy's wrapper must not lint it. The jobserver is inherited, so the
//! nested build shares the outer one's job slots.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..");
    let guest = root.join("guest");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let target_dir = out.join("guest-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    for p in [
        "guest/src",
        "guest/Cargo.toml",
        "guest/Cargo.lock",
        "guest/build.rs",
        "guest/link.ld",
        "guest/.cargo/config.toml",
        "crates/pvlock/src",
        "crates/pvlock/Cargo.toml",
        "crates/pvlock-workload/src",
        "crates/pvlock-workload/Cargo.toml",
        "crates/pvlock-vmm/src/abi.rs",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }

    let mut cmd = Command::new(cargo);
    cmd.current_dir(&guest)
        .args(["build", "--release", "--quiet", "--target-dir"])
        .arg(&target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_PROFILE_") || k.starts_with("CARGO_TARGET_X86_64") {
            cmd.env_remove(&*k);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("pvlock-vmm: cannot run cargo to build the guest: {e}"));
    if !status.success() {
        panic!(
            "pvlock-vmm: building the guest (guest/, see its .cargo/config.toml) failed: {status}"
        );
    }
    let elf = target_dir.join("x86_64-unknown-linux-gnu/release/pvlock-guest");
    let dst = out.join("pvlock-guest.elf");
    std::fs::copy(&elf, &dst)
        .unwrap_or_else(|e| panic!("pvlock-vmm: guest ELF {} missing: {e}", elf.display()));
}
