//! The waiting policy: every decision of the pv slow paths that is a matter of performance, not
//! of correctness, made in one place from one [`Load`] snapshot and the tuning in force.
//!
//! The lock modules hold the mechanism: the lock words and their transitions, the queue, the
//! hash table, the wait/kick calls, each of which is correct whatever the policy answers. They
//! consult a [`Policy`] at named points and spin with the one [`Backoff`] it hands out.
//!
//! | point | decision | rule |
//! |---|---|---|
//! | [`Policy::entry_spin`] | how long a `Queued` newcomer tries to steal before it queues, and whether it yields between reads | the spin budget; crowded, 1/32 of it ("short entry spin") unless the thread is 2+ steal budgets behind its fair share; not crowded, it yields once its backoff saturates ("yielding stealers") |
//! | [`Policy::may_bypass`] | whether a thread may take a `Queued` lock past queued waiters | the steal budget, while crowded ([`steal`]) |
//! | [`Policy::queued_spin`] | how long a queued waiter spins before it blocks (`Queued` non-head, `Ticket`, `Byte`) | the spin budget; none while crowded ("load control"), none in a waiter's first queued round after its entry spin ran out ("spun out") |
//! | [`Policy::head_spin`] | how long the `Queued` queue head spins before it blocks | the spin budget, also while crowded (it is the one waiter whose spin keeps the lock moving); none in its first round when spun out |
//! | [`Policy::reader_entry_spin`] | how long an `RwLock` reader that a writer keeps out retries the fast path before it queues on the wait lock | the spin budget, yielding once its backoff saturates, also while crowded ("reader entry spin") |
//!
//! "Crowded" is [`Load::crowded`]: more threads have contended for pvlock locks in the last
//! 10-20 ms than the process has CPUs; each [`Policy::now`] that finds it so counts
//! `pv_crowded` ([`crate::stats`]). Each rule's reason and its measurements are in
//! `docs/tuning.md`; the protocol each one acts in is in the lock's module docs.
//!
//! Without `std` the CPU count is unknown, nothing is ever crowded, and there is no yielding: the
//! policy is the kernel's (spin the budget, then block), with the steal budget always in force.

pub(crate) mod steal;

use crate::load::Load;
use crate::sync::{spin_loop, yield_now, CAN_YIELD};
use crate::tuning::{CROWDED_ENTRY_DIV, FAIR_SHARE_SLACK, LOOK_ASIDE_EVERY, STEAL_BACKOFF_MAX};
use steal::Account;

/// The policy in force for one waiter now: a [`Load`] snapshot and the tuning, by value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    load: Load,
    /// The spin budget, in spin iterations.
    spin: u32,
}

impl Policy {
    /// What the native lock carries where the pv slow path carries its reading: nothing
    /// consults it (no CPU count, no spin).
    pub(crate) const NATIVE: Policy = Policy {
        load: Load {
            contenders: 0,
            cpus: None,
        },
        spin: 0,
    };

    /// The policy now: read at slow-path entry and after each wake-up.
    #[inline]
    pub(crate) fn now() -> Policy {
        let load = Load::now();
        if load.crowded() {
            crate::stats::count(crate::stats::Event::PvCrowded);
        }
        Policy {
            load,
            spin: crate::tuning::spin_iterations(),
        }
    }

    /// A policy for this load (tests).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn with(load: Load, spin: u32) -> Policy {
        Policy { load, spin }
    }

    /// A `Queued` newcomer's spin before it joins the queue: reads with exponential backoff,
    /// for the spin budget, or 1/32 of it while crowded unless the thread is well behind its
    /// fair share of steals; yielding between reads once the backoff saturates while not crowded
    /// (yielding stealers: with CPU hogs of other processes the lock's threads take turns with
    /// them instead of spinning against them).
    #[inline]
    pub(crate) fn entry_spin(&self, account: &Account) -> Backoff {
        let crowded = self.load.crowded();
        let behind = crowded
            && account.deficit() > FAIR_SHARE_SLACK * i64::from(crate::tuning::steal_budget());
        let budget = if crowded && !behind {
            self.spin / CROWDED_ENTRY_DIV
        } else {
            self.spin
        };
        Backoff::new(budget, STEAL_BACKOFF_MAX, !crowded && CAN_YIELD)
    }

    /// An rwlock reader that a writer keeps out, before it queues on the wait lock: reads with
    /// exponential backoff for the spin budget, yielding between reads once the backoff
    /// saturates, also while crowded.
    #[inline]
    pub(crate) fn reader_entry_spin(&self) -> Backoff {
        Backoff::new(self.spin, STEAL_BACKOFF_MAX, true)
    }

    /// Whether the owner of `account` may take a lock past queued waiters now, under this
    /// policy's load (and counts it).
    #[inline(always)]
    pub(crate) fn may_bypass(&self, account: &Account) -> bool {
        account.may_bypass(crate::tuning::steal_budget(), || self.load)
    }

    /// [`may_bypass`](Self::may_bypass) for a thread that has no snapshot yet (the inline steal
    /// of the fast path): the load is read only if the steal budget is spent.
    #[inline(always)]
    pub(crate) fn may_bypass_now(account: &Account) -> bool {
        account.may_bypass(crate::tuning::steal_budget(), Load::now)
    }

    /// A queued waiter's spin before it blocks: the spin budget, one check per `PAUSE`; none
    /// while crowded (load control: the waiters cannot all have a CPU, and a spinning one takes
    /// it from a thread that could make progress) and none when `skip`.
    #[inline]
    pub(crate) fn queued_spin(&self, skip: bool) -> Backoff {
        let budget = if skip || self.load.crowded() {
            0
        } else {
            self.spin
        };
        Backoff::new(budget, 1, false)
    }

    /// The `Queued` queue head's spin with pending set: the spin budget, one try per `PAUSE`,
    /// also while crowded (pending forbids stealing, so its spin is what keeps the lock moving);
    /// none when `skip`.
    #[inline]
    pub(crate) fn head_spin(&self, skip: bool) -> Backoff {
        Backoff::new(if skip { 0 } else { self.spin }, 1, false)
    }
}

/// One waiter's spin: `PAUSE`s in rounds that double from 1 to a maximum step, checking between
/// rounds, optionally yielding the CPU after each round at the maximum, and giving up once a
/// budget of `PAUSE`s is spent (yields do not count).
pub(crate) struct Backoff {
    left: u32,
    step: u32,
    max_step: u32,
    yields: bool,
    /// What a yield counts as (`stats`).
    yield_event: crate::stats::Event,
    /// `PAUSE`s waited so far (tests).
    #[cfg(test)]
    waited: u32,
    /// `PAUSE`s since the last [`look_aside`](Self::look_aside) that said yes (saturating).
    since_look: u32,
}

impl Backoff {
    /// A spin of `budget` `PAUSE`s in rounds of up to `max_step`, yielding after each round at
    /// the maximum if `yields` (and the CPU can be given away).
    #[inline]
    pub(crate) fn new(budget: u32, max_step: u32, yields: bool) -> Backoff {
        Backoff {
            left: budget,
            step: 1,
            max_step: max_step.max(1),
            yields: yields && CAN_YIELD,
            yield_event: crate::stats::Event::PvSpinYield,
            #[cfg(test)]
            waited: 0,
            since_look: LOOK_ASIDE_EVERY,
        }
    }

    /// The same spin, its yields counted as `e` instead of `pv_spin_yield`.
    #[inline]
    pub(crate) fn counting(self, e: crate::stats::Event) -> Backoff {
        Backoff {
            yield_event: e,
            ..self
        }
    }

    /// A spin that never gives up (waiting for something that comes soon, or for a lock without a
    /// node to wait with), yielding after each round at the maximum if `yields`.
    #[inline]
    pub(crate) fn unbounded(max_step: u32, yields: bool) -> Backoff {
        Backoff::new(u32::MAX, max_step, yields)
    }

    /// Waits one round; `false`, without waiting, once the budget is spent.
    #[inline]
    pub(crate) fn snooze(&mut self) -> bool {
        if self.left == 0 {
            return false;
        }
        let n = self.step.min(self.left);
        for _ in 0..n {
            spin_loop();
        }
        if self.left != u32::MAX {
            self.left -= n;
        }
        #[cfg(test)]
        {
            self.waited = self.waited.wrapping_add(n);
        }
        self.since_look = self.since_look.saturating_add(n);
        if self.step == self.max_step {
            if self.yields {
                crate::stats::count(self.yield_event);
                yield_now();
            }
        } else {
            self.step = (self.step * 2).min(self.max_step);
        }
        true
    }

    /// Whether the rounds now yield the CPU (the backoff has saturated and yields).
    #[inline]
    pub(crate) fn yielding(&self) -> bool {
        self.yields && self.step == self.max_step
    }

    /// Whether the waiter should look at something besides what it waits for now (its
    /// predecessor's state, the clock): `true` before the first round and then once per
    /// [`LOOK_ASIDE_EVERY`] `PAUSE`s waited, at the first call after they have passed.
    #[inline]
    pub(crate) fn look_aside(&mut self) -> bool {
        if self.since_look < LOOK_ASIDE_EVERY {
            return false;
        }
        self.since_look = 0;
        true
    }

    /// `PAUSE`s waited so far.
    #[cfg(test)]
    pub(crate) fn waited(&self) -> u32 {
        self.waited
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const CALM: Load = Load {
        contenders: 0,
        cpus: Some(2),
    };
    const CROWDED: Load = Load {
        contenders: 5,
        cpus: Some(2),
    };
    const KERNEL: Load = Load {
        contenders: 5,
        cpus: None,
    };

    fn rounds(mut b: Backoff) -> (u32, u32) {
        let mut rounds = 0;
        while b.snooze() {
            rounds += 1;
        }
        (rounds, b.waited())
    }

    #[test]
    fn backoff_spends_its_budget_in_doubling_rounds() {
        // 1 + 2 + 4 + 8 + 8 + 8 + 1 = 32
        assert_eq!(rounds(Backoff::new(32, 8, false)), (7, 32));
        assert_eq!(rounds(Backoff::new(5, 1, false)), (5, 5));
        assert_eq!(rounds(Backoff::new(0, 64, false)), (0, 0));
    }

    #[test]
    fn look_aside_comes_first_then_once_per_cadence() {
        let looks = |mut b: Backoff| {
            let mut at = std::vec::Vec::new();
            loop {
                if b.look_aside() {
                    at.push(b.waited());
                }
                if !b.snooze() {
                    return at;
                }
            }
        };
        let n = LOOK_ASIDE_EVERY;
        // One `PAUSE` per round: exactly every `n`.
        assert_eq!(looks(Backoff::new(3 * n, 1, false)), [0, n, 2 * n, 3 * n]);
        // Rounds of up to 64: at the first round after `n` more have passed.
        let at = looks(Backoff::new(8 * n, 64, false));
        assert_eq!(at[0], 0);
        assert!(at
            .windows(2)
            .all(|w| w[1] - w[0] >= n && w[1] - w[0] < n + 64));
        assert!(at.len() as u32 >= 8 * n / (n + 64));
    }

    #[test]
    fn spins_follow_the_load() {
        let a = Account::new();
        let calm = Policy::with(CALM, 1000);
        let crowded = Policy::with(CROWDED, 1000);
        let kernel = Policy::with(KERNEL, 1000);
        // Entry: the whole budget, yielding, unless crowded (1/32, no yields).
        assert_eq!(rounds(calm.entry_spin(&a)).1, 1000);
        assert!(calm.entry_spin(&a).yields);
        assert_eq!(rounds(crowded.entry_spin(&a)).1, 1000 / CROWDED_ENTRY_DIV);
        assert!(!crowded.entry_spin(&a).yields);
        // Queued waiters do not spin while crowded, nor when skipping; heads always spin.
        assert_eq!(rounds(calm.queued_spin(false)).1, 1000);
        assert_eq!(rounds(calm.queued_spin(true)).1, 0);
        assert_eq!(rounds(crowded.queued_spin(false)).1, 0);
        assert_eq!(rounds(crowded.head_spin(false)).1, 1000);
        assert_eq!(rounds(crowded.head_spin(true)).1, 0);
        // Unknown CPUs (no `std`): the kernel's policy.
        assert_eq!(rounds(kernel.entry_spin(&a)).1, 1000);
        assert_eq!(rounds(kernel.queued_spin(false)).1, 1000);
    }
}
