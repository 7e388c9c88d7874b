//! The metrics a report is judged and plotted by, and the statistics of a
//! metric over repeated runs: median and a robust spread (the median
//! absolute deviation, scaled to estimate a standard deviation), which one
//! slow run cannot drag the way it drags a mean.
//!
//! One list of metrics ([`metrics`]) serves `bench --repeat` (the summary
//! of its runs), `compare` (the rule per metric) and `trend` (a plot per
//! metric), so the three never disagree on what a metric is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::Report;

/// Which way is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// One metric's value in one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// e.g. `throughput.messages_per_s`, `latency.delivered.p99_us`.
    pub name: String,
    pub value: f64,
    pub better: Better,
    /// `msg/s`, `B/s`, `us`, `` (a fraction or a count).
    pub unit: &'static str,
}

fn metric(name: impl Into<String>, value: f64, better: Better, unit: &'static str) -> Metric {
    Metric {
        name: name.into(),
        value,
        better,
        unit,
    }
}

/// The metrics of one run, in a fixed order: throughput, its fractions of
/// the in-run calibration, p50 and p99 of every latency kind with samples,
/// engine CPU per message, errors.
pub fn metrics(report: &Report) -> Vec<Metric> {
    let mut out = Vec::new();
    let t = &report.throughput;
    if t.messages_per_s > 0.0 {
        out.push(metric(
            "throughput.messages_per_s",
            t.messages_per_s,
            Better::Higher,
            "msg/s",
        ));
    }
    if t.bytes_per_s > 0.0 {
        out.push(metric(
            "throughput.bytes_per_s",
            t.bytes_per_s,
            Better::Higher,
            "B/s",
        ));
    }
    if let Some(f) = &report.fraction_of_calibration {
        if f.messages > 0.0 {
            out.push(metric("fraction.messages", f.messages, Better::Higher, ""));
        }
        if f.bytes > 0.0 {
            out.push(metric("fraction.bytes", f.bytes, Better::Higher, ""));
        }
    }
    for (kind, latency) in &report.latency_us {
        if latency.count == 0 {
            continue;
        }
        out.push(metric(
            format!("latency.{kind}.p50_us"),
            latency.p50 as f64,
            Better::Lower,
            "us",
        ));
        out.push(metric(
            format!("latency.{kind}.p99_us"),
            latency.p99 as f64,
            Better::Lower,
            "us",
        ));
    }
    if t.messages_per_s > 0.0 && report.cpu.engine_cores > 0.0 {
        let us_per_msg = report.cpu.engine_cores * 1e6 / t.messages_per_s;
        out.push(metric(
            "cpu.engine_us_per_message",
            us_per_msg,
            Better::Lower,
            "us",
        ));
    }
    let errors: u64 = report.errors.values().sum();
    out.push(metric("errors.total", errors as f64, Better::Lower, ""));
    out
}

/// The metrics of every run a report holds (its `runs` when repeated, else
/// itself), by name, in run order.
pub fn samples(report: &Report) -> BTreeMap<String, (Better, &'static str, Vec<f64>)> {
    let runs: Vec<&Report> = match report.runs.is_empty() {
        true => vec![report],
        false => report.runs.iter().collect(),
    };
    let mut out: BTreeMap<String, (Better, &'static str, Vec<f64>)> = BTreeMap::new();
    for run in runs {
        for m in metrics(run) {
            out.entry(m.name)
                .or_insert_with(|| (m.better, m.unit, Vec::new()))
                .2
                .push(m.value);
        }
    }
    out
}

/// A metric over several runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub better: Better,
    #[serde(default)]
    pub unit: String,
    /// Every run's value, in run order.
    pub values: Vec<f64>,
    pub median: f64,
    /// The median absolute deviation times 1.4826: a robust estimate of the
    /// standard deviation (0 with one run).
    pub spread: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// `None` for no values (or any that is not finite).
    pub fn of(better: Better, unit: &str, values: &[f64]) -> Option<Stats> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let m = median(values);
        let deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
        Some(Stats {
            better,
            unit: unit.to_string(),
            values: values.to_vec(),
            median: m,
            spread: 1.4826 * median(&deviations),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// The spread as a fraction of the median (0 when the median is 0).
    pub fn relative_spread(&self) -> f64 {
        match self.median == 0.0 {
            true => 0.0,
            false => self.spread / self.median.abs(),
        }
    }
}

/// Every metric's statistics over the report's runs.
pub fn summarize(report: &Report) -> BTreeMap<String, Stats> {
    samples(report)
        .into_iter()
        .filter_map(|(name, (better, unit, values))| Stats::of(better, unit, &values).map(|s| (name, s)))
        .collect()
}

/// The median of finite values (the mean of the middle two for an even
/// count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() % 2 {
        1 => sorted[mid],
        _ => (sorted[mid - 1] + sorted[mid]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_a_spread_one_outlier_cannot_drag() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let s = Stats::of(Better::Higher, "msg/s", &[100.0, 101.0, 99.0, 100.0, 10.0]).unwrap();
        assert_eq!(s.median, 100.0);
        // Deviations 0, 1, 1, 0, 90: their median is 1.
        assert!((s.spread - 1.4826).abs() < 1e-9, "{s:?}");
        assert_eq!((s.min, s.max), (10.0, 101.0));
        let one = Stats::of(Better::Lower, "us", &[7.0]).unwrap();
        assert_eq!((one.median, one.spread), (7.0, 0.0));
        assert!(Stats::of(Better::Lower, "us", &[]).is_none());
        assert!(Stats::of(Better::Lower, "us", &[f64::NAN]).is_none());
    }
}
