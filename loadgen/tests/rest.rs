//! `msrp-loadgen bench --mode rest --smoke` end to end: the embedded
//! engine in a child process, the embedded msrp-signal with its REST API
//! on its own thread, every session set up by a 3PCC `POST /v1/sessions`
//! over real HTTP on loopback, bound over real MSRP, the engine's sends
//! asked by `POST /v1/messages:batch` or `POST /v1/sessions/{id}/messages`,
//! and every session deleted at the end.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const CONNECTIONS: u64 = 4;
const SESSIONS_PER_CONNECTION: u64 = 16;
const SESSIONS: u64 = CONNECTIONS * SESSIONS_PER_CONNECTION;

/// Runs a REST smoke bench with `args`; returns its JSON report and
/// its summary.
fn rest_smoke(name: &str, args: &[&str]) -> (Value, String) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rest-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_msrp-loadgen"));
    command
        .args(["bench", "--smoke", "--quiet", "--no-calibrate", "--mode", "rest"])
        .args(["--connections", &CONNECTIONS.to_string()])
        .args(["--sessions-per-connection", &SESSIONS_PER_CONNECTION.to_string()])
        .arg("--out-dir")
        .arg(&dir)
        .args(args);
    let output = command.output().expect("msrp-loadgen runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} exited {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("rest setup"),
        "the summary shows the REST side:\n{stdout}"
    );
    let json: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(json.len(), 1, "one JSON report in {}", dir.display());
    let html = std::fs::read_to_string(json[0].with_extension("html")).unwrap();
    assert!(
        html.contains("REST API (--mode rest)"),
        "the HTML has the rest section"
    );
    (
        serde_json::from_slice(&std::fs::read(&json[0]).unwrap()).unwrap(),
        stdout,
    )
}

fn u64_at(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} in {v:#}"))
}

fn f64_at(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} in {v:#}"))
}

/// Every session created by 3PCC, bound, and deleted; no error anywhere.
fn assert_rest_setup(report: &Value, direction: &str) {
    let rest = &report["rest"];
    assert_eq!(rest["signal"], "embedded", "{rest:#}");
    assert_eq!(rest["direction"], direction, "{rest:#}");
    assert_eq!(u64_at(rest, "/sessions_attempted"), SESSIONS, "{rest:#}");
    assert_eq!(u64_at(rest, "/sessions_created"), SESSIONS, "{rest:#}");
    assert_eq!(u64_at(rest, "/sessions_failed"), 0, "{rest:#}");
    assert!(f64_at(rest, "/sessions_per_s") > 0.0, "{rest:#}");
    assert_eq!(u64_at(rest, "/create_us/count"), SESSIONS, "{rest:#}");
    assert_eq!(u64_at(rest, "/deletes_sent"), SESSIONS, "{rest:#}");
    assert_eq!(u64_at(rest, "/delete_statuses/200"), SESSIONS, "{rest:#}");
    assert!(
        rest["errors_by_status"].as_object().unwrap().is_empty(),
        "{rest:#}"
    );
    assert_eq!(u64_at(report, "/sessions/established"), SESSIONS);
    assert!(u64_at(report, "/throughput/messages") > 0, "{report:#}");
    let errors: u64 = report["errors"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(errors, 0, "{:#}", report["errors"]);
    assert!(
        report["warnings"].as_array().unwrap().is_empty(),
        "{:#}",
        report["warnings"]
    );
}

/// The engine's sends asked by REST arrived at the load, each measured
/// from its request.
fn assert_rest_sends(report: &Value, form: &str, per_request_max: f64) {
    assert_rest_setup(report, "engine");
    let rest = &report["rest"];
    assert_eq!(rest["form"], form, "{rest:#}");
    assert!(u64_at(rest, "/requests") > 0, "{rest:#}");
    assert!(u64_at(rest, "/messages") > 0, "{rest:#}");
    assert!(f64_at(rest, "/requests_per_s") > 0.0, "{rest:#}");
    assert!(f64_at(rest, "/messages_per_s") > 0.0, "{rest:#}");
    let per_request = f64_at(rest, "/messages_per_request");
    assert!(
        (1.0..=per_request_max).contains(&per_request),
        "{per_request} per request: {rest:#}"
    );
    let arrival = &rest["arrival_us"];
    assert!(u64_at(arrival, "/count") > 0, "{rest:#}");
    assert!(u64_at(arrival, "/p50") <= u64_at(arrival, "/p99"), "{arrival:#}");
    assert_eq!(
        u64_at(arrival, "/count"),
        u64_at(report, "/latency_us/delivered/count"),
        "the arrival latency is the load's, measured from the stamp"
    );
    assert!(u64_at(rest, "/response_us/count") > 0, "{rest:#}");
    assert!(f64_at(rest, "/signal_cores") > 0.0, "{rest:#}");
    // What the load received is what msrp-signal accepted (the window
    // keeps the rest in flight).
    assert!(u64_at(report, "/throughput/messages_received_by_peer") > 0);
}

#[test]
fn rest_batches_ask_the_engines_sends() {
    let (report, stdout) = rest_smoke(
        "batch",
        &[
            "--direction",
            "engine",
            "--rest-form",
            "batch",
            "--rest-batch",
            "64",
        ],
    );
    assert_rest_sends(&report, "batch", 64.0);
    assert_eq!(u64_at(&report, "/rest/batch_max"), 64);
    assert!(stdout.contains("sends by REST batch"), "{stdout}");
}

#[test]
fn rest_single_posts_ask_the_engines_sends() {
    let (report, _) = rest_smoke(
        "single",
        &[
            "--direction",
            "engine",
            "--rest-form",
            "single",
            "--rest-connections",
            "8",
        ],
    );
    assert_rest_sends(&report, "single", 1.0);
    assert_eq!(u64_at(&report, "/rest/connections"), 8);
}

/// REST only sets up: the load sends, and the report says so. Open
/// loop at a modest rate: msrp-signal reads every engine event, and one
/// that falls 65,536 events behind loses its control connection (the
/// engine's subscriber-queue-depth) and with it every session.
#[test]
fn rest_sets_up_sessions_the_load_sends_on() {
    let (report, stdout) = rest_smoke("load", &["--direction", "load", "--rate", "20000"]);
    assert_rest_setup(&report, "load");
    let rest = &report["rest"];
    assert_eq!(u64_at(rest, "/requests"), 0, "{rest:#}");
    assert!(rest["arrival_us"].is_null(), "{rest:#}");
    assert!(!stdout.contains("rest sends"), "{stdout}");
}
