//! Sizes and rates as people read them.

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

/// `1.23 M`, `950.5 k`: three significant figures for tables.
pub fn count(value: f64) -> String {
    match value.abs() {
        v if v >= 1e9 => format!("{:.2} G", value / 1e9),
        v if v >= 1e6 => format!("{:.2} M", value / 1e6),
        v if v >= 1e3 => format!("{:.1} k", value / 1e3),
        _ => format!("{value:.0}"),
    }
}

/// Octets per second as MB/s (10^6).
pub fn megabytes(value: f64) -> String {
    format!("{:.1} MB", value / 1e6)
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
}
