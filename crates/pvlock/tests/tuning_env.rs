//! Tuning values from the environment: a value out of range is clamped, one that is not a number
//! falls back to the default, and either way `tuning::check_env` says so and which value is used.
//! (One test per file: the variables are read once per process.)

#![cfg(not(loom))]

use std::time::Duration;

use pvlock::tuning;

#[test]
fn out_of_range_and_malformed_values_are_reported_and_bounded() {
    // 2^64 - 1 ns would be a spin of 584 years: clamped to the 10 ms maximum.
    std::env::set_var("PVLOCK_SPIN_NS", "18446744073709551615");
    std::env::set_var("PVLOCK_STEALS", "1");
    let err = tuning::check_env().unwrap_err();
    assert_eq!(err.variable(), "PVLOCK_SPIN_NS");
    assert_eq!(err.used(), 10_000_000);
    let msg = err.to_string();
    assert!(
        msg.contains("18446744073709551615") && msg.contains("10000000"),
        "{msg}"
    );
    // The budget in force (read at first use) is the clamped one: at most 10 ms, give or take the
    // conversion to spin iterations.
    let spin = tuning::spin_budget();
    assert!(
        spin <= Duration::from_micros(10_100) && spin >= Duration::from_micros(9_000),
        "{spin:?}"
    );

    std::env::remove_var("PVLOCK_SPIN_NS");
    let err = tuning::check_env().unwrap_err();
    assert_eq!(err.variable(), "PVLOCK_STEALS");
    assert_eq!(err.used(), 256);
    // A steal budget of 1 would make every crowded acquisition wait for a sleeping thread.
    assert_eq!(tuning::steal_budget(), 256);

    // A value one past u64 is not a number at all: the default, and said so.
    std::env::set_var("PVLOCK_STEALS", "18446744073709551616");
    let err = tuning::check_env().unwrap_err();
    assert_eq!(err.used(), 4096);
    assert!(err.to_string().contains("PVLOCK_STEALS"), "{err}");

    std::env::set_var("PVLOCK_STEALS", " 8192 ");
    assert_eq!(tuning::check_env(), Ok(()));

    // The setters clamp likewise and return what is in force.
    assert_eq!(tuning::set_steal_budget(0), 256);
    assert_eq!(tuning::set_steal_budget(u32::MAX), 1 << 20);
    assert_eq!(tuning::steal_budget(), 1 << 20);
    assert_eq!(
        tuning::set_spin_budget(Duration::ZERO),
        tuning::spin_budget()
    );
    assert!(tuning::spin_budget() < Duration::from_micros(1));
    let long = tuning::set_spin_budget(Duration::from_secs(3600));
    assert!(long <= Duration::from_micros(10_100), "{long:?}");

    // The locks still work with the extremes in force.
    tuning::set_spin_budget(Duration::ZERO);
    let m = pvlock::Mutex::new(0u64);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..2000 {
                    *m.lock() += 1;
                }
            });
        }
    });
    assert_eq!(*m.lock(), 8000);
}
