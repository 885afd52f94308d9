//! Slot exhaustion: with the waiter registry limited to 0, 1 or 2 slots, threads that find no slot
//! take the lock without a node (the kernel's `lock_no_node` path). Every acquisition must still be
//! exclusive, totals exact, nothing may panic. A separate test binary, because
//! `registry::set_max_slots` changes process-wide state.

#![cfg(not(loom))]

mod common;

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{cpus, serial, watched_with, Rng, STALL};
use pvlock::backend::{Auto, Park};
use pvlock::byte::Byte;
use pvlock::queued::Queued;
use pvlock::registry::{self, MAX_SLOTS};
use pvlock::ticket::Ticket;
use pvlock::RawLock;

#[cfg(target_os = "linux")]
use pvlock::backend::Futex;

/// Gives the process its slots back, also when the test fails.
struct RestoreSlots;

impl Drop for RestoreSlots {
    fn drop(&mut self) {
        registry::set_max_slots(MAX_SLOTS);
    }
}

struct Shared<L> {
    lock: L,
    counter: UnsafeCell<u64>,
    owner: UnsafeCell<usize>,
    violations: AtomicU64,
}

// SAFETY: the cells are only accessed while `lock` is held.
unsafe impl<L: Sync> Sync for Shared<L> {}

impl<L> Shared<L> {
    /// # Safety
    /// The caller holds `lock`.
    unsafe fn critical(&self, id: usize) {
        // SAFETY: the caller holds the lock, so the cells are ours until the unlock; volatile so
        // that a second thread inside would really be seen.
        unsafe {
            if std::ptr::read_volatile(self.owner.get()) != 0 {
                self.violations.fetch_add(1, Ordering::Relaxed);
            }
            std::ptr::write_volatile(self.owner.get(), id + 1);
            *self.counter.get() += 1;
            if std::ptr::read_volatile(self.owner.get()) != id + 1 {
                self.violations.fetch_add(1, Ordering::Relaxed);
            }
            std::ptr::write_volatile(self.owner.get(), 0);
        }
    }
}

fn hammer<L: RawLock + lock_api::RawMutex>(name: &str, threads: usize, per_thread: u64) {
    let s = Shared {
        lock: <L as lock_api::RawMutex>::INIT,
        counter: UnsafeCell::new(0),
        owner: UnsafeCell::new(0),
        violations: AtomicU64::new(0),
    };
    let state = || {
        format!(
            "is_locked={} is_contended={} slots claimed={}",
            RawLock::is_locked(&s.lock),
            RawLock::is_contended(&s.lock),
            registry::claimed()
        )
    };
    watched_with(name, threads, STALL, state, |w| {
        let mut rng = Rng::new(w.id as u64 + 3);
        for i in 0..per_thread {
            if w.stopped() {
                return;
            }
            if i % 8 == 0 {
                while !RawLock::try_lock(&s.lock) {
                    std::thread::yield_now();
                }
            } else {
                RawLock::lock(&s.lock);
            }
            // SAFETY: the lock is held (taken just above).
            unsafe {
                s.critical(w.id);
                RawLock::unlock(&s.lock);
            }
            w.tick();
            rng.think(64);
        }
    });
    assert_eq!(
        s.violations.load(Ordering::Relaxed),
        0,
        "{name}: mutual exclusion violated"
    );
    assert_eq!(
        s.counter.into_inner(),
        per_thread * threads as u64,
        "{name}: lost updates"
    );
    assert!(!RawLock::is_locked(&s.lock), "{name}: left locked");
}

fn all_locks(limit: usize) {
    let threads = cpus() * 4;
    let per = 20_000 / threads as u64;
    let name = |lock: &str| format!("{lock} with {limit} slots, {threads} threads");
    #[cfg(target_os = "linux")]
    {
        hammer::<Queued<Futex>>(&name("queued-futex"), threads, per);
        hammer::<Ticket<Futex>>(&name("ticket-futex"), threads, per);
        hammer::<Byte<Futex>>(&name("byte-futex"), threads, per);
    }
    hammer::<Queued<Park>>(&name("queued-park"), threads, per);
    hammer::<Ticket<Auto>>(&name("ticket-auto"), threads, per);
    hammer::<Byte<Auto>>(&name("byte-auto"), threads, per);
    hammer::<pvlock::RawMutex>(&name("pvlock"), threads, per);
}

#[test]
fn no_slot_at_all() {
    let _serial = serial();
    let _restore = RestoreSlots;
    assert_eq!(registry::set_max_slots(0), 0);
    // A fresh thread really gets no slot, so the locks run their no-node path.
    let got = std::thread::spawn(|| registry::current().is_some())
        .join()
        .expect("probe thread");
    assert!(!got, "set_max_slots(0) still handed out a slot");
    all_locks(0);
}

#[test]
fn fewer_slots_than_waiters() {
    let _serial = serial();
    let _restore = RestoreSlots;
    for limit in [1, 2] {
        assert_eq!(registry::set_max_slots(limit), limit);
        all_locks(limit);
    }
}

#[test]
fn limit_is_clamped_and_restorable() {
    let _serial = serial();
    let _restore = RestoreSlots;
    assert_eq!(registry::set_max_slots(usize::MAX), MAX_SLOTS);
    assert_eq!(registry::set_max_slots(MAX_SLOTS + 1), MAX_SLOTS);
    // With the full table back, a fresh thread gets a slot again.
    let got = std::thread::spawn(|| registry::current().is_some())
        .join()
        .expect("probe thread");
    assert!(got, "no slot after restoring the limit");
}
