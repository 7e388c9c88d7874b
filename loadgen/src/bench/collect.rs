//! Collecting the report: the measured interval's counters, the engine's
//! error responses, CPU time, memory, latencies and the `mixed` figures,
//! gathered into the [`Report`] with the warnings that say where its
//! figures do not measure the engine.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use anyhow::Result;
use msrp_engine::control::EngineStats;

use super::measure::Measurement;
use super::sessions::Load;
use super::stop::Stopped;
use super::Bench;
use crate::commander::LATENCY_ENGINE_SENT;
use crate::embedded::Engine;
use crate::load::{
    LATENCY_FILE_SESSION_TEXTS_ALONE, LATENCY_FILE_SESSION_TEXTS_WITH_FILE, LATENCY_TEXTS_ALONE,
    LATENCY_TEXTS_WITH_FILE,
};
use crate::procfs;
use crate::profile::{Direction, FileSession, Scenario};
use crate::report::{
    Calibration, Cpu, Fractions, Latency, Mixed, Report, RestReport, Rss, SessionTexts, Sessions, Throughput,
    LATENCY_DELIVERED, REPORT_VERSION,
};
use crate::rest::LATENCY_REST_RESPONSE;

/// The report of the run, from what every phase found.
pub(super) fn report(
    bench: &Bench,
    calibration: Option<Calibration>,
    engine: &Engine,
    rss_before: u64,
    load: &Load,
    measurement: Measurement,
    stopped: Stopped,
) -> Result<Report> {
    let (args, profile, layout) = (bench.args, &bench.profile, &bench.layout);
    let shared = &load.shared;
    let (established, setup_elapsed, rss_established) =
        (load.established, load.setup_elapsed, load.rss_established);
    let (measured, rss_peak) = (measurement.measured, measurement.rss_peak);
    // The readings at the measured interval's two ends.
    let (counts_0, counts_1) = (measurement.counts_0, measurement.counts_1);
    let (stats_0, stats_1) = (measurement.stats_0, measurement.stats_1);
    let (engine_cpu_0, engine_cpu_1) = (measurement.engine_cpu_0, measurement.engine_cpu_1);
    let (load_cpu_0, load_cpu_1) = (measurement.load_cpu_0, measurement.load_cpu_1);
    let Measurement {
        timeline, mixed_file, ..
    } = measurement;
    let Stopped {
        recorded,
        subscriber,
        rss_after,
        stop_failed,
        sip,
        rest,
    } = stopped;
    let seconds = measured.as_secs_f64();
    let delta = counts_1.minus(&counts_0);
    let mut errors: BTreeMap<String, u64> = recorded.errors.clone();
    // The engine's error responses in the measured interval (after it, a
    // closing connection's sessions answer what they owed with 481).
    let (responses_0, received_0) = engine_totals(stats_0.as_ref());
    let (responses_1, received_1) = engine_totals(stats_1.as_ref());
    for (status, n) in responses_1 {
        let n = n - responses_0.get(&status).copied().unwrap_or(0).min(n);
        if status != "200" && n > 0 {
            *errors.entry(format!("engine_{status}")).or_default() += n;
        }
    }
    let messages_received_by_peer = received_1.saturating_sub(received_0) + delta.received;
    // The load's messages delivered, and the engine's received by the load.
    let messages = delta.delivered + delta.received;
    let throughput = Throughput {
        messages_per_s: messages as f64 / seconds,
        bytes_per_s: (delta.delivered_bytes + delta.received_bytes) as f64 / seconds,
        messages,
        bytes: delta.delivered_bytes + delta.received_bytes,
        messages_received_by_peer,
    };
    let engine_cores = (engine_cpu_1.saturating_sub(engine_cpu_0)).as_secs_f64() / seconds;
    let load_cores = (load_cpu_1.saturating_sub(load_cpu_0)).as_secs_f64() / seconds;
    let load_thread_count = layout.load_threads + usize::from(profile.direction.engine_sends());
    // The load is the limit when its threads are busy and the engine has
    // room; when both are busy the machine is (reported, not a warning).
    let load_saturated = load_cores >= 0.9 * layout.load_threads as f64
        && (engine.pid.is_none() || engine_cores < 0.8 * layout.shards.max(1) as f64);
    let mut latency_us: BTreeMap<String, Latency> = recorded
        .latency_us
        .iter()
        .map(|(kind, h)| (kind.to_string(), Latency::of(h)))
        .collect();
    let mixed = mixed_file.map(|(file_bytes, took, files)| {
        let p99 = |kind: &str| latency_us.get(kind).map_or(0, |l| l.p99);
        let (alone, with_file) = (p99(LATENCY_TEXTS_ALONE), p99(LATENCY_TEXTS_WITH_FILE));
        let file_session_texts = (profile.file_session == FileSession::Same).then(|| {
            let alone = p99(LATENCY_FILE_SESSION_TEXTS_ALONE);
            let with_file = p99(LATENCY_FILE_SESSION_TEXTS_WITH_FILE);
            SessionTexts {
                p99_alone_us: alone,
                p99_with_file_us: with_file,
                p99_ratio: with_file as f64 / alone.max(1) as f64,
                with_file_count: latency_us
                    .get(LATENCY_FILE_SESSION_TEXTS_WITH_FILE)
                    .map_or(0, |l| l.count),
            }
        });
        Mixed {
            texts_p99_alone_us: alone,
            texts_p99_with_file_us: with_file,
            p99_ratio: with_file as f64 / alone.max(1) as f64,
            file_bytes,
            file_bytes_per_s: file_bytes as f64 / took.as_secs_f64().max(1e-9),
            files,
            file_session: profile.file_session,
            file_session_texts,
        }
    });
    if profile.scenario != Scenario::Mixed {
        latency_us.retain(|k, _| {
            ![
                LATENCY_TEXTS_ALONE,
                LATENCY_TEXTS_WITH_FILE,
                LATENCY_FILE_SESSION_TEXTS_ALONE,
                LATENCY_FILE_SESSION_TEXTS_WITH_FILE,
            ]
            .contains(&k.as_str())
        });
    }

    let mut warnings = Vec::new();
    if load_saturated {
        warnings.push(format!(
            "the load side was saturated ({load_cores:.2} of {} load cores busy, engine {engine_cores:.2} of {} cores): \
             these figures are the load generator's limit, not the engine's capacity",
            layout.load_threads,
            layout.shards.max(1)
        ));
    }
    if established < profile.total_sessions() {
        warnings.push(format!(
            "only {established} of {} sessions were set up{}",
            profile.total_sessions(),
            load.first_error
                .as_ref()
                .map_or(String::new(), |e| format!(" (first refusal: {e})"))
        ));
    }
    let error_total: u64 = errors.values().sum();
    if error_total > 0 {
        warnings.push(format!("{error_total} errors: {errors:?}"));
    }
    let reasons = shared.reasons.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if shared.closed_early.load(Ordering::Relaxed) > 0 {
        warnings.push(format!(
            "{} sessions, connections or messages ended early; first reasons: {}",
            shared.closed_early.load(Ordering::Relaxed),
            reasons.join("; ")
        ));
    }
    let unsent = shared.unsent.load(Ordering::Relaxed);
    if unsent > 0 {
        warnings.push(format!(
            "the offered rate was not reached: {unsent} scheduled sends were never made (every \
             session's send queue was full); the throughput above is what went through"
        ));
    }
    if profile.scenario != Scenario::Sessions && messages == 0 {
        warnings.push("no message was delivered in the measured interval".into());
    }
    if subscriber.as_ref().is_some_and(|s| s.dropped) {
        warnings.push(
            "the engine dropped the subscriber as too slow (--subscriber-queue-depth): \
             an application must read events as fast as the engine makes them"
                .into(),
        );
    }
    if let Some(sip) = &sip {
        if sip.calls_failed > 0 {
            warnings.push(format!(
                "{} of {} calls failed: {:?}{}",
                sip.calls_failed,
                sip.calls_attempted,
                sip.failed_by_status,
                sip.first_failure
                    .as_ref()
                    .map_or(String::new(), |e| format!(" (first: {e})"))
            ));
        }
        if sip.calls_left > 0 {
            warnings.push(format!(
                "{} calls were still up after the BYEs ({} sent, {} answered)",
                sip.calls_left, sip.byes_sent, sip.byes_answered
            ));
        }
    }
    let rest = rest.map(|mut rest| {
        // The load's stamps measured REST request to arrival (the kind is
        // the one the load files the engine's sends under).
        let arrival = match profile.direction {
            Direction::Engine => LATENCY_DELIVERED,
            _ => LATENCY_ENGINE_SENT,
        };
        if rest.direction != "load" && rest.direction != "none" {
            rest.arrival_us = latency_us.get(arrival).cloned();
        }
        rest.response_us = latency_us.get(LATENCY_REST_RESPONSE).cloned();
        rest
    });
    if let Some(rest) = &rest {
        warnings.extend(rest_warnings(rest));
    }
    if let Some(why) = stop_failed {
        warnings.push(format!("after the run: {why}"));
    }
    if engine.pid.is_none() {
        warnings.push("the engine's process is not visible: no engine CPU or memory figures".into());
    }

    let fraction_of_calibration = calibration.as_ref().map(|c| Fractions {
        messages: throughput.messages_per_s / c.small_messages_per_s.max(1e-9),
        bytes: throughput.bytes_per_s / c.bulk_bytes_per_s.max(1e-9),
    });
    Ok(Report {
        version: REPORT_VERSION,
        tool: format!("msrp-loadgen {}", env!("CARGO_PKG_VERSION")),
        started_at: bench.started_at.clone(),
        host: procfs::host(),
        profile: serde_json::to_value(profile)?,
        target: match &args.target {
            Some(t) => t.clone(),
            None => "embedded".into(),
        },
        calibration,
        fraction_of_calibration,
        duration_s: seconds,
        throughput,
        timeline,
        latency_us,
        errors,
        sessions: Sessions {
            connections: shared.connections_up.load(Ordering::Relaxed),
            established,
            failed: profile.total_sessions() - established,
            setup_per_s: established as f64 / setup_elapsed.as_secs_f64().max(1e-9),
        },
        rss_bytes: Rss {
            engine_before: rss_before,
            engine_peak: rss_peak.max(rss_established),
            engine_after: rss_after,
            engine_per_session: (established > 0 && engine.pid.is_some())
                .then(|| rss_established.saturating_sub(rss_before) as f64 / established as f64),
            load_peak: procfs::peak_rss_bytes(std::process::id()).unwrap_or(0),
            load_per_session: (established > 0).then(|| {
                load.load_rss_established.saturating_sub(load.load_rss_before) as f64 / established as f64
            }),
        },
        cpu: Cpu {
            engine_cores,
            load_cores,
            engine_threads: layout.shards,
            engine_cpus: layout.engine_cpus.clone(),
            load_threads: load_thread_count,
            load_cpus: layout.load_cpus.clone(),
            load_saturated,
        },
        mixed,
        subscriber,
        sip,
        rest,
        warnings,
        label: args.label.clone(),
        commit: git_commit(),
        runs: Vec::new(),
        stats: Default::default(),
        sweep: None,
        tls: None,
    })
}

/// What a reader of a `--mode rest` report must see.
fn rest_warnings(rest: &RestReport) -> Vec<String> {
    let mut warnings = Vec::new();
    if rest.sessions_failed > 0 {
        warnings.push(format!(
            "{} of {} REST sessions were not set up: {:?}{}",
            rest.sessions_failed,
            rest.sessions_attempted,
            rest.setup_failed_by_status,
            rest.first_setup_failure
                .as_ref()
                .map_or(String::new(), |e| format!(" (first: {e})"))
        ));
    }
    let refused: u64 = rest.errors_by_status.values().sum();
    if refused > 0 {
        warnings.push(format!(
            "msrp-signal's REST API refused {refused} messages: {:?}{}",
            rest.errors_by_status,
            rest.first_error
                .as_ref()
                .map_or(String::new(), |e| format!(" (first: {e})"))
        ));
    }
    let deleted = rest.delete_statuses.get("200").copied().unwrap_or(0);
    if deleted < rest.deletes_sent || rest.deletes_sent < rest.sessions_created {
        warnings.push(format!(
            "{} of {} REST sessions deleted ({} DELETEs sent: {:?}){}",
            deleted,
            rest.sessions_created,
            rest.deletes_sent,
            rest.delete_statuses,
            rest.first_delete_error
                .as_ref()
                .map_or(String::new(), |e| format!(" (first: {e})"))
        ));
    }
    warnings
}

/// Error responses by status and messages received, over all shards.
fn engine_totals(stats: Option<&EngineStats>) -> (BTreeMap<String, u64>, u64) {
    let mut responses = BTreeMap::new();
    let mut received = 0;
    for shard in stats.iter().flat_map(|s| &s.shards) {
        for (status, n) in &shard.responses_out {
            *responses.entry(status.clone()).or_default() += n;
        }
        received += shard.messages_received;
    }
    (responses, received)
}

/// The commit of the git checkout we run in (`git rev-parse HEAD` in the
/// working directory), with `-dirty` when it has changes; `None` outside
/// one or without git.
fn git_commit() -> Option<String> {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    let head = run(&["rev-parse", "HEAD"])?;
    let commit = String::from_utf8(head.stdout).ok()?.trim().to_string();
    if commit.is_empty() {
        return None;
    }
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|o| !o.stdout.is_empty());
    Some(match dirty {
        true => format!("{commit}-dirty"),
        false => commit,
    })
}
