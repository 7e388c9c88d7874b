//! The trend page (`msrp-loadgen trend`): per metric one chart across the
//! reports, the median per report as the line, its spread as an error
//! bar, each run as a dot, then a table of the numbers. Self-contained as
//! the run's report is: inline style, inline SVG, no script.

use std::fmt::{self, Write as _};

use super::chart::{draw, Chart, Frame, Scale, Series, Tick};
use super::escape;
use super::runs::{better, dot, y_axis, MEDIAN_COLOR, SPREAD_COLOR};
use super::STYLE;
use crate::summary::metric_value;
use crate::trend::{MetricTrend, Point, Trend};
use crate::units::percent;

/// A self-contained HTML5 page for `trend`.
pub fn render(t: &Trend) -> String {
    let mut page = String::with_capacity(32 * 1024);
    write_page(&mut page, t).expect("formatting into a String cannot fail");
    page
}

const WIDTH: f64 = 760.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
/// The width of one character of an x label, roughly, at 11px.
const CHAR_WIDTH: f64 = 6.0;

fn write_page(o: &mut String, t: &Trend) -> fmt::Result {
    let title = format!("msrp-loadgen trend · {} reports", t.points.len());
    writeln!(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>")?;
    writeln!(o, "<meta charset=\"utf-8\">")?;
    writeln!(
        o,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(o, "<title>{}</title>", escape(&title))?;
    writeln!(o, "<style>\n{STYLE}</style>\n</head>\n<body>")?;
    writeln!(o, "<h1>{}</h1>", escape(&title))?;
    writeln!(
        o,
        "<p class=\"sub\">Per metric, across the reports in order: the line joins each report's \
         median over its runs, the grey bar is ± its spread (a robust standard deviation), the dots \
         are its runs.</p>"
    )?;
    points_table(o, &t.points)?;
    if t.metrics.is_empty() {
        writeln!(o, "<p class=\"muted\">No metric in these reports.</p>")?;
    }
    for m in &t.metrics {
        writeln!(
            o,
            "<h2>{} <span class=\"muted\">({} is better)</span></h2>",
            escape(&m.name),
            better(m.better)
        )?;
        writeln!(o, "<div class=\"metric\" data-metric=\"{}\">", escape(&m.name))?;
        metric_chart(o, &t.points, m)?;
        writeln!(o, "</div>")?;
        metric_table(o, &t.points, m)?;
    }
    writeln!(o, "</body>\n</html>")
}

fn points_table(o: &mut String, points: &[Point]) -> fmt::Result {
    writeln!(
        o,
        "<table><tr><th>#</th><th>label</th><th>started</th><th>runs</th><th>file</th></tr>"
    )?;
    for (i, p) in points.iter().enumerate() {
        writeln!(
            o,
            "<tr><td class=\"n\">{}</td><th>{}</th><td>{}</td><td class=\"n\">{}</td><td><code>{}</code></td></tr>",
            i + 1,
            escape(&p.label),
            escape(&p.started_at),
            p.runs,
            escape(&p.path.display().to_string())
        )?;
    }
    writeln!(o, "</table>")
}

/// `label` cut to `chars` characters, an ellipsis marking the cut.
fn shortened(label: &str, chars: usize) -> String {
    match label.chars().count() > chars {
        true => label.chars().take(chars.saturating_sub(1)).chain(['…']).collect(),
        false => label.to_string(),
    }
}

fn metric_chart(o: &mut String, points: &[Point], m: &MetricTrend) -> fmt::Result {
    let n = points.len();
    let present = || {
        m.stats
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i as f64, s)))
    };
    let (y, y_ticks) =
        y_axis(present().flat_map(|(_, s)| s.values.iter().copied().chain([s.median + s.spread])));
    // Labels as long as the room per report allows, and at most ~16 of them.
    let every = n.div_ceil(16).max(1);
    let room_chars = ((WIDTH - LEFT - RIGHT) / (n.div_ceil(every)) as f64 / CHAR_WIDTH).floor() as usize;
    let x_ticks = points
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, p)| Tick {
            at: i as f64,
            label: shortened(&p.label, room_chars.clamp(3, 24)),
        })
        .collect();
    let mut series = Vec::new();
    for (x, s) in present().filter(|(_, s)| s.spread > 0.0) {
        series.push(Series {
            name: format!("± {}", metric_value(s.spread, &s.unit)),
            color: SPREAD_COLOR,
            points: vec![(x, (s.median - s.spread).max(0.0)), (x, s.median + s.spread)],
        });
    }
    series.push(Series {
        name: "median".to_string(),
        color: MEDIAN_COLOR,
        points: present().map(|(x, s)| (x, s.median)).collect(),
    });
    for (x, s) in present() {
        let label = &points[x as usize].label;
        for (run, &v) in s.values.iter().enumerate() {
            let name = match s.values.len() {
                1 => format!("{label}: {}", metric_value(v, &s.unit)),
                _ => format!("{label}, run {}: {}", run + 1, metric_value(v, &s.unit)),
            };
            series.push(dot(name, x, v));
        }
    }
    draw(
        o,
        &Chart {
            title: &m.name,
            frame: Frame {
                width: WIDTH,
                height: 260.0,
                left: LEFT,
                right: RIGHT,
                top: 24.0,
                bottom: 40.0,
            },
            // Half a report's room either side, so one report still has a range.
            x: Scale {
                min: -0.5,
                max: n as f64 - 0.5,
                log: false,
            },
            x_ticks,
            x_label: "report",
            y,
            y_ticks,
            y_label: &m.unit,
            series,
            legend: false,
        },
    )
}

fn metric_table(o: &mut String, points: &[Point], m: &MetricTrend) -> fmt::Result {
    writeln!(
        o,
        "<table><tr><th>report</th><th>runs</th><th>median</th><th>spread</th><th>spread/median</th>\
         <th>min</th><th>max</th></tr>"
    )?;
    for (p, s) in points.iter().zip(&m.stats) {
        match s {
            Some(s) => writeln!(
                o,
                "<tr><th>{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">± {}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&p.label),
                s.values.len(),
                escape(&metric_value(s.median, &s.unit)),
                escape(&metric_value(s.spread, &s.unit)),
                percent(s.relative_spread()),
                escape(&metric_value(s.min, &s.unit)),
                escape(&metric_value(s.max, &s.unit))
            )?,
            None => writeln!(
                o,
                "<tr><th>{}</th><td class=\"muted\" colspan=\"6\">not in this report</td></tr>",
                escape(&p.label)
            )?,
        }
    }
    writeln!(o, "</table>")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::trend::{sample_report, trend};

    #[test]
    fn one_report_with_one_run_and_flat_metrics_draws_without_nan() {
        let mut r = sample_report("2024-05-01T10:00:00Z", 0.0, 0);
        r.label = Some("<b>&\"x\"".into());
        let page = super::render(&trend(&[(PathBuf::from("a.json"), r)]));
        assert!(!page.contains("NaN") && !page.contains("inf"), "{page}");
        assert!(!page.contains("<b>"));
        assert!(page.contains("&lt;b&gt;&amp;&quot;x&quot;"));
        // Only the delivered latency and the errors: no throughput.
        assert_eq!(page.matches("<svg").count(), 3, "{page}");
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("<script"));
    }

    #[test]
    fn long_labels_are_shortened_on_the_axis_only() {
        assert_eq!(super::shortened("abcdef", 4), "abc…");
        assert_eq!(super::shortened("abc", 4), "abc");
    }
}
