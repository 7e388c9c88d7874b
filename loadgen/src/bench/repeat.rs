//! `bench --repeat N`: the same profile run N times, each run calibrated
//! and measured as a single run is, then one report of them all.
//!
//! One run on a shared machine can be off by more than the regression a
//! gate looks for; the median of several is not dragged by one slow run,
//! and the spread printed beside it tells the user how noisy the machine
//! is. The report's own figures are those of one real run (the median
//! run by message rate) rather than per-field medians, so that its
//! timeline, latency curves and counters stay consistent with each other.

use anyhow::Result;

use super::output::write_reports;
use super::{measure_once, BenchArgs};
use crate::report::Report;
use crate::stats::{self, Stats};
use crate::summary::metric_value;

/// A throughput or p99 metric whose spread is above this fraction of its
/// median is flagged: a 5 % gate on it would trip on noise alone.
pub(super) const NOISY_RELATIVE_SPREAD: f64 = 0.10;

/// Runs the profile `args.repeat` times and writes one report of them.
pub(super) fn run(args: &BenchArgs) -> Result<Report> {
    let total = args.repeat;
    let mut runs = Vec::with_capacity(total as usize);
    for i in 1..=total {
        if !args.quiet {
            eprintln!("run {i}/{total}");
        }
        runs.push(measure_once(args, args.profile()?)?);
    }
    let report = combine(runs);
    write_reports(args, &report)?;
    Ok(report)
}

/// The index of the run whose message rate is the median (the lower
/// middle one for an even count).
pub(super) fn median_run(runs: &[Report]) -> usize {
    assert!(!runs.is_empty(), "a repeat has at least one run");
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| {
        runs[a]
            .throughput
            .messages_per_s
            .total_cmp(&runs[b].throughput.messages_per_s)
            .then(a.cmp(&b))
    });
    order[(runs.len() - 1) / 2]
}

/// One report of `runs`: the median run's figures, every run in `runs`,
/// the statistics of every metric in `stats`, the union of the runs'
/// warnings and one for each noisy throughput or p99 metric. It starts
/// when the first run did (its file name and its place in a trend).
pub(super) fn combine(runs: Vec<Report>) -> Report {
    let median = median_run(&runs);
    let mut report = runs[median].clone();
    report.started_at = runs[0].started_at.clone();
    let mut warnings: Vec<String> = Vec::new();
    for warning in runs.iter().flat_map(|r| &r.warnings) {
        if !warnings.contains(warning) {
            warnings.push(warning.clone());
        }
    }
    report.runs = runs
        .into_iter()
        .map(|mut r| {
            r.runs.clear();
            r.stats.clear();
            r
        })
        .collect();
    report.stats = stats::summarize(&report);
    for (name, s) in &report.stats {
        if is_gated(name) && s.relative_spread() > NOISY_RELATIVE_SPREAD {
            warnings.push(noisy(name, s));
        }
    }
    report.warnings = warnings;
    debug_assert!(report.stats.values().all(|s| s.values.len() <= report.runs.len()));
    report
}

/// The metrics `compare` gates on: throughput and p99 latencies.
fn is_gated(name: &str) -> bool {
    name.starts_with("throughput.") || name.ends_with(".p99_us")
}

fn noisy(name: &str, s: &Stats) -> String {
    format!(
        "noisy: {name} spreads {:.1} % of its median ({} ± {}, {}..{} over {} runs); \
         a regression gate tighter than that trips on this machine's noise",
        s.relative_spread() * 100.0,
        metric_value(s.median, &s.unit),
        metric_value(s.spread, &s.unit),
        metric_value(s.min, &s.unit),
        metric_value(s.max, &s.unit),
        s.values.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trend::sample_report;

    #[test]
    fn the_median_run_by_message_rate_gives_the_figures() {
        let runs = vec![
            sample_report("2024-05-01T10:00:00Z", 300.0, 50),
            sample_report("2024-05-01T10:01:00Z", 100.0, 70),
            sample_report("2024-05-01T10:02:00Z", 200.0, 60),
        ];
        assert_eq!(median_run(&runs), 2);
        let r = combine(runs);
        assert_eq!(r.throughput.messages_per_s, 200.0);
        assert_eq!(r.latency_us["delivered"].p99, 60);
        assert_eq!(r.started_at, "2024-05-01T10:00:00Z", "the first run's start");
        assert_eq!(r.runs.len(), 3);
        let t = &r.stats["throughput.messages_per_s"];
        assert_eq!(t.values, vec![300.0, 100.0, 200.0]);
        assert_eq!(t.median, 200.0);
        assert!(r
            .runs
            .iter()
            .all(|run| run.runs.is_empty() && run.stats.is_empty()));
    }

    #[test]
    fn an_even_count_takes_the_lower_middle_run() {
        let runs: Vec<Report> = [40.0, 10.0, 30.0, 20.0]
            .iter()
            .map(|&rate| sample_report("2024-05-01T10:00:00Z", rate, 50))
            .collect();
        assert_eq!(runs[median_run(&runs)].throughput.messages_per_s, 20.0);
    }

    #[test]
    fn warnings_are_united_once_and_noise_is_flagged() {
        let mut runs = vec![
            sample_report("2024-05-01T10:00:00Z", 100.0, 50),
            sample_report("2024-05-01T10:01:00Z", 150.0, 50),
            sample_report("2024-05-01T10:02:00Z", 200.0, 50),
        ];
        runs[0].warnings = vec!["a".into(), "b".into()];
        runs[2].warnings = vec!["b".into(), "c".into()];
        let r = combine(runs);
        let noisy: Vec<&String> = r.warnings.iter().filter(|w| w.starts_with("noisy: ")).collect();
        assert_eq!(&r.warnings[..3], ["a", "b", "c"]);
        // Rates 100, 150, 200: spread 1.4826 * 50 of 150, about 49 %.
        assert!(
            noisy.iter().any(|w| w.contains("throughput.messages_per_s")),
            "{noisy:?}"
        );
        // The p99 is the same in every run: not noisy.
        assert!(!noisy.iter().any(|w| w.contains("p99")), "{noisy:?}");
    }

    #[test]
    fn steady_runs_raise_no_noise_warning() {
        let runs = vec![
            sample_report("2024-05-01T10:00:00Z", 100.0, 50),
            sample_report("2024-05-01T10:01:00Z", 102.0, 52),
            sample_report("2024-05-01T10:02:00Z", 98.0, 49),
        ];
        let r = combine(runs);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }
}
