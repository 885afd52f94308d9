//! `DynMutex` selection by the `PVLOCK` environment variable, including an invalid value.
//! (One test per file: the choice is process-wide.)

#![cfg(not(loom))]

use pvlock::dynamic::{self, Algorithm, BackendKind, Choice};
use pvlock::DynMutex;

#[test]
fn invalid_env_is_an_error_then_valid_env_is_used() {
    std::env::set_var("PVLOCK", "qspinlock:halt");
    let err = dynamic::init().unwrap_err().to_string();
    assert!(
        err.contains("qspinlock:halt") && err.contains("ticket, byte, queued"),
        "{err}"
    );
    assert_eq!(
        dynamic::frozen(),
        None,
        "a failed init must not freeze anything"
    );

    // Without init, the first lock operation fails loudly rather than running another lock.
    let m = DynMutex::new(());
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(m.lock())))
        .expect_err("lock with an invalid PVLOCK must panic");
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        text.contains("PVLOCK") && text.contains("expected"),
        "{text}"
    );

    std::env::set_var("PVLOCK", "byte:futex");
    let want = Choice {
        algorithm: Algorithm::Byte,
        backend: BackendKind::Futex,
    };
    assert_eq!(dynamic::init().unwrap(), want);
    assert_eq!(dynamic::frozen(), Some(want));
    // Frozen: the environment is not read again.
    std::env::set_var("PVLOCK", "ticket:spin");
    assert_eq!(dynamic::init().unwrap(), want);

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
