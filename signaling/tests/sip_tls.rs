//! SIP over TLS, `sips:` and secure MSRP end to end: two nodes, each a
//! real `msrpd --tls-listen` and `msrp-signal --sip tls:`, certificates
//! made here with rcgen (a test CA, leaves for 127.0.0.1). Node A calls
//! `sips:b@127.0.0.1:PORT` through REST (1PCC); the INVITE goes over TLS,
//! the SDP negotiates `TCP/TLS/MSRP` with `a=fingerprint` both ways, and
//! texts cross over MSRPS. A server whose certificate the CA did not sign
//! fails the call with the reason; a node whose msrpd has no TLS refuses
//! a TCP/TLS/MSRP offer 488; a sips: INVITE in the clear gets 416.
//!
//! `cargo test -p msrp-signaling --test sip_tls` (no sipp needed).

mod support;
use support::{common, processes, sse, stack};

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use common::{id_of, metric};
use processes::{free_port, test_dir};
use sse::Sse;
use stack::Pair;

const WAIT: Duration = Duration::from_secs(20);

/// A test CA and the leaves it signs, as PEM files.
struct Pki {
    dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

struct Leaf {
    cert: String,
    key: String,
}

fn write_leaf(dir: &Path, name: &str, cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> Leaf {
    let (cert_path, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    Leaf {
        cert: cert_path.display().to_string(),
        key: key_path.display().to_string(),
    }
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = test_dir(&format!("siptls-pki-{name}"));
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("msrp-signal test CA {name}"));
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca, ca_key }
    }

    fn ca_file(&self) -> String {
        self.dir.join("ca.pem").display().to_string()
    }

    /// For 127.0.0.1 (an iPAddress subjectAltName: RFC 5922 7.1 matches
    /// the URI's host) and localhost, signed by the CA.
    fn leaf(&self, name: &str) -> Leaf {
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        write_leaf(&self.dir, name, &cert, &key)
    }

    /// For 127.0.0.1, signed by no one the others trust.
    fn self_signed(&self, name: &str) -> Leaf {
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        write_leaf(&self.dir, name, &cert, &key)
    }
}

/// A node: msrpd (with MSRP over TLS when `engine_tls`) and msrp-signal
/// with a SIP TLS listener on a port of ours, its identity `sip_leaf`.
struct Node {
    pair: Pair,
    tls_port: u16,
}

impl Node {
    /// Places a 1PCC call to `to` over REST and returns its `hangup`
    /// event (for the calls a test expects to fail).
    fn call_until_hangup(&self, to: &str) -> serde_json::Value {
        let mut events = Sse::open(&self.pair.api, "/v1/events", None);
        let created = self
            .pair
            .api
            .post("/v1/sessions", &json!({"to": to}))
            .expect(201)
            .json();
        let id = id_of(&created);
        events
            .wait("hangup", WAIT, |e| e.event == "hangup" && e.session() == id)
            .json()
    }

    fn start(name: &str, pki: &Pki, engine_tls: bool, sip_leaf: &Leaf) -> Node {
        let engine_leaf = pki.leaf(&format!("{name}-msrpd"));
        let engine_args: Vec<&str> = match engine_tls {
            true => vec![
                "--tls-listen",
                "127.0.0.1:0",
                "--tls-cert",
                &engine_leaf.cert,
                "--tls-key",
                &engine_leaf.key,
            ],
            false => Vec::new(),
        };
        let tls_port = free_port();
        let listen = format!("tls:127.0.0.1:{tls_port}");
        let ca = pki.ca_file();
        let args = [
            "--sip",
            &listen,
            "--sip-cert",
            &sip_leaf.cert,
            "--sip-key",
            &sip_leaf.key,
            "--sip-ca",
            &ca,
        ];
        let pair = Pair::start_with(name, &engine_args, &args);
        Node { pair, tls_port }
    }

    fn sips_uri(&self, user: &str) -> String {
        format!("sips:{user}@127.0.0.1:{}", self.tls_port)
    }

    fn metric(&self, name: &str) -> f64 {
        let text = self.pair.api.get("/metrics").expect(200).text();
        metric(&text, name, &[]).unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
    }

    /// The engine's completed TLS handshakes, all shards.
    fn engine_tls_handshakes(&self) -> u64 {
        let stats = self.pair.engine().client().stats().unwrap();
        stats.shards.iter().map(|s| s.tls_handshakes).sum()
    }
}

#[test]
fn a_sips_call_runs_sip_over_tls_and_msrp_over_tls_with_fingerprints() {
    let pki = Pki::new("call");
    let a = Node::start("siptls-a", &pki, true, &pki.leaf("a-sip"));
    let b = Node::start("siptls-b", &pki, true, &pki.leaf("b-sip"));
    let mut a_events = Sse::open(&a.pair.api, "/v1/events", None);
    let mut b_events = Sse::open(&b.pair.api, "/v1/events", None);

    let created = a
        .pair
        .api
        .post("/v1/sessions", &json!({"to": b.sips_uri("b"), "tag": "tls"}))
        .expect(201)
        .json();
    let a_id = id_of(&created);
    let a_up = a_events.wait("connected", WAIT, |e| {
        e.event == "connected" && e.session() == a_id
    });
    let b_up = b_events.wait("connected", WAIT, |e| e.event == "connected");
    let b_id = b_up.session();
    let (a_up, b_up) = (a_up.json(), b_up.json());
    for (who, up) in [("A", &a_up), ("B", &b_up)] {
        let local = up["local_path"].to_string();
        let remote = up["remote_path"].to_string();
        assert!(local.contains("msrps://"), "{who}'s own path is msrps: {up}");
        assert!(remote.contains("msrps://"), "{who}'s peer path is msrps: {up}");
    }

    // The SDP both ways: TCP/TLS/MSRP with a sha-256 fingerprint (RFC 4572 5).
    // (B's session keeps both: A's offer as its remote SDP, its answer.)
    let b_view = b.pair.api.get(&format!("/v1/sessions/{b_id}")).expect(200).json();
    assert!(
        b_view["to"].as_str().unwrap_or_default().contains("sips:"),
        "{b_view}"
    );
    for (who, sdp) in [
        ("A's offer", b_view["remote_sdp"].as_str()),
        ("B's answer", b_view["local_sdp"].as_str()),
    ] {
        let sdp = sdp.unwrap_or_else(|| panic!("{who} missing: {b_view}"));
        assert!(
            sdp.contains("m=message ") && sdp.contains(" TCP/TLS/MSRP *"),
            "{who}:\n{sdp}"
        );
        assert!(sdp.contains("a=fingerprint:sha-256 "), "{who}:\n{sdp}");
        assert!(!sdp.contains(" TCP/MSRP "), "{who}:\n{sdp}");
    }

    // Texts both ways over MSRPS.
    let sent = a
        .pair
        .api
        .post(
            &format!("/v1/sessions/{a_id}/messages"),
            &json!({"text": "hello over TLS", "report": "both"}),
        )
        .expect(202)
        .json();
    let got = b_events.expect("message", &b_id).json();
    assert_eq!(got["text"], "hello over TLS", "{got}");
    let delivered = a_events.expect("delivered", &a_id).json();
    assert_eq!(delivered["message"], sent["id"], "{delivered}");
    b.pair
        .api
        .post(
            &format!("/v1/sessions/{b_id}/messages"),
            &json!({"text": "and back", "report": "both"}),
        )
        .expect(202);
    let got = a_events.expect("message", &a_id).json();
    assert_eq!(got["text"], "and back", "{got}");
    b_events.expect("delivered", &b_id);

    // The INVITE went over TLS: A made a handshake, B accepted one.
    assert!(
        a.metric("msrp_signal_sip_tls_handshakes_total") >= 1.0,
        "{}",
        a.pair.logs()
    );
    assert!(
        b.metric("msrp_signal_sip_tls_handshakes_total") >= 1.0,
        "{}",
        b.pair.logs()
    );
    assert_eq!(a.metric("msrp_signal_sip_tls_handshake_failures_total"), 0.0);
    // And MSRP did: one engine connected with TLS, the other accepted.
    assert!(a.engine_tls_handshakes() >= 1, "{}", a.pair.logs());
    assert!(b.engine_tls_handshakes() >= 1, "{}", b.pair.logs());

    a.pair.api.delete(&format!("/v1/sessions/{a_id}")).expect(200);
    b_events.wait("hangup", WAIT, |e| e.event == "hangup" && e.session() == b_id);
}

#[test]
fn a_server_certificate_our_ca_did_not_sign_fails_the_call_with_the_reason() {
    let pki = Pki::new("rogue");
    let a = Node::start("siptls-ra", &pki, true, &pki.leaf("ra-sip"));
    let rogue = Node::start("siptls-rogue", &pki, true, &pki.self_signed("rogue-sip"));
    let ended = a.call_until_hangup(&rogue.sips_uri("x"));
    let reason = ended["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("TLS") && reason.to_ascii_lowercase().contains("certificate"),
        "the reason names the certificate: {ended}"
    );
    assert_eq!(
        ended["status"], 503,
        "RFC 3261 8.1.3.1: a transport failure is a 503: {ended}"
    );
    assert!(a.metric("msrp_signal_sip_tls_handshake_failures_total") >= 1.0);
    assert_eq!(rogue.pair.engine().sessions(), 0, "no call reached the rogue");
}

#[test]
fn a_tls_msrp_offer_to_a_node_without_engine_tls_gets_488_with_the_reason() {
    let pki = Pki::new("488");
    let a = Node::start("siptls-488a", &pki, true, &pki.leaf("488a-sip"));
    let plain = Node::start("siptls-488b", &pki, false, &pki.leaf("488b-sip"));
    let ended = a.call_until_hangup(&plain.sips_uri("b"));
    assert_eq!(ended["status"], 488, "{ended}");
    let log = plain.pair.signal.log();
    assert!(
        log.contains("TCP/TLS/MSRP needs MSRP over TLS, and the msrpd of this server has no --tls-listen"),
        "the node says why it refused:\n{log}"
    );
    // Its SIP over TLS worked: the refusal came back on the TLS dialog.
    assert!(plain.metric("msrp_signal_sip_tls_handshakes_total") >= 1.0);
}

#[test]
fn a_sips_invite_in_the_clear_gets_416() {
    let pki = Pki::new("416");
    let node = Node::start("siptls-416", &pki, true, &pki.leaf("416-sip"));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = socket.local_addr().unwrap().port();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=message 7394 TCP/TLS/MSRP *\r\na=accept-types:text/plain\r\n\
               a=path:msrps://127.0.0.1:7394/abc;tcp\r\n";
    let invite = format!(
        "INVITE sips:b@127.0.0.1:{tls} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-416-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:a@127.0.0.1:{port}>;tag=a416\r\n\
         To: <sips:b@127.0.0.1:{tls}>\r\n\
         Call-ID: sips-in-the-clear@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:a@127.0.0.1:{port}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {len}\r\n\r\n{sdp}",
        tls = node.tls_port,
        len = sdp.len()
    );
    socket.send_to(invite.as_bytes(), node.pair.signal.udp).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let (len, _) = socket.recv_from(&mut buf).expect("a response to the INVITE");
        let text = String::from_utf8_lossy(&buf[..len]).into_owned();
        if text.starts_with("SIP/2.0 100") {
            continue;
        }
        assert!(text.starts_with("SIP/2.0 416 "), "{text}");
        assert!(text.contains("must arrive over TLS"), "{text}");
        break;
    }
    assert_eq!(node.pair.engine().sessions(), 0);
}
