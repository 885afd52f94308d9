//! The `Auto` backend: futex/park with load control (see [`Auto`]).

use super::Backend;
use crate::registry::Slot;
use crate::sync::AtomicU32;
#[cfg(not(loom))]
use crate::sync::{AtomicUsize, Ordering};

/// `Auto`: the backend to take without thinking. Blocks like [`Futex`](super::Futex) on Linux
/// (like [`Park`](super::Park) elsewhere) and decides how long to spin from facts about the machine.
///
/// # The rule
///
/// Spinning only helps if the thread we wait for is running. With `cpus` the CPUs this process may
/// use ([`std::thread::available_parallelism`]: affinity mask and cgroup CPU quota included), at most
/// `cpus - 1` waiters spin at a time (one CPU is left for the lock holder); each spins for the
/// process-wide [spin budget](crate::budget). A waiter that would exceed that count blocks at once
/// instead of burning a CPU that the holder, or the next in line, needs (load control, as in
/// Malthusian locks and LiTL's spin-then-park). On a single CPU nobody spins.
///
/// Hence: with threads <= CPUs `Auto` behaves like the native spinlock; oversubscribed, surplus
/// waiters sleep in the kernel and the machine keeps doing useful work.
#[derive(Debug, Clone, Copy, Default)]
pub struct Auto;

#[cfg(not(loom))]
static SPINNERS: AtomicUsize = AtomicUsize::new(0);
/// CPUs this process may use (0 = not computed yet).
#[cfg(not(loom))]
static CPUS: AtomicUsize = AtomicUsize::new(0);

/// CPUs this process may use: [`std::thread::available_parallelism`] (affinity mask and cgroup CPU
/// quota included), computed once. Also the steal budget's crowding threshold (steal.rs).
#[cfg(not(loom))]
pub(crate) fn cpus() -> usize {
    match CPUS.load(Ordering::Relaxed) {
        0 => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            // Several threads may compute it at once; they all store the same value.
            CPUS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

/// The most waiters that `Auto` lets spin at once on this machine.
#[cfg(not(loom))]
pub fn max_spinners() -> usize {
    cpus() - 1
}

// SAFETY: `wait` and `kick` are those of Futex (Linux) or Park, which keep the latch contract;
// `spin_start`/`spin_end` only shape the spin phase.
unsafe impl Backend for Auto {
    const BLOCKING: bool = true;
    /// On: `Queued` wakes a blocked successor at hand-over, but only when a further waiter is
    /// queued behind it (a queue of two or more: oversubscribed). Measured with `pvlock bench`
    /// (2 CPUs, median of 5, A/B runs alternated): oversub-8x fairness 0.35-0.44 against
    /// 0.25-0.37 and throughput +3%; native unchanged. An unconditional early wake cost 10-20%
    /// and much fairness with 2 threads (its kick runs inside the critical section).
    const WAKE_NEXT_EARLY: bool = true;
    /// On: crowded, the `Queued` waiter next in line waits runnable for up to 1 ms (yielding)
    /// instead of blocking, so that it takes over as head without a wake-up and a CPU whose
    /// running thread blocks finds it ready; and with no more waiting threads than CPUs, a
    /// `Queued` stealer yields between reads once its backoff saturates, so that CPU hogs of other
    /// processes take turns with the lock's threads instead of being spun against. See the
    /// `Queued` module docs, "Yield-wait" and "Yielding stealers", for the measurements.
    const YIELD_WAIT: bool = true;

    #[cfg(not(loom))]
    #[inline]
    fn spin_start() -> u32 {
        // Relaxed: the count is a heuristic; a stale value only spins a little more or less.
        let before = SPINNERS.fetch_add(1, Ordering::Relaxed);
        if before < max_spinners() {
            crate::budget::iterations()
        } else {
            0
        }
    }

    #[cfg(not(loom))]
    #[inline]
    fn spin_end() {
        SPINNERS.fetch_sub(1, Ordering::Relaxed);
    }

    #[inline]
    fn wait(me: &Slot, ptr: &AtomicU32, val: u32) {
        #[cfg(all(target_os = "linux", not(loom)))]
        super::futex::futex_wait(me, ptr, val);
        #[cfg(not(all(target_os = "linux", not(loom))))]
        super::park::park_wait(me, ptr, val);
    }

    #[inline]
    fn kick(target: &Slot) {
        #[cfg(all(target_os = "linux", not(loom)))]
        super::futex::futex_kick(target);
        #[cfg(not(all(target_os = "linux", not(loom))))]
        super::park::park_kick(target);
    }
}
