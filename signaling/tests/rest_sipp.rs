//! The REST API against a SIP stack that is not ours: `sipp` (Debian
//! `sip-tester`) calls `msrp-signal serve --http --no-auto-answer`, whose
//! application answers or rejects through the API, and answers the
//! application's outbound 1PCC call. A hand-written MSRP peer
//! (`sipp/msrp_peer.rs`) proves that each answered path leads to the
//! engine's session.
//!
//! `cargo test -p msrp-signaling --features sipp --test rest_sipp`. Without
//! sipp on PATH every test fails and says how to install it.

mod support;
use support::{msrp_peer, processes, sse, stack};

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;

use msrp_peer::{authority, Peer};
use processes::{free_port, require_sipp, value, wait_lines, wait_udp_bound, Sipp};
use sse::Sse;
use stack::Pair;

const WAIT: Duration = Duration::from_secs(10);

/// How long sipp holds an answered call between ACK and BYE: the MSRP peer
/// connects and both sides send meanwhile.
const CALL_HOLD_MS: u64 = 2000;

fn keys(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(key, value)| ["-key".to_string(), key.to_string(), value.to_string()])
        .collect()
}

/// Accepts the engine's MSRP connection within `timeout`.
fn accept_within(listener: &TcpListener, timeout: Duration) -> TcpStream {
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

/// sipp's INVITE is the application's `incoming`; it answers, sipp's
/// scenario checks the 200's SDP (RFC 4975 8, RFC 6135 4.2), the MSRP peer
/// on sipp's offered path talks to the answered one both ways, and sipp's
/// BYE is the session's `hangup` by the remote side.
#[test]
fn an_application_answers_sipps_invite() {
    require_sipp();
    let started = Instant::now();
    let pair = Pair::start("sipp-answer", &["--no-auto-answer"]);
    let mut events = Sse::open(&pair.api, "/v1/events", None);
    let callfile = pair.dir.join("calls.txt");
    let mut args = keys(&[
        ("setup", "actpass"),
        // The offerer connects: nothing listens on the offered port.
        ("msrpport", "9"),
        ("callfile", &callfile.to_string_lossy()),
    ]);
    args.extend(["-t", "u1", "-d", &CALL_HOLD_MS.to_string()].map(String::from));
    args.push(pair.signal.udp.to_string());
    let mut sipp = Sipp::start(&pair.dir, "uac_msrp.xml", 1, &args);

    let incoming = events.wait("incoming", WAIT, |e| e.event == "incoming");
    let id = incoming.session();
    let call = incoming.json();
    assert!(call["from"].as_str().unwrap().contains("sip:sipp@"), "{call}");
    assert!(
        call["request_uri"].as_str().unwrap().starts_with("sip:msrp@"),
        "{call}"
    );
    assert!(
        call["offer"].as_str().unwrap().contains("a=setup:actpass"),
        "{call}"
    );
    assert_eq!(call["auto_answer"], false);
    let answered = pair
        .api
        .post(&format!("/v1/sessions/{id}/answer"), &json!({}))
        .expect(200)
        .json();
    assert_eq!(answered["state"], "connected", "{answered}");
    assert_eq!(answered["direction"], "inbound");
    events.expect("connected", &id);

    let line = wait_lines(&callfile, 1, WAIT, &mut sipp).remove(0);
    let offered = value(&line, "offered").to_string();
    let ours = value(&line, "answered").to_string();
    assert_eq!(
        answered["msrp"][0]["local_path"],
        json!([ours]),
        "sipp saw our path: {answered}"
    );
    assert_eq!(answered["msrp"][0]["remote_path"], json!([offered]), "{answered}");
    let mut peer = Peer::connect(authority(&ours));
    peer.send("tsipp1", &ours, &offered, "sipp-m1", b"hello over sipp's call");
    let response = peer.read();
    assert_eq!(response.status, Some(200), "{response:?}");
    assert_eq!(
        events.expect("message", &id).json()["text"],
        "hello over sipp's call"
    );
    let sent = pair
        .api
        .post(
            &format!("/v1/sessions/{id}/messages"),
            &json!({"text": "hello sipp's peer"}),
        )
        .expect(202)
        .json();
    let frame = peer.read();
    assert_eq!(frame.method, "SEND", "{frame:?}");
    assert_eq!(frame.header("To-Path"), offered);
    assert_eq!(frame.body, b"hello sipp's peer");
    peer.answer_200(&frame);
    assert_eq!(events.expect("delivered", &id).json()["message"], sent["id"]);

    // sipp's BYE after the hold.
    let hangup = events.expect("hangup", &id).json();
    assert_eq!(hangup["by"], "remote", "{hangup}");
    sipp.wait_success();
    assert_eq!(
        pair.api.get(&format!("/v1/sessions/{id}")).expect(200).json()["state"],
        "closed"
    );
    eprintln!("sipp answer: {:?}", started.elapsed());
}

/// The application rejects sipp's INVITE with 486: sipp's scenario
/// (`rest/uac_busy.xml`) requires exactly that final response.
#[test]
fn an_application_rejects_sipps_invite_486() {
    require_sipp();
    let started = Instant::now();
    let pair = Pair::start("sipp-busy", &["--no-auto-answer"]);
    let mut events = Sse::open(&pair.api, "/v1/events", None);
    let callfile = pair.dir.join("calls.txt");
    let mut args = keys(&[("msrpport", "9"), ("callfile", &callfile.to_string_lossy())]);
    args.extend(["-t", "u1"].map(String::from));
    args.push(pair.signal.udp.to_string());
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rest/uac_busy.xml");
    let mut sipp = Sipp::start(&pair.dir, scenario, 1, &args);

    let incoming = events.wait("incoming", WAIT, |e| e.event == "incoming");
    let id = incoming.session();
    let rejected = pair
        .api
        .post(&format!("/v1/sessions/{id}/reject"), &json!({"status": 486}))
        .expect(200)
        .json();
    assert_eq!(rejected["state"], "closed", "{rejected}");
    let hangup = events.expect("hangup", &id).json();
    assert_eq!(hangup["status"], 486, "{hangup}");
    assert_eq!(hangup["by"], "local");
    let line = wait_lines(&callfile, 1, WAIT, &mut sipp).remove(0);
    assert_eq!(value(&line, "status"), "486", "{line}");
    sipp.wait_success();
    eprintln!("sipp busy: {:?}", started.elapsed());
}

/// The application's 1PCC call to sipp's UAS (`sipp/uas_msrp.xml`, which
/// answers passive with a path on this test's listener): `calling`, then
/// `connected`; the engine connects and binds there (RFC 4975 5.4), a REST
/// message reaches the peer; DELETE is sipp's BYE.
#[test]
fn an_application_calls_sipp_and_hangs_up() {
    require_sipp();
    let started = Instant::now();
    let pair = Pair::start("sipp-uas", &[]);
    let mut events = Sse::open(&pair.api, "/v1/events", None);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let msrp_port = listener.local_addr().unwrap().port().to_string();
    let sip_port = free_port();
    let callfile = pair.dir.join("calls.txt");
    let mut args = keys(&[
        ("msrpport", &msrp_port),
        ("callfile", &callfile.to_string_lossy()),
    ]);
    args.extend(["-p".to_string(), sip_port.to_string()]);
    let mut sipp = Sipp::start(&pair.dir, "uas_msrp.xml", 1, &args);
    wait_udp_bound(sip_port, &mut sipp);

    let peer = std::thread::spawn(move || {
        let mut peer = Peer::on(accept_within(&listener, Duration::from_secs(20)));
        let bind = peer.read();
        peer.answer_200(&bind);
        let message = peer.read();
        peer.answer_200(&message);
        (peer, bind, message)
    });

    let created = pair
        .api
        .post(
            "/v1/sessions",
            &json!({"to": format!("sip:sipp@127.0.0.1:{sip_port}"), "tag": "uas"}),
        )
        .expect(201)
        .json();
    assert_eq!(created["state"], "calling", "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    events.expect("calling", &id);
    let up = events.expect("connected", &id).json();
    let view = pair.api.get(&format!("/v1/sessions/{id}")).expect(200).json();
    assert_eq!(view["state"], "connected", "{view}");
    assert_eq!(
        view["msrp"][0]["setup"], "active",
        "sipp answered passive: {view}"
    );
    assert!(view["call_id"].is_string(), "{view}");
    let sent = pair
        .api
        .post(
            &format!("/v1/sessions/{id}/messages"),
            &json!({"text": "hello sipp uas"}),
        )
        .expect(202)
        .json();
    assert_eq!(events.expect("delivered", &id).json()["message"], sent["id"]);
    let (_peer, bind, message) = peer.join().expect("the MSRP peer saw the bind and the message");
    let line = wait_lines(&callfile, 1, WAIT, &mut sipp).remove(0);
    let offered = value(&line, "offered").to_string();
    let answered = value(&line, "answered").to_string();
    assert_eq!(up["local_path"], json!([offered]), "{up}");
    assert_eq!(up["remote_path"], json!([answered]), "{up}");
    assert_eq!(bind.method, "SEND", "{bind:?}");
    assert_eq!(bind.header("To-Path"), answered);
    assert_eq!(bind.header("From-Path"), offered);
    assert_eq!(message.body, b"hello sipp uas");

    let ended = pair.api.delete(&format!("/v1/sessions/{id}")).expect(200).json();
    assert_eq!(ended["state"], "closed", "{ended}");
    assert_eq!(events.expect("hangup", &id).json()["by"], "local");
    // sipp's scenario ends only after it received our BYE.
    sipp.wait_success();
    eprintln!("sipp uas: {:?}", started.elapsed());
}
