//! The HTML report: one self-contained page per run.
//!
//! Everything is inline (a small stylesheet, and SVG plots drawn here from
//! the report's numbers) and nothing refers to the network, so the page can
//! be kept as a CI artifact and opened offline years later. Every string
//! taken from the report goes through [`escape`]; every SVG coordinate goes
//! through `coord`, so an empty or degenerate report still draws.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use crate::report::{Bucket, Latency, Report};

/// A self-contained HTML5 page for `report`.
pub fn render(report: &Report) -> String {
    let mut page = String::with_capacity(64 * 1024);
    write_page(&mut page, report).expect("formatting into a String cannot fail");
    page
}

/// HTML-escapes `s` for text and for quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{font:14px/1.45 system-ui,sans-serif;color:#222;max-width:1000px;margin:1.5em auto;padding:0 1em}
h1{font-size:1.5em;margin:0}
h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.15em;margin-top:1.6em}
.sub{color:#555;margin:.2em 0 1em}
table{border-collapse:collapse;margin:.4em 0}
th,td{padding:.2em .8em;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f5f5f5}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.warnings{background:#fff4f2;border:2px solid #c62828;border-radius:6px;padding:.4em 1em;margin:1em 0}
.warnings h2{color:#c62828;border:0;margin:.3em 0}
.bad{color:#c62828;font-weight:600}
.good{color:#2e7d32}
.muted{color:#777}
pre{background:#f6f6f6;padding:.6em;overflow:auto}
.charts{display:flex;flex-wrap:wrap;gap:1em}
svg{display:block;max-width:100%;height:auto;background:#fff}
svg text{font:11px system-ui,sans-serif;fill:#333}
svg .plot{fill:#fbfbfb;stroke:#bbb}
svg .grid{stroke:#e6e6e6}
svg .title{font-size:12px;font-weight:600}
";

/// Line colours, cycled: distinguishable and readable on white.
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

fn write_page(o: &mut String, r: &Report) -> fmt::Result {
    let title = format!("{} · {} · {}", r.tool, r.started_at, r.target);
    writeln!(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>")?;
    writeln!(o, "<meta charset=\"utf-8\">")?;
    writeln!(
        o,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(o, "<title>{}</title>", escape(&title))?;
    writeln!(o, "<style>\n{STYLE}</style>\n</head>\n<body>")?;
    writeln!(o, "<h1>{}</h1>", escape(&r.tool))?;
    writeln!(
        o,
        "<p class=\"sub\">started {} · target <code>{}</code> · measured {} s · report version {}</p>",
        escape(&r.started_at),
        escape(&r.target),
        fixed(r.duration_s, 1),
        r.version
    )?;
    warnings(o, r)?;
    summary(o, r)?;
    throughput_charts(o, &r.timeline)?;
    latency(o, &r.latency_us)?;
    mixed(o, r)?;
    errors(o, &r.errors)?;
    calibration(o, r)?;
    host(o, r)?;
    profile(o, &r.profile)?;
    writeln!(o, "</body>\n</html>")
}

fn warnings(o: &mut String, r: &Report) -> fmt::Result {
    if r.warnings.is_empty() {
        return writeln!(o, "<p class=\"good\">No warnings.</p>");
    }
    writeln!(
        o,
        "<div class=\"warnings\"><h2>Warnings ({})</h2><ul>",
        r.warnings.len()
    )?;
    for w in &r.warnings {
        writeln!(o, "<li>{}</li>", escape(w))?;
    }
    writeln!(o, "</ul></div>")
}

/// One row of a key/value table; `bad` draws the value as a finding.
struct Kv {
    key: &'static str,
    value: String,
    bad: bool,
}

fn kv(key: &'static str, value: String) -> Kv {
    Kv {
        key,
        value,
        bad: false,
    }
}

fn kv_table(o: &mut String, rows: &[Kv]) -> fmt::Result {
    writeln!(o, "<table>")?;
    for row in rows {
        let class = if row.bad { "n bad" } else { "n" };
        writeln!(
            o,
            "<tr><th>{}</th><td class=\"{class}\">{}</td></tr>",
            escape(row.key),
            escape(&row.value)
        )?;
    }
    writeln!(o, "</table>")
}

fn summary(o: &mut String, r: &Report) -> fmt::Result {
    let t = &r.throughput;
    let s = &r.sessions;
    let m = &r.rss_bytes;
    let c = &r.cpu;
    let errors_total: u64 = r.errors.values().fold(0, |a, &b| a.saturating_add(b));
    let per_session = m
        .engine_per_session
        .map_or_else(|| "n/a".to_owned(), |b| format!("{} B", fixed(b, 0)));
    let mut rows = vec![
        kv("Duration (measured)", format!("{} s", fixed(r.duration_s, 1))),
        kv("Messages/s", fixed(t.messages_per_s, 1)),
        kv("MB/s (10^6 B)", fixed(t.bytes_per_s / 1e6, 2)),
        kv("Messages", grouped(t.messages)),
        kv("Bytes", bytes(t.bytes)),
        kv("Messages received by peer", grouped(t.messages_received_by_peer)),
        Kv {
            key: "Errors",
            value: grouped(errors_total),
            bad: errors_total > 0,
        },
        kv("Connections", grouped(s.connections as u64)),
        kv("Sessions established", grouped(s.established as u64)),
        Kv {
            key: "Sessions failed",
            value: grouped(s.failed as u64),
            bad: s.failed > 0,
        },
        kv("Session setups/s", fixed(s.setup_per_s, 1)),
        kv("Engine RSS before", bytes(m.engine_before)),
        kv("Engine RSS peak", bytes(m.engine_peak)),
        kv("Engine RSS after", bytes(m.engine_after)),
        kv("Engine RSS per session", per_session),
        kv("Load generator RSS peak", bytes(m.load_peak)),
        kv(
            "Engine CPU",
            cores(c.engine_cores, c.engine_threads, &c.engine_cpus),
        ),
        kv(
            "Load generator CPU",
            cores(c.load_cores, c.load_threads, &c.load_cpus),
        ),
        Kv {
            key: "Load side saturated",
            value: if c.load_saturated {
                "yes: the figures measure the load generator, not the engine".to_owned()
            } else {
                "no".to_owned()
            },
            bad: c.load_saturated,
        },
    ];
    if let Some(sub) = &r.subscriber {
        rows.push(Kv {
            key: "Subscriber events/s",
            value: match sub.dropped {
                true => format!(
                    "{}, then dropped by the engine as too slow",
                    fixed(sub.events_per_s, 1)
                ),
                false => fixed(sub.events_per_s, 1),
            },
            bad: sub.dropped,
        });
    }
    if let Some(f) = &r.fraction_of_calibration {
        rows.push(kv("Messages/s of calibration", percent(f.messages)));
        rows.push(kv("Bytes/s of calibration", percent(f.bytes)));
    }
    writeln!(o, "<h2>Summary</h2>")?;
    kv_table(o, &rows)
}

fn cores(cores: f64, threads: usize, cpus: &[usize]) -> String {
    let pinned = if cpus.is_empty() {
        "not pinned".to_owned()
    } else {
        let list: Vec<String> = cpus.iter().map(usize::to_string).collect();
        format!("pinned to CPUs {}", list.join(","))
    };
    format!("{} cores busy, {threads} threads, {pinned}", fixed(cores, 2))
}

fn latency(o: &mut String, kinds: &BTreeMap<String, Latency>) -> fmt::Result {
    writeln!(o, "<h2>Latency (µs)</h2>")?;
    if kinds.is_empty() {
        return writeln!(o, "<p class=\"muted\">No latency measured.</p>");
    }
    writeln!(
        o,
        "<table><tr><th>kind</th><th>count</th><th>min</th><th>mean</th><th>p50</th>\
         <th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>"
    )?;
    for (kind, l) in kinds {
        writeln!(
            o,
            "<tr><th>{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(kind),
            grouped(l.count),
            grouped(l.min),
            fixed(l.mean, 1),
            grouped(l.p50),
            grouped(l.p90),
            grouped(l.p99),
            grouped(l.p999),
            grouped(l.max)
        )?;
    }
    writeln!(o, "</table>")?;
    latency_chart(o, kinds)
}

fn mixed(o: &mut String, r: &Report) -> fmt::Result {
    let Some(m) = &r.mixed else {
        return Ok(());
    };
    writeln!(o, "<h2>Mixed: texts beside a file transfer</h2>")?;
    kv_table(
        o,
        &[
            kv("Texts p99 alone", format!("{} µs", grouped(m.texts_p99_alone_us))),
            kv(
                "Texts p99 with file",
                format!("{} µs", grouped(m.texts_p99_with_file_us)),
            ),
            kv("p99 ratio (with / alone)", fixed(m.p99_ratio, 2)),
            kv("File bytes", bytes(m.file_bytes)),
            kv("File MB/s", fixed(m.file_bytes_per_s / 1e6, 2)),
        ],
    )
}

fn errors(o: &mut String, errors: &BTreeMap<String, u64>) -> fmt::Result {
    if errors.is_empty() {
        return Ok(());
    }
    writeln!(o, "<h2>Errors by cause</h2>\n<table>")?;
    writeln!(o, "<tr><th>cause</th><th>count</th></tr>")?;
    for (cause, n) in errors {
        writeln!(
            o,
            "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
            escape(cause),
            grouped(*n)
        )?;
    }
    writeln!(o, "</table>")
}

fn calibration(o: &mut String, r: &Report) -> fmt::Result {
    writeln!(o, "<h2>Calibration (plain TCP over loopback, no MSRP)</h2>")?;
    let Some(c) = &r.calibration else {
        return writeln!(o, "<p class=\"muted\">Not run.</p>");
    };
    let mut rows = vec![
        kv(
            "Small messages/s",
            format!(
                "{} ({} B each)",
                fixed(c.small_messages_per_s, 1),
                c.message_bytes
            ),
        ),
        kv(
            "Bulk MB/s",
            format!(
                "{} ({} B writes)",
                fixed(c.bulk_bytes_per_s / 1e6, 2),
                c.chunk_bytes
            ),
        ),
        kv("Seconds each", fixed(c.seconds_each, 1)),
    ];
    if let Some(f) = &r.fraction_of_calibration {
        rows.push(kv("This run, messages/s", percent(f.messages)));
        rows.push(kv("This run, bytes/s", percent(f.bytes)));
    }
    kv_table(o, &rows)
}

fn host(o: &mut String, r: &Report) -> fmt::Result {
    let h = &r.host;
    writeln!(o, "<h2>Host</h2>")?;
    kv_table(
        o,
        &[
            kv("Hostname", h.hostname.clone()),
            kv("Kernel", h.kernel.clone()),
            kv("CPU", h.cpu_model.clone()),
            kv("CPUs", h.cpus.to_string()),
            kv("Memory", bytes(h.memory_bytes)),
        ],
    )
}

fn profile(o: &mut String, p: &serde_json::Value) -> fmt::Result {
    writeln!(o, "<h2>Profile</h2>")?;
    match p {
        serde_json::Value::Object(map) if !map.is_empty() => {
            writeln!(o, "<table>")?;
            for (key, value) in map {
                let shown = match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                writeln!(
                    o,
                    "<tr><th>{}</th><td><code>{}</code></td></tr>",
                    escape(key),
                    escape(&shown)
                )?;
            }
            writeln!(o, "</table>")
        }
        other => writeln!(o, "<pre>{}</pre>", escape(&format!("{other:#}"))),
    }
}

// ---- SVG -------------------------------------------------------------------

/// A chart's size and the margins around its plot area, in SVG units.
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn x(&self, fraction: f64) -> f64 {
        self.left + unit(fraction) * (self.width - self.left - self.right)
    }

    fn y(&self, fraction: f64) -> f64 {
        self.height - self.bottom - unit(fraction) * (self.height - self.top - self.bottom)
    }
}

/// A value range mapped onto 0..1, linearly or by log10.
struct Scale {
    min: f64,
    max: f64,
    log: bool,
}

impl Scale {
    fn fraction(&self, v: f64) -> f64 {
        let (lo, hi, v) = if self.log {
            let floor = self.min.max(f64::MIN_POSITIVE);
            (floor.log10(), self.max.log10(), v.max(floor).log10())
        } else {
            (self.min, self.max, v)
        };
        unit((v - lo) / (hi - lo))
    }
}

/// Clamps to 0..1; anything not finite (0/0 on a flat range) becomes 0.
fn unit(v: f64) -> f64 {
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// An SVG coordinate: one decimal, never `NaN` or infinite.
fn coord(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "0".to_owned()
    }
}

#[derive(Clone)]
struct Tick {
    at: f64,
    label: String,
}

struct Series {
    name: String,
    color: &'static str,
    /// Data coordinates, in the chart's scales.
    points: Vec<(f64, f64)>,
}

struct Chart<'a> {
    title: &'a str,
    frame: Frame,
    x: Scale,
    x_ticks: Vec<Tick>,
    x_label: &'a str,
    y: Scale,
    y_ticks: Vec<Tick>,
    y_label: &'a str,
    series: Vec<Series>,
    legend: bool,
}

fn draw(o: &mut String, c: &Chart) -> fmt::Result {
    let f = &c.frame;
    writeln!(
        o,
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{t}\">",
        w = coord(f.width),
        h = coord(f.height),
        t = escape(c.title)
    )?;
    let (x0, x1, y0, y1) = (f.x(0.0), f.x(1.0), f.y(0.0), f.y(1.0));
    writeln!(
        o,
        "<rect class=\"plot\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
        coord(x0),
        coord(y1),
        coord(x1 - x0),
        coord(y0 - y1)
    )?;
    writeln!(
        o,
        "<text class=\"title\" x=\"{}\" y=\"14\">{}</text>",
        coord(x0),
        escape(c.title)
    )?;
    for t in &c.y_ticks {
        let y = f.y(c.y.fraction(t.at));
        writeln!(
            o,
            "<line class=\"grid\" x1=\"{a}\" x2=\"{b}\" y1=\"{y}\" y2=\"{y}\"/>\
             <text x=\"{l}\" y=\"{ty}\" text-anchor=\"end\">{}</text>",
            escape(&t.label),
            a = coord(x0),
            b = coord(x1),
            y = coord(y),
            l = coord(x0 - 4.0),
            ty = coord(y + 4.0)
        )?;
    }
    for t in &c.x_ticks {
        let x = f.x(c.x.fraction(t.at));
        writeln!(
            o,
            "<line class=\"grid\" x1=\"{x}\" x2=\"{x}\" y1=\"{a}\" y2=\"{b}\"/>\
             <text x=\"{x}\" y=\"{ty}\" text-anchor=\"middle\">{}</text>",
            escape(&t.label),
            x = coord(x),
            a = coord(y1),
            b = coord(y0 + 4.0),
            ty = coord(y0 + 16.0)
        )?;
    }
    writeln!(
        o,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        coord((x0 + x1) / 2.0),
        coord(f.height - 6.0),
        escape(c.x_label)
    )?;
    let (ly, lx) = (coord((y0 + y1) / 2.0), coord(14.0));
    writeln!(
        o,
        "<text x=\"{lx}\" y=\"{ly}\" text-anchor=\"middle\" transform=\"rotate(-90 {lx} {ly})\">{}</text>",
        escape(c.y_label)
    )?;
    for s in &c.series {
        let mut pixels: Vec<(String, String)> = Vec::with_capacity(s.points.len());
        for &(x, y) in &s.points {
            let p = (coord(f.x(c.x.fraction(x))), coord(f.y(c.y.fraction(y))));
            // Thousands of curve points land on few pixels; keep one each.
            if pixels.last() != Some(&p) {
                pixels.push(p);
            }
        }
        if pixels.is_empty() {
            continue;
        }
        let points: Vec<String> = pixels.iter().map(|(x, y)| format!("{x},{y}")).collect();
        writeln!(
            o,
            "<polyline class=\"series\" data-series=\"{}\" fill=\"none\" stroke=\"{}\" \
             stroke-width=\"1.8\" stroke-linejoin=\"round\" points=\"{}\"><title>{}</title></polyline>",
            escape(&s.name),
            s.color,
            points.join(" "),
            escape(&s.name)
        )?;
        if pixels.len() == 1 {
            let (x, y) = &pixels[0];
            writeln!(o, "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{}\"/>", s.color)?;
        }
    }
    if c.legend {
        for (i, s) in c.series.iter().enumerate() {
            let y = y1 + 14.0 + 15.0 * i as f64;
            let x = x0 + 10.0;
            let empty = if s.points.is_empty() { " (no data)" } else { "" };
            writeln!(
                o,
                "<line x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{}\" stroke-width=\"3\"/>\
                 <text x=\"{}\" y=\"{}\">{}{empty}</text>",
                coord(x),
                coord(x + 18.0),
                s.color,
                coord(x + 24.0),
                coord(y + 4.0),
                escape(&s.name),
                y = coord(y)
            )?;
        }
    }
    writeln!(o, "</svg>")
}

/// A "nice" step (1, 2 or 5 times a power of ten) giving about `count`
/// intervals over `range`.
fn nice_step(range: f64, count: f64) -> f64 {
    let raw = range / count;
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = match raw / magnitude {
        n if n <= 1.0 => 1.0,
        n if n <= 2.0 => 2.0,
        n if n <= 5.0 => 5.0,
        _ => 10.0,
    };
    step * magnitude
}

/// Ticks from 0 to at least `max`; returns the axis end and the ticks.
fn linear_ticks(max: f64, count: f64) -> (f64, Vec<Tick>) {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let step = nice_step(max, count);
    let steps = (max / step).ceil().max(1.0) as u64;
    let ticks = (0..=steps)
        .map(|i| {
            let at = i as f64 * step;
            Tick {
                at,
                label: compact(at),
            }
        })
        .collect();
    (steps as f64 * step, ticks)
}

fn throughput_charts(o: &mut String, timeline: &[Bucket]) -> fmt::Result {
    writeln!(o, "<h2>Throughput over time</h2>")?;
    let buckets: Vec<&Bucket> = timeline.iter().filter(|b| b.t_s.is_finite()).collect();
    if buckets.is_empty() {
        return writeln!(o, "<p class=\"muted\">No timeline recorded.</p>");
    }
    // A bucket covers [t_s, t_s + 1): plot its rate at the middle.
    let end_s = buckets.iter().map(|b| b.t_s + 1.0).fold(1.0_f64, f64::max);
    let (x_max, x_ticks) = linear_ticks(end_s, 8.0);
    let per_bucket = |value: &dyn Fn(&Bucket) -> f64| -> Vec<(f64, f64)> {
        buckets.iter().map(|b| (b.t_s + 0.5, value(b))).collect()
    };
    let messages = per_bucket(&|b| b.messages as f64);
    let megabytes = per_bucket(&|b| b.bytes as f64 / 1e6);
    writeln!(o, "<div class=\"charts\">")?;
    for (title, y_label, points, color) in [
        ("Messages/s (1 s buckets)", "messages/s", messages, PALETTE[0]),
        ("MB/s (1 s buckets)", "MB/s", megabytes, PALETTE[2]),
    ] {
        let y_peak = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
        let (y_max, y_ticks) = linear_ticks(y_peak, 5.0);
        draw(
            o,
            &Chart {
                title,
                frame: Frame {
                    width: 480.0,
                    height: 240.0,
                    left: 58.0,
                    right: 12.0,
                    top: 24.0,
                    bottom: 40.0,
                },
                x: Scale {
                    min: 0.0,
                    max: x_max,
                    log: false,
                },
                x_ticks: x_ticks.clone(),
                x_label: "time since the measured interval began (s)",
                y: Scale {
                    min: 0.0,
                    max: y_max,
                    log: false,
                },
                y_ticks,
                y_label,
                series: vec![Series {
                    name: y_label.to_owned(),
                    color,
                    points,
                }],
                legend: false,
            },
        )?;
    }
    let errors: u64 = buckets.iter().fold(0, |a, b| a.saturating_add(b.errors));
    writeln!(o, "</div>")?;
    if errors > 0 {
        let seconds: Vec<String> = buckets
            .iter()
            .filter(|b| b.errors > 0)
            .map(|b| format!("{}s: {}", fixed(b.t_s, 0), b.errors))
            .collect();
        writeln!(
            o,
            "<p class=\"bad\">Errors in the timeline: {}</p>",
            escape(&seconds.join(", "))
        )?;
    }
    Ok(())
}

/// The highest percentile drawn: 100% itself is infinitely far right on a
/// 1/(1-p) axis, so the maximum sits at 99.9999%.
const PERCENTILE_DECADES_MAX: f64 = 6.0;

/// HdrHistogram's percentile axis: log10(1 / (1 - p)), so 90% is 1,
/// 99% is 2, 99.9% is 3.
fn percentile_x(percentile: f64) -> f64 {
    let remaining = (100.0 - percentile.clamp(0.0, 100.0)) / 100.0;
    let x = (1.0 / remaining).log10();
    if x.is_finite() {
        x.clamp(0.0, PERCENTILE_DECADES_MAX)
    } else {
        PERCENTILE_DECADES_MAX
    }
}

/// `0%`, `90%`, `99%`, `99.9%`... for `decades` nines.
fn percentile_label(decades: u32) -> String {
    match decades {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)).replace(".%", "%"),
    }
}

fn latency_chart(o: &mut String, kinds: &BTreeMap<String, Latency>) -> fmt::Result {
    let series: Vec<Series> = kinds
        .iter()
        .enumerate()
        .map(|(i, (kind, l))| Series {
            name: kind.clone(),
            color: PALETTE[i % PALETTE.len()],
            points: l
                .curve
                .iter()
                .filter(|(p, _)| p.is_finite())
                .map(|&(p, us)| (percentile_x(p), us as f64))
                .collect(),
        })
        .collect();
    let all = || series.iter().flat_map(|s| s.points.iter());
    if all().next().is_none() {
        return writeln!(o, "<p class=\"muted\">No latency curve recorded.</p>");
    }
    let x_max = all()
        .map(|p| p.0.ceil())
        .fold(4.0_f64, f64::max)
        .min(PERCENTILE_DECADES_MAX);
    let x_ticks = (0..=x_max as u32)
        .map(|d| Tick {
            at: f64::from(d),
            label: percentile_label(d),
        })
        .collect();
    // Log microseconds: the kinds span decades (a chunk's 200 against a
    // session's setup), and 0 µs is drawn at 1 µs.
    let lowest = all().map(|p| p.1).fold(f64::INFINITY, f64::min).max(1.0);
    let highest = all().map(|p| p.1).fold(1.0_f64, f64::max);
    let low_decade = lowest.log10().floor();
    let mut high_decade = highest.log10().ceil();
    if high_decade <= low_decade {
        high_decade = low_decade + 1.0;
    }
    let y_ticks = (low_decade as i32..=high_decade as i32)
        .map(|d| {
            let at = 10f64.powi(d);
            Tick {
                at,
                label: compact(at),
            }
        })
        .collect();
    writeln!(o, "<h3>Latency by percentile</h3>")?;
    draw(
        o,
        &Chart {
            title: "Latency percentile distribution",
            frame: Frame {
                width: 720.0,
                height: 340.0,
                left: 58.0,
                right: 36.0,
                top: 24.0,
                bottom: 40.0,
            },
            x: Scale {
                min: 0.0,
                max: x_max,
                log: false,
            },
            x_ticks,
            x_label: "percentile (log scale of 1/(1-p))",
            y: Scale {
                min: 10f64.powf(low_decade),
                max: 10f64.powf(high_decade),
                log: true,
            },
            y_ticks,
            y_label: "latency (µs, log scale)",
            series,
            legend: true,
        },
    )
}

// ---- Numbers ---------------------------------------------------------------

/// `v` with `decimals` decimals, or `n/a` when not finite.
fn fixed(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "n/a".to_owned()
    }
}

fn percent(fraction: f64) -> String {
    if fraction.is_finite() {
        format!("{:.1}%", fraction * 100.0)
    } else {
        "n/a".to_owned()
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let mut reversed = Vec::with_capacity(26);
    let mut run = 0;
    for c in n.to_string().chars().rev() {
        if run == 3 {
            reversed.push(',');
            run = 0;
        }
        reversed.push(c);
        run += 1;
    }
    reversed.iter().rev().collect()
}

/// Octets with a binary-prefixed reading: `1,048,576 (1.0 MiB)`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = None;
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = Some(u);
    }
    match unit {
        Some(u) => format!("{} B ({value:.1} {u})", grouped(n)),
        None => format!("{n} B"),
    }
}

/// A tick label: `0`, `2.5`, `20k`, `1.5M`.
fn compact(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_owned();
    }
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{
        Calibration, Cpu, Fractions, Host, Latency, Mixed, Rss, Sessions, SubscriberReport, Throughput,
        LATENCY_CHUNK, LATENCY_DELIVERED, LATENCY_SETUP, REPORT_VERSION,
    };

    fn curve(base_us: u64) -> Vec<(f64, u64)> {
        [0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0]
            .iter()
            .enumerate()
            .map(|(i, &p)| (p, base_us * (i as u64 + 1)))
            .collect()
    }

    fn latency(base_us: u64) -> Latency {
        Latency {
            count: 1000,
            min: base_us,
            mean: base_us as f64 * 1.5,
            p50: base_us * 2,
            p90: base_us * 3,
            p99: base_us * 4,
            p999: base_us * 5,
            max: base_us * 7,
            curve: curve(base_us),
        }
    }

    fn sample() -> Report {
        let mut latency_us = BTreeMap::new();
        latency_us.insert(LATENCY_CHUNK.to_owned(), latency(40));
        latency_us.insert(LATENCY_DELIVERED.to_owned(), latency(90));
        latency_us.insert(LATENCY_SETUP.to_owned(), latency(2000));
        Report {
            version: REPORT_VERSION,
            tool: "msrp-loadgen 0.1.0".to_owned(),
            started_at: "2024-05-01T10:00:00Z".to_owned(),
            host: Host {
                hostname: "bench-1".to_owned(),
                kernel: "6.8.0".to_owned(),
                cpu_model: "Example CPU".to_owned(),
                cpus: 16,
                memory_bytes: 64 << 30,
            },
            profile: serde_json::json!({"scenario": "sms", "sessions": 1000, "rate": {"per_s": 50}}),
            target: "embedded".to_owned(),
            calibration: Some(Calibration {
                small_messages_per_s: 2.0e6,
                message_bytes: 160,
                bulk_bytes_per_s: 4.0e9,
                chunk_bytes: 65536,
                seconds_each: 2.0,
            }),
            fraction_of_calibration: Some(Fractions {
                messages: 0.25,
                bytes: 0.02,
            }),
            duration_s: 10.0,
            throughput: Throughput {
                messages_per_s: 50_000.0,
                bytes_per_s: 8.0e6,
                messages: 500_000,
                bytes: 80_000_000,
                messages_received_by_peer: 500_000,
            },
            timeline: (0..10)
                .map(|i| Bucket {
                    t_s: i as f64,
                    messages: 49_000 + i * 200,
                    bytes: 8_000_000,
                    errors: u64::from(i == 3),
                })
                .collect(),
            latency_us,
            errors: BTreeMap::from([("408".to_owned(), 1)]),
            sessions: Sessions {
                connections: 10,
                established: 1000,
                failed: 0,
                setup_per_s: 5000.0,
            },
            rss_bytes: Rss {
                engine_before: 20 << 20,
                engine_peak: 60 << 20,
                engine_after: 22 << 20,
                engine_per_session: Some(41943.04),
                load_peak: 30 << 20,
            },
            cpu: Cpu {
                engine_cores: 1.9,
                load_cores: 3.2,
                engine_threads: 2,
                engine_cpus: vec![0, 1],
                load_threads: 4,
                load_cpus: vec![],
                load_saturated: false,
            },
            mixed: Some(Mixed {
                texts_p99_alone_us: 300,
                texts_p99_with_file_us: 450,
                p99_ratio: 1.5,
                file_bytes: 100 << 20,
                file_bytes_per_s: 5.0e7,
            }),
            subscriber: Some(SubscriberReport {
                events: 1000,
                events_per_s: 500.0,
                dropped: true,
            }),
            warnings: vec!["<script>alert(1)</script> & more".to_owned()],
        }
    }

    #[test]
    fn sample_page_is_self_contained_and_escaped() {
        let page = render(&sample());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<svg"));
        assert!(page.contains("dropped by the engine as too slow"));
        assert!(!page.contains("http://"));
        assert!(!page.contains("https://"));
        assert!(!page.contains("NaN"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
        assert!(page.contains("msrp-loadgen 0.1.0"));
        assert!(page.contains("2024-05-01T10:00:00Z"));
        assert!(page.contains("Texts p99 with file"));
    }

    #[test]
    fn sample_page_draws_one_curve_per_latency_kind() {
        let page = render(&sample());
        for kind in [LATENCY_CHUNK, LATENCY_DELIVERED, LATENCY_SETUP] {
            let marker = format!("<polyline class=\"series\" data-series=\"{kind}\"");
            assert_eq!(page.matches(&marker).count(), 1, "{kind}");
        }
        // The two throughput charts, and the three kinds.
        assert_eq!(page.matches("<polyline").count(), 5);
        for label in ["0%", "90%", "99%", "99.9%", "99.99%"] {
            assert!(page.contains(&format!(">{label}</text>")), "{label}");
        }
    }

    #[test]
    fn empty_report_renders_without_nan() {
        let mut r = sample();
        r.timeline.clear();
        r.latency_us.clear();
        r.errors.clear();
        r.warnings.clear();
        r.calibration = None;
        r.fraction_of_calibration = None;
        r.mixed = None;
        r.profile = serde_json::Value::Null;
        r.throughput = Throughput::default();
        r.rss_bytes = Rss::default();
        r.duration_s = 0.0;
        let page = render(&r);
        assert!(!page.contains("NaN"));
        assert!(page.contains("No timeline recorded."));
        assert!(page.contains("No latency measured."));
    }

    #[test]
    fn zero_and_degenerate_values_render_without_nan() {
        let mut r = sample();
        for b in &mut r.timeline {
            b.messages = 0;
            b.bytes = 0;
        }
        r.timeline.truncate(1);
        r.latency_us
            .get_mut(LATENCY_CHUNK)
            .expect("sample has chunk latency")
            .curve = vec![(0.0, 0), (100.0, 0)];
        r.latency_us
            .get_mut(LATENCY_DELIVERED)
            .expect("sample has delivered latency")
            .curve
            .clear();
        r.latency_us
            .get_mut(LATENCY_SETUP)
            .expect("sample has setup latency")
            .curve = vec![(f64::NAN, 5), (99.0, 7)];
        r.duration_s = f64::NAN;
        let page = render(&r);
        assert!(!page.contains("NaN"));
        assert!(page.contains("delivered (no data)"));
    }

    #[test]
    fn percentile_axis_follows_hdrhistogram() {
        assert_eq!(percentile_x(0.0), 0.0);
        assert!((percentile_x(90.0) - 1.0).abs() < 1e-9);
        assert!((percentile_x(99.9) - 3.0).abs() < 1e-9);
        assert_eq!(percentile_x(100.0), PERCENTILE_DECADES_MAX);
        assert_eq!(percentile_label(0), "0%");
        assert_eq!(percentile_label(2), "99%");
        assert_eq!(percentile_label(4), "99.99%");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(compact(20000.0), "20k");
        assert_eq!(compact(2.5), "2.5");
        assert_eq!(bytes(1 << 20), "1,048,576 B (1.0 MiB)");
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
    }
}
