//! What a run leaves behind: the JSON and HTML reports, named by the UTC
//! time the run started, and the summary printed at its end.

use anyhow::{Context, Result};

use super::BenchArgs;
use crate::report::Report;
use crate::summary;

pub(super) fn write_reports(args: &BenchArgs, report: &Report) -> Result<()> {
    let stamp = report
        .started_at
        .replace([':', '-'], "")
        .replace('T', "-")
        .trim_end_matches('Z')
        .to_string();
    let json = args
        .json
        .clone()
        .unwrap_or_else(|| args.out_dir.join(format!("msrp-bench-{stamp}.json")));
    let html = args
        .html
        .clone()
        .unwrap_or_else(|| args.out_dir.join(format!("msrp-bench-{stamp}.html")));
    std::fs::write(&json, serde_json::to_vec_pretty(report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    std::fs::write(&html, crate::html::render(report))
        .with_context(|| format!("writing {}", html.display()))?;
    print!("{}", summary::table(report));
    println!("reports: {} {}", json.display(), html.display());
    Ok(())
}

/// `2026-11-26T15:04:05Z`, from the system clock (no time-zone crate).
pub(super) fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        let now = super::utc_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }
}
