//! The wire profiles on a live socket and in `msrpd decode`: `msrpd serve`
//! reads leniently by default (a server facing many stacks takes what they
//! send when the meaning is clear) and strictly with `--wire strict`; both
//! take a Content-Type written the way MIME stacks write it.

mod daemon;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use daemon::{collect_events, passive, send_frame, Daemon, RawPeer};
use msrp_engine::control::{EngineEvent, SessionDescriptor, SessionRole};

const PEER: &str = "msrp://127.0.0.1:9/peer;tcp";

/// A bodiless SEND without Message-ID: how some stacks bind or keep alive.
fn bare_bind(tid: &str, to: &str) -> Vec<u8> {
    format!("MSRP {tid} SEND\r\nTo-Path: {to}\r\nFrom-Path: {PEER}\r\n-------{tid}$\r\n").into_bytes()
}

/// N12's shape: From-Path before To-Path.
fn swapped_paths(tid: &str, to: &str) -> Vec<u8> {
    format!(
        "MSRP {tid} SEND\r\nFrom-Path: {PEER}\r\nTo-Path: {to}\r\nMessage-ID: msg{tid}\r\n\
         Byte-Range: 1-2/2\r\nContent-Type: text/plain\r\n\r\nok\r\n-------{tid}$\r\n"
    )
    .into_bytes()
}

#[test]
fn serve_is_lenient_by_default_and_strict_when_asked() {
    let lenient = Daemon::start("wire-lenient", &["--shards", "1"]);
    let strict = Daemon::start("wire-strict", &["--shards", "1", "--wire", "strict"]);
    for (engine, expected) in [(&lenient, 200), (&strict, 400)] {
        let mut events = engine.events();
        engine.client().create_session(passive("w", PEER)).unwrap();
        let mut peer = RawPeer::connect(engine.msrp);
        peer.write(&bare_bind("bind1", &engine.uri("w")));
        assert_eq!(
            peer.response_to("bind1", &mut Vec::new()),
            expected,
            "a bare bind"
        );
        peer.write(&swapped_paths("swap1", &engine.uri("w")));
        assert_eq!(
            peer.response_to("swap1", &mut Vec::new()),
            expected,
            "From-Path first"
        );
        if expected == 200 {
            // The bare bind bound the session for its peer.
            collect_events(
                &mut events,
                Duration::from_secs(10),
                |event, _| matches!(event, EngineEvent::SessionReady { session_id } if session_id == "w"),
            );
        }
    }
}

#[test]
fn content_types_with_mime_parameters_pass_both_ways_in_both_profiles() {
    for profile in ["lenient", "strict"] {
        let a = Daemon::start("mime-params", &["--shards", "1", "--wire", profile]);
        let mut events = a.events();
        a.client().create_session(passive("m", PEER)).unwrap();
        let mut peer = RawPeer::connect(a.msrp);
        let frame = send_frame(
            "tidm",
            &a.uri("m"),
            PEER,
            "msgm1",
            "text/plain; charset=utf-8",
            b"hej",
        );
        peer.write(&frame);
        assert_eq!(peer.response_to("tidm", &mut Vec::new()), 200, "{profile}");
        collect_events(&mut events, Duration::from_secs(10), |event, _| {
            matches!(&event, EngineEvent::MessageReceived { content_type, .. }
                if content_type == "text/plain; charset=utf-8")
        });

        // And the engine sends one as the application gave it.
        let mut ctl = a.client();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let remote = format!("msrp://{}/far;tcp", listener.local_addr().unwrap());
        ctl.create_session(SessionDescriptor {
            session_id: Some("out".into()),
            remote_path: vec![remote],
            role: SessionRole::Active,
            ..SessionDescriptor::default()
        })
        .unwrap();
        let mut far = RawPeer::from_stream(listener.accept().unwrap().0);
        let bind = far.read_frame().expect("the binding SEND");
        far.answer(&bind, 200);
        ctl.send_message("out", "text/html; charset=utf-8", b"<b>x</b>")
            .unwrap();
        let sent = far.read_frame().expect("the message");
        assert_eq!(
            sent.headers["Content-Type"], "text/html; charset=utf-8",
            "{profile}"
        );
    }
}

#[test]
fn decode_lenient_takes_a_bare_bind_and_strict_refuses_it() {
    for (flag, expect_error) in [(None, true), (Some("--lenient"), false)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_msrpd"))
            .arg("decode")
            .args(flag)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input = bare_bind("bind1", "msrp://127.0.0.1:2855/s;tcp");
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let output = child.wait_with_output().unwrap();
        let line = String::from_utf8(output.stdout).unwrap();
        assert_eq!(
            line.contains("MissingMessageId"),
            expect_error,
            "{flag:?}: {line}"
        );
        assert_eq!(
            line.contains("\"method\":\"SEND\""),
            !expect_error,
            "{flag:?}: {line}"
        );
    }
}
