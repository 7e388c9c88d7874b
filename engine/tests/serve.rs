//! `msrpd serve` end to end: real processes, real TCP on loopback, real
//! files, driven through the control socket.

mod daemon;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use daemon::{collect_events, passive, pattern, Daemon, RawPeer};
use msrp_engine::control::{
    Command, EngineEvent, FailureReportName, Incoming, SendRequest, SessionDescriptor, SessionDirection,
    SessionRole, TransferDirection, UpdateRequest,
};
use sha2::{Digest, Sha256};

fn active(session_id: &str, remote: String) -> SessionDescriptor {
    SessionDescriptor {
        role: SessionRole::Active,
        ..passive(session_id, remote)
    }
}

/// Creates `pairs` sessions between `a` (passive) and `b` (active) named
/// `a{i}`/`b{i}`, and waits until both ends report them ready.
fn connect_pairs(
    a: &Daemon,
    b: &Daemon,
    ids: &[String],
    a_events: &mut msrp_engine::control::Client,
    b_events: &mut msrp_engine::control::Client,
) {
    let mut a_ctl = a.client();
    let mut b_ctl = b.client();
    for id in ids {
        a_ctl
            .create_session(passive(&format!("a{id}"), b.uri(&format!("b{id}"))))
            .unwrap();
    }
    for id in ids {
        b_ctl
            .create_session(active(&format!("b{id}"), a.uri(&format!("a{id}"))))
            .unwrap();
    }
    for events in [a_events, b_events] {
        let mut ready = 0;
        collect_events(events, Duration::from_secs(60), |event, _| {
            if let EngineEvent::SessionReady { .. } = event {
                ready += 1;
            }
            ready == ids.len()
        });
    }
}

/// Writes `len` octets of pattern to `path`, 1 MiB at a time, and returns
/// their SHA-256.
fn write_file(path: &Path, seed: u64, len: usize) -> Vec<u8> {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hash = Sha256::new();
    let mut left = len;
    let mut round = 0;
    while left > 0 {
        let piece = pattern(seed + round, left.min(1 << 20));
        hash.update(&piece);
        file.write_all(&piece).unwrap();
        left -= piece.len();
        round += 1;
    }
    file.flush().unwrap();
    hash.finalize().to_vec()
}

fn sha256_of(path: &Path) -> Vec<u8> {
    let mut hash = Sha256::new();
    let mut file = std::fs::File::open(path).unwrap();
    std::io::copy(&mut file, &mut hash).unwrap();
    hash.finalize().to_vec()
}

/// Sends many texts pipelined; returns message number -> (session, body).
fn send_texts(
    client: &mut msrp_engine::control::Client,
    texts: &[(String, String)],
) -> HashMap<u64, (String, String)> {
    for (session, text) in texts {
        let request = SendRequest {
            session_id: session.clone(),
            content_type: "text/plain".into(),
            ..SendRequest::default()
        };
        client.submit(Command::Send(request), text.as_bytes()).unwrap();
    }
    client.flush().unwrap();
    let mut sent = HashMap::new();
    for (session, text) in texts {
        match client.read().unwrap() {
            Incoming::Reply(reply, _) => {
                assert!(reply.ok, "send refused: {:?}", reply.error);
                sent.insert(reply.message.unwrap(), (session.clone(), text.clone()));
            }
            Incoming::Event(event, _) => panic!("unsubscribed client got {event:?}"),
        }
    }
    sent
}

#[test]
fn thousand_sessions_share_one_connection_while_a_file_crosses() {
    const SESSIONS: usize = 1000;
    const TEXTS: usize = 3;
    const FILE_BYTES: usize = 200 << 20;
    let a = Daemon::start("pair-a", &["--shards", "2"]);
    let b = Daemon::start("pair-b", &["--shards", "2"]);
    let mut a_events = a.events();
    let mut b_events = b.events();
    let mut ids: Vec<String> = (0..SESSIONS).map(|i| i.to_string()).collect();
    ids.push("file".into());
    connect_pairs(&a, &b, &ids, &mut a_events, &mut b_events);

    let file = b.dir.join("voicemail.bin");
    let file_sha = write_file(&file, 7, FILE_BYTES);
    let mut b_ctl = b.client();
    let file_message = b_ctl
        .send_file("bfile", "application/octet-stream", &file, false)
        .unwrap();

    let texts = |side: &str| -> Vec<(String, String)> {
        (0..SESSIONS)
            .flat_map(|i| (0..TEXTS).map(move |k| (i, k)))
            .map(|(i, k)| (format!("{side}{i}"), format!("from {side}{i} text {k}")))
            .collect()
    };
    let b_sent = send_texts(&mut b_ctl, &texts("b"));
    let a_sent = send_texts(&mut a.client(), &texts("a"));

    // Each side: its own outcomes, and what the other side sent.
    let check = |events: &mut msrp_engine::control::Client,
                 sent: &HashMap<u64, (String, String)>,
                 peer_sent: &HashMap<u64, (String, String)>,
                 file: Option<u64>,
                 file_in: bool| {
        let mut delivered = HashSet::new();
        let mut received: HashMap<String, usize> = HashMap::new();
        let mut file_done = file.is_none();
        let mut file_path = None;
        let expected_in: HashSet<(String, String)> = peer_sent
            .values()
            .map(|(s, t)| {
                (
                    format!("{}{}", if s.starts_with('a') { "b" } else { "a" }, &s[1..]),
                    t.clone(),
                )
            })
            .collect();
        collect_events(events, Duration::from_secs(180), |event, payload| {
            match event {
                EngineEvent::Delivered { message, .. } if Some(message) == file => file_done = true,
                EngineEvent::Delivered { message, .. } => {
                    assert!(
                        sent.contains_key(&message),
                        "delivered an unknown message {message}"
                    );
                    assert!(delivered.insert(message), "delivered twice: {message}");
                }
                EngineEvent::Failed { reason, .. } => panic!("a message failed: {reason}"),
                EngineEvent::MessageReceived {
                    session_id,
                    path: Some(path),
                    size,
                    ..
                } => {
                    assert!(file_in && session_id == "afile", "unexpected spooled message");
                    assert_eq!(size, FILE_BYTES as u64);
                    file_path = Some(path);
                }
                EngineEvent::MessageReceived { session_id, .. } => {
                    let text = String::from_utf8(payload.to_vec()).unwrap();
                    assert!(
                        expected_in.contains(&(session_id.clone(), text.clone())),
                        "unexpected {session_id}: {text}"
                    );
                    *received.entry(text).or_default() += 1;
                }
                _ => {}
            }
            delivered.len() == sent.len()
                && received.len() == peer_sent.len()
                && file_done
                && (!file_in || file_path.is_some())
        });
        assert!(received.values().all(|&n| n == 1), "a text arrived twice");
        file_path
    };
    check(&mut b_events, &b_sent, &a_sent, Some(file_message), false);
    let path = check(&mut a_events, &a_sent, &b_sent, None, true).unwrap();
    assert_eq!(sha256_of(Path::new(&path)), file_sha, "the spooled file differs");

    let opened: u64 = b.stats().shards.iter().map(|s| s.connections_opened).sum();
    let accepted: u64 = a.stats().shards.iter().map(|s| s.connections_accepted).sum();
    assert_eq!(
        (opened, accepted),
        (1, 1),
        "all sessions share one TCP connection"
    );
}

#[test]
fn bad_requests_get_their_status_and_the_connection_carries_on() {
    let a = Daemon::start("bad-input", &["--shards", "1"]);
    let mut a_events = a.events();
    let mut ctl = a.client();
    let c1 = "msrp://127.0.0.1:9/c1;tcp".to_string();
    let c2 = "msrp://127.0.0.1:9/c2;tcp".to_string();
    ctl.create_session(passive("s1", c1.clone())).unwrap();
    ctl.create_session(SessionDescriptor {
        max_size: Some(100),
        ..passive("s2", c2.clone())
    })
    .unwrap();
    let (s1, s2) = (a.uri("s1"), a.uri("s2"));

    let mut peer = RawPeer::connect(a.msrp);
    let mut sends = Vec::new();
    peer.send("tid1", &s1, &c1, b"hello");
    assert_eq!(peer.response_to("tid1", &mut sends), 200);
    peer.send("tid2", &a.uri("nosuchsession"), &c1, b"who?");
    assert_eq!(peer.response_to("tid2", &mut sends), 481, "unknown session");
    peer.send("tid3", &s1, &c2, b"spoofed");
    assert_eq!(peer.response_to("tid3", &mut sends), 403, "wrong From-Path");
    peer.send("tid4", &s2, &c2, &[b'x'; 200]);
    assert_eq!(peer.response_to("tid4", &mut sends), 413, "over max-size");
    let bad = format!("MSRP tid5 SEND\r\nTo-Path: {s1}\r\nFrom-Path: {c1}\r\nMessage-ID: m5\r\nByte-Range: banana\r\nContent-Type: text/plain\r\n\r\nx\r\n-------tid5$\r\n");
    peer.write(bad.as_bytes());
    assert_eq!(peer.response_to("tid5", &mut sends), 400, "bad Byte-Range");
    peer.write(b"MSRP tid6 FETCH\r\nTo-Path: ");
    peer.write(format!("{s1}\r\nFrom-Path: {c1}\r\n-------tid6$\r\n").as_bytes());
    assert_eq!(peer.response_to("tid6", &mut sends), 501, "unknown method");

    // RFC 4975 5.4: a session bound to one connection is not taken over
    // by another.
    let mut other = RawPeer::connect(a.msrp);
    other.send("tid9", &s1, &c1, b"hijack");
    assert_eq!(
        other.response_to("tid9", &mut sends),
        506,
        "bound to another connection"
    );

    // Garbage on a second connection closes that connection only.
    let mut garbage = RawPeer::connect(a.msrp);
    garbage.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        garbage.read_frame().is_none(),
        "the engine closes a connection that is not MSRP"
    );

    peer.send("tid7", &s1, &c1, b"still here");
    assert_eq!(peer.response_to("tid7", &mut sends), 200);
    peer.send("tid8", &s2, &c2, b"small");
    assert_eq!(peer.response_to("tid8", &mut sends), 200);
    // The engine sends on the same connection and hears the 200.
    let message = ctl.send_message("s1", "text/plain", b"from the engine").unwrap();
    let frame = peer.read_frame().unwrap();
    assert_eq!(
        (frame.method.as_str(), frame.body.as_slice()),
        ("SEND", &b"from the engine"[..])
    );
    peer.answer(&frame, 200);

    let mut bodies = Vec::new();
    let mut delivered = false;
    collect_events(&mut a_events, Duration::from_secs(20), |event, payload| {
        match event {
            EngineEvent::MessageReceived { session_id, .. } => {
                bodies.push((session_id, String::from_utf8(payload.to_vec()).unwrap()))
            }
            EngineEvent::Delivered { message: m, .. } => delivered = m == message,
            EngineEvent::Failed { reason, .. } => panic!("failed: {reason}"),
            _ => {}
        }
        delivered && bodies.len() == 3
    });
    let expected = [("s1", "hello"), ("s1", "still here"), ("s2", "small")];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(s, b)| (s.to_string(), b.to_string()))
        .collect();
    assert_eq!(bodies, expected, "only the accepted messages arrive");
    let stats = a.stats();
    let responses = &stats.shards[0].responses_out;
    for status in ["400", "403", "413", "481", "501", "506"] {
        assert_eq!(
            responses.get(status),
            Some(&1),
            "one {status} counted: {responses:?}"
        );
    }
}

/// A receiver with `--durable` is killed mid-transfer: the sender gets a
/// `failed` event for everything unfinished, and every message that got its
/// 200s is whole on the receiver's disk.
#[test]
fn killed_receiver_fails_the_transfer_and_durable_messages_are_on_disk() {
    const MESSAGES: usize = 40;
    const MESSAGE_BYTES: usize = 300 << 10;
    let mut a = Daemon::start(
        "kill-rx",
        &["--shards", "1", "--durable", "--progress-interval", "1ms"],
    );
    let b = Daemon::start("kill-tx", &["--shards", "1"]);
    let mut a_events = a.events();
    let mut b_events = b.events();
    let ids = ["msgs".to_string(), "file".to_string()];
    connect_pairs(&a, &b, &ids, &mut a_events, &mut b_events);

    let file = b.dir.join("big.bin");
    write_file(&file, 3, 256 << 20);
    let mut b_ctl = b.client();
    let file_message = b_ctl
        .send_file("bfile", "application/octet-stream", &file, false)
        .unwrap();
    let mut bodies = HashMap::new();
    for i in 0..MESSAGES {
        let body = pattern(100 + i as u64, MESSAGE_BYTES);
        let message = b_ctl
            .send_message("bmsgs", "application/octet-stream", &body)
            .unwrap();
        bodies.insert(message, body);
    }
    // Kill the receiver once it has spooled something of the file.
    collect_events(
        &mut a_events,
        Duration::from_secs(60),
        |event, _| matches!(event, EngineEvent::Progress { ref session_id, .. } if session_id == "afile"),
    );
    a.kill();

    let mut outcomes = HashMap::new();
    let mut closed = 0;
    collect_events(&mut b_events, Duration::from_secs(60), |event, _| {
        match event {
            EngineEvent::Delivered { message, .. } => assert!(outcomes.insert(message, None).is_none()),
            EngineEvent::Failed { message, reason, .. } => {
                assert!(outcomes.insert(message, Some(reason)).is_none())
            }
            EngineEvent::SessionClosed { .. } => closed += 1,
            _ => {}
        }
        closed == 2
    });
    assert_eq!(
        outcomes.len(),
        MESSAGES + 1,
        "every message has an outcome before its session closed"
    );
    let file_outcome = outcomes[&file_message].as_ref();
    assert!(file_outcome.is_some(), "the file was cut off, so it failed");
    for (message, body) in &bodies {
        if outcomes[message].is_some() {
            continue;
        }
        // Delivered: the 200 of its last chunk came after the fsync. The
        // rename to the final name follows the last 200, so the kill may
        // leave a complete file under its temporary name.
        let found = std::fs::read_dir(&a.spool).unwrap().any(|entry| {
            let path = entry.unwrap().path();
            std::fs::read(&path).is_ok_and(|on_disk| &on_disk == body)
        });
        assert!(
            found,
            "delivered message {message} is not whole on the receiver's disk"
        );
    }
}

/// A sender killed mid-transfer: the receiver aborts the message and removes
/// its partial spool file.
#[test]
fn killed_sender_leaves_no_partial_spool_file() {
    let a = Daemon::start(
        "kill-sender-rx",
        &["--shards", "1", "--durable", "--progress-interval", "1ms"],
    );
    let mut b = Daemon::start("kill-sender-tx", &["--shards", "1"]);
    let mut a_events = a.events();
    let mut b_events = b.events();
    connect_pairs(&a, &b, &["file".to_string()], &mut a_events, &mut b_events);
    let file = b.dir.join("big.bin");
    write_file(&file, 5, 256 << 20);
    b.client()
        .send_file("bfile", "application/octet-stream", &file, false)
        .unwrap();
    collect_events(&mut a_events, Duration::from_secs(60), |event, _| {
        matches!(event, EngineEvent::Progress { .. })
    });
    assert_eq!(
        std::fs::read_dir(&a.spool).unwrap().count(),
        1,
        "the partial file is there"
    );
    b.kill();
    let mut aborted = false;
    collect_events(&mut a_events, Duration::from_secs(30), |event, _| {
        match event {
            EngineEvent::MessageAborted { .. } => aborted = true,
            EngineEvent::MessageReceived { .. } => panic!("the file cannot have completed"),
            _ => {}
        }
        matches!(event, EngineEvent::SessionClosed { .. })
    });
    assert!(aborted, "the receiver reports the aborted message");
    // The abort's removal runs on the shard after the event.
    a.wait_spool_empty();
}

/// With two shards, connections land on either (SO_REUSEPORT); a passive
/// session is claimed by whichever shard its connection reached, and
/// commands for it are routed there.
#[test]
fn passive_sessions_are_claimed_on_either_shard() {
    let a = Daemon::start("shards", &["--shards", "2"]);
    let mut a_events = a.events();
    let mut ctl = a.client();
    // Open connections until both shards hold one.
    let mut peers = Vec::new();
    let mut per_shard = [0u64; 2];
    while per_shard.contains(&0) {
        assert!(peers.len() < 64, "64 connections all landed on one shard");
        peers.push(RawPeer::connect(a.msrp));
        std::thread::sleep(Duration::from_millis(20));
        let stats = a.stats();
        for s in &stats.shards {
            per_shard[s.shard] = s.connections;
        }
    }
    let mut sends = Vec::new();
    for (i, peer) in peers.iter_mut().enumerate() {
        for k in 0..2 {
            let id = format!("p{i}x{k}");
            let remote = format!("msrp://127.0.0.1:9/c{i}x{k};tcp");
            ctl.create_session(passive(&id, remote.clone())).unwrap();
            peer.send(&format!("t{i}x{k}"), &a.uri(&id), &remote, id.as_bytes());
            assert_eq!(peer.response_to(&format!("t{i}x{k}"), &mut sends), 200);
        }
    }
    let stats = a.stats();
    assert!(
        stats.shards.iter().all(|s| s.sessions > 0),
        "both shards own sessions: {stats:?}"
    );
    // Commands reach the owning shard, which sends on the claiming connection.
    for (i, peer) in peers.iter_mut().enumerate() {
        for k in 0..2 {
            let id = format!("p{i}x{k}");
            ctl.send_message(&id, "text/plain", format!("to {id}").as_bytes())
                .unwrap();
            let frame = peer.read_frame().unwrap();
            assert_eq!(frame.body, format!("to {id}").into_bytes());
            assert!(frame.headers["To-Path"].contains(&format!("/c{i}x{k};")));
            peer.answer(&frame, 200);
        }
    }
    let expected = peers.len() * 2;
    let (mut received, mut delivered) = (0, 0);
    collect_events(&mut a_events, Duration::from_secs(20), |event, _| {
        match event {
            EngineEvent::MessageReceived { .. } => received += 1,
            EngineEvent::Delivered { .. } => delivered += 1,
            EngineEvent::Failed { reason, .. } => panic!("failed: {reason}"),
            _ => {}
        }
        received == expected && delivered == expected
    });
}

/// SIGTERM lets a transfer in flight finish, then the engine exits 0.
#[test]
fn sigterm_drains_transfers_in_flight() {
    let a = Daemon::start("drain-rx", &["--shards", "1"]);
    let mut b = Daemon::start(
        "drain-tx",
        &[
            "--shards",
            "1",
            "--drain-timeout",
            "60s",
            "--progress-interval",
            "1ms",
        ],
    );
    let mut a_events = a.events();
    let mut b_events = b.events();
    connect_pairs(&a, &b, &["file".to_string()], &mut a_events, &mut b_events);
    let file = b.dir.join("drain.bin");
    let sha = write_file(&file, 9, 64 << 20);
    let mut b_ctl = b.client();
    // A passive session nobody claims ends with the drain, with its event.
    b_ctl
        .create_session(passive("lonely", "msrp://127.0.0.1:9/x;tcp"))
        .unwrap();
    let message = b_ctl
        .send_file("bfile", "application/octet-stream", &file, true)
        .unwrap();
    let status = b.terminate(Duration::from_secs(60));
    assert!(status.success(), "msrpd exits 0 after draining: {status:?}");
    let mut delivered = false;
    let mut progress = Vec::new();
    let mut closed = HashMap::new();
    collect_events(&mut b_events, Duration::from_secs(10), |event, _| {
        match event {
            EngineEvent::Delivered { message: m, .. } if m == message => delivered = true,
            EngineEvent::Failed { reason, .. } => panic!("failed while draining: {reason}"),
            EngineEvent::Progress {
                direction: TransferDirection::Outgoing,
                message: Some(m),
                bytes,
                total,
                ..
            } if m == message => {
                assert!(!delivered, "progress comes before the outcome");
                assert_eq!(total, Some(64 << 20));
                progress.push(bytes);
            }
            EngineEvent::SessionClosed { session_id, reason } => {
                if session_id == "bfile" {
                    assert!(delivered, "the transfer finished before its session closed");
                }
                closed.insert(session_id, reason);
            }
            _ => {}
        }
        closed.len() == 2
    });
    // Outgoing progress: octets handed to the connection, rising.
    assert!(!progress.is_empty(), "no outgoing progress event");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]) && progress.iter().all(|&b| b <= 64 << 20));
    assert!(
        closed["lonely"].contains("shut down before the peer connected"),
        "{closed:?}"
    );
    assert!(!file.exists(), "delete_after removed the sent file");
    let mut path = None;
    collect_events(&mut a_events, Duration::from_secs(10), |event, _| {
        if let EngineEvent::MessageReceived { path: p, .. } = event {
            path = p;
        }
        path.is_some()
    });
    assert_eq!(sha256_of(Path::new(&path.unwrap())), sha);
}

/// `Failure-Report: no` on the send command goes on the wire.
#[test]
fn report_settings_reach_the_wire() {
    let a = Daemon::start("reports", &["--shards", "1"]);
    let mut ctl = a.client();
    let c = "msrp://127.0.0.1:9/rc;tcp".to_string();
    ctl.create_session(passive("r1", c.clone())).unwrap();
    let mut peer = RawPeer::connect(a.msrp);
    peer.send("bind1", &a.uri("r1"), &c, b"bind");
    assert_eq!(peer.response_to("bind1", &mut Vec::new()), 200);
    let request = SendRequest {
        session_id: "r1".into(),
        content_type: "text/plain".into(),
        failure_report: Some(FailureReportName::No),
        ..SendRequest::default()
    };
    ctl.call(Command::Send(request), b"fire and forget").unwrap();
    let frame = peer.read_frame().unwrap();
    assert_eq!(
        frame.headers.get("Failure-Report").map(String::as_str),
        Some("no")
    );
}

/// The descriptor's accept-types, chunk size and direction, and
/// `--advertise`, as the peer sees them.
#[test]
fn descriptor_settings_reach_the_wire() {
    let a = Daemon::start(
        "descriptor",
        &["--shards", "1", "--advertise", "msrp.example.org:2855"],
    );
    let mut ctl = a.client();
    let c = "msrp://127.0.0.1:9/dc;tcp".to_string();
    let created = ctl
        .create_session(SessionDescriptor {
            accept_types: vec!["text/plain".into()],
            chunk_bytes: Some(4096),
            ..passive("d1", c.clone())
        })
        .unwrap();
    assert_eq!(created.local_uri, "msrp://msrp.example.org:2855/d1;tcp");
    assert_eq!(
        ctl.stats().unwrap().advertise,
        "msrp.example.org:2855",
        "what a signaling process writes in its SDP"
    );
    let mut peer = RawPeer::connect(a.msrp);
    peer.send("tidd1", &created.local_uri, &c, b"text is accepted");
    assert_eq!(peer.response_to("tidd1", &mut Vec::new()), 200);
    let png = daemon::send_frame("tidd2", &created.local_uri, &c, "midd2", "image/png", b"\x89PNG");
    peer.write(&png);
    assert_eq!(
        peer.response_to("tidd2", &mut Vec::new()),
        415,
        "not in accept-types"
    );

    // 10,000 octets in chunks of 4,096.
    let body = pattern(21, 10_000);
    ctl.send_message("d1", "application/octet-stream", &body).unwrap();
    let mut got = Vec::new();
    let mut ranges = Vec::new();
    while got.len() < body.len() {
        let frame = peer.read_frame().unwrap();
        ranges.push(frame.headers["Byte-Range"].clone());
        got.extend_from_slice(&frame.body);
        peer.answer(&frame, 200);
    }
    assert_eq!(got, body);
    // Range-end `*`: chunks over 2048 octets are sent interruptible (RFC 4975 5.1).
    assert_eq!(ranges, ["1-*/10000", "4097-*/10000", "8193-10000/10000"]);

    // recvonly (RFC 4975 8.9): we may not send on it.
    ctl.create_session(SessionDescriptor {
        direction: SessionDirection::Recvonly,
        ..passive("d2", c)
    })
    .unwrap();
    let mut peer2 = RawPeer::connect(a.msrp);
    peer2.send("tidd3", &a.uri("d2"), "msrp://127.0.0.1:9/dc;tcp", b"bind");
    assert_eq!(peer2.response_to("tidd3", &mut Vec::new()), 200);
    match ctl.send_message("d2", "text/plain", b"no") {
        Err(msrp_engine::control::ClientError::Refused(reason)) => {
            assert!(reason.contains("direction"), "{reason}")
        }
        other => panic!("a recvonly session sent: {other:?}"),
    }
}

/// The worked example of engine/CONTROL.md, replayed by its Python script.
#[test]
fn control_md_worked_example_replays() {
    let a = Daemon::start("control-md", &["--shards", "2"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/control_demo.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .arg(&a.control)
        .output()
        .expect("python3 runs the CONTROL.md example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(r#""event": "message_received""#) && stdout.contains("Hello over MSRP"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("delivered"), "{stdout}");
}

/// `--conns-per-peer 4`: sessions towards one peer spread over four
/// connections, each carrying several.
#[test]
fn sessions_spread_over_several_connections_to_one_peer() {
    let a = Daemon::start("spread-a", &["--shards", "2"]);
    let b = Daemon::start("spread-b", &["--shards", "2", "--conns-per-peer", "4"]);
    let mut a_events = a.events();
    let mut b_events = b.events();
    let ids: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    connect_pairs(&a, &b, &ids, &mut a_events, &mut b_events);
    let texts: Vec<(String, String)> = ids
        .iter()
        .map(|i| (format!("b{i}"), format!("hello {i}")))
        .collect();
    let sent = send_texts(&mut b.client(), &texts);
    let mut received = HashSet::new();
    collect_events(&mut a_events, Duration::from_secs(20), |event, payload| {
        if let EngineEvent::MessageReceived { session_id, .. } = event {
            let text = String::from_utf8(payload.to_vec()).unwrap();
            assert_eq!(text, format!("hello {}", &session_id[1..]));
            assert!(received.insert(session_id));
        }
        received.len() == sent.len()
    });
    let opened: u64 = b.stats().shards.iter().map(|s| s.connections_opened).sum();
    let a_stats = a.stats();
    let accepted: u64 = a_stats.shards.iter().map(|s| s.connections_accepted).sum();
    assert_eq!((opened, accepted), (4, 4));
    let sessions: u64 = a_stats.shards.iter().map(|s| s.sessions).sum();
    assert_eq!(sessions, 40);
}

/// SIGTERM with a transfer that cannot finish within --drain-timeout: the
/// engine fails it with the reason, exits 0, and the receiver drops its
/// partial spool file.
#[test]
fn sigterm_fails_what_the_drain_timeout_cuts_off() {
    let a = Daemon::start("drain-cut-rx", &["--shards", "1", "--durable"]);
    // One chunk in flight at a time, each fsynced by the receiver: the file
    // takes seconds, the drain 100 ms.
    let mut b = Daemon::start(
        "drain-cut-tx",
        &[
            "--shards",
            "1",
            "--drain-timeout",
            "100ms",
            "--session-inflight-max",
            "64KiB",
        ],
    );
    let mut a_events = a.events();
    let mut b_events = b.events();
    connect_pairs(&a, &b, &["file".to_string()], &mut a_events, &mut b_events);
    let file = b.dir.join("long.bin");
    write_file(&file, 11, 256 << 20);
    let message = b
        .client()
        .send_file("bfile", "application/octet-stream", &file, true)
        .unwrap();
    let status = b.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "msrpd exits 0 after the drain timeout: {status:?}"
    );
    let mut reason = None;
    collect_events(&mut b_events, Duration::from_secs(10), |event, _| {
        match &event {
            EngineEvent::Failed {
                message: m,
                reason: r,
                ..
            } if *m == message => reason = Some(r.clone()),
            EngineEvent::Delivered { .. } => panic!("the file cannot have finished in 100 ms"),
            _ => {}
        }
        matches!(event, EngineEvent::SessionClosed { .. })
    });
    let reason = reason.expect("the cut-off file failed before its session closed");
    assert!(reason.contains("drain timeout"), "{reason}");
    assert!(file.exists(), "delete_after keeps a file that was not delivered");
    collect_events(&mut a_events, Duration::from_secs(10), |event, _| {
        matches!(event, EngineEvent::MessageAborted { .. })
    });
}

/// A descriptor may give our whole URI (`local_uri`): requests must name
/// exactly it, and its session-id is the session's.
#[test]
fn a_given_local_uri_is_the_session_s_address() {
    let a = Daemon::start("local-uri", &["--shards", "1"]);
    let mut ctl = a.client();
    let c = "msrp://127.0.0.1:9/lc;tcp".to_string();
    let mine = "msrp://msrp.example.net:2855/given77;tcp".to_string();
    let created = ctl
        .create_session(SessionDescriptor {
            local_uri: Some(mine.clone()),
            ..passive("given77", c.clone())
        })
        .unwrap();
    assert_eq!(
        (created.session_id.as_str(), created.local_uri.as_str()),
        ("given77", mine.as_str())
    );
    let mut peer = RawPeer::connect(a.msrp);
    peer.send("tidx1", &mine, &c, b"to the given URI");
    assert_eq!(peer.response_to("tidx1", &mut Vec::new()), 200);
    // The engine's own authority is not this session's address.
    peer.send("tidx2", &a.uri("given77"), &c, b"elsewhere");
    assert_eq!(peer.response_to("tidx2", &mut Vec::new()), 481);
    let mismatch = SessionDescriptor {
        local_uri: Some("msrp://msrp.example.net:2855/other;tcp".into()),
        ..passive("given78", c)
    };
    assert!(
        ctl.create_session(mismatch).is_err(),
        "session_id must match local_uri"
    );
}

/// `update_session` (a re-offer or UPDATE changed what the peer takes,
/// RFC 4975 8.6): before its peer connects and once bound, sends are held
/// to the new accept-types and max-size.
#[test]
fn update_session_changes_what_the_peer_takes() {
    let a = Daemon::start("update", &["--shards", "1"]);
    let mut ctl = a.client();
    let c = "msrp://127.0.0.1:9/up;tcp".to_string();
    let created = ctl
        .create_session(SessionDescriptor {
            remote_accept_types: vec!["text/plain".into()],
            ..passive("u1", c.clone())
        })
        .unwrap();
    // Pending: the peer has not connected yet.
    let update = |types: &[&str], max: Option<u64>| UpdateRequest {
        session_id: "u1".into(),
        remote_accept_types: types.iter().map(|t| t.to_string()).collect(),
        remote_max_size: max,
    };
    ctl.update_session(update(&["text/plain"], Some(8))).unwrap();
    let mut peer = RawPeer::connect(a.msrp);
    peer.send("tidup1", &created.local_uri, &c, b"binds it");
    assert_eq!(peer.response_to("tidup1", &mut Vec::new()), 200);
    let too_big = ctl
        .send_message("u1", "text/plain", b"more than eight")
        .unwrap_err();
    assert!(too_big.to_string().contains("8"), "{too_big}");
    let png = ctl.send_message("u1", "image/png", b"\x89PNG").unwrap_err();
    assert!(png.to_string().contains("does not accept image/png"), "{png}");

    // Bound: the shard that owns it takes the change.
    ctl.update_session(update(&["text/plain", "image/*"], None))
        .unwrap();
    ctl.send_message("u1", "image/png", b"\x89PNG").unwrap();
    ctl.send_message("u1", "text/plain", b"more than eight, now fine")
        .unwrap();

    let unknown = ctl
        .update_session(UpdateRequest {
            session_id: "nope".into(),
            ..update(&[], None)
        })
        .unwrap_err();
    assert!(unknown.to_string().contains("nope"), "{unknown}");
}
