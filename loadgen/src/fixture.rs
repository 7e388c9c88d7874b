//! A synthetic report for the tests of the gate and its readers: one run
//! on an 8-CPU host at a given message rate (bytes a hundred times that),
//! with chunk and delivered latencies and no calibration. Not part of the
//! tool; the unit tests and `tests/compare.rs` share it.

use std::collections::BTreeMap;

use crate::report::{
    Cpu, Host, Latency, Report, Rss, Sessions, Throughput, LATENCY_CHUNK, LATENCY_DELIVERED, REPORT_VERSION,
};

/// A latency summary with its p50 and p99 (p90 and the tail at p99).
pub fn latency(p50: u64, p99: u64) -> Latency {
    Latency {
        count: 1000,
        min: 1,
        mean: p50 as f64,
        p50,
        p90: p99,
        p99,
        p999: p99,
        max: p99,
        curve: vec![(0.0, 1), (100.0, p99)],
    }
}

/// One run at `messages_per_s` whose chunk latency has p50 `chunk_p50`
/// and p99 `chunk_p99` (microseconds).
pub fn run(messages_per_s: f64, chunk_p50: u64, chunk_p99: u64) -> Report {
    Report {
        version: REPORT_VERSION,
        tool: "msrp-loadgen 0.1.0".to_owned(),
        started_at: "2024-05-01T10:00:00Z".to_owned(),
        host: Host {
            hostname: "ci-1".to_owned(),
            kernel: "6.8".to_owned(),
            cpu_model: "cpu".to_owned(),
            cpus: 8,
            memory_bytes: 16 << 30,
        },
        profile: serde_json::json!({"scenario": "sms", "sessions": 100}),
        target: "embedded".to_owned(),
        calibration: None,
        fraction_of_calibration: None,
        duration_s: 10.0,
        throughput: Throughput {
            messages_per_s,
            bytes_per_s: messages_per_s * 100.0,
            messages: (messages_per_s * 10.0) as u64,
            bytes: (messages_per_s * 1000.0) as u64,
            messages_received_by_peer: (messages_per_s * 10.0) as u64,
        },
        timeline: vec![],
        latency_us: BTreeMap::from([
            (LATENCY_CHUNK.to_owned(), latency(chunk_p50, chunk_p99)),
            (LATENCY_DELIVERED.to_owned(), latency(400, 1000)),
        ]),
        errors: BTreeMap::new(),
        sessions: Sessions::default(),
        rss_bytes: Rss::default(),
        cpu: Cpu::default(),
        mixed: None,
        subscriber: None,
        sip: None,
        rest: None,
        warnings: vec![],
        label: None,
        commit: None,
        runs: Vec::new(),
        stats: Default::default(),
        sweep: None,
        tls: None,
    }
}
