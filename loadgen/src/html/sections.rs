//! The page's text sections: the warnings, then key/value tables for the
//! summary, the mixed scenario, the errors, the calibration, the host and
//! the profile.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use super::escape;
use crate::profile::FileSession;
use crate::report::Report;
use crate::units::{bytes, fixed, grouped, percent};

pub(super) fn warnings(o: &mut String, r: &Report) -> fmt::Result {
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

pub(super) fn summary(o: &mut String, r: &Report) -> fmt::Result {
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
            "Load generator RSS per session",
            m.load_per_session
                .map_or_else(|| "n/a".to_owned(), |b| format!("{} B", fixed(b, 0))),
        ),
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
            value: format!(
                "{}{}{}",
                fixed(sub.events_per_s, 1),
                match sub.subscribed_to.is_empty() {
                    true => String::new(),
                    false => format!(" ({} only)", sub.subscribed_to.join(", ")),
                },
                match sub.dropped {
                    true => ", then dropped by the engine as too slow",
                    false => "",
                }
            ),
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

pub(super) fn mixed(o: &mut String, r: &Report) -> fmt::Result {
    let Some(m) = &r.mixed else {
        return Ok(());
    };
    writeln!(o, "<h2>Mixed: texts beside a file transfer</h2>")?;
    let mut rows = vec![
        kv(
            "File on",
            match m.file_session {
                FileSession::Other => "a session of its own".to_owned(),
                FileSession::Same => "a session of texts (--file-session same)".to_owned(),
            },
        ),
        kv("Texts p99 alone", format!("{} µs", grouped(m.texts_p99_alone_us))),
        kv(
            "Texts p99 with file",
            format!("{} µs", grouped(m.texts_p99_with_file_us)),
        ),
        kv("p99 ratio (with / alone)", fixed(m.p99_ratio, 2)),
    ];
    if let Some(t) = &m.file_session_texts {
        rows.extend([
            kv(
                "File session's texts p99 alone",
                format!("{} µs", grouped(t.p99_alone_us)),
            ),
            kv(
                "File session's texts p99 with file",
                format!(
                    "{} µs ({} samples)",
                    grouped(t.p99_with_file_us),
                    grouped(t.with_file_count)
                ),
            ),
            kv("File session's p99 ratio", fixed(t.p99_ratio, 2)),
        ]);
    }
    rows.extend([
        kv("File bytes", bytes(m.file_bytes)),
        kv("File MB/s", fixed(m.file_bytes_per_s / 1e6, 2)),
        kv("Files whole", m.files.to_string()),
    ]);
    kv_table(o, &rows)
}

/// `--tls`: handshakes, the engine's TLS counters, and the plaintext run
/// beside this one with their ratio.
pub(super) fn tls(o: &mut String, r: &Report) -> fmt::Result {
    let Some(t) = &r.tls else {
        return Ok(());
    };
    writeln!(o, "<h2>MSRP over TLS (--tls)</h2>")?;
    let h = &t.handshakes;
    let mut rows = vec![
        kv("Negotiated", format!("{} {}", h.protocol, h.cipher_suite)),
        kv(
            "Full handshakes/s",
            format!(
                "{} ({} threads, {} s)",
                fixed(h.full_per_s, 0),
                h.threads,
                fixed(h.seconds_each, 2)
            ),
        ),
        kv(
            "Resuming handshakes/s",
            format!(
                "{} ({} of {} resumed)",
                fixed(h.resumed_per_s, 0),
                grouped(h.resumed),
                grouped(h.resumed_tries)
            ),
        ),
        kv(
            "Engine: handshakes, resumed, failures",
            format!(
                "{}, {}, {}",
                grouped(t.engine_handshakes),
                grouped(t.engine_resumed),
                grouped(t.engine_failures)
            ),
        ),
    ];
    if let Some(b) = &t.beside {
        rows.extend([
            kv(
                "Plaintext messages/s, MB/s",
                format!(
                    "{}, {}",
                    fixed(b.plaintext.messages_per_s, 1),
                    fixed(b.plaintext.bytes_per_s / 1e6, 2)
                ),
            ),
            kv(
                "TLS messages/s, MB/s",
                format!(
                    "{}, {}",
                    fixed(r.throughput.messages_per_s, 1),
                    fixed(r.throughput.bytes_per_s / 1e6, 2)
                ),
            ),
            kv("TLS / plaintext (messages)", percent(b.messages_ratio)),
            kv("TLS / plaintext (bytes)", percent(b.bytes_ratio)),
            kv(
                "Engine cores, plaintext / TLS",
                format!(
                    "{} / {}",
                    fixed(b.plaintext_cpu.engine_cores, 2),
                    fixed(r.cpu.engine_cores, 2)
                ),
            ),
        ]);
        let pairs: Vec<String> = b.pairs.iter().map(|p| percent(p.messages_ratio)).collect();
        rows.push(kv("Ratio of each pair", pairs.join(", ")));
    }
    kv_table(o, &rows)
}

/// `--mode sip`: the calls that set the sessions up.
pub(super) fn sip(o: &mut String, r: &Report) -> fmt::Result {
    let Some(c) = &r.sip else {
        return Ok(());
    };
    writeln!(o, "<h2>SIP calls (--mode sip)</h2>")?;
    let l = &c.invite_200_us;
    let cores = |v: Option<f64>| v.map_or("-".to_owned(), |v| fixed(v, 2));
    let mut failed = kv(
        "Calls failed",
        match c.failed_by_status.is_empty() {
            true => grouped(c.calls_failed),
            false => format!("{} {:?}", grouped(c.calls_failed), c.failed_by_status),
        },
    );
    failed.bad = c.calls_failed > 0;
    let rows = vec![
        kv(
            "msrp-signal",
            format!(
                "{} over {}, {} INVITEs out at most",
                c.signal, c.transport, c.invites_outstanding_max
            ),
        ),
        kv("Calls attempted", grouped(c.calls_attempted)),
        kv("Calls answered", grouped(c.calls_answered)),
        failed,
        kv(
            "Setup rate",
            format!(
                "{} calls/s over {} s",
                fixed(c.calls_per_s, 0),
                fixed(c.setup_s, 2)
            ),
        ),
        kv(
            "INVITE→200",
            format!(
                "p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
                grouped(l.p50),
                grouped(l.p90),
                grouped(l.p99),
                grouped(l.max)
            ),
        ),
        kv(
            "Cores while setting up",
            format!(
                "msrp-signal {}, caller {}, engine {}, load {}",
                cores(c.setup_cpu.signal_cores),
                fixed(c.setup_cpu.caller_cores, 2),
                cores(c.setup_cpu.engine_cores),
                fixed(c.setup_cpu.load_cores, 2)
            ),
        ),
        kv(
            "BYEs",
            format!(
                "{} sent, {} answered {:?}; {} calls ended by msrp-signal",
                grouped(c.byes_sent),
                grouped(c.byes_answered),
                c.bye_statuses,
                grouped(c.ended_by_peer)
            ),
        ),
    ];
    kv_table(o, &rows)
}

/// `--mode rest`: the REST calls that set the sessions up and asked the
/// engine's sends.
pub(super) fn rest(o: &mut String, r: &Report) -> fmt::Result {
    let Some(c) = &r.rest else {
        return Ok(());
    };
    writeln!(o, "<h2>REST API (--mode rest)</h2>")?;
    let latency = |l: &Option<crate::report::Latency>| match l {
        Some(l) => format!(
            "p50 {} µs, p99 {} µs, max {} µs ({} samples)",
            grouped(l.p50),
            grouped(l.p99),
            grouped(l.max),
            grouped(l.count)
        ),
        None => "n/a".to_owned(),
    };
    let cores = |v: Option<f64>| v.map_or("-".to_owned(), |v| fixed(v, 2));
    let refused: u64 = c.errors_by_status.values().sum();
    let mut rows = vec![
        kv(
            "msrp-signal",
            format!(
                "{}, {} keep-alive connections, direction {}",
                c.signal, c.connections, c.direction
            ),
        ),
        kv(
            "Form",
            match c.form.as_str() {
                "batch" => format!("POST /v1/messages:batch, {} messages at most", c.batch_max),
                _ => "POST /v1/sessions/{id}/messages, one each".to_owned(),
            },
        ),
        kv(
            "Sessions (3PCC)",
            format!(
                "{} of {} created at {} /s over {} s",
                grouped(c.sessions_created),
                grouped(c.sessions_attempted),
                fixed(c.sessions_per_s, 0),
                fixed(c.setup_s, 2)
            ),
        ),
        Kv {
            key: "Sessions failed",
            value: match c.setup_failed_by_status.is_empty() {
                true => grouped(c.sessions_failed),
                false => format!("{} {:?}", grouped(c.sessions_failed), c.setup_failed_by_status),
            },
            bad: c.sessions_failed > 0,
        },
        kv(
            "POST /v1/sessions→201",
            format!(
                "p50 {} µs, p99 {} µs",
                grouped(c.create_us.p50),
                grouped(c.create_us.p99)
            ),
        ),
    ];
    if c.direction == "engine" || c.direction == "both" {
        rows.extend([
            kv("Requests/s", fixed(c.requests_per_s, 1)),
            kv(
                "Messages/s accepted",
                format!(
                    "{} ({} per request)",
                    fixed(c.messages_per_s, 1),
                    fixed(c.messages_per_request, 1)
                ),
            ),
            kv("Request→MSRP arrival", latency(&c.arrival_us)),
            kv("Request→response", latency(&c.response_us)),
            kv(
                "Cores (measured)",
                format!(
                    "msrp-signal {}, REST client {}",
                    cores(c.signal_cores),
                    cores(c.client_cores)
                ),
            ),
        ]);
    }
    rows.push(Kv {
        key: "Messages refused",
        value: match refused {
            0 => "none".to_owned(),
            n => format!(
                "{} {:?}{}",
                grouped(n),
                c.errors_by_status,
                c.first_error
                    .as_ref()
                    .map_or(String::new(), |e| format!("; first: {e}"))
            ),
        },
        bad: refused > 0,
    });
    rows.push(kv(
        "DELETEs",
        format!("{} sent {:?}", grouped(c.deletes_sent), c.delete_statuses),
    ));
    kv_table(o, &rows)
}

pub(super) fn errors(o: &mut String, errors: &BTreeMap<String, u64>) -> fmt::Result {
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

pub(super) fn calibration(o: &mut String, r: &Report) -> fmt::Result {
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

pub(super) fn host(o: &mut String, r: &Report) -> fmt::Result {
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

pub(super) fn profile(o: &mut String, p: &serde_json::Value) -> fmt::Result {
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
