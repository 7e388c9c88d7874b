//! Sizes and durations on the command line and in the config file.

use std::time::Duration;

/// A number and the unit after it; `kind` and `examples` name what was
/// expected in the error.
fn split_number<'a>(text: &'a str, kind: &str, examples: &str) -> Result<(u64, &'a str), String> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let number = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a {kind} (examples: {examples})"))?;
    Ok((number, unit.trim()))
}

/// `65536`, `64KiB`, `16MiB`, `1GiB` (also `k`, `M`, `G`; all binary
/// multiples).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = split_number(text, "size", "65536, 64KiB, 16MiB, 1GiB")?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use KiB, MiB, GiB)")),
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// `30s`, `500ms`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = split_number(text, "duration", "30s, 500ms, 2m")?;
    let millis = match unit {
        "" | "s" => 1000,
        "ms" => 1,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s, m, h)")),
    };
    number
        .checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// CPU ids, as `--cpus` gives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// `3`, `0-3`, `1,3,5-7`: the kernel's cpulist format (`taskset -c`).
pub fn parse_cpu_list(text: &str) -> Result<CpuList, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim) {
        let bad = || format!("{part:?} in {text:?} is not a CPU or a range like 2-5");
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            ),
            None => {
                let cpu = part.parse().map_err(|_| bad())?;
                (cpu, cpu)
            }
        };
        if first > last {
            return Err(bad());
        }
        for cpu in first..=last {
            if !cpus.contains(&cpu) {
                cpus.push(cpu);
            }
        }
    }
    if cpus.is_empty() {
        return Err("the CPU list is empty".into());
    }
    Ok(CpuList(cpus))
}

#[cfg(test)]
mod tests {
    use super::{parse_cpu_list, parse_duration, parse_size, CpuList};
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("2d").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("3"), Ok(CpuList(vec![3])));
        assert_eq!(parse_cpu_list("1,3,5-7"), Ok(CpuList(vec![1, 3, 5, 6, 7])));
        assert_eq!(parse_cpu_list("0-1,1"), Ok(CpuList(vec![0, 1])));
        assert!(parse_cpu_list("5-2").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("").is_err());
    }
}
