//! `Condvar`: a condition variable for every `lock_api` mutex (pvlock's, and any other), with
//! `parking_lot`'s API, whose `notify_all` wakes the waiters one after another through the mutex
//! instead of all at once.
//!
//! # Lists and states
//!
//! A condition variable keeps two FIFO lists of waiter slots (linked through each slot's
//! `CvLink`), under a small internal [`Queued`] lock held only for list updates:
//!
//! * `waiting`: threads in `wait*` that no notification has reached;
//! * `chain`: threads that a `notify_all` reached, to be woken one by one.
//!
//! A waiter's `state` says where it is:
//!
//! ```text
//!  IDLE --wait: enqueue (internal lock held, mutex still held)--> WAITING
//!  WAITING --notify_one: dequeue, store, kick--------------------> NOTIFIED
//!  WAITING --notify_all: the whole list, first waiter-------------> RUNNER
//!  WAITING --notify_all: the others, onto `chain`------------------> CHAINED
//!  CHAINED --the runner, once it holds the mutex: dequeue, kick----> RUNNER
//!  WAITING or CHAINED --deadline: dequeue itself (internal lock)---> IDLE (timed out)
//!  NOTIFIED or RUNNER --wait returns, mutex re-taken----------------> IDLE
//! ```
//!
//! A thread sleeps (the backend's `wait`, or `wait_timeout` until its deadline) on its own
//! `state` while it is `WAITING` or `CHAINED`; whoever moves it to `NOTIFIED` or `RUNNER` stores
//! the state (release) and then kicks its slot, so a kick that comes before the sleep is latched
//! and a state that changed before it makes the sleep return at once.
//!
//! **No lost notification.** A waiter enqueues itself under the internal lock *before* it
//! releases the mutex, so a notifier that holds the mutex, or took it after the waiter released
//! it, finds the waiter in `waiting` (the mutex orders the enqueue before the notifier's look; the
//! internal lock orders the list updates). A waiter that times out takes itself out of its list
//! under the internal lock, so a notification is never given to a thread that has left: if it
//! was reached first, it counts as notified, not timed out.
//!
//! **No thundering herd on `notify_all`.** Waking every waiter at once makes all of them run only
//! to queue on the mutex the notifier still holds. Here `notify_all` wakes one waiter, the
//! runner; once the runner holds the mutex it wakes the next chained waiter, which then queues on
//! the mutex (and, with a blocking backend, sleeps there until the runner's unlock hands it over)
//! and becomes the runner in turn. So at most one thread per `notify_all` is between the
//! condition variable and the mutex queue: the waiters are moved onto the mutex, in order, as the
//! kernel's `FUTEX_CMP_REQUEUE` moves them from a condition variable's futex to the mutex's.
//! While a chain runs, a later `notify_all` appends its waiters to it. This needs nothing from the
//! mutex but `lock` and `unlock`, so it works for every `lock_api` mutex; with a spinning mutex
//! (`Spin`) the next waiter spins on the mutex instead of sleeping in its queue.
//!
//! As in `parking_lot`, a condition variable may be used with one mutex at a time: waiting with
//! a second mutex while threads wait with the first panics.

use core::marker::PhantomData;

use crate::backend::Backend;
use crate::queued::Queued;
use crate::slot::{self, Slot};
use crate::stats::{count, Event};
use crate::sync::{yield_now, AtomicU32, AtomicUsize, Deadline, Ordering};

const IDLE: u32 = 0;
const WAITING: u32 = 1;
const CHAINED: u32 = 2;
const NOTIFIED: u32 = 3;
const RUNNER: u32 = 4;

/// The result of a timed wait: whether it ended because its time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended because its timeout passed without a notification.
    #[inline]
    pub fn timed_out(self) -> bool {
        self.0
    }
}

/// One FIFO list of slots (head and tail as slot index + 1; 0 = empty), linked through
/// `Slot::cv.next`. Accessed only under the condition variable's internal lock, so every access
/// is Relaxed: the lock orders them.
struct List {
    head: AtomicU32,
    tail: AtomicU32,
}

impl List {
    crate::sync::const_fn! {
        fn new() -> List {
            List { head: AtomicU32::new(0), tail: AtomicU32::new(0) }
        }
    }

    fn is_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed) == 0
    }

    fn push(&self, s: &Slot) {
        let code = s.index() as u32 + 1;
        s.cv.next.store(0, Ordering::Relaxed);
        match self.tail.load(Ordering::Relaxed) {
            0 => self.head.store(code, Ordering::Relaxed),
            t => slot::slot_at(t as usize - 1)
                .cv
                .next
                .store(code, Ordering::Relaxed),
        }
        self.tail.store(code, Ordering::Relaxed);
    }

    fn pop(&self) -> Option<&'static Slot> {
        let h = self.head.load(Ordering::Relaxed);
        if h == 0 {
            return None;
        }
        let s = slot::slot_at(h as usize - 1);
        let next = s.cv.next.load(Ordering::Relaxed);
        self.head.store(next, Ordering::Relaxed);
        if next == 0 {
            self.tail.store(0, Ordering::Relaxed);
        }
        Some(s)
    }

    /// Takes `s` out of the list; `false` if it is not in it.
    fn remove(&self, s: &Slot) -> bool {
        let code = s.index() as u32 + 1;
        let mut prev = 0u32;
        let mut cur = self.head.load(Ordering::Relaxed);
        while cur != 0 {
            let c = slot::slot_at(cur as usize - 1);
            let next = c.cv.next.load(Ordering::Relaxed);
            if cur == code {
                match prev {
                    0 => self.head.store(next, Ordering::Relaxed),
                    p => slot::slot_at(p as usize - 1)
                        .cv
                        .next
                        .store(next, Ordering::Relaxed),
                }
                if self.tail.load(Ordering::Relaxed) == code {
                    self.tail.store(prev, Ordering::Relaxed);
                }
                return true;
            }
            prev = cur;
            cur = next;
        }
        false
    }

    /// Appends all of `other` to this list, leaving `other` empty; returns how many moved.
    fn append(&self, other: &List) -> usize {
        let mut n = 0;
        while let Some(s) = other.pop() {
            self.push(s);
            n += 1;
        }
        n
    }
}

/// A condition variable whose internal lock and waiters block with backend `B`; see the
/// [module docs](self). [`Condvar`](crate::Condvar) is `CondvarWith<Auto>`.
pub struct CondvarWith<B: Backend> {
    /// Protects the two lists and `mutex`.
    lock: Queued<B>,
    waiting: List,
    chain: List,
    /// Address of the mutex the waiters use, 0 while nobody waits.
    mutex: AtomicUsize,
    _backend: PhantomData<fn() -> B>,
}

impl<B: Backend> Default for CondvarWith<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backend> core::fmt::Debug for CondvarWith<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.pad("Condvar { .. }")
    }
}

impl<B: Backend> CondvarWith<B> {
    crate::sync::const_fn! {
        /// A condition variable nobody waits on.
        pub fn new() -> Self {
            CondvarWith {
                lock: Queued::new(),
                waiting: List::new(),
                chain: List::new(),
                mutex: AtomicUsize::new(0),
                _backend: PhantomData,
            }
        }
    }

    fn lock_lists(&self) {
        self.lock.lock();
    }

    fn unlock_lists(&self) {
        // SAFETY: the caller took the internal lock with `lock_lists`.
        unsafe { self.lock.unlock() };
    }

    /// The core of every wait. `mutex` is the address of the mutex (for the one-mutex check);
    /// `unlocked(f)` must release the mutex, call `f` and take the mutex again. Returns whether
    /// the wait timed out.
    pub(crate) fn wait_raw(
        &self,
        mutex: usize,
        deadline: Option<&Deadline>,
        unlocked: impl FnOnce(&mut dyn FnMut()),
    ) -> bool {
        let Some(me) = B::current() else {
            // No waiter slot free (1024 threads waiting): release the mutex briefly and return,
            // a spurious wake-up, which every condition-variable wait allows.
            unlocked(&mut || yield_now());
            return deadline.is_some_and(Deadline::passed);
        };
        self.lock_lists();
        match self.mutex.load(Ordering::Relaxed) {
            0 => self.mutex.store(mutex, Ordering::Relaxed),
            m if m != mutex => {
                self.unlock_lists();
                panic!("pvlock: a Condvar was used with two mutexes at once");
            }
            _ => {}
        }
        // Relaxed: read by the notifier under the internal lock.
        me.cv.state.store(WAITING, Ordering::Relaxed);
        self.waiting.push(me);
        self.unlock_lists();

        let mut timed_out = false;
        let mut runner = false;
        unlocked(&mut || loop {
            // Acquire: pairs with the notifier's release store (its writes before the notify).
            let st = me.cv.state.load(Ordering::Acquire);
            if st == NOTIFIED || st == RUNNER {
                runner = st == RUNNER;
                return;
            }
            if deadline.is_some_and(Deadline::passed) {
                self.lock_lists();
                // Relaxed: under the internal lock, which orders it with the notifiers.
                let st = me.cv.state.load(Ordering::Relaxed);
                let left = match st {
                    WAITING => self.waiting.remove(me),
                    CHAINED => self.chain.remove(me),
                    _ => false, // reached by a notification meanwhile: not timed out
                };
                if left {
                    me.cv.state.store(IDLE, Ordering::Relaxed);
                    self.forget_mutex_if_idle();
                }
                self.unlock_lists();
                if left {
                    count(Event::TimedOut);
                    timed_out = true;
                    return;
                }
                continue;
            }
            count(Event::CvWait);
            // Not counted as a blocked contender (`load`): a thread waiting for a notification
            // waits for an event, maybe for ever (an idle pool), not for a lock.
            match deadline {
                Some(d) => B::wait_timeout(me, &me.cv.state, st, d.remaining()),
                None => B::wait(me, &me.cv.state, st),
            }
        });
        // Relaxed: only we read it now.
        me.cv.state.store(IDLE, Ordering::Relaxed);
        if runner {
            // We hold the mutex: wake the next chained waiter, which queues on the mutex.
            self.lock_lists();
            let next = self.chain.pop();
            if let Some(n) = next {
                // Release: as in `notify_one`.
                n.cv.state.store(RUNNER, Ordering::Release);
            }
            self.forget_mutex_if_idle();
            self.unlock_lists();
            if let Some(n) = next {
                count(Event::CvChain);
                B::kick(n);
            }
        }
        timed_out
    }

    /// Under the internal lock: nobody waits any more, so the condvar may be used with another
    /// mutex.
    fn forget_mutex_if_idle(&self) {
        if self.waiting.is_empty() && self.chain.is_empty() {
            self.mutex.store(0, Ordering::Relaxed);
        }
    }

    /// Wakes one waiting thread, if there is one; returns whether it woke one.
    pub fn notify_one(&self) -> bool {
        // Relaxed: a waiter that must be seen enqueued itself before releasing the mutex that
        // the notifier took since (module docs); nobody waiting is the common case.
        if self.waiting.is_empty() {
            return false;
        }
        self.lock_lists();
        let w = self.waiting.pop();
        if let Some(w) = w {
            // Release: what the notifier did before notifying happens before the waiter's
            // acquiring load of its state.
            w.cv.state.store(NOTIFIED, Ordering::Release);
        }
        self.forget_mutex_if_idle();
        self.unlock_lists();
        match w {
            Some(w) => {
                B::kick(w);
                true
            }
            None => false,
        }
    }

    /// Wakes every waiting thread; returns how many it reached. They are woken one after another
    /// as each takes the mutex (module docs): no thundering herd.
    pub fn notify_all(&self) -> usize {
        // Relaxed: as in `notify_one`.
        if self.waiting.is_empty() {
            return 0;
        }
        self.lock_lists();
        let idle_chain = self.chain.is_empty();
        let first = if idle_chain { self.waiting.pop() } else { None };
        let mut n = usize::from(first.is_some());
        // Relaxed: the chained waiters keep sleeping; the runner's release store wakes each.
        let mut cur = self.waiting.head.load(Ordering::Relaxed);
        while cur != 0 {
            let s = slot::slot_at(cur as usize - 1);
            s.cv.state.store(CHAINED, Ordering::Relaxed);
            cur = s.cv.next.load(Ordering::Relaxed);
        }
        n += self.chain.append(&self.waiting);
        if let Some(f) = first {
            // Release: as in `notify_one`.
            f.cv.state.store(RUNNER, Ordering::Release);
        }
        self.unlock_lists();
        if let Some(f) = first {
            B::kick(f);
        }
        n
    }
}

#[cfg(not(loom))]
mod api {
    use super::*;
    use lock_api::{MutexGuard, RawMutex};
    use std::time::{Duration, Instant};

    impl<B: Backend> CondvarWith<B> {
        /// Releases the guard's mutex, blocks until notified, and takes the mutex again.
        ///
        /// ```
        /// use pvlock::{Condvar, Mutex};
        ///
        /// let pair = (Mutex::new(false), Condvar::new());
        /// std::thread::scope(|s| {
        ///     s.spawn(|| {
        ///         *pair.0.lock() = true;
        ///         pair.1.notify_one();
        ///     });
        ///     let mut ready = pair.0.lock();
        ///     while !*ready {
        ///         pair.1.wait(&mut ready);
        ///     }
        /// });
        /// ```
        pub fn wait<R: RawMutex, T: ?Sized>(&self, guard: &mut MutexGuard<'_, R, T>) {
            let m = addr(guard);
            self.wait_raw(m, None, |f| MutexGuard::unlocked(guard, f));
        }

        /// Waits while `condition` holds for the protected data (checked with the mutex held,
        /// first before waiting).
        pub fn wait_while<R: RawMutex, T: ?Sized, F: FnMut(&mut T) -> bool>(
            &self,
            guard: &mut MutexGuard<'_, R, T>,
            mut condition: F,
        ) {
            while condition(&mut *guard) {
                self.wait(guard);
            }
        }

        /// [`wait`](Self::wait) until `timeout` (an instant); the result says whether the
        /// time ran out.
        pub fn wait_until<R: RawMutex, T: ?Sized>(
            &self,
            guard: &mut MutexGuard<'_, R, T>,
            timeout: Instant,
        ) -> WaitTimeoutResult {
            let m = addr(guard);
            let d = Deadline::at(timeout);
            WaitTimeoutResult(self.wait_raw(m, Some(&d), |f| MutexGuard::unlocked(guard, f)))
        }

        /// [`wait`](Self::wait) for at most `timeout`.
        pub fn wait_for<R: RawMutex, T: ?Sized>(
            &self,
            guard: &mut MutexGuard<'_, R, T>,
            timeout: Duration,
        ) -> WaitTimeoutResult {
            match Instant::now().checked_add(timeout) {
                Some(at) => self.wait_until(guard, at),
                None => {
                    self.wait(guard);
                    WaitTimeoutResult(false)
                }
            }
        }

        /// [`wait_while`](Self::wait_while) until `timeout` (an instant); on a time-out the
        /// condition held at the last check (it is not checked again after the time-out).
        pub fn wait_while_until<R: RawMutex, T: ?Sized, F: FnMut(&mut T) -> bool>(
            &self,
            guard: &mut MutexGuard<'_, R, T>,
            mut condition: F,
            timeout: Instant,
        ) -> WaitTimeoutResult {
            let mut timed_out = false;
            while !timed_out && condition(&mut *guard) {
                timed_out = self.wait_until(guard, timeout).timed_out();
            }
            WaitTimeoutResult(timed_out)
        }

        /// [`wait_while`](Self::wait_while) for at most `timeout`.
        pub fn wait_while_for<R: RawMutex, T: ?Sized, F: FnMut(&mut T) -> bool>(
            &self,
            guard: &mut MutexGuard<'_, R, T>,
            condition: F,
            timeout: Duration,
        ) -> WaitTimeoutResult {
            match Instant::now().checked_add(timeout) {
                Some(at) => self.wait_while_until(guard, condition, at),
                None => {
                    self.wait_while(guard, condition);
                    WaitTimeoutResult(false)
                }
            }
        }
    }

    fn addr<R: RawMutex, T: ?Sized>(guard: &MutexGuard<'_, R, T>) -> usize {
        MutexGuard::mutex(guard) as *const lock_api::Mutex<R, T> as *const u8 as usize
    }
}

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn len(list: &List) -> usize {
        let mut n = 0;
        // Relaxed: read under the internal lock, as every list access.
        let mut cur = list.head.load(Ordering::Relaxed);
        while cur != 0 {
            n += 1;
            cur = slot::slot_at(cur as usize - 1)
                .cv
                .next
                .load(Ordering::Relaxed);
        }
        n
    }

    /// No thundering herd: right after `notify_all`, while the notifier still holds the mutex,
    /// one waiter has been woken and the others are chained, still asleep in the condition
    /// variable; once the mutex is free they all get through, one after another.
    #[test]
    fn notify_all_wakes_one_waiter_at_a_time() {
        const N: usize = 4;
        let m = crate::Mutex::new(0usize);
        let cv = crate::Condvar::new();
        std::thread::scope(|s| {
            for _ in 0..N {
                s.spawn(|| {
                    let mut g = m.lock();
                    *g += 1;
                    while *g <= N {
                        cv.wait(&mut g);
                    }
                });
            }
            // Every waiter enqueues itself before it releases the mutex: once we hold it and
            // all have counted themselves, all are in the list.
            let mut g = loop {
                let g = m.lock();
                if *g == N {
                    break g;
                }
                drop(g);
                std::thread::yield_now();
            };
            *g += 1;
            assert_eq!(cv.notify_all(), N);
            cv.lock_lists();
            let (waiting, chained) = (len(&cv.waiting), len(&cv.chain));
            cv.unlock_lists();
            assert_eq!(
                (waiting, chained),
                (0, N - 1),
                "one woken, the rest chained"
            );
            drop(g);
        });
        cv.lock_lists();
        assert!(cv.waiting.is_empty() && cv.chain.is_empty());
        cv.unlock_lists();
    }
}
