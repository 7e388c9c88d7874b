//! A hostile peer on the MSRP socket (issue 10): what it sends must never
//! take a session over, go unanswered, or hold the engine's memory for ever.
//! Each test goes through the real socket of a real `msrpd serve`.

mod daemon;

use std::io::Write;
use std::time::{Duration, Instant};

use daemon::{collect_events, passive, send_frame, Daemon, RawPeer};
use msrp_engine::control::{ClientError, EngineEvent, SessionDescriptor, SessionRole};

const REAL: &str = "msrp://127.0.0.1:9/real;tcp";
const EVIL: &str = "msrp://127.0.0.1:9/evil;tcp";

fn report_frame(tid: &str, to: &str, from: &str, message_id: &str) -> Vec<u8> {
    format!(
        "MSRP {tid} REPORT\r\nTo-Path: {to}\r\nFrom-Path: {from}\r\nMessage-ID: {message_id}\r\n\
         Byte-Range: 1-4/4\r\nStatus: 000 200 OK\r\n-------{tid}$\r\n"
    )
    .into_bytes()
}

/// RFC 4975 7.3 / 5.4: a request whose From-Path is not the negotiated
/// peer's gets 403 and leaves the pending session as it was: the real peer
/// binds it afterwards, and the stranger hanging up closes nothing.
#[test]
fn a_stranger_cannot_claim_a_pending_session() {
    let a = Daemon::start("takeover", &["--shards", "1"]);
    let mut events = a.events();
    a.client().create_session(passive("v", REAL)).unwrap();

    let mut stranger = RawPeer::connect(a.msrp);
    stranger.write(&report_frame("rep1", &a.uri("v"), EVIL, "mX"));
    stranger.send("tid1", &a.uri("v"), EVIL, b"hijack");
    assert_eq!(stranger.response_to("tid1", &mut Vec::new()), 403);
    assert_eq!(
        a.stats().sessions_pending,
        1,
        "the session is still waiting for its peer"
    );

    let mut peer = RawPeer::connect(a.msrp);
    peer.send("tid2", &a.uri("v"), REAL, b"hello");
    assert_eq!(peer.response_to("tid2", &mut Vec::new()), 200);
    // The stranger's connection now names a session bound elsewhere.
    stranger.send("tid3", &a.uri("v"), EVIL, b"again");
    assert_eq!(stranger.response_to("tid3", &mut Vec::new()), 506);
    drop(stranger);
    std::thread::sleep(Duration::from_millis(200));
    peer.send("tid4", &a.uri("v"), REAL, b"still here");
    assert_eq!(peer.response_to("tid4", &mut Vec::new()), 200);

    let mut bodies = Vec::new();
    collect_events(&mut events, Duration::from_secs(10), |event, payload| {
        match event {
            EngineEvent::SessionClosed { session_id, reason } => {
                panic!("session {session_id} closed: {reason}")
            }
            EngineEvent::MessageReceived { session_id, .. } if session_id == "v" => {
                bodies.push(payload.to_vec())
            }
            _ => {}
        }
        bodies.len() == 2
    });
    assert_eq!(bodies, [b"hello".to_vec(), b"still here".to_vec()]);
}

/// RFC 4975 14: msrps means TLS. Without --tls-listen, such a session is
/// refused outright, local or remote, never carried in the clear.
#[test]
fn msrps_sessions_are_refused_until_tls_exists() {
    let a = Daemon::start("msrps", &["--shards", "1"]);
    let mut ctl = a.client();
    let active_secure = SessionDescriptor {
        session_id: Some("s1".into()),
        remote_path: vec!["msrps://127.0.0.1:9/peer;tcp".into()],
        role: SessionRole::Active,
        ..SessionDescriptor::default()
    };
    let passive_secure_remote = passive("s2", "msrps://127.0.0.1:9/peer;tcp");
    let passive_secure_local = SessionDescriptor {
        local_uri: Some(format!("msrps://{}/s3;tcp", a.advertise)),
        ..passive("s3", REAL)
    };
    for descriptor in [active_secure, passive_secure_remote, passive_secure_local] {
        match ctl.create_session(descriptor.clone()) {
            Err(ClientError::Refused(reason)) => {
                assert!(reason.contains("msrps") && reason.contains("TLS"), "{reason}")
            }
            other => panic!("{descriptor:?} was not refused: {other:?}"),
        }
    }
    let stats = a.stats();
    assert_eq!((stats.sessions_pending, stats.shards[0].sessions), (0, 0));
    assert_eq!(
        stats.shards[0].connections_opened, 0,
        "no plaintext connection was opened"
    );
    // Nothing can bind the would-be passive session over plain TCP.
    let mut peer = RawPeer::connect(a.msrp);
    let frame = send_frame(
        "tid9",
        &format!("msrps://{}/s3;tcp", a.advertise),
        REAL,
        "msg9",
        "text/plain",
        b"x",
    );
    peer.write(&frame);
    assert_eq!(peer.response_to("tid9", &mut Vec::new()), 481);
}

/// A path holding a control octet cannot be echoed: the 400 carries a
/// placeholder path instead of staying silent (the sender matches it by tid).
#[test]
fn paths_with_control_octets_get_400() {
    let a = Daemon::start("control-octets", &["--shards", "1"]);
    a.client().create_session(passive("c", REAL)).unwrap();
    let mut peer = RawPeer::connect(a.msrp);
    for (n, octet) in [0x00u8, 0x01, 0x1b].into_iter().enumerate() {
        let bad = format!("msrp://127.0.0.1:9/x{};tcp", octet as char);
        for (k, (to, from)) in [(a.uri("c"), bad.clone()), (bad.clone(), REAL.to_string())]
            .into_iter()
            .enumerate()
        {
            let tid = format!("ctl{n}x{k}");
            peer.write(&send_frame(&tid, &to, &from, "msg1", "text/plain", b"hi"));
            let response = loop {
                let frame = peer.read_frame().expect("the connection stays open");
                if frame.tid == tid {
                    break frame;
                }
            };
            assert_eq!(response.status, Some(400), "octet {octet:#04x}, To-Path {to:?}");
            assert!(
                !response.headers["To-Path"].bytes().any(|b| b < 0x20),
                "the 400 echoes no control octet"
            );
        }
    }
    // The connection still works.
    peer.send("tidok", &a.uri("c"), REAL, b"fine");
    assert_eq!(peer.response_to("tidok", &mut Vec::new()), 200);
}

/// Transaction ids past 255 characters are delimitable like those of 33 to
/// 255: they get 400, and the connection goes on.
#[test]
fn an_overlong_transaction_id_gets_400_and_the_connection_stays() {
    let a = Daemon::start("long-tid", &["--shards", "1"]);
    a.client().create_session(passive("t", REAL)).unwrap();
    let mut peer = RawPeer::connect(a.msrp);
    for len in [40, 255, 256, 300, 900] {
        let tid: String = "a".repeat(len);
        peer.send(&tid, &a.uri("t"), REAL, b"long");
        assert_eq!(peer.response_to(&tid, &mut Vec::new()), 400, "a tid of {len}");
    }
    peer.send("tidok", &a.uri("t"), REAL, b"short");
    assert_eq!(peer.response_to("tidok", &mut Vec::new()), 200);
    assert_eq!(a.stats().shards[0].responses_out.get("400"), Some(&5));
}

/// A frame begun and never finished on a bound session: no other timer
/// runs, so `--frame-timeout` closes the connection (and counts it), while a
/// connection that is merely quiet between frames stays.
#[test]
fn half_a_frame_is_not_held_for_ever() {
    let a = Daemon::start("frame-timeout", &["--shards", "1", "--frame-timeout", "500ms"]);
    let mut ctl = a.client();
    ctl.create_session(passive("h", REAL)).unwrap();
    ctl.create_session(passive("q", REAL)).unwrap();
    let mut holder = RawPeer::connect(a.msrp);
    holder.send("tid1", &a.uri("h"), REAL, b"bind");
    assert_eq!(holder.response_to("tid1", &mut Vec::new()), 200);
    let mut quiet = RawPeer::connect(a.msrp);
    quiet.send("tid2", &a.uri("q"), REAL, b"bind");
    assert_eq!(quiet.response_to("tid2", &mut Vec::new()), 200);

    let frame = send_frame("half1", &a.uri("h"), REAL, "mh", "text/plain", &[b'x'; 4000]);
    holder.write(&frame[..frame.len() / 2]);
    let started = Instant::now();
    assert!(holder.read_frame().is_none(), "the engine closes the connection");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "not before the frame timeout"
    );
    assert_eq!(a.stats().shards[0].connections_frame_timeout, 1);

    // Quiet between frames for longer than the timeout: still served.
    std::thread::sleep(Duration::from_millis(700));
    quiet.send("tid3", &a.uri("q"), REAL, b"later");
    assert_eq!(quiet.response_to("tid3", &mut Vec::new()), 200);
    assert_eq!(a.stats().shards[0].connections_frame_timeout, 1);
}

/// Idle closes and backpressure pauses are counted in stats.
#[test]
fn idle_closes_and_read_pauses_are_counted() {
    let a = Daemon::start("counted", &["--shards", "1", "--idle-timeout", "300ms"]);
    let mut idle = RawPeer::connect(a.msrp);
    assert!(
        idle.read_frame().is_none(),
        "a connection without a session is closed"
    );
    assert_eq!(a.stats().shards[0].connections_idle_closed, 1);

    // A peer that sends and never reads: once the responses fill both
    // socket buffers the engine stops reading it.
    a.client().create_session(passive("p", REAL)).unwrap();
    let peer = RawPeer::connect(a.msrp);
    let mut stream = peer.stream.try_clone().unwrap();
    let to = a.uri("p");
    let writer = std::thread::spawn(move || {
        let mut batch = Vec::new();
        for i in 0..1_000_000u32 {
            batch.extend(send_frame(
                &format!("t{i:07}"),
                &to,
                REAL,
                &format!("m{i}"),
                "text/plain",
                b"x",
            ));
            if batch.len() > 64 * 1024 {
                if stream.write_all(&batch).is_err() {
                    return;
                }
                batch.clear();
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.stats().shards[0].read_pauses == 0 {
        assert!(Instant::now() < deadline, "the engine never paused reading");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = peer.stream.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
}
