//! Sizes, counts and rates as people read them, for the summary table, the
//! progress bar, the HTML report and the comparison alike.

/// `160`, `4KiB`, `10MiB`: exact binary multiples get a unit, others stay
/// in octets (so that the text parses back to the same number).
pub fn size(octets: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if octets >= unit && octets % unit == 0 {
            return format!("{}{name}", octets / unit);
        }
    }
    octets.to_string()
}

/// `value` divided by the largest of 10^9, 10^6 and 10^3 that its
/// magnitude reaches, with that prefix (`G`, `M`, `k`); smaller values (and
/// `NaN`) as they are, with none.
fn si(value: f64) -> (f64, &'static str) {
    match value.abs() {
        v if v >= 1e9 => (value / 1e9, "G"),
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e3 => (value / 1e3, "k"),
        _ => (value, ""),
    }
}

/// `1.23 M`, `950.5 k`: three significant figures for tables.
pub fn count(value: f64) -> String {
    match si(value) {
        (_, "") => format!("{value:.0}"),
        (scaled, "k") => format!("{scaled:.1} k"),
        (scaled, prefix) => format!("{scaled:.2} {prefix}"),
    }
}

/// Octets per second as MB/s (10^6).
pub fn megabytes(value: f64) -> String {
    format!("{:.1} MB", value / 1e6)
}

/// `v` with `decimals` decimals, or `n/a` when not finite.
pub fn fixed(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "n/a".to_owned()
    }
}

/// A fraction as a percentage with one decimal: `25.0%`; `n/a` when not
/// finite.
pub fn percent(fraction: f64) -> String {
    if fraction.is_finite() {
        format!("{:.1}%", fraction * 100.0)
    } else {
        "n/a".to_owned()
    }
}

/// `v` with two decimals at most, trailing zeros dropped: `2.5`, `20`,
/// `12.35`.
pub fn trimmed(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let mut reversed = Vec::with_capacity(26);
    let mut run = 0;
    for c in n.to_string().chars().rev() {
        if run == 3 {
            reversed.push(',');
            run = 0;
        }
        reversed.push(c);
        run += 1;
    }
    reversed.iter().rev().collect()
}

/// Octets with a binary-prefixed reading: `1,048,576 B (1.0 MiB)`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = None;
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = Some(u);
    }
    match unit {
        Some(u) => format!("{} B ({value:.1} {u})", grouped(n)),
        None => format!("{n} B"),
    }
}

/// A tick label: `0`, `2.5`, `20k`, `1.5M`.
pub fn compact(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_owned();
    }
    let (scaled, suffix) = si(v);
    format!("{}{suffix}", trimmed(scaled))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_and_counts() {
        assert_eq!(super::size(160), "160");
        assert_eq!(super::size(4096), "4KiB");
        assert_eq!(super::size(10 << 20), "10MiB");
        assert_eq!(super::size(1 << 30), "1GiB");
        assert_eq!(super::size(1500), "1500");
        assert_eq!(super::count(950_486.0), "950.5 k");
        assert_eq!(super::count(1_106_125.0), "1.11 M");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(super::grouped(0), "0");
        assert_eq!(super::grouped(1234567), "1,234,567");
        assert_eq!(super::compact(20000.0), "20k");
        assert_eq!(super::compact(2.5), "2.5");
        assert_eq!(super::bytes(1 << 20), "1,048,576 B (1.0 MiB)");
    }
}
