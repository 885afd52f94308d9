//! # pvlock-vmm: pvlock's locks as a guest kernel's spinlocks, on `/dev/kvm`
//!
//! A small VMM on the rust-vmm crates. It runs a freestanding guest (`guest/` in this repository,
//! embedded in this crate at build time) on N vCPUs, one host thread each, whose vCPUs contend on
//! pvlock's `no_std` locks the way a guest kernel's CPUs contend on its spinlocks. The pv locks'
//! backend (`guest/src/hypervisor.rs`) waits by halting the vCPU and kicks by naming a vCPU, both
//! real VM exits that this VMM handles:
//!
//! * **halt** (`out` to [`abi::PORT_HALT`]): the vCPU's thread blocks until the vCPU is kicked;
//!   a kick that arrived first is latched (KVM's `pv_unhalted`), so the halt returns at once.
//! * **kick** (`out` to [`abi::PORT_KICK`] with a vCPU index): wakes that vCPU.
//!
//! With more vCPUs than host CPUs the host scheduler preempts lock holders and waiters for real.
//! The guest has no timer: after [`Config::duration`] the VMM sets a stop flag in guest memory,
//! each vCPU stops after its current acquisition and reports its counters through the mailbox.
//!
//! Each lock runs in a VM of its own. Everything is torn down on every path; a guest fault, a
//! panic, or a guest still running [`Config::grace`] after the stop flag is an [`Error`], never
//! a hang.
//!
//! ```no_run
//! let config = pvlock_vmm::Config {
//!     vcpus: 8,
//!     locks: vec![pvlock_vmm::Lock::QueuedPv, pvlock_vmm::Lock::TicketSpin],
//!     ..Default::default()
//! };
//! match pvlock_vmm::run(&config) {
//!     Ok(report) => print!("{}", pvlock_vmm::render_table(&report)),
//!     Err(e) if e.is_unavailable() => eprintln!("no usable /dev/kvm: {e}"),
//!     Err(e) => panic!("{e}"),
//! }
//! ```
//!
//! The guest is x86-64 only and runs in user mode (CS 0x33, IOPL 3), which works under KVM's PVM
//! module (guests in hardware ring 3) as under VMX or SVM.

#![warn(missing_docs)]

pub mod abi;
mod memory;
mod report;
mod vcpu;

pub use report::{render_table, LockReport, Report, VcpuStats};

use memory::GuestMemory;
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vcpu::{Exit, Shared};

/// The guest ELF, built from `guest/` by this crate's build script.
pub(crate) static GUEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pvlock-guest.elf"));

/// The locks the guest can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lock {
    /// `pvlock::queued::Queued` with the hypervisor backend: the pvqspinlock (Linux 4.2).
    QueuedPv,
    /// `pvlock::queued::Queued<Spin>`: the native qspinlock.
    QueuedSpin,
    /// `pvlock::ticket::Ticket` with the hypervisor backend: the pv ticketlock (Linux 3.12).
    TicketPv,
    /// `pvlock::ticket::Ticket<Spin>`: the plain ticket lock.
    TicketSpin,
    /// `pvlock::byte::Byte` with the hypervisor backend: the Xen byte lock (2008).
    BytePv,
    /// Test-and-test-and-set, never halts: the kernel's `virt_spin_lock`, what a Linux guest
    /// uses when the host offers no PV_UNHALT.
    Tas,
    /// The `spin` crate's `SpinMutex`.
    Spin,
    /// The `spin` crate's `TicketMutex`.
    SpinTicket,
}

impl Lock {
    /// Every lock, pvlock's first.
    pub const ALL: [Lock; 8] = [
        Lock::QueuedPv,
        Lock::QueuedSpin,
        Lock::TicketPv,
        Lock::TicketSpin,
        Lock::BytePv,
        Lock::Tas,
        Lock::Spin,
        Lock::SpinTicket,
    ];

    /// The lock's id, as on a command line.
    pub const fn id(self) -> &'static str {
        match self {
            Lock::QueuedPv => "queued-pv",
            Lock::QueuedSpin => "queued-spin",
            Lock::TicketPv => "ticket-pv",
            Lock::TicketSpin => "ticket-spin",
            Lock::BytePv => "byte-pv",
            Lock::Tas => "tas",
            Lock::Spin => "spin",
            Lock::SpinTicket => "spin-ticket",
        }
    }

    /// Whether the lock halts and kicks (uses the hypervisor backend).
    pub const fn is_pv(self) -> bool {
        matches!(self, Lock::QueuedPv | Lock::TicketPv | Lock::BytePv)
    }

    const fn abi(self) -> u32 {
        match self {
            Lock::QueuedPv => abi::lock::QUEUED_PV,
            Lock::QueuedSpin => abi::lock::QUEUED_SPIN,
            Lock::TicketPv => abi::lock::TICKET_PV,
            Lock::TicketSpin => abi::lock::TICKET_SPIN,
            Lock::BytePv => abi::lock::BYTE_PV,
            Lock::Tas => abi::lock::TAS,
            Lock::Spin => abi::lock::SPIN,
            Lock::SpinTicket => abi::lock::SPIN_TICKET,
        }
    }
}

impl std::str::FromStr for Lock {
    type Err = Error;
    fn from_str(s: &str) -> Result<Lock, Error> {
        Lock::ALL.into_iter().find(|l| l.id() == s).ok_or_else(|| {
            let ids: Vec<&str> = Lock::ALL.iter().map(|l| l.id()).collect();
            Error::Config(format!("unknown lock {s:?}; locks: {}", ids.join(", ")))
        })
    }
}

/// What the vCPUs do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Workload {
    /// One hot lock over two cache lines; `cs` volatile writes inside (the bench's `counter`).
    Counter,
    /// `buckets` buckets with a lock each, 90% lookups, random keys (the bench's `hashtable`).
    HashTable,
    /// Four flow-statistics records under their own locks, half the updates to one hot flow.
    Stats,
    /// Rounds of: vCPU 0 holds the lock until every other vCPU waits for it, then releases it;
    /// measures the time until the last waiter has had the lock ([`LockReport::drain_cycles`]).
    Drain,
    /// A guest that never halts nor finishes (exercises the VMM's deadline).
    #[doc(hidden)]
    Hang,
    /// A guest that executes an undefined instruction (exercises the VMM's fault handling).
    #[doc(hidden)]
    Fault,
}

impl Workload {
    /// The workloads a user picks from (not the VMM's self-tests).
    pub const ALL: [Workload; 4] = [
        Workload::Counter,
        Workload::HashTable,
        Workload::Stats,
        Workload::Drain,
    ];

    /// The workload's id.
    pub const fn id(self) -> &'static str {
        match self {
            Workload::Counter => "counter",
            Workload::HashTable => "hashtable",
            Workload::Stats => "stats",
            Workload::Drain => "drain",
            Workload::Hang => "hang",
            Workload::Fault => "fault",
        }
    }

    const fn abi(self) -> u32 {
        match self {
            Workload::Counter => abi::workload::COUNTER,
            Workload::HashTable => abi::workload::HASHTABLE,
            Workload::Stats => abi::workload::STATS,
            Workload::Drain => abi::workload::DRAIN,
            Workload::Hang => abi::workload::HANG,
            Workload::Fault => abi::workload::FAULT,
        }
    }
}

impl std::str::FromStr for Workload {
    type Err = Error;
    fn from_str(s: &str) -> Result<Workload, Error> {
        Workload::ALL
            .into_iter()
            .find(|w| w.id() == s)
            .ok_or_else(|| {
                let ids: Vec<&str> = Workload::ALL.iter().map(|w| w.id()).collect();
                Error::Config(format!(
                    "unknown workload {s:?}; workloads: {}",
                    ids.join(", ")
                ))
            })
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// vCPUs of each VM (1 to [`abi::MAX_VCPUS`]).
    pub vcpus: usize,
    /// The locks, one VM each, in this order.
    pub locks: Vec<Lock>,
    /// What the vCPUs do.
    pub workload: Workload,
    /// Measured time per lock.
    pub duration: Duration,
    /// Counter workload: volatile writes inside the critical section (default 20, as the bench).
    pub cs: u32,
    /// Mean non-critical work per acquisition in multiply-adds, uniform 0..=2 ncs (default 100).
    pub ncs: u64,
    /// Hash table buckets (default 64).
    pub buckets: u32,
    /// Drain workload: rounds (at most [`abi::MAX_ROUNDS`], default 10).
    pub rounds: u32,
    /// pvlock's spin budget in iterations before a waiter halts; `None` keeps the library's
    /// `no_std` default (4096, see `pvlock::tuning::set_spin_iterations`).
    pub spin_iterations: Option<u32>,
    /// How long after the stop flag the guest may take to finish before the run is an error
    /// (default 10 s: a stalling lock drains slowly).
    pub grace: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            vcpus: 2,
            locks: Lock::ALL.to_vec(),
            workload: Workload::Counter,
            duration: Duration::from_secs(1),
            cs: 20,
            ncs: 100,
            buckets: 64,
            rounds: 10,
            spin_iterations: None,
            grace: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// Checks the values; the error says which is wrong.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Config(m));
        if self.vcpus == 0 || self.vcpus > abi::MAX_VCPUS {
            return bad(format!(
                "vcpus must be 1..={}, not {}",
                abi::MAX_VCPUS,
                self.vcpus
            ));
        }
        if self.workload == Workload::Drain && self.vcpus < 2 {
            return bad("the drain workload needs at least 2 vCPUs".into());
        }
        if self.locks.is_empty() {
            return bad("no locks given".into());
        }
        if self.duration.is_zero() || self.duration > Duration::from_secs(3600) {
            return bad(format!(
                "duration must be > 0 and at most 1 h, not {:?}",
                self.duration
            ));
        }
        let max_buckets = (abi::ARENA_SIZE / 256) as u32;
        if self.buckets == 0 || self.buckets > max_buckets {
            return bad(format!(
                "buckets must be 1..={max_buckets}, not {}",
                self.buckets
            ));
        }
        if self.rounds == 0 || self.rounds as usize > abi::MAX_ROUNDS {
            return bad(format!(
                "rounds must be 1..={}, not {}",
                abi::MAX_ROUNDS,
                self.rounds
            ));
        }
        if self.cs > 1_000_000 || self.ncs > 100_000_000 {
            return bad("cs must be at most 1000000 and ncs at most 100000000".into());
        }
        if self.spin_iterations == Some(0) {
            return bad("spin_iterations must be at least 1 (None for the default)".into());
        }
        Ok(())
    }
}

/// Why a run failed. Each displays as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range.
    Config(String),
    /// `/dev/kvm` does not exist.
    NoKvm,
    /// `/dev/kvm` exists but cannot be used (permissions, or KVM refuses the VM).
    KvmUnusable(String),
    /// A KVM or host call failed while setting up or running the VM.
    Host(String),
    /// The guest failed: a panic, a fault, an unexpected exit.
    Guest {
        /// The lock that was running.
        lock: Lock,
        /// What happened.
        what: String,
    },
    /// The guest did not finish in time.
    Deadline {
        /// The lock that was running.
        lock: Lock,
        /// What it did not finish in time.
        what: String,
    },
    /// A lock let two vCPUs in: the protected count differs from the acquisitions.
    Exclusion {
        /// The lock.
        lock: Lock,
        /// The vCPUs' acquisitions.
        acquisitions: u64,
        /// The count inside the protected data.
        counted: u64,
    },
}

impl Error {
    /// Whether the error means "no usable KVM here" (tests skip, a CLI says so).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::NoKvm | Error::KvmUnusable(_))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(m) => write!(f, "{m}"),
            Error::NoKvm => write!(f, "/dev/kvm does not exist (no KVM on this machine)"),
            Error::KvmUnusable(m) => write!(f, "/dev/kvm cannot be used: {m}"),
            Error::Host(m) => write!(f, "{m}"),
            Error::Guest { lock, what } => write!(f, "guest ({}): {what}", lock.id()),
            Error::Deadline { lock, what } => write!(f, "guest ({}): {what}", lock.id()),
            Error::Exclusion {
                lock,
                acquisitions,
                counted,
            } => write!(
                f,
                "{}: mutual exclusion failed: {acquisitions} acquisitions but {counted} counted \
                 inside the lock",
                lock.id()
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Opens `/dev/kvm` and creates a VM, to tell whether this machine can run the guest lab.
pub fn available() -> Result<(), Error> {
    let kvm = open_kvm()?;
    kvm.create_vm()
        .map(drop)
        .map_err(|e| Error::KvmUnusable(format!("KVM_CREATE_VM: {e}")))
}

fn open_kvm() -> Result<kvm_ioctls::Kvm, Error> {
    kvm_ioctls::Kvm::new().map_err(|e| match e.errno() {
        libc::ENOENT | libc::ENXIO | libc::ENODEV => Error::NoKvm,
        _ => Error::KvmUnusable(format!("open: {e}")),
    })
}

/// Runs every lock of `config`, one VM each, and returns what they measured.
pub fn run(config: &Config) -> Result<Report, Error> {
    config.validate()?;
    let mut locks = Vec::with_capacity(config.locks.len());
    for &lock in &config.locks {
        locks.push(run_lock(config, lock)?);
    }
    Ok(Report {
        config: config.clone(),
        locks,
    })
}

/// The host's TSC frequency (the guest's TSC runs at the host's), in kHz.
fn tsc_khz(vcpu: &kvm_ioctls::VcpuFd) -> u32 {
    if let Ok(khz) = vcpu.get_tsc_khz() {
        if khz > 0 {
            return khz;
        }
    }
    // Measure: TSC ticks over 20 ms of the monotonic clock.
    // SAFETY: RDTSC has no preconditions on x86-64.
    let (t0, c0) = (Instant::now(), unsafe { core::arch::x86_64::_rdtsc() });
    std::thread::sleep(Duration::from_millis(20));
    // SAFETY: as above.
    let c1 = unsafe { core::arch::x86_64::_rdtsc() };
    (c1.wrapping_sub(c0) as f64 / t0.elapsed().as_secs_f64() / 1000.0) as u32
}

/// The vCPU threads of one VM; dropping it aborts and joins them (teardown on every path).
struct Vcpus {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Vcpus {
    /// Waits until every vCPU has ended or `until`; `Err` with the first failure.
    fn wait(
        &self,
        until: Instant,
        mut done: impl FnMut(&[Option<Exit>]) -> bool,
    ) -> Result<bool, String> {
        let mut exits = self.shared.exits.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(Exit::Failed(m)) = exits
                .iter()
                .flatten()
                .find(|e| matches!(e, Exit::Failed(_)))
            {
                return Err(m.clone());
            }
            if done(&exits) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(false);
            }
            exits = self
                .shared
                .changed
                .wait_timeout(exits, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn finished(&self) -> usize {
        let exits = self.shared.exits.lock().unwrap_or_else(|e| e.into_inner());
        exits
            .iter()
            .filter(|e| matches!(e, Some(Exit::Done)))
            .count()
    }
}

impl Drop for Vcpus {
    fn drop(&mut self) {
        self.shared.abort();
        // A thread inside KVM_RUN leaves it at a signal; one that misses a signal (between its
        // abort check and KVM_RUN) gets the next. Give up on a thread after 5 s: it keeps its
        // own references (memory, VM), so leaving it behind is safe.
        let give_up = Instant::now() + Duration::from_secs(5);
        for t in std::mem::take(&mut self.threads) {
            while !t.is_finished() && Instant::now() < give_up {
                vcpu::kick_out(t.as_pthread_t());
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// One lock in one VM.
fn run_lock(config: &Config, lock: Lock) -> Result<LockReport, Error> {
    let n = config.vcpus;
    let host = |what: &str, e: &dyn std::fmt::Display| Error::Host(format!("{what}: {e}"));
    let guest = |what: String| Error::Guest { lock, what };
    vcpu::install_signal_handler().map_err(Error::Host)?;

    let kvm = open_kvm()?;
    let vm = kvm
        .create_vm()
        .map_err(|e| Error::KvmUnusable(format!("KVM_CREATE_VM: {e}")))?;
    let mut mem =
        GuestMemory::new(abi::MEMORY_SIZE as usize).map_err(|e| host("mmap guest memory", &e))?;
    let entry = memory::load_elf(&mut mem, GUEST)
        .map_err(|e| guest(format!("bad guest image: {}", e.0)))?;
    mem.write_page_tables();
    let region = kvm_bindings::kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: mem.len() as u64,
        userspace_addr: mem.host_addr(),
    };
    // SAFETY: the region is our mapping, which outlives the VM: `mem` is shared (Arc) with the
    // vCPU threads, which hold it until they end, and the VM fd is dropped after them.
    unsafe { vm.set_user_memory_region(region) }
        .map_err(|e| host("KVM_SET_USER_MEMORY_REGION", &e))?;
    let cpuid = kvm
        .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| host("KVM_GET_SUPPORTED_CPUID", &e))?;

    let mut fds = Vec::with_capacity(n);
    for i in 0..n {
        let fd = vm
            .create_vcpu(i as u64)
            .map_err(|e| host(&format!("KVM_CREATE_VCPU {i}"), &e))?;
        vcpu::setup(&fd, i, entry, &cpuid).map_err(|e| Error::Host(format!("vCPU {i}: {e}")))?;
        fds.push(fd);
    }
    let tsc_khz = tsc_khz(&fds[0]);

    let mb = mem.mailbox();
    mb.lock.store(lock.abi(), Ordering::Relaxed);
    mb.workload.store(config.workload.abi(), Ordering::Relaxed);
    mb.vcpus.store(n as u32, Ordering::Relaxed);
    mb.cs.store(config.cs, Ordering::Relaxed);
    mb.ncs.store(config.ncs, Ordering::Relaxed);
    mb.buckets.store(config.buckets, Ordering::Relaxed);
    mb.spin_iterations
        .store(config.spin_iterations.unwrap_or(0), Ordering::Relaxed);
    mb.rounds.store(config.rounds, Ordering::Relaxed);
    mb.tsc_khz.store(tsc_khz, Ordering::Relaxed);
    // Release: the configuration above happens before the guest's acquiring read of MAGIC
    // (the vCPU threads start after this, which orders it anyway).
    mb.magic.store(abi::MAGIC, Ordering::Release);

    let mem = Arc::new(mem);
    let shared = Arc::new(Shared::new(n, Arc::clone(&mem)));
    let mut vcpus = Vcpus {
        shared: Arc::clone(&shared),
        threads: Vec::with_capacity(n),
    };
    for (i, fd) in fds.into_iter().enumerate() {
        let s = Arc::clone(&shared);
        let t = std::thread::Builder::new()
            .name(format!("pvlock-vcpu-{i}"))
            .stack_size(256 << 10)
            .spawn(move || vcpu::run(fd, i, &s))
            .map_err(|e| host("spawn a vCPU thread", &e))?;
        vcpus.threads.push(t);
    }
    let mb = mem.mailbox();

    // Boot: every vCPU reports ready (vCPU 0 after building the workload), then halts.
    let boot_until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Err(m) = vcpus.wait(Instant::now() + Duration::from_millis(1), |_| false) {
            return Err(guest(m));
        }
        if mb.ready.load(Ordering::Acquire) as usize == n {
            break;
        }
        if Instant::now() >= boot_until {
            return Err(Error::Deadline {
                lock,
                what: format!(
                    "only {} of {n} vCPUs booted within 10 s",
                    mb.ready.load(Ordering::Relaxed)
                ),
            });
        }
    }

    // Release: pairs with the guest's acquiring read of `go`.
    mb.go.store(1, Ordering::Release);
    let t0 = Instant::now();
    for l in &shared.latches {
        l.kick();
    }
    let all_done = |e: &[Option<Exit>]| e.iter().all(|x| x.is_some());
    let early = vcpus.wait(t0 + config.duration, all_done).map_err(guest)?;
    mb.stop.store(1, Ordering::Release);
    if !early {
        let deadline = Instant::now() + config.grace;
        if !vcpus.wait(deadline, all_done).map_err(guest)? {
            return Err(Error::Deadline {
                lock,
                what: format!(
                    "{} of {n} vCPUs finished within {:?} after the stop flag",
                    vcpus.finished(),
                    config.grace
                ),
            });
        }
    }
    let wall = t0.elapsed();
    if vcpus.finished() != n {
        return Err(guest("a vCPU ended without finishing".into()));
    }
    drop(vcpus);
    drop(vm);

    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Acquire);
    let mut hist = [0u64; abi::HIST_BUCKETS];
    let stats: Vec<VcpuStats> = mb.vcpu[..n]
        .iter()
        .map(|r| {
            for (h, x) in hist.iter_mut().zip(&r.hist) {
                *h += get(x);
            }
            let (acquire, halt) = (get(&r.acquire_cycles), get(&r.halt_cycles));
            VcpuStats {
                acquisitions: get(&r.acquisitions),
                acquire_cycles: acquire,
                spin_cycles: acquire.saturating_sub(halt),
                halts: get(&r.halts),
                halt_cycles: halt,
                kicks: get(&r.kicks),
                kick_cycles: get(&r.kick_cycles),
                window_cycles: get(&r.window_cycles),
            }
        })
        .collect();
    let drained = (mb.drained.load(Ordering::Acquire) as usize).min(abi::MAX_ROUNDS);
    let report = LockReport {
        lock,
        wall,
        counted: get(&mb.counted),
        vcpus: stats,
        hist,
        drain_cycles: mb.drain_cycles[..drained].iter().map(get).collect(),
        tsc_khz,
        spin_cost_1k: get(&mb.spin_cost),
        exit_cycles: get(&mb.exit_cost),
    };
    if report.counted != report.acquisitions() {
        return Err(Error::Exclusion {
            lock,
            acquisitions: report.acquisitions(),
            counted: report.counted,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for l in Lock::ALL {
            assert_eq!(l.id().parse::<Lock>(), Ok(l));
        }
        for w in Workload::ALL {
            assert_eq!(w.id().parse::<Workload>(), Ok(w));
        }
        let e = "nope".parse::<Lock>().unwrap_err().to_string();
        assert!(e.contains("queued-pv") && !e.contains('\n'), "{e}");
        assert!(
            "hang".parse::<Workload>().is_err(),
            "self-tests are not offered"
        );
    }

    #[test]
    fn validation_names_the_bad_value() {
        assert_eq!(Config::default().validate(), Ok(()));
        let bad = [
            Config {
                vcpus: 0,
                ..Config::default()
            },
            Config {
                vcpus: abi::MAX_VCPUS + 1,
                ..Config::default()
            },
            Config {
                locks: vec![],
                ..Config::default()
            },
            Config {
                duration: Duration::ZERO,
                ..Config::default()
            },
            Config {
                buckets: 0,
                ..Config::default()
            },
            Config {
                rounds: 0,
                ..Config::default()
            },
            Config {
                spin_iterations: Some(0),
                ..Config::default()
            },
            Config {
                workload: Workload::Drain,
                vcpus: 1,
                ..Config::default()
            },
        ];
        for c in bad {
            let e = c.validate().unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{c:?}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn unavailability_is_told_apart() {
        assert!(Error::NoKvm.is_unavailable());
        assert!(Error::KvmUnusable("EACCES".into()).is_unavailable());
        assert!(!Error::Host("x".into()).is_unavailable());
    }
}
