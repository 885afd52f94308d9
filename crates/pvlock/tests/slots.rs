//! Slot exhaustion: with every waiter slot held by a parked thread (or all but one or two), the
//! threads that find no slot take the lock without a node (the kernel's `lock_no_node` path).
//! Every acquisition must still be exclusive, totals exact, nothing may panic. A separate test
//! binary, because the slots are process-wide.

#![cfg(not(loom))]

mod common;

use std::sync::mpsc;

use common::{cpus, serial, stress};
use pvlock::backend::{Auto, Backend, Park};
use pvlock::byte::Byte;
use pvlock::queued::Queued;
use pvlock::ticket::Ticket;

#[cfg(target_os = "linux")]
use pvlock::backend::Futex;

/// Threads that each hold a waiter slot until dropped: the process's slots, all taken.
struct Hoarders {
    stops: Vec<mpsc::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hoarders {
    /// Claims slots on parked threads until none is left.
    fn take_all() -> Hoarders {
        let mut h = Hoarders {
            stops: Vec::new(),
            threads: Vec::new(),
        };
        loop {
            let (got_tx, got_rx) = mpsc::channel();
            let (stop_tx, stop_rx) = mpsc::channel::<()>();
            let t = std::thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(move || {
                    // A thread claims its slot the first time it asks for it.
                    got_tx.send(Auto::current().is_some()).unwrap();
                    let _ = stop_rx.recv();
                })
                .expect("spawn a slot-holding thread");
            if !got_rx.recv().unwrap() {
                // This one found the table full: it holds nothing, let it go.
                drop(stop_tx);
                t.join().unwrap();
                return h;
            }
            h.stops.push(stop_tx);
            h.threads.push(t);
            assert!(h.threads.len() <= 4096, "slots never ran out");
        }
    }

    /// Lets `n` hoarders exit: their slots become free.
    fn give_back(&mut self, n: usize) {
        for _ in 0..n {
            drop(self.stops.pop());
            // Joined: its thread-locals, the slot among them, are given back when it exits.
            self.threads.pop().unwrap().join().unwrap();
        }
    }
}

impl Drop for Hoarders {
    fn drop(&mut self) {
        let n = self.threads.len();
        self.give_back(n);
    }
}

fn all_locks(what: &str) {
    let threads = cpus() * 4;
    let total = 20_000;
    let cap = std::time::Duration::from_secs(8);
    let name = |lock: &str| format!("{lock} with {what}");
    #[cfg(target_os = "linux")]
    {
        stress::<Queued<Futex>>(&name("queued-futex"), threads, total, cap);
        stress::<Ticket<Futex>>(&name("ticket-futex"), threads, total, cap);
        stress::<Byte<Futex>>(&name("byte-futex"), threads, total, cap);
    }
    stress::<Queued<Park>>(&name("queued-park"), threads, total, cap);
    stress::<Ticket<Auto>>(&name("ticket-auto"), threads, total, cap);
    stress::<Byte<Auto>>(&name("byte-auto"), threads, total, cap);
    stress::<pvlock::RawMutex>(&name("pvlock"), threads, total, cap);
}

#[test]
fn no_slot_at_all() {
    let _serial = serial();
    let hoarders = Hoarders::take_all();
    // The last hoarder found none, and a fresh thread finds none either.
    let got = std::thread::spawn(|| Auto::current().is_some())
        .join()
        .unwrap();
    assert!(
        !got,
        "{} threads hold slots, yet one was free",
        hoarders.threads.len()
    );
    all_locks("no free slot");
}

#[test]
fn fewer_slots_than_waiters() {
    let _serial = serial();
    let mut hoarders = Hoarders::take_all();
    for free in [1, 1] {
        hoarders.give_back(free);
        all_locks("1 or 2 free slots");
    }
    drop(hoarders);
    // With the table back, a fresh thread gets a slot again.
    let got = std::thread::spawn(|| Park::current().is_some())
        .join()
        .unwrap();
    assert!(got, "no slot after the hoarders exited");
}
