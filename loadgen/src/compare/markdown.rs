//! The comparison as GitHub-flavoured markdown for a pull-request comment:
//! a heading with the verdict, the rule in one line, the table, then the
//! failures, profile differences, warnings and notes.

use std::fmt::Write;

use super::{table, Comparison};

/// The whole comment.
pub fn render(c: &Comparison) -> String {
    let mut out = String::new();
    let heading = match c.passed() {
        true => "PASS".to_owned(),
        false => format!("FAIL: {}", c.failure_summary()),
    };
    let _ = writeln!(out, "### msrp-loadgen compare: {heading}\n");
    let _ = writeln!(out, "**Rule:** {}\n", cell(&c.rule().describe()));
    let _ = writeln!(
        out,
        "| metric | base ± spread (n) | new ± spread (n) | change | verdict |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|---|");
    for row in &c.rows {
        let (base, new) = table::sides(row);
        let verdict = match row.verdict.fails() {
            true => format!("**{}**", row.verdict),
            false => row.verdict.to_string(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            code(&row.metric),
            cell(&base),
            cell(&new),
            table::delta(row.delta),
            verdict
        );
    }
    let failures: Vec<String> = c
        .failures()
        .map(|r| {
            format!(
                "`{}`: {}",
                code(&r.metric),
                cell(r.reason.as_deref().unwrap_or_default())
            )
        })
        .collect();
    let profile: Vec<String> = c.profile_differences.iter().map(|d| cell(d)).collect();
    let warnings: Vec<String> = c.warnings.iter().map(|w| cell(w)).collect();
    let notes: Vec<String> = c.notes.iter().map(|n| cell(n)).collect();
    for (title, items) in [
        ("Failures", failures),
        (
            "Profiles differ (fails: the runs measured different loads)",
            profile,
        ),
        ("Warnings", warnings),
        ("Notes", notes),
    ] {
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n**{title}**\n");
        for item in items {
            let _ = writeln!(out, "- {item}");
        }
    }
    let _ = writeln!(out, "\n**Reports**\n");
    for (side, sources) in [("base", &c.base_sources), ("new", &c.new_sources)] {
        for s in sources.iter() {
            let _ = writeln!(out, "- {side}: {}", cell(s));
        }
    }
    out
}

/// Text for a table cell or a list item: no line breaks, no bare pipes,
/// and no `<` that would open an HTML tag in the comment.
fn cell(s: &str) -> String {
    s.replace('\n', " ").replace('|', "\\|").replace('<', "&lt;")
}

/// Text inside backticks: a backtick would end the span early.
fn code(s: &str) -> String {
    s.replace('`', "'").replace('|', "\\|")
}
