//! `DynMutex` selection by API: select before use, freeze at the first lock operation, errors after.
//! (One test per file: the choice is process-wide.)

#![cfg(not(loom))]

use pvlock::dynamic::{self, Algorithm, BackendKind, Choice, SelectError};
use pvlock::DynMutex;

#[test]
fn select_then_freeze_then_refuse() {
    let ticket_spin = Choice {
        algorithm: Algorithm::Ticket,
        backend: BackendKind::Spin,
    };
    let byte_park = Choice {
        algorithm: Algorithm::Byte,
        backend: BackendKind::Park,
    };

    assert_eq!(dynamic::frozen(), None);
    // Before the first lock operation the choice may change freely.
    dynamic::select(byte_park).unwrap();
    dynamic::select(ticket_spin).unwrap();
    assert_eq!(dynamic::frozen(), None);

    let m = DynMutex::new(0u32);
    *m.lock() += 1;
    assert_eq!(dynamic::frozen(), Some(ticket_spin));

    // Re-selecting the frozen choice is fine; another one is refused with both names.
    dynamic::select(ticket_spin).unwrap();
    let err = dynamic::select(byte_park).unwrap_err();
    assert_eq!(
        err,
        SelectError::Frozen {
            current: ticket_spin,
            requested: byte_park
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("ticket:spin") && msg.contains("byte:park"),
        "{msg}"
    );

    // The lock works, and really is a ticket lock: is_contended/try_lock through the table.
    let g = m.lock();
    assert!(m.try_lock().is_none());
    assert!(m.is_locked());
    drop(g);
    assert!(!m.is_locked());

    let counter = DynMutex::new(0u64);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..2000 {
                    *counter.lock() += 1;
                }
            });
        }
    });
    assert_eq!(*counter.lock(), 8000);
}

#[test]
fn parse_choices() {
    for c in Choice::all() {
        assert_eq!(c.to_string().parse::<Choice>().unwrap(), c);
    }
    assert_eq!("queued".parse::<Choice>().unwrap(), Choice::DEFAULT);
    assert_eq!(
        " Ticket:FUTEX ".parse::<Choice>().unwrap().backend,
        BackendKind::Futex
    );
    for bad in ["", "mcs", "queued:", "queued:hlt", "ticket:spin:x", ":spin"] {
        let e = bad.parse::<Choice>().unwrap_err().to_string();
        assert!(
            e.contains("ticket, byte, queued") && e.contains("spin, futex, park, auto"),
            "{bad}: {e}"
        );
    }
}
