//! Reports to a pass/fail verdict: the performance-regression gate.
//!
//! # Use as a CI performance gate
//!
//! 1. Keep baseline reports from the same machine class as CI runs on
//!    (committed to the repository, or the artifacts of the last good runs
//!    on the main branch), best several runs: `bench --repeat 5`.
//! 2. Run the same profile as the baseline, e.g.
//!    `msrp-loadgen bench --scenario sms --duration 10s --repeat 5 --json new.json`
//!    (whatever flags produced the baseline: a different load is refused).
//! 3. `msrp-loadgen compare --base base/ --new new.json --max-regression 5%`
//!    (or the two-report form `compare base.json new.json`).
//!
//! Exit status: 0 passed, 1 failed, 2 usage or I/O error (a file
//! unreadable or not a report, report versions differ, a bad tolerance).
//!
//! # Rules
//!
//! Each side is every run of every report given for it (a report from
//! `bench --repeat` counts as its runs). Per metric of [`stats::metrics`]
//! the values of a side are pooled into a median and a spread (1.4826 x the
//! median absolute deviation, [`Stats`]); with tolerance `tol` and noise
//! factor `k` ([`Rule`]):
//! - A gated metric (throughput, `fraction.*`, p99 latencies,
//!   `cpu.engine_us_per_message`) regresses when the new median is worse
//!   than the base median by more than `tol` (relative) and by more than
//!   `k` x the pooled spread `sqrt((spread_base² + spread_new²)/2)`. Worse
//!   by more than `tol` but within the noise is `noisy`: it passes with a
//!   warning. With one run per side the spreads are 0: the tolerance rule.
//! - A throughput regression whose fraction of the in-run calibration
//!   (`fraction.messages`, `fraction.bytes`, on both sides) did not regress
//!   is `slower host`: it passes, since the loopback the run was measured
//!   against slowed down as much.
//! - p50 latencies are shown for information and never fail.
//! - `errors.total` fails when the base median is 0 and the new one is not.
//! - A metric of the base that no new run has fails (`missing`): the run
//!   lost a measurement. One only the new side has is `skipped`, as is one
//!   whose base median is 0.
//! - The profiles of all reports must be identical: a comparison of
//!   different loads says nothing about the code, so a difference fails
//!   and is listed.
//! - Differing hosts, tools or targets, and a saturated load side, are
//!   printed as notes only.
//!
//! Outputs: the text table on stdout; [`junit`] and [`markdown`] write the
//! same verdicts for a CI's test view and a pull-request comment.

mod context;
pub mod junit;
pub mod markdown;
pub mod rule;
mod table;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::report::Report;
use crate::stats::{self, Better, Stats};

pub use rule::{Judgement, Rule, DEFAULT_NOISE_K};

/// What `msrp-loadgen compare` was asked.
#[derive(Clone, Debug)]
pub struct Gate {
    /// Reports, or directories whose `*.json` files are reports.
    pub base: Vec<PathBuf>,
    pub new: Vec<PathBuf>,
    /// See [`parse_tolerance`].
    pub max_regression: String,
    pub noise_k: f64,
    /// Where to write JUnit XML ([`junit::render`]).
    pub junit: Option<PathBuf>,
    /// Where to write a markdown summary ([`markdown::render`]).
    pub markdown: Option<PathBuf>,
}

/// Prints the comparison of the reports at `base` and `new`; `Ok(false)`
/// when `new` regressed beyond `max_regression` (see [`parse_tolerance`]).
pub fn run(base: &Path, new: &Path, max_regression: &str) -> anyhow::Result<bool> {
    run_gate(&Gate {
        base: vec![base.to_owned()],
        new: vec![new.to_owned()],
        max_regression: max_regression.to_owned(),
        noise_k: DEFAULT_NOISE_K,
        junit: None,
        markdown: None,
    })
}

/// Reads every report of both sides, prints the comparison and writes the
/// files asked for; `Ok(false)` when the gate fails.
pub fn run_gate(gate: &Gate) -> anyhow::Result<bool> {
    let rule = Rule::new(parse_tolerance(&gate.max_regression)?, gate.noise_k)?;
    let base = read_side("--base", &gate.base)?;
    let new = read_side("--new", &gate.new)?;
    let (first_path, first) = &base[0];
    for (path, report) in base.iter().chain(&new) {
        if report.version != first.version {
            bail!(
                "report versions differ: {} is version {}, {} is version {}; \
                 record the baseline again with the same msrp-loadgen",
                first_path.display(),
                first.version,
                path.display(),
                report.version
            );
        }
    }
    let base_names: Vec<String> = base.iter().map(|(p, _)| p.display().to_string()).collect();
    let new_names: Vec<String> = new.iter().map(|(p, _)| p.display().to_string()).collect();
    fn sources<'a>(side: &'a [(PathBuf, Report)], names: &'a [String]) -> Vec<Source<'a>> {
        side.iter()
            .zip(names)
            .map(|((_, report), name)| Source { name, report })
            .collect()
    }
    let comparison = compare_sources(&sources(&base, &base_names), &sources(&new, &new_names), rule);
    print!("{comparison}");
    if let Some(path) = &gate.junit {
        std::fs::write(path, junit::render(&comparison))
            .with_context(|| format!("cannot write JUnit XML to {}", path.display()))?;
    }
    if let Some(path) = &gate.markdown {
        std::fs::write(path, markdown::render(&comparison))
            .with_context(|| format!("cannot write markdown to {}", path.display()))?;
    }
    Ok(comparison.passed())
}

fn read_side(flag: &str, paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, Report)>> {
    let mut out = Vec::new();
    for path in paths {
        out.extend(read_reports(path)?);
    }
    if out.is_empty() {
        bail!("{flag}: no reports given");
    }
    Ok(out)
}

/// Reads and parses one report; the error names the file.
pub fn read_report(path: &Path) -> anyhow::Result<Report> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read report {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid msrp-loadgen report", path.display()))
}

/// The report at `path`, or every `*.json` report in the directory
/// `path`, by file name; a directory without one is an error, since an
/// empty side would compare nothing and pass.
pub fn read_reports(path: &Path) -> anyhow::Result<Vec<(PathBuf, Report)>> {
    if !path.is_dir() {
        return Ok(vec![(path.to_owned(), read_report(path)?)]);
    }
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(path).with_context(|| format!("cannot list directory {}", path.display()))?;
    for entry in entries {
        let file = entry
            .with_context(|| format!("cannot list directory {}", path.display()))?
            .path();
        if file.is_file() && file.extension().is_some_and(|e| e == "json") {
            files.push(file);
        }
    }
    if files.is_empty() {
        bail!("directory {} holds no *.json report", path.display());
    }
    files.sort();
    files
        .into_iter()
        .map(|f| read_report(&f).map(|r| (f, r)))
        .collect()
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
    /// Worse than the tolerance and the noise allow: fails the gate.
    Regressed,
    /// Worse than the tolerance, but within `k` pooled spreads: passes
    /// with a warning.
    Noisy,
    /// Throughput worse, its fraction of the in-run calibration not: the
    /// host is slower, not the code. Passes with a note.
    SlowerHost,
    /// In the base, in no new run: fails the gate.
    Missing,
    /// Better by more than the tolerance.
    Improved,
    /// Not comparable (0 in the base, or not in the base).
    Skipped,
    /// Shown for context; never fails the gate.
    Info,
}

impl Verdict {
    /// Whether this verdict fails the gate.
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Regressed | Verdict::Missing)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Verdict::Ok => "ok",
            Verdict::Regressed => "REGRESSED",
            Verdict::Noisy => "noisy",
            Verdict::SlowerHost => "slower host",
            Verdict::Missing => "MISSING",
            Verdict::Improved => "improved",
            Verdict::Skipped => "skipped",
            Verdict::Info => "info",
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The metric's name in [`stats::metrics`]: `latency.delivered.p99_us`.
    pub metric: String,
    /// The base median; `None` when the base lacks the metric.
    pub base: Option<f64>,
    /// The new median; `None`: the new runs lack the measurement.
    pub new: Option<f64>,
    /// `(new - base) / base`; `None` when the base is 0 or a side is missing.
    pub delta: Option<f64>,
    pub verdict: Verdict,
    /// Every base run's value, their median and spread.
    pub base_stats: Option<Stats>,
    pub new_stats: Option<Stats>,
    /// `sqrt((spread_base² + spread_new²)/2)`; 0 when a side is missing.
    pub pooled_spread: f64,
    /// Why the verdict is what it is, with the rule's numbers, for every
    /// verdict but `ok`, `improved` and `info`.
    pub reason: Option<String>,
}

impl Row {
    pub fn unit(&self) -> &str {
        self.base_stats
            .as_ref()
            .or(self.new_stats.as_ref())
            .map_or("", |s| s.unit.as_str())
    }
}

#[derive(Clone, Debug)]
pub struct Comparison {
    /// The allowed regression, as a fraction.
    pub tolerance: f64,
    /// The noise factor `k`.
    pub noise_k: f64,
    /// One line per base report: its file, tool, start time and runs.
    pub base_sources: Vec<String>,
    pub new_sources: Vec<String>,
    pub rows: Vec<Row>,
    /// `path: base -> new` for each profile value that differs; any fails
    /// the gate.
    pub profile_differences: Vec<String>,
    /// What passed but needs a look: differences inside the noise.
    pub warnings: Vec<String>,
    /// Context that does not decide the verdict.
    pub notes: Vec<String>,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.profile_differences.is_empty() && self.failures().next().is_none()
    }

    pub fn rule(&self) -> Rule {
        Rule {
            tolerance: self.tolerance,
            noise_k: self.noise_k,
        }
    }

    /// The rows that regressed by the rule.
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict == Verdict::Regressed)
    }

    /// The rows that fail the gate: regressed or missing.
    pub fn failures(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict.fails())
    }

    /// `2 regressed, 1 missing, profiles differ`: why the gate failed.
    pub fn failure_summary(&self) -> String {
        let mut why = Vec::new();
        let regressed = self.regressions().count();
        if regressed > 0 {
            why.push(format!("{regressed} regressed"));
        }
        let missing = self.rows.iter().filter(|r| r.verdict == Verdict::Missing).count();
        if missing > 0 {
            why.push(format!("{missing} missing"));
        }
        if !self.profile_differences.is_empty() {
            why.push("profiles differ".to_owned());
        }
        why.join(", ")
    }
}

/// One report on one side of a comparison, named for the messages.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub name: &'a str,
    pub report: &'a Report,
}

/// Compares `new` against `base` with `tolerance` (a fraction, see
/// [`parse_tolerance`]) and the default noise factor.
pub fn compare(base: &Report, new: &Report, tolerance: f64) -> Comparison {
    compare_sources(
        &[Source {
            name: "base",
            report: base,
        }],
        &[Source {
            name: "new",
            report: new,
        }],
        Rule {
            tolerance,
            noise_k: DEFAULT_NOISE_K,
        },
    )
}

type Pool = BTreeMap<String, (Better, &'static str, Vec<f64>)>;

/// Every run's values per metric over a side's reports.
fn pool(side: &[Source<'_>]) -> Pool {
    let mut out = Pool::new();
    for source in side {
        for (name, (better, unit, values)) in stats::samples(source.report) {
            out.entry(name)
                .or_insert_with(|| (better, unit, Vec::new()))
                .2
                .extend(values);
        }
    }
    out
}

fn runs_of(report: &Report) -> Vec<&Report> {
    match report.runs.is_empty() {
        true => vec![report],
        false => report.runs.iter().collect(),
    }
}

/// The metric names in [`stats::metrics`]'s order (throughput first,
/// errors last), each once.
fn metric_order(sides: &[&[Source<'_>]]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for source in sides.iter().flat_map(|s| s.iter()) {
        for run in runs_of(source.report) {
            for m in stats::metrics(run) {
                if seen.insert(m.name.clone()) {
                    order.push(m.name);
                }
            }
        }
    }
    order
}

fn stats_of(pool: &Pool, name: &str) -> Option<Stats> {
    let (better, unit, values) = pool.get(name)?;
    Stats::of(*better, unit, values)
}

/// Compares the pooled runs of `new` against those of `base` by the rules
/// in the module doc.
pub fn compare_sources(base: &[Source<'_>], new: &[Source<'_>], rule: Rule) -> Comparison {
    let (base_pool, new_pool) = (pool(base), pool(new));
    let mut rows: Vec<Row> = metric_order(&[base, new])
        .into_iter()
        .map(|name| judge_metric(&rule, name, &base_pool, &new_pool))
        .collect();
    let mut notes = Vec::new();
    let mut warnings = Vec::new();

    for (throughput, fraction) in [
        ("throughput.messages_per_s", "fraction.messages"),
        ("throughput.bytes_per_s", "fraction.bytes"),
    ] {
        // Only a fraction that held (within the tolerance, or better)
        // excuses the throughput: one worse by more than the tolerance but
        // inside a noisy calibration's spread (`noisy`) proves nothing, and
        // a halved rate must not pass as a slower host.
        let calibrated = rows.iter().find(|r| r.metric == fraction).is_some_and(|r| {
            r.base_stats.is_some()
                && r.new_stats.is_some()
                && matches!(r.verdict, Verdict::Ok | Verdict::Improved)
        });
        let Some(row) = rows.iter_mut().find(|r| r.metric == throughput) else {
            continue;
        };
        if calibrated && row.verdict == Verdict::Regressed {
            row.verdict = Verdict::SlowerHost;
            let why = format!(
                "{} but {fraction} (the same throughput as a fraction of the in-run loopback \
                 calibration) did not regress: the machine is slower, the code is not",
                row.reason.take().unwrap_or_default()
            );
            notes.push(format!("{throughput}: {why}"));
            row.reason = Some(why);
        }
    }
    for row in rows.iter().filter(|r| r.verdict == Verdict::Noisy) {
        warnings.push(format!(
            "{}: {}; the difference is inside the noise: run more repeats \
             (bench --repeat N, on both sides) to tell",
            row.metric,
            row.reason.as_deref().unwrap_or_default()
        ));
    }
    if let Some(errors) = rows.iter().find(|r| r.metric == "errors.total") {
        if let Some(s) = &errors.new_stats {
            let with_errors = s.values.iter().filter(|&&v| v > 0.0).count();
            if with_errors > 0 && errors.verdict == Verdict::Ok {
                warnings.push(format!(
                    "errors.total: {with_errors} of {} new runs had errors (the median has none)",
                    s.values.len()
                ));
            }
        }
    }

    let profile_differences = context::profiles(base, new);
    notes.extend(context::notes(base, new));

    Comparison {
        tolerance: rule.tolerance,
        noise_k: rule.noise_k,
        base_sources: base.iter().map(context::describe_source).collect(),
        new_sources: new.iter().map(context::describe_source).collect(),
        rows,
        profile_differences,
        warnings,
        notes,
    }
}

fn judge_metric(rule: &Rule, metric: String, base_pool: &Pool, new_pool: &Pool) -> Row {
    let base_stats = stats_of(base_pool, &metric);
    let new_stats = stats_of(new_pool, &metric);
    let mut row = Row {
        metric,
        base: base_stats.as_ref().map(|s| s.median),
        new: new_stats.as_ref().map(|s| s.median),
        delta: None,
        verdict: Verdict::Skipped,
        base_stats: None,
        new_stats: None,
        pooled_spread: 0.0,
        reason: None,
    };
    let (b, n) = match (base_stats, new_stats) {
        (Some(b), Some(n)) => (b, n),
        (Some(b), None) => {
            row.verdict = Verdict::Missing;
            row.reason = Some(format!(
                "in the base ({} runs) but in none of the new runs: a measurement was lost",
                b.values.len()
            ));
            row.base_stats = Some(b);
            return row;
        }
        (None, n) => {
            row.reason = Some("not in the base (0 or no samples there): no baseline to compare".to_owned());
            row.new_stats = n;
            return row;
        }
    };
    let judgement = if row.metric.ends_with(".p50_us") {
        Judgement {
            verdict: Verdict::Info,
            delta: (b.median != 0.0).then(|| (n.median - b.median) / b.median.abs()),
            pooled_spread: rule::pooled(b.spread, n.spread),
        }
    } else if row.metric == "errors.total" {
        rule.judge_errors(&b, &n)
    } else {
        rule.judge(b.better, &b, &n)
    };
    row.verdict = judgement.verdict;
    row.delta = judgement.delta;
    row.pooled_spread = judgement.pooled_spread;
    row.reason = match judgement.verdict {
        Verdict::Regressed | Verdict::Noisy if row.metric != "errors.total" => {
            Some(rule_numbers(rule, &b, &n, judgement.pooled_spread))
        }
        Verdict::Regressed => Some(format!(
            "the base runs had no errors (median 0), the new runs' median is {}",
            table::number(n.median)
        )),
        Verdict::Skipped => Some("the base median is 0: nothing to be relative to".to_owned()),
        _ => None,
    };
    row.base_stats = Some(b);
    row.new_stats = Some(n);
    row
}

/// `worse by 20.0% (tolerance 5%) and by 2000 (3 x pooled spread 12.5 = 37.5)`.
fn rule_numbers(rule: &Rule, base: &Stats, new: &Stats, pooled: f64) -> String {
    let worse_by = (new.median - base.median).abs();
    let floor = rule.noise_k * pooled;
    let relation = if worse_by > floor { ">" } else { "<=" };
    format!(
        "median {} -> {}: worse by {} (tolerance {}) and by {} {relation} {} x pooled spread {} = {}",
        table::number(base.median),
        table::number(new.median),
        crate::units::percent(worse_by / base.median.abs()),
        tolerance_text(rule.tolerance),
        table::number(worse_by),
        crate::units::trimmed(rule.noise_k),
        table::number(pooled),
        table::number(floor),
    )
}

fn tolerance_text(t: f64) -> String {
    format!("{}%", crate::units::trimmed(t * 100.0))
}

#[cfg(test)]
mod tests;
