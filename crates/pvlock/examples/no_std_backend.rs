//! A backend of your own: the wait/kick hooks of a guest kernel, the way a `no_std` OS would plug
//! pvlock's locks into its hypervisor.
//!
//! ```sh
//! cargo run -p pvlock --example no_std_backend
//! ```
//!
//! The backend ([`Hypervisor`]) uses nothing but `core` and three services a guest kernel has:
//! the number of the CPU it runs on, *halt this vCPU until kicked*, and *kick vCPU n*, a
//! hypercall (KVM's `KVM_HC_KICK_CPU`). With pvlock built without its `std` feature
//! (`default-features = false`) this is all a kernel writes; `guest/` in the pvlock repository is
//! such a kernel, run by a small VMM on `/dev/kvm`.
//!
//! So that it runs as an ordinary program, this example stands in for the hypervisor
//! ([`toy_hypervisor`]): each vCPU is a thread, halting parks it and a kick unparks it. Eight vCPUs
//! share the machine's CPUs, so vCPUs that hold or wait for a lock are preempted, as in an
//! overcommitted VM, and the locks' pv paths halt and kick.

use core::sync::atomic::{AtomicU32, Ordering};

use pvlock::backend::{self, Backend, Slot};
use pvlock::{byte::Byte, queued::Queued, ticket::Ticket, RawLock};

/// The hypervisor's side, simulated with threads. A guest kernel has these as its per-CPU
/// variable, `hlt` (or a halt hypercall) and the kick hypercall.
mod toy_hypervisor {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    use std::thread::{self, Thread};

    pub const VCPUS: usize = 8;

    static THREADS: [OnceLock<Thread>; VCPUS] = [const { OnceLock::new() }; VCPUS];
    pub static HALTS: AtomicU64 = AtomicU64::new(0);
    pub static KICKS: AtomicU64 = AtomicU64::new(0);

    thread_local! {
        static CPU: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// Makes the calling thread vCPU `cpu`. Each vCPU number is given to one thread only.
    pub fn become_vcpu(cpu: usize) {
        THREADS[cpu]
            .set(thread::current())
            .expect("each vCPU number is given to one thread");
        CPU.with(|c| c.set(Some(cpu)));
    }

    /// The number of the vCPU we run on.
    pub fn this_cpu() -> usize {
        CPU.with(|c| c.get())
            .expect("only vCPU threads take the locks")
    }

    /// Halts this vCPU until it is kicked. A kick that came before the halt is latched (the
    /// thread's park token): the halt then returns at once. It may also return spuriously.
    pub fn halt() {
        HALTS.fetch_add(1, Ordering::Relaxed);
        thread::park();
    }

    /// Wakes vCPU `cpu`, or latches the kick until its next halt.
    pub fn kick(cpu: usize) {
        KICKS.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = THREADS[cpu].get() {
            t.unpark();
        }
    }
}

/// The guest's backend: wait = halt if the value still matches, kick = the kick hypercall, and a
/// vCPU's waiter slot is the slot with its number (the kernel's per-CPU queue node).
pub struct Hypervisor;

// SAFETY: a kick that arrives before the halt is latched by the hypervisor (the park token; the
// vCPU threads park for nothing else), so a `wait` of slot `s` returns if `kick(s)` came after the
// previous wait returned; `wait` returns at once when `*ptr != val`. Slot `i` is vCPU `i`'s only
// (`current`), and a vCPU waits for one lock at a time.
unsafe impl Backend for Hypervisor {
    const BLOCKING: bool = true;

    fn current() -> Option<&'static Slot> {
        // SAFETY: slot i is used by vCPU i only, and no lock in this program takes a slot from
        // the thread registry (only `Hypervisor` locks are used), so no other thread uses it.
        Some(unsafe { backend::slot(toy_hypervisor::this_cpu()) })
    }

    fn wait(_me: &Slot, ptr: &AtomicU32, val: u32) {
        // A kick that comes between this check and the halt is latched, so it is not lost.
        if ptr.load(Ordering::SeqCst) == val {
            toy_hypervisor::halt();
        }
    }

    fn kick(target: &Slot) {
        toy_hypervisor::kick(target.index());
    }
}

/// A counter that only the holder of a lock touches.
struct Counter(core::cell::UnsafeCell<u64>);
// SAFETY: the counter is only touched with its lock held.
unsafe impl Sync for Counter {}

/// Takes `lock` `rounds` times and adds one to `counter` each time. Every 64th time the holder
/// stops running for 100 µs with the lock held, as a vCPU the host preempts: its waiters spin out
/// their budget (40 µs) and halt until its unlock kicks them.
fn hammer<L: RawLock>(lock: &L, counter: &Counter, rounds: u64) {
    for i in 0..rounds {
        lock.lock();
        // SAFETY: the lock is held, so nobody else touches the counter.
        unsafe { *counter.0.get() += 1 };
        if i % 64 == 0 {
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        // SAFETY: locked just above, by this vCPU.
        unsafe { lock.unlock() };
    }
}

fn main() {
    let rounds = 2_000;
    let queued = Queued::<Hypervisor>::new();
    let ticket = Ticket::<Hypervisor>::new();
    let byte = Byte::<Hypervisor>::new();
    // The raw locks are `lock_api` mutexes too.
    let mutex = pvlock::lock_api::Mutex::<Queued<Hypervisor>, u64>::new(0);
    let counters = [0, 1, 2].map(|_| Counter(core::cell::UnsafeCell::new(0)));
    std::thread::scope(|s| {
        for cpu in 0..toy_hypervisor::VCPUS {
            let (queued, ticket, byte, mutex, counters) =
                (&queued, &ticket, &byte, &mutex, &counters);
            s.spawn(move || {
                toy_hypervisor::become_vcpu(cpu);
                hammer(queued, &counters[0], rounds);
                hammer(ticket, &counters[1], rounds);
                hammer(byte, &counters[2], rounds);
                for _ in 0..rounds {
                    *mutex.lock() += 1;
                }
            });
        }
    });
    let want = rounds * toy_hypervisor::VCPUS as u64;
    for c in counters {
        assert_eq!(c.0.into_inner(), want);
    }
    assert_eq!(mutex.into_inner(), want);
    println!(
        "{} vCPUs took Queued, Ticket, Byte and a Mutex {rounds} times each: {} halts, {} kicks",
        toy_hypervisor::VCPUS,
        toy_hypervisor::HALTS.load(Ordering::Relaxed),
        toy_hypervisor::KICKS.load(Ordering::Relaxed),
    );
}
