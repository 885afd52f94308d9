//! The pvlock guest: a freestanding x86-64 program whose vCPUs contend on pvlock's `no_std`
//! locks, the way a guest kernel's CPUs contend on its spinlocks. The VMM (crates/pvlock-vmm)
//! starts every vCPU at `_start` with its index; the configuration and the results travel through
//! the mailbox (`abi`). The pv locks wait and kick through [`hypervisor::Hypervisor`].

#![no_std]
#![no_main]

#[allow(dead_code)] // the VMM uses the rest of the contract
#[path = "../../crates/pvlock-vmm/src/abi.rs"]
mod abi;
mod hypervisor;
mod rt;
mod tas;
mod work;

use abi::{lock, workload, Mailbox};
use core::sync::atomic::Ordering::*;
use hypervisor::Hypervisor;
use lock_api::RawMutex;
use pvlock::{byte::Byte, queued::Queued, ticket::Ticket};
use work::{Counter, HashTable, Stats};

/// Every vCPU's entry (from `_start`).
#[no_mangle]
extern "C" fn guest_main(index: u64) -> ! {
    let mb = rt::mailbox();
    assert_eq!(
        mb.magic.load(Acquire),
        abi::MAGIC,
        "mailbox not initialised"
    );
    assert_eq!(index as usize, rt::cpu(), "stack and index disagree");
    match mb.lock.load(Relaxed) {
        lock::QUEUED_PV => start::<Queued<Hypervisor>>(mb),
        lock::QUEUED_SPIN => start::<Queued<pvlock::backend::Spin>>(mb),
        lock::TICKET_PV => start::<Ticket<Hypervisor>>(mb),
        lock::TICKET_SPIN => start::<Ticket<pvlock::backend::Spin>>(mb),
        lock::BYTE_PV => start::<Byte<Hypervisor>>(mb),
        lock::TAS => start::<tas::Tas>(mb),
        lock::SPIN => start::<spin::mutex::SpinMutex<()>>(mb),
        lock::SPIN_TICKET => start::<spin::mutex::TicketMutex<()>>(mb),
        other => panic!("unknown lock id {other}"),
    }
}

/// Boot (vCPU 0 builds the workload), wait for `go`, run, report, finish.
fn start<R: RawMutex + Sync + 'static>(mb: &Mailbox) -> ! {
    let me = rt::cpu();
    let wl = mb.workload.load(Relaxed);
    let buckets = mb.buckets.load(Relaxed) as usize;
    if me == 0 {
        mb.spin_cost.store(spin_cost(), Relaxed);
        mb.exit_cost.store(exit_cost(), Relaxed);
        let spin = mb.spin_iterations.load(Relaxed);
        if spin != 0 {
            pvlock::tuning::set_spin_iterations(spin);
        }
        match wl {
            workload::COUNTER | workload::DRAIN => Counter::<R>::init(),
            workload::HASHTABLE => HashTable::<R>::init(buckets),
            workload::STATS => Stats::<R>::init(),
            _ => {}
        }
    }
    // Release: vCPU 0's initialisation happens before the VMM's `go`, which every vCPU acquires.
    mb.ready.fetch_add(1, Release);
    while mb.go.load(Acquire) == 0 {
        rt::halt_raw();
    }
    let cs = mb.cs.load(Relaxed);
    match wl {
        workload::COUNTER => finish(mb, &Counter::<R>::get(cs), |w| work::run(w, mb)),
        workload::HASHTABLE => finish(mb, &HashTable::<R>::get(buckets), |w| work::run(w, mb)),
        workload::STATS => finish(mb, &Stats::<R>::get(), |w| work::run(w, mb)),
        workload::DRAIN => finish(mb, &Counter::<R>::get(cs), |w| work::drain(w, mb)),
        workload::HANG => loop {
            core::hint::spin_loop();
        },
        workload::FAULT => {
            // SAFETY: deliberately undefined instruction: the VMM must report the fault.
            unsafe { core::arch::asm!("ud2") };
            unreachable!()
        }
        other => panic!("unknown workload id {other}"),
    }
    rt::done()
}

/// TSC cycles per 1,024 iterations of `PAUSE` + load (the lock spin loops' step), best of 5.
fn spin_cost() -> u64 {
    let probe = core::sync::atomic::AtomicU32::new(0);
    (0..5)
        .map(|_| {
            let t = rt::rdtsc();
            for _ in 0..4096 {
                core::hint::spin_loop();
                core::hint::black_box(probe.load(Relaxed));
            }
            rt::rdtsc().wrapping_sub(t) / 4
        })
        .min()
        .unwrap_or(0)
}

/// TSC cycles of the fastest of 64 kick exits to this vCPU itself (the VMM only latches them);
/// the halt after them consumes the latched kick and returns at once.
fn exit_cost() -> u64 {
    let me = rt::cpu();
    let best = (0..64)
        .map(|_| {
            let t = rt::rdtsc();
            rt::kick_raw(me);
            rt::rdtsc().wrapping_sub(t)
        })
        .min()
        .unwrap_or(0);
    rt::halt_raw();
    best
}

/// Runs `body`, then counts this vCPU as finished; the last one records the protected count.
fn finish<W: work::Work>(mb: &Mailbox, w: &W, body: impl FnOnce(&W)) {
    body(w);
    let n = mb.vcpus.load(Relaxed);
    // AcqRel: every vCPU's last critical section happens before the last finisher's count.
    if mb.finished.fetch_add(1, AcqRel) + 1 == n {
        mb.counted.store(w.counted(), Relaxed);
    }
}
