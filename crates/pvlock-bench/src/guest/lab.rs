//! The VMM side of `pvlock guest` (Linux on x86-64 only): one lock at one vCPU count in one VM,
//! through `pvlock_vmm`, turned into a [`GuestRecord`].

use super::output::{GuestRecord, VcpuRecord};
use super::{Cell, Settings};
use crate::CliError;
use pvlock_vmm::{Config, Error, Lock, LockReport, Workload};

/// The VMM's configuration of one cell, checked (`Err`: why, one line).
fn config(cell: &Cell, lock: &str, s: &Settings) -> Result<Config, String> {
    let lock: Lock = lock.parse().map_err(|e: Error| e.to_string())?;
    let workload: Workload = cell.workload.parse().map_err(|e: Error| e.to_string())?;
    let c = Config {
        vcpus: cell.vcpus,
        locks: vec![lock],
        workload,
        duration: cell.duration,
        cs: s.cs,
        ncs: s.ncs,
        buckets: s.buckets,
        rounds: s.drain_rounds,
        spin_iterations: s.spin_iterations,
        grace: s.grace,
    };
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

/// Checks a cell's values against the VMM's limits.
pub fn check(cell: &Cell, lock: &str, s: &Settings) -> Result<(), String> {
    config(cell, lock, s).map(drop)
}

/// Whether this machine can run a VM (`Err`: the exit-3 error saying why not).
pub fn available() -> Result<(), CliError> {
    pvlock_vmm::available().map_err(vmm_error)
}

fn vmm_error(e: Error) -> CliError {
    if e.is_unavailable() {
        super::unavailable(&e.to_string())
    } else {
        CliError::runtime(format!("guest: {e}"))
    }
}

/// Runs `lock` on `cell` in a VM of its own.
pub fn run(cell: &Cell, lock: &str, s: &Settings, cpus: usize) -> Result<GuestRecord, CliError> {
    let c = config(cell, lock, s).map_err(CliError::usage)?;
    let mut report = pvlock_vmm::run(&c).map_err(|e| {
        let mut err = vmm_error(e.clone());
        if matches!(e, Error::Deadline { .. }) {
            err.msg += " (a lock that stalls under overcommit drains slowly: --grace waits longer)";
        }
        err
    })?;
    let r = report
        .locks
        .pop()
        .ok_or_else(|| CliError::runtime("guest: the VMM returned no result"))?;
    Ok(record(&r, cell, cpus))
}

fn record(r: &LockReport, cell: &Cell, cpus: usize) -> GuestRecord {
    let acq: Vec<u64> = r.vcpus.iter().map(|v| v.acquisitions).collect();
    let min = acq.iter().copied().min().unwrap_or(0);
    let max = acq.iter().copied().max().unwrap_or(0);
    let drains: Vec<f64> = r.drain_cycles.iter().map(|&c| r.cycles_to_us(c)).collect();
    GuestRecord {
        workload: cell.workload.to_string(),
        lock: r.lock.id().to_string(),
        vcpus: cell.vcpus,
        cpus,
        pv: super::is_pv(r.lock.id()),
        peer: super::is_peer(r.lock.id()),
        duration_ms: cell.duration.as_secs_f64() * 1e3,
        acquisitions: r.acquisitions(),
        wall_s: r.wall.as_secs_f64(),
        acq_per_sec: r.throughput(),
        min_vcpu_acquisitions: min,
        max_vcpu_acquisitions: max,
        min_max: r.fairness(),
        halts: r.halts(),
        kicks: r.kicks(),
        halts_per_1k: r.halts_per_1k(),
        kicks_per_1k: r.kicks_per_1k(),
        exits_per_1k: r.exits_per_1k(),
        spin_share: r.spin_share(),
        halt_share: r.halt_share(),
        kick_us: r.kick_exit_us(),
        halt_us: r.halt_us(),
        exit_us: r.exit_us(),
        drain_us: r.drain_us(),
        drain_rounds_us: drains,
        tsc_khz: r.tsc_khz,
        spin_cost_1k: r.spin_cost_1k,
        latency_hist_log2_cycles: r.hist.to_vec(),
        per_vcpu: r
            .vcpus
            .iter()
            .map(|v| VcpuRecord {
                acquisitions: v.acquisitions,
                acquire_cycles: v.acquire_cycles,
                spin_cycles: v.spin_cycles,
                halts: v.halts,
                halt_cycles: v.halt_cycles,
                kicks: v.kicks,
                kick_cycles: v.kick_cycles,
                window_cycles: v.window_cycles,
            })
            .collect(),
        repeats: 1,
        repeat_acq_per_sec: vec![r.throughput()],
        round_acq_per_sec: vec![r.throughput()],
        round_drain_us: r.drain_us().into_iter().collect(),
        vs_best_peer: None,
        vs_best_peer_min: None,
        vs_best_peer_max: None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cli_knows_the_vmms_locks_workloads_and_limits() {
        let locks: Vec<&str> = pvlock_vmm::Lock::ALL.iter().map(|l| l.id()).collect();
        let ours: Vec<&str> = super::super::LOCKS.iter().map(|l| l.0).collect();
        assert_eq!(locks, ours);
        for l in pvlock_vmm::Lock::ALL {
            assert_eq!(
                super::super::is_pv(l.id()),
                l.is_pv(),
                "{}: pv or not",
                l.id()
            );
        }
        let wls: Vec<&str> = pvlock_vmm::Workload::ALL.iter().map(|w| w.id()).collect();
        let ours: Vec<&str> = super::super::WORKLOADS.iter().map(|w| w.0).collect();
        assert_eq!(wls, ours);
        assert_eq!(super::super::MAX_VCPUS, pvlock_vmm::abi::MAX_VCPUS);
        assert_eq!(
            super::super::MAX_DRAIN_ROUNDS as usize,
            pvlock_vmm::abi::MAX_ROUNDS
        );
        assert_eq!(
            u64::from(super::super::MAX_BUCKETS),
            pvlock_vmm::abi::ARENA_SIZE / 256
        );
    }
}
