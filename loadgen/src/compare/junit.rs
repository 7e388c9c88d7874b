//! The comparison as JUnit XML, for a CI's test view: one `<testcase>` per
//! metric (named by the metric), a `<failure>` for each that fails the gate
//! with the medians, spreads and the rule's numbers, `<skipped/>` for each
//! skipped, and one more testcase, `profile`, when the profiles differ.

use std::fmt::Write;

use super::{table, Comparison, Row, Verdict};

const SUITE: &str = "msrp-loadgen compare";

/// The whole document.
pub fn render(c: &Comparison) -> String {
    let profile_fails = !c.profile_differences.is_empty();
    let tests = c.rows.len() + usize::from(profile_fails);
    let failures = c.failures().count() + usize::from(profile_fails);
    let skipped = c.rows.iter().filter(|r| r.verdict == Verdict::Skipped).count();
    let counts = format!(r#"tests="{tests}" failures="{failures}" errors="0" skipped="{skipped}""#);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, r#"<testsuites name="{SUITE}" {counts}>"#);
    let _ = writeln!(out, r#"  <testsuite name="{SUITE}" {counts}>"#);
    let _ = writeln!(out, "    <properties>");
    let _ = writeln!(
        out,
        r#"      <property name="rule" value="{}"/>"#,
        escape(&c.rule().describe())
    );
    for (name, sources) in [("base", &c.base_sources), ("new", &c.new_sources)] {
        for s in sources.iter() {
            let _ = writeln!(out, r#"      <property name="{name}" value="{}"/>"#, escape(s));
        }
    }
    let _ = writeln!(out, "    </properties>");
    for row in &c.rows {
        testcase(&mut out, row);
    }
    if profile_fails {
        let _ = writeln!(out, r#"    <testcase classname="msrp-loadgen" name="profile">"#);
        let _ = writeln!(
            out,
            r#"      <failure message="profiles differ: the runs measured different loads" type="profile">{}</failure>"#,
            escape(&c.profile_differences.join("\n"))
        );
        let _ = writeln!(out, "    </testcase>");
    }
    let notes: Vec<&String> = c.warnings.iter().chain(&c.notes).collect();
    if !notes.is_empty() {
        let text: Vec<&str> = notes.iter().map(|s| s.as_str()).collect();
        let _ = writeln!(out, "    <system-out>{}</system-out>", escape(&text.join("\n")));
    }
    let _ = writeln!(out, "  </testsuite>");
    let _ = writeln!(out, "</testsuites>");
    out
}

fn testcase(out: &mut String, row: &Row) {
    let name = escape(&row.metric);
    let (base, new) = table::sides(row);
    let summary = format!(
        "base {base}, new {new}, change {}: {}",
        table::delta(row.delta),
        row.verdict
    );
    let _ = write!(out, r#"    <testcase classname="msrp-loadgen" name="{name}""#);
    let reason = row.reason.as_deref().unwrap_or_default();
    match row.verdict {
        Verdict::Regressed | Verdict::Missing => {
            let _ = writeln!(out, ">");
            let _ = writeln!(
                out,
                r#"      <failure message="{}" type="{}">{}</failure>"#,
                escape(&format!("{summary}; {reason}")),
                escape(&row.verdict.to_string()),
                escape(&format!(
                    "{summary}\n{reason}\npooled spread {}",
                    table::number(row.pooled_spread)
                )),
            );
            let _ = writeln!(out, "    </testcase>");
        }
        Verdict::Skipped => {
            let _ = writeln!(out, ">");
            let _ = writeln!(out, r#"      <skipped message="{}"/>"#, escape(reason));
            let _ = writeln!(out, "    </testcase>");
        }
        _ if row.reason.is_some() => {
            let _ = writeln!(out, ">");
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                escape(&format!("{summary}; {reason}"))
            );
            let _ = writeln!(out, "    </testcase>");
        }
        _ => {
            let _ = writeln!(out, "/>");
        }
    }
}

/// Text for an attribute value or element content. XML 1.0 cannot carry
/// most control characters even escaped, so they become U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => {
                let _ = write!(out, "&#{};", u32::from(ch));
            }
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
