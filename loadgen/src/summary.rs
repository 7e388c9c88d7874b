//! The summary table printed at the end of a run.

use std::fmt::Write;

use crate::profile::FileSession;
use crate::report::{Latency, Report, RestReport};
use crate::units::{count, megabytes, trimmed};

/// The run in a dozen lines, then its warnings.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let mut row = |name: &str, value: String| {
        let _ = writeln!(out, "  {name:<28} {value}");
    };
    let field = |name: &str| r.profile.get(name).and_then(|s| s.as_str()).unwrap_or("?");
    let scenario = field("scenario");
    // How the application side spoke matters only where it spoke.
    let control = match (field("direction"), &r.subscriber, &r.rest) {
        ("load", None, _) => String::new(),
        (_, None, Some(rest)) => format!(", sends by REST {}", rest.form),
        _ => format!(", control {}", field("control").replace('_', "-")),
    };
    row(
        "scenario",
        format!(
            "{scenario} against {} ({:.1} s measured{control})",
            r.target, r.duration_s
        ),
    );
    row(
        "throughput",
        format!(
            "{} msg/s, {}/s",
            count(r.throughput.messages_per_s),
            megabytes(r.throughput.bytes_per_s)
        ),
    );
    if let (Some(c), Some(f)) = (&r.calibration, &r.fraction_of_calibration) {
        row(
            "raw loopback (calibration)",
            format!(
                "{} writes/s of {} octets, {}/s bulk",
                count(c.small_messages_per_s),
                c.message_bytes,
                megabytes(c.bulk_bytes_per_s)
            ),
        );
        row(
            "fraction of raw",
            format!(
                "{:.1}% of messages, {:.1}% of bytes",
                f.messages * 100.0,
                f.bytes * 100.0
            ),
        );
    }
    for (kind, l) in &r.latency_us {
        row(
            &format!("latency {kind} (us)"),
            format!(
                "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
                l.p50, l.p90, l.p99, l.p999, l.max, l.count
            ),
        );
    }
    if let Some(m) = &r.mixed {
        row(
            "mixed: texts p99 (us)",
            format!(
                "{} alone, {} beside the file: ratio {:.2}",
                m.texts_p99_alone_us, m.texts_p99_with_file_us, m.p99_ratio
            ),
        );
        if let Some(t) = &m.file_session_texts {
            row(
                "mixed: file session's texts",
                format!(
                    "p99 {} us alone, {} us behind the file in their send queue: ratio {:.2} ({} samples)",
                    t.p99_alone_us, t.p99_with_file_us, t.p99_ratio, t.with_file_count
                ),
            );
        }
        row(
            "mixed: file",
            format!(
                "{} octets at {}/s, {} whole, on {}",
                m.file_bytes,
                megabytes(m.file_bytes_per_s),
                match m.files {
                    1 => "1 file".to_string(),
                    n => format!("{n} files"),
                },
                match m.file_session {
                    FileSession::Other => "a session of its own",
                    FileSession::Same => "a session of texts (--file-session same)",
                }
            ),
        );
    }
    if let Some(s) = &r.subscriber {
        row(
            "subscriber",
            format!(
                "{} events/s read{}{}",
                count(s.events_per_s),
                match s.subscribed_to.is_empty() {
                    true => String::new(),
                    false => format!(" ({} only)", s.subscribed_to.join(", ")),
                },
                if s.dropped {
                    ", then dropped by the engine as too slow"
                } else {
                    ""
                }
            ),
        );
    }
    row(
        "sessions",
        format!(
            "{} on {} connections, set up at {}/s",
            r.sessions.established,
            r.sessions.connections,
            count(r.sessions.setup_per_s)
        ),
    );
    if let Some(sip) = &r.sip {
        row(
            "sip calls",
            format!(
                "{} of {} answered over {} ({} msrp-signal, {} INVITEs out at most), {} failed{}",
                sip.calls_answered,
                sip.calls_attempted,
                sip.transport,
                sip.signal,
                sip.invites_outstanding_max,
                sip.calls_failed,
                match sip.failed_by_status.is_empty() {
                    true => String::new(),
                    false => format!(" {:?}", sip.failed_by_status),
                }
            ),
        );
        row(
            "sip setup rate",
            format!("{}/s calls over {:.2} s", count(sip.calls_per_s), sip.setup_s),
        );
        let l = &sip.invite_200_us;
        row(
            "sip INVITE->200 (us)",
            format!("p50 {}  p90 {}  p99 {}  max {}", l.p50, l.p90, l.p99, l.max),
        );
        let c = &sip.setup_cpu;
        let cores = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        row(
            "sip setup cores",
            format!(
                "msrp-signal {}, caller {:.2}, engine {}, load {:.2}",
                cores(c.signal_cores),
                c.caller_cores,
                cores(c.engine_cores),
                c.load_cores
            ),
        );
        row(
            "sip BYEs",
            format!(
                "{} sent, {} answered {:?}, {} calls ended by msrp-signal",
                sip.byes_sent, sip.byes_answered, sip.bye_statuses, sip.ended_by_peer
            ),
        );
    }
    if let Some(rest) = &r.rest {
        rest_rows(&mut row, rest);
    }
    let per_session = r
        .rss_bytes
        .engine_per_session
        .map_or(String::new(), |b| format!(", {b:.0} octets per session"));
    row(
        "engine memory (RSS)",
        format!(
            "{} before, {} peak{per_session}",
            megabytes(r.rss_bytes.engine_before as f64),
            megabytes(r.rss_bytes.engine_peak as f64)
        ),
    );
    let load_per_session = r
        .rss_bytes
        .load_per_session
        .map_or(String::new(), |b| format!(", {b:.0} octets per session"));
    row(
        "load memory (RSS)",
        format!(
            "{} peak{load_per_session}",
            megabytes(r.rss_bytes.load_peak as f64)
        ),
    );
    if let Some(drift) = footprint_drift(&r.timeline) {
        row("footprint after warm-up", drift);
    }
    row(
        "cpu (cores busy)",
        format!(
            "engine {:.2} of {} shards, load {:.2} of {} threads{}",
            r.cpu.engine_cores,
            r.cpu.engine_threads,
            r.cpu.load_cores,
            r.cpu.load_threads,
            if r.cpu.load_saturated {
                " (LOAD SATURATED)"
            } else {
                ""
            }
        ),
    );
    let errors: u64 = r.errors.values().sum();
    row(
        "errors",
        if errors == 0 {
            "none".into()
        } else {
            format!("{errors}: {:?}", r.errors)
        },
    );
    tls_rows(&mut row, r);
    repeated(&mut out, r);
    for warning in &r.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
}

/// `--repeat N`: under the table, each metric over the runs.
fn repeated(out: &mut String, r: &Report) {
    if r.runs.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "  over {} runs (the figures above are the median run's):",
        r.runs.len()
    );
    for (name, s) in &r.stats {
        let _ = writeln!(
            out,
            "  {name:<28} {} ± {} ({}..{}) over {} runs",
            metric_value(s.median, &s.unit),
            metric_value(s.spread, &s.unit),
            metric_value(s.min, &s.unit),
            metric_value(s.max, &s.unit),
            s.values.len()
        );
    }
}

/// A metric's value with its unit (`stats::Metric::unit`), as the summary,
/// the HTML report's repeated runs and the trend page print it: `12.3 k
/// msg/s`, `8.0 MB/s`, `412 us`, `0.25`.
pub fn metric_value(value: f64, unit: &str) -> String {
    let number = match unit {
        "B/s" => return format!("{}/s", megabytes(value)),
        _ if value.abs() >= 1000.0 => count(value),
        _ => trimmed(value),
    };
    match unit {
        "" => number,
        unit => format!("{number} {unit}"),
    }
}

/// `--mode rest`: the setup, the sends and the deletes.
fn rest_rows(row: &mut impl FnMut(&str, String), rest: &RestReport) {
    let p50_p99 = |l: &Option<Latency>| match l {
        Some(l) => format!("p50 {}  p99 {}  ({} samples)", l.p50, l.p99, l.count),
        None => "-".into(),
    };
    row(
        "rest",
        format!(
            "{} msrp-signal, form {} (batch {} at most), {} connections, direction {}",
            rest.signal, rest.form, rest.batch_max, rest.connections, rest.direction
        ),
    );
    row(
        "rest setup",
        format!(
            "{} of {} sessions by 3PCC at {}/s, POST->201 p50 {} us p99 {} us, {} failed{}",
            rest.sessions_created,
            rest.sessions_attempted,
            count(rest.sessions_per_s),
            rest.create_us.p50,
            rest.create_us.p99,
            rest.sessions_failed,
            match rest.setup_failed_by_status.is_empty() {
                true => String::new(),
                false => format!(" {:?}", rest.setup_failed_by_status),
            }
        ),
    );
    if rest.direction == "engine" || rest.direction == "both" {
        row(
            "rest sends",
            format!(
                "{} requests/s, {} msg/s accepted ({:.1} per request)",
                count(rest.requests_per_s),
                count(rest.messages_per_s),
                rest.messages_per_request
            ),
        );
        row("rest request->arrival (us)", p50_p99(&rest.arrival_us));
        row("rest request->response (us)", p50_p99(&rest.response_us));
        let cores = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        row(
            "rest cores",
            format!(
                "msrp-signal {}, REST client {}",
                cores(rest.signal_cores),
                cores(rest.client_cores)
            ),
        );
    }
    let refused: u64 = rest.errors_by_status.values().sum();
    row(
        "rest errors",
        match refused {
            0 => "none".into(),
            n => format!(
                "{n} refused {:?}{}",
                rest.errors_by_status,
                rest.first_error
                    .as_ref()
                    .map_or(String::new(), |e| format!(", first: {e}"))
            ),
        },
    );
    row(
        "rest deletes",
        format!("{} sent {:?}", rest.deletes_sent, rest.delete_statuses),
    );
}

/// `--tls`: the handshake rate and the plaintext run beside this one.
fn tls_rows(row: &mut impl FnMut(&str, String), r: &Report) {
    let Some(t) = &r.tls else {
        return;
    };
    let h = &t.handshakes;
    row("tls", format!("{} {}", h.protocol, h.cipher_suite));
    row(
        "tls handshakes/s",
        format!(
            "{} full, {} resuming ({} of {} resumed)",
            count(h.full_per_s),
            count(h.resumed_per_s),
            h.resumed,
            h.resumed_tries
        ),
    );
    if let Some(b) = &t.beside {
        row(
            "plaintext beside",
            format!(
                "{} msg/s, {}/s",
                count(b.plaintext.messages_per_s),
                megabytes(b.plaintext.bytes_per_s)
            ),
        );
        let pairs: Vec<String> = b
            .pairs
            .iter()
            .map(|p| format!("{:.1}%", p.messages_ratio * 100.0))
            .collect();
        row(
            "tls / plaintext",
            format!(
                "{:.1}% of messages, {:.1}% of bytes (pairs: {})",
                b.messages_ratio * 100.0,
                b.bytes_ratio * 100.0,
                pairs.join(", ")
            ),
        );
    }
}

/// A soak's question: from the end of the first tenth of the run (warm-up)
/// to its end, how the engine's and the load's memory and descriptors moved.
fn footprint_drift(timeline: &[crate::report::Bucket]) -> Option<String> {
    let sampled: Vec<_> = timeline
        .iter()
        .filter(|b| b.engine_rss_bytes.is_some() || b.load_rss_bytes.is_some())
        .collect();
    let warm = sampled.get(sampled.len() / 10)?;
    let last = sampled.last()?;
    let moved = |name: &str, value: fn(&crate::report::Bucket) -> Option<u64>, unit: fn(u64) -> String| {
        let (from, to) = (value(warm)?, value(last)?);
        let peak = sampled.iter().filter_map(|b| value(b)).max()?;
        Some(format!(
            "{name} {} -> {} (peak {})",
            unit(from),
            unit(to),
            unit(peak)
        ))
    };
    let mb = |v: u64| megabytes(v as f64);
    let plain = |v: u64| v.to_string();
    let parts: Vec<String> = [
        moved("engine RSS", |b| b.engine_rss_bytes, mb),
        moved("fds", |b| b.engine_fds, plain),
        moved("load RSS", |b| b.load_rss_bytes, mb),
        moved("fds", |b| b.load_fds, plain),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| format!("{} from {:.0} s", parts.join(", "), warm.t_s + 1.0))
}

#[cfg(test)]
mod tests {
    use super::footprint_drift;
    use crate::report::Bucket;

    fn bucket(t: u64, engine_rss: u64, engine_fds: u64) -> Bucket {
        Bucket {
            t_s: t as f64,
            engine_rss_bytes: Some(engine_rss),
            engine_fds: Some(engine_fds),
            load_rss_bytes: Some(5_000_000),
            load_fds: Some(20),
            ..Bucket::default()
        }
    }

    #[test]
    fn drift_is_measured_from_the_end_of_the_first_tenth() {
        // A start-up climb in the first tenth, then a slow leak.
        let timeline: Vec<Bucket> = (0..20)
            .map(|t| match t {
                0 => bucket(t, 1_000_000, 10),
                1 => bucket(t, 30_000_000, 40),
                _ => bucket(t, 30_000_000 + t * 100_000, 40 + t),
            })
            .collect();
        let text = footprint_drift(&timeline).unwrap();
        assert!(
            text.starts_with("engine RSS 30.2 MB -> 31.9 MB (peak 31.9 MB), fds 42 -> 59 (peak 59)"),
            "{text}"
        );
        assert!(text.contains("load RSS 5.0 MB -> 5.0 MB"), "{text}");
        assert!(text.ends_with("from 3 s"), "{text}");
        assert_eq!(footprint_drift(&[Bucket::default()]), None);
    }
}
