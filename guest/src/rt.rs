//! The guest's runtime: entry point, the hypervisor's ports, the TSC, this vCPU's index, the
//! memory functions `core` needs, and the panic handler.

use crate::abi::{self, Mailbox, VcpuRecord};
use core::arch::{asm, global_asm};
use core::sync::atomic::Ordering::Relaxed;

// The VMM starts every vCPU here with RSP at its stack top (minus `STACK_GAP`, 16-byte aligned)
// and its index in RDI.
global_asm!(
    ".section .text._start, \"ax\"",
    ".globl _start",
    "_start:",
    "    xor ebp, ebp",
    "    call {main}",
    "    ud2",
    main = sym crate::guest_main,
);

/// The mailbox the VMM filled in.
#[inline(always)]
pub fn mailbox() -> &'static Mailbox {
    // SAFETY: the VMM maps guest memory over the whole layout of `abi` and initialises the
    // mailbox (all fields are atomics, valid for any bit pattern) before any vCPU runs.
    unsafe { &*(abi::MAILBOX as *const Mailbox) }
}

/// This vCPU's record in the mailbox.
#[inline(always)]
pub fn record() -> &'static VcpuRecord {
    &mailbox().vcpu[cpu()]
}

/// This vCPU's index, from its stack pointer (each vCPU runs on its own stack; see `abi`).
#[inline(always)]
pub fn cpu() -> usize {
    let sp: u64;
    // SAFETY: reads RSP; no memory access, no flags changed.
    unsafe { asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    ((abi::STACKS_TOP - 1 - sp) / abi::STACK_SIZE) as usize
}

/// The time stamp counter.
#[inline(always)]
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: RDTSC is allowed in user mode (CR4.TSD clear). Not `nomem`: the compiler must not
    // move it across the lock operations it times.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nostack, preserves_flags)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// `out` of a 32-bit value: a VM exit the VMM handles.
#[inline(always)]
fn out32(port: u16, val: u32) {
    // SAFETY: RFLAGS.IOPL is 3, so `out` is allowed in user mode; it exits to the VMM, which
    // completes it. Not `nomem`: the VMM reads guest memory at these exits (results, flags), so
    // the compiler must not move memory accesses across it.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") val, options(nostack, preserves_flags)) };
}

/// Halts this vCPU until it is kicked (returns at once if a kick is latched). Not counted.
#[inline(always)]
pub fn halt_raw() {
    out32(abi::PORT_HALT, 0);
}

/// Kicks vCPU `cpu`. Not counted.
#[inline(always)]
pub fn kick_raw(cpu: usize) {
    out32(abi::PORT_KICK, cpu as u32);
}

/// Adds `n` to a counter that only this vCPU writes (a plain load and store, no RMW).
#[inline(always)]
pub fn add(c: &core::sync::atomic::AtomicU64, n: u64) {
    c.store(c.load(Relaxed) + n, Relaxed);
}

/// Halt exit made by a lock: counted in this vCPU's record.
#[inline]
pub fn halt() {
    let rec = record();
    let t0 = rdtsc();
    halt_raw();
    add(&rec.halt_cycles, rdtsc().wrapping_sub(t0));
    add(&rec.halts, 1);
}

/// Kick exit made by a lock: counted in this vCPU's record.
#[inline]
pub fn kick(cpu: usize) {
    let rec = record();
    let t0 = rdtsc();
    kick_raw(cpu);
    add(&rec.kick_cycles, rdtsc().wrapping_sub(t0));
    add(&rec.kicks, 1);
}

/// Tells the VMM this vCPU is done; never returns.
pub fn done() -> ! {
    loop {
        out32(abi::PORT_DONE, cpu() as u32);
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mb = mailbox();
    if let Some(loc) = info.location() {
        mb.panic_line.store(loc.line(), Relaxed);
        for (dst, b) in mb.panic_file.iter().zip(loc.file().bytes()) {
            dst.store(b, Relaxed);
        }
    }
    loop {
        out32(abi::PORT_PANIC, cpu() as u32);
    }
}

/// The prebuilt `core` refers to it; with `panic = "abort"` nothing unwinds.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// `memcpy` for `core` (no C library here).
///
/// # Safety
/// The C contract: `n` bytes readable at `src`, writable at `dst`, not overlapping.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; `rep movsb` copies RCX bytes from RSI to RDI forwards
    // (DF is clear by the ABI).
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dst
}

/// `memmove` for `core`.
///
/// # Safety
/// The C contract: `n` bytes readable at `src`, writable at `dst`; they may overlap.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize) + n {
        // SAFETY: a forward copy is correct when dst is below src or the ranges are disjoint.
        return unsafe { memcpy(dst, src, n) };
    }
    // SAFETY: the caller's contract; copy backwards (DF set, restored), from the last byte.
    unsafe {
        asm!("std", "rep movsb", "cld",
             inout("rcx") n => _, inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
             options(nostack));
    }
    dst
}

/// `memset` for `core`.
///
/// # Safety
/// The C contract: `n` bytes writable at `dst`.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; `rep stosb` stores AL into RCX bytes from RDI.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c as u8,
             options(nostack, preserves_flags));
    }
    dst
}

/// `memcmp` for `core`.
///
/// # Safety
/// The C contract: `n` bytes readable at both pointers.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n, within the caller's ranges.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// `bcmp` for `core`.
///
/// # Safety
/// The C contract: `n` bytes readable at both pointers.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's contract is memcmp's.
    unsafe { memcmp(a, b, n) }
}
