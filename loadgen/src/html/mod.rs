//! The HTML report: one self-contained page per run, and the trend page
//! across many ([`render_trend`]).
//!
//! Everything is inline (a small stylesheet, and SVG plots drawn here from
//! the report's numbers) and nothing refers to the network, so the page can
//! be kept as a CI artifact and opened offline years later. Every string
//! taken from the report goes through [`escape`]; every SVG coordinate goes
//! through `coord`, so an empty or degenerate report still draws.

mod chart;
mod footprint;
mod latency;
mod runs;
mod sections;
mod sweep;
mod throughput;
mod trend;

use std::fmt::{self, Write as _};

use crate::report::Report;
use crate::units::fixed;
use footprint::footprint_charts;
use latency::latency;
use sections::{calibration, errors, host, mixed, profile, rest, sip, summary, tls, warnings};
use throughput::throughput_charts;
pub use trend::render as render_trend;

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
    runs::repeated_runs(o, r)?;
    if let Some(curve) = &r.sweep {
        sweep::sweep(o, curve)?;
    }
    throughput_charts(o, &r.timeline)?;
    footprint_charts(o, &r.timeline)?;
    latency(o, &r.latency_us)?;
    mixed(o, r)?;
    tls(o, r)?;
    sip(o, r)?;
    rest(o, r)?;
    errors(o, &r.errors)?;
    calibration(o, r)?;
    host(o, r)?;
    profile(o, &r.profile)?;
    writeln!(o, "</body>\n</html>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::profile::FileSession;
    use crate::report::{
        Bucket, Calibration, Cpu, Fractions, Host, Latency, Mixed, Rss, SessionTexts, Sessions,
        SubscriberReport, Throughput, LATENCY_CHUNK, LATENCY_DELIVERED, LATENCY_SETUP, REPORT_VERSION,
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
                    engine_rss_bytes: Some((40 << 20) + i * 1000),
                    engine_fds: Some(30),
                    load_rss_bytes: Some(10 << 20),
                    load_fds: Some(24),
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
                load_per_session: Some(2048.0),
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
                files: 1,
                file_session: FileSession::Same,
                file_session_texts: Some(SessionTexts {
                    p99_alone_us: 310,
                    p99_with_file_us: 620,
                    p99_ratio: 2.0,
                    with_file_count: 900,
                }),
            }),
            subscriber: Some(SubscriberReport {
                subscribed_to: Vec::new(),
                events: 1000,
                events_per_s: 500.0,
                dropped: true,
            }),
            sip: Some(crate::report::SipReport {
                transport: "udp".to_owned(),
                signal: "embedded".to_owned(),
                calls_attempted: 1000,
                calls_answered: 999,
                calls_failed: 1,
                failed_by_status: BTreeMap::from([("503".to_owned(), 1)]),
                calls_per_s: 3500.0,
                invite_200_us: latency(800),
                ..Default::default()
            }),
            rest: Some(crate::report::RestReport {
                signal: "embedded".to_owned(),
                form: "batch".to_owned(),
                batch_max: 256,
                connections: 4,
                direction: "engine".to_owned(),
                requests_per_s: 812.0,
                arrival_us: Some(latency(300)),
                errors_by_status: BTreeMap::from([("409".to_owned(), 2)]),
                ..Default::default()
            }),
            warnings: vec!["<script>alert(1)</script> & more".to_owned()],
            label: None,
            commit: None,
            runs: Vec::new(),
            stats: Default::default(),
            sweep: None,
            tls: None,
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
        assert!(page.contains("File session&#39;s p99 ratio") || page.contains("File session's p99 ratio"));
        assert!(page.contains("a session of texts (--file-session same)"));
        assert!(page.contains("SIP calls (--mode sip)"));
        assert!(page.contains("3500 calls/s"));
        assert!(page.contains("REST API (--mode rest)"));
        assert!(page.contains("POST /v1/messages:batch, 256 messages at most"));
    }

    #[test]
    fn sample_page_draws_one_curve_per_latency_kind() {
        let page = render(&sample());
        for kind in [LATENCY_CHUNK, LATENCY_DELIVERED, LATENCY_SETUP] {
            let marker = format!("<polyline class=\"series\" data-series=\"{kind}\"");
            assert_eq!(page.matches(&marker).count(), 1, "{kind}");
        }
        // The two throughput charts, the three kinds, and the engine's and
        // the load's memory and descriptors.
        assert_eq!(page.matches("<polyline").count(), 9);
        assert!(page.contains("Memory and file descriptors over time"));
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
    fn escapes_text_and_attributes() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
    }
}
