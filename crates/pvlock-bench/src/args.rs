//! Value parsers shared by the subcommands, for clap's `value_parser`: each returns a one-line
//! message on bad input, which `main` prefixes with the option's name.

use std::time::Duration;

/// The duration grammar, for the help texts.
pub const DURATIONS: &str = "\
Durations (TIME): a number and a unit, e.g. 500ms, 1.5s, 2m; units ns, us (or µs), ms, s (sec),
  m (min), h; several add up (1m 30s). A bare number such as 400 is rejected: write 400ms or 400s.
";

/// Durations: humantime's grammar (`500ms`, `2s`, `1.5s`, `100us`, `2m`, `1h 30m`), within
/// `min..=max`. A bare number is rejected: it would be ambiguous (seconds? milliseconds?).
pub fn duration(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |v: &str| {
        let range = format!(
            "expected a duration from {} to {}, e.g. 500ms, 2s, 1.5s or 2m",
            show(min),
            show(max)
        );
        let s = v.trim();
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(format!(
                "{v:?} has no unit: {range} (a bare number is not accepted)"
            ));
        }
        match humantime::parse_duration(s) {
            Ok(d) if d >= min && d <= max => Ok(d),
            Ok(_) => Err(format!("{v:?} is out of range: {range}")),
            Err(_) => Err(format!("{v:?} is not a duration: {range}")),
        }
    }
}

/// `10s`, `500ms`, `24h`, `1500ms`: the largest unit that shows `d` exactly as a whole number
/// (a spelling [`duration`] accepts).
pub fn show(d: Duration) -> String {
    let ns = d.as_nanos();
    for (unit, per) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if ns.is_multiple_of(per) && ns > 0 {
            return format!("{}{unit}", ns / per);
        }
    }
    format!("{ns}ns")
}

/// A whole number within `min..=max`.
pub fn number<T>(min: T, max: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + Send + Sync + 'static,
{
    move |v: &str| match v.trim().parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!(
            "expected a whole number from {min} to {max}, got {v:?}"
        )),
    }
}

/// A comma list of names from `valid` (`all` = every one), duplicates dropped, in the given order.
pub fn names(v: &str, valid: &[&'static str]) -> Result<Vec<&'static str>, String> {
    if v.trim() == "all" {
        return Ok(valid.to_vec());
    }
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim) {
        match valid.iter().find(|&&n| n == item) {
            Some(&n) if !out.contains(&n) => out.push(n),
            Some(_) => {}
            None if item.is_empty() => {
                return Err(format!("empty name in {v:?}; valid: {}", valid.join(", ")))
            }
            None => {
                return Err(format!(
                    "unknown name {item:?}; valid: {} (or all)",
                    valid.join(", ")
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn durations_need_a_unit() {
        let p = duration(MS, Duration::from_secs(600));
        assert_eq!(p("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(p("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(p("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(p("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(p(" 2s "), Ok(Duration::from_secs(2)));
        for bare in ["5", "1.5", "0"] {
            let e = p(bare).unwrap_err();
            assert!(e.contains("has no unit"), "{bare}: {e}");
        }
        for bad in ["", "soon", "5 fortnights", "-1s", "1e3ms"] {
            assert!(p(bad).unwrap_err().contains("not a duration"), "{bad}");
        }
        for out in ["0s", "100us", "11m", "3h"] {
            assert!(p(out).unwrap_err().contains("out of range"), "{out}");
        }
    }

    #[test]
    fn shown_durations() {
        assert_eq!(show(Duration::from_secs(10)), "10s");
        assert_eq!(show(Duration::from_millis(500)), "500ms");
        assert_eq!(show(Duration::from_secs(24 * 3600)), "24h");
        assert_eq!(show(Duration::from_secs(120)), "2m");
        assert_eq!(show(Duration::ZERO), "0ns");
        assert_eq!(show(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn name_lists() {
        let valid = ["a", "b", "c"];
        assert_eq!(names("b,a,b", &valid), Ok(vec!["b", "a"]));
        assert_eq!(names("all", &valid), Ok(valid.to_vec()));
        assert!(names("a,,b", &valid).unwrap_err().contains("empty name"));
        let e = names("d", &valid).unwrap_err();
        assert!(e.contains("\"d\"") && e.contains("a, b, c"), "{e}");
    }
}
