//! One connection's behaviour through its public interface, against a real
//! second connection or a peer written with the project's own codec:
//! binding, From-Path policy, timeouts, REPORT handling, backpressure,
//! deferred commits and connection loss.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use msrp_engine::proto::{
    write_response, Content, Event as WireEvent, FrameHead, Method, Parser, ParserConfig, ReportStatus,
    Request,
};
use msrp_engine::{
    AddSessionError, ByteRange, Connection, ConnectionConfig, Continuation, Direction, Event, FailureReport,
    MessageId, MessageRef, MsrpUri, OutgoingMessage, ReceivedBody, Role, SendError, SessionConfig,
    SessionKey, SuccessReport, Writer,
};

const A: &str = "msrp://a.example.com:2855/alice1;tcp";
const B: &str = "msrp://b.example.com:2855/bob1;tcp";

fn uri(s: &str) -> MsrpUri {
    s.parse().expect("test URI")
}

fn session(local: &str, remote: &str, role: Role) -> SessionConfig {
    SessionConfig::new(uri(local), vec![uri(remote)], role)
}

/// Everything `conn` has to write, as one buffer.
fn transmit(conn: &mut Connection, now: Instant) -> Bytes {
    let mut batch = Vec::new();
    let mut out = BytesMut::new();
    while conn.poll_transmit(now, &mut batch) > 0 {
        for piece in batch.drain(..) {
            out.extend_from_slice(&piece);
        }
    }
    out.freeze()
}

fn heads(bytes: &[u8]) -> Vec<FrameHead> {
    let mut parser = Parser::new(ParserConfig::default());
    parser.feed(bytes);
    let mut heads = Vec::new();
    while let Some(event) = parser.poll().expect("valid frames") {
        if let WireEvent::Head(head) = event {
            heads.push(head);
        }
    }
    heads
}

fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Moves bytes both ways until neither side writes, committing every
/// ticket; returns the events of (a, b).
fn exchange(a: &mut Connection, b: &mut Connection, now: Instant) -> (Vec<Event>, Vec<Event>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    loop {
        let ab = transmit(a, now);
        b.handle_bytes(&ab, now);
        for event in events(b) {
            if let Event::Commit { ticket, .. } = event {
                b.committed(ticket);
            }
            eb.push(event);
        }
        let ba = transmit(b, now);
        a.handle_bytes(&ba, now);
        ea.extend(events(a));
        if ab.is_empty() && ba.is_empty() {
            return (ea, eb);
        }
    }
}

fn pair(now: Instant) -> (Connection, Connection, SessionKey, SessionKey) {
    pair_with(now, |_| {})
}

/// A (active) and B (passive), with B's session adjusted by `configure`.
fn pair_with(
    now: Instant,
    configure: impl FnOnce(&mut SessionConfig),
) -> (Connection, Connection, SessionKey, SessionKey) {
    let mut a = Connection::new(ConnectionConfig::default());
    let mut b = Connection::new(ConnectionConfig::default());
    let ka = a.add_session(session(A, B, Role::Active), now).expect("a");
    let mut config = session(B, A, Role::Passive);
    configure(&mut config);
    let kb = b.add_session(config, now).expect("b");
    (a, b, ka, kb)
}

/// (status, reason, octets acknowledged) of every `Failed` event.
fn failures(events: &[Event]) -> Vec<(Option<u16>, &str, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Failed {
                status,
                reason,
                bytes_acked,
                ..
            } => Some((*status, reason.as_str(), *bytes_acked)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_active_side_binds_with_a_bodiless_send() {
    let now = Instant::now();
    let (mut a, mut b, ka, kb) = pair(now);
    let first = transmit(&mut a, now);
    let sent = heads(&first);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method(), Some(&Method::Send));
    assert!(!sent[0].has_body());
    assert_eq!(sent[0].byte_range().map(|r| r.to_string()), Some("1-0/0".into()));
    b.handle_bytes(&first, now);
    assert_eq!(events(&mut b), [Event::SessionReady { session: kb }]);
    assert_eq!(b.session_key("bob1"), Some(kb));
    assert_eq!(b.session_key("alice1"), None);
    let answer = transmit(&mut b, now);
    assert_eq!(heads(&answer)[0].status_code(), Some(200));
    a.handle_bytes(&answer, now);
    assert_eq!(events(&mut a), [Event::SessionReady { session: ka }]);
}

#[test]
fn a_request_from_another_peer_gets_403() {
    let now = Instant::now();
    // B negotiated with someone else.
    let carol = "msrp://c.example.com:2855/carol;tcp";
    let (mut a, mut b, ka, _) = pair_with(now, |b| b.remote_path = vec![uri(carol)]);
    a.send(ka, OutgoingMessage::new("text/plain", "hi"))
        .expect("send");
    let (ea, eb) = exchange(&mut a, &mut b, now);
    assert!(eb.iter().all(|e| !matches!(e, Event::MessageReceived { .. })));
    assert_eq!(b.stats().responses_out, [(403, 2)]);
    // The binding SEND's 403 already ends the session on A.
    let reasons: Vec<&str> = ea
        .iter()
        .filter_map(|e| match e {
            Event::Failed { reason, .. } | Event::SessionClosed { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{ea:?}");
    assert!(reasons.iter().all(|r| r.contains("403")), "{reasons:?}");
}

/// The peer answers the binding SEND and nothing else.
fn bound_pair(now: Instant) -> (Connection, SessionKey) {
    let (mut a, _, ka, _) = pair(now);
    let bind = heads(&transmit(&mut a, now)).remove(0);
    let mut out = BytesMut::new();
    write_response(&mut out, bind.transaction_id(), 200, None, A, B).expect("response");
    a.handle_bytes(&out, now);
    assert_eq!(events(&mut a), [Event::SessionReady { session: ka }]);
    (a, ka)
}

#[test]
fn an_unanswered_chunk_fails_with_a_local_408_after_30_s() {
    let start = Instant::now();
    let (mut a, ka) = bound_pair(start);
    let now = start + Duration::from_secs(5);
    a.send(ka, OutgoingMessage::new("text/plain", "anyone there?"))
        .expect("send");
    assert_eq!(heads(&transmit(&mut a, now)).len(), 1);
    assert_eq!(a.poll_timeout(), Some(now + Duration::from_secs(30)));
    a.handle_timeout(now + Duration::from_secs(29));
    assert!(events(&mut a).is_empty());
    a.handle_timeout(now + Duration::from_secs(30));
    let events = events(&mut a);
    let failed: Vec<_> = failures(&events)
        .into_iter()
        .map(|(s, _, acked)| (s, acked))
        .collect();
    assert_eq!(failed, [(Some(408), 0)]);
    // A timeout fails the message, not the session.
    assert_eq!(a.session_count(), 1);
}

/// A SEND from A to B written with the codec: one chunk of `body` at
/// `start`, of a message of `total` octets (`None` for `*`).
fn peer_chunk(
    message_id: &str,
    start: u64,
    total: Option<u64>,
    body: &'static [u8],
    flag: Continuation,
) -> Bytes {
    let mut out = BytesMut::new();
    let range = ByteRange {
        start,
        end: None,
        total,
    };
    Writer::with_seed(start)
        .write_request(
            &Request {
                method: &Method::Send,
                to_path: B,
                from_path: A,
                message_id: MessageId::new(message_id.as_bytes()),
                byte_range: Some(range),
                success_report: None,
                failure_report: None,
                status: None,
                content: Some(Content {
                    content_type: "text/plain",
                    mime_headers: &[],
                    body: Bytes::from_static(body),
                }),
                continuation: flag,
            },
            &mut out,
        )
        .expect("SEND");
    out.freeze()
}

/// The statuses of the responses `conn` has to write.
fn statuses(conn: &mut Connection, now: Instant) -> Vec<u16> {
    heads(&transmit(conn, now))
        .iter()
        .filter_map(FrameHead::status_code)
        .collect()
}

/// A peer written with the codec: answers every SEND 200, then sends the
/// REPORTs a test asks for.
fn answer_all(conn: &mut Connection, now: Instant) -> Vec<FrameHead> {
    let sent = heads(&transmit(conn, now));
    let mut out = BytesMut::new();
    for head in &sent {
        let to = head.from_path().as_str();
        write_response(&mut out, head.transaction_id(), 200, Some("OK"), to, B).expect("response");
    }
    conn.handle_bytes(&out, now);
    sent
}

fn report(head: &FrameHead, range: ByteRange, code: u16) -> Bytes {
    let mut out = BytesMut::new();
    Writer::with_seed(7)
        .write_request(
            &Request {
                method: &Method::Report,
                to_path: head.from_path().as_str(),
                from_path: B,
                message_id: head.message_id().copied(),
                byte_range: Some(range),
                success_report: None,
                failure_report: None,
                status: Some((ReportStatus { namespace: 0, code }, "")),
                content: None,
                continuation: Continuation::Last,
            },
            &mut out,
        )
        .expect("REPORT");
    out.freeze()
}

#[test]
fn success_reports_complete_delivery_and_stray_ones_are_ignored() {
    let now = Instant::now();
    let (mut a, _, ka, _) = pair(now);
    let mut message = OutgoingMessage::new("text/plain", vec![b'x'; 100]);
    message.success_report = Some(SuccessReport::Yes);
    let reference = a.send(ka, message).expect("send");
    let sent = answer_all(&mut a, now);
    let chunk = sent.iter().find(|h| h.has_body()).expect("the chunk");
    // All 200s in, but no REPORT yet: not delivered.
    assert!(!events(&mut a)
        .iter()
        .any(|e| matches!(e, Event::Delivered { .. })));
    let whole = |start, end| ByteRange {
        start,
        end: Some(end),
        total: Some(100),
    };
    // Beyond the message: ignored.
    a.handle_bytes(
        &report(
            chunk,
            ByteRange {
                start: 1,
                end: Some(200),
                total: Some(200),
            },
            200,
        ),
        now,
    );
    assert_eq!(a.stats().reports_ignored, 1);
    a.handle_bytes(&report(chunk, whole(1, 60), 200), now);
    assert!(events(&mut a).is_empty(), "60 of 100 octets reported");
    a.handle_bytes(&report(chunk, whole(61, 100), 200), now);
    let delivered: Vec<_> = events(&mut a)
        .into_iter()
        .filter(|e| matches!(e, Event::Delivered { message, .. } if *message == reference))
        .collect();
    assert_eq!(delivered.len(), 1);
}

#[test]
fn a_failure_report_fails_the_message_with_its_status() {
    let now = Instant::now();
    let (mut a, _, ka, _) = pair(now);
    let mut message = OutgoingMessage::new("text/plain", vec![b'x'; 100]);
    message.failure_report = Some(FailureReport::Partial);
    a.send(ka, message).expect("send");
    let sent = heads(&transmit(&mut a, now));
    let chunk = sent.iter().find(|h| h.has_body()).expect("the chunk");
    assert_eq!(chunk.failure_report(), Some(FailureReport::Partial));
    let range = ByteRange {
        start: 1,
        end: Some(100),
        total: Some(100),
    };
    a.handle_bytes(&report(chunk, range, 413), now);
    let events = events(&mut a);
    let failed = failures(&events);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, Some(413));
    assert!(failed[0].1.contains("failure REPORT"), "{}", failed[0].1);
}

#[test]
fn a_partial_chunk_is_delivered_when_its_transaction_passes_quietly() {
    let now = Instant::now();
    let (mut a, ka) = bound_pair(now);
    let mut message = OutgoingMessage::new("text/plain", "quiet");
    message.failure_report = Some(FailureReport::Partial);
    a.send(ka, message).expect("send");
    let sent = heads(&transmit(&mut a, now));
    assert_eq!(sent[0].failure_report(), Some(FailureReport::Partial));
    a.handle_timeout(now + Duration::from_secs(29));
    assert!(events(&mut a).is_empty());
    a.handle_timeout(now + Duration::from_secs(30));
    assert!(matches!(events(&mut a)[..], [Event::Delivered { .. }]));
}

#[test]
fn a_481_ends_the_session_and_fails_its_messages() {
    let now = Instant::now();
    let (mut a, _, ka, _) = pair(now);
    a.send(ka, OutgoingMessage::new("text/plain", "one"))
        .expect("send");
    a.send(ka, OutgoingMessage::new("text/plain", "two"))
        .expect("send");
    let sent = heads(&transmit(&mut a, now));
    let chunk = sent.iter().find(|h| h.has_body()).expect("a chunk");
    let mut out = BytesMut::new();
    write_response(&mut out, chunk.transaction_id(), 481, None, A, B).expect("response");
    a.handle_bytes(&out, now);
    let events = events(&mut a);
    let failed = events
        .iter()
        .filter(|e| matches!(e, Event::Failed { .. }))
        .count();
    assert_eq!(failed, 2, "{events:?}");
    assert!(matches!(events.last(), Some(Event::SessionClosed { session, .. }) if *session == ka));
    assert!(matches!(
        a.send(ka, OutgoingMessage::new("text/plain", "three")),
        Err(SendError::UnknownSession)
    ));
}

#[test]
fn a_full_send_queue_hands_the_message_back_and_signals_room() {
    let now = Instant::now();
    let mut a = Connection::new(ConnectionConfig::default());
    let mut config = session(A, B, Role::Active);
    config.settings.send_queue_messages_max = 2;
    let ka = a.add_session(config, now).expect("a");
    a.send(ka, OutgoingMessage::new("text/plain", "1"))
        .expect("first");
    a.send(ka, OutgoingMessage::new("text/plain", "2"))
        .expect("second");
    match a.send(ka, OutgoingMessage::new("text/plain", "3")) {
        Err(SendError::Full(back)) => assert_eq!(back.content_type, "text/plain"),
        other => panic!("expected Full, got {other:?}"),
    }
    transmit(&mut a, now);
    assert_eq!(events(&mut a), [Event::SendReady { session: ka }]);
    a.send(ka, OutgoingMessage::new("text/plain", "3"))
        .expect("room again");
}

#[test]
fn lost_framing_fails_every_session_with_a_reason() {
    let now = Instant::now();
    let mut a = Connection::new(ConnectionConfig::default());
    let k1 = a.add_session(session(A, B, Role::Active), now).expect("1");
    let k2 = a
        .add_session(
            session("msrp://a.example.com:2855/alice2;tcp", B, Role::Active),
            now,
        )
        .expect("2");
    a.send(k1, OutgoingMessage::new("text/plain", "one"))
        .expect("send");
    a.send(k2, OutgoingMessage::new("text/plain", "two"))
        .expect("send");
    transmit(&mut a, now);
    a.handle_bytes(b"HTTP/1.1 200 OK\r\n\r\n", now);
    let events = events(&mut a);
    assert!(a.is_closed());
    let reasons: Vec<&str> = failures(&events).into_iter().map(|f| f.1).collect();
    assert_eq!(reasons.len(), 2);
    assert!(
        reasons.iter().all(|r| r.contains("cannot be framed")),
        "{reasons:?}"
    );
    let closed = events
        .iter()
        .filter(|e| matches!(e, Event::SessionClosed { .. }))
        .count();
    assert_eq!(closed, 2);
    assert!(matches!(events.last(), Some(Event::ConnectionClosed { .. })));
}

#[test]
fn a_streamed_chunk_is_answered_only_after_its_commit() {
    let now = Instant::now();
    let (mut a, mut b, ka, _) = pair_with(now, |b| b.settings.inline_bytes_max = 1000);
    a.send(
        ka,
        OutgoingMessage::new("application/octet-stream", vec![7u8; 10_000]),
    )
    .expect("send");
    b.handle_bytes(&transmit(&mut a, now), now);
    let got = events(&mut b);
    let data: usize = got
        .iter()
        .filter_map(|e| match e {
            Event::Data { data, .. } => Some(data.len()),
            _ => None,
        })
        .sum();
    assert_eq!(data, 10_000);
    let ticket = got
        .iter()
        .find_map(|e| match e {
            Event::Commit { ticket, .. } => Some(*ticket),
            _ => None,
        })
        .expect("a commit ticket");
    assert_eq!(
        statuses(&mut b, now),
        [200],
        "only the binding SEND is answered before the commit"
    );
    b.committed(ticket);
    assert_eq!(statuses(&mut b, now), [200]);
    assert!(events(&mut b).iter().any(|e| matches!(
        e,
        Event::MessageReceived {
            body: ReceivedBody::Streamed { len: 10_000 },
            ..
        }
    )));
    // The same ticket twice does nothing.
    b.committed(ticket);
    assert!(transmit(&mut b, now).is_empty());
}

#[test]
fn every_message_reaches_the_peer_in_order_of_its_session() {
    let now = Instant::now();
    let (mut a, mut b, ka, _) = pair(now);
    for i in 0..100u32 {
        a.send(ka, OutgoingMessage::new("text/plain", i.to_string()))
            .expect("send");
    }
    let (ea, eb) = exchange(&mut a, &mut b, now);
    let delivered = ea.iter().filter(|e| matches!(e, Event::Delivered { .. })).count();
    assert_eq!(delivered, 100);
    let bodies: Vec<String> = eb
        .iter()
        .filter_map(|e| match e {
            Event::MessageReceived {
                body: ReceivedBody::Inline(body),
                ..
            } => Some(String::from_utf8_lossy(body).into_owned()),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (0..100).map(|i: u32| i.to_string()).collect();
    assert_eq!(bodies, expected);
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sb.bytes_in, sa.bytes_in), (sa.bytes_out, sb.bytes_out));
    assert_eq!((sb.requests_in, sa.responses_in), (101, 101));
    assert_eq!((sa.messages_delivered, sb.messages_received), (100, 100));
    assert_eq!(sb.responses_out, [(200, 101)]);
}

#[test]
fn a_chunk_far_beyond_the_size_cap_gets_413_and_no_sink_write() {
    let now = Instant::now();
    let mut b = Connection::new(ConnectionConfig::default());
    b.add_session(session(B, A, Role::Passive), now).expect("b");
    b.handle_bytes(
        &peer_chunk("far-away-1", 1 << 40, None, b"hello", Continuation::More),
        now,
    );
    assert_eq!(statuses(&mut b, now), [413]);
    assert!(events(&mut b).iter().all(|e| !matches!(e, Event::Data { .. })));
}

/// Settled transactions and REPORT waits do not pile up as timer entries
/// until their deadlines (30 s and 120 s of traffic would be millions).
#[test]
fn settled_deadlines_do_not_accumulate() {
    let now = Instant::now();
    let (mut a, mut b, ka, _) = pair(now);
    for round in 0..50 {
        for _ in 0..200 {
            let mut message = OutgoingMessage::new("text/plain", "report me");
            message.success_report = Some(SuccessReport::Yes);
            a.send(ka, message).expect("send");
        }
        let (ea, _) = exchange(&mut a, &mut b, now);
        let delivered = ea.iter().filter(|e| matches!(e, Event::Delivered { .. })).count();
        assert_eq!(delivered, 200, "round {round}");
        assert!(
            a.timer_entries() <= 2 * 200 + 64,
            "{} timer entries",
            a.timer_entries()
        );
    }
}

/// Hands out one piece, then cannot read on.
struct FailingSource {
    first: Option<Bytes>,
}

impl msrp_engine::ContentSource for FailingSource {
    fn size(&self) -> Option<u64> {
        Some(20_000)
    }

    fn next_chunk(&mut self, _max: usize) -> msrp_engine::SourceChunk {
        match self.first.take() {
            Some(piece) => msrp_engine::SourceChunk::Data(piece),
            None => msrp_engine::SourceChunk::Failed("disk read error".into()),
        }
    }
}

#[test]
fn a_failing_source_fails_the_message_and_aborts_it_at_the_peer() {
    let now = Instant::now();
    let (mut a, mut b, ka, kb) = pair(now);
    let source = FailingSource {
        first: Some(Bytes::from(vec![b'a'; 5000])),
    };
    a.send(ka, OutgoingMessage::from_source("text/plain", Box::new(source)))
        .expect("send");
    let (ea, eb) = exchange(&mut a, &mut b, now);
    let failed = failures(&ea);
    // The source failed in the same batch as the first chunk, before its 200.
    assert_eq!(failed, [(None, "disk read error", 0)]);
    assert!(eb.iter().all(|e| !matches!(e, Event::MessageReceived { .. })));
    // The `#` chunk made the receiver drop the 5000 octets it held.
    assert_eq!(b.session_reassembly_bytes(kb), Some(0));
    assert_eq!(a.stats().responses_unmatched, 0);
}

/// A session closed while its peer's requests are still owed answers: the
/// chunk arriving now and the chunk waiting for its sink commit get 481, so
/// the peer does not wait 30 s for a 408 (found by the simulation, seed 10338
/// of 20,000).
#[test]
fn closing_a_session_answers_what_it_still_owes_with_481() {
    let now = Instant::now();
    let (mut a, mut b, ka, kb) = pair_with(now, |b| b.settings.inline_bytes_max = 0);
    a.send(ka, OutgoingMessage::new("text/plain", vec![b'x'; 100_000]))
        .expect("send");
    let wire = transmit(&mut a, now);
    // The binding SEND, the first chunk (waiting for its commit) and half of
    // the second chunk reach B.
    let second = wire.len() - 20_000;
    b.handle_bytes(&wire[..second], now);
    let commits = events(&mut b)
        .iter()
        .filter(|e| matches!(e, Event::Commit { .. }))
        .count();
    assert_eq!(commits, 1);
    b.close_session(kb, "the application ended the session");
    b.handle_bytes(&wire[second..], now);
    assert_eq!(statuses(&mut b, now), [200, 481, 481]);
}

#[test]
fn direction_limits_what_is_sent_and_what_is_accepted() {
    let now = Instant::now();
    // B only sends: A's content SEND gets 403 (RFC 4975 8.9, 10), the bodiless
    // binding SEND still gets 200 (RFC 4975 8.9).
    let (mut a, mut b, ka, kb) = pair_with(now, |b| b.direction = Direction::SendOnly);
    a.send(ka, OutgoingMessage::new("text/plain", "hi"))
        .expect("send");
    let (ea, _) = exchange(&mut a, &mut b, now);
    assert_eq!(failures(&ea).iter().map(|f| f.0).collect::<Vec<_>>(), [Some(403)]);
    assert_eq!(b.stats().responses_out, [(200, 1), (403, 1)]);
    // And B's session refuses to send when it may only receive.
    let mut c = Connection::new(ConnectionConfig::default());
    let mut config = session(A, B, Role::Active);
    config.direction = Direction::RecvOnly;
    let kc = c.add_session(config, now).expect("c");
    assert!(matches!(
        c.send(kc, OutgoingMessage::new("text/plain", "no")),
        Err(SendError::Direction)
    ));
    b.send(kb, OutgoingMessage::new("text/plain", "fine"))
        .expect("B may send");
}

#[test]
fn send_refuses_what_the_peer_negotiated_away() {
    let now = Instant::now();
    let mut a = Connection::new(ConnectionConfig::default());
    let mut config = session(A, B, Role::Active);
    config.remote_accept_types = vec!["text/*".into()];
    config.remote_max_size = Some(10);
    let ka = a.add_session(config, now).expect("a");
    let refused =
        |a: &mut Connection, ty: &str, body: &'static str| a.send(ka, OutgoingMessage::new(ty, body));
    assert!(
        matches!(refused(&mut a, "image/png", "x"), Err(SendError::TypeNotAccepted(t)) if t == "image/png")
    );
    assert!(matches!(
        refused(&mut a, "text plain", "x"),
        Err(SendError::InvalidContentType(_))
    ));
    assert!(matches!(
        refused(&mut a, "text/plain", "eleven char"),
        Err(SendError::TooLarge { size: 11, max: 10 })
    ));
    refused(&mut a, "text/html", "<p>ten</p>").expect("accepted type and size");
}

#[test]
fn add_session_refuses_what_cannot_be_routed() {
    let now = Instant::now();
    let mut a = Connection::new(ConnectionConfig {
        sessions_max: 2,
        ..ConnectionConfig::default()
    });
    a.add_session(session(A, B, Role::Passive), now).expect("first");
    assert_eq!(
        a.add_session(session(A, B, Role::Passive), now),
        Err(AddSessionError::DuplicateSessionId("alice1".into()))
    );
    let relay = "msrp://relay.example.com:2855;tcp";
    assert_eq!(
        a.add_session(session(relay, B, Role::Passive), now),
        Err(AddSessionError::NoSessionId(relay.into()))
    );
    let mut empty = session("msrp://a.example.com:2855/alice2;tcp", B, Role::Passive);
    empty.remote_path.clear();
    assert_eq!(a.add_session(empty, now), Err(AddSessionError::EmptyRemotePath));
    a.add_session(
        session("msrp://a.example.com:2855/alice3;tcp", B, Role::Passive),
        now,
    )
    .expect("second");
    assert_eq!(
        a.add_session(
            session("msrp://a.example.com:2855/alice4;tcp", B, Role::Passive),
            now
        ),
        Err(AddSessionError::TooManySessions(2))
    );
}

#[test]
fn an_incomplete_message_expires_and_its_sink_is_told() {
    let now = Instant::now();
    let mut b = Connection::new(ConnectionConfig::default());
    let mut config = session(B, A, Role::Passive);
    config.settings.inline_bytes_max = 0;
    let kb = b.add_session(config, now).expect("b");
    b.handle_bytes(
        &peer_chunk("stalled-1", 1, Some(100), b"first part", Continuation::More),
        now,
    );
    for event in events(&mut b) {
        if let Event::Commit { ticket, .. } = event {
            b.committed(ticket);
        }
    }
    assert_eq!(statuses(&mut b, now), [200]);
    assert_eq!(b.session_incoming_messages(kb), Some(1));
    let later = now + Duration::from_secs(299);
    b.handle_timeout(later);
    assert_eq!(b.session_incoming_messages(kb), Some(1), "not yet");
    let expired = b.poll_timeout().expect("a sweep is due");
    b.handle_timeout(expired.max(now + Duration::from_secs(300)));
    assert_eq!(b.session_incoming_messages(kb), Some(0));
    assert!(matches!(events(&mut b)[..], [Event::MessageAborted { .. }]));
}

#[test]
fn a_message_scattered_over_too_many_ranges_gets_413() {
    let now = Instant::now();
    let mut b = Connection::new(ConnectionConfig::default());
    let mut config = session(B, A, Role::Passive);
    config.settings.incoming_ranges_max = 3;
    let kb = b.add_session(config, now).expect("b");
    // Octets 2, 4, 6 and 8 of a 10-octet message: the fourth gap-separated
    // range is one too many.
    for start in [2, 4, 6, 8] {
        b.handle_bytes(
            &peer_chunk("scattered1", start, Some(10), b"x", Continuation::More),
            now,
        );
    }
    assert_eq!(statuses(&mut b, now), [200, 200, 200, 413]);
    assert_eq!(b.session_incoming_messages(kb), Some(0));
}

/// A bound pair whose active side cuts 4096-octet chunks.
fn chunking_pair(config: ConnectionConfig, now: Instant) -> (Connection, Connection, SessionKey) {
    let mut a = Connection::new(config);
    let mut b = Connection::new(ConnectionConfig::default());
    let mut settings = session(A, B, Role::Active);
    settings.settings.chunk_bytes = 4096;
    let key = a.add_session(settings, now).expect("a");
    b.add_session(session(B, A, Role::Passive), now).expect("b");
    exchange(&mut a, &mut b, now);
    (a, b, key)
}

#[test]
fn chunk_events_report_each_answered_chunk_only_when_asked_for() {
    let now = Instant::now();
    let later = now + Duration::from_millis(5);
    let config = ConnectionConfig {
        chunk_events: true,
        ..ConnectionConfig::default()
    };
    let (mut a, mut b, key) = chunking_pair(config, now);
    let message = a
        .send(key, OutgoingMessage::new("text/plain", vec![b'x'; 10_000]))
        .expect("send");
    let (events, _) = exchange(&mut a, &mut b, later);
    let answered: Vec<(MessageRef, u64, u16, Instant)> = events
        .iter()
        .filter_map(|e| match *e {
            Event::ChunkAnswered {
                message,
                bytes,
                status,
                sent,
                ..
            } => Some((message, bytes, status, sent)),
            _ => None,
        })
        .collect();
    assert_eq!(
        answered,
        [
            (message, 4096, 200, later),
            (message, 4096, 200, later),
            (message, 1808, 200, later)
        ]
    );
    let last = events
        .iter()
        .rposition(|e| matches!(e, Event::ChunkAnswered { .. }));
    let delivered = events.iter().position(|e| matches!(e, Event::Delivered { .. }));
    assert!(
        last < delivered,
        "every chunk's event comes before delivered: {events:?}"
    );

    let (mut a, mut b, key) = chunking_pair(ConnectionConfig::default(), now);
    a.send(key, OutgoingMessage::new("text/plain", vec![b'x'; 10_000]))
        .expect("send");
    let (events, _) = exchange(&mut a, &mut b, later);
    assert!(
        !events.iter().any(|e| matches!(e, Event::ChunkAnswered { .. })),
        "off by default: {events:?}"
    );
    assert!(events.iter().any(|e| matches!(e, Event::Delivered { .. })));
}
