//! The comparison as the text table `compare` prints, and the number and
//! cell formats the markdown shares.

use std::fmt;

use crate::stats::Stats;

use super::{Comparison, Row};

/// A value with as many decimals as its size needs: `12345`, `123.4`,
/// `1.23`, `0.352`; whole numbers without any.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let decimals = match v.abs() {
        a if a.fract() == 0.0 || a >= 1000.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 => 2,
        _ => 3,
    };
    format!("{v:.decimals$}")
}

/// `10000 ± 120 (5)`: median, spread and the number of runs.
pub fn side(stats: Option<&Stats>, missing: &str) -> String {
    match stats {
        None => missing.to_owned(),
        Some(s) => format!("{} ± {} ({})", number(s.median), number(s.spread), s.values.len()),
    }
}

/// The base and new cells of a row: `missing` where the new side lacks a
/// base metric, `-` where the base has none.
pub fn sides(r: &Row) -> (String, String) {
    (
        side(r.base_stats.as_ref(), "-"),
        side(r.new_stats.as_ref(), "missing"),
    )
}

pub fn delta(d: Option<f64>) -> String {
    match d {
        Some(d) if d.is_finite() => format!("{:+.1}%", d * 100.0),
        _ => "-".to_owned(),
    }
}

/// `PASS (max regression 5%)` or `FAIL (max regression 5%): 1 regressed`.
pub fn verdict_line(c: &Comparison) -> String {
    let tolerance = super::tolerance_text(c.tolerance);
    match c.passed() {
        true => format!("PASS (max regression {tolerance})"),
        false => format!("FAIL (max regression {tolerance}): {}", c.failure_summary()),
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rule: {}", self.rule())?;
        for s in &self.base_sources {
            writeln!(f, "base: {s}")?;
        }
        for s in &self.new_sources {
            writeln!(f, "new:  {s}")?;
        }
        writeln!(f)?;
        let cells: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                let (base, new) = sides(r);
                [r.metric.clone(), base, new, delta(r.delta), r.verdict.to_string()]
            })
            .collect();
        let header = [
            "metric",
            "base ± spread (n)",
            "new ± spread (n)",
            "change",
            "verdict",
        ]
        .map(str::to_owned);
        let mut widths = [0usize; 5];
        for row in std::iter::once(&header).chain(&cells) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&cells) {
            writeln!(
                f,
                "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
            )?;
        }
        let failing: Vec<&Row> = self.failures().collect();
        if !failing.is_empty() {
            writeln!(f, "\nfailures:")?;
            for r in failing {
                writeln!(f, "  {}: {}", r.metric, r.reason.as_deref().unwrap_or_default())?;
            }
        }
        if !self.profile_differences.is_empty() {
            writeln!(f, "\nprofiles differ (fails: the runs measured different loads):")?;
            for d in &self.profile_differences {
                writeln!(f, "  {d}")?;
            }
        }
        if !self.warnings.is_empty() {
            writeln!(f, "\nwarnings:")?;
            for w in &self.warnings {
                writeln!(f, "  {w}")?;
            }
        }
        if !self.notes.is_empty() {
            writeln!(f, "\nnotes:")?;
            for n in &self.notes {
                writeln!(f, "  {n}")?;
            }
        }
        writeln!(f)?;
        writeln!(f, "{}", verdict_line(self))
    }
}
