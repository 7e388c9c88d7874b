//! The REST API over HTTPS (`--http-cert`, `--http-key`), driven by a
//! client no one here wrote: curl, verifying the server's certificate
//! against the file it was made from (rcgen, at the test's start).
//!
//! `cargo test -p msrp-signaling --test rest_https`; curl must be on PATH
//! (it is on Debian, `apt-get install -y curl` otherwise).

// support's stack speaks plain HTTP through its own client; HTTPS goes
// through curl.
mod support;
use support::{processes, stack};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use processes::{test_dir, Msrpd};
use stack::{run_to_exit, RestSignal};

/// A self-signed certificate for `localhost` and 127.0.0.1, as PEM files.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

/// curl, failing the test with how to install it when it is missing.
fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl is on PATH (apt-get install -y curl)")
}

fn started(name: &str) -> (PathBuf, Msrpd, RestSignal, PathBuf) {
    let dir = test_dir(&format!("https-{name}"));
    let (cert, key) = certificate(&dir);
    let engine = Msrpd::start(&dir);
    let args = [
        "--http-cert",
        cert.to_str().unwrap(),
        "--http-key",
        key.to_str().unwrap(),
    ];
    let signal = RestSignal::start(&dir, &engine, &args);
    (dir, engine, signal, cert)
}

#[test]
fn curl_verifies_our_certificate_and_creates_a_session_over_https() {
    let (_dir, _engine, signal, cert) = started("session");
    let base = format!("https://localhost:{}", signal.http.port());
    let resolve = format!("localhost:{}:127.0.0.1", signal.http.port());
    let created = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "--resolve",
        &resolve,
        "--header",
        "content-type: application/json",
        "--data",
        r#"{"mode":"3pcc","tag":"https"}"#,
        "--write-out",
        "\n%{http_code} %{ssl_verify_result}",
        &format!("{base}/v1/sessions"),
    ]);
    let out = String::from_utf8_lossy(&created.stdout);
    assert!(
        created.status.success(),
        "curl: {}\n{}",
        String::from_utf8_lossy(&created.stderr),
        signal.log()
    );
    let (body, trailer) = out.rsplit_once('\n').unwrap();
    assert_eq!(trailer, "201 0", "status and certificate check: {out}");
    let session: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(session["mode"], "3pcc", "{body}");
    assert!(
        session["local_sdp"]
            .as_str()
            .is_some_and(|sdp| sdp.contains("m=message")),
        "{body}"
    );

    let listed = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "--resolve",
        &resolve,
        &format!("{base}/v1/sessions?tag=https"),
    ]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(session["id"].as_str().unwrap()), "{listed}");
}

#[test]
fn plain_http_and_an_untrusted_client_get_no_api_and_are_counted() {
    let (dir, _engine, signal, cert) = started("refused");
    let port = signal.http.port();
    let plain = curl(&[&format!("http://127.0.0.1:{port}/healthz")]);
    assert!(
        !plain.status.success(),
        "plain HTTP on the HTTPS port must not be served"
    );

    // A client that trusts another certificate refuses ours.
    let elsewhere = dir.join("other");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let (other, _) = certificate(&elsewhere);
    let resolve = format!("localhost:{port}:127.0.0.1");
    let untrusted = curl(&[
        "--cacert",
        other.to_str().unwrap(),
        "--resolve",
        &resolve,
        &format!("https://localhost:{port}/healthz"),
    ]);
    assert!(
        !untrusted.status.success(),
        "curl must refuse a certificate it does not trust"
    );

    // The listener goes on serving, and counted both failed handshakes.
    let metrics = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "--resolve",
        &resolve,
        &format!("https://localhost:{port}/metrics"),
    ]);
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("msrp_signal_https_handshake_failures_total{} "))
        .unwrap_or_else(|| panic!("no handshake failure counter in:\n{metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(failures >= 2, "{failures} failures counted:\n{metrics}");
}

#[test]
fn a_key_that_is_not_the_certificates_is_a_clear_error_at_start() {
    let dir = test_dir("https-mismatch");
    let (cert, _) = certificate(&dir);
    let elsewhere = dir.join("other");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let (_, other_key) = certificate(&elsewhere);
    let engine = Msrpd::start(&dir);
    let (status, log) = run_to_exit(
        &dir,
        &engine,
        &[
            "--http",
            "127.0.0.1:0",
            "--http-cert",
            cert.to_str().unwrap(),
            "--http-key",
            other_key.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    assert!(!status.success(), "{log}");
    assert!(log.contains("--http-cert and --http-key"), "{log}");
}
