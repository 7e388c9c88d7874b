//! `msrp-loadgen bench --smoke` end to end: an embedded engine in a child
//! process, real TCP over loopback, the reports it writes, and `compare`
//! on them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn loadgen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_msrp-loadgen"))
}

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("msrp-loadgen runs");
    assert!(
        output.status.success(),
        "{:?} exited {}\nstdout:\n{}\nstderr:\n{}",
        command,
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs a smoke bench with `args`; returns its JSON report and the
/// directory holding both reports.
fn smoke(name: &str, args: &[&str]) -> (Value, PathBuf, String) {
    let dir = out_dir(name);
    let output = run(loadgen()
        .args(["bench", "--smoke", "--quiet", "--out-dir"])
        .arg(&dir)
        .args(args));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let json = find(&dir, "json");
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (report, dir, stdout)
}

fn find(dir: &Path, extension: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one .{extension} report in {}: {found:?}",
        dir.display()
    );
    let name = found[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("msrp-bench-"), "{name}");
    found[0].clone()
}

fn errors_total(report: &Value) -> u64 {
    report["errors"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

#[test]
fn smoke_run_measures_messages_and_writes_both_reports() {
    let (report, dir, stdout) = smoke("sms", &[]);
    let throughput = report["throughput"]["messages_per_s"].as_f64().unwrap();
    assert!(throughput > 0.0, "{report:#}");
    assert!(report["throughput"]["bytes_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(errors_total(&report), 0, "{:#}", report["errors"]);
    // The engine counted every message the load saw delivered in the
    // interval, give or take those in flight at its edges and those sent
    // while the engine's counters were read over the control socket.
    let profile = &report["profile"];
    let in_flight: u64 = ["connections", "sessions_per_connection", "window"]
        .iter()
        .map(|k| profile[*k].as_u64().unwrap())
        .product();
    let received = report["throughput"]["messages_received_by_peer"]
        .as_u64()
        .unwrap();
    let delivered = report["throughput"]["messages"].as_u64().unwrap();
    let slack = in_flight + delivered / 50;
    assert!(
        received.abs_diff(delivered) <= slack,
        "{received} vs {delivered} (slack {slack})"
    );
    for kind in ["chunk_200", "delivered", "session_setup"] {
        let latency = &report["latency_us"][kind];
        assert!(latency["count"].as_u64().unwrap() > 0, "{kind}: {latency}");
        for p in ["p50", "p90", "p99", "p999", "max"] {
            assert!(latency[p].as_u64().is_some(), "{kind}.{p}");
        }
        assert!(latency["p50"].as_u64() <= latency["p99"].as_u64());
    }
    let calibration = &report["calibration"];
    assert!(
        calibration["small_messages_per_s"].as_f64().unwrap() > 0.0,
        "{calibration}"
    );
    assert!(
        calibration["bulk_bytes_per_s"].as_f64().unwrap() > 0.0,
        "{calibration}"
    );
    assert!(report["fraction_of_calibration"]["messages"].as_f64().unwrap() > 0.0);
    assert_eq!(
        report["sessions"]["established"], 32,
        "4 connections x 8 sessions"
    );
    assert_eq!(report["sessions"]["connections"], 4);
    assert!(report["rss_bytes"]["engine_peak"].as_u64().unwrap() > 0);
    assert!(report["cpu"]["engine_cores"].as_f64().unwrap() > 0.0);
    assert!(report["host"]["cpus"].as_u64().unwrap() >= 1);
    assert!(!report["timeline"].as_array().unwrap().is_empty());
    assert!(
        stdout.contains("throughput") && stdout.contains("msg/s"),
        "{stdout}"
    );

    let html = std::fs::read_to_string(find(&dir, "html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("http://") && !html.contains("https://"));

    // The same report against itself passes; a copy with half the
    // throughput fails, and says which metric.
    let json = find(&dir, "json");
    let same = loadgen()
        .args(["compare", "--max-regression", "5%"])
        .arg(&json)
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
    // Slower code, not a slower host: the fraction of the (unchanged)
    // calibration halves with it.
    let mut slower = report.clone();
    slower["throughput"]["messages_per_s"] = (throughput / 2.0).into();
    if let Some(fraction) = slower["fraction_of_calibration"]["messages"].as_f64() {
        slower["fraction_of_calibration"]["messages"] = (fraction / 2.0).into();
    }
    let slower_path = dir.join("slower.json");
    std::fs::write(&slower_path, serde_json::to_vec(&slower).unwrap()).unwrap();
    let gate = loadgen()
        .arg("compare")
        .arg(&json)
        .arg(&slower_path)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&gate.stdout);
    assert_eq!(gate.status.code(), Some(1), "{table}");
    assert!(
        table.contains("messages_per_s") && table.contains("FAIL"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.contains("throughput.messages_per_s"))
        .unwrap_or_default();
    assert!(
        row.contains("REGRESSED"),
        "the throughput itself regressed: {table}"
    );
    let missing = loadgen()
        .arg("compare")
        .arg(&json)
        .arg(dir.join("nope.json"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn both_directions_with_success_reports() {
    let (report, _, _) = smoke(
        "both",
        &[
            "--direction",
            "both",
            "--success-report",
            "--no-calibrate",
            "--sources",
            "2",
            "--sizes",
            "160:3,8KiB:1",
            "--chunk-size",
            "4KiB",
        ],
    );
    assert_eq!(errors_total(&report), 0, "{:#}", report["errors"]);
    assert!(report["latency_us"]["delivered"]["count"].as_u64().unwrap() > 0);
    assert!(
        report["latency_us"]["engine_sent"]["count"].as_u64().unwrap() > 0,
        "the engine's own sends were measured: {:#}",
        report["latency_us"]
    );
    assert_eq!(report["profile"]["success_report"], true);
    assert!(report["calibration"].is_null());
}

#[test]
fn the_engine_sends_with_a_window_larger_than_the_sockets_hold() {
    // 4 x 256 sessions x window 4: 4,096 sends wanted at once, more than
    // the control socket holds unanswered; the driver must keep reading.
    let (report, _, _) = smoke(
        "engine",
        &[
            "--direction",
            "engine",
            "--sessions-per-connection",
            "256",
            "--no-calibrate",
        ],
    );
    assert_eq!(errors_total(&report), 0, "{:#}", report["errors"]);
    assert!(
        report["throughput"]["messages_per_s"].as_f64().unwrap() > 1000.0,
        "{:#}",
        report["throughput"]
    );
    let latency = &report["latency_us"]["delivered"];
    assert!(latency["count"].as_u64().unwrap() > 0, "{latency}");
    assert!(
        report["latency_us"]["chunk_200"].is_null(),
        "the load sent nothing"
    );
    assert_eq!(report["profile"]["control"], "batched", "{:#}", report["profile"]);
}

#[test]
fn the_engine_sends_one_command_per_message_when_asked_to() {
    let (report, _, stdout) = smoke(
        "engine-one",
        &["--direction", "engine", "--one-by-one", "--no-calibrate"],
    );
    assert_eq!(errors_total(&report), 0, "{:#}", report["errors"]);
    assert_eq!(report["profile"]["control"], "one_by_one");
    assert!(report["throughput"]["messages_per_s"].as_f64().unwrap() > 1000.0);
    assert!(stdout.contains("control one-by-one"), "{stdout}");
}

#[test]
fn a_subscriber_of_outcomes_only_reads_none_of_the_received_messages() {
    // The engine only receives here: it has no outcome to tell.
    let (report, _, stdout) = smoke(
        "outcomes-load",
        &["--subscribe-events", "delivered,failed", "--no-calibrate"],
    );
    let subscriber = &report["subscriber"];
    assert_eq!(
        subscriber["subscribed_to"],
        serde_json::json!(["delivered", "failed"])
    );
    assert_eq!(subscriber["events"], 0, "{subscriber}");
    assert!(report["throughput"]["messages_per_s"].as_f64().unwrap() > 1000.0);
    assert!(stdout.contains("(delivered, failed only)"), "{stdout}");
    // The engine sends: one delivered per message, read batched.
    let (report, _, _) = smoke(
        "outcomes-engine",
        &[
            "--direction",
            "engine",
            "--subscribe-events",
            "delivered,failed",
            "--no-calibrate",
        ],
    );
    let rate = report["throughput"]["messages_per_s"].as_f64().unwrap();
    let subscriber = &report["subscriber"];
    assert_eq!(subscriber["dropped"], false, "{subscriber}");
    let events = subscriber["events_per_s"].as_f64().unwrap();
    assert!(
        (0.8 * rate..1.2 * rate + 100.0).contains(&events),
        "{events} events/s at {rate} msg/s"
    );
}

#[test]
fn open_loop_keeps_to_the_rate_and_a_subscriber_reads_every_event() {
    let (report, _, _) = smoke("rate", &["--rate", "2000", "--no-calibrate", "--subscribe"]);
    let rate = report["throughput"]["messages_per_s"].as_f64().unwrap();
    // Far below capacity, the delivered rate is the schedule's.
    assert!((1500.0..2500.0).contains(&rate), "{rate}");
    assert_eq!(errors_total(&report), 0);
    // One message_received per message the engine got, read as it came.
    let subscriber = &report["subscriber"];
    assert_eq!(subscriber["dropped"], false, "{subscriber}");
    let events = subscriber["events_per_s"].as_f64().unwrap();
    assert!(
        (0.8 * rate..1.2 * rate + 100.0).contains(&events),
        "{events} events/s at {rate} msg/s"
    );
}

#[test]
fn an_offered_rate_beyond_capacity_is_reported_not_queued_without_bound() {
    let (report, _, _) = smoke("overload", &["--rate", "50000000", "--no-calibrate"]);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("the offered rate was not reached"),
        "{warnings}"
    );
    assert!(report["throughput"]["messages_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn mixed_reports_text_latency_with_and_without_the_file() {
    let (report, _, _) = smoke("mixed", &["--scenario", "mixed", "--no-calibrate"]);
    let mixed = &report["mixed"];
    assert_eq!(mixed["file_bytes"], 64 << 20, "{mixed}");
    assert!(mixed["texts_p99_alone_us"].as_u64().unwrap() > 0, "{mixed}");
    assert!(mixed["texts_p99_with_file_us"].as_u64().unwrap() > 0, "{mixed}");
    assert!(mixed["p99_ratio"].as_f64().unwrap() > 0.0);
    assert_eq!(errors_total(&report), 0, "{:#}", report["errors"]);
}

/// A soak's shape: with `--file-repeat` the second half sends file after
/// file; every bucket of the timeline carries the engine's and the load's
/// memory and descriptors, and the summary says how they moved.
#[test]
fn mixed_with_file_repeat_sends_files_until_the_end_and_records_the_footprint() {
    let (report, _, stdout) = smoke(
        "mixed-repeat",
        &[
            "--scenario",
            "mixed",
            "--file-repeat",
            "--file-size",
            "2MiB",
            "--no-calibrate",
        ],
    );
    let mixed = &report["mixed"];
    assert!(mixed["files"].as_u64().unwrap() >= 2, "{mixed}");
    // Whole files, and the chunks of the one still going when the run ended.
    let files = mixed["files"].as_u64().unwrap();
    assert!(
        mixed["file_bytes"].as_u64().unwrap() >= files * (2 << 20),
        "{mixed}"
    );
    assert_eq!(errors_total(&report), 0, "{:#}", report["errors"]);
    let timeline = report["timeline"].as_array().unwrap();
    assert!(!timeline.is_empty());
    for bucket in timeline {
        // An embedded engine: its control socket, listener, shards' rings.
        assert!(bucket["engine_fds"].as_u64().unwrap() >= 3, "{bucket}");
        assert!(bucket["engine_rss_bytes"].as_u64().unwrap() > 1 << 20, "{bucket}");
        assert!(bucket["load_fds"].as_u64().unwrap() >= 3, "{bucket}");
        assert!(bucket["load_rss_bytes"].as_u64().unwrap() > 1 << 20, "{bucket}");
    }
    assert!(stdout.contains("footprint after warm-up"), "{stdout}");
}

#[test]
fn files_are_spooled_where_asked() {
    let spool = out_dir("files-spool");
    let spool_arg = spool.join("spool").display().to_string();
    // Smoke caps the 10 MiB files at 1 MiB: still past the engine's 256 KiB
    // inline limit, so every body goes through the spool.
    let (report, _, _) = smoke(
        "files",
        &["--scenario", "files", "--no-calibrate", "--spool", &spool_arg],
    );
    assert_eq!(errors_total(&report), 0, "{:#}", report["errors"]);
    assert!(report["throughput"]["messages"].as_u64().unwrap() > 0);
    assert!(report["throughput"]["bytes_per_s"].as_f64().unwrap() > 1e6);
    assert!(spool.join("spool").is_dir(), "the engine spooled into --spool");
    assert!(
        report["latency_us"]["chunk_200"]["count"].as_u64().unwrap()
            > report["throughput"]["messages"].as_u64().unwrap(),
        "many chunks per file"
    );
}

#[test]
fn sessions_scenario_reports_memory_per_session() {
    let (report, _, _) = smoke(
        "sessions",
        &[
            "--scenario",
            "sessions",
            "--connections",
            "4",
            "--sessions-per-connection",
            "2000",
            "--shards",
            "2",
            "--load-threads",
            "2",
        ],
    );
    // Two shards and two load threads; pinned apart only with four cores.
    let cpu = &report["cpu"];
    assert_eq!(
        (cpu["engine_threads"].as_u64(), cpu["load_threads"].as_u64()),
        (Some(2), Some(2)),
        "{cpu}"
    );
    let pinned = !cpu["engine_cpus"].as_array().unwrap().is_empty();
    assert_eq!(pinned, report["host"]["cpus"].as_u64().unwrap() >= 4, "{cpu}");
    assert_eq!(
        report["sessions"]["established"], 8000,
        "{:#}",
        report["sessions"]
    );
    assert!(report["sessions"]["setup_per_s"].as_f64().unwrap() > 0.0);
    let per_session = report["rss_bytes"]["engine_per_session"].as_f64().unwrap();
    assert!(per_session > 0.0, "{per_session}");
}

#[test]
fn an_external_engine_is_measured_through_its_control_socket() {
    let dir = out_dir("external");
    let control = dir.join("control.sock");
    let mut engine = loadgen()
        .args(["engine", "--listen", "127.0.0.1:0", "--shards", "1", "--no-pin"])
        .arg("--control")
        .arg(&control)
        .arg("--spool")
        .arg(dir.join("spool"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(engine.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let msrp = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("msrp="))
        .expect("ready line")
        .to_string();
    let output = loadgen()
        .args([
            "bench",
            "--smoke",
            "--quiet",
            "--no-calibrate",
            "--target",
            &msrp,
            "--control",
        ])
        .arg(&control)
        .arg("--json")
        .arg(dir.join("r.json"))
        .arg("--html")
        .arg(dir.join("r.html"))
        .output()
        .unwrap();
    // SAFETY: kill with our child's pid.
    unsafe { libc::kill(engine.id() as i32, libc::SIGTERM) };
    let status = engine.wait().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(status.success(), "the engine drained and exited 0: {status}");
    let report: Value = serde_json::from_slice(&std::fs::read(dir.join("r.json")).unwrap()).unwrap();
    assert_eq!(report["target"], msrp.as_str());
    assert!(report["throughput"]["messages_per_s"].as_f64().unwrap() > 0.0);
    assert!(
        report["cpu"]["engine_cores"].as_f64().unwrap() > 0.0,
        "the pid came from SO_PEERCRED"
    );
}

#[test]
fn mixed_on_the_files_own_session_reports_that_sessions_texts() {
    let (report, _, stdout) = smoke(
        "mixed-same",
        &["--scenario", "mixed", "--file-session", "same", "--no-calibrate"],
    );
    let mixed = &report["mixed"];
    assert_eq!(mixed["file_session"], "same", "{mixed}");
    assert_eq!(report["profile"]["file_session"], "same");
    let texts = &mixed["file_session_texts"];
    assert!(texts["p99_alone_us"].as_u64().unwrap() > 0, "{mixed}");
    assert!(texts["p99_with_file_us"].as_u64().unwrap() > 0, "{mixed}");
    assert!(texts["with_file_count"].as_u64().unwrap() > 0, "{mixed}");
    assert!(stdout.contains("mixed: file session's texts"), "{stdout}");
    assert_eq!(errors_total(&report), 0, "{:#}", report["errors"]);
}

#[test]
fn bad_flags_and_profiles_are_refused_with_a_reason() {
    let dir = out_dir("bad");
    let profile = dir.join("p.toml");
    std::fs::write(&profile, "conections = 4\n").unwrap();
    let output = loadgen()
        .args(["bench", "--quiet", "--profile"])
        .arg(&profile)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown key \"conections\""));
    let output = loadgen()
        .args(["bench", "--quiet", "--sizes", "0:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = loadgen()
        .args(["bench", "--quiet", "--target", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "--target needs --control");
    let output = loadgen()
        .args(["bench", "--quiet", "--file-session", "same"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("for the mixed scenario"));
    let output = loadgen()
        .args(["bench", "--quiet", "--file-repeat"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--file-repeat is for the mixed scenario"));
}

/// Checks a `--tls` report: both runs measured, handshakes full and
/// resumed, the engine's counters agreeing, the ratio given.
fn check_tls_report(report: &Value, stdout: &str, dir: &Path) {
    assert_eq!(report["profile"]["tls"], true, "the report is the TLS run's");
    assert_eq!(errors_total(report), 0, "{:?}", report["errors"]);
    let tls = &report["tls"];
    let beside = &tls["beside"];
    let plain = beside["plaintext"]["messages_per_s"].as_f64().unwrap();
    let secure = report["throughput"]["messages_per_s"].as_f64().unwrap();
    assert!(plain > 0.0 && secure > 0.0, "plaintext {plain}, TLS {secure}");
    assert!(beside["plaintext"]["bytes_per_s"].as_f64().unwrap() > 0.0);
    let ratio = beside["messages_ratio"].as_f64().unwrap();
    assert!(
        (ratio - secure / plain).abs() < 1e-9,
        "ratio {ratio} of {secure} / {plain}"
    );
    assert_eq!(beside["pairs"].as_array().unwrap().len(), 1);
    let h = &tls["handshakes"];
    let full = h["full"].as_u64().unwrap();
    let resumed = h["resumed"].as_u64().unwrap();
    assert!(full > 0 && h["full_per_s"].as_f64().unwrap() > 0.0, "{h}");
    assert!(resumed > 0 && h["resumed_per_s"].as_f64().unwrap() > 0.0, "{h}");
    assert_eq!(h["failed"], 0, "{h}");
    assert_eq!(h["protocol"], "TLSv1_3");
    // The engine counted the measurement's handshakes (a client that closes
    // at once may leave one unfinished on its side) and one per load
    // connection, and resumed what the measurement resumed.
    let connections = report["sessions"]["connections"].as_u64().unwrap();
    let engine = tls["engine_handshakes"].as_u64().unwrap();
    let tries = h["resumed_tries"].as_u64().unwrap();
    assert!(engine <= full + tries + connections, "{tls}");
    assert!(engine >= connections + (full + tries) * 9 / 10, "{tls}");
    assert!(tls["engine_resumed"].as_u64().unwrap() >= resumed, "{tls}");
    assert_eq!(tls["engine_failures"], 0);
    assert!(stdout.contains("tls / plaintext"), "{stdout}");
    let html = std::fs::read_to_string(find(dir, "html")).unwrap();
    assert!(html.contains("MSRP over TLS (--tls)"));
}

#[test]
fn tls_runs_plaintext_and_msrps_back_to_back_with_their_ratio() {
    let (report, dir, stdout) = smoke("tls-sms", &["--tls", "--duration", "2s", "--no-calibrate"]);
    assert_eq!(report["profile"]["scenario"], "sms");
    check_tls_report(&report, &stdout, &dir);
}

#[test]
fn tls_carries_64_kib_chunks() {
    let (report, dir, stdout) = smoke(
        "tls-bulk",
        &[
            "--tls",
            "--scenario",
            "bulk",
            "--duration",
            "2s",
            "--no-calibrate",
        ],
    );
    assert_eq!(report["profile"]["scenario"], "bulk");
    assert!(report["throughput"]["bytes_per_s"].as_f64().unwrap() > 0.0);
    check_tls_report(&report, &stdout, &dir);
}

#[test]
fn tls_needs_the_embedded_engine_and_injected_sessions() {
    for args in [
        &["--tls", "--mode", "sip"][..],
        &["--tls", "--target", "127.0.0.1:1", "--control", "/nonexistent"][..],
        &["--tls", "--sweep"][..],
    ] {
        let output = loadgen().args(["bench", "--quiet"]).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("--tls"),
            "{args:?}"
        );
    }
}
