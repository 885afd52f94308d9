//! The contract between the VMM and the guest: guest-physical layout, I/O ports and the mailbox.
//!
//! This file is compiled into both sides (the guest includes it with `#[path]`), so it uses only
//! `core`. Guest-physical and guest-virtual addresses are the same (identity-mapped page tables).
//!
//! ```text
//!  0x0000_1000  page tables: PML4, PDPT, PD (2 MiB pages, U/S set at every level)
//!  0x0002_0000  the mailbox (`Mailbox`): configuration, control flags, per-vCPU records
//!  0x0010_0000  the guest ELF image (text, data, bss)
//!  0x0040_0000  vCPU stacks, STACK_SIZE each, vCPU i's top at STACKS_TOP - i * STACK_SIZE
//!  0x0080_0000  the arena: workload data the boot vCPU builds (hash table buckets)
//!  MEMORY_SIZE  end of guest memory
//! ```
//!
//! Ports (all `out`; the guest runs in user mode, where `hlt` faults):
//!
//! | port | data | meaning |
//! |---|---|---|
//! | [`PORT_HALT`] | any | block this vCPU until it is kicked; a kick that came first is latched |
//! | [`PORT_KICK`] | `u32` vCPU index | wake that vCPU (or latch the kick) |
//! | [`PORT_DONE`] | any | this vCPU has finished; its record is final |
//! | [`PORT_PANIC`] | `u32` vCPU index | the guest panicked; see [`Mailbox::panic_line`] |

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8};

/// Halt this vCPU until kicked.
pub const PORT_HALT: u16 = 0x510;
/// Kick the vCPU whose index is the 4-byte data.
pub const PORT_KICK: u16 = 0x511;
/// This vCPU is done.
pub const PORT_DONE: u16 = 0x512;
/// The guest panicked.
pub const PORT_PANIC: u16 = 0x513;

/// Page map level 4.
pub const PML4: u64 = 0x1000;
/// Page directory pointer table.
pub const PDPT: u64 = 0x2000;
/// Page directory (2 MiB pages).
pub const PD: u64 = 0x3000;
/// Where the mailbox lives.
pub const MAILBOX: u64 = 0x2_0000;
/// Lowest address the guest image may use.
pub const IMAGE_BASE: u64 = 0x10_0000;
/// Stacks: vCPU i's stack is `[STACKS_TOP - (i + 1) * STACK_SIZE, STACKS_TOP - i * STACK_SIZE)`.
pub const STACKS_BASE: u64 = 0x40_0000;
/// Bytes of stack per vCPU.
pub const STACK_SIZE: u64 = 0x1_0000;
/// Most vCPUs a VM may have.
pub const MAX_VCPUS: usize = 64;
/// One past the highest stack address.
pub const STACKS_TOP: u64 = STACKS_BASE + MAX_VCPUS as u64 * STACK_SIZE;
/// Initial stack pointer below a vCPU's stack top (keeps the index computation inside the stack).
pub const STACK_GAP: u64 = 64;
/// The workload arena.
pub const ARENA: u64 = 0x80_0000;
/// Bytes in the arena.
pub const ARENA_SIZE: u64 = 0x80_0000;
/// Guest memory size.
pub const MEMORY_SIZE: u64 = ARENA + ARENA_SIZE;

/// `Mailbox::magic` once the VMM has filled in the configuration.
pub const MAGIC: u64 = 0x7076_6c6f_636b_0001;
/// Buckets of the acquire-latency histogram: bucket b counts acquisitions that took
/// `[2^b, 2^(b+1))` TSC cycles (bucket 0 also counts 0 and 1).
pub const HIST_BUCKETS: usize = 40;
/// Most drain rounds recorded.
pub const MAX_ROUNDS: usize = 64;

/// Lock ids, as the guest dispatches on them.
pub mod lock {
    /// `pvlock::queued::Queued<Hypervisor>`: the pvqspinlock.
    pub const QUEUED_PV: u32 = 1;
    /// `pvlock::queued::Queued<Spin>`: the native qspinlock.
    pub const QUEUED_SPIN: u32 = 2;
    /// `pvlock::ticket::Ticket<Hypervisor>`: the pv ticketlock.
    pub const TICKET_PV: u32 = 3;
    /// `pvlock::ticket::Ticket<Spin>`: the plain ticket lock.
    pub const TICKET_SPIN: u32 = 4;
    /// `pvlock::byte::Byte<Hypervisor>`: the Xen byte lock.
    pub const BYTE_PV: u32 = 5;
    /// The kernel's `virt_spin_lock`: test-and-test-and-set, never halts.
    pub const TAS: u32 = 6;
    /// `spin::mutex::SpinMutex`.
    pub const SPIN: u32 = 7;
    /// `spin::mutex::TicketMutex`.
    pub const SPIN_TICKET: u32 = 8;
}

/// Workload ids.
pub mod workload {
    /// One hot lock.
    pub const COUNTER: u32 = 1;
    /// Per-bucket locks of a hash table.
    pub const HASHTABLE: u32 = 2;
    /// Flow statistics under four locks.
    pub const STATS: u32 = 3;
    /// Rounds of: vCPU 0 holds the lock, all others queue, vCPU 0 releases; time to drain.
    pub const DRAIN: u32 = 4;
    /// Never halts nor finishes (tests the VMM's deadline).
    pub const HANG: u32 = 100;
    /// Executes `ud2` (tests the VMM's fault handling).
    pub const FAULT: u32 = 101;
}

/// One vCPU's counters, written only by that vCPU.
#[repr(C, align(128))]
pub struct VcpuRecord {
    /// Lock acquisitions.
    pub acquisitions: AtomicU64,
    /// TSC cycles from calling `lock` to holding the lock, summed.
    pub acquire_cycles: AtomicU64,
    /// Halt exits made while acquiring.
    pub halts: AtomicU64,
    /// TSC cycles spent in halt exits (from before the `out` to after it).
    pub halt_cycles: AtomicU64,
    /// Kick exits made.
    pub kicks: AtomicU64,
    /// TSC cycles spent in kick exits.
    pub kick_cycles: AtomicU64,
    /// TSC cycles from the start signal to seeing the stop flag.
    pub window_cycles: AtomicU64,
    /// Acquire-latency histogram (see [`HIST_BUCKETS`]).
    pub hist: [AtomicU64; HIST_BUCKETS],
}

/// The page the VMM and the guest share.
#[repr(C, align(4096))]
pub struct Mailbox {
    /// [`MAGIC`] when the configuration below is valid.
    pub magic: AtomicU64,
    /// A [`lock`] id.
    pub lock: AtomicU32,
    /// A [`workload`] id.
    pub workload: AtomicU32,
    /// Number of vCPUs.
    pub vcpus: AtomicU32,
    /// Counter workload: volatile writes in the critical section.
    pub cs: AtomicU32,
    /// Mean non-critical work per acquisition, in multiply-adds (uniform 0..=2 ncs).
    pub ncs: AtomicU64,
    /// Hash table buckets.
    pub buckets: AtomicU32,
    /// pvlock's spin budget in iterations; 0 = the library's default.
    pub spin_iterations: AtomicU32,
    /// Drain rounds.
    pub rounds: AtomicU32,
    /// TSC kHz (for the drain workload's settle time).
    pub tsc_khz: AtomicU32,
    /// vCPUs that have booted and wait for `go`.
    pub ready: AtomicU32,
    /// Set by the VMM to start the measured run (it kicks every vCPU too).
    pub go: AtomicU32,
    /// Set by the VMM when the run's time is up.
    pub stop: AtomicU32,
    /// vCPUs that have finished.
    pub finished: AtomicU32,
    /// Acquisitions counted inside the lock-protected data (written by the last vCPU to finish).
    pub counted: AtomicU64,
    /// Drain rounds completed.
    pub drained: AtomicU32,
    /// TSC cycles per 1,024 iterations of a spin loop (`PAUSE` and a load), measured by the
    /// boot vCPU (best of 5): converts latencies to the spin iterations of the seeds.
    pub spin_cost: AtomicU64,
    /// TSC cycles of the fastest of 64 kick exits the boot vCPU makes to itself before the run
    /// (the bare exit round trip, nobody to wake).
    pub exit_cost: AtomicU64,
    /// Line of a guest panic.
    pub panic_line: AtomicU32,
    /// File of a guest panic (NUL-padded).
    pub panic_file: [AtomicU8; 64],
    /// TSC cycles to drain each round.
    pub drain_cycles: [AtomicU64; MAX_ROUNDS],
    /// One record per vCPU.
    pub vcpu: [VcpuRecord; MAX_VCPUS],
}

const _: () = assert!(MAILBOX + core::mem::size_of::<Mailbox>() as u64 <= IMAGE_BASE);
const _: () = assert!(STACKS_TOP <= ARENA);
