//! `msrp-signal` as a user meets it: its help, and the errors a wrong
//! flag, config file or engine path gets, each clear and exit 2 or 1.

use std::process::Command;

fn signal(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_msrp-signal"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn help_shows_the_two_process_example() {
    let (code, text) = signal(&["serve", "--help"]);
    assert_eq!(code, 0, "{text}");
    for needle in [
        "msrpd serve",
        "msrp-signal serve --sip udp:",
        "--engine",
        "--config",
        "--state",
    ] {
        assert!(text.contains(needle), "help lacks {needle}: {text}");
    }
}

#[test]
fn a_tls_listener_without_a_certificate_is_refused_with_the_reason() {
    let (code, text) = signal(&[
        "serve",
        "--sip",
        "tls:127.0.0.1:0",
        "--engine",
        "/nonexistent/msrpd.sock",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("--sip tls:ADDR needs --sip-cert and --sip-key"),
        "{text}"
    );
    let (code, text) = signal(&["serve", "--sip", "sctp:127.0.0.1:5061"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("the SIP transport is udp, tcp or tls"), "{text}");
}

#[test]
fn an_unknown_config_key_is_named() {
    let dir = std::env::temp_dir().join(format!("msrp-signal-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("signal.toml");
    std::fs::write(&config, "[calls]\nauto_answr = true\n").unwrap();
    let (code, text) = signal(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("auto_answr"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_engine_is_a_clear_error() {
    let (code, text) = signal(&[
        "serve",
        "--sip",
        "udp:127.0.0.1:0",
        "--engine",
        "/nonexistent/msrpd.sock",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("msrpd at /nonexistent/msrpd.sock"), "{text}");
}
