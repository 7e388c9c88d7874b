//! `msrp-loadgen trend`: many reports, one page of how each metric moved
//! across them.
//!
//! `compare` judges two reports; a trend shows where a slow drift began
//! and how wide the noise around it is. The reports come in the order
//! given, or a directory's in the order they started; per report every
//! metric ([`stats::metrics`]) is summarized over its runs
//! ([`stats::summarize`]), so a repeated report brings its median, its
//! spread and each run, and a single run a median of one. The page itself
//! is drawn by [`crate::html::render_trend`].

use std::path::{Path, PathBuf};

use crate::report::Report;
use crate::stats::{self, Better, Stats};

/// The page `trend` writes when `--out` is not given.
pub const DEFAULT_OUT: &str = "msrp-trend.html";

/// The commit's length on the x axis: enough to be unique in practice.
const SHORT_COMMIT_CHARS: usize = 12;

/// Why no trend could be drawn; each exits 2.
#[derive(Debug, thiserror::Error)]
pub enum TrendError {
    #[error("no reports found in {where_}: give report files or a directory holding msrp-bench-*.json")]
    NoReports { where_: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not an msrp-loadgen report: {source}")]
    NotAReport {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "report versions differ: {first} is version {first_version}, {other} is version \
         {other_version}; a metric may not mean the same in both"
    )]
    Versions {
        first: PathBuf,
        first_version: u32,
        other: PathBuf,
        other_version: u32,
    },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// One report on the trend's x axis.
#[derive(Clone, Debug)]
pub struct Point {
    pub path: PathBuf,
    /// The report's label, else its short commit, else when it started.
    pub label: String,
    pub started_at: String,
    pub runs: usize,
}

/// One metric across the reports.
#[derive(Clone, Debug)]
pub struct MetricTrend {
    pub name: String,
    pub better: Better,
    pub unit: String,
    /// One per [`Trend::points`]; `None` where that report lacks the metric.
    pub stats: Vec<Option<Stats>>,
}

/// Every metric of the reports, in [`stats::metrics`] order.
#[derive(Clone, Debug)]
pub struct Trend {
    pub points: Vec<Point>,
    pub metrics: Vec<MetricTrend>,
}

/// Reads the reports, writes the page to `out`; returns its path.
pub fn run(inputs: &[PathBuf], out: &Path) -> Result<PathBuf, TrendError> {
    let reports = load(inputs)?;
    let page = crate::html::render_trend(&trend(&reports));
    std::fs::write(out, page).map_err(|source| TrendError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(out.to_path_buf())
}

/// The reports of `inputs`, in trend order: a file as given (it must be a
/// report), a directory's every `*.json` that is a report, by `started_at`
/// (then file name). All must share one report version.
pub fn load(inputs: &[PathBuf]) -> Result<Vec<(PathBuf, Report)>, TrendError> {
    let mut reports = Vec::new();
    for input in inputs {
        match input.is_dir() {
            true => reports.extend(load_dir(input)?),
            false => reports.push((input.clone(), read(input)?)),
        }
    }
    let Some((first, first_report)) = reports.first() else {
        let where_ = inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(TrendError::NoReports { where_ });
    };
    if let Some((other, other_report)) = reports.iter().find(|(_, r)| r.version != first_report.version) {
        return Err(TrendError::Versions {
            first: first.clone(),
            first_version: first_report.version,
            other: other.clone(),
            other_version: other_report.version,
        });
    }
    Ok(reports)
}

fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, Report)>, TrendError> {
    let read_error = |source| TrendError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.extension().is_none_or(|e| e != "json") || !path.is_file() {
            continue;
        }
        // A directory of artifacts holds other JSON too: only reports count.
        if let Ok(report) = read(&path) {
            found.push((path, report));
        }
    }
    found.sort_by(|(pa, a), (pb, b)| a.started_at.cmp(&b.started_at).then_with(|| pa.cmp(pb)));
    if found.is_empty() {
        return Err(TrendError::NoReports {
            where_: dir.display().to_string(),
        });
    }
    Ok(found)
}

fn read(path: &Path) -> Result<Report, TrendError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrendError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| TrendError::NotAReport {
        path: path.to_path_buf(),
        source,
    })
}

/// The name a report goes by on the x axis.
pub fn label(report: &Report) -> String {
    if let Some(label) = report.label.as_deref().filter(|l| !l.trim().is_empty()) {
        return label.to_string();
    }
    if let Some(commit) = report.commit.as_deref().filter(|c| !c.is_empty()) {
        let short: String = commit.chars().take(SHORT_COMMIT_CHARS).collect();
        return match commit.ends_with("-dirty") {
            true => format!("{short}-dirty"),
            false => short,
        };
    }
    report.started_at.clone()
}

/// Every metric of `reports` across them.
pub fn trend(reports: &[(PathBuf, Report)]) -> Trend {
    let summaries: Vec<_> = reports.iter().map(|(_, r)| stats::summarize(r)).collect();
    // The fixed order of `stats::metrics`, over every run of every report.
    let mut names: Vec<String> = Vec::new();
    for (_, report) in reports {
        let runs: Vec<&Report> = match report.runs.is_empty() {
            true => vec![report],
            false => report.runs.iter().collect(),
        };
        for m in runs.into_iter().flat_map(stats::metrics) {
            if !names.contains(&m.name) {
                names.push(m.name);
            }
        }
    }
    let metrics = names
        .into_iter()
        .filter_map(|name| {
            let stats: Vec<Option<Stats>> = summaries.iter().map(|s| s.get(&name).cloned()).collect();
            let first = stats.iter().flatten().next()?;
            Some(MetricTrend {
                better: first.better,
                unit: first.unit.clone(),
                name,
                stats,
            })
        })
        .collect();
    let points = reports
        .iter()
        .map(|(path, r)| Point {
            path: path.clone(),
            label: label(r),
            started_at: r.started_at.clone(),
            runs: r.runs.len().max(1),
        })
        .collect();
    Trend { points, metrics }
}

/// A small but whole report for unit tests: `messages_per_s` and the
/// delivered p99 as given.
#[cfg(test)]
pub(crate) fn sample_report(started_at: &str, messages_per_s: f64, p99_us: u64) -> Report {
    let latency = serde_json::json!({
        "count": 100, "min": 1, "mean": 10.0, "p50": p99_us / 2, "p90": p99_us, "p99": p99_us,
        "p999": p99_us, "max": p99_us, "curve": [[0.0, 1], [100.0, p99_us]]
    });
    serde_json::from_value(serde_json::json!({
        "version": crate::report::REPORT_VERSION,
        "tool": "msrp-loadgen 0.1.0",
        "started_at": started_at,
        "host": {"hostname": "h", "kernel": "k", "cpu_model": "c", "cpus": 2, "memory_bytes": 1},
        "profile": {"scenario": "sms"},
        "target": "embedded",
        "duration_s": 3.0,
        "throughput": {
            "messages_per_s": messages_per_s, "bytes_per_s": messages_per_s * 160.0,
            "messages": 300, "bytes": 48000, "messages_received_by_peer": 300
        },
        "timeline": [],
        "latency_us": {"delivered": latency},
        "errors": {},
        "sessions": {"connections": 1, "established": 8, "failed": 0, "setup_per_s": 100.0},
        "rss_bytes": {
            "engine_before": 0, "engine_peak": 0, "engine_after": 0,
            "engine_per_session": null, "load_peak": 0
        },
        "cpu": {
            "engine_cores": 0.5, "load_cores": 0.5, "engine_threads": 1, "engine_cpus": [],
            "load_threads": 1, "load_cpus": [], "load_saturated": false
        },
        "warnings": []
    }))
    .expect("the sample is a report")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str, report: Report) -> (PathBuf, Report) {
        (PathBuf::from(path), report)
    }

    #[test]
    fn labels_fall_back_to_the_short_commit_then_the_start() {
        let mut r = sample_report("2024-05-01T10:00:00Z", 1.0, 1);
        assert_eq!(label(&r), "2024-05-01T10:00:00Z");
        r.commit = Some("0123456789abcdef0123-dirty".into());
        assert_eq!(label(&r), "0123456789ab-dirty");
        r.commit = Some("0123456789abcdef0123".into());
        assert_eq!(label(&r), "0123456789ab");
        r.label = Some("v2".into());
        assert_eq!(label(&r), "v2");
    }

    #[test]
    fn a_metric_absent_from_a_report_is_none_there() {
        let a = sample_report("2024-05-01T10:00:00Z", 100.0, 50);
        let mut b = sample_report("2024-05-01T11:00:00Z", 110.0, 40);
        b.latency_us.clear();
        let t = trend(&[at("a.json", a), at("b.json", b)]);
        let p99 = t
            .metrics
            .iter()
            .find(|m| m.name == "latency.delivered.p99_us")
            .expect("a has the delivered p99");
        assert!(p99.stats[0].is_some() && p99.stats[1].is_none());
        assert_eq!(
            t.metrics[0].name, "throughput.messages_per_s",
            "stats::metrics order"
        );
        let rates: Vec<f64> = t.metrics[0].stats.iter().flatten().map(|s| s.median).collect();
        assert_eq!(rates, [100.0, 110.0]);
    }

    #[test]
    fn no_inputs_and_mixed_versions_are_refused() {
        assert!(matches!(load(&[]), Err(TrendError::NoReports { .. })));
        let dir = std::env::temp_dir().join(format!("msrp-trend-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (one, two) = (dir.join("one.json"), dir.join("two.json"));
        let mut r = sample_report("2024-05-01T10:00:00Z", 1.0, 1);
        std::fs::write(&one, serde_json::to_vec(&r).unwrap()).unwrap();
        r.version += 1;
        std::fs::write(&two, serde_json::to_vec(&r).unwrap()).unwrap();
        let result = load(&[one, two]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(result, Err(TrendError::Versions { .. })), "{result:?}");
    }
}
