//! The per-source bounds of a real `msrp-signal serve` (feeding a real
//! `msrpd`), on the wire: INVITEs written by hand over UDP from one
//! loopback address, their responses read back.
//!
//! - `--dialogs-per-source-max`: a source holding its dialogs gets 503 with
//!   Retry-After and a Warning naming the bound; a BYE frees one.
//! - `--invite-rate-per-source`: a burst beyond the bucket gets 503.
//! - `--trusted-source`: the same address, named, is exempt from both.

mod support;
use support::processes;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use processes::{test_dir, MsrpSignal, Msrpd};

/// A UDP caller on 127.0.0.1, numbering its calls.
struct Caller {
    socket: UdpSocket,
    target: SocketAddr,
    next: u32,
    /// Final INVITE responses read while waiting for another call's.
    finals: HashMap<String, Final>,
}

/// A final response as read off the wire.
struct Final {
    status: u16,
    text: String,
}

impl Caller {
    fn new(target: SocketAddr) -> Caller {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        Caller {
            socket,
            target,
            next: 1,
            finals: HashMap::new(),
        }
    }

    /// Sends a new INVITE with an MSRP offer; returns its Call-ID.
    fn invite(&mut self) -> String {
        let n = self.next;
        self.next += 1;
        let port = self.socket.local_addr().unwrap().port();
        let call_id = format!("limits-{n}-{port}@127.0.0.1");
        let sdp = format!(
            "v=0\r\no=- {n} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=message 9 TCP/MSRP *\r\na=path:msrp://127.0.0.1:9/caller{n};tcp\r\n\
             a=accept-types:text/plain\r\na=setup:active\r\n"
        );
        let request = format!(
            "INVITE sip:limits@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-inv-{n}-{port};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:caller@127.0.0.1>;tag=from{n}\r\n\
             To: <sip:limits@{target}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:caller@127.0.0.1:{port}>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len(),
            target = self.target,
        );
        self.socket.send_to(request.as_bytes(), self.target).unwrap();
        call_id
    }

    /// The final response to `call_id`'s INVITE (provisionals skipped);
    /// the finals of other calls read meanwhile are kept for their turn.
    fn final_response(&mut self, call_id: &str) -> Final {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(done) = self.finals.remove(call_id) {
                return done;
            }
            let Some(text) = self.receive() else { continue };
            let status: u16 = text
                .strip_prefix("SIP/2.0 ")
                .and_then(|rest| rest.get(..3))
                .and_then(|code| code.parse().ok())
                .unwrap_or(0);
            let invite = header(&text, "CSeq").is_some_and(|c| c.ends_with("INVITE"));
            if status >= 200 && invite {
                if let Some(id) = header(&text, "Call-ID") {
                    let id = id.to_string();
                    self.finals.entry(id).or_insert(Final { status, text });
                }
            }
        }
        panic!("no final response to {call_id} within 20 s");
    }

    fn receive(&self) -> Option<String> {
        let mut buffer = vec![0u8; 65_536];
        let n = self.socket.recv(&mut buffer).ok()?;
        Some(String::from_utf8_lossy(&buffer[..n]).into_owned())
    }

    /// Ends an answered call with a BYE (its ACK first) and waits for the
    /// BYE's 200.
    fn hang_up(&self, call_id: &str, answer: &Final) {
        let port = self.socket.local_addr().unwrap().port();
        let to = header(&answer.text, "To").expect("a To header");
        let from = header(&answer.text, "From").expect("a From header");
        let contact = header(&answer.text, "Contact").expect("a 200 has a Contact");
        let uri = contact.trim_start_matches('<').split('>').next().unwrap();
        let token: String = call_id.chars().filter(char::is_ascii_alphanumeric).collect();
        for (method, cseq, branch) in [("ACK", "1 ACK", "ack"), ("BYE", "2 BYE", "bye")] {
            let request = format!(
                "{method} {uri} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{branch}-{token}\r\n\
                 Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
                 CSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
            );
            self.socket.send_to(request.as_bytes(), self.target).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let Some(text) = self.receive() else { continue };
            if header(&text, "CSeq") == Some("2 BYE") {
                assert!(text.starts_with("SIP/2.0 200"), "the BYE of {call_id}: {text}");
                return;
            }
        }
        panic!("the BYE of {call_id} got no 200 within 20 s");
    }
}

/// A header's value, by its full name, case-insensitively.
fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn start(name: &str, args: &[&str]) -> (Msrpd, MsrpSignal, Caller) {
    let dir = test_dir(name);
    let engine = Msrpd::start(&dir);
    let signal = MsrpSignal::start_with(&dir, &engine, args);
    let caller = Caller::new(signal.udp);
    (engine, signal, caller)
}

#[test]
fn a_source_at_its_dialogs_max_gets_503_until_a_bye_frees_one() {
    let (_engine, signal, mut caller) = start("dialogs", &["--dialogs-per-source-max", "2"]);
    let first = caller.invite();
    let answered = caller.final_response(&first);
    let second = caller.invite();
    assert_eq!(caller.final_response(&second).status, 200, "{}", signal.log());
    assert_eq!(answered.status, 200, "{}", answered.text);

    let third = caller.invite();
    let refused = caller.final_response(&third);
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert!(header(&refused.text, "Retry-After").is_some(), "{}", refused.text);
    let warning = header(&refused.text, "Warning").unwrap_or_default();
    assert!(warning.contains("dialogs-per-source-max"), "{}", refused.text);

    caller.hang_up(&first, &answered);
    let fourth = caller.invite();
    let after = caller.final_response(&fourth);
    assert_eq!(after.status, 200, "a BYE frees a dialog: {}", after.text);
}

#[test]
fn a_burst_beyond_the_invite_rate_gets_503() {
    // One INVITE a second in bursts of two: six sent at once cannot all
    // pass unless four seconds went by between them.
    let (_engine, signal, mut caller) = start("invite-rate", &["--invite-rate-per-source", "1"]);
    let calls: Vec<String> = (0..6).map(|_| caller.invite()).collect();
    let statuses: Vec<u16> = calls.iter().map(|c| caller.final_response(c).status).collect();
    assert!(statuses.contains(&200), "{statuses:?}\n{}", signal.log());
    assert!(statuses.contains(&503), "{statuses:?}\n{}", signal.log());
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
}

#[test]
fn a_trusted_source_is_exempt_from_the_per_source_bounds() {
    let (_engine, signal, mut caller) = start(
        "trusted",
        &[
            "--dialogs-per-source-max",
            "1",
            "--invite-rate-per-source",
            "1",
            "--trusted-source",
            "127.0.0.1",
        ],
    );
    let calls: Vec<String> = (0..4).map(|_| caller.invite()).collect();
    for call in &calls {
        let answer = caller.final_response(call);
        assert_eq!(answer.status, 200, "{}\n{}", answer.text, signal.log());
    }
}
