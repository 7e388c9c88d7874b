//! `msrp-loadgen bench --sweep --smoke` end to end: the closed-loop
//! maximum, then open-loop steps at rising rates (and, with `sessions`, at
//! rising session counts), the SLO rate, the knee, the table and the plot.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn sweep(name: &str, args: &[&str]) -> (Value, String, String) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sweep-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (json, html): (PathBuf, PathBuf) = (dir.join("r.json"), dir.join("r.html"));
    let output = Command::new(env!("CARGO_BIN_EXE_msrp-loadgen"))
        .args(["bench", "--smoke", "--quiet", "--json"])
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .args(args)
        .output()
        .expect("msrp-loadgen runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "exited {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (report, stdout, std::fs::read_to_string(&html).unwrap())
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn a_rate_sweep_rises_with_the_offered_rate_and_reports_the_slo_rate() {
    // Short steps: four rates below the maximum and one far above it.
    let (report, stdout, html) = sweep(
        "rates",
        &[
            "--sweep",
            "--rates",
            "10%,30%,50%,70%,250%",
            "--duration",
            "1500ms",
            "--slo-p99",
            "50ms",
        ],
    );
    let curve = &report["sweep"];
    assert_eq!(curve["kind"], "rates", "{curve}");
    let max = f(&curve["closed_loop_max_per_s"]);
    assert!(max > 0.0);
    let steps = curve["steps"].as_array().unwrap();
    assert!(steps.len() >= 4, "{curve}");
    // Below saturation each step delivers what it was offered, so the
    // achieved rate rises with the offered one.
    let below: Vec<&Value> = steps
        .iter()
        .filter(|s| f(&s["offered_per_s"]) <= 0.71 * max)
        .collect();
    assert!(below.len() >= 4, "{curve}");
    for pair in below.windows(2) {
        assert!(
            f(&pair[1]["achieved_per_s"]) > f(&pair[0]["achieved_per_s"]),
            "achieved did not rise: {curve}"
        );
    }
    for step in &below {
        let (offered, achieved) = (f(&step["offered_per_s"]), f(&step["achieved_per_s"]));
        assert!(
            achieved >= 0.8 * offered,
            "{offered} offered, {achieved} achieved: {curve}"
        );
        assert!(step["p99_us"].as_u64().unwrap() >= step["p50_us"].as_u64().unwrap());
    }
    // Above the maximum the offered rate cannot be delivered.
    let over = steps.last().unwrap();
    assert!(f(&over["achieved_per_s"]) < f(&over["offered_per_s"]), "{curve}");
    assert_eq!(over["meets_slo"], false, "{curve}");
    let slo_rate = f(&curve["slo_rate_per_s"]);
    assert!(
        slo_rate > 0.0 && slo_rate <= max,
        "SLO rate {slo_rate}, maximum {max}"
    );
    assert!(curve["knee"].as_u64().is_some(), "{curve}");
    assert!(
        stdout.contains("capacity curve") && stdout.contains("highest rate within the SLO"),
        "{stdout}"
    );
    assert!(html.contains("<h2>Capacity curve</h2>") && html.contains("Latency against throughput"));
    assert!(
        html.contains("SLO p99 50000 us") && html.contains("knee"),
        "the SLO line and the knee are drawn"
    );
    assert!(!html.contains("NaN"));
}

#[test]
fn a_session_sweep_holds_the_rate_and_grows_the_sessions() {
    let (report, _, html) = sweep(
        "sessions",
        &[
            "--sweep",
            "sessions",
            "--sweep-sessions",
            "8,32,128",
            "--rate",
            "2000",
            "--duration",
            "1s",
        ],
    );
    let curve = &report["sweep"];
    assert_eq!(curve["kind"], "sessions", "{curve}");
    let steps = curve["steps"].as_array().unwrap();
    let sessions: Vec<u64> = steps.iter().map(|s| s["sessions"].as_u64().unwrap()).collect();
    assert_eq!(sessions, [8, 32, 128], "{curve}");
    for step in steps {
        assert_eq!(f(&step["offered_per_s"]), 2000.0);
        assert!(f(&step["achieved_per_s"]) > 1000.0, "{curve}");
    }
    assert!(html.contains("Engine memory per session"));
}
