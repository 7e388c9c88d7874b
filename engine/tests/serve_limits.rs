//! Every bound of `msrpd serve` is a setting, and hitting it gives a clear
//! error, an RFC status or an event; never a stall or a silent drop.

mod daemon;

use std::time::{Duration, Instant};

use daemon::{collect_events, passive, Daemon, RawPeer};
use msrp_engine::control::{ClientError, EngineEvent, SessionDescriptor, SessionRole};

const PEER: &str = "msrp://127.0.0.1:9/peer;tcp";

#[test]
fn a_passive_session_nobody_claims_expires_with_an_event() {
    let a = Daemon::start("pending-expiry", &["--shards", "1", "--pending-expiry", "300ms"]);
    let mut events = a.events();
    let mut ctl = a.client();
    ctl.create_session(passive("lonely", PEER)).unwrap();
    assert_eq!(a.stats().sessions_pending, 1);
    let mut reason = String::new();
    collect_events(&mut events, Duration::from_secs(10), |event, _| match event {
        EngineEvent::SessionClosed {
            session_id,
            reason: r,
        } if session_id == "lonely" => {
            reason = r;
            true
        }
        _ => false,
    });
    assert!(reason.contains("pending-expiry"), "{reason}");
    assert_eq!(a.stats().sessions_pending, 0);
    // Its id is free again, and a request for it now gets 481.
    let mut peer = RawPeer::connect(a.msrp);
    peer.send("tid1", &a.uri("lonely"), PEER, b"late");
    assert_eq!(peer.response_to("tid1", &mut Vec::new()), 481);
}

#[test]
fn pending_sessions_beyond_the_bound_are_refused() {
    let a = Daemon::start("pending-max", &["--shards", "1", "--pending-sessions-max", "2"]);
    let mut ctl = a.client();
    ctl.create_session(passive("p1", PEER)).unwrap();
    ctl.create_session(passive("p2", PEER)).unwrap();
    match ctl.create_session(passive("p3", PEER)) {
        Err(ClientError::Refused(reason)) => assert!(reason.contains("pending-sessions-max"), "{reason}"),
        other => panic!("a third pending session: {other:?}"),
    }
    match ctl.create_session(passive("p1", PEER)) {
        Err(ClientError::Refused(reason)) => assert!(reason.contains("already in use"), "{reason}"),
        other => panic!("a duplicate session-id: {other:?}"),
    }
}

#[test]
fn connections_beyond_the_bound_are_closed() {
    let a = Daemon::start("conn-max", &["--shards", "1", "--connections-max", "1"]);
    let mut ctl = a.client();
    ctl.create_session(passive("s1", PEER)).unwrap();
    let mut first = RawPeer::connect(a.msrp);
    first.send("tid1", &a.uri("s1"), PEER, b"first");
    assert_eq!(first.response_to("tid1", &mut Vec::new()), 200);
    let mut second = RawPeer::connect(a.msrp);
    assert!(second.read_frame().is_none(), "the second connection is closed");
    let stats = a.stats();
    assert_eq!(
        (stats.shards[0].connections, stats.shards[0].connections_refused),
        (1, 1)
    );
    first.send("tid2", &a.uri("s1"), PEER, b"first again");
    assert_eq!(first.response_to("tid2", &mut Vec::new()), 200);
}

#[test]
fn a_connection_without_sessions_is_closed_when_idle() {
    let a = Daemon::start("idle", &["--shards", "1", "--idle-timeout", "200ms"]);
    let mut peer = RawPeer::connect(a.msrp);
    let started = Instant::now();
    assert!(peer.read_frame().is_none(), "the idle connection is closed");
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[test]
fn sessions_beyond_the_per_connection_bound_are_refused() {
    let a = Daemon::start(
        "sessions-max",
        &["--shards", "1", "--sessions-per-connection-max", "2"],
    );
    let mut events = a.events();
    let mut ctl = a.client();
    for id in ["s1", "s2", "s3"] {
        ctl.create_session(passive(id, PEER)).unwrap();
    }
    let mut peer = RawPeer::connect(a.msrp);
    let mut sends = Vec::new();
    peer.send("tid1", &a.uri("s1"), PEER, b"one");
    assert_eq!(peer.response_to("tid1", &mut sends), 200);
    peer.send("tid2", &a.uri("s2"), PEER, b"two");
    assert_eq!(peer.response_to("tid2", &mut sends), 200);
    peer.send("tid3", &a.uri("s3"), PEER, b"three");
    assert_eq!(peer.response_to("tid3", &mut sends), 481);
    collect_events(&mut events, Duration::from_secs(10), |event, _| match event {
        EngineEvent::SessionClosed { session_id, reason } => {
            assert_eq!(session_id, "s3");
            assert!(reason.contains("sessions-per-connection-max"), "{reason}");
            true
        }
        _ => false,
    });
}

#[test]
fn messages_over_message_max_get_413_without_an_sdp_max_size() {
    let a = Daemon::start("message-max", &["--shards", "1", "--message-max", "4KiB"]);
    let mut ctl = a.client();
    ctl.create_session(passive("s1", PEER)).unwrap();
    let mut peer = RawPeer::connect(a.msrp);
    peer.send("tid1", &a.uri("s1"), PEER, &[b'a'; 4096]);
    assert_eq!(peer.response_to("tid1", &mut Vec::new()), 200);
    peer.send("tid2", &a.uri("s1"), PEER, &[b'a'; 4097]);
    assert_eq!(peer.response_to("tid2", &mut Vec::new()), 413);
}

/// A subscriber that stops reading is dropped once its queue is full; the
/// connection keeps being answered and a reading subscriber misses nothing.
#[test]
fn a_slow_subscriber_is_dropped_and_the_data_path_goes_on() {
    // The peer sends in rounds and waits for the reading subscriber to see
    // each, so that one never lags by more than a round (a subscriber slower
    // than the engine is dropped too: that is the rule). The stalled one
    // takes about 1,500 events into its socket buffer, then queues the rest
    // until it passes the bound.
    const ROUNDS: usize = 20;
    const ROUND: usize = 1000;
    let a = Daemon::start(
        "slow-subscriber",
        &["--shards", "1", "--subscriber-queue-depth", "8000"],
    );
    let mut reader = a.events();
    let _stalled = a.events();
    let mut ctl = a.client();
    ctl.create_session(passive("s1", PEER)).unwrap();
    let mut peer = RawPeer::connect(a.msrp);
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let events_thread = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            collect_events(&mut reader, Duration::from_secs(60), |event, _| {
                if matches!(event, EngineEvent::MessageReceived { .. }) {
                    seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                seen.load(std::sync::atomic::Ordering::Relaxed) == ROUNDS * ROUND
            });
        })
    };
    for round in 0..ROUNDS {
        let mut wire = Vec::new();
        for i in round * ROUND..(round + 1) * ROUND {
            let (tid, mid) = (format!("tid{i:05}"), format!("mid{i:05}"));
            wire.extend(daemon::send_frame(
                &tid,
                &a.uri("s1"),
                PEER,
                &mid,
                "text/plain",
                b"x",
            ));
        }
        peer.write(&wire);
        for i in round * ROUND..(round + 1) * ROUND {
            assert_eq!(peer.response_to(&format!("tid{i:05}"), &mut Vec::new()), 200);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.load(std::sync::atomic::Ordering::Relaxed) < (round + 1) * ROUND {
            assert!(Instant::now() < deadline, "the reading subscriber fell behind");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    events_thread.join().unwrap();
    let stats = a.stats();
    assert_eq!(stats.subscribers_dropped, 1, "{stats:?}");
    assert!(
        a.log().contains("subscriber-queue-depth"),
        "the drop is logged with its reason"
    );
}

/// An active session whose peer cannot be reached: its messages fail and the
/// session closes with the reason, once the connect timeout has passed.
#[test]
fn an_unreachable_peer_fails_its_sessions_after_the_connect_timeout() {
    let a = Daemon::start(
        "connect-timeout",
        &["--shards", "1", "--connect-timeout", "300ms"],
    );
    let mut events = a.events();
    let mut ctl = a.client();
    // A port nobody listens on: bind one, note it, close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let descriptor = SessionDescriptor {
        role: SessionRole::Active,
        ..passive("out", format!("msrp://{closed}/far;tcp"))
    };
    let started = Instant::now();
    ctl.create_session(descriptor).unwrap();
    let message = ctl.send_message("out", "text/plain", b"anyone?").unwrap();
    let mut failed = None;
    collect_events(&mut events, Duration::from_secs(20), |event, _| match event {
        EngineEvent::Failed {
            message: m,
            reason,
            status,
            ..
        } if m == message => {
            failed = Some((status, reason));
            false
        }
        EngineEvent::SessionClosed { reason, .. } => {
            assert!(reason.contains("cannot connect"), "{reason}");
            true
        }
        _ => false,
    });
    let (status, reason) = failed.expect("the message failed before its session closed");
    assert_eq!(status, None, "a local cause has no MSRP status");
    assert!(
        reason.contains("cannot connect") && reason.contains(&closed.to_string()),
        "{reason}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it retried until the timeout"
    );
    let stats = a.stats();
    assert_eq!(stats.shards[0].connections_failed, 1);
}

/// `--config FILE` sets flags by name; the command line overrides the file;
/// an unknown key is refused with the file's name.
#[test]
fn the_config_file_sets_flags_and_the_command_line_wins() {
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("msrpd.toml");
    std::fs::write(
        &config,
        "shards = 2\npending-sessions-max = 1\ndurable = true\npending-expiry = \"1h\"\n",
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let a = Daemon::start("config-file", &["--config", &config_arg, "--shards", "1"]);
    assert_eq!(
        a.stats().shards.len(),
        1,
        "--shards on the command line beats the file"
    );
    let mut ctl = a.client();
    ctl.create_session(passive("p1", PEER)).unwrap();
    match ctl.create_session(passive("p2", PEER)) {
        Err(ClientError::Refused(reason)) => assert!(reason.contains("pending-sessions-max"), "{reason}"),
        other => panic!("pending-sessions-max = 1 from the file: {other:?}"),
    }

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "shards = 2\nshard-count = 3\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_msrpd"))
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--shard-count") && stderr.contains("bad.toml"),
        "{stderr}"
    );
}

/// A large message whose sender stops (Failure-Report: no, so nothing is
/// answered) is dropped after --incoming-expiry, its spool file with it.
#[test]
fn an_abandoned_incoming_message_expires_and_its_spool_file_goes() {
    let a = Daemon::start(
        "incoming-expiry",
        &[
            "--shards",
            "1",
            "--inline-max",
            "4KiB",
            "--incoming-expiry",
            "300ms",
        ],
    );
    let mut events = a.events();
    let mut ctl = a.client();
    ctl.create_session(passive("s1", PEER)).unwrap();
    let mut peer = RawPeer::connect(a.msrp);
    let mut chunk = format!(
        "MSRP tidx1 SEND\r\nTo-Path: {}\r\nFrom-Path: {PEER}\r\nMessage-ID: half1\r\n\
         Byte-Range: 1-5000/10000\r\nFailure-Report: no\r\nContent-Type: application/octet-stream\r\n\r\n",
        a.uri("s1")
    )
    .into_bytes();
    chunk.extend_from_slice(&[b'h'; 5000]);
    chunk.extend_from_slice(b"\r\n-------tidx1+\r\n");
    peer.write(&chunk);
    let started = Instant::now();
    let mut reason = String::new();
    collect_events(&mut events, Duration::from_secs(10), |event, _| match event {
        EngineEvent::MessageAborted { reason: r, .. } => {
            reason = r;
            true
        }
        _ => false,
    });
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "not before the expiry"
    );
    assert!(!reason.is_empty());
    a.wait_spool_empty();
}

/// `--cpus` pins the shards to the listed CPUs, in turn; it contradicts
/// `--no-pin`, and a list that is not one is refused.
#[test]
fn cpus_pins_every_shard_to_the_listed_cpus() {
    let a = Daemon::start("cpus", &["--cpus", "0", "--shards", "2"]);
    // A shard pins itself as its thread starts, which may be after the
    // ready line; once both have answered `stats` they have run.
    assert_eq!(a.stats().shards.len(), 2);
    let tasks = std::fs::read_dir(format!("/proc/{}/task", a.pid())).unwrap();
    let mut shards = Vec::new();
    for task in tasks {
        let task = task.unwrap().path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap();
        if !name.starts_with("msrpd-shard") {
            continue;
        }
        let status = std::fs::read_to_string(task.join("status")).unwrap();
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_string();
        shards.push((name.trim().to_string(), allowed));
    }
    shards.sort();
    assert_eq!(
        shards,
        [
            ("msrpd-shard-0".to_string(), "0".to_string()),
            ("msrpd-shard-1".to_string(), "0".to_string())
        ]
    );

    for (args, says) in [
        (&["--cpus", "0", "--no-pin"][..], "--no-pin"),
        (&["--cpus", "5-2"][..], "5-2"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_msrpd"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
