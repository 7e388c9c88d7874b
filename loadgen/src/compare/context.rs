//! What the reports say beside their metrics: the profiles, which must
//! be identical (a comparison of different loads says nothing about the
//! code), and the hosts, tools, targets and saturated load sides, which
//! are notes.

use std::collections::BTreeSet;

use crate::report::Report;

use super::Source;

/// One property of a report, as the text a note shows.
type Describe = dyn Fn(&Report) -> String;

/// `base.json (msrp-loadgen 0.1.0, 2024-05-01T10:00:00Z, label main, 5 runs)`.
pub fn describe_source(source: &Source<'_>) -> String {
    let r = source.report;
    let mut parts = vec![r.tool.clone(), r.started_at.clone()];
    if let Some(label) = &r.label {
        parts.push(format!("label {label}"));
    }
    if let Some(commit) = &r.commit {
        parts.push(format!("commit {commit}"));
    }
    if !r.runs.is_empty() {
        parts.push(format!("{} runs", r.runs.len()));
    }
    format!("{} ({})", source.name, parts.join(", "))
}

/// Every profile against the first base report's.
pub fn profiles(base: &[Source<'_>], new: &[Source<'_>]) -> Vec<String> {
    let mut out = Vec::new();
    let Some(reference) = base.first() else {
        return out;
    };
    let others: Vec<&Source<'_>> = base[1..].iter().chain(new).collect();
    for other in &others {
        let mut differences = Vec::new();
        diff_json(
            "profile",
            Some(&reference.report.profile),
            Some(&other.report.profile),
            &mut differences,
        );
        // Two reports: the difference needs no names; more: say which two.
        out.extend(differences.into_iter().map(|d| match others.len() {
            1 => d,
            _ => format!("{} vs {}: {d}", reference.name, other.name),
        }));
    }
    out
}

/// Differing hosts, tools and targets across all reports, and every report
/// whose load side saturated in any of its runs.
pub fn notes(base: &[Source<'_>], new: &[Source<'_>]) -> Vec<String> {
    let mut notes = Vec::new();
    let distinct = |side: &[Source<'_>], f: &Describe| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in side {
            let v = f(s.report);
            if !out.contains(&v) {
                out.push(v);
            }
        }
        out
    };
    let checks: [(&str, &str, &Describe); 3] = [
        ("hosts differ", " / new ", &|r| describe_host(&r.host)),
        ("tools differ", " -> ", &|r| r.tool.clone()),
        ("targets differ", " -> ", &|r| r.target.clone()),
    ];
    for (what, between, f) in checks {
        let (b, n) = (distinct(base, f), distinct(new, f));
        if b.len() > 1 || n.len() > 1 || b != n {
            let prefix = if what == "hosts differ" { "base " } else { "" };
            notes.push(format!(
                "{what}: {prefix}{}{between}{}",
                b.join("; "),
                n.join("; ")
            ));
        }
    }
    for (which, side) in [("base", base), ("new", new)] {
        for s in side {
            if super::runs_of(s.report).iter().any(|r| r.cpu.load_saturated) {
                notes.push(format!(
                    "the {which} run {}'s load side saturated: its figures measure the load generator",
                    s.name
                ));
            }
        }
    }
    notes
}

fn describe_host(h: &crate::report::Host) -> String {
    format!(
        "{} ({}, {} CPUs, {:.1} GiB, kernel {})",
        h.hostname,
        h.cpu_model,
        h.cpus,
        h.memory_bytes as f64 / f64::from(1u32 << 30),
        h.kernel
    )
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
