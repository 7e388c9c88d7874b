//! Interoperability with a SIP stack that is not ours: `sipp` (Debian
//! `sip-tester`) calls a real `msrp-signal serve` feeding a real `msrpd
//! serve`, and answers the library's outbound INVITE; for every call a
//! hand-written MSRP peer on a real TCP socket proves that the path in the
//! SDP leads to the engine's session (RFC 4975 5.4, 7.1; RFC 6135 4.2).
//!
//! `cargo test -p msrp-signaling --features sipp --test sipp`. Without
//! sipp on PATH every test fails and says how to install it.
//!
//! The scenarios are ours, in `tests/sipp/*.xml`; each appends one line per
//! call to a file (`<exec>`) with the paths it offered and was answered, so
//! that the test can act on them while sipp holds the call open (`-d`).

mod support;
use support::{msrp_peer, processes};

use std::net::TcpListener;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_engine::control::{Client, EngineEvent};
use msrp_peer::{authority, session_id, Peer};
use msrp_signaling::serve::{CallPolicy, OutboundCall, ServeSettings, Signal};
use msrp_signaling::sip::{EndpointConfig, Transport, Uri};
use processes::{
    free_port, require_sipp, test_dir, value, wait_lines, wait_udp_bound, MsrpSignal, Msrpd, Sipp,
};

/// How long sipp holds each call between ACK and BYE: the MSRP peer
/// connects, sends and sees the engine's event meanwhile (a few ms on
/// loopback; the margin is for a loaded machine).
const CALL_HOLD_MS: u64 = 2000;

/// Waits for an engine event that `wanted` picks, keeping the others in
/// `seen` (events of other calls come interleaved).
fn wait_event(
    events: &mut Client,
    seen: &mut Vec<(EngineEvent, Bytes)>,
    timeout: Duration,
    what: &str,
    mut wanted: impl FnMut(&EngineEvent) -> bool,
) -> (EngineEvent, Bytes) {
    if let Some(at) = seen.iter().position(|(event, _)| wanted(event)) {
        return seen.remove(at);
    }
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {what} within {timeout:?}; other events: {seen:?}"
        );
        if let Some((event, payload)) = events.next_event_timeout(left).unwrap() {
            if wanted(&event) {
                return (event, payload);
            }
            seen.push((event, payload));
        }
    }
}

/// Waits until the engine holds no session.
fn wait_no_sessions(engine: &Msrpd) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sessions = engine.sessions();
        if sessions == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "msrpd still holds {sessions} sessions after every BYE; log:\n{}",
            engine.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn keys(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(key, value)| ["-key".to_string(), key.to_string(), value.to_string()])
        .collect()
}

/// sipp calls `msrp-signal` `calls` times over `transport`, offering
/// `a=setup:SETUP`; the scenario checks each 200's SDP (an msrp path over
/// TCP, `a=setup:passive`, accept-types with text/plain). For each call
/// our MSRP peer connects to the answered path, sends a SEND from the
/// offered path, gets 200 and sees `message_received` on the control
/// socket; sipp's BYE then closes the engine session.
fn uac_calls(name: &str, transport: Transport, setup: &str, calls: u32) {
    require_sipp();
    let started = Instant::now();
    let dir = test_dir(name);
    let engine = Msrpd::start(&dir);
    let signal = MsrpSignal::start(&dir, &engine);
    let mut events = engine.events();
    let callfile = dir.join("calls.txt");
    let (target, transport_flag) = match transport {
        Transport::Udp => (signal.udp, "u1"),
        Transport::Tcp => (signal.tcp, "t1"),
        Transport::Tls => unreachable!("these scenarios run over UDP and TCP"),
    };
    let mut args = keys(&[
        ("setup", setup),
        // The offerer connects (we are active or actpass), so nothing
        // listens on the offered path's port; the discard port says so.
        ("msrpport", "9"),
        ("callfile", &callfile.to_string_lossy()),
    ]);
    args.extend(["-t", transport_flag, "-d", &CALL_HOLD_MS.to_string()].map(String::from));
    args.push(target.to_string());
    let mut sipp = Sipp::start(&dir, "uac_msrp.xml", calls, &args);

    let mut seen = Vec::new();
    let mut peers = Vec::new();
    let mut sessions = Vec::new();
    for n in 0..calls as usize {
        let line = wait_lines(&callfile, n + 1, Duration::from_secs(20), &mut sipp).remove(n);
        let call = value(&line, "call");
        let offered = value(&line, "offered");
        let answered = value(&line, "answered");
        let session = session_id(answered).to_string();
        assert!(session.len() >= 16, "a short session-id in {answered}: {line}");

        let mut peer = Peer::connect(authority(answered));
        let body = format!("hello from sipp call {call} over {transport:?}");
        // RFC 4975 9: a transaction-id and a Message-ID are 4 to 32 characters.
        let tid = format!("tid{call:0>5}");
        let message_id = format!("msg{call:0>5}");
        peer.send(&tid, answered, offered, &message_id, body.as_bytes());
        let response = peer.read();
        assert_eq!(
            (response.tid.as_str(), response.status),
            (tid.as_str(), Some(200)),
            "the engine's answer to our SEND on {answered}: {response:?}\nmsrpd:\n{}",
            engine.log()
        );
        // RFC 4975 7.2: the response's To-Path is the request's From-Path.
        assert_eq!(response.header("To-Path"), offered);
        assert_eq!(response.header("From-Path"), answered);

        let (event, payload) = wait_event(
            &mut events,
            &mut seen,
            Duration::from_secs(10),
            "message_received",
            |e| matches!(e, EngineEvent::MessageReceived { session_id, .. } if *session_id == session),
        );
        let EngineEvent::MessageReceived {
            message_id: got_id,
            content_type,
            size,
            ..
        } = event
        else {
            unreachable!()
        };
        assert_eq!(
            (got_id.as_str(), content_type.as_str(), size),
            (message_id.as_str(), "text/plain", body.len() as u64)
        );
        assert_eq!(payload, body.as_bytes());
        // The session lives until the BYE, not beyond our message.
        assert!(
            !seen.iter().any(
                |(e, _)| matches!(e, EngineEvent::SessionClosed { session_id, .. } if *session_id == session)
            ),
            "the session closed before sipp's BYE: {seen:?}"
        );
        // Held open until sipp's BYE: the peer's going would end the call.
        peers.push(peer);
        sessions.push(session);
    }
    let sipp_wait = sipp.wait_success();
    for session in &sessions {
        let (event, _) = wait_event(
            &mut events,
            &mut seen,
            Duration::from_secs(10),
            "session_closed after BYE",
            |e| matches!(e, EngineEvent::SessionClosed { session_id, .. } if session_id == session),
        );
        eprintln!("{name}: {event:?}");
    }
    wait_no_sessions(&engine);
    eprintln!(
        "{name}: {calls} calls in {:?} (sipp's last {sipp_wait:?} after our last message)",
        started.elapsed()
    );
    drop(peers);
    drop(signal);
}

#[test]
fn uac_over_udp_offering_active_gets_a_passive_answer_and_its_message_reaches_the_engine() {
    uac_calls("uac-udp-active", Transport::Udp, "active", 3);
}

#[test]
fn uac_over_tcp_offering_active_gets_a_passive_answer_and_its_message_reaches_the_engine() {
    uac_calls("uac-tcp-active", Transport::Tcp, "active", 3);
}

#[test]
fn uac_over_udp_offering_actpass_gets_a_passive_answer_and_its_message_reaches_the_engine() {
    uac_calls("uac-udp-actpass", Transport::Udp, "actpass", 2);
}

#[test]
fn uac_over_tcp_offering_actpass_gets_a_passive_answer_and_its_message_reaches_the_engine() {
    uac_calls("uac-tcp-actpass", Transport::Tcp, "actpass", 1);
}

/// sipp offers `a=setup:passive` with a path on this test's listener: the
/// answer is active (RFC 4145 4.1), so the engine connects there and binds
/// with a bodiless SEND from the answered path to the offered one (RFC 4975
/// 5.4); our peer then sends on that connection and the engine reports
/// the message; sipp's BYE closes the session.
#[test]
fn uac_over_udp_offering_passive_gets_an_active_answer_and_the_engine_connects() {
    require_sipp();
    let started = Instant::now();
    let dir = test_dir("uac-udp-passive");
    let engine = Msrpd::start(&dir);
    let signal = MsrpSignal::start(&dir, &engine);
    let mut events = engine.events();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let msrp_port = listener.local_addr().unwrap().port().to_string();
    let callfile = dir.join("calls.txt");
    let mut args = keys(&[
        ("msrpport", &msrp_port),
        ("callfile", &callfile.to_string_lossy()),
    ]);
    args.extend(["-t", "u1", "-d", &CALL_HOLD_MS.to_string()].map(String::from));
    args.push(signal.udp.to_string());
    let mut sipp = Sipp::start(&dir, "uac_msrp_passive.xml", 1, &args);

    let line = wait_lines(&callfile, 1, Duration::from_secs(20), &mut sipp).remove(0);
    let offered = value(&line, "offered");
    let answered = value(&line, "answered");
    let session = session_id(answered).to_string();
    let mut peer = Peer::on(accept_within(&listener, Duration::from_secs(10)));
    let bind = peer.read();
    assert_eq!(bind.method, "SEND", "{bind:?}");
    assert_eq!(bind.header("To-Path"), offered);
    assert_eq!(bind.header("From-Path"), answered);
    assert!(bind.body.is_empty(), "the bind SEND has a body: {bind:?}");
    peer.answer_200(&bind);

    let body = b"hello from sipp, on the engine's connection";
    peer.send("tidpassive1", answered, offered, "msgpassive1", body);
    let response = peer.read();
    assert_eq!(
        response.status,
        Some(200),
        "{response:?}\nmsrpd:\n{}",
        engine.log()
    );
    let mut seen = Vec::new();
    let (_, payload) = wait_event(
        &mut events,
        &mut seen,
        Duration::from_secs(10),
        "message_received",
        |e| matches!(e, EngineEvent::MessageReceived { session_id, .. } if *session_id == session),
    );
    assert_eq!(payload, &body[..]);
    sipp.wait_success();
    wait_event(
        &mut events,
        &mut seen,
        Duration::from_secs(10),
        "session_closed",
        |e| matches!(e, EngineEvent::SessionClosed { session_id, .. } if *session_id == session),
    );
    wait_no_sessions(&engine);
    eprintln!("uac-udp-passive: 1 call in {:?}", started.elapsed());
    drop(peer);
}

/// sipp's offer that we cannot take is refused 488 with a Warning that
/// names why, and no engine session is left behind.
fn refused(name: &str, scenario: &str, transport: Transport, warning: &str) {
    require_sipp();
    let dir = test_dir(name);
    let engine = Msrpd::start(&dir);
    let signal = MsrpSignal::start(&dir, &engine);
    let callfile = dir.join("calls.txt");
    let (target, transport_flag) = match transport {
        Transport::Udp => (signal.udp, "u1"),
        Transport::Tcp => (signal.tcp, "t1"),
        Transport::Tls => unreachable!("these scenarios run over UDP and TCP"),
    };
    let mut args = keys(&[("msrpport", "2855"), ("callfile", &callfile.to_string_lossy())]);
    args.extend(["-t", transport_flag].map(String::from));
    args.push(target.to_string());
    let mut sipp = Sipp::start(&dir, scenario, 1, &args);
    sipp.wait_success();
    let lines = wait_lines(&callfile, 1, Duration::from_secs(1), &mut sipp);
    let (_, text) = lines[0]
        .split_once("warning=")
        .expect("a warning= in the call line");
    assert_eq!(text, warning, "{}", signal.log());
    assert_eq!(engine.sessions(), 0);
}

#[test]
fn an_offer_of_audio_only_is_refused_488_with_a_warning() {
    refused(
        "refused-audio",
        "uac_refused_audio.xml",
        Transport::Udp,
        "no m=message TCP/MSRP media",
    );
}

#[test]
fn an_offer_of_msrp_over_tls_is_refused_488_with_a_warning() {
    refused(
        "refused-tls",
        "uac_refused_tls.xml",
        Transport::Tcp,
        "TCP/TLS/MSRP needs MSRP over TLS, and the msrpd of this server has no --tls-listen",
    );
}

/// Accepts the engine's MSRP connection within `timeout`.
fn accept_within(listener: &TcpListener, timeout: Duration) -> std::net::TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "the engine did not connect within {timeout:?}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// The library's UAC (`Signal::invite`) calls sipp's UAS, which answers
/// `a=setup:passive` with a path on a TCP listener of this test: the
/// engine must connect there and bind with a bodiless SEND (RFC 4975 5.4)
/// from the path we offered to the path sipp answered, then carry a message
/// the test asks for on the control socket; our hangup is sipp's BYE and
/// ends the engine session.
#[test]
fn uas_answers_the_librarys_invite_and_the_engine_connects_to_the_answered_path() {
    uas_call("uas");
}

/// Signal::invite right after Signal::start: the INVITE must leave at
/// once, not after Timer A (500 ms) retransmits it.
///
/// It did not: `Core::send` used tokio's `UdpSocket::try_send_to`, which
/// answers WouldBlock until the reactor has seen the new socket writable,
/// and the datagram was dropped. Timer A fires at 500 ms, a call here
/// takes a few; 400 ms tells the two apart on the slowest machine.
#[test]
fn the_first_invite_after_start_leaves_at_once() {
    let setup = uas_call("uas-first");
    assert!(
        setup < Duration::from_millis(400),
        "INVITE -> 200 took {setup:?}: the first INVITE was lost and Timer A resent it"
    );
}

/// One call of the library's UAC to sipp's UAS; returns INVITE -> 200.
fn uas_call(name: &str) -> Duration {
    require_sipp();
    let started = Instant::now();
    let dir = test_dir(name);
    let engine = Msrpd::start(&dir);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let msrp_port = listener.local_addr().unwrap().port().to_string();
    let sip_port = free_port();
    let callfile = dir.join("calls.txt");
    let mut args = keys(&[
        ("msrpport", &msrp_port),
        ("callfile", &callfile.to_string_lossy()),
    ]);
    args.extend(["-p".to_string(), sip_port.to_string()]);
    let mut sipp = Sipp::start(&dir, "uas_msrp.xml", 1, &args);
    wait_udp_bound(sip_port, &mut sipp);

    // The MSRP side of sipp's answer: the engine connects, binds, sends.
    let peer = std::thread::spawn(move || {
        let mut peer = Peer::on(accept_within(&listener, Duration::from_secs(20)));
        let bind = peer.read();
        peer.answer_200(&bind);
        let message = peer.read();
        peer.answer_200(&message);
        (peer, bind, message)
    });

    let mut events = engine.events();
    let control = engine.control.clone();
    let commands = engine.client();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let setup = runtime.block_on(async move {
        let signal = Signal::start(ServeSettings {
            sip: vec!["udp:127.0.0.1:0".parse().unwrap()],
            engine: control,
            host: None,
            policy: CallPolicy::default(),
            endpoint: EndpointConfig::default(),
            calls_max: 16,
            state: None,
            app: None,
        })
        .await
        .expect("Signal starts against msrpd");
        let call = OutboundCall {
            to: Uri::parse(&format!("sip:sipp@127.0.0.1:{sip_port}")).unwrap(),
            from: None,
            target: format!("127.0.0.1:{sip_port}").parse().unwrap(),
            transport: Transport::Udp,
            options: Default::default(),
        };
        let established = tokio::time::timeout(Duration::from_secs(20), signal.invite(call))
            .await
            .unwrap_or_else(|_| panic!("no answer to our INVITE in 20 s\n{}", sipp.logs()))
            .unwrap_or_else(|e| panic!("our INVITE to sipp: {e}\n{}", sipp.logs()));
        assert_eq!(established.sessions.len(), 1, "{established:?}");
        let session = established.sessions[0].clone();
        eprintln!("{name}: INVITE -> 200 in {:?}", established.setup);

        // Blocking work off the runtime's one thread, which runs `signal`.
        let (mut events, sipp, session, peer) = tokio::task::spawn_blocking(move || {
            let mut seen = Vec::new();
            wait_event(
                &mut events,
                &mut seen,
                Duration::from_secs(10),
                "session_ready",
                |e| matches!(e, EngineEvent::SessionReady { session_id } if *session_id == session),
            );
            let mut client = commands;
            client
                .send_message(&session, "text/plain", b"hello sipp, from msrpd")
                .unwrap();
            wait_event(
                &mut events,
                &mut seen,
                Duration::from_secs(10),
                "delivered",
                |e| matches!(e, EngineEvent::Delivered { session_id, .. } if *session_id == session),
            );
            let (peer, bind, message) = peer.join().expect("the MSRP peer saw the bind and the message");
            // sipp's <exec> runs in a child of its own: wait for its line.
            let line = wait_lines(&callfile, 1, Duration::from_secs(10), &mut sipp).remove(0);
            let offered = value(&line, "offered").to_string();
            let answered = value(&line, "answered").to_string();
            // RFC 4975 5.4: the bind goes to sipp's answered path, from ours.
            assert_eq!(bind.method, "SEND", "{bind:?}");
            assert_eq!(bind.header("To-Path"), answered);
            assert_eq!(bind.header("From-Path"), offered);
            assert!(bind.body.is_empty(), "the bind SEND has a body: {bind:?}");
            assert_eq!(session_id(&offered), session);
            assert_eq!(message.method, "SEND", "{message:?}");
            assert_eq!(message.header("To-Path"), answered);
            assert_eq!(message.header("Content-Type"), "text/plain");
            assert_eq!(message.body, b"hello sipp, from msrpd");
            // Held until the BYE: a lost connection would end the session.
            (events, sipp, session, peer)
        })
        .await
        .unwrap();

        signal.hangup(established.call, "the test is done").await;
        tokio::task::spawn_blocking(move || {
            let mut sipp = sipp;
            sipp.wait_success();
            let mut seen = Vec::new();
            wait_event(
                &mut events,
                &mut seen,
                Duration::from_secs(10),
                "session_closed",
                |e| matches!(e, EngineEvent::SessionClosed { session_id, .. } if *session_id == session),
            );
        })
        .await
        .unwrap();
        drop(peer);
        established.setup
    });
    wait_no_sessions(&engine);
    eprintln!("{name}: 1 call in {:?}", started.elapsed());
    setup
}

/// msrp-signal killed (SIGKILL) with calls up: the next one, started on the
/// same dialog journal, ends each with a BYE that sipp answers, and closes
/// their engine sessions, logging each; then a new call works.
#[test]
fn a_restarted_msrp_signal_ends_the_calls_its_predecessor_left() {
    require_sipp();
    let dir = test_dir("restart");
    let engine = Msrpd::start(&dir);
    let mut first = MsrpSignal::start(&dir, &engine);
    let callfile = dir.join("calls.txt");
    let mut args = keys(&[
        ("setup", "active"),
        ("msrpport", "9"),
        ("callfile", &callfile.to_string_lossy()),
    ]);
    args.extend(["-t", "u1"].map(String::from));
    args.push(first.udp.to_string());
    let mut sipp = Sipp::start(&dir, "uac_msrp_until_bye.xml", 2, &args);
    wait_lines(&callfile, 2, Duration::from_secs(20), &mut sipp);
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.sessions_pending() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        engine.sessions_pending(),
        2,
        "both calls' sessions wait in the engine (nobody connects)"
    );

    first.kill();
    let second = MsrpSignal::start(&dir, &engine);
    sipp.wait_success();
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.sessions_pending() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        engine.sessions_pending(),
        0,
        "the left sessions were closed\n{}",
        engine.log()
    );
    let log = second.log();
    assert_eq!(
        log.matches("ending a dialog left by an earlier msrp-signal")
            .count(),
        2,
        "{log}"
    );

    // New calls work on the restarted process: one is set up (the scenario
    // checks the 200's SDP) and ended by sipp's BYE, and its session with it.
    let callfile = dir.join("calls-after-restart.txt");
    let mut args = keys(&[
        ("setup", "active"),
        ("msrpport", "9"),
        ("callfile", &callfile.to_string_lossy()),
    ]);
    args.extend(["-t", "u1", "-d", "200"].map(String::from));
    args.push(second.udp.to_string());
    let mut sipp = Sipp::start(&dir, "uac_msrp.xml", 1, &args);
    sipp.wait_success();
    assert_eq!(
        wait_lines(&callfile, 1, Duration::from_secs(5), &mut sipp).len(),
        1
    );
    wait_no_sessions(&engine);
}

/// An UPDATE that changes what the peer takes (accept-types, max-size) is
/// answered 200 with the same path once the engine took the new limits
/// (`update_session`; had it refused, the answer would be 500 and sipp
/// would fail). A re-INVITE moving the peer's path is refused 488 with a
/// Warning, and the call goes on to its BYE.
#[test]
fn an_update_changes_the_peers_limits_and_a_move_is_refused() {
    require_sipp();
    let dir = test_dir("update");
    let engine = Msrpd::start(&dir);
    let signal = MsrpSignal::start(&dir, &engine);
    let callfile = dir.join("calls.txt");
    let mut args = keys(&[("msrpport", "9"), ("callfile", &callfile.to_string_lossy())]);
    args.extend(["-t", "t1"].map(String::from));
    args.push(signal.tcp.to_string());
    let mut sipp = Sipp::start(&dir, "uac_msrp_update.xml", 1, &args);
    let lines = wait_lines(&callfile, 3, Duration::from_secs(20), &mut sipp);
    sipp.wait_success();
    let answered = value(&lines[0], "answered");
    assert_eq!(
        value(&lines[1], "path"),
        answered,
        "RFC 4975 8.4: the same session keeps its path"
    );
    assert!(
        lines[2].contains("cannot move"),
        "the Warning names why: {}",
        lines[2]
    );
    assert_eq!(engine.sessions_pending(), 0, "the BYE closed the session");
    let log = signal.log();
    assert!(!log.contains("did not take the new limits"), "{log}");
}
