//! What the control socket answers a command it cannot take, frame by raw
//! frame (engine/CONTROL.md, "Frames"): the refusal names the field and what
//! it allows, and the stream goes on.

mod daemon;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use daemon::Daemon;

/// Writes one frame with `header` and no payload; returns the reply's header.
fn call(stream: &mut UnixStream, header: &str) -> serde_json::Value {
    let mut frame = Vec::new();
    frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
    frame.extend_from_slice(&0u32.to_be_bytes());
    frame.extend_from_slice(header.as_bytes());
    stream.write_all(&frame).unwrap();
    let mut lengths = [0u8; 8];
    stream.read_exact(&mut lengths).unwrap();
    let header_len = u32::from_be_bytes(lengths[..4].try_into().unwrap()) as usize;
    let payload_len = u32::from_be_bytes(lengths[4..].try_into().unwrap()) as usize;
    let mut reply = vec![0; header_len + payload_len];
    stream.read_exact(&mut reply).unwrap();
    serde_json::from_slice(&reply[..header_len]).unwrap()
}

#[test]
fn a_bad_value_is_refused_naming_the_field_and_the_allowed_values() {
    let a = Daemon::start("ctl-errors", &["--shards", "1"]);
    let mut stream = UnixStream::connect(&a.control).unwrap();
    let path = r#""remote_path": ["msrp://127.0.0.1:9/peer;tcp"]"#;
    let cases = [
        (
            format!(r#"{{"id": 1, "cmd": "create_session", "role": "sideways", {path}}}"#),
            "bad command: field `role`: unknown variant `sideways`, expected `active` or `passive`",
        ),
        (
            format!(r#"{{"id": 2, "cmd": "create_session", "failure_report": "maybe", {path}}}"#),
            "bad command: field `failure_report`: unknown variant `maybe`, expected one of `yes`, \
             `no`, `partial`",
        ),
        (
            r#"{"id": 3, "cmd": "send", "session_id": "s", "content_type": "text/plain",
                "failure_report": "maybe"}"#
                .into(),
            "bad command: field `failure_report`: unknown variant `maybe`, expected one of `yes`, \
             `no`, `partial`",
        ),
        (
            format!(r#"{{"id": 4, "cmd": "create_session", "direction": "up", {path}}}"#),
            "bad command: field `direction`: unknown variant `up`, expected one of `sendrecv`, \
             `sendonly`, `recvonly`, `inactive`",
        ),
        (
            r#"{"id": 5, "cmd": "send", "session_id": "s", "success_report": "yes"}"#.into(),
            r#"bad command: field `success_report`: invalid type: string "yes", expected a boolean"#,
        ),
        (
            r#"{"id": 6, "cmd": "launch"}"#.into(),
            "bad command: field `cmd`: unknown variant `launch`, expected one of `hello`, \
             `create_session`, `send`, `close_session`, `update_session`, `report`, `batch`, `stats`, `subscribe`",
        ),
        (
            r#"{"id": 7, "cmd": "close_session"}"#.into(),
            "bad command: missing field `session_id`",
        ),
    ];
    for (header, error) in cases {
        let reply = call(&mut stream, &header);
        assert_eq!(reply["ok"], false, "{header}");
        assert_eq!(reply["error"], error, "{header}");
        let sent: serde_json::Value = serde_json::from_str(&header).unwrap();
        assert_eq!(reply["id"], sent["id"], "the refusal answers its command");
    }
    // Only a header that is not JSON is called that (its id unreadable).
    let reply = call(&mut stream, r#"{"id": 8, "cmd": "stats""#);
    let error = reply["error"].as_str().unwrap();
    assert!(
        error.starts_with("bad command: control frame header is not valid JSON: EOF"),
        "{reply}"
    );
    assert_eq!(reply["id"], 0);
    // The frames were intact: the stream goes on.
    let reply = call(&mut stream, r#"{"id": 9, "cmd": "stats"}"#);
    assert_eq!(
        (reply["id"].as_u64(), reply["ok"].as_bool()),
        (Some(9), Some(true)),
        "{reply}"
    );
}
