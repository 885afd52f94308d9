//! Basic use of pvlock's `Mutex`, `RwLock` and `Condvar`: the same API as `parking_lot`'s, since
//! all three are `lock_api` types.
//!
//! ```sh
//! cargo run -p pvlock --example basic
//! ```

use std::sync::Arc;
use std::thread;

use pvlock::{Condvar, Mutex, RwLock};

fn main() {
    // A counter shared by four threads. `lock()` returns a guard; the lock is released when the
    // guard goes out of scope. There is no poisoning: `lock()` returns the guard, not a `Result`.
    let counter = Mutex::new(0u64);
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
    println!("Mutex:   4 threads counted to {}", counter.lock());

    // `try_lock` never waits.
    let guard = counter.lock();
    assert!(counter.try_lock().is_none());
    drop(guard);
    assert!(counter.try_lock().is_some());

    // A reader-writer lock: many readers at once, or one writer.
    let config = RwLock::new(vec![String::from("a")]);
    thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                let names = config.read();
                assert!(!names.is_empty());
            });
        }
        s.spawn(|| config.write().push(String::from("b")));
    });
    println!("RwLock:  {:?}", *config.read());

    // A condition variable: a producer hands items to a consumer through a queue.
    let shared = Arc::new((Mutex::new(Vec::<u32>::new()), Condvar::new()));
    let consumer = {
        let shared = Arc::clone(&shared);
        thread::spawn(move || {
            let (queue, ready) = &*shared;
            let mut received = Vec::new();
            let mut items = queue.lock();
            while received.len() < 5 {
                // Sleeps until notified; the mutex is released while it waits.
                ready.wait_while(&mut items, |items| items.is_empty());
                received.append(&mut items);
            }
            received
        })
    };
    for i in 0..5 {
        let (queue, ready) = &*shared;
        queue.lock().push(i);
        ready.notify_one();
    }
    let received = consumer.join().expect("the consumer panicked");
    assert_eq!(received, [0, 1, 2, 3, 4]);
    println!("Condvar: the consumer received {received:?}");
}
