//! MSML time values.
//!
//! RFC 5707 16.1.2, `posDuration.datatype`:
//!
//! ```text
//! (\+)?([0-9]*\.)?[0-9]+(ms|s)
//! ```
//!
//! The unit is mandatory: a bare number is refused, not guessed to be
//! milliseconds. A fraction finer than a nanosecond is cut off.

use std::time::Duration;

/// Reads a `posDuration`; the error is the reason, for a 410 description.
pub fn parse_pos_duration(value: &str) -> Result<Duration, String> {
    let refuse = |why: &str| Err(format!("'{value}' is not a duration ({why}; e.g. 1.5s or 300ms)"));
    let unsigned = value.strip_prefix('+').unwrap_or(value);
    let (number, nanos_per_unit) = if let Some(n) = unsigned.strip_suffix("ms") {
        (n, 1_000_000u64)
    } else if let Some(n) = unsigned.strip_suffix('s') {
        (n, 1_000_000_000u64)
    } else {
        return refuse("the unit s or ms is missing");
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let has_point = number.contains('.');
    if !digits(whole) || !digits(fraction) || (has_point && fraction.is_empty()) {
        return refuse("not a decimal number");
    }
    if whole.is_empty() && fraction.is_empty() {
        return refuse("no digits");
    }
    let whole_units: u64 = if whole.is_empty() {
        0
    } else {
        match whole.parse() {
            Ok(n) => n,
            Err(_) => return refuse("too large"),
        }
    };
    // The fraction in nanoseconds: its first 9 (s) or 6 (ms) digits count.
    let scale_digits = if nanos_per_unit == 1_000_000 { 6 } else { 9 };
    let mut fraction_nanos = 0u64;
    for i in 0..scale_digits {
        let d = fraction.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
        fraction_nanos = fraction_nanos * 10 + d;
    }
    let whole_duration = if nanos_per_unit == 1_000_000 {
        Duration::from_millis(whole_units)
    } else {
        Duration::from_secs(whole_units)
    };
    match whole_duration.checked_add(Duration::from_nanos(fraction_nanos)) {
        Some(d) => Ok(d),
        None => refuse("too large"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_decimals() {
        assert_eq!(parse_pos_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_pos_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_pos_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_pos_duration("+.25s"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_pos_duration("2.5ms"), Ok(Duration::from_micros(2500)));
        assert_eq!(parse_pos_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(
            parse_pos_duration("1.0000000019s"),
            Ok(Duration::from_nanos(1_000_000_001))
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "5",
            "s",
            "ms",
            "-1s",
            "1.s",
            ".s",
            "1,5s",
            "1 s",
            "5m",
            "5sec",
            "1e3ms",
            "++1s",
            "18446744073709551616s",
        ] {
            assert!(parse_pos_duration(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_pos_duration("18446744073709551615.9s").is_ok());
        assert!(parse_pos_duration("18446744073709551615999ms").is_err());
    }
}
