//! `DynMutex`: one lock type whose algorithm and backend the `PVLOCK` environment variable
//! chooses, once per process, so that a program can be run with every pvlock lock without a
//! rebuild.
//!
//! ```sh
//! cargo run -p pvlock --example dyn_mutex                        # queued:auto, the default
//! PVLOCK=ticket:spin cargo run -p pvlock --example dyn_mutex     # the plain ticket lock
//! PVLOCK=tiket cargo run -p pvlock --example dyn_mutex           # a typo: one line, exit 2
//! ```

use std::process::ExitCode;
use std::thread;

use pvlock::dynamic::{self, Choice};
use pvlock::DynMutex;

fn main() -> ExitCode {
    // Resolve `PVLOCK` at start-up and report a bad value cleanly. Without this call, the first
    // lock operation of any `DynMutex` would panic with the same message instead.
    let choice = match dynamic::init() {
        Ok(choice) => choice,
        Err(e) => {
            eprintln!("dyn_mutex: {e}");
            return ExitCode::from(2);
        }
    };
    println!("PVLOCK chose {choice}");

    let counter = DynMutex::new(0u64);
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10_000 {
                    *counter.lock() += 1;
                }
            });
        }
    });
    assert_eq!(*counter.lock(), 40_000);
    println!("4 threads counted to {}", counter.lock());

    // The choice is frozen now: asking for another one is an error, asking for the same is not.
    assert_eq!(dynamic::frozen(), Some(choice));
    assert!(dynamic::select(choice).is_ok());
    let other: Choice = if choice.algorithm == dynamic::Algorithm::Byte {
        "queued:spin"
    } else {
        "byte:park"
    }
    .parse()
    .expect("a valid choice");
    match dynamic::select(other) {
        Ok(()) => unreachable!("the choice was frozen by the first lock operation"),
        Err(e) => println!("select after the first lock: {e}"),
    }
    ExitCode::SUCCESS
}
