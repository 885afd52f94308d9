//! The guest lab on the real `/dev/kvm`: every lock runs, excludes and makes progress; a guest
//! that hangs or faults ends in an error, not a hang. Skipped (with a line saying so) where
//! `/dev/kvm` is missing or unusable.

use pvlock_vmm::{Config, Error, Lock, Workload};
use std::time::{Duration, Instant};

/// `false` (after saying why) when this machine cannot run a VM.
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

#[test]
fn every_lock_excludes_and_progresses_on_two_vcpus() {
    if !kvm_here("every_lock_excludes_and_progresses_on_two_vcpus") {
        return;
    }
    let config = Config {
        vcpus: 2,
        locks: Lock::ALL.to_vec(),
        duration: Duration::from_millis(200),
        ..Config::default()
    };
    let report = pvlock_vmm::run(&config).unwrap();
    assert_eq!(report.locks.len(), Lock::ALL.len());
    for l in &report.locks {
        assert_eq!(l.counted, l.acquisitions(), "{}", l.lock.id());
        assert_eq!(l.vcpus.len(), 2);
        for (i, v) in l.vcpus.iter().enumerate() {
            assert!(
                v.acquisitions > 0,
                "{} vCPU {i} made no acquisition",
                l.lock.id()
            );
            assert!(v.window_cycles > 0 && v.acquire_cycles >= v.halt_cycles);
            assert_eq!(v.spin_cycles, v.acquire_cycles - v.halt_cycles);
        }
        if !l.lock.is_pv() {
            assert_eq!(
                (l.halts(), l.kicks()),
                (0, 0),
                "{} never exits",
                l.lock.id()
            );
        }
        assert_eq!(l.hist.iter().sum::<u64>(), l.acquisitions());
        assert!(l.wall >= config.duration);
    }
    let table = pvlock_vmm::render_table(&report);
    assert_eq!(table.lines().count(), 2 + Lock::ALL.len(), "{table}");
}

#[test]
fn the_other_workloads_run_and_exclude() {
    if !kvm_here("the_other_workloads_run_and_exclude") {
        return;
    }
    for workload in [Workload::HashTable, Workload::Stats] {
        let config = Config {
            vcpus: 3,
            locks: vec![Lock::QueuedPv, Lock::TicketPv],
            workload,
            duration: Duration::from_millis(150),
            ..Config::default()
        };
        for l in pvlock_vmm::run(&config).unwrap().locks {
            assert!(l.acquisitions() > 0, "{workload:?} {}", l.lock.id());
            assert_eq!(l.counted, l.acquisitions());
        }
    }
    // Drain: every round completes and the queue of 3 waiters is timed.
    let config = Config {
        vcpus: 4,
        locks: vec![Lock::QueuedPv, Lock::TicketSpin],
        workload: Workload::Drain,
        rounds: 3,
        duration: Duration::from_secs(5),
        ..Config::default()
    };
    for l in pvlock_vmm::run(&config).unwrap().locks {
        assert_eq!(l.drain_cycles.len(), 3, "{}", l.lock.id());
        assert!(l.drain_cycles.iter().all(|&c| c > 0));
        // One acquisition per vCPU per round.
        assert_eq!(l.acquisitions(), 3 * 4);
    }
}

#[test]
fn a_guest_that_never_finishes_is_an_error_within_the_deadline() {
    if !kvm_here("a_guest_that_never_finishes_is_an_error_within_the_deadline") {
        return;
    }
    let config = Config {
        vcpus: 3,
        locks: vec![Lock::QueuedPv],
        workload: Workload::Hang,
        duration: Duration::from_millis(100),
        grace: Duration::from_millis(300),
        ..Config::default()
    };
    let t = Instant::now();
    let e = pvlock_vmm::run(&config).unwrap_err();
    assert!(matches!(e, Error::Deadline { .. }), "{e}");
    assert!(e.to_string().contains("0 of 3 vCPUs finished"), "{e}");
    // 0.4 s of run and grace, plus the teardown of vCPUs spinning in the guest.
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn a_faulting_guest_is_an_error() {
    if !kvm_here("a_faulting_guest_is_an_error") {
        return;
    }
    let config = Config {
        vcpus: 2,
        locks: vec![Lock::Tas],
        workload: Workload::Fault,
        ..Config::default()
    };
    let t = Instant::now();
    let e = pvlock_vmm::run(&config).unwrap_err();
    assert!(matches!(e, Error::Guest { .. }), "{e}");
    assert!(!e.to_string().contains('\n'));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    println!("fault reported as: {e}");
}
