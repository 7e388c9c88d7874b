//! Two reports to a pass/fail verdict: the performance-regression gate.
//!
//! # Use as a CI performance gate
//!
//! 1. Keep a baseline report from the same machine class as CI runs on
//!    (committed to the repository, or the artifact of the last good run
//!    on the main branch).
//! 2. Run the same profile as the baseline, e.g.
//!    `msrp-loadgen bench --scenario sms --duration 10s --json new.json`
//!    (whatever flags produced the baseline: a different load is refused).
//! 3. `msrp-loadgen compare base.json new.json --max-regression 5%`
//!
//! Exit status: 0 passed, 1 regressed, 2 usage or I/O error (a file
//! unreadable or not a report, report versions differ, a bad tolerance).
//!
//! On noisy shared machines compare medians of several runs, or loosen the
//! tolerance (10-20%); always compare runs from the same machine class, since
//! the gate cannot tell a slower host from slower code (it prints a note when
//! the hosts differ).
//!
//! # Rules
//!
//! With tolerance `tol`:
//! - `throughput.messages_per_s`, `throughput.bytes_per_s` regress when
//!   `new < base * (1 - tol)`; skipped when 0 in the base.
//! - For each latency kind in the base: `p99` regresses when
//!   `new > base * (1 + tol)`; skipped when the base has no samples. A kind
//!   the new run lacks (or has no samples for) fails: the run lost a
//!   measurement. `p50` is shown for information and never fails.
//! - Errors (the sum of `errors`) fail when the base had none and the new
//!   run has some.
//! - The profiles must be identical: a comparison of different loads says
//!   nothing about the code, so a difference fails and is listed.
//! - Differing hosts, tools or targets, and a saturated load side, are
//!   printed as notes only.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use anyhow::{bail, Context};

use crate::report::Report;

/// Prints the comparison of the reports at `base` and `new`; `Ok(false)`
/// when `new` regressed beyond `max_regression` (see [`parse_tolerance`]).
pub fn run(base: &Path, new: &Path, max_regression: &str) -> anyhow::Result<bool> {
    let tolerance = parse_tolerance(max_regression)?;
    let base_report = read_report(base)?;
    let new_report = read_report(new)?;
    if base_report.version != new_report.version {
        bail!(
            "report versions differ: {} is version {}, {} is version {}; \
             record the baseline again with the same msrp-loadgen",
            base.display(),
            base_report.version,
            new.display(),
            new_report.version
        );
    }
    let comparison = compare(&base_report, &new_report, tolerance);
    println!(
        "base: {} ({}, {})",
        base.display(),
        base_report.tool,
        base_report.started_at
    );
    println!(
        "new:  {} ({}, {})",
        new.display(),
        new_report.tool,
        new_report.started_at
    );
    println!();
    print!("{comparison}");
    Ok(comparison.passed())
}

/// Reads and parses one report; the error names the file.
pub fn read_report(path: &Path) -> anyhow::Result<Report> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read report {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid msrp-loadgen report", path.display()))
}

/// The allowed regression as a fraction (`0.05` for 5%).
///
/// Accepts a percentage (`"5%"`, `"5 %"`, `"2.5%"`) or a plain fraction
/// (`"0.05"`). A plain number above 1 is refused rather than guessed at:
/// `"5"` could mean 5% or 500%. Negative values and 100% or more are refused.
pub fn parse_tolerance(s: &str) -> anyhow::Result<f64> {
    let trimmed = s.trim();
    let (number, is_percent) = match trimmed.strip_suffix('%') {
        Some(n) => (n.trim_end(), true),
        None => (trimmed, false),
    };
    let value: f64 = number.parse().map_err(|_| {
        anyhow::anyhow!("tolerance {s:?}: expected a percentage (\"5%\") or a fraction (\"0.05\")")
    })?;
    if !value.is_finite() {
        bail!("tolerance {s:?} is not a finite number");
    }
    let fraction = if is_percent {
        value / 100.0
    } else if value <= 1.0 {
        value
    } else {
        bail!(
            "tolerance {s:?}: a plain number is a fraction (0.05 = 5%); write \"{value}%\" for a percentage"
        );
    };
    if fraction < 0.0 {
        bail!("tolerance {s:?} is negative");
    }
    if fraction >= 1.0 {
        bail!("tolerance {s:?} is 100% or more: nothing could fail");
    }
    Ok(fraction)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the tolerance.
    Ok,
    /// Worse than the tolerance allows, or missing: fails the gate.
    Regressed,
    /// Better by more than the tolerance.
    Improved,
    /// Not comparable (0 or no samples in the base).
    Skipped,
    /// Shown for context; never fails the gate.
    Info,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Verdict::Ok => "ok",
            Verdict::Regressed => "REGRESSED",
            Verdict::Improved => "improved",
            Verdict::Skipped => "skipped",
            Verdict::Info => "info",
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The report field, as a JSON path: `latency_us.delivered.p99`.
    pub metric: String,
    pub base: Option<f64>,
    /// `None`: the new run lacks the measurement.
    pub new: Option<f64>,
    /// `(new - base) / base`; `None` when the base is 0 or a side is missing.
    pub delta: Option<f64>,
    pub verdict: Verdict,
}

#[derive(Clone, Debug)]
pub struct Comparison {
    /// The allowed regression, as a fraction.
    pub tolerance: f64,
    pub rows: Vec<Row>,
    /// `path: base -> new` for each profile value that differs; any fails
    /// the gate.
    pub profile_differences: Vec<String>,
    /// Context that does not decide the verdict.
    pub notes: Vec<String>,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.profile_differences.is_empty() && self.regressions().next().is_none()
    }

    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict == Verdict::Regressed)
    }
}

/// Where higher is better (throughput) or lower is (latency).
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

fn gated(metric: String, base: f64, new: f64, better: Better, tolerance: f64) -> Row {
    if base == 0.0 || !base.is_finite() {
        return Row {
            metric,
            base: Some(base),
            new: Some(new),
            delta: None,
            verdict: Verdict::Skipped,
        };
    }
    let worse = match better {
        Better::Higher => new < base * (1.0 - tolerance),
        Better::Lower => new > base * (1.0 + tolerance),
    };
    let better = match better {
        Better::Higher => new > base * (1.0 + tolerance),
        Better::Lower => new < base * (1.0 - tolerance),
    };
    let verdict = if worse || !new.is_finite() {
        Verdict::Regressed
    } else if better {
        Verdict::Improved
    } else {
        Verdict::Ok
    };
    Row {
        metric,
        base: Some(base),
        new: Some(new),
        delta: Some((new - base) / base),
        verdict,
    }
}

fn info(metric: String, base: f64, new: f64) -> Row {
    Row {
        metric,
        base: Some(base),
        new: Some(new),
        delta: (base != 0.0).then(|| (new - base) / base),
        verdict: Verdict::Info,
    }
}

/// Compares `new` against `base` with `tolerance` (a fraction, see
/// [`parse_tolerance`]) by the rules in the module doc.
pub fn compare(base: &Report, new: &Report, tolerance: f64) -> Comparison {
    let mut rows = vec![
        gated(
            "throughput.messages_per_s".to_owned(),
            base.throughput.messages_per_s,
            new.throughput.messages_per_s,
            Better::Higher,
            tolerance,
        ),
        gated(
            "throughput.bytes_per_s".to_owned(),
            base.throughput.bytes_per_s,
            new.throughput.bytes_per_s,
            Better::Higher,
            tolerance,
        ),
    ];
    let mut notes = Vec::new();

    for (kind, b) in &base.latency_us {
        let p50 = format!("latency_us.{kind}.p50");
        let p99 = format!("latency_us.{kind}.p99");
        match new.latency_us.get(kind) {
            Some(n) if n.count > 0 || b.count == 0 => {
                rows.push(info(p50, b.p50 as f64, n.p50 as f64));
                if b.count == 0 {
                    rows.push(Row {
                        metric: p99,
                        base: Some(b.p99 as f64),
                        new: Some(n.p99 as f64),
                        delta: None,
                        verdict: Verdict::Skipped,
                    });
                } else {
                    rows.push(gated(p99, b.p99 as f64, n.p99 as f64, Better::Lower, tolerance));
                }
            }
            lost => {
                let why = if lost.is_some() {
                    "has no samples"
                } else {
                    "is missing"
                };
                notes.push(format!(
                    "latency kind {kind:?} {why} in the new run: a measurement was lost"
                ));
                rows.push(Row {
                    metric: p99,
                    base: Some(b.p99 as f64),
                    new: None,
                    delta: None,
                    verdict: Verdict::Regressed,
                });
            }
        }
    }
    for kind in new.latency_us.keys() {
        if !base.latency_us.contains_key(kind) {
            notes.push(format!("latency kind {kind:?} is new: no baseline to compare"));
        }
    }

    let base_errors = total(base);
    let new_errors = total(new);
    let verdict = match (base_errors, new_errors) {
        (0, 0) => Verdict::Ok,
        (0, _) => Verdict::Regressed,
        (_, 0) => Verdict::Improved,
        _ => Verdict::Info,
    };
    rows.push(Row {
        metric: "errors (total)".to_owned(),
        base: Some(base_errors as f64),
        new: Some(new_errors as f64),
        delta: (base_errors > 0).then(|| (new_errors as f64 - base_errors as f64) / base_errors as f64),
        verdict,
    });

    let mut profile_differences = Vec::new();
    diff_json(
        "profile",
        Some(&base.profile),
        Some(&new.profile),
        &mut profile_differences,
    );

    if let Some(note) = host_note(base, new) {
        notes.push(note);
    }
    if base.tool != new.tool {
        notes.push(format!("tools differ: {} -> {}", base.tool, new.tool));
    }
    if base.target != new.target {
        notes.push(format!("targets differ: {} -> {}", base.target, new.target));
    }
    for (which, r) in [("base", base), ("new", new)] {
        if r.cpu.load_saturated {
            notes.push(format!(
                "the {which} run's load side saturated: its figures measure the load generator"
            ));
        }
    }

    Comparison {
        tolerance,
        rows,
        profile_differences,
        notes,
    }
}

fn total(r: &Report) -> u64 {
    r.errors.values().fold(0, |a, &b| a.saturating_add(b))
}

fn host_note(base: &Report, new: &Report) -> Option<String> {
    let (b, n) = (&base.host, &new.host);
    let same = b.hostname == n.hostname
        && b.kernel == n.kernel
        && b.cpu_model == n.cpu_model
        && b.cpus == n.cpus
        && b.memory_bytes == n.memory_bytes;
    if same {
        return None;
    }
    let describe = |h: &crate::report::Host| {
        format!(
            "{} ({}, {} CPUs, {:.1} GiB, kernel {})",
            h.hostname,
            h.cpu_model,
            h.cpus,
            h.memory_bytes as f64 / f64::from(1u32 << 30),
            h.kernel
        )
    };
    Some(format!(
        "hosts differ: base {} / new {}",
        describe(b),
        describe(n)
    ))
}

/// Appends `path: base -> new` for each leaf where `a` and `b` differ.
fn diff_json(
    path: &str,
    a: Option<&serde_json::Value>,
    b: Option<&serde_json::Value>,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                diff_json(&format!("{path}.{key}"), x.get(key), y.get(key), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (xi, yi)) in x.iter().zip(y).enumerate() {
                diff_json(&format!("{path}[{i}]"), Some(xi), Some(yi), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => {
            let show = |v: Option<&Value>| v.map_or_else(|| "(absent)".to_owned(), Value::to_string);
            out.push(format!("{path}: {} -> {}", show(a), show(b)));
        }
    }
}

/// Both values of a row with the same decimals: none when both are whole.
fn values(r: &Row) -> (String, String) {
    let whole = |v: Option<f64>| v.is_none_or(|v| v.fract() == 0.0 && v.abs() < 1e15);
    let decimals = if whole(r.base) && whole(r.new) { 0 } else { 1 };
    let show = |v: Option<f64>| match v {
        None => "missing".to_owned(),
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        Some(v) => v.to_string(),
    };
    (show(r.base), show(r.new))
}

fn delta(d: Option<f64>) -> String {
    match d {
        Some(d) if d.is_finite() => format!("{:+.1}%", d * 100.0),
        _ => "-".to_owned(),
    }
}

fn tolerance_text(t: f64) -> String {
    format!("{}%", crate::units::trimmed(t * 100.0))
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                let (base, new) = values(r);
                [r.metric.clone(), base, new, delta(r.delta), r.verdict.to_string()]
            })
            .collect();
        let header = ["metric", "base", "new", "delta", "verdict"].map(str::to_owned);
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
        if !self.profile_differences.is_empty() {
            writeln!(f, "\nprofiles differ (fails: the runs measured different loads):")?;
            for d in &self.profile_differences {
                writeln!(f, "  {d}")?;
            }
        }
        if !self.notes.is_empty() {
            writeln!(f, "\nnotes:")?;
            for n in &self.notes {
                writeln!(f, "  {n}")?;
            }
        }
        let tolerance = tolerance_text(self.tolerance);
        writeln!(f)?;
        if self.passed() {
            writeln!(f, "PASS (max regression {tolerance})")
        } else {
            let regressed = self.regressions().count();
            let mut why = Vec::new();
            if regressed > 0 {
                why.push(format!("{regressed} regressed"));
            }
            if !self.profile_differences.is_empty() {
                why.push("profiles differ".to_owned());
            }
            writeln!(f, "FAIL (max regression {tolerance}): {}", why.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{
        Cpu, Host, Latency, Rss, Sessions, Throughput, LATENCY_CHUNK, LATENCY_DELIVERED, REPORT_VERSION,
    };
    use std::collections::BTreeMap;

    fn latency(p50: u64, p99: u64) -> Latency {
        Latency {
            count: 1000,
            min: 1,
            mean: p50 as f64,
            p50,
            p90: p99,
            p99,
            p999: p99,
            max: p99,
            curve: vec![(0.0, 1), (100.0, p99)],
        }
    }

    /// A report with `messages_per_s`, a tenth of it as kB/s, and the
    /// kinds `chunk_200` and `delivered` with p99 `chunk_p99` and 1000 µs.
    fn report(messages_per_s: f64, chunk_p99: u64) -> Report {
        Report {
            version: REPORT_VERSION,
            tool: "msrp-loadgen 0.1.0".to_owned(),
            started_at: "2024-05-01T10:00:00Z".to_owned(),
            host: Host {
                hostname: "ci-1".to_owned(),
                kernel: "6.8".to_owned(),
                cpu_model: "cpu".to_owned(),
                cpus: 8,
                memory_bytes: 16 << 30,
            },
            profile: serde_json::json!({"scenario": "sms", "sessions": 100}),
            target: "embedded".to_owned(),
            calibration: None,
            fraction_of_calibration: None,
            duration_s: 10.0,
            throughput: Throughput {
                messages_per_s,
                bytes_per_s: messages_per_s * 100.0,
                messages: (messages_per_s * 10.0) as u64,
                bytes: (messages_per_s * 1000.0) as u64,
                messages_received_by_peer: (messages_per_s * 10.0) as u64,
            },
            timeline: vec![],
            latency_us: BTreeMap::from([
                (LATENCY_CHUNK.to_owned(), latency(chunk_p99 / 2, chunk_p99)),
                (LATENCY_DELIVERED.to_owned(), latency(400, 1000)),
            ]),
            errors: BTreeMap::new(),
            sessions: Sessions::default(),
            rss_bytes: Rss::default(),
            cpu: Cpu::default(),
            mixed: None,
            subscriber: None,
            sip: None,
            rest: None,
            warnings: vec![],
            label: None,
            commit: None,
            runs: Vec::new(),
            stats: Default::default(),
            sweep: None,
        }
    }

    fn verdict(c: &Comparison, metric: &str) -> Verdict {
        c.rows
            .iter()
            .find(|r| r.metric == metric)
            .unwrap_or_else(|| panic!("no row {metric}"))
            .verdict
    }

    #[test]
    fn tolerance_accepts_percent_and_fraction() {
        for (text, want) in [
            ("5%", 0.05),
            ("5 %", 0.05),
            (" 2.5% ", 0.025),
            ("0.05", 0.05),
            ("0", 0.0),
            ("0%", 0.0),
            ("99.9%", 0.999),
        ] {
            let got = parse_tolerance(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!((got - want).abs() < 1e-12, "{text}: {got}");
        }
    }

    #[test]
    fn tolerance_refuses_ambiguous_negative_and_whole() {
        for text in [
            "5", "-5%", "-0.1", "100%", "150%", "1", "1.0", "", "%", "five", "5%%", "inf%", "NaN",
        ] {
            assert!(parse_tolerance(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn within_tolerance_passes() {
        let c = compare(&report(10_000.0, 100), &report(9_700.0, 104), 0.05);
        assert!(c.passed(), "{c}");
        assert_eq!(verdict(&c, "throughput.messages_per_s"), Verdict::Ok);
        assert_eq!(verdict(&c, "latency_us.chunk_200.p99"), Verdict::Ok);
        assert_eq!(verdict(&c, "latency_us.chunk_200.p50"), Verdict::Info);
        assert!(c.to_string().ends_with("PASS (max regression 5%)\n"));
    }

    #[test]
    fn improvement_passes() {
        let c = compare(&report(10_000.0, 100), &report(20_000.0, 50), 0.05);
        assert!(c.passed(), "{c}");
        assert_eq!(verdict(&c, "throughput.messages_per_s"), Verdict::Improved);
        assert_eq!(verdict(&c, "latency_us.chunk_200.p99"), Verdict::Improved);
    }

    #[test]
    fn throughput_drop_fails() {
        let c = compare(&report(10_000.0, 100), &report(9_000.0, 100), 0.05);
        assert!(!c.passed());
        assert_eq!(verdict(&c, "throughput.messages_per_s"), Verdict::Regressed);
        assert_eq!(verdict(&c, "throughput.bytes_per_s"), Verdict::Regressed);
        let text = c.to_string();
        assert!(text.contains("-10.0%"), "{text}");
        assert!(text.contains("FAIL (max regression 5%): 2 regressed"), "{text}");
    }

    #[test]
    fn p99_growth_fails_and_p50_never_does() {
        let base = report(10_000.0, 100);
        let mut new = report(10_000.0, 120);
        new.latency_us
            .get_mut(LATENCY_DELIVERED)
            .expect("helper adds delivered")
            .p50 = 4000;
        let c = compare(&base, &new, 0.05);
        assert!(!c.passed());
        assert_eq!(verdict(&c, "latency_us.chunk_200.p99"), Verdict::Regressed);
        assert_eq!(verdict(&c, "latency_us.delivered.p50"), Verdict::Info);
        assert_eq!(c.regressions().count(), 1);
    }

    #[test]
    fn missing_or_empty_kind_fails() {
        let base = report(10_000.0, 100);
        let mut new = report(10_000.0, 100);
        new.latency_us.remove(LATENCY_DELIVERED);
        let c = compare(&base, &new, 0.05);
        assert!(!c.passed());
        assert_eq!(verdict(&c, "latency_us.delivered.p99"), Verdict::Regressed);
        assert!(c.to_string().contains("missing"));

        let mut new = report(10_000.0, 100);
        let delivered = new
            .latency_us
            .get_mut(LATENCY_DELIVERED)
            .expect("helper adds delivered");
        *delivered = Latency::default();
        assert!(!compare(&base, &new, 0.05).passed());
    }

    #[test]
    fn profile_mismatch_fails() {
        let base = report(10_000.0, 100);
        let mut new = report(10_000.0, 100);
        new.profile = serde_json::json!({"scenario": "sms", "sessions": 200});
        let c = compare(&base, &new, 0.05);
        assert!(!c.passed());
        assert_eq!(c.regressions().count(), 0);
        assert_eq!(c.profile_differences, ["profile.sessions: 100 -> 200"]);
        assert!(c
            .to_string()
            .contains("FAIL (max regression 5%): profiles differ"));
    }

    #[test]
    fn zero_base_metrics_are_skipped() {
        let mut base = report(10_000.0, 100);
        base.throughput.bytes_per_s = 0.0;
        base.latency_us
            .get_mut(LATENCY_CHUNK)
            .expect("helper adds chunk")
            .count = 0;
        let new = report(10_000.0, 5000);
        let c = compare(&base, &new, 0.05);
        assert!(c.passed(), "{c}");
        assert_eq!(verdict(&c, "throughput.bytes_per_s"), Verdict::Skipped);
        assert_eq!(verdict(&c, "latency_us.chunk_200.p99"), Verdict::Skipped);
    }

    #[test]
    fn new_errors_fail_only_when_the_base_had_none() {
        let base = report(10_000.0, 100);
        let mut new = report(10_000.0, 100);
        new.errors.insert("408".to_owned(), 3);
        assert!(!compare(&base, &new, 0.05).passed());
        let mut base = base;
        base.errors.insert("local".to_owned(), 1);
        let c = compare(&base, &new, 0.05);
        assert!(c.passed(), "{c}");
        assert_eq!(verdict(&c, "errors (total)"), Verdict::Info);
    }

    #[test]
    fn host_difference_is_a_note() {
        let base = report(10_000.0, 100);
        let mut new = report(10_000.0, 100);
        new.host.hostname = "ci-2".to_owned();
        let c = compare(&base, &new, 0.05);
        assert!(c.passed());
        assert!(c.notes.iter().any(|n| n.starts_with("hosts differ")));
    }

    #[test]
    fn run_reads_files_and_names_bad_ones() {
        let dir = std::env::temp_dir().join(format!("msrp-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let base = dir.join("base.json");
        let new = dir.join("new.json");
        let bad = dir.join("bad.json");
        let write = |path: &Path, r: &Report| {
            std::fs::write(path, serde_json::to_string(r).expect("serialize")).expect("write");
        };
        write(&base, &report(10_000.0, 100));
        write(&new, &report(9_000.0, 100));
        std::fs::write(&bad, "{not json").expect("write");

        assert!(run(&base, &base, "5%").expect("same report"));
        assert!(!run(&base, &new, "5%").expect("regressed"));
        assert!(run(&base, &new, "15%").expect("within 15%"));
        let err = run(&base, &bad, "5%").expect_err("bad json");
        assert!(format!("{err:#}").contains("bad.json"), "{err:#}");
        let err = run(&dir.join("absent.json"), &new, "5%").expect_err("absent");
        assert!(format!("{err:#}").contains("absent.json"), "{err:#}");

        let mut other = report(10_000.0, 100);
        other.version = REPORT_VERSION + 1;
        write(&new, &other);
        assert!(run(&base, &new, "5%").is_err());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
