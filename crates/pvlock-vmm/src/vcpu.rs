//! vCPU threads: register setup for PVM user mode, the run loop with the halt and kick exits, and
//! the latches that make a kick arriving before its halt count.

use crate::abi;
use crate::memory::GuestMemory;
use kvm_bindings::{kvm_segment, CpuId};
use kvm_ioctls::{VcpuExit, VcpuFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// One vCPU's wake-up latch: KVM's `pv_unhalted` flag plus a way to block on it.
#[derive(Default)]
pub(crate) struct Latch {
    kicked: Mutex<bool>,
    cv: Condvar,
}

impl Latch {
    /// Blocks until kicked (consuming the kick) or until `abort` is set. A kick that came
    /// before returns at once.
    pub(crate) fn wait(&self, abort: &AtomicBool) {
        let mut k = self.kicked.lock().unwrap_or_else(|e| e.into_inner());
        // Acquire: pairs with `Shared::abort`'s Release store, made before it notifies.
        while !*k && !abort.load(Ordering::Acquire) {
            k = self.cv.wait(k).unwrap_or_else(|e| e.into_inner());
        }
        *k = false;
    }

    /// Wakes the waiter, or latches the kick for its next wait.
    pub(crate) fn kick(&self) {
        let mut k = self.kicked.lock().unwrap_or_else(|e| e.into_inner());
        *k = true;
        self.cv.notify_one();
    }

    /// Wakes the waiter without latching (it re-checks the abort flag).
    fn wake(&self) {
        let _k = self.kicked.lock().unwrap_or_else(|e| e.into_inner());
        self.cv.notify_all();
    }
}

/// How a vCPU thread ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exit {
    /// The guest wrote `PORT_DONE`.
    Done,
    /// The run was aborted (deadline, another vCPU's failure, teardown).
    Aborted,
    /// The guest failed: a panic, a fault, an unexpected exit (the message says which).
    Failed(String),
}

/// What all vCPU threads and the VMM share.
pub(crate) struct Shared {
    pub(crate) latches: Vec<Latch>,
    pub(crate) abort: AtomicBool,
    /// Each vCPU's end, once it has ended.
    pub(crate) exits: Mutex<Vec<Option<Exit>>>,
    /// Notified whenever an entry of `exits` is set.
    pub(crate) changed: Condvar,
    pub(crate) memory: Arc<GuestMemory>,
}

impl Shared {
    pub(crate) fn new(vcpus: usize, memory: Arc<GuestMemory>) -> Shared {
        Shared {
            latches: (0..vcpus).map(|_| Latch::default()).collect(),
            abort: AtomicBool::new(false),
            exits: Mutex::new(vec![None; vcpus]),
            changed: Condvar::new(),
            memory,
        }
    }

    /// Tells every vCPU thread to stop: halted ones wake, running ones leave `KVM_RUN` at the
    /// next signal (see [`kick_out`]).
    pub(crate) fn abort(&self) {
        // Release: see `Latch::wait`.
        self.abort.store(true, Ordering::Release);
        for l in &self.latches {
            l.wake();
        }
    }

    fn set_exit(&self, vcpu: usize, exit: Exit) {
        let failed = matches!(exit, Exit::Failed(_));
        self.exits.lock().unwrap_or_else(|e| e.into_inner())[vcpu] = Some(exit);
        self.changed.notify_all();
        if failed {
            self.abort();
        }
    }
}

/// The signal that interrupts `KVM_RUN` (its handler does nothing).
fn kick_signal() -> i32 {
    vmm_sys_util::signal::SIGRTMIN()
}

extern "C" fn on_kick_signal(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs the (empty) handler of the signal that interrupts `KVM_RUN`; process-wide, once.
pub(crate) fn install_signal_handler() -> Result<(), String> {
    static ONCE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick_signal)
            .map_err(|e| format!("cannot install the vCPU signal handler: {e}"))
    })
    .clone()
}

/// Interrupts `KVM_RUN` on the thread `t` (it then sees the abort flag).
pub(crate) fn kick_out(t: libc::pthread_t) {
    // SAFETY: `t` is a thread of ours that has not been joined yet (the caller's invariant);
    // the signal's handler is installed and does nothing.
    unsafe { libc::pthread_kill(t, kick_signal()) };
}

const fn code(selector: u16) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: 11, // execute/read, accessed
        present: 1,
        dpl: 3,
        db: 0,
        s: 1,
        l: 1,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

const fn data(selector: u16) -> kvm_segment {
    kvm_segment {
        type_: 3, // read/write, accessed
        db: 1,
        l: 0,
        ..code(selector)
    }
}

const CR0_PE: u64 = 1;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
/// RFLAGS: the always-one bit and IOPL 3 (so that `out` is allowed in user mode).
const RFLAGS: u64 = 0x2 | 3 << 12;

/// Sets up vCPU `index` for 64-bit user mode at `entry` on its own stack.
///
/// PVM runs guests in hardware ring 3 and ignores the GDT: user mode (CS 0x33, SS/DS 0x2b, DPL 3)
/// runs natively, supervisor mode is emulated and far slower. `hlt` faults in user mode, hence
/// the halt port.
pub(crate) fn setup(vcpu: &VcpuFd, index: usize, entry: u64, cpuid: &CpuId) -> Result<(), String> {
    let mut cpuid = cpuid.clone();
    for e in cpuid.as_mut_slice() {
        match e.function {
            // Initial APIC id in EBX[31:24].
            1 => e.ebx = (e.ebx & 0x00ff_ffff) | ((index as u32) << 24),
            // x2APIC id.
            0xb | 0x1f => e.edx = index as u32,
            _ => {}
        }
    }
    vcpu.set_cpuid2(&cpuid)
        .map_err(|e| format!("KVM_SET_CPUID2: {e}"))?;

    let mut s = vcpu
        .get_sregs()
        .map_err(|e| format!("KVM_GET_SREGS: {e}"))?;
    s.cs = code(0x33);
    s.ds = data(0x2b);
    s.es = data(0x2b);
    s.fs = data(0x2b);
    s.gs = data(0x2b);
    s.ss = data(0x2b);
    s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    s.cr3 = abi::PML4;
    s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    s.efer = EFER_LME | EFER_LMA;
    vcpu.set_sregs(&s)
        .map_err(|e| format!("KVM_SET_SREGS: {e}"))?;

    let mut r = vcpu.get_regs().map_err(|e| format!("KVM_GET_REGS: {e}"))?;
    r.rip = entry;
    r.rsp = abi::STACKS_TOP - index as u64 * abi::STACK_SIZE - abi::STACK_GAP;
    r.rdi = index as u64;
    r.rflags = RFLAGS;
    vcpu.set_regs(&r)
        .map_err(|e| format!("KVM_SET_REGS: {e}"))?;
    Ok(())
}

/// The panic message the guest left in the mailbox.
fn panic_message(memory: &GuestMemory) -> String {
    let mb = memory.mailbox();
    let file: Vec<u8> = mb
        .panic_file
        .iter()
        .map(|b| b.load(Ordering::Relaxed))
        .take_while(|&b| b != 0)
        .collect();
    format!(
        "guest panicked at {}:{}",
        String::from_utf8_lossy(&file),
        mb.panic_line.load(Ordering::Relaxed)
    )
}

/// Where the vCPU is (for fault messages).
fn rip(vcpu: &VcpuFd) -> String {
    vcpu.get_regs()
        .map(|r| format!(" at rip {:#x}", r.rip))
        .unwrap_or_default()
}

/// Runs vCPU `index` until the guest is done, fails, or the run is aborted.
pub(crate) fn run(mut vcpu: VcpuFd, index: usize, shared: &Shared) {
    let exit = run_loop(&mut vcpu, index, shared);
    shared.set_exit(index, exit);
}

fn run_loop(vcpu: &mut VcpuFd, index: usize, shared: &Shared) -> Exit {
    let n = shared.latches.len();
    loop {
        // Acquire: pairs with `Shared::abort`.
        if shared.abort.load(Ordering::Acquire) {
            return Exit::Aborted;
        }
        let failure = match vcpu.run() {
            Ok(VcpuExit::IoOut(abi::PORT_HALT, _)) => {
                shared.latches[index].wait(&shared.abort);
                continue;
            }
            Ok(VcpuExit::IoOut(abi::PORT_KICK, d)) => {
                let target = d
                    .get(..4)
                    .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
                match target {
                    Some(t) if t < n => {
                        shared.latches[t].kick();
                        continue;
                    }
                    _ => format!("kick of a vCPU that does not exist ({d:?})"),
                }
            }
            Ok(VcpuExit::IoOut(abi::PORT_DONE, _)) => return Exit::Done,
            Ok(VcpuExit::IoOut(abi::PORT_PANIC, _)) => panic_message(&shared.memory),
            Ok(VcpuExit::IoOut(port, _)) => format!("write to unknown port {port:#x}"),
            Ok(VcpuExit::IoIn(port, _)) => format!("read of unknown port {port:#x}"),
            Ok(VcpuExit::MmioRead(addr, _)) | Ok(VcpuExit::MmioWrite(addr, _)) => {
                format!("access to unmapped guest-physical address {addr:#x}")
            }
            Ok(VcpuExit::Shutdown) => format!(
                "guest fault: the vCPU shut down (an exception with no handler){}",
                rip(vcpu)
            ),
            Ok(VcpuExit::InternalError) => format!("KVM internal error{}", rip(vcpu)),
            Ok(VcpuExit::FailEntry(reason, _)) => format!("KVM entry failed (reason {reason:#x})"),
            Ok(VcpuExit::Intr) => continue,
            Ok(other) => {
                let what = format!("{other:?}");
                format!("unexpected exit {what}{}", rip(vcpu))
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
            Err(e) => format!("KVM_RUN failed: {e}"),
        };
        return Exit::Failed(format!("vCPU {index}: {failure}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_kick_before_the_wait_is_latched() {
        let l = Latch::default();
        let abort = AtomicBool::new(false);
        l.kick();
        let t = Instant::now();
        l.wait(&abort);
        assert!(t.elapsed() < Duration::from_secs(5));
        // The latch was consumed: a second wait blocks until the next kick.
        std::thread::scope(|s| {
            let h = s.spawn(|| l.wait(&abort));
            std::thread::sleep(Duration::from_millis(20));
            assert!(!h.is_finished(), "the kick was consumed by the first wait");
            l.kick();
            h.join().unwrap();
        });
    }

    #[test]
    fn abort_wakes_a_waiter() {
        let memory = Arc::new(GuestMemory::new(1 << 20).unwrap());
        let shared = Shared::new(2, memory);
        std::thread::scope(|s| {
            let h = s.spawn(|| shared.latches[1].wait(&shared.abort));
            std::thread::sleep(Duration::from_millis(20));
            assert!(!h.is_finished());
            shared.abort();
            h.join().unwrap();
        });
    }

    #[test]
    fn a_failed_vcpu_aborts_the_others() {
        let memory = Arc::new(GuestMemory::new(1 << 20).unwrap());
        let shared = Shared::new(2, memory);
        shared.set_exit(0, Exit::Failed("x".into()));
        assert!(shared.abort.load(Ordering::Acquire));
        shared.set_exit(1, Exit::Done);
        let exits = shared.exits.lock().unwrap();
        assert_eq!(exits[1], Some(Exit::Done));
    }

    #[test]
    fn segments_are_user_mode_long_mode() {
        let c = code(0x33);
        assert_eq!((c.dpl, c.l, c.db, c.s, c.present), (3, 1, 0, 1, 1));
        let d = data(0x2b);
        assert_eq!((d.dpl, d.l, d.db, d.type_), (3, 0, 1, 3));
        assert_eq!(RFLAGS >> 12 & 3, 3, "IOPL 3");
    }
}
