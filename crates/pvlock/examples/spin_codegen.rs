//! Shows that with the `Spin` backend every paravirt branch compiles away: `Ticket<Spin>` against
//! a plain ticket lock written without the backend trait, same word layout, and `Queued<Spin>`'s
//! fast paths against a plain lock with the same word operations (CAS 0 -> 1, `fetch_sub(1)`).
//!
//! ```sh
//! cargo run --release -p pvlock --example spin_codegen      # ns per uncontended lock+unlock
//! valgrind --tool=callgrind target/release/examples/spin_codegen 2>&1 | grep refs  # instructions
//! ```
//! Inspect the code with `cargo rustc --release -p pvlock --example spin_codegen -- --emit asm`
//! and compare `pv_ticket_cycle` with `plain_ticket_cycle`, `queued_spin_cycle` with
//! `plain_cas_cycle`. `scripts/check-spin-codegen` (run by CI) does so: the `Spin` functions
//! may hold no thread-local access, no call but the slow path and no locked instruction the
//! plain lock lacks, and the `Futex` functions must fail that test.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use pvlock::backend::{Futex, Spin};
use pvlock::queued::Queued;
use pvlock::ticket::Ticket;

/// The same 15-bit ticket lock as `Ticket`, written by hand with no backend and no pv path.
struct PlainTicket(AtomicU32);

impl PlainTicket {
    #[inline]
    fn lock(&self) {
        let old = self.0.fetch_add(1 << 17, Ordering::Acquire);
        let mine = old >> 17;
        while (self.0.load(Ordering::Acquire) >> 1) & 0x7FFF != mine {
            std::hint::spin_loop();
        }
    }
    #[inline]
    fn unlock(&self) {
        let w = self.0.load(Ordering::Relaxed);
        if (w >> 1) & 0x7FFF == 0x7FFF {
            self.0.fetch_sub(0x7FFF << 1, Ordering::Release);
        } else {
            self.0.fetch_add(2, Ordering::Release);
        }
    }
}

/// `Queued`'s uncontended word operations, by hand: CAS 0 -> 1, then `fetch_sub(1)`.
struct PlainCas(AtomicU32);

impl PlainCas {
    #[inline]
    fn lock(&self) {
        while self
            .0
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
    }
    #[inline]
    fn unlock(&self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

#[inline(never)]
fn plain_cas_cycle(l: &PlainCas) {
    l.lock();
    l.unlock();
}

#[inline(never)]
fn queued_spin_cycle(l: &Queued<Spin>) {
    l.lock();
    // SAFETY: locked just above.
    unsafe { l.unlock() };
}

#[inline(never)]
fn queued_futex_cycle(l: &Queued<Futex>) {
    l.lock();
    // SAFETY: locked just above.
    unsafe { l.unlock() };
}

#[inline(never)]
fn plain_ticket_cycle(l: &PlainTicket) {
    l.lock();
    l.unlock();
}

#[inline(never)]
fn pv_ticket_cycle(l: &Ticket<Spin>) {
    l.lock();
    // SAFETY: locked just above.
    unsafe { l.unlock() };
}

#[inline(never)]
fn futex_ticket_cycle(l: &Ticket<Futex>) {
    l.lock();
    // SAFETY: locked just above.
    unsafe { l.unlock() };
}

fn time(name: &str, n: u32, mut f: impl FnMut()) {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    println!("{name:<28} {best:6.2} ns per lock+unlock (best of 5)");
}

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let plain = PlainTicket(AtomicU32::new(0));
    let spin = Ticket::<Spin>::new();
    let futex = Ticket::<Futex>::new();
    time("plain ticket (no trait)", n, || {
        plain_ticket_cycle(black_box(&plain))
    });
    time("Ticket<Spin>", n, || pv_ticket_cycle(black_box(&spin)));
    time("Ticket<Futex> (pv unlock)", n, || {
        futex_ticket_cycle(black_box(&futex))
    });
    let plain = PlainCas(AtomicU32::new(0));
    let spin = Queued::<Spin>::new();
    let futex = Queued::<Futex>::new();
    time("plain CAS lock (no trait)", n, || {
        plain_cas_cycle(black_box(&plain))
    });
    time("Queued<Spin>", n, || queued_spin_cycle(black_box(&spin)));
    time("Queued<Futex> (pv unlock)", n, || {
        queued_futex_cycle(black_box(&futex))
    });
}
