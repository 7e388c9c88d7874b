//! Two user agents in one thread, joined by an in-memory network with a
//! simulated clock (quinn-proto's `Pair`): the RFC 3261 call flows, lost
//! messages and timers, with no socket and no sleep.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_signaling::sip::{
    Body, CallId, Flow, InviteRequest, Message, Transport, UaConfig, UaEvent, Uri, UserAgent,
};

const OFFER: &[u8] = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=message 2855 TCP/MSRP *\r\na=path:msrp://10.0.0.1:2855/a1;tcp\r\na=accept-types:text/plain\r\na=setup:actpass\r\n";
const ANSWER: &[u8] = b"v=0\r\no=- 2 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=message 2855 TCP/MSRP *\r\na=path:msrp://10.0.0.2:2855/b1;tcp\r\na=accept-types:text/plain\r\na=setup:passive\r\n";

/// Decides whether a message is lost: (sender, message).
type Loss = Box<dyn FnMut(char, &[u8]) -> bool>;

struct Pair {
    now: Instant,
    a: UserAgent,
    b: UserAgent,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
    transport: Transport,
    /// Every message put on the wire, in order, with its sender.
    wire: Vec<(char, Bytes)>,
    drop: Loss,
    a_events: Vec<UaEvent>,
    b_events: Vec<UaEvent>,
}

impl Pair {
    fn new(transport: Transport) -> Pair {
        let a_addr: SocketAddr = "10.0.0.1:5060".parse().unwrap();
        let b_addr: SocketAddr = "10.0.0.2:5060".parse().unwrap();
        let config = |host: &str| UaConfig {
            host: host.into(),
            ..UaConfig::default()
        };
        Pair {
            now: Instant::now(),
            a: UserAgent::new(config("10.0.0.1")),
            b: UserAgent::new(config("10.0.0.2")),
            a_addr,
            b_addr,
            transport,
            wire: Vec::new(),
            drop: Box::new(|_, _| false),
            a_events: Vec::new(),
            b_events: Vec::new(),
        }
    }

    /// Delivers everything in flight, then collects events.
    fn run(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                moved = true;
                self.deliver('a', t.bytes);
            }
            while let Some(t) = self.b.poll_transmit() {
                moved = true;
                self.deliver('b', t.bytes);
            }
            if !moved {
                break;
            }
        }
        while let Some(e) = self.a.poll_event() {
            self.a_events.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.b_events.push(e);
        }
    }

    fn deliver(&mut self, from: char, bytes: Bytes) {
        self.wire.push((from, bytes.clone()));
        if (self.drop)(from, &bytes) {
            return;
        }
        let (to, source) = match from {
            'a' => (&mut self.b, self.a_addr),
            _ => (&mut self.a, self.b_addr),
        };
        match self.transport {
            Transport::Udp => to.handle_datagram(self.now, source, bytes),
            transport => to.handle_stream_bytes_on(self.now, transport, 1, source, &bytes),
        }
    }

    /// Moves the clock to each timer in turn until `until`.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        loop {
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                    self.run();
                }
                _ => break,
            }
        }
        self.now = until;
        self.run();
    }

    fn invite(&mut self, offer: Option<&'static [u8]>) -> CallId {
        let flow = Flow {
            transport: self.transport,
            remote: self.b_addr,
            conn: None,
        };
        let call = self
            .a
            .invite(
                self.now,
                InviteRequest {
                    to: Uri::parse("sip:bob@10.0.0.2").unwrap(),
                    from: None,
                    flow,
                    offer: offer.map(|o| Body::sdp(Bytes::from_static(o))),
                    headers: Vec::new(),
                },
            )
            .unwrap();
        self.run();
        call
    }

    fn incoming(&mut self) -> CallId {
        let call = self.b_events.iter().find_map(|e| match e {
            UaEvent::IncomingCall { call, .. } => Some(*call),
            _ => None,
        });
        call.expect("B was told of the call")
    }

    fn sent(&self, from: char, start: &str) -> usize {
        self.wire
            .iter()
            .filter(|(f, b)| *f == from && b.starts_with(start.as_bytes()))
            .count()
    }
}

fn established(events: &[UaEvent]) -> Option<Option<Body>> {
    events.iter().find_map(|e| match e {
        UaEvent::Established { answer, .. } => Some(answer.clone()),
        _ => None,
    })
}

#[test]
fn a_call_is_set_up_acknowledged_and_ended_by_bye() {
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut pair = Pair::new(transport);
        let call_a = pair.invite(Some(OFFER));
        let call_b = pair.incoming();
        assert!(pair
            .b
            .accept(pair.now, call_b, Body::sdp(Bytes::from_static(ANSWER))));
        pair.run();
        let answer = established(&pair.a_events).expect("A established");
        assert_eq!(answer.unwrap().bytes, Bytes::from_static(ANSWER));
        assert!(established(&pair.b_events).is_some(), "the ACK reached B");
        assert_eq!(pair.sent('a', "ACK"), 1);

        pair.a.hangup(pair.now, call_a, "done");
        pair.run();
        let ended = pair.b_events.iter().find_map(|e| match e {
            UaEvent::Ended { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        let reason = ended.expect("B saw the BYE");
        assert!(reason.by_peer);
        assert!(reason.text.contains("done"), "{}", reason.text);
        assert_eq!(pair.sent('b', "SIP/2.0 200 OK"), 2, "200 to INVITE and to BYE");
        // Every transaction and call is gone once the timers ran.
        pair.advance(Duration::from_secs(40));
        assert_eq!(pair.a.stats().calls, 0);
        assert_eq!(pair.b.stats().calls, 0);
        assert_eq!(pair.a.endpoint().stats().client_transactions, 0);
        assert_eq!(pair.b.endpoint().stats().server_transactions, 0);
    }
}

#[test]
fn a_lost_200_is_retransmitted_by_the_uas_core_until_the_ack() {
    let mut pair = Pair::new(Transport::Udp);
    let mut dropped = false;
    pair.drop = Box::new(move |from, bytes| {
        if from == 'b' && bytes.starts_with(b"SIP/2.0 200") && !dropped {
            dropped = true;
            return true;
        }
        false
    });
    pair.invite(Some(OFFER));
    let call_b = pair.incoming();
    pair.b
        .accept(pair.now, call_b, Body::sdp(Bytes::from_static(ANSWER)));
    pair.run();
    assert!(established(&pair.a_events).is_none());
    pair.advance(Duration::from_millis(500));
    assert!(established(&pair.a_events).is_some(), "the 2xx came again at T1");
    assert!(established(&pair.b_events).is_some());
    let retransmissions = pair.sent('b', "SIP/2.0 200");
    pair.advance(Duration::from_secs(10));
    assert_eq!(
        pair.sent('b', "SIP/2.0 200"),
        retransmissions,
        "the ACK stopped them"
    );
}

#[test]
fn without_any_ack_the_uas_gives_up_after_64_t1_and_sends_bye() {
    let mut pair = Pair::new(Transport::Udp);
    pair.drop = Box::new(|from, bytes| from == 'a' && bytes.starts_with(b"ACK"));
    pair.invite(Some(OFFER));
    let call_b = pair.incoming();
    pair.b
        .accept(pair.now, call_b, Body::sdp(Bytes::from_static(ANSWER)));
    pair.run();
    pair.advance(Duration::from_secs(31));
    assert_eq!(pair.sent('b', "BYE"), 0);
    // T1 doubling to T2: 0.5 1 2 4 4 4 ... within 32 s.
    assert!(pair.sent('b', "SIP/2.0 200") >= 8);
    pair.advance(Duration::from_secs(2));
    assert_eq!(pair.sent('b', "BYE"), 1);
    assert_eq!(pair.b.stats().acks_missing, 1);
}

#[test]
fn an_unanswered_invite_is_retransmitted_and_absorbed_and_gets_100_trying() {
    let mut pair = Pair::new(Transport::Udp);
    let mut first = true;
    pair.drop = Box::new(move |from, bytes| {
        let lose = from == 'a' && bytes.starts_with(b"INVITE") && first;
        if lose {
            first = false;
        }
        lose
    });
    pair.invite(Some(OFFER));
    assert!(pair.b_events.is_empty());
    pair.advance(Duration::from_millis(500));
    assert_eq!(pair.sent('a', "INVITE"), 2, "timer A");
    let _ = pair.incoming();
    pair.advance(Duration::from_millis(200));
    assert_eq!(
        pair.sent('b', "SIP/2.0 100 Trying"),
        1,
        "B's TU is slow: 100 after 200 ms"
    );
    pair.advance(Duration::from_secs(5));
    assert_eq!(pair.sent('a', "INVITE"), 2, "a provisional stops timer A");
    let incoming = pair
        .b_events
        .iter()
        .filter(|e| matches!(e, UaEvent::IncomingCall { .. }))
        .count();
    assert_eq!(incoming, 1, "the retransmission was absorbed");
}

#[test]
fn cancel_ends_a_ringing_call_with_487_on_both_sides() {
    let mut pair = Pair::new(Transport::Udp);
    let call_a = pair.invite(Some(OFFER));
    let _ = pair.incoming();
    pair.a.hangup(pair.now, call_a, "changed my mind");
    pair.run();
    assert_eq!(
        pair.sent('a', "CANCEL"),
        0,
        "no CANCEL before a provisional (RFC 3261 9.1)"
    );
    pair.advance(Duration::from_millis(200));
    assert_eq!(pair.sent('a', "CANCEL"), 1);
    assert!(pair
        .b_events
        .iter()
        .any(|e| matches!(e, UaEvent::Cancelled { .. })));
    let failed = pair.a_events.iter().find_map(|e| match e {
        UaEvent::Failed { status, .. } => Some(*status),
        _ => None,
    });
    assert_eq!(failed, Some(487));
    assert_eq!(
        pair.sent('a', "ACK"),
        1,
        "the 487 is acknowledged by the transaction"
    );
}

#[test]
fn a_rejected_call_fails_with_the_status_and_its_ack_is_absorbed() {
    let mut pair = Pair::new(Transport::Udp);
    pair.invite(Some(OFFER));
    let call_b = pair.incoming();
    pair.b.reject(
        pair.now,
        call_b,
        488,
        "Not Acceptable Here",
        &[("Warning", "399 b \"no\"")],
    );
    pair.run();
    let failed = pair.a_events.iter().find_map(|e| match e {
        UaEvent::Failed { status, .. } => Some(*status),
        _ => None,
    });
    assert_eq!(failed, Some(488));
    assert_eq!(pair.sent('a', "ACK"), 1);
    assert!(
        established(&pair.b_events).is_none(),
        "a failure's ACK is not the TU's"
    );
    pair.advance(Duration::from_secs(40));
    assert_eq!(
        pair.sent('b', "SIP/2.0 488"),
        1,
        "no retransmission after the ACK"
    );
}

#[test]
fn an_invite_nobody_answers_fails_408_after_timer_b() {
    let mut pair = Pair::new(Transport::Udp);
    pair.drop = Box::new(|from, _| from == 'a');
    pair.invite(Some(OFFER));
    pair.advance(Duration::from_secs(31));
    assert!(pair.a_events.is_empty());
    pair.advance(Duration::from_secs(2));
    let failed = pair.a_events.iter().find_map(|e| match e {
        UaEvent::Failed { status, .. } => Some(*status),
        _ => None,
    });
    assert_eq!(failed, Some(408));
    assert_eq!(pair.sent('a', "INVITE"), 7);
}

#[test]
fn an_offerless_invite_gets_our_offer_in_the_200_and_the_answer_from_the_ack() {
    let mut pair = Pair::new(Transport::Tcp);
    pair.invite(None);
    let call_b = pair.incoming();
    pair.b
        .accept(pair.now, call_b, Body::sdp(Bytes::from_static(OFFER)));
    pair.run();
    assert!(established(&pair.a_events).is_some());
    // A's ACK carries no body here (the library's UAC answers nothing
    // itself), so B's answer is empty: the application decides.
    assert_eq!(established(&pair.b_events), Some(None));
}

fn request(text: &str) -> Bytes {
    Bytes::from(text.replace('\n', "\r\n"))
}

fn answer_to(pair: &mut Pair, raw: Bytes) -> Message {
    let before = pair.wire.len();
    pair.b.handle_datagram(pair.now, pair.a_addr, raw);
    pair.drop = Box::new(|_, _| true);
    pair.run();
    let (_, bytes) = pair.wire[before..]
        .iter()
        .find(|(f, _)| *f == 'b')
        .expect("B answered")
        .clone();
    Message::parse(bytes, &Default::default()).expect("our response parses")
}

#[test]
fn options_unknown_methods_and_message_get_their_rfc_answers() {
    let mut pair = Pair::new(Transport::Udp);
    let options = request("OPTIONS sip:10.0.0.2 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-o1\nMax-Forwards: 70\nFrom: <sip:a@10.0.0.1>;tag=1\nTo: <sip:10.0.0.2>\nCall-ID: o1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    let response = answer_to(&mut pair, options);
    assert_eq!(response.status(), Some(200));
    assert!(response.header("Allow").unwrap().contains("INVITE"));
    assert!(response.header("Accept").unwrap().contains("application/sdp"));
    assert_eq!(
        response.header("Supported"),
        Some(""),
        "RFC 3261 11.2: present, and we require no extension"
    );
    assert!(response.to().tag().is_some());

    let mut pair = Pair::new(Transport::Udp);
    let foo = request("FOO sip:10.0.0.2 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-f1\nMax-Forwards: 70\nFrom: <sip:a@10.0.0.1>;tag=1\nTo: <sip:10.0.0.2>\nCall-ID: f1\nCSeq: 1 FOO\nContent-Length: 0\n\n");
    let response = answer_to(&mut pair, foo);
    assert_eq!(response.status(), Some(501));

    let mut pair = Pair::new(Transport::Udp);
    let message = request("MESSAGE sip:10.0.0.2 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-m1\nMax-Forwards: 70\nFrom: <sip:a@10.0.0.1>;tag=1\nTo: <sip:10.0.0.2>\nCall-ID: m1\nCSeq: 1 MESSAGE\nContent-Type: text/plain\nContent-Length: 2\n\nhi");
    let response = answer_to(&mut pair, message);
    // RFC 3428 7: taken (an IMDN after the BYE must not be refused).
    assert_eq!(response.status(), Some(200));

    let mut pair = Pair::new(Transport::Udp);
    let bye = request("BYE sip:10.0.0.2 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-b1\nMax-Forwards: 70\nFrom: <sip:a@10.0.0.1>;tag=1\nTo: <sip:10.0.0.2>;tag=nope\nCall-ID: b1\nCSeq: 2 BYE\nContent-Length: 0\n\n");
    let response = answer_to(&mut pair, bye);
    assert_eq!(response.status(), Some(481));

    let mut pair = Pair::new(Transport::Udp);
    let require = request("OPTIONS sip:10.0.0.2 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-r1\nMax-Forwards: 70\nFrom: <sip:a@10.0.0.1>;tag=1\nTo: <sip:10.0.0.2>\nCall-ID: r1\nCSeq: 1 OPTIONS\nRequire: foo, 100rel\nContent-Length: 0\n\n");
    let response = answer_to(&mut pair, require);
    assert_eq!(response.status(), Some(420));
    assert_eq!(response.header("Unsupported"), Some("foo, 100rel"));
}

#[test]
fn a_response_goes_to_the_via_port_or_with_rport_to_the_source() {
    let mut pair = Pair::new(Transport::Udp);
    let from_ephemeral: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let options = request("OPTIONS sip:10.0.0.2 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-p1\nMax-Forwards: 70\nFrom: <sip:a@10.0.0.1>;tag=1\nTo: <sip:10.0.0.2>\nCall-ID: p1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    pair.b.handle_datagram(pair.now, from_ephemeral, options);
    let t = pair.b.poll_transmit().unwrap();
    assert_eq!(t.flow.remote, "10.0.0.1:5070".parse().unwrap(), "RFC 3261 18.2.2");

    let options = request("OPTIONS sip:10.0.0.2 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bK-p2\nMax-Forwards: 70\nFrom: <sip:a@10.0.0.1>;tag=1\nTo: <sip:10.0.0.2>\nCall-ID: p2\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    pair.b.handle_datagram(pair.now, from_ephemeral, options);
    let t = pair.b.poll_transmit().unwrap();
    assert_eq!(t.flow.remote, from_ephemeral, "RFC 3581 4");
    let response = Message::parse(t.bytes, &Default::default()).unwrap();
    let via = response.top_via().unwrap();
    assert_eq!(via.rport(), Some(Some(40000)));
    assert_eq!(via.received(), Some("10.0.0.1"));
}

#[test]
fn a_bye_with_an_older_cseq_is_refused_500() {
    let mut pair = Pair::new(Transport::Udp);
    pair.invite(Some(OFFER));
    let call_b = pair.incoming();
    pair.b
        .accept(pair.now, call_b, Body::sdp(Bytes::from_static(ANSWER)));
    pair.run();
    // Find the dialog's tags from the 200 B sent.
    let (_, ok) = pair
        .wire
        .iter()
        .find(|(f, b)| *f == 'b' && b.starts_with(b"SIP/2.0 200"))
        .unwrap()
        .clone();
    let ok = Message::parse(ok, &Default::default()).unwrap();
    let bye = format!(
        "BYE sip:10.0.0.2 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-old\nMax-Forwards: 70\nFrom: {}\nTo: {}\nCall-ID: {}\nCSeq: 0 BYE\nContent-Length: 0\n\n",
        ok.from(),
        ok.to(),
        ok.call_id()
    );
    let response = answer_to(&mut pair, request(&bye));
    assert_eq!(response.status(), Some(500));
}

#[test]
fn a_cancel_after_the_200_is_answered_200_and_changes_nothing() {
    let mut pair = Pair::new(Transport::Udp);
    pair.invite(Some(OFFER));
    let call_b = pair.incoming();
    pair.b
        .accept(pair.now, call_b, Body::sdp(Bytes::from_static(ANSWER)));
    pair.run();
    let (_, invite) = pair
        .wire
        .iter()
        .find(|(f, b)| *f == 'a' && b.starts_with(b"INVITE"))
        .unwrap()
        .clone();
    let invite = Message::parse(invite, &Default::default()).unwrap();
    let cancel = format!(
        "CANCEL {} SIP/2.0\nVia: {}\nMax-Forwards: 70\nFrom: {}\nTo: {}\nCall-ID: {}\nCSeq: 1 CANCEL\nContent-Length: 0\n\n",
        invite.request_uri().unwrap(),
        invite.top_via().unwrap(),
        invite.from(),
        invite.to(),
        invite.call_id()
    );
    let response = answer_to(&mut pair, request(&cancel));
    assert_eq!(
        response.status(),
        Some(200),
        "RFC 3261 9.2: it matched a transaction"
    );
    assert!(!pair
        .b_events
        .iter()
        .any(|e| matches!(e, UaEvent::Cancelled { .. })));
    assert_eq!(pair.b.stats().calls, 1, "the call stays");
}
