//! `msrp-loadgen bench --mode sip --smoke` end to end: the embedded engine
//! in a child process, the embedded msrp-signal on its own thread, every
//! session set up by INVITE -> 200 -> ACK over real UDP or TCP on loopback,
//! bound over real MSRP, loaded, and its call ended by BYE.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const CONNECTIONS: u64 = 4;
const SESSIONS_PER_CONNECTION: u64 = 75;
const CALLS: u64 = CONNECTIONS * SESSIONS_PER_CONNECTION;

/// Runs a SIP smoke bench with `args`; returns its JSON report.
fn sip_smoke(name: &str, args: &[&str]) -> Value {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sip-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_msrp-loadgen"));
    command
        .args(["bench", "--smoke", "--quiet", "--no-calibrate", "--mode", "sip"])
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
        stdout.contains("sip setup rate"),
        "the summary shows the calls:\n{stdout}"
    );
    let json: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(json.len(), 1, "one JSON report in {}", dir.display());
    serde_json::from_slice(&std::fs::read(&json[0]).unwrap()).unwrap()
}

fn u64_at(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} in {v:#}"))
}

/// Every call answered and ended, its latency measured, its session bound
/// and loaded.
fn assert_sip_run(report: &Value, transport: &str) {
    let sip = &report["sip"];
    assert_eq!(sip["transport"], transport, "{sip:#}");
    assert_eq!(sip["signal"], "embedded");
    assert_eq!(u64_at(sip, "/calls_attempted"), CALLS, "{sip:#}");
    assert_eq!(u64_at(sip, "/calls_answered"), CALLS, "{sip:#}");
    assert_eq!(u64_at(sip, "/calls_failed"), 0, "{sip:#}");
    assert!(sip["calls_per_s"].as_f64().unwrap() > 0.0, "{sip:#}");
    let latency = &sip["invite_200_us"];
    assert_eq!(u64_at(latency, "/count"), CALLS);
    let (p50, p90, p99, max) = (
        u64_at(latency, "/p50"),
        u64_at(latency, "/p90"),
        u64_at(latency, "/p99"),
        u64_at(latency, "/max"),
    );
    assert!(0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{latency:#}");
    assert_eq!(u64_at(sip, "/byes_sent"), CALLS, "{sip:#}");
    assert_eq!(u64_at(sip, "/byes_answered"), CALLS, "{sip:#}");
    assert_eq!(u64_at(sip, "/bye_statuses/200"), CALLS, "{sip:#}");
    assert_eq!(u64_at(sip, "/calls_left"), 0, "{sip:#}");
    assert!(sip["setup_cpu"]["signal_cores"].as_f64().is_some(), "{sip:#}");

    assert_eq!(u64_at(report, "/sessions/established"), CALLS);
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

#[test]
fn sessions_set_up_by_sip_over_udp_carry_the_load() {
    assert_sip_run(&sip_smoke("udp", &["--sip-transport", "udp"]), "udp");
}

/// The engine sends too: its session-ids come from the answered `a=path`.
#[test]
fn sessions_set_up_by_sip_over_tcp_carry_both_directions() {
    let report = sip_smoke("tcp", &["--sip-transport", "tcp", "--direction", "both"]);
    assert_sip_run(&report, "tcp");
    assert!(u64_at(&report, "/latency_us/engine_sent/count") > 0, "{report:#}");
}
