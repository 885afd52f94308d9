//! Condition-variable wake-up latency: pvlock's `Condvar` (with `pvlock::Mutex`) against
//! `parking_lot::Condvar` and `std::sync::Condvar`, each with its own mutex.
//!
//! Two threads play ping-pong through one mutex-protected turn counter and two condition
//! variables: each waits (`wait_while`) until it is its turn, takes it, and notifies the other.
//! The time of one hand-over is the wall time over the hand-overs: a wake-up (notify to the
//! waiter running with the mutex) plus the mutex hand-over. `HOGS` busy threads of the same
//! process compete for the CPUs (0 = threads <= CPUs; 2 x CPUs - 2 and 8 x CPUs - 2 make the
//! process 2x and 8x oversubscribed). Rounds alternate the three implementations; printed are
//! the medians and pvlock's time over the faster peer's, paired round by round (median and
//! min-max).
//!
//! ```text
//! cargo run --release -p pvlock-bench --example condvar_latency -- [HANDOVERS] [ROUNDS] [HOGS]
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

trait Pair: Sync {
    fn new() -> Self;
    /// Waits until `turn % 2 == me`, then advances the turn and wakes the other side.
    fn step(&self, me: u64);
}

struct Pv {
    m: pvlock::Mutex<u64>,
    cv: [pvlock::Condvar; 2],
}
impl Pair for Pv {
    fn new() -> Self {
        Pv {
            m: pvlock::Mutex::new(0),
            cv: [pvlock::Condvar::new(), pvlock::Condvar::new()],
        }
    }
    fn step(&self, me: u64) {
        let mut g = self.m.lock();
        self.cv[me as usize].wait_while(&mut g, |t| *t % 2 != me);
        *g += 1;
        drop(g);
        self.cv[1 - me as usize].notify_one();
    }
}

struct Pl {
    m: parking_lot::Mutex<u64>,
    cv: [parking_lot::Condvar; 2],
}
impl Pair for Pl {
    fn new() -> Self {
        Pl {
            m: parking_lot::Mutex::new(0),
            cv: [parking_lot::Condvar::new(), parking_lot::Condvar::new()],
        }
    }
    fn step(&self, me: u64) {
        let mut g = self.m.lock();
        self.cv[me as usize].wait_while(&mut g, |t| *t % 2 != me);
        *g += 1;
        drop(g);
        self.cv[1 - me as usize].notify_one();
    }
}

struct Std {
    m: std::sync::Mutex<u64>,
    cv: [std::sync::Condvar; 2],
}
impl Pair for Std {
    fn new() -> Self {
        Std {
            m: std::sync::Mutex::new(0),
            cv: [std::sync::Condvar::new(), std::sync::Condvar::new()],
        }
    }
    fn step(&self, me: u64) {
        let g = self.m.lock().unwrap();
        let mut g = self.cv[me as usize]
            .wait_while(g, |t| *t % 2 != me)
            .unwrap();
        *g += 1;
        drop(g);
        self.cv[1 - me as usize].notify_one();
    }
}

/// Nanoseconds per hand-over.
fn run<P: Pair>(handovers: u64) -> f64 {
    let p = P::new();
    let t = Instant::now();
    std::thread::scope(|s| {
        for me in 0..2u64 {
            let p = &p;
            s.spawn(move || {
                for _ in 0..handovers / 2 {
                    p.step(me);
                }
            });
        }
    });
    t.elapsed().as_nanos() as f64 / handovers as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let handovers: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let hogs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..hogs {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
        }
        let (mut pv, mut pl, mut st) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            pv.push(run::<Pv>(handovers));
            pl.push(run::<Pl>(handovers));
            st.push(run::<Std>(handovers));
        }
        stop.store(true, Ordering::Relaxed);
        // Paired by round: pvlock's time over the faster peer's of the same round.
        let ratios: Vec<f64> = (0..rounds).map(|i| pv[i] / pl[i].min(st[i])).collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        let (pv, pl, st, ratio) = (median(pv), median(pl), median(st), median(ratios));
        println!(
            "condvar hand-over, {handovers} hand-overs x {rounds} rounds, {hogs} busy threads: \
             pvlock {:.1} us, parking_lot {:.1} us, std {:.1} us (medians); pvlock / faster peer \
             of the round = {ratio:.2}x the time (rounds {lo:.2}-{hi:.2}; below 1 is faster)",
            pv / 1e3,
            pl / 1e3,
            st / 1e3,
        );
    });
}
