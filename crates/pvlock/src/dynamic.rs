//! `DynMutex`: one lock type whose algorithm and backend are chosen once per process, the
//! `pv_lock_ops` table of the first paravirtual spinlocks (Linux 2.6.25).
//!
//! Any program built on [`DynMutex`] can be run with every pvlock algorithm and backend without a
//! rebuild (the idea of LiTL's lock interposition):
//!
//! ```text
//! PVLOCK=ticket:spin   ./my-program     # the plain ticket lock
//! PVLOCK=queued:futex  ./my-program     # pvqspinlock over futexes
//! PVLOCK=byte          ./my-program     # the Xen byte lock, backend `auto`
//! ```
//!
//! The value is `ALGORITHM[:BACKEND]` with ALGORITHM one of `ticket`, `byte`, `queued` and
//! BACKEND one of `spin`, `futex` (Linux), `park`, `auto` (the default). Without `PVLOCK` the choice
//! is `queued:auto`, the same lock as [`crate::Mutex`]. A program may also choose with [`select`]
//! before its first lock operation.
//!
//! # The choice freezes
//!
//! All algorithms share one 32-bit word whose all-zero value means "unlocked", but each lays out
//! the non-zero values its own way: a word locked by one algorithm must never be touched by another
//! ("xen: disable PV spinlocks on HVM", commit f10cd522c5fb, 2011: a lock taken by native code
//! could not be taken by the Xen code after it was released). So the first lock operation of any `DynMutex` in the process
//! freezes the choice; a later [`select`] of a different lock returns [`SelectError::Frozen`].
//!
//! # Errors and panics
//!
//! [`init`] resolves and freezes the choice and returns an error for an invalid `PVLOCK`; call it at
//! start-up to report a typo cleanly. If you do not, the first lock operation with an invalid
//! `PVLOCK` **panics** with the same message (a benchmark must not silently run another lock).
//!
//! # Cost
//!
//! A lock operation loads the frozen choice (one relaxed load of a read-mostly word) and branches to
//! the inlined fast path of the chosen lock. `pvlock bench --locks dyn,queued-auto` measures it
//! against the static type.
//!
//! # No fair unlock
//!
//! `DynMutex` does not implement `lock_api::RawMutexFair`, so its guards have no `unlock_fair`,
//! although two of its three algorithms could honour one: a fair unlock hands the lock to the
//! waiter next in line, which `Queued` and `Ticket` do, but the byte lock has no queue and no
//! hand-over (any thread may take it after an unlock). The algorithm is chosen at run time and
//! `byte` is a valid choice, so the type cannot make the promise, and a fair unlock that is
//! silently a plain one under `PVLOCK=byte` would break it. Where you need fair unlocks use
//! [`QueuedMutex`](crate::QueuedMutex) or [`TicketMutex`](crate::TicketMutex) (or their
//! `*With` forms).

use core::fmt;

use crate::backend::{Auto, Park, Spin};
use crate::byte::Byte;
use crate::queued::Queued;
use crate::ticket::Ticket;
use crate::RawLock;
use core::sync::atomic::{AtomicU32, Ordering};

/// The lock algorithms [`DynMutex`] can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Algorithm {
    /// [`Ticket`]: FIFO ticket lock.
    Ticket,
    /// [`Byte`]: the Xen byte lock.
    Byte,
    /// [`Queued`]: the queued spinlock (pvqspinlock).
    Queued,
}

/// The backends [`DynMutex`] can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum BackendKind {
    /// [`Spin`]: never blocks.
    Spin,
    /// [`Futex`](crate::backend::Futex): Linux futex (on other systems, [`Park`]).
    Futex,
    /// [`Park`]: mutex + condition variable.
    Park,
    /// [`Auto`]: [`Futex`](crate::backend::Futex) on Linux, [`Park`] elsewhere.
    Auto,
}

/// An (algorithm, backend) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Choice {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The backend.
    pub backend: BackendKind,
}

const ALGORITHMS: [(&str, Algorithm); 3] = [
    ("ticket", Algorithm::Ticket),
    ("byte", Algorithm::Byte),
    ("queued", Algorithm::Queued),
];
const BACKENDS: [(&str, BackendKind); 4] = [
    ("spin", BackendKind::Spin),
    ("futex", BackendKind::Futex),
    ("park", BackendKind::Park),
    ("auto", BackendKind::Auto),
];

impl Choice {
    /// The default: `queued:auto`.
    pub const DEFAULT: Choice = Choice {
        algorithm: Algorithm::Queued,
        backend: BackendKind::Auto,
    };

    /// Every valid choice, in the order `pvlock` lists them.
    pub fn all() -> impl Iterator<Item = Choice> {
        ALGORITHMS.iter().flat_map(|&(_, algorithm)| {
            BACKENDS
                .iter()
                .map(move |&(_, backend)| Choice { algorithm, backend })
        })
    }
}

/// Declares [`Code`] from one list of `name = number: algorithm, backend`, and derives from that
/// list both directions of the mapping, so that they cannot disagree.
macro_rules! codes {
    ($($name:ident = $n:literal: $algorithm:ident, $backend:ident;)*) => {
        /// Every (algorithm, backend) choice as the number the process-wide atomic holds.
        /// 0 is no code: it means "not chosen yet".
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        enum Code {
            $($name = $n,)*
        }

        impl Code {
            /// The code of a choice (the compiler checks that every pair has one).
            const fn of(c: Choice) -> Code {
                match (c.algorithm, c.backend) {
                    $((Algorithm::$algorithm, BackendKind::$backend) => Code::$name,)*
                }
            }

            /// The choice this code stands for.
            const fn choice(self) -> Choice {
                match self {
                    $(Code::$name => Choice {
                        algorithm: Algorithm::$algorithm,
                        backend: BackendKind::$backend,
                    },)*
                }
            }

            /// The code with number `n`; `None` for every other number, 0 ("not chosen yet")
            /// among them.
            const fn decode(n: u32) -> Option<Code> {
                match n {
                    $($n => Some(Code::$name),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    TicketSpin = 1: Ticket, Spin;
    TicketFutex = 2: Ticket, Futex;
    TicketPark = 3: Ticket, Park;
    TicketAuto = 4: Ticket, Auto;
    ByteSpin = 5: Byte, Spin;
    ByteFutex = 6: Byte, Futex;
    BytePark = 7: Byte, Park;
    ByteAuto = 8: Byte, Auto;
    QueuedSpin = 9: Queued, Spin;
    QueuedFutex = 10: Queued, Futex;
    QueuedPark = 11: Queued, Park;
    QueuedAuto = 12: Queued, Auto;
}

impl Code {
    /// The number the atomic holds for this code, not frozen.
    const fn bits(self) -> u32 {
        self as u8 as u32
    }

    /// The code frozen in `bits` (a value of [`CHOICE`]), `None` while nothing is frozen.
    const fn frozen_in(bits: u32) -> Option<Code> {
        Code::decode(bits ^ FROZEN)
    }
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = ALGORITHMS
            .iter()
            .find(|&&(_, x)| x == self.algorithm)
            .map_or("?", |p| p.0);
        let b = BACKENDS
            .iter()
            .find(|&&(_, x)| x == self.backend)
            .map_or("?", |p| p.0);
        write!(f, "{a}:{b}")
    }
}

/// `PVLOCK` (or a string given to [`Choice::from_str`](core::str::FromStr)) is not a valid choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    value: std::string::String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid pvlock choice {:?}: expected ALGORITHM[:BACKEND] with ALGORITHM one of ",
            self.value
        )?;
        let names: std::vec::Vec<&str> = ALGORITHMS.iter().map(|p| p.0).collect();
        write!(f, "{} and BACKEND one of ", names.join(", "))?;
        let names: std::vec::Vec<&str> = BACKENDS.iter().map(|p| p.0).collect();
        write!(f, "{} (e.g. queued:futex, ticket:spin)", names.join(", "))
    }
}

impl std::error::Error for ParseError {}

impl core::str::FromStr for Choice {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Choice, ParseError> {
        let err = || ParseError { value: s.into() };
        let t = s.trim().to_ascii_lowercase();
        let (a, b) = t.split_once(':').unwrap_or((t.as_str(), "auto"));
        let algorithm = ALGORITHMS
            .iter()
            .find(|p| p.0 == a.trim())
            .ok_or_else(err)?
            .1;
        let backend = BACKENDS.iter().find(|p| p.0 == b.trim()).ok_or_else(err)?.1;
        Ok(Choice { algorithm, backend })
    }
}

/// [`select`] came too late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectError {
    /// A lock operation already froze another choice.
    Frozen {
        /// The choice in force.
        current: Choice,
        /// The choice that was asked for.
        requested: Choice,
    },
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::Frozen { current, requested } => write!(
                f,
                "cannot switch pvlock to {requested}: the first lock operation already froze {current}"
            ),
        }
    }
}

impl std::error::Error for SelectError {}

/// The choice: 0 while nothing is chosen, a [`Code`] once [`select`] chose, the code with
/// [`FROZEN`] once a lock operation (or [`init`]) froze it.
static CHOICE: AtomicU32 = AtomicU32::new(0);
const FROZEN: u32 = 1 << 31;

/// Chooses the algorithm and backend of every [`DynMutex`] in the process. Overrides `PVLOCK`.
///
/// # Errors
/// [`SelectError::Frozen`] if a lock operation already froze a different choice.
pub fn select(choice: Choice) -> Result<(), SelectError> {
    let mut cur = CHOICE.load(Ordering::Acquire);
    loop {
        if let Some(current) = Code::frozen_in(cur) {
            let current = current.choice();
            return if current == choice {
                Ok(())
            } else {
                Err(SelectError::Frozen {
                    current,
                    requested: choice,
                })
            };
        }
        // AcqRel: pairs with `freeze`, so one of the two CASes sees the other's value.
        let code = Code::of(choice).bits();
        match CHOICE.compare_exchange(cur, code, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(()),
            Err(now) => cur = now,
        }
    }
}

/// Resolves the choice (from [`select`], else `PVLOCK`, else the default), freezes it and returns it.
///
/// # Errors
/// [`ParseError`] if `PVLOCK` is set to something invalid and [`select`] was not called; the
/// message lists the valid values.
pub fn init() -> Result<Choice, ParseError> {
    let cur = CHOICE.load(Ordering::Acquire);
    if let Some(frozen) = Code::frozen_in(cur) {
        return Ok(frozen.choice());
    }
    // Not frozen: `select`ed, or (0) not chosen yet.
    let wanted = match Code::decode(cur) {
        Some(selected) => selected.choice(),
        None => from_env()?,
    };
    match CHOICE.compare_exchange(
        cur,
        Code::of(wanted).bits() | FROZEN,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => Ok(wanted),
        // A concurrent `select` or `init` got in first: resolve again from its value.
        Err(_) => init(),
    }
}

/// The choice `PVLOCK` asks for (the default when unset or empty), or why it is invalid.
fn from_env() -> Result<Choice, ParseError> {
    match std::env::var("PVLOCK") {
        Ok(v) if !v.trim().is_empty() => v.parse(),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(Choice::DEFAULT),
        Err(std::env::VarError::NotUnicode(v)) => Err(ParseError {
            value: v.to_string_lossy().into_owned(),
        }),
    }
}

/// The frozen choice, if a lock operation (or [`init`]) has frozen one.
pub fn frozen() -> Option<Choice> {
    Code::frozen_in(CHOICE.load(Ordering::Acquire)).map(Code::choice)
}

#[cold]
#[inline(never)]
fn freeze() -> Code {
    match init() {
        Ok(c) => Code::of(c),
        Err(e) => panic!("pvlock: {e} (set by the PVLOCK environment variable)"),
    }
}

#[cfg(target_os = "linux")]
type FutexOrPark = crate::backend::Futex;
#[cfg(not(target_os = "linux"))]
type FutexOrPark = Park;

/// The raw lock behind [`DynMutex`]: one `AtomicU32`, run by the process-wide choice.
#[repr(transparent)]
pub struct RawDynMutex {
    word: AtomicU32,
}

// Every algorithm is a `repr(transparent)` wrapper of one AtomicU32, so a `&RawDynMutex` can be
// viewed as a reference to any of them; these checks keep that true.
const _: () = {
    assert!(
        core::mem::size_of::<Ticket<Spin>>() == 4 && core::mem::align_of::<Ticket<Spin>>() == 4
    );
    assert!(core::mem::size_of::<Byte<Spin>>() == 4 && core::mem::align_of::<Byte<Spin>>() == 4);
    assert!(
        core::mem::size_of::<Queued<Spin>>() == 4 && core::mem::align_of::<Queued<Spin>>() == 4
    );
};

/// Runs `$body` with `$l` bound to this word viewed as the chosen lock type: one arm per
/// [`Code`], which the compiler checks are all there.
macro_rules! dispatch {
    ($self:ident, $l:ident => $body:expr) => {{
        let code = match Code::frozen_in(CHOICE.load(Ordering::Relaxed)) {
            Some(code) => code,
            None => freeze(),
        };
        // SAFETY (for each arm): every lock type is `repr(transparent)` over one AtomicU32
        // (checked above), so the cast reference is valid for the lifetime of `self`; the choice
        // is frozen, so every operation on this word uses this same type.
        match code {
            Code::TicketSpin => {
                let $l = unsafe { $self.view::<Ticket<Spin>>() };
                $body
            }
            Code::TicketFutex => {
                let $l = unsafe { $self.view::<Ticket<FutexOrPark>>() };
                $body
            }
            Code::TicketPark => {
                let $l = unsafe { $self.view::<Ticket<Park>>() };
                $body
            }
            Code::TicketAuto => {
                let $l = unsafe { $self.view::<Ticket<Auto>>() };
                $body
            }
            Code::ByteSpin => {
                let $l = unsafe { $self.view::<Byte<Spin>>() };
                $body
            }
            Code::ByteFutex => {
                let $l = unsafe { $self.view::<Byte<FutexOrPark>>() };
                $body
            }
            Code::BytePark => {
                let $l = unsafe { $self.view::<Byte<Park>>() };
                $body
            }
            Code::ByteAuto => {
                let $l = unsafe { $self.view::<Byte<Auto>>() };
                $body
            }
            Code::QueuedSpin => {
                let $l = unsafe { $self.view::<Queued<Spin>>() };
                $body
            }
            Code::QueuedFutex => {
                let $l = unsafe { $self.view::<Queued<FutexOrPark>>() };
                $body
            }
            Code::QueuedPark => {
                let $l = unsafe { $self.view::<Queued<Park>>() };
                $body
            }
            Code::QueuedAuto => {
                let $l = unsafe { $self.view::<Queued<Auto>>() };
                $body
            }
        }
    }};
}

impl RawDynMutex {
    /// An unlocked lock.
    pub const fn new() -> Self {
        RawDynMutex {
            word: AtomicU32::new(0),
        }
    }

    /// # Safety
    /// `L` must be `repr(transparent)` over one `AtomicU32` and be the frozen choice.
    #[inline(always)]
    unsafe fn view<L>(&self) -> &L {
        // SAFETY: the caller guarantees the layout; the lifetime is that of `self`.
        unsafe { &*(self as *const Self as *const L) }
    }

    /// Whether the lock is held now.
    #[inline]
    pub fn is_locked(&self) -> bool {
        dispatch!(self, l => RawLock::is_locked(l))
    }

    /// Whether other threads wait for the lock now.
    #[inline]
    pub fn is_contended(&self) -> bool {
        dispatch!(self, l => RawLock::is_contended(l))
    }

    /// Acquires the lock.
    ///
    /// # Panics
    /// On the first lock operation of the process, if `PVLOCK` is invalid (see [`init`]).
    #[inline]
    pub fn lock(&self) {
        dispatch!(self, l => RawLock::lock(l))
    }

    /// Acquires the lock if it is free now.
    #[inline]
    pub fn try_lock(&self) -> bool {
        dispatch!(self, l => RawLock::try_lock(l))
    }

    /// Releases the lock.
    ///
    /// # Safety
    /// The lock must be held.
    #[inline]
    pub unsafe fn unlock(&self) {
        // SAFETY: the caller's contract is the lock's.
        dispatch!(self, l => unsafe { RawLock::unlock(l) })
    }
}

impl Default for RawDynMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RawDynMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawDynMutex")
            .field("word", &self.word.load(Ordering::Relaxed))
            .field("choice", &frozen())
            .finish()
    }
}

// SAFETY: forwards to the chosen lock, which provides mutual exclusion.
unsafe impl RawLock for RawDynMutex {
    fn is_locked(&self) -> bool {
        RawDynMutex::is_locked(self)
    }
    fn is_contended(&self) -> bool {
        RawDynMutex::is_contended(self)
    }
    fn lock(&self) {
        RawDynMutex::lock(self)
    }
    fn try_lock(&self) -> bool {
        RawDynMutex::try_lock(self)
    }
    unsafe fn unlock(&self) {
        // SAFETY: the caller's contract is ours.
        unsafe { RawDynMutex::unlock(self) }
    }
}

// SAFETY: forwards to the chosen lock, which provides mutual exclusion; guards may be sent for
// the reason given on the static types (no per-holder thread state).
unsafe impl lock_api::RawMutex for RawDynMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = RawDynMutex::new();
    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock(&self) {
        RawDynMutex::lock(self)
    }
    #[inline]
    fn try_lock(&self) -> bool {
        RawDynMutex::try_lock(self)
    }
    #[inline]
    unsafe fn unlock(&self) {
        // SAFETY: lock_api calls this only while the lock is held.
        unsafe { RawDynMutex::unlock(self) }
    }
    #[inline]
    fn is_locked(&self) -> bool {
        RawDynMutex::is_locked(self)
    }
}

/// A mutex whose algorithm and backend are chosen once per process (`PVLOCK`, [`select`]).
///
/// ```
/// // At start-up: resolve PVLOCK, and report a bad value instead of panicking at the first lock.
/// let choice = pvlock::dynamic::init().unwrap_or_else(|e| {
///     eprintln!("{e}");
///     std::process::exit(2);
/// });
/// let counter = pvlock::DynMutex::new(0);
/// *counter.lock() += 1;
/// assert_eq!(pvlock::dynamic::frozen(), Some(choice));
/// ```
pub type DynMutex<T> = lock_api::Mutex<RawDynMutex, T>;
/// Guard of [`DynMutex`].
pub type DynMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawDynMutex, T>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_choice_round_trips_through_its_code() {
        let all: std::vec::Vec<Choice> = Choice::all().collect();
        assert_eq!(all.len(), 12);
        let mut seen = std::vec::Vec::new();
        for c in all {
            let code = Code::of(c);
            assert_eq!(code.choice(), c, "{c}");
            assert_ne!(code.bits(), 0, "{c}: 0 means not chosen yet");
            assert_eq!(code.bits() & FROZEN, 0, "{c}");
            assert_eq!(Code::decode(code.bits()), Some(code), "{c}");
            assert_eq!(
                Code::frozen_in(code.bits()),
                None,
                "{c}: selected, not frozen"
            );
            assert_eq!(Code::frozen_in(code.bits() | FROZEN), Some(code), "{c}");
            assert!(!seen.contains(&code.bits()), "{c}: its number is taken");
            seen.push(code.bits());
            assert_eq!(std::format!("{c}").parse::<Choice>(), Ok(c));
        }
        // Nothing chosen yet is no code, frozen or not.
        assert_eq!(Code::decode(0), None);
        assert_eq!(Code::frozen_in(0), None);
        assert_eq!(Code::frozen_in(FROZEN), None);
    }
}
